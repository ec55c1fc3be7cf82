//! The install lifecycle end to end (SPEC §3): the real `rbuildout` binary with the real
//! `testkit` plugin, each test in its own instance folder.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rbuildout_tests::{Instance, identity, mtime, test_plugins_dir};

fn strings(v: &toml::Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn part<'a>(state: &'a toml::Table, name: &str) -> &'a toml::Table {
    state["parts"][name]
        .as_table()
        .unwrap_or_else(|| panic!("part {name} is not recorded"))
}

/// Waits until `path` exists, failing the test after 30 s.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

const TWO_FILES: &str = r#"
buildout = { parts = ["a", "b"] }
a = { recipe = "testkit:file", path = "parts/a.txt", content = "A" }
b = { recipe = "testkit:file", path = "parts/b.txt", content = "B" }
"#;

#[test]
fn install_records_each_part_and_a_rerun_rewrites_nothing() {
    let inst = Instance::new(TWO_FILES);
    inst.ok(&[]);
    assert_eq!(inst.read("parts/a.txt"), "A");
    assert_eq!(inst.read("parts/b.txt"), "B");

    let state = inst.state();
    assert_eq!(state["version"].as_integer(), Some(1));
    assert_eq!(inst.installed(), ["a", "b"]);
    let a = part(&state, "a");
    let recipe = a["recipe"].as_table().unwrap();
    assert_eq!(recipe["plugin"].as_str(), Some("testkit"));
    assert_eq!(recipe["entry"].as_str(), Some("file"));
    assert_eq!(recipe["version"].as_str(), Some("0.1.0"));
    let digest = recipe["digest"].as_str().unwrap();
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{digest}"
    );
    assert_eq!(a["options"]["content"].as_str(), Some("A"));
    assert_eq!(a["options"]["recipe"].as_str(), Some("testkit:file"));
    assert_eq!(strings(&a["paths"]), ["parts/a.txt"]);
    let written = inst.path("parts/a.txt").display().to_string();
    assert_eq!(a["outputs"]["written"].as_str(), Some(written.as_str()));

    let before = identity(&inst.path(".installed.toml"));
    let text = inst.state_text();
    let file_before = identity(&inst.path("parts/a.txt"));
    for _ in 0..2 {
        inst.ok(&[]);
    }
    assert_eq!(
        inst.state_text(),
        text,
        "a no-op run leaves the state byte-identical"
    );
    assert_eq!(
        identity(&inst.path(".installed.toml")),
        before,
        "and does not rewrite it"
    );
    assert_eq!(
        identity(&inst.path("parts/a.txt")),
        file_before,
        "nor reinstalls a part"
    );
    assert!(!inst.exists(".installed.toml.tmp"));
}

#[test]
fn an_option_change_reinstalls_that_part_and_updates_the_others() {
    let config = |b: &str| {
        format!(
            r#"
buildout = {{ parts = ["a", "b"] }}
a = {{ recipe = "testkit:lifecycle", path = "parts/a.txt" }}
b = {{ recipe = "testkit:lifecycle", path = "parts/b.txt", content = "{b}" }}
"#
        )
    };
    let inst = Instance::new(&config("one"));
    inst.ok(&["-j", "1"]);
    assert_eq!(inst.log("lifecycle.log"), ["install a", "install b"]);
    inst.config(&config("two"));
    inst.ok(&["-j", "1"]);
    assert_eq!(
        inst.log("lifecycle.log"),
        [
            "install a",
            "install b",
            "uninstall b",
            "update a",
            "install b"
        ]
    );
    assert_eq!(inst.read("parts/b.txt"), "two");
    assert_eq!(
        part(&inst.state(), "b")["options"]["content"].as_str(),
        Some("two")
    );
    assert_eq!(inst.installed(), ["a", "b"]);
}

#[test]
fn a_deleted_path_reinstalls_its_part() {
    let inst = Instance::new(TWO_FILES);
    inst.ok(&[]);
    std::fs::remove_file(inst.path("parts/a.txt")).unwrap();
    let plan = inst.ok(&["plan"]);
    assert_eq!(
        plan.stdout,
        "uninstall  a  (path parts/a.txt is missing)\n\
         reinstall  a  (path parts/a.txt is missing)\n\
         keep       b  (unchanged)\n"
    );
    inst.ok(&[]);
    assert_eq!(inst.read("parts/a.txt"), "A");
    assert_eq!(inst.installed(), ["a", "b"]);
}

