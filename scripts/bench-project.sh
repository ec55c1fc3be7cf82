#!/usr/bin/env bash
# Benchmark of a classic buildout project (issue 11): not a test, run on purpose (it uses the
# internet once).
#
# What: examples/buildout-project (`develop = .` with setup.py, zc.recipe.egg, zc.recipe.testrunner,
# collective.recipe.template, plone.recipe.command, zc.recipe.egg:scripts: five parts) built
# by rbuildout (release build) and by zc.buildout 6.0.1 with the real Python recipes, from the
# same buildout.cfg, each
#   - cold: empty eggs folder, download cache and develop-eggs, a fresh copy of the project,
#   - warm: the eggs folder and download cache kept (shared, as `eggs-directory` and
#     `download-cache` of the user defaults would be), a fresh copy of the project,
#   - no-op: the same command again on the built project (zc.buildout re-runs `setup.py
#     develop` and every recipe; rbuildout checks its state).
# Printed: the median (and min) of RUNS runs, and zc.buildout's time divided by rbuildout's.
#
# Setup, done once and kept under target/bench-project/: the project's requirements
# (zope.testrunner and what it needs, setuptools for the develop build) are fetched from the
# real index into wheels/ with `pip download`; zcb/ holds zc.buildout and the four recipes.
# zc.recipe.testrunner's entry point needs zope.testrunner beside it (pkg_resources checks), so
# zc.buildout takes zope.testrunner and its requirements from its own site-packages while
# rbuildout installs them: a head start for zc.buildout in the cold and warm columns. The timed
# runs use scripts/bench-egg/serve_index.py on 127.0.0.1 and never leave the machine.
#
# Usage: scripts/bench-project.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
. scripts/lib.sh
bench_setup bench-project

# --- setup ---------------------------------------------------------------------------------
if [ ! -f "$bench/wheels/.complete" ]; then
    echo "fetching zope.testrunner, setuptools and their requirements from the index (once)" >&2
    rm -rf "$bench/wheels"
    "$py" -m pip download -q --only-binary=:all: -d "$bench/wheels" zope.testrunner setuptools wheel
    touch "$bench/wheels/.complete"
fi
PYTHON=$py zc_venv "$bench/zcb" zc.recipe.egg==6.0.0 collective.recipe.template==3.0.0 \
    plone.recipe.command==1.1 zc.recipe.testrunner==5.0
zcb=$bench/zcb/bin/buildout

cargo build --release --workspace --quiet
target=${CARGO_TARGET_DIR:-$root/target}/release
rb=$target/rbuildout

serve_wheels "$py" "$bench/wheels"

# One base folder per tool: the project copy proj/, and the shared eggs/ and cache/. The
# config is the example's, with the index and the shared folders added to [buildout].
prepare_base() {
    local d=$1
    mkdir -p "$d"
    cat >"$d/prepare.sh" <<EOF
rm -rf proj && cp -a "$root/examples/buildout-project" proj && rm -rf proj/bin proj/parts \
    proj/develop-eggs proj/eggs proj/etc proj/var proj/.installed.* proj/buildout.lock
sed -i "s|^\\[buildout\\]\$|[buildout]\\nindex = $index\\neggs-directory = $d/eggs\\ndownload-cache = $d/cache\\nnewest = false|" proj/buildout.cfg
EOF
}
rbd=$work/rb
zcd=$work/zc
prepare_base "$rbd"
prepare_base "$zcd"
rb_cmd=(env -u RBUILDOUT_PLUGIN_PATH RBUILDOUT_HOME="$rbd/home" HOME="$rbd/home" "$rb" -U -q -c proj/buildout.cfg)
zc_cmd=(env HOME="$zcd/home" "$zcb" -U -q -c proj/buildout.cfg)

cold_prepare="rm -rf eggs cache home && sh prepare.sh"
measure rbuildout "$rbd" "$cold_prepare" "sh prepare.sh" "${rb_cmd[@]}"
rb_row="$cold|$warm|$noop"
# The built project works: its script, its test runner.
"$rbd/proj/bin/greeter" >/dev/null && "$rbd/proj/bin/test" >/dev/null \
    || echo "warning: rbuildout's bin/greeter or bin/test failed" >&2
measure zc.buildout "$zcd" "$cold_prepare" "sh prepare.sh" "${zc_cmd[@]}"
zc_row="$cold|$warm|$noop"

versions="$("$py" --version), zc.buildout $("$bench/zcb/bin/python" -c 'from importlib.metadata import version; print(version("zc.buildout"))'), work folder on $(df --output=fstype "$work" | tail -1), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
"$py" - "$runs" "$versions" "$rb_row" "$zc_row" <<'PY'
import sys

sys.path.insert(0, "scripts/bench-egg")
from cells import cell, ratio

runs, versions, rb, zc = sys.argv[1:5]
rb, zc = rb.split("|"), zc.split("|")


print(f"\nexamples/buildout-project, five parts (median of {runs} runs, min in brackets;")
print("ratio = zc.buildout's median / rbuildout's; targets: cold >= 3x, no-op >= 20x, rbuildout no-op < 100 ms)")
print(f"{versions}\n")
print(f"{'tool':<14} {'cold':>22} {'warm':>22} {'no-op':>22}")
print(f"{'rbuildout':<14} " + " ".join(f"{cell(c, 'ms'):>22}" for c in rb))
print(f"{'zc.buildout':<14} " + " ".join(f"{cell(c, 'ms'):>22}" for c in zc))
print(f"{'ratio':<14} " + " ".join(f"{ratio(z, r):>22}" for z, r in zip(zc, rb)))
PY
