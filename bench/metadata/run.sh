#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/metadata: issue 7's metadata-server bound. Cached token requests
# (GET /computeMetadata/v1/instance/service-accounts/default/token with
# Metadata-Flavor: Google and Host: metadata.google.internal) sent by wrk
# from inside a pod's network namespace to the node's wisp-metadata on
# 169.254.169.254:80, and the same requests to nginx serving the same
# response bytes from the same node namespace (169.254.169.254:8080, as many
# workers as wisp-metadata has threads, `return 200` from memory, access log
# off, keep-alive unlimited, reuseport like wisp's listeners). For each
# connection count (1, 64, 1000) and each mode (keep-alive; a new
# connection per request via `Connection: close`), wisp and nginx run back
# to back with the same wrk settings (the order alternates by round).
# Prints req/s, p99 latency and server CPU µs per request (utime+stime from
# /proc/PID/stat over the run, ÷ requests; nginx's master + workers) for
# each, the ratios, and the verdict against the bounds: wisp at least 0.8×
# nginx's req/s and at most 2× its p99.
# Under `wisp up --nodes`: a one-node cluster with a workload pool, a KSA
# whose principal is bound on a bucket, and one pod (sleep infinity) running
# as it, whose token the metadata server prefetches; one request from the
# pod checks the cache is warm and captures the bytes nginx then serves.
# Knobs (environment): DURATION (5s per run), CONNS ("1 64 1000"), MODES
# ("keepalive close"; also "pinned": keep-alive with every server thread on
# CPU 1 and wrk -t1 on CPU 0), ROUNDS (3; the table shows medians, and as
# ratios the medians of each round's ratio),
# WRK_THREADS (2, at most the connections), NGINX (/usr/sbin/nginx), WRK
# (wrk), WISP_BIN (bin/ of the tree, built by make), KEEP (1: keep the state
# dir). The machine's other load moves single runs by tens of percent; the
# server CPU per request moves least.
# Needs: root, make, gcloud, kubectl, curl, wrk, nginx, nsenter, taskset. Every
# process it starts is stopped and its state removed on exit.
set -euo pipefail

BENCH=metadata
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/../lib.sh"
DURATION=${DURATION:-5s}
CONNS=${CONNS:-1 64 1000}
MODES=${MODES:-keepalive close}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
PROJECT=wisp-bench-md
NS=bench
KSA=app
MD=169.254.169.254
NGINX_PORT=8080
PATH_Q=/computeMetadata/v1/instance/service-accounts/default/token

bench_need_root
bench_need make gcloud kubectl curl nsenter taskset "$WRK" "$NGINX"
bench_start
bench_wisp_bin

# ---- wisp, the cluster, the pod ------------------------------------------------------
bench_wisp_cluster "$PROJECT" us-central1 md "$NS" "$KSA" bench-md-b
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS}
spec:
  serviceAccountName: $KSA
  containers:
  - {name: c, image: debian, command: ["sleep", "infinity"]}
YAML
kubectl wait -n "$NS" --for=condition=Ready pod/client --timeout=120s >/dev/null
uid=$(kubectl get pod -n "$NS" client -o jsonpath='{.metadata.uid}')

# The node's metadata server: STATE/run/nodes has "pid N md-gke FABRIC
# NODE". It listens inside /run/netns/FABRIC-NODE (the process itself stays
# in the root namespace); the pod's namespace is that name + "-UID".
md_pid='' node_ns='' pod_ns=''
for _ in $(seq 1 100); do
    read -r md_pid node_ns < <(awk '$1 == "pid" && $3 == "md-gke" {print $2, $4 "-" $5}' \
        "$tmp/state/run/nodes" 2>/dev/null) || true
    [ -n "$md_pid" ] && break
    sleep 0.1
done
[ -n "$md_pid" ] || { echo "bench/$BENCH: no wisp-metadata in STATE/run/nodes" >&2; exit 1; }
pod_ns=/run/netns/$node_ns-$uid
node_ns=/run/netns/$node_ns
[ -e "$pod_ns" ] || { echo "bench/$BENCH: no pod namespace $pod_ns" >&2; exit 1; }
md_threads=$(tr '\0' '\n' <"/proc/$md_pid/cmdline" | awk 'p {print; exit} /^--threads$/ {p = 1}')
md_threads=${md_threads:-2} # wisp-metadata's default

# Warm: the first 200 from the pod, whose body nginx will serve.
in_pod() { nsenter --net="$pod_ns" "$@"; }
for _ in $(seq 1 100); do
    code=$(in_pod curl -s -o "$tmp/body.json" -w '%{http_code}' -H 'Metadata-Flavor: Google' \
        -H 'Host: metadata.google.internal' "http://$MD$PATH_Q") || true
    [ "$code" = 200 ] && break
    sleep 0.1
done
[ "$code" = 200 ] || { echo "bench/$BENCH: the pod's token request got $code" >&2; exit 1; }
grep -q '"access_token"' "$tmp/body.json"

# ---- nginx in the node's namespace -----------------------------------------------------
nd=$tmp/nginx
bench_nginx_conf "$nd" "$md_threads" "$MD:$NGINX_PORT" "$tmp/body.json"
# setsid: its own session, so its own scheduler autogroup, as wisp-metadata
# has in wispd's (idle during the runs). In this script's session nginx
# would share one fair share of the CPUs with wrk while wisp-metadata had a
# share of its own, which skews the comparison whenever the machine is busy.
setsid nsenter --net="$node_ns" "$NGINX" -p "$nd" -c "$nd/nginx.conf" 2>"$nd/stderr" &
nginx_pid=$!
bench_pids+=("$nginx_pid")
for _ in $(seq 1 100); do
    in_pod curl -fs -o "$tmp/nginx-body.json" "http://$MD:$NGINX_PORT$PATH_Q" && break
    sleep 0.05
