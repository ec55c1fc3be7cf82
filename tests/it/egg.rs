//! End-to-end tests of the `egg` recipe: the real binary and plugin against a real package
//! index on 127.0.0.1 (`rbuildout_tests::pyindex`), with the real Python importing the result.

use std::path::Path;
use std::process::Command;

use rbuildout_tests::pyindex::{Fault, Index, Package};
use rbuildout_tests::tls::TlsServer;
use rbuildout_tests::{Instance, Run};

/// An instance with one egg part `app` installing `eggs` from `index` (plus `extra` lines
/// appended to the config), with its own download cache.
fn instance(index: &Index, eggs: &[&str], extra: &str) -> Instance {
    Instance::new(&config(&index.url(), eggs, extra))
}

fn config(index_url: &str, eggs: &[&str], extra: &str) -> String {
    let eggs: Vec<String> = eggs.iter().map(|e| format!("{e:?}")).collect();
    format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{index_url}\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [{}]\n{extra}",
        eggs.join(", ")
    )
}

/// An output the part published, from the state file.
/// Installs an instance of [`instance`] and returns the pins its part published.
fn installed_pins(index: &Index, eggs: &[&str], extra: &str) -> String {
    let inst = instance(index, eggs, extra);
    inst.ok(&[]);
    output(&inst, "pins")
}

fn output(inst: &Instance, name: &str) -> String {
    let state = inst.state();
    state["parts"]["app"]["outputs"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no output {name} in the state"))
        .to_owned()
}

/// Runs `code` with the published `paths` first on sys.path; returns stdout.
fn python_with_paths(inst: &Instance, code: &str) -> String {
    let paths = output(inst, "paths");
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys\nsys.path[0:0] = {:?}\n{code}",
            paths.lines().collect::<Vec<_>>()
        ))
        .env_remove("PYTHONPATH")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Names in `dir` (sorted), empty if it does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn simple_requests(index: &Index) -> Vec<String> {
    index
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/simple"))
        .collect()
}

fn alpha_beta() -> Vec<Package> {
    vec![
        Package::new("alpha", "1.0")
            .requires("beta>=2")
            .module(
                "alpha/__init__.py",
                "import beta\nX = 1\ndef main():\n    print('alpha', beta.__version__)\n",
            )
            .entry_point("console_scripts", "alpha", "alpha:main"),
        Package::new("beta", "1.0"),
        Package::new("beta", "2.0").requires_python(">=3.8"),
        Package::new("beta", "3.0").yanked(),
    ]
}

