#!/usr/bin/python3
"""The stress suite's traffic: floods, packet capture and checksummed echo
streams. bench/stress.py runs each command inside a namespace
(`ip netns exec NS python3 bench/wnb/stressgen.py CMD ...`); every command
prints one JSON line with what it achieved (the rate actually sent, not
the rate asked for).

  echo --listen ADDR --ready FILE
      an echo server for many thousands of connections (one thread, a
      selector): what arrives goes back; EOF is passed on as a half-close.
  udp --to ADDR --rate R --secs S [--bind IP]
      garbage UDP datagrams of random size (20..1400 bytes, random
      content) from 16 sockets with random source ports, paced to R/s.
  capture --dev DEV --port P --out FILE [--min-len N] [--timeout T]
      the payload of the first UDP datagram to port P seen on DEV (an
      AF_PACKET socket), at least N bytes long: a real client's first
      flight, for `spoof` to replay.
  spoof --to ADDR --payload FILE --rate R --secs S --subnet CIDR
        [--exclude IP,...]
      the captured payload replayed in raw IPv4/UDP packets whose source
      address is random inside CIDR (but not the excluded ones) and whose
      source port is random: a spoofed flood of valid first flights.
  halfopen --to ADDR --rate R --secs S --hold H --bind IP,...
      TCP connections opened at R/s that send nothing and are closed H s
      after they opened (unless the server closed them first).
  slowloris --to ADDR --conns N --rate R --secs S --bind IP,...
        [--interval I]
      N TCP connections opened at R/s, each sending one random byte every
      I s; counts those the server closed.
  streams --connect ADDR [--n N] [--rate R] [--parallel P] [--secs S]
          [--bytes B] [--barrier] [--timeout T]
      echo streams, each sending B bytes of a pattern seeded by its index
      and checking what comes back (length and sha256). N streams, opened
      at R/s (0: all at once); or, with --secs, P at a time for S seconds.
      --barrier: no stream half-closes before all N are connected, so all
      N are open at once. Every stream ends in one class: ok, corrupt
      (wrong bytes), truncated (a clean EOF before all bytes came back:
      data lost without a reason), reset / error (failed with a reason),
      connect-failed, timeout.
"""

import argparse
import errno
import hashlib
import ipaddress
import json
import os
import random
import selectors
import socket
import struct
import sys
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def out(d):
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass


class Pacer:
    """Spreads `rate` events per second: due() says how many are owed."""

    def __init__(self, rate):
        self.rate = rate
        self.t0 = time.monotonic()
        self.done = 0

    def due(self, now=None):
        now = time.monotonic() if now is None else now
        return max(0, int((now - self.t0) * self.rate) - self.done)


# ---- echo server ------------------------------------------------------------

def cmd_echo(a):
    raise_nofile()
    host, port = hostport(a.listen)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    with open(a.ready, "w") as f:
        f.write("ready\n")
    conns = {}  # sock -> [pending bytearray, eof_seen]

    def close(s):
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        conns.pop(s, None)
        s.close()

    while True:
        for key, ev in sel.select(1.0):
            s = key.fileobj
            if s is ls:
                for _ in range(256):
                    try:
                        c, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    c.setblocking(False)
                    conns[c] = [bytearray(), False]
                    sel.register(c, selectors.EVENT_READ, None)
                continue
            st = conns.get(s)
            if st is None:
                continue
            if ev & selectors.EVENT_WRITE and st[0]:
                try:
                    n = s.send(st[0])
                    del st[0][:n]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    close(s)
                    continue
            if ev & selectors.EVENT_READ and not st[1] and \
                    len(st[0]) < (1 << 20):
                try:
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    d = None
                except OSError:
                    close(s)
                    continue
                if d == b"":
                    st[1] = True
                elif d:
                    st[0] += d
                    try:
                        n = s.send(st[0])
                        del st[0][:n]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        close(s)
                        continue
            if st[1] and not st[0]:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                close(s)
                continue
            want = 0
            if not st[1] and len(st[0]) < (1 << 20):
                want |= selectors.EVENT_READ
            if st[0]:
                want |= selectors.EVENT_WRITE
            if want:
                sel.modify(s, want, None)
            else:
                sel.unregister(s)
                conns.pop(s, None)
                s.close()


# ---- UDP garbage ------------------------------------------------------------

