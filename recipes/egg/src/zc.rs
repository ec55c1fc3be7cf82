//! zc.buildout's script recipes under their own names, natively (docs/zc-recipes.md):
//! `zc.recipe.egg` (entry points `default`, `script`, `scripts` and `eggs`; `custom` and
//! `develop` fail, naming the part), `z3c.recipe.scripts` (`default` and `interpreter`) and
//! `zc.recipe.testrunner` ([`testrunner`]).
//!
//! The distributions are installed by this crate's `egg` recipe, run on the same options;
//! the scripts are written in zc.buildout 6's format (its `easy_install.scripts()`), so a
//! `bin/` made from a buildout.cfg matches zc.buildout's but for the egg folders' paths.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr as _;

use pep508_rs::{MarkerEnvironment, Requirement};
use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, files};

use crate::lockfile::LockedDist;
use crate::util::normalize;

mod testrunner;

pub use testrunner::TestRunner;

/// One distribution of the working set the `egg` recipe installed.
pub(crate) struct Dist {
    /// Normalised (PEP 503).
    name: String,
    pub(crate) folder: PathBuf,
}

thread_local! {
    /// Set while a recipe of this module runs the `egg` recipe: where `publish` leaves the
    /// working set (the egg recipe resolves and publishes on the calling thread).
    static WORKING_SET: RefCell<Option<Vec<Dist>>> = const { RefCell::new(None) };
}

/// Called by the egg recipe's `publish`: keeps the working set, in its published order,
/// for the zc recipe that asked for it (if any).
pub(crate) fn keep_working_set(dists: &[LockedDist], order: &[usize], folders: &[PathBuf]) {
    WORKING_SET.with(|ws| {
        if let Some(ws) = ws.borrow_mut().as_mut() {
            ws.clear();
            ws.extend(order.iter().map(|&i| Dist {
                name: dists[i].name.clone(),
                folder: folders[i].clone(),
            }));
        }
    });
}

/// Installs the part's `eggs` as the `egg` recipe does (publishing its outputs) and returns
/// the working set.
pub(crate) fn working_set(options: &Options, ctx: &Context) -> Result<Vec<Dist>> {
    WORKING_SET.with(|ws| *ws.borrow_mut() = Some(Vec::new()));
    let outcome = crate::run(options, ctx);
    let ws = WORKING_SET
        .with(|ws| ws.borrow_mut().take())
        .unwrap_or_default();
    outcome.map(|()| ws)
}

/// The distribution's `.dist-info` folder in its egg folder.
pub(crate) fn dist_info(folder: &Path) -> Option<PathBuf> {
    let mut infos: Vec<PathBuf> = fs::read_dir(folder)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dist-info"))
        .collect();
    infos.sort();
    infos.into_iter().next()
}

/// The requirements of the distribution in `folder` for `extras`, in its metadata's order.
fn requires(
    folder: &Path,
    extras: &[pep508_rs::ExtraName],
    markers: &MarkerEnvironment,
) -> Vec<Requirement> {
    let Some(text) = dist_info(folder).and_then(|i| fs::read_to_string(i.join("METADATA")).ok())
    else {
        return Vec::new();
    };
    crate::metadata::parse(&text)
        .requires_dist
        .iter()
        .filter_map(|r| Requirement::from_str(r).ok())
        .filter(|r| r.evaluate_markers(markers, extras))
        .collect()
}

