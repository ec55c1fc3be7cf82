//! Unpacking a wheel into its own egg folder, safely: every member name is checked by path
//! components, links and duplicates are refused, local headers must agree with the central
//! directory, every file must match RECORD, and the folder appears only by a rename of a
//! complete temp folder (another process that got there first wins; its folder is used).
//! Members are inflated streaming, straight into their files, with limits on the total size
//! and on the compression ratio checked on the declared sizes first and then on the bytes
//! really inflated (see [`Limits`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use rbuildout_plugin_api::{Error, Result};
use sha2::Digest;

/// The egg folder name of a wheel: its file name without build tag and extension.
pub fn egg_name(wheel_filename: &str) -> String {
    let stem = wheel_filename
        .strip_suffix(".whl")
        .unwrap_or(wheel_filename);
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() == 6 {
        [parts[0], parts[1], parts[3], parts[4], parts[5]].join("-")
    } else {
        stem.to_owned()
    }
}

/// The components of a member name, or why it is refused.
fn components(name: &str) -> std::result::Result<Vec<&str>, String> {
    if name.contains('\\') {
        return Err("contains a backslash".into());
    }
    if name.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    if name.starts_with('/') {
        return Err("is an absolute path".into());
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let parts: Vec<&str> = trimmed.split('/').collect();
    for p in &parts {
        match *p {
            "" => return Err("has an empty path component".into()),
            "." | ".." => return Err(format!("has a `{p}` component")),
            _ if p.contains(':') => return Err("has a drive prefix or colon".into()),
            _ => {}
        }
    }
    Ok(parts)
}

/// Parses one CSV line of RECORD (quoted fields may hold commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A running hash of a member, for its RECORD line.
enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// The hasher a RECORD hash field (`algo=base64digest`) asks for, and the digest wanted.
    fn for_field(field: &str) -> std::result::Result<(Hasher, String), String> {
        let (algo, want) = field
            .split_once('=')
            .ok_or_else(|| format!("bad hash field {field:?}"))?;
        let h = match algo {
            "sha256" => Hasher::Sha256(sha2::Sha256::new()),
            "sha384" => Hasher::Sha384(sha2::Sha384::new()),
            "sha512" => Hasher::Sha512(sha2::Sha512::new()),
            other => {
                return Err(format!(
                    "hash algorithm {other} is not accepted (sha256 or stronger)"
                ));
            }
        };
        Ok((h, want.trim_end_matches('=').to_owned()))
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest as RECORD writes it (URL-safe base64 without padding).
    fn finish(self) -> String {
        let e = &data_encoding::BASE64URL_NOPAD;
        match self {
            Hasher::Sha256(h) => e.encode(&h.finalize()),
            Hasher::Sha384(h) => e.encode(&h.finalize()),
            Hasher::Sha512(h) => e.encode(&h.finalize()),
        }
    }
}

/// `algo=base64digest` of `data` checked against a RECORD hash field.
#[cfg(test)]
fn record_hash_ok(field: &str, data: &[u8]) -> std::result::Result<bool, String> {
    let (mut h, want) = Hasher::for_field(field)?;
    h.update(data);
    Ok(h.finish() == want)
}

/// Members larger than this (uncompressed) must not pass the compression ratio limit.
const RATIO_FLOOR: u64 = 1 << 20;
/// Largest member read into memory (RECORD, WHEEL, METADATA, entry points, scripts).
pub const MAX_IN_MEMORY: u64 = 64 << 20;
/// Default of `RBUILDOUT_MAX_UNPACKED_SIZE`.
pub const DEFAULT_MAX_UNPACKED: u64 = 4 << 30;
/// Default of `RBUILDOUT_MAX_ZIP_RATIO`.
pub const DEFAULT_MAX_RATIO: u64 = 200;
/// Default of `RBUILDOUT_MAX_ZIP_MEMBERS`: the largest wheels on the index hold tens of
/// thousands of files; each member costs an inode, however small the archive.
pub const DEFAULT_MAX_MEMBERS: u64 = 500_000;

/// What a wheel may unpack to: `max_total` bytes in all (`RBUILDOUT_MAX_UNPACKED_SIZE`),
/// and no member over 1 MiB inflating to more than `max_ratio` times its compressed size
/// (`RBUILDOUT_MAX_ZIP_RATIO`), and at most `max_members` members
/// (`RBUILDOUT_MAX_ZIP_MEMBERS`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_total: u64,
    pub max_ratio: u64,
    pub max_members: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_total: DEFAULT_MAX_UNPACKED,
            max_ratio: DEFAULT_MAX_RATIO,
            max_members: DEFAULT_MAX_MEMBERS,
        }
    }
}

