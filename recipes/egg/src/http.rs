//! HTTP: pooled agents, the one for `https:` trusting the system's certificates (or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR`, read only when it is first needed), proxies from the
//! environment, retries on server errors and broken transfers, an HTTP cache of index pages.
//! `file:` URLs are read from disk.
//!
//! Against a hostile index: credentials (`user:pw@` in a configured URL) are taken out of
//! every URL before it is requested, shown or stored, and sent as Basic auth only to the
//! origin they were given for; redirects are followed here, one hop at a time, so none
//! leads from `https:` to `http:` (unless `allow-insecure`) or anywhere but `http(s):`;
//! every request has connect and per-read timeouts (`RBUILDOUT_HTTP_TIMEOUT`) and is not
//! retried after one; bodies read into memory stop at `RBUILDOUT_MAX_PAGE_SIZE`.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use rbuildout_plugin_api::{Error, Result};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Attempts per request (the first plus retries) for 5xx answers and transport errors.
const ATTEMPTS: u32 = 3;
/// Largest file downloaded (wheels of some scientific packages pass 1 GB); streamed to disk.
const MAX_BODY: u64 = 4 << 30;
/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 10;
/// Default of `RBUILDOUT_HTTP_TIMEOUT`, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 30;
/// Default of `RBUILDOUT_MAX_PAGE_SIZE`: index pages, `.metadata` files, find-links pages.
pub const DEFAULT_MAX_PAGE: u64 = 64 << 20;

/// How the client behaves: its limits and what it trusts.
pub struct Config {
    /// Connect and per-read timeout; a request that times out is not tried again.
    pub timeout: Duration,
    /// Largest body read into memory.
    pub max_page: u64,
    /// Basic auth per origin, from the configured URLs.
    pub credentials: Vec<Credential>,
    /// Whether an `https:` page may link or redirect to `http:`.
    pub allow_insecure: bool,
}

impl Config {
    /// The limits from `RBUILDOUT_HTTP_TIMEOUT` (seconds) and `RBUILDOUT_MAX_PAGE_SIZE`
    /// (bytes, or with a `K`/`M`/`G` suffix), else their defaults.
    pub fn from_env(credentials: Vec<Credential>, allow_insecure: bool) -> Result<Config> {
        let timeout = match std::env::var("RBUILDOUT_HTTP_TIMEOUT") {
            Ok(v) if !v.trim().is_empty() => {
                let secs = v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                    .ok_or_else(|| {
                        Error::new(format!(
                            "RBUILDOUT_HTTP_TIMEOUT={v:?} is not a number of seconds; \
                             set it to a positive number such as 30"
                        ))
                    })?;
                Duration::from_secs_f64(secs)
            }
            _ => Duration::from_secs(DEFAULT_TIMEOUT),
        };
        let max_page = match std::env::var("RBUILDOUT_MAX_PAGE_SIZE") {
            Ok(v) if !v.trim().is_empty() => {
                rbuildout_plugin_api::parse_size(&v).ok_or_else(|| {
                    Error::new(format!(
                        "RBUILDOUT_MAX_PAGE_SIZE={v:?} is not a size; set it to bytes or a size \
                     such as 64M"
                    ))
                })?
            }
            _ => DEFAULT_MAX_PAGE,
        };
        Ok(Config {
            timeout,
            max_page,
            credentials,
            allow_insecure,
        })
    }
}

/// Basic auth for one origin (`scheme://host:port`), taken from a configured URL.
#[derive(Clone)]
pub struct Credential {
    origin: String,
    header: String,
}

/// The origin of `url` (`http://host:port`, default ports filled in), if it has one.
fn origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let port = u.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", u.scheme()))
}

/// `url` without its userinfo (`user:pw@`), and the credential it carried for its origin.
/// What is left is what may be shown, logged and stored.
pub fn split_userinfo(url: &str) -> (String, Option<Credential>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_owned(), None);
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let userinfo = &rest[..at];
    let bare = format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]);
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let pair = format!("{}:{}", percent_decode(user), percent_decode(password));
    let credential = origin(&bare).map(|origin| Credential {
        origin,
        header: format!("Basic {}", data_encoding::BASE64.encode(pair.as_bytes())),
    });
    (bare, credential)
}

