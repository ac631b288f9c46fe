#!/usr/bin/env bash
# The Kubernetes API of a cluster through the real kubectl (1.32 through the
# Cloud SDK's dispatcher, and 1.27): the seed's commands verbatim after
# get-credentials, apply/re-apply, Table output, watches with resume,
# TokenRequest into STS and a bucket (issue 4's end-to-end path), Autopilot's
# refusal of the seed's nodeSelector, and Kubernetes Status errors.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl curl python3

P=wisp-it-kube
L=us-central1
wisp_start "$P"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
API="https://127.0.0.1:$PORT"
CA="$T_STATE/ca.pem"
NUM=$(gcloud projects describe "$P" --format='value(projectNumber)')
POOL="$P.svc.id.goog"
PRINCIPAL="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$POOL"
OUT="$T_STATE/out"

fails_with() { # fails_with TEXT cmd...
    local text=$1; shift
    ! "$@" > "$OUT" 2>&1 && grep -qF -- "$text" "$OUT"
}
says() { # says TEXT cmd...
    local text=$1; shift
    "$@" > "$OUT" 2>&1 && grep -qF -- "$text" "$OUT"
}
kcurl() { # kcurl METHOD PATH [BODY] -> HTTP code; body in $OUT. Cluster endpoint, owner token.
    local data=()
    [ -n "${3-}" ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
    curl -sS --cacert "$KCA" -o "$OUT" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer ${KTOK:-$TOKEN}" "${data[@]}" "$KAPI$2"
}
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$OUT" "$1"; }

check "create a Standard cluster with a workload pool" \
    gcloud container clusters create std --location=$L --workload-pool=$POOL --quiet
check "a second pool that opts out (GCE_METADATA)" \
    gcloud container node-pools create plain --cluster=std --location=$L \
    --workload-metadata=GCE_METADATA --num-nodes=1 --quiet
check "get-credentials --location" gcloud container clusters get-credentials std --location=$L
TOKEN=$(gcloud auth print-access-token)
KAPI=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
    base64 -d > "$T_STATE/cluster-ca.pem"
KCA="$T_STATE/cluster-ca.pem"
check "the endpoint is the cluster's own, not the Google APIs' port" \
    test "$KAPI" != "https://127.0.0.1:$PORT"
check "its certificate chains to the cluster CA only" \
    fails_with "certificate" curl -sS --cacert "$CA" "$KAPI/version"
check "kubectl reaches the server through the auth plugin (1.32 chosen)" \
    says "Server Version: v1.32" kubectl version

# The seed, verbatim.
check "kubectl create namespace (protobuf body)" says "namespace/ns-a created" \
    kubectl create namespace ns-a
check "kubectl create serviceaccount" says "serviceaccount/app created" \
    kubectl create serviceaccount app --namespace ns-a
check "kubectl annotate serviceaccount" says "serviceaccount/app annotated" \
    kubectl annotate serviceaccount app --namespace ns-a \
    iam.gke.io/gcp-service-account=gsa@$P.iam.gserviceaccount.com
check "get sa -o yaml shows the annotation" \
    says "iam.gke.io/gcp-service-account: gsa@$P.iam.gserviceaccount.com" \
    kubectl get sa app -n ns-a -o yaml
check "each namespace has a default ServiceAccount" says "default" \
    kubectl get serviceaccounts -n ns-a
cat > "$T_STATE/test-app.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: test-pod
  namespace: ns-a
spec:
  serviceAccountName: app
  containers:
  - name: test-pod
    image: google/cloud-sdk:slim
    command: ["sleep","infinity"]
    resources:
      requests:
        cpu: 500m
        memory: 512Mi
        ephemeral-storage: 10Mi
  nodeSelector:
    iam.gke.io/gke-metadata-server-enabled: "true"
YAML
check "kubectl apply -f test-app.yaml" says "pod/test-pod created" \
    kubectl apply -f "$T_STATE/test-app.yaml"
check "kubectl get pods --namespace shows it in a Table" \
    says "test-pod" kubectl get pods --namespace=ns-a
grep -q "^NAME *READY *STATUS *RESTARTS *AGE" "$OUT" && ok "Table columns" || not_ok "Table columns"
NODE=$(kubectl get pod test-pod -n ns-a -o jsonpath='{.spec.nodeName}')
check "bound to a node of the GKE_METADATA pool ($NODE)" \
    test "$(kubectl get node "$NODE" -o jsonpath='{.metadata.labels.iam\.gke\.io/gke-metadata-server-enabled}')" = true
check "and never to the opted-out pool" \
    test "$(kubectl get node "$NODE" -o jsonpath='{.metadata.labels.cloud\.google\.com/gke-nodepool}')" = default-pool
check "nodes list with pool labels" says "gke-std-plain" kubectl get nodes
check "field selector spec.nodeName" says "test-pod" \
    kubectl get pods -n ns-a --field-selector spec.nodeName="$NODE"
check "re-apply unchanged" says "pod/test-pod unchanged" kubectl apply -f "$T_STATE/test-app.yaml"
sed -i 's|google/cloud-sdk:slim|google/cloud-sdk:alpine|' "$T_STATE/test-app.yaml"
check "re-apply changed (image: strategic merge patch)" says "pod/test-pod configured" \
    kubectl apply -f "$T_STATE/test-app.yaml"
check "the change is stored" test "$(kubectl get pod test-pod -n ns-a \
    -o jsonpath='{.spec.containers[0].image}')" = google/cloud-sdk:alpine
sed -i 's|"sleep","infinity"|"sleep","1"|' "$T_STATE/test-app.yaml"
check "a forbidden pod change is refused as Invalid" \
    fails_with "pod updates may not change fields" kubectl apply -f "$T_STATE/test-app.yaml"
check "kubectl label (merge patch)" kubectl label pod test-pod -n ns-a tier=web
check "label selector" says "test-pod" kubectl get pods -n ns-a -l tier=web
check "label selector that matches nothing" says "No resources found" \
    kubectl get pods -n ns-a -l tier=db

# Errors are Kubernetes Status objects kubectl can print.
check "NotFound" fails_with 'pods "nope" not found' kubectl get pod nope -n ns-a
check "AlreadyExists" fails_with 'namespaces "ns-a" already exists' kubectl create namespace ns-a
check "a namespace that does not exist" fails_with 'namespaces "ns-z" not found' \
    kubectl create serviceaccount x -n ns-z
check "an invalid name" fails_with "is invalid" kubectl create namespace Bad_Name
check "a pod whose ServiceAccount is missing" fails_with 'serviceaccount "ghost" not found' \
    kubectl run ghost -n ns-a --image=x --overrides='{"spec":{"serviceAccountName":"ghost"}}'
check "strict field validation" fails_with 'unknown field "spec.bogus"' \
    kubectl apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: strict, namespace: ns-a}