#[test]
fn installs_from_the_index_and_the_code_runs() {
    let index = Index::serve(&alpha_beta());
    let inst = instance(&index, &["alpha"], "");
    inst.ok(&[]);
    // The yanked 3.0 is skipped; beta 2.0 satisfies alpha's `beta>=2`.
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==2.0");
    // The dependency is installed, but only what `eggs` asked for is `requested`.
    assert_eq!(output(&inst, "requested"), "alpha");
    let paths = output(&inst, "paths");
    let folders: Vec<&str> = paths.lines().collect();
    assert_eq!(folders.len(), 2);
    assert!(
        folders[0].ends_with("eggs/alpha-1.0-py3-none-any"),
        "{paths}"
    );
    assert!(
        folders[1].ends_with("eggs/beta-2.0-py3-none-any"),
        "{paths}"
    );
    assert_eq!(
        python_with_paths(
            &inst,
            "import alpha, beta; print(alpha.X, beta.__version__)"
        )
        .trim(),
        "1 2.0"
    );
    // Bytecode was compiled once, at install, into the egg.
    let pycache = Path::new(folders[0]).join("alpha/__pycache__");
    assert!(
        entries(&pycache).iter().any(|n| n.ends_with(".pyc")),
        "no .pyc in {}",
        pycache.display()
    );
    // The negotiated format was JSON; PEP 658 metadata was used instead of whole wheels.
    let reqs = index.requests();
    assert!(
        reqs.iter().any(|r| r.ends_with(".whl.metadata")),
        "{reqs:?}"
    );
    // The lock names every distribution with its file, URL and sha256.
    let lock: toml::Table = inst.read("buildout.lock").parse().expect("lock is TOML");
    // A file to commit and share: readable by others, not a temporary file's 0600.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(inst.path("buildout.lock"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
    let dists = lock["parts"]["app"]["dist"].as_array().expect("dist list");
    assert_eq!(dists.len(), 2);
    assert_eq!(dists[1]["name"].as_str(), Some("beta"));
    assert_eq!(dists[1]["version"].as_str(), Some("2.0"));
    assert_eq!(dists[1]["file"].as_str(), Some("beta-2.0-py3-none-any.whl"));
    assert_eq!(
        dists[1]["url"].as_str(),
        Some(index.file_url("beta-2.0-py3-none-any.whl").as_str())
    );
    assert_eq!(dists[1]["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn the_lock_is_reused_without_asking_the_index() {
    let index = Index::serve(&alpha_beta());
    let inst = instance(&index, &["alpha"], "");
    inst.ok(&[]);
    let lock = inst.read("buildout.lock");
    // A fresh instance with the same config and lock, sharing nothing else.
    let other = instance(&index, &["alpha"], "");
    other.write("buildout.lock", &lock);
    index.clear_requests();
    other.ok(&[]);
    assert_eq!(simple_requests(&index), Vec::<String>::new());
    assert_eq!(output(&other, "pins"), "alpha==1.0\nbeta==2.0");
    assert_eq!(other.read("buildout.lock"), lock, "the lock is unchanged");
    // A no-op run asks nothing at all.
    index.clear_requests();
    other.ok(&[]);
    assert_eq!(index.requests(), Vec::<String>::new());
    // -n resolves again (asks the index) and keeps the same result.
    other.ok(&["-n"]);
    assert!(!simple_requests(&index).is_empty());
    assert_eq!(other.read("buildout.lock"), lock);
}

#[test]
fn locked_fails_when_the_lock_would_change() {
    let index = Index::serve(&alpha_beta());
    let inst = instance(&index, &["alpha"], "");
    // No lock yet.
    let r = inst.fails(&["--locked"], 1);
    r.stderr_has("--locked");
    assert!(!inst.exists("buildout.lock"));
    inst.ok(&[]);
    let lock = inst.read("buildout.lock");
    inst.ok(&["--locked"]);
    // Resolving again gives the same lock: fine.
    inst.ok(&["--locked", "-n"]);
    // Another requirement: the lock would change.
    inst.write("buildout.toml", &config(&index.url(), &["beta"], ""));
    let r = inst.fails(&["--locked"], 1);
    r.stderr_has("out of date");
    assert_eq!(
        inst.read("buildout.lock"),
        lock,
        "--locked never writes the lock"
    );
}

#[test]
fn offline_works_from_lock_and_caches_and_names_a_missing_file() {
    let index = Index::serve(&alpha_beta());
    let inst = instance(&index, &["alpha"], "");
    inst.ok(&[]);
    std::fs::remove_dir_all(inst.path("eggs")).expect("remove eggs");
    std::fs::remove_file(inst.path(".installed.toml")).expect("remove state");
    index.clear_requests();
    inst.ok(&["-o"]);
    assert_eq!(index.requests(), Vec::<String>::new());
    assert_eq!(
        python_with_paths(&inst, "import alpha; print(alpha.X)").trim(),
        "1"
    );
    // Without the lock either, offline resolution reads the download cache.
    let lock = inst.read("buildout.lock");
    std::fs::remove_dir_all(inst.path("eggs")).expect("remove eggs");
    std::fs::remove_file(inst.path("buildout.lock")).expect("remove lock");
    std::fs::remove_file(inst.path(".installed.toml")).expect("remove state");
    inst.ok(&["-o"]);
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==2.0");
    assert_eq!(index.requests(), Vec::<String>::new());
    // Without lock and download cache, offline resolution finds the eggs already unpacked.
    std::fs::remove_dir_all(inst.path("cache/dists")).expect("remove cache");
    std::fs::remove_file(inst.path("buildout.lock")).expect("remove lock");
    std::fs::remove_file(inst.path(".installed.toml")).expect("remove state");
    inst.ok(&["-o"]);
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==2.0");
    assert_eq!(index.requests(), Vec::<String>::new());
    let found: toml::Table = inst.read("buildout.lock").parse().expect("lock");
    let original: toml::Table = lock.parse().expect("lock");
    for i in 0..2 {
        let (a, b) = (
            &found["parts"]["app"]["dist"][i],
            &original["parts"]["app"]["dist"][i],
        );
        assert_eq!(
            a["sha256"], b["sha256"],
            "the eggs remember their files' hashes"
        );
        assert_eq!(a["file"], b["file"]);
    }
    inst.write("buildout.lock", &lock);
    // Without eggs and download cache, offline cannot work: the message names the file.
    std::fs::remove_dir_all(inst.path("eggs")).expect("remove eggs");
    std::fs::remove_file(inst.path(".installed.toml")).expect("remove state");
    let r = inst.fails(&["-o"], 1);
    r.stderr_has("offline");
    r.stderr_has(".whl");
    assert_eq!(index.requests(), Vec::<String>::new());
}

/// Serves `packages` (with `fault`), then a run installing `eggs`, which fails (exit 1).
fn failing(packages: &[Package], fault: Option<Fault>, eggs: &[&str]) -> (Index, Instance, Run) {
    let index = Index::serve(packages);
    if let Some(fault) = fault {
        index.set_fault(fault);
    }
    let inst = instance(&index, eggs, "");
    let run = inst.fails(&[], 1);
    (index, inst, run)
}

/// The eggs folder holds nothing (no egg, no temp folder).
fn assert_no_eggs(inst: &Instance) {
    assert_eq!(entries(&inst.path("eggs")), Vec::<String>::new());
}

#[test]
fn a_hash_mismatch_is_refused_and_leaves_nothing() {
    let (_index, inst, r) = failing(&alpha_beta(), Some(Fault::WrongHash), &["alpha"]);
    r.stderr_has("sha256 mismatch");
    assert_no_eggs(&inst);
    assert!(!inst.exists("buildout.lock"));
}

#[test]
fn a_truncated_download_is_retried_then_refused() {
    let (_index, inst, r) = failing(&alpha_beta(), Some(Fault::Truncate), &["alpha"]);
    assert!(
        r.stderr.contains("alpha-1.0-py3-none-any.whl") || r.stderr.contains("beta-2.0"),
        "{}",
        r.stderr
    );
    assert_no_eggs(&inst);
}

#[test]
fn a_malicious_wheel_is_refused_and_leaves_nothing() {
    for member in ["../escape.txt", "/tmp/abs-escape.txt", "evil\\..\\x.txt"] {
        let index = Index::serve(&[Package::new("evil", "1.0").malicious_member(member)]);
        let inst = instance(&index, &["evil"], "");
        let r = inst.fails(&[], 1);
        assert!(r.stderr.contains("refused"), "{member}: {}", r.stderr);
        assert_no_eggs(&inst);
        assert!(!inst.exists("escape.txt"));
    }
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (index, _inst, r) = failing(&alpha_beta(), Some(Fault::Status500), &["alpha"]);
    r.stderr_has("HTTP 500");
    r.stderr_has("/simple/alpha/");
    let tries = simple_requests(&index)
        .iter()
        .filter(|r| r.starts_with("/simple/alpha"))
        .count();
    assert_eq!(tries, 3, "{:?}", index.requests());
}

#[test]
fn a_garbage_page_is_a_clear_error() {
    let (_index, _inst, r) = failing(&alpha_beta(), Some(Fault::Garbage), &["alpha"]);
    r.stderr_has("not PEP 691 JSON");
}

#[test]
fn a_nonexistent_requirement_is_named() {
    let (_index, _inst, r) = failing(&alpha_beta(), None, &["nosuchthing"]);
    r.stderr_has("no distribution named `nosuchthing`");
}

#[test]
fn a_conflict_is_explained() {
    let (index, _inst, r) = failing(&alpha_beta(), None, &["alpha", "beta<2"]);
    r.stderr_has("cannot be satisfied");
    r.stderr_has("alpha");
    r.stderr_has("beta");
    r.stderr_has("Because");
    // Two requirements of `eggs` that cannot both hold.
    let both = instance(&index, &["beta>=2", "beta<2"], "");
    let r = both.fails(&[], 1);
    r.stderr_has("incompatible versions of beta: >=2 and <2");
    // A pin that excludes what is required names the pin.
    let pinned = instance(&index, &["alpha"], "\n[versions]\nbeta = \"1.0\"\n");
    let r = pinned.fails(&[], 1);
    r.stderr_has("beta = 1.0");
    r.stderr_has("alpha 1.0 depends on beta >=2");
}

#[test]
fn markers_and_extras_follow_the_interpreter() {
    let index = Index::serve(&[
        Package::new("beta", "2.0")
            .extra("fast", &["gamma"])
            .requires("old; python_version < '3'"),
        Package::new("gamma", "1.0"),
        Package::new("old", "1.0"),
    ]);
    let inst = instance(&index, &["beta[fast]", "old; python_version < '3'"], "");
    inst.ok(&[]);
    assert_eq!(output(&inst, "pins"), "beta==2.0\ngamma==1.0");
    // Without the extra, gamma is not needed.
    assert_eq!(installed_pins(&index, &["beta"], ""), "beta==2.0");
}

#[test]
fn pins_and_allow_picked_versions() {
    let index = Index::serve(&alpha_beta());
    let pinned = instance(&index, &["beta"], "\n[versions]\nbeta = \"1.0\"\n");
    pinned.ok(&[]);
    assert_eq!(output(&pinned, "pins"), "beta==1.0");
    // A yanked version is installed only when pinned with ==.
    assert_eq!(installed_pins(&index, &["beta==3.0"], ""), "beta==3.0");
    let strict = instance(&index, &["alpha"], "\n[versions]\nalpha = \"1.0\"\n");
    strict.write(
        "buildout.toml",
        &strict.read("buildout.toml").replace(
            "[buildout]\n",
            "[buildout]\nallow-picked-versions = false\n",
        ),
    );
    let r = strict.fails(&[], 1);
    r.stderr_has("beta = 2.0");
    assert!(!r.stderr.contains("alpha = 1.0"), "{}", r.stderr);
}

#[test]
fn an_sdist_only_requirement_is_built_once() {
    let index = Index::serve(&[Package::new("delta", "1.0")
        .sdist_only()
        .module("delta/__init__.py", "D = 4\n")]);
    let inst = instance(&index, &["delta"], "");
    inst.ok(&[]);
    assert_eq!(output(&inst, "pins"), "delta==1.0");
    assert_eq!(
        python_with_paths(&inst, "import delta; print(delta.D)").trim(),
        "4"
    );
    // The built wheel is cached: another instance with the same cache does not rebuild.
    let built = entries(&inst.path("cache/built"));
    assert_eq!(built.len(), 1, "{built:?}");
}

#[test]
fn a_build_folder_a_killed_run_left_is_removed_by_the_next_build_in_its_bucket() {
    use sha2::Digest as _;
    let index = Index::serve(&[Package::new("delta", "1.0")
        .sdist_only()
        .module("delta/__init__.py", "D = 4\n")]);
    let sdist = entries(index.files_dir())
        .into_iter()
        .find(|f| f.ends_with(".tar.gz"))
        .expect("the index serves an sdist");
    let sha = sha2::Sha256::digest(std::fs::read(index.files_dir().join(&sdist)).unwrap());
    let bucket = format!("{:02x}", sha[0]);
    let inst = instance(&index, &["delta"], "");
    // What a run killed while pip was building leaves: an unlocked `.build-*` folder.
    let stale = inst.path(&format!("cache/built/{bucket}/.build-killed"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("delta-1.0-py3-none-any.whl"), b"half").unwrap();
    inst.ok(&[]);
    assert_eq!(output(&inst, "pins"), "delta==1.0");
    let left = entries(&inst.path(&format!("cache/built/{bucket}")));
    assert!(
        left.len() == 1 && !left[0].starts_with(".build-"),
        "{left:?}"
    );
}

#[test]
fn find_links_folders_work_offline() {
    let index = Index::serve(&alpha_beta());
    let inst = Instance::new(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"\"\n\
         find-links = \"{}\"\n\n[app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\n",
        index.files_dir().display()
    ));
    inst.ok(&["-o"]);
    // A folder cannot say a file is yanked: beta 3.0 is the newest there.
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==3.0");
    assert_eq!(index.requests(), Vec::<String>::new());
}

/// A member's new content from its name and content, `None` to keep it.
type Edit = dyn Fn(&str, &[u8]) -> Option<Vec<u8>>;

/// The wheel of `pkg` rebuilt member by member: `edit` returns a member's new content
/// (`None` keeps it); `link` adds a symlink member.
fn rewrite_wheel(pkg: &Package, edit: &Edit, link: Option<(&str, &str)>) -> Vec<u8> {
    use std::io::{Read, Write};
    let bytes = pkg.wheel_bytes();
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("wheel");
    let mut zout = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).expect("member");
        let name = f.name().to_owned();
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read member");
        let data = edit(&name, &data).unwrap_or(data);
        zout.start_file(name, opts).expect("start");
        zout.write_all(&data).expect("write");
    }
    if let Some((name, target)) = link {
        zout.add_symlink(name, target, opts).expect("symlink");
    }
    zout.finish().expect("finish").into_inner()
}

