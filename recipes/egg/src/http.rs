//! HTTP: one pooled agent trusting the system's certificates (or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`), proxies from the environment, retries on server errors and broken
//! transfers. `file:` URLs are read from disk.

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
    agent: ureq::Agent,
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

impl Client {
    pub fn new() -> Result<Client> {
        let roots = match env_roots()? {
            Some(certs) => RootCerts::Specific(Arc::new(certs)),
            None => RootCerts::PlatformVerifier,
        };
        let tls = TlsConfig::builder().root_certs(roots).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(ureq::Proxy::try_from_env())
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(600)))
            .user_agent(concat!("rbuildout-egg/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client { agent })
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
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt * attempt)));
            }
            let mut req = self.agent.get(url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            let mut resp = match req.call() {
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
            if !(200..300).contains(&status) {
                return Err(Error::new(format!("GET {url}: HTTP {status}")));
            }
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let final_url = ureq::ResponseExt::get_uri(&resp).to_string();
            let mut reader = resp.body_mut().with_config().limit(MAX_BODY).reader();
            match consume(&mut reader, &content_type, &final_url) {
                Ok(v) => return Ok(Some(v)),
                Err(e) => {
                    last = format!("transfer broken: {e}");
                    continue;
                }
            }
        }
        Err(Error::new(format!(
            "GET {url} failed after {ATTEMPTS} attempts: {last}"
        )))
    }
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
