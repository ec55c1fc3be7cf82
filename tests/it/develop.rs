//! `buildout:develop` (docs/develop.md): Python source folders the tests write, built through
//! their PEP 517 backend's PEP 660 hooks by the real python3 (a backend of the tests' own in
//! the tree, the same backend served from the local index for an isolated build, and
//! setuptools where a working one is at hand), their scripts made by zc.recipe.egg and run,
//! their dependencies from the local index, and rebuilt only when their metadata inputs
//! change.

use std::path::{Path, PathBuf};
use std::process::Command;

use rbuildout_tests::pyindex::{Index, Package};
use rbuildout_tests::{Instance, run_bounded};

/// A PEP 517 backend with the PEP 660 hooks, reading `[project]` (name, version,
/// dependencies, optional-dependencies, scripts, entry-points) from `pyproject.toml`; the editable wheel's
/// `.pth` names the source folder (or its `src/`). Each hook call is appended to
/// `backend-calls.log` in the source folder; `FAIL` in the project's description makes the
/// build fail.
pub(crate) const BACKEND: &str = r#"
import base64, hashlib, os, zipfile
try:
    import tomllib
except ImportError:
    import tomli as tomllib

def _log(what):
    with open("backend-calls.log", "a") as f:
        f.write(what + "\n")

