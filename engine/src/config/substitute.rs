//! Lazy, memoising `${section:option}` substitution over the merged model, with macro
//! (`<` / `inherits`) expansion per section. Resolution is iterative, so a chain of
//! thousands of references needs no deep native stack, and works on section and option
//! indices so resolving a value allocates little more than the value itself.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use indexmap::IndexMap;
use smallvec::SmallVec;

use super::diag::{Diagnostic, Error, ErrorKind, Span};
use super::model::{Entry, History, Op, Section, Source, Step, Value, split_key, update_section};
use super::{Config, Format};
// The one lexical path normaliser (`..` never climbs above `/`), shared with the runner and
// the recipes.
pub(crate) use rbuildout_plugin_api::files::normalize;

/// One piece of a value's template, as byte ranges into the element it comes from.
#[derive(Debug, Clone)]
enum Seg {
    Lit(Range<usize>),
    /// A `$$` between pieces: kept as `$$` in `.cfg`, a literal `$` in TOML.
    Dollar,
    /// The n-th reference of the value.
    Ref(usize),
}

/// Why a `${...}` is not a valid reference.
#[derive(Debug, Clone, Copy)]
enum BadRef {
    NoColon,
    TooManyColons,
    SectionChars,
    OptionChars,
}

/// A reference: where it is written (element and byte range, `${` to `}`) and the ranges of
/// the section and option names in it, or why it is malformed.
#[derive(Debug, Clone)]
struct RefSpec {
    elem: usize,
    text: Range<usize>,
    target: Result<(Range<usize>, Range<usize>), BadRef>,
}

/// A value cut into segments: one list for a string, one per element for a list.
struct Template {
    list: bool,
    elements: SmallVec<[Segs; 1]>,
    refs: SmallVec<[RefSpec; 4]>,
}

fn simple(s: &str) -> bool {
    rbuildout_plugin_api::is_substitution_name(s)
}

/// zc.buildout's checks of one `${...}`, in its order; ranges are relative to `text`.
fn check_ref(text: &str) -> Result<(Range<usize>, Range<usize>), BadRef> {
    let inner = &text[2..text.len() - 1];
    let Some(colon) = inner.find(':') else {
        return Err(BadRef::NoColon);
    };
    if inner[colon + 1..].contains(':') {
        return Err(BadRef::TooManyColons);
    }
    let (sec, opt) = (&inner[..colon], &inner[colon + 1..]);
    if !(sec.is_empty() || simple(sec)) || !simple(opt) {
        // zc.buildout checks the section name first, even when it is empty.
        return Err(if simple(sec) {
            BadRef::OptionChars
        } else {
            BadRef::SectionChars
        });
    }
    Ok((2..2 + colon, 2 + colon + 1..text.len() - 1))
}

fn bad_ref_message(why: BadRef, text: &str) -> String {
    let chars = "(allowed: letters, digits, `-`, `.`, `_` and space)";
    match why {
        BadRef::NoColon => format!(
            "the reference {text} has no colon; write ${{section:option}}, or ${{:option}} for the same section"
        ),
        BadRef::TooManyColons => format!("the reference {text} has too many colons"),
        BadRef::SectionChars => {
            format!("the section name in the reference {text} has invalid characters {chars}")
        }
        BadRef::OptionChars => {
            format!("the option name in the reference {text} has invalid characters {chars}")
        }
    }
}

/// Where `$` followed by `next` first occurs in `s`: a byte scan, much cheaper than a
/// substring search for the short values configs hold.
fn find_dollar(s: &str, next: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'$') {
        let at = i + p;
        if b.get(at + 1) == Some(&next) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Whether a value holds a reference (`${`).
fn has_ref(s: &str) -> bool {
    find_dollar(s, b'{').is_some()
}

/// Calls `f(start, end)` for every `${...}` of one `$$`-free piece.
fn each_ref(s: &str, piece: Range<usize>, mut f: impl FnMut(usize, usize)) {
    let mut at = piece.start;
    while let Some(i) = find_dollar(&s[at..piece.end], b'{') {
        let open = at + i;
        let Some(j) = s[open + 2..piece.end].find('}') else {
            break;
        };
        let end = open + 2 + j + 1;
        f(open, end);
        at = end;
    }
}

/// The `$$`-separated pieces of a string, as ranges.
fn pieces(s: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match find_dollar(&s[start..], b'$') {
            Some(i) => {
                let r = start..start + i;
                start += i + 2;
                Some(r)
            }
            None => {
                done = true;
                Some(start..s.len())
            }
        }
    })
}

/// The segments of one string; short values (the usual case) need no allocation.
type Segs = SmallVec<[Seg; 8]>;

fn cut(s: &str, elem: usize, refs: &mut SmallVec<[RefSpec; 4]>) -> Segs {
    let mut segs = Segs::new();
    for (n, piece) in pieces(s).enumerate() {
        if n > 0 {
            segs.push(Seg::Dollar);
        }
        let mut lit = piece.start;
        each_ref(s, piece.clone(), |open, end| {
            if open > lit {
                segs.push(Seg::Lit(lit..open));
            }
            segs.push(Seg::Ref(refs.len()));
            refs.push(RefSpec {
                elem,
                text: open..end,
                target: check_ref(&s[open..end])
                    .map(|(a, b)| (a.start + open..a.end + open, b.start + open..b.end + open)),
            });
            lit = end;
        });
        if piece.end > lit {
            segs.push(Seg::Lit(lit..piece.end));
        }
    }
    segs
}

