//! `buildout:develop`: build a recipe crate with cargo before the parts run, so its library
//! comes first in the plugin search path (SPEC §4.4) — the recipe author's edit-run loop.

use std::env::consts::DLL_SUFFIX;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::PluginError;

/// Builds the crate in `crate_dir` (`cargo build --release`, incremental, into the crate's
/// own target folder or `CARGO_TARGET_DIR`) and returns the folder holding its plugin
/// library, to put first in [`SearchPath::dirs`](super::SearchPath). `offline` passes
/// `--offline` to cargo.
pub fn develop(crate_dir: &Path, offline: bool) -> Result<PathBuf, PluginError> {
    develop_into(crate_dir, offline, None)
}

pub(super) fn develop_into(
    crate_dir: &Path,
    offline: bool,
    target_dir: Option<&Path>,
) -> Result<PathBuf, PluginError> {
    let fail = |message: String| PluginError::Develop {
        dir: crate_dir.to_path_buf(),
        message,
    };
    let manifest = crate_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(fail(format!("{} does not exist", manifest.display())));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest);
    if offline {
        command.arg("--offline");
    }
    if let Some(dir) = target_dir {
        command.arg("--target-dir").arg(dir);
    }
    tracing::info!("building the recipe crate {}", crate_dir.display());
    let output = command
        .output()
        .map_err(|e| fail(format!("cannot run cargo: {e}")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // The end of cargo's output holds the compiler errors and the summary.
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        return Err(fail(format!("cargo build failed:\n{tail}")));
    }
    tracing::debug!("{}", stderr.trim_end());
    let stdout = String::from_utf8_lossy(&output.stdout);
    libraries(&stdout)
        .into_iter()
        .find_map(|library| library.parent().map(Path::to_path_buf))
        .ok_or_else(|| {
            fail("it builds no library: set `crate-type = [\"cdylib\"]` in its [lib]".into())
        })
}

/// The `cdylib` files among the artifacts in cargo's JSON messages.
fn libraries(messages: &str) -> Vec<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .filter(|f| f.to_string_lossy().ends_with(DLL_SUFFIX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdylibs_are_found_in_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/release/libdep.rlib"]}
{"reason":"compiler-artifact","target":{"kind":["cdylib","rlib"]},"filenames":["/t/release/librbuildout_recipe_x.so","/t/release/librbuildout_recipe_x.rlib"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            libraries(messages),
            [PathBuf::from("/t/release/librbuildout_recipe_x.so")]
        );
    }

    #[test]
    fn a_folder_without_a_crate_or_that_does_not_compile_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = develop(dir.path(), true).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot build the recipe crate {}: {} does not exist",
                dir.path().display(),
                dir.path().join("Cargo.toml").display()
            )
        );
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\npath = \"lib.rs\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("lib.rs"), "pub fn oops( {}\n").unwrap();
        let target = dir.path().join("target");
        let err = develop_into(dir.path(), true, Some(&target))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo build failed:"), "{err}");
        assert!(err.contains("lib.rs"), "{err}");
    }

    #[test]
    fn the_example_crate_builds_and_its_folder_is_returned() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-recipe");
        let exe = std::env::current_exe().unwrap();
        let target = exe
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("develop-target");
        let dir = develop_into(&example, true, Some(&target)).unwrap();
        assert_eq!(dir, target.join("release"));
        assert!(dir.join("librbuildout_recipe_hello.so").is_file());
    }
}
