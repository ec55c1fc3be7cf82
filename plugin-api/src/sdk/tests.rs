//! The SDK's guard, seen through [`testing`](super::testing): what reaches the host for an
//! error, a panic, logs, other options and nested builds.

use std::path::Path;

use super::testing::{self, TestCall};
use super::{Context, Error, Options, Recipe, Result};

struct Boom;

impl Recipe for Boom {
    fn install(options: &Options, _ctx: &Context) -> Result<()> {
        let n: usize = options.require("n")?.parse()?;
        let v: Vec<u8> = Vec::new();
        // Index out of bounds: a panic the guard must catch.
        Err(Error::new(format!("unreachable {}", v[n])))
    }
}

struct Talk;

impl Recipe for Talk {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        ctx.info(&format!("part {} offline {}", ctx.part(), ctx.offline()));
        ctx.warn("careful");
        let other = ctx.option("buildout", "greeting");
        ctx.publish("other", other.as_deref().unwrap_or("none"))?;
        ctx.publish("list", &options.get_list("eggs").join(","))?;
        ctx.publish("cancelled", &ctx.cancelled().to_string())?;
        ctx.nested_build(Path::new("sub/buildout.toml"), Path::new("/tmp/sub"))
    }
}

#[test]
fn errors_cross_as_messages() {
    let call = TestCall::new("p", Path::new("/tmp"), &[("n", "x")]);
    let failure = testing::install::<Boom>(&call).unwrap_err();
    assert_eq!(failure.message, "invalid digit found in string");
    assert!(!failure.panicked);
    let failure =
        testing::install::<Boom>(&TestCall::new("p", Path::new("/tmp"), &[])).unwrap_err();
    assert_eq!(failure.message, "option `n` is required");
}

#[test]
fn panics_are_caught_with_their_message() {
    let call = TestCall::new("p", Path::new("/tmp"), &[("n", "3")]);
    let failure = testing::install::<Boom>(&call).unwrap_err();
    assert!(failure.panicked);
    assert!(
        failure
            .message
            .starts_with("index out of bounds: the len is 0 but the index is 3"),
        "{}",
        failure.message
    );
}

#[test]
fn context_reaches_the_host() {
    let mut call = TestCall::new("web", Path::new("/srv"), &[("eggs", "a b\nc")]);
    call.offline = true;
    call.other_options
        .insert(("buildout".into(), "greeting".into()), "hi".into());
    let outcome = testing::install::<Talk>(&call).unwrap();
    assert_eq!(outcome.logs, ["INFO part web offline true", "WARN careful"]);
    assert_eq!(outcome.output("other"), Some("hi"));
    assert_eq!(outcome.output("list"), Some("a b,c"));
    assert_eq!(
        outcome.nested,
        [("sub/buildout.toml".into(), "/tmp/sub".into())]
    );
    assert_eq!(outcome.output("cancelled"), Some("false"));
    call.cancelled = true;
    let outcome = testing::install::<Talk>(&call).unwrap();
    assert_eq!(outcome.output("cancelled"), Some("true"));
    call.nested_error = Some("nested part failed".into());
    let failure = testing::install::<Talk>(&call).unwrap_err();
    assert_eq!(failure.message, "nested part failed");
}

#[test]
fn hooks_not_implemented_are_absent() {
    let call = TestCall::new("p", Path::new("/tmp"), &[]);
    assert!(testing::update::<Talk>(&call).is_ok());
    let failure = testing::update::<Boom>(&call).unwrap_err();
    assert_eq!(failure.message, "the recipe does not implement this hook");
    assert!(testing::uninstall::<Talk>(&call).is_err());
}

mod exported {
    //! The short form of the macro: the version defaults to the crate's.
    use super::Talk;

    crate::export_plugin! {
        name: "short",
        recipes: { "default" => Talk },
    }

    #[test]
    fn the_descriptor_says_what_the_macro_was_given() {
        let d = rbuildout_plugin_v1();
        // SAFETY: the descriptor and its strings are static.
        let (d, name, version) = unsafe {
            let d = &*d;
            (d, d.name.as_bytes().unwrap(), d.version.as_bytes().unwrap())
        };
        assert_eq!(d.magic, crate::abi::MAGIC);
        assert_eq!(
            (name, version),
            (&b"short"[..], env!("CARGO_PKG_VERSION").as_bytes())
        );
        assert_eq!(
            d.flags & crate::abi::FLAG_THREAD_SAFE,
            crate::abi::FLAG_THREAD_SAFE
        );
        assert_eq!(d.recipe_count, 1);
        // SAFETY: one static entry with a static vtable.
        let vtable = unsafe { &*(*d.recipes).vtable };
        assert!(vtable.install.is_some() && vtable.update.is_some() && vtable.uninstall.is_none());
    }
}

