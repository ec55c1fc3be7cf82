#!/usr/bin/env bash
# Benchmark of the install lifecycle (issue 3): not a test, run on purpose.
#
#  1. No-op re-run (nothing changed) of a 20-part and a 1,000-part config: rbuildout beside
#     zc.buildout 6.0.1 re-running the equivalent buildout.cfg with -o.
#  2. Eight independent parts that each take 1 s, installed with -j 8 and with -j 1.
#
# Fairness: every part of both tools carries the same two options. rbuildout's parts use the
# testkit recipe `updatable`, whose update hook appends a line to a log file, so an unchanged part still costs one
# recipe call per run, as zc.buildout's `zc.buildout:debug` recipe does (its update prints
# the options; stdout goes to /dev/null). rbuildout is also timed with a recipe without an
# update hook (`file`), where an unchanged part costs no call at all. Both tools run with
# user defaults off (-U) and quietly.
#
# Usage: scripts/bench-lifecycle.sh [RUNS]   (env: ZC_BUILDOUT=path/to/bin/buildout)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${1:-20}

. scripts/lib.sh
release_build
# The built-in recipes are the binary's own; the test plugins come from the plugin path.
export RBUILDOUT_PLUGIN_PATH=$test_plugins
export RBUILDOUT_HOME=$(mktemp -d)

zcb=${ZC_BUILDOUT:-}
if [ -z "$zcb" ]; then
    zc_venv "$root/target/zc-buildout"
    zcb=$root/target/zc-buildout/bin/buildout
fi

work=$(mktemp -d)
trap 'rm -rf "$work" "$RBUILDOUT_HOME"' EXIT

# make_configs DIR N RECIPE: DIR/rb-RECIPE/buildout.toml and DIR/zc/buildout.cfg with N parts.
make_configs() {
    local dir=$1 n=$2 recipe=$3
    mkdir -p "$dir/rb-$recipe" "$dir/zc"
    {
        printf '[buildout]\nparts = ['
        for i in $(seq 1 "$n"); do printf '"p%d", ' "$i"; done
        printf ']\n'
        for i in $(seq 1 "$n"); do
            printf '\n[p%d]\nrecipe = "testkit:%s"\npath = "parts/p%d.txt"\ncontent = "part %d"\n' \
                "$i" "$recipe" "$i" "$i"
        done
    } >"$dir/rb-$recipe/buildout.toml"
    {
        printf '[buildout]\nparts ='
        for i in $(seq 1 "$n"); do printf ' p%d' "$i"; done
        printf '\n'
        for i in $(seq 1 "$n"); do
            printf '\n[p%d]\nrecipe = zc.buildout:debug\npath = parts/p%d.txt\ncontent = part %d\n' \
                "$i" "$i" "$i"
        done
    } >"$dir/zc/buildout.cfg"
}

# The timing harness: median and min wall time of RUNS runs after one warm-up run.
cat >"$work/timeit.py" <<'PY'
import statistics, subprocess, sys, time
runs, cwd, *cmd = sys.argv[1:]
times = []
for i in range(int(runs) + 1):
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if i:
        times.append(time.perf_counter() - t)
print(f"{statistics.median(times):.6f} {min(times):.6f}")
PY
timeit() { python3 "$work/timeit.py" "$@"; }
ms() { python3 -c "import sys; print(f'{float(sys.argv[1])*1000:.1f} ms')" "$1"; }

printf '\nno-op re-run (median of %s, min in brackets)\n' "$runs"
printf '%-11s %-22s %-22s %-22s %s\n' parts "rbuildout (update)" "rbuildout (no update)" "zc.buildout -o" "zc/rbuildout"
for n in 20 1000; do
    d=$work/n$n
    make_configs "$d" "$n" updatable
    make_configs "$d" "$n" file
    "$rb" -U -q -c "$d/rb-updatable/buildout.toml"
    "$rb" -U -q -c "$d/rb-file/buildout.toml"
    (cd "$d/zc" && "$zcb" -o -U -q >/dev/null)
    read -r rb_u rb_u_min < <(timeit "$runs" "$d/rb-updatable" "$rb" -U -q)
    read -r rb_f rb_f_min < <(timeit "$runs" "$d/rb-file" "$rb" -U -q)
    zc_runs=$(( n > 100 ? 3 : 5 ))
    read -r zc zc_min < <(timeit "$zc_runs" "$d/zc" "$zcb" -o -U -q)
    ratio=$(python3 -c "import sys; z, u, f = map(float, sys.argv[1:]); print(f'{z/u:.0f}x (update), {z/f:.0f}x (no update)')" "$zc" "$rb_u" "$rb_f")
    printf '%-11s %-22s %-22s %-22s %s\n' "$n" \
        "$(ms "$rb_u") [$(ms "$rb_u_min")]" "$(ms "$rb_f") [$(ms "$rb_f_min")]" \
        "$(ms "$zc") [$(ms "$zc_min")]" "$ratio"
done

printf '\n8 independent parts of 1 s each (testkit:sleep), fresh install\n'
d=$work/sleep
mkdir -p "$d"
{
    printf '[buildout]\nparts = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]\n'
    # Each part its own marker: two parts registering one path is an error.
    for i in 1 2 3 4 5 6 7 8; do
        printf '\n[s%d]\nrecipe = "testkit:sleep"\nseconds = "1"\nmarker = "s%d.marker"\n' "$i" "$i"
    done
} >"$d/buildout.toml"
for j in 8 1; do
    # Each timed run starts from no state, so every part really runs.
    read -r t _ < <(timeit 1 "$d" sh -c "rm -f .installed.toml s?.marker && '$rb' -U -q -j $j")
    printf -- '-j %s: %s\n' "$j" "$(ms "$t")"
done
