#!/usr/bin/env bash
# The seed's walkthrough in real pods (wisp up --nodes, root): a pod asks
# 169.254.169.254 for a token and lists a bucket, exactly as on GKE. Both
# paths (principal identifiers; a linked IAM service account, which needs
# roles/iam.workloadIdentityUser), a KSA of the same name in another
# namespace, revocation by removing the binding, and `wisp down` leaving no
# namespace or process behind.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl curl python3
need_root

P=wisp-it-seed
L=us-central1
wisp_start $P --nodes
wisp_pool $P
GSA=seed-gsa@$P.iam.gserviceaccount.com

# A pod that does what the seed does by hand in its shell, then sleeps.
pod() { # pod NS NAME KSA
    kubectl apply -f - > /dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $2, namespace: $1}
spec:
  serviceAccountName: $3
  containers:
  - name: $2
    image: google/cloud-sdk:slim
    command: ["sh", "-c", "curl -sS -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/email; echo; T=\$(curl -sS -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token | python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"access_token\",\"none\"))' 2>/dev/null); curl -sS -H \"Authorization: Bearer \$T\" https://storage.googleapis.com/storage/v1/b/seed-b/o; echo; echo DONE; sleep infinity"]
  nodeSelector: {iam.gke.io/gke-metadata-server-enabled: "true"}
YAML
}
log_of() { # log_of NS NAME: waits for the pod's output, prints it
    local uid f
    for _ in $(seq 1 100); do
        uid=$(kubectl get pod "$2" -n "$1" -o jsonpath='{.metadata.uid}' 2> /dev/null)
        f=$(ls "$T_STATE"/nodes/*/*/pods/"$uid"/"$2".log 2> /dev/null | head -1)
        [ -n "$uid" ] && [ -n "$f" ] && grep -q DONE "$f" && { cat "$f"; return; }
        sleep 0.2
    done
    echo "no output from $1/$2"
}
lists() { log_of "$1" "$2" | grep -qF '{"kind": "storage#objects"}' ||
          log_of "$1" "$2" | grep -qF '"kind":"storage#objects"'; }
denied() { log_of "$1" "$2" | grep -q '"code": *403'; }

check "cluster with a workload pool" \
    gcloud container clusters create std --location=$L --workload-pool=$POOL --num-nodes=1 --quiet
check "get-credentials" gcloud container clusters get-credentials std --location=$L
kubectl create namespace ns-a > /dev/null && kubectl create serviceaccount app -n ns-a > /dev/null
kubectl create namespace ns-b > /dev/null && kubectl create serviceaccount app -n ns-b > /dev/null
gcloud storage buckets create gs://seed-b --quiet > /dev/null 2>&1
check "bind the KSA's principal on the bucket" gcloud storage buckets add-iam-policy-binding \
    gs://seed-b --role=roles/storage.objectViewer --member="$PRINCIPAL/subject/ns/ns-a/sa/app" \
    --condition=None

pod ns-a p1 app
check "the pod runs on a labelled node" \
    test "$(kubectl wait --for=jsonpath='{.status.phase}'=Running pod/p1 -n ns-a --timeout=30s \
        > /dev/null && echo ok)" = ok
check "the metadata server names the pool when no GSA is linked" \
    sh -c "$(declare -f log_of); T_STATE=$T_STATE log_of ns-a p1 | grep -qx $POOL"
check "and its token lists the bucket: {\"kind\": \"storage#objects\"}" lists ns-a p1
pod ns-b p2 app
check "a KSA of the same name in another namespace is denied" denied ns-b p2

# The linked-GSA path.
gcloud iam service-accounts create seed-gsa --quiet > /dev/null 2>&1
gcloud storage buckets add-iam-policy-binding gs://seed-b --role=roles/storage.objectViewer \
    --member="serviceAccount:$GSA" --condition=None > /dev/null 2>&1
kubectl annotate serviceaccount app -n ns-b iam.gke.io/gcp-service-account=$GSA > /dev/null
pod ns-b p3 app
check "linked to a GSA, the pod's email is the GSA" \
    sh -c "$(declare -f log_of); T_STATE=$T_STATE log_of ns-b p3 | grep -qx $GSA"
check "without roles/iam.workloadIdentityUser it gets no GSA token" \
    sh -c "$(declare -f log_of); T_STATE=$T_STATE log_of ns-b p3 | grep -q '\"code\": *401\\|code.: 401'"
check "grant workloadIdentityUser to serviceAccount:POOL[ns-b/app]" \
    gcloud iam service-accounts add-iam-policy-binding $GSA --role=roles/iam.workloadIdentityUser \
    --member="serviceAccount:$POOL[ns-b/app]" --condition=None
pod ns-b p4 app
check "now the GSA's token lists the bucket" lists ns-b p4

# Revocation: removing the binding takes effect on the next call.
gcloud storage buckets remove-iam-policy-binding gs://seed-b --role=roles/storage.objectViewer \
    --member="$PRINCIPAL/subject/ns/ns-a/sa/app" > /dev/null 2>&1
pod ns-a p5 app
check "after remove-iam-policy-binding the KSA is denied" denied ns-a p5

# Nothing stays behind.
PREFIX=$(sed -n 's/^prefix //p' "$T_STATE/run/nodes")
check "wisp down" "$WISP_BIN/wisp" down --state "$T_STATE"
check "no namespace left ($PREFIX*)" test -z "$(ip netns list | grep "^$PREFIX")"
check "no node process left" test -z "$(pgrep -f "wisp-node run .*$T_STATE" || true)"
wisp_done
