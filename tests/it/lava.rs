//! The LAVA-style instance end to end (SPEC §5.6): the example `examples/lava-instance/`
//! itself, copied into a temporary folder and run against a local index.
//!
//! The index serves small stand-ins named like the real distributions (`django`, its
//! dependency `asgiref`, `gunicorn`), so the example's configs are used as they are; only the
//! pins of `release.toml` are set by the test (a different `django` per revision). The
//! stand-ins run the example's own project (`src/lavasite`): the `gunicorn` script reads
//! `etc/gunicorn.conf.py`, imports `lavasite.wsgi` and answers one request on stdout instead
//! of serving; `manage` (Django's `django-admin`) imports the settings, which read
//! `etc/lavasite.ini`. No test reaches the internet: `PIP_INDEX_URL` names the local index
//! and the download cache is inside the instance.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rbuildout_tests::pyindex::{Index, Package};
use rbuildout_tests::{Instance, Run, mtime, repo_root};

const DJANGO_INIT: &str = "__version__ = '{version}'\n";

const DJANGO_HTTP: &str = r#"
class HttpResponse:
    def __init__(self, content=b"", content_type="text/html", status=200):
        self.content = content.encode() if isinstance(content, str) else content
        self.content_type = content_type
        self.status_code = status
"#;

const DJANGO_URLS: &str = r#"
def path(route, view, name=None):
    return (route, view)
"#;

const DJANGO_WSGI: &str = r#"
import importlib
import os


def get_wsgi_application():
    settings = importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    urls = importlib.import_module(settings.ROOT_URLCONF)

    def application(environ, start_response):
        host = environ.get("HTTP_HOST", "").split(":")[0]
        if host not in settings.ALLOWED_HOSTS:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"bad host\n"]
        route = environ.get("PATH_INFO", "/").lstrip("/")
        for pattern, view in urls.urlpatterns:
            if pattern == route:
                response = view(environ)
                start_response("200 OK", [("Content-Type", response.content_type)])
                return [response.content]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return application
"#;

const DJANGO_MANAGEMENT: &str = r#"
import importlib
import os
import sys

import asgiref
import django


def execute_from_command_line(argv=None):
    argv = sys.argv if argv is None else argv
    settings = importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    print("django", django.__version__, "asgiref", asgiref.__version__)
    print("settings", settings.__name__, "debug", settings.DEBUG)
    print("database", settings.DATABASES["default"]["NAME"])
    print("args", " ".join(argv[1:]))
"#;

const GUNICORN_WSGIAPP: &str = r#"
import importlib
import sys

import gunicorn


def run():
    args = sys.argv[1:]
    conf = {}
    if args[:1] == ["-c"]:
        with open(args[1]) as f:
            exec(f.read(), conf)
        args = args[2:]
    target = args[0] if args else conf["wsgi_app"]
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr or "application")
    status = []
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "GET", "HTTP_HOST": conf["bind"]}
    body = b"".join(app(environ, lambda s, headers: status.append(s)))
    print("gunicorn", gunicorn.__version__, "bind", conf["bind"], "status", status[0])
    sys.stdout.write(body.decode())
"#;

/// A Django stand-in at `version`: the modules the example's project imports and the
/// `django-admin` console script.
fn django(version: &str) -> Package {
    Package::new("django", version)
        .requires("asgiref>=1")
        .module(
            "django/__init__.py",
            &DJANGO_INIT.replace("{version}", version),
        )
        .module("django/http.py", DJANGO_HTTP)
        .module("django/urls.py", DJANGO_URLS)
        .module("django/core/__init__.py", "")
        .module("django/core/wsgi.py", DJANGO_WSGI)
        .module("django/core/management/__init__.py", DJANGO_MANAGEMENT)
        .entry_point(
            "console_scripts",
            "django-admin",
            "django.core.management:execute_from_command_line",
        )
}

