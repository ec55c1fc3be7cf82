//! The native `buildout.toml` format: every top-level table a section, values strings or
//! arrays of strings (numbers and booleans become their text), `{ append, remove }`
//! modifiers and `inherits` for macros. A quoted table name `["section:condition"]` is a
//! conditional section, `.cfg`'s `[section:condition]`: when the condition holds, its options
//! are merged into `[section]` in file order, `append`/`remove` accumulating as `+=`/`-=` do
//! within one `.cfg` file.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::condition::{self, Env};
use super::diag::{Diagnostic, ErrorKind, Span};
use super::model::{Entry, Op, Section, Sections, Source, Value, op_key, split_key};

fn type_error(file: u32, span: std::ops::Range<usize>, what: String, label: &str) -> Diagnostic {
    Diagnostic::new(ErrorKind::Type, what)
        .at(Some(Span::new(file, span.start, span.end)), label)
        .note("a value is a string or an array of strings; integers, floats and booleans become their text")
}

/// A scalar as its text, or why it is not one.
fn scalar(v: &DeValue<'_>) -> Result<String, &'static str> {
    match v {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => Ok(i.as_str().to_owned()),
        DeValue::Float(f) => Ok(f.as_str().to_owned()),
        DeValue::Boolean(b) => Ok(b.to_string()),
        DeValue::Datetime(_) => Err("a datetime"),
        DeValue::Array(_) => Err("a nested array"),
        DeValue::Table(_) => Err("a table"),
    }
}

fn value(
    file: u32,
    sec: &str,
    opt: &str,
    v: &Spanned<DeValue<'_>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Value> {
    match v.get_ref() {
        DeValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                match scalar(item.get_ref()) {
                    Ok(s) => out.push(s),
                    Err(what) => {
                        errors.push(type_error(
                            file,
                            item.span(),
                            format!("option {sec}:{opt} holds {what} in its array"),
                            "not a string",
                        ));
                        return None;
                    }
                }
            }
            Some(Value::List(out))
        }
        other => match scalar(other) {
            Ok(s) => Some(Value::Str(s)),
            Err(what) => {
                errors.push(type_error(
                    file,
                    v.span(),
                    format!("option {sec}:{opt} is {what}"),
                    "expected a string or an array of strings",
                ));
                None
            }
        },
    }
}

/// Merges a conditional section that holds into its section, as one `.cfg` file merges a
/// repeated header: `append`/`remove` join what the section already has for the option
/// (line-wise, element-wise when either is an array), a plain value replaces the value and
/// drops the pending `append`/`remove` of that option.
fn merge_conditional(into: &mut Section, from: Section) {
    for (key, entry) in from.options {
        let (base, op) = split_key(&key);
        if op == '=' {
            into.options.shift_remove(&op_key(base, '+'));
            into.options.shift_remove(&op_key(base, '-'));
            into.options.insert(key, entry);
            continue;
        }
        match into.options.get_mut(&key) {
            Some(existing) => {
                existing.value = match (&existing.value, &entry.value) {
                    (Value::Str(a), Value::Str(b)) if b.is_empty() => Value::Str(a.clone()),
                    (Value::Str(a), Value::Str(b)) => Value::Str(format!("{}\n{b}", a.trim_end())),
                    (a, b) => Value::List(a.to_list().into_iter().chain(b.to_list()).collect()),
                };
                existing.history.extend(entry.history);
            }
            None => {
                into.options.insert(key, entry);
            }
        }
    }
    if into.header.is_none() {
        into.header = from.header;
    }
}

