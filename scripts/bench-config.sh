#!/usr/bin/env bash
# Benchmark of config resolution (issue 2): not a test, run on purpose.
#
# For 1,000, 10,000 and 100,000 sections, generates one .cfg config spread over five files
# (buildout.cfg extends four files of sections, and overrides some of their options with
# +=), where each section substitutes its predecessor's value (${s<i-1>:v}) in chains of
# CHAIN sections, each chain ending in a part (recipe zc.buildout:debug), so every section
# is evaluated. Then prints, for each size:
#   - rbuildout: `rbuildout -U -c buildout.cfg annotate --json` (release build), best of RUNS
#     wall time, and the CPU time of that run (less sensitive to a busy machine);
#   - zc.buildout 6.0.1 resolving the same files with tests/oracle/zc_resolve.py (builds the
#     Buildout and initialises every part, as `buildout install` does before installing),
#     best of 3, stopped after 60 s ("did not finish in 60 s");
#   - the ratio zc.buildout / rbuildout.
# Both are whole process runs (interpreter or binary start included), user defaults off.
# Chains stay short because zc.buildout substitutes recursively (Python's recursion limit).
#
# Usage: scripts/bench-config.sh [RUNS] [SIZES...]   (default: 5; 1000 10000 100000)
#        env: ZC_PYTHON=python with zc.buildout 6.0.1 (default: the venv target/zc-buildout,
#             created when missing), CHAIN=sections per chain (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${1:-5}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
chain=${CHAIN:-50}

cargo build --release -p rbuildout --quiet
rb=${CARGO_TARGET_DIR:-$root/target}/release/rbuildout

zpy=${ZC_PYTHON:-}
if [ -z "$zpy" ]; then
    . scripts/lib.sh
    zc_venv "$root/target/zc-buildout"
    zpy=$root/target/zc-buildout/bin/python
fi
oracle=$root/tests/oracle/zc_resolve.py

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# gen DIR N: the five files of an N-section config.
gen() {
    python3 - "$1" "$2" "$chain" <<'PY'
import os, sys
d, n, chain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d, exist_ok=True)
files = 4
per = (n + files - 1) // files
ends = [i for i in range(n) if i % chain == chain - 1 or i == n - 1]
for f in range(files):
    out = []
    for i in range(f * per, min(n, (f + 1) * per)):
        out.append(f"[s{i}]")
        if i in ends:
            out.append("recipe = zc.buildout:debug")
        out.append(f"name = s{i}")
        out.append(f"path = ${{buildout:directory}}/parts/${{:name}}")
        if i % chain == 0:
            out.append(f"v = {i}")
        else:
            out.append(f"v = ${{s{i - 1}:v}} {i}")
        out.append(f"flags = a b c")
        out.append("")
    with open(os.path.join(d, f"base{f}.cfg"), "w") as fh:
        fh.write("\n".join(out))
top = ["[buildout]",
       "extends = " + " ".join(f"base{f}.cfg" for f in range(files)),
       "parts =", *(f"    s{i}" for i in ends), ""]
for i in range(0, n, 10):
    top += [f"[s{i}]", "flags += d", "flags -= b", ""]
with open(os.path.join(d, "buildout.cfg"), "w") as fh:
    fh.write("\n".join(top))
PY
}

# best RUNS TIMEOUT DIR CMD...: "WALL CPU" of the fastest run in seconds (CPU = user +
# system time of the process), or "timeout" / "error".
cat >"$work/best.py" <<'PY'
import resource, subprocess, sys, time
runs, limit, cwd, *cmd = sys.argv[1:]
best = None
for _ in range(int(runs)):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=float(limit))
    except subprocess.TimeoutExpired:
        print("timeout")
        sys.exit()
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0 or b'"error"' in p.stdout[:200]:
        print("error")
        sys.exit()
    if best is None or dt < best[0]:
        best = (dt, cpu)
print(f"{best[0]:.6f} {best[1]:.6f}")
PY
best() { python3 "$work/best.py" "$@"; }

printf '\nconfig resolution, .cfg, chains of %s (best of %s; zc.buildout best of 3)\n' "$chain" "$runs"
printf '%-10s %-16s %-16s %-26s %s\n' sections rbuildout "rbuildout CPU" "zc.buildout 6.0.1" "zc/rbuildout"
for n in "${sizes[@]}"; do
    dir=$work/n$n
    gen "$dir" "$n"
    rb_t=$(best "$runs" 600 "$dir" "$rb" -U -c buildout.cfg annotate --json)
    zc_t=$(best 3 60 "$dir" "$zpy" "$oracle" -U -c buildout.cfg)
    python3 - "$n" "$rb_t" "$zc_t" <<'PY'
import sys
n, rb, zc = sys.argv[1:]
def show(t):
    if t == "timeout":
        return "did not finish in 60 s", None
    if t == "error":
        return "error", None
    wall, cpu = map(float, t.split())
    return f"{wall * 1000:.1f} ms", (wall, cpu)
rb_s, rb_v = show(rb)
zc_s, zc_v = show(zc)
ratio = "-"
if rb_v and zc_v:
    ratio = f"{zc_v[0] / rb_v[0]:.0f}x"
elif rb_v and zc == "timeout":
    ratio = f">{60 / rb_v[0]:.0f}x"
cpu = f"{rb_v[1] * 1000:.0f} ms" if rb_v else "-"
print(f"{int(n):<10,} {rb_s:<16} {cpu:<16} {zc_s:<26} {ratio}")
PY
done
