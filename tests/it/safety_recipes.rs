//! The built-in recipes never write outside the instance nor over a file they did not make
//! (issue 8, item 3): `template`, `scripts`, `activate`, `symlink` and `mkdir`, each (a)
//! refused outside with the outside file untouched, (b) allowed in a folder of
//! `[buildout] allow-outside` (re-run and reinstall included), (c) refused over a user's
//! file inside the instance, content intact, and (d) re-run, updated and reinstalled over
//! its own files. Plus `symlink`'s `revision` refusing control characters (item 7).

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use rbuildout_tests::{Instance, Run};

const MINE: &str = "the user's own file\n";
const NOT_MADE: &str = "exists and was not made by this part; move it away";

/// A folder outside the instance, with a user's file `mine` in it.
struct Outside(tempfile::TempDir);

impl Outside {
    fn new() -> Outside {
        let outside = Outside(tempfile::tempdir().expect("temp dir"));
        std::fs::write(outside.path("mine"), MINE).unwrap();
        outside
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// `name` inside it as text, for a config.
    fn at(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn dir(&self) -> String {
        self.0.path().display().to_string()
    }

    /// Every name in it, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// `[buildout]` with `parts` and, when given, `allow-outside`.
fn buildout(parts: &str, allow: Option<&Outside>) -> String {
    match allow {
        Some(outside) => format!(
            "[buildout]\nparts = [\"{parts}\"]\nallow-outside = [\"{}\"]\n\n",
            outside.dir()
        ),
        None => format!("[buildout]\nparts = [\"{parts}\"]\n\n"),
    }
}

/// The run failed for the part `part` with a message containing `words`, naming `path`.
fn refused(run: &Run, part: &str, path: &std::path::Path, words: &str) {
    assert!(
        run.stderr.contains(&format!("{} {words}", path.display())),
        "expected `{} {words}`:\n{}",
        path.display(),
        run.stderr
    );
    assert!(
        run.stderr.contains(part),
        "the part is named: {}",
        run.stderr
    );
}

const OUTSIDE_WORDS: &str = "is outside the buildout directory";

fn template(output: &str, text: &str) -> String {
    format!("[conf]\nrecipe = \"template\"\ninline = \"{text}\"\noutput = \"{output}\"\n")
}

#[test]
fn template_refuses_outside_and_over_a_users_file() {
    let outside = Outside::new();
    // (a) Outside: refused, the user's file untouched.
    let inst = Instance::new(&(buildout("conf", None) + &template(&outside.at("mine"), "x")));
    let run = inst.fails(&[], 1);
    refused(&run, "conf", &outside.path("mine"), OUTSIDE_WORDS);
    let mut messages = format!("== outside\n{}\n", crate::snap::messages(&run.stderr));
    assert_eq!(std::fs::read_to_string(outside.path("mine")).unwrap(), MINE);
    // Through a link inside the instance that leads outside: refused too.
    symlink(outside.0.path(), inst.path("etc")).unwrap();
    inst.config(&(buildout("conf", None) + &template("etc/new.conf", "x")));
    let run = inst.fails(&[], 1);
    run.stderr_has("is reached through a link to");
    messages.push_str(&format!(
        "== through a link\n{}\n",
        crate::snap::messages(&run.stderr)
    ));
    assert_eq!(outside.names(), ["mine"]);
    std::fs::remove_file(inst.path("etc")).unwrap();

    // (c) A user's file inside the instance: refused, intact.
    inst.write("etc/app.conf", MINE);
    inst.config(&(buildout("conf", None) + &template("etc/app.conf", "x")));
    let run = inst.fails(&[], 1);
    refused(&run, "conf", &inst.path("etc/app.conf"), NOT_MADE);
    messages.push_str(&format!(
        "== a user's file\n{}\n",
        crate::snap::messages(&run.stderr)
    ));
    crate::snapshot!("template_refusals", Some(inst.dir()), messages);
    assert_eq!(inst.read("etc/app.conf"), MINE);
    assert!(!inst.exists(".installed.toml"), "nothing was installed");
}

#[test]
fn template_rewrites_its_own_output_inside_and_in_allowed_folders() {
    let outside = Outside::new();
    // (d) Its own file: re-run (update) and reinstall (another text) rewrite it.
    let inst = Instance::new(&(buildout("conf", None) + &template("etc/app.conf", "one")));
    inst.ok(&[]);
    inst.ok(&[]);
    inst.config(&(buildout("conf", None) + &template("etc/app.conf", "two")));
    inst.ok(&[]);
    assert_eq!(inst.read("etc/app.conf"), "two");

    // (b) In an allowed folder: written; the user's file beside it is still refused.
    let allowed = buildout("conf", Some(&outside));
    inst.config(&(allowed.clone() + &template(&outside.at("app.conf"), "one")));
    inst.ok(&[]);
    assert_eq!(
        std::fs::read_to_string(outside.path("app.conf")).unwrap(),
        "one"
    );
    inst.ok(&[]);
    // A reinstall: the engine never removes a file outside, the part still owns it.
    inst.config(&(allowed.clone() + &template(&outside.at("app.conf"), "two")));
    inst.ok(&[]);
    assert_eq!(
        std::fs::read_to_string(outside.path("app.conf")).unwrap(),
        "two"
    );
    inst.config(&(allowed + &template(&outside.at("mine"), "x")));
    let run = inst.fails(&[], 1);
    refused(&run, "conf", &outside.path("mine"), NOT_MADE);
    assert_eq!(std::fs::read_to_string(outside.path("mine")).unwrap(), MINE);
}

fn scripts(extra: &str) -> String {
    format!(
        "[scripts]\nrecipe = \"scripts\"\npaths = []\npython = \"/usr/bin/python3\"\n\
         entry-points = [\"mycmd=mypkg:main\"]\ninterpreter = \"py\"\n{extra}"
    )
}

#[test]
fn scripts_refuse_outside_and_over_a_users_file() {
    let outside = Outside::new();
    std::fs::create_dir(outside.path("bin")).unwrap();
    std::fs::write(outside.path("bin/mycmd"), MINE).unwrap();
    // (a) `bin-directory` outside: refused, nothing written there.
    let bin = outside.at("bin");
    let inst = Instance::new(
        &(buildout("scripts", None) + &scripts(&format!("bin-directory = \"{bin}\"\n"))),
    );
    let run = inst.fails(&[], 1);
    refused(&run, "scripts", &outside.path("bin"), OUTSIDE_WORDS);
    assert_eq!(
        std::fs::read_to_string(outside.path("bin/mycmd")).unwrap(),
        MINE
    );
    assert!(!outside.path("bin/py").exists());

    // (c) A user's script in the instance's bin: refused, intact, and none written.
    inst.write("bin/py", MINE);
    inst.config(&(buildout("scripts", None) + &scripts("")));
    let run = inst.fails(&[], 1);
    refused(&run, "scripts", &inst.path("bin/py"), NOT_MADE);
    assert_eq!(inst.read("bin/py"), MINE);
    assert!(
        !inst.exists("bin/mycmd"),
        "nothing is written before every check"
    );

    // (b) Allowed: written outside, re-run and reinstalled; the user's own still refused.
    let allowed = buildout("scripts", Some(&outside));
    inst.config(
        &(allowed.clone() + &scripts(&format!("bin-directory = \"{}\"\n", outside.at("new")))),
    );
    inst.ok(&[]);
    inst.ok(&[]);
    inst.config(
        &(allowed.clone()
            + &scripts(&format!(
                "bin-directory = \"{}\"\narguments = \"1\"\n",
                outside.at("new")
            ))),
    );
    inst.ok(&[]);
    let mycmd = std::fs::read_to_string(outside.path("new/mycmd")).unwrap();
    assert!(mycmd.contains("mypkg.main(1)"), "{mycmd}");
    inst.config(&(allowed + &scripts(&format!("bin-directory = \"{bin}\"\n"))));
    let run = inst.fails(&[], 1);
    refused(&run, "scripts", &outside.path("bin/mycmd"), NOT_MADE);
    assert_eq!(
        std::fs::read_to_string(outside.path("bin/mycmd")).unwrap(),
        MINE
    );
}

#[test]
fn scripts_rewrite_their_own_files_on_update_and_reinstall() {
    // (d)
    let inst = Instance::new(&(buildout("scripts", None) + &scripts("")));
    inst.ok(&[]);
    inst.ok(&[]);
    inst.config(&(buildout("scripts", None) + &scripts("arguments = \"2\"\n")));
    inst.ok(&[]);
    assert!(inst.read("bin/mycmd").contains("mypkg.main(2)"));
    assert!(inst.exists("bin/py"));
}

fn activate(extra: &str) -> String {
    format!("[activate]\nrecipe = \"activate\"\n{extra}")
}

#[test]
fn activate_refuses_outside_and_over_a_users_file() {
    let outside = Outside::new();
    // (a)
    let inst = Instance::new(
        &(buildout("activate", None)
            + &activate(&format!("bin-directory = \"{}\"\n", outside.dir()))),
    );
    let run = inst.fails(&[], 1);
    refused(&run, "activate", &outside.path("activate"), OUTSIDE_WORDS);
    assert_eq!(outside.names(), ["mine"]);

    // (c) A user's `activate.fish`: refused, intact, and no other script written.
    inst.write("bin/activate.fish", MINE);
    inst.config(&(buildout("activate", None) + &activate("")));
    let run = inst.fails(&[], 1);
    refused(&run, "activate", &inst.path("bin/activate.fish"), NOT_MADE);
    assert_eq!(inst.read("bin/activate.fish"), MINE);
    assert!(!inst.exists("bin/activate"));
    std::fs::remove_file(inst.path("bin/activate.fish")).unwrap();

    // (d) Its own: re-run and reinstall (another prompt).
    inst.ok(&[]);
    inst.ok(&[]);
    inst.config(&(buildout("activate", None) + &activate("prompt = \"other\"\n")));
    inst.ok(&[]);
    assert!(inst.read("bin/activate").contains("other"));

    // (b) Allowed: written outside, then reinstalled over its own files.
    let allowed = buildout("activate", Some(&outside));
    let bin = format!("bin-directory = \"{}\"\n", outside.at("bin"));
    inst.config(&(allowed.clone() + &activate(&bin)));
    inst.ok(&[]);
    inst.config(&(allowed + &activate(&(bin + "prompt = \"again\"\n"))));
    inst.ok(&[]);
    let text = std::fs::read_to_string(outside.path("bin/activate")).unwrap();
    assert!(text.contains("again"), "{text}");
}

fn code(extra: &str) -> String {
    format!("[code]\nrecipe = \"symlink\"\nconfig = \"release.toml\"\n{extra}")
}

/// An instance with an empty release config.
fn release_instance(config: &str) -> Instance {
    let inst = Instance::new(config);
    inst.write("release.toml", "[buildout]\nparts = []\n");
    inst
}

#[test]
fn symlink_refuses_outside_and_over_what_it_did_not_make() {
    let outside = Outside::new();
    // (a) A link outside, and the releases folder outside: refused, nothing touched.
    let mine = outside.at("mine");
    let inst = release_instance(
        &(buildout("code", None)
            + &code(&format!(
                "revision = \"r1\"\nlinks = [\"{mine} = code/current\"]\n"
            ))),
    );
    let run = inst.fails(&[], 1);
    refused(&run, "code", &outside.path("mine"), OUTSIDE_WORDS);
    assert_eq!(std::fs::read_to_string(outside.path("mine")).unwrap(), MINE);
    let releases = outside.at("code");
    inst.config(
        &(buildout("code", None)
            + &code(&format!("revision = \"r1\"\ndirectory = \"{releases}\"\n"))),
    );
    let run = inst.fails(&[], 1);
    refused(&run, "code", &outside.path("code"), OUTSIDE_WORDS);
    assert_eq!(outside.names(), ["mine"]);

    // (c) A user's file, or a user's link, where a link goes: refused, intact.
    inst.write("app", MINE);
    symlink("/usr", inst.path("lib")).unwrap();
    for (place, shown) in [("app", "app"), ("lib", "lib")] {
        inst.config(
            &(buildout("code", None)
                + &code(&format!(
                    "revision = \"r1\"\nlinks = [\"{place} = code/current\"]\n"
                ))),
        );
        let run = inst.fails(&[], 1);
        refused(&run, "code", &inst.path(shown), NOT_MADE);
    }
    assert_eq!(inst.read("app"), MINE);
    assert_eq!(
        std::fs::read_link(inst.path("lib")).unwrap(),
        PathBuf::from("/usr")
    );
    // A user's `history` in the releases folder, and a user's folder named like the release.
    inst.write("etc/history", MINE);
    inst.config(&(buildout("code", None) + &code("revision = \"r1\"\ndirectory = \"etc\"\n")));
    let run = inst.fails(&[], 1);
    refused(&run, "code", &inst.path("etc/history"), NOT_MADE);
    assert_eq!(inst.read("etc/history"), MINE);
    inst.write("data/r1/notes", MINE);
    inst.config(&(buildout("code", None) + &code("revision = \"r1\"\ndirectory = \"data\"\n")));
    let run = inst.fails(&[], 1);
    refused(&run, "code", &inst.path("data/r1"), NOT_MADE);
    assert_eq!(inst.read("data/r1/notes"), MINE);
    assert!(!inst.exists("data/r1/.rbuildout-release"));
}

#[test]
fn symlink_upgrades_and_rolls_back_over_its_own_links_inside_and_outside() {
    let outside = Outside::new();
    let allowed = buildout("code", Some(&outside));
    let link = outside.at("live");
    let config = |revision: &str| {
        allowed.clone()
            + &code(&format!(
                "revision = \"{revision}\"\nlinks = [\"app = code/current\", \"{link} = code/current\"]\n"
            ))
    };
    // (b) and (d): install, re-run, upgrade (a reinstall), roll back.
    let inst = release_instance(&config("r1"));
    inst.ok(&[]);
    inst.ok(&[]);
    inst.config(&config("r2"));
    inst.ok(&[]);
    inst.ok(&["code:revision=previous"]);
    assert_eq!(
        std::fs::read_link(inst.path("code/current")).unwrap(),
        PathBuf::from("r1")
    );
    let outside_link = std::fs::read_link(outside.path("live")).unwrap();
    assert!(
        outside_link.ends_with("code/current"),
        "{}",
        outside_link.display()
    );
    assert_eq!(inst.read("code/history"), "r1\nr2\nr1\n");
    // The link moved elsewhere: the old one is the part's and goes, the user's file stays.
    inst.config(
        &(allowed.clone() + &code("revision = \"r1\"\nlinks = [\"app2 = code/current\"]\n")),
    );
    inst.ok(&[]);
    assert!(!inst.exists("app"));
    assert!(inst.exists("app2"));
    assert_eq!(std::fs::read_to_string(outside.path("mine")).unwrap(), MINE);
}

#[test]
fn symlink_refuses_a_revision_with_control_characters() {
    for (revision, shown) in [
        (r"r1\nr2", r"r1\nr2"),
        (r"r1\u0007", r"r1\u{7}"),
        (r"a\tb", r"a\tb"),
        ("..", ".."),
        ("a/b", "a/b"),
    ] {
        let inst = release_instance(
            &(buildout("code", None) + &code(&format!("revision = \"{revision}\"\n"))),
        );
        let run = inst.fails(&[], 1);
        assert!(
            run.stderr.contains(&format!(
                "option `revision`: `{shown}` cannot name a release folder"
            )),
            "{revision}: {}",
            run.stderr
        );
        assert!(!inst.exists("code/history"), "{revision}");
        assert!(!inst.exists("code/current"), "{revision}");
    }
}

fn dirs(paths: &str) -> String {
    format!("[dirs]\nrecipe = \"mkdir\"\npaths = [{paths}]\n")
}

#[test]
fn mkdir_refuses_outside_and_a_users_file_and_works_in_allowed_folders() {
    let outside = Outside::new();
    // (a) Outside, as written or through a link: refused, nothing created.
    let target = format!("\"{}\"", outside.at("data"));
    let inst = Instance::new(&(buildout("dirs", None) + &dirs(&target)));
    let run = inst.fails(&[], 1);
    refused(&run, "dirs", &outside.path("data"), OUTSIDE_WORDS);
    symlink(outside.0.path(), inst.path("var")).unwrap();
    inst.config(&(buildout("dirs", None) + &dirs("\"var/log\"")));
    let run = inst.fails(&[], 1);
    run.stderr_has("is reached through a link to");
    assert_eq!(outside.names(), ["mine"]);
    std::fs::remove_file(inst.path("var")).unwrap();

    // (c) A user's file where a folder goes: the same words as every recipe, intact.
    inst.write("run", MINE);
    inst.config(&(buildout("dirs", None) + &dirs("\"run/app\"")));
    let run = inst.fails(&[], 1);
    refused(&run, "dirs", &inst.path("run"), NOT_MADE);
    assert_eq!(inst.read("run"), MINE);

    // (b) and (d): allowed outside; re-run and reinstall (a mode) keep working.
    let allowed = buildout("dirs", Some(&outside));
    inst.config(&(allowed.clone() + &dirs(&format!("\"etc\", {target}"))));
    inst.ok(&[]);
    inst.ok(&[]);
    inst.config(&(allowed + &dirs(&format!("\"etc\", {target}")) + "mode = \"0750\"\n"));
    inst.ok(&[]);
    assert!(inst.path("etc").is_dir());
    assert!(outside.path("data").is_dir());
}
