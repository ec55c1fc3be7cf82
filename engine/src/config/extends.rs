//! Reading a config file and the files it `extends` (paths relative to the extending file,
//! or http(s) URLs kept in `download-cache/extends`), flattened into the list of results
//! zc.buildout merges in order.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::Format;
use super::condition::Env;
use super::diag::{Diagnostic, ErrorKind, Files, Span};
use super::limits::{self, Limits};
use super::model::{Sections, Value};

/// Where a config file lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    Path(PathBuf),
    Url(String),
}

impl Location {
    fn format(&self) -> Format {
        let name = match self {
            Location::Path(p) => p.to_string_lossy().into_owned(),
            Location::Url(u) => u.split(['?', '#']).next().unwrap_or(u).to_owned(),
        };
        if name.ends_with(".toml") {
            Format::Toml
        } else {
            Format::Cfg
        }
    }

    fn display(&self, cwd: &Path) -> String {
        match self {
            Location::Url(u) => u.clone(),
            Location::Path(p) => match p.strip_prefix(cwd) {
                Ok(rel) => rel.display().to_string(),
                Err(_) => p.display().to_string(),
            },
        }
    }
}

/// zc.buildout's `_isurl`: a scheme followed by `://`.
pub fn is_url(s: &str) -> bool {
    match s.find("://") {
        Some(i) if i > 0 => s[..i]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)),
        _ => false,
    }
}

/// Reads files for one load; collects every error it can and keeps going.
pub struct Loader<'a> {
    pub files: &'a mut Files,
    pub env: &'a Env,
    pub cwd: PathBuf,
    pub offline: bool,
    /// Where downloaded extends are kept; `None` until known.
    pub cache: Option<PathBuf>,
    /// Apply each file once, at its first place (TOML); `.cfg` re-applies.
    pub once: bool,
    pub errors: Vec<Diagnostic>,
    /// Local folder of each file id, for paths relative to the file that set them.
    pub file_dirs: Vec<Option<PathBuf>>,
    applied: HashSet<Location>,
    /// Set by the root file's `[buildout] download-cache`, if any.
    pub root_download_cache: Option<(String, PathBuf)>,
    /// How large a file may be.
    pub limits: Limits,
    /// The file id of each location already read: a `.cfg` file extended from several
    /// places is read and stored once (and its errors, at the same spans, reported once).
    read: HashMap<Location, u32>,
    /// Bytes of config text parsed so far (a file applied twice counts twice), within
    /// [`Limits::expanded`], and whether that was exceeded (reported once).
    pub parsed: u64,
    over_budget: bool,
}