/// Whether a link or redirect from `from` to `to` may be followed: a remote page or answer
/// leads only to `http(s):`, and an `https:` one not to `http:` unless `allow_insecure`.
/// A local page (`file:`, a find-links file the user gave) may name anything.
pub fn check_hop(from: &str, to: &str, allow_insecure: bool) -> std::result::Result<(), String> {
    let scheme = |u: &str| {
        u.split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let (from_s, to_s) = (scheme(from), scheme(to));
    if from_s != "http" && from_s != "https" {
        return Ok(());
    }
    match to_s.as_str() {
        "https" => Ok(()),
        "http" if from_s == "http" || allow_insecure => Ok(()),
        "http" => Err(format!(
            "it leads from https to plain http ({to}); set `allow-insecure = true` in the part \
             (or [buildout]) to allow that"
        )),
        "file" => Err(format!(
            "it leads to a local file ({to}); only a local find-links page may do that"
        )),
        _ => Err(format!("it leads to {to}, which is not an http(s) URL")),
    }
}

pub struct Client {
    /// For `https:` URLs: trusts the configured roots, read at its first use (reading
    /// `SSL_CERT_DIR` can take tens of milliseconds).
    tls: std::sync::OnceLock<ureq::Agent>,
    /// For `http:` URLs: reads no certificates.
    plain: ureq::Agent,
    /// Where index pages are cached, if anywhere.
    pages: Option<PageCache>,
    config: Config,
}

/// The HTTP cache of index pages: `<dir>/<aa>/<sha256 of accept + url>`, one file holding a
/// JSON line (validators, when stored, for how long fresh) and then the body. A fresh entry
/// is used without asking; a stale one is revalidated with `If-None-Match` /
/// `If-Modified-Since` (a `304` renews it). `refresh` (`-n`) always asks the server.
pub struct PageCache {
    pub dir: std::path::PathBuf,
    pub refresh: bool,
}

/// The head line of a page cache entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    url: String,
    final_url: String,
    content_type: String,
    etag: Option<String>,
    last_modified: Option<String>,
    /// Unix seconds when the answer was generated (now less its `Age`).
    date: u64,
    /// Seconds fresh from `date` (`max-age`); `None` revalidates every time.
    max_age: Option<u64>,
    /// The body's length: a torn file is not an entry.
    len: usize,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `max-age` of a `Cache-Control` value; `Err(())` for `no-store` (do not keep it), `Ok(None)`
/// for `no-cache` or no `max-age` (keep it, revalidate before each use).
fn freshness(cache_control: &str) -> std::result::Result<Option<u64>, ()> {
    let mut max_age = None;
    let mut no_cache = false;
    for d in cache_control.split(',') {
        let d = d.trim().to_ascii_lowercase();
        if d == "no-store" {
            return Err(());
        }
        if d == "no-cache" || d.starts_with("no-cache=") {
            no_cache = true;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    Ok(if no_cache { None } else { max_age })
}

fn read_entry(path: &std::path::Path) -> Option<(Entry, Vec<u8>)> {
    let bytes = std::fs::read(path).ok()?;
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let entry: Entry = serde_json::from_slice(&bytes[..nl]).ok()?;
    let body = bytes[nl + 1..].to_vec();
    (body.len() == entry.len).then_some((entry, body))
}

fn write_entry(path: &std::path::Path, entry: &Entry, body: &[u8]) {
    let Ok(mut bytes) = serde_json::to_vec(entry) else {
        return;
    };
    bytes.push(b'\n');
    bytes.extend_from_slice(body);
    // Best effort: a cache that cannot be written only costs a request next time. Not
    // synced: a torn entry fails the length check and is fetched again.
    let _ = crate::util::write_atomic_unsynced(path, &bytes);
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A successful answer.
pub struct Answer {
    pub body: Vec<u8>,
    pub content_type: String,
    /// Where the body came from, after redirects (for relative links).
    pub url: String,
}

/// The certificates named by `SSL_CERT_FILE` and the PEM files in `SSL_CERT_DIR`, if set.
fn env_roots() -> Result<Option<Vec<Certificate<'static>>>> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        files.push(std::path::PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        for dir in std::env::split_paths(&d) {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
                names.sort();
                files.extend(names.into_iter().filter(|p| p.is_file()));
            }
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut certs = Vec::new();
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        for item in ureq::tls::parse_pem(&bytes).flatten() {
            if let PemItem::Certificate(c) = item {
                certs.push(c);
            }
        }
    }
    if certs.is_empty() {
        return Ok(None);
    }
    Ok(Some(certs))
}

/// An agent with `tls` that follows no redirect itself (see [`Client::call`]).
fn agent(tls: TlsConfig, timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(ureq::Proxy::try_from_env())
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .timeout_global(Some(Duration::from_secs(600).max(timeout)))
        .user_agent(concat!("rbuildout-egg/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The error for an answer that is not a success.
fn status_error(url: &str, status: u16) -> Error {
    let hint = match status {
        401 | 403 => {
            "; the server refused the credentials (or wants some): give them in the \
             URL, as https://user:password@host/…"
        }
        _ => "",
    };
    Error::new(format!("GET {url}: HTTP {status}{hint}"))
}

/// Why one exchange failed before an answer to hand on.
enum Hop {
    /// A transport error, retried unless it is a timeout.
    Transport(ureq::Error),
    /// Refused here (a redirect that may not be followed): not retried.
    Refused(Error),
}

/// Whether an I/O error is a timeout (`timeout_per_read` and friends).
fn io_timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) || e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(ureq_timed_out)
}

fn ureq_timed_out(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => io_timed_out(io),
        _ => false,
    }
}

/// What [`Client::get_typed`] hands a response to: the response, the URL asked for (without
/// credentials), its content type and the final URL.
type TypedHandler<'a, T> =
    dyn FnMut(ureq::http::Response<ureq::Body>, &str, String, &str) -> Attempt<T> + 'a;

impl Client {
    pub fn new(config: Config) -> Result<Client> {
        Ok(Client {
            tls: std::sync::OnceLock::new(),
            plain: agent(TlsConfig::default(), config.timeout),
            pages: None,
            config,
        })
    }

    fn tls(&self) -> &ureq::Agent {
        self.tls.get_or_init(|| {
            let roots = match env_roots() {
                Ok(Some(certs)) => RootCerts::Specific(Arc::new(certs)),
                _ => RootCerts::PlatformVerifier,
            };
            agent(
                TlsConfig::builder().root_certs(roots).build(),
                self.config.timeout,
            )
        })
    }

    /// The message for a timeout on `url`.
    fn timed_out(&self, url: &str) -> Error {
        Error::new(format!(
            "GET {url}: timed out after {:.0?} without an answer from the server; \
             set RBUILDOUT_HTTP_TIMEOUT (seconds) to wait longer",
            self.config.timeout
        ))
    }

    /// GETs `url` with `headers`, following redirects one hop at a time: each hop is
    /// checked with [`check_hop`], and the credentials go only to their own origin. Returns
    /// the answer and the URL it came from.
    fn call(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> std::result::Result<(ureq::http::Response<ureq::Body>, String), Hop> {
        // Callers pass URLs without userinfo; one that still has some loses it here.
        let mut current = split_userinfo(url).0;
        for _ in 0..=MAX_REDIRECTS {
            let agent = if current.starts_with("https:") {
                self.tls()
            } else {
                &self.plain
            };
            let mut req = agent.get(&current);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let here = origin(&current);
            if let Some(c) = self
                .config
                .credentials
                .iter()
                .find(|c| here.as_deref() == Some(c.origin.as_str()))
            {
                req = req.header("Authorization", &c.header);
            }
            let resp = req.call().map_err(Hop::Transport)?;
            if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok((resp, current));
            }
            let Some(location) = header(&resp, "location") else {
                return Ok((resp, current));
            };
            let next = url::Url::parse(&current)
                .and_then(|base| base.join(&location))
                .map_err(|e| {
                    Hop::Refused(Error::new(format!(
                        "GET {current}: the redirect to {:?} is not a valid URL: {e}",
                        split_userinfo(&location).0
                    )))
                })?;
            // Userinfo in a redirect is the server's, not the user's: dropped.
            let next = split_userinfo(next.as_str()).0;
            check_hop(&current, &next, self.config.allow_insecure).map_err(|why| {
                Hop::Refused(Error::new(format!(
                    "GET {current}: the redirect was refused: {why}"
                )))
            })?;
            current = next;
        }
        Err(Hop::Refused(Error::new(format!(
            "GET {}: more than {MAX_REDIRECTS} redirects",
            split_userinfo(url).0
        ))))
    }

    /// Caches index pages in `cache` (see [`PageCache`]).
    pub fn with_page_cache(mut self, cache: PageCache) -> Client {
        self.pages = Some(cache);
        self
    }

    /// Whether an `https:` page may lead to `http:`.
    pub fn allow_insecure(&self) -> bool {
        self.config.allow_insecure
    }

    /// Reads a body into memory, at most `max_page` bytes: a larger one fails (not retried),
    /// a timeout fails, another broken transfer is retried.
    /// The whole body of a page answer (at most `RBUILDOUT_MAX_PAGE_SIZE` bytes).
    fn read_page(
        &self,
        resp: &mut ureq::http::Response<ureq::Body>,
        url: &str,
    ) -> Attempt<Vec<u8>> {
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        self.read_body(&mut reader, url)
    }

    fn read_body(&self, reader: &mut dyn Read, url: &str) -> Attempt<Vec<u8>> {
        let limit = self.config.max_page;
        let mut body = Vec::new();
        match reader.take(limit.saturating_add(1)).read_to_end(&mut body) {
            Ok(_) if body.len() as u64 > limit => Attempt::Fail(Error::new(format!(
                "GET {url}: the answer is larger than {limit} bytes and was refused; \
                 set RBUILDOUT_MAX_PAGE_SIZE to allow more"
            ))),
            Ok(_) => Attempt::Done(body),
            Err(e) if io_timed_out(&e) => Attempt::Fail(self.timed_out(url)),
            Err(e) => Attempt::Retry(format!("transfer broken: {e}")),
        }
    }

    /// GETs an index page like [`get`](Client::get), through the page cache when there is
    /// one: a fresh entry answers without a request, a stale one is revalidated.
    pub fn get_page(&self, url: &str, accept: &str) -> Result<Option<Answer>> {
        let Some(cache) = self.pages.as_ref().filter(|_| !url.starts_with("file://")) else {
            return self.get(url, Some(accept));
        };
        let url = &split_userinfo(url).0;
        let key = crate::util::sha256_hex(format!("{accept}\n{url}").as_bytes());
        let path = cache.dir.join(&key[..2]).join(&key);
        let mut cached = read_entry(&path).filter(|(e, _)| e.url == *url);
        if let Some((e, body)) = &cached
            && !cache.refresh
            && e.max_age.is_some_and(|m| now().saturating_sub(e.date) < m)
        {
            return Ok(Some(Answer {
                body: body.clone(),
                content_type: e.content_type.clone(),
                url: e.final_url.clone(),
            }));
        }
        let etag = cached.as_ref().and_then(|(e, _)| e.etag.clone());
        let last_modified = cached.as_ref().and_then(|(e, _)| e.last_modified.clone());
        let mut headers = vec![("Accept", accept)];
        if let Some(t) = &etag {
            headers.push(("If-None-Match", t));
        }
        if let Some(t) = &last_modified {
            headers.push(("If-Modified-Since", t));
        }
        self.request(url, &headers, &mut |mut resp, final_url| {
            let status = resp.status().as_u16();
            let age = header(&resp, "age")
                .and_then(|a| a.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let fresh = freshness(&header(&resp, "cache-control").unwrap_or_default());
            if status == 304
                && let Some((mut e, body)) = cached.take()
            {
                // Renewed: the same body, fresh again for the new max-age.
                e.date = now().saturating_sub(age);
                if let Ok(m) = fresh {
                    e.max_age = m;
                    write_entry(&path, &e, &body);
                }
                return Attempt::Done(Answer {
                    body,
                    content_type: e.content_type,
                    url: e.final_url,
                });
            }
            let content_type = match content_type_of(url, &resp) {
                Ok(c) => c,
                Err(e) => return Attempt::Fail(e),
            };
            let (etag, last_modified) = (header(&resp, "etag"), header(&resp, "last-modified"));
            let body = match self.read_page(&mut resp, url) {
                Attempt::Done(b) => b,
                Attempt::Retry(why) => return Attempt::Retry(why),
                Attempt::Fail(e) => return Attempt::Fail(e),
            };
            if let Ok(max_age) = fresh
                && (max_age.is_some() || etag.is_some() || last_modified.is_some())
            {
                let entry = Entry {
                    url: url.to_owned(),
                    final_url: final_url.to_owned(),
                    content_type: content_type.clone(),
                    etag,
                    last_modified,
                    date: now().saturating_sub(age),
                    max_age,
                    len: body.len(),
                };
                write_entry(&path, &entry, &body);
            }
            Attempt::Done(Answer {
                body,
                content_type,
                url: final_url.to_owned(),
            })
        })
    }

    /// GETs `url` (with `accept` if given) into memory, at most `RBUILDOUT_MAX_PAGE_SIZE`
    /// bytes. `Ok(None)` for 404/410; other failures are errors naming the URL, after
    /// retries for 5xx and transport errors.
    pub fn get(&self, url: &str, accept: Option<&str>) -> Result<Option<Answer>> {
        if url.starts_with("file://") {
            return get_file(url);
        }
        self.get_typed(
            url,
            accept,
            &mut |mut resp, url, content_type, final_url| {
                self.read_page(&mut resp, url).map(|body| Answer {
                    body,
                    content_type,
                    url: final_url.to_owned(),
                })
            },
        )
    }

    /// GETs `url` and hands the body (read as it arrives) to `consume` with the content
    /// type, the final URL and the `Content-Length` if any. A body that breaks off is
    /// retried like a 5xx: `consume` must start afresh on each call.
    pub fn get_with<T>(
        &self,
        url: &str,
        accept: Option<&str>,
        consume: &mut Consume<'_, T>,
    ) -> Result<Option<T>> {
        self.get_typed(
            url,
            accept,
            &mut |mut resp, url, content_type, final_url| {
                let length = header(&resp, "content-length").and_then(|v| v.trim().parse().ok());
                let mut reader = resp.body_mut().with_config().limit(MAX_BODY).reader();
                match consume(&mut reader, &content_type, final_url, length) {
                    Ok(v) => Attempt::Done(v),
                    Err(e) if io_timed_out(&e) => Attempt::Fail(self.timed_out(url)),
                    Err(e) => Attempt::Retry(format!("transfer broken: {e}")),
                }
            },
        )
    }

    /// GETs `url` (credentials taken out, with `accept` if given) and hands `handle` the
    /// response, that URL, the content type it checked and the final URL.
    fn get_typed<T>(
        &self,
        url: &str,
        accept: Option<&str>,
        handle: &mut TypedHandler<'_, T>,
    ) -> Result<Option<T>> {
        let url = &split_userinfo(url).0;
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        self.request(
            url,
            &headers,
            &mut |resp, final_url| match content_type_of(url, &resp) {
                Ok(content_type) => handle(resp, url, content_type, final_url),
                Err(e) => Attempt::Fail(e),
            },
        )
    }

    /// The one request loop: transport errors, 5xx answers and whatever `handle` asks to
    /// retry are tried again, [`ATTEMPTS`] times in all with a growing pause; a timeout is
    /// not (a silent server costs one timeout, not three); 404 and 410 are `Ok(None)`;
    /// `handle` gets every other answer with the URL it came from.
    fn request<T>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        handle: &mut dyn FnMut(ureq::http::Response<ureq::Body>, &str) -> Attempt<T>,
    ) -> Result<Option<T>> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt * attempt)));
            }
            let (resp, final_url) = match self.call(url, headers) {
                Ok(r) => r,
                Err(Hop::Refused(e)) => return Err(e),
                Err(Hop::Transport(e)) if ureq_timed_out(&e) => return Err(self.timed_out(url)),
                Err(Hop::Transport(e)) => {
                    last = e.to_string();
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 404 || status == 410 {
                return Ok(None);
            }
            if status >= 500 {
                last = format!("HTTP {status}");
                continue;
            }
            match handle(resp, &final_url) {
                Attempt::Done(v) => return Ok(Some(v)),
                Attempt::Retry(why) => last = why,
                Attempt::Fail(e) => return Err(e),
            }
        }
        Err(Error::new(format!(
            "GET {url} failed after {ATTEMPTS} attempts: {last}"
        )))
    }
}

