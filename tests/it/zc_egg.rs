//! `zc.recipe.egg` and `z3c.recipe.scripts` run natively from a `buildout.cfg`
//! (docs/zc-recipes.md): distributions from a local index, every script they write run with
//! the real python3, and a conformance test comparing `bin/` with what zc.buildout 6 and the
//! real zc.recipe.egg 6.0.0 make from the same project (`RBUILDOUT_ZC_BUILDOUT`).

use std::path::Path;
use std::process::Command;

use rbuildout_tests::Instance;
use rbuildout_tests::pyindex::{Index, Package};

/// `greet` (two console scripts, needs `helper`, extra `loud` needs `shout`), `helper` (one
/// console script) and `shout` (none).
fn packages() -> Vec<Package> {
    vec![
        Package::new("greet", "1.0")
            .requires("helper")
            .extra("loud", &["shout"])
            .module("greet/__init__.py", "")
            .module(
                "greet/cli.py",
                "import os, sys\nimport helper\n\n\
                 def main(*args):\n    print('greet', helper.NAME, 'args=%r' % (args,), \
                 'argv=%r' % sys.argv[1:], 'init=%s' % os.environ.get('ZC_INIT', '-'))\n\
                 \n\ndef other(*args):\n    print('other', args, sys.argv[1:])\n",
            )
            .entry_point("console_scripts", "greet", "greet.cli:main")
            .entry_point("console_scripts", "greet-other", "greet.cli:other"),
        Package::new("helper", "1.0")
            .module(
                "helper.py",
                "NAME = 'helper-1.0'\n\ndef tool(*args):\n    print('tool', args)\n",
            )
            .entry_point("console_scripts", "helper-tool", "helper:tool")
            // A `.pth` file: the folder it names goes on the scripts' sys.path too.
            .module("helper.pth", "# more\nhelper_lib\nimport os\n")
            .module("helper_lib/hlib.py", "HLIB = 'hlib'\n"),
        // A distutils script (`.data/scripts/`): zc.buildout 6 writes none for a wheel, nor
        // does rbuildout; the comparison of `bin/` checks it.
        Package::new("shout", "1.0")
            .module("shout.py", "LOUD = True\n")
            .module(
                "shout-1.0.data/scripts/shout-legacy",
                "#!python\nimport shout\nprint(shout.LOUD)\n",
            ),
    ]
}

/// The parts both zc.buildout and rbuildout run: every option zc.recipe.egg documents.
fn zc_parts(index: &str) -> String {
    format!(
        "[buildout]\nparts = app renamed eggsonly\nindex = {index}\nnewest = false\n\
         \n[app]\nrecipe = zc.recipe.egg\neggs = greet[loud]>=1.0\ninterpreter = py\n\
         initialization =\n    import os\n    os.environ['ZC_INIT'] = 'yes'\n\
         arguments = 'a', 2\nextra-paths = extra\nentry-points = made=greet.cli:other\n\
         dependent-scripts = true\n\
         \n[renamed]\nrecipe = zc.recipe.egg:scripts\neggs = greet\n\
         scripts = greet=hello missing\nrelative-paths = true\ninterpreter = rpy\n\
         \n[eggsonly]\nrecipe = zc.recipe.egg:eggs\neggs = shout\n"
    )
}

/// The scripts [`zc_parts`] makes in `bin/`.
const ZC_SCRIPTS: [&str; 7] = [
    "greet",
    "greet-other",
    "hello",
    "helper-tool",
    "made",
    "py",
    "rpy",
];

fn cfg_instance(cfg: &str) -> Instance {
    let inst = Instance::new("");
    inst.write("buildout.cfg", cfg);
    inst
}

