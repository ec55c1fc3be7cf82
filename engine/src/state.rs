//! The state file (`buildout:installed`, default `.installed.toml`): what is installed, with
//! which recipe and options, publishing which outputs, owning which paths, in which order.
//!
//! The file is replaced atomically (temp file in the same folder, fsync, rename, fsync of the
//! folder), so a crash or `kill -9` leaves either the old or the new version, never a mix.
//! It is rewritten only when its content changes: a run that changes nothing leaves the file
//! byte-identical with its modification time untouched.
//!
//! Neither the file nor its temp file is ever opened through a symlink: the file is read with
//! `O_NOFOLLOW` (a link there is an error), and the temp file is created anew (`O_EXCL`)
//! after removing whatever stands at its name, so a planted link is replaced, not written
//! through.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rbuildout_plugin_api::files;
use serde::{Deserialize, Serialize};

/// The format version written into the file; a file with another version is refused.
pub const FORMAT_VERSION: u32 = 1;

const HEADER: &str = "# rbuildout state: the parts installed in this instance, written by rbuildout after\n\
                      # every part. Do not edit; delete the file to reinstall everything.\n";

/// Errors reading or writing the state file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state file {path} is a symbolic link, which rbuildout never reads or writes through\n\
         hint: remove the link (or point buildout:installed at a real file)"
    )]
    Link { path: PathBuf },
    #[error("cannot read the state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the state file {path} is not valid: {message}\n\
         hint: delete it to reinstall every part from scratch"
    )]
    Parse { path: PathBuf, message: String },
    #[error("cannot write the state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which recipe installed a part: enough to tell whether the same code would run again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeRecord {
    /// The plugin's name, as its descriptor gives it.
    pub plugin: String,
    /// The plugin's version, as its descriptor gives it.
    pub version: String,
    /// The recipe inside the plugin (`default` unless the config says `name:entry`).
    pub entry: String,
    /// sha256 (hex) of the plugin's library file.
    pub digest: String,
    /// The library file's size, modification and change times, device and inode when
    /// `digest` was taken: while they stay the same, later runs reuse the digest instead of
    /// hashing the file again. Not part of the recipe's identity.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stamp: String,
}

impl RecipeRecord {
    /// Whether both run the same code: same plugin, version, entry and library digest.
    pub fn same_code(&self, other: &RecipeRecord) -> bool {
        self.plugin == other.plugin
            && self.version == other.version
            && self.entry == other.entry
            && self.digest == other.digest
    }
}

/// One installed part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The recipe identity; absent only if the plugin could not be identified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<RecipeRecord>,
    /// The resolved options the recipe received, as text (lists joined with newlines).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The outputs the recipe published, as text.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// The `[buildout]` options the recipe read (through the host) when it was installed or
    /// updated, with the values it got: inputs of the part as its options are, so a change
    /// reinstalls it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub buildout: BTreeMap<String, String>,
    /// The `[buildout]` options the recipe asked for and found unset.
    #[serde(
        default,
        rename = "buildout-unset",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub buildout_unset: Vec<String>,
    /// The paths the part owns: relative to the buildout directory when inside it, else absolute.
    #[serde(default)]
    pub paths: Vec<String>,
}

impl PartRecord {
    /// The `[buildout]` options the recipe read, each with the value it got (`None`:
    /// unset).
    pub fn buildout_reads(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.buildout
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .chain(self.buildout_unset.iter().map(|k| (k.as_str(), None)))
    }

    /// Records `reads` of `[buildout]` over the ones recorded (an update reads again what
    /// its install read, and perhaps more).
    pub fn add_buildout_reads(&mut self, reads: &BTreeMap<String, Option<String>>) {
        for (k, v) in reads {
            match v {
                Some(v) => {
                    self.buildout_unset.retain(|u| u != k);
                    self.buildout.insert(k.clone(), v.clone());
                }
                None => {
                    self.buildout.remove(k);
                    if !self.buildout_unset.contains(k) {
                        self.buildout_unset.push(k.clone());
                        self.buildout_unset.sort();
                    }
                }
            }
        }
    }
}

/// The whole state: the installed parts and their install order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Installed part names, in the order they were installed (uninstalls go in reverse).
    pub order: Vec<String>,
    /// The installed parts, keyed by name.
    pub parts: IndexMap<String, PartRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    #[serde(default)]
    order: Vec<String>,
    #[serde(default)]
    parts: IndexMap<String, PartRecord>,
}

