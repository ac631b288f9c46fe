#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/http: wisp's HTTP server (lib/http on h2o) against nginx on
# loopback, same worker count, same 250-byte JSON body, measured by wrk in
# the same run, alternating servers round by round. Prints req/s, p50/p99
# latency and server CPU µs per request for each, and the ratio wisp/nginx.
# Modes: keep-alive, Connection: close, and keep-alive with each server
# pinned to CPU 1 (one worker) and wrk pinned to CPU 0.
# Knobs (environment): DURATION (10s), ROUNDS (3), CONNS (64), THREADS (2),
# NGINX (/usr/sbin/nginx), WRK (wrk), MODES ("keepalive close pinned"),
# WISP_CFLAGS (extra flags for lib/http, e.g. -DWISP_HTTP_REUSEPORT=0 to
# measure one shared listening socket instead of one per worker).
# Every process it starts is stopped on exit, whatever the exit path.
set -euo pipefail

BENCH=http
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/../lib.sh" # bench_nginx_conf, cpu_ticks, wrk_result, median
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
WISP_CFLAGS=${WISP_CFLAGS:-}
MODES=${MODES:-keepalive close pinned}
PATH_Q=/computeMetadata/v1/instance/service-accounts/default/token

for tool in "$NGINX" "$WRK" cc pkg-config curl taskset; do
    command -v "$tool" >/dev/null || { echo "bench/http: missing $tool" >&2; exit 111; }
done

