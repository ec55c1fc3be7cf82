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
use std::path::{Path, PathBuf};

/// The one lexical path normaliser (`..` never climbs above `/`), shared with the config
/// loader and the recipes.
pub use rbuildout_plugin_api::files::normalize;

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
pub struct ParentCache(foldhash::HashMap<OsString, Parent>);

/// One parent folder: where it really is (`None`: it does not exist) and, once asked,
/// whether every path directly in it is plainly inside the instance (see
/// [`Roots::plain_parent`]).
#[derive(Debug)]
struct Parent {
    real: Option<PathBuf>,
    plain: Option<bool>,
}

impl ParentCache {
    /// The entry of `parent`, resolved on first use.
    fn parent(&mut self, parent: &Path) -> &mut Parent {
        // Looked up before inserting: a million paths in one folder allocate no key.
        if !self.0.contains_key(parent.as_os_str()) {
            let entry = Parent {
                real: parent.canonicalize().ok(),
                plain: None,
            };
            self.0.insert(parent.as_os_str().to_os_string(), entry);
        }
        self.0
            .get_mut(parent.as_os_str())
            .expect("the entry was just made")
    }

    /// `abs` with the symlinks of its parent folders resolved (the last component is kept as
    /// it is: removing a link removes the link); `None` if the parent does not exist.
    fn real(&mut self, abs: &Path) -> Option<PathBuf> {
        let (parent, name) = (abs.parent()?, abs.file_name()?);
        self.parent(parent).real.as_ref().map(|p| p.join(name))
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
        self.record_absolute(&self.absolute(path))
    }

