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

/// Checks that the metadata `text` names the project and version of the distribution file
/// `filename` (`name-version-….whl`, `name-version.tar.gz`), after PEP 503 and PEP 440
/// normalisation, as pip and uv demand.
pub fn check_names(text: &str, filename: &str) -> std::result::Result<(), String> {
    let m = parse(text);
    let stem = filename
        .strip_suffix(".whl")
        .or_else(|| filename.strip_suffix(".tar.gz"))
        .or_else(|| filename.strip_suffix(".zip"))
        .unwrap_or(filename);
    let (file_name, file_version) = if filename.ends_with(".whl") {
        let mut parts = stem.split('-');
        (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        )
    } else {
        match stem.rsplit_once('-') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => (stem.to_owned(), String::new()),
        }
    };
    if m.name.is_empty() || m.version.is_empty() {
        return Err("its METADATA has no Name or no Version".into());
    }
    let same_version = match (
        m.version.parse::<pep440_rs::Version>(),
        file_version.parse::<pep440_rs::Version>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => m.version == file_version,
    };
    if crate::util::normalize(&m.name) != crate::util::normalize(&file_name) || !same_version {
        return Err(format!(
            "its METADATA says {} {}, but the file name says {file_name} {file_version}; \
             the index serves a file under another project's or version's name",
            m.name, m.version
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_must_name_the_file() {
        let ok = "Name: Foo.Bar\nVersion: 1.0\n";
        assert!(super::check_names(ok, "foo_bar-1.0.0-py3-none-any.whl").is_ok());
        assert!(super::check_names(ok, "Foo-Bar-1.0.tar.gz").is_ok());
        let e = super::check_names(ok, "foo_bar-2.0-py3-none-any.whl").unwrap_err();
        assert!(
            e.contains("Foo.Bar 1.0") && e.contains("foo_bar 2.0"),
            "{e}"
        );
        assert!(super::check_names(ok, "other-1.0-py3-none-any.whl").is_err());
        assert!(super::check_names("Name: x\n", "x-1.0-py3-none-any.whl").is_err());
    }

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