#[test]
fn removed_parts_are_uninstalled_in_reverse_order_before_anything_installs() {
    let part = |name: &str| {
        format!("\n[{name}]\nrecipe = \"testkit:lifecycle\"\npath = \"parts/{name}.txt\"\n")
    };
    let inst = Instance::new(&format!(
        "[buildout]\nparts = [\"a\", \"b\", \"c\"]\n{}{}{}",
        part("a"),
        part("b"),
        part("c")
    ));
    inst.ok(&["-j", "1"]);
    inst.config(&format!(
        "[buildout]\nparts = [\"d\", \"b\"]\n{}{}",
        part("b"),
        part("d")
    ));
    inst.ok(&["-j", "4"]);
    let log = inst.log("lifecycle.log");
    assert_eq!(
        log[..5],
        [
            "install a",
            "install b",
            "install c",
            "uninstall c",
            "uninstall a"
        ]
    );
    let mut rest = log[5..].to_vec();
    rest.sort();
    assert_eq!(rest, ["install d", "update b"]);
    assert!(!inst.exists("parts/a.txt") && !inst.exists("parts/c.txt"));
    assert!(inst.exists("parts/b.txt") && inst.exists("parts/d.txt"));
    assert_eq!(inst.installed(), ["d", "b"]);
}

#[test]
fn the_uninstall_hook_gets_the_recorded_options() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["u"] }
u = { recipe = "testkit:uninstallable", path = "parts/u.txt", log = "hooks.log" }
"#,
    );
    inst.ok(&[]);
    assert!(inst.log("hooks.log").is_empty());
    inst.config("[buildout]\nparts = []\n");
    inst.ok(&[]);
    assert_eq!(inst.log("hooks.log"), ["uninstall u"]);
    assert!(!inst.exists("parts/u.txt"));
    assert!(inst.installed().is_empty());
    assert!(
        inst.state()["parts"]
            .as_table()
            .is_none_or(|t| t.is_empty())
    );
}

#[test]
fn outputs_reach_dependents_and_their_change_reinstalls_them() {
    let config = |port: &str| {
        format!(
            r#"
[buildout]
parts = ["web", "conf", "where"]

[web]
recipe = "testkit:file"
path = "parts/web.txt"
content = "{port}"
publish-port = "{port}"

[conf]
recipe = "testkit:lifecycle"
path = "parts/conf.txt"
content = "listen ${{web:port}}"

[where]
recipe = "testkit:lifecycle"
path = "parts/where.txt"
content = "${{web:written}}"
"#
        )
    };
    let inst = Instance::new(&config("8080"));
    inst.ok(&["-j", "1"]);
    assert_eq!(inst.read("parts/conf.txt"), "listen 8080");
    assert_eq!(
        inst.read("parts/where.txt"),
        inst.path("parts/web.txt").display().to_string()
    );
    assert_eq!(
        part(&inst.state(), "web")["outputs"]["port"].as_str(),
        Some("8080")
    );

    inst.config(&config("8081"));
    inst.ok(&["-j", "1"]);
    assert_eq!(inst.read("parts/conf.txt"), "listen 8081");
    assert_eq!(
        inst.log("lifecycle.log"),
        [
            "install conf",
            "install where",
            "uninstall conf",
            "install conf",
            "update where"
        ],
        "conf sees the new output and is reinstalled; where's options did not change"
    );
    assert_eq!(
        part(&inst.state(), "conf")["options"]["content"].as_str(),
        Some("listen 8081")
    );
    inst.ok(&[]);
    assert_eq!(
        inst.log("lifecycle.log").len(),
        7,
        "the next run only updates"
    );
}

#[test]
fn a_reference_nobody_provides_fails_when_its_part_is_reached() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["a", "b"] }
a = { recipe = "testkit:file", path = "parts/a.txt" }
b = { recipe = "testkit:file", path = "parts/b.txt", content = "${a:nosuch}" }
"#,
    );
    let r = inst.fails(&[], 2);
    r.stderr_has("nosuch");
    assert_eq!(inst.installed(), ["a"], "what ran before is recorded");
    assert!(!inst.exists("parts/b.txt"));
}

#[test]
fn a_failing_part_removes_what_it_registered_and_stops_the_run() {
    let config = |seconds: &str| {
        format!(
            r#"
[buildout]
parts = ["a", "bad", "c"]

[a]
recipe = "testkit:file"
path = "parts/a.txt"

[bad]
recipe = "testkit:sleep"
marker = "parts/bad.marker"
seconds = "{seconds}"
needs = ["a"]

[c]
recipe = "testkit:file"
path = "parts/c.txt"
needs = ["bad"]
"#
        )
    };
    let inst = Instance::new(&config("soon"));
    let r = inst.fails(&[], 1);
    r.stderr_has("part `bad` failed during install: option `seconds` must be a number");
    assert!(
        !inst.exists("parts/bad.marker"),
        "the path it registered before failing is removed"
    );
    assert_eq!(inst.installed(), ["a"]);
    assert!(!inst.exists("parts/c.txt"), "the run stopped");

    inst.config(&config("0"));
    inst.ok(&[]);
    assert_eq!(inst.installed(), ["a", "bad", "c"]);
}

#[test]
fn a_panicking_recipe_fails_its_part_and_nothing_else() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["a", "boom"] }
a = { recipe = "testkit:file", path = "parts/a.txt" }
boom = { recipe = "testkit:panic", message = "the sky fell", needs = ["a"] }
"#,
    );
    let r = inst.fails(&[], 1);
    r.stderr_has("part `boom` failed: its recipe panicked");
    r.stderr_has("the sky fell");
    assert!(
        !r.stderr.contains("RUST_BACKTRACE"),
        "no backtrace: {}",
        r.stderr
    );
    assert_eq!(inst.installed(), ["a"]);
}

