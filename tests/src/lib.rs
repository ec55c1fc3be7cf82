//! Helpers shared by the end-to-end tests: locating the real binary and its plugins.

use std::path::PathBuf;

/// The cargo target profile folder the test binary runs from (`target/debug`), where the
/// `rbuildout` binary and the plugin libraries built by `cargo build --workspace` live.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/it-<hash> -> target/debug
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The `rbuildout` binary under test.
pub fn rbuildout_bin() -> PathBuf {
    let bin = target_dir().join("rbuildout");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        bin.display()
    );
    bin
}

/// The root of the repository, for fixtures under `tests/` and `examples/`.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
