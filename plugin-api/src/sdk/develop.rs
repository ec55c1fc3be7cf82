//! `buildout:develop` read as zc.buildout reads it: each entry a glob (`src/*`) relative to
//! the buildout directory, naming Python source folders. The engine (which warns and checks)
//! and the egg recipe (which builds them) expand it with this one function.

use std::path::{Path, PathBuf};

/// The files that make a folder a Python project, any one of them.
pub const PROJECT_FILES: [&str; 3] = ["pyproject.toml", "setup.py", "setup.cfg"];

/// What `develop` names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DevelopFolders {
    /// The folders, each once, in the order of the entries (an entry's matches sorted).
    pub folders: Vec<PathBuf>,
    /// The entries that match nothing (zc.buildout warns about them and goes on).
    pub unmatched: Vec<String>,
}

/// Expands the entries of `develop` (already split) against `directory`. A match that is a
/// file (`develop = setup.py`) stands for its folder, as in zc.buildout.
pub fn develop_folders<'a>(
    directory: &Path,
    entries: impl IntoIterator<Item = &'a str>,
) -> DevelopFolders {
    let mut out = DevelopFolders::default();
    for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
        let mut matches = glob(directory, entry);
        if matches.is_empty() {
            out.unmatched.push(entry.to_owned());
            continue;
        }
        matches.sort();
        for m in matches {
            let folder = if m.is_file() {
                m.parent().map(Path::to_path_buf).unwrap_or(m)
            } else {
                m
            };
            let folder = super::files::normalize(&folder);
            if !out.folders.contains(&folder) {
                out.folders.push(folder);
            }
        }
    }
    out
}

/// The existing paths `pattern` (Python's `glob.glob`: `*`, `?` and `[...]` within one
/// component, names starting with `.` only for a pattern starting with `.`) matches.
fn glob(directory: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = directory.join(pattern);
    let mut found = vec![PathBuf::new()];
    for component in path.components() {
        let text = component.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        if !text.contains(['*', '?', '[']) {
            for base in found {
                next.push(base.join(component));
            }
        } else {
            for base in found {
                let Ok(entries) = std::fs::read_dir(&base) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && !text.starts_with('.') {
                        continue;
                    }
                    if matches(text.as_bytes(), name.as_bytes()) {
                        next.push(base.join(name));
                    }
                }
            }
        }
        found = next;
    }
    found.retain(|p| p.exists());
    found
}

/// Whether `name` matches the one-component pattern `pat` (fnmatch).
fn matches(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| matches(&pat[1..], &name[i..])),
        Some(b'?') => !name.is_empty() && matches(&pat[1..], &name[1..]),
        Some(b'[') => {
            let Some(close) = pat.iter().skip(2).position(|&c| c == b']').map(|i| i + 2) else {
                // An unclosed `[` is a literal character.
                return name.first() == Some(&b'[') && matches(&pat[1..], &name[1..]);
            };
            let Some(&c) = name.first() else {
                return false;
            };
            let mut set = &pat[1..close];
            let negate = matches!(set.first(), Some(b'!'));
            if negate {
                set = &set[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && matches(&pat[close + 1..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && matches(&pat[1..], &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_fnmatch() {
        assert!(matches(b"*", b"abc"));
        assert!(matches(b"a*c", b"abbc"));
        assert!(!matches(b"a*c", b"abd"));
        assert!(matches(b"a?c", b"abc"));
        assert!(matches(b"[ab]x", b"bx"));
        assert!(!matches(b"[!ab]x", b"bx"));
        assert!(matches(b"[a-c]", b"b"));
        assert!(matches(b"[x", b"[x"));
    }

    #[test]
    fn entries_expand_to_sorted_folders_and_unmatched_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["src/b", "src/a", "src/.hidden", "one"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("one/setup.py"), "").unwrap();
        let got = develop_folders(dir.path(), ["src/*", "one/setup.py", "nothing/*", "one"]);
        assert_eq!(
            got.folders,
            [
                dir.path().join("src/a"),
                dir.path().join("src/b"),
                dir.path().join("one")
            ]
        );
        assert_eq!(got.unmatched, ["nothing/*"]);
    }
}
