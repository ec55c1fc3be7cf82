//! zc.buildout's version options on egg parts (docs/egg.md, "Versions"): `prefer-final`,
//! `allow-hosts`, `show-picked-versions`, `update-versions-file`, and one `eggs-directory`
//! shared by two buildouts at once. Against real indexes on 127.0.0.1.

use std::path::Path;
use std::process::Command;

use rbuildout_tests::Instance;
use rbuildout_tests::pyindex::{Index, Package};

fn toml_instance(index: &str, eggs: &str, buildout_extra: &str, part_extra: &str) -> Instance {
    Instance::new(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{index}\"\n\
         {buildout_extra}\n[app]\nrecipe = \"egg\"\neggs = [\"{eggs}\"]\n{part_extra}"
    ))
}

fn pins(inst: &Instance) -> String {
    inst.state()["parts"]["app"]["outputs"]["pins"]
        .as_str()
        .expect("pins output")
        .to_owned()
}

fn pre_and_final() -> Vec<Package> {
    vec![
        Package::new("beta", "1.0"),
        Package::new("beta", "2.0b1"),
        Package::new("gamma", "3.0a1"),
    ]
}

#[test]
fn prefer_final_takes_a_pre_release_only_when_asked_or_nothing_final_fits() {
    let index = Index::serve(&pre_and_final());
    // The default, zc.buildout's `prefer-final = true`.
    let inst = toml_instance(&index.url(), "beta", "", "");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==1.0");
    // Nothing final satisfies `beta>=2.0a1`: the pre-release.
    let inst = toml_instance(&index.url(), "beta>=2.0a1", "", "");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==2.0b1");
    // Only a pre-release exists.
    let inst = toml_instance(&index.url(), "gamma", "", "");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "gamma==3.0a1");
    // `prefer-final = false`, in [buildout] or in the part: the newest, pre-release or not.
    let inst = toml_instance(&index.url(), "beta", "prefer-final = \"false\"\n", "");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==2.0b1");
    let inst = toml_instance(&index.url(), "beta", "", "prefer-final = \"false\"\n");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==2.0b1");
    // A bad value names the option.
    let inst = toml_instance(&index.url(), "beta", "", "prefer-final = \"maybe\"\n");
    let run = inst.fails(&[], 1);
    run.stderr_has("prefer-final");
}

#[test]
fn allow_hosts_ignores_pages_and_links_on_other_hosts() {
    // The index on 127.0.0.1 has beta 1.0; a find-links page on `localhost` has beta 2.0.
    let index = Index::serve(&[Package::new("beta", "1.0")]);
    let other = Index::serve(&[Package::new("beta", "2.0")]);
    let links = format!("http://localhost:{}/simple/beta/", other.port());
    let part = format!("find-links = [\"{links}\"]\n");
    let inst = toml_instance(&index.url(), "beta", "", &part);
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==2.0");
    assert!(!other.requests().is_empty());

    other.clear_requests();
    let allowed = "allow-hosts = \"127.0.0.1:*\"\n";
    let inst = toml_instance(&index.url(), "beta", allowed, &part);
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==1.0");
    assert_eq!(other.requests(), Vec::<String>::new());

    // An index page whose files are on another host: those links are ignored too.
    let moved = Index::serve(&[Package::new("beta", "1.0")]);
    let files = Index::serve(&[Package::new("beta", "1.0")]);
    moved.set_files_base(Some(&format!("http://localhost:{}", files.port())));
    let inst = toml_instance(&moved.url(), "beta", allowed, "");
    let run = inst.fails(&[], 1);
    run.stderr_has("beta");
    assert_eq!(files.requests(), Vec::<String>::new());
    // Several patterns, one a line (zc.buildout's form), let it through.
    let several = "allow-hosts = \"\"\"\n127.0.0.1:*\nlocalhost:*\n\"\"\"\n";
    let inst = toml_instance(&moved.url(), "beta", several, "");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==1.0");
    assert!(!files.requests().is_empty());
}

