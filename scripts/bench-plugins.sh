#!/usr/bin/env bash
# Benchmark of plugin loading (issue 3): not a test, run on purpose.
#
# `rbuildout plugins` opens every library in the search path (dlopen with RTLD_NOW, checks of
# the descriptor, the plugin's init). Timing it over a folder of N distinct copies of the
# testkit plugin, against the same command over an empty folder, gives the cost of loading
# one plugin; each copy is its own file, so each is really opened. Loading does not hash the
# library: its sha256 is computed only when a part's identity is needed (and the runner reuses
# a recorded one while the file is unchanged).
#
# Usage: scripts/bench-plugins.sh [RUNS] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
n=${2:-50}

. scripts/lib.sh
release_build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/empty" "$work/many" "$work/cwd"
for i in $(seq 1 "$n"); do
    cp "$test_plugins/librbuildout_recipe_testkit.so" "$work/many/librbuildout_recipe_tk$i.so"
done

# median_ms DIR: the median wall time of `rbuildout plugins` with DIR first in the path.
median_ms() {
    local dir=$1 times=()
    for _ in $(seq 1 "$runs"); do
        local start end
        start=$(date +%s%N)
        (cd "$work/cwd" && RBUILDOUT_PLUGIN_PATH=$dir "$rb" -U plugins --json >/dev/null)
        end=$(date +%s%N)
        times+=($(( (end - start) / 1000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1000}'
}

# The libraries stay in the page cache after the first run; warm up once.
median_ms "$work/many" >/dev/null
base=$(median_ms "$work/empty")
many=$(median_ms "$work/many")
size=$(stat -c %s "$test_plugins/librbuildout_recipe_testkit.so")
echo "rbuildout plugins, empty folder:        ${base} ms (median of $runs)"
echo "rbuildout plugins, $n testkit copies:   ${many} ms"
awk -v a="$base" -v b="$many" -v n="$n" -v s="$size" \
    'BEGIN {printf "load one plugin (%.1f MB library):   %.3f ms\n", s/1e6, (b-a)/n}'