/// Publishes what `Context::owns` and `files::check_target` say about the option `path`.
struct Check;

impl Recipe for Check {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let path = Path::new(options.require("path")?);
        ctx.publish("owns", &ctx.owns(path).to_string())?;
        let checked = super::files::check_target(ctx, path)?;
        ctx.publish("checked", &checked.display().to_string())
    }
}

fn check(call: &TestCall) -> std::result::Result<String, String> {
    testing::install::<Check>(call)
        .map(|o| o.output("checked").unwrap_or_default().to_owned())
        .map_err(|f| f.message)
}

#[test]
fn owns_answers_from_the_recorded_paths_and_is_false_on_an_old_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut call = TestCall::new("p", root, &[]);
    call.owned = vec![
        "etc/app.conf".into(),
        "parts/p".into(),
        "/elsewhere/x".into(),
    ];
    let owns = |call: &TestCall, path: &str| {
        let mut call = call.clone();
        call.options = vec![("path".into(), path.into())];
        // `check_target` may refuse: only the `owns` output matters here.
        match testing::install::<Check>(&call) {
            Ok(outcome) => outcome.output("owns").map(str::to_owned),
            Err(failure) => failure.outcome.output("owns").map(str::to_owned),
        }
    };
    let abs = root.join("etc/app.conf").display().to_string();
    for (path, expected) in [
        ("etc/app.conf", "true"),
        ("./etc/../etc/app.conf", "true"),
        (abs.as_str(), "true"),
        ("parts/p/inside/file", "true"),
        ("/elsewhere/x", "true"),
        ("etc/other.conf", "false"),
        ("etc", "false"),
        ("parts/p2", "false"),
    ] {
        assert_eq!(owns(&call, path).as_deref(), Some(expected), "{path}");
    }
    // A host of ABI 1.0 passes a shorter call: the recipe still runs, and owns nothing.
    call.abi_1_0 = true;
    assert_eq!(owns(&call, "etc/app.conf").as_deref(), Some("false"));
}

/// Publishes what `Context::option_names` lists for the section named by `section`.
struct Names;

impl Recipe for Names {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let listed = ctx.option_names(options.require("section")?);
        ctx.publish("names", &format!("{listed:?}"))
    }
}

#[test]
fn option_names_lists_a_section_and_is_none_on_an_old_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut call = TestCall::new("p", dir.path(), &[("section", "env")]);
    for (option, value) in [("B", "2"), ("A", "1")] {
        call.other_options
            .insert(("env".into(), option.into()), value.into());
    }
    let names = |call: &TestCall| {
        testing::install::<Names>(call)
            .unwrap()
            .output("names")
            .unwrap()
            .to_owned()
    };
    assert_eq!(names(&call), r#"Some(["A", "B"])"#);
    let mut missing = call.clone();
    missing.options = vec![("section".into(), "nope".into())];
    assert_eq!(names(&missing), "None");
    call.abi_1_0 = true;
    assert_eq!(names(&call), "None", "an older host cannot list");
}

#[test]
fn check_target_keeps_writes_inside_and_off_files_the_part_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("instance");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(base.join("shared")).unwrap();
    std::fs::write(root.join("etc/user.conf"), "mine").unwrap();
    std::os::unix::fs::symlink("/", root.join("sys")).unwrap();
    let with = |path: &str| {
        let mut call = TestCall::new("p", &root, &[("path", path)]);
        call.owned = vec!["etc/made.conf".into()];
        call
    };

    // Inside, new: allowed, returned absolute and normalized.
    assert_eq!(
        check(&with("etc/./new.conf")),
        Ok(root.join("etc/new.conf").display().to_string())
    );
    // Outside, as written or through a link: refused, naming the path and the option.
    let outside = check(&with("../shared/x")).unwrap_err();
    assert_eq!(
        outside,
        format!(
            "{}/shared/x is outside the buildout directory {}: list the folder in \
             `allow-outside` of [buildout] to let parts write there",
            base.display(),
            root.display()
        )
    );
    let linked = check(&with("sys/x")).unwrap_err();
    assert!(
        linked.contains("is reached through a link to /"),
        "{linked}"
    );
    // An existing file the part did not make: refused; one it made: allowed.
    assert_eq!(
        check(&with("etc/user.conf")).unwrap_err(),
        format!(
            "{} exists and was not made by this part; move it away",
            root.join("etc/user.conf").display()
        )
    );
    std::fs::write(root.join("etc/made.conf"), "old").unwrap();
    assert!(check(&with("etc/made.conf")).is_ok());

    // Folders listed in `allow-outside`, and the eggs folder, let writes through.
    let mut call = with("../shared/x");
    call.other_options.insert(
        ("buildout".into(), "allow-outside".into()),
        "/nowhere\n../shared".into(),
    );
    assert!(check(&call).is_ok());
    let mut call = with("../shared/eggs/a");
    call.other_options.insert(
        ("buildout".into(), "eggs-directory".into()),
        base.join("shared/eggs").display().to_string(),
    );
    assert!(check(&call).is_ok());
    // Listing one folder lets no link elsewhere through.
    let mut call = with("sys/etc/passwd");
    call.other_options.insert(
        ("buildout".into(), "allow-outside".into()),
        "../shared".into(),
    );
    assert!(check(&call).unwrap_err().contains("through a link"));
}

