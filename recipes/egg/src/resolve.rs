//! Resolution with PubGrub: PEP 440 ranges, PEP 508 markers evaluated for the target
//! interpreter, extras as virtual packages, `Requires-Python`, pins from `[versions]`,
//! yanked files only for `==` pins, pre-releases only when asked for or when nothing else
//! matches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::rc::Rc;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider,
    PackageResolutionStatistics, PubGrubError, Ranges, Reporter,
};
use rbuildout_plugin_api::{Error, Result};

use crate::build::Builder;
use crate::develop::DevelopDist;
use crate::http::Client;
use crate::index::{DistFile, Finder, Kind};
use crate::interp::Interpreter;
use crate::metadata::{self, Metadata};
use crate::store::Store;
use crate::util::{same_project, sha256_hex};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pkg {
    Root,
    Dist(String),
    Extra(String, String),
}

/// Requests in flight at once when prefetching.
const PARALLEL: usize = 8;

const ROOT: &str = "⟨requirements⟩";

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str(ROOT),
            Pkg::Dist(n) => f.write_str(n),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

#[derive(Debug)]
pub struct ResolveError(String);

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResolveError {}

/// One version of a project and the file that would be installed for it.
struct Candidate {
    version: Version,
    /// The best file that is not yanked.
    file: Option<DistFile>,
    /// The best file including yanked ones (used for `==` pins only).
    any: Option<DistFile>,
}

/// A pin from `[versions]`: its text and the range it allows.
type Pin = Option<(String, Ranges<Version>)>;

/// What a resolution chose: per project its version and file.
pub struct Chosen {
    pub name: String,
    pub version: Version,
    pub file: DistFile,
}

pub struct Resolver<'a> {
    pub sources: Sources<'a>,
    pub prereleases: bool,
    pin_lookup: &'a dyn Fn(&str) -> Option<String>,
    pins: RefCell<HashMap<String, Pin>>,
    candidates: RefCell<HashMap<String, Rc<Vec<Candidate>>>>,
    metadata: RefCell<HashMap<(String, Version), Rc<Metadata>>>,
    chosen: RefCell<HashMap<(String, Version), DistFile>>,
    root: Vec<Requirement>,
    /// Whether the user asked to stop (Ctrl-C).
    pub cancelled: &'a dyn Fn() -> bool,
    /// The develop distributions: each the one candidate for its name, never the index's.
    pub develop: &'a [DevelopDist],
    /// Told each version the resolver decides on (with the file it would install), before
    /// its dependencies are asked for: the installer starts on it while resolution goes on.
    pub decided: &'a dyn Fn(&str, &DistFile),
}

/// Where a [`Resolver`] finds distributions and their metadata, for which interpreter.
pub struct Sources<'a> {
    pub finder: &'a Finder<'a>,
    pub store: &'a Store<'a>,
    pub client: Option<&'a Client>,
    pub interp: &'a Interpreter,
    pub builder: &'a Builder<'a>,
}

/// Parses a `[versions]` value: a bare version means `==`.
pub fn parse_pin(text: &str) -> std::result::Result<Ranges<Version>, String> {
    let t = text.trim();
    let spec = if t.starts_with(['=', '<', '>', '!', '~']) {
        t.to_owned()
    } else {
        format!("=={t}")
    };
    VersionSpecifiers::from_str(&spec)
        .map(Ranges::from)
        .map_err(|e| e.to_string())
}

fn requires_python_ok(spec: Option<&str>, python: &Version) -> bool {
    match spec {
        None => true,
        Some(s) => VersionSpecifiers::from_str(s).map_or(true, |v| v.contains(python)),
    }
}

