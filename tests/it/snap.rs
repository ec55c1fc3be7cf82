//! insta snapshots of what users read (messages on stderr, `plan` and `annotate` output),
//! with what differs between machines and runs filtered out: the instance folder becomes
//! `[DIR]`, any other temporary folder `[TMP]` (and the temporary folder itself `[TMPDIR]`), the build folders `[TARGET]` and
//! `[TEST_PLUGINS]`, the repository `[REPO]`, ports `[PORT]`, durations `[TIME]`, and the
//! line and column of a plugin's panic `[LINE]`. Snapshots live in `tests/it/snapshots/`;
//! `INSTA_UPDATE=always cargo test --test it` (or `cargo insta review`) rewrites them after
//! a deliberate change of wording, and CI (`CI=true`) never writes one: a missing or
//! different snapshot fails.

use std::path::{Path, PathBuf};

use rbuildout_tests::{repo_root, target_dir, test_plugins_dir};

/// Filters for an instance at `dir` (`None`: only the general ones).
pub fn settings(dir: Option<&Path>) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(true);
    s.set_omit_expression(true);
    // Literal paths, the most specific first (insta applies filters in order).
    let mut paths: Vec<(PathBuf, &str)> = Vec::new();
    if let Some(dir) = dir {
        if let Ok(canonical) = dir.canonicalize() {
            paths.push((canonical, "[DIR]"));
        }
        paths.push((dir.to_path_buf(), "[DIR]"));
    }
    paths.push((test_plugins_dir(), "[TEST_PLUGINS]"));
    paths.push((target_dir(), "[TARGET]"));
    paths.push((repo_root(), "[REPO]"));
    for (path, to) in &paths {
        s.add_filter(&regex::escape(&path.display().to_string()), *to);
    }
    let tmp = std::env::temp_dir();
    for t in [
        tmp.canonicalize().unwrap_or_else(|_| tmp.clone()),
        tmp.clone(),
    ] {
        s.add_filter(
            &format!(
                r"{}/\.tmp[A-Za-z0-9]+",
                regex::escape(&t.display().to_string())
            ),
            "[TMP]",
        );
    }
    // The temporary folder itself (`/tmp` here), as in "which holds the instance directory".
    s.add_filter(&regex::escape(&tmp.display().to_string()), "[TMPDIR]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"\b\d+(\.\d+)?(ns|µs|ms|s)\b", "[TIME]");
    s.add_filter(r"(\.rs):\d+:\d+", "$1:[LINE]");
    s
}

/// Asserts `text` against the snapshot `name` of the calling module, with the filters of
/// [`settings`] for an instance at `dir`.
#[macro_export]
macro_rules! snapshot {
    ($name:expr, $dir:expr, $text:expr) => {
        $crate::snap::settings($dir).bind(|| insta::assert_snapshot!($name, $text))
    };
}

/// The `error:`, `warning:` and `WARN` lines of `stderr` (with their continuation lines),
/// without the progress lines (`  Installing a`, or `INFO`, `DEBUG` at `-v`), whose order
/// between parallel parts varies.
pub fn messages(stderr: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in stderr.lines() {
        if line.starts_with("error") || line.starts_with("warning") || line.contains(" WARN ") {
            inside = true;
        } else if is_progress(line) || line.contains(" INFO ") || line.contains(" DEBUG ") {
            inside = false;
        }
        if inside {
            out.push(line);
        }
    }
    out.join("\n")
}

/// Whether `line` is a progress line of the default output (docs/output.md): a capitalised
/// verb right-aligned in 12 columns, a space, the rest.
pub fn is_progress(line: &str) -> bool {
    let Some((head, _)) = line.split_at_checked(12) else {
        return false;
    };
    let verb = head.trim_start();
    line[12..].starts_with(' ')
        && verb.starts_with(|c: char| c.is_ascii_uppercase())
        && verb.chars().all(|c| c.is_ascii_alphabetic())
}
