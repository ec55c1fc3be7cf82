//! The Python recipe bridge's driver (docs/python-recipes.md): one process of the target
//! interpreter that creates zc.buildout recipes (`Recipe(buildout, name, options)`) and
//! calls their `install` and `update`, reading other sections' options through rbuildout
//! as it goes. The protocol is described at the top of `bridge.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use rbuildout_plugin_api::tracing::Level;
use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result};
use serde::Deserialize;

use crate::lines::{LineProcess, NoAnswer};

/// `python`: a zc.buildout recipe of a Python distribution, run through the driver. The
/// part's `recipe` names it, `dist[:entry]` or `python:dist[:entry]` (docs/python-recipes.md).
pub struct Bridged;

impl Recipe for Bridged {
    const UPDATE: bool = true;
    const UNINSTALL: bool = true;
    const PREPARE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        serve(options, ctx, Op::Install)
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        serve(options, ctx, Op::Update)
    }

    /// The distribution's `zc.buildout.uninstall` entry point of the recipe's name, if it
    /// has one, with the options the part was installed with.
    fn uninstall(options: &Options, ctx: &Context) -> Result<()> {
        serve(options, ctx, Op::Uninstall)
    }

    /// zc.buildout creates every part's recipe before installing any: the recipe is
    /// created now (its distribution installed first) and what its `__init__` set is
    /// published; the install that follows in the part's turn uses that recipe object.
    fn prepare(options: &Options, ctx: &Context) -> Result<()> {
        serve(options, ctx, Op::Prepare)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Install,
    Update,
    Uninstall,
    Prepare,
}

/// The one driver of the process, with the interpreter it runs; the bridged parts of a run
/// take turns on it (one at a time). Ended by [`run_end`].
static RUNNING: Mutex<Option<(PathBuf, Driver)>> = Mutex::new(None);

/// The parts whose recipe the running driver created in `prepare`, by buildout directory
/// and part, with the options it was created with and whether it has an `update`: their
/// install uses that recipe object when the options are still those. Emptied with the
/// driver.
type Created = std::collections::HashMap<(PathBuf, String), (BTreeMap<String, String>, bool)>;
static CREATED: Mutex<Option<Created>> = Mutex::new(None);

/// `dist:entry` of the part's `recipe` option (`python:` taken off, `:default` added).
fn recipe_spec(options: &Options) -> Result<(String, String)> {
    let text = options
        .get("recipe")
        .ok_or_else(|| Error::new("the part has no `recipe` option"))?
        .trim();
    let text = text.strip_prefix("python:").unwrap_or(text);
    let (dist, entry) = text.split_once(':').unwrap_or((text, "default"));
    if dist.is_empty() || entry.is_empty() {
        return Err(Error::new(format!(
            "option `recipe`: `{text}` is not `distribution[:entry]`"
        )));
    }
    Ok((dist.to_owned(), entry.to_owned()))
}

/// Where the bridge remembers that a recipe has no `update`: a file named by the recipe
/// and its part's lock entry (the distributions it was installed with), in the download
/// cache. `None` when the part has no lock entry yet or a develop distribution in it (whose
/// code may change under the same entry).
fn no_update_marker(ctx: &Context, recipe: &str, cache: &Path) -> Option<PathBuf> {
    let lock = crate::lockfile::read(&crate::lockfile::path(ctx)).ok()?;
    let entry = lock.parts.get(ctx.part())?;
    if entry.dist.iter().any(|d| d.url.starts_with("develop:")) {
        return None;
    }
    let key = crate::util::sha256_hex(format!("{recipe}\n{}\n", entry.inputs).as_bytes());
    Some(
        cache
            .join("python-recipes")
            .join(format!("{key}.no-update")),
    )
}

