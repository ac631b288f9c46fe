#!/usr/bin/env bash
# Artifact Registry repositories through the real gcloud: create, describe,
# list, the seed's reader binding for a KSA principal added and removed
# (and removed again, which gcloud refuses on its own), delete; the REST
# surface with curl (operations, paging, validation); and a caller whose
# project no longer grants it anything, denied by name.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3

P=wisp-it-ar
L=us-central1
R=wisp-repo
wisp_start "$P"
NUM=$(gcloud projects describe "$P" --format='value(projectNumber)')
M="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$P.svc.id.goog/subject/ns/NAMESPACE/sa/KSA_NAME"
TOKEN=$(gcloud auth print-access-token)
# The port changes on every start.
endpoints() {
    PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
        "$T_STATE/run/wispd.json")
    AR="https://127.0.0.1:$PORT/artifactregistry/v1/projects/$P/locations/$L"
}
endpoints
CA="$T_STATE/ca.pem"

# api METHOD URL [BODY] -> prints the HTTP code; the body is in $T_STATE/body.
api() {
    local data=()
    [ -n "${3-}" ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
    curl -sS --cacert "$CA" -o "$T_STATE/body" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $TOKEN" "${data[@]}" "$2"
}
# body_has PYTHON-EXPRESSION: evaluates it with d = the last body as JSON.
body_has() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$T_STATE/body" "$1"
}
has_binding() { # has_binding REPO ROLE MEMBER
    gcloud artifacts repositories get-iam-policy "$1" --location=$L --format=json |
        python3 -c 'import json,sys; p=json.load(sys.stdin); r,m=sys.argv[1:3]; sys.exit(0 if any(b["role"]==r and m in b["members"] for b in p.get("bindings",[])) else 1)' "$2" "$3"
}
lacks_binding() { ! has_binding "$@"; }
fails_with() { # fails_with TEXT cmd...: cmd exits non-zero and prints TEXT
    local text=$1; shift
    ! "$@" > "$T_STATE/out" 2>&1 && grep -qF -- "$text" "$T_STATE/out"
}

# --- gcloud --------------------------------------------------------------
check "gcloud artifacts repositories create (docker, $L)" \
    gcloud artifacts repositories create "$R" --repository-format=docker --location=$L \
    --description="wisp test" --labels=team=wisp
gcloud artifacts repositories describe "$R" --location=$L --format=json > "$T_STATE/body" 2>/dev/null
check "describe shows Google's shape" body_has \
    "d['name']=='projects/$P/locations/$L/repositories/$R' and d['format']=='DOCKER' and d['mode']=='STANDARD_REPOSITORY' and d['description']=='wisp test' and d['labels']=={'team':'wisp'} and d['createTime'].endswith('Z') and d['updateTime']==d['createTime']"
gcloud artifacts repositories list --location=$L --format=json > "$T_STATE/body" 2>/dev/null
check "list --location=$L shows it" body_has \
    "[r['name'] for r in d]==['projects/$P/locations/$L/repositories/$R']"
check "creating it again -> ALREADY_EXISTS" fails_with "ALREADY_EXISTS" \
    gcloud artifacts repositories create "$R" --repository-format=docker --location=$L
check "a location that does not exist -> INVALID_ARGUMENT" fails_with "INVALID_ARGUMENT" \
    gcloud artifacts repositories create other --repository-format=docker --location=moon-base1
check "locations list has $L and the multi-regions" bash -c \
    "gcloud artifacts locations list --format='value(name)' 2>/dev/null | grep -c -x -e $L -e us -e europe -e asia | grep -qx 4"

check "add-iam-policy-binding: reader for a KSA principal" \
    gcloud artifacts repositories add-iam-policy-binding "$R" --location=$L \
    --member="$M" --role='roles/artifactregistry.reader'
