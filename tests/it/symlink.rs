//! End-to-end tests of the `symlink` recipe: releases built as nested buildouts with the
//! testkit plugin, switched, rolled back, pruned, uninstalled, and killed mid-upgrade.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rbuildout_tests::{Instance, mtime};

/// A release config whose part writes `bin/app` naming the release's folder.
const RELEASE: &str = r#"
buildout = { parts = ["app"] }
app = { recipe = "testkit:file", path = "bin/app", content = "app of ${buildout:directory}" }
"#;

/// A release config that fails to build.
const BAD_RELEASE: &str = r#"
buildout = { parts = ["app", "broken"] }
app = { recipe = "testkit:file", path = "bin/app", content = "app of ${buildout:directory}" }
broken = { recipe = "testkit:error", message = "the release is broken" }
"#;

fn config(revision: &str, extra: &str) -> String {
    format!(
        r#"
[buildout]
parts = ["code"]

[code]
recipe = "symlink"
revision = "{revision}"
config = "release.toml"
links = ["bin = code/current/bin"]
{extra}
"#
    )
}

fn instance(revision: &str, extra: &str) -> Instance {
    let inst = Instance::new(&config(revision, extra));
    inst.write("release.toml", RELEASE);
    inst
}

fn link(inst: &Instance, rel: &str) -> PathBuf {
    std::fs::read_link(inst.path(rel)).unwrap_or_else(|e| panic!("read link {rel}: {e}"))
}

fn current(inst: &Instance) -> String {
    link(inst, "code/current").display().to_string()
}

fn marker(inst: &Instance, revision: &str) -> String {
    inst.read(&format!("code/{revision}/.rbuildout-release"))
}

