//! `[section:condition]` headers of `.cfg` files: PEP 508 markers and zc.buildout's small
//! Python expressions (`linux`, `python3 and not windows`, `sys.platform == 'linux'`),
//! evaluated for this machine and its `python3`.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// Facts about this machine that conditions test; the Python ones are asked of `python3`
/// only when a condition needs them, and remembered across runs (see [`Interpreter`]).
#[derive(Debug, Default)]
pub struct Env {
    /// Whether a condition the native evaluator does not know is handed to `python3`. Off
    /// for the text-only entry points (`parse_cfg_str`, `load_str`, the fuzz targets): a
    /// Python condition can do anything Python can.
    python_conditions: bool,
}

impl Env {
    /// The environment of a real load: Python conditions are evaluated, as zc.buildout does.
    pub fn with_python() -> Env {
        Env {
            python_conditions: true,
        }
    }
}

/// The interpreter conditions are evaluated with: `buildout:python` when the command line
/// sets it (conditions are evaluated while files are read, before the config's own value is
/// known), else `python3`. Set once per process, before the first condition.
static INTERPRETER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the interpreter for conditions (a name on PATH or a path); the first call wins.
pub fn set_interpreter(python: &str) {
    let _ = INTERPRETER.set(python.to_owned());
}

fn interpreter() -> &'static str {
    INTERPRETER.get().map_or("python3", String::as_str)
}

/// The interpreter state shared by every [`Env`] of the process.
static PYTHON: Mutex<Option<Interpreter>> = Mutex::new(None);

/// The longest condition handed to Python; a longer one is reported with the native error.
const MAX_PYTHON_CONDITION: usize = 4096;

/// What the interpreter runs: it prints the facts (`name=value` lines, then a line `.`),
/// then evaluates each condition it reads on stdin in zc.buildout's namespace (the modules
/// `sys`, `os`, `platform`, `re` and its precomputed names), as zc.buildout does: the
/// expression wrapped in a list, evaluated, its first element taken. Each answer is one
/// line: `1`, `0`, or `E` with the exception.
const SERVER: &str = r#"import sys, os, platform, re, struct
i = sys.implementation
v = '%d.%d.%d' % i.version[:3]
if i.version.releaselevel != 'final':
    v += i.version.releaselevel[0] + str(i.version.serial)
for k, x in [('python_version', '.'.join(platform.python_version_tuple()[:2])),
             ('python_full_version', platform.python_version()),
             ('implementation_name', i.name), ('implementation_version', v),
             ('platform_python_implementation', platform.python_implementation()),
             ('sys_platform', sys.platform), ('os_name', os.name),
             ('platform_system', platform.system()), ('platform_machine', platform.machine()),
             ('platform_release', platform.release()), ('platform_version', platform.version()),
             ('sys_version', sys.version.replace('\n', ' ')), ('byteorder', sys.byteorder),
             ('bits', str(struct.calcsize('P') * 8))]:
    print(k + '=' + x)
print('.')
sys.stdout.flush()
major, minor = platform.python_version_tuple()[:2]
low, plat, bits = sys.version.lower(), sys.platform.lower(), struct.calcsize('P') * 8
names = {'sys': sys, 'os': os, 'platform': platform, 're': re,
         'python2': major == '2', 'python3': major == '3',
         'pypy': 'pypy' in low, 'jython': 'java' in low, 'ironpython': 'iron' in low,
         'linux': 'linux' in plat, 'windows': 'win32' in plat, 'cygwin': 'cygwin' in plat,
         'solaris': 'sunos' in plat, 'macosx': 'darwin' in plat,
         'posix': 'posix' in os.name.lower(), 'bits32': bits == 32, 'bits64': bits == 64,
         'little_endian': sys.byteorder == 'little', 'big_endian': sys.byteorder == 'big'}
names['cpython'] = not (names['pypy'] or names['jython'] or names['ironpython'])
for xy in ['24', '25', '26', '27'] + ['3%d' % n for n in range(20)]:
    names['python' + xy] = major + minor == xy
for line in sys.stdin:
    try:
        out = '1' if eval('[' + line.rstrip('\n') + ']', dict(names))[0] else '0'
    except Exception as e:
        out = 'E' + (type(e).__name__ + ': ' + str(e)).replace('\n', ' ')
    sys.stdout.write(out + '\n')
    sys.stdout.flush()