/// The working set in zc.buildout's order: the requested distributions in `eggs` order,
/// then the others in the order its resolver reaches them (a queue of requirements, each
/// distribution's own added in reverse).
fn zc_order(ws: Vec<Dist>, roots: &[Requirement], markers: &MarkerEnvironment) -> Vec<Dist> {
    let roots: Vec<&Requirement> = roots
        .iter()
        .filter(|r| r.evaluate_markers(markers, &[]))
        .collect();
    let mut order: Vec<usize> = Vec::new();
    let add = |order: &mut Vec<usize>, name: &str| {
        // A name that is not a valid project name names no distribution.
        let name = normalize(name)?;
        let found = ws.iter().position(|d| d.name == name);
        if let Some(i) = found.filter(|i| !order.contains(i)) {
            order.push(i);
        }
        found
    };
    for r in &roots {
        add(&mut order, r.name.as_ref());
    }
    let mut queue: VecDeque<Requirement> = roots.iter().rev().map(|r| (*r).clone()).collect();
    let mut processed = HashSet::new();
    while let Some(req) = queue.pop_front() {
        if !processed.insert(req.to_string()) {
            continue;
        }
        if let Some(i) = add(&mut order, req.name.as_ref()) {
            queue.extend(
                requires(&ws[i].folder, &req.extras, markers)
                    .into_iter()
                    .rev(),
            );
        }
    }
    order.extend(
        (0..ws.len())
            .filter(|i| !order.contains(i))
            .collect::<Vec<_>>(),
    );
    let mut slots: Vec<Option<Dist>> = ws.into_iter().map(Some).collect();
    order.iter().filter_map(|&i| slots[i].take()).collect()
}

/// The options as zc.recipe.egg reads them: `python` naming a section (zc.buildout 1's
/// `[buildout] python = py` with `[py] executable = ...`) becomes that section's
/// `executable`, and (z3c.recipe.scripts) the options of the section named by `extends`
/// replace the part's.
fn effective_options(
    options: &Options,
    ctx: &Context,
    extends: bool,
) -> Result<Vec<(String, String)>> {
    let mut items: Vec<(String, String)> = options
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let set = |items: &mut Vec<(String, String)>, name: &str, value: String| match items
        .iter_mut()
        .find(|(k, _)| k == name)
    {
        Some(item) => item.1 = value,
        None => items.push((name.to_owned(), value)),
    };
    if extends && let Some(section) = options.get("extends").map(str::trim) {
        let mut found = ctx.option(section, "recipe").is_some();
        for name in Z3C_OPTIONS {
            if let Some(value) = ctx.option(section, name) {
                set(&mut items, name, value);
                found = true;
            }
        }
        // A misspelt section would otherwise silently extend nothing.
        if !found {
            return Err(Error::new(format!(
                "option `extends`: section `{section}` sets no option this recipe reads"
            )));
        }
    }
    let python = items
        .iter()
        .find(|(k, _)| k == "python")
        .map(|(_, v)| v.trim().to_owned())
        .or_else(|| {
            ctx.option("buildout", "python")
                .map(|p| p.trim().to_owned())
        });
    if let Some(python) = python
        && !python.contains('/')
        && let Some(executable) = ctx.option(&python, "executable")
    {
        set(&mut items, "python", executable.trim().to_owned());
    }
    Ok(items)
}

/// What `extends` copies (z3c.recipe.scripts copies every option; these are the ones read).
const Z3C_OPTIONS: [&str; 16] = [
    "eggs",
    "find-links",
    "index",
    "python",
    "extra-paths",
    "entry-points",
    "scripts",
    "dependent-scripts",
    "interpreter",
    "initialization",
    "script-initialization",
    "arguments",
    "relative-paths",
    "include-site-packages",
    "exec-sitecustomize",
    "name",
];

/// Runs `body` with the part's options as zc.recipe.egg sees them.
fn with_options(
    options: &Options,
    ctx: &Context,
    extends: bool,
    body: impl FnOnce(&Options) -> Result<()>,
) -> Result<()> {
    let items = effective_options(options, ctx, extends)?;
    let pairs: Vec<(&str, &str)> = items
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    body(&Options::new(pairs, ctx.buildout_directory()))
}

/// `zc.recipe.egg:eggs`: installs the eggs, writes nothing else.
pub struct Eggs;

impl Recipe for Eggs {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        with_options(options, ctx, false, |o| working_set(o, ctx).map(drop))
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        Self::install(options, ctx)
    }
}

/// `zc.recipe.egg` (`default`, `script`, `scripts`): installs the eggs and writes their
/// console scripts and the interpreter.
pub struct Scripts;

