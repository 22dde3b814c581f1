"""Applications at both ends of a tunnel, run inside test namespaces with
`ip netns exec ... /usr/bin/python3 netapp.py COMMAND ...`; the bench
(bench/run.py) runs them too.

  serve --listen ADDR --mode echo|reply [--ready FILE]
      echo: send back everything, and end writing after the peer's EOF;
      reply: read to EOF, then answer with the sha256 of what was read and
      close (checks half-close both ways). One thread and epoll, with at
      most 1 MiB queued per connection: it carries bulk transfers and holds
      10,000 idle connections as easily as one.
  roundtrip --connect ADDR --bytes N [--conns K] [--seed S] [--mixed]
            [--no-half-close]
      K concurrent connections each send N deterministic bytes through an
      echo and verify the sha256 of what comes back; prints JSON. --mixed
      makes every other block compressible; --no-half-close reads the N
      bytes back without first shutting down writing (for tunnels without
      half-close, such as kcptun's smux) and then closes.
  halfclose --connect ADDR --bytes N
      send N bytes, shut down writing, expect the sha256 back (reply mode).
  probe --connect ADDR
      send a little and report how the connection ends and how fast.
  garbage --to HOST:PORT --looks-like quic|kcp|kcptun [--count N]
      send N (3,000) random UDP datagrams and report whether anything
      answered within 2 s: {"answered": bool}. For quic and kcp every third
      is shaped like the first bytes of the engine's packets; for kcptun
      all are random, 20 bytes or more, paced (none passes kcptun's CRC).
  quiet --connect ADDR --secs S
      through an echo: 1 KiB there and back, S seconds of silence on the
      open connection, 1 KiB again; prints {"ok": both came back whole,
      "first", "second": what each exchange got back (bytes, or the error)}.
  latency --connect ADDR --count N
      N times, one after the other: connect, send one byte, read its echo;
      prints {"ms": [connect + first byte, per success], "failed": n}.
  wait --connect ADDR --timeout T [--accept]
      until an echo answers one byte (every 0.2 s, for T seconds); exit
      status 0 if it did. --accept: until a connection is accepted (any
      server, not only an echo).
  idle --connect ADDR --conns N --stall S
      opens up to N connections one after the other, each proven end to
      end by one echoed byte and then left open and silent; stops at the
      first that fails or gets no echo within S seconds (a stream limit).
      Prints {"wanted", "up", "stopped", "open_s"}, then holds every
      connection until a line arrives on stdin.

ADDR is HOST:PORT, [V6]:PORT or unix:PATH. Exit status 0 means verified.
"""

import argparse
import hashlib
import json
import os
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcputil  # noqa: E402


def sockaddr(text):
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[5:]
    host, port = tcputil.parse_hostport(text)
    return tcputil.family_of(host), (host, port)


def connect(text, timeout=10.0):
    fam, addr = sockaddr(text)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    s.settimeout(None)
    return s


# How much a served connection may have queued to send before the server
# stops reading from it: the peer's own flow control does the rest.
SERVE_QUEUE = 1 << 20


class _Served:
    """One connection of `serve`: what is queued for it, whether its peer
    has ended writing, and (reply mode) the digest of what it sent."""

    def __init__(self, sock, reply):
        self.sock, self.out, self.eof = sock, bytearray(), False
        self.sha = hashlib.sha256() if reply else None
        self.events = 0


def serve(args):
    fam, addr = sockaddr(args.listen)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_UNIX:
        try:
            os.unlink(addr)
        except FileNotFoundError:
            pass
    else:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(addr)
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write("ready\n")
        os.rename(args.ready + ".tmp", args.ready)
    print("ready", flush=True)

    def close(c):
        sel.unregister(c.sock)
        c.sock.close()

    def step(c, readable):
        """Reads what is there (unless enough is queued), sends what is
        queued, ends writing once the peer has and all is sent."""
        if readable and not c.eof and len(c.out) < SERVE_QUEUE:
            try:
                data = c.sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                data = None
            if data:
                if c.sha:
                    c.sha.update(data)
                else:
                    c.out += data
            elif data is not None:
                c.eof = True
                if c.sha:
                    c.out += (c.sha.hexdigest() + "\n").encode()
        if c.out:
            try:
                del c.out[:c.sock.send(c.out)]
            except (BlockingIOError, InterruptedError):
                pass
        if c.eof and not c.out:
            c.sock.shutdown(socket.SHUT_WR)
            close(c)
            return
        want = 0
        if not c.eof and len(c.out) < SERVE_QUEUE:
            want |= selectors.EVENT_READ
        if c.out:
            want |= selectors.EVENT_WRITE
        if want != c.events:
            sel.modify(c.sock, want, c)
            c.events = want

    while True:
        for key, ev in sel.select():
            if key.data is None:
                while True:
                    try:
                        sock, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break  # EMFILE: try again on the next event
                    sock.setblocking(False)
                    nodelay(sock)
                    c = _Served(sock, args.mode == "reply")
                    c.events = selectors.EVENT_READ
                    sel.register(sock, c.events, c)
                continue
            c = key.data
            try:
                step(c, ev & selectors.EVENT_READ)
            except OSError:
                close(c)


