#!/usr/bin/env bash
# Runs every benchmark under bench/ (each prints its own ratios against the
# competitor it measures in the same run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/*/run.sh; do
    echo "== $(basename "$(dirname "$b")")"
    "$b"
done
