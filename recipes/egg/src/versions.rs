//! zc.buildout's version options for egg parts (docs/egg.md, "Versions"): `prefer-final`,
//! `show-picked-versions`, `update-versions-file`, `allow-hosts` and `unzip`, each read from
//! the part, else from `[buildout]`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use pep508_rs::{MarkerEnvironment, Requirement};
use rbuildout_plugin_api::{Context, Error, Options, Result, tracing};

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
pub fn bool_option(options: &Options, ctx: &Context, name: &str, default: bool) -> Result<bool> {
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

    /// Records the versions this part picked (resolved, not pinned) and what asked for them,
    /// for [`run_end`], which prints and appends them once for the whole run, as
    /// zc.buildout does at the end of its run (without its date stamp in the file).
    /// `roots` are the part's requirements; `markers` the target interpreter's.
    pub fn report(
        &self,
        ctx: &Context,
        dists: &[LockedDist],
        folders: &[PathBuf],
        pin_of: &dyn Fn(&str) -> Option<String>,
        roots: &[Requirement],
        markers: &MarkerEnvironment,
    ) -> Result<()> {
        if !self.show_picked && self.update_file.is_none() {
            return Ok(());
        }
        let set: Vec<Installed> = dists
            .iter()
            .zip(folders)
            .map(|(d, folder)| Installed::read(d, folder, markers))
            .collect();
        let picked: Vec<(String, String)> = set
            .iter()
            .zip(dists)
            .filter(|(_, d)| pin_of(&d.name).is_none())
            .map(|(i, d)| (i.project.clone(), d.version.clone()))
            .collect();
        if picked.is_empty() {
            return Ok(());
        }
        let required = required_by(roots, &set, markers);
        let mut runs = RUNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let run = runs
            .entry(ctx.buildout_directory().to_path_buf())
            .or_default();
        if self.show_picked {
            run.shown.extend(picked.iter().cloned());
        }
        if let Some(file) = &self.update_file {
            run.files
                .entry(file.clone())
                .or_default()
                .extend(picked.iter().cloned());
        }
        for (req, by) in required {
            run.required_by.entry(req).or_default().extend(by);
        }
        Ok(())
    }
}

/// What the egg parts of the runs under way picked, by buildout directory (a nested build
/// has its own): printed and recorded by [`run_end`] when the run ends.
static RUNS: LazyLock<Mutex<HashMap<PathBuf, RunPicks>>> = LazyLock::new(Default::default);

#[derive(Default)]
struct RunPicks {
    /// Project name → version, from parts with `show-picked-versions`.
    shown: BTreeMap<String, String>,
    /// `update-versions-file` → the picks of the parts that name it.
    files: BTreeMap<PathBuf, BTreeMap<String, String>>,
    /// zc.buildout's `_required_by` over the run: a requirement's text → the
    /// `project==version` of each distribution that asked for it.
    required_by: BTreeMap<String, BTreeSet<String>>,
}

/// The egg plugin's end of a run (ABI `run_end`): when every part was installed, the
/// versions the run picked are printed on stdout (`show-picked-versions`) and appended to
/// each `update-versions-file`, in one block each, as zc.buildout does after its last part;
/// a failed run reports nothing (zc.buildout's neither).
pub fn run_end(end: &rbuildout_plugin_api::RunEnd) {
    let run = RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(end.directory);
    let Some(run) = run.filter(|_| end.ok) else {
        return;
    };
    if !run.shown.is_empty() {
        // On stdout, as zc.buildout prints it, in one write.
        let text = format!(
            "Versions had to be automatically picked.\n\
             The following part definition lists the versions picked:\n{}\n",
            block(&run.shown, &run.required_by).join("\n")
        );
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::error!("show-picked-versions: cannot write: {e}");
        }
    }
    for (file, picked) in &run.files {
        match append(file, picked, &run.required_by) {
            Ok(()) => tracing::info!("Picked versions have been written to {}", file.display()),
            Err(e) => tracing::error!("{}", e.message()),
        }
    }
}

