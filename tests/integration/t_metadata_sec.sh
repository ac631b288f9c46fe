#!/usr/bin/env bash
# wisp-metadata's front door against SECURITY.md §A-B, in loopback mode
# (md_lib.sh): callers not yet known and becoming known (§A3), hostNetwork
# pods (§A4), forwarding headers (§A5), Metadata-Flavor and legacy paths
# (§A6), foreign service accounts (§A9), request framing (§B14), size
# limits, slowloris and the per-address rate limit (§B15), CR/LF in
# parameters (§B16) and methods (§B17). t_metadata.sh has the rest.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/md_lib.sh"
need gcloud kubectl curl python3

md_setup wisp-it-mdsec
GSA="sec-gsa@$P.iam.gserviceaccount.com"
WIRE="python3 $here/md_wire.py"
SA=instance/service-accounts

kubectl create namespace ns-a > /dev/null
kubectl create serviceaccount app -n ns-a > /dev/null
kubectl create serviceaccount linked -n ns-a > /dev/null
gcloud iam service-accounts create sec-gsa --quiet > /dev/null 2>&1
kubectl annotate serviceaccount linked -n ns-a iam.gke.io/gcp-service-account=$GSA > /dev/null
gcloud iam service-accounts add-iam-policy-binding "$GSA" --role=roles/iam.workloadIdentityUser \
    --member="serviceAccount:$POOL[ns-a/linked]" --condition=None > /dev/null 2>&1
check "pod ns-a/a at 127.0.0.2" test "$(pod ns-a a app 127.0.0.2)" = 200
check "pod ns-a/b at 127.0.0.3" test "$(pod ns-a b app 127.0.0.3)" = 200
check "pod ns-a/l (linked to the GSA) at 127.0.0.4" test "$(pod ns-a l linked 127.0.0.4)" = 200
# An unknown caller waits up to 8 s here, so that a pod made during the
# wait can be seen to arrive in it.
check "wisp-metadata starts" md_start --unknown-wait-ms 8000
check "ns-a/a is served" wait_for 200 2 $SA/default/token
TA=$(tok)

flavor() { grep -qi '^metadata-flavor: Google' "$OUT.h"; }
no_data() { ! grep -q "access_token\|$P\|$NUM\|$GSA\|ya29" "$OUT"; }
no_data_flavor() { no_data && flavor; }

# §A3: an unknown caller gets a bounded wait, then 503 and no identity.
check "an unknown address: 503 after the wait" test "$(md 9 $SA/default/token)" = 503
check "saying why" grep -q "no pod on this node is known to have the caller's address" "$OUT"
check "and no token" no_data
check "nor an email (not the node's, not anyone's)" test "$(md 9 $SA/default/email)" = 503
# A pod that becomes known during the wait gets its own identity.
md 7 $SA/default/email > "$OUT.code7" 2> /dev/null &
waiter=$!
sleep 1
check "pod ns-a/late at 127.0.0.7, made while it waits" test "$(pod ns-a late linked 127.0.0.7)" = 200
wait $waiter
check "the waiting request gets the new pod's own email" \
    test "$(cat "$OUT.code7"):$(cat "$OUT")" = "200:$GSA"

# §A4: a hostNetwork pod shares the node's address; it is never indexed.
check "a hostNetwork pod at 127.0.0.5" test "$(pod ns-a h linked 127.0.0.5 'hostNetwork: true')" = 200
check "the API keeps hostNetwork" \
    test "$(kubectl get pod h -n ns-a -o jsonpath='{.spec.hostNetwork}')" = true
check "its address gets no token" test "$(md 5 $SA/default/token)" = 503
check "and not the KSA's email" test "$(md 5 $SA/default/email)" = 503
check "but the project's metadata" test "$(md 5 project/project-id):$(cat "$OUT")" = "200:$P"

# §A5: only the peer address counts; forwarding headers are refused.
for h in 'Forwarded: for=127.0.0.4' 'X-Real-IP: 127.0.0.4' 'Client-IP: 127.0.0.4' \
    'X-Forwarded-For: 127.0.0.4'; do
    check "${h%%:*} naming another pod: 403" test "$(md 2 $SA/default/email -H "$h")" = 403
    check "${h%%:*}: no data" no_data
done
check "from an unknown address too" test "$(md 9 $SA/default/token -H 'X-Real-IP: 127.0.0.4')" = 403

