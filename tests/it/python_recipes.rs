//! The Python recipe bridge (docs/python-recipes.md) end to end: a zc.buildout recipe
//! distribution of the tests' own, served with zc.buildout (packed from the one CI installs)
//! from the local index, run by the real binary beside a native recipe that reads what the
//! Python recipe set.

use rbuildout_tests::Instance;
use rbuildout_tests::pyindex::{Index, Package};

/// `tinyrecipe`: sets `location` in `__init__`, writes a file there on install (returning
/// both paths), counts its updates, fails with zc.buildout's `UserError` when asked, and
/// logs its uninstall entry point's calls in the buildout directory.
const RECIPE: &str = r#"
import os
import zc.buildout

class Recipe:
    def __init__(self, buildout, name, options):
        self.options = options
        if "fail" in options:
            raise zc.buildout.UserError("tinyrecipe was asked to fail")
        options["location"] = os.path.join(buildout["buildout"]["parts-directory"], name)
        options["odd:name"] = "set too"
        self.port = buildout["db"]["port"]

    def install(self):
        location = self.options["location"]
        os.makedirs(location)
        path = os.path.join(location, "greeting.txt")
        with open(path, "w") as f:
            f.write("%s on %s" % (self.options["greeting"], self.port))
        print("tinyrecipe wrote", path)
        return [path, location]

    def update(self):
        with open(os.path.join(self.options["location"], "updates.log"), "a") as f:
            f.write("update\n")

class Eggs:
    """Asks zc.buildout's installer for a distribution, as zc.recipe.egg-based recipes do."""

    def __init__(self, buildout, name, options):
        self.buildout, self.name = buildout, name

    def install(self):
        import sys
        import pkg_resources
        import zc.buildout.easy_install

        ws = zc.buildout.easy_install.install(
            ["tinyhelper"], self.buildout["buildout"]["eggs-directory"])
        dist = ws.find(pkg_resources.Requirement.parse("tinyhelper"))
        sys.path.insert(0, dist.location)
        import tinyhelper
        path = os.path.join(self.buildout["buildout"]["directory"], self.name + ".txt")
        with open(path, "w") as f:
            f.write("%s %s" % (tinyhelper.NAME, dist.location))
        return path

class ZcEgg:
    """Gets its working set from the Python zc.recipe.egg, as many recipes do."""

    def __init__(self, buildout, name, options):
        import zc.recipe.egg
        self.buildout, self.name = buildout, name
        self.egg = zc.recipe.egg.Egg(buildout, options["recipe"], options)

    def install(self):
        import pkg_resources
        reqs, ws = self.egg.working_set()
        dist = ws.find(pkg_resources.Requirement.parse("tinyhelper"))
        path = os.path.join(self.buildout["buildout"]["directory"], self.name + ".txt")
        with open(path, "w") as f:
            f.write("%s %s" % (",".join(reqs), dist.location))
        return path

class Plain:
    """No update: an unchanged part needs nothing of it."""

    def __init__(self, buildout, name, options):
        with open(os.path.join(buildout["buildout"]["directory"], "plain.log"), "a") as f:
            f.write("init\n")

    def install(self):
        return ()

class Peek:
    """Reads another section's `location` through the buildout, as it is when created."""

    def __init__(self, buildout, name, options):
        self.path = os.path.join(buildout["buildout"]["directory"], name + ".txt")
        self.seen = buildout[options["section"]].get("location", "absent")

    def install(self):
        with open(self.path, "w") as f:
            f.write(self.seen)
        return self.path

class Order:
    """Sets its `location`; notes the `location` of the sections in `reads` as it is
    created and of those in `later` when installed, and writes them to NAME.txt."""

    def __init__(self, buildout, name, options):
        self.buildout, self.name, self.options = buildout, name, options
        options["location"] = os.path.join(buildout["buildout"]["directory"], name + ".where")
        self.seen = self.where(options.get("reads", ""))

    def where(self, sections):
        return " ".join(
            os.path.basename(self.buildout[s].get("location", "absent")) for s in sections.split())

    def install(self):
        path = os.path.join(self.buildout["buildout"]["directory"], self.name + ".txt")
        with open(path, "w") as f:
            f.write("created: %s; installed: %s" % (self.seen, self.where(self.options.get("later", ""))))
            if "note" in self.options:
                f.write("; note: %s" % self.options["note"])
        return path

