//! A real Python package index on 127.0.0.1, serving small distributions built by the tests.
//!
//! Tests describe packages with [`Package`], and [`Index::serve`] builds every file into a
//! temporary folder and serves them over HTTP, so no test ever reaches the internet.
//!
//! ```no_run
//! use rbuildout_tests::pyindex::{Fault, Index, Package};
//! let index = Index::serve(&[
//!     Package::new("alpha", "1.0")
//!         .requires("beta>=2")
//!         .module("alpha/__init__.py", "def main():\n    print('alpha')\n")
//!         .entry_point("console_scripts", "alpha", "alpha:main"),
//!     Package::new("beta", "2.0").requires_python(">=3.8").extra("fast", &["gamma"]),
//! ]);
//! let url = index.url(); // "http://127.0.0.1:PORT/simple/"
//! index.set_fault(Fault::Truncate);
//! ```
//!
//! # The distributions
//!
//! - **Wheels** (PEP 427): `<dist>-<version>-<tag>.whl`, `<dist>` being the PEP 503 name with
//!   `_` for `-` (`Foo.Bar` → `foo_bar`). One wheel per tag of [`Package::wheel_tags`]
//!   (default `py3-none-any`), all with the same content: the modules given with
//!   [`Package::module`] (or, when none is given, `<dist>/__init__.py` defining
//!   `__version__`), then `<dist>-<version>.dist-info/` with `METADATA` (metadata 2.1: `Name`,
//!   `Version`, `Requires-Python`, `Requires-Dist`, `Provides-Extra`), `WHEEL`
//!   (`Root-Is-Purelib: true` for `*-none-any` tags, else `false`), `entry_points.txt` (when
//!   there are entry points),
//!   `top_level.txt` and `RECORD` (`sha256=` urlsafe base64 without padding, sizes; its own
//!   line is `RECORD,,`). Members are deflated and dated 1980-01-01, so the bytes and hashes
//!   of a package are the same on every run.
//! - **Extras**: `.extra("fast", &["gamma"])` writes `Provides-Extra: fast` and
//!   `Requires-Dist: gamma; extra == "fast"` (a requirement with its own marker `m` becomes
//!   `(m) and extra == "fast"`). Requirements and markers are otherwise written verbatim.
//! - **Sdists** (with [`Package::with_sdist`] or [`Package::sdist_only`]):
//!   `<dist>-<version>.tar.gz` holding `<dist>-<version>/` with `PKG-INFO`, the modules,
//!   `entry_points.txt`, and a `pyproject.toml` whose build backend is a small PEP 517
//!   backend *inside the sdist* (`backend-path = ["."]`, `requires = []`), written with the
//!   standard library only. So the sdist builds offline with `pip wheel --no-deps` with or
//!   without `--no-build-isolation` (this Python's setuptools 65 cannot build wheels without
//!   the `wheel` package, which is not installed and must not be downloaded), and the wheel it
//!   builds has the same content as the wheel this module builds.
//! - **Broken archives**: [`Package::malicious_member`] adds a member with any name (such as
//!   `../escape.txt` or `/etc/x`) to the wheels; [`Package::duplicate_member`] a second member
//!   of a name; [`Package::mismatched_member`] a member whose local header names it otherwise
//!   than the central directory; [`Package::symlink_member`] a symbolic link;
//!   [`Package::wheel_override`] serves arbitrary bytes as the wheel.
//! - **Other members**: [`Package::module`] takes any path, so `<dist>-<version>.data/scripts/x`
//!   (with a `#!python` first line) or `<dist>-<version>.data/purelib/...` members are written
//!   the same way (and listed in RECORD).
//! - **Yanked** files (PEP 592): [`Package::yanked`] / [`Package::yanked_because`].
//! - **Lying metadata**: [`Package::metadata_says`] makes `METADATA` name another project or
//!   version than the file names.
//!
//! # The endpoints
//!
//! | path | answer |
//! |---|---|
//! | `/simple/` | the root listing: PEP 503 HTML (`<a href="name/">Name</a>`), or PEP 691 JSON `{"meta": {"api-version": "1.0"}, "projects": [{"name": ...}]}` |
//! | `/simple/<name>/` | the project page (below); a name that is not PEP 503 normalised, or a missing trailing `/`, is redirected (301) to `/simple/<normalised>/`; an unknown project is 404 |
//! | `/files/<file>` | a wheel or sdist |
//! | `/files/<wheel>.metadata` | the wheel's `METADATA` (PEP 658 / PEP 714) |
//! | anything else | 404; methods other than GET and HEAD get 405 |
//!
//! The project page lists every file of every version of the project, in the order the
//! packages were given. HTML (PEP 503): one anchor per file,
//! `<a href="../../files/<file>#sha256=<hex>" data-requires-python="&gt;=3.8"
//! data-yanked="reason" data-core-metadata="sha256=<hex>"
//! data-dist-info-metadata="sha256=<hex>">file</a>` — the href is *relative* to the page, as
//! PEP 503 allows; the metadata attributes only for wheels, `data-requires-python` only when
//! set (HTML-escaped), `data-yanked` only when yanked (empty without a reason). JSON (PEP 691):
//! `{"meta": {"api-version": "1.0"}, "name": "<normalised>", "files": [{"filename", "url"
//! (absolute), "hashes": {"sha256"}, "requires-python" (only when set), "yanked" (false, true
//! or the reason), "core-metadata" and "dist-info-metadata" ({"sha256"} for wheels, false for
//! sdists)}]}`.
//!
//! Content negotiation (PEP 691): JSON (`application/vnd.pypi.simple.v1+json`) when the
//! `Accept` header names `application/vnd.pypi.simple.v1+json` or
//! `application/vnd.pypi.simple.latest+json` with a q-value greater than or equal to the best
//! HTML one (`text/html`, `application/vnd.pypi.simple.v1+html`, `…latest+html`, `text/*`,
//! `*/*`); otherwise HTML, as `text/html; charset=utf-8` (or
//! `application/vnd.pypi.simple.v1+html` when that was asked for by name). A wildcard alone
//! therefore gets HTML. The `?format=<content type>` query parameter of PEP 691 overrides the
//! header. Responses carry `Vary: Accept`.
//!
//! HTTP: HTTP/1.1, one thread per connection, one request per connection (every response has
//! `Content-Length` and `Connection: close`). HEAD answers the headers of GET without the
//! body. The server thread stops when the [`Index`] is dropped; the built files live in a
//! temporary folder owned by the [`Index`] ([`Index::files_dir`], usable as a find-links
//! folder: it holds the wheels and sdists, not the `.metadata` files).
//!
//! [`Index::require_auth`] makes every request need HTTP Basic auth (else `401` with
//! `WWW-Authenticate`); [`Index::authorizations`] returns the `Authorization` header of
//! every request. [`Index::set_files_base`] makes the project pages link the files on
//! another server (absolute URLs). [`Index::stall_file`] makes downloads of one file wait.
//!
//! [`Index::requests`] returns every request target (path and query) seen so far, in order,
//! redirects and failures included.
//!
//! # Faults
//!
//! [`Index::set_fault`] changes how the following requests are answered:
//!
//! - [`Fault::Status500`]: every request gets `500 Internal Server Error`.
//! - [`Fault::Garbage`]: the `/simple/` pages (root and projects) are `200` with the
//!   negotiated content type and a body that is neither HTML nor JSON (bytes `0x00`, `0xff`,
//!   unbalanced brackets); files are served normally.
//! - [`Fault::Truncate`]: wheel and sdist downloads send the full `Content-Length` but only
//!   the first half of the bytes, then close the connection. `.metadata` files are whole.
//! - [`Fault::WrongHash`]: the pages (HTML and JSON) advertise a wrong sha256 for every
//!   wheel and sdist (the digest of other bytes); the files themselves and the core-metadata
//!   hashes are right.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The file name of the PEP 517 build backend shipped inside every sdist.
const BACKEND_FILE: &str = "rbuildout_tests_backend.py";

