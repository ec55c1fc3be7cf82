//! The v1 plugin ABI: `#[repr(C)]` structs and constants shared by the host and every plugin.
//!
//! This module is the whole contract between rbuildout and a recipe library; the C header
//! `include/rbuildout_plugin.h` declares the same structs, and a test compares their layouts.
//!
//! Rules that keep it stable across rustc versions and languages:
//!
//! - A library exports one symbol, [`ENTRY_SYMBOL`] (`rbuildout_plugin_v1`), a function that
//!   returns a pointer to a static [`PluginDescriptor`]. A breaking change would export
//!   `rbuildout_plugin_v2` instead, so an old host says "other ABI major" instead of crashing.
//! - Every struct that may grow starts with (or, for the descriptor, has early) a
//!   `struct_size` field and only ever grows at the end. A reader checks that a field lies
//!   within `struct_size` before reading it ([`has_field!`](crate::has_field)).
//!   [`Str`], [`KeyValue`] and [`RecipeEntry`] are array elements or by-value arguments and
//!   never change.
//! - No allocation changes owner. Strings are borrowed UTF-8 `(ptr, len)` pairs valid for the
//!   duration of a call (the host also puts a NUL after each one it passes, for C). Results
//!   travel back through host callbacks that copy what they are given.
//! - Functions return an `i32` status: [`OK`], [`ERROR`], [`PANIC`], [`UNSUPPORTED`],
//!   [`NOT_FOUND`]. Nothing may unwind across the boundary.

use std::ffi::c_void;

/// The descriptor's first eight bytes: `"RBLDRCP\0"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RBLDRCP\0");
/// The ABI major version this crate implements; it is also the digit in [`ENTRY_SYMBOL`].
pub const ABI_MAJOR: u16 = 1;
/// The ABI minor version: grows when fields are appended to a struct.
pub const ABI_MINOR: u16 = 5;
/// The one symbol a plugin exports, NUL-terminated for `dlsym`.
pub const ENTRY_SYMBOL: &[u8] = b"rbuildout_plugin_v1\0";

/// Success.
pub const OK: i32 = 0;
/// Failure; the recipe called `set_error` with the message.
pub const ERROR: i32 = 1;
/// The recipe panicked; the message says where. The host stops calling that plugin.
pub const PANIC: i32 = 2;
/// The function is not implemented (for example a null callback).
pub const UNSUPPORTED: i32 = 3;
/// `get_option`: no such section or option.
pub const NOT_FOUND: i32 = 4;

/// Descriptor flag: the plugin's recipes may be called from several threads at once. Without
/// it the host calls the plugin from one thread at a time, except that while a recipe waits
/// in `nested_build` the host may call the plugin again for that build.
/// Without it the host serialises calls into the plugin.
pub const FLAG_THREAD_SAFE: u32 = 1;
/// Descriptor flag: the plugin was built with `panic = "abort"`, so a panic kills the host.
pub const FLAG_PANIC_ABORT: u32 = 2;

/// [`Call::flags`]: the run is offline (`-o`).
pub const CALL_OFFLINE: u32 = 1;
/// [`Call::flags`]: the run looks for newest versions (`-n`).
pub const CALL_NEWEST: u32 = 2;
/// [`Call::flags`]: the run must not change lock files (`--locked`); a recipe that would
/// fails instead.
pub const CALL_LOCKED: u32 = 4;

/// [`ProgressFn`] kind: `done` of `total` things of the step named by `label`, a plural
/// noun (`distributions`, `files compiled`); `total` 0 while it is not known yet. A report
/// with another label starts a new step: the host forgets the bytes of the one before.
pub const PROGRESS_COUNT: u32 = 1;
/// [`ProgressFn`] kind: `done` of `total` bytes transferred in the current step (`total` 0
/// when not known); `label` names what is transferred now (a file name), or is empty.
pub const PROGRESS_BYTES: u32 = 2;

