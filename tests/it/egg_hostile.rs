//! The `egg` recipe against a hostile or broken index: credentials that must not leak,
//! links and redirects that must not be followed, lying metadata, zip bombs, endless and
//! silent servers, and runs killed in the middle of an install. Every attack runs the real
//! binary with its memory (`ulimit -v`) and its time bounded.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rbuildout_tests::pyindex::{Index, Package};
use rbuildout_tests::{Instance, Run};

/// Virtual memory a run may use, in KiB: a normal run of the egg recipe (with its worker
/// threads and the Python it starts) fits well within it; holding a 2 GB member does not.
const MEMORY_KB: u64 = 1_000_000;

/// An instance with one egg part `app` installing `eggs` from `index_url` (plus `extra`
/// lines in the part), with its own download cache.
fn instance(index_url: &str, eggs: &[&str], extra: &str) -> Instance {
    let eggs: Vec<String> = eggs.iter().map(|e| format!("{e:?}")).collect();
    Instance::new(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{index_url}\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [{}]\n{extra}",
        eggs.join(", ")
    ))
}

/// Runs the binary in `inst` with `args` and `env`, under `ulimit -v` [`MEMORY_KB`], killed
/// after `limit`; returns what it did and how long it took.
fn bounded(
    inst: &Instance,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> (Run, Duration) {
    let probe = inst.command(args);
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {MEMORY_KB}; exec \"$0\" \"$@\""))
        .arg(probe.get_program())
        .args(probe.get_args())
        .current_dir(inst.dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in probe.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let start = Instant::now();
    let mut child = c.spawn().expect("spawn rbuildout");
    // Drained on threads, so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rbuildout {args:?} still ran after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    };
    (run, took)
}

/// Every regular file under `dir` (recursively, links not followed), or `dir` itself.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// Asserts that `secret` is in no file under `dirs`, no file name, and neither output.
fn assert_nowhere(secret: &str, dirs: &[PathBuf], run: &Run) {
    for dir in dirs {
        let files = files_under(dir);
        assert!(!files.is_empty(), "nothing under {}", dir.display());
        for f in files {
            assert!(
                !f.to_string_lossy().contains(secret),
                "{} names the password",
                f.display()
            );
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the password",
                f.display()
            );
        }
    }
    assert!(!run.stdout.contains(secret), "stdout: {}", run.stdout);
    assert!(!run.stderr.contains(secret), "stderr: {}", run.stderr);
}

fn alpha_beta() -> Vec<Package> {
    vec![
        Package::new("alpha", "1.0").requires("beta>=2"),
        Package::new("beta", "2.0"),
    ]
}

/// The index URL with `user:password@` in it.
fn with_userinfo(index: &Index, user: &str, password: &str) -> String {
    index
        .url()
        .replacen("http://", &format!("http://{user}:{password}@"), 1)
}

const PASSWORD: &str = "s3cr3t-pw-4711";

#[test]
fn the_index_password_reaches_no_lock_cache_log_or_error() {
    let index = Index::serve(&alpha_beta());
    index.require_auth("me", PASSWORD);
    let url = with_userinfo(&index, "me", PASSWORD);
    let inst = instance(&url, &["alpha"], "");
    let limit = Duration::from_secs(120);
    let (run, _) = bounded(&inst, &["-vv"], &[], limit);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The credentials were sent: every request of the run had them.
    let auth = index.authorizations();
    assert!(!auth.is_empty());
    assert!(auth.iter().all(|(_, a)| a.is_some()), "{auth:?}");
    let lock = inst.read("buildout.lock");
    assert!(lock.contains(&index.base_url()), "{lock}");
    let dirs = [
        inst.path("buildout.lock"),
        inst.path("cache"),
        inst.path("eggs"),
    ];
    assert_nowhere(PASSWORD, &dirs, &run);
    // Again from the lock (the files are fetched from the locked URLs, still with the
    // credentials), after the eggs are gone.
    std::fs::remove_dir_all(inst.path("eggs")).expect("remove eggs");
    std::fs::remove_dir_all(inst.path("cache/dists")).expect("remove dists");
    let (run, _) = bounded(&inst, &["-v"], &[], limit);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_nowhere(PASSWORD, &dirs, &run);
    // PIP_INDEX_URL the same way; and an error naming the URL: a package it lacks.
    let other = Instance::new(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [\"nosuchthing\"]\n",
    );
    let (run, _) = bounded(&other, &["-vv"], &[("PIP_INDEX_URL", &url)], limit);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("nosuchthing"), "{}", run.stderr);
    assert!(run.stderr.contains(&index.base_url()), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    // Wrong credentials: the 401 is named, without them.
    let wrong = instance(
        &with_userinfo(&index, "me", "wrong-pw-0815"),
        &["alpha"],
        "",
    );
    let (run, _) = bounded(&wrong, &[], &[], limit);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong-pw-0815"), "{}", run.stderr);
}

#[test]
fn credentials_go_to_their_own_host_only() {
    // The index links its files on another server (another port: another origin).
    let files = Index::serve(&alpha_beta());
    let index = Index::serve(&alpha_beta());
    index.require_auth("me", PASSWORD);
    index.set_files_base(Some(&files.base_url()));
    let inst = instance(&with_userinfo(&index, "me", PASSWORD), &["alpha"], "");
    let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(120));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent = files.authorizations();
    assert!(
        sent.iter().any(|(t, _)| t.starts_with("/files/")),
        "{sent:?}"
    );
    assert!(sent.iter().all(|(_, a)| a.is_none()), "{sent:?}");
}
