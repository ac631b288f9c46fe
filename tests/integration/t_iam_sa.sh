#!/usr/bin/env bash
# IAM service accounts and roles through the real gcloud: the walkthrough's
# `iam service-accounts create` and both add-iam-policy-binding commands
# verbatim; deletion turning the account's bindings into deleted: members,
# a recreated account getting a new unique ID and nothing else, undelete
# bringing them back; predefined roles; a custom role that grants what it
# lists, until it is deleted.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3

P=wisp-it-iam
wisp_start "$P"
SA=iam-sa-name
E=$SA@$P.iam.gserviceaccount.com
KSA_MEMBER="serviceAccount:$P.svc.id.goog[wisp-ns/wisp-ksa]"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
CA="$T_STATE/ca.pem"
IAM="https://127.0.0.1:$PORT/iam/v1"
CRM="https://127.0.0.1:$PORT/cloudresourcemanager/v1"
TOKEN=$(gcloud auth print-access-token)

# api METHOD URL BODY [TOKEN] -> prints the HTTP code; the body is kept.
api() {
    curl -sS --cacert "$CA" -o "$T_STATE/body" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer ${4:-$TOKEN}" -H 'Content-Type: application/json' \
        --data-binary "$3" "$2"
}
# jq-free JSON checks: json_has FILE PYTHON-EXPR (d is the document).
json_ok() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
fails() { ! "$@" > "$T_STATE/out" 2>&1; }

# --- service accounts -------------------------------------------------------
check "seed: gcloud iam service-accounts create" gcloud iam service-accounts create "$SA" --project="$P"
gcloud iam service-accounts describe "$E" --format=json > "$T_STATE/sa.json"
check "describe has Google's shape" json_ok "$T_STATE/sa.json" \
    "d['name']=='projects/$P/serviceAccounts/$E' and d['projectId']=='$P' and d['email']=='$E' \
     and len(d['uniqueId'])==21 and d['uniqueId'].isdigit() and d['oauth2ClientId']==d['uniqueId'] \
     and d['etag']"
UID1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uniqueId"])' "$T_STATE/sa.json")
check "list shows it" bash -c "gcloud iam service-accounts list --format='value(email)' | grep -qx '$E'"
check "creating it again fails" fails gcloud iam service-accounts create "$SA" --project="$P"
check "... with 409 ALREADY_EXISTS" test "$(api POST "$IAM/projects/$P/serviceAccounts" '{"accountId":"'"$SA"'"}')" = 409
check "a bad accountId -> 400" test "$(api POST "$IAM/projects/$P/serviceAccounts" '{"accountId":"Bad_Name"}')" = 400
check "an unknown body field -> 400 naming it" bash -c "test \"\$(curl -sS --cacert '$CA' -o '$T_STATE/b2' -w '%{http_code}' -X POST -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' --data '{\"accountId\":\"okay-name\",\"serviceAccount\":{\"dispayName\":\"x\"}}' '$IAM/projects/$P/serviceAccounts')\" = 400 && grep -q dispayName '$T_STATE/b2'"
check "addressed by unique ID" test "$(api GET "$IAM/projects/-/serviceAccounts/$UID1" '')" = 200
check "an unknown account -> 404" test "$(api GET "$IAM/projects/-/serviceAccounts/nobody-here@$P.iam.gserviceaccount.com" '')" = 404
check "update the display name" gcloud iam service-accounts update "$E" --display-name="IAM SA"
check "disable" gcloud iam service-accounts disable "$E"
check "describe says disabled" bash -c "gcloud iam service-accounts describe '$E' --format='value(disabled)' | grep -qi true"
check "enable" gcloud iam service-accounts enable "$E"
gcloud iam service-accounts create pager-one --project="$P" > /dev/null 2>&1
gcloud iam service-accounts create pager-two --project="$P" > /dev/null 2>&1
check "list pages: pageSize=1 and nextPageToken visit all 4 accounts once" python3 - "$CA" "$TOKEN" \
    "$IAM/projects/$P/serviceAccounts" <<'PY'
