//! `testkit`: recipes for rbuildout's lifecycle and plugin tests, written with the SDK.
//!
//! Each recipe does one observable thing, so a test can tell from the instance folder and
//! the state file what ran:
//!
//! | recipe | install does |
//! |---|---|
//! | `default`, `file` | writes `content` to `path` (relative to the buildout directory), registers it, publishes `written` (absolute path) and every `publish-X` option as `X` |
//! | `updatable` | as `file`; `update` appends `update <part>` to `log` (default `update.log`) and republishes |
//! | `uninstallable` | as `file`; `uninstall` appends `uninstall <part>` to `log` (default `uninstall.log`) |
//! | `lifecycle` | as `file`, and appends `install`/`update`/`uninstall <part>` to `log` (default `lifecycle.log`) |
//! | `panic` | panics with `message` (default `testkit panics on purpose`) |
//! | `error` | fails with `message` (default `testkit fails on purpose`) |
//! | `outside` | writes `content` (if set) to `path` and registers `path` as given, typically outside the instance |
//! | `million` | publishes `paths` paths `million/N` and `outputs` outputs `oN` (both default 1,000,000) |
//! | `sleep` | writes `marker` (default `sleep.marker`) with the process id, registers it, then sleeps `seconds` (failing with `sleep cancelled` if the run is cancelled meanwhile, after `linger` more seconds) |
//! | `option` | publishes `value` = the option named by `ref` (`section:option`), or `found = false` |
//! | `context` | publishes `part`, `directory`, `offline`, `newest` |
//! | `nested` | builds the config `config` into `directory` (both relative to the buildout directory) |
//! | `log` | logs `message` at every level, through the context and through `tracing` |
//!
//! At the end of every run (`run_end`), when the buildout directory holds `run-end.marker`,
//! `run-end ok=<true|false>` is appended to its `lifecycle.log`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin, tracing};

/// Writes `content` to `path`, registers it and publishes `written` plus `publish-*`.
fn write_file(options: &Options, ctx: &Context) -> Result<PathBuf> {
    let path = options
        .get_path("path")
        .ok_or_else(|| Error::new("option `path` is required"))?;
    let content = options.get("content").unwrap_or("");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(&path, content)
        .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
    ctx.register(&path)?;
    publish_all(options, ctx, &path)?;
    Ok(path)
}

fn publish_all(options: &Options, ctx: &Context, path: &Path) -> Result<()> {
    ctx.publish("written", &path.display().to_string())?;
    for (name, value) in options.iter() {
        if let Some(output) = name.strip_prefix("publish-") {
            ctx.publish(output, value)?;
        }
    }
    Ok(())
}

/// Appends `line` to the file named by option `log` (default `default`), relative to the
/// buildout directory; the file is not registered, so it outlives the part.
fn append(options: &Options, ctx: &Context, default: &str, line: &str) -> Result<()> {
    let path = options
        .get_path("log")
        .unwrap_or_else(|| ctx.buildout_directory().join(default));
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::new(format!("cannot open {}: {e}", path.display())))?;
    writeln!(file, "{line}")
        .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

pub struct File;

impl Recipe for File {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        write_file(options, ctx).map(drop)
    }
}

pub struct Updatable;

impl Recipe for Updatable {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        write_file(options, ctx).map(drop)
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        append(
            options,
            ctx,
            "update.log",
            &format!("update {}", ctx.part()),
        )?;
        let path = options.get_path("path").unwrap_or_default();
        publish_all(options, ctx, &path)
    }
}

pub struct Uninstallable;

impl Recipe for Uninstallable {
    const UNINSTALL: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        write_file(options, ctx).map(drop)
    }

    fn uninstall(options: &Options, ctx: &Context) -> Result<()> {
        append(
            options,
            ctx,
            "uninstall.log",
            &format!("uninstall {}", ctx.part()),
        )
    }
}

pub struct Lifecycle;

impl Recipe for Lifecycle {
    const UPDATE: bool = true;
    const UNINSTALL: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        write_file(options, ctx)?;
        append(
            options,
            ctx,
            "lifecycle.log",
            &format!("install {}", ctx.part()),
        )
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        append(
            options,
            ctx,
            "lifecycle.log",
            &format!("update {}", ctx.part()),
        )
    }

    fn uninstall(options: &Options, ctx: &Context) -> Result<()> {
        append(
            options,
            ctx,
            "lifecycle.log",
            &format!("uninstall {}", ctx.part()),
        )
    }
}

pub struct Panic;

impl Recipe for Panic {
    fn install(options: &Options, _ctx: &Context) -> Result<()> {
        let message = options
            .get("message")
            .unwrap_or("testkit panics on purpose");
        panic!("{message}");
    }
}

pub struct Fail;

impl Recipe for Fail {
    fn install(options: &Options, _ctx: &Context) -> Result<()> {
        Err(Error::new(
            options.get("message").unwrap_or("testkit fails on purpose"),
        ))
    }
}

pub struct Outside;

impl Recipe for Outside {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let path = Path::new(options.require("path")?);
        if let Some(content) = options.get("content") {
            std::fs::write(path, content)
                .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
        }
        ctx.register(path)
    }
}

pub struct Million;

fn count(options: &Options, name: &str) -> Result<usize> {
    match options.get(name) {
        None => Ok(1_000_000),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| Error::new(format!("option `{name}` must be a count, not `{text}`"))),
    }
}

