#!/usr/bin/env python3
"""Start or remove N containers through a Docker Engine API socket (shoal's or
dockerd's), one keep-alive connection, sequentially; prints the seconds taken.

Usage: ctr_client.py SOCKET start IMAGE N PREFIX [NETWORK]
       ctr_client.py SOCKET rm N PREFIX
"""
import http.client
import json
import socket
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 400:
        sys.exit(f"{method} {path}: {resp.status} {data.decode(errors='replace')}")
    return data


def main():
    sock, verb = sys.argv[1], sys.argv[2]
    conn = UnixConnection(sock)
    if verb == "start":
        image, n, prefix = sys.argv[3], int(sys.argv[4]), sys.argv[5]
        network = sys.argv[6] if len(sys.argv) > 6 else "none"
        body = {"Image": image, "Cmd": ["sleep", "100000"],
                "HostConfig": {"NetworkMode": network}}
        t0 = time.monotonic()
        for i in range(n):
            call(conn, "POST", f"/v1.41/containers/create?name={prefix}{i}", body)
            call(conn, "POST", f"/v1.41/containers/{prefix}{i}/start")
        print(f"{time.monotonic() - t0:.3f}")
    elif verb == "rm":
        n, prefix = int(sys.argv[3]), sys.argv[4]
        for i in range(n):
            call(conn, "DELETE", f"/v1.41/containers/{prefix}{i}?force=1")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
