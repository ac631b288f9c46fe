#!/usr/bin/env bash
# Service-account keys and the life of access tokens, through the real
# gcloud: keys create/list/get-public-key/delete, a key file activated with
# `gcloud auth activate-service-account` (its token_uri honoured), an API
# call as that account, a deleted key refused at the token endpoint, token
# revocation, --strict-revocation cutting a delegated token off when its
# binding goes (and the default keeping it), and token-key rotation.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3 openssl

P=wisp-it-keys
wisp_start "$P"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
URL="https://127.0.0.1:$PORT"
CA="$T_STATE/ca.pem"
APP="app-keys@$P.iam.gserviceaccount.com"
GSA="gsa-target@$P.iam.gserviceaccount.com"
KEY="$T_STATE/app-key.json"

# gcloud as the activated account: without the owner's credential file and
# without the token-host override, so the key file's own token_uri is used.
as_app() { env -u CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE -u CLOUDSDK_AUTH_TOKEN_HOST "$@"; }
code() { # code TOKEN URL-PATH -> HTTP status of a call with that token
    curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $1" "$URL$2"
}
policy_code() { code "$1" "/cloudresourcemanager/v1/projects/$P:getIamPolicy"; }
not() { ! "$@"; }
quiet() { "$@" > /dev/null 2>&1; }
PY=/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3
[ -x "$PY" ] || PY=python3
# grant_token KEYFILE [CLAIMS [FIELD]]: FIELD (access_token) of the answer
# to a JWT-bearer grant with the key, the assertion's claims plus CLAIMS
# (JSON), or fail.
grant_token() {
    "$PY" - "$1" "$URL/token" "$CA" "${2:-{\}}" "${3:-access_token}" <<'PY'
import json, ssl, sys, time, urllib.parse, urllib.request
sys.path.insert(0, "/usr/lib/google-cloud-sdk/lib/third_party")
from google.auth import crypt, jwt
k = json.load(open(sys.argv[1]))
now = int(time.time())
claims = {"iss": k["client_email"], "aud": sys.argv[2], "iat": now, "exp": now + 600}
claims.update(json.loads(sys.argv[4]))
assertion = jwt.encode(crypt.RSASigner.from_service_account_info(k), claims).decode()
form = urllib.parse.urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                               "assertion": assertion})
ctx = ssl.create_default_context(cafile=sys.argv[3])
print(json.load(urllib.request.urlopen(sys.argv[2], data=form.encode(),
                                       context=ctx))[sys.argv[5]])
PY
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

gcloud iam service-accounts create app-keys -q > /dev/null 2>&1
gcloud iam service-accounts create gsa-target -q > /dev/null 2>&1
gcloud projects add-iam-policy-binding "$P" --member="serviceAccount:$APP" \
    --role=roles/viewer -q > /dev/null 2>&1
gcloud projects add-iam-policy-binding "$P" --member="serviceAccount:$GSA" \
    --role=roles/viewer -q > /dev/null 2>&1

# --- keys --------------------------------------------------------------------------
check "keys create writes a key file" \
    quiet gcloud iam service-accounts keys create "$KEY" --iam-account="$APP" -q
KID=$(field "$KEY" private_key_id)
key_file_ok() {
    python3 - "$KEY" "$URL/token" "$APP" "$P" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))