/// Replaces every occurrence of `from` with `to` (same length) in `bytes`.
fn patch(mut bytes: Vec<u8>, from: &str, to: &str, only_first: bool) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from.as_bytes() {
            bytes[i..i + from.len()].copy_from_slice(to.as_bytes());
            found += 1;
            if only_first {
                break;
            }
        }
        i += 1;
    }
    assert!(found > 0, "{from} not in the archive");
    bytes
}

fn tampered_is_refused(wheel: Vec<u8>, expect: &str) {
    let index = Index::serve(&[Package::new("tampered", "1.0").wheel_override(wheel)]);
    let inst = instance(&index, &["tampered"], "");
    let r = inst.fails(&[], 1);
    r.stderr_has("refused");
    assert!(
        r.stderr.contains(expect),
        "expected {expect:?} in: {}",
        r.stderr
    );
    assert_no_eggs(&inst);
}

fn tampered() -> Package {
    Package::new("tampered", "1.0")
        .module("tampered/__init__.py", "X = 1\n")
        .module("tampered/other.py", "Y = 2\n")
}

#[test]
fn a_file_that_does_not_match_record_is_refused() {
    let wheel = rewrite_wheel(
        &tampered(),
        &|name, _| (name == "tampered/other.py").then(|| b"Y = 666\n".to_vec()),
        None,
    );
    tampered_is_refused(wheel, "does not match its RECORD hash");
}