def cmd_udp(a):
    host, port = hostport(a.to)
    socks = []
    for _ in range(16):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a.bind or "0.0.0.0", 0))
        s.setblocking(False)
        socks.append(s)
    pool = [os.urandom(random.randint(20, 1400)) for _ in range(256)]
    pace = Pacer(a.rate)
    end = pace.t0 + a.secs
    sent = dropped = nbytes = 0
    i = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        n = pace.due(now)
        if n == 0:
            time.sleep(0.0005)
            continue
        for _ in range(min(n, 512)):
            p = pool[i & 255]
            try:
                socks[i & 15].sendto(p, (host, port))
                sent += 1
                nbytes += len(p)
            except (BlockingIOError, OSError):
                dropped += 1
            i += 1
            pace.done += 1
    secs = time.monotonic() - pace.t0
    out({"sent": sent, "bytes": nbytes, "send_errors": dropped,
         "secs": round(secs, 2), "rate": round(sent / secs),
         "target_rate": a.rate})


# ---- capture and spoofed replay ---------------------------------------------

def cmd_capture(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                      socket.htons(0x0800))
    s.bind((a.dev, 0))
    s.settimeout(0.5)
    end = time.monotonic() + a.timeout
    while time.monotonic() < end:
        try:
            pkt = s.recv(65536)
        except socket.timeout:
            continue
        if len(pkt) < 28 or pkt[9] != 17:
            continue
        ihl = (pkt[0] & 15) * 4
        dport = struct.unpack("!H", pkt[ihl + 2:ihl + 4])[0]
        payload = pkt[ihl + 8:]
        if dport == a.port and len(payload) >= a.min_len:
            with open(a.out, "wb") as f:
                f.write(payload)
            out({"captured": len(payload)})
            return 0
    out({"captured": 0, "error": "nothing seen"})
    return 1


def csum(b):
    if len(b) & 1:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def cmd_spoof(a):
    host, port = hostport(a.to)
    with open(a.payload, "rb") as f:
        payload = f.read()
    net = ipaddress.ip_network(a.subnet)
    excl = {ipaddress.ip_address(x) for x in (a.exclude or "").split(",")
            if x}
    hosts = [h for h in net.hosts() if h not in excl]
    dst = socket.inet_aton(host)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    s.setblocking(False)
    # Packets are built ahead: 4,096 random (address, port) pairs reused
    # round robin, so the generator spends its time sending.
    ulen = 8 + len(payload)
    pkts = []
    for _ in range(4096):
        src = random.choice(hosts).packed
        sport = random.randint(1024, 65535)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen,
                         random.getrandbits(16), 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
        udp = struct.pack("!HHHH", sport, port, ulen, 0)
        c = csum(pseudo + udp + payload) or 0xFFFF
        pkts.append(ip + struct.pack("!HHHH", sport, port, ulen, c) +
                    payload)
    pace = Pacer(a.rate)
    end = pace.t0 + a.secs
    sent = errs = 0
    i = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        n = pace.due(now)
        if n == 0:
            time.sleep(0.0005)
            continue
        for _ in range(min(n, 512)):
            try:
                s.sendto(pkts[i & 4095], (host, 0))
                sent += 1
            except OSError:
                errs += 1
            i += 1
            pace.done += 1
    secs = time.monotonic() - pace.t0
    out({"sent": sent, "bytes": sent * (20 + ulen), "send_errors": errs,
         "secs": round(secs, 2), "rate": round(sent / secs),
         "target_rate": a.rate, "payload": len(payload),
         "sources": len(hosts)})


# ---- TCP: half-open and slowloris --------------------------------------------