"#;

/// `python3`, started at most once per process, and what it said, cached on disk by the
/// interpreter's identity (its resolved path, size, mtime and inode): the facts, and the
/// results of conditions that depend only on the interpreter (not on `os`, files or the
/// environment). A run whose answers are all cached starts no interpreter.
struct Interpreter {
    /// The cache file, `None` when there is no cache folder or no `python3` on PATH.
    cache: Option<PathBuf>,
    facts: Option<HashMap<String, String>>,
    results: HashMap<String, bool>,
    process: Option<Result<Process, String>>,
}

struct Process {
    // Kept so that the interpreter lives as long as rbuildout; it exits at end of stdin.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Where the interpreter is (on PATH unless a path), resolved, and its identity for the cache's name.
fn python_identity() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let name = interpreter();
    let found = if name.contains('/') {
        PathBuf::from(name)
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())?
    };
    let real = std::fs::canonicalize(&found).ok()?;
    let m = std::fs::metadata(&real).ok()?;
    Some(format!(
        "{}\t{}\t{}\t{}\t{}",
        real.display(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino()
    ))
}

/// Whether a condition's result depends only on the interpreter: it names no module or
/// builtin that reads the file system, the environment or the clock (`os.name` is fine).
fn cacheable(expr: &str) -> bool {
    const VOLATILE: &[&str] = &[
        "os",
        "open",
        "eval",
        "exec",
        "input",
        "globals",
        "locals",
        "vars",
        "getattr",
        "__import__",
        "time",
        "random",
        "breakpoint",
        "compile",
    ];
    expr.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| *w != "os.name")
        .all(|w| !VOLATILE.contains(&w.split('.').next().unwrap_or("")))
        && !expr.contains("__")
}

impl Interpreter {
    fn load() -> Interpreter {
        let mut me = Interpreter {
            cache: None,
            facts: None,
            results: HashMap::new(),
            process: None,
        };
        let (Some(dir), Some(identity)) =
            (super::extends::default_download_cache(), python_identity())
        else {
            return me;
        };
        let name = format!("{:016x}.txt", fnv1a(identity.as_bytes()));
        let file = dir.join("python").join(name);
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            // The first line is the identity itself: a hash collision reads as a miss.
            if lines.next() == Some(identity.as_str()) {
                let mut facts = HashMap::new();
                for line in lines {
                    match line.split_once('\t') {
                        Some(("f", kv)) => {
                            if let Some((k, v)) = kv.split_once('=') {
                                facts.insert(k.to_owned(), v.to_owned());
                            }
                        }
                        Some(("1", e)) => {
                            me.results.insert(e.to_owned(), true);
                        }
                        Some(("0", e)) => {
                            me.results.insert(e.to_owned(), false);
                        }
                        _ => {}
                    }
                }
                if !facts.is_empty() {
                    me.facts = Some(facts);
                }
            }
        }
        me.cache = Some(file);
        me
    }

    /// Writes the cache (temp file + rename); a cache that cannot be written is only slower.
    fn save(&self) {
        let (Some(file), Some(identity)) = (&self.cache, python_identity()) else {
            return;
        };
        let mut text = identity;
        text.push('\n');
        for (k, v) in self.facts.iter().flatten() {
            text.push_str(&format!("f\t{k}={v}\n"));
        }
        for (e, r) in &self.results {
            text.push_str(&format!("{}\t{e}\n", if *r { 1 } else { 0 }));
        }
        let Some(dir) = file.parent() else { return };
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!("cannot write the python cache {}: {e}", file.display());
        }
    }

    fn process(&mut self) -> Result<&mut Process, String> {
        if self.process.is_none() {
            let started = start();
            if let Ok((_, facts)) = &started
                && self.facts.is_none()
            {
                self.facts = Some(facts.clone());
                self.save();
            }
            self.process = Some(started.map(|(p, _)| p));
        }
        match self.process.as_mut() {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => Err(e.clone()),
            None => Err("python3 could not be run".into()),
        }
    }

    fn facts(&mut self) -> Option<&HashMap<String, String>> {
        if self.facts.is_none() {
            let _ = self.process();
        }
        self.facts.as_ref()
    }

    /// Evaluates a condition in zc.buildout's namespace: `Ok(Err(message))` when Python
    /// raised, `Err` when Python could not be asked.
    fn eval(&mut self, expr: &str) -> Result<Result<bool, String>, String> {
        if let Some(r) = self.results.get(expr) {
            return Ok(Ok(*r));
        }
        let p = self.process()?;
        let lost = |e: std::io::Error| format!("python3 stopped answering: {e}");
        writeln!(p.stdin, "{expr}").map_err(lost)?;
        p.stdin.flush().map_err(lost)?;
        let mut answer = String::new();
        p.stdout.read_line(&mut answer).map_err(lost)?;
        let answer = answer.trim_end();
        let r = match answer {
            "1" => Ok(true),
            "0" => Ok(false),
            "" => return Err("python3 stopped answering".into()),
            other => Err(other.strip_prefix('E').unwrap_or(other).to_owned()),
        };
        if let Ok(v) = r
            && cacheable(expr)
        {
            self.results.insert(expr.to_owned(), v);
            self.save();
        }
        Ok(r)
    }
}