#[test]
fn a_failed_update_drops_the_part_and_its_paths() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["u"] }
u = { recipe = "testkit:updatable", path = "parts/u.txt", log = "no/such/folder/update.log" }
"#,
    );
    inst.ok(&[]);
    let r = inst.fails(&[], 1);
    r.stderr_has("part `u` failed during update");
    assert!(!inst.exists("parts/u.txt"));
    assert!(inst.installed().is_empty());
}

#[test]
fn the_engine_never_removes_anything_outside_the_instance() {
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("precious.txt");
    let inst = Instance::new(&format!(
        r#"
buildout = {{ parts = ["out", "through-link"], allow-outside = ["{}"] }}
out = {{ recipe = "testkit:outside", path = "{}", content = "keep me" }}
through-link = {{ recipe = "testkit:file", path = "link/inner.txt", content = "keep me too" }}
"#,
        elsewhere.path().display(),
        outside.display()
    ));
    std::os::unix::fs::symlink(elsewhere.path(), inst.path("link")).unwrap();
    let r = inst.ok(&[]);
    r.stderr_has("outside the instance");
    assert_eq!(
        strings(&part(&inst.state(), "out")["paths"]),
        [outside.display().to_string()]
    );

    inst.config("[buildout]\nparts = []\n");
    let r = inst.ok(&[]);
    r.stderr_has("left");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("inner.txt")).unwrap(),
        "keep me too",
        "a path whose folder is a link to elsewhere is outside too"
    );
    assert!(inst.installed().is_empty());
}

#[test]
fn a_second_run_fails_naming_the_holder_or_waits_with_a_timeout() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["slow"] }
slow = { recipe = "testkit:sleep", marker = "slow.marker", seconds = "2" }
"#,
    );
    let mut first = inst.spawn(&[]);
    wait_for(&inst.path("slow.marker"));
    let r = inst.fails(&[], 1);
    r.stderr_has(&format!("(pid {})", first.id()));
    r.stderr_has(".installed.toml.lock");

    let r = inst.run(&["--lock-timeout", "60"]);
    assert_eq!(
        r.code, 0,
        "the waiting run proceeds once the first ends: {}",
        r.stderr
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(inst.installed(), ["slow"]);
}

