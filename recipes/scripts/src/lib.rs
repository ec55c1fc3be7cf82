//! The `scripts` recipe (SPEC §5.2): Python console scripts and an interpreter script for
//! the distributions found in a set of sys.path folders, as zc.recipe.egg writes them.
//!
//! ```toml
//! [scripts]
//! recipe = "scripts"
//! paths = "${eggs:paths}"          # sys.path folders, one per line
//! eggs = ["mypkg"]                 # whose console_scripts; default: the requested ones
//! scripts = ["mycmd", "other=renamed"]   # absent: all; empty: none
//! entry-points = ["extra=mypkg.cli:other"]
//! interpreter = "py"
//! initialization = "import os; os.environ['X'] = '1'"
//! arguments = "'arg', 2"
//! relative-paths = true
//! ```
//!
//! Decisions (which distributions by default, the interpreter's emulation of `python`,
//! relative paths) are in `docs/scripts.md`.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use pep508_rs::PackageName;
use rbuildout_plugin_api::files::{self, normalize, relative};
use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};

/// One script to write: its file name and what it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    module: String,
    attrs: String,
}

/// A distribution found in a folder of `paths`.
#[derive(Debug)]
struct Distribution {
    /// Normalised (PEP 503) name.
    name: String,
    /// Whether its metadata has a `REQUESTED` file: installed because it was asked for,
    /// not as a dependency.
    requested: bool,
    /// Its `console_scripts`, by name.
    console_scripts: BTreeMap<String, Entry>,
}

/// The PEP 503 normalised name (`pep508_rs::PackageName`), or `None` when `name` is not a
/// valid distribution name (so it names no distribution).
fn normalize_name(name: &str) -> Option<String> {
    // `PackageName` takes the empty string; no distribution is named so.
    (!name.is_empty())
        .then(|| name.parse::<PackageName>().ok())
        .flatten()
        .map(|n| n.to_string())
}

/// The distribution name a requirement line (`name[extra]>=1; marker`) is about.
fn requirement_name(requirement: &str) -> &str {
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    &requirement[..end]
}

fn is_dotted_name(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// Parses `module:attrs [extras]` (an entry point's value).
fn parse_entry(value: &str) -> Option<Entry> {
    let value = value.split('[').next().unwrap_or("").trim();
    let (module, attrs) = value.split_once(':')?;
    let (module, attrs) = (module.trim(), attrs.trim());
    (is_dotted_name(module) && is_dotted_name(attrs)).then(|| Entry {
        module: module.to_owned(),
        attrs: attrs.to_owned(),
    })
}

/// The `[console_scripts]` of an `entry_points.txt`; malformed lines are skipped, as
/// importlib.metadata skips them.
fn console_scripts(text: &str) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = section.trim() == "console_scripts";
            continue;
        }
        if !in_section {
            continue;
        }
        let parsed = line
            .split_once('=')
            .and_then(|(name, value)| Some((name.trim(), parse_entry(value)?)));
        if let Some((name, entry)) = parsed {
            out.insert(name.to_owned(), entry);
        }
    }
    out
}

