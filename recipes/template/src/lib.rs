//! `template`: writes a file from a template (SPEC §5.5); the plugin also provides
//! `collective.recipe.template` ([`collective`], SPEC §5.7).
//!
//! ```toml
//! [app-conf]
//! recipe = "template"
//! input = "templates/app.conf.in"   # relative to the buildout directory; or:
//! # inline = "port = ${web:port}"   # text, substituted by the engine like any option
//! output = "etc/app.conf"           # relative to the buildout directory
//! mode = "0640"                     # optional, octal
//! ```
//!
//! In the text of `input`, `${section:option}` (any resolved option or output of any section),
//! `${:option}` (an option of this part) and `$$` (a literal `$`) are substituted as the
//! engine substitutes option values; a reference that does not resolve fails the part,
//! naming the file, the line and the reference. The output is written atomically (a temp
//! file renamed over it) and only when its content changes, and registered, so uninstalling
//! the part removes it. The output must lie inside the buildout directory (or a folder of
//! `[buildout] allow-outside`), and a file already there that the part did not write in an
//! earlier run is never replaced: the part fails instead. `update` renders again on every
//! run: the engine cannot know that the input file, or an option it reaches only through the
//! file, changed.

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin, files};

pub mod collective;

pub struct Template;

impl Recipe for Template {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        render_and_write(options, ctx)
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        render_and_write(options, ctx)
    }
}

fn render_and_write(options: &Options, ctx: &Context) -> Result<()> {
    let output = options
        .get_path("output")
        .filter(|_| options.get("output").is_some_and(|o| !o.trim().is_empty()))
        .ok_or_else(|| Error::new("option `output` is required: the file to write"))?;
    let mode = options.get_mode("mode")?;
    let text = match (options.get("input"), options.get("inline")) {
        (Some(_), Some(_)) => {
            return Err(Error::new(
                "options `input` and `inline` exclude each other: set one",
            ));
        }
        (None, None) => {
            return Err(Error::new(
                "set option `input` (a template file) or `inline` (the text itself)",
            ));
        }
        (None, Some(inline)) => inline.to_owned(),
        (Some(_), None) => {
            let input = options.get_path("input").unwrap_or_default();
            let source = std::fs::read_to_string(&input).map_err(|e| {
                Error::new(format!("cannot read template {}: {e}", input.display()))
            })?;
            substitute(&source, &input.display().to_string(), |section, option| {
                if (section.is_empty() || section == ctx.part())
                    && let Some(value) = options.get(option)
                {
                    return Some(value.to_owned());
                }
                let section = if section.is_empty() {
                    ctx.part()
                } else {
                    section
                };
                ctx.option(section, option)
            })?
        }
    };
    // Inside the instance (or an allowed folder), and never over a file of someone else
    // (the same text is no loss: what a run killed before the state was saved left).
    let output = files::check_target_write(ctx, &output, text.as_bytes())?;
    if files::write_if_changed(&output, text.as_bytes(), mode)? {
        ctx.info(&format!("wrote {}", output.display()));
    }
    ctx.register(&output)
}

/// Substitutes `${section:option}`, `${:option}` and `$$` in `text`; `source` names the text
/// in errors (`file:line: ...`). Any other `$` stays as it is.
pub fn substitute(
    text: &str,
    source: &str,
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if tail.starts_with("${") {
            let line = text[..text.len() - tail.len()].matches('\n').count() + 1;
            let Some(end) = tail.find('}') else {
                return Err(malformed(source, line, first_line(tail)));
            };
            let reference = &tail[..=end];
            let Some((section, option)) = reference[2..end].split_once(':') else {
                return Err(malformed(source, line, reference));
            };
            if !valid_name(section, true) || !valid_name(option, false) {
                return Err(malformed(source, line, reference));
            }
            let value = lookup(section, option).ok_or_else(|| {
                Error::new(format!(
                    "{source}:{line}: unknown reference `{reference}`: no option `{option}` in section `{}`",
                    if section.is_empty() { "(this part)" } else { section }
                ))
            })?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Names match `[-a-zA-Z0-9 ._]` as in the engine (SPEC §2.3); a section may be empty.
fn valid_name(name: &str, may_be_empty: bool) -> bool {
    (may_be_empty || !name.is_empty())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ' ' | '.' | '_'))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn malformed(source: &str, line: usize, reference: &str) -> Error {
    Error::new(format!(
        "{source}:{line}: malformed reference `{}`: write `${{section:option}}`, `${{:option}}`, or `$$` for a literal `$`",
        first_line(reference)
    ))
}

export_plugin! {
    name: "template",
    version: env!("CARGO_PKG_VERSION"),
    recipes: {
        "default" => Template,
        // zc.buildout's recipe of the same job, under its distribution's name (docs/plugins.md).
        "collective.recipe.template:default" => collective::Collective,
    },
}

#[cfg(test)]
mod tests {
    use super::substitute;

    fn lookup(section: &str, option: &str) -> Option<String> {
        match (section, option) {
            ("db", "port") => Some("5432".into()),
            ("", "name") => Some("web".into()),
            _ => None,
        }
    }

    #[test]
    fn references_and_dollars() {
        let text = "port=${db:port} name=${:name} cost=$$5 raw=$HOME $${x:y} end$";
        assert_eq!(
            substitute(text, "t.in", lookup).unwrap(),
            "port=5432 name=web cost=$5 raw=$HOME ${x:y} end$"
        );
    }

    #[test]
    fn errors_name_the_file_line_and_reference() {
        let e = substitute("a\nb\nx=${db:host}\n", "t.in", lookup).unwrap_err();
        assert_eq!(
            e.message(),
            "t.in:3: unknown reference `${db:host}`: no option `host` in section `db`"
        );
        for bad in ["${nocolon}", "${a:b", "${a:b/c}", "${a:}"] {
            let e = substitute(bad, "t.in", lookup).unwrap_err();
            assert!(
                e.message().starts_with("t.in:1: malformed reference"),
                "{}",
                e.message()
            );
        }
    }
}
