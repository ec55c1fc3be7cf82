//! `mkdir`: creates the folders of an instance (SPEC §5.5), and on uninstall removes only
//! the ones it created that are still empty.
//!
//! ```toml
//! [dirs]
//! recipe = "mkdir"
//! paths = ["etc", "run", "tmp", "var/log"]   # or "etc run tmp var/log"
//! mode = "0750"                              # optional, octal
//! ```
//!
//! The engine removes registered paths recursively, which would delete whatever the service
//! wrote into `var/log`; so this recipe registers nothing. Instead it keeps the list of the
//! folders it created in `<parts-directory>/<part>.mkdir` (one path per line, relative to the
//! buildout directory), written *before* creating them, and its `uninstall` hook removes those
//! that are empty, deepest first. Folders it kept because they were not empty stay listed in
//! the file, so a reinstall of the same part takes them over again; when none is left the
//! file goes too. A folder to create must lie inside the buildout directory or a folder of
//! `[buildout] allow-outside` (links followed); a file where a folder should be is an error
//! in the words every recipe uses. Decisions are in `docs/recipes.md`.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin, files};

pub struct Mkdir;

impl Recipe for Mkdir {
    const UPDATE: bool = true;
    const UNINSTALL: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        make(options, ctx)
    }

    /// Creates the folders that went missing since, and gives the owned ones `mode` again.
    fn update(options: &Options, ctx: &Context) -> Result<()> {
        make(options, ctx)
    }

    fn uninstall(_options: &Options, ctx: &Context) -> Result<()> {
        let record = record_file(ctx);
        let owned = read_record(&record)?;
        let root = ctx.buildout_directory();
        let mut kept = Vec::new();
        for folder in deepest_first(&owned) {
            let path = root.join(folder);
            match path.symlink_metadata() {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Ok(meta) if !meta.is_dir() => {
                    // Replaced by a file or a link since: not the folder it created.
                    continue;
                }
                _ => {}
            }
            match std::fs::remove_dir(&path) {
                Ok(()) => ctx.debug(&format!("removed {}", path.display())),
                Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {
                    ctx.info(&format!("kept {}: not empty", path.display()));
                    kept.push(folder.clone());
                }
                Err(e) => {
                    ctx.warn(&format!("kept {}: {e}", path.display()));
                    kept.push(folder.clone());
                }
            }
        }
        kept.reverse();
        write_record(&record, &kept)
    }
}

/// Creates the missing folders of `paths` (and their missing parents), records them, and
/// applies `mode` to every folder the part owns.
fn make(options: &Options, ctx: &Context) -> Result<()> {
    let root = ctx.buildout_directory();
    let folders = folders(options, root)?;
    let mode = options.get_mode("mode")?;
    let record = record_file(ctx);

    // Folders created by an earlier install of this part that are still there stay its own.
    let mut owned: Vec<PathBuf> = read_record(&record)?
        .into_iter()
        .filter(|f| is_real_dir(&root.join(f)))
        .collect();
    let mut create = Vec::new();
    let mut seen: BTreeSet<PathBuf> = owned.iter().cloned().collect();
    let targets = files::Targets::of(ctx);
    let in_option = |e: Error| Error::new(format!("option `paths`: {}", e.message()));
    for folder in &folders {
        let mut prefix = PathBuf::new();
        for part in folder.components() {
            prefix.push(part);
            let path = root.join(&prefix);
            match path.metadata() {
                // An existing folder is used as it is, and stays its maker's.
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(in_option(files::not_made_by_part(&path))),
                Err(_) => {
                    // Only inside the instance or an allowed folder, also once the links
                    // of the folders above are followed.
                    targets.allowed(&path).map_err(in_option)?;
                    if seen.insert(prefix.clone()) {
                        create.push(prefix.clone());
                    }
                }
            }
        }
    }
    owned.extend(create.iter().cloned());
    // Written before creating, so a run killed halfway still knows what it made.
    write_record(&record, &owned)?;

    let mut lost = Vec::new();
    for folder in &create {
        let path = root.join(folder);
        match std::fs::create_dir(&path) {
            Ok(()) => ctx.info(&format!("created {}", path.display())),
            // Another part created it meanwhile: that one owns it.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && path.is_dir() => {
                lost.push(folder.clone());
            }
            Err(e) => {
                return Err(Error::new(format!("cannot create {}: {e}", path.display())));
            }
        }
    }
    if !lost.is_empty() {
        owned.retain(|f| !lost.contains(f));
        write_record(&record, &owned)?;
    }

    if let Some(mode) = mode {
        // Deepest first: a mode without search permission on a parent must not stop the
        // children from getting theirs.
        for folder in deepest_first(&owned) {
            let path = root.join(folder);
            let current = path
                .metadata()
                .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?
                .permissions()
                .mode()
                & 0o7777;
            if current != mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(
                    |e| Error::new(format!("cannot set the mode of {}: {e}", path.display())),
                )?;
            }
        }
    }
    Ok(())
}

