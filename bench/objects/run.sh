#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/objects: issue 3's point "object list with a prefix that matches 10
# objects, in a bucket of 1,000 and of 100,000 objects: the larger bucket
# costs at most 2x the smaller". Two buckets are filled straight through the
# store of a real state directory (objects d0..d9/obj/NNNNNNN), then:
#  - in process: wispd's listing code (src/wispd/api/storage_list.c) over
#    the store, per call a read transaction + the walk + parsing each item;
#  - over HTTPS (HTTP=1, needs gcloud for the token): GET …/b/B/o?prefix=…
#    against the running wispd, libcurl keep-alive.
# A second query lists the top level with delimiter "/": 10 common prefixes
# standing for N/10 objects each, which the walk skips without reading.
# Prints µs per call for both sizes and the ratio large/small.
# Knobs: N_SMALL (1000), N_LARGE (100000), ROUNDS (5, median taken),
# ITER (2000 calls per round in process), HTTP (1), HTTP_ITER (500).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
N_SMALL=${N_SMALL:-1000}
N_LARGE=${N_LARGE:-100000}
ROUNDS=${ROUNDS:-5}
ITER=${ITER:-2000}
HTTP=${HTTP:-1}
HTTP_ITER=${HTTP_ITER:-500}
P=bench-objects

for tool in cc pkg-config python3; do
    command -v "$tool" >/dev/null || { echo "bench/objects: missing $tool" >&2; exit 111; }
done

tmp=$(mktemp -d /tmp/wisp-bench-objects.XXXXXX)
state=$tmp/state
cleanup() {
    "$root/bin/wisp" down --state "$state" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build: release libwisp and binaries, then the bench with wispd's
# listing code linked in.
make -s -C "$root" all >/dev/null
PKGS="libh2o-evloop openssl jansson cjose sqlite3 libcurl"
# shellcheck disable=SC2046
cc -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-missing-field-initializers \
    -I"$root/include" -I"$root/lib" $(pkg-config --cflags $PKGS) \
    -o "$tmp/bench" "$here/bench.c" "$root/src/wispd/api/storage_list.c" \
    "$root/build/release/libwisp.a" $(pkg-config --libs $PKGS) -lwslay -lz -lpthread

# ---- a state directory with two buckets --------------------------------------
"$root/bin/wisp" up --state "$state" --project "$P" >/dev/null
"$root/bin/wisp" down --state "$state" >/dev/null
t0=$(date +%s)
"$tmp/bench" populate "$state/wisp.db" "$P" bench-small "$N_SMALL"
"$tmp/bench" populate "$state/wisp.db" "$P" bench-large "$N_LARGE"
echo "populated $N_SMALL + $N_LARGE objects in $(( $(date +%s) - t0 )) s"

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) / float(sys.argv[1])))" "$1" "$2"; }

# ---- in process ----------------------------------------------------------------
"$tmp/bench" list "$state/wisp.db" "$ROUNDS" "$ITER" bench-small bench-large > "$tmp/inproc"
for q in "prefix matching 10 objects" "delimiter / at the top (10 prefixes)"; do
    s=$(awk -F'\t' -v q="$q" '$2=="bench-small" && $3==q {print $5}' "$tmp/inproc")
    l=$(awk -F'\t' -v q="$q" '$2=="bench-large" && $3==q {print $5}' "$tmp/inproc")
    ns=$(awk -F'\t' -v q="$q" '$2=="bench-small" && $3==q {print $4}' "$tmp/inproc")
    nl=$(awk -F'\t' -v q="$q" '$2=="bench-large" && $3==q {print $4}' "$tmp/inproc")
    printf 'in process, %s: %s objects %s µs/call (%s entries), %s objects %s µs/call (%s entries), ratio %s\n' \
        "$q" "$N_SMALL" "$s" "$ns" "$N_LARGE" "$l" "$nl" "$(ratio "$s" "$l")"
done

# ---- over HTTPS -------------------------------------------------------------------
if [ "$HTTP" = 1 ]; then
    command -v gcloud >/dev/null || { echo "bench/objects: HTTP=1 needs gcloud" >&2; exit 111; }
    "$root/bin/wisp" up --state "$state" >/dev/null
    # gcloud only with the environment wisp env prints.
    token=$(eval "$("$root/bin/wisp" env --state "$state")" && gcloud auth print-access-token)
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
        "$state/run/wispd.json")
    base="https://127.0.0.1:$port/storage/v1/b"
    q='o?prefix=d0%2Fobj%2F000001'
    "$tmp/bench" http "$state/ca.pem" "$token" "$ROUNDS" "$HTTP_ITER" \
        "$base/bench-small/$q" "$base/bench-large/$q" > "$tmp/http"
    s=$(awk -F'\t' 'NR==1 {print $3}' "$tmp/http")
    l=$(awk -F'\t' 'NR==2 {print $3}' "$tmp/http")
    printf 'over HTTPS (keep-alive), prefix matching 10 objects: %s objects %s µs/call, %s objects %s µs/call, ratio %s\n' \
        "$N_SMALL" "$s" "$N_LARGE" "$l" "$(ratio "$s" "$l")"
fi