impl Recipe for Scripts {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        with_options(options, ctx, false, |o| generate(o, ctx, Flavour::ZcEgg))
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        Self::install(options, ctx)
    }
}

/// `z3c.recipe.scripts` (`default`): zc.recipe.egg's scripts, plus `extends`,
/// `script-initialization`, and `include-site-packages`/`exec-sitecustomize` = `false`.
pub struct Z3cScripts;

impl Recipe for Z3cScripts {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        with_options(options, ctx, true, |o| {
            generate(o, ctx, Flavour::Z3cScripts)
        })
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        Self::install(options, ctx)
    }
}

/// `z3c.recipe.scripts:interpreter`: only the interpreter, named by `name` (default: the
/// part's name).
pub struct Z3cInterpreter;

impl Recipe for Z3cInterpreter {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        with_options(options, ctx, true, |o| {
            generate(o, ctx, Flavour::Z3cInterpreter)
        })
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        Self::install(options, ctx)
    }
}

/// `zc.recipe.egg:custom`: not supported natively.
pub struct Custom;

impl Recipe for Custom {
    fn install(_options: &Options, _ctx: &Context) -> Result<()> {
        Err(not_supported("custom"))
    }
}

/// `zc.recipe.egg:develop`: not supported natively.
pub struct Develop;

impl Recipe for Develop {
    fn install(_options: &Options, _ctx: &Context) -> Result<()> {
        Err(not_supported("develop"))
    }
}

/// The engine names the part (`part `p` failed during install: ...`).
fn not_supported(entry: &str) -> Error {
    Error::new(format!(
        "recipe `zc.recipe.egg:{entry}` is not supported: rbuildout does not build \
         distributions with custom build options; build a wheel and serve it from \
         `find-links` or an index, and use `zc.recipe.egg` (or `zc.recipe.egg:eggs`) for it"
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    ZcEgg,
    Z3cScripts,
    Z3cInterpreter,
}

/// An entry point a script runs: `module:attrs`.
struct EntryPoint {
    name: String,
    module: String,
    attrs: String,
}

/// A dotted name of word characters (`\w+(?:[.]\w+)*`, Python's `\w`).
fn is_dotted(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// One token of `entry-points`: `name=module:attrs`, as zc.recipe.egg parses it.
fn parse_entry_point_option(token: &str) -> Option<EntryPoint> {
    let (name, value) = token.split_once('=')?;
    let (module, attrs) = value.split_once(':')?;
    (!name.is_empty() && is_dotted(module) && is_dotted(attrs)).then(|| EntryPoint {
        name: name.to_owned(),
        module: module.to_owned(),
        attrs: attrs.to_owned(),
    })
}

/// The `[console_scripts]` of an `entry_points.txt`, in file order; lines that are not
/// entry points are skipped.
fn console_scripts(text: &str) -> Vec<EntryPoint> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == "console_scripts";
            continue;
        }
        let Some((name, value)) = line.split_once('=').filter(|_| inside) else {
            continue;
        };
        let value = value.split('[').next().unwrap_or("").trim();
        let Some((module, attrs)) = value.split_once(':') else {
            continue;
        };
        let (module, attrs) = (module.trim(), attrs.trim());
        if is_dotted(module) && is_dotted(attrs) {
            out.push(EntryPoint {
                name: name.trim().to_owned(),
                module: module.to_owned(),
                attrs: attrs.to_owned(),
            });
        }
    }
    out
}

/// The console scripts of the distribution installed in `folder`.
fn console_scripts_of(folder: &Path) -> Vec<EntryPoint> {
    dist_info(folder)
        .and_then(|info| fs::read_to_string(info.join("entry_points.txt")).ok())
        .map(|t| console_scripts(&t))
        .unwrap_or_default()
}