def uninstall(name, options):
    with open("uninstalled.log", "a") as f:
        f.write("uninstall %s %s\n" % (name, options["greeting"]))
"#;

/// zc.buildout and what it requires, packed from the oracle's environment, and `tinyrecipe`.
fn packages(python: &std::ffi::OsStr) -> Vec<Package> {
    let mut packages: Vec<Package> = [
        "zc.buildout",
        "zc.recipe.egg",
        "setuptools",
        "packaging",
        "pip",
        "platformdirs",
        "wheel",
    ]
    .iter()
    .map(|name| Package::installed(python, name))
    .collect();
    packages.push(Package::new("tinyhelper", "1.0").module("tinyhelper.py", "NAME = 'helper'\n"));
    packages.push(
        Package::new("tinyrecipe", "1.0")
            .requires("zc.buildout")
            .requires("zc.recipe.egg")
            .module("tinyrecipe.py", RECIPE)
            .entry_point("zc.buildout", "default", "tinyrecipe:Recipe")
            .entry_point("zc.buildout", "eggs", "tinyrecipe:Eggs")
            .entry_point("zc.buildout", "zcegg", "tinyrecipe:ZcEgg")
            .entry_point("zc.buildout", "plain", "tinyrecipe:Plain")
            .entry_point("zc.buildout", "peek", "tinyrecipe:Peek")
            .entry_point("zc.buildout", "order", "tinyrecipe:Order")
            .entry_point("zc.buildout.uninstall", "default", "tinyrecipe:uninstall"),
    );
    packages
}

/// The local index of [`packages`] and a `.cfg` instance, when the run has the oracle's
/// environment to pack zc.buildout from.
fn bridged() -> Option<(Index, Instance)> {
    let python = rbuildout_tests::oracle("the Python recipe bridge")?;
    Some((Index::serve(&packages(&python)), cfg_instance()))
}

/// An instance whose config will be a `buildout.cfg` the test writes.
fn cfg_instance() -> Instance {
    let inst = Instance::new("");
    std::fs::remove_file(inst.path("buildout.toml")).unwrap();
    inst
}

fn config(index: &str, app_extra: &str) -> String {
    format!(
        "[buildout]\nparts = app show\nindex = {index}\n\
         \n[db]\nport = 5432\n\
         \n[app]\nrecipe = tinyrecipe\ngreeting = hello\n{app_extra}\
         \n[show]\nrecipe = collective.recipe.template\ninput = inline:at ${{app:location}}\n\
         output = ${{buildout:directory}}/show.txt\n"
    )
}

#[test]
fn a_python_recipe_from_the_index_runs_beside_native_ones_that_read_its_options() {
    let Some((index, inst)) = bridged() else {
        return;
    };
    inst.write("buildout.cfg", &config(&index.url(), ""));
    let run = inst.ok(&["-v", "-c", "buildout.cfg"]);
    let location = inst.path("parts/app");
    assert_eq!(
        inst.read("parts/app/greeting.txt"),
        "hello on 5432",
        "{}",
        run.stderr
    );
    // The native template read what the Python recipe set in `__init__`.
    assert_eq!(inst.read("show.txt"), format!("at {}", location.display()));
    // What the recipe printed went to the log.
    assert!(run.stderr.contains("tinyrecipe wrote"), "{}", run.stderr);
    // Its returned paths are the part's: uninstalling it removes them.
    let paths = inst.state()["parts"]["app"]["paths"].clone();
    assert!(
        paths
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str() == Some("parts/app")),
        "{paths:?}"
    );
    // Unchanged: its update runs.
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("parts/app/updates.log"), "update\n");
    // A recipe's UserError fails the part with its message. It comes from `__init__`,
    // which zc.buildout calls for every part before it uninstalls anything: the changed
    // part is left as it was installed.
    inst.write("buildout.cfg", &config(&index.url(), "fail = yes\n"));
    let run = inst.fails(&["-v", "-c", "buildout.cfg"], 1);
    assert!(
        run.stderr.contains("tinyrecipe was asked to fail"),
        "{}",
        run.stderr
    );
    assert!(!inst.path("uninstalled.log").exists(), "{}", run.stderr);
    assert_eq!(inst.read("parts/app/greeting.txt"), "hello on 5432");
    // Parts gone from the config are uninstalled with their paths, their uninstall entry
    // point called first with the options the part was installed with.
    inst.write(
        "buildout.cfg",
        &format!("[buildout]\nparts =\nindex = {}\n", index.url()),
    );
    inst.ok(&["-c", "buildout.cfg"]);
    assert!(!location.exists());
    assert_eq!(inst.read("uninstalled.log"), "uninstall app hello\n");
}

