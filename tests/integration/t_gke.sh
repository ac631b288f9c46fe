#!/usr/bin/env bash
# GKE (Container API v1) through the real gcloud: every `gcloud container`
# command of the seed verbatim (create with --workload-pool, update
# --workload-pool, node-pools create/update --workload-metadata, disable
# without a location flag, get-credentials), Autopilot, the rules of
# Workload Identity Federation for GKE, the organization policy that
# forbids it, Google-style errors, the cluster issuer and who may read.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3

P=wisp-it-gke
L=us-central1
wisp_start "$P"
export KUBECONFIG="$T_STATE/kubeconfig"
TOKEN=$(gcloud auth print-access-token)
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
GKE="https://127.0.0.1:$PORT/container/v1/projects/$P/locations/$L"
CA="$T_STATE/ca.pem"

api() { # api METHOD URL [BODY] [TOKEN] -> HTTP code; body in $T_STATE/body
    local data=() tok=${4-$TOKEN}
    [ -n "${3-}" ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
    curl -sS --cacert "$CA" -o "$T_STATE/body" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $tok" "${data[@]}" "$2"
}
body_has() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$T_STATE/body" "$1"
}
fails_with() { # fails_with TEXT cmd...
    local text=$1; shift
    ! "$@" > "$T_STATE/out" 2>&1 && grep -qF -- "$text" "$T_STATE/out"
}
describe() { # describe CLUSTER -> $T_STATE/body
    gcloud container clusters describe "$1" --location=$L --format=json > "$T_STATE/body" 2>/dev/null
}
mode_of() { # mode_of CLUSTER POOL -> prints the pool's workload metadata mode
    describe "$1"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([p["config"]["workloadMetadataConfig"]["mode"] for p in d["nodePools"] if p["name"]==sys.argv[2]][0])' \
        "$T_STATE/body" "$2"
}

# --- the seed, verbatim ------------------------------------------------------
check "clusters create --location --workload-pool" \
    gcloud container clusters create wi1 --location=$L --workload-pool=$P.svc.id.goog
describe wi1
check "describe: RUNNING, zone, its own endpoint, CA, workloadIdentityConfig, default-pool on GKE_METADATA" body_has \
    "d['status']=='RUNNING' and d['zone']=='$L' and d['location']=='$L' and d['endpoint'].startswith('127.0.0.1:') and d['endpoint']!='127.0.0.1:$PORT' and d['masterAuth']['clusterCaCertificate'] and d['workloadIdentityConfig']=={'workloadPool':'$P.svc.id.goog'} and [(p['name'],p['config']['workloadMetadataConfig']['mode'],p['status']) for p in d['nodePools']]==[('default-pool','GKE_METADATA','RUNNING')] and d['selfLink'].endswith('/clusters/wi1') and d['currentMasterVersion'].startswith('1.32')"
check "the CA is a PEM certificate" bash -c \
    "python3 -c 'import json,base64,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if base64.b64decode(d[\"masterAuth\"][\"clusterCaCertificate\"]).startswith(b\"-----BEGIN CERTIFICATE-----\") else 1)' $T_STATE/body"
check "create wrote the kubeconfig entry" grep -q "gke_${P}_${L}_wi1" "$KUBECONFIG"
rm -f "$KUBECONFIG"
check "get-credentials --location" gcloud container clusters get-credentials wi1 --location=$L
check "kubeconfig has context gke_P_L_C and the endpoint" bash -c \
    "grep -q 'current-context: gke_${P}_${L}_wi1' '$KUBECONFIG' && grep -q \"server: https://\$(gcloud container clusters describe wi1 --location=$L --format='value(endpoint)')\" '$KUBECONFIG'"

check "clusters create without a pool" gcloud container clusters create plain --location=$L --num-nodes=2
check "its default-pool is GCE_METADATA" test "$(mode_of plain default-pool)" = GCE_METADATA
check "GKE_METADATA pool refused while the cluster has no pool" \
    fails_with "Workload Identity must be enabled on the cluster" \
    gcloud container node-pools create np0 --cluster=plain --region=$L --workload-metadata=GKE_METADATA
check "clusters update --workload-pool" \
    gcloud container clusters update plain --location=$L --workload-pool=$P.svc.id.goog
check "existing pool left as it was" test "$(mode_of plain default-pool)" = GCE_METADATA
check "node-pools create --workload-metadata=GKE_METADATA (seed)" \
    gcloud container node-pools create np1 --cluster=plain --region=$L --workload-metadata=GKE_METADATA
check "node-pools create without the flag defaults to GKE_METADATA" \
    gcloud container node-pools create np2 --cluster=plain --region=$L --num-nodes=1
