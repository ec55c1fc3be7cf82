//! Tests of the plugin host against real plugin libraries: `testkit` and `raw` from
//! `tests/plugins/` (built by the test harness into `target/test-plugins/`), C plugins
//! compiled here with gcc, and a system library that is not a plugin.

use std::collections::HashMap;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// `target/debug`, where `cargo build --workspace` puts the built-in recipes.
fn target_dir() -> PathBuf {
    rbuildout_tests::target_dir()
}

/// `target/test-plugins/debug`, where the test harness builds `testkit` and `raw`.
fn test_plugins_dir() -> PathBuf {
    rbuildout_tests::test_plugins_dir()
}

/// A plugin library: a test plugin, or a built-in recipe built by `cargo build --workspace`.
fn built(name: &str) -> PathBuf {
    let file = search::file_name(name);
    let path = [test_plugins_dir(), target_dir()]
        .into_iter()
        .map(|dir| dir.join(&file))
        .find(|path| path.exists());
    path.unwrap_or_else(|| {
        panic!("{file} is missing: run `cargo build --workspace` before the tests")
    })
}

/// A registry that finds the test plugins and the built-in recipes, whose config folder is
/// `dir`.
fn registry(dir: &Path) -> Registry {
    Registry::new(SearchPath {
        dirs: vec![test_plugins_dir(), target_dir()],
        config_dir: dir.to_path_buf(),
        builtins: &[],
        builtin_at: 0,
    })
}

/// A registry that finds the plugins in `dir` only, with `dir` as the config's folder.
fn only(dir: &Path) -> Registry {
    Registry::new(SearchPath {
        dirs: vec![dir.to_path_buf()],
        config_dir: dir.to_path_buf(),
        builtins: &[],
        builtin_at: 0,
    })
}

/// Compiles a C plugin against the header alone, symbols hidden unless exported.
fn compile_c(source: &Path, out: &Path, defines: &[&str]) -> PathBuf {
    let flags: Vec<&str> = ["-fvisibility=hidden"]
        .into_iter()
        .chain(defines.iter().copied())
        .collect();
    rbuildout_tests::compile_c(source, out, &flags)
}

fn broken_c(variant: u32, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/c/broken.c");
    compile_c(
        &source,
        &dir.join(format!("librbuildout_recipe_broken{variant}.so")),
        &[&format!("-DVARIANT={variant}")],
    )
}

#[derive(Default)]
struct TestHost {
    options: HashMap<(String, String), String>,
    nested: Mutex<Vec<(PathBuf, PathBuf)>>,
    nested_error: Option<String>,
    cancelled: bool,
}

impl Host for TestHost {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        self.options
            .get(&(section.to_owned(), option.to_owned()))
            .cloned()
    }

    fn nested_build(&self, config: &Path, directory: &Path) -> Result<(), String> {
        self.nested
            .lock()
            .unwrap()
            .push((config.to_path_buf(), directory.to_path_buf()));
        match &self.nested_error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled
    }
}

fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn call<'a>(dir: &'a Path, options: &'a [(String, String)], host: &'a dyn Host) -> Call<'a> {
    Call {
        part: "thepart",
        buildout_directory: dir,
        offline: false,
        newest: false,
        locked: false,
        options,
        host,
        owned: &[],
    }
}

fn outputs(result: &CallResult) -> HashMap<&str, &str> {
    result
        .outputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn sdk_recipe_installs_registers_and_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let recipe = registry.recipe("testkit:file").unwrap();
    assert!(recipe.has_install() && !recipe.has_update() && !recipe.has_uninstall());
    let opts = options(&[
        ("content", "hi there"),
        ("path", "sub/out.txt"),
        ("publish-colour", "blue"),
    ]);
    let host = TestHost::default();
    let result = recipe.install(&call(dir.path(), &opts, &host)).unwrap();
    let file = dir.path().join("sub/out.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hi there");
    assert_eq!(result.paths, vec![file.clone()]);
    let out = outputs(&result);
    assert_eq!(out["written"], file.display().to_string());
    assert_eq!(out["colour"], "blue");
    assert_eq!(out.len(), 2);
}

#[test]
fn identity_names_plugin_version_entry_and_file_digest() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = registry(dir.path()).recipe("testkit").unwrap();
    let id = recipe.identity();
    assert_eq!(id.plugin, "testkit");
    assert_eq!(id.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(id.entry, "default");
    assert_eq!(id.path, built("testkit"));
    let sha = Command::new("sha256sum").arg(&id.path).output().unwrap();
    let expected = String::from_utf8(sha.stdout).unwrap();
    assert_eq!(id.digest, expected.split_whitespace().next().unwrap());
}

