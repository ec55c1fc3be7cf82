//! `[buildout]`, typed: the built-in defaults (SPEC §2.4), which of its options hold paths,
//! and the [`Buildout`] settings the engine reads, resolved once when the config is loaded.
//!
//! Recipes read `[buildout]` through the host like any section (`get_option`), and get the
//! resolved values, defaults included: they keep no defaults of their own (the SDK's
//! `Context::buildout` reads them by name).

use std::path::PathBuf;

use rbuildout_plugin_api::develop::develop_folders;

use super::{Config, Diagnostic, Error, ErrorKind, Resolver, Source};

/// The built-in `[buildout]` defaults (SPEC §2.4) but `directory` (computed): `index` is
/// `PIP_INDEX_URL` (as pip and uv read it, and the only place rbuildout reads it), else
/// PyPI; `download-cache` the XDG cache.
pub(crate) fn defaults() -> Vec<(&'static str, String)> {
    let index = std::env::var("PIP_INDEX_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "https://pypi.org/simple".to_owned());
    let cache = super::extends::default_download_cache()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ".cache/rbuildout".to_owned());
    FIXED
        .iter()
        .map(|&(k, v)| match k {
            "download-cache" => (k, cache.clone()),
            "index" => (k, index.clone()),
            _ => (k, v.to_owned()),
        })
        .collect()
}

/// The defaults that do not depend on the environment (`index` and `download-cache` are
/// placeholders [`defaults`] fills).
const FIXED: &[(&str, &str)] = &[
    ("allow-hosts", "*"),
    ("allow-picked-versions", "true"),
    ("bin-directory", "bin"),
    ("develop-eggs-directory", "develop-eggs"),
    ("download-cache", ""),
    ("eggs-directory", "eggs"),
    ("find-links", ""),
    ("index", ""),
    ("installed", ".installed.toml"),
    // Parts run one at a time, in order, as in zc.buildout; `-j N` opts in to more.
    ("jobs", "1"),
    ("newest", "false"),
    ("offline", "false"),
    ("parts-directory", "parts"),
    // zc.buildout's, read by the egg recipes (docs/egg.md, "Versions").
    ("prefer-final", "true"),
    ("python", "python3"),
    ("show-picked-versions", "false"),
    ("update-versions-file", ""),
    ("versions", "versions"),
    // Both formats default these to the empty string (an empty list to `to_list`), so a
    // converted config resolves to the same values. `allow-outside`: folders outside the
    // instance that recipes may write into (SPEC §3).
    ("allow-outside", ""),
    ("develop", ""),
    ("plugin-path", ""),
];

/// Options of `[buildout]` that hold paths, made absolute after substitution.
pub(crate) const PATH_OPTIONS: &[&str] = &[
    "bin-directory",
    "parts-directory",
    "eggs-directory",
    "develop-eggs-directory",
    "download-cache",
    "installed",
];

/// The `[buildout]` settings the engine acts on, resolved once ([`Config::buildout`]).
/// Paths are absolute; a folder set empty is `None`.
#[derive(Debug, Clone, Default)]
pub struct Buildout {
    /// `directory`.
    pub directory: PathBuf,
    /// `installed`, the state file; `None` when set empty: no state, every part installs
    /// each run.
    pub installed: Option<PathBuf>,
    pub bin_directory: Option<PathBuf>,
    pub parts_directory: Option<PathBuf>,
    pub eggs_directory: Option<PathBuf>,
    pub develop_eggs_directory: Option<PathBuf>,
    pub download_cache: Option<PathBuf>,
    /// `instance-directory` (set for nested builds), else `directory`.
    pub instance_directory: PathBuf,
    /// `develop`: the Python source folders its globs name (docs/develop.md), which the
    /// egg recipe makes develop distributions of.
    pub develop: Vec<PathBuf>,
    /// The entries of `develop` that match nothing (a warning, as in zc.buildout).
    pub develop_unmatched: Vec<String>,
    /// `extensions`: zc.buildout extensions, which `install` loads through the Python
    /// recipe bridge before the parts are computed (docs/python-recipes.md).
    pub extensions: Vec<String>,
    /// `develop-recipes`: recipe crates built with cargo before the run.
    pub develop_recipes: Vec<PathBuf>,
    /// `plugin-path`: where recipe plugins are searched first.
    pub plugin_path: Vec<PathBuf>,
    /// `allow-outside`: folders outside the instance that recipes may write into.
    pub allow_outside: Vec<PathBuf>,
    /// `jobs`: how many parts may run at once (`-j` overrides it); at least 1.
    pub jobs: usize,
    /// The first of these options that did not resolve (it counts as unset above).
    problem: Option<Error>,
}

