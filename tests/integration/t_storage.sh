#!/usr/bin/env bash
# Cloud Storage through the real gcloud and curl: the seed's bucket create
# and objectViewer binding for a KSA principal, cp up and down (multipart and
# resumable), ls with and without a prefix, cat, rm; the JSON API with curl
# (the seed's empty listing, metadata with checksums, paging, prefixes, Range,
# preconditions, testPermissions); a caller without permission refused by
# name; and bytes that survive wisp down/up.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3 cmp

P=wisp-it-storage
B=wisp-it-bucket
wisp_start "$P"
NUM=$(gcloud projects describe "$P" --format='value(projectNumber)')
M="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$P.svc.id.goog/subject/ns/NAMESPACE/sa/KSA_NAME"
TOKEN=$(gcloud auth print-access-token)
CA="$T_STATE/ca.pem"
endpoints() { # the port changes on every start
    PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
        "$T_STATE/run/wispd.json")
    ST="https://127.0.0.1:$PORT/storage/v1"
    UP="https://127.0.0.1:$PORT/upload/storage/v1"
}
endpoints
D=$T_STATE/data
mkdir -p "$D"

# api METHOD URL [CURL-ARGS...] -> prints the HTTP code; body in $T_STATE/body,
# headers in $T_STATE/headers. TOK overrides the token ("" sends none).
api() {
    local m=$1 url=$2; shift 2
    local auth=(-H "Authorization: Bearer ${TOK-$TOKEN}")
    [ -z "${TOK-x}" ] && auth=()
    curl -sS --cacert "$CA" -o "$T_STATE/body" -D "$T_STATE/headers" -w '%{http_code}' \
        -X "$m" "${auth[@]}" "$@" "$url"
}
body_has() { # body_has PYTHON-EXPR (d = the last body as JSON)
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$T_STATE/body" "$1"
}
fails_with() { # fails_with TEXT cmd...: cmd exits non-zero and prints TEXT
    local text=$1; shift
    ! "$@" > "$T_STATE/out" 2>&1 && grep -qF -- "$text" "$T_STATE/out"
}
has_binding() { # has_binding ROLE MEMBER
    gcloud storage buckets get-iam-policy "gs://$B" --format=json |
        python3 -c 'import json,sys; p=json.load(sys.stdin); r,m=sys.argv[1:3]; sys.exit(0 if any(b["role"]==r and m in b["members"] for b in p.get("bindings",[])) else 1)' "$1" "$2"
}
# Cloud Storage's checksums of a file, computed here independently.
hashes() {
    python3 - "$1" <<'EOF'
import base64, hashlib, struct, sys
data = open(sys.argv[1], 'rb').read()
t = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    t.append(c)
crc = 0xFFFFFFFF
for b in data:
    crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
crc ^= 0xFFFFFFFF
print(base64.b64encode(struct.pack('>I', crc)).decode(),
      base64.b64encode(hashlib.md5(data).digest()).decode())
EOF
}

# --- buckets and the seed's binding ------------------------------------------
BUCKET=$B
check "seed: gcloud storage buckets create gs://BUCKET" gcloud storage buckets create "gs://$BUCKET"
check "creating it again -> CONFLICT, you already own it" \
    fails_with "you already own it" gcloud storage buckets create "gs://$B"
check "an invalid bucket name -> 400" \
    test "$(api POST "$ST/b?project=$P" -H 'Content-Type: application/json' --data '{"name":"Bad_Name"}')" = 400
check "an unknown field in the bucket -> 400 naming it" bash -c \
    "test \"\$(TOK='$TOKEN' curl -sS --cacert '$CA' -o '$T_STATE/u' -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' --data '{\"name\":\"wisp-x\",\"nmae\":1}' '$ST/b?project=$P')\" = 400 && grep -q nmae '$T_STATE/u'"
check "GET the bucket" test "$(api GET "$ST/b/$B")" = 200
check "  has Google's shape" body_has \
    "d['kind']=='storage#bucket' and d['name']=='$B' and d['id']=='$B' and d['projectNumber']=='$NUM' and d['location']=='US' and d['storageClass']=='STANDARD' and d['iamConfiguration']['uniformBucketLevelAccess']['enabled'] is True"
check "list the project's buckets" test "$(api GET "$ST/b?project=$P")" = 200
check "  has it" body_has "d['kind']=='storage#buckets' and [b['name'] for b in d['items']]==['$B']"

# The seed's command, verbatim but for its placeholders.
check "seed: add-iam-policy-binding objectViewer for a KSA principal" \
    gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
    --role=roles/storage.objectViewer --member="$M" --condition=None
check "get-iam-policy shows the binding" has_binding roles/storage.objectViewer "$M"
check "GET …/iam answers storage's policy shape" test "$(api GET "$ST/b/$B/iam")" = 200
check "  kind, resourceId, etag, version" body_has \
    "d['kind']=='storage#policy' and d['resourceId']=='projects/_/buckets/$B' and d['etag'] and d['version']==1"
