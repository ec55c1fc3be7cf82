//! `rbuildout convert FILE.cfg`: write a TOML twin of the file and of every local file it
//! extends, keeping the structure (extends, conditional sections, macros, `+=`/`-=`).

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command};
use indexmap::IndexMap;
use toml_edit::{DocumentMut, InlineTable, Item, Key, Table, value};

use rbuildout::config::{self, Value};

use super::annotate::config_failure;
use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("convert")
        .about("Write the TOML twin of a buildout.cfg and of every local file it extends")
        .long_about(
            "Write FILE.toml beside FILE.cfg, and a .toml twin beside every local file it \
             extends (base.cfg -> base.toml), each keeping its own structure: `extends` and \
             `optional-extends` (local .cfg names become their .toml twins, URLs stay URLs), \
             conditional sections (as quoted tables [\"section:condition\"]), macros (`<` \
             becomes `inherits`), `+=`/`-=` (as { append, remove }) and `=>` (as \
             <part-dependencies>). `$$` is written as TOML's `$$$$` escape so values keep their \
             `$$`, and the main file gets `jobs = 1` to keep .cfg's sequential install unless it \
             sets jobs. User defaults are never copied in. An existing .toml is never \
             overwritten without --force. Prints the names of the files written.",
        )
        .arg(
            Arg::new("file")
                .value_name("FILE.cfg")
                .required(true)
                .value_parser(clap::value_parser!(PathBuf))
                .help("The buildout.cfg to convert"),
        )
        .arg(
            Arg::new("force")
                .long("force")
                .action(ArgAction::SetTrue)
                .help("Overwrite existing .toml twins"),
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

fn is_url(s: &str) -> bool {
    s.contains("://")
}

/// The twin of a local `.cfg` name (`base.cfg` -> `base.toml`); other names stay.
fn twin_name(name: &str) -> String {
    match name.strip_suffix(".cfg") {
        Some(stem) if !is_url(name) => format!("{stem}.toml"),
        _ => name.to_owned(),
    }
}

/// The names an `extends`/`optional-extends` value lists (whitespace-separated).
fn names(v: &Value) -> Vec<String> {
    match v {
        Value::Str(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::List(l) => l.clone(),
    }
}

/// One file's TOML twin, and the local `.cfg` files it extends (relative to its folder).
fn convert_one(text: &str, name: &str, main: bool) -> Result<(String, Vec<String>), Failure> {
    let sections = config::cfg_structure(text, name).map_err(config_failure)?;
    let mut doc = DocumentMut::new();
    doc.decor_mut()
        .set_prefix(format!("# Converted from {name} by `rbuildout convert`.\n"));
    let mut extended = Vec::new();
    let mut has_buildout = false;
    for (section, options) in sections {
        let mut table = Table::new();
        let mut modifiers: IndexMap<String, InlineTable> = IndexMap::new();
        let is_buildout = section == "buildout" || section.starts_with("buildout:");
        for (key, v) in &options {
            if key == "<" && !is_buildout {
                let mut a = toml_edit::Array::new();
                for n in v.to_text().lines().map(str::trim).filter(|s| !s.is_empty()) {
                    a.push(n);
                }
                table.insert("inherits", value(a));
                continue;
            }
            if is_buildout && (key == "extends" || key == "optional-extends") {
                let list = names(v);
                extended.extend(list.iter().filter(|n| !is_url(n)).cloned());
                let mut a = toml_edit::Array::new();
                for n in &list {
                    a.push(twin_name(n));
                }
                table.insert(key, value(a));
                continue;
            }
            if let Some(base) = key.strip_suffix(" +") {
                modifiers
                    .entry(base.to_owned())
                    .or_default()
                    .insert("append", toml_value(v));
                continue;
            }
            if let Some(base) = key.strip_suffix(" -") {
                modifiers
                    .entry(base.to_owned())
                    .or_default()
                    .insert("remove", toml_value(v));
                continue;
            }
            table.insert(key, Item::Value(toml_value(v)));
        }
        for (k, t) in modifiers {
            table.insert(&k, Item::Value(toml_edit::Value::InlineTable(t)));
        }
        if section == "buildout" {
            has_buildout = true;
            if main && !table.contains_key("jobs") {
                table.insert("jobs", value(1));
            }
        }
        doc.insert_formatted(&Key::new(section), Item::Table(table));
    }
    if main && !has_buildout {
        let mut t = Table::new();
        t.insert("jobs", value(1));
        doc.insert("buildout", Item::Table(t));
    }
    Ok((doc.to_string(), extended))
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let file = m.get_one::<PathBuf>("file").cloned().unwrap_or_default();
    let force = m.get_flag("force");
    if !g.assignments.is_empty() {
        return Err(Failure::Config(
            "error: convert takes no assignments: they would be lost in the converted files; \
             add them to the .cfg first"
                .into(),
        ));
    }
    // Every file first, then write: nothing is written when one file cannot be converted.
    let mut outputs: Vec<(PathBuf, String)> = Vec::new();
    let mut todo: Vec<(PathBuf, bool)> = vec![(file.clone(), true)];
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some((path, main)) = todo.pop() {
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.contains(&key) {
            tracing::warn!(
                "{} is extended by several files: zc.buildout applies it again at each place, \
                 TOML once, at its first; check the values the files between set over it",
                path.display()
            );
            continue;
        }
        seen.push(key);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::Config(format!("error: cannot read {}: {e}", path.display())))?;
        let (toml, extended) = convert_one(&text, &path.display().to_string(), main)?;
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        for n in extended.iter().rev() {
            let p = dir.join(n);
            // An optional extend that does not exist has no twin to write.
            if p.exists() && n.ends_with(".cfg") {
                todo.push((p, false));
            }
        }
        outputs.push((path.with_extension("toml"), toml));
    }
    if !force {
        let existing: Vec<String> = outputs
            .iter()
            .filter(|(p, _)| p.exists())
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(Failure::Config(format!(
                "error: {} already exist{}; pass --force to overwrite",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            )));
        }
    }
    for (path, text) in &outputs {
        std::fs::write(path, text)
            .map_err(|e| Failure::Config(format!("error: cannot write {}: {e}", path.display())))?;
        println!("{}", path.display());
    }
    Ok(())
}
