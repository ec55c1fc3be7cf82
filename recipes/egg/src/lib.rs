//! The `egg` recipe (SPEC §5.1): resolves PEP 508 requirements against the target
//! interpreter, installs each distribution into its own folder of `eggs-directory`, keeps a
//! lock beside the config, and publishes `paths` and `eggs`. See docs/egg.md.

#![forbid(unsafe_code)]

mod bridge;
mod build;
mod develop;
mod extensions;
mod http;
mod index;
mod install;
mod interp;
mod lines;
mod lockfile;
mod metadata;
mod pool;
mod progress;
mod resolve;
mod store;
mod util;
mod versions;
mod zc;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::{ExtraName, Requirement};
use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};
use sha2::{Digest, Sha256};

use crate::index::Finder;
use crate::lockfile::{LockedDist, PartLock};
use crate::pool::{Installer, WORKERS, present};
use crate::store::Store;

pub struct Egg;

impl Recipe for Egg {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        run(options, ctx)
    }

    /// Runs like install: the lock, `-n` and missing eggs are checked on every build.
    fn update(options: &Options, ctx: &Context) -> Result<()> {
        run(options, ctx)
    }
}

export_plugin! {
    name: "egg",
    version: env!("CARGO_PKG_VERSION"),
    recipes: {
        "default" => Egg,
        // zc.buildout's own recipes under their names (docs/zc-recipes.md).
        "zc.recipe.egg:default" => zc::Scripts,
        "zc.recipe.egg:scripts" => zc::Scripts,
        "zc.recipe.egg:script" => zc::Scripts,
        "zc.recipe.egg:eggs" => zc::Eggs,
        "zc.recipe.egg:custom" => zc::Custom,
        "zc.recipe.egg:develop" => zc::Develop,
        "z3c.recipe.scripts:default" => zc::Z3cScripts,
        "z3c.recipe.scripts:interpreter" => zc::Z3cInterpreter,
        "zc.recipe.testrunner:default" => zc::TestRunner,
        // The Python recipe bridge: recipes no plugin provides (docs/python-recipes.md).
        "python" => bridge::Bridged,
        // zc.buildout extensions, which the engine loads through the bridge.
        "extensions" => extensions::Extensions,
    },
    run_end: run_end,
}

/// The end of a run: the picked versions of the whole run printed and recorded once
/// (docs/egg.md), the Python recipe bridge's driver ended (unless extensions are loaded in
/// it: their unloaders end it, after the outermost run).
fn run_end(end: &rbuildout_plugin_api::RunEnd) {
    versions::run_end(end);
    bridge::forget_created();
    if !extensions::loaded() {
        bridge::run_end();
    }
}

