//! Building a [`Package`] into its files: wheels (one per tag), an sdist with its own PEP 517
//! backend, the `METADATA` both carry, and the broken archives the hostile tests need. The
//! bytes of a package are the same on every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use sha2::{Digest, Sha256};

use super::encoders::{normalize, urlsafe_b64_nopad};

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
    /// Every file the index serves for this package, as (file name, bytes, is a wheel): one
    /// wheel per tag of [`wheel_tags`](Package::wheel_tags), then the sdist.
    pub(crate) fn built_files(&self) -> Vec<(String, Vec<u8>, bool)> {
        let mut built = Vec::new();
        if self.wheel {
            for tag in &self.wheel_tags {
                built.push((
                    self.wheel_filename_for(tag),
                    self.wheel_bytes_for(tag),
                    true,
                ));
            }
        }
        if self.sdist {
            built.push((self.sdist_filename(), self.sdist_bytes(), false));
        }
        built
    }

    /// The `Requires-Python` the pages advertise, if set.
    pub(crate) fn declared_requires_python(&self) -> Option<&str> {
        self.requires_python.as_deref()
    }

    /// `Some` (the reason, maybe empty) when the files are yanked.
    pub(crate) fn yank_reason(&self) -> Option<&str> {
        self.yanked.as_deref()
    }

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
            .unwrap_or_else(|| panic!("{:?} is not a valid project name", self.name))
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