def cmd_halfopen(a):
    raise_nofile()
    host, port = hostport(a.to)
    binds = a.bind.split(",")
    sel = selectors.DefaultSelector()
    pace = Pacer(a.rate)
    end = pace.t0 + a.secs
    opened = connected = failed = closed_by_server = 0
    live = []  # (deadline, sock)
    peak = 0
    i = 0
    while time.monotonic() < end or live:
        now = time.monotonic()
        if now < end:
            for _ in range(min(pace.due(now), 256)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.bind((binds[i % len(binds)], 0))
                    s.connect_ex((host, port))
                    sel.register(s, selectors.EVENT_WRITE, "c")
                    live.append((now + a.hold, s))
                    opened += 1
                except OSError:
                    failed += 1
                    s.close()
                i += 1
                pace.done += 1
        peak = max(peak, len(live))
        for key, ev in sel.select(0.002):
            s = key.fileobj
            if key.data == "c":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    failed += 1
                    sel.unregister(s)
                else:
                    connected += 1
                    sel.modify(s, selectors.EVENT_READ, "r")
            else:
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                if not d:
                    closed_by_server += 1
                    sel.unregister(s)
        while live and (live[0][0] <= now or now >= end + a.hold):
            _, s = live.pop(0)
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        if now >= end and not live:
            break
    secs = a.secs
    out({"opened": opened, "connected": connected, "failed": failed,
         "closed_by_server": closed_by_server, "peak_open": peak,
         "rate": round(opened / secs), "target_rate": a.rate,
         "hold_s": a.hold})


def cmd_slowloris(a):
    raise_nofile()
    host, port = hostport(a.to)
    binds = a.bind.split(",")
    pace = Pacer(a.rate)
    t0 = pace.t0
    end = t0 + a.secs
    socks = {}  # sock -> next send time
    opened = failed = closed_by_server = sent = 0
    lifetimes = []
    born = {}
    i = 0
    sel = selectors.DefaultSelector()
    while time.monotonic() < end:
        now = time.monotonic()
        while opened + failed < a.conns and pace.due(now):
            pace.done += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(2.0)
            try:
                s.bind((binds[i % len(binds)], 0))
                s.connect((host, port))
                s.setblocking(False)
                socks[s] = now + random.random() * a.interval
                born[s] = now
                sel.register(s, selectors.EVENT_READ)
                opened += 1
            except OSError:
                failed += 1
                s.close()
            i += 1
        for s, due in list(socks.items()):
            if due <= now:
                try:
                    s.send(os.urandom(1))
                    sent += 1
                    socks[s] = now + a.interval
                except OSError:
                    pass
        for key, _ in sel.select(0.05):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                closed_by_server += 1
                lifetimes.append(time.monotonic() - born[s])
                sel.unregister(s)
                socks.pop(s, None)
                s.close()
    lifetimes.sort()
    out({"opened": opened, "failed": failed, "bytes_sent": sent,
         "closed_by_server": closed_by_server, "still_open": len(socks),
         "median_life_s": round(lifetimes[len(lifetimes) // 2], 1)
         if lifetimes else None, "interval_s": a.interval,
         "rate": round(opened / a.secs, 1), "target_rate": a.rate})


# ---- checksummed echo streams -------------------------------------------------

def pattern(idx, n):
    """The bytes stream idx sends: a seeded block repeated, cheap to make
    and different per stream."""
    block = random.Random(idx).randbytes(4096)
    reps = n // 4096 + 1
    return (block * reps)[:n]


class Stream:
    __slots__ = ("idx", "sock", "data", "sent", "got", "h", "state",
                 "t0", "shut")

    def __init__(self, idx, data):
        self.idx, self.data = idx, data
        self.sent = self.got = 0
        self.h = hashlib.sha256()
        self.state = "connecting"
        self.t0 = time.monotonic()
        self.shut = False


def cmd_streams(a):
    raise_nofile()
    host, port = hostport(a.connect)
    sel = selectors.DefaultSelector()
    classes = {}
    reasons = {}
    live = {}
    started = 0
    peak = 0
    t0 = time.monotonic()
    pace = Pacer(a.rate) if a.rate else None
    end_start = t0 + a.secs if a.secs else None
    want_hash = {}
    lat = []

    def finish(st, cls, why=None):
        classes[cls] = classes.get(cls, 0) + 1
        if why:
            reasons[why] = reasons.get(why, 0) + 1
        try:
            sel.unregister(st.sock)
        except (KeyError, ValueError):
            pass
        st.sock.close()
        live.pop(st.sock, None)
        if cls == "ok":
            lat.append(time.monotonic() - st.t0)

    def start_one():
        nonlocal started
        idx = started
        started += 1
        key = idx % 64
        if key not in want_hash:
            d = pattern(key, a.bytes)
            want_hash[key] = (d, hashlib.sha256(d).digest())
        st = Stream(idx, want_hash[key][0])
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        st.sock = s
        rc = s.connect_ex((host, port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            classes["connect-failed"] = classes.get("connect-failed", 0) + 1
            why = errno.errorcode.get(rc, str(rc))
            reasons[why] = reasons.get(why, 0) + 1
            return
        live[s] = st
        sel.register(s, selectors.EVENT_WRITE, st)

    def may_start():
        now = time.monotonic()
        if end_start is not None:
            if now >= end_start:
                return 0
            if pace is None:
                return max(0, a.parallel - len(live))
        elif started >= a.n:
            return 0
        if pace is not None:
            n = pace.due(now)
            pace.done += n
            return n if end_start is not None else min(n, a.n - started)
        return a.n - started

    barrier_open = not a.barrier
    connected = 0
    deadline = None
    while True:
        for _ in range(min(may_start(), 512)):
            start_one()
        peak = max(peak, len(live))
        if not live and (started >= a.n if end_start is None
                         else time.monotonic() >= end_start):
            break
        if a.barrier and not barrier_open and connected + sum(
                classes.values()) >= a.n:
            # Every stream is open: the ones that sent everything while
            # waiting half-close now; the others when their last byte
            # goes.
            barrier_open = True
            for st in list(live.values()):
                if st.state == "sending" and st.sent == len(st.data):
                    try:
                        st.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    st.state = "draining"
        stop_starting = (end_start is None and started >= a.n) or \
            (end_start is not None and time.monotonic() >= end_start)
        if stop_starting and deadline is None:
            deadline = time.monotonic() + a.timeout
        if deadline is not None and time.monotonic() > deadline:
            for st in list(live.values()):
                finish(st, "timeout", f"timeout in {st.state}")
            break
        for key, ev in sel.select(0.05):
            st = key.data
            s = st.sock
            if st.state == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    finish(st, "connect-failed",
                           errno.errorcode.get(err, str(err)))
                    continue
                st.state = "sending"
                connected += 1
                sel.modify(s, selectors.EVENT_WRITE | selectors.EVENT_READ,
                           st)
                continue
            try:
                if ev & selectors.EVENT_READ:
                    d = s.recv(262144)
                    if d == b"":
                        if st.got == len(st.data) and \
                                st.h.digest() == want_hash[st.idx % 64][1]:
                            finish(st, "ok")
                        elif st.got >= len(st.data):
                            finish(st, "corrupt")
                        else:
                            finish(st, "truncated",
                                   f"clean EOF after {st.got} of "
                                   f"{len(st.data)} bytes")
                        continue
                    st.got += len(d)
                    st.h.update(d)
                    if st.got > len(st.data):
                        finish(st, "corrupt", "more bytes than sent")
                        continue
                if ev & selectors.EVENT_WRITE and st.state == "sending":
                    if st.sent < len(st.data):
                        n = s.send(memoryview(st.data)[st.sent:
                                                       st.sent + 262144])
                        st.sent += n
                    if st.sent == len(st.data):
                        if barrier_open:
                            s.shutdown(socket.SHUT_WR)
                            st.state = "draining"
                            sel.modify(s, selectors.EVENT_READ, st)
                        else:
                            sel.modify(s, selectors.EVENT_READ, st)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                finish(st, "reset" if e.errno in (
                    errno.ECONNRESET, errno.EPIPE) else "error",
                    errno.errorcode.get(e.errno, str(e)))
    secs = time.monotonic() - t0
    lat.sort()
    out({"started": started, "classes": classes, "reasons": reasons,
         "peak_open": peak, "secs": round(secs, 2),
         "bytes_each": a.bytes,
         "rate": round(started / secs, 1),
         "p50_s": round(lat[len(lat) // 2], 3) if lat else None,
         "p99_s": round(lat[int(len(lat) * 0.99)], 3) if lat else None})


def main(argv=None):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("echo")
    p.add_argument("--listen", required=True)
    p.add_argument("--ready", required=True)
    p = sub.add_parser("udp")
    p.add_argument("--to", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--bind")
    p = sub.add_parser("capture")
    p.add_argument("--dev", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--min-len", type=int, default=1)
    p.add_argument("--timeout", type=float, default=20.0)
    p = sub.add_parser("spoof")
    p.add_argument("--to", required=True)
    p.add_argument("--payload", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--exclude")
    p = sub.add_parser("halfopen")
    p.add_argument("--to", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--hold", type=float, default=10.0)
    p.add_argument("--bind", required=True)
    p = sub.add_parser("slowloris")
    p.add_argument("--to", required=True)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--bind", required=True)
    p = sub.add_parser("streams")
    p.add_argument("--connect", required=True)
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--secs", type=float, default=0.0)
    p.add_argument("--bytes", type=int, default=4096)
    p.add_argument("--barrier", action="store_true")
    p.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv)
    return globals()["cmd_" + a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