/// Starts the interpreter and reads the facts it prints first.
fn start() -> Result<(Process, HashMap<String, String>), String> {
    let mut child = Command::new(interpreter())
        .arg("-c")
        .arg(SERVER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("python3 could not be run: {e}"))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("python3 could not be run: no pipes".into());
    };
    let mut stdout = BufReader::new(stdout);
    let mut facts = HashMap::new();
    loop {
        let mut line = String::new();
        match stdout.read_line(&mut line) {
            Ok(0) | Err(_) => return Err("python3 could not be run: it printed no facts".into()),
            Ok(_) => {}
        }
        let line = line.trim_end_matches('\n');
        if line == "." {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            facts.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok((
        Process {
            _child: child,
            stdin,
            stdout,
        },
        facts,
    ))
}

/// A stable 64-bit FNV-1a hash, naming the cache file after the interpreter's identity.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn with_python<T>(f: impl FnOnce(&mut Interpreter) -> T) -> T {
    let mut guard = PYTHON
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard.get_or_insert_with(Interpreter::load))
}

impl Env {
    fn py(&self, key: &str) -> Result<String, String> {
        with_python(|p| p.facts().and_then(|m| m.get(key).cloned()))
            .ok_or_else(|| format!("cannot evaluate `{key}`: python3 could not be run"))
    }

    /// A value known without Python, from how rbuildout was compiled.
    fn native(&self, key: &str) -> Option<String> {
        let os = std::env::consts::OS;
        Some(match key {
            "sys_platform" => match os {
                "macos" => "darwin".into(),
                "windows" => "win32".into(),
                o => o.into(),
            },
            "os_name" => if cfg!(windows) { "nt" } else { "posix" }.into(),
            "platform_system" => match os {
                "linux" => "Linux".into(),
                "macos" => "Darwin".into(),
                "windows" => "Windows".into(),
                "freebsd" => "FreeBSD".into(),
                o => o.into(),
            },
            "byteorder" => if cfg!(target_endian = "little") {
                "little"
            } else {
                "big"
            }
            .into(),
            "bits" => (usize::BITS).to_string(),
            _ => return None,
        })
    }

