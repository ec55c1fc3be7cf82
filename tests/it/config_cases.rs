//! The config conformance suite: every case under `tests/cases/config/` must resolve in
//! rbuildout (`annotate --json`) to the values and part order zc.buildout 6 gives it.
//!
//! Each case folder holds `buildout.cfg` (and the files it extends), `expected.json` recorded
//! from zc.buildout by `tests/oracle/record.sh`, and optionally: `args` (one command-line
//! argument per line: `-U`, `-c` with the file on the next line, or an assignment), `home/`
//! (the fake HOME, with `.buildout/default.cfg` for zc.buildout and `.rbuildout/default.toml`
//! for rbuildout), `env`
//! (`NAME=VALUE` lines, `${CASE}` standing for the case's folder), `buildout.toml` (a TOML twin
//! that must resolve to the same values, arrays joined with "\n") and `expected_toml.json`
//! (where the twin differs on purpose). The comparison rules are in docs/conformance.md.
//!
//! `config_cases_match_recorded_zc_buildout` runs rbuildout against the recordings, always.
//! `config_cases_match_live_zc_buildout` runs zc.buildout itself (the python named by
//! `RBUILDOUT_ZC_BUILDOUT`) on every case and checks both the recordings and rbuildout
//! against it. `config_case_comparison_reports_every_difference` tests the comparison rules.
#![allow(clippy::print_stderr)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rbuildout_tests::{rbuildout_bin, repo_root};
use serde_json::Value as Json;

/// Stands for the case's (scratch) folder in recorded and compared values.
const CASE: &str = "${CASE}";

fn cases_root() -> PathBuf {
    repo_root().join("tests/cases/config")
}

/// Every case folder, in the order of their numbers.
fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_root())
        .expect("read tests/cases/config")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.is_dir())
        .collect();
    // By number, so that 100-x comes after 99-y.
    cases.sort_by_key(|case| {
        let name = name(case);
        let number: u32 = name
            .split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX);
        (number, name)
    });
    assert!(
        !cases.is_empty(),
        "no cases under {}",
        cases_root().display()
    );
    cases
}

fn name(case: &Path) -> String {
    case.file_name()
        .expect("case name")
        .to_string_lossy()
        .into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create scratch folder");
    for entry in std::fs::read_dir(from).expect("read case folder") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy case file");
        }
    }
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/oracle/record.sh)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()))
}

/// A scratch copy of a case, set up the way tests/oracle/record.sh sets it up.
struct Scratch {
    _tmp: tempfile::TempDir,
    /// The copy of the case folder (canonical), the working directory.
    dir: PathBuf,
    home: PathBuf,
    /// The case's `args` lines.
    args: Vec<String>,
    /// The case's `env` lines, `${CASE}` replaced.
    env: Vec<(String, String)>,
}

