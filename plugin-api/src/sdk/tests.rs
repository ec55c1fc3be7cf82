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
