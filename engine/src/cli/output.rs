//! What a person reads on stderr (docs/output.md). At the default verbosity (and with
//! `-q`), [`Lines`] writes one line per event, in the style of cargo: an event with an
//! `action` field (the runner's `install`, `update`, `reinstall`, `uninstall`, `keep`, the
//! CLI's `finished`) becomes `  Installing code/eggs (reason)`, the verb right-aligned; a
//! warning `warning: [part] message`, an error `error: [part] message`; any other event its
//! message. Spans and fields are shown only from `-v` on, by tracing's own format. On a
//! terminal, the recipes' progress reports (events of [`PROGRESS_TARGET`]) become the
//! [`Bars`] under those lines; elsewhere they are dropped.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, span};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::bars::Bars;
use rbuildout::plugin::PROGRESS_TARGET;

/// Whether stderr gets colour: it is a terminal and `NO_COLOR` is unset or empty.
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// The verb a person reads for a runner's `action` (`install` → `Installing`); another
/// action is shown with its first letter in upper case.
pub fn verb(action: &str) -> String {
    match action {
        "install" => "Installing".to_owned(),
        "update" => "Updating".to_owned(),
        "reinstall" => "Reinstalling".to_owned(),
        "uninstall" => "Uninstalling".to_owned(),
        "keep" => "Unchanged".to_owned(),
        other => {
            let mut chars = other.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().chain(chars).collect::<String>()
            })
        }
    }
}

/// The tracing layer of the default verbosity (one plain line per event).
pub struct Lines {
    pub colour: bool,
    /// The progress bars, when stderr is a terminal.
    pub bars: Option<Bars>,
}

/// The name of a `part` span, kept in the span's extensions.
struct PartName(String);

/// The fields of an event or span that [`Lines`] shows.
#[derive(Default)]
struct Fields {
    message: String,
    action: Option<String>,
    reason: Option<String>,
    part: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

/// The fields of a progress event.
#[derive(Default)]
struct Progress {
    kind: u64,
    done: u64,
    total: u64,
    label: String,
    /// `started` or `ended` for the start and end of the part's call.
    call: String,
}

impl Visit for Progress {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "kind" => self.kind = value,
            "done" => self.done = value,
            "total" => self.total = value,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "label" => value.clone_into(&mut self.label),
            "call" => value.clone_into(&mut self.call),
            _ => {}
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "action" => self.action = Some(value),
            "reason" => self.reason = Some(value),
            "part" => self.part = Some(value),
            _ => {}
        }
    }
}

const GREEN: &str = "\x1b[1;32m";
const YELLOW: &str = "\x1b[1;33m";
const RED: &str = "\x1b[1;31m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl<S> tracing_subscriber::Layer<S> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "part" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(part), Some(span)) = (fields.part, ctx.span(id)) {
            span.extensions_mut().insert(PartName(part));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let progress = event.metadata().target() == PROGRESS_TARGET;
        if progress && self.bars.is_none() {
            return;
        }
        let mut fields = Fields::default();
        if !progress {
            event.record(&mut fields);
        }
        // The parts the event happened in, outermost first: `code/eggs` for a nested build.
        let mut chain: Vec<String> = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .filter_map(|s| s.extensions().get::<PartName>().map(|p| p.0.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(part) = fields.part.take() {
            if chain.last() != Some(&part) {
                chain.push(part);
            }
        }
        if let (true, Some(bars)) = (progress, &self.bars) {
            let mut report = Progress::default();
            event.record(&mut report);
            let part = chain.join("/");
            if report.call == "ended" {
                bars.end(&part);
            } else if report.call == "started" {
                bars.start(&part);
            } else {
                bars.report(&part, report.kind, report.done, report.total, &report.label);
            }
            return;
        }
        let line = self.render(*event.metadata().level(), &fields, &chain.join("/"));
        match &self.bars {
            Some(bars) => bars.print(&line),
            // One write per line, so lines of parts running at once never mix.
            None => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }
}

impl Lines {
    fn paint(&self, colour: &str, text: &str) -> String {
        if self.colour {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    fn render(&self, level: Level, fields: &Fields, part: &str) -> String {
        let mut line = String::new();
        let tag = |line: &mut String| {
            if !part.is_empty() {
                let _ = write!(line, "[{part}] ");
            }
        };
        match (level, &fields.action) {
            (Level::ERROR, _) => {
                line.push_str(&self.paint(RED, "error"));
                line.push_str(": ");
                tag(&mut line);
                line.push_str(&fields.message);
            }
            (Level::WARN, _) => {
                line.push_str(&self.paint(YELLOW, "warning"));
                line.push_str(": ");
                tag(&mut line);
                line.push_str(&fields.message);
            }
            (_, Some(action)) => {
                let colour = match action.as_str() {
                    "keep" => DIM,
                    "uninstall" => YELLOW,
                    _ => GREEN,
                };
                line.push_str(&self.paint(colour, &format!("{:>12}", verb(action))));
                line.push(' ');
                if part.is_empty() {
                    line.push_str(&fields.message);
                } else {
                    line.push_str(part);
                }
                if let Some(reason) = &fields.reason {
                    let _ = write!(line, " ({reason})");
                }
            }
            _ => {
                tag(&mut line);
                line.push_str(&fields.message);
            }
        }
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, action: Option<&str>, reason: Option<&str>) -> Fields {
        Fields {
            message: message.to_owned(),
            action: action.map(str::to_owned),
            reason: reason.map(str::to_owned),
            part: None,
        }
    }

    #[test]
    fn lines_read_like_cargo() {
        let plain = Lines {
            colour: false,
            bars: None,
        };
        let f = fields("installing", Some("install"), None);
        assert_eq!(plain.render(Level::INFO, &f, "dirs"), "  Installing dirs\n");
        let f = fields("reinstalling", Some("reinstall"), Some("new part"));
        assert_eq!(
            plain.render(Level::INFO, &f, "code/eggs"),
            "Reinstalling code/eggs (new part)\n"
        );
        let f = fields("1 installed", Some("finished"), None);
        assert_eq!(
            plain.render(Level::INFO, &f, ""),
            "    Finished 1 installed\n"
        );
        let f = fields("disk full", None, None);
        assert_eq!(
            plain.render(Level::WARN, &f, "a"),
            "warning: [a] disk full\n"
        );
        assert_eq!(plain.render(Level::ERROR, &f, ""), "error: disk full\n");
        let painted = Lines {
            colour: true,
            bars: None,
        };
        let f = fields("unchanged", Some("keep"), None);
        assert_eq!(
            painted.render(Level::INFO, &f, "s"),
            "\x1b[2m   Unchanged\x1b[0m s\n"
        );
    }
}
