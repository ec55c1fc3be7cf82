//! The parts to install, their order and the dependencies between them.
//!
//! The order is zc.buildout's: sections are initialized as buildout initializes them
//! (`[buildout]` first, then each listed part), an initialized section's options are
//! substituted in sorted order and every section a reference reaches is initialized first;
//! a section with a `recipe` becomes a part when its initialization ends (SPEC §2.5).
//!
//! Parts may refer to each other (`[zeoserver] eggs = ${instance:eggs}` with `[instance]
//! zeo-address = ${zeoserver:zeo-address}`): as in zc.buildout, a reference to a section
//! whose initialization is under way does not wait for it, so the one reached second ends
//! first and is installed first. Only values that loop are an error (the resolver reports
//! them). The dependencies handed to the scheduler are the edges that agree with the order
//! (to a part installed earlier), so they always form a DAG; the edge of such a pair that
//! points forward is dropped, and a reference across it to an install-time output (an
//! option the later part only publishes when installed) is an error.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::config::{Config, Diagnostic, Error, ErrorKind, IndexRef, Resolver, Span, Value};

/// The parts of a config, their install order and their dependencies.
///
/// A part is also known by its index: its position in [`Parts::order`]. The dependencies
/// are kept as indices, each smaller than the index of the part that depends on it, so the
/// graph is a DAG by construction; the run's scheduler ([`crate::run::schedule`]) walks it
/// as it is.
#[derive(Debug, Clone)]
pub struct Parts {
    order: Vec<String>,
    index: HashMap<String, usize>,
    /// Per part index, the indices of the parts it depends on, ascending.
    deps: Vec<Vec<usize>>,
    recipes: HashMap<String, String>,
    evaluated: Vec<String>,
}

impl Parts {
    /// zc.buildout's sequential install order, SPEC §2.5.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// The index of a part (its position in the order).
    pub fn index(&self, part: &str) -> Option<usize> {
        self.index.get(part).copied()
    }

    /// The direct dependencies (references + `needs`) of the part at `index`, as indices,
    /// ascending (install order); each is smaller than `index`.
    pub fn dependency_indices(&self, index: usize) -> &[usize] {
        self.deps.get(index).map_or(&[], Vec::as_slice)
    }

