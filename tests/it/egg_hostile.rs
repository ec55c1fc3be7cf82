//! The `egg` recipe against a hostile or broken index: credentials that must not leak,
//! links and redirects that must not be followed, lying metadata, zip bombs, endless and
//! silent servers, and runs killed in the middle of an install. Every attack runs the real
//! binary with its memory (`ulimit -v`) and its time bounded.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rbuildout_tests::pyindex::{Index, Package};
use rbuildout_tests::tls::TlsServer;
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
    let (run, took, _) = measured(inst, args, env, limit);
    (run, took)
}

/// [`bounded`], also returning the run's peak resident memory in KiB when `/usr/bin/time`
/// is there to measure it.
fn measured(
    inst: &Instance,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> (Run, Duration, Option<u64>) {
    let probe = inst.command(args);
    let rss_file = inst.path(".maxrss");
    let _ = std::fs::remove_file(&rss_file);
    let time = Path::new("/usr/bin/time");
    let script = if time.exists() {
        format!(
            "ulimit -v {MEMORY_KB}; exec {} -o {} -f %M \"$0\" \"$@\"",
            time.display(),
            rss_file.display()
        )
    } else {
        format!("ulimit -v {MEMORY_KB}; exec \"$0\" \"$@\"")
    };
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(script)
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
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
    (run, took, rss)
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
fn pip_building_an_sdist_gets_the_password_in_its_environment_never_its_command_line() {
    let index = Index::serve(&[Package::new("delta", "1.0")
        .sdist_only()
        .module("delta/__init__.py", "D = 4\n")]);
    index.require_auth("me", PASSWORD);
    let url = with_userinfo(&index, "me", PASSWORD);
    let probe = Instance::new("");
    // The interpreter, wrapped: every start logs its command line (visible to `ps`) and the
    // index pip is given through its environment.
    let log = probe.path("python.log");
    let wrapper = probe.path("python-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf 'argv: %s\\n' \"$*\" >> '{log}'\n\
             printf 'env: %s\\n' \"${{PIP_INDEX_URL:-}}\" >> '{log}'\nexec python3 \"$@\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let inst = instance(
        &url,
        &["delta"],
        &format!("python = \"{}\"\n", wrapper.display()),
    );
    let (run, _) = bounded(&inst, &["-v"], &[], Duration::from_secs(120));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = std::fs::read_to_string(&log).unwrap();
    let pip: Vec<&str> = log.lines().filter(|l| l.contains("pip wheel")).collect();
    assert!(!pip.is_empty(), "pip built the sdist: {log}");
    for line in log.lines().filter(|l| l.starts_with("argv: ")) {
        assert!(
            !line.contains(PASSWORD),
            "a command line names the password: {line}"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.starts_with("env: ") && l.contains(PASSWORD)),
        "pip gets the index with its credentials: {log}"
    );
    assert_nowhere(
        PASSWORD,
        &[inst.path("buildout.lock"), inst.path("cache")],
        &run,
    );
}

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
    // A lock an older rbuildout wrote, with the credentials in its URLs, loses them in the
    // next run, even one with nothing to do.
    inst.write(
        "buildout.lock",
        &lock.replace(
            &index.base_url(),
            &with_userinfo(&index, "me", PASSWORD).replace("/simple/", ""),
        ),
    );
    assert!(inst.read("buildout.lock").contains(PASSWORD));
    let (run, _) = bounded(&inst, &[], &[], limit);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(inst.read("buildout.lock"), lock);
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
    run.stderr_has("nosuchthing");
    assert!(run.stderr.contains(&index.base_url()), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    // find-links pages behind the same credentials.
    let links = Instance::new(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\nfind-links = [\"{url}alpha/\", \"{url}beta/\"]\n"
    ));
    let (run, _) = bounded(&links, &["-vv"], &[], limit);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_nowhere(
        PASSWORD,
        &[
            links.path("buildout.lock"),
            links.path("cache"),
            links.path("eggs"),
        ],
        &run,
    );
    // Wrong credentials: the 401 is named, without them.
    let wrong = instance(
        &with_userinfo(&index, "me", "wrong-pw-0815"),
        &["alpha"],
        "",
    );
    let (run, _) = bounded(&wrong, &[], &[], limit);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("HTTP 401");
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

/// A zip written by hand (the zip crate cannot write a member it did not deflate itself):
/// stored members, and one deflated member given as its raw stream and declared size.
struct HandZip {
    bytes: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

impl HandZip {
    fn new() -> HandZip {
        HandZip {
            bytes: Vec::new(),
            central: Vec::new(),
            count: 0,
        }
    }

    /// Adds `name`: `data` as written (method 0 stored, 8 deflated), `size` bytes once
    /// inflated, with the CRC-32 `crc`.
    fn add(&mut self, name: &str, method: u16, data: &[u8], size: u32, crc: u32) {
        let offset = u32::try_from(self.bytes.len()).expect("a small zip");
        let compressed = u32::try_from(data.len()).expect("a small member");
        let name_len = u16::try_from(name.len()).expect("a short name");
        let common = |out: &mut Vec<u8>| {
            out.extend_from_slice(&20u16.to_le_bytes()); // version needed
            out.extend_from_slice(&0u16.to_le_bytes()); // flags
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // time
            out.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&compressed.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        self.bytes.extend_from_slice(b"PK\x03\x04");
        common(&mut self.bytes);
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(data);
        self.central.extend_from_slice(b"PK\x01\x02");
        self.central.extend_from_slice(&0x031eu16.to_le_bytes()); // made by: Unix
        common(&mut self.central);
        self.central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.central.extend_from_slice(&0u16.to_le_bytes()); // disk
        self.central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        self.central
            .extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // external: a file
        self.central.extend_from_slice(&offset.to_le_bytes());
        self.central.extend_from_slice(name.as_bytes());
        self.count += 1;
    }

    fn stored(&mut self, name: &str, data: &[u8]) {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let size = u32::try_from(data.len()).expect("a small member");
        self.add(name, 0, data, size, crc.sum());
    }

    fn finish(mut self) -> Vec<u8> {
        let cd_offset = u32::try_from(self.bytes.len()).expect("a small zip");
        let cd_size = u32::try_from(self.central.len()).expect("a small directory");
        self.bytes.extend_from_slice(&self.central);
        self.bytes.extend_from_slice(b"PK\x05\x06");
        self.bytes.extend_from_slice(&[0; 4]); // disk numbers
        self.bytes.extend_from_slice(&self.count.to_le_bytes());
        self.bytes.extend_from_slice(&self.count.to_le_bytes());
        self.bytes.extend_from_slice(&cd_size.to_le_bytes());
        self.bytes.extend_from_slice(&cd_offset.to_le_bytes());
        self.bytes.extend_from_slice(&0u16.to_le_bytes());
        self.bytes
    }
}

/// A raw deflate stream of `mib` MiB of zeros, about a thousandth of that: 1 MiB of zeros
/// is deflated once with a full flush (which resets the compressor, so every further MiB
/// deflates to the same bytes) and the result repeated.
fn deflated_zeros(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let chunk = |c: &mut Compress, input: &[u8], flush| {
        let mut out = Vec::with_capacity(256 << 10);
        let before = c.total_in();
        c.compress_vec(input, &mut out, flush).expect("deflate");
        assert_eq!(c.total_in() - before, input.len() as u64, "all input taken");
        out
    };
    let first = chunk(&mut c, &zeros, FlushCompress::Full);
    let next = chunk(&mut c, &zeros, FlushCompress::Full);
    let mut stream = first;
    for _ in 1..mib {
        stream.extend_from_slice(&next);
    }
    stream.extend(chunk(&mut c, &[], FlushCompress::Finish));
    stream
}

/// A wheel of `bomb` 1.0 whose `bomb/zeros.bin` inflates to 2 GiB of zeros from about
/// 2 MB; RECORD lists it (with a hash it cannot match: it must be refused long before).
fn bomb_wheel() -> Vec<u8> {
    use sha2::Digest;
    let mut zip = HandZip::new();
    let stream = deflated_zeros(2048);
    assert!(stream.len() < 4 << 20, "{} bytes", stream.len());
    zip.add("bomb/zeros.bin", 8, &stream, 2048 << 20, 0);
    let info = "bomb-1.0.dist-info";
    let members = [
        ("bomb/__init__.py".to_owned(), b"B = 1\n".to_vec()),
        (
            format!("{info}/METADATA"),
            b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\n".to_vec(),
        ),
        (
            format!("{info}/WHEEL"),
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
        ),
    ];
    let mut record = String::from("bomb/zeros.bin,sha256=AAAA,2147483648\n");
    for (name, data) in &members {
        let h = rbuildout_tests::pyindex::urlsafe_b64_nopad(&sha2::Sha256::digest(data));
        record.push_str(&format!("{name},sha256={h},{}\n", data.len()));
        zip.stored(name, data);
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    zip.stored(&format!("{info}/RECORD"), record.as_bytes());
    zip.finish()
}

#[test]
fn a_zip_bomb_is_refused_in_bounded_memory() {
    let wheel = bomb_wheel();
    let index = Index::serve(&[Package::new("bomb", "1.0").wheel_override(wheel)]);
    let inst = instance(&index.url(), &["bomb"], "");
    let (run, took, rss) = measured(&inst, &[], &[], Duration::from_secs(60));
    if let Some(kib) = rss {
        assert!(kib < 100 * 1024, "peak RSS {kib} KiB");
    }
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("bomb/zeros.bin");
    run.stderr_has("RBUILDOUT_MAX_ZIP_RATIO");
    let mut messages = format!("== ratio\n{}\n", crate::snap::messages(&run.stderr));
    assert!(took < Duration::from_secs(30), "{took:?}");
    let eggs: Vec<_> = std::fs::read_dir(inst.path("eggs"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(eggs.is_empty(), "{eggs:?}");
    // A higher ratio allowed: the total size limit still holds.
    let (run, _) = bounded(
        &inst,
        &[],
        &[
            ("RBUILDOUT_MAX_ZIP_RATIO", "100000"),
            ("RBUILDOUT_MAX_UNPACKED_SIZE", "1G"),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("RBUILDOUT_MAX_UNPACKED_SIZE");
    messages.push_str(&format!(
        "== size\n{}\n",
        crate::snap::messages(&run.stderr)
    ));
    crate::snapshot!("zip_bomb", Some(inst.dir()), messages);
}

#[test]
fn a_wheel_whose_metadata_names_another_project_or_version_is_refused() {
    // Through the index (PEP 658 metadata), a find-links folder (the wheel's METADATA),
    // and installing from a lock (the unpacked METADATA).
    let liars = [
        Package::new("alpha", "1.0").metadata_says("beta", "1.0"),
        Package::new("alpha", "1.0").metadata_says("alpha", "6.6.6"),
    ];
    let mut messages = String::new();
    for liar in liars {
        let index = Index::serve(std::slice::from_ref(&liar));
        let inst = instance(&index.url(), &["alpha"], "");
        let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(60));
        assert_eq!(run.code, 1, "{}", run.stderr);
        run.stderr_has("METADATA says");
        run.stderr_has("the file name says alpha 1.0");
        messages.push_str(&format!(
            "== index\n{}\n",
            crate::snap::messages(&run.stderr)
        ));
        let links = Instance::new(&format!(
            "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"\"\n\n\
             [app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\nfind-links = [{:?}]\n",
            index.files_dir().display().to_string()
        ));
        let (run, _) = bounded(&links, &[], &[], Duration::from_secs(60));
        assert_eq!(run.code, 1, "{}", run.stderr);
        run.stderr_has("METADATA says");
        messages.push_str(&format!(
            "== find-links\n{}\n",
            crate::snap::messages(&run.stderr)
        ));
    }
    crate::snapshot!("lying_metadata", None, messages);
    // A lock made against an honest index, installed from a lying one.
    let honest = Index::serve(&[Package::new("alpha", "1.0")]);
    let inst = instance(&honest.url(), &["alpha"], "");
    let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lock = inst.read("buildout.lock");
    let liar = Package::new("alpha", "1.0").metadata_says("beta", "1.0");
    let lying = Index::serve(std::slice::from_ref(&liar));
    let honest_sha = rbuildout_tests::pyindex::hex(&{
        use sha2::Digest;
        sha2::Sha256::digest(Package::new("alpha", "1.0").wheel_bytes())
    });
    let lying_sha = rbuildout_tests::pyindex::hex(&{
        use sha2::Digest;
        sha2::Sha256::digest(liar.wheel_bytes())
    });
    inst.write(
        "buildout.lock",
        &lock
            .replace(&honest.base_url(), &lying.base_url())
            .replace(&honest_sha, &lying_sha),
    );
    std::fs::remove_dir_all(inst.path("eggs")).expect("remove eggs");
    std::fs::remove_dir_all(inst.path("cache")).expect("remove cache");
    let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("METADATA says beta 1.0");
}

/// The `.tmp-*` entries of `dir`.
fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_run_killed_mid_install_leaves_no_temp_folder_after_the_next() {
    let packages = [
        Package::new("alpha", "1.0")
            .requires("beta>=2")
            .module("alpha/__init__.py", "import beta\nA = beta.B + 1\n"),
        Package::new("beta", "2.0").module("beta/__init__.py", "B = 41\n"),
    ];
    let index = Index::serve(&packages);
    // beta's download waits, so alpha sits unpacked in its temp folder.
    index.stall_file(Some(&packages[1].wheel_filename()));
    let inst = instance(&index.url(), &["alpha"], "");
    // Another live run's temp folder (locked, as rbuildout locks its own): never touched.
    std::fs::create_dir_all(inst.path("eggs/.tmp-live")).expect("mkdir");
    let live = std::fs::File::open(inst.path("eggs/.tmp-live")).expect("open");
    live.lock().expect("flock");
    let mut child = inst
        .command(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while temps(&inst.path("eggs")).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no temp folder appeared: {:?}",
            temps(&inst.path("eggs"))
        );
        assert!(child.try_wait().expect("wait").is_none(), "the run ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert!(temps(&inst.path("eggs")).len() >= 2);
    index.stall_file(None);
    let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(120));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(temps(&inst.path("eggs")), vec![".tmp-live".to_owned()]);
    let state = inst.state();
    let paths = state["parts"]["app"]["outputs"]["paths"]
        .as_str()
        .expect("paths")
        .to_owned();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys\nsys.path[0:0] = {:?}\nimport alpha\nprint(alpha.A)",
            paths.lines().collect::<Vec<_>>()
        ))
        .env_remove("PYTHONPATH")
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // And a run with nothing to install sweeps too.
    drop(live);
    let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(temps(&inst.path("eggs")).is_empty());
}

/// A server on 127.0.0.1 answering every connection with `answer` (given the request's
/// head) for at most a minute; returns its base URL. The accepting thread lives as long as
/// the test binary, idle.
fn serve(answer: fn(&mut std::net::TcpStream, &str)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_write_timeout(Some(Duration::from_secs(60)));
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                answer(&mut stream, &String::from_utf8_lossy(&head));
            });
        }
    });
    format!("http://{addr}")
}

/// Writes `chunk` again and again for at most a minute (until the client goes away).
fn endless(stream: &mut std::net::TcpStream, chunk: &[u8]) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if stream.write_all(chunk).is_err() {
            return;
        }
    }
}

