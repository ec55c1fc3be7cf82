//! Finding and loading recipe plugins, and checking their ABI.
//!
//! A part's `recipe` names a plugin library ([`SearchPath`] finds it, SPEC §4.4). The
//! [`Registry`] opens each library once with `RTLD_NOW`, checks its descriptor (magic number,
//! ABI major, `struct_size`, UTF-8 names) and never unloads it: a plugin's code and static
//! data stay valid for the whole process. A [`Recipe`] is one entry of a plugin; calling it
//! marshals the part's options into the v1 ABI ([`rbuildout_plugin_api::abi`]) and collects
//! what the recipe reports through the host callbacks into a [`CallResult`].
//!
//! What a plugin can do wrong is contained here and reported against the part: a panic
//! (the SDK turns it into a status code; the plugin is then not called again), an error,
//! invalid UTF-8, a huge error message (cut), a call from a non-thread-safe plugin made
//! concurrently (calls are serialised). Only a crash (segfault, abort) takes the process down,
//! and then the crash handler of [`rbuildout_plugin_api::host::crash`] names the part, recipe and library first.
//!
//! Plugin logs are re-emitted under the `tracing` target `rbuildout::recipe` with `part` and
//! `plugin` fields, one level quieter than the plugin said (its `info` shows at `-v`, its
//! `debug` at `-vv`); warnings and errors keep their level.

mod builtin;
mod call;
mod develop;
mod digest;
mod library;
mod search;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

pub use builtin::Builtin;
pub use call::PROGRESS_TARGET;
pub use develop::develop;
pub use digest::file_stamp;
pub use library::plugin_info;
pub use search::SearchPath;

use library::Library;
use search::Source;

/// Why a plugin could not be found or loaded. Every message names the recipe or the file.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("recipe `{recipe}` is not a valid recipe name: {reason}")]
    BadName {
        recipe: String,
        reason: &'static str,
    },
    #[error(
        "recipe plugin `{name}` not found: no {file} in {}\n\
         hint: build it, or add its folder to buildout:plugin-path or RBUILDOUT_PLUGIN_PATH",
        searched.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        name: String,
        file: String,
        searched: Vec<PathBuf>,
    },
    /// A Python recipe with no native plugin (boxed: it is the largest variant).
    #[error(transparent)]
    NotNative(Box<NotNative>),
    #[error("recipe plugin {} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot load recipe plugin {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error(
        "{} is not an rbuildout recipe plugin: it does not export `rbuildout_plugin_v1`",
        path.display()
    )]
    NotAPlugin { path: PathBuf },
    #[error(
        "{} is a recipe plugin for ABI v{major}, but this rbuildout loads ABI v1 plugins\n\
         hint: rebuild the plugin against rbuildout-plugin-api 1.x",
        path.display()
    )]
    OtherAbi { path: PathBuf, major: u64 },
    #[error(
        "{} is not an rbuildout recipe plugin: its descriptor starts with {found:#018x}, \
         not the magic number",
        path.display()
    )]
    BadMagic { path: PathBuf, found: u64 },
    #[error("{} is not a valid recipe plugin: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot build the recipe crate {}: {message}", dir.display())]
    Develop { dir: PathBuf, message: String },
    #[error("recipe plugin {} refused to start: its init returned {code}", path.display())]
    Init { path: PathBuf, code: i32 },
    #[error(
        "recipe plugin `{plugin}` ({}) has no recipe `{entry}`; it has: {}",
        path.display(),
        available.join(", ")
    )]
    NoEntry {
        plugin: String,
        path: PathBuf,
        entry: String,
        available: Vec<String>,
    },
}

/// The Python recipe bridge: the recipe that runs zc.buildout recipes of Python
/// distributions (docs/python-recipes.md).
pub const BRIDGE: &str = "egg:python";

/// The recipe that loads zc.buildout extensions through the bridge, which the engine calls
/// itself when `[buildout] extensions` is set (docs/python-recipes.md, "Extensions").
pub const EXTENSIONS: &str = "egg:extensions";

