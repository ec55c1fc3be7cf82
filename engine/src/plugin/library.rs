//! Opening a plugin library and checking its descriptor before anything else is trusted.

use std::collections::HashMap;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, LazyLock, Mutex, OnceLock};

use libloading::os::unix::{Library as Handle, RTLD_LOCAL, RTLD_NOW};
use rbuildout_plugin_api::abi::{
    self, EntryFn, InitFn, PluginDescriptor, RecipeEntry, RecipeFn, RecipeVTable, RunEndFn, Str,
};
use rbuildout_plugin_api::has_field;
use rbuildout_plugin_api::host::{self, crash};

use super::builtin::Builtin;
use super::call::PluginLog;
use super::{PluginError, PluginInfo, RecipeInfo};

/// Descriptors claiming more recipes than this are refused as corrupt.
const MAX_RECIPES: usize = 10_000;
/// Descriptor strings longer than this are refused as corrupt.
const MAX_NAME: usize = 4096;

/// A loaded plugin: what its descriptor says, copied out and checked.
pub(super) struct Library {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub built_with: String,
    pub abi_minor: u16,
    pub flags: u32,
    pub entries: Vec<Entry>,
    /// Set once a call panicked: the plugin is not called again.
    pub poisoned: AtomicBool,
    /// Serialises calls into a plugin that is not flagged thread-safe; shared by every
    /// registry that loads the same file, as they share the loaded library.
    pub lock: Option<Arc<CallLock>>,
    digest: OnceLock<String>,
    /// The descriptor's `run_end` (ABI 1.3).
    run_end: Option<RunEndFn>,
    /// Where the plugin's messages outside any call go (its `init` and `run_end`).
    log: &'static PluginLog,
    /// Linked into the binary ([`Library::builtin`]): `path` is the binary's.
    pub builtin: bool,
    /// Kept open for the life of the process: unloading is unsound (TLS destructors, code
    /// still referenced by function pointers), so this is never dropped. None for a built-in.
    _handle: Option<ManuallyDrop<Handle>>,
}

/// One recipe of a plugin, its hooks read within the vtable's `struct_size`.
pub(super) struct Entry {
    pub name: String,
    pub install: Option<RecipeFn>,
    pub update: Option<RecipeFn>,
    pub uninstall: Option<RecipeFn>,
    /// ABI 1.4.
    pub prepare: Option<RecipeFn>,
}

