//! [`Buildout`]: `[buildout]` as a recipe reads it.

use std::path::PathBuf;

use super::Context;

/// `[buildout]` as a recipe reads it ([`Context::buildout`]): each option read by name
/// through the host (`get_option`) when asked for, so the host knows exactly which options
/// the part depends on. rbuildout records the `[buildout]` options a part read, with their
/// values, and reinstalls the part when one of them changes (docs/lifecycle.md).
///
/// rbuildout resolves every option here, defaults included (SPEC §2.4), and gives paths
/// absolute: a recipe keeps no defaults of its own. The fallbacks named below serve only a
/// host that gives no value (the `testing` host with no `[buildout]` value set); they are
/// rbuildout's defaults.
#[derive(Clone, Copy)]
pub struct Buildout<'a> {
    ctx: &'a Context<'a>,
}

impl<'a> Buildout<'a> {
    pub(crate) fn new(ctx: &'a Context<'a>) -> Buildout<'a> {
        Buildout { ctx }
    }

    /// An option as text; `None` when unset.
    pub fn get(&self, option: &str) -> Option<String> {
        self.ctx.option("buildout", option)
    }

    /// An option naming a folder or file: trimmed, relative to the buildout directory;
    /// `None` when unset or empty.
    pub fn path(&self, option: &str) -> Option<PathBuf> {
        let value = self.get(option)?;
        let value = value.trim();
        (!value.is_empty()).then(|| self.ctx.buildout_directory().join(value))
    }

    /// `bin-directory` (fallback `bin`).
    pub fn bin_directory(&self) -> PathBuf {
        self.folder("bin-directory", "bin")
    }

    /// `parts-directory` (fallback `parts`).
    pub fn parts_directory(&self) -> PathBuf {
        self.folder("parts-directory", "parts")
    }

    /// `eggs-directory` (fallback `eggs`).
    pub fn eggs_directory(&self) -> PathBuf {
        self.folder("eggs-directory", "eggs")
    }

    /// `instance-directory`: the outermost instance's folder, which a nested build is part
    /// of (fallback: the buildout directory).
    pub fn instance_directory(&self) -> PathBuf {
        self.path("instance-directory")
            .unwrap_or_else(|| self.ctx.buildout_directory().to_path_buf())
    }

    /// `python`, trimmed (fallback `python3`).
    pub fn python(&self) -> String {
        self.get("python")
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "python3".to_owned())
    }

    /// `index`, the package index URL (rbuildout's default is `PIP_INDEX_URL`, else PyPI);
    /// `None` when unset or set empty (no index).
    pub fn index(&self) -> Option<String> {
        self.get("index")
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
    }

    /// `download-cache`, the folder downloads are kept in (rbuildout's default is the user's
    /// cache folder); `None` when unset or set empty (no cache).
    pub fn download_cache(&self) -> Option<PathBuf> {
        self.path("download-cache")
    }

    /// `versions`: the name of the section that pins versions, trimmed (fallback `versions`).
    pub fn versions(&self) -> String {
        self.get("versions")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "versions".to_owned())
    }

    /// `allow-picked-versions`: whether a distribution may be picked without a pin in the
    /// versions section; only `false` forbids it (fallback true).
    pub fn allow_picked_versions(&self) -> bool {
        self.get("allow-picked-versions")
            .is_none_or(|v| v.trim() != "false")
    }

    /// `relative-paths`: whether generated scripts find their folders relative to
    /// themselves (fallback false).
    pub fn relative_paths(&self) -> bool {
        self.get("relative-paths")
            .is_some_and(|v| matches!(v.trim(), "true" | "yes" | "on" | "1"))
    }

    /// `develop`: the Python source folders it names, its globs expanded
    /// (`super::develop::develop_folders`).
    #[cfg(unix)]
    pub fn develop(&self) -> super::develop::DevelopFolders {
        let text = self.get("develop").unwrap_or_default();
        super::develop::develop_folders(self.ctx.buildout_directory(), text.split_whitespace())
    }

    fn folder(&self, option: &str, fallback: &str) -> PathBuf {
        self.path(option)
            .unwrap_or_else(|| self.ctx.buildout_directory().join(fallback))
    }
}
