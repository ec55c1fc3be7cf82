//! One call into a recipe: the part's call handed to the ABI's host side
//! ([`rbuildout_plugin_api::host`]), which marshals it and runs the callbacks, and what the
//! recipe reported turned into a result. The engine's answers to the callbacks are
//! [`PartHost`]: the runner's [`Host`], the plugin's call lock, and logs attributed to the
//! part.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::Ordering;

use indexmap::IndexMap;
use rbuildout_plugin_api::abi;
use rbuildout_plugin_api::host::{self, Log, Request, crash};

use super::library::{CallLock, Entry, Library};
use super::{Call, CallResult, Hook, Host, RecipeError};

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
        Hook::Prepare => entry.prepare,
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

    let part_host = PartHost {
        host: call.host,
        plugin: &library.name,
        part: call.part,
        lock: library.lock.as_deref(),
        span: tracing::Span::current(),
    };
    let request = Request {
        recipe: &recipe,
        part: call.part,
        buildout_directory: directory,
        offline: call.offline,
        newest: call.newest,
        locked: call.locked,
        options: call.options,
        owned: call.owned,
        call_size: Request::SIZE,
    };
    if let Some(lock) = &library.lock {
        lock.acquire();
    }
    // The part's call starts: one still running after a while gets a bar of its time.
    mark_call(&part_host.span, "started");
    // Named by the crash handler if the recipe kills the process.
    let crash = crash::Guard::enter(call.part, &recipe, &library.path);
    // SAFETY: `function` comes from the checked vtable of a library that is never unloaded.
    let collected = unsafe { host::call(function, &request, &part_host) };
    drop(crash);
    if let Some(lock) = &library.lock {
        lock.release();
    }
    // The part's bar, if the recipe reported progress, goes.
    mark_call(&part_host.span, "ended");

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
    match collected.status {
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
            // First-published order, the last value of a name published twice.
            outputs: collected
                .outputs
                .into_iter()
                .collect::<IndexMap<String, String>>()
                .into_iter()
                .collect(),
            paths: collected.paths,
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

/// The target of the events that carry a recipe's progress reports (fields `kind`, `done`,
/// `total`, `label`) and, with the field `call` (`started`, `ended`), the start and end of
/// its call: the CLI draws them
/// as a bar on a terminal (docs/output.md) and never prints them as lines.
pub const PROGRESS_TARGET: &str = "rbuildout::progress";

/// Tells the progress bars that the call under `span` `started` or `ended`.
fn mark_call(span: &tracing::Span, call: &'static str) {
    tracing::event!(
        target: PROGRESS_TARGET,
        parent: span,
        tracing::Level::INFO,
        call,
        "progress"
    );
}

/// The engine's side of one call: the runner's answers, the plugin's call lock (released
/// while a nested build runs, which may call this very plugin), the part the logs name, and
/// the part's span, under which progress is reported from whatever thread the recipe uses.
struct PartHost<'a> {
    host: &'a dyn Host,
    plugin: &'a str,
    part: &'a str,
    lock: Option<&'a CallLock>,
    span: tracing::Span,
}

impl Log for PartHost<'_> {
    fn log(&self, level: u32, target: &str, message: &str) {
        emit(level, self.plugin, Some(self.part), target, message);
    }
}

impl host::Host for PartHost<'_> {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        self.host.option(section, option)
    }

    fn option_names(&self, section: &str) -> Option<Vec<String>> {
        self.host.option_names(section)
    }

    fn nested_build(&self, config: &Path, directory: &Path) -> Result<(), String> {
        if let Some(lock) = self.lock {
            lock.release();
        }
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            self.host.nested_build(config, directory)
        }))
        .unwrap_or_else(|_| {
            Err(format!(
                "nested build of {} panicked in rbuildout",
                config.display()
            ))
        });
        if let Some(lock) = self.lock {
            lock.acquire();
        }
        outcome
    }

    fn cancelled(&self) -> bool {
        self.host.cancelled()
    }

    fn progress(&self, kind: u32, done: u64, total: u64, label: &str) {
        tracing::event!(
            target: PROGRESS_TARGET,
            parent: &self.span,
            tracing::Level::INFO,
            kind,
            done,
            total,
            label,
            "progress"
        );
    }
}

/// Where the messages a plugin logs outside any call go (the log of its `HostApi`).
pub(super) struct PluginLog {
    pub plugin: String,
}

impl Log for PluginLog {
    fn log(&self, level: u32, target: &str, message: &str) {
        emit(level, &self.plugin, None, target, message);
    }
}

/// Re-emits a plugin's message one level quieter (see the docs of [`super`]).
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
