//! The paths parts own: how they are checked when registered, recorded and removed.
//!
//! The rules (SPEC §3, issue 8): a part never owns a path of the engine's (the config and the
//! files it extends, the state file, the lock, the instance's folders, the instance folder
//! and any folder holding one of them) nor a path another part owns; a path with a NUL byte
//! is refused; a path outside the instance may be registered only inside a folder the config
//! allows (`buildout:allow-outside`, the eggs, develop-eggs and download-cache folders), and
//! is never removed. Removal happens only for paths recorded relative to the instance (so
//! inside it when recorded) that are still strictly inside it, both as written and with the
//! symlinks of their parent folders resolved, and that are not the engine's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::ops::Bound;
use std::path::{Component, Path, PathBuf};

/// What happened to one recorded path on removal.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Nothing was there any more.
    Missing,
    /// Outside the instance, or recorded as outside it: left alone (the caller warns).
    Outside,
    /// One of the engine's paths, or a folder holding one: left alone (the caller warns).
    Engine(String),
}

/// Why a registered path is refused; the caller names the part.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The path contains a NUL byte, which no file name can.
    Nul,
    /// The path is one of the engine's (`holds`: a folder holding one of them).
    Engine { what: String, holds: bool },
    /// Outside the instance and outside every folder the config allows.
    Outside,
}

impl Refusal {
    /// The end of "part `p` registered PATH, ...".
    pub fn why(&self, directory: &Path) -> String {
        match self {
            Refusal::Nul => "which contains a NUL byte, so it cannot name a file".to_string(),
            Refusal::Engine { what, holds: false } => {
                format!("which is {what}; a part may own only paths it created, never the engine's")
            }
            Refusal::Engine { what, holds: true } => format!(
                "which holds {what}; a part may own only paths it created, never the engine's"
            ),
            Refusal::Outside => format!(
                "which is outside the instance {}\n\
                 hint: if the part may write there, add its folder to buildout:allow-outside",
                directory.display()
            ),
        }
    }
}

/// Where an accepted registration is.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    Inside,
    /// In an allowed folder outside the instance: recorded, never removed.
    Outside,
}

/// Parent folders already resolved (symlinks followed) during one batch of path checks.
#[derive(Debug, Default)]
pub struct ParentCache(HashMap<OsString, Option<PathBuf>>);

impl ParentCache {
    /// `abs` with the symlinks of its parent folders resolved (the last component is kept as
    /// it is: removing a link removes the link); `None` if the parent does not exist.
    fn real(&mut self, abs: &Path) -> Option<PathBuf> {
        let (parent, name) = (abs.parent()?, abs.file_name()?);
        // Looked up before inserting: a million paths in one folder allocate no key.
        if let Some(real_parent) = self.0.get(parent.as_os_str()) {
            return real_parent.as_ref().map(|p| p.join(name));
        }
        let real_parent = parent.canonicalize().ok();
        let real = real_parent.as_ref().map(|p| p.join(name));
        self.0
            .insert(parent.as_os_str().to_os_string(), real_parent);
        real
    }
}

/// One of the paths the rules compare against: absolute and lexically normalised, with its
/// parent's symlinks resolved (`real`: the path itself may be a link, which is what a removal
/// would remove) and fully resolved (`full`: what paths inside it resolve under).
#[derive(Debug, Clone)]
struct Known {
    lexical: PathBuf,
    real: Option<PathBuf>,
    full: Option<PathBuf>,
}

impl Known {
    fn new(lexical: PathBuf) -> Known {
        Known {
            real: ParentCache::default().real(&lexical),
            full: lexical.canonicalize().ok(),
            lexical,
        }
    }

    /// Whether the path `lexical` (`real` resolved) is this one.
    fn is(&self, lexical: &Path, real: Option<&Path>) -> bool {
        self.lexical == lexical
            || real
                .is_some_and(|r| self.real.as_deref() == Some(r) || self.full.as_deref() == Some(r))
    }

    /// Whether the path `lexical` (`real` resolved) is this one or a folder holding it.
    fn within(&self, lexical: &Path, real: Option<&Path>) -> bool {
        self.lexical.starts_with(lexical)
            || real.is_some_and(|r| {
                self.real.as_ref().is_some_and(|m| m.starts_with(r))
                    || self.full.as_ref().is_some_and(|m| m.starts_with(r))
            })
    }

