//! Reading configs: TOML and legacy buildout.cfg, extends, macros, substitution.
//!
//! Both formats load into one model ([`model`]): sections of raw entries that remember
//! where each value came from. Files are merged with zc.buildout's rules, then a
//! [`Resolver`] substitutes `${section:option}` lazily, section by section.

mod buildout;
mod cfg;
mod cmdline;
mod condition;
mod diag;
mod extends;
mod limits;
mod model;
mod substitute;
mod toml;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

pub use buildout::Buildout;
pub use diag::{Diagnostic, Error, ErrorKind, Files, Span};
pub(crate) use extends::default_download_cache;
pub use limits::Limits;
pub use model::{History, Op, Source, Step, Value};
pub use substitute::{Held, IndexRef, Outputs, ReferenceTable, Resolver, ValueRef};

use model::{Entry, Section, Sections};

/// Which syntax a config file is written in, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Cfg,
}

/// How to find and load a config.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-c`; `None` = buildout.toml else buildout.cfg in `cwd`.
    pub file: Option<PathBuf>,
    pub cwd: PathBuf,
    /// False with `-U`.
    pub user_defaults: bool,
    /// `-o`: http(s) extends only from the cache, else a clear error.
    pub offline: bool,
    /// Raw `sec:opt=val`, `opt+=val`, `sec:opt-=val`, in command-line order.
    pub assignments: Vec<String>,
    /// `[buildout]` values set over everything else, after the assignments.
    pub overrides: Overrides,
}

/// `[buildout]` values a caller sets over a config's, typed: what a nested build inherits
/// from the instance that runs it. Each applies as a command-line assignment would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `buildout:directory`.
    pub directory: Option<PathBuf>,
    /// `buildout:instance-directory`: the outermost instance's folder.
    pub instance_directory: Option<PathBuf>,
    /// `buildout:eggs-directory`.
    pub eggs_directory: Option<PathBuf>,
    /// `buildout:download-cache`.
    pub download_cache: Option<PathBuf>,
}

impl Overrides {
    /// The options set, by name.
    fn entries(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("directory", &self.directory),
            ("instance-directory", &self.instance_directory),
            ("eggs-directory", &self.eggs_directory),
            ("download-cache", &self.download_cache),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)))
    }
}

/// One raw option as merged: its key (`name`, `name +`, `name -` or `<`), value and history.
pub type RawOption<'a> = (&'a str, &'a Value, &'a [Step]);

/// A loaded config: every section's raw options, merged, with their history.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    directory: PathBuf,
    format: Format,
    pub(crate) sections: Sections,
    pub(crate) files: Files,
    pub(crate) file_dirs: Vec<Option<PathBuf>>,
    cwd: PathBuf,
    /// The size limits this config was loaded with (the resolver applies `value`).
    pub(crate) limits: Limits,
    /// Bytes of config text parsed while loading, the first part of the budget
    /// [`Limits::expanded`] that macro expansion then shares.
    pub(crate) parsed: u64,
    /// `[buildout]`, typed, resolved once the config is loaded.
    buildout: Buildout,
}

impl Config {
    /// The config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Absolute `${buildout:directory}`.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The `[buildout]` settings the engine acts on, resolved when the config was loaded.
    pub fn buildout(&self) -> &Buildout {
        &self.buildout
    }

    /// Resolves [`Config::buildout`] (the last step of loading).
    fn with_buildout(mut self) -> Result<Config, Error> {
        self.buildout = Buildout::resolve(&self)?;
        Ok(self)
    }

    /// Every local file read to load the config (the config itself, the files it extends,
    /// the user defaults), absolute; URLs and the command line are not files.
    pub fn local_files(&self) -> Vec<PathBuf> {
        self.file_dirs
            .iter()
            .enumerate()
            .filter_map(|(id, dir)| {
                let dir = dir.as_ref()?;
                let name = Path::new(&self.files.get(id as u32)?.name).file_name()?;
                Some(dir.join(name))
            })
            .collect()
    }

