//! The index server: the simple API (PEP 503 HTML, PEP 691 JSON, PEP 658 metadata) over
//! HTTP/1.1 on 127.0.0.1, with the faults, authentication and stalls the tests ask for.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::builder::Package;
use super::encoders::{base64, hex, html_escape, normalize, percent_decode};

/// How the server misbehaves for the following requests (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Every request: `500 Internal Server Error`.
    Status500,
    /// `/simple/` pages: `200` with a body that is neither HTML nor JSON.
    Garbage,
    /// Wheel and sdist downloads: the full `Content-Length`, half of the bytes.
    Truncate,
    /// Pages advertise a wrong sha256 for wheels and sdists.
    WrongHash,
}

/// One file on the index.
struct FileEntry {
    filename: String,
    sha256: String,
    requires_python: Option<String>,
    yanked: Option<String>,
    /// The sha256 of the `.metadata` file, for wheels.
    metadata_sha256: Option<String>,
}

struct Project {
    files: Vec<FileEntry>,
}

/// What the server threads share with the [`Index`].
struct Shared {
    base: String,
    projects: BTreeMap<String, Project>,
    /// File name (`x.whl`, `x.whl.metadata`, `x.tar.gz`) → bytes.
    files: BTreeMap<String, Arc<Vec<u8>>>,
    fault: Mutex<Fault>,
    requests: Mutex<Vec<String>>,
    /// The `Authorization` header every request must carry, if any.
    auth: Mutex<Option<String>>,
    /// The `Authorization` header of every request seen, with its target.
    authorizations: Mutex<Vec<(String, Option<String>)>>,
    /// Where the project pages say the files are, instead of this server's `/files/`.
    files_base: Mutex<Option<String>>,
    /// A file whose downloads wait while this is set.
    stalled: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// A package index serving built distributions on 127.0.0.1 until dropped.
pub struct Index {
    shared: Arc<Shared>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    server: Option<JoinHandle<()>>,
}

impl Index {
    /// Builds every package's files into a temporary folder and serves them.
    pub fn serve(packages: &[Package]) -> Index {
        let dir = tempfile::tempdir().expect("temp dir for the index files");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let base = format!("http://{addr}");

        let mut projects: BTreeMap<String, Project> = BTreeMap::new();
        let mut files = BTreeMap::new();
        for package in packages {
            let metadata = package.metadata().into_bytes();
            let metadata_sha = hex(&Sha256::digest(&metadata));
            let project = projects
                .entry(package.normalized_name())
                .or_insert_with(|| Project { files: Vec::new() });
            for (filename, bytes, is_wheel) in package.built_files() {
                let path = dir.path().join(&filename);
                std::fs::write(&path, &bytes)
                    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
                project.files.push(FileEntry {
                    filename: filename.clone(),
                    sha256: hex(&Sha256::digest(&bytes)),
                    requires_python: package.declared_requires_python().map(str::to_owned),
                    yanked: package.yank_reason().map(str::to_owned),
                    metadata_sha256: is_wheel.then(|| metadata_sha.clone()),
                });
                if is_wheel {
                    files.insert(format!("{filename}.metadata"), Arc::new(metadata.clone()));
                }
                files.insert(filename, Arc::new(bytes));
            }
        }

        let shared = Arc::new(Shared {
            base,
            projects,
            files,
            fault: Mutex::new(Fault::None),
            requests: Mutex::new(Vec::new()),
            auth: Mutex::new(None),
            authorizations: Mutex::new(Vec::new()),
            files_base: Mutex::new(None),
            stalled: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let server_shared = Arc::clone(&shared);
        let server = std::thread::Builder::new()
            .name("pyindex".into())
            .spawn(move || accept_loop(&listener, &server_shared))
            .expect("spawn the index server thread");
        Index {
            shared,
            addr,
            dir,
            server: Some(server),
        }
    }

    /// The simple API root, `http://127.0.0.1:PORT/simple/`.
    pub fn url(&self) -> String {
        format!("{}/simple/", self.shared.base)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// The URL a file is downloaded from, `http://127.0.0.1:PORT/files/<filename>`.
    pub fn file_url(&self, filename: &str) -> String {
        format!("{}/files/{filename}", self.shared.base)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The folder holding the built wheels and sdists (a find-links folder).
    pub fn files_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every request target seen so far (path and query), in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Sets how the following requests are answered.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// Requires HTTP Basic auth as `user`:`password` on every following request: one
    /// without it (or with other credentials) gets `401` and `WWW-Authenticate`.
    pub fn require_auth(&self, user: &str, password: &str) {
        let token = base64(format!("{user}:{password}").as_bytes());
        *lock(&self.shared.auth) = Some(format!("Basic {token}"));
    }

    /// The `Authorization` header (if any) of every request seen so far, with its target.
    pub fn authorizations(&self) -> Vec<(String, Option<String>)> {
        lock(&self.shared.authorizations).clone()
    }

    /// Makes the project pages link the files at `base` (`http://host:port`, serving
    /// `/files/<file>`) instead of this server, e.g. another [`Index`] of the same packages.
    pub fn set_files_base(&self, base: Option<&str>) {
        *lock(&self.shared.files_base) = base.map(str::to_string);
    }

    /// Makes downloads of `filename` wait (up to a minute) until this is called again with
    /// `None`.
    pub fn stall_file(&self, filename: Option<&str>) {
        *lock(&self.shared.stalled) = filename.map(str::to_string);
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// Locks, ignoring poisoning: the data (a fault, a list of strings) is valid whatever panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(shared);
        // A connection that cannot get a thread is dropped; the client sees a reset.
        let _ = std::thread::Builder::new()
            .name("pyindex-conn".into())
            .spawn(move || {
                let _ = handle(stream, &shared);
            });
    }
}

/// A parsed request: only what the routes need.
struct Request {
    method: String,
    target: String,
    accept: Option<String>,
    authorization: Option<String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream.take(64 * 1024));
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        accept: None,
        authorization: None,
    };
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((key, value)) = header.split_once(':')
            && key.trim().eq_ignore_ascii_case("authorization")
        {
            request.authorization = Some(value.trim().to_string());
        } else if let Some((key, value)) = header.split_once(':')
            && key.trim().eq_ignore_ascii_case("accept")
        {
            let value = value.trim();
            request.accept = Some(match request.accept.take() {
                Some(prev) => format!("{prev}, {value}"),
                None => value.to_string(),
            });
        }
    }
    Ok(Some(request))
}

/// One response, before faults that cut the body.
struct Response {
    status: u16,
    content_type: &'static str,
    location: Option<String>,
    body: Arc<Vec<u8>>,
    /// Whether this is a wheel or sdist download (for [`Fault::Truncate`]).
    is_file: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            location: None,
            body: Arc::new(body.as_bytes().to_vec()),
            is_file: false,
        }
    }