fn serve(options: &Options, ctx: &Context, op: Op) -> Result<()> {
    let (dist, entry) = recipe_spec(options)?;
    let recipe = format!("{dist}:{entry}");
    // The recipe's distribution with its requirements and zc.buildout (recipes import it),
    // installed as an egg part's `eggs` are: locked, hashed, shared.
    let eggs = format!("{dist}\nzc.buildout");
    let egg_options = Options::new(vec![("eggs", eggs.as_str())], ctx.buildout_directory());
    // zc.buildout runs recipes in its own interpreter: `[buildout] python` here.
    let settings = crate::Settings::read(&egg_options, ctx)?;
    // An unchanged part whose recipe has no `update`: nothing to run (zc.buildout would
    // create the recipe and find no update), so no interpreter starts.
    let marker = no_update_marker(ctx, &recipe, &settings.cache);
    if op == Op::Update && marker.as_ref().is_some_and(|m| m.is_file()) {
        return Ok(());
    }
    let folders: Vec<PathBuf> = crate::zc::working_set(&egg_options, ctx)?
        .into_iter()
        .map(|d| d.folder)
        .collect();
    let interp = crate::interp::query(&settings.python, &settings.cache)?;
    let program = interp.program().to_path_buf();
    let values: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let answers = CtxAnswers(ctx);
    let mut driver = RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut created = CREATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if driver.as_ref().is_none_or(|(p, _)| *p != program) {
        created.take();
        *driver = Some((
            program.clone(),
            Driver::start(&program, ctx.buildout_directory())?,
        ));
    }
    let Some((_, d)) = driver.as_mut() else {
        unreachable!("the driver was just started")
    };
    let part = ctx.part();
    let load = Load {
        part,
        recipe: &recipe,
        options: &values,
        paths: &folders,
    };
    if op == Op::Uninstall {
        d.uninstall(&load, &answers)?;
        return Ok(());
    }
    let key = (ctx.buildout_directory().to_path_buf(), part.to_owned());
    let made = created.get_or_insert_with(Default::default);
    let init = match made.remove(&key) {
        // Created in `prepare` with these options: what it set was published then.
        Some((made_with, has_update)) if op != Op::Prepare && made_with == values => Reply {
            has_update,
            ..Reply::default()
        },
        _ => d.init(&load, &answers)?,
    };
    if op == Op::Prepare {
        made.insert(key, (values.clone(), init.has_update));
    }
    drop(created);
    if !init.has_update
        && let Some(marker) = no_update_marker(ctx, &recipe, &settings.cache)
        && let Some(dir) = marker.parent()
    {
        // Best effort: without it, the next run asks the recipe again.
        let _ =
            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&marker, recipe.as_bytes()));
    }
    let reply = match op {
        Op::Install => d.install(part, &answers)?,
        Op::Update | Op::Uninstall => d.update(part, &answers)?,
        Op::Prepare => Reply::default(),
    };
    drop(driver);
    // What the recipe set in its options (in `__init__` or later) is its outputs, for
    // `${part:option}` elsewhere; the options the part was given stay the config's. A name
    // `${part:name}` could not reach (zc.buildout allows any) is not published.
    // Each once: what `__init__` set, as the later answer has it if it has it.
    let mut set = init.options;
    set.extend(reply.options);
    for (name, value) in &set {
        if !values.contains_key(name) {
            if rbuildout_plugin_api::is_substitution_name(name) {
                ctx.publish(name, value)?;
            } else {
                ctx.debug(&format!("the recipe set the option {name:?}, which is not published: ${{part:name}} cannot name it"));
            }
        }
    }
    // Relative ones are relative to the buildout directory, as `register` takes them.
    for path in &reply.paths {
        ctx.register(Path::new(path))?;
    }
    Ok(())
}

/// The egg plugin's end of a run, for the bridge: the driver ends (its stdin closes).
pub fn run_end() {
    forget_created();
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
}

/// The end of any run, a nested build's too: the recipes created in its `prepare` are not
/// used again (the driver, which may live on for the extensions, keeps recipe objects by
/// part name, and a nested build may have parts of the same names).
pub fn forget_created() {
    CREATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
}

/// Runs `f` on the run's driver of the interpreter `program`, started in `directory` if
/// it is not running yet: what the extensions (`crate::extensions`) ask of it.
pub(crate) fn with_driver<T>(
    program: &Path,
    directory: &Path,
    f: impl FnOnce(&mut Driver) -> Result<T>,
) -> Result<T> {
    let mut driver = RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if driver.as_ref().is_none_or(|(p, _)| p != program) {
        forget_created();
        *driver = Some((program.to_path_buf(), Driver::start(program, directory)?));
    }
    let Some((_, d)) = driver.as_mut() else {
        unreachable!("the driver was just started")
    };
    f(d)
}

/// The driver's questions answered from the part's call.
pub(crate) struct CtxAnswers<'a>(pub(crate) &'a Context<'a>);

