"""Emulated links between network namespaces, for tests and benchmarks.

make_link() creates two namespaces (or reuses given ones), joins them with a
warren-linkemu process that impairs each direction as told by a SPEC (see
`warren-linkemu --help`), waits until the link is up and returns a Link:

    link = make_link(netns, procs, both="delay=25ms,loss=1%", seed=1)
    netns.exec(link.ns_a, ["ping", "-c", "3", link.addr_b])
    stats = link.stop()          # counters per direction, from the JSON file
    stats["a2b"]["dropped_loss"]

Each link gets its own /24 from 10.201.0.0/16 (10.201.N.1 in A, 10.201.N.2 in
B; `addrs` picks others) and its own device names, so several links can
share a namespace. The bench sets up its emulated links with make_link too
(bench/run.py), through the same `netns`/`procs` interface
(bench/wnb/procs.py adapts it to the bench's bookkeeping).

The module is also a small command line tool run inside namespaces by the
helpers below (`python3 linkemu.py udp-sink|udp-send|ping ...`): a paced,
sequence-numbered and timestamped UDP sender, the matching sink, and an ICMP
pinger for machines without iputils-ping.
"""

import argparse
import errno
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
PYTHON = sys.executable or "/usr/bin/python3"

_link_seq = itertools.count()
_port_seq = itertools.count()

# UDP probe: magic, sequence number, CLOCK_REALTIME send time in ns. The
# sink takes the kernel's receive timestamp (SO_TIMESTAMPNS, also
# CLOCK_REALTIME), so one-way delays do not depend on when the sink runs;
# the clock is shared by all network namespaces.
PROBE = struct.Struct("!IQQ")
PROBE_MAGIC = 0x4C454D55  # "LEMU"
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux values
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class Link:
    """A running emulated link. A is the --a side, B the --b side."""

    def __init__(self, netns, procs, proc, ns_a, ns_b, addr_a, addr_b,
                 dev_a, dev_b, prefix, stats_path):
        self.netns = netns
        self.procs = procs
        self.proc = proc
        self.ns_a, self.ns_b = ns_a, ns_b
        self.addr_a, self.addr_b = addr_a, addr_b
        self.dev_a, self.dev_b = dev_a, dev_b
        self.prefix = prefix
        self.stats_path = stats_path
        self.final_stats = None

    def ns(self, side):
        return self.ns_a if side == "a" else self.ns_b

    def addr(self, side):
        return self.addr_a if side == "a" else self.addr_b

    def exec(self, side, argv, **kw):
        """Run argv to completion inside side "a" or "b"."""
        return self.netns.exec(self.ns(side), argv, **kw)

    def start(self, side, name, argv, **kw):
        """Start argv in the background inside side "a" or "b"."""
        return self.procs.start(name, argv, netns=self.ns(side), **kw)

    def stats(self, timeout=5.0):
        """Counters of the running emulator (asks it with SIGUSR1)."""
        if not self.proc.alive():
            return self.stop()
        try:
            os.unlink(self.stats_path)
        except FileNotFoundError:
            pass
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.stats_path):
                with open(self.stats_path) as f:
                    return json.load(f)
            time.sleep(0.02)
        raise AssertionError(f"no stats from linkemu:\n{self.proc.log()}")

    def stop(self):
        """Stop the emulator (SIGTERM) and return its final counters."""
        if self.final_stats is None:
            rc = self.proc.stop()
            if rc != 0:
                raise AssertionError(
                    f"linkemu exited {rc}:\n{self.proc.log()}")
            with open(self.stats_path) as f:
                self.final_stats = json.load(f)
        return self.final_stats

    def udp_transfer(self, count, pps, size=200, src="a", port=None,
                     idle=0.5, max_time=None):
        """Send `count` sequence-numbered UDP datagrams of `size` bytes at
        `pps` per second from side `src` to the other side. Returns the
        sink's record: {"seqs": [arrival order], "lat_us": [one-way delay
        per arrival], "arrival_ns": [CLOCK_REALTIME per arrival], "bytes":
        n, "first_ns": t, "last_ns": t} plus "sent".
        """
        dst = "b" if src == "a" else "a"
        if port is None:
            port = 20000 + next(_port_seq) % 20000
        out = os.path.join(self.procs.logdir,
                           f"udp-sink-{port}-{time.monotonic_ns()}.json")
        send_time = count / pps
        if max_time is None:
            max_time = send_time + 30
        sink = self.start(dst, f"udp-sink-{port}",
                          [PYTHON, HERE, "udp-sink", "--bind", self.addr(dst),
                           "--port", str(port), "--out", out,
                           "--idle", str(idle), "--max-time", str(max_time)])
        sink.wait_log("listening")
        self.exec(src, [PYTHON, HERE, "udp-send", "--to", self.addr(dst),
                        "--port", str(port), "--count", str(count),
                        "--pps", str(pps), "--size", str(size)],
                  timeout=send_time + 30)
        try:
            sink.popen.wait(timeout=max_time + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"udp sink did not finish:\n{sink.log()}")
        if sink.popen.returncode != 0:
            raise AssertionError(f"udp sink failed:\n{sink.log()}")
        with open(out) as f:
            rec = json.load(f)
        rec["sent"] = count
        return rec

    def ping(self, count=10, interval=0.05, src="a", timeout=2.0):
        """RTTs in ms of ICMP echoes from `src` to the other side (None for
        a lost reply); uses iputils ping if installed."""
        dst = self.addr("b" if src == "a" else "a")
        return ping_rtts(self.netns, self.ns(src), dst, count, interval,
                         timeout)


