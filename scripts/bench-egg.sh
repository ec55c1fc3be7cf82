#!/usr/bin/env bash
# Benchmark of the egg fetcher: not a test, run on purpose (it uses the internet once).
#
# What: installing `django flask sphinx` with all their dependencies (about 30 wheels) from a
# package index on 127.0.0.1, by
#   - rbuildout (release build): an instance whose buildout.toml has one `egg` part, as it is
#     (compiling .pyc) and with `compile-bytecode = false`,
#   - uv (`uv pip install --target`), with and without `--compile-bytecode`,
#   - pip (`pip install --target`),
#   - zc.buildout 6.0.1 with zc.recipe.egg (`index =` the local index),
# each
#   - cold: empty caches (download cache, eggs folder, uv/pip cache) and a fresh target,
#   - warm: caches full from the previous run, fresh target (for rbuildout and zc.buildout the
#     shared eggs-directory and download-cache are the caches, the instance is new),
#   - no-op: the same command again on the installed target.
# Printed: the median (and min) of RUNS runs, and each peer's time divided by rbuildout's
# (compiling .pyc), then the two fair pairs as ratios: rbuildout against `uv
# --compile-bytecode` (both write .pyc) and rbuildout `compile-bytecode = false` against plain
# uv (neither does). pip compiles .pyc; zc.buildout leaves that to the `pip install` it runs
# per egg.
#
# Setup, done once and kept under target/bench-egg/: the wheels are fetched from the real
# index into wheels/ with `pip download` (run `rm -rf target/bench-egg/wheels` to refresh);
# venv/ holds uv and a current pip; zcb/ holds zc.buildout. The local index
# (scripts/bench-egg/serve_index.py) is PEP 503 HTML with sha256 fragments, PEP 658 metadata,
# HTTP/1.1 keep-alive and PyPI's Cache-Control. The timed runs never leave 127.0.0.1.
# If rbuildout cannot be built or its run fails, its row says FAILED (the output of the failing
# run is kept in target/bench-egg/logs/) and no ratio is printed.
#
# pip has no no-op with --target: a re-run installs everything into a temporary folder again
# and then skips the folders that exist, so its no-op column is that re-run.
# The work folder comes from mktemp: TMPDIR=/dev/shm times on a tmpfs, where file creation
# costs less than on the VM's ext4 (docs: /work/shared/research/perf.md).
#
# Usage: scripts/bench-egg.sh [RUNS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
. scripts/lib.sh
bench_setup bench-egg
eggs=(django flask sphinx)

# --- setup ---------------------------------------------------------------------------------
if [ ! -f "$bench/wheels/.complete" ]; then
    echo "fetching ${eggs[*]} and their dependencies from the index (once)" >&2
    rm -rf "$bench/wheels"
    "$py" -m pip download -q --only-binary=:all: -d "$bench/wheels" "${eggs[@]}"
    touch "$bench/wheels/.complete"
fi
if [ ! -f "$bench/venv/.complete" ]; then
    "$py" -m venv "$bench/venv"
    "$bench/venv/bin/pip" install -q --upgrade pip uv
    touch "$bench/venv/.complete"
fi
PYTHON=$py zc_venv "$bench/zcb" zc.recipe.egg
uv=$bench/venv/bin/uv
pip_py=$bench/venv/bin/python
zcb=$bench/zcb/bin/buildout

rb_ok=1
target=${CARGO_TARGET_DIR:-$root/target}/release
if ! cargo build --release -p rbuildout -p rbuildout-recipe-egg --quiet 2>"$bench/logs/build.log"; then
    echo "rbuildout does not build (see $bench/logs/build.log)" >&2
    rb_ok=0
fi
rb=$target/rbuildout

serve_wheels "$py" "$bench/wheels"

# --- the tools -----------------------------------------------------------------------------
# Each tool has a base folder D=$work/<tool> (the timing harness's working directory), and
# for each of cold/warm a prepare command run there untimed.

# rbuildout: instance D/inst, caches D/eggs and D/cache shared by the instances.
d=$work/rb
mkdir -p "$d"
cat >"$d/buildout.toml" <<EOF
[buildout]
parts = ["app"]
eggs-directory = "$d/eggs"
download-cache = "$d/cache"
python = "$py"

[app]
recipe = "egg"
eggs = ["django", "flask", "sphinx"]
index = "$index"
EOF
rb_cmd=(env -u RBUILDOUT_PLUGIN_PATH RBUILDOUT_HOME="$d/home" "$rb" -U -q -c inst/buildout.toml)
rb_fresh='rm -rf inst && mkdir inst && cp buildout.toml inst/'
rb_cold="rm -rf eggs cache home && $rb_fresh"

# rbuildout with `compile-bytecode = false`: the same, in its own folder.
dn=$work/rbn
mkdir -p "$dn"
sed -e "s|$d/|$dn/|g" -e 's|^recipe = "egg"$|recipe = "egg"\ncompile-bytecode = false|' \
    "$d/buildout.toml" >"$dn/buildout.toml"
rbn_cmd=(env -u RBUILDOUT_PLUGIN_PATH RBUILDOUT_HOME="$dn/home" "$rb" -U -q -c inst/buildout.toml)