impl State {
    /// Parses the text of a state file; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<State, StateError> {
        let disk: OnDisk = toml::from_str(text).map_err(|e| StateError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        if disk.version != FORMAT_VERSION {
            return Err(StateError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "format version {} is not the supported version {FORMAT_VERSION}",
                    disk.version
                ),
            });
        }
        let mut state = State {
            order: Vec::new(),
            parts: disk.parts,
        };
        // Keep the order consistent with the parts table whatever the file says: every
        // recorded part once, in the recorded order, then any part the order forgot.
        let mut seen = HashSet::new();
        for name in disk.order {
            if state.parts.contains_key(&name) && seen.insert(name.clone()) {
                state.order.push(name);
            }
        }
        for name in state.parts.keys() {
            if !seen.contains(name) {
                state.order.push(name.clone());
            }
        }
        Ok(state)
    }

    /// The file's text: parts in install order, options and outputs sorted by name.
    pub fn render(&self) -> String {
        let mut parts = IndexMap::new();
        for name in &self.order {
            if let Some(record) = self.parts.get(name) {
                parts.insert(name.clone(), record.clone());
            }
        }
        let disk = OnDisk {
            version: FORMAT_VERSION,
            order: self.order.clone(),
            parts,
        };
        // Serialising plain strings, maps and vectors cannot fail.
        let body = toml::to_string(&disk).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Records `part` as installed; a new part goes to the end of the order.
    pub fn insert(&mut self, part: &str, record: PartRecord) {
        // `order` and `parts` always name the same parts, so a new key is a new part.
        if self.parts.insert(part.to_string(), record).is_none() {
            self.order.push(part.to_string());
        }
    }

    /// Forgets `part`.
    pub fn remove(&mut self, part: &str) -> Option<PartRecord> {
        self.order.retain(|p| p != part);
        self.parts.shift_remove(part)
    }

    /// Sorts the order to follow `wanted` (the config's install order); parts it does not
    /// name keep their relative order and come first, since they were installed earlier.
    pub fn reorder(&mut self, wanted: &[String]) {
        let index: HashMap<&str, usize> = wanted
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect();
        let position = |p: &String| index.get(p.as_str()).copied();
        let (mut known, unknown): (Vec<String>, Vec<String>) =
            self.order.drain(..).partition(|p| position(p).is_some());
        known.sort_by_key(|p| position(p));
        self.order = unknown;
        self.order.extend(known);
    }
}

/// The state file on disk, remembering the bytes last read or written so that an unchanged
/// state is never rewritten.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    last: Option<String>,
}

