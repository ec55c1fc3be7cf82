//! `rbuildout convert FILE.cfg`: print the equivalent `buildout.toml`.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Command};
use indexmap::IndexMap;
use toml_edit::{DocumentMut, InlineTable, Item, Table, value};

use rbuildout::config::{self, LoadOptions, Source, Step, Value};

use super::annotate::config_failure;
use super::{Global, Outcome};

pub fn cli() -> Command {
    Command::new("convert")
        .about("Print the TOML equivalent of a buildout.cfg")
        .long_about(
            "Read a zc.buildout config (with its extends, conditional sections for this machine, \
             macros, += and -=) and print one self-contained buildout.toml that resolves to the \
             same values: extended files are merged in, `<` becomes `inherits`, pending +=/-= of \
             sections using macros become { append, remove }, and `$$` is written as TOML's `$$$$` \
             escape so values keep their `$$`. `jobs = 1` keeps .cfg's sequential install unless \
             the file sets jobs. User defaults are merged in too; pass -U to leave them out. \
             Save the output beside the .cfg so relative paths keep their meaning.",
        )
        .arg(
            Arg::new("file")
                .value_name("FILE.cfg")
                .required(true)
                .value_parser(clap::value_parser!(PathBuf))
                .help("The buildout.cfg to convert"),
        )
}

/// A `.cfg` string as the TOML text that resolves to it: `$$` doubled, since TOML reads
/// `$$` as an escaped `$`.
fn toml_str(s: &str) -> String {
    s.replace("$$", "$$$$")
}

fn toml_value(v: &Value) -> toml_edit::Value {
    match v {
        Value::Str(s) => toml_edit::Value::from(toml_str(s)),
        Value::List(l) => {
            let mut a = toml_edit::Array::new();
            for e in l {
                a.push(toml_str(e));
            }
            toml_edit::Value::Array(a)
        }
    }
}

fn from_file(h: &[Step]) -> bool {
    h.iter()
        .any(|s| matches!(s.source, Source::File(_) | Source::CommandLine))
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let file = m.get_one::<PathBuf>("file").cloned().unwrap_or_default();
    let cwd = super::annotate::working_directory()?;
    let config = config::load(&LoadOptions {
        file: Some(file.clone()),
        cwd,
        user_defaults: !g.no_user_defaults,
        offline: g.offline,
        assignments: g.assignments.clone(),
    })
    .map_err(config_failure)?;
    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!(
        "# Converted from {} by `rbuildout convert`: extends, conditional sections and\n# user defaults are merged into this one file.\n",
        file.display()
    ));
    for (name, options) in config.raw_sections() {
        let mut table = Table::new();
        let mut modifiers: IndexMap<&str, InlineTable> = IndexMap::new();
        for (key, v, h) in options {
            if !from_file(h) {
                continue;
            }
            if key == "<" && name != "buildout" {
                let names: Vec<String> = match v {
                    Value::Str(s) => s
                        .lines()
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    Value::List(l) => l.clone(),
                };
                let mut a = toml_edit::Array::new();
                for n in names {
                    a.push(n);
                }
                table.insert("inherits", value(a));
                continue;
            }
            if let Some(base) = key.strip_suffix(" +") {
                modifiers
                    .entry(base)
                    .or_default()
                    .insert("append", toml_value(v));
                continue;
            }
            if let Some(base) = key.strip_suffix(" -") {
                modifiers
                    .entry(base)
                    .or_default()
                    .insert("remove", toml_value(v));
                continue;
            }
            table.insert(key, Item::Value(toml_value(v)));
        }
        for (k, t) in modifiers {
            table.insert(k, Item::Value(toml_edit::Value::InlineTable(t)));
        }
        if name == "buildout" && !table.contains_key("jobs") {
            table.insert("jobs", value(1));
        }
        doc.insert(name, Item::Table(table));
    }
    print!("{doc}");
    Ok(())
}