/// Why a recipe name is not native: it names a Python distribution no plugin provides.
#[derive(Debug, thiserror::Error)]
#[error(
    "recipe `{recipe}` comes from the Python distribution `{distribution}`, which has no \
     native plugin: no {file} in {}, and no plugin there provides `{distribution}:{entry}`{}\n\
     hint: recipes of Python distributions run through the Python recipe bridge (the `{BRIDGE}` \
     recipe, docs/python-recipes.md) when the distribution has no native recipe at all; \
     `rbuildout plugins` lists the native recipes",
    searched.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
    if offered.is_empty() {
        String::new()
    } else {
        format!(" (`{distribution}` is native only as: {})", offered.join(", "))
    }
)]
pub struct NotNative {
    pub recipe: String,
    /// The Python distribution the recipe comes from, as the config writes it.
    pub distribution: String,
    pub entry: String,
    pub file: String,
    pub searched: Vec<PathBuf>,
    /// The entries of the distribution that plugins do provide.
    pub offered: Vec<String>,
}

/// A recipe call failed: the message to show against the part.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RecipeError {
    pub message: String,
    /// The recipe panicked; its plugin will not be called again in this process.
    pub panicked: bool,
    /// Paths the recipe registered before it failed (the runner removes them).
    pub paths: Vec<PathBuf>,
}

/// What identifies the code a recipe runs: recorded in the state so that a rebuilt plugin
/// reinstalls its parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecipeIdentity {
    /// The plugin's name, as its descriptor gives it.
    pub plugin: String,
    /// The plugin's version, as its descriptor gives it.
    pub version: String,
    /// The recipe inside the plugin (`default` unless the config says `name:entry`).
    pub entry: String,
    /// sha256 (hex) of the library file, or `unreadable: <why>` when it cannot be read.
    pub digest: String,
    /// The library file (the binary, for a built-in).
    pub path: PathBuf,
}

/// What `rbuildout plugins` shows about one library file.
#[derive(Clone, Debug, Serialize)]
pub struct PluginInfo {
    /// The library file.
    pub path: PathBuf,
    /// The name a config uses for it (`librbuildout_recipe_<name>`), or for a file with
    /// another name, the name its descriptor gives.
    pub name: String,
    /// A plugin of the same name earlier in the search path is the one configs get.
    pub shadowed: bool,
    /// Linked into the binary (`path` is the binary): a built-in recipe.
    pub builtin: bool,
    /// The descriptor's name (usually `name`); absent when the file could not be loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `major.minor` of the ABI the plugin was built against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built_with: Option<String>,
    pub thread_safe: bool,
    pub recipes: Vec<RecipeInfo>,
    /// Why the file could not be loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One recipe of a plugin and the hooks it implements.
#[derive(Clone, Debug, Serialize)]
pub struct RecipeInfo {
    pub name: String,
    pub install: bool,
    pub update: bool,
    pub uninstall: bool,
    pub prepare: bool,
}

/// Loads and caches plugin libraries. Libraries are never unloaded, so everything a
/// [`Recipe`] points into stays valid even after the registry is dropped.
pub struct Registry {
    search: SearchPath,
    loaded: Mutex<HashMap<PathBuf, Arc<Library>>>,
    /// The built-ins registered so far, by name.
    builtins: Mutex<HashMap<&'static str, Arc<Library>>>,
    /// The names plugins provide in their recipe tables (`name:entry` entries), read from
    /// every plugin of the search path the first time a name has no library of its own.
    provided: OnceLock<Vec<Provided>>,
    /// Whether a plain name (no dot) that no plugin has is a Python recipe too
    /// ([`Registry::with_plain_python_names`]).
    plain_python: bool,
}

/// One `name:entry` entry of a plugin's recipe table: the recipe `entry` of the
/// distribution `name` (normalised), implemented by `library`'s entry `index`.
struct Provided {
    name: String,
    entry: String,
    library: Arc<Library>,
    index: usize,
}

impl Registry {
    pub fn new(search: SearchPath) -> Registry {
        Registry {
            search,
            loaded: Mutex::new(HashMap::new()),
            builtins: Mutex::new(HashMap::new()),
            provided: OnceLock::new(),
            plain_python: false,
        }
    }

