//! The stable C ABI between rbuildout and its recipe plugins, and the safe SDK to write them.
//!
//! A recipe plugin is a shared library named `librbuildout_recipe_<name>.so` that rbuildout
//! loads when a part says `recipe = "<name>"` (or `"<name>:<entry>"` for a recipe other than
//! `default`). This crate has two halves:
//!
//! - [`abi`]: the `#[repr(C)]` structs and constants of ABI v1, the only thing that crosses
//!   the boundary; `include/rbuildout_plugin.h` declares the same for C authors.
//! - The SDK (the crate root): implement [`Recipe`] for a unit struct, list it in
//!   [`export_plugin!`], and the macro writes the `extern "C"` side: panics and errors become
//!   status codes with a message, `tracing` events reach the host's log. [`files`] has the
//!   file chores recipes share: atomic writes, rewriting only what changed, relative paths.
//!
//! Behind features, for the other side of the boundary: `host` is the host half of the ABI
//! that rbuildout calls recipes with (a recipe never needs it), and `testing` runs a recipe
//! through that same host half in its unit tests (see below).
//!
//! # A recipe, end to end
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "rbuildout-recipe-hello"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]   # rlib: to test the logic in-process
//!
//! [dependencies]
//! rbuildout-plugin-api = "0.1"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};
//!
//! /// Writes `greeting` into the file `path` (default `hello.txt`).
//! pub struct Hello;
//!
//! impl Recipe for Hello {
//!     const UNINSTALL: bool = true;
//!
//!     fn install(options: &Options, ctx: &Context) -> Result<()> {
//!         let greeting = options.get("greeting").unwrap_or("hello");
//!         let path = ctx.buildout_directory().join(options.get("path").unwrap_or("hello.txt"));
//!         std::fs::write(&path, greeting)
//!             .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
//!         ctx.register(&path)?; // the engine removes it on uninstall
//!         ctx.publish("file", &path.display().to_string())?; // ${part:file} for later parts
//!         ctx.info(&format!("wrote {}", path.display()));
//!         Ok(())
//!     }
//!
//!     fn uninstall(_options: &Options, ctx: &Context) -> Result<()> {
//!         ctx.info("goodbye"); // the file itself is removed by the engine
//!         Ok(())
//!     }
//! }
//!
//! export_plugin! {
//!     name: "hello",
//!     version: env!("CARGO_PKG_VERSION"),
//!     recipes: { "default" => Hello },
//! }
//! ```
//!
//! `cargo build --release` gives `target/release/librbuildout_recipe_hello.so`; point
//! rbuildout at its folder and use it:
//!
//! ```toml
//! [buildout]
//! parts = ["greet"]
//! plugin-path = ["target/release"]   # or RBUILDOUT_PLUGIN_PATH, or develop = ["."]
//!
//! [greet]
//! recipe = "hello"
//! greeting = "hello from ${buildout:directory}"
//! ```
//!
//! # Testing a recipe
//!
//! `testing` runs a recipe in-process through the same entry points and host callbacks
//! rbuildout uses, and returns what it registered, published and logged. It is behind the
//! `testing` feature, for the dev-dependency only, so that it stays out of the plugin:
//!
//! ```toml
//! [dev-dependencies]
//! rbuildout-plugin-api = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```
//! use rbuildout_plugin_api::testing::{self, TestCall};
//! # use rbuildout_plugin_api::{Context, Options, Recipe, Result};
//! # pub struct Hello;
//! # impl Recipe for Hello {
//! #     fn install(options: &Options, ctx: &Context) -> Result<()> {
//! #         let path = ctx.buildout_directory().join("hello.txt");
//! #         std::fs::write(&path, options.get("greeting").unwrap_or("hello"))?;
//! #         ctx.register(&path)?;
//! #         ctx.publish("file", &path.display().to_string())
//! #     }
//! # }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let call = TestCall::new("greet", dir.path(), &[("greeting", "hi")]);
//! let outcome = testing::install::<Hello>(&call).unwrap();
//! let file = dir.path().join("hello.txt");
//! assert_eq!(std::fs::read_to_string(&file).unwrap(), "hi");
//! assert_eq!(outcome.paths, [file.clone()]);
//! assert_eq!(outcome.output("file"), Some(file.to_str().unwrap()));
//! ```
//!
//! # Rules the host enforces
//!
//! - A recipe owns what it [registers](Context::register); paths outside the instance are
//!   reported and never removed.
//! - An `Err` fails the part with its message; a panic fails the part too, and the host stops
//!   calling the plugin for the rest of the run. Build plugins with the default
//!   `panic = "unwind"`: under `panic = "abort"` a panic kills rbuildout itself.
//! - Strings are UTF-8; a path that is not cannot be registered.
//! - Recipes may run on several threads at once (for different parts).

