#!/usr/bin/env bash
# IAM Credentials and Google-style ID tokens through the real gcloud, and
# Google's own Python verifier: impersonated access and ID tokens, signBlob
# and signJwt checked against the published keys, denials, lifetimes, and
# usage counted per quota project for `wisp usage`.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3 openssl

P=wisp-it-creds
wisp_start "$P"
SA="wisp-owner@$P.iam.gserviceaccount.com"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
URL="https://127.0.0.1:$PORT"
CA="$T_STATE/ca.pem"
TOKEN=$(gcloud auth print-access-token)

IMP=$(gcloud auth print-access-token --impersonate-service-account="$SA" 2>/dev/null)
check "gcloud impersonates the account (generateAccessToken)" test "${IMP:0:5}" = ya29.
check "the impersonated token works on an API" test "$(curl -sS --cacert "$CA" -o /dev/null \
    -w '%{http_code}' -X POST -H "Authorization: Bearer $IMP" \
    "$URL/cloudresourcemanager/v1/projects/$P:getIamPolicy")" = 200

ID=$(gcloud auth print-identity-token --impersonate-service-account="$SA" \
    --audiences=https://example.com --include-email 2>/dev/null)
verify() { id_verify "$1" "$2" "$URL/oauth2/v1/certs" "$SA"; } # verify TOKEN AUDIENCE
check "google.oauth2.id_token.verify_token accepts the ID token" verify "$ID" https://example.com
rejects() { ! verify "$@" 2> /dev/null; }
check "... and rejects it for another audience" rejects "$ID" https://other.example
TAMPERED=$(python3 -c 'import sys,base64,json
h,p,s=sys.argv[1].split(".")
c=json.loads(base64.urlsafe_b64decode(p+"=="))
c["email"]="root@example.com"
p=base64.urlsafe_b64encode(json.dumps(c).encode()).decode().rstrip("=")
print(".".join([h,p,s]))' "$ID")
check "... and rejects a tampered one" rejects "$TAMPERED" https://example.com

api() { # api METHOD BODY [extra curl args] -> body in $T_STATE/body, code printed
    local m=$1 b=$2; shift 2
    curl -sS --cacert "$CA" -o "$T_STATE/body" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@" \
        --data "$b" "$URL/iamcredentials/v1/projects/-/serviceAccounts/$SA:$m"
}
check "signBlob -> 200" test "$(api signBlob '{"payload":"aGVsbG8gd2lzcA=="}')" = 200
python3 - "$T_STATE/body" "$T_STATE" <<'PY'
import base64, json, sys
r = json.load(open(sys.argv[1]))
open(sys.argv[2] + "/sig", "wb").write(base64.b64decode(r["signedBlob"]))
open(sys.argv[2] + "/kid", "w").write(r["keyId"])
open(sys.argv[2] + "/blob", "wb").write(b"hello wisp")
PY
curl -sS --cacert "$CA" "$URL/oauth2/service_accounts/v1/metadata/x509/$SA" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[open(sys.argv[1]).read()])' \
    "$T_STATE/kid" > "$T_STATE/cert.pem"
openssl x509 -in "$T_STATE/cert.pem" -pubkey -noout > "$T_STATE/pub.pem"
check "the blob signature verifies with the published key" openssl dgst -sha256 \
    -verify "$T_STATE/pub.pem" -signature "$T_STATE/sig" "$T_STATE/blob"
check "signJwt -> 200" test "$(api signJwt '{"payload":"{\"sub\":\"x\",\"aud\":\"y\"}"}')" = 200
check "signJwt with exp in the past -> 400" test "$(api signJwt '{"payload":"{\"exp\":1}"}')" = 400
check "lifetime over 3600s -> 400" test "$(api generateAccessToken '{"scope":["https://www.googleapis.com/auth/cloud-platform"],"lifetime":"7200s"}')" = 400
check "no scope -> 400" test "$(api generateAccessToken '{"delegates":null}')" = 400
NOSA="nobody@$P.iam.gserviceaccount.com"
check "an account that does not exist -> 403" test "$(curl -sS --cacert "$CA" -o "$T_STATE/body" \
    -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data '{"scope":["x"]}' "$URL/iamcredentials/v1/projects/-/serviceAccounts/$NOSA:generateAccessToken")" = 403
check "the denial names the permission" grep -q 'iam.serviceAccounts.getAccessToken' "$T_STATE/body"

# Quota project: charged and counted; refused where the caller may not use it.
Q=wisp-it-creds-quota
gcloud projects create "$Q" --quiet > /dev/null 2>&1
check "generateAccessToken charged to a quota project -> 200" test "$(api generateAccessToken \
    '{"scope":["https://www.googleapis.com/auth/cloud-platform"]}' -H "x-goog-user-project: $Q")" = 200
# wispd writes its usage counts at most once a second: look for up to 3 s.
check "wisp usage shows the call under the quota project" bash -c \
    "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
       '$WISP_BIN/wisp' usage --state '$T_STATE' --project '$Q' | grep -q 'generateAccessToken *1\$' && exit 0
       sleep 0.25
     done; exit 1"
curl -sS --cacert "$CA" -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    --data '{"policy":{"bindings":[{"role":"roles/owner","members":["user:someone@example.com"]}]}}' \
    "$URL/cloudresourcemanager/v1/projects/$Q:setIamPolicy"
check "a quota project the caller may not use -> 403" test "$(api generateAccessToken \
    '{"scope":["https://www.googleapis.com/auth/cloud-platform"]}' -H "x-goog-user-project: $Q")" = 403
check "the refusal names serviceusage" grep -q 'serviceusage.services.use' "$T_STATE/body"

wisp_done
