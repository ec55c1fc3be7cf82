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

/// A size in bytes: a number, optionally followed by `K`, `M` or `G` (powers of 1024,
/// `KiB`/`MB`… accepted too).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().ok()?;
    let unit = t[digits..].trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("1T"), None);
    }

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
