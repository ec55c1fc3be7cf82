//! What a job sees of the config: a frozen, thread-safe [`View`], made by the runner when
//! the part's dependencies are done and handed to the job with its work.
//!
//! A view answers every option query of the recipe (`get_option`) on whatever thread the
//! recipe asks from, without asking the runner: the part's own options and `[buildout]` were
//! resolved when the view was made, any other section is resolved on first use from the
//! config and a snapshot of the outputs published so far, neither of which changes after. So
//! data flows one way: the runner resolves and publishes, a job reads its view and returns
//! an outcome.
//!
//! A view remembers which `[buildout]` options the recipe read and what it got: the runner
//! records them with the part ([`crate::state::PartRecord::buildout`]), as inputs of the part
//! like its options, so a later change of one of them reinstalls it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::config::{Config, Outputs, Resolver};

/// What the views made at one moment share: the config, `[buildout]` resolved then and a
/// snapshot of the outputs published so far.
#[derive(Clone)]
pub struct Snapshot<'c> {
    pub buildout: Arc<BTreeMap<String, String>>,
    pub config: &'c Config,
    pub outputs: Arc<Outputs>,
}

/// A part's resolved options and everything else it may read, frozen.
pub struct View<'c> {
    part: String,
    /// The part's options as resolved when its dependencies were done: what its recipe is
    /// called with and what the state records. For an uninstall, the recorded options.
    options: BTreeMap<String, String>,
    /// Whether `options` are the part's section in the config now (not for an uninstall,
    /// whose hook may ask what the config says now, e.g. to tell a reinstall).
    current: bool,
    /// `[buildout]` resolved at the same time, the config and the outputs.
    snapshot: Snapshot<'c>,
    /// Other sections, resolved from the config and the outputs when first asked for.
    rest: Mutex<Option<Resolver<'c>>>,
    /// The `[buildout]` options the recipe read, with what it got (`None`: unset).
    reads: Mutex<BTreeMap<String, Option<String>>>,
}

impl<'c> View<'c> {
    pub fn new(part: &str, options: BTreeMap<String, String>, snapshot: Snapshot<'c>) -> View<'c> {
        View {
            part: part.to_string(),
            options,
            current: true,
            snapshot,
            rest: Mutex::new(None),
            reads: Mutex::default(),
        }
    }

    /// The part's own resolved options.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    /// A view for an uninstall hook, called with the `recorded` options; queries of the
    /// part's own section get what the config says now.
    pub fn recorded(
        part: &str,
        recorded: BTreeMap<String, String>,
        snapshot: Snapshot<'c>,
    ) -> View<'c> {
        View {
            current: false,
            ..View::new(part, recorded, snapshot)
        }
    }

    /// The part's own options and the `[buildout]` options its recipe read, for the record
    /// of what it was installed with.
    pub fn into_inputs(self) -> (BTreeMap<String, String>, BTreeMap<String, Option<String>>) {
        let reads = self.reads.into_inner().unwrap_or_else(|e| e.into_inner());
        (self.options, reads)
    }

    /// The `[buildout]` options the recipe read so far, with what it got.
    pub fn reads(&self) -> BTreeMap<String, Option<String>> {
        self.reads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Any resolved option of any section, as text; `None` when it is missing or does not
    /// resolve (e.g. it refers to an output nobody published).
    pub fn option(&self, section: &str, option: &str) -> Option<String> {
        if section == self.part && self.current {
            return self.options.get(option).cloned();
        }
        if section == "buildout" {
            let value = self.snapshot.buildout.get(option).cloned();
            self.reads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(option.to_string(), value.clone());
            return value;
        }
        let mut rest = self.rest.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = &self.snapshot;
        let resolver = rest.get_or_insert_with(|| {
            Resolver::with_outputs(snapshot.config, snapshot.outputs.clone())
        });
        resolver
            .get_opt(section, option)
            .ok()
            .flatten()
            .map(|v| v.to_text())
    }
}

impl View<'_> {
    /// The names of every option of `section` that resolves, in the config's order (then
    /// outputs of its part not in the config, by name); `None` when there is no such
    /// section.
    pub fn option_names(&self, section: &str) -> Option<Vec<String>> {
        if section == self.part && self.current {
            return Some(in_config_order(
                self.snapshot.config,
                section,
                self.options.keys().cloned(),
            ));
        }
        if section == "buildout" {
            let names: Vec<String> = self.snapshot.buildout.keys().cloned().collect();
            return Some(in_config_order(
                self.snapshot.config,
                section,
                names.into_iter(),
            ));
        }
        let mut rest = self.rest.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = &self.snapshot;
        let resolver = rest.get_or_insert_with(|| {
            Resolver::with_outputs(snapshot.config, snapshot.outputs.clone())
        });
        let names = resolver.option_names(section).ok()?;
        let resolving: Vec<String> = names
            .into_iter()
            .filter(|n| resolver.get(section, n).is_ok())
            .collect();
        Some(in_config_order(
            self.snapshot.config,
            section,
            resolving.into_iter(),
        ))
    }
}

