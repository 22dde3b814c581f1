#!/usr/bin/python3
"""Focused measurements that bench/run.py's matrix does not make, run on
the e2e tests' own helpers (a Tunnel between two namespaces over
warren-linkemu, tests/e2e/warren.py):

    /usr/bin/python3 bench/measure.py carriers [--engines quic,kcp]
        [--runs 3] [--mib 100] [--build build/release]
    /usr/bin/python3 bench/measure.py carriers-parallel [...same...]
    /usr/bin/python3 bench/measure.py socks5-first-byte [--count 50]
        [--build build/release]
    /usr/bin/python3 bench/measure.py fec [--engines quic,kcp]
        [--count 20000] [--build build/release]

carriers: goodput of a one-way transfer (half-close, sha256 checked)
through each engine over the udp carrier, the tcp carrier, and the tcp
carrier with warren-cutproxy cutting the carrier connection every 2 s, on
a 100 Mbit/s, 25 ms one-way link; median of --runs. This is the README's
"Over the tcp carrier ... cut every 2 s" table.

carriers-parallel: the same link, tcp carrier with `--conns` 1 and 4,
uncut and cut every 1-3 s (docs/ARCHITECTURE.md's carrier section).

fec: --count numbered 1200-byte datagrams at 2,000 a second through a
UDP forward to an echo across 1% random loss each way (100 Mbit/s, 25 ms
each way), once plain and once with `fec = 10/3`: the datagrams lost for
good (round trip, and the one-way figure it implies) and the bytes on the
link both ways, FEC against plain (docs/performance.md, "FEC for
datagrams").

socks5-first-byte: connect -> first byte of an HTTP answer through the
SOCKS5 front end, eager vs standard mode, over a 25 ms one-way link:
--count sequential curls each, medians (README, SOCKS5 section).

Run as root; prints one line per result and exits non-zero if any
transfer failed. Namespaces are wnb-<pid>-* and are always deleted."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import nsproc  # noqa: E402
import tcputil  # noqa: E402
from linkemu import make_link  # noqa: E402
from warren import PY, Tunnel  # noqa: E402

LINK = "delay=25ms,rate=100mbit"


class Run:
    """One measurement's namespaces, processes and scratch directory."""

    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.dir = tempfile.mkdtemp(prefix="warren-measure-")
        nsproc.reap_stale("wnb")
        self.netns = nsproc.Netns("wnb")
        self.procs = nsproc.Procs(self.dir)

    def tool(self, *parts):
        path = os.path.join(self.build, *parts)
        if not os.access(path, os.X_OK):
            sys.exit(f"measure: {path} not built")
        return path

    def tunnel(self, spec, engine="quic", seed=3):
        link = make_link(self.netns, self.procs, both=spec, seed=seed,
                         binary=self.tool("tools", "linkemu",
                                          "warren-linkemu"))
        # Each tunnel gets its own directory: keys and ready files.
        return Tunnel(self.netns, self.procs, self.tool("warren"),
                      tempfile.mkdtemp(dir=self.dir), link=link,
                      engine=engine)

    def cutproxy(self, t, target, *options, name="cutproxy"):
        ready = os.path.join(t.dir, f"{name}.ready")
        p = self.procs.start(name, [
            self.tool("tools", "cutproxy", "warren-cutproxy"),
            "--listen", "127.0.0.1:0", "--target", target,
            "--ready-file", ready, *options], netns=t.ns_c)
        return tcputil.wait_file(ready, proc=p).strip()

    def close(self):
        self.procs.cleanup()
        self.netns.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


def goodput(t, server, size, extra=()):
    """Mbit/s of one half-closed transfer of size bytes from a fresh
    client on `server` (one or more carrier URLs)."""
    c = t.client("127.0.0.1:2000=127.0.0.1:7000", url=server, extra=extra,
                 name=f"client{time.monotonic_ns()}")
    t0 = time.monotonic()
    r = t.app("halfclose", "--connect", "127.0.0.1:2000",
              "--bytes", str(size), timeout=900)
    secs = time.monotonic() - t0
    assert r["ok"], r
    c.stop()
    return size * 8 / secs / 1e6


