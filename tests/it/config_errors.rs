//! Every malformed config under `tests/cases/errors/<case>/` is run through the real binary;
//! its exit code and stderr (temp paths shown as `[DIR]`) must match the insta snapshot
//! `tests/it/snapshots/it__config_errors__<case>.snap` (see `snap.rs` to update them).
//!
//! A case holds the config files and an optional `args` file (one argument per line; default
//! `annotate --json`). A snapshot is `exit: N`, a `---` line, then the exact stderr.

use std::path::Path;
use std::process::Command;

use rbuildout_tests::{rbuildout_bin, repo_root};

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read case dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "args" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy fixture");
        }
    }
}

/// Runs one case; returns its exit code and stderr as the snapshot holds them.
fn run_case(case: &Path) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().canonicalize().expect("canonical tempdir");
    copy_dir(case, &dir);
    let args: Vec<String> = match std::fs::read_to_string(case.join("args")) {
        Ok(a) => a.lines().map(str::to_owned).collect(),
        Err(_) => vec!["annotate".into(), "--json".into()],
    };
    let out = Command::new(rbuildout_bin())
        .arg("-U")
        .args(&args)
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("NO_COLOR", "1")
        .env_remove("RBUILDOUT_HOME")
        .env_remove("BUILDOUT_HOME")
        .output()
        .expect("run rbuildout");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&dir.display().to_string(), "[DIR]");
    assert!(
        out.stdout.is_empty(),
        "{}: a failing command printed on stdout: {}",
        case.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("panicked"),
        "{}: panic: {stderr}",
        case.display()
    );
    format!("exit: {}\n---\n{}", out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn every_malformed_config_fails_with_exit_2_and_a_located_message() {
    let root = repo_root().join("tests/cases/errors");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/cases/errors exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "only {} error cases", cases.len());
    for case in &cases {
        let got = run_case(case);
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(got.starts_with("exit: 2\n"), "{}: {got}", case.display());
        // Every message locates itself, except when there is no file to point into.
        if name != "missing-config" {
            assert!(
                got.contains(" --> "),
                "{}: no file:line:col in {got}",
                case.display()
            );
        }
        crate::snapshot!(name, None, got);
    }
}

#[test]
fn an_error_in_a_section_nothing_reaches_is_not_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("buildout.cfg"),
        "[buildout]\nparts = a\n\n[a]\nrecipe = r\n\n[unused]\nx = ${nosuch:y} ${bad}\n",
    )
    .expect("write");
    let out = Command::new(rbuildout_bin())
        .args(["-U", "annotate", "--json"])
        .current_dir(tmp.path())
        .env("HOME", tmp.path())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // Shown, as zc.buildout's annotate shows every section, with its error; not evaluated.
    assert!(v["sections"]["unused"]["x"]["error"].is_string(), "{v}");
    assert_eq!(v["evaluated"], serde_json::json!(["buildout", "a"]));
    assert_eq!(v["parts"], serde_json::json!(["a"]));
}
