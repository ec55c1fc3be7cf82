//! The paths parts own: how they are recorded, checked and removed, and the rule that the
//! engine never removes anything outside the instance (or the shared eggs and cache folders).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// What happened to one recorded path on removal.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Nothing was there any more.
    Missing,
    /// Outside every folder the engine may remove from: left alone (the caller warns).
    Outside,
}

/// Parent folders already resolved (symlinks followed) during one batch of path checks.
#[derive(Debug, Default)]
pub struct ParentCache(HashMap<PathBuf, Option<PathBuf>>);

/// The folders inside which the engine may remove paths.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `buildout:directory`, absolute; relative paths are relative to it.
    directory: PathBuf,
    /// Every root (the directory first), lexically normalised.
    lexical: Vec<PathBuf>,
    /// The same roots with symlinks resolved, for those that exist.
    canonical: Vec<PathBuf>,
}

impl Roots {
    /// `directory` is `buildout:directory`; `shared` are the eggs and download-cache folders.
    pub fn new(directory: &Path, shared: &[PathBuf]) -> Roots {
        let directory = normalize(directory);
        let mut lexical = vec![directory.clone()];
        for s in shared {
            let s = normalize(&directory.join(s));
            if !lexical.contains(&s) {
                lexical.push(s);
            }
        }
        let canonical = lexical
            .iter()
            .filter_map(|r| r.canonicalize().ok())
            .collect();
        Roots {
            directory,
            lexical,
            canonical,
        }
    }

    /// The absolute, lexically normalised form of a path as a recipe gave it or as recorded.
    pub fn absolute(&self, path: &Path) -> PathBuf {
        normalize(&self.directory.join(path))
    }

    /// The text recorded in the state: relative to the buildout directory when inside it (so
    /// the state reads well and survives nothing surprising), else absolute.
    pub fn record(&self, path: &Path) -> String {
        let abs = self.absolute(path);
        match abs.strip_prefix(&self.directory) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            _ => abs.to_string_lossy().into_owned(),
        }
    }

    /// Whether a recorded path is still there (a dangling symlink counts as there).
    pub fn exists(&self, recorded: &str) -> bool {
        self.absolute(Path::new(recorded))
            .symlink_metadata()
            .is_ok()
    }

    /// Whether the engine may remove `path`: strictly inside a root, both as written and
    /// once the symlinks of its parent folders are resolved (so `parts/link/file`, with
    /// `link` pointing elsewhere, is outside). The path itself may be a symlink: removing it
    /// removes the link, not its target.
    pub fn contains(&self, path: &Path) -> bool {
        self.contains_with(path, &mut ParentCache::default())
    }

    /// [`contains`](Roots::contains), resolving each parent folder once per `cache`: a
    /// recipe may register a million files in a few folders. A cache must not outlive the
    /// batch of paths it serves, since folders and links change between batches.
    pub fn contains_with(&self, path: &Path, cache: &mut ParentCache) -> bool {
        let abs = self.absolute(path);
        let inside = |roots: &[PathBuf], p: &Path| roots.iter().any(|r| p != r && p.starts_with(r));
        if !inside(&self.lexical, &abs) {
            return false;
        }
        let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
            return false;
        };
        let real_parent = cache
            .0
            .entry(parent.to_path_buf())
            .or_insert_with(|| parent.canonicalize().ok());
        match real_parent {
            Some(real_parent) => inside(&self.canonical, &real_parent.join(name)),
            // No parent folder, so nothing to remove and nothing outside to harm.
            None => true,
        }
    }

    /// Removes a recorded path (a file, a symlink or a whole folder) if it is inside a root.
    pub fn remove(&self, recorded: &str, cache: &mut ParentCache) -> std::io::Result<Removal> {
        let path = Path::new(recorded);
        if !self.contains_with(path, cache) {
            return Ok(Removal::Outside);
        }
        let abs = self.absolute(path);
        let meta = match abs.symlink_metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Missing),
            Err(e) => return Err(with_path(e, &abs)),
        };
        let result = if meta.is_dir() {
            std::fs::remove_dir_all(&abs)
        } else {
            std::fs::remove_file(&abs)
        };
        match result {
            Ok(()) => Ok(Removal::Removed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Removal::Missing),
            Err(e) => Err(with_path(e, &abs)),
        }
    }
}

fn with_path(e: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot remove {}: {e}", path.display()))
}

/// Resolves `.` and `..` without touching the disk; `..` never climbs above the root.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(normalize(Path::new("/a/../../x")), Path::new("/x"));
        assert_eq!(normalize(Path::new("a/../../x")), Path::new("../x"));
    }

    #[test]
    fn records_are_relative_inside_and_absolute_outside() {
        let roots = Roots::new(Path::new("/i"), &[]);
        assert_eq!(roots.record(Path::new("parts/a")), "parts/a");
        assert_eq!(roots.record(Path::new("/i/bin/x")), "bin/x");
        assert_eq!(roots.record(Path::new("/other/x")), "/other/x");
        assert_eq!(roots.record(Path::new("../i2/x")), "/i2/x");
        assert_eq!(roots.record(Path::new(".")), "/i");
    }

    #[test]
    fn removal_never_leaves_the_roots() {
        let base = tempfile::tempdir().unwrap();
        let inst = base.path().join("inst");
        let eggs = base.path().join("eggs");
        let outside = base.path().join("outside");
        for d in [&inst, &eggs, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, inst.join("link")).unwrap();
        std::fs::create_dir_all(inst.join("parts/a")).unwrap();
        std::fs::write(inst.join("parts/a/f"), "x").unwrap();
        std::fs::create_dir_all(eggs.join("e-1")).unwrap();
        let roots = Roots::new(&inst, std::slice::from_ref(&eggs));

        let outside_keep = outside.join("keep");
        for p in [
            outside_keep.to_str().unwrap(),
            "../outside/keep",
            "link/keep",
            ".",
            inst.to_str().unwrap(),
            eggs.to_str().unwrap(),
        ] {
            assert_eq!(
                roots.remove(p, &mut ParentCache::default()).unwrap(),
                Removal::Outside,
                "{p}"
            );
        }
        assert!(outside.join("keep").exists());
        assert!(inst.exists() && eggs.exists());

        assert_eq!(
            roots.remove("link", &mut ParentCache::default()).unwrap(),
            Removal::Removed
        );
        assert!(
            outside.join("keep").exists(),
            "removing a link keeps its target"
        );
        assert_eq!(
            roots
                .remove("parts/a", &mut ParentCache::default())
                .unwrap(),
            Removal::Removed
        );
        assert!(!inst.join("parts/a").exists());
        assert_eq!(
            roots
                .remove("parts/a", &mut ParentCache::default())
                .unwrap(),
            Removal::Missing
        );
        assert_eq!(
            roots
                .remove(
                    eggs.join("e-1").to_str().unwrap(),
                    &mut ParentCache::default()
                )
                .unwrap(),
            Removal::Removed
        );
    }
}