spec: {bogus: 1, containers: [{name: c, image: x}]}
YAML

# Watches: every change in order, and resume from a resourceVersion.
check "list" test "$(kcurl GET /api/v1/namespaces/ns-a/pods)" = 200
RV=$(jq_ 'd["metadata"]["resourceVersion"]')
kubectl run w1 -n ns-a --image=x --overrides='{"spec":{"serviceAccountName":"app"}}' > /dev/null
kubectl label pod w1 -n ns-a step=2 > /dev/null
kubectl delete pod w1 -n ns-a > /dev/null
curl -sS --cacert "$KCA" -H "Authorization: Bearer $TOKEN" -o "$OUT" \
    "$KAPI/api/v1/namespaces/ns-a/pods?watch=1&resourceVersion=$RV&timeoutSeconds=2"
check "a watch resumed from a resourceVersion sees ADDED, MODIFIED, DELETED in order" \
    test "$(python3 -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(" ".join(e["type"] for e in ev if e["object"]["metadata"]["name"]=="w1"))' "$OUT")" \
    = "ADDED MODIFIED DELETED"
check "resourceVersions in a watch increase" python3 -c '
import json,sys
rv=[int(json.loads(l)["object"]["metadata"]["resourceVersion"]) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if rv == sorted(rv) and len(rv) >= 3 else 1)' "$OUT"
kubectl get pods -n ns-a -w --output-watch-events > "$T_STATE/watch.out" 2>&1 &
WPID=$!
sleep 2
kubectl run w2 -n ns-a --image=x --overrides='{"spec":{"serviceAccountName":"app"}}' > /dev/null
kubectl delete pod w2 -n ns-a > /dev/null
sleep 1
kill "$WPID" 2> /dev/null; wait "$WPID" 2> /dev/null
check "kubectl get -w prints the events" grep -q "DELETED *w2" "$T_STATE/watch.out"

# TokenRequest -> STS -> a bucket, with per-namespace principals.
KSA=$(kubectl create token app -n ns-a --audience="$POOL" --bound-object-kind=Pod \
    --bound-object-name=test-pod 2> "$OUT")
check "TokenRequest bound to the pod" test -n "$KSA"
check "a token bound to a pod of another ServiceAccount is refused" \
    fails_with "runs as ServiceAccount app" kubectl create token default -n ns-a \
    --bound-object-kind=Pod --bound-object-name=test-pod
sts() {
    curl -sS --cacert "$CA" -o "$OUT" -w '%{http_code}' "$API/sts/v1/token" \
        --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
        --data-urlencode "audience=identitynamespace:$POOL:https://container.googleapis.com/v1/projects/$P/locations/$L/clusters/std" \
        --data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:jwt \
        --data-urlencode requested_token_type=urn:ietf:params:oauth:token-type:access_token \
        --data-urlencode scope=https://www.googleapis.com/auth/cloud-platform \
        --data-urlencode "subject_token=$1"
}
check "STS exchanges the KSA token" test "$(sts "$KSA")" = 200
FED=$(jq_ 'd["access_token"]')
gcloud storage buckets create gs://kube-a gs://kube-b --quiet > /dev/null 2>&1
gcloud storage buckets add-iam-policy-binding gs://kube-a --role=roles/storage.objectViewer \
    --member="$PRINCIPAL/subject/ns/ns-a/sa/app" --condition=None > /dev/null 2>&1