#[test]
fn plan_says_what_would_change_and_why_touching_nothing() {
    let config = |a: &str, parts: &str, extra: &str| {
        format!(
            r#"
[buildout]
parts = [{parts}]

[a]
recipe = "testkit:file"
path = "parts/a.txt"
content = "{a}"

[b]
recipe = "testkit:updatable"
path = "parts/b.txt"

[c]
recipe = "testkit:file"
path = "parts/c.txt"
{extra}"#
        )
    };
    let inst = Instance::new(&config("A", r#""a", "b", "c""#, ""));
    inst.ok(&[]);
    let before = identity(&inst.path(".installed.toml"));
    let a_before = identity(&inst.path("parts/a.txt"));
    inst.config(&config(
        "A2",
        r#""a", "b", "d""#,
        "\n[d]\nrecipe = \"testkit:file\"\npath = \"parts/d.txt\"\n",
    ));
    let expected = "uninstall  c  (no longer a part)\n\
                    uninstall  a  (option `content` changed: \"A2\" != \"A\")\n\
                    reinstall  a  (option `content` changed: \"A2\" != \"A\")\n\
                    update     b  (unchanged)\n\
                    install    d  (new part)\n";
    assert_eq!(inst.ok(&["plan"]).stdout, expected);
    assert_eq!(inst.ok(&["install", "--dry-run"]).stdout, expected);
    assert_eq!(identity(&inst.path(".installed.toml")), before);
    assert_eq!(identity(&inst.path("parts/a.txt")), a_before);
    assert!(inst.exists("parts/c.txt") && !inst.exists("parts/d.txt"));
    assert!(inst.log("update.log").is_empty(), "plan runs no recipe");
}

#[test]
fn install_part_handles_only_the_parts_named() {
    let inst = Instance::new(TWO_FILES);
    inst.ok(&["install", "b"]);
    assert_eq!(inst.installed(), ["b"]);
    assert!(!inst.exists("parts/a.txt"));
    inst.ok(&[]);
    inst.config(
        r#"
buildout = { parts = ["b"] }
b = { recipe = "testkit:file", path = "parts/b.txt", content = "B2" }
"#,
    );
    inst.ok(&["install", "b"]);
    assert_eq!(inst.read("parts/b.txt"), "B2");
    assert!(
        inst.exists("parts/a.txt"),
        "parts no longer configured are left alone"
    );
    assert_eq!(inst.installed(), ["a", "b"]);

    let r = inst.fails(&["install", "nosuch"], 2);
    r.stderr_has("not a part of this buildout: `nosuch`");
}

const SLEEPERS: &str = r#"
buildout = { parts = ["s1", "s2", "s3"] }
s1 = { recipe = "testkit:sleep", marker = "s1.marker", seconds = "1.5" }
s2 = { recipe = "testkit:sleep", marker = "s2.marker", seconds = "1.5" }
s3 = { recipe = "testkit:sleep", marker = "s3.marker", seconds = "0", needs = ["s1"] }
"#;

/// Seconds from `a`'s marker to `b`'s (each written when its part starts).
fn started_after(inst: &Instance, a: &str, b: &str) -> f64 {
    let (a, b) = (mtime(&inst.path(a)), mtime(&inst.path(b)));
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

#[test]
fn independent_parts_run_at_once_and_a_part_waits_for_its_dependencies() {
    let inst = Instance::new(SLEEPERS);
    let r = inst.ok(&["-j", "3"]);
    // s1 and s2 each sleep 1.5 s after writing their marker: s2 starting less than 1.5 s
    // after s1 means both were running at once. File times come from the kernel's coarse
    // clock (a few ms), so the bounds keep a margin.
    assert!(started_after(&inst, "s1.marker", "s2.marker").abs() < 1.0);
    let s3 = started_after(&inst, "s1.marker", "s3.marker");
    assert!(s3 >= 1.4, "s3 waits for s1, yet started {s3} s after it");
    // One line per part, however the parts' runs interleave.
    let mut lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("Installing"))
        .collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["  Installing s1", "  Installing s2", "  Installing s3"],
        "{}",
        r.stderr
    );

    let one = Instance::new(SLEEPERS);
    one.ok(&["-j", "1"]);
    assert!(
        started_after(&one, "s1.marker", "s2.marker") >= 1.4,
        "-j 1 runs one at a time"
    );
}

/// Every file of the instance (relative path → content), leaving out what legitimately
/// differs between runs: the lock file and the sleep markers hold process ids.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if path.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                walk(base, &path, out);
            } else if rel.ends_with(".marker") || rel.ends_with(".lock") {
                out.insert(rel, String::new());
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                out.insert(rel, text.replace(&base.display().to_string(), "<instance>"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn kill_config(version: &str, parts: &[&str]) -> String {
    let mut text = format!("[buildout]\nparts = {parts:?}\n");
    for p in parts {
        let recipe = if p.starts_with('s') { "sleep" } else { "file" };
        text.push_str(&format!(
            "\n[{p}]\nrecipe = \"testkit:{recipe}\"\npath = \"parts/{p}.txt\"\n\
             content = \"{p} {version}\"\nmarker = \"parts/{p}.marker\"\nseconds = \"0.05\"\n"
        ));
    }
    text
}

#[test]
fn killed_at_any_point_the_next_run_converges_to_a_clean_runs_result() {
    let old = kill_config("v1", &["f1", "s1", "f2", "o1", "s2", "o2"]);
    let new = kill_config("v2", &["f1", "s1", "f2", "s3", "f3", "s4", "f4"]);

    let clean = Instance::new(&old);
    clean.ok(&["-j", "2"]);
    clean.config(&new);
    clean.ok(&["-j", "2"]);
    let expected = snapshot(clean.dir());

    let mut states_seen = std::collections::BTreeSet::new();
    // Kill the old → new run after a growing delay: before the lock, during the uninstalls,
    // in the middle of a part, between parts, and after it finished.
    for delay_ms in [
        0u64, 5, 15, 30, 50, 75, 100, 130, 160, 200, 250, 320, 400, 600,
    ] {
        let inst = Instance::new(&old);
        inst.ok(&["-j", "2"]);
        inst.config(&new);
        inst.kill_after(&["-j", "2"], Duration::from_millis(delay_ms));
        let left = if inst.exists(".installed.toml") {
            inst.state_text()
        } else {
            String::new()
        };
        let _: toml::Table = left
            .parse()
            .unwrap_or_else(|e| panic!("state left half-written after {delay_ms} ms: {e}"));
        states_seen.insert(left);
        inst.ok(&["-j", "2"]);
        assert_eq!(snapshot(inst.dir()), expected, "killed after {delay_ms} ms");
        let r = inst.ok(&["plan"]);
        assert!(
            r.stdout.lines().all(|l| l.starts_with("keep")),
            "converged after {delay_ms} ms:\n{}",
            r.stdout
        );
    }
    // The kills must have hit the run at several different points, or this proves little.
    assert!(
        states_seen.len() >= 4,
        "only {} distinct states after a kill",
        states_seen.len()
    );
}

#[test]
fn ctrl_c_lets_the_running_part_finish_and_starts_no_other() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["slow", "f1", "f2"] }
slow = { recipe = "testkit:sleep", marker = "slow.marker", seconds = "1" }
f1 = { recipe = "testkit:file", path = "parts/f1.txt", needs = ["slow"] }
f2 = { recipe = "testkit:file", path = "parts/f2.txt", needs = ["slow"] }
"#,
    );
    for (round, name) in ["INT"].iter().enumerate() {
        let _ = std::fs::remove_file(inst.path(".installed.toml"));
        let _ = std::fs::remove_file(inst.path("slow.marker"));
        let child = inst.spawn(&[]);
        wait_for(&inst.path("slow.marker"));
        signal(&child, name);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "SIG{name}: {stderr}");
        assert!(
            stderr.contains("interrupted: letting running parts finish"),
            "{stderr}"
        );
        assert!(
            stderr.contains("interrupted: 2 part(s) not run"),
            "{stderr}"
        );
        assert_eq!(
            inst.installed(),
            ["slow"],
            "the running part finished and is recorded"
        );
        assert!(inst.exists("slow.marker"));
        assert!(
            !inst.exists("parts/f1.txt") && !inst.exists("parts/f2.txt"),
            "round {round}"
        );
    }

    inst.ok(&[]);
    assert_eq!(inst.installed(), ["slow", "f1", "f2"]);
}