/// The folders the `.pth` files of `folder` add (as zc.buildout reads them: no `import`
/// lines, relative to the folder).
pub(crate) fn pth_paths(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut pths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pth"))
        .collect();
    pths.sort();
    let mut out = Vec::new();
    for pth in pths {
        let Ok(text) = fs::read_to_string(&pth) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with("import ") {
                continue;
            }
            let path = files::normalize(&folder.join(line));
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// Python's `os.path.realpath`: links resolved where the path exists, `..` folded.
fn realpath(path: &Path) -> PathBuf {
    let path = files::normalize(path);
    if let Ok(real) = fs::canonicalize(&path) {
        return real;
    }
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while let Some(parent) = existing.parent() {
        if let Some(name) = existing.file_name() {
            rest.push(name.to_owned());
        }
        existing = parent;
        if let Ok(real) = fs::canonicalize(existing) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
    }
    path
}

/// `text` as Python's `repr()` writes a `str`.
fn py_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| {
        Error::new(format!(
            "{} is not valid UTF-8 and cannot go into a script",
            path.display()
        ))
    })
}

/// Python's `os.path.dirname`.
fn dirname(path: &str) -> &str {
    let head = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let trimmed = head.trim_end_matches('/');
    if trimmed.is_empty() {
        &head[..head.len().min(1)]
    } else {
        trimmed
    }
}

/// The longest common leading text of `a` and `b` (Python's `os.path.commonprefix`).
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let n = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    &a[..n]
}

/// One sys.path entry of a script with `relative-paths`: `base`, `join(base, 'rel')`, or
/// the absolute path (outside the buildout).
fn relativize(path: &str, script: &str, root: &str) -> Result<String> {
    if path == script {
        return Err(Error::new(format!(
            "the script {script} is itself a sys.path entry"
        )));
    }
    if path == root {
        return Ok("base".to_owned());
    }
    let common = dirname(common_prefix(path, script));
    if common == root || common.starts_with(&format!("{root}/")) {
        let rel = path
            .strip_prefix(common)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(path);
        Ok(format!("join(base, {})", py_repr(rel)))
    } else {
        Ok(py_repr(path))
    }
}

/// How many folders above the script's folder the buildout directory is.
fn depth(root: &str, script: &str) -> Result<usize> {
    let mut n = 0;
    let mut path = script;
    loop {
        let parent = dirname(path);
        if parent == root {
            return Ok(n);
        }
        if parent == path {
            return Err(Error::new(format!(
                "relative-paths: the script {script} is not inside the buildout directory \
                 {root}"
            )));
        }
        n += 1;
        path = parent;
    }
}

/// The sys.path list text and the `base` setup of the script at `script`.
fn path_and_setup(script: &str, paths: &[String], root: Option<&str>) -> Result<(String, String)> {
    let Some(root) = root else {
        let reprs: Vec<String> = paths.iter().map(|p| py_repr(p)).collect();
        return Ok((reprs.join(", ").replace(", ", ",\n  "), String::new()));
    };
    let entries = paths
        .iter()
        .map(|p| relativize(p, script, root))
        .collect::<Result<Vec<_>>>()?;
    let mut setup = String::from(
        "\nimport os\n\njoin = os.path.join\n\
         base = os.path.dirname(os.path.abspath(os.path.realpath(__file__)))\n",
    );
    for _ in 0..depth(root, script)? {
        setup.push_str("base = os.path.dirname(base)\n");
    }
    Ok((entries.join(",\n  "), setup))
}

fn console_script(
    python: &str,
    path: &str,
    setup: &str,
    initialization: &str,
    entry: &EntryPoint,
    arguments: &str,
) -> String {
    format!(
        "#!{python}\n{setup}\nimport sys\nsys.path[0:0] = [\n  {path},\n  ]\n{initialization}\n\
         import {module}\n\nif __name__ == '__main__':\n    sys.exit({module}.{attrs}({arguments}))\n",
        module = entry.module,
        attrs = entry.attrs,
    )
}

