#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/tokens: issue 4's two token bounds, each against `openssl speed
# rsa2048` measured in the same run.
# (a) Access-token verification: verify.c times wisp_token_open() (what
#     wispd_authenticate() calls per request) on one core, in CPU time as
#     openssl speed does, rounds interleaved with openssl's; the bound is
#     opens/s >= 10x RSA-2048 verify/s. Then, through wispd on loopback
#     HTTP with wrk, the same GET with and without a token (and tokeninfo),
#     with wispd's CPU per request, to show what verification costs there.
# (b) The cold path: cold.c runs a pod's first token in a loop: TokenRequest
#     on the cluster's Kubernetes API (HTTPS; one RSA-2048 signature by the
#     cluster issuer), STS's exchange of that KSA token (one RS256 verify
#     and a seal) and generateAccessToken with the federated token for a
#     GSA on which the KSA's principal holds roles/iam.workloadIdentityUser
#     (cluster, namespace, KSA, GSA and binding made with the real gcloud
#     and kubectl under `wisp env`). The bound is paths/s >= 0.7x openssl's
#     RSA-2048 sign/s on one core. p50/p99 at THREADS loops and one loop.
# Knobs (environment): CPU (1: the core (a) is pinned to), ROUNDS (3),
# ROUND_SECONDS (0.3, per wisp operation per round), SPEED_SECONDS (2),
# WRK_SECONDS (4), CONNS (16), COLD_SECONDS (8), COLD_THREADS (4),
# SERIAL_SECONDS (4), WISP_BIN (bin/ of the tree, built by make).
# Needs: make, cc, pkg-config (jansson, openssl, cjose, libh2o-evloop), openssl,
# wrk, taskset, python3, curl, gcloud, kubectl. Every process it starts is
# stopped and its state removed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CPU=${CPU:-1}
ROUNDS=${ROUNDS:-3}
ROUND_SECONDS=${ROUND_SECONDS:-0.3}
SPEED_SECONDS=${SPEED_SECONDS:-2}
WRK_SECONDS=${WRK_SECONDS:-4}
CONNS=${CONNS:-16}
COLD_SECONDS=${COLD_SECONDS:-8}
COLD_THREADS=${COLD_THREADS:-4}
SERIAL_SECONDS=${SERIAL_SECONDS:-4}
PROJECT=wisp-bench
GSA=app-runner@$PROJECT.iam.gserviceaccount.com
LOCATION=us-central1
CLUSTER=prod-1
NS=team-a
KSA=app-runner
POOL=$PROJECT.svc.id.goog
ISSUER=https://container.googleapis.com/v1/projects/$PROJECT/locations/$LOCATION/clusters/$CLUSTER
CLK_TCK=$(getconf CLK_TCK)

for tool in make cc pkg-config openssl wrk taskset python3 curl gcloud kubectl; do
    command -v "$tool" >/dev/null || { echo "bench/tokens: missing $tool" >&2; exit 111; }
done