#[test]
fn update_and_uninstall_hooks_are_seen_and_called() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let recipe = registry.recipe("testkit:lifecycle").unwrap();
    assert!(recipe.has_update() && recipe.has_uninstall());
    assert!(registry.recipe("testkit:updatable").unwrap().has_update());
    assert!(
        !registry
            .recipe("testkit:updatable")
            .unwrap()
            .has_uninstall()
    );
    assert!(
        registry
            .recipe("testkit:uninstallable")
            .unwrap()
            .has_uninstall()
    );
    let opts = options(&[("path", "f")]);
    let host = TestHost::default();
    let c = call(dir.path(), &opts, &host);
    recipe.install(&c).unwrap();
    recipe.update(&c).unwrap();
    recipe.uninstall(&c).unwrap();
    let log = std::fs::read_to_string(dir.path().join("lifecycle.log")).unwrap();
    assert_eq!(log, "install thepart\nupdate thepart\nuninstall thepart\n");
    // A hook the recipe lacks is an error, not a silent success.
    let file = registry.recipe("testkit:file").unwrap();
    assert_eq!(
        file.update(&c).unwrap_err().message,
        "recipe `testkit:file` has no update"
    );
}

#[test]
fn a_panic_is_contained_and_poisons_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let opts = options(&[("message", "boom at 42")]);
    let host = TestHost::default();
    let c = call(dir.path(), &opts, &host);
    let err = registry
        .recipe("testkit:panic")
        .unwrap()
        .install(&c)
        .unwrap_err();
    assert!(err.panicked);
    assert!(
        err.message
            .starts_with("recipe `testkit:panic` panicked: boom at 42 (at "),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("testkit/src/lib.rs:"),
        "{}",
        err.message
    );
    // The plugin is not called again through this registry...
    let file_opts = options(&[("path", "after-panic")]);
    let again = registry
        .recipe("testkit:file")
        .unwrap()
        .install(&call(dir.path(), &file_opts, &host))
        .unwrap_err();
    assert!(!again.panicked);
    assert!(
        again
            .message
            .contains("is not called again after it panicked")
    );
    assert!(!dir.path().join("after-panic").exists());
    // ...and the host process is fine: a fresh registry works.
    super::tests::registry(dir.path())
        .recipe("testkit:file")
        .unwrap()
        .install(&call(dir.path(), &file_opts, &host))
        .unwrap();
    assert!(dir.path().join("after-panic").exists());
}

#[test]
fn an_error_is_reported_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::default();
    let recipe = registry(dir.path()).recipe("testkit:error").unwrap();
    let opts = options(&[("message", "cannot frobnicate /etc/x")]);
    let err = recipe.install(&call(dir.path(), &opts, &host)).unwrap_err();
    assert_eq!(err.message, "cannot frobnicate /etc/x");
    assert!(!err.panicked);
    // An SDK error for a missing required option.
    let outside = registry(dir.path()).recipe("testkit:outside").unwrap();
    let err = outside.install(&call(dir.path(), &[], &host)).unwrap_err();
    assert_eq!(err.message, "option `path` is required");
}

#[test]
fn paths_outside_are_passed_through_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("outside.txt");
    let opts = options(&[("path", target.to_str().unwrap()), ("content", "x")]);
    let host = TestHost::default();
    let result = registry(dir.path())
        .recipe("testkit:outside")
        .unwrap()
        .install(&call(dir.path(), &opts, &host))
        .unwrap();
    assert_eq!(result.paths, vec![target.clone()]);
    assert!(target.exists());
}

#[test]
fn a_million_paths_and_outputs_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::default();
    let start = Instant::now();
    let result = registry(dir.path())
        .recipe("testkit:million")
        .unwrap()
        .install(&call(dir.path(), &[], &host))
        .unwrap();
    let took = start.elapsed();
    assert_eq!(result.paths.len(), 1_000_000);
    assert_eq!(result.outputs.len(), 1_000_000);
    assert_eq!(result.paths[999_999], Path::new("million/999999"));
    assert_eq!(result.outputs[123_456], ("o123456".into(), "123456".into()));
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn recipes_read_other_options_and_their_context() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let mut host = TestHost::default();
    host.options.insert(
        ("other".into(), "thing".into()),
        "line one\nline two".into(),
    );
    let option = registry.recipe("testkit:option").unwrap();
    let opts = options(&[("ref", "other:thing")]);
    let result = option.install(&call(dir.path(), &opts, &host)).unwrap();
    assert_eq!(outputs(&result)["value"], "line one\nline two");
    let opts = options(&[("ref", "other:missing")]);
    let result = option.install(&call(dir.path(), &opts, &host)).unwrap();
    assert_eq!(outputs(&result)["found"], "false");

    let context = registry.recipe("testkit:context").unwrap();
    let mut c = call(dir.path(), &[], &host);
    c.offline = true;
    let result = context.install(&c).unwrap();
    let out = outputs(&result);
    assert_eq!(out["part"], "thepart");
    assert_eq!(out["directory"], dir.path().display().to_string());
    assert_eq!((out["offline"], out["newest"]), ("true", "false"));
}

