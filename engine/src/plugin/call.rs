//! One call into a recipe: the options marshalled into the v1 ABI, the host callbacks that
//! collect what the recipe reports, and the status turned into a result.
//!
//! Callbacks may be called from any thread the plugin uses during the call. They copy what
//! they receive, check it is UTF-8 (a recipe that sends anything else fails, with the bytes
//! shown escaped) and never unwind into the plugin.

use std::collections::HashSet;
use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};

use indexmap::IndexMap;
use rbuildout_plugin_api::abi::{self, KeyValue, Str};

use super::library::{CallLock, Entry, Library};
use super::{Call, CallResult, Hook, Host, RecipeError};
use crate::run::paths::normalize;

/// Error messages longer than this are cut (a recipe could send gigabytes).
const MAX_ERROR: usize = 64 * 1024;

/// What the callbacks collect during a call.
#[derive(Default)]
struct Collected {
    paths: Vec<PathBuf>,
    outputs: IndexMap<String, String>,
    error: Option<String>,
    /// The first thing the recipe sent that breaks the ABI (invalid UTF-8, null pointers).
    fault: Option<String>,
}

/// The callbacks' `ctx`: everything one call needs, alive until the recipe returns.
struct CallState<'a> {
    recipe: String,
    plugin: &'a str,
    part: &'a str,
    host: &'a dyn Host,
    lock: Option<&'a CallLock>,
    collected: Mutex<Collected>,
    /// Strings handed to the recipe (`get_option`, `nested_build` errors), NUL-terminated,
    /// kept until the call ends. Boxed, so they never move.
    arena: Mutex<Vec<Box<[u8]>>>,
    /// The buildout directory, against which relative paths resolve.
    directory: &'a Path,
    /// The part's recorded paths before the call, as the state has them.
    owned: &'a [String],
    /// The same, absolute and normalized, made on the first `owns` question.
    owned_set: OnceLock<HashSet<PathBuf>>,
}

impl CallState<'_> {
    fn collected(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.collected.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an ABI fault (the first one wins) and returns the status for the callback.
    fn fault(&self, what: &str, bytes: Option<&[u8]>) -> i32 {
        let message = match bytes {
            Some(bytes) => format!(
                "recipe `{}` sent {what} that is not valid UTF-8: \"{}\"",
                self.recipe,
                escaped(bytes)
            ),
            None => format!("recipe `{}` sent {what} as a null pointer", self.recipe),
        };
        self.collected().fault.get_or_insert(message);
        abi::ERROR
    }

    /// Copies a string from the recipe, or records the fault.
    ///
    /// # Safety
    /// `s` must point to `len` readable bytes for the duration of the callback.
    unsafe fn text(&self, s: Str, what: &str) -> Result<String, i32> {
        // SAFETY: the recipe passes readable bytes, per the ABI.
        let Some(bytes) = (unsafe { s.as_bytes() }) else {
            return Err(self.fault(what, None));
        };
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(self.fault(what, Some(bytes))),
        }
    }

    /// Keeps `text` (plus a NUL) until the call ends and returns it as a `Str`.
    fn lend(&self, text: &str) -> Str {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
        let bytes = bytes.into_boxed_slice();
        let s = Str {
            ptr: bytes.as_ptr(),
            len: text.len(),
        };
        self.arena
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bytes);
        s
    }
}

