"""UDP applications for the udp front end's e2e tests (tests/e2e/test_udp.py).

    udpapp.py echo --listen HOST:PORT --ready FILE [--count FILE]
        echo every datagram back to its sender; with --count, write the
        number received to FILE after each one
    udpapp.py sizes --to HOST:PORT --sizes N,N,...
        send one datagram of each size from one socket, expect each back
        intact; prints {"ok": [sizes back intact], "lost": [...]}
    udpapp.py ports --to HOST:PORT --n N
        one datagram from each of N sockets (N source ports), in turn;
        prints {"answered": K}
    udpapp.py flood --to HOST:PORT --sources N --seconds S [--probe HOST:PORT]
        datagrams from N sockets spread over 127.0.0.2-127.0.0.250 for S
        seconds as fast as they go, while one probe socket sends a
        datagram every 50 ms and counts answers; prints {"sent": ...,
        "probes": P, "answered": K}
    udpapp.py rate --to HOST:PORT --count N --size B --pps R
        N numbered datagrams of B bytes from one socket at R a second,
        counting the distinct ones that come back intact (until 2 s after
        the last); prints {"sent": N, "back": K, "lost": N - K}

The last line of output is JSON."""

import argparse
import json
import os
import select
import socket
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def payload(n, seed):
    return bytes((seed * 131 + i * 7 + (i >> 8)) & 0xFF for i in range(n))


def echo(a):
    host, port = hostport(a.listen)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    open(a.ready, "w").close()
    n = 0
    while True:
        data, src = s.recvfrom(65535)
        n += 1
        s.sendto(data, src)
        if a.count:
            with open(a.count + ".tmp", "w") as f:
                f.write(str(n))
            os.replace(a.count + ".tmp", a.count)


def sizes(a):
    to = hostport(a.to)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    ok, lost = [], []
    for i, n in enumerate(int(x) for x in a.sizes.split(",")):
        data = payload(n, i + 1)
        got = None
        for _ in range(3):  # datagrams may be lost: try again
            s.sendto(data, to)
            r, _, _ = select.select([s], [], [], a.wait)
            if r:
                got = s.recv(65535)
                break
        (ok if got == data else lost).append(n)
    print(json.dumps({"ok": ok, "lost": lost}))


def ports(a):
    to = hostport(a.to)
    answered = 0
    for i in range(a.n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        data = payload(32, i)
        s.sendto(data, to)
        r, _, _ = select.select([s], [], [], a.wait)
        if r and s.recv(65535) == data:
            answered += 1
        s.close()
    print(json.dumps({"answered": answered}))


def flood(a):
    to = hostport(a.to)
    # The probe first, so its descriptor stays below select()'s limit.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    socks = []
    for i in range(a.sources):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{2 + i % 249}", 0))
        s.setblocking(False)
        socks.append(s)
    data = b"x" * 64
    sent = probes = answered = 0
    end = time.monotonic() + a.seconds
    next_probe = time.monotonic()
    i = 0
    while time.monotonic() < end:
        try:
            socks[i % len(socks)].sendto(data, to)
            sent += 1
        except BlockingIOError:
            pass
        i += 1
        now = time.monotonic()
        if now >= next_probe:
            probe.sendto(b"probe%d" % probes, to)
            probes += 1
            next_probe = now + 0.05
        r, _, _ = select.select([probe], [], [], 0)
        while r:
            if probe.recv(65535).startswith(b"probe"):
                answered += 1
            r, _, _ = select.select([probe], [], [], 0)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        r, _, _ = select.select([probe], [], [], 0.1)
        if r and probe.recv(65535).startswith(b"probe"):
            answered += 1
    print(json.dumps({"sent": sent, "probes": probes,
                      "answered": answered}))


def rate(a):
    to = hostport(a.to)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    back = set()

    def numbered(seq):
        return (seq.to_bytes(4, "big") * (a.size // 4 + 1))[:a.size]

    def drain(wait):
        r, _, _ = select.select([s], [], [], wait)
        while r:
            d = s.recv(65535)
            seq = int.from_bytes(d[:4], "big")
            if d == numbered(seq):
                back.add(seq)
            r, _, _ = select.select([s], [], [], 0)

    start = time.monotonic()
    for i in range(a.count):
        s.sendto(numbered(i), to)
        due = start + (i + 1) / a.pps
        while True:
            left = due - time.monotonic()
            drain(max(left, 0))
            if left <= 0:
                break
    end = time.monotonic() + 2.0
    while time.monotonic() < end and len(back) < a.count:
        drain(0.1)
    print(json.dumps({"sent": a.count, "back": len(back),
                      "lost": a.count - len(back)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--listen", required=True)
    e.add_argument("--ready", required=True)
    e.add_argument("--count")
    z = sub.add_parser("sizes")
    z.add_argument("--to", required=True)
    z.add_argument("--sizes", required=True)
    z.add_argument("--wait", type=float, default=2.0)
    o = sub.add_parser("ports")
    o.add_argument("--to", required=True)
    o.add_argument("--n", type=int, required=True)
    o.add_argument("--wait", type=float, default=2.0)
    f = sub.add_parser("flood")
    f.add_argument("--to", required=True)
    f.add_argument("--sources", type=int, default=2000)
    f.add_argument("--seconds", type=float, default=3.0)
    r = sub.add_parser("rate")
    r.add_argument("--to", required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--size", type=int, default=1000)
    r.add_argument("--pps", type=float, default=500)
    a = p.parse_args()
    {"echo": echo, "sizes": sizes, "ports": ports, "flood": flood,
     "rate": rate}[a.cmd](a)


if __name__ == "__main__":
    main()
