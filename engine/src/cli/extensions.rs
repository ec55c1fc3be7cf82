//! zc.buildout extensions (`[buildout] extensions`, docs/python-recipes.md "Extensions"):
//! before the parts are computed, the bridge's `egg:extensions` recipe runs them on the
//! loaded config; what they set comes back as edits, applied as command-line assignments
//! are (after the user's), and the config is loaded again with them. At the end of a run
//! their unloaders run.

use std::path::Path;
use std::sync::Mutex;

use rbuildout::config::{Config, Resolver};
use rbuildout::plugin::{self, Call, Host, Recipe};

use super::{Failure, Global};

/// The part name the extensions' call has: in logs, and their lock entry.
const PART: &str = "buildout:extensions";

/// Extensions loaded in the run's driver, for their unloaders.
pub(super) struct Loaded {
    recipe: Recipe,
}

/// The engine's answers to the extensions: every section of the config, resolved.
struct ConfigHost<'c> {
    resolver: Mutex<Resolver<'c>>,
}

impl Host for ConfigHost<'_> {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        let mut resolver = self.resolver.lock().unwrap_or_else(|e| e.into_inner());
        resolver
            .get_opt(section, option)
            .ok()
            .flatten()
            .map(|v| v.to_text())
    }

    fn option_names(&self, section: &str) -> Option<Vec<String>> {
        let mut resolver = self.resolver.lock().unwrap_or_else(|e| e.into_inner());
        let names = resolver.option_names(section).ok()?;
        Some(
            names
                .into_iter()
                .filter(|n| resolver.get(section, n).is_ok())
                .collect(),
        )
    }

    fn nested_build(&self, config: &Path, _directory: &Path) -> Result<(), String> {
        Err(format!(
            "an extension cannot build {} as a nested buildout",
            config.display()
        ))
    }
}

/// Calls `hook` (install: load, uninstall: unload) of the extensions' recipe on `config`,
/// returning the outputs it published.
fn call(
    g: &Global,
    config: &Config,
    recipe: &Recipe,
    install: bool,
) -> Result<Vec<(String, String)>, String> {
    let host = ConfigHost {
        resolver: Mutex::new(config.resolver()),
    };
    let options: Vec<(String, String)> = {
        let mut resolver = host.resolver.lock().unwrap_or_else(|e| e.into_inner());
        rbuildout::run::view::buildout_texts(&mut resolver)
            .into_iter()
            .collect()
    };
    let call = Call {
        part: PART,
        buildout_directory: config.directory(),
        offline: g.offline,
        newest: g.newest,
        locked: g.locked,
        options: &options,
        host: &host,
        owned: &[],
    };
    if install {
        recipe
            .install(&call)
            .map(|r| r.outputs)
            .map_err(|e| e.message)
    } else {
        recipe
            .uninstall(&call)
            .map(|()| Vec::new())
            .map_err(|e| e.message)
    }
}

/// Runs the config's extensions, if it has any, and returns the config as they changed it
/// (loaded again with their edits), with what their unloaders need.
pub(super) fn load(g: &Global, config: Config) -> Result<(Config, Option<Loaded>), Failure> {
    let names = config.buildout().extensions.join(", ");
    if names.is_empty() {
        return Ok((config, None));
    }
    let registry = super::install::registry(&config, Vec::new());
    let recipe = registry.recipe(plugin::EXTENSIONS).map_err(|e| {
        Failure::Config(format!(
            "error: buildout:extensions: {names}: the Python recipe bridge, which runs them, \
             is not available: {e}"
        ))
    })?;
    tracing::info!("loading the extensions {names}");
    let outputs = call(g, &config, &recipe, true)
        .map_err(|e| Failure::Part(format!("error: buildout:extensions: {names}: {e}")))?;
    let output = |name: &str| {
        outputs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(refused) = output("refused") {
        return Err(Failure::Config(format!(
            "error: buildout:extensions: {refused}\n\
             hint: docs/python-recipes.md, \"Extensions\", says what of zc.buildout's \
             extension API the bridge honours"
        )));
    }
    let edits: Vec<[String; 4]> =
        serde_json::from_str(output("edits").unwrap_or("[]")).map_err(|e| {
            Failure::Part(format!(
                "error: buildout:extensions: {names}: unreadable edits: {e}"
            ))
        })?;
    let loaded = Loaded { recipe };
    if edits.is_empty() {
        return Ok((config, Some(loaded)));
    }
    let mut changed = g.clone();
    for [section, option, value, extension] in &edits {
        // What a command-line assignment cannot spell, the extension's edit cannot be.
        let plain = |s: &str| !s.is_empty() && !s.contains([':', '=', '\n']) && s.trim() == s;
        if !plain(section) || !plain(option) || option.ends_with(['+', '-']) {
            return Err(Failure::Config(format!(
                "error: buildout:extensions: the extension {extension} sets the option \
                 {option:?} of the section {section:?}, which a command-line assignment \
                 cannot name"
            )));
        }
        tracing::debug!("the extension {extension} sets {section}:{option}");
        changed
            .assignments
            .push(format!("{section}:{option}={value}"));
    }
    let config = super::annotate::load_config(&changed).map_err(|f| match f {
        Failure::Config(e) => Failure::Config(format!(
            "{e}\nnote: in the config as the extensions {names} changed it"
        )),
        other => other,
    })?;
    Ok((config, Some(loaded)))
}

/// Runs the unloaders of the extensions `loaded` (zc.buildout's `zc.buildout.unloadextension`
/// entry points) at the end of a run that succeeded, on `config`.
pub(super) fn unload(g: &Global, config: &Config, loaded: Option<Loaded>) -> Result<(), Failure> {
    let Some(loaded) = loaded else {
        return Ok(());
    };
    let names = config.buildout().extensions.join(", ");
    call(g, config, &loaded.recipe, false)
        .map(|_| ())
        .map_err(|e| Failure::Part(format!("error: buildout:extensions: {names}: {e}")))
}

/// The warning of a command that does not run the config's extensions (they run with
/// `install`, as zc.buildout's do).
pub(super) fn not_run(config: &Config) {
    let names = config.buildout().extensions.join(", ");
    if !names.is_empty() {
        tracing::warn!(
            "buildout:extensions: {names}: not run by this command (they run with `install`); \
             what they would change is not in what it shows or does"
        );
    }
}
