//! The `activate` recipe end to end: the real binary writes the scripts into an instance
//! whose path holds a space, both quotes, `$`, a backtick and `!`, and each script is
//! sourced by the real shell it is for (dash, bash, zsh, fish, tcsh). Every shell dumps its
//! environment (`env -0`) before, while and after activation; `deactivate` must give back
//! exactly the environment it found, nothing ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use rbuildout_tests::{Instance, identity};

/// The instance folder, inside the test's temp dir: every character shells care about.
const ODD: &str = "it's a \"q\" $x `b` !z";

/// `GREETING` as the scripts must export it (the TOML below writes `$$` for `$`).
const GREETING: &str = "it's \"quoted\" $HOME `date` \\ !bang";

const CONFIG: &str = r#"[buildout]
parts = ["activate"]

[activate]
recipe = "activate"
environment = [
    "GREETING=it's \"quoted\" $$HOME `date` \\ !bang",
    "EXISTING=new value",
    "EMPTY=",
]
"#;

/// `EXISTING` before activation.
const EXISTING: &str = "old 'v' \"x\" $y";

/// An instance in the odd folder, built; returns it with the folder's absolute path.
fn built(config: &str) -> (Instance, PathBuf) {
    let inst = Instance::new("");
    inst.write(&format!("{ODD}/buildout.toml"), config);
    inst.ok(&["-c", &format!("{ODD}/buildout.toml")]);
    let dir = inst.path(ODD).canonicalize().expect("instance folder");
    (inst, dir)
}

struct Shell {
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    script: &'static str,
}

/// dash, bash and zsh run the same script on `bin/activate`.
const SH_SCRIPT: &str = r#"env -0 > "$OUT/before"
printf '%s' "${PS1-<unset>}" > "$OUT/prompt-before"
. bin/activate
env -0 > "$OUT/during"
printf '%s' "${PS1-<unset>}" > "$OUT/prompt-during"
. bin/activate
deactivate nondestructive
env -0 > "$OUT/nondestructive"
command -v deactivate > "$OUT/kept" || true
. bin/activate
deactivate
env -0 > "$OUT/after"
printf '%s' "${PS1-<unset>}" > "$OUT/prompt-after"
command -v deactivate > "$OUT/gone" || true
"#;

const FISH_SCRIPT: &str = r#"env -0 > $OUT/before
fish_prompt > $OUT/prompt-before
source bin/activate.fish
env -0 > $OUT/during
fish_prompt > $OUT/prompt-during
source bin/activate.fish
deactivate nondestructive
env -0 > $OUT/nondestructive
functions -q deactivate; and echo deactivate > $OUT/kept
source bin/activate.fish
deactivate
env -0 > $OUT/after
fish_prompt > $OUT/prompt-after
functions -q deactivate; and echo deactivate > $OUT/gone
true
"#;

const CSH_SCRIPT: &str = r#"env -0 > "$OUT/before"
set prompt = '> '
printf '%s' "$prompt:q" > "$OUT/prompt-before"
source bin/activate.csh
env -0 > "$OUT/during"
printf '%s' "$prompt:q" > "$OUT/prompt-during"
source bin/activate.csh
deactivate nondestructive
env -0 > "$OUT/nondestructive"
alias deactivate > "$OUT/kept"
source bin/activate.csh
deactivate
env -0 > "$OUT/after"
printf '%s' "$prompt:q" > "$OUT/prompt-after"
alias deactivate > "$OUT/gone"
"#;

const SHELLS: [Shell; 5] = [
    Shell {
        name: "dash",
        program: "dash",
        args: &[],
        script: SH_SCRIPT,
    },
    Shell {
        name: "bash",
        program: "bash",
        args: &["--norc", "--noprofile"],
        script: SH_SCRIPT,
    },
    Shell {
        name: "zsh",
        program: "zsh",
        args: &["-f"],
        script: SH_SCRIPT,
    },
    Shell {
        name: "fish",
        program: "fish",
        args: &["--no-config"],
        script: FISH_SCRIPT,
    },
    Shell {
        name: "tcsh",
        program: "tcsh",
        args: &["-f"],
        script: CSH_SCRIPT,
    },
];

/// What one shell saw.
struct Seen {
    out: tempfile::TempDir,
}

