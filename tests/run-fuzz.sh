#!/usr/bin/env bash
# Replays each fuzz target's corpus (tests/fuzz/corpus/NAME/) and then fuzzes
# it for a short, fixed number of runs with a fixed seed, so the test command
# is repeatable. New crashes fail the run; found inputs are not kept.
set -u
dir=${1:?usage: run-fuzz.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
runs=${WISP_FUZZ_RUNS:-20000}
pass=0 fail=0
for f in "$dir"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f"); name=${name#fuzz_}
    corpus="$here/fuzz/corpus/$name"
    dict=()
    [ -f "$here/fuzz/$name.dict" ] && dict=(-dict="$here/fuzz/$name.dict")
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    if "$f" -seed=1 -runs="$runs" -max_len=4096 -artifact_prefix="$work/" "${dict[@]}" \
        "$work" > "$work.log" 2>&1; then
        pass=$((pass + 1)); echo "fuzz: $name ok ($(grep -c . "$work.log") log lines)"
    else
        fail=$((fail + 1)); echo "fuzz: $name FAILED"; tail -30 "$work.log"
    fi
    rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
