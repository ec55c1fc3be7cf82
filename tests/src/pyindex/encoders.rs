//! The small encodings the builder and the server share; PEP 503 names come from
//! `pep508_rs`, as in the egg and scripts recipes.

use std::fmt::Write as _;

/// Standard base64 with padding (for `Authorization: Basic`).
pub(crate) fn base64(bytes: &[u8]) -> String {
    encode64(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

/// Base64 of `bytes` in `alphabet`, `=`-padded to whole groups of four when `pad`.
fn encode64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// The PEP 503 normalised project name (`pep508_rs::PackageName`: lowercase, runs of `-`,
/// `_` and `.` become one `-`), or `None` when `name` is not a valid project name.
pub fn normalize(name: &str) -> Option<String> {
    // `PackageName` takes the empty string; no project is named so.
    (!name.is_empty())
        .then(|| name.parse::<pep508_rs::PackageName>().ok())
        .flatten()
        .map(|n| n.to_string())
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The RECORD hash encoding: URL-safe base64 without `=` padding.
pub fn urlsafe_b64_nopad(bytes: &[u8]) -> String {
    encode64(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
