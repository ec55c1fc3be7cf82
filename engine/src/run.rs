//! Installing, updating and uninstalling parts: the lifecycle of SPEC §3.
//!
//! A run takes the instance lock, reads the state, plans every part against it ([`plan`]),
//! uninstalls what is gone or changed in reverse of the old install order, then installs or
//! updates the wanted parts in dependency order ([`schedule`]), up to `jobs` at a time.
//! Recipes run on worker threads, each job with a frozen [`view::View`] of the config made
//! once its dependencies are done; the calling thread owns the resolver and the state,
//! publishes the jobs' outputs and saves the state after every part. Data flows one way:
//! jobs never ask the calling thread anything.

pub mod lock;
pub mod paths;
pub mod plan;
pub mod schedule;
pub mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tracing::{debug, info, info_span, warn};

use crate::config::{self, Config, Resolver, Value};
use crate::graph::{self, Parts};
use crate::plugin::{Call, Host, Recipe, RecipeError, Registry};
use crate::state::{PartRecord, RecipeRecord, State, StateError, StateFile};
use lock::{InstanceLock, LockError};
use paths::{Claims, Layout, Owners, ParentCache, Place, Removal, Roots};
use plan::{Action, Plan, Reason, Wanted};
use schedule::Schedule;
use view::{Snapshot, View};

/// How a run is asked to go.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `install PART...`: only these parts (no dependencies, nothing uninstalled); empty: all.
    pub only: Vec<String>,
    /// `-j N`; `None`: `buildout:jobs`, else 1 (parts run in order, as in zc.buildout).
    pub jobs: Option<usize>,
    /// How long to wait for another run holding the instance lock.
    pub lock_timeout: Duration,
    pub offline: bool,
    pub newest: bool,
    /// `--locked`: recipes must fail rather than change a lock file.
    pub locked: bool,
    /// Whether nested builds read the user defaults (false with `-U`).
    pub user_defaults: bool,
    /// Set by a second Ctrl-C: running recipes are told to stop (`Context::cancelled`).
    pub stop: Option<&'static AtomicBool>,
    /// The configs of the nested builds this run is inside, outermost first (empty for a
    /// top-level run): what bounds a release that builds itself.
    pub nesting: Vec<PathBuf>,
}

/// How many nested builds may be inside each other (a release of a release...).
pub const MAX_NESTING: usize = 8;

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config is wrong (load, substitution, graph).
    #[error("{0}")]
    Config(config::Error),
    /// Something the user named or configured does not exist (a part, a recipe plugin).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    State(#[from] StateError),
    /// One or more parts failed; each message names its part.
    #[error("{}", .0.join("\n"))]
    Failed(Vec<String>),
    /// Ctrl-C or SIGTERM: running parts finished, the rest did not start.
    #[error("interrupted: {0} part(s) not run; the state is consistent, run again to finish")]
    Interrupted(usize),
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunError {
    /// Whether the fault is the config's or the command line's (exit code 2), not a part's.
    pub fn is_config(&self) -> bool {
        matches!(self, RunError::Config(_) | RunError::Usage(_))
    }
}

impl From<config::Error> for RunError {
    fn from(e: config::Error) -> RunError {
        RunError::Config(e)
    }
}

/// What a run did, part by part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Parts installed, reinstalls included.
    pub installed: Vec<String>,
    pub updated: Vec<String>,
    /// Parts uninstalled, the first half of a planned reinstall included.
    pub uninstalled: Vec<String>,
    pub kept: Vec<String>,
    /// Each part handled, once, in the order it finished: what was done and why.
    pub parts: Vec<PartReport>,
    /// Whether the state file was written (it is only when its text changes).
    pub state_written: bool,
}

impl Summary {
    /// Whether the run changed anything on disk: a part installed, reinstalled or
    /// uninstalled, an update whose record changed, or the state file rewritten.
    pub fn changed(&self) -> bool {
        self.state_written || self.parts.iter().any(|p| p.changed)
    }
}

/// What a run did to one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReport {
    pub part: String,
    /// `Install`, `Reinstall`, `Update`, `Keep` or `Uninstall`.
    pub action: Action,
    pub reason: Reason,
    /// Whether the part changed on disk: always for an install, reinstall or uninstall;
    /// for an update, whether its record (paths, outputs, options) changed; never for a
    /// kept part.
    pub changed: bool,
}

/// The folders and files of one instance, read from `[buildout]`.
struct Instance {
    directory: PathBuf,
    /// `buildout:installed`; `None` when set empty: no state, every part installs each run.
    state_path: Option<PathBuf>,
    lock_path: PathBuf,
    roots: Roots,
    jobs: usize,
    /// Folders created before parts run, as zc.buildout does.
    create: Vec<PathBuf>,
    nested_base: NestedBase,
}

/// What a nested build inherits from the instance that runs it.
#[derive(Clone)]
struct NestedBase {
    instance_directory: PathBuf,
    eggs_directory: Option<PathBuf>,
    download_cache: Option<PathBuf>,
}