impl Limits {
    /// The limits from the environment, else the defaults.
    pub fn from_env() -> Result<Limits> {
        let mut l = Limits::default();
        if let Ok(v) = std::env::var("RBUILDOUT_MAX_UNPACKED_SIZE")
            && !v.trim().is_empty()
        {
            l.max_total = rbuildout_plugin_api::parse_size(&v).ok_or_else(|| {
                Error::new(format!(
                    "RBUILDOUT_MAX_UNPACKED_SIZE={v:?} is not a size; set it to bytes or a \
                     size such as 4G"
                ))
            })?;
        }
        if let Ok(v) = std::env::var("RBUILDOUT_MAX_ZIP_RATIO")
            && !v.trim().is_empty()
        {
            l.max_ratio = v.trim().parse().ok().filter(|r| *r > 0).ok_or_else(|| {
                Error::new(format!(
                    "RBUILDOUT_MAX_ZIP_RATIO={v:?} is not a ratio; set it to a whole \
                     number such as 200"
                ))
            })?;
        }
        if let Ok(v) = std::env::var("RBUILDOUT_MAX_ZIP_MEMBERS")
            && !v.trim().is_empty()
        {
            l.max_members = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::new(format!(
                    "RBUILDOUT_MAX_ZIP_MEMBERS={v:?} is not a count; set it to a whole \
                     number such as 500000"
                ))
            })?;
        }
        Ok(l)
    }

    /// Whether `size` bytes from `compressed` bytes is too high a ratio.
    fn ratio_exceeded(&self, size: u64, compressed: u64) -> bool {
        size > RATIO_FLOOR && size / compressed.max(1) >= self.max_ratio
    }

    fn ratio_error(&self, name: &str, compressed: u64) -> String {
        format!(
            "member {name:?} inflates to more than {} times its {compressed} compressed \
             bytes (a zip bomb?); set RBUILDOUT_MAX_ZIP_RATIO to allow more",
            self.max_ratio
        )
    }

    fn total_error(&self) -> String {
        format!(
            "it unpacks to more than {} bytes; set RBUILDOUT_MAX_UNPACKED_SIZE to allow more",
            self.max_total
        )
    }
}

/// The bytes a wheel has inflated so far, and its limits.
struct Budget {
    used: u64,
    limits: Limits,
}

/// Copies the member `name` (`compressed` bytes in the archive) from `r` to `w` in 64 KiB
/// steps, hashing it, counting the bytes really inflated: the wheel's total against the
/// budget, the member against the ratio limit and `cap`.
fn copy_member(
    r: &mut dyn Read,
    w: &mut dyn Write,
    mut hasher: Option<&mut Hasher>,
    name: &str,
    compressed: u64,
    cap: u64,
    budget: &mut Budget,
) -> std::result::Result<(), String> {
    let limits = budget.limits;
    let mut buf = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("member {name:?} is corrupt: {e}")),
        };
        size += n as u64;
        budget.used += n as u64;
        if budget.used > limits.max_total {
            return Err(limits.total_error());
        }
        if limits.ratio_exceeded(size, compressed) {
            return Err(limits.ratio_error(name, compressed));
        }
        if size > cap {
            return Err(format!(
                "member {name:?} is larger than {cap} bytes, too large to read"
            ));
        }
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&buf[..n]);
        }
        w.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {name}: {e}"))?;
    }
}

/// `n` bytes of `f` at `pos`.
fn read_at(mut f: &File, pos: u64, n: usize) -> Option<Vec<u8>> {
    f.seek(SeekFrom::Start(pos)).ok()?;
    let mut buf = vec![0; n];
    f.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Whether the local file header at `offset` names `name` (one positioned read).
fn local_name_matches(f: &File, offset: u64, name: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    let mut h = vec![0u8; 30 + name.len()];
    if f.read_exact_at(&mut h, offset).is_err() || h[..4] != [0x50, 0x4b, 0x03, 0x04] {
        return false;
    }
    usize::from(u16::from_le_bytes([h[26], h[27]])) == name.len() && &h[30..] == name
}

fn u16_at(b: &[u8], o: usize) -> Option<usize> {
    b.get(o..o + 2)
        .map(|x| usize::from(u16::from_le_bytes([x[0], x[1]])))
}

fn u32_at(b: &[u8], o: usize) -> Option<u64> {
    b.get(o..o + 4)
        .map(|x| u64::from(u32::from_le_bytes([x[0], x[1], x[2], x[3]])))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    b.get(o..o + 8).map(|x| {
        let mut a = [0u8; 8];
        a.copy_from_slice(x);
        u64::from_le_bytes(a)
    })
}

/// The member names of the central directory, read directly (the zip crate keeps one entry
/// per name, so duplicates are only visible here).
fn central_names(f: &File, len: u64) -> Option<Vec<Vec<u8>>> {
    let tail_len = len.min(65_557 + 22);
    let tail_start = len - tail_len;
    let tail = read_at(f, tail_start, usize::try_from(tail_len).ok()?)?;
    let i = (0..=tail.len().checked_sub(22)?)
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])?;
    let eocd = tail_start + u64::try_from(i).ok()?;
    let mut count = u64::try_from(u16_at(&tail, i + 10)?).ok()?;
    let mut offset = u32_at(&tail, i + 16)?;
    if count == 0xffff || offset == 0xffff_ffff {
        let loc = read_at(f, eocd.checked_sub(20)?, 20)?;
        if loc[..4] != [0x50, 0x4b, 0x06, 0x07] {
            return None;
        }
        let rec = read_at(f, u64_at(&loc, 8)?, 56)?;
        if rec[..4] != [0x50, 0x4b, 0x06, 0x06] {
            return None;
        }
        count = u64_at(&rec, 32)?;
        offset = u64_at(&rec, 48)?;
    }
    let size = eocd.checked_sub(offset)?;
    if size > 128 << 20 {
        return None;
    }
    let cd = read_at(f, offset, usize::try_from(size).ok()?)?;
    let b = &cd[..];
    let mut pos = 0usize;
    let mut names = Vec::new();
    for _ in 0..count {
        if b.get(pos..pos + 4)? != [0x50, 0x4b, 0x01, 0x02] {
            return None;
        }
        let (n, e, c) = (
            u16_at(b, pos + 28)?,
            u16_at(b, pos + 30)?,
            u16_at(b, pos + 32)?,
        );
        names.push(b.get(pos + 46..pos + 46 + n)?.to_vec());
        pos += 46 + n + e + c;
    }
    Some(names)
}