/// In TOML a plain name is a plugin's; a Python recipe is spelled `python:dist[:entry]`.
#[test]
fn toml_spells_a_python_recipe_python_colon_and_keeps_plain_names_for_plugins() {
    let Some(python) = rbuildout_tests::oracle("the Python recipe bridge") else {
        return;
    };
    let index = Index::serve(&packages(&python));
    let config = |recipe: &str| {
        format!(
            "[buildout]\nparts = [\"app\"]\nindex = \"{}\"\n\n[db]\nport = \"1\"\n\
             \n[app]\nrecipe = \"{recipe}\"\ngreeting = \"hi\"\n",
            index.url()
        )
    };
    let inst = Instance::new(&config("tinyrecipe"));
    let run = inst.fails(&[], 2);
    assert!(
        run.stderr.contains("recipe plugin `tinyrecipe` not found"),
        "{}",
        run.stderr
    );
    inst.config(&config("python:tinyrecipe:default"));
    inst.ok(&[]);
    assert_eq!(inst.read("parts/app/greeting.txt"), "hi on 1");
}

/// A recipe that asks `zc.buildout.easy_install.install` for a distribution gets it from
/// rbuildout's egg fetcher: into the instance's eggs folder, locked under its own entry.
#[test]
fn a_recipe_asking_zc_buildouts_installer_is_served_by_the_egg_fetcher() {
    let Some((index, inst)) = bridged() else {
        return;
    };
    // The part's file says what the recipe found, and where it is: in the eggs folder.
    let served = |recipe: &str| -> String {
        inst.write(
            "buildout.cfg",
            &format!(
                "[buildout]\nparts = user\nindex = {}\n\n[user]\nrecipe = {recipe}\neggs = tinyhelper\n",
                index.url()
            ),
        );
        let run = inst.ok(&["-c", "buildout.cfg"]);
        let text = inst.read("user.txt");
        let (found, location) = text.split_once(' ').unwrap();
        assert!(
            std::path::Path::new(location).starts_with(inst.path("eggs")),
            "{location}\n{}",
            run.stderr
        );
        found.to_owned()
    };
    assert_eq!(served("tinyrecipe:eggs"), "helper");
    let lock = inst.read("buildout.lock");
    assert!(
        lock.contains("user:eggs") && lock.contains("tinyhelper"),
        "{lock}"
    );
    // The same through the Python zc.recipe.egg's `Egg(...).working_set()`.
    assert_eq!(served("tinyrecipe:zcegg"), "tinyhelper");

    // `--locked` and `-o` hold for what a recipe asks: a lock without its entry fails a
    // locked run; offline, with the index gone, the lock and the eggs folder serve it.
    let url = index.url();
    let lock = inst.read("buildout.lock");
    let config = |extra: &str| {
        format!(
            "[buildout]\nparts = user\nindex = {url}\n\n[user]\nrecipe = tinyrecipe:eggs\n\
             eggs = tinyhelper\n{extra}"
        )
    };
    inst.write("buildout.cfg", &config("x = 1\n"));
    let stripped: String = lock
        .split("\n[")
        .filter(|table| {
            !table
                .trim_start_matches('[')
                .starts_with("parts.\"user:eggs\"")
        })
        .collect::<Vec<_>>()
        .join("\n[");
    assert_ne!(stripped, lock);
    inst.write("buildout.lock", &stripped);
    let run = inst.fails(&["--locked", "-c", "buildout.cfg"], 1);
    assert!(run.stderr.contains("--locked"), "{}", run.stderr);
    inst.write("buildout.lock", &lock);
    drop(index);
    inst.write("buildout.cfg", &config("x = 2\n"));
    let run = inst.ok(&["-o", "--locked", "-c", "buildout.cfg"]);
    assert_eq!(
        inst.read("user.txt").split(' ').next(),
        Some("helper"),
        "{}",
        run.stderr
    );
}

