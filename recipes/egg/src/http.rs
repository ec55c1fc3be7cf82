//! HTTP: pooled agents, the one for `https:` trusting the system's certificates (or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR`, read only when it is first needed), proxies from the
//! environment, retries on server errors and broken transfers, an HTTP cache of index pages.
//! `file:` URLs are read from disk.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use rbuildout_plugin_api::{Error, Result};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Attempts per request (the first plus retries) for 5xx answers and transport errors.
const ATTEMPTS: u32 = 3;
/// Largest body accepted (wheels of some scientific packages pass 1 GB).
const MAX_BODY: u64 = 4 << 30;

pub struct Client {
    /// For `https:` URLs and redirects: trusts the configured roots, read at its first use
    /// (reading `SSL_CERT_DIR` can take tens of milliseconds).
    tls: std::sync::OnceLock<ureq::Agent>,
    /// For `http:` URLs: reads no certificates and follows no redirect (a redirect is asked
    /// again through `tls`, which follows it wherever it goes).
    plain: ureq::Agent,
    /// Where index pages are cached, if anywhere.
    pages: Option<PageCache>,
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

/// An agent with `tls`, following up to `redirects` redirects.
fn agent(tls: TlsConfig, redirects: u32) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(ureq::Proxy::try_from_env())
        .http_status_as_error(false)
        .max_redirects(redirects)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_global(Some(Duration::from_secs(600)))
        .user_agent(concat!("rbuildout-egg/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

impl Client {
    pub fn new() -> Result<Client> {
        Ok(Client {
            tls: std::sync::OnceLock::new(),
            plain: agent(TlsConfig::default(), 0),
            pages: None,
        })
    }

    fn tls(&self) -> &ureq::Agent {
        self.tls.get_or_init(|| {
            let roots = match env_roots() {
                Ok(Some(certs)) => RootCerts::Specific(Arc::new(certs)),
                _ => RootCerts::PlatformVerifier,
            };
            agent(TlsConfig::builder().root_certs(roots).build(), 10)
        })
    }

    /// GETs `url` with `headers` through the agent it needs.
    fn call(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let send = |agent: &ureq::Agent| {
            let mut req = agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        };
        if !url.starts_with("https:") {
            let resp = send(&self.plain)?;
            if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
        }
        send(self.tls())
    }

    /// Caches index pages in `cache` (see [`PageCache`]).
    pub fn with_page_cache(mut self, cache: PageCache) -> Client {
        self.pages = Some(cache);
        self
    }

    /// GETs an index page like [`get`](Client::get), through the page cache when there is
    /// one: a fresh entry answers without a request, a stale one is revalidated.
    pub fn get_page(&self, url: &str, accept: &str) -> Result<Option<Answer>> {
        let Some(cache) = self.pages.as_ref().filter(|_| !url.starts_with("file://")) else {
            return self.get(url, Some(accept));
        };
        let key = crate::util::sha256_hex(format!("{accept}\n{url}").as_bytes());
        let path = cache.dir.join(&key[..2]).join(&key);
        let mut cached = read_entry(&path).filter(|(e, _)| e.url == url);
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
        self.request(url, &headers, &mut |mut resp| {
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
            if !(200..300).contains(&status) {
                return Attempt::Fail(Error::new(format!("GET {url}: HTTP {status}")));
            }
            let content_type = header(&resp, "content-type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let final_url = ureq::ResponseExt::get_uri(&resp).to_string();
            let (etag, last_modified) = (header(&resp, "etag"), header(&resp, "last-modified"));
            let mut body = Vec::new();
            if let Err(e) = resp
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .reader()
                .read_to_end(&mut body)
            {
                return Attempt::Retry(format!("transfer broken: {e}"));
            }
            if let Ok(max_age) = fresh
                && (max_age.is_some() || etag.is_some() || last_modified.is_some())
            {
                let entry = Entry {
                    url: url.to_owned(),
                    final_url: final_url.clone(),
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
                url: final_url,
            })
        })
    }

    /// GETs `url` (with `accept` if given). `Ok(None)` for 404/410; other failures are
    /// errors naming the URL, after retries for 5xx and transport errors.
    pub fn get(&self, url: &str, accept: Option<&str>) -> Result<Option<Answer>> {
        if url.starts_with("file://") {
            return get_file(url);
        }
        self.get_with(url, accept, &mut |body, content_type, final_url| {
            let mut buf = Vec::new();
            body.read_to_end(&mut buf)?;
            Ok(Answer {
                body: buf,
                content_type: content_type.to_owned(),
                url: final_url.to_owned(),
            })
        })
    }

    /// GETs `url` and hands the body (read as it arrives) to `consume` with the content
    /// type and the final URL. A body that breaks off is retried like a 5xx: `consume`
    /// must start afresh on each call.
    pub fn get_with<T>(
        &self,
        url: &str,
        accept: Option<&str>,
        consume: &mut dyn FnMut(&mut dyn Read, &str, &str) -> std::io::Result<T>,
    ) -> Result<Option<T>> {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        self.request(url, &headers, &mut |mut resp| {
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                return Attempt::Fail(Error::new(format!("GET {url}: HTTP {status}")));
            }
            let content_type = header(&resp, "content-type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let final_url = ureq::ResponseExt::get_uri(&resp).to_string();
            let mut reader = resp.body_mut().with_config().limit(MAX_BODY).reader();
            match consume(&mut reader, &content_type, &final_url) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Retry(format!("transfer broken: {e}")),
            }
        })
    }

    /// The one request loop: transport errors, 5xx answers and whatever `handle` asks to
    /// retry are tried again, [`ATTEMPTS`] times in all with a growing pause; 404 and 410 are
    /// `Ok(None)`; `handle` gets every other answer.
    fn request<T>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        handle: &mut dyn FnMut(ureq::http::Response<ureq::Body>) -> Attempt<T>,
    ) -> Result<Option<T>> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt * attempt)));
            }
            let resp = match self.call(url, headers) {
                Ok(r) => r,
                Err(e) => {
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
            match handle(resp) {
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

/// What [`Client::request`] does after one answer.
enum Attempt<T> {
    Done(T),
    /// Try again (a body that broke off), saying why.
    Retry(String),
    Fail(Error),
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