    /// Whether the path is in this folder (or is it), judged where it really is: with
    /// symlinks resolved when both resolve, else as written. For allowed folders, where a
    /// path through a link to the folder counts and a link from the folder to elsewhere
    /// does not.
    fn keeps(&self, lexical: &Path, real: Option<&Path>) -> bool {
        match (self.full.as_ref().or(self.real.as_ref()), real) {
            (Some(root), Some(p)) => p.starts_with(root),
            _ => lexical.starts_with(&self.lexical),
        }
    }

    /// Whether the path is strictly inside this folder, as written and, when both resolve,
    /// with symlinks resolved.
    fn holds(&self, lexical: &Path, real: Option<&Path>) -> bool {
        let inside = |root: &Path, p: &Path| p != root && p.starts_with(root);
        inside(&self.lexical, lexical)
            && match (self.full.as_ref().or(self.real.as_ref()), real) {
                (Some(root), Some(p)) => inside(root, p),
                _ => true,
            }
    }
}

/// What the engine knows about the folders and files of one instance, for the path rules.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `buildout:directory`, absolute and normalised; relative paths are relative to it.
    directory: PathBuf,
    instance: Known,
    /// The engine's own paths and what each is, the instance directory first.
    engine: Vec<(Known, String)>,
    /// Each form of each engine path and every folder holding one: a path not in it is
    /// none of the engine's, without comparing it with each.
    engine_prefixes: HashSet<OsString>,
    /// Folders outside the instance where parts may register paths.
    allowed: Vec<Known>,
}

/// The instance's paths, as `Roots::new` takes them.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// `buildout:directory`.
    pub directory: PathBuf,
    /// The engine's files and folders with what each is ("the config file").
    pub engine: Vec<(PathBuf, String)>,
    /// `buildout:allow-outside`, the eggs, develop-eggs and download-cache folders.
    pub allowed: Vec<PathBuf>,
}

impl Roots {
    pub fn new(layout: &Layout) -> Roots {
        let directory = normalize(&layout.directory);
        let place = |p: &Path| Known::new(normalize(&directory.join(p)));
        let mut engine = vec![(place(&directory), "the instance directory".to_string())];
        engine.extend(
            layout
                .engine
                .iter()
                .map(|(p, what)| (place(p), what.clone())),
        );
        let mut engine_prefixes = HashSet::new();
        for (known, _) in &engine {
            for form in [
                Some(&known.lexical),
                known.real.as_ref(),
                known.full.as_ref(),
            ] {
                for folder in form.into_iter().flat_map(|f| f.ancestors()) {
                    engine_prefixes.insert(folder.as_os_str().to_os_string());
                }
            }
        }
        Roots {
            instance: place(&directory),
            engine,
            engine_prefixes,
            allowed: layout.allowed.iter().map(|p| place(p)).collect(),
            directory,
        }
    }

