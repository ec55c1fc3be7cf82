//! Lazy, memoising `${section:option}` substitution over the merged model, with macro
//! (`<` / `inherits`) expansion per section. Resolution is iterative, so a chain of
//! thousands of references needs no deep native stack.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;

use super::diag::{Diagnostic, Error, ErrorKind, Span};
use super::model::{update_section, Entry, Op, Section, Source, Step, Value};
use super::{Config, Format};

/// One piece of a value's template.
#[derive(Debug, Clone)]
enum Seg {
    Lit(String),
    /// A `$$` between pieces: kept as `$$` in `.cfg`, a literal `$` in TOML.
    Dollar,
    /// The n-th reference of the value.
    Ref(usize),
}

/// A reference as written, and the section/option it names (or why it is malformed).
#[derive(Debug, Clone)]
struct RefSpec {
    text: String,
    target: Result<(String, String), String>,
}

/// A value cut into segments: one list for a string, one per element for a list.
struct Template {
    list: bool,
    elements: Vec<Vec<Seg>>,
    refs: Vec<RefSpec>,
}

fn simple(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-. _".contains(c))
}

fn check_ref(text: &str) -> Result<(String, String), String> {
    let inner = &text[2..text.len() - 1];
    let parts: Vec<&str> = inner.split(':').collect();
    if parts.len() < 2 {
        return Err(format!(
            "the reference {text} has no colon; write ${{section:option}}, or ${{:option}} for the same section"
        ));
    }
    if parts.len() > 2 {
        return Err(format!("the reference {text} has too many colons"));
    }
    let valid_section = parts[0].is_empty() || simple(parts[0]);
    if !valid_section || !simple(parts[1]) {
        // zc.buildout checks the section name first, even when it is empty.
        if !simple(parts[0]) {
            return Err(format!(
                "the section name in the reference {text} has invalid characters (allowed: letters, digits, `-`, `.`, `_` and space)"
            ));
        }
        return Err(format!(
            "the option name in the reference {text} has invalid characters (allowed: letters, digits, `-`, `.`, `_` and space)"
        ));
    }
    Ok((parts[0].to_owned(), parts[1].to_owned()))
}

fn split_template(piece: &str, segs: &mut Vec<Seg>, refs: &mut Vec<RefSpec>) {
    let mut rest = piece;
    while let Some(i) = rest.find("${") {
        let Some(j) = rest[i + 2..].find('}') else {
            break;
        };
        let end = i + 2 + j + 1;
        if i > 0 {
            segs.push(Seg::Lit(rest[..i].to_owned()));
        }
        let text = &rest[i..end];
        segs.push(Seg::Ref(refs.len()));
        refs.push(RefSpec {
            text: text.to_owned(),
            target: check_ref(text),
        });
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        segs.push(Seg::Lit(rest.to_owned()));
    }
}

fn template(v: &Value) -> Template {
    let mut refs = Vec::new();
    let mut cut = |s: &str| {
        let mut segs = Vec::new();
        for (i, piece) in s.split("$$").enumerate() {
            if i > 0 {
                segs.push(Seg::Dollar);
            }
            split_template(piece, &mut segs, &mut refs);
        }
        segs
    };
    let (list, elements) = match v {
        Value::Str(s) => (false, vec![cut(s)]),
        Value::List(l) => (true, l.iter().map(|e| cut(e)).collect()),
    };
    Template {
        list,
        elements,
        refs,
    }
}

fn needs_substitution(v: &Value, format: Format) -> bool {
    v.contains("${") || (format == Format::Toml && v.contains("$$"))
}

/// What a resolved reference contributes.
enum Got {
    Val(Value),
    /// Left as written (lenient mode, an output not known yet).
    Literal,
}

struct Frame {
    sec: String,
    opt: String,
    span: Option<Span>,
    tpl: Template,
    got: Vec<Got>,
}

enum Start {
    Done(Value),
    Missing,
    Frame(Frame),
}

/// A section as the resolver sees it: raw from the config, or expanded from its macros.
#[derive(Clone)]
enum SecRef<'c> {
    Raw(&'c Section),
    Expanded(Rc<Section>),
}

