//! Helpers shared by the end-to-end tests: locating the real binary and its plugins.

pub mod pyindex;
pub mod tls;

use std::path::PathBuf;
use std::sync::OnceLock;

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

/// The variable that names another `rbuildout` binary to test: CI runs the LAVA test on the
/// binary `pip install .` put in a virtualenv.
pub const TEST_BIN_ENV: &str = "RBUILDOUT_TEST_BIN";

/// The `rbuildout` binary under test: `target/<profile>/rbuildout`, or the file
/// [`TEST_BIN_ENV`] names.
pub fn rbuildout_bin() -> PathBuf {
    let bin = std::env::var_os(TEST_BIN_ENV)
        .filter(|b| !b.is_empty())
        .map_or_else(|| target_dir().join("rbuildout"), PathBuf::from);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        bin.display()
    );
    bin
}

/// The folder holding the test plugins `testkit` and `raw` (`target/test-plugins/debug`).
///
/// They are a cargo workspace of their own (`tests/plugins/Cargo.toml`), so the product's
/// build never puts them beside the binary. The first call in a test process builds that
/// workspace (cargo makes it a no-op when nothing changed); a file lock in the build folder
/// keeps test processes that start together from building it at once.
pub fn test_plugins_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(build_test_plugins).clone()
}

fn build_test_plugins() -> PathBuf {
    let build = target_dir()
        .parent()
        .expect("the target folder holds the profile folder")
        .join("test-plugins");
    std::fs::create_dir_all(&build).unwrap_or_else(|e| panic!("create {}: {e}", build.display()));
    let lock_path = build.join("harness.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    let built = cargo_build(&repo_root().join("tests/plugins/Cargo.toml"), &build);
    // The lock is released when `lock` is dropped, after the build finished.
    drop(lock);
    built
}

/// Builds the cargo project `manifest` (a workspace of its own, as a plugin author's would
/// be) in debug mode into `target_dir`, offline (the tests never reach the network), without
/// the outer build's target settings; returns `target_dir/debug`. Cargo's own lock on
/// `target_dir` serialises builds that start together.
pub fn cargo_build(manifest: &std::path::Path, target_dir: &std::path::Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--offline", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("debug")
}

/// Compiles the C plugin `source` into the shared library `out` with gcc against the ABI
/// header alone (`plugin-api/include`), warnings as errors, `flags` added (defines,
/// `-fvisibility=hidden`, `-pthread`…); returns `out`.
pub fn compile_c(source: &std::path::Path, out: &std::path::Path, flags: &[&str]) -> PathBuf {
    let status = std::process::Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Werror", "-shared", "-fPIC"])
        .arg("-I")
        .arg(repo_root().join("plugin-api/include"))
        .args(flags)
        .arg(source)
        .arg("-o")
        .arg(out)
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed on {}", source.display());
    out.to_path_buf()
}

/// A real shared library that is not a plugin: the system's `libz.so.1`.
pub fn system_libz() -> PathBuf {
    [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib64/libz.so.1",
        "/usr/lib/libz.so.1",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("libz.so.1 in a system library folder")
}

/// The plugin search path the tests give the binary: the test plugins' folder. The built-in
/// recipes are the binary's own (the libraries cargo builds beside it come after them).
pub fn plugin_path() -> std::ffi::OsString {
    test_plugins_dir().into_os_string()
}

/// The root of the repository, for fixtures under `tests/` and `examples/`.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// One instance folder in a temporary directory, run with the real binary, its built-in
/// recipes and the test plugins (`RBUILDOUT_PLUGIN_PATH` is [`plugin_path`]), without user
/// defaults, no colour.
pub struct Instance {
    tmp: tempfile::TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `command` to the end, capturing its exit code and output.
    pub fn of(command: &mut std::process::Command) -> Run {
        let out = command.output().expect("run rbuildout");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts that stderr holds `text`, showing the whole of stderr when it does not.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts that stdout holds `text`, showing the whole of stdout when it does not.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Run {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}:\n{}",
            self.stdout
        );
        self
    }
}

/// Runs `command` with its stderr on a new pseudo-terminal of 200 columns (stdin and stdout
/// untouched) and returns its exit code and what it wrote there, as the terminal got it
/// (`\n` arrives as `\r\n`).
pub fn in_terminal(mut command: std::process::Command) -> (i32, String) {
    use std::io::Read as _;
    use std::os::fd::{FromRawFd as _, OwnedFd};
    let (mut master, slave) = {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 50,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes the two descriptors it opens; the name may be null and the
        // termios and size pointers point at valid values (or are null).
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and belong to nobody else.
        unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        }
    };
    command.stderr(slave);
    let mut child = command.spawn().expect("run rbuildout");
    // The command holds the terminal's other end: without it, reading ends when the child
    // (and whatever it started) has closed it.
    drop(command);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match master.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: every writer closed the terminal.
            Err(_) => break,
        }
    }
    let status = child.wait().expect("wait for rbuildout");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

