#!/usr/bin/env python3
"""Packet capture for integration tests, without tcpdump.

  pcap.py capture OUT READY [--exclude IF]... [--skip-outgoing]
      Capture every frame on every interface of the current network namespace
      (AF_PACKET, ETH_P_ALL, not bound to one interface) into OUT, in pcap
      format (Ethernet link type, readable by tcpdump/wireshark). Creates the
      file READY once the socket is open, so nothing sent after that is missed.
      On SIGTERM or SIGINT it stops reading new data only once the socket has
      been quiet for 100 ms (at most 2 s more), so the frames queued at stop
      time are kept; then it writes "frames=N dropped=M" to stderr and exits 0.
      --exclude IF drops frames seen on interface IF (e.g. the bridge itself,
      which sees flooded frames a second time); --skip-outgoing drops frames
      the namespace transmits, so a frame crossing a bridge is kept once, as it
      enters the switch.
  pcap.py grep FILE STRING
      Exit 0 if STRING's (UTF-8) bytes occur inside one captured frame, 1 if
      not, 2 if FILE is not a readable pcap file. A string split over two
      TCP segments is not found.
  pcap.py count FILE
      Print the number of frames in FILE.
"""
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6
SNAPLEN = 262144  # veth does GSO: one "frame" can be a 64 KiB super-packet


def capture(out, ready, exclude, skip_outgoing):
    stop = []

    def on_signal(signum, frame):
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    excluded = set()
    for name in exclude:
        try:
            excluded.add(socket.if_nametoindex(name))
        except OSError:
            pass
    f = open(out, "wb")
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
    f.flush()
    open(ready, "w").close()

    frames = 0
    s.setblocking(False)

    def drain():
        nonlocal frames
        got = False
        while True:
            try:
                data, addr = s.recvfrom(SNAPLEN)
            except (BlockingIOError, InterruptedError):
                return got
            got = True
            # addr = (ifname, proto, pkttype, hatype, hwaddr)
            if skip_outgoing and addr[2] == PACKET_OUTGOING:
                continue
            if excluded and socket.if_nametoindex(addr[0]) in excluded:
                continue
            now = time.time()
            f.write(struct.pack("<IIII", int(now), int((now % 1) * 1e6), len(data), len(data)))
            f.write(data)
            frames += 1

    while not stop:
        try:
            select.select([s], [], [], 0.2)
        except InterruptedError:
            pass
        drain()
        f.flush()
    # Stop requested: keep reading until the socket has been quiet for 100 ms.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            break
        drain()
    drain()
    f.close()
    dropped = 0
    try:
        st = s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        dropped = struct.unpack("II", st)[1]
    except OSError:
        pass
    s.close()
    sys.stderr.write("frames=%d dropped=%d\n" % (frames, dropped))
    return 0


def frames_of(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("not a pcap file")
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xA1B2C3D4:
        endian = "<"
    elif magic == 0xD4C3B2A1:
        endian = ">"
    else:
        raise ValueError("not a pcap file")
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "IIII", data[off:off + 16])[2]
        off += 16
        yield data[off:off + incl]
        off += incl


def main(argv):
    if len(argv) >= 3 and argv[0] == "capture":
        out, ready = argv[1], argv[2]
        exclude, skip = [], False
        rest = argv[3:]
        while rest:
            if rest[0] == "--exclude" and len(rest) > 1:
                exclude.append(rest[1])
                rest = rest[2:]
            elif rest[0] == "--skip-outgoing":
                skip = True
                rest = rest[1:]
            else:
                sys.exit(__doc__)
        return capture(out, ready, exclude, skip)
    if len(argv) == 3 and argv[0] == "grep":
        needle = argv[2].encode()
        try:
            return 0 if any(needle in fr for fr in frames_of(argv[1])) else 1
        except (OSError, ValueError) as e:
            sys.stderr.write("pcap.py: %s: %s\n" % (argv[1], e))
            return 2
    if len(argv) == 2 and argv[0] == "count":
        try:
            print(sum(1 for _ in frames_of(argv[1])))
            return 0
        except (OSError, ValueError) as e:
            sys.stderr.write("pcap.py: %s: %s\n" % (argv[1], e))
            return 2
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
