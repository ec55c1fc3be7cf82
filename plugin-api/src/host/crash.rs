//! Naming the part and library when a plugin crashes the process (SIGSEGV, SIGBUS, SIGILL,
//! SIGFPE, SIGABRT): nothing can be recovered once a plugin corrupts memory, but the user
//! should see which recipe did it, not only "Segmentation fault".
//!
//! Before each recipe call (and while a library loads: [`Guard::loading`]),
//! [`Guard::enter`] writes the message ("rbuildout: part `x`
//! crashed in recipe `lib:entry` (/path/lib.so): ") into one of a fixed set of slots,
//! tagged with the calling thread; the guard clears it when dropped. The signal handler only
//! reads atomics, copies the bytes to its stack and calls write(2) — no lock, no allocation,
//! so it is async-signal-safe — then restores the default action and raises the signal
//! again, so the process still dies of it (exit status and core dump as without rbuildout).
//! A crash on a thread with no call (the engine itself, or a thread a plugin started) names
//! every call running at that moment; with no call at all the previous handler (Rust's
//! stack overflow report) gets the signal unchanged.

use std::sync::Once;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The signals a crashing plugin dies of.
const SIGNALS: [(libc::c_int, &str); 5] = [
    (libc::SIGSEGV, "segmentation fault (SIGSEGV)\n"),
    (libc::SIGBUS, "bus error (SIGBUS)\n"),
    (libc::SIGILL, "illegal instruction (SIGILL)\n"),
    (libc::SIGFPE, "arithmetic exception (SIGFPE)\n"),
    (libc::SIGABRT, "aborted (SIGABRT)\n"),
];

/// Calls running at once: the worker threads plus nested builds. A call finding no free
/// slot simply runs unnamed.
const SLOTS: usize = 64;
/// Bytes of one message; a longer one (a very long library path) is cut.
const MESSAGE: usize = 1024;

const FREE: usize = 0;
const BUSY: usize = 1;
const READY: usize = 2;

/// One message, written by the thread that owns it and read by the signal handler. Atomic
/// bytes make a read during a rewrite garbled at worst, never undefined.
struct Slot {
    state: AtomicUsize,
    thread: AtomicUsize,
    /// When the call began, in [`NEXT`] order: a nested build's recipe call runs on the
    /// thread of the call that asked for it, and the innermost (latest) one crashed.
    order: AtomicUsize,
    len: AtomicUsize,
    bytes: [AtomicU8; MESSAGE],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    state: AtomicUsize::new(FREE),
    thread: AtomicUsize::new(0),
    order: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    bytes: [const { AtomicU8::new(0) }; MESSAGE],
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// The order of the next call to begin.
static NEXT: AtomicUsize = AtomicUsize::new(1);

/// The actions in place before ours, given back the signal when no call is running.
static PREVIOUS: [OnceLock<libc::sigaction>; SIGNALS.len()] = [const { OnceLock::new() }; 5];

fn this_thread() -> usize {
    // SAFETY: pthread_self has no preconditions; it reads the thread pointer.
    unsafe { libc::pthread_self() as usize }
}

/// Marks one recipe call on this thread until dropped.
pub struct Guard {
    slot: Option<usize>,
}

impl Guard {
    /// Marks a call of `recipe` (from `library`) for `part`.
    pub fn enter(part: &str, recipe: &str, library: &std::path::Path) -> Guard {
        Guard::with(&format!(
            "rbuildout: part `{part}` crashed in recipe `{recipe}` ({}): ",
            library.display()
        ))
    }

    /// Marks the loading of a plugin library (its initialisers, entry and `init` run).
    pub fn loading(library: &std::path::Path) -> Guard {
        Guard::with(&format!(
            "rbuildout: crashed loading recipe plugin {}: ",
            library.display()
        ))
    }

    /// Marks a plugin's `run_end` call.
    pub fn run_end(library: &std::path::Path) -> Guard {
        Guard::with(&format!(
            "rbuildout: crashed in the run_end of recipe plugin {}: ",
            library.display()
        ))
    }

