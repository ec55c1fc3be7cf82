//! The commands that need no plugin, run through the real binary: `convert` (whose TOML must
//! resolve to the `.cfg`'s values), `query`, `init`, user defaults and http(s) extends with
//! their cache.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use rbuildout_tests::rbuildout_bin;
use serde_json::Value as Json;

fn run(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(rbuildout_bin());
    c.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env_remove("RBUILDOUT_HOME")
        .env_remove("BUILDOUT_HOME")
        .env_remove("PIP_INDEX_URL");
    for v in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run rbuildout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

/// `annotate --json` of a config, reduced to what must match: the parts and every value.
fn values(dir: &Path, config: &str) -> Json {
    let out = run(dir, &["-U", "-c", config, "annotate", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{config}: {}", stderr(&out));
    let doc: Json = serde_json::from_slice(&out.stdout).expect("annotate prints JSON");
    let mut sections = serde_json::Map::new();
    for (name, opts) in doc["sections"].as_object().expect("sections") {
        let mut o = serde_json::Map::new();
        for (k, v) in opts.as_object().expect("options") {
            // The config's own path: the converted file is another file on purpose.
            if (name.as_str(), k.as_str()) == ("buildout", "config-file") {
                continue;
            }
            o.insert(k.clone(), v["value"].clone());
        }
        sections.insert(name.clone(), Json::Object(o));
    }
    serde_json::json!({"parts": doc["parts"], "sections": sections})
}

const CFG_INPUTS: &[&[(&str, &str)]] = &[
    // Implicit parts, `${:_buildout_section_name_}`, `$$`, block values.
    &[(
        "buildout.cfg",
        "[buildout]\nparts = b c\nx = ${via:r}\n\n[via]\nrecipe = r\nr = 1\n\n[a]\nrecipe = r\nv = 1\n\n\
         [b]\nrecipe = r\nv = ${a:v}\nname = ${:_buildout_section_name_}\ndollar = $${x:y} $$ cost $5\n\
         block =\n    first\n\n      indented\n    last\n\n[c]\nrecipe = r\nhash = a # b\nws =   padded  \n",
    )],
    // Macros with += / -=, chained macros, `${:x}` in a macro.
    &[(
        "buildout.cfg",
        "[buildout]\nparts = p\n\n[base]\nlist = one\n  two\ngreeting = hello ${:who}\n\n[mid]\n<= base\nextra = 1\n\n\
         [p]\n<= mid\nrecipe = r\nwho = world\nlist += three\nlist -= one\n",
    )],
    // Extends (nested, several), += across files, a condition. (A diamond is not kept by
    // convert: zc.buildout re-applies a shared base, TOML applies it once; convert warns.)
    &[
        (
            "buildout.cfg",
            "[buildout]\nextends = left.cfg right.cfg\nparts = p\n\n[p]\nrecipe = r\nv = ${s:v}\nw = ${s:w}\n",
        ),
        (
            "left.cfg",
            "[buildout]\nextends = common.cfg\n\n[s]\nv = left\nw += l\n",
        ),
        ("right.cfg", "[s]\nw += r\n"),
        (
            "common.cfg",
            "[s]\nv = common\nw = c\n\n[s:posix]\nw += posix\n",
        ),
    ],
    // `=>` part dependencies and a data section reached through [buildout].
    &[(
        "buildout.cfg",
        "[buildout]\nparts = z\nlog = ${paths:log}\n\n[paths]\nlog = ${buildout:directory}/var/log\n\n\
         [z]\nrecipe = r\n=> y\n\n[y]\nrecipe = r\nfile = ${paths:log}/y.log\n",
    )],
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Converts `buildout.cfg` in `dir` and checks that the twins resolve to the same values.
fn check_convert(dir: &Path, what: &str) {
    let out = run(dir, &["-U", "convert", "--force", "buildout.cfg"], &[]);
    assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
    let toml = std::fs::read_to_string(dir.join("buildout.toml")).expect("buildout.toml");
    let want = values(dir, "buildout.cfg");
    let got = values(dir, "buildout.toml");
    assert_eq!(got, want, "{what}: converted TOML differs:\n{toml}");
}

#[test]
fn convert_gives_toml_that_resolves_to_the_same_values() {
    for (n, files) in CFG_INPUTS.iter().enumerate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        for (name, text) in *files {
            write(dir, name, text);
        }
        check_convert(dir, &format!("input {n}"));
        assert!(
            values(dir, "buildout.cfg")["parts"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "input {n} has parts"
        );
    }
    // Conformance cases: extends (nested, relative, several, in subfolders, optional),
    // += / -= across files and in conditional sections, macros, conditions, `=>`.
    let cases = rbuildout_tests::repo_root().join("tests/cases/config");
    for case in [
        "21-extends-simple",
        "22-extends-nested",
        "23-extends-relative-paths",
        "24-extends-several",
        "26-extends-multiline",
        "29-extends-section-only-in-base",
        "32-append-across-extends",
        "33-append-and-remove-one-section",
        "37-several-appends-one-file",
        "38-assignment-after-append",
        "39-append-to-macro",
        "41-remove-then-append-across-files",
        "55-macro-chained",
        "59-macro-across-extends",
        "61-condition-linux",
        "63-condition-windows-false",
        "64-condition-pep508-marker",
        "65-condition-python-expression",
        "91-condition-new-section",
        "95-append-in-conditional-sections",
        "99-conditional-buildout-parts",
        "108-optional-extends",
        "110-parts-refer-to-each-other",
        "111-part-dependencies-referred-back",
        "114-condition-python-sys-version-info",
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("case");
        copy_dir(&cases.join(case), &dir);
        check_convert(&dir, case);
    }
}

#[test]
fn convert_writes_a_twin_per_local_file_and_keeps_the_structure() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::create_dir(dir.join("shared")).expect("mkdir");
    write(
        dir,
        "shared/base.cfg",
        "[buildout]\neggs-directory = ../eggs\nparts = a\n\n[a]\nrecipe = r\n",
    );
    write(
        dir,
        "buildout.cfg",
        "[buildout]\nextends = shared/base.cfg\n    https://example.org/versions.cfg\n\
         optional-extends = local.cfg\nparts += b\n\n[buildout:windows]\nparts -= b\n\n\
         [versions:python_version >= \"3.13\"]\nsix = 1\n\n[m]\nx = 1\n\n[b]\n<= m\nrecipe = r\n",
    );
    let out = run(dir, &["convert", "buildout.cfg"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "buildout.toml\nshared/base.toml\n"
    );
    let main = std::fs::read_to_string(dir.join("buildout.toml")).expect("twin");
    let base = std::fs::read_to_string(dir.join("shared/base.toml")).expect("twin");
    for want in [
        "extends = [\"shared/base.toml\", \"https://example.org/versions.cfg\"]",
        "optional-extends = [\"local.toml\"]",
        "parts = { append = \"b\" }",
        "[\"buildout:windows\"]",
        "parts = { remove = \"b\" }",
        "['versions:python_version >= \"3.13\"']",
        "inherits = [\"m\"]",
        "jobs = 1",
    ] {
        assert!(main.contains(want), "no {want:?} in\n{main}");
    }
    assert!(base.contains("eggs-directory = \"../eggs\""), "{base}");
    assert!(!base.contains("jobs"), "{base}");
    // Never over an existing file without --force, and nothing is written then.
    std::fs::remove_file(dir.join("buildout.toml")).expect("rm");
    let out = run(dir, &["convert", "buildout.cfg"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("shared/base.toml already exists; pass --force"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("buildout.toml").exists());
    // User defaults are never copied in.
    std::fs::create_dir_all(dir.join(".rbuildout")).expect("mkdir");
    write(dir, ".rbuildout/default.toml", "[buildout]\nsecret = 'x'\n");
    let out = run(dir, &["convert", "--force", "buildout.cfg"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let main = std::fs::read_to_string(dir.join("buildout.toml")).expect("twin");
    assert!(!main.contains("secret"), "{main}");
}

#[test]
fn query_prints_one_value_and_lists_one_element_per_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        dir,
        "buildout.toml",
        "[buildout]\nparts = ['a', 'b']\n\n[a]\nrecipe = 'r'\npath = '${buildout:directory}/x'\n\n[b]\nrecipe = 'r'\n",
    );
    let out = run(dir, &["-U", "query", "parts"], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\n");
    let out = run(dir, &["-U", "query", "a:path"], &[]);
    let canonical = dir.canonicalize().expect("canonical");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        printed == format!("{}/x\n", dir.display())
            || printed == format!("{}/x\n", canonical.display()),
        "{printed}"
    );
    let out = run(dir, &["-U", "a:path=changed", "query", "a:path"], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "changed\n");
    let out = run(dir, &["-U", "query", "a:nosuch"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing option a:nosuch"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    let out = run(dir, &["-U", "query", "a:b:c"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn buildout_config_file_names_the_main_config_not_the_files_it_extends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(dir, "base.toml", "[buildout]\nparts = []\n");
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    write(
        dir,
        "sub/release.toml",
        "[buildout]\nextends = ['../base.toml']\n",
    );
    let out = run(
        dir,
        &["-U", "-c", "sub/release.toml", "query", "config-file"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let canonical = dir.canonicalize().expect("canonical");
    assert!(
        printed == format!("{}/sub/release.toml\n", dir.display())
            || printed == format!("{}/sub/release.toml\n", canonical.display()),
        "{printed}"
    );
}

#[test]
fn init_writes_a_working_starter_and_never_overwrites() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let out = run(dir, &["init"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text =
        std::fs::read_to_string(dir.join("buildout.toml")).expect("init wrote buildout.toml");
    let v = values(dir, "buildout.toml");
    assert_eq!(v["parts"], serde_json::json!([]));
    let again = run(dir, &["init"], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("buildout.toml")).expect("still there"),
        text
    );
}

#[test]
fn user_defaults_apply_under_the_config_and_u_skips_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let rb_home = dir.join("rb-home");
    let bo_home = dir.join("bo-home");
    std::fs::create_dir_all(&rb_home).expect("mkdir");
    std::fs::create_dir_all(&bo_home).expect("mkdir");
    write(
        &rb_home,
        "default.toml",
        "[buildout]\nfind-links = 'from-rbuildout'\nnewest = 'true'\n",
    );
    write(
        &bo_home,
        "default.cfg",
        "[buildout]\nfind-links = from-buildout\npython = py-default\n",
    );
    write(
        dir,
        "buildout.cfg",
        "[buildout]\nparts =\nfind-links += mine\n",
    );
    write(dir, "buildout.toml", "[buildout]\nparts = []\n");
    let env = [
        ("RBUILDOUT_HOME", rb_home.as_path()),
        ("BUILDOUT_HOME", bo_home.as_path()),
    ];
    let query = |args: &[&str]| {
        let out = run(dir, args, &env);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    };
    // .cfg: zc.buildout's default.cfg over rbuildout's default.toml, under the project's +=.
    assert_eq!(
        query(&["-c", "buildout.cfg", "query", "find-links"]),
        "from-buildout\nmine"
    );
    assert_eq!(query(&["-c", "buildout.cfg", "query", "newest"]), "true");
    assert_eq!(
        query(&["-c", "buildout.cfg", "query", "python"]),
        "py-default"
    );
    // TOML: only rbuildout's own defaults.
    assert_eq!(
        query(&["-c", "buildout.toml", "query", "find-links"]),
        "from-rbuildout"
    );
    assert_eq!(
        query(&["-c", "buildout.toml", "query", "python"]),
        "python3"
    );
    // -U skips both.
    assert_eq!(
        query(&["-U", "-c", "buildout.cfg", "query", "find-links"]),
        "mine"
    );
    assert_eq!(
        query(&["-U", "-c", "buildout.toml", "query", "newest"]),
        "false"
    );
}

/// Serves `body` for every request on 127.0.0.1, `count` times; returns the base URL.
fn serve(body: &'static str, count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn url_extends_are_downloaded_once_then_read_from_the_cache_offline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let base = serve(
        "[buildout]\nparts = a\n\n[a]\nrecipe = r\nfrom = the-server\n",
        1,
    );
    write(
        dir,
        "buildout.cfg",
        &format!("[buildout]\nextends = {base}/base.cfg\ndownload-cache = cache\n"),
    );
    let out = run(
        dir,
        &["-U", "query", "a:from"],
        &[("NO_PROXY", Path::new("127.0.0.1"))],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "the-server\n");
    let cached: Vec<_> = std::fs::read_dir(dir.join("cache/extends"))
        .expect("cache folder")
        .collect();
    assert_eq!(cached.len(), 1);
    // The server is gone (it answered once): offline runs read the cache.
    let out = run(dir, &["-U", "-o", "query", "a:from"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "the-server\n");
}

#[test]
fn every_command_has_help() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (cmd, needle) in [
        ("annotate", "--json"),
        ("query", "[SECTION:]OPTION"),
        ("init", "overwrite"),
        ("convert", "FILE.cfg"),
    ] {
        let out = run(tmp.path(), &[cmd, "--help"], &[]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{cmd} --help lacks {needle}: {text}");
    }
}

#[test]
fn assignments_count_wherever_they_stand_on_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        dir,
        "buildout.cfg",
        "[buildout]\nparts = p\n\n[p]\nrecipe = r\nv = 1\nl = a\n    b\n",
    );
    // After the subcommand, between its arguments, and before it, in command-line order.
    let out = run(
        dir,
        &[
            "-U", "annotate", "p:v=x", "--json", "p:l-=a", "p", "p:l += c", "new:o=1",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Json = serde_json::from_slice(&out.stdout).expect("annotate prints JSON");
    assert_eq!(doc["sections"]["p"]["v"]["value"], "x");
    assert_eq!(doc["sections"]["p"]["l"]["value"], "b\nc");
    let out = run(dir, &["-U", "query", "p:v", "p:v=y"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "y\n",
        "{}",
        stderr(&out)
    );
    let out = run(dir, &["-U", "x=3", "query", "x"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "3\n",
        "{}",
        stderr(&out)
    );
    // The value of `-c` is a file name even with an `=` in it.
    write(dir, "a=b.cfg", "[buildout]\nparts =\nz = 1\n");
    let out = run(dir, &["-U", "-c", "a=b.cfg", "query", "z", "z=2"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn annotate_shows_every_section_and_an_unresolvable_value_with_its_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(
        dir,
        "buildout.cfg",
        "[buildout]\nparts = p\n\n[m]\nurl = http://${:host}\n\n[p]\n<= m\nrecipe = r\nhost = h\n\n\
         [broken]\ny = ${nosuch:z}\nw = 2\n\n[bad-macro]\n<= nosuch\n",
    );
    let out = run(dir, &["-U", "annotate", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Json = serde_json::from_slice(&out.stdout).expect("annotate prints JSON");
    assert_eq!(doc["evaluated"], serde_json::json!(["buildout", "p"]));
    assert_eq!(doc["sections"]["p"]["url"]["value"], "http://h");
    assert_eq!(doc["sections"]["m"]["url"]["raw"], "http://${:host}");
    assert_eq!(
        doc["sections"]["m"]["url"]["error"],
        "referenced option does not exist: m:host"
    );
    assert_eq!(doc["sections"]["broken"]["w"]["value"], "2");
    assert_eq!(
        doc["sections"]["broken"]["y"]["error"],
        "the section [nosuch] is not defined"
    );
    assert!(doc["errors"]["bad-macro"].is_string(), "{doc}");
    let out = run(dir, &["-U", "annotate", "broken", "m"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\nAnnotated sections\n==================\n\n[broken]\nw= 2\n    buildout.cfg:14\n\
         y= ${nosuch:z}\n    buildout.cfg:13\n    (not resolved: the section [nosuch] is not defined)\n\
         \n[m]\nurl= http://${:host}\n    buildout.cfg:5\n    (not resolved: referenced option does not exist: m:host)\n"
    );
}

#[test]
fn parts_that_refer_to_each_other_install_in_zc_buildouts_order() {
    // Plone's ZEO layout: zeoserver is listed first, but instance, reached from it while it
    // is being initialized, ends its initialization first and is installed first.
    let config = r#"
buildout = { parts = ["zeoserver", "instance"] }

[instance]
recipe = "testkit:lifecycle"
path = "parts/instance.txt"
eggs = "Plone"
zeo-address = "${zeoserver:zeo-address}"

[zeoserver]
recipe = "testkit:lifecycle"
path = "parts/zeoserver.txt"
zeo-address = "8100"
eggs = "${instance:eggs}"
"#;
    for jobs in ["1", "4"] {
        let inst = rbuildout_tests::Instance::new(config);
        inst.ok(&["-j", jobs]);
        assert_eq!(
            inst.log("lifecycle.log"),
            ["install instance", "install zeoserver"],
            "-j {jobs}"
        );
    }
    // Installed first, instance cannot read what zeoserver only publishes when installed.
    let inst = rbuildout_tests::Instance::new(&config.replace(
        "zeo-address = \"${zeoserver:zeo-address}\"",
        "zeo-address = \"${zeoserver:written}\"",
    ));
    let run = inst.fails(&[], 2);
    assert!(
        run.stderr.contains(
            "instance:zeo-address needs ${zeoserver:written}, an output [zeoserver] only \
             publishes when installed, but [instance] is installed first"
        ),
        "{}",
        run.stderr
    );
    assert!(!inst.exists("lifecycle.log"));
}

#[test]
fn python_conditions_start_one_interpreter_and_are_cached_by_its_identity() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // A python3 that notes each start, first on PATH.
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v python3"])
        .output()
        .expect("sh");
    let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
    assert!(!real.is_empty(), "python3 is needed on PATH");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let shim = bin.join("python3");
    let script = format!(
        "#!/bin/sh\necho start >> '{}'\nexec '{real}' \"$@\"\n",
        dir.join("starts.log").display()
    );
    std::fs::write(&shim, &script).expect("shim");
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let starts = || {
        std::fs::read_to_string(dir.join("starts.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let annotate = |cfg: &str| {
        let out = run(
            dir,
            &["-U", "-c", cfg, "annotate", "--json"],
            &[("PATH", Path::new(&path))],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let doc: Json = serde_json::from_slice(&out.stdout).expect("JSON");
        doc["sections"]["p"].clone()
    };
    write(
        dir,
        "pure.cfg",
        "[buildout]\nparts =\n[p]\nx = 1\n[p:sys.version_info >= (3,0)]\npy3 = yes\n\
         [p:sys.version_info < (3,0)]\npy2 = yes\n[p:sys.maxsize > 2**16]\nbig = yes\n",
    );
    write(
        dir,
        "files.cfg",
        "[buildout]\nparts =\n[p]\nx = 1\n[p:sys.version_info >= (3,0)]\npy3 = yes\n\
         [p:os.path.isfile('files.cfg')]\nhere = yes\n[p:os.path.isdir('nothing')]\nno = yes\n",
    );
    let p = annotate("files.cfg");
    assert_eq!(p["py3"]["value"], "yes");
    assert_eq!(p["here"]["value"], "yes");
    assert!(p.get("no").is_none() && p.get("py2").is_none(), "{p}");
    assert_eq!(
        starts(),
        1,
        "one interpreter for every condition of a config"
    );
    // The file system can change between runs: os.path is asked again.
    annotate("files.cfg");
    assert_eq!(starts(), 2);
    // What depends only on the interpreter is cached by its identity: no start at all.
    let p = annotate("pure.cfg");
    assert_eq!(starts(), 3, "sys.maxsize was not asked yet");
    assert_eq!(p["big"]["value"], "yes");
    let p = annotate("pure.cfg");
    assert_eq!(starts(), 3, "every answer cached");
    assert_eq!(p["py3"]["value"], "yes");
    // Another interpreter at the same path (new size and mtime) is asked again.
    std::fs::write(&shim, format!("{script}# changed\n")).expect("shim");
    annotate("pure.cfg");
    assert_eq!(starts(), 4);
    assert!(dir.join(".cache/rbuildout/python").is_dir());
    // `buildout:python` on the command line names the interpreter.
    let other = dir.join("other-python");
    std::fs::write(
        &other,
        format!(
            "#!/bin/sh\necho start >> '{}'\nexec '{real}' \"$@\"\n",
            dir.join("other.log").display()
        ),
    )
    .expect("other");
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let assignment = format!("buildout:python={}", other.display());
    let out = run(
        dir,
        &["-U", "-c", "files.cfg", "annotate", "--json", &assignment],
        &[("PATH", Path::new(&path))],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(starts(), 4, "python3 on PATH is not asked");
    let other_starts = std::fs::read_to_string(dir.join("other.log")).unwrap_or_default();
    assert_eq!(other_starts.lines().count(), 1);
}

#[test]
fn annotate_shows_thousands_of_unresolvable_values_in_linear_time() {
    // Each error quotes only its own line: quoting the whole file made 5,000 errors take
    // about half a minute.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut cfg = String::from("[buildout]\nparts =\n\n");
    for i in 0..5000 {
        cfg.push_str(&format!("[s{i}]\nx = ${{:missing}}\n\n"));
    }
    write(dir, "buildout.cfg", &cfg);
    let started = std::time::Instant::now();
    let out = run(dir, &["-U", "annotate", "--json"], &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Json = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        doc["sections"]["s4999"]["x"]["error"],
        "referenced option does not exist: s4999:missing"
    );
    assert!(took.as_secs() < 12, "annotate took {took:?}");
}