impl Buildout {
    /// Resolves the settings with a lenient resolver (a reference to an output not known
    /// yet stays literal). The only error is a `jobs` that is not a number: an option that
    /// does not resolve is kept for [`Buildout::check`], so that commands which only show
    /// the config (`annotate`, `query`) report it their way.
    pub(crate) fn resolve(config: &Config) -> Result<Buildout, Error> {
        let mut r = config.resolver();
        r.set_lenient(true);
        let directory = config.directory().to_path_buf();
        let problem = std::cell::RefCell::new(None);
        let value = |r: &mut Resolver<'_>, option: &str| match r.get_opt("buildout", option) {
            Ok(v) => v,
            Err(e) => {
                problem.borrow_mut().get_or_insert(e);
                None
            }
        };
        let text = |r: &mut Resolver<'_>, option: &str| value(r, option).map(|v| v.to_text());
        let path = |v: Option<String>| {
            v.map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|s| directory.join(s))
        };
        let folders = |r: &mut Resolver<'_>, option: &str| -> Vec<PathBuf> {
            match value(r, option) {
                Some(v) => v
                    .to_list()
                    .iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .map(|s| directory.join(s))
                    .collect(),
                None => Vec::new(),
            }
        };
        let installed = match text(&mut r, "installed") {
            Some(v) => path(Some(v)),
            None => Some(directory.join(".installed.toml")),
        };
        let jobs = match text(&mut r, "jobs") {
            Some(j) => match j.trim().parse::<usize>() {
                Ok(n) => n.max(1),
                Err(_) => {
                    let span = r.history("buildout", "jobs").ok().and_then(|h| {
                        h.iter().rev().find_map(|st| match st.source {
                            Source::File(sp) => Some(sp),
                            _ => None,
                        })
                    });
                    return Err(config.error(
                        Diagnostic::new(
                            ErrorKind::Type,
                            format!(
                                "buildout:jobs must be a number of parts to run at once, not `{j}`"
                            ),
                        )
                        .at(span, "not a number"),
                    ));
                }
            },
            None => 1,
        };
        let develop = {
            let entries: Vec<String> = value(&mut r, "develop")
                .map(|v| v.to_list())
                .unwrap_or_default();
            develop_folders(&directory, entries.iter().map(String::as_str))
        };
        Ok(Buildout {
            installed,
            bin_directory: path(text(&mut r, "bin-directory")),
            parts_directory: path(text(&mut r, "parts-directory")),
            eggs_directory: path(text(&mut r, "eggs-directory")),
            develop_eggs_directory: path(text(&mut r, "develop-eggs-directory")),
            download_cache: path(text(&mut r, "download-cache")),
            instance_directory: path(text(&mut r, "instance-directory"))
                .unwrap_or_else(|| directory.clone()),
            develop: develop.folders,
            develop_unmatched: develop.unmatched,
            extensions: value(&mut r, "extensions")
                .map(|v| v.to_list())
                .unwrap_or_default(),
            develop_recipes: folders(&mut r, "develop-recipes"),
            plugin_path: folders(&mut r, "plugin-path"),
            allow_outside: folders(&mut r, "allow-outside"),
            jobs,
            directory,
            problem: problem.into_inner(),
        })
    }

    /// Whether every setting resolved; else the first error, for commands that act on them.
    pub fn check(&self) -> Result<(), Error> {
        self.problem.clone().map_or(Ok(()), Err)
    }

    /// The instance lock: the state file's name + `.lock` (`.installed.lock` without one).
    pub fn lock_path(&self) -> PathBuf {
        match &self.installed {
            Some(p) => {
                let mut name = p.file_name().unwrap_or_default().to_os_string();
                name.push(".lock");
                p.with_file_name(name)
            }
            None => self.directory.join(".installed.lock"),
        }
    }
}