thread_local! {
    /// Set while the bridge installs what a Python recipe asked for
    /// ([`for_python_recipe`]): the lock entry's name, and no outputs are published.
    static ASKED_BY_RECIPE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (an egg run on this thread) for a Python recipe's own request: its lock entry
/// is `key`, not the part's, and it publishes nothing (the part's outputs are its recipe's).
pub(crate) fn for_python_recipe<T>(key: &str, f: impl FnOnce() -> T) -> T {
    ASKED_BY_RECIPE.with(|a| *a.borrow_mut() = Some(key.to_owned()));
    let out = f();
    ASKED_BY_RECIPE.with(|a| *a.borrow_mut() = None);
    out
}

/// The name of the lock entry an egg run reads and writes: the part's, or the one
/// [`for_python_recipe`] set.
fn lock_key(ctx: &Context) -> String {
    ASKED_BY_RECIPE
        .with(|a| a.borrow().clone())
        .unwrap_or_else(|| ctx.part().to_owned())
}

/// Reads the requirement lines of `eggs`: one per line; a single line that is not one
/// requirement is split on whitespace (`eggs = alpha beta`).
fn requirements(text: &str, extras: &[&str]) -> Result<Vec<Requirement>> {
    let mut lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if lines.len() == 1 && Requirement::<pep508_rs::VerbatimUrl>::from_str(&lines[0]).is_err() {
        lines = lines[0].split_whitespace().map(str::to_owned).collect();
    }
    let mut out = Vec::new();
    for line in lines {
        let mut req = Requirement::from_str(&line)
            .map_err(|e| Error::new(format!("option `eggs`: bad requirement `{line}`: {e}")))?;
        for e in extras {
            let extra = ExtraName::from_str(e)
                .map_err(|err| Error::new(format!("option `extras`: bad extra `{e}`: {err}")))?;
            if !req.extras.contains(&extra) {
                req.extras.push(extra);
            }
        }
        out.push(req);
    }
    Ok(out)
}

/// The spellings under which a pin for `name` (normalised) is looked up in `[versions]`.
fn pin_spellings(name: &str) -> Vec<String> {
    let mut out = vec![
        name.to_owned(),
        name.replace('-', "_"),
        name.replace('-', "."),
    ];
    let mut cap = name.to_owned();
    if let Some(f) = cap.get_mut(..1) {
        f.make_ascii_uppercase();
    }
    out.push(cap);
    out.dedup();
    out
}

/// The digest of what a lock entry was made from.
fn inputs_digest(
    reqs: &[String],
    prereleases: bool,
    env: &str,
    pins: &[(String, Option<String>)],
    develop: &[develop::DevelopDist],
) -> String {
    let mut h = Sha256::new();
    for r in reqs {
        h.update(format!("req {r}\n"));
    }
    for d in develop {
        h.update(format!("develop {} {} {}\n", d.name, d.version, d.inputs));
    }
    h.update(format!("pre {prereleases}\nenv {env}\n"));
    for (n, p) in pins {
        h.update(format!("pin {n} {}\n", p.as_deref().unwrap_or("-")));
    }
    data_encoding::HEXLOWER.encode(&h.finalize())
}

fn absolute(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// The part's options, with `[buildout]`'s as defaults.
struct Settings {
    reqs: Vec<Requirement>,
    /// A name looked up on PATH, or an absolute path.
    python: String,
    eggs_dir: PathBuf,
    cache: PathBuf,
    /// Without userinfo: what is shown and stored.
    index_url: Option<String>,
    /// As configured, userinfo included: only for `pip` (sdist builds), which redacts it.
    index_url_raw: Option<String>,
    /// Without userinfo.
    find_links: Vec<String>,
    /// Basic auth per origin, from the userinfo of `index_url` and `find_links`.
    credentials: Vec<http::Credential>,
    allow_insecure: bool,
    allow_picked: bool,
    prereleases: bool,
    /// The name of the pins section.
    versions_section: String,
    offline: bool,
    /// `prefer-final`, `show-picked-versions`, `update-versions-file`, `allow-hosts`.
    vopts: versions::VersionOptions,
    /// `-n`, or `newest = true` in the part or `[buildout]`: resolve again, asking the index.
    newest: bool,
    /// `compile-bytecode` of the part, else of `[buildout]` (default `true`): new egg
    /// folders get `.pyc`, and shared ones installed without are compiled in place.
    compile: bool,
}

impl Settings {
    fn read(options: &Options, ctx: &Context) -> Result<Settings> {
        let part = ctx.part();
        let dir = ctx.buildout_directory();
        let from_buildout = |name: &str| {
            ctx.option("buildout", name)
                .filter(|s| !s.trim().is_empty())
        };

        let extras = options.get_list("extras");
        let reqs = requirements(options.get("eggs").unwrap_or(part), &extras)?;
        let buildout = ctx.buildout();
        // A name is looked up on PATH; a relative path is relative to the buildout directory.
        let python = match options.get("python").filter(|s| !s.trim().is_empty()) {
            Some(p) => p.trim().to_owned(),
            None => buildout.python(),
        };
        let python = if python.contains('/') {
            absolute(dir, &python).display().to_string()
        } else {
            python
        };
        let eggs_dir = buildout.eggs_directory();
        // No cache configured (`download-cache` set empty): one beside the eggs folder.
        let cache = buildout
            .download_cache()
            .unwrap_or_else(|| eggs_dir.parent().unwrap_or(dir).join(".rbuildout-cache"));
        // Set but empty (in the part or in [buildout]) means no index.
        let index_url = match options.get("index") {
            Some(v) => Some(v.trim().to_owned()),
            None => buildout.index(),
        }
        .filter(|s| !s.trim().is_empty());
        let find_links: Vec<String> = match options.get("find-links") {
            Some(_) => options
                .get_list("find-links")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            None => from_buildout("find-links")
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
        };
        // Credentials leave the URLs here, before any is shown, logged or stored.
        let mut credentials = Vec::new();
        let index_url_raw = index_url;
        let index_url = index_url_raw.as_deref().map(|u| {
            let (bare, c) = http::split_userinfo(u.trim());
            credentials.extend(c);
            bare
        });
        let find_links: Vec<String> = find_links
            .iter()
            .map(|u| {
                let (bare, c) = http::split_userinfo(u);
                credentials.extend(c);
                bare
            })
            .collect();
        let allow_insecure = match options.get("allow-insecure") {
            Some(_) => options.get_bool("allow-insecure", false)?,
            None => from_buildout("allow-insecure").is_some_and(|v| v.trim() == "true"),
        };
        let allow_picked = match options.get("allow-picked-versions") {
            Some(_) => options.get_bool("allow-picked-versions", true)?,
            None => buildout.allow_picked_versions(),
        };
        let vopts = versions::VersionOptions::read(options, ctx)?;
        let newest = ctx.newest() || versions::newest(options, ctx)?;
        // `prefer-final = false` takes the newest version, pre-release or not.
        let prereleases = options.get_bool("prereleases", false)? || !vopts.prefer_final;
        let versions_section = buildout.versions();
        let offline = ctx.offline() || from_buildout("offline").is_some_and(|v| v.trim() == "true");
        Ok(Settings {
            reqs,
            python,
            eggs_dir,
            cache,
            index_url,
            index_url_raw,
            find_links,
            credentials,
            allow_insecure,
            allow_picked,
            prereleases,
            versions_section,
            offline,
            vopts,
            newest,
            compile: versions::bool_option(options, ctx, "compile-bytecode", true)?,
        })
    }
}

impl Settings {
    /// The installer into the part's eggs folder, compiling as `compile-bytecode` says.
    fn installer<'a>(
        &'a self,
        store: &'a Store<'a>,
        builder: &'a build::Builder<'a>,
        interp: &'a interp::Interpreter,
        ctx: &'a Context<'a>,
    ) -> Result<Installer<'a>> {
        Installer::new(&self.eggs_dir, store, builder, interp, self.compile, ctx)
    }

    /// The HTTP client for the index and find-links (`None` offline).
    fn client(&self) -> Result<Option<http::Client>> {
        if self.offline {
            return Ok(None);
        }
        let config = http::Config::from_env(self.credentials.to_vec(), self.allow_insecure)?;
        Ok(Some(http::Client::new(config)?.with_page_cache(
            http::PageCache {
                dir: self.cache.join("pages"),
                refresh: self.newest,
            },
        )))
    }
}