# zc.buildout: the same layout, buildout.cfg.
z=$work/zc
mkdir -p "$z"
cat >"$z/buildout.cfg" <<EOF
[buildout]
parts = app
index = $index
eggs-directory = $z/eggs
download-cache = $z/cache

[app]
recipe = zc.recipe.egg
# One requirement per line, as zc.recipe.egg wants.
eggs =
    django
    flask
    sphinx
EOF
zc_cmd=("$zcb" -U -q -c inst/buildout.cfg)
zc_fresh='rm -rf inst && mkdir inst && cp buildout.cfg inst/'
zc_cold="rm -rf eggs cache && $zc_fresh"

# uv and pip: target D/t, cache D/cache.
u=$work/uv
mkdir -p "$u"
uv_cmd=("$uv" pip install -q --python "$py" --index-url "$index" --cache-dir "$u/cache" --target "$u/t" "${eggs[@]}")
uvc=$work/uvc
mkdir -p "$uvc"
uvc_cmd=("$uv" pip install -q --compile-bytecode --python "$py" --index-url "$index" --cache-dir "$uvc/cache" --target "$uvc/t" "${eggs[@]}")
p=$work/pip
mkdir -p "$p"
pip_cmd=("$pip_py" -m pip install -q --index-url "$index" --cache-dir "$p/cache" --target "$p/t" "${eggs[@]}")
tgt_fresh='rm -rf t'
tgt_cold='rm -rf t cache'

declare -A result
record() { result[$1]="$cold|$warm|$noop"; }

if [ "$rb_ok" = 1 ]; then
    measure rbuildout "$d" "$rb_cold" "$rb_fresh" "${rb_cmd[@]}"
else
    cold=FAILED warm=FAILED noop=FAILED
fi
record rbuildout
if [ "$rb_ok" = 1 ]; then
    measure rbuildout-nopyc "$dn" "$rb_cold" "$rb_fresh" "${rbn_cmd[@]}"
else
    cold=FAILED warm=FAILED noop=FAILED
fi
record rbuildout-nopyc
measure uv "$u" "$tgt_cold" "$tgt_fresh" "${uv_cmd[@]}"
record uv
measure uv-compile "$uvc" "$tgt_cold" "$tgt_fresh" "${uvc_cmd[@]}"
record uv-compile
measure pip "$p" "$tgt_cold" "$tgt_fresh" "${pip_cmd[@]}"
record pip
measure zc.buildout "$z" "$zc_cold" "$zc_fresh" "${zc_cmd[@]}"
record zc.buildout

# --- the table -----------------------------------------------------------------------------
versions="$("$py" --version), $("$uv" --version), pip $("$pip_py" -m pip --version | cut -d' ' -f2), zc.buildout $("$bench/zcb/bin/python" -c 'from importlib.metadata import version; print(version("zc.buildout"))'), $(ls "$bench/wheels" | grep -c '\.whl$') wheels, work folder on $(df --output=fstype "$work" | tail -1)"
"$py" - "$runs" "$versions" \
    "rbuildout=${result[rbuildout]}" \
    "rbuildout compile-bytecode=false=${result[rbuildout-nopyc]}" \
    "uv pip install --target=${result[uv]}" \
    "uv ... --compile-bytecode=${result[uv-compile]}" \
    "pip install --target=${result[pip]}" \
    "zc.buildout + zc.recipe.egg=${result[zc.buildout]}" <<'PY'
import sys

sys.path.insert(0, "scripts/bench-egg")
from cells import cell, ratio

runs, versions = sys.argv[1:3]
rows = []
for arg in sys.argv[3:]:
    name, _, cells = arg.rpartition("=")
    rows.append((name, cells.split("|")))


base = rows[0][1]
print(f"\negg fetcher: django flask sphinx from a local index (median of {runs} runs, min in brackets;")
print("ratio = the tool's median / rbuildout's, so 3.0x means rbuildout is 3 times faster)")
print(f"{versions}\n")
head = ("tool", "cold", "warm", "no-op", "cold ratio", "warm ratio", "no-op ratio")
print(f"{head[0]:<30} {head[1]:>20} {head[2]:>20} {head[3]:>20} {head[4]:>11} {head[5]:>11} {head[6]:>11}")
for name, cells in rows:
    ratios = ["" for _ in cells] if name == "rbuildout" else [ratio(c, b) for c, b in zip(cells, base)]
    print(f"{name:<30} " + " ".join(f"{cell(c):>20}" for c in cells) + " " + " ".join(f"{r:>11}" for r in ratios))
print("\npip's no-op is a re-run: with --target it installs everything again and skips what exists.")

# The fair pairs: each rbuildout row against the uv run that writes the same (.pyc or not).
by_name = dict(rows)
pairs = [
    ("rbuildout", "uv ... --compile-bytecode", "with .pyc"),
    ("rbuildout compile-bytecode=false", "uv pip install --target", "without .pyc"),
]
print("\nfair pairs (uv's median / rbuildout's):")
for rb, peer, what in pairs:
    mine, theirs = by_name[rb], by_name[peer]
    r = [ratio(t, m, 2) for t, m in zip(theirs, mine)]
    print(f"  {what:<13} {rb:<33} vs {peer:<27} cold {r[0]:>6}  warm {r[1]:>6}  no-op {r[2]:>6}")
PY