    /// [`record`](Roots::record) of a path already made absolute.
    fn record_absolute(&self, abs: &Path) -> String {
        match abs.strip_prefix(&self.directory) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            _ => abs.to_string_lossy().into_owned(),
        }
    }

    /// The index of the first recorded path that is no longer there (a dangling symlink
    /// counts as there), if any: the answer `lstat` of each path would give, found cheaply.
    ///
    /// A no-op run of a part owning a million paths spends most of its time here, so the
    /// paths recorded one after another in the same folder are looked at together: in the
    /// folder opened once, the kernel walks one name per path instead of the whole path
    /// (the folder is opened following symlinks, as the lookup of a whole path follows those
    /// of its parents), and for many paths in one folder (1,024 or more) one reading of
    /// the folder answers for all of them, when the folder is not much larger than the
    /// paths looked for.
    pub fn first_missing(&self, recorded: &[String]) -> Option<usize> {
        let mut start = 0;
        while start < recorded.len() {
            let Some((folder, _)) = plain_split(&recorded[start]) else {
                if self
                    .absolute(Path::new(&recorded[start]))
                    .symlink_metadata()
                    .is_err()
                {
                    return Some(start);
                }
                start += 1;
                continue;
            };
            let run = recorded[start..]
                .iter()
                .take_while(|r| plain_split(r).is_some_and(|(f, _)| f == folder))
                .count();
            let names = recorded[start..start + run]
                .iter()
                .filter_map(|r| plain_split(r).map(|(_, name)| name));
            let folder = self.directory.join(folder);
            if let Some(i) = first_missing_in(&folder, names, run) {
                return Some(start + i);
            }
            start += run;
        }
        None
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

    /// Whether a recipe may register `path`, where it is, and the text the state records
    /// for it ([`record`](Roots::record)).
    pub fn register(
        &self,
        path: &Path,
        cache: &mut ParentCache,
    ) -> Result<(Place, String), Refusal> {
        if path.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Refusal::Nul);
        }
        let abs = self.absolute(path);
        let real = match (abs.parent(), abs.file_name()) {
            (Some(parent), Some(name)) => {
                let entry = cache.parent(parent);
                let plain = *entry
                    .plain
                    .get_or_insert_with(|| self.plain_parent(parent, entry.real.as_deref()));
                if plain {
                    return Ok((Place::Inside, self.record_absolute(&abs)));
                }
                entry.real.as_ref().map(|p| p.join(name))
            }
            _ => None,
        };
        if let Some(refusal) = self.engine_path(&abs, real.as_deref()) {
            return Err(refusal);
        }
        let place = if self.instance.holds(&abs, real.as_deref()) {
            Place::Inside
        } else if self.allowed.iter().any(|a| a.keeps(&abs, real.as_deref())) {
            Place::Outside
        } else {
            return Err(Refusal::Outside);
        };
        Ok((place, self.record_absolute(&abs)))
    }

    /// Whether every path directly in the folder `parent` (`real`: resolved) is plainly
    /// inside the instance: the folder is in the instance (or is it), as written and
    /// resolved, and is none of the engine's paths nor holds one in either form. Then a path
    /// in it is strictly inside the instance both ways and none of the engine's paths (the
    /// folders holding an engine path include the parents of those in it), so the rules
    /// need not look at it again: one answer serves a million paths in one folder.
    fn plain_parent(&self, parent: &Path, real: Option<&Path>) -> bool {
        let engine = |p: &Path| self.engine_prefixes.contains(p.as_os_str());
        let root = self.instance.full.as_ref().or(self.instance.real.as_ref());
        !engine(parent)
            && !real.is_some_and(engine)
            && parent.starts_with(&self.instance.lexical)
            && match (root, real) {
                (Some(root), Some(real)) => real.starts_with(root),
                _ => true,
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

/// How many paths recorded one after another in the same folder make reading the folder
/// cheaper than looking each up.
const LIST_AT_LEAST: usize = 1024;

/// A recorded path that names a file of a folder of the instance as it is, with nothing
/// for the lexical normaliser to do (relative, no empty, `.` or `..` component), split
/// into that folder (`""`: the instance directory) and the name.
fn plain_split(recorded: &str) -> Option<(&str, &str)> {
    let plain = !recorded.is_empty()
        && !recorded.starts_with('/')
        && recorded
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    if !plain {
        return None;
    }
    Some(recorded.rsplit_once('/').unwrap_or(("", recorded)))
}

/// The index of the first of `names` (`count` of them) that is not in `folder`.
fn first_missing_in<'n>(
    folder: &Path,
    names: impl Iterator<Item = &'n str> + Clone,
    count: usize,
) -> Option<usize> {
    let Some(dir) = open_folder(folder) else {
        // Whatever kept the folder from opening, `lstat` says what it says of each path.
        return names
            .into_iter()
            .position(|name| folder.join(name).symlink_metadata().is_err());
    };
    if count >= LIST_AT_LEAST {
        if let Some(missing) = listed(&dir, folder, names.clone(), count) {
            return missing;
        }
    }
    names.into_iter().position(|name| !exists_in(&dir, name))
}

/// The first of `names` that the folder does not list, from one reading of it, if that is
/// worth it and possible: the folder must be searchable (the first name is looked up, as
/// `lstat` of each would need) and not much larger than the names looked for (at most 64
/// bytes of folder per name).
///
/// The names looked for and the names listed are each sorted by a hash of the name (seeded
/// per process), then matched in one merge, each match confirmed by comparing the names:
/// a million random probes into a hash table were most of a no-op run's time.
fn listed<'n>(
    dir: &std::fs::File,
    folder: &Path,
    names: impl Iterator<Item = &'n str>,
    count: usize,
) -> Option<Option<usize>> {
    use std::hash::BuildHasher;
    use std::os::unix::ffi::OsStrExt;
    let size = dir.metadata().ok()?.len();
    if size / 64 > count as u64 {
        return None;
    }
    let names: Vec<&str> = names.collect();
    if !exists_in(dir, names.first()?) {
        return Some(Some(0));
    }
    let seed = foldhash::fast::RandomState::default();
    let mut wanted: Vec<(u64, u32)> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        wanted.push((seed.hash_one(name.as_bytes()), u32::try_from(i).ok()?));
    }
    wanted.sort_unstable();
    // The listed names one after another in `text`, each as (hash, start, end).
    let mut text: Vec<u8> = Vec::new();
    let mut held: Vec<(u64, u32, u32)> = Vec::with_capacity(names.len());
    for entry in std::fs::read_dir(folder).ok()? {
        let name = entry.ok()?.file_name();
        let name = name.as_bytes();
        let start = u32::try_from(text.len()).ok()?;
        text.extend_from_slice(name);
        let end = u32::try_from(text.len()).ok()?;
        held.push((seed.hash_one(name), start, end));
    }
    held.sort_unstable_by_key(|&(hash, _, _)| hash);
    let mut found = vec![false; names.len()];
    let mut next = 0;
    for &(hash, i) in &wanted {
        while next < held.len() && held[next].0 < hash {
            next += 1;
        }
        let name = names[i as usize].as_bytes();
        found[i as usize] = held[next..]
            .iter()
            .take_while(|&&(h, _, _)| h == hash)
            .any(|&(_, start, end)| &text[start as usize..end as usize] == name);
    }
    Some(found.iter().position(|f| !f))
}

/// The folder `path` opened for lookups only (`O_PATH`: no read permission needed, as for
/// a lookup through it), or `None` if it cannot be.
fn open_folder(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .ok()
}

