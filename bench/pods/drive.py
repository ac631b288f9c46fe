# SPDX-License-Identifier: Apache-2.0
# bench/pods driver: creates N pods one after another on the cluster's
# Kubernetes API (HTTPS, one keep-alive connection, the owner's token) and,
# for each, waits for the file its container writes after its first 200 from
# the metadata server's token endpoint; then deletes the pod and waits until
# it is gone from the API and, with a settle directory, until the node has
# torn its sandbox down (STATE/.../pods/UID gone), so that one pod's start
# is not timed while the node still removes the one before. Prints one TSV
# line per pod (all times CLOCK_REALTIME, s).
import http.client
import json
import os
import ssl
import sys
import time
import urllib.parse


def main():
    api, ca, token_file, ns, ksa, out_dir, n, client, settle = sys.argv[1:10]
    n = int(n)
    u = urllib.parse.urlparse(api)
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
    token = open(token_file).read().strip()
    hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(method, path, body=None):
        conn.request(method, path, body=body, headers=hdr)
        r = conn.getresponse()
        data = r.read()
        return r.status, data

    # The container: the time it starts, then a token request in a loop
    # until the endpoint answers 200, then the time of that 200 and the
    # number of attempts. $EPOCHREALTIME needs no fork. The "curl" client
    # is what a user runs (about 20 ms of its own start-up on this kind of
    # machine); "tcp" is bash's /dev/tcp, no process at all, so what it
    # measures is wisp's part.
    path = "/computeMetadata/v1/instance/service-accounts/default/token"
    if client == "curl":
        attempt = ('curl -sf -o /dev/null -H "Metadata-Flavor: Google" '
                   'http://169.254.169.254%s' % path)
    else:
        attempt = ('exec 3<>/dev/tcp/169.254.169.254/80 && '
                   'printf "GET %s HTTP/1.1\\r\\nHost: metadata.google.internal\\r\\n'
                   'Metadata-Flavor: Google\\r\\nConnection: close\\r\\n\\r\\n" >&3 && '
                   'read -r l <&3 && [[ $l == *" 200 "* ]]' % path)
    script = (
        'S=$EPOCHREALTIME; n=0; '
        'until n=$((n+1)); %s; do exec 3<&- 2>/dev/null; done 2>/dev/null; '
        'echo "$S $EPOCHREALTIME $n" > %s/$HOSTNAME.tmp && mv %s/$HOSTNAME.tmp %s/$HOSTNAME.done'
        % (attempt, out_dir, out_dir, out_dir))
    print("pod\tt_post\tt_created\tt_container\tt_token\tattempts\tt_deleted", flush=True)
    for i in range(n):
        name = "%s-%04d" % (client, i)
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "serviceAccountName": ksa,
                "restartPolicy": "Never",
                "nodeSelector": {"iam.gke.io/gke-metadata-server-enabled": "true"},
                "containers": [{"name": "c", "image": "curlimages/curl",
                                "command": ["bash", "-c", script]}],
            },
        }
        body = json.dumps(pod)
        done = os.path.join(out_dir, name + ".done")
        t_post = time.time()
        st, data = call("POST", "/api/v1/namespaces/%s/pods" % ns, body)
        t_created = time.time()
        if st != 201:
            sys.exit("create %s: %d %s" % (name, st, data[:300]))
        uid = json.loads(data)["metadata"]["uid"]
        deadline = time.time() + 30
        while not os.path.exists(done):
            if time.time() > deadline:
                sys.exit("%s: no token within 30 s" % name)
            time.sleep(0.001)
        s, t, attempts = open(done).read().split()
        st, data = call("DELETE", "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=0" % (ns, name))
        deadline = time.time() + 30
        while True:
            st, _ = call("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, name))
            if st == 404:
                break
            if time.time() > deadline:
                sys.exit("%s: not deleted within 30 s" % name)
            time.sleep(0.005)
        t_deleted = time.time()
        sandbox = os.path.join(settle, uid) if settle != "-" else None
        while sandbox and os.path.exists(sandbox):
            if time.time() > deadline:
                sys.exit("%s: sandbox not removed within 30 s" % name)
            time.sleep(0.002)
        print("%s\t%.6f\t%.6f\t%s\t%s\t%s\t%.6f" % (name, t_post, t_created, s, t, attempts,
                                                   t_deleted), flush=True)


main()