tmp=$(mktemp -d /tmp/wisp-bench-tokens.XXXXXX)
wisp_up=
cleanup() {
    local rc=$?
    if [ "$rc" != 0 ] && [ -s "$tmp/state/wispd.log" ]; then
        echo "bench/tokens: exit $rc; the end of wispd.log:" >&2
        tail -n 20 "$tmp/state/wispd.log" >&2
    fi
    if [ -n "$wisp_up" ]; then
        "$WISP_BIN/wisp" down --state "$tmp/state" >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build: release libwisp and binaries, and the two bench programs -------
if [ -z "${WISP_BIN:-}" ]; then
    make -C "$root" --no-print-directory all >/dev/null
    WISP_BIN=$root/bin
fi
make -C "$root" --no-print-directory build/release/libwisp.a >/dev/null
for prog in verify cold; do
    # shellcheck disable=SC2046
    cc -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-missing-field-initializers \
        -I"$root/include" -I"$root/lib" -o "$tmp/$prog" "$here/$prog.c" \
        "$root/build/release/libwisp.a" \
        $(pkg-config --libs jansson openssl cjose sqlite3 libh2o-evloop) -lz -lpthread
done
echo "bench/tokens: wisp $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(openssl version | cut -d' ' -f1-2), $(nproc) cores, (a) pinned to CPU $CPU"

# ---- (a) in process: wisp_token_open vs openssl rsa2048, interleaved --------
# openssl 3 prints "rsa 2048 bits 0.000258s 0.000015s 3876.0 65104.1":
# the last two fields are sign/s and verify/s (per CPU second).
: >"$tmp/a.tsv"
for round in $(seq 1 "$ROUNDS"); do
    taskset -c "$CPU" "$tmp/verify" "$ROUND_SECONDS" 1 | sed "s/^/$round\t/" >>"$tmp/a.tsv"
    taskset -c "$CPU" openssl speed -seconds "$SPEED_SECONDS" rsa2048 2>/dev/null |
        awk -v r="$round" '/^rsa 2048 bits/ { printf "%s\tossl\trsa2048\t%s\t%s\n", r, $(NF-1), $NF }' \
            >>"$tmp/a.tsv"
    grep -q "^$round	ossl" "$tmp/a.tsv" || { echo "bench/tokens: no rsa 2048 line from openssl speed" >&2; exit 1; }
done

# Medians over rounds: wisp ns/op per (op, shape); openssl sign/s, verify/s;
# and the per-round ratio opens/s / verify/s (same round, same core).
awk -F'\t' '
function med(arr, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j - 1] > arr[j]; j--) {
        t = arr[j]; arr[j] = arr[j - 1]; arr[j - 1] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
$2 == "ossl" { sign[$1] = $4; ver[$1] = $5; next }
{ k = $2 "\t" $3; ns[k, ++cnt[k]] = $4; bytes[k] = $7; per[$1, k] = $4 }
END {
    for (k in cnt) { delete a; for (i = 1; i <= cnt[k]; i++) a[i] = ns[k, i]; m[k] = med(a, cnt[k]) }
    n = 0; for (r in sign) { n++; s[n] = sign[r]; v[n] = ver[r] }
    printf "ossl_sign\t%.1f\nossl_verify\t%.1f\n", med(s, n), med(v, n)
    for (k in m) { split(k, p, "\t"); printf "ns\t%s\t%s\t%.1f\t%s\n", p[1], p[2], m[k], bytes[k] }
    for (sh = 1; sh <= 2; sh++) {
        shape = sh == 1 ? "federated" : "minted"
        n = 0
        for (r in ver) { n++; q[n] = (1e9 / per[r, "open\t" shape]) / ver[r] }
        printf "ratio_open\t%s\t%.2f\n", shape, med(q, n)
    }
}' "$tmp/a.tsv" >"$tmp/a.med"
val() { awk -F'\t' -v a="$1" -v b="${2:-}" '$1 == a && (b == "" || $2 == b) { print $NF; exit }' "$tmp/a.med"; }
nsv() { awk -F'\t' -v a="$1" -v b="$2" '$1 == "ns" && $2 == a && $3 == b { print $4; exit }' "$tmp/a.med"; }
ossl_sign=$(val ossl_sign)
ossl_verify=$(val ossl_verify)

echo
echo "(a) one core (CPU $CPU), CPU time per operation, median of $ROUNDS interleaved rounds"
printf '%-46s %12s %12s %8s\n' "operation" "µs/op" "ops/s" "bytes"
row() { # label op shape
    awk -v l="$1" -v ns="$(nsv "$2" "$3")" -v b="$(awk -F'\t' -v a="$2" -v s="$3" '$1 == "ns" && $2 == a && $3 == s { print $5 }' "$tmp/a.med")" \
        'BEGIN { printf "%-46s %12.2f %12.0f %8s\n", l, ns / 1000, 1e9 / ns, b }'
}
row "wisp_token_open, federated (STS) token" open federated
row "  + wisp_token_principal (authenticate)" authn federated
row "wisp_token_open, minted (generateAccessToken)" open minted
row "  + wisp_token_principal (authenticate)" authn minted
row "wisp_token_seal, federated" seal federated
row "wisp_ksa_verify (STS's RS256 check)" ksa_verify rs256
row "wisp_jwt_sign_rs256 from PEM (signJwt)" jwt_sign rs256
row "wisp_rsa_sign_sha256 from PEM (signBlob)" blob_sign rsa2048
row "  of which: private key PEM decode" pem_decode private
row "public key PEM decode (every RS256 verify)" pem_decode public
awk -v s="$ossl_sign" -v v="$ossl_verify" 'BEGIN {
    printf "%-46s %12.2f %12.0f\n", "openssl speed rsa2048 sign", 1e6 / s, s
    printf "%-46s %12.2f %12.0f\n", "openssl speed rsa2048 verify", 1e6 / v, v }'
ratio_fed=$(val ratio_open federated)
ratio_min=$(val ratio_open minted)
verdict() { awk -v x="$1" -v b="$2" 'BEGIN { print (x >= b ? "ok" : "NOT MET") " (bound " b "x)" }'; }
echo "wisp opens/s / openssl rsa2048 verify/s: federated ${ratio_fed}x $(verdict "$ratio_fed" 10)," \
    "minted ${ratio_min}x $(verdict "$ratio_min" 10)"