/// One distribution of a part's set, as zc.buildout's installer sees it.
struct Installed {
    /// Normalised (PEP 503): what the working set knows it by.
    key: String,
    /// The name it gives itself (`zope.interface`), as zc.buildout prints it.
    project: String,
    version: String,
    /// Its `Requires-Dist` whose markers hold without extras.
    base: Vec<Asked>,
    /// The others, asked for only with an extra.
    extra: Vec<Asked>,
}

impl Installed {
    fn read(d: &LockedDist, folder: &Path, markers: &MarkerEnvironment) -> Installed {
        let metadata = crate::zc::dist_info(folder)
            .and_then(|info| std::fs::read_to_string(info.join("METADATA")).ok())
            .map(|text| crate::metadata::parse(&text))
            .unwrap_or_default();
        let mut base = Vec::new();
        let mut extra = Vec::new();
        for text in &metadata.requires_dist {
            let Ok(req) = Requirement::from_str(text) else {
                continue;
            };
            let name = written_name(text);
            let asked = Asked {
                bare: text.trim() == name,
                name,
                req,
            };
            if asked.req.evaluate_markers(markers, &[]) {
                base.push(asked);
            } else {
                extra.push(asked);
            }
        }
        Installed {
            key: d.name.clone(),
            project: if metadata.name.is_empty() {
                d.name.clone()
            } else {
                metadata.name.clone()
            },
            version: d.version.clone(),
            base,
            extra,
        }
    }
}

/// One requirement as zc.buildout's installer holds it.
#[derive(Clone)]
struct Asked {
    /// Its name as written: zc.buildout keys `_required_by` by the requirement's text.
    name: String,
    /// Nothing but the name (no specifier, extras or marker): the only text that can be a
    /// picked project's name.
    bare: bool,
    req: Requirement,
}

/// The name a requirement's text starts with, as written.
fn written_name(text: &str) -> String {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(text.len());
    text[..end].to_owned()
}

/// What zc.buildout's installer compares requirements by (pkg_resources' `hashCmp`): its
/// key (the lower-cased safe name), specifier, extras and marker.
fn identity(a: &Asked) -> (String, String, Vec<String>, String) {
    let mut extras: Vec<String> = a.req.extras.iter().map(ToString::to_string).collect();
    extras.sort();
    let spec = a
        .req
        .version_or_url
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let marker = a.req.marker.try_to_string().unwrap_or_default();
    (safe_name(&a.name).to_lowercase(), spec, extras, marker)
}

/// zc.buildout's `_required_by` for one part, by walking its installer's breadth-first
/// pass over the requirements: the part's own requirements first (their distributions join
/// the working set before the walk), then each distribution's requirements (in reverse, as
/// it extends its queue). A requirement met for the first time whose distribution is not in
/// the working set yet names every distribution already there that has the same
/// requirement among its base ones. Only a bare requirement (its text is just a name) can
/// be a picked project's name in the printed block, so only those are kept, by their text.
fn required_by(
    roots: &[Requirement],
    set: &[Installed],
    markers: &MarkerEnvironment,
) -> BTreeMap<String, BTreeSet<String>> {
    let find = |key: &str| set.iter().find(|i| i.key == key);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut ws: Vec<&Installed> = Vec::new();
    let mut queue: VecDeque<Asked> = VecDeque::new();
    for r in roots.iter().filter(|r| r.evaluate_markers(markers, &[])) {
        if let Some(i) = find(r.name.as_ref())
            && !ws.iter().any(|w| w.key == i.key)
        {
            ws.push(i);
        }
        let name = r.name.to_string();
        queue.push_front(Asked {
            bare: false,
            name,
            req: r.clone(),
        });
    }
    let mut processed = HashSet::new();
    while let Some(asked) = queue.pop_front() {
        let id = identity(&asked);
        if processed.contains(&id) {
            continue;
        }
        let Some(dist) = find(asked.req.name.as_ref()) else {
            processed.insert(id);
            continue;
        };
        if !ws.iter().any(|w| w.key == dist.key) {
            if asked.bare {
                for w in &ws {
                    if w.base.iter().any(|b| identity(b) == id) {
                        out.entry(asked.name.clone()).or_default().insert(format!(
                            "{}=={}",
                            safe_name(&w.project),
                            w.version
                        ));
                    }
                }
            }
            ws.push(dist);
        }
        let mut next: Vec<Asked> = dist.base.clone();
        next.extend(
            dist.extra
                .iter()
                .filter(|e| e.req.evaluate_markers(markers, &asked.req.extras))
                .cloned(),
        );
        queue.extend(next.into_iter().rev());
        processed.insert(id);
    }
    out
}

