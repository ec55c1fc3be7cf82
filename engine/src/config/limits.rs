//! The size limits that keep a hostile or mistaken config from exhausting memory: how large
//! one config file may be, how large a value may grow during substitution, and how much
//! macro expansion may copy.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::diag::{Error, ErrorKind};

/// 16 MiB, the default of both limits: far above any real config, far below the memory of
/// any machine that runs rbuildout.
const DEFAULT: u64 = 16 << 20;
/// 64 MiB: a thousand parts each copying a hundred options of a few hundred bytes stay below.
const EXPANDED_DEFAULT: u64 = 64 << 20;

/// The environment variable bounding each config file (and each downloaded `extends`).
pub const FILE_VAR: &str = "RBUILDOUT_MAX_CONFIG_FILE";
/// The environment variable bounding each substituted value.
pub const VALUE_VAR: &str = "RBUILDOUT_MAX_VALUE";
/// The environment variable bounding what macro expansion copies in one config.
pub const EXPANDED_VAR: &str = "RBUILDOUT_MAX_EXPANDED";
/// The environment variable giving the seconds an http(s) `extends` may wait for the server
/// to connect or send the next bytes (the same setting as the egg recipe's downloads).
pub const TIMEOUT_VAR: &str = "RBUILDOUT_HTTP_TIMEOUT";
/// 30 s, the default of [`TIMEOUT_VAR`].
const TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// The limits of one load, read from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one config file may hold.
    pub file: u64,
    /// Bytes one value may reach during substitution (a list element counts 24 bytes more,
    /// the memory its string takes besides its text).
    pub value: u64,
    /// Bytes macro expansion may copy in one config, all sections together (each option
    /// counts its name, its value and 128 bytes, about what an entry costs).
    pub expanded: u64,
    /// How long an `extends` download may wait to connect or for its next bytes; the whole
    /// download may take ten times this.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            file: DEFAULT,
            value: DEFAULT,
            expanded: EXPANDED_DEFAULT,
            timeout: TIMEOUT_DEFAULT,
        }
    }
}

impl Limits {
    /// The limits from `RBUILDOUT_MAX_CONFIG_FILE`, `RBUILDOUT_MAX_VALUE` and
    /// `RBUILDOUT_MAX_EXPANDED`, each a number
    /// of bytes with an optional `K`, `M` or `G` suffix (powers of 1024).
    pub fn from_env() -> Result<Limits, Error> {
        let get = |var: &str, default: u64| -> Result<u64, Error> {
            match std::env::var(var) {
                Err(std::env::VarError::NotPresent) => Ok(default),
                Ok(s) if s.trim().is_empty() => Ok(default),
                Ok(s) => parse_size(&s).ok_or_else(|| {
                    Error::plain(
                        ErrorKind::Io,
                        format!(
                            "{var} must be a size in bytes, such as 16777216 or 16M, not `{s}`"
                        ),
                    )
                }),
                Err(_) => Err(Error::plain(
                    ErrorKind::Io,
                    format!("{var} must be a size in bytes, such as 16777216 or 16M"),
                )),
            }
        };
        Ok(Limits {
            file: get(FILE_VAR, DEFAULT)?,
            value: get(VALUE_VAR, DEFAULT)?,
            expanded: get(EXPANDED_VAR, EXPANDED_DEFAULT)?,
            timeout: timeout()?,
        })
    }
}

/// [`TIMEOUT_VAR`]: seconds, greater than zero (fractions allowed).
fn timeout() -> Result<Duration, Error> {
    let Ok(s) = std::env::var(TIMEOUT_VAR) else {
        return Ok(TIMEOUT_DEFAULT);
    };
    if s.trim().is_empty() {
        return Ok(TIMEOUT_DEFAULT);
    }
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| *n > 0.0)
        .and_then(|n| Duration::try_from_secs_f64(n).ok())
        .ok_or_else(|| {
            Error::plain(
                ErrorKind::Io,
                format!("{TIMEOUT_VAR} must be a number of seconds greater than 0, not `{s}`"),
            )
        })
}

/// `1234`, `512K`, `16M`, `1G` (also `16MiB`, `16MB`), greater than zero.
fn parse_size(s: &str) -> Option<u64> {
    rbuildout_plugin_api::parse_size(s).filter(|&n| n > 0)
}

/// Shows a byte count the way the limits are written.
pub fn show(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// Reads a config file of at most `limit` bytes, and only if it is a regular file: a device
/// (`/dev/zero`) would never end and a FIFO would block the run forever. The file is opened
/// non-blocking and checked again once open, so a FIFO swapped in between cannot hang it.
pub fn read_file(path: &Path, limit: u64) -> Result<String, String> {
    let refuse = |e: std::io::Error| -> String {
        if e.raw_os_error() == Some(libc::ELOOP) {
            return format!(
                "symlink loop at {}: the link points back to itself through other links; replace it with the file it should name",
                path.display()
            );
        }
        match e.kind() {
            std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
            _ => format!("cannot read {}: {e}", path.display()),
        }
    };
    let regular = |meta: &std::fs::Metadata| -> Result<(), String> {
        if !meta.is_file() {
            return Err(format!(
                "{} is not a regular file (a {}); a config must be a plain file",
                path.display(),
                kind(meta)
            ));
        }
        if meta.len() > limit {
            return Err(too_large(path, limit));
        }
        Ok(())
    };
    regular(&std::fs::metadata(path).map_err(refuse)?)?;
    let mut file = open_nonblocking(path).map_err(refuse)?;
    regular(&file.metadata().map_err(refuse)?)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(refuse)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_large(path: &Path, limit: u64) -> String {
    format!(
        "{} is larger than {}, the limit of a config file; if it truly is a config, raise {FILE_VAR}",
        path.display(),
        show(limit)
    )
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "folder"
    } else if t.is_fifo() {
        "named pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("1234"), Some(1234));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(show(16 << 20), "16 MiB");
        assert_eq!(show(100), "100 bytes");
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.cfg");
        std::fs::write(&f, "[a]\nx = 1\n").unwrap();
        assert_eq!(read_file(&f, 100).unwrap(), "[a]\nx = 1\n");
        assert!(
            read_file(&f, 5)
                .unwrap_err()
                .contains("larger than 5 bytes")
        );
        let e = read_file(dir.path(), 100).unwrap_err();
        assert!(e.contains("not a regular file (a folder)"), "{e}");
        let e = read_file(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(e.contains("(a device)"), "{e}");
        let link = dir.path().join("loop.cfg");
        std::os::unix::fs::symlink(&link, &link).unwrap();
        let e = read_file(&link, 100).unwrap_err();
        assert!(e.starts_with("symlink loop at "), "{e}");
    }
}
