#!/usr/bin/env bash
# GCE_METADATA node pools (wisp up --nodes, root): in a cluster with a
# workload pool, the same KSA runs one pod on the default GKE_METADATA pool
# and one on a pool created with --workload-metadata=GCE_METADATA. The
# second pod gets the node's identity (the Compute Engine default account),
# never the KSA's, with the pool's scopes and ID tokens of that account;
# the first the KSA's principal. A killed wisp-metadata is
# restarted by the supervisor and serves again; `wisp down` leaves nothing.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl curl python3
need_root

P=wisp-it-gcepool
L=us-central1
wisp_start $P --nodes
wisp_pool $P
NODE_SA=$NUM-compute@developer.gserviceaccount.com
MD=http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default

# A pod on node pool $2 that prints its email, then what its token gets
# from the KSA's bucket and from the node account's bucket.
pod() { # pod NAME NODEPOOL
    kubectl apply -f - > /dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: ns-a}
spec:
  serviceAccountName: app
  containers:
  - name: $1
    image: google/cloud-sdk:slim
    command: ["sh", "-c", "curl -sS -H 'Metadata-Flavor: Google' $MD/email; echo; T=\$(curl -sS -H 'Metadata-Flavor: Google' $MD/token | python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"access_token\",\"none\"))' 2>/dev/null); echo KSA-BUCKET; curl -sS -H \"Authorization: Bearer \$T\" https://storage.googleapis.com/storage/v1/b/gp-ksa/o; echo; echo NODE-BUCKET; curl -sS -H \"Authorization: Bearer \$T\" https://storage.googleapis.com/storage/v1/b/gp-node/o; echo; echo DONE; sleep infinity"]
  nodeSelector: {cloud.google.com/gke-nodepool: $2}
YAML
}
log_of() { # log_of NAME: waits for the pod's output, prints it
    local uid f
    for _ in $(seq 1 150); do
        uid=$(kubectl get pod "$1" -n ns-a -o jsonpath='{.metadata.uid}' 2> /dev/null)
        f=$(ls "$T_STATE"/nodes/*/*/pods/"$uid"/"$1".log 2> /dev/null | head -1)
        [ -n "$uid" ] && [ -n "$f" ] && grep -q DONE "$f" && { cat "$f"; return; }
        sleep 0.2
    done
    echo "no output from $1"
}
# What bucket $2 ("KSA" or "NODE") answered pod $1: "lists" or "denied".
answer() {
    log_of "$1" | sed -n "/^$2-BUCKET\$/{n;p}" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read() or "{}")
print("lists" if d.get("kind") == "storage#objects" else
      "denied" if d.get("error", {}).get("code") in (401, 403) else "other")'
}
is() { [ "$($1 "$2" ${3:-})" = "$4" ]; } # is FN POD [ARG] WANT
quiet() { "$@" > /dev/null 2>&1; }
email_of() { log_of "$1" | head -1; }

check "cluster with a workload pool" \
    gcloud container clusters create std --location=$L --workload-pool=$POOL --num-nodes=1 --quiet
check "node pool with --workload-metadata=GCE_METADATA" \
    gcloud container node-pools create gce --cluster=std --location=$L --num-nodes=1 \
    --workload-metadata=GCE_METADATA --scopes=storage-ro,logging-write --quiet
check "get-credentials" gcloud container clusters get-credentials std --location=$L
kubectl create namespace ns-a > /dev/null && kubectl create serviceaccount app -n ns-a > /dev/null

# The supervisor creates the pool's account (GKE's default: Compute Engine's).
for _ in $(seq 1 50); do
    gcloud iam service-accounts describe "$NODE_SA" > /dev/null 2>&1 && break
    sleep 0.2
done
check "the GCE pool's nodes run as $NODE_SA" quiet \
    gcloud iam service-accounts describe "$NODE_SA" --format='value(email)'
gcloud storage buckets create gs://gp-ksa gs://gp-node --quiet > /dev/null 2>&1
check "bind the KSA's principal on gp-ksa" quiet gcloud storage buckets add-iam-policy-binding \
    gs://gp-ksa --role=roles/storage.objectViewer --member="$PRINCIPAL/subject/ns/ns-a/sa/app" \
    --condition=None
check "bind the node account on gp-node" quiet gcloud storage buckets add-iam-policy-binding \
    gs://gp-node --role=roles/storage.objectViewer --member="serviceAccount:$NODE_SA" \
    --condition=None

pod on-gke default-pool
pod on-gce gce
check "both pods run" test "$(kubectl wait --for=jsonpath='{.status.phase}'=Running \
    pod/on-gke pod/on-gce -n ns-a --timeout=60s > /dev/null && echo ok)" = ok