gcloud storage buckets add-iam-policy-binding gs://kube-b --role=roles/storage.objectViewer \
    --member="$PRINCIPAL/subject/ns/ns-b/sa/app" --condition=None > /dev/null 2>&1
list() { curl -sS --cacert "$CA" -o "$OUT" -w '%{http_code}' -H "Authorization: Bearer $FED" \
    "$API/storage/v1/b/$1/o"; }
check "the federated token lists the bucket bound to ns-a/app" test "$(list kube-a)" = 200
check "and not the one bound to ns-b/app" test "$(list kube-b)" = 403
gcloud storage buckets add-iam-policy-binding gs://kube-b --role=roles/storage.objectViewer \
    --member="principalSet://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$POOL/namespace/ns-a" \
    --condition=None > /dev/null 2>&1
check "a principalSet for namespace ns-a grants it" test "$(list kube-b)" = 200
check "deleting the pod voids its bound token at STS" kubectl delete pod test-pod -n ns-a
check "STS refuses it now" test "$(sts "$KSA")" = 400
grep -q "no longer exists" "$OUT" && ok "saying why" || not_ok "saying why: $(cat "$OUT")"

# Who may do what: IAM container.* permissions, denials as Status.
gcloud iam service-accounts create viewer --quiet > /dev/null 2>&1
gcloud projects add-iam-policy-binding "$P" --role=roles/container.clusterViewer \
    --member="serviceAccount:viewer@$P.iam.gserviceaccount.com" --condition=None > /dev/null 2>&1
VTOK=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"scope":["https://www.googleapis.com/auth/cloud-platform"]}' \
    "$API/iamcredentials/v1/projects/-/serviceAccounts/viewer@$P.iam.gserviceaccount.com:generateAccessToken" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
check "clusterViewer cannot create pods" \
    test "$(KTOK=$VTOK kcurl POST /api/v1/namespaces/ns-a/pods '{"metadata":{"name":"v"},"spec":{"containers":[{"name":"c","image":"x"}]}}')" = 403
check "the denial is a Status naming user, verb and permission" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
sys.exit(0 if d["kind"]=="Status" and "viewer@" in d["message"] and "cannot create" in d["message"]
         and "container.pods.create" in d["message"] else 1)' "$OUT"
check "no token at all is 401" test "$(KTOK=x kcurl GET /api/v1/namespaces)" = 401

# Older kubectl beside it, in the Cloud SDK's bin directory. 1.29 runs the
# whole flow; 1.27 and 1.28 validate apply against OpenAPI v2 in gnostic
# protobuf, which wisp does not serve (docs/internals/KUBE.md), so their
# apply needs --validate=false.
SDKBIN=$(dirname "$(readlink -f "$(command -v gcloud)")")
for v in 1.29 1.27; do
    OLD=$SDKBIN/kubectl.$v
    ns=ns-old-${v/./-}
    check "kubectl $v create namespace" says "namespace/$ns created" "$OLD" create namespace $ns
    check "kubectl $v create serviceaccount" says "serviceaccount/app created" \
        "$OLD" create serviceaccount app -n $ns
    validate=()
    [ $v = 1.27 ] && validate=(--validate=false)
    check "kubectl $v apply" says "pod/test-pod created" "$OLD" apply "${validate[@]}" -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: test-pod, namespace: $ns}
spec:
  serviceAccountName: app
  containers: [{name: test-pod, image: google/cloud-sdk:slim, command: ["sleep","infinity"]}]
  nodeSelector: {iam.gke.io/gke-metadata-server-enabled: "true"}
YAML
    check "kubectl $v get pods" says "test-pod" "$OLD" get pods -n $ns
    check "kubectl $v delete" says "deleted" "$OLD" delete namespace $ns
done

# Autopilot refuses the seed's nodeSelector; Standard accepted it above.
check "create-auto" gcloud container clusters create-auto ap --location=$L --quiet
check "get-credentials for it" gcloud container clusters get-credentials ap --location=$L
kubectl create namespace ns-a > /dev/null && kubectl create serviceaccount app -n ns-a > /dev/null
sed -i 's|"sleep","1"|"sleep","infinity"|' "$T_STATE/test-app.yaml"
check "Autopilot refuses the manifest with the nodeSelector" \
    fails_with "autogke-node-affinity-selector-limitation" kubectl apply -f "$T_STATE/test-app.yaml"
sed -i '/nodeSelector/,$d' "$T_STATE/test-app.yaml"
check "and accepts it without" says "pod/test-pod created" kubectl apply -f "$T_STATE/test-app.yaml"

check "delete namespace takes its objects along" kubectl delete namespace ns-a
check "deleting the cluster closes its endpoint" \
    gcloud container clusters delete ap --location=$L --quiet
check "the endpoint is gone" fails_with "" kubectl get namespaces --request-timeout=5s
wisp_done
