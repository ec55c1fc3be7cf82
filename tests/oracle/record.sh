#!/usr/bin/env bash
# (Re)record tests/cases/config/*/expected.json by running zc.buildout itself on each case.
#
#   tests/oracle/record.sh [CASE-NAME...]
#
# The python comes from $RBUILDOUT_ZC_BUILDOUT (a venv python with zc.buildout==6.0.1), else
# /tmp/zcb/bin/python. Each case runs in a scratch copy of its folder (buildout creates
# directories as it initialises), with HOME set to the case's home/ (or an empty folder), the
# variables of its `env` file (`${CASE}` = the copy), and the lines of its `args` file as
# command-line arguments. The harness in tests/it/config_cases.rs runs the oracle the same way.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cases="$here/../cases/config"
python="${RBUILDOUT_ZC_BUILDOUT:-/tmp/zcb/bin/python}"

if [ $# -gt 0 ]; then names=("$@"); else names=($(ls "$cases")); fi

for name in "${names[@]}"; do
    src="$cases/$name"
    [ -f "$src/buildout.cfg" ] || [ -f "$src/args" ] || { echo "skip $name: no buildout.cfg" >&2; continue; }
    scratch="$(mktemp -d)"
    cp -R "$src/." "$scratch/case"
    work="$(cd "$scratch/case" && pwd -P)"
    home="$work/home"
    [ -d "$home" ] || { home="$scratch/home"; mkdir "$home"; }
    args=()
    [ -f "$src/args" ] && mapfile -t args < <(grep -v '^$' "$src/args")
    envs=()
    if [ -f "$src/env" ]; then
        while IFS= read -r line; do
            [ -n "$line" ] && envs+=("${line//\$\{CASE\}/$work}")
        done < "$src/env"
    fi
    (cd "$work" && env -u BUILDOUT_HOME -u RBUILDOUT_HOME HOME="$home" "${envs[@]}" \
        "$python" "$here/zc_resolve.py" "${args[@]}") > "$src/expected.json"
    rm -rf "$scratch"
    echo "recorded $name" >&2
done
