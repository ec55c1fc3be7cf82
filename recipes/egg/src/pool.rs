//! The install pool: worker threads that fetch, build, unpack and compile the distributions
//! a part needs, starting while the resolver still runs, and move in only the ones the lock
//! names. Progress goes to the host through [`Progress`](crate::progress::Progress).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rbuildout_plugin_api::{Context, Error, Result};

use crate::index::{self, Kind};
use crate::lockfile::LockedDist;
use crate::progress::Progress;
use crate::store::Store;
use crate::{build, http, install, interp};

/// The egg folder a distribution goes to, when its name is known without building.
pub(crate) fn egg_folder(
    d: &LockedDist,
    eggs_dir: &Path,
    builder: &build::Builder,
) -> Option<PathBuf> {
    // A develop distribution: its folder in develop-eggs-directory (made before resolving).
    if let Some(p) = d.url.strip_prefix("develop:") {
        return Some(PathBuf::from(p));
    }
    // Locked offline from an egg found in the eggs folder: that folder.
    if let Some(p) = d.url.strip_prefix("file://") {
        let folder = PathBuf::from(http::percent_decode(p));
        let inside = folder
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|p| eggs_dir.canonicalize().is_ok_and(|e| e == p));
        if inside && folder.is_dir() {
            return Some(folder);
        }
    }
    let wheel = if d.file.ends_with(".whl") {
        Some(d.file.clone())
    } else {
        builder.cached_wheel_name(&d.sha256)
    };
    wheel.map(|w| eggs_dir.join(install::egg_name(&w)))
}

/// The egg folders of `dists`, if every one exists.
pub(crate) fn present(
    dists: &[LockedDist],
    eggs_dir: &Path,
    builder: &build::Builder,
) -> Option<Vec<PathBuf>> {
    dists
        .iter()
        .map(|d| egg_folder(d, eggs_dir, builder).filter(|f| f.is_dir()))
        .collect()
}

/// What installing one distribution gave: its unpacked temp folder and destination, `None`
/// when the destination existed already.
type Unpacked = Result<Option<(install::TempEgg, PathBuf)>>;

/// The installer's shared state.
#[derive(Default)]
struct Work {
    queue: std::collections::VecDeque<LockedDist>,
    /// Per `(file, sha256)`: `None` while queued or running, then its result.
    jobs: std::collections::HashMap<(String, String), Option<Unpacked>>,
    running: usize,
    closed: bool,
}

/// Fetches, unpacks and compiles distributions on worker threads, starting during
/// resolution: each version the resolver decides on is installed speculatively into a temp
/// folder, and [`finish`](Installer::finish) moves in the ones the lock names (a version
/// the resolver later abandons is deleted). New folders go to one interpreter run, started
/// with the first, that compiles them to `.pyc` while the others are still downloading
/// (unless `compile-bytecode = false`: then each gets the [`install::UNCOMPILED`] marker).
pub(crate) struct Installer<'a> {
    eggs_dir: &'a Path,
    store: &'a Store<'a>,
    builder: &'a build::Builder<'a>,
    interp: &'a interp::Interpreter,
    ctx: &'a Context<'a>,
    limits: install::Limits,
    /// `compile-bytecode`: new folders get `.pyc`, and existing ones marked uncompiled are
    /// compiled in place.
    compile: bool,
    work: Mutex<Work>,
    wake: std::sync::Condvar,
    compiler: Mutex<Option<install::Compiler>>,
    progress: Progress<'a>,
}

/// Worker threads of an [`Installer`].
pub(crate) const WORKERS: usize = 8;

fn key(d: &LockedDist) -> (String, String) {
    (d.file.clone(), d.sha256.clone())
}