    /// A registry for which every name no plugin has is a Python recipe, dotted or not, as
    /// in zc.buildout's configs (`recipe = djangorecipe`); a TOML config's plain names are
    /// plugins only (docs/python-recipes.md).
    pub fn with_plain_python_names(self) -> Registry {
        Registry {
            plain_python: true,
            ..self
        }
    }

    /// The search path this registry looks in.
    pub fn search_path(&self) -> &SearchPath {
        &self.search
    }

    /// The recipe a part names: `"name"`, `"name:entry"`, or a library path containing `/`
    /// (relative to the config's folder), optionally followed by `:entry`.
    ///
    /// A name is first the library named for it (`librbuildout_recipe_<name>`, the name
    /// normalised as Python distribution names are), and that library's recipe `entry`.
    /// Without such a library, the first plugin of the search path whose recipe table has
    /// the entry `<name>:<entry>` provides it: so one plugin serves several names
    /// (`template` provides `collective.recipe.template`). A dotted name that nothing
    /// provides is a Python recipe: it runs through the bridge ([`BRIDGE`]), as
    /// `python:dist[:entry]` always does; without a bridge, or when the distribution is
    /// native under other entries only, the error says so.
    pub fn recipe(&self, recipe: &str) -> Result<Recipe, PluginError> {
        if recipe.trim().starts_with("python:") {
            return self.recipe(BRIDGE);
        }
        let spec = search::parse(recipe)?;
        let source = match &spec.name {
            search::Target::Name(name) => match self.search.find(name) {
                Ok(source) => source,
                Err(not_found) => {
                    return self.provided(recipe.trim(), name, &spec.entry, not_found);
                }
            },
            search::Target::File(file) => Source::File(self.search.config_dir.join(file)),
        };
        let library = self.load(&source)?;
        match library.entry_index(&spec.entry) {
            Some(index) => Ok(Recipe { library, index }),
            None => Err(PluginError::NoEntry {
                plugin: library.name.clone(),
                path: library.path.clone(),
                entry: spec.entry,
                available: library.entries.iter().map(|e| e.name.clone()).collect(),
            }),
        }
    }

    /// Every plugin library in the search path, in search order (a name found again later is
    /// marked `shadowed`), loaded to read its descriptor; files that fail to load are listed
    /// with their error.
    pub fn list(&self) -> Vec<PluginInfo> {
        let mut seen_names = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (name, source) in self.search.all() {
            let shadowed = !seen_names.insert(search::normalise(&name));
            let mut info = match self.load(&source) {
                Ok(library) => library.info(),
                Err(e) => PluginInfo::failed(source, &e),
            };
            info.name = name;
            info.shadowed = shadowed;
            out.push(info);
        }
        out
    }

    /// The recipe `entry` of `name` from a plugin that provides it under that name.
    fn provided(
        &self,
        recipe: &str,
        name: &str,
        entry: &str,
        not_found: PluginError,
    ) -> Result<Recipe, PluginError> {
        let wanted = search::normalise(name);
        let provided = self.provided.get_or_init(|| self.read_provided());
        let mut of_name = provided.iter().filter(|p| p.name == wanted).peekable();
        if of_name.peek().is_none() && !name.contains('.') && !self.plain_python {
            return Err(not_found);
        }
        let mut offered = Vec::new();
        for p in of_name {
            if p.entry == entry {
                return Ok(Recipe {
                    library: Arc::clone(&p.library),
                    index: p.index,
                });
            }
            if !offered.contains(&p.entry) {
                offered.push(p.entry.clone());
            }
        }
        if offered.is_empty()
            && let Ok(bridge) = self.recipe(BRIDGE)
        {
            return Ok(bridge);
        }
        Err(PluginError::NotNative(Box::new(NotNative {
            recipe: recipe.to_owned(),
            distribution: name.to_owned(),
            entry: entry.to_owned(),
            file: search::file_name(name),
            searched: self.search.dirs.clone(),
            offered,
        })))
    }