tmp=$(mktemp -d /tmp/wisp-bench-http.XXXXXX)
server_pids=()
cleanup() {
    local p
    for p in "${server_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${server_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    server_pids=()
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build -----------------------------------------------------------------
# Only lib/http and lib/core are compiled, with the release flags, so the
# bench does not depend on the rest of the tree building.
# shellcheck disable=SC2046
# shellcheck disable=SC2086
cc -std=c17 -D_GNU_SOURCE -O2 -g $WISP_CFLAGS -I"$root/include" -I"$root/lib" \
    -o "$tmp/wisp-bench-server" "$here/server.c" "$root"/lib/http/*.c "$root"/lib/core/*.c \
    $(pkg-config --libs libh2o-evloop openssl) -lwslay -lz -lpthread

# ---- the body: 250 bytes of token-shaped JSON --------------------------------
token=ya29.$(head -c 400 /dev/zero | tr '\0' 'x')
prefix='{"access_token":"'
suffix='","expires_in":3599,"token_type":"Bearer"}'
need=$((250 - ${#prefix} - ${#suffix}))
printf '%s%s%s' "$prefix" "${token:0:$need}" "$suffix" >"$tmp/body.json"
[ "$(wc -c <"$tmp/body.json")" -eq 250 ] || { echo "bench/http: body is not 250 bytes" >&2; exit 1; }

cat >"$tmp/close.lua" <<'EOF'
wrk.headers["Connection"] = "close"
EOF

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() { # port
    local i
    for i in $(seq 1 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$1$PATH_Q" && return 0
        sleep 0.05
    done
    echo "bench/http: server on port $1 did not come up" >&2
    return 1
}

# start_wisp PORT WORKERS CPUSET; sets wisp_pid
start_wisp() {
    local pin=()
    [ -n "$3" ] && pin=(taskset -c "$3")
    "${pin[@]}" "$tmp/wisp-bench-server" "$1" "$2" "$tmp/body.json" >"$tmp/wisp.out" 2>"$tmp/wisp.err" &
    wisp_pid=$!
    server_pids+=("$wisp_pid")
    wait_ready "$1"
}

# start_nginx PORT WORKERS CPUSET; sets nginx_pid (the master)
start_nginx() {
    local d="$tmp/nginx-$1" pin=()
    bench_nginx_conf "$d" "$2" "127.0.0.1:$1" "$tmp/body.json"
    [ -n "$3" ] && pin=(taskset -c "$3")
    "${pin[@]}" "$NGINX" -p "$d" -c "$d/nginx.conf" 2>"$d/stderr" &
    nginx_pid=$!
    server_pids+=("$nginx_pid")
    wait_ready "$1"
}

stop_servers() {
    cleanup_pids=("${server_pids[@]}")
    local p
    for p in "${cleanup_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${cleanup_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    server_pids=()
}

# measure NAME PID PORT WRK_THREADS WRK_CPU EXTRA_WRK_ARGS...
# appends "rps p50 p99 cpu_us_per_req errors" to $tmp/res.NAME.MODE
measure() {
    local name=$1 pid=$2 port=$3 wt=$4 wcpu=$5
    shift 5
    local pin=() before after out rps p50 p99 errs cpu
    [ -n "$wcpu" ] && pin=(taskset -c "$wcpu")
    before=$(cpu_ticks "$pid")
    out=$("${pin[@]}" "$WRK" -t"$wt" -c"$CONNS" -d"$DURATION" --latency "$@" \
        "http://127.0.0.1:$port$PATH_Q")
    after=$(cpu_ticks "$pid")
    wrk_result "$out" $((after - before))
    rps=$wrk_rps p50=$wrk_p50 p99=$wrk_p99 cpu=$wrk_cpu errs=$wrk_errs
    echo "$rps $p50 $p99 $cpu" >>"$tmp/res.$name.$mode"
    printf '  %-6s round %d: %10.0f req/s  p50 %7.0f us  p99 %7.0f us  cpu %6.2f us/req %s\n' \
        "$name" "$round" "$rps" "$p50" "$p99" "$cpu" "${errs:+[$errs]}"
}

summary=()
for mode in $MODES; do
    wport=$(free_port)
    nport=$(free_port)
    case $mode in
    keepalive)
        start_wisp "$wport" "$THREADS" ""; start_nginx "$nport" "$THREADS" ""
        wt=$THREADS; wcpu=""; extra=() ;;
    close)
        start_wisp "$wport" "$THREADS" ""; start_nginx "$nport" "$THREADS" ""
        wt=$THREADS; wcpu=""; extra=(-s "$tmp/close.lua") ;;
    pinned)
        start_wisp "$wport" 1 1; start_nginx "$nport" 1 1
        wt=1; wcpu=0; extra=() ;;
    *) echo "bench/http: unknown mode $mode" >&2; exit 100 ;;
    esac
    echo "== $mode: wrk -t$wt -c$CONNS -d$DURATION ${extra[*]:-}"
    for round in $(seq 1 "$ROUNDS"); do
        measure wisp "$wisp_pid" "$wport" "$wt" "$wcpu" "${extra[@]}"
        measure nginx "$nginx_pid" "$nport" "$wt" "$wcpu" "${extra[@]}"
    done
    stop_servers
    for name in wisp nginx; do
        f="$tmp/res.$name.$mode"
        eval "${name}_rps=$(median "$f" 1) ${name}_p50=$(median "$f" 2)"
        eval "${name}_p99=$(median "$f" 3) ${name}_cpu=$(median "$f" 4)"
    done
    summary+=("$(awk -v m="$mode" -v wr="$wisp_rps" -v nr="$nginx_rps" -v w5="$wisp_p50" \
        -v n5="$nginx_p50" -v w9="$wisp_p99" -v n9="$nginx_p99" -v wc="$wisp_cpu" -v nc="$nginx_cpu" \
        'BEGIN { printf "%-9s | %8.0f %8.0f %5.2f | %5.0f/%-6.0f %5.0f/%-6.0f | %6.2f %6.2f %5.2f",
                 m, wr, nr, wr / nr, w5, w9, n5, n9, wc, nc, wc / nc }')")
done

echo
echo "medians of $ROUNDS rounds, $CONNS connections, $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "mode      |  wisp r/s nginx r/s ratio | wisp p50/p99 us nginx p50/p99 us | wisp cpu nginx cpu ratio (us/req)"
printf '%s\n' "${summary[@]}"