    /// The working directory the config was loaded from (origins are shown relative to it).
    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    /// Every section name, in the order first seen.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    pub fn resolver(&self) -> Resolver<'_> {
        Resolver::new(self)
    }

    /// The file name and 1-based line of a span, for origins.
    pub fn locate(&self, span: Span) -> Option<(&str, usize)> {
        let f = self.files.get(span.file)?;
        if f.name == "<command line>" {
            return None;
        }
        Some((f.name.as_str(), self.files.line_col(span).0))
    }

    /// Builds an error pointing into this config's files.
    pub fn error(&self, diag: Diagnostic) -> Error {
        Error::one(&self.files, diag)
    }

    /// Where a section's header is, if it was written in a file.
    pub fn section_span(&self, name: &str) -> Option<Span> {
        self.sections.get(name).and_then(|s| s.header)
    }

    /// The raw (merged, not yet macro-expanded) sections, for `convert`.
    pub fn raw_sections(&self) -> impl Iterator<Item = (&str, Vec<RawOption<'_>>)> {
        self.sections.iter().map(|(n, s)| {
            (
                n.as_str(),
                s.options
                    .iter()
                    .map(|(k, e)| (k.as_str(), &e.value, e.history.as_slice()))
                    .collect(),
            )
        })
    }

    /// The text a span covers.
    pub fn span_text(&self, span: Span) -> Option<String> {
        let f = self.files.get(span.file)?;
        f.text
            .get(span.start as usize..span.end as usize)
            .map(str::to_owned)
    }

    fn path_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.cwd.clone())
    }
}

/// Parses one `.cfg` text into the model (no extends, no defaults). Never panics.
pub fn parse_cfg_str(text: &str, name: &str) -> Result<(), Error> {
    let mut files = Files::default();
    let id = files.add(name.to_owned(), text.to_owned());
    cfg::parse(text, id, &condition::Env::default())
        .map(|_| ())
        .map_err(|d| Error::new(&files, d))
}

/// A section as written in one file: its name and its options (key, raw value), in order.
pub type RawSection = (String, Vec<(String, Value)>);

/// One `.cfg` file as written, for `convert`: its sections in file order, each with its
/// option keys (`x +` and `x -` for pending `+=`/`-=`, `<` for macros, `<part-dependencies>`
/// for `=>`) and raw values; a `[section:condition]` is its own section named
/// `section:condition`, its condition not evaluated.
pub fn cfg_structure(text: &str, name: &str) -> Result<Vec<RawSection>, Error> {
    let mut files = Files::default();
    let id = files.add(name.to_owned(), text.to_owned());
    let sections = cfg::parse_structure(text, id).map_err(|d| Error::new(&files, d))?;
    Ok(sections
        .into_iter()
        .map(|(n, s)| {
            let options = s.options.into_iter().map(|(k, e)| (k, e.value)).collect();
            (n, options)
        })
        .collect())
}

/// Parses one TOML text into the model (no extends, no defaults). Never panics.
pub fn parse_toml_str(text: &str, name: &str) -> Result<(), Error> {
    let mut files = Files::default();
    let id = files.add(name.to_owned(), text.to_owned());
    toml::parse(text, id, &condition::Env::default())
        .map(|_| ())
        .map_err(|d| Error::new(&files, d))
}

/// Loads a config from one text, as if it were the file `name` in `dir`, with the built-in
/// defaults and without following `extends` or reading user defaults: what a fuzz target or
/// a benchmark calls. Never panics.
pub fn load_str(text: &str, name: &str, dir: &Path, format: Format) -> Result<Config, Error> {
    let limits = Limits::from_env()?;
    let mut files = Files::default();
    let env = condition::Env::default();
    let id = files.add(name.to_owned(), text.to_owned());
    let parsed = match format {
        Format::Toml => toml::parse(text, id, &env),
        Format::Cfg => cfg::parse(text, id, &env),
    }
    .map_err(|d| Error::new(&files, d))?;
    let mut data = defaults(format, dir);
    model::update(&mut data, {
        let mut d = Sections::default();
        model::update(&mut d, parsed);
        d
    });
    Config {
        path: dir.join(name),
        directory: dir.to_path_buf(),
        format,
        sections: data,
        files,
        file_dirs: vec![Some(dir.to_path_buf())],
        cwd: dir.to_path_buf(),
        limits,
        parsed: text.len() as u64,
        buildout: Buildout::default(),
    }
    .with_buildout()
}

