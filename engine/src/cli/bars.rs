//! The progress bars drawn under the part lines on a terminal (docs/output.md): one per part
//! whose recipe reports progress (ABI 1.5 `progress`), in the order the parts reported
//! first, each showing the step's count and, when reported, its bytes:
//!
//! ```text
//!         eggs [=========>               ] 12/34 distributions, 3.1 MiB/40.2 MiB numpy-2.1.whl
//! ```
//!
//! A part whose call runs longer than [`LONG`] without reporting gets a bar of the time it
//! has taken instead, the one thing known of what is left (a `command` part's build, a
//! Python recipe, a nested build):
//!
//! ```text
//!        tests [            <=>          ] running 12s
//! ```
//!
//! A bar goes when its part's call ends. The other lines of stderr are written through
//! [`Bars::print`], which takes the bars off the screen, writes the line and draws them
//! again below it. Only ever made when stderr is a terminal.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rbuildout_plugin_api::abi;

/// Redraws closer together than this are skipped unless something other than a count
/// changed (a bar came or went, a step began or ended, every byte announced arrived).
const REDRAW: Duration = Duration::from_millis(50);
/// How long a call runs without reporting before it gets a bar of its time.
const LONG: Duration = Duration::from_secs(1);
/// How often the time bars are redrawn.
const TICK: Duration = Duration::from_millis(250);
/// The width of the bar between its brackets.
const WIDTH: usize = 25;
const CYAN: &str = "\x1b[1;36m";
const RESET: &str = "\x1b[0m";

/// The bars of the parts that are running.
pub struct Bars {
    colour: bool,
    /// [`REDRAW`], but in tests.
    interval: Duration,
    inner: Arc<Mutex<Inner>>,
    /// Whether the thread that redraws the time bars runs.
    ticking: std::sync::atomic::AtomicBool,
}

struct Inner {
    /// Where the bars and lines go: stderr, but in tests.
    out: Box<dyn std::io::Write + Send>,
    bars: Vec<Bar>,
    /// The parts whose calls run, with when they started, in that order.
    running: Vec<(String, Instant)>,
    /// How many lines of bars are on the screen (the cursor is at the end of the last).
    drawn: usize,
    last_draw: Option<Instant>,
}

/// One part's last reports.
struct Bar {
    part: String,
    /// `(done, total, label)` of the step.
    count: Option<(u64, u64, String)>,
    /// `(done, total, file)` of the step's bytes.
    bytes: Option<(u64, u64, String)>,
}

impl Bars {
    /// Bars on stderr, with the part names in colour when `colour`.
    pub fn new(colour: bool) -> Bars {
        Bars::to(colour, REDRAW, Box::new(std::io::stderr()))
    }