/// A buildout's own recipe, shipped as a develop distribution of the same buildout
/// (`develop = .` with `recipe = myproject:entry`), runs through the bridge from its source
/// folder, editable: a change to its code is used by the next run.
#[test]
fn a_develop_distribution_of_the_buildout_provides_its_recipe() {
    let Some((index, inst)) = bridged() else {
        return;
    };
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\ndevelop = local\nparts = site\nindex = {}\n\
             \n[site]\nrecipe = localrecipe:site\ntitle = home\n",
            index.url()
        ),
    );
    // Built by the develop tests' own backend, in the tree.
    inst.write(
        "local/pyproject.toml",
        "[build-system]\nrequires = []\nbuild-backend = \"tinyback\"\nbackend-path = [\"_backend\"]\n\
         \n[project]\nname = \"localrecipe\"\nversion = \"1.0\"\n\
         \n[project.entry-points.\"zc.buildout\"]\nsite = \"localrecipe:Site\"\n",
    );
    inst.write("local/_backend/tinyback.py", crate::develop::BACKEND);
    let recipe = |word: &str| {
        format!(
            "import os\n\nclass Site:\n    def __init__(self, buildout, name, options):\n        \
             self.options = options\n\n    def install(self):\n        \
             path = os.path.join(os.getcwd(), 'site.txt')\n        \
             open(path, 'w').write('{word} ' + self.options['title'])\n        return path\n\n    \
             update = install\n"
        )
    };
    inst.write("local/localrecipe.py", &recipe("welcome"));
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("site.txt"), "welcome home");
    // Editable: the source folder is what the driver imports.
    inst.write("local/localrecipe.py", &recipe("hello"));
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.read("site.txt"), "hello home");
}

/// An unchanged part whose recipe has no `update` costs no interpreter: the bridge
/// remembers (by the recipe and its lock entry) that there is nothing to call.
#[test]
fn an_unchanged_part_whose_recipe_has_no_update_starts_no_interpreter() {
    let Some((index, inst)) = bridged() else {
        return;
    };
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\nparts = p\nindex = {}\n\n[p]\nrecipe = tinyrecipe:plain\n",
            index.url()
        ),
    );
    inst.ok(&["-c", "buildout.cfg"]);
    inst.ok(&["-c", "buildout.cfg"]);
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(inst.log("plain.log"), ["init"]);
}