/// Ctrl-C during the prepare phase prepares no other part and installs nothing.
#[test]
fn ctrl_c_while_preparing_prepares_no_other_part() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["p1", "p2"] }
p1 = { recipe = "testkit:prepared", seconds = "1" }
p2 = { recipe = "testkit:prepared" }
"#,
    );
    let child = inst.spawn(&[]);
    wait_for(&inst.path("prepared.log"));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(inst.log("prepared.log"), ["prepare p1"], "{stderr}");
    assert!(!inst.exists(".installed.toml"), "{stderr}");
}

#[test]
fn a_second_ctrl_c_tells_the_running_recipe_to_stop() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["slow", "after"] }
slow = { recipe = "testkit:sleep", marker = "slow.marker", seconds = "60" }
after = { recipe = "testkit:file", path = "parts/after.txt", needs = ["slow"] }
"#,
    );
    let child = inst.spawn(&[]);
    wait_for(&inst.path("slow.marker"));
    let started = Instant::now();
    signal(&child, "INT");
    // Standard signals do not queue: let the first be handled before the second is sent.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the 60 s recipe was stopped, not waited for"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sleep cancelled"), "{stderr}");
    // The stopped part failed: what it registered is gone and nothing is recorded for it.
    assert!(!inst.exists("slow.marker"));
    assert!(!inst.exists("parts/after.txt"));
    if inst.exists(".installed.toml") {
        let state = inst.state();
        assert!(state.get("parts").and_then(|p| p.get("slow")).is_none());
    }
}

#[test]
fn one_sigterm_stops_new_parts_and_the_running_recipe() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["slow", "after"] }
# Takes a moment to stop once asked, so the run says what it is waiting for.
slow = { recipe = "testkit:sleep", marker = "slow.marker", seconds = "60", linger = "0.5" }
after = { recipe = "testkit:file", path = "parts/after.txt", needs = ["slow"] }
"#,
    );
    let child = inst.spawn(&[]);
    wait_for(&inst.path("slow.marker"));
    let started = Instant::now();
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "one SIGTERM stopped the 60 s recipe: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sleep cancelled"), "{stderr}");
    assert!(
        stderr.contains("running parts were asked to stop")
            && !stderr.contains("letting running parts finish"),
        "the message says what SIGTERM does: {stderr}"
    );
    assert!(!inst.exists("slow.marker"));
    assert!(!inst.exists("parts/after.txt"));
    inst.ok(&["slow:seconds=0"]);
    assert_eq!(inst.installed(), ["slow", "after"]);
}

#[test]
fn plugins_lists_the_testkit_and_its_recipes() {
    let inst = Instance::new(TWO_FILES);
    let r = inst.ok(&["plugins", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
    let testkit = rbuildout_tests::named(&list, "testkit");
    assert_eq!(testkit["version"], "0.1.0");
    let lifecycle = rbuildout_tests::named(&testkit["recipes"], "lifecycle");
    assert_eq!(lifecycle["update"], true);
    assert_eq!(lifecycle["uninstall"], true);
    let text = inst.ok(&["plugins"]).stdout;
    assert!(text.contains("  sleep (install)\n"), "{text}");
}

#[test]
fn a_replaced_plugin_file_reinstalls_only_when_its_content_changed() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["a"], plugin-path = ["plugins"] }
a = { recipe = "testkit:lifecycle", path = "parts/a.txt" }
"#,
    );
    let so = "librbuildout_recipe_testkit.so";
    let place = |bytes: &[u8]| {
        let dest = inst.path("plugins").join(so);
        let _ = std::fs::remove_file(&dest);
        std::fs::create_dir_all(inst.path("plugins")).unwrap();
        std::fs::write(&dest, bytes).unwrap();
    };
    let original = std::fs::read(test_plugins_dir().join(so)).unwrap();
    place(&original);
    inst.ok(&["-j", "1"]);
    let recipe = |inst: &Instance| {
        part(&inst.state(), "a")["recipe"]
            .as_table()
            .unwrap()
            .clone()
    };
    let first = recipe(&inst);

    // The same bytes in a new file: same code, so no reinstall; the new stamp is recorded.
    place(&original);
    assert_eq!(inst.ok(&["plan"]).stdout, "update     a  (unchanged)\n");
    inst.ok(&["-j", "1"]);
    let second = recipe(&inst);
    assert_eq!(second["digest"], first["digest"]);
    assert_ne!(second["stamp"], first["stamp"]);
    assert_eq!(inst.log("lifecycle.log"), ["install a", "update a"]);

    // Other bytes: another digest, so the part is reinstalled.
    let mut changed = original.clone();
    changed.extend_from_slice(b"\0rebuilt");
    place(&changed);
    let plan = inst.ok(&["plan"]).stdout;
    assert!(
        plan.starts_with("uninstall  a  (plugin testkit 0.1.0 was rebuilt: digest "),
        "{plan}"
    );
    inst.ok(&["-j", "1"]);
    assert_ne!(recipe(&inst)["digest"], first["digest"]);
    assert_eq!(
        inst.log("lifecycle.log"),
        ["install a", "update a", "uninstall a", "install a"]
    );
}

