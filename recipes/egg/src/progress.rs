//! Progress reporting of the install pool: a bar on a terminal (`[part] eggs 3/12 file`,
//! drawn by indicatif, nothing when stderr is not a terminal) and, per distribution, how long
//! it took to be ready, for the part's debug log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bar and the timings of one part's install pool; shared by its workers.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    timings: Mutex<Vec<String>>,
}

impl Progress {
    /// A bar for `part`, hidden unless stderr is a terminal.
    pub(crate) fn new(part: &str) -> Progress {
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{prefix}] eggs {pos}/{len} {wide_msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(part.to_owned());
        Progress {
            bar,
            timings: Mutex::new(Vec::new()),
        }
    }

    /// The first distribution was queued: the spinner starts turning.
    pub(crate) fn start(&self) {
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    /// One more distribution to install.
    pub(crate) fn queued(&self) {
        self.bar.inc_length(1);
    }

    /// A worker starts on `file`; the instant is for [`ready`](Progress::ready).
    pub(crate) fn working_on(&self, file: &str) -> Instant {
        self.bar.set_message(file.to_owned());
        Instant::now()
    }

    /// `file`, started at `started`, is unpacked (or failed).
    pub(crate) fn ready(&self, file: &str, started: Instant) {
        self.bar.inc(1);
        self.timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!("{file} ready in {:.0?}", started.elapsed()));
    }

    /// The unpacking is over; what remains is compiling `.pyc` files.
    pub(crate) fn compiling(&self) {
        self.bar.set_message("compiling .pyc");
    }

    /// The lines "FILE ready in T" gathered so far, for the debug log.
    pub(crate) fn take_timings(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .timings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Removes the bar from the terminal.
    pub(crate) fn clear(&self) {
        self.bar.finish_and_clear();
    }
}
