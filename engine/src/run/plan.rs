//! Deciding what each part needs: compare what the config wants with what the state
//! records, and say why. Pure data in, data out, so `plan` and `install` share it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::state::{PartRecord, RecipeRecord, State};

/// What the config wants for one part, fully resolved.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub recipe: RecipeRecord,
    pub options: BTreeMap<String, String>,
    /// `[buildout]` as the config resolves it now, for the options the record says the
    /// recipe read.
    pub buildout: Arc<BTreeMap<String, String>>,
    pub has_update: bool,
}

/// What happens to a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not installed yet.
    Install,
    /// Installed but changed: uninstalled (in the uninstall phase), then installed.
    Reinstall,
    /// Unchanged, and its recipe has an `update` hook, which runs.
    Update,
    /// Unchanged, nothing runs.
    Keep,
    /// Installed but no longer a part: uninstalled.
    Uninstall,
}

impl Action {
    /// The word `plan` prints.
    pub fn word(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Reinstall => "reinstall",
            Action::Update => "update",
            Action::Keep => "keep",
            Action::Uninstall => "uninstall",
        }
    }
}

/// Why a part gets its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    New,
    NoLongerAPart,
    Unchanged,
    OptionChanged {
        option: String,
        new: String,
        old: String,
    },
    OptionAdded {
        option: String,
        new: String,
    },
    OptionRemoved {
        option: String,
        old: String,
    },
    /// A `[buildout]` option the recipe read last time has another value (`None`: unset).
    BuildoutChanged {
        option: String,
        new: Option<String>,
        old: Option<String>,
    },
    RecipeChanged {
        new: RecipeRecord,
        old: Option<RecipeRecord>,
    },
    PathMissing {
        path: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::New => f.write_str("new part"),
            Reason::NoLongerAPart => f.write_str("no longer a part"),
            Reason::Unchanged => f.write_str("unchanged"),
            Reason::OptionChanged { option, new, old } => {
                write!(
                    f,
                    "option `{option}` changed: {} != {}",
                    shown(new),
                    shown(old)
                )
            }
            Reason::OptionAdded { option, new } => {
                write!(f, "option `{option}` added: {}", shown(new))
            }
            Reason::OptionRemoved { option, old } => {
                write!(f, "option `{option}` removed (was {})", shown(old))
            }
            Reason::BuildoutChanged { option, new, old } => {
                let value = |v: &Option<String>| v.as_deref().map_or("unset".into(), shown);
                write!(
                    f,
                    "buildout:{option}, which the recipe reads, changed: {} != {}",
                    value(new),
                    value(old)
                )
            }
            Reason::RecipeChanged {
                new,
                old: Some(old),
            } if new.plugin != old.plugin => {
                write!(f, "recipe plugin changed: {} != {}", new.plugin, old.plugin)
            }
            Reason::RecipeChanged {
                new,
                old: Some(old),
            } if new.entry != old.entry => {
                write!(
                    f,
                    "recipe changed: {}:{} != {}:{}",
                    new.plugin, new.entry, old.plugin, old.entry
                )
            }
            Reason::RecipeChanged {
                new,
                old: Some(old),
            } if new.version != old.version => {
                write!(
                    f,
                    "plugin {} version changed: {} != {}",
                    new.plugin, new.version, old.version
                )
            }
            Reason::RecipeChanged {
                new,
                old: Some(old),
            } => write!(
                f,
                "plugin {} {} was rebuilt: digest {} != {}",
                new.plugin,
                new.version,
                short(&new.digest),
                short(&old.digest)
            ),
            Reason::RecipeChanged { new, old: None } => {
                write!(f, "recipe {}:{} not recorded", new.plugin, new.entry)
            }
            Reason::PathMissing { path } => write!(f, "path {path} is missing"),
        }
    }
}

