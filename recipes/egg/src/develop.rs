//! Develop distributions (`buildout:develop`, docs/develop.md): each Python source folder
//! built in place through its PEP 517 backend's PEP 660 hooks, run by the target
//! interpreter, and unpacked as an editable wheel into `develop-eggs-directory/<name>/`
//! (its `.dist-info` and the `.pth` naming the source folder). A folder is built again only
//! when its metadata inputs (`pyproject.toml`, `setup.py`, `setup.cfg`) or the interpreter
//! change; the resolver takes each as the one candidate for its name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use pep440_rs::Version;
use pep508_rs::Requirement;
use rbuildout_plugin_api::develop::PROJECT_FILES;
use rbuildout_plugin_api::{Context, Error, Result};
use serde::{Deserialize, Serialize};

use crate::interp::Interpreter;
use crate::lines::{LineProcess, NoAnswer};
use crate::metadata::{self, Metadata};
use crate::util::{normalize, sha256_hex};

/// What a develop folder's record says, beside its distribution in its folder.
const RECORD: &str = "rbuildout-develop.json";

/// Bumped when the way a develop distribution is made changes: every one is built again.
const FORMAT: &str = "1";

/// How long one hook run may take (`RBUILDOUT_DEVELOP_TIMEOUT`, seconds).
const TIMEOUT: Duration = Duration::from_secs(600);

/// The backend of a folder without `[build-system]` (PEP 517's fallback, as pip does).
const LEGACY_BACKEND: &str = "setuptools.build_meta:__legacy__";
const LEGACY_REQUIRES: &str = "setuptools>=40.8.0";

/// The hooks, served to one build over stdin/stdout: `argv[1]` is a JSON `{src, backend,
/// backend_path}`; each stdin line a JSON request `{stage, paths, names}` (`stage`
/// `requires` or `build`; `paths` go first on sys.path; `names` whose installed versions to
/// report), each answered by one JSON line. The answers keep the real stdout to themselves:
/// fd 1 is pointed at stderr, where the backend's own output (and its subprocesses') goes.
const HOOKS: &str = r#"
import importlib, json, os, re, sys
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr
req = json.loads(sys.argv[1])
os.chdir(req["src"])
for p in reversed(req["backend_path"]):
    sys.path.insert(0, os.path.join(req["src"], p))
build_dir = req["out"]
backend = None
def versions(names):
    try:
        from importlib import metadata
    except ImportError:
        return {}
    found = {}
    for n in names:
        try:
            found[n] = metadata.version(n)
        except Exception:
            pass
    return found
settings = {"editable_mode": "compat"}
for line in sys.stdin:
    msg = json.loads(line)
    fresh = [p for p in msg["paths"] if p not in sys.path]
    if fresh:
        at = len(req["backend_path"])
        sys.path[at:at] = fresh
        importlib.invalidate_caches()
    answer = {}
    if backend is None:
        module, _, attrs = req["backend"].partition(":")
        try:
            backend = importlib.import_module(module)
            for a in filter(None, attrs.split(".")):
                backend = getattr(backend, a)
        except ImportError as e:
            answer["missing"] = "%s" % e
            backend = None
    if backend is not None and msg["stage"] == "requires":
        hook = getattr(backend, "get_requires_for_build_editable", None)
        if hook is None or not hasattr(backend, "build_editable"):
            hook = getattr(backend, "get_requires_for_build_wheel", None)
        answer["requires"] = list(hook(settings)) if hook else []
    elif backend is not None and msg["stage"] == "build":
        if hasattr(backend, "build_editable"):
            answer["wheel"] = backend.build_editable(build_dir, settings)
        else:
            answer["metadata"] = backend.prepare_metadata_for_build_wheel(build_dir, settings)
    names = list(msg["names"])
    for r in answer.get("requires", []):
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", r)
        if m:
            names.append(m.group(1))
    answer["versions"] = versions(names)
    answers.write(json.dumps(answer) + "\n")
    answers.flush()
"#;

