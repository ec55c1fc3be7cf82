//! File chores recipes share: paths worked out lexically, files replaced atomically and
//! only when their content changes, and the check every write goes through first
//! ([`check_target`]: inside the instance or an allowed folder, and never over a file the
//! part did not make; [`check_target_write`] also lets a file that already holds exactly
//! the new content through, so a run killed after writing converges).
//!
//! Every error names the path it is about, ready to return from a recipe.

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use super::{Context, Error, Result};

/// Checks that a recipe may write the file (or link) `path` (absolute, or relative to the
/// buildout directory) and returns it absolute and [normalized](normalize). Two rules:
///
/// - Its folder is inside the buildout directory, or inside one of the folders listed in
///   `[buildout] allow-outside` (one per line, relative to the buildout directory), or inside
///   the `eggs-directory`, `develop-eggs-directory` or `download-cache` as configured; both as
///   written and with the links of the existing folders resolved (so `etc -> /etc` does not
///   let `etc/passwd` through).
/// - If something already exists at `path`, the part made it in an earlier run
///   ([`Context::owns`]); otherwise the error is "`path` exists and was not made by this
///   part; move it away".
pub fn check_target(ctx: &Context, path: &Path) -> Result<PathBuf> {
    Targets::of(ctx).check(path)
}

/// [`check_target`] for a file about to get the content `bytes`: a regular file (not a link,
/// not a folder) at `path` that the part did not make is let through too when it already
/// holds exactly `bytes`. Replacing it loses nothing, and it is what a run killed after
/// writing the file but before the engine recorded it leaves behind: the next run with the
/// same options then converges instead of refusing the part's own file. The file becomes
/// the part's (its mode is set to the part's, and it goes when the part goes).
pub fn check_target_write(ctx: &Context, path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    Targets::of(ctx).check_write(path, bytes)
}

/// The error for something at `path` that the part would replace but did not make.
pub fn not_made_by_part(path: &Path) -> Error {
    Error::new(format!(
        "{} exists and was not made by this part; move it away",
        path.display()
    ))
}

/// The folders a part may write into, worked out once for a batch of
/// [checks](Targets::check).
pub struct Targets<'a> {
    ctx: &'a Context<'a>,
    /// The buildout directory first, then the allowed folders: each as written
    /// (normalized) and with the links of its existing part resolved.
    roots: Vec<(PathBuf, PathBuf)>,
}

impl<'a> Targets<'a> {
    /// Reads the allowed folders of the part's buildout through `ctx`.
    pub fn of(ctx: &'a Context<'a>) -> Targets<'a> {
        let root = normalize(ctx.buildout_directory());
        let mut listed: Vec<String> = ctx
            .option("buildout", "allow-outside")
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        for option in ["eggs-directory", "develop-eggs-directory", "download-cache"] {
            listed.extend(ctx.option("buildout", option));
        }
        let mut roots = vec![(root.clone(), resolve(&root))];
        for text in listed.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            let folder = normalize(&root.join(text));
            if !roots.iter().any(|(r, _)| *r == folder) {
                let real = resolve(&folder);
                roots.push((folder, real));
            }
        }
        Targets { ctx, roots }
    }

    /// [`check_target`] with these folders.
    pub fn check(&self, path: &Path) -> Result<PathBuf> {
        self.check_with(path, None)
    }

    /// [`check_target_write`] with these folders.
    pub fn check_write(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf> {
        self.check_with(path, Some(bytes))
    }

    fn check_with(&self, path: &Path, bytes: Option<&[u8]>) -> Result<PathBuf> {
        let path = self.allowed(path)?;
        match path.symlink_metadata() {
            Ok(meta) if !self.ctx.owns(&path) => match bytes {
                Some(bytes) if meta.is_file() && holds_exactly(&path, &meta, bytes) => Ok(path),
                _ => Err(not_made_by_part(&path)),
            },
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(Error::new(format!("cannot read {}: {e}", path.display())))
            }
            _ => Ok(path),
        }
    }

    /// Only the first rule of [`check_target`]: `path` lies in the buildout directory or an
    /// allowed folder, as written and once resolved. For a folder the part may create or
    /// take over as it is (what `mkdir` does); returns it absolute and normalized.
    pub fn allowed(&self, path: &Path) -> Result<PathBuf> {
        let path = normalize(&self.ctx.buildout_directory().join(path));
        let root = &self.roots[0].0;
        let hint = "list the folder in `allow-outside` of [buildout] to let parts write there";
        if !self
            .roots
            .iter()
            .any(|(r, _)| path.starts_with(r) && path != *r)
        {
            return Err(Error::new(format!(
                "{} is outside the buildout directory {}: {hint}",
                path.display(),
                root.display()
            )));
        }
        let folder = path.parent().unwrap_or(&path);
        let real = resolve(folder);
        if !self.roots.iter().any(|(_, r)| real.starts_with(r)) {
            return Err(Error::new(format!(
                "{} is reached through a link to {}, outside the buildout directory {}: {hint}",
                path.display(),
                real.display(),
                root.display()
            )));
        }
        Ok(path)
    }
}

