//! The `mkdir` and `template` recipes end to end (SPEC §5.5): the real binary with the real
//! plugins, each test in its own instance.

use std::os::unix::fs::MetadataExt as _;

use rbuildout_tests::{Instance, identity};

fn mode(inst: &Instance, rel: &str) -> u32 {
    std::fs::metadata(inst.path(rel))
        .unwrap_or_else(|e| panic!("stat {rel}: {e}"))
        .mode()
        & 0o7777
}

const DIRS: &str = r#"
buildout = { parts = ["dirs"] }
dirs = { recipe = "mkdir", paths = "etc run tmp var/log", mode = "0750" }
"#;

const NO_PARTS: &str = "[buildout]\nparts = []\n";

#[test]
fn mkdir_creates_with_mode_and_keeps_what_it_did_not_create() {
    let inst = Instance::new(DIRS);
    std::fs::create_dir(inst.path("etc")).unwrap();
    std::fs::set_permissions(
        inst.path("etc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    inst.ok(&[]);
    for created in ["run", "tmp", "var", "var/log"] {
        assert_eq!(mode(&inst, created), 0o750, "{created}");
    }
    assert_eq!(
        mode(&inst, "etc"),
        0o755,
        "a folder it did not create keeps its mode"
    );
    // It registers nothing: the engine would remove folders recursively.
    let state = inst.state();
    assert_eq!(
        state["parts"]["dirs"]["paths"].as_array().map(Vec::len),
        Some(0)
    );

    // The service writes a log; the part goes away.
    inst.write("var/log/app.log", "started\n");
    inst.write("buildout.toml", NO_PARTS);
    inst.ok(&[]);
    assert!(
        !inst.exists("run") && !inst.exists("tmp"),
        "empty folders it made are gone"
    );
    assert_eq!(inst.read("var/log/app.log"), "started\n");
    assert!(inst.exists("var/log"), "a folder with a file is kept");
    assert!(inst.exists("etc"), "a folder that was there before is kept");

    // Installed again, the part takes back the folders it made and kept; once they are
    // empty, uninstalling removes them.
    inst.write("buildout.toml", DIRS);
    inst.ok(&[]);
    assert_eq!(mode(&inst, "run"), 0o750);
    std::fs::remove_file(inst.path("var/log/app.log")).unwrap();
    inst.write("buildout.toml", NO_PARTS);
    inst.ok(&[]);
    for gone in ["run", "tmp", "var/log", "var"] {
        assert!(!inst.exists(gone), "{gone} is still there");
    }
    assert!(inst.exists("etc"));
}

#[test]
fn mkdir_recreates_missing_folders_on_update() {
    let inst = Instance::new(DIRS);
    inst.ok(&[]);
    std::fs::remove_dir(inst.path("tmp")).unwrap();
    std::fs::remove_dir(inst.path("var/log")).unwrap();
    let run = inst.ok(&[]);
    run.stderr_has("1 updated");
    assert_eq!(mode(&inst, "tmp"), 0o750);
    assert_eq!(mode(&inst, "var/log"), 0o750);
}

#[test]
fn mkdir_paths_as_an_array_and_with_spaces() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["dirs"] }
dirs = { recipe = "mkdir", paths = ["my data", "./a/b/../c"] }
"#,
    );
    inst.ok(&[]);
    assert!(inst.path("my data").is_dir());
    assert!(inst.path("a/c").is_dir());
    assert!(!inst.exists("a/b"));
}