impl<'a> Installer<'a> {
    /// An installer into `eggs_dir`, with the unpacking limits of the environment
    /// (docs/security.md); `compile` is the part's `compile-bytecode`.
    pub(crate) fn new(
        eggs_dir: &'a Path,
        store: &'a Store<'a>,
        builder: &'a build::Builder<'a>,
        interp: &'a interp::Interpreter,
        compile: bool,
        ctx: &'a Context<'a>,
    ) -> Result<Installer<'a>> {
        Ok(Installer {
            eggs_dir,
            store,
            builder,
            interp,
            ctx,
            limits: install::Limits::from_env()?,
            compile,
            work: Mutex::new(Work::default()),
            wake: std::sync::Condvar::new(),
            compiler: Mutex::new(None),
            progress: Progress::new(ctx),
        })
    }

    /// The download store the pool fetches through (the resolver uses it too).
    pub(crate) fn interp(&self) -> &'a interp::Interpreter {
        self.interp
    }

    pub(crate) fn builder(&self) -> &'a build::Builder<'a> {
        self.builder
    }

    pub(crate) fn store(&self) -> &'a Store<'a> {
        self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Work> {
        self.work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `d` unless its egg folder exists or it is queued already.
    pub(crate) fn submit(&self, d: &LockedDist) {
        if egg_folder(d, self.eggs_dir, self.builder).is_some_and(|f| f.is_dir()) {
            return;
        }
        let mut w = self.lock();
        if w.closed || w.jobs.contains_key(&key(d)) {
            return;
        }
        if w.jobs.is_empty() {
            let _ = std::fs::create_dir_all(self.eggs_dir);
            if self.compile {
                let mut c = self
                    .compiler
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                c.get_or_insert_with(|| install::Compiler::start(self.interp.program()));
            }
        }
        w.jobs.insert(key(d), None);
        w.queue.push_back(d.clone());
        drop(w);
        self.wake.notify_one();
    }

    /// A version the resolver decided on: a wheel with a known hash from an index or a
    /// find-links page is started now.
    pub(crate) fn speculate(&self, name: &str, f: &index::DistFile) {
        let (Some(sha), Kind::Wheel { .. }) = (&f.sha256, &f.kind) else {
            return;
        };
        if f.url.starts_with("file:") {
            return;
        }
        self.submit(&LockedDist {
            name: name.to_owned(),
            version: f.version.to_string(),
            file: f.filename.clone(),
            url: f.url.clone(),
            sha256: sha.clone(),
        });
    }

    /// A worker: installs queued distributions until the queue is closed.
    pub(crate) fn work(&self) {
        loop {
            let d = {
                let mut w = self.lock();
                loop {
                    if let Some(d) = w.queue.pop_front() {
                        w.running += 1;
                        break d;
                    }
                    if w.closed {
                        return;
                    }
                    w = self
                        .wake
                        .wait(w)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            let started = self.progress.working_on();
            let result = if self.ctx.cancelled() {
                Err(Error::new("cancelled"))
            } else {
                // A panic must not leave `finish` waiting for this job.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    install_one(
                        &d,
                        self,
                        self.compile
                            .then_some(&|root: &Path, rels: &[String]| self.compile(root, rels)),
                    )
                }))
                .unwrap_or_else(|_| Err(Error::new(format!("{}: internal error", d.file))))
            };
            self.progress.ready(&d.file, started);
            let mut w = self.lock();
            w.jobs.insert(key(&d), Some(result));
            w.running -= 1;
            drop(w);
            self.wake.notify_all();
        }
    }

    /// Hands modules of an egg being unpacked to the compiler.
    fn compile(&self, root: &Path, rels: &[String]) {
        if let Some(c) = self
            .compiler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            c.add(root, rels);
        }
    }

    /// Stops the workers: queued work is dropped, running work finishes.
    pub(crate) fn close(&self) {
        let mut w = self.lock();
        w.closed = true;
        w.queue.clear();
        drop(w);
        self.wake.notify_all();
    }

    /// Makes sure every distribution of `dists` has its egg folder; returns them in `dists`
    /// order. On any failure no new folder is moved in.
    pub(crate) fn finish(&self, dists: &[LockedDist]) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(self.eggs_dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", self.eggs_dir.display())))?;
        for d in dists {
            self.submit(d);
        }
        let wanted: HashSet<(String, String)> = dists.iter().map(key).collect();
        // Wait for the wanted ones (or the first failure), then for what still runs.
        let failure = {
            let mut w = self.lock();
            w.queue.retain(|d| wanted.contains(&key(d)));
            let failure = loop {
                // The wanted distributions that are not in place yet, and those of them done.
                let (done, total) = wanted.iter().fold((0, 0), |(d, t), k| match w.jobs.get(k) {
                    Some(Some(_)) => (d + 1, t + 1),
                    Some(None) => (d, t + 1),
                    None => (d, t),
                });
                if total > 0 {
                    self.progress.counts(done, total);
                }
                let failed = wanted
                    .iter()
                    .find(|k| matches!(w.jobs.get(*k), Some(Some(Err(_)))))
                    .cloned();
                let pending = wanted.iter().any(|k| matches!(w.jobs.get(k), Some(None)));
                if failed.is_some() || !pending {
                    break failed;
                }
                w = self
                    .wake
                    .wait(w)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            };
            w.closed = true;
            w.queue.clear();
            self.wake.notify_all();
            while w.running > 0 {
                w = self
                    .wake
                    .wait(w)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            failure
        };
        for t in self.progress.take_timings() {
            self.ctx.debug(&t);
        }
        let mut jobs = std::mem::take(&mut self.lock().jobs);
        let compiler = self
            .compiler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(k) = failure {
            drop(compiler);
            return match jobs.remove(&k) {
                Some(Some(Err(e))) => Err(e),
                _ => Err(Error::new(format!("{} was not installed", k.0))),
            };
        }
        let mut done = Vec::new();
        for (i, d) in dists.iter().enumerate() {
            if let Some(Some(Ok(Some((tmp, dest))))) = jobs.remove(&key(d)) {
                done.push((i, tmp, dest));
            }
        }
        // What the resolver abandoned is deleted (its temp folders drop) before compiling
        // ends, so the compiler may find some folders gone: it skips them. One it is writing
        // a `.pyc` into as it goes may not be removed whole: it is removed again below.
        let abandoned: Vec<PathBuf> = jobs
            .values()
            .filter_map(|j| match j {
                Some(Ok(Some((tmp, _)))) => Some(tmp.path().to_path_buf()),
                _ => None,
            })
            .collect();
        drop(jobs);
        if let Some(compiler) = compiler {
            let start = std::time::Instant::now();
            let compiled = compiler.finish(&|done, queued| self.progress.compiled(done, queued));
            self.ctx.debug(&format!(
                "compiled {} eggs, {:.0?} after the last was unpacked",
                done.len(),
                start.elapsed()
            ));
            if let Err(e) = compiled {
                self.ctx.warn(&format!(
                    "compiling .pyc failed (eggs are installed without them): {e}"
                ));
            }
        }
        for tmp in abandoned.iter().filter(|t| t.exists()) {
            let _ = std::fs::remove_dir_all(tmp);
        }
        let mut folders: Vec<Option<PathBuf>> = vec![None; dists.len()];
        for (i, tmp, dest) in done {
            install::commit(tmp, &dest)?;
            self.ctx.info(&format!("installed {}", dest.display()));
            folders[i] = Some(dest);
        }
        // Folders that existed, or that another process installed while we worked.
        for (i, d) in dists.iter().enumerate() {
            if folders[i].is_none() {
                folders[i] = egg_folder(d, self.eggs_dir, self.builder).filter(|f| f.is_dir());
            }
        }
        let folders: Vec<PathBuf> = folders
            .into_iter()
            .zip(dists)
            .map(|(f, d)| f.ok_or_else(|| Error::new(format!("{} was not installed", d.file))))
            .collect::<Result<_>>()?;
        if self.compile {
            compile_missing(&folders, self.interp, self.ctx);
        }
        Ok(folders)
    }
}