check "np2 is GKE_METADATA" test "$(mode_of plain np2)" = GKE_METADATA
check "node-pools update --workload-metadata=GKE_METADATA (seed)" \
    gcloud container node-pools update default-pool --cluster=plain --region=$L --workload-metadata=GKE_METADATA
check "default-pool now GKE_METADATA" test "$(mode_of plain default-pool)" = GKE_METADATA
check "node-pools list" bash -c \
    "gcloud container node-pools list --cluster=plain --region=$L --format='value(name)' | sort | tr '\n' ' ' | grep -qx 'default-pool np1 np2 '"
check "disable refused while pools use GKE_METADATA" fails_with "GCE_METADATA first" \
    gcloud container clusters update plain --disable-workload-identity
for np in default-pool np1 np2; do
    check "node-pools update $np --workload-metadata=GCE_METADATA (seed, no location flag)" \
        gcloud container node-pools update $np --cluster=plain --workload-metadata=GCE_METADATA
done
check "clusters update --disable-workload-identity (seed, no location flag)" \
    gcloud container clusters update plain --disable-workload-identity
describe plain
check "the pool is gone from the cluster" body_has "'workloadIdentityConfig' not in d"
check "node-pools delete" gcloud container node-pools delete np2 --cluster=plain --region=$L --quiet

# --- max pods per node: the node's pod range holds twice as many ----------
pool_of() { # pool_of CLUSTER POOL EXPR: EXPR true of the pool p
    describe "$1"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=[p for p in d["nodePools"] if p["name"]==sys.argv[2]][0]; sys.exit(0 if eval(sys.argv[3]) else 1)' \
        "$T_STATE/body" "$2" "$3"
}
check "default-pool: 110 pods, a /24 (GKE's default)" pool_of plain default-pool \
    "p['maxPodsConstraint']['maxPodsPerNode'] == '110' and p['podIpv4CidrSize'] == 24"
check "node-pools create --max-pods-per-node=16" gcloud container node-pools create np3 \
    --cluster=plain --region=$L --num-nodes=1 --max-pods-per-node=16
check "np3: 16 pods, a /27" pool_of plain np3 \
    "p['maxPodsConstraint']['maxPodsPerNode'] == '16' and p['podIpv4CidrSize'] == 27"
check "np3's node has a /27 pod range" bash -c \
    "kubectl get nodes -o jsonpath='{.items[*].spec.podCIDR}' --context gke_${P}_${L}_plain |
     tr ' ' '\n' | grep -q '^198\.18\.[0-9]*\.0/27$'"
check "--max-pods-per-node=4 refused" fails_with "maxPodsPerNode" \
    gcloud container node-pools create np4 --cluster=plain --region=$L --max-pods-per-node=4

# --- rules ---------------------------------------------------------------
check "foreign workload pool refused, naming it" fails_with "other-project.svc.id.goog" \
    gcloud container clusters create bad1 --location=$L --workload-pool=other-project.svc.id.goog
check "clusters update with a foreign pool refused" fails_with "other-project.svc.id.goog" \
    gcloud container clusters update wi1 --location=$L --workload-pool=other-project.svc.id.goog
check "create-auto" gcloud container clusters create-auto ap1 --location=$L
describe ap1
check "Autopilot: enabled, pool always on, GKE_METADATA" body_has \
    "d['autopilot']=={'enabled':True} and d['workloadIdentityConfig']['workloadPool']=='$P.svc.id.goog' and all(p['config']['workloadMetadataConfig']['mode']=='GKE_METADATA' for p in d['nodePools'])"
check "Autopilot: cannot be disabled" fails_with "Autopilot" \
    gcloud container clusters update ap1 --location=$L --disable-workload-identity
check "Autopilot: pool cannot go to GCE_METADATA" fails_with "Autopilot" \
    gcloud container node-pools update default-pool --cluster=ap1 --region=$L --workload-metadata=GCE_METADATA

# --- errors ----------------------------------------------------------------
check "describe an unknown cluster -> 404 NOT_FOUND" fails_with "Not found: projects/$P/locations/$L/clusters/nope" \
    gcloud container clusters describe nope --location=$L
check "a bad cluster name -> INVALID_ARGUMENT, nothing left behind" \
    test "$(api POST "$GKE/clusters" '{"cluster":{"name":"Bad_Name"}}')" = 400
check "  ...the message names the field" body_has "d['error']['status']=='INVALID_ARGUMENT' and 'cluster.name' in d['error']['message']"
check "an unknown field -> 400 naming it" \
    test "$(api POST "$GKE/clusters" '{"cluster":{"name":"x1","bogus":1}}')" = 400
check "creating it again -> 409 ALREADY_EXISTS" \
    test "$(api POST "$GKE/clusters" '{"cluster":{"name":"wi1"}}')" = 409