impl Instance {
    /// A new instance whose `buildout.toml` is `config`.
    pub fn new(config: &str) -> Instance {
        let instance = Instance {
            tmp: tempfile::tempdir().expect("temp dir"),
        };
        instance.write("buildout.toml", config);
        instance
    }

    pub fn dir(&self) -> &std::path::Path {
        self.tmp.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir().join(rel)
    }

    /// Writes `text` to `rel`, creating its folders.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    /// The binary with this instance as working directory; `args` follow `-U`. `HOME` is
    /// the instance's `.home`, so the default `download-cache` (`~/.cache/rbuildout`) is the
    /// instance's own: a test never reads or fills the user's cache, or another test's.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(rbuildout_bin());
        c.current_dir(self.dir())
            .env("RBUILDOUT_PLUGIN_PATH", plugin_path())
            .env("RBUILDOUT_HOME", self.path(".home"))
            .env("HOME", self.path(".home"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .arg("-U")
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "rbuildout {args:?} failed:\n{}", r.stderr);
        r
    }

    /// Runs and asserts the exit code `code`.
    pub fn fails(&self, args: &[&str], code: i32) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "rbuildout {args:?}: expected exit {code}:\n{}",
            r.stderr
        );
        r
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Whether `rel` exists (a dangling link counts).
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    /// Replaces `buildout.toml`.
    pub fn config(&self, text: &str) {
        self.write("buildout.toml", text);
    }

    /// Starts a run, kills it (SIGKILL) after `delay` and waits for it: a run cut off at
    /// any point.
    pub fn kill_after(&self, args: &[&str], delay: std::time::Duration) {
        let mut child = self
            .command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn rbuildout");
        std::thread::sleep(delay);
        child.kill().expect("kill rbuildout");
        child.wait().expect("wait for rbuildout");
    }

    /// Starts a run in the background, stdout discarded and stderr piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn rbuildout")
    }

    /// The text of the state file `.installed.toml`.
    pub fn state_text(&self) -> String {
        self.read(".installed.toml")
    }

    /// The state file `.installed.toml`, parsed.
    pub fn state(&self) -> toml::Table {
        self.state_text()
            .parse()
            .expect("the state file is valid TOML")
    }

    /// The installed parts, in recorded order.
    pub fn installed(&self) -> Vec<String> {
        self.state()["order"]
            .as_array()
            .expect("order is an array")
            .iter()
            .map(|s| s.as_str().expect("a part name").to_string())
            .collect()
    }

    /// The lines of a file, empty when it does not exist (the testkit's log files).
    pub fn log(&self, rel: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(rel))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The element of a JSON array (`rbuildout plugins --json`, a plugin's `recipes`) whose
/// `name` is `name`.
pub fn named<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in {list}"))
}

/// Size, modification time and inode of a file: any rewrite (even by rename) changes one.
pub fn identity(path: &std::path::Path) -> (u64, std::time::SystemTime, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (m.len(), mtime(path), m.ino())
}

/// The modification time of a file.
pub fn mtime(path: &std::path::Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
}

