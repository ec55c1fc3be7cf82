//! Hostile or mistaken config input fails fast, in bounded memory, with exit 2: substitution
//! bombs, endless or blocking files, huge files, link loops, files of thousands of errors.
//! Every run here is under `ulimit -v` (2 GB) and a time bound, so a regression fails the
//! test instead of the machine.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rbuildout_tests::{Instance, Run, plugin_path, rbuildout_bin};

/// The most a run here may take; today's fixes make each well under a second.
const BOUND: Duration = Duration::from_secs(20);

/// The binary under `ulimit -v 2000000` (KiB) in `dir`, user defaults from `home`.
fn limited(dir: &Path, home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(r#"ulimit -v 2000000; exec "$0" "$@""#)
        .arg(rbuildout_bin())
        .args(args)
        .current_dir(dir)
        .env("RBUILDOUT_PLUGIN_PATH", plugin_path())
        .env("RBUILDOUT_HOME", home)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("RBUILDOUT_MAX_VALUE")
        .env_remove("RBUILDOUT_MAX_CONFIG_FILE")
        .env_remove("RBUILDOUT_MAX_EXPANDED");
    c
}

/// Runs `command` to the end or kills it after [`BOUND`]; returns what it did and how long.
fn bounded(command: &mut Command) -> (Run, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rbuildout");
    // Pipes are drained on threads, so a chatty run cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > BOUND {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "rbuildout ran longer than {BOUND:?}; stderr so far:\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    (run, elapsed)
}

/// Runs `args` (after `-U`) in the instance, bounded; asserts exit 2 and returns stderr.
fn config_error(inst: &Instance, args: &[&str]) -> String {
    let mut all = vec!["-U"];
    all.extend_from_slice(args);
    let (r, _) = bounded(&mut limited(inst.dir(), &inst.path(".home"), &all));
    assert_eq!(r.code, 2, "expected a config error (exit 2):\n{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r.stderr
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_doubling_substitution_bomb_is_an_error_naming_the_option() {
    let mut cfg = String::from("[buildout]\nparts = p\n[p]\nrecipe = testkit:file\na0 = x\n");
    let mut toml = String::from(
        "[buildout]\nparts = ['p']\n[p]\nrecipe = 'testkit:file'\na0 = 'x'\nl0 = ['x']\n",
    );
    for i in 1..=40 {
        let j = i - 1;
        cfg.push_str(&format!("a{i} = ${{:a{j}}}${{:a{j}}}\n"));
        toml.push_str(&format!("a{i} = '${{:a{j}}}${{:a{j}}}'\n"));
        toml.push_str(&format!("l{i} = ['${{:l{j}}}', '${{:l{j}}}']\n"));
    }
    let inst = Instance::new(&toml);
    inst.write("buildout.cfg", &cfg);
    // `a24` is 16 MiB exactly, the limit; `a25` would be 32 MiB.
    let e = config_error(&inst, &["-c", "buildout.cfg"]);
    assert!(
        e.contains("error: the value of p:a25 would grow to 33554432 bytes by substitution, past the limit of 16 MiB"),
        "{e}"
    );
    assert!(e.contains("--> buildout.cfg:30:1"), "{e}");
    assert!(e.contains("RBUILDOUT_MAX_VALUE"), "{e}");
    crate::snapshot!("substitution_bomb", Some(inst.dir()), e);
    let e = config_error(&inst, &[]);
    assert!(e.contains("past the limit of 16 MiB"), "{e}");
    assert!(
        e.contains("the value of p:a25 ") || e.contains("the value of p:l"),
        "{e}"
    );
    // The limit is a setting: a lower one stops the bomb earlier.
    let mut c = limited(
        inst.dir(),
        &inst.path(".home"),
        &["-U", "-c", "buildout.cfg"],
    );
    c.env("RBUILDOUT_MAX_VALUE", "1K");
    let (r, _) = bounded(&mut c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.stderr_has("the value of p:a11 would grow to 2048 bytes");
    c.env("RBUILDOUT_MAX_VALUE", "lots");
    let (r, _) = bounded(&mut c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "RBUILDOUT_MAX_VALUE must be a size in bytes, such as 16777216 or 16M, not `lots`"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn extends_of_a_device_a_fifo_or_a_folder_is_refused_without_reading_it() {
    let inst = Instance::new("[buildout]\nextends = '/dev/zero'\nparts = []\n");
    let e = config_error(&inst, &[]);
    assert!(
        e.contains("cannot load an extended config: /dev/zero is not a regular file (a device); a config must be a plain file"),
        "{e}"
    );
    assert!(e.contains("--> buildout.toml:2:1"), "{e}");
    let mut messages = format!("== extends a device\n{e}");

    mkfifo(&inst.path("pipe.toml"));
    inst.config("[buildout]\nextends = 'pipe.toml'\nparts = []\n");
    let e = config_error(&inst, &[]);
    assert!(e.contains("is not a regular file (a named pipe)"), "{e}");
    messages.push_str(&format!("== extends a FIFO\n{e}"));

    std::fs::create_dir(inst.path("folder.toml")).unwrap();
    inst.config("[buildout]\nextends = 'folder.toml'\nparts = []\n");
    let e = config_error(&inst, &[]);
    assert!(e.contains("is not a regular file (a folder)"), "{e}");
    messages.push_str(&format!("== extends a folder\n{e}"));

    // The main config and the user defaults are read the same way.
    let e = config_error(&inst, &["-c", "pipe.toml"]);
    assert!(
        e.contains("pipe.toml is not a regular file (a named pipe)"),
        "{e}"
    );
    messages.push_str(&format!("== -c a FIFO\n{e}"));
    inst.config("[buildout]\nparts = []\n");
    std::fs::create_dir_all(inst.path(".home")).unwrap();
    mkfifo(&inst.path(".home/default.toml"));
    let (r, _) = bounded(&mut limited(inst.dir(), &inst.path(".home"), &[]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.stderr_has("default.toml is not a regular file (a named pipe)");
    messages.push_str(&format!("== user defaults a FIFO\n{}", r.stderr));
    crate::snapshot!("not_regular_files", Some(inst.dir()), messages);
}

#[test]
fn a_config_file_larger_than_the_limit_is_refused() {
    let inst = Instance::new("[buildout]\nextends = 'big.toml'\nparts = []\n");
    // Sparse: 17 MiB long, taking no disk and refused before it is read.
    let big = std::fs::File::create(inst.path("big.toml")).unwrap();
    big.set_len(17 << 20).unwrap();
    let e = config_error(&inst, &[]);
    assert!(
        e.contains("big.toml is larger than 16 MiB, the limit of a config file; if it truly is a config, raise RBUILDOUT_MAX_CONFIG_FILE"),
        "{e}"
    );
    crate::snapshot!("config_file_too_large", Some(inst.dir()), e);
    inst.write("big.toml", &format!("[x]\ny = '{}'\n", "z".repeat(2000)));
    let mut c = limited(inst.dir(), &inst.path(".home"), &["-U"]);
    c.env("RBUILDOUT_MAX_CONFIG_FILE", "1K");
    let (r, _) = bounded(&mut c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.stderr_has("big.toml is larger than 1 KiB");
    c.env("RBUILDOUT_MAX_CONFIG_FILE", "4K");
    let (r, _) = bounded(&mut c);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_symlink_loop_in_extends_is_named_as_one() {
    let inst = Instance::new("[buildout]\nextends = 'a.toml'\nparts = []\n");
    std::os::unix::fs::symlink("b.toml", inst.path("a.toml")).unwrap();
    std::os::unix::fs::symlink("a.toml", inst.path("b.toml")).unwrap();
    let e = config_error(&inst, &[]);
    assert!(
        e.contains("cannot load an extended config: symlink loop at "),
        "{e}"
    );
    assert!(e.contains("a.toml"), "{e}");
    let loop_in_extends = e;
    let e = config_error(&inst, &["-c", "b.toml"]);
    assert!(e.contains("error: symlink loop at "), "{e}");
    crate::snapshot!(
        "symlink_loop",
        Some(inst.dir()),
        format!("== in extends\n{loop_in_extends}== -c\n{e}")
    );
}

#[test]
fn twenty_thousand_bad_lines_print_twenty_errors_and_a_count_at_once() {
    let mut cfg = String::from("[buildout]\nparts =\n");
    let mut toml = String::from("[buildout]\nparts = []\n");
    for i in 0..20_000 {
        cfg.push_str(&format!("bad line {i}\n"));
        toml.push_str(&format!("bad line {i}\n"));
    }
    let inst = Instance::new(&toml);
    inst.write("buildout.cfg", &cfg);
    for args in [&["-c", "buildout.cfg"][..], &[]] {
        let mut all = vec!["-U"];
        all.extend_from_slice(args);
        let (r, took) = bounded(&mut limited(inst.dir(), &inst.path(".home"), &all));
        assert_eq!(r.code, 2, "{}", r.stderr);
        // Quadratic rendering took minutes; linear takes a fraction of a second, even in a
        // debug build on a busy machine.
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
        let shown = r.stderr.matches("\nerror: ").count() + 1;
        assert_eq!(shown, 21, "20 errors and the count: {}", r.stderr);
        assert!(
            r.stderr
                .ends_with("error: ... and 19980 more errors (fix the ones above and run again)\n"),
            "{args:?}: {}",
            &r.stderr[r.stderr.len().saturating_sub(300)..]
        );
        assert!(r.stderr.contains(":3:"), "the first error is shown first");
    }
}

#[test]
fn a_bad_condition_in_a_file_extended_twice_is_reported_once() {
    let inst = Instance::new("");
    inst.write("base.cfg", "[buildout]\nparts =\n[x:nonsense]\na = 1\n");
    inst.write("a.cfg", "[buildout]\nextends = base.cfg\n");
    inst.write("b.cfg", "[buildout]\nextends = base.cfg\n");
    inst.write(
        "buildout.cfg",
        "[buildout]\nextends = a.cfg b.cfg base.cfg\nparts =\n",
    );
    for cmd in ["install", "annotate", "plan"] {
        let e = config_error(&inst, &["-c", "buildout.cfg", cmd]);
        assert_eq!(
            e.matches(
                "error: cannot evaluate the condition of section [x]: unknown name `nonsense`"
            )
            .count(),
            1,
            "{cmd}: {e}"
        );
        assert_eq!(e.matches("error").count(), 1, "{cmd}: {e}");
    }
}

#[test]
fn a_macro_copied_into_thousands_of_sections_stops_at_the_expansion_budget() {
    // 100 KB of config asks for 4 million options: each of 2000 sections copies the 2000
    // options of one macro.
    let n = 2000;
    let parts: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let mut cfg = format!(
        "[buildout]\nparts = {}\n[m]\nrecipe = testkit:file\n",
        parts.join(" ")
    );
    for i in 0..n {
        cfg.push_str(&format!("o{i} = v\n"));
    }
    for i in 0..n {
        cfg.push_str(&format!("[s{i}]\n<= m\n"));
    }
    let inst = Instance::new("");
    inst.write("buildout.cfg", &cfg);
    let e = config_error(&inst, &["-c", "buildout.cfg", "annotate"]);
    assert!(
        e.contains("takes the config text and the options copied from macros past 64 MiB, the limit for one config"),
        "{e}"
    );
    assert!(e.contains("RBUILDOUT_MAX_EXPANDED"), "{e}");
    assert!(
        e.contains("<= m"),
        "the error points at the macro line: {e}"
    );
}

/// A server on 127.0.0.1 answering every connection with `respond` on its own thread;
/// returns its port.
fn serve(respond: fn(std::net::TcpStream)) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || respond(stream));
        }
    });
    port
}

#[test]
fn an_extends_url_that_stalls_or_never_ends_is_an_error_in_bounded_time_and_memory() {
    use std::io::{Read, Write};
    // Reads the request, then says nothing for a minute.
    let silent = serve(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        std::thread::sleep(Duration::from_secs(60));
    });
    // Sends a body that never ends.
    let endless = serve(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n[a]\n");
        let chunk = [b'#'; 64 * 1024];
        while s.write_all(&chunk).is_ok() {}
    });
    let inst = Instance::new("");
    inst.config(&format!(
        "[buildout]\nextends = 'http://127.0.0.1:{silent}/base.toml'\nparts = []\n"
    ));
    let mut c = limited(inst.dir(), &inst.path(".home"), &["-U"]);
    c.env("RBUILDOUT_HTTP_TIMEOUT", "1");
    let (r, took) = bounded(&mut c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    r.stderr_has(&format!(
        "cannot download http://127.0.0.1:{silent}/base.toml: the server sent nothing for 1 s"
    ));
    r.stderr_has("RBUILDOUT_HTTP_TIMEOUT");

    inst.config(&format!(
        "[buildout]\nextends = 'http://127.0.0.1:{endless}/base.toml'\nparts = []\n"
    ));
    let e = config_error(&inst, &[]);
    assert!(
        e.contains(&format!(
            "cannot download http://127.0.0.1:{endless}/base.toml: it is larger than 16 MiB, the limit of a config file"
        )),
        "{e}"
    );
}

#[test]
fn a_cfg_file_extended_thousands_of_times_stops_at_the_budget() {
    // 100 KB applied 5000 times would be half a gigabyte of config.
    let inst = Instance::new("");
    let mut x = String::from("[a]\n");
    for i in 0..1000 {
        x.push_str(&format!("o{i} = {}\n", "v".repeat(90)));
    }
    inst.write("x.cfg", &x);
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\nparts =\nextends = {}\n",
            vec!["x.cfg"; 5000].join(" ")
        ),
    );
    // A lower budget keeps the test quick in a debug build; the default is 64 MiB.
    let mut c = limited(
        inst.dir(),
        &inst.path(".home"),
        &["-U", "-c", "buildout.cfg"],
    );
    c.env("RBUILDOUT_MAX_EXPANDED", "8M");
    let (r, _) = bounded(&mut c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: applying x.cfg again takes the config text read in one load past 8 MiB, the limit for one config"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    r.stderr_has("--> buildout.cfg:3:1");
}