/// One develop distribution, ready for the resolver and the scripts.
#[derive(Clone, Debug)]
pub struct DevelopDist {
    /// Normalised (PEP 503).
    pub name: String,
    pub version: Version,
    pub metadata: Metadata,
    /// `develop-eggs-directory/<name>`: its `.dist-info` and `.pth`.
    pub folder: PathBuf,
    /// The source folder.
    pub source: PathBuf,
    /// The digest of its metadata inputs.
    pub inputs: String,
}

#[derive(Serialize, Deserialize)]
struct Record {
    source: PathBuf,
    inputs: String,
}

#[derive(Deserialize, Default)]
struct Answer {
    missing: Option<String>,
    requires: Option<Vec<String>>,
    wheel: Option<String>,
    metadata: Option<String>,
    #[serde(default)]
    versions: std::collections::HashMap<String, String>,
}

/// `[build-system]` of a folder, with PEP 517's defaults.
struct BuildSystem {
    requires: Vec<String>,
    backend: String,
    backend_path: Vec<String>,
}

fn build_system(source: &Path) -> Result<BuildSystem> {
    let path = source.join("pyproject.toml");
    let legacy = BuildSystem {
        requires: vec![LEGACY_REQUIRES.to_owned()],
        backend: LEGACY_BACKEND.to_owned(),
        backend_path: Vec::new(),
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(legacy);
    };
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
    let Some(bs) = doc.get("build-system").and_then(|b| b.as_table()) else {
        return Ok(legacy);
    };
    let strings = |key: &str| -> Vec<String> {
        bs.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(match bs.get("build-backend").and_then(|b| b.as_str()) {
        Some(backend) => BuildSystem {
            requires: strings("requires"),
            backend: backend.to_owned(),
            backend_path: strings("backend-path"),
        },
        // `requires` without a backend: the legacy backend with those requirements.
        None => BuildSystem {
            requires: strings("requires"),
            ..legacy
        },
    })
}

/// The digest of what a develop distribution is made from.
fn inputs_digest(source: &Path, interp: &Interpreter) -> String {
    let mut text = format!("format {FORMAT}\nenv {}\n", interp.identity());
    text.push_str(&format!("python {}\n", interp.executable));
    for name in PROJECT_FILES {
        let digest =
            std::fs::read(source.join(name)).map_or_else(|_| "-".into(), |b| sha256_hex(&b));
        text.push_str(&format!("{name} {digest}\n"));
    }
    sha256_hex(text.as_bytes())
}

/// The `.dist-info` folder inside `folder`.
fn dist_info(folder: &Path) -> Option<PathBuf> {
    std::fs::read_dir(folder)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "dist-info"))
}

/// The develop distribution recorded for `source` in `develop_eggs`, if any.
fn recorded(develop_eggs: &Path, source: &Path) -> Option<(PathBuf, Record)> {
    std::fs::read_dir(develop_eggs)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let folder = e.path();
            let r: Record =
                serde_json::from_slice(&std::fs::read(folder.join(RECORD)).ok()?).ok()?;
            (r.source == source).then_some((folder, r))
        })
        .next()
}

fn load(folder: &Path, source: &Path, inputs: String) -> Result<DevelopDist> {
    let info = dist_info(folder)
        .ok_or_else(|| Error::new(format!("{} holds no .dist-info", folder.display())))?;
    let text = std::fs::read_to_string(info.join("METADATA")).map_err(|e| {
        Error::new(format!(
            "cannot read {}: {e}",
            info.join("METADATA").display()
        ))
    })?;
    let metadata = metadata::parse(&text);
    let name = normalize(&metadata.name)
        .ok_or_else(|| Error::new(format!("{} names no valid project", info.display())))?;
    let version = Version::from_str(&metadata.version)
        .map_err(|e| Error::new(format!("bad version in {}: {e}", info.display())))?;
    Ok(DevelopDist {
        name,
        version,
        metadata,
        folder: folder.to_path_buf(),
        source: source.to_path_buf(),
        inputs,
    })
}

/// What the develop step needs from the egg recipe: the target interpreter, where to put
/// the distributions, and the egg fetcher for build requirements the interpreter lacks
/// (it installs them and returns their egg folders).
pub struct Develop<'a> {
    pub interp: &'a Interpreter,
    pub develop_eggs: PathBuf,
    pub fetch: &'a dyn Fn(&[Requirement]) -> Result<Vec<PathBuf>>,
    /// Backend processes started before the interpreter was asked about itself.
    pub early: Early,
}