impl<'a> Resolver<'a> {
    pub fn new(
        sources: Sources<'a>,
        prereleases: bool,
        pin_lookup: &'a dyn Fn(&str) -> Option<String>,
        root: Vec<Requirement>,
    ) -> Resolver<'a> {
        Resolver {
            sources,
            prereleases,
            pin_lookup,
            pins: RefCell::new(HashMap::new()),
            candidates: RefCell::new(HashMap::new()),
            metadata: RefCell::new(HashMap::new()),
            chosen: RefCell::new(HashMap::new()),
            root,
            cancelled: &|| false,
            develop: &[],
            decided: &|_, _| {},
        }
    }

    /// The pin of `name` (normalised), looked up once.
    pub fn pin(&self, name: &str) -> std::result::Result<Pin, ResolveError> {
        if let Some(p) = self.pins.borrow().get(name) {
            return Ok(p.clone());
        }
        let pin = match (self.pin_lookup)(name) {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => {
                let r = parse_pin(&text).map_err(|e| {
                    ResolveError(format!("bad pin `{name} = {text}` in [versions]: {e}"))
                })?;
                Some((text.trim().to_owned(), r))
            }
        };
        self.pins.borrow_mut().insert(name.to_owned(), pin.clone());
        Ok(pin)
    }

    fn best_file<'f>(&self, files: impl Iterator<Item = &'f DistFile>) -> Option<DistFile> {
        let mut best: Option<(usize, &DistFile)> = None;
        for f in files {
            if !requires_python_ok(
                f.requires_python.as_deref(),
                &self.sources.interp.python_version,
            ) {
                continue;
            }
            let rank = match &f.kind {
                Kind::Wheel { py, abi, plat } => match self.sources.interp.rank(py, abi, plat) {
                    Some(r) => r,
                    None => continue,
                },
                // Sdists rank after every wheel; `.tar.gz` before `.zip`.
                Kind::Sdist => usize::MAX - usize::from(f.filename.ends_with(".zip")),
            };
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, f));
            }
        }
        best.map(|(_, f)| f.clone())
    }

    fn candidates(&self, name: &str) -> std::result::Result<Rc<Vec<Candidate>>, ResolveError> {
        if let Some(c) = self.candidates.borrow().get(name) {
            return Ok(c.clone());
        }
        let files = self
            .sources
            .finder
            .files(name)
            .map_err(|e| ResolveError(e.to_string()))?;
        if files.is_empty() {
            return Err(ResolveError(format!(
                "no distribution named `{name}` was found (looked in {})",
                self.sources.finder.describe(name)
            )));
        }
        let mut by_version: HashMap<&Version, Vec<&DistFile>> = HashMap::new();
        for f in files.iter() {
            by_version.entry(&f.version).or_default().push(f);
        }
        let mut out: Vec<Candidate> = by_version
            .into_iter()
            .map(|(v, fs)| Candidate {
                version: v.clone(),
                file: self.best_file(fs.iter().copied().filter(|f| !f.yanked)),
                any: self.best_file(fs.iter().copied()),
            })
            .filter(|c| c.any.is_some())
            .collect();
        out.sort_by(|a, b| b.version.cmp(&a.version));
        let rc = Rc::new(out);
        self.candidates
            .borrow_mut()
            .insert(name.to_owned(), rc.clone());
        Ok(rc)
    }

    fn develop_dist(&self, name: &str) -> Option<&DevelopDist> {
        self.develop.iter().find(|d| d.name == name)
    }

    fn choose(
        &self,
        name: &str,
        range: &Ranges<Version>,
    ) -> std::result::Result<Option<Version>, ResolveError> {
        // A develop distribution is the only candidate: no index, no pins (docs/develop.md).
        if let Some(d) = self.develop_dist(name) {
            if !range.contains(&d.version) {
                return Ok(None);
            }
            let file = DistFile {
                filename: format!("{}-{} (develop)", d.name, d.version),
                url: format!("develop:{}", d.folder.display()),
                sha256: Some(d.inputs.clone()),
                requires_python: d.metadata.requires_python.clone(),
                yanked: false,
                metadata: None,
                version: d.version.clone(),
                kind: Kind::Sdist,
            };
            self.chosen
                .borrow_mut()
                .insert((name.to_owned(), d.version.clone()), file);
            return Ok(Some(d.version.clone()));
        }
        let cands = self.candidates(name)?;
        let pin = self.pin(name)?;
        let singleton = range.as_singleton().is_some()
            || pin
                .as_ref()
                .is_some_and(|(_, r)| r.as_singleton().is_some());
        let allowed = |c: &&Candidate| {
            range.contains(&c.version) && pin.as_ref().is_none_or(|(_, r)| r.contains(&c.version))
        };
        let file_of = |c: &Candidate| {
            if singleton {
                c.file.clone().or_else(|| c.any.clone())
            } else {
                c.file.clone()
            }
        };
        let pre_ok = self.prereleases
            || pin.as_ref().is_some_and(|(t, _)| {
                parse_pin(t).is_ok() && t.chars().any(|ch| ch.is_ascii_alphabetic())
            });
        let pick = |allow_pre: bool| {
            cands
                .iter()
                .filter(allowed)
                .filter(|c| allow_pre || !c.version.any_prerelease())
                .find_map(|c| file_of(c).map(|f| (c.version.clone(), f)))
        };
        // Pre-releases only when asked for, or when nothing else fits (as `packaging` does).
        let found = pick(pre_ok).or_else(|| if pre_ok { None } else { pick(true) });
        Ok(found.map(|(v, f)| {
            self.chosen
                .borrow_mut()
                .insert((name.to_owned(), v.clone()), f);
            v
        }))
    }

    fn metadata_of(&self, name: &str, version: &Version) -> Result<Rc<Metadata>> {
        let key = (name.to_owned(), version.clone());
        if let Some(m) = self.metadata.borrow().get(&key) {
            return Ok(m.clone());
        }
        if let Some(d) = self.develop_dist(name) {
            return Ok(Rc::new(d.metadata.clone()));
        }
        let file =
            self.chosen.borrow().get(&key).cloned().ok_or_else(|| {
                Error::new(format!("internal: no file chosen for {name} {version}"))
            })?;
        let m = Rc::new(read_metadata(
            self.sources.store,
            self.sources.client,
            self.sources.builder,
            &file,
        )?);
        self.metadata.borrow_mut().insert(key, m.clone());
        Ok(m)
    }

    /// Reads, in parallel, the index pages of the projects in `list` not seen yet, then the
    /// metadata of the wheel each would get, then (level by level) the same for their
    /// dependencies: PubGrub asks for them one at a time, and each is a round trip.
    fn prefetch(&self, list: &[(Pkg, Ranges<Version>)]) {
        let names: Vec<&String> = list
            .iter()
            .filter_map(|(p, _)| match p {
                Pkg::Dist(n) => Some(n),
                _ => None,
            })
            .filter(|n| !self.candidates.borrow().contains_key(*n))
            .filter(|n| self.develop_dist(n).is_none())
            .collect();
        if names.len() > 1 {
            let finder = self.sources.finder;
            std::thread::scope(|s| {
                for chunk in names.chunks(names.len().div_ceil(PARALLEL)) {
                    s.spawn(move || {
                        for n in chunk {
                            let _ = finder.files(n);
                        }
                    });
                }
            });
        }
        let mut jobs = Vec::new();
        for (p, r) in list {
            let Pkg::Dist(n) = p else { continue };
            let Ok(Some(v)) = self.choose(n, r) else {
                continue;
            };
            let key = (n.clone(), v);
            if self.metadata.borrow().contains_key(&key) {
                continue;
            }
            if let Some(f) = self.chosen.borrow().get(&key)
                && matches!(f.kind, Kind::Wheel { .. })
            {
                // Most likely the version the resolver will decide on: its install starts.
                (self.decided)(n, f);
                jobs.push((key, f.clone()));
            }
        }
        if jobs.len() < 2 {
            return;
        }
        let (store, client, builder) = (
            self.sources.store,
            self.sources.client,
            self.sources.builder,
        );
        let results: Vec<((String, Version), Metadata)> = std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .chunks(jobs.len().div_ceil(PARALLEL))
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .filter_map(|(k, f)| {
                                read_metadata(store, client, builder, f)
                                    .ok()
                                    .map(|m| (k.clone(), m))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        // The next level at once: the dependencies of what was just read, not seen yet
        // (the resolver would otherwise ask for them one package at a time).
        let mut next: Vec<(Pkg, Ranges<Version>)> = Vec::new();
        {
            let mut cache = self.metadata.borrow_mut();
            for (k, m) in results {
                if let Ok(deps) = self.deps(&m.requires_dist, None) {
                    next.extend(deps.into_iter().filter(|(p, _)| {
                        matches!(p, Pkg::Dist(n) if !self.candidates.borrow().contains_key(n))
                    }));
                }
                cache.entry(k).or_insert_with(|| Rc::new(m));
            }
        }
        if !next.is_empty() && !(self.cancelled)() {
            self.prefetch(&next);
        }
    }

    /// Dependencies of `name` at `version` for the given extra (`None`: the base).
    fn deps(
        &self,
        reqs: &[String],
        extra: Option<&str>,
    ) -> std::result::Result<Vec<(Pkg, Ranges<Version>)>, String> {
        let extras: Vec<ExtraName> = extra
            .and_then(|e| ExtraName::from_str(e).ok())
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for line in reqs {
            let req = Requirement::<pep508_rs::VerbatimUrl>::from_str(line)
                .map_err(|e| format!("bad requirement `{line}`: {e}"))?;
            if !req.evaluate_markers(&self.sources.interp.markers, &extras) {
                continue;
            }
            out.extend(edges(&req)?);
        }
        Ok(out)
    }

    /// Runs the resolution.
    pub fn resolve(&self) -> Result<Vec<Chosen>> {
        match pubgrub::resolve(self, Pkg::Root, Version::new([0])) {
            Ok(sel) => {
                let mut out = Vec::new();
                for (p, v) in sel.iter() {
                    if let Pkg::Dist(n) = p {
                        let file = self
                            .chosen
                            .borrow()
                            .get(&(n.clone(), v.clone()))
                            .cloned()
                            .ok_or_else(|| Error::new(format!("internal: no file for {n} {v}")))?;
                        out.push(Chosen {
                            name: n.clone(),
                            version: v.clone(),
                            file,
                        });
                    }
                }
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(out)
            }
            Err(PubGrubError::NoSolution(tree)) => {
                let report = DefaultStringReporter::report(&tree)
                    .replace(&format!("{ROOT} 0"), "option `eggs`")
                    .replace(ROOT, "option `eggs`")
                    .replace(
                        "option `eggs` is forbidden",
                        "no set of versions satisfies option `eggs`",
                    );
                let pins: Vec<String> = self
                    .pins
                    .borrow()
                    .iter()
                    .filter_map(|(n, p)| p.as_ref().map(|(t, _)| format!("{n} = {t}")))
                    .collect();
                let mut msg = format!("the requirements cannot be satisfied:\n{report}");
                if !pins.is_empty() {
                    let mut pins = pins;
                    pins.sort();
                    msg.push_str(&format!(
                        "\nnote: pins in [versions] allow only these versions: {}",
                        pins.join(", ")
                    ));
                }
                msg.push_str(
                    "\nchange the requirements in `eggs`, or the pins in [versions], so they agree",
                );
                Err(Error::new(msg))
            }
            Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
            | Err(PubGrubError::ErrorChoosingVersion { source, .. }) => Err(Error::new(source.0)),
            Err(PubGrubError::ErrorInShouldCancel(e)) => Err(Error::new(e.0)),
        }
    }
}

/// The PubGrub edges of one requirement: the project, and one virtual package per extra.
pub fn edges(req: &Requirement) -> std::result::Result<Vec<(Pkg, Ranges<Version>)>, String> {
    let name = req.name.to_string();
    let range = match &req.version_or_url {
        None => Ranges::full(),
        Some(VersionOrUrl::VersionSpecifier(s)) => Ranges::from(s.clone()),
        Some(VersionOrUrl::Url(u)) => {
            return Err(format!(
                "`{} @ {u}`: direct URL requirements are not supported; use find-links",
                req.name
            ));
        }
    };
    let mut out = vec![(Pkg::Dist(name.clone()), range.clone())];
    for e in &req.extras {
        out.push((Pkg::Extra(name.clone(), e.to_string()), range.clone()));
    }
    Ok(out)
}

/// The core metadata of `file`: PEP 658 when advertised, else from the wheel (or the wheel
/// built from the sdist); cached by the file's hash.
fn read_metadata(
    store: &Store,
    client: Option<&Client>,
    builder: &Builder,
    file: &DistFile,
) -> Result<Metadata> {
    // An egg found offline in the eggs folder: its own metadata.
    if let Some(p) = file.url.strip_prefix("file://") {
        let dir = std::path::PathBuf::from(crate::http::percent_decode(p));
        if dir.is_dir() {
            return egg_metadata(&dir, &file.filename).map(|t| metadata::parse(&t));
        }
    }
    // Cached by the distribution's hash when known.
    let cache = file
        .sha256
        .as_ref()
        .map(|s| store.root.join("metadata").join(format!("{s}.metadata")));
    if let Some(c) = &cache
        && let Ok(text) = std::fs::read_to_string(c)
    {
        return Ok(metadata::parse(&text));
    }
    let (text, checked_name) = match (&file.kind, &file.metadata, client) {
        (Kind::Wheel { .. }, Some(hash), Some(client)) if !file.url.starts_with("file:") => {
            let url = format!("{}.metadata", file.url);
            let answer = client
                .get(&url, None)?
                .ok_or_else(|| Error::new(format!("{url} was advertised but not found (404)")))?;
            if let Some(h) = hash
                && *h != sha256_hex(&answer.body)
            {
                return Err(Error::new(format!("sha256 mismatch for {url}; refused")));
            }
            (
                String::from_utf8_lossy(&answer.body).into_owned(),
                file.filename.clone(),
            )
        }
        (Kind::Wheel { .. }, _, _) => {
            let (path, _) = store.fetch(&file.url, &file.filename, file.sha256.as_deref())?;
            (
                wheel_metadata(&path, &file.filename)?,
                file.filename.clone(),
            )
        }
        (Kind::Sdist, _, _) => {
            let (path, sha) = store.fetch(&file.url, &file.filename, file.sha256.as_deref())?;
            let wheel = builder.build(&path, &sha)?;
            let name = wheel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (wheel_metadata(&wheel, &name)?, name)
        }
    };
    crate::metadata::check_names(&text, &checked_name)
        .map_err(|why| Error::new(format!("{checked_name} refused: {why}")))?;
    if let Some(c) = &cache {
        let _ = crate::util::write_atomic(c, text.as_bytes());
    }
    Ok(metadata::parse(&text))
}

/// `METADATA` of an unpacked egg folder.
fn egg_metadata(dir: &std::path::Path, filename: &str) -> Result<String> {
    let wanted = filename.split('-').next().unwrap_or("");
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", dir.display())))?;
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".dist-info")
            && same_project(stem.split('-').next().unwrap_or(""), wanted)
        {
            let path = entry.path().join("METADATA");
            return std::fs::read_to_string(&path)
                .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())));
        }
    }
    Err(Error::new(format!(
        "{} has no .dist-info folder",
        dir.display()
    )))
}

