//! [`Options`]: a typed, read-only view of a part's resolved options.

use std::path::{Path, PathBuf};

use super::{Error, Result};

/// The resolved options of the part being installed, borrowed from the host for the call.
///
/// Values are text: a TOML list arrives as its elements joined with `\n`, which
/// [`get_list`](Options::get_list) splits again.
#[derive(Debug)]
pub struct Options<'a> {
    items: Vec<(&'a str, &'a str)>,
    directory: &'a Path,
}

impl<'a> Options<'a> {
    /// Options from `(name, value)` pairs; relative paths resolve against `directory`.
    /// This is what the SDK builds for each call, and what an in-process test can build.
    pub fn new(items: Vec<(&'a str, &'a str)>, directory: &'a Path) -> Options<'a> {
        Options { items, directory }
    }

    /// The option's text, or `None` when the part does not set it.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.items
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| *value)
    }

    /// The option's text, or an error saying the part must set it.
    pub fn require(&self, name: &str) -> Result<&'a str> {
        self.get(name)
            .ok_or_else(|| Error::new(format!("option `{name}` is required")))
    }

    /// The option as a list: its non-empty trimmed lines, or for a single line its
    /// whitespace-separated words (as buildout reads `eggs = a b`); empty when unset.
    pub fn get_list(&self, name: &str) -> Vec<&'a str> {
        match self.get(name) {
            None => Vec::new(),
            Some(value) if value.contains('\n') => value
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect(),
            Some(value) => value.split_whitespace().collect(),
        }
    }

    /// The option as a boolean (`true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, any case),
    /// `default` when unset, an error naming the option for anything else.
    pub fn get_bool(&self, name: &str, default: bool) -> Result<bool> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(Error::new(format!(
                "option `{name}` must be true or false, not `{value}`"
            ))),
        }
    }

    /// The option as a file mode in octal (`0750`, `750` or `0o750`, at most `7777`), `None`
    /// when unset, an error naming the option for anything else.
    pub fn get_mode(&self, name: &str) -> Result<Option<u32>> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let digits = text.trim();
        let digits = digits.strip_prefix("0o").unwrap_or(digits);
        let octal = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if octal && mode <= 0o7777 => Ok(Some(mode)),
            _ => Err(Error::new(format!(
                "option `{name}` must be an octal mode such as 0750, not `{text}`"
            ))),
        }
    }

    /// The option as a path; a relative one is taken relative to the buildout directory.
    pub fn get_path(&self, name: &str) -> Option<PathBuf> {
        self.get(name)
            .map(|value| self.directory.join(value.trim()))
    }

    /// Every option, sorted by name as the host passes them.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.items.iter().copied()
    }
}

/// A size in bytes: a number, optionally followed by `K`, `M` or `G` (powers of 1024,
/// `KiB`/`MB`… accepted too).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().ok()?;
    let unit = t[digits..].trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("1T"), None);
    }

    fn options<'a>(items: &[(&'a str, &'a str)]) -> Options<'a> {
        Options::new(items.to_vec(), Path::new("/srv/app"))
    }

    #[test]
    fn lists_split_lines_or_words() {
        let o = options(&[("a", "x y  z"), ("b", " one \n\n two words \n"), ("c", "")]);
        assert_eq!(o.get_list("a"), ["x", "y", "z"]);
        assert_eq!(o.get_list("b"), ["one", "two words"]);
        assert!(o.get_list("c").is_empty());
        assert!(o.get_list("missing").is_empty());
    }

    #[test]
    fn booleans_and_their_errors() {
        let o = options(&[("t", "Yes"), ("f", "off"), ("bad", "maybe")]);
        assert!(o.get_bool("t", false).unwrap());
        assert!(!o.get_bool("f", true).unwrap());
        assert!(o.get_bool("missing", true).unwrap());
        assert_eq!(
            o.get_bool("bad", false).unwrap_err().message(),
            "option `bad` must be true or false, not `maybe`"
        );
    }

    #[test]
    fn modes_are_octal() {
        let o = options(&[
            ("a", "0750"),
            ("b", " 755 "),
            ("c", "0o2775"),
            ("d", "7777"),
            ("zero", "0"),
        ]);
        assert_eq!(o.get_mode("a").unwrap(), Some(0o750));
        assert_eq!(o.get_mode("b").unwrap(), Some(0o755));
        assert_eq!(o.get_mode("c").unwrap(), Some(0o2775));
        assert_eq!(o.get_mode("d").unwrap(), Some(0o7777));
        assert_eq!(o.get_mode("zero").unwrap(), Some(0));
        assert_eq!(o.get_mode("missing").unwrap(), None);
        for bad in ["", "rwx", "0999", "17777", "-1", "+755", "0o", "0x1ff"] {
            let o = options(&[("file-mode", bad)]);
            assert_eq!(
                o.get_mode("file-mode").unwrap_err().message(),
                format!("option `file-mode` must be an octal mode such as 0750, not `{bad}`")
            );
        }
    }

    #[test]
    fn paths_are_relative_to_the_buildout_directory() {
        let o = options(&[("rel", "var/log"), ("abs", "/etc/x")]);
        assert_eq!(o.get_path("rel").unwrap(), Path::new("/srv/app/var/log"));
        assert_eq!(o.get_path("abs").unwrap(), Path::new("/etc/x"));
        assert_eq!(o.get_path("missing"), None);
        assert_eq!(
            o.require("missing").unwrap_err().message(),
            "option `missing` is required"
        );
    }
}