impl Recipe for Million {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        for i in 0..count(options, "paths")? {
            ctx.register(Path::new(&format!("million/{i}")))?;
        }
        for i in 0..count(options, "outputs")? {
            ctx.publish(&format!("o{i}"), &i.to_string())?;
        }
        Ok(())
    }
}

pub struct Sleep;

impl Recipe for Sleep {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let marker = options
            .get_path("marker")
            .unwrap_or_else(|| ctx.buildout_directory().join("sleep.marker"));
        std::fs::write(&marker, std::process::id().to_string())
            .map_err(|e| Error::new(format!("cannot write {}: {e}", marker.display())))?;
        ctx.register(&marker)?;
        let seconds: f64 = options
            .get("seconds")
            .unwrap_or("1")
            .trim()
            .parse()
            .map_err(|_| Error::new("option `seconds` must be a number"))?;
        // Sleep in steps, giving up early when the run is cancelled.
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            if ctx.cancelled() {
                // `linger`: seconds a slow recipe takes to stop once asked.
                let linger: f64 = options
                    .get("linger")
                    .unwrap_or("0")
                    .trim()
                    .parse()
                    .unwrap_or(0.0);
                std::thread::sleep(Duration::from_secs_f64(linger.max(0.0)));
                return Err(Error::new("sleep cancelled"));
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        Ok(())
    }
}

pub struct OptionOf;

impl Recipe for OptionOf {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let reference = options.require("ref")?;
        let (section, option) = reference.split_once(':').ok_or_else(|| {
            Error::new(format!(
                "option `ref` must be section:option, not `{reference}`"
            ))
        })?;
        match ctx.option(section, option) {
            Some(value) => ctx.publish("value", &value),
            None => ctx.publish("found", "false"),
        }
    }
}

/// Publishes `early` (its option `value`) when prepared, before any part installs, and
/// counts its prepares in `prepared.log`; `register-early` makes it register a path then,
/// which the host refuses; `seconds` makes its prepare take that long. Its install does
/// nothing.
pub struct Prepared;

impl Recipe for Prepared {
    const PREPARE: bool = true;

    fn prepare(options: &Options, ctx: &Context) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(ctx.buildout_directory().join("prepared.log"))
            .map_err(|e| Error::new(format!("prepared.log: {e}")))?;
        let _ = writeln!(log, "prepare {}", ctx.part());
        drop(log);
        if let Some(seconds) = options.get("seconds") {
            let seconds: f64 = seconds
                .trim()
                .parse()
                .map_err(|_| Error::new("option `seconds` must be a number"))?;
            std::thread::sleep(Duration::from_secs_f64(seconds.max(0.0)));
        }
        if options.get("register-early").is_some() {
            ctx.register(&ctx.buildout_directory().join("early.txt"))?;
        }
        ctx.publish("early", options.get("value").unwrap_or("none"))
    }

    fn install(_options: &Options, _ctx: &Context) -> Result<()> {
        Ok(())
    }
}

pub struct ContextOf;

impl Recipe for ContextOf {
    fn install(_options: &Options, ctx: &Context) -> Result<()> {
        ctx.publish("part", ctx.part())?;
        ctx.publish("directory", &ctx.buildout_directory().display().to_string())?;
        ctx.publish("offline", &ctx.offline().to_string())?;
        ctx.publish("newest", &ctx.newest().to_string())
    }
}

pub struct Nested;

impl Recipe for Nested {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let config = options
            .get_path("config")
            .ok_or_else(|| Error::new("option `config` is required"))?;
        let directory = options
            .get_path("directory")
            .ok_or_else(|| Error::new("option `directory` is required"))?;
        ctx.nested_build(&config, &directory)
    }
}

pub struct Log;

impl Recipe for Log {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let message = options.get("message").unwrap_or("hello from testkit");
        ctx.warn(&format!("context warn: {message}"));
        ctx.info(&format!("context info: {message}"));
        ctx.debug(&format!("context debug: {message}"));
        tracing::warn!(answer = 42, "tracing warn: {message}");
        tracing::info!("tracing info: {message}");
        tracing::debug!("tracing debug: {message}");
        // From a thread of the plugin's own: still the same call, through the host's log.
        std::thread::scope(|s| {
            s.spawn(|| tracing::warn!("thread warn: {message}"));
        });
        Ok(())
    }
}

export_plugin! {
    name: "testkit",
    version: env!("CARGO_PKG_VERSION"),
    recipes: {
        "default" => File,
        "file" => File,
        "updatable" => Updatable,
        "uninstallable" => Uninstallable,
        "lifecycle" => Lifecycle,
        "panic" => Panic,
        "error" => Fail,
        "outside" => Outside,
        "million" => Million,
        "sleep" => Sleep,
        "option" => OptionOf,
        "prepared" => Prepared,
        "context" => ContextOf,
        "nested" => Nested,
        "log" => Log,
    },
    run_end: run_end,
}

/// The run-end hook: see the crate docs.
fn run_end(end: &rbuildout_plugin_api::RunEnd) {
    if !end.directory.join("run-end.marker").exists() {
        return;
    }
    if let Ok(mut file) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(end.directory.join("lifecycle.log"))
    {
        let _ = writeln!(file, "run-end ok={}", end.ok);
    }
}