/// Calls `hook` of `entry` for `call`.
pub(super) fn run(
    library: &Library,
    entry: &Entry,
    hook: Hook,
    call: &Call,
) -> Result<CallResult, RecipeError> {
    let recipe = format!("{}:{}", library.name, entry.name);
    let fail = |message: String| RecipeError {
        message,
        panicked: false,
        paths: Vec::new(),
    };
    let function = match hook {
        Hook::Install => entry.install,
        Hook::Update => entry.update,
        Hook::Uninstall => entry.uninstall,
    };
    let Some(function) = function else {
        return Err(fail(format!("recipe `{recipe}` has no {}", hook.name())));
    };
    if library.poisoned.load(Ordering::SeqCst) {
        return Err(fail(format!(
            "recipe plugin `{}` ({}) is not called again after it panicked in this run",
            library.name,
            library.path.display()
        )));
    }
    let Some(directory) = call.buildout_directory.to_str() else {
        return Err(fail(format!(
            "the buildout directory {} is not valid UTF-8, which recipes need",
            call.buildout_directory.display()
        )));
    };

    // Every string the recipe reads, NUL-terminated, in one buffer that is not touched again
    // until the call returns.
    let total: usize = call
        .options
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>()
        + call.part.len()
        + directory.len()
        + 2;
    let mut buffer: Vec<u8> = Vec::with_capacity(total);
    let mut push = |text: &str| {
        let start = buffer.len();
        buffer.extend_from_slice(text.as_bytes());
        buffer.push(0);
        (start, text.len())
    };
    let part_span = push(call.part);
    let directory_span = push(directory);
    // The ABI promises options sorted by name, whatever order the caller has them in.
    let mut sorted: Vec<&(String, String)> = call.options.iter().collect();
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

    let state = CallState {
        recipe: recipe.clone(),
        plugin: &library.name,
        part: call.part,
        host: call.host,
        lock: library.lock.as_deref(),
        collected: Mutex::new(Collected::default()),
        arena: Mutex::new(Vec::new()),
        directory: call.buildout_directory,
        owned: call.owned,
        owned_set: OnceLock::new(),
    };
    let raw = abi::Call {
        struct_size: std::mem::size_of::<abi::Call>(),
        ctx: &state as *const CallState as *mut c_void,
        part: at(part_span),
        buildout_directory: at(directory_span),
        flags: if call.offline { abi::CALL_OFFLINE } else { 0 }
            | if call.newest { abi::CALL_NEWEST } else { 0 }
            | if call.locked { abi::CALL_LOCKED } else { 0 },
        options: options.as_ptr(),
        option_count: options.len(),
        log: Some(log_call),
        add_path: Some(add_path),
        set_output: Some(set_output),
        set_error: Some(set_error),
        get_option: Some(get_option),
        nested_build: Some(nested_build),
        cancelled: Some(cancelled),
        owns: Some(owns),
    };

    if let Some(lock) = &library.lock {
        lock.acquire();
    }
    // Named by the crash handler if the recipe kills the process.
    let crash = super::crash::Guard::enter(call.part, &recipe, &library.path);
    // SAFETY: `function` comes from the checked vtable of a library that is never unloaded;
    // `raw` and everything it points to (buffer, options, state) outlive the call.
    let status = unsafe { function(&raw) };
    drop(crash);
    if let Some(lock) = &library.lock {
        lock.release();
    }
    drop(buffer);

    let collected = state
        .collected
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let error = |message: String, panicked: bool| RecipeError {
        message,
        panicked,
        paths: collected.paths.clone(),
    };
    let said = || {
        collected
            .error
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| format!("recipe `{recipe}` failed without saying why"))
    };
    match status {
        abi::PANIC => {
            library.poisoned.store(true, Ordering::SeqCst);
            let message = match collected.error.as_deref() {
                Some(message) if !message.is_empty() => {
                    format!("recipe `{recipe}` panicked: {message}")
                }
                _ => format!("recipe `{recipe}` panicked"),
            };
            Err(error(message, true))
        }
        _ if collected.fault.is_some() => {
            Err(error(collected.fault.clone().unwrap_or_default(), false))
        }
        abi::OK => Ok(CallResult {
            paths: collected.paths,
            outputs: collected.outputs.into_iter().collect(),
        }),
        abi::ERROR => Err(error(said(), false)),
        abi::UNSUPPORTED => Err(error(
            format!("recipe `{recipe}` says it does not support {}", hook.name()),
            false,
        )),
        other => Err(error(
            format!(
                "recipe `{recipe}` returned the unknown status {other}: {}",
                said()
            ),
            false,
        )),
    }
}

/// Runs a callback body; a panic in the host (for example in a [`Host`] implementation)
/// becomes `ERROR` instead of unwinding into the plugin.
fn guarded(body: impl FnOnce() -> i32) -> i32 {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(abi::ERROR)
}

/// # Safety
/// `ctx` must be the `CallState` of a running call.
unsafe fn state<'a>(ctx: *mut c_void) -> &'a CallState<'a> {
    // SAFETY: the host set `ctx` to its `CallState`, alive until the recipe returns.
    unsafe { &*(ctx as *const CallState) }
}

unsafe extern "C" fn add_path(ctx: *mut c_void, path: Str) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes a readable string.
        match unsafe { state.text(path, "a path") } {
            Ok(path) => {
                state.collected().paths.push(PathBuf::from(path));
                abi::OK
            }
            Err(status) => status,
        }
    })
}

unsafe extern "C" fn set_output(ctx: *mut c_void, name: Str, value: Str) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        let (name, value) = match unsafe {
            (
                state.text(name, "an output name"),
                state.text(value, "an output value"),
            )
        } {
            (Ok(name), Ok(value)) => (name, value),
            (Err(status), _) | (_, Err(status)) => return status,
        };
        state.collected().outputs.insert(name, value);
        abi::OK
    })
}

unsafe extern "C" fn set_error(ctx: *mut c_void, message: Str) {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes a readable string.
        let Some(bytes) = (unsafe { message.as_bytes() }) else {
            return state.fault("an error message", None);
        };
        // An error message is shown, not trusted: invalid UTF-8 is replaced, not refused.
        let cut = bytes.len() > MAX_ERROR;
        let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR)]).into_owned();
        if cut {
            text.push_str(&format!(" [… {} more bytes cut]", bytes.len() - MAX_ERROR));
        }
        state.collected().error = Some(text);
        abi::OK
    });
}

