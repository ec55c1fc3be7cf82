//! `rbuildout annotate [SECTION...] [--json]`: every section's resolved values and where each
//! came from; loads no plugin.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use rbuildout::config::{self, Config, LoadOptions, Op, Resolver, Source, Step, Value};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("annotate")
        .about("Show the resolved config and where each value came from")
        .long_about(
            "Show every section of the config, as zc.buildout's annotate does ([buildout], the \
             parts, what they reach, macros and sections nothing reaches), with each option's fully \
             substituted value and its history: built-in default, the file and line that set it, \
             += and -= steps, macros, command-line assignments and recipe outputs. A value that \
             cannot be resolved in a section no run evaluates is shown as written with its error. \
             Loads no plugin, so it works on configs whose recipes do not exist. Outputs recorded \
             in the installed state are shown; other references to outputs not known yet stay as \
             written.",
        )
        .arg(
            Arg::new("sections")
                .value_name("SECTION")
                .num_args(0..)
                .action(ArgAction::Append)
                .help(
                    "Show only these sections (any section, even one nothing references); the \
                     JSON form always shows every section",
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
        overrides: Default::default(),
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

/// An option of a section no run evaluates whose value cannot be substituted (a macro's
/// `${:host}`, a reference to a missing section): its text as written and why.
#[derive(serde::Serialize)]
struct JsonUnresolved<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a Value>,
    error: String,
    origin: Vec<JsonOrigin<'a>>,
}

/// One line saying why a value cannot be resolved: the first diagnostic's message.
fn short_message(e: &config::Error) -> String {
    e.diagnostics()
        .next()
        .map_or_else(|| e.to_string(), |d| d.message.clone())
}

/// A section no run evaluates, resolved option by option so that one bad value is shown
/// with its error instead of hiding the section or failing the command.
struct Unreached<'a> {
    /// `Err` when the section itself cannot be expanded (a macro that does not exist).
    options: Result<Vec<UnreachedOption>, String>,
    raw: &'a [(&'a str, &'a Value)],
}

/// The options of every section as written, indexed by section; built once, at the first
/// section with an unresolvable value.
type RawIndex<'a> = std::cell::OnceCell<HashMap<&'a str, Vec<(&'a str, &'a Value)>>>;

struct UnreachedOption {
    name: String,
    value: Result<Value, String>,
    history: Vec<Step>,
}

impl<'a> Unreached<'a> {
    fn resolve(
        config: &'a Config,
        raw_index: &'a RawIndex<'a>,
        resolver: &mut Resolver,
        name: &str,
    ) -> Unreached<'a> {
        let options: Result<Vec<UnreachedOption>, String> = resolver
            .option_names(name)
            .map_err(|e| short_message(&e))
            .map(|keys| {
                keys.into_iter()
                    .map(|k| UnreachedOption {
                        value: resolver.get(name, &k).map_err(|e| short_message(&e)),
                        history: resolver
                            .history(name, &k)
                            .map(|h| h.to_vec())
                            .unwrap_or_default(),
                        name: k,
                    })
                    .collect()
            });
        // The text as written is looked up only for a section with an unresolvable value.
        let failed = options
            .as_ref()
            .is_ok_and(|o| o.iter().any(|o| o.value.is_err()));
        let raw = if failed {
            raw_index
                .get_or_init(|| {
                    config
                        .raw_sections()
                        .map(|(n, opts)| (n, opts.into_iter().map(|(k, v, _)| (k, v)).collect()))
                        .collect()
                })
                .get(name)
                .map_or(&[][..], Vec::as_slice)
        } else {
            &[][..]
        };
        Unreached { options, raw }
    }

    fn raw(&self, option: &str) -> Option<&'a Value> {
        self.raw.iter().find(|(k, _)| *k == option).map(|(_, v)| *v)
    }
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
    evaluated: &[String],
) -> Result<(), JsonError> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| JsonError::Io(e);
    let js = |e: serde_json::Error| JsonError::Io(std::io::Error::from(e));
    w.write_all(b"{\"parts\":").map_err(io)?;
    serde_json::to_writer(&mut w, parts.order()).map_err(js)?;
    w.write_all(b",\"evaluated\":").map_err(io)?;
    serde_json::to_writer(&mut w, evaluated).map_err(js)?;
    let mut section_errors: Vec<(&str, String)> = Vec::new();
    let raw_index = RawIndex::new();
    w.write_all(b",\"sections\":{").map_err(io)?;
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            w.write_all(b",").map_err(io)?;
        }
        serde_json::to_writer(&mut w, name).map_err(js)?;
        w.write_all(b":{").map_err(io)?;
        if !evaluated.contains(name) {
            let u = Unreached::resolve(config, &raw_index, resolver, name);
            match &u.options {
                Err(e) => section_errors.push((name, e.clone())),
                Ok(opts) => {
                    for (j, o) in opts.iter().enumerate() {
                        if j > 0 {
                            w.write_all(b",").map_err(io)?;
                        }
                        serde_json::to_writer(&mut w, &o.name).map_err(js)?;
                        w.write_all(b":").map_err(io)?;
                        let origin = origin(config, &o.history);
                        match &o.value {
                            Ok(value) => {
                                serde_json::to_writer(&mut w, &JsonOption { value, origin })
                            }
                            Err(error) => serde_json::to_writer(
                                &mut w,
                                &JsonUnresolved {
                                    raw: u.raw(&o.name),
                                    error: error.clone(),
                                    origin,
                                },
                            ),
                        }
                        .map_err(js)?;
                    }
                }
            }
            w.write_all(b"}").map_err(io)?;
            continue;
        }
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
    w.write_all(b"}").map_err(io)?;
    if !section_errors.is_empty() {
        w.write_all(b",\"errors\":{").map_err(io)?;
        for (i, (name, e)) in section_errors.iter().enumerate() {
            if i > 0 {
                w.write_all(b",").map_err(io)?;
            }
            serde_json::to_writer(&mut w, name).map_err(js)?;
            w.write_all(b":").map_err(io)?;
            serde_json::to_writer(&mut w, e).map_err(js)?;
        }
        w.write_all(b"}").map_err(io)?;
    }
    w.write_all(b"}\n").map_err(io)?;
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