struct Folders;

impl Recipe for Folders {
    fn install(_options: &Options, ctx: &Context) -> Result<()> {
        let b = ctx.buildout();
        ctx.publish("bin", &b.bin_directory().display().to_string())?;
        ctx.publish("parts", &b.parts_directory().display().to_string())?;
        ctx.publish("instance", &b.instance_directory().display().to_string())?;
        ctx.publish("python", &b.python())?;
        ctx.publish("index", b.index().as_deref().unwrap_or("none"))?;
        ctx.publish("relative", &b.relative_paths().to_string())?;
        let cache = b.download_cache().map(|c| c.display().to_string());
        ctx.publish("cache", cache.as_deref().unwrap_or("none"))?;
        ctx.publish("versions", &b.versions())?;
        ctx.publish("picked", &b.allow_picked_versions().to_string())
    }
}

#[test]
fn buildout_is_read_through_the_host_with_rbuildouts_defaults_only_as_fallbacks() {
    let mut call = TestCall::new("p", Path::new("/i"), &[]);
    let fallback = testing::install::<Folders>(&call).unwrap();
    let got = |o: &testing::Outcome, name: &str| o.output(name).unwrap().to_string();
    assert_eq!(got(&fallback, "bin"), "/i/bin");
    assert_eq!(got(&fallback, "parts"), "/i/parts");
    assert_eq!(got(&fallback, "instance"), "/i");
    assert_eq!(got(&fallback, "python"), "python3");
    assert_eq!(got(&fallback, "index"), "none");
    assert_eq!(got(&fallback, "relative"), "false");
    assert_eq!(got(&fallback, "cache"), "none");
    assert_eq!(got(&fallback, "versions"), "versions");
    assert_eq!(got(&fallback, "picked"), "true");

    for (option, value) in [
        ("bin-directory", "/i/tools "),
        ("parts-directory", "p"),
        ("instance-directory", "/srv/prod"),
        ("python", " /usr/bin/python3.12 "),
        ("index", "https://example.org/simple"),
        ("relative-paths", "true"),
        ("download-cache", "/c/rb "),
        ("versions", " pins"),
        ("allow-picked-versions", "false "),
    ] {
        call.other_options
            .insert(("buildout".into(), option.into()), value.into());
    }
    let given = testing::install::<Folders>(&call).unwrap();
    assert_eq!(got(&given, "bin"), "/i/tools");
    assert_eq!(got(&given, "parts"), "/i/p");
    assert_eq!(got(&given, "instance"), "/srv/prod");
    assert_eq!(got(&given, "python"), "/usr/bin/python3.12");
    assert_eq!(got(&given, "index"), "https://example.org/simple");
    assert_eq!(got(&given, "relative"), "true");
    assert_eq!(got(&given, "cache"), "/c/rb");
    assert_eq!(got(&given, "versions"), "pins");
    assert_eq!(got(&given, "picked"), "false");
}

/// Reports two steps, the first with bytes.
struct Steps;

impl Recipe for Steps {
    fn install(_options: &Options, ctx: &Context) -> Result<()> {
        ctx.progress("distributions", 1, 2);
        ctx.progress_bytes(10, 0, "a.whl");
        ctx.progress("files compiled", 3, 3);
        Ok(())
    }
}

#[test]
fn progress_reaches_the_host_and_is_dropped_on_an_old_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut call = TestCall::new("p", dir.path(), &[]);
    let reports = |call: &TestCall| testing::install::<Steps>(call).unwrap().progress;
    assert_eq!(
        reports(&call),
        [
            "COUNT distributions 1/2",
            "BYTES a.whl 10/0",
            "COUNT files compiled 3/3"
        ]
    );
    call.abi_1_4 = true;
    assert_eq!(
        reports(&call),
        Vec::<String>::new(),
        "a host of ABI 1.4 has none"
    );
}