/// A value as messages show it: quoted, escaped, cut after 60 characters.
fn shown(value: &str) -> String {
    const MAX: usize = 60;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let cut: String = value.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// Compares a recorded part with what is wanted; `exists` says whether a recorded path is
/// still on disk. `None` means unchanged.
pub fn change(
    record: &PartRecord,
    wanted: &Wanted,
    missing: &dyn Fn(&[String]) -> Option<usize>,
) -> Option<Reason> {
    if !record
        .recipe
        .as_ref()
        .is_some_and(|r| r.same_code(&wanted.recipe))
    {
        return Some(Reason::RecipeChanged {
            new: wanted.recipe.clone(),
            old: record.recipe.clone(),
        });
    }
    if let Some(reason) = option_change(&record.options, &wanted.options) {
        return Some(reason);
    }
    if let Some(reason) = buildout_change(record, &wanted.buildout) {
        return Some(reason);
    }
    missing(&record.paths).map(|i| Reason::PathMissing {
        path: record.paths[i].clone(),
    })
}

/// The first option (in name order) that differs, if any.
pub fn option_change(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Option<Reason> {
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .find_map(|name| match (new.get(name), old.get(name)) {
            (Some(n), Some(o)) if n != o => Some(Reason::OptionChanged {
                option: name.clone(),
                new: n.clone(),
                old: o.clone(),
            }),
            (Some(n), None) => Some(Reason::OptionAdded {
                option: name.clone(),
                new: n.clone(),
            }),
            (None, Some(o)) => Some(Reason::OptionRemoved {
                option: name.clone(),
                old: o.clone(),
            }),
            _ => None,
        })
}

/// The first `[buildout]` option (in name order) the recipe read whose value is not the
/// one it got, if any.
pub fn buildout_change(record: &PartRecord, now: &BTreeMap<String, String>) -> Option<Reason> {
    let mut reads: Vec<(&str, Option<&str>)> = record.buildout_reads().collect();
    reads.sort_unstable();
    reads.into_iter().find_map(|(option, old)| {
        let new = now.get(option).map(String::as_str);
        (new != old).then(|| Reason::BuildoutChanged {
            option: option.to_string(),
            new: new.map(str::to_owned),
            old: old.map(str::to_owned),
        })
    })
}

/// What one part needs, and why.
pub fn decide(
    record: Option<&PartRecord>,
    wanted: &Wanted,
    missing: &dyn Fn(&[String]) -> Option<usize>,
) -> (Action, Reason) {
    match record {
        None => (Action::Install, Reason::New),
        Some(record) => match change(record, wanted, missing) {
            Some(reason) => (Action::Reinstall, reason),
            None if wanted.has_update => (Action::Update, Reason::Unchanged),
            None => (Action::Keep, Reason::Unchanged),
        },
    }
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub part: String,
    pub action: Action,
    pub reason: Reason,
}

/// The whole plan: the uninstalls (reverse of the old install order), then every wanted part
/// in install order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub uninstall: Vec<Step>,
    pub parts: Vec<Step>,
}

impl Plan {
    /// Plans `wanted` (in install order) against `state`. With `partial` (`install PART...`)
    /// parts that are recorded but not wanted are left alone instead of being uninstalled.
    pub fn new(
        state: &State,
        wanted: &[Wanted],
        partial: bool,
        missing: &dyn Fn(&[String]) -> Option<usize>,
    ) -> Plan {
        let mut plan = Plan::default();
        let mut uninstall = BTreeMap::new();
        for w in wanted {
            let (action, reason) = decide(state.parts.get(&w.name), w, missing);
            if action == Action::Reinstall {
                uninstall.insert(w.name.clone(), reason.clone());
            }
            plan.parts.push(Step {
                part: w.name.clone(),
                action,
                reason,
            });
        }
        if !partial {
            let names: std::collections::HashSet<&str> =
                wanted.iter().map(|w| w.name.as_str()).collect();
            for name in state.parts.keys() {
                if !names.contains(name.as_str()) {
                    uninstall.insert(name.clone(), Reason::NoLongerAPart);
                }
            }
        }
        for name in state.order.iter().rev() {
            if let Some(reason) = uninstall.remove(name) {
                let action = match reason {
                    Reason::NoLongerAPart => Action::Uninstall,
                    _ => Action::Reinstall,
                };
                plan.uninstall.push(Step {
                    part: name.clone(),
                    action,
                    reason,
                });
            }
        }
        plan
    }

    /// Whether running the plan would change nothing on disk but `update` hooks.
    pub fn is_noop(&self) -> bool {
        self.uninstall.is_empty() && self.parts.iter().all(|s| s.action == Action::Keep)
    }
}

impl fmt::Display for Plan {
    /// The text `rbuildout plan` prints: one line per part, uninstalls first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.uninstall {
            writeln!(f, "{:<10} {}  ({})", "uninstall", s.part, s.reason)?;
        }
        for s in &self.parts {
            writeln!(f, "{:<10} {}  ({})", s.action.word(), s.part, s.reason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(digest: &str) -> RecipeRecord {
        RecipeRecord {
            plugin: "testkit".into(),
            version: "1".into(),
            entry: "file".into(),
            digest: digest.into(),
            stamp: String::new(),
        }
    }

    fn wanted(name: &str, text: &str, has_update: bool) -> Wanted {
        Wanted {
            name: name.into(),
            recipe: recipe("d1"),
            options: BTreeMap::from([("text".to_string(), text.to_string())]),
            buildout: Arc::new(BTreeMap::from([("bin-directory".into(), "/i/bin".into())])),
            has_update,
        }
    }

    fn record(w: &Wanted, paths: &[&str]) -> PartRecord {
        PartRecord {
            recipe: Some(w.recipe.clone()),
            options: w.options.clone(),
            outputs: BTreeMap::new(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            ..PartRecord::default()
        }
    }

    #[test]
    fn unchanged_parts_are_kept_or_updated() {
        let all = |_: &[String]| None;
        let w = wanted("a", "x", false);
        assert_eq!(
            decide(Some(&record(&w, &["p"])), &w, &all),
            (Action::Keep, Reason::Unchanged)
        );
        let w = wanted("a", "x", true);
        assert_eq!(decide(Some(&record(&w, &[])), &w, &all).0, Action::Update);
        assert_eq!(decide(None, &w, &all), (Action::Install, Reason::New));
    }

    #[test]
    fn every_kind_of_change_reinstalls_and_says_why() {
        let all = |_: &[String]| None;
        let w = wanted("a", "new", false);
        let mut old = record(&w, &["p"]);
        old.options.insert("text".into(), "old".into());
        let (action, reason) = decide(Some(&old), &w, &all);
        assert_eq!(action, Action::Reinstall);
        assert_eq!(
            reason.to_string(),
            r#"option `text` changed: "new" != "old""#
        );

        let mut old = record(&w, &[]);
        old.options.insert("gone".into(), "1".into());
        assert_eq!(
            decide(Some(&old), &w, &all).1.to_string(),
            r#"option `gone` removed (was "1")"#
        );

        let mut old = record(&w, &[]);
        old.recipe.as_mut().unwrap().stamp = "another file".into();
        assert_eq!(
            decide(Some(&old), &w, &all).0,
            Action::Keep,
            "the stamp is no identity"
        );
        old.recipe = Some(recipe("d0"));
        assert_eq!(
            decide(Some(&old), &w, &all).1.to_string(),
            "plugin testkit 1 was rebuilt: digest d1 != d0"
        );

        let old = record(&w, &["parts/a", "parts/b"]);
        let (action, reason) = decide(Some(&old), &w, &|paths| {
            paths.iter().position(|p| p == "parts/b")
        });
        assert_eq!(
            (action, reason.to_string()),
            (Action::Reinstall, "path parts/b is missing".into())
        );
    }

    #[test]
    fn a_buildout_option_the_recipe_read_is_an_input() {
        let all = |_: &[String]| None;
        let w = wanted("a", "x", false);
        let mut old = record(&w, &[]);
        assert_eq!(decide(Some(&old), &w, &all).0, Action::Keep, "read nothing");
        old.add_buildout_reads(&BTreeMap::from([
            ("bin-directory".to_string(), Some("/i/bin".to_string())),
            ("relative-paths".to_string(), None),
        ]));
        assert_eq!(decide(Some(&old), &w, &all).0, Action::Keep, "same values");
        let mut now = (*w.buildout).clone();
        now.insert("bin-directory".into(), "/i/tools".into());
        let moved = Wanted {
            buildout: Arc::new(now.clone()),
            ..w.clone()
        };
        let (action, reason) = decide(Some(&old), &moved, &all);
        assert_eq!(action, Action::Reinstall);
        assert_eq!(
            reason.to_string(),
            r#"buildout:bin-directory, which the recipe reads, changed: "/i/tools" != "/i/bin""#
        );
        now.insert("bin-directory".into(), "/i/bin".into());
        now.insert("relative-paths".into(), "true".into());
        let set = Wanted {
            buildout: Arc::new(now),
            ..w
        };
        assert_eq!(
            decide(Some(&old), &set, &all).1.to_string(),
            r#"buildout:relative-paths, which the recipe reads, changed: "true" != unset"#
        );
    }

    #[test]
    fn uninstalls_come_first_in_reverse_of_the_old_order() {
        let a = wanted("a", "1", false);
        let b = wanted("b", "1", false);
        let c = wanted("c", "1", false);
        let mut state = State::default();
        state.insert("gone1", PartRecord::default());
        state.insert("a", record(&a, &[]));
        state.insert("gone2", PartRecord::default());
        state.insert("b", record(&wanted("b", "0", false), &[]));
        let all = |_: &[String]| None;
        let plan = Plan::new(&state, &[a.clone(), b.clone(), c.clone()], false, &all);
        let un: Vec<_> = plan
            .uninstall
            .iter()
            .map(|s| (s.part.as_str(), s.action))
            .collect();
        assert_eq!(
            un,
            [
                ("b", Action::Reinstall),
                ("gone2", Action::Uninstall),
                ("gone1", Action::Uninstall)
            ]
        );
        let parts: Vec<_> = plan
            .parts
            .iter()
            .map(|s| (s.part.as_str(), s.action))
            .collect();
        assert_eq!(
            parts,
            [
                ("a", Action::Keep),
                ("b", Action::Reinstall),
                ("c", Action::Install)
            ]
        );
        assert!(!plan.is_noop());

        let partial = Plan::new(&state, &[a], true, &all);
        assert!(
            partial.uninstall.is_empty(),
            "install PART leaves other parts alone"
        );
        assert!(partial.is_noop());
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let r = Reason::OptionAdded {
            option: "o".into(),
            new: "x".repeat(100),
        };
        assert!(r.to_string().ends_with("\"…"), "{r}");
    }
}
