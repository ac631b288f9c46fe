#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/metadata/rss.sh: issue 7's memory bound. wisp-metadata's resident
# memory with 0, 100 and 1,000 pods on its node, each pod with a cached
# token: at most 16 MiB at 1,000.
# In loopback mode, as tests/integration/t_metadata.sh runs it: wisp without
# --nodes, a cluster with a workload pool, pods pinned to one node, each
# pod with its own KSA (so its own principal) and its own address
# 127.10.x.y given through pods/status; wisp-metadata listens on
# 127.0.0.1:PORT and a client binds each pod's address to call it. At each
# stage every pod asks for its default token; each answer must be 200 and,
# by wispd's tokeninfo, that pod's own principal (rss_pods.py); then it
# asks ROUNDS - 1 times more, on new connections, and must get the same
# token: so the memory measured is that of N pods each holding a cached
# token, in the shared cache and in the views of the workers that served
# it (as after a while of pods refreshing their tokens).
# Then /proc/PID/status VmRSS and VmHWM, and Pss from smaps_rollup.
# Competitor, in the same run: nginx serving a small file with
# worker_processes = wisp-metadata's threads, idle and then after one
# request from every pod's address; its processes' RSS and Pss summed.
# Knobs (environment): N ("100 1000": stages, cumulative), ROUNDS (4), THREADS (2,
# wisp-metadata's --threads and nginx's workers), BOUND_MIB (16), WISP_BIN
# (bin/ of the tree; built by make when unset), KEEP (1: keep the state),
# SMAPS (a directory: wisp-metadata's /proc/PID/smaps at each stage goes
# there as smaps-PODS, to see where the memory is).
# Needs: python3, gcloud, kubectl, curl, nginx. Everything it starts is
# stopped, by PID, and its files removed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
N=${N:-100 1000}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-4}
BOUND_MIB=${BOUND_MIB:-16}
PROJECT=wisp-bench-mdrss
LOCATION=us-central1
CLUSTER=rss
NS=rss
POOL=$PROJECT.svc.id.goog
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

BENCH=metadata-rss
. "$here/../lib.sh"
bench_need python3 gcloud kubectl curl "$NGINX"
bench_start
bench_wisp_bin
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- wisp, a cluster with a workload pool, one node to pin pods to -----------------
bench_wisp=1
"$WISP_BIN/wisp" up --state "$tmp/state" --project "$PROJECT" >/dev/null
eval "$("$WISP_BIN/wisp" env --state "$tmp/state")"
HTTPS_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$tmp/state/run/wispd.json")
GAPI=https://127.0.0.1:$HTTPS_PORT
NUM=$(gcloud projects describe "$PROJECT" --format='value(projectNumber)')
PRINCIPAL=principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$POOL
gcloud container clusters create "$CLUSTER" --location="$LOCATION" --workload-pool="$POOL" \
    --quiet >/dev/null 2>&1
gcloud container clusters get-credentials "$CLUSTER" --location="$LOCATION" >/dev/null 2>&1
KAPI=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
    base64 -d >"$tmp/cluster-ca.pem"
gcloud auth print-access-token >"$tmp/kube-token"
kubectl create namespace "$NS" >/dev/null
NODE=$(kubectl get nodes -o jsonpath='{.items[0].metadata.name}')

# ---- wisp-metadata, as t_metadata.sh's md_start starts it ---------------------------
MPORT=$(free_port)
"$WISP_BIN/wisp-metadata" --kube-api "$KAPI" --kube-ca "$tmp/cluster-ca.pem" \
    --kube-token-file "$tmp/kube-token" --node "$NODE" --listen "127.0.0.1:$MPORT" \
    --sts "$GAPI/sts" --iamcredentials "$GAPI/iamcredentials" --google-ca "$tmp/state/ca.pem" \
    --project-id "$PROJECT" --project-number "$NUM" --cluster-name "$CLUSTER" \
    --cluster-location "$LOCATION" --cluster-uid uid-1 --threads "$THREADS" \
    --log-level info >>"$tmp/metadata.log" 2>&1 &
md_pid=$!
bench_pids+=("$md_pid")
for _ in $(seq 100); do # serving, and the (empty) pod list read
    grep -q 'listed [0-9]* pods' "$tmp/metadata.log" && break
    sleep 0.1
