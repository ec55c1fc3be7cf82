//! Small shared helpers: atomic writes (through the SDK's), hashing, name normalisation.

use std::path::Path;

use pep508_rs::PackageName;
use rbuildout_plugin_api::{Result, files};
use sha2::{Digest, Sha256};

/// Writes `bytes` to `path` atomically (the SDK's [`files::write_atomic_shared`]: a temp
/// file of this process's own beside it, synced, renamed over it), creating its folder: the
/// lock, the interpreter cache and other files that another process may write at once. A
/// new file gets the mode any new file gets (0666 less the umask): a lock is read by others.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    files::write_atomic_shared(path, bytes, true)
}

/// Like [`write_atomic`] without the sync: for cache files whose loss costs only time.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> Result<()> {
    files::write_atomic_shared(path, bytes, false)
}

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// The PEP 503 normalised project name (`pep508_rs::PackageName`: lowercase, runs of `-_.`
/// as one `-`), or `None` when `name` is not a valid project name (such as an empty or
/// non-ASCII prefix of a file name), which therefore names no project.
pub fn normalize(name: &str) -> Option<String> {
    // `PackageName` takes the empty string; no project is named so.
    (!name.is_empty())
        .then(|| name.parse::<PackageName>().ok())
        .flatten()
        .map(|n| n.to_string())
}

/// Whether `a` and `b` name the same project: both valid names, equal once normalised.
pub fn same_project(a: &str, b: &str) -> bool {
    matches!((normalize(a), normalize(b)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("Zope.Interface").unwrap(), "zope-interface");
        assert_eq!(normalize("a__b-.c").unwrap(), "a-b-c");
        assert_eq!(normalize("Django").unwrap(), "django");
        // Not project names: they match nothing, not even each other.
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("-x"), None);
        assert_eq!(normalize("naïve"), None);
        assert!(same_project("Foo_Bar", "foo.bar"));
        assert!(!same_project("", ""));
    }
}