fn template(v: &Value) -> Template {
    let mut refs = SmallVec::new();
    let (list, elements) = match v {
        Value::Str(s) => (false, smallvec::smallvec![cut(s, 0, &mut refs)]),
        Value::List(l) => (
            true,
            l.iter()
                .enumerate()
                .map(|(i, e)| cut(e, i, &mut refs))
                .collect(),
        ),
    };
    Template {
        list,
        elements,
        refs,
    }
}

/// The options a section shows, sorted by name, each with its index: not the pending
/// `+=`/`-=` keys, and the macro list `<` only in `[buildout]` (where it is an option).
fn shown_options(section: &Section, is_buildout: bool) -> Vec<(&str, usize)> {
    let mut names: Vec<(&str, usize)> = section
        .options
        .keys()
        .enumerate()
        .filter(|(_, k)| split_key(k).1 == '=' && (k.as_str() != "<" || is_buildout))
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    names.sort_unstable();
    names
}

/// Whether a section takes options from macros (`[buildout]` never does, as in zc.buildout).
fn uses_macros(name: &str, raw: &Section) -> bool {
    name != "buildout" && raw.options.contains_key("<")
}

/// The macro names of a `<` value: one per line (zc.buildout), or the array's elements.
fn macro_names(v: &Value) -> Vec<String> {
    match v {
        Value::Str(s) => s
            .split('\n')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::List(l) => l.clone(),
    }
}

fn element(v: &Value, i: usize) -> &str {
    match v {
        Value::Str(s) => s,
        Value::List(l) => l.get(i).map_or("", String::as_str),
    }
}

fn needs_substitution(v: &Value, format: Format) -> bool {
    let any = |f: &dyn Fn(&str) -> bool| match v {
        Value::Str(s) => f(s),
        Value::List(l) => l.iter().any(|e| f(e)),
    };
    any(&has_ref) || (format == Format::Toml && any(&|s: &str| find_dollar(s, b'$').is_some()))
}

/// A reference by index: the section, and the option within it if the option exists.
pub type IndexRef = (usize, Option<usize>);

/// A section's options (by index, sorted by name) with the references each holds.
pub type ReferenceTable = Vec<(usize, Vec<IndexRef>)>;

/// Something the resolver hands out: borrowed from the config as it was read, or made by
/// the resolver and shared.
#[derive(Debug)]
pub enum Held<'c, T> {
    Raw(&'c T),
    Shared(Arc<T>),
}

impl<T> Clone for Held<'_, T> {
    fn clone(&self) -> Self {
        match self {
            Held::Raw(v) => Held::Raw(v),
            Held::Shared(v) => Held::Shared(Arc::clone(v)),
        }
    }
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::Raw(v) => v,
            Held::Shared(v) => v,
        }
    }
}

/// A resolved value: borrowed from the config when nothing was substituted, else shared.
pub type ValueRef<'c> = Held<'c, Value>;

/// What a resolved reference contributes.
enum Got<'c> {
    Val(ValueRef<'c>),
    /// Left as written (lenient mode, an output not known yet).
    Literal,
}

struct Frame<'c> {
    sec: usize,
    secref: SecRef<'c>,
    entry: usize,
    span: Option<Span>,
    tpl: Template,
    got: Vec<Got<'c>>,
    /// The sections the value read so far, directly or through the values it read.
    deps: Deps,
}

/// The sections (by index, sorted, each once) a memoised value read while it was resolved,
/// directly or through the values it read: an output published for any other section cannot
/// change it. Most values read one or two sections.
type Deps = SmallVec<[u32; 2]>;

fn add_dep(deps: &mut Deps, sec: usize) {
    let sec = sec as u32;
    if let Err(at) = deps.binary_search(&sec) {
        deps.insert(at, sec);
    }
}

fn add_deps(deps: &mut Deps, more: &[u32]) {
    for &sec in more {
        add_dep(deps, sec as usize);
    }
}

/// A memoised value and the sections it depends on.
#[derive(Clone)]
struct Memo {
    value: Arc<Value>,
    deps: Deps,
}

impl Frame<'_> {
    fn value(&self) -> &Value {
        &self.secref.options[self.entry].value
    }

    fn opt(&self) -> &str {
        self.secref
            .options
            .get_index(self.entry)
            .map_or("", |(k, _)| k.as_str())
    }

    fn ref_text(&self, r: &RefSpec) -> &str {
        &element(self.value(), r.elem)[r.text.clone()]
    }
}

/// Where resolving one option begins. Kept unboxed: a `Start` lives only on the stack for
/// one step, and boxing the frame would cost an allocation per option resolved.
#[allow(clippy::large_enum_variant)]
enum Start<'c> {
    /// The value, and the sections it depends on (none for a raw value or an output).
    Done(ValueRef<'c>, Deps),
    Missing,
    Frame(Frame<'c>),
}

/// A reference found in place: the section's range, the option's range, and the list element.
type FoundRef = (Range<usize>, Range<usize>, usize);

/// A section as the resolver sees it: raw from the config, or expanded from its macros.
type SecRef<'c> = Held<'c, Section>;

use super::buildout::PATH_OPTIONS;

/// The outputs recipes published, per section, per option: what a resolver layers over the
/// config. A snapshot ([`Resolver::outputs`]) is immutable and cheap to share between threads.
pub type Outputs = HashMap<String, IndexMap<String, Value>>;

/// Lazy, memoising substitution. Outputs published by recipes are layered on top.
pub struct Resolver<'c> {
    config: &'c Config,
    /// Substituted values, per section index, per option index (of the expanded section).
    memo: Vec<Vec<Option<Memo>>>,
    expanded: HashMap<usize, Arc<Section>>,
    /// Shared with the [`Outputs`] snapshots taken of it; copied on the next write.
    outputs: Arc<Outputs>,
    lenient: bool,
    /// Per section index, whether it uses macros (so needs expanding).
    macro_users: Vec<bool>,
    /// Scratch: the values being resolved (for cycle detection), reused between calls.
    active: HashSet<(usize, usize)>,
    /// Bytes of options copied by macro expansion so far (see [`Resolver::charge`]).
    expanded_bytes: u64,
}

