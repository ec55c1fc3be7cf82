//! Where distributions come from: the simple API (PEP 691 JSON or PEP 503 HTML, chosen by
//! content negotiation), and find-links folders, pages and files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use pep440_rs::Version;
use rbuildout_plugin_api::{Error, Result};

use crate::http::{Client, percent_decode};
use crate::util::{normalize, same_project};

/// PEP 691 content negotiation: JSON preferred, HTML accepted.
const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
                      application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Wheel {
        py: String,
        abi: String,
        plat: String,
    },
    Sdist,
}

/// One file of a project, as an index or find-links lists it.
#[derive(Clone, Debug)]
pub struct DistFile {
    pub filename: String,
    /// Absolute URL (`https://…`, `file:///…`) without fragment.
    pub url: String,
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    pub yanked: bool,
    /// PEP 658: `Some(hash)` when a `.metadata` file is advertised (hash when given).
    pub metadata: Option<Option<String>>,
    pub version: Version,
    pub kind: Kind,
}

/// Parses a distribution file name of project `project` (normalised).
pub fn parse_filename(project: &str, filename: &str) -> Option<(Version, Kind)> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        if !(parts.len() == 5 || parts.len() == 6) || !same_project(parts[0], project) {
            return None;
        }
        let version = parts[1].parse().ok()?;
        let n = parts.len();
        return Some((
            version,
            Kind::Wheel {
                py: parts[n - 3].to_owned(),
                abi: parts[n - 2].to_owned(),
                plat: parts[n - 1].to_owned(),
            },
        ));
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))?;
    for (i, _) in stem.match_indices('-') {
        if same_project(&stem[..i], project) {
            return stem[i + 1..].parse().ok().map(|v| (v, Kind::Sdist));
        }
    }
    None
}

/// The project's name as written in a file name (`Foo_Bar` from `Foo_Bar-1.0-…whl`).
fn project_of(filename: &str) -> Option<String> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        return stem.split('-').next().and_then(normalize);
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))?;
    // The version starts at the first `-` followed by a digit.
    let bytes = stem.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        .and_then(|i| normalize(&stem[..i]))
}

/// An `<a>` element of an HTML page: its attributes (lowercase names, decoded values).
struct Anchor {
    attrs: HashMap<String, String>,
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of the tag starting right after its name, up to `>`; returns them and the
/// offset after the tag.
fn parse_attrs(s: &str) -> (HashMap<String, String>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut attrs = HashMap::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (attrs, i);
        }
        if b[i] == b'>' {
            return (attrs, i + 1);
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = decode_entities(&s[vs..i]);
                i = (i + 1).min(b.len());
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&s[vs..i]);
            }
        }
        if !name.is_empty() {
            attrs.entry(name).or_insert(value);
        }
    }
}

/// Every `<a>` of `html`, and the `<base href>` if any.
fn anchors(html: &str) -> (Vec<Anchor>, Option<String>) {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut base = None;
    let mut pos = 0;
    while let Some(i) = lower[pos..].find('<') {
        let at = pos + i + 1;
        let rest = &lower[at..];
        let tag_len = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let tag = &rest[..tag_len];
        pos = at + tag_len;
        if tag == "a" || tag == "base" {
            let (attrs, used) = parse_attrs(&html[pos..]);
            pos += used;
            if tag == "base" {
                base = base.or_else(|| attrs.get("href").cloned());
            } else {
                out.push(Anchor { attrs });
            }
        }
    }
    (out, base)
}

/// Splits `#sha256=…` off a URL.
fn split_fragment(url: &str) -> (String, Option<String>) {
    match url.split_once('#') {
        Some((u, frag)) => {
            let sha = frag
                .split('&')
                .find_map(|kv| kv.strip_prefix("sha256="))
                .map(|h| h.to_ascii_lowercase());
            (u.to_owned(), sha)
        }
        None => (url.to_owned(), None),
    }
}