fn run(options: &Options, ctx: &Context) -> Result<()> {
    let key = lock_key(ctx);
    let part = key.as_str();
    let dir = ctx.buildout_directory();
    let settings = Settings::read(options, ctx)?;

    // Temp folders of killed runs go, whatever this run does next.
    if settings.eggs_dir.is_dir() {
        install::sweep_stale_temps(&settings.eggs_dir);
    }
    let develop_eggs = ctx
        .buildout()
        .path("develop-eggs-directory")
        .unwrap_or_else(|| dir.join("develop-eggs"));
    let sources = &ctx.buildout().develop().folders;
    // The first question to a new interpreter and the develop builds' backend imports run
    // side by side (docs/develop.md).
    let (command, cached) = interp::lookup(&settings.python, &settings.cache)?;
    let early = if cached || sources.is_empty() {
        develop::Early::default()
    } else {
        develop::Early::start(&command, &develop_eggs, sources)
    };
    let interp = interp::query(&settings.python, &settings.cache)?;
    let lock_path = lockfile::path(ctx);
    let lock = lockfile::read(&lock_path)?;
    let lock_name = lock_path.display().to_string();

    let env = interp.identity();
    // Through pip's environment, not its command line: the index URL may hold a password,
    // and a command line is visible to every user of the machine (`ps`).
    let mut pip_env = Vec::new();
    let mut secrets = Vec::new();
    match (&settings.index_url_raw, settings.offline) {
        (Some(i), false) => {
            pip_env.push(("PIP_INDEX_URL".to_owned(), i.clone()));
            if http::split_userinfo(i).1.is_some() {
                secrets.push((i.clone(), http::split_userinfo(i).0));
            }
        }
        _ => pip_env.push(("PIP_NO_INDEX".to_owned(), "1".to_owned())),
    }
    if !settings.find_links.is_empty() {
        let links: Vec<String> = settings
            .find_links
            .iter()
            .map(|f| absolute(dir, f).display().to_string())
            .collect();
        pip_env.push(("PIP_FIND_LINKS".to_owned(), links.join(" ")));
    }
    let builder = build::Builder {
        python: &interp.command,
        cache: settings.cache.clone(),
        interp_key: util::sha256_hex(env.as_bytes())[..16].to_owned(),
        pip_env,
        secrets,
    };

    // Where distributions are found: the index, find-links, the eggs folder.
    let finder = finder_for(|client| {
        Finder::new(
            client,
            settings.index_url.as_deref(),
            settings.find_links.clone(),
            dir,
        )
        .with_cache(settings.cache.join("dists"))
        .with_eggs(&settings.eggs_dir)
        .with_allow_hosts(settings.vopts.allow_hosts.clone())
    });
    // The develop distributions first: the resolver takes them as they are.
    let fetch = |reqs: &[Requirement]| -> Result<Vec<PathBuf>> {
        let client = settings.client()?;
        let finder = finder(client.as_ref());
        let store = Store::new(&settings.cache, client.as_ref());
        fetch_requirements(
            ctx,
            &settings.installer(&store, &builder, &interp, ctx)?,
            &finder,
            client.as_ref(),
            reqs,
        )
    };
    let develop = develop::Develop {
        interp: &interp,
        develop_eggs,
        fetch: &fetch,
        early,
    }
    .prepare(ctx, sources)?;
    // The pins by normalised name, as zc.buildout reads `[versions]` (`Zope.Interface =`
    // pins `zope-interface`); a host that cannot list a section's names is asked for the
    // usual spellings instead.
    let pins_by_name: Option<std::collections::HashMap<String, String>> =
        ctx.option_names(&settings.versions_section).map(|names| {
            names
                .into_iter()
                .filter_map(|n| Some((util::normalize(&n)?, n)))
                .collect()
        });
    let pin_of = |name: &str| -> Option<String> {
        match &pins_by_name {
            Some(pins) => pins
                .get(name)
                .and_then(|n| ctx.option(&settings.versions_section, n)),
            None => pin_spellings(name)
                .iter()
                .find_map(|n| ctx.option(&settings.versions_section, n)),
        }
        .filter(|v| !v.trim().is_empty())
    };
    // A develop distribution is never taken from the index; a pin that excludes its
    // version is an error rather than ignored (zc.buildout would then look for the pinned
    // version on the index).
    for d in &develop {
        if let Some(pin) = pin_of(&d.name) {
            let allowed = resolve::parse_pin(&pin).map_err(|e| {
                Error::new(format!(
                    "[{}] {} = {pin}: not a version or specifier: {e}",
                    settings.versions_section, d.name
                ))
            })?;
            if !allowed.contains(&d.version) {
                return Err(Error::new(format!(
                    "[{}] pins {} = {pin}, but the develop distribution {} is {} \
                     (buildout:develop); pin {} or remove the pin",
                    settings.versions_section,
                    d.name,
                    d.source.display(),
                    d.version,
                    d.version
                )));
            }
        }
    }
    // Not picked (zc.buildout): pinned, or asked for with `==` in `eggs`.
    let exact = versions::exact_roots(&settings.reqs);
    let fixed = |name: &str| {
        let developed = develop.iter().find(|d| d.name == name);
        developed
            .map(|d| d.version.to_string())
            .or_else(|| pin_of(name))
            .or_else(|| {
                exact
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
    };
    let req_texts: Vec<String> = settings.reqs.iter().map(ToString::to_string).collect();
    let digest_for = |dists: &[LockedDist]| {
        let pins: Vec<(String, Option<String>)> = dists
            .iter()
            .map(|d| (d.name.clone(), pin_of(&d.name)))
            .collect();
        inputs_digest(&req_texts, settings.prereleases, &env, &pins, &develop)
    };

    let existing = lock.parts.get(part);
    let fresh = existing.filter(|l| l.inputs == digest_for(&l.dist));
    if ctx.locked() && !settings.newest {
        match (existing, fresh) {
            (None, _) => {
                return Err(Error::new(format!(
                    "--locked: {lock_name} has no entry for part [{part}]; run without --locked to write it"
                )));
            }
            (Some(_), None) => {
                return Err(Error::new(format!(
                    "--locked: the entry for part [{part}] in {lock_name} is out of date \
                     (requirements, pins or interpreter changed); run without --locked to update it"
                )));
            }
            _ => {}
        }
    }

    // The no-op: a fresh lock whose eggs are all there needs no network and no resolver.
    if let Some(entry) = fresh.filter(|_| !settings.newest)
        && let Some(folders) = present(&entry.dist, &settings.eggs_dir, &builder)
    {
        if settings.compile {
            pool::compile_missing(&folders, &interp, ctx);
        }
        check_picked(
            settings.allow_picked,
            &entry.dist,
            &fixed,
            &settings.versions_section,
        )?;
        publish(ctx, &settings.reqs, &entry.dist, &folders)?;
        settings.vopts.report(
            ctx,
            &entry.dist,
            &folders,
            &fixed,
            &settings.reqs,
            &interp.markers,
        )?;
        // A lock that held credentials loses them on disk too, even when nothing changed.
        if lock.scrubbed && !ctx.locked() {
            lockfile::store(&lock_path, part, entry)?;
        }
        return Ok(());
    }

    let client = settings.client()?;
    let finder = finder(client.as_ref());
    let store = Store::new(&settings.cache, client.as_ref());
    let installer = settings.installer(&store, &builder, &interp, ctx)?;
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| installer.work());
        }
        let result = resolve_and_install(
            ctx,
            &installer,
            Inputs {
                reqs: &settings.reqs,
                req_texts: &req_texts,
                fresh,
                existing,
                interp: &interp,
                finder: &finder,
                builder: &builder,
                client: client.as_ref(),
                prereleases: settings.prereleases,
                pin_of: &pin_of,
                fixed: &fixed,
                digest_for: &digest_for,
                allow_picked: settings.allow_picked,
                versions_section: &settings.versions_section,
                lock_path: &lock_path,
                lock_name: &lock_name,
                env: &env,
                vopts: &settings.vopts,
                newest: settings.newest,
                develop: &develop,
            },
        );
        installer.close();
        result
    })
}