# ---- a private wispd on loopback ----------------------------------------------
"$WISP_BIN/wisp" up --state "$tmp/state" --project "$PROJECT" >/dev/null
wisp_up=1
info=$tmp/state/run/wispd.json
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http_port"])' "$info")
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$info")
base=http://127.0.0.1:$port
token=$("$tmp/cold" token "$tmp/state/owner-key.json" "$base")

# The cold path's world, with the real clients and only wisp's environment
# (gcloud never sees the real metadata server or Google).
eval "$("$WISP_BIN/wisp" env --state "$tmp/state")"
quiet() { "$@" >"$tmp/setup.log" 2>&1 || { echo "bench/tokens: $*:" >&2; cat "$tmp/setup.log" >&2; exit 1; }; }
quiet gcloud container clusters create "$CLUSTER" --location="$LOCATION" --workload-pool="$POOL" \
    --num-nodes=1 --quiet
quiet gcloud container clusters get-credentials "$CLUSTER" --location="$LOCATION"
kube_api=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
    base64 -d >"$tmp/cluster-ca.pem"
quiet kubectl create namespace "$NS"
quiet kubectl create serviceaccount "$KSA" --namespace "$NS"
quiet gcloud iam service-accounts create "${GSA%%@*}" --display-name=bench/tokens --quiet
num=$(gcloud projects describe "$PROJECT" --format='value(projectNumber)')
quiet gcloud iam service-accounts add-iam-policy-binding "$GSA" \
    --role=roles/iam.workloadIdentityUser --condition=None --quiet \
    --member="principal://iam.googleapis.com/projects/$num/locations/global/workloadIdentityPools/$POOL/subject/ns/$NS/sa/$KSA"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