def make_link(netns, procs, a2b=None, b2a=None, both=None, seed=1, mtu=None,
              ns_a=None, ns_b=None, name="linkemu", extra_args=(),
              timeout=10.0, binary=None, addrs=None):
    """Start warren-linkemu between two namespaces and wait until it is up.

    netns, procs: the conftest fixtures (or anything with their create/exec
    and start/logdir). a2b/b2a/both: SPEC strings (a2b and b2a apply on top
    of both). ns_a/ns_b: existing namespaces to use instead of new ones.
    addrs: (A, B), two IPv4 addresses of one /24, instead of the link's own
    10.201.N.1 and .2. Returns a Link; the emulator is stopped with the
    test's other processes, or earlier with Link.stop(). binary: the
    warren-linkemu to run (default: the one in the build under test).
    """
    if binary is None:
        from conftest import tool_path
        binary = tool_path("tools", "linkemu", "warren-linkemu")

    n = next(_link_seq)
    subnet = n % 256
    if ns_a is None:
        ns_a = netns.create(f"la{n}")
    if ns_b is None:
        ns_b = netns.create(f"lb{n}")
    addr_a, addr_b = addrs or (f"10.201.{subnet}.1", f"10.201.{subnet}.2")
    dev_a, dev_b = f"wle{n}a", f"wle{n}b"
    tag = f"{name}-{n}"
    ready = os.path.join(procs.logdir, f"{tag}.ready")
    stats = os.path.join(procs.logdir, f"{tag}.stats.json")
    argv = [binary, "--a", f"{ns_a}:{dev_a}:{addr_a}/24",
            "--b", f"{ns_b}:{dev_b}:{addr_b}/24",
            "--seed", str(seed), "--ready-file", ready,
            "--stats-file", stats]
    for opt, spec in (("--both", both), ("--a2b", a2b), ("--b2a", b2a)):
        if spec:
            argv += [opt, spec]
    if mtu:
        argv += ["--mtu", str(mtu)]
    argv += list(extra_args)
    proc = procs.start(tag, argv)
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready):
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise AssertionError(
                f"linkemu did not come up (exit {proc.popen.returncode}):\n"
                f"{proc.log()}")
        time.sleep(0.02)
    return Link(netns, procs, proc, ns_a, ns_b, addr_a, addr_b, dev_a, dev_b,
                24, stats)


def ping_rtts(netns, ns, addr, count=10, interval=0.05, timeout=2.0):
    """RTTs in ms (None if lost) of `count` ICMP echoes from ns to addr."""
    ping = shutil.which("ping")
    if ping:
        res = netns.exec(ns, [ping, "-n", "-c", str(count), "-i",
                              str(max(interval, 0.002)), "-W",
                              str(max(1, int(timeout))), addr],
                         check=False, timeout=count * interval + timeout + 30)
        rtts = {}
        for line in res.stdout.splitlines():
            if "icmp_seq=" in line and "time=" in line:
                seq = int(line.split("icmp_seq=")[1].split()[0])
                rtts[seq] = float(line.split("time=")[1].split()[0])
        return [rtts.get(i) for i in range(1, count + 1)]
    res = netns.exec(ns, [PYTHON, HERE, "ping", "--to", addr, "--count",
                          str(count), "--interval", str(interval),
                          "--timeout", str(timeout)],
                     timeout=count * (interval + timeout) + 30)
    return json.loads(res.stdout)