/// The distributions in one sys.path folder, sorted by metadata folder name: `*.dist-info`,
/// `*.egg-info`, or the folder's own `EGG-INFO` (an unpacked `.egg`).
fn distributions_in(folder: &Path) -> Vec<Distribution> {
    let mut metadata: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir(folder) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".dist-info")
                .or_else(|| name.strip_suffix(".egg-info"));
            if let Some(stem) = stem {
                metadata.push((stem.to_owned(), entry.path()));
            }
        }
    }
    let egg_info = folder.join("EGG-INFO");
    if egg_info.is_dir() {
        let stem = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        metadata.push((stem, egg_info));
    }
    metadata.sort();
    metadata
        .into_iter()
        .filter_map(|(stem, dir)| {
            // `name-version…`: wheel and egg names escape `-` inside the name as `_`. A
            // folder whose name is no distribution name is no distribution.
            let name = normalize_name(stem.split('-').next().unwrap_or(&stem))?;
            Some(Distribution {
                name,
                requested: dir.join("REQUESTED").exists(),
                console_scripts: fs::read_to_string(dir.join("entry_points.txt"))
                    .map(|t| console_scripts(&t))
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Splits an option into `a=b` items: one per line, and within a line by whitespace, with
/// spaces around `=` allowed (`a = b`).
fn assignments(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut glue = false;
        for token in line.split_whitespace() {
            match out.last_mut() {
                Some(last) if glue || token.starts_with('=') => last.push_str(token),
                _ => out.push(token.to_owned()),
            }
            glue = token.ends_with('=');
        }
    }
    out
}

fn check_script_name(option: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('-');
    if bad {
        return Err(Error::new(format!(
            "option `{option}`: `{name}` is not a usable script name (no path separators)"
        )));
    }
    Ok(())
}

/// `text` as a Python string literal.
fn py_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `text` quoted for a POSIX shell.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `text` with the indentation common to its non-blank lines removed, and trailing blank
/// lines dropped.
fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect();
    let start = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(start, |e| e + 1);
    lines[start..end].join("\n")
}

/// One sys.path entry as the script computes it.
enum PathEntry {
    Absolute(String),
    /// Relative to the folder holding the script (after resolving symlinks).
    Relative(String),
}

/// Everything the part's options say, checked.
struct Plan {
    python: String,
    bin: PathBuf,
    paths: Vec<PathEntry>,
    initialization: String,
    arguments: String,
    /// Script file name → entry point, in name order.
    scripts: BTreeMap<String, Entry>,
    interpreter: Option<String>,
}

fn utf8<'p>(path: &'p Path, what: &str) -> Result<&'p str> {
    path.to_str().ok_or_else(|| {
        Error::new(format!(
            "{what} {} is not valid UTF-8 and cannot go into a script",
            path.display()
        ))
    })
}

/// The interpreter for the `#!` line: the part's `python`, else `buildout:python`, else
/// `python3`; a name without `/` is looked up on PATH (or, as in zc.buildout, names a
/// section whose `executable` is the interpreter).
fn find_python(options: &Options, ctx: &Context) -> Result<String> {
    let configured = options
        .get("python")
        .map(str::to_owned)
        .unwrap_or_else(|| ctx.buildout().python());
    let mut name = configured.trim().to_owned();
    let section_executable = (!name.contains('/'))
        .then(|| ctx.option(&name, "executable"))
        .flatten();
    if let Some(executable) = section_executable {
        name = executable.trim().to_owned();
    }
    if name.contains('/') {
        let path = normalize(&ctx.buildout_directory().join(&name));
        return utf8(&path, "the python").map(str::to_owned);
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&search) {
        let candidate = dir.join(&name);
        let executable = fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable && candidate.is_absolute() {
            return utf8(&candidate, "the python").map(str::to_owned);
        }
    }
    Err(Error::new(format!(
        "option `python`: `{name}` is not found on PATH (set `python` to the interpreter's path)"
    )))
}

/// The folder the scripts go to.
fn bin_directory(options: &Options, ctx: &Context) -> PathBuf {
    options
        .get_path("bin-directory")
        .unwrap_or_else(|| ctx.buildout().bin_directory())
}