# §A6: Metadata-Flavor exactly once and exactly Google; no legacy forms.
raw_md() { # raw_md N PATH [curl args]: without the default header
    local n=$1 path=$2; shift 2
    curl -sS --interface "127.0.0.$n" -o "$OUT" -D "$OUT.h" -w '%{http_code}' "$@" \
        "http://127.0.0.1:$MPORT$path"
}
T=/computeMetadata/v1/$SA/default/token
check "no Metadata-Flavor: 403" test "$(raw_md 2 $T)" = 403
check "no data" no_data
check "Metadata-Flavor: google: 403" test "$(raw_md 2 $T -H 'Metadata-Flavor: google')" = 403
check "Metadata-Flavor: Google twice: 403" \
    test "$(raw_md 2 $T -H 'Metadata-Flavor: Google' -H 'Metadata-Flavor: Google')" = 403
check "no data" no_data
check "Metadata-Flavor: Google then x: 403" \
    test "$(raw_md 2 $T -H 'Metadata-Flavor: Google' -H 'Metadata-Flavor: x')" = 403
check "Metadata-Flavor: Google, x: 403" test "$(raw_md 2 $T -H 'Metadata-Flavor: Google, x')" = 403
check "X-Google-Metadata-Request: True alone: 403" \
    test "$(raw_md 2 $T -H 'X-Google-Metadata-Request: True')" = 403
check "no data" no_data
check "the 403 is GKE's, without Metadata-Flavor (WIRE.md 1.9)" \
    grep -q 'Missing required header "Metadata-Flavor"' "$OUT"
for path in /0.1/meta-data/project-id /0.1/meta-data/ /computeMetadata/v1beta1/project/project-id \
    /computeMetadata/v1beta1/$SA/default/token; do
    check "legacy $path: 404" test "$(raw_md 2 "$path" -H 'Metadata-Flavor: Google')" = 404
    check "no data, Metadata-Flavor: Google" no_data_flavor
    check "legacy $path with the legacy header: 403" \
        test "$(raw_md 2 "$path" -H 'X-Google-Metadata-Request: True')" = 403
done

# §A9: only default and the linked GSA exist.
UID_GSA=$(gcloud iam service-accounts describe "$GSA" --format='value(uniqueId)')
UPPER=$(printf '%s' "$GSA" | tr a-z A-Z)
check "ns-a/l: its GSA's email path" test "$(md 4 $SA/$GSA/email):$(cat "$OUT")" = "200:$GSA"
for acct in "other@$P.iam.gserviceaccount.com" "$UPPER" "$UID_GSA" "$POOL"; do
    check "$acct/token: 404" test "$(md 4 "$SA/$acct/token")" = 404
    check "no data, Metadata-Flavor: Google" no_data_flavor
    check "$acct/email: 404" test "$(md 4 "$SA/$acct/email")" = 404
done
check "a pod without a GSA: the GSA's path is 404" test "$(md 2 "$SA/$GSA/token")" = 404

# §B17: GET only.
for m in PUT OPTIONS TRACE DELETE PATCH POST; do
    check "$m: 405" test "$(md 2 $SA/default/token -X $m)" = 405
    check "$m: Allow: GET and Metadata-Flavor: Google" \
        bash -c "grep -qi '^allow: GET' '$OUT.h' && grep -qi '^metadata-flavor: Google' '$OUT.h'"
done

# §B16: CR/LF and form syntax in parameters are refused, never spliced.
ID=$SA/default/identity
check "audience with CR LF Set-Cookie: 400" test "$(md 4 "$ID?audience=x%0d%0aSet-Cookie:%20a=b")" = 400
check "no Set-Cookie in the answer" bash -c "! grep -qi '^set-cookie' '$OUT.h'"
check "audience with a bare LF: 400" test "$(md 4 "$ID?audience=x%0aX-Y:%20z")" = 400
check "scopes with &grant_type= inside: 400" \
    test "$(md 2 "$SA/default/token?scopes=https://www.googleapis.com/auth/cloud-platform%26grant_type%3Dx")" = 400
check "scopes with CR LF: 400" test "$(md 2 "$SA/default/token?scopes=a%0d%0aSet-Cookie:%20a=b")" = 400
check "no Set-Cookie in the answer" bash -c "! grep -qi '^set-cookie' '$OUT.h'"
check "a separate grant_type parameter is ignored: 200" \
    test "$(md 2 "$SA/default/token?scopes=https://www.googleapis.com/auth/cloud-platform&grant_type=x")" = 200
check "and the token is the default one: no other STS request was made" test "$(tok)" = "$TA"

