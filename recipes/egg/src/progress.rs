//! Progress reporting of the install pool to the host (ABI 1.5 `progress`, which rbuildout
//! draws as a bar on a terminal): while resolving, the distributions ready so far; once the
//! lock is known, those ready of the ones to install, with the bytes downloaded of the sizes
//! the downloads announced; then the `.pyc` files compiled of those queued. Reports are sent
//! at most every [`INTERVAL`], and at once when a step begins or ends. Also, per
//! distribution, how long it took to be ready, for the part's debug log.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rbuildout_plugin_api::Context;

use crate::store::Meter;

/// The least time between two reports of the same step.
pub(crate) const INTERVAL: Duration = Duration::from_millis(80);

/// The counts of one part's install pool; shared by its workers.
pub(crate) struct Progress<'a> {
    ctx: &'a Context<'a>,
    /// [`INTERVAL`], but in tests.
    interval: Duration,
    state: Mutex<State>,
    timings: Mutex<Vec<String>>,
}

#[derive(Default)]
struct State {
    /// Distributions unpacked (or failed): all of them while resolving, then the wanted ones.
    ready: u64,
    /// The distributions to install, once the resolver is done.
    total: Option<u64>,
    bytes: u64,
    /// The sum of the lengths the downloads announced.
    bytes_total: u64,
    /// The file downloaded last.
    file: String,
    /// `(compiled, queued)` files, once only compiling remains.
    compiling: Option<(u64, u64)>,
    /// When the last report was sent.
    sent: Option<Instant>,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(ctx: &'a Context<'a>) -> Progress<'a> {
        Progress {
            ctx,
            interval: INTERVAL,
            state: Mutex::new(State::default()),
            timings: Mutex::new(Vec::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A worker starts on a distribution; the instant is for [`ready`](Progress::ready).
    pub(crate) fn working_on(&self) -> Instant {
        Instant::now()
    }

    /// `file`, started at `started`, is unpacked (or failed).
    pub(crate) fn ready(&self, file: &str, started: Instant) {
        self.timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!("{file} ready in {:.0?}", started.elapsed()));
        let mut s = self.state();
        if s.total.is_none() {
            s.ready += 1;
            self.send(&mut s, false);
        }
    }

    /// The resolver is done: `ready` of the `total` distributions to install are.
    pub(crate) fn counts(&self, ready: u64, total: u64) {
        let mut s = self.state();
        if s.total == Some(total) && s.ready == ready {
            return;
        }
        let force = s.total.is_none() || ready >= total;
        s.total = Some(total);
        s.ready = ready;
        self.send(&mut s, force);
    }

    /// `done` of `queued` files are compiled; nothing else remains.
    pub(crate) fn compiled(&self, done: u64, queued: u64) {
        let mut s = self.state();
        let force = s.compiling.is_none() || done >= queued;
        s.compiling = Some((done, queued));
        self.send(&mut s, force);
    }

    /// Reports the current step to the host, unless one was sent less than an interval ago
    /// and `force` is false.
    fn send(&self, s: &mut State, force: bool) {
        if !force && s.sent.is_some_and(|t| t.elapsed() < self.interval) {
            return;
        }
        s.sent = Some(Instant::now());
        if let Some((done, queued)) = s.compiling {
            self.ctx.progress("files compiled", done, queued);
            return;
        }
        match s.total {
            Some(total) => self.ctx.progress("distributions", s.ready, total),
            None => self.ctx.progress("distributions (resolving)", s.ready, 0),
        }
        if s.bytes > 0 {
            self.ctx.progress_bytes(s.bytes, s.bytes_total, &s.file);
        }
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
}

impl Meter for Progress<'_> {
    fn begin(&self, file: &str, length: Option<u64>) {
        let mut s = self.state();
        s.bytes_total += length.unwrap_or(0);
        file.clone_into(&mut s.file);
    }

    fn add(&self, bytes: u64) {
        let mut s = self.state();
        s.bytes += bytes;
        self.send(&mut s, false);
    }

    fn undo(&self, bytes: u64, length: Option<u64>) {
        let mut s = self.state();
        s.bytes = s.bytes.saturating_sub(bytes);
        s.bytes_total = s.bytes_total.saturating_sub(length.unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuildout_plugin_api::testing::{self, TestCall};
    use rbuildout_plugin_api::{Options, Recipe, Result};

    /// Drives a [`Progress`] through a pool's life, as fast as it can.
    struct Pool;

    impl Recipe for Pool {
        fn install(_options: &Options, ctx: &Context) -> Result<()> {
            let mut p = Progress::new(ctx);
            // However slow the machine, the reports below fall within one interval.
            p.interval = Duration::from_secs(3600);
            let started = p.working_on();
            // Resolving: the first report is sent, the ones right after are not.
            p.ready("a.whl", started);
            p.ready("b.whl", started);
            p.begin("c.whl", Some(1000));
            for _ in 0..100 {
                p.add(10);
            }
            // The lock is known: sent at once, and its end too; the counts between are not.
            p.counts(2, 4);
            p.counts(3, 4);
            p.counts(4, 4);
            p.compiled(0, 50);
            for done in 1..50 {
                p.compiled(done, 50);
            }
            p.compiled(50, 50);
            // After the interval, a count is sent again.
            p.interval = Duration::ZERO;
            p.compiled(50, 60);
            Ok(())
        }
    }

    #[test]
    fn reports_are_throttled_but_steps_are_sent_whole() {
        let dir = tempfile::tempdir().unwrap();
        let call = TestCall::new("eggs", dir.path(), &[]);
        let outcome = testing::install::<Pool>(&call).unwrap();
        assert_eq!(
            outcome.progress,
            [
                "COUNT distributions (resolving) 1/0",
                "COUNT distributions 2/4",
                "BYTES c.whl 1000/1000",
                "COUNT distributions 4/4",
                "BYTES c.whl 1000/1000",
                "COUNT files compiled 0/50",
                "COUNT files compiled 50/50",
                "COUNT files compiled 50/60",
            ]
        );
    }
}