import json, ssl, sys, urllib.parse, urllib.request
ca, tok, url = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
seen, page = [], ""
for _ in range(10):
    q = "?pageSize=1" + ("&pageToken=" + urllib.parse.quote(page) if page else "")
    req = urllib.request.Request(url + q, headers={"Authorization": "Bearer " + tok})
    d = json.load(urllib.request.urlopen(req, context=ctx))
    seen += [a["email"] for a in d.get("accounts", [])]
    page = d.get("nextPageToken", "")
    if not page:
        break
sys.exit(0 if len(seen) == 4 and len(set(seen)) == 4 else 1)
PY

# --- the walkthrough's bindings ----------------------------------------------
check "seed: projects add-iam-policy-binding" gcloud projects add-iam-policy-binding "$P" \
    --member "serviceAccount:$E" --role "roles/storage.objectViewer"
check "seed: service-accounts add-iam-policy-binding (workloadIdentityUser)" \
    gcloud iam service-accounts add-iam-policy-binding "$E" \
    --role roles/iam.workloadIdentityUser --member "$KSA_MEMBER"
check "a conditional binding as well (policy version 3)" gcloud projects add-iam-policy-binding "$P" \
    --member "serviceAccount:$E" --role roles/storage.objectCreator \
    --condition='expression=request.time < timestamp("2099-01-01T00:00:00Z"),title=until-2099'
gcloud iam service-accounts get-iam-policy "$E" --format=json > "$T_STATE/sapol.json"
check "get-iam-policy shows the KSA binding" json_ok "$T_STATE/sapol.json" \
    "any(b['role']=='roles/iam.workloadIdentityUser' and '$KSA_MEMBER' in b['members'] for b in d['bindings'])"
check "getIamPolicy with the version in the query, no body" \
    test "$(api POST "$IAM/projects/$P/serviceAccounts/$E:getIamPolicy?options.requestedPolicyVersion=3" '')" = 200

# --- delete, recreate, undelete ------------------------------------------------
check "delete" gcloud iam service-accounts delete "$E" --quiet
gcloud projects get-iam-policy "$P" --format=json > "$T_STATE/ppol.json"
check "project policy names it deleted:serviceAccount:…?uid=" json_ok "$T_STATE/ppol.json" \
    "any('deleted:serviceAccount:$E?uid=$UID1' in b['members'] and b['role']=='roles/storage.objectViewer' for b in d['bindings']) \
     and not any('serviceAccount:$E' in b['members'] for b in d['bindings'])"
check "the conditional binding keeps its condition, version 3" json_ok "$T_STATE/ppol.json" \
    "d['version']==3 and any(b['role']=='roles/storage.objectCreator' and b['condition']['title']=='until-2099' \
     and b['members']==['deleted:serviceAccount:$E?uid=$UID1'] for b in d['bindings'])"
check "describe after delete fails" fails gcloud iam service-accounts describe "$E"
check "recreate the same name" gcloud iam service-accounts create "$SA" --project="$P"
UID2=$(gcloud iam service-accounts describe "$E" --format='value(uniqueId)')
check "the new account has a different uniqueId" test -n "$UID2" -a "$UID2" != "$UID1"
gcloud projects get-iam-policy "$P" --format=json > "$T_STATE/ppol.json"
check "the new account is not granted on the project" json_ok "$T_STATE/ppol.json" \
    "not any('serviceAccount:$E' in b['members'] for b in d['bindings'])"
gcloud iam service-accounts get-iam-policy "$E" --format=json > "$T_STATE/sapol.json"
check "nor has the old account's own policy" json_ok "$T_STATE/sapol.json" "not d.get('bindings')"
check "undelete is refused while the email is taken" fails gcloud iam service-accounts undelete "$UID1" --quiet
check "delete the new one" gcloud iam service-accounts delete "$E" --quiet
check "undelete the old one by unique ID" gcloud iam service-accounts undelete "$UID1" --quiet
check "it is back with its unique ID" bash -c "test \"\$(gcloud iam service-accounts describe '$E' --format='value(uniqueId)')\" = '$UID1'"
gcloud projects get-iam-policy "$P" --format=json > "$T_STATE/ppol.json"
check "its project binding is restored" json_ok "$T_STATE/ppol.json" \
    "any('serviceAccount:$E' in b['members'] and b['role']=='roles/storage.objectViewer' for b in d['bindings']) \
     and not any('uid=$UID1' in m for b in d['bindings'] for m in b['members'])"