/// A build whose backend process was started early ([`Early::start`]): its folder, its
/// `[build-system]`, and the process, already asked for its `requires`.
struct Started {
    tmp: crate::install::TempEgg,
    bs: BuildSystem,
    hooks: Hooks,
}

/// The backend processes of the folders that must be built (none is recorded for them in
/// `develop-eggs-directory`), started while the interpreter is asked about itself for the
/// first time: through the command the config names (a pyenv shim costs about 100 ms a
/// start, the backend's import about 300 ms), they run beside that question instead of
/// after it. Each is asked for its `requires` at once; the build reads the answer.
#[derive(Default)]
pub struct Early(std::collections::HashMap<PathBuf, Started>);

impl Early {
    /// Starts a backend process with `command` for each of `sources` without a record in
    /// `develop_eggs`. What fails here is left to the build, which reports it.
    pub fn start(command: &Path, develop_eggs: &Path, sources: &[PathBuf]) -> Early {
        let mut started = std::collections::HashMap::new();
        for source in sources {
            if recorded(develop_eggs, source).is_some() {
                continue;
            }
            let Ok(bs) = build_system(source) else {
                continue;
            };
            let Ok(tmp) = std::fs::create_dir_all(develop_eggs)
                .map_err(|e| Error::new(e.to_string()))
                .and_then(|()| crate::install::TempEgg::with_prefix(develop_eggs, ".tmp-"))
            else {
                continue;
            };
            let work = tmp.path().join("build");
            if std::fs::create_dir_all(&work).is_err() {
                continue;
            }
            let Ok(mut hooks) = Hooks::start(command, source, &bs, &work, false) else {
                continue;
            };
            let names: Vec<String> = static_names(&bs);
            hooks.send("requires", &[], &names);
            started.insert(source.clone(), Started { tmp, bs, hooks });
        }
        Early(started)
    }
}

/// The project names of a build system's static requirements.
fn static_names(bs: &BuildSystem) -> Vec<String> {
    bs.requires
        .iter()
        .filter_map(|r| Requirement::<pep508_rs::VerbatimUrl>::from_str(r).ok())
        .map(|r| r.name.to_string())
        .collect()
}

