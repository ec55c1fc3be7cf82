//! The download cache, content-addressed by sha256:
//! `<download-cache>/dists/<aa>/<sha256>/<filename>`. A file is only written there after its
//! hash was checked against what the index (or the lock) says, through a temp file + rename.

use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Error, Result};

use crate::http::Client;
use crate::util::{sha256_hex, write_atomic};

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
        check_filename(filename)?;
        if let Some(sha) = expect {
            let p = self.path_for(sha, filename);
            if p.is_file() {
                return Ok((p, sha.to_owned()));
            }
        }
        let body = if url.starts_with("file://") {
            crate::http::get_file(url)?
        } else {
            let Some(client) = self.client else {
                return Err(Error::new(format!(
                    "offline (-o): {filename} is not in the download cache {} (it comes from {url}); \
                     run once without -o to fetch it",
                    self.root.display()
                )));
            };
            client.get(url, None)?
        };
        let Some(answer) = body else {
            return Err(Error::new(format!("{url} was not found (404)")));
        };
        let got = sha256_hex(&answer.body);
        if let Some(sha) = expect
            && sha != got
        {
            return Err(Error::new(format!(
                "sha256 mismatch for {filename} from {url}: expected {sha}, got {got}; the file was refused"
            )));
        }
        let p = self.path_for(&got, filename);
        if !p.is_file() {
            write_atomic(&p, &answer.body)?;
        }
        Ok((p, got))
    }
}
