//! `rbuildout init`: write a starter `buildout.toml`, never over an existing file.

use std::io::Write;
use std::path::PathBuf;

use clap::{ArgMatches, Command};

use super::{Failure, Global, Outcome};

/// The starter config: valid as written, with the common options shown commented out.
const STARTER: &str = r#"# rbuildout config: every table is a section, every key an option.
# Values are strings or arrays of strings; ${section:option} substitutes another value.

[buildout]
# The parts to install, in order; sections they reference are added before them.
parts = []
# extends = ["base.toml"]
# eggs-directory = "~/.cache/rbuildout/eggs"

# An example part: `recipe` names the plugin that installs it.
# [app]
# recipe = "egg"
# eggs = ["requests"]
#
# [app-scripts]
# recipe = "scripts"
# paths = ["${app:paths}"]
"#;

pub fn cli() -> Command {
    Command::new("init")
        .about("Write a starter buildout.toml")
        .long_about(
            "Write a starter buildout.toml in the working directory (or the file -c names), with \
             an empty parts list and a commented example part. Refuses to overwrite an existing \
             file.",
        )
}

pub fn exec(g: &Global, _m: &ArgMatches) -> Outcome {
    let path = g
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("buildout.toml"));
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::Config(format!(
                "error: {} already exists; rbuildout init never overwrites a config",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Failure::Config(format!(
                "error: cannot create {}: {e}",
                path.display()
            )));
        }
    };
    file.write_all(STARTER.as_bytes())
        .map_err(|e| Failure::Config(format!("error: cannot write {}: {e}", path.display())))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
