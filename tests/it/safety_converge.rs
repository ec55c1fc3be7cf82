//! A run killed with SIGKILL converges on the next run although the built-in recipes refuse
//! to replace a file they did not make (SPEC §3, issue 8 items 3 and 6): `template`,
//! `scripts` and `activate` adopt a file that already holds exactly what they would write
//! (what a kill between the write and the state save leaves), and still refuse a user's
//! file with another content; `symlink` builds again into a release folder a kill left
//! without its marker.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use rbuildout_tests::Instance;

const MINE: &str = "the user's own file\n";
const NOT_MADE: &str = "exists and was not made by this part; move it away";

/// The state a kill between a part's writes and the engine's state save leaves: the files
/// on disk, no record of them.
fn forget_the_state(inst: &Instance) {
    std::fs::remove_file(inst.path(".installed.toml")).unwrap();
}

/// The config of one part `part` (the section text follows `[buildout]`).
fn one_part(part: &str, section: &str) -> String {
    format!("[buildout]\nparts = [\"{part}\"]\n\n{section}")
}

fn template(text: &str) -> String {
    one_part(
        "conf",
        &format!(
            "[conf]\nrecipe = \"template\"\ninline = \"{text}\"\noutput = \"etc/app.conf\"\n\
             mode = \"0640\"\n"
        ),
    )
}

/// A scripts part with `count` console scripts `cmd0`.. and an interpreter `py`.
fn scripts(count: usize, module: &str) -> String {
    let entries: Vec<String> = (0..count)
        .map(|i| format!("\"cmd{i}={module}:main\""))
        .collect();
    one_part(
        "scripts",
        &format!(
            "[scripts]\nrecipe = \"scripts\"\npaths = []\npython = \"/usr/bin/python3\"\n\
             entry-points = [{}]\ninterpreter = \"py\"\n",
            entries.join(", ")
        ),
    )
}

fn activate(prompt: &str) -> String {
    one_part(
        "activate",
        &format!("[activate]\nrecipe = \"activate\"\nprompt = \"{prompt}\"\n"),
    )
}