impl Instance {
    /// Calls `f` with a [`Worker`] for this instance, whose recipes' nested builds run in a
    /// [`Session`] like this one's, and the receiving end of the worker's outcomes.
    fn with_worker<R>(
        &self,
        registry: &Registry,
        settings: &Settings,
        cancel: &AtomicBool,
        f: impl FnOnce(Worker<'_>, mpsc::Receiver<(usize, String, Outcome)>) -> R,
    ) -> R {
        let session = Session {
            registry,
            settings: settings.clone(),
            cancel,
        };
        let nested = Nested {
            session: &session,
            base: self.nested_base.clone(),
            directory: self.directory.clone(),
        };
        let (tx, rx) = mpsc::channel();
        let worker = Worker {
            tx,
            roots: &self.roots,
            directory: &self.directory,
            offline: settings.offline,
            newest: settings.newest,
            locked: settings.locked,
            nested: &nested,
        };
        f(worker, rx)
    }

    /// The instance as the config's typed `[buildout]` ([`Config::buildout`]) describes it.
    fn read(config: &Config, settings: &Settings) -> Result<Instance, RunError> {
        let b = config.buildout();
        b.check()?;
        let directory = b.directory.clone();
        let installed = b.installed.clone();
        let lock_path = b.lock_path();
        let mut engine = vec![
            (config.path().to_path_buf(), "the config file".to_string()),
            // The versions lock the egg recipe keeps beside the config (`buildout.lock`),
            // which users commit.
            (
                config.path().with_extension("lock"),
                "the config's lock file".to_string(),
            ),
        ];
        for file in config.local_files() {
            if file != config.path() {
                engine.push((file, "a file the config extends".to_string()));
            }
        }
        if let Some(state) = &installed {
            engine.push((state.clone(), "the state file".to_string()));
            if let Some(tmp) = rbuildout_plugin_api::files::temp_path_of(state) {
                engine.push((tmp, "the state file's temp file".to_string()));
            }
        }
        engine.push((lock_path.clone(), "the instance lock".to_string()));
        for (folder, option) in [
            (&b.bin_directory, "bin-directory"),
            (&b.parts_directory, "parts-directory"),
            (&b.eggs_directory, "eggs-directory"),
            (&b.develop_eggs_directory, "develop-eggs-directory"),
            (&b.download_cache, "download-cache"),
        ] {
            if let Some(f) = folder {
                engine.push((f.clone(), format!("buildout:{option}")));
            }
        }
        // Source and plugin folders the config names: removing one would take the user's
        // code or the recipes themselves.
        for (folders, option) in [
            (&b.develop, "develop"),
            (&b.develop_recipes, "develop-recipes"),
            (&b.plugin_path, "plugin-path"),
        ] {
            for folder in folders {
                engine.push((folder.clone(), format!("a folder of buildout:{option}")));
            }
        }
        let mut allowed = b.allow_outside.clone();
        allowed.extend(
            [
                &b.eggs_directory,
                &b.develop_eggs_directory,
                &b.download_cache,
            ]
            .into_iter()
            .flatten()
            .cloned(),
        );
        let roots = Roots::new(&Layout {
            directory: directory.clone(),
            engine,
            allowed,
        });
        // One at a time unless asked: a config lists its parts in the order they must run,
        // and `needs` is only required to run them concurrently (`-j N`).
        let jobs = settings.jobs.unwrap_or(b.jobs).max(1);
        let create = [&b.bin_directory, &b.parts_directory]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Ok(Instance {
            directory,
            state_path: installed,
            lock_path,
            roots,
            jobs,
            create,
            nested_base: NestedBase {
                instance_directory: b.instance_directory.clone(),
                eggs_directory: b.eggs_directory.clone(),
                download_cache: b.download_cache.clone(),
            },
        })
    }

    fn open_state(&self) -> Result<(Option<StateFile>, State), StateError> {
        match &self.state_path {
            Some(p) => StateFile::open(p).map(|(f, s)| (Some(f), s)),
            None => Ok((None, State::default())),
        }
    }
}

/// The parts of this run, their recipes and what the config wants of them.
struct Prepared {
    parts: Parts,
    /// The parts this run handles, in install order.
    order: Vec<String>,
    /// Each part's recipe and its identity (computed once: it hashes the plugin file).
    recipes: HashMap<String, (Recipe, RecipeRecord)>,
    plan: Plan,
    /// Per part this run handles, the options it was planned with (outputs as recorded)
    /// and its step in `plan.parts`.
    planned: HashMap<String, (BTreeMap<String, String>, usize)>,
    /// `[buildout]` as the parts were planned with.
    buildout: Arc<BTreeMap<String, String>>,
}

/// The recipe's identity as the state records it. `recorded` is what an earlier run
/// recorded for the part: if the library file still has the recorded stamp, its digest is
/// reused instead of hashing the file again. A built-in recipe's digest reads no file, so it
/// records no stamp.
fn record_of(recipe: &Recipe, recorded: Option<&RecipeRecord>) -> RecipeRecord {
    let stamp = if recipe.is_builtin() {
        String::new()
    } else {
        stamp(recipe.library_path())
    };
    if let Some(old) = recorded.filter(|r| !stamp.is_empty() && r.stamp == stamp) {
        recipe.assume_digest(&old.digest);
    }
    let id = recipe.identity();
    RecipeRecord {
        plugin: id.plugin,
        version: id.version,
        entry: id.entry,
        digest: id.digest,
        stamp,
    }
}

/// The library file's [stamp](crate::plugin::file_stamp); empty if the file cannot be
/// read, so nothing is reused.
fn stamp(path: &Path) -> String {
    crate::plugin::file_stamp(path).unwrap_or_default()
}

fn texts(section: indexmap::IndexMap<String, Value>) -> BTreeMap<String, String> {
    section.into_iter().map(|(k, v)| (k, v.to_text())).collect()
}

/// Plans the run: which parts, which recipes, and what each part needs and why. Outputs the
/// state recorded are visible to substitution; unknown outputs stay literal `${part:x}`.
fn prepare(
    config: &Config,
    registry: &Registry,
    settings: &Settings,
    state: &State,
    roots: &Roots,
) -> Result<Prepared, RunError> {
    let mut resolver = config.resolver();
    resolver.set_lenient(true);
    let parts = graph::parts(config, &mut resolver)?;
    let order: Vec<String> = if settings.only.is_empty() {
        parts.order().to_vec()
    } else {
        let unknown: Vec<&String> = settings
            .only
            .iter()
            .filter(|p| !parts.order().contains(p))
            .collect();
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|p| format!("`{p}`")).collect();
            return Err(RunError::Usage(format!(
                "not a part of this buildout: {}\nhint: the parts are: {}",
                names.join(", "),
                parts.order().join(" ")
            )));
        }
        parts
            .order()
            .iter()
            .filter(|p| settings.only.contains(p))
            .cloned()
            .collect()
    };
    let mut recipes = HashMap::new();
    let mut problems = Vec::new();
    let mut wanted = Vec::new();
    let in_run: HashSet<&str> = order.iter().map(String::as_str).collect();
    publish_recorded(config, &mut resolver, state, |p| {
        !in_run.contains(p.as_str())
    });
    let buildout = Arc::new(view::buildout_texts(&mut resolver));
    // Parts mostly share a few recipes: find and identify each once.
    let mut by_name: HashMap<&str, Result<(Recipe, RecipeRecord), String>> = HashMap::new();
    for part in &order {
        let name = parts.recipe(part);
        let recorded = state.parts.get(part).and_then(|r| r.recipe.as_ref());
        let found = by_name.entry(name).or_insert_with(|| {
            registry
                .recipe(name)
                .map(|r| {
                    let identity = record_of(&r, recorded);
                    (r, identity)
                })
                .map_err(|e| e.to_string())
        });
        let (recipe, identity) = match found {
            Ok(found) => found.clone(),
            Err(e) => {
                problems.push(format!("part `{part}`: {e}"));
                continue;
            }
        };
        let options = texts(resolver.section(part)?);
        // A part's own outputs become visible only after its options are read (an output
        // never shares a name with an option: `check_outputs`).
        if let Some(record) = state.parts.get(part) {
            for (k, v) in &record.outputs {
                resolver.set_output(part, k, Value::Str(v.clone()));
            }
        }
        wanted.push(Wanted {
            name: part.clone(),
            recipe: identity.clone(),
            options,
            buildout: buildout.clone(),
            has_update: recipe.has_update(),
        });
        recipes.insert(part.clone(), (recipe, identity));
    }
    if !problems.is_empty() {
        return Err(RunError::Usage(problems.join("\n")));
    }
    let missing = |paths: &[String]| roots.first_missing(paths);
    let plan = Plan::new(state, &wanted, !settings.only.is_empty(), &missing);
    let planned = wanted
        .into_iter()
        .enumerate()
        .map(|(i, w)| (w.name, (w.options, i)))
        .collect();
    Ok(Prepared {
        parts,
        order,
        recipes,
        plan,
        planned,
        buildout,
    })
}

/// Makes the outputs the state recorded visible to substitution, for the recorded parts
/// still configured that `which` selects.
fn publish_recorded(
    config: &Config,
    resolver: &mut Resolver<'_>,
    state: &State,
    which: impl Fn(&String) -> bool,
) {
    for (part, record) in &state.parts {
        if config.has_section(part) && which(part) {
            for (k, v) in &record.outputs {
                resolver.set_output(part, k, Value::Str(v.clone()));
            }
        }
    }
}

/// For commands that run no recipe (`annotate`, `query`): makes the outputs recorded in the
/// instance's state visible to `resolver`, so `${part:output}` shows what the last run
/// published. A missing state file publishes nothing.
pub fn publish_state_outputs(config: &Config, resolver: &mut Resolver<'_>) -> Result<(), RunError> {
    let instance = Instance::read(config, &Settings::default())?;
    let (_, state) = instance.open_state()?;
    publish_recorded(config, resolver, &state, |_| true);
    Ok(())
}

/// What `plan` and `install --dry-run` show: computed from the state without the lock,
/// touching nothing.
pub fn plan(config: &Config, registry: &Registry, settings: &Settings) -> Result<Plan, RunError> {
    let instance = Instance::read(config, settings)?;
    let (_, state) = instance.open_state()?;
    Ok(prepare(config, registry, settings, &state, &instance.roots)?.plan)
}

