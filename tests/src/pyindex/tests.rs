//! The index against its own contract, and against pip.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use sha2::{Digest, Sha256};

use super::*;

/// The packages of the agreed example.
fn packages() -> Vec<Package> {
    vec![
        Package::new("alpha", "1.0")
            .requires("beta>=2")
            .module(
                "alpha/__init__.py",
                "X = 1\ndef main():\n    print('alpha', X)\n",
            )
            .entry_point("console_scripts", "alpha", "alpha:main"),
        Package::new("beta", "2.0")
            .requires_python(">=3.8")
            .extra("fast", &["gamma"]),
        Package::new("beta", "3.0").yanked(),
        Package::new("gamma", "1.0").requires("beta; python_version < '3'"),
        Package::new("delta", "1.0")
            .sdist_only()
            .module("delta.py", "def hello():\n    return 'delta'\n")
            .entry_point("console_scripts", "delta", "delta:hello"),
        Package::new("evil", "1.0").malicious_member("../escape.txt"),
        Package::new("Zope.Interface_X", "4.0").with_sdist(),
    ]
}

/// A response read with a plain socket, so the test sees exactly what was sent.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn request(index: &Index, method: &str, target: &str, accept: Option<&str>) -> Got {
    let mut stream = TcpStream::connect(("127.0.0.1", index.port())).expect("connect");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(accept) = accept {
        req.push_str(&format!("Accept: {accept}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(index: &Index, target: &str, accept: Option<&str>) -> Got {
    request(index, "GET", target, accept)
}

const JSON: &str = "application/vnd.pypi.simple.v1+json";
const PIP_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn pip(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .args(["-m", "pip", "--disable-pip-version-check", "--no-input"])
        .args(args)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("NO_PROXY", "127.0.0.1")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .expect("run python3 -m pip")
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn names_and_encodings() {
    assert_eq!(normalize("Zope.Interface__X").unwrap(), "zope-interface-x");
    assert_eq!(normalize("a-_.b").unwrap(), "a-b");
    assert_eq!(normalize("-a"), None);
    assert_eq!(normalize(""), None);
    assert_eq!(urlsafe_b64_nopad(b""), "");
    assert_eq!(urlsafe_b64_nopad(b"f"), "Zg");
    assert_eq!(urlsafe_b64_nopad(b"fo"), "Zm8");
    assert_eq!(urlsafe_b64_nopad(b"foo"), "Zm9v");
    assert_eq!(urlsafe_b64_nopad(&[0xfb, 0xff]), "-_8");
    assert_eq!(encoders::base64(b"f"), "Zg==");
    assert_eq!(encoders::base64(b"fo"), "Zm8=");
    assert_eq!(encoders::base64(b"user:pw"), "dXNlcjpwdw==");
    let p = Package::new("Zope.Interface_X", "4.0");
    assert_eq!(p.wheel_filename(), "zope_interface_x-4.0-py3-none-any.whl");
    assert_eq!(p.sdist_filename(), "zope_interface_x-4.0.tar.gz");
}

#[test]
fn metadata_lists_requirements_extras_and_markers() {
    let m = Package::new("beta", "2.0")
        .requires("delta")
        .requires_python(">=3.8")
        .extra("fast", &["gamma", "eps; os_name == 'posix'"])
        .metadata();
    assert_eq!(
        m,
        "Metadata-Version: 2.1\nName: beta\nVersion: 2.0\nSummary: beta test package\n\
         Requires-Python: >=3.8\nRequires-Dist: delta\nProvides-Extra: fast\n\
         Requires-Dist: gamma; extra == \"fast\"\n\
         Requires-Dist: eps; (os_name == 'posix') and extra == \"fast\"\n"
    );
}

#[test]
fn wheel_record_matches_members() {
    let p = &packages()[0];
    let bytes = p.wheel_bytes();
    assert_eq!(bytes, p.wheel_bytes(), "wheels are reproducible");
    assert_eq!(p.sdist_bytes(), p.sdist_bytes(), "sdists are reproducible");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut members = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("member");
        assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("inflate");
        members.insert(f.name().to_string(), data);
    }
    let record = String::from_utf8(members["alpha-1.0.dist-info/RECORD"].clone()).unwrap();
    let mut listed = Vec::new();
    for line in record.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 3, "{line}");
        listed.push(fields[0].to_string());
        if fields[0].ends_with("/RECORD") {
            assert_eq!((fields[1], fields[2]), ("", ""));
            continue;
        }
        let data = &members[fields[0]];
        assert_eq!(
            fields[1],
            format!("sha256={}", urlsafe_b64_nopad(&Sha256::digest(data)))
        );
        assert_eq!(fields[2], data.len().to_string());
    }
    let mut names: Vec<String> = members.keys().cloned().collect();
    names.sort();
    listed.sort();
    assert_eq!(listed, names, "RECORD lists every member");
    assert_eq!(
        String::from_utf8_lossy(&members["alpha-1.0.dist-info/entry_points.txt"]),
        "[console_scripts]\nalpha = alpha:main\n\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&members["alpha-1.0.dist-info/top_level.txt"]),
        "alpha\n"
    );
    assert!(
        String::from_utf8_lossy(&members["alpha-1.0.dist-info/WHEEL"])
            .contains("Tag: py3-none-any\n")
    );
}