impl<'a> Loader<'a> {
    pub fn new(
        files: &'a mut Files,
        env: &'a Env,
        cwd: PathBuf,
        offline: bool,
        once: bool,
    ) -> Loader<'a> {
        Loader {
            files,
            env,
            cwd,
            offline,
            cache: None,
            once,
            errors: Vec::new(),
            file_dirs: Vec::new(),
            applied: HashSet::new(),
            root_download_cache: None,
            limits: Limits::default(),
            read: HashMap::new(),
            parsed: 0,
            over_budget: false,
        }
    }

    fn resolve(&self, base: &Location, name: &str) -> Location {
        if is_url(name) {
            return Location::Url(name.to_owned());
        }
        match base {
            Location::Url(u) if !Path::new(name).is_absolute() => {
                let dir = &u[..u.rfind('/').map_or(u.len(), |i| i)];
                Location::Url(format!("{dir}/{name}"))
            }
            Location::Url(_) => Location::Path(PathBuf::from(name)),
            Location::Path(dir) => Location::Path(super::substitute::normalize(&dir.join(name))),
        }
    }

    fn read(&mut self, loc: &Location) -> Result<String, String> {
        match loc {
            Location::Path(p) => limits::read_file(p, self.limits.file),
            Location::Url(u) => self.download(u),
        }
    }

    fn download(&mut self, url: &str) -> Result<String, String> {
        let cache = self.cache.clone().map(|c| c.join("extends"));
        let cached = cache
            .as_ref()
            .map(|c| c.join(format!("{:016x}", fnv1a(url.as_bytes()))));
        if let Some(p) = cached.as_ref().filter(|p| p.exists()) {
            return limits::read_file(p, self.limits.file)
                .map_err(|e| format!("{e} (cached {url})"));
        }
        if self.offline {
            return Err(format!(
                "cannot download {url} in offline mode: it is not in the extends cache{}",
                cache
                    .map(|c| format!(" {}", c.display()))
                    .unwrap_or_default()
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "cannot download {url}: only http and https URLs are supported"
            ));
        }
        let wait = self.limits.timeout;
        let body = ureq::get(url)
            .config()
            .timeout_connect(Some(wait))
            .timeout_per_read(Some(wait))
            .timeout_global(Some(wait.saturating_mul(10)))
            .build()
            .call()
            .map_err(|e| self.download_error(url, e))?
            .body_mut()
            .with_config()
            .limit(self.limits.file)
            .read_to_string()
            .map_err(|e| self.download_error(url, e))?;
        if let (Some(dir), Some(p)) = (cache, cached) {
            // Through a temp file of this process's own, so a concurrent run never reads half
            // a file; unsynced, as a lost cache entry costs only a download.
            if rbuildout_plugin_api::files::write_atomic_shared(&p, body.as_bytes(), false).is_err()
            {
                tracing::warn!("cannot cache {url} in {}", dir.display());
            }
        }
        Ok(body)
    }

    fn download_error(&self, url: &str, e: ureq::Error) -> String {
        match e {
            ureq::Error::BodyExceedsLimit(_) => format!(
                "cannot download {url}: it is larger than {}, the limit of a config file (raise {})",
                limits::show(self.limits.file),
                limits::FILE_VAR
            ),
            ureq::Error::Timeout(_) => format!(
                "cannot download {url}: the server sent nothing for {} s (or took more than ten times that in all); raise {} if it is only slow",
                self.limits.timeout.as_secs_f64(),
                limits::TIMEOUT_VAR
            ),
            e => format!("cannot download {url}: {e}"),
        }
    }

    /// Opens `loc` and what it extends; returns the results in merge order (extended files
    /// first, depth-first, left to right, then the file itself). Works with an explicit
    /// stack, so a chain of thousands of files needs no deep native stack.
    pub fn open(&mut self, loc: Location, from: Option<Span>) -> Vec<Sections> {
        enum Task {
            Enter(Location, Option<Span>),
            Exit(Sections),
        }
        let mut out = Vec::new();
        // The files being opened, for cycle errors.
        let mut chain: Vec<Location> = Vec::new();
        let mut on_chain: HashSet<Location> = HashSet::new();
        let mut tasks = vec![Task::Enter(loc, from)];
        while let Some(task) = tasks.pop() {
            match task {
                Task::Exit(result) => {
                    if let Some(l) = chain.pop() {
                        on_chain.remove(&l);
                    }
                    out.push(result);
                }
                Task::Enter(loc, from) => {
                    if on_chain.contains(&loc) {
                        let i = chain.iter().position(|l| *l == loc).unwrap_or(0);
                        let mut names: Vec<String> =
                            chain[i..].iter().map(|l| l.display(&self.cwd)).collect();
                        names.push(loc.display(&self.cwd));
                        self.errors.push(
                            Diagnostic::new(
                                ErrorKind::Cycle,
                                format!("extends cycle: {}", names.join(" -> ")),
                            )
                            .at(from, "this file is already being extended"),
                        );
                        continue;
                    }
                    if self.once && !self.applied.insert(loc.clone()) {
                        continue;
                    }
                    let root = chain.is_empty();
                    let Some((result, children)) = self.load_one(&loc, from, root) else {
                        continue;
                    };
                    chain.push(loc.clone());
                    on_chain.insert(loc);
                    tasks.push(Task::Exit(result));
                    tasks.extend(children.into_iter().rev().map(|(l, s)| Task::Enter(l, s)));
                }
            }
        }
        out
    }

    /// Reads and parses one file; returns its sections (without `extends`) and the files it
    /// extends, in order, with the span naming each. `None` when it failed (errors recorded).
    #[allow(clippy::type_complexity)]
    fn load_one(
        &mut self,
        loc: &Location,
        from: Option<Span>,
        root: bool,
    ) -> Option<(Sections, Vec<(Location, Option<Span>)>)> {
        if let Some(&id) = self.read.get(loc) {
            return self.parse_one(loc, id, from, root);
        }
        let text = match self.read(loc) {
            Ok(t) => t,
            Err(msg) => {
                let msg = if from.is_some() {
                    format!("cannot load an extended config: {msg}")
                } else {
                    msg
                };
                self.errors
                    .push(Diagnostic::new(ErrorKind::Io, msg).at(from, "extended here"));
                return None;
            }
        };
        let text = text
            .strip_prefix('\u{feff}')
            .unwrap_or(&text)
            .replace("\r\n", "\n");
        let id = self.files.add(loc.display(&self.cwd), text);
        self.read.insert(loc.clone(), id);
        while self.file_dirs.len() < id as usize {
            self.file_dirs.push(None);
        }
        self.file_dirs.push(dir_of(loc));
        self.parse_one(loc, id, from, root)
    }

    /// Parses the file `id` read from `loc`; see [`Loader::load_one`].
    #[allow(clippy::type_complexity)]
    fn parse_one(
        &mut self,
        loc: &Location,
        id: u32,
        from: Option<Span>,
        root: bool,
    ) -> Option<(Sections, Vec<(Location, Option<Span>)>)> {
        let dir = dir_of(loc);
        let source = self.files.source(id)?;
        // A `.cfg` file extended from many places is parsed and applied at each: a line of
        // `extends = x.cfg x.cfg ...` would multiply a small file into gigabytes.
        self.parsed = self.parsed.saturating_add(source.text.len() as u64);
        if self.parsed > self.limits.expanded {
            if !std::mem::replace(&mut self.over_budget, true) {
                self.errors.push(
                    Diagnostic::new(
                        ErrorKind::Io,
                        format!(
                            "applying {} again takes the config text read in one load past {}, the limit for one config",
                            loc.display(&self.cwd),
                            limits::show(self.limits.expanded)
                        ),
                    )
                    .at(from, "extended here")
                    .note(format!(
                        "a .cfg file is applied again at every place it is extended; extend it once, or raise {}",
                        limits::EXPANDED_VAR
                    )),
                );
            }
            return None;
        }
        let parsed = match loc.format() {
            Format::Toml => super::toml::parse(&source.text, id, self.env),
            Format::Cfg => super::cfg::parse(&source.text, id, self.env),
        };
        let mut result = match parsed {
            Ok(s) => s,
            Err(ds) => {
                self.errors.extend(ds);
                return None;
            }
        };
        let (extends, optional) = match result.get_mut("buildout") {
            Some(b) => (
                b.options.shift_remove("extends"),
                b.options.shift_remove("optional-extends"),
            ),
            None => (None, None),
        };
        if let Some(b) = result.get("buildout") {
            if let Some(e) = b.options.get("extended-by") {
                self.errors.push(
                    Diagnostic::new(ErrorKind::Syntax, "`extended-by` is no longer supported")
                        .at(e.span(), "remove this option"),
                );
            }
            if root
                && let Some(e) = b.options.get("download-cache")
                && let (Value::Str(v), Some(d)) = (&e.value, dir.as_ref())
            {
                self.root_download_cache = Some((v.clone(), d.clone()));
            }
        }
        if root && self.cache.is_none() {
            self.cache = match &self.root_download_cache {
                Some((v, d)) if !v.contains("${") => Some(d.join(expand_home(v))),
                _ => default_download_cache(),
            };
        }
        let base = match (loc, &dir) {
            (Location::Url(_), _) => loc.clone(),
            (_, Some(d)) => Location::Path(d.clone()),
            _ => Location::Path(self.cwd.clone()),
        };
        let mut children = Vec::new();
        if let Some(e) = extends {
            for name in names(&e.value) {
                children.push((self.resolve(&base, &name), e.span()));
            }
        }
        if let Some(e) = optional {
            for name in names(&e.value) {
                let next = self.resolve(&base, &name);
                if matches!(&next, Location::Path(p) if !p.exists()) {
                    tracing::info!("optional-extends file not found: {name}");
                    continue;
                }
                children.push((next, e.span()));
            }
        }
        Some((result, children))
    }
}