    fn fact(&self, key: &str) -> Result<String, String> {
        match self.native(key) {
            Some(v) => Ok(v),
            None => self.py(key),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Bool(bool),
    Str(String),
    Int(i64),
    Seq(Vec<Val>),
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Bool(b) => *b,
            Val::Str(s) => !s.is_empty(),
            Val::Int(i) => *i != 0,
            Val::Seq(v) => !v.is_empty(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    Op(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut j = i + 1;
            let mut text = String::new();
            while j < cs.len() && cs[j] != c {
                text.push(cs[j]);
                j += 1;
            }
            if j >= cs.len() {
                return Err("unterminated string".into());
            }
            out.push(Tok::Str(text));
            i = j + 1;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < cs.len() && cs[j].is_ascii_digit() {
                j += 1;
            }
            let n: String = cs[i..j].iter().collect();
            out.push(Tok::Int(
                n.parse().map_err(|_| format!("bad number `{n}`"))?,
            ));
            i = j;
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < cs.len() && (cs[j].is_alphanumeric() || cs[j] == '_' || cs[j] == '.') {
                j += 1;
            }
            let mut name: String = cs[i..j].iter().collect();
            if j + 1 < cs.len() && cs[j] == '(' && cs[j + 1] == ')' {
                name.push_str("()");
                j += 2;
            }
            out.push(Tok::Name(name));
            i = j;
        } else {
            let two: String = cs[i..(i + 3).min(cs.len())].iter().collect();
            let op = [
                "===", "==", "!=", "<=", ">=", "~=", "<", ">", "(", ")", "[", "]", ",",
            ]
            .into_iter()
            .find(|o| two.starts_with(o))
            .ok_or_else(|| format!("unexpected character `{c}`"))?;
            out.push(Tok::Op(op));
            i += op.chars().count();
        }
    }
    Ok(out)
}

/// Marker variables of PEP 508; a condition naming one is evaluated as a marker.
const MARKER_VARS: &[&str] = &[
    "python_version",
    "python_full_version",
    "os_name",
    "sys_platform",
    "platform_release",
    "platform_system",
    "platform_version",
    "platform_machine",
    "platform_python_implementation",
    "implementation_name",
    "implementation_version",
    "extra",
];

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    env: &'a Env,
    marker: bool,
    /// Nesting of parentheses, lists and `not`, bounded so no input overflows the stack.
    depth: usize,
}

/// How deeply a condition may nest; real ones nest a few levels.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat_name(&mut self, n: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Name(x)) if x == n) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_op(&mut self, o: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(x)) if *x == o) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Val, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("the condition is nested too deeply".into());
        }
        let v = self.or_inner();
        self.depth -= 1;
        v
    }

    fn or_inner(&mut self) -> Result<Val, String> {
        let mut v = self.and()?;
        while self.eat_name("or") {
            let r = self.and()?;
            v = if v.truthy() { v } else { r };
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<Val, String> {
        let mut v = self.not()?;
        while self.eat_name("and") {
            let r = self.not()?;
            v = if v.truthy() { r } else { v };
        }
        Ok(v)
    }

    fn not(&mut self) -> Result<Val, String> {
        if self.eat_name("not") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err("the condition is nested too deeply".into());
            }
            let v = self.not();
            self.depth -= 1;
            return Ok(Val::Bool(!v?.truthy()));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Val, String> {
        let (lhs, lvar) = self.atom()?;
        let op = match self.peek() {
            Some(Tok::Op(o)) if ["===", "==", "!=", "<=", ">=", "~=", "<", ">"].contains(o) => {
                let o = *o;
                self.pos += 1;
                o
            }
            Some(Tok::Name(n)) if n == "in" => {
                self.pos += 1;
                "in"
            }
            Some(Tok::Name(n)) if n == "not" => {
                self.pos += 1;
                if !self.eat_name("in") {
                    return Err("expected `in` after `not`".into());
                }
                "not in"
            }
            _ => return Ok(lhs),
        };
        let (rhs, rvar) = self.atom()?;
        let version = self.marker
            && [lvar.as_deref(), rvar.as_deref()]
                .iter()
                .flatten()
                .any(|v| v.ends_with("_version") && *v != "platform_version");
        compare(&lhs, op, &rhs, version).map(Val::Bool)
    }

    /// One operand, and the marker variable it named if any.
    fn atom(&mut self) -> Result<(Val, Option<String>), String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok((Val::Str(s), None))
            }
            Some(Tok::Int(i)) => {
                self.pos += 1;
                Ok((Val::Int(i), None))
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let mut items = vec![self.or()?];
                let mut tuple = false;
                while self.eat_op(",") {
                    tuple = true;
                    if matches!(self.peek(), Some(Tok::Op(")"))) {
                        break;
                    }
                    items.push(self.or()?);
                }
                if !self.eat_op(")") {
                    return Err("expected `)`".into());
                }
                Ok((
                    if tuple {
                        Val::Seq(items)
                    } else {
                        items.remove(0)
                    },
                    None,
                ))
            }
            Some(Tok::Op("[")) => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.eat_op("]") {
                    items.push(self.or()?);
                    if !self.eat_op(",") && !matches!(self.peek(), Some(Tok::Op("]"))) {
                        return Err("expected `,` or `]`".into());
                    }
                }
                Ok((Val::Seq(items), None))
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                let var = MARKER_VARS.contains(&n.as_str()).then(|| n.clone());
                Ok((self.name(&n)?, var))
            }
            Some(t) => Err(format!("unexpected `{t:?}`")),
            None => Err("unexpected end of condition".into()),
        }
    }

    fn name(&self, n: &str) -> Result<Val, String> {
        let env = self.env;
        if MARKER_VARS.contains(&n) {
            if n == "extra" {
                return Ok(Val::Str(String::new()));
            }
            return env.fact(n).map(Val::Str);
        }
        let platform = || env.fact("sys_platform");
        let b = Val::Bool;
        Ok(match n {
            "True" => b(true),
            "False" => b(false),
            "linux" => b(platform()?.contains("linux")),
            "windows" => b(platform()?.contains("win32")),
            "cygwin" => b(platform()?.contains("cygwin")),
            "solaris" => b(platform()?.contains("sunos")),
            "macosx" => b(platform()?.contains("darwin")),
            "posix" => b(env.fact("os_name")? == "posix"),
            "bits32" => b(env.fact("bits")? == "32"),
            "bits64" => b(env.fact("bits")? == "64"),
            "little_endian" => b(env.fact("byteorder")? == "little"),
            "big_endian" => b(env.fact("byteorder")? == "big"),
            "cpython" | "pypy" | "jython" | "ironpython" => {
                let v = env.py("sys_version")?.to_lowercase();
                let (pypy, jy, iron) = (v.contains("pypy"), v.contains("java"), v.contains("iron"));
                b(match n {
                    "pypy" => pypy,
                    "jython" => jy,
                    "ironpython" => iron,
                    _ => !(pypy || jy || iron),
                })
            }
            "sys.platform" => Val::Str(platform()?),
            "sys.byteorder" => Val::Str(env.fact("byteorder")?),
            "sys.version" => Val::Str(env.py("sys_version")?),
            "os.name" => Val::Str(env.fact("os_name")?),
            "platform.system()" => Val::Str(env.fact("platform_system")?),
            "platform.machine()" => Val::Str(env.fact("platform_machine")?),
            "platform.release()" => Val::Str(env.fact("platform_release")?),
            "platform.python_version()" => Val::Str(env.py("python_full_version")?),
            "platform.python_implementation()" => {
                Val::Str(env.py("platform_python_implementation")?)
            }
            _ => {
                if let Some(v) = n
                    .strip_prefix("python")
                    .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
                {
                    let full = env.py("python_version")?;
                    let digits: String = full.chars().filter(char::is_ascii_digit).collect();
                    return Ok(b(if v.len() == 1 {
                        full.split('.').next() == Some(v)
                    } else {
                        digits == v
                    }));
                }
                return Err(format!("unknown name `{n}`"));
            }
        })
    }
}

