#!/usr/bin/env bash
# Organization policy at both levels through the real gcloud: the boolean
# constraint iam.disableWorkloadIdentityClusterCreation enforced at the
# organization forbids clusters with a workload pool in its projects; a
# project policy that does not enforce it overrides the organization's;
# deleting either restores what the other (or the default) says; describe
# (own and effective) and list at both levels; who may set it where.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3

P=wisp-it-orgpol
L=us-central1
C=iam.disableWorkloadIdentityClusterCreation
wisp_start "$P"
export KUBECONFIG="$T_STATE/kubeconfig"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
CRM="https://127.0.0.1:$PORT/cloudresourcemanager/v1"

fails_with() { # fails_with TEXT cmd...
    local text=$1; shift
    ! "$@" > "$T_STATE/out" 2>&1 && grep -qF -- "$text" "$T_STATE/out"
}
enforced() { # enforced (--project=P | --organization=N) [--effective]: 0 if enforced
    gcloud resource-manager org-policies describe $C "$@" --format=json > "$T_STATE/out" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("booleanPolicy",{}).get("enforced") is True else 1)' \
            "$T_STATE/out"
}
not_enforced() { ! enforced "$@"; }
listed() { # listed (--project=P | --organization=N) -> the constraints set there
    gcloud resource-manager org-policies list "$@" --format='value(constraint)' | tr '\n' ' '
}
create_wi() { # create_wi NAME: a cluster with a workload pool
    gcloud container clusters create "$1" --location=$L --workload-pool=$P.svc.id.goog \
        --num-nodes=1 > "$T_STATE/out" 2>&1
}
api() { # api METHOD URL BODY TOKEN -> HTTP code; body in $T_STATE/body
    curl -sS --cacert "$T_STATE/ca.pem" -o "$T_STATE/body" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $4" -H 'Content-Type: application/json' --data-binary "$3" "$2"
}

ORG=$(gcloud projects describe $P --format='value(parent.id)')
check "the project's parent is an organization" test -n "$ORG"

# --- enforced at the organization -------------------------------------------
check "enable-enforce --organization" \
    gcloud resource-manager org-policies enable-enforce $C --organization="$ORG"
check "describe --organization: enforced" enforced --organization="$ORG"
check "describe --project --effective: inherited, enforced" enforced --project=$P --effective
check "describe --project: nothing set on the project" bash -c \
    "gcloud resource-manager org-policies describe $C --project=$P --format=json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if \"booleanPolicy\" not in d and d[\"constraint\"]==\"constraints/$C\" else 1)'"
check "list --organization shows it" test "$(listed --organization="$ORG")" = "constraints/$C "
check "list --project is empty" test -z "$(listed --project=$P)"
check "cluster create with --workload-pool refused, naming the constraint" \
    fails_with "constraints/$C" create_wi op1

# --- a project policy that does not enforce overrides it ----------------------
check "disable-enforce --project" \
    gcloud resource-manager org-policies disable-enforce $C --project=$P
check "describe --project --effective: not enforced" not_enforced --project=$P --effective
check "describe --organization: still enforced" enforced --organization="$ORG"
check "list --project shows the override" test "$(listed --project=$P)" = "constraints/$C "
check "cluster create with --workload-pool works" create_wi op1

# --- deleting the override brings the organization's back ----------------------
check "delete --project" gcloud resource-manager org-policies delete $C --project=$P
check "effective on the project: enforced again" enforced --project=$P --effective
check "create refused again" fails_with "constraints/$C" create_wi op2

# --- deleting the organization's restores the default ----------------------------
check "delete --organization" gcloud resource-manager org-policies delete $C --organization="$ORG"
check "describe --organization: nothing set" not_enforced --organization="$ORG"
check "list --organization is empty" test -z "$(listed --organization="$ORG")"
check "effective on the project: not enforced" not_enforced --project=$P --effective
check "cluster create with --workload-pool works again" create_wi op2

# --- who may set it where -------------------------------------------------------
# A project owner who holds nothing at the organization may set the project's
# policy but not the organization's.
SA=proj-owner@$P.iam.gserviceaccount.com
gcloud iam service-accounts create proj-owner > /dev/null 2>&1
gcloud projects add-iam-policy-binding $P --member=serviceAccount:$SA --role=roles/owner \
    --condition=None > /dev/null 2>&1
PTOK=$(gcloud auth print-access-token --impersonate-service-account=$SA 2>"$T_STATE/out") ||
    cat "$T_STATE/out"
SET='{"policy":{"booleanPolicy":{"enforced":true},"constraint":"constraints/'$C'"}}'
check "project owner: setOrgPolicy on the project -> 200" \
    test "$(api POST "$CRM/projects/$P:setOrgPolicy" "$SET" "$PTOK")" = 200
check "project owner: setOrgPolicy on the organization -> 403" \
    test "$(api POST "$CRM/organizations/$ORG:setOrgPolicy" "$SET" "$PTOK")" = 403
check "  ...naming orgpolicy.policy.set" grep -q "orgpolicy.policy.set" "$T_STATE/body"
check "an unknown organization -> 403" \
    test "$(api POST "$CRM/organizations/1:getOrgPolicy" '{"constraint":"'$C'"}' "$PTOK")" = 403
check "listOrgPolicies with a bad page token -> 400" \
    test "$(api POST "$CRM/projects/$P:listOrgPolicies" '{"pageToken":"!!"}' "$PTOK")" = 400

wisp_done
