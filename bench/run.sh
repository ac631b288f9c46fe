#!/usr/bin/env bash
# Runs every benchmark under bench/ (each prints its own ratios against the
# competitor it measures in the same run): each folder's run.sh, and
# metadata/rss.sh (wisp-metadata's memory against nginx's).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/*/run.sh "$here"/metadata/rss.sh; do
    echo "== ${b#"$here"/}"
    "$b"
done