/// `make` as a closure for any client's lifetime (a `Finder` borrows only its client).
fn finder_for<F>(make: F) -> F
where
    F: for<'c> Fn(Option<&'c http::Client>) -> Finder<'c>,
{
    make
}

/// Resolves `reqs` from the index (no lock, no pins: a develop folder's build
/// requirements) and installs them; returns their egg folders.
fn fetch_requirements(
    ctx: &Context,
    installer: &Installer,
    finder: &Finder,
    client: Option<&http::Client>,
    reqs: &[Requirement],
) -> Result<Vec<PathBuf>> {
    let no_pins = |_: &str| None;
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| installer.work());
        }
        let result = (|| {
            let cancelled = || ctx.cancelled();
            let sources = resolve::Sources {
                finder,
                store: installer.store(),
                client,
                interp: installer.interp(),
                builder: installer.builder(),
            };
            let mut resolver = resolve::Resolver::new(sources, false, &no_pins, reqs.to_vec());
            resolver.cancelled = &cancelled;
            let chosen = resolver.resolve()?;
            let dists: Vec<LockedDist> = chosen
                .into_iter()
                .map(|c| {
                    let sha256 = match &c.file.sha256 {
                        Some(s) => s.clone(),
                        None => {
                            installer
                                .store()
                                .fetch(&c.file.url, &c.file.filename, None)?
                                .1
                        }
                    };
                    Ok(LockedDist {
                        name: c.name,
                        version: c.version.to_string(),
                        file: c.file.filename,
                        url: c.file.url,
                        sha256,
                    })
                })
                .collect::<Result<_>>()?;
            installer.finish(&dists)
        })();
        installer.close();
        result
    })
}