#[test]
fn a_nested_build_is_its_own_instance_sharing_the_eggs_folder() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["release"], eggs-directory = "shared-eggs" }
release = { recipe = "testkit:nested", config = "release.toml", directory = "code/r1" }
"#,
    );
    std::fs::write(
        inst.path("release.toml"),
        r#"
buildout = { parts = ["app"] }

[app]
recipe = "testkit:file"
path = "parts/app.txt"
content = "${buildout:instance-directory} ${buildout:eggs-directory}"
"#,
    )
    .unwrap();
    inst.ok(&[]);
    let release = inst.path("code/r1");
    assert_eq!(
        inst.read("code/r1/parts/app.txt"),
        format!(
            "{} {}",
            inst.dir().display(),
            inst.path("shared-eggs").display()
        )
    );
    let nested: toml::Table = std::fs::read_to_string(release.join(".installed.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        strings(&nested["order"]),
        ["app"],
        "the release keeps its own state"
    );
    assert_eq!(inst.installed(), ["release"]);
    assert!(
        part(&inst.state(), "release")["paths"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn recipes_read_options_and_outputs_of_other_sections_through_the_host() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["a", "q", "missing", "ctx"] }
settings = { greeting = ["hello", "world"] }
a = { recipe = "testkit:file", path = "parts/a.txt" }
q = { recipe = "testkit:option", ref = "a:written", needs = ["a"] }
missing = { recipe = "testkit:option", ref = "settings:nosuch" }
ctx = { recipe = "testkit:context" }
"#,
    );
    inst.ok(&["-o"]);
    let state = inst.state();
    let written = inst.path("parts/a.txt").display().to_string();
    assert_eq!(
        part(&state, "q")["outputs"]["value"].as_str(),
        Some(written.as_str())
    );
    assert_eq!(
        part(&state, "missing")["outputs"]["found"].as_str(),
        Some("false")
    );
    let ctx = part(&state, "ctx")["outputs"].as_table().unwrap();
    assert_eq!(ctx["part"].as_str(), Some("ctx"));
    assert_eq!(ctx["offline"].as_str(), Some("true"));
    assert_eq!(ctx["newest"].as_str(), Some("false"));
    assert_eq!(
        ctx["directory"].as_str(),
        Some(inst.dir().display().to_string().as_str())
    );

    inst.config(
        &inst
            .read("buildout.toml")
            .replace("ref = \"settings:nosuch\"", "ref = \"settings:greeting\""),
    );
    inst.ok(&[]);
    let state = inst.state();
    assert_eq!(
        part(&state, "missing")["outputs"]["value"].as_str(),
        Some("hello\nworld")
    );
}