impl Plan {
    fn read(options: &Options, ctx: &Context) -> Result<Plan> {
        let root = ctx.buildout_directory();
        let folders: Vec<PathBuf> = options
            .get_list("paths")
            .into_iter()
            .chain(options.get_list("extra-paths"))
            .map(|p| normalize(&root.join(p)))
            .fold(Vec::new(), |mut seen, p| {
                if !seen.contains(&p) {
                    seen.push(p);
                }
                seen
            });
        let distributions: Vec<Distribution> = options
            .get_list("paths")
            .into_iter()
            .flat_map(|p| distributions_in(&root.join(p)))
            .collect();

        // Whose console scripts: `eggs`, else the requested ones, else all.
        let wanted: Vec<&Distribution> = match options.get("eggs") {
            Some(_) => {
                let mut wanted = Vec::new();
                for requirement in options.get_list("eggs") {
                    let name = normalize_name(requirement_name(requirement));
                    let found: Vec<&Distribution> = distributions
                        .iter()
                        .filter(|d| Some(&d.name) == name.as_ref())
                        .collect();
                    if found.is_empty() {
                        return Err(Error::new(format!(
                            "option `eggs`: `{requirement}` is not installed in any folder of \
                             `paths`"
                        )));
                    }
                    wanted.extend(found);
                }
                wanted
            }
            None if distributions.iter().any(|d| d.requested) => {
                distributions.iter().filter(|d| d.requested).collect()
            }
            None => distributions.iter().collect(),
        };
        let mut available: BTreeMap<String, Entry> = BTreeMap::new();
        for distribution in wanted {
            for (name, entry) in &distribution.console_scripts {
                // The first distribution in sys.path order wins, as it would at import.
                available
                    .entry(name.clone())
                    .or_insert_with(|| entry.clone());
            }
        }
        for item in assignments(options.get("entry-points").unwrap_or("")) {
            let parsed = item
                .split_once('=')
                .and_then(|(name, value)| Some((name.trim(), parse_entry(value)?)));
            let Some((name, entry)) = parsed else {
                return Err(Error::new(format!(
                    "option `entry-points`: `{item}` must be `name=module:attribute`"
                )));
            };
            check_script_name("entry-points", name)?;
            available.insert(name.to_owned(), entry);
        }

        let scripts = match options.get("scripts") {
            None => available,
            Some(text) => {
                let mut chosen = BTreeMap::new();
                for item in assignments(text) {
                    let (name, file) = match item.split_once('=') {
                        Some((name, file)) => (name.trim(), file.trim()),
                        None => (item.as_str(), item.as_str()),
                    };
                    check_script_name("scripts", file)?;
                    match available.get(name) {
                        Some(entry) => {
                            chosen.insert(file.to_owned(), entry.clone());
                        }
                        None => ctx.warn(&format!(
                            "could not generate script `{name}`: it is not a console script \
                             of the eggs nor in `entry-points`"
                        )),
                    }
                }
                chosen
            }
        };
        let interpreter = options
            .get("interpreter")
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned);
        if let Some(name) = &interpreter {
            check_script_name("interpreter", name)?;
        }

