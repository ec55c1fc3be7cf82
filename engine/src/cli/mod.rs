//! The command line: global flags, `section:option=value` assignments, and one module per
//! subcommand, each with a `cli()` that declares it and an `exec()` that calls the library.

// The CLI layer is the one place that writes to the terminal directly.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod annotate;
mod bars;
mod convert;
mod extensions;
mod init;
mod install;
mod output;
mod plan;
mod plugins;
mod query;
mod status;
mod uninstall;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};

/// How a command failed: the exit code says whose fault it was.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or a bad config: exit code 2.
    Config(String),
    /// A part failed while running: exit code 1.
    Part(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) => 2,
            Failure::Part(_) => 1,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Config(m) | Failure::Part(m) => m,
        }
    }
}

/// Options shared by every subcommand, read once from the top-level matches.
#[derive(Debug, Clone)]
pub struct Global {
    /// `-c FILE`; `None` means `buildout.toml`, else `buildout.cfg`, in the working directory.
    pub config: Option<PathBuf>,
    pub verbosity: i8,
    pub offline: bool,
    pub newest: bool,
    pub locked: bool,
    pub no_user_defaults: bool,
    pub jobs: Option<usize>,
    pub lock_timeout: Option<f64>,
    /// `section:option=value`, `+=` and `-=` assignments, in command-line order, unparsed.
    pub assignments: Vec<String>,
}

pub type Outcome = Result<(), Failure>;

fn command() -> Command {
    Command::new("rbuildout")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Assemble a deployment reproducibly from a parts config")
        .long_about(
            "Assemble a deployment reproducibly from a parts config (buildout.toml or a legacy \
             buildout.cfg). Each part names a recipe, loaded as a plugin from a shared library; \
             rbuildout installs, updates and uninstalls parts so the instance matches the config.",
        )
        .subcommand_precedence_over_arg(true)
        .arg(
            Arg::new("config")
                .short('c')
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .global(true)
                .help("The config file [default: buildout.toml, else buildout.cfg]"),
        )
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::Count)
                .global(true)
                .help("Say more; repeat for more detail (plugin logs show at -v)"),
        )
        .arg(
            Arg::new("quiet")
                .short('q')
                .long("quiet")
                .action(ArgAction::Count)
                .global(true)
                .help("Say less; repeat to show errors only"),
        )
        .arg(
            Arg::new("offline")
                .short('o')
                .long("offline")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Never touch the network; fail clearly when something is missing"),
        )
        .arg(
            Arg::new("newest")
                .short('n')
                .long("newest")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Look for newer distributions and re-resolve the lock"),
        )
        .arg(
            Arg::new("locked")
                .long("locked")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Fail when the lock file would change"),
        )
        .arg(
            Arg::new("no-user-defaults")
                .short('U')
                .long("no-user-defaults")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Skip the user defaults (~/.rbuildout/default.toml)"),
        )
        .arg(
            Arg::new("jobs")
                .short('j')
                .long("jobs")
                .value_name("N")
                .value_parser(clap::value_parser!(usize))
                .global(true)
                .help("Parts to run at once [default: buildout:jobs]"),
        )
        .arg(
            Arg::new("lock-timeout")
                .long("lock-timeout")
                .value_name("SECONDS")
                .value_parser(clap::value_parser!(f64))
                .global(true)
                .help("Wait this long for another run on the same instance [default: 0, fail at once]"),
        )
        .arg(
            Arg::new("assignments")
                .value_name("SECTION:OPTION=VALUE")
                .num_args(0..)
                .action(ArgAction::Append)
                .help(
                    "Set an option for this run; `+=` and `-=` add and remove lines. \
                     The section defaults to `buildout` and is created when missing",
                ),
        )
        .subcommand(install::cli())
        .subcommand(plan::cli())
        .subcommand(annotate::cli())
        .subcommand(query::cli())
        .subcommand(init::cli())
        .subcommand(convert::cli())
        .subcommand(plugins::cli())
        .subcommand(status::cli())
        .subcommand(uninstall::cli())
}

fn global(m: &ArgMatches) -> Global {
    Global {
        config: m.get_one::<PathBuf>("config").cloned(),
        verbosity: m.get_count("verbose") as i8 - m.get_count("quiet") as i8,
        offline: m.get_flag("offline"),
        newest: m.get_flag("newest"),
        locked: m.get_flag("locked"),
        no_user_defaults: m.get_flag("no-user-defaults"),
        jobs: m.get_one::<usize>("jobs").copied(),
        lock_timeout: m.get_one::<f64>("lock-timeout").copied(),
        assignments: m
            .get_many::<String>("assignments")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
    }
}