/// One distribution (a project at a version) to build and serve.
#[derive(Clone, Debug)]
pub struct Package {
    name: String,
    version: String,
    requires: Vec<String>,
    requires_python: Option<String>,
    extras: Vec<(String, Vec<String>)>,
    yanked: Option<String>,
    modules: Vec<(String, String)>,
    entry_points: Vec<(String, String, String)>,
    wheel_tags: Vec<String>,
    wheel: bool,
    sdist: bool,
    odd: Vec<Odd>,
    wheel_override: Option<Vec<u8>>,
    /// `Name` and `Version` that `METADATA` claims instead of the package's own.
    metadata_says: Option<(String, String)>,
}

impl Package {
    /// A pure wheel of `name` at `version`, without requirements.
    pub fn new(name: &str, version: &str) -> Package {
        Package {
            name: name.to_string(),
            version: version.to_string(),
            requires: Vec::new(),
            requires_python: None,
            extras: Vec::new(),
            yanked: None,
            modules: Vec::new(),
            entry_points: Vec::new(),
            wheel_tags: vec!["py3-none-any".to_string()],
            wheel: true,
            sdist: false,
            odd: Vec::new(),
            wheel_override: None,
            metadata_says: None,
        }
    }

    /// Adds a `Requires-Dist` line, written verbatim (PEP 508, markers included).
    pub fn requires(mut self, requirement: &str) -> Package {
        self.requires.push(requirement.to_string());
        self
    }

    /// Sets `Requires-Python`, shown on the index pages too.
    pub fn requires_python(mut self, specifier: &str) -> Package {
        self.requires_python = Some(specifier.to_string());
        self
    }

    /// Adds `Provides-Extra: extra` and one `Requires-Dist: r; extra == "extra"` per requirement.
    pub fn extra(mut self, extra: &str, requirements: &[&str]) -> Package {
        self.extras.push((
            extra.to_string(),
            requirements.iter().map(|r| r.to_string()).collect(),
        ));
        self
    }

    /// Marks every file of this package yanked, without a reason.
    pub fn yanked(self) -> Package {
        self.yanked_because("")
    }

    /// Marks every file of this package yanked with `reason`.
    pub fn yanked_because(mut self, reason: &str) -> Package {
        self.yanked = Some(reason.to_string());
        self
    }

    /// Adds a file at `path` (relative to site-packages, `/`-separated) with `source`.
    pub fn module(mut self, path: &str, source: &str) -> Package {
        self.modules.push((path.to_string(), source.to_string()));
        self
    }

    /// Adds an entry point `name = value` to `group` (e.g. `console_scripts`).
    pub fn entry_point(mut self, group: &str, name: &str, value: &str) -> Package {
        self.entry_points
            .push((group.to_string(), name.to_string(), value.to_string()));
        self
    }