    /// Every `name:entry` entry of every plugin in the search path, in search order. A
    /// library that cannot be loaded provides nothing (`rbuildout plugins` shows why).
    fn read_provided(&self) -> Vec<Provided> {
        let mut out = Vec::new();
        for (name, source) in self.search.all() {
            let library = match self.load(&source) {
                Ok(library) => library,
                Err(e) => {
                    tracing::debug!("not looking for recipe names in plugin {name}: {e}");
                    continue;
                }
            };
            for (index, e) in library.entries.iter().enumerate() {
                if let Some((name, entry)) = search::provided_name(&e.name) {
                    out.push(Provided {
                        name,
                        entry: entry.to_owned(),
                        library: Arc::clone(&library),
                        index,
                    });
                }
            }
        }
        out
    }

    /// Tells every plugin loaded so far (built-ins too) that the run of the buildout in
    /// `directory` has finished with its parts (`ok`: all installed), in the order of their
    /// paths, then names; see [`abi::RunEndFn`](rbuildout_plugin_api::abi::RunEndFn).
    pub fn run_end(&self, directory: &Path, ok: bool) {
        let mut libraries: Vec<Arc<Library>> = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        libraries.extend(
            self.builtins
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned(),
        );
        libraries.sort_by(|a, b| (&a.path, &a.name).cmp(&(&b.path, &b.name)));
        for library in libraries {
            library.run_end(directory, ok);
        }
    }

    fn load(&self, source: &Source) -> Result<Arc<Library>, PluginError> {
        let path = match source {
            Source::File(path) => path,
            Source::Builtin(builtin) => {
                let mut builtins = self.builtins.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(library) = builtins.get(builtin.name) {
                    return Ok(Arc::clone(library));
                }
                let library = Arc::new(Library::builtin(builtin)?);
                builtins.insert(builtin.name, Arc::clone(&library));
                return Ok(library);
            }
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(library) = loaded.get(path) {
            return Ok(Arc::clone(library));
        }
        let library = Arc::new(Library::open(path)?);
        loaded.insert(path.to_path_buf(), Arc::clone(&library));
        Ok(library)
    }
}

impl PluginInfo {
    fn failed(source: Source, error: &PluginError) -> PluginInfo {
        let (path, builtin) = match source {
            Source::File(path) => (path, false),
            Source::Builtin(_) => (
                std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rbuildout")),
                true,
            ),
        };
        PluginInfo {
            name: search::name_of_file(&path).unwrap_or_default(),
            path,
            shadowed: false,
            builtin,
            plugin: None,
            version: None,
            abi: None,
            built_with: None,
            thread_safe: false,
            recipes: Vec::new(),
            error: Some(error.to_string()),
        }
    }
}

/// One recipe of a loaded plugin. Cheap to clone, and usable from any thread: calls into a
/// plugin that is not flagged thread-safe wait for each other.
#[derive(Clone)]
pub struct Recipe {
    library: Arc<Library>,
    index: usize,
}

impl fmt::Debug for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Recipe({}:{} from {})",
            self.library.name,
            self.entry().name,
            self.library.path.display()
        )
    }
}

/// Which of a recipe's functions to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hook {
    Install,
    Update,
    Uninstall,
    Prepare,
}

impl Hook {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hook::Install => "install",
            Hook::Update => "update",
            Hook::Uninstall => "uninstall",
            Hook::Prepare => "prepare",
        }
    }
}

impl Recipe {
    fn entry(&self) -> &library::Entry {
        &self.library.entries[self.index]
    }

    /// The plugin, its version, the entry and the digest of the library file (computed on
    /// first use and cached).
    pub fn identity(&self) -> RecipeIdentity {
        RecipeIdentity {
            plugin: self.library.name.clone(),
            version: self.library.version.clone(),
            entry: self.entry().name.clone(),
            digest: self.library.digest(),
            path: self.library.path.clone(),
        }
    }

    /// Whether the recipe is linked into the binary (a built-in) rather than loaded from a
    /// library file.
    pub fn is_builtin(&self) -> bool {
        self.library.builtin
    }

    /// The library file the recipe comes from, the binary for a built-in (cheap: reads
    /// nothing).
    pub fn library_path(&self) -> &Path {
        &self.library.path
    }