impl Seen {
    fn env(&self, name: &str) -> BTreeMap<String, String> {
        let bytes = std::fs::read(self.out.path().join(name))
            .unwrap_or_else(|e| panic!("the shell wrote no {name}: {e}"));
        String::from_utf8(bytes)
            .expect("UTF-8 environment")
            .split('\0')
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (k, v) = entry.split_once('=').expect("NAME=VALUE");
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// A file the script wrote, empty when it wrote none.
    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.path().join(name)).unwrap_or_default()
    }
}

/// Runs `shell` on its script in `dir` with a small fixed environment plus `extra`.
fn source_in(shell: &Shell, dir: &Path, extra: &[(&str, &str)]) -> Seen {
    let out = tempfile::tempdir().expect("temp dir");
    let script = out.path().join("script");
    std::fs::write(&script, shell.script).expect("write script");
    let home = out.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let mut command = Command::new(shell.program);
    command
        .args(shell.args)
        .arg(&script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env("OUT", out.path())
        .env("PYTHONHOME", "/opt/python home")
        .env("EXISTING", EXISTING)
        .envs(extra.iter().copied());
    let result = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} (install it: apt-get install -y fish zsh tcsh): {e}",
            shell.program
        )
    });
    assert!(
        result.status.success(),
        "{} failed: {}\n{}",
        shell.name,
        String::from_utf8_lossy(&result.stderr),
        String::from_utf8_lossy(&result.stdout)
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.is_empty(), "{} complained: {stderr}", shell.name);
    Seen { out }
}

/// The names whose values differ between two environments.
fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> BTreeSet<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

#[test]
fn every_shell_activates_and_deactivates_exactly() {
    let (_inst, dir) = built(CONFIG);
    let instance = dir.to_str().expect("UTF-8 path");
    let bin = format!("{instance}/bin");
    for shell in &SHELLS {
        let seen = source_in(shell, &dir, &[]);
        let name = shell.name;
        let before = seen.env("before");
        let during = seen.env("during");

        let path = &during["PATH"];
        assert_eq!(
            path.split(':').next(),
            Some(bin.as_str()),
            "{name}: PATH {path}"
        );
        assert_eq!(
            path,
            &format!("{bin}:{}", before["PATH"]),
            "{name}: the rest of PATH"
        );
        assert_eq!(during["VIRTUAL_ENV"], instance, "{name}");
        assert_eq!(during["VIRTUAL_ENV_PROMPT"], ODD, "{name}");
        assert_eq!(during["GREETING"], GREETING, "{name}");
        assert_eq!(during["EXISTING"], "new value", "{name}");
        assert_eq!(during["EMPTY"], "", "{name}");
        assert!(
            !during.contains_key("PYTHONHOME"),
            "{name}: PYTHONHOME stayed"
        );
        // Nothing else leaks into the environment (the saved values are shell variables).
        let expected: BTreeSet<String> = [
            "PATH",
            "VIRTUAL_ENV",
            "VIRTUAL_ENV_PROMPT",
            "GREETING",
            "EXISTING",
            "EMPTY",
            "PYTHONHOME",
        ]
        .map(String::from)
        .into();
        assert_eq!(changed(&before, &during), expected, "{name}");

        assert_eq!(seen.env("nondestructive"), before, "{name}: nondestructive");
        assert!(
            seen.text("kept").contains("deactivate"),
            "{name}: nondestructive removed deactivate"
        );
        assert_eq!(seen.env("after"), before, "{name}: after deactivate");
        assert_eq!(seen.text("gone"), "", "{name}: deactivate is still defined");

        let prompt_before = seen.text("prompt-before");
        let prompt_during = seen.text("prompt-during");
        // bash has no PS1 when not interactive: the prefix alone, unset again after.
        let rest = prompt_before
            .strip_prefix("<unset>")
            .unwrap_or(&prompt_before);
        assert_eq!(prompt_during, format!("({ODD}) {rest}"), "{name}");
        assert_eq!(
            seen.text("prompt-after"),
            prompt_before,
            "{name}: prompt after"
        );
    }
}

#[test]
fn every_shell_honours_virtual_env_disable_prompt() {
    let (_inst, dir) = built(CONFIG);
    for shell in &SHELLS {
        let seen = source_in(shell, &dir, &[("VIRTUAL_ENV_DISABLE_PROMPT", "1")]);
        let before = seen.text("prompt-before");
        assert_eq!(seen.text("prompt-during"), before, "{}", shell.name);
        assert_eq!(
            seen.env("during")["VIRTUAL_ENV_PROMPT"],
            ODD,
            "{}",
            shell.name
        );
        assert_eq!(seen.env("after"), seen.env("before"), "{}", shell.name);
    }
}

