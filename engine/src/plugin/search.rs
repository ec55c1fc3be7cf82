//! Where plugins are looked for (SPEC §4.4) and how a part's `recipe` value names one.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};

use super::PluginError;
use super::builtin::Builtin;

/// The environment variable that adds plugin folders after `buildout:plugin-path`.
pub const PLUGIN_PATH_ENV: &str = "RBUILDOUT_PLUGIN_PATH";

/// Where plugins are looked for, in order (SPEC §4.4), and the recipes linked into the
/// binary, searched after the first `builtin_at` folders.
#[derive(Clone, Debug)]
pub struct SearchPath {
    pub dirs: Vec<PathBuf>,
    /// The config file's folder: relative `plugin-path` entries and recipe paths start there.
    pub config_dir: PathBuf,
    /// The built-in recipes ([`SearchPath::with_builtins`]); none unless given.
    pub builtins: &'static [Builtin],
    /// How many of `dirs` are searched before the built-ins: a library there with a
    /// built-in's name replaces it.
    pub builtin_at: usize,
}

/// Where a plugin comes from.
#[derive(Clone, Debug)]
pub(super) enum Source {
    /// A library file.
    File(PathBuf),
    /// A recipe crate linked into the binary.
    Builtin(&'static Builtin),
}

impl SearchPath {
    /// `buildout:plugin-path` dirs (relative to `config_dir`), then `RBUILDOUT_PLUGIN_PATH`,
    /// then (once given, [`with_builtins`](SearchPath::with_builtins)) the built-ins, then
    /// the binary's folder and its `../lib/rbuildout`.
    pub fn new(plugin_path: Vec<PathBuf>, config_dir: PathBuf) -> SearchPath {
        let mut dirs: Vec<PathBuf> = plugin_path.iter().map(|d| config_dir.join(d)).collect();
        if let Some(env) = std::env::var_os(PLUGIN_PATH_ENV) {
            dirs.extend(std::env::split_paths(&env).filter(|d| !d.as_os_str().is_empty()));
        }
        let builtin_at = dirs.len();
        if let Some(bin_dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            let lib = bin_dir.join("../lib/rbuildout");
            dirs.push(bin_dir);
            dirs.push(lib);
        }
        SearchPath {
            dirs,
            config_dir,
            builtins: &[],
            builtin_at,
        }
    }

    /// The same search path with `builtins` searched after `buildout:plugin-path` and
    /// `RBUILDOUT_PLUGIN_PATH`, before the binary's folder.
    pub fn with_builtins(self, builtins: &'static [Builtin]) -> SearchPath {
        SearchPath { builtins, ..self }
    }

    /// The first library or built-in for the plugin `name`.
    pub(super) fn find(&self, name: &str) -> Result<Source, PluginError> {
        let file = file_name(name);
        let in_dirs = |dirs: &[PathBuf]| {
            dirs.iter()
                .map(|dir| dir.join(&file))
                .find(|path| path.is_file())
                .map(Source::File)
        };
        let (before, after) = self.dirs.split_at(self.builtin_at.min(self.dirs.len()));
        let wanted = normalise(name);
        in_dirs(before)
            .or_else(|| {
                self.builtins
                    .iter()
                    .find(|b| normalise(b.name) == wanted)
                    .map(Source::Builtin)
            })
            .or_else(|| in_dirs(after))
            .ok_or_else(|| PluginError::NotFound {
                name: name.to_owned(),
                file,
                searched: self.distinct().into_iter().map(|(_, d)| d).collect(),
            })
    }

    /// The folders in search order, each once with its index in `dirs`:
    /// `RBUILDOUT_PLUGIN_PATH` naming the binary's own folder, or a folder spelt two ways,
    /// is not searched (nor listed) twice.
    fn distinct(&self) -> Vec<(usize, PathBuf)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (index, dir) in self.dirs.iter().enumerate() {
            let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if !seen.contains(&canonical) {
                seen.push(canonical);
                out.push((index, dir.clone()));
            }
        }
        out
    }