#[test]
fn a_link_member_is_refused() {
    let wheel = rewrite_wheel(
        &tampered(),
        &|_, _| None,
        Some(("tampered/link", "/etc/passwd")),
    );
    tampered_is_refused(wheel, "is a link");
}

#[test]
fn a_duplicate_member_is_refused() {
    // Both the local and the central name of `ab.py` become `aa.py`.
    let pkg = Package::new("tampered", "1.0")
        .module("tampered/aa.py", "A = 1\n")
        .module("tampered/ab.py", "B = 2\n");
    let wheel = patch(pkg.wheel_bytes(), "tampered/ab.py", "tampered/aa.py", false);
    tampered_is_refused(wheel, "appears twice");
}

#[test]
fn a_local_header_that_disagrees_with_the_central_directory_is_refused() {
    let wheel = patch(
        tampered().wheel_bytes(),
        "tampered/other.py",
        "tampered/evil!.py",
        true,
    );
    tampered_is_refused(wheel, "local header");
}

/// Every file under `dir` with its sha256 and mode, sorted: a tree manifest.
fn manifest(dir: &Path) -> Vec<String> {
    use sha2::Digest;
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).expect("meta");
            let rel = p.strip_prefix(dir).expect("inside").display().to_string();
            if meta.is_dir() {
                stack.push(p);
                out.push(format!("{rel}/"));
            } else {
                let data = std::fs::read(&p).expect("read");
                let sha = sha2::Sha256::digest(&data);
                let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
                out.push(format!(
                    "{rel} {:o} {hex}",
                    meta.permissions().mode() & 0o777
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn installs_from_the_same_lock_are_byte_identical() {
    let index = Index::serve(&alpha_beta());
    let first = instance(&index, &["alpha"], "");
    first.ok(&[]);
    let tree = manifest(&first.path("eggs"));
    assert!(tree.iter().any(|l| l.contains(".pyc ")), "{tree:?}");
    // Another instance elsewhere, from the same config and lock, with nothing shared.
    let second = instance(&index, &["alpha"], "");
    second.write("buildout.lock", &first.read("buildout.lock"));
    second.ok(&[]);
    assert_eq!(manifest(&second.path("eggs")), tree);
    assert_eq!(second.read("buildout.lock"), first.read("buildout.lock"));
    // The .pyc name their module by the path inside the egg; Python reports the real one.
    let file = python_with_paths(
        &second,
        "import alpha; print(alpha.main.__code__.co_filename)",
    );
    assert_eq!(
        file.trim(),
        second
            .path("eggs/alpha-1.0-py3-none-any/alpha/__init__.py")
            .display()
            .to_string()
    );
}

#[test]
fn instances_sharing_the_eggs_folder_install_at_the_same_time() {
    let index = Index::serve(&alpha_beta());
    let shared = tempfile::tempdir().expect("shared eggs");
    let a = instance(&index, &["alpha"], "");
    let b = instance(&index, &["alpha"], "");
    for inst in [&a, &b] {
        inst.write(
            "buildout.toml",
            &inst.read("buildout.toml").replace(
                "[buildout]\n",
                &format!(
                    "[buildout]\neggs-directory = \"{}\"\n",
                    shared.path().display()
                ),
            ),
        );
    }
    let ca = a.spawn(&[]);
    let cb = b.spawn(&[]);
    for (c, name) in [(ca, "a"), (cb, "b")] {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "instance {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        entries(shared.path()),
        vec!["alpha-1.0-py3-none-any", "beta-2.0-py3-none-any"]
    );
    assert_eq!(output(&a, "paths"), output(&b, "paths"));
    assert_eq!(
        python_with_paths(&b, "import alpha; print(alpha.X)").trim(),
        "1"
    );
}

/// [`config`] with the eggs folder `eggs` (shared by instances) and `buildout_extra` lines
/// in `[buildout]`.
fn shared_config(index: &Index, eggs: &Path, buildout_extra: &str, extra: &str) -> String {
    config(&index.url(), &["alpha"], extra).replace(
        "[buildout]\n",
        &format!(
            "[buildout]\neggs-directory = \"{}\"\n{buildout_extra}",
            eggs.display()
        ),
    )
}

#[test]
fn eggs_installed_without_pyc_are_compiled_in_place_by_an_instance_that_compiles() {
    let index = Index::serve(&alpha_beta());
    // What a compiling install writes, in an instance of its own.
    let reference = instance(&index, &["alpha"], "");
    reference.ok(&[]);
    let want = manifest(&reference.path("eggs"));
    assert!(want.iter().any(|l| l.contains(".pyc ")), "{want:?}");

    // A development instance: no .pyc, and each egg folder says so.
    let shared = tempfile::tempdir().expect("shared eggs");
    let dev = Instance::new(&shared_config(
        &index,
        shared.path(),
        "",
        "compile-bytecode = false\n",
    ));
    dev.ok(&[]);
    let tree = manifest(shared.path());
    assert!(!tree.iter().any(|l| l.contains(".pyc")), "{tree:?}");
    for egg in ["alpha-1.0-py3-none-any", "beta-2.0-py3-none-any"] {
        assert!(
            shared.path().join(egg).join(".rbuildout-no-pyc").is_file(),
            "{tree:?}"
        );
    }
    // The code runs without them (and Python may write its own .pyc meanwhile).
    assert_eq!(
        python_with_paths(&dev, "import alpha; print(alpha.X)").trim(),
        "1"
    );

    // A compiling instance sharing the eggs folder (resolving: it has no lock) compiles them
    // in place, to the very bytes of a compiling install, and removes the markers.
    let prod = Instance::new(&shared_config(&index, shared.path(), "", ""));
    prod.ok(&[]);
    assert_eq!(manifest(shared.path()), want);

    // The same through the no-op (a current lock, the eggs there), with `[buildout]`'s
    // option: false installs without .pyc, then true compiles them.
    let shared = tempfile::tempdir().expect("shared eggs");
    let inst = Instance::new(&shared_config(
        &index,
        shared.path(),
        "compile-bytecode = false\n",
        "",
    ));
    inst.ok(&[]);
    assert!(!manifest(shared.path()).iter().any(|l| l.contains(".pyc")));
    let requests = index.requests().len();
    inst.write(
        "buildout.toml",
        &shared_config(&index, shared.path(), "compile-bytecode = true\n", ""),
    );
    inst.ok(&[]);
    assert_eq!(manifest(shared.path()), want);
    assert_eq!(
        index.requests().len(),
        requests,
        "the no-op asked the index"
    );

    // Not a boolean: the option is named.
    inst.write(
        "buildout.toml",
        &shared_config(&index, shared.path(), "", "compile-bytecode = \"maybe\"\n"),
    );
    inst.fails(&[], 1)
        .stderr_has("option `compile-bytecode`: `maybe` is not a boolean");
}

/// The interpreter's best wheel tag (`cp311-cp311-manylinux_2_36_x86_64`).
fn best_tag() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "from pip._vendor.packaging import tags; print(next(iter(tags.sys_tags())))",
        ])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_wheel_for_the_interpreter_beats_a_pure_one() {
    let best = best_tag();
    let index = Index::serve(&[Package::new("fast", "1.0").wheel_tags(&[
        "py3-none-any",
        best.as_str(),
        "cp27-cp27mu-manylinux1_x86_64",
    ])]);
    let inst = instance(&index, &["fast"], "");
    inst.ok(&[]);
    assert!(
        output(&inst, "paths").ends_with(&format!("eggs/fast-1.0-{best}")),
        "{}",
        output(&inst, "paths")
    );
}

#[test]
fn the_lock_wins_over_a_newer_release_until_newest() {
    let old = Index::serve(&alpha_beta());
    let inst = instance(&old, &["beta"], "");
    inst.ok(&[]);
    assert_eq!(output(&inst, "pins"), "beta==2.0");
    // Another index with a newer beta: the lock still installs 2.0, asking nothing.
    let mut newer = alpha_beta();
    newer.push(Package::new("beta", "4.0"));
    let new = Index::serve(&newer);
    inst.write("buildout.toml", &config(&new.url(), &["beta"], ""));
    inst.ok(&[]);
    assert_eq!(output(&inst, "pins"), "beta==2.0");
    assert_eq!(new.requests(), Vec::<String>::new());
    // -n resolves again against the new index and rewrites the lock.
    inst.ok(&["-n"]);
    assert_eq!(output(&inst, "pins"), "beta==4.0");
    assert!(
        inst.read("buildout.lock")
            .contains("beta-4.0-py3-none-any.whl")
    );
}

/// A CONNECT proxy on 127.0.0.1 that tunnels to the requested host and records the targets.
struct Proxy {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn start_proxy() -> Proxy {
    use std::io::Write;
    use std::net::TcpStream;
    let (port, seen) = serve_http("proxy", |line, _headers, mut reader, client, log| {
        let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        log.lock().expect("log").push(line.trim().to_owned());
        let Ok(upstream) = TcpStream::connect(&target) else {
            return;
        };
        let mut client = client;
        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let mut up_read = upstream.try_clone().expect("clone");
        let mut client_write = client.try_clone().expect("clone");
        let t = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_read, &mut client_write);
            let _ = client_write.shutdown(std::net::Shutdown::Write);
        });
        let mut upstream = upstream;
        let _ = std::io::copy(&mut reader, &mut upstream);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
        let _ = t.join();
    });
    Proxy { port, seen }
}