#[test]
fn prompt_and_virtual_env_options() {
    let (_inst, dir) = built(
        r#"
buildout = { parts = ["activate"] }
activate = { recipe = "activate", virtual-env = false, prompt = "my app" }
"#,
    );
    for shell in &SHELLS {
        let seen = source_in(shell, &dir, &[]);
        let during = seen.env("during");
        assert!(!during.contains_key("VIRTUAL_ENV"), "{}", shell.name);
        assert_eq!(during["VIRTUAL_ENV_PROMPT"], "my app", "{}", shell.name);
        assert!(
            seen.text("prompt-during").starts_with("(my app) "),
            "{}",
            shell.name
        );
        assert_eq!(seen.env("after"), seen.env("before"), "{}", shell.name);
    }
}

#[test]
fn same_inputs_same_bytes_and_no_rewrite() {
    let inst = Instance::new(CONFIG);
    inst.ok(&[]);
    let names = ["bin/activate", "bin/activate.fish", "bin/activate.csh"];
    let first: Vec<_> = names
        .iter()
        .map(|n| (inst.read(n), identity(&inst.path(n))))
        .collect();
    for name in names {
        let mode = std::fs::metadata(inst.path(name)).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{name}");
    }
    inst.ok(&[]);
    let second: Vec<_> = names
        .iter()
        .map(|n| (inst.read(n), identity(&inst.path(n))))
        .collect();
    assert_eq!(first, second, "an unchanged part rewrote its files");

    // Written afresh (the engine reinstalls a part whose file vanished): the same bytes.
    for name in names {
        std::fs::remove_file(inst.path(name)).unwrap();
    }
    inst.ok(&[]);
    for (name, (text, _)) in names.iter().zip(&first) {
        assert_eq!(&inst.read(name), text, "{name}");
    }

    // A changed option rewrites them.
    inst.write("buildout.toml", &CONFIG.replace("new value", "newer"));
    inst.ok(&[]);
    assert!(inst.read("bin/activate").contains("EXISTING='newer'"));
    assert_ne!(identity(&inst.path("bin/activate")), first[0].1);
}

#[test]
fn the_buildout_options_it_reads_reinstall_it_and_an_unchanged_run_leaves_it_alone() {
    let inst = Instance::new(CONFIG);
    inst.ok(&[]);
    let first = identity(&inst.path("bin/activate"));
    // What it read of [buildout] is recorded with the part: the bin folder it wrote into and
    // the instance folder, unset outside a release.
    let state = inst.state();
    let part = &state["parts"]["activate"];
    let bin = inst.dir().canonicalize().unwrap().join("bin");
    assert_eq!(
        part["buildout"]["bin-directory"].as_str(),
        Some(bin.to_str().unwrap()),
        "{state}"
    );
    assert!(
        part["buildout-unset"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("instance-directory"))),
        "{state}"
    );

    // Unchanged: no hook runs, nothing is written.
    assert_eq!(
        inst.ok(&["plan"]).stdout,
        "keep       activate  (unchanged)\n"
    );
    inst.ok(&[]);
    assert_eq!(identity(&inst.path("bin/activate")), first);

    // A [buildout] option it read changed: the plan says why, and the run renders again.
    let assignment = "buildout:instance-directory=/srv/lava/instances/prod";
    assert_eq!(
        inst.ok(&["plan", assignment]).stdout,
        "uninstall  activate  (buildout:instance-directory, which the recipe reads, changed: \
         \"/srv/lava/instances/prod\" != unset)\n\
         reinstall  activate  (buildout:instance-directory, which the recipe reads, changed: \
         \"/srv/lava/instances/prod\" != unset)\n"
    );
    inst.ok(&[assignment]);
    assert!(
        inst.read("bin/activate")
            .contains("VIRTUAL_ENV='/srv/lava/instances/prod'\n")
    );
    let second = identity(&inst.path("bin/activate"));
    assert_ne!(second, first);
    inst.ok(&[assignment]);
    assert_eq!(identity(&inst.path("bin/activate")), second);

    // One it does not read (`newest`) changes nothing.
    inst.ok(&[assignment, "buildout:newest=true"]);
    assert_eq!(identity(&inst.path("bin/activate")), second);
}

