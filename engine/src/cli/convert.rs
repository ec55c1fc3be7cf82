//! `rbuildout convert`.

use clap::{ArgMatches, Command};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("convert").about("not yet written")
}

pub fn exec(_g: &Global, _m: &ArgMatches) -> Outcome {
    Err(Failure::Config("error: `rbuildout convert` is not written yet".into()))
}
