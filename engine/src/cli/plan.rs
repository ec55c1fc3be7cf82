//! `rbuildout plan`.

use clap::{ArgMatches, Command};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("plan").about("not yet written")
}

pub fn exec(_g: &Global, _m: &ArgMatches) -> Outcome {
    Err(Failure::Config("error: `rbuildout plan` is not written yet".into()))
}
