//! The host callbacks of a call and the state they share (see the parent module).

use std::collections::HashSet;
use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::{Host, Log, MAX_ERROR, Reply, Request};
use crate::abi::{self, Str};
use crate::sdk::files::normalize;

/// The callbacks' `ctx`: everything one call needs, alive until the recipe returns.
pub(super) struct State<'a> {
    pub request: &'a Request<'a>,
    pub host: &'a dyn Host,
    /// What the recipe reported so far (its `status` is set when it returns).
    pub reply: Mutex<Reply>,
    /// Strings lent to the recipe, NUL-terminated, kept until the call ends. Boxed, so they
    /// never move.
    pub arena: Mutex<Vec<Box<[u8]>>>,
    /// [`Request::owned`], absolute and normalized, made on the first `owns` question.
    pub owned: OnceLock<HashSet<PathBuf>>,
}

impl State<'_> {
    fn reply(&self) -> MutexGuard<'_, Reply> {
        self.reply.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an ABI fault (the first one wins) and returns the status for the callback.
    fn fault(&self, what: &str, bytes: Option<&[u8]>) -> i32 {
        let recipe = self.request.recipe;
        let message = match bytes {
            Some(bytes) => format!(
                "recipe `{recipe}` sent {what} that is not valid UTF-8: \"{}\"",
                escaped(bytes)
            ),
            None => format!("recipe `{recipe}` sent {what} as a null pointer"),
        };
        self.reply().fault.get_or_insert(message);
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

    /// Two strings from the recipe, or the status of the first fault.
    ///
    /// # Safety
    /// As for [`text`](State::text), for both.
    unsafe fn texts(&self, a: (Str, &str), b: (Str, &str)) -> Result<(String, String), i32> {
        // SAFETY: the caller's promise, passed on.
        let (a, b) = unsafe { (self.text(a.0, a.1), self.text(b.0, b.1)) };
        Ok((a?, b?))
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

    /// Whether `path` (absolute, or relative to the buildout directory) is one of the
    /// recorded paths or inside one.
    fn owns(&self, path: &str) -> bool {
        let directory = normalize(Path::new(self.request.buildout_directory));
        let path = normalize(&directory.join(path));
        // A set, so that a part with a million paths answers each question in the time of a
        // few lookups: the path itself or one of its folders.
        let owned = self.owned.get_or_init(|| {
            self.request
                .owned
                .iter()
                .map(|p| normalize(&directory.join(p)))
                // The instance folder, or one above it, owns nothing (an old state may record
                // it): it would make every file the part's.
                .filter(|p| !directory.starts_with(p))
                .collect()
        });
        path.ancestors().any(|p| owned.contains(p))
    }
}

/// Runs a callback body; a panic in the host (for example in a [`Host`] implementation)
/// becomes `ERROR` instead of unwinding into the plugin.
fn guarded(body: impl FnOnce() -> i32) -> i32 {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(abi::ERROR)
}

/// # Safety
/// `ctx` must be the `State` of a running call.
unsafe fn state<'a>(ctx: *mut c_void) -> &'a State<'a> {
    // SAFETY: the host set `ctx` to its `State`, alive until the recipe returns.
    unsafe { &*(ctx as *const State) }
}

pub(super) unsafe extern "C" fn add_path(ctx: *mut c_void, path: Str) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes a readable string.
        match unsafe { state.text(path, "a path") } {
            Ok(path) => {
                state.reply().paths.push(PathBuf::from(path));
                abi::OK
            }
            Err(status) => status,
        }
    })
}

pub(super) unsafe extern "C" fn set_output(ctx: *mut c_void, name: Str, value: Str) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        match unsafe { state.texts((name, "an output name"), (value, "an output value")) } {
            Ok(output) => {
                state.reply().outputs.push(output);
                abi::OK
            }
            Err(status) => status,
        }
    })
}