fn endless_page(stream: &mut std::net::TcpStream, _: &str) {
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>",
    );
    endless(stream, &b"<a href=\"x\">x</a>\n".repeat(4096));
}

fn endless_chunked_page(stream: &mut std::net::TcpStream, _: &str) {
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pypi.simple.v1+json\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    );
    let body = b"[".repeat(65536);
    let mut chunk = format!("{:x}\r\n", body.len()).into_bytes();
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(b"\r\n");
    endless(stream, &chunk);
}

/// Accepts and says nothing for a minute.
fn silent(stream: &mut std::net::TcpStream, _: &str) {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    while start.elapsed() < Duration::from_secs(60) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Sends the headers and a little of the body, then nothing for a minute.
fn stalls_in_the_body(stream: &mut std::net::TcpStream, head: &str) {
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html>",
    );
    silent(stream, head);
}

#[test]
fn an_endless_page_fails_in_bounded_memory_and_time() {
    for (answer, env) in [
        (endless_page as fn(&mut std::net::TcpStream, &str), None),
        (
            endless_chunked_page,
            Some(("RBUILDOUT_MAX_PAGE_SIZE", "1M")),
        ),
    ] {
        let base = serve(answer);
        let inst = instance(&format!("{base}/simple/"), &["alpha"], "");
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let (run, took, rss) = measured(&inst, &[], &env, Duration::from_secs(60));
        // The default limit is 64 MiB: the page is held once, not three times.
        if let Some(kib) = rss {
            assert!(kib < 200 * 1024, "peak RSS {kib} KiB");
        }
        assert_eq!(run.code, 1, "{}", run.stderr);
        run.stderr_has(&format!("{base}/simple/alpha/"));
        run.stderr_has("larger than");
        run.stderr_has("RBUILDOUT_MAX_PAGE_SIZE");
        assert!(took < Duration::from_secs(45), "{took:?}");
    }
}