/// ABI 1.4 `prepare`: before any part installs, what a part to install prepares is
/// published, so a part installed before it reads it; an unchanged part is not prepared
/// again, its recorded outputs stand in; registering a path while preparing fails the run
/// before anything is installed.
#[test]
fn prepared_outputs_are_there_before_any_part_installs() {
    let config = r#"
buildout = { parts = ["reader", "p"] }
reader = { recipe = "testkit:option", ref = "p:early" }
p = { recipe = "testkit:prepared", value = "VALUE" }
"#;
    let inst = Instance::new(config);
    inst.ok(&[]);
    let value = |inst: &Instance| {
        part(&inst.state(), "reader")["outputs"]["value"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(inst.installed(), ["reader", "p"]);
    assert_eq!(value(&inst).as_deref(), Some("VALUE"));
    assert_eq!(
        part(&inst.state(), "p")["outputs"]["early"].as_str(),
        Some("VALUE")
    );
    assert_eq!(inst.log("prepared.log"), ["prepare p"]);

    // `p` unchanged: not prepared again; `reader`, changed, still sees its output.
    inst.config(&config.replace("ref = \"p:early\"", "ref = \"p:early\", x = \"1\""));
    inst.ok(&[]);
    assert_eq!(value(&inst).as_deref(), Some("VALUE"));
    assert_eq!(inst.log("prepared.log"), ["prepare p"]);

    let bad = Instance::new(&config.replace("value = \"VALUE\"", "register-early = \"yes\""));
    let run = bad.fails(&[], 1);
    assert!(
        run.stderr.contains("registered") && run.stderr.contains("while preparing"),
        "{}",
        run.stderr
    );
    // Nothing installed, nothing recorded.
    assert!(!bad.path(".installed.toml").exists(), "{}", run.stderr);
    assert!(!bad.path("early.txt").exists());
}

#[test]
fn a_recipe_registering_a_million_paths_and_a_hundred_thousand_outputs_is_recorded_whole() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["many", "last"] }
many = { recipe = "testkit:million", paths = "1000000", outputs = "100000" }
last = { recipe = "testkit:file", path = "parts/last.txt", content = "${many:o99999}" }
"#,
    );
    inst.ok(&[]);
    assert_eq!(inst.read("parts/last.txt"), "99999");
    let state = inst.state();
    let many = part(&state, "many");
    let paths = many["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 1_000_000);
    assert_eq!(paths[999_999].as_str(), Some("million/999999"));
    assert_eq!(many["outputs"].as_table().unwrap().len(), 100_000);
    // The registered paths never existed, so every run reinstalls the part: with its
    // outputs unchanged, the dependent stays as it is.
    let before = identity(&inst.path("parts/last.txt"));
    let plan = inst.ok(&["plan"]).stdout;
    assert!(
        plan.starts_with("uninstall  many  (path million/0 is missing)\n"),
        "{plan}"
    );
    inst.ok(&[]);
    assert_eq!(identity(&inst.path("parts/last.txt")), before);
}

#[test]
fn a_plugins_digest_is_kept_across_runs_by_file_identity_and_taken_again_when_it_changes() {
    use sha2::Digest as _;
    let inst = Instance::new(
        r#"
buildout = { parts = ["a"] }
a = { recipe = "./plugins/librbuildout_recipe_testkit.so:file", path = "parts/a.txt", content = "A" }
"#,
    );
    std::fs::create_dir_all(inst.path("plugins")).unwrap();
    let so = inst.path("plugins/librbuildout_recipe_testkit.so");
    std::fs::copy(
        test_plugins_dir().join("librbuildout_recipe_testkit.so"),
        &so,
    )
    .unwrap();
    let sha = rbuildout_tests::pyindex::hex(&sha2::Sha256::digest(std::fs::read(&so).unwrap()));
    let recorded = |inst: &Instance| {
        part(&inst.state(), "a")["recipe"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    inst.ok(&[]);
    assert_eq!(recorded(&inst), sha);
    // The digest is kept under the download cache, beside the library's path and stamp.
    let digests = inst.path(".home/.cache/rbuildout/digests");
    let entries: Vec<_> = std::fs::read_dir(&digests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("/plugins/librbuildout_recipe_testkit.so\n")
        })
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let kept = std::fs::read_to_string(entry).unwrap();
    assert!(kept.ends_with(&format!("\n{sha}\n")), "{kept}");

    // With no state to take it from, a later run believes the cache while the file is the
    // same: a planted digest shows that the file was not hashed again.
    let planted = "0123456789abcdef".repeat(4);
    std::fs::write(entry, kept.replace(&sha, &planted)).unwrap();
    std::fs::remove_file(inst.path(".installed.toml")).unwrap();
    inst.ok(&[]);
    assert_eq!(recorded(&inst), planted);

    // A new modification time is another file: hashed again, and the entry replaced.
    let file = std::fs::File::options().write(true).open(&so).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);
    inst.ok(&[]);
    assert_eq!(recorded(&inst), sha);
    let kept = std::fs::read_to_string(entry).unwrap();
    assert!(kept.ends_with(&format!("\n{sha}\n")), "{kept}");

    // A damaged cache is a miss, never an error.
    std::fs::write(entry, "not a cache\n").unwrap();
    std::fs::remove_file(inst.path(".installed.toml")).unwrap();
    inst.ok(&[]);
    assert_eq!(recorded(&inst), sha);
}

#[test]
fn a_legacy_cfg_instance_goes_through_the_same_lifecycle() {
    let inst = Instance::new("");
    std::fs::remove_file(inst.path("buildout.toml")).unwrap();
    let cfg = |x: &str| {
        format!(
            "[buildout]\nparts = a b\n\n[a]\nrecipe = testkit:file\npath = parts/a.txt\n\
             publish-x = {x}\n\n[b]\nrecipe = testkit:lifecycle\npath = parts/b.txt\n\
             content = x is ${{a:x}}\n"
        )
    };
    std::fs::write(inst.path("buildout.cfg"), cfg("1")).unwrap();
    inst.ok(&[]);
    assert_eq!(inst.read("parts/b.txt"), "x is 1");
    let text = inst.state_text();
    inst.ok(&[]);
    assert_eq!(inst.state_text(), text);
    std::fs::write(inst.path("buildout.cfg"), cfg("2")).unwrap();
    inst.ok(&[]);
    assert_eq!(inst.read("parts/b.txt"), "x is 2");
    assert_eq!(
        inst.log("lifecycle.log"),
        ["install b", "update b", "uninstall b", "install b"]
    );
}