fn find_config(opts: &LoadOptions) -> Result<PathBuf, Error> {
    if let Some(f) = &opts.file {
        let p = substitute::normalize(&opts.cwd.join(f));
        // A link counts as there, even a broken or looping one: reading it says which.
        if std::fs::symlink_metadata(&p).is_err() {
            return Err(Error::plain(
                ErrorKind::Io,
                format!("config file {} does not exist", f.display()),
            ));
        }
        return Ok(p);
    }
    for name in ["buildout.toml", "buildout.cfg"] {
        let p = opts.cwd.join(name);
        if std::fs::symlink_metadata(&p).is_ok() {
            return Ok(p);
        }
    }
    Err(Error::plain(
        ErrorKind::Io,
        format!(
            "no buildout.toml or buildout.cfg in {}; pass -c FILE or run `rbuildout init`",
            opts.cwd.display()
        ),
    ))
}

/// The user defaults files, lowest precedence first (SPEC §2.1; for `.cfg` configs also
/// zc.buildout's own, above rbuildout's).
fn user_default_files(format: Format) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut out = Vec::new();
    let rb = std::env::var_os("RBUILDOUT_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".rbuildout")));
    if let Some(d) = rb {
        out.push(d.join("default.toml"));
    }
    if format == Format::Cfg {
        let bo = std::env::var_os("BUILDOUT_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".buildout")));
        if let Some(d) = bo {
            out.push(d.join("default.cfg"));
        }
    }
    // A missing file (or a dangling link) is no defaults; a link loop is reported.
    out.into_iter()
        .filter(|p| match std::fs::metadata(p) {
            Ok(_) => true,
            Err(e) => e.raw_os_error() == Some(libc::ELOOP),
        })
        .collect()
}

fn default_entry(v: &str) -> Entry {
    Entry::new(Value::Str(v.to_owned()), Op::Set, Source::Default)
}

/// The built-in `[buildout]` defaults of SPEC §2.4 ([`buildout::defaults`]).
fn defaults(_format: Format, dir: &Path) -> Sections {
    let mut b = Section::default();
    for (k, v) in buildout::defaults() {
        b.options.insert(k.to_owned(), default_entry(&v));
    }
    b.options.insert(
        "directory".to_owned(),
        Entry::new(
            Value::Str(dir.display().to_string()),
            Op::Set,
            Source::Computed,
        ),
    );
    let mut s = Sections::default();
    s.insert("buildout".to_owned(), b);
    s
}

fn fold(results: Vec<Sections>) -> Sections {
    let mut out = Sections::default();
    for r in results {
        model::update(&mut out, r);
    }
    out
}

/// Loads, extends and merges a config (SPEC §2.1 precedence). Substitution happens later,
/// lazily, through [`Config::resolver`].
pub fn load(opts: &LoadOptions) -> Result<Config, Error> {
    let limits = Limits::from_env()?;
    let path = find_config(opts)?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Format::Toml,
        _ => Format::Cfg,
    };
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| opts.cwd.clone());
    let mut files = Files::default();
    let env = condition::Env::with_python();
    // `buildout:python` from the command line names the interpreter of Python conditions.
    if let Some(python) = opts.assignments.iter().rev().find_map(|a| {
        let (lhs, value) = a.split_once('=')?;
        matches!(lhs.trim(), "python" | "buildout:python").then(|| value.trim())
    }) && !python.is_empty()
    {
        condition::set_interpreter(python);
    }
    let mut errors = Vec::new();

    let mut cl = match cmdline::parse(&opts.assignments, &mut files) {
        Ok(s) => s,
        Err(d) => {
            errors.extend(d);
            Sections::default()
        }
    };
    if opts.offline {
        let b = cl.entry("buildout".to_owned()).or_default();
        b.options
            .entry("offline".to_owned())
            .or_insert_with(|| Entry::new(Value::Str("true".into()), Op::Set, Source::CommandLine));
    }
    for (option, value) in opts.overrides.entries() {
        let b = cl.entry("buildout".to_owned()).or_default();
        let value = Value::Str(value.display().to_string());
        b.options.insert(
            option.to_owned(),
            Entry::new(value, Op::Set, Source::CommandLine),
        );
    }
    let cl_extends = cl
        .get_mut("buildout")
        .and_then(|b| b.options.shift_remove("extends"));
    let cl_cache = cl
        .get("buildout")
        .and_then(|b| b.options.get("download-cache"))
        .map(|e| e.value.to_text());

    let mut loader = extends::Loader::new(
        &mut files,
        &env,
        opts.cwd.clone(),
        opts.offline,
        format == Format::Toml,
    );
    loader.limits = limits;
    loader.cache = cl_cache.map(|c| opts.cwd.join(extends::expand_home(&c)));

    let mut user = Vec::new();
    if opts.user_defaults {
        for f in user_default_files(format) {
            user.push(fold(loader.open(extends::Location::Path(f), None)));
        }
    }
    let mut results = user;
    results.extend(loader.open(extends::Location::Path(path.clone()), None));
    let cfg_data = fold(results);

    let mut data = defaults(format, &dir);
    // The main config's own path, for recipes that keep a file beside it (the egg recipe
    // writes `buildout.lock` beside `buildout.toml`, `release.lock` beside `release.toml`).
    if let Some(b) = data.get_mut("buildout") {
        let file = Value::Str(path.display().to_string());
        b.options.insert(
            "config-file".to_owned(),
            Entry::new(file, Op::Set, Source::Computed),
        );
    }
    model::update(&mut data, cfg_data);

    if let Some(e) = cl_extends {
        for name in e.value.to_list() {
            let loc = if extends::is_url(&name) {
                extends::Location::Url(name)
            } else {
                extends::Location::Path(substitute::normalize(&opts.cwd.join(name)))
            };
            let r = fold(loader.open(loc, None));
            model::update(&mut data, r);
        }
    }
    errors.extend(std::mem::take(&mut loader.errors));
    let file_dirs = std::mem::take(&mut loader.file_dirs);
    // What parsing used of the budget, macro expansion may not use again.
    let parsed = loader.parsed;
    model::update(&mut data, cl);
    if !errors.is_empty() {
        return Err(Error::new(&files, errors));
    }
    let mut config = Config {
        path,
        directory: dir.clone(),
        format,
        sections: data,
        files,
        file_dirs,
        cwd: opts.cwd.clone(),
        limits,
        parsed,
        buildout: Buildout::default(),
    };
    let directory = config.resolver().get("buildout", "directory")?;
    config.directory = PathBuf::from(directory.to_text());
    config.with_buildout()
}

