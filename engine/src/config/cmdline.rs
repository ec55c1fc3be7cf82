//! Command-line assignments: `[section:]option=value`, `+=` and `-=`; the section defaults
//! to `buildout` and is created when missing.

use super::diag::{Diagnostic, ErrorKind, Files, Span};
use super::model::{Entry, Op, Sections, Source, Value, op_key};

fn bad(
    files: &mut Files,
    arg: &str,
    start: usize,
    end: usize,
    msg: String,
    label: &str,
) -> Diagnostic {
    let id = files.add("<command line>".into(), arg.to_owned());
    Diagnostic::new(ErrorKind::CommandLine, msg)
        .at(Some(Span::new(id, start, end)), label)
        .note("assignments are written SECTION:OPTION=VALUE, OPTION=VALUE (section buildout), or with += / -=")
}

/// Parses every assignment, in order (a later one wins); reports every bad one.
pub fn parse(assignments: &[String], files: &mut Files) -> Result<Sections, Vec<Diagnostic>> {
    let mut out: Sections = Sections::default();
    let mut errors = Vec::new();
    for arg in assignments {
        let Some(eq) = arg.find('=') else {
            errors.push(bad(
                files,
                arg,
                0,
                arg.len(),
                format!("`{arg}` is not an assignment"),
                "expected `=`",
            ));
            continue;
        };
        let (lhs, value) = (&arg[..eq], arg[eq + 1..].trim());
        let (lhs, op) = match lhs.trim_end().chars().last() {
            Some(c @ ('+' | '-')) => (&lhs.trim_end()[..lhs.trim_end().len() - 1], c),
            _ => (lhs, '='),
        };
        let parts: Vec<&str> = lhs.split(':').collect();
        let (sec, opt) = match parts.as_slice() {
            [o] => ("buildout", o.trim()),
            [s, o] => (s.trim(), o.trim()),
            _ => {
                errors.push(bad(
                    files,
                    arg,
                    0,
                    lhs.len(),
                    format!("`{arg}` has too many colons"),
                    "expected SECTION:OPTION",
                ));
                continue;
            }
        };
        // As in zc.buildout, any non-empty name is accepted (a section named with a space can
        // still be referenced as `${my settings:x}`).
        let bad_section = sec.is_empty();
        let bad_option = opt.is_empty();
        if bad_section || bad_option {
            let what = if bad_section { "section" } else { "option" };
            errors.push(bad(
                files,
                arg,
                0,
                lhs.len(),
                format!("`{arg}` has an invalid {what} name"),
                "here",
            ));
            continue;
        }
        let (key, op) = match op {
            '+' => (op_key(opt, '+'), Op::Add),
            '-' => (op_key(opt, '-'), Op::Remove),
            _ => (opt.to_owned(), Op::Set),
        };
        let section = out.entry(sec.to_owned()).or_default();
        if op == Op::Set {
            section.options.shift_remove(&op_key(opt, '+'));
            section.options.shift_remove(&op_key(opt, '-'));
        }
        section.options.insert(
            key,
            Entry::new(Value::Str(value.to_owned()), op, Source::CommandLine),
        );
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_default_to_buildout() {
        let mut files = Files::default();
        let s = parse(
            &["parts=a b".into(), "x:y += 1".into(), "x:z-=2".into()],
            &mut files,
        )
        .unwrap();
        assert_eq!(
            s["buildout"].options["parts"].value,
            Value::Str("a b".into())
        );
        assert_eq!(s["x"].options["y +"].value, Value::Str("1".into()));
        assert_eq!(s["x"].options["z -"].value, Value::Str("2".into()));
        let e = parse(&["a:b:c=1".into(), "novalue".into()], &mut files).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[0].message.contains("too many colons"));
    }
}