impl std::ops::Deref for SecRef<'_> {
    type Target = Section;
    fn deref(&self) -> &Section {
        match self {
            SecRef::Raw(s) => s,
            SecRef::Expanded(s) => s,
        }
    }
}

/// Options of `[buildout]` that hold paths, made absolute after substitution.
const PATH_OPTIONS: &[&str] = &[
    "bin-directory",
    "parts-directory",
    "eggs-directory",
    "develop-eggs-directory",
    "download-cache",
    "installed",
];

/// Lazy, memoising substitution. Outputs published by recipes are layered on top.
pub struct Resolver<'c> {
    config: &'c Config,
    memo: HashMap<String, HashMap<String, Value>>,
    expanded: HashMap<String, Rc<Section>>,
    outputs: HashMap<String, IndexMap<String, Value>>,
    lenient: bool,
}

impl<'c> Resolver<'c> {
    pub(crate) fn new(config: &'c Config) -> Resolver<'c> {
        Resolver {
            config,
            memo: HashMap::new(),
            expanded: HashMap::new(),
            outputs: HashMap::new(),
            lenient: false,
        }
    }

    fn error(&self, d: Diagnostic) -> Error {
        Error::one(&self.config.files, d)
    }

    /// One option, fully substituted.
    pub fn get(&mut self, section: &str, option: &str) -> Result<Value, Error> {
        match self.resolve(section, option).map_err(|d| self.error(d))? {
            Some(v) => Ok(v),
            None => {
                let sec = self.sec(section).map_err(|d| self.error(d))?;
                let d = Diagnostic::new(ErrorKind::MissingOption, format!("missing option {section}:{option}"))
                    .at(sec.header, format!("section [{section}] has no option `{option}`"));
                Err(self.error(d))
            }
        }
    }

    /// One option, or `None` when the section exists but the option does not.
    pub fn get_opt(&mut self, section: &str, option: &str) -> Result<Option<Value>, Error> {
        self.resolve(section, option).map_err(|d| self.error(d))
    }

    /// Every option of a section, substituted (sorted by name), e.g. what a part's recipe receives.
    pub fn section(&mut self, section: &str) -> Result<IndexMap<String, Value>, Error> {
        let names = self.option_names(section)?;
        let mut out = IndexMap::with_capacity(names.len());
        for n in names {
            let v = self.get(section, &n)?;
            out.insert(n, v);
        }
        Ok(out)
    }

    /// The option names of a section after macro expansion and outputs, sorted.
    pub fn option_names(&mut self, section: &str) -> Result<Vec<String>, Error> {
        let sec = self.sec(section).map_err(|d| self.error(d))?;
        let mut names: Vec<String> = sec
            .options
            .keys()
            .filter(|k| super::model::split_key(k).1 == '=' && (k.as_str() != "<" || section == "buildout"))
            .cloned()
            .collect();
        if let Some(outs) = self.outputs.get(section) {
            names.extend(outs.keys().filter(|k| !sec.options.contains_key(*k)).cloned());
        }
        names.sort();
        Ok(names)
    }

    /// Where an option's value came from, oldest first.
    pub fn history(&mut self, section: &str, option: &str) -> Result<Vec<Step>, Error> {
        let sec = self.sec(section).map_err(|d| self.error(d))?;
        let mut h = sec.options.get(option).map(|e| e.history.clone()).unwrap_or_default();
        if self.outputs.get(section).is_some_and(|o| o.contains_key(option)) {
            h.push(Step {
                op: Op::Output,
                source: Source::Computed,
            });
        }
        Ok(h)
    }

    /// The references written in one raw option (after macro expansion), as (section,
    /// option) with `${:x}` naming `section`. Malformed references are skipped: resolving
    /// the option reports them.
    pub fn references(&mut self, section: &str, option: &str) -> Result<Vec<(String, String)>, Error> {
        let sec = self.sec(section).map_err(|d| self.error(d))?;
        let Some(e) = sec.options.get(option) else {
            return Ok(Vec::new());
        };
        if !e.value.contains("${") {
            return Ok(Vec::new());
        }
        Ok(template(&e.value)
            .refs
            .into_iter()
            .filter_map(|r| r.target.ok())
            .map(|(s, o)| (if s.is_empty() { section.to_owned() } else { s }, o))
            .collect())
    }

    /// Whether the section exists (after the config is loaded, sections never appear).
    pub fn has_section(&self, section: &str) -> bool {
        self.config.sections.contains_key(section)
    }

    /// A recipe published `section:option` (e.g. `paths`); later gets see it. Clears memoised
    /// values that depended on it.
    pub fn set_output(&mut self, section: &str, option: &str, value: Value) {
        self.outputs
            .entry(section.to_owned())
            .or_default()
            .insert(option.to_owned(), value);
        // Values are cheap to recompute and outputs are rare: forget every memoised value
        // rather than tracking who read what.
        self.memo.clear();
    }

    /// Lenient mode (annotate/query/plan): a reference to an option missing from a section
    /// that has a `recipe` (an output not known yet) is left as its literal `${sec:opt}` text.
    pub fn set_lenient(&mut self, lenient: bool) {
        self.lenient = lenient;
        self.memo.clear();
    }

    /// The section, expanded from its macros (memoised).
    fn sec(&mut self, name: &str) -> Result<SecRef<'c>, Diagnostic> {
        let config = self.config;
        let Some(raw) = config.sections.get(name) else {
            return Err(Diagnostic::new(ErrorKind::MissingSection, format!("the section [{name}] is not defined")));
        };
        if name == "buildout" || !raw.options.contains_key("<") {
            return Ok(SecRef::Raw(raw));
        }
        if let Some(e) = self.expanded.get(name) {
            return Ok(SecRef::Expanded(e.clone()));
        }
        let mut doing = Vec::new();
        let s = Rc::new(self.expand(name, &mut doing)?);
        self.expanded.insert(name.to_owned(), s.clone());
        Ok(SecRef::Expanded(s))
    }