    /// Direct part dependencies (references + `needs`), in install order.
    pub fn dependencies(&self, part: &str) -> Vec<String> {
        self.index(part)
            .map(|i| {
                self.dependency_indices(i)
                    .iter()
                    .map(|&d| self.order[d].clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The raw `recipe` value after substitution ("" for a name that is not a part).
    pub fn recipe(&self, part: &str) -> &str {
        self.recipes.get(part).map_or("", String::as_str)
    }

    /// Every section zc.buildout would initialize: `[buildout]`, the parts and every
    /// section they reach, in initialization order.
    pub fn evaluated(&self) -> &[String] {
        &self.evaluated
    }
}

enum Task {
    Init(usize),
    Walk(usize, usize),
    Finish(usize),
}

/// Names in a value, as zc.buildout reads `parts`: a string split on any whitespace, a list
/// element by element.
fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Str(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::List(l) => l.clone(),
    }
}

/// The names `needs` (TOML) or `<part-dependencies>` (`.cfg`'s `=>`) lists.
fn needs(resolver: &mut Resolver, section: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for opt in ["needs", "<part-dependencies>"] {
        if let Some(v) = resolver.get_ref(section, opt)? {
            out.extend(words(&v));
        }
    }
    Ok(out)
}

fn span_of_name(config: &Config, span: Option<Span>, name: &str) -> Option<Span> {
    let s = span?;
    // Point at the name inside the value when it can be found.
    match config.span_text(s).and_then(|t| find_word(&t, name)) {
        Some(i) => Some(Span::new(
            s.file,
            s.start as usize + i,
            s.start as usize + i + name.len(),
        )),
        None => Some(s),
    }
}

fn find_word(hay: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].find(word) {
        let at = from + i;
        let before = hay[..at].chars().last();
        let after = hay[at + word.len()..].chars().next();
        let boundary =
            |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || "\"',[]=".contains(c));
        if boundary(before) && boundary(after) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Finds the parts, their order and dependencies. Errors: `buildout:parts` missing, a part
/// without a section or recipe, a substitution error in an evaluated section, a cycle.
pub fn parts(config: &Config, resolver: &mut Resolver) -> Result<Parts, Error> {
    let listed = words(&resolver.get("buildout", "parts")?);
    let parts_span = resolver
        .history("buildout", "parts")?
        .iter()
        .rev()
        .find_map(|s| match s.source {
            crate::config::Source::File(sp) => Some(sp),
            _ => None,
        });
    let mut errors: Option<Error> = None;
    let mut push_err = |e: Error| match &mut errors {
        Some(all) => all.extend(e),
        None => errors = Some(e),
    };
    for p in &listed {
        if !config.has_section(p) {
            push_err(
                config.error(
                    Diagnostic::new(
                        ErrorKind::MissingSection,
                        format!(
                            "part `{p}` is listed in buildout:parts but there is no section [{p}]"
                        ),
                    )
                    .at(span_of_name(config, parts_span, p), "unknown part"),
                ),
            );
        }
    }
    if let Some(e) = errors.take() {
        return Err(e);
    }

    let n = config.section_names().count();
    let mut inited = vec![false; n];
    let mut walked: HashSet<(usize, usize)> = HashSet::new();
    // Per section, per option index, the references that option holds.
    let mut tables: Vec<Vec<Vec<IndexRef>>> = vec![Vec::new(); n];
    let mut targets: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut evaluated = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    let mut recipes = HashMap::new();
    let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
    let mut tasks: Vec<Task> = Vec::new();
    // TOML's `needs` edges, (part, needed section): unlike a reference, an explicit need
    // cannot be dropped to break a cycle.
    let mut explicit: Vec<(usize, usize)> = Vec::new();
    let roots: Vec<usize> = std::iter::once("buildout")
        .chain(listed.iter().map(String::as_str))
        .filter_map(|r| resolver.section_index(r))
        .collect();
    for root in roots {
        tasks.push(Task::Init(root));
        while let Some(t) = tasks.pop() {
            match t {
                Task::Init(s) => {
                    if inited[s] {
                        continue;
                    }
                    inited[s] = true;
                    let name = resolver.section_name(s);
                    evaluated.push(name.to_owned());
                    // Substitutes every option now, so errors show in buildout's order.
                    // An error here does not stop the walk: the other sections' errors are
                    // independent, and one run reports them all.
                    if let Err(e) = resolver.check_section(name) {
                        match &mut errors {
                            Some(all) => all.extend(e),
                            None => errors = Some(e),
                        }
                    }
                    let mut seq = Vec::new();
                    let table = resolver.reference_table(s)?;
                    let mut by_entry =
                        vec![Vec::new(); table.iter().map(|(i, _)| i + 1).max().unwrap_or(0)];
                    for (i, refs) in table {
                        for &(t, e) in &refs {
                            if t != s && !targets[s].contains(&t) {
                                targets[s].push(t);
                            }
                            seq.push(Task::Init(t));
                            if let Some(e) = e {
                                seq.push(Task::Walk(t, e));
                            }
                        }
                        by_entry[i] = refs;
                    }
                    tables[s] = by_entry;
                    if name != "buildout" {
                        for d in needs(resolver, name)? {
                            let Some(di) = resolver.section_index(&d) else {
                                let span =
                                    resolver
                                        .history(name, "needs")?
                                        .last()
                                        .and_then(|st| match st.source {
                                            crate::config::Source::File(sp) => Some(sp),
                                            _ => None,
                                        });
                                return Err(config.error(
                                    Diagnostic::new(
                                        ErrorKind::MissingSection,
                                        format!("part [{name}] needs [{d}], which is not defined"),
                                    )
                                    .at(span_of_name(config, span, &d), "unknown section"),
                                ));
                            };
                            if di != s && !targets[s].contains(&di) {
                                targets[s].push(di);
                            }
                            seq.push(Task::Init(di));
                        }
                        if let Some(v) = resolver.get_ref(name, "needs")? {
                            explicit.extend(
                                words(&v)
                                    .iter()
                                    .filter_map(|d| resolver.section_index(d))
                                    .map(|di| (s, di)),
                            );
                        }
                    }
                    tasks.push(Task::Finish(s));
                    tasks.extend(seq.into_iter().rev());
                }
                Task::Walk(t, e) => {
                    if !walked.insert((t, e)) {
                        continue;
                    }
                    for &(u, f) in tables[t].get(e).map_or(&[][..], Vec::as_slice).iter().rev() {
                        if let Some(f) = f {
                            tasks.push(Task::Walk(u, f));
                        }
                        tasks.push(Task::Init(u));
                    }
                }
                Task::Finish(s) => {
                    let name = resolver.section_name(s);
                    if name == "buildout" {
                        continue;
                    }
                    let recipe = match resolver.get_ref(name, "recipe") {
                        Ok(r) => r,
                        Err(e) => {
                            match &mut errors {
                                Some(all) => all.extend(e),
                                None => errors = Some(e),
                            }
                            continue;
                        }
                    };
                    // As in zc.buildout, an empty recipe does not make a part.
                    match recipe.filter(|r| !r.to_text().is_empty()) {
                        Some(r) => {
                            recipes.insert(name.to_owned(), r.to_text());
                            order.push(s);
                        }
                        None if listed_set.contains(name)
                            && resolver.get_ref(name, "recipe")?.is_none() =>
                        {
                            return Err(config.error(
                                Diagnostic::new(
                                    ErrorKind::MissingOption,
                                    format!("part [{name}] has no recipe"),
                                )
                                .at(
                                    config.section_span(name),
                                    "add a `recipe` option to this section",
                                ),
                            ));
                        }
                        None => {}
                    }
                }
            }
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let (deps, forward) = dependencies(&targets, &order);
    check_explicit_needs(config, resolver, &explicit, &forward)?;
    check_forward_outputs(config, resolver, &targets, &order, &forward)?;
    let order: Vec<String> = order
        .iter()
        .map(|&i| resolver.section_name(i).to_owned())
        .collect();
    let index = order
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), i))
        .collect();
    Ok(Parts {
        order,
        index,
        deps,
        recipes,
        evaluated,
    })
}

/// Per part (by position in the order), the positions of the parts it depends on, ascending.
type Dependencies = Vec<Vec<usize>>;

/// For each part, the parts its references (through data sections) and `needs` reach
/// first, stopping at parts; `targets` holds each initialized section's direct targets.
/// Returns the dependencies on parts installed earlier, and apart the pairs (part, later
/// part) whose edge points forward in the order and is dropped.
fn dependencies(targets: &[Vec<usize>], order: &[usize]) -> (Dependencies, Vec<(usize, usize)>) {
    let mut position = vec![usize::MAX; targets.len()];
    for (i, &p) in order.iter().enumerate() {
        position[p] = i;
    }
    let mut deps = Vec::with_capacity(order.len());
    let mut forward = Vec::new();
    let mut seen = vec![usize::MAX; targets.len()];
    for &p in order {
        let mut found: Vec<usize> = Vec::new();
        for s in reach(targets, &position, p, &mut seen) {
            if position[s] == usize::MAX {
                continue;
            }
            if position[s] < position[p] {
                found.push(position[s]);
            } else {
                forward.push((p, s));
            }
        }
        found.sort_unstable();
        found.dedup();
        deps.push(found);
    }
    (deps, forward)
}

/// The sections part `p` reaches: data sections through their references, and the parts
/// where the walk stops. `seen` marks visits per part (`seen[s] == p`).
fn reach(targets: &[Vec<usize>], position: &[usize], p: usize, seen: &mut [usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack: Vec<usize> = targets[p].iter().rev().copied().collect();
    while let Some(s) = stack.pop() {
        if s == p || seen[s] == p {
            continue;
        }
        seen[s] = p;
        out.push(s);
        if position[s] == usize::MAX {
            stack.extend(targets[s].iter().rev().copied());
        }
    }
    out
}

/// A `needs` edge that points forward in the order (the needed part refers to or needs the
/// needing one, so it is installed after it) cannot be honoured: an error naming both.
fn check_explicit_needs(
    config: &Config,
    resolver: &mut Resolver,
    explicit: &[(usize, usize)],
    forward: &[(usize, usize)],
) -> Result<(), Error> {
    let Some(&(p, d)) = explicit.iter().find(|e| forward.contains(e)) else {
        return Ok(());
    };
    let (part, needed) = (resolver.section_name(p), resolver.section_name(d));
    let span = resolver
        .history(part, "needs")?
        .iter()
        .rev()
        .find_map(|st| match st.source {
            crate::config::Source::File(sp) => Some(sp),
            _ => None,
        });
    Err(config.error(
        Diagnostic::new(
            ErrorKind::Cycle,
            format!("parts depend on each other in a cycle: {part} -> {needed} -> {part}"),
        )
        .at(
            span_of_name(config, span, needed),
            "this need cannot be met",
        )
        .note(format!(
            "[{needed}] refers to or needs [{part}], so it is installed after it; remove one of \
             the two"
        )),
    ))
}

/// A part installed before another that it refers to can read that part's config values,
/// not the outputs it publishes when installed: such a reference is an error naming both.
fn check_forward_outputs(
    config: &Config,
    resolver: &mut Resolver,
    targets: &[Vec<usize>],
    order: &[usize],
    forward: &[(usize, usize)],
) -> Result<(), Error> {
    if forward.is_empty() {
        return Ok(());
    }
    let mut position = vec![usize::MAX; targets.len()];
    for (i, &p) in order.iter().enumerate() {
        position[p] = i;
    }
    let mut seen = vec![usize::MAX; targets.len()];
    let mut errors: Option<Error> = None;
    for &(p, later) in forward {
        // The sections whose values `p` reads: itself and the data sections it reaches.
        let mut readers = vec![p];
        readers.extend(
            reach(targets, &position, p, &mut seen)
                .into_iter()
                .filter(|&s| position[s] == usize::MAX),
        );
        let part = resolver.section_name(p);
        let later_name = resolver.section_name(later);
        let defined = resolver.option_names(later_name)?;
        for r in readers {
            let reader = resolver.section_name(r);
            for option in resolver.option_names(reader)? {
                for (sec, opt) in resolver.references(reader, &option)? {
                    if sec != later_name || defined.contains(&opt) {
                        continue;
                    }
                    let span = resolver
                        .history(reader, &option)?
                        .iter()
                        .rev()
                        .find_map(|st| match st.source {
                            crate::config::Source::File(sp) => Some(sp),
                            _ => None,
                        });
                    let e = config.error(
                        Diagnostic::new(
                            ErrorKind::Cycle,
                            format!(
                                "{reader}:{option} needs ${{{later_name}:{opt}}}, an output \
                                 [{later_name}] only publishes when installed, but [{part}] is \
                                 installed first because the two parts refer to each other"
                            ),
                        )
                        .at(span, "reference to an output not known yet")
                        .note(format!(
                            "set `{opt}` in [{later_name}] in the config, or stop [{later_name}] \
                             from referring to [{part}]"
                        )),
                    );
                    match &mut errors {
                        Some(all) => all.extend(e),
                        None => errors = Some(e),
                    }
                }
            }
        }
    }
    errors.map_or(Ok(()), Err)
}

/// The resolved `buildout:parts` as a list (helper for callers that show it).
pub fn listed_parts(resolver: &mut Resolver) -> Result<Vec<String>, Error> {
    Ok(words(&resolver.get("buildout", "parts")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, load_str};

    fn order(text: &str, format: Format) -> Result<Vec<String>, String> {
        let dir = std::env::temp_dir();
        let c = load_str(text, "t", &dir, format).map_err(|e| e.to_string())?;
        let mut r = c.resolver();
        parts(&c, &mut r)
            .map(|p| p.order().to_vec())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn implicit_parts_come_before_their_users() {
        let cfg = "[buildout]\nparts = b b c\nx = ${viabuildout:r}\n[viabuildout]\nrecipe = r\nr = 1\n\
                   [a]\nrecipe = r\nv = 1\n[data]\nv = ${a:v}\n[b]\nrecipe = r\nv = ${data:v}\n[c]\nrecipe = r\n";
        assert_eq!(
            order(cfg, Format::Cfg).unwrap(),
            ["viabuildout", "a", "b", "c"]
        );
    }

    #[test]
    fn needs_and_parts_that_refer_to_each_other() {
        let toml =
            "[buildout]\nparts = ['a']\n[a]\nrecipe = 'r'\nneeds = ['b']\n[b]\nrecipe = 'r'\n";
        assert_eq!(order(toml, Format::Toml).unwrap(), ["b", "a"]);
        // Parts that refer to each other: `a` reaches `b` while `a` is being initialized,
        // so `b` ends first, as in zc.buildout; only the edge b -> a is kept.
        let mutual = "[buildout]\nparts = ['a']\n[a]\nrecipe = 'r'\nx = '${b:y}'\nw = '2'\n\
                      [b]\nrecipe = 'r'\ny = '1'\nz = '${a:w}'\n";
        assert_eq!(order(mutual, Format::Toml).unwrap(), ["b", "a"]);
        let c = load_str(mutual, "t", &std::env::temp_dir(), Format::Toml).unwrap();
        let mut r = c.resolver();
        let p = parts(&c, &mut r).unwrap();
        assert_eq!(p.dependencies("a"), ["b"]);
        assert!(p.dependencies("b").is_empty());
        // Values that loop stay an error.
        let e = order(&mutual.replace("y = '1'", "y = '${a:x}'"), Format::Toml).unwrap_err();
        assert!(e.contains("cycle") || e.contains("circular"), "{e}");
        let e = order("[buildout]\nparts = ['nosuch']\n", Format::Toml).unwrap_err();
        assert!(e.contains("no section [nosuch]"), "{e}");
    }
}