/// What [`resolve_and_install`] works from.
struct Inputs<'a> {
    reqs: &'a [Requirement],
    req_texts: &'a [String],
    fresh: Option<&'a PartLock>,
    existing: Option<&'a PartLock>,
    interp: &'a interp::Interpreter,
    finder: &'a Finder<'a>,
    builder: &'a build::Builder<'a>,
    client: Option<&'a http::Client>,
    prereleases: bool,
    pin_of: &'a dyn Fn(&str) -> Option<String>,
    /// Pinned or asked for with `==`: not picked.
    fixed: &'a dyn Fn(&str) -> Option<String>,
    digest_for: &'a dyn Fn(&[LockedDist]) -> String,
    allow_picked: bool,
    versions_section: &'a str,
    lock_path: &'a Path,
    lock_name: &'a str,
    env: &'a str,
    vopts: &'a versions::VersionOptions,
    newest: bool,
    develop: &'a [develop::DevelopDist],
}

/// Resolves (unless the lock is current), installs, publishes and writes the lock.
fn resolve_and_install(ctx: &Context, installer: &Installer, i: Inputs) -> Result<()> {
    let Inputs {
        reqs,
        req_texts,
        fresh,
        existing,
        interp,
        finder,
        builder,
        client,
        prereleases,
        pin_of,
        fixed,
        digest_for,
        allow_picked,
        versions_section,
        lock_path,
        lock_name,
        env,
        vopts,
        newest,
        develop,
    } = i;
    let key = lock_key(ctx);
    let part = key.as_str();
    let store = installer.store();
    let dists: Vec<LockedDist> = match fresh.filter(|_| !newest) {
        Some(entry) => entry.dist.clone(),
        None => {
            ctx.info(&format!("resolving {}", req_texts.join(", ")));
            let root: Vec<Requirement> = reqs
                .iter()
                .filter(|r| r.evaluate_markers(&interp.markers, &[]))
                .cloned()
                .collect();
            let cancelled = || ctx.cancelled();
            let decided = |name: &str, f: &index::DistFile| installer.speculate(name, f);
            let sources = resolve::Sources {
                finder,
                store,
                client,
                interp,
                builder,
            };
            let mut resolver = resolve::Resolver::new(sources, prereleases, pin_of, root);
            resolver.cancelled = &cancelled;
            resolver.decided = &decided;
            resolver.develop = develop;
            let start = std::time::Instant::now();
            let chosen = resolver.resolve()?;
            ctx.debug(&format!("resolved in {:.0?}", start.elapsed()));
            let mut out = Vec::new();
            for c in chosen {
                let sha = match &c.file.sha256 {
                    Some(s) => s.clone(),
                    None => store.fetch(&c.file.url, &c.file.filename, None)?.1,
                };
                out.push(LockedDist {
                    name: c.name,
                    version: c.version.to_string(),
                    file: c.file.filename,
                    url: c.file.url,
                    sha256: sha,
                });
            }
            if ctx.locked()
                && existing.is_none_or(|e| e.dist != out || e.inputs != digest_for(&out))
            {
                return Err(Error::new(format!(
                    "--locked: resolving part [{part}] again would change {lock_name}; \
                     run without --locked to update it"
                )));
            }
            out
        }
    };

    check_picked(allow_picked, &dists, fixed, versions_section)?;

    let folders = installer.finish(&dists)?;

    publish(ctx, reqs, &dists, &folders)?;
    vopts.report(ctx, &dists, &folders, fixed, reqs, &interp.markers)?;

    if !ctx.locked() {
        let entry = PartLock {
            requirements: req_texts.to_vec(),
            environment: env.to_owned(),
            inputs: digest_for(&dists),
            dist: dists,
        };
        lockfile::store(lock_path, part, &entry)?;
    }
    Ok(())
}