    /// buildout's `_do_extend_raw`: the macros' raw options, later macros winning, then the
    /// section's own (whose `+=`/`-=` apply to the macros' values).
    fn expand(&mut self, name: &str, doing: &mut Vec<String>) -> Result<Section, Diagnostic> {
        let config = self.config;
        let raw = &config.sections[name];
        if name == "buildout" {
            return Ok(raw.clone());
        }
        let Some(macros) = raw.options.get("<") else {
            return Ok(raw.clone());
        };
        if let Some(i) = doing.iter().position(|d| d == name) {
            let mut chain: Vec<&str> = doing[i..].iter().map(String::as_str).collect();
            chain.push(name);
            return Err(Diagnostic::new(ErrorKind::Cycle, format!("macro cycle: {}", chain.join(" -> ")))
                .at(macros.span(), "this section inherits from itself through these macros"));
        }
        doing.push(name.to_owned());
        let mut result = Section {
            options: IndexMap::new(),
            header: raw.header,
        };
        let names: Vec<String> = match &macros.value {
            Value::Str(s) => s.split('\n').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            Value::List(l) => l.clone(),
        };
        for m in names {
            if !config.sections.contains_key(&m) {
                return Err(Diagnostic::new(
                    ErrorKind::MissingSection,
                    format!("section [{name}] inherits from [{m}], which is not defined"),
                )
                .at(macros.span(), "no such section"));
            }
            let sub = match self.expanded.get(&m) {
                Some(s) => (**s).clone(),
                None => self.expand(&m, doing)?,
            };
            for (k, e) in sub.options {
                let source = e.span().map_or(Source::Implicit, Source::File);
                result.options.insert(
                    k,
                    Entry {
                        value: e.value,
                        history: vec![Step { op: Op::Macro, source }],
                    },
                );
            }
        }
        let mut own = raw.clone();
        own.options.shift_remove("<");
        update_section(&mut result, own);
        result.options.retain(|k, _| super::model::split_key(k).1 == '=');
        doing.pop();
        Ok(result)
    }