/// Whether `name` (one component) is in the folder `dir`, without following a symlink
/// there; any failure to look counts as absent, as a failing `lstat` does.
fn exists_in(dir: &std::fs::File, name: &str) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is an open descriptor for the duration of the call, `name` is a
    // NUL-terminated string that outlives it, and `stat` is writable memory of the size
    // `fstatat` fills; it is never read.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    rc == 0
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
        std::fs::create_dir_all(inst.join("etc")).unwrap();
        std::fs::write(inst.join("etc/lock"), "").unwrap();
        std::os::unix::fs::symlink(".", inst.join("self")).unwrap();
        std::os::unix::fs::symlink(&shared, inst.join("to-shared")).unwrap();
        std::os::unix::fs::symlink("/", shared.join("to-root")).unwrap();
        let roots = roots(
            &inst,
            &[
                ("buildout.toml", "the config file"),
                ("bin", "buildout:bin-directory"),
                ("etc/lock", "the lock"),
            ],
            &[&shared],
        );
        let batch = std::cell::RefCell::new(ParentCache::default());
        let check = |p: &str| {
            let alone = roots.register(Path::new(p), &mut ParentCache::default());
            // One cache for every registration, as a part's registrations share one, gives
            // the same answers: what it learnt of a folder holds for every path in it.
            let in_batch = roots.register(Path::new(p), &mut batch.borrow_mut());
            assert_eq!(alone, in_batch, "{p}");
            alone.map(|(place, _)| place)
        };
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
        assert_eq!(check("etc/other"), Ok(Place::Inside));
        assert_eq!(check("etc/lock"), engine("the lock", false));
        assert_eq!(check("self/etc/lock"), engine("the lock", false));
        assert_eq!(check("etc"), engine("the lock", true));
        assert_eq!(check("to-shared/y"), Ok(Place::Outside));
        assert_eq!(check("../shared/to-root/y"), Err(Refusal::Outside));
        let mut cache = ParentCache::default();
        assert_eq!(
            roots.register(Path::new("parts/x/../y/"), &mut cache),
            Ok((Place::Inside, "parts/y".to_string()))
        );
        assert_eq!(
            roots.register(&shared.join("z"), &mut cache),
            Ok((Place::Outside, shared.join("z").display().to_string()))
        );
    }

    #[test]
    fn first_missing_answers_as_lstat_of_each_path_would() {
        let inst = tempfile::tempdir().unwrap();
        let inst = inst.path();
        let outside = tempfile::tempdir().unwrap();
        let many = LIST_AT_LEAST + 10;
        std::fs::create_dir_all(inst.join("big")).unwrap();
        std::fs::create_dir_all(inst.join("small")).unwrap();
        for i in 0..many {
            std::fs::write(inst.join(format!("big/{i}")), "").unwrap();
        }
        std::fs::write(inst.join("small/f"), "").unwrap();
        std::fs::write(outside.path().join("o"), "").unwrap();
        std::os::unix::fs::symlink("nowhere", inst.join("small/dangling")).unwrap();
        std::os::unix::fs::symlink(inst.join("big"), inst.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), inst.join("out")).unwrap();
        let roots = roots(inst, &[], &[]);
        let by_lstat = |paths: &[String]| {
            paths
                .iter()
                .position(|p| roots.absolute(Path::new(p)).symlink_metadata().is_err())
        };
        let big = |range: std::ops::Range<usize>, prefix: &str| {
            range.map(|i| format!("{prefix}{i}")).collect::<Vec<_>>()
        };
        let mut cases = vec![
            big(0..many, "big/"),
            big(0..many, "link/"),
            big(0..many + 1, "big/"),
            big(0..3, "big/"),
            vec!["small/f".into(), "small/dangling".into(), "small/g".into()],
            vec!["out/o".into(), "out/p".into()],
            vec![
                "small/../big/0".into(),
                "./small/f".into(),
                "small//f".into(),
            ],
            vec![
                inst.join("small/f").display().to_string(),
                "nosuch/x".into(),
            ],
            vec!["small".into(), "small/f/x".into()],
            vec![
                "big/1".into(),
                "big/1".into(),
                "small/f".into(),
                "big/2".into(),
            ],
        ];
        // A path missing in the middle of a folder read whole, recorded twice.
        let mut gap = big(0..many, "big/");
        gap.insert(500, "big/gone".into());
        gap.insert(700, "big/gone".into());
        cases.push(gap);
        for paths in &cases {
            assert_eq!(
                roots.first_missing(paths),
                by_lstat(paths),
                "{:?}",
                &paths[..paths.len().min(4)]
            );
        }
        assert_eq!(roots.first_missing(&cases[2]), Some(many));
        assert_eq!(roots.first_missing(&cases[4]), Some(2));
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