/// A server on 127.0.0.1 (`what` names it in panics) that reads each connection's request
/// line and headers on a thread of its own and hands them to `handle`; returns its port
/// and the log `handle` writes to.
fn serve_http(
    what: &str,
    handle: impl Fn(
        &str,
        &[String],
        std::io::BufReader<std::net::TcpStream>,
        std::net::TcpStream,
        &std::sync::Mutex<Vec<String>>,
    ) + Send
    + Sync
    + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader};
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {what}: {e}"));
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let handle = std::sync::Arc::new(handle);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (log, handle) = (log.clone(), handle.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    headers.push(h.trim().to_owned());
                }
                handle(&line, &headers, reader, client, &log);
            });
        }
    });
    (port, seen)
}

#[test]
fn proxies_come_from_the_environment() {
    let index = Index::serve(&alpha_beta());
    let proxy = start_proxy();
    let inst = instance(&index, &["alpha"], "");
    let out = inst
        .command(&[])
        .env("HTTP_PROXY", format!("http://127.0.0.1:{}", proxy.port))
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = proxy.seen.lock().expect("seen").clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("CONNECT 127.0.0.1:{}", index.port()))),
        "{seen:?}"
    );
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==2.0");
}

#[test]
fn requires_python_and_prereleases_limit_the_choice() {
    let index = Index::serve(&[
        Package::new("beta", "2.0"),
        Package::new("beta", "3.0").requires_python(">=4"),
        Package::new("beta", "3.1rc1"),
    ]);
    assert_eq!(installed_pins(&index, &["beta"], ""), "beta==2.0");
    let pre = instance(&index, &["beta"], "prereleases = \"true\"\n");
    pre.ok(&[]);
    assert_eq!(output(&pre, "pins"), "beta==3.1rc1");
    // Asking for a pre-release by name is enough.
    assert_eq!(
        installed_pins(&index, &["beta>=3.1rc1"], ""),
        "beta==3.1rc1"
    );
}