#[test]
fn nested_builds_reach_the_host_and_return_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let nested = registry(dir.path()).recipe("testkit:nested").unwrap();
    let opts = options(&[
        ("config", "release/buildout.toml"),
        ("directory", "releases/1"),
    ]);
    let host = TestHost::default();
    nested.install(&call(dir.path(), &opts, &host)).unwrap();
    assert_eq!(
        host.nested.lock().unwrap().as_slice(),
        &[(
            dir.path().join("release/buildout.toml"),
            dir.path().join("releases/1")
        )]
    );
    let failing = TestHost {
        nested_error: Some("part `x` of the nested build failed".into()),
        ..TestHost::default()
    };
    let err = nested
        .install(&call(dir.path(), &opts, &failing))
        .unwrap_err();
    assert_eq!(err.message, "part `x` of the nested build failed");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plugin_logs_reach_the_host_tracing() {
    let dir = tempfile::tempdir().unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let opts = options(&[("message", "hi")]);
    let host = TestHost::default();
    tracing::subscriber::with_default(subscriber, || {
        // Another test's thread may have registered a callsite this call reaches while no
        // subscriber was interested, caching `never` for it; recompute with this one set.
        tracing::callsite::rebuild_interest_cache();
        registry(dir.path())
            .recipe("testkit:log")
            .unwrap()
            .install(&call(dir.path(), &opts, &host))
            .unwrap();
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{text}"))
            .to_owned()
    };
    let warn = line("context warn: hi");
    assert!(
        warn.contains("WARN") && warn.contains("rbuildout::recipe"),
        "{warn}"
    );
    assert!(
        warn.contains("part=\"thepart\"") || warn.contains("part=thepart"),
        "{warn}"
    );
    assert!(
        warn.contains("plugin=\"testkit\"") || warn.contains("plugin=testkit"),
        "{warn}"
    );
    // Plugin info shows at the host's debug, plugin debug at trace.
    assert!(line("context info: hi").contains("DEBUG"));
    assert!(line("context debug: hi").contains("TRACE"));
    let traced = line("tracing warn: hi");
    assert!(
        traced.contains("answer=42") && traced.contains("thepart"),
        "{traced}"
    );
    assert!(
        traced.contains("plugin_target=\"rbuildout_recipe_testkit\""),
        "{traced}"
    );
    assert!(line("tracing info: hi").contains("DEBUG"));
    assert!(!warn.contains("plugin_target"), "{warn}");
    // (A thread the plugin starts logs through the host's global log, on that thread, which
    // this thread-scoped subscriber cannot see; tests/it/plugins.rs checks it with -v.)
}

/// What installing `recipe` (with no options) fails with.
fn install_error(recipe: &str) -> RecipeError {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::default();
    registry(dir.path())
        .recipe(recipe)
        .unwrap()
        .install(&call(dir.path(), &[], &host))
        .unwrap_err()
}

#[test]
fn raw_plugin_invalid_utf8_odd_statuses_and_huge_errors_are_reported_not_trusted() {
    for (recipe, message) in [
        (
            "raw:invalid-utf8-path",
            r#"recipe `raw:invalid-utf8-path` sent a path that is not valid UTF-8: "bad\xff\xfe""#,
        ),
        (
            "raw:invalid-utf8-output",
            r#"recipe `raw:invalid-utf8-output` sent an output value that is not valid UTF-8: "\xc3(""#,
        ),
        // An error message is only shown: bad bytes are replaced.
        ("raw:invalid-utf8-error", "broken \u{fffd} message"),
        (
            "raw:null-path",
            "recipe `raw:null-path` sent a path as a null pointer",
        ),
        (
            "raw:unknown-status",
            "recipe `raw:unknown-status` returned the unknown status 77: \
             recipe `raw:unknown-status` failed without saying why",
        ),
        (
            "raw:no-message",
            "recipe `raw:no-message` failed without saying why",
        ),
    ] {
        let err = install_error(recipe);
        assert_eq!(err.message, message);
        assert!(err.paths.is_empty(), "{recipe}: {:?}", err.paths);
    }
    let err = install_error("raw:huge-error");
    assert!(err.message.len() < 70 * 1024, "{}", err.message.len());
    assert!(
        err.message
            .ends_with(&format!("[… {} more bytes cut]", (16 << 20) - 64 * 1024))
    );
}

#[test]
fn slots_beyond_a_vtable_struct_size_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = registry(dir.path()).recipe("raw:old-vtable").unwrap();
    // The slots hold a function that aborts the process; they lie beyond `struct_size`.
    assert!(!recipe.has_update() && !recipe.has_uninstall());
    let host = TestHost::default();
    let c = call(dir.path(), &[], &host);
    assert!(recipe.update(&c).is_err());
    let result = recipe.install(&c).unwrap();
    assert_eq!(result.outputs, vec![("installed".into(), "yes".into())]);
}

#[test]
fn a_larger_descriptor_from_a_newer_minor_is_accepted() {
    let info = plugin_info(&built("raw")).unwrap();
    assert_eq!(info.abi.as_deref(), Some("1.6"));
    assert_eq!(info.name, "raw");
    assert_eq!(info.built_with.as_deref(), Some("hand-written"));
    assert!(!info.thread_safe);
    assert_eq!(info.recipes.len(), 10);
    let testkit = plugin_info(&built("testkit")).unwrap();
    assert!(testkit.thread_safe);
    let lifecycle = testkit
        .recipes
        .iter()
        .find(|r| r.name == "lifecycle")
        .unwrap();
    assert!(lifecycle.install && lifecycle.update && lifecycle.uninstall);
}