/// `METADATA` of a wheel file.
pub fn wheel_metadata(path: &std::path::Path, filename: &str) -> Result<String> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| Error::new(format!("{filename} is not a valid wheel: {e}")))?;
    let wanted = filename.split('-').next().unwrap_or("");
    let name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|c| c.into_owned()))
        .find(|n| {
            n.ends_with(".dist-info/METADATA")
                && n.matches('/').count() == 1
                && same_project(n.split('-').next().unwrap_or(""), wanted)
        })
        .ok_or_else(|| Error::new(format!("{filename} has no .dist-info/METADATA")))?;
    let mut text = String::new();
    let limit = crate::install::MAX_IN_MEMORY;
    zip.by_name(&name)
        .map_err(|e| Error::new(format!("{filename}: {e}")))?
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::new(format!("{filename}: {name}: {e}")))?;
    if text.len() as u64 > limit {
        return Err(Error::new(format!(
            "{filename} refused: its {name} is larger than {limit} bytes"
        )));
    }
    Ok(text)
}

impl DependencyProvider for Resolver<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = ResolveError;
    type Priority = (u32, u32);

    fn prioritize(
        &self,
        _package: &Pkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> (u32, u32) {
        (
            u32::from(range.as_singleton().is_some()),
            stats.conflict_count(),
        )
    }

    fn should_cancel(&self) -> std::result::Result<(), ResolveError> {
        if (self.cancelled)() {
            return Err(ResolveError("cancelled".into()));
        }
        Ok(())
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> std::result::Result<Option<Version>, ResolveError> {
        match package {
            Pkg::Root => Ok(Some(Version::new([0]))),
            Pkg::Dist(n) | Pkg::Extra(n, _) => self.choose(n, range),
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> std::result::Result<Dependencies<Pkg, Ranges<Version>, String>, ResolveError> {
        let edges_of = |list: Vec<(Pkg, Ranges<Version>)>| {
            let mut merged: Vec<(Pkg, Ranges<Version>)> = Vec::new();
            for (p, r) in list {
                if p == *package {
                    continue;
                }
                match merged.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, existing)) => *existing = existing.intersection(&r),
                    None => merged.push((p, r)),
                }
            }
            Dependencies::Available(DependencyConstraints::from_iter(merged))
        };
        match package {
            Pkg::Root => {
                let mut list: Vec<(Pkg, Ranges<Version>)> = Vec::new();
                for req in &self.root {
                    for (p, r) in edges(req).map_err(ResolveError)? {
                        if let Some((_, other)) = list.iter().find(|(q, _)| *q == p)
                            && other.intersection(&r) == Ranges::empty()
                        {
                            return Err(ResolveError(format!(
                                "option `eggs` asks for incompatible versions of {p}: {other} and {r}"
                            )));
                        }
                        list.push((p, r));
                    }
                }
                self.prefetch(&list);
                Ok(edges_of(list))
            }
            Pkg::Dist(n) | Pkg::Extra(n, _) => {
                if matches!(package, Pkg::Dist(_)) {
                    let file = self
                        .chosen
                        .borrow()
                        .get(&(n.clone(), version.clone()))
                        .cloned();
                    if let Some(f) = file {
                        (self.decided)(n, &f);
                    }
                }
                let meta = self
                    .metadata_of(n, version)
                    .map_err(|e| ResolveError(e.message().to_owned()))?;
                if !requires_python_ok(
                    meta.requires_python.as_deref(),
                    &self.sources.interp.python_version,
                ) {
                    return Ok(Dependencies::Unavailable(format!(
                        "requires Python {}",
                        meta.requires_python.as_deref().unwrap_or("")
                    )));
                }
                let extra = match package {
                    Pkg::Extra(_, e) => Some(e.as_str()),
                    _ => None,
                };
                let mut list = match self.deps(&meta.requires_dist, extra) {
                    Ok(l) => l,
                    Err(why) => return Ok(Dependencies::Unavailable(why)),
                };
                if extra.is_some() {
                    list.push((Pkg::Dist(n.clone()), Ranges::singleton(version.clone())));
                }
                self.prefetch(&list);
                Ok(edges_of(list))
            }
        }
    }
}
