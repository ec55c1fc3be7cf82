//! The engine's safety rules against a hostile recipe and a careless config (issue 8): paths
//! the engine owns or another part owns are never a part's, nothing outside the instance is
//! removed, the lock and state files are never written through a link, outputs follow the
//! name rules, nested builds are bounded, the default `jobs` runs parts in order, and
//! `rbuildout uninstall PART --skip-hook` is the way out of a hook that always fails.
//!
//! The hostile recipe is `tests/plugins/hostile/hostile.c`, compiled here with gcc against
//! the header alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rbuildout_tests::{Instance, Run, repo_root, target_dir, test_plugins_dir};

/// The folder holding `librbuildout_recipe_hostile.so`, compiled once per test process.
fn hostile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("hostile-plugin");
        std::fs::create_dir_all(&dir).expect("create the plugin folder");
        let source = repo_root().join("tests/plugins/hostile/hostile.c");
        let tmp = dir.join(format!(".tmp-{}.so", std::process::id()));
        rbuildout_tests::compile_c(&source, &tmp, &["-Wextra", "-fvisibility=hidden"]);
        std::fs::rename(&tmp, dir.join("librbuildout_recipe_hostile.so")).expect("rename");
        dir
    })
}

/// The plugin path of these tests: the hostile plugin first, then the test plugins (the
/// `testkit` parts beside the hostile one) and the built-in recipes.
fn hostile_path() -> std::ffi::OsString {
    std::env::join_paths([
        hostile_dir().to_path_buf(),
        test_plugins_dir(),
        target_dir(),
    ])
    .expect("plugin folders join")
}

/// Runs rbuildout in `inst` with the hostile plugin on the plugin path.
fn run(inst: &Instance, args: &[&str]) -> Run {
    Run::of(
        inst.command(args)
            .env("RBUILDOUT_PLUGIN_PATH", hostile_path()),
    )
}

fn expect(inst: &Instance, args: &[&str], code: i32) -> Run {
    let r = run(inst, args);
    assert_eq!(
        r.code, code,
        "rbuildout {args:?}: expected exit {code}:\n{}",
        r.stderr
    );
    r
}

/// A config whose part `h` registers `paths` (one per line), after a part `a` that writes
/// `parts/a.txt`.
fn registering(paths: &[&str], extra: &str) -> String {
    format!(
        r#"
[buildout]
parts = ["a", "h"]
{extra}

[a]
recipe = "testkit:file"
path = "parts/a.txt"
content = "A"

[h]
recipe = "hostile:register"
paths = {paths:?}
"#
    )
}

const NOTHING: &str = "[buildout]\nparts = []\n";

