//! Recipe plugins through the real binary (SPEC §4): the SDK's `testkit`, the bare-ABI `raw`,
//! the C example compiled here with gcc, the Rust example built by its own `cargo build`,
//! and libraries that are not plugins or target another ABI.

use std::path::Path;

use rbuildout_tests::{Instance, Run, repo_root, target_dir, test_plugins_dir};

/// Runs rbuildout in `inst` with `plugin_path` as `RBUILDOUT_PLUGIN_PATH` instead of the
/// workspace's target folder.
fn run_with(inst: &Instance, args: &[&str], plugin_path: &Path) -> Run {
    Run::of(inst.command(args).env("RBUILDOUT_PLUGIN_PATH", plugin_path))
}

/// Compiles a C plugin against the header alone, into `out`, symbols hidden unless exported.
fn compile_c(source: &Path, out: &Path, defines: &[&str]) {
    let flags: Vec<&str> = ["-fvisibility=hidden"]
        .into_iter()
        .chain(defines.iter().copied())
        .collect();
    rbuildout_tests::compile_c(source, out, &flags);
}

/// A part using `recipe`, after a part `a` that always works.
fn two_parts(recipe: &str, extra: &str) -> String {
    format!(
        r#"
[buildout]
parts = ["a", "b"]

[a]
recipe = "testkit:file"
path = "a.txt"
content = "A"

[b]
recipe = "{recipe}"
{extra}
"#
    )
}