#[test]
fn malicious_member_is_in_the_wheel() {
    let bytes = Package::new("evil", "1.0")
        .malicious_member("../escape.txt")
        .wheel_bytes();
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    assert!(zip.file_names().any(|n| n == "../escape.txt"));
}

/// Python's zipfile, a real second parser, sees what the archive tricks wrote.
#[test]
fn duplicate_mismatched_and_symlink_members() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("evil-1.0-py3-none-any.whl");
    let bytes = Package::new("evil", "1.0")
        .duplicate_member("evil/__init__.py", "EVIL = 1\n")
        .mismatched_member("evil/okay.txt", "evil/oops.txt")
        .symlink_member("evil/link", "/etc/passwd")
        .wheel_bytes();
    std::fs::write(&wheel, bytes).unwrap();
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        print(z.namelist().count('evil/__init__.py'))\n\
        print(sorted({z.read(i).decode() for i in z.infolist() if i.filename == 'evil/__init__.py'}))\n\
        link = z.getinfo('evil/link')\n\
        print(oct(link.external_attr >> 16 & 0o170000), z.read(link).decode())\n\
        try:\n    z.read('evil/okay.txt')\nexcept zipfile.BadZipFile as e:\n    print('refused:', e)\n";
    let out = Command::new("python3")
        .args(["-W", "ignore", "-c", script])
        .arg(&wheel)
        .output()
        .unwrap();
    assert_ok(&out, "python zipfile");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\n['EVIL = 1\\n', '__version__ = \"1.0\"\\n']\n0o120000 /etc/passwd\n\
         refused: File name in directory 'evil/okay.txt' and header b'evil/oops.txt' differ.\n"
    );
}

#[test]
fn pip_installs_from_the_index() {
    let index = Index::serve(&packages());
    let target = tempfile::tempdir().unwrap();
    let t = target.path().to_str().unwrap();
    let out = pip(&[
        "install",
        "--no-cache-dir",
        "--index-url",
        &index.url(),
        "--target",
        t,
        "alpha",
        "gamma",
        "delta",
    ]);
    assert_ok(&out, "pip install");
    // beta 3.0 is yanked, so pip takes 2.0; delta came from its sdist, built offline.
    assert!(target.path().join("beta-2.0.dist-info").is_dir());
    assert!(!target.path().join("beta-3.0.dist-info").exists());
    assert!(target.path().join("delta-1.0.dist-info").is_dir());
    let run = Command::new("python3")
        .args([
            "-c",
            "import alpha, beta, delta; print(alpha.X, beta.__version__, delta.hello())",
        ])
        .env("PYTHONPATH", t)
        .output()
        .unwrap();
    assert_ok(&run, "import");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "1 2.0 delta\n");
    let script = Command::new("python3")
        .arg(target.path().join("bin/alpha"))
        .env("PYTHONPATH", t)
        .output()
        .unwrap();
    assert_ok(&script, "bin/alpha");
    assert_eq!(String::from_utf8_lossy(&script.stdout), "alpha 1\n");
    let requests = index.requests();
    for page in [
        "/simple/alpha/",
        "/simple/beta/",
        "/simple/gamma/",
        "/simple/delta/",
    ] {
        assert!(requests.iter().any(|r| r == page), "{page} in {requests:?}");
    }
    assert!(
        requests
            .iter()
            .any(|r| r == "/files/beta-2.0-py3-none-any.whl")
    );
    assert!(requests.iter().any(|r| r == "/files/delta-1.0.tar.gz"));
    index.clear_requests();
    assert!(index.requests().is_empty());
}

#[test]
fn sdist_builds_offline_without_build_isolation() {
    let index = Index::serve(&packages());
    let sdist = index.files_dir().join("delta-1.0.tar.gz");
    let out_dir = tempfile::tempdir().unwrap();
    let out = pip(&[
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        out_dir.path().to_str().unwrap(),
        sdist.to_str().unwrap(),
    ]);
    assert_ok(&out, "pip wheel");
    let built = out_dir.path().join("delta-1.0-py3-none-any.whl");
    let zip = zip::ZipArchive::new(std::fs::File::open(&built).unwrap()).expect("a wheel");
    let mut names: Vec<&str> = zip.file_names().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "delta-1.0.dist-info/METADATA",
            "delta-1.0.dist-info/RECORD",
            "delta-1.0.dist-info/WHEEL",
            "delta-1.0.dist-info/entry_points.txt",
            "delta-1.0.dist-info/top_level.txt",
            "delta.py",
        ]
    );
}

