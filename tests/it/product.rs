//! What `cargo build --workspace` delivers: the binary, with the built-in recipes linked in
//! (it runs them alone, and a library on the plugin path replaces one), and beside it their
//! libraries only. The test
//! plugins (`testkit`, `raw`: recipes that panic, write outside the instance, return a million
//! paths) are a workspace of their own, built by the tests into `target/test-plugins/`.

use std::collections::BTreeSet;

use rbuildout_tests::{Instance, Run, rbuildout_bin, target_dir, test_plugins_dir};

/// The recipe plugins that ship with rbuildout.
const BUILT_IN: [&str; 7] = [
    "activate", "command", "egg", "mkdir", "scripts", "symlink", "template",
];

#[test]
fn the_build_folder_holds_no_test_plugin() {
    for name in ["testkit", "raw"] {
        let lib = target_dir().join(format!("librbuildout_recipe_{name}.so"));
        assert!(
            !lib.exists(),
            "{} is a test plugin beside the binary: delete it if an older checkout built it \
             there; the tests build it into {}",
            lib.display(),
            test_plugins_dir().display()
        );
    }
}

#[test]
fn plugins_beside_the_binary_are_the_built_in_recipes_only() {
    let inst = Instance::new("");
    let run = rbuildout_tests::Run::of(
        inst.command(&["plugins", "--json"])
            .env_remove("RBUILDOUT_PLUGIN_PATH"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    let names: BTreeSet<&str> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, BTreeSet::from(BUILT_IN), "{}", run.stdout);
}

/// `rbuildout plugins --json` of `command`, parsed.
fn plugins_json(command: &mut std::process::Command) -> Vec<serde_json::Value> {
    let run = Run::of(command.args(["plugins", "--json"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    list.as_array().expect("an array").clone()
}

#[test]
fn the_binary_alone_runs_its_built_in_recipes() {
    let inst = Instance::new(
        "[buildout]\nparts = [\"dirs\", \"page\", \"cmd\"]\n\n\
         [dirs]\nrecipe = \"mkdir\"\npaths = [\"var/log\"]\n\n\
         [page]\nrecipe = \"collective.recipe.template\"\n\
         input = \"inline:\\nlogs in ${dirs:paths}\"\noutput = \"page.txt\"\n\n\
         [cmd]\nrecipe = \"plone.recipe.command\"\ncommand = \"echo ran > cmd.txt\"\n",
    );
    // Nothing beside the binary, no plugin path: only what is linked into it.
    let alone = tempfile::tempdir().unwrap();
    let bin = alone.path().join("rbuildout");
    std::fs::copy(rbuildout_bin(), &bin).unwrap();
    let command = |args: &[&str]| {
        let mut c = std::process::Command::new(&bin);
        c.current_dir(inst.dir())
            .env_remove("RBUILDOUT_PLUGIN_PATH")
            .env("RBUILDOUT_HOME", inst.path(".home"))
            .env("HOME", inst.path(".home"))
            .env("NO_COLOR", "1")
            .arg("-U")
            .args(args);
        c
    };
    let list = plugins_json(&mut command(&[]));
    let names: BTreeSet<&str> = list.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(BUILT_IN), "{list:?}");
    for plugin in &list {
        assert_eq!(plugin["builtin"], true, "{plugin}");
        assert_eq!(plugin["path"], bin.to_str().unwrap(), "{plugin}");
    }
    let run = Run::of(&mut command(&[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(inst.path("var/log").is_dir());
    assert_eq!(inst.read("page.txt"), "logs in var/log");
    assert_eq!(inst.read("cmd.txt"), "ran\n");
    // A built-in's identity is no file's: the state records no stamp of the binary.
    let state = inst.read(".installed.toml");
    assert!(!state.contains("stamp ="), "{state}");
    let again = Run::of(&mut command(&[]));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("0 installed"), "{}", again.stderr);
}

#[test]
fn a_plugin_on_the_plugin_path_replaces_a_built_in() {
    let inst = Instance::new(
        "[buildout]\nparts = [\"f\"]\nplugin-path = [\"plugins\"]\n\n\
         [f]\nrecipe = \"mkdir:file\"\npath = \"f.txt\"\ncontent = \"from the plugin\"\n",
    );
    std::fs::create_dir(inst.path("plugins")).unwrap();
    std::fs::copy(
        test_plugins_dir().join("librbuildout_recipe_testkit.so"),
        inst.path("plugins/librbuildout_recipe_mkdir.so"),
    )
    .unwrap();
    inst.ok(&[]);
    assert_eq!(inst.read("f.txt"), "from the plugin");
    let list = plugins_json(&mut inst.command(&[]));
    let mkdirs: Vec<(bool, bool)> = list
        .iter()
        .filter(|p| p["name"] == "mkdir")
        .map(|p| (p["builtin"] == true, p["shadowed"] == true))
        .collect();
    // The library, then the built-in it shadows, then (in a cargo build, not an installed
    // binary) the library cargo built beside the binary, shadowed too.
    assert_eq!(mkdirs[..2], [(false, false), (true, true)], "{list:?}");
    assert!(mkdirs[2..].iter().all(|&m| m == (false, true)), "{list:?}");
}

#[test]
fn the_tests_still_find_the_test_plugins() {
    for name in ["testkit", "raw"] {
        let lib = test_plugins_dir().join(format!("librbuildout_recipe_{name}.so"));
        assert!(lib.is_file(), "{} is missing", lib.display());
    }
    let inst = Instance::new(
        "[buildout]\nparts = [\"f\"]\n\n[f]\nrecipe = \"testkit:file\"\npath = \"f.txt\"\ncontent = \"hi\"\n",
    );
    inst.ok(&[]);
    assert_eq!(inst.read("f.txt"), "hi");
}

/// The `(name, version)` of every registry package a `Cargo.lock` pins.
fn locked(path: &std::path::Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lock: toml::Value = toml::from_str(&text).unwrap();
    lock["package"]
        .as_array()
        .expect("a package array")
        .iter()
        .filter(|p| p.get("source").is_some())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The harness builds the test plugins `--offline` (tests never reach the network), so every
/// crate their lockfile pins must be one the root build already fetched: the same name at the
/// same version in the root `Cargo.lock`.
#[test]
fn the_test_plugins_lock_only_crates_the_root_build_fetches() {
    let root = rbuildout_tests::repo_root();
    let plugins = locked(&root.join("tests/plugins/Cargo.lock"));
    let product = locked(&root.join("Cargo.lock"));
    let missing: Vec<_> = plugins.difference(&product).collect();
    assert!(
        missing.is_empty(),
        "tests/plugins/Cargo.lock pins crates the root Cargo.lock does not: {missing:?}; \
         run `cargo update --manifest-path tests/plugins/Cargo.toml` to follow the root"
    );
    assert!(
        !plugins.is_empty(),
        "the test plugins depend on tracing through plugin-api"
    );
}

/// Every shipped recipe crate forbids `unsafe` code at its root, so a new recipe copied from
/// an old one cannot quietly drop it (`export_plugin!`, the one piece that needs the ABI's
/// `unsafe`, is `plugin-api`'s).
#[test]
fn every_recipe_forbids_unsafe_code() {
    let recipes = rbuildout_tests::repo_root().join("recipes");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&recipes).unwrap() {
        let dir = entry.unwrap().path();
        let lib = dir.join("src/lib.rs");
        if !lib.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&lib).unwrap();
        assert!(
            text.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]"),
            "{} lacks #![forbid(unsafe_code)]",
            lib.display()
        );
        seen.insert(dir.file_name().unwrap().to_string_lossy().into_owned());
    }
    let seen: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(seen, BTreeSet::from(BUILT_IN));
}