#[test]
fn calls_into_a_plugin_not_thread_safe_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = registry(dir.path()).recipe("raw:overlap").unwrap();
    // Another registry loads the same library: its calls wait for the first one's too.
    let other = registry(dir.path()).recipe("raw:overlap").unwrap();
    let host = TestHost::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let recipe = if i % 2 == 0 { &recipe } else { &other };
                s.spawn(|| recipe.install(&call(dir.path(), &[], &host)))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
}

#[test]
fn host_strings_end_in_nul_and_options_arrive_intact() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = registry(dir.path()).recipe("raw:echo").unwrap();
    let opts = options(&[("b", "two\nlines"), ("ünï", "çødé"), ("a", "")]);
    let host = TestHost::default();
    let result = recipe.install(&call(dir.path(), &opts, &host)).unwrap();
    let out = outputs(&result);
    assert_eq!(out["nul"], "true");
    assert_eq!((out["a"], out["b"], out["ünï"]), ("", "two\nlines", "çødé"));
    assert_eq!(out["order"], "a b ünï");
}

#[test]
fn recipe_names_resolve_through_the_search_path() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::default();
    // A path with a `/`, relative to the config folder, with an entry.
    let lib = dir.path().join("plugins");
    std::fs::create_dir(&lib).unwrap();
    std::fs::copy(built("testkit"), lib.join("libmine.so")).unwrap();
    let recipe = registry(dir.path())
        .recipe("./plugins/libmine.so:context")
        .unwrap();
    assert_eq!(
        recipe.identity().path,
        dir.path().join("./plugins/libmine.so")
    );
    let result = recipe.install(&call(dir.path(), &[], &host)).unwrap();
    assert_eq!(outputs(&result)["part"], "thepart");

    // Earlier folders win.
    let first = tempfile::tempdir().unwrap();
    std::fs::copy(
        built("raw"),
        first.path().join(search::file_name("testkit")),
    )
    .unwrap();
    let registry = Registry::new(SearchPath {
        dirs: vec![first.path().to_path_buf(), test_plugins_dir(), target_dir()],
        config_dir: dir.path().to_path_buf(),
        builtins: &[],
        builtin_at: 0,
    });
    let found = registry.recipe("testkit:echo").unwrap();
    assert_eq!(found.identity().plugin, "raw");
    let listed = registry.list();
    let testkits: Vec<_> = listed.iter().filter(|p| p.name == "testkit").collect();
    assert_eq!(testkits.len(), 2);
    assert!(!testkits[0].shadowed && testkits[1].shadowed);
    assert_eq!(
        testkits[0].path,
        first.path().join(search::file_name("testkit"))
    );
}

#[test]
fn search_path_order_follows_the_spec() {
    let search = SearchPath::new(
        vec![PathBuf::from("plugins"), PathBuf::from("/abs/plugins")],
        PathBuf::from("/srv/app"),
    );
    assert_eq!(search.dirs[0], Path::new("/srv/app/plugins"));
    assert_eq!(search.dirs[1], Path::new("/abs/plugins"));
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let n = search.dirs.len();
    assert_eq!(search.dirs[n - 2], exe_dir);
    assert_eq!(search.dirs[n - 1], exe_dir.join("../lib/rbuildout"));
}

#[test]
fn missing_plugins_and_entries_say_where_they_looked() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let err = registry.recipe("no-such-thing").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "recipe plugin `no-such-thing` not found: no librbuildout_recipe_no_such_thing.so in {}, {}\n\
             hint: build it, or add its folder to buildout:plugin-path or RBUILDOUT_PLUGIN_PATH",
            test_plugins_dir().display(),
            target_dir().display()
        )
    );
    let err = registry.recipe("testkit:nope").unwrap_err().to_string();
    assert!(
        err.starts_with("recipe plugin `testkit` (")
            && err.contains("has no recipe `nope`; it has: default, file, updatable"),
        "{err}"
    );
    let err = registry
        .recipe("./nothing/here.so")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "recipe plugin {} does not exist",
            dir.path().join("./nothing/here.so").display()
        )
    );
    for (recipe, why) in [
        ("", "it is empty"),
        ("testkit:", "the entry after `:` is empty"),
        ("zc recipe", "a plugin name has only letters"),
    ] {
        let err = registry.recipe(recipe).unwrap_err().to_string();
        assert!(err.contains(why), "{recipe:?}: {err}");
    }
}