    fn memoised(&self, sec: &str, opt: &str) -> Option<Value> {
        if let Some(v) = self.outputs.get(sec).and_then(|o| o.get(opt)) {
            return Some(v.clone());
        }
        self.memo.get(sec).and_then(|m| m.get(opt)).cloned()
    }

    fn remember(&mut self, sec: &str, opt: &str, v: Value) {
        match self.memo.get_mut(sec) {
            Some(m) => {
                m.insert(opt.to_owned(), v);
            }
            None => {
                let mut m = HashMap::new();
                m.insert(opt.to_owned(), v);
                self.memo.insert(sec.to_owned(), m);
            }
        }
    }

    fn start(&mut self, sec: &str, opt: &str) -> Result<Start, Diagnostic> {
        if let Some(v) = self.memoised(sec, opt) {
            return Ok(Start::Done(v));
        }
        let s = self.sec(sec)?;
        let Some(e) = s.options.get(opt) else {
            return Ok(Start::Missing);
        };
        if !needs_substitution(&e.value, self.config.format) {
            let v = self.finish(sec, opt, e.value.clone(), e)?;
            self.remember(sec, opt, v.clone());
            return Ok(Start::Done(v));
        }
        Ok(Start::Frame(Frame {
            sec: sec.to_owned(),
            opt: opt.to_owned(),
            span: e.span(),
            tpl: template(&e.value),
            got: Vec::new(),
        }))
    }

    /// Post-processing of a substituted value: `[buildout]` paths become absolute.
    fn finish(&mut self, sec: &str, opt: &str, v: Value, e: &Entry) -> Result<Value, Diagnostic> {
        if sec != "buildout" {
            return Ok(v);
        }
        let Value::Str(s) = &v else {
            return Ok(v);
        };
        if opt == "directory" {
            let p = expand_home(s);
            return Ok(Value::Str(absolute(&self.config.path_dir(), &p)));
        }
        if !PATH_OPTIONS.contains(&opt) || s.is_empty() {
            return Ok(v);
        }
        let p = expand_home(s);
        if Path::new(&p).is_absolute() {
            return Ok(Value::Str(p));
        }
        // As in zc.buildout, the eggs folder and the download cache are relative to the file
        // that set them (so a user default applies to every instance); the rest to `directory`.
        let base = match e.last_source() {
            Source::File(span) if matches!(opt, "eggs-directory" | "download-cache") => {
                self.config.file_dirs.get(span.file as usize).cloned().flatten()
            }
            _ => None,
        };
        let base = match base {
            Some(b) => b,
            None => match self.resolve("buildout", "directory")? {
                Some(Value::Str(d)) => PathBuf::from(d),
                _ => self.config.path_dir(),
            },
        };
        Ok(Value::Str(absolute(&base, &p)))
    }

    fn ref_span(&self, frame_span: Option<Span>, text: &str) -> Option<Span> {
        let span = frame_span?;
        let f = self.config.files.get(span.file)?;
        let (s, e) = (span.start as usize, (span.end as usize).min(f.text.len()));
        let hay = f.text.get(s..e)?;
        match hay.find(text) {
            Some(i) => Some(Span::new(span.file, s + i, s + i + text.len())),
            None => Some(span),
        }
    }