/// `Beta.Lib` is named as zc.buildout prints it (its project name, not `beta-lib`), and sorts
/// before `alpha` as zc.buildout sorts (by the text).
fn alpha_beta() -> Vec<Package> {
    vec![
        Package::new("alpha", "1.0")
            .requires("Beta.Lib>=2")
            .module("alpha/__init__.py", "X = 1\n"),
        Package::new("Beta.Lib", "2.0"),
        Package::new("Beta.Lib", "2.1b1"),
        Package::new("gamma", "1.5"),
    ]
}

/// The classic config: picked versions shown and appended to `versions.cfg`, which the
/// config extends, so a second run picks nothing.
fn versions_cfg(index: &str) -> String {
    format!(
        "[buildout]\nextends = versions.cfg\nparts = app\nindex = {index}\nnewest = false\n\
         show-picked-versions = true\nupdate-versions-file = versions.cfg\n\
         \n[versions]\ngamma = 1.5\n\
         \n[app]\nrecipe = zc.recipe.egg:eggs\neggs =\n    alpha\n    gamma\n"
    )
}

const PICKED: &str = "Versions had to be automatically picked.\n\
                      The following part definition lists the versions picked:\n\
                      [versions]\nBeta.Lib = 2.0\nalpha = 1.0\n";

#[test]
fn show_picked_versions_and_update_versions_file() {
    let index = Index::serve(&alpha_beta());
    let inst = Instance::new("");
    inst.write("buildout.cfg", &versions_cfg(&index.url()));
    inst.write("versions.cfg", "[versions]\n");
    let run = inst.ok(&["-v", "-c", "buildout.cfg"]);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(out.contains(PICKED), "{out}");
    assert!(
        out.contains("Picked versions have been written to"),
        "{out}"
    );
    // No date stamp: the file is the same whenever it is written.
    let after = "[versions]\n\nBeta.Lib = 2.0\nalpha = 1.0\n";
    assert_eq!(inst.read("versions.cfg"), after);
    // Pinned now (the config extends the file): nothing picked, nothing shown or added.
    let run = inst.ok(&["-c", "buildout.cfg"]);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(!out.contains("automatically picked"), "{out}");
    assert_eq!(inst.read("versions.cfg"), after);

    // A file that does not exist yet starts with `[versions]`; names it lists are not
    // appended again even when the config does not extend it.
    let inst = Instance::new("");
    let cfg = versions_cfg(&index.url())
        .replace("extends = versions.cfg\n", "")
        .replace(
            "update-versions-file = versions.cfg",
            "update-versions-file = picked.cfg",
        );
    inst.write("buildout.cfg", &cfg);
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(
        inst.read("picked.cfg"),
        "[versions]\nBeta.Lib = 2.0\nalpha = 1.0\n"
    );
    inst.ok(&["-c", "buildout.cfg"]);
    assert_eq!(
        inst.read("picked.cfg"),
        "[versions]\nBeta.Lib = 2.0\nalpha = 1.0\n"
    );
}

/// Two scratch folders holding `files`, one run by zc.buildout, one by rbuildout.
struct Pair {
    python: std::ffi::OsString,
    _tmp: (tempfile::TempDir, tempfile::TempDir),
    zc_dir: std::path::PathBuf,
    rb_dir: std::path::PathBuf,
}

impl Pair {
    fn new(python: std::ffi::OsString, files: &[(&str, &str)]) -> Pair {
        let scratch = || {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().canonicalize().unwrap();
            for (name, text) in files {
                std::fs::write(dir.join(name), text).unwrap();
            }
            std::fs::create_dir(dir.join(".home")).unwrap();
            (tmp, dir)
        };
        let (zt, zc_dir) = scratch();
        let (rt, rb_dir) = scratch();
        Pair {
            python,
            _tmp: (zt, rt),
            zc_dir,
            rb_dir,
        }
    }