#[test]
fn files_that_are_not_plugins_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // A real shared library that is not a plugin.
    let libz = rbuildout_tests::system_libz();
    let err = plugin_info(&libz).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{} is not an rbuildout recipe plugin: it does not export `rbuildout_plugin_v1`",
            libz.display()
        )
    );
    // Not a shared library at all.
    let text = dir.path().join("librbuildout_recipe_text.so");
    std::fs::File::create(&text)
        .unwrap()
        .write_all(b"not an ELF file\n")
        .unwrap();
    let err = plugin_info(&text).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot load recipe plugin {}: ", text.display())),
        "{err}"
    );
    // The listing shows it with its error instead of failing.
    let registry = only(dir.path());
    let listed = registry.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "text");
    assert!(listed[0].error.as_deref().unwrap().contains("cannot load"));
}

#[test]
fn broken_descriptors_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let expect = |variant: u32, message: &str| {
        let path = broken_c(variant, dir.path());
        let err = plugin_info(&path).unwrap_err().to_string();
        let display = path.display().to_string();
        assert_eq!(
            err,
            message.replace("{path}", &display),
            "variant {variant}"
        );
    };
    let other_abi = "{path} is a recipe plugin for ABI v2, but this rbuildout loads ABI v1 plugins\n\
                     hint: rebuild the plugin against rbuildout-plugin-api 1.x";
    expect(1, other_abi);
    expect(2, other_abi);
    expect(
        3,
        "{path} is not an rbuildout recipe plugin: its descriptor starts with 0x1122334455667788, not the magic number",
    );
    expect(
        4,
        &format!(
            "{{path}} is not a valid recipe plugin: its descriptor is 16 bytes, fewer than ABI v1.0 needs ({})",
            rbuildout_plugin_api::abi::DESCRIPTOR_SIZE_1_0
        ),
    );
    expect(
        5,
        r"{path} is not a valid recipe plugin: its plugin name is not valid UTF-8: bad\xff",
    );
    expect(
        6,
        "recipe plugin {path} refused to start: its init returned 5",
    );
    expect(
        7,
        "{path} is not a valid recipe plugin: `rbuildout_plugin_v1` returned no descriptor",
    );
}

#[test]
fn symbols_are_resolved_at_load_and_panic_abort_plugins_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    // RTLD_NOW: a missing symbol refuses the load instead of failing mid-install.
    let path = broken_c(9, dir.path());
    let err = plugin_info(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot load recipe plugin {}: ", path.display()))
            && err.contains("undefined symbol: rb_symbol_nobody_defines"),
        "{err}"
    );
    let path = broken_c(8, dir.path());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let info = tracing::subscriber::with_default(subscriber, || plugin_info(&path)).unwrap();
    assert_eq!(info.plugin.as_deref(), Some("broken"));
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("was built with panic=abort: a panic in it will kill rbuildout"),
        "{text}"
    );
}

/// A plugin of ABI 1.2 has a descriptor that ends before `run_end`: it loads, its recipes
/// run, and whatever lies past its `struct_size` is never read (a bogus pointer there would
/// be called by the end of the run).
#[test]
fn a_descriptor_of_an_older_minor_loads_and_its_run_end_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    broken_c(10, dir.path());
    let registry = only(dir.path());
    let recipe = registry.recipe("broken10").unwrap();
    let host = TestHost::default();
    recipe.install(&call(dir.path(), &[], &host)).unwrap();
    registry.run_end(dir.path(), true);
    let info = registry
        .list()
        .into_iter()
        .find(|p| p.name == "broken10")
        .unwrap();
    assert_eq!(info.abi.as_deref(), Some("1.2"), "{info:?}");
}

/// `run_end` reaches an SDK plugin's hook with the run's directory and outcome.
#[test]
fn run_end_reaches_the_sdk_hook_with_the_directory_and_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    registry.recipe("testkit:file").unwrap();
    std::fs::write(dir.path().join("run-end.marker"), "").unwrap();
    registry.run_end(dir.path(), true);
    registry.run_end(dir.path(), false);
    registry.run_end(&dir.path().join("elsewhere"), true);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lifecycle.log")).unwrap(),
        "run-end ok=true\nrun-end ok=false\n"
    );
}

#[test]
fn the_c_example_works_through_the_header_alone() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c-recipe/recipe.c");
    let lib = compile_c(
        &source,
        &dir.path().join("librbuildout_recipe_c_example.so"),
        &[],
    );
    let registry = only(dir.path());
    let recipe = registry.recipe("c-example").unwrap();
    assert_eq!(recipe.identity().plugin, "c-example");
    assert_eq!(recipe.identity().path, lib);
    assert!(!recipe.has_update() && recipe.has_uninstall());
    let mut host = TestHost::default();
    host.options
        .insert(("buildout".into(), "greeting".into()), "bonjour".into());
    let opts = options(&[("path", "greeting.txt")]);
    let c = call(dir.path(), &opts, &host);
    let result = recipe.install(&c).unwrap();
    let file = dir.path().join("greeting.txt");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "bonjour, thepart!\n"
    );
    assert_eq!(result.paths, vec![file.clone()]);
    assert_eq!(outputs(&result)["written"], file.display().to_string());
    recipe.uninstall(&c).unwrap();
    let err = recipe.install(&call(dir.path(), &[], &host)).unwrap_err();
    assert_eq!(err.message, "option `path` is required");
    let info = registry.list();
    assert_eq!(info.len(), 1);
    assert_eq!(
        (info[0].abi.as_deref(), info[0].thread_safe),
        (Some("1.5"), false)
    );
}