/// Creates `path`, which must not exist; `made` holds the folders known to exist already.
fn create_new(
    path: &Path,
    executable: bool,
    made: &mut HashSet<std::path::PathBuf>,
) -> std::io::Result<File> {
    if let Some(parent) = path.parent()
        && !made.contains(parent)
    {
        std::fs::create_dir_all(parent)?;
        made.insert(parent.to_path_buf());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if executable { 0o755 } else { 0o644 });
    }
    opts.open(path)
}

/// The file in an egg's `.dist-info` naming the distribution file it was installed from
/// (`sha256=<hex>` and `file=<name>` lines): what `-o` needs to lock an egg it finds.
pub const SOURCE_FILE: &str = "RBUILDOUT_SOURCE";

/// Unpacks `wheel` (named `filename`) into the empty folder `dest`; `python` replaces
/// `#!python` in scripts. Returns the name of the `.dist-info` folder.
#[cfg(test)]
pub fn unpack(wheel: &Path, filename: &str, dest: &Path, python: &str) -> Result<String> {
    unpack_with(
        wheel,
        filename,
        dest,
        python,
        &Limits::default(),
        &mut |_| {},
    )
}

/// [`unpack`], telling `on_module` the path (inside `dest`, `/`-separated) of each `.py`
/// file as soon as it is written, so compiling can start before the wheel is all unpacked.
pub fn unpack_with(
    wheel: &Path,
    filename: &str,
    dest: &Path,
    python: &str,
    limits: &Limits,
    on_module: &mut dyn FnMut(&str),
) -> Result<String> {
    let fail = |why: String| Error::new(format!("{filename} refused: {why}"));
    let open =
        || File::open(wheel).map_err(|e| fail(format!("cannot read {}: {e}", wheel.display())));
    let raw_file = open()?;
    let len = raw_file
        .metadata()
        .map_err(|e| fail(format!("cannot read {}: {e}", wheel.display())))?
        .len();
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(open()?))
        .map_err(|e| fail(format!("not a valid zip archive: {e}")))?;

    // Pass 1: names.
    let central = central_names(&raw_file, len)
        .ok_or_else(|| fail("its central directory cannot be read".into()))?;
    if central.len() as u64 > limits.max_members {
        return Err(fail(format!(
            "it holds {} members, more than {} (an inode bomb?); set RBUILDOUT_MAX_ZIP_MEMBERS \
             to allow more",
            central.len(),
            limits.max_members
        )));
    }
    let mut seen = HashSet::new();
    for raw in &central {
        let name = String::from_utf8_lossy(raw);
        let key = name.trim_end_matches('/').to_owned();
        if !seen.insert(key) {
            return Err(fail(format!("member {name:?} appears twice")));
        }
    }
    if central.len() != zip.len() {
        return Err(fail("its central directory has duplicate entries".into()));
    }
    seen.clear();
    let mut files = Vec::new();
    let mut declared = 0u64;
    let mut dist_info: Option<String> = None;
    let wheel_name = filename.split('-').next().unwrap_or("");
    for i in 0..zip.len() {
        let f = zip
            .by_index_data(i)
            .map_err(|e| fail(format!("unreadable member #{i}: {e}")))?;
        let raw = f.name_raw().to_vec();
        let name = std::str::from_utf8(&raw)
            .map_err(|_| fail(format!("member #{i} has a name that is not UTF-8")))?
            .to_owned();
        let parts = components(&name).map_err(|why| fail(format!("member {name:?} {why}")))?;
        if f.is_symlink() {
            return Err(fail(format!("member {name:?} is a link")));
        }
        if !local_name_matches(&raw_file, f.header_start(), &raw) {
            return Err(fail(format!(
                "member {name:?}: its local header disagrees with the central directory"
            )));
        }
        let key = parts.join("/");
        if !seen.insert(key.clone()) {
            return Err(fail(format!("member {name:?} appears twice")));
        }
        if let Some(top) = parts.first()
            && let Some(stem) = top.strip_suffix(".dist-info")
            && crate::util::same_project(stem.split('-').next().unwrap_or(""), wheel_name)
        {
            dist_info = Some((*top).to_owned());
        }
        // The declared sizes, checked before anything is inflated (and not trusted after:
        // the bytes really inflated are counted too).
        if f.compressed_size() > len {
            return Err(fail(format!(
                "member {name:?} claims to be larger than the whole archive"
            )));
        }
        declared = declared.saturating_add(f.size());
        if declared > limits.max_total {
            return Err(fail(limits.total_error()));
        }
        if limits.ratio_exceeded(f.size(), f.compressed_size()) {
            return Err(fail(limits.ratio_error(&name, f.compressed_size())));
        }
        if !f.is_dir() {
            let exec = f.unix_mode().is_some_and(|m| m & 0o111 != 0);
            files.push((i, key, exec, f.compressed_size()));
        }
    }
    let dist_info =
        dist_info.ok_or_else(|| fail("no .dist-info folder for this distribution".into()))?;
    let data_dir = format!("{}.data", dist_info.trim_end_matches(".dist-info"));

    let mut budget = Budget {
        used: 0,
        limits: *limits,
    };
    // Copies member `i` into `w` (at most `cap` bytes), hashing it with `hasher`.
    let mut copy =
        |i: usize, w: &mut dyn Write, hasher: Option<&mut Hasher>, cap: u64| -> Result<()> {
            let mut f = zip
                .by_index(i)
                .map_err(|e| fail(format!("unreadable member #{i}: {e}")))?;
            let name = f.name_raw().escape_ascii().to_string();
            let compressed = f.compressed_size();
            copy_member(&mut f, w, hasher, &name, compressed, cap, &mut budget).map_err(fail)
        };
    let index_of = |path: &str| files.iter().find(|f| f.1 == path).map(|f| f.0);

    // RECORD.
    let record_path = format!("{dist_info}/RECORD");
    let record_idx =
        index_of(&record_path).ok_or_else(|| fail(format!("{record_path} is missing")))?;
    let mut record_bytes = Vec::new();
    copy(record_idx, &mut record_bytes, None, MAX_IN_MEMORY)?;
    let record_text =
        String::from_utf8(record_bytes).map_err(|_| fail(format!("{record_path} is not UTF-8")))?;
    let mut record: HashMap<String, String> = HashMap::new();
    for line in record_text.lines().filter(|l| !l.trim().is_empty()) {
        let fields = csv_fields(line);
        let path = fields[0].trim_start_matches("./").to_owned();
        let hash = fields.get(1).cloned().unwrap_or_default();
        record.insert(path, hash);
    }

    // WHEEL.
    let wheel_idx = index_of(&format!("{dist_info}/WHEEL"))
        .ok_or_else(|| fail(format!("{dist_info}/WHEEL is missing")))?;
    let mut wheel_bytes = Vec::new();
    copy(wheel_idx, &mut wheel_bytes, None, MAX_IN_MEMORY)?;
    let text = String::from_utf8_lossy(&wheel_bytes);
    if let Some(v) = text
        .lines()
        .find_map(|l| l.strip_prefix("Wheel-Version:"))
        .map(str::trim)
        && v.split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(1)
            > 1
    {
        return Err(fail(format!("Wheel-Version {v} is not supported")));
    }

    // METADATA must name the distribution and version of the file name, as pip and uv
    // demand (an index could otherwise install one project under another's name).
    let metadata_idx = index_of(&format!("{dist_info}/METADATA"))
        .ok_or_else(|| fail(format!("{dist_info}/METADATA is missing")))?;
    let mut metadata_bytes = Vec::new();
    copy(metadata_idx, &mut metadata_bytes, None, MAX_IN_MEMORY)?;
    crate::metadata::check_names(&String::from_utf8_lossy(&metadata_bytes), filename)
        .map_err(fail)?;

    // Pass 2: contents, each streamed into its file while hashed.
    let mut listed: HashSet<&str> = HashSet::new();
    let mut made = HashSet::new();
    for (i, key, exec, _) in &files {
        let signature = key == &record_path
            || key == &format!("{record_path}.jws")
            || key == &format!("{record_path}.p7s");
        let mut expected = None;
        if !signature {
            let Some((rkey, hash)) = record.get_key_value(key.as_str()) else {
                return Err(fail(format!("{key} is not listed in RECORD")));
            };
            if hash.is_empty() {
                return Err(fail(format!("{key} has no hash in RECORD")));
            }
            expected = Some(Hasher::for_field(hash).map_err(|why| fail(format!("{key}: {why}")))?);
            listed.insert(rkey.as_str());
        }
        let (target, exec, script) = match key.strip_prefix(&format!("{data_dir}/")) {
            None => (dest.join(key), *exec, false),
            Some(rest) => {
                let (scheme, rest) = rest
                    .split_once('/')
                    .ok_or_else(|| fail(format!("{key}: a file directly in {data_dir}")))?;
                match scheme {
                    "purelib" | "platlib" | "data" => (dest.join(rest), *exec, false),
                    "headers" => (dest.join("include").join(rest), *exec, false),
                    "scripts" => (dest.join("bin").join(rest), true, true),
                    other => return Err(fail(format!("{key}: unknown .data scheme `{other}`"))),
                }
            }
        };
        let entry_points = key.ends_with("/entry_points.txt") && key.starts_with(&dist_info);
        let cannot_write = |e: std::io::Error| {
            fail(format!(
                "cannot write {} ({e}); a member may collide with another",
                target.display()
            ))
        };
        let mut hasher = expected.as_mut().map(|(h, _)| h);
        if script || entry_points {
            // Small files that are read before they are written.
            let mut data = Vec::new();
            copy(*i, &mut data, hasher.take(), MAX_IN_MEMORY)?;
            if entry_points {
                check_entry_points(&String::from_utf8_lossy(&data)).map_err(fail)?;
            }
            if script {
                data = shebang(data, python);
            }
            create_new(&target, exec, &mut made)
                .and_then(|mut f| f.write_all(&data))
                .map_err(cannot_write)?;
        } else {
            let mut out = create_new(&target, exec, &mut made).map_err(cannot_write)?;
            copy(*i, &mut out, hasher.take(), u64::MAX)?;
        }
        if let Some((h, want)) = expected
            && h.finish() != want
        {
            return Err(fail(format!("{key} does not match its RECORD hash")));
        }
        if let Ok(rel) = target.strip_prefix(dest)
            && let Some(rel) = rel.to_str()
            && rel.ends_with(".py")
        {
            on_module(rel);
        }
    }
    for (path, hash) in &record {
        if !hash.is_empty() && !listed.contains(path.as_str()) {
            return Err(fail(format!(
                "RECORD lists {path} but the wheel does not hold it"
            )));
        }
    }
    Ok(dist_info)
}

