//! The `symlink` recipe (SPEC §5.4): releases built as nested buildouts in
//! `directory/<revision>`, and a `current` link switched atomically to the active one.
//!
//! ```toml
//! [code]
//! recipe = "symlink"
//! revision = "r2"                 # or "previous": the release activated before the current
//! config = "release.toml"         # built as its own buildout into code/r2
//! directory = "code"              # default ${buildout:directory}/code
//! link = "current"                # relative to `directory`
//! keep = 5                        # good releases kept besides the current one
//! links = ["bin = code/current/bin"]
//! ```
//!
//! The decisions (markers, history, pruning, why nothing is registered) are in
//! `docs/symlink.md`.

#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use rbuildout_plugin_api::files::{
    Targets, normalize, not_made_by_part, relative, write_atomic, write_if_changed,
};
use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};

/// The file inside a release that says how its build went.
const MARKER: &str = ".rbuildout-release";
/// The activation log inside `directory`, one revision per line, oldest first.
const HISTORY: &str = "history";
/// Prefix of a release folder being removed (renamed first, so a half-removed release is
/// never mistaken for one).
const PRUNING: &str = ".pruning-";
/// The `revision` value that means "the release activated before the current one".
const PREVIOUS: &str = "previous";

/// How a release's build went, as its marker file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// A build started and has not finished (or was killed).
    Building,
    Failed,
    Good,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Building => "building\n",
            Status::Failed => "failed\n",
            Status::Good => "good\n",
        }
    }

    /// The status of the release folder `release`; `None` when it has no marker (it is not
    /// a release this recipe made).
    fn of(release: &Path) -> Option<Status> {
        let text = fs::read_to_string(release.join(MARKER)).ok()?;
        Some(match text.trim() {
            "good" => Status::Good,
            "failed" => Status::Failed,
            _ => Status::Building,
        })
    }

    /// Writes the marker of `release` atomically and durably. It is staged beside the
    /// release folder ([`staged_marker`]) and renamed in, so no temp file ever lands inside
    /// the folder: a run killed at any moment leaves a release folder that is empty or has
    /// its marker, and either is one this recipe builds into again.
    fn mark(self, release: &Path) -> Result<()> {
        let staged = staged_marker(release);
        write_atomic(&staged, self.text().as_bytes())?;
        let marker = release.join(MARKER);
        if let Err(e) = fs::rename(&staged, &marker) {
            let _ = fs::remove_file(&staged);
            return Err(io_error("write", &marker, e));
        }
        sync_dir(release)
    }
}

/// `directory/.<name>.rbuildout-release` for the release folder `directory/<name>`: where
/// its marker is written before it is renamed into the folder. Hidden, so never taken for a
/// release; a leftover of a killed run is removed by [`remove_stale_prunings`].
fn staged_marker(release: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(release.file_name().unwrap_or_default());
    name.push(MARKER);
    release.with_file_name(name)
}

/// Whether the release folder `release` holds anything but the temp file of a marker that
/// an older rbuildout, killed while writing it, left inside (`.rbuildout-release.tmp`):
/// such a folder holds nothing to lose and is built into again.
fn holds_anything(release: &Path) -> bool {
    let leftover = format!("{MARKER}.tmp");
    fs::read_dir(release).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_str() != Some(leftover.as_str()))
    })
}

/// The part's options, checked, with every path absolute.
#[derive(Debug)]
struct Settings {
    directory: PathBuf,
    link: PathBuf,
    /// As written: a release name or `previous`.
    revision: String,
    config: Option<PathBuf>,
    keep: usize,
    /// Extra links: (link, the target as the link holds it), the link absolute.
    links: Vec<(PathBuf, PathBuf)>,
}