    /// The buildout directory these roots are relative to.
    pub fn directory(&self) -> &Path {
        &self.directory
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

    /// The engine's path that `abs` is or holds, if any.
    fn engine_path(&self, abs: &Path, real: Option<&Path>) -> Option<Refusal> {
        let known = |p: &Path| self.engine_prefixes.contains(p.as_os_str());
        if !known(abs) && !real.is_some_and(known) {
            return None;
        }
        self.engine.iter().find_map(|(owned, what)| {
            owned.within(abs, real).then(|| Refusal::Engine {
                what: what.clone(),
                holds: !owned.is(abs, real),
            })
        })
    }

    /// Whether a recipe may register `path`, and where it is.
    pub fn check(&self, path: &Path, cache: &mut ParentCache) -> Result<Place, Refusal> {
        if path.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Refusal::Nul);
        }
        let abs = self.absolute(path);
        let real = cache.real(&abs);
        if let Some(refusal) = self.engine_path(&abs, real.as_deref()) {
            return Err(refusal);
        }
        if self.instance.holds(&abs, real.as_deref()) {
            return Ok(Place::Inside);
        }
        let allowed = self.allowed.iter().any(|a| a.keeps(&abs, real.as_deref()));
        if allowed {
            Ok(Place::Outside)
        } else {
            Err(Refusal::Outside)
        }
    }

    /// Whether the engine may remove `recorded`: recorded relative to the instance (so it was
    /// inside when it was registered, whatever the config says now), still strictly inside
    /// it both as written and once the symlinks of its parent folders are resolved (so
    /// `parts/link/file`, with `link` pointing elsewhere, is outside), and not one of the
    /// engine's paths. The path itself may be a symlink: removing it removes the link.
    fn removable(&self, recorded: &str, cache: &mut ParentCache) -> Result<PathBuf, Removal> {
        let path = Path::new(recorded);
        if path.is_absolute() || recorded.contains('\0') {
            return Err(Removal::Outside);
        }
        let abs = self.absolute(path);
        let real = cache.real(&abs);
        if !self.instance.holds(&abs, real.as_deref()) {
            return Err(Removal::Outside);
        }
        if let Some(Refusal::Engine { what, .. }) = self.engine_path(&abs, real.as_deref()) {
            return Err(Removal::Engine(what));
        }
        Ok(abs)
    }

    /// Removes a recorded path (a file, a symlink or a whole folder) if the rules allow it.
    pub fn remove(&self, recorded: &str, cache: &mut ParentCache) -> std::io::Result<Removal> {
        let abs = match self.removable(recorded, cache) {
            Ok(abs) => abs,
            Err(refused) => return Ok(refused),
        };
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

/// How a registered path meets a path another part owns.
#[derive(Debug, PartialEq, Eq)]
pub enum Overlap {
    Same,
    /// The registered path is inside the other part's path.
    Inside(String),
    /// The registered path is a folder holding the other part's path.
    Holds(String),
}

/// A path another part owns, met by a registration.
#[derive(Debug, PartialEq, Eq)]
pub struct Conflict {
    pub owner: String,
    pub overlap: Overlap,
}

impl Conflict {
    /// The end of "part `p` registered PATH, ...".
    pub fn why(&self) -> String {
        let owner = &self.owner;
        match &self.overlap {
            Overlap::Same => format!("which part `{owner}` owns"),
            Overlap::Inside(other) => {
                format!("which is inside {other}, a path of part `{owner}`")
            }
            Overlap::Holds(other) => format!("which holds {other}, a path of part `{owner}`"),
        }
    }
}

/// How the recorded path `path` meets `other`, a path of another part, if at all.
pub fn overlap(path: &str, other: &str) -> Option<Overlap> {
    let under =
        |a: &str, b: &str| a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'/';
    if path == other {
        Some(Overlap::Same)
    } else if under(path, other) {
        Some(Overlap::Inside(other.to_string()))
    } else if under(other, path) {
        Some(Overlap::Holds(other.to_string()))
    } else {
        None
    }
}

/// The paths the other parts own: looked up in [`Claims`] once made, or scanned when one
/// side is small (a part with a few paths beside one with a million: making the index would
/// cost more than the scan).
pub enum Owners<'a> {
    Index(&'a Claims),
    /// Each other part and its recorded paths.
    Scan(Vec<(&'a str, &'a [String])>),
}

impl Owners<'_> {
    /// The first path of another part than `part` that `recorded` is, is inside, or holds.
    pub fn conflict(&self, part: &str, recorded: &str) -> Option<Conflict> {
        match self {
            Owners::Index(claims) => claims.conflict(part, recorded),
            Owners::Scan(others) => {
                others
                    .iter()
                    .filter(|(owner, _)| *owner != part)
                    .find_map(|(owner, paths)| {
                        paths.iter().find_map(|other| {
                            overlap(recorded, other).map(|overlap| Conflict {
                                owner: owner.to_string(),
                                overlap,
                            })
                        })
                    })
            }
        }
    }
}

/// Which part owns each recorded path, so that a part never registers (or removes) a path
/// of another. Keys are the recorded texts with `/` replaced by NUL (which no recorded path
/// contains), so the keys under a folder sort right after it, contiguously.
#[derive(Debug, Default)]
pub struct Claims {
    owners: BTreeMap<String, u32>,
    parts: Vec<String>,
    index: HashMap<String, u32>,
}

fn key(recorded: &str) -> String {
    recorded.replace('/', "\0")
}

fn unkey(key: &str) -> String {
    key.replace('\0', "/")
}

