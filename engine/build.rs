//! The binary links every built-in recipe crate (engine/src/builtins.rs), and each of them
//! defines the C symbol `rbuildout_plugin_v1` for its own library build (the crates are
//! `cdylib` and `rlib` from one compile, so no cfg can leave it out of the `rlib`). The
//! binary never uses that symbol (it reaches each crate's descriptor through the crate's
//! Rust function `rbuildout_plugin_descriptor`), so the linker may keep any one of the
//! copies: `--allow-multiple-definition`, for the binary only.
#![allow(
    clippy::print_stdout,
    reason = "a build script talks to cargo on stdout"
)]

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-link-arg-bins=-Wl,--allow-multiple-definition");
}