fn join(base: &str, href: &str) -> Result<String> {
    let base = url::Url::parse(base).map_err(|e| Error::new(format!("bad URL {base}: {e}")))?;
    Ok(base
        .join(href)
        .map_err(|e| Error::new(format!("bad link {href} on {base}: {e}")))?
        .to_string())
}

fn filename_of(url: &str) -> String {
    percent_decode(url.rsplit('/').next().unwrap_or(url))
}

/// A file entry from a link, if the link names a distribution of `project` (or any project
/// when `project` is `None`: then the project is returned with it).
fn entry_from_link(
    project: Option<&str>,
    abs_url: &str,
    attrs: &HashMap<String, String>,
) -> Option<(String, DistFile)> {
    let (url, sha256) = split_fragment(abs_url);
    let filename = filename_of(&url);
    let name = match project {
        Some(p) => p.to_owned(),
        None => project_of(&filename)?,
    };
    let (version, kind) = parse_filename(&name, &filename)?;
    let metadata = attrs
        .get("data-core-metadata")
        .or_else(|| attrs.get("data-dist-info-metadata"))
        .and_then(|v| {
            if v == "false" {
                None
            } else {
                Some(v.strip_prefix("sha256=").map(str::to_ascii_lowercase))
            }
        });
    Some((
        name,
        DistFile {
            filename,
            url,
            sha256,
            requires_python: attrs
                .get("data-requires-python")
                .filter(|s| !s.trim().is_empty())
                .cloned(),
            yanked: attrs.contains_key("data-yanked"),
            metadata,
            version,
            kind,
        },
    ))
}

/// The absolute URL of a link on the page `page_url`, refused when the page may not lead
/// there ([`check_hop`](crate::http::check_hop)); userinfo a page puts in a link is dropped.
fn link(page_url: &str, base: &str, href: &str, allow_insecure: bool) -> Result<String> {
    let abs = crate::http::split_userinfo(&join(base, href)?).0;
    crate::http::check_hop(page_url, &abs, allow_insecure).map_err(|why| {
        Error::new(format!(
            "the index page {page_url} has a link that was refused: {why}"
        ))
    })?;
    Ok(abs)
}

/// Parses a PEP 503 page of `project` served from `page_url`.
fn parse_html(
    project: Option<&str>,
    page_url: &str,
    html: &str,
    allow_insecure: bool,
) -> Result<Vec<(String, DistFile)>> {
    let (links, base) = anchors(html);
    let base = match base {
        Some(b) => join(page_url, &b)?,
        None => page_url.to_owned(),
    };
    let mut out = Vec::new();
    for a in links {
        let Some(href) = a.attrs.get("href") else {
            continue;
        };
        // Only links to distributions matter; others may point anywhere.
        let (bare, _) = split_fragment(href);
        if project_of(&filename_of(&bare)).is_none() {
            continue;
        }
        let abs = link(page_url, &base, href, allow_insecure)?;
        if let Some(e) = entry_from_link(project, &abs, &a.attrs) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Parses a PEP 691 JSON page of `project` served from `page_url`.
fn parse_json(
    project: &str,
    page_url: &str,
    body: &[u8],
    allow_insecure: bool,
) -> Result<Vec<DistFile>> {
    let bad = |why: String| {
        Error::new(format!(
            "the index page {page_url} is not PEP 691 JSON: {why}"
        ))
    };
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let files = v
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or_else(|| bad("no `files` list".into()))?;
    let mut out = Vec::new();
    for f in files {
        let (Some(filename), Some(url)) = (
            f.get("filename").and_then(|x| x.as_str()),
            f.get("url").and_then(|x| x.as_str()),
        ) else {
            return Err(bad("a file without `filename` or `url`".into()));
        };
        let Some((version, kind)) = parse_filename(project, filename) else {
            continue;
        };
        let (url, frag_sha) = split_fragment(&link(page_url, page_url, url, allow_insecure)?);
        let sha256 = f
            .get("hashes")
            .and_then(|h| h.get("sha256"))
            .and_then(|h| h.as_str())
            .map(str::to_ascii_lowercase)
            .or(frag_sha);
        let yanked = match f.get("yanked") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(_)) => true,
            _ => false,
        };
        let metadata = match f
            .get("core-metadata")
            .or_else(|| f.get("dist-info-metadata"))
        {
            Some(serde_json::Value::Bool(true)) => Some(None),
            Some(serde_json::Value::Object(h)) => Some(
                h.get("sha256")
                    .and_then(|x| x.as_str())
                    .map(str::to_ascii_lowercase),
            ),
            _ => None,
        };
        out.push(DistFile {
            filename: filename.to_owned(),
            url,
            sha256,
            requires_python: f
                .get("requires-python")
                .and_then(|x| x.as_str())
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned),
            yanked,
            metadata,
            version,
            kind,
        });
    }
    Ok(out)
}

