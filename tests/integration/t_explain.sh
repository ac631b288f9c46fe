#!/usr/bin/env bash
# The troubleshooter: `wisp iam explain` says which binding grants access,
# or why the closest one does not (here: another namespace), and exits 0/1.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud

P=wisp-it-explain
wisp_start "$P"
NUM=$(gcloud projects describe "$P" --format='value(projectNumber)')
PFX="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$P.svc.id.goog"
gcloud projects add-iam-policy-binding "$P" --role=roles/container.clusterViewer \
    --member="$PFX/subject/ns/ns-a/sa/app" --condition=None --quiet > /dev/null 2>&1
explain() { "$WISP_BIN/wisp" iam explain --state "$T_STATE" "$@" > "$T_STATE/out" 2>&1; }
check "the KSA in ns-a holds container.clusters.list (exit 0)" \
    explain "$PFX/subject/ns/ns-a/sa/app" container.clusters.list "projects/$P"
check "... granted by roles/container.clusterViewer" grep -q 'granted by roles/container.clusterViewer' "$T_STATE/out"
check "the legacy spelling of the same KSA is granted too" \
    explain "serviceAccount:$P.svc.id.goog[ns-a/app]" container.clusters.list "projects/$P"
check "the same KSA name in ns-b is refused (exit 1)" bash -c \
    "'$WISP_BIN/wisp' iam explain --state '$T_STATE' '$PFX/subject/ns/ns-b/sa/app' container.clusters.list 'projects/$P' > '$T_STATE/out'; test \$? -eq 1"
check "... and the reason names the other namespace" grep -q 'namespace ns-a, the caller in ns-b' "$T_STATE/out"
check "a permission the role lacks is refused" bash -c \
    "! '$WISP_BIN/wisp' iam explain --state '$T_STATE' '$PFX/subject/ns/ns-a/sa/app' container.pods.create 'projects/$P' > /dev/null"
check "a malformed principal is a usage error (exit 100)" bash -c \
    "'$WISP_BIN/wisp' iam explain --state '$T_STATE' 'robot:r2' container.clusters.list 'projects/$P' 2> /dev/null; test \$? -eq 100"
wisp_done