fn packages() -> Vec<Package> {
    vec![
        django("1.0"),
        django("2.0"),
        Package::new("asgiref", "1.0").module("asgiref/__init__.py", "__version__ = '1.0'\n"),
        Package::new("gunicorn", "1.0")
            .module("gunicorn/__init__.py", "__version__ = '1.0'\n")
            .module("gunicorn/app/__init__.py", "")
            .module("gunicorn/app/wsgiapp.py", GUNICORN_WSGIAPP)
            .entry_point("console_scripts", "gunicorn", "gunicorn.app.wsgiapp:run"),
    ]
}

/// The example's own files (not what a run of it made), copied into `to`.
fn copy_sources(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().unwrap();
        if name == "__pycache__" || kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir_all(to.join(&name)).unwrap();
            copy_sources(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The example instance in a temporary folder with its index.
struct Lava {
    inst: Instance,
    index: Index,
}

impl Lava {
    fn new() -> Lava {
        let example = repo_root().join("examples/lava-instance");
        let inst = Instance::new(&std::fs::read_to_string(example.join("buildout.toml")).unwrap());
        for source in ["release.toml", "templates", "src"] {
            let from = example.join(source);
            if from.is_dir() {
                std::fs::create_dir_all(inst.path(source)).unwrap();
                copy_sources(&from, &inst.path(source));
            } else {
                std::fs::copy(&from, inst.path(source)).unwrap();
            }
        }
        let lava = Lava {
            inst,
            index: Index::serve(&packages()),
        };
        lava.pin("1.0");
        lava
    }

    /// Sets the release config's `[versions]`: `django` at `version`, `gunicorn` at 1.0.
    fn pin(&self, version: &str) {
        let mut release: toml::Table = self.inst.read("release.toml").parse().unwrap();
        let versions = release
            .get_mut("versions")
            .and_then(|v| v.as_table_mut())
            .expect("release.toml has a [versions] section");
        assert!(
            versions.contains_key("django") && versions.contains_key("gunicorn"),
            "the example pins django and gunicorn"
        );
        versions.insert("django".into(), version.into());
        versions.insert("gunicorn".into(), "1.0".into());
        self.inst
            .write("release.toml", &toml::to_string(&release).unwrap());
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut all = vec!["buildout:download-cache=.cache"];
        all.extend_from_slice(args);
        let mut c = self.inst.command(&all);
        c.env("PIP_INDEX_URL", self.index.url())
            .env_remove("PIP_FIND_LINKS");
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run rbuildout");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "rbuildout {args:?} failed:\n{}", r.stderr);
        r
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.inst.path(rel)
    }

    fn current(&self) -> String {
        std::fs::read_link(self.path("code/current"))
            .expect("code/current is a link")
            .display()
            .to_string()
    }

    /// Runs `bin/<script> args` from the instance folder; asserts success, returns stdout.
    fn script(&self, script: &str, args: &[&str]) -> String {
        let out = Command::new(self.path("bin").join(script))
            .args(args)
            .current_dir(self.inst.dir())
            .env_remove("DJANGO_SETTINGS_MODULE")
            .env_remove("LAVASITE_INSTANCE")
            .env_remove("LAVASITE_RELEASE")
            .env_remove("PYTHONPATH")
            .output()
            .unwrap_or_else(|e| panic!("run bin/{script}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "bin/{script} {args:?}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// What the service answers (through the gunicorn stand-in).
    fn page(&self) -> String {
        let out = self.script("gunicorn", &["-c", "etc/gunicorn.conf.py", "lavasite.wsgi"]);
        let body = out.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert!(
            out.starts_with("gunicorn 1.0 bind 127.0.0.1:8000 status 200 OK\n"),
            "{out}"
        );
        body
    }

    fn django_version(&self) -> String {
        let out = self.script("manage", &["check"]);
        let first = out.lines().next().unwrap_or_default();
        first
            .strip_prefix("django ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("bin/manage printed {out}"))
            .to_string()
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 == 0o111)
}

/// `code/current` names a complete release whose scripts run; returns its revision.
fn assert_current_works(lava: &Lava, when: &str) -> String {
    let revision = lava.current();
    assert_eq!(
        std::fs::read_to_string(lava.path(&format!("code/{revision}/.rbuildout-release")))
            .unwrap_or_default(),
        "good\n",
        "{when}: current -> {revision}"
    );
    assert_eq!(lava.page(), format!("hello from {revision}"), "{when}");
    revision
}

#[test]
fn the_example_instance_installs_upgrades_and_rolls_back() {
    let lava = Lava::new();
    let dir = lava.inst.dir().to_path_buf();
    lava.ok(&[]);

    // The instance's folders and rendered configs.
    for folder in ["etc", "run", "tmp", "var", "var/log", "eggs"] {
        assert!(lava.path(folder).is_dir(), "{folder} is a folder");
    }
    let ini = lava.inst.read("etc/lavasite.ini");
    assert!(
        ini.contains(&format!(
            "database = {}/var/lavasite.sqlite3",
            dir.display()
        )) && ini.contains("allowed-hosts = 127.0.0.1 localhost"),
        "{ini}"
    );
    let conf = lava.inst.read("etc/gunicorn.conf.py");
    assert!(
        conf.contains("bind = \"127.0.0.1:8000\"")
            && conf.contains(&format!("pidfile = \"{}/run/gunicorn.pid\"", dir.display())),
        "{conf}"
    );

    // The release, the links and the scripts through them.
    assert_eq!(lava.current(), "r1");
    assert_eq!(
        std::fs::read_link(lava.path("bin")).unwrap(),
        Path::new("code/current/bin")
    );
    for script in ["gunicorn", "manage", "python", "activate"] {
        assert!(
            lava.path(&format!("code/r1/bin/{script}")).is_file(),
            "code/r1/bin/{script}"
        );
    }
    for script in ["gunicorn", "manage", "python"] {
        assert!(
            is_executable(&lava.path(&format!("bin/{script}"))),
            "bin/{script}"
        );
    }
    let mut eggs: Vec<String> = std::fs::read_dir(lava.path("eggs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    eggs.sort();
    assert_eq!(
        eggs,
        [
            "asgiref-1.0-py3-none-any",
            "django-1.0-py3-none-any",
            "gunicorn-1.0-py3-none-any"
        ],
        "the eggs are the instance's, shared by releases"
    );
    assert!(!lava.path("code/r1/eggs").exists());
    assert_eq!(lava.page(), "hello from r1");
    let manage = lava.script("manage", &["check", "--deploy"]);
    assert_eq!(
        manage,
        format!(
            "django 1.0 asgiref 1.0\nsettings lavasite.settings debug False\n\
             database {}/var/lavasite.sqlite3\nargs check --deploy\n",
            dir.display()
        )
    );
    let python = lava.script(
        "python",
        &[
            "-c",
            "import os, django, lavasite.settings as s; \
             print(django.__version__, s.INSTANCE == os.path.realpath(os.getcwd()), os.path.basename(s.RELEASE))",
        ],
    );
    assert_eq!(python, "1.0 True r1\n");

    // bin/activate: the instance looks like a virtualenv whose bin is the current release's.
    let activated = Command::new("sh")
        .arg("-c")
        .arg(
            ". bin/activate && printf '%s\\n' \"$VIRTUAL_ENV\" \"$DJANGO_SETTINGS_MODULE\" \
             \"$(command -v manage)\" && manage | head -n 1",
        )
        .current_dir(&dir)
        .env_remove("VIRTUAL_ENV")
        .env_remove("DJANGO_SETTINGS_MODULE")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&activated.stdout),
        format!(
            "{0}\nlavasite.settings\n{0}/bin/manage\ndjango 1.0 asgiref 1.0\n",
            dir.display()
        ),
        "{}",
        String::from_utf8_lossy(&activated.stderr)
    );

    // A second run changes nothing and asks the index nothing.
    let requests = lava.index.requests().len();
    let release_state = lava.path("code/r1/.installed.toml");
    let before = mtime(&release_state);
    lava.ok(&[]);
    assert_eq!(lava.index.requests().len(), requests, "nothing asked again");
    assert_eq!(mtime(&release_state), before);

    // Upgrade: a new revision with another django.
    lava.pin("2.0");
    lava.ok(&["code:revision=r2"]);
    assert_eq!(lava.current(), "r2");
    assert_eq!(lava.page(), "hello from r2");
    assert_eq!(lava.django_version(), "2.0");
    assert!(lava.path("eggs/django-2.0-py3-none-any").is_dir());
    assert!(lava.path("eggs/django-1.0-py3-none-any").is_dir());
    assert_eq!(
        lava.inst.read("code/r2/bin/activate"),
        lava.inst.read("code/r1/bin/activate"),
        "activate is the same whichever release is current"
    );
    assert!(
        lava.path("code/r1/.rbuildout-release").is_file(),
        "r1 is kept"
    );

    // Roll back: no build, no index request.
    let requests = lava.index.requests().len();
    lava.ok(&["code:revision=previous"]);
    assert_eq!(lava.current(), "r1");
    assert_eq!(
        lava.index.requests().len(),
        requests,
        "a rollback asks nothing"
    );
    assert_eq!(mtime(&release_state), before, "a rollback builds nothing");
    assert_eq!(lava.page(), "hello from r1");
    assert_eq!(lava.django_version(), "1.0");
    assert!(lava.path("bin/activate").is_file());
    assert_eq!(lava.inst.read("code/history"), "r1\nr2\nr1\n");

    // And forward again to the kept r2, still without asking anything.
    lava.ok(&["code:revision=r2"]);
    assert_eq!(lava.current(), "r2");
    assert_eq!(lava.index.requests().len(), requests);
    assert_eq!(lava.django_version(), "2.0");
}

#[test]
fn killing_upgrades_leaves_a_working_current_and_the_next_run_converges() {
    let lava = Lava::new();
    lava.ok(&["code:revision=r0"]);
    // An upgrade whose eggs are all in the instance's eggs folder, timed, so the kills
    // spread over its whole length however fast the machine is today.
    lava.pin("2.0");
    let started = Instant::now();
    lava.ok(&["code:revision=r1"]);
    let whole = started.elapsed().as_millis() as u64;
    assert_current_works(&lava, "after the timed upgrade");
    let percents = [0u64, 3, 8, 15, 25, 35, 45, 55, 65, 75, 85, 95, 110];
    let mut mid_build = 0;
    for (i, percent) in percents.iter().enumerate() {
        let previous = format!("r{}", i + 1);
        let revision = format!("r{}", i + 2);
        let django = if i % 2 == 0 { "1.0" } else { "2.0" };
        lava.pin(django);
        let assignment = format!("code:revision={revision}");
        let mut child = lava
            .command(&[&assignment])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = whole * percent / 100;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        let when = format!("{revision} killed after {delay} ms");
        if std::fs::read_to_string(lava.path(&format!("code/{revision}/.rbuildout-release")))
            .is_ok_and(|m| m == "building\n")
        {
            mid_build += 1;
        }
        let seen = assert_current_works(&lava, &when);
        assert!(
            seen == revision || seen == previous,
            "{when}: current -> {seen}"
        );

        lava.ok(&[&assignment]);
        assert_eq!(lava.current(), revision, "{when}: the next run converges");
        assert_current_works(&lava, &when);
        assert_eq!(lava.django_version(), django, "{when}");
        assert!(lava.path("bin/activate").is_file(), "{when}");
        let leftovers: Vec<String> = std::fs::read_dir(lava.path("code"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{when}: {leftovers:?}");
    }
    assert!(mid_build > 0, "no kill landed during a release build");
    // keep = 3 in the example: the current release and three more, the latest activated.
    let mut releases: Vec<String> = std::fs::read_dir(lava.path("code"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.is_symlink() && p.join(".rbuildout-release").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    assert_eq!(releases, ["r11", "r12", "r13", "r14"]);
}
