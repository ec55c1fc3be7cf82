//! `command` and `plone.recipe.command`: run shell commands when a part is installed or
//! updated (SPEC §5.7; options in docs/recipes.md).
//!
//! ```ini
//! [setup-db]
//! recipe = plone.recipe.command
//! command = ./scripts/create-db var/db
//! update-command = ./scripts/migrate var/db
//! location = var/db
//! stop-on-error = yes
//! ```
//!
//! As the Python recipe does: `command` runs on install and `update-command` (when set) on
//! update, each with `sh -c` in the buildout directory. Their exit code is ignored unless
//! `stop-on-error` is `yes`/`on`/`true` (`no`/`off`/`false` or unset: ignored; anything else
//! is an error). The paths of `location` (separated by whitespace, relative to the buildout
//! directory) are registered once the command ran, so uninstalling the part removes them.
//! The commands' standard output goes to rbuildout's standard error: rbuildout keeps its
//! standard output for data. Each command runs in its own process group, so the first Ctrl-C
//! lets it finish like any running part, and a second one (the run cancelled) kills the
//! group.

use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};

pub struct Command;

impl Recipe for Command {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let stop_on_error = stop_on_error(options)?;
        let command = options
            .get("command")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::new("option `command` is required: the shell command to run"))?;
        ctx.info(&format!("running '{command}'"));
        run(command, "command", stop_on_error, ctx)?;
        for location in options.get("location").unwrap_or("").split_whitespace() {
            let path = ctx.buildout_directory().join(location);
            if path.symlink_metadata().is_ok() {
                ctx.register(Path::new(location))?;
            } else {
                ctx.warn(&format!(
                    "location {} does not exist after the command ran: not registered",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        let stop_on_error = stop_on_error(options)?;
        if let Some(command) = options.get("update-command") {
            ctx.info(&format!("running '{command}'"));
            run(command, "update-command", stop_on_error, ctx)?;
        }
        Ok(())
    }
}

/// `stop-on-error`, read as the Python recipe reads it.
fn stop_on_error(options: &Options) -> Result<bool> {
    let Some(value) = options.get("stop-on-error") else {
        return Ok(false);
    };
    match value.to_lowercase().as_str() {
        "no" | "off" | "false" => Ok(false),
        "yes" | "on" | "true" => Ok(true),
        _ => Err(Error::new(format!(
            "option `stop-on-error` must be yes, on, true, no, off or false, not `{value}`"
        ))),
    }
}

/// Runs `command` with `sh -c` in the buildout directory and waits for it; stops it when the
/// user cancels the run.
fn run(command: &str, option: &str, stop_on_error: bool, ctx: &Context) -> Result<()> {
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::inherit());
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(ctx.buildout_directory())
        .stdin(Stdio::null())
        .stdout(stdout)
        // Its own process group: the first Ctrl-C lets running parts finish (the engine's
        // rule), which the terminal's SIGINT to the whole foreground group would break, and a
        // cancelled run can stop the command with everything it started.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::new(format!("cannot run `sh -c` for option `{option}`: {e}")))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if ctx.cancelled() => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(Error::new(format!(
                    "option `{option}`: the command was stopped: the run was cancelled"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                return Err(Error::new(format!(
                    "option `{option}`: cannot wait for the command: {e}"
                )));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let what = describe(status);
    if stop_on_error {
        return Err(Error::new(format!(
            "option `{option}`: the command {what} (stop-on-error is on): {command}"
        )));
    }
    ctx.warn(&format!(
        "option `{option}`: the command {what}; going on, as stop-on-error is off"
    ));
    Ok(())
}

/// Kills the process group `pgid` (the command's shell and whatever it started).
fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers; a negative pid names the process group, which
    // `process_group(0)` made for the command alone (its shell's pid, not yet reaped, so the
    // id cannot have been reused).
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_owned(),
    }
}

export_plugin! {
    name: "command",
    version: env!("CARGO_PKG_VERSION"),
    recipes: {
        "default" => Command,
        // The Python recipe it stands in for, under its distribution's name (docs/plugins.md).
        "plone.recipe.command:default" => Command,
    },
}
