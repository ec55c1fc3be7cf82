//! `collective.recipe.template`: zc.buildout's template recipe under its own name, with the
//! options it documents and the text it renders (docs/recipes.md, "collective.recipe.template").
//!
//! The rendering is the Python recipe's on zc.buildout 6: `${name}` without a colon first
//! becomes `${<part>:name}`, then every `${section:option}` is substituted once, values
//! inserted as they are. zc.buildout 6 keeps `$$` in values and templates, so there is no
//! escape: `$${x:y}` renders `$` and the value of `x:y`, `$$HOME` stays `$$HOME`, and any
//! `$` not followed by `{` stays.

use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, files};

/// The recipe `collective.recipe.template` (its entry point `default`).
pub struct Collective;

impl Recipe for Collective {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        Template::read(options, ctx)?.write(ctx)
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        Template::read(options, ctx)?.write(ctx)
    }
}

/// What the options ask for, read and rendered.
struct Template {
    output: PathBuf,
    bytes: Vec<u8>,
    mode: Option<u32>,
    overwrite: bool,
}

/// The text encodings `input-encoding` and `output-encoding` may name.
#[derive(Clone, Copy)]
enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl Template {
    fn read(options: &Options, ctx: &Context) -> Result<Template> {
        let (input, inline, url) = (
            options.get("input"),
            options.get("inline"),
            options.get("url"),
        );
        if input.is_none() && inline.is_none() && url.is_none() {
            return Err(Error::new(
                "no input: set option `input` (a template file, or `inline:` followed by the \
                 text), `inline` (the text itself) or `url`",
            ));
        }
        if options.get("output").is_none() {
            return Err(Error::new("option `output` is required: the file to write"));
        }
        if input.is_some() && (inline.is_some() || url.is_some()) {
            return Err(Error::new(
                "too many input sources: set only one of `input`, `inline` and `url`",
            ));
        }
        let input_encoding = encoding(options, "input-encoding")?;
        let output_encoding = encoding(options, "output-encoding")?;
        let overwrite = options
            .get("overwrite")
            .is_none_or(|v| matches!(v.to_lowercase().as_str(), "y" | "yes" | "1" | "true"));

        // As the Python recipe: `inline` first, then an existing `input` file (whose mode the
        // output copies), then an `input` starting with `inline:`.
        let (source, text, mut mode) = if let Some(inline) = inline {
            ("option `inline`".to_owned(), lstrip(inline), None)
        } else if let Some(input) = input {
            let path = options.get_path("input").unwrap_or_default();
            if path.exists() {
                let (text, mode) = read_input(&path, input_encoding)?;
                (path.display().to_string(), text, Some(mode))
            } else if let Some(text) = input.strip_prefix("inline:") {
                ("option `input`".to_owned(), lstrip(text), None)
            } else {
                return Err(Error::new(format!(
                    "input file {} does not exist: create it, or write the text itself as \
                     `input = inline:` followed by it",
                    path.display()
                )));
            }
        } else {
            return Err(Error::new(
                "option `url` is not supported by the native collective.recipe.template: \
                 download the template in a part before this one (or keep it in the project) \
                 and name it in `input`",
            ));
        };
        let text = render(&text, &source, ctx.part(), |section, option| {
            if section == ctx.part()
                && let Some(value) = options.get(option)
            {
                return Some(value.to_owned());
            }
            ctx.option(section, option)
        })?;
        if let Some(given) = options.get_mode("mode")? {
            mode = Some(given);
        }
        let output = options.get_path("output").unwrap_or_default();
        Ok(Template {
            output,
            bytes: encode(&text, output_encoding)?,
            mode,
            overwrite,
        })
    }

    /// Writes the output (only when its content changes) and registers it, and the folders
    /// it had to create; with `overwrite` false, an existing output is left alone and the
    /// output is never registered, so uninstalling keeps it (as the Python recipe does).
    fn write(&self, ctx: &Context) -> Result<()> {
        if !self.overwrite && self.output.is_file() {
            return Ok(());
        }
        let output = files::check_target(ctx, &self.output)?;
        for dir in missing_folders(&output) {
            std::fs::create_dir(&dir)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
            ctx.register(&dir)?;
        }
        if files::write_if_changed(&output, &self.bytes, self.mode)? {
            ctx.info(&format!("wrote {}", output.display()));
        }
        if self.overwrite {
            ctx.register(&output)?;
        }
        Ok(())
    }
}