/// Runs `command` to the end with stdin closed, killed after two minutes; returns its stdout
/// then stderr, and panics (naming `what`) unless it succeeded. Output is read while it runs,
/// so a talkative command cannot block on a full pipe.
pub fn run_bounded(command: &mut std::process::Command, what: &str) -> String {
    use std::process::Stdio;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(out) => out.expect("collect output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("{what} ran for more than two minutes");
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Runs zc.buildout (`python` has it installed) in `dir` on `buildout.cfg` without user
/// defaults (`-U`), with its own `HOME` and neither `BUILDOUT_HOME` nor `PIP_INDEX_URL`, and
/// `args` (`-o`, …) before `-c`; returns its output, panicking unless it succeeded.
pub fn zc_buildout(
    python: impl AsRef<std::ffi::OsStr>,
    dir: &std::path::Path,
    args: &[&str],
) -> String {
    run_bounded(
        std::process::Command::new(python)
            .current_dir(dir)
            .env("HOME", dir.join(".home"))
            .env_remove("BUILDOUT_HOME")
            .env_remove("PIP_INDEX_URL")
            .args([
                "-c",
                "import sys; from zc.buildout.buildout import main; sys.exit(main())",
                "-U",
            ])
            .args(args)
            .args(["-c", "buildout.cfg"]),
        "zc.buildout",
    )
}

/// The python of the zc.buildout oracle (`RBUILDOUT_ZC_BUILDOUT`: zc.buildout 6.0.1 with the
/// recipes `.ci/run` installs beside it), or `None` when it is not set, in which case the
/// caller skips what needs it, saying so on stderr (`what`: what is not checked). With
/// `RBUILDOUT_REQUIRE_ORACLE=1`, as in CI, a missing oracle is a failure instead.
#[allow(clippy::print_stderr)] // a skipped check must show in the test's output
pub fn oracle(what: &str) -> Option<std::ffi::OsString> {
    let python = std::env::var_os("RBUILDOUT_ZC_BUILDOUT");
    if python.is_none() {
        assert!(
            std::env::var("RBUILDOUT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "RBUILDOUT_REQUIRE_ORACLE=1 but RBUILDOUT_ZC_BUILDOUT (a python with zc.buildout \
             6.0.1 and the recipes .ci/run installs) is not set: {what}"
        );
        eprintln!("RBUILDOUT_ZC_BUILDOUT is not set: {what} is not checked");
    }
    python
}

/// The `ansible-playbook` of ansible-core from PyPI (`RBUILDOUT_ANSIBLE`, which `.ci/run`
/// installs into `target/ansible`), or `None` when it is not set, in which case the caller
/// skips what needs it, saying so on stderr (`what`: what is not checked). With
/// `RBUILDOUT_REQUIRE_ANSIBLE=1`, as in CI, a missing one is a failure instead.
#[allow(clippy::print_stderr)] // a skipped check must show in the test's output
pub fn ansible_playbook(what: &str) -> Option<PathBuf> {
    let playbook = std::env::var_os("RBUILDOUT_ANSIBLE").filter(|p| !p.is_empty());
    if playbook.is_none() {
        assert!(
            std::env::var("RBUILDOUT_REQUIRE_ANSIBLE").as_deref() != Ok("1"),
            "RBUILDOUT_REQUIRE_ANSIBLE=1 but RBUILDOUT_ANSIBLE (the ansible-playbook of \
             ansible-core, as .ci/run installs it) is not set: {what}"
        );
        eprintln!("RBUILDOUT_ANSIBLE is not set: {what} is not checked");
    }
    playbook.map(PathBuf::from)
}

/// The text of `bin/<script>` with what must differ between the two tools made one name:
/// the buildout folder, each egg folder (zc.buildout's `eggs/v5/<name>-<version>-pyX.Y.egg`,
/// rbuildout's `eggs/<wheel name>`, both named by the PEP 503 project name) and the
/// interpreter of the `#!` line.
pub fn normalized_script(dir: &std::path::Path, eggs: &std::path::Path, script: &str) -> String {
    let mut text = std::fs::read_to_string(dir.join("bin").join(script))
        .unwrap_or_else(|e| panic!("read {script} in {}: {e}", dir.display()));
    let mut folders: Vec<std::path::PathBuf> = std::fs::read_dir(eggs)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    folders.retain(|p| p.is_dir());
    // Longest first, so a name that prefixes another is replaced after it.
    folders.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for folder in folders {
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let project = name.split('-').next().unwrap_or(&name);
        // `zope.interface-8.7-py3.11-linux-x86_64.egg` and `zope_interface-8.7-cp311-...`.
        let project = pyindex::normalize(project).unwrap_or_else(|| project.to_owned());
        let rel = folder.strip_prefix(dir).unwrap().display().to_string();
        text = text
            .replace(&folder.display().to_string(), &format!("<egg {project}>"))
            .replace(&format!("'{rel}"), &format!("'<egg {project}>"));
    }
    text = text.replace(&dir.display().to_string(), "${DIR}");
    match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => format!("#!${{PYTHON}}\n{rest}"),
        _ => text,
    }
}

/// Runs the built rbuildout in `dir` on `buildout.cfg` without user defaults (`-U`), then
/// `args`, as [`zc_buildout`] runs zc.buildout: `HOME` is `dir/.home`, no `RBUILDOUT_HOME`,
/// the built plugins, no colour; returns its output, panicking unless it succeeded.
pub fn rbuildout_cfg(dir: &std::path::Path, args: &[&str]) -> String {
    run_bounded(
        std::process::Command::new(rbuildout_bin())
            .current_dir(dir)
            .env("HOME", dir.join(".home"))
            .env("RBUILDOUT_PLUGIN_PATH", plugin_path())
            .env("NO_COLOR", "1")
            .env_remove("RBUILDOUT_HOME")
            .args(["-U", "-c", "buildout.cfg"])
            .args(args),
        "rbuildout",
    )
}