fn mode(inst: &Instance, rel: &str) -> u32 {
    std::fs::symlink_metadata(inst.path(rel))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// The run fails for `part`, naming `rel` as not made by it, and leaves `rel` as `MINE`.
fn refused_and_intact(inst: &Instance, part: &str, rel: &str) {
    let run = inst.fails(&[], 1);
    let words = format!("{} {NOT_MADE}", inst.path(rel).display());
    assert!(
        run.stderr.contains(&words),
        "expected `{words}`:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains(part), "{}", run.stderr);
    assert_eq!(inst.read(rel), MINE, "the user's file is intact");
}

#[test]
fn template_adopts_its_own_output_after_a_kill_and_refuses_another_content() {
    let inst = Instance::new(&template("one"));
    inst.ok(&[]);
    forget_the_state(&inst);
    // The part's mode on the file it adopts.
    std::fs::set_permissions(
        inst.path("etc/app.conf"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    inst.ok(&[]);
    assert_eq!(inst.read("etc/app.conf"), "one");
    assert_eq!(mode(&inst, "etc/app.conf"), 0o640);
    assert_eq!(inst.installed(), ["conf"]);
    // The file is the part's again: a change of the text rewrites it.
    inst.config(&template("two"));
    inst.ok(&[]);
    assert_eq!(inst.read("etc/app.conf"), "two");

    // A user's file with another content: refused and intact.
    let inst = Instance::new(&template("one"));
    inst.write("etc/app.conf", MINE);
    refused_and_intact(&inst, "conf", "etc/app.conf");
    // The same content through a link is not a file of the part's either.
    std::fs::remove_file(inst.path("etc/app.conf")).unwrap();
    inst.write("elsewhere", "one");
    std::os::unix::fs::symlink("../elsewhere", inst.path("etc/app.conf")).unwrap();
    let run = inst.fails(&[], 1);
    assert!(run.stderr.contains(NOT_MADE), "{}", run.stderr);
    assert!(
        inst.path("etc/app.conf")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn scripts_adopt_the_scripts_a_killed_run_wrote_and_refuse_another_content() {
    let inst = Instance::new(&scripts(10, "mypkg"));
    inst.ok(&[]);
    // Killed after 3 of the 10 scripts: the others are not there, nothing is recorded.
    forget_the_state(&inst);
    for i in 3..10 {
        std::fs::remove_file(inst.path(&format!("bin/cmd{i}"))).unwrap();
    }
    std::fs::remove_file(inst.path("bin/py")).unwrap();
    std::fs::set_permissions(
        inst.path("bin/cmd0"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    inst.ok(&[]);
    for i in 0..10 {
        let script = format!("bin/cmd{i}");
        assert!(inst.read(&script).contains("mypkg.main()"), "{script}");
        assert_eq!(mode(&inst, &script), 0o755, "{script}");
    }
    assert!(inst.exists("bin/py"));
    assert_eq!(inst.installed(), ["scripts"]);
    // They are the part's again: another module rewrites every one.
    inst.config(&scripts(10, "other"));
    inst.ok(&[]);
    for i in 0..10 {
        assert!(inst.read(&format!("bin/cmd{i}")).contains("other.main()"));
    }

    // A user's script with another content: refused, intact, and none written.
    let inst = Instance::new(&scripts(10, "mypkg"));
    inst.write("bin/cmd5", MINE);
    refused_and_intact(&inst, "scripts", "bin/cmd5");
    assert!(
        !inst.exists("bin/cmd0"),
        "nothing is written before every check"
    );
}

#[test]
fn activate_adopts_its_own_scripts_after_a_kill_and_refuses_another_content() {
    let inst = Instance::new(&activate("app"));
    inst.ok(&[]);
    forget_the_state(&inst);
    std::fs::remove_file(inst.path("bin/activate.csh")).unwrap();
    inst.ok(&[]);
    for name in ["activate", "activate.fish", "activate.csh"] {
        assert!(inst.read(&format!("bin/{name}")).contains("app"), "{name}");
    }
    assert_eq!(inst.installed(), ["activate"]);
    inst.config(&activate("other"));
    inst.ok(&[]);
    for name in ["activate", "activate.fish", "activate.csh"] {
        assert!(
            inst.read(&format!("bin/{name}")).contains("other"),
            "{name}"
        );
    }

    let inst = Instance::new(&activate("app"));
    inst.write("bin/activate.fish", MINE);
    refused_and_intact(&inst, "activate", "bin/activate.fish");
    assert!(!inst.exists("bin/activate"));
}

#[test]
fn killing_a_run_that_writes_many_scripts_at_any_moment_converges() {
    const COUNT: usize = 200;
    let config = scripts(COUNT, "mypkg");
    // Kills spread over the length of a whole run, however slow the machine is today.
    let timed = Instance::new(&config);
    let started = std::time::Instant::now();
    timed.ok(&[]);
    let whole = started.elapsed().as_millis() as u64;
    let expected = timed.read("bin/cmd7");
    let mut unrecorded = 0;
    for percent in (0..=100).step_by(10) {
        let delay = whole * percent / 100;
        let inst = Instance::new(&config);
        inst.kill_after(&[], Duration::from_millis(delay));
        let when = format!("after kill -9 at {delay} ms of {whole}");
        let recorded = inst.exists(".installed.toml") && inst.state_text().contains("cmd0");
        if inst.exists("bin/cmd0") && !recorded {
            unrecorded += 1;
        }
        let run = inst.run(&[]);
        assert_eq!(
            run.code, 0,
            "{when}: the next run converges:\n{}",
            run.stderr
        );
        for i in 0..COUNT {
            assert!(inst.exists(&format!("bin/cmd{i}")), "{when}: cmd{i}");
        }
        assert_eq!(inst.read("bin/cmd7"), expected, "{when}");
        let left: Vec<String> = std::fs::read_dir(inst.path("bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{when}: {left:?}");
    }
    assert!(
        unrecorded > 0,
        "no kill landed between the writes and the state save"
    );
}

/// A symlink part building releases from `release.toml` into `code/<revision>`.
fn code(revision: &str) -> String {
    one_part(
        "code",
        &format!(
            "[code]\nrecipe = \"symlink\"\nrevision = \"{revision}\"\nconfig = \"release.toml\"\n"
        ),
    )
}

const RELEASE: &str = r#"
buildout = { parts = ["app"] }
app = { recipe = "testkit:file", path = "bin/app", content = "app of ${buildout:directory}" }
"#;

/// The names in the folder `rel`, sorted.
fn names(inst: &Instance, rel: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(inst.path(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_no_temp_file(inst: &Instance, rel: &str) {
    let names = names(inst, rel);
    assert!(
        !names.iter().any(|n| n.contains(".tmp")),
        "{rel}: {names:?}"
    );
}

#[test]
fn symlink_builds_again_into_a_release_folder_a_kill_left_without_its_marker() {
    let inst = Instance::new(&code("r1"));
    inst.write("release.toml", RELEASE);
    inst.ok(&[]);
    // What a kill while writing the first marker inside the folder left (rbuildout up to
    // issue 8): the folder holds only the marker's temp file.
    inst.write("code/r2/.rbuildout-release.tmp", "buil");
    inst.config(&code("r2"));
    inst.ok(&[]);
    assert_eq!(
        std::fs::read_link(inst.path("code/current"))
            .unwrap()
            .to_str(),
        Some("r2")
    );
    assert_eq!(inst.read("code/r2/.rbuildout-release"), "good\n");
    assert_no_temp_file(&inst, "code/r2");

    // What a kill while staging the marker leaves now: an empty release folder, the staged
    // marker and its temp file beside it. Built, and the leftovers go.
    std::fs::create_dir(inst.path("code/r3")).unwrap();
    inst.write("code/.r3.rbuildout-release.tmp", "buil");
    inst.write("code/.r3.rbuildout-release", "building\n");
    inst.config(&code("r3"));
    inst.ok(&[]);
    assert_eq!(inst.read("code/r3/.rbuildout-release"), "good\n");
    assert_no_temp_file(&inst, "code/r3");
    assert_eq!(
        names(&inst, "code"),
        ["current", "history", "r1", "r2", "r3"]
    );

    // A folder of the user's with anything else in it is still refused, and left alone.
    inst.write("code/r4/.rbuildout-release.tmp", "buil");
    inst.write("code/r4/notes", MINE);
    inst.config(&code("r4"));
    let run = inst.fails(&[], 1);
    let words = format!("{} {NOT_MADE}", inst.path("code/r4").display());
    assert!(
        run.stderr.contains(&words),
        "expected `{words}`:\n{}",
        run.stderr
    );
    assert_eq!(inst.read("code/r4/notes"), MINE);
    assert_eq!(names(&inst, "code/r4"), [".rbuildout-release.tmp", "notes"]);
    assert_eq!(
        std::fs::read_link(inst.path("code/current"))
            .unwrap()
            .to_str(),
        Some("r3")
    );
}