fn interpreter_script(python: &str, path: &str, setup: &str, initialization: &str) -> String {
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("{path},")
    };
    format!(
        "#!{python}\n{setup}\nimport sys\n\nsys.path[0:0] = [\n  {path}\n  ]\n{initialization}\n\
         {INTERPRETER}"
    )
}

/// The body of the interpreter script (zc.buildout 6's `py_script_template`, which the
/// scripts must match).
const INTERPRETER: &str = r#"
_interactive = True
if len(sys.argv) > 1:
    # The Python interpreter wrapper allows only some of the options that a
    # "regular" Python interpreter accepts.
    _options, _args = __import__("getopt").getopt(sys.argv[1:], 'Iic:m:')
    _interactive = False
    for (_opt, _val) in _options:
        if _opt == '-i':
            _interactive = True
        elif _opt == '-c':
            exec(_val)
        elif _opt == '-m':
            sys.argv[1:] = _args
            _args = []
            __import__("runpy").run_module(
                 _val, {}, "__main__", alter_sys=True)
        elif _opt == '-I':
            # Allow yet silently ignore the `-I` option. The original behaviour
            # for this option is to create an isolated Python runtime. It was
            # deemed acceptable to allow the option here as this Python wrapper
            # is isolated from the system Python already anyway.
            # The specific use-case that led to this change is how the Python
            # language extension for Visual Studio Code calls the Python
            # interpreter when initializing the extension.
            pass

    if _args:
        sys.argv[:] = _args
        __file__ = _args[0]
        del _options, _args
        with open(__file__) as __file__f:
            exec(compile(__file__f.read(), __file__, "exec"))

if _interactive:
    del _interactive
    __import__("code").interact(banner="", local=globals())
"#;

/// A `true`/`false` option as zc.recipe.egg reads it (`get_bool`): unset or empty is
/// `false`, anything but the two words an error.
fn zc_bool(options: &Options, name: &str) -> Result<bool> {
    match options.get(name).map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Error::new(format!(
            "option `{name}`: invalid value `{other}`: write `true` or `false`"
        ))),
    }
}

fn check_name(option: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\0'])
        || Path::new(name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        return Err(Error::new(format!(
            "option `{option}`: `{name}` is not a usable script name (no path separators)"
        )));
    }
    Ok(())
}

/// Everything the script options say, read and checked before anything is installed.
struct Plan {
    /// `None`: `scripts` is set and empty (no scripts, no interpreter).
    scripts: Option<Option<BTreeMap<String, String>>>,
    entry_points: Vec<EntryPoint>,
    dependent: bool,
    interpreter: Option<String>,
    initialization: String,
    script_initialization: String,
    arguments: String,
    extra_paths: Vec<PathBuf>,
    /// The buildout directory, when `relative-paths` is true.
    relative_to: Option<String>,
    bin: PathBuf,
}