    /// Builds one wheel per tag (e.g. `["cp311-cp311-manylinux_2_17_x86_64", "py3-none-any"]`)
    /// instead of the single `py3-none-any` one.
    pub fn wheel_tags(mut self, tags: &[&str]) -> Package {
        self.wheel_tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    /// Serves an sdist besides the wheels.
    pub fn with_sdist(mut self) -> Package {
        self.sdist = true;
        self
    }

    /// Serves only an sdist, no wheel.
    pub fn sdist_only(mut self) -> Package {
        self.sdist = true;
        self.wheel = false;
        self
    }

    /// Adds a member named `member` verbatim (e.g. `../escape.txt`, `/etc/x`, `a\\b`,
    /// `C:x`) to the wheels, listed in RECORD.
    pub fn malicious_member(mut self, member: &str) -> Package {
        self.odd.push(Odd::Named(member.to_string()));
        self
    }

    /// Adds a second member named `member` (which should be a module or another member) with
    /// `content`, so the wheel holds two members of that name.
    pub fn duplicate_member(mut self, member: &str, content: &str) -> Package {
        self.odd
            .push(Odd::Duplicate(member.to_string(), content.to_string()));
        self
    }

    /// Adds a member named `member` in the central directory whose local header names it
    /// `local` instead (the ZIP parser differential of uv's CVE-2025-54368). Both names must
    /// have the same length.
    pub fn mismatched_member(mut self, member: &str, local: &str) -> Package {
        assert_eq!(
            member.len(),
            local.len(),
            "mismatched_member: {member:?} and {local:?} must have the same length"
        );
        self.odd
            .push(Odd::Mismatched(member.to_string(), local.to_string()));
        self
    }

    /// Adds a symbolic link member `member` pointing to `target` (Unix mode `S_IFLNK`).
    pub fn symlink_member(mut self, member: &str, target: &str) -> Package {
        self.odd
            .push(Odd::Symlink(member.to_string(), target.to_string()));
        self
    }

    /// Serves `bytes` as the wheel (every tag) instead of the built one; the pages advertise
    /// their sha256, and `.metadata` is still the package's `METADATA`.
    pub fn wheel_override(mut self, bytes: Vec<u8>) -> Package {
        self.wheel_override = Some(bytes);
        self
    }

    /// Makes `METADATA` (in the wheels, the sdist and the `.metadata` file) claim `name` and
    /// `version`, while the file names and the `.dist-info` folder keep the package's own.
    pub fn metadata_says(mut self, name: &str, version: &str) -> Package {
        self.metadata_says = Some((name.to_string(), version.to_string()));
        self
    }

    /// The project name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version as given.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The PEP 503 normalised name (`Foo_Bar.baz` → `foo-bar-baz`).
    pub fn normalized_name(&self) -> String {
        normalize(&self.name)
    }

    /// The name as it appears in file names (`Foo-Bar` → `foo_bar`).
    fn dist(&self) -> String {
        self.normalized_name().replace('-', "_")
    }

    /// The file name of the first wheel (`alpha-1.0-py3-none-any.whl`).
    pub fn wheel_filename(&self) -> String {
        self.wheel_filename_for(&self.wheel_tags[0])
    }

    /// The file names of all the wheels, one per tag (empty for [`Package::sdist_only`]).
    pub fn wheel_filenames(&self) -> Vec<String> {
        if !self.wheel {
            return Vec::new();
        }
        self.wheel_tags
            .iter()
            .map(|tag| self.wheel_filename_for(tag))
            .collect()
    }

    fn wheel_filename_for(&self, tag: &str) -> String {
        format!("{}-{}-{tag}.whl", self.dist(), self.version)
    }

    /// The file name of the sdist (`alpha-1.0.tar.gz`).
    pub fn sdist_filename(&self) -> String {
        format!("{}-{}.tar.gz", self.dist(), self.version)
    }

    /// The `METADATA` / `PKG-INFO` text (metadata 2.1).
    pub fn metadata(&self) -> String {
        let mut m = String::new();
        m.push_str("Metadata-Version: 2.1\n");
        let (name, version) = match &self.metadata_says {
            Some((n, v)) => (n.as_str(), v.as_str()),
            None => (self.name.as_str(), self.version.as_str()),
        };
        let _ = writeln!(m, "Name: {name}");
        let _ = writeln!(m, "Version: {version}");
        let _ = writeln!(m, "Summary: {} test package", self.name);
        if let Some(rp) = &self.requires_python {
            let _ = writeln!(m, "Requires-Python: {rp}");
        }
        for r in &self.requires {
            let _ = writeln!(m, "Requires-Dist: {r}");
        }
        for (extra, reqs) in &self.extras {
            let _ = writeln!(m, "Provides-Extra: {extra}");
            for r in reqs {
                let marker = format!("extra == \"{extra}\"");
                let line = match r.split_once(';') {
                    Some((req, own)) => format!("{}; ({}) and {marker}", req.trim(), own.trim()),
                    None => format!("{}; {marker}", r.trim()),
                };
                let _ = writeln!(m, "Requires-Dist: {line}");
            }
        }
        m
    }

    /// The modules, or the default `<dist>/__init__.py` when none was given.
    fn sources(&self) -> Vec<(String, Vec<u8>)> {
        if self.modules.is_empty() {
            let init = format!("__version__ = {:?}\n", self.version);
            return vec![(format!("{}/__init__.py", self.dist()), init.into_bytes())];
        }
        self.modules
            .iter()
            .map(|(p, s)| (p.clone(), s.clone().into_bytes()))
            .collect()
    }

    fn entry_points_txt(&self) -> Option<String> {
        if self.entry_points.is_empty() {
            return None;
        }
        let mut groups: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (g, n, v) in &self.entry_points {
            groups.entry(g).or_default().push((n, v));
        }
        let mut text = String::new();
        for (g, entries) in groups {
            let _ = writeln!(text, "[{g}]");
            for (n, v) in entries {
                let _ = writeln!(text, "{n} = {v}");
            }
            text.push('\n');
        }
        Some(text)
    }

    fn top_level(&self) -> String {
        let mut tops: Vec<String> = self
            .sources()
            .iter()
            .filter_map(|(p, _)| {
                let first = p.split('/').next()?;
                let top = first.strip_suffix(".py").unwrap_or(first);
                (!top.is_empty() && !top.contains('.')).then(|| top.to_string())
            })
            .collect();
        tops.sort();
        tops.dedup();
        tops.iter().map(|t| format!("{t}\n")).collect()
    }

    /// The bytes of the first wheel.
    pub fn wheel_bytes(&self) -> Vec<u8> {
        self.wheel_bytes_for(&self.wheel_tags[0])
    }

    fn wheel_bytes_for(&self, tag: &str) -> Vec<u8> {
        if let Some(bytes) = &self.wheel_override {
            return bytes.clone();
        }
        let info = format!("{}-{}.dist-info", self.dist(), self.version);
        let mut members = self.sources();
        let mut links = Vec::new();
        let mut patches = Vec::new();
        for odd in &self.odd {
            match odd {
                Odd::Named(name) => {
                    members.push((name.clone(), b"written outside the target\n".to_vec()))
                }
                Odd::Duplicate(name, content) => {
                    // zip refuses to write a name twice: write a placeholder, rename it after.
                    let placeholder = placeholder(name, patches.len());
                    members.push((placeholder.clone(), content.clone().into_bytes()));
                    patches.push(Patch {
                        from: placeholder,
                        to: name.clone(),
                        local: true,
                        central: true,
                    });
                }
                Odd::Mismatched(name, local) => {
                    members.push((name.clone(), b"which name is mine?\n".to_vec()));
                    patches.push(Patch {
                        from: name.clone(),
                        to: local.clone(),
                        local: true,
                        central: false,
                    });
                }
                Odd::Symlink(name, target) => links.push((name.clone(), target.clone())),
            }
        }
        members.push((format!("{info}/METADATA"), self.metadata().into_bytes()));
        let wheel = format!(
            "Wheel-Version: 1.0\nGenerator: rbuildout-tests\nRoot-Is-Purelib: {}\nTag: {tag}\n",
            tag.ends_with("-none-any")
        );
        members.push((format!("{info}/WHEEL"), wheel.into_bytes()));
        if let Some(ep) = self.entry_points_txt() {
            members.push((format!("{info}/entry_points.txt"), ep.into_bytes()));
        }
        members.push((
            format!("{info}/top_level.txt"),
            self.top_level().into_bytes(),
        ));
        let mut record = String::new();
        for (path, data) in &members {
            let _ = writeln!(
                record,
                "{path},sha256={},{}",
                urlsafe_b64_nopad(&Sha256::digest(data)),
                data.len()
            );
        }
        let _ = writeln!(record, "{info}/RECORD,,");
        members.push((format!("{info}/RECORD"), record.into_bytes()));
        let mut bytes = zip_bytes(&members, &links);
        for patch in &patches {
            patch.apply(&mut bytes);
        }
        bytes
    }

    /// The bytes of the sdist (`.tar.gz`), buildable offline (see the module docs).
    pub fn sdist_bytes(&self) -> Vec<u8> {
        let root = format!("{}-{}", self.dist(), self.version);
        let mut files = vec![
            ("PKG-INFO".to_string(), self.metadata().into_bytes()),
            (
                "pyproject.toml".to_string(),
                format!(
                    "[build-system]\nrequires = []\nbuild-backend = \"{}\"\nbackend-path = [\".\"]\n",
                    BACKEND_FILE.trim_end_matches(".py")
                )
                .into_bytes(),
            ),
            (BACKEND_FILE.to_string(), BACKEND_PY.as_bytes().to_vec()),
        ];
        if let Some(ep) = self.entry_points_txt() {
            files.push(("entry_points.txt".to_string(), ep.into_bytes()));
        }
        files.extend(self.sources());
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, data) in &files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, format!("{root}/{path}"), data.as_slice())
                .expect("append to an in-memory tar");
        }
        tar.into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish an in-memory tar.gz")
    }
}

/// The PEP 517 backend shipped in every sdist: builds the wheel from the sdist's files with the
/// standard library, so no build requirement has to be downloaded.
const BACKEND_PY: &str = r#""""PEP 517 backend of the rbuildout test packages: a pure wheel, standard library only."""
import base64
import hashlib
import os
import re
import tarfile
import zipfile

_NOT_IN_WHEEL = {"PKG-INFO", "pyproject.toml", "rbuildout_tests_backend.py", "entry_points.txt"}


def _metadata():
    with open("PKG-INFO", encoding="utf-8") as f:
        text = f.read()
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, value)
    dist = re.sub(r"[-_.]+", "_", fields["Name"]).lower()
    return text, dist, fields["Version"]


def _sources():
    out = []
    for root, dirs, names in os.walk("."):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "build") and not d.endswith(".egg-info"))
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(root, name), ".").replace(os.sep, "/")
            if rel in _NOT_IN_WHEEL or rel.endswith(".pyc"):
                continue
            with open(rel, "rb") as f:
                out.append((rel, f.read()))
    return out


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    text, dist, version = _metadata()
    info = f"{dist}-{version}.dist-info"
    members = _sources()
    tops = sorted({p.split("/")[0].removesuffix(".py") for p, _ in members})
    members.append((f"{info}/METADATA", text.encode()))
    members.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: rbuildout-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    if os.path.exists("entry_points.txt"):
        with open("entry_points.txt", "rb") as f:
            members.append((f"{info}/entry_points.txt", f.read()))
    members.append((f"{info}/top_level.txt", "".join(t + "\n" for t in tops).encode()))
    record = ""
    for path, data in members:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode()))
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as z:
        for path, data in members:
            member = zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            z.writestr(member, data)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    _, dist, version = _metadata()
    filename = f"{dist}-{version}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as t:
        for name in sorted(os.listdir(".")):
            if name not in ("build", "__pycache__"):
                t.add(name, arcname=f"{dist}-{version}/{name}")
    return filename
