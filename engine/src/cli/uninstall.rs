//! `rbuildout uninstall PART [--skip-hook]`: uninstall one installed part, optionally without
//! its uninstall hook (the way out of a hook that always fails).

use std::sync::atomic::AtomicBool;

use clap::{Arg, ArgAction, ArgMatches, Command};
use rbuildout::run;

use super::{Global, Outcome};

pub fn cli() -> Command {
    Command::new("uninstall")
        .about("Uninstall one installed part: its uninstall hook, then its paths and its record")
        .arg(
            Arg::new("part")
                .value_name("PART")
                .required(true)
                .help("The installed part (it need not be in the config any more)"),
        )
        .arg(
            Arg::new("skip-hook")
                .long("skip-hook")
                .action(ArgAction::SetTrue)
                .help("Do not run the recipe's uninstall hook (for a hook that always fails)"),
        )
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let part = m
        .get_one::<String>("part")
        .map(String::as_str)
        .unwrap_or_default();
    let settings = super::install::settings(g, Vec::new())?;
    let (config, registry) = super::install::load(g)?;
    // Ctrl-C ends the process the default way: the state file is only ever replaced
    // atomically, so the part stays recorded (paths partly removed) until a later run.
    let cancel = AtomicBool::new(false);
    run::uninstall(
        &config,
        &registry,
        &settings,
        part,
        m.get_flag("skip-hook"),
        &cancel,
    )
    .map_err(super::install::failure)?;
    tracing::info!("uninstalled {part}");
    Ok(())
}