impl Develop<'_> {
    /// The develop distributions of `sources`, built where their inputs changed. Holds the
    /// develop-eggs folder's lock meanwhile (parts and processes build one at a time).
    pub fn prepare(mut self, ctx: &Context, sources: &[PathBuf]) -> Result<Vec<DevelopDist>> {
        let dir = &self.develop_eggs;
        if sources.is_empty() && !dir.is_dir() {
            return Ok(Vec::new());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
        let lock_path = dir.join(".rbuildout-develop.lock");
        let lock = File::create(&lock_path)
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| Error::new(format!("cannot lock {}: {e}", lock_path.display())))?;
        crate::install::sweep_stale(dir, ".tmp-");
        let mut out = Vec::new();
        for source in sources {
            let inputs = inputs_digest(source, self.interp);
            let reuse = recorded(dir, source).filter(|(_, r)| r.inputs == inputs);
            let dist = match reuse {
                Some((folder, _)) => load(&folder, source, inputs),
                None => {
                    let early = self.early.0.remove(source);
                    self.build(ctx, source, inputs, early)
                }
            }
            .map_err(|e| {
                Error::new(format!(
                    "cannot develop {}: {}",
                    source.display(),
                    e.message()
                ))
            })?;
            if let Some(other) = out.iter().find(|d: &&DevelopDist| d.name == dist.name) {
                return Err(Error::new(format!(
                    "buildout:develop: {} and {} are both the distribution `{}`",
                    other.source.display(),
                    source.display(),
                    dist.name
                )));
            }
            out.push(dist);
        }
        // A folder no longer in `develop` loses its develop distribution, as zc.buildout
        // removes its egg-link.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let folder = e.path();
                let stale = std::fs::read(folder.join(RECORD))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
                    .is_some_and(|r| !sources.contains(&r.source));
                if stale {
                    ctx.info(&format!("develop: removing {}", folder.display()));
                    let _ = std::fs::remove_dir_all(&folder);
                }
            }
        }
        drop(lock);
        Ok(out)
    }

    fn build(
        &self,
        ctx: &Context,
        source: &Path,
        inputs: String,
        early: Option<Started>,
    ) -> Result<DevelopDist> {
        ctx.info(&format!("develop: building {}", source.display()));
        let (tmp, bs, early) = match early {
            Some(s) => (s.tmp, s.bs, Some(s.hooks)),
            None => (
                crate::install::TempEgg::with_prefix(&self.develop_eggs, ".tmp-")?,
                build_system(source)?,
                None,
            ),
        };
        let static_reqs: Vec<Requirement> = bs
            .requires
            .iter()
            .map(|r| {
                Requirement::from_str(r)
                    .map_err(|e| Error::new(format!("bad build requirement `{r}`: {e}")))
            })
            .collect::<Result<_>>()?;
        let work = tmp.path().join("build");
        std::fs::create_dir_all(&work)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", work.display())))?;

        // The interpreter's own backend, with what it lacks of the build requirements
        // fetched and put ahead of its site-packages; else, when the backend does not import
        // or an installed requirement is at a version the project does not allow, an
        // isolated build environment from the egg fetcher (as pip does). One backend process
        // answers both questions and builds.
        let (mut hooks, probe) = match early {
            Some(mut hooks) => {
                let probe = hooks.answer()?;
                (hooks, probe)
            }
            None => {
                let mut hooks = Hooks::start(self.interp.program(), source, &bs, &work, false)?;
                let probe = hooks.ask("requires", &[], &static_names(&bs))?;
                (hooks, probe)
            }
        };
        let dynamic = parse_reqs(probe.requires.as_deref().unwrap_or_default())?;
        let wanted: Vec<&Requirement> = static_reqs.iter().chain(&dynamic).collect();
        let conflicting = wanted
            .iter()
            .any(|r| installed(&probe, r).is_some_and(|v| !allows(r, &v)));
        let overlay = if probe.missing.is_none() && !conflicting {
            let absent: Vec<Requirement> = wanted
                .into_iter()
                .filter(|r| installed(&probe, r).is_none())
                .cloned()
                .collect();
            if absent.is_empty() {
                Some(Vec::new())
            } else {
                let texts: Vec<String> = absent.iter().map(ToString::to_string).collect();
                ctx.info(&format!(
                    "develop: installing what the interpreter lacks to build {} ({})",
                    source.display(),
                    texts.join(", ")
                ));
                // Not to be had: the isolated build may still work (its backend may not
                // ask for them).
                (self.fetch)(&absent)
                    .inspect_err(|e| {
                        ctx.info(&format!(
                            "develop: {}; building {} in isolation",
                            e.message(),
                            source.display()
                        ));
                    })
                    .ok()
            }
        } else {
            None
        };
        let answer = if let Some(paths) = overlay {
            hooks.ask("build", &paths, &[])?
        } else {
            drop(hooks);
            ctx.info(&format!(
                "develop: installing the build requirements of {} ({})",
                source.display(),
                bs.requires.join(", ")
            ));
            let mut paths = (self.fetch)(&static_reqs)?;
            let mut hooks = Hooks::start(self.interp.program(), source, &bs, &work, true)?;
            let probe = hooks.ask("requires", &paths, &[])?;
            if let Some(why) = probe.missing {
                return Err(Error::new(format!(
                    "its build backend `{}` cannot be imported from its build requirements: {why}",
                    bs.backend
                )));
            }
            let dynamic = parse_reqs(probe.requires.as_deref().unwrap_or_default())?;
            if !dynamic.is_empty() {
                let mut all = static_reqs.clone();
                all.extend(dynamic);
                paths = (self.fetch)(&all)?;
            }
            hooks.ask("build", &paths, &[])?
        };
        if let Some(why) = answer.missing {
            return Err(Error::new(format!(
                "its build backend `{}` cannot be imported: {why}",
                bs.backend
            )));
        }
        let unpacked = tmp.path().join("dist");
        std::fs::create_dir_all(&unpacked)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", unpacked.display())))?;
        if let Some(wheel) = &answer.wheel {
            crate::install::unpack_with(
                &work.join(wheel),
                wheel,
                &unpacked,
                &self.interp.executable,
                &crate::install::Limits::default(),
                &mut |_| {},
            )?;
        } else if let Some(info) = &answer.metadata {
            // A backend without PEP 660: its metadata, and the source folder on sys.path.
            copy_dir(&work.join(info), &unpacked.join(info))?;
            std::fs::write(
                unpacked.join("__develop__.pth"),
                format!("{}\n", source.display()),
            )
            .map_err(|e| Error::new(format!("cannot write in {}: {e}", unpacked.display())))?;
        } else {
            return Err(Error::new("the backend gave neither a wheel nor metadata"));
        }
        let probe = load(&unpacked, source, inputs.clone())?;
        let record = Record {
            source: source.to_path_buf(),
            inputs: inputs.clone(),
        };
        std::fs::write(unpacked.join(RECORD), serde_json::to_vec(&record)?)
            .map_err(|e| Error::new(format!("cannot write in {}: {e}", unpacked.display())))?;
        let dest = self.develop_eggs.join(&probe.name);
        // The one folder of this name: a stale one (or another source's) goes first.
        if let Some((old, _)) = recorded(&self.develop_eggs, source)
            && old != dest
        {
            let _ = std::fs::remove_dir_all(&old);
        }
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .map_err(|e| Error::new(format!("cannot remove {}: {e}", dest.display())))?;
        }
        std::fs::rename(&unpacked, &dest).map_err(|e| {
            Error::new(format!(
                "cannot move {} to {}: {e}",
                unpacked.display(),
                dest.display()
            ))
        })?;
        drop(tmp);
        ctx.info(&format!(
            "develop: {} {} from {}",
            probe.name,
            probe.version,
            source.display()
        ));
        load(&dest, source, inputs)
    }
}

