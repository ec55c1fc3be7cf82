//! Forwards a plugin's logs to the host: a `tracing` subscriber for the plugin's own copy of
//! `tracing`, and the panic hook (which, in a plugin built with `panic = "abort"`, is the
//! only way the panic's message and location reach the user).
//!
//! A cdylib links its own copy of `tracing`, so the host's subscriber is invisible to it and
//! every event would be dropped. `init` installs [`Bridge`] as the plugin's global subscriber;
//! it sends each event to the call running on the current thread (so the host can name the
//! part), or, outside any call, to the host's global log function.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::abi::{self, HostApi, Str};

/// The host's API as `init` received it.
struct HostCopy(HostApi);

// SAFETY: the ABI requires the host's `log` to be callable from any thread with its `ctx`.
unsafe impl Sync for HostCopy {}
// SAFETY: as above.
unsafe impl Send for HostCopy {}

static HOST: OnceLock<HostCopy> = OnceLock::new();

thread_local! {
    /// The call running on this thread, if any.
    static CURRENT: Cell<*const abi::Call> = const { Cell::new(std::ptr::null()) };
    /// Where the last panic on this thread happened, set by the panic hook.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks a call as running on this thread until dropped (calls may nest).
pub(crate) struct CurrentCall {
    previous: *const abi::Call,
}

impl CurrentCall {
    pub(crate) fn enter(call: *const abi::Call) -> CurrentCall {
        CurrentCall {
            previous: CURRENT.with(|c| c.replace(call)),
        }
    }
}

impl Drop for CurrentCall {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Keeps what it can of the host's API, installs the bridge and the panic hook. Fields the
/// host's (older, smaller) `HostApi` lacks stay empty.
pub(crate) fn install(host: &HostApi) {
    let mut copy = HostApi {
        struct_size: std::mem::size_of::<HostApi>(),
        abi_major: host.abi_major,
        abi_minor: host.abi_minor,
        max_level: abi::LEVEL_INFO,
        ctx: std::ptr::null_mut(),
        log: None,
    };
    if crate::has_field!(HostApi, max_level, host.struct_size) {
        copy.max_level = host.max_level;
    }
    if crate::has_field!(HostApi, log, host.struct_size) {
        copy.ctx = host.ctx;
        copy.log = host.log;
    }
    let max_level = copy.max_level;
    if HOST.set(HostCopy(copy)).is_err() {
        // A second `init` (the same library loaded by a second registry): already set up.
        return;
    }
    let _ = tracing::subscriber::set_global_default(Bridge {
        max: level_filter(max_level),
    });
    std::panic::set_hook(Box::new(on_panic));
}

/// The panic hook: notes where the panic happened, for the export guard's message, and
/// sends it to the host.
fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let message = super::export::panic_message(info.payload());
    let text = match &location {
        Some(location) => format!("panicked at {location}: {message}"),
        None => format!("panicked: {message}"),
    };
    PANIC_LOCATION.with(|l| *l.borrow_mut() = location);
    // Unwinding, the export guard catches the panic and the host reports it with this
    // location, so the hook's copy is only for `-vv`. Built with `panic = "abort"`, the
    // process aborts right after this hook (the host names the part and library from its
    // crash handler), so this is the only report of what went wrong: an error.
    let level = if cfg!(panic = "abort") {
        Level::ERROR
    } else {
        Level::DEBUG
    };
    send(None, level, "panic", &text);
}

/// Installs, once, a panic hook for a process that links recipes instead of loading them:
/// a panic on a thread inside a recipe call goes to [`on_panic`], as in a library whose
/// `init` ran, and any other panic to the hook this one replaces.
#[cfg(feature = "host")]
pub(crate) fn chain_panic_hook() {
    static CHAINED: std::sync::Once = std::sync::Once::new();
    CHAINED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CURRENT.with(Cell::get).is_null() {
                previous(info);
            } else {
                on_panic(info);
            }
        }));
    });
}

/// The location the panic hook saw for the last panic on this thread, taken.
pub(crate) fn take_panic_location() -> Option<String> {
    PANIC_LOCATION.with(|l| l.borrow_mut().take())
}

/// Sends one message to the host: through `call` if given, else the call running on this
/// thread, else the host's global log. Dropped when the host shows nothing at `level`.
pub(crate) fn send(call: Option<&abi::Call>, level: Level, target: &str, message: &str) {
    let level = level_number(level);
    if HOST.get().is_some_and(|host| level > host.0.max_level) {
        return;
    }
    let current = CURRENT.with(Cell::get);
    // SAFETY: `CURRENT` is only set, by the export guard, to the valid call running on this
    // thread, and reset before that call returns.
    let call = call.or(unsafe { current.as_ref() });
    let (log, ctx) = match call {
        Some(call) => (call.log, call.ctx),
        None => match HOST.get() {
            Some(host) => (host.0.log, host.0.ctx),
            None => (None, std::ptr::null_mut()),
        },
    };
    if let Some(log) = log {
        // SAFETY: a log function and ctx the host gave for the running call, or its global
        // one, which it keeps callable from any thread.
        unsafe { log(ctx, level, Str::new(target), Str::new(message)) };
    }
}

fn level_number(level: Level) -> u32 {
    match level {
        Level::ERROR => abi::LEVEL_ERROR,
        Level::WARN => abi::LEVEL_WARN,
        Level::INFO => abi::LEVEL_INFO,
        Level::DEBUG => abi::LEVEL_DEBUG,
        Level::TRACE => abi::LEVEL_TRACE,
    }
}

fn level_filter(max_level: u32) -> LevelFilter {
    match max_level {
        0 => LevelFilter::OFF,
        abi::LEVEL_ERROR => LevelFilter::ERROR,
        abi::LEVEL_WARN => LevelFilter::WARN,
        abi::LEVEL_INFO => LevelFilter::INFO,
        abi::LEVEL_DEBUG => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The plugin's `tracing` subscriber: events become host log messages ("message key=value");
/// spans are accepted and ignored.
struct Bridge {
    max: LevelFilter,
}

static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

impl Subscriber for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(NEXT_SPAN.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text::default();
        event.record(&mut text);
        let metadata = event.metadata();
        send(None, *metadata.level(), metadata.target(), &text.finish());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Renders an event's fields: the message first, then ` key=value` for the others.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_owned()
        } else {
            self.message + &self.fields
        }
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
