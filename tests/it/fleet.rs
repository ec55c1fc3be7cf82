//! The fleet example (`examples/fleet/`, docs/fleet.md) run with ansible-core against
//! localhost: the playbook installs the binary under test, copies the config and its lock
//! and runs `rbuildout --locked install --json`; a second run reports `changed=0`; an
//! upgrade and a rollback through the playbook's variables. The lock is written first in a
//! "staging" copy of the example, as an operator does; the distributions come from a local
//! index (a stand-in `gunicorn`), so no test reaches the internet.

use std::path::Path;
use std::process::Command;

use rbuildout_tests::pyindex::{Index, Package};
use rbuildout_tests::{Run, ansible_playbook, rbuildout_bin, repo_root};

const GUNICORN: &str = r#"
import gunicorn


def run():
    print("gunicorn", gunicorn.__version__)
"#;

const FILES: &[&str] = &[
    "buildout.toml",
    "release.toml",
    "templates/app.ini.in",
    "playbook.yml",
    "inventory.ini",
];

/// The `changed=` and `failed=` counts of the PLAY RECAP line of `localhost`.
fn recap(run: &Run) -> (u32, u32) {
    let line = run
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no PLAY RECAP line for localhost:\n{}", run.stdout));
    let count = |key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    (count("changed="), count("failed="))
}

struct Fleet {
    tmp: tempfile::TempDir,
    index: Index,
    playbook: std::path::PathBuf,
}

impl Fleet {
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.tmp.path().join(rel)
    }

    /// `rbuildout args` in the staging copy `src`.
    fn staging(&self, args: &[&str]) -> Run {
        let r = Run::of(
            Command::new(rbuildout_bin())
                .args(args)
                .current_dir(self.path("src"))
                .env("HOME", self.path("home"))
                .env("RBUILDOUT_HOME", self.path("home/.rbuildout"))
                .env("PIP_INDEX_URL", self.index.url())
                .env("NO_COLOR", "1")
                .env_remove("PIP_FIND_LINKS"),
        );
        assert_eq!(r.code, 0, "staging rbuildout {args:?}:\n{}", r.stderr);
        r
    }

    /// `ansible-playbook` with the example's inventory and playbook, the binary under test
    /// and the instance in the temporary folder, and `extra` variables.
    fn deploy(&self, extra: &[&str]) -> Run {
        let mut c = Command::new(&self.playbook);
        c.arg("-i")
            .arg(self.path("src/inventory.ini"))
            .arg(self.path("src/playbook.yml"))
            .arg("-e")
            .arg(format!("rbuildout_binary={}", rbuildout_bin().display()))
            .arg("-e")
            .arg(format!(
                "rbuildout_instance={}",
                self.path("srv/app").display()
            ))
            .arg("-e")
            .arg(format!("rbuildout_bin_dir={}", self.path("bin").display()))
            .arg("-e")
            .arg(format!("rbuildout_index_url={}", self.index.url()));
        for e in extra {
            c.arg("-e").arg(e);
        }
        c.env("HOME", self.path("home"))
            .env("ANSIBLE_CONFIG", self.path("ansible.cfg"))
            .env("ANSIBLE_LOCAL_TEMP", self.path("ansible/local"))
            .env("ANSIBLE_REMOTE_TEMP", self.path("ansible/remote"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("RBUILDOUT_HOME", self.path("home/.rbuildout"))
            .env_remove("PIP_FIND_LINKS");
        let r = Run::of(&mut c);
        assert_eq!(
            r.code, 0,
            "ansible-playbook {extra:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// `rbuildout status --json` of the deployed instance.
    fn status(&self) -> serde_json::Value {
        let r = Run::of(
            Command::new(self.path("bin/rbuildout"))
                .args(["status", "--json"])
                .current_dir(self.path("srv/app"))
                .env("HOME", self.path("home")),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str(&r.stdout).expect("status --json")
    }

    fn current(&self) -> String {
        let status = self.status();
        let code = status["parts"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["part"] == "code"))
            .unwrap_or_else(|| panic!("no code part in {status}"));
        code["releases"]["current"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets `revision` of `[code]` in the staging config.
    fn revision(&self, revision: &str) {
        let path = self.path("src/buildout.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("revision = \"r1\"", &format!("revision = \"{revision}\""));
        std::fs::write(&path, text).unwrap();
    }
}

#[test]
fn the_playbook_deploys_the_instance_and_a_second_run_changes_nothing() {
    let Some(playbook) = ansible_playbook("the fleet example (examples/fleet)") else {
        return;
    };
    let gunicorn = Package::new("gunicorn", "1.0")
        .module("gunicorn/__init__.py", "__version__ = '1.0'\n")
        .module("gunicorn/app.py", GUNICORN)
        .entry_point("console_scripts", "gunicorn", "gunicorn.app:run");
    let fleet = Fleet {
        tmp: tempfile::tempdir().unwrap(),
        index: Index::serve(&[gunicorn]),
        playbook,
    };
    let example = repo_root().join("examples/fleet");
    for file in FILES {
        let to = fleet.path(&format!("src/{file}"));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(example.join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    std::fs::create_dir_all(fleet.path("home")).unwrap();
    std::fs::write(fleet.path("ansible.cfg"), "[defaults]\n").unwrap();
    // The example pins the real gunicorn; the local index has the stand-in's version.
    let release = fleet.path("src/release.toml");
    let text = std::fs::read_to_string(&release).unwrap();
    assert!(text.contains("gunicorn = \"23.0.0\""), "{text}");
    std::fs::write(&release, text.replace("\"23.0.0\"", "\"1.0\"")).unwrap();

    // Staging: one run writes the lock the whole fleet installs.
    fleet.staging(&[]);
    assert!(fleet.path("src/release.lock").is_file());

    let first = fleet.deploy(&[]);
    let (changed, failed) = recap(&first);
    assert_eq!(failed, 0);
    assert!(
        changed >= 3,
        "binary, files and the instance changed:\n{}",
        first.stdout
    );
    let app = fleet.path("srv/app");
    let ini = std::fs::read_to_string(app.join("etc/app.ini")).unwrap();
    assert!(
        ini.contains(&format!("instance = {}", app.display())) && ini.contains("port = 8000"),
        "{ini}"
    );
    let out = Command::new(app.join("bin/gunicorn")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "gunicorn 1.0\n");
    assert_eq!(fleet.current(), "r1");
    assert_eq!(
        std::fs::read(app.join("release.lock")).unwrap(),
        std::fs::read(fleet.path("src/release.lock")).unwrap(),
        "the host installs the staging lock as it is"
    );

    let second = fleet.deploy(&[]);
    assert_eq!(recap(&second), (0, 0), "{}", second.stdout);

    // A rolling upgrade: the new revision in the config, the same lock.
    fleet.revision("r2");
    let upgrade = fleet.deploy(&["rbuildout_serial=1"]);
    // The config copied, the instance changed.
    assert_eq!(recap(&upgrade), (2, 0), "{}", upgrade.stdout);
    assert_eq!(fleet.current(), "r2");
    // Rolling back: the release activated before.
    let back = fleet.deploy(&["rbuildout_args=code:revision=previous"]);
    assert_eq!(
        recap(&back),
        (1, 0),
        "only the instance changed:\n{}",
        back.stdout
    );
    assert_eq!(fleet.current(), "r1");
    assert!(
        Path::new(&app.join("code/r2")).is_dir(),
        "the release rolled back from is kept"
    );
}