fn compare(l: &Val, op: &str, r: &Val, version: bool) -> Result<bool, String> {
    use std::cmp::Ordering;
    if op == "in" || op == "not in" {
        let found = match (l, r) {
            (Val::Str(a), Val::Str(b)) => b.contains(a.as_str()),
            (a, Val::Seq(items)) => items.contains(a),
            _ => return Err("`in` needs a string or a list on its right".into()),
        };
        return Ok(found == (op == "in"));
    }
    let ord = match (l, r) {
        (Val::Str(a), Val::Str(b)) if version => version_cmp(a, b),
        (Val::Str(a), Val::Str(b)) => a.cmp(b),
        (Val::Int(a), Val::Int(b)) => a.cmp(b),
        (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
        (a, b) if op == "==" => return Ok(a == b),
        (a, b) if op == "!=" => return Ok(a != b),
        _ => return Err("cannot compare these values".into()),
    };
    Ok(match op {
        "==" | "===" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        ">=" => ord != Ordering::Less,
        // `~=` on a version: at least that version, within the same release series.
        "~=" => {
            let prefix: Vec<&str> = match (l, r) {
                (_, Val::Str(b)) => b.split('.').collect(),
                _ => return Err("`~=` needs a version".into()),
            };
            let series = prefix[..prefix.len().saturating_sub(1).max(1)].join(".");
            ord != Ordering::Less
                && matches!(l, Val::Str(a) if version_cmp(&trunc(a, series.split('.').count()), &series) == Ordering::Equal)
        }
        _ => return Err(format!("unknown operator `{op}`")),
    })
}

fn trunc(v: &str, n: usize) -> String {
    v.split('.').take(n).collect::<Vec<_>>().join(".")
}

/// Compares release numbers the way PEP 440 does for plain `X.Y.Z` versions (missing parts
/// count as zero); anything after the digits of a part compares as text.
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.split('.')
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                (digits.parse().unwrap_or(0), p[digits.len()..].to_owned())
            })
            .collect()
    };
    let (mut pa, mut pb) = (parts(a), parts(b));
    let n = pa.len().max(pb.len());
    pa.resize(n, (0, String::new()));
    pb.resize(n, (0, String::new()));
    pa.cmp(&pb)
}

