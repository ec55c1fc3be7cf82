//! `extensions`: zc.buildout extensions through the Python recipe bridge
//! (docs/python-recipes.md, "Extensions"). The engine calls this recipe itself, not as a
//! part, when `[buildout] extensions` is set: `install` with the resolved `[buildout]`
//! section loads them before the parts are computed, `uninstall` runs their unloaders at
//! the end of the run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result};

use crate::bridge::{self, CtxAnswers};

/// The lock entry of the extensions' distributions (and zc.buildout).
pub const LOCK_KEY: &str = "buildout:extensions";

/// `extensions`: `install` calls every `zc.buildout.extension` entry point of the
/// distributions `extensions` names (installed with zc.buildout by the egg fetcher) and
/// publishes what they changed as the output `edits` (JSON: `[[section, option, value,
/// extension], ...]`), or what one did that the bridge cannot honour as `refused`;
/// `uninstall` calls their `zc.buildout.unloadextension` entry points, then ends the driver.
pub struct Extensions;

impl Recipe for Extensions {
    const UNINSTALL: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        load(options, ctx)
    }

    fn uninstall(options: &Options, ctx: &Context) -> Result<()> {
        unload(options, ctx)
    }
}

/// Set while extensions are loaded in the run's driver: the end of a run (a nested one
/// too) leaves the driver running for their unloaders.
static LOADED: AtomicBool = AtomicBool::new(false);

/// Whether extensions are loaded in the driver (their unloaders have not run yet).
pub fn loaded() -> bool {
    LOADED.load(Ordering::SeqCst)
}

/// The interpreter the driver runs: `[buildout] python`, as for bridged parts.
fn program(ctx: &Context) -> Result<PathBuf> {
    let options = Options::new(vec![("eggs", "zc.buildout")], ctx.buildout_directory());
    let settings = crate::Settings::read(&options, ctx)?;
    Ok(crate::interp::query(&settings.python, &settings.cache)?
        .program()
        .to_path_buf())
}

fn load(options: &Options, ctx: &Context) -> Result<()> {
    let names: Vec<&str> = options
        .get("extensions")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if names.is_empty() {
        return Err(Error::new("option `extensions`: no extension named"));
    }
    // The extensions with their requirements and zc.buildout (they import it), installed
    // as a bridged recipe's distribution is: locked (under their own entry), hashed, shared.
    let eggs = format!("{}\nzc.buildout", names.join("\n"));
    let egg_options = Options::new(vec![("eggs", eggs.as_str())], ctx.buildout_directory());
    let folders: Vec<PathBuf> =
        crate::for_python_recipe(LOCK_KEY, || crate::zc::working_set(&egg_options, ctx))?
            .into_iter()
            .map(|d| d.folder)
            .collect();
    let program = program(ctx)?;
    let request = serde_json::json!({
        "op": "extensions", "part": ctx.part(), "paths": folders,
        "offline": ctx.offline(), "newest": ctx.newest(),
    });
    let answers = CtxAnswers(ctx);
    let reply = bridge::with_driver(&program, ctx.buildout_directory(), |d| {
        d.extensions(&request, &answers)
    })?;
    LOADED.store(true, Ordering::SeqCst);
    if let Some(refused) = reply.refused {
        return ctx.publish("refused", &refused);
    }
    let edits = serde_json::to_string(&reply.edits)
        .map_err(|e| Error::new(format!("the extensions' edits: {e}")))?;
    ctx.publish("edits", &edits)
}

fn unload(_options: &Options, ctx: &Context) -> Result<()> {
    if !LOADED.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let program = program(ctx)?;
    let request = serde_json::json!({ "op": "unload", "part": ctx.part() });
    let answers = CtxAnswers(ctx);
    let outcome = bridge::with_driver(&program, ctx.buildout_directory(), |d| {
        d.extensions(&request, &answers)
    });
    bridge::run_end();
    outcome.map(|_| ())
}
