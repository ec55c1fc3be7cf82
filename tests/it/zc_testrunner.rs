//! `zc.recipe.testrunner` run natively (docs/zc-recipes.md): the real zope.testrunner (packed
//! from the oracle's environment, served by the local index) runs the tests of a
//! distribution through the `bin/` script the recipe writes, and that script is compared
//! with what zc.buildout 6 and zc.recipe.testrunner 5 write from the same buildout.cfg.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use rbuildout_tests::pyindex::{Index, Package};
use rbuildout_tests::{Instance, oracle, run_bounded};

/// `mylib`, whose tests check its answer, an environment variable and the working folder,
/// and the test runner with what it needs, packed from `python`'s environment.
fn packages(python: &OsStr) -> Vec<Package> {
    let mut packages = vec![
        Package::new("mylib", "1.0")
            .module("mylib/__init__.py", "def answer():\n    return 42\n")
            .module(
                "mylib/tests.py",
                "import os, unittest\nimport mylib\n\n\
                 class Answer(unittest.TestCase):\n\
                 \x20   def test_answer(self):\n        self.assertEqual(mylib.answer(), 42)\n\n\
                 \x20   def test_environment(self):\n        \
                 self.assertEqual(os.environ.get('MYLIB_MODE'), 'testing')\n\n\
                 \x20   def test_working_directory(self):\n        \
                 self.assertEqual(os.path.basename(os.getcwd()), os.environ['MYLIB_WD'])\n",
            ),
    ];
    for name in RUNNER_DISTRIBUTIONS {
        packages.push(Package::installed(python, name));
    }
    packages
}

/// zope.testrunner and its requirements.
const RUNNER_DISTRIBUTIONS: [&str; 4] = [
    "zope.testrunner",
    "zope.interface",
    "zope.exceptions",
    "setuptools",
];

/// Two test runners: `test` with its defaults (the part's folder as working folder), and
/// `other` renamed, in a working folder of its own, with relative paths.
fn config(index: &str, mode: &str) -> String {
    format!(
        "[buildout]\nparts = test other\nindex = {index}\nnewest = false\n\
         \n[test]\nrecipe = zc.recipe.testrunner\neggs = mylib\ndefaults = ['-v']\n\
         environment = testenv\n\
         \n[testenv]\nMYLIB_MODE = {mode}\nMYLIB_WD = test\n\
         \n[other]\nrecipe = zc.recipe.testrunner\neggs = mylib\nscript = runtests\n\
         working-directory = work\nrelative-paths = true\n\
         initialization = import os\n    os.environ['MYLIB_MODE'] = 'testing'\n    \
         os.environ['MYLIB_WD'] = 'work'\n"
    )
}

