//! The sha256 digest of a plugin file, part of a recipe's identity in the state file.
//!
//! Reading a multi-megabyte library costs milliseconds, so it happens only when a recipe's
//! identity is asked for, once per file version per process: the cache key includes the
//! file's size, modification time and inode, so a rebuilt plugin gets a new digest.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use sha2::{Digest, Sha256};

type Key = (PathBuf, u64, i64, i64, u64);

static CACHE: LazyLock<Mutex<HashMap<Key, String>>> = LazyLock::new(Default::default);

/// The lowercase hex sha256 of the file at `path`.
pub(super) fn file_digest(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let key = (
        path.to_path_buf(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino(),
    );
    if let Some(digest) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(digest.clone());
    }
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, digest.clone());
    Ok(digest)
}