check "get-iam-policy shows the binding" has_binding "$R" roles/artifactregistry.reader "$M"
# The seed's command, verbatim but for its placeholders.
REPOSITORY_NAME=$R REPOSITORY_LOCATION=$L
check "seed: remove-iam-policy-binding --all" \
    gcloud artifacts repositories remove-iam-policy-binding "$REPOSITORY_NAME" \
    --location="$REPOSITORY_LOCATION" --member="$M" --role='roles/artifactregistry.reader' --all
check "the binding is gone" lacks_binding "$R" roles/artifactregistry.reader "$M"
check "removing it again fails in gcloud with its own message" \
    fails_with "Policy bindings with the specified principal and role not found!" \
    gcloud artifacts repositories remove-iam-policy-binding "$REPOSITORY_NAME" \
    --location="$REPOSITORY_LOCATION" --member="$M" --role='roles/artifactregistry.reader' --all

"$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null
"$WISP_BIN/wisp" up --state "$T_STATE" > /dev/null
eval "$("$WISP_BIN/wisp" env --state "$T_STATE")"
endpoints
check "the repository survives down/up" \
    gcloud artifacts repositories describe "$R" --location=$L --format='value(name)'

# --- REST with curl --------------------------------------------------------
check "getIamPolicy is a GET" test "$(api GET "$AR/repositories/$R:getIamPolicy")" = 200
check "getIamPolicy by POST -> 405" test "$(api POST "$AR/repositories/$R:getIamPolicy" '{}')" = 405
check "create over REST answers a done Operation" \
    test "$(api POST "$AR/repositories?repositoryId=second" '{"format":"NPM","labels":{"a":"b"}}')" = 200
check "  whose response is the Repository" body_has \
    "d['done'] is True and d['name'].startswith('projects/$P/locations/$L/operations/') and d['response']['@type']=='type.googleapis.com/google.devtools.artifactregistry.v1.Repository' and d['response']['name'].endswith('/repositories/second') and d['response']['sizeBytes']=='0'"
OP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$T_STATE/body")
check "operations.get returns it" test "$(api GET "https://127.0.0.1:$PORT/artifactregistry/v1/$OP")" = 200
check "  done, with the same response" body_has "d['done'] is True and d['response']['format']=='NPM'"
check "an unknown operation -> 404" \
    test "$(api GET "$AR/operations/00000000-0000-4000-8000-000000000000")" = 404
check "page 1 of 2 (pageSize=1)" test "$(api GET "$AR/repositories?pageSize=1")" = 200
check "  has one repository and a token" body_has "len(d['repositories'])==1 and d['nextPageToken']"
TOK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nextPageToken"])' "$T_STATE/body")
FIRST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["repositories"][0]["name"])' "$T_STATE/body")
check "page 2" test "$(api GET "$AR/repositories?pageSize=1&pageToken=$TOK")" = 200
check "  has the other repository" body_has "len(d['repositories'])==1 and d['repositories'][0]['name']!='$FIRST'"
check "filter name=\"…/sec*\" selects one" \
    test "$(api GET "$AR/repositories?filter=name%3D%22projects%2F$P%2Flocations%2F$L%2Frepositories%2Fsec%2A%22")" = 200
check "  the right one" body_has "[r['name'] for r in d['repositories']]==['projects/$P/locations/$L/repositories/second']"
check "an invalid repository ID -> 400" test "$(api POST "$AR/repositories?repositoryId=Not_Valid" '{"format":"DOCKER"}')" = 400
check "a missing format -> 400" test "$(api POST "$AR/repositories?repositoryId=third" '{}')" = 400
check "an unknown field -> 400 naming it" bash -c \
    "test \"\$(curl -sS --cacert '$CA' -o '$T_STATE/u' -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' --data '{\"format\":\"DOCKER\",\"formatt\":1}' '$AR/repositories?repositoryId=third')\" = 400 && grep -q formatt '$T_STATE/u'"
check "a remote repository -> 400 (not served)" \
    test "$(api POST "$AR/repositories?repositoryId=third" '{"format":"DOCKER","mode":"REMOTE_REPOSITORY"}')" = 400