/// Whether the regular file `path` (as `meta`, read without following a link, says) holds
/// exactly `bytes`. Reads at most one byte more than `bytes`, and only from the file `meta`
/// describes (a file swapped for another since is not read into a yes).
fn holds_exactly(path: &Path, meta: &fs::Metadata, bytes: &[u8]) -> bool {
    if meta.len() != bytes.len() as u64 {
        return false;
    }
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let same = file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.dev() == meta.dev() && m.ino() == meta.ino());
    let mut content = Vec::with_capacity(bytes.len() + 1);
    same && file
        .take(bytes.len() as u64 + 1)
        .read_to_end(&mut content)
        .is_ok()
        && content == bytes
}

/// `path` (absolute, normalized) with the links of its longest existing prefix resolved and
/// the rest appended as it is.
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// `path` with `.` and `..` resolved lexically, without looking at the disk (so a `..` after
/// a link is not followed). A `..` that climbs above a relative path stays: `../a` is kept,
/// `a/../..` gives `..`; above `/` it is dropped.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.file_name().is_some() {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The relative path that leads from the folder `from` to `to`, such as `../eggs/a` from
/// `/i/bin` to `/i/eggs/a`; `.` when they are the same. Both should be absolute and
/// [normalized](normalize): the paths are compared component by component.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for component in &to[common..] {
        out.push(component);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Writes `bytes` to `path` atomically and durably: into a hidden temp file in the same
/// folder (`.name.tmp` for `name` or `.name`), synced, renamed over `path`, then the folder
/// synced. A reader sees the old content or the new, never a part, even after a crash. The
/// file keeps the mode of the one it replaces; a new one gets what the umask gives. The
/// folder must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let old_mode = mode_of(path)?;
    replace(path, bytes, old_mode)?;
    let dir = folder(path)?;
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::new(format!("cannot sync the folder {}: {e}", dir.display())))
}

/// Writes `bytes` to `path` unless it already holds exactly them, atomically (a temp file
/// renamed over it, as [`write_atomic`] but without syncing the folder), creating missing
/// parent folders. The file gets `mode` when given, else keeps its old mode (a new one gets
/// what the umask gives). When the content is already right but the mode is not, only the
/// mode is changed: the file (its inode, its mtime) stays. Returns whether it wrote.
pub fn write_if_changed(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<bool> {
    let old_mode = mode_of(path)?;
    if old_mode.is_some() && fs::read(path).is_ok_and(|old| old == bytes) {
        if let Some(mode) = mode.filter(|m| Some(*m) != old_mode) {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| {
                Error::new(format!("cannot set the mode of {}: {e}", path.display()))
            })?;
        }
        return Ok(false);
    }
    let dir = folder(path)?;
    fs::create_dir_all(dir)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
    replace(path, bytes, mode.or(old_mode))?;
    Ok(true)
}

/// The permission bits of `path`, `None` when it does not exist or is a link: a link at
/// `path` is replaced by the file, never followed (no mode or content read or set through
/// it).
fn mode_of(path: &Path) -> Result<Option<u32>> {
    match path.symlink_metadata() {
        Ok(meta) if meta.file_type().is_symlink() => Ok(None),
        Ok(meta) => Ok(Some(meta.permissions().mode() & 0o7777)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(format!("cannot read {}: {e}", path.display()))),
    }
}

