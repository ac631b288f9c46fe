#!/usr/bin/env bash
# Pod address reuse under churn through the full API path (issue 7,
# SECURITY.md §A.1-A.3). One node with --max-pods-per-node=8, so its pod
# range is a /28: 13 addresses. Pods of two KSAs in two namespaces, each
# KSA's principal bound on its own bucket, are created and deleted CYCLES
# times, alternating between the two, INFLIGHT at a time: with 12 of 13
# addresses in use a freed address is handed out again at once, mostly to
# the other identity, while the node still tears its last holder down. Pods
# end by themselves, by deletion and by forced deletion, in turn. The
# metadata server is paused for PAUSE_MS about once a second (a starved or
# stalled process: its watch falls behind the node). Each pod's first
# instruction asks 169.254.169.254 for its email (the principal:
# return-principal-id-as-email); then churn_probe.py asks for email and
# token (503 allowed until DEADLINE s) and with the token lists its own
# bucket (200) and the other's (403). Asserted: no pod ever got another
# identity; every pod got its own; addresses were reused across
# identities; no wisp-node/wisp-metadata restarted; afterwards the node's
# namespaces, links and address records are as before the first pod, and
# `wisp down` leaves no namespace.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl python3 ip
need_root
CYCLES=${CYCLES:-300}
INFLIGHT=${INFLIGHT:-12}
PAUSE_MS=${PAUSE_MS:-300}
DEADLINE=${DEADLINE:-30} # seconds a pod may see only 503 before it gives up

P=wisp-it-churn
L=us-central1
wisp_start $P --nodes
wisp_pool $P
OUT=$T_STATE/results
mkdir -p "$OUT"

check "a cluster with a workload pool, one node of at most 8 pods" \
    gcloud container clusters create churn --location=$L --workload-pool=$POOL \
    --num-nodes=1 --enable-ip-alias --max-pods-per-node=8 --quiet
check "get-credentials" gcloud container clusters get-credentials churn --location=$L
if [ "$T_FAIL" -gt 0 ]; then wisp_done; exit 1; fi
node_inputs
check "the node's pod range is a /28 (GKE: twice the max pods)" \
    test "${CIDR#*/}" = 28 -a -n "$NODE"
identity() { # identity NS: the namespace, its KSA, its bucket bound to the KSA's principal
    kubectl create namespace "$1" > /dev/null &&
        kubectl create serviceaccount app -n "$1" > /dev/null &&
        # The principal as email tells the two KSAs apart in `email` too.
        kubectl annotate serviceaccount app -n "$1" \
            iam.gke.io/return-principal-id-as-email=true > /dev/null &&
        gcloud storage buckets create "gs://churn-$1" --quiet > /dev/null 2>&1 &&
        gcloud storage buckets add-iam-policy-binding "gs://churn-$1" \
            --role=roles/storage.objectViewer --member="$PRINCIPAL/subject/ns/$1/sa/app" \
            --condition=None --quiet > /dev/null
}
# The two at once: gcloud takes seconds to start.
identity ns-a & A=$!
identity ns-b & B=$!
check "ns-a/app and gs://churn-ns-a bound to its principal" wait $A
check "ns-b/app and gs://churn-ns-b bound to its principal" wait $B
if [ "$T_FAIL" -gt 0 ]; then wisp_done; exit 1; fi

# The node's namespace and its metadata server, and what the node has
# before the first pod: its pod namespaces and the node namespace's links.
PREFIX=$(sed -n 's/^prefix //p' "$T_STATE/run/nodes")
NODE_NS=
for _ in $(seq 300); do
    NODE_NS=$(awk '$3 == "md-gke" {print $4 "-" $5}' "$T_STATE/run/nodes")
    [ -n "$NODE_NS" ] && ip netns list | grep -q "^$NODE_NS\b" && break
    sleep 0.1
done
check "the node and its metadata server are up" test -n "$NODE_NS"
netns_now() { ip netns list | awk '{print $1}' | grep "^$PREFIX" | sort; }
links_now() { ip -n "$NODE_NS" -o link show | awk -F': ' '{print $2}' | sort; }
NETNS0=$(netns_now)
LINKS0=$(links_now)

