//! zc.buildout's recipes under their own names, natively (SPEC §4.4, §5.7):
//! `collective.recipe.template` and `plone.recipe.command` run from a `buildout.cfg` by the
//! real binary, how dotted recipe names find their plugin, and a conformance test that
//! runs zc.buildout 6 (`RBUILDOUT_ZC_BUILDOUT`) on the same project and compares the files.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rbuildout_tests::pyindex::Index;
use rbuildout_tests::{Instance, test_plugins_dir};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// An instance configured by `buildout.cfg` (and an empty `buildout.toml`, never read).
fn cfg_instance(cfg: &str) -> Instance {
    let inst = Instance::new("");
    inst.write("buildout.cfg", cfg);
    inst
}

/// The template files of [`PROJECT`]; `t.in` gets mode 0751, which its output copies.
fn write_templates(dir: &Path) {
    let t_in = dir.join("t.in");
    std::fs::write(
        &t_in,
        "#!/bin/sh\nA=${x:a} B=${a} C=$${x:a} D=$${b} E=$$HOME F=$HOME G=$$ H=${:a}\n\
         I=${_buildout_section_name_} J=${buildout:directory} å\n",
    )
    .unwrap();
    std::fs::set_permissions(&t_in, std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::write(dir.join("l.in"), b"caf\xe9 ${x:a}\n").unwrap();
}

/// A project using both recipes the way their documentation does.
const PROJECT: &str = r#"[buildout]
parts = t i j l o c f

[x]
a = AX

[t]
recipe = collective.recipe.template
input = t.in
output = ${buildout:directory}/out/deep/t
a = TA
b = TB

[i]
recipe = collective.recipe.template
inline =
   first ${x:a}
     $${x:a} $$ $${a} $$HOME
a = IA
output = ${buildout:directory}/i.txt
mode = 640

[j]
recipe = collective.recipe.template
input = inline:
   #!/bin/bash
   echo ${x:a}
output = ${buildout:parts-directory}/j.sh
mode = 0755

[l]
recipe = collective.recipe.template
input = l.in
input-encoding = latin-1
output = ${buildout:directory}/l.txt

[o]
recipe = collective.recipe.template
inline = kept ${x:a}
output = ${buildout:directory}/o.txt
overwrite = no

[f]
recipe = plone.recipe.command
command = echo failed-but-fine > f.txt; false
stop-on-error = off

[c]
recipe = plone.recipe.command
command = echo "made in $(pwd)" > made.txt; mkdir -p loc; echo x > loc/file
update-command = echo updated >> made.txt
location = loc made.txt
"#;

/// The files [`PROJECT`] makes, compared with zc.buildout's.
const PROJECT_FILES: [&str; 8] = [
    "out/deep/t",
    "i.txt",
    "parts/j.sh",
    "l.txt",
    "o.txt",
    "made.txt",
    "loc/file",
    "f.txt",
];

#[test]
fn collective_template_renders_files_inline_text_modes_and_references() {
    let inst = cfg_instance(PROJECT);
    write_templates(inst.dir());
    inst.ok(&["-c", "buildout.cfg"]);
    let dir = inst.dir().display().to_string();
    assert_eq!(
        inst.read("out/deep/t"),
        format!("#!/bin/sh\nA=AX B=TA C=$AX D=$TB E=$$HOME F=$HOME G=$$ H=TA\nI=t J={dir} å\n")
    );
    assert_eq!(
        mode(&inst.path("out/deep/t")),
        0o751,
        "the input file's mode"
    );
    assert_eq!(inst.read("i.txt"), "first AX\n  $AX $$ $IA $$HOME");
    assert_eq!(mode(&inst.path("i.txt")), 0o640);
    assert_eq!(inst.read("parts/j.sh"), "#!/bin/bash\necho AX");
    assert_eq!(mode(&inst.path("parts/j.sh")), 0o755);
    assert_eq!(
        inst.read("l.txt"),
        "café AX\n",
        "read as latin-1, written as UTF-8"
    );
    assert_eq!(inst.read("o.txt"), "kept AX");
    let state = inst.state();
    assert_eq!(
        state["parts"]["t"]["recipe"]["entry"].as_str(),
        Some("collective.recipe.template:default")
    );
    assert_eq!(
        state["parts"]["t"]["recipe"]["plugin"].as_str(),
        Some("template")
    );

    // An edited output is rendered again on the next run.
    inst.write("i.txt", "edited");
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("i.txt"), "first AX\n  $AX $$ $IA $$HOME");

    // Uninstalling removes the outputs and the folders the part created for them.
    inst.write("buildout.cfg", "[buildout]\nparts =\n");
    inst.ok(&["-c", "buildout.cfg"]);
    for gone in ["out", "i.txt", "parts/j.sh", "loc", "made.txt"] {
        assert!(!inst.exists(gone), "{gone} is removed");
    }
    assert!(inst.exists("t.in"));
    assert_eq!(
        inst.read("o.txt"),
        "kept AX",
        "`overwrite = no`: never registered"
    );
}

