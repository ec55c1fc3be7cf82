//! Config errors: each diagnostic names a file, line and column and shows the offending
//! snippet (rendered with annotate-snippets); one [`Error`] may carry several diagnostics.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// One config file's text, kept so errors can quote it.
#[derive(Debug)]
pub struct SourceFile {
    /// The name shown to users: the path as written relative to the working directory when
    /// inside it, else absolute; or the URL.
    pub name: String,
    pub text: String,
    /// Byte offset where each line starts, for quick line numbers.
    line_starts: Vec<usize>,
}

/// Every file read while loading a config, indexed by [`Span::file`].
#[derive(Debug, Default, Clone)]
pub struct Files {
    files: Vec<Arc<SourceFile>>,
}

impl Files {
    pub fn add(&mut self, name: String, text: String) -> u32 {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.files.push(Arc::new(SourceFile {
            name,
            text,
            line_starts,
        }));
        (self.files.len() - 1) as u32
    }

    /// A shared handle on one file, to read it while the set grows.
    pub fn source(&self, id: u32) -> Option<Arc<SourceFile>> {
        self.files.get(id as usize).cloned()
    }

    pub fn get(&self, id: u32) -> Option<&SourceFile> {
        self.files.get(id as usize).map(|f| &**f)
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        let Some(f) = self.get(span.file) else {
            return (0, 0);
        };
        let start = (span.start as usize).min(f.text.len());
        let start = floor_char_boundary(&f.text, start);
        let line = f.line_starts.partition_point(|&l| l <= start);
        let line_start = f.line_starts[line.saturating_sub(1)];
        (line, f.text[line_start..start].chars().count() + 1)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A place in a config file: byte offsets into [`SourceFile::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: u32, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end.max(start) as u32,
        }
    }
}

/// What kind of config error happened, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read or downloaded.
    Io,
    /// A syntax error in TOML or INI.
    Syntax,
    /// A value of a type rbuildout does not accept.
    Type,
    /// A reference or name to a section that does not exist.
    MissingSection,
    /// A reference to an option that does not exist.
    MissingOption,
    /// `${...}` that is not a valid reference.
    BadReference,
    /// A cycle in substitutions, extends, macros or the parts graph.
    Cycle,
    /// A `[section:condition]` that cannot be evaluated.
    Condition,
    /// A bad `section:option=value` on the command line.
    CommandLine,
}

/// One problem, with where it is.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub kind: ErrorKind,
    pub message: String,
    pub span: Option<Span>,
    pub label: String,
    pub notes: Vec<String>,
    /// Diagnostics with the same key are one mistake (a cycle found from two of its points).
    pub key: Option<String>,
}

impl Diagnostic {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            kind,
            message: message.into(),
            span: None,
            label: String::new(),
            notes: Vec::new(),
            key: None,
        }
    }

    pub fn at(mut self, span: Option<Span>, label: impl Into<String>) -> Diagnostic {
        self.span = span;
        self.label = label.into();
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
}

/// How many diagnostics one error shows; the rest are counted ("... and 19980 more errors"),
/// so a file of 20,000 bad lines is reported in milliseconds and fits on a screen.
pub const SHOWN: usize = 20;

/// A config error: one or more diagnostics, each holding the file it quotes (shared, so the
/// error outlives the [`Files`] it was made from). Only the first [`SHOWN`] are rendered,
/// when displayed.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Error {
    diagnostics: Vec<(Diagnostic, Option<Arc<SourceFile>>)>,
    /// What makes two diagnostics the same mistake, for [`Error::extend`].
    seen: HashSet<Same>,
}

/// Two diagnostics are one mistake when they say the same at the same place (a file read
/// twice through two `extends` gives the same message at the same offsets), or share a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Same {
    At(String, String, Option<(String, u32, u32)>),
    Key(String),
}

fn sameness(d: &Diagnostic, file: Option<&SourceFile>) -> Vec<Same> {
    let at = d
        .span
        .zip(file)
        .map(|(s, f)| (f.name.clone(), s.start, s.end));
    let mut out = vec![Same::At(d.message.clone(), d.label.clone(), at)];
    if let Some(k) = &d.key {
        out.push(Same::Key(k.clone()));
    }
    out
}

impl Error {
    /// Collects `diags`, quoting `files` (which holds the texts the spans point into); the
    /// same mistake reported twice is kept once.
    pub fn new(files: &Files, diags: Vec<Diagnostic>) -> Error {
        let mut e = Error {
            diagnostics: Vec::with_capacity(diags.len()),
            seen: HashSet::new(),
        };
        for d in diags {
            let file = d.span.and_then(|s| files.source(s.file));
            e.push(d, file);
        }
        e
    }

    fn push(&mut self, d: Diagnostic, file: Option<Arc<SourceFile>>) {
        let keys = sameness(&d, file.as_deref());
        if keys.iter().any(|k| self.seen.contains(k)) {
            return;
        }
        self.seen.extend(keys);
        self.diagnostics.push((d, file));
    }

    pub fn one(files: &Files, diag: Diagnostic) -> Error {
        Error::new(files, vec![diag])
    }

    /// An error with no file to quote.
    pub fn plain(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::one(&Files::default(), Diagnostic::new(kind, message))
    }

    pub fn kind(&self) -> ErrorKind {
        self.diagnostics
            .first()
            .map_or(ErrorKind::Syntax, |(d, _)| d.kind)
    }

    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().map(|(d, _)| d)
    }

    /// Adds `other`'s diagnostics, skipping any already present (the same mistake reached
    /// from two places is reported once).
    pub fn extend(&mut self, other: Error) {
        for (d, f) in other.diagnostics {
            self.push(d, f);
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, file)) in self.diagnostics.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            f.write_str(&render(file.as_deref(), d))?;
        }
        let more = self.diagnostics.len().saturating_sub(SHOWN);
        if more > 0 {
            let s = if more == 1 { "" } else { "s" };
            write!(
                f,
                "\n\nerror: ... and {more} more error{s} (fix the ones above and run again)"
            )?;
        }
        Ok(())
    }
}

/// Renders one diagnostic, quoting only the lines its span covers: handing the whole file
/// to the renderer for every error made many errors cost the square of the file's size.
fn render(file: Option<&SourceFile>, d: &Diagnostic) -> String {
    let file = d.span.zip(file);
    let mut groups = Vec::new();
    let title = Level::ERROR.primary_title(d.message.as_str());
    let group = match file {
        Some((span, f)) => {
            let start = floor_char_boundary(&f.text, (span.start as usize).min(f.text.len()));
            let mut end = floor_char_boundary(&f.text, (span.end as usize).min(f.text.len()));
            if end < start {
                end = start;
            }
            let first = f.line_starts.partition_point(|&l| l <= start).max(1);
            let from = f.line_starts[first - 1];
            let last = f.line_starts.partition_point(|&l| l <= end).max(1);
            let to = f
                .line_starts
                .get(last)
                .map_or(f.text.len(), |&next| next.saturating_sub(1).max(end));
            title.element(
                Snippet::source(&f.text[from..to])
                    .line_start(first)
                    .path(f.name.as_str())
                    .fold(true)
                    .annotation(
                        AnnotationKind::Primary
                            .span(start - from..end - from)
                            .label(d.label.as_str()),
                    ),
            )
        }
        None => Group::with_title(title),
    };
    groups.push(group);
    for n in &d.notes {
        groups.push(Group::with_title(Level::NOTE.secondary_title(n.as_str())));
    }
    let rendered = Renderer::plain().render(&groups).to_string();
    match file {
        // annotate-snippets shows `file:line:col` in its `-->` line already; a span in an
        // empty file has no line to show, so name the file in the message instead.
        Some((_, f)) if f.text.is_empty() => format!("{rendered}\n  --> {}", f.name),
        _ => rendered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_and_column() {
        let mut files = Files::default();
        let id = files.add("buildout.cfg".into(), "[a]\nx = ${b}\n".into());
        let e = Error::one(
            &files,
            Diagnostic::new(ErrorKind::BadReference, "bad").at(Some(Span::new(id, 8, 12)), "here"),
        );
        let s = e.to_string();
        assert!(s.contains("buildout.cfg:2:5"), "{s}");
        assert!(s.contains("x = ${b}"), "{s}");
        assert_eq!(files.line_col(Span::new(id, 8, 12)), (2, 5));
    }

    #[test]
    fn twenty_are_shown_the_rest_counted_and_repeats_dropped() {
        let mut files = Files::default();
        let text: String = (0..25).map(|i| format!("bad {i:02}\n")).collect();
        let id = files.add("a.cfg".into(), text);
        let mut diags: Vec<Diagnostic> = (0..25)
            .map(|i| {
                Diagnostic::new(ErrorKind::Syntax, "cannot parse")
                    .at(Some(Span::new(id, i * 7, i * 7 + 6)), "here")
            })
            .collect();
        diags.push(diags[3].clone());
        let e = Error::new(&files, diags);
        assert_eq!(e.diagnostics().count(), 25);
        let s = e.to_string();
        assert_eq!(s.matches("error: cannot parse").count(), 20, "{s}");
        assert!(s.contains("a.cfg:20:1"), "{s}");
        assert!(!s.contains("a.cfg:21:1"), "{s}");
        assert!(
            s.ends_with("error: ... and 5 more errors (fix the ones above and run again)"),
            "{s}"
        );
    }

    #[test]
    fn a_span_over_several_lines_quotes_those_lines() {
        let mut files = Files::default();
        let id = files.add("a.cfg".into(), "[a]\nx = 1\n  2\n  3\ny = 4\n".into());
        let e = Error::one(
            &files,
            Diagnostic::new(ErrorKind::Syntax, "bad").at(Some(Span::new(id, 4, 17)), "value"),
        );
        let s = e.to_string();
        assert!(s.contains("a.cfg:2:1"), "{s}");
        assert!(s.contains("2 | / x = 1") && s.contains("4 | |   3"), "{s}");
        assert!(!s.contains("y = 4") && !s.contains("[a]"), "{s}");
    }
}