impl Scratch {
    fn new(case: &Path) -> Scratch {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical tempdir");
        let dir = root.join("case");
        copy_dir(case, &dir);
        let home = if dir.join("home").is_dir() {
            dir.join("home")
        } else {
            let home = root.join("home");
            std::fs::create_dir(&home).expect("create empty HOME");
            home
        };
        let args = std::fs::read_to_string(case.join("args"))
            .map(|text| {
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let env = std::fs::read_to_string(case.join("env"))
            .map(|text| {
                text.lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.replace(CASE, &dir.display().to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Scratch {
            _tmp: tmp,
            dir,
            home,
            args,
            env,
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .env("HOME", &self.home)
            .env("NO_COLOR", "1")
            .env_remove("BUILDOUT_HOME")
            .env_remove("RBUILDOUT_HOME")
            .env_remove("RBUILDOUT_PLUGIN_PATH");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    /// `rbuildout [-c FILE] ARGS... annotate --json`. With `config` given, it replaces any
    /// `-c` of the case's args; without, the args' `-c` or else `-c buildout.cfg` is used
    /// (a twin's buildout.toml would otherwise win).
    fn rbuildout(&self, config: Option<&str>) -> Output {
        let mut args: Vec<String> = Vec::new();
        let mut iter = self.args.iter();
        let mut case_config = None;
        while let Some(arg) = iter.next() {
            if arg == "-c" {
                case_config = iter.next().cloned();
            } else if let Some(file) = arg.strip_prefix("-c") {
                case_config = Some(file.to_owned());
            } else {
                args.push(arg.clone());
            }
        }
        let file = config
            .map(str::to_owned)
            .or(case_config)
            .unwrap_or_else(|| "buildout.cfg".to_owned());
        self.command(&rbuildout_bin())
            .arg("-c")
            .arg(file)
            .args(args)
            .args(["annotate", "--json"])
            .output()
            .expect("run rbuildout")
    }

    fn oracle(&self, python: &Path) -> Output {
        self.command(python)
            .arg(repo_root().join("tests/oracle/zc_resolve.py"))
            .args(&self.args)
            .output()
            .expect("run the zc.buildout oracle")
    }

    /// The case folder's path as written in values (canonical), to be shown as `${CASE}`.
    fn normalise(&self, text: &str) -> String {
        text.replace(&self.dir.display().to_string(), CASE)
    }
}

/// A value as compared: a string, or an array's elements joined with "\n".
fn value_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Array(items) => {
            let items: Option<Vec<&str>> = items.iter().map(Json::as_str).collect();
            items.map(|items| items.join("\n"))
        }
        _ => None,
    }
}

/// Which run of a case is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Cfg,
    /// A TOML twin: `buildout:parts` is a list there (SPEC §2.2), so it is compared as its
    /// whitespace-separated names.
    TomlTwin,
}

/// rbuildout's `annotate --json` output (or failure) compared with an expectation; returns
/// every difference, one per line.
fn compare(expected: &Json, scratch: &Scratch, out: &Output, format: Format) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = scratch.normalise(&String::from_utf8_lossy(&out.stderr));
    let mut diffs = Vec::new();
    if let Some(error) = expected.get("error") {
        if out.status.code() != Some(2) || !stdout.trim().is_empty() {
            diffs.push(format!(
                "expected a config error (exit 2, nothing on stdout) like zc.buildout's {error}, \
                 got exit {:?}, stdout {:?}",
                out.status.code(),
                stdout.trim()
            ));
        }
        return diffs;
    }
    if !out.status.success() {
        diffs.push(format!(
            "exit {:?}, stderr:\n{}",
            out.status.code(),
            stderr.trim_end()
        ));
        return diffs;
    }
    let actual: Json = match serde_json::from_str(&stdout) {
        Ok(actual) => actual,
        Err(e) => return vec![format!("stdout is not one JSON object ({e}): {stdout}")],
    };
    let expected_parts = &expected["parts"];
    if actual.get("parts") != Some(expected_parts) {
        diffs.push(format!(
            "parts: expected {expected_parts}, got {}",
            actual.get("parts").unwrap_or(&Json::Null)
        ));
    }
    let empty = serde_json::Map::new();
    let expected_sections = expected["sections"].as_object().unwrap_or(&empty);
    let actual_sections = actual
        .get("sections")
        .and_then(Json::as_object)
        .unwrap_or(&empty);
    let versions = expected_sections
        .get("buildout")
        .and_then(|b| b.get("versions"))
        .and_then(|v| v["value"].as_str())
        .unwrap_or("versions");
    for (section, options) in expected_sections {
        let section = section.as_str();
        let Some(actual_options) = actual_sections.get(section).and_then(Json::as_object) else {
            diffs.push(format!("[{section}]: missing"));
            continue;
        };
        let options = options.as_object().unwrap_or(&empty);
        for (option, value) in options {
            let want = value["value"].as_str().unwrap_or_default();
            match actual_options.get(option).map(|v| value_text(&v["value"])) {
                None => diffs.push(format!("{section}:{option}: missing, expected {want:?}")),
                Some(None) => diffs.push(format!(
                    "{section}:{option}: not a string or array of strings: {}",
                    actual_options[option]["value"]
                )),
                Some(Some(got)) => {
                    let got = scratch.normalise(&got);
                    let same = if format == Format::TomlTwin
                        && (section, option.as_str()) == ("buildout", "parts")
                    {
                        got.split_whitespace().eq(want.split_whitespace())
                    } else {
                        got == want
                    };
                    if !same {
                        diffs.push(format!(
                            "{section}:{option}: expected {want:?}, got {got:?}"
                        ));
                    }
                }
            }
        }
        // [buildout] also holds rbuildout's own defaults; other sections must match exactly.
        if section != "buildout" {
            for option in actual_options.keys().filter(|o| !options.contains_key(*o)) {
                diffs.push(format!(
                    "{section}:{option}: unexpected option = {:?}",
                    value_text(&actual_options[option]["value"]).unwrap_or_default()
                ));
            }
        }
    }
    // Laziness: the sections a run evaluates (annotate shows more: every section).
    let evaluated: Vec<&str> = actual
        .get("evaluated")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    for section in evaluated {
        let empty_versions = section == versions
            && actual_sections
                .get(section)
                .and_then(Json::as_object)
                .is_some_and(|o| o.is_empty());
        if !expected_sections.contains_key(section) && !empty_versions {
            diffs.push(format!(
                "[{section}]: evaluated, but zc.buildout does not evaluate it"
            ));
        }
    }
    // `annotate` shows every section zc.buildout's `annotate` shows, and no other (beyond an
    // empty versions section).
    if let Some(shown) = expected.get("annotated").and_then(Json::as_array) {
        let shown: Vec<&str> = shown.iter().filter_map(Json::as_str).collect();
        for section in &shown {
            if !actual_sections.contains_key(*section) {
                diffs.push(format!(
                    "[{section}]: zc.buildout's annotate shows it, rbuildout's does not"
                ));
            }
        }
        for (section, options) in actual_sections {
            let empty_versions =
                section == versions && options.as_object().is_some_and(|o| o.is_empty());
            if !shown.contains(&section.as_str()) && !empty_versions {
                diffs.push(format!(
                    "[{section}]: rbuildout's annotate shows it, zc.buildout's does not"
                ));
            }
        }
    }
    diffs
}

/// Runs `f` on every case, a few at a time, and returns the results in case order.
fn for_each_case<T: Send>(f: impl Fn(&Path) -> T + Sync) -> Vec<(String, T)> {
    let cases = cases();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let chunk = cases.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|chunk| {
                let f = &f;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|case| (name(case), f(case)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case worker"))
            .collect()
    })
}

/// Panics listing every failing case and its differences, after saying how many passed.
fn report(what: &str, results: Vec<(String, Vec<String>)>) {
    let total = results.len();
    let mut failed = 0;
    let mut text = String::new();
    for (case, diffs) in results.into_iter().filter(|(_, diffs)| !diffs.is_empty()) {
        failed += 1;
        let _ = writeln!(text, "--- {case}");
        for diff in diffs {
            let _ = writeln!(text, "    {}", diff.replace('\n', "\n    "));
        }
    }
    eprintln!("{what}: {} of {total} passed", total - failed);
    assert!(failed == 0, "{what}: {failed} of {total} failed\n{text}");
}

/// rbuildout on the case (and its twin) against the recorded expectations.
fn check_recorded(case: &Path) -> Vec<String> {
    let expected = read_json(&case.join("expected.json"));
    let scratch = Scratch::new(case);
    let mut diffs = compare(&expected, &scratch, &scratch.rbuildout(None), Format::Cfg);
    if case.join("buildout.toml").exists() {
        let toml_expected = case.join("expected_toml.json");
        let expected = if toml_expected.exists() {
            read_json(&toml_expected)
        } else {
            expected
        };
        let scratch = Scratch::new(case);
        let twin = compare(
            &expected,
            &scratch,
            &scratch.rbuildout(Some("buildout.toml")),
            Format::TomlTwin,
        );
        diffs.extend(twin.into_iter().map(|d| format!("buildout.toml: {d}")));
    }
    diffs
}

#[test]
fn config_cases_match_recorded_zc_buildout() {
    report(
        "config cases vs recorded zc.buildout",
        for_each_case(check_recorded),
    );
}

/// zc.buildout run live on the case: its output must equal the recording, and rbuildout's
/// must match it.
fn check_live(case: &Path, python: &Path) -> Vec<String> {
    let scratch = Scratch::new(case);
    let out = scratch.oracle(python);
    if !out.status.success() {
        return vec![format!(
            "the oracle failed (exit {:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let live: Json = match serde_json::from_slice(&out.stdout) {
        Ok(live) => live,
        Err(e) => return vec![format!("the oracle printed no JSON ({e})")],
    };
    let mut diffs = Vec::new();
    let recorded = read_json(&case.join("expected.json"));
    if live != recorded {
        diffs.push(format!(
            "zc.buildout now gives\n{}\nbut expected.json records\n{}\n(re-record with tests/oracle/record.sh)",
            serde_json::to_string_pretty(&live).unwrap_or_default(),
            serde_json::to_string_pretty(&recorded).unwrap_or_default()
        ));
    }
    diffs.extend(compare(
        &live,
        &scratch,
        &scratch.rbuildout(None),
        Format::Cfg,
    ));
    diffs
}

#[test]
fn config_cases_match_live_zc_buildout() {
    let Some(python) = rbuildout_tests::oracle("the cases against live zc.buildout") else {
        // Without the oracle, the recorded expectations are checked for consistency instead.
        let results = for_each_case(|case| {
            let expected = read_json(&case.join("expected.json"));
            let mut diffs = Vec::new();
            if expected.get("error").is_none() && !expected["parts"].is_array() {
                diffs.push("expected.json has neither \"error\" nor \"parts\"".to_owned());
            }
            if case.join("expected_toml.json").exists() && !case.join("buildout.toml").exists() {
                diffs.push("expected_toml.json without buildout.toml".to_owned());
            }
            diffs
        });
        eprintln!(
            "RBUILDOUT_ZC_BUILDOUT is not set: zc.buildout not run live; checked only that all {} \
             cases have recorded expectations",
            results.len()
        );
        report("config cases have recordings", results);
        return;
    };
    let python = PathBuf::from(python);
    report(
        "config cases vs live zc.buildout",
        for_each_case(|case| check_live(case, &python)),
    );
}

/// The comparison itself: each kind of difference is reported, and what the rules allow
/// (rbuildout's own [buildout] defaults, arrays, the scratch path) is not.
#[cfg(unix)]
#[test]
fn config_case_comparison_reports_every_difference() {
    use std::os::unix::process::ExitStatusExt;

    let scratch = Scratch::new(&cases_root().join("01-minimal"));
    let expected = serde_json::json!({
        "parts": ["a", "b"],
        "annotated": ["a", "b", "buildout", "c", "m"],
        "sections": {
            "buildout": {"parts": {"value": "a b"}},
            "a": {"path": {"value": "${CASE}/x"}, "list": {"value": "1\n2"}},
            "b": {"x": {"value": "1"}},
            "c": {"y": {"value": "2"}},
        }
    });
    let output = |json: Json| Output {
        status: std::process::ExitStatus::from_raw(0),
        stdout: json.to_string().into_bytes(),
        stderr: Vec::new(),
    };
    let dir = scratch.dir.display().to_string();
    let good = serde_json::json!({
        "parts": ["a", "b"],
        "evaluated": ["buildout", "a", "b", "c", "versions"],
        "sections": {
            "buildout": {"parts": {"value": "a b"}, "jobs": {"value": "1"}},
            "a": {"path": {"value": format!("{dir}/x")}, "list": {"value": ["1", "2"]}},
            "b": {"x": {"value": "1"}},
            "c": {"y": {"value": "2"}},
            "m": {"u": {"raw": "${:v}", "error": "referenced option does not exist: m:v"}},
            "versions": {},
        }
    });
    assert_eq!(
        compare(&expected, &scratch, &output(good), Format::Cfg),
        Vec::<String>::new()
    );

    let bad = serde_json::json!({
        "parts": ["b", "a"],
        "evaluated": ["buildout", "a", "b", "d"],
        "sections": {
            "buildout": {"parts": {"value": "a b"}},
            "a": {"path": {"value": "/elsewhere/x"}, "list": {"value": ["1", "2"]}, "extra": {"value": "e"}},
            "b": {},
            "d": {},
        }
    });
    let diffs = compare(&expected, &scratch, &output(bad), Format::Cfg);
    let expected_diffs = [
        "parts: expected",
        "a:path: expected",
        "a:extra: unexpected option",
        "b:x: missing",
        "[c]: missing",
        "[d]: evaluated",
        "[c]: zc.buildout's annotate shows it",
        "[m]: zc.buildout's annotate shows it",
        "[d]: rbuildout's annotate shows it",
    ];
    for want in expected_diffs {
        assert!(
            diffs.iter().any(|d| d.starts_with(want)),
            "no {want:?} in {diffs:#?}"
        );
    }
    assert_eq!(diffs.len(), expected_diffs.len(), "{diffs:#?}");

    // A twin's parts are compared as names; a .cfg's as text.
    let twin = serde_json::json!({
        "parts": ["a", "b"],
        "sections": {
            "buildout": {"parts": {"value": ["a", "b"]}},
            "a": {"path": {"value": format!("{dir}/x")}, "list": {"value": "1\n2"}},
            "b": {"x": {"value": "1"}},
            "c": {"y": {"value": "2"}},
            "m": {},
        }
    });
    assert!(compare(&expected, &scratch, &output(twin.clone()), Format::TomlTwin).is_empty());
    assert_eq!(
        compare(&expected, &scratch, &output(twin), Format::Cfg).len(),
        1
    );

    // An expected error wants exit code 2 and an empty stdout.
    let error = serde_json::json!({"error": "Circular reference in substitutions."});
    let failed = Output {
        status: std::process::ExitStatus::from_raw(2 << 8),
        stdout: Vec::new(),
        stderr: b"error: cycle".to_vec(),
    };
    assert!(compare(&error, &scratch, &failed, Format::Cfg).is_empty());
    assert_eq!(
        compare(
            &error,
            &scratch,
            &output(serde_json::json!({})),
            Format::Cfg
        )
        .len(),
        1
    );
}
