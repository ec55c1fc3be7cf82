//! What people and scripts read (docs/output.md): one line per part and action by default,
//! a summary, tracing's spans only at `-v`, `install --json`, and `status`.

use rbuildout_tests::{Instance, Run};
use serde_json::Value;

const TWO: &str = r#"
buildout = { parts = ["a", "b"] }
a = { recipe = "testkit:file", path = "parts/a.txt", content = "A" }
b = { recipe = "testkit:updatable", path = "parts/b.txt", content = "B" }
"#;

/// The lines of stderr, in order.
/// The `symlink` part `code`: release `r1` of `release.toml` ([`write_release`]).
const CODE: &str = "[code]\nrecipe = \"symlink\"\nrevision = \"r1\"\nconfig = \"release.toml\"\n";

/// The release config: one `mkdir` part.
fn write_release(inst: &Instance) {
    inst.write(
        "release.toml",
        "buildout = { parts = [\"app\"] }\napp = { recipe = \"mkdir\", paths = [\"bin\"] }\n",
    );
}

fn lines(run: &Run) -> Vec<&str> {
    run.stderr.lines().collect()
}

/// The last line of stderr (the summary) without its duration, which varies.
fn summary(run: &Run) -> String {
    let last = run.stderr.lines().last().unwrap_or_default();
    match last.rsplit_once(" in ") {
        Some((head, time)) if time.ends_with('s') => head.to_owned(),
        _ => last.to_owned(),
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON on stdout ({e}):\n{}", run.stdout))
}

#[test]
fn each_part_and_action_is_one_line_then_a_summary() {
    let inst = Instance::new(TWO);
    let run = inst.ok(&[]);
    assert_eq!(
        lines(&run)[..2],
        ["  Installing a", "  Installing b"],
        "{}",
        run.stderr
    );
    assert_eq!(
        summary(&run),
        "    Finished 2 installed, 0 reinstalled, 0 updated, 0 uninstalled, 0 unchanged"
    );
    assert_eq!(lines(&run).len(), 3, "{}", run.stderr);

    let run = inst.ok(&[]);
    assert_eq!(
        lines(&run)[..2],
        ["   Unchanged a", "    Updating b"],
        "{}",
        run.stderr
    );

    inst.config(
        r#"
buildout = { parts = ["b"] }
b = { recipe = "testkit:updatable", path = "parts/b.txt", content = "B2" }
"#,
    );
    let run = inst.ok(&[]);
    assert_eq!(
        lines(&run)[..2],
        // Uninstalls first, in reverse of the install order.
        [
            "Reinstalling b (option `content` changed: \"B2\" != \"B\")",
            "Uninstalling a (no longer a part)"
        ],
        "{}",
        run.stderr
    );
    assert_eq!(
        summary(&run),
        "    Finished 0 installed, 1 reinstalled, 0 updated, 1 uninstalled, 0 unchanged"
    );
    // No tracing levels, spans or fields by default.
    assert!(!run.stderr.contains("INFO"), "{}", run.stderr);
    assert!(!run.stderr.contains("part{"), "{}", run.stderr);
}

#[test]
fn spans_and_fields_show_at_verbose() {
    let inst = Instance::new(TWO);
    let run = inst.ok(&["-v"]);
    run.stderr_has("INFO part{part=a}: installing");
    run.stderr_has("part{part=b}");
}

#[test]
fn a_recipe_warning_shows_by_default_with_its_part_and_info_does_not() {
    let config = r#"
buildout = { parts = ["talk"] }
talk = { recipe = "testkit:log", message = "psst" }
"#;
    let run = Instance::new(config).ok(&[]);
    assert!(
        lines(&run).contains(&"warning: [talk] context warn: psst"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("context info"), "{}", run.stderr);
    // `-q` keeps the warning and drops the progress lines.
    let run = Instance::new(config).ok(&["-q"]);
    run.stderr_has("warning: [talk] context warn: psst");
    assert!(!run.stderr.contains("Finished"), "{}", run.stderr);
}

#[test]
fn a_nested_build_names_its_parts_under_the_outer_part() {
    let inst = Instance::new(&format!(
        r#"
[buildout]
parts = ["code"]

{CODE}"#
    ));
    write_release(&inst);
    let run = inst.ok(&[]);
    assert_eq!(
        lines(&run)[..2],
        ["  Installing code", "  Installing code/app"],
        "{}",
        run.stderr
    );
}

#[test]
fn install_json_says_what_changed_and_a_second_run_changes_nothing() {
    let inst = Instance::new(TWO);
    let first = json(&inst.ok(&["install", "--json"]));
    assert_eq!(first["version"], 1);
    assert_eq!(first["changed"], true);
    assert_eq!(first["state_written"], true);
    assert_eq!(
        first["parts"],
        serde_json::json!([
            {"part": "a", "action": "install", "reason": "new part", "changed": true},
            {"part": "b", "action": "install", "reason": "new part", "changed": true},
        ])
    );

    let second = json(&inst.ok(&["install", "--json"]));
    assert_eq!(second["changed"], false, "{second}");
    assert_eq!(second["state_written"], false);
    assert_eq!(
        second["parts"],
        serde_json::json!([
            {"part": "a", "action": "unchanged", "reason": "unchanged", "changed": false},
            {"part": "b", "action": "update", "reason": "unchanged", "changed": false},
        ])
    );

    inst.config(
        r#"
buildout = { parts = ["b"] }
b = { recipe = "testkit:updatable", path = "parts/b.txt", content = "B2" }
"#,
    );
    let third = json(&inst.ok(&["install", "--json"]));
    assert_eq!(third["changed"], true);
    let actions: Vec<(&str, &str, bool)> = third["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["part"].as_str().unwrap(),
                p["action"].as_str().unwrap(),
                p["changed"].as_bool().unwrap(),
            )
        })
        .collect();
    // In the order the parts were done: `b`'s install comes after `a`'s uninstall.
    assert_eq!(
        actions,
        [("a", "uninstall", true), ("b", "reinstall", true)]
    );
    assert_eq!(
        third["parts"][1]["reason"],
        "option `content` changed: \"B2\" != \"B\""
    );
    // A failed run prints no summary on stdout; its exit code says it failed.
    inst.config("buildout = { parts = [\"x\"] }\nx = { recipe = \"testkit:error\" }\n");
    let failed = inst.fails(&["install", "--json"], 1);
    assert_eq!(failed.stdout, "");
}