/// The folder `path` is in, or an error when `path` names no file.
fn folder(path: &Path) -> Result<&Path> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(_)) if dir.as_os_str().is_empty() => Ok(Path::new(".")),
        (Some(dir), Some(_)) => Ok(dir),
        _ => Err(Error::new(format!("{} names no file", path.display()))),
    }
}

/// Writes `bytes` into a temp file beside `path`, gives it `mode` (or leaves the umask's),
/// syncs it and renames it over `path`. The temp file is removed when anything fails.
fn replace(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let tmp = temp_path(path)?;
    // A leftover of a killed run would keep its old mode, and `create_new` refuses it.
    let _ = fs::remove_file(&tmp);
    let written = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            // With a mode to set, nobody else may open the file before it has it.
            .mode(mode.map_or(0o666, |_| 0o600))
            .open(&tmp)?;
        file.write_all(bytes)?;
        if let Some(mode) = mode {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::new(format!("cannot write {}: {e}", path.display()))
    })
}

/// `dir/.name.tmp` for `dir/name`: hidden, so a recipe listing a folder (of releases,
/// of scripts) does not take it for one of its own.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let dir = folder(path)?;
    let name = path.file_name().unwrap_or_default();
    let mut tmp = OsString::new();
    if !name.as_encoded_bytes().starts_with(b".") {
        tmp.push(".");
    }
    tmp.push(name);
    tmp.push(".tmp");
    Ok(dir.join(tmp))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    fn p(text: &str) -> PathBuf {
        PathBuf::from(text)
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(&p("/i/code/./../x")), p("/i/x"));
        assert_eq!(normalize(&p("/i/./a/b/../../c/")), p("/i/c"));
        assert_eq!(normalize(&p("/../a")), p("/a"));
        assert_eq!(normalize(&p("a/../../b")), p("../b"));
        assert_eq!(normalize(&p("../../a")), p("../../a"));
        assert_eq!(normalize(&p("./a/..")), p(""));
    }

    #[test]
    fn relative_climbs_then_descends() {
        assert_eq!(relative(&p("/i/bin"), &p("/i/eggs/a")), p("../eggs/a"));
        assert_eq!(relative(&p("/i/code"), &p("/i/code/r1")), p("r1"));
        assert_eq!(
            relative(&p("/i"), &p("/i/code/current/bin")),
            p("code/current/bin")
        );
        assert_eq!(relative(&p("/i/a/b"), &p("/i/code/x")), p("../../code/x"));
        assert_eq!(relative(&p("/i/a/b"), &p("/i")), p("../.."));
        assert_eq!(relative(&p("/i"), &p("/i")), p("."));
        assert_eq!(relative(&p("/"), &p("/etc")), p("etc"));
    }

    #[test]
    fn write_atomic_replaces_keeping_the_mode_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history");
        write_atomic(&path, b"r1\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"r1\n");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        // A leftover of a killed run, read-only: replaced, not in the way.
        let leftover = dir.path().join(".history.tmp");
        fs::write(&leftover, "half").unwrap();
        fs::set_permissions(&leftover, fs::Permissions::from_mode(0o400)).unwrap();
        write_atomic(&path, b"r1\nr2\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"r1\nr2\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["history"]);
        // A hidden file's temp file gets no second dot.
        assert_eq!(
            temp_path(&dir.path().join(".marker")).unwrap(),
            dir.path().join(".marker.tmp")
        );
    }

    #[test]
    fn holds_exactly_compares_the_whole_content_of_a_regular_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app");
        fs::write(&path, "#!/bin/sh\necho app\n").unwrap();
        let holds = |path: &Path, bytes: &[u8]| {
            let meta = path.symlink_metadata().unwrap();
            meta.is_file() && holds_exactly(path, &meta, bytes)
        };
        assert!(holds(&path, b"#!/bin/sh\necho app\n"));
        // A prefix, a longer text, another text of the same length: no.
        assert!(!holds(&path, b"#!/bin/sh\n"));
        assert!(!holds(&path, b"#!/bin/sh\necho app\nmore\n"));
        assert!(!holds(&path, b"#!/bin/sh\necho xyz\n"));
        // An empty file holds the empty text.
        fs::write(&path, "").unwrap();
        assert!(holds(&path, b""));
        // A link to a file with that content is not the file.
        fs::write(dir.path().join("target"), "same").unwrap();
        std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
        assert!(!holds(&dir.path().join("link"), b"same"));
        // Metadata of another file (swapped in since): no.
        let other = dir.path().join("target").symlink_metadata().unwrap();
        fs::write(&path, "same").unwrap();
        assert!(!holds_exactly(&path, &other, b"same"));
    }

    #[test]
    fn write_atomic_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/file");
        let message = write_atomic(&path, b"x").unwrap_err().message().to_owned();
        assert!(
            message.starts_with(&format!("cannot write {}: ", path.display())),
            "{message}"
        );
        let message = write_atomic(Path::new("/"), b"x")
            .unwrap_err()
            .message()
            .to_owned();
        assert_eq!(message, "/ names no file");
    }

    #[test]
    fn write_if_changed_leaves_an_equal_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/app.conf");
        assert!(write_if_changed(&path, b"port = 1\n", Some(0o640)).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"port = 1\n");
        let before = fs::metadata(&path).unwrap();
        assert_eq!(before.mode() & 0o7777, 0o640);

        assert!(!write_if_changed(&path, b"port = 1\n", Some(0o640)).unwrap());
        let after = fs::metadata(&path).unwrap();
        assert_eq!(
            (after.ino(), after.mtime(), after.mtime_nsec()),
            (before.ino(), before.mtime(), before.mtime_nsec())
        );

        // Same content, other mode: the mode is fixed in place.
        assert!(!write_if_changed(&path, b"port = 1\n", Some(0o600)).unwrap());
        let after = fs::metadata(&path).unwrap();
        assert_eq!(after.mode() & 0o7777, 0o600);
        assert_eq!(after.ino(), before.ino());
    }

    #[test]
    fn write_if_changed_repairs_an_edited_file_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.sh");
        assert!(write_if_changed(&path, b"echo hi\n", Some(0o755)).unwrap());
        fs::write(&path, "edited by hand\n").unwrap();
        assert!(write_if_changed(&path, b"echo hi\n", Some(0o755)).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"echo hi\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o755);

        // Without a mode, a rewrite keeps the file's own.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(write_if_changed(&path, b"echo bye\n", None).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o700);
        assert!(!write_if_changed(&path, b"echo bye\n", None).unwrap());
        assert!(!dir.path().join(".run.sh.tmp").exists());
    }

    #[test]
    fn a_link_in_place_of_the_file_is_replaced_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "same\n").unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        let path = dir.path().join("out");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        // Same content as the link's target, another mode: not a chmod through the link.
        assert!(write_if_changed(&path, b"same\n", Some(0o755)).unwrap());
        assert!(!path.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(fs::metadata(&elsewhere).unwrap().mode() & 0o7777, 0o600);
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("history")).unwrap();
        write_atomic(&dir.path().join("history"), b"r1\n").unwrap();
        assert_eq!(fs::read(&elsewhere).unwrap(), b"same\n");
    }

    #[test]
    fn write_if_changed_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should be: the rename fails.
        let path = dir.path().join("out");
        fs::create_dir_all(path.join("inside")).unwrap();
        let message = write_if_changed(&path, b"x", None)
            .unwrap_err()
            .message()
            .to_owned();
        assert!(
            message.starts_with(&format!("cannot write {}: ", path.display())),
            "{message}"
        );
        assert!(!dir.path().join(".out.tmp").exists());
        // A file where a parent folder should be.
        let blocked = dir.path().join("file");
        fs::write(&blocked, "").unwrap();
        let message = write_if_changed(&blocked.join("x"), b"x", None)
            .unwrap_err()
            .message()
            .to_owned();
        assert!(
            message.contains(&blocked.display().to_string()),
            "{message}"
        );
    }
}
