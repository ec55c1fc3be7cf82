//! zc.buildout's version options for egg parts (docs/egg.md, "Versions"): `prefer-final`,
//! `show-picked-versions`, `update-versions-file`, `allow-hosts` and `unzip`, each read from
//! the part, else from `[buildout]`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Context, Error, Options, Result};

use crate::lockfile::LockedDist;

/// The version options of one part.
pub struct VersionOptions {
    /// `prefer-final` (default true): pre-releases only when no final release fits.
    pub prefer_final: bool,
    pub show_picked: bool,
    /// `update-versions-file`, absolute; `None` when unset or empty.
    pub update_file: Option<PathBuf>,
    /// `allow-hosts`: glob patterns matched against a URL's `host[:port]`.
    pub allow_hosts: Vec<String>,
}

/// A boolean option of the part, else of `[buildout]`, else `default`.
fn bool_option(options: &Options, ctx: &Context, name: &str, default: bool) -> Result<bool> {
    let text = match options.get(name) {
        Some(v) => Some(v.to_owned()),
        None => ctx.option("buildout", name),
    };
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("true" | "on" | "yes" | "1") => Ok(true),
        Some("false" | "off" | "no" | "0") => Ok(false),
        Some(other) => Err(Error::new(format!(
            "option `{name}`: `{other}` is not a boolean (true or false)"
        ))),
    }
}

/// The names `eggs` asks for with one `==` specifier (`beta==2.0`), each with its version:
/// zc.buildout counts these as not picked, like pins.
pub fn exact_roots(reqs: &[pep508_rs::Requirement]) -> Vec<(String, String)> {
    use pep440_rs::Operator;
    reqs.iter()
        .filter_map(|r| match &r.version_or_url {
            Some(pep508_rs::VersionOrUrl::VersionSpecifier(s))
                if s.len() == 1
                    && matches!(s[0].operator(), Operator::Equal | Operator::EqualStar) =>
            {
                Some((r.name.to_string(), s[0].version().to_string()))
            }
            _ => None,
        })
        .collect()
}

/// `newest` of the part, else of `[buildout]` (default `false`, docs/conformance.md).
pub fn newest(options: &Options, ctx: &Context) -> Result<bool> {
    bool_option(options, ctx, "newest", false)
}

impl VersionOptions {
    pub fn read(options: &Options, ctx: &Context) -> Result<VersionOptions> {
        // `unzip` is accepted and checked; eggs are always installed unpacked.
        bool_option(options, ctx, "unzip", true)?;
        let text = |name: &str| {
            options
                .get(name)
                .map(str::to_owned)
                .or_else(|| ctx.option("buildout", name))
        };
        let update_file = text("update-versions-file")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .map(|s| {
                let p = Path::new(&s);
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    ctx.buildout_directory().join(p)
                }
            });
        let allow_hosts = match text("allow-hosts") {
            Some(v) => v
                .split(['\n', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => vec!["*".to_owned()],
        };
        Ok(VersionOptions {
            prefer_final: bool_option(options, ctx, "prefer-final", true)?,
            show_picked: bool_option(options, ctx, "show-picked-versions", false)?,
            update_file,
            allow_hosts,
        })
    }

    /// Prints and records the versions that were picked, not pinned, as zc.buildout does at
    /// the end of its run (without its date stamp in the file).
    pub fn report(
        &self,
        ctx: &Context,
        dists: &[LockedDist],
        folders: &[PathBuf],
        pin_of: &dyn Fn(&str) -> Option<String>,
    ) -> Result<()> {
        if !self.show_picked && self.update_file.is_none() {
            return Ok(());
        }
        // Named as the distribution names itself (`zope.interface`), as zc.buildout prints
        // a project name, not the normalised one the lock keys it by.
        let names: Vec<String> = dists
            .iter()
            .zip(folders)
            .map(|(d, folder)| project_name(folder).unwrap_or_else(|| d.name.clone()))
            .collect();
        let mut picked: Vec<(&str, &str)> = dists
            .iter()
            .zip(&names)
            .filter(|(d, _)| pin_of(&d.name).is_none())
            .map(|(d, name)| (name.as_str(), d.version.as_str()))
            .collect();
        picked.sort();
        if picked.is_empty() {
            return Ok(());
        }
        // On stdout, as zc.buildout prints it, in one write so parts running at once do
        // not interleave their blocks.
        if self.show_picked {
            let text = format!(
                "Versions had to be automatically picked.\n\
                 The following part definition lists the versions picked:\n{}\n",
                block(&picked)
            );
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Error::new(format!("show-picked-versions: cannot write: {e}")))?;
        }
        if let Some(file) = &self.update_file {
            append(file, &picked)?;
            ctx.info(&format!(
                "Picked versions have been written to {}",
                file.display()
            ));
        }
        Ok(())
    }
}