def report(label, runs):
    med = statistics.median(runs)
    print(f"{label:>34}: median {med:6.1f} Mbit/s  runs "
          + ", ".join(f"{r:.1f}" for r in runs), flush=True)
    return med


def carriers(run, args):
    size = args.mib * 1000 * 1000
    for engine in args.engines.split(","):
        t = run.tunnel(LINK, engine)
        t.target("127.0.0.1:7000", mode="reply")
        udp = f"udp://{t.server_ip}:4433"
        tcp = f"{t.server_ip}:4443"
        t.server("--allow", "127.0.0.1:7000", url=[udp, f"tcp://{tcp}"],
                 name=f"server-{engine}")
        cut = run.cutproxy(t, tcp, "--cut-after", "2s", "--mode", "rst",
                           name=f"cutproxy-{engine}")
        med = {}
        for name, server in (("udp", udp), ("tcp", f"tcp://{tcp}"),
                             ("tcp, cut every 2 s", f"tcp://{cut}")):
            med[name] = report(f"{engine} {name}", [
                goodput(t, server, size) for _ in range(args.runs)])
        print(f"{engine} cut/uncut: "
              f"{med['tcp, cut every 2 s'] / med['tcp']:.0%}", flush=True)


def carriers_parallel(run, args):
    size = args.mib * 1000 * 1000
    for engine in args.engines.split(","):
        t = run.tunnel(LINK, engine)
        t.target("127.0.0.1:7000", mode="reply")
        tcp = f"{t.server_ip}:4443"
        t.server("--allow", "127.0.0.1:7000", url=f"tcp://{tcp}",
                 name=f"server-{engine}")
        cut = run.cutproxy(t, tcp, "--cut-after", "1s", "--cut-jitter", "2s",
                           "--mode", "rst", name=f"cutproxy-{engine}")
        for conns in ("1", "4"):
            for name, server in (("tcp uncut", f"tcp://{tcp}"),
                                 ("tcp cut 1-3 s", f"tcp://{cut}")):
                report(f"{engine} conns={conns} {name}", [
                    goodput(t, server, size, ("--conns", conns))
                    for _ in range(args.runs)])