/// The installed version of `r`'s project, as the hooks reported it.
fn installed(answer: &Answer, r: &Requirement) -> Option<Version> {
    answer
        .versions
        .iter()
        .find(|(k, _)| normalize(k).as_deref() == Some(r.name.as_ref()))
        .and_then(|(_, v)| Version::from_str(v).ok())
}

/// Whether `version` is one `r` allows.
fn allows(r: &Requirement, version: &Version) -> bool {
    r.version_or_url.as_ref().is_none_or(|s| match s {
        pep508_rs::VersionOrUrl::VersionSpecifier(s) => s.contains(version),
        pep508_rs::VersionOrUrl::Url(_) => true,
    })
}

/// One backend process running [`HOOKS`] for one build, asked one stage at a time; each
/// answer must come within the timeout (`RBUILDOUT_DEVELOP_TIMEOUT`). Dropped, it is killed.
struct Hooks {
    process: LineProcess,
    backend: String,
}

impl Hooks {
    fn start(
        program: &Path,
        source: &Path,
        bs: &BuildSystem,
        work: &Path,
        isolated: bool,
    ) -> Result<Hooks> {
        let request = serde_json::json!({
            "src": source,
            "out": work,
            "backend": bs.backend,
            "backend_path": bs.backend_path,
        });
        let mut command = Command::new(program);
        // Isolated: no site-packages, no user site, no PYTHON* variables; only the build
        // requirements' egg folders.
        command.arg(if isolated { "-IS" } else { "-I" });
        command
            .arg("-c")
            .arg(HOOKS)
            .arg(request.to_string())
            .current_dir(source);
        let timeout = std::env::var("RBUILDOUT_DEVELOP_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(TIMEOUT, Duration::from_secs);
        let process = LineProcess::start(command, timeout)
            .map_err(|e| Error::new(format!("cannot run {}: {e}", program.display())))?;
        Ok(Hooks {
            process,
            backend: bs.backend.clone(),
        })
    }

    /// Asks one stage (`requires` or `build`) with `paths` added to sys.path and the
    /// installed versions of `names` reported.
    fn ask(&mut self, stage: &str, paths: &[PathBuf], names: &[String]) -> Result<Answer> {
        self.send(stage, paths, names);
        self.answer()
    }

    /// Sends one stage's request; [`answer`](Hooks::answer) reads its answer.
    fn send(&mut self, stage: &str, paths: &[PathBuf], names: &[String]) {
        let line = serde_json::json!({ "stage": stage, "paths": paths, "names": names });
        self.process.send(&line.to_string());
    }

    /// The answer to the request sent last.
    fn answer(&mut self) -> Result<Answer> {
        match self.process.receive() {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Error::new(format!("unexpected answer from the build hooks: {e}"))),
            Err(NoAnswer::Timeout) => Err(Error::new(format!(
                "its build backend `{}` did not finish in {}s (RBUILDOUT_DEVELOP_TIMEOUT)",
                self.backend,
                self.process.timeout().as_secs()
            ))),
            Err(NoAnswer::Ended { status, tail }) => {
                let status = status.map_or_else(|| "killed".to_owned(), |s| s.to_string());
                Err(Error::new(format!(
                    "its build backend `{}` failed ({status}):\n{tail}",
                    self.backend
                )))
            }
        }
    }
}