/// Parses one `buildout.toml` file's text; `file` is its id for spans. Reports every syntax
/// and type error it finds. Conditional sections are evaluated with `env`.
pub fn parse(text: &str, file: u32, env: &Env) -> Result<Sections, Vec<Diagnostic>> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let mut seen = std::collections::HashSet::new();
    let mut errors: Vec<Diagnostic> = syntax
        .into_iter()
        // The recovering parser may report one mistake several times.
        .filter(|e| seen.insert((e.message().to_owned(), e.span())))
        .map(|e| {
            let span = e.span().unwrap_or(0..0);
            Diagnostic::new(
                ErrorKind::Syntax,
                format!("invalid TOML: {}", e.message().trim_end()),
            )
            .at(Some(Span::new(file, span.start, span.end)), "here")
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut sections: Sections = Sections::default();
    for (name, table) in doc.get_ref().iter() {
        let sec = name.get_ref().as_ref();
        let DeValue::Table(options) = table.get_ref() else {
            let what = match table.get_ref() {
                DeValue::Array(a) if a.iter().any(|i| i.get_ref().is_table()) => {
                    format!("[[{sec}]] is an array of tables; a section is a plain [{sec}] table")
                }
                _ => {
                    format!("`{sec}` is outside any section; put options under a [section] header")
                }
            };
            let sp = name.span().start..table.span().end;
            errors.push(
                Diagnostic::new(ErrorKind::Type, what)
                    .at(Some(Span::new(file, sp.start, sp.end)), "here"),
            );
            continue;
        };
        let mut section = Section {
            options: super::model::Map::default(),
            header: Some(Span::new(file, name.span().start, name.span().end)),
        };
        for (key, v) in options.iter() {
            let opt: &str = key.get_ref().as_ref();
            let span = Span::new(file, key.span().start, v.span().end);
            let target = if opt == "inherits" { "<" } else { opt };
            if let DeValue::Table(t) = v.get_ref() {
                let is_modifier = !t.is_empty()
                    && t.iter()
                        .all(|(k, _)| matches!(k.get_ref().as_ref(), "append" | "remove"));
                if !is_modifier {
                    errors.push(type_error(
                        file,
                        key.span().start..v.span().end,
                        format!("option {sec}:{opt} is a nested table"),
                        "only `{ append = ..., remove = ... }` is accepted as a table value",
                    ));
                    continue;
                }
                for (k, mv) in t.iter() {
                    let (suffix, op) = if k.get_ref() == "append" {
                        ('+', Op::Add)
                    } else {
                        ('-', Op::Remove)
                    };
                    if let Some(val) = value(file, sec, opt, mv, &mut errors) {
                        section.options.insert(
                            op_key(target, suffix),
                            Entry::new(val, op, Source::File(span)),
                        );
                    }
                }
                continue;
            }
            if let Some(val) = value(file, sec, opt, v, &mut errors) {
                section.options.insert(
                    target.to_owned(),
                    Entry::new(val, Op::Set, Source::File(span)),
                );
            }
        }
        match sec.split_once(':') {
            Some((base, cond)) => {
                let base = base.trim();
                let header = Span::new(file, name.span().start, name.span().end);
                match condition::evaluate(cond.trim(), env) {
                    Ok(true) => {
                        merge_conditional(sections.entry(base.to_owned()).or_default(), section)
                    }
                    Ok(false) => {}
                    Err(why) => errors.push(
                        Diagnostic::new(
                            ErrorKind::Condition,
                            format!("cannot evaluate the condition of section [{base}]: {why}"),
                        )
                        .at(Some(header), "in this table name"),
                    ),
                }
            }
            None => match sections.get_mut(sec) {
                // A conditional table may come first: the plain one then merges into it.
                Some(existing) => merge_conditional(existing, section),
                None => {
                    sections.insert(sec.to_owned(), section);
                }
            },
        }
    }
    if errors.is_empty() {
        Ok(sections)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_modifiers() {
        let s = parse(
            "[buildout]\nparts = ['a', 'b']\njobs = 4\nflag = true\n[a]\ninherits = 'm'\nx = { append = 'y', remove = ['z'] }\n",
            0,
            &Env::default(),
        )
        .unwrap();
        assert_eq!(
            s["buildout"].options["parts"].value,
            Value::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(s["buildout"].options["jobs"].value, Value::Str("4".into()));
        assert_eq!(
            s["buildout"].options["flag"].value,
            Value::Str("true".into())
        );
        assert_eq!(s["a"].options["<"].value, Value::Str("m".into()));
        assert_eq!(s["a"].options["x +"].value, Value::Str("y".into()));
        assert_eq!(s["a"].options["x -"].value, Value::List(vec!["z".into()]));
    }

    #[test]
    fn type_errors_name_the_option() {
        let e = parse(
            "[a]\nwhen = 1979-05-27\n[b]\nt = { x = 1 }\n[[c]]\nx = 1\n",
            0,
            &Env::default(),
        )
        .unwrap_err();
        assert_eq!(e.len(), 3);
        assert!(e[0].message.contains("a:when"));
        assert!(e[1].message.contains("b:t"));
        assert!(e[2].message.contains("array of tables"));
        let e = parse("[a\n", 0, &Env::default()).unwrap_err();
        assert_eq!(e[0].kind, ErrorKind::Syntax);
    }

    #[test]
    fn conditional_tables_merge_into_their_section() {
        let linux = cfg!(target_os = "linux");
        let s = parse(
            "[a]\nx = '1'\nl = { append = 'p' }\n[\"a:linux\"]\nl = { append = 'q' }\ny = '2'\n\
             [\"a:windows\"]\nz = '3'\n[\"b:linux\"]\nw = '4'\n",
            0,
            &Env::default(),
        )
        .unwrap();
        assert_eq!(s["a"].options["x"].value, Value::Str("1".into()));
        assert!(!s["a"].options.contains_key("z"));
        if linux {
            assert_eq!(s["a"].options["l +"].value, Value::Str("p\nq".into()));
            assert_eq!(s["a"].options["y"].value, Value::Str("2".into()));
            assert_eq!(s["b"].options["w"].value, Value::Str("4".into()));
        }
        assert!(!s.contains_key("a:linux"));
        let e = parse("[\"a:nosuchname\"]\nx = 1\n", 0, &Env::default()).unwrap_err();
        assert!(
            e[0].message.contains("condition of section [a]"),
            "{}",
            e[0].message
        );
    }
}