    /// Runs both (without user defaults; the only index is local) and returns their logs.
    fn run(&self) -> (String, String) {
        let zc = rbuildout_tests::zc_buildout(&self.python, &self.zc_dir, &[]);
        let rb = rbuildout_tests::rbuildout_cfg(&self.rb_dir, &[]);
        (zc, rb)
    }
}

#[test]
fn picked_versions_match_zc_buildout() {
    let Some(python) = rbuildout_tests::oracle("the versions against zc.buildout") else {
        return;
    };
    let index = Index::serve(&alpha_beta());
    let cfg = versions_cfg(&index.url());
    let pair = Pair::new(
        python,
        &[("buildout.cfg", &cfg), ("versions.cfg", "[versions]\n")],
    );
    for round in 0..2 {
        let (zc_log, rb_log) = pair.run();
        assert_eq!(
            printed_block(&rb_log),
            printed_block(&zc_log),
            "round {round}\nzc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
        );
        assert_eq!(
            versions_file(&pair.rb_dir),
            versions_file(&pair.zc_dir),
            "round {round}\nzc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
        );
    }
    assert_eq!(
        versions_file(&pair.rb_dir),
        "[versions]\n\nBeta.Lib = 2.0\nalpha = 1.0\n"
    );
}

#[test]
fn allow_hosts_and_prefer_final_pick_what_zc_buildout_picks() {
    let Some(python) = rbuildout_tests::oracle("the versions against zc.buildout") else {
        return;
    };
    let index = Index::serve(&[
        Package::new("beta", "1.0"),
        Package::new("gamma", "1.0"),
        Package::new("gamma", "1.1rc1"),
    ]);
    let other = Index::serve(&[Package::new("beta", "2.0")]);
    for (buildout_extra, expected) in [
        ("", "[versions]\nbeta = 2.0\ngamma = 1.0"),
        (
            "allow-hosts = 127.0.0.1:*\n",
            "[versions]\nbeta = 1.0\ngamma = 1.0",
        ),
        (
            "prefer-final = false\n",
            "[versions]\nbeta = 2.0\ngamma = 1.1rc1",
        ),
    ] {
        let cfg = format!(
            "[buildout]\nparts = app\nindex = {}\nfind-links = http://localhost:{}/simple/beta/\n\
             newest = false\nshow-picked-versions = true\n{buildout_extra}\
             \n[app]\nrecipe = zc.recipe.egg:eggs\neggs =\n    beta\n    gamma\n",
            index.url(),
            other.port()
        );
        let pair = Pair::new(python.clone(), &[("buildout.cfg", &cfg)]);
        let (zc_log, rb_log) = pair.run();
        assert_eq!(
            printed_block(&zc_log),
            expected,
            "{buildout_extra}zc.buildout:\n{zc_log}"
        );
        assert_eq!(
            printed_block(&rb_log),
            expected,
            "{buildout_extra}rbuildout:\n{rb_log}"
        );
    }
}

/// `versions.cfg` of `dir` without zc.buildout's `# Added by buildout at <date>` lines.
fn versions_file(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("versions.cfg")).unwrap();
    let mut out: String = text
        .lines()
        .filter(|l| !l.starts_with("# Added by buildout at "))
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