/// A static PEP 503 index of `pkg` served over HTTPS (see [`TlsServer`]).
fn tls_index(pkg: &Package) -> TlsServer {
    use sha2::Digest;
    TlsServer::start(
        |root| {
            let wheel = pkg.wheel_bytes();
            let name = pkg.wheel_filename();
            std::fs::create_dir_all(root.join("files")).expect("files");
            std::fs::write(root.join("files").join(&name), &wheel).expect("wheel");
            let project = root.join("simple").join(pkg.normalized_name());
            std::fs::create_dir_all(&project).expect("project");
            let sha: String = sha2::Sha256::digest(&wheel)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(
                project.join("index.html"),
                format!(
                    "<html><body><a href=\"../../files/{name}#sha256={sha}\">{name}</a></body></html>\n"
                ),
            )
            .expect("page");
        },
        "",
    )
}

#[test]
fn tls_trusts_ssl_cert_file_and_refuses_unknown_authorities() {
    let pkg = Package::new("solo", "1.0").module("solo/__init__.py", "S = 5\n");
    let server = tls_index(&pkg);
    let url = format!("https://127.0.0.1:{}/simple/", server.port);
    let trusted = Instance::new(&config(&url, &["solo"], ""));
    let out = trusted
        .command(&[])
        .env("SSL_CERT_FILE", server.ca())
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        python_with_paths(&trusted, "import solo; print(solo.S)").trim(),
        "5"
    );
    // The system store does not know this CA.
    let untrusted = Instance::new(&config(&url, &["solo"], ""));
    let out = untrusted
        .command(&[])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}

