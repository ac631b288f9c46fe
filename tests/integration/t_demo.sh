#!/usr/bin/env bash
# `wisp demo` (root, so with pods) in a private state directory: every step
# of the seed's walkthrough passes, the key lines are printed, and `wisp down`
# leaves no namespace or node process of that state behind. (A second run and
# --cleanup are not repeated here: each run takes about a minute.)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl curl python3
need_root

OUT=$T_STATE/demo.out
"$WISP_BIN/wisp" demo --state "$T_STATE" --project wisp-it-demo > "$OUT" 2>&1
rc=$?
check "wisp demo exits 0 (every step passed)" test $rc -eq 0 ||
    { cat "$OUT"; }
has() { grep -qF -- "$1" "$OUT"; }
check "it started wisp with --nodes" has "\$ wisp up --state $T_STATE --project wisp-it-demo --nodes"
check "it shows the seed's commands" has "\$ gcloud container clusters create demo-cluster-1 --location=us-central1 --workload-pool=wisp-it-demo.svc.id.goog"
check "a pod prints {\"kind\": \"storage#objects\"}" has '{"kind": "storage#objects"}'
check "the linked pod's email is the GSA" has "    demo-gsa@wisp-it-demo.iam.gserviceaccount.com"
check "the quota project's usage changed" grep -qE 'generateAccessToken calls on the quota project: 0 -> [1-9]' "$OUT"
check "the revoked pod is denied" has '"code": 403'
check "it disables Workload Identity" has '$ gcloud container clusters update demo-cluster-1 --disable-workload-identity'
check "summary: no step failed" bash -c "! grep -q '^  FAILED' '$OUT' && grep -q '^wisp demo: [0-9]* steps, 0 failed\$' '$OUT'"
check "it says how to remove what it left" has "gcloud container clusters delete demo-cluster-1 --location=us-central1 --quiet"

PREFIX=$(sed -n 's/^prefix //p' "$T_STATE/run/nodes")
check "wisp down" "$WISP_BIN/wisp" down --state "$T_STATE"
check "no namespace left ($PREFIX*)" test -n "$PREFIX" -a -z "$(ip netns list | grep "^$PREFIX")"
check "no node process left" test -z "$(pgrep -f "wisp-node run .*$T_STATE" || true)"
wisp_done