/// zc.buildout creates every part's recipe before it uninstalls or installs any, and a
/// recipe that reads another part's section as it is created gets that part's recipe
/// created first: what `__init__` set is there for every part, in zc.buildout's order, and
/// a failing `__init__` stops the run before anything is installed. Compared with what
/// zc.buildout 6 makes of the same config.
#[test]
fn every_recipe_is_created_before_any_part_installs_as_in_zc_buildout() {
    let Some(python) = rbuildout_tests::oracle("the bridge's order against zc.buildout") else {
        return;
    };
    let index = Index::serve(&packages(&python));
    let cfg = |extra: &str| {
        format!(
            "[buildout]\nparts = first app reader last{extra}\nindex = {}\n\
             \n[first]\nrecipe = tinyrecipe:order\nreads = app\n\
             \n[app]\nrecipe = tinyrecipe:order\n\
             \n[reader]\nrecipe = tinyrecipe:order\nreads = last\nlater = last\n\
             \n[last]\nrecipe = tinyrecipe:order\n\
             \n[db]\nport = 1\n\
             \n[bad]\nrecipe = tinyrecipe\nfail = yes\n",
            index.url()
        )
    };
    let files = ["first.txt", "app.txt", "reader.txt", "last.txt"];
    let made = |dir: &std::path::Path| -> Vec<String> {
        files
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|_| "(none)".into()))
            .collect()
    };
    let zc = tempfile::tempdir().unwrap();
    std::fs::create_dir(zc.path().join(".home")).unwrap();
    let rb = cfg_instance();

    // A recipe failing in `__init__` (the last part) stops the run before anything is
    // installed, in both.
    for dir in [zc.path(), rb.dir()] {
        std::fs::write(dir.join("buildout.cfg"), cfg(" bad")).unwrap();
    }
    let zc_run = std::process::Command::new(&python)
        .current_dir(zc.path())
        .env("HOME", zc.path().join(".home"))
        .args([
            "-c",
            "import sys; from zc.buildout.buildout import main; sys.exit(main())",
            "-U",
            "-c",
            "buildout.cfg",
        ])
        .output()
        .unwrap();
    assert!(!zc_run.status.success());
    let rb_run = rb.fails(&["-c", "buildout.cfg"], 1);
    assert!(
        rb_run.stderr.contains("tinyrecipe was asked to fail"),
        "{}",
        rb_run.stderr
    );
    assert_eq!(made(rb.dir()), made(zc.path()), "{}", rb_run.stderr);
    assert_eq!(made(rb.dir()), ["(none)"; 4]);

    // Without it: `first` saw what `app` set as it was created (zc.buildout created `app`
    // when `first` read it), `reader` saw `last`, installed after it, both when created
    // and when installed.
    for dir in [zc.path(), rb.dir()] {
        std::fs::write(dir.join("buildout.cfg"), cfg("")).unwrap();
    }
    let zc_log = rbuildout_tests::zc_buildout(&python, zc.path(), &[]);
    let rb_log = rb.ok(&["-c", "buildout.cfg"]).stderr;
    assert_eq!(
        made(rb.dir()),
        made(zc.path()),
        "zc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
    );
    assert_eq!(
        made(rb.dir()),
        [
            "created: app.where; installed: ",
            "created: ; installed: ",
            "created: last.where; installed: last.where",
            "created: ; installed: ",
        ]
    );
}

/// A bridged part whose options refer to what a native part publishes when it installs
/// (the egg recipe's `requested`) cannot be created before the installs: it is created in
/// its turn, after that part.
#[test]
fn a_bridged_part_reading_a_native_install_output_is_created_in_its_turn() {
    let Some((index, inst)) = bridged() else {
        return;
    };
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\nparts = late tools\nindex = {}\n\
             \n[tools]\nrecipe = zc.recipe.egg:eggs\neggs = tinyhelper\n\
             \n[late]\nrecipe = tinyrecipe:order\nnote = ${{tools:requested}}\n",
            index.url()
        ),
    );
    let run = inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(
        inst.read("late.txt"),
        "created: ; installed: ; note: tinyhelper",
        "{}",
        run.stderr
    );
    assert_eq!(inst.installed(), ["tools", "late"]);
}

/// `tinyext`: a zc.buildout extension that changes the config before the parts are
/// computed (a part added, an option of a section a native part reads changed) and whose
/// unloader, at the end of the run, writes what it sees of the config.
const EXTENSION: &str = r#"
import os

def ext(buildout):
    b = buildout["buildout"]
    b["parts"] = b["parts"] + " made"
    buildout["made"] = {
        "recipe": "collective.recipe.template",
        "input": "inline:made on ${db:port}",
        "output": "${buildout:directory}/made.txt",
    }
    buildout.parse("""
        [parsed]
        value = parsed at ${db:port}
        """)
    buildout["db"]["port"] = str(int(buildout["db"]["port"]) + 1)
    buildout["db"].setdefault("note", "set by tinyext")

def unload(buildout):
    path = os.path.join(buildout["buildout"]["directory"], "unloaded.txt")
    db = buildout["db"]
    with open(path, "a") as f:
        f.write("%s, %s, %s, %s\n" % (buildout["buildout"]["parts"], db["port"], db["note"],
                                      buildout["parsed"]["value"]))
"#;

/// Extensions that do what the bridge cannot honour, one entry point's distribution each.
const BAD_EXTENSIONS: &str = r#"
def deletes(buildout):
    del buildout["db"]["port"]

def internals(buildout):
    buildout._raw["db"]["port"] = "1"

def literal(buildout):
    buildout["db"]["port"] = "${other:port}"

