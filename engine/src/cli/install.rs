//! `rbuildout install [PART...]`, also what runs when no command is given.

use clap::{ArgMatches, Command};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("install").about("not yet written")
}

pub fn exec(g: &Global, _m: &ArgMatches) -> Outcome {
    exec_default(g)
}

pub fn exec_default(_g: &Global) -> Outcome {
    Err(Failure::Config("error: `rbuildout install` is not written yet".into()))
}
