# SPDX-License-Identifier: Apache-2.0
# t_churn.sh's driver: creates CYCLES pods on the cluster's Kubernetes API
# (HTTPS, one keep-alive connection, the owner's token), alternating between
# ns-a/app and ns-b/app, with INFLIGHT of them alive at a time. A pod is
# deleted as soon as it has written its result (OUT/NAME.json, see
# churn_probe.py) or has ended without one, so the next pods take addresses
# that a pod of the other identity held a moment ago while the node still
# tears that pod down. Pods end in three ways, in turn: by themselves
# (then deleted), deleted while running (SIGTERM, the node deletes the pod
# from the API after teardown), force-deleted while running (gone from the
# API at once, torn down after). Then it waits for the API to have no pod
# left and prints one JSON summary line.
import http.client
import json
import os
import ssl
import sys
import time
import urllib.parse

api, ca, token_file, out, probe, principal = sys.argv[1:7]
cycles, inflight, deadline = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9]
NS = ("ns-a", "ns-b")
STUCK_S = 120  # a pod with no result after this long is reported stuck

u = urllib.parse.urlparse(api)
ctx = ssl.create_default_context(cafile=ca)
hdr = {"Authorization": "Bearer " + open(token_file).read().strip(),
       "Content-Type": "application/json"}
conn = None


def call(method, path, body=None):
    """(status, parsed body); one reconnect if the connection was closed."""
    global conn
    for attempt in (0, 1):
        if conn is None:
            conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=hdr)
            r = conn.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else {}
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = None
            if attempt:
                raise


ENDS = ("exit", "delete", "force")
# The container's first instruction is an email request from the shell
# (/dev/tcp: no process to start), then the probe (python3 -S: it needs no
# site packages, and skipping them saves each pod a few ms).
FIRST = ("exec 3<>/dev/tcp/169.254.169.254/80 && printf 'GET "
         "/computeMetadata/v1/instance/service-accounts/default/email HTTP/1.1\\r\\n"
         "Host: metadata.google.internal\\r\\nMetadata-Flavor: Google\\r\\n"
         "Connection: close\\r\\n\\r\\n' >&3 && first=$(cat <&3); exec 3<&-; "
         'exec python3 -S "$@" "$first"')


def pod_spec(i):
    ns, other = NS[i % 2], NS[1 - i % 2]
    name = "c%04d" % i
    email = "%s/subject/ns/%s/sa/app" % (principal, ns)
    linger = "0" if ENDS[i % 3] == "exit" else "1"
    return ns, name, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"serviceAccountName": "app", "restartPolicy": "Never",
                 "terminationGracePeriodSeconds": 5,
                 "containers": [{"name": "c", "image": "python:3-slim",
                                 "command": ["bash", "-c", FIRST, "probe", probe, ns, other,
                                             email, out, name, deadline, linger]}]}}


live = {}  # name -> (ns, created at)
results = []
ended_without_result = []
stuck = []
made = 0
start = time.time()
last_sweep = 0.0
while made < cycles or live:
    while len(live) < inflight and made < cycles:
        ns, name, pod = pod_spec(made)
        st, body = call("POST", "/api/v1/namespaces/%s/pods" % ns, pod)
        if st != 201:
            sys.exit("create %s/%s: %d %s" % (ns, name, st, json.dumps(body)[:300]))
        live[name] = (ns, time.time(), ENDS[made % 3])
        made += 1
    done = []
    for name, (ns, t0, end) in live.items():
        f = os.path.join(out, name + ".json")
        if os.path.exists(f):
            with open(f) as fh:
                results.append(json.loads(fh.read()))
            done.append(name)
    # Now and then, the API's view: pods that ended without a result (the
    # probe could not start) or that never end.
    if time.time() - last_sweep > 1:
        last_sweep = time.time()
        for ns in NS:
            st, lst = call("GET", "/api/v1/namespaces/%s/pods" % ns)
            for p in lst.get("items", []):
                name = p["metadata"]["name"]
                if name not in live or name in done:
                    continue
                phase = p.get("status", {}).get("phase")
                if phase in ("Succeeded", "Failed") and not os.path.exists(
                        os.path.join(out, name + ".json")):
                    ended_without_result.append((ns, name, phase))
                    done.append(name)
                elif time.time() - live[name][1] > STUCK_S:
                    stuck.append((ns, name, phase))
                    done.append(name)
    for name in done:
        ns, _, end = live.pop(name)
        opts = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if end != "delete":
            opts["gracePeriodSeconds"] = 0
        call("DELETE", "/api/v1/namespaces/%s/pods/%s" % (ns, name), opts)
    if not done:
        time.sleep(0.01)
churn_s = time.time() - start

# The node removes a deleted pod from the API once its sandbox is gone.
left = None
wait_until = time.time() + 60
while time.time() < wait_until:
    left = sum(len(call("GET", "/api/v1/namespaces/%s/pods" % ns)[1].get("items", []))
               for ns in NS)
    if left == 0:
        break
    time.sleep(0.2)

# Address reuse, in the order pods reported: how many pods took an address
# another pod had held before, and how many of those had been held by a pod
# of the other identity just before (the case that matters).
holder = {}
reuse = cross_reuse = 0
for r in results:
    ip = r.get("ip")
    if not ip:
        continue
    if ip in holder:
        reuse += 1
        if holder[ip] != r["ns"]:
            cross_reuse += 1
    holder[ip] = r["ns"]
# A lingering pod that was ever told another identity says so in NAME.late.
for name in sorted(os.listdir(out)):
    if name.endswith(".late"):
        with open(os.path.join(out, name)) as fh:
            late = json.loads(fh.read())
        late["late"] = True
        results = [r for r in results if r["pod"] != late["pod"]] + [late]
by = {}
for r in results:
    by[r["result"]] = by.get(r["result"], 0) + 1
for r in results:
    if r["result"] != "own":
        print("pod", json.dumps(r), flush=True)
for x in ended_without_result:
    print("ended without a result:", *x)
for x in stuck:
    print("stuck:", *x)
print(json.dumps({
    "cycles": made, "results": len(results), "own": by.get("own", 0),
    "cross": by.get("cross", 0), "only_503": by.get("503", 0), "error": by.get("error", 0),
    "ended_without_result": len(ended_without_result), "stuck": len(stuck),
    "addresses": len(holder), "reuse": reuse, "cross_reuse": cross_reuse,
    "pods_that_saw_503": sum(1 for r in results if r["n503"] or r.get("first") == "503"),
    "first_answers": {k: sum(1 for r in results if r.get("first") == k)
                      for k in set(r.get("first") for r in results)},
    "max_503": max((r["n503"] for r in results), default=0),
    "pods_left": left, "churn_seconds": round(churn_s, 1)}))