#[test]
fn json_api_pages() {
    let pkgs = packages();
    let index = Index::serve(&pkgs);
    let root = get(&index, "/simple/", Some(JSON));
    assert_eq!(root.status, 200);
    assert_eq!(root.header("content-type"), Some(JSON));
    let root = root.json();
    assert_eq!(root["meta"]["api-version"], "1.0");
    let names: Vec<&str> = root["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "alpha",
            "beta",
            "delta",
            "evil",
            "gamma",
            "zope-interface-x"
        ]
    );

    let page = get(&index, "/simple/beta/", Some(PIP_ACCEPT));
    assert_eq!(page.header("content-type"), Some(JSON));
    let page = page.json();
    assert_eq!(page["meta"]["api-version"], "1.0");
    assert_eq!(page["name"], "beta");
    let files = page["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let wheel = pkgs[1].wheel_bytes();
    let metadata = pkgs[1].metadata();
    assert_eq!(
        files[0],
        serde_json::json!({
            "filename": "beta-2.0-py3-none-any.whl",
            "url": index.file_url("beta-2.0-py3-none-any.whl"),
            "hashes": { "sha256": sha(&wheel) },
            "requires-python": ">=3.8",
            "yanked": false,
            "core-metadata": { "sha256": sha(metadata.as_bytes()) },
            "dist-info-metadata": { "sha256": sha(metadata.as_bytes()) },
        })
    );
    assert_eq!(files[1]["yanked"], true);
    assert!(files[1].get("requires-python").is_none());

    let delta = get(&index, "/simple/delta/", Some(JSON)).json();
    assert_eq!(delta["files"][0]["filename"], "delta-1.0.tar.gz");
    assert_eq!(delta["files"][0]["core-metadata"], false);

    // The file and its metadata are what the page says.
    let file = get(&index, "/files/beta-2.0-py3-none-any.whl", None);
    assert_eq!(file.status, 200);
    assert_eq!(file.body, wheel);
    let meta = get(&index, "/files/beta-2.0-py3-none-any.whl.metadata", None);
    assert_eq!(meta.text(), metadata);
    assert_eq!(
        get(&index, "/files/delta-1.0.tar.gz.metadata", None).status,
        404
    );
    // The query parameter overrides the header.
    let q = get(
        &index,
        "/simple/beta/?format=application/vnd.pypi.simple.v1%2Bjson",
        Some("text/html"),
    );
    assert_eq!(q.header("content-type"), Some(JSON));
}

#[test]
fn html_pages() {
    let pkgs = packages();
    let index = Index::serve(&pkgs);
    let root = get(&index, "/simple/", None);
    assert_eq!(root.status, 200);
    assert_eq!(
        root.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        root.text()
            .contains("<a href=\"zope-interface-x/\">zope-interface-x</a>")
    );

    // HTML wins when the client prefers it, or names only wildcards.
    for accept in [
        None,
        Some("*/*"),
        Some("text/html"),
        Some("application/vnd.pypi.simple.v1+json; q=0.5, text/html"),
    ] {
        let page = get(&index, "/simple/beta/", accept);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{accept:?}"
        );
    }
    let page = get(
        &index,
        "/simple/beta/",
        Some("application/vnd.pypi.simple.v1+html"),
    );
    assert_eq!(
        page.header("content-type"),
        Some("application/vnd.pypi.simple.v1+html")
    );
    let html = page.text();
    let wheel_sha = sha(&pkgs[1].wheel_bytes());
    let meta_sha = sha(pkgs[1].metadata().as_bytes());
    assert!(
        html.contains(&format!(
            "<a href=\"../../files/beta-2.0-py3-none-any.whl#sha256={wheel_sha}\" \
         data-requires-python=\"&gt;=3.8\" data-core-metadata=\"sha256={meta_sha}\" \
         data-dist-info-metadata=\"sha256={meta_sha}\">beta-2.0-py3-none-any.whl</a>"
        )),
        "{html}"
    );
    assert!(html.contains("beta-3.0-py3-none-any.whl#sha256="));
    assert!(html.contains(" data-yanked=\"\""));
    let zope = get(&index, "/simple/zope-interface-x/", None).text();
    let sdist_line = zope
        .lines()
        .find(|l| l.contains(".tar.gz"))
        .expect("the sdist is listed");
    assert!(!sdist_line.contains("data-core-metadata"), "{sdist_line}");

    let yanked = Index::serve(&[Package::new("x", "1").yanked_because("bad <build>")]);
    assert!(
        get(&yanked, "/simple/x/", None)
            .text()
            .contains("data-yanked=\"bad &lt;build&gt;\"")
    );
    let yanked_json = get(&yanked, "/simple/x/", Some(JSON)).json();
    assert_eq!(yanked_json["files"][0]["yanked"], "bad <build>");
}