/// Brings the instance to the config's state. `cancel` (set by Ctrl-C) stops new parts
/// from starting; running ones finish and the state stays consistent.
pub fn install(
    config: &Config,
    registry: &Registry,
    settings: &Settings,
    cancel: &AtomicBool,
) -> Result<Summary, RunError> {
    let instance = Instance::read(config, settings)?;
    let _lock = InstanceLock::acquire(&instance.lock_path, settings.lock_timeout, cancel)?;
    let (file, state) = instance.open_state()?;
    let prepared = prepare(config, registry, settings, &state, &instance.roots)?;
    for dir in &instance.create {
        // A link stands there (even a dangling one, such as `bin -> code/current/bin` before
        // the first release): it belongs to a recipe, which makes it point somewhere.
        if dir
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            continue;
        }
        std::fs::create_dir_all(dir).map_err(|source| RunError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    let result = instance.with_worker(registry, settings, cancel, |worker, rx| {
        let (queue_tx, queue_rx) = mpsc::channel::<(usize, String, Job<'_>)>();
        let mut runner = Runner {
            config,
            published: HashMap::new(),
            registry,
            instance: &instance,
            prepared: &prepared,
            resolver: config.resolver(),
            buildout: None,
            buildout_reach: None,
            state,
            file,
            summary: Summary::default(),
            doing: HashMap::new(),
            cancel,
            stop: settings.stop,
            stale: false,
            told_interrupt: false,
            ran: false,
            queue: Some(queue_tx),
            workers: 0,
            lookup: Lookup::default(),
            reinstalled: HashMap::new(),
            prepared_outputs: HashMap::new(),
        };
        let queue = Mutex::new(queue_rx);
        std::thread::scope(|scope| {
            let result = runner.go(scope, &worker, &rx, &queue);
            // Closing the queue ends the workers; the scope then waits for them.
            runner.queue = None;
            result
        })
    });
    // What plugins gathered over the parts (zc.buildout's picked versions) is reported
    // now, while the instance is still locked.
    registry.run_end(&instance.directory, result.is_ok());
    result
}

/// What the builds a run starts share: the plugins, how to run, and Ctrl-C.
pub struct Session<'a> {
    pub registry: &'a Registry,
    pub settings: Settings,
    pub cancel: &'a AtomicBool,
}

/// One config to build into one folder as its own buildout (its own state and lock).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The config file.
    pub config: PathBuf,
    /// The working directory it is loaded from; relative paths resolve against it.
    pub directory: PathBuf,
    /// `[buildout]` values set over the config's, as the command line sets them.
    pub overrides: config::Overrides,
}

impl Session<'_> {
    /// Loads `request.config` (with the session's user defaults and `-o`) and brings its
    /// instance to its state, as [`install`] does.
    pub fn build(&self, request: BuildRequest) -> Result<Summary, RunError> {
        let options = config::LoadOptions {
            file: Some(request.config),
            cwd: request.directory,
            user_defaults: self.settings.user_defaults,
            offline: self.settings.offline,
            assignments: Vec::new(),
            overrides: request.overrides,
        };
        let loaded = config::load(&options)?;
        // Refused rather than ignored: a nested build does not run extensions (they are
        // the command line's, docs/python-recipes.md "Extensions").
        let extensions = &loaded.buildout().extensions;
        if !extensions.is_empty() {
            return Err(RunError::Usage(format!(
                "{}: buildout:extensions: {}: a nested build does not run extensions; the \
                 config of the instance that builds it may name them",
                loaded.path().display(),
                extensions.join(", ")
            )));
        }
        install(&loaded, self.registry, &self.settings, self.cancel)
    }
}

/// `rbuildout uninstall PART [--skip-hook]`: uninstalls one recorded part, whether or not
/// the config still has it: its recipe's uninstall hook (with the recorded options) unless
/// `skip_hook`, then its recorded paths are removed by the same rules as in a run, and its
/// record goes. The way out of a hook that always fails; a part still in the config is
/// installed again by the next run.
pub fn uninstall(
    config: &Config,
    registry: &Registry,
    settings: &Settings,
    part: &str,
    skip_hook: bool,
    cancel: &AtomicBool,
) -> Result<(), RunError> {
    let instance = Instance::read(config, settings)?;
    let _lock = InstanceLock::acquire(&instance.lock_path, settings.lock_timeout, cancel)?;
    let (file, mut state) = instance.open_state()?;
    let Some(record) = state.parts.get(part).cloned() else {
        let recorded = if state.order.is_empty() {
            "no part".to_string()
        } else {
            state.order.join(" ")
        };
        return Err(RunError::Usage(format!(
            "part `{part}` is not installed in this instance\nhint: the installed parts are: {recorded}"
        )));
    };
    let recipe = match record.options.get("recipe") {
        Some(name) if !skip_hook => recipe_to_uninstall(registry, part, name),
        _ => None,
    };
    let mut resolver = config.resolver();
    publish_recorded(config, &mut resolver, &state, |p| p != part);
    let snapshot = Snapshot {
        buildout: Arc::new(view::buildout_texts(&mut resolver)),
        config,
        outputs: resolver.outputs(),
    };
    let view = View::recorded(part, record.options.clone(), snapshot);
    info_span!("part", part = %part).in_scope(|| {
        if skip_hook {
            info!(
                action = "uninstall",
                reason = "without its uninstall hook",
                "uninstalling without its uninstall hook"
            )
        } else {
            info!(action = "uninstall", "uninstalling")
        }
    });
    let job = Job::Uninstall {
        recipe,
        record,
        view,
    };
    // The outcome is returned, not sent: nothing receives on the worker's channel.
    let outcome = instance.with_worker(registry, settings, cancel, |worker, _rx| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run(part, job)))
            .unwrap_or_else(|_| {
                Outcome::UninstallFailed(format!(
                    "part `{part}` failed: internal error in rbuildout"
                ))
            })
    });
    match outcome {
        Outcome::Uninstalled(paths) => {
            let mut lookup = Lookup::default();
            let owners = owners_in(&state, &mut lookup, part, paths.len());
            discard(&instance.roots, &owners, part, &paths);
            state.remove(part);
            if let Some(mut file) = file {
                file.save(&state)?;
            }
            Ok(())
        }
        Outcome::UninstallFailed(message) => Err(RunError::Failed(vec![message])),
        _ => unreachable!("an uninstall job only uninstalls"),
    }
}

/// The recipe `name` that uninstalls `part`; when it cannot be loaded, a warning and `None`
/// (the part's paths are removed without its hook).
fn recipe_to_uninstall(registry: &Registry, part: &str, name: &str) -> Option<Recipe> {
    match registry.recipe(name) {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(
                part,
                "cannot load recipe `{name}` to uninstall the part, removing its paths only: {e}"
            );
            None
        }
    }
}

/// Work for a worker thread: what to call, and the part's frozen view of the config.
enum Job<'c> {
    Install {
        recipe: Recipe,
        identity: RecipeRecord,
        view: View<'c>,
        /// For a reinstall, the old record's paths: the recipe may replace those files.
        owned: Vec<String>,
    },
    Update {
        recipe: Recipe,
        view: View<'c>,
        record: PartRecord,
    },
    /// The view's options are the recorded ones, which the uninstall hook gets.
    Uninstall {
        recipe: Option<Recipe>,
        record: PartRecord,
        view: View<'c>,
    },
}

/// What a job did. Paths are removed by the calling thread, which knows what the other parts
/// own: a part never removes another's path.
enum Outcome {
    Installed(PartRecord),
    /// `fresh`: where the paths this update registered start in `record.paths`.
    Updated {
        record: PartRecord,
        fresh: usize,
    },
    /// The hook (if any) ran; these recorded paths are to be removed.
    Uninstalled(Vec<String>),
    /// Install failed; what it registered is to be removed.
    InstallFailed {
        message: String,
        paths: Vec<String>,
    },
    /// Update failed; all the part's paths are to be removed and its record must go.
    UpdateFailed {
        message: String,
        paths: Vec<String>,
    },
    /// Uninstall failed; the part stays recorded so the next run tries again.
    UninstallFailed(String),
}

