//! Sdist-only requirements: built into a wheel with the target interpreter's
//! `pip wheel --no-deps`, cached per sdist hash and interpreter in
//! `<download-cache>/built/<aa>/<sdist-sha256>-<interpreter-key>/<wheel>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rbuildout_plugin_api::{Error, Result};

pub struct Builder<'a> {
    pub python: &'a Path,
    pub cache: PathBuf,
    /// Distinguishes interpreters (a built wheel may be specific to one).
    pub interp_key: String,
    /// `PIP_INDEX_URL` / `PIP_NO_INDEX`, `PIP_FIND_LINKS`: where isolated builds find their
    /// build requirements (pip's environment, so no password shows on a command line).
    pub pip_env: Vec<(String, String)>,
    /// URLs with credentials and their shown forms: pip's output is scrubbed of them
    /// before it goes into an error message.
    pub secrets: Vec<(String, String)>,
}

fn only_wheel(dir: &Path) -> Option<PathBuf> {
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    if wheels.len() == 1 {
        wheels.pop()
    } else {
        None
    }
}

impl Builder<'_> {
    fn dir_for(&self, sha: &str) -> PathBuf {
        self.cache
            .join("built")
            .join(&sha[..2.min(sha.len())])
            .join(format!("{sha}-{}", self.interp_key))
    }

    /// The file name of the wheel already built from the sdist `sha`, if any.
    pub fn cached_wheel_name(&self, sha: &str) -> Option<String> {
        only_wheel(&self.dir_for(sha))
            .and_then(|w| w.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// The wheel built from `sdist` (sha256 `sha`), building it if it is not cached.
    pub fn build(&self, sdist: &Path, sha: &str) -> Result<PathBuf> {
        let dir = self.dir_for(sha);
        if let Some(w) = only_wheel(&dir) {
            return Ok(w);
        }
        let parent = dir.parent().unwrap_or(&self.cache);
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", parent.display())))?;
        // A build killed here before leaves its `.build-*` folder unlocked: the next build
        // of the same sdist (or any in this bucket) removes it; live builds keep theirs.
        crate::install::sweep_stale(parent, ".build-");
        let tmp = crate::install::TempEgg::with_prefix(parent, ".build-")?;
        let name = sdist
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = Command::new(self.python)
            .args([
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
            ])
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_NO_INDEX")
            .envs(self.pip_env.iter().map(|(k, v)| (k, v)))
            .arg("--wheel-dir")
            .arg(tmp.path())
            .arg(sdist)
            .output()
            .map_err(|e| Error::new(format!("cannot run {}: {e}", self.python.display())))?;
        if !out.status.success() {
            let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
            for (secret, shown) in &self.secrets {
                err = err.replace(secret.as_str(), shown);
            }
            let tail: Vec<&str> = err.lines().rev().take(15).collect();
            return Err(Error::new(format!(
                "building a wheel from {name} with `{} -m pip wheel --no-deps` failed:\n{}",
                self.python.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        if only_wheel(tmp.path()).is_none() {
            return Err(Error::new(format!("pip built no single wheel from {name}")));
        }
        // Another process may have built the same wheel meanwhile: then its folder is used.
        crate::install::commit(tmp, &dir)?;
        only_wheel(&dir).ok_or_else(|| Error::new(format!("the wheel built from {name} vanished")))
    }
}
