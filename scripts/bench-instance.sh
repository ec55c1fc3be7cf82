#!/usr/bin/env bash
# Benchmark of the LAVA instance (issue 5): not a test, run on purpose.
#
# The instance is examples/lava-instance (Django + gunicorn), copied into
# target/bench-instance/run/rb and pointed at a local find-links folder of the real wheels
# (downloaded once with `pip download` into target/bench-instance/wheels, at the versions
# pinned in the example's release.toml). Measured, in the same run:
#
#  1. upgrade: `rbuildout code:revision=rN` where every egg is already in the instance's eggs
#     folder (a new release folder, its egg part resolved from the local wheels, its scripts,
#     the switch, the activate file) — target < 200 ms;
#  2. rollback: `rbuildout code:revision=previous` to a kept release — target < 50 ms.
#
# The peer: zc.buildout 6.0.1 + zc.recipe.egg (a venv in target/bench-instance/zc-venv)
# building each release into code/rN from a buildout.cfg with the same eggs, scripts,
# interpreter, extra-paths, initialization and pins, against the same wheels, with a shared
# eggs-directory, then `ln -sfn rN code/current`; its rollback is `ln -sfn` alone.
# zc.buildout's `-o` cannot be used: 6.0.1 in offline mode does not find the eggs it made from
# wheels (`We don't have a distribution for django==5.2.19 and can't install one in offline
# (no-install) mode`), so it runs with `newest = false`, which asks nothing when the eggs are
# there. Both tools run with http(s)_proxy set to a closed port: any network access fails.
#
# Usage: scripts/bench-instance.sh [RUNS]   (default 10 upgrades and 10 rollbacks per tool)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${1:-10}

cargo build --release --workspace --quiet
target=${CARGO_TARGET_DIR:-$root/target}/release
bench=$root/target/bench-instance
example=$root/examples/lava-instance
mkdir -p "$bench"

# The pins of the example's release, e.g. "django==5.2.19 gunicorn==23.0.0".
pins=$(python3 - "$example/release.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    versions = tomllib.load(f)["versions"]
print(" ".join(f"{name}=={version}" for name, version in sorted(versions.items())))
PY
)
if [ "$(cat "$bench/wheels/.pins" 2>/dev/null)" != "$pins" ]; then
    rm -rf "$bench/wheels"
    # shellcheck disable=SC2086
    python3 -m pip download --quiet --only-binary=:all: --dest "$bench/wheels" $pins
    echo "$pins" >"$bench/wheels/.pins"
fi
zc=$bench/zc-venv
. scripts/lib.sh
zc_venv "$zc" zc.recipe.egg

work=$bench/run
rm -rf "$work"
mkdir -p "$work"

cat >"$work/bench.py" <<'PY'
import os, shutil, statistics, subprocess, sys, time

rb, example, wheels, zcb, work, runs = sys.argv[1:]
runs = int(runs)
env = dict(os.environ, NO_COLOR="1",
           RBUILDOUT_HOME=os.path.join(work, "home"),
           http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
           HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
# The built-in recipes are the binary's own: no plugin path.
for var in ("PIP_INDEX_URL", "PIP_FIND_LINKS", "RUST_LOG", "NO_PROXY", "no_proxy",
            "RBUILDOUT_PLUGIN_PATH"):
    env.pop(var, None)


def run(cmd, cwd):
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - t
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout.decode()}")
    return elapsed


# rbuildout: the example as it is, its release reading the local wheels instead of the index.
rbi = os.path.join(work, "rb")
os.makedirs(rbi)
for name in ("buildout.toml", "release.toml"):
    shutil.copy(os.path.join(example, name), rbi)
for name in ("templates", "src"):
    shutil.copytree(os.path.join(example, name), os.path.join(rbi, name),
                    ignore=shutil.ignore_patterns("__pycache__"))
with open(os.path.join(rbi, "release.toml")) as f:
    release = f.read()
local = f'[buildout]\nindex = ""\nfind-links = ["{wheels}"]\n'
assert "\n[buildout]\n" in release
with open(os.path.join(rbi, "release.toml"), "w") as f:
    f.write(release.replace("\n[buildout]\n", "\n" + local, 1))


def rbuildout(revision):
    return run([rb, "-U", "-q", "-c", "buildout.toml",
                f"buildout:download-cache={work}/rb-cache", f"code:revision={revision}"], rbi)


