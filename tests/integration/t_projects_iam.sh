#!/usr/bin/env bash
# Project IAM through the real gcloud: the seed's first binding (a KSA
# principal on a project), read back, removed; persistence across down/up
# and kill -9; 20 concurrent writers losing nothing.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud python3

P=wisp-it-iam
wisp_start "$P"
NUM=$(gcloud projects describe "$P" --format='value(projectNumber)')
check "project has a 12-digit number" test "${#NUM}" -eq 12
M="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$P.svc.id.goog/subject/ns/NAMESPACE/sa/KSA_NAME"

check "seed: add-iam-policy-binding with a principal:// member" \
    gcloud projects add-iam-policy-binding "projects/$P" --role=roles/container.clusterViewer \
    --member="$M" --condition=None --quiet
has_binding() { # has_binding ROLE MEMBER
    gcloud projects get-iam-policy "$P" --format=json |
        python3 -c 'import json,sys; p=json.load(sys.stdin); r,m=sys.argv[1:3]; sys.exit(0 if any(b["role"]==r and m in b["members"] for b in p.get("bindings",[])) else 1)' "$1" "$2"
}
check "get-iam-policy shows the binding" has_binding roles/container.clusterViewer "$M"

"$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null
"$WISP_BIN/wisp" up --state "$T_STATE" > /dev/null
eval "$("$WISP_BIN/wisp" env --state "$T_STATE")"
check "binding survives down/up" has_binding roles/container.clusterViewer "$M"

check "remove-iam-policy-binding" gcloud projects remove-iam-policy-binding "projects/$P" \
    --role=roles/container.clusterViewer --member="$M" --condition=None --quiet
lacks_binding() { ! has_binding "$@"; }
check "the binding is gone" lacks_binding roles/container.clusterViewer "$M"

# kill -9 right after gcloud returned: the acknowledged write must be there.
K="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$P.svc.id.goog/subject/ns/kill/sa/nine"
gcloud projects add-iam-policy-binding "$P" --role=roles/viewer --member="$K" \
    --condition=None --quiet > /dev/null 2>&1
kill -9 "$(wispd_pid)"
"$WISP_BIN/wisp" up --state "$T_STATE" > /dev/null
eval "$("$WISP_BIN/wisp" env --state "$T_STATE")"
check "binding survives kill -9 of wispd" has_binding roles/viewer "$K"

# 20 writers at once, each read-modify-write with its own member. A writer
# that loses the race gets 409 ABORTED ("concurrent policy changes") and,
# as Google's message says, retries the whole read-modify-write: gcloud 528
# retries remove-iam-policy-binding on 409 by itself but not
# add-iam-policy-binding, so the loop here is what a script does.
add_with_retry() { # add_with_retry I
    local try
    for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        if gcloud projects add-iam-policy-binding "$P" --role=roles/viewer \
            --member="serviceAccount:concurrent-$1@$P.iam.gserviceaccount.com" \
            --condition=None --quiet > "$T_STATE/c$1.log" 2>&1; then
            echo "$try" > "$T_STATE/c$1.tries"; return 0
        fi
        grep -q 'concurrent policy changes' "$T_STATE/c$1.log" || return 1
        echo aborted >> "$T_STATE/aborted"
        sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    done
    return 1
}
pids=()
for i in $(seq 1 20); do
    add_with_retry "$i" &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
check "20 concurrent writers all succeed (losers saw only 409 ABORTED)" test "$failed" -eq 0
echo "# 409 ABORTED answers seen: $(cat "$T_STATE/aborted" 2>/dev/null | wc -l)"
n=$(gcloud projects get-iam-policy "$P" --format=json | python3 -c '
import json,sys; p=json.load(sys.stdin)
print(sum(1 for b in p.get("bindings",[]) for m in b["members"] if m.startswith("serviceAccount:concurrent-")))')
check "all 20 concurrent bindings are present (got $n)" test "$n" -eq 20

wisp_done