to_us() { # "545.00us" | "4.80ms" | "1.02s" -> microseconds
    awk -v v="$1" 'BEGIN { n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

# ---- (a) through HTTP: the same GET with and without a token --------------------
# http_row LABEL EXPECTED_STATUS URL [wrk args]: one wrk run; prints a row and
# appends "label rps p50 p99 cpu" to $tmp/http.tsv
: >"$tmp/http.tsv"
http_row() {
    local label=$1 expect=$2 url=$3 code before after out rps p50 p99 reqs non2xx cpu
    shift 3
    code=$(curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' "$@" "$url")
    [ "$code" = "$expect" ] || { echo "bench/tokens: $label: HTTP $code, expected $expect" >&2; exit 1; }
    before=$(cpu_ticks)
    out=$(wrk -t1 -c"$CONNS" -d"${WRK_SECONDS}s" --latency "$@" "$url")
    after=$(cpu_ticks)
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    if [ "$expect" = 200 ] && [ -n "$non2xx" ]; then
        echo "bench/tokens: $label: $non2xx responses were not 2xx" >&2
        exit 1
    fi
    cpu=$(awk -v a="$after" -v b="$before" -v r="$reqs" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.1f", (a - b) * 1e6 / hz / r }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$p50" "$p99" "$cpu" >>"$tmp/http.tsv"
}
get_url=$base/cloudresourcemanager/v1/projects/$PROJECT
http_row "GET project, Bearer token" 200 "$get_url" -H "Authorization: Bearer $token"
http_row "GET project, no token (401)" 401 "$get_url"
http_row "tokeninfo (open, no authz)" 200 "$base/oauth2/tokeninfo?access_token=$token"

echo
echo "(a) through wispd (2 workers) on loopback HTTP: wrk -t1 -c$CONNS -d${WRK_SECONDS}s, keep-alive"
printf '%-30s %10s %10s %10s %14s\n' "request" "req/s" "p50 µs" "p99 µs" "wispd CPU µs/req"
awk -F'\t' '{ printf "%-30s %10.0f %10.0f %10.0f %14.1f\n", $1, $2, $3, $4, $5 }' "$tmp/http.tsv"
open_us=$(awk -v ns="$(nsv authn federated)" 'BEGIN { printf "%.2f", ns / 1000 }')
authed_cpu=$(awk -F'\t' 'NR == 1 { print $5 }' "$tmp/http.tsv")
anon_cpu=$(awk -F'\t' 'NR == 2 { print $5 }' "$tmp/http.tsv")
awk -v o="$open_us" -v a="$authed_cpu" -v n="$anon_cpu" 'BEGIN {
    printf "token open + principal (federated token, %.2f µs) is %.1f%% of wispd CPU per authenticated GET (%.1f µs; %.1f µs without a token)\n", o, 100 * o / a, a, n }'

# ---- (b) the cold path ------------------------------------------------------------
# cold_run SECONDS THREADS -> appends cold's lines (+ "cpu THREADS µs/path")
: >"$tmp/cold.tsv"
cold_run() {
    local before after
    before=$(cpu_ticks)
    "$tmp/cold" run "$base" "$token" "$GSA" "$1" "$2" \
        "$kube_api" "$tmp/cluster-ca.pem" "$NS" "$KSA" "$POOL" "$ISSUER" >"$tmp/cold.out"
    after=$(cpu_ticks)
    cat "$tmp/cold.out" >>"$tmp/cold.tsv"
    awk -F'\t' -v t="$2" -v a="$after" -v b="$before" -v hz="$CLK_TCK" \
        '$1 == "path" { printf "cpu\t%s\t%.0f\n", t, (a - b) * 1e6 / hz / $3 }' \
        "$tmp/cold.out" >>"$tmp/cold.tsv"
}
cold_run "$COLD_SECONDS" "$COLD_THREADS"
cold_run "$SERIAL_SECONDS" 1

echo
echo "(b) cold path, one RSA-2048 signature per path: TokenRequest (cluster API, HTTPS) ->"
echo "    STS exchange (RS256 verify + seal) -> generateAccessToken with the federated token (HTTP)"
printf '%-8s %8s %7s %10s %10s %10s %16s\n' "loops" "paths" "errors" "paths/s" "p50 µs" "p99 µs" "wispd CPU µs/path"
awk -F'\t' '$1 == "cpu" { cpu[$2] = $3 }
    $1 == "path" { line[++n] = $0; t[n] = $2 }
    END { for (i = 1; i <= n; i++) { split(line[i], f, "\t")
        printf "%-8s %8s %7s %10.1f %10.0f %10.0f %16s\n", f[2], f[3], f[4], f[6], f[7], f[8], cpu[f[2]] } }' "$tmp/cold.tsv"
awk -F'\t' '$1 == "leg" { printf "  leg %-22s at %2s loops: p50 %8.0f µs  p99 %8.0f µs\n", $3, $2, $4, $5 }' "$tmp/cold.tsv"
cold_rate=$(awk -F'\t' -v t="$COLD_THREADS" '$1 == "path" && $2 == t { print $6; exit }' "$tmp/cold.tsv")
cold_cpu=$(awk -F'\t' -v t="$COLD_THREADS" '$1 == "cpu" && $2 == t { print $3; exit }' "$tmp/cold.tsv")
ratio_cold=$(awk -v c="$cold_rate" -v s="$ossl_sign" 'BEGIN { printf "%.3f", c / s }')
echo "cold paths/s ($COLD_THREADS loops) / openssl rsa2048 sign/s (one core): ${ratio_cold}x $(verdict "$ratio_cold" 0.7)"
# CPU per path does not depend on what else the machine runs: it bounds
# paths/s at (cores x 1e6 / CPU per path) however fast the disk is.
awk -v c="$cold_cpu" -v s="$ossl_sign" -v n="$(nproc)" 'BEGIN {
    printf "wispd CPU per path %.0f µs = %.1f openssl RSA-2048 signatures (%.0f µs each); CPU-bound ceiling %.0f paths/s on %d cores\n",
        c, c * s / 1e6, 1e6 / s, n * 1e6 / c, n }'

# ---- summary ---------------------------------------------------------------------
echo
echo "summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
printf '%-46s %14s %14s %8s  %s\n' "measure" "wisp" "openssl" "ratio" "bound"
awk -v o="$(nsv open federated)" -v v="$ossl_verify" -v r="$ratio_fed" -v vd="$(verdict "$ratio_fed" 10)" \
    'BEGIN { printf "%-46s %14.0f %14.0f %7.2fx  %s\n", "(a) token opens/s vs rsa2048 verify/s, 1 core", 1e9 / o, v, r, vd }'
awk -v o="$(nsv open minted)" -v v="$ossl_verify" -v r="$ratio_min" -v vd="$(verdict "$ratio_min" 10)" \
    'BEGIN { printf "%-46s %14.0f %14.0f %7.2fx  %s\n", "    same, minted token with chain", 1e9 / o, v, r, vd }'
awk -v c="$cold_rate" -v s="$ossl_sign" -v r="$ratio_cold" -v vd="$(verdict "$ratio_cold" 0.7)" -v t="$COLD_THREADS" \
    'BEGIN { printf "%-46s %14.1f %14.0f %7.3fx  %s\n", "(b) cold paths/s (" t " loops) vs rsa2048 sign/s", c, s, r, vd }'
awk -F'\t' '$1 == "path" { printf "%-46s %14s\n", "    p50 / p99 µs at " $2 " loop(s)", sprintf("%.0f / %.0f", $7, $8) }' "$tmp/cold.tsv"
awk -v c="$cold_cpu" -v s="$ossl_sign" \
    'BEGIN { printf "%-46s %14.0f %14.0f %7.1fx\n", "    wispd CPU µs per path vs one rsa2048 sign", c, 1e6 / s, c * s / 1e6 }'
echo "    (b) measures TokenRequest -> STS -> generateAccessToken"