assert k["type"] == "service_account", k["type"]
assert k["token_uri"] == sys.argv[2], k["token_uri"]
assert k["client_email"] == sys.argv[3] and k["project_id"] == sys.argv[4]
assert k["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
assert k["client_id"].isdigit() and k["universe_domain"] == "googleapis.com"
PY
}
check "... a service_account file whose token_uri is wisp's /token" key_file_ok
listed() { # listed KID [gcloud keys list flags]
    local kid=$1; shift
    gcloud iam service-accounts keys list --iam-account="$APP" "$@" \
        --format='value(name.basename())' 2> /dev/null | grep -qx "$kid"
}
check "keys list shows it" listed "$KID"
check "keys list --managed-by=user shows it" listed "$KID" --managed-by=user
check "keys list --managed-by=system does not" not listed "$KID" --managed-by=system
same_key() {
    gcloud beta iam service-accounts keys get-public-key "$KID" --iam-account="$APP" \
        --output-file="$T_STATE/pub.pem" > /dev/null 2>&1 &&
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["private_key"])' \
            "$KEY" > "$T_STATE/priv.pem" &&
        [ "$(openssl x509 -in "$T_STATE/pub.pem" -noout -pubkey)" = \
            "$(openssl pkey -in "$T_STATE/priv.pem" -pubout)" ]
}
# (gcloud beta sends this one with a self-signed JWT as its bearer token)
check "get-public-key gives the key's X.509 certificate" same_key
rm -f "$T_STATE/priv.pem"

# --- the key file as gcloud's credential ---------------------------------------------
check "gcloud auth activate-service-account --key-file" \
    quiet as_app gcloud auth activate-service-account --key-file="$KEY" -q
APPTOK=$(as_app gcloud auth print-access-token 2> /dev/null)
check "print-access-token gets a wisp token through the key file's token_uri" \
    test "${APPTOK:0:8}" = ya29.w1.
