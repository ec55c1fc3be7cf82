//! `zc.recipe.testrunner`, natively (docs/zc-recipes.md, "zc.recipe.testrunner"): installs
//! `eggs` plus `zope.testrunner` as zc.recipe.egg does and writes one script, `bin/<script>`,
//! that runs `zope.testrunner.run` over the code of the distributions `eggs` names, in the
//! text zc.recipe.testrunner 5 writes through zc.buildout 6's `easy_install.scripts()`.

use std::fs;
use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, files};

use super::{
    Dist, EntryPoint, Flavour, Plan, console_script, develop_last, dist_info, framed,
    path_and_setup, pth_paths, publish_compat, py_repr, sys_path, utf8, with_options,
    with_site_folders, working_set, write, zc_order,
};

/// `zc.recipe.testrunner` (`default`).
pub struct TestRunner;

impl Recipe for TestRunner {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        with_options(options, ctx, false, |o| generate(o, ctx))
    }

    /// zc.recipe.testrunner's `update` is its `install`.
    fn update(options: &Options, ctx: &Context) -> Result<()> {
        Self::install(options, ctx)
    }
}

/// The requirement the test runner adds to `eggs`.
const RUNNER: &str = "zope.testrunner";

fn generate(options: &Options, ctx: &Context) -> Result<()> {
    let plan = Plan::read(options, ctx, Flavour::ZcEgg)?;
    let root = ctx.buildout_directory();
    let eggs_text = options.get("eggs").unwrap_or(ctx.part()).to_owned();
    let eggs = crate::requirements(&eggs_text, &[])?;
    let script_name = options
        .get("script")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(ctx.part())
        .to_owned();
    super::check_name("script", &script_name)?;
    let script = plan.bin.join(&script_name);
    let working_directory = options
        .get("working-directory")
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| root.join(w));
    let location = ctx.buildout().parts_directory().join(ctx.part());

    // The working set of `eggs` and the runner, installed by the egg recipe.
    let with_runner = format!("{}\n{RUNNER}", eggs_text.trim_end());
    let mut pairs: Vec<(&str, &str)> = options.iter().filter(|(k, _)| *k != "eggs").collect();
    pairs.push(("eggs", &with_runner));
    let ws = working_set(&Options::new(pairs, root), ctx)?;
    let settings = crate::Settings::read(options, ctx)?;
    let interp = crate::interp::query(&settings.python, &settings.cache)?;
    let python = interp.executable.clone();
    let roots = crate::requirements(&with_runner, &[])?;
    let ws = develop_last(zc_order(ws, &roots, &interp.markers));
    publish_compat(options, ctx, &python, &plan)?;
    // zc.recipe.testrunner replaces `script` with the script's path; an output may only add
    // a name, so a part that sets `script` keeps its own value (docs/zc-recipes.md).
    if options.get("script").is_none() {
        ctx.publish("script", utf8(&script)?)?;
    }

    // The folders holding the code of each distribution `eggs` names: the test paths.
    let mut test_paths: Vec<PathBuf> = Vec::new();
    for req in eggs
        .iter()
        .filter(|r| r.evaluate_markers(&interp.markers, &[]))
    {
        let name = req.name.to_string();
        let dist = ws.iter().find(|d| d.name == name).ok_or_else(|| {
            Error::new(format!(
                "requirement `{}` is not in the working set",
                req.name
            ))
        })?;
        test_paths.extend(locations(dist));
    }

    // The working directory: `working-directory`, or the part's own folder, made here.
    let wd = match &working_directory {
        Some(wd) => wd.clone(),
        None => {
            if options.get("location").is_none() {
                ctx.publish("location", utf8(&location)?)?;
            }
            let location = files::Targets::of(ctx).allowed(&location)?;
            if location.exists() && !location.is_dir() {
                return Err(Error::new(format!(
                    "{} exists and is not a folder",
                    location.display()
                )));
            }
            fs::create_dir_all(&location)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", location.display())))?;
            ctx.register(&location)?;
            location
        }
    };
    let quoted = |p: &Path| -> Result<String> {
        let p = utf8(p)?;
        Ok(match &plan.relative_to {
            Some(base) => match p.strip_prefix(&format!("{base}/")) {
                Some(rel) => format!("join(base, {})", py_repr(rel)),
                None => py_repr(p),
            },
            None => py_repr(p),
        })
    };

    let mut initialization = format!(
        "import os\nsys.argv[0] = os.path.abspath(sys.argv[0])\nos.chdir({})\n",
        quoted(&files::normalize(&wd))?
    );
    if let Some(section) = options
        .get("environment")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let names = ctx.option_names(section).ok_or_else(|| {
            Error::new(format!(
                "option `environment`: there is no section `{section}`"
            ))
        })?;
        for name in names {
            let value = ctx.option(section, &name).unwrap_or_default();
            initialization.push_str(&format!("os.environ['{name}'] = {}\n", py_repr(&value)));
        }
    }
    initialization.push_str(options.get("initialization").unwrap_or("").trim());
    let initialization = with_site_folders(&ws, &initialization)?;

    let defaults = options.get("defaults").unwrap_or("").trim();
    let mut arguments = if defaults.is_empty() {
        String::new()
    } else {
        format!("({defaults}) + ")
    };
    arguments.push_str("[\n");
    for p in &test_paths {
        arguments.push_str(&format!("        '--test-path', {},\n", quoted(p)?));
    }
    arguments.push_str("        ]");

    // sys.path: `extra-paths` and then the test paths after the working set.
    let extra: Vec<PathBuf> = plan
        .extra_paths
        .iter()
        .chain(&test_paths)
        .cloned()
        .collect();
    let path = sys_path(&ws, &extra)?;

    let entry = EntryPoint {
        name: script_name.clone(),
        module: RUNNER.to_owned(),
        attrs: "run".to_owned(),
    };
    let (spath, setup) = path_and_setup(utf8(&script)?, &path, plan.relative_to.as_deref())?;
    let text = console_script(
        &python,
        &spath,
        &setup,
        &framed(&initialization),
        &entry,
        &arguments,
    );
    write(
        ctx,
        &plan.bin,
        [(script_name, (text, false))].into_iter().collect(),
    )
}