/// Sets up stderr: at the default verbosity and with `-q`, the plain lines of
/// [`output::Lines`] (with the progress bars of [`bars`] under them on a terminal, at the
/// default verbosity); from `-v` on, tracing's own format with spans and fields (and from
/// `-vv` on, each event's target), progress left out.
fn init_logging(verbosity: i8) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = match verbosity {
        i8::MIN..=-2 => tracing::Level::ERROR,
        -1 => tracing::Level::WARN,
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let colour = output::colour();
    // rbuildout's own messages (the engine's, the recipes' through the host, the built-in
    // recipe crates') at the level asked for; the crates they use (the resolver, HTTP, TLS)
    // only warn, unless `-vv` asks for everything.
    let others = if verbosity > 1 {
        level
    } else {
        tracing::Level::WARN
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("rbuildout", level)
        .with_default(others);
    if verbosity <= 0 {
        // Progress bars on a terminal, at the default verbosity (`-q` filters their events
        // out).
        let bars =
            std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| bars::Bars::new(colour));
        let lines = tracing_subscriber::Layer::with_filter(output::Lines { colour, bars }, filter);
        tracing_subscriber::registry().with(lines).init();
        return;
    }
    // Progress reports are for the bars only.
    let filter = filter.with_target(
        rbuildout::plugin::PROGRESS_TARGET,
        tracing_subscriber::filter::LevelFilter::OFF,
    );
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .without_time()
                .with_target(verbosity > 1),
        )
        .with(filter)
        .init();
}

/// Whether a command-line argument is an assignment `[SECTION:]OPTION=VALUE` (or `+=`, `-=`):
/// it does not start with `-` and has an `=` after a non-empty name.
fn is_assignment(arg: &str) -> bool {
    !arg.starts_with('-') && arg.find('=').is_some_and(|eq| eq > 0)
}

/// Whether an option argument takes the next argument as its value (`-c FILE`, `-j N`,
/// `--lock-timeout S`, also at the end of a cluster of short flags such as `-Uc FILE`).
fn takes_value(arg: &str) -> bool {
    match arg.strip_prefix("--") {
        Some(long) => ["config", "jobs", "lock-timeout"].contains(&long),
        None => {
            arg.len() >= 2
                && arg.starts_with('-')
                && !arg.contains('=')
                && arg.ends_with(['c', 'j'])
                && arg[1..].chars().all(|c| c.is_ascii_alphabetic())
        }
    }
}

/// Takes the assignments out of the arguments, wherever they stand (before or after the
/// subcommand, between its arguments), so that `annotate p:v=x` is an assignment and not a
/// section name. An option's value (`-c a=b.cfg`) and everything after `--` stay.
fn split_assignments(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> (Vec<std::ffi::OsString>, Vec<String>) {
    let mut rest = Vec::new();
    let mut assignments = Vec::new();
    let mut value_next = false;
    let mut literal = false;
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_str();
        let was_value = std::mem::replace(&mut value_next, false);
        if i == 0 || literal || was_value {
            rest.push(arg);
            continue;
        }
        match text {
            Some("--") => {
                literal = true;
                rest.push(arg);
            }
            Some(t) if is_assignment(t) => assignments.push(t.to_owned()),
            Some(t) => {
                value_next = takes_value(t);
                rest.push(arg);
            }
            None => rest.push(arg),
        }
    }
    (rest, assignments)
}

pub fn main() -> ExitCode {
    let (args, assignments) = split_assignments(std::env::args_os());
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            // clap prints help and version to stdout with exit 0, usage errors with exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let mut g = global(&matches);
    g.assignments.extend(assignments);
    init_logging(g.verbosity);
    let outcome = match matches.subcommand() {
        Some(("install", m)) => install::exec(&g, m),
        Some(("plan", m)) => plan::exec(&g, m),
        Some(("annotate", m)) => annotate::exec(&g, m),
        Some(("query", m)) => query::exec(&g, m),
        Some(("init", m)) => init::exec(&g, m),
        Some(("convert", m)) => convert::exec(&g, m),
        Some(("plugins", m)) => plugins::exec(&g, m),
        Some(("status", m)) => status::exec(&g, m),
        Some(("uninstall", m)) => uninstall::exec(&g, m),
        _ => install::exec_default(&g),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message());
            ExitCode::from(f.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let (rest, a) = split_assignments(args.iter().map(std::ffi::OsString::from));
        let rest = rest
            .into_iter()
            .map(|s| s.into_string().expect("utf-8"))
            .collect();
        (rest, a)
    }

    #[test]
    fn assignments_are_taken_from_anywhere() {
        let (rest, a) = split(&[
            "rbuildout",
            "x=1",
            "-c",
            "a=b.cfg",
            "annotate",
            "p:v=x",
            "--json",
            "buildout",
            "q:w+=y",
            "-Uc",
            "c=d.cfg",
            "p:l -= z",
        ]);
        assert_eq!(
            rest,
            [
                "rbuildout",
                "-c",
                "a=b.cfg",
                "annotate",
                "--json",
                "buildout",
                "-Uc",
                "c=d.cfg"
            ]
        );
        assert_eq!(a, ["x=1", "p:v=x", "q:w+=y", "p:l -= z"]);
        let (rest, a) = split(&["rbuildout", "--config=a=b", "query", "--", "s:o=v"]);
        assert_eq!(rest, ["rbuildout", "--config=a=b", "query", "--", "s:o=v"]);
        assert!(a.is_empty());
    }
}