/// Python's `str.lstrip()`: Unicode whitespace, and the four separators (`\x1c`..`\x1f`)
/// Python also counts as space.
fn lstrip(text: &str) -> String {
    text.trim_start_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
        .to_owned()
}

/// The folders above `path` that do not exist yet, outermost first.
fn missing_folders(path: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

fn read_input(path: &Path, encoding: Encoding) -> Result<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let read_error =
        |e: std::io::Error| Error::new(format!("cannot read template {}: {e}", path.display()));
    let bytes = std::fs::read(path).map_err(read_error)?;
    let mode = std::fs::metadata(path)
        .map_err(read_error)?
        .permissions()
        .mode()
        & 0o7777;
    let text = match encoding {
        Encoding::Utf8 => String::from_utf8(bytes).map_err(|e| {
            Error::new(format!(
                "template {} is not valid UTF-8 (at byte {}): set `input-encoding` to its \
                 encoding",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?,
        Encoding::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        Encoding::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
            Some(at) => {
                return Err(Error::new(format!(
                    "template {} is not ASCII (byte {at}): set `input-encoding` to its \
                     encoding",
                    path.display()
                )));
            }
            None => bytes.iter().map(|&b| char::from(b)).collect(),
        },
    };
    Ok((text, mode))
}

/// The encoding an option names, by the names Python knows it by; UTF-8 when unset.
fn encoding(options: &Options, name: &str) -> Result<Encoding> {
    let Some(value) = options.get(name) else {
        return Ok(Encoding::Utf8);
    };
    match value
        .trim()
        .to_lowercase()
        .replace(['_', ' '], "-")
        .as_str()
    {
        "utf-8" | "utf8" | "u8" => Ok(Encoding::Utf8),
        "latin-1" | "latin1" | "l1" | "iso-8859-1" | "iso8859-1" | "8859" | "cp819" => {
            Ok(Encoding::Latin1)
        }
        "ascii" | "us-ascii" | "646" => Ok(Encoding::Ascii),
        _ => Err(Error::new(format!(
            "option `{name}`: the encoding `{value}` is not supported natively: use utf-8, \
             latin-1 or ascii"
        ))),
    }
}

fn encode(text: &str, encoding: Encoding) -> Result<Vec<u8>> {
    let limit = match encoding {
        Encoding::Utf8 => return Ok(text.as_bytes().to_vec()),
        Encoding::Latin1 => 0xff,
        Encoding::Ascii => 0x7f,
    };
    text.chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .ok()
                .filter(|b| u32::from(*b) <= limit)
                .ok_or_else(|| {
                    Error::new(format!(
                        "the rendered text has `{c}`, which `output-encoding` cannot encode: \
                         set it to utf-8"
                    ))
                })
        })
        .collect()
}

/// Renders `text` as collective.recipe.template does on zc.buildout 6; `source` names the
/// text in errors, `part` is the part the template belongs to.
pub fn render(
    text: &str,
    source: &str,
    part: &str,
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> Result<String> {
    substitute(&qualify(text, part), source, part, lookup)
}

/// `${name}` → `${part:name}`, as the regular expression `\$\{([^:]+?)\}` finds them: at
/// least one character, up to the first `}` after it, no `:` on the way.
fn qualify(text: &str, part: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find("${") {
        let start = at + found;
        let body = start + 2;
        let content_end = text[body..].chars().next().and_then(|first| {
            if first == ':' {
                return None;
            }
            let after_first = body + first.len_utf8();
            let close = after_first + text[after_first..].find('}')?;
            (!text[after_first..close].contains(':')).then_some(close)
        });
        match content_end {
            Some(close) => {
                out.push_str(&text[copied..start]);
                out.push_str("${");
                out.push_str(part);
                out.push(':');
                out.push_str(&text[body..close]);
                out.push('}');
                copied = close + 1;
                at = close + 1;
            }
            None => at = start + 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// zc.buildout's `Options._sub`: every `${...}` (up to the first `}`) must be
/// `${section:option}` with names of `[-a-zA-Z0-9 ._]` (the section may be empty: this
/// part), and is replaced by the option's value.
fn substitute(
    text: &str,
    source: &str,
    part: &str,
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let reference = &rest[start..=start + len];
        let line = text[..text.len() - rest.len() + start]
            .matches('\n')
            .count()
            + 1;
        let at = |what: String| Error::new(format!("{source}:{line}: {what}"));
        let inner = &reference[2..reference.len() - 1];
        let names: Vec<&str> = inner.split(':').collect();
        let simple = |name: &str| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ' ' | '.' | '_'))
        };
        let (section, option) = match names[..] {
            [section, option] if simple(section) && !option.is_empty() && simple(option) => {
                (section, option)
            }
            [_] => {
                return Err(at(format!(
                    "the substitution `{reference}` has no colon: write `${{section:option}}`"
                )));
            }
            [_, _] => {
                return Err(at(format!(
                    "the substitution `{reference}` has invalid characters: names have only \
                     letters, digits, ` `, `-`, `.` and `_`"
                )));
            }
            _ => {
                return Err(at(format!(
                    "the substitution `{reference}` has too many colons"
                )));
            }
        };
        let section = if section.is_empty() { part } else { section };
        let value = match lookup(section, option) {
            Some(value) => value,
            None if option == "_buildout_section_name_" => part.to_owned(),
            None => {
                return Err(at(format!(
                    "unknown reference `{reference}`: no option `{option}` in section `{section}`"
                )));
            }
        };
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{qualify, render};

    fn lookup(section: &str, option: &str) -> Option<String> {
        match (section, option) {
            ("x", "a") => Some("AX".into()),
            ("t", "a") => Some("TA".into()),
            ("t", "b") => Some("TB".into()),
            ("t", "ref") => Some("${x:a}".into()),
            _ => None,
        }
    }

    #[test]
    fn renders_as_zc_buildout_6_does() {
        // Recorded from collective.recipe.template 3.0.0 on zc.buildout 6.0.1.
        let text = "A=${x:a} B=${a} C=$${x:a} D=$${b} E=$$HOME F=$HOME G=$$ H=${:a}\n";
        assert_eq!(
            render(text, "t.in", "t", lookup).unwrap(),
            "A=AX B=TA C=$AX D=$TB E=$$HOME F=$HOME G=$$ H=TA\n"
        );
        // Values are inserted as they are, not substituted again.
        assert_eq!(render("${ref}", "t.in", "t", lookup).unwrap(), "${x:a}");
        assert_eq!(
            render("${_buildout_section_name_}", "t.in", "t", lookup).unwrap(),
            "t"
        );
        assert_eq!(render("$ {a} ${", "t.in", "t", lookup).unwrap(), "$ {a} ${");
    }

    #[test]
    fn qualifies_as_its_regular_expression() {
        assert_eq!(qualify("${a}${b:c}", "p"), "${p:a}${b:c}");
        assert_eq!(qualify("${}}", "p"), "${p:}}");
        assert_eq!(qualify("${a:b}", "p"), "${a:b}");
        assert_eq!(qualify("${:a}", "p"), "${:a}");
        assert_eq!(qualify("${é}", "p"), "${p:é}");
    }

    #[test]
    fn bad_references_name_the_line() {
        for (text, why) in [
            ("a\n${HOME}", "t.in:2: unknown reference `${t:HOME}`"),
            (
                "${x:y:z}",
                "t.in:1: the substitution `${x:y:z}` has too many colons",
            ),
            (
                "${x:a/b}",
                "t.in:1: the substitution `${x:a/b}` has invalid characters",
            ),
            (
                "${x:nope}",
                "t.in:1: unknown reference `${x:nope}`: no option `nope`",
            ),
        ] {
            let e = render(text, "t.in", "t", lookup).unwrap_err();
            assert!(e.message().starts_with(why), "{text}: {}", e.message());
        }
    }
}