/// The entries of `dir`, sorted (none if it cannot be read).
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A file URL for a local path.
pub fn file_url(path: &Path) -> String {
    url::Url::from_file_path(path)
        .map(|u| u.to_string())
        .unwrap_or_else(|()| format!("file://{}", path.display()))
}

/// The files of one project, or why they could not be read.
type Page = std::result::Result<Arc<Vec<DistFile>>, String>;

/// The configured sources, with the pages read so far.
pub struct Finder<'a> {
    client: Option<&'a Client>,
    /// Base URL ending in `/`, or `None` for no index.
    index: Option<String>,
    find_links: Vec<String>,
    directory: PathBuf,
    /// Per project: its files, or why they could not be read (not asked twice).
    pages: Mutex<HashMap<String, Page>>,
    links: OnceLock<std::result::Result<Vec<(String, DistFile)>, String>>,
    /// Offline: the download cache's `dists/` folder, read as one more find-links folder.
    cached: Option<PathBuf>,
    /// Offline: the eggs folder, whose eggs name the file they came from.
    eggs: Option<PathBuf>,
    /// `allow-hosts`: pages and files on other hosts are not read (setuptools' rule).
    allow_hosts: Vec<String>,
}

impl<'a> Finder<'a> {
    /// `client` is `None` offline: only local find-links are read.
    pub fn new(
        client: Option<&'a Client>,
        index: Option<&str>,
        find_links: Vec<String>,
        directory: &Path,
    ) -> Finder<'a> {
        let index = index.filter(|s| !s.trim().is_empty()).map(|s| {
            let s = s.trim();
            if s.ends_with('/') {
                s.to_owned()
            } else {
                format!("{s}/")
            }
        });
        Finder {
            client,
            index,
            find_links,
            directory: directory.to_path_buf(),
            pages: Mutex::new(HashMap::new()),
            links: OnceLock::new(),
            cached: None,
            eggs: None,
            allow_hosts: vec!["*".to_owned()],
        }
    }

    /// Offline, the eggs already unpacked in `eggs_dir` are sources too: each names the file
    /// it was installed from (and its hash) in its `.dist-info`.
    pub fn with_eggs(mut self, eggs_dir: &Path) -> Finder<'a> {
        if self.client.is_none() {
            self.eggs = Some(eggs_dir.to_path_buf());
        }
        self
    }

    /// Sets `allow-hosts` (docs/egg.md, "Versions").
    pub fn with_allow_hosts(mut self, patterns: Vec<String>) -> Finder<'a> {
        self.allow_hosts = patterns;
        self
    }

    fn allowed(&self, url: &str) -> bool {
        crate::versions::host_allowed(&self.allow_hosts, url)
    }

    fn read_eggs(&self, out: &mut Vec<(String, DistFile)>) {
        let Some(dir) = &self.eggs else { return };
        for folder in sorted_entries(dir) {
            let hidden = folder
                .file_name()
                .is_none_or(|n| n.to_string_lossy().starts_with('.'));
            if hidden || !folder.is_dir() {
                continue;
            }
            let Some(text) = sorted_entries(&folder)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "dist-info"))
                .find_map(|p| std::fs::read_to_string(p.join(crate::install::SOURCE_FILE)).ok())
            else {
                continue;
            };
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(str::to_owned)
            };
            let (Some(sha), Some(file)) = (field("sha256="), field("file=")) else {
                continue;
            };
            let Some(project) = project_of(&file) else {
                continue;
            };
            let Some((version, kind)) = parse_filename(&project, &file) else {
                continue;
            };
            out.push((
                project,
                DistFile {
                    filename: file,
                    url: file_url(&folder),
                    sha256: Some(sha),
                    requires_python: None,
                    yanked: false,
                    metadata: None,
                    version,
                    kind,
                },
            ));
        }
    }

    /// Offline, the files of the download cache (`dists/<aa>/<sha256>/<file>`) are sources.
    pub fn with_cache(mut self, dists: PathBuf) -> Finder<'a> {
        if self.client.is_none() {
            self.cached = Some(dists);
        }
        self
    }

    /// The files in the download cache, with the hash their folder names.
    fn read_cache(&self, out: &mut Vec<(String, DistFile)>) {
        let Some(root) = &self.cached else { return };
        for prefix in sorted_entries(root) {
            for sha_dir in sorted_entries(&prefix) {
                let sha = sha_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                for file in sorted_entries(&sha_dir) {
                    if let Some((p, mut f)) =
                        entry_from_link(None, &file_url(&file), &HashMap::new())
                    {
                        f.sha256 = Some(sha.clone());
                        out.push((p, f));
                    }
                }
            }
        }
    }

    /// Where a project is looked for, for error messages.
    pub fn describe(&self, project: &str) -> String {
        let mut places = Vec::new();
        if let Some(i) = &self.index {
            if self.client.is_some() {
                places.push(format!("{i}{project}/"));
            } else {
                places.push(format!("(offline: not {i})"));
            }
        }
        places.extend(self.find_links.iter().cloned());
        places.join(", ")
    }

    /// Every file of `project` (normalised name) from all sources.
    pub fn files(&self, project: &str) -> Result<Arc<Vec<DistFile>>> {
        if let Some(f) = self.pages.lock().expect("pages").get(project) {
            return f.clone().map_err(Error::new);
        }
        let result = self.read_files(project);
        self.pages.lock().expect("pages").insert(
            project.to_owned(),
            result
                .as_ref()
                .map(Arc::clone)
                .map_err(|e| e.message().to_owned()),
        );
        result
    }

    fn read_files(&self, project: &str) -> Result<Arc<Vec<DistFile>>> {
        let mut all = Vec::new();
        if let (Some(client), Some(index)) = (self.client, &self.index)
            && self.allowed(index)
        {
            all.extend(self.index_page(client, index, project)?);
        }
        let links = self
            .links
            .get_or_init(|| self.read_find_links().map_err(|e| e.message().to_owned()));
        match links {
            Ok(l) => all.extend(
                l.iter()
                    .filter(|(p, _)| p == project)
                    .map(|(_, f)| f.clone()),
            ),
            Err(e) => return Err(Error::new(e.clone())),
        }
        all.retain(|f| self.allowed(&f.url));
        Ok(Arc::new(all))
    }

    fn index_page(&self, client: &Client, index: &str, project: &str) -> Result<Vec<DistFile>> {
        if let Some(dir) = index.strip_prefix("file://") {
            // A local index folder laid out as `<project>/index.html`.
            let page = format!("{}{project}/index.html", percent_decode(dir));
            let Ok(html) = std::fs::read_to_string(&page) else {
                return Ok(Vec::new());
            };
            let url = file_url(Path::new(&page));
            return Ok(parse_html(Some(project), &url, &html, true)?
                .into_iter()
                .map(|(_, f)| f)
                .collect());
        }
        let url = format!("{index}{project}/");
        let Some(answer) = client.get_page(&url, ACCEPT)? else {
            return Ok(Vec::new());
        };
        if answer.content_type.contains("json") {
            return parse_json(project, &answer.url, &answer.body, client.allow_insecure());
        }
        let html = std::str::from_utf8(&answer.body).map_err(|_| {
            Error::new(format!(
                "the index page {url} is neither PEP 691 JSON nor PEP 503 HTML (not UTF-8 text)"
            ))
        })?;
        if !answer.content_type.contains("html") && !html.trim_start().starts_with('<') {
            return Err(Error::new(format!(
                "the index page {url} is neither PEP 691 JSON nor PEP 503 HTML (content type `{}`)",
                answer.content_type
            )));
        }
        Ok(
            parse_html(Some(project), &answer.url, html, client.allow_insecure())?
                .into_iter()
                .map(|(_, f)| f)
                .collect(),
        )
    }

    /// Every distribution file reachable from the find-links entries.
    fn read_find_links(&self) -> Result<Vec<(String, DistFile)>> {
        let mut out = Vec::new();
        self.read_cache(&mut out);
        self.read_eggs(&mut out);
        for entry in &self.find_links {
            let is_url = entry.starts_with("http://") || entry.starts_with("https://");
            if !is_url {
                let path = match entry.strip_prefix("file://") {
                    Some(p) => PathBuf::from(percent_decode(p)),
                    None => self.directory.join(entry),
                };
                if path.is_dir() {
                    let rd = std::fs::read_dir(&path).map_err(|e| {
                        Error::new(format!(
                            "cannot read find-links folder {}: {e}",
                            path.display()
                        ))
                    })?;
                    let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                    names.sort();
                    for p in names {
                        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                        let url = file_url(&p);
                        if let Some(e) = name
                            .as_deref()
                            .and_then(|_| entry_from_link(None, &url, &HashMap::new()))
                        {
                            out.push(e);
                        }
                    }
                } else if path.is_file() {
                    let url = file_url(&path);
                    if let Some(e) = entry_from_link(None, &url, &HashMap::new()) {
                        out.push(e);
                    } else if let Ok(html) = std::fs::read_to_string(&path) {
                        out.extend(parse_html(None, &url, &html, true)?);
                    }
                } else {
                    return Err(Error::new(format!(
                        "find-links entry {entry} does not exist ({})",
                        path.display()
                    )));
                }
                continue;
            }
            if !self.allowed(entry) {
                continue;
            }
            if let Some(e) = entry_from_link(None, entry, &HashMap::new()) {
                out.push(e);
                continue;
            }
            let Some(client) = self.client else {
                continue;
            };
            let Some(answer) = client.get(entry, Some("text/html"))? else {
                return Err(Error::new(format!(
                    "find-links page {entry} was not found (404)"
                )));
            };
            let html = String::from_utf8_lossy(&answer.body);
            out.extend(parse_html(
                None,
                &answer.url,
                &html,
                client.allow_insecure(),
            )?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_names() {
        let (v, k) = parse_filename("foo-bar", "Foo_Bar-1.0.post1-py3-none-any.whl").unwrap();
        assert_eq!(v.to_string(), "1.0.post1");
        assert_eq!(
            k,
            Kind::Wheel {
                py: "py3".into(),
                abi: "none".into(),
                plat: "any".into()
            }
        );
        let (v, k) = parse_filename("foo-bar", "foo-bar-2.0rc1.tar.gz").unwrap();
        assert_eq!((v.to_string().as_str(), k), ("2.0rc1", Kind::Sdist));
        assert!(parse_filename("foo", "foo-bar-2.0.tar.gz").is_none());
        assert_eq!(project_of("foo-bar-2.0.tar.gz").as_deref(), Some("foo-bar"));
        assert_eq!(
            project_of("Foo_Bar-1.0-1-py3-none-any.whl").as_deref(),
            Some("foo-bar")
        );
    }

    #[test]
    fn parses_html_pages() {
        let html = r#"<html><body>
          <a href="../../files/alpha-1.0-py3-none-any.whl#sha256=ABCD" data-requires-python="&gt;=3.8"
             data-dist-info-metadata="sha256=ef01">alpha-1.0-py3-none-any.whl</a>
          <A HREF='alpha-0.9.tar.gz' data-yanked="">x</A>
          <a href="other-1.0.tar.gz">other</a>
        </body></html>"#;
        let files = parse_html(Some("alpha"), "http://h/simple/alpha/", html, false).unwrap();
        assert_eq!(files.len(), 2);
        let f = &files[0].1;
        assert_eq!(f.url, "http://h/files/alpha-1.0-py3-none-any.whl");
        assert_eq!(f.sha256.as_deref(), Some("abcd"));
        assert_eq!(f.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(f.metadata, Some(Some("ef01".into())));
        assert!(!f.yanked);
        assert!(files[1].1.yanked);
        assert_eq!(files[1].1.url, "http://h/simple/alpha/alpha-0.9.tar.gz");
    }

    #[test]
    fn remote_pages_may_not_link_to_local_files_or_downgrade_to_http() {
        let file = r#"<a href="file:///tmp/alpha-1.0-py3-none-any.whl">a</a>"#;
        let err = parse_html(Some("alpha"), "http://h/simple/alpha/", file, true).unwrap_err();
        assert!(err.message().contains("local file"), "{err}");
        // A local page (a find-links file) may name local files.
        assert_eq!(
            parse_html(Some("alpha"), "file:///x/index.html", file, false)
                .unwrap()
                .len(),
            1
        );
        let http = r#"<a href="http://h/f/alpha-1.0-py3-none-any.whl">a</a>"#;
        let err = parse_html(Some("alpha"), "https://h/simple/alpha/", http, false).unwrap_err();
        assert!(err.message().contains("allow-insecure"), "{err}");
        assert_eq!(
            parse_html(Some("alpha"), "https://h/simple/alpha/", http, true)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_html(Some("alpha"), "http://h/simple/alpha/", http, false)
                .unwrap()
                .len(),
            1
        );
        let json = br#"{"files":[{"filename":"alpha-1.0-py3-none-any.whl",
            "url":"http://h/f/alpha-1.0-py3-none-any.whl","hashes":{}}]}"#;
        assert!(parse_json("alpha", "https://h/simple/alpha/", json, false).is_err());
        // Links that name no distribution are not followed, so they are not refused.
        let other = r#"<a href="file:///etc/passwd">x</a><a href="javascript:x">y</a>"#;
        assert!(
            parse_html(Some("alpha"), "https://h/simple/alpha/", other, false)
                .unwrap()
                .is_empty()
        );
        // Userinfo a page puts in a link is dropped.
        let creds = r#"<a href="https://u:secret@h/f/alpha-1.0-py3-none-any.whl">a</a>"#;
        let f = parse_html(Some("alpha"), "https://h/simple/alpha/", creds, false).unwrap();
        assert_eq!(f[0].1.url, "https://h/f/alpha-1.0-py3-none-any.whl");
    }

    #[test]
    fn parses_json_pages() {
        let json = br#"{"meta":{"api-version":"1.1"},"name":"alpha","files":[
          {"filename":"alpha-1.0-py3-none-any.whl","url":"/f/alpha-1.0-py3-none-any.whl",
           "hashes":{"sha256":"AA"},"requires-python":">=3.8","yanked":"bad",
           "core-metadata":{"sha256":"bb"}},
          {"filename":"alpha-2.0.tar.gz","url":"https://x/alpha-2.0.tar.gz","hashes":{}}]}"#;
        let files = parse_json("alpha", "http://h/simple/alpha/", json, false).unwrap();
        assert_eq!(files[0].url, "http://h/f/alpha-1.0-py3-none-any.whl");
        assert_eq!(files[0].sha256.as_deref(), Some("aa"));
        assert!(files[0].yanked);
        assert_eq!(files[0].metadata, Some(Some("bb".into())));
        assert_eq!(files[1].kind, Kind::Sdist);
        assert!(parse_json("alpha", "http://h/", b"<html>", false).is_err());
    }
}