/// The folder of a local file, against which the paths it names are resolved.
fn dir_of(loc: &Location) -> Option<PathBuf> {
    match loc {
        Location::Path(p) => p.parent().map(Path::to_path_buf),
        Location::Url(_) => None,
    }
}

fn names(v: &Value) -> Vec<String> {
    match v {
        Value::Str(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::List(l) => l.clone(),
    }
}

pub fn expand_home(p: &str) -> PathBuf {
    if p == "~" || p.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(p[1..].trim_start_matches('/'));
        }
    }
    PathBuf::from(p)
}

/// `~/.cache/rbuildout`, the default `download-cache`.
pub fn default_download_cache() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("rbuildout"))
}

/// A stable 64-bit FNV-1a hash, naming cached downloads after their URL.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_relative_locations() {
        assert!(is_url("https://example.com/a.cfg"));
        assert!(!is_url("a/b.cfg"));
        let mut files = Files::default();
        let env = Env::default();
        let l = Loader::new(&mut files, &env, PathBuf::from("/w"), true, false);
        assert_eq!(
            l.resolve(&Location::Url("https://h/x/base.cfg".into()), "other.cfg"),
            Location::Url("https://h/x/other.cfg".into())
        );
        assert_eq!(
            l.resolve(&Location::Path("/w/sub".into()), "../a.cfg"),
            Location::Path("/w/a.cfg".into())
        );
    }

    #[test]
    fn offline_without_cache_is_a_clear_error() {
        let mut files = Files::default();
        let env = Env::default();
        let dir = tempfile::tempdir().unwrap();
        let mut l = Loader::new(&mut files, &env, dir.path().into(), true, false);
        l.cache = Some(dir.path().into());
        let e = l
            .read(&Location::Url("https://example.invalid/x.cfg".into()))
            .unwrap_err();
        assert!(e.contains("offline"), "{e}");
        std::fs::create_dir_all(dir.path().join("extends")).unwrap();
        let key = format!("{:016x}", fnv1a(b"https://example.invalid/x.cfg"));
        std::fs::write(dir.path().join("extends").join(key), "[a]\nx = 1\n").unwrap();
        assert_eq!(
            l.read(&Location::Url("https://example.invalid/x.cfg".into()))
                .unwrap(),
            "[a]\nx = 1\n"
        );
    }
}