#[test]
fn virtual_env_names_the_instance_directory() {
    // In a release built by `symlink`, `buildout:instance-directory` is the instance; a
    // command-line assignment stands in for it here.
    let inst = Instance::new(CONFIG);
    inst.ok(&["buildout:instance-directory=/srv/lava/instances/prod"]);
    let text = inst.read("bin/activate");
    assert!(
        text.contains("VIRTUAL_ENV='/srv/lava/instances/prod'\n"),
        "{text}"
    );
    assert!(text.contains("VIRTUAL_ENV_PROMPT='prod'\n"), "{text}");
    let bin = inst.dir().canonicalize().unwrap().join("bin");
    assert!(
        text.contains(&format!("PATH='{}'", bin.display())),
        "the bin folder is this buildout's: {text}"
    );
}

#[test]
fn bad_environment_fails_naming_the_option() {
    let inst = Instance::new(
        r#"
buildout = { parts = ["activate"] }
activate = { recipe = "activate", environment = ["GOOD=1", "NOT A NAME=2"] }
"#,
    );
    let run = inst.fails(&[], 1);
    run.stderr_has("option `environment`, line 2: `NOT A NAME` is not a variable name");
    run.stderr_has("activate");
    assert!(!inst.exists("bin/activate"));
}

/// The bash and zsh script of [`OVER_VENV`]. CPython's activate exports PS1 and cannot
/// restore an unset one: it starts with an exported PS1 (bash drops the one it inherits
/// when not interactive).
const POSIX_OVER_VENV: &str = r#"PS1='$ '
export PS1
env -0 > "$OUT/before"
. "$VENV/bin/activate"
env -0 > "$OUT/venv"
. bin/activate
env -0 > "$OUT/during"
deactivate
env -0 > "$OUT/after"
"#;

/// Each shell activates a real virtualenv (`python3 -m venv`), then the instance over it,
/// then deactivates once: the shell is back where it started.
const OVER_VENV: [(&str, &[&str], &str); 4] = [
    ("bash", &["--norc", "--noprofile"], POSIX_OVER_VENV),
    ("zsh", &["-f"], POSIX_OVER_VENV),
    (
        "fish",
        &["--no-config"],
        r#"env -0 > $OUT/before
source $VENV/bin/activate.fish
env -0 > $OUT/venv
source bin/activate.fish
env -0 > $OUT/during
deactivate
env -0 > $OUT/after
"#,
    ),
    (
        "tcsh",
        &["-f"],
        // CPython's activate.csh needs a prompt.
        r#"set prompt = '> '
env -0 > "$OUT/before"
source "$VENV/bin/activate.csh"
env -0 > "$OUT/venv"
source bin/activate.csh
env -0 > "$OUT/during"
deactivate
env -0 > "$OUT/after"
"#,
    ),
];

#[test]
fn activating_over_a_virtualenv_leaves_it_first() {
    let (_inst, dir) = built(CONFIG);
    let venvs = tempfile::tempdir().unwrap();
    let venv = venvs.path().join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .expect("run python3 -m venv");
    assert!(
        made.status.success(),
        "python3 -m venv: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let venv_text = venv.to_str().unwrap();
    let bin = format!("{}/bin", dir.display());
    for (program, args, script) in OVER_VENV {
        let shell = Shell {
            name: program,
            program,
            args,
            script,
        };
        let seen = source_in(&shell, &dir, &[("VENV", venv_text)]);
        assert_eq!(seen.env("venv")["VIRTUAL_ENV"], venv_text, "{program}");
        let during = seen.env("during");
        assert_eq!(during["VIRTUAL_ENV"], dir.to_str().unwrap(), "{program}");
        assert_eq!(during["VIRTUAL_ENV_PROMPT"], ODD, "{program}");
        assert!(during["PATH"].starts_with(&format!("{bin}:")), "{program}");
        assert!(
            !during["PATH"].contains(venv_text),
            "{program}: the virtualenv is still on PATH: {}",
            during["PATH"]
        );
        assert_eq!(seen.env("after"), seen.env("before"), "{program}");
    }
}

#[test]
fn running_instead_of_sourcing_says_so() {
    let (_inst, dir) = built(CONFIG);
    let out = Command::new("bash")
        .arg("bin/activate")
        .current_dir(&dir)
        .output()
        .expect("run bash");
    assert_eq!(out.status.code(), Some(33));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be sourced: . bin/activate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
