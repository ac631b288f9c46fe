# SPDX-License-Identifier: Apache-2.0
# What each pod of t_churn.sh runs, after the pod's shell has made one
# email request the moment the container started (FIRST: its status line
# and body, the earliest a new holder of an address can ask): it asks
# 169.254.169.254 who it is (email and token, retrying 503 until DEADLINE s)
# and, with the token, lists its own namespace's bucket (must be 200) and
# the other namespace's (must be 403). It writes one JSON line to
# OUT/NAME.json (pods see the host's files) and exits 0 when it got its own
# identity, 3 when it ever got an identity that is not its own, 4 when it
# only got 503 (or nothing) before the deadline, 5 on anything else. With
# LINGER=1 it then keeps asking for its email until it is killed (the
# driver deletes it while it runs), and writes OUT/NAME.late if an answer
# is ever not its own. Argv: NS OTHER_NS OWN_EMAIL OUT NAME DEADLINE LINGER
# FIRST.
import http.client
import json
import os
import socket
import ssl
import sys
import time

ns, other, own_email, out, name, deadline, linger, first = sys.argv[1:9]
deadline = time.time() + float(deadline)
MD = "/computeMetadata/v1/instance/service-accounts/default/"
res = {"pod": name, "ns": ns, "ip": "", "n503": 0, "result": "error"}
# The pod's own address, the one its requests come from (a UDP connect
# sends nothing).
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
    u.connect(("169.254.169.254", 80))
    res["ip"] = u.getsockname()[0]


def metadata(what):
    """(status, body) of one metadata request on a fresh connection."""
    c = http.client.HTTPConnection("169.254.169.254", 80, timeout=5)
    try:
        c.request("GET", MD + what, headers={"Metadata-Flavor": "Google"})
        r = c.getresponse()
        return r.status, r.read().decode()
    except OSError as e:
        return 0, str(e)
    finally:
        c.close()


def buckets(names, token):
    """The status of listing each bucket with the token, on one
    connection (one TLS handshake)."""
    c = http.client.HTTPSConnection("storage.googleapis.com", 443, timeout=10,
                                    context=ssl.create_default_context())
    out = []
    try:
        for b in names:
            c.request("GET", "/storage/v1/b/%s/o" % b,
                      headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            r.read()
            out.append(r.status)
    except (OSError, http.client.HTTPException):
        out += [0] * (len(names) - len(out))
    finally:
        c.close()
    return out


def write(suffix):
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(res) + "\n")
    os.rename(tmp, os.path.join(out, name + suffix))


def finish(result, code):
    res["result"] = result
    write(".json")
    if linger == "1" and code == 0:
        while True:
            st, body = metadata("email")
            if st == 200 and body != own_email:
                res["result"], res["email"] = "cross", body
                write(".late")
                sys.exit(3)
            time.sleep(0.02)
    sys.exit(code)


# The shell's first request: "HTTP/1.1 CODE ...\r\n...\r\n\r\nBODY".
head, _, body = first.partition("\r\n\r\n")
res["first"] = head.split(" ")[1] if head.startswith("HTTP/") else "none"
if res["first"] == "200" and body != own_email:
    res["email"] = body
    finish("cross", 3)
email = token = None
while time.time() < deadline and (email is None or token is None):
    if email is None:
        st, body = metadata("email")
        if st == 200:
            email = body
            if email != own_email:
                res["email"] = email
                finish("cross", 3)
        elif st in (503, 0):
            res["n503"] += 1
        else:
            res["email_status"] = st
            finish("error", 5)
    if token is None:
        st, body = metadata("token")
        if st == 200:
            token = json.loads(body)["access_token"]
        elif st in (503, 0):
            res["n503"] += 1
        else:
            res["token_status"] = st
            finish("error", 5)
    if email is None or token is None:
        time.sleep(0.05)
if email is None or token is None:
    finish("503", 4)
res["own"], res["other"] = buckets(("churn-" + ns, "churn-" + other), token)
if res["other"] == 200:
    finish("cross", 3)
finish("own" if res["own"] == 200 and res["other"] == 403 else "error",
       0 if res["own"] == 200 and res["other"] == 403 else 5)