def colon(buildout):
    buildout["db"]["a:b"] = "x"

def patches(buildout):
    import zc.buildout.easy_install
    zc.buildout.easy_install.Installer._obtain = lambda *a, **k: None
"#;

/// [`packages`] and the extension distributions.
fn extension_packages(python: &std::ffi::OsStr) -> Vec<Package> {
    let mut packages = packages(python);
    packages.push(
        Package::new("tinyext", "1.0")
            .requires("zc.buildout")
            .module("tinyext.py", EXTENSION)
            .entry_point("zc.buildout.extension", "default", "tinyext:ext")
            .entry_point("zc.buildout.unloadextension", "default", "tinyext:unload"),
    );
    for bad in ["deletes", "internals", "literal", "colon", "patches"] {
        packages.push(
            Package::new(&format!("badext-{bad}"), "1.0")
                .module(&format!("badext_{bad}.py"), BAD_EXTENSIONS)
                .entry_point(
                    "zc.buildout.extension",
                    "default",
                    &format!("badext_{bad}:{bad}"),
                ),
        );
    }
    packages
}

fn extended_config(index: &str, extensions: &str) -> String {
    format!(
        "[buildout]\nextensions = {extensions}\nparts = show\nindex = {index}\n\
         \n[db]\nport = 5432\n\
         \n[show]\nrecipe = collective.recipe.template\ninput = inline:${{db:port}}\n\
         output = ${{buildout:directory}}/show.txt\n"
    )
}

/// An extension from the index runs before the parts are computed: the part it adds is
/// installed, the option it changes is what the native part reads, and its unloader runs
/// at the end of the run, on the changed config, as zc.buildout makes them from the same
/// config. Its distribution is locked under `buildout:extensions`.
#[test]
fn an_extension_changes_the_config_before_the_parts_and_unloads_at_the_end() {
    let Some(python) = rbuildout_tests::oracle("the Python recipe bridge") else {
        return;
    };
    let index = Index::serve(&extension_packages(&python));
    let inst = cfg_instance();
    inst.write("buildout.cfg", &extended_config(&index.url(), "tinyext"));
    let run = inst.ok(&["-v", "-c", "buildout.cfg"]);
    assert_eq!(inst.read("show.txt"), "5433", "{}", run.stderr);
    // The section it added was substituted when added, before it changed the port.
    assert_eq!(inst.read("made.txt"), "made on 5432", "{}", run.stderr);
    let unloaded = "show made, 5433, set by tinyext, parsed at 5432\n";
    assert_eq!(inst.read("unloaded.txt"), unloaded);
    // zc.buildout, from the same config and index, makes the same.
    let zc = tempfile::tempdir().unwrap();
    std::fs::write(
        zc.path().join("buildout.cfg"),
        extended_config(&index.url(), "tinyext"),
    )
    .unwrap();
    let log = rbuildout_tests::zc_buildout(&python, zc.path(), &[]);
    for file in ["show.txt", "made.txt", "unloaded.txt"] {
        let theirs = std::fs::read_to_string(zc.path().join(file)).unwrap_or_default();
        assert_eq!(inst.read(file), theirs, "{file}\n{log}");
    }
    let state = inst.state();
    assert!(state["parts"].get("made").is_some(), "{state}");
    let lock = inst.read("buildout.lock");
    assert!(
        lock.contains("buildout:extensions") && lock.contains("tinyext"),
        "{lock}"
    );
    // A dry run does not run them, and says so.
    let dry = inst.ok(&["-c", "buildout.cfg", "install", "--dry-run"]);
    dry.stderr_has("buildout:extensions: tinyext: not run by this command");
    assert_eq!(inst.read("unloaded.txt"), unloaded);
    // Again, offline and locked: the same config, nothing changed, the unloader again.
    inst.ok(&["-o", "--locked", "-c", "buildout.cfg"]);
    assert_eq!(inst.read("unloaded.txt"), unloaded.repeat(2));
    assert_eq!(inst.read("show.txt"), "5433");
    // Without the extension, what it added goes.
    inst.write(
        "buildout.cfg",
        &extended_config(&index.url(), "tinyext").replace("extensions = tinyext\n", ""),
    );
    inst.ok(&["-c", "buildout.cfg"]);
    assert!(!inst.path("made.txt").exists());
    assert_eq!(inst.read("show.txt"), "5432");
    assert_eq!(inst.read("unloaded.txt"), unloaded.repeat(2));
}