"#;

/// How the server misbehaves for the following requests (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Every request: `500 Internal Server Error`.
    Status500,
    /// `/simple/` pages: `200` with a body that is neither HTML nor JSON.
    Garbage,
    /// Wheel and sdist downloads: the full `Content-Length`, half of the bytes.
    Truncate,
    /// Pages advertise a wrong sha256 for wheels and sdists.
    WrongHash,
}

/// One file on the index.
struct FileEntry {
    filename: String,
    sha256: String,
    requires_python: Option<String>,
    yanked: Option<String>,
    /// The sha256 of the `.metadata` file, for wheels.
    metadata_sha256: Option<String>,
}

struct Project {
    files: Vec<FileEntry>,
}

/// What the server threads share with the [`Index`].
struct Shared {
    base: String,
    projects: BTreeMap<String, Project>,
    /// File name (`x.whl`, `x.whl.metadata`, `x.tar.gz`) → bytes.
    files: BTreeMap<String, Arc<Vec<u8>>>,
    fault: Mutex<Fault>,
    requests: Mutex<Vec<String>>,
    /// The `Authorization` header every request must carry, if any.
    auth: Mutex<Option<String>>,
    /// The `Authorization` header of every request seen, with its target.
    authorizations: Mutex<Vec<(String, Option<String>)>>,
    /// Where the project pages say the files are, instead of this server's `/files/`.
    files_base: Mutex<Option<String>>,
    /// A file whose downloads wait while this is set.
    stalled: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// A package index serving built distributions on 127.0.0.1 until dropped.
pub struct Index {
    shared: Arc<Shared>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    server: Option<JoinHandle<()>>,
}

impl Index {
    /// Builds every package's files into a temporary folder and serves them.
    pub fn serve(packages: &[Package]) -> Index {
        let dir = tempfile::tempdir().expect("temp dir for the index files");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let base = format!("http://{addr}");

        let mut projects: BTreeMap<String, Project> = BTreeMap::new();
        let mut files = BTreeMap::new();
        for package in packages {
            let metadata = package.metadata().into_bytes();
            let metadata_sha = hex(&Sha256::digest(&metadata));
            let mut built: Vec<(String, Vec<u8>, bool)> = Vec::new();
            if package.wheel {
                for tag in &package.wheel_tags {
                    built.push((
                        package.wheel_filename_for(tag),
                        package.wheel_bytes_for(tag),
                        true,
                    ));
                }
            }
            if package.sdist {
                built.push((package.sdist_filename(), package.sdist_bytes(), false));
            }
            let project = projects
                .entry(package.normalized_name())
                .or_insert_with(|| Project { files: Vec::new() });
            for (filename, bytes, is_wheel) in built {
                let path = dir.path().join(&filename);
                std::fs::write(&path, &bytes)
                    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
                project.files.push(FileEntry {
                    filename: filename.clone(),
                    sha256: hex(&Sha256::digest(&bytes)),
                    requires_python: package.requires_python.clone(),
                    yanked: package.yanked.clone(),
                    metadata_sha256: is_wheel.then(|| metadata_sha.clone()),
                });
                if is_wheel {
                    files.insert(format!("{filename}.metadata"), Arc::new(metadata.clone()));
                }
                files.insert(filename, Arc::new(bytes));
            }
        }

        let shared = Arc::new(Shared {
            base,
            projects,
            files,
            fault: Mutex::new(Fault::None),
            requests: Mutex::new(Vec::new()),
            auth: Mutex::new(None),
            authorizations: Mutex::new(Vec::new()),
            files_base: Mutex::new(None),
            stalled: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let server_shared = Arc::clone(&shared);
        let server = std::thread::Builder::new()
            .name("pyindex".into())
            .spawn(move || accept_loop(&listener, &server_shared))
            .expect("spawn the index server thread");
        Index {
            shared,
            addr,
            dir,
            server: Some(server),
        }
    }

    /// The simple API root, `http://127.0.0.1:PORT/simple/`.
    pub fn url(&self) -> String {
        format!("{}/simple/", self.shared.base)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// The URL a file is downloaded from, `http://127.0.0.1:PORT/files/<filename>`.
    pub fn file_url(&self, filename: &str) -> String {
        format!("{}/files/{filename}", self.shared.base)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The folder holding the built wheels and sdists (a find-links folder).
    pub fn files_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every request target seen so far (path and query), in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Sets how the following requests are answered.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// Requires HTTP Basic auth as `user`:`password` on every following request: one
    /// without it (or with other credentials) gets `401` and `WWW-Authenticate`.
    pub fn require_auth(&self, user: &str, password: &str) {
        let token = base64(format!("{user}:{password}").as_bytes());
        *lock(&self.shared.auth) = Some(format!("Basic {token}"));
    }

    /// The `Authorization` header (if any) of every request seen so far, with its target.
    pub fn authorizations(&self) -> Vec<(String, Option<String>)> {
        lock(&self.shared.authorizations).clone()
    }

    /// Makes the project pages link the files at `base` (`http://host:port`, serving
    /// `/files/<file>`) instead of this server, e.g. another [`Index`] of the same packages.
    pub fn set_files_base(&self, base: Option<&str>) {
        *lock(&self.shared.files_base) = base.map(str::to_string);
    }

    /// Makes downloads of `filename` wait (up to a minute) until this is called again with
    /// `None`.
    pub fn stall_file(&self, filename: Option<&str>) {
        *lock(&self.shared.stalled) = filename.map(str::to_string);
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// Locks, ignoring poisoning: the data (a fault, a list of strings) is valid whatever panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(shared);
        // A connection that cannot get a thread is dropped; the client sees a reset.
        let _ = std::thread::Builder::new()
            .name("pyindex-conn".into())
            .spawn(move || {
                let _ = handle(stream, &shared);
            });
    }
}

/// A parsed request: only what the routes need.
struct Request {
    method: String,
    target: String,
    accept: Option<String>,
    authorization: Option<String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream.take(64 * 1024));
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        accept: None,
        authorization: None,
    };
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((key, value)) = header.split_once(':')
            && key.trim().eq_ignore_ascii_case("authorization")
        {
            request.authorization = Some(value.trim().to_string());
        } else if let Some((key, value)) = header.split_once(':')
            && key.trim().eq_ignore_ascii_case("accept")
        {
            let value = value.trim();
            request.accept = Some(match request.accept.take() {
                Some(prev) => format!("{prev}, {value}"),
                None => value.to_string(),
            });
        }
    }
    Ok(Some(request))
}

/// One response, before faults that cut the body.
struct Response {
    status: u16,
    content_type: &'static str,
    location: Option<String>,
    body: Arc<Vec<u8>>,
    /// Whether this is a wheel or sdist download (for [`Fault::Truncate`]).
    is_file: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            location: None,
            body: Arc::new(body.as_bytes().to_vec()),
            is_file: false,
        }
    }