#[test]
fn two_buildouts_share_one_eggs_directory_at_once() {
    let packages: Vec<Package> = (0..6)
        .map(|i| {
            Package::new(&format!("shared{i}"), "1.0")
                .module(&format!("shared{i}/__init__.py"), &format!("N = {i}\n"))
        })
        .collect();
    let index = Index::serve(&packages);
    let eggs_root = tempfile::tempdir().unwrap();
    let eggs = eggs_root.path().join("eggs");
    let names: Vec<String> = (0..6).map(|i| format!("\"shared{i}\"")).collect();
    let make = || {
        Instance::new(&format!(
            "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{}\"\n\
             eggs-directory = \"{}\"\n\n[app]\nrecipe = \"egg\"\neggs = [{}]\n",
            index.url(),
            eggs.display(),
            names.join(", ")
        ))
    };
    let (a, b) = (make(), make());
    let (mut pa, mut pb) = (a.spawn(&[]), b.spawn(&[]));
    let (ra, rb) = (pa.wait().unwrap(), pb.wait().unwrap());
    assert!(ra.success() && rb.success(), "{ra:?} {rb:?}");
    // Each has its own lock, both name the same eggs; the folder holds each egg once and
    // no temp folders.
    for inst in [&a, &b] {
        assert!(inst.exists("buildout.lock"));
        let paths = inst.state()["parts"]["app"]["outputs"]["paths"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(paths.lines().count(), 6, "{paths}");
        assert!(
            paths
                .lines()
                .all(|p| p.starts_with(&eggs.display().to_string()))
        );
        let code = "import sys\nsys.path[0:0] = sys.argv[1].splitlines()\n\
                    import shared0, shared5\nprint(shared0.N + shared5.N)";
        let out = Command::new("python3")
            .args(["-c", code, &paths])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    }
    let mut listed: Vec<String> = std::fs::read_dir(&eggs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        (0..6)
            .map(|i| format!("shared{i}-1.0-py3-none-any"))
            .collect::<Vec<_>>()
    );
    // A second run of each is a no-op over the shared folder.
    a.ok(&[]);
    b.ok(&[]);
}

#[test]
fn the_version_options_have_zc_buildouts_defaults() {
    let inst = Instance::new("");
    inst.write(
        "buildout.cfg",
        "[buildout]\nparts =\n\n[x]\na = ${buildout:prefer-final} ${buildout:allow-hosts} \
         ${buildout:show-picked-versions} [${buildout:update-versions-file}]\n",
    );
    let run = inst.ok(&["-c", "buildout.cfg", "annotate", "x"]);
    run.stdout_has("a= true * false []");
}

#[test]
fn newest_false_keeps_what_is_installed_and_true_looks_for_newer() {
    let old = Index::serve(&[Package::new("beta", "1.0")]);
    let new = Index::serve(&[Package::new("beta", "1.0"), Package::new("beta", "1.1")]);
    let inst = toml_instance(&old.url(), "beta", "", "");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==1.0");
    // A newer release appears: the default `newest = false` keeps the locked, installed 1.0
    // without asking the index.
    let moved = |buildout_extra: &str| {
        inst.config(&format!(
            "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{}\"\n\
             {buildout_extra}\n[app]\nrecipe = \"egg\"\neggs = [\"beta\"]\n",
            new.url()
        ));
    };
    moved("");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==1.0");
    assert_eq!(new.requests(), Vec::<String>::new());
    // `newest = true` in [buildout] (zc.buildout's default) resolves again, as `-n` does.
    moved("newest = \"true\"\n");
    inst.ok(&[]);
    assert_eq!(pins(&inst), "beta==1.1");
    assert!(!new.requests().is_empty());
}

#[test]
fn a_requirement_with_one_equals_is_not_picked() {
    let index = Index::serve(&alpha_beta());
    // zc.buildout: `gamma==1.5` in `eggs` fixes the version as a pin does.
    let inst = Instance::new(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{}\"\n\
         allow-picked-versions = \"false\"\n\n[app]\nrecipe = \"egg\"\n\
         eggs = [\"gamma==1.5\", \"alpha\"]\n",
        index.url()
    ));
    let run = inst.fails(&[], 1);
    run.stderr_has("alpha = 1.0\nbeta-lib = 2.0");
    assert!(!run.stderr.contains("gamma = "), "{}", run.stderr);
    inst.config(&format!(
        "[buildout]\nparts = [\"app\"]\ndownload-cache = \"cache\"\nindex = \"{}\"\n\
         allow-picked-versions = \"false\"\n\n[app]\nrecipe = \"egg\"\n\
         eggs = [\"gamma==1.5\"]\n",
        index.url()
    ));
    inst.ok(&[]);
}