done
cmp -s "$tmp/body.json" "$tmp/nginx-body.json" ||
    { echo "bench/$BENCH: nginx does not serve wisp's bytes" >&2; cat "$nd/stderr" >&2; exit 1; }

cat >"$tmp/close.lua" <<'EOF'
wrk.headers["Connection"] = "close"
EOF

# ---- measuring -----------------------------------------------------------------------
# measure NAME PID PORT CONNS MODE: one wrk run from the pod's namespace;
# appends "rps p99_us cpu_us_per_req" to $tmp/res.NAME.CONNS.MODE.
measure() {
    local name=$1 pid=$2 port=$3 c=$4 mode=$5 extra=() pin=() t out before after rps p99 errs cpu
    t=$((c < WRK_THREADS ? c : WRK_THREADS))
    case $mode in
    close) extra=(-s "$tmp/close.lua") ;;
    pinned) # every server thread on CPU 1, wrk (one thread) on CPU 0
        pin_server "$pid" 1
        pin=(taskset -c 0)
        t=1 ;;
    esac
    before=$(cpu_ticks "$pid")
    # 1000 connections need more descriptors than the usual 1024.
    out=$(ulimit -n 16384 && "${pin[@]}" nsenter --net="$pod_ns" "$WRK" -t"$t" -c"$c" \
        -d"$DURATION" --timeout 10s --latency -H 'Metadata-Flavor: Google' \
        -H 'Host: metadata.google.internal' "${extra[@]}" "http://$MD:$port$PATH_Q")
    after=$(cpu_ticks "$pid")
    [ "$mode" = pinned ] && pin_server "$pid" 0-$(($(nproc) - 1))
    wrk_result "$out" $((after - before))
    rps=$wrk_rps p99=$wrk_p99 cpu=$wrk_cpu errs=$wrk_errs
    echo "$rps $p99 $cpu" >>"$tmp/res.$name.$c.$mode"
    printf '  %-5s %4d conns %-9s round %d: %9.0f req/s  p99 %8.0f us  cpu %6.2f us/req %s\n' \
        "$name" "$c" "$mode" "$round" "$rps" "$p99" "$cpu" "${errs:+[$errs]}"
    [ -z "$errs" ] || echo "$name $c $mode: $errs" >>"$tmp/errors"
}

# pin_server PID CPUS: every thread of PID and of its children (nginx's
# workers) on CPUS.
pin_server() {
    local p
    for p in "$1" $(pgrep -P "$1" || true); do
        taskset -a -p -c "$2" "$p" >/dev/null
    done
}

echo "bench/$BENCH: wisp $(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wisp-metadata $md_threads threads," \
    "nginx $md_threads workers; wrk from the pod's namespace, -d$DURATION, $ROUNDS round(s)"
for round in $(seq 1 "$ROUNDS"); do
    for c in $CONNS; do
        for mode in $MODES; do
            if [ $((round % 2)) = 1 ]; then
                measure wisp "$md_pid" 80 "$c" "$mode"
                measure nginx "$nginx_pid" "$NGINX_PORT" "$c" "$mode"
            else
                measure nginx "$nginx_pid" "$NGINX_PORT" "$c" "$mode"
                measure wisp "$md_pid" 80 "$c" "$mode"
            fi
        done
    done
done

# ---- the table -----------------------------------------------------------------------
# paired COLUMN: the median over rounds of wisp/nginx in that column of $w
# and $n. Each round's two runs are back to back, so the ratio within a
# round is steadier than the ratio of separate medians when the machine's
# other load comes and goes.
paired() {
    paste -d' ' "$w" "$n" | awk -v c="$1" '{print ($(c + 3) > 0 ? $c / $(c + 3) : 0)}' \
        >"$tmp/ratios"
    median "$tmp/ratios" 1
}

echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS round(s):" \
    "medians; the ratios are the medians of each round's wisp/nginx"
echo "p99 in us; server CPU in us per request"
printf '%-5s %-9s | %8s %8s %5s | %8s %8s %5s | %7s %7s | %s\n' conns mode "wisp r/s" \
    "nginx r/s" ratio "wisp p99" "ngx p99" ratio "wisp us" "ngx us" "bounds (>=0.8x r/s, <=2x p99)"
fails=0
for c in $CONNS; do
    for mode in $MODES; do
        w=$tmp/res.wisp.$c.$mode n=$tmp/res.nginx.$c.$mode
        line=$(awk -v c="$c" -v m="$mode" -v wr="$(median "$w" 1)" -v nr="$(median "$n" 1)" \
            -v w9="$(median "$w" 2)" -v n9="$(median "$n" 2)" -v wc="$(median "$w" 3)" \
            -v nc="$(median "$n" 3)" -v r="$(paired 1)" -v l="$(paired 2)" 'BEGIN {
                v = (r >= 0.8 && l <= 2) ? "PASS" : "FAIL"
                printf "%-5d %-9s | %8.0f %8.0f %5.2f | %8.0f %8.0f %5.2f | %7.2f %7.2f | %s",
                    c, m, wr, nr, r, w9, n9, l, wc, nc, v }')
        echo "$line"
        case $line in *FAIL) fails=$((fails + 1)) ;; esac
    done
done
if [ -s "$tmp/errors" ]; then
    echo "wrk reported errors:"
    cat "$tmp/errors"
fi
echo "bench/$BENCH: $fails of the cells outside the bounds; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