    fn redirect(location: String) -> Response {
        Response {
            location: Some(location),
            ..Response::text(301, "moved\n")
        }
    }
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let Some(request) = read_request(&stream)? else {
        return Ok(());
    };
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    lock(&shared.requests).push(request.target.clone());
    lock(&shared.authorizations).push((request.target.clone(), request.authorization.clone()));
    let fault = *lock(&shared.fault);
    let head = request.method == "HEAD";
    let want = lock(&shared.auth).clone();
    if let Some(file) = request.target.strip_prefix("/files/") {
        let started = std::time::Instant::now();
        while lock(&shared.stalled).as_deref() == Some(file)
            && started.elapsed() < Duration::from_secs(60)
            && !shared.stop.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let response = if want.is_some() && request.authorization != want {
        Response::text(401, "credentials needed\n")
    } else if fault == Fault::Status500 {
        Response::text(500, "internal server error (fault injected by the test)\n")
    } else if request.method != "GET" && !head {
        Response::text(405, "only GET and HEAD\n")
    } else {
        route(&request, shared, fault)
    };
    write_response(&mut stream, &response, head, fault == Fault::Truncate)
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head: bool,
    truncate: bool,
) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        301 => "Moved Permanently",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nVary: Accept\r\nConnection: close\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if let Some(location) = &response.location {
        let _ = write!(out, "Location: {location}\r\n");
    }
    if response.status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    if response.status == 401 {
        out.push_str("WWW-Authenticate: Basic realm=\"pyindex\"\r\n");
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if !head {
        let body = if truncate && response.is_file {
            &response.body[..response.body.len() / 2]
        } else {
            &response.body[..]
        };
        stream.write_all(body)?;
    }
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// The negotiated format of a `/simple/` page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Json,
    Html,
    /// HTML, asked for as `application/vnd.pypi.simple.v1+html`.
    PypiHtml,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/vnd.pypi.simple.v1+json",
            Format::Html => "text/html; charset=utf-8",
            Format::PypiHtml => "application/vnd.pypi.simple.v1+html",
        }
    }
}

/// Chooses JSON or HTML from the `Accept` header (see the module docs).
fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Html;
    };
    let (mut json, mut html, mut pypi_html) = (0.0f32, 0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut params = item.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => {
                json = json.max(q)
            }
            "application/vnd.pypi.simple.v1+html" | "application/vnd.pypi.simple.latest+html" => {
                pypi_html = pypi_html.max(q)
            }
            "text/html" | "text/*" | "*/*" => html = html.max(q),
            _ => {}
        }
    }
    if json > 0.0 && json >= html && json >= pypi_html {
        Format::Json
    } else if pypi_html > 0.0 && pypi_html >= html {
        Format::PypiHtml
    } else {
        Format::Html
    }
}

