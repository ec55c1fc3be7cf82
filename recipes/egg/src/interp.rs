//! The target interpreter: its PEP 508 marker environment and its supported wheel tags, asked
//! once with a small inline script and cached by the interpreter file's identity.

use std::path::{Path, PathBuf};
use std::process::Command;

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use rbuildout_plugin_api::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prints the marker environment and `packaging.tags.sys_tags()` (ranked best first) as JSON.
/// `packaging` is taken from pip's vendored copy when it is not installed; without either, a
/// minimal CPython ranking is computed.
const QUERY: &str = r#"
import json, os, platform, sys
iv = sys.implementation.version
impl_ver = "%d.%d.%d" % (iv.major, iv.minor, iv.micro)
if iv.releaselevel != "final":
    impl_ver += iv.releaselevel[0] + str(iv.serial)
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": impl_ver,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
try:
    from packaging import tags
except ImportError:
    try:
        from pip._vendor.packaging import tags
    except ImportError:
        tags = None
if tags is not None:
    ranked = [str(t) for t in tags.sys_tags()]
else:
    import sysconfig
    v = "%d%d" % sys.version_info[:2]
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    ranked = ["cp%s-cp%s-%s" % (v, v, plat), "cp%s-abi3-%s" % (v, plat),
              "cp%s-none-%s" % (v, plat), "py%s-none-%s" % (v, plat),
              "py3-none-%s" % plat, "cp%s-none-any" % v, "py%s-none-any" % v, "py3-none-any"]
print(json.dumps({"markers": env, "tags": ranked, "executable": sys.executable}))
"#;

/// Bumped when [`QUERY`] changes, so old cache entries are not read.
const CACHE_VERSION: &str = "1";

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Markers {
    implementation_name: String,
    implementation_version: String,
    os_name: String,
    platform_machine: String,
    platform_python_implementation: String,
    platform_release: String,
    platform_system: String,
    platform_version: String,
    python_full_version: String,
    python_version: String,
    sys_platform: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Answer {
    markers: Markers,
    tags: Vec<String>,
    executable: String,
}

/// What the resolver and installer need to know about the target interpreter.
pub struct Interpreter {
    /// The command used to run it (as found on PATH or given).
    pub command: PathBuf,
    /// `sys.executable`, written into `#!python` script headers.
    pub executable: String,
    pub markers: MarkerEnvironment,
    /// Supported wheel tags (`cp311-cp311-manylinux_2_17_x86_64`), best first.
    pub tags: Vec<String>,
    pub python_version: Version,
}

impl Interpreter {
    /// The program that runs it: `sys.executable` when that is an absolute path to a file
    /// (as zc.buildout runs `sys.executable`), which skips wrappers such as pyenv's shims
    /// (about 100 ms a start); else the command it was found as.
    pub fn program(&self) -> &Path {
        let exe = Path::new(&self.executable);
        if exe.is_absolute() && exe.is_file() {
            exe
        } else {
            &self.command
        }
    }

    /// The rank of a wheel's tag triple set (lower is better), or `None` if not supported.
    pub fn rank(&self, py: &str, abi: &str, plat: &str) -> Option<usize> {
        let mut best: Option<usize> = None;
        for p in py.split('.') {
            for a in abi.split('.') {
                for pl in plat.split('.') {
                    let tag = format!("{p}-{a}-{pl}");
                    if let Some(i) = self.tags.iter().position(|t| *t == tag) {
                        best = Some(best.map_or(i, |b| b.min(i)));
                    }
                }
            }
        }
        best
    }

    /// A short identity of the environment a lock was made for.
    pub fn identity(&self) -> String {
        format!(
            "{} {} {}",
            self.markers.implementation_name(),
            self.python_version,
            self.tags.first().map_or("", String::as_str)
        )
    }
}

/// Finds `python` (a path, or a name looked up on PATH).
fn locate(python: &str) -> Result<PathBuf> {
    if python.contains('/') {
        let p = PathBuf::from(python);
        return if p.exists() {
            Ok(p)
        } else {
            Err(Error::new(format!(
                "python interpreter {python} does not exist"
            )))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(python);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::new(format!(
        "python interpreter `{python}` is not on PATH (set the `python` option)"
    )))
}

/// The command `python` runs as, found on PATH, and whether its answers are in `cache`
/// (then [`query`] runs nothing).
pub fn lookup(python: &str, cache: &Path) -> Result<(PathBuf, bool)> {
    let command = locate(python)?;
    let cached = cache_file(&command, cache)?.is_file();
    Ok((command, cached))
}

/// Where the answers of `command` are cached: keyed by the interpreter file's identity.
fn cache_file(command: &Path, cache: &Path) -> Result<PathBuf> {
    let resolved = std::fs::canonicalize(command).unwrap_or_else(|_| command.to_path_buf());
    let meta = std::fs::metadata(&resolved)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", resolved.display())))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = {
        let mut h = Sha256::new();
        h.update(CACHE_VERSION.as_bytes());
        h.update(resolved.as_os_str().as_encoded_bytes());
        h.update(format!(" {} {mtime}", meta.len()).as_bytes());
        // pyenv shims pick the interpreter from this variable.
        if let Some(v) = std::env::var_os("PYENV_VERSION") {
            h.update(v.as_encoded_bytes());
        }
        data_encoding::HEXLOWER.encode(&h.finalize())
    };
    Ok(cache.join("interpreters").join(format!("{key}.json")))
}

/// Asks `python` (through the cache folder `cache`) for its environment.
pub fn query(python: &str, cache: &Path) -> Result<Interpreter> {
    let command = locate(python)?;
    let cache_file = cache_file(&command, cache)?;
    let answer: Answer = match std::fs::read(&cache_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(a) => a,
        None => {
            let out = Command::new(&command)
                .arg("-I")
                .arg("-c")
                .arg(QUERY)
                .output()
                .map_err(|e| Error::new(format!("cannot run {}: {e}", command.display())))?;
            if !out.status.success() {
                return Err(Error::new(format!(
                    "{} failed when asked for its environment: {}",
                    command.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let a: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
                Error::new(format!(
                    "unexpected answer from {} about its environment: {e}",
                    command.display()
                ))
            })?;
            crate::util::write_atomic(&cache_file, &serde_json::to_vec(&a)?)?;
            a
        }
    };
    let m = &answer.markers;
    let markers = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: &m.implementation_name,
        implementation_version: &m.implementation_version,
        os_name: &m.os_name,
        platform_machine: &m.platform_machine,
        platform_python_implementation: &m.platform_python_implementation,
        platform_release: &m.platform_release,
        platform_system: &m.platform_system,
        platform_version: &m.platform_version,
        python_full_version: &m.python_full_version,
        python_version: &m.python_version,
        sys_platform: &m.sys_platform,
    })
    .map_err(|e| Error::new(format!("bad version from {}: {e}", command.display())))?;
    let python_version: Version = m.python_full_version.parse().map_err(|e| {
        Error::new(format!(
            "bad python version from {}: {e}",
            command.display()
        ))
    })?;
    Ok(Interpreter {
        command,
        executable: answer.executable,
        markers,
        tags: answer.tags,
        python_version,
    })
}