/// What a worker thread needs besides its job.
struct Worker<'a> {
    /// Where finished jobs go: (part index, part, outcome).
    tx: mpsc::Sender<(usize, String, Outcome)>,
    roots: &'a Roots,
    directory: &'a Path,
    offline: bool,
    newest: bool,
    locked: bool,
    nested: &'a Nested<'a>,
}

/// The host side of a recipe call: option queries are answered from the job's view, nested
/// builds run right here on the worker thread.
struct JobHost<'a, 'c> {
    view: &'a View<'c>,
    nested: &'a Nested<'a>,
}

impl Host for JobHost<'_, '_> {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        self.view.option(section, option)
    }

    fn option_names(&self, section: &str) -> Option<Vec<String>> {
        self.view.option_names(section)
    }

    fn nested_build(&self, config: &Path, directory: &Path) -> Result<(), String> {
        self.nested.build(config, directory)
    }

    fn cancelled(&self) -> bool {
        self.nested
            .session
            .settings
            .stop
            .is_some_and(|stop| stop.load(Ordering::Relaxed))
    }
}

/// The host of a `prepare` call: a job's, noting which parts still to be prepared the
/// recipe reads (zc.buildout creates a section's recipe when another recipe reads it).
struct PrepareHost<'a, 'c> {
    job: JobHost<'a, 'c>,
    pending: &'a HashSet<String>,
    read: Mutex<Vec<String>>,
}

impl PrepareHost<'_, '_> {
    fn note(&self, section: &str) {
        if self.pending.contains(section) {
            let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
            if !read.iter().any(|s| s == section) {
                read.push(section.to_string());
            }
        }
    }
}

impl Host for PrepareHost<'_, '_> {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        self.note(section);
        self.job.option(section, option)
    }

    fn option_names(&self, section: &str) -> Option<Vec<String>> {
        self.note(section);
        self.job.option_names(section)
    }

    fn nested_build(&self, config: &Path, directory: &Path) -> Result<(), String> {
        self.job.nested_build(config, directory)
    }

    fn cancelled(&self) -> bool {
        self.job.cancelled()
    }
}

/// A nested build (the `symlink` recipe's release) as a running instance starts it.
struct Nested<'a> {
    session: &'a Session<'a>,
    base: NestedBase,
    /// The calling instance's buildout directory, against which relative paths resolve.
    directory: PathBuf,
}