pub mod abi;
#[cfg(all(unix, feature = "host"))]
pub mod host;
mod sdk;

#[cfg(unix)]
pub use sdk::develop;
#[cfg(unix)]
pub use sdk::files;
#[doc(hidden)]
pub use sdk::private;
#[cfg(all(unix, feature = "testing"))]
pub use sdk::testing;
pub use sdk::{
    Buildout, Context, Error, Options, Recipe, Result, RunEnd, is_substitution_name, parse_size,
};
/// The `tracing` crate the SDK forwards to the host; use its macros in a recipe.
pub use tracing;

/// What the SDK puts in the descriptor's `built_with`.
pub const BUILT_WITH: &str = concat!("rbuildout-plugin-api ", env!("CARGO_PKG_VERSION"));

/// Exports a plugin: its name, its version (default: the crate's) and its recipes (entry
/// name => a type implementing [`Recipe`]). Call it once per library; see the crate docs
/// for an example.
///
/// It defines the library's one exported symbol, `rbuildout_plugin_v1`, and the Rust function
/// `rbuildout_plugin_descriptor()` returning the same descriptor, for a host that links the
/// crate as an `rlib` (rbuildout's built-in recipes; `docs/plugins.md`). The plugin is
/// flagged thread-safe: safe Rust recipes may be called from several threads at once.
///
/// `run_end: path::to::hook` (optional, after the recipes) names a `fn(&RunEnd)` called
/// once when a run has finished with its parts ([`RunEnd`]): the place to report what the
/// plugin gathered over them.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:expr,
        recipes: { $($entry:literal => $recipe:ty),+ $(,)? }
        $(, run_end: $run_end:path)? $(,)?
    ) => {
        $crate::export_plugin! {
            name: $name,
            version: env!("CARGO_PKG_VERSION"),
            recipes: { $($entry => $recipe),+ }
            $(, run_end: $run_end)?
        }
    };
    (
        name: $name:expr,
        version: $version:expr,
        recipes: { $($entry:literal => $recipe:ty),+ $(,)? }
        $(, run_end: $run_end:path)? $(,)?
    ) => {
        /// The plugin's descriptor (rbuildout plugin ABI v1), exported as the C symbol
        /// `rbuildout_plugin_v1`.
        #[unsafe(no_mangle)]
        pub extern "C" fn rbuildout_plugin_v1() -> *const $crate::abi::PluginDescriptor {
            rbuildout_plugin_descriptor()
        }

        /// The plugin's descriptor, as a Rust function: how a host that links this crate
        /// reaches it (rbuildout's built-in recipes) without the C symbol, which every
        /// plugin defines.
        pub fn rbuildout_plugin_descriptor() -> *const $crate::abi::PluginDescriptor {
            const RECIPES: &[$crate::abi::RecipeEntry] = &[
                $($crate::abi::RecipeEntry {
                    name: $crate::abi::Str::new($entry),
                    vtable: &<$crate::private::Export<$recipe>>::VTABLE,
                }),+
            ];
            static DESCRIPTOR: $crate::abi::PluginDescriptor = $crate::abi::PluginDescriptor {
                magic: $crate::abi::MAGIC,
                abi_major: $crate::abi::ABI_MAJOR,
                abi_minor: $crate::abi::ABI_MINOR,
                flags: $crate::abi::FLAG_THREAD_SAFE
                    | if cfg!(panic = "abort") { $crate::abi::FLAG_PANIC_ABORT } else { 0 },
                struct_size: ::std::mem::size_of::<$crate::abi::PluginDescriptor>(),
                name: $crate::abi::Str::new($name),
                version: $crate::abi::Str::new($version),
                built_with: $crate::abi::Str::new($crate::BUILT_WITH),
                init: Some($crate::private::init),
                recipes: RECIPES.as_ptr(),
                recipe_count: RECIPES.len(),
                run_end: $crate::__run_end!($($run_end)?),
            };
            &DESCRIPTOR
        }
    };
}

/// The descriptor's `run_end` for `export_plugin!`: none, or a trampoline to the hook.
#[doc(hidden)]
#[macro_export]
macro_rules! __run_end {
    () => {
        None
    };
    ($hook:path) => {{
        unsafe extern "C" fn __rbuildout_run_end(
            _host: *const $crate::abi::HostApi,
            end: *const $crate::abi::RunEnd,
        ) -> i32 {
            // SAFETY: the host passes a valid `RunEnd` for the call.
            unsafe { $crate::private::run_end(end, $hook) }
        }
        Some(__rbuildout_run_end)
    }};
}

#[cfg(test)]
mod layout_tests;