impl Settings {
    fn read(options: &Options, ctx: &Context) -> Result<Settings> {
        let root = ctx.buildout_directory();
        let directory = normalize(
            &options
                .get_path("directory")
                .unwrap_or_else(|| root.join("code")),
        );
        let link = normalize(&directory.join(options.get("link").unwrap_or("current").trim()));
        let revision = options.require("revision")?.trim().to_owned();
        let config = options.get_path("config");
        let keep = match options.get("keep") {
            None => 5,
            Some(text) => text.trim().parse().map_err(|_| {
                Error::new(format!(
                    "option `keep` must be a number of releases, not `{text}`"
                ))
            })?,
        };
        let mut links = Vec::new();
        // One link per line (a TOML array arrives one element per line); not split on
        // whitespace, since `LINK = TARGET` has spaces.
        let lines = options.get("links").unwrap_or("").lines().map(str::trim);
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, target)) = line.split_once('=') else {
                return Err(Error::new(format!(
                    "option `links`: `{line}` must be `LINK = TARGET`"
                )));
            };
            let (name, target) = (name.trim(), target.trim());
            if name.is_empty() || target.is_empty() {
                return Err(Error::new(format!(
                    "option `links`: `{line}` must be `LINK = TARGET`"
                )));
            }
            let link = normalize(&root.join(name));
            // A relative target stays relative (the instance can move); an absolute one
            // is meant to point outside and stays absolute.
            let target = if Path::new(target).is_absolute() {
                PathBuf::from(target)
            } else {
                relative(
                    link.parent().unwrap_or(Path::new("/")),
                    &normalize(&root.join(target)),
                )
            };
            links.push((link, target));
        }
        Ok(Settings {
            directory,
            link,
            revision,
            config,
            keep,
            links,
        })
    }

    fn history(&self) -> PathBuf {
        self.directory.join(HISTORY)
    }

    /// Refuses a release name that is not one plain folder name of `directory`, or that
    /// would collide with the recipe's own files there.
    fn check_name(&self, name: &str) -> Result<()> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains('/')
            && !name.chars().any(char::is_control);
        let link_name = (self.link.parent() == Some(self.directory.as_path()))
            .then(|| self.link.file_name())
            .flatten();
        if !plain || name == HISTORY || link_name.is_some_and(|l| l == name) {
            return Err(Error::new(format!(
                "option `revision`: `{}` cannot name a release folder in {} (use a plain \
                 name without `/`, a leading `.` or control characters, other than \
                 `{HISTORY}` and the link's name)",
                name.escape_debug(),
                self.directory.display()
            )));
        }
        Ok(())
    }
}

/// What the part made in the instance and may replace: its links and its history, as listed
/// in `<parts-directory>/<part>.symlink` (one path per line, relative to the buildout
/// directory when inside it). The engine cannot know them, since the recipe registers
/// nothing (see the module docs).
struct Made<'a> {
    ctx: &'a Context<'a>,
    file: PathBuf,
    paths: Vec<PathBuf>,
}

impl<'a> Made<'a> {
    fn read(ctx: &'a Context<'a>) -> Result<Made<'a>> {
        let root = ctx.buildout_directory();
        let parts = ctx.buildout().parts_directory();
        let file = parts.join(format!("{}.symlink", ctx.part()));
        let paths = match fs::read_to_string(&file) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| normalize(&root.join(l)))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error("read", &file, e)),
        };
        Ok(Made { ctx, file, paths })
    }

    /// Whether the part made `path`: it is listed, or it predates the list (an instance of
    /// an older rbuildout) and is a link into `directory` or the history beside a release.
    fn made(&self, settings: &Settings, path: &Path) -> bool {
        if self.paths.iter().any(|p| p == path) {
            return true;
        }
        let into_directory = fs::read_link(path).is_ok_and(|target| {
            let parent = path.parent().unwrap_or(Path::new("/"));
            normalize(&parent.join(target)).starts_with(&settings.directory)
        });
        let history_of_releases =
            *path == settings.history() && releases(settings).is_ok_and(|found| !found.is_empty());
        into_directory || history_of_releases
    }

    /// Whether the part may make `path`: inside the instance or an allowed folder, and
    /// nothing there that the part did not make (an empty folder aside).
    fn may_make(&self, targets: &Targets, settings: &Settings, path: &Path) -> Result<()> {
        targets.allowed(path)?;
        if self.paths.iter().any(|p| p == path) {
            return Ok(());
        }
        let taken = match fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_error("read", path, e)),
            // An empty folder holds nothing to lose: the `bin-directory` the engine creates
            // before parts run, for a `bin` link.
            Ok(meta) if meta.is_dir() => fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()),
            Ok(_) => !self.made(settings, path),
        };
        if taken {
            return Err(not_made_by_part(path));
        }
        Ok(())
    }

    /// [`may_make`](Made::may_make), then lists `path`, durably, before it is made.
    fn claim(&mut self, targets: &Targets, settings: &Settings, path: &Path) -> Result<()> {
        self.may_make(targets, settings, path)?;
        if self.paths.iter().any(|p| p == path) {
            return Ok(());
        }
        self.paths.push(path.to_path_buf());
        self.write()
    }

    /// Drops `path` from the list (once the part removed it).
    fn forget(&mut self, path: &Path) -> Result<()> {
        let before = self.paths.len();
        self.paths.retain(|p| p != path);
        if self.paths.len() == before {
            return Ok(());
        }
        self.write()
    }

    fn write(&self) -> Result<()> {
        if self.paths.is_empty() {
            return match fs::remove_file(&self.file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io_error("remove", &self.file, e))
                }
                _ => Ok(()),
            };
        }
        let root = self.ctx.buildout_directory();
        let mut text = String::new();
        for path in &self.paths {
            let shown = path.strip_prefix(root).unwrap_or(path);
            let line = shown
                .to_str()
                .ok_or_else(|| Error::new(format!("path {} is not valid UTF-8", path.display())))?;
            text.push_str(line);
            text.push('\n');
        }
        write_if_changed(&self.file, text.as_bytes(), None)?;
        Ok(())
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(format!("cannot {what} {}: {e}", path.display()))
}