#[test]
fn parts_running_together_share_one_lock_and_extras_apply_to_every_egg() {
    let index = Index::serve(&[
        Package::new("beta", "2.0").extra("fast", &["gamma"]),
        Package::new("gamma", "1.0"),
        Package::new("solo", "1.0"),
    ]);
    let inst = Instance::new(&format!(
        "[buildout]\nparts = [\"one\", \"two\"]\njobs = 2\ndownload-cache = \"cache\"\n\
         index = \"{}\"\n\n[one]\nrecipe = \"egg\"\neggs = [\"beta\"]\nextras = \"fast\"\n\n\
         [two]\nrecipe = \"egg\"\neggs = [\"solo\"]\n",
        index.url()
    ));
    inst.ok(&[]);
    let lock: toml::Table = inst.read("buildout.lock").parse().expect("lock");
    let names = |part: &str| -> Vec<String> {
        lock["parts"][part]["dist"]
            .as_array()
            .expect("dists")
            .iter()
            .map(|d| d["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(names("one"), vec!["beta", "gamma"]);
    assert_eq!(names("two"), vec!["solo"]);
    assert_eq!(
        lock["parts"]["one"]["requirements"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(inst.read("buildout.lock").contains("beta[fast]"));
}

#[test]
fn the_lock_is_named_after_the_config_and_python_can_be_a_path() {
    let index = Index::serve(&alpha_beta());
    let inst = instance(&index, &["beta"], "");
    let python = String::from_utf8(
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3")
            .stdout,
    )
    .expect("utf-8");
    let config = inst.read("buildout.toml").replace(
        "[app]\n",
        &format!("[app]\npython = \"{}\"\n", python.trim()),
    );
    inst.write("release.toml", &config);
    std::fs::remove_file(inst.path("buildout.toml")).expect("remove buildout.toml");
    inst.ok(&["-c", "release.toml"]);
    assert!(inst.exists("release.lock"));
    assert!(!inst.exists("buildout.lock"));
    assert_eq!(output(&inst, "pins"), "beta==2.0");
    // A python that does not exist is named.
    inst.write(
        "release.toml",
        &config.replace(python.trim(), "bin/nopython"),
    );
    let r = inst.fails(&["-c", "release.toml"], 1);
    r.stderr_has("bin/nopython does not exist");
}

#[test]
fn find_links_pages_are_read_over_http() {
    let index = Index::serve(&alpha_beta());
    // `index = ""` in the part: no index, although [buildout] names one.
    let inst = Instance::new(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{0}\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\nindex = \"\"\n\
         find-links = [\"{0}alpha/\", \"{0}beta/\"]\n",
        index.url()
    ));
    inst.ok(&[]);
    // The HTML pages mark 3.0 yanked.
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==2.0");
    let reqs = index.requests();
    assert!(reqs.iter().any(|r| r == "/simple/beta/"), "{reqs:?}");
    // Only the two pages and the files: no index lookup of alpha's dependency by name.
    assert_eq!(
        reqs.iter().filter(|r| r.starts_with("/simple/")).count(),
        2,
        "{reqs:?}"
    );
}

#[test]
fn an_entry_point_name_with_a_separator_is_refused() {
    let index = Index::serve(&[Package::new("evil", "1.0")
        .module("evil/__init__.py", "def main():\n    pass\n")
        .entry_point("console_scripts", "../../bin/evil", "evil:main")]);
    let inst = instance(&index, &["evil"], "");
    let r = inst.fails(&[], 1);
    r.stderr_has("entry point name");
    assert_no_eggs(&inst);
}

#[test]
fn pip_index_url_is_the_default_index() {
    let index = Index::serve(&alpha_beta());
    let inst = Instance::new(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [\"beta\"]\n",
    );
    let out = inst
        .command(&[])
        .env("PIP_INDEX_URL", index.url())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(output(&inst, "pins"), "beta==2.0");
    assert!(simple_requests(&index).iter().any(|r| r == "/simple/beta/"));
}

#[test]
fn temp_folders_of_killed_runs_are_swept() {
    let index = Index::serve(&alpha_beta());
    let inst = instance(&index, &["beta"], "");
    inst.write("eggs/.tmp-killed/beta/__init__.py", "");
    inst.write("eggs/.tmp-running/beta/__init__.py", "");
    // A live run holds its temp folder flocked: that one stays, however old; the other
    // goes, however recent.
    let running = std::fs::File::open(inst.path("eggs/.tmp-running")).expect("open");
    running.lock().expect("flock");
    let touched = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(inst.path("eggs/.tmp-running"))
        .status()
        .expect("touch");
    assert!(touched.success());
    inst.ok(&[]);
    assert_eq!(
        entries(&inst.path("eggs")),
        vec![".tmp-running", "beta-2.0-py3-none-any"]
    );
}

/// A front for `index` on 127.0.0.1 that adds PyPI's page caching headers
/// (`Cache-Control: max-age=<max_age>` and `ETag: "v1"`) and answers `If-None-Match: "v1"`
/// with `304` itself. Records each request line with its `If-None-Match` value.
struct CachingFront {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn caching_front(index: &Index, max_age: u32) -> CachingFront {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let upstream_port = index.port();
    let (port, seen) = serve_http("front", move |line, headers, _reader, client, log| {
        let inm = headers
            .iter()
            .find_map(|h| {
                h.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("if-none-match"))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default();
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        log.lock()
            .expect("log")
            .push(format!("{path} if-none-match={inm}"));
        let caching = format!("Cache-Control: max-age={max_age}, public\r\nETag: \"v1\"\r\n");
        let mut client = client;
        if inm == "\"v1\"" {
            let _ = client.write_all(
                format!("HTTP/1.1 304 Not Modified\r\n{caching}Content-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            return;
        }
        let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
            return;
        };
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for h in headers {
            if h.to_ascii_lowercase().starts_with("accept:") {
                request.push_str(&format!("{h}\r\n"));
            }
        }
        request.push_str("Connection: close\r\n\r\n");
        let _ = up.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let _ = up.read_to_end(&mut answer);
        // The caching headers go right after the status line.
        let Some(eol) = answer.windows(2).position(|w| w == b"\r\n") else {
            return;
        };
        let mut out = answer[..eol + 2].to_vec();
        out.extend_from_slice(caching.as_bytes());
        out.extend_from_slice(&answer[eol + 2..]);
        let _ = client.write_all(&out);
    });
    CachingFront {
        url: format!("http://127.0.0.1:{port}/simple/"),
        seen,
    }
}

impl CachingFront {
    /// The `/simple/` requests seen since the last call.
    fn take_pages(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().expect("seen"))
            .into_iter()
            .filter(|r| r.starts_with("/simple/"))
            .collect()
    }
}

/// `alpha_beta` behind a caching front whose pages have `max_age`, and the config of an
/// instance installing `alpha` from it, with a download cache that every instance made from
/// that config shares (in the returned folder).
fn alpha_behind_caching_front(max_age: u32) -> (Index, CachingFront, tempfile::TempDir, String) {
    let index = Index::serve(&alpha_beta());
    let front = caching_front(&index, max_age);
    let shared = tempfile::tempdir().expect("tempdir");
    let cache = shared.path().join("cache").display().to_string();
    let cfg = format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"{cache}\"\nindex = \"{}\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\n",
        front.url
    );
    (index, front, shared, cfg)
}

#[test]
fn index_pages_are_reused_within_max_age_and_revalidated_with_newest() {
    let (_index, front, _shared, cfg) = alpha_behind_caching_front(600);
    let first = Instance::new(&cfg);
    first.ok(&[]);
    let pages = front.take_pages();
    assert!(
        pages.contains(&"/simple/alpha/ if-none-match=".to_owned())
            && pages.contains(&"/simple/beta/ if-none-match=".to_owned()),
        "{pages:?}"
    );
    // A second instance, no lock, the same download cache: the pages are fresh (max-age
    // 600), so resolving asks nothing, and it resolves the same.
    let second = Instance::new(&cfg);
    second.ok(&[]);
    assert_eq!(front.take_pages(), Vec::<String>::new());
    assert_eq!(output(&second, "pins"), "alpha==1.0\nbeta==2.0");
    // -n asks again, revalidating with the ETag; the 304 keeps the cached page.
    let third = Instance::new(&cfg);
    third.ok(&["-n"]);
    let pages = front.take_pages();
    assert!(
        pages.contains(&"/simple/alpha/ if-none-match=\"v1\"".to_owned()),
        "{pages:?}"
    );
    assert_eq!(output(&third, "pins"), "alpha==1.0\nbeta==2.0");
}

#[test]
fn stale_index_pages_are_revalidated() {
    // max-age=0: stored, but never fresh.
    let (_index, front, _shared, cfg) = alpha_behind_caching_front(0);
    Instance::new(&cfg).ok(&[]);
    front.take_pages();
    let second = Instance::new(&cfg);
    second.ok(&[]);
    let pages = front.take_pages();
    assert!(
        pages.contains(&"/simple/alpha/ if-none-match=\"v1\"".to_owned())
            && pages.contains(&"/simple/beta/ if-none-match=\"v1\"".to_owned()),
        "{pages:?}"
    );
    assert_eq!(output(&second, "pins"), "alpha==1.0\nbeta==2.0");
}

#[test]
fn a_version_the_resolver_abandons_is_not_moved_in() {
    // alpha 2.0 is tried first (its wheel is fetched and unpacked while resolving goes on,
    // when a worker gets to it in time), but needs a beta that does not exist: the resolver
    // falls back to alpha 1.0.
    let index = Index::serve(&[
        Package::new("alpha", "1.0")
            .requires("beta")
            .module("alpha/__init__.py", "X = 1\n"),
        Package::new("alpha", "2.0")
            .requires("beta<1")
            .module("alpha/__init__.py", "X = 2\n"),
        Package::new("beta", "1.0"),
    ]);
    let inst = instance(&index, &["alpha"], "");
    inst.ok(&[]);
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==1.0");
    // Only what the lock names is in the eggs folder; no temp folder is left.
    assert_eq!(
        entries(&inst.path("eggs")),
        vec!["alpha-1.0-py3-none-any", "beta-1.0-py3-none-any"]
    );
    assert_eq!(
        python_with_paths(&inst, "import alpha; print(alpha.X)").trim(),
        "1"
    );
}

#[test]
fn redirects_are_followed_and_links_resolved_against_the_final_page() {
    let index = Index::serve(&alpha_beta());
    // `/simple/Alpha` and `/simple/BETA` are redirected (301) to the normalised pages, whose
    // links are relative to them.
    let inst = Instance::new(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\nindex = \"\"\n\
         find-links = [\"{0}Alpha\", \"{0}BETA\"]\n",
        index.url()
    ));
    inst.ok(&[]);
    assert_eq!(output(&inst, "pins"), "alpha==1.0\nbeta==2.0");
    let reqs = index.requests();
    for r in [
        "/simple/Alpha",
        "/simple/alpha/",
        "/simple/BETA",
        "/simple/beta/",
    ] {
        assert!(reqs.iter().any(|q| q == r), "{r} not in {reqs:?}");
    }
}

/// `app`, requiring four others; each has two modules.
fn five() -> Vec<Package> {
    let names = ["app", "one", "two", "three", "four"];
    names
        .iter()
        .map(|n| {
            let mut p = Package::new(n, "1.0")
                .module(&format!("{n}/__init__.py"), "X = 1\n")
                .module(&format!("{n}/more.py"), "Y = 2\n");
            if *n == "app" {
                for d in &names[1..] {
                    p = p.requires(d);
                }
            }
            p
        })
        .collect()
}

/// The files under `dir` whose name ends with `suffix`, and their total size.
fn files_ending(dir: &Path, suffix: &str) -> (usize, u64) {
    let mut found = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.0 += 1;
                found.1 += e.metadata().unwrap().len();
            }
        }
    }
    found
}

#[test]
fn a_terminal_shows_bars_counting_distributions_bytes_then_compiled_files() {
    let index = Index::serve(&five());
    let inst = instance(&index, &["app"], "");
    let mut command = inst.command(&[]);
    command.env_remove("NO_COLOR");
    let (code, screen) = rbuildout_tests::in_terminal(command);
    assert_eq!(code, 0, "{screen}");
    // What was really fetched and compiled: the bars' last counts.
    let (wheels, bytes) = files_ending(&inst.path("cache"), ".whl");
    let (compiled, _) = files_ending(&inst.path("eggs"), ".pyc");
    assert_eq!((wheels, compiled), (5, 10));
    let size = format!("{:.1} KiB", bytes as f64 / 1024.0);
    let fetched = format!("] 5/5 distributions, {size}/{size} ");
    let at = |text: &str| {
        screen
            .find(text)
            .unwrap_or_else(|| panic!("the terminal lacks {text:?}:\n{screen:?}"))
    };
    // Every count is of the 5 to install, and only grows.
    let counts: Vec<(u32, u32)> = regex::Regex::new(r"\] (\d+)/(\d+) distributions")
        .unwrap()
        .captures_iter(&screen)
        .map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap()))
        .collect();
    assert!(counts.iter().all(|&(_, total)| total == 5), "{counts:?}");
    assert!(counts.windows(2).all(|w| w[0].0 <= w[1].0), "{counts:?}");
    assert_eq!(counts.last(), Some(&(5, 5)));
    assert!(at(&fetched) < at("] 10/10 files compiled"), "{screen:?}");
    // In colour, under the part's line; taken off before the summary.
    assert!(at("\x1b[1;32m  Installing\x1b[0m app\r\n\x1b[1;36m         app\x1b[0m [") == 0);
    at("10/10 files compiled\r\x1b[J\x1b[1;32m    Finished\x1b[0m 1 installed");

    // NO_COLOR: the same bars, no colour.
    let inst = instance(&index, &["app"], "");
    let (code, screen) = rbuildout_tests::in_terminal(inst.command(&[]));
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("         app [=========================] 10/10 files compiled\r\x1b[J"),
        "{screen:?}"
    );
    assert!(
        !screen.contains("\x1b[1;"),
        "colour despite NO_COLOR: {screen:?}"
    );

    // `-q` and `-v` on a terminal: no bars (`-v` prints tracing's lines instead).
    for flag in ["-q", "-v"] {
        let inst = instance(&index, &["app"], "");
        let (code, screen) = rbuildout_tests::in_terminal(inst.command(&[flag]));
        assert_eq!(code, 0, "{screen}");
        assert!(!screen.contains("distributions"), "{flag}: {screen:?}");
        assert!(!screen.contains("\x1b[J"), "{flag}: {screen:?}");
    }

    // Piped, as in CI logs: the plain lines only.
    let inst = instance(&index, &["app"], "");
    let run = inst.ok(&[]);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert_eq!(lines[0], "  Installing app");
    assert!(
        lines[1].starts_with("    Finished 1 installed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
}

#[test]
fn parts_running_at_once_have_a_bar_each() {
    let mut packages = five();
    packages.push(Package::new("solo", "1.0").module("solo/__init__.py", "Z = 3\n"));
    let index = Index::serve(&packages);
    let inst = Instance::new(&format!(
        "[buildout]\nparts = [\"a\", \"b\"]\ndownload-cache = \"cache\"\nindex = \"{}\"\n\n\
         [a]\nrecipe = \"egg\"\neggs = [\"app\"]\n\n[b]\nrecipe = \"egg\"\neggs = [\"solo\"]\n",
        index.url()
    ));
    let (code, screen) = rbuildout_tests::in_terminal(inst.command(&["-j", "2"]));
    assert_eq!(code, 0, "{screen}");
    for bar in [
        "           a [=========================] 5/5 distributions",
        "           a [=========================] 10/10 files compiled",
        "           b [=========================] 1/1 distributions",
        "           b [=========================] 1/1 files compiled",
    ] {
        assert!(
            screen.contains(bar),
            "the terminal lacks {bar:?}:\n{screen:?}"
        );
    }
    // Every bar is gone before the summary.
    let summary = screen.find("    Finished").unwrap();
    assert!(screen[..summary].ends_with("\r\x1b[J"), "{screen:?}");
}
