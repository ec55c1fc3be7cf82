//! The `rbuildout` command-line entry point: parse arguments, run one command, map the
//! outcome to an exit code (0 success, 1 a part failed, 2 usage or config error).

mod builtins;
mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