/// Flushes a folder's entries (new names, renames) to disk.
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error("sync the folder", dir, e))
}

/// Points `link` at `target` (a relative path) atomically: a new link beside it renamed
/// over it, then the folder synced. The caller [claimed](Made::claim) `link` first. An
/// empty real folder in the way (such as the `bin-directory` the engine creates before
/// parts run) is replaced; anything else that is not a link is an error. Returns whether
/// anything changed.
fn replace_link(made: &mut Made, settings: &Settings, link: &Path, target: &Path) -> Result<bool> {
    let dir = link.parent().unwrap_or(Path::new("/"));
    if fs::read_link(link).is_ok_and(|t| t == target) {
        return Ok(false);
    }
    let targets = Targets::of(made.ctx);
    made.claim(&targets, settings, link)?;
    fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    match fs::symlink_metadata(link) {
        Ok(meta) if meta.is_dir() => {
            fs::remove_dir(link).map_err(|e| {
                Error::new(format!(
                    "{} is a folder, not a link, and cannot be replaced by a link to {}: {e} \
                     (move it away)",
                    link.display(),
                    target.display()
                ))
            })?;
        }
        // This recipe makes links only: a file there is someone else's.
        Ok(meta) if !meta.file_type().is_symlink() => return Err(not_made_by_part(link)),
        _ => {}
    }
    let tmp = temp_link(link, std::process::id());
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp).map_err(|e| io_error("create the link", &tmp, e))?;
    if let Err(e) = fs::rename(&tmp, link) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("switch the link", link, e));
    }
    sync_dir(dir)?;
    Ok(true)
}

/// The temporary name a new `link` is created under before it is renamed over the link.
fn temp_link(link: &Path, id: u32) -> PathBuf {
    let mut name = link.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{id}"));
    link.with_file_name(name)
}

/// Removes temporary links beside `link` that a killed run left behind.
fn remove_stale_temp_links(link: &Path) {
    let (Some(dir), Some(name)) = (link.parent(), link.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(&prefix)
            && entry.file_type().is_ok_and(|t| t.is_symlink());
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The release `link` points at: the last component of its target, when that is a
/// folder of `directory`.
fn current_revision(settings: &Settings) -> Option<String> {
    let target = fs::read_link(&settings.link).ok()?;
    let name = target.file_name()?.to_str()?.to_owned();
    let resolved = normalize(&settings.link.parent()?.join(&target));
    (resolved == settings.directory.join(&name)).then_some(name)
}

fn read_history(settings: &Settings) -> Result<Vec<String>> {
    let path = settings.history();
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error("read", &path, e)),
    }
}

/// The most recently activated good release other than `current`.
fn previous(settings: &Settings, history: &[String], current: Option<&str>) -> Option<String> {
    history
        .iter()
        .rev()
        .filter(|r| Some(r.as_str()) != current)
        // A line edited by hand into a path is no release.
        .filter(|r| settings.check_name(r).is_ok())
        .find(|r| Status::of(&settings.directory.join(r)) == Some(Status::Good))
        .cloned()
}

