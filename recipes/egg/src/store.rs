//! The download cache, content-addressed by sha256:
//! `<download-cache>/dists/<aa>/<sha256>/<filename>`. A file is only written there after its
//! hash was checked against what the index (or the lock) says, through a temp file + rename.

use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Error, Result};

use crate::http::Client;
use std::io::{Read, Write};

use sha2::{Digest, Sha256};

/// What a download tells as it goes: the install pool's progress counts the bytes.
pub trait Meter: Sync {
    /// A transfer of `file` starts, of `length` bytes when the server said so.
    fn begin(&self, file: &str, length: Option<u64>);
    /// `bytes` more arrived.
    fn add(&self, bytes: u64);
    /// A transfer that broke off is tried again: what it counted (`bytes`, and the `length`
    /// it began with) is taken back.
    fn undo(&self, bytes: u64, length: Option<u64>);
}

/// A [`Meter`] that counts nothing.
pub struct NoMeter;

impl Meter for NoMeter {
    fn begin(&self, _file: &str, _length: Option<u64>) {}
    fn add(&self, _bytes: u64) {}
    fn undo(&self, _bytes: u64, _length: Option<u64>) {}
}

/// Hashes (and meters) what goes through it.
struct HashingWriter<'m, W: Write> {
    inner: W,
    hasher: Sha256,
    meter: &'m dyn Meter,
    /// Bytes written so far.
    written: u64,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.meter.add(n as u64);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub struct Store<'a> {
    pub root: PathBuf,
    client: Option<&'a Client>,
}

/// Refuses file names taken from a server that could name another place.
pub fn check_filename(name: &str) -> Result<()> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0', ':'])
        || name.chars().any(char::is_control)
    {
        return Err(Error::new(format!(
            "refused file name {name:?} from the index"
        )));
    }
    Ok(())
}

impl<'a> Store<'a> {
    /// `client` is `None` offline.
    pub fn new(root: &Path, client: Option<&'a Client>) -> Store<'a> {
        Store {
            root: root.to_path_buf(),
            client,
        }
    }

    pub fn path_for(&self, sha256: &str, filename: &str) -> PathBuf {
        self.root
            .join("dists")
            .join(&sha256[..2.min(sha256.len())])
            .join(sha256)
            .join(filename)
    }

    /// The file `filename` from `url`, checked against `expect` (lowercase hex sha256) when
    /// given; returns its place in the cache and its sha256.
    pub fn fetch(
        &self,
        url: &str,
        filename: &str,
        expect: Option<&str>,
    ) -> Result<(PathBuf, String)> {
        self.fetch_metered(url, filename, expect, &NoMeter)
    }

    /// [`fetch`](Store::fetch), telling `meter` the bytes of a download as they arrive.
    pub fn fetch_metered(
        &self,
        url: &str,
        filename: &str,
        expect: Option<&str>,
        meter: &dyn Meter,
    ) -> Result<(PathBuf, String)> {
        check_filename(filename)?;
        if let Some(sha) = expect {
            let p = self.path_for(sha, filename);
            if p.is_file() {
                return Ok((p, sha.to_owned()));
            }
        }
        // Streamed into a temp file in the cache while hashing, then renamed to its
        // content address once the hash is known (and checked).
        let tmp_dir = self.root.join("dists");
        std::fs::create_dir_all(&tmp_dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", tmp_dir.display())))?;
        // What the attempt before counted, taken back when it broke off.
        let mut counted: Option<(u64, Option<u64>)> = None;
        let mut consume =
            |body: &mut dyn Read, _: &str, _: &str, length: Option<u64>| -> std::io::Result<_> {
                if let Some((bytes, length)) = counted.take() {
                    meter.undo(bytes, length);
                }
                meter.begin(filename, length);
                let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir)?;
                let sha = {
                    let mut hasher = HashingWriter {
                        inner: std::io::BufWriter::new(tmp.as_file_mut()),
                        hasher: Sha256::new(),
                        meter,
                        written: 0,
                    };
                    let copied =
                        std::io::copy(body, &mut hasher).and_then(|_| hasher.inner.flush());
                    counted = Some((hasher.written, length));
                    copied?;
                    data_encoding::HEXLOWER.encode(&hasher.hasher.finalize())
                };
                Ok((tmp, sha))
            };
        let got = if let Some(path) = url.strip_prefix("file://") {
            let path = crate::http::percent_decode(path);
            match std::fs::File::open(&path) {
                Ok(mut f) => Some({
                    let length = f.metadata().ok().map(|m| m.len());
                    consume(&mut f, "", url, length)
                        .map_err(|e| Error::new(format!("cannot read {path}: {e}")))?
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::new(format!("cannot read {path}: {e}"))),
            }
        } else {
            let Some(client) = self.client else {
                return Err(Error::new(format!(
                    "offline (-o): {filename} is not in the download cache {} (it comes from {url}); \
                     run once without -o to fetch it",
                    self.root.display()
                )));
            };
            client.get_with(url, None, &mut consume)?
        };
        let Some((tmp, got)) = got else {
            return Err(Error::new(format!("{url} was not found (404)")));
        };
        if let Some(sha) = expect
            && sha != got
        {
            return Err(Error::new(format!(
                "sha256 mismatch for {filename} from {url}: expected {sha}, got {got}; the file was refused"
            )));
        }
        let p = self.path_for(&got, filename);
        if !p.is_file() {
            let parent = p.parent().unwrap_or(&self.root);
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", parent.display())))?;
            tmp.as_file()
                .sync_all()
                .map_err(|e| Error::new(format!("cannot write {}: {e}", p.display())))?;
            tmp.persist(&p)
                .map_err(|e| Error::new(format!("cannot write {}: {e}", p.display())))?;
        }
        Ok((p, got))
    }
}