    fn to(colour: bool, interval: Duration, out: Box<dyn std::io::Write + Send>) -> Bars {
        Bars {
            colour,
            interval,
            inner: Arc::new(Mutex::new(Inner {
                out,
                bars: Vec::new(),
                running: Vec::new(),
                drawn: 0,
                last_draw: None,
            })),
            ticking: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The call of `part` started. The first start starts the thread that redraws the time
    /// bars of the calls running longer than [`LONG`] without a report.
    pub fn start(&self, part: &str) {
        self.inner().running.push((part.to_owned(), Instant::now()));
        if self
            .ticking
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let colour = self.colour;
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(TICK);
                let mut inner = lock(&inner);
                if inner
                    .running
                    .iter()
                    .any(|(p, since)| timed(&inner, p, *since))
                {
                    redraw(colour, &mut inner, "");
                }
            }
        });
    }

    /// A report of `part` (`code/eggs` for a nested build's): `kind` is one of the ABI's
    /// `PROGRESS_*`.
    pub fn report(&self, part: &str, kind: u64, done: u64, total: u64, label: &str) {
        let mut inner = self.inner();
        let mut force = false;
        let index = match inner.bars.iter().position(|b| b.part == part) {
            Some(i) => i,
            None => {
                force = true;
                inner.bars.push(Bar {
                    part: part.to_owned(),
                    count: None,
                    bytes: None,
                });
                inner.bars.len() - 1
            }
        };
        let bar = &mut inner.bars[index];
        let label = printable(label);
        if kind == u64::from(abi::PROGRESS_COUNT) {
            if bar.count.as_ref().is_none_or(|(_, _, l)| *l != label) {
                bar.bytes = None;
                force = true;
            }
            force |= total > 0 && done >= total;
            bar.count = Some((done, total, label));
        } else if kind == u64::from(abi::PROGRESS_BYTES) {
            // Every byte announced so far is in: drawn, as the end of a step is.
            force |= total > 0 && done >= total;
            bar.bytes = Some((done, total, label));
        } else {
            return;
        }
        let due = inner.last_draw.is_none_or(|t| t.elapsed() >= self.interval);
        if force || due {
            self.redraw(&mut inner, "");
        }
    }

    /// The call of `part` ended: its bar goes.
    pub fn end(&self, part: &str) {
        let mut inner = self.inner();
        let before = inner.bars.len();
        let shown = inner
            .running
            .iter()
            .any(|(p, since)| p == part && timed(&inner, p, *since));
        inner.bars.retain(|b| b.part != part);
        if let Some(i) = inner.running.iter().position(|(p, _)| p == part) {
            inner.running.remove(i);
        }
        if inner.bars.len() != before || shown {
            self.redraw(&mut inner, "");
        }
    }

    /// Writes `line` (ending with a newline) above the bars.
    pub fn print(&self, line: &str) {
        let mut inner = self.inner();
        self.redraw(&mut inner, line);
    }

    /// Takes the bars off the screen, writes `line`, draws the bars again: one write.
    fn redraw(&self, inner: &mut Inner, line: &str) {
        redraw(self.colour, inner, line);
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the call of `part`, running since `since`, shows a bar of its time: it has run
/// for [`LONG`] and reported nothing.
fn timed(inner: &Inner, part: &str, since: Instant) -> bool {
    since.elapsed() >= LONG && !inner.bars.iter().any(|b| b.part == part)
}

/// [`Bars::redraw`], also for the thread of the time bars.
fn redraw(colour: bool, inner: &mut Inner, line: &str) {
    let mut out = String::new();
    if inner.drawn > 0 {
        out.push('\r');
        if inner.drawn > 1 {
            let _ = write!(out, "\x1b[{}A", inner.drawn - 1);
        }
        out.push_str("\x1b[J");
    }
    out.push_str(line);
    let columns = terminal_columns();
    let mut lines: Vec<String> = inner
        .bars
        .iter()
        .map(|bar| render(colour, bar, columns))
        .collect();
    for (part, since) in &inner.running {
        if timed(inner, part, *since) {
            lines.push(render_time(colour, part, since.elapsed(), columns));
        }
    }
    out.push_str(&lines.join("\n"));
    inner.drawn = lines.len();
    inner.last_draw = Some(Instant::now());
    let _ = inner.out.write_all(out.as_bytes());
    let _ = inner.out.flush();
}

/// The bar of a call that reports nothing: a marker going to and fro, and the time.
fn render_time(colour: bool, part: &str, elapsed: Duration, columns: usize) -> String {
    let marker = "<=>";
    let span = (WIDTH - marker.len()) as u128;
    let step = elapsed.as_millis() / TICK.as_millis() % (2 * span);
    let at = if step < span { step } else { 2 * span - step } as usize;
    let text = format!(
        "[{:at$}{marker}{:rest$}] running {}s",
        "",
        "",
        elapsed.as_secs(),
        rest = WIDTH - marker.len() - at
    );
    name_and(colour, part, &text, columns)
}

/// `part` right-aligned in 12 columns, then `text`, cut to `columns - 1` characters so that
/// the line never wraps.
fn name_and(colour: bool, part: &str, text: &str, columns: usize) -> String {
    let name = format!("{part:>12}");
    let room = columns.saturating_sub(1 + name.chars().count() + 1);
    let text: String = text.chars().take(room).collect();
    let name: String = name.chars().take(columns.saturating_sub(1)).collect();
    if colour {
        format!("{CYAN}{name}{RESET} {text}")
    } else {
        format!("{name} {text}")
    }
}

/// One bar's line, cut to `columns - 1` characters so that it never wraps.
fn render(colour: bool, bar: &Bar, columns: usize) -> String {
    let mut text = String::new();
    match &bar.count {
        Some((done, total, label)) if *total > 0 => {
            let filled = (WIDTH as u64 * (*done).min(*total) / total) as usize;
            let mut drawn = "=".repeat(filled);
            if filled < WIDTH {
                drawn.push('>');
            }
            let _ = write!(text, "[{drawn:<WIDTH$}] {done}/{total} {label}");
        }
        Some((done, _, label)) => {
            let _ = write!(text, "[{:WIDTH$}] {done} {label}", "");
        }
        None => {
            let _ = write!(text, "[{:WIDTH$}]", "");
        }
    }
    if let Some((done, total, file)) = &bar.bytes {
        let _ = write!(text, ", {}", size(*done));
        if *total > 0 {
            let _ = write!(text, "/{}", size(*total));
        }
        if !file.is_empty() {
            let _ = write!(text, " {file}");
        }
    }
    name_and(colour, &bar.part, &text, columns)
}

/// A byte count for people: `512 B`, `3.1 KiB`, `40.2 MiB`, `1.5 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A recipe's label with control characters (escape sequences) replaced, so that it cannot
/// move the cursor.
fn printable(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The width of the terminal on stderr (80 when it does not say).
fn terminal_columns() -> usize {
    // SAFETY: `winsize` is plain data that the ioctl fills in; a failing ioctl leaves it
    // zeroed.
    let columns = unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(2, libc::TIOCGWINSZ, &mut size) == 0 {
            usize::from(size.ws_col)
        } else {
            0
        }
    };
    if columns == 0 { 80 } else { columns }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(count: Option<(u64, u64, &str)>, bytes: Option<(u64, u64, &str)>) -> Bar {
        Bar {
            part: "eggs".to_owned(),
            count: count.map(|(d, t, l)| (d, t, l.to_owned())),
            bytes: bytes.map(|(d, t, l)| (d, t, l.to_owned())),
        }
    }

    #[test]
    fn a_bar_shows_the_count_the_bytes_and_what_is_left() {
        let b = bar(
            Some((5, 34, "distributions")),
            Some((3 * 1024 * 1024 + 200_000, 40 * 1024 * 1024, "numpy.whl")),
        );
        assert_eq!(
            render(false, &b, 200),
            "        eggs [===>                     ] 5/34 distributions, 3.2 MiB/40.0 MiB numpy.whl"
        );
        let b = bar(Some((900, 900, "files compiled")), None);
        assert_eq!(
            render(false, &b, 200),
            "        eggs [=========================] 900/900 files compiled"
        );
        // While the total is not known, no fraction; bytes of unknown total.
        let b = bar(
            Some((3, 0, "distributions (resolving)")),
            Some((512, 0, "")),
        );
        assert_eq!(
            render(false, &b, 200),
            "        eggs [                         ] 3 distributions (resolving), 512 B"
        );
        // Never wider than the terminal; colour only around the name.
        assert_eq!(render(false, &b, 20).chars().count(), 19);
        let painted = render(true, &bar(None, None), 200);
        assert!(
            painted.starts_with("\x1b[1;36m        eggs\x1b[0m ["),
            "{painted:?}"
        );
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(printable("a\x1b[2Jb"), "a?[2Jb");
    }

    /// A call that reports nothing gets, after [`LONG`], a bar of its time, with a marker
    /// that moves each tick; none once it reports, or before.
    #[test]
    fn a_call_that_reports_nothing_shows_its_time_after_a_while() {
        assert_eq!(
            render_time(false, "tests", Duration::from_millis(12_000), 200),
            "       tests [    <=>                  ] running 12s"
        );
        assert_eq!(
            render_time(false, "tests", Duration::from_millis(12_250), 200),
            "       tests [     <=>                 ] running 12s"
        );
        let bars = Bars::to(false, REDRAW, Box::new(Screen::default()));
        let mut inner = bars.inner();
        let earlier = Instant::now() - Duration::from_secs(2);
        assert!(timed(&inner, "tests", earlier));
        assert!(!timed(&inner, "tests", Instant::now()));
        inner.bars.push(bar(Some((1, 2, "files")), None));
        assert!(!timed(&inner, "eggs", earlier));
    }

    /// What the bars wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Screen(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Screen {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Screen {
        /// What was written since the last call.
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    #[test]
    fn counts_are_throttled_steps_are_drawn_and_lines_go_above() {
        let screen = Screen::default();
        // Counts closer than an hour apart are not drawn: only what must be is.
        let bars = Bars::to(false, Duration::from_secs(3600), Box::new(screen.clone()));
        bars.report("eggs", 1, 1, 2, "distributions");
        assert_eq!(
            screen.take(),
            "        eggs [============>            ] 1/2 distributions"
        );
        bars.report("eggs", 2, 100, 200, "a.whl");
        bars.report("eggs", 2, 150, 200, "a.whl");
        assert_eq!(
            screen.take(),
            "",
            "a count within the interval is kept, not drawn"
        );
        // The end of a step is drawn at once, with the bytes kept meanwhile.
        bars.report("eggs", 1, 2, 2, "distributions");
        assert_eq!(
            screen.take(),
            "\r\x1b[J        eggs [=========================] 2/2 distributions, 150 B/200 B a.whl"
        );
        // A new step forgets the bytes of the one before.
        bars.report("eggs", 1, 0, 10, "files compiled");
        assert!(screen.take().ends_with("] 0/10 files compiled"));
        bars.report("other", 1, 0, 0, "x");
        assert_eq!(bars.inner().drawn, 2);
        screen.take();
        // A line goes above both bars, which are drawn again below it.
        bars.print("  Installing next\n");
        assert_eq!(
            screen.take(),
            "\r\x1b[1A\x1b[J  Installing next\n        eggs [>                        ] 0/10 files compiled\n       other [                         ] 0 x"
        );
        bars.end("eggs");
        assert_eq!(
            screen.take(),
            "\r\x1b[1A\x1b[J       other [                         ] 0 x"
        );
        bars.end("other");
        assert_eq!(screen.take(), "\r\x1b[J");
        bars.end("other");
        assert_eq!(screen.take(), "", "nothing to take off");
    }
}