#[test]
fn collective_template_with_overwrite_false_keeps_the_file_it_finds() {
    let inst = cfg_instance(
        "[buildout]\nparts = t\n\n[t]\nrecipe = collective.recipe.template\n\
         inline = v=${:v}\nv = 1\noutput = out.txt\noverwrite = False\n",
    );
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("out.txt"), "v=1");
    inst.write("out.txt", "mine");
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(
        inst.read("out.txt"),
        "mine",
        "an existing output is left alone"
    );
    // Not registered, so uninstalling keeps it.
    inst.write("buildout.cfg", "[buildout]\nparts =\n");
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("out.txt"), "mine");
}

#[test]
fn collective_template_refuses_bad_options_with_clear_messages() {
    for (options, message) in [
        ("output = o", "no input: set option `input`"),
        ("inline = x", "option `output` is required"),
        (
            "input = t.in\ninline = x\noutput = o",
            "too many input sources: set only one of `input`, `inline` and `url`",
        ),
        (
            "url = http://127.0.0.1:9/t.in\noutput = o",
            "option `url` is not supported by the native collective.recipe.template",
        ),
        (
            "input = missing.in\noutput = o",
            "missing.in does not exist",
        ),
        (
            "inline = x=$${HOME}\noutput = o",
            "option `inline`:1: unknown reference `${t:HOME}`: no option `HOME` in section `t`",
        ),
        (
            "inline = x\noutput = o\nmode = rwx",
            "option `mode` must be an octal mode",
        ),
        (
            "inline = x\noutput = o\noutput-encoding = ebcdic",
            "the encoding `ebcdic` is not supported natively",
        ),
    ] {
        let inst = cfg_instance(&format!(
            "[buildout]\nparts = t\n\n[t]\nrecipe = collective.recipe.template\n{options}\n"
        ));
        let run = inst.fails(&["-c", "buildout.cfg"], 1);
        assert!(
            run.stderr.contains(message),
            "{options:?}: expected {message:?} in:\n{}",
            run.stderr
        );
        assert!(!inst.exists("o"), "{options:?}: nothing written");
    }
}

#[test]
fn plone_command_runs_its_commands_in_the_buildout_directory() {
    let inst = cfg_instance(PROJECT);
    write_templates(inst.dir());
    let run = inst.ok(&["-c", "buildout.cfg"]);
    let dir = inst.dir().canonicalize().unwrap();
    assert_eq!(
        inst.read("made.txt"),
        format!("made in {}\n", dir.display())
    );
    assert_eq!(inst.read("loc/file"), "x\n");
    assert_eq!(run.stdout, "", "the command's output goes to stderr");
    let paths = inst.state()["parts"]["c"]["paths"].clone();
    assert_eq!(
        paths
            .as_array()
            .map(|p| p.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>()),
        Some(vec!["loc", "made.txt"])
    );

    // Unchanged: `update-command` runs, `command` does not.
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(
        inst.read("made.txt"),
        format!("made in {}\nupdated\n", dir.display())
    );
    // Uninstalled: the locations go.
    inst.write("buildout.cfg", "[buildout]\nparts =\n");
    inst.ok(&["-c", "buildout.cfg"]);
    assert!(!inst.exists("loc") && !inst.exists("made.txt"));
}