/// The `paths` option: folders normalised, relative to the buildout directory when inside it,
/// else absolute (the caller checks that those are in an allowed folder).
pub fn folders(options: &Options, root: &Path) -> Result<Vec<PathBuf>> {
    let list = options.get_list("paths");
    if list.is_empty() {
        return Err(Error::new(
            "option `paths` is required: the folders to create, relative to the buildout directory",
        ));
    }
    list.into_iter().map(|text| inside(root, text)).collect()
}

/// `text` with `.` and `..` resolved lexically: relative to `root` when it lies inside it,
/// else absolute. The buildout directory itself is an error.
fn inside(root: &Path, text: &str) -> Result<PathBuf> {
    let path = files::normalize(&root.join(text));
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => Err(Error::new(format!(
            "option `paths`: `{text}` is the buildout directory itself"
        ))),
        Ok(rel) => Ok(rel.to_path_buf()),
        Err(_) => Ok(path),
    }
}

/// Where the part keeps the list of folders it created.
fn record_file(ctx: &Context) -> PathBuf {
    let parts = ctx.buildout().parts_directory();
    parts.join(format!("{}.mkdir", ctx.part()))
}

fn read_record(path: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::new(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes the list atomically, when it changed; an empty list removes the file.
fn write_record(path: &Path, folders: &[PathBuf]) -> Result<()> {
    if folders.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(Error::new(format!("cannot remove {}: {e}", path.display())))
            }
            _ => Ok(()),
        };
    }
    let mut text = String::new();
    for folder in folders {
        let line = folder
            .to_str()
            .ok_or_else(|| Error::new(format!("folder name {} is not UTF-8", folder.display())))?;
        text.push_str(line);
        text.push('\n');
    }
    files::write_if_changed(path, text.as_bytes(), None)?;
    Ok(())
}

/// Deepest folders first, so a parent is tried after its children.
fn deepest_first(folders: &[PathBuf]) -> Vec<&PathBuf> {
    let mut sorted: Vec<&PathBuf> = folders.iter().collect();
    sorted.sort_by(|a, b| {
        b.components()
            .count()
            .cmp(&a.components().count())
            .then_with(|| b.cmp(a))
    });
    sorted
}

fn is_real_dir(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.is_dir())
}

export_plugin! {
    name: "mkdir",
    version: env!("CARGO_PKG_VERSION"),
    recipes: { "default" => Mkdir },
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rbuildout_plugin_api::Options;

    use super::{folders, inside};

    #[test]
    fn paths_are_normalised_and_kept_inside() {
        let root = Path::new("/srv/app");
        assert_eq!(inside(root, "var/./log/").unwrap(), Path::new("var/log"));
        assert_eq!(inside(root, "a/../b").unwrap(), Path::new("b"));
        assert_eq!(inside(root, "/srv/app/etc").unwrap(), Path::new("etc"));
        // Outside: absolute, for `make` to check against `allow-outside`.
        for (outside, absolute) in [
            ("../x", "/srv/x"),
            ("a/../../x", "/srv/x"),
            ("/etc", "/etc"),
            ("/srv/application", "/srv/application"),
        ] {
            assert_eq!(inside(root, outside).unwrap(), Path::new(absolute));
        }
        assert!(
            inside(root, "a/..")
                .unwrap_err()
                .message()
                .contains("the buildout directory itself")
        );
    }

    #[test]
    fn paths_as_words_or_lines() {
        let root = Path::new("/srv/app");
        let words = Options::new(vec![("paths", "etc run  var/log")], root);
        assert_eq!(folders(&words, root).unwrap().len(), 3);
        let lines = Options::new(vec![("paths", "my data\nvar/log")], root);
        assert_eq!(
            folders(&lines, root).unwrap(),
            [Path::new("my data"), Path::new("var/log")]
        );
        let none = Options::new(vec![], root);
        assert!(
            folders(&none, root)
                .unwrap_err()
                .message()
                .contains("`paths` is required")
        );
    }
}