#[test]
fn redirects_not_found_and_head() {
    let index = Index::serve(&packages());
    let moved = get(&index, "/simple/Zope_Interface.X/", None);
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/simple/zope-interface-x/"));
    let moved = get(&index, "/simple/alpha", None);
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/simple/alpha/"));
    assert_eq!(get(&index, "/simple/nothere/", None).status, 404);
    assert_eq!(get(&index, "/files/nothere.whl", None).status, 404);
    assert_eq!(get(&index, "/elsewhere", None).status, 404);
    assert_eq!(request(&index, "POST", "/simple/", None).status, 405);

    let full = get(&index, "/files/alpha-1.0-py3-none-any.whl", None);
    let head = request(&index, "HEAD", "/files/alpha-1.0-py3-none-any.whl", None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );
    assert_eq!(
        index.requests(),
        [
            "/simple/Zope_Interface.X/",
            "/simple/alpha",
            "/simple/nothere/",
            "/files/nothere.whl",
            "/elsewhere",
            "/simple/",
            "/files/alpha-1.0-py3-none-any.whl",
            "/files/alpha-1.0-py3-none-any.whl",
        ]
    );
    // find-links folder: the wheels and sdists, not the metadata files.
    let mut listed: Vec<String> = std::fs::read_dir(index.files_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "alpha-1.0-py3-none-any.whl",
            "beta-2.0-py3-none-any.whl",
            "beta-3.0-py3-none-any.whl",
            "delta-1.0.tar.gz",
            "evil-1.0-py3-none-any.whl",
            "gamma-1.0-py3-none-any.whl",
            "zope_interface_x-4.0-py3-none-any.whl",
            "zope_interface_x-4.0.tar.gz",
        ]
    );
}

#[test]
fn faults() {
    let pkgs = packages();
    let index = Index::serve(&pkgs);
    let wheel = pkgs[0].wheel_bytes();

    index.set_fault(Fault::Status500);
    assert_eq!(get(&index, "/simple/alpha/", None).status, 500);
    assert_eq!(
        get(&index, "/files/alpha-1.0-py3-none-any.whl", None).status,
        500
    );

    index.set_fault(Fault::Garbage);
    let page = get(&index, "/simple/alpha/", Some(JSON));
    assert_eq!(page.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&page.body).is_err());
    assert!(
        !get(&index, "/simple/alpha/", None)
            .text()
            .contains("alpha-1.0")
    );
    assert_eq!(
        get(&index, "/files/alpha-1.0-py3-none-any.whl", None).body,
        wheel
    );

    index.set_fault(Fault::Truncate);
    let cut = get(&index, "/files/alpha-1.0-py3-none-any.whl", None);
    assert_eq!(
        cut.header("content-length"),
        Some(wheel.len().to_string().as_str())
    );
    assert_eq!(cut.body, wheel[..wheel.len() / 2]);
    let meta = get(&index, "/files/alpha-1.0-py3-none-any.whl.metadata", None);
    assert_eq!(meta.text(), pkgs[0].metadata());

    index.set_fault(Fault::WrongHash);
    let json = get(&index, "/simple/alpha/", Some(JSON)).json();
    let advertised = json["files"][0]["hashes"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(advertised.len(), 64);
    assert_ne!(advertised, sha(&wheel));
    let html = get(&index, "/simple/alpha/", None).text();
    assert!(html.contains(&format!("#sha256={advertised}")));
    assert_eq!(
        get(&index, "/files/alpha-1.0-py3-none-any.whl", None).body,
        wheel
    );

    index.set_fault(Fault::None);
    let json = get(&index, "/simple/alpha/", Some(JSON)).json();
    assert_eq!(json["files"][0]["hashes"]["sha256"], sha(&wheel));
}

#[test]
fn client_disconnects_and_drop() {
    let index = Index::serve(&packages());
    let port = index.port();
    // A client that closes before sending anything, and one that sends half a request.
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"GET /simple/al").unwrap();
    drop(half);
    // A client that leaves while a file is being written.
    let mut leaver = TcpStream::connect(("127.0.0.1", port)).unwrap();
    leaver
        .write_all(b"GET /files/alpha-1.0-py3-none-any.whl HTTP/1.1\r\n\r\n")
        .unwrap();
    drop(leaver);
    assert_eq!(get(&index, "/simple/alpha/", None).status, 200);
    drop(index);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server stopped"
    );
}