/// Where a distribution's code is, as zc.recipe.testrunner finds it: for a develop or
/// another editable distribution, the folders its `.pth` files name, else its project folder;
/// for any other, the folder it is installed in.
fn locations(dist: &Dist) -> Vec<PathBuf> {
    if let Some(source) = crate::develop::source_of(&dist.folder) {
        let pths = pth_paths(&dist.folder);
        return if pths.is_empty() { vec![source] } else { pths };
    }
    let editable_root = dist_info(&dist.folder)
        .and_then(|info| fs::read_to_string(info.join("direct_url.json")).ok())
        .and_then(|text| editable_project(&text));
    match editable_root {
        Some(root) => {
            let pths = pth_paths(&dist.folder);
            if pths.is_empty() { vec![root] } else { pths }
        }
        None => vec![dist.folder.clone()],
    }
}

/// The project folder of a PEP 610 `direct_url.json` that says `"editable": true` with a
/// `file://` URL.
fn editable_project(text: &str) -> Option<PathBuf> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value.pointer("/dir_info/editable")?.as_bool() != Some(true) {
        return None;
    }
    let url = url::Url::parse(value.get("url")?.as_str()?).ok()?;
    if url.scheme() != "file" {
        return None;
    }
    url.to_file_path().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editable_projects_are_read_from_direct_url_json() {
        let text = r#"{"url": "file:///src/my%20app", "dir_info": {"editable": true}}"#;
        assert_eq!(editable_project(text), Some(PathBuf::from("/src/my app")));
        let not_editable = r#"{"url": "file:///src/app", "dir_info": {}}"#;
        assert_eq!(editable_project(not_editable), None);
        let remote = r#"{"url": "https://x/app", "dir_info": {"editable": true}}"#;
        assert_eq!(editable_project(remote), None);
    }
}
