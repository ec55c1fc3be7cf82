//! The native `buildout.toml` format: every top-level table a section, values strings or
//! arrays of strings (numbers and booleans become their text), `{ append, remove }`
//! modifiers and `inherits` for macros.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostic, ErrorKind, Span};
use super::model::{Entry, Op, Section, Sections, Source, Value, op_key};

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

/// Parses one `buildout.toml` file's text; `file` is its id for spans. Reports every syntax
/// and type error it finds.
pub fn parse(text: &str, file: u32) -> Result<Sections, Vec<Diagnostic>> {
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
        sections.insert(sec.to_owned(), section);
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
        )
        .unwrap_err();
        assert_eq!(e.len(), 3);
        assert!(e[0].message.contains("a:when"));
        assert!(e[1].message.contains("b:t"));
        assert!(e[2].message.contains("array of tables"));
        let e = parse("[a\n", 0).unwrap_err();
        assert_eq!(e[0].kind, ErrorKind::Syntax);
    }
}