#[test]
fn status_shows_parts_recipes_outputs_and_releases() {
    let inst = Instance::new(&format!(
        r#"
[buildout]
parts = ["a", "code"]

[a]
recipe = "testkit:file"
path = "parts/a.txt"
content = "A"

{CODE}"#
    ));
    write_release(&inst);
    let empty = inst.ok(&["status"]);
    assert_eq!(empty.stdout, "nothing installed\n");
    inst.ok(&[]);
    inst.ok(&["code:revision=r2"]);
    inst.ok(&["code:revision=r3"]);
    inst.ok(&["code:revision=previous"]);
    let state_before = inst.state_text();

    let status = json(&inst.ok(&["status", "--json"]));
    let parts = status["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["part"], "a");
    assert_eq!(parts[0]["recipe"]["plugin"], "testkit");
    assert_eq!(parts[0]["recipe"]["entry"], "file");
    assert_eq!(parts[0]["paths"], serde_json::json!(["parts/a.txt"]));
    assert!(
        parts[0]["modified"]
            .as_str()
            .is_some_and(|m| m.len() == 20 && m.ends_with('Z')),
        "{status}"
    );
    assert_eq!(
        parts[0]["outputs"]["written"],
        inst.path("parts/a.txt").display().to_string()
    );
    let code = &parts[1];
    assert_eq!(code["recipe"]["plugin"], "symlink");
    assert_eq!(code["outputs"]["release"], "r2");
    let releases = &code["releases"];
    assert_eq!(releases["current"], "r2");
    assert_eq!(releases["previous"], "r3");
    assert_eq!(releases["kept"], serde_json::json!(["r1"]));
    assert_eq!(
        releases["history"],
        serde_json::json!(["r1", "r2", "r3", "r2"])
    );

    let text = inst.ok(&["status"]).stdout;
    assert!(text.contains("code  symlink:default "), "{text}");
    assert!(
        text.contains("    current: r2, previous: r3, kept: r1\n    history: r1 r2 r3 r2\n"),
        "{text}"
    );
    assert!(text.contains("    release = r2\n"), "{text}");
    // Read-only: the state is as it was.
    assert_eq!(inst.state_text(), state_before);
}

/// `rbuildout -U` in `inst` on a pseudo-terminal (util-linux `script`), with `NO_COLOR` set
/// to `no_color`; what the terminal showed.
fn on_terminal(inst: &Instance, no_color: &str) -> String {
    let command = format!("{} -U", rbuildout_tests::rbuildout_bin().display());
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(inst.dir())
        .env("RBUILDOUT_PLUGIN_PATH", rbuildout_tests::plugin_path())
        .env("RBUILDOUT_HOME", inst.path(".home"))
        .env("HOME", inst.path(".home"))
        .env("NO_COLOR", no_color)
        .output()
        .expect("run script (util-linux)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    let inst = Instance::new(TWO);
    let shown = on_terminal(&inst, "");
    assert!(
        shown.contains("\x1b[1;32m  Installing\x1b[0m a"),
        "{shown:?}"
    );
    let inst = Instance::new(TWO);
    let shown = on_terminal(&inst, "1");
    assert!(shown.contains("  Installing a"), "{shown:?}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    // Not a terminal: no colour even without NO_COLOR.
    let inst = Instance::new(TWO);
    let run = Run::of(inst.command(&[]).env_remove("NO_COLOR"));
    assert!(run.stderr.contains("  Installing a") && !run.stderr.contains('\x1b'));
}

/// A part whose recipe runs for a while without reporting progress gets, on a terminal, a
/// bar of the time it has taken, gone before the summary; piped, nothing of it shows.
#[test]
fn a_long_part_that_reports_nothing_shows_its_time_on_a_terminal() {
    let config = r#"
buildout = { parts = ["quick", "slow"] }
quick = { recipe = "testkit:file", path = "quick.txt" }
slow = { recipe = "testkit:sleep", seconds = "2.5" }
"#;
    let inst = Instance::new(config);
    let (code, screen) = rbuildout_tests::in_terminal(inst.command(&[]));
    assert_eq!(code, 0, "{screen}");
    // The running part's bar, with its time; none for the quick one.
    assert!(
        screen.contains("        slow [") && screen.contains("] running 1s"),
        "{screen:?}"
    );
    assert!(!screen.contains("       quick ["), "{screen:?}");
    // Taken off the screen before the summary.
    let finished = screen.rfind("Finished").expect("a summary");
    let last_bar = screen.rfind("] running ").unwrap();
    assert!(last_bar < finished, "{screen:?}");
    assert!(screen[last_bar..finished].contains("\x1b[J"), "{screen:?}");

    let piped = Instance::new(config);
    let run = piped.ok(&[]);
    assert!(
        !run.stderr.contains("running") && !run.stderr.contains('\x1b'),
        "{}",
        run.stderr
    );
}
