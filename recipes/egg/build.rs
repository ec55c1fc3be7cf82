//! Release builds of the plugin leave out debug info (`-Wl,--strip-debug`): the engine
//! hashes the whole library file in every run that installs or updates an egg part (the
//! recipe's identity in the state file), and the line tables made four fifths of its 40 MB,
//! about 30 ms of sha256 per run. Dev builds keep them.
#![allow(
    clippy::print_stdout,
    reason = "a build script talks to cargo on stdout"
)]

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo::rustc-cdylib-link-arg=-Wl,--strip-debug");
    }
}
