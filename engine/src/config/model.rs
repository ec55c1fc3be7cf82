//! The one model both formats load into: sections of raw option entries with their history,
//! and zc.buildout's merge rules (`_update`, `_update_section`) over it.

use indexmap::IndexMap;

use super::diag::Span;

/// An option value: TOML arrays stay lists, everything else is a string.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Str(String),
    List(Vec<String>),
}

impl Value {
    /// The text a recipe receives: a list is its elements joined with "\n".
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::List(l) => l.join("\n"),
        }
    }

    /// Elements: a list as is; a string split into non-empty trimmed lines, and a single line
    /// on whitespace.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Value::List(l) => l.clone(),
            Value::Str(s) => {
                let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                if lines.len() == 1 {
                    lines[0].split_whitespace().map(str::to_owned).collect()
                } else {
                    lines.into_iter().map(str::to_owned).collect()
                }
            }
        }
    }

    pub fn contains(&self, pat: &str) -> bool {
        match self {
            Value::Str(s) => s.contains(pat),
            Value::List(l) => l.iter().any(|e| e.contains(pat)),
        }
    }

    /// buildout's `addToValue`: lines (or elements) of `added` after those of `self`.
    fn add(&mut self, added: &Value) {
        *self = match (&*self, added) {
            (Value::Str(a), Value::Str(b)) => Value::Str(format!("{a}\n{b}")),
            (a, b) => {
                let mut l = list_elements(a);
                l.extend(list_elements(b));
                Value::List(l)
            }
        };
    }

    /// buildout's `removeFromValue`: drop every line (or element) that is one of `removed`'s.
    fn remove(&mut self, removed: &Value) {
        *self = match (&*self, removed) {
            (Value::Str(a), Value::Str(b)) => {
                let gone: Vec<&str> = b.split('\n').collect();
                Value::Str(
                    a.split('\n')
                        .filter(|l| !gone.contains(l))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            }
            (a, b) => {
                let gone = list_elements(b);
                Value::List(
                    list_elements(a)
                        .into_iter()
                        .filter(|e| !gone.contains(e))
                        .collect(),
                )
            }
        };
    }
}

/// Elements of a value taking part in a list operation: a string's non-empty trimmed lines
/// (one line split on whitespace), a list as is.
fn list_elements(v: &Value) -> Vec<String> {
    v.to_list()
}

/// Where one step of an option's history came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A built-in default (SPEC §2.4).
    Default,
    /// Computed by rbuildout (`directory`).
    Computed,
    /// A `section:option=value` on the command line.
    CommandLine,
    /// The empty base `+=`/`-=` apply to when nothing came before; not shown to users.
    Implicit,
    /// Written in a config file.
    File(Span),
}

/// The operation of one step of an option's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Add,
    Remove,
    Macro,
    Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub source: Source,
}

/// An option's history, oldest step first; most options have one or two steps, kept inline.
pub type History = smallvec::SmallVec<[Step; 2]>;

/// One option's raw (unsubstituted) value and how it came to be, oldest step first.
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    pub history: History,
}

impl Entry {
    pub fn new(value: Value, op: Op, source: Source) -> Entry {
        Entry {
            value,
            history: smallvec::smallvec![Step { op, source }],
        }
    }

    /// The span of the text that last set or changed this value, for error messages.
    pub fn span(&self) -> Option<Span> {
        self.history.iter().rev().find_map(|s| match s.source {
            Source::File(sp) => Some(sp),
            _ => None,
        })
    }

    pub fn last_source(&self) -> Source {
        self.history.last().map_or(Source::Implicit, |s| s.source)
    }

    fn last_op(&self) -> Op {
        self.history.last().map_or(Op::Set, |s| s.op)
    }

    /// buildout's `overrideValue`: `other` replaces this value.
    fn override_with(&mut self, other: Entry) {
        let replace_history = matches!(other.last_op(), Op::Add | Op::Remove);
        self.value = other.value;
        if replace_history {
            self.history = other.history;
        } else {
            self.history.push(*other.history.last().unwrap_or(&Step {
                op: Op::Set,
                source: Source::Implicit,
            }));
        }
    }
}

/// A section's raw options. Keys are option names, plus `"name +"` and `"name -"` for
/// pending `+=`/`-=` (kept only in sections that use macros), and `"<"` for macros.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub options: Map<Entry>,
    /// Where the section's header is, for errors about the section itself.
    pub header: Option<Span>,
}

/// A whole config: sections in the order first seen.
pub type Sections = Map<Section>;

/// The hasher of every name-keyed map in the config: fast, and names come from config files
/// the user controls, so hash flooding is not a concern.
pub type FastState = foldhash::fast::RandomState;

/// An insertion-ordered map keyed by section or option name.
pub type Map<V> = IndexMap<String, V, FastState>;

/// The key a `+=` (`suffix` '+') or `-=` (`-`) of `name` is stored under.
pub fn op_key(name: &str, suffix: char) -> String {
    let mut k = String::with_capacity(name.len() + 2);
    k.push_str(name);
    k.push(' ');
    k.push(suffix);
    k
}