/// The `Name` of the distribution installed in `folder`, from its `METADATA`.
fn project_name(folder: &Path) -> Option<String> {
    let info = crate::zc::dist_info(folder)?;
    let text = std::fs::read_to_string(info.join("METADATA")).ok()?;
    let name = crate::metadata::parse(&text).name;
    (!name.is_empty()).then_some(name)
}

/// `[versions]` and one `name = version` line per pick.
fn block(picked: &[(&str, &str)]) -> String {
    let mut out = vec!["[versions]".to_owned()];
    out.extend(picked.iter().map(|(n, v)| format!("{n} = {v}")));
    out.join("\n")
}

/// Appends the picks to `file` as zc.buildout does (a new file starts with `[versions]`,
/// an existing one gets a blank line first), leaving out names the file already lists, and
/// under a lock, so parts running at once each append whole lines.
fn append(file: &Path, picked: &[(&str, &str)]) -> Result<()> {
    let err = |e: std::io::Error| {
        Error::new(format!(
            "option `update-versions-file`: cannot write {}: {e}",
            file.display()
        ))
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(file)
        .map_err(err)?;
    f.lock().map_err(err)?;
    let existing = std::fs::read_to_string(file).map_err(err)?;
    let listed: Vec<String> = existing
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(n, _)| crate::util::normalize(n.trim()))
        .collect();
    let new: Vec<(&str, &str)> = picked
        .iter()
        .filter(|(n, _)| !crate::util::normalize(n).is_some_and(|n| listed.contains(&n)))
        .copied()
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = block(&new).lines().map(str::to_owned).collect();
    if !existing.is_empty() {
        lines[0] = String::new();
    }
    lines.push(String::new());
    f.write_all(lines.join("\n").as_bytes()).map_err(err)
}

/// Whether `url` may be read under `allow-hosts` (setuptools: the glob is matched against
/// the URL's `host[:port]`; local files are always allowed).
pub fn host_allowed(patterns: &[String], url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return true;
    };
    let netloc = rest.split(['/', '?', '#']).next().unwrap_or("");
    let netloc = netloc.rsplit('@').next().unwrap_or(netloc);
    patterns
        .iter()
        .any(|p| glob(p.as_bytes(), netloc.as_bytes()))
}

/// `fnmatch` with `*` and `?`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_globs_over_host_and_port() {
        let p = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(host_allowed(&p(&["*"]), "http://a.b:8080/x"));
        assert!(host_allowed(
            &p(&["127.0.0.1:*"]),
            "http://127.0.0.1:8080/x"
        ));
        assert!(!host_allowed(&p(&["127.0.0.1"]), "http://127.0.0.1:8080/x"));
        assert!(!host_allowed(
            &p(&["127.0.0.1:*"]),
            "http://localhost:8080/x"
        ));
        assert!(host_allowed(
            &p(&["*.python.org"]),
            "https://files.python.org/a"
        ));
        assert!(!host_allowed(
            &p(&["*.python.org"]),
            "https://evil.com/python.org"
        ));
        assert!(host_allowed(&p(&[]), "file:///tmp/x.whl"));
        assert!(!host_allowed(&p(&[]), "http://a/x.whl"));
    }

    #[test]
    fn appends_once_without_a_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("versions.cfg");
        append(&f, &[("alpha", "1.0"), ("beta", "2.0")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "[versions]\nalpha = 1.0\nbeta = 2.0\n"
        );
        append(&f, &[("alpha", "1.0"), ("gamma", "3.0")]).unwrap();
        append(&f, &[("gamma", "3.0")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "[versions]\nalpha = 1.0\nbeta = 2.0\n\ngamma = 3.0\n"
        );
    }
}