# The metadata server falling behind the API (CPU starvation, a pause):
# every second or so it is stopped for PAUSE_MS while pods keep coming, so
# new holders of an address ask while its table still has the old one.
# Only while the pid is still that wisp-metadata (the test's own).
MD_PID=$(awk '$1 == "pid" && $3 == "md-gke" {print $2}' "$T_STATE/run/nodes")
is_md() { [ -n "$MD_PID" ] && [ "$(cat "/proc/$MD_PID/comm" 2> /dev/null)" = wisp-metadata ]; }
PAUSER=
stop_pauser() {
    if [ -n "$PAUSER" ]; then kill "$PAUSER" 2> /dev/null; wait "$PAUSER" 2> /dev/null; fi
    PAUSER=
    if is_md; then kill -CONT "$MD_PID"; fi
}
trap 'stop_pauser; wisp_cleanup' EXIT
if [ "$PAUSE_MS" -gt 0 ]; then
    ( while is_md && kill -STOP "$MD_PID"; do
        sleep "$(awk "BEGIN { print $PAUSE_MS / 1000 }")"; kill -CONT "$MD_PID"; sleep 0.7
    done ) &
    PAUSER=$!
fi
echo "# $CYCLES pods, $INFLIGHT in flight, in $CIDR, metadata server paused ${PAUSE_MS} ms/s"
T0=$(date +%s)
python3 "$here/churn_drive.py" "$KAPI" "$T_STATE/cluster-ca.pem" "$T_STATE/owner.token" \
    "$OUT" "$here/churn_probe.py" "$PRINCIPAL" "$CYCLES" "$INFLIGHT" "$DEADLINE" \
    > "$T_STATE/churn.out" 2>&1
echo "# driver exit $?, $(($(date +%s) - T0)) s"
stop_pauser
tail -n 30 "$T_STATE/churn.out"
# How often the race this test is about happened: a caller whose address
# the pod table still gave to its last holder (the server waited instead).
echo "# the metadata server's table was behind the node $(cat "$T_STATE"/nodes/*/*/wisp-metadata.log |
    grep -c 'pod table is behind the node') times"
R=$(tail -n 1 "$T_STATE/churn.out")
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$R" "$1" \
    2> /dev/null; }
check "$CYCLES pods ran and reported" test "$(field results)" = "$CYCLES"
check "no pod ever got another identity than its own" test "$(field cross)" = 0
# The probe allows DEADLINE s of 503; a pod that gets nothing in that time
# is a pod the metadata server lost, so none is allowed.
check "every pod got its own identity (only_503 $(field only_503), error $(field error))" \
    test "$(field own)" = "$CYCLES"
check "no pod stuck or ended without a result" \
    test "$(field stuck)" = 0 -a "$(field ended_without_result)" = 0
check "addresses were reused across the two identities ($(field cross_reuse) times)" \
    test "$(field cross_reuse)" -ge $((CYCLES / 4))
check "every deleted pod left the API" test "$(field pods_left)" = 0
check "no wisp-node or wisp-metadata restarted" \
    test -z "$(grep -E 'restart in|killed by signal|exited with' "$T_STATE/wispd.log")"

# The node's own view: back to what it had before the first pod (the last
# teardown may still be running when the API has let go of the pod).
for _ in $(seq 100); do
    [ "$(netns_now)" = "$NETNS0" ] && [ "$(links_now)" = "$LINKS0" ] && break
    sleep 0.1
done
check "no pod namespace left on the node" test "$(netns_now)" = "$NETNS0"
check "the node namespace's links are as before the first pod" test "$(links_now)" = "$LINKS0"
check "no pod directory or address record left on the node" test -z "$(find "$T_STATE/nodes" \
    -mindepth 4 -maxdepth 4 \( -path '*/pods/*' -o -path '*/addresses/*' \) \
    ! -name .generation 2> /dev/null)"
if [ "$T_FAIL" -gt 0 ]; then
    echo "--- wisp-metadata log (tail)"; tail -n 20 "$T_STATE"/nodes/*/*/wisp-metadata.log
    echo "--- wisp-node log (tail)"; tail -n 20 "$T_STATE"/nodes/*/*/wisp-node.log
fi
check "wisp down" "$WISP_BIN/wisp" down --state "$T_STATE"
check "no namespace left ($PREFIX*)" test -z "$(netns_now)"
# Under the sanitizer build, what the children reported when they stopped.
check "no sanitizer report from wispd, wisp-node or wisp-metadata" \
    sh -c "! cat '$T_STATE/wispd.log' '$T_STATE'/nodes/*/*/*.log 2> /dev/null |
        grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error'"
echo "# $SECONDS s in all"
wisp_done