/// `names` ordered as the config's `section` lists them; names it does not list (outputs)
/// after those, by name.
fn in_config_order(
    config: &Config,
    section: &str,
    names: impl Iterator<Item = String>,
) -> Vec<String> {
    let listed = config.sections.get(section).map(|s| &s.options);
    let position = |name: &str| {
        listed
            .and_then(|o| o.get_index_of(name))
            .unwrap_or(usize::MAX)
    };
    let mut names: Vec<String> = names.collect();
    names.sort_by(|a, b| position(a).cmp(&position(b)).then_with(|| a.cmp(b)));
    names
}

/// `[buildout]` as views show it: every option that resolves, as text.
pub fn buildout_texts(resolver: &mut Resolver<'_>) -> BTreeMap<String, String> {
    let names = resolver.option_names("buildout").unwrap_or_default();
    names
        .into_iter()
        .filter_map(|n| {
            let v = resolver.get("buildout", &n).ok()?;
            Some((n, v.to_text()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config::{Format, Value, load_str};

    #[test]
    fn the_sections_buildout_reaches_include_appends_and_references_of_references() {
        let text = "[buildout]\nparts = ['a', 'b', 'c']\nx = '${data:v}'\n\
                    [a]\nrecipe = 'r'\n[b]\nrecipe = 'r'\n[c]\nrecipe = 'r'\n\
                    [data]\nv = '${a:out}'\n";
        let config = load_str(text, "t", Path::new("/i"), Format::Toml).unwrap();
        let mut r = config.resolver();
        let reach = r.sections_reached("buildout");
        assert!(reach.contains("buildout") && reach.contains("data") && reach.contains("a"));
        assert!(!reach.contains("b") && !reach.contains("c"), "{reach:?}");
        let cfg = "[buildout]\nparts = a b\n[buildout]\nparts += ${b:more}\n\
                   [a]\nrecipe = r\n[b]\nrecipe = r\n";
        let config = load_str(cfg, "t.cfg", Path::new("/i"), Format::Cfg).unwrap();
        let mut r = config.resolver();
        assert!(r.sections_reached("buildout").contains("b"));
    }

    #[test]
    fn a_view_answers_from_what_was_resolved_and_notes_what_it_read_of_buildout() {
        let text = "[buildout]\nparts = ['a', 'b']\nbin-directory = 'tools'\n\
                    [a]\nrecipe = 'r'\n[b]\nrecipe = 'r'\nx = '${a:out}'\n[data]\nv = '${a:out}!'\n";
        let config = load_str(text, "t", Path::new("/i"), Format::Toml).unwrap();
        let mut runner = config.resolver();
        runner.set_output("a", "out", Value::Str("1".into()));
        let options = BTreeMap::from([("x".to_string(), "1".to_string())]);
        let view = View::new(
            "b",
            options,
            Snapshot {
                buildout: Arc::new(buildout_texts(&mut runner)),
                config: &config,
                outputs: runner.outputs(),
            },
        );
        // Published after the view was made: the view does not see it.
        runner.set_output("a", "out", Value::Str("2".into()));
        let answers = std::thread::scope(|s| {
            s.spawn(|| {
                (
                    view.option("b", "x"),
                    view.option("data", "v"),
                    view.option("buildout", "bin-directory"),
                    view.option("buildout", "relative-paths"),
                    view.option("nosuch", "v"),
                )
            })
            .join()
            .unwrap()
        });
        assert_eq!(
            answers,
            (
                Some("1".into()),
                Some("1!".into()),
                Some("/i/tools".into()),
                None,
                None
            )
        );
        let (options, reads) = view.into_inputs();
        assert_eq!(options["x"], "1");
        assert_eq!(
            reads,
            BTreeMap::from([
                ("bin-directory".to_string(), Some("/i/tools".to_string())),
                ("relative-paths".to_string(), None),
            ])
        );
    }
}