    fn redirect(location: String) -> Response {
        Response {
            location: Some(location),
            ..Response::text(301, "moved\n")
        }
    }
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let Some(request) = read_request(&stream)? else {
        return Ok(());
    };
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    lock(&shared.requests).push(request.target.clone());
    lock(&shared.authorizations).push((request.target.clone(), request.authorization.clone()));
    let fault = *lock(&shared.fault);
    let head = request.method == "HEAD";
    let want = lock(&shared.auth).clone();
    if let Some(file) = request.target.strip_prefix("/files/") {
        let started = std::time::Instant::now();
        while lock(&shared.stalled).as_deref() == Some(file)
            && started.elapsed() < Duration::from_secs(60)
            && !shared.stop.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let response = if want.is_some() && request.authorization != want {
        Response::text(401, "credentials needed\n")
    } else if fault == Fault::Status500 {
        Response::text(500, "internal server error (fault injected by the test)\n")
    } else if request.method != "GET" && !head {
        Response::text(405, "only GET and HEAD\n")
    } else {
        route(&request, shared, fault)
    };
    write_response(&mut stream, &response, head, fault == Fault::Truncate)
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head: bool,
    truncate: bool,
) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        301 => "Moved Permanently",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nVary: Accept\r\nConnection: close\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if let Some(location) = &response.location {
        let _ = write!(out, "Location: {location}\r\n");
    }
    if response.status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    if response.status == 401 {
        out.push_str("WWW-Authenticate: Basic realm=\"pyindex\"\r\n");
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if !head {
        let body = if truncate && response.is_file {
            &response.body[..response.body.len() / 2]
        } else {
            &response.body[..]
        };
        stream.write_all(body)?;
    }
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// The negotiated format of a `/simple/` page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Json,
    Html,
    /// HTML, asked for as `application/vnd.pypi.simple.v1+html`.
    PypiHtml,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/vnd.pypi.simple.v1+json",
            Format::Html => "text/html; charset=utf-8",
            Format::PypiHtml => "application/vnd.pypi.simple.v1+html",
        }
    }
}

/// Chooses JSON or HTML from the `Accept` header (see the module docs).
fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Html;
    };
    let (mut json, mut html, mut pypi_html) = (0.0f32, 0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut params = item.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => {
                json = json.max(q)
            }
            "application/vnd.pypi.simple.v1+html" | "application/vnd.pypi.simple.latest+html" => {
                pypi_html = pypi_html.max(q)
            }
            "text/html" | "text/*" | "*/*" => html = html.max(q),
            _ => {}
        }
    }
    if json > 0.0 && json >= html && json >= pypi_html {
        Format::Json
    } else if pypi_html > 0.0 && pypi_html >= html {
        Format::PypiHtml
    } else {
        Format::Html
    }
}

fn route(request: &Request, shared: &Shared, fault: Fault) -> Response {
    let (path, query) = match request.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (request.target.as_str(), None),
    };
    let path = percent_decode(path);
    let format = query
        .and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("format="))
                .map(|f| negotiate(Some(&percent_decode(f))))
        })
        .unwrap_or_else(|| negotiate(request.accept.as_deref()));

    if let Some(filename) = path.strip_prefix("/files/") {
        return match shared.files.get(filename) {
            Some(bytes) => Response {
                status: 200,
                content_type: if filename.ends_with(".metadata") {
                    "text/plain; charset=utf-8"
                } else {
                    "application/octet-stream"
                },
                location: None,
                body: Arc::clone(bytes),
                is_file: !filename.ends_with(".metadata"),
            },
            None => Response::text(404, "no such file\n"),
        };
    }
    let Some(rest) = path.strip_prefix("/simple") else {
        return Response::text(404, "not found\n");
    };
    let page = |body: String| Response {
        status: 200,
        content_type: format.content_type(),
        location: None,
        body: Arc::new(if fault == Fault::Garbage {
            b"\x00\xff<html><a href=\"{[ not an index \xfe\x00".to_vec()
        } else {
            body.into_bytes()
        }),
        is_file: false,
    };
    if rest.is_empty() {
        return Response::redirect("/simple/".to_string());
    }
    if rest == "/" {
        return page(root_page(shared, format));
    }
    let name = rest.trim_start_matches('/');
    let (name, slash) = match name.strip_suffix('/') {
        Some(n) => (n, true),
        None => (name, false),
    };
    if name.is_empty() || name.contains('/') {
        return Response::text(404, "not found\n");
    }
    let normalized = normalize(name);
    let Some(project) = shared.projects.get(&normalized) else {
        return Response::text(404, "no such project\n");
    };
    if normalized != name || !slash {
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        return Response::redirect(format!("/simple/{normalized}/{query}"));
    }
    page(project_page(shared, &normalized, project, format, fault))
}

fn root_page(shared: &Shared, format: Format) -> String {
    if format == Format::Json {
        let projects: Vec<serde_json::Value> = shared
            .projects
            .keys()
            .map(|name| serde_json::json!({ "name": name }))
            .collect();
        return serde_json::json!({ "meta": { "api-version": "1.0" }, "projects": projects })
            .to_string();
    }
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
    );
    for name in shared.projects.keys() {
        let _ = writeln!(html, "    <a href=\"{name}/\">{name}</a>");
    }
    html.push_str("  </body>\n</html>\n");
    html
}

/// The sha256 a page advertises for a file, wrong under [`Fault::WrongHash`].
fn advertised(file: &FileEntry, fault: Fault) -> String {
    if fault == Fault::WrongHash {
        hex(&Sha256::digest(format!("not {}", file.filename)))
    } else {
        file.sha256.clone()
    }
}

fn project_page(
    shared: &Shared,
    name: &str,
    project: &Project,
    format: Format,
    fault: Fault,
) -> String {
    if format == Format::Json {
        let files: Vec<serde_json::Value> = project
            .files
            .iter()
            .map(|f| {
                let mut o = serde_json::Map::new();
                o.insert("filename".into(), f.filename.clone().into());
                o.insert(
                    "url".into(),
                    format!("{}/files/{}", files_base(shared), f.filename).into(),
                );
                o.insert(
                    "hashes".into(),
                    serde_json::json!({ "sha256": advertised(f, fault) }),
                );
                if let Some(rp) = &f.requires_python {
                    o.insert("requires-python".into(), rp.clone().into());
                }
                let yanked = match &f.yanked {
                    None => serde_json::Value::Bool(false),
                    Some(reason) if reason.is_empty() => serde_json::Value::Bool(true),
                    Some(reason) => reason.clone().into(),
                };
                o.insert("yanked".into(), yanked);
                let metadata = match &f.metadata_sha256 {
                    Some(sha) => serde_json::json!({ "sha256": sha }),
                    None => serde_json::Value::Bool(false),
                };
                o.insert("core-metadata".into(), metadata.clone());
                o.insert("dist-info-metadata".into(), metadata);
                serde_json::Value::Object(o)
            })
            .collect();
        return serde_json::json!({
            "meta": { "api-version": "1.0" },
            "name": name,
            "files": files,
        })
        .to_string();
    }
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n"
    );
    for f in &project.files {
        let prefix = match lock(&shared.files_base).as_ref() {
            Some(base) => format!("{base}/files/"),
            None => "../../files/".to_string(),
        };
        let _ = write!(
            html,
            "    <a href=\"{prefix}{}#sha256={}\"",
            f.filename,
            advertised(f, fault)
        );
        if let Some(rp) = &f.requires_python {
            let _ = write!(html, " data-requires-python=\"{}\"", html_escape(rp));
        }
        if let Some(reason) = &f.yanked {
            let _ = write!(html, " data-yanked=\"{}\"", html_escape(reason));
        }
        if let Some(sha) = &f.metadata_sha256 {
            let _ = write!(
                html,
                " data-core-metadata=\"sha256={sha}\" data-dist-info-metadata=\"sha256={sha}\""
            );
        }
        let _ = writeln!(html, ">{}</a><br/>", f.filename);
    }
    html.push_str("  </body>\n</html>\n");
    html
}