def _project():
    with open("pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]

def _files(p):
    dist = p["name"].replace("-", "_") + "-" + p["version"]
    info = dist + ".dist-info"
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"]]
    for d in p.get("dependencies", []):
        lines.append("Requires-Dist: " + d)
    for extra, deps in p.get("optional-dependencies", {}).items():
        lines.append("Provides-Extra: " + extra)
        for d in deps:
            lines.append('Requires-Dist: %s ; extra == "%s"' % (d, extra))
    root = os.path.abspath("src") if os.path.isdir("src") else os.path.abspath(".")
    files = {
        info + "/METADATA": "\n".join(lines) + "\n",
        info + "/WHEEL": "Wheel-Version: 1.0\nGenerator: tiny\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if "FINDER" in p.get("description", ""):
        # As setuptools' strict editable installs: a module the .pth imports puts the code
        # on the path.
        files["_tiny_finder.py"] = "import sys\nsys.path.append(%r)\n" % root
        files["__editable__." + dist + ".pth"] = "import _tiny_finder\n"
    else:
        files["__editable__." + dist + ".pth"] = root + "\n"
    groups = dict(p.get("entry-points", {}))
    if p.get("scripts"):
        groups["console_scripts"] = p["scripts"]
    if groups:
        files[info + "/entry_points.txt"] = "".join(
            "[%s]\n" % group + "".join("%s = %s\n" % kv for kv in sorted(eps.items()))
            for group, eps in sorted(groups.items()))
    return dist, info, files

def get_requires_for_build_editable(config_settings=None):
    _log("get_requires_for_build_editable")
    return []

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _log("build_editable")
    p = _project()
    if "FAIL" in p.get("description", ""):
        raise RuntimeError("this project cannot be built: " + p["description"])
    dist, info, files = _files(p)
    name = dist + "-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, text in files.items():
            data = text.encode()
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append("%s,sha256=%s,%d" % (path, digest.decode(), len(data)))
        record.append(info + "/RECORD,,")
        z.writestr(info + "/RECORD", "\n".join(record) + "\n")
    return name

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("only editable builds")

def build_sdist(sdist_directory, config_settings=None):
    raise RuntimeError("only editable builds")
"#;

/// `devhelper` (module `helper`, its `NAME`), and `devgreet` 9.0: a higher version of the develop project's name,
/// which must never be used. Names of their own: the download cache is shared by the tests,
/// and offline runs read it as a find-links folder, so another test's `helper 1.0` must not
/// be a different file of the same name.
fn index_packages() -> Vec<Package> {
    vec![
        Package::new("devhelper", "1.0").module("helper.py", "NAME = 'helper-1.0'\n"),
        Package::new("devgreet", "9.0")
            .module(
                "greet.py",
                "def main():\n    print('greet from the index')\n",
            )
            .entry_point("console_scripts", "greet", "greet:main"),
    ]
}

/// Writes the project `devgreet` (module `greet`, version `version`) in `dir`, built by `build_system` (the
/// `[build-system]` table's body).
fn write_greet(inst: &Instance, dir: &str, version: &str, build_system: &str) {
    inst.write(
        &format!("{dir}/pyproject.toml"),
        &format!(
            "[build-system]\n{build_system}\n\n[project]\nname = \"devgreet\"\nversion = \"{version}\"\n\
             dependencies = [\"devhelper\"]\n\n[project.scripts]\ngreet = \"greet:main\"\n"
        ),
    );
    inst.write(
        &format!("{dir}/greet.py"),
        "import helper\n\ndef main():\n    print('greet', helper.NAME)\n",
    );
}

/// A TOML instance developing `greet/` with the zc.recipe.egg part `app` for `devgreet`,
/// from `index`.
fn greet_app(index: &Index) -> Instance {
    Instance::new(&format!(
        "[buildout]\ndevelop = [\"greet\"]\nparts = [\"app\"]\nindex = \"{}\"\n\
         \n[app]\nrecipe = \"zc.recipe.egg\"\neggs = \"devgreet\"\n",
        index.url()
    ))
}

/// The in-tree backend: `backend-path` names a folder of the project.
const IN_TREE: &str = "requires = []\nbuild-backend = \"tinyback\"\nbackend-path = [\"_backend\"]";

/// An instance whose config is a `buildout.cfg` (written by the test).
fn cfg_instance() -> Instance {
    let inst = Instance::new("");
    std::fs::remove_file(inst.path("buildout.toml")).unwrap();
    inst
}

/// Runs `bin/<script>` of `dir` (zc_egg's runner).
fn run_script(dir: &Path, script: &str, args: &[&str]) -> String {
    crate::zc_egg::run_script(dir, &format!("bin/{script}"), args)
}

/// The version of `devgreet` that `importlib.metadata` finds through `bin/py`.
fn greet_version(inst: &Instance) -> String {
    let code = "import importlib.metadata as m; print(m.version('devgreet'))";
    run_script(inst.dir(), "py", &["-c", code])
}

fn builds(inst: &Instance, dir: &str) -> usize {
    inst.log(&format!("{dir}/backend-calls.log"))
        .iter()
        .filter(|l| *l == "build_editable")
        .count()
}

#[test]
fn a_develop_folder_gets_its_scripts_its_dependencies_from_the_index_and_stays_editable() {
    let index = Index::serve(&index_packages());
    let inst = cfg_instance();
    write_greet(&inst, "src/greet", "1.0", IN_TREE);
    inst.write("src/greet/_backend/tinyback.py", BACKEND);
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\ndevelop = src/* nothing/*\nparts = app\nindex = {}\n\
             \n[app]\nrecipe = zc.recipe.egg\neggs = devgreet\ninterpreter = py\n",
            index.url()
        ),
    );
    let r = inst.ok(&[]);
    assert!(
        r.stderr
            .contains("couldn't develop `nothing/*` (buildout:develop): it matches nothing"),
        "{}",
        r.stderr
    );
    // The develop project, not the index's devgreet 9.0; devhelper from the index.
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
    assert!(
        !index.requests().iter().any(|r| r.contains("devgreet")),
        "the index was asked for the develop project: {:?}",
        index.requests()
    );
    assert_eq!(greet_version(&inst), "1.0\n");
    assert!(inst.path("develop-eggs/devgreet").is_dir());
    let lock = inst.read("buildout.lock");
    assert!(lock.contains("url = \"develop:"), "{lock}");
    assert_eq!(builds(&inst, "src/greet"), 1);

    // Editable: a change to the code is live without a run.
    inst.write(
        "src/greet/greet.py",
        "def main():\n    print('greet edited')\n",
    );
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet edited\n");

    // A run with no change builds nothing.
    inst.ok(&[]);
    assert_eq!(builds(&inst, "src/greet"), 1, "a no-op run ran the backend");

    // A change to pyproject.toml builds again.
    write_greet(&inst, "src/greet", "1.1", IN_TREE);
    inst.ok(&[]);
    assert_eq!(builds(&inst, "src/greet"), 2);
    assert_eq!(greet_version(&inst), "1.1\n");
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
}

#[test]
fn a_pth_that_imports_a_finder_works_in_scripts_and_the_interpreter() {
    let index = Index::serve(&index_packages());
    let inst = cfg_instance();
    write_greet(&inst, "greet", "1.0", IN_TREE);
    inst.write("greet/_backend/tinyback.py", BACKEND);
    let text = inst.read("greet/pyproject.toml").replace(
        "name = \"devgreet\"",
        "name = \"devgreet\"\ndescription = \"FINDER\"",
    );
    inst.write("greet/pyproject.toml", &text);
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\ndevelop = greet\nparts = app\nindex = {}\n\
             \n[app]\nrecipe = zc.recipe.egg\neggs = devgreet\ninterpreter = py\n",
            index.url()
        ),
    );
    inst.ok(&[]);
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
    assert_eq!(
        run_script(inst.dir(), "py", &["-c", "import greet; greet.main()"]),
        "greet helper-1.0\n"
    );
}

#[test]
fn a_backend_the_interpreter_lacks_comes_from_the_index_into_an_isolated_build() {
    let mut packages = index_packages();
    packages.push(Package::new("tinyback", "1.0").module("tinyback.py", BACKEND));
    let index = Index::serve(&packages);
    let inst = greet_app(&index);
    write_greet(
        &inst,
        "greet",
        "1.0",
        "requires = [\"tinyback>=1\"]\nbuild-backend = \"tinyback\"",
    );
    inst.ok(&[]);
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
    assert!(
        index.requests().iter().any(|r| r.contains("tinyback")),
        "{:?}",
        index.requests()
    );
    let eggs: Vec<String> = std::fs::read_dir(inst.path("eggs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        eggs.iter().any(|e| e.starts_with("tinyback-1.0")),
        "{eggs:?}"
    );
    assert_eq!(builds(&inst, "greet"), 1);
}

/// An in-tree backend (tinyback's hooks) that asks for `devbuildhelp` in
/// `get_requires_for_build_editable` and imports it to build; each call logs its process
/// and whether the interpreter's site-packages were on the path.
const ASKING_BACKEND: &str = r#"
import os, sys
from tinyback import build_sdist, build_wheel
import tinyback

def _log(what):
    with open("asking-calls.log", "a") as f:
        f.write("%s pid=%d site=%d\n" % (what, os.getpid(), int(not sys.flags.no_site)))

def get_requires_for_build_editable(config_settings=None):
    _log("requires")
    return ["devbuildhelp>=1"]

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    import devbuildhelp
    _log("build " + devbuildhelp.NAME)
    return tinyback.build_editable(wheel_directory, config_settings, metadata_directory)
"#;

#[test]
fn what_the_interpreter_lacks_to_build_is_fetched_beside_its_own_packages_in_one_backend_process() {
    let mut packages = index_packages();
    packages
        .push(Package::new("devbuildhelp", "1.0").module("devbuildhelp.py", "NAME = 'help-1.0'\n"));
    let index = Index::serve(&packages);
    let inst = greet_app(&index);
    write_greet(
        &inst,
        "greet",
        "1.0",
        "requires = []\nbuild-backend = \"asking\"\nbackend-path = [\"_backend\"]",
    );
    inst.write("greet/_backend/tinyback.py", BACKEND);
    inst.write("greet/_backend/asking.py", ASKING_BACKEND);
    let out = inst.ok(&["-v"]);
    assert!(
        out.stderr
            .contains("installing what the interpreter lacks to build"),
        "{}",
        out.stderr
    );
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
    // One process asked and built, with the interpreter's own packages on its path (not an
    // isolated build) and the fetched requirement importable.
    let calls = inst.log("greet/asking-calls.log");
    assert_eq!(calls.len(), 2, "{calls:?}");
    let pid = |l: &str| {
        l.split(' ')
            .find(|w| w.starts_with("pid="))
            .map(str::to_owned)
    };
    assert!(
        calls[0].starts_with("requires ") && calls[1].starts_with("build help-1.0 "),
        "{calls:?}"
    );
    assert_eq!(pid(&calls[0]), pid(&calls[1]), "{calls:?}");
    assert!(calls.iter().all(|l| l.ends_with(" site=1")), "{calls:?}");
    assert!(
        index.requests().iter().any(|r| r.contains("devbuildhelp")),
        "{:?}",
        index.requests()
    );
}

/// `python` may be a wrapper (pyenv's shims are shell scripts that cost about 100 ms a
/// start): it runs only while the interpreter is asked about itself the first time (that
/// question, and the first backend process beside it); then the backend and the bytecode
/// compiler run the `sys.executable` it gave.
#[test]
fn a_python_wrapper_runs_only_while_the_interpreter_is_first_asked_about_itself() {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let real = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let index = Index::serve(&index_packages());
    let inst = Instance::new("");
    let wrapper = inst.path("wrapped-python");
    inst.write(
        "wrapped-python",
        &format!(
            "#!/bin/sh\necho run >> '{}'\nexec '{real}' \"$@\"\n",
            inst.path("wrapper-runs.log").display()
        ),
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    inst.write(
        "buildout.toml",
        &format!(
            "[buildout]\ndevelop = [\"greet\"]\nparts = [\"app\"]\nindex = \"{}\"\n\
             python = \"{}\"\n\n[app]\nrecipe = \"zc.recipe.egg\"\neggs = \"devgreet\"\n",
            index.url(),
            wrapper.display()
        ),
    );
    write_greet(&inst, "greet", "1.0", IN_TREE);
    inst.write("greet/_backend/tinyback.py", BACKEND);
    inst.ok(&[]);
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
    assert_eq!(builds(&inst, "greet"), 1);
    // devhelper came from the index and was compiled, by the executable itself.
    assert!(
        std::fs::read_dir(inst.path("eggs"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("devhelper-1.0")),
    );
    assert_eq!(inst.log("wrapper-runs.log"), ["run", "run"]);
    // A changed pyproject.toml: built again, without the wrapper.
    write_greet(&inst, "greet", "1.1", IN_TREE);
    inst.ok(&[]);
    assert_eq!(builds(&inst, "greet"), 2);
    assert_eq!(inst.log("wrapper-runs.log"), ["run", "run"]);
}

#[test]
fn a_failing_backend_fails_the_run_naming_the_folder_and_a_folder_without_a_project_is_a_config_error()
 {
    let index = Index::serve(&index_packages());
    let inst = greet_app(&index);
    write_greet(&inst, "greet", "1.0", IN_TREE);
    inst.write("greet/_backend/tinyback.py", BACKEND);
    let text = inst.read("greet/pyproject.toml").replace(
        "name = \"devgreet\"",
        "name = \"devgreet\"\ndescription = \"FAIL on purpose\"",
    );
    inst.write("greet/pyproject.toml", &text);
    let r = inst.fails(&[], 1);
    let folder = inst.path("greet");
    assert!(
        r.stderr.contains(&format!(
            "cannot develop {}: its build backend `tinyback` failed",
            folder.display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("this project cannot be built: FAIL on purpose"),
        "{}",
        r.stderr
    );

    inst.write("empty/README", "no project here\n");
    inst.config("[buildout]\ndevelop = [\"empty\"]\nparts = []\n");
    let r = inst.fails(&[], 2);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "error: buildout:develop: {} is not a Python project: it has none of \
             pyproject.toml, setup.py, setup.cfg",
            inst.path("empty").display()
        )
    );
}

/// A python whose setuptools can build editable wheels by itself (setuptools >= 70.1, which
/// has `bdist_wheel`): the zc.buildout venv's (`RBUILDOUT_ZC_BUILDOUT`). `None` (the test
/// is skipped, with a note) when there is none, unless `RBUILDOUT_REQUIRE_ORACLE` is set.
fn setuptools_python() -> Option<PathBuf> {
    rbuildout_tests::oracle("a setuptools build (it needs a python with setuptools >= 70.1)")
        .map(PathBuf::from)
}

/// The setuptools project `devgreet` with `setup.py` (and, with `pyproject`, a
/// `pyproject.toml` naming setuptools).
fn write_setuptools_greet(inst: &Instance, dir: &str, pyproject: bool) {
    inst.write(
        &format!("{dir}/setup.py"),
        "from setuptools import setup\nsetup(name='devgreet', version='1.0', py_modules=['greet'],\n      \
         install_requires=['devhelper'],\n      entry_points={'console_scripts': ['greet = greet:main']})\n",
    );
    if pyproject {
        inst.write(
            &format!("{dir}/pyproject.toml"),
            "[build-system]\nrequires = [\"setuptools>=64\"]\nbuild-backend = \"setuptools.build_meta\"\n",
        );
    }
    inst.write(
        &format!("{dir}/greet.py"),
        "import helper\n\ndef main():\n    print('greet', helper.NAME)\n",
    );
}

#[test]
fn setuptools_projects_with_setup_py_and_pyproject_toml_are_developed() {
    let Some(python) = setuptools_python() else {
        return;
    };
    let index = Index::serve(&index_packages());
    let inst = cfg_instance();
    write_setuptools_greet(&inst, "legacy", false);
    write_setuptools_greet(&inst, "modern", true);
    inst.write(
        "modern/setup.py",
        &inst
            .read("modern/setup.py")
            .replace("'devgreet'", "'devgreet2'")
            .replace("'greet = greet:main'", "'greet2 = greet:main'"),
    );
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\ndevelop = legacy modern\nparts = app\nindex = {}\npython = {}\n\
             \n[app]\nrecipe = zc.recipe.egg\neggs = devgreet\n    devgreet2\n",
            index.url(),
            python.display()
        ),
    );
    inst.ok(&[]);
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
    assert_eq!(run_script(inst.dir(), "greet2", &[]), "greet helper-1.0\n");
    inst.write("legacy/greet.py", "def main():\n    print('edited')\n");
    assert_eq!(run_script(inst.dir(), "greet", &[]), "edited\n");
}

#[test]
fn setuptools_from_the_index_builds_where_the_interpreter_cannot() {
    let Some(zc_python) = setuptools_python() else {
        return;
    };
    // A venv without setuptools: its python has no backend at all.
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    run_bounded(
        Command::new("python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv),
        "python3 -m venv",
    );
    // The setuptools of the oracle's environment, packed into a wheel.
    let mut packages = index_packages();
    packages.push(Package::installed(&zc_python, "setuptools"));
    let index = Index::serve(&packages);
    let inst = cfg_instance();
    write_setuptools_greet(&inst, "greet", true);
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\ndevelop = greet\nparts = app\nindex = {}\npython = {}\n\
             \n[app]\nrecipe = zc.recipe.egg\neggs = devgreet\n",
            index.url(),
            venv.join("bin/python").display()
        ),
    );
    inst.ok(&[]);
    assert_eq!(run_script(inst.dir(), "greet", &[]), "greet helper-1.0\n");
    assert!(
        index.requests().iter().any(|r| r.contains("setuptools")),
        "{:?}",
        index.requests()
    );
}

/// `bin/<script>` as zc_egg's comparison normalises it, and the develop distribution's
/// entries, `develop` (each tool's lines for it), made `<develop>`: zc.buildout 6 puts
/// `develop-eggs` itself (where pip put the editable wheel), rbuildout `develop-eggs/<name>`
/// and the source folder its `.pth` names (docs/develop.md).
fn normalized(dir: &Path, eggs: &Path, script: &str, develop: &str) -> String {
    rbuildout_tests::normalized_script(dir, eggs, script).replace(develop, "  <develop>,\n")
}

#[test]
fn develop_dot_with_zc_recipe_egg_makes_the_scripts_zc_buildout_makes() {
    let Some(python) = setuptools_python() else {
        return;
    };
    let index = Index::serve(&index_packages());
    let cfg = format!(
        "[buildout]\ndevelop = .\nparts = app\nindex = {}\nnewest = false\n\
         \n[app]\nrecipe = zc.recipe.egg\neggs = devgreet\ninterpreter = py\n",
        index.url()
    );
    let project = |dir: &Path| {
        std::fs::write(dir.join("buildout.cfg"), &cfg).unwrap();
        std::fs::create_dir(dir.join(".home")).unwrap();
        std::fs::write(
            dir.join("setup.py"),
            "from setuptools import setup\nsetup(name='devgreet', version='1.0', py_modules=['greet'],\n      \
             install_requires=['devhelper'],\n      entry_points={'console_scripts': ['greet = greet:main']})\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("greet.py"),
            "import helper\n\ndef main():\n    print('greet', helper.NAME)\n",
        )
        .unwrap();
    };
    let zc_tmp = tempfile::tempdir().unwrap();
    let zc_dir = zc_tmp.path().canonicalize().unwrap();
    project(&zc_dir);
    let zc_log = rbuildout_tests::zc_buildout(&python, &zc_dir, &[]);
    let rb_tmp = tempfile::tempdir().unwrap();
    let rb_dir = rb_tmp.path().canonicalize().unwrap();
    project(&rb_dir);
    let python_option = format!("buildout:python={}", python.display());
    let rb_log = rbuildout_tests::rbuildout_cfg(&rb_dir, &[&python_option]);
    for script in ["greet", "py"] {
        let zc = normalized(
            &zc_dir,
            &zc_dir.join("eggs/v5"),
            script,
            "  '${DIR}/develop-eggs',\n",
        );
        let rb = normalized(
            &rb_dir,
            &rb_dir.join("eggs"),
            script,
            "  '${DIR}/develop-eggs/devgreet',\n  '${DIR}',\n",
        );
        assert!(rb.contains("<develop>"), "{rb}");
        assert_eq!(
            rb, zc,
            "bin/{script} differs\nzc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
        );
        let args: &[&str] = if script == "py" {
            &["-c", "import greet; greet.main()"]
        } else {
            &[]
        };
        // zc.buildout's do not run: setuptools' default editable install of a flat
        // project is a finder its `.pth` imports, and nothing reads that `.pth`.
        assert_eq!(run_script(&rb_dir, script, args), "greet helper-1.0\n");
    }
}

/// A `[versions]` pin of a develop distribution's name must allow its version: a pin that
/// does not fails the part naming both (the index, which has `devgreet 9.0`, is never asked);
/// one that does is fine.
#[test]
fn a_pin_that_excludes_the_develop_version_is_an_error_naming_both() {
    let index = Index::serve(&index_packages());
    let config = |pin: &str| {
        format!(
            "[buildout]\ndevelop = [\"greet\"]\nparts = [\"app\"]\nindex = \"{}\"\n\
             \n[versions]\ndevgreet = \"{pin}\"\n\
             \n[app]\nrecipe = \"zc.recipe.egg\"\neggs = \"devgreet\"\ninterpreter = \"py\"\n",
            index.url()
        )
    };
    let inst = Instance::new(&config("9.0"));
    write_greet(&inst, "greet", "1.0", IN_TREE);
    inst.write("greet/_backend/tinyback.py", BACKEND);
    let run = inst.fails(&[], 1);
    assert!(
        run.stderr
            .contains("[versions] pins devgreet = 9.0, but the develop distribution")
            && run.stderr.contains("greet is 1.0"),
        "{}",
        run.stderr
    );
    assert!(
        !index.requests().iter().any(|r| r.contains("devgreet")),
        "{:?}",
        index.requests()
    );
    for pin in ["1.0", ">=0.5,<2"] {
        inst.config(&config(pin));
        inst.ok(&[]);
        assert_eq!(greet_version(&inst), "1.0\n", "pin {pin}");
    }
}