/// Splits a raw key into its option name and operation suffix ('=' for a plain value).
pub fn split_key(key: &str) -> (&str, char) {
    if let Some(n) = key.strip_suffix(" +") {
        (n, '+')
    } else if let Some(n) = key.strip_suffix(" -") {
        (n, '-')
    } else {
        (key, '=')
    }
}

fn implicit() -> Entry {
    Entry::new(Value::Str(String::new()), Op::Set, Source::Implicit)
}

/// buildout's `_update_section`: `s2`'s values override `s1`'s; its `+=` and `-=` (`+=`
/// first) apply to the value `s2` itself sets, else `s1`'s, else the empty string.
pub fn update_section(s1: &mut Section, mut s2: Section) {
    let mut keys: Vec<(String, char, String)> = s2
        .options
        .keys()
        .map(|k| {
            let (n, op) = split_key(k);
            (n.to_owned(), op, k.clone())
        })
        .collect();
    let rank = |c: char| match c {
        '+' => 0,
        '=' => 1,
        _ => 2,
    };
    keys.sort_by(|a, b| a.0.cmp(&b.0).then(rank(a.1).cmp(&rank(b.1))));
    for (name, op, key) in keys {
        if op == '=' {
            continue;
        }
        let Some(v) = s2.options.shift_remove(&key) else {
            continue;
        };
        let mut base = s2
            .options
            .get(&name)
            .or_else(|| s1.options.get(&name))
            .cloned()
            .unwrap_or_else(implicit);
        let source = v.history.last().map_or(Source::Implicit, |s| s.source);
        if op == '+' {
            base.value.add(&v.value);
            base.history.push(Step {
                op: Op::Add,
                source,
            });
        } else {
            base.value.remove(&v.value);
            base.history.push(Step {
                op: Op::Remove,
                source,
            });
        }
        s2.options.insert(name, base);
    }
    if s1.header.is_none() {
        s1.header = s2.header;
    }
    for (k, v2) in s2.options {
        match s1.options.get_mut(&k) {
            Some(v1) => v1.override_with(v2),
            None => {
                s1.options.insert(k, v2);
            }
        }
    }
}

/// buildout's `_update`: merge `d2` into `d1`, section by section. A section new to `d1`
/// turns a `+=` without base into a value and a `-=` without base into the empty string,
/// except in a section using a macro, whose `+=`/`-=` wait for the macro's values.
pub fn update(d1: &mut Sections, d2: Sections) {
    for (name, mut section) in d2 {
        if let Some(s1) = d1.get_mut(&name) {
            update_section(s1, section);
        } else if section.options.keys().all(|k| split_key(k).1 == '=') {
            // Nothing pending: the section is taken as it is.
            d1.insert(name, section);
        } else if !section.options.contains_key("<") {
            let keys: Vec<String> = section.options.keys().cloned().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            for k in sorted {
                let (n, op) = split_key(&k);
                if op == '=' || section.options.contains_key(n) {
                    continue;
                }
                let n = n.to_owned();
                if let Some(mut e) = section.options.shift_remove(&k) {
                    if op == '-' {
                        e.value = match e.value {
                            Value::Str(_) => Value::Str(String::new()),
                            Value::List(_) => Value::List(Vec::new()),
                        };
                    }
                    section.options.insert(n, e);
                }
            }
            let mut fresh = Section {
                options: Map::default(),
                header: section.header,
            };
            update_section(&mut fresh, section);
            d1.insert(name, fresh);
        } else {
            d1.insert(name, section);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(pairs: &[(&str, &str)]) -> Section {
        let mut s = Section::default();
        for (k, v) in pairs {
            let op = match split_key(k).1 {
                '+' => Op::Add,
                '-' => Op::Remove,
                _ => Op::Set,
            };
            s.options.insert(
                (*k).into(),
                Entry::new(Value::Str((*v).into()), op, Source::Implicit),
            );
        }
        s
    }

    fn val(s: &Sections, sec: &str, opt: &str) -> String {
        s[sec].options[opt].value.to_text()
    }

    #[test]
    fn add_before_remove_and_missing_base() {
        let mut d1 = Sections::default();
        d1.insert("a".into(), sec(&[("x", "1\n2")]));
        let mut d2 = Sections::default();
        d2.insert("a".into(), sec(&[("x -", "1"), ("x +", "3")]));
        d2.insert("b".into(), sec(&[("y +", "v"), ("z -", "w")]));
        update(&mut d1, d2);
        assert_eq!(val(&d1, "a", "x"), "2\n3");
        assert_eq!(val(&d1, "b", "y"), "v");
        assert_eq!(val(&d1, "b", "z"), "");
    }

    #[test]
    fn list_values() {
        let mut v = Value::List(vec!["a".into(), "b".into()]);
        v.add(&Value::List(vec!["c".into()]));
        v.remove(&Value::Str("a".into()));
        assert_eq!(v, Value::List(vec!["b".into(), "c".into()]));
        assert_eq!(Value::Str(" a  b ".into()).to_list(), vec!["a", "b"]);
        assert_eq!(Value::Str("a b\n c\n\n".into()).to_list(), vec!["a b", "c"]);
    }
}
