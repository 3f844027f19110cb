#!/usr/bin/env python3
"""A hostile peer for shoal's cluster port (TCP secure streams) and gossip
port (UDP, the same port number), for tests/integration/t_hostile.sh. Runs in
the attacker's network namespace; stdlib only. Every subcommand prints one
JSON object (what it did, what the targets did) on stdout and exits 0 unless
it could not run at all (bad arguments, no capture file): judging the
outcome is the test's job.

  hostile.py tcp-idle TARGETS --count N --hold SECONDS [--ready FILE]
      Open N TCP connections to every target (IP:PORT, comma-separated) and
      send nothing. Create FILE once all are open. Watch them for SECONDS and
      report how many the targets closed, and after how long.
  hostile.py tcp-bad TARGETS --rounds N [--wait SECONDS]
      N rounds, each opening to every target one connection of each kind:
        garbage    4 KiB of random bytes
        oversized  a frame header announcing 0xfffffff0 bytes
        zero       a frame header announcing 0 bytes
        hello-big  a header announcing the handshake maximum (4096) + 1
        junk-hello a header of 4096 and 4096 random bytes (a malformed HELLO)
        partial    a header announcing 100 bytes, 10 of them, then silence
        trickle    a well-formed HELLO, one byte every 250 ms (a slow loris)
      and report, per kind, how many the target closed and how fast (the
      connections stay watched for at most SECONDS, default 15).
  hostile.py udp TARGETS --count N
      Send N random datagrams (0 to 1400 bytes, half of them with the gossip
      version byte 1 in front) and N oversized ones (1401 to 65507 bytes) to
      every target.
  hostile.py join-idle TARGETS --count N --hold SECONDS [--ready FILE]
      Complete N handshakes with every target as a joiner (a dialer without
      certificate, which any host can be: the listener checks nothing), prove
      each session open by calling an unknown RPC method and reading the
      answer, then send nothing more. Create FILE once all are open, watch
      them for SECONDS and report how many the targets closed, and when.
      Needs libsodium (through ctypes) for X25519 and secretstream.
  hostile.py replay PCAP --port PORT [--copies K] [--spoof] [--wait SECONDS]
      From the capture PCAP (pcap.py's format): send every UDP datagram to
      PORT again, K times (default 1), to the address it went to, from this
      host (with --spoof also from the address it came from, through a raw
      socket); and for every TCP connection to PORT in the capture, open a new
      one to the same server and send the bytes the dialer sent (and, on a
      second connection, the bytes the listener sent), then report how the
      server ended each (the connections stay watched for at most SECONDS,
      default 15).
"""
import ctypes
import ctypes.util
import json
import os
import re
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcap  # noqa: E402  (frames_of: the frames of a pcap file)

MAX_UDP = 65507
GOSSIP_MAX_PACKET = 1400
HANDSHAKE_MAX = 4096


def targets_of(arg):
    out = []
    for t in arg.split(","):
        host, _, port = t.rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit("hostile.py: bad target %r (want IP:PORT)" % t)
        out.append((host, int(port)))
    return out


