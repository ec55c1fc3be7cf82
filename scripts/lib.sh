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