/// Compiles in place the folders of `folders` that were installed without `.pyc` (they hold
/// [`install::UNCOMPILED`]), then removes their marker; one stat per folder when there are
/// none. Instances doing this at once for the same folder write the same bytes (`py_compile`
/// writes each `.pyc` through a temp file and a rename, and the `.pyc` are deterministic),
/// and a reader meanwhile sees a `.pyc` whole or not at all, so no lock is taken. A run
/// killed before the end leaves the marker: the next compiling run does it again. Failing to
/// compile is a warning, as at install, and keeps the markers.
pub(crate) fn compile_missing(folders: &[PathBuf], interp: &interp::Interpreter, ctx: &Context) {
    let marked: Vec<&PathBuf> = folders
        .iter()
        .filter(|f| f.join(install::UNCOMPILED).exists())
        .collect();
    if marked.is_empty() {
        return;
    }
    let mut compiler = install::Compiler::start(interp.program());
    for folder in &marked {
        compiler.add(folder, &install::modules(folder));
    }
    match compiler.finish(&|_, _| {}) {
        Ok(()) => {
            for folder in marked {
                let _ = std::fs::remove_file(folder.join(install::UNCOMPILED));
                ctx.info(&format!("compiled {} in place", folder.display()));
            }
        }
        Err(e) => ctx.warn(&format!(
            "compiling .pyc of eggs installed without them failed (they stay without): {e}"
        )),
    }
}

