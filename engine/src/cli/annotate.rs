//! `rbuildout annotate [SECTION...] [--json]`: every evaluated section's resolved values and
//! where each came from; loads no plugin.

use std::io::Write;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use rbuildout::config::{self, Config, LoadOptions, Op, Resolver, Source, Step, Value};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("annotate")
        .about("Show the resolved config and where each value came from")
        .long_about(
            "Show every section rbuildout evaluates ([buildout], the parts, and every section they \
             reach through ${section:option}), with each option's fully substituted value and its \
             history: built-in default, the file and line that set it, += and -= steps, macros, \
             command-line assignments and recipe outputs. Loads no plugin, so it works on configs \
             whose recipes do not exist. Outputs recorded in the installed state are shown; other \
             references to outputs not known yet stay as written.",
        )
        .arg(
            Arg::new("sections")
                .value_name("SECTION")
                .num_args(0..)
                .action(ArgAction::Append)
                .help(
                    "Show only these sections (any section, even one nothing references); with \
                     --json, add them to the evaluated ones",
                ),
        )
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help(
            "Print one JSON object: {\"parts\": [install order], \"sections\": {section: {option: \
             {\"value\": V, \"origin\": [{\"op\", \"file\", \"line\"}, ..]}}}}",
        ))
}

/// The working directory, or the config error every command gives without one.
pub(super) fn working_directory() -> Result<PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|e| Failure::Config(format!("error: cannot read the working directory: {e}")))
}

/// Loads the config the global flags name, from the working directory.
pub(super) fn load_config(g: &Global) -> Result<Config, Failure> {
    load_config_in(g, working_directory()?)
}

/// Loads the config the global flags name, from `cwd`.
pub(super) fn load_config_in(g: &Global, cwd: PathBuf) -> Result<Config, Failure> {
    let opts = LoadOptions {
        file: g.config.clone(),
        cwd,
        user_defaults: !g.no_user_defaults,
        offline: g.offline,
        assignments: g.assignments.clone(),
    };
    config::load(&opts).map_err(config_failure)
}

pub(super) fn config_failure(e: config::Error) -> Failure {
    Failure::Config(e.to_string())
}

/// Layers the outputs recorded in the installed state (if any) on top of the config, as
/// `annotate`, `query` and `plan` show them.
pub(super) fn apply_state_outputs(resolver: &mut Resolver) {
    let installed = match resolver.get("buildout", "installed") {
        Ok(v) => v.to_text(),
        Err(_) => return,
    };
    if installed.is_empty() {
        return;
    }
    let path = PathBuf::from(installed);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    match rbuildout::state::State::parse(&text, &path) {
        Ok(state) => {
            for (part, record) in &state.parts {
                if !resolver.has_section(part) {
                    continue;
                }
                for (k, v) in &record.outputs {
                    resolver.set_output(part, k, Value::Str(v.clone()));
                }
            }
        }
        Err(e) => tracing::warn!("ignoring the installed state: {e}"),
    }
}

#[derive(serde::Serialize)]
struct JsonOrigin<'a> {
    op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
}

#[derive(serde::Serialize)]
struct JsonOption<'a> {
    value: &'a Value,
    origin: Vec<JsonOrigin<'a>>,
}

enum JsonError {
    Config(config::Error),
    Io(std::io::Error),
}

/// Writes contract B's document, streaming each section as it is visited so no value is
/// copied: `{"parts": [...], "sections": {section: {option: {"value", "origin"}}}}`.
fn write_json(
    config: &Config,
    resolver: &mut Resolver,
    parts: &rbuildout::graph::Parts,
    names: &[String],
) -> Result<(), JsonError> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| JsonError::Io(e);
    let js = |e: serde_json::Error| JsonError::Io(std::io::Error::from(e));
    w.write_all(b"{\"parts\":").map_err(io)?;
    serde_json::to_writer(&mut w, parts.order()).map_err(js)?;
    w.write_all(b",\"sections\":{").map_err(io)?;
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            w.write_all(b",").map_err(io)?;
        }
        serde_json::to_writer(&mut w, name).map_err(js)?;
        w.write_all(b":{").map_err(io)?;
        let mut first = true;
        let mut failed: Option<std::io::Error> = None;
        resolver
            .visit_section(name, |k, v, h| {
                if failed.is_some() {
                    return;
                }
                let entry = JsonOption {
                    value: v,
                    origin: origin(config, h),
                };
                let r = (if first { Ok(()) } else { w.write_all(b",") })
                    .and_then(|()| serde_json::to_writer(&mut w, k).map_err(std::io::Error::from))
                    .and_then(|()| w.write_all(b":"))
                    .and_then(|()| {
                        serde_json::to_writer(&mut w, &entry).map_err(std::io::Error::from)
                    });
                first = false;
                if let Err(e) = r {
                    failed = Some(e);
                }
            })
            .map_err(JsonError::Config)?;
        if let Some(e) = failed {
            return Err(JsonError::Io(e));
        }
        w.write_all(b"}").map_err(io)?;
    }
    w.write_all(b"}}\n").map_err(io)?;
    w.flush().map_err(io)
}

