//! `rbuildout install [PART...]`, also what runs when no command is given: bring the
//! instance to the config's state, or with `--dry-run` show what that would do.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Arg, ArgAction, ArgMatches, Command};
use rbuildout::config::Config;
use rbuildout::plugin::{self, Registry, SearchPath};
use rbuildout::run::plan::Action;
use rbuildout::run::{self, RunError, Settings, Summary};
use rbuildout_plugin_api::develop::PROJECT_FILES;
use rbuildout_plugin_api::host::signals::{self, CANCEL, STOP};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("install")
        .about("Bring the instance to the config's state (the default command)")
        .arg(
            Arg::new("parts")
                .value_name("PART")
                .num_args(0..)
                .help("Handle only these parts: no dependencies, nothing uninstalled"),
        )
        .arg(
            Arg::new("dry-run")
                .long("dry-run")
                .action(ArgAction::SetTrue)
                .help("Print what would be uninstalled, installed or updated, touching nothing"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .conflicts_with("dry-run")
                .help("Print a JSON summary of the run on stdout (docs/output.md)"),
        )
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let only: Vec<String> = m
        .get_many::<String>("parts")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    if m.get_flag("dry-run") {
        return super::plan::show(g, only);
    }
    install(g, only, m.get_flag("json"))
}

pub fn exec_default(g: &Global) -> Outcome {
    install(g, Vec::new(), false)
}

fn install(g: &Global, only: Vec<String>, json: bool) -> Outcome {
    let started = Instant::now();
    let settings = settings(g, only)?;
    // The extensions may change the config before the parts are computed.
    let (config, extensions) = super::extensions::load(g, super::annotate::load_config(g)?)?;
    let (config, registry) = with_registry(config, g)?;
    // Ctrl-C and SIGTERM stop the run between parts, not in the middle of one.
    signals::catch_interrupts();
    let summary = run::install(&config, &registry, &settings, &CANCEL).map_err(failure)?;
    super::extensions::unload(g, &config, extensions)?;
    let count = |action: Action| summary.parts.iter().filter(|p| p.action == action).count();
    tracing::info!(
        action = "finished",
        "{} installed, {} reinstalled, {} updated, {} uninstalled, {} unchanged in {:.2}s",
        count(Action::Install),
        count(Action::Reinstall),
        count(Action::Update),
        count(Action::Uninstall),
        count(Action::Keep),
        started.elapsed().as_secs_f64()
    );
    if json {
        println!("{}", report(&summary));
    }
    Ok(())
}

/// The name `install --json` and `status` give an action (docs/output.md).
pub(super) fn action_name(action: Action) -> &'static str {
    match action {
        Action::Install => "install",
        Action::Reinstall => "reinstall",
        Action::Update => "update",
        Action::Keep => "unchanged",
        Action::Uninstall => "uninstall",
    }
}

/// The JSON summary of a finished run (schema in docs/output.md).
fn report(summary: &Summary) -> serde_json::Value {
    let parts: Vec<serde_json::Value> = summary
        .parts
        .iter()
        .map(|p| {
            serde_json::json!({
                "part": p.part,
                "action": action_name(p.action),
                "reason": p.reason.to_string(),
                "changed": p.changed,
            })
        })
        .collect();
    serde_json::json!({
        "version": 1,
        "changed": summary.changed(),
        "state_written": summary.state_written,
        "parts": parts,
    })
}

/// The run's settings from the global flags.
pub(super) fn settings(g: &Global, only: Vec<String>) -> Result<Settings, Failure> {
    let seconds = g.lock_timeout.unwrap_or(0.0);
    let lock_timeout = Duration::try_from_secs_f64(seconds).map_err(|_| {
        Failure::Config(format!(
            "error: --lock-timeout must be a number of seconds, not {seconds}"
        ))
    })?;
    Ok(Settings {
        only,
        jobs: g.jobs,
        lock_timeout,
        offline: g.offline,
        newest: g.newest,
        locked: g.locked,
        user_defaults: !g.no_user_defaults,
        stop: Some(&STOP),
        nesting: Vec::new(),
    })
}

/// Loads the config and makes the plugin registry it asks for; its extensions do not run
/// (they run with `install`), which a warning says.
pub(super) fn load(g: &Global) -> Result<(Config, Registry), Failure> {
    let config = super::annotate::load_config(g)?;
    super::extensions::not_run(&config);
    with_registry(config, g)
}

/// Builds the config's develop recipes and makes the plugin registry it asks for.
fn with_registry(config: Config, g: &Global) -> Result<(Config, Registry), Failure> {
    let developed = develop(&config, g.offline)?;
    let registry = registry(&config, developed);
    Ok((config, registry))
}

/// Builds the `buildout:develop-recipes` recipe crates (relative to the buildout directory)
/// with cargo, returning the folders of their libraries: the recipe author's edit-run loop.
/// Before that, checks `buildout:develop`: an entry that matches nothing is a warning, a
/// folder that is no Python project a config error (the egg recipe builds the rest,
/// docs/develop.md).
fn develop(config: &Config, offline: bool) -> Result<Vec<PathBuf>, Failure> {
    let b = config.buildout();
    for entry in &b.develop_unmatched {
        tracing::warn!("couldn't develop `{entry}` (buildout:develop): it matches nothing");
    }
    for folder in &b.develop {
        let project = PROJECT_FILES.iter().any(|f| folder.join(f).is_file());
        if !project {
            return Err(Failure::Config(format!(
                "error: buildout:develop: {} is not a Python project: it has none of {}",
                folder.display(),
                PROJECT_FILES.join(", ")
            )));
        }
    }
    b.develop_recipes
        .iter()
        .map(|dir| {
            tracing::info!("building recipe crate {}", dir.display());
            plugin::develop(dir, offline).map_err(|e| Failure::Part(format!("error: {e}")))
        })
        .collect()
}

/// The registry searching the `developed` folders, then `buildout:plugin-path` (relative to
/// the buildout directory), then the default places.
pub(super) fn registry(config: &Config, developed: Vec<PathBuf>) -> Registry {
    let mut dirs = developed;
    dirs.extend(config.buildout().plugin_path.iter().cloned());
    let registry = Registry::new(
        SearchPath::new(dirs, config.directory().to_path_buf())
            .with_builtins(crate::builtins::BUILTINS),
    );
    // A zc.buildout config's recipes are all Python distributions' (docs/python-recipes.md).
    if config.format() == rbuildout::config::Format::Cfg {
        registry.with_plain_python_names()
    } else {
        registry
    }
}

/// A run's error as the command line reports it: exit 2 for the config's fault, else 1.
pub(super) fn failure(e: RunError) -> Failure {
    if let RunError::Config(e) = e {
        // A config error renders itself in full, `error:` and snippet included.
        return Failure::Config(e.to_string());
    }
    if e.is_config() {
        Failure::Config(format!("error: {e}"))
    } else {
        Failure::Part(format!("error: {e}"))
    }
}