impl Nested<'_> {
    /// Builds `config` as its own buildout in `directory`, with its own state and lock,
    /// sharing the eggs folder and download cache and knowing the instance's folder.
    fn build(&self, config: &Path, directory: &Path) -> Result<(), String> {
        let config = self.directory.join(config);
        let directory = self.directory.join(directory);
        let settings = &self.session.settings;
        if settings.nesting.len() >= MAX_NESTING {
            let chain: Vec<String> = settings
                .nesting
                .iter()
                .chain(std::iter::once(&config))
                .map(|c| c.display().to_string())
                .collect();
            return Err(format!(
                "nested builds deeper than {MAX_NESTING}: {}\n\
                 hint: a release config must not build a release of itself",
                chain.join(" -> ")
            ));
        }
        std::fs::create_dir_all(&directory)
            .map_err(|e| format!("cannot create {}: {e}", directory.display()))?;
        let mut nesting = settings.nesting.clone();
        nesting.push(config.clone());
        let session = Session {
            registry: self.session.registry,
            settings: Settings {
                only: Vec::new(),
                jobs: None,
                nesting,
                ..settings.clone()
            },
            cancel: self.session.cancel,
        };
        let overrides = config::Overrides {
            directory: Some(directory.clone()),
            instance_directory: Some(self.base.instance_directory.clone()),
            eggs_directory: self.base.eggs_directory.clone(),
            download_cache: self.base.download_cache.clone(),
        };
        session
            .build(BuildRequest {
                config,
                directory,
                overrides,
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Worker<'_> {
    fn call<R>(
        &self,
        part: &str,
        view: &View<'_>,
        owned: &[String],
        f: impl FnOnce(&Call<'_>) -> R,
    ) -> R {
        let host = JobHost {
            view,
            nested: self.nested,
        };
        self.call_with(part, view, &host, owned, f)
    }

    /// [`call`](Worker::call) with the host given.
    fn call_with<R>(
        &self,
        part: &str,
        view: &View<'_>,
        host: &dyn Host,
        owned: &[String],
        f: impl FnOnce(&Call<'_>) -> R,
    ) -> R {
        let options: Vec<(String, String)> = view
            .options()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let call = Call {
            part,
            buildout_directory: self.directory,
            offline: self.offline,
            newest: self.newest,
            locked: self.locked,
            options: &options,
            host,
            owned,
        };
        f(&call)
    }

    fn run(&self, part: &str, job: Job<'_>) -> Outcome {
        let span = info_span!("part", part = %part);
        let _entered = span.enter();
        match job {
            Job::Install {
                recipe,
                identity,
                view,
                owned,
            } => match self.call(part, &view, &owned, |c| recipe.install(c)) {
                Ok(result) => {
                    let (options, reads) = view.into_inputs();
                    let (paths, refused) = self.record_paths(part, &result.paths, &[]);
                    match refused.or_else(|| check_outputs(part, &result.outputs, &options).err()) {
                        Some(message) => Outcome::InstallFailed { message, paths },
                        None => {
                            let mut record = PartRecord {
                                recipe: Some(identity),
                                paths,
                                outputs: result.outputs.into_iter().collect(),
                                options,
                                ..PartRecord::default()
                            };
                            record.add_buildout_reads(&reads);
                            Outcome::Installed(record)
                        }
                    }
                }
                Err(e) => Outcome::InstallFailed {
                    message: failure(part, "install", &e),
                    paths: self.record_paths(part, &e.paths, &[]).0,
                },
            },
            Job::Update {
                recipe,
                view,
                record,
            } => {
                match self.call(part, &view, &record.paths, |c| recipe.update(c)) {
                    Ok(result) => {
                        let options = view.options();
                        let fresh = record.paths.len();
                        let (paths, refused) =
                            self.record_paths(part, &result.paths, &record.paths);
                        if let Some(message) =
                            refused.or_else(|| check_outputs(part, &result.outputs, options).err())
                        {
                            return Outcome::UpdateFailed { message, paths };
                        }
                        let mut outputs = record.outputs;
                        outputs.extend(result.outputs);
                        let mut record = PartRecord {
                            paths,
                            outputs,
                            ..record
                        };
                        record.add_buildout_reads(&view.reads());
                        Outcome::Updated { record, fresh }
                    }
                    // zc.buildout's rule: a failed update leaves nothing of the part.
                    Err(e) => Outcome::UpdateFailed {
                        message: failure(part, "update", &e),
                        paths: self.record_paths(part, &e.paths, &record.paths).0,
                    },
                }
            }
            Job::Uninstall {
                recipe,
                record,
                view,
            } => {
                if let Some(recipe) = recipe.filter(|r| r.has_uninstall()) {
                    if let Err(e) = self.call(part, &view, &record.paths, |c| recipe.uninstall(c)) {
                        return Outcome::UninstallFailed(format!(
                            "{}\nhint: `rbuildout uninstall {part} --skip-hook` removes the part \
                             and its paths without running its uninstall hook",
                            failure(part, "uninstall", &e)
                        ));
                    }
                }
                Outcome::Uninstalled(record.paths)
            }
        }
    }

    /// `old` then the new paths as the state records them, each once, and the first
    /// registration the rules refuse (the engine's paths, a NUL byte, outside the instance
    /// and every allowed folder), as the part's failure. Refused paths are left out, so they
    /// are never removed. Paths outside the instance in an allowed folder are recorded with
    /// a warning: they are never removed.
    fn record_paths(
        &self,
        part: &str,
        new: &[PathBuf],
        old: &[String],
    ) -> (Vec<String>, Option<String>) {
        let mut cache = ParentCache::default();
        let mut accepted = Vec::with_capacity(new.len());
        let mut refused = None;
        for p in new {
            match self.roots.register(p, &mut cache) {
                Ok(registered) => accepted.push(registered),
                Err(refusal) => {
                    if refused.is_none() {
                        let shown = if p.as_os_str().as_encoded_bytes().contains(&0) {
                            format!("{:?}", p.to_string_lossy())
                        } else {
                            self.roots.record(p)
                        };
                        refused = Some(format!(
                            "part `{part}` registered {shown}, {}",
                            refusal.why(self.roots.directory())
                        ));
                    }
                }
            }
        }
        // Each path once: the old ones, then the new in the order of their first
        // registration. The set borrows the texts, so a million paths are not copied.
        let first: Vec<bool> = {
            let mut seen: foldhash::HashSet<&str> = foldhash::HashSet::default();
            seen.reserve(old.len() + accepted.len());
            seen.extend(old.iter().map(String::as_str));
            accepted
                .iter()
                .map(|(_, rec)| seen.insert(rec.as_str()))
                .collect()
        };
        let mut out = Vec::with_capacity(old.len() + accepted.len());
        out.extend_from_slice(old);
        let mut outside = Vec::new();
        for ((place, rec), first) in accepted.into_iter().zip(first) {
            if first {
                if place == Place::Outside {
                    outside.push(rec.clone());
                }
                out.push(rec);
            }
        }
        warn_some(
            &outside,
            "registered",
            "outside the instance: never removed",
        );
        (out, refused)
    }
}

/// Output names follow the substitution name rules (SPEC §2.3: letters, digits, `-`, `.`,
/// `_` and spaces), so `${part:name}` can reach them, and may not shadow an option of the
/// part's section (`recipe`, `needs` and `inherits` among them): `${part:name}` then always
/// means what the config says when the config says it, and an output only adds names.
fn check_outputs(
    part: &str,
    outputs: &[(String, String)],
    options: &BTreeMap<String, String>,
) -> Result<(), String> {
    const ENGINE_OPTIONS: [&str; 3] = ["recipe", "needs", "inherits"];
    for (name, _) in outputs {
        if !rbuildout_plugin_api::is_substitution_name(name) {
            return Err(format!(
                "part `{part}` published the output {name:?}, but `{name}` is not an output name: \
                 names have only letters, digits, `-`, `.`, `_` and spaces, as in ${{part:name}}"
            ));
        }
        if ENGINE_OPTIONS.contains(&name.as_str()) || options.contains_key(name) {
            return Err(format!(
                "part `{part}` published the output `{name}`, which would shadow the option \
                 `{name}` of its section: a recipe's outputs may only add names"
            ));
        }
    }
    Ok(())
}

/// Removes the recorded `paths` of `part` by the rules of [`Roots::remove`], leaving any that
/// `claims` says another part owns (is, holds or is inside), with warnings.
fn discard(roots: &Roots, claims: &Owners<'_>, part: &str, paths: &[String]) {
    let mut cache = ParentCache::default();
    let mut outside = Vec::new();
    let mut engine = Vec::new();
    let mut others = Vec::new();
    for p in paths.iter().rev() {
        if let Some(conflict) = claims.conflict(part, p) {
            others.push(format!("{p}, {}", conflict.why()));
            continue;
        }
        match roots.remove(p, &mut cache) {
            Ok(Removal::Removed) => debug!("removed {p}"),
            Ok(Removal::Missing) => {}
            Ok(Removal::Outside) => outside.push(p.clone()),
            Ok(Removal::Engine(what)) => engine.push(format!("{p}, which is or holds {what}")),
            Err(e) => warn!("{e}"),
        }
    }
    warn_some(&outside, "left in place", "outside the instance");
    warn_some(&engine, "left in place", "the engine's, never a part's");
    warn_some(&others, "left in place", "another part's");
}

/// How the other parts' paths are looked up: scanned while that is cheap, indexed after.
///
/// A scan costs (paths checked) x (paths of the other parts) comparisons; making the index
/// costs about as much as a few scans of the whole state, and then every check is a few
/// lookups. So a run scans until it has spent its `budget` (a few whole-state scans' worth),
/// then makes the index once and keeps it in step with the state.
#[derive(Default)]
struct Lookup {
    claims: Option<Claims>,
    /// Comparisons a run may still spend scanning; `None` until first needed.
    budget: Option<usize>,
}

/// What the other parts than `part` own, to check `count` of its paths against.
fn owners_in<'a>(state: &'a State, lookup: &'a mut Lookup, part: &str, count: usize) -> Owners<'a> {
    if lookup.claims.is_none() {
        let all: usize = state.parts.values().map(|r| r.paths.len()).sum();
        let budget = lookup.budget.get_or_insert(8 * all + 65_536);
        let others = state.parts.iter().filter(|(p, _)| *p != part);
        let total: usize = others.clone().map(|(_, r)| r.paths.len()).sum();
        let cost = count.saturating_mul(total);
        if cost <= *budget {
            *budget -= cost;
            return Owners::Scan(
                others
                    .filter(|(_, r)| !r.paths.is_empty())
                    .map(|(p, r)| (p.as_str(), r.paths.as_slice()))
                    .collect(),
            );
        }
    }
    Owners::Index(lookup.claims.get_or_insert_with(|| claims_of(state)))
}

/// Which part owns each path the state records.
fn claims_of(state: &State) -> Claims {
    let mut claims = Claims::default();
    for (part, record) in &state.parts {
        claims.add(part, &record.paths);
    }
    claims
}

/// One warning per path for the first few, then one for the rest: a recipe may register a
/// million paths.
fn warn_some(paths: &[String], what: &str, why: &str) {
    const SHOWN: usize = 5;
    for p in paths.iter().take(SHOWN) {
        warn!("{what} {p}: {why}");
    }
    if paths.len() > SHOWN {
        warn!("{what} {} more paths: {why}", paths.len() - SHOWN);
    }
}

fn failure(part: &str, what: &str, e: &RecipeError) -> String {
    if e.panicked {
        format!(
            "part `{part}` failed: its recipe panicked during {what}: {}",
            e.message
        )
    } else {
        format!("part `{part}` failed during {what}: {}", e.message)
    }
}

/// The calling thread's side of a run: it owns the resolver and the state.
struct Runner<'r, 'c> {
    config: &'c Config,
    /// The outputs made visible to substitution, to skip republishing equal values (each
    /// publication clears the resolver's memo).
    published: HashMap<String, BTreeMap<String, String>>,
    registry: &'r Registry,
    instance: &'r Instance,
    prepared: &'r Prepared,
    resolver: Resolver<'c>,
    /// `[buildout]` as the views show it, until an output it reaches is published.
    buildout: Option<Arc<BTreeMap<String, String>>>,
    /// The sections `[buildout]`'s values reach (computed once): only an output of one of
    /// them can change `[buildout]`, so only such an output makes it be read again (reading
    /// it after every part's outputs cost the square of the number of parts).
    buildout_reach: Option<foldhash::HashSet<String>>,
    state: State,
    file: Option<StateFile>,
    summary: Summary,
    /// The parts running, with the action and reason they were started for.
    doing: HashMap<String, (Action, Reason)>,
    cancel: &'r AtomicBool,
    /// Set with `cancel` by SIGTERM or a second Ctrl-C: running recipes are asked to stop.
    stop: Option<&'static AtomicBool>,
    /// Kept parts whose records were refreshed without a save yet.
    stale: bool,
    /// Whether the user was told that Ctrl-C is being honoured.
    told_interrupt: bool,
    /// Whether a job has run in this run (so the files a plan saw may have changed).
    ran: bool,
    /// Where jobs go to the worker threads: (part index, part, job); `None` once the run
    /// is over.
    queue: Option<mpsc::Sender<(usize, String, Job<'c>)>>,
    /// Worker threads started so far (at most `jobs`).
    workers: usize,
    /// Which part owns each recorded path: scanned, or indexed once scans cost too much
    /// (then kept in step with the state).
    lookup: Lookup,
    /// The recorded paths of parts uninstalled first that this run installs again: their
    /// install may replace those (the `owns` callback).
    reinstalled: HashMap<String, Vec<String>>,
    /// What each part prepared before the installs published: added to its install's
    /// outputs (those of the install win).
    prepared_outputs: HashMap<String, BTreeMap<String, String>>,
}

/// What starting a part led to.
enum Begin<'c> {
    /// Unchanged, no update hook: done already.
    Kept,
    Job(Job<'c>),
    /// Uninstall first, then this install: a reinstall only found needed at run time (a
    /// dependency published other outputs than the recorded ones).
    Reinstall(Job<'c>, Box<Job<'c>>),
    /// Its options do not resolve (e.g. an output nobody published).
    ConfigError(config::Error),
}

impl<'c> Runner<'_, 'c> {
    /// Records `part` in the state (and in the claims, if made).
    fn remember(&mut self, part: &str, record: PartRecord) {
        if let Some(claims) = &mut self.lookup.claims {
            claims.add(part, &record.paths);
        }
        self.state.insert(part, record);
    }

    /// Drops `part` from the state (and its claims).
    fn forget(&mut self, part: &str) {
        if let Some(record) = self.state.remove(part) {
            if let Some(claims) = &mut self.lookup.claims {
                claims.remove(part, &record.paths);
            }
        }
    }

    /// Removes paths of `part`, never one another part owns.
    fn discard(&mut self, part: &str, paths: &[String]) {
        if paths.is_empty() {
            return;
        }
        let instance = self.instance;
        let owners = owners_in(&self.state, &mut self.lookup, part, paths.len());
        discard(&instance.roots, &owners, part, paths);
    }

    /// Fails an install or update that registered a path another part owns (recorded, or
    /// registered earlier in this run): what it registered is removed, except that path.
    fn vet(&mut self, part: &str, outcome: Outcome) -> Outcome {
        let (paths, fresh) = match &outcome {
            Outcome::Installed(record) => (&record.paths, 0),
            Outcome::Updated { record, fresh } => (&record.paths, *fresh),
            _ => return outcome,
        };
        if paths.len() <= fresh {
            return outcome;
        }
        let owners = owners_in(&self.state, &mut self.lookup, part, paths.len() - fresh);
        let found = paths[fresh..]
            .iter()
            .find_map(|p| owners.conflict(part, p).map(|c| (p, c)));
        let Some((path, conflict)) = found else {
            return outcome;
        };
        let message = format!("part `{part}` registered {path}, {}", conflict.why());
        match outcome {
            Outcome::Installed(record) => Outcome::InstallFailed {
                message,
                paths: record.paths,
            },
            Outcome::Updated { record, .. } => Outcome::UpdateFailed {
                message,
                paths: record.paths,
            },
            other => other,
        }
    }

    fn save(&mut self) -> Result<(), StateError> {
        self.state.reorder(self.prepared.parts.order());
        match &mut self.file {
            Some(f) => {
                self.summary.state_written |= f.save(&self.state)?;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Adds `part`'s job, just finished, to the summary, with the action and reason it was
    /// started for.
    fn report(&mut self, part: &str, changed: bool) {
        let (action, reason) = self
            .doing
            .remove(part)
            .unwrap_or((Action::Install, Reason::New));
        self.summary.parts.push(PartReport {
            part: part.to_string(),
            action,
            reason,
            changed,
        });
    }

    /// `part`'s resolved options, without the outputs published for it (an unchanged
    /// part's recorded ones, what it prepared): `${part:name}` elsewhere sees those, its
    /// recipe gets only its options.
    fn options_of(&mut self, part: &str) -> Result<BTreeMap<String, String>, config::Error> {
        let mut options = texts(self.resolver.section(part)?);
        if let Some(outputs) = self.published.get(part) {
            options.retain(|k, _| !outputs.contains_key(k));
        }
        Ok(options)
    }

    fn publish(&mut self, part: &str, outputs: &BTreeMap<String, String>) {
        let seen = self.published.entry(part.to_string()).or_default();
        for (k, v) in outputs {
            if seen.get(k) != Some(v) {
                self.resolver.set_output(part, k, Value::Str(v.clone()));
                seen.insert(k.clone(), v.clone());
                let resolver = &mut self.resolver;
                let reach = self
                    .buildout_reach
                    .get_or_insert_with(|| resolver.sections_reached("buildout"));
                if reach.contains(part) {
                    self.buildout = None;
                }
            }
        }
    }

    /// The frozen view a job of `part` gets, of the config and the outputs published so far.
    fn view(&mut self, part: &str, options: BTreeMap<String, String>) -> View<'c> {
        View::new(part, options, self.snapshot())
    }

    /// The view of an uninstall job, called with the `recorded` options.
    fn uninstall_view(&mut self, part: &str, recorded: BTreeMap<String, String>) -> View<'c> {
        View::recorded(part, recorded, self.snapshot())
    }

    /// What the views made now share (`[buildout]` resolved again only when it may change).
    fn snapshot(&mut self) -> Snapshot<'c> {
        let resolver = &mut self.resolver;
        let buildout = self
            .buildout
            .get_or_insert_with(|| Arc::new(view::buildout_texts(resolver)))
            .clone();
        Snapshot {
            buildout,
            config: self.config,
            outputs: self.resolver.outputs(),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The recipe that uninstalls a recorded part: the one its recorded `recipe` option
    /// names. If it cannot be loaded any more, the engine still removes the part's paths.
    fn uninstaller(&self, part: &str, record: &PartRecord) -> Option<Recipe> {
        if let Some((recipe, identity)) = self.prepared.recipes.get(part) {
            if record.recipe.as_ref() == Some(identity) {
                return Some(recipe.clone());
            }
        }
        let name = record.options.get("recipe")?;
        recipe_to_uninstall(self.registry, part, name)
    }

    /// Queues a job, starting a worker thread for it unless `jobs` are running already.
    /// Workers live for the whole run and take jobs from one queue: starting a thread per
    /// job costs more than a small `update`.
    fn dispatch<'s>(
        &mut self,
        scope: &'s std::thread::Scope<'s, '_>,
        worker: &'s Worker<'_>,
        queue: &'s Mutex<mpsc::Receiver<(usize, String, Job<'c>)>>,
        index: usize,
        part: String,
        job: Job<'c>,
    ) where
        'c: 's,
    {
        if let Some(tx) = &self.queue {
            // The workers hold the receiver until the queue closes at the end of the run.
            let _ = tx.send((index, part, job));
        }
        if self.workers < self.instance.jobs {
            self.workers += 1;
            scope.spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((index, part, job)) = next else { break };
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        worker.run(&part, job)
                    }))
                    .unwrap_or_else(|_| Outcome::InstallFailed {
                        message: format!("part `{part}` failed: internal error in rbuildout"),
                        paths: Vec::new(),
                    });
                    // The receiver lives until every job is done, so this cannot fail.
                    let _ = worker.tx.send((index, part, outcome));
                }
            });
        }
    }

    /// Waits until a job finishes, saying once when Ctrl-C arrives.
    fn wait(&mut self, rx: &mpsc::Receiver<(usize, String, Outcome)>) -> (usize, String, Outcome) {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(done) => {
                    self.ran = true;
                    return done;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.cancelled() && !self.told_interrupt {
                        // SIGTERM (or a second Ctrl-C) also asks running recipes to stop.
                        let stopping = self.stop.is_some_and(|stop| stop.load(Ordering::Relaxed));
                        if stopping {
                            warn!(
                                "interrupted: running parts were asked to stop, starting no new one"
                            );
                        } else {
                            warn!("interrupted: letting running parts finish, starting no new one");
                        }
                        self.told_interrupt = true;
                    }
                }
                // The runner holds a sender through the worker, so the channel never closes.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    unreachable!("the run's event channel closed while jobs were running")
                }
            }
        }
    }

    /// What `part` needs now that its dependencies are done. The decision is
    /// [`plan::decide`]'s, made when planning ([`prepare`], what `rbuildout plan` shows);
    /// it is made again only when the part's options (or `[buildout]`) now differ from the
    /// ones it was planned with, because a dependency published other outputs than the
    /// recorded ones, or when a part to keep may have lost a path to a job that ran since.
    fn decide(
        &mut self,
        part: &str,
        recipe: &Recipe,
        identity: &RecipeRecord,
        options: &BTreeMap<String, String>,
    ) -> (Action, Reason) {
        let buildout = self.snapshot().buildout;
        let (planned, step) = &self.prepared.planned[part];
        let planned_buildout = &self.prepared.buildout;
        let step = &self.prepared.plan.parts[*step];
        // A part found unchanged when planning may have lost a path since, to a part that
        // ran before it (a release switch takes what was written through `bin ->
        // code/current/bin`): then it is looked at again.
        let recheck = step.action == Action::Keep && self.ran;
        if planned == options
            && (Arc::ptr_eq(&buildout, planned_buildout) || buildout == *planned_buildout)
            && !recheck
        {
            return (step.action, step.reason.clone());
        }
        let wanted = Wanted {
            name: part.to_string(),
            recipe: identity.clone(),
            options: options.clone(),
            buildout,
            has_update: recipe.has_update(),
        };
        let roots = &self.instance.roots;
        plan::decide(self.state.parts.get(part), &wanted, &|paths| {
            roots.first_missing(paths)
        })
    }

    fn begin(&mut self, part: &str) -> Begin<'c> {
        let span = info_span!("part", part = %part);
        let _entered = span.enter();
        let options = match self.options_of(part) {
            Ok(options) => options,
            Err(e) => return Begin::ConfigError(e),
        };
        let (recipe, identity) = self.prepared.recipes[part].clone();
        let (action, reason) = self.decide(part, &recipe, &identity, &options);
        if matches!(action, Action::Keep | Action::Update) {
            // Same code, but the library file was replaced (e.g. rebuilt identically):
            // record its new stamp so the next run need not hash it again.
            if let Some(r) = self.state.parts.get_mut(part) {
                if r.recipe.as_ref() != Some(&identity) {
                    r.recipe = Some(identity.clone());
                    self.stale = true;
                }
            }
        }
        // A planned reinstall's record went in the uninstall phase: it installs now.
        if action == Action::Keep {
            // Only the outputs of a kept part are needed: its record (a million paths, it
            // may be) is not copied.
            if let Some(outputs) = self.state.parts.get(part).map(|r| r.outputs.clone()) {
                self.publish(part, &outputs);
                info!(action = "keep", "unchanged");
                self.summary.kept.push(part.to_string());
                self.summary.parts.push(PartReport {
                    part: part.to_string(),
                    action: Action::Keep,
                    reason,
                    changed: false,
                });
                return Begin::Kept;
            }
        }
        let record = self.state.parts.get(part).cloned();
        match (action, record) {
            (Action::Update, Some(record)) => {
                info!(action = "update", "updating");
                self.doing
                    .insert(part.to_string(), (Action::Update, reason));
                Begin::Job(Job::Update {
                    recipe,
                    view: self.view(part, options),
                    record,
                })
            }
            (Action::Reinstall, Some(record)) => {
                info!(action = "reinstall", reason = %reason, "reinstalling");
                self.doing
                    .insert(part.to_string(), (Action::Reinstall, reason.clone()));
                let owned = record.paths.clone();
                let uninstall = Job::Uninstall {
                    recipe: self.uninstaller(part, &record),
                    view: self.uninstall_view(part, record.options.clone()),
                    record,
                };
                Begin::Reinstall(
                    uninstall,
                    Box::new(Job::Install {
                        recipe,
                        identity,
                        view: self.view(part, options),
                        owned,
                    }),
                )
            }
            _ => {
                // A reinstall planned before the run was uninstalled first (and said so),
                // its reason kept.
                if self.doing.contains_key(part) {
                    debug!("installing");
                } else {
                    info!(action = "install", "installing");
                    self.doing
                        .insert(part.to_string(), (Action::Install, reason));
                }
                Begin::Job(Job::Install {
                    recipe,
                    identity,
                    view: self.view(part, options),
                    owned: self.reinstalled.remove(part).unwrap_or_default(),
                })
            }
        }
    }

    /// The first phase of a run, as zc.buildout creates every part's recipe before it
    /// uninstalls or installs anything: in install order, an unchanged part's recorded
    /// outputs are published, and a part to install whose recipe has `prepare` is prepared,
    /// what it publishes visible at once. A recipe that reads a part still to be prepared
    /// (zc.buildout creates that part's recipe first) is prepared again after that part.
    /// A part whose options do not resolve yet (they refer to an output only an install
    /// publishes) is left to its install. A failing `prepare` fails the run before anything
    /// is touched.
    fn prepare_all(&mut self, worker: &Worker<'_>) -> Result<(), RunError> {
        let prepared = self.prepared;
        let mut pending = HashSet::new();
        for part in &prepared.order {
            let Some((recipe, _)) = prepared.recipes.get(part) else {
                continue;
            };
            let action = prepared.plan.parts[prepared.planned[part].1].action;
            match action {
                Action::Keep | Action::Update => {
                    if let Some(outputs) = self.state.parts.get(part).map(|r| r.outputs.clone()) {
                        self.publish(part, &outputs);
                    }
                }
                _ if recipe.has_prepare() => {
                    pending.insert(part.clone());
                }
                _ => {}
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        for part in &prepared.order {
            if self.cancelled() {
                return Err(RunError::Interrupted(prepared.order.len()));
            }
            if pending.contains(part) {
                self.prepare_part(worker, part, &mut pending, &mut Vec::new())?;
            }
        }
        Ok(())
    }

    /// Prepares `part` (see [`prepare_all`](Runner::prepare_all)): the parts it reads that
    /// are still to be prepared first, then it again. `stack`: the parts whose preparing led
    /// here, which are not prepared first again.
    fn prepare_part(
        &mut self,
        worker: &Worker<'_>,
        part: &str,
        pending: &mut HashSet<String>,
        stack: &mut Vec<String>,
    ) -> Result<(), RunError> {
        let read = self.prepare_once(worker, part, pending)?;
        let first: Vec<String> = read
            .into_iter()
            .filter(|p| p != part && !stack.iter().any(|s| s == p))
            .collect();
        if !first.is_empty() {
            stack.push(part.to_string());
            for other in &first {
                if pending.contains(other) {
                    self.prepare_part(worker, other, pending, stack)?;
                }
            }
            stack.pop();
            self.prepare_once(worker, part, pending)?;
        }
        pending.remove(part);
        Ok(())
    }

    /// One `prepare` call of `part`: its outputs published, and the parts still to be
    /// prepared that it read. Nothing when its options do not resolve yet.
    fn prepare_once(
        &mut self,
        worker: &Worker<'_>,
        part: &str,
        pending: &HashSet<String>,
    ) -> Result<Vec<String>, RunError> {
        let Ok(options) = self.options_of(part) else {
            return Ok(Vec::new());
        };
        let (recipe, _) = &self.prepared.recipes[part];
        let view = self.view(part, options.clone());
        let host = PrepareHost {
            job: JobHost {
                view: &view,
                nested: worker.nested,
            },
            pending,
            read: Mutex::new(Vec::new()),
        };
        let result = info_span!("part", part = %part).in_scope(|| {
            debug!("preparing");
            worker.call_with(part, &view, &host, &[], |c| recipe.prepare(c))
        });
        let read = host.read.into_inner().unwrap_or_else(|e| e.into_inner());
        let result = result.map_err(|e| RunError::Failed(vec![failure(part, "prepare", &e)]))?;
        check_outputs(part, &result.outputs, &options).map_err(|m| RunError::Failed(vec![m]))?;
        let outputs: BTreeMap<String, String> = result.outputs.into_iter().collect();
        self.publish(part, &outputs);
        self.prepared_outputs.insert(part.to_string(), outputs);
        Ok(read)
    }

    fn go<'s>(
        &mut self,
        scope: &'s std::thread::Scope<'s, '_>,
        worker: &'s Worker<'_>,
        rx: &mpsc::Receiver<(usize, String, Outcome)>,
        queue: &'s Mutex<mpsc::Receiver<(usize, String, Job<'c>)>>,
    ) -> Result<Summary, RunError>
    where
        'c: 's,
    {
        let prepared = self.prepared;
        let order = &prepared.order;
        let parts = &prepared.parts;
        let mut failures = Vec::new();

        // zc.buildout creates every part's recipe before it uninstalls or installs anything.
        self.prepare_all(worker)?;

        // Uninstalls first, one at a time, in reverse of the old install order.
        for step in &prepared.plan.uninstall {
            if self.cancelled() {
                return Err(RunError::Interrupted(order.len()));
            }
            let Some(record) = self.state.parts.get(&step.part).cloned() else {
                continue;
            };
            // A changed part is uninstalled now and installed in its turn: one reinstall.
            let action = if prepared.recipes.contains_key(&step.part) {
                "reinstall"
            } else {
                "uninstall"
            };
            info_span!("part", part = %step.part)
                .in_scope(|| info!(action, reason = %step.reason, "uninstalling"));
            let recipe = self.uninstaller(&step.part, &record);
            let view = self.uninstall_view(&step.part, record.options.clone());
            let job = Job::Uninstall {
                recipe,
                record,
                view,
            };
            self.dispatch(scope, worker, queue, usize::MAX, step.part.clone(), job);
            let (_, part, outcome) = self.wait(rx);
            match outcome {
                Outcome::Uninstalled(paths) => {
                    self.discard(&part, &paths);
                    if prepared.recipes.contains_key(&part) {
                        self.reinstalled.insert(part.clone(), paths);
                        self.doing
                            .insert(part.clone(), (Action::Reinstall, step.reason.clone()));
                    } else {
                        self.summary.parts.push(PartReport {
                            part: part.clone(),
                            action: Action::Uninstall,
                            reason: step.reason.clone(),
                            changed: true,
                        });
                    }
                    self.forget(&part);
                    self.save()?;
                    self.summary.uninstalled.push(part);
                }
                Outcome::UninstallFailed(message) | Outcome::InstallFailed { message, .. } => {
                    failures.push(message);
                    break;
                }
                Outcome::Installed(_) | Outcome::Updated { .. } | Outcome::UpdateFailed { .. } => {
                    unreachable!("an uninstall job only uninstalls")
                }
            }
        }
        if !failures.is_empty() {
            return Err(RunError::Failed(failures));
        }

        // Parts this run does not handle (`install PART...`) keep their outputs visible.
        let others: Vec<(String, BTreeMap<String, String>)> = self
            .state
            .parts
            .iter()
            .filter(|(p, _)| !prepared.recipes.contains_key(*p) && self.config.has_section(p))
            .map(|(p, r)| (p.clone(), r.outputs.clone()))
            .collect();
        for (part, outputs) in others {
            self.publish(&part, &outputs);
        }

        // Then every part once its dependencies are done, up to `jobs` at a time.
        let mut handled = vec![false; parts.order().len()];
        for i in order.iter().filter_map(|p| parts.index(p)) {
            handled[i] = true;
        }
        let mut schedule = Schedule::new(parts, |i| handled[i]);
        let mut pending: HashMap<usize, Job<'c>> = HashMap::new();
        let mut running = 0usize;
        let mut stop = false;
        let mut interrupted = false;
        let mut config_error = None;
        let jobs = self.instance.jobs;
        loop {
            // Start what can start; a kept part is done at once and may free its dependents.
            while !stop && running < jobs {
                let Some(i) = schedule.peek() else { break };
                if self.cancelled() {
                    stop = true;
                    interrupted = true;
                    break;
                }
                schedule.start(i);
                let part = parts.order()[i].clone();
                match self.begin(&part) {
                    Begin::Kept => schedule.finish(i),
                    Begin::Job(job) => {
                        running += 1;
                        self.dispatch(scope, worker, queue, i, part, job);
                    }
                    Begin::Reinstall(uninstall, install) => {
                        pending.insert(i, *install);
                        running += 1;
                        self.dispatch(scope, worker, queue, i, part, uninstall);
                    }
                    Begin::ConfigError(e) => {
                        schedule.fail(i);
                        config_error = Some(e);
                        stop = true;
                    }
                }
            }
            if running == 0 {
                break;
            }
            let (i, part, outcome) = self.wait(rx);
            running -= 1;
            let outcome = self.vet(&part, outcome);
            match outcome {
                Outcome::Installed(mut record) => {
                    if let Some(prepared) = self.prepared_outputs.remove(&part) {
                        for (k, v) in prepared {
                            record.outputs.entry(k).or_insert(v);
                        }
                    }
                    self.publish(&part, &record.outputs);
                    self.remember(&part, record);
                    self.save()?;
                    schedule.finish(i);
                    self.report(&part, true);
                    self.summary.installed.push(part);
                }
                Outcome::Updated { record, .. } => {
                    self.publish(&part, &record.outputs);
                    // Most updates change nothing; rendering the state to find that out
                    // costs as much as the update for a large instance.
                    let changed = self.state.parts.get(&part) != Some(&record);
                    if changed {
                        self.remember(&part, record);
                        self.save()?;
                    }
                    schedule.finish(i);
                    self.report(&part, changed);
                    self.summary.updated.push(part);
                }
                Outcome::Uninstalled(paths) => {
                    self.discard(&part, &paths);
                    self.forget(&part);
                    self.save()?;
                    if let Some(install) = pending.remove(&i) {
                        if self.cancelled() {
                            stop = true;
                            interrupted = true;
                        } else if !stop {
                            running += 1;
                            self.dispatch(scope, worker, queue, i, part, install);
                        }
                    }
                }
                Outcome::InstallFailed { message, paths } => {
                    self.discard(&part, &paths);
                    failures.push(message);
                    schedule.fail(i);
                    stop = true;
                }
                Outcome::UninstallFailed(message) => {
                    failures.push(message);
                    schedule.fail(i);
                    stop = true;
                }
                Outcome::UpdateFailed { message, paths } => {
                    self.discard(&part, &paths);
                    self.forget(&part);
                    self.save()?;
                    failures.push(message);
                    schedule.fail(i);
                    stop = true;
                }
            }
        }

        // Keep the recorded order in step with the config even when nothing else changed.
        if std::mem::take(&mut self.stale) {
            self.save()?;
        }
        let mut reordered = State {
            order: self.state.order.clone(),
            ..State::default()
        };
        reordered.reorder(prepared.parts.order());
        if reordered.order != self.state.order {
            self.save()?;
        }
        if let Some(e) = config_error {
            return Err(RunError::Config(e));
        }
        if !failures.is_empty() {
            return Err(RunError::Failed(failures));
        }
        let left = schedule.left();
        if interrupted || self.cancelled() && left > 0 {
            return Err(RunError::Interrupted(left));
        }
        Ok(std::mem::take(&mut self.summary))
    }
}