#[test]
fn plone_command_stops_on_error_only_when_asked() {
    let config = |stop: &str| {
        format!(
            "[buildout]\nparts = c\n\n[c]\nrecipe = plone.recipe.command\n\
             command = echo ran > ran.txt; exit 3\n{stop}"
        )
    };
    // Unset or off: the exit code is ignored (with a warning), the part is installed.
    for stop in ["", "stop-on-error = no\n", "stop-on-error = Off\n"] {
        let inst = cfg_instance(&config(stop));
        let run = inst.ok(&["-c", "buildout.cfg"]);
        run.stderr_has("exited with code 3");
        assert_eq!(inst.read("ran.txt"), "ran\n");
        assert_eq!(inst.installed(), ["c"]);
    }
    // On: the part fails and is not recorded.
    for stop in ["stop-on-error = yes\n", "stop-on-error = TRUE\n"] {
        let inst = cfg_instance(&config(stop));
        let run = inst.fails(&["-c", "buildout.cfg"], 1);
        run.stderr_has("option `command`: the command exited with code 3 (stop-on-error is on)");
        assert!(inst.exists("ran.txt"));
    }
    // Anything else is refused before the command runs.
    let inst = cfg_instance(&config("stop-on-error = 1\n"));
    let run = inst.fails(&["-c", "buildout.cfg"], 1);
    run.stderr_has("option `stop-on-error` must be yes, on, true, no, off or false, not `1`");
    assert!(!inst.exists("ran.txt"));
    // No command.
    let inst = cfg_instance("[buildout]\nparts = c\n[c]\nrecipe = plone.recipe.command\n");
    let run = inst.fails(&["-c", "buildout.cfg"], 1);
    run.stderr_has("option `command` is required");
}

#[test]
fn dotted_recipe_names_find_native_plugins_or_name_the_python_distribution() {
    // Names compare as Python distribution names do (PEP 503).
    let inst = cfg_instance(
        "[buildout]\nparts = t\n[t]\nrecipe = Collective.Recipe_Template:default\n\
         inline = ok\noutput = o\n",
    );
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("o"), "ok");

    // A library named for the distribution wins over a plugin that provides the name.
    let inst = cfg_instance(
        "[buildout]\nparts = t\nplugin-path = plugins\n\
         [t]\nrecipe = collective.recipe.template:file\npath = o\ncontent = testkit\n",
    );
    std::fs::create_dir(inst.path("plugins")).unwrap();
    std::fs::copy(
        test_plugins_dir().join("librbuildout_recipe_testkit.so"),
        inst.path("plugins/librbuildout_recipe_collective_recipe_template.so"),
    )
    .unwrap();
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("o"), "testkit");

    // A Python recipe with no native plugin runs through the bridge, which looks for its
    // distribution on the index (a local, empty one here: tests never reach the internet).
    let index = Index::serve(&[]);
    let inst = cfg_instance(&format!(
        "[buildout]\nparts = p\nindex = {}\n[p]\nrecipe = some.python.recipe:thing\n",
        index.url()
    ));
    let run = inst.fails(&["-c", "buildout.cfg"], 1);
    assert!(
        run.stderr.contains(
            "part `p` failed during prepare: no distribution named `some-python-recipe` was found"
        ),
        "{}",
        run.stderr
    );
    // Only rbuildout's messages by default, not the resolver's own tracing.
    assert!(!run.stderr.contains("unit_propagation"), "{}", run.stderr);
    // A distribution that is native, but not with that entry point.
    let inst =
        cfg_instance("[buildout]\nparts = g\n[g]\nrecipe = collective.recipe.template:genshi\n");
    let run = inst.fails(&["-c", "buildout.cfg"], 2);
    run.stderr_has("(`collective.recipe.template` is native only as: default)");
}