impl Answers for CtxAnswers<'_> {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        self.0.option(section, option)
    }
    fn names(&self, section: &str) -> Option<Vec<String>> {
        self.0.option_names(section)
    }
    fn eggs(&self, specs: &[String]) -> std::result::Result<Vec<PathBuf>, String> {
        let ctx = self.0;
        let eggs = specs.join("\n");
        let options = Options::new(vec![("eggs", eggs.as_str())], ctx.buildout_directory());
        // Its own lock entry, so that the part's (the recipe's distribution) stays as it is.
        let key = format!("{}:eggs", ctx.part());
        crate::for_python_recipe(&key, || crate::zc::working_set(&options, ctx))
            .map(|set| set.into_iter().map(|d| d.folder).collect())
            .map_err(|e| e.message().to_owned())
    }

    fn log(&self, level: u32, message: &str) {
        let level = match level {
            1 => Level::ERROR,
            2 => Level::WARN,
            3 => Level::INFO,
            4 => Level::DEBUG,
            _ => Level::TRACE,
        };
        self.0.log(level, message);
    }
}

/// The driver, run as `python -I -S -c DRIVER`.
const DRIVER: &str = include_str!("bridge.py");

/// How long one request (a recipe's `__init__`, `install` or `update`) may take
/// (`RBUILDOUT_RECIPE_TIMEOUT`, seconds).
const TIMEOUT: Duration = Duration::from_secs(3600);

/// What the driver asks rbuildout while it serves a request.
pub trait Answers {
    /// A resolved option of any section, or `None` when it has none.
    fn option(&self, section: &str, option: &str) -> Option<String>;
    /// A section's option names in the config's order, or `None` when there is no such
    /// section.
    fn names(&self, section: &str) -> Option<Vec<String>>;
    /// A message of the recipe's (its logging, what it prints), at an ABI `LEVEL_*`.
    fn log(&self, level: u32, message: &str);
    /// Installs the distributions `specs` (requirements) that the recipe asked
    /// `zc.buildout.easy_install` for, and returns their folders, or why not.
    fn eggs(&self, specs: &[String]) -> std::result::Result<Vec<PathBuf>, String>;
}

/// The end of a request: the part's options as the recipe left them and the paths it
/// returned.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// After `init`: whether the recipe has an `update`.
    #[serde(default)]
    pub has_update: bool,
    /// After `extensions`: what they set, `[section, option, value, extension]` in order.
    #[serde(default)]
    pub edits: Vec<[String; 4]>,
    /// After `extensions`: what one did that the bridge cannot honour, naming it.
    #[serde(default)]
    pub refused: Option<String>,
}

/// One line from the driver.
#[derive(Deserialize)]
struct Message {
    get: Option<(String, String)>,
    names: Option<String>,
    log: Option<(u32, String)>,
    eggs: Option<Vec<String>>,
    ok: Option<Reply>,
    error: Option<String>,
    traceback: Option<String>,
}

/// What a request that creates or uninstalls a part's recipe names: the part, the recipe
/// (`dist:entry`), the part's options and its working set's folders (put on `sys.path`).
pub struct Load<'a> {
    pub part: &'a str,
    pub recipe: &'a str,
    pub options: &'a BTreeMap<String, String>,
    pub paths: &'a [PathBuf],
}

impl Load<'_> {
    fn request(&self, op: &str) -> serde_json::Value {
        serde_json::json!({
            "op": op, "part": self.part, "recipe": self.recipe, "options": self.options,
            "paths": self.paths,
        })
    }
}

pub struct Driver {
    process: LineProcess,
}