impl Claims {
    fn part_id(&mut self, part: &str) -> u32 {
        if let Some(id) = self.index.get(part) {
            return *id;
        }
        let id = self.parts.len() as u32;
        self.parts.push(part.to_string());
        self.index.insert(part.to_string(), id);
        id
    }

    /// Records that `part` owns `paths` (recorded texts).
    pub fn add<'p>(&mut self, part: &str, paths: impl IntoIterator<Item = &'p String>) {
        let id = self.part_id(part);
        for p in paths {
            self.owners.entry(key(p)).or_insert(id);
        }
    }

    /// Forgets the paths of `paths` that `part` owns.
    pub fn remove<'p>(&mut self, part: &str, paths: impl IntoIterator<Item = &'p String>) {
        let Some(&id) = self.index.get(part) else {
            return;
        };
        for p in paths {
            let k = key(p);
            if self.owners.get(&k) == Some(&id) {
                self.owners.remove(&k);
            }
        }
    }

    /// The first path of another part than `part` that `recorded` is, is inside, or holds.
    pub fn conflict(&self, part: &str, recorded: &str) -> Option<Conflict> {
        let mine = self.index.get(part).copied();
        let foreign = |id: &u32| Some(*id) != mine;
        let owner = |id: &u32| self.parts[*id as usize].clone();
        let k = key(recorded);
        if let Some(id) = self.owners.get(&k).filter(|id| foreign(id)) {
            return Some(Conflict {
                owner: owner(id),
                overlap: Overlap::Same,
            });
        }
        // Folders holding the path: every prefix ending before a separator.
        for (i, _) in k.match_indices('\0').filter(|(i, _)| *i > 0) {
            if let Some(id) = self.owners.get(&k[..i]).filter(|id| foreign(id)) {
                return Some(Conflict {
                    owner: owner(id),
                    overlap: Overlap::Inside(unkey(&k[..i])),
                });
            }
        }
        // Paths inside it: the keys that start with it and a separator.
        let under = format!("{k}\0");
        self.owners
            .range::<String, _>((Bound::Included(&under), Bound::Unbounded))
            .take_while(|(other, _)| other.starts_with(&under))
            .find(|(_, id)| foreign(id))
            .map(|(other, id)| Conflict {
                owner: owner(id),
                overlap: Overlap::Holds(unkey(other)),
            })
    }
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

    fn roots(inst: &Path, engine: &[(&str, &str)], allowed: &[&Path]) -> Roots {
        Roots::new(&Layout {
            directory: inst.to_path_buf(),
            engine: engine
                .iter()
                .map(|(p, w)| (PathBuf::from(p), w.to_string()))
                .collect(),
            allowed: allowed.iter().map(|p| p.to_path_buf()).collect(),
        })
    }

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(normalize(Path::new("/a/../../x")), Path::new("/x"));
        assert_eq!(normalize(Path::new("a/../../x")), Path::new("../x"));
    }

    #[test]
    fn records_are_relative_inside_and_absolute_outside() {
        let roots = roots(Path::new("/i"), &[], &[]);
        assert_eq!(roots.record(Path::new("parts/a")), "parts/a");
        assert_eq!(roots.record(Path::new("/i/bin/x")), "bin/x");
        assert_eq!(roots.record(Path::new("/other/x")), "/other/x");
        assert_eq!(roots.record(Path::new("../i2/x")), "/i2/x");
        assert_eq!(roots.record(Path::new(".")), "/i");
    }

    #[test]
    fn registrations_of_the_engines_paths_nul_bytes_and_outside_paths_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let inst = base.path().join("inst");
        let shared = base.path().join("shared");
        std::fs::create_dir_all(inst.join("bin")).unwrap();
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(inst.join("buildout.toml"), "").unwrap();
        std::os::unix::fs::symlink(".", inst.join("self")).unwrap();
        std::os::unix::fs::symlink(&shared, inst.join("to-shared")).unwrap();
        std::os::unix::fs::symlink("/", shared.join("to-root")).unwrap();
        let roots = roots(
            &inst,
            &[
                ("buildout.toml", "the config file"),
                ("bin", "buildout:bin-directory"),
            ],
            &[&shared],
        );
        let check = |p: &str| roots.check(Path::new(p), &mut ParentCache::default());
        let engine = |what: &str, holds| {
            Err(Refusal::Engine {
                what: what.into(),
                holds,
            })
        };
        assert_eq!(check("buildout.toml"), engine("the config file", false));
        assert_eq!(
            check("self/buildout.toml"),
            engine("the config file", false)
        );
        assert_eq!(check("bin"), engine("buildout:bin-directory", false));
        assert_eq!(check("."), engine("the instance directory", false));
        assert_eq!(check(".."), engine("the instance directory", true));
        assert_eq!(check("/"), engine("the instance directory", true));
        assert_eq!(check("bin/x"), Ok(Place::Inside));
        assert_eq!(check("parts/x"), Ok(Place::Inside));
        assert_eq!(check("a\0b"), Err(Refusal::Nul));
        assert_eq!(check("../shared/x"), Ok(Place::Outside));
        assert_eq!(check(shared.to_str().unwrap()), Ok(Place::Outside));
        assert_eq!(check("to-shared/x"), Ok(Place::Outside), "really in shared");
        assert_eq!(
            check("../shared/to-root/x"),
            Err(Refusal::Outside),
            "really in /"
        );
        assert_eq!(check("../elsewhere"), Err(Refusal::Outside));
        assert_eq!(check("self/../../elsewhere"), Err(Refusal::Outside));
    }

    #[test]
    fn removal_never_leaves_the_instance_nor_touches_the_engines_paths() {
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
        std::fs::write(inst.join("buildout.toml"), "x").unwrap();
        std::fs::create_dir_all(eggs.join("e-1")).unwrap();
        // The eggs folder, even allowed, is outside: nothing in it is ever removed.
        let roots = roots(&inst, &[("buildout.toml", "the config file")], &[&eggs]);

        let outside_keep = outside.join("keep");
        let egg = eggs.join("e-1");
        for p in [
            outside_keep.to_str().unwrap(),
            "../outside/keep",
            "link/keep",
            ".",
            "..",
            inst.to_str().unwrap(),
            eggs.to_str().unwrap(),
            egg.to_str().unwrap(),
        ] {
            assert_eq!(
                roots.remove(p, &mut ParentCache::default()).unwrap(),
                Removal::Outside,
                "{p}"
            );
        }
        assert_eq!(
            roots
                .remove("buildout.toml", &mut ParentCache::default())
                .unwrap(),
            Removal::Engine("the config file".into())
        );
        assert!(outside.join("keep").exists() && eggs.join("e-1").exists());
        assert!(inst.join("buildout.toml").exists());

        assert_eq!(
            roots.remove("link", &mut ParentCache::default()).unwrap(),
            Removal::Removed
        );
        assert!(
            outside.join("keep").exists(),
            "removing a link keeps its target"
        );
        let mut cache = ParentCache::default();
        assert_eq!(
            roots.remove("parts/a", &mut cache).unwrap(),
            Removal::Removed
        );
        assert!(!inst.join("parts/a").exists());
        assert_eq!(
            roots.remove("parts/a", &mut cache).unwrap(),
            Removal::Missing
        );
    }

    #[test]
    fn claims_find_the_same_path_a_folder_of_it_and_a_path_inside_it() {
        let mut claims = Claims::default();
        let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        claims.add("a", &paths(&["parts/a", "bin/x", "/srv/out"]));
        claims.add("b", &paths(&["parts/b-c"]));
        let owner = |overlap| {
            Some(Conflict {
                owner: "a".into(),
                overlap,
            })
        };
        assert_eq!(claims.conflict("b", "parts/a"), owner(Overlap::Same));
        assert_eq!(
            claims.conflict("b", "parts/a/f"),
            owner(Overlap::Inside("parts/a".into()))
        );
        assert_eq!(
            claims.conflict("b", "bin"),
            owner(Overlap::Holds("bin/x".into()))
        );
        assert_eq!(
            claims.conflict("b", "/srv"),
            owner(Overlap::Holds("/srv/out".into()))
        );
        assert_eq!(claims.conflict("a", "parts/a/f"), None, "its own");
        assert_eq!(claims.conflict("b", "parts/b"), None, "a sibling");
        assert_eq!(claims.conflict("c", "parts/b-c/x").unwrap().owner, "b");
        claims.remove("a", &paths(&["parts/a"]));
        assert_eq!(claims.conflict("b", "parts/a"), None);
        assert_eq!(claims.conflict("b", "bin/x").unwrap().owner, "a");
    }
}