/// Where the pages say the files are.
fn files_base(shared: &Shared) -> String {
    lock(&shared.files_base)
        .clone()
        .unwrap_or_else(|| shared.base.clone())
}

/// Standard base64 with padding (for `Authorization: Basic`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// PEP 503 name normalisation: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The RECORD hash encoding: URL-safe base64 without `=` padding.
pub fn urlsafe_b64_nopad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An unusual wheel member (see [`Package::malicious_member`] and the next methods).
#[derive(Clone, Debug)]
enum Odd {
    Named(String),
    Duplicate(String, String),
    Mismatched(String, String),
    Symlink(String, String),
}

/// A name of the same length as `name`, unique per `i`, that no real member has.
fn placeholder(name: &str, i: usize) -> String {
    let tag = format!("~{i}~");
    assert!(
        name.len() >= tag.len(),
        "duplicate_member: {name:?} is too short (at least {} bytes)",
        tag.len()
    );
    format!("{tag:~<width$}", width = name.len())
}

/// Renames a member in a written zip: in its local header, its central directory entry, or
/// both (names of the same length, so no offset moves).
struct Patch {
    from: String,
    to: String,
    local: bool,
    central: bool,
}

impl Patch {
    fn apply(&self, zip: &mut [u8]) {
        let (from, to) = (self.from.as_bytes(), self.to.as_bytes());
        // (signature, offset of the name length, offset of the name) of both header kinds.
        let mut kinds = Vec::new();
        if self.local {
            kinds.push((b"PK\x03\x04", 26, 30));
        }
        if self.central {
            kinds.push((b"PK\x01\x02", 28, 46));
        }
        for (signature, len_at, name_at) in kinds {
            for start in 0..zip.len().saturating_sub(name_at) {
                if &zip[start..start + 4] != signature {
                    continue;
                }
                let len = usize::from(u16::from_le_bytes([
                    zip[start + len_at],
                    zip[start + len_at + 1],
                ]));
                let name = start + name_at..start + name_at + len;
                if len == from.len() && zip.get(name.clone()) == Some(from) {
                    zip[name].copy_from_slice(to);
                }
            }
        }
    }
}

