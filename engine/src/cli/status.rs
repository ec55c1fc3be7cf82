//! `rbuildout status [--json]`: what is installed, read from the state file (no lock, no
//! write): each part, its recipe, when its files last changed, its outputs and paths, and
//! for a `symlink` part its releases and history (docs/output.md).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Arg, ArgAction, ArgMatches, Command};
use rbuildout::state::{PartRecord, StateFile};
use serde_json::{Value, json};

use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("status")
        .about("Show what is installed: each part, its recipe, outputs and releases")
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print it as JSON (docs/output.md)"),
        )
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let config = super::annotate::load_config(g)?;
    let b = config.buildout();
    let Some(path) = b.installed.clone() else {
        return Err(Failure::Config(
            "error: buildout:installed is empty: this instance keeps no state to show".into(),
        ));
    };
    let (_, state) = StateFile::open(&path).map_err(|e| Failure::Config(format!("error: {e}")))?;
    let parts: Vec<Value> = state
        .order
        .iter()
        .filter_map(|p| state.parts.get(p).map(|r| part(&b.directory, p, r)))
        .collect();
    let status = json!({
        "version": 1,
        "state": path.display().to_string(),
        "parts": parts,
    });
    if m.get_flag("json") {
        println!("{status}");
    } else {
        print!("{}", text(&status));
    }
    Ok(())
}

/// One part's status as JSON.
fn part(directory: &Path, name: &str, record: &PartRecord) -> Value {
    let recipe = record
        .recipe
        .as_ref()
        .map(|r| json!({ "plugin": r.plugin, "version": r.version, "entry": r.entry }));
    // The state records no times: the newest of the part's paths, and of the absolute
    // paths its outputs name (a `symlink` part's `current` link), says when it last changed.
    let named = record
        .outputs
        .values()
        .filter(|v| v.starts_with('/') && !v.contains('\n'));
    let modified = record
        .paths
        .iter()
        .chain(named)
        .filter_map(|p| directory.join(p).symlink_metadata().ok()?.modified().ok())
        .max()
        .map(rfc3339);
    let mut value = json!({
        "part": name,
        "recipe": recipe,
        "modified": modified,
        "outputs": record.outputs,
        "paths": record.paths,
    });
    let symlink = record
        .recipe
        .as_ref()
        .is_some_and(|r| r.plugin == "symlink");
    if let (true, Some(release)) = (symlink, record.outputs.get("path")) {
        let current = record.outputs.get("current").map(PathBuf::from);
        value["releases"] = releases(Path::new(release), current.as_deref());
    }
    value
}

/// A `symlink` part's releases (docs/symlink.md): `release` is the active release's folder,
/// whose parent holds every release and the history; `link` is the current link.
fn releases(release: &Path, link: Option<&Path>) -> Value {
    let Some(directory) = release.parent() else {
        return Value::Null;
    };
    let current = link
        .and_then(|l| std::fs::read_link(l).ok())
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
    let history: Vec<String> = std::fs::read_to_string(directory.join("history"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut good = Vec::new();
    let mut failed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(directory)
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        // The current link is no release.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        match std::fs::read_to_string(entry.path().join(".rbuildout-release")) {
            Ok(s) if s.trim() == "good" => good.push(name),
            Ok(_) => failed.push(name),
            Err(_) => {}
        }
    }
    let previous = history
        .iter()
        .rev()
        .find(|r| Some(*r) != current.as_ref() && good.contains(r))
        .cloned();
    let kept: Vec<&String> = good
        .iter()
        .filter(|r| Some(*r) != current.as_ref() && Some(*r) != previous.as_ref())
        .collect();
    json!({
        "directory": directory.display().to_string(),
        "current": current,
        "previous": previous,
        "kept": kept,
        "unfinished": failed,
        "history": history,
    })
}

/// The status as people read it.
fn text(status: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let parts = status["parts"].as_array().map_or(&[][..], Vec::as_slice);
    if parts.is_empty() {
        out.push_str("nothing installed\n");
    }
    for p in parts {
        let recipe = match &p["recipe"] {
            Value::Object(r) => format!(
                "{}:{} {}",
                r["plugin"].as_str().unwrap_or(""),
                r["entry"].as_str().unwrap_or(""),
                r["version"].as_str().unwrap_or("")
            ),
            _ => "unknown recipe".to_owned(),
        };
        let _ = write!(out, "{}  {recipe}", p["part"].as_str().unwrap_or(""));
        if let Some(m) = p["modified"].as_str() {
            let _ = write!(out, "  {m}");
        }
        out.push('\n');
        if let Some(outputs) = p["outputs"].as_object() {
            for (k, v) in outputs {
                let _ = writeln!(out, "    {k} = {}", v.as_str().unwrap_or(""));
            }
        }
        let paths = p["paths"].as_array().map_or(0, Vec::len);
        let _ = writeln!(out, "    {paths} paths owned");
        if let Some(r) = p["releases"].as_object() {
            let name = |k: &str| r[k].as_str().unwrap_or("none").to_owned();
            let list = |k: &str| {
                r[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default()
            };
            let kept = list("kept");
            let _ = writeln!(
                out,
                "    current: {}, previous: {}, kept: {}",
                name("current"),
                name("previous"),
                if kept.is_empty() { "none" } else { &kept }
            );
            let unfinished = list("unfinished");
            if !unfinished.is_empty() {
                let _ = writeln!(out, "    unfinished: {unfinished}");
            }
            let _ = writeln!(out, "    history: {}", list("history"));
        }
    }
    out
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3339(t), "2026-12-31T23:59:59Z");
    }
}