check "a stale etag -> 409" test "$(api PUT "$ST/b/$B/iam" -H 'Content-Type: application/json' \
    --data '{"bindings":[],"etag":"BwAAAAAAAAE="}')" = 409
check "testPermissions (repeated parameter)" \
    test "$(api GET "$ST/b/$B/iam/testPermissions?permissions=storage.buckets.get&permissions=storage.objects.list")" = 200
check "  answers both, with its kind" body_has \
    "d['kind']=='storage#testIamPermissionsResponse' and sorted(d['permissions'])==['storage.buckets.get','storage.objects.list']"

# --- the seed's curl on an empty bucket --------------------------------------
check "seed: curl …/b/BUCKET/o on an empty bucket -> 200" test "$(api GET "$ST/b/$B/o")" = 200
check "  exactly {\"kind\": \"storage#objects\"}" \
    python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))=={"kind":"storage#objects"} else 1)' "$T_STATE/body"
check "anonymous -> 401" test "$(TOK= api GET "$ST/b/$B/o")" = 401

# --- objects through gcloud --------------------------------------------------
echo "hello from wisp" > "$D/hello.txt"
echo top > "$D/top.txt"
head -c 3000000 /dev/urandom > "$D/blob.bin"
check "gcloud storage cp (multipart upload)" gcloud storage cp "$D/hello.txt" "gs://$B/dir/hello.txt"
check "media upload of dir/sub/x.txt" \
    test "$(api POST "$UP/b/$B/o?uploadType=media&name=dir/sub/x.txt" --data-binary @"$D/top.txt")" = 200
check "media upload of top.txt" \
    test "$(api POST "$UP/b/$B/o?uploadType=media&name=top.txt" --data-binary @"$D/top.txt")" = 200
check "gcloud storage cp 3 MB resumable (threshold lowered)" \
    env CLOUDSDK_STORAGE_RESUMABLE_THRESHOLD=1Mi gcloud storage cp "$D/blob.bin" "gs://$B/bin/blob.bin"
gcloud storage ls "gs://$B" > "$T_STATE/ls" 2>&1
check "gcloud storage ls gs://B: objects and prefixes" \
    test "$(sort "$T_STATE/ls" | tr '\n' ' ')" = "gs://$B/bin/ gs://$B/dir/ gs://$B/top.txt "
gcloud storage ls "gs://$B/dir/" > "$T_STATE/ls" 2>&1
check "gcloud storage ls gs://B/dir/" \
    test "$(sort "$T_STATE/ls" | tr '\n' ' ')" = "gs://$B/dir/hello.txt gs://$B/dir/sub/ "
check "gcloud storage cat" test "$(gcloud storage cat "gs://$B/dir/hello.txt")" = "hello from wisp"
check "gcloud storage cp down (checksums verified by gcloud)" \
    gcloud storage cp "gs://$B/bin/blob.bin" "$D/blob.down"
check "  the same bytes" cmp -s "$D/blob.bin" "$D/blob.down"

# --- the JSON API with curl ----------------------------------------------------
read -r CRC MD5 <<< "$(hashes "$D/blob.bin")"
check "object metadata (name URL-encoded)" test "$(api GET "$ST/b/$B/o/bin%2Fblob.bin")" = 200
check "  Google's fields, size as a string, CRC32C and MD5 as computed here" body_has \
    "d['kind']=='storage#object' and d['name']=='bin/blob.bin' and d['bucket']=='$B' and d['size']=='3000000' and d['crc32c']=='$CRC' and d['md5Hash']=='$MD5' and d['id']=='$B/bin/blob.bin/'+d['generation'] and d['metageneration']=='1' and d['storageClass']=='STANDARD' and d['etag'] and d['timeCreated'].endswith('Z') and d['selfLink'].endswith('/storage/v1/b/$B/o/bin%2Fblob.bin') and '/download/storage/v1/b/$B/o/bin%2Fblob.bin' in d['mediaLink'] and 'blob' not in d"
check "alt=media with Range -> 206" test "$(api GET "$ST/b/$B/o/dir%2Fhello.txt?alt=media" -H 'Range: bytes=11-14')" = 206
check "  the bytes asked for, and X-Goog-Hash" bash -c \
    "test \"\$(cat '$T_STATE/body')\" = wisp && grep -qi '^x-goog-hash: crc32c=' '$T_STATE/headers'"
check "media upload (uploadType=media)" \
    test "$(api POST "$UP/b/$B/o?uploadType=media&name=media%20one.txt" -H 'Content-Type: text/plain' --data-binary 'one')" = 200
check "  keeps its name and content type" body_has "d['name']=='media one.txt' and d['contentType']=='text/plain' and d['size']=='3'"
check "ifGenerationMatch=0 on an existing object -> 412" \
    test "$(api POST "$UP/b/$B/o?uploadType=media&name=media%20one.txt&ifGenerationMatch=0" --data-binary 'two')" = 412
