//! Plugins that crash the process: the user sees which part, recipe and library did it, the
//! process still dies of the signal, and the next run (config fixed) converges. The crashing
//! plugin is C compiled here (`tests/plugins/crash/crash.c`); the `panic = "abort"` one is a
//! Rust crate with its own workspace (`tests/plugins/crash/panic-abort`).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use rbuildout_tests::{Instance, repo_root, target_dir};

/// Compiles `tests/plugins/crash/crash.c` into `<instance>/plugins/`, returning the library.
fn crash_plugin(inst: &Instance) -> PathBuf {
    crash_plugin_with(inst, &[])
}

fn crash_plugin_with(inst: &Instance, defines: &[&str]) -> PathBuf {
    let dir = inst.path("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let flags: Vec<&str> = ["-pthread"]
        .into_iter()
        .chain(defines.iter().copied())
        .collect();
    rbuildout_tests::compile_c(
        &repo_root().join("tests/plugins/crash/crash.c"),
        &dir.join("librbuildout_recipe_crash.so"),
        &flags,
    )
}

/// A `.cfg`-free TOML config: part `first` always works, part `bad` uses `recipe`.
fn config(recipe: &str, plugins: &Path) -> String {
    format!(
        r#"
buildout = {{ parts = ["first", "bad"], plugin-path = ["{}"] }}
first = {{ recipe = "testkit:file", path = "first.txt", content = "1" }}
bad = {{ recipe = "{recipe}", path = "partial.txt", content = "fixed", needs = ["first"] }}
"#,
        plugins.display()
    )
}

/// Runs and returns (the signal the process died of, stderr).
fn crashed(inst: &Instance) -> (Option<i32>, String) {
    let out = inst.command(&[]).output().expect("run rbuildout");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "a crash is not a success: {stderr}");
    (out.status.signal(), stderr)
}

#[test]
fn a_segfault_or_abort_in_a_plugin_names_the_part_and_library_and_the_next_run_converges() {
    let inst = Instance::new("");
    let library = crash_plugin(&inst);
    let plugins = inst.path("plugins");
    for (recipe, signal, name) in [
        (
            "crash:segv",
            libc_signal::SEGV,
            "segmentation fault (SIGSEGV)",
        ),
        ("crash:abort", libc_signal::ABRT, "aborted (SIGABRT)"),
    ] {
        let _ = std::fs::remove_file(inst.path(".installed.toml"));
        inst.config(&config(recipe, &plugins));
        let (died_of, stderr) = crashed(&inst);
        assert_eq!(died_of, Some(signal), "{recipe}: {stderr}");
        let expected = format!(
            "rbuildout: part `bad` crashed in recipe `{recipe}` ({}): {name}\n",
            library.display()
        );
        assert!(stderr.contains(&expected), "{recipe}: {stderr}");
        // The part before it was recorded: the state is written after every part.
        assert_eq!(inst.installed(), ["first"], "{recipe}");
    }

    // The config fixed, the next run installs the crashed part and converges.
    inst.config(&config("testkit:file", &plugins));
    inst.ok(&[]);
    assert_eq!(inst.installed(), ["first", "bad"]);
    assert_eq!(inst.read("partial.txt"), "fixed");
    let again = inst.ok(&[]);
    again.stderr_has("0 installed, 0 reinstalled, 0 updated, 0 uninstalled, 2 unchanged");
}

#[test]
fn a_crash_on_a_thread_the_plugin_started_names_the_running_call() {
    let inst = Instance::new("");
    let library = crash_plugin(&inst);
    inst.config(&config("crash:thread", &inst.path("plugins")));
    let (died_of, stderr) = crashed(&inst);
    assert_eq!(died_of, Some(libc_signal::SEGV), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "rbuildout: part `bad` crashed in recipe `crash:thread` ({}): segmentation fault (SIGSEGV)",
            library.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_panic_in_a_plugin_built_with_panic_abort_shows_its_message_and_location() {
    // Its own workspace and profile; the build folder is kept in the target folder, so only
    // the first run compiles the SDK (a few seconds).
    let plugins = rbuildout_tests::cargo_build(
        &repo_root().join("tests/plugins/crash/panic-abort/Cargo.toml"),
        &target_dir().join("panic-abort-target"),
    );
    let inst = Instance::new(&format!(
        r#"
buildout = {{ parts = ["boom"], plugin-path = ["{}"] }}
boom = {{ recipe = "panicabort:panic", message = "kaboom" }}
"#,
        plugins.display()
    ));
    let (died_of, stderr) = crashed(&inst);
    assert_eq!(died_of, Some(libc_signal::ABRT), "{stderr}");
    assert!(
        stderr.contains("panicked at src/lib.rs:12:9: kaboom"),
        "the hook sent the message and location before the abort: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "rbuildout: part `boom` crashed in recipe `panicabort:panic` ({}): aborted (SIGABRT)",
            plugins.join("librbuildout_recipe_panicabort.so").display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_crash_while_loading_a_plugin_names_the_library() {
    let inst = Instance::new("");
    let library = crash_plugin_with(&inst, &["-DCRASH_IN_INIT"]);
    inst.config(&config("crash:segv", &inst.path("plugins")));
    let (died_of, stderr) = crashed(&inst);
    assert_eq!(died_of, Some(libc_signal::SEGV), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "rbuildout: crashed loading recipe plugin {}: segmentation fault (SIGSEGV)",
            library.display()
        )),
        "{stderr}"
    );
}

/// Signal numbers on Linux, without a libc dependency for three constants.
mod libc_signal {
    pub const ABRT: i32 = 6;
    pub const SEGV: i32 = 11;
}

#[test]
fn a_crash_in_a_nested_build_names_the_inner_part() {
    let inst = Instance::new("");
    let library = crash_plugin(&inst);
    // Nested builds use the outer run's plugins.
    inst.config(&format!(
        "[buildout]\nparts = [\"code\"]\nplugin-path = [\"{}\"]\n\n[code]\nrecipe = \"symlink\"\nrevision = \"r1\"\nconfig = \"release.toml\"\n",
        inst.path("plugins").display()
    ));
    inst.write(
        "release.toml",
        "[buildout]\nparts = [\"inner\"]\n\n[inner]\nrecipe = \"crash:abort\"\n",
    );
    let (died_of, stderr) = crashed(&inst);
    assert_eq!(died_of, Some(libc_signal::ABRT), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "rbuildout: part `inner` crashed in recipe `crash:abort` ({}): aborted (SIGABRT)",
            library.display()
        )),
        "the innermost call is named, not the symlink part: {stderr}"
    );
}
