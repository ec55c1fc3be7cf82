//! [`Context`]: what a recipe knows about the part it runs for, and how it reports back.

use std::path::Path;

use tracing::Level;

use super::{Error, Result};
use crate::abi::{self, Str};

/// The part a recipe function runs for, and the host's services during the call: register
/// paths, publish outputs, log, read other options, run a nested build.
///
/// Every method copies what it hands to the host, so arguments may be temporaries.
pub struct Context<'a> {
    call: &'a abi::Call,
    part: &'a str,
    directory: &'a Path,
}

// SAFETY: the ABI requires the host's callbacks to be callable from any thread while the call
// lasts, and the `Call` itself is only read.
unsafe impl Sync for Context<'_> {}
// SAFETY: as above.
unsafe impl Send for Context<'_> {}

impl<'a> Context<'a> {
    /// Reads the part's name and directory out of a raw call.
    ///
    /// # Safety
    /// `call` must be a valid `Call` from the host, with the strings it points at alive for `'a`.
    pub(crate) unsafe fn from_raw(call: &'a abi::Call) -> Result<Context<'a>> {
        // A host of ABI 1.0 passes a shorter call; the fields added since are read only
        // after checking `struct_size` (see `owns`).
        if call.struct_size < abi::CALL_SIZE_1_0 {
            return Err(Error::new(format!(
                "the host passed a call of {} bytes, fewer than plugin ABI v1.0 needs ({})",
                call.struct_size,
                abi::CALL_SIZE_1_0
            )));
        }
        // SAFETY: the host keeps both strings alive for the call.
        let part = unsafe { host_str(call.part) }
            .ok_or_else(|| Error::new("the host passed a part name that is not UTF-8"))?;
        // SAFETY: as above.
        let directory = unsafe { host_str(call.buildout_directory) }
            .ok_or_else(|| Error::new("the host passed a buildout directory that is not UTF-8"))?;
        Ok(Context {
            call,
            part,
            directory: Path::new(directory),
        })
    }

    pub(crate) fn raw(&self) -> &'a abi::Call {
        self.call
    }

