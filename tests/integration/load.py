#!/usr/bin/env python3
"""A steady HTTP load for the routing-mesh tests: one client per target
(IP:PORT), each sending GET / on a new connection as soon as the last answer
came, until the file given with --stop exists. Every request that does not
end in "200" with a non-empty body counts as failed, with its reason.

Writes a JSON summary to --out: requests, failures (with reasons), and for
each target the sequence of distinct bodies seen in order ("v1", "v2", ...),
so a test can check both that nothing failed and that the version switched.

--ready FILE is created once every target has answered once.

usage: load.py --out FILE --stop FILE [--ready FILE] IP:PORT [IP:PORT...]
"""
import argparse
import json
import os
import socket
import threading
import time

TIMEOUT = 3.0


def one(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        s.settimeout(TIMEOUT)
        s.sendall(b"GET / HTTP/1.0\r\nHost: shoal\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise RuntimeError("status %r" % status[:60])
    body = body.decode(errors="replace").strip()
    if not body:
        raise RuntimeError("empty body")
    return body


def client(target, stop, result):
    host, port = target.rsplit(":", 1)
    port = int(port)
    seen = []
    while not os.path.exists(stop):
        t0 = time.monotonic()
        try:
            body = one(host, port)
            result["ok"] += 1
            if not seen or seen[-1] != body:
                seen.append(body)
        except Exception as e:  # noqa: BLE001 - every failure counts
            result["failed"] += 1
            if len(result["reasons"]) < 20:
                result["reasons"].append("%s after %.3fs: %s" % (target, time.monotonic() - t0, e))
        result["seq"] = seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--ready")
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    results = {t: {"ok": 0, "failed": 0, "reasons": [], "seq": []} for t in a.targets}
    threads = [threading.Thread(target=client, args=(t, a.stop, results[t])) for t in a.targets]
    for t in threads:
        t.start()
    while a.ready and not os.path.exists(a.stop):
        if all(r["ok"] > 0 for r in results.values()):
            open(a.ready, "w").close()
            break
        time.sleep(0.01)
    for t in threads:
        t.join()
    summary = {
        "requests": sum(r["ok"] + r["failed"] for r in results.values()),
        "failed": sum(r["failed"] for r in results.values()),
        "reasons": [x for r in results.values() for x in r["reasons"]],
        "seq": {t: r["seq"] for t, r in results.items()},
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f)
    os.rename(tmp, a.out)


if __name__ == "__main__":
    main()