impl Library {
    /// Opens `path` with `RTLD_NOW | RTLD_LOCAL`, checks the descriptor and calls `init`.
    pub(super) fn open(path: &Path) -> Result<Library, PluginError> {
        // Named by the crash handler if the library's initialisers, entry or init crash.
        let _crash = crash::Guard::loading(path);
        let id: FileId = match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => (meta.dev(), meta.ino()),
            Ok(_) => {
                return Err(PluginError::Open {
                    path: path.to_path_buf(),
                    message: "not a file".into(),
                });
            }
            Err(_) => {
                return Err(PluginError::Missing {
                    path: path.to_path_buf(),
                });
            }
        };
        // SAFETY: loading a library runs its initialisers. Plugins are code the user chose to
        // run, like a buildout recipe; RTLD_NOW resolves every symbol now rather than failing
        // in the middle of an install.
        let handle = unsafe { Handle::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
            PluginError::Open {
                path: path.to_path_buf(),
                message: dl_message(&e.to_string(), path),
            }
        })?;
        let handle = ManuallyDrop::new(handle);
        // SAFETY: the entry symbol of ABI v1 has exactly this signature.
        let entry = unsafe { handle.get::<EntryFn>(abi::ENTRY_SYMBOL) };
        let entry = match entry {
            Ok(symbol) => *symbol,
            Err(_) => return Err(other_abi(&handle, path)),
        };
        // SAFETY: a v1 plugin's entry function takes nothing and returns its static descriptor.
        let descriptor = unsafe { entry() };
        // SAFETY: `descriptor` is what the plugin's entry returned; `read` checks everything
        // before reading beyond the fixed prefix.
        let checked = unsafe { read(descriptor, path) }?;
        let init = checked.init;
        let library = Library::of(
            checked,
            path.to_path_buf(),
            id,
            OnceLock::new(),
            Some(handle),
        );
        let log = library.log;
        if library.flags & abi::FLAG_PANIC_ABORT != 0 {
            tracing::warn!(
                "recipe plugin {} was built with panic=abort: a panic in it will kill rbuildout",
                path.display()
            );
        }
        if let Some(init) = init {
            let code = init_once(id, || {
                // SAFETY: `init` comes from the checked descriptor.
                unsafe { host::init(init, plugin_max_level(), log) }
            });
            if code != abi::OK {
                return Err(PluginError::Init {
                    path: path.to_path_buf(),
                    code,
                });
            }
        }
        tracing::debug!(
            "loaded recipe plugin {} {} (ABI {}.{}, {}) from {}",
            library.name,
            library.version,
            abi::ABI_MAJOR,
            library.abi_minor,
            library.built_with,
            path.display()
        );
        Ok(library)
    }

    /// Tells the plugin that the run of the buildout in `directory` has finished with its
    /// parts (`ok`: all installed), if it asked (`run_end`, ABI 1.3). A plugin that panicked
    /// before is not called again; a crash is named as in a recipe call.
    pub(super) fn run_end(&self, directory: &Path, ok: bool) {
        let Some(run_end) = self.run_end else { return };
        if self.poisoned.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Some(lock) = &self.lock {
            lock.acquire();
        }
        let code = {
            let _crash = crash::Guard::run_end(&self.path);
            // SAFETY: `run_end` comes from the checked descriptor.
            unsafe { host::run_end(run_end, directory, ok, plugin_max_level(), self.log) }
        };
        if let Some(lock) = &self.lock {
            lock.release();
        }
        if code != abi::OK {
            tracing::debug!(
                "recipe plugin {}: run_end returned {code} (ignored)",
                self.name
            );
        }
    }

    /// A recipe crate linked into the binary, through its descriptor and the checks a
    /// library's descriptor gets. Its `init` is not called: the SDK's `init` gives a
    /// library's own copy of `tracing` a subscriber and installs the SDK's panic hook, while
    /// a built-in shares the binary's `tracing` and standard library. Its `tracing` events
    /// are the engine's; its panics are reported as a library's through
    /// [`host::chain_recipe_panic_hook`], which keeps the engine's hook for other panics.
    pub(super) fn builtin(builtin: &'static Builtin) -> Result<Library, PluginError> {
        let path = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rbuildout"));
        let descriptor = (builtin.descriptor)();
        // SAFETY: `descriptor` is what `export_plugin!`'s `rbuildout_plugin_descriptor`
        // returned: the crate's static descriptor, checked by `read` like a library's.
        let checked = unsafe { read(descriptor, &path) }?;
        // Not a file: the descriptor's address stands for the library in the lock table.
        let id: FileId = (u64::MAX, descriptor as usize as u64);
        let digest = super::builtin::digest(&checked.name, &checked.version);
        host::chain_recipe_panic_hook();
        Ok(Library::of(checked, path, id, OnceLock::from(digest), None))
    }

    /// A library from its checked descriptor: `handle` is the opened file (`None` for a
    /// built-in), `id` what its call lock is kept by.
    fn of(
        checked: Checked,
        path: PathBuf,
        id: FileId,
        digest: OnceLock<String>,
        handle: Option<ManuallyDrop<Handle>>,
    ) -> Library {
        // The plugin may log through it for the rest of the process.
        let log: &'static PluginLog = Box::leak(Box::new(PluginLog {
            plugin: checked.name.clone(),
        }));
        Library {
            path,
            name: checked.name,
            version: checked.version,
            built_with: checked.built_with,
            abi_minor: checked.abi_minor,
            flags: checked.flags,
            entries: checked.entries,
            poisoned: AtomicBool::new(false),
            lock: (checked.flags & abi::FLAG_THREAD_SAFE == 0).then(|| CallLock::of(id)),
            digest,
            run_end: checked.run_end,
            log,
            builtin: handle.is_none(),
            _handle: handle,
        }
    }

    pub(super) fn entry_index(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// sha256 of the library file; `unreadable: <why>` when it cannot be read, which never
    /// equals a recorded digest, so the part is reinstalled. A built-in's is set when it is
    /// registered (`builtin::digest`).
    pub(super) fn digest(&self) -> String {
        self.digest
            .get_or_init(|| match super::digest::file_digest(&self.path) {
                Ok(digest) => digest,
                Err(e) => format!("unreadable: {e}"),
            })
            .clone()
    }

    /// Takes a digest known from an earlier run (the runner vouches that the file is the
    /// same), so [`digest`](Library::digest) need not read the file; ignored once computed.
    pub(super) fn assume_digest(&self, digest: String) {
        let _ = self.digest.set(digest);
    }

    pub(super) fn info(&self) -> PluginInfo {
        PluginInfo {
            path: self.path.clone(),
            name: self.name.clone(),
            shadowed: false,
            builtin: self.builtin,
            plugin: Some(self.name.clone()),
            version: Some(self.version.clone()),
            abi: Some(format!("{}.{}", abi::ABI_MAJOR, self.abi_minor)),
            built_with: Some(self.built_with.clone()),
            thread_safe: self.lock.is_none(),
            recipes: self
                .entries
                .iter()
                .map(|e| RecipeInfo {
                    name: e.name.clone(),
                    install: e.install.is_some(),
                    update: e.update.is_some(),
                    uninstall: e.uninstall.is_some(),
                    prepare: e.prepare.is_some(),
                })
                .collect(),
            error: None,
        }
    }
}