/// A deflated zip of `members` then the symbolic links `links` (name, target), dated
/// 1980-01-01, mode 0644, in the order given.
fn zip_bytes(members: &[(String, Vec<u8>)], links: &[(String, String)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (name, data) in members {
        zip.start_file(name.as_str(), options)
            .unwrap_or_else(|e| panic!("zip member {name}: {e}"));
        zip.write_all(data).expect("write to an in-memory zip");
    }
    for (name, target) in links {
        zip.add_symlink(name.as_str(), target.as_str(), options)
            .unwrap_or_else(|e| panic!("zip link {name}: {e}"));
    }
    zip.finish().expect("finish an in-memory zip").into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The packages of the agreed example.
    fn packages() -> Vec<Package> {
        vec![
            Package::new("alpha", "1.0")
                .requires("beta>=2")
                .module(
                    "alpha/__init__.py",
                    "X = 1\ndef main():\n    print('alpha', X)\n",
                )
                .entry_point("console_scripts", "alpha", "alpha:main"),
            Package::new("beta", "2.0")
                .requires_python(">=3.8")
                .extra("fast", &["gamma"]),
            Package::new("beta", "3.0").yanked(),
            Package::new("gamma", "1.0").requires("beta; python_version < '3'"),
            Package::new("delta", "1.0")
                .sdist_only()
                .module("delta.py", "def hello():\n    return 'delta'\n")
                .entry_point("console_scripts", "delta", "delta:hello"),
            Package::new("evil", "1.0").malicious_member("../escape.txt"),
            Package::new("Zope.Interface_X", "4.0").with_sdist(),
        ]
    }

    /// A response read with a plain socket, so the test sees exactly what was sent.
    struct Got {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Got {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
        }
    }

    fn request(index: &Index, method: &str, target: &str, accept: Option<&str>) -> Got {
        let mut stream = TcpStream::connect(("127.0.0.1", index.port())).expect("connect");
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(accept) = accept {
            req.push_str(&format!("Accept: {accept}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Got {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn get(index: &Index, target: &str, accept: Option<&str>) -> Got {
        request(index, "GET", target, accept)
    }

    const JSON: &str = "application/vnd.pypi.simple.v1+json";
    const PIP_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn pip(args: &[&str]) -> std::process::Output {
        Command::new("python3")
            .args(["-m", "pip", "--disable-pip-version-check", "--no-input"])
            .args(args)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("NO_PROXY", "127.0.0.1")
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_FIND_LINKS")
            .output()
            .expect("run python3 -m pip")
    }

    fn assert_ok(out: &std::process::Output, what: &str) {
        assert!(
            out.status.success(),
            "{what} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn names_and_encodings() {
        assert_eq!(normalize("Zope.Interface__X"), "zope-interface-x");
        assert_eq!(normalize("a-_.b"), "a-b");
        assert_eq!(urlsafe_b64_nopad(b""), "");
        assert_eq!(urlsafe_b64_nopad(b"f"), "Zg");
        assert_eq!(urlsafe_b64_nopad(b"fo"), "Zm8");
        assert_eq!(urlsafe_b64_nopad(b"foo"), "Zm9v");
        assert_eq!(urlsafe_b64_nopad(&[0xfb, 0xff]), "-_8");
        let p = Package::new("Zope.Interface_X", "4.0");
        assert_eq!(p.wheel_filename(), "zope_interface_x-4.0-py3-none-any.whl");
        assert_eq!(p.sdist_filename(), "zope_interface_x-4.0.tar.gz");
    }

    #[test]
    fn metadata_lists_requirements_extras_and_markers() {
        let m = Package::new("beta", "2.0")
            .requires("delta")
            .requires_python(">=3.8")
            .extra("fast", &["gamma", "eps; os_name == 'posix'"])
            .metadata();
        assert_eq!(
            m,
            "Metadata-Version: 2.1\nName: beta\nVersion: 2.0\nSummary: beta test package\n\
             Requires-Python: >=3.8\nRequires-Dist: delta\nProvides-Extra: fast\n\
             Requires-Dist: gamma; extra == \"fast\"\n\
             Requires-Dist: eps; (os_name == 'posix') and extra == \"fast\"\n"
        );
    }

    #[test]
    fn wheel_record_matches_members() {
        let p = &packages()[0];
        let bytes = p.wheel_bytes();
        assert_eq!(bytes, p.wheel_bytes(), "wheels are reproducible");
        assert_eq!(p.sdist_bytes(), p.sdist_bytes(), "sdists are reproducible");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
        let mut members = BTreeMap::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).expect("member");
            assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
            let mut data = Vec::new();
            f.read_to_end(&mut data).expect("inflate");
            members.insert(f.name().to_string(), data);
        }
        let record = String::from_utf8(members["alpha-1.0.dist-info/RECORD"].clone()).unwrap();
        let mut listed = Vec::new();
        for line in record.lines() {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            listed.push(fields[0].to_string());
            if fields[0].ends_with("/RECORD") {
                assert_eq!((fields[1], fields[2]), ("", ""));
                continue;
            }
            let data = &members[fields[0]];
            assert_eq!(
                fields[1],
                format!("sha256={}", urlsafe_b64_nopad(&Sha256::digest(data)))
            );
            assert_eq!(fields[2], data.len().to_string());
        }
        let mut names: Vec<String> = members.keys().cloned().collect();
        names.sort();
        listed.sort();
        assert_eq!(listed, names, "RECORD lists every member");
        assert_eq!(
            String::from_utf8_lossy(&members["alpha-1.0.dist-info/entry_points.txt"]),
            "[console_scripts]\nalpha = alpha:main\n\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&members["alpha-1.0.dist-info/top_level.txt"]),
            "alpha\n"
        );
        assert!(
            String::from_utf8_lossy(&members["alpha-1.0.dist-info/WHEEL"])
                .contains("Tag: py3-none-any\n")
        );
    }

    #[test]
    fn malicious_member_is_in_the_wheel() {
        let bytes = Package::new("evil", "1.0")
            .malicious_member("../escape.txt")
            .wheel_bytes();
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
        assert!(zip.file_names().any(|n| n == "../escape.txt"));
    }

    /// Python's zipfile, a real second parser, sees what the archive tricks wrote.
    #[test]
    fn duplicate_mismatched_and_symlink_members() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("evil-1.0-py3-none-any.whl");
        let bytes = Package::new("evil", "1.0")
            .duplicate_member("evil/__init__.py", "EVIL = 1\n")
            .mismatched_member("evil/okay.txt", "evil/oops.txt")
            .symlink_member("evil/link", "/etc/passwd")
            .wheel_bytes();
        std::fs::write(&wheel, bytes).unwrap();
        let script = "import sys, zipfile\n\
            z = zipfile.ZipFile(sys.argv[1])\n\
            print(z.namelist().count('evil/__init__.py'))\n\
            print(sorted({z.read(i).decode() for i in z.infolist() if i.filename == 'evil/__init__.py'}))\n\
            link = z.getinfo('evil/link')\n\
            print(oct(link.external_attr >> 16 & 0o170000), z.read(link).decode())\n\
            try:\n    z.read('evil/okay.txt')\nexcept zipfile.BadZipFile as e:\n    print('refused:', e)\n";
        let out = Command::new("python3")
            .args(["-W", "ignore", "-c", script])
            .arg(&wheel)
            .output()
            .unwrap();
        assert_ok(&out, "python zipfile");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "2\n['EVIL = 1\\n', '__version__ = \"1.0\"\\n']\n0o120000 /etc/passwd\n\
             refused: File name in directory 'evil/okay.txt' and header b'evil/oops.txt' differ.\n"
        );
    }

    #[test]
    fn pip_installs_from_the_index() {
        let index = Index::serve(&packages());
        let target = tempfile::tempdir().unwrap();
        let t = target.path().to_str().unwrap();
        let out = pip(&[
            "install",
            "--no-cache-dir",
            "--index-url",
            &index.url(),
            "--target",
            t,
            "alpha",
            "gamma",
            "delta",
        ]);
        assert_ok(&out, "pip install");
        // beta 3.0 is yanked, so pip takes 2.0; delta came from its sdist, built offline.
        assert!(target.path().join("beta-2.0.dist-info").is_dir());
        assert!(!target.path().join("beta-3.0.dist-info").exists());
        assert!(target.path().join("delta-1.0.dist-info").is_dir());
        let run = Command::new("python3")
            .args([
                "-c",
                "import alpha, beta, delta; print(alpha.X, beta.__version__, delta.hello())",
            ])
            .env("PYTHONPATH", t)
            .output()
            .unwrap();
        assert_ok(&run, "import");
        assert_eq!(String::from_utf8_lossy(&run.stdout), "1 2.0 delta\n");
        let script = Command::new("python3")
            .arg(target.path().join("bin/alpha"))
            .env("PYTHONPATH", t)
            .output()
            .unwrap();
        assert_ok(&script, "bin/alpha");
        assert_eq!(String::from_utf8_lossy(&script.stdout), "alpha 1\n");
        let requests = index.requests();
        for page in [
            "/simple/alpha/",
            "/simple/beta/",
            "/simple/gamma/",
            "/simple/delta/",
        ] {
            assert!(requests.iter().any(|r| r == page), "{page} in {requests:?}");
        }
        assert!(
            requests
                .iter()
                .any(|r| r == "/files/beta-2.0-py3-none-any.whl")
        );
        assert!(requests.iter().any(|r| r == "/files/delta-1.0.tar.gz"));
        index.clear_requests();
        assert!(index.requests().is_empty());
    }

    #[test]
    fn sdist_builds_offline_without_build_isolation() {
        let index = Index::serve(&packages());
        let sdist = index.files_dir().join("delta-1.0.tar.gz");
        let out_dir = tempfile::tempdir().unwrap();
        let out = pip(&[
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            out_dir.path().to_str().unwrap(),
            sdist.to_str().unwrap(),
        ]);
        assert_ok(&out, "pip wheel");
        let built = out_dir.path().join("delta-1.0-py3-none-any.whl");
        let zip = zip::ZipArchive::new(std::fs::File::open(&built).unwrap()).expect("a wheel");
        let mut names: Vec<&str> = zip.file_names().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "delta-1.0.dist-info/METADATA",
                "delta-1.0.dist-info/RECORD",
                "delta-1.0.dist-info/WHEEL",
                "delta-1.0.dist-info/entry_points.txt",
                "delta-1.0.dist-info/top_level.txt",
                "delta.py",
            ]
        );
    }

    #[test]
    fn json_api_pages() {
        let pkgs = packages();
        let index = Index::serve(&pkgs);
        let root = get(&index, "/simple/", Some(JSON));
        assert_eq!(root.status, 200);
        assert_eq!(root.header("content-type"), Some(JSON));
        let root = root.json();
        assert_eq!(root["meta"]["api-version"], "1.0");
        let names: Vec<&str> = root["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "alpha",
                "beta",
                "delta",
                "evil",
                "gamma",
                "zope-interface-x"
            ]
        );

        let page = get(&index, "/simple/beta/", Some(PIP_ACCEPT));
        assert_eq!(page.header("content-type"), Some(JSON));
        let page = page.json();
        assert_eq!(page["meta"]["api-version"], "1.0");
        assert_eq!(page["name"], "beta");
        let files = page["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        let wheel = pkgs[1].wheel_bytes();
        let metadata = pkgs[1].metadata();
        assert_eq!(
            files[0],
            serde_json::json!({
                "filename": "beta-2.0-py3-none-any.whl",
                "url": index.file_url("beta-2.0-py3-none-any.whl"),
                "hashes": { "sha256": sha(&wheel) },
                "requires-python": ">=3.8",
                "yanked": false,
                "core-metadata": { "sha256": sha(metadata.as_bytes()) },
                "dist-info-metadata": { "sha256": sha(metadata.as_bytes()) },
            })
        );
        assert_eq!(files[1]["yanked"], true);
        assert!(files[1].get("requires-python").is_none());

        let delta = get(&index, "/simple/delta/", Some(JSON)).json();
        assert_eq!(delta["files"][0]["filename"], "delta-1.0.tar.gz");
        assert_eq!(delta["files"][0]["core-metadata"], false);

        // The file and its metadata are what the page says.
        let file = get(&index, "/files/beta-2.0-py3-none-any.whl", None);
        assert_eq!(file.status, 200);
        assert_eq!(file.body, wheel);
        let meta = get(&index, "/files/beta-2.0-py3-none-any.whl.metadata", None);
        assert_eq!(meta.text(), metadata);
        assert_eq!(
            get(&index, "/files/delta-1.0.tar.gz.metadata", None).status,
            404
        );
        // The query parameter overrides the header.
        let q = get(
            &index,
            "/simple/beta/?format=application/vnd.pypi.simple.v1%2Bjson",
            Some("text/html"),
        );
        assert_eq!(q.header("content-type"), Some(JSON));
    }

    #[test]
    fn html_pages() {
        let pkgs = packages();
        let index = Index::serve(&pkgs);
        let root = get(&index, "/simple/", None);
        assert_eq!(root.status, 200);
        assert_eq!(
            root.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            root.text()
                .contains("<a href=\"zope-interface-x/\">zope-interface-x</a>")
        );

        // HTML wins when the client prefers it, or names only wildcards.
        for accept in [
            None,
            Some("*/*"),
            Some("text/html"),
            Some("application/vnd.pypi.simple.v1+json; q=0.5, text/html"),
        ] {
            let page = get(&index, "/simple/beta/", accept);
            assert_eq!(
                page.header("content-type"),
                Some("text/html; charset=utf-8"),
                "{accept:?}"
            );
        }
        let page = get(
            &index,
            "/simple/beta/",
            Some("application/vnd.pypi.simple.v1+html"),
        );
        assert_eq!(
            page.header("content-type"),
            Some("application/vnd.pypi.simple.v1+html")
        );
        let html = page.text();
        let wheel_sha = sha(&pkgs[1].wheel_bytes());
        let meta_sha = sha(pkgs[1].metadata().as_bytes());
        assert!(
            html.contains(&format!(
                "<a href=\"../../files/beta-2.0-py3-none-any.whl#sha256={wheel_sha}\" \
             data-requires-python=\"&gt;=3.8\" data-core-metadata=\"sha256={meta_sha}\" \
             data-dist-info-metadata=\"sha256={meta_sha}\">beta-2.0-py3-none-any.whl</a>"
            )),
            "{html}"
        );
        assert!(html.contains("beta-3.0-py3-none-any.whl#sha256="));
        assert!(html.contains(" data-yanked=\"\""));
        let zope = get(&index, "/simple/zope-interface-x/", None).text();
        let sdist_line = zope
            .lines()
            .find(|l| l.contains(".tar.gz"))
            .expect("the sdist is listed");
        assert!(!sdist_line.contains("data-core-metadata"), "{sdist_line}");

        let yanked = Index::serve(&[Package::new("x", "1").yanked_because("bad <build>")]);
        assert!(
            get(&yanked, "/simple/x/", None)
                .text()
                .contains("data-yanked=\"bad &lt;build&gt;\"")
        );
        let yanked_json = get(&yanked, "/simple/x/", Some(JSON)).json();
        assert_eq!(yanked_json["files"][0]["yanked"], "bad <build>");
    }

    #[test]
    fn redirects_not_found_and_head() {
        let index = Index::serve(&packages());
        let moved = get(&index, "/simple/Zope_Interface.X/", None);
        assert_eq!(moved.status, 301);
        assert_eq!(moved.header("location"), Some("/simple/zope-interface-x/"));
        let moved = get(&index, "/simple/alpha", None);
        assert_eq!(moved.status, 301);
        assert_eq!(moved.header("location"), Some("/simple/alpha/"));
        assert_eq!(get(&index, "/simple/nothere/", None).status, 404);
        assert_eq!(get(&index, "/files/nothere.whl", None).status, 404);
        assert_eq!(get(&index, "/elsewhere", None).status, 404);
        assert_eq!(request(&index, "POST", "/simple/", None).status, 405);

        let full = get(&index, "/files/alpha-1.0-py3-none-any.whl", None);
        let head = request(&index, "HEAD", "/files/alpha-1.0-py3-none-any.whl", None);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("content-length"),
            Some(full.body.len().to_string().as_str())
        );
        assert_eq!(
            index.requests(),
            [
                "/simple/Zope_Interface.X/",
                "/simple/alpha",
                "/simple/nothere/",
                "/files/nothere.whl",
                "/elsewhere",
                "/simple/",
                "/files/alpha-1.0-py3-none-any.whl",
                "/files/alpha-1.0-py3-none-any.whl",
            ]
        );
        // find-links folder: the wheels and sdists, not the metadata files.
        let mut listed: Vec<String> = std::fs::read_dir(index.files_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                "alpha-1.0-py3-none-any.whl",
                "beta-2.0-py3-none-any.whl",
                "beta-3.0-py3-none-any.whl",
                "delta-1.0.tar.gz",
                "evil-1.0-py3-none-any.whl",
                "gamma-1.0-py3-none-any.whl",
                "zope_interface_x-4.0-py3-none-any.whl",
                "zope_interface_x-4.0.tar.gz",
            ]
        );
    }

    #[test]
    fn faults() {
        let pkgs = packages();
        let index = Index::serve(&pkgs);
        let wheel = pkgs[0].wheel_bytes();

        index.set_fault(Fault::Status500);
        assert_eq!(get(&index, "/simple/alpha/", None).status, 500);
        assert_eq!(
            get(&index, "/files/alpha-1.0-py3-none-any.whl", None).status,
            500
        );

        index.set_fault(Fault::Garbage);
        let page = get(&index, "/simple/alpha/", Some(JSON));
        assert_eq!(page.status, 200);
        assert!(serde_json::from_slice::<serde_json::Value>(&page.body).is_err());
        assert!(
            !get(&index, "/simple/alpha/", None)
                .text()
                .contains("alpha-1.0")
        );
        assert_eq!(
            get(&index, "/files/alpha-1.0-py3-none-any.whl", None).body,
            wheel
        );

        index.set_fault(Fault::Truncate);
        let cut = get(&index, "/files/alpha-1.0-py3-none-any.whl", None);
        assert_eq!(
            cut.header("content-length"),
            Some(wheel.len().to_string().as_str())
        );
        assert_eq!(cut.body, wheel[..wheel.len() / 2]);
        let meta = get(&index, "/files/alpha-1.0-py3-none-any.whl.metadata", None);
        assert_eq!(meta.text(), pkgs[0].metadata());

        index.set_fault(Fault::WrongHash);
        let json = get(&index, "/simple/alpha/", Some(JSON)).json();
        let advertised = json["files"][0]["hashes"]["sha256"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(advertised.len(), 64);
        assert_ne!(advertised, sha(&wheel));
        let html = get(&index, "/simple/alpha/", None).text();
        assert!(html.contains(&format!("#sha256={advertised}")));
        assert_eq!(
            get(&index, "/files/alpha-1.0-py3-none-any.whl", None).body,
            wheel
        );

        index.set_fault(Fault::None);
        let json = get(&index, "/simple/alpha/", Some(JSON)).json();
        assert_eq!(json["files"][0]["hashes"]["sha256"], sha(&wheel));
    }

    #[test]
    fn client_disconnects_and_drop() {
        let index = Index::serve(&packages());
        let port = index.port();
        // A client that closes before sending anything, and one that sends half a request.
        drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
        let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
        half.write_all(b"GET /simple/al").unwrap();
        drop(half);
        // A client that leaves while a file is being written.
        let mut leaver = TcpStream::connect(("127.0.0.1", port)).unwrap();
        leaver
            .write_all(b"GET /files/alpha-1.0-py3-none-any.whl HTTP/1.1\r\n\r\n")
            .unwrap();
        drop(leaver);
        assert_eq!(get(&index, "/simple/alpha/", None).status, 200);
        drop(index);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server stopped"
        );
    }
}