    /// Uses `digest` for the library file instead of reading and hashing it. The runner
    /// calls this when the file's size, times and inode equal those recorded with the
    /// digest by an earlier run: hashing a multi-megabyte plugin would otherwise be half of a
    /// no-op run's time.
    pub fn assume_digest(&self, digest: &str) {
        self.library.assume_digest(digest.to_string());
    }

    /// `plugin:entry`, as messages name the recipe.
    pub fn name(&self) -> String {
        format!("{}:{}", self.library.name, self.entry().name)
    }

    pub fn has_install(&self) -> bool {
        self.entry().install.is_some()
    }

    pub fn has_update(&self) -> bool {
        self.entry().update.is_some()
    }

    pub fn has_uninstall(&self) -> bool {
        self.entry().uninstall.is_some()
    }

    /// Whether the recipe computes outputs before any part installs (ABI 1.4).
    pub fn has_prepare(&self) -> bool {
        self.entry().prepare.is_some()
    }

    /// Prepares a part the run will install, before anything is installed: what the
    /// recipe publishes is visible at once. An error when it has no `prepare`
    /// ([`has_prepare`](Recipe::has_prepare)) or when it registers a path.
    pub fn prepare(&self, call: &Call) -> Result<CallResult, RecipeError> {
        let result = call::run(&self.library, self.entry(), Hook::Prepare, call)?;
        if let Some(path) = result.paths.first() {
            return Err(RecipeError {
                message: format!(
                    "recipe `{}` registered {} while preparing: only install and update \
                     may register paths",
                    self.name(),
                    path.display()
                ),
                panicked: false,
                paths: Vec::new(),
            });
        }
        Ok(result)
    }

    /// Installs the part.
    pub fn install(&self, call: &Call) -> Result<CallResult, RecipeError> {
        call::run(&self.library, self.entry(), Hook::Install, call)
    }

    /// Updates an unchanged part; an error when the recipe has no `update` ([`has_update`](Recipe::has_update)).
    pub fn update(&self, call: &Call) -> Result<CallResult, RecipeError> {
        call::run(&self.library, self.entry(), Hook::Update, call)
    }

    /// Runs the recipe's uninstall hook (with the recorded options); an error when it has
    /// none ([`has_uninstall`](Recipe::has_uninstall)). Paths it registers are ignored.
    pub fn uninstall(&self, call: &Call) -> Result<(), RecipeError> {
        call::run(&self.library, self.entry(), Hook::Uninstall, call).map(|_| ())
    }
}

/// What the host offers a recipe during one call (implemented by the runner). Called from
/// whatever thread the recipe calls back on, possibly several at once.
pub trait Host: Sync {
    /// Any resolved option of any section, as text (lists joined by "\n"); None if missing.
    fn option(&self, section: &str, option: &str) -> Option<String>;
    /// The names of every option of `section` that resolves, in the config's order; None
    /// if there is no such section (or this host cannot list them).
    fn option_names(&self, _section: &str) -> Option<Vec<String>> {
        None
    }
    /// Build another config into another folder as its own nested buildout (symlink recipe).
    fn nested_build(&self, config: &Path, directory: &Path) -> Result<(), String>;
    /// Whether the run should stop (Ctrl-C); long recipes poll it.
    fn cancelled(&self) -> bool {
        false
    }
}

/// One call of a recipe: the part and its context.
pub struct Call<'a> {
    pub part: &'a str,
    pub buildout_directory: &'a Path,
    pub offline: bool,
    pub newest: bool,
    /// `--locked`: lock files must not change.
    pub locked: bool,
    /// Resolved options, lists joined by "\n".
    pub options: &'a [(String, String)],
    pub host: &'a dyn Host,
    /// The paths the state recorded for the part before this call, as it records them
    /// (relative to the buildout directory inside it, absolute outside): the record of an
    /// update, the old record for the install of a reinstall, none for a first install. The
    /// recipe asks through the `owns` callback (ABI 1.1) before replacing a file.
    pub owned: &'a [String],
}

/// What a recipe reported during a successful call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// Paths the recipe registered, as given (relative ones are relative to the buildout
    /// directory; the runner checks containment).
    pub paths: Vec<PathBuf>,
    /// Published outputs in the order first published (a name published twice keeps its
    /// last value).
    pub outputs: Vec<(String, String)>,
}