# §B14: framing, sent raw from a pod's address: 400 and the connection closed.
framing() { # framing NAME BYTES
    local got
    got=$(printf "$2" | $WIRE raw 127.0.0.2 "$MPORT" "$OUT")
    check "$1: 400 and closed" test "$got" = "400 closed"
    check "$1: no data" no_data
}
G='GET /computeMetadata/v1/project/project-id HTTP/1.1\r\nHost: metadata\r\nMetadata-Flavor: Google\r\n'
framing "two Content-Lengths" "${G}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"
framing "Content-Length +1" "${G}Content-Length: +1\r\n\r\na"
framing "Content-Length 0x1" "${G}Content-Length: 0x1\r\n\r\na"
framing "Content-Length 01" "${G}Content-Length: 01\r\n\r\na"
framing "Content-Length -1" "${G}Content-Length: -1\r\n\r\n"
framing "Transfer-Encoding and Content-Length" \
    "${G}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"
framing "Transfer-Encoding gzip" "${G}Transfer-Encoding: gzip\r\n\r\n"
framing "Transfer-Encoding chunked, gzip" "${G}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"
framing "bare LF" 'GET /computeMetadata/v1/project/project-id HTTP/1.1\nHost: metadata\nMetadata-Flavor: Google\n\n'
framing "bare LF after a header" "${G}X-A: b\n\r\n"
framing "obs-fold" "${G}X-A: b\r\n c\r\n\r\n"
framing "NUL in a header" "${G}X-A: b\000c\r\n\r\n"
got=$(printf "${G}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab" | $WIRE raw 127.0.0.2 "$MPORT" "$OUT")
check "the 400 from the HTTP layer carries Metadata-Flavor: Google" grep -qi '^metadata-flavor: Google' "$OUT"
check "a well-formed request on the same path still works" \
    test "$(printf "${G}Connection: close\r\n\r\n" | $WIRE raw 127.0.0.2 "$MPORT" "$OUT")" = "200 closed"

# §B15: sizes, slowloris, rate.
long=$(head -c 10000 /dev/zero | tr '\0' a)
got=$(printf "GET /computeMetadata/v1/?x=$long HTTP/1.1\r\nHost: metadata\r\nMetadata-Flavor: Google\r\n\r\n" |
    $WIRE raw 127.0.0.2 "$MPORT" "$OUT")
check "a 10 KB request line: 414 and closed" test "$got" = "414 closed"
check "with Metadata-Flavor: Google" grep -qi '^metadata-flavor: Google' "$OUT"
got=$(printf "${G}X-Big: $long\r\n\r\n" | $WIRE raw 127.0.0.2 "$MPORT" "$OUT")
check "a 10 KB header: 431 and closed" test "$got" = "431 closed"
many=$(for i in $(seq 80); do printf 'X-%d: v\\r\\n' "$i"; done)
got=$(printf "${G}${many}\r\n" | $WIRE raw 127.0.0.2 "$MPORT" "$OUT")
check "80 header fields: 431 and closed" test "$got" = "431 closed"
many=$(for i in $(seq 120); do printf 'X-%d: v\\r\\n' "$i"; done)
got=$(printf "${G}${many}\r\n" | $WIRE raw 127.0.0.2 "$MPORT" "$OUT")
check "120 header fields: refused (400 or 431) and closed" \
    bash -c "[ '$got' = '400 closed' ] || [ '$got' = '431 closed' ]"
check "no data" no_data
got=$($WIRE slow 127.0.0.2 "$MPORT")
check "a slowloris head is cut off (well within 120 s): $got" test "${got%% *}" = closed
check "the server still answers" test "$(md 2 project/project-id)" = 200

# The rate limit, set low: one pod flooding gets 429, another is served.
md_stop
check "wisp-metadata restarts with --rate-limit 20" md_start --rate-limit 20
check "ns-a/a is served again" wait_for 200 2 project/project-id
got=$($WIRE flood 127.0.0.2 "$MPORT" /computeMetadata/v1/project/project-id 300 "$OUT.h")
check "300 requests at once from one pod: some 429 ($got)" grep -q '429:' <<< "$got"
check "and not all refused" grep -q '200:' <<< "$got"
check "the 429 says Retry-After and Metadata-Flavor: Google" \
    bash -c "grep -qi '^retry-after: ' '$OUT.h' && grep -qi '^metadata-flavor: Google' '$OUT.h'"
check "meanwhile another pod is served" test "$(md 3 $SA/default/token)" = 200
check "and the flooding pod again once it slows down" wait_for 200 2 project/project-id
md_stop
check "no sanitizer report in wisp-metadata's log" bash -c "! grep -q Sanitizer '$T_STATE/metadata.log'"
wisp_done
