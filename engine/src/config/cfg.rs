//! The legacy `buildout.cfg` INI dialect, read exactly as zc.buildout 6's configparser reads
//! it: `name = value` only, comments in column 0, continuation lines, block values,
//! `+=`/`-=` (accumulating in one file), `=>` part dependencies and `[section:condition]`.

use super::condition::{self, Env};
use super::diag::{Diagnostic, ErrorKind, Span};
use super::model::{Entry, Op, Section, Sections, Source, Value, op_key};

/// Characters a section name may not contain (besides whitespace).
const NAME_FORBIDDEN: &[char] = &['#', '[', ']', ':', ';', '{', '}'];
/// Characters an option name may not contain (besides whitespace).
const OPTION_FORBIDDEN: &[char] = &['{', '}', '[', ']', '=', ':'];

struct Header<'a> {
    name: &'a str,
    expression: Option<&'a str>,
}

/// Matches zc.buildout's `section_header` regex.
fn header(line: &str) -> Option<Header<'_>> {
    let rest = line.strip_prefix('[')?;
    let rest = rest.trim_start();
    let name_len = rest
        .find(|c: char| c.is_whitespace() || NAME_FORBIDDEN.contains(&c))
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let after = rest[name_len..].trim_start();
    let tail_ok = |t: &str| {
        let t = t.trim_start();
        t.is_empty() || t.starts_with('#') || t.starts_with(';')
    };
    if let Some(expr) = after.strip_prefix(':') {
        let cut = expr.find(['#', ';']).unwrap_or(expr.len());
        let seg = expr[..cut].trim_end();
        let inner = seg.strip_suffix(']')?;
        Some(Header {
            name,
            expression: Some(inner).filter(|e| !e.is_empty()),
        })
    } else {
        let t = after.strip_prefix(']')?;
        tail_ok(t).then_some(Header {
            name,
            expression: None,
        })
    }
}

/// Matches zc.buildout's `option_start` regex: the raw option name (with a trailing `+`/`-`
/// for `+=`/`-=`) and the value text after `=`.
fn option_start(line: &str) -> Option<(&str, &str)> {
    let name_len = line
        .find(|c: char| c.is_whitespace() || OPTION_FORBIDDEN.contains(&c))
        .unwrap_or(line.len());
    if name_len == 0 {
        return None;
    }
    let rest = &line[name_len..];
    let ws = rest.len() - rest.trim_start().len();
    let after_ws = &rest[ws..];
    let (op_len, after_op) = match after_ws.chars().next() {
        Some(c @ ('+' | '-')) => (c.len_utf8(), &after_ws[1..]),
        _ => (0, after_ws),
    };
    let value = after_op.strip_prefix('=')?;
    Some((&line[..name_len + ws + op_len], value))
}

fn is_space_start(line: &str) -> bool {
    line.chars().next().is_none_or(char::is_whitespace)
}

/// Python's `textwrap.dedent` followed by removing leading blank lines.
fn dedent(value: &str) -> String {
    let lines: Vec<&str> = value.split('\n').collect();
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let margin = lines
        .iter()
        .filter(|l| !l.trim_matches([' ', '\t']).is_empty())
        .map(|l| &l[..indent(l)])
        .reduce(|a, b| {
            let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            &a[..n]
        })
        .unwrap_or("");
    let out: Vec<&str> = lines
        .iter()
        .map(|l| {
            if l.trim_matches([' ', '\t']).is_empty() {
                ""
            } else {
                l.strip_prefix(margin).unwrap_or(l)
            }
        })
        .collect();
    let joined = out.join("\n");
    // `^(\s*\n)+`: drop whole leading lines that are blank.
    let mut start = 0;
    for (i, c) in joined.char_indices() {
        if c == '\n' {
            start = i + 1;
        } else if !c.is_whitespace() {
            break;
        }
    }
    joined[start..].to_owned()
}

/// Parses one `.cfg` file's text; `file` is its id for spans. All bad lines are reported
/// together, as zc.buildout does.
pub fn parse(text: &str, file: u32, env: &Env) -> Result<Sections, Vec<Diagnostic>> {
    parse_with(text, file, Some(env))
}

