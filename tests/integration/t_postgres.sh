#!/usr/bin/env bash
# Two wispd replicas on one PostgreSQL database (`wisp up --store
# postgres://...`, each with its own state directory), driven by the real
# gcloud: what one replica writes the other reads at once, a token one
# replica minted works at the other, and a policy set through one replica
# with the etag read through the other before a change gets 409 ABORTED.
# Starts its own PostgreSQL (initdb + pg_ctl, Unix socket only, as the
# postgres user when root) and removes it at the end, also on failure.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud curl python3

PGBIN=${WISP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -1)}
if [ ! -x "$PGBIN/initdb" ]; then
    if [ "${CI:-}" = true ]; then
        echo "FAIL: PostgreSQL (initdb) is required under CI and is missing"; exit 1
    fi
    echo "SKIP: PostgreSQL is not installed (apt-get install postgresql)"; exit 77
fi

PGDIR=$(mktemp -d /tmp/wisp-pgit.XXXXXX)
STATE_B=$(mktemp -d /tmp/wisp-it.XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_cleanup() {
    "$WISP_BIN/wisp" down --state "$STATE_B" > /dev/null 2>&1 || true
    rm -rf "$STATE_B"
    wisp_cleanup
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop > /dev/null 2>&1 || true
    rm -rf "$PGDIR"
}
trap pg_cleanup EXIT
[ "$(id -u)" -eq 0 ] && chown postgres: "$PGDIR"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U wisp -A trust -E UTF8 --no-locale --no-sync \
    > "$PGDIR/setup.log" 2>&1 &&
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 120 \
        -o "-k $PGDIR -h ''" start >> "$PGDIR/setup.log" 2>&1 &&
    as_pg "$PGBIN/createdb" -h "$PGDIR" -U wisp wisp >> "$PGDIR/setup.log" 2>&1 || {
    echo "could not start PostgreSQL:"; cat "$PGDIR/setup.log" "$PGDIR/server.log"; exit 1; }
URL="postgresql:///wisp?host=$PGDIR&user=wisp"

P=wisp-it-pg
Q=wisp-it-pg-two
wisp_start "$P" --store "$URL"
"$WISP_BIN/wisp" up --state "$STATE_B" --project "$P" --store "$URL" > /dev/null || {
    echo "wisp up (replica B) failed:"; cat "$STATE_B/wispd.log"; exit 1; }
ENV_A=$("$WISP_BIN/wisp" env --state "$T_STATE")
ENV_B=$("$WISP_BIN/wisp" env --state "$STATE_B")
on_a() { (eval "$ENV_A"; "$@"); }
on_b() { (eval "$ENV_B"; "$@"); }
port_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' "$1/run/wispd.json"; }
PORT_A=$(port_of "$T_STATE")
PORT_B=$(port_of "$STATE_B")
check "two replicas serve on two ports" test "$PORT_A" != "$PORT_B"
check "both keep no SQLite store" test ! -e "$T_STATE/wisp.db" -a ! -e "$STATE_B/wisp.db"
check "the replicas share one CA (it is in the store)" cmp -s "$T_STATE/ca.pem" "$STATE_B/ca.pem"

SA=pg-app
E=$SA@$P.iam.gserviceaccount.com
check "A: gcloud projects create $Q" on_a gcloud projects create "$Q" --quiet
check "B: gcloud projects describe $Q" on_b gcloud projects describe "$Q" --format='value(projectId)'
check "A: gcloud iam service-accounts create" on_a gcloud iam service-accounts create "$SA" --project="$P"
on_b gcloud iam service-accounts describe "$E" --format='value(email)' > "$T_STATE/b-sa" 2>&1
check "B: gcloud iam service-accounts describe reads it" grep -qx "$E" "$T_STATE/b-sa"
on_b gcloud iam service-accounts list --project="$P" --format='value(email)' > "$T_STATE/b-list" 2>&1
check "B: the list has it too" grep -qx "$E" "$T_STATE/b-list"

# A token minted by A (sealed with the shared token key) works at B.
TOKEN_A=$(on_a gcloud auth print-access-token)
code=$(curl -sS --cacert "$STATE_B/ca.pem" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $TOKEN_A" \
    "https://127.0.0.1:$PORT_B/cloudresourcemanager/v1/projects/$P")
check "A's access token is accepted by B" test "$code" = 200

# Read the policy (and its etag) through A, change it through A, then set
# the old policy through B: the store's compare-and-set refuses it.
on_a gcloud projects get-iam-policy "$P" --format=json > "$T_STATE/stale.json"
check "A: add-iam-policy-binding" on_a gcloud projects add-iam-policy-binding "$P" \
    --role=roles/viewer --member="serviceAccount:$E" --condition=None --quiet
on_b gcloud projects set-iam-policy "$P" "$T_STATE/stale.json" --quiet > "$T_STATE/set.log" 2>&1
rc=$?
check "B: set-iam-policy with A's stale etag fails" test "$rc" -ne 0
echo "# B said: $(grep -m1 ERROR "$T_STATE/set.log")"
check "... with 409 ABORTED" grep -Eq 'ABORTED|concurrent policy changes' "$T_STATE/set.log"
on_b gcloud projects get-iam-policy "$P" --format=json > "$T_STATE/now.json"
check "B: the binding A added is still there" grep -q "serviceAccount:$E" "$T_STATE/now.json"

# With the current etag B's write wins, and A reads it back.
check "B: set-iam-policy with the current etag" on_b gcloud projects set-iam-policy "$P" \
    "$T_STATE/now.json" --quiet
check "B: remove-iam-policy-binding" on_b gcloud projects remove-iam-policy-binding "$P" \
    --role=roles/viewer --member="serviceAccount:$E" --condition=None --quiet
on_a gcloud projects get-iam-policy "$P" --format=json > "$T_STATE/a-now.json"
check "A: sees B's removal" bash -c '! grep -q "serviceAccount:$1" "$2"' _ "$E" "$T_STATE/a-now.json"

# One replica stops; the other serves everything it wrote.
"$WISP_BIN/wisp" down --state "$T_STATE" > /dev/null
check "A down: B still describes A's service account" on_b gcloud iam service-accounts \
    describe "$E" --format='value(email)'
wisp_done