/// `#!python` / `#!pythonw` headers become the interpreter's path (wheel spec).
fn shebang(data: Vec<u8>, python: &str) -> Vec<u8> {
    for prefix in [&b"#!pythonw"[..], &b"#!python"[..]] {
        if let Some(rest) = data.strip_prefix(prefix)
            && rest.first().is_none_or(|c| c.is_ascii_whitespace())
        {
            let mut out = format!("#!{python}").into_bytes();
            out.extend_from_slice(rest);
            return out;
        }
    }
    data
}

/// Entry-point names later become file names in `bin/`: no separators, no dot-names.
fn check_entry_points(text: &str) -> std::result::Result<(), String> {
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_owned();
            continue;
        }
        if !(section == "console_scripts" || section == "gui_scripts") {
            continue;
        }
        if let Some((name, _)) = line.split_once('=') {
            let name = name.trim();
            if name.is_empty()
                || name.contains(['/', '\\', '\0'])
                || name.starts_with('.')
                || name.chars().any(char::is_control)
            {
                return Err(format!(
                    "entry point name {name:?} in [{section}] is not a plain file name"
                ));
            }
        }
    }
    Ok(())
}

/// Compiles `.py` files to `.pyc` as they are unpacked, over a process pool once there is
/// work for several CPUs. Each stdin line is a JSON `[root, [path inside root, …]]`. The
/// recorded source name is the path inside the egg: the import system replaces it with the
/// real path when it loads the `.pyc` (`_imp._fix_co_filename`), so the same distribution
/// compiles to the same bytes wherever the eggs folder is. Best effort: a module that does
/// not compile is left without `.pyc`, as pip does. Each batch done, the number of its files
/// is written as a line on stdout, for the progress of [`Compiler::finish`].
const COMPILE: &str = r#"
import sys, json, os, py_compile, threading
def comp(batch):
    for src, rel in batch:
        try:
            py_compile.compile(src, dfile=rel, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        except Exception:
            pass
lock = threading.Lock()
def done(n):
    with lock:
        sys.stdout.write("%d\n" % n)
        sys.stdout.flush()
ex = None
seen = 0
futures = []
for line in sys.stdin:
    root, rels = json.loads(line)
    files = [(os.path.join(root, r), r) for r in rels]
    seen += len(files)
    if ex is None and seen > 50 and (os.cpu_count() or 1) > 1:
        import concurrent.futures
        ex = concurrent.futures.ProcessPoolExecutor()
    if ex is None:
        comp(files)
        done(len(files))
    else:
        for i in range(0, len(files), 32):
            chunk = files[i:i + 32]
            f = ex.submit(comp, chunk)
            f.add_done_callback(lambda f, n=len(chunk): done(n))
            futures.append(f)
for f in futures:
    f.result()
"#;

/// `.py` files handed to the compiler at once while a wheel is unpacked.
pub const COMPILE_BATCH: usize = 64;

/// The file at the top of an egg folder installed without `.pyc` (`compile-bytecode =
/// false`); written into the temp folder before it is renamed into place, so the folder is
/// never seen without it until it is compiled. An instance that compiles finds it there,
/// compiles the folder in place and then removes it (docs/egg.md).
pub const UNCOMPILED: &str = ".rbuildout-no-pyc";

/// The `.py` files under `root` (paths inside it, `/`-separated, sorted), `__pycache__`
/// folders left out: what an egg folder installed without `.pyc` is compiled from.
pub fn modules(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            match e.file_type() {
                Ok(t) if t.is_dir() && name != "__pycache__" => stack.push(path),
                Ok(t) if t.is_file() && name.ends_with(".py") => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The interpreter run compiling folders as they are unpacked. Dropped without
/// [`finish`](Compiler::finish), it is killed.
pub struct Compiler {
    child: Option<std::process::Child>,
    stdin: Option<std::process::ChildStdin>,
    error: Option<String>,
    /// The files queued so far.
    queued: u64,
    /// The sizes of the batches compiled, read from the child's stdout by a thread (which
    /// also keeps that pipe from filling up).
    compiled: Option<std::sync::mpsc::Receiver<u64>>,
    /// The child's stderr, read to the end by a thread.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Compiler {
    pub fn start(python: &Path) -> Compiler {
        // `-I -S`: only the standard library is needed, not the site packages.
        match Command::new(python)
            .arg("-I")
            .arg("-S")
            .arg("-c")
            .arg(COMPILE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(mut child) => {
                let compiled = child.stdout.take().map(|stdout| {
                    let (send, receive) = std::sync::mpsc::channel();
                    std::thread::spawn(move || {
                        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                            let Ok(line) = line else { break };
                            if let Ok(n) = line.trim().parse::<u64>()
                                && send.send(n).is_err()
                            {
                                break;
                            }
                        }
                    });
                    receive
                });
                let stderr = child.stderr.take().map(|mut stderr| {
                    std::thread::spawn(move || {
                        let mut text = String::new();
                        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                        text
                    })
                });
                Compiler {
                    stdin: child.stdin.take(),
                    child: Some(child),
                    error: None,
                    queued: 0,
                    compiled,
                    stderr,
                }
            }
            Err(e) => Compiler {
                child: None,
                stdin: None,
                error: Some(format!("cannot run {}: {e}", python.display())),
                queued: 0,
                compiled: None,
                stderr: None,
            },
        }
    }

    /// Queues the files `rels` (paths inside `root`) for compiling.
    pub fn add(&mut self, root: &Path, rels: &[String]) {
        if rels.is_empty() {
            return;
        }
        let Some(stdin) = &mut self.stdin else { return };
        let line = serde_json::to_string(&(root.display().to_string(), rels)).unwrap_or_default();
        if let Err(e) = writeln!(stdin, "{line}") {
            self.error.get_or_insert(e.to_string());
            self.stdin = None;
        } else {
            self.queued += rels.len() as u64;
        }
    }

    /// Waits until every queued folder is compiled, telling `progress` the files compiled
    /// and queued as batches end.
    pub fn finish(mut self, progress: &dyn Fn(u64, u64)) -> std::result::Result<(), String> {
        drop(self.stdin.take());
        let child = self.child.take();
        if let Some(e) = self.error.take() {
            if let Some(mut c) = child {
                let _ = c.wait();
            }
            return Err(e);
        }
        let Some(mut child) = child else {
            return Ok(());
        };
        let mut done = 0;
        if let Some(compiled) = self.compiled.take() {
            progress(done, self.queued);
            // Until the child closes its stdout, at its end.
            for n in compiled {
                done += n;
                progress(done, self.queued);
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(stderr.trim().to_owned())
        }
    }
}

impl Drop for Compiler {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A temp folder `eggs-directory/.tmp-XXXX/` an egg is unpacked into, flocked for as long
/// as this lives: a run killed meanwhile leaves it unlocked, and the next run's
/// [`sweep_stale_temps`] removes it, while the temp folders of live runs (of any instance
/// sharing the eggs folder) stay.
pub struct TempEgg {
    dir: tempfile::TempDir,
    /// The folder itself, opened and flocked.
    _lock: File,
}

impl TempEgg {
    /// A new temp folder in `eggs_dir`. It is made and locked under a shared lock of
    /// `eggs_dir` (a sweep holds it exclusively), so no sweep sees it unlocked.
    pub fn new(eggs_dir: &Path) -> Result<TempEgg> {
        TempEgg::with_prefix(eggs_dir, ".tmp-")
    }

    /// A new temp folder `<prefix>XXXX` in `dir`, locked the same way (the sdist builder's
    /// `.build-*` folders in the download cache).
    pub fn with_prefix(eggs_dir: &Path, prefix: &str) -> Result<TempEgg> {
        let failed = |e: std::io::Error| {
            Error::new(format!(
                "cannot create a folder in {}: {e}",
                eggs_dir.display()
            ))
        };
        let guard = File::open(eggs_dir).map_err(failed)?;
        guard.lock_shared().map_err(failed)?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(eggs_dir)
            .map_err(failed)?;
        let lock = File::open(dir.path()).map_err(failed)?;
        lock.lock().map_err(failed)?;
        drop(guard);
        Ok(TempEgg { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the `.tmp-*` folders of `eggs_dir` that no live process holds locked (left by a
/// killed run). Best effort: what cannot be removed now is tried again next time.
pub fn sweep_stale_temps(eggs_dir: &Path) {
    sweep_stale(eggs_dir, ".tmp-");
}

/// Removes the `<prefix>*` folders of `eggs_dir` that no live process holds locked.
pub fn sweep_stale(eggs_dir: &Path, prefix: &str) {
    use std::os::unix::fs::MetadataExt;
    let Ok(guard) = File::open(eggs_dir) else {
        return;
    };
    if guard.lock().is_err() {
        return;
    }
    let Ok(rd) = std::fs::read_dir(eggs_dir) else {
        return;
    };
    for e in rd.flatten() {
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !e.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = e.path();
        let Ok(dir) = File::open(&path) else { continue };
        if dir.try_lock().is_err() {
            continue;
        }
        // Still the folder that was locked (not renamed away and replaced meanwhile).
        let same = match (dir.metadata(), std::fs::symlink_metadata(&path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Moves the complete temp folder `tmp` to `dest`; if `dest` appeared meanwhile (another
/// process installed the same egg), `tmp` is dropped and `dest` used.
pub fn commit(tmp: TempEgg, dest: &Path) -> Result<()> {
    let TempEgg { dir, _lock } = tmp;
    let path = dir.keep();
    match std::fs::rename(&path, dest) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&path);
            if dest.is_dir() {
                Ok(())
            } else {
                Err(Error::new(format!(
                    "cannot move {} to {}: {e}",
                    path.display(),
                    dest.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn only_unlocked_folders_with_the_prefix_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".build-stale");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("half.whl"), b"x").unwrap();
        let live = TempEgg::with_prefix(dir.path(), ".build-").unwrap();
        let other = dir.path().join(".tmp-other");
        std::fs::create_dir(&other).unwrap();
        sweep_stale(dir.path(), ".build-");
        assert!(!stale.exists(), "an unlocked .build- folder stays");
        assert!(live.path().is_dir(), "a live build's folder was removed");
        assert!(other.is_dir(), "a folder of another prefix was removed");
        let dest = dir.path().join("built");
        std::fs::write(live.path().join("w.whl"), b"w").unwrap();
        commit(live, &dest).unwrap();
        assert_eq!(std::fs::read(dest.join("w.whl")).unwrap(), b"w");
    }

    #[test]
    fn member_names_by_components() {
        assert!(components("a/b.py").is_ok());
        assert!(components("a/").is_ok());
        for bad in [
            "/etc/x",
            "../x",
            "a/../../x",
            "a\\b",
            "C:/x",
            "c:x",
            "a//b",
            "./a",
            "a/\u{1}",
        ] {
            assert!(components(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn record_lines() {
        assert_eq!(
            csv_fields(r#""a,b.py",sha256=xx,12"#),
            vec!["a,b.py", "sha256=xx", "12"]
        );
        assert!(record_hash_ok("md5=abc", b"").is_err());
        let h = data_encoding::BASE64URL_NOPAD.encode(&sha2::Sha256::digest(b"x"));
        assert_eq!(record_hash_ok(&format!("sha256={h}"), b"x"), Ok(true));
        assert_eq!(record_hash_ok(&format!("sha256={h}"), b"y"), Ok(false));
    }

    #[test]
    fn entry_point_names() {
        assert!(check_entry_points("[console_scripts]\nok = a:b\n").is_ok());
        assert!(check_entry_points("[console_scripts]\n../x = a:b\n").is_err());
        assert!(check_entry_points("[other]\n../x = a:b\n").is_ok());
    }

    /// A wheel with `members` and a matching RECORD.
    fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
        wheel_with_record(members, "")
    }

    /// A wheel with `members` and a RECORD listing them, plus `extra` lines.
    fn wheel_with_record(members: &[(&str, &[u8])], extra: &str) -> Vec<u8> {
        let mut record = extra.to_owned();
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, data) in members {
            let h = data_encoding::BASE64URL_NOPAD.encode(&sha2::Sha256::digest(data));
            record.push_str(&format!("{name},sha256={h},{}\n", data.len()));
            zip.start_file(*name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        record.push_str("d-1.0.dist-info/RECORD,,\n");
        zip.start_file("d-1.0.dist-info/RECORD", opts).unwrap();
        zip.write_all(record.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn data_folders_are_spread_and_scripts_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = tmp.path().join("d-1.0-py3-none-any.whl");
        std::fs::write(
            &whl,
            wheel(&[
                ("d/__init__.py", b"X = 1\n"),
                ("d-1.0.data/purelib/extra.py", b"E = 1\n"),
                ("d-1.0.data/headers/d.h", b"int d;\n"),
                ("d-1.0.data/scripts/tool", b"#!python\nprint(1)\n"),
                ("d-1.0.data/data/share/d.txt", b"data\n"),
                ("d-1.0.dist-info/METADATA", b"Name: d\nVersion: 1.0\n"),
                ("d-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
            ]),
        )
        .unwrap();
        let dest = tmp.path().join("egg");
        std::fs::create_dir(&dest).unwrap();
        unpack(&whl, "d-1.0-py3-none-any.whl", &dest, "/usr/bin/python3").unwrap();
        assert!(dest.join("d/__init__.py").is_file());
        assert!(dest.join("extra.py").is_file());
        assert!(dest.join("include/d.h").is_file());
        assert!(dest.join("share/d.txt").is_file());
        let script = std::fs::read_to_string(dest.join("bin/tool")).unwrap();
        assert_eq!(script, "#!/usr/bin/python3\nprint(1)\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dest.join("bin/tool"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111);
        }
    }

    #[test]
    fn a_missing_record_line_or_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = tmp.path().join("d-1.0-py3-none-any.whl");
        let mut bytes = wheel(&[
            ("d-1.0.dist-info/METADATA", b"Name: d\nVersion: 1.0\n"),
            ("d-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
        ]);
        // An extra member that RECORD does not list.
        let mut zip = zip::ZipWriter::new_append(Cursor::new(&mut bytes)).unwrap();
        zip.start_file("d/unlisted.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap();
        std::fs::write(&whl, &bytes).unwrap();
        let dest = tmp.path().join("egg");
        std::fs::create_dir(&dest).unwrap();
        let err = unpack(&whl, "d-1.0-py3-none-any.whl", &dest, "python").unwrap_err();
        assert!(err.message().contains("not listed in RECORD"), "{err}");
        // A file RECORD lists that the archive lacks.
        let meta: &[(&str, &[u8])] = &[
            ("d-1.0.dist-info/METADATA", b"Name: d\nVersion: 1.0\n"),
            ("d-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
        ];
        std::fs::write(&whl, wheel_with_record(meta, "d/gone.py,sha256=AAAA,1\n")).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&whl, "d-1.0-py3-none-any.whl", dest.path(), "python").unwrap_err();
        assert!(err.message().contains("does not hold it"), "{err}");
        // A newer major Wheel-Version.
        let meta: &[(&str, &[u8])] = &[
            ("d-1.0.dist-info/METADATA", b"Name: d\nVersion: 1.0\n"),
            ("d-1.0.dist-info/WHEEL", b"Wheel-Version: 2.0\n"),
        ];
        std::fs::write(&whl, wheel(meta)).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&whl, "d-1.0-py3-none-any.whl", dest.path(), "python").unwrap_err();
        assert!(err.message().contains("Wheel-Version 2.0"), "{err}");
    }

    /// Unpacks the test wheel `d-1.0` at `whl` into `dest` under `limits`.
    fn unpack_d(whl: &Path, dest: &Path, limits: &Limits) -> Result<String> {
        unpack_with(
            whl,
            "d-1.0-py3-none-any.whl",
            dest,
            "python",
            limits,
            &mut |_| {},
        )
    }

    #[test]
    fn inflated_bytes_are_counted_whatever_the_archive_declares() {
        let limits = Limits {
            max_total: 10 << 20,
            max_ratio: 200,
            ..Limits::default()
        };
        let sink = &mut std::io::sink();
        // 2 MiB out of 1000 compressed bytes.
        let mut budget = Budget { used: 0, limits };
        let zeros = &mut std::io::repeat(0).take(2 << 20);
        let err = copy_member(zeros, sink, None, "m", 1000, u64::MAX, &mut budget).unwrap_err();
        assert!(err.contains("RBUILDOUT_MAX_ZIP_RATIO"), "{err}");
        // Below the ratio, an endless member stops at the total.
        let mut budget = Budget { used: 0, limits };
        let endless = &mut std::io::repeat(1);
        let err =
            copy_member(endless, sink, None, "m", 1 << 40, u64::MAX, &mut budget).unwrap_err();
        assert!(err.contains("RBUILDOUT_MAX_UNPACKED_SIZE"), "{err}");
        assert!(budget.used <= (10 << 20) + (64 << 10));
        // The total counts every member of the wheel.
        let mut budget = Budget {
            used: (10 << 20) - 10,
            limits,
        };
        let err =
            copy_member(&mut &[0u8; 11][..], sink, None, "m", 11, 64, &mut budget).unwrap_err();
        assert!(err.contains("RBUILDOUT_MAX_UNPACKED_SIZE"), "{err}");
        // A member read into memory stops at its cap.
        let mut budget = Budget { used: 0, limits };
        let err =
            copy_member(&mut &[0u8; 100][..], sink, None, "m", 100, 64, &mut budget).unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn declared_sizes_are_checked_before_inflating() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = tmp.path().join("d-1.0-py3-none-any.whl");
        let big = vec![0u8; 3 << 20];
        std::fs::write(
            &whl,
            wheel(&[
                ("d/zeros.bin", &big),
                ("d-1.0.dist-info/METADATA", b"Name: d\nVersion: 1.0\n"),
                ("d-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
            ]),
        )
        .unwrap();
        let dest = tmp.path().join("egg");
        std::fs::create_dir(&dest).unwrap();
        let strict = Limits {
            max_total: 1 << 20,
            max_ratio: 200,
            ..Limits::default()
        };
        let err = unpack_d(&whl, &dest, &strict).unwrap_err();
        assert!(
            err.message().contains("RBUILDOUT_MAX_UNPACKED_SIZE"),
            "{err}"
        );
        // Nothing was written: the sizes were refused before any member was inflated.
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        let err = unpack(&whl, "d-1.0-py3-none-any.whl", &dest, "python").unwrap_err();
        assert!(err.message().contains("RBUILDOUT_MAX_ZIP_RATIO"), "{err}");
        let lax = Limits {
            max_total: 1 << 30,
            max_ratio: 1 << 20,
            ..Limits::default()
        };
        unpack_d(&whl, &dest, &lax).unwrap();
        assert_eq!(
            std::fs::read(dest.join("d/zeros.bin")).unwrap().len(),
            3 << 20
        );
    }

    #[test]
    fn a_wheel_of_more_members_than_allowed_is_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = tmp.path().join("d-1.0-py3-none-any.whl");
        // 50 empty modules, METADATA, WHEEL and the RECORD the helper adds: 53 members.
        let names: Vec<String> = (0..50).map(|i| format!("d/empty{i}.py")).collect();
        let mut members: Vec<(&str, &[u8])> =
            names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        members.push(("d-1.0.dist-info/METADATA", b"Name: d\nVersion: 1.0\n"));
        members.push(("d-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"));
        std::fs::write(&whl, wheel(&members)).unwrap();
        let dest = tmp.path().join("egg");
        std::fs::create_dir(&dest).unwrap();
        let few = Limits {
            max_members: 52,
            ..Limits::default()
        };
        let err = unpack_d(&whl, &dest, &few).unwrap_err();
        assert!(
            err.message().contains("53 members, more than 52")
                && err.message().contains("RBUILDOUT_MAX_ZIP_MEMBERS"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        let enough = Limits {
            max_members: 53,
            ..Limits::default()
        };
        unpack_d(&whl, &dest, &enough).unwrap();
        assert!(dest.join("d/empty49.py").is_file());
    }

    #[test]
    fn metadata_naming_another_project_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = tmp.path().join("d-1.0-py3-none-any.whl");
        std::fs::write(
            &whl,
            wheel(&[
                ("d-1.0.dist-info/METADATA", b"Name: e\nVersion: 1.0\n"),
                ("d-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
            ]),
        )
        .unwrap();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&whl, "d-1.0-py3-none-any.whl", dest.path(), "python").unwrap_err();
        assert!(err.message().contains("METADATA says e 1.0"), "{err}");
    }

    #[test]
    fn egg_names() {
        assert_eq!(egg_name("a-1.0-1-py3-none-any.whl"), "a-1.0-py3-none-any");
        assert_eq!(egg_name("a-1.0-py3-none-any.whl"), "a-1.0-py3-none-any");
    }
}