/// Log level of [`LogFn`]: the numbers grow with verbosity; `0` in `max_level` means off.
pub const LEVEL_ERROR: u32 = 1;
/// See [`LEVEL_ERROR`].
pub const LEVEL_WARN: u32 = 2;
/// See [`LEVEL_ERROR`].
pub const LEVEL_INFO: u32 = 3;
/// See [`LEVEL_ERROR`].
pub const LEVEL_DEBUG: u32 = 4;
/// See [`LEVEL_ERROR`].
pub const LEVEL_TRACE: u32 = 5;

/// A borrowed UTF-8 string: `len` bytes at `ptr`, not owned by the receiver. A null `ptr`
/// is allowed only with `len == 0`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Str {
    pub ptr: *const u8,
    pub len: usize,
}

// SAFETY: a `Str` is a plain pointer and length with no safe way to dereference it; it is
// shared between threads only inside the immutable, static descriptor of a plugin.
unsafe impl Sync for Str {}
// SAFETY: as above; moving the pointer value to another thread dereferences nothing.
unsafe impl Send for Str {}

impl Str {
    /// The empty string.
    pub const EMPTY: Str = Str {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows a Rust string (usable in statics).
    pub const fn new(s: &str) -> Str {
        Str {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The bytes, or `None` for a null pointer with a non-zero length.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid and unchanged for `'a`.
    pub unsafe fn as_bytes<'a>(self) -> Option<&'a [u8]> {
        if self.len == 0 {
            Some(&[])
        } else if self.ptr.is_null() || self.len > isize::MAX as usize {
            None
        } else {
            // SAFETY: the caller promises `len` readable bytes at the non-null `ptr`.
            Some(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
        }
    }
}

/// One option: name and value, both borrowed for the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KeyValue {
    pub key: Str,
    pub value: Str,
}

/// The type of [`ENTRY_SYMBOL`]: returns the plugin's static descriptor.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// The host's log function: `level` is one of the `LEVEL_*` constants, `target` names the
/// module that logged (may be empty).
pub type LogFn = unsafe extern "C" fn(ctx: *mut c_void, level: u32, target: Str, message: Str);

/// `init`: called once when the host loads the library, before any recipe. `host` is valid
/// only during the call; copy what you need. A non-zero return refuses the load.
pub type InitFn = unsafe extern "C" fn(host: *const HostApi) -> i32;

/// `run_end` (ABI 1.3): called once when a run has finished with its parts (a nested build,
/// which is a run of its own, too), for every plugin the run loaded, before the host moves
/// on; `host` and `end` are valid only during the call. What a plugin gathers over a run's
/// parts (zc.buildout's picked versions) is reported here. The status is ignored.
pub type RunEndFn = unsafe extern "C" fn(host: *const HostApi, end: *const RunEnd) -> i32;

/// What [`RunEndFn`] is told. Grows at the end (check `struct_size`).
#[repr(C)]
#[derive(Debug)]
pub struct RunEnd {
    /// `size_of::<RunEnd>()` as the host knows it.
    pub struct_size: usize,
    /// The buildout directory of the run that ended (the one its parts' calls carried).
    pub directory: Str,
    /// [`OK`] when the run installed every part; [`ERROR`] when it failed or was stopped.
    pub status: i32,
}

/// `progress` (ABI 1.5): how far the call has come, for the progress bar the host may draw
/// under the part's line (on a terminal; otherwise it ignores it). `kind` is one of the
/// `PROGRESS_*` constants; the host keeps the last report of each kind and forgets them when
/// the call returns. Cheap but not free: report at most every 50 to 100 ms, and at the end of
/// a step. Returns [`OK`], [`UNSUPPORTED`] for an unknown kind, or [`ERROR`] for a label
/// that is not UTF-8.
pub type ProgressFn =
    unsafe extern "C" fn(ctx: *mut c_void, kind: u32, done: u64, total: u64, label: Str) -> i32;

/// A recipe function (`install`, `update` or `uninstall`); `call` is valid only during it.
pub type RecipeFn = unsafe extern "C" fn(call: *const Call) -> i32;

/// What a plugin describes about itself; returned by the entry symbol, static for the life
/// of the process.
///
/// The first five fields (`magic` to `struct_size`) are the same in every ABI major, so a
/// host can always read them to refuse a plugin it does not understand.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// Must be [`MAGIC`].
    pub magic: u64,
    /// Must be [`ABI_MAJOR`] for this host to load the plugin.
    pub abi_major: u16,
    /// The minor version the plugin was built against; informational.
    pub abi_minor: u16,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// `size_of::<PluginDescriptor>()` as the plugin knows it.
    pub struct_size: usize,
    /// The plugin's name (for `librbuildout_recipe_hello.so`, usually `hello`).
    pub name: Str,
    /// The plugin's version; part of a recipe's identity in the state file.
    pub version: Str,
    /// What built it (for example `rbuildout-plugin-api 0.1.0`); informational.
    pub built_with: Str,
    /// Optional; see [`InitFn`].
    pub init: Option<InitFn>,
    /// `recipe_count` entries.
    pub recipes: *const RecipeEntry,
    pub recipe_count: usize,
    /// ABI 1.3; optional; see [`RunEndFn`]. A descriptor of ABI 1.0 to 1.2 ends before it
    /// ([`DESCRIPTOR_SIZE_1_0`]).
    pub run_end: Option<RunEndFn>,
}

/// `struct_size` of a descriptor of ABI 1.0 to 1.2, which ends with `recipe_count`: the least
/// a host accepts.
pub const DESCRIPTOR_SIZE_1_0: usize = std::mem::offset_of!(PluginDescriptor, run_end);

// SAFETY: the descriptor is immutable static data of a library that is never unloaded; the
// pointers it holds point at other such data.
unsafe impl Sync for PluginDescriptor {}
// SAFETY: as above.
unsafe impl Send for PluginDescriptor {}

/// One recipe of a plugin: the name a config uses after the colon (`name:entry`) and its
/// functions. Array element: never grows.
#[repr(C)]
#[derive(Debug)]
pub struct RecipeEntry {
    pub name: Str,
    pub vtable: *const RecipeVTable,
}

// SAFETY: immutable static data, as for `PluginDescriptor`.
unsafe impl Sync for RecipeEntry {}
// SAFETY: as above.
unsafe impl Send for RecipeEntry {}

/// A recipe's functions; each may be null. Grows at the end (check `struct_size`).
#[repr(C)]
#[derive(Debug)]
pub struct RecipeVTable {
    /// `size_of::<RecipeVTable>()` as the plugin knows it.
    pub struct_size: usize,
    pub install: Option<RecipeFn>,
    pub update: Option<RecipeFn>,
    pub uninstall: Option<RecipeFn>,
    /// ABI 1.4; may be null. Called for a part the run will install, before the run
    /// uninstalls or installs anything (zc.buildout creates every part's recipe first): the
    /// outputs it sets are published at once, for the parts after it and every install. It
    /// may not register paths. Install is then called as always.
    pub prepare: Option<RecipeFn>,
}

/// What the host offers a plugin as a whole, passed to `init`. Grows at the end.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostApi {
    pub struct_size: usize,
    /// The host's ABI version.
    pub abi_major: u16,
    pub abi_minor: u16,
    /// The most verbose `LEVEL_*` the host shows; plugins may skip formatting anything above.
    pub max_level: u32,
    pub ctx: *mut c_void,
    /// Logs outside of any call (for example from a thread the plugin started); may be null.
    pub log: Option<LogFn>,
}

/// One call of a recipe function: the part's context, its options and the host callbacks
/// through which the recipe returns its results. Valid only during the call; every string
/// the host passes is followed by a NUL byte not counted in `len`. Grows at the end.
///
/// The callbacks copy what they receive and never unwind. Strings they return (`get_option`,
/// `nested_build`) are owned by the host and stay valid until the recipe function returns.
/// They may be called from any thread while the call lasts.
#[repr(C)]
#[derive(Debug)]
pub struct Call {
    /// `size_of::<Call>()` as the host knows it.
    pub struct_size: usize,
    /// Pass to every callback.
    pub ctx: *mut c_void,
    /// The part's name (the config section).
    pub part: Str,
    /// `${buildout:directory}`, absolute.
    pub buildout_directory: Str,
    /// `CALL_*` bits.
    pub flags: u32,
    /// The part's resolved options, sorted by name; lists are joined with `\n`.
    pub options: *const KeyValue,
    pub option_count: usize,
    /// Log a message attributed to this part.
    pub log: Option<LogFn>,
    /// Register a path the part owns (relative paths are relative to the buildout directory).
    /// The host removes it when the part is uninstalled, or when this call fails.
    pub add_path: Option<unsafe extern "C" fn(ctx: *mut c_void, path: Str) -> i32>,
    /// Publish an output `${part:name}` that later parts can reference.
    pub set_output: Option<unsafe extern "C" fn(ctx: *mut c_void, name: Str, value: Str) -> i32>,
    /// Set the error message reported when the function returns [`ERROR`].
    pub set_error: Option<unsafe extern "C" fn(ctx: *mut c_void, message: Str)>,
    /// Any resolved option of any section: [`OK`] and `*value` set, or [`NOT_FOUND`].
    pub get_option: Option<
        unsafe extern "C" fn(ctx: *mut c_void, section: Str, option: Str, value: *mut Str) -> i32,
    >,
    /// Build another config into another folder as its own buildout: [`OK`], or [`ERROR`]
    /// with `*error` set to the message.
    pub nested_build: Option<
        unsafe extern "C" fn(ctx: *mut c_void, config: Str, directory: Str, error: *mut Str) -> i32,
    >,
    /// Non-zero once the user asked the run to stop (Ctrl-C): a long recipe should give up
    /// soon, cleanly, returning [`ERROR`].
    pub cancelled: Option<unsafe extern "C" fn(ctx: *mut c_void) -> i32>,
    /// ABI 1.1 (a 1.0 host's `struct_size` ends before it: check with
    /// [`has_field!`](crate::has_field)). [`OK`] when `path` (absolute, or relative to the
    /// buildout directory; `.` and `..` resolved lexically) is one of the paths the state
    /// recorded for this part before this call, or inside one of them; [`NOT_FOUND`]
    /// otherwise. For an update these are the part's recorded paths; for the install of a
    /// reinstall, those of the record it replaces; for a first install, none. A recipe asks
    /// before replacing a file, so that it never replaces one the part did not make.
    pub owns: Option<unsafe extern "C" fn(ctx: *mut c_void, path: Str) -> i32>,
    /// ABI 1.2 (an older host's `struct_size` ends before it: check with
    /// [`has_field!`](crate::has_field)). [`OK`] with `*names` set to the names of every
    /// option of `section` that resolves, one per line, in the config's order (outputs the
    /// section's part published after them); [`NOT_FOUND`] when there is no such section.
    /// The text is the host's, valid until the recipe function returns. zc.buildout's
    /// recipes iterate a section this way (`zc.recipe.testrunner`'s `environment`).
    pub option_names:
        Option<unsafe extern "C" fn(ctx: *mut c_void, section: Str, names: *mut Str) -> i32>,
    /// ABI 1.5 (an older host's `struct_size` ends before it: check with
    /// [`has_field!`](crate::has_field)). Reports how far the call has come; see
    /// [`ProgressFn`].
    pub progress: Option<ProgressFn>,
}

/// `struct_size` of a [`Call`] from a host of ABI 1.0, which ends with `cancelled`.
pub const CALL_SIZE_1_0: usize = std::mem::offset_of!(Call, owns);

/// `struct_size` of a [`Call`] from a host of ABI 1.1, which ends with `owns`.
pub const CALL_SIZE_1_1: usize = std::mem::offset_of!(Call, option_names);

/// `struct_size` of a [`Call`] from a host of ABI 1.2, 1.3 or 1.4, which ends with
/// `option_names`.
pub const CALL_SIZE_1_2: usize = std::mem::offset_of!(Call, progress);

/// Whether the field `$field` of the struct `$ty` lies within the first `$size` bytes, that
/// is whether a struct whose `struct_size` is `$size` has it.
#[macro_export]
macro_rules! has_field {
    ($ty:ty, $field:ident, $size:expr) => {{
        let end = ::std::mem::offset_of!($ty, $field) + {
            fn size_of_field<T, F>(_: fn(&T) -> &F) -> usize {
                ::std::mem::size_of::<F>()
            }
            size_of_field(|s: &$ty| &s.$field)
        };
        end <= $size
    }};
}