tokeninfo_email() {
    curl -sS --cacert "$CA" "$URL/oauth2/tokeninfo?access_token=$1" | grep -q "\"email\":\"$2\""
}
check "... standing for the key's account" tokeninfo_email "$APPTOK" "$APP"
IDT=$(as_app gcloud auth print-identity-token --audiences=https://app.example 2> /dev/null)
check "gcloud print-identity-token as the key's account (a target_audience grant)" \
    id_verify "$IDT" https://app.example "$URL/oauth2/v1/certs" "$APP"
FORGED=$(grant_token "$KEY" '{"target_audience": "https://app.example",
    "google": {"compute_engine": {"instance_name": "forged"}}}' id_token)
check "a user-managed key cannot add instance claims to its ID token" \
    test "$(jwt_claim "$FORGED" '(c["aud"], "google" in c)')" = "('https://app.example', False)"
check "gcloud projects get-iam-policy as the account" \
    quiet as_app gcloud projects get-iam-policy "$P" --format=json -q

# --- revocation --------------------------------------------------------------------------
check "the token works before revocation" test "$(policy_code "$APPTOK")" = 200
revoke() { curl -sS --cacert "$CA" -o "$T_STATE/body" -w '%{http_code}' -d "token=$1" \
    "$URL/oauth2/revoke"; }
check "POST /revoke token=… -> 200" test "$(revoke "$APPTOK")" = 200
check "the revoked token is refused by the next call (401)" \
    test "$(policy_code "$APPTOK")" = 401
check "tokeninfo refuses it too" not tokeninfo_email "$APPTOK" "$APP"
check "revoking it again -> 400 invalid_token" test "$(revoke "$APPTOK")" = 400
check "... with RFC 6749's error shape" grep -q '"error":"invalid_token"' "$T_STATE/body"
check "gcloud auth revoke of the activated account (local: gcloud calls no server for SAs)" \
    quiet as_app gcloud auth revoke "$APP" -q

# --- disable, enable, delete -----------------------------------------------------------
check "keys disable" quiet gcloud iam service-accounts keys disable "$KID" --iam-account="$APP" -q
check "a disabled key gets no token" not quiet grant_token "$KEY"
check "keys enable" quiet gcloud iam service-accounts keys enable "$KID" --iam-account="$APP" -q
check "an enabled key gets tokens again" quiet grant_token "$KEY"

# --- a deleted key ---------------------------------------------------------------------
check "keys delete" quiet gcloud iam service-accounts keys delete "$KID" --iam-account="$APP" -q
check "keys list no longer shows it" not listed "$KID"
# gcloud asks for a token while activating; either that or the next
# print-access-token meets the refusal.
refused() {
    ! { as_app gcloud auth activate-service-account --key-file="$KEY" -q &&
        as_app gcloud auth print-access-token; } > "$T_STATE/out" 2>&1 &&
        grep -q invalid_grant "$T_STATE/out"
}
check "the deleted key's file is refused at /token (invalid_grant)" refused
as_app gcloud auth revoke "$APP" -q > /dev/null 2>&1

# --- strict revocation --------------------------------------------------------------------
# app-keys may mint tokens for gsa-target through its own binding on it.
gcloud iam service-accounts keys create "$KEY" --iam-account="$APP" -q > /dev/null 2>&1
as_app gcloud auth activate-service-account --key-file="$KEY" -q > /dev/null 2>&1
grant() { gcloud iam service-accounts "$1-iam-policy-binding" "$GSA" \
    --member="serviceAccount:$APP" --role=roles/iam.serviceAccountTokenCreator -q \
    > /dev/null 2>&1; }
mint() { as_app gcloud auth print-access-token --impersonate-service-account="$GSA" \
    2> /dev/null; }
grant add
GTOK=$(mint)
check "a GSA token minted by impersonation works" test "$(policy_code "$GTOK")" = 200
grant remove
check "default: after remove-iam-policy-binding it still works until it expires" \
    test "$(policy_code "$GTOK")" = 200
"$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null
"$WISP_BIN/wisp" up --state "$T_STATE" --strict-revocation > /dev/null || exit 1
eval "$("$WISP_BIN/wisp" env --state "$T_STATE")"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
URL="https://127.0.0.1:$PORT"
check "--strict-revocation: the same token is cut off (401)" \
    test "$(policy_code "$GTOK")" = 401
check "a revoked token stays revoked across a restart" test "$(policy_code "$APPTOK")" = 401
sed -i "s#\"token_uri\": \"[^\"]*\"#\"token_uri\": \"$URL/token\"#" "$KEY"
as_app gcloud auth activate-service-account --key-file="$KEY" -q > /dev/null 2>&1
grant add
GTOK=$(mint)
check "strict: a token minted while the binding holds works" \
    test "$(policy_code "$GTOK")" = 200
grant remove
check "strict: remove-iam-policy-binding cuts it off at the next call" \
    test "$(policy_code "$GTOK")" = 401
"$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null
"$WISP_BIN/wisp" up --state "$T_STATE" > /dev/null || exit 1
check "a plain wisp up keeps strict revocation (STATE/config.json)" \
    grep -q 'strict revocation on' "$T_STATE/wispd.log"

# --- token-key rotation ---------------------------------------------------------------------
"$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null
"$WISP_BIN/wisp" up --state "$T_STATE" --token-key-rotation 2 > /dev/null || exit 1
eval "$("$WISP_BIN/wisp" env --state "$T_STATE")"
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
URL="https://127.0.0.1:$PORT"
kid() { python3 -c 'import base64,sys; t=sys.argv[1][8:]; t+="="*(-len(t)%4)
print(int.from_bytes(base64.urlsafe_b64decode(t)[:4], "big"))' "$1"; }
T1=$(grant_token "$T_STATE/owner-key.json")
K1=$(kid "$T1")
rotated=
for _ in $(seq 1 20); do
    T2=$(grant_token "$T_STATE/owner-key.json")
    K2=$(kid "$T2")
    if [ "$K2" -gt "$K1" ]; then rotated=1; break; fi
    sleep 1
done
check "a new sealing key takes over without a restart (kid $K1 -> ${K2:-?})" test -n "$rotated"
check "a token sealed with the older key still opens" test "$(policy_code "$T1")" = 200
all_ok() { # every worker thread opens the new key's tokens
    for _ in $(seq 1 8); do [ "$(policy_code "$T2")" = 200 ] || return 1; done
}
check "the new key's tokens open on every call" all_ok
check "gcloud keeps working across rotations" \
    quiet gcloud projects get-iam-policy "$P" --format=json -q

wisp_done
