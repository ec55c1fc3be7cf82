//! `[section:condition]` headers of `.cfg` files: PEP 508 markers and zc.buildout's small
//! Python expressions (`linux`, `python3 and not windows`, `sys.platform == 'linux'`),
//! evaluated for this machine and its `python3`.

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;

/// Facts about this machine that conditions test; the Python ones are asked of `python3`
/// once per process, only when a condition needs them.
#[derive(Debug, Default)]
pub struct Env {}

/// The answers of the Python probe, shared by every [`Env`] of the process.
static PYTHON: OnceLock<Option<HashMap<String, String>>> = OnceLock::new();

/// What the probe asks `python3`, one `name=value` per line.
const PROBE: &str = r#"import sys, os, platform, struct
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
"#;

impl Env {
    fn python(&self) -> Option<&'static HashMap<String, String>> {
        PYTHON
            .get_or_init(|| {
                let out = Command::new("python3").arg("-c").arg(PROBE).output().ok()?;
                if !out.status.success() {
                    return None;
                }
                let text = String::from_utf8_lossy(&out.stdout);
                Some(
                    text.lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                )
            })
            .as_ref()
    }

    fn py(&self, key: &str) -> Result<String, String> {
        self.python()
            .and_then(|m| m.get(key).cloned())
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
pub fn evaluate(expr: &str, env: &Env) -> Result<bool, String> {
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
}