#[test]
fn the_engines_own_paths_are_refused_and_survive() {
    let inst = Instance::new("");
    inst.write("base.toml", "[buildout]\n");
    let dir = inst.dir().display().to_string();
    let config = |paths: &[&str]| {
        registering(
            paths,
            "extends = [\"base.toml\"]\nplugin-path = [\"plugins\"]",
        )
        .replace("[buildout]\n", "")
    };
    // Every run has a state and a lock, and the folders exist, before the attacks.
    inst.config(&format!("[buildout]\n{}", config(&[])));
    std::fs::create_dir_all(inst.path("eggs")).unwrap();
    std::fs::create_dir_all(inst.path("develop-eggs")).unwrap();
    std::fs::create_dir_all(inst.path("plugins")).unwrap();
    expect(&inst, &[], 0);
    let cases: Vec<(String, &str)> = vec![
        ("buildout.toml".into(), "which is the config file"),
        ("base.toml".into(), "which is a file the config extends"),
        ("buildout.lock".into(), "which is the config's lock file"),
        (".installed.toml".into(), "which is the state file"),
        (".installed.toml.lock".into(), "which is the instance lock"),
        ("bin".into(), "which is buildout:bin-directory"),
        ("parts".into(), "which is buildout:parts-directory"),
        ("eggs".into(), "which is buildout:eggs-directory"),
        (
            "develop-eggs".into(),
            "which is buildout:develop-eggs-directory",
        ),
        (
            "plugins".into(),
            "which is a folder of buildout:plugin-path",
        ),
        (".".into(), "which is the instance directory"),
        (dir.clone(), "which is the instance directory"),
        ("..".into(), "which holds the instance directory"),
        ("parts/../buildout.toml".into(), "which is the config file"),
    ];
    // What the user reads for each refusal, all in one snapshot.
    let mut messages = String::new();
    for (path, why) in &cases {
        inst.config(&format!("[buildout]\n{}", config(&[path])));
        let r = expect(&inst, &[], 1);
        assert!(
            r.stderr.contains("part `h` registered ") && r.stderr.contains(why),
            "{path}: {}",
            r.stderr
        );
        messages.push_str(&format!(
            "== {path}\n{}\n",
            crate::snap::messages(&r.stderr)
        ));
        assert_eq!(inst.installed(), ["a"], "{path}");
        // Whatever the part registered, removing it removes nothing of the engine's.
        inst.config(NOTHING);
        expect(&inst, &[], 0);
        for kept in [
            "buildout.toml",
            "base.toml",
            ".installed.toml",
            ".installed.toml.lock",
            "bin",
            "parts",
            "eggs",
            "develop-eggs",
            "plugins",
        ] {
            assert!(inst.exists(kept), "{path}: {kept} was removed");
        }
        inst.write("buildout.toml", &format!("[buildout]\n{}", config(&[])));
        expect(&inst, &[], 0);
    }
    crate::snapshot!("engines_own_paths", Some(inst.dir()), messages);
    // A link inside the instance to its own folder reaches the config file all the same.
    std::os::unix::fs::symlink(".", inst.path("self")).unwrap();
    inst.config(&format!("[buildout]\n{}", config(&["self/buildout.toml"])));
    let r = expect(&inst, &[], 1);
    r.stderr_has("which is the config file");

    // Paths inside the engine's folders are the part's own.
    inst.config(&format!("[buildout]\n{}", config(&["bin/x", "parts/p"])));
    expect(&inst, &[], 0);
    let state = inst.state_text();
    assert!(
        state.contains(r#""bin/x""#) && state.contains(r#""parts/p""#),
        "{state}"
    );
}

#[test]
fn a_path_another_part_owns_is_refused() {
    // Recorded by an earlier part of the state.
    let inst = Instance::new(&registering(&["parts/a.txt"], ""));
    let r = expect(&inst, &[], 1);
    r.stderr_has("part `h` registered parts/a.txt, which part `a` owns");
    assert_eq!(inst.installed(), ["a"]);
    inst.config(NOTHING);
    expect(&inst, &[], 0);
    assert!(!inst.exists("parts/a.txt"), "a's own uninstall removes it");

    // Registered by another part of this run, inside or around its path.
    let two = |first: &str, second: &str| {
        format!(
            "[buildout]\nparts = [\"x\", \"y\"]\n\n[x]\nrecipe = \"hostile:register\"\n\
             paths = \"{first}\"\n\n[y]\nrecipe = \"hostile:register\"\npaths = \"{second}\"\n"
        )
    };
    for (first, second, why) in [
        ("parts/d", "parts/d", "which part `x` owns"),
        (
            "parts/d",
            "parts/d/f",
            "which is inside parts/d, a path of part `x`",
        ),
        (
            "parts/d/f",
            "parts/d",
            "which holds parts/d/f, a path of part `x`",
        ),
    ] {
        inst.config(&two(first, second));
        let r = expect(&inst, &[], 1);
        assert!(
            r.stderr
                .contains(&format!("part `y` registered {second}, {why}")),
            "{first} {second}: {}",
            r.stderr
        );
        assert_eq!(inst.installed(), ["x"]);
        inst.config(NOTHING);
        expect(&inst, &[], 0);
    }

    // Many paths on both sides: the run indexes the other parts' paths instead of scanning.
    let many = |prefix: &str| {
        (0..400)
            .map(|i| format!("{prefix}/{i}"))
            .collect::<Vec<_>>()
            .join("\\n")
    };
    inst.config(&two(
        &many("parts/x"),
        &format!("{}\\nparts/x/7/f", many("parts/y")),
    ));
    let r = expect(&inst, &[], 1);
    assert!(
        r.stderr.contains(
            "part `y` registered parts/x/7/f, which is inside parts/x/7, a path of part `x`"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(inst.installed(), ["x"]);
}

#[test]
fn a_failed_install_removes_none_of_the_engines_or_another_parts_paths() {
    let inst = Instance::new(&format!(
        "{}install-fails = \"true\"\n",
        registering(&["parts/a.txt", "buildout.toml", "parts/h"], "")
    ));
    std::fs::create_dir_all(inst.path("parts/h")).unwrap();
    let r = expect(&inst, &[], 1);
    r.stderr_has("part `h` failed during install: this install fails on purpose");
    assert_eq!(inst.read("parts/a.txt"), "A");
    assert!(inst.exists("buildout.toml"));
    assert!(!inst.exists("parts/h"), "its own path is removed");
    assert_eq!(inst.installed(), ["a"]);
}

#[test]
fn a_path_with_a_nul_byte_is_refused() {
    let inst = Instance::new(
        "[buildout]\nparts = [\"h\"]\n\n[h]\nrecipe = \"hostile:register\"\nnul-path = \"parts/x\"\n",
    );
    let r = expect(&inst, &[], 1);
    assert!(
        r.stderr
            .contains(r#"part `h` registered "parts/x\0evil", which contains a NUL byte"#),
        "{}",
        r.stderr
    );
    crate::snapshot!(
        "nul_byte",
        Some(inst.dir()),
        crate::snap::messages(&r.stderr)
    );
    assert!(!inst.exists(".installed.toml") || inst.installed().is_empty());
}

#[test]
fn outside_the_instance_only_allowed_folders_and_never_removed() {
    let base = tempfile::tempdir().unwrap();
    let inst_dir = base.path().join("inst");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(outside.join("victim")).unwrap();
    std::fs::write(outside.join("victim/file"), "precious").unwrap();
    std::fs::create_dir_all(&inst_dir).unwrap();
    let victim = outside.join("victim").display().to_string();
    let write = |text: &str| std::fs::write(inst_dir.join("buildout.toml"), text).unwrap();
    let go = |code: i32| {
        let mut c = Command::new(rbuildout_tests::rbuildout_bin());
        c.current_dir(&inst_dir)
            .env("RBUILDOUT_PLUGIN_PATH", hostile_path())
            .env("RBUILDOUT_HOME", inst_dir.join(".home"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .arg("-U");
        let r = Run::of(&mut c);
        assert_eq!(r.code, code, "{}", r.stderr);
        r
    };
    let part = |extra: &str| {
        format!(
            "[buildout]\nparts = [\"h\"]\n{extra}\n\n[h]\nrecipe = \"hostile:register\"\npaths = \"{victim}\"\n"
        )
    };

    // Not in an allowed folder: the part fails and says what to do.
    write(&part(""));
    let r = go(1);
    assert!(
        r.stderr.contains(&format!(
            "part `h` registered {victim}, which is outside the instance {}",
            inst_dir.display()
        )) && r.stderr.contains("buildout:allow-outside"),
        "{}",
        r.stderr
    );
    let mut messages = format!(
        "== outside, not allowed\n{}\n",
        crate::snap::messages(&r.stderr)
    );

    // Allowed: recorded, with a warning that it is never removed.
    let allowed = part("allow-outside = [\"../outside\"]");
    write(&allowed);
    let r = go(0);
    r.stderr_has("never removed");
    messages.push_str(&format!(
        "== allowed\n{}\n",
        crate::snap::messages(&r.stderr)
    ));

    // A later run whose buildout directory holds the recorded path removes nothing: it was
    // recorded as outside.
    write(&format!(
        "[buildout]\nparts = []\ndirectory = \"{}\"\ninstalled = \"{}\"\n",
        base.path().display(),
        inst_dir.join(".installed.toml").display()
    ));
    let r = go(0);
    r.stderr_has("left in place");
    messages.push_str(&format!(
        "== directory moved up\n{}\n",
        crate::snap::messages(&r.stderr)
    ));
    assert_eq!(
        std::fs::read_to_string(outside.join("victim/file")).unwrap(),
        "precious"
    );
    write(&allowed);
    go(0);

    // A later run that points the eggs folder (or the cache) at the parent still removes
    // nothing outside the instance.
    write(&format!(
        "[buildout]\nparts = []\neggs-directory = \"{}\"\ndownload-cache = \"{}\"\n",
        outside.display(),
        base.path().display()
    ));
    let r = go(0);
    r.stderr_has("left in place");
    messages.push_str(&format!(
        "== eggs folder outside\n{}\n",
        crate::snap::messages(&r.stderr)
    ));
    assert_eq!(
        std::fs::read_to_string(outside.join("victim/file")).unwrap(),
        "precious"
    );
    crate::snapshot!("outside_the_instance", Some(base.path()), messages);
}

#[test]
fn the_lock_and_state_files_are_never_written_through_a_link() {
    let inst = Instance::new(&registering(&[], ""));
    inst.write("victim.txt", "precious");
    let mut messages = String::new();
    for name in [".installed.toml.lock", ".installed.toml"] {
        std::os::unix::fs::symlink("victim.txt", inst.path(name)).unwrap();
        let r = run(&inst, &[]);
        assert_ne!(r.code, 0, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains(&inst.path(name).display().to_string())
                && r.stderr.contains("symbolic link"),
            "{name}: {}",
            r.stderr
        );
        messages.push_str(&format!(
            "== {name}: exit {}\n{}\n",
            r.code,
            crate::snap::messages(&r.stderr)
        ));
        assert_eq!(inst.read("victim.txt"), "precious", "{name}");
        std::fs::remove_file(inst.path(name)).unwrap();
    }
    crate::snapshot!("state_and_lock_links", Some(inst.dir()), messages);
    // A link where the state's temp file goes is replaced, not written through.
    std::os::unix::fs::symlink("victim.txt", inst.path(".installed.toml.tmp")).unwrap();
    expect(&inst, &[], 0);
    assert_eq!(inst.read("victim.txt"), "precious");
    assert!(inst.installed().contains(&"a".to_string()));
}

#[test]
fn a_fifo_or_a_device_at_the_lock_or_state_file_is_an_error_not_a_hang() {
    let inst = Instance::new(&registering(&[], ""));
    let mut messages = String::new();
    for name in [".installed.toml", ".installed.toml.lock"] {
        // The first run made the lock file: the FIFO takes its place.
        let _ = std::fs::remove_file(inst.path(name));
        let status = Command::new("mkfifo")
            .arg(inst.path(name))
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        // Without the check the run blocks forever on the FIFO: kill it after 30 s.
        let mut child = inst
            .command(&[])
            .env("RBUILDOUT_PLUGIN_PATH", hostile_path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn rbuildout");
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if start.elapsed() > std::time::Duration::from_secs(30) {
                child.kill().expect("kill");
                child.wait().expect("reap");
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let status = status.unwrap_or_else(|| panic!("{name}: the run hung on a FIFO"));
        assert_ne!(status.code(), Some(0), "{name}: {stderr}");
        assert!(
            stderr.contains(&inst.path(name).display().to_string())
                && stderr.contains("not a regular file"),
            "{name}: {stderr}"
        );
        messages.push_str(&format!(
            "== {name}: exit {:?}\n{}\n",
            status.code(),
            crate::snap::messages(&stderr)
        ));
        std::fs::remove_file(inst.path(name)).unwrap();
    }
    crate::snapshot!("state_and_lock_fifos", Some(inst.dir()), messages);
    expect(&inst, &[], 0);
}

#[test]
fn outputs_must_be_names_and_may_not_shadow_an_option_of_the_section() {
    let mut messages = String::new();
    for (output, why) in [
        ("a:b", "`a:b` is not an output name"),
        ("x}", "`x}` is not an output name"),
        ("", "`` is not an output name"),
        ("recipe", "would shadow the option `recipe`"),
        ("needs", "would shadow the option `needs`"),
        // The section's own option: `${h:outputs}` must keep meaning what the config says.
        (
            "outputs",
            "would shadow the option `outputs` of its section",
        ),
    ] {
        let inst = Instance::new(&format!(
            "[buildout]\nparts = [\"h\"]\n\n[h]\nrecipe = \"hostile:register\"\noutputs = \"{output}=v\"\n"
        ));
        let r = expect(&inst, &[], 1);
        assert!(
            r.stderr.contains("part `h` published") && r.stderr.contains(why),
            "{output}: {}",
            r.stderr
        );
        messages.push_str(&format!(
            "== {output:?}\n{}\n",
            crate::snap::messages(&r.stderr)
        ));
    }
    crate::snapshot!("output_names", None, messages);
    let inst = Instance::new(
        "[buildout]\nparts = [\"h\", \"b\"]\n\n[h]\nrecipe = \"hostile:register\"\n\
         outputs = \"ok-name_1.x y=v\"\n\n[b]\nrecipe = \"testkit:file\"\npath = \"b.txt\"\n\
         content = \"${h:ok-name_1.x y}\"\n",
    );
    expect(&inst, &[], 0);
    assert_eq!(inst.read("b.txt"), "v");
}

#[test]
fn a_release_that_builds_itself_stops_at_the_nesting_limit() {
    let inst = Instance::new("");
    let recursive = format!(
        "[buildout]\nparts = [\"code\"]\n\n[code]\nrecipe = \"symlink\"\nrevision = \"r\"\n\
         config = \"{}\"\n",
        inst.path("release.toml").display()
    );
    inst.config(&recursive);
    inst.write("release.toml", &recursive);
    let r = Run::of(
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 4000000; exec \"$@\"")
            .arg("sh")
            .arg(rbuildout_tests::rbuildout_bin())
            .arg("-U")
            .current_dir(inst.dir())
            .env("RBUILDOUT_HOME", inst.path(".home"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG"),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    r.stderr_has("nested builds deeper than 8: ");
    assert!(!inst.exists("code/current"));
}

#[test]
fn parts_listed_in_order_run_in_order_by_default() {
    let inst = Instance::new(
        r#"
[buildout]
parts = ["code", "activate"]

[code]
recipe = "symlink"
revision = "r1"
config = "release.toml"
links = ["bin = code/current/bin"]

[activate]
recipe = "activate"
"#,
    );
    inst.write(
        "release.toml",
        "[buildout]\nparts = [\"app\"]\n\n[app]\nrecipe = \"testkit:file\"\npath = \"bin/app\"\ncontent = \"app\"\n",
    );
    for _ in 0..3 {
        let r = expect(&inst, &[], 0);
        assert!(!r.stderr.contains("error"), "{}", r.stderr);
        assert!(inst.path("bin").symlink_metadata().unwrap().is_symlink());
        assert!(inst.path("code/r1/bin/activate").is_file());
        assert_eq!(inst.read("bin/app"), "app");
    }
}

#[test]
fn uninstall_skip_hook_is_the_way_out_of_a_failing_hook() {
    let inst = Instance::new(
        "[buildout]\nparts = [\"h\"]\n\n[h]\nrecipe = \"hostile:register\"\n\
         paths = \"parts/h\"\nuninstall-fails = \"true\"\n",
    );
    expect(&inst, &[], 0);
    std::fs::create_dir_all(inst.path("parts/h")).unwrap();
    inst.config(NOTHING);
    for _ in 0..2 {
        let r = expect(&inst, &[], 1);
        r.stderr_has("always fails");
    }
    let r = expect(&inst, &["uninstall", "h"], 1);
    assert!(
        r.stderr.contains("always fails") && r.stderr.contains("--skip-hook"),
        "{}",
        r.stderr
    );
    assert!(inst.exists("parts/h"));
    let r = expect(&inst, &["uninstall", "nope"], 2);
    r.stderr_has("`nope`");
    expect(&inst, &["uninstall", "h", "--skip-hook"], 0);
    assert!(!inst.exists("parts/h"));
    assert!(inst.installed().is_empty());
    expect(&inst, &[], 0);
}
