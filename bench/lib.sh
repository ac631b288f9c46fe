# SPDX-License-Identifier: Apache-2.0
# bench/lib.sh: what the benchmarks share, sourced by bench/*/run.sh. A
# private temporary directory that is removed on any exit, together with
# every process registered in bench_pids and the wisp started by
# bench_wisp_cluster; the wisp + cluster + bound KSA setup of the node
# benchmarks; nginx serving a fixed body; and the measuring helpers (server CPU, wrk's units).
# Callers set BENCH (their name, for messages) before sourcing, and
# `set -euo pipefail` themselves.

bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_root=$(cd "$bench_here/.." && pwd)
bench_pids=()  # processes to stop (TERM, then wait) on exit, by PID
bench_wisp=    # set once `wisp up` may have started something
tmp=

# bench_cleanup: the EXIT trap. Stops what the bench started, newest first,
# says why a failed run failed, and removes $tmp unless KEEP=1.
bench_cleanup() {
    local rc=$? i
    for ((i = ${#bench_pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${bench_pids[i]}" 2>/dev/null || true
        wait "${bench_pids[i]}" 2>/dev/null || true
    done
    bench_pids=()
    if [ "$rc" != 0 ] && [ -n "$tmp" ] && [ -s "$tmp/state/wispd.log" ]; then
        echo "bench/$BENCH: exit $rc; the end of wispd.log:" >&2
        tail -n 20 "$tmp/state/wispd.log" >&2
    fi
    if [ -n "$bench_wisp" ]; then
        "$WISP_BIN/wisp" down --state "$tmp/state" >/dev/null 2>&1 || true
    fi
    [ -n "$tmp" ] || return 0
    [ "${KEEP:-}" = 1 ] && { echo "bench/$BENCH: kept $tmp" >&2; return 0; }
    rm -rf "$tmp"
}

# bench_start: $tmp (world-readable: pods read files in it) and the traps.
bench_start() {
    tmp=$(mktemp -d "/tmp/wisp-bench-$BENCH.XXXXXX")
    chmod 755 "$tmp"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# bench_need_root: pods need root (network namespaces); without it the
# bench says so and stops with success, as there is nothing it can measure.
bench_need_root() {
    [ "$(id -u)" = 0 ] && return 0
    echo "bench/$BENCH: SKIP: pods need root (network namespaces)"
    exit 0
}

# bench_need TOOL...: exit 111 naming the first tool that is missing.
bench_need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "bench/$BENCH: missing $tool" >&2; exit 111; }
    done
}

# bench_wisp_bin: WISP_BIN, building the tree when it is not given.
bench_wisp_bin() {
    if [ -z "${WISP_BIN:-}" ]; then
        make -C "$bench_root" --no-print-directory all >/dev/null
        WISP_BIN=$bench_root/bin
    fi
}

# bench_wisp_cluster PROJECT LOCATION CLUSTER NS KSA BUCKET: `wisp up
# --nodes` in $tmp/state, the gcloud environment of `wisp env`, a one-node
# cluster with the project's workload pool, namespace NS with ServiceAccount
# KSA, and KSA's principal bound as objectViewer on gs://BUCKET. Sets NUM,
# PRINCIPAL, API (the cluster's Kubernetes API) and writes $tmp/ca.pem
# (its CA) and $tmp/owner.token (the owner's access token).
bench_wisp_cluster() {
    local project=$1 location=$2 cluster=$3 ns=$4 ksa=$5 bucket=$6
    bench_wisp=1
    "$WISP_BIN/wisp" up --state "$tmp/state" --project "$project" --nodes >/dev/null
    eval "$("$WISP_BIN/wisp" env --state "$tmp/state")"
    NUM=$(gcloud projects describe "$project" --format='value(projectNumber)')
    PRINCIPAL=principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$project.svc.id.goog
    gcloud container clusters create "$cluster" --location="$location" \
        --workload-pool="$project.svc.id.goog" --num-nodes=1 --quiet >/dev/null 2>&1
    gcloud container clusters get-credentials "$cluster" --location="$location" >/dev/null 2>&1
    kubectl create namespace "$ns" >/dev/null
    kubectl create serviceaccount "$ksa" -n "$ns" >/dev/null
    gcloud storage buckets create "gs://$bucket" --quiet >/dev/null 2>&1
    gcloud storage buckets add-iam-policy-binding "gs://$bucket" --role=roles/storage.objectViewer \
        --member="$PRINCIPAL/subject/ns/$ns/sa/$ksa" --condition=None >/dev/null 2>&1
    API=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
    kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
        base64 -d >"$tmp/ca.pem"
    gcloud auth print-access-token >"$tmp/owner.token"
}

# bench_nginx_conf DIR WORKERS ADDR:PORT BODYFILE [CONNS]: DIR/nginx.conf
# (and its logs/) for nginx -p DIR: the fastest fair setup for a fixed
# body, which is `return 200` of BODYFILE's bytes from memory (no file
# I/O), access log off, keep-alive without nginx's default cap of 1000
# requests per connection, SO_REUSEPORT like wisp's workers, and CONNS
# connections per worker (8192, for 1000s; nginx allocates them all at
# start, so a memory comparison passes nginx's default, 1024). The body
# must not contain a single quote.
bench_nginx_conf() {
    local d=$1
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
worker_processes $2;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections ${5:-8192}; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout 65;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen $3 reuseport;
        location / {
            default_type application/json;
            add_header Metadata-Flavor Google;
            return 200 '$(cat "$4")';
        }
    }
}
EOF
}

# cpu_ticks PID: CPU ticks (utime+stime) of a process and its direct
# children (nginx's workers); a process's counters include its threads.
cpu_ticks() {
    local total=0 p f
    for p in "$1" $(pgrep -P "$1" || true); do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        f=${f##*) } # the fields after "(comm) "
        # shellcheck disable=SC2086
        set -- $f
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# to_us: wrk's "545.00us" | "4.80ms" | "1.02s" -> microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

# wrk_result OUTPUT TICKS: from the output of `wrk --latency` and the
# server's CPU ticks during that run, sets wrk_rps, wrk_p50 and wrk_p99
# (µs), wrk_cpu (server CPU µs per request) and wrk_errs (wrk's error
# lines, empty when there were none).
wrk_result() {
    local reqs
    wrk_rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$1")
    wrk_p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$1")")
    wrk_p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$1")")
    reqs=$(awk '/requests in/ {print $1}' <<<"$1")
    wrk_errs=$(awk '/Socket errors|Non-2xx/ {printf "%s ", $0}' <<<"$1")
    wrk_cpu=$(awk -v t="$2" -v r="$reqs" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", t * 1000000 / hz / r }')
}

# median FILE COLUMN: the median of a column of numbers.
median() {
    sort -g -k"$2","$2" "$1" | awk -v c="$2" '{a[NR] = $c} END {
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