/// `allow-picked-versions = false`: every distribution must be pinned.
fn check_picked(
    allow_picked: bool,
    dists: &[LockedDist],
    pin_of: &dyn Fn(&str) -> Option<String>,
    versions_section: &str,
) -> Result<()> {
    if allow_picked {
        return Ok(());
    }
    let picked: Vec<String> = dists
        .iter()
        .filter(|d| pin_of(&d.name).is_none())
        .map(|d| format!("{} = {}", d.name, d.version))
        .collect();
    if picked.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "allow-picked-versions is false and these versions were picked, not pinned; \
         add them to [{versions_section}]:\n{}",
        picked.join("\n")
    )))
}

/// Publishes `paths` (sys.path order: the requested distributions in `eggs` order, then the
/// rest by name), `eggs` (`name==version` lines in the same order) and `requested` (the
/// names of the requested distributions alone, for a `scripts` part's `eggs`).
fn publish(
    ctx: &Context,
    reqs: &[Requirement],
    dists: &[LockedDist],
    folders: &[PathBuf],
) -> Result<()> {
    let mut order: Vec<usize> = Vec::new();
    let mut seen = HashSet::new();
    for r in reqs {
        let n = r.name.to_string();
        if let Some(i) = dists.iter().position(|d| d.name == n)
            && seen.insert(i)
        {
            order.push(i);
        }
    }
    order.extend((0..dists.len()).filter(|i| !seen.contains(i)));
    let mut paths: Vec<String> = order
        .iter()
        .map(|&i| folders[i].display().to_string())
        .collect();
    // A develop distribution's folder holds its metadata; its code is where its `.pth`
    // points (docs/develop.md).
    for &i in &order {
        if dists[i].url.starts_with("develop:") {
            for p in zc::pth_paths(&folders[i]) {
                let p = p.display().to_string();
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
    }
    let eggs: Vec<String> = order
        .iter()
        .map(|&i| format!("{}=={}", dists[i].name, dists[i].version))
        .collect();
    let requested: Vec<&str> = order[..seen.len()]
        .iter()
        .map(|&i| dists[i].name.as_str())
        .collect();
    zc::keep_working_set(dists, &order, folders);
    if ASKED_BY_RECIPE.with(|a| a.borrow().is_some()) {
        return Ok(());
    }
    ctx.publish("paths", &paths.join("\n"))?;
    ctx.publish("pins", &eggs.join("\n"))?;
    ctx.publish("requested", &requested.join("\n"))
}
