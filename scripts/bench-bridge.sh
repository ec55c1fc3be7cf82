#!/usr/bin/env bash
# Benchmark of the Python recipe bridge's no-op cost (issue 12, item 5): not a test, run on
# purpose (it uses the internet once, to fetch zc.buildout and its requirements).
#
# What: the same five native parts (mkdir, template) run as a no-op, alone and with two
# bridged parts beside them: one whose recipe has an `update` (it runs on every run, as
# zc.buildout's do: the interpreter starts and imports the recipe) and one without (the
# bridge remembers there is nothing to call). Printed: the median (and min) of RUNS no-op
# runs of each, and what the bridged parts add; target: under 50 ms.
#
# Setup, kept under target/bench-bridge/: zc.buildout 6.0.1 and its requirements as wheels
# (`pip download`, once), and two tiny recipe distributions built with `pip wheel`. The timed
# runs use scripts/bench-egg/serve_index.py on 127.0.0.1 and never leave the machine.
#
# Usage: scripts/bench-bridge.sh [RUNS]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
. scripts/lib.sh
bench_setup bench-bridge

if [ ! -f "$bench/wheels/.complete" ]; then
    echo "fetching zc.buildout and its requirements from the index (once)" >&2
    rm -rf "$bench/wheels" "$bench/src"
    "$py" -m pip download -q --only-binary=:all: -d "$bench/wheels" zc.buildout==6.0.1
    for kind in withupdate noupdate; do
        src=$bench/src/bench$kind
        mkdir -p "$src"
        update=""
        [ "$kind" = withupdate ] && update="    update = install"
        cat >"$src/bench$kind.py" <<EOF
import os
import zc.buildout


class Recipe:
    def __init__(self, buildout, name, options):
        options["location"] = os.path.join(buildout["buildout"]["parts-directory"], name)

    def install(self):
        return ()
$update
EOF
        cat >"$src/setup.py" <<EOF
from setuptools import setup
setup(name="bench$kind", version="1.0", py_modules=["bench$kind"],
      install_requires=["zc.buildout"],
      entry_points={"zc.buildout": ["default = bench$kind:Recipe"]})
EOF
        "$py" -m pip wheel -q --no-deps -w "$bench/wheels" "$src"
    done
    touch "$bench/wheels/.complete"
fi

release_build
serve_wheels "$py" "$bench/wheels"

native="[d1]\nrecipe = mkdir\npaths = v1\n[d2]\nrecipe = mkdir\npaths = v2\n\
[t1]\nrecipe = collective.recipe.template\ninput = inline:one\noutput = \${buildout:directory}/t1\n\
[t2]\nrecipe = collective.recipe.template\ninput = inline:two\noutput = \${buildout:directory}/t2\n\
[t3]\nrecipe = collective.recipe.template\ninput = inline:three\noutput = \${buildout:directory}/t3\n"
bridged="[u]\nrecipe = benchwithupdate\n[n]\nrecipe = benchnoupdate\n"
for variant in native bridged; do
    mkdir -p "$work/$variant"
    parts="d1 d2 t1 t2 t3"
    body=$native
    if [ "$variant" = bridged ]; then
        parts="$parts u n"
        body="$body$bridged"
    fi
    printf "[buildout]\nparts = %s\nindex = %s\n\n$body" "$parts" "$index" >"$work/$variant/buildout.cfg"
    (cd "$work/$variant" && RBUILDOUT_HOME="$work/home" HOME="$work/home" "$rb" -U -q -c buildout.cfg)
done

time_noop() {
    "$py" "$helpers/timeit.py" "$runs" "$work/$1" "" "$bench/logs/$1.log" \
        env RBUILDOUT_HOME="$work/home" HOME="$work/home" "$rb" -U -q -c buildout.cfg
}
native_t=$(time_noop native)
bridged_t=$(time_noop bridged)

"$py" - "$runs" "$native_t" "$bridged_t" "$(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys

runs, native, bridged, machine = sys.argv[1:5]
(nm, nn), (bm, bn) = (map(float, native.split())), (map(float, bridged.split()))
print(f"\nno-op re-run, median of {runs} runs (min in brackets); {machine}")
print(f"{'five native parts':<36} {nm * 1000:8.1f} ms [{nn * 1000:.1f}]")
print(f"{'the same + two bridged parts':<36} {bm * 1000:8.1f} ms [{bn * 1000:.1f}]")
print(f"{'added by the bridged parts':<36} {(bm - nm) * 1000:8.1f} ms   (target < 50 ms)")
PY