check "a bad label -> 400" test "$(api POST "$AR/repositories?repositoryId=third" '{"format":"DOCKER","labels":{"Bad":"x"}}')" = 400
check "a garbage location -> 400" test "$(api GET "https://127.0.0.1:$PORT/artifactregistry/v1/projects/$P/locations/x%2F..%2Fy/repositories")" = 400
check "a missing repository -> 404" test "$(api GET "$AR/repositories/nope")" = 404
check "testIamPermissions answers the subset held" \
    test "$(api POST "$AR/repositories/$R:testIamPermissions" '{"permissions":["artifactregistry.repositories.get","storage.objects.teleport"]}')" = 200
check "  which is just repositories.get" body_has "d['permissions']==['artifactregistry.repositories.get']"

# --- delete ----------------------------------------------------------------
gcloud artifacts repositories add-iam-policy-binding second --location=$L \
    --member="$M" --role='roles/artifactregistry.reader' > /dev/null 2>&1
check "gcloud artifacts repositories delete" gcloud artifacts repositories delete second --location=$L --quiet
check "describe after delete -> NOT_FOUND" fails_with "NOT_FOUND" \
    gcloud artifacts repositories describe second --location=$L
check "a new repository of that name starts with an empty policy" bash -c \
    "test \"\$(curl -sS --cacert '$CA' -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' --data '{\"format\":\"DOCKER\"}' '$AR/repositories?repositoryId=second')\" = 200"
check "  (no bindings)" lacks_binding second roles/artifactregistry.reader "$M"
check "delete answers a done Operation with Empty" test "$(api DELETE "$AR/repositories/second")" = 200
check "  " body_has "d['done'] is True and d['response']=={'@type':'type.googleapis.com/google.protobuf.Empty'}"

# --- a caller without permission --------------------------------------------
# The owner creates a project with a repository, hands the project to
# someone else, and is then refused, by name.
Q=wisp-it-ar-q
check "gcloud projects create $Q" gcloud projects create "$Q" --quiet
check "a repository in $Q" gcloud artifacts repositories create kept --project="$Q" \
    --repository-format=docker --location=$L
check "give $Q away" test "$(api POST "https://127.0.0.1:$PORT/cloudresourcemanager/v1/projects/$Q:setIamPolicy" \
    '{"policy":{"bindings":[{"role":"roles/owner","members":["user:someone@example.com"]}]}}')" = 200
check "describe in $Q -> 403" test "$(api GET "https://127.0.0.1:$PORT/artifactregistry/v1/projects/$Q/locations/$L/repositories/kept")" = 403
check "the denial names principal, permission and resource" body_has \
    "d['error']['status']=='PERMISSION_DENIED' and 'serviceAccount:wisp-owner@$P.iam.gserviceaccount.com' in d['error']['message'] and 'artifactregistry.repositories.get' in d['error']['message'] and 'projects/$Q/locations/$L/repositories/kept' in d['error']['message']"
check "gcloud describe reports PERMISSION_DENIED" fails_with "PERMISSION_DENIED" \
    gcloud artifacts repositories describe kept --project="$Q" --location=$L
check "gcloud list reports PERMISSION_DENIED" fails_with "PERMISSION_DENIED" \
    gcloud artifacts repositories list --project="$Q" --location=$L
check "gcloud create names artifactregistry.repositories.create" \
    fails_with "artifactregistry.repositories.create" \
    gcloud artifacts repositories create more --project="$Q" --repository-format=docker --location=$L
check "a repository that does not exist is 403 too, not 404" \
    test "$(api GET "https://127.0.0.1:$PORT/artifactregistry/v1/projects/$Q/locations/$L/repositories/nope")" = 403
check "a project that does not exist -> 403" \
    test "$(api GET "https://127.0.0.1:$PORT/artifactregistry/v1/projects/no-such-project/locations/$L/repositories")" = 403

check "gcloud artifacts repositories delete $R" \
    gcloud artifacts repositories delete "$R" --location=$L --quiet

wisp_done
