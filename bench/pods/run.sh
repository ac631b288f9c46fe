#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/pods: issue 7's pod-start bound. From the create request (POST
# /api/v1/namespaces/NS/pods on the cluster's Kubernetes API, HTTPS, the
# owner's token) to the pod's first successful GET of
# /computeMetadata/v1/instance/service-accounts/default/token from inside
# the pod (its container loops on a token request to 169.254.169.254 until
# 200 and writes $EPOCHREALTIME; CLOCK_REALTIME on one host is comparable):
# p50, p90, p99 and max over N pods created one after another, each deleted
# (gone from the API and, by default, its sandbox torn down) before the
# next. Bound: p99 <= 50 ms.
# Under `wisp up --nodes` with a cluster with a workload pool and a KSA whose
# principal is bound on a bucket. The breakdown splits each pod's time at
# what the logs and the container record: the API's answer to the create,
# the node agent seeing the pod (its watch), the sandbox up (the agent's
# "started" line), the container's first instruction, the metadata server
# learning the pod and its address, and the first 200.
# Clients: "curl" (what a user runs; its own start-up is about 20 ms here)
# and "tcp" (bash's /dev/tcp: no process, so it times wisp's part).
# Knobs (environment): N (100 pods per client), WARMUP (5 pods not
# counted), CLIENTS ("tcp curl"), SETTLE (1: wait until the node has torn a
# pod's sandbox down before creating the next; 0: only until the API has
# forgotten it, so starts overlap the node's teardown, as under churn),
# WISP_BIN (bin/ of the tree, built by make), KEEP (1: keep the state dir).
# Needs: root, make, python3, curl, bash 5, gcloud, kubectl. Every process
# it starts is stopped and its state removed on exit.
set -euo pipefail

BENCH=pods
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/../lib.sh"
root=$bench_root
N=${N:-100}
WARMUP=${WARMUP:-5}
CLIENTS=${CLIENTS:-tcp curl}
SETTLE=${SETTLE:-1}
PROJECT=wisp-bench-pods
LOCATION=us-central1
CLUSTER=pods
NS=bench
KSA=app

bench_need_root
bench_need make python3 curl gcloud kubectl
bench_start
bench_wisp_bin

# ---- wisp, a cluster with a workload pool, a bound KSA -----------------------------
bench_wisp_cluster "$PROJECT" "$LOCATION" "$CLUSTER" "$NS" "$KSA" bench-pods-b
mkdir -m 777 "$tmp/out"

echo "bench/pods: wisp $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), N=$N (+$WARMUP warm-up) per client"
# The node's pods directory: STATE/nodes/FABRIC/NODE/pods (one node).
settle=-
for d in "$tmp"/state/nodes/*/*/; do [ "$SETTLE" = 1 ] && settle=${d}pods; break; done
for client in $CLIENTS; do
    python3 "$here/drive.py" "$API" "$tmp/ca.pem" "$tmp/owner.token" "$NS" "$KSA" "$tmp/out" \
        $((N + WARMUP)) "$client" "$settle" >"$tmp/pods-$client.tsv"
done

# ---- per-pod stages from the logs --------------------------------------------------
# wisp-node logs "pod NS/NAME seen" when its watch delivers the pod, "pod
# NS/NAME sandbox: ..." with the sandbox's parts, and "pod NS/NAME started
# at IP" when the sandbox is up, "pod NS/NAME released" once the projected
# token is written and the containers may start; wisp-metadata logs "pod NS/NAME at IP"
# when its table gets the pod's address. Log times are CLOCK_REALTIME, ms.
nodelog='' mdlog=''
for f in "$tmp"/state/nodes/*/*/wisp-node.log; do nodelog=$f; break; done
for f in "$tmp"/state/nodes/*/*/wisp-metadata.log; do mdlog=$f; break; done
stamps() { # stamps FILE REGEX-WITH-NAME-GROUP TAG
    [ -n "$1" ] && [ -f "$1" ] || return 0
    python3 - "$1" "$2" "$3" <<'PY'
import calendar, re, sys, time
f, rx, tag = sys.argv[1], re.compile(sys.argv[2]), sys.argv[3]
seen = set()
for line in open(f, errors="replace"):
    m = re.match(r'ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z', line)
    g = rx.search(line)
    if not m or not g or g.group(1) in seen:
        continue
    seen.add(g.group(1))
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + int(m.group(2)) / 1000
    extra = "\t".join(g.groups()[1:])
    print("%s\t%s\t%.3f\t%s" % (tag, g.group(1), t, extra))
PY
}
{
    stamps "$nodelog" "pod $NS/([a-z]+-[0-9]+) seen" seen
    stamps "$nodelog" "pod $NS/([a-z]+-[0-9]+) started at" sandbox
    stamps "$nodelog" "pod $NS/([a-z]+-[0-9]+) released" released
    stamps "$nodelog" "pod $NS/([a-z]+-[0-9]+) sandbox: files ([0-9]+) us, netns ([0-9]+) us, veth ([0-9]+) us, clone ([0-9]+) us" parts
    stamps "$mdlog" "pod $NS/([a-z]+-[0-9]+) at [0-9]" mdknows
} >"$tmp/stages.tsv"