/// What [`Client::get_with`] hands a body to: the body, its content type, the final URL and
/// its `Content-Length`.
pub type Consume<'c, T> =
    dyn FnMut(&mut dyn Read, &str, &str, Option<u64>) -> std::io::Result<T> + 'c;

/// What [`Client::request`] does after one answer.
enum Attempt<T> {
    Done(T),
    /// Try again (a body that broke off), saying why.
    Retry(String),
    Fail(Error),
}

impl<T> Attempt<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Attempt::Done(v) => Attempt::Done(f(v)),
            Attempt::Retry(why) => Attempt::Retry(why),
            Attempt::Fail(e) => Attempt::Fail(e),
        }
    }
}

/// What every GET makes of an answer's head: a status outside 2xx is a failure naming
/// `url`; a 2xx gives its content type, lowercase (empty when it has none).
fn content_type_of(
    url: &str,
    resp: &ureq::http::Response<ureq::Body>,
) -> std::result::Result<String, Error> {
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(status_error(url, status));
    }
    Ok(header(resp, "content-type")
        .unwrap_or_default()
        .to_ascii_lowercase())
}

/// Reads a `file://` URL; `Ok(None)` when there is no such file.
pub fn get_file(url: &str) -> Result<Option<Answer>> {
    let path = percent_decode(url.strip_prefix("file://").unwrap_or(url));
    match std::fs::read(&path) {
        Ok(body) => Ok(Some(Answer {
            body,
            content_type: String::new(),
            url: url.to_owned(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(format!("cannot read {path}: {e}"))),
    }
}

/// Decodes `%XX` escapes once.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_split_off_and_kept_for_its_origin_only() {
        let (bare, c) = split_userinfo("https://me:p%40ss@Host.example/simple/");
        assert_eq!(bare, "https://Host.example/simple/");
        let c = c.unwrap();
        assert_eq!(c.origin, "https://host.example:443");
        let decoded = data_encoding::BASE64
            .decode(c.header.strip_prefix("Basic ").unwrap().as_bytes())
            .unwrap();
        assert_eq!(decoded, b"me:p@ss");
        let (bare, c) = split_userinfo("http://127.0.0.1:8080/x@y/z");
        assert_eq!(bare, "http://127.0.0.1:8080/x@y/z");
        assert!(c.is_none());
        let (_, c) = split_userinfo("http://tok@h:81/");
        assert_eq!(c.unwrap().origin, "http://h:81");
        assert_eq!(split_userinfo("file:///a@b/c").0, "file:///a@b/c");
    }

    #[test]
    fn hops_from_https_stay_secure_and_remote_ones_stay_remote() {
        assert!(check_hop("https://a/", "https://b/", false).is_ok());
        assert!(check_hop("http://a/", "https://b/", false).is_ok());
        assert!(check_hop("http://a/", "http://b/", false).is_ok());
        let e = check_hop("https://a/", "http://a/x", false).unwrap_err();
        assert!(e.contains("allow-insecure"), "{e}");
        assert!(check_hop("https://a/", "HTTP://a/x", false).is_err());
        assert!(check_hop("https://a/", "http://a/x", true).is_ok());
        for from in ["http://a/", "https://a/"] {
            let e = check_hop(from, "file:///etc/passwd", true).unwrap_err();
            assert!(e.contains("local file"), "{e}");
            assert!(check_hop(from, "ftp://a/x", true).is_err());
        }
        // A page the user gave as a local file may name anything.
        assert!(check_hop("file:///x/links.html", "file:///y/a.whl", false).is_ok());
    }

    #[test]
    fn cache_control_freshness() {
        assert_eq!(freshness("max-age=600, public"), Ok(Some(600)));
        assert_eq!(freshness("public, MAX-AGE=\"60\""), Ok(Some(60)));
        assert_eq!(freshness("no-cache, max-age=600"), Ok(None));
        assert_eq!(freshness(""), Ok(None));
        assert_eq!(freshness("max-age=600, no-store"), Err(()));
    }

    #[test]
    fn page_cache_entries_round_trip_and_torn_ones_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ab").join("entry");
        let entry = Entry {
            url: "http://h/simple/a/".into(),
            final_url: "http://h/simple/a/".into(),
            content_type: "text/html".into(),
            etag: Some("\"x\"".into()),
            last_modified: None,
            date: 5,
            max_age: Some(600),
            len: 4,
        };
        write_entry(&path, &entry, b"<a/>");
        let (e, body) = read_entry(&path).unwrap();
        assert_eq!(
            (e.etag.as_deref(), e.max_age, &body[..]),
            (Some("\"x\""), Some(600), &b"<a/>"[..])
        );
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_entry(&path).is_none());
    }
}