/// Runs `script` (a file of `dir`) with `args`; returns its stdout, asserting success.
pub(crate) fn run_script(dir: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(dir.join(script))
        .args(args)
        .current_dir(dir)
        .env_remove("PYTHONPATH")
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bin_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("bin"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn zc_recipe_egg_writes_every_script_and_each_runs() {
    let index = Index::serve(&packages());
    let inst = cfg_instance(&zc_parts(&index.url()));
    let run = inst.ok(&["-c", "buildout.cfg"]);
    run.stderr_has("could not generate script `missing`: it is not defined");
    let dir = inst.dir().canonicalize().unwrap();
    assert_eq!(
        bin_names(&dir),
        ZC_SCRIPTS,
        "the eggs part writes no script"
    );
    let state = inst.state();
    assert_eq!(
        state["parts"]["eggsonly"]["outputs"]["pins"].as_str(),
        Some("shout==1.0"),
        "zc.recipe.egg:eggs installs, and publishes what it installed"
    );

    // `arguments`, `initialization` and the command line reach the entry point.
    assert_eq!(
        run_script(&dir, "bin/greet", &["x"]),
        "greet helper-1.0 args=('a', 2) argv=['x'] init=yes\n"
    );
    assert_eq!(
        run_script(&dir, "bin/greet-other", &[]),
        "other ('a', 2) []\n"
    );
    // `entry-points`, `dependent-scripts` (helper's script), the rename and its filter.
    assert_eq!(
        run_script(&dir, "bin/made", &["m"]),
        "other ('a', 2) ['m']\n"
    );
    assert_eq!(run_script(&dir, "bin/helper-tool", &[]), "tool ('a', 2)\n");
    assert_eq!(
        run_script(&dir, "bin/hello", &[]),
        "greet helper-1.0 args=() argv=[] init=-\n"
    );
    // The interpreter: the extra's distribution, `extra-paths`, `-c`, a file, `-m`.
    let code = "import sys, shout; print(shout.LOUD, sys.path[sys.path.index(\
                [p for p in sys.path if p.endswith('/extra')][0])].startswith('/'))";
    assert_eq!(run_script(&dir, "bin/py", &["-c", code]), "True True\n");
    assert_eq!(
        run_script(&dir, "bin/py", &["-c", "import hlib; print(hlib.HLIB)"]),
        "hlib\n"
    );
    std::fs::write(
        dir.join("prog.py"),
        "import sys, helper\nprint('file', helper.NAME, sys.argv)\n",
    )
    .unwrap();
    assert_eq!(
        run_script(&dir, "bin/py", &["prog.py", "q"]),
        "file helper-1.0 ['prog.py', 'q']\n"
    );
    assert_eq!(
        run_script(&dir, "bin/rpy", &["-m", "greet.cli"]),
        "",
        "the module runs as __main__ (and defines only functions)"
    );
    let init = inst.read("bin/py");
    assert!(
        init.contains("\nimport os\nos.environ['ZC_INIT'] = 'yes'\n"),
        "{init}"
    );

    // `relative-paths`: the moved buildout still runs its scripts.
    let hello = inst.read("bin/hello");
    assert!(hello.contains("join(base, 'eggs/greet-1.0"), "{hello}");
    assert!(!hello.contains(&dir.display().to_string()), "{hello}");
    let moved = tempfile::tempdir().unwrap();
    let copy = moved.path().join("moved");
    let status = Command::new("cp")
        .args(["-a"])
        .arg(&dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(dir.join("eggs")).unwrap();
    assert_eq!(
        run_script(&copy, "bin/hello", &[]),
        "greet helper-1.0 args=() argv=[] init=-\n"
    );
    assert_eq!(
        run_script(
            &copy,
            "bin/rpy",
            &["-c", "import helper; print(helper.NAME)"]
        ),
        "helper-1.0\n"
    );
}

#[test]
fn z3c_recipe_scripts_writes_scripts_and_interpreters() {
    let index = Index::serve(&packages());
    let inst = cfg_instance(&format!(
        "[buildout]\nparts = z zint zext\nindex = {}\n\
         \n[z]\nrecipe = z3c.recipe.scripts\neggs = greet\n\
         scripts = greet-other=z-other\ninterpreter = zpy\n\
         initialization = import os; os.environ['ZC_INIT'] = 'z'\n\
         script-initialization = print('script-init')\n\
         \n[zint]\nrecipe = z3c.recipe.scripts:interpreter\neggs = helper\n\
         \n[zext]\nrecipe = z3c.recipe.scripts:interpreter\nextends = z\n",
        index.url()
    ));
    inst.ok(&["-c", "buildout.cfg"]);
    let dir = inst.dir().canonicalize().unwrap();
    assert_eq!(bin_names(&dir), ["z-other", "zext", "zint", "zpy"]);
    // `extends`: the options of `z` (its eggs and initialization), under this part's name.
    assert_eq!(
        run_script(
            &dir,
            "bin/zext",
            &["-c", "import os, greet.cli; print(os.environ['ZC_INIT'])"]
        ),
        "z\n"
    );
    assert_eq!(
        run_script(&dir, "bin/z-other", &[]),
        "script-init\nother () []\n"
    );
    // The interpreter gets `initialization`, not `script-initialization`.
    assert_eq!(
        run_script(
            &dir,
            "bin/zpy",
            &["-c", "import os, greet.cli; print(os.environ['ZC_INIT'])"]
        ),
        "z\n"
    );
    assert_eq!(
        run_script(
            &dir,
            "bin/zint",
            &["-c", "import helper; print(helper.NAME)"]
        ),
        "helper-1.0\n"
    );

    // Site-packages are never visible: asking for them is refused, naming the option.
    let inst = cfg_instance(&format!(
        "[buildout]\nparts = z\nindex = {}\n[z]\nrecipe = z3c.recipe.scripts\neggs = greet\n\
         include-site-packages = true\n",
        index.url()
    ));
    let run = inst.fails(&["-c", "buildout.cfg"], 1);
    run.stderr_has("option `include-site-packages` = true is not supported");
}

/// The real python3 the tests run, as its `sys.executable` reports it.
fn python3_executable() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("run python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn find_links_python_markers_empty_scripts_and_changed_parts() {
    // `find-links` alone (no index): the wheels of a folder, nothing asked of the network.
    let index = Index::serve(&packages());
    let python = python3_executable();
    let inst = cfg_instance(&format!(
        "[buildout]\nparts = a none marked\nindex =\nfind-links = {links}\n\
         \n[a]\nrecipe = zc.recipe.egg\neggs = greet == 1.0\npython = mypy\ninterpreter = py\n\
         \n[mypy]\nexecutable = {python}\n\
         \n[none]\nrecipe = zc.recipe.egg:scripts\neggs = helper\nscripts =\ninterpreter = nopy\n\
         \n[marked]\nrecipe = zc.recipe.egg\neggs =\n    helper\n    shout; python_version < \"3\"\n",
        links = index.files_dir().display(),
    ));
    inst.ok(&["-c", "buildout.cfg", "-o"]);
    assert_eq!(
        index.requests(),
        Vec::<String>::new(),
        "nothing from the index"
    );
    let dir = inst.dir().canonicalize().unwrap();
    // `scripts =` (empty) writes neither scripts nor the interpreter; the marker that does not
    // match leaves `shout` out.
    assert_eq!(
        bin_names(&dir),
        ["greet", "greet-other", "helper-tool", "py"]
    );
    // `python` naming a section: its `executable` is the `#!` interpreter.
    let greet = inst.read("bin/greet");
    assert!(greet.starts_with(&format!("#!{python}\n")), "{greet}");
    assert_eq!(
        run_script(&dir, "bin/greet", &[]),
        "greet helper-1.0 args=() argv=[] init=-\n"
    );
    // The state publishes what zc.recipe.egg sets on its options.
    let state = inst.state();
    let outputs = &state["parts"]["a"]["outputs"];
    assert_eq!(
        outputs["bin-directory"].as_str(),
        Some(dir.join("bin").to_str().unwrap())
    );
    assert_eq!(outputs["executable"].as_str(), Some(python.as_str()));

    // A part whose options change is reinstalled: the scripts it no longer makes go.
    let cfg = inst.read("buildout.cfg").replace("interpreter = py\n", "");
    inst.write("buildout.cfg", &cfg);
    inst.ok(&["-c", "buildout.cfg", "-o"]);
    assert_eq!(bin_names(&dir), ["greet", "greet-other", "helper-tool"]);

    // A version the index does not have fails the part, naming the requirement.
    let inst = cfg_instance(&format!(
        "[buildout]\nparts = a\nindex = {}\n[a]\nrecipe = zc.recipe.egg\neggs = greet > 1.0\n",
        index.url()
    ));
    let run = inst.fails(&["-c", "buildout.cfg"], 1);
    assert!(
        run.stderr.contains("part `a` failed during install")
            && run.stderr.contains("no version of greet in >1.0"),
        "{}",
        run.stderr
    );
    assert!(!inst.exists("bin/greet"));
}

#[test]
fn unsupported_entry_points_and_bad_options_fail_clearly() {
    let index = Index::serve(&packages());
    for (recipe, options, message) in [
        (
            "zc.recipe.egg:custom",
            "",
            "part `p` failed during install: recipe `zc.recipe.egg:custom` is not supported",
        ),
        (
            "zc.recipe.egg:develop",
            "setup = src",
            "part `p` failed during install: recipe `zc.recipe.egg:develop` is not supported",
        ),
        (
            "z3c.recipe.scripts",
            "extends = nosuch",
            "option `extends`: section `nosuch` sets no option this recipe reads",
        ),
        (
            "zc.recipe.egg",
            "entry-points = nonsense",
            "option `entry-points`: cannot parse the entry point `nonsense`",
        ),
        (
            "zc.recipe.egg",
            "relative-paths = maybe",
            "option `relative-paths`: invalid value `maybe`",
        ),
        (
            "zc.recipe.egg",
            "dependent-scripts = yes",
            "option `dependent-scripts`: invalid value `yes`",
        ),
        (
            "zc.recipe.egg",
            "scripts = greet=../escape",
            "option `scripts`: `../escape` is not a usable script name",
        ),
    ] {
        let inst = cfg_instance(&format!(
            "[buildout]\nparts = p\nindex = {}\n[p]\nrecipe = {recipe}\neggs = greet\n{options}\n",
            index.url()
        ));
        let run = inst.fails(&["-c", "buildout.cfg"], 1);
        assert!(
            run.stderr.contains(message),
            "{recipe} {options:?}: expected {message:?} in:\n{}",
            run.stderr
        );
        assert!(!inst.exists("bin/greet"), "{recipe} {options:?}");
    }
}

#[test]
fn zc_recipe_egg_makes_the_scripts_zc_buildout_makes() {
    let Some(python) = rbuildout_tests::oracle("zc.recipe.egg against zc.buildout") else {
        return;
    };
    let index = Index::serve(&packages());
    let cfg = zc_parts(&index.url());
    let scratch = || {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::write(dir.join("buildout.cfg"), &cfg).unwrap();
        std::fs::create_dir(dir.join(".home")).unwrap();
        (tmp, dir)
    };
    // Without user defaults (`-U`); the only index is the local one, so nothing leaves the
    // machine. zc.recipe.egg itself comes from the interpreter's site-packages.
    let (_zc_tmp, zc_dir) = scratch();
    let zc_buildout = || rbuildout_tests::zc_buildout(&python, &zc_dir, &[]);
    // Twice: zc.buildout's first run orders sys.path by download order, its later runs by
    // its resolver's order, which rbuildout always writes (docs/conformance.md).
    zc_buildout();
    let zc_log = zc_buildout();
    let (_rb_tmp, rb_dir) = scratch();
    let rbuildout = || rbuildout_tests::rbuildout_cfg(&rb_dir, &[]);
    rbuildout();
    let rb_log = rbuildout();
    assert_eq!(
        bin_names(&rb_dir),
        bin_names(&zc_dir),
        "zc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
    );
    let mut diffs = Vec::new();
    for script in bin_names(&zc_dir).iter().filter(|s| *s != "buildout") {
        let zc = rbuildout_tests::normalized_script(&zc_dir, &zc_dir.join("eggs/v5"), script);
        let rb = rbuildout_tests::normalized_script(&rb_dir, &rb_dir.join("eggs"), script);
        if zc != rb {
            diffs.push(format!(
                "bin/{script}:\n--- zc.buildout\n{zc}\n--- rbuildout\n{rb}"
            ));
        }
    }
    assert!(diffs.is_empty(), "scripts differ:\n{}", diffs.join("\n"));
    // Both tools' scripts run the same, the interpreters too.
    assert_eq!(
        run_script(&rb_dir, "bin/greet", &["x"]),
        "greet helper-1.0 args=('a', 2) argv=['x'] init=yes\n"
    );
    let py_code = "import helper, hlib, shout; print(helper.NAME, hlib.HLIB)";
    for (script, args) in [
        ("greet", vec!["x"]),
        ("greet-other", vec![]),
        ("hello", vec!["y"]),
        ("helper-tool", vec![]),
        ("made", vec![]),
        ("py", vec!["-c", py_code]),
        ("rpy", vec!["-c", "import helper; print(helper.NAME)"]),
    ] {
        assert_eq!(
            run_script(&rb_dir, &format!("bin/{script}"), &args),
            run_script(&zc_dir, &format!("bin/{script}"), &args),
            "bin/{script} {args:?}"
        );
    }
}
