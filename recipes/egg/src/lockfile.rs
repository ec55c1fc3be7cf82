//! The lock beside the config (`buildout.toml` -> `buildout.lock`): per egg part, what was
//! asked (`requirements`, `environment`, an `inputs` digest that also covers the pins) and
//! every distribution installed, with its file, URL and sha256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Context, Error, Result};
use serde::{Deserialize, Serialize};

const HEADER: &str = "# rbuildout lock: the exact distributions each egg part installs. Written by \
rbuildout;\n# commit it. `rbuildout -n` resolves again; `--locked` fails instead of changing it.\n\n";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LockedDist {
    pub name: String,
    pub version: String,
    pub file: String,
    pub url: String,
    pub sha256: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PartLock {
    pub requirements: Vec<String>,
    pub environment: String,
    pub inputs: String,
    #[serde(default)]
    pub dist: Vec<LockedDist>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct LockFile {
    pub version: u32,
    #[serde(default)]
    pub parts: BTreeMap<String, PartLock>,
    /// Whether the file on disk has URLs with credentials in them (written by an older
    /// rbuildout): they were taken out, and the file must be written again.
    #[serde(skip)]
    pub scrubbed: bool,
}

/// Where the lock lives: the config file's name with `.lock`. The config's path comes from
/// `buildout:config-file` when the engine provides it; otherwise `buildout.toml` /
/// `buildout.cfg` in `buildout:directory`, else the only `.toml`/`.cfg` file there.
pub fn path(ctx: &Context) -> PathBuf {
    let dir = ctx.buildout_directory();
    if let Some(cfg) = ctx
        .option("buildout", "config-file")
        .filter(|s| !s.is_empty())
    {
        return dir.join(cfg).with_extension("lock");
    }
    for name in ["buildout.toml", "buildout.cfg"] {
        if dir.join(name).is_file() {
            return dir.join("buildout.lock");
        }
    }
    let configs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml" || e == "cfg"))
                .collect()
        })
        .unwrap_or_default();
    match configs.as_slice() {
        [one] => one.with_extension("lock"),
        _ => dir.join("buildout.lock"),
    }
}

pub fn read(path: &Path) -> Result<LockFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LockFile {
                version: 1,
                ..LockFile::default()
            });
        }
        Err(e) => return Err(Error::new(format!("cannot read {}: {e}", path.display()))),
    };
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<LockFile> {
    let mut lock: LockFile = toml::from_str(text).map_err(|e| {
        Error::new(format!(
            "the lock {} is not valid: {e}; delete it to resolve again",
            path.display()
        ))
    })?;
    if lock.version != 1 {
        return Err(Error::new(format!(
            "the lock {} has format version {}, this rbuildout writes 1; delete it to resolve again",
            path.display(),
            lock.version
        )));
    }
    // A lock written before credentials were kept out of URLs loses them here (and on
    // disk at the next write): the configured index URL supplies them.
    for d in lock.parts.values_mut().flat_map(|p| p.dist.iter_mut()) {
        let (bare, credential) = crate::http::split_userinfo(&d.url);
        if credential.is_some() || bare != d.url {
            d.url = bare;
            lock.scrubbed = true;
        }
    }
    Ok(lock)
}

pub fn render(lock: &LockFile) -> Result<String> {
    Ok(format!("{HEADER}{}", toml::to_string(lock)?))
}

/// Sets `part`'s entry, re-reading the file under an exclusive lock on its folder so parts
/// running at the same time do not drop each other's entries. Writes only when changed.
pub fn store(path: &Path, part: &str, entry: &PartLock) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let guard = std::fs::File::open(dir)
        .map_err(|e| Error::new(format!("cannot open {}: {e}", dir.display())))?;
    guard
        .lock()
        .map_err(|e| Error::new(format!("cannot lock {}: {e}", dir.display())))?;
    let mut lock = read(path)?;
    if lock.parts.get(part) == Some(entry) && path.exists() && !lock.scrubbed {
        return Ok(());
    }
    lock.parts.insert(part.to_owned(), entry.clone());
    crate::util::write_atomic(path, render(&lock)?.as_bytes())
}