fn route(request: &Request, shared: &Shared, fault: Fault) -> Response {
    let (path, query) = match request.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (request.target.as_str(), None),
    };
    let path = percent_decode(path);
    let format = query
        .and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("format="))
                .map(|f| negotiate(Some(&percent_decode(f))))
        })
        .unwrap_or_else(|| negotiate(request.accept.as_deref()));

    if let Some(filename) = path.strip_prefix("/files/") {
        return match shared.files.get(filename) {
            Some(bytes) => Response {
                status: 200,
                content_type: if filename.ends_with(".metadata") {
                    "text/plain; charset=utf-8"
                } else {
                    "application/octet-stream"
                },
                location: None,
                body: Arc::clone(bytes),
                is_file: !filename.ends_with(".metadata"),
            },
            None => Response::text(404, "no such file\n"),
        };
    }
    let Some(rest) = path.strip_prefix("/simple") else {
        return Response::text(404, "not found\n");
    };
    let page = |body: String| Response {
        status: 200,
        content_type: format.content_type(),
        location: None,
        body: Arc::new(if fault == Fault::Garbage {
            b"\x00\xff<html><a href=\"{[ not an index \xfe\x00".to_vec()
        } else {
            body.into_bytes()
        }),
        is_file: false,
    };
    if rest.is_empty() {
        return Response::redirect("/simple/".to_string());
    }
    if rest == "/" {
        return page(root_page(shared, format));
    }
    let name = rest.trim_start_matches('/');
    let (name, slash) = match name.strip_suffix('/') {
        Some(n) => (n, true),
        None => (name, false),
    };
    if name.is_empty() || name.contains('/') {
        return Response::text(404, "not found\n");
    }
    let Some(normalized) = normalize(name) else {
        return Response::text(404, "no such project\n");
    };
    let Some(project) = shared.projects.get(&normalized) else {
        return Response::text(404, "no such project\n");
    };
    if normalized != name || !slash {
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        return Response::redirect(format!("/simple/{normalized}/{query}"));
    }
    page(project_page(shared, &normalized, project, format, fault))
}

fn root_page(shared: &Shared, format: Format) -> String {
    if format == Format::Json {
        let projects: Vec<serde_json::Value> = shared
            .projects
            .keys()
            .map(|name| serde_json::json!({ "name": name }))
            .collect();
        return serde_json::json!({ "meta": { "api-version": "1.0" }, "projects": projects })
            .to_string();
    }
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
    );
    for name in shared.projects.keys() {
        let _ = writeln!(html, "    <a href=\"{name}/\">{name}</a>");
    }
    html.push_str("  </body>\n</html>\n");
    html
}

/// The sha256 a page advertises for a file, wrong under [`Fault::WrongHash`].
fn advertised(file: &FileEntry, fault: Fault) -> String {
    if fault == Fault::WrongHash {
        hex(&Sha256::digest(format!("not {}", file.filename)))
    } else {
        file.sha256.clone()
    }
}

fn project_page(
    shared: &Shared,
    name: &str,
    project: &Project,
    format: Format,
    fault: Fault,
) -> String {
    if format == Format::Json {
        let files: Vec<serde_json::Value> = project
            .files
            .iter()
            .map(|f| {
                let mut o = serde_json::Map::new();
                o.insert("filename".into(), f.filename.clone().into());
                o.insert(
                    "url".into(),
                    format!("{}/files/{}", files_base(shared), f.filename).into(),
                );
                o.insert(
                    "hashes".into(),
                    serde_json::json!({ "sha256": advertised(f, fault) }),
                );
                if let Some(rp) = &f.requires_python {
                    o.insert("requires-python".into(), rp.clone().into());
                }
                let yanked = match &f.yanked {
                    None => serde_json::Value::Bool(false),
                    Some(reason) if reason.is_empty() => serde_json::Value::Bool(true),
                    Some(reason) => reason.clone().into(),
                };
                o.insert("yanked".into(), yanked);
                let metadata = match &f.metadata_sha256 {
                    Some(sha) => serde_json::json!({ "sha256": sha }),
                    None => serde_json::Value::Bool(false),
                };
                o.insert("core-metadata".into(), metadata.clone());
                o.insert("dist-info-metadata".into(), metadata);
                serde_json::Value::Object(o)
            })
            .collect();
        return serde_json::json!({
            "meta": { "api-version": "1.0" },
            "name": name,
            "files": files,
        })
        .to_string();
    }
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n"
    );
    for f in &project.files {
        let prefix = match lock(&shared.files_base).as_ref() {
            Some(base) => format!("{base}/files/"),
            None => "../../files/".to_string(),
        };
        let _ = write!(
            html,
            "    <a href=\"{prefix}{}#sha256={}\"",
            f.filename,
            advertised(f, fault)
        );
        if let Some(rp) = &f.requires_python {
            let _ = write!(html, " data-requires-python=\"{}\"", html_escape(rp));
        }
        if let Some(reason) = &f.yanked {
            let _ = write!(html, " data-yanked=\"{}\"", html_escape(reason));
        }
        if let Some(sha) = &f.metadata_sha256 {
            let _ = write!(
                html,
                " data-core-metadata=\"sha256={sha}\" data-dist-info-metadata=\"sha256={sha}\""
            );
        }
        let _ = writeln!(html, ">{}</a><br/>", f.filename);
    }
    html.push_str("  </body>\n</html>\n");
    html
}

/// Where the pages say the files are.
fn files_base(shared: &Shared) -> String {
    lock(&shared.files_base)
        .clone()
        .unwrap_or_else(|| shared.base.clone())
}