#[test]
fn loading_a_plugin_is_cheap_and_the_digest_follows_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A copy at a new path, so this really opens the library rather than finding it loaded.
    let copy = dir.path().join(search::file_name("testkit"));
    std::fs::copy(built("testkit"), &copy).unwrap();
    let registry = only(dir.path());
    let start = Instant::now();
    let recipe = registry.recipe("testkit:file").unwrap();
    let took = start.elapsed();
    // The benchmark target is 1 ms; a loaded CI machine gets some slack.
    assert!(took < Duration::from_millis(20), "loading took {took:?}");
    let digest = recipe.identity().digest;
    assert_eq!(digest.len(), 64);
    // A rebuilt plugin (a new file at the same path) gets a new digest.
    let next = dir.path().join("next.so");
    std::fs::copy(built("testkit"), &next).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&next)
        .unwrap()
        .write_all(b"rebuilt")
        .unwrap();
    std::fs::rename(&next, &copy).unwrap();
    let again = only(dir.path()).recipe("testkit:file").unwrap();
    assert_ne!(again.identity().digest, digest);
}

#[test]
fn recipe_values_parse_into_name_or_file_and_entry() {
    use search::{Spec, Target, parse};
    for (value, name, entry) in [
        ("egg", Target::Name("egg".into()), "default"),
        ("egg:scripts", Target::Name("egg".into()), "scripts"),
        ("./p/libx.so", Target::File("./p/libx.so".into()), "default"),
        (
            "/opt/x:y/libx.so:entry",
            Target::File("/opt/x:y/libx.so".into()),
            "entry",
        ),
        (
            "/opt/x:y/libx.so",
            Target::File("/opt/x:y/libx.so".into()),
            "default",
        ),
    ] {
        let entry = entry.into();
        assert_eq!(parse(value).unwrap(), Spec { name, entry }, "{value}");
    }
}

#[test]
fn recipes_are_shareable_and_outlive_their_registry() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Registry>();
    send_sync::<Recipe>();
    let dir = tempfile::tempdir().unwrap();
    let recipe = registry(dir.path()).recipe("testkit:context").unwrap();
    // The registry is gone; the library stays loaded, so the recipe still works.
    let host = TestHost::default();
    let result = recipe
        .clone()
        .install(&call(dir.path(), &[], &host))
        .unwrap();
    assert_eq!(outputs(&result)["part"], "thepart");
}

/// A host whose every callback panics.
struct PanickingHost;

impl Host for PanickingHost {
    fn option(&self, _section: &str, _option: &str) -> Option<String> {
        panic!("the host's option lookup panicked");
    }

    fn nested_build(&self, _config: &Path, _directory: &Path) -> Result<(), String> {
        panic!("the host's nested build panicked");
    }
}

#[test]
fn a_panic_in_a_host_callback_never_unwinds_into_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let opts = options(&[("ref", "a:b")]);
    let c = call(dir.path(), &opts, &PanickingHost);
    // Unwinding into the plugin's C-ABI frames would abort this whole test process.
    let result = registry
        .recipe("testkit:option")
        .unwrap()
        .install(&c)
        .unwrap();
    assert_eq!(outputs(&result)["found"], "false");
    let opts = options(&[("config", "x.toml"), ("directory", "x")]);
    let c = call(dir.path(), &opts, &PanickingHost);
    let err = registry
        .recipe("testkit:nested")
        .unwrap()
        .install(&c)
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "nested build of {} panicked in rbuildout",
            dir.path().join("x.toml").display()
        )
    );
}

#[test]
fn a_long_recipe_sees_the_run_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost {
        cancelled: true,
        ..TestHost::default()
    };
    let opts = options(&[("seconds", "30")]);
    let start = Instant::now();
    let err = registry(dir.path())
        .recipe("testkit:sleep")
        .unwrap()
        .install(&call(dir.path(), &opts, &host))
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(err.message, "sleep cancelled");
    // What it registered before giving up comes back, for the runner to remove.
    assert_eq!(err.paths, vec![dir.path().join("sleep.marker")]);
}