done
grep -q 'listed [0-9]* pods' "$tmp/metadata.log" || { echo "wisp-metadata did not start" >&2; exit 1; }

# ---- nginx: a private prefix and the same-sized body, one worker per thread --------
NPORT=$(free_port)
mkdir -p "$tmp/www"
printf '{"access_token":"%s","expires_in":3599,"token_type":"Bearer"}' \
    "$(head -c 180 /dev/zero | tr '\0' x)" >"$tmp/www/token.json"
bench_nginx_conf "$tmp/nginx" "$THREADS" "127.0.0.1:$NPORT" "$tmp/www/token.json" 1024
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>>"$tmp/nginx/logs/error.log" &
nginx_pid=$!
bench_pids+=("$nginx_pid")
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$NPORT/token.json" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$NPORT/token.json" || { echo "nginx did not start" >&2; exit 1; }

# ---- measuring -----------------------------------------------------------------------
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/$3"; } # kib PID FIELD FILE
# The nginx master and its workers: RSS and Pss, summed (KiB).
nginx_mem() {
    local rss=0 pss=0 p
    for p in $nginx_pid $(cat "/proc/$nginx_pid/task/$nginx_pid/children" 2>/dev/null); do
        rss=$((rss + $(kib "$p" VmRSS status))); pss=$((pss + $(kib "$p" Pss smaps_rollup)))
    done
    echo "$rss $pss"
}
rows=()
measure() { # measure PODS
    sleep 1 # let the last answers' buffers go back
    local rss hwm pss thr nr np
    rss=$(kib "$md_pid" VmRSS status); hwm=$(kib "$md_pid" VmHWM status)
    pss=$(kib "$md_pid" Pss smaps_rollup); thr=$(kib "$md_pid" Threads status)
    read -r nr np < <(nginx_mem)
    rows+=("$1 $rss $hwm $pss $thr $nr $np")
    [ -z "${SMAPS:-}" ] || cp "/proc/$md_pid/smaps" "$SMAPS/smaps-$1"
}

echo "bench/metadata/rss: wisp $(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), node $NODE, threads $THREADS," \
    "rounds $ROUNDS," \
    "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||')"
measure 0
have=0
for n in $N; do
    [ "$n" -gt "$have" ] || continue
    python3 "$here/rss_pods.py" pods "$KAPI" "$tmp/cluster-ca.pem" "$tmp/kube-token" "$NS" \
        "$NODE" "$have" "$n"
    python3 "$here/rss_pods.py" tokens "$MPORT" "$GAPI/oauth2/tokeninfo" "$tmp/state/ca.pem" \
        "$PRINCIPAL" "$NS" 0 "$n" "$ROUNDS"
    python3 "$here/rss_pods.py" hit "$NPORT" 0 "$n" >/dev/null
    have=$n
    measure "$n"
done

# ---- the table and the verdict -------------------------------------------------------
echo
printf '%6s | %-31s | %-19s | %s\n' "" "wisp-metadata (MiB)" "nginx, all procs" "ratio"
printf '%6s | %9s %9s %9s %3s | %9s %9s | %9s\n' pods VmRSS VmHWM Pss thr RSS Pss RSS
verdict=0
for r in "${rows[@]}"; do
    read -r pods rss hwm pss thr nr np <<<"$r"
    awk -v p="$pods" -v r="$rss" -v h="$hwm" -v s="$pss" -v t="$thr" -v nr="$nr" -v np="$np" \
        'BEGIN { printf "%6d | %9.2f %9.2f %9.2f %3s | %9.2f %9.2f | %8.2fx\n",
                 p, r/1024, h/1024, s/1024, t, nr/1024, np/1024, r/nr }'
    if [ "$pods" -ge 1000 ]; then
        mib=$(awk -v r="$rss" 'BEGIN { printf "%.2f", r / 1024 }')
        if [ "$rss" -le $((BOUND_MIB * 1024)) ]; then
            echo "PASS: $pods pods: VmRSS $mib MiB <= $BOUND_MIB MiB"
        else
            echo "FAIL: $pods pods: VmRSS $mib MiB > $BOUND_MIB MiB"; verdict=1
        fi
    fi
done
echo "(ratio: wisp-metadata's VmRSS over the sum of nginx's processes' RSS; load after:" \
    "$(cut -d' ' -f1-3 /proc/loadavg))"
exit $verdict