/// A scratch copy of [`PROJECT`] with its templates.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    std::fs::write(dir.join("buildout.cfg"), PROJECT).unwrap();
    write_templates(&dir);
    std::fs::create_dir(dir.join(".home")).unwrap();
    (tmp, dir)
}

#[test]
fn zc_recipes_make_the_files_zc_buildout_makes() {
    let Some(python) = rbuildout_tests::oracle("the zc.buildout recipes against zc.buildout")
    else {
        return;
    };
    let (_zc_tmp, zc_dir) = scratch();
    // Offline (`-o`), without user defaults (`-U`): the recipes come from the interpreter's
    // site-packages, where .ci/run installs them; nothing is downloaded.
    let zc_buildout = |dir: &Path| rbuildout_tests::zc_buildout(&python, dir, &["-o"]);
    let rbuildout = |dir: &Path| rbuildout_tests::rbuildout_cfg(dir, &[]);
    zc_buildout(&zc_dir);
    let (_rb_tmp, rb_dir) = scratch();
    rbuildout(&rb_dir);
    let compare = |when: &str| {
        let mut diffs = Vec::new();
        for file in PROJECT_FILES {
            let read = |dir: &Path| {
                let path = dir.join(file);
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("{when}: read {}: {e}", path.display()));
                // Each run's folder appears in the text; compare it as one name.
                let text =
                    String::from_utf8_lossy(&bytes).replace(&dir.display().to_string(), "${DIR}");
                (text, mode(&path))
            };
            let (zc, rb) = (read(&zc_dir), read(&rb_dir));
            if zc != rb {
                diffs.push(format!("{file}: zc.buildout {zc:?}, rbuildout {rb:?}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "{when}: files differ:\n{}",
            diffs.join("\n")
        );
    };
    compare("after the first run");
    // Again, unchanged: the parts are updated (`update-command` runs).
    zc_buildout(&zc_dir);
    rbuildout(&rb_dir);
    compare("after the second run");

    // With the parts gone, both remove the same files and folders, and keep the same ones.
    for dir in [&zc_dir, &rb_dir] {
        std::fs::write(dir.join("buildout.cfg"), "[buildout]\nparts =\n").unwrap();
    }
    zc_buildout(&zc_dir);
    rbuildout(&rb_dir);
    let left = |dir: &Path| -> Vec<&str> {
        [
            "out",
            "out/deep",
            "i.txt",
            "parts/j.sh",
            "made.txt",
            "loc",
            "t.in",
        ]
        .into_iter()
        .filter(|rel| dir.join(rel).symlink_metadata().is_ok())
        .collect()
    };
    assert_eq!(left(&rb_dir), left(&zc_dir), "what uninstalling leaves");
}

#[test]
fn a_cancelled_run_stops_the_command_and_what_it_started() {
    let inst = cfg_instance(
        "[buildout]\nparts = c\n[c]\nrecipe = plone.recipe.command\n\
         command = touch started; sleep 60; touch finished\n",
    );
    let child = inst.spawn(&["-c", "buildout.cfg"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !inst.exists("started") {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let interrupt = || {
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    };
    interrupt();
    // Standard signals do not queue: let the first be handled before the second is sent.
    std::thread::sleep(Duration::from_millis(300));
    interrupt();
    // The output is read to its end: a `sleep` left running would hold the pipe open.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the command was stopped, not waited for: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("option `command`: the command was stopped: the run was cancelled"),
        "{stderr}"
    );
    assert!(!inst.exists("finished"));
}