for client in $CLIENTS; do
python3 - "$tmp/pods-$client.tsv" "$tmp/stages.tsv" "$WARMUP" "$client" <<'PY'
import sys
pods = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
warm, client = int(sys.argv[3]), sys.argv[4]
pods = pods[warm:]
st = {}
for l in open(sys.argv[2]):
    f = l.rstrip("\n").split("\t")
    st.setdefault(f[1], {})[f[0]] = (float(f[2]), [float(x) for x in f[3:] if x])

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]

def row(label, v):
    if not v:
        print("%-46s %8s" % (label, "n/a"))
        return
    print("%-46s %8.1f %8.1f %8.1f %8.1f %8.1f %5d" % (label, pct(v, 50), pct(v, 90), pct(v, 99),
          max(v), sum(v) / len(v), len(v)))

total, api, seen, sandbox, rel, cont, md, tok, att, dele = [], [], [], [], [], [], [], [], [], []
parts = [[], [], [], []]
for p in pods:
    name, t_post, t_created, t_cont, t_tok, attempts, t_del = p
    t_post, t_created, t_cont, t_tok, t_del = map(float, (t_post, t_created, t_cont, t_tok, t_del))
    s = st.get(name, {})
    total.append((t_tok - t_post) * 1e3)
    api.append((t_created - t_post) * 1e3)
    att.append(int(attempts))
    dele.append((t_del - t_tok) * 1e3)
    # Log times have ms resolution: each stage is measured from the one
    # before it, from t_post.
    prev = t_post
    if "seen" in s:
        seen.append((s["seen"][0] - prev) * 1e3); prev = s["seen"][0]
    if "sandbox" in s:
        sandbox.append((s["sandbox"][0] - prev) * 1e3); prev = s["sandbox"][0]
    if "released" in s:
        rel.append((s["released"][0] - prev) * 1e3); prev = s["released"][0]
    if "parts" in s:
        for i in range(4):
            parts[i].append(s["parts"][1][i] / 1e3)
    cont.append((t_cont - prev) * 1e3); prev = t_cont
    if "mdknows" in s:
        md.append((s["mdknows"][0] - t_post) * 1e3)
    tok.append((t_tok - t_cont) * 1e3)

print()
print("client %s: %-38s %8s %8s %8s %8s %8s %5s" % (client, "ms (CLOCK_REALTIME)", "p50", "p90",
      "p99", "max", "mean", "n"))
row("create POST -> first token 200 (the bound)", total)
row("  create POST -> 201 from the API", api)
row("  create POST -> node agent sees the pod", seen)
row("  -> sandbox up (beside the TokenRequest)", sandbox)
row("      sandbox: address + files", parts[0])
row("      sandbox: netns", parts[1])
row("      sandbox: veth, address, routes", parts[2])
row("      sandbox: clone of the init", parts[3])
row("  -> token written, containers released", rel)
row("  -> container's first instruction", cont)
row("  -> first token 200 (%s loop)" % client, tok)
row("create POST -> metadata server has the IP", md)
row("delete (after the token) -> gone", dele)
print("attempts per pod: p50 %d, max %d" % (pct(att, 50), max(att)))
p99 = pct(total, 99)
print("client %s: p99 %.1f ms: %s (bound 50 ms)" % (client, p99, "ok" if p99 <= 50 else "NOT MET"))
PY
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