impl Plan {
    fn read(options: &Options, ctx: &Context, flavour: Flavour) -> Result<Plan> {
        let root = ctx.buildout_directory();
        if flavour != Flavour::ZcEgg {
            for name in ["include-site-packages", "exec-sitecustomize"] {
                let value = options
                    .get(name)
                    .map(str::to_owned)
                    .or_else(|| ctx.option("buildout", name))
                    .unwrap_or_else(|| "false".to_owned());
                match value.trim() {
                    "false" => {}
                    "true" => {
                        return Err(Error::new(format!(
                            "option `{name}` = true is not supported: rbuildout's scripts \
                             never see the interpreter's site-packages"
                        )));
                    }
                    other => {
                        return Err(Error::new(format!(
                            "option `{name}`: invalid value `{other}`: write `true` or `false`"
                        )));
                    }
                }
            }
        }
        let scripts = match (flavour, options.get("scripts")) {
            (Flavour::Z3cInterpreter, _) => Some(Some(BTreeMap::new())),
            (_, None) => Some(None),
            (_, Some(text)) if text.trim().is_empty() => None,
            (_, Some(text)) => {
                let mut map = BTreeMap::new();
                for token in text.split_whitespace() {
                    let (name, file) = token.split_once('=').unwrap_or((token, token));
                    check_name("scripts", file)?;
                    map.insert(name.to_owned(), file.to_owned());
                }
                Some(Some(map))
            }
        };
        let mut entry_points = Vec::new();
        for token in options.get("entry-points").unwrap_or("").split_whitespace() {
            let entry = parse_entry_point_option(token).ok_or_else(|| {
                Error::new(format!(
                    "option `entry-points`: cannot parse the entry point `{token}`: write \
                     `name=module:attrs`"
                ))
            })?;
            check_name("entry-points", &entry.name)?;
            entry_points.push(entry);
        }
        let interpreter = match flavour {
            Flavour::Z3cInterpreter => Some(
                options
                    .get("name")
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(ctx.part())
                    .to_owned(),
            ),
            _ => options
                .get("interpreter")
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned),
        };
        if let Some(name) = &interpreter {
            check_name("interpreter", name)?;
        }
        let relative = options
            .get("relative-paths")
            .map(str::to_owned)
            .or_else(|| ctx.option("buildout", "relative-paths"))
            .unwrap_or_else(|| "false".to_owned());
        let relative_to = match relative.trim() {
            "true" => Some(utf8(root)?.to_owned()),
            "false" => None,
            other => {
                return Err(Error::new(format!(
                    "option `relative-paths`: invalid value `{other}`: write `true` or `false`"
                )));
            }
        };
        let extra_paths = options
            .get("extra-paths")
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(p))
            .collect();
        let bin = ctx
            .option("buildout", "bin-directory")
            .map(|b| root.join(b.trim()))
            .unwrap_or_else(|| root.join("bin"));
        let bin = files::Targets::of(ctx).allowed(&bin)?;
        let initialization = options.get("initialization").unwrap_or("").to_owned();
        let script_initialization = match flavour {
            Flavour::ZcEgg => String::new(),
            _ => options
                .get("script-initialization")
                .unwrap_or("")
                .to_owned(),
        };
        Ok(Plan {
            scripts,
            entry_points,
            dependent: zc_bool(options, "dependent-scripts")?,
            interpreter,
            initialization,
            script_initialization,
            arguments: options.get("arguments").unwrap_or("").to_owned(),
            extra_paths,
            relative_to,
            bin,
        })
    }
}

/// A script's sys.path as zc.buildout's `easy_install.scripts()` makes it: the working set,
/// what their `.pth` files add, then `extra`; each once, then resolved.
fn sys_path(ws: &[Dist], extra: &[PathBuf]) -> Result<Vec<String>> {
    let mut path: Vec<PathBuf> = Vec::new();
    let folders = ws.iter().map(|d| d.folder.clone());
    let pths = ws.iter().flat_map(|d| pth_paths(&d.folder));
    for p in folders.chain(pths).chain(extra.iter().cloned()) {
        if !path.contains(&p) {
            path.push(p);
        }
    }
    path.iter()
        .map(|p| utf8(&realpath(p)).map(str::to_owned))
        .collect()
}

/// zc.recipe.egg's `sort_working_set`: what is not in the eggs folder goes last, as
/// zc.buildout 6's develop distributions (installed into develop-eggs) do.
fn develop_last(ws: Vec<Dist>) -> Vec<Dist> {
    let (mut ws, develop): (Vec<Dist>, Vec<Dist>) = ws
        .into_iter()
        .partition(|d| !crate::develop::is_develop(&d.folder));
    ws.extend(develop);
    ws
}

/// `initialization` after the code that makes the develop distributions of `ws` whose
/// `.pth` runs code (an `import` line, as setuptools' editable finders have) work: each such
/// folder processed as a site folder first.
fn with_site_folders(ws: &[Dist], initialization: &str) -> Result<String> {
    let mut code = String::new();
    for dist in ws {
        if crate::develop::runs_code(&dist.folder) {
            code.push_str(&format!(
                "import site\nsite.addsitedir({})\n",
                py_repr(utf8(&realpath(&dist.folder))?)
            ));
        }
    }
    Ok(if code.is_empty() {
        initialization.to_owned()
    } else {
        format!("{code}{initialization}").trim_end().to_owned()
    })
}