unsafe extern "C" fn get_option(
    ctx: *mut c_void,
    section: Str,
    option: Str,
    value: *mut Str,
) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        let (section, option) = match unsafe {
            (
                state.text(section, "a section name"),
                state.text(option, "an option name"),
            )
        } {
            (Ok(section), Ok(option)) => (section, option),
            (Err(status), _) | (_, Err(status)) => return status,
        };
        if value.is_null() {
            return state.fault("the place for an option value", None);
        }
        match state.host.option(&section, &option) {
            Some(text) => {
                let lent = state.lend(&text);
                // SAFETY: checked non-null; the recipe passes a place for one `Str`.
                unsafe { value.write(lent) };
                abi::OK
            }
            None => abi::NOT_FOUND,
        }
    })
}

unsafe extern "C" fn nested_build(
    ctx: *mut c_void,
    config: Str,
    directory: Str,
    error: *mut Str,
) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        let (config, directory) = match unsafe {
            (
                state.text(config, "a config path"),
                state.text(directory, "a directory"),
            )
        } {
            (Ok(config), Ok(directory)) => (config, directory),
            (Err(status), _) | (_, Err(status)) => return status,
        };
        // A nested build may run recipes of this very plugin: let them in meanwhile.
        if let Some(lock) = state.lock {
            lock.release();
        }
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            state
                .host
                .nested_build(Path::new(&config), Path::new(&directory))
        }))
        .unwrap_or_else(|_| Err(format!("nested build of {config} panicked in rbuildout")));
        if let Some(lock) = state.lock {
            lock.acquire();
        }
        match outcome {
            Ok(()) => abi::OK,
            Err(message) => {
                if !error.is_null() {
                    let lent = state.lend(&message);
                    // SAFETY: checked non-null; the recipe passes a place for one `Str`.
                    unsafe { error.write(lent) };
                }
                abi::ERROR
            }
        }
    })
}

unsafe extern "C" fn cancelled(ctx: *mut c_void) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        i32::from(state.host.cancelled())
    })
}

unsafe extern "C" fn owns(ctx: *mut c_void, path: Str) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes a readable string.
        let path = match unsafe { state.text(path, "a path") } {
            Ok(path) => normalize(&state.directory.join(path)),
            Err(status) => return status,
        };
        // A set, so that a part with a million paths answers each question in the time of
        // a few lookups: the path itself or one of its folders.
        let directory = normalize(state.directory);
        let owned = state.owned_set.get_or_init(|| {
            state
                .owned
                .iter()
                .map(|p| normalize(&directory.join(p)))
                // The instance folder, or one above it, owns nothing (an old state may
                // record it): it would make every file the part's.
                .filter(|p| !directory.starts_with(p))
                .collect()
        });
        if path.ancestors().any(|p| owned.contains(p)) {
            abi::OK
        } else {
            abi::NOT_FOUND
        }
    })
}

unsafe extern "C" fn log_call(ctx: *mut c_void, level: u32, target: Str, message: Str) {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        let (target, message) = unsafe { (lossy(target), lossy(message)) };
        emit(level, state.plugin, Some(state.part), &target, &message);
        abi::OK
    });
}

/// The log function of `HostApi`, for messages outside any call; `ctx` is the plugin's name
/// (leaked, so valid forever) or null.
pub(super) unsafe extern "C" fn log_global(
    ctx: *mut c_void,
    level: u32,
    target: Str,
    message: Str,
) {
    guarded(|| {
        // SAFETY: the host set `ctx` to a leaked `String`, or null.
        let plugin = unsafe { (ctx as *const String).as_ref() }.map_or("", String::as_str);
        // SAFETY: the plugin passes readable strings.
        let (target, message) = unsafe { (lossy(target), lossy(message)) };
        emit(level, plugin, None, &target, &message);
        abi::OK
    });
}

/// # Safety
/// `s` must point to `len` readable bytes.
unsafe fn lossy(s: Str) -> String {
    // SAFETY: the caller promises readable bytes.
    match unsafe { s.as_bytes() } {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => String::new(),
    }
}

/// Re-emits a plugin's message one level quieter (see the module docs).
fn emit(level: u32, plugin: &str, part: Option<&str>, target: &str, message: &str) {
    macro_rules! event {
        ($level:expr) => {
            match (part, target.is_empty()) {
                (Some(part), true) => {
                    tracing::event!(target: "rbuildout::recipe", $level, part, plugin, "{message}")
                }
                (Some(part), false) => tracing::event!(
                    target: "rbuildout::recipe",
                    $level,
                    part,
                    plugin,
                    plugin_target = target,
                    "{message}"
                ),
                (None, true) => {
                    tracing::event!(target: "rbuildout::recipe", $level, plugin, "{message}")
                }
                (None, false) => tracing::event!(
                    target: "rbuildout::recipe",
                    $level,
                    plugin,
                    plugin_target = target,
                    "{message}"
                ),
            }
        };
    }
    match level {
        abi::LEVEL_ERROR => event!(tracing::Level::ERROR),
        abi::LEVEL_WARN => event!(tracing::Level::WARN),
        abi::LEVEL_INFO => event!(tracing::Level::DEBUG),
        _ => event!(tracing::Level::TRACE),
    }
}

/// At most 200 bytes, with anything but printable ASCII escaped.
fn escaped(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(200)];
    let mut text = shown.escape_ascii().to_string();
    if bytes.len() > shown.len() {
        text.push('…');
    }
    text
}