check "a bad location -> 400" test "$(api GET "https://127.0.0.1:$PORT/container/v1/projects/$P/locations/Nowhere/clusters")" = 400
check "the zones URL form serves the same cluster" \
    test "$(api GET "https://127.0.0.1:$PORT/container/v1/projects/$P/zones/$L/clusters/wi1")" = 200
check "a failed create left nothing" bash -c \
    "! gcloud container clusters list --format='value(name)' | grep -qE '^(bad1|x1)$'"
check "operations list" bash -c "gcloud container operations list --location=$L --format='value(name)' | grep -q '^operation-'"
check "unknown operation -> 404" test "$(api GET "$GKE/operations/operation-1-deadbeef")" = 404

# --- nodes recorded for the Kubernetes API -----------------------------------
check "nodes: names, pod CIDRs, labels" python3 - "$T_STATE/wisp.db" "$P" "$L" <<'EOF'
import json, sqlite3, sys
db, p, l = sys.argv[1:]
row = sqlite3.connect(db).execute(
    "select body from documents where kind='gkenodepool' and name=?", (f"{p}/{l}/wi1/default-pool",)).fetchone()
d = json.loads(row[0])
n = d["nodes"]
ok = len(n) == 3 and all(x["name"].startswith("gke-wi1-default-pool-") and x["podCIDR"].startswith("198.1")
                         and x["labels"]["cloud.google.com/gke-nodepool"] == "default-pool"
                         and x["labels"]["iam.gke.io/gke-metadata-server-enabled"] == "true" for x in n)
sys.exit(0 if ok and len({x["podCIDR"] for x in n}) == 3 else 1)
EOF

# --- the issuer ------------------------------------------------------------
check "issuer discovery needs no token" bash -c \
    "curl -sS --cacert '$CA' '$GKE/clusters/wi1/.well-known/openid-configuration' | grep -q '\"issuer\":\"https://container.googleapis.com/v1/projects/$P/locations/$L/clusters/wi1\"'"
check "issuer JWKS" bash -c "curl -sS --cacert '$CA' '$GKE/clusters/wi1/jwks' | grep -q '\"kty\":\"RSA\"'"

# --- who may --------------------------------------------------------------
SA=viewer@$P.iam.gserviceaccount.com
gcloud iam service-accounts create viewer > /dev/null 2>&1
gcloud projects add-iam-policy-binding $P --member=serviceAccount:$SA \
    --role=roles/container.clusterViewer --condition=None > /dev/null 2>&1
VTOK=$(gcloud auth print-access-token --impersonate-service-account=$SA 2>/dev/null)
check "clusterViewer may list clusters" test "$(api GET "$GKE/clusters" '' "$VTOK")" = 200
check "clusterViewer may get a cluster" test "$(api GET "$GKE/clusters/wi1" '' "$VTOK")" = 200
check "clusterViewer may not delete -> 403 naming the permission" \
    test "$(api DELETE "$GKE/clusters/wi1" '' "$VTOK")" = 403
check "  ...container.clusters.delete" body_has "'container.clusters.delete' in d['error']['message']"

# --- organization policy --------------------------------------------------
check "org-policies enable-enforce --project" gcloud resource-manager org-policies enable-enforce \
    iam.disableWorkloadIdentityClusterCreation --project=$P
check "create with a pool refused, naming the constraint" \
    fails_with "constraints/iam.disableWorkloadIdentityClusterCreation" \
    gcloud container clusters create bad2 --location=$L --workload-pool=$P.svc.id.goog
check "update to a pool refused" fails_with "iam.disableWorkloadIdentityClusterCreation" \
    gcloud container clusters update plain --location=$L --workload-pool=$P.svc.id.goog
check "create without a pool still works" test "$(api POST "$GKE/clusters" '{"cluster":{"name":"nopool"}}')" = 200
check "effective policy says enforced" bash -c \
    "gcloud resource-manager org-policies describe iam.disableWorkloadIdentityClusterCreation --project=$P --effective --format=json | grep -q '\"enforced\": true'"
check "org-policies disable-enforce --project" gcloud resource-manager org-policies disable-enforce \
    iam.disableWorkloadIdentityClusterCreation --project=$P
check "update to a pool works again" \
    gcloud container clusters update plain --location=$L --workload-pool=$P.svc.id.goog

# --- delete ---------------------------------------------------------------
check "clusters delete" gcloud container clusters delete ap1 --location=$L --quiet
check "its issuer is gone" test "$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "$GKE/clusters/ap1/jwks")" = 404
check "list shows the rest" bash -c \
    "gcloud container clusters list --format='value(name)' | sort | tr '\n' ' ' | grep -qx 'nopool plain wi1 '"

wisp_done