/// Builds the release `revision` unless it is already good.
fn ensure_built(settings: &Settings, revision: &str, ctx: &Context) -> Result<()> {
    let release = settings.directory.join(revision);
    match Status::of(&release) {
        Some(Status::Good) => {
            ctx.info(&format!(
                "release `{revision}` is already built: {}",
                release.display()
            ));
            return Ok(());
        }
        Some(status) => ctx.info(&format!(
            "release `{revision}` was left {}: building it again",
            status.text().trim()
        )),
        // A folder without a marker is not a release this recipe made: it builds only into a
        // new or empty one.
        None if settings.config.is_some() && holds_anything(&release) => {
            return Err(not_made_by_part(&release));
        }
        None => ctx.info(&format!(
            "building release `{revision}` into {}",
            release.display()
        )),
    }
    let _ = fs::remove_file(release.join(format!("{MARKER}.tmp")));
    let Some(config) = &settings.config else {
        if !release.is_dir() {
            return Err(Error::new(format!(
                "release folder {} does not exist and no `config` is set to build it",
                release.display()
            )));
        }
        return Status::Good.mark(&release);
    };
    fs::create_dir_all(&release).map_err(|e| io_error("create", &release, e))?;
    Status::Building.mark(&release)?;
    match ctx.nested_build(config, &release) {
        Ok(()) => {
            flush_to_disk(&release, ctx);
            Status::Good.mark(&release)
        }
        Err(e) => {
            let marked = Status::Failed.mark(&release);
            let current = current_revision(settings)
                .map_or_else(|| "nothing".to_owned(), |r| format!("`{r}`"));
            let mut message = format!(
                "release `{revision}` failed to build ({}), `current` still points at \
                 {current}: {}",
                release.display(),
                e.message()
            );
            if let Err(m) = marked {
                message.push_str(&format!("; and {}", m.message()));
            }
            Err(Error::new(message))
        }
    }
}

/// Flushes the file systems holding the release and the shared eggs folder (`sync -f`, i.e.
/// syncfs), so a release marked good survives a power loss whole, not only a kill: the
/// recipes that wrote it rename their files into place without syncing each one. A failure
/// is only a warning: the release is complete for every reader already.
fn flush_to_disk(release: &Path, ctx: &Context) {
    let mut command = std::process::Command::new("sync");
    command.arg("-f").arg(release);
    if let Some(eggs) = ctx.buildout().path("eggs-directory")
        && eggs.is_dir()
    {
        command.arg(eggs);
    }
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => ctx.warn(&format!("`sync -f {}` failed: {status}", release.display())),
        Err(e) => ctx.warn(&format!("cannot run `sync -f {}`: {e}", release.display())),
    }
}

/// Appends `revision` to the history unless it is already the last entry.
fn record_activation(
    made: &mut Made,
    settings: &Settings,
    history: &mut Vec<String>,
    revision: &str,
) -> Result<()> {
    if history.last().map(String::as_str) == Some(revision) {
        return Ok(());
    }
    let targets = Targets::of(made.ctx);
    made.claim(&targets, settings, &settings.history())?;
    history.push(revision.to_owned());
    let mut text = String::new();
    for line in history.iter() {
        text.push_str(line);
        text.push('\n');
    }
    write_atomic(&settings.history(), text.as_bytes())
}