fn history(inst: &Instance) -> Vec<String> {
    inst.read("code/history")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn releases(inst: &Instance) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(inst.path("code"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('r'))
        .collect();
    names.sort();
    names
}

#[test]
fn install_upgrade_and_roll_back_without_building() {
    let inst = instance("r1", "");
    inst.ok(&[]);
    assert_eq!(marker(&inst, "r1"), "good\n");
    assert_eq!(current(&inst), "r1", "the link is relative");
    assert_eq!(link(&inst, "bin"), Path::new("code/current/bin"));
    let r1 = inst.path("code/r1");
    assert_eq!(inst.read("bin/app"), format!("app of {}", r1.display()));
    assert_eq!(history(&inst), ["r1"]);
    let state = inst.state();
    let part = state["parts"]["code"].as_table().unwrap();
    assert!(
        part["paths"].as_array().unwrap().is_empty(),
        "no release or link is registered"
    );
    assert_eq!(part["outputs"]["path"].as_str(), Some(r1.to_str().unwrap()));
    assert_eq!(part["outputs"]["release"].as_str(), Some("r1"));

    // An unchanged re-run builds nothing and appends nothing.
    let nested_state = inst.path("code/r1/.installed.toml");
    let before = (mtime(&nested_state), mtime(&inst.path("code/r1/bin/app")));
    inst.ok(&[]);
    assert_eq!(history(&inst), ["r1"]);

    inst.write("buildout.toml", &config("r2", ""));
    inst.ok(&[]);
    assert_eq!(current(&inst), "r2");
    assert_eq!(marker(&inst, "r2"), "good\n");
    assert_eq!(
        inst.read("bin/app"),
        format!("app of {}", inst.path("code/r2").display())
    );
    assert_eq!(releases(&inst), ["r1", "r2"], "the old release is kept");
    assert_eq!(history(&inst), ["r1", "r2"]);

    // Rolling back: no build (the release's files and nested state are untouched).
    inst.ok(&["code:revision=previous"]);
    assert_eq!(current(&inst), "r1");
    assert_eq!(inst.read("bin/app"), format!("app of {}", r1.display()));
    assert_eq!(
        (mtime(&nested_state), mtime(&inst.path("code/r1/bin/app"))),
        before,
        "switching to a kept release builds nothing"
    );
    assert_eq!(history(&inst), ["r1", "r2", "r1"]);
    assert_eq!(
        inst.state()["parts"]["code"]["outputs"]["release"].as_str(),
        Some("r1")
    );
    // The same command again keeps the rollback rather than toggling back.
    inst.ok(&["code:revision=previous"]);
    assert_eq!(current(&inst), "r1");
    assert_eq!(history(&inst), ["r1", "r2", "r1"]);

    // The config still says r2: a plain run goes there again, without building.
    let r2_state = mtime(&inst.path("code/r2/.installed.toml"));
    inst.ok(&[]);
    assert_eq!(current(&inst), "r2");
    assert_eq!(mtime(&inst.path("code/r2/.installed.toml")), r2_state);
    assert_eq!(history(&inst), ["r1", "r2", "r1", "r2"]);
}

#[test]
fn a_failed_release_never_becomes_current_and_is_rebuilt_next_time() {
    let inst = instance("r1", "");
    inst.ok(&[]);
    inst.write("release.toml", BAD_RELEASE);
    inst.write("buildout.toml", &config("r2", ""));
    let run = inst.fails(&[], 1);
    assert!(
        run.stderr.contains("release `r2` failed to build")
            && run.stderr.contains("the release is broken")
            && run.stderr.contains("`current` still points at `r1`"),
        "{}",
        run.stderr
    );
    assert_eq!(current(&inst), "r1");
    assert_eq!(marker(&inst, "r2"), "failed\n");
    assert_eq!(
        inst.read("bin/app"),
        format!("app of {}", inst.path("code/r1").display())
    );
    assert_eq!(history(&inst), ["r1"]);
    // `previous` only ever picks good releases.
    let run = inst.fails(&["code:revision=previous"], 1);
    run.stderr_has("names no good release");
    assert_eq!(current(&inst), "r1");

    // Fixed: the same revision is built again in place and activated.
    inst.write("release.toml", RELEASE);
    inst.ok(&[]);
    assert_eq!(current(&inst), "r2");
    assert_eq!(marker(&inst, "r2"), "good\n");
    assert_eq!(history(&inst), ["r1", "r2"]);
}

#[test]
fn pruning_keeps_current_previous_and_ignores_failed_releases() {
    let keep = "keep = 1";
    let inst = instance("r1", keep);
    for revision in ["r1", "r2", "r3"] {
        inst.write("buildout.toml", &config(revision, keep));
        inst.ok(&[]);
    }
    assert_eq!(current(&inst), "r3");
    assert_eq!(releases(&inst), ["r2", "r3"], "keep 1 besides current");

    inst.ok(&["code:revision=previous"]);
    assert_eq!(current(&inst), "r2");
    assert_eq!(releases(&inst), ["r2", "r3"]);

    inst.write("buildout.toml", &config("r4", keep));
    inst.ok(&[]);
    assert_eq!(history(&inst), ["r1", "r2", "r3", "r2", "r4"]);
    assert_eq!(
        releases(&inst),
        ["r2", "r4"],
        "the previous one by history stays, the older r3 goes"
    );

    // A failed build neither counts against keep nor removes anything.
    inst.write("release.toml", BAD_RELEASE);
    inst.write("buildout.toml", &config("r5", keep));
    inst.fails(&[], 1);
    assert_eq!(current(&inst), "r4");
    assert_eq!(releases(&inst), ["r2", "r4", "r5"]);

    // keep = 0 still keeps the previous release; the failed one is cleaned up.
    inst.write("release.toml", RELEASE);
    inst.write("buildout.toml", &config("r6", "keep = 0"));
    inst.ok(&[]);
    assert_eq!(current(&inst), "r6");
    assert_eq!(releases(&inst), ["r4", "r6"]);
    let leftovers: Vec<_> = std::fs::read_dir(inst.path("code"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn uninstalling_removes_the_links_and_never_a_release() {
    let inst = instance("r1", "");
    inst.ok(&[]);
    inst.write("buildout.toml", &config("r2", ""));
    inst.ok(&[]);
    inst.write("buildout.toml", "[buildout]\nparts = []\n");
    inst.ok(&[]);
    assert!(!inst.exists("code/current"));
    assert!(!inst.exists("bin"));
    assert_eq!(releases(&inst), ["r1", "r2"]);
    assert_eq!(marker(&inst, "r1"), "good\n");
    assert_eq!(history(&inst), ["r1", "r2"]);

    // Back again: the kept release is activated without a build.
    let nested = mtime(&inst.path("code/r2/.installed.toml"));
    inst.write("buildout.toml", &config("r2", ""));
    inst.ok(&[]);
    assert_eq!(current(&inst), "r2");
    assert_eq!(mtime(&inst.path("code/r2/.installed.toml")), nested);
}

#[test]
fn renamed_links_replace_the_old_ones() {
    let inst = instance("r1", "");
    inst.ok(&[]);
    inst.write(
        "buildout.toml",
        &config("r1", "link = \"live\"").replace("bin = code/current/bin", "tools = code/live/bin"),
    );
    inst.ok(&[]);
    assert!(!inst.exists("code/current"));
    assert!(!inst.exists("bin"));
    assert_eq!(link(&inst, "code/live"), Path::new("r1"));
    assert_eq!(link(&inst, "tools"), Path::new("code/live/bin"));
    assert!(inst.read("tools/app").ends_with("code/r1"));
}

#[test]
fn the_instance_can_be_moved() {
    let inst = instance("r1", "");
    inst.ok(&[]);
    let moved = inst.dir().with_extension("moved");
    std::fs::rename(inst.dir(), &moved).unwrap();
    let app = std::fs::read_to_string(moved.join("bin/app"));
    std::fs::rename(&moved, inst.dir()).unwrap();
    assert!(app.unwrap().starts_with("app of "));
}

#[test]
fn bad_options_are_clear_errors() {
    let inst = instance("../r1", "");
    let run = inst.fails(&[], 1);
    run.stderr_has("option `revision`: `../r1` cannot name a release folder");
    inst.write("buildout.toml", &config("r1", "keep = \"many\""));
    let run = inst.fails(&[], 1);
    run.stderr_has("option `keep` must be a number of releases, not `many`");
    inst.write("buildout.toml", &config("previous", ""));
    let run = inst.fails(&[], 1);
    run.stderr_has("`previous`");
    assert!(!inst.exists("code/current"));
}

/// A release that takes a while to build, so a kill lands in the middle of it.
const SLOW_RELEASE: &str = r#"
buildout = { parts = ["slow", "app"] }
slow = { recipe = "testkit:sleep", seconds = "0.4" }

[app]
recipe = "testkit:file"
path = "bin/app"
content = "app of ${buildout:directory}"
needs = ["slow"]
"#;

/// `code/current` names a complete, good release.
fn assert_current_is_good(inst: &Instance, when: &str) -> String {
    let revision = current(inst);
    assert_eq!(marker(inst, &revision), "good\n", "{when}");
    assert!(
        inst.read("bin/app").ends_with(&format!("code/{revision}")),
        "{when}"
    );
    revision
}

#[test]
fn killing_an_upgrade_at_any_moment_leaves_a_good_current_and_converges() {
    let inst = instance("r0", "keep = 2");
    inst.write("release.toml", SLOW_RELEASE);
    // Kills spread over the length of a whole build, however slow the machine is today.
    let started = std::time::Instant::now();
    inst.ok(&[]);
    let whole = started.elapsed().as_millis() as u64;
    let delays: Vec<u64> = [0, 5, 15, 30, 45, 60, 75, 90, 105]
        .iter()
        .map(|percent| whole * percent / 100)
        .collect();
    let mut mid_build = 0;
    for (i, delay) in delays.iter().enumerate() {
        let revision = format!("r{}", i + 1);
        inst.write("buildout.toml", &config(&revision, "keep = 2"));
        inst.kill_after(&[], Duration::from_millis(*delay));
        let when = format!("after kill -9 at {delay} ms");
        let marker_path = inst.path(&format!("code/{revision}/.rbuildout-release"));
        if std::fs::read_to_string(marker_path).is_ok_and(|m| m == "building\n") {
            mid_build += 1;
        }
        let seen = assert_current_is_good(&inst, &when);
        assert!(
            seen == revision || seen == format!("r{i}"),
            "{when}: {seen}"
        );
        inst.ok(&[]);
        assert_eq!(current(&inst), revision, "{when}: the next run converges");
        assert_current_is_good(&inst, &when);
        assert_eq!(history(&inst).last(), Some(&revision));
        let temp: Vec<_> = std::fs::read_dir(inst.path("code"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp") || n.starts_with(".pruning"))
            .collect();
        assert!(temp.is_empty(), "{when}: {temp:?}");
    }
    assert!(mid_build > 0, "no kill landed during a release build");
    assert_eq!(releases(&inst).len(), 3, "current plus keep = 2");
    assert_eq!(history(&inst).len(), delays.len() + 1);
}

#[test]
fn scripts_of_the_current_release_run_through_the_bin_link_after_a_move() {
    let inst = instance("r1", "");
    // A distribution in the instance, shared by the releases (as a shared eggs folder is).
    inst.write(
        "site/app-1.0/app/__init__.py",
        "import os, sys\n\ndef main():\n    release = os.path.realpath(sys.argv[0])\n    \
         print('app of', os.path.basename(os.path.dirname(os.path.dirname(release))))\n",
    );
    inst.write(
        "site/app-1.0/app-1.0.dist-info/entry_points.txt",
        "[console_scripts]\napp = app:main\n",
    );
    inst.write(
        "release.toml",
        r#"
buildout = { parts = ["scripts"] }

[scripts]
recipe = "scripts"
paths = ["${buildout:instance-directory}/site/app-1.0"]
relative-paths = true
"#,
    );
    let run_app = |dir: &Path| {
        let out = std::process::Command::new(dir.join("bin/app"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    inst.ok(&[]);
    assert_eq!(run_app(inst.dir()), "app of r1\n");
    assert!(
        inst.read("code/r1/bin/app")
            .contains("_rel('../../../site/app-1.0')")
    );
    inst.write("buildout.toml", &config("r2", ""));
    inst.ok(&[]);
    assert_eq!(run_app(inst.dir()), "app of r2\n");

    let moved = inst.dir().with_extension("moved");
    std::fs::rename(inst.dir(), &moved).unwrap();
    let after_move = std::panic::catch_unwind(|| run_app(&moved));
    std::fs::rename(&moved, inst.dir()).unwrap();
    assert_eq!(after_move.unwrap(), "app of r2\n");
}

/// A release config naming zc.buildout extensions fails its build, naming them: a nested
/// build does not run extensions, and does not ignore them either (docs/python-recipes.md).
#[test]
fn a_release_naming_extensions_fails_rather_than_running_without_them() {
    let inst = instance("r1", "");
    inst.write(
        "release.toml",
        &RELEASE.replace(
            "buildout = { parts = [\"app\"] }",
            "buildout = { parts = [\"app\"], extensions = [\"my.ext\"] }",
        ),
    );
    let run = inst.fails(&[], 1);
    run.stderr_has("buildout:extensions: my.ext: a nested build does not run extensions");
    assert!(!inst.path("code/r1/bin/app").exists());
}
