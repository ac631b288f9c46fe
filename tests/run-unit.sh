#!/usr/bin/env bash
# Runs every unit-test executable in DIR (cmocka), each in its own process
# with a time limit, and prints one closing line: "N passed, N failed".
set -u
dir=${1:?usage: run-unit.sh DIR}
pass=0 fail=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if timeout 300 "$t" > "$dir/$name.log" 2>&1; then
        pass=$((pass + 1)); echo "unit: $name ok"
        # A suite that skipped part of itself says so on a line of its own.
        grep -h '^SKIPPED' "$dir/$name.log" | sed "s/^/unit: $name /"
    else
        fail=$((fail + 1)); echo "unit: $name FAILED"; tail -40 "$dir/$name.log"
    fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