def late_count(seqs):
    """Arrivals (first copies only) after a higher sequence number."""
    seen, late, top = set(), 0, -1
    for s in seqs:
        if s in seen:
            continue
        seen.add(s)
        if s < top:
            late += 1
        else:
            top = s
    return late


def loss_runs(seqs, sent):
    """Lengths of the runs of consecutive sequence numbers never received."""
    got = set(seqs)
    runs, cur = [], 0
    for i in range(sent):
        if i in got:
            if cur:
                runs.append(cur)
            cur = 0
        else:
            cur += 1
    if cur:
        runs.append(cur)
    return runs


def median(values):
    return statistics.median(values)


# ---- command line tools (run inside a namespace) -------------------------

def _cmd_udp_sink(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind((args.bind, args.port))
    print("listening", flush=True)
    seqs, lat, arrival, nbytes = [], [], [], 0
    first = last = last_mono = None
    end = time.monotonic() + args.max_time
    buf = bytearray(65536)
    while True:
        now = time.monotonic()
        if now >= end:
            break
        wait = end - now
        if last_mono is not None:
            wait = min(wait, args.idle - (now - last_mono))
            if wait <= 0:
                break
        s.settimeout(wait)
        try:
            n, anc, _, _ = s.recvmsg_into([buf], 64)
        except socket.timeout:
            continue
        t = time.time_ns()
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and \
                    len(data) >= 16:
                sec, nsec = struct.unpack_from("qq", data)
                t = sec * 1000000000 + nsec
        if n < PROBE.size:
            continue
        magic, seq, sent = PROBE.unpack_from(buf)
        if magic != PROBE_MAGIC:
            continue
        if first is None:
            first = t
        last = t
        last_mono = time.monotonic()
        seqs.append(seq)
        lat.append((t - sent) / 1000.0)
        arrival.append(t)
        nbytes += n
    with open(args.out + ".tmp", "w") as f:
        json.dump({"seqs": seqs, "lat_us": lat, "arrival_ns": arrival,
                   "bytes": nbytes,
                   "first_ns": first, "last_ns": last}, f)
    os.rename(args.out + ".tmp", args.out)


def _cmd_udp_send(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    pad = bytes(max(0, args.size - PROBE.size))
    dst = (args.to, args.port)
    start = time.monotonic()
    i = 0
    while i < args.count:
        # Send every packet that is due, then sleep until the next one.
        now = time.monotonic()
        due = start + i / args.pps
        if due > now:
            time.sleep(due - now)
            continue
        while i < args.count and start + i / args.pps <= now:
            pkt = PROBE.pack(PROBE_MAGIC, i, time.time_ns()) + pad
            try:
                s.sendto(pkt, dst)
            except OSError as e:
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
                time.sleep(0.0005)
                continue
            i += 1


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _cmd_ping(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    rtts = [None] * args.count
    sent_at = {}
    next_send = time.monotonic()
    i = 0
    deadline = None
    while True:
        now = time.monotonic()
        if i < args.count and now >= next_send:
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, i)
            payload = struct.pack("!Q", time.monotonic_ns()) + bytes(48)
            pkt = hdr[:2] + struct.pack("!H", _checksum(hdr + payload)) + \
                hdr[4:] + payload
            sent_at[i] = time.monotonic_ns()
            s.sendto(pkt, (args.to, 0))
            i += 1
            next_send += args.interval
            if i == args.count:
                deadline = time.monotonic() + args.timeout
            continue
        if deadline is not None and (now >= deadline or
                                     all(r is not None for r in rtts)):
            break
        wake = next_send if i < args.count else deadline
        s.settimeout(max(0.0, wake - now))
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        t = time.monotonic_ns()
        ihl = (data[0] & 0x0F) * 4
        typ, _, _, rid, rseq = struct.unpack_from("!BBHHH", data, ihl)
        if typ == 0 and rid == ident and rseq in sent_at and \
                rtts[rseq] is None:
            rtts[rseq] = (t - sent_at[rseq]) / 1e6
    print(json.dumps(rtts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("udp-sink")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--idle", type=float, default=0.5)
    p.add_argument("--max-time", type=float, default=60)
    p = sub.add_parser("udp-send")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--pps", type=float, required=True)
    p.add_argument("--size", type=int, default=200)
    p = sub.add_parser("ping")
    p.add_argument("--to", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args(argv)
    {"udp-sink": _cmd_udp_sink, "udp-send": _cmd_udp_send,
     "ping": _cmd_ping}[args.cmd](args)


if __name__ == "__main__":
    main()