def one_roundtrip(addr, size, seed, out, i, mixed=False, half_close=True,
                  timeout=300.0):
    t0 = time.monotonic()
    try:
        s = connect(addr)
    except OSError as e:
        out[i] = {"ok": False, "error": f"connect: {e}"}
        return
    box = {}

    def sender():
        try:
            box["sha"] = tcputil.send_payload(s, size, seed, mixed=mixed)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            box["error"] = str(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = tcputil.recv_all(s, timeout=timeout,
                           limit=None if half_close else size)
    t.join(60)
    s.close()
    # With half-close the echo ends with an EOF after the last byte;
    # without, the read stops at the size sent.
    want_end = "eof" if half_close else "limit"
    ok = (got.end == want_end and got.nbytes == size and
          box.get("sha") == got.sha256)
    out[i] = {"ok": ok, "bytes": got.nbytes, "end": got.end,
              "secs": round(time.monotonic() - t0, 3),
              "error": box.get("error")}


def roundtrip(args):
    out = [None] * args.conns
    t0 = time.monotonic()
    threads = [threading.Thread(target=one_roundtrip,
                                args=(args.connect, args.bytes,
                                      args.seed + i, out, i, args.mixed,
                                      not args.no_half_close, args.timeout))
               for i in range(args.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    ok = all(r and r["ok"] for r in out)
    print(json.dumps({"ok": ok, "secs": round(secs, 3),
                      "failed": [r for r in out if not (r and r["ok"])][:5]}))
    return 0 if ok else 1


def halfclose(args):
    s = connect(args.connect)
    sha = tcputil.send_payload(s, args.bytes, args.seed)
    s.shutdown(socket.SHUT_WR)
    got = b""
    s.settimeout(60)
    while True:
        data = s.recv(4096)
        if not data:
            break
        got += data
    ok = got.decode().strip() == sha
    print(json.dumps({"ok": ok, "sent": sha, "reply": got.decode().strip()}))
    return 0 if ok else 1


def probe(args):
    t0 = time.monotonic()
    try:
        s = connect(args.connect)
        s.sendall(b"hello")
        end, _ = tcputil.wait_end(s, timeout=args.timeout)
    except OSError as e:
        end = tcputil.end_of(e)
    print(json.dumps({"end": end, "secs": round(time.monotonic() - t0, 3)}))
    return 0


def garbage(args):
    host, port = tcputil.parse_hostport(args.to)
    s = socket.socket(tcputil.family_of(host), socket.SOCK_DGRAM)
    for i in range(args.count):
        if args.looks_like == "kcptun":
            s.sendto(os.urandom(20 + i % 1400), (host, port))
            if i % 100 == 0:
                time.sleep(0.01)
            continue
        n = 1 + (i * 37) % 1400
        pkt = os.urandom(n)
        if i % 3 == 0 and args.looks_like == "quic":
            # A QUIC long header with version 1.
            pkt = bytes([0xc0]) + b"\x00\x00\x00\x01" + pkt
        elif i % 3 == 0:
            # A handshake initiation (type 1) or transport packet (type 4).
            pkt = bytes([1 + (i % 2) * 3, 0, 0, 0]) + os.urandom(max(n, 160))
        s.sendto(pkt, (host, port))
    s.settimeout(2.0)
    try:
        s.recvfrom(65536)
        answered = True
    except (socket.timeout, TimeoutError):
        answered = False
    print(json.dumps({"answered": answered}))
    return 0


def nodelay(s):
    if s.family != socket.AF_UNIX:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def one_ttfb(addr, timeout):
    """Connects, sends one byte and reads its echo; returns the ms taken."""
    t0 = time.monotonic()
    s = connect(addr, timeout)
    try:
        nodelay(s)
        if tcputil.exchange(s, b"x", timeout) != b"x":
            raise OSError("no echo")
        return (time.monotonic() - t0) * 1000.0
    finally:
        s.close()


def latency(args):
    ms, failed = [], 0
    for _ in range(args.count):
        try:
            ms.append(one_ttfb(args.connect, 10.0))
        except OSError:
            failed += 1
    print(json.dumps({"ms": ms, "failed": failed}))
    return 0


def wait(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            if args.accept:
                connect(args.connect, 2.0).close()
            else:
                one_ttfb(args.connect, 2.0)
            print("ok")
            return 0
        except OSError:
            time.sleep(0.2)
    return 1


def idle(args):
    socks, result = [], {"wanted": args.conns, "up": 0, "stopped": None}
    t0 = time.monotonic()
    for i in range(args.conns):
        s = None
        try:
            s = connect(args.connect, args.stall)
            nodelay(s)
            d = tcputil.exchange(s, b"x", args.stall)
            if d != b"x":
                raise OSError("connection closed before the echo" if not d
                              else "wrong echo")
        except OSError as e:
            if s is not None:
                s.close()
            what = "no echo within %.0f s" % args.stall \
                if isinstance(e, socket.timeout) else str(e)
            result["stopped"] = f"connection {i + 1}: {what}"
            break
        socks.append(s)
    result["up"] = len(socks)
    result["open_s"] = round(time.monotonic() - t0, 2)
    print(json.dumps(result), flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()
    return 0


def quiet(args):
    out = {}
    try:
        s = connect(args.connect)
    except OSError as e:
        print(json.dumps({"ok": False, "first": f"connect: {e}"}))
        return 1
    for i, name in enumerate(("first", "second")):
        if i:
            time.sleep(args.secs)
        data = os.urandom(1024)
        try:
            got = tcputil.exchange(s, data, timeout=10.0)
            out[name] = len(got) if got == data else f"{len(got)} wrong"
        except OSError as e:
            out[name] = str(e) or type(e).__name__
    s.close()
    out["ok"] = out["first"] == 1024 and out["second"] == 1024
    print(json.dumps(out))
    return 0 if out["ok"] else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("serve")
    a.add_argument("--listen", required=True)
    a.add_argument("--mode", choices=("echo", "reply"), default="echo")
    a.add_argument("--ready")
    a = sub.add_parser("roundtrip")
    a.add_argument("--connect", required=True)
    a.add_argument("--bytes", type=int, required=True)
    a.add_argument("--conns", type=int, default=1)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--mixed", action="store_true")
    a.add_argument("--no-half-close", action="store_true")
    a.add_argument("--timeout", type=float, default=300.0)
    a = sub.add_parser("halfclose")
    a.add_argument("--connect", required=True)
    a.add_argument("--bytes", type=int, required=True)
    a.add_argument("--seed", type=int, default=1)
    a = sub.add_parser("probe")
    a.add_argument("--connect", required=True)
    a.add_argument("--timeout", type=float, default=10.0)
    a = sub.add_parser("garbage")
    a.add_argument("--to", required=True)
    a.add_argument("--looks-like", choices=("quic", "kcp", "kcptun"),
                   required=True)
    a.add_argument("--count", type=int, default=3000)
    a = sub.add_parser("quiet")
    a.add_argument("--connect", required=True)
    a.add_argument("--secs", type=float, required=True)
    a = sub.add_parser("latency")
    a.add_argument("--connect", required=True)
    a.add_argument("--count", type=int, required=True)
    a = sub.add_parser("wait")
    a.add_argument("--connect", required=True)
    a.add_argument("--timeout", type=float, default=20.0)
    a.add_argument("--accept", action="store_true")
    a = sub.add_parser("idle")
    a.add_argument("--connect", required=True)
    a.add_argument("--conns", type=int, required=True)
    a.add_argument("--stall", type=float, default=5.0)
    args = p.parse_args()
    return {"serve": serve, "roundtrip": roundtrip, "halfclose": halfclose,
            "probe": probe, "garbage": garbage, "quiet": quiet,
            "latency": latency,
            "wait": wait, "idle": idle}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
