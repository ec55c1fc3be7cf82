//! The host side of the v1 ABI, in one place for rbuildout and for the SDK's `testing`: a
//! call of a recipe function marshalled from a [`Request`], the host callbacks, and what
//! they collect in a [`Reply`]. Behind the `host` feature (which `testing` turns on); a
//! recipe never needs it.
//!
//! What the host decides — other options, nested builds, cancellation, where logs go — is
//! behind the safe [`Host`] trait; what the recipe reports (paths, outputs, its error) comes
//! back in the [`Reply`], and the answer to `owns` comes from [`Request::owned`]. The
//! callbacks may be called from any thread the plugin uses during the call. They copy what
//! they receive and check it is UTF-8: anything else (or a null pointer) is an ABI fault,
//! the first of which is kept in [`Reply::fault`] with the bytes shown escaped. They never
//! unwind into the plugin: a panic in a [`Host`] method makes that callback return
//! [`abi::ERROR`]. Strings handed to the recipe (`get_option` values, `nested_build` errors)
//! are lent, NUL-terminated, until the call returns.
//!
//! [`crash`] names the call a crashing plugin was in, and [`signals`] routes SIGINT and
//! SIGTERM to flags a run polls: the process's signal handlers, which like the callbacks
//! are `extern "C"` and so live in this crate.

mod callbacks;
#[cfg(feature = "host")]
pub mod crash;
#[cfg(feature = "host")]
pub mod signals;

use std::ffi::c_void;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::abi::{self, HostApi, InitFn, KeyValue, RecipeFn, RunEnd, RunEndFn, Str};

/// For a host that links recipe crates rather than loading them (rbuildout's built-in
/// recipes), whose SDK `init` is not called: installs, once, a panic hook under which a
/// panic in a recipe call is reported as in a plugin library (its location joins the part's
/// error, the message goes to the call's log, nothing is printed), while every other panic
/// goes to the hook it replaces.
pub fn chain_recipe_panic_hook() {
    crate::sdk::bridge::chain_panic_hook();
}

/// Where a plugin's log messages go. `level` is one of the `LEVEL_*` constants of
/// [`abi`]; `target` names the plugin's module that logged (may be empty). Text that is not
/// UTF-8 arrives with replacement characters.
pub trait Log: Sync {
    fn log(&self, level: u32, target: &str, message: &str);
}

/// What the host offers a recipe during one call, beyond what [`Request`] says. Called from
/// whatever thread the recipe calls back on, possibly several at once.
pub trait Host: Log {
    /// Any resolved option of any section, as text (lists joined by "\n"); None if missing.
    fn option(&self, section: &str, option: &str) -> Option<String>;
    /// The names of every option of `section` that resolves, in the config's order; None
    /// when there is no such section.
    fn option_names(&self, section: &str) -> Option<Vec<String>>;
    /// Builds another config into another folder as its own nested buildout.
    fn nested_build(&self, config: &Path, directory: &Path) -> Result<(), String>;
    /// Whether the run should stop (Ctrl-C); long recipes poll it.
    fn cancelled(&self) -> bool;
    /// A progress report of the recipe (ABI 1.5): `kind` is [`abi::PROGRESS_COUNT`] or
    /// [`abi::PROGRESS_BYTES`] (the callback answers any other kind itself), `label` is
    /// UTF-8. By default it is dropped.
    fn progress(&self, kind: u32, done: u64, total: u64, label: &str) {
        let _ = (kind, done, total, label);
    }
}

/// One call to make: the part, its context and its options.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// How fault messages name the recipe (`plugin:entry`).
    pub recipe: &'a str,
    pub part: &'a str,
    /// `${buildout:directory}`, absolute: relative paths asked about in `owns` resolve
    /// against it.
    pub buildout_directory: &'a str,
    pub offline: bool,
    pub newest: bool,
    /// `--locked`: lock files must not change.
    pub locked: bool,
    /// The part's resolved options, in any order: the call passes them sorted by name, as
    /// the ABI promises.
    pub options: &'a [(String, String)],
    /// The paths the state recorded for the part before this call (relative to the buildout
    /// directory, or absolute): `owns` answers from them.
    pub owned: &'a [String],
    /// The call's `struct_size`: [`Request::SIZE`], or [`abi::CALL_SIZE_1_0`] /
    /// [`abi::CALL_SIZE_1_1`] / [`abi::CALL_SIZE_1_2`] to act as a host of ABI 1.0 / 1.1 /
    /// 1.3.
    pub call_size: usize,
}

impl Request<'_> {
    /// The `struct_size` of a call from a host of this crate's ABI version.
    pub const SIZE: usize = size_of::<abi::Call>();
}

/// What the recipe reported during the call, and the status it returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// `abi::OK`, `abi::ERROR`, `abi::PANIC`, `abi::UNSUPPORTED`, or whatever else the
    /// recipe returned.
    pub status: i32,
    /// The paths it registered, as given.
    pub paths: Vec<PathBuf>,
    /// The outputs it published, in publishing order (a name published twice is here
    /// twice).
    pub outputs: Vec<(String, String)>,
    /// What it gave `set_error` last: not trusted, so invalid UTF-8 is replaced and more than
    /// [`MAX_ERROR`] bytes are cut.
    pub error: Option<String>,
    /// The first thing it sent that breaks the ABI (invalid UTF-8, a null pointer), which
    /// fails the call whatever the status says.
    pub fault: Option<String>,
}