def stats(values):
    if not values:
        return None
    v = sorted(values)
    return {"min": round(v[0], 3), "median": round(v[len(v) // 2], 3), "max": round(v[-1], 3)}


class Conn:
    """One watched connection: when it was opened, when the peer ended it."""

    def __init__(self, kind, target):
        self.kind = kind
        self.target = target
        self.sock = None
        self.opened = None
        self.closed_after = None  # seconds from open to the peer's FIN/RST
        self.received = 0
        self.error = None
        self.pending = b""  # bytes still to send
        self.trickle = False
        self.drip = b""  # bytes to send one every 250 ms
        self.next_drip = 0.0

    def open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(self.target)
        except OSError as e:
            self.error = "connect: %s" % e
            s.close()
            return False
        s.setblocking(False)
        self.sock = s
        self.opened = time.monotonic()
        return True

    def ended(self, now):
        self.closed_after = now - self.opened
        self.sock.close()
        self.sock = None


def watch(conns, seconds, ready=None):
    """Send what each connection still has to send, read and drop what comes
    back, and note when the peer closes; until every connection is closed or
    @seconds have passed."""
    if ready is not None:
        open(ready, "w").close()
    deadline = time.monotonic() + seconds
    while True:
        now = time.monotonic()
        live = [c for c in conns if c.sock is not None]
        if not live or now >= deadline:
            break
        for c in live:
            if c.trickle and c.drip and now >= c.next_drip:
                c.pending += c.drip[:1]
                c.drip = c.drip[1:]
                c.next_drip = now + 0.25
            if c.pending:
                try:
                    n = c.sock.send(c.pending)
                    c.pending = c.pending[n:]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    c.ended(now)
        live = [c for c in live if c.sock is not None]
        if not live:
            continue
        # poll, not select: there may be more than FD_SETSIZE sockets.
        p = select.poll()
        for c in live:
            p.register(c.sock, select.POLLIN)
        r = {fd for fd, _ in p.poll(50)}
        now = time.monotonic()
        for c in live:
            if c.sock.fileno() not in r:
                continue
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                c.received += len(data)
            else:
                c.ended(now)
    still = 0
    for c in conns:
        if c.sock is not None:
            still += 1
            c.sock.close()
            c.sock = None
    return still


def summary(conns):
    by_kind = {}
    for c in conns:
        k = by_kind.setdefault(c.kind, {"opened": 0, "failed_to_open": 0, "closed_by_peer": 0,
                                        "still_open": 0, "close_after_s": []})
        if c.opened is None:
            k["failed_to_open"] += 1
            k.setdefault("errors", []).append(c.error)
            continue
        k["opened"] += 1
        if c.closed_after is not None:
            k["closed_by_peer"] += 1
            k["close_after_s"].append(c.closed_after)
        else:
            k["still_open"] += 1
    for k in by_kind.values():
        k["close_after_s"] = stats(k["close_after_s"])
        if "errors" in k:
            k["errors"] = sorted(set(k["errors"]))[:5]
    return by_kind


def cmd_tcp_idle(args):
    targets = targets_of(args[0])
    count, hold = int(opt(args, "--count")), float(opt(args, "--hold"))
    ready = opt(args, "--ready", "") or None
    conns = []
    for _ in range(count):
        for t in targets:
            c = Conn("idle %s:%d" % t, t)
            c.open()
            conns.append(c)
    watch(conns, hold, ready)
    return {"idle": summary(conns)}


def cmd_tcp_bad(args):
    targets = targets_of(args[0])
    rounds, wait = int(opt(args, "--rounds")), float(opt(args, "--wait", "15"))
    kinds = {
        "garbage": lambda: os.urandom(4096),
        "oversized": lambda: struct.pack(">I", 0xFFFFFFF0),
        "zero": lambda: struct.pack(">I", 0),
        "hello-big": lambda: struct.pack(">I", HANDSHAKE_MAX + 1) + os.urandom(64),
        "junk-hello": lambda: struct.pack(">I", HANDSHAKE_MAX) + os.urandom(HANDSHAKE_MAX),
        "partial": lambda: struct.pack(">I", 100) + os.urandom(10),
        "trickle": lambda: b"",
    }

    def hello():  # a well-formed dialer HELLO (41 bytes: 10 s at 4 bytes/s)
        return frame(b"\x93\x01\x01\xc4\x20" + os.urandom(32))

    conns = []
    for _ in range(rounds):
        for t in targets:
            for kind, payload in kinds.items():
                c = Conn(kind, t)
                if c.open():
                    c.pending = payload()
                    if kind == "trickle":
                        c.trickle = True
                        c.drip = hello()
                conns.append(c)
    watch(conns, wait)
    return {"bad": summary(conns)}


def cmd_udp(args):
    targets = targets_of(args[0])
    count = int(opt(args, "--count"))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = {"garbage": 0, "versioned": 0, "oversized": 0, "errors": 0}
    rnd = lambda n: int.from_bytes(os.urandom(4), "big") % n  # noqa: E731
    for i in range(count):
        for t in targets:
            versioned = i % 2 == 0
            body = os.urandom(rnd(GOSSIP_MAX_PACKET))
            if versioned:
                body = b"\x01" + body[: GOSSIP_MAX_PACKET - 1]
            big = os.urandom(GOSSIP_MAX_PACKET + 1 + rnd(MAX_UDP - GOSSIP_MAX_PACKET))
            for kind, data in (("versioned" if versioned else "garbage", body), ("oversized", big)):
                try:
                    s.sendto(data, t)
                    sent[kind] += 1
                except OSError:
                    sent["errors"] += 1
        if i % 50 == 49:
            time.sleep(0.01)  # let the switch keep up; this is not a bandwidth test
    s.close()
    return {"udp": sent}


class Sodium:
    """The few libsodium calls a joiner's handshake needs, through ctypes."""

    def __init__(self):
        name = ctypes.util.find_library("sodium")
        if name is None:
            raise OSError("libsodium is not installed")
        self.lib = ctypes.CDLL(name)
        if self.lib.sodium_init() < 0:
            raise OSError("sodium_init failed")
        self.lib.crypto_secretstream_xchacha20poly1305_statebytes.restype = ctypes.c_size_t
        self.state_bytes = self.lib.crypto_secretstream_xchacha20poly1305_statebytes()

    def kx_keypair(self):
        pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
        self.lib.crypto_kx_keypair(pk, sk)
        return pk.raw, sk.raw

    def client_keys(self, pk, sk, server_pk):
        rx, tx = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
        if self.lib.crypto_kx_client_session_keys(rx, tx, pk, sk, server_pk) != 0:
            raise ValueError("the listener's ephemeral key is invalid")
        return rx.raw, tx.raw

    def init_push(self, key):
        st, header = ctypes.create_string_buffer(self.state_bytes), ctypes.create_string_buffer(24)
        self.lib.crypto_secretstream_xchacha20poly1305_init_push(st, header, key)
        return st, header.raw

    def push(self, st, m):
        c = ctypes.create_string_buffer(len(m) + 17)
        self.lib.crypto_secretstream_xchacha20poly1305_push(
            st, c, None, m, ctypes.c_ulonglong(len(m)), None, ctypes.c_ulonglong(0), ctypes.c_ubyte(0))
        return c.raw

    def init_pull(self, key, header):
        st = ctypes.create_string_buffer(self.state_bytes)
        if self.lib.crypto_secretstream_xchacha20poly1305_init_pull(st, header, key) != 0:
            raise ValueError("the listener's stream header is invalid")
        return st

    def pull(self, st, c):
        m = ctypes.create_string_buffer(max(1, len(c) - 17))
        mlen, tag = ctypes.c_ulonglong(0), ctypes.c_ubyte(0)
        if self.lib.crypto_secretstream_xchacha20poly1305_pull(
                st, m, ctypes.byref(mlen), ctypes.byref(tag), c, ctypes.c_ulonglong(len(c)), None,
                ctypes.c_ulonglong(0)) != 0:
            raise ValueError("a frame from the listener failed authentication")
        return m.raw[:mlen.value], tag.value


def read_frame(sock):
    def exactly(n):
        b = b""
        while len(b) < n:
            chunk = sock.recv(n - len(b))
            if not chunk:
                raise ValueError("the listener closed the connection")
            b += chunk
        return b

    n = struct.unpack(">I", exactly(4))[0]
    if n > 1 << 20:
        raise ValueError("the listener announced a frame of %d bytes" % n)
    return exactly(n)


def frame(b):
    return struct.pack(">I", len(b)) + b


def joiner_session(na, target):
    """A connection that completed the handshake as a joiner and had one
    request answered; returns the Conn (watched afterwards) and the answer."""
    c = Conn("joiner %s:%d" % target, target)
    if not c.open():
        return c, None
    sock = c.sock
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        pk, sk = na.kx_keypair()
        sock.sendall(frame(b"\x93\x01\x01\xc4\x20" + pk))  # HELLO [1, 1, bin eph]
        hello = read_frame(sock)
        if len(hello) != 37 or hello[:5] != b"\x93\x02\x01\xc4\x20":
            raise ValueError("unexpected listener HELLO %r" % hello[:8])
        rx_key, tx_key = na.client_keys(pk, sk, hello[5:])
        rx = na.init_pull(rx_key, read_frame(sock))
        na.pull(rx, read_frame(sock))  # the listener's CERT, not checked: we attack
        na.pull(rx, read_frame(sock))  # its VERIFY
        tx, header = na.init_push(tx_key)
        sock.sendall(frame(header))
        sock.sendall(frame(na.push(tx, b"\x93\x05\x03\xc0")))  # CERT [5, JOIN, nil]
        # REQUEST [1, version 1, id 1, "hostile", 5000 ms, bin ""]
        req = b"\x96\x01\x01\x01\xa7hostile\xcd\x13\x88\xc4\x00"
        sock.sendall(frame(na.push(tx, req)))
        answer, _ = na.pull(rx, read_frame(sock))
    except (OSError, ValueError) as e:
        c.error = "handshake: %s" % e
        if c.sock is not None:
            c.ended(time.monotonic())
        return c, None
    sock.setblocking(False)
    return c, answer


def cmd_join_idle(args):
    targets = targets_of(args[0])
    count, hold = int(opt(args, "--count")), float(opt(args, "--hold"))
    ready = opt(args, "--ready", "") or None
    na = Sodium()
    conns, answers, errors = [], {}, []
    for _ in range(count):
        for t in targets:
            c, answer = joiner_session(na, t)
            conns.append(c)
            if answer is None:
                errors.append(c.error)
            else:
                # The RESPONSE's message: its longest printable run.
                runs = re.findall(rb"[ -~]{4,}", answer)
                text = max(runs, key=len).decode() if runs else repr(answer)
                answers[text] = answers.get(text, 0) + 1
    # Ages count from the end of the handshake, the connections' common start.
    start = time.monotonic()
    for c in conns:
        if c.opened is not None:
            c.opened = start
    live = [c for c in conns if c.sock is not None]
    watch(live, hold, ready)
    return {"joiner": summary(live), "answers": answers, "established": len(live),
            "handshake_errors": sorted(set(errors))[:5]}


def parse_capture(path, port):
    """The UDP datagrams to @port, as (src, dst, payload), and the TCP
    connections to @port, as {(client, cport, server): {"c2s": bytes,
    "s2c": bytes}}, payloads put in sequence order without duplicates."""
    udp = []
    segs = {}
    for fr in pcap.frames_of(path):
        off = 14
        if len(fr) < off:
            continue
        etype = struct.unpack(">H", fr[12:14])[0]
        if etype == 0x8100 and len(fr) >= 18:
            etype = struct.unpack(">H", fr[16:18])[0]
            off = 18
        if etype != 0x0800 or len(fr) < off + 20:
            continue
        ip = fr[off:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if total == 0 or total > len(ip):  # GSO super-frames may say 0
            total = len(ip)
        frag = struct.unpack(">H", ip[6:8])[0]
        if frag & 0x3FFF:  # a fragment: gossip datagrams are small, skip
            continue
        proto = ip[9]
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        l4 = ip[ihl:total]
        if proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack(">HH", l4[:4])
            if dport == port:
                udp.append((src, dst, l4[8:]))
        elif proto == 6 and len(l4) >= 20:
            sport, dport, seq = struct.unpack(">HHI", l4[:8])
            doff = (l4[12] >> 4) * 4
            data = l4[doff:]
            if not data:
                continue
            if dport == port:
                key, d = (src, sport, dst), "c2s"
            elif sport == port:
                key, d = (dst, dport, src), "s2c"
            else:
                continue
            segs.setdefault(key, {"c2s": {}, "s2c": {}})[d].setdefault(seq, data)
    flows = {}
    for key, dirs in segs.items():
        out = {}
        for d, by_seq in dirs.items():
            buf = b""
            end = 0
            # Offsets from the first segment seen (the connection's start;
            # a retransmission comes later), modulo 2^32.
            first = next(iter(by_seq), 0)
            for rel in sorted((seq - first) & 0xFFFFFFFF for seq in by_seq):
                data = by_seq[(first + rel) & 0xFFFFFFFF]
                if rel >= 1 << 31 or rel + len(data) <= end:
                    continue  # before the start, or already had
                buf += data[max(0, end - rel):]
                end = rel + len(data)
            out[d] = buf
        flows[key] = out
    return udp, flows


def spoofed(src, dst, port, payload):
    """An IPv4 + UDP packet from @src:port to @dst:port (UDP checksum 0:
    none, allowed over IPv4; the kernel fills the IP checksum)."""
    udp = struct.pack(">HHHH", port, port, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + udp


def cmd_replay(args):
    path = args[0]
    port = int(opt(args, "--port"))
    copies = int(opt(args, "--copies", "1"))
    wait = float(opt(args, "--wait", "15"))
    spoof = "--spoof" in args
    udp, flows = parse_capture(path, port)
    out = {"udp_captured": len(udp), "udp_sent": 0, "udp_spoofed": 0, "udp_errors": 0,
           "tcp_flows": len(flows)}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))  # answers come to the gossip port, as to a member
    s.setblocking(False)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) if spoof else None
    replies = {"datagrams": 0, "bytes": 0}

    def drain():
        while True:
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            replies["datagrams"] += 1
            replies["bytes"] += len(data)

    for k in range(copies):
        for i, (src, dst, payload) in enumerate(udp):
            try:
                s.sendto(payload, (dst, port))
                out["udp_sent"] += 1
                out["udp_bytes_sent"] = out.get("udp_bytes_sent", 0) + len(payload)
                if raw is not None:
                    raw.sendto(spoofed(src, dst, port, payload), (dst, 0))
                    out["udp_spoofed"] += 1
            except OSError:
                out["udp_errors"] += 1
            if i % 50 == 49:
                time.sleep(0.01)
            drain()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        select.select([s], [], [], 0.1)
        drain()
    # What the targets sent back to this host (not to the spoofed senders).
    out["udp_replies"] = replies
    s.close()
    if raw is not None:
        raw.close()
    conns = []
    sent = {"c2s": 0, "s2c": 0}
    for (client, cport, server), dirs in flows.items():
        for d in ("c2s", "s2c"):
            data = dirs.get(d, b"")
            if not data:
                continue
            c = Conn("replayed " + ("dialer" if d == "c2s" else "listener") + " bytes",
                     (server, port))
            if c.open():
                c.pending = data[: 1 << 20]
                sent[d] += len(c.pending)
            conns.append(c)
    watch(conns, wait)
    out["tcp_bytes_sent"] = sent
    out["tcp"] = summary(conns)
    return {"replay": out}


def opt(args, name, default=None):
    if name in args:
        i = args.index(name)
        if i + 1 < len(args):
            return args[i + 1]
    if default is None:
        raise SystemExit("hostile.py: %s is required\n%s" % (name, __doc__))
    return default


def main(argv):
    cmds = {"tcp-idle": cmd_tcp_idle, "tcp-bad": cmd_tcp_bad, "udp": cmd_udp,
            "replay": cmd_replay, "join-idle": cmd_join_idle}
    if len(argv) < 2 or argv[0] not in cmds:
        sys.stderr.write(__doc__)
        return 2
    try:
        result = cmds[argv[0]](argv[1:])
    except (OSError, ValueError) as e:
        sys.stderr.write("hostile.py %s: %s\n" % (argv[0], e))
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