        // Checked before anything is created in it: inside the instance or an allowed folder.
        let bin = files::Targets::of(ctx).allowed(&bin_directory(options, ctx))?;
        let relative_paths = match options.get("relative-paths") {
            Some(_) => options.get_bool("relative-paths", false)?,
            None => ctx.buildout().relative_paths(),
        };
        let paths = if relative_paths {
            fs::create_dir_all(&bin)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", bin.display())))?;
            let anchor = ctx.buildout().instance_directory();
            let real = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            let (anchor, real_bin) = (real(&anchor), real(&bin));
            folders
                .iter()
                .map(|folder| {
                    let folder = real(folder);
                    if folder.starts_with(&anchor) && real_bin.starts_with(&anchor) {
                        let rel = relative(&real_bin, &folder);
                        utf8(&rel, "the path").map(|s| PathEntry::Relative(s.to_owned()))
                    } else {
                        utf8(&folder, "the path").map(|s| PathEntry::Absolute(s.to_owned()))
                    }
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            folders
                .iter()
                .map(|f| utf8(f, "the path").map(|s| PathEntry::Absolute(s.to_owned())))
                .collect::<Result<Vec<_>>>()?
        };

        Ok(Plan {
            python: find_python(options, ctx)?,
            bin,
            paths,
            initialization: dedent(options.get("initialization").unwrap_or("")),
            arguments: options.get("arguments").unwrap_or("").trim().to_owned(),
            scripts,
            interpreter,
        })
    }

    /// The `#!` line(s): the interpreter directly, or through `/bin/sh` when its path has
    /// spaces or is too long for the kernel's `#!` limit (the trick pip's launchers use).
    fn shebang(&self) -> String {
        let direct = format!("#!{}\n", self.python);
        if direct.len() <= 127 && !self.python.contains([' ', '\t']) {
            return direct;
        }
        format!(
            "#!/bin/sh\n'''exec' {} \"$0\" \"$@\"\n' '''\n",
            sh_quote(&self.python)
        )
    }

    /// The header every script shares: `#!`, imports, the sys.path setup and the
    /// `initialization` code.
    fn header(&self, interpreter: bool) -> String {
        let mut out = self.shebang();
        out.push_str("# Generated by rbuildout (recipe `scripts`): edits are overwritten.\n\n");
        let relative = self
            .paths
            .iter()
            .any(|p| matches!(p, PathEntry::Relative(_)));
        if relative || interpreter {
            out.push_str("import os\n");
        }
        out.push_str("import sys\n\n");
        if relative {
            out.push_str("base = os.path.dirname(os.path.realpath(__file__))\n\n\n");
            out.push_str("def _rel(path):\n");
            out.push_str("    return os.path.normpath(os.path.join(base, path))\n\n\n");
        }
        if interpreter {
            // Python put this script's folder first on sys.path; the interpreter puts
            // what `python` would instead, once it knows what it runs.
            out.push_str("if sys.path and sys.path[0] and os.path.realpath(sys.path[0]) == ");
            out.push_str("os.path.dirname(os.path.realpath(__file__)):\n");
            out.push_str("    del sys.path[0]\n");
        }
        out.push_str("sys.path[0:0] = [\n");
        for path in &self.paths {
            match path {
                PathEntry::Absolute(p) => out.push_str(&format!("  {},\n", py_str(p))),
                PathEntry::Relative(p) => out.push_str(&format!("  _rel({}),\n", py_str(p))),
            }
        }
        out.push_str("  ]\n");
        if !self.initialization.is_empty() {
            out.push('\n');
            out.push_str(&self.initialization);
            out.push('\n');
        }
        out
    }

    fn console_script(&self, entry: &Entry) -> String {
        let mut out = self.header(false);
        out.push_str(&format!("\nimport {}\n\n", entry.module));
        out.push_str("if __name__ == '__main__':\n");
        out.push_str(&format!(
            "    sys.exit({}.{}({}))\n",
            entry.module, entry.attrs, self.arguments
        ));
        out
    }

    fn interpreter_script(&self) -> String {
        let mut out = self.header(true);
        out.push('\n');
        out.push_str(INTERPRETER);
        out
    }

    /// Every file to write, by name.
    fn files(&self) -> BTreeMap<String, String> {
        let mut files: BTreeMap<String, String> = self
            .scripts
            .iter()
            .map(|(name, entry)| (name.clone(), self.console_script(entry)))
            .collect();
        if let Some(name) = &self.interpreter {
            files.insert(name.clone(), self.interpreter_script());
        }
        files
    }
}

/// The part of the interpreter script that acts like `python`: `-c`, `-m`, a file, `-`
/// or piped stdin, interactive on a terminal, and `-i`.
const INTERPRETER: &str = r#"
def _python(args):
    import code
    import runpy
    import types

    def main_namespace(first):
        sys.path.insert(0, first)
        module = types.ModuleType('__main__')
        sys.modules['__main__'] = module
        return module.__dict__