/// Error messages longer than this are cut (a recipe could send gigabytes).
pub const MAX_ERROR: usize = 64 * 1024;

/// Calls the recipe function `function` for `request`, with `host` answering its
/// questions, and returns what it reported.
///
/// # Safety
/// `function` must be a recipe function that keeps the v1 ABI, for example one read from
/// the checked vtable of a plugin library that stays loaded.
pub unsafe fn call(function: RecipeFn, request: &Request, host: &dyn Host) -> Reply {
    // Every string the recipe reads, NUL-terminated, in one buffer that is not touched again
    // until the call returns.
    let total: usize = request
        .options
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>()
        + request.part.len()
        + request.buildout_directory.len()
        + 2;
    let mut buffer: Vec<u8> = Vec::with_capacity(total);
    let mut push = |text: &str| {
        let start = buffer.len();
        buffer.extend_from_slice(text.as_bytes());
        buffer.push(0);
        (start, text.len())
    };
    let part_span = push(request.part);
    let directory_span = push(request.buildout_directory);
    let mut sorted: Vec<&(String, String)> = request.options.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let spans: Vec<((usize, usize), (usize, usize))> =
        sorted.iter().map(|(k, v)| (push(k), push(v))).collect();
    let base = buffer.as_ptr();
    let at = |(start, len): (usize, usize)| Str {
        // SAFETY: `start` is within `buffer`, which is not modified or dropped before the
        // call returns.
        ptr: unsafe { base.add(start) },
        len,
    };
    let options: Vec<KeyValue> = spans
        .iter()
        .map(|&(key, value)| KeyValue {
            key: at(key),
            value: at(value),
        })
        .collect();

    let state = callbacks::State {
        request,
        host,
        reply: Mutex::new(Reply::default()),
        arena: Mutex::new(Vec::new()),
        owned: OnceLock::new(),
    };
    let raw = abi::Call {
        struct_size: request.call_size,
        ctx: &state as *const callbacks::State as *mut c_void,
        part: at(part_span),
        buildout_directory: at(directory_span),
        flags: if request.offline {
            abi::CALL_OFFLINE
        } else {
            0
        } | if request.newest { abi::CALL_NEWEST } else { 0 }
            | if request.locked { abi::CALL_LOCKED } else { 0 },
        options: options.as_ptr(),
        option_count: options.len(),
        log: Some(callbacks::log),
        add_path: Some(callbacks::add_path),
        set_output: Some(callbacks::set_output),
        set_error: Some(callbacks::set_error),
        get_option: Some(callbacks::get_option),
        nested_build: Some(callbacks::nested_build),
        cancelled: Some(callbacks::cancelled),
        owns: Some(callbacks::owns),
        option_names: Some(callbacks::option_names),
        progress: Some(callbacks::progress),
    };
    // SAFETY: the caller vouches for `function`; `raw` and everything it points to (buffer,
    // options, state) outlive the call.
    let status = unsafe { function(&raw) };
    drop(buffer);
    let mut reply = state.reply.into_inner().unwrap_or_else(|e| e.into_inner());
    reply.status = status;
    reply
}

/// Calls a plugin's `init` with a [`HostApi`] whose log function, for messages outside any
/// call, goes to `log`, and returns its status.
///
/// # Safety
/// `init` must be the `init` function of a plugin's checked descriptor.
pub unsafe fn init(init: InitFn, max_level: u32, log: &'static dyn Log) -> i32 {
    // The plugin may log from any thread for the rest of the process: the context lives as
    // long.
    let ctx: &'static &'static dyn Log = Box::leak(Box::new(log));
    let host = host_api(max_level, ctx);
    // SAFETY: the caller vouches for `init`; `host` outlives the call.
    unsafe { init(&host) }
}

/// The [`HostApi`] given to a plugin's `init` and `run_end`: its log function, for messages
/// outside any call, goes to `ctx`, which must outlive every use the plugin makes of it.
fn host_api(max_level: u32, ctx: &&'static dyn Log) -> HostApi {
    HostApi {
        struct_size: size_of::<HostApi>(),
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        max_level,
        ctx: ctx as *const &'static dyn Log as *mut c_void,
        log: Some(callbacks::log_global),
    }
}

/// Calls a plugin's `run_end` for the run of the buildout in `directory` (`ok`: every part
/// was installed), with a [`HostApi`] whose log goes to `log`, and returns its status.
///
/// # Safety
/// `run_end` must be the `run_end` function of a plugin's checked descriptor.
pub unsafe fn run_end(
    run_end: RunEndFn,
    directory: &Path,
    ok: bool,
    max_level: u32,
    log: &'static dyn Log,
) -> i32 {
    // Both are valid only during the call, as the ABI says: they may live on the stack.
    let host = host_api(max_level, &log);
    // NUL-terminated, as every string the host passes.
    let text = format!("{}\0", directory.display());
    let end = RunEnd {
        struct_size: size_of::<RunEnd>(),
        directory: Str {
            ptr: text.as_ptr(),
            len: text.len() - 1,
        },
        status: if ok { abi::OK } else { abi::ERROR },
    };
    // SAFETY: the caller vouches for `run_end`; `host`, `end` and `text` outlive the call.
    unsafe { run_end(&host, &end) }
}

#[cfg(test)]
mod tests;
