//! Core metadata (`METADATA` / `PKG-INFO`): the headers the resolver needs.

#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
}

/// Parses the RFC 822 style header block (continuation lines start with whitespace; the
/// body after the first blank line is ignored).
pub fn parse(text: &str) -> Metadata {
    let mut m = Metadata::default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    for (k, v) in headers {
        match k.as_str() {
            "name" => m.name = v,
            "version" => m.version = v,
            "requires-dist" => m.requires_dist.push(v),
            "requires-python" if !v.is_empty() => m.requires_python = Some(v),
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_headers() {
        let m = super::parse(
            "Metadata-Version: 2.1\nName: Alpha\nVersion: 1.0\nRequires-Dist: beta>=2\n\
             Requires-Dist: gamma; extra == \"fast\"\nRequires-Python: >=3.8\n\nRequires-Dist: no\n",
        );
        assert_eq!(m.name, "Alpha");
        assert_eq!(m.requires_dist, vec!["beta>=2", "gamma; extra == \"fast\""]);
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
    }
}