/// The resolved values of one section with their histories, as `annotate` shows them.
pub type Annotated = IndexMap<String, (Value, Vec<Step>)>;

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "[buildout]\nparts = a b\nx = ${a:v}\n\n[m]\nlist = one\n  two\ngreet = hi ${:who}\n\n\
        [a]\n<= m\nrecipe = r\nwho = w\nlist += three\nlist -= one\nv = $${x} ${:who}\n=> b\n\n\
        [b]\nrecipe = r\nblock =\n    x\n\n      y\n[b:linux]\nz += 1\n";
    const TOML: &str = "[buildout]\nparts = ['a', 'b']\nx = '${a:v}'\n\n[m]\nlist = ['one', 'two']\n\
        greet = 'hi ${:who}'\nwho = 'macro'\n\n[a]\ninherits = 'm'\nrecipe = 'r'\nwho = 'w'\n\
        list = { append = ['three'], remove = 'one' }\nv = '$${x} ${:who}'\nneeds = ['b']\n\n\
        [b]\nrecipe = 'r'\nn = 8080\nl = ['${m:list}', 'z']\n";

    /// Loads and resolves everything reachable; returns the values, or the error text.
    fn resolve_all(text: &str, format: Format) -> Result<Vec<(String, String, Value)>, String> {
        let dir = std::env::temp_dir();
        let c = load_str(text, "t", &dir, format).map_err(|e| e.to_string())?;
        let mut r = c.resolver();
        let parts = crate::graph::parts(&c, &mut r).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for s in parts.evaluated() {
            for (k, v) in r.section(s).map_err(|e| e.to_string())? {
                out.push((s.clone(), k, v));
            }
        }
        Ok(out)
    }

    /// `[buildout]` paths are normalised as Python's `os.path.abspath` does: `..` never
    /// climbs above `/` (it once gave `/../x`).
    #[test]
    fn buildout_paths_never_climb_above_the_root() {
        let dir = std::env::temp_dir();
        let c = load_str(
            "[buildout]\nparts = []\ndirectory = \"/a/../../x\"\nbin-directory = \"../../b\"\n",
            "t",
            &dir,
            Format::Toml,
        )
        .unwrap();
        let mut r = c.resolver();
        assert_eq!(r.get("buildout", "directory").unwrap().to_text(), "/x");
        assert_eq!(r.get("buildout", "bin-directory").unwrap().to_text(), "/b");
    }

    fn value(all: &[(String, String, Value)], s: &str, o: &str) -> Value {
        all.iter()
            .find(|(a, b, _)| a == s && b == o)
            .map(|(_, _, v)| v.clone())
            .unwrap_or_else(|| panic!("{s}:{o} missing"))
    }

    #[test]
    fn both_formats_resolve_macros_increments_and_escapes() {
        let cfg = resolve_all(CFG, Format::Cfg).unwrap();
        assert_eq!(value(&cfg, "a", "greet"), Value::Str("hi w".into()));
        assert_eq!(value(&cfg, "a", "list"), Value::Str("two\nthree".into()));
        assert_eq!(value(&cfg, "a", "v"), Value::Str("$${x} w".into()));
        assert_eq!(value(&cfg, "buildout", "x"), Value::Str("$${x} w".into()));
        assert_eq!(value(&cfg, "b", "block"), Value::Str("x\n\n  y".into()));
        let toml = resolve_all(TOML, Format::Toml).unwrap();
        assert_eq!(value(&toml, "a", "greet"), Value::Str("hi w".into()));
        assert_eq!(
            value(&toml, "a", "list"),
            Value::List(vec!["two".into(), "three".into()])
        );
        assert_eq!(value(&toml, "a", "v"), Value::Str("${x} w".into()));
        assert_eq!(value(&toml, "b", "n"), Value::Str("8080".into()));
        assert_eq!(
            value(&toml, "b", "l"),
            Value::List(vec!["one".into(), "two".into(), "z".into()])
        );
    }

    #[test]
    fn cycles_name_the_whole_chain() {
        let e = resolve_all("[buildout]\nparts = a\n[a]\nrecipe = r\nx = ${b:y}\n[b]\ny = ${c:z}\n[c]\nz = ${a:x}\n", Format::Cfg)
            .unwrap_err();
        assert!(e.contains("a:x -> b:y -> c:z -> a:x"), "{e}");
    }

    #[test]
    fn long_chains_of_references_and_macros_need_no_deep_stack() {
        let n = 10_000;
        let mut text = format!("[buildout]\nparts = s{}\n[s0]\nrecipe = r\nx = 0\n", n - 1);
        for i in 1..n {
            text.push_str(&format!("[s{i}]\n<= s{}\nx = ${{s{}:x}}\n", i - 1, i - 1));
        }
        let all = resolve_all(&text, Format::Cfg).unwrap();
        assert_eq!(
            value(&all, &format!("s{}", n - 1), "x"),
            Value::Str("0".into())
        );
        assert_eq!(
            value(&all, &format!("s{}", n - 1), "recipe"),
            Value::Str("r".into())
        );
    }

    /// A small deterministic generator, so the mutation test needs no dependency.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn mutated_inputs_never_panic() {
        const PIECES: &[&str] = &[
            "${",
            "}",
            "$$",
            ":",
            "\n",
            "  ",
            "[",
            "]",
            "=",
            "+=",
            "-=",
            "<=",
            "${:x}",
            "${a:b:c}",
            "é",
            "\t",
            "#",
            "'",
            "\"",
            "{ append = 'x' }",
            "[[a]]",
            "inherits = 'a'",
            "${buildout:directory}",
            "[s:linux]",
        ];
        let mut rng = Lcg(42);
        for (base, format) in [(CFG, Format::Cfg), (TOML, Format::Toml)] {
            for _ in 0..400 {
                let mut text = base.to_owned();
                for _ in 0..(1 + rng.next() % 4) {
                    let mut at = (rng.next() as usize) % (text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    match rng.next() % 3 {
                        0 => text.insert_str(at, PIECES[(rng.next() as usize) % PIECES.len()]),
                        1 => {
                            let mut end = (at + 1 + (rng.next() as usize) % 8).min(text.len());
                            while !text.is_char_boundary(end) {
                                end += 1;
                            }
                            text.replace_range(at..end, "");
                        }
                        _ => text
                            .insert(at, char::from_u32(rng.next() as u32 % 0x250).unwrap_or('x')),
                    }
                }
                let _ = parse_cfg_str(&text, "t");
                let _ = parse_toml_str(&text, "t");
                let _ = resolve_all(&text, format);
            }
        }
    }
}