/// What `rbuildout plugins` shows for one library file, named by path. The library stays
/// loaded, like every plugin.
pub fn plugin_info(path: &Path) -> Result<PluginInfo, PluginError> {
    let library = Library::open(path)?;
    let mut info = library.info();
    if let Some(name) = super::search::name_of_file(path) {
        info.name = name;
    }
    Ok(info)
}

/// The error for a library without the v1 entry: another major if it exports one.
fn other_abi(handle: &Handle, path: &Path) -> PluginError {
    for major in (0..=1).chain(2..=32u64) {
        if major == u64::from(abi::ABI_MAJOR) {
            continue;
        }
        let symbol = format!("rbuildout_plugin_v{major}\0");
        // SAFETY: only the symbol's presence is checked; it is never called.
        if unsafe { handle.get::<*const c_void>(symbol.as_bytes()) }.is_ok() {
            return PluginError::OtherAbi {
                path: path.to_path_buf(),
                major,
            };
        }
    }
    PluginError::NotAPlugin {
        path: path.to_path_buf(),
    }
}

/// dlerror messages usually repeat the path; keep only what follows it.
fn dl_message(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_owned()
}

/// Reads and checks a descriptor: the fixed prefix first (magic, ABI major, `struct_size`),
/// then the v1 fields, every string as UTF-8 and every recipe's vtable within its
/// `struct_size`.
///
/// # Safety
/// `d` must be what the library's `rbuildout_plugin_v1` returned: null, or a pointer to a
/// descriptor whose `struct_size` bytes are readable for the life of the process.
unsafe fn read(d: *const PluginDescriptor, path: &Path) -> Result<Checked, PluginError> {
    let invalid = |reason: String| PluginError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if d.is_null() {
        return Err(invalid(
            "`rbuildout_plugin_v1` returned no descriptor".into(),
        ));
    }
    if !d.is_aligned() {
        return Err(invalid("its descriptor is not aligned".into()));
    }
    // SAFETY: the first fields are the same in every ABI major; each is read through the raw
    // pointer, never through a reference to the whole (maybe smaller) struct.
    let magic = unsafe { (*d).magic };
    if magic != abi::MAGIC {
        return Err(PluginError::BadMagic {
            path: path.to_path_buf(),
            found: magic,
        });
    }
    // SAFETY: as above.
    let (major, minor, flags, struct_size) =
        unsafe { ((*d).abi_major, (*d).abi_minor, (*d).flags, (*d).struct_size) };
    if major != abi::ABI_MAJOR {
        return Err(PluginError::OtherAbi {
            path: path.to_path_buf(),
            major: u64::from(major),
        });
    }
    if struct_size < abi::DESCRIPTOR_SIZE_1_0 {
        return Err(invalid(format!(
            "its descriptor is {struct_size} bytes, fewer than ABI v1.0 needs ({})",
            abi::DESCRIPTOR_SIZE_1_0
        )));
    }
    let run_end = if has_field!(PluginDescriptor, run_end, struct_size) {
        // SAFETY: `struct_size` covers the field, read alone through the raw pointer.
        unsafe { (*d).run_end }
    } else {
        None
    };
    // SAFETY: `struct_size` covers every v1.0 field: the prefix, copied field by field,
    // never through a reference to the whole struct.
    let d = unsafe { V1Prefix::of(d) };
    // SAFETY: descriptor strings are static data of the library.
    let name = unsafe { text(d.name, "plugin name", path) }?;
    if name.is_empty() {
        return Err(invalid("its name is empty".into()));
    }
    // SAFETY: as above.
    let version = unsafe { text(d.version, "version", path) }?;
    // SAFETY: as above.
    let built_with = unsafe { text(d.built_with, "built_with", path) }?;
    if d.recipe_count > MAX_RECIPES {
        return Err(invalid(format!("it claims {} recipes", d.recipe_count)));
    }
    if d.recipe_count > 0 && (d.recipes.is_null() || !d.recipes.is_aligned()) {
        return Err(invalid(
            "its recipe table is a null or misaligned pointer".into(),
        ));
    }
    let table: &[RecipeEntry] = if d.recipe_count == 0 {
        &[]
    } else {
        // SAFETY: checked non-null and aligned; the plugin promises `recipe_count` entries.
        unsafe { std::slice::from_raw_parts(d.recipes, d.recipe_count) }
    };
    let mut entries: Vec<Entry> = Vec::with_capacity(table.len());
    for raw in table {
        // SAFETY: static data of the library.
        let recipe = unsafe { text(raw.name, "recipe name", path) }?;
        if recipe.is_empty() {
            return Err(invalid("a recipe has an empty name".into()));
        }
        if entries.iter().any(|e| e.name == recipe) {
            return Err(invalid(format!("the recipe `{recipe}` is listed twice")));
        }
        // SAFETY: static data of the library, checked as it is read.
        let entry = unsafe { read_vtable(raw.vtable, recipe, path) }?;
        entries.push(entry);
    }
    Ok(Checked {
        name,
        version,
        built_with,
        abi_minor: minor,
        flags,
        entries,
        init: d.init,
        run_end,
    })
}

