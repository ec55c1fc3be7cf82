//! `rbuildout plugins [--json]`: every plugin library in the search path, its path, ABI
//! version and recipes, and why a file that is not a usable plugin was refused.

use std::fmt::Write as _;

use clap::{Arg, ArgAction, ArgMatches, Command};
use rbuildout::plugin::{PluginInfo, Registry, SearchPath};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("plugins")
        .about("List every recipe plugin found, its path, ABI version and recipes")
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print one JSON array of plugins on stdout"),
        )
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let plugins = registry(g)?.list();
    if m.get_flag("json") {
        let json = serde_json::to_string_pretty(&plugins)
            .map_err(|e| Failure::Part(format!("error: cannot render the plugin list: {e}")))?;
        println!("{json}");
    } else if plugins.is_empty() {
        eprintln!("no plugins found");
    } else {
        print!("{}", render(&plugins));
    }
    Ok(())
}

/// The registry the config would use; without a config (none in the working directory and
/// no `-c`), the default places only, relative to the working directory.
fn registry(g: &Global) -> Result<Registry, Failure> {
    let cwd = super::annotate::working_directory()?;
    let has_default = cwd.join("buildout.toml").exists() || cwd.join("buildout.cfg").exists();
    if g.config.is_none() && !has_default {
        return Ok(Registry::new(
            SearchPath::new(Vec::new(), cwd).with_builtins(crate::builtins::BUILTINS),
        ));
    }
    let config = super::annotate::load_config_in(g, cwd)?;
    Ok(super::install::registry(&config, Vec::new()))
}

/// One block per plugin: name, version, ABI and path, then one line per recipe with the
/// hooks it implements.
fn render(plugins: &[PluginInfo]) -> String {
    let mut out = String::new();
    for p in plugins {
        let shadowed = if p.shadowed {
            " (shadowed by an earlier one)"
        } else {
            ""
        };
        if let Some(error) = &p.error {
            let _ = writeln!(
                out,
                "{}  {}{shadowed}\n  error: {error}",
                p.name,
                p.path.display()
            );
            continue;
        }
        let built_in = if p.builtin { "built in: " } else { "" };
        let _ = writeln!(
            out,
            "{} {}  abi {}  {built_in}{}{shadowed}",
            p.name,
            p.version.as_deref().unwrap_or("?"),
            p.abi.as_deref().unwrap_or("?"),
            p.path.display()
        );
        for r in &p.recipes {
            let hooks: Vec<&str> = [
                ("install", r.install),
                ("update", r.update),
                ("uninstall", r.uninstall),
                ("prepare", r.prepare),
            ]
            .iter()
            .filter(|(_, has)| *has)
            .map(|(name, _)| *name)
            .collect();
            let _ = writeln!(out, "  {} ({})", r.name, hooks.join(", "));
        }
    }
    out
}