    interactive = False
    command = module = None
    # Short flags as python reads them: clustered (`-ic CODE`), and `-c`/`-m` take the rest
    # of their word or the next one, ending the options.
    while command is None and module is None and args and args[0].startswith('-') \
            and args[0] != '-':
        word = args.pop(0)
        if word == '--':
            break
        for i, flag in enumerate(word[1:], 2):
            if flag in 'cm':
                value = word[i:] or (args.pop(0) if args else None)
                if value is None:
                    sys.stderr.write('Argument expected for the -%s option\n' % flag)
                    sys.exit(2)
                if flag == 'c':
                    command = value
                else:
                    module = value
                break
            elif flag == 'i':
                interactive = True
            elif flag == 'u':
                sys.stdout.reconfigure(write_through=True)
                sys.stderr.reconfigure(write_through=True)
            elif flag == 'B':
                sys.dont_write_bytecode = True
            elif flag != 'q':
                sys.stderr.write(
                    'Unknown option: -%s (this interpreter takes -c, -m, -i, -u, -B, -q)\n'
                    % flag)
                sys.exit(2)
    if command is not None:
        sys.argv[:] = ['-c'] + args
        namespace = main_namespace('')
        exec(compile(command, '<string>', 'exec'), namespace)
    elif module is not None:
        sys.argv[:] = [module] + args
        sys.path.insert(0, os.getcwd())
        namespace = runpy.run_module(module, run_name='__main__', alter_sys=True)
    elif args and args[0] != '-':
        sys.argv[:] = args
        sys.path.insert(0, os.path.dirname(os.path.realpath(args[0])))
        namespace = runpy.run_path(args[0], run_name='__main__')
    else:
        sys.argv[:] = args or ['']
        namespace = main_namespace('')
        if sys.stdin.isatty():
            interactive = True
        else:
            exec(compile(sys.stdin.read(), '<stdin>', 'exec'), namespace)
    if interactive:
        code.interact(banner='', local=namespace, exitmsg='')


_python(sys.argv[1:])
"#;

fn generate(options: &Options, ctx: &Context) -> Result<()> {
    let plan = Plan::read(options, ctx)?;
    fs::create_dir_all(&plan.bin)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", plan.bin.display())))?;
    // Every script is checked before any is written: a refusal leaves nothing half done. A
    // script that already holds the same text is no loss to replace: what a run killed
    // after writing some of them, before the state was saved, leaves.
    let targets = files::Targets::of(ctx);
    let scripts = plan
        .files()
        .into_iter()
        .map(|(name, text)| {
            Ok((
                targets.check_write(&plan.bin.join(name), text.as_bytes())?,
                text,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut generated = Vec::new();
    for (path, text) in scripts {
        if files::write_if_changed(&path, text.as_bytes(), Some(0o755))? {
            ctx.info(&format!("generated script {}", path.display()));
        }
        ctx.register(&path)?;
        generated.push(path.display().to_string());
    }
    ctx.publish(GENERATED, &generated.join("\n"))
}

/// The output listing the scripts written (absolute paths, one per line).
const GENERATED: &str = "generated";

pub struct Scripts;

impl Recipe for Scripts {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        generate(options, ctx)
    }

    /// As zc.recipe.egg: the same as install, which rewrites only what changed (the
    /// distributions in `paths` may have new entry points under the same folders).
    fn update(options: &Options, ctx: &Context) -> Result<()> {
        generate(options, ctx)
    }
}

export_plugin! {
    name: "scripts",
    version: env!("CARGO_PKG_VERSION"),
    recipes: { "default" => Scripts },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_entries() {
        assert_eq!(normalize_name("My_Pkg..x").as_deref(), Some("my-pkg-x"));
        assert_eq!(normalize_name(""), None);
        assert_eq!(
            requirement_name("my.pkg[extra]>=1.0; python_version>'3'"),
            "my.pkg"
        );
        assert_eq!(
            parse_entry(" pkg.cli:main.run [extra]"),
            Some(Entry {
                module: "pkg.cli".into(),
                attrs: "main.run".into()
            })
        );
        assert_eq!(parse_entry("pkg.cli"), None);
        assert_eq!(parse_entry("pkg/x:main"), None);
        let parsed = console_scripts(
            "[gui_scripts]\ng = a:b\n\n[console_scripts]\n# c\nx = pkg:main\nbad = nope\n",
        );
        assert_eq!(parsed.keys().collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn assignments_allow_spaces_around_equals() {
        assert_eq!(
            assignments("a b=c d = e\nf =\ng"),
            ["a", "b=c", "d=e", "f=", "g"]
        );
    }

    #[test]
    fn literals_and_dedent() {
        assert_eq!(py_str("a'b\\c\nd"), r"'a\'b\\c\nd'");
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(dedent("\n    x = 1\n      y\n\n"), "x = 1\n  y");
    }
}