#[test]
fn a_part_whose_plugin_is_gone_is_still_uninstalled_without_its_hook() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["u"] }
u = { recipe = "./plugins/librbuildout_recipe_testkit.so:uninstallable", path = "parts/u.txt" }
"#,
    );
    std::fs::create_dir_all(inst.path("plugins")).unwrap();
    let so = "librbuildout_recipe_testkit.so";
    std::fs::copy(test_plugins_dir().join(so), inst.path("plugins").join(so)).unwrap();
    inst.ok(&[]);
    assert!(inst.exists("parts/u.txt"));

    std::fs::remove_dir_all(inst.path("plugins")).unwrap();
    inst.config("[buildout]\nparts = []\n");
    let r = inst.ok(&[]);
    r.stderr_has("cannot load recipe");
    assert!(
        !inst.exists("parts/u.txt"),
        "its paths are removed all the same"
    );
    assert!(
        inst.log("uninstall.log").is_empty(),
        "the hook could not run"
    );
    assert!(inst.installed().is_empty());
}

#[test]
fn a_broken_state_file_is_reported_naming_it() {
    let inst = Instance::new(TWO_FILES);
    std::fs::write(inst.path(".installed.toml"), "order = [\n").unwrap();
    let r = inst.fails(&[], 1);
    r.stderr_has("the state file");
    r.stderr_has(".installed.toml");
    r.stderr_has("delete it to reinstall every part");
    assert!(!inst.exists("parts/a.txt"), "nothing ran");
}

#[test]
fn develop_recipes_builds_a_recipe_crate_and_puts_it_first_in_the_plugin_path() {
    let hello = rbuildout_tests::repo_root().join("examples/hello-recipe");
    let inst = Instance::new(&format!(
        r#"
buildout = {{ parts = ["greet"], develop-recipes = ["{}"] }}
greet = {{ recipe = "hello", greeting = "hi" }}
"#,
        hello.display()
    ));
    let r = inst.ok(&[]);
    r.stderr_has("building recipe crate");
    assert_eq!(inst.read("greet.txt"), "hi, greet!\n");
    let recipe = part(&inst.state(), "greet")["recipe"]
        .as_table()
        .unwrap()
        .clone();
    assert_eq!(recipe["plugin"].as_str(), Some("hello"));

    inst.config("[buildout]\nparts = []\ndevelop-recipes = [\"no/such/crate\"]\n");
    let r = inst.fails(&[], 1);
    r.stderr_has("no/such/crate");
    assert!(inst.exists("greet.txt"), "nothing ran");
}

#[test]
fn a_link_where_the_bin_folder_goes_is_left_to_its_recipe() {
    let inst = Instance::new(TWO_FILES);
    // `bin -> code/current/bin` before the first release exists: dangling.
    std::os::unix::fs::symlink("code/current/bin", inst.path("bin")).unwrap();
    inst.ok(&[]);
    let meta = inst.path("bin").symlink_metadata().unwrap();
    assert!(meta.file_type().is_symlink(), "the link was not replaced");
    assert_eq!(
        std::fs::read_link(inst.path("bin")).unwrap(),
        Path::new("code/current/bin")
    );
    assert_eq!(inst.installed(), ["a", "b"]);
}

/// `run_end` (ABI 1.3): each plugin the run loaded hears once that the run has finished,
/// after its last part; a nested build is a run of its own, told with its own directory; a
/// failed run says so.
#[test]
fn plugins_hear_the_end_of_each_run_after_its_parts() {
    let config = |b: &str| {
        format!(
            r#"
buildout = {{ parts = ["a", "release", "b"] }}
a = {{ recipe = "testkit:lifecycle", path = "parts/a.txt" }}
release = {{ recipe = "testkit:nested", config = "release.toml", directory = "code/r1" }}
b = {{ recipe = "{b}", path = "parts/b.txt" }}
"#
        )
    };
    let inst = Instance::new(&config("testkit:lifecycle"));
    inst.write(
        "release.toml",
        "buildout = { parts = [\"x\"] }\nx = { recipe = \"testkit:lifecycle\", path = \"parts/x.txt\" }\n",
    );
    inst.write("run-end.marker", "");
    inst.write("code/r1/run-end.marker", "");
    inst.ok(&["-j", "1"]);
    assert_eq!(
        inst.log("lifecycle.log"),
        ["install a", "install b", "run-end ok=true"]
    );
    assert_eq!(
        inst.log("code/r1/lifecycle.log"),
        ["install x", "run-end ok=true"]
    );
    inst.config(&config("testkit:error"));
    inst.fails(&["-j", "1"], 1);
    assert_eq!(
        inst.log("lifecycle.log").last().map(String::as_str),
        Some("run-end ok=false")
    );
}