#[test]
fn a_silent_server_times_out_naming_the_url() {
    for answer in [
        silent as fn(&mut std::net::TcpStream, &str),
        stalls_in_the_body,
    ] {
        let base = serve(answer);
        let url =
            format!("{base}/simple/").replacen("http://", &format!("http://me:{PASSWORD}@"), 1);
        let inst = instance(&url, &["alpha"], "");
        let (run, took) = bounded(
            &inst,
            &[],
            &[("RBUILDOUT_HTTP_TIMEOUT", "2")],
            Duration::from_secs(60),
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        run.stderr_has("timed out");
        run.stderr_has(&format!("{base}/simple/alpha/"));
        run.stderr_has("RBUILDOUT_HTTP_TIMEOUT");
        assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
        assert!(took < Duration::from_secs(15), "{took:?}");
    }
    // A bad value is named, as a usage error: the engine reads the same setting for
    // `extends` URLs before any part runs.
    let inst = instance("http://127.0.0.1:9/simple/", &["alpha"], "");
    let (run, _) = bounded(
        &inst,
        &[],
        &[("RBUILDOUT_HTTP_TIMEOUT", "soon")],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("RBUILDOUT_HTTP_TIMEOUT") && run.stderr.contains("`soon`"),
        "{}",
        run.stderr
    );
}

/// Redirects every request to the `Location` in the first line of its path (after
/// `/to/`), percent-decoded: `/to/file:%2F%2F%2Fetc%2Fpasswd`.
fn redirector(stream: &mut std::net::TcpStream, head: &str) {
    let target = head
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.split_once("/to/"))
        .map(|(_, rest)| rest.replace("%2F", "/").replace("%3A", ":"))
        .unwrap_or_default();
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
}

