#!/usr/bin/env bash
# wisp-metadata against a real wispd cluster: pods get addresses 127.0.0.N
# through pods/status, wisp-metadata listens on 127.0.0.1:PORT, and curl
# calls it from each pod's address (--interface). Checks: per-KSA tokens
# that a bucket's IAM tells apart, the linked-GSA path and its need for
# roles/iam.workloadIdentityUser, unknown and duplicate addresses, the
# header/Host/method rules, concealment, annotation changes, pod deletion,
# a restart, and the real gcloud reading its token from it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/md_lib.sh"
need gcloud kubectl curl python3

md_setup wisp-it-md
GSA="md-gsa@$P.iam.gserviceaccount.com"

for ns in ns-a ns-b; do kubectl create namespace $ns > /dev/null; done
kubectl create serviceaccount app -n ns-a > /dev/null
kubectl create serviceaccount app -n ns-b > /dev/null
kubectl create serviceaccount linked -n ns-a > /dev/null
gcloud iam service-accounts create md-gsa --quiet > /dev/null 2>&1
kubectl annotate serviceaccount linked -n ns-a iam.gke.io/gcp-service-account=$GSA > /dev/null

check "pod ns-a/a at 127.0.0.2 on $NODE" test "$(pod ns-a a app 127.0.0.2)" = 200
check "pod ns-b/b at 127.0.0.3" test "$(pod ns-b b app 127.0.0.3)" = 200
check "pod ns-a/l (linked KSA) at 127.0.0.4" test "$(pod ns-a l linked 127.0.0.4)" = 200
check "pod ns-a/g at 127.0.0.1 (for gcloud)" test "$(pod ns-a g app 127.0.0.1)" = 200

check "wisp-metadata starts" md_start

list() { curl -sS --cacert "$CA" -o "$OUT.list" -w '%{http_code}' -H "Authorization: Bearer $1" \
    "$API/storage/v1/b/$2/o"; }

# The rules of the front door.
code=$(curl -sS --interface 127.0.0.2 -o "$OUT" -D "$OUT.h" -w '%{http_code}' "http://127.0.0.1:$MPORT/")
check "no Metadata-Flavor: 403 with GKE's text" \
    test "$code" = 403 -a "$(cat "$OUT")" = 'GKE Metadata Server encountered an error: Missing required header "Metadata-Flavor": "Google"'
check "and no Metadata-Flavor in that answer" bash -c "! grep -qi '^metadata-flavor' '$OUT.h'"
code=$(curl -sS --interface 127.0.0.2 -o "$OUT" -D "$OUT.h" -w '%{http_code}' -H 'Metadata-Flavor: Google' "http://127.0.0.1:$MPORT/")
check "GET / with the header: 200 computeMetadata/" test "$code:$(cat "$OUT")" = "200:computeMetadata/"
check "Metadata-Flavor: Google on answers" grep -qi '^metadata-flavor: Google' "$OUT.h"
check "X-Forwarded-For: 403" test "$(md 2 instance/service-accounts/default/token -H 'X-Forwarded-For: 127.0.0.3')" = 403
check "POST: 405" test "$(md 2 instance/service-accounts/default/token -X POST)" = 405
check "a foreign Host: 403" test "$(md 2 project/project-id -H 'Host: evil.example')" = 403
check "Host metadata.google.internal is accepted" \
    test "$(md 2 project/project-id -H 'Host: metadata.google.internal')" = 200
check "kube-env is concealed" test "$(md 2 instance/attributes/kube-env)" = 404
check "instance/name is concealed" test "$(md 2 instance/name)" = 404
check "a directory without its slash: 301" test "$(md 2 instance)" = 301
check "numeric-project-id is digits" test "$(md 2 project/numeric-project-id):$(cat "$OUT")" = "200:$NUM"
check "cluster-name" test "$(md 2 instance/attributes/cluster-name):$(cat "$OUT")" = "200:std"

# The KSA path: ns-a/app's principal, told apart from ns-b/app's.
gcloud storage buckets create gs://md-a --quiet > /dev/null 2>&1
gcloud storage buckets add-iam-policy-binding gs://md-a --role=roles/storage.objectViewer \
    --member="$PRINCIPAL/subject/ns/ns-a/sa/app" --condition=None > /dev/null 2>&1
