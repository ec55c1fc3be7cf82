//! The sha256 digest of a plugin file, part of a recipe's identity in the state file.
//!
//! Hashing a multi-megabyte library costs milliseconds, for every plugin in every run, so a
//! digest is kept with the file's [stamp](file_stamp) (size, modification and change times,
//! device and inode): in memory for the process, and across runs and instances in one small
//! file per plugin under the download cache, `<cache>/digests/<key>.txt` (the key: the first
//! 16 hex digits of the sha256 of the file's path). A kept digest is used only while the file
//! has the very stamp it was taken with; a cache file that cannot be read, is malformed or
//! was written for another path or stamp is a miss, so the file is hashed again and the
//! cache file replaced (atomically, under a temp name of this process's own). A cache that
//! cannot be written only makes the next run hash again.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use rbuildout_plugin_api::files;
use sha2::{Digest, Sha256};

/// The first line of a cache file: its format.
const CACHE_FORMAT: &str = "rbuildout plugin digest 1";

static MEMO: LazyLock<Mutex<HashMap<(PathBuf, String), String>>> = LazyLock::new(Default::default);

/// Size, modification and change times (ns), device and inode of the file at `path`: a
/// rebuilt or replaced file changes at least its change time, which no one can set back,
/// and usually its inode.
pub fn file_stamp(path: &Path) -> std::io::Result<String> {
    let m = std::fs::metadata(path)?;
    Ok(format!(
        "{} {}.{:09} {}.{:09} {}:{}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.dev(),
        m.ino()
    ))
}

/// The lowercase hex sha256 of the file at `path`.
pub(super) fn file_digest(path: &Path) -> std::io::Result<String> {
    digest_with(path, cache_file(path).as_deref())
}

/// [`file_digest`] with the cache file `cache` (none: memory only).
fn digest_with(path: &Path, cache: Option<&Path>) -> std::io::Result<String> {
    let stamp = file_stamp(path)?;
    let key = (path.to_path_buf(), stamp);
    let memo = |key, digest: &String| {
        MEMO.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, digest.clone());
    };
    if let Some(digest) = MEMO.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(digest.clone());
    }
    if let Some(digest) = cache.and_then(|c| read_cache(c, path, &key.1)) {
        memo(key, &digest);
        return Ok(digest);
    }
    let digest = hash(path)?;
    // Kept only if the file did not change while it was read.
    if file_stamp(path).ok().as_ref() == Some(&key.1) {
        if let Some(cache) = cache {
            write_cache(cache, path, &key.1, &digest);
        }
        memo(key, &digest);
    }
    Ok(digest)
}

fn hash(path: &Path) -> std::io::Result<String> {
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
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache file of the plugin at `path`, if there is a download cache.
fn cache_file(path: &Path) -> Option<PathBuf> {
    let dir = crate::config::default_download_cache()?;
    let key = hex(&Sha256::digest(path.as_os_str().as_encoded_bytes()));
    Some(dir.join("digests").join(format!("{}.txt", &key[..16])))
}

/// The text of a cache file: the format, the path, the stamp and the digest, a line each.
/// `None` for a path that a line cannot hold.
fn cache_text(path: &Path, stamp: &str, digest: &str) -> Option<String> {
    let path = path.to_str().filter(|p| !p.contains('\n'))?;
    Some(format!("{CACHE_FORMAT}\n{path}\n{stamp}\n{digest}\n"))
}

/// The digest a cache file holds for `path` with `stamp`, if it holds one.
fn read_cache(cache: &Path, path: &Path, stamp: &str) -> Option<String> {
    let text = std::fs::read_to_string(cache).ok()?;
    let digest = text.lines().nth(3)?;
    let valid = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (valid && cache_text(path, stamp, digest).as_deref() == Some(text.as_str()))
        .then(|| digest.to_string())
}

fn write_cache(cache: &Path, path: &Path, stamp: &str, digest: &str) {
    let Some(text) = cache_text(path, stamp, digest) else {
        return;
    };
    if let Err(e) = files::write_atomic_shared(cache, text.as_bytes(), false) {
        tracing::debug!("cannot keep the digest of {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_digest_is_used_only_for_the_same_path_and_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib.so");
        std::fs::write(&lib, "one").unwrap();
        let cache = dir.path().join("digests/x.txt");
        let real = digest_with(&lib, Some(&cache)).unwrap();
        assert_eq!(real, hex(&Sha256::digest(b"one")));
        let text = std::fs::read_to_string(&cache).unwrap();
        let stamp = file_stamp(&lib).unwrap();
        assert_eq!(text, cache_text(&lib, &stamp, &real).unwrap());

        // An entry for the file as it is now is believed, without reading the file (this
        // one lies, which only a test would make it do).
        let planted = "f".repeat(64);
        let lie = |stamp: &str| cache_text(&lib, stamp, &planted).unwrap();
        std::fs::write(&cache, lie(&stamp)).unwrap();
        let other = dir.path().join("other.so");
        std::fs::copy(&lib, &other).unwrap();
        assert_eq!(read_cache(&cache, &lib, &stamp), Some(planted.clone()));
        assert_eq!(read_cache(&cache, &other, &stamp), None, "another path");

        // A rewritten file (new size, times) is hashed again and the entry replaced.
        std::fs::write(&lib, "two!").unwrap();
        let stamp2 = file_stamp(&lib).unwrap();
        assert_ne!(stamp, stamp2);
        assert_eq!(read_cache(&cache, &lib, &stamp2), None);
        let again = digest_with(&lib, Some(&cache)).unwrap();
        assert_eq!(again, hex(&Sha256::digest(b"two!")));
        assert_eq!(read_cache(&cache, &lib, &stamp2), Some(again));

        // Damaged entries are misses.
        for bad in [
            String::new(),
            "garbage".to_string(),
            lie(&stamp2).replace(CACHE_FORMAT, "rbuildout plugin digest 9"),
            lie(&stamp2).replace(&planted, "F".repeat(64).as_str()),
            lie(&stamp2).replace(&planted, &planted[..63]),
            format!("{}extra\n", lie(&stamp2)),
            lie(&stamp2).trim_end().to_string(),
        ] {
            std::fs::write(&cache, &bad).unwrap();
            assert_eq!(read_cache(&cache, &lib, &stamp2), None, "{bad:?}");
        }
        std::fs::write(&cache, b"\xff\xfe").unwrap();
        assert_eq!(read_cache(&cache, &lib, &stamp2), None);
    }
}
