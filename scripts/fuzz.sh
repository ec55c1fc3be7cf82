#!/usr/bin/env bash
# Coverage-guided fuzzing of the config loaders with libFuzzer (libfuzzer-sys), on stable Rust.
#
# Targets (fuzz/fuzz_targets/): cfg_parse (the .cfg parser), toml_parse (the TOML loader),
# resolve (one in-memory file loaded as .cfg and as TOML, then parts, every section
# substituted, histories and references). Each runs for SECONDS over fuzz/corpus/<target>/,
# which is seeded from tests/cases/config/**/*.cfg and *.toml when missing, and minimised
# afterwards: -set_cover_merge=1 (libFuzzer's -merge=1 with a greedy set cover) with
# -use_counters=0, into a fresh folder, so only inputs that add an edge stay (hit counts
# are rediscovered within seconds of the next run; the kept corpus stays around 100 KB).
# A crash leaves its input in fuzz/artifacts/<target>/ and exits non-zero.
#
# The instrumentation is what cargo-fuzz passes (sanitizer coverage: 8-bit counters, PC table,
# compare tracing), without a sanitizer, so no nightly is needed; debug assertions and
# overflow checks are on.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default: 60 s each, every target)
#        env: FUZZ_TARGET_DIR (default fuzz/target)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cfg_parse toml_parse resolve)

triple=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$root/fuzz/target}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps RUSTFLAGS off build scripts and proc-macros.
cargo build --manifest-path fuzz/Cargo.toml --release --target "$triple" --bins
bin=$CARGO_TARGET_DIR/$triple/release

seed() {
    local dir=$1
    mkdir -p "$dir"
    find tests/cases/config -type f \( -name '*.cfg' -o -name '*.toml' \) -print0 |
        while IFS= read -r -d '' f; do
            cp "$f" "$dir/$(sha1sum "$f" | cut -c1-40)"
        done
}

status=0
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    mkdir -p "$artifacts"
    if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
        seed "$corpus"
    fi
    work=$(mktemp -d)
    mkdir "$work/new" "$work/merged"
    echo "== $t: ${seconds} s over $corpus"
    # New inputs go to a scratch folder; the kept corpus only changes through the merge below.
    if ! "$bin/$t" "$work/new" "$corpus" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 2>"$work/log"; then
        status=1
        tail -n 40 "$work/log"
        echo "!! $t: crash, input in $artifacts/"
    else
        grep -E '^(stat::|Done|#[0-9]+.*DONE)' "$work/log" || tail -n 5 "$work/log"
    fi
    if "$bin/$t" -set_cover_merge=1 -use_counters=0 "$work/merged" "$corpus" "$work/new" 2>"$work/merge.log"; then
        rm -rf "$corpus" && mv "$work/merged" "$corpus"
    else
        tail -n 20 "$work/merge.log"
        status=1
    fi
    echo "   corpus: $(ls "$corpus" | wc -l) inputs, $(($(cat "$corpus"/* | wc -c) / 1024)) KB"
    rm -rf "$work"
done
exit $status