impl Driver {
    /// Starts the driver with the interpreter `program`, in `directory`.
    pub fn start(program: &Path, directory: &Path) -> Result<Driver> {
        let mut command = Command::new(program);
        command
            .args(["-I", "-S", "-c", DRIVER])
            .current_dir(directory);
        let timeout = std::env::var("RBUILDOUT_RECIPE_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(TIMEOUT, Duration::from_secs);
        let process = LineProcess::start(command, timeout)
            .map_err(|e| Error::new(format!("cannot run {}: {e}", program.display())))?;
        Ok(Driver { process })
    }

    /// Creates the part's recipe with its resolved options.
    pub fn init(&mut self, load: &Load, answers: &dyn Answers) -> Result<Reply> {
        self.serve(&load.request("init"), answers)
    }

    /// Calls the part's recipe's `install`.
    pub fn install(&mut self, part: &str, answers: &dyn Answers) -> Result<Reply> {
        self.serve(
            &serde_json::json!({ "op": "install", "part": part }),
            answers,
        )
    }

    /// Calls the `zc.buildout.uninstall` entry point named as the recipe's entry, if its
    /// distribution has one, with the part's recorded options.
    pub fn uninstall(&mut self, load: &Load, answers: &dyn Answers) -> Result<Reply> {
        self.serve(&load.request("uninstall"), answers)
    }

    /// Calls the `zc.buildout.extension` entry points of the distributions in `paths`
    /// (crate::extensions).
    pub fn extensions(
        &mut self,
        request: &serde_json::Value,
        answers: &dyn Answers,
    ) -> Result<Reply> {
        self.serve(request, answers)
    }

    /// Calls the part's recipe's `update`, if it has one.
    pub fn update(&mut self, part: &str, answers: &dyn Answers) -> Result<Reply> {
        self.serve(
            &serde_json::json!({ "op": "update", "part": part }),
            answers,
        )
    }

    fn serve(&mut self, request: &serde_json::Value, answers: &dyn Answers) -> Result<Reply> {
        self.process.send(&request.to_string());
        loop {
            let line = match self.process.receive() {
                Ok(line) => line,
                Err(NoAnswer::Timeout) => {
                    return Err(Error::new(format!(
                        "the Python recipe did not finish in {}s (RBUILDOUT_RECIPE_TIMEOUT)",
                        self.process.timeout().as_secs()
                    )));
                }
                Err(NoAnswer::Ended { status, tail }) => {
                    let status = status.map_or_else(|| "killed".to_owned(), |s| s.to_string());
                    return Err(Error::new(format!(
                        "the Python recipe bridge ended ({status}):\n{tail}"
                    )));
                }
            };
            let message: Message = serde_json::from_str(&line).map_err(|e| {
                Error::new(format!(
                    "unexpected message from the Python recipe bridge: {e}"
                ))
            })?;
            if let Some((section, option)) = message.get {
                let value = answers.option(&section, &option);
                self.process
                    .send(&serde_json::json!({ "value": value }).to_string());
            } else if let Some(section) = message.names {
                let value = answers.names(&section);
                self.process
                    .send(&serde_json::json!({ "value": value }).to_string());
            } else if let Some((level, text)) = message.log {
                answers.log(level, &text);
            } else if let Some(specs) = message.eggs {
                let answer = match answers.eggs(&specs) {
                    Ok(folders) => serde_json::json!({ "value": folders }),
                    Err(e) => serde_json::json!({ "error": e }),
                };
                self.process.send(&answer.to_string());
            } else if let Some(reply) = message.ok {
                return Ok(reply);
            } else if let Some(error) = message.error {
                if let Some(tb) = message.traceback {
                    answers.log(rbuildout_plugin_api::abi::LEVEL_DEBUG, tb.trim_end());
                }
                return Err(Error::new(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Sections as a config would give them, and what the recipe logged.
    #[derive(Default)]
    struct Config {
        sections: BTreeMap<String, BTreeMap<String, String>>,
        logged: RefCell<Vec<(u32, String)>>,
    }

    impl Answers for Config {
        fn option(&self, section: &str, option: &str) -> Option<String> {
            self.sections.get(section)?.get(option).cloned()
        }
        fn names(&self, section: &str) -> Option<Vec<String>> {
            Some(self.sections.get(section)?.keys().cloned().collect())
        }
        fn log(&self, level: u32, message: &str) {
            self.logged.borrow_mut().push((level, message.to_owned()));
        }
        fn eggs(&self, specs: &[String]) -> std::result::Result<Vec<PathBuf>, String> {
            Err(format!("no eggs here: {}", specs.join(", ")))
        }
    }

    /// A python with zc.buildout (the oracle CI installs), if the run has one.
    fn python() -> Option<PathBuf> {
        match std::env::var_os("RBUILDOUT_ZC_BUILDOUT") {
            Some(p) => Some(PathBuf::from(p)),
            None => {
                assert!(
                    std::env::var("RBUILDOUT_REQUIRE_ORACLE").as_deref() != Ok("1"),
                    "RBUILDOUT_REQUIRE_ORACLE=1 but RBUILDOUT_ZC_BUILDOUT is not set"
                );
                None
            }
        }
    }

    /// The site-packages of `python`: the driver runs with `-S`, so they are given as
    /// working-set folders, as the bridge gives a recipe's eggs.
    fn site_packages(python: &Path) -> PathBuf {
        let out = Command::new(python)
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ])
            .output()
            .unwrap();
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    }

    /// An installed distribution `name` 1.0 in `dir`: its `.dist-info` with `entry_points`
    /// and the module `name.py` holding `module`.
    fn write_dist(dir: &Path, name: &str, entry_points: &str, module: &str) {
        let info = dir.join(format!("{name}-1.0.dist-info"));
        std::fs::create_dir_all(&info).unwrap();
        std::fs::write(
            info.join("METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"),
        )
        .unwrap();
        std::fs::write(info.join("entry_points.txt"), entry_points).unwrap();
        std::fs::write(dir.join(format!("{name}.py")), module).unwrap();
    }

    /// A recipe distribution `tinyrecipe` in `dir`, with an entry point per behaviour.
    fn write_recipe(dir: &Path) {
        write_dist(
            dir,
            "tinyrecipe",
            "[zc.buildout]\ndefault = tinyrecipe:Recipe\nfails = tinyrecipe:Fails\nlazy = tinyrecipe:Lazy\n",
            r#"
import logging, os
import zc.buildout

class Recipe:
    def __init__(self, buildout, name, options):
        self.options = options
        options["location"] = os.path.join(buildout["buildout"]["directory"], "parts", name)
        options.setdefault("greeting", "hello")
        self.port = buildout["db"]["port"]
        self.missing = buildout["db"].get("nothing", "none")
        self.db_names = sorted(buildout["db"].keys())
        self.has_other = "other" in buildout
        self.verbose = options.query_bool("verbose", "false")

    def install(self):
        os.makedirs(self.options["location"])
        path = os.path.join(self.options["location"], "out.txt")
        with open(path, "w") as f:
            f.write("%s %s %s %s %s" % (self.options["greeting"], self.port, self.missing,
                                         ",".join(self.db_names), self.has_other))
        print("wrote", path)
        logging.getLogger("tinyrecipe").warning("careful")
        return self.options.created(path, self.options["location"])

    def update(self):
        return ()

class Lazy:
    def __init__(self, buildout, name, options):
        import sys
        self.options = options
        loaded = [m for m in ("setuptools", "pip", "pkg_resources") if m in sys.modules]
        options["loaded"] = " ".join(loaded) or "none"

    def install(self):
        import pkg_resources
        self.options["pkg-resources"] = pkg_resources.__name__
        self.options["user-error"] = zc.buildout.UserError.__module__
        return ()

class Fails:
    def __init__(self, buildout, name, options):
        if "user" in options:
            raise zc.buildout.UserError("tinyrecipe needs no user")
        self.x = options["needed"]
"#,
        );
    }

    /// A section's options from `(name, value)` pairs.
    fn section(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The oracle's python, a scratch folder and `tinyrecipe` written in its `lib`; `None`
    /// when the run has no oracle.
    fn with_recipe() -> Option<(PathBuf, tempfile::TempDir, PathBuf)> {
        let python = python()?;
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        write_recipe(&lib);
        Some((python, dir, lib))
    }

    /// `import zc.buildout` costs a quarter of a second (setuptools, pip, pkg_resources):
    /// the driver runs zc.buildout's `__init__` only when a recipe uses something of it,
    /// and then a recipe sees what zc.buildout's own import gives (its pkg_resources).
    #[test]
    fn zc_buildouts_init_runs_only_when_a_recipe_uses_it() {
        let Some((python, dir, lib)) = with_recipe() else {
            return;
        };
        let mut config = Config::default();
        config.sections.insert(
            "buildout".into(),
            BTreeMap::from([("directory".into(), dir.path().display().to_string())]),
        );
        let mut driver = Driver::start(&python, dir.path()).unwrap();
        let paths = [lib, site_packages(&python)];
        let options = BTreeMap::from([("recipe".to_owned(), "tinyrecipe:lazy".to_owned())]);
        let load = Load {
            part: "lazy",
            recipe: "tinyrecipe:lazy",
            options: &options,
            paths: &paths,
        };
        let init = driver.init(&load, &config).unwrap();
        assert_eq!(init.options["loaded"], "none");
        let installed = driver.install("lazy", &config).unwrap();
        assert_eq!(
            installed.options["pkg-resources"],
            "zc.buildout._vendor.pkg_resources"
        );
        assert_eq!(installed.options["user-error"], "zc.buildout");
    }

    #[test]
    fn a_zc_buildout_recipe_is_created_installed_and_updated_through_the_driver() {
        let Some((python, dir, lib)) = with_recipe() else {
            return;
        };
        let mut config = Config::default();
        config.sections.insert(
            "buildout".into(),
            section(&[("directory", dir.path().to_str().unwrap())]),
        );
        config
            .sections
            .insert("db".into(), section(&[("port", "5432"), ("host", "h")]));
        let mut driver = Driver::start(&python, dir.path()).unwrap();
        let paths = [lib.clone(), site_packages(&python)];
        let options = section(&[("recipe", "tinyrecipe"), ("verbose", "yes")]);
        let load = |part, recipe, options, paths| Load {
            part,
            recipe,
            options,
            paths,
        };
        let init = driver
            .init(&load("app", "tinyrecipe", &options, &paths), &config)
            .unwrap();
        let location = dir.path().join("parts/app");
        // What `__init__` set is there for others to read.
        assert_eq!(
            init.options.get("location").map(String::as_str),
            location.to_str()
        );
        assert_eq!(init.options["greeting"], "hello");
        let installed = driver.install("app", &config).unwrap();
        assert_eq!(
            std::fs::read_to_string(location.join("out.txt")).unwrap(),
            "hello 5432 none host,port False"
        );
        assert_eq!(
            installed.paths,
            [
                location.join("out.txt").display().to_string(),
                location.display().to_string()
            ]
        );
        let logged = config.logged.borrow().clone();
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == 3 && m.starts_with("wrote ")),
            "{logged:?}"
        );
        assert!(logged.contains(&(2, "careful".to_owned())), "{logged:?}");
        assert!(driver.update("app", &config).unwrap().paths.is_empty());

        // A recipe's exception is the part's error; zc.buildout's UserError by its message
        // alone, anything else with its type, and the traceback in the log.
        let user = section(&[("user", "x")]);
        let err = driver
            .init(&load("bad", "tinyrecipe:fails", &user, &[]), &config)
            .unwrap_err();
        assert_eq!(err.message(), "tinyrecipe needs no user");
        let none = section(&[]);
        let err = driver
            .init(&load("bad", "tinyrecipe:fails", &none, &[]), &config)
            .unwrap_err();
        assert_eq!(err.message(), "MissingOption: Missing option: bad:needed");
        assert!(
            config
                .logged
                .borrow()
                .iter()
                .any(|(l, m)| *l == 4 && m.contains("Traceback")),
        );
        let err = driver
            .init(&load("none", "nosuchdist", &none, &[]), &config)
            .unwrap_err();
        assert_eq!(
            err.message(),
            "LookupError: the distribution nosuchdist is not installed"
        );
    }

    /// An extension's edits are what it set and the sections it added (substituted when
    /// added), not what it only read; its unloader reads the sections afresh.
    #[test]
    fn an_extensions_edits_are_what_it_set_and_added_not_what_it_read() {
        let Some(python) = python() else { return };
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        write_dist(
            &lib,
            "tinyext",
            "[zc.buildout.extension]\nx = tinyext:ext\n\
             [zc.buildout.unloadextension]\nx = tinyext:unload\n",
            r#"
import os

def ext(buildout):
    b = buildout["buildout"]
    assert b["executable"] and b["log-level"] == "INFO"
    assert sorted(buildout["db"].keys()) == ["host", "port"]
    buildout["db"].update({"port": "2", "host": buildout["db"]["host"]})
    buildout["new"] = {"a": "${db:port}", "b": "${:a}!"}
    b["parts"] = "x"
    b["parts"] = b["parts"] + " y"

def unload(buildout):
    with open(os.path.join(buildout["buildout"]["directory"], "unloaded"), "w") as f:
        f.write(buildout["db"]["port"])
"#,
        );
        let mut config = Config::default();
        let directory = dir.path().to_str().unwrap();
        config.sections.insert(
            "buildout".into(),
            section(&[("directory", directory), ("parts", "a")]),
        );
        config
            .sections
            .insert("db".into(), section(&[("port", "1"), ("host", "h")]));
        let mut driver = Driver::start(&python, dir.path()).unwrap();
        let request = serde_json::json!({
            "op": "extensions", "part": "buildout:extensions",
            "paths": [lib, site_packages(&python)], "offline": false, "newest": false,
        });
        let reply = driver.extensions(&request, &config).unwrap();
        let by = "tinyext (entry point x)";
        let edit = |s: &str, o: &str, v: &str| [s, o, v, by].map(str::to_owned);
        assert_eq!(reply.refused, None);
        assert_eq!(
            reply.edits,
            [
                edit("buildout", "parts", "x y"),
                edit("db", "port", "2"),
                edit("new", "a", "2"),
                edit("new", "b", "2!"),
            ]
        );
        let unload = serde_json::json!({ "op": "unload", "part": "buildout:extensions" });
        driver.extensions(&unload, &config).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("unloaded")).unwrap(),
            "1"
        );
    }
}