fn origin<'a>(config: &'a Config, steps: &[Step]) -> Vec<JsonOrigin<'a>> {
    steps
        .iter()
        .filter(|s| s.source != Source::Implicit)
        .map(|s| {
            let op = match (s.op, s.source) {
                (Op::Add, _) => "append",
                (Op::Remove, _) => "remove",
                (Op::Macro, _) => "macro",
                (Op::Output, _) => "output",
                (Op::Set, Source::Default) => "default",
                (Op::Set, Source::Computed) => "computed",
                (Op::Set, Source::CommandLine) => "command-line",
                (Op::Set, _) => "set",
            };
            let place = match s.source {
                Source::File(span) => config.locate(span),
                _ => None,
            };
            JsonOrigin {
                op,
                file: place.map(|p| p.0),
                line: place.map(|p| p.1),
            }
        })
        .collect()
}

fn origin_text(config: &Config, s: &Step) -> Option<String> {
    let place = match s.source {
        Source::Implicit => return None,
        Source::Default => "(default)".to_owned(),
        Source::Computed if s.op == Op::Output => "(recipe output)".to_owned(),
        Source::Computed => "(computed)".to_owned(),
        Source::CommandLine => "(command line)".to_owned(),
        Source::File(span) => match config.locate(span) {
            Some((f, l)) => format!("{f}:{l}"),
            None => "(command line)".to_owned(),
        },
    };
    let prefix = match s.op {
        Op::Add => "+=  ",
        Op::Remove => "-=  ",
        Op::Macro => "<   ",
        _ => "    ",
    };
    Some(format!("{prefix}{place}"))
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let config = load_config(g)?;
    let chosen: Vec<String> = m
        .get_many::<String>("sections")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let mut resolver = config.resolver();
    resolver.set_lenient(true);
    apply_state_outputs(&mut resolver);
    let parts = rbuildout::graph::parts(&config, &mut resolver).map_err(config_failure)?;
    let mut names: Vec<String> = parts.evaluated().to_vec();
    if let Ok(Value::Str(v)) = resolver.get("buildout", "versions")
        && config.has_section(&v)
        && !names.contains(&v)
    {
        names.push(v);
    }
    let mut errors: Option<config::Error> = None;
    for c in &chosen {
        if !config.has_section(c) {
            let e = config::Error::plain(
                config::ErrorKind::MissingSection,
                format!("the section [{c}] is not defined"),
            );
            match &mut errors {
                Some(all) => all.extend(e),
                None => errors = Some(e),
            }
        } else if !names.contains(c) {
            names.push(c.clone());
        }
    }
    if let Some(e) = errors {
        return Err(config_failure(e));
    }
    // The JSON form shows every evaluated section plus the named ones (contract B); the text
    // form, like zc.buildout's, shows only the named ones when some are named.
    if !chosen.is_empty() && !m.get_flag("json") {
        names.retain(|n| chosen.contains(n));
    }
    names.sort();
    if m.get_flag("json") {
        let written = write_json(&config, &mut resolver, &parts, &names);
        // Freeing a big config takes longer than the OS reclaiming it at exit.
        std::mem::forget(parts);
        std::mem::forget(resolver);
        std::mem::forget(config);
        return written.map_err(|e| match e {
            JsonError::Config(e) => config_failure(e),
            JsonError::Io(e) => Failure::Config(format!("error: cannot write the output: {e}")),
        });
    }
    let mut sections = Vec::with_capacity(names.len());
    for name in &names {
        let keys = resolver.option_names(name).map_err(config_failure)?;
        let mut opts = Vec::with_capacity(keys.len());
        for k in keys {
            let v = resolver.get(name, &k).map_err(config_failure)?;
            let h = resolver.history(name, &k).map_err(config_failure)?;
            opts.push((k, v, h));
        }
        sections.push((name.clone(), opts));
    }
    let mut text = String::from("\nAnnotated sections\n==================\n");
    for (name, opts) in &sections {
        text.push_str(&format!("\n[{name}]\n"));
        for (k, v, h) in opts {
            let lines: Vec<String> = match v {
                Value::Str(s) => s.lines().map(str::to_owned).collect(),
                Value::List(l) => l.clone(),
            };
            match lines.split_first() {
                None => text.push_str(&format!("{k}=\n")),
                Some((first, rest)) => {
                    text.push_str(&format!("{k}= {first}\n"));
                    for l in rest {
                        text.push_str(l);
                        text.push('\n');
                    }
                }
            }
            for s in h {
                if let Some(o) = origin_text(&config, s) {
                    text.push_str(&o);
                    text.push('\n');
                }
            }
        }
    }
    print!("{text}");
    Ok(())
}