impl StateFile {
    /// Reads `path`; a missing file is an empty state.
    pub fn open(path: &Path) -> Result<(StateFile, State), StateError> {
        match read_no_follow(path) {
            Ok(text) => {
                let state = State::parse(&text, path)?;
                Ok((
                    StateFile {
                        path: path.to_path_buf(),
                        last: Some(text),
                    },
                    state,
                ))
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(StateError::Link {
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((
                StateFile {
                    path: path.to_path_buf(),
                    last: None,
                },
                State::default(),
            )),
            Err(source) => Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `state` if it differs from what the file holds; returns whether it wrote.
    /// An empty state with no file on disk stays without a file.
    pub fn save(&mut self, state: &State) -> Result<bool, StateError> {
        if self.last.is_none() && state.parts.is_empty() {
            return Ok(false);
        }
        let text = state.render();
        if self.last.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        // The one atomic write (temp file beside it, fsync, rename, folder fsync): a reader or
        // a crash sees the old state or the new. The instance lock makes this run the only
        // writer; the temp file is made new, never opened through a link, and a link at the
        // state file itself is replaced by `rename`, not written through.
        files::write_atomic_io(&self.path, text.as_bytes()).map_err(|source| {
            StateError::Write {
                path: self.path.clone(),
                source,
            }
        })?;
        self.last = Some(text);
        Ok(true)
    }
}

/// The text of `path`, refusing to follow a symlink at `path` itself (`ELOOP`) and to read
/// anything but a regular file: opened non-blocking, so a FIFO put there cannot hang the run.
fn read_no_follow(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file: move it away",
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(option: &str) -> PartRecord {
        PartRecord {
            recipe: Some(RecipeRecord {
                plugin: "testkit".into(),
                version: "0.1.0".into(),
                entry: "file".into(),
                digest: "ab12".into(),
                stamp: "1 2.3 4.5 6:7".into(),
            }),
            options: BTreeMap::from([
                ("recipe".to_string(), "testkit:file".to_string()),
                ("text".to_string(), option.to_string()),
            ]),
            outputs: BTreeMap::from([("paths".to_string(), "a\nb".to_string())]),
            paths: vec!["parts/x".into(), "/abs/y".into()],
            ..PartRecord::default()
        }
    }

    #[test]
    fn render_then_parse_gives_the_same_state() {
        let mut state = State::default();
        state.insert("b", record("two\nlines \"quoted\""));
        let mut read = record("one");
        read.add_buildout_reads(&BTreeMap::from([
            ("bin-directory".to_string(), Some("/i/bin".to_string())),
            ("relative-paths".to_string(), None),
        ]));
        state.insert("a", read);
        let text = state.render();
        assert!(text.starts_with("# rbuildout state"));
        let back = State::parse(&text, Path::new("s.toml")).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.order, ["b", "a"]);
        assert_eq!(back.render(), text);
    }

    #[test]
    fn a_state_with_many_paths_and_awkward_texts_renders_and_parses_back_identically() {
        let mut state = State::default();
        let mut big = record("x");
        big.paths = (0..100_000)
            .map(|i| match i % 4 {
                0 => format!("million/{i}"),
                1 => format!("a \"quoted\" \\ {i}"),
                2 => format!("/abs/é/{i}\ttab"),
                _ => format!("'single' [{i}] = {{x}}"),
            })
            .collect();
        big.outputs = (0..1_000)
            .map(|i| (format!("o{i}"), format!("line\n{i}")))
            .collect();
        state.insert("big", big);
        state.insert("small", record("y"));
        let text = state.render();
        let back = State::parse(&text, Path::new("s.toml")).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.render(), text);
        assert_eq!(back.parts["big"].paths[1], "a \"quoted\" \\ 1");
    }

    #[test]
    fn other_versions_and_garbage_are_refused_naming_the_file() {
        let err = State::parse("version = 7\n", Path::new("/i/.installed.toml")).unwrap_err();
        assert!(err.to_string().contains("/i/.installed.toml"), "{err}");
        assert!(err.to_string().contains("format version 7"), "{err}");
        let err = State::parse("parts = [", Path::new("x.toml")).unwrap_err();
        assert!(matches!(err, StateError::Parse { .. }));
    }

    #[test]
    fn an_order_that_disagrees_with_the_parts_is_repaired() {
        let text = "version = 1\norder = [\"ghost\", \"a\", \"a\"]\n[parts.b]\n[parts.a]\n";
        let state = State::parse(text, Path::new("s")).unwrap();
        assert_eq!(state.order, ["a", "b"]);
    }

    #[test]
    fn reorder_follows_the_config_and_keeps_unknown_parts_first() {
        let mut state = State::default();
        for p in ["c", "old", "a", "b"] {
            state.insert(p, PartRecord::default());
        }
        state.reorder(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(state.order, ["old", "a", "b", "c"]);
    }

    #[test]
    fn links_at_the_state_file_are_refused_and_at_its_temp_file_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep").unwrap();
        let path = dir.path().join(".installed.toml");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = StateFile::open(&path).unwrap_err();
        assert!(matches!(err, StateError::Link { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();

        std::os::unix::fs::symlink(&target, dir.path().join(".installed.toml.tmp")).unwrap();
        let (mut file, mut state) = StateFile::open(&path).unwrap();
        state.insert("a", record("1"));
        assert!(file.save(&state).unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(!path.symlink_metadata().unwrap().is_symlink());
        assert!(!dir.path().join(".installed.toml.tmp").exists());
    }

    #[test]
    fn save_writes_only_when_the_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".installed.toml");
        let (mut file, mut state) = StateFile::open(&path).unwrap();
        assert!(
            !file.save(&state).unwrap(),
            "an empty state creates no file"
        );
        assert!(!path.exists());
        state.insert("a", record("1"));
        assert!(file.save(&state).unwrap());
        let first = std::fs::read(&path).unwrap();
        assert!(!file.save(&state).unwrap());
        let (mut reopened, again) = StateFile::open(&path).unwrap();
        assert_eq!(again, state);
        assert!(
            !reopened.save(&again).unwrap(),
            "a reloaded state is not rewritten"
        );
        assert_eq!(std::fs::read(&path).unwrap(), first);
        state.remove("a");
        assert!(
            reopened.save(&state).unwrap(),
            "emptying a state keeps a (now empty) file"
        );
        assert!(
            !State::parse(&std::fs::read_to_string(&path).unwrap(), &path)
                .unwrap()
                .parts
                .contains_key("a")
        );
        assert!(!dir.path().join(".installed.toml.tmp").exists());
    }
}