/// What an extension does that the bridge cannot honour (deleting an option, zc.buildout's
/// internals, a value zc.buildout would keep as written where rbuildout substitutes,
/// replacing zc.buildout's installer) fails the run before any part, exit 2, naming the
/// extension.
#[test]
fn what_an_extension_does_that_the_bridge_cannot_honour_is_refused_by_name() {
    let Some(python) = rbuildout_tests::oracle("the Python recipe bridge") else {
        return;
    };
    let index = Index::serve(&extension_packages(&python));
    let inst = cfg_instance();
    for (bad, says) in [
        ("deletes", "deletes the option db:port"),
        ("internals", "uses buildout._raw"),
        (
            "literal",
            "sets db:port to '${other:port}', whose ${...} rbuildout would substitute",
        ),
        ("colon", "sets the option \"a:b\" of the section \"db\""),
        (
            "patches",
            "replaces zc.buildout.easy_install.Installer._obtain",
        ),
    ] {
        inst.write(
            "buildout.cfg",
            &extended_config(&index.url(), &format!("badext-{bad}")),
        );
        let run = inst.fails(&["-c", "buildout.cfg"], 2);
        let wanted = format!("the extension badext-{bad} (entry point default) {says}");
        assert!(run.stderr.contains(&wanted), "{wanted}\n{}", run.stderr);
        assert!(!inst.path("show.txt").exists());
    }
    // One the index does not have fails the run, naming it, rather than being skipped.
    inst.write("buildout.cfg", &extended_config(&index.url(), "nosuchext"));
    let run = inst.fails(&["-c", "buildout.cfg"], 1);
    assert!(
        run.stderr.contains("buildout:extensions: nosuchext:") && run.stderr.contains("nosuchext"),
        "{}",
        run.stderr
    );
    assert!(!inst.path("show.txt").exists());
}

/// A buildout's own extension, a develop distribution of the same buildout (`develop =
/// local` with `extensions = localext`), runs from its source folder, as real deployment
/// buildouts ship theirs; here it points `develop` at another folder, as mr.developer does.
#[test]
fn a_develop_distribution_of_the_buildout_provides_its_extension() {
    let Some((index, inst)) = bridged() else {
        return;
    };
    inst.write(
        "buildout.cfg",
        &format!(
            "[buildout]\ndevelop = local\nextensions = localext\nparts = show\nindex = {}\n\
             \n[show]\nrecipe = collective.recipe.template\ninput = inline:${{buildout:develop}}\n\
             output = ${{buildout:directory}}/show.txt\n",
            index.url()
        ),
    );
    inst.write(
        "local/pyproject.toml",
        "[build-system]\nrequires = []\nbuild-backend = \"tinyback\"\nbackend-path = [\"_backend\"]\n\
         \n[project]\nname = \"localext\"\nversion = \"1.0\"\n\
         \n[project.entry-points.\"zc.buildout.extension\"]\next = \"localext:ext\"\n",
    );
    inst.write("local/_backend/tinyback.py", crate::develop::BACKEND);
    inst.write(
        "local/localext.py",
        "def ext(buildout):\n    b = buildout['buildout']\n    b['develop'] = b['develop'] + '\\nsrc/checkout'\n",
    );
    inst.write(
        "src/checkout/pyproject.toml",
        "[build-system]\nrequires = []\nbuild-backend = \"tinyback\"\nbackend-path = [\"_backend\"]\n\
         \n[project]\nname = \"checkout\"\nversion = \"1.0\"\n",
    );
    inst.write("src/checkout/_backend/tinyback.py", crate::develop::BACKEND);
    let run = inst.ok(&["-c", "buildout.cfg"]);
    let show = inst.read("show.txt");
    let developed: Vec<&str> = show.lines().map(str::trim).collect();
    assert!(
        developed.len() == 2 && developed[1].ends_with("src/checkout"),
        "{show}\n{}",
        run.stderr
    );
}