    /// Installs the handler (once per process) and records `text` for this thread.
    fn with(text: &str) -> Guard {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(install);
        let bytes = text.as_bytes();
        let len = bytes.len().min(MESSAGE);
        let slot = TABLE.iter().position(|s| {
            s.state
                .compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(i) = slot {
            let s = &TABLE[i];
            for (to, from) in s.bytes.iter().zip(&bytes[..len]) {
                to.store(*from, Ordering::Relaxed);
            }
            s.len.store(len, Ordering::Relaxed);
            s.thread.store(this_thread(), Ordering::Relaxed);
            s.order
                .store(NEXT.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            s.state.store(READY, Ordering::Release);
        }
        Guard { slot }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            TABLE[i].state.store(FREE, Ordering::Release);
        }
    }
}

/// Writes all of `bytes` to stderr with write(2), the only output allowed in the handler.
fn write_stderr(bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: the pointer and length describe the unwritten rest of `bytes`.
        let n = unsafe {
            libc::write(
                libc::STDERR_FILENO,
                bytes[done..].as_ptr().cast(),
                bytes.len() - done,
            )
        };
        if n <= 0 {
            return;
        }
        done += n as usize;
    }
}

/// Writes the message of slot `s` followed by the signal's name.
fn report(s: &Slot, name: &str) {
    let mut buffer = [0u8; MESSAGE];
    let len = s.len.load(Ordering::Relaxed).min(MESSAGE);
    for (to, from) in buffer.iter_mut().zip(&s.bytes[..len]) {
        *to = from.load(Ordering::Relaxed);
    }
    write_stderr(&buffer[..len]);
    write_stderr(name.as_bytes());
}

extern "C" fn on_crash(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t (checked for null anyway).
    // A code of zero or less means the signal was sent (kill, raise, abort), not a fault.
    let sent = unsafe { info.as_ref() }.is_none_or(|i| i.si_code <= 0);
    let Some(index) = SIGNALS.iter().position(|(s, _)| *s == signal) else {
        return;
    };
    let name = SIGNALS[index].1;
    let me = this_thread();
    let ready = |s: &&Slot| s.state.load(Ordering::Acquire) == READY;
    let mine = TABLE
        .iter()
        .filter(ready)
        .filter(|s| s.thread.load(Ordering::Relaxed) == me)
        .max_by_key(|s| s.order.load(Ordering::Relaxed));
    let any = TABLE.iter().any(|s| ready(&s));
    let back = if let Some(s) = mine {
        report(s, name);
        None
    } else if any {
        write_stderr(b"rbuildout: crashed outside a recipe call's thread while these ran:\n");
        for s in TABLE.iter().filter(ready) {
            report(s, name);
        }
        None
    } else {
        PREVIOUS[index].get()
    };
    // SAFETY: sigaction, sigemptyset and raise are async-signal-safe; `action` is a zeroed
    // sigaction given the default handler, or the action that was in place before ours.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut default.sa_mask);
        let action = back.unwrap_or(&default);
        libc::sigaction(signal, action, std::ptr::null_mut());
        // A fault re-executes the faulting instruction on return and so reaches the
        // restored action; a signal that was sent (kill, abort()) is sent again. Blocked
        // while this handler runs, it arrives as soon as the handler returns. After a report
        // it is raised in any case, so the default action ends the process at once.
        if back.is_none() || sent {
            libc::raise(signal);
        }
    }
}

fn install() {
    for (i, (signal, _)) in SIGNALS.iter().enumerate() {
        // SAFETY: the handler is async-signal-safe (see above); the sigaction structs are
        // zeroed, then given a handler, flags and an empty mask. SA_ONSTACK lets it run on
        // the alternate stack Rust sets up per thread, so a stack overflow is reported too.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_crash
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            action.sa_flags = libc::SA_ONSTACK | libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(*signal, &action, &mut old) == 0 {
                let _ = PREVIOUS[i].set(old);
            }
        }
    }
}