impl<'c> Resolver<'c> {
    pub(crate) fn new(config: &'c Config) -> Resolver<'c> {
        Resolver {
            config,
            memo: vec![Vec::new(); config.sections.len()],
            expanded: HashMap::new(),
            outputs: Arc::default(),
            lenient: false,
            active: HashSet::new(),
            expanded_bytes: config.parsed,
            macro_users: config
                .sections
                .iter()
                .map(|(n, s)| uses_macros(n, s))
                .collect(),
        }
    }

    fn error(&self, d: Diagnostic) -> Error {
        Error::one(&self.config.files, d)
    }

    fn index(&self, name: &str) -> Result<usize, Diagnostic> {
        self.config.sections.get_index_of(name).ok_or_else(|| {
            Diagnostic::new(
                ErrorKind::MissingSection,
                format!("the section [{name}] is not defined"),
            )
        })
    }

    /// One option, fully substituted.
    pub fn get(&mut self, section: &str, option: &str) -> Result<Value, Error> {
        match self.get_ref(section, option)? {
            Some(v) => Ok((*v).clone()),
            None => {
                let header = self.config.sections.get(section).and_then(|s| s.header);
                let d = Diagnostic::new(
                    ErrorKind::MissingOption,
                    format!("missing option {section}:{option}"),
                )
                .at(
                    header,
                    format!("section [{section}] has no option `{option}`"),
                );
                Err(self.error(d))
            }
        }
    }

    /// One option, or `None` when the section exists but the option does not.
    pub fn get_opt(&mut self, section: &str, option: &str) -> Result<Option<Value>, Error> {
        Ok(self.get_ref(section, option)?.map(|v| (*v).clone()))
    }

    /// Like [`Resolver::get_opt`], without copying the value.
    pub fn get_ref(&mut self, section: &str, option: &str) -> Result<Option<ValueRef<'c>>, Error> {
        let idx = self.index(section).map_err(|d| self.error(d))?;
        self.resolve(idx, option).map_err(|d| self.error(d))
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
        let idx = self.index(section).map_err(|d| self.error(d))?;
        let sec = self.sec(idx).map_err(|d| self.error(d))?;
        let mut names: Vec<String> = sec
            .options
            .keys()
            .filter(|k| split_key(k).1 == '=' && (k.as_str() != "<" || section == "buildout"))
            .cloned()
            .collect();
        if let Some(outs) = self.outputs.get(section) {
            names.extend(
                outs.keys()
                    .filter(|k| !sec.options.contains_key(*k))
                    .cloned(),
            );
        }
        names.sort_unstable();
        Ok(names)
    }

