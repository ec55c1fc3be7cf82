//! One run at a time per instance: an exclusive advisory lock (`flock`) on a file beside the
//! state file, held for the whole run, with the holder's pid written into it.
//!
//! The lock file is never deleted: removing it while another process waits on it would let
//! two runs hold "the" lock on two different files. The kernel releases the lock when the
//! holder exits, however it exits, so a `kill -9` never leaves an instance locked.
//!
//! The file is opened without following symlinks: a link planted there would make every run
//! truncate and write its target.

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another rbuildout run{} holds the lock {path}\n\
         hint: wait for it to finish, or pass --lock-timeout SECONDS to wait for it",
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { path: PathBuf, holder: Option<u32> },
    #[error(
        "timed out after {seconds} s waiting for another rbuildout run{} holding the lock {path}",
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Timeout {
        path: PathBuf,
        holder: Option<u32>,
        seconds: f64,
    },
    #[error(
        "the instance lock {path} is a symbolic link, which rbuildout never writes through\n\
         hint: remove the link; the next run creates the lock file"
    )]
    Link { path: PathBuf },
    #[error("interrupted while waiting for the lock {path}")]
    Interrupted { path: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process exiting) releases it.
#[derive(Debug)]
pub struct InstanceLock {
    _file: std::fs::File,
}

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(50);

impl InstanceLock {
    /// Takes the lock on `path`, waiting up to `timeout` (zero: fail at once) and giving up
    /// early when `cancel` becomes true (Ctrl-C while waiting).
    pub fn acquire(
        path: &Path,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<InstanceLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => LockError::Link {
                    path: path.to_path_buf(),
                },
                _ => io(e),
            })?;
        // A FIFO or a device there is nobody's lock; writing our pid into it would block or
        // reach whatever it is.
        if !file.metadata().map_err(io)?.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file: move it away",
            )));
        }
        let start = Instant::now();
        let mut told = false;
        loop {
            if try_lock(&file).map_err(io)? {
                break;
            }
            if !told && !timeout.is_zero() {
                let holder = read_holder(&mut file)
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default();
                tracing::info!(
                    "waiting for another rbuildout run{holder} to release {}",
                    path.display()
                );
                told = true;
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(LockError::Interrupted {
                    path: path.to_path_buf(),
                });
            }
            if start.elapsed() >= timeout {
                let holder = read_holder(&mut file);
                return Err(if timeout.is_zero() {
                    LockError::Held {
                        path: path.to_path_buf(),
                        holder,
                    }
                } else {
                    LockError::Timeout {
                        path: path.to_path_buf(),
                        holder,
                        seconds: timeout.as_secs_f64(),
                    }
                });
            }
            std::thread::sleep(POLL.min(timeout.saturating_sub(start.elapsed())));
        }
        // The pid is informational only: it lets a waiting run say who holds the lock.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(InstanceLock { _file: file })
    }
}

fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open for this call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

fn read_holder(file: &mut std::fs::File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_naming_the_holder_then_succeeds_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".installed.toml.lock");
        let cancel = AtomicBool::new(false);
        let held = InstanceLock::acquire(&path, Duration::ZERO, &cancel).unwrap();
        // flock locks belong to the open file description, so a second open in the same
        // process contends like another process would.
        let err = InstanceLock::acquire(&path, Duration::ZERO, &cancel).unwrap_err();
        let pid = std::process::id();
        assert!(
            matches!(err, LockError::Held { holder: Some(p), .. } if p == pid),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
        let err = InstanceLock::acquire(&path, Duration::from_millis(120), &cancel).unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        drop(held);
        InstanceLock::acquire(&path, Duration::ZERO, &cancel).unwrap();
    }

    #[test]
    fn a_link_in_place_of_the_lock_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep").unwrap();
        let path = dir.path().join(".installed.toml.lock");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err =
            InstanceLock::acquire(&path, Duration::ZERO, &AtomicBool::new(false)).unwrap_err();
        assert!(matches!(err, LockError::Link { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn waiting_stops_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let _held = InstanceLock::acquire(&path, Duration::ZERO, &AtomicBool::new(false)).unwrap();
        let err = InstanceLock::acquire(&path, Duration::from_secs(60), &AtomicBool::new(true))
            .unwrap_err();
        assert!(matches!(err, LockError::Interrupted { .. }), "{err}");
    }
}
