//! `rbuildout plan [PART...]` (and `install --dry-run`): what a run would uninstall,
//! install, update or leave, and why, touching nothing.

use clap::{Arg, ArgMatches, Command};
use rbuildout::run;

use super::{Global, Outcome};

pub fn cli() -> Command {
    Command::new("plan")
        .about("Show what install would uninstall, install, update or leave, and why")
        .arg(
            Arg::new("parts")
                .value_name("PART")
                .num_args(0..)
                .help("Plan only these parts, as `install PART...` would run them"),
        )
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let only = m
        .get_many::<String>("parts")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    show(g, only)
}

/// Prints the plan on stdout, one line per part: the action, the part, and why.
pub(super) fn show(g: &Global, only: Vec<String>) -> Outcome {
    let settings = super::install::settings(g, only)?;
    let (config, registry) = super::install::load(g)?;
    let plan = run::plan(&config, &registry, &settings).map_err(super::install::failure)?;
    print!("{plan}");
    Ok(())
}
