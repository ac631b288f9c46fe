# Shared by the wisp-metadata tests in loopback mode: a wispd cluster whose
# pods get addresses 127.0.0.N through pods/status, a wisp-metadata on
# 127.0.0.1:MPORT watching that cluster, and curl calling it from a pod's
# address (--interface): the kernel reports that source address, so no
# test-only flag exists. Source it after lib.sh; then call md_setup.

# md_setup PROJECT: wisp, a Standard cluster with a workload pool, its
# credentials, and the node the pods go to (node_inputs). Sets API, CA, KAPI, KCA,
# TOKEN, NODE, MPORT, NUM, POOL, PRINCIPAL, OUT.
md_setup() {
    P=$1
    L=us-central1
    wisp_start "$P"
    wisp_api
    wisp_pool "$P"
    OUT="$T_STATE/out"
    MD_PID=
    trap 'md_stop; wisp_cleanup' EXIT
    check "a Standard cluster with a workload pool" \
        gcloud container clusters create std --location=$L --workload-pool=$POOL --quiet
    check "get-credentials" gcloud container clusters get-credentials std --location=$L
    node_inputs
    KCA="$T_STATE/cluster-ca.pem"
    TOKEN=$(cat "$T_STATE/owner.token")
    MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
}

# pod NS NAME KSA IP [SPEC...]: a running pod on NODE with that address;
# SPEC are extra lines of its spec (e.g. "hostNetwork: true"). Prints the
# HTTP status of the status update.
pod() {
    local ns=$1 name=$2 ksa=$3 ip=$4; shift 4
    { printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s}\nspec:\n' "$name" "$ns"
      printf '  serviceAccountName: %s\n  nodeSelector: {kubernetes.io/hostname: %s}\n' "$ksa" "$NODE"
      printf '  containers: [{name: c, image: google/cloud-sdk:slim, command: ["sleep", "infinity"]}]\n'
      for line in "$@"; do printf '  %s\n' "$line"; done
    } | kubectl apply -f - > /dev/null
    curl -sS --cacert "$KCA" -o /dev/null -w '%{http_code}' -X PATCH \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/merge-patch+json' \
        --data "{\"status\":{\"podIP\":\"$ip\",\"phase\":\"Running\"}}" \
        "$KAPI/api/v1/namespaces/$ns/pods/$name/status"
}

# md_start [wisp-metadata flags...]: starts it on MPORT, waits until it answers.
md_start() {
    "$WISP_BIN/wisp-metadata" --kube-api "$KAPI" --kube-ca "$KCA" \
        --kube-token-file "$T_STATE/owner.token" --node "$NODE" --listen "127.0.0.1:$MPORT" \
        --sts "$API/sts" --iamcredentials "$API/iamcredentials" --google-ca "$CA" \
        --project-id "$P" --project-number "$NUM" --cluster-name std --cluster-location $L \
        --cluster-uid uid-1 --log-level warn "$@" >> "$T_STATE/metadata.log" 2>&1 &
    MD_PID=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$MPORT/" && return 0
        sleep 0.1
    done
    return 1
}

md_stop() {
    [ -n "$MD_PID" ] && kill "$MD_PID" 2> /dev/null && wait "$MD_PID" 2> /dev/null
    MD_PID=
}

# md N PATH [curl args...] -> HTTP code; body in $OUT, headers in $OUT.h.
# From 127.0.0.N, with the header.
md() {
    local n=$1 path=$2; shift 2
    curl -sS --interface "127.0.0.$n" -o "$OUT" -D "$OUT.h" -w '%{http_code}' \
        -H 'Metadata-Flavor: Google' "$@" "http://127.0.0.1:$MPORT/computeMetadata/v1/$path"
}

# wait_for CODE N PATH: until that path answers CODE to 127.0.0.N (5 s at most).
wait_for() {
    for _ in $(seq 50); do [ "$(md "$2" "$3")" = "$1" ] && return 0; sleep 0.1; done
    return 1
}

tok() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$OUT"; }
