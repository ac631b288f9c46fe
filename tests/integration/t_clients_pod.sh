#!/usr/bin/env bash
# Google's own clients, unconfigured, inside real pods (wisp up --nodes,
# root): gcloud finds the metadata server by itself and the seed's curl with
# its token lists the bucket; the Cloud SDK's bundled Python google-auth
# (google.auth.default) and the npm google-auth-library, gcp-metadata and
# @google-cloud/storage list and read the bucket's object. No pod gets
# GCE_METADATA_*, GOOGLE_* or CLOUDSDK_* variables. What the node agent
# does add names the pod's own CA bundle (/etc/ssl/certs/ca-certificates.crt,
# the host's roots + wisp's CA) to runtimes that carry their own roots
# instead of reading the system's: requests' certifi (REQUESTS_CA_BUNDLE)
# and Node's compiled-in roots (NODE_EXTRA_CA_CERTS). On GKE those built-in
# roots already hold Google's CAs; wisp's CA cannot be in them.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl curl python3 node npm
need_root

CLIENTS=$(cd "$here/../clients" && pwd)
# The Node libraries come from npm's registry once (package-lock.json pins
# them); a later run uses what is installed and never touches the network.
if [ ! -d "$CLIENTS/node/node_modules" ]; then
    (cd "$CLIENTS/node" && { npm ci --offline --no-audit --no-fund > /dev/null 2>&1 ||
                             npm ci --no-audit --no-fund > /dev/null; }) || {
        echo "FAIL: npm ci in $CLIENTS/node"; exit 1; }
fi

P=wisp-it-clients
L=us-central1
B=clients-b
BYTES='hello from wisp'
wisp_start $P --nodes
wisp_pool $P
SDK_PY=$(gcloud info --format='value(basic.python_location)')
SDK_ROOT=$(gcloud info --format='value(installation.sdk_root)')

pod() { # pod NAME COMMAND [ENV-NAME ENV-VALUE]: runs COMMAND, then DONE
    local cmd env=""
    cmd=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' \
        "env | sed 's/^/env: /'; $2; echo; echo DONE; sleep infinity")
    [ $# -ge 4 ] && env="env: [{name: $3, value: \"$4\"}]"
    kubectl apply -f - > /dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: ns-c}
spec:
  serviceAccountName: app
  containers:
  - name: $1
    image: google/cloud-sdk:slim
    command: ["sh", "-c", $cmd]
    $env
  nodeSelector: {iam.gke.io/gke-metadata-server-enabled: "true"}
YAML
}
log_of() { # log_of NAME: waits for the pod's output, prints it
    local uid f
    for _ in $(seq 1 300); do
        uid=$(kubectl get pod "$1" -n ns-c -o jsonpath='{.metadata.uid}' 2> /dev/null)
        f=$(ls "$T_STATE"/nodes/*/*/pods/"$uid"/"$1".log 2> /dev/null | head -1)
        [ -n "$uid" ] && [ -n "$f" ] && grep -q '^DONE' "$f" && { cat "$f"; return; }
        sleep 0.2
    done
    echo "no output from ns-c/$1"
}
has() { grep -q -- "$2" "$T_STATE/$1.out"; }      # has POD REGEX
hasx() { grep -qxF -- "$2" "$T_STATE/$1.out"; }   # has POD EXACT-LINE
# env_is POD: the pod's environment is what the node agent gives every
# container (PATH, HOME, HOSTNAME, the two CA-bundle names; sh adds PWD):
# nothing that configures Google auth or the metadata server's address.
env_is() {
    local want got
    want=$(printf '%s\n' HOME HOSTNAME PATH PWD REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS |
        sort | tr '\n' ' ')
    got=$(sed -n 's/^env: \([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$T_STATE/$1.out" | sort | tr '\n' ' ')
    [ "$got" = "$want" ] || { echo "$1's environment: $got(expected $want)"; return 1; }
}

check "cluster with a workload pool" \
    gcloud container clusters create std --location=$L --workload-pool=$POOL --num-nodes=1 --quiet
check "get-credentials" gcloud container clusters get-credentials std --location=$L
kubectl create namespace ns-c > /dev/null && kubectl create serviceaccount app -n ns-c > /dev/null
gcloud storage buckets create gs://$B --quiet > /dev/null 2>&1
printf '%s\n' "$BYTES" > "$T_STATE/obj.txt"
check "the owner uploads an object" gcloud storage cp "$T_STATE/obj.txt" gs://$B/obj.txt
check "bind the KSA's principal on the bucket" gcloud storage buckets add-iam-policy-binding \
    gs://$B --role=roles/storage.objectViewer --member="$PRINCIPAL/subject/ns/ns-c/sa/app" \
    --condition=None

# 1. gcloud and the seed's curl, exactly as typed in the seed's pod shell.
pod gc "getent ahosts metadata.google.internal. | head -1 | sed 's/^/dotted: /';
 gcloud auth print-access-token | cut -c1-8 | sed 's/^/token: /';
 curl -X GET -H \"Authorization: Bearer \$(gcloud auth print-access-token)\" \"https://storage.googleapis.com/storage/v1/b/$B/o\""
# 2. The Cloud SDK's bundled Python and its google-auth.
pod py "PYTHONPATH=$SDK_ROOT/lib/third_party $SDK_PY $CLIENTS/python/adc.py $B obj.txt 2>&1"
# 3. Node: google-auth-library, gcp-metadata, @google-cloud/storage.
pod nd "cd $CLIENTS/node && node list.js $B obj.txt 2>&1"
for p in gc py nd; do log_of $p > "$T_STATE/$p.out"; done

check "gcloud's pod: no GCE_METADATA_*, GOOGLE_* or CLOUDSDK_* variables" env_is gc
check "metadata.google.internal. (gcp-metadata's host, with its dot) resolves in a pod" \
    has gc '^dotted: 169\.254\.169\.254 '
check "gcloud auth print-access-token in the pod prints a token" has gc '^token: ya29\.'
check "the seed's curl with that token lists the object" \
    has gc '"kind": *"storage#objects".*"name": *"obj.txt"'

check "the Python pod: the same environment" env_is py
check "google.auth.default() gives compute_engine credentials" \
    hasx py "credentials: google.auth.compute_engine.credentials.Credentials"
check "and the project from the metadata server" hasx py "project: $P"
check "AuthorizedSession lists the bucket" hasx py "names: obj.txt"
check "and reads the object's bytes (alt=media)" \
    hasx py "media: 200 b'$BYTES\\n'"

check "the Node pod: the same environment" env_is nd
check "gcp-metadata finds the metadata server" hasx nd "metadata available: true"
check "GoogleAuth().getAccessToken() returns a token" has nd '^token: ya29\.'
check "GoogleAuth().getProjectId() is the project" hasx nd "auth project: $P"
check "new Storage(): getFiles() names the object" hasx nd "files: obj.txt"
check "and file.download() returns its bytes" hasx nd "bytes: \"$BYTES\\n\""
check "no MetadataLookupWarning" sh -c "! grep -q MetadataLookupWarning '$T_STATE/nd.out'"

if [ "$T_FAIL" -gt 0 ]; then
    for p in gc py nd; do echo "--- $p"; grep -v '^env: ' "$T_STATE/$p.out"; done
fi
check "wisp down" "$WISP_BIN/wisp" down --state "$T_STATE"
wisp_done