/// The fields of an ABI 1.0 descriptor, copied out: a plugin of an older minor version has
/// a smaller descriptor than [`PluginDescriptor`], so no reference to the whole is made.
struct V1Prefix {
    name: abi::Str,
    version: abi::Str,
    built_with: abi::Str,
    init: Option<InitFn>,
    recipes: *const RecipeEntry,
    recipe_count: usize,
}

impl V1Prefix {
    /// # Safety
    /// `d` must point to a descriptor whose `struct_size` is at least
    /// [`abi::DESCRIPTOR_SIZE_1_0`].
    unsafe fn of(d: *const PluginDescriptor) -> V1Prefix {
        // SAFETY: each field lies within the first `DESCRIPTOR_SIZE_1_0` bytes.
        unsafe {
            V1Prefix {
                name: (*d).name,
                version: (*d).version,
                built_with: (*d).built_with,
                init: (*d).init,
                recipes: (*d).recipes,
                recipe_count: (*d).recipe_count,
            }
        }
    }
}

/// What a checked descriptor says, copied out of the library.
struct Checked {
    name: String,
    version: String,
    built_with: String,
    abi_minor: u16,
    flags: u32,
    entries: Vec<Entry>,
    init: Option<InitFn>,
    run_end: Option<RunEndFn>,
}