    fn resolve(&mut self, sec: &str, opt: &str) -> Result<Option<Value>, Diagnostic> {
        let first = match self.start(sec, opt)? {
            Start::Done(v) => return Ok(Some(v)),
            Start::Missing => return Ok(None),
            Start::Frame(f) => f,
        };
        let mut active: HashSet<(String, String)> = HashSet::new();
        active.insert((sec.to_owned(), opt.to_owned()));
        let mut stack = vec![first];
        loop {
            let top = stack.last().expect("the stack is never empty inside the loop");
            let next = top.got.len();
            if next < top.tpl.refs.len() {
                let r = &top.tpl.refs[next];
                let (tsec, topt) = match &r.target {
                    Ok((s, o)) => (if s.is_empty() { top.sec.clone() } else { s.clone() }, o.clone()),
                    Err(msg) => {
                        let d = Diagnostic::new(ErrorKind::BadReference, msg.clone())
                            .at(self.ref_span(top.span, &r.text), format!("in {}:{}", top.sec, top.opt));
                        return Err(d);
                    }
                };
                let key = (tsec, topt);
                if active.contains(&key) {
                    let i = stack.iter().position(|f| f.sec == key.0 && f.opt == key.1).unwrap_or(0);
                    let mut chain: Vec<String> = stack[i..].iter().map(|f| format!("{}:{}", f.sec, f.opt)).collect();
                    chain.push(format!("{}:{}", key.0, key.1));
                    let text = r.text.clone();
                    let d = Diagnostic::new(ErrorKind::Cycle, format!("circular reference in substitutions: {}", chain.join(" -> ")))
                        .at(self.ref_span(top.span, &text), "this reference closes the cycle");
                    return Err(d);
                }
                let (frame_sec, frame_opt, frame_span, text) = (top.sec.clone(), top.opt.clone(), top.span, r.text.clone());
                let started = match self.start(&key.0, &key.1) {
                    Ok(s) => s,
                    Err(mut d) => {
                        if d.span.is_none() {
                            d = d.at(self.ref_span(frame_span, &text), format!("referenced from {frame_sec}:{frame_opt}"));
                        }
                        return Err(d);
                    }
                };
                let got = match started {
                    Start::Done(v) => Got::Val(v),
                    Start::Missing if key.1 == "_buildout_section_name_" => Got::Val(Value::Str(frame_sec.clone())),
                    Start::Missing => {
                        let has_recipe = self.sec(&key.0)?.options.contains_key("recipe");
                        if self.lenient && has_recipe {
                            Got::Literal
                        } else {
                            let d = Diagnostic::new(
                                ErrorKind::MissingOption,
                                format!("referenced option does not exist: {}:{}", key.0, key.1),
                            )
                            .at(self.ref_span(frame_span, &text), format!("referenced from {frame_sec}:{frame_opt}"));
                            return Err(d);
                        }
                    }
                    Start::Frame(f) => {
                        active.insert(key);
                        stack.push(f);
                        continue;
                    }
                };
                stack.last_mut().expect("non-empty").got.push(got);
            } else {
                let f = stack.pop().expect("non-empty");
                let v = self.assemble(&f);
                let s = self.sec(&f.sec)?;
                let v = match s.options.get(&f.opt) {
                    Some(e) => self.finish(&f.sec, &f.opt, v, e)?,
                    None => v,
                };
                self.remember(&f.sec, &f.opt, v.clone());
                active.remove(&(f.sec.clone(), f.opt.clone()));
                match stack.last_mut() {
                    Some(parent) => parent.got.push(Got::Val(v)),
                    None => return Ok(Some(v)),
                }
            }
        }
    }

    fn assemble(&self, f: &Frame) -> Value {
        let dollar = match self.config.format {
            Format::Toml => "$",
            Format::Cfg => "$$",
        };
        let text_of = |segs: &[Seg]| {
            let mut out = String::new();
            for s in segs {
                match s {
                    Seg::Lit(l) => out.push_str(l),
                    Seg::Dollar => out.push_str(dollar),
                    Seg::Ref(i) => match &f.got[*i] {
                        Got::Val(v) => out.push_str(&v.to_text()),
                        Got::Literal => out.push_str(&f.tpl.refs[*i].text),
                    },
                }
            }
            out
        };
        if !f.tpl.list {
            return Value::Str(text_of(&f.tpl.elements[0]));
        }
        let mut out = Vec::new();
        for segs in &f.tpl.elements {
            if let [Seg::Ref(i)] = segs.as_slice()
                && let Got::Val(Value::List(items)) = &f.got[*i]
            {
                out.extend(items.iter().cloned());
                continue;
            }
            out.push(text_of(segs));
        }
        Value::List(out)
    }
}

fn expand_home(p: &str) -> String {
    if p == "~" || p.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return format!("{}{}", Path::new(&home).display(), &p[1..]);
        }
    }
    p.to_owned()
}

fn absolute(base: &Path, p: &str) -> String {
    let path = Path::new(p);
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    normalize(&joined).display().to_string()
}

/// Removes `.` and resolves `..` lexically, like Python's `os.path.abspath`.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