pub(super) unsafe extern "C" fn set_error(ctx: *mut c_void, message: Str) {
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
        state.reply().error = Some(text);
        abi::OK
    });
}

pub(super) unsafe extern "C" fn get_option(
    ctx: *mut c_void,
    section: Str,
    option: Str,
    value: *mut Str,
) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        let (section, option) =
            match unsafe { state.texts((section, "a section name"), (option, "an option name")) } {
                Ok(names) => names,
                Err(status) => return status,
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

pub(super) unsafe extern "C" fn option_names(
    ctx: *mut c_void,
    section: Str,
    names: *mut Str,
) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes a readable string.
        let section = match unsafe { state.text(section, "a section name") } {
            Ok(section) => section,
            Err(status) => return status,
        };
        if names.is_null() {
            return state.fault("the place for option names", None);
        }
        match state.host.option_names(&section) {
            Some(list) => {
                let lent = state.lend(&list.join("\n"));
                // SAFETY: checked non-null; the recipe passes a place for one `Str`.
                unsafe { names.write(lent) };
                abi::OK
            }
            None => abi::NOT_FOUND,
        }
    })
}

pub(super) unsafe extern "C" fn nested_build(
    ctx: *mut c_void,
    config: Str,
    directory: Str,
    error: *mut Str,
) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        let (config, directory) =
            match unsafe { state.texts((config, "a config path"), (directory, "a directory")) } {
                Ok(paths) => paths,
                Err(status) => return status,
            };
        match state
            .host
            .nested_build(Path::new(&config), Path::new(&directory))
        {
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

pub(super) unsafe extern "C" fn cancelled(ctx: *mut c_void) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        i32::from(state.host.cancelled())
    })
}

pub(super) unsafe extern "C" fn owns(ctx: *mut c_void, path: Str) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes a readable string.
        match unsafe { state.text(path, "a path") } {
            Ok(path) if state.owns(&path) => abi::OK,
            Ok(_) => abi::NOT_FOUND,
            Err(status) => status,
        }
    })
}

pub(super) unsafe extern "C" fn progress(
    ctx: *mut c_void,
    kind: u32,
    done: u64,
    total: u64,
    label: Str,
) -> i32 {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        if kind != abi::PROGRESS_COUNT && kind != abi::PROGRESS_BYTES {
            return abi::UNSUPPORTED;
        }
        // SAFETY: the recipe passes a readable string.
        match unsafe { state.text(label, "a progress label") } {
            Ok(label) => {
                state.host.progress(kind, done, total, &label);
                abi::OK
            }
            Err(status) => status,
        }
    })
}

pub(super) unsafe extern "C" fn log(ctx: *mut c_void, level: u32, target: Str, message: Str) {
    guarded(|| {
        // SAFETY: called by the recipe with our ctx, during the call.
        let state = unsafe { state(ctx) };
        // SAFETY: the recipe passes readable strings.
        let (target, message) = unsafe { (lossy(target), lossy(message)) };
        state.host.log(level, &target, &message);
        abi::OK
    });
}

/// The log function of `HostApi`, for messages outside any call; `ctx` is a leaked
/// `&'static dyn Log`.
pub(super) unsafe extern "C" fn log_global(
    ctx: *mut c_void,
    level: u32,
    target: Str,
    message: Str,
) {
    guarded(|| {
        // SAFETY: `init` set `ctx` to a leaked `&'static dyn Log`, or the plugin passed null.
        let Some(log) = (unsafe { (ctx as *const &'static dyn Log).as_ref() }) else {
            return abi::ERROR;
        };
        // SAFETY: the plugin passes readable strings.
        let (target, message) = unsafe { (lossy(target), lossy(message)) };
        log.log(level, &target, &message);
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

/// At most 200 bytes, with anything but printable ASCII escaped.
fn escaped(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(200)];
    let mut text = shown.escape_ascii().to_string();
    if bytes.len() > shown.len() {
        text.push('…');
    }
    text
}