/// setuptools' `safe_name`: runs of characters other than letters, digits and `.` become
/// `-` (the project name of `name==version` in a `# Required by:` line).
fn safe_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
            run = false;
        } else if !run {
            out.push('-');
            run = true;
        }
    }
    out
}

/// zc.buildout's `_format_picked_versions`: `[versions]`, the picks nothing asked for by a
/// bare name as `name = version`, then each of the others after a blank line and its
/// `# Required by:` comments.
fn block(
    picked: &BTreeMap<String, String>,
    required_by: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut out = vec!["[versions]".to_owned()];
    let mut required = Vec::new();
    for (name, version) in picked {
        let line = format!("{name} = {version}");
        match required_by.get(name) {
            Some(by) => {
                required.push(String::new());
                required.push("# Required by:".to_owned());
                required.extend(by.iter().map(|b| format!("# {b}")));
                required.push(line);
            }
            None => out.push(line),
        }
    }
    out.extend(required);
    out
}

/// Appends the picks to `file` as zc.buildout does (a new file starts with `[versions]`,
/// an existing one gets a blank line first, where zc.buildout puts its date), leaving out
/// names the file already lists, and under a lock, so runs sharing the file each append
/// whole blocks.
fn append(
    file: &Path,
    picked: &BTreeMap<String, String>,
    required_by: &BTreeMap<String, BTreeSet<String>>,
) -> Result<()> {
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
    let new: BTreeMap<String, String> = picked
        .iter()
        .filter(|(n, _)| !crate::util::normalize(n).is_some_and(|n| listed.contains(&n)))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let mut lines = block(&new, required_by);
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
    fn the_block_puts_what_was_asked_for_by_name_last_with_its_askers() {
        let picked: BTreeMap<String, String> =
            [("alpha", "1.0"), ("gamma", "1.5"), ("Beta.Lib", "2")]
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
        let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        by.entry("gamma".into())
            .or_default()
            .insert("delta==1.0".into());
        by.entry("gamma".into())
            .or_default()
            .insert("alpha==1.0".into());
        by.entry("gamma>=1".into())
            .or_default()
            .insert("zeta==1".into());
        assert_eq!(
            block(&picked, &by).join("\n"),
            "[versions]\nBeta.Lib = 2\nalpha = 1.0\n\n# Required by:\n# alpha==1.0\n# delta==1.0\ngamma = 1.5"
        );
        assert_eq!(safe_name("zope_interface--x.y"), "zope-interface-x.y");
    }

    #[test]
    fn appends_once_without_a_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("versions.cfg");
        let picks = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        let none = BTreeMap::new();
        append(&f, &picks(&[("alpha", "1.0"), ("beta", "2.0")]), &none).unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "[versions]\nalpha = 1.0\nbeta = 2.0\n"
        );
        append(&f, &picks(&[("alpha", "1.0"), ("gamma", "3.0")]), &none).unwrap();
        append(&f, &picks(&[("gamma", "3.0")]), &none).unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "[versions]\nalpha = 1.0\nbeta = 2.0\n\ngamma = 3.0\n"
        );
    }
}