/// # Safety
/// `vtable` must be null or point to a vtable whose `struct_size` bytes are readable.
unsafe fn read_vtable(
    vtable: *const RecipeVTable,
    recipe: String,
    path: &Path,
) -> Result<Entry, PluginError> {
    let invalid = |reason: String| PluginError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if vtable.is_null() || !vtable.is_aligned() {
        return Err(invalid(format!(
            "the recipe `{recipe}` has a null or misaligned vtable"
        )));
    }
    // SAFETY: `struct_size` is the first field of every vtable version.
    let size = unsafe { (*vtable).struct_size };
    if !has_field!(RecipeVTable, struct_size, size) {
        return Err(invalid(format!(
            "the vtable of recipe `{recipe}` is only {size} bytes"
        )));
    }
    // SAFETY: each slot is read only when it lies within `struct_size`.
    let install = has_field!(RecipeVTable, install, size)
        .then(|| unsafe { (*vtable).install })
        .flatten();
    // SAFETY: as above.
    let update = has_field!(RecipeVTable, update, size)
        .then(|| unsafe { (*vtable).update })
        .flatten();
    // SAFETY: as above.
    let uninstall = has_field!(RecipeVTable, uninstall, size)
        .then(|| unsafe { (*vtable).uninstall })
        .flatten();
    // SAFETY: as above.
    let prepare = has_field!(RecipeVTable, prepare, size)
        .then(|| unsafe { (*vtable).prepare })
        .flatten();
    Ok(Entry {
        name: recipe,
        install,
        update,
        uninstall,
        prepare,
    })
}

/// A descriptor string, copied out; an error naming `what` when it is not UTF-8.
///
/// # Safety
/// `s` must point to `len` readable bytes (or be null with `len == 0`).
unsafe fn text(s: Str, what: &str, path: &Path) -> Result<String, PluginError> {
    let invalid = |reason: String| PluginError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if s.len > MAX_NAME {
        return Err(invalid(format!("its {what} is {} bytes long", s.len)));
    }
    // SAFETY: the caller promises the bytes are readable.
    let bytes =
        unsafe { s.as_bytes() }.ok_or_else(|| invalid(format!("its {what} is a null pointer")))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        invalid(format!(
            "its {what} is not valid UTF-8: {}",
            bytes.escape_ascii()
        ))
    })
}

/// The most verbose plugin level the host shows, given that plugin `info` is shown at the
/// host's `debug` (see the module docs). Without a subscriber yet, everything.
fn plugin_max_level() -> u32 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF | LevelFilter::TRACE => abi::LEVEL_TRACE,
        LevelFilter::DEBUG => abi::LEVEL_INFO,
        LevelFilter::INFO | LevelFilter::WARN => abi::LEVEL_WARN,
        _ => abi::LEVEL_ERROR,
    }
}

/// A lock that is taken and released explicitly (not through a guard), so a nested build
/// can release it while the recipe waits for it.
#[derive(Default)]
pub(super) struct CallLock {
    busy: Mutex<bool>,
    free: Condvar,
}

/// The call locks of the libraries loaded so far, by device and inode: what the dynamic
/// loader uses to tell whether a library is already loaded.
static LOCKS: LazyLock<Mutex<HashMap<FileId, Arc<CallLock>>>> = LazyLock::new(Default::default);

/// A file's device and inode.
type FileId = (u64, u64);

/// What each loaded library's `init` returned. The dynamic loader gives every registry that
/// opens the same file the same library, so `init` runs once per library, as the ABI says.
static INITS: LazyLock<Mutex<HashMap<FileId, i32>>> = LazyLock::new(Default::default);

fn init_once(id: FileId, init: impl FnOnce() -> i32) -> i32 {
    let mut inits = INITS.lock().unwrap_or_else(|e| e.into_inner());
    *inits.entry(id).or_insert_with(init)
}

impl CallLock {
    /// The lock for the library file `id`.
    fn of(id: FileId) -> Arc<CallLock> {
        let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(id).or_default())
    }

    pub(super) fn acquire(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = self.free.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
    }

    pub(super) fn release(&self) {
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.free.notify_one();
    }
}
