# SPDX-License-Identifier: Apache-2.0
# bench/metadata/rss.sh's helper. Pod I (0-based) is NS/pod-I running as its
# own KSA NS/ksa-I, so every pod has an identity no other pod shares, at the
# loopback address addr(I) = 127.10.(I // 250).(I % 250 + 1); the kernel
# lets a socket bind any 127.0.0.0/8 source, so a client "is" pod I by
# binding addr(I).
#
#   pods API CA TOKEN_FILE NS NODE FROM TO
#       create ksa-I and pod-I for FROM <= I < TO on the cluster's API (one
#       keep-alive HTTPS connection per worker thread), each pod pinned to
#       NODE, then PATCH pods/status to {podIP: addr(I), phase: Running};
#       a 429 (the store busy) is retried with back-off.
#   tokens MD_PORT TOKENINFO_URL CA PRINCIPAL NS FROM TO ROUNDS
#       from each pod's address, GET the metadata server's default token
#       (503 is retried: the watch may not have the address yet), then ask
#       wispd's tokeninfo whose token it is: the subject must be
#       PRINCIPAL/subject/ns/NS/sa/ksa-I, and no two pods share a token.
#       Then ROUNDS - 1 more requests per pod, each a new connection (the
#       kernel spreads them over the server's workers, so each worker
#       caches what it served), each answering the same cached token.
#   hit PORT FROM TO
#       GET /token.json from each pod's address (the competitor's side).
# Prints one summary line; exits 1 on the first wrong answer.
import http.client
import json
import ssl
import sys
import threading
import time
import urllib.parse

WORKERS = 4
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


def addr(i):
    return "127.10.%d.%d" % (i // 250, i % 250 + 1)


def in_parallel(fn, lo, hi):
    """Runs fn(worker_state, i) for lo <= i < hi on WORKERS threads; each
    thread gets its own state dict (its connections). Returns the results
    in order, or exits on the first exception."""
    out = [None] * (hi - lo)
    errors = []
    nxt = [lo]
    mu = threading.Lock()

    def work():
        state = {}
        while not errors:
            with mu:
                i = nxt[0]
                nxt[0] += 1
            if i >= hi:
                return
            try:
                out[i - lo] = fn(state, i)
            except Exception as e:  # reported once, below
                errors.append("%d: %s" % (i, e))
                return

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("rss_pods: " + errors[0])
    return out


def cmd_pods(api, ca, token_file, ns, node, lo, hi):
    u = urllib.parse.urlparse(api)
    ctx = ssl.create_default_context(cafile=ca)
    hdr = {"Authorization": "Bearer " + open(token_file).read().strip()}

    def call(state, method, path, body, ctype="application/json"):
        if "c" not in state:
            state["c"] = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
        c = state["c"]
        for attempt in range(50):  # 429: the store is busy (other writers); back off
            c.request(method, path, body=json.dumps(body),
                      headers=dict(hdr, **{"Content-Type": ctype}))
            r = c.getresponse()
            data = r.read()
            if r.status != 429:
                break
            time.sleep(0.05 * (attempt + 1))
        return r.status, data

    def one(state, i):
        st, data = call(state, "POST", "/api/v1/namespaces/%s/serviceaccounts" % ns,
                        {"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "ksa-%d" % i, "namespace": ns}})
        if st not in (201, 409):
            raise RuntimeError("create ksa-%d: %d %s" % (i, st, data[:200]))
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "pod-%d" % i, "namespace": ns},
               "spec": {"serviceAccountName": "ksa-%d" % i,
                        "nodeSelector": {"kubernetes.io/hostname": node},
                        "containers": [{"name": "c", "image": "x", "command": ["sleep"]}]}}
        st, data = call(state, "POST", "/api/v1/namespaces/%s/pods" % ns, pod)
        if st != 201:
            raise RuntimeError("create pod-%d: %d %s" % (i, st, data[:200]))
        st, data = call(state, "PATCH", "/api/v1/namespaces/%s/pods/pod-%d/status" % (ns, i),
                        {"status": {"podIP": addr(i), "phase": "Running"}},
                        "application/merge-patch+json")
        if st != 200:
            raise RuntimeError("patch pod-%d: %d %s" % (i, st, data[:200]))

    t0 = time.time()
    in_parallel(one, lo, hi)
    print("pods %d..%d created, running at their addresses (%.1f s)" % (lo, hi - 1,
                                                                      time.time() - t0))


def get_from(i, port, path, hdr):
    """One GET to 127.0.0.1:port from pod i's address; (status, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(addr(i), 0))
    try:
        c.request("GET", path, headers=hdr)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def cmd_tokens(md_port, info_url, ca, principal, ns, lo, hi, rounds):
    u = urllib.parse.urlparse(info_url)
    ctx = ssl.create_default_context(cafile=ca)

    def get_token(i):
        for _ in range(100):  # 503 until the watch has the address: 10 s at most
            st, body = get_from(i, md_port, TOKEN_PATH, {"Metadata-Flavor": "Google"})
            if st != 503:
                break
            time.sleep(0.1)
        if st != 200:
            raise RuntimeError("pod-%d's token: %d %s" % (i, st, body[:200]))
        return json.loads(body)["access_token"]

    def one(state, i):
        tok = get_token(i)
        if "c" not in state:
            state["c"] = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
        state["c"].request("GET", u.path + "?" + urllib.parse.urlencode({"access_token": tok}))
        r = state["c"].getresponse()
        info = r.read()
        want = "%s/subject/ns/%s/sa/ksa-%d" % (principal, ns, i)
        sub = json.loads(info).get("sub") if r.status == 200 else None
        if sub != want:
            raise RuntimeError("pod-%d's token is %r (tokeninfo %d), not %s" % (i, sub, r.status,
                                                                                want))
        return tok

    t0 = time.time()
    toks = in_parallel(one, lo, hi)
    if len(set(toks)) != len(toks):
        sys.exit("rss_pods: two pods were given the same token")

    def again(state, i):
        if get_token(i) != toks[i - lo]:
            raise RuntimeError("pod-%d was given a token other than its cached one" % i)

    for _ in range(rounds - 1):
        in_parallel(again, lo, hi)
    print("%d tokens: all 200, each its own pod's principal, all distinct, the same again in"
          " %d more rounds (%.1f s)" % (len(toks), rounds - 1, time.time() - t0))


def cmd_hit(port, lo, hi):
    def one(state, i):
        st, body = get_from(i, port, "/token.json", {})
        if st != 200:
            raise RuntimeError("from %s: %d" % (addr(i), st))

    in_parallel(one, lo, hi)
    print("%d requests from %d addresses: all 200" % (hi - lo, hi - lo))


def main():
    a = sys.argv[1:]
    if a and a[0] == "pods" and len(a) == 8:
        cmd_pods(a[1], a[2], a[3], a[4], a[5], int(a[6]), int(a[7]))
    elif a and a[0] == "tokens" and len(a) == 9:
        cmd_tokens(int(a[1]), a[2], a[3], a[4], a[5], int(a[6]), int(a[7]), int(a[8]))
    elif a and a[0] == "hit" and len(a) == 4:
        cmd_hit(int(a[1]), int(a[2]), int(a[3]))
    else:
        sys.exit("usage: rss_pods.py pods|tokens|hit ... (see the top of this file)")


main()