def socks5_first_byte(run, args):
    t = run.tunnel("delay=25ms")
    www = os.path.join(t.dir, "www")
    os.mkdir(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello\n")
    run.procs.start("http", [PY, "-m", "http.server", "--bind", "127.0.0.1",
                             "--directory", www, "8000"], netns=t.ns_s)
    t.server("--allow", "127.0.0.1:8000")  # loopback: named by address
    conf = os.path.join(t.dir, "client.conf")
    with open(conf, "w") as f:
        f.write(f"""
[client]
server = {t.url}
server-key = {t.server_pub}
key = {t.key("client")}

[socks5 eager]
listen = 127.0.0.1:1080

[socks5 standard]
listen = 127.0.0.1:1081
eager = no
""")
    c = run.procs.start("client", [t.bin, "client", "-c", conf],
                        netns=t.ns_c)
    c.wait_log("client ready")
    fmt = "%{time_connect} %{time_starttransfer}\n"

    def curl(port):
        return t.netns.exec(t.ns_c, [
            "curl", "-sS", "--max-time", "30", "-o", "/dev/null",
            "-w", fmt, "--socks5-hostname", f"127.0.0.1:{port}",
            "http://localhost:8000/"], check=False, timeout=60)

    # Not counted: until the HTTP server listens and the session is up.
    deadline = time.monotonic() + 20
    while curl(1080).returncode != 0:
        assert time.monotonic() < deadline, "no answer through the proxy"
        time.sleep(0.2)
    for mode, port in (("eager", 1080), ("standard", 1081)):
        times = []
        for i in range(args.count):
            res = curl(port)
            assert res.returncode == 0, res.stderr
            connect, first = map(float, res.stdout.split())
            times.append((first - connect) * 1000)
        print(f"socks5 {mode:>8}: median connect->first byte "
              f"{statistics.median(times):.1f} ms over 50 ms RTT "
              f"({args.count} curls)", flush=True)


def fec(run, args):
    from test_udp import UDPAPP, app as udpapp, udp_client
    from warren import wait_ready_file
    n = args.count
    for engine in args.engines.split(","):
        link = make_link(run.netns, run.procs, both=LINK + ",loss=1%",
                         seed=3, binary=run.tool("tools", "linkemu",
                                                 "warren-linkemu"))
        t = Tunnel(run.netns, run.procs, run.tool("warren"),
                   tempfile.mkdtemp(dir=run.dir), link=link, engine=engine)
        # An echo that keeps no count: writing one per datagram would
        # make it, not the tunnel, the bottleneck at this rate.
        ready = os.path.join(t.dir, "echo.ready")
        e = run.procs.start(f"echo-{engine}", [PY, UDPAPP, "echo",
                                              "--listen", "127.0.0.1:7000",
                                              "--ready", ready],
                            netns=t.ns_s)
        wait_ready_file(e, ready)
        t.server("--allow", "udp://127.0.0.1:7000", name=f"server-{engine}")
        conf = os.path.join(t.dir, "fec.conf")
        with open(conf, "w") as f:
            f.write("[udp fec]\nlisten = 127.0.0.1:5354\n"
                    "target = 127.0.0.1:7000\nfec = 10/3\n")
        c = udp_client(t, "127.0.0.1:5353=127.0.0.1:7000", conf=conf,
                       name=f"client-{engine}")
        res = {}
        for label, port in (("plain", 5353), ("fec 10/3", 5354)):
            before = link.stats()
            r = udpapp(t, "rate", "--to", f"127.0.0.1:{port}", "--count",
                       str(n), "--size", "1200", "--pps", "2000",
                       timeout=n / 2000 + 120)
            after = link.stats()
            wire = sum(after[d]["bytes_in"] - before[d]["bytes_in"]
                       for d in ("a2b", "b2a"))
            rt = r["lost"] / n
            one_way = 1 - (1 - rt) ** 0.5
            res[label] = wire
            extra = ""
            if label != "plain":
                extra = (f", {100 * (wire / res['plain'] - 1):.1f}% more "
                         "bytes than plain")
            print(f"{engine} {label:>8}: lost {r['lost']}/{n} round trips "
                  f"({100 * rt:.3f}%, {100 * one_way:.3f}% each way), "
                  f"{wire / 1e6:.1f} MB on the link{extra}", flush=True)
        c.stop()
        for line in c.log().splitlines():
            if "fec 10/3:" in line or "datagrams up" in line:
                print(f"{engine} client: {line.split('] ', 2)[-1]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("carriers", "carriers-parallel",
                                     "socks5-first-byte", "fec"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build",
                                                    "release"))
    ap.add_argument("--engines", default="quic,kcp")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=100,
                    help="transfer size in MB (10^6 bytes)")
    ap.add_argument("--count", type=int, default=None,
                    help="curls (socks5-first-byte, default 50) or "
                    "datagrams (fec, default 20000)")
    args = ap.parse_args()
    if args.count is None:
        args.count = 20000 if args.what == "fec" else 50
    if os.geteuid() != 0:
        sys.exit("measure: run as root (network namespaces)")
    run = Run(args.build)
    try:
        {"carriers": carriers, "carriers-parallel": carriers_parallel,
         "socks5-first-byte": socks5_first_byte,
         "fec": fec}[args.what](run, args)
    except AssertionError as e:
        print(f"measure: failed: {e}", file=sys.stderr)
        return 1
    finally:
        run.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