check "GCE pool: the pod's email is the node account" is email_of on-gce "" "$NODE_SA"
check "GCE pool: its token is denied on the KSA's bucket" is answer on-gce KSA denied
check "GCE pool: its token lists the node account's bucket" is answer on-gce NODE lists
check "GKE pool: the pod's email is the workload pool" is email_of on-gke "" "$POOL"
check "GKE pool: its token lists the KSA's bucket" is answer on-gke KSA lists
check "GKE pool: its token is denied on the node account's bucket" is answer on-gke NODE denied
md_get() { kubectl exec "$1" -n ns-a -- curl -sS -H 'Metadata-Flavor: Google' "$MD/$2"; }
check "GCE pool: scopes are the pool's oauthScopes" test "$(md_get on-gce scopes)" = \
    "$(printf '%s\n' https://www.googleapis.com/auth/devstorage.read_only \
        https://www.googleapis.com/auth/logging.write)"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
IDT=$(md_get on-gce 'identity?audience=https://gce.example&format=full')
check "GCE pool: an ID token of the node account that google.oauth2 verifies" \
    id_verify "$IDT" https://gce.example "https://127.0.0.1:$PORT/oauth2/v1/certs" "$NODE_SA"
GCE_NODE=$(kubectl get pod on-gce -n ns-a -o jsonpath='{.spec.nodeName}')
check "format=full: google.compute_engine names the node and project" test "$(jwt_claim "$IDT" \
    '[c["google"]["compute_engine"][k] for k in ("instance_name", "project_id", "zone")]')" = \
    "['$GCE_NODE', '$P', '$L-a']"
check "format=full: the instance id is the metadata server's instance/id" test "$(jwt_claim \
    "$IDT" 'c["google"]["compute_engine"]["instance_id"]')" = "$(md_get on-gce ../../id)"
IDS=$(md_get on-gce 'identity?audience=https://gce.example')
check "format=standard: no instance claims" test "$(jwt_claim "$IDS" '"google" in c')" = False
check "GKE pool: scopes are cloud-platform" test "$(md_get on-gke scopes)" = \
    https://www.googleapis.com/auth/cloud-platform
check "the node key is one user-managed key of the account" test "$(gcloud iam \
    service-accounts keys list --iam-account="$NODE_SA" --managed-by=user --format='value(name)' |
    wc -l)" = 1
check "its file is 0600" test "$(stat -c %a "$T_STATE"/nodes/*/node-sa-gce.json)" = 600

# The supervisor brings a killed metadata server back.
md_pid() { sed -n "s/^pid \([0-9]*\) md-$1 .*/\1/p" "$T_STATE/run/nodes" | head -1; }
OLD=$(md_pid gke)
check "the GKE pool's wisp-metadata is recorded in run/nodes" test -n "$OLD"
kill -9 "$OLD"
NEW=
for _ in $(seq 1 50); do
    NEW=$(md_pid gke)
    [ -n "$NEW" ] && [ "$NEW" != "$OLD" ] && break
    sleep 0.2
done
check "a new wisp-metadata runs ($OLD -> $NEW)" test -n "$NEW" -a "$NEW" != "$OLD"
check "the supervisor logged the restart" grep -q "md-gke .*killed by signal 9; restart in" \
    "$T_STATE/wispd.log"
token_again() {
    for _ in $(seq 1 30); do
        kubectl exec on-gke -n ns-a -- curl -sS -H 'Metadata-Flavor: Google' "$MD/token" \
            2> /dev/null | grep -q '"access_token"' && return 0
        sleep 0.3
    done
    return 1
}
check "the pod's next token request succeeds" token_again
OLD=$(md_pid gce)
kill -9 "$OLD"
gce_again() {
    for _ in $(seq 1 30); do
        [ "$(kubectl exec on-gce -n ns-a -- curl -sS -H 'Metadata-Flavor: Google' "$MD/email" \
            2> /dev/null)" = "$NODE_SA" ] && return 0
        sleep 0.3
    done
    return 1
}
check "a killed GCE-mode wisp-metadata comes back too" gce_again

# A killed node agent: its pods die with it (PDEATHSIG); the supervisor
# clears what it left, starts it again, and it starts the node's pods anew.
agent_pid() { sed -n "s/^pid \([0-9]*\) node .*-gce-.*/\1/p" "$T_STATE/run/nodes" | head -1; }
OLD=$(agent_pid)
kill -9 "$OLD"
check "a killed wisp-node comes back with its pod and metadata server" gce_again

# Nothing stays behind.
PREFIX=$(sed -n 's/^prefix //p' "$T_STATE/run/nodes")
check "wisp down" "$WISP_BIN/wisp" down --state "$T_STATE"
check "no namespace left ($PREFIX*)" test -z "$(ip netns list | grep "^$PREFIX")"
check "no node or metadata process left" \
    test -z "$(pgrep -f "wisp-(node run|metadata) .*$T_STATE" || true)"
check "no node key file left" test -z "$(ls "$T_STATE"/nodes/*/node-sa-* 2> /dev/null)"
wisp_done
