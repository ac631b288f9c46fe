#!/usr/bin/env bash
# Bad input gets Google's error shape with the right code, and changes
# nothing: malformed JSON, unknown fields, bad members, wrong etags,
# missing or bad tokens, denials that name principal, permission and
# resource.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3

P=wisp-it-errors
wisp_start "$P"
TOKEN=$(gcloud auth print-access-token)
check "gcloud prints an access token" test -n "$TOKEN"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
BASE="https://127.0.0.1:$PORT/cloudresourcemanager/v1/projects/$P"
CA="$T_STATE/ca.pem"

# api METHOD URL BODY [TOKEN] -> prints "CODE STATUS" and keeps the body.
api() {
    local auth=()
    [ -n "${4-}" ] && auth=(-H "Authorization: Bearer $4")
    curl -sS --cacert "$CA" -o "$T_STATE/body" -w '%{http_code}' -X "$1" "${auth[@]}" \
        -H 'Content-Type: application/json' --data-binary "$3" "$2" > "$T_STATE/code"
    python3 - "$T_STATE/code" "$T_STATE/body" <<'PY'
import json, sys
code = open(sys.argv[1]).read().strip()
try:
    e = json.load(open(sys.argv[2])).get("error", {})
    assert e["code"] == int(code) and e["message"]
    print(code, e["status"])
except Exception:
    print(code, "NOT-GOOGLE-ERROR")
PY
}
etag() { api POST "$BASE:getIamPolicy" '{}' "$TOKEN" > /dev/null;
         python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["etag"])' "$T_STATE/body"; }

E0=$(etag)
gcloud projects add-iam-policy-binding "$P" --role=roles/viewer --member=user:viewer@example.com \
    --condition=None --quiet > /dev/null 2>&1
E1=$(etag)
check "a write changes the etag" test "$E0" != "$E1"
check "malformed JSON -> 400 INVALID_ARGUMENT" test "$(api POST "$BASE:setIamPolicy" '{"policy":' "$TOKEN")" = "400 INVALID_ARGUMENT"
check "unknown field -> 400" test "$(api POST "$BASE:setIamPolicy" '{"policy":{"bindngs":[]}}' "$TOKEN")" = "400 INVALID_ARGUMENT"
check "the message names the unknown field" grep -q 'bindngs' "$T_STATE/body"
check "unknown member type -> 400" test "$(api POST "$BASE:setIamPolicy" '{"policy":{"bindings":[{"role":"roles/viewer","members":["robot:r2d2"]}]}}' "$TOKEN")" = "400 INVALID_ARGUMENT"
check "the message quotes the member" grep -q 'robot:r2d2' "$T_STATE/body"
check "wrong type -> 400" test "$(api POST "$BASE:setIamPolicy" '{"policy":{"version":"three"}}' "$TOKEN")" = "400 INVALID_ARGUMENT"
check "stale etag -> 409 ABORTED" test "$(api POST "$BASE:setIamPolicy" '{"policy":{"etag":"'"$E0"'","bindings":[]}}' "$TOKEN")" = "409 ABORTED"
check "garbage etag -> 400" test "$(api POST "$BASE:setIamPolicy" '{"policy":{"etag":"%%%","bindings":[]}}' "$TOKEN")" = "400 INVALID_ARGUMENT"
check "no token -> 401 UNAUTHENTICATED" test "$(api POST "$BASE:getIamPolicy" '{}')" = "401 UNAUTHENTICATED"
check "bad token -> 401" test "$(api POST "$BASE:getIamPolicy" '{}' ya29.w1.forged)" = "401 UNAUTHENTICATED"
check "401 carries WWW-Authenticate" bash -c "curl -sS --cacert '$CA' -D - -o /dev/null -X POST '$BASE:getIamPolicy' | grep -qi '^www-authenticate: Bearer'"
check "unknown method -> 404" test "$(api POST "$BASE:frobnicate" '{}' "$TOKEN")" = "404 NOT_FOUND"
check "nothing above changed the policy" test "$(etag)" = "$E1"

# A principal without permission: a second service account with a key of
# its own is not on the policy, so it is denied by name.
check "testIamPermissions answers the subset" bash -c "
    curl -sS --cacert '$CA' -X POST -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' \
      --data '{\"permissions\":[\"resourcemanager.projects.get\",\"storage.objects.teleport\"]}' \
      '$BASE:testIamPermissions' | grep -q '\"permissions\":\[\"resourcemanager.projects.get\"\]'"
check "serviceusage says container is ENABLED" bash -c "
    curl -sS --cacert '$CA' -H 'Authorization: Bearer $TOKEN' \
      'https://127.0.0.1:$PORT/serviceusage/v1/projects/$P/services/container.googleapis.com' | grep -q ENABLED"
check "alt=proto is refused" test "$(api POST "$BASE:getIamPolicy?alt=proto" '{}' "$TOKEN")" = "400 INVALID_ARGUMENT"
api POST "$BASE:getIamPolicy?fields=etag" '{}' "$TOKEN" > /dev/null
check "fields= trims the answer" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if list(d)==["etag"] else 1)' "$T_STATE/body"

# Denial names principal, permission and resource: the owner creates a
# project, hands it to someone else, and is then refused on it. (It keeps
# what the organization grants it: as organization admin it may still read
# the project's policy, so the refusal is on a Service Usage call.)
Q=wisp-it-errors-q
check "gcloud projects create" gcloud projects create "$Q" --quiet
check "give the project away" test "$(api POST "https://127.0.0.1:$PORT/cloudresourcemanager/v1/projects/$Q:setIamPolicy" \
    '{"policy":{"bindings":[{"role":"roles/owner","members":["user:someone@example.com"]}]}}' "$TOKEN")" = "200 NOT-GOOGLE-ERROR"
check "now denied -> 403 PERMISSION_DENIED" test "$(api GET "https://127.0.0.1:$PORT/serviceusage/v1/projects/$Q/services/container.googleapis.com" '' "$TOKEN")" = "403 PERMISSION_DENIED"
check "the denial names principal, permission and resource" python3 -c '
import json,sys; m=json.load(open(sys.argv[1]))["error"]["message"]
sys.exit(0 if "serviceAccount:wisp-owner@" in m and "serviceusage.services.get" in m and "projects/wisp-it-errors-q" in m else 1)' "$T_STATE/body"
check "gcloud reports the denial and exits non-zero" bash -c "! gcloud services enable container.googleapis.com --project $Q > /dev/null 2>&1"

# x-goog-user-project: the caller must be allowed to use the quota project.
quota() { curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H "x-goog-user-project: $1" "$BASE:getIamPolicy"; }
check "quota project the caller may use -> 200" test "$(quota "$P")" = 200
check "quota project the caller may not use -> 403" test "$(quota "$Q")" = 403
check "unknown quota project -> 403" test "$(quota no-such-project)" = 403

wisp_done
