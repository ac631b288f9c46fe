# Shared by the integration tests: a private wisp per test, the gcloud
# environment `wisp env` prints, checks that count, and cleanup that runs
# even when a test fails. Source it; then call wisp_start.

set -u
WISP_BIN=${WISP_BIN:?set WISP_BIN to the directory holding wisp and wispd}
T_PASS=0
T_FAIL=0
T_STATE=$(mktemp -d /tmp/wisp-it.XXXXXX)

ok() { T_PASS=$((T_PASS + 1)); echo "ok $T_PASS - $*"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $*"; }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# Tools a test needs: under CI they must exist; elsewhere a missing one
# skips the test (exit 77) with a loud reason.
need() {
    for tool in "$@"; do
        if ! command -v "$tool" > /dev/null 2>&1; then
            if [ "${CI:-}" = true ]; then
                echo "FAIL: $tool is required under CI and is missing"; exit 1
            fi
            echo "SKIP: $tool is not installed; this test needs it"; exit 77
        fi
    done
}

# Pods need root (network namespaces): under CI its absence fails the
# test; elsewhere the test is skipped with the reason.
need_root() {
    [ "$(id -u)" = 0 ] && return
    [ "${CI:-}" = true ] && { echo "FAIL: needs root under CI"; exit 1; }
    echo "SKIP: pods need root (network namespaces)"; exit 77
}

# wisp_pool PROJECT: NUM, POOL and PRINCIPAL (the pool's principal prefix)
# of a project wisp serves.
wisp_pool() {
    NUM=$(gcloud projects describe "$1" --format='value(projectNumber)')
    POOL=$1.svc.id.goog
    PRINCIPAL=principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$POOL
}

wisp_cleanup() {
    "$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null 2>&1 || true
    rm -rf "$T_STATE"
}
trap wisp_cleanup EXIT

wisp_start() { # wisp_start PROJECT [wisp up options...]
    local p=$1; shift
    "$WISP_BIN/wisp" up --state "$T_STATE" --project "$p" "$@" > /dev/null || {
        echo "wisp up failed:"; cat "$T_STATE/wispd.log"; exit 1; }
    eval "$("$WISP_BIN/wisp" env --state "$T_STATE")"
}

# wisp_api: API, the HTTPS base of the wisp that wisp_start started, and
# CA, the file of its CA.
wisp_api() {
    local port
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
        "$T_STATE/run/wispd.json")
    API="https://127.0.0.1:$port"
    CA="$T_STATE/ca.pem"
}

# node_inputs: after get-credentials, what a hand-started wisp-node needs
# of its cluster: KAPI, NODE, CIDR, $T_STATE/cluster-ca.pem and
# $T_STATE/owner.token.
node_inputs() {
    KAPI=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
    kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
        base64 -d > "$T_STATE/cluster-ca.pem"
    gcloud auth print-access-token > "$T_STATE/owner.token"
    NODE=$(kubectl get nodes -o jsonpath='{.items[0].metadata.name}')
    CIDR=$(kubectl get node "$NODE" -o jsonpath='{.spec.podCIDR}')
}

# id_verify TOKEN AUDIENCE CERTS_URL EMAIL: Google's own Python verifier
# (google.oauth2.id_token, from the Cloud SDK) accepts the ID token for
# that audience against wisp's published keys, issued to EMAIL.
id_verify() {
    local py=/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3
    [ -x "$py" ] || py=python3
    "$py" - "$@" <<'PY'
import sys
sys.path.insert(0, "/usr/lib/google-cloud-sdk/lib/third_party")
import requests
import google.auth.transport.requests as tr
from google.oauth2 import id_token
claims = id_token.verify_token(sys.argv[1], tr.Request(session=requests.Session()),
                               audience=sys.argv[2], certs_url=sys.argv[3])
assert claims["iss"] == "https://accounts.google.com", claims
assert claims["email_verified"] is True and claims["email"] == sys.argv[4], claims
assert claims["exp"] - claims["iat"] == 3600
PY
}

# jwt_claim JWT PYEXPR: PYEXPR evaluated on the token's (unverified)
# claims c, e.g. jwt_claim "$T" 'c["aud"]'.
jwt_claim() {
    python3 -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
print(eval(sys.argv[2]))' "$1" "$2"
}

wispd_pid() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
        "$T_STATE/run/wispd.json"
}

wisp_done() {
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ] && [ "$T_PASS" -gt 0 ]
}