#[test]
fn owns_answers_from_the_paths_given_with_the_call() {
    // The built-in `template` recipe asks `owns` before it replaces its output.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/app.conf"), "old").unwrap();
    let registry = registry(root);
    let recipe = registry.recipe("template").unwrap();
    let opts = options(&[("inline", "new"), ("output", "etc/app.conf")]);
    let host = TestHost::default();
    let outcome = |owned: &[String]| {
        let c = Call {
            owned,
            ..call(root, &opts, &host)
        };
        recipe.install(&c).map(|_| ()).map_err(|e| e.message)
    };
    let refused = Err(format!(
        "{} exists and was not made by this part; move it away",
        root.join("etc/app.conf").display()
    ));
    // Not recorded, or only the instance folder itself (an old state's): refused.
    assert_eq!(outcome(&[]), refused);
    assert_eq!(outcome(&["etc/other".into()]), refused);
    assert_eq!(outcome(&[root.display().to_string()]), refused);
    assert_eq!(outcome(&[".".into()]), refused);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/app.conf")).unwrap(),
        "old"
    );
    // Recorded as the state records it, absolute, or as a folder that holds it: owned.
    for owned in [
        "etc/app.conf".to_owned(),
        "./etc/x/../app.conf".to_owned(),
        root.join("etc/app.conf").display().to_string(),
        "etc".to_owned(),
    ] {
        std::fs::write(root.join("etc/app.conf"), "old").unwrap();
        assert_eq!(outcome(std::slice::from_ref(&owned)), Ok(()), "{owned}");
        assert_eq!(
            std::fs::read_to_string(root.join("etc/app.conf")).unwrap(),
            "new"
        );
    }
}

#[test]
fn distribution_names_normalise_as_pep_503() {
    use search::{file_name, normalise, provided_name};
    assert_eq!(
        normalise("Collective.Recipe_Template"),
        "collective-recipe-template"
    );
    assert_eq!(normalise("a-._b..c"), "a-b-c");
    assert_eq!(normalise("egg"), "egg");
    assert_eq!(
        file_name("zc.recipe.egg"),
        format!("{DLL_PREFIX}rbuildout_recipe_zc_recipe_egg{DLL_SUFFIX}")
    );
    assert_eq!(
        file_name("hello-recipe"),
        format!("{DLL_PREFIX}rbuildout_recipe_hello_recipe{DLL_SUFFIX}")
    );
    assert_eq!(
        provided_name("Plone.Recipe.Command:default"),
        Some(("plone-recipe-command".to_owned(), "default"))
    );
    assert_eq!(provided_name("default"), None);
    assert_eq!(provided_name(":default"), None);
    assert_eq!(provided_name("x.y:"), None);
}

#[test]
fn plugins_provide_distribution_names_through_their_recipe_tables() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    // The template plugin provides collective.recipe.template, under any spelling of it.
    for name in [
        "collective.recipe.template",
        "collective.recipe.template:default",
        "Collective_Recipe-Template",
    ] {
        let recipe = registry.recipe(name).unwrap();
        let identity = recipe.identity();
        assert_eq!(identity.plugin, "template", "{name}");
        assert_eq!(
            identity.entry, "collective.recipe.template:default",
            "{name}"
        );
        assert_eq!(identity.path, built("template"));
    }
    assert_eq!(
        registry
            .recipe("plone.recipe.command")
            .unwrap()
            .identity()
            .plugin,
        "command"
    );
    // A library named for the distribution comes first.
    let first = tempfile::tempdir().unwrap();
    std::fs::copy(
        built("testkit"),
        first
            .path()
            .join(search::file_name("collective.recipe.template")),
    )
    .unwrap();
    let shadowing = Registry::new(SearchPath {
        dirs: vec![first.path().to_path_buf(), test_plugins_dir(), target_dir()],
        config_dir: dir.path().to_path_buf(),
        builtins: &[],
        builtin_at: 0,
    });
    assert_eq!(
        shadowing
            .recipe("collective.recipe.template:file")
            .unwrap()
            .identity()
            .plugin,
        "testkit"
    );
    // Nothing provides it: a Python recipe, run through the bridge (the egg plugin's
    // `python`), as `python:dist:entry` always is.
    for name in [
        "zc.recipe.nothing:x",
        "python:anything:x",
        " python:zc.recipe.egg",
    ] {
        let bridged = registry.recipe(name).unwrap().identity();
        assert_eq!(
            (bridged.plugin.as_str(), bridged.entry.as_str()),
            ("egg", "python"),
            "{name}"
        );
    }
    // Without a bridge, the error names the distribution.
    let bare = Registry::new(SearchPath {
        dirs: vec![test_plugins_dir()],
        config_dir: dir.path().to_path_buf(),
        builtins: &[],
        builtin_at: 0,
    });
    let err = bare.recipe("zc.recipe.nothing:x").unwrap_err();
    assert!(matches!(err, PluginError::NotNative(_)), "{err}");
    let err = err.to_string();
    assert!(
        err.starts_with(
            "recipe `zc.recipe.nothing:x` comes from the Python distribution \
             `zc.recipe.nothing`, which has no native plugin: no librbuildout_recipe_zc_recipe_nothing.so in "
        ) && err.contains("no plugin there provides `zc.recipe.nothing:x`")
            && err.contains("Python recipe bridge"),
        "{err}"
    );
    let err = registry
        .recipe("collective.recipe.template:genshi")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("(`collective.recipe.template` is native only as: default)"),
        "{err}"
    );
    // A plain name that no library has keeps its message.
    assert!(matches!(
        registry.recipe("nothing-here").unwrap_err(),
        PluginError::NotFound { .. }
    ));
}