/// Hands the modules (paths inside a folder) of an egg being unpacked to the compiler.
type CompileFn<'f> = dyn Fn(&Path, &[String]) + 'f;

/// Fetches (and builds) one distribution and unpacks it into a temp folder beside its
/// destination (compiling its modules with `compile`, else marking it uncompiled); `None`
/// when the destination exists already. The download's bytes go to the installer's
/// progress.
fn install_one(
    d: &LockedDist,
    installer: &Installer,
    compile: Option<&CompileFn<'_>>,
) -> Result<Option<(install::TempEgg, PathBuf)>> {
    let Installer {
        eggs_dir,
        store,
        builder,
        interp,
        limits,
        progress,
        ..
    } = installer;
    let (file, _) = store.fetch_metered(&d.url, &d.file, Some(&d.sha256), progress)?;
    let (wheel, wheel_name) = match index::parse_filename(&d.name, &d.file).map(|(_, k)| k) {
        Some(Kind::Wheel { .. }) => (file, d.file.clone()),
        _ => {
            let w = builder.build(&file, &d.sha256)?;
            let n = w
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (w, n)
        }
    };
    let dest = eggs_dir.join(install::egg_name(&wheel_name));
    if dest.is_dir() {
        return Ok(None);
    }
    let tmp = install::TempEgg::new(eggs_dir)?;
    let mut modules = Vec::new();
    let dist_info = install::unpack_with(
        &wheel,
        &wheel_name,
        tmp.path(),
        &interp.executable,
        limits,
        &mut |rel| {
            if let Some(compile) = compile {
                modules.push(rel.to_owned());
                if modules.len() >= install::COMPILE_BATCH {
                    compile(tmp.path(), &std::mem::take(&mut modules));
                }
            }
        },
    )?;
    match compile {
        Some(compile) => compile(tmp.path(), &modules),
        None => {
            let marker = tmp.path().join(install::UNCOMPILED);
            std::fs::write(&marker, "installed with compile-bytecode = false\n")
                .map_err(|e| Error::new(format!("cannot write {}: {e}", marker.display())))?;
        }
    }
    let source = tmp.path().join(dist_info).join(install::SOURCE_FILE);
    std::fs::write(&source, format!("sha256={}\nfile={}\n", d.sha256, d.file))
        .map_err(|e| Error::new(format!("cannot write {}: {e}", source.display())))?;
    Ok(Some((tmp, dest)))
}
