#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/authz/wispd.sh: the authorization decision inside a real wispd, with
# the per-thread cache of compiled policies (src/wispd/authz_cache.c) off
# (WISPD_AUTHZ_CACHE_ENTRIES=0: every decision reads and walks the stored
# JSON, the path before the cache) and on, in the same run. For each SIZE
# the project's policy is rewritten to SIZE bindings (seed.c; the owner's
# grant last), and wrk drives POST projects/P:testIamPermissions for
# resourcemanager.projects.get (one decision per request) over loopback
# HTTP. Prints req/s, latency and wispd CPU per request.
# Knobs (environment): SIZES ("10 10000"), WRK_SECONDS (5), CONNS (16),
# WISP_BIN (bin/ of the tree, built by make).
# Needs: make, cc, pkg-config, wrk, curl, python3, gcloud (for the token,
# run with the environment `wisp env` prints). Stops what it starts.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SIZES=${SIZES:-10 10000}
WRK_SECONDS=${WRK_SECONDS:-5}
CONNS=${CONNS:-16}
PROJECT=wisp-bench-authz
CLK_TCK=$(getconf CLK_TCK)

for tool in make cc pkg-config wrk curl python3 gcloud; do
    command -v "$tool" >/dev/null || { echo "bench/authz/wispd: missing $tool" >&2; exit 111; }
done

tmp=$(mktemp -d /tmp/wisp-bench-authz-wispd.XXXXXX)
state=$tmp/state
cleanup() {
    [ -n "${WISP_BIN:-}" ] && "$WISP_BIN/wisp" down --state "$state" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${WISP_BIN:-}" ]; then
    make -C "$root" --no-print-directory all >/dev/null
    WISP_BIN=$root/bin
fi
make -C "$root" --no-print-directory build/release/libwisp.a >/dev/null
# shellcheck disable=SC2046
cc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I"$root/include" -o "$tmp/seed" \
    "$here/seed.c" "$root/build/release/libwisp.a" \
    $(pkg-config --libs jansson openssl cjose sqlite3 libcurl) -lz -lpthread

up() { # up CACHE_ENTRIES
    WISPD_AUTHZ_CACHE_ENTRIES=$1 "$WISP_BIN/wisp" up --state "$state" --project "$PROJECT" \
        >/dev/null
}
up 4096
token=$(eval "$("$WISP_BIN/wisp" env --state "$state")" && gcloud auth print-access-token)
"$WISP_BIN/wisp" down --state "$state" >/dev/null

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
to_us() { # "545.00us" | "4.80ms" | "1.02s" -> microseconds
    awk -v v="$1" 'BEGIN { n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}
cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"permissions":["resourcemanager.projects.get"]}'
wrk.headers["Content-Type"] = "application/json"
EOF

echo "bench/authz/wispd: wisp $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(nproc) cores, wispd with its default workers, wrk -t1 -c$CONNS -d${WRK_SECONDS}s"
: >"$tmp/rows.tsv"
for size in $SIZES; do
    "$tmp/seed" "$state/wisp.db" "$PROJECT" "$size" >"$tmp/seed.out"
    for entries in 0 4096; do
        up "$entries"
        info=$state/run/wispd.json
        port=$(json_field "$info" http_port)
        pid=$(json_field "$info" pid)
        url=http://127.0.0.1:$port/cloudresourcemanager/v1/projects/$PROJECT:testIamPermissions
        body=$(curl -sS --noproxy '*' -X POST -H "Authorization: Bearer $token" \
            -H 'Content-Type: application/json' \
            --data '{"permissions":["resourcemanager.projects.get"]}' "$url")
        case $body in
        *resourcemanager.projects.get*) ;;
        *) echo "bench/authz/wispd: the owner is not granted: $body" >&2; exit 1 ;;
        esac
        # Warm-up: every worker compiles the policy once (cache on) before
        # the measured run, which then shows the steady state.
        wrk -t1 -c"$CONNS" -d1s --timeout 10s -s "$tmp/post.lua" -H "Authorization: Bearer $token" "$url" \
            >/dev/null
        before=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        out=$(wrk -t1 -c"$CONNS" -d"${WRK_SECONDS}s" --timeout 10s --latency -s "$tmp/post.lua" \
            -H "Authorization: Bearer $token" "$url")
        after=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        if grep -q Non-2xx <<<"$out"; then
            echo "bench/authz/wispd: non-2xx answers under load:" >&2
            echo "$out" >&2
            exit 1
        fi
        rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
        reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
        p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
        p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
        cpu=$(awk -v a="$after" -v b="$before" -v r="$reqs" -v hz="$CLK_TCK" \
            'BEGIN { printf "%.1f", (a - b) * 1e6 / hz / r }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$entries" "$rps" "$p50" "$p99" "$cpu" \
            >>"$tmp/rows.tsv"
        "$WISP_BIN/wisp" down --state "$state" >/dev/null
    done
done

echo
printf '%-9s %-22s %10s %10s %10s %16s\n' "bindings" "decision path" "req/s" "p50 µs" \
    "p99 µs" "wispd CPU µs/req"
awk -F'\t' '{
    path = $2 == 0 ? "JSON walk (cache off)" : "cached index"
    printf "%-9s %-22s %10.0f %10.0f %10.0f %16.1f\n", $1, path, $3, $4, $5, $6
    rps[$1, $2] = $3
} END {
    for (k in rps) { split(k, p, SUBSEP); if (p[2] != 0 && rps[p[1], 0] > 0)
        printf "%s bindings: cached / walk = %.1fx req/s\n", p[1], rps[k] / rps[p[1], 0] }
}' "$tmp/rows.tsv"