#[test]
fn remote_pages_may_not_lead_to_local_files() {
    // A real wheel on this machine, which a remote page names by a file: URL.
    let local = Index::serve(&[Package::new("alpha", "1.0")]);
    let wheel = local
        .files_dir()
        .join(Package::new("alpha", "1.0").wheel_filename());
    let file_url = format!("file://{}", wheel.display());
    // The index: one page, whatever is asked, linking that wheel.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let body = format!("<html><a href=\"{file_url}\">alpha</a></html>");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let inst = instance(&format!("{base}/simple/"), &["alpha"], "");
    let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("local file");
    run.stderr_has(&format!("{base}/simple/alpha/"));
    assert!(!inst.path("eggs").join("alpha-1.0-py3-none-any").exists());
    // A redirect to a file: URL is refused the same way, and not retried.
    let redirect = serve(redirector);
    let to = format!("{redirect}/to/file:%2F%2F%2Fetc%2Fpasswd/");
    let inst = instance(&to, &["alpha"], "");
    let (run, _) = bounded(&inst, &[], &[], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("redirect was refused");
    run.stderr_has("local file");
    // A local find-links page may still name local files.
    let links = Instance::new(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"\"\n\n\
         [app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\nfind-links = [\"links.html\"]\n",
    );
    links.write(
        "links.html",
        &format!("<html><a href=\"{file_url}\">alpha</a></html>"),
    );
    let (run, _) = bounded(&links, &[], &[], Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_redirect_to_another_host_gets_no_credentials() {
    let other = Index::serve(&alpha_beta());
    let redirect = serve(redirector);
    // `/to/<other>/simple/` + the project: every page request is sent to `other`.
    let to = format!(
        "{redirect}/to/{}/simple/",
        other.base_url().replace("/", "%2F").replace(":", "%3A")
    );
    let url = to.replacen("http://", &format!("http://me:{PASSWORD}@"), 1);
    let inst = instance(&url, &["alpha"], "");
    let (run, _) = bounded(&inst, &["-vv"], &[], Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = other.authorizations();
    assert!(
        seen.iter().any(|(t, _)| t.starts_with("/simple/")),
        "{seen:?}"
    );
    assert!(seen.iter().all(|(_, a)| a.is_none()), "{seen:?}");
    assert_nowhere(
        PASSWORD,
        &[inst.path("buildout.lock"), inst.path("cache")],
        &run,
    );
}

/// An https server (see [`TlsServer`]) serving `page` as `/simple/alpha/` and redirecting
/// `/down/<rest>` to `<redirect><rest>`.
fn tls_server(page: &str, redirect: &str) -> TlsServer {
    TlsServer::start(
        |www| {
            let project = www.join("simple/alpha");
            std::fs::create_dir_all(&project).expect("www");
            std::fs::write(project.join("index.html"), page).expect("page");
        },
        redirect,
    )
}

#[test]
fn an_https_index_may_not_lead_to_http_unless_allowed() {
    use sha2::Digest;
    let alpha = Package::new("alpha", "1.0").module("alpha/__init__.py", "A = 1\n");
    let plain = Index::serve(std::slice::from_ref(&alpha));
    let name = alpha.wheel_filename();
    let sha = rbuildout_tests::pyindex::hex(&sha2::Sha256::digest(alpha.wheel_bytes()));
    let page = format!(
        "<html><a href=\"{}#sha256={sha}\">{name}</a></html>",
        plain.file_url(&name)
    );
    let tls = tls_server(&page, &plain.url());
    let ca = tls.ca().display().to_string();
    let env = [("SSL_CERT_FILE", ca.as_str())];
    let limit = Duration::from_secs(60);
    // The https page links a file over http; then the https index redirects to http.
    for index in ["simple", "down"] {
        let url = format!("https://127.0.0.1:{}/{index}/", tls.port);
        let inst = instance(&url, &["alpha"], "");
        let (run, _) = bounded(&inst, &[], &env, limit);
        assert_eq!(run.code, 1, "{index}: {}", run.stderr);
        run.stderr_has("from https to plain http");
        run.stderr_has("allow-insecure = true");
        assert!(!inst.path("eggs/alpha-1.0-py3-none-any").exists());
        // Allowed in the part, or in [buildout].
        let inst = instance(&url, &["alpha"], "allow-insecure = \"true\"\n");
        let (run, _) = bounded(&inst, &[], &env, limit);
        assert_eq!(run.code, 0, "{index}: {}", run.stderr);
        assert!(inst.path("eggs/alpha-1.0-py3-none-any").is_dir());
        let inst = Instance::new(&format!(
            "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{url}\"\n\
             allow-insecure = \"true\"\n\n[app]\nrecipe = \"egg\"\neggs = [\"alpha\"]\n"
        ));
        let (run, _) = bounded(&inst, &[], &env, limit);
        assert_eq!(run.code, 0, "{index}: {}", run.stderr);
    }
}