/// `initialization` as zc.buildout puts it in a script: between blank lines, or nothing.
fn framed(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!("\n{code}\n")
    }
}

fn generate(options: &Options, ctx: &Context, flavour: Flavour) -> Result<()> {
    let plan = Plan::read(options, ctx, flavour)?;
    let ws = working_set(options, ctx)?;
    let settings = crate::Settings::read(options, ctx)?;
    let interp = crate::interp::query(&settings.python, &settings.cache)?;
    let python = interp.executable.clone();
    let roots = crate::requirements(options.get("eggs").unwrap_or(ctx.part()), &[])?;
    let ws = develop_last(zc_order(ws, &roots, &interp.markers));
    publish_compat(options, ctx, &python, &plan)?;
    let Some(scripts) = &plan.scripts else {
        return Ok(());
    };

    let path = sys_path(&ws, &plan.extra_paths)?;

    // The entry points: the console scripts of the requested eggs (all of the working set
    // with `dependent-scripts`), then `entry-points`.
    let mut entries: Vec<EntryPoint> = Vec::new();
    if flavour != Flavour::Z3cInterpreter {
        let mut names: Vec<String> = Vec::new();
        for req in &roots {
            if !req.evaluate_markers(&interp.markers, &[]) {
                continue; // a marker the interpreter does not match
            }
            let name = req.name.to_string();
            let present = ws.iter().any(|d| d.name == name);
            if !present {
                return Err(Error::new(format!(
                    "could not find requirement `{}` in the working set",
                    req.name
                )));
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        if plan.dependent {
            for dist in &ws {
                if dist.name != "setuptools" && !names.contains(&dist.name) {
                    names.push(dist.name.clone());
                }
            }
        }
        for name in &names {
            if let Some(dist) = ws.iter().find(|d| d.name == *name) {
                entries.extend(console_scripts_of(&dist.folder));
            }
        }
    }
    entries.extend(plan.entry_points.iter().map(|e| EntryPoint {
        name: e.name.clone(),
        module: e.module.clone(),
        attrs: e.attrs.clone(),
    }));

    let mut wanted: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let initialization = with_site_folders(&ws, &plan.initialization)?;
    let script_init = framed(&match (&*initialization, &*plan.script_initialization) {
        (i, "") => i.to_owned(),
        ("", s) => s.to_owned(),
        (i, s) => format!("{i}\n{s}"),
    });
    for entry in &entries {
        let file = match scripts {
            Some(map) => match map.get(&entry.name) {
                Some(file) => file.clone(),
                None => continue,
            },
            None => entry.name.clone(),
        };
        check_name("scripts", &file)?;
        let script = plan.bin.join(&file);
        let (spath, setup) = path_and_setup(utf8(&script)?, &path, plan.relative_to.as_deref())?;
        let text = console_script(
            &python,
            &spath,
            &setup,
            &script_init,
            entry,
            &plan.arguments,
        );
        wanted.insert(file, (text, false));
    }
    if let Some(map) = scripts {
        for (name, file) in map {
            if !entries.iter().any(|e| e.name == *name) {
                ctx.warn(&if name == file {
                    format!(
                        "could not generate script `{name}`: it is not defined in the egg \
                         entry points"
                    )
                } else {
                    format!(
                        "could not generate script `{file}`: script `{name}` is not defined \
                         in the egg entry points"
                    )
                });
            }
        }
    }
    if let Some(name) = &plan.interpreter {
        let script = plan.bin.join(name);
        let (spath, setup) = path_and_setup(utf8(&script)?, &path, plan.relative_to.as_deref())?;
        let text = interpreter_script(&python, &spath, &setup, &framed(&initialization));
        wanted.insert(name.clone(), (text, true));
    }
    write(ctx, &plan.bin, wanted)
}

/// The options zc.recipe.egg sets on its part, as outputs (`${part:bin-directory}`...),
/// each unless the part sets it itself.
fn publish_compat(options: &Options, ctx: &Context, python: &str, plan: &Plan) -> Result<()> {
    let root = ctx.buildout_directory();
    let from_buildout = |name: &str, default: &str| {
        let value = ctx
            .option("buildout", name)
            .unwrap_or_else(|| default.to_owned());
        root.join(value.trim()).display().to_string()
    };
    let eggs = from_buildout("eggs-directory", "eggs");
    let develop = from_buildout("develop-eggs-directory", "develop-eggs");
    let bin = plan.bin.display().to_string();
    let mut outputs = vec![
        ("eggs-directory", eggs.clone()),
        ("_e", eggs),
        ("develop-eggs-directory", develop.clone()),
        ("_d", develop),
        ("bin-directory", bin.clone()),
        ("_b", bin),
        ("executable", python.to_owned()),
    ];
    if let Some(root) = &plan.relative_to {
        outputs.push(("buildout-directory", root.clone()));
    }
    for (name, value) in outputs {
        if options.get(name).is_none() {
            ctx.publish(name, &value)?;
        }
    }
    Ok(())
}

/// Writes the scripts (each checked first: a refusal leaves nothing half done), executable.
fn write(ctx: &Context, bin: &Path, wanted: BTreeMap<String, (String, bool)>) -> Result<()> {
    fs::create_dir_all(bin)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", bin.display())))?;
    let targets = files::Targets::of(ctx);
    let checked = wanted
        .into_iter()
        .map(|(name, (text, interpreter))| {
            let path = targets.check_write(&bin.join(name), text.as_bytes())?;
            Ok((path, text, interpreter))
        })
        .collect::<Result<Vec<_>>>()?;
    for (path, text, interpreter) in checked {
        if files::write_if_changed(&path, text.as_bytes(), Some(0o755))? {
            let what = if interpreter { "interpreter" } else { "script" };
            ctx.info(&format!("generated {what} {}", path.display()));
        }
        ctx.register(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_and_path_helpers() {
        assert_eq!(py_repr("/a/b"), "'/a/b'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'\"\n\\"), r#"'a\'"\n\\'"#);
        assert_eq!(dirname("/a/b/c"), "/a/b");
        assert_eq!(dirname("/a"), "/");
        assert_eq!(dirname("/a/b/"), "/a/b");
        assert_eq!(common_prefix("/b/eggs/x", "/b/bin/s"), "/b/");
    }

    #[test]
    fn relative_entries_as_zc_buildout_writes_them() {
        let root = "/b";
        assert_eq!(relativize("/b", "/b/bin/s", root).unwrap(), "base");
        assert_eq!(
            relativize("/b/eggs/x", "/b/bin/s", root).unwrap(),
            "join(base, 'eggs/x')"
        );
        assert_eq!(
            relativize("/elsewhere/x", "/b/bin/s", root).unwrap(),
            "'/elsewhere/x'"
        );
        assert_eq!(depth(root, "/b/bin/s").unwrap(), 1);
        assert_eq!(depth(root, "/b/s").unwrap(), 0);
        assert!(depth(root, "/c/bin/s").is_err());
    }

    #[test]
    fn entry_points_parse_like_zc_recipe_egg() {
        let e = parse_entry_point_option("x=a.b:c.d").unwrap();
        assert_eq!(
            (e.name.as_str(), e.module.as_str(), e.attrs.as_str()),
            ("x", "a.b", "c.d")
        );
        for bad in ["x", "x=a", "x=a:", "=a:b", "x=a-b:c", "x=a:b()"] {
            assert!(parse_entry_point_option(bad).is_none(), "{bad}");
        }
        let found =
            console_scripts("[console_scripts]\na = m:f [x]\nbad = nope\n[gui_scripts]\ng = m:g\n");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].name.as_str(), found[0].attrs.as_str()),
            ("a", "f")
        );
    }
}
