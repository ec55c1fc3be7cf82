# Shell functions shared by .ci/run and the bench scripts. Source it from the repository
# root (`. scripts/lib.sh`); it defines functions only and runs nothing.

# The zc.buildout every comparison runs against.
ZC_BUILDOUT_VERSION=6.0.1

# zc_venv DIR [REQUIREMENT...]: makes DIR a venv holding zc.buildout $ZC_BUILDOUT_VERSION and
# the REQUIREMENTs (pinned by the caller), unless it holds them already: DIR/.rbuildout-wants
# records what was installed, so a later call with the same list costs nothing and asks no
# index. The venv is made with $PYTHON (default python3); pip runs as `python -m pip`, as a
# copied venv's `pip` script may point at another python.
zc_venv() {
    local dir=$1
    shift
    local wants="zc.buildout==$ZC_BUILDOUT_VERSION $*"
    if [ ! -x "$dir/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$dir"
    fi
    if [ ! -x "$dir/bin/buildout" ] || [ "$(cat "$dir/.rbuildout-wants" 2>/dev/null)" != "$wants" ]; then
        "$dir/bin/python" -m pip install --quiet "zc.buildout==$ZC_BUILDOUT_VERSION" "$@"
        echo "$wants" >"$dir/.rbuildout-wants"
    fi
}

# test_plugins_release: builds the test plugins (testkit, raw: tests/plugins/Cargo.toml, a
# workspace of their own, never built beside the binary) in release mode into
# target/test-plugins/ and prints the folder that holds them.
test_plugins_release() {
    local target=${CARGO_TARGET_DIR:-$PWD/target}/test-plugins
    cargo build --release --quiet --manifest-path tests/plugins/Cargo.toml --target-dir "$target"
    echo "$target/release"
}

# release_build: builds the workspace and the test plugins in release mode and sets `target`
# (the release folder), `test_plugins` (their folder) and `rb` (the binary).
release_build() {
    cargo build --release --workspace --quiet
    target=${CARGO_TARGET_DIR:-$PWD/target}/release
    test_plugins=$(test_plugins_release)
    rb=$target/rbuildout
}

# serve_wheels PYTHON WHEELS: makes the work folder `work` (from mktemp, removed at exit with
# the server) and serves the folder of wheels WHEELS on 127.0.0.1 through
# scripts/bench-egg/serve_index.py; sets `index` to its simple URL.
serve_wheels() {
    local py=$1 wheels=$2
    work=$(mktemp -d)
    server=
    trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
    "$py" scripts/bench-egg/serve_index.py "$wheels" "$work/site" "$work/port" &
    server=$!
    for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
    [ -s "$work/port" ] || { echo "the local index did not start" >&2; exit 1; }
    index=http://127.0.0.1:$(cat "$work/port")/simple/
    echo "local index: $index ($(ls "$wheels" | grep -c '\.whl$') wheels)" >&2
}

# bench_setup NAME: the common start of the install benchmarks (run from the repository
# root): `root`, `bench` (target/NAME, with logs/), `helpers` (scripts/bench-egg), `py` (the
# real interpreter, not a pyenv shim, which costs ~100 ms per start) and an environment in
# which neither pip nor uv reads a user's configuration or index.
bench_setup() {
    root=$PWD
    bench=$root/target/$1
    helpers=$root/scripts/bench-egg
    mkdir -p "$bench" "$bench/logs"
    py=$(python3 -c 'import sys; print(sys.executable)')
    export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    export UV_NO_CONFIG=1 NO_COLOR=1
    unset PIP_INDEX_URL PIP_FIND_LINKS UV_INDEX_URL UV_EXTRA_INDEX_URL PYTHONDONTWRITEBYTECODE
}

# measure NAME DIR COLD_PREPARE WARM_PREPARE CMD... : times CMD in DIR with
# scripts/bench-egg/timeit.py, $runs runs each cold, warm and no-op (each prepared by its
# shell command, untimed; logs in $bench/logs/NAME-*.log), and sets the globals cold, warm
# and noop to "median min" or FAILED. A failed cold run makes the later ones FAILED too.
measure() {
    local name=$1 dir=$2 prep_cold=$3 prep_warm=$4
    shift 4
    local log=$bench/logs/$name
    cold=FAILED warm=FAILED noop=FAILED
    echo "timing $name" >&2
    cold=$("$py" "$helpers/timeit.py" "$runs" "$dir" "$prep_cold" "$log-cold.log" "$@") || { cold=FAILED; return; }
    warm=$("$py" "$helpers/timeit.py" "$runs" "$dir" "$prep_warm" "$log-warm.log" "$@") || { warm=FAILED; return; }
    noop=$("$py" "$helpers/timeit.py" "$runs" "$dir" "" "$log-noop.log" "$@") || noop=FAILED
}