/// Parses one `.cfg` file's text without evaluating its conditions, for `convert`: a
/// `[section:condition]` is kept as its own section named `section:condition` (the
/// condition un-escaped), the spelling of a conditional table in TOML.
pub fn parse_structure(text: &str, file: u32) -> Result<Sections, Vec<Diagnostic>> {
    parse_with(text, file, None)
}

fn parse_with(text: &str, file: u32, env: Option<&Env>) -> Result<Sections, Vec<Diagnostic>> {
    let mut sections: Sections = Sections::default();
    let mut errors = Vec::new();
    let mut condition = true;
    // The current section and option, as indices into `sections` and its options.
    let mut cursect: Option<usize> = None;
    // Sections holding a pending `+=`/`-=`, which a later `=` of the same option discards.
    let mut pending: Vec<bool> = Vec::new();
    let mut optname: Option<usize> = None;
    let mut blockmode = false;
    let mut offset = 0usize;
    for raw_line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches('\n').trim_end_matches('\r');
        let span_of = |s: usize, len: usize| Span::new(file, line_start + s, line_start + s + len);
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if is_space_start(line) && cursect.is_some() && optname.is_some() {
            if !condition {
                continue;
            }
            let piece = if blockmode {
                line.trim_end()
            } else {
                line.trim()
            };
            if !blockmode && piece.is_empty() {
                continue;
            }
            if let (Some(s), Some(o)) = (cursect, optname)
                && let Some((_, e)) = sections
                    .get_index_mut(s)
                    .and_then(|(_, s)| s.options.get_index_mut(o))
            {
                if let Value::Str(v) = &mut e.value {
                    v.push('\n');
                    v.push_str(piece);
                }
                extend_span(e, line_start + line.len());
            }
            continue;
        }
        if let Some(h) = header(line) {
            condition = true;
            let kept;
            let mut name = h.name;
            if let (Some(expr), None) = (h.expression, env) {
                kept = format!(
                    "{}:{}",
                    h.name,
                    expr.trim().replace(r"\x23", "#").replace(r"\x3b", ";")
                );
                name = kept.as_str();
            } else if let (Some(expr), Some(env)) = (h.expression, env) {
                let expr = expr.replace(r"\x23", "#").replace(r"\x3b", ";");
                match condition::evaluate(&expr, env) {
                    Ok(v) => condition = v,
                    Err(why) => {
                        errors.push(
                            Diagnostic::new(
                                ErrorKind::Condition,
                                format!("cannot evaluate the condition of section [{}]: {why}", h.name),
                            )
                            .at(Some(span_of(0, line.len())), "in this section header")
                            .note("conditions may use PEP 508 markers or linux, windows, macosx, posix, python3, pythonXY, bits64, sys.platform, os.name, platform.system()"),
                        );
                        condition = false;
                    }
                }
                if !condition {
                    continue;
                }
            }
            let idx = match sections.get_index_of(name) {
                Some(i) => i,
                None => {
                    sections.insert(name.to_owned(), Section::default());
                    pending.push(false);
                    sections.len() - 1
                }
            };
            let section = &mut sections[idx];
            if section.header.is_none() {
                section.header = Some(span_of(0, line.len()));
            }
            cursect = Some(idx);
            optname = None;
            continue;
        }
        let Some(sect) = cursect else {
            if line.trim().is_empty() {
                continue;
            }
            errors.push(
                Diagnostic::new(ErrorKind::Syntax, "option outside any section").at(
                    Some(span_of(0, line.len())),
                    "this line comes before the first [section] header",
                ),
            );
            return Err(errors);
        };
        let rewritten;
        let line_for_match = match line.strip_prefix("=>") {
            Some(rest) => {
                rewritten = format!("<part-dependencies> ={rest}");
                rewritten.as_str()
            }
            None => line,
        };
        if let Some((name, value)) = option_start(line_for_match) {
            if !condition {
                continue;
            }
            let name = name.trim_end();
            let (key, op) = match name.chars().last() {
                Some(c @ ('+' | '-')) => (op_key(name[..name.len() - 1].trim_end(), c), c),
                _ => (name.to_owned(), '='),
            };
            let value = value.trim();
            let span = span_of(0, line.len());
            let section = &mut sections[sect];
            let existing = section.options.get_full_mut(&key);
            match existing {
                Some((i, _, e)) if op != '=' => {
                    if let Value::Str(v) = &mut e.value {
                        let trimmed = v.trim_end().len();
                        v.truncate(trimmed);
                        if !value.is_empty() {
                            v.push('\n');
                            v.push_str(value);
                        }
                    }
                    e.history.push(step(op, span));
                    optname = Some(i);
                }
                _ => {
                    if op == '=' && pending[sect] {
                        section.options.shift_remove(&op_key(&key, '+'));
                        section.options.shift_remove(&op_key(&key, '-'));
                    } else if op != '=' {
                        pending[sect] = true;
                    }
                    let mut e =
                        Entry::new(Value::Str(value.to_owned()), Op::Set, Source::File(span));
                    e.history[0] = step(op, span);
                    optname = Some(section.options.insert_full(key, e).0);
                }
            }
            blockmode = value.is_empty();
        } else if optname.is_none() && line.trim().is_empty() {
            continue;
        } else {
            errors.push(
                Diagnostic::new(
                    ErrorKind::Syntax,
                    format!(
                        "cannot parse this line of section [{}]",
                        sections.get_index(sect).map_or("", |(n, _)| n.as_str())
                    ),
                )
                    .at(Some(span_of(0, line.len())), "expected `name = value`, a [section] header, or an indented continuation line")
                    .note("options are written `name = value` (zc.buildout does not accept `name: value`)"),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for section in sections.values_mut() {
        for e in section.options.values_mut() {
            if let Value::Str(v) = &mut e.value
                && v.starts_with(char::is_whitespace)
            {
                *v = dedent(v.trim_end());
            }
        }
    }
    Ok(sections)
}

fn step(op: char, span: Span) -> super::model::Step {
    super::model::Step {
        op: match op {
            '+' => Op::Add,
            '-' => Op::Remove,
            _ => Op::Set,
        },
        source: Source::File(span),
    }
}

fn extend_span(e: &mut Entry, end: usize) {
    if let Some(last) = e.history.last_mut()
        && let Source::File(sp) = &mut last.source
    {
        sp.end = end as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Sections {
        parse(text, 0, &Env::default()).expect("parses")
    }

    fn v(s: &Sections, sec: &str, opt: &str) -> String {
        s[sec].options[opt].value.to_text()
    }

    #[test]
    fn continuation_and_block_values() {
        let s = parse_ok(
            "[a] # comment\nx = 1\n  2\n\n   3\ny =\n    one\n\n      two\n    three\n#c\nz = a # not a comment\n",
        );
        assert_eq!(v(&s, "a", "x"), "1\n2\n3");
        assert_eq!(v(&s, "a", "y"), "one\n\n  two\nthree");
        assert_eq!(v(&s, "a", "z"), "a # not a comment");
    }

    #[test]
    fn increments_in_one_file() {
        let s = parse_ok("[a]\nx += 1\nx += 2\ny+=3\nw = 0\nw -= 0\nw = 5\n=> p q\n");
        assert_eq!(v(&s, "a", "x +"), "1\n2");
        assert_eq!(v(&s, "a", "y +"), "3");
        assert_eq!(v(&s, "a", "w"), "5");
        assert!(!s["a"].options.contains_key("w -"));
        assert_eq!(v(&s, "a", "<part-dependencies>"), "p q");
    }

    #[test]
    fn errors_collect_every_bad_line() {
        let e = parse("[a]\nx: 1\ny = 2\nbad line\n", 0, &Env::default()).unwrap_err();
        assert_eq!(e.len(), 2);
        let e = parse("x = 1\n", 0, &Env::default()).unwrap_err();
        assert_eq!(e[0].kind, ErrorKind::Syntax);
    }

    #[test]
    fn conditional_sections() {
        let s =
            parse_ok("[a]\nx = 1\n[a:windows]\nx = 2\n[a:posix]\ny = 3\n[b: not posix ]\nz = 1\n");
        assert_eq!(v(&s, "a", "x"), if cfg!(windows) { "2" } else { "1" });
        assert!(!s.contains_key("b") || cfg!(windows));
    }
}