# zc.buildout: the same release as a buildout.cfg, one folder per release, then ln -sfn.
zci = os.path.join(work, "zc")
os.makedirs(os.path.join(zci, "code"))
with open(os.path.join(example, "release.toml"), "rb") as f:
    import tomllib
    pins = tomllib.load(f)["versions"]
ZC_CFG = f"""[buildout]
parts = scripts
eggs-directory = {zci}/eggs
find-links = {wheels}
index = {wheels}
newest = false
relative-paths = true

[scripts]
recipe = zc.recipe.egg:scripts
eggs = django
       gunicorn
scripts = gunicorn
          django-admin=manage
interpreter = python
extra-paths = {zci}/src
initialization =
    import os
    _release = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    os.environ['LAVASITE_RELEASE'] = _release
    os.environ['LAVASITE_INSTANCE'] = os.path.dirname(os.path.dirname(_release))
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'lavasite.settings')

[versions]
""" + "".join(f"{name} = {version}\n" for name, version in sorted(pins.items()))
shutil.copytree(os.path.join(example, "src"), os.path.join(zci, "src"),
                ignore=shutil.ignore_patterns("__pycache__"))


def zc_build(revision):
    folder = os.path.join(zci, "code", revision)
    os.makedirs(folder)
    with open(os.path.join(folder, "buildout.cfg"), "w") as f:
        f.write(ZC_CFG)
    return run(["sh", "-c", f'"$0" -q -c "code/{revision}/buildout.cfg" && ln -sfn "{revision}" code/current', zcb], zci)


def zc_switch(revision):
    return run(["ln", "-sfn", revision, "code/current"], os.path.join(zci))


first = {"rbuildout": rbuildout("r1"), "zc.buildout": zc_build("r1")}
times = {k: {"upgrade": [], "rollback": []} for k in first}
# Each round upgrades from r1 to a new release, then rolls back to r1 (the previous one).
for i in range(2, runs + 2):
    times["rbuildout"]["upgrade"].append(rbuildout(f"r{i}"))
    times["rbuildout"]["rollback"].append(rbuildout("previous"))
    times["zc.buildout"]["upgrade"].append(zc_build(f"r{i}"))
    times["zc.buildout"]["rollback"].append(zc_switch("r1"))

# Both instances work: current is r1 again, and its scripts import the pinned versions.
for name, inst in (("rbuildout", rbi), ("zc.buildout", zci)):
    current = os.readlink(os.path.join(inst, "code/current"))
    assert current == "r1", (name, current)
    out = subprocess.run([os.path.join(inst, "code/current/bin/python"), "-c",
                          "import django, gunicorn; print(django.__version__, gunicorn.__version__)"],
                         env=env, check=True, capture_output=True, text=True).stdout.split()
    assert out == [pins["django"], pins["gunicorn"]], (name, out)


def ms(seconds):
    return f"{seconds * 1000:8.1f} ms"


print(f"\nLAVA instance (examples/lava-instance: {', '.join(f'{k} {v}' for k, v in sorted(pins.items()))}),"
      f" {runs} runs each, median [min]")
print(f"{'step':<34}{'rbuildout':>24}{'zc.buildout + ln':>24}{'zc/rb':>8}  target")
print(f"{'first release (eggs from wheels)':<34}{ms(first['rbuildout']):>24}{ms(first['zc.buildout']):>24}"
      f"{first['zc.buildout'] / first['rbuildout']:>7.1f}x")
for step, label, goal in (("upgrade", "upgrade (eggs all in eggs/)", 0.200),
                          ("rollback", "rollback to a kept release", 0.050)):
    rb_t, zc_t = times["rbuildout"][step], times["zc.buildout"][step]
    rb_med, zc_med = statistics.median(rb_t), statistics.median(zc_t)
    verdict = "ok" if rb_med < goal else "MISSED"
    print(f"{label:<34}{ms(rb_med) + ' [' + ms(min(rb_t)).strip() + ']':>24}"
          f"{ms(zc_med) + ' [' + ms(min(zc_t)).strip() + ']':>24}{zc_med / rb_med:>7.1f}x"
          f"  < {goal * 1000:.0f} ms {verdict}")
print("\nrbuildout's steps run the whole instance (5 parts: dirs, 2 templates, the release switch,"
      "\nactivate); zc.buildout's only build the release, and its rollback is `ln -sfn` alone.")
PY

python3 "$work/bench.py" "$target/rbuildout" "$example" "$bench/wheels" \
    "$zc/bin/buildout" "$work" "$runs"