#[test]
fn a_panicking_recipe_fails_its_part_and_nothing_else() {
    let inst = Instance::new(&two_parts("testkit:panic", r#"message = "kaboom""#));
    let run = inst.fails(&[], 1);
    run.stderr_has("recipe `testkit:panic` panicked: kaboom (at testkit/src/lib.rs:");
    run.stderr_has("part `b`");
    // The SDK's panic hook keeps the plugin's own panic report off the terminal.
    assert!(!run.stderr.contains("thread '"), "{}", run.stderr);
    crate::snapshot!(
        "panic",
        Some(inst.dir()),
        crate::snap::messages(&run.stderr)
    );
    assert_eq!(inst.read("a.txt"), "A");
    let state = inst.read(".installed.toml");
    assert!(
        state.contains("[parts.a]") && !state.contains("[parts.b]"),
        "{state}"
    );
}

#[test]
fn a_recipe_error_and_invalid_utf8_are_reported_against_the_part() {
    let inst = Instance::new(&two_parts(
        "testkit:error",
        r#"message = "no disk for you""#,
    ));
    let run = inst.run(&[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("part `b`") && run.stderr.contains("no disk for you"),
        "{}",
        run.stderr
    );
    let mut messages = format!("== testkit:error\n{}\n", crate::snap::messages(&run.stderr));

    inst.config(&two_parts("raw:invalid-utf8-path", ""));
    let run = inst.run(&[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            r#"recipe `raw:invalid-utf8-path` sent a path that is not valid UTF-8: "bad\xff\xfe""#
        ),
        "{}",
        run.stderr
    );
    messages.push_str(&format!(
        "== raw:invalid-utf8-path\n{}\n",
        crate::snap::messages(&run.stderr)
    ));
    crate::snapshot!("error_and_invalid_utf8", Some(inst.dir()), messages);
}

#[test]
fn libraries_that_are_not_v1_plugins_are_refused_by_name() {
    let inst = Instance::new("");
    let libz = rbuildout_tests::system_libz().display().to_string();
    let broken = repo_root().join("tests/plugins/c/broken.c");
    let v2 = inst.path("libv2.so");
    compile_c(&broken, &v2, &["-DVARIANT=1"]);
    let magic = inst.path("libmagic.so");
    compile_c(&broken, &magic, &["-DVARIANT=3"]);
    for (recipe, message) in [
        (
            libz.to_owned(),
            format!(
                "{libz} is not an rbuildout recipe plugin: it does not export `rbuildout_plugin_v1`"
            ),
        ),
        (
            "./libv2.so".to_owned(),
            format!(
                "{} is a recipe plugin for ABI v2, but this rbuildout loads ABI v1 plugins",
                inst.path("./libv2.so").display()
            ),
        ),
        (
            "./libmagic.so".to_owned(),
            format!(
                "{} is not an rbuildout recipe plugin: its descriptor starts with 0x1122334455667788",
                inst.path("./libmagic.so").display()
            ),
        ),
    ] {
        inst.config(&two_parts(&recipe, ""));
        let run = inst.run(&[]);
        assert_ne!(run.code, 0, "{recipe}");
        assert!(run.stderr.contains(&message), "{recipe}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn a_missing_plugin_says_what_file_it_looked_for_and_where() {
    let inst = Instance::new(&two_parts("no-such-recipe", ""));
    let run = inst.fails(&[], 2);
    run.stderr_has(&format!(
            "recipe plugin `no-such-recipe` not found: no librbuildout_recipe_no_such_recipe.so in {}, {}",
            test_plugins_dir().display(),
            target_dir().display()
        ));
    run.stderr_has("RBUILDOUT_PLUGIN_PATH");
    crate::snapshot!("missing_plugin", Some(inst.dir()), run.stderr);
}

#[test]
fn plugin_logs_show_with_verbose() {
    let config = two_parts("testkit:log", r#"message = "psst""#);
    let quiet = Instance::new(&config);
    let run = quiet.ok(&[]);
    run.stderr_has("context warn: psst");
    assert!(!run.stderr.contains("context info: psst"), "{}", run.stderr);

    let verbose = Instance::new(&config);
    let run = verbose.ok(&["-v"]);
    for line in [
        "context info: psst",
        "tracing info: psst",
        "tracing warn: psst answer=42",
        // A thread the plugin started: through the host's global log.
        "thread warn: psst",
    ] {
        assert!(run.stderr.contains(line), "no `{line}` in:\n{}", run.stderr);
    }
    assert!(
        !run.stderr.contains("context debug: psst"),
        "{}",
        run.stderr
    );
    let run = Instance::new(&config).run(&["-vv"]);
    run.stderr_has("context debug: psst");
}

#[test]
fn plugins_lists_every_library_with_its_abi_and_recipes() {
    let inst = Instance::new("");
    let first = inst.path("first");
    std::fs::create_dir(&first).unwrap();
    std::fs::copy(
        test_plugins_dir().join("librbuildout_recipe_testkit.so"),
        first.join("librbuildout_recipe_testkit.so"),
    )
    .unwrap();
    std::fs::write(first.join("librbuildout_recipe_junk.so"), "not a library").unwrap();
    let path = std::env::join_paths([first.clone(), test_plugins_dir()]).unwrap();
    let run = run_with(&inst, &["plugins", "--json"], Path::new(&path));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    let list = list.as_array().expect("an array");
    let find = |name: &str, shadowed: bool| {
        list.iter()
            .find(|p| p["name"] == name && p["shadowed"] == shadowed)
            .unwrap_or_else(|| panic!("no {name} (shadowed: {shadowed}) in {list:?}"))
    };
    let junk = find("junk", false);
    let junk_path = first.join("librbuildout_recipe_junk.so");
    assert_eq!(junk["path"], junk_path.display().to_string());
    assert!(
        junk["error"].as_str().unwrap().starts_with(&format!(
            "cannot load recipe plugin {}",
            junk_path.display()
        )),
        "{junk}"
    );
    let testkit = find("testkit", false);
    assert_eq!(
        testkit["path"],
        first
            .join("librbuildout_recipe_testkit.so")
            .display()
            .to_string()
    );
    assert_eq!(testkit["abi"], "1.5");
    let prepared = rbuildout_tests::named(&testkit["recipes"], "prepared");
    assert_eq!(
        (&prepared["prepare"], &prepared["update"]),
        (&true.into(), &false.into())
    );
    assert_eq!(testkit["version"], "0.1.0");
    let lifecycle = rbuildout_tests::named(&testkit["recipes"], "lifecycle");
    assert_eq!(
        (&lifecycle["update"], &lifecycle["uninstall"]),
        (&true.into(), &true.into())
    );
    // The test plugins' own build comes later in the search path.
    assert_eq!(
        find("testkit", true)["path"],
        test_plugins_dir()
            .join("librbuildout_recipe_testkit.so")
            .display()
            .to_string()
    );
    assert_eq!(find("raw", false)["abi"], "1.6");
}

#[test]
fn the_c_example_runs_through_the_binary() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["greeting"], plugin-path = ["plugins"], greeting = "bonjour" }
greeting = { recipe = "c-example", path = "greeting.txt" }
"#,
    );
    std::fs::create_dir(inst.path("plugins")).unwrap();
    compile_c(
        &repo_root().join("examples/c-recipe/recipe.c"),
        &inst.path("plugins/librbuildout_recipe_c_example.so"),
        &[],
    );
    // On a terminal, its ABI 1.5 progress report is the part's bar.
    let (code, screen) = rbuildout_tests::in_terminal(inst.command(&[]));
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("    greeting [=========================] 1/1 files written\r\x1b[J"),
        "{screen:?}"
    );
    assert_eq!(inst.read("greeting.txt"), "bonjour, greeting!\n");
    std::fs::remove_file(inst.path(".installed.toml")).unwrap();
    let run = inst.ok(&["-v"]);
    assert_eq!(inst.read("greeting.txt"), "bonjour, greeting!\n");
    run.stderr_has("wrote ");
    // Removing the part runs its uninstall hook, then the engine removes the file.
    inst.config("[buildout]\nparts = []\nplugin-path = [\"plugins\"]\n");
    let run = inst.ok(&["-v"]);
    run.stderr_has("uninstalling");
    assert!(!inst.path("greeting.txt").exists());
}

#[test]
fn a_library_can_be_named_by_path_with_an_entry() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["ctx"] }
ctx = { recipe = "./lib/libwhatever.so:context" }
"#,
    );
    std::fs::create_dir(inst.path("lib")).unwrap();
    std::fs::copy(
        test_plugins_dir().join("librbuildout_recipe_testkit.so"),
        inst.path("lib/libwhatever.so"),
    )
    .unwrap();
    inst.ok(&[]);
    let state: toml::Table = inst.read(".installed.toml").parse().unwrap();
    let outputs = &state["parts"]["ctx"]["outputs"];
    assert_eq!(outputs["part"].as_str(), Some("ctx"));
    assert_eq!(outputs["offline"].as_str(), Some("false"));
}

/// The example recipe crate, built by its own cargo invocation as an author would, then
/// used by the binary. The build folder lives in the target folder, so later runs reuse it.
#[test]
fn the_rust_example_built_on_its_own_runs_through_the_binary() {
    let plugins = rbuildout_tests::cargo_build(
        &repo_root().join("examples/hello-recipe/Cargo.toml"),
        &target_dir().join("hello-recipe-target"),
    );
    let config = format!(
        r#"
buildout = {{ parts = ["greet", "shout"], plugin-path = ["{}"] }}
greet = {{ recipe = "hello", name = "world" }}
shout = {{ recipe = "hello", greeting = "HEY", name = "${{greet:text}}", path = "shout.txt" }}
"#,
        plugins.display()
    );
    let inst = Instance::new(&config);
    inst.ok(&[]);
    assert_eq!(inst.read("greet.txt"), "hello, world!\n");
    assert_eq!(inst.read("shout.txt"), "HEY, hello, world!!\n");
    // Unchanged: the recipe's update runs and repairs an edited file.
    std::fs::write(inst.path("greet.txt"), "edited").unwrap();
    let run = inst.ok(&[]);
    assert_eq!(inst.read("greet.txt"), "hello, world!\n");
    run.stderr_has("was changed; writing it again");
}