/// Evaluates a section condition (already un-escaped). `Err` says why it cannot be.
///
/// The common names and PEP 508 markers are evaluated natively; anything else (e.g.
/// `sys.version_info < (3,10)`, `os.path.isdir('/x')`) is handed to `python3`, as
/// zc.buildout evaluates it. A name Python does not know either, or a syntax error, is
/// reported with the native message.
pub fn evaluate(expr: &str, env: &Env) -> Result<bool, String> {
    let native = evaluate_native(expr, env);
    let Err(why) = native else { return native };
    if !env.python_conditions
        || why.contains("nested too deeply")
        || expr.len() > MAX_PYTHON_CONDITION
        || expr.contains('\n')
    {
        return Err(why);
    }
    match with_python(|p| p.eval(expr)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(raised)) if raised.starts_with("NameError") || raised.starts_with("SyntaxError") => {
            Err(why)
        }
        Ok(Err(raised)) => Err(format!("python3 raised {raised}")),
        Err(e) => Err(format!("{why}; {e}")),
    }
}

fn evaluate_native(expr: &str, env: &Env) -> Result<bool, String> {
    let toks = tokenize(expr)?;
    let marker = toks
        .iter()
        .any(|t| matches!(t, Tok::Name(n) if MARKER_VARS.contains(&n.as_str())));
    let mut p = Parser {
        toks,
        pos: 0,
        env,
        marker,
        depth: 0,
    };
    let v = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!(
            "unexpected `{:?}` after the condition",
            p.toks[p.pos]
        ));
    }
    Ok(v.truthy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildout_names_and_markers() {
        let env = Env::default();
        let linux = cfg!(target_os = "linux");
        assert_eq!(evaluate("linux", &env), Ok(linux));
        assert_eq!(
            evaluate("not linux and posix", &env),
            Ok(!linux && cfg!(unix))
        );
        assert_eq!(evaluate("sys.platform == 'linux'", &env), Ok(linux));
        assert_eq!(evaluate("sys_platform == \"linux\"", &env), Ok(linux));
        assert_eq!(evaluate("os.name in ('posix', 'nt')", &env), Ok(true));
        assert!(
            evaluate("nosuchname", &env)
                .unwrap_err()
                .contains("nosuchname")
        );
        assert!(evaluate("linux ==", &env).is_err());
        assert_eq!(version_cmp("3.10", "3.9"), std::cmp::Ordering::Greater);
        let deep = format!("{}linux{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(
            evaluate(&deep, &env)
                .unwrap_err()
                .contains("nested too deeply")
        );
        assert!(evaluate(&"not ".repeat(100_000), &env).is_err());
        assert_eq!(evaluate("((linux))", &env), Ok(linux));
    }

    #[test]
    fn only_conditions_on_the_interpreter_are_cached() {
        assert!(cacheable("sys.version_info < (3,10)"));
        assert!(cacheable(
            "os.name == 'posix' and platform.machine() == 'x86_64'"
        ));
        assert!(cacheable("re.match('l', sys.platform)"));
        assert!(!cacheable("os.path.isdir('/x')"));
        assert!(!cacheable("os.environ.get('X')"));
        assert!(!cacheable("open('/etc/x').read()"));
        assert!(!cacheable("sys.modules['os'].getcwd()  # __class__"));
    }
}
