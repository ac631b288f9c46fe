#!/usr/bin/env python3
"""Raw HTTP/1.1 from a chosen source address, for the metadata server's
front-door tests (t_metadata_sec.sh): what curl will not send.

  md_wire.py raw SRC PORT OUT      request bytes on stdin; prints "STATUS closed|open"
                                   (open: no close within 10 s); the answer goes to OUT
  md_wire.py slow SRC PORT         a head sent one header a second; prints
                                   "closed AFTER_S STATUS" or "open" after 120 s
  md_wire.py flood SRC PORT PATH N OUT  N keep-alive GETs as fast as they go;
                                   prints "CODE:COUNT ..."; one 429's headers go to OUT
"""
import http.client
import select
import socket
import sys
import time


def connect(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def status_of(buf):
    if buf.startswith(b"HTTP/1.") and len(buf.split(b" ")) > 1:
        return buf.split(b" ")[1].decode("latin1")
    return "none"


def raw(src, port, out):
    data = sys.stdin.buffer.read()
    s = connect(src, port)
    s.settimeout(10)
    buf, state = b"", "open"
    try:
        s.sendall(data)
        while True:
            c = s.recv(65536)
            if not c:
                state = "closed"
                break
            buf += c
    except socket.timeout:
        pass
    except OSError:
        state = "closed"
    s.close()
    with open(out, "wb") as f:
        f.write(buf)
    print(status_of(buf), state)


def slow(src, port):
    s = connect(src, port)
    start = time.monotonic()
    s.sendall(b"GET /computeMetadata/v1/ HTTP/1.1\r\nHost: metadata\r\n")
    i = 0
    while time.monotonic() - start < 120:
        readable, _, _ = select.select([s], [], [], 1.0)
        if readable:
            try:
                buf = s.recv(65536)
            except OSError:
                buf = b""
            # Whatever it says (408 or nothing), the server must end it.
            rest = buf
            while rest:
                try:
                    rest = s.recv(65536)
                except OSError:
                    break
            print("closed", int(time.monotonic() - start), status_of(buf))
            return
        try:
            s.sendall(b"X-Slow-%d: a\r\n" % i)
        except OSError:
            print("closed", int(time.monotonic() - start), "none")
            return
        i += 1
    print("open")


def flood(src, port, path, n, out):
    c = http.client.HTTPConnection("127.0.0.1", port, source_address=(src, 0), timeout=30)
    counts = {}
    for _ in range(n):
        c.request("GET", path, headers={"Metadata-Flavor": "Google", "Host": "metadata"})
        r = c.getresponse()
        r.read()
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status == 429 and counts[429] == 1:
            with open(out, "w") as f:
                f.write("".join("%s: %s\n" % kv for kv in r.getheaders()))
    c.close()
    print(" ".join("%d:%d" % kv for kv in sorted(counts.items())))


if __name__ == "__main__":
    cmd, src, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "raw":
        raw(src, port, sys.argv[4])
    elif cmd == "slow":
        slow(src, port)
    else:
        flood(src, port, sys.argv[4], int(sys.argv[5]), sys.argv[6])