/// A recipe crate linked into this test, as the binary links its built-ins: the same
/// `export_plugin!` as every built-in.
mod inside {
    use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};

    /// Writes `inside.txt`.
    pub struct Write;

    impl Recipe for Write {
        const UNINSTALL: bool = true;

        fn install(_: &Options, ctx: &Context) -> Result<()> {
            let path = ctx.buildout_directory().join("inside.txt");
            std::fs::write(&path, "built in").map_err(|e| Error::new(e.to_string()))?;
            ctx.register(&path)
        }
    }

    /// Panics.
    pub struct Boom;

    impl Recipe for Boom {
        fn install(options: &Options, _: &Context) -> Result<()> {
            panic!("{}", options.get("message").unwrap_or("boom"))
        }
    }

    export_plugin! {
        name: "inside",
        recipes: { "default" => Write, "boom" => Boom },
    }
}

static INSIDE: [Builtin; 1] = [Builtin {
    name: "inside",
    descriptor: inside::rbuildout_plugin_descriptor,
}];

/// A registry whose search path is `before`, the built-in `inside`, then `after`.
fn with_inside(dir: &Path, before: Vec<PathBuf>, after: Vec<PathBuf>) -> Registry {
    let builtin_at = before.len();
    Registry::new(SearchPath {
        dirs: before.into_iter().chain(after).collect(),
        config_dir: dir.to_path_buf(),
        builtins: &INSIDE,
        builtin_at,
    })
}

#[test]
fn a_built_in_is_found_through_its_descriptor_without_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let registry = with_inside(dir.path(), Vec::new(), vec![dir.path().to_path_buf()]);
    let recipe = registry.recipe("inside").unwrap();
    assert!(recipe.is_builtin());
    assert!(recipe.has_uninstall() && !recipe.has_update());
    let identity = recipe.identity();
    assert_eq!(identity.plugin, "inside");
    assert_eq!(identity.path, std::env::current_exe().unwrap());
    assert_eq!(
        identity.digest,
        builtin::digest("inside", &identity.version),
        "a built-in's digest is its version's, not a file's"
    );
    // The digest is fixed: one recorded by an earlier run does not replace it.
    recipe.assume_digest("0000");
    assert_eq!(recipe.identity().digest, identity.digest);
    let host = TestHost::default();
    let result = recipe.install(&call(dir.path(), &[], &host)).unwrap();
    assert_eq!(result.paths, [dir.path().join("inside.txt")]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("inside.txt")).unwrap(),
        "built in"
    );
    let listed = registry.list();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].builtin && !listed[0].shadowed);
    assert_eq!(listed[0].name, "inside");
    let entries: Vec<&str> = listed[0].recipes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(entries, ["default", "boom"]);
}

#[test]
fn a_built_in_panic_is_reported_with_its_location_as_a_library_panic_is() {
    let dir = tempfile::tempdir().unwrap();
    let registry = with_inside(dir.path(), Vec::new(), Vec::new());
    let opts = options(&[("message", "boom inside")]);
    let host = TestHost::default();
    let err = registry
        .recipe("inside:boom")
        .unwrap()
        .install(&call(dir.path(), &opts, &host))
        .unwrap_err();
    assert!(err.panicked);
    assert!(
        err.message
            .starts_with("recipe `inside:boom` panicked: boom inside (at "),
        "{}",
        err.message
    );
    assert!(err.message.contains("plugin/tests.rs:"), "{}", err.message);
    let again = registry
        .recipe("inside")
        .unwrap()
        .install(&call(dir.path(), &[], &host))
        .unwrap_err();
    assert!(
        again
            .message
            .contains("is not called again after it panicked"),
        "{}",
        again.message
    );
    // Panics outside recipe calls still reach the hook that was there before.
    let outside = std::panic::catch_unwind(|| panic!("outside any recipe"));
    assert!(outside.is_err());
}

#[test]
fn a_library_before_the_built_ins_replaces_one_and_after_them_is_shadowed() {
    let dir = tempfile::tempdir().unwrap();
    let first = tempfile::tempdir().unwrap();
    let last = tempfile::tempdir().unwrap();
    for folder in [&first, &last] {
        std::fs::copy(
            built("testkit"),
            folder.path().join(search::file_name("inside")),
        )
        .unwrap();
    }
    let replaced = with_inside(
        dir.path(),
        vec![first.path().to_path_buf()],
        vec![last.path().to_path_buf()],
    );
    let recipe = replaced.recipe("inside:file").unwrap();
    assert!(!recipe.is_builtin());
    assert_eq!(recipe.identity().plugin, "testkit");
    let listed = replaced.list();
    let flags: Vec<(bool, bool)> = listed.iter().map(|p| (p.builtin, p.shadowed)).collect();
    assert_eq!(flags, [(false, false), (true, true), (false, true)]);

    let shadowing = with_inside(dir.path(), Vec::new(), vec![last.path().to_path_buf()]);
    assert!(shadowing.recipe("inside").unwrap().is_builtin());
    let err = shadowing.recipe("inside:file").unwrap_err().to_string();
    assert!(err.contains("has no recipe `file`"), "{err}");
}