    /// Every plugin in the search path, `(name, source)`, in search order: the libraries of
    /// each folder sorted by name (a folder listed twice is read once), the built-ins in
    /// their place.
    pub(super) fn all(&self) -> Vec<(String, Source)> {
        let builtins = || {
            self.builtins
                .iter()
                .map(|b| (b.name.to_owned(), Source::Builtin(b)))
        };
        let mut out = Vec::new();
        let mut builtins_listed = false;
        for (index, dir) in &self.distinct() {
            if !builtins_listed && *index >= self.builtin_at {
                out.extend(builtins());
                builtins_listed = true;
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut found: Vec<(String, PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let path = entry.path();
                    let name = name_of_file(&path)?;
                    path.is_file().then_some((name, path))
                })
                .collect();
            found.sort();
            out.extend(
                found
                    .into_iter()
                    .map(|(name, path)| (name, Source::File(path))),
            );
        }
        if !builtins_listed {
            out.extend(builtins());
        }
        out
    }
}

/// The library file name for a plugin name: `librbuildout_recipe_<name>.so`, the name
/// [normalised](normalise) with `_` for `-` (`collective.recipe.template` →
/// `librbuildout_recipe_collective_recipe_template.so`, `hello-recipe` →
/// `librbuildout_recipe_hello_recipe.so`).
pub(super) fn file_name(name: &str) -> String {
    format!(
        "{DLL_PREFIX}rbuildout_recipe_{}{DLL_SUFFIX}",
        normalise(name).replace('-', "_")
    )
}

/// A name as PEP 503 normalises Python distribution names: lowercase, every run of `-`, `_`
/// and `.` one `-`. Recipe names are compared this way, as pip and zc.buildout compare
/// distributions: `Plone.Recipe.Command` and `plone_recipe-command` name the same one.
pub(super) fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

/// A recipe-table entry that provides a recipe under another name, `"<name>:<entry>"`
/// (`"collective.recipe.template:default"`), split into the normalised name and the entry.
/// Plain entries (`"default"`, `"scripts"`) provide nothing beyond their own plugin's name.
pub(super) fn provided_name(entry: &str) -> Option<(String, &str)> {
    let (name, entry) = entry.rsplit_once(':')?;
    (!name.is_empty() && !entry.is_empty()).then(|| (normalise(name), entry))
}

/// The plugin name a library file stands for, if its name has the plugin form.
pub(super) fn name_of_file(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file
        .strip_prefix(DLL_PREFIX)?
        .strip_prefix("rbuildout_recipe_")?
        .strip_suffix(DLL_SUFFIX)?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// What a `recipe` value names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// A plugin looked for in the search path.
    Name(String),
    /// A library file, relative to the config's folder unless absolute.
    File(PathBuf),
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Spec {
    pub name: Target,
    pub entry: String,
}

/// Parses `"name"`, `"name:entry"`, `"./dir/libx.so"` or `"/opt/libx.so:entry"`.
pub(super) fn parse(recipe: &str) -> Result<Spec, PluginError> {
    let bad = |reason| PluginError::BadName {
        recipe: recipe.to_owned(),
        reason,
    };
    let recipe_trimmed = recipe.trim();
    // The entry follows the last colon, unless that colon is inside the path.
    let (target, entry) = match recipe_trimmed.rsplit_once(':') {
        Some((target, entry)) if !entry.contains('/') => (target, Some(entry)),
        _ => (recipe_trimmed, None),
    };
    let entry = match entry {
        None => "default".to_owned(),
        Some("") => return Err(bad("the entry after `:` is empty")),
        Some(entry) => entry.to_owned(),
    };
    if target.contains('/') {
        return Ok(Spec {
            name: Target::File(PathBuf::from(target)),
            entry,
        });
    }
    if target.is_empty() {
        return Err(bad("it is empty"));
    }
    if !target
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            "a plugin name has only letters, digits, `-`, `_` and `.`; a path needs a `/`",
        ));
    }
    Ok(Spec {
        name: Target::Name(target.to_owned()),
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_listed_twice_is_searched_and_named_once() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let path = SearchPath {
            dirs: vec![
                a.path().to_path_buf(),
                b.path().to_path_buf(),
                a.path().join("."),
            ],
            config_dir: a.path().to_path_buf(),
            builtins: &[],
            builtin_at: 3,
        };
        let Err(PluginError::NotFound { searched, .. }) = path.find("nosuch") else {
            panic!("nosuch was found");
        };
        assert_eq!(searched, [a.path(), b.path()]);
    }
}