check "a declared md5Hash that does not match -> 400" bash -c "test \"\$(printf -- '--x\r\nContent-Type: application/json\r\n\r\n{\"name\":\"bad\",\"md5Hash\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}\r\n--x\r\nContent-Type: text/plain\r\n\r\nabc\r\n--x--\r\n' | curl -sS --cacert '$CA' -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: multipart/related; boundary=x' --data-binary @- '$UP/b/$B/o?uploadType=multipart')\" = 400"
check "list with prefix and delimiter" test "$(api GET "$ST/b/$B/o?prefix=dir/&delimiter=/")" = 200
check "  one item and one prefix" body_has \
    "[i['name'] for i in d['items']]==['dir/hello.txt'] and d['prefixes']==['dir/sub/'] and 'nextPageToken' not in d"
check "page 1 (maxResults=2, delimiter=/)" test "$(api GET "$ST/b/$B/o?delimiter=/&maxResults=2")" = 200
check "  two entries and a token" body_has "d['prefixes']==['bin/','dir/'] and 'items' not in d and d['nextPageToken']"
TOK1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nextPageToken"])' "$T_STATE/body")
check "page 2" test "$(api GET "$ST/b/$B/o?delimiter=/&maxResults=2&pageToken=$TOK1")" = 200
check "  the rest, no token" body_has \
    "[i['name'] for i in d['items']]==['media one.txt','top.txt'] and 'prefixes' not in d and 'nextPageToken' not in d"
check "an object that does not exist -> 404" test "$(api GET "$ST/b/$B/o/nope")" = 404
check "a bucket that does not exist -> 404" test "$(api GET "$ST/b/wisp-no-such-bucket/o")" = 404
check "deleting a bucket that is not empty -> 409" test "$(api DELETE "$ST/b/$B")" = 409

# --- a caller without permission ---------------------------------------------
SA=wisp-reader
SAE=$SA@$P.iam.gserviceaccount.com
gcloud iam service-accounts create "$SA" --project="$P" > /dev/null 2>&1
SAT=$(gcloud auth print-access-token --impersonate-service-account="$SAE" 2> /dev/null)
check "a token for a service account with no grants" test -n "$SAT"
check "it may not list objects -> 403" test "$(TOK=$SAT api GET "$ST/b/$B/o")" = 403
check "  the denial names principal, permission and projects/_/buckets/B" body_has \
    "d['error']['code']==403 and 'serviceAccount:$SAE' in d['error']['message'] and 'storage.objects.list' in d['error']['message'] and 'projects/_/buckets/$B' in d['error']['message'] and d['error']['errors'][0]['reason']=='forbidden'"
check "gcloud as that account reports the denial" fails_with "storage.objects.list" \
    gcloud storage ls "gs://$B" --impersonate-service-account="$SAE"
check "grant it objectViewer on the bucket" gcloud storage buckets add-iam-policy-binding "gs://$B" \
    --role=roles/storage.objectViewer --member="serviceAccount:$SAE" --condition=None
check "now it lists" test "$(TOK=$SAT api GET "$ST/b/$B/o?prefix=dir/")" = 200
check "and reads" test "$(TOK=$SAT api GET "$ST/b/$B/o/top.txt?alt=media")" = 200
check "but may not upload -> 403 storage.objects.create" bash -c \
    "test \"\$(curl -sS --cacert '$CA' -o '$T_STATE/u' -w '%{http_code}' -H 'Authorization: Bearer $SAT' --data-binary x '$UP/b/$B/o?uploadType=media&name=x')\" = 403 && grep -q storage.objects.create '$T_STATE/u'"
check "nor read the bucket's policy -> 403" test "$(TOK=$SAT api GET "$ST/b/$B/iam")" = 403

# --- rm, and bytes across down/up -------------------------------------------
check "gcloud storage rm" gcloud storage rm "gs://$B/dir/hello.txt"
check "  gone" test "$(api GET "$ST/b/$B/o/dir%2Fhello.txt")" = 404
"$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null
"$WISP_BIN/wisp" up --state "$T_STATE" > /dev/null
eval "$("$WISP_BIN/wisp" env --state "$T_STATE")"
endpoints
check "after down/up: gcloud storage cat" test "$(gcloud storage cat "gs://$B/top.txt")" = top
check "after down/up: the 3 MB object, byte for byte" bash -c \
    "test \"\$(curl -sS --cacert '$CA' -H 'Authorization: Bearer $TOKEN' '$ST/b/$B/o/bin%2Fblob.bin?alt=media' | cmp - '$D/blob.bin' && echo same)\" = same"
check "after down/up: the binding is still there" test "$(api GET "$ST/b/$B/iam")" = 200
check "  and still binds the KSA principal" body_has "any(b['role']=='roles/storage.objectViewer' and '$M' in b['members'] for b in d['bindings'])"

check "gcloud storage rm --recursive gs://B (objects, then the bucket)" \
    gcloud storage rm --recursive "gs://$B"
check "  the bucket is gone -> 404" test "$(api GET "$ST/b/$B")" = 404
check "  and no object files are left behind" \
    test -z "$(find "$T_STATE/objects" -type f -not -path '*/tmp/*')"

wisp_done