    /// The part's name: its section in the config.
    pub fn part(&self) -> &'a str {
        self.part
    }

    /// `${buildout:directory}`, absolute: the root of the instance.
    pub fn buildout_directory(&self) -> &'a Path {
        self.directory
    }

    /// Whether the run is offline (`-o`): do not touch the network.
    pub fn offline(&self) -> bool {
        self.call.flags & abi::CALL_OFFLINE != 0
    }

    /// Whether the run looks for the newest versions (`-n`).
    pub fn newest(&self) -> bool {
        self.call.flags & abi::CALL_NEWEST != 0
    }

    /// Whether the run must not change lock files (`--locked`): fail instead.
    pub fn locked(&self) -> bool {
        self.call.flags & abi::CALL_LOCKED != 0
    }

    /// Registers a path the part owns (relative paths are relative to the buildout
    /// directory). The engine removes it when the part is uninstalled or this call fails; a
    /// path outside the instance is reported and left alone.
    pub fn register(&self, path: &Path) -> Result<()> {
        let text = path
            .to_str()
            .ok_or_else(|| Error::new(format!("path {} is not valid UTF-8", path.display())))?;
        let Some(add_path) = self.call.add_path else {
            return Err(Error::new("the host offers no way to register paths"));
        };
        // SAFETY: the callback and ctx come from the host for this call; `text` outlives it.
        let status = unsafe { add_path(self.call.ctx, Str::new(text)) };
        check(status, || {
            format!("the host refused to register {}", path.display())
        })
    }

    /// Publishes an output of the part, `${part:name}` for the parts after it.
    pub fn publish(&self, name: &str, value: &str) -> Result<()> {
        let Some(set_output) = self.call.set_output else {
            return Err(Error::new("the host offers no way to publish outputs"));
        };
        // SAFETY: the callback and ctx come from the host for this call.
        let status = unsafe { set_output(self.call.ctx, Str::new(name), Str::new(value)) };
        check(status, || format!("the host refused the output `{name}`"))
    }

    /// Any resolved option of any section (`${section:option}`), as text; `None` when it
    /// does not exist.
    pub fn option(&self, section: &str, option: &str) -> Option<String> {
        let get_option = self.call.get_option?;
        let mut value = Str::EMPTY;
        // SAFETY: the callback and ctx come from the host for this call; `value` is a valid
        // place for the host to write to.
        let status = unsafe {
            get_option(
                self.call.ctx,
                Str::new(section),
                Str::new(option),
                &mut value,
            )
        };
        if status != abi::OK {
            return None;
        }
        // SAFETY: on OK the host set `value` to a string it keeps alive until the call ends.
        unsafe { host_str(value) }.map(str::to_owned)
    }

    /// `[buildout]`, typed: the options most recipes read, each read through
    /// [`Context::option`] when asked for (so the host records it as an input of the part).
    pub fn buildout(&self) -> super::Buildout<'_> {
        super::Buildout::new(self)
    }

    /// Builds the config `config` into the folder `directory` as a buildout of its own, with
    /// the same flags; returns when it is done.
    pub fn nested_build(&self, config: &Path, directory: &Path) -> Result<()> {
        let (Some(config_text), Some(directory_text)) = (config.to_str(), directory.to_str())
        else {
            return Err(Error::new(format!(
                "nested build of {} into {}: paths must be valid UTF-8",
                config.display(),
                directory.display()
            )));
        };
        let Some(nested_build) = self.call.nested_build else {
            return Err(Error::new("the host offers no nested builds"));
        };
        let mut error = Str::EMPTY;
        // SAFETY: the callback and ctx come from the host for this call; `error` is a valid
        // place for the host to write to.
        let status = unsafe {
            nested_build(
                self.call.ctx,
                Str::new(config_text),
                Str::new(directory_text),
                &mut error,
            )
        };
        if status == abi::OK {
            return Ok(());
        }
        // SAFETY: the host set `error` to a string it keeps alive until the call ends.
        let message = unsafe { host_str(error) }.unwrap_or("");
        Err(Error::new(if message.is_empty() {
            format!("nested build of {} failed", config.display())
        } else {
            message.to_owned()
        }))
    }

    /// Whether the user asked the run to stop (Ctrl-C). A recipe that works for long should
    /// check it now and then and return an error when it is set, leaving nothing
    /// half-written.
    pub fn cancelled(&self) -> bool {
        match self.call.cancelled {
            // SAFETY: the callback and ctx come from the host for this call.
            Some(cancelled) => unsafe { cancelled(self.call.ctx) != 0 },
            None => false,
        }
    }

    /// The names of every option of `section` that resolves, in the config's order
    /// (zc.buildout's `buildout[section].keys()`); `None` when there is no such section, or
    /// when the host is older than ABI 1.2 and cannot list them.
    pub fn option_names(&self, section: &str) -> Option<Vec<String>> {
        if !crate::has_field!(abi::Call, option_names, self.call.struct_size) {
            return None;
        }
        let option_names = self.call.option_names?;
        let mut names = Str::EMPTY;
        // SAFETY: the field lies within the host's `struct_size`, so the host set it; the
        // callback and ctx come from the host for this call; `names` is a valid place for the
        // host to write to.
        let status = unsafe { option_names(self.call.ctx, Str::new(section), &mut names) };
        if status != abi::OK {
            return None;
        }
        // SAFETY: on OK the host set `names` to a string it keeps alive until the call ends.
        let text = unsafe { host_str(names) }?;
        Some(
            text.split('\n')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Whether the part made `path` in an earlier run: it is one of the paths the state
    /// recorded for the part before this call (for the install of a reinstall, the old
    /// record's), or inside one of them. `path` is absolute or relative to the buildout
    /// directory; `.` and `..` are resolved lexically. False when the host is older than
    /// ABI 1.1 and cannot tell. [`files::check_target`](super::files::check_target) uses it.
    pub fn owns(&self, path: &Path) -> bool {
        if !crate::has_field!(abi::Call, owns, self.call.struct_size) {
            return false;
        }
        let (Some(owns), Some(text)) = (self.call.owns, path.to_str()) else {
            return false;
        };
        // SAFETY: the field lies within the host's `struct_size`, so the host set it; the
        // callback and ctx come from the host for this call and `text` outlives it.
        unsafe { owns(self.call.ctx, Str::new(text)) == abi::OK }
    }

    /// Reports that `done` of `total` things of the step `label` names are done (ABI 1.5),
    /// for the bar rbuildout draws under the part's line on a terminal: `label` is a plural
    /// noun, `distributions` or `files compiled`; `total` is 0 while it is not known. A
    /// report with another label starts a new step. Nothing happens on a host older than
    /// ABI 1.5. Report at most every 50 to 100 ms and at the end of each step.
    pub fn progress(&self, label: &str, done: u64, total: u64) {
        self.send_progress(abi::PROGRESS_COUNT, done, total, label);
    }

    /// Reports that `done` of `total` bytes (0: not known) of the current step are
    /// transferred, `file` being the one transferred now (may be empty); see
    /// [`progress`](Context::progress).
    pub fn progress_bytes(&self, done: u64, total: u64, file: &str) {
        self.send_progress(abi::PROGRESS_BYTES, done, total, file);
    }

    fn send_progress(&self, kind: u32, done: u64, total: u64, label: &str) {
        if !crate::has_field!(abi::Call, progress, self.call.struct_size) {
            return;
        }
        if let Some(progress) = self.call.progress {
            // SAFETY: the field lies within the host's `struct_size`, so the host set it; the
            // callback and ctx come from the host for this call and `label` outlives it.
            unsafe { progress(self.call.ctx, kind, done, total, Str::new(label)) };
        }
    }

    /// Logs a message attributed to this part; the host shows it through its own logging
    /// (`-v` for debug). `tracing` macros inside a call do the same.
    pub fn log(&self, level: Level, message: &str) {
        super::bridge::send(Some(self.call), level, "", message);
    }

    /// Logs at info level.
    pub fn info(&self, message: &str) {
        self.log(Level::INFO, message);
    }

    /// Logs at warn level.
    pub fn warn(&self, message: &str) {
        self.log(Level::WARN, message);
    }

    /// Logs at debug level (shown with `-v`).
    pub fn debug(&self, message: &str) {
        self.log(Level::DEBUG, message);
    }
}

fn check(status: i32, message: impl FnOnce() -> String) -> Result<()> {
    if status == abi::OK {
        Ok(())
    } else {
        Err(Error::new(message()))
    }
}

/// A string the host passed, if it is valid UTF-8.
///
/// # Safety
/// `s` must come from the host and still be alive for `'a`.
pub(crate) unsafe fn host_str<'a>(s: Str) -> Option<&'a str> {
    // SAFETY: the caller promises the host keeps the bytes alive.
    let bytes = unsafe { s.as_bytes() }?;
    std::str::from_utf8(bytes).ok()
}