#[test]
fn mkdir_refuses_folders_outside_the_instance() {
    for (paths, escape) in [(r#""var ../escape""#, true), (r#""/etc/x""#, false)] {
        let inst = Instance::new(&format!(
            "[buildout]\nparts = [\"dirs\"]\n\n[dirs]\nrecipe = \"mkdir\"\npaths = {paths}\n"
        ));
        let shown = match escape {
            true => inst.dir().parent().unwrap().join("escape"),
            false => "/etc/x".into(),
        };
        let run = inst.fails(&[], 1);
        run.stderr_has(&format!(
            "option `paths`: {} is outside the buildout directory {}: list the folder in \
                 `allow-outside` of [buildout]",
            shown.display(),
            inst.dir().display()
        ));
        assert!(
            run.stderr.contains("dirs"),
            "the part is named: {}",
            run.stderr
        );
        assert!(!inst.exists("var"), "nothing is created before the check");
    }
}

#[test]
fn mkdir_bad_mode() {
    let inst = Instance::new(&DIRS.replace("0750", "rwx"));
    let run = inst.fails(&[], 1);
    run.stderr_has("option `mode` must be an octal mode such as 0750, not `rwx`");
}

const TEMPLATES: &str = r#"
buildout = { parts = ["conf", "motd"] }
db = { host = "localhost", port = "5432" }

[conf]
recipe = "template"
input = "templates/app.conf.in"
output = "etc/app.conf"
mode = "0640"
name = "web"

[motd]
recipe = "template"
inline = "host=${db:host} cost=$$5 literal=$${db:port}"
output = "motd"
"#;

const INPUT: &str = "# ${:name} settings\n\
db = ${db:host}:${db:port}\n\
root = ${buildout:directory}\n\
price = $$5, shell = $HOME, kept = $${db:port}\n";

#[test]
fn template_from_input_and_inline() {
    let inst = Instance::new(TEMPLATES);
    inst.write("templates/app.conf.in", INPUT);
    inst.ok(&[]);
    let root = inst.dir().canonicalize().unwrap();
    assert_eq!(
        inst.read("etc/app.conf"),
        format!(
            "# web settings\ndb = localhost:5432\nroot = {}\nprice = $5, shell = $HOME, kept = ${{db:port}}\n",
            root.display()
        )
    );
    assert_eq!(mode(&inst, "etc/app.conf"), 0o640);
    assert_eq!(
        inst.read("motd"),
        "host=localhost cost=$5 literal=${db:port}"
    );

    // Uninstalling removes the outputs.
    inst.write("buildout.toml", NO_PARTS);
    inst.ok(&[]);
    assert!(!inst.exists("etc/app.conf"));
    assert!(!inst.exists("motd"));
}

#[test]
fn template_rewrites_only_what_changed() {
    let inst = Instance::new(TEMPLATES);
    inst.write("templates/app.conf.in", INPUT);
    inst.ok(&[]);
    let conf = inst.path("etc/app.conf");
    let motd = inst.path("motd");
    let (conf_id, motd_id) = (identity(&conf), identity(&motd));

    inst.ok(&[]);
    assert_eq!(
        identity(&conf),
        conf_id,
        "an unchanged output was rewritten"
    );
    assert_eq!(
        identity(&motd),
        motd_id,
        "an unchanged output was rewritten"
    );

    // A mode changed by hand is put back without rewriting the file.
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    inst.ok(&[]);
    assert_eq!(mode(&inst, "etc/app.conf"), 0o640);
    assert_eq!(identity(&conf).2, conf_id.2, "same inode");

    // The engine cannot see the input file change; the recipe's update does.
    inst.write("templates/app.conf.in", "db = ${db:host}\n");
    inst.ok(&[]);
    assert_eq!(inst.read("etc/app.conf"), "db = localhost\n");
    assert_ne!(identity(&conf).2, conf_id.2, "written through a new file");
    assert_eq!(mode(&inst, "etc/app.conf"), 0o640);
    assert_eq!(identity(&motd), motd_id);

    // Nor an option reached only through the file.
    inst.write(
        "buildout.toml",
        &TEMPLATES.replace("host = \"localhost\"", "host = \"db.example\""),
    );
    inst.ok(&[]);
    assert_eq!(inst.read("etc/app.conf"), "db = db.example\n");
    assert_eq!(
        inst.read("motd"),
        "host=db.example cost=$5 literal=${db:port}"
    );

    // A changed mode is a changed option: the part is installed again, with the new mode.
    inst.write(
        "buildout.toml",
        &TEMPLATES
            .replace("host = \"localhost\"", "host = \"db.example\"")
            .replace("0640", "0600"),
    );
    inst.ok(&[]);
    assert_eq!(mode(&inst, "etc/app.conf"), 0o600);
    assert_eq!(inst.read("etc/app.conf"), "db = db.example\n");
}

#[test]
fn template_bad_reference_names_file_line_and_reference() {
    let inst = Instance::new(TEMPLATES);
    inst.write(
        "templates/app.conf.in",
        "first = ${db:host}\nsecond = ${db:nope}\n",
    );
    let run = inst.fails(&[], 1);
    let file = inst
        .dir()
        .canonicalize()
        .unwrap()
        .join("templates/app.conf.in");
    run.stderr_has(&format!(
        "{}:2: unknown reference `${{db:nope}}`: no option `nope` in section `db`",
        file.display()
    ));
    run.stderr_has("conf");
    assert!(!inst.exists("etc/app.conf"));

    inst.write("templates/app.conf.in", "ok\n\n  x = ${db:port\n");
    let run = inst.fails(&[], 1);
    run.stderr_has(":3: malformed reference `${db:port`");
}

#[test]
fn template_needs_input_or_inline_and_output() {
    for (options, says) in [
        (
            "output = \"x\"",
            "set option `input` (a template file) or `inline`",
        ),
        (
            "output = \"x\"\ninline = \"a\"\ninput = \"b\"",
            "options `input` and `inline` exclude each other",
        ),
        ("inline = \"a\"", "option `output` is required"),
        (
            "output = \"x\"\ninput = \"missing.in\"",
            "cannot read template",
        ),
    ] {
        let inst = Instance::new(&format!(
            "[buildout]\nparts = [\"t\"]\n\n[t]\nrecipe = \"template\"\n{options}\n"
        ));
        let run = inst.fails(&[], 1);
        assert!(run.stderr.contains(says), "{options}: {}", run.stderr);
    }
}

#[test]
fn a_template_inside_mkdir_folders() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["dirs", "conf"] }
dirs = { recipe = "mkdir", paths = ["etc", "var/log"], mode = "0700" }

[conf]
recipe = "template"
inline = "logs = ${buildout:directory}/var/log"
output = "etc/app.conf"
needs = ["dirs"]
"#,
    );
    inst.ok(&[]);
    assert_eq!(mode(&inst, "etc"), 0o700, "etc is the mkdir part's");
    let root = inst.dir().canonicalize().unwrap();
    assert_eq!(
        inst.read("etc/app.conf"),
        format!("logs = {}/var/log", root.display())
    );
    // Uninstalled in reverse order: the file goes, then the folders, now empty.
    inst.write("buildout.toml", NO_PARTS);
    inst.ok(&[]);
    for gone in ["etc", "var"] {
        assert!(!inst.exists(gone), "{gone} is still there");
    }
}