/// One option in zc.buildout's layout: `option= value`, continuation lines flush left, then
/// one line per history step.
fn push_option(text: &mut String, config: &Config, k: &str, v: &Value, h: &[Step]) {
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
        if let Some(o) = origin_text(config, s) {
            text.push_str(&o);
            text.push('\n');
        }
    }
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
    let mut evaluated: Vec<String> = parts.evaluated().to_vec();
    if let Ok(Value::Str(v)) = resolver.get("buildout", "versions")
        && config.has_section(&v)
        && !evaluated.contains(&v)
    {
        evaluated.push(v);
    }
    let mut errors: Option<config::Error> = None;
    for c in chosen.iter().filter(|c| !config.has_section(c)) {
        let e = config::Error::plain(
            config::ErrorKind::MissingSection,
            format!("the section [{c}] is not defined"),
        );
        match &mut errors {
            Some(all) => all.extend(e),
            None => errors = Some(e),
        }
    }
    if let Some(e) = errors {
        return Err(config_failure(e));
    }
    // Every section is shown, as zc.buildout's `annotate` does: the JSON form always (contract
    // B); the text form, like zc.buildout's, only the named ones when some are named.
    let mut names: Vec<String> = config.section_names().map(str::to_owned).collect();
    if !chosen.is_empty() && !m.get_flag("json") {
        names.retain(|n| chosen.contains(n));
    }
    names.sort();
    if m.get_flag("json") {
        let written = write_json(&config, &mut resolver, &parts, &names, &evaluated);
        // Freeing a big config takes longer than the OS reclaiming it at exit.
        std::mem::forget(parts);
        std::mem::forget(resolver);
        std::mem::forget(config);
        return written.map_err(|e| match e {
            JsonError::Config(e) => config_failure(e),
            JsonError::Io(e) => Failure::Config(format!("error: cannot write the output: {e}")),
        });
    }
    let raw_index = RawIndex::new();
    let mut text = String::from("\nAnnotated sections\n==================\n");
    for name in &names {
        text.push_str(&format!("\n[{name}]\n"));
        if evaluated.contains(name) {
            let keys = resolver.option_names(name).map_err(config_failure)?;
            for k in keys {
                let v = resolver.get(name, &k).map_err(config_failure)?;
                let h = resolver.history(name, &k).map_err(config_failure)?;
                push_option(&mut text, &config, &k, &v, &h);
            }
            continue;
        }
        let u = Unreached::resolve(&config, &raw_index, &mut resolver, name);
        match &u.options {
            Err(e) => text.push_str(&format!("    (not resolved: {e})\n")),
            Ok(opts) => {
                for o in opts {
                    match &o.value {
                        Ok(v) => push_option(&mut text, &config, &o.name, v, &o.history),
                        Err(e) => {
                            let raw = u.raw(&o.name).cloned().unwrap_or(Value::Str(String::new()));
                            push_option(&mut text, &config, &o.name, &raw, &o.history);
                            text.push_str(&format!("    (not resolved: {e})\n"));
                        }
                    }
                }
            }
        }
    }
    print!("{text}");
    Ok(())
}