#[test]
fn unzip_is_accepted_and_eggs_are_always_unpacked() {
    let index = Index::serve(&[Package::new("beta", "1.0").module("beta/__init__.py", "")]);
    let inst = toml_instance(&index.url(), "beta", "unzip = \"false\"\n", "");
    inst.ok(&[]);
    assert!(
        inst.path("eggs/beta-1.0-py3-none-any/beta/__init__.py")
            .is_file()
    );
    let inst = toml_instance(&index.url(), "beta", "", "unzip = \"sometimes\"\n");
    let run = inst.fails(&[], 1);
    run.stderr_has("option `unzip`");
}

/// Two parts whose distributions ask for others by a bare name (`gamma`, and `epsilon`
/// behind a marker that holds), by a name with a specifier (`Beta.Lib>=2`) and through an
/// extra (`zeta`).
fn required_by_packages() -> Vec<Package> {
    vec![
        Package::new("alpha", "1.0")
            .requires("gamma")
            .requires("Beta.Lib>=2")
            .module("alpha/__init__.py", "X = 1\n"),
        Package::new("delta", "1.0")
            .requires("gamma")
            .requires("epsilon; python_version >= \"3\"")
            .extra("more", &["zeta"])
            .module("delta/__init__.py", "X = 1\n"),
        Package::new("Beta.Lib", "2.0"),
        Package::new("gamma", "1.5").requires("epsilon"),
        Package::new("epsilon", "1.0"),
        Package::new("zeta", "1.0"),
    ]
}

/// The `[versions]` block printed after "The following part definition lists the versions
/// picked:", with its `# Required by:` comments and the blank lines between them, up to
/// the first other line.
fn printed_block(log: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut on = false;
    for line in log.lines() {
        let line = line.trim_end();
        if line.ends_with("The following part definition lists the versions picked:") {
            on = true;
            continue;
        }
        if on {
            if line == "[versions]"
                || line.contains(" = ")
                || line.starts_with('#')
                || line.is_empty()
            {
                out.push(line);
            } else {
                break;
            }
        }
    }
    while out.last() == Some(&"") {
        out.pop();
    }
    out.join("\n")
}

/// One block for the whole run, after the last part, with zc.buildout's `# Required by:`
/// comments, printed and appended as zc.buildout 6 does.
#[test]
fn one_picked_versions_block_per_run_with_required_by_comments_as_zc_buildout() {
    let Some(python) = rbuildout_tests::oracle("the versions against zc.buildout") else {
        return;
    };
    let index = Index::serve(&required_by_packages());
    let cfg = format!(
        "[buildout]\nparts = one two\nindex = {}\nnewest = false\n\
         show-picked-versions = true\nupdate-versions-file = versions.cfg\n\
         \n[one]\nrecipe = zc.recipe.egg:eggs\neggs = alpha\n\
         \n[two]\nrecipe = zc.recipe.egg:eggs\neggs = delta[more]\n",
        index.url()
    );
    let pair = Pair::new(
        python,
        &[("buildout.cfg", &cfg), ("versions.cfg", "[versions]\n")],
    );
    let (zc_log, rb_log) = pair.run();
    let printed = printed_block(&rb_log);
    assert_eq!(
        printed,
        printed_block(&zc_log),
        "zc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
    );
    assert_eq!(
        rb_log
            .matches("Versions had to be automatically picked.")
            .count(),
        1,
        "{rb_log}"
    );
    assert!(
        printed.contains("# Required by:\n# alpha==1.0\n# delta==1.0\ngamma = 1.5"),
        "{printed}"
    );
    assert_eq!(
        versions_file(&pair.rb_dir),
        versions_file(&pair.zc_dir),
        "zc.buildout:\n{zc_log}\nrbuildout:\n{rb_log}"
    );
}
