#!/usr/bin/env bash
# Benchmark of the state at scale (issue 13, item 6): not a test, run on purpose.
#
# One part (testkit:million) registers 1,000,000 paths `million/N`, which exist (made once,
# untimed, before the runs: creating a million files is the file system's time, not
# rbuildout's). Timed, each the median of RUNS runs with the peak RSS (/usr/bin/time %M):
#
#  - install: no state file, so the part installs, its million registrations are checked
#    and the state written;
#  - no-op re-run: the state is read, every recorded path is found where it was, nothing
#    is written.
#
# No other tool records a million owned paths, so the figures are printed against the
# targets (2 s and 300 MB each) as ratios: below 1.00 meets the target.
#
# Usage: scripts/bench-state.sh [RUNS] [PATHS]   (defaults: 5 runs, 1000000 paths)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
paths=${2:-1000000}

. scripts/lib.sh
release_build
export RBUILDOUT_PLUGIN_PATH=$test_plugins:$target
export RBUILDOUT_HOME=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$work" "$RBUILDOUT_HOME"' EXIT
export HOME=$RBUILDOUT_HOME

inst=$work/inst
mkdir -p "$inst"
printf 'buildout = { parts = ["many"] }\nmany = { recipe = "testkit:million", paths = "%s", outputs = "0" }\n' \
    "$paths" >"$inst/buildout.toml"
echo "making $paths files in $inst/million (untimed)" >&2
python3 - "$inst/million" "$paths" <<'PY'
import os, sys
folder, n = sys.argv[1], int(sys.argv[2])
os.makedirs(folder, exist_ok=True)
for i in range(n):
    os.close(os.open(f"{folder}/{i}", os.O_CREAT | os.O_WRONLY, 0o644))
PY

# run KIND: one timed run in $inst, printing "seconds kilobytes"; an install starts from no
# state file.
run() {
    if [ "$1" = install ]; then rm -f "$inst/.installed.toml"; fi
    (cd "$inst" && /usr/bin/time -f '%e %M' -o "$work/time" "$rb" -U -q)
    cat "$work/time"
}

# A warm-up install and no-op (the plugin's digest and the page cache), untimed.
run install >/dev/null
run noop >/dev/null

printf '\n%s paths, median of %s runs (load average now: %s)\n' "$paths" "$runs" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %-10s %-10s %-12s %s\n' run seconds "peak MB" "time/target" "RSS/target"
for kind in install noop; do
    for _ in $(seq "$runs"); do run "$kind"; done >"$work/$kind"
    python3 - "$kind" "$work/$kind" <<'PY'
import statistics, sys
kind, path = sys.argv[1], sys.argv[2]
rows = [tuple(map(float, line.split())) for line in open(path) if line.strip()]
secs = statistics.median(r[0] for r in rows)
mb = statistics.median(r[1] for r in rows) / 1024
name = "install" if kind == "install" else "no-op re-run"
print(f"{name:<16} {secs:<10.2f} {mb:<10.0f} {secs / 2:<12.2f} {mb / 300:.2f}")
PY
done