/// Whether `folder` holds a develop distribution.
pub fn is_develop(folder: &Path) -> bool {
    folder.join(RECORD).is_file()
}

/// The source folder of the develop distribution in `folder`, if it is one.
pub fn source_of(folder: &Path) -> Option<PathBuf> {
    let record: Record = serde_json::from_slice(&std::fs::read(folder.join(RECORD)).ok()?).ok()?;
    Some(record.source)
}

/// Whether `folder` is a develop distribution whose `.pth` files run code (`import` lines).
pub fn runs_code(folder: &Path) -> bool {
    if !is_develop(folder) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.path().extension().is_some_and(|x| x == "pth")
            && std::fs::read_to_string(e.path()).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.starts_with("import ") || l.starts_with("import\t"))
            })
    })
}

fn parse_reqs(texts: &[String]) -> Result<Vec<Requirement>> {
    texts
        .iter()
        .map(|r| {
            Requirement::from_str(r).map_err(|e| {
                Error::new(format!("bad build requirement `{r}` from the backend: {e}"))
            })
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let fail =
        |p: &Path, e: std::io::Error| Error::new(format!("cannot copy {}: {e}", p.display()));
    std::fs::create_dir_all(to).map_err(|e| fail(to, e))?;
    for e in std::fs::read_dir(from)
        .map_err(|e| fail(from, e))?
        .flatten()
    {
        let path = e.path();
        let dest = to.join(e.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| fail(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_system_defaults_to_the_legacy_setuptools_backend() {
        let dir = tempfile::tempdir().unwrap();
        let bs = build_system(dir.path()).unwrap();
        assert_eq!(bs.backend, LEGACY_BACKEND);
        assert_eq!(bs.requires, [LEGACY_REQUIRES]);
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[build-system]\nrequires = [\"flit_core>=3\"]\n",
        )
        .unwrap();
        let bs = build_system(dir.path()).unwrap();
        assert_eq!(
            (bs.backend.as_str(), bs.requires),
            (LEGACY_BACKEND, vec!["flit_core>=3".to_owned()])
        );
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[build-system]\nrequires = []\nbuild-backend = \"be.hooks:api\"\nbackend-path = [\"_be\"]\n",
        )
        .unwrap();
        let bs = build_system(dir.path()).unwrap();
        assert_eq!(bs.backend, "be.hooks:api");
        assert!(bs.requires.is_empty());
        assert_eq!(bs.backend_path, ["_be"]);
        std::fs::write(dir.path().join("pyproject.toml"), "[build-system\n").unwrap();
        let err = build_system(dir.path()).err().unwrap();
        assert!(
            err.message().starts_with("cannot read "),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_pth_with_an_import_line_runs_code_only_in_a_develop_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.pth"),
            "/src\nimport finder; finder.install()\n",
        )
        .unwrap();
        assert!(!runs_code(dir.path()), "not a develop folder");
        std::fs::write(dir.path().join(RECORD), "{}").unwrap();
        assert!(runs_code(dir.path()));
        std::fs::write(dir.path().join("x.pth"), "/src\n").unwrap();
        assert!(!runs_code(dir.path()));
    }
}