/// Runs `bin/<script>` of `dir`; returns its exit code and output.
fn run_tests(dir: &Path, script: &str) -> (i32, String) {
    let out = Command::new(dir.join("bin").join(script))
        .current_dir(dir)
        .env_remove("PYTHONPATH")
        .output()
        .unwrap_or_else(|e| panic!("run bin/{script}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn zc_recipe_testrunner_writes_a_runner_that_runs_the_tests() {
    let Some(python) = oracle("zc.recipe.testrunner (it needs zope.testrunner)") else {
        return;
    };
    let index = Index::serve(&packages(&python));
    let inst = Instance::new("");
    inst.write("buildout.cfg", &config(&index.url(), "testing"));
    inst.ok(&["-c", "buildout.cfg"]);
    let dir = inst.dir().canonicalize().unwrap();
    assert!(dir.join("parts/test").is_dir(), "the part's working folder");
    assert!(!dir.join("parts/other").exists(), "`other` has its own");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let state = inst.state();
    assert_eq!(
        state["parts"]["test"]["outputs"]["script"].as_str(),
        Some(dir.join("bin/test").to_str().unwrap())
    );
    assert_eq!(
        state["parts"]["test"]["outputs"]["location"].as_str(),
        Some(dir.join("parts/test").to_str().unwrap())
    );

    for script in ["test", "runtests"] {
        let (code, out) = run_tests(&dir, script);
        assert_eq!(code, 0, "bin/{script}:\n{out}");
        assert!(
            out.contains("Ran 3 tests with 0 failures, 0 errors"),
            "bin/{script}:\n{out}"
        );
    }
    let relative = std::fs::read_to_string(dir.join("bin/runtests")).unwrap();
    assert!(
        relative.contains("os.chdir(join(base, 'work'))"),
        "{relative}"
    );

    // A test that fails makes the runner fail: the environment section is read again.
    inst.write("buildout.cfg", &config(&index.url(), "other"));
    inst.ok(&["-c", "buildout.cfg"]);
    let (code, out) = run_tests(&dir, "test");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("1 failures"), "{out}");

    // Removing the part removes its script and its folder.
    inst.write(
        "buildout.cfg",
        &config(&index.url(), "testing").replace("parts = test other", "parts = other"),
    );
    inst.ok(&["-c", "buildout.cfg"]);
    assert!(!dir.join("bin/test").exists());
    assert!(!dir.join("parts/test").exists());
    assert!(dir.join("bin/runtests").exists());
}

#[test]
fn zc_recipe_testrunner_writes_the_script_zc_buildout_writes() {
    let Some(python) = oracle("bin/test against zc.recipe.testrunner") else {
        return;
    };
    let index = Index::serve(&packages(&python));
    let cfg = config(&index.url(), "testing");
    let scratch = || {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::write(dir.join("buildout.cfg"), &cfg).unwrap();
        std::fs::create_dir(dir.join(".home")).unwrap();
        std::fs::create_dir(dir.join("work")).unwrap();
        (tmp, dir)
    };
    let (_zc_tmp, zc_dir) = scratch();
    // Twice, as in zc_egg: zc.buildout's second run orders sys.path by its resolver.
    rbuildout_tests::zc_buildout(&python, &zc_dir, &[]);
    let zc_log = rbuildout_tests::zc_buildout(&python, &zc_dir, &[]);
    let (_rb_tmp, rb_dir) = scratch();
    let rb_log = rbuildout_tests::rbuildout_cfg(&rb_dir, &[]);
    // zc.buildout takes the runner and what it needs from the oracle's site-packages, where
    // zc.recipe.testrunner's own requirements put them; rbuildout from the index. Their
    // sys.path lines are left out of the comparison, everything else must be the same.
    let site = run_bounded(
        Command::new(&python).args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ]),
        "the oracle's site-packages",
    );
    let mut site_lines = vec![format!("  '{}',\n", site.trim())];
    for name in RUNNER_DISTRIBUTIONS {
        let normalized = rbuildout_tests::pyindex::normalize(name).unwrap();
        site_lines.push(format!("  '<egg {normalized}>',\n"));
        site_lines.push(format!("  join(base, '<egg {normalized}>'),\n"));
    }
    let without_site = |text: String| {
        site_lines
            .iter()
            .fold(text, |text, line| text.replace(line.as_str(), ""))
    };
    for script in ["test", "runtests"] {
        let zc = without_site(rbuildout_tests::normalized_script(
            &zc_dir,
            &zc_dir.join("eggs/v5"),
            script,
        ));
        let rb = without_site(rbuildout_tests::normalized_script(
            &rb_dir,
            &rb_dir.join("eggs"),
            script,
        ));
        assert!(rb.contains("'<egg mylib>'"), "{rb}");
        assert_eq!(
            rb, zc,
            "bin/{script} differs (left rbuildout, right zc.buildout)\n\
             zc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
        );
        let (rb_code, rb_out) = run_tests(&rb_dir, script);
        let (zc_code, zc_out) = run_tests(&zc_dir, script);
        assert_eq!((rb_code, zc_code), (0, 0), "{rb_out}\n{zc_out}");
    }
}

/// `examples/buildout-project` itself, copied and run against the local index:
/// the develop project's script, its tests, the rendered config, the command's folder, the
/// renamed script; a change to its code is live without a run; a second run changes nothing.
#[test]
fn the_buildout_project_example_runs() {
    let Some(python) = oracle("examples/buildout-project (it needs zope.testrunner)") else {
        return;
    };
    let index = Index::serve(&packages(&python));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap().join("project");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(rbuildout_tests::repo_root().join("examples/buildout-project"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(copied.success());
    // The example names no index: the local one is given on the command line.
    let index_option = format!("buildout:index={}", index.url());
    let rbuildout = || rbuildout_tests::rbuildout_cfg(&dir, &[&index_option]);
    let first = rbuildout();
    let greeter = |script: &str| {
        let out = Command::new(dir.join("bin").join(script))
            .output()
            .unwrap_or_else(|e| panic!("run bin/{script}: {e}"));
        assert!(out.status.success(), "bin/{script}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        greeter("greeter"),
        "hello from a buildout project\n",
        "{first}"
    );
    assert_eq!(
        greeter("greeter-admin"),
        "hello from a buildout project (admin)\n"
    );
    let (code, out) = run_tests(&dir, "test");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Ran 3 tests with 0 failures, 0 errors"),
        "{out}"
    );
    let ini = std::fs::read_to_string(dir.join("etc/greeter.ini")).unwrap();
    assert!(
        ini.contains(&format!("logs = {}", dir.join("var/log").display())),
        "{ini}"
    );
    assert!(dir.join("var/log").is_dir());

    // Develop means editable: the code is imported from src/, a change is live at once.
    let init = dir.join("src/greeter/__init__.py");
    let code_text = std::fs::read_to_string(&init).unwrap();
    std::fs::write(&init, code_text.replace("(admin)", "(administrator)")).unwrap();
    assert_eq!(
        greeter("greeter-admin"),
        "hello from a buildout project (administrator)\n"
    );
    let second = rbuildout();
    assert!(second.contains("0 installed"), "{second}");
}
