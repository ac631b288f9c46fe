#!/usr/bin/env bash
# The organization above every project, through the real gcloud:
# `gcloud projects get-ancestors`, `gcloud organizations list/describe`,
# the organization's IAM policy, and a role granted there reaching a
# project below it. Another account (a service-account key as gcloud's
# credential) sees no organization until it is granted one.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud python3

P=wisp-it-org
wisp_start "$P"
has() { grep -q -- "$1" "$T_STATE/out" || { cat "$T_STATE/out"; return 1; }; }
run() { "$@" > "$T_STATE/out" 2>&1; }
not_run() { ! run "$@"; }

check "gcloud organizations list" run gcloud organizations list --format='value(displayName,name)'
ORG=$(sed -n 's/^wisp\.local\t\([0-9]*\)$/\1/p' "$T_STATE/out")
check "names the one organization, wisp.local" test -n "$ORG"
check "get-ancestors: the project, then the organization" run gcloud projects get-ancestors $P \
    --format='csv[no-heading](id,type)'
check "in that order" test "$(tr '\n' ' ' < "$T_STATE/out")" = "$P,project $ORG,organization "
check "organizations describe" run gcloud organizations describe $ORG --format=json
check "with its directory customer ID and creation time" \
    python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))
assert o["owner"]["directoryCustomerId"].startswith("C0") and o["creationTime"] and o["lifecycleState"] == "ACTIVE"' \
    "$T_STATE/out"
check "--filter=displayName:wisp.local keeps it" run gcloud organizations list \
    --filter=displayName:wisp.local --format='value(name)'
check "(the same organization)" has "^$ORG\$"
check "an unknown organization: 403 that does not say whether it exists" \
    not_run gcloud organizations describe 123456789012
check "(naming the permission)" has "resourcemanager.organizations.get"
check "the first owner administers the organization" run gcloud organizations get-iam-policy $ORG
check "(roles/resourcemanager.organizationAdmin)" has "roles/resourcemanager.organizationAdmin"

# Another account: a service account with a key, used as gcloud's credential.
SA=auditor@$P.iam.gserviceaccount.com
gcloud iam service-accounts create auditor --quiet > /dev/null 2>&1
gcloud iam service-accounts keys create "$T_STATE/auditor.json" --iam-account=$SA --quiet \
    > /dev/null 2>&1
as_sa() { CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=$T_STATE/auditor.json "$@"; }
check "the auditor sees no organization" run as_sa gcloud organizations list --format='value(name)'
check "(an empty list)" test ! -s "$T_STATE/out"
check "and may not describe the project" not_run as_sa gcloud projects describe $P
check "roles/viewer granted at the organization" run gcloud organizations add-iam-policy-binding \
    $ORG --member=serviceAccount:$SA --role=roles/viewer --condition=None --quiet
check "reaches the project below it" run as_sa gcloud projects describe $P --format='value(projectId)'
check "(the project)" has "^$P\$"
check "roles/resourcemanager.organizationViewer lets the auditor see the organization" \
    run gcloud organizations add-iam-policy-binding $ORG --member=serviceAccount:$SA \
    --role=roles/resourcemanager.organizationViewer --condition=None --quiet
check "organizations list as the auditor" run as_sa gcloud organizations list --format='value(name)'
check "(names it)" has "^$ORG\$"
check "but not its IAM policy" not_run as_sa gcloud organizations get-iam-policy $ORG
check "(resourcemanager.organizations.getIamPolicy denied)" \
    has "resourcemanager.organizations.getIamPolicy"
check "a stale etag on the organization's policy: 409 (a conflict)" sh -c '
    gcloud organizations get-iam-policy '"$ORG"' --format=json > "$0/pol.json" &&
    gcloud organizations add-iam-policy-binding '"$ORG"' --member=serviceAccount:'"$SA"' \
        --role=roles/browser --condition=None --quiet > /dev/null 2>&1 &&
    ! gcloud organizations set-iam-policy '"$ORG"' "$0/pol.json" --quiet > "$0/out" 2>&1 &&
    grep -q "is the subject of a conflict" "$0/out"' "$T_STATE"

wisp_done