check "ns-a/a: email is the pool" test "$(md 2 instance/service-accounts/default/email):$(cat "$OUT")" = "200:$POOL"
check "ns-a/a gets a token" test "$(md 2 instance/service-accounts/default/token)" = 200
TA=$(tok)
check "expires_in is a positive integer" python3 -c '
import json,sys; e=json.load(open(sys.argv[1]))["expires_in"]; sys.exit(0 if isinstance(e,int) and 0<e<=3600 else 1)' "$OUT"
check "its token lists the bucket bound to ns-a/app" test "$(list "$TA" md-a)" = 200
check "ns-b/b gets its own token" test "$(md 3 instance/service-accounts/default/token)" = 200
TB=$(tok)
check "a KSA of the same name in another namespace is denied" test "$(list "$TB" md-a)" = 403
check "a second request is the cached token" \
    test "$(md 2 instance/service-accounts/default/token)" = 200 -a "$(tok)" = "$TA"
check "an unknown address gets no identity" test "$(md 9 instance/service-accounts/default/token)" = 503
check "but the project's metadata" test "$(md 9 project/project-id)" = 200

# The linked-GSA path needs roles/iam.workloadIdentityUser.
check "ns-a/l: email is the GSA" test "$(md 4 instance/service-accounts/default/email):$(cat "$OUT")" = "200:$GSA"
check "without workloadIdentityUser no GSA token" test "$(md 4 instance/service-accounts/default/token)" = 403
grep -q "iam.serviceAccounts.getAccessToken\|Permission" "$OUT" && ok "saying why" || not_ok "saying why: $(cat "$OUT")"
gcloud iam service-accounts add-iam-policy-binding "$GSA" --role=roles/iam.workloadIdentityUser \
    --member="serviceAccount:$POOL[ns-a/linked]" --condition=None > /dev/null 2>&1
gcloud storage buckets create gs://md-g --quiet > /dev/null 2>&1
gcloud storage buckets add-iam-policy-binding gs://md-g --role=roles/storage.objectViewer \
    --member="serviceAccount:$GSA" --condition=None > /dev/null 2>&1
check "with it, the GSA's token" test "$(md 4 "instance/service-accounts/$GSA/token")" = 200
TL=$(tok)
check "which lists the GSA's bucket" test "$(list "$TL" md-g)" = 200
check "and not ns-a/app's" test "$(list "$TL" md-a)" = 403
check "identity without a GSA: 404 with GKE's text" \
    test "$(md 2 'instance/service-accounts/default/identity?audience=x')" = 404
grep -q "is not annotated with a target Google service account" "$OUT" && ok "that text" || not_ok "that text"
check "identity with a GSA: a JWT" test "$(md 4 'instance/service-accounts/default/identity?audience=https://x.example&format=full')" = 200
grep -q '^ey.*\..*\.' "$OUT" && ok "three parts" || not_ok "three parts: $(head -c 200 "$OUT")"

# gcloud, unmodified, with the metadata server as its only credential.
G=$T_STATE/gcloud-md
mkdir -p "$G"
gat=$(env -u CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE -u CLOUDSDK_CORE_CHECK_GCE_METADATA \
    -u CLOUDSDK_AUTH_TOKEN_HOST CLOUDSDK_CONFIG="$G" GCE_METADATA_ROOT="127.0.0.1:$MPORT" \
    GCE_METADATA_IP="127.0.0.1:$MPORT" GCE_METADATA_HOST="127.0.0.1:$MPORT" \
    gcloud auth print-access-token 2> "$OUT.gcloud")
check "gcloud auth print-access-token reads the pod's token" test -n "$gat"
check "which lists ns-a/app's bucket" test "$(list "$gat" md-a)" = 200

# Changes: the annotation, a duplicate address, deletion, a restart.
kubectl annotate serviceaccount linked -n ns-a iam.gke.io/gcp-service-account- > /dev/null
check "removing the annotation: email is the pool again" bash -c '
for i in $(seq 50); do
  [ "$(curl -s --interface 127.0.0.4 -H "Metadata-Flavor: Google" http://127.0.0.1:'"$MPORT"'/computeMetadata/v1/instance/service-accounts/default/email)" = '"$POOL"' ] && exit 0
  sleep 0.1; done; exit 1'
check "a second pod claiming 127.0.0.3" test "$(pod ns-a dup app 127.0.0.3)" = 200
check "leaves that address with no identity" wait_for 503 3 instance/service-accounts/default/token
kubectl delete pod dup -n ns-a --wait=false > /dev/null 2>&1
check "until it goes" wait_for 200 3 instance/service-accounts/default/token
kubectl delete pod a -n ns-a --wait=false > /dev/null 2>&1
check "a deleted pod's address gets no identity" wait_for 503 2 instance/service-accounts/default/token
md_stop
check "wisp-metadata restarts" md_start
check "and serves again" wait_for 200 3 instance/service-accounts/default/token
wisp_done
