#!/usr/bin/env bash
# Runs every integration test (tests/integration/t_*.sh) against the binaries
# in BINDIR. Each test starts its own wisp in a private state directory and
# cleans up after itself. Prints "integration: N passed, N failed".
set -u
bindir=$(cd "${1:?usage: run-integration.sh BINDIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
export WISP_BIN=$bindir
pass=0 fail=0 skip=0
for t in "$here"/integration/t_*.sh; do
    name=$(basename "$t" .sh)
    log=$(mktemp)
    bash "$t" > "$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "integration: $name ok ($(grep -c '^ok ' "$log") checks)"
    elif [ $rc -eq 77 ]; then
        skip=$((skip + 1)); echo "integration: $name SKIPPED: $(tail -1 "$log")"
    else
        fail=$((fail + 1)); echo "integration: $name FAILED"; tail -60 "$log"
    fi
    rm -f "$log"
done
echo "integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