/// The release folders in `directory` (folders with a marker), by name.
fn releases(settings: &Settings) -> Result<Vec<(String, Status)>> {
    let entries =
        fs::read_dir(&settings.directory).map_err(|e| io_error("read", &settings.directory, e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(status) = Status::of(&entry.path()) {
            out.push((name, status));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Which releases to remove: every release that is not good, and the good ones beyond the
/// `keep` most recently activated besides `current`; never `current` or `previous`.
fn to_prune(
    releases: &[(String, Status)],
    history: &[String],
    current: &str,
    previous: Option<&str>,
    keep: usize,
) -> Vec<String> {
    let last_activation = |name: &str| history.iter().rposition(|h| h == name);
    let mut good: Vec<&str> = releases
        .iter()
        .filter(|(name, status)| *status == Status::Good && name != current)
        .map(|(name, _)| name.as_str())
        .collect();
    // Most recently activated first; never-activated ones last, by name.
    good.sort_by(|a, b| last_activation(b).cmp(&last_activation(a)).then(a.cmp(b)));
    let mut out: Vec<String> = good
        .iter()
        .skip(keep)
        .filter(|name| Some(**name) != previous)
        .map(|name| name.to_string())
        .collect();
    out.extend(
        releases
            .iter()
            .filter(|(name, status)| *status != Status::Good && name != current)
            .filter(|(name, _)| Some(name.as_str()) != previous)
            .map(|(name, _)| name.clone()),
    );
    out.sort();
    out
}

/// Removes a release: renamed to `.pruning-<name>` first (atomic, so a run killed while
/// deleting leaves no half release under the release's name), then deleted.
fn remove_release(settings: &Settings, name: &str) -> Result<()> {
    let release = settings.directory.join(name);
    let doomed = settings.directory.join(format!("{PRUNING}{name}"));
    if doomed.exists() {
        fs::remove_dir_all(&doomed).map_err(|e| io_error("remove", &doomed, e))?;
    }
    fs::rename(&release, &doomed).map_err(|e| io_error("move away", &release, e))?;
    sync_dir(&settings.directory)?;
    fs::remove_dir_all(&doomed).map_err(|e| io_error("remove", &doomed, e))
}

/// Finishes removals a killed run started, and removes the [staged](staged_marker) markers
/// (and their temp files) it left.
fn remove_stale_prunings(settings: &Settings) {
    let Ok(entries) = fs::read_dir(&settings.directory) else {
        return;
    };
    let temp = format!("{MARKER}.tmp");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if name.starts_with(PRUNING) && kind.is_dir() {
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with('.')
            && (name.ends_with(MARKER) || name.ends_with(&temp))
            // `directory`'s own marker, should it be a release of an outer part, stays.
            && name != MARKER
            && name != temp
            && kind.is_file()
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Creates or repoints the extra links.
fn extra_links(made: &mut Made, settings: &Settings, ctx: &Context) -> Result<()> {
    for (link, target) in &settings.links {
        if replace_link(made, settings, link, target)? {
            ctx.info(&format!(
                "linked {} -> {}",
                link.display(),
                target.display()
            ));
        }
    }
    Ok(())
}

/// Activates the release `settings.revision` (building it first if needed), then prunes.
fn activate(settings: &Settings, ctx: &Context) -> Result<()> {
    let mut made = Made::read(ctx)?;
    Targets::of(ctx).allowed(&settings.directory)?;
    fs::create_dir_all(&settings.directory)
        .map_err(|e| io_error("create", &settings.directory, e))?;
    remove_stale_temp_links(&settings.link);
    remove_stale_prunings(settings);
    let mut history = read_history(settings)?;
    let current = current_revision(settings);
    let revision = if settings.revision == PREVIOUS {
        previous(settings, &history, current.as_deref()).ok_or_else(|| {
            Error::new(format!(
                "option `revision` is `previous`, but {} names no good release activated \
                 before the current one",
                settings.history().display()
            ))
        })?
    } else {
        settings.check_name(&settings.revision)?;
        settings.revision.clone()
    };
    let release = settings.directory.join(&revision);
    let parent = settings.link.parent().unwrap_or(Path::new("/"));
    let current_target = relative(parent, &release);
    // Everything the activation will write is checked before the build starts.
    let targets = Targets::of(ctx);
    made.may_make(&targets, settings, &settings.history())?;
    let links = std::iter::once((&settings.link, &current_target))
        .chain(settings.links.iter().map(|(link, target)| (link, target)));
    for (link, target) in links {
        if !fs::read_link(link).is_ok_and(|t| t == *target) {
            made.may_make(&targets, settings, link)?;
        }
    }
    ensure_built(settings, &revision, ctx)?;
    if replace_link(&mut made, settings, &settings.link, &current_target)? {
        ctx.info(&format!(
            "{} -> {revision} (was {})",
            settings.link.display(),
            current.as_deref().unwrap_or("nothing")
        ));
    }
    record_activation(&mut made, settings, &mut history, &revision)?;
    extra_links(&mut made, settings, ctx)?;
    let before = previous(settings, &history, Some(&revision));
    // The switch is done: a release that cannot be removed is a warning, not a failure.
    let found = releases(settings).unwrap_or_else(|e| {
        ctx.warn(e.message());
        Vec::new()
    });
    for name in to_prune(
        &found,
        &history,
        &revision,
        before.as_deref(),
        settings.keep,
    ) {
        ctx.info(&format!("removing release `{name}`"));
        if let Err(e) = remove_release(settings, &name) {
            ctx.warn(&format!(
                "release `{name}` was not removed: {}",
                e.message()
            ));
        }
    }
    publish(settings, &release, &revision, ctx)
}

fn publish(settings: &Settings, release: &Path, revision: &str, ctx: &Context) -> Result<()> {
    ctx.publish("path", &release.display().to_string())?;
    ctx.publish("release", revision)?;
    ctx.publish("current", &settings.link.display().to_string())
}

/// Whether the part is still wanted by the config, so an uninstall is the first half of a
/// reinstall and must leave the links for the install to switch atomically.
fn reinstalling(ctx: &Context) -> bool {
    let listed = ctx
        .option("buildout", "parts")
        .is_some_and(|parts| parts.split_whitespace().any(|p| p == ctx.part()));
    listed && ctx.option(ctx.part(), "recipe").is_some()
}

/// The links (`link` and the extra ones) the part's options in the config make now, read
/// through the host; `None` when those options do not parse (the install will say why).
fn new_links(ctx: &Context) -> Option<Vec<PathBuf>> {
    let names = ["config", "directory", "keep", "link", "links", "revision"];
    let values: Vec<(&str, String)> = names
        .iter()
        .filter_map(|name| Some((*name, ctx.option(ctx.part(), name)?)))
        .collect();
    let items = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let options = Options::new(items, ctx.buildout_directory());
    let settings = Settings::read(&options, ctx).ok()?;
    let mut links = vec![settings.link];
    links.extend(settings.links.into_iter().map(|(link, _)| link));
    Some(links)
}

pub struct Symlink;

impl Recipe for Symlink {
    const UPDATE: bool = true;
    const UNINSTALL: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        activate(&Settings::read(options, ctx)?, ctx)
    }

    /// Same options as last time: converge to them again (rebuild a release deleted by
    /// hand, repair links), except that `previous` keeps whatever is current instead of
    /// switching back and forth on every run.
    fn update(options: &Options, ctx: &Context) -> Result<()> {
        let settings = Settings::read(options, ctx)?;
        let kept = (settings.revision == PREVIOUS)
            .then(|| current_revision(&settings))
            .flatten()
            .filter(|current| Status::of(&settings.directory.join(current)) == Some(Status::Good));
        match kept {
            Some(current) => {
                extra_links(&mut Made::read(ctx)?, &settings, ctx)?;
                publish(&settings, &settings.directory.join(&current), &current, ctx)
            }
            None => activate(&settings, ctx),
        }
    }

    /// Removes the links (never a release) when the part goes away; leaves the ones the new
    /// options still make when the part is being reinstalled, so `current` never
    /// disappears.
    fn uninstall(options: &Options, ctx: &Context) -> Result<()> {
        let settings = Settings::read(options, ctx)?;
        // On a reinstall, only the links the new options no longer make go now.
        let kept: Vec<PathBuf> = if reinstalling(ctx) {
            match new_links(ctx) {
                Some(links) => links,
                None => return Ok(()),
            }
        } else {
            Vec::new()
        };
        let mut made = Made::read(ctx)?;
        let links = std::iter::once(&settings.link).chain(settings.links.iter().map(|(l, _)| l));
        for link in links.filter(|l| !kept.contains(l)) {
            // Only a link the part made: never one someone put there since.
            let is_link = fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink());
            if is_link && made.made(&settings, link) {
                fs::remove_file(link).map_err(|e| io_error("remove", link, e))?;
                ctx.info(&format!("removed {}", link.display()));
            }
            made.forget(link)?;
        }
        Ok(())
    }
}

export_plugin! {
    name: "symlink",
    version: env!("CARGO_PKG_VERSION"),
    recipes: { "default" => Symlink },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A fresh folder under the system temp folder, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("rbuildout-symlink-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn links_and_the_uninstall_hook() {
        use rbuildout_plugin_api::testing::{self, TestCall};
        let tmp = TempDir::new("links");
        let dir = tmp.0.as_path();
        let options = [
            ("revision", "r1"),
            ("config", "release.toml"),
            ("links", "a/b = code/current\netc = /nonexistent/etc"),
        ];
        let mut call = TestCall::new("code", dir, &options);
        let outcome = testing::install::<Symlink>(&call).unwrap();
        assert_eq!(
            outcome.nested,
            [(dir.join("release.toml"), dir.join("code/r1"))]
        );
        assert!(outcome.paths.is_empty(), "nothing registered");
        assert_eq!(outcome.output("release"), Some("r1"));
        assert_eq!(
            fs::read_link(dir.join("code/current")).unwrap(),
            Path::new("r1")
        );
        assert_eq!(
            fs::read_link(dir.join("a/b")).unwrap(),
            Path::new("../code/current")
        );
        assert_eq!(
            fs::read_link(dir.join("etc")).unwrap(),
            Path::new("/nonexistent/etc")
        );

        // Still a part with a recipe: a reinstall, the links stay.
        for (key, value) in [
            (("buildout", "parts"), "other\ncode"),
            (("code", "recipe"), "symlink"),
        ] {
            call.other_options
                .insert((key.0.into(), key.1.into()), value.into());
        }
        testing::uninstall::<Symlink>(&call).unwrap();
        assert!(dir.join("code/current").symlink_metadata().is_ok());
        // Gone from the config: the links go, the release stays.
        call.other_options.clear();
        testing::uninstall::<Symlink>(&call).unwrap();
        for link in ["code/current", "a/b", "etc"] {
            assert!(dir.join(link).symlink_metadata().is_err(), "{link}");
        }
        assert_eq!(
            fs::read_to_string(dir.join("code/r1").join(MARKER)).unwrap(),
            "good\n"
        );
    }

    #[test]
    fn previous_never_takes_a_history_line_that_is_no_release_name() {
        let tmp = TempDir::new("previous");
        let directory = tmp.0.join("code");
        for release in ["r1", "r2"] {
            fs::create_dir_all(directory.join(release)).unwrap();
            Status::Good.mark(&directory.join(release)).unwrap();
        }
        // A folder outside `directory` that looks like a good release.
        fs::create_dir_all(tmp.0.join("escape")).unwrap();
        Status::Good.mark(&tmp.0.join("escape")).unwrap();
        let settings = Settings {
            link: directory.join("current"),
            directory,
            revision: PREVIOUS.to_owned(),
            config: None,
            keep: 5,
            links: Vec::new(),
        };
        let history = names(&["r1", "../escape", "a\tb", "r2"]);
        assert_eq!(
            previous(&settings, &history, Some("r2")).as_deref(),
            Some("r1")
        );
    }

    #[test]
    fn a_marker_is_staged_beside_the_release_never_inside() {
        let tmp = TempDir::new("marker");
        let release = tmp.0.join("code/r1");
        // Where a temp file inside the folder would go is taken: no write happens there.
        fs::create_dir_all(release.join(format!("{MARKER}.tmp/x"))).unwrap();
        Status::Building.mark(&release).unwrap();
        Status::Good.mark(&release).unwrap();
        assert_eq!(Status::of(&release), Some(Status::Good));
        assert_eq!(
            staged_marker(&release),
            tmp.0.join("code/.r1.rbuildout-release")
        );
        let mut left: Vec<_> = fs::read_dir(tmp.0.join("code"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["r1"], "nothing staged is left beside it");
    }

    #[test]
    fn pruning_keeps_current_previous_and_the_newest_good() {
        let good = |n: &str| (n.to_owned(), Status::Good);
        let releases = vec![
            good("r1"),
            good("r2"),
            good("r3"),
            good("r4"),
            ("r5".to_owned(), Status::Failed),
            ("r6".to_owned(), Status::Building),
        ];
        let history = names(&["r1", "r2", "r3", "r1", "r4"]);
        // keep 1 besides current r4: r1 (most recent) stays, and so does previous r1.
        assert_eq!(
            to_prune(&releases, &history, "r4", Some("r1"), 1),
            names(&["r2", "r3", "r5", "r6"])
        );
        // keep 0 still keeps the previous one.
        assert_eq!(
            to_prune(&releases, &history, "r4", Some("r3"), 0),
            names(&["r1", "r2", "r5", "r6"])
        );
        assert_eq!(
            to_prune(&releases, &history, "r4", Some("r1"), 5),
            names(&["r5", "r6"])
        );
    }
}