    /// Where an option's value came from, oldest first.
    pub fn history(&mut self, section: &str, option: &str) -> Result<History, Error> {
        let idx = self.index(section).map_err(|d| self.error(d))?;
        let sec = self.sec(idx).map_err(|d| self.error(d))?;
        let mut h = sec
            .options
            .get(option)
            .map(|e| e.history.clone())
            .unwrap_or_default();
        if self
            .outputs
            .get(section)
            .is_some_and(|o| o.contains_key(option))
        {
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
    pub fn references(
        &mut self,
        section: &str,
        option: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let idx = self.index(section).map_err(|d| self.error(d))?;
        let sec = self.sec(idx).map_err(|d| self.error(d))?;
        let Some(e) = sec.options.get(option) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut scan = |s: &str| {
            for piece in pieces(s) {
                each_ref(s, piece, |open, end| {
                    if let Ok((a, b)) = check_ref(&s[open..end]) {
                        let text = &s[open..end];
                        let name = if a.is_empty() { section } else { &text[a] };
                        out.push((name.to_owned(), text[b].to_owned()));
                    }
                });
            }
        };
        match &e.value {
            Value::Str(s) if has_ref(s) => scan(s),
            Value::Str(_) => {}
            Value::List(l) => l.iter().filter(|x| has_ref(x)).for_each(|x| scan(x)),
        }
        Ok(out)
    }

    /// Every section the values of `from` reach through references, directly or through the
    /// sections they name (any option, `+=`/`-=` ones included), `from` itself too: an output
    /// published for a section outside this set cannot change a value of `from`.
    pub fn sections_reached(&mut self, from: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        seen.insert(from.to_owned());
        let mut stack = vec![from.to_owned()];
        while let Some(section) = stack.pop() {
            let Some(idx) = self.section_index(&section) else {
                continue;
            };
            let Ok(sec) = self.sec(idx) else { continue };
            let keys: Vec<String> = sec.options.keys().cloned().collect();
            for key in keys {
                for (target, _) in self.references(&section, &key).unwrap_or_default() {
                    if seen.insert(target.clone()) {
                        stack.push(target);
                    }
                }
            }
        }
        seen
    }

    /// The index of a section, for the index-based calls below.
    pub fn section_index(&self, name: &str) -> Option<usize> {
        self.config.sections.get_index_of(name)
    }

    /// The name of the section at `idx`.
    pub fn section_name(&self, idx: usize) -> &'c str {
        self.name(idx)
    }

    /// For the parts graph: a section's options in sorted name order, each as (option index,
    /// its references as (section index, option index in that section, if it exists)).
    /// Malformed references and references to missing sections are skipped: resolving the
    /// option reports them.
    pub fn reference_table(&mut self, sec: usize) -> Result<ReferenceTable, Error> {
        let secref = self.sec(sec).map_err(|d| self.error(d))?;
        let is_buildout = self.is_buildout(sec);
        let names = shown_options(&secref, is_buildout);
        let mut out = Vec::with_capacity(names.len());
        for (_, i) in names {
            let v = &secref.options[i].value;
            let mut refs = Vec::new();
            if needs_substitution(v, Format::Cfg) {
                // Scanned in place: the graph needs only the targets, not a template.
                let mut found: SmallVec<[FoundRef; 4]> = SmallVec::new();
                let elems: &[String] = match v {
                    Value::Str(s) => std::slice::from_ref(s),
                    Value::List(l) => l,
                };
                for (n, s) in elems.iter().enumerate() {
                    for piece in pieces(s) {
                        each_ref(s, piece, |open, end| {
                            if let Ok((a, b)) = check_ref(&s[open..end]) {
                                found.push((
                                    a.start + open..a.end + open,
                                    b.start + open..b.end + open,
                                    n,
                                ));
                            }
                        });
                    }
                }
                for (a, b, n) in found {
                    let s = &elems[n];
                    let t = if a.is_empty() {
                        Some(sec)
                    } else {
                        self.config.sections.get_index_of(&s[a])
                    };
                    let Some(t) = t else { continue };
                    let entry = self
                        .sec(t)
                        .map_err(|d| self.error(d))?
                        .options
                        .get_index_of(&s[b]);
                    refs.push((t, entry));
                }
            }
            out.push((i, refs));
        }
        Ok(out)
    }

    /// Substitutes every option of a section (memoised) without collecting the values:
    /// reports the first error, as initializing the section in zc.buildout does.
    pub fn check_section(&mut self, section: &str) -> Result<(), Error> {
        let idx = self.index(section).map_err(|d| self.error(d))?;
        let sec = self.sec(idx).map_err(|d| self.error(d))?;
        for k in sec.options.keys() {
            if split_key(k).1 != '=' || (k == "<" && section != "buildout") {
                continue;
            }
            if needs_substitution(&sec.options[k.as_str()].value, self.config.format) {
                self.resolve(idx, k).map_err(|d| self.error(d))?;
            }
        }
        Ok(())
    }

    /// Calls `f` with every option of a section, sorted by name: its substituted value and its
    /// history. Resolves the section first (reporting the first error), then borrows the
    /// values instead of copying them.
    pub fn visit_section(
        &mut self,
        section: &str,
        mut f: impl FnMut(&str, &Value, &[Step]),
    ) -> Result<(), Error> {
        let idx = self.index(section).map_err(|d| self.error(d))?;
        if self.outputs.contains_key(section) {
            // Outputs add and replace options: take the general path.
            for name in self.option_names(section)? {
                let v = self.get(section, &name)?;
                let h = self.history(section, &name)?;
                f(&name, &v, &h);
            }
            return Ok(());
        }
        let secref = self.sec(idx).map_err(|d| self.error(d))?;
        let is_buildout = self.is_buildout(idx);
        let names = shown_options(&secref, is_buildout);
        for (name, entry) in names {
            let e = &secref.options[entry];
            if !is_buildout && !needs_substitution(&e.value, self.config.format) {
                f(name, &e.value, &e.history);
                continue;
            }
            if let Some(v) = self.resolve(idx, name).map_err(|d| self.error(d))? {
                f(name, &v, &e.history);
            }
        }
        Ok(())
    }

    /// Whether the section exists (after the config is loaded, sections never appear).
    pub fn has_section(&self, section: &str) -> bool {
        self.config.sections.contains_key(section)
    }

    /// A recipe published `section:option` (e.g. `paths`); later gets see it. Forgets the
    /// memoised values that read any option of `section` (directly or through other values):
    /// an output may add an option a lenient value left as `${section:option}`, so every
    /// value that looked into the section is recomputed, and no other.
    pub fn set_output(&mut self, section: &str, option: &str, value: Value) {
        Arc::make_mut(&mut self.outputs)
            .entry(section.to_owned())
            .or_default()
            .insert(option.to_owned(), value);
        let Some(published) = self.section_index(section) else {
            return;
        };
        let published = published as u32;
        for slot in self.memo.iter_mut().flatten() {
            if slot
                .as_ref()
                .is_some_and(|m| m.deps.binary_search(&published).is_ok())
            {
                *slot = None;
            }
        }
    }

    /// Whether `section:option` has a memoised value (for tests of what an output forgets).
    #[cfg(test)]
    fn memoised(&mut self, section: &str, option: &str) -> bool {
        let Some(idx) = self.section_index(section) else {
            return false;
        };
        let Ok(sec) = self.sec(idx) else { return false };
        sec.options
            .get_index_of(option)
            .and_then(|e| self.memo[idx].get(e))
            .is_some_and(Option::is_some)
    }

    /// The outputs published so far, frozen: a later [`Resolver::set_output`] copies them
    /// instead of changing this snapshot.
    pub fn outputs(&self) -> Arc<Outputs> {
        self.outputs.clone()
    }

    /// A resolver that sees `outputs` (a snapshot of another resolver's) over `config`.
    pub fn with_outputs(config: &'c Config, outputs: Arc<Outputs>) -> Resolver<'c> {
        Resolver {
            outputs,
            ..Resolver::new(config)
        }
    }

    /// Lenient mode (annotate/query/plan): a reference to an option missing from a section
    /// that has a `recipe` (an output not known yet) is left as its literal `${sec:opt}` text.
    pub fn set_lenient(&mut self, lenient: bool) {
        self.lenient = lenient;
        self.memo.iter_mut().for_each(Vec::clear);
    }

    /// The section at `idx`, expanded from its macros (memoised).
    fn sec(&mut self, idx: usize) -> Result<SecRef<'c>, Diagnostic> {
        let config = self.config;
        let Some((_, raw)) = config.sections.get_index(idx) else {
            return Err(Diagnostic::new(
                ErrorKind::MissingSection,
                "no such section",
            ));
        };
        if !self.macro_users[idx] {
            return Ok(SecRef::Raw(raw));
        }
        if let Some(e) = self.expanded.get(&idx) {
            return Ok(SecRef::Shared(e.clone()));
        }
        self.expand(idx)?;
        match self.expanded.get(&idx) {
            Some(e) => Ok(SecRef::Shared(e.clone())),
            None => Ok(SecRef::Raw(raw)),
        }
    }

    /// Expands `idx` and every macro it uses, depth first without recursion (a chain of
    /// thousands of macros needs no deep native stack), caching each expansion.
    fn expand(&mut self, idx: usize) -> Result<(), Diagnostic> {
        let config = self.config;
        // (section, children pushed): a section is expanded once its macros are.
        let mut stack: Vec<(usize, bool)> = vec![(idx, false)];
        let mut path: Vec<usize> = Vec::new();
        while let Some((s, ready)) = stack.pop() {
            let (name, raw) = config
                .sections
                .get_index(s)
                .expect("indices come from the config");
            if ready {
                path.pop();
                let section = self.expand_one(name, raw)?;
                self.charge(name, raw, &section)?;
                self.expanded.insert(s, Arc::new(section));
                continue;
            }
            if !uses_macros(name, raw) || self.expanded.contains_key(&s) {
                continue;
            }
            let macros = &raw.options["<"];
            if let Some(i) = path.iter().position(|&p| p == s) {
                let mut chain: Vec<&str> = path[i..].iter().map(|&p| self.name(p)).collect();
                chain.push(name);
                return Err(Diagnostic::new(
                    ErrorKind::Cycle,
                    format!("macro cycle: {}", chain.join(" -> ")),
                )
                .at(
                    macros.span(),
                    "this section inherits from itself through these macros",
                ));
            }
            path.push(s);
            stack.push((s, true));
            for m in macro_names(&macros.value).iter().rev() {
                match config.sections.get_index_of(m) {
                    Some(mi) => stack.push((mi, false)),
                    None => {
                        return Err(Diagnostic::new(
                            ErrorKind::MissingSection,
                            format!("section [{name}] inherits from [{m}], which is not defined"),
                        )
                        .at(macros.span(), "no such section"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts what expanding `name` copied against the load's budget: a macro of many
    /// options used by many sections multiplies a small file into gigabytes.
    fn charge(&mut self, name: &str, raw: &Section, section: &Section) -> Result<(), Diagnostic> {
        const ENTRY: u64 = 128;
        let size: u64 = section
            .options
            .iter()
            .map(|(k, e)| {
                let v = match &e.value {
                    Value::Str(s) => s.len() as u64,
                    Value::List(l) => l.iter().map(|x| x.len() as u64 + 24).sum(),
                };
                k.len() as u64 + v + ENTRY
            })
            .sum();
        self.expanded_bytes = self.expanded_bytes.saturating_add(size);
        let limit = self.config.limits.expanded;
        if self.expanded_bytes <= limit {
            return Ok(());
        }
        let span = raw.options.get("<").and_then(Entry::span).or(raw.header);
        Err(Diagnostic::new(
            ErrorKind::Type,
            format!(
                "expanding the macros of [{name}] takes the config text and the options copied from macros past {}, the limit for one config",
                super::limits::show(limit)
            ),
        )
        .at(span, "these macros")
        .note(format!(
            "every section using a macro gets its own copy of the macro's options; if the config is meant to be this large, raise {}",
            super::limits::EXPANDED_VAR
        )))
    }

    /// buildout's `_do_extend_raw` for one section whose macros are already expanded: the
    /// macros' raw options, later macros winning, then the section's own (whose `+=`/`-=`
    /// apply to the macros' values).
    fn expand_one(&self, name: &str, raw: &Section) -> Result<Section, Diagnostic> {
        let config = self.config;
        let mut result = Section {
            options: super::model::Map::default(),
            header: raw.header,
        };
        let macros = raw
            .options
            .get("<")
            .map(|m| macro_names(&m.value))
            .unwrap_or_default();
        for m in macros {
            let Some(midx) = config.sections.get_index_of(&m) else {
                return Err(Diagnostic::new(
                    ErrorKind::MissingSection,
                    format!("section [{name}] inherits from [{m}], which is not defined"),
                ));
            };
            let sub: &Section = match self.expanded.get(&midx) {
                Some(s) => s,
                None => &config.sections[midx],
            };
            for (k, e) in &sub.options {
                let source = e.span().map_or(Source::Implicit, Source::File);
                result.options.insert(
                    k.clone(),
                    Entry {
                        value: e.value.clone(),
                        history: smallvec::smallvec![Step {
                            op: Op::Macro,
                            source,
                        }],
                    },
                );
            }
        }
        let mut own = raw.clone();
        own.options.shift_remove("<");
        update_section(&mut result, own);
        result.options.retain(|k, _| split_key(k).1 == '=');
        Ok(result)
    }

    fn remember(&mut self, sec: usize, entry: usize, len: usize, value: Arc<Value>, deps: Deps) {
        let m = &mut self.memo[sec];
        if m.is_empty() {
            m.resize(len, None);
        }
        if let Some(slot) = m.get_mut(entry) {
            *slot = Some(Memo { value, deps });
        }
    }

    fn start(&mut self, sec: usize, opt: &str) -> Result<Start<'c>, Diagnostic> {
        if !self.outputs.is_empty()
            && let Some(v) = self
                .outputs
                .get(
                    self.config
                        .sections
                        .get_index(sec)
                        .map_or("", |(n, _)| n.as_str()),
                )
                .and_then(|o| o.get(opt))
        {
            return Ok(Start::Done(
                ValueRef::Shared(Arc::new(v.clone())),
                Deps::new(),
            ));
        }
        let secref = self.sec(sec)?;
        let Some(entry) = secref.options.get_index_of(opt) else {
            return Ok(Start::Missing);
        };
        if let Some(Some(m)) = self.memo[sec].get(entry) {
            return Ok(Start::Done(
                ValueRef::Shared(m.value.clone()),
                m.deps.clone(),
            ));
        }
        let e = &secref.options[entry];
        if !needs_substitution(&e.value, self.config.format) {
            if !self.is_buildout(sec)
                && let SecRef::Raw(raw) = secref
            {
                // Nothing to substitute or post-process: the raw value is the value.
                return Ok(Start::Done(
                    ValueRef::Raw(&raw.options[entry].value),
                    Deps::new(),
                ));
            }
            let mut deps = Deps::new();
            let v = Arc::new(self.finish(sec, opt, e.value.clone(), e, &mut deps)?);
            self.remember(sec, entry, secref.options.len(), v.clone(), deps.clone());
            return Ok(Start::Done(ValueRef::Shared(v), deps));
        }
        let span = e.span();
        let tpl = template(&e.value);
        Ok(Start::Frame(Frame {
            sec,
            secref,
            entry,
            span,
            got: Vec::with_capacity(tpl.refs.len()),
            tpl,
            deps: Deps::new(),
        }))
    }

    fn is_buildout(&self, sec: usize) -> bool {
        self.config
            .sections
            .get_index(sec)
            .is_some_and(|(n, _)| n == "buildout")
    }

    /// Post-processing of a substituted value: `[buildout]` paths become absolute (relative
    /// to `directory`, which `deps` then notes).
    fn finish(
        &mut self,
        sec: usize,
        opt: &str,
        v: Value,
        e: &Entry,
        deps: &mut Deps,
    ) -> Result<Value, Diagnostic> {
        if !self.is_buildout(sec) {
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
            Source::File(span) if matches!(opt, "eggs-directory" | "download-cache") => self
                .config
                .file_dirs
                .get(span.file as usize)
                .cloned()
                .flatten(),
            _ => None,
        };
        let base = match base {
            Some(b) => b,
            None => match self.resolve_noting(sec, "directory", deps)?.as_deref() {
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

    fn name(&self, sec: usize) -> &'c str {
        self.config
            .sections
            .get_index(sec)
            .map_or("", |(n, _)| n.as_str())
    }

    fn resolve(&mut self, sec: usize, opt: &str) -> Result<Option<ValueRef<'c>>, Diagnostic> {
        self.resolve_noting(sec, opt, &mut Deps::new())
    }

    /// [`Resolver::resolve`], adding to `deps` the sections the value read (`sec` too).
    fn resolve_noting(
        &mut self,
        sec: usize,
        opt: &str,
        deps: &mut Deps,
    ) -> Result<Option<ValueRef<'c>>, Diagnostic> {
        add_dep(deps, sec);
        let first = match self.start(sec, opt)? {
            Start::Done(v, more) => {
                add_deps(deps, &more);
                return Ok(Some(v));
            }
            Start::Missing => return Ok(None),
            Start::Frame(f) => f,
        };
        // The set of values being resolved is kept between calls so it is allocated once.
        let mut active = std::mem::take(&mut self.active);
        active.clear();
        let result = self.run_frames(first, &mut active, deps);
        self.active = active;
        result
    }

    /// Resolves `first` and every value it needs, depth first with an explicit stack.
    fn run_frames(
        &mut self,
        first: Frame<'c>,
        active: &mut HashSet<(usize, usize)>,
        deps: &mut Deps,
    ) -> Result<Option<ValueRef<'c>>, Diagnostic> {
        active.insert((first.sec, first.entry));
        let mut stack = vec![first];
        loop {
            let top = stack
                .last()
                .expect("the stack is never empty inside the loop");
            let next = top.got.len();
            if next < top.tpl.refs.len() {
                let r = &top.tpl.refs[next];
                let text = top.ref_text(r);
                let (tsec, topt) = match &r.target {
                    Ok((a, b)) => {
                        let s = element(top.value(), r.elem);
                        let tsec = if a.is_empty() {
                            Some(top.sec)
                        } else {
                            self.config.sections.get_index_of(&s[a.clone()])
                        };
                        (tsec, &s[b.clone()])
                    }
                    Err(why) => {
                        let d =
                            Diagnostic::new(ErrorKind::BadReference, bad_ref_message(*why, text))
                                .at(
                                    self.ref_span(top.span, text),
                                    format!("in {}:{}", self.name(top.sec), top.opt()),
                                );
                        return Err(d);
                    }
                };
                let Some(tsec) = tsec else {
                    let Ok((a, _)) = &r.target else {
                        unreachable!("checked above")
                    };
                    let missing = &element(top.value(), r.elem)[a.clone()];
                    let d = Diagnostic::new(
                        ErrorKind::MissingSection,
                        format!("the section [{missing}] is not defined"),
                    )
                    .at(
                        self.ref_span(top.span, text),
                        format!("referenced from {}:{}", self.name(top.sec), top.opt()),
                    );
                    return Err(d);
                };
                // What the value read: `tsec` (even where the option is missing: an output
                // may add it) and whatever the value found there read.
                let mut noted = Deps::new();
                add_dep(&mut noted, tsec);
                let started = match self.start(tsec, topt) {
                    Ok(s) => s,
                    Err(mut d) => {
                        if d.span.is_none() {
                            d = d.at(
                                self.ref_span(top.span, text),
                                format!("referenced from {}:{}", self.name(top.sec), top.opt()),
                            );
                        }
                        return Err(d);
                    }
                };
                let got = match started {
                    Start::Done(v, more) => {
                        add_deps(&mut noted, &more);
                        Got::Val(v)
                    }
                    Start::Missing if topt == "_buildout_section_name_" => Got::Val(
                        ValueRef::Shared(Arc::new(Value::Str(self.name(top.sec).to_owned()))),
                    ),
                    Start::Missing => {
                        let has_recipe = self.sec(tsec)?.options.contains_key("recipe");
                        if self.lenient && has_recipe {
                            Got::Literal
                        } else {
                            let d = Diagnostic::new(
                                ErrorKind::MissingOption,
                                format!(
                                    "referenced option does not exist: {}:{topt}",
                                    self.name(tsec)
                                ),
                            )
                            .at(
                                self.ref_span(top.span, text),
                                format!("referenced from {}:{}", self.name(top.sec), top.opt()),
                            );
                            return Err(d);
                        }
                    }
                    Start::Frame(f) => {
                        if !active.insert((f.sec, f.entry)) {
                            let i = stack
                                .iter()
                                .position(|s| s.sec == f.sec && s.entry == f.entry)
                                .unwrap_or(0);
                            let mut chain: Vec<String> = stack[i..]
                                .iter()
                                .map(|s| format!("{}:{}", self.name(s.sec), s.opt()))
                                .collect();
                            chain.push(format!("{}:{}", self.name(f.sec), f.opt()));
                            let mut members = chain.clone();
                            members.sort();
                            members.dedup();
                            let mut d = Diagnostic::new(
                                ErrorKind::Cycle,
                                format!(
                                    "circular reference in substitutions: {}",
                                    chain.join(" -> ")
                                ),
                            );
                            d.key = Some(members.join(" "));
                            let d = d.at(
                                self.ref_span(top.span, text),
                                "this reference closes the cycle",
                            );
                            return Err(d);
                        }
                        add_deps(&mut stack.last_mut().expect("non-empty").deps, &noted);
                        stack.push(f);
                        continue;
                    }
                };
                let top = stack.last_mut().expect("non-empty");
                add_deps(&mut top.deps, &noted);
                top.got.push(got);
            } else {
                let f = stack.pop().expect("non-empty");
                let size = self.size(&f);
                if size > self.config.limits.value {
                    return Err(self.too_large(&f, size));
                }
                let v = self.assemble(&f);
                let opt = f.opt().to_owned();
                let mut f_deps = f.deps.clone();
                let v = self.finish(f.sec, &opt, v, &f.secref.options[f.entry], &mut f_deps)?;
                let v = Arc::new(v);
                self.remember(
                    f.sec,
                    f.entry,
                    f.secref.options.len(),
                    v.clone(),
                    f_deps.clone(),
                );
                active.remove(&(f.sec, f.entry));
                match stack.last_mut() {
                    Some(parent) => {
                        add_deps(&mut parent.deps, &f_deps);
                        parent.got.push(Got::Val(ValueRef::Shared(v)));
                    }
                    None => {
                        add_deps(deps, &f_deps);
                        return Ok(Some(ValueRef::Shared(v)));
                    }
                }
            }
        }
    }

    /// The bytes [`Resolver::assemble`] would build for `f`, counted before building it, so
    /// a value that doubles at every reference stops at the limit instead of at the end of
    /// memory. A list element counts its text and the 24 bytes of its string.
    fn size(&self, f: &Frame) -> u64 {
        const ELEMENT: u64 = std::mem::size_of::<String>() as u64;
        let dollar = match self.config.format {
            Format::Toml => 1,
            Format::Cfg => 2,
        };
        let of_value = |v: &Value| -> u64 {
            match v {
                Value::Str(s) => s.len() as u64,
                Value::List(l) => l.iter().map(|e| e.len() as u64 + 1).sum(),
            }
        };
        let text_of = |segs: &[Seg]| -> u64 {
            segs.iter()
                .map(|s| match s {
                    Seg::Lit(r) => r.len() as u64,
                    Seg::Dollar => dollar,
                    Seg::Ref(i) => match &f.got[*i] {
                        Got::Val(v) => of_value(v),
                        Got::Literal => f.tpl.refs[*i].text.len() as u64,
                    },
                })
                .fold(0, u64::saturating_add)
                .saturating_add(if f.tpl.list { ELEMENT } else { 0 })
        };
        if !f.tpl.list {
            return text_of(&f.tpl.elements[0]);
        }
        let mut total: u64 = 0;
        for segs in &f.tpl.elements {
            let n = match segs.as_slice() {
                [Seg::Ref(i)] => match &f.got[*i] {
                    Got::Val(v) => match &**v {
                        Value::List(items) => items.iter().map(|e| e.len() as u64 + ELEMENT).sum(),
                        v => of_value(v) + ELEMENT,
                    },
                    Got::Literal => text_of(segs),
                },
                _ => text_of(segs),
            };
            total = total.saturating_add(n);
        }
        total
    }

    fn too_large(&self, f: &Frame, size: u64) -> Diagnostic {
        let limit = self.config.limits.value;
        let name = format!("{}:{}", self.name(f.sec), f.opt());
        Diagnostic::new(
            ErrorKind::Type,
            format!(
                "the value of {name} would grow to {size} bytes by substitution, past the limit of {}",
                super::limits::show(limit)
            ),
        )
        .at(f.span, format!("{name} is substituted here"))
        .note(format!(
            "a value whose references repeat a value that repeats another grows exponentially; \
             if the value is meant to be this large, raise {}",
            super::limits::VALUE_VAR
        ))
    }

    fn assemble(&self, f: &Frame) -> Value {
        let dollar = match self.config.format {
            Format::Toml => "$",
            Format::Cfg => "$$",
        };
        let raw = f.value();
        let text_of = |elem: usize, segs: &[Seg]| {
            let src = element(raw, elem);
            let mut out = String::with_capacity(src.len());
            for s in segs {
                match s {
                    Seg::Lit(r) => out.push_str(&src[r.clone()]),
                    Seg::Dollar => out.push_str(dollar),
                    Seg::Ref(i) => match &f.got[*i] {
                        Got::Val(v) => match &**v {
                            Value::Str(s) => out.push_str(s),
                            l => out.push_str(&l.to_text()),
                        },
                        Got::Literal => out.push_str(&src[f.tpl.refs[*i].text.clone()]),
                    },
                }
            }
            out
        };
        if !f.tpl.list {
            return Value::Str(text_of(0, &f.tpl.elements[0]));
        }
        let mut out = Vec::new();
        for (elem, segs) in f.tpl.elements.iter().enumerate() {
            if let [Seg::Ref(i)] = segs.as_slice()
                && let Got::Val(v) = &f.got[*i]
                && let Value::List(items) = &**v
            {
                out.extend(items.iter().cloned());
                continue;
            }
            out.push(text_of(elem, segs));
        }
        Value::List(out)
    }
}

fn expand_home(p: &str) -> String {
    if (p == "~" || p.starts_with("~/"))
        && let Some(home) = std::env::var_os("HOME")
    {
        return format!("{}{}", Path::new(&home).display(), &p[1..]);
    }
    p.to_owned()
}

fn absolute(base: &Path, p: &str) -> String {
    let path = Path::new(p);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    normalize(&joined).display().to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Format, Value, load_str};

    #[test]
    fn an_output_forgets_only_the_values_that_read_its_section() {
        let text = "[buildout]\nparts = ['a']\n\
                    [a]\nrecipe = 'r'\n\
                    [b]\nx = '${a:out}'\n\
                    [c]\ny = '${b:x}+'\n\
                    [d]\nz = '${e:w}'\n\
                    [e]\nw = '1'\n\
                    [g]\nrecipe = 'r'\n";
        let config = load_str(text, "t", Path::new("/i"), Format::Toml).unwrap();
        let mut r = config.resolver();
        r.set_lenient(true);
        assert_eq!(r.get("c", "y").unwrap(), Value::Str("${a:out}+".into()));
        assert_eq!(r.get("d", "z").unwrap(), Value::Str("1".into()));
        assert!(r.memoised("b", "x") && r.memoised("c", "y") && r.memoised("d", "z"));

        r.set_output("a", "out", Value::Str("p".into()));
        // [b] read [a] directly and [c] through [b]: both are recomputed, with the output.
        assert!(!r.memoised("b", "x") && !r.memoised("c", "y"));
        // [d] never read [a]: its value is kept, not recomputed.
        assert!(r.memoised("d", "z"));
        assert_eq!(r.get("c", "y").unwrap(), Value::Str("p+".into()));
        assert_eq!(r.get("b", "x").unwrap(), Value::Str("p".into()));

        // Publishing for a section nobody read keeps everything.
        r.set_output("g", "out", Value::Str("q".into()));
        assert!(r.memoised("c", "y") && r.memoised("d", "z"));
        // Replacing an option a value read forgets that value.
        r.set_output("e", "w", Value::Str("2".into()));
        assert!(!r.memoised("d", "z") && r.memoised("c", "y"));
        assert_eq!(r.get("d", "z").unwrap(), Value::Str("2".into()));
    }

    #[test]
    fn a_buildout_path_depends_on_the_directory_it_is_made_absolute_against() {
        let text = "[buildout]\nparts = []\nbin-directory = 'tools'\n";
        let config = load_str(text, "t", Path::new("/i"), Format::Toml).unwrap();
        let mut r = config.resolver();
        assert_eq!(
            r.get("buildout", "bin-directory").unwrap(),
            Value::Str("/i/tools".into())
        );
        r.set_output("other", "x", Value::Str("1".into()));
        assert!(r.memoised("buildout", "bin-directory"));
        r.set_output("buildout", "directory", Value::Str("/j".into()));
        assert!(!r.memoised("buildout", "bin-directory"));
        assert_eq!(
            r.get("buildout", "bin-directory").unwrap(),
            Value::Str("/j/tools".into())
        );
    }
}