check "and its conditional binding" json_ok "$T_STATE/ppol.json" \
    "any(b['role']=='roles/storage.objectCreator' and b.get('condition') and b['members']==['serviceAccount:$E'] for b in d['bindings'])"
check "the second account, never granted, left no deleted member" json_ok "$T_STATE/ppol.json" \
    "not any('uid=$UID2' in m for b in d['bindings'] for m in b['members'])"
gcloud iam service-accounts get-iam-policy "$E" --format=json > "$T_STATE/sapol.json"
check "and so is its own policy" json_ok "$T_STATE/sapol.json" \
    "any('$KSA_MEMBER' in b['members'] for b in d.get('bindings', []))"

# --- roles -----------------------------------------------------------------------
check "gcloud iam roles list" bash -c "gcloud iam roles list --format='value(name)' | grep -qx roles/iam.workloadIdentityUser"
check "gcloud iam roles describe roles/iam.workloadIdentityUser" bash -c \
    "gcloud iam roles describe roles/iam.workloadIdentityUser --format=json | grep -q iam.serviceAccounts.getAccessToken"
check "roles list BASIC omits permissions" bash -c \
    "test \"\$(curl -sS --cacert '$CA' -H 'Authorization: Bearer $TOKEN' '$IAM/roles?pageSize=2' | grep -c includedPermissions)\" = 0"
check "gcloud iam roles create myRole" gcloud iam roles create myRole --project "$P" \
    --permissions=storage.objects.list --title=t
check "an unknown permission is refused by name" bash -c "! gcloud iam roles create badRole --project '$P' --permissions=storage.objects.teleport --title=t > '$T_STATE/out' 2>&1 && grep -q storage.objects.teleport '$T_STATE/out'"
check "gcloud iam roles describe myRole" bash -c "gcloud iam roles describe myRole --project '$P' --format='value(includedPermissions)' | grep -q storage.objects.list"
check "gcloud iam roles list --project" bash -c "gcloud iam roles list --project '$P' --format='value(name)' | grep -qx projects/$P/roles/myRole"
check "gcloud iam roles update (title, add a permission)" gcloud iam roles update myRole --project "$P" \
    --title=t2 --add-permissions=storage.objects.get

# A principal with no other grant: a fresh account, whose token comes from
# impersonation (the owner may mint it).
U=role-user
UE=$U@$P.iam.gserviceaccount.com
gcloud iam service-accounts create "$U" --project="$P" > /dev/null 2>&1
UT=$(gcloud auth print-access-token --impersonate-service-account="$UE" 2> /dev/null)
check "a token for the fresh account" test -n "$UT"
granted() { # granted PERMISSION -> 0 if testIamPermissions says the fresh account holds it
    api POST "$CRM/projects/$P:testIamPermissions" "{\"permissions\":[\"$1\"]}" "$UT" > /dev/null
    grep -q "\"$1\"" "$T_STATE/body"
}
check "not granted before the binding" fails granted storage.objects.list
check "bind the custom role" gcloud projects add-iam-policy-binding "$P" \
    --member "serviceAccount:$UE" --role "projects/$P/roles/myRole" --condition=None
check "the custom role grants storage.objects.list" granted storage.objects.list
check "and what it lists only" fails granted storage.objects.delete
check "gcloud iam roles delete" gcloud iam roles delete myRole --project "$P"
check "a deleted custom role grants nothing" fails granted storage.objects.list
check "gcloud iam roles undelete" gcloud iam roles undelete myRole --project "$P"
check "undeleted, it grants again" granted storage.objects.list
check "a role ID in use cannot be created again" fails gcloud iam roles create myRole --project "$P" \
    --permissions=storage.objects.list --title=t

wisp_done
