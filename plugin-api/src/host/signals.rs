//! SIGINT and SIGTERM routed to two flags a run polls, instead of killing the process in the
//! middle of a part: the first Ctrl-C sets [`CANCEL`] (no new part starts; the run returns
//! once running ones finish), the second sets [`STOP`] too (running recipes see
//! `cancelled()` and are asked to stop now), a third kills the process the default way.
//! SIGTERM, what service managers and `kill` send to end a process soon, does at once what
//! two Ctrl-C do, and the next signal of either kind kills. Killing is safe too: the state
//! file is only ever replaced atomically.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first SIGINT (or a SIGTERM).
pub static CANCEL: AtomicBool = AtomicBool::new(false);
/// Set by the second SIGINT, or by the first SIGTERM.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    let first = !CANCEL.swap(true, Ordering::Relaxed);
    if first && signal != libc::SIGTERM {
        return;
    }
    if !STOP.swap(true, Ordering::Relaxed) {
        return;
    }
    // SAFETY: signal() and raise() are async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Routes SIGINT and SIGTERM to [`CANCEL`] and [`STOP`] from now on (see the module docs).
pub fn catch_interrupts() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to atomics, which is async-signal-safe, before it
        // restores the default action and raises; the sigaction struct is zeroed, then given
        // a handler, flags and an empty mask.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}
