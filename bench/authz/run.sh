#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/authz: wisp_authorize() against Cedar (npm @cedar-policy/cedar-wasm,
# the version package.json pins) on the same policy sets, in the same run.
# bench.c builds sets of SIZES (role, member) pairs spread over one
# organization, one project and many bucket policies, writes them as JSON and
# times wisp's indexed decision (and, for scale, the linear walk); cedar.js
# expresses each set as one permit per pair and times cedar-wasm on the same
# two requests, once with the whole set ("all") and once with only the
# target bucket's chain ("chain"). Prints a table and the ratios.
# (bench/authz/wispd.sh measures the decision inside a running wispd, with
# its cache of compiled policies off and on.)
# Knobs (environment): SIZES ("10 1000 10000 100000"), ROUNDS (7, wisp's
# interleaved rounds; the median is reported), CEDAR_BUDGET_MS (2000 per
# Cedar measurement), CEDAR_SCOPES ("all chain").
# Needs: make's release build of libwisp, cc, pkg-config, node, and
# `npm install` run once in bench/authz (node_modules is not committed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SIZES=${SIZES:-10 1000 10000 100000}
CEDAR_SCOPES=${CEDAR_SCOPES:-all chain}
export ROUNDS=${ROUNDS:-7} CEDAR_BUDGET_MS=${CEDAR_BUDGET_MS:-2000}

for tool in cc pkg-config node make; do
    command -v "$tool" >/dev/null || { echo "bench/authz: missing $tool" >&2; exit 111; }
done
cedar_pkg=$here/node_modules/@cedar-policy/cedar-wasm/package.json
if [ ! -f "$cedar_pkg" ]; then
    echo "bench/authz: @cedar-policy/cedar-wasm is not installed." >&2
    echo "Run: (cd $here && npm install)   # package.json pins the version" >&2
    exit 111
fi

tmp=$(mktemp -d /tmp/wisp-bench-authz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# ---- build: the release libwisp, and the bench program against it ---------
make -C "$root" --no-print-directory build/release/libwisp.a >/dev/null
# shellcheck disable=SC2046
cc -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I"$root/include" \
    -o "$tmp/bench" "$here/bench.c" "$root/build/release/libwisp.a" \
    $(pkg-config --libs jansson openssl cjose sqlite3 libcurl) -lz -lpthread

cedar_version=$(node -p "require('$cedar_pkg').version")
echo "bench/authz: wisp $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), cedar-wasm $cedar_version, node $(node --version), sizes: $SIZES"

# ---- run ---------------------------------------------------------------------
# shellcheck disable=SC2086
"$tmp/bench" "$tmp" $SIZES >"$tmp/wisp.tsv"
: >"$tmp/cedar.tsv"
for n in $SIZES; do
    for scope in $CEDAR_SCOPES; do
        node "$here/cedar.js" "$tmp/set-$n.json" "$scope" >>"$tmp/cedar.tsv"
    done
done

# ---- report ------------------------------------------------------------------
cat "$tmp/wisp.tsv" "$tmp/cedar.tsv" | awk -F'\t' -v sizes="$SIZES" '
function rate(ns) { return ns > 0 ? sprintf("%.0f", 1e9 / ns) : "-" }
function us(ns) { return ns == "" ? "-" : sprintf("%.2f", ns / 1000) }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.1f", a / b) }
$1 == "build" { build_ms[$2] = $3; build_bytes[$2] = $4; chain_pairs[$2] = $5; buckets[$2] = $6 }
$1 == "wisp" { wisp[$2, $3] = $4; wisp_min[$2, $3] = $5; wisp_max[$2, $3] = $6 }
$1 == "linear" { linear[$2, $3] = $4 }
$1 == "cedar-parse" { parse_ms[$2, $3] = $5; cedar_n[$2, $3] = $4 }
$1 == "cedar" { cedar[$2, $3, $4] = $5; cedar_iters[$2, $3, $4] = $6 }
END {
    n = split(sizes, sz, " ")
    print ""
    print "Policy sets: (role, member) pairs = Cedar permits; wisp decides over the target bucket\x27s chain"
    printf "%-8s %8s %14s %14s %12s %16s %16s\n", "pairs", "buckets", "chain pairs", "index build", "index KiB", "cedar parse all", "cedar parse chain"
    for (i = 1; i <= n; i++) {
        s = sz[i]
        printf "%-8s %8s %14s %12s ms %10.0f KiB %11s ms %14s ms\n", s, buckets[s], chain_pairs[s], build_ms[s], build_bytes[s] / 1024, (parse_ms[s, "all"] == "" ? "-" : parse_ms[s, "all"]), (parse_ms[s, "chain"] == "" ? "-" : parse_ms[s, "chain"])
    }
    print ""
    print "Time per decision in µs (wisp: median of interleaved rounds [min-max]; linear = the pre-index walk)"
    printf "%-8s %-8s %24s %12s %12s %14s %14s %16s %21s\n", "pairs", "request", "wisp µs [min-max]", "wisp dec/s", "linear µs", "cedar all µs", "cedar chain µs", "cedar all dec/s", "cedar/wisp all/chain"
    for (i = 1; i <= n; i++) {
        s = sz[i]
        split("allowed denied", rq, " ")
        for (j = 1; j <= 2; j++) {
            r = rq[j]
            w = wisp[s, r]
            ca = cedar[s, "all", r]; cc = cedar[s, "chain", r]
            best = (ca != "" ? ca : cc)
            printf "%-8s %-8s %8s [%5s-%5s]   %12s %12s %14s %14s %16s %21s\n", s, r, us(w), us(wisp_min[s, r]), us(wisp_max[s, r]), rate(w), us(linear[s, r]), us(ca), us(cc), rate(best), ratio(ca, w) "/" ratio(cc, w)
        }
    }
    print ""
    lo = sz[1]; hi = sz[n]
    for (j = 1; j <= 2; j++) {
        r = rq[j]
        g = wisp[hi, r] / wisp[lo, r]
        verdict = g <= 1.5 ? "ok (bound 1.5)" : "NOT MET (bound 1.5)"
        printf "wisp %s / wisp %s, %s: %.2fx  %s\n", hi, lo, r, g, verdict
    }
    worst = ""
    for (i = 1; i <= n; i++) for (j = 1; j <= 2; j++) {
        s = sz[i]; r = rq[j]
        split("all chain", sc, " ")
        for (k = 1; k <= 2; k++) {
            c = cedar[s, sc[k], r]
            if (c == "") continue
            x = c / wisp[s, r]
            if (worst == "" || x < worst) { worst = x; worst_at = s " " r " (" sc[k] ")" }
        }
    }
    if (worst != "")
        printf "smallest Cedar / wisp ratio: %.1fx at %s  %s\n", worst, worst_at, (worst >= 10 ? "ok (bound 10)" : "NOT MET (bound 10)")
}'
