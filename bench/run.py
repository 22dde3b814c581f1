#!/usr/bin/python3
"""warren benchmark: warren's engines against kernel TCP and the tunnels
users run today (socat, stunnel4, kcptun, shadowsocks-libev), on emulated
links and on loopback.

Run as root, after `./run.sh build` (and `scripts/deps.sh bench` for the
peers):

    /usr/bin/python3 bench/run.py [--quick] [--links A,B] [--subjects X,Y]
                                  [--workloads bulk,latency,idle,loopback,
                                               datagram]
                                  [--out bench/results] [--build build/release]

It builds nothing. Each link gets two network namespaces (wnb-<pid>-c<i>,
wnb-<pid>-s<i>) joined by a veth pair (`unimpaired`) or by warren-linkemu;
every subject's two ends are started there side by side (each on its own
ports) and measured with each workload. The loopback ceiling runs client
and server in one namespace over lo; the idle-streams workload starts every
subject afresh on a veth pair. Results: <out>/<date>-<host>[-quick].md,
.json, .png, -cost.png, and latest.md. See bench/README.md.

Namespaces and processes are always removed at the end (also on Ctrl-C and
SIGTERM); leftovers of a killed run (wnb-<pid>-* whose pid is gone) are
deleted by the next run. A missing peer is skipped with a note.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

from wnb import datagram, report  # noqa: E402
from linkemu import make_link  # noqa: E402
from tcputil import format_hostport, wait_file  # noqa: E402
from warren import NETAPP  # noqa: E402
from wnb.procs import (CLEAN, PREFIX, run_guarded, BenchNetns, BenchProcs,  # noqa: E402
                       cpu_s, hwm_kib, log, nsrun, pss_kib, reap_stale, tail)
from wnb.subjects import (ECHO_PORT, Env, all_subjects,  # noqa: E402
                          warren_carriers)

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable

# runs: (1-stream, 4-stream) measurements for the core subjects (warren,
# direct TCP, kcptun-fast3); peers: also run the other subjects (1 + 1
# runs), which are TCP relays riding kernel TCP with the host's default
# congestion control (so following that direct TCP column on lossy links)
# or kcptun's defaults; latency: run connect + first byte.
LINKS = [
    dict(name="unimpaired", spec=None, loss=0.0, delay=0, runs=(1, 1),
         peers=True, latency=True),
    dict(name="100mbit-25ms-0%", spec="delay=25ms,rate=100mbit", loss=0.0,
         delay=25, runs=(1, 1), peers=True, latency=True),
    dict(name="100mbit-25ms-1%", spec="delay=25ms,rate=100mbit,loss=1%",
         loss=1.0, delay=25, runs=(3, 1), peers=True, latency=True),
    dict(name="100mbit-25ms-5%", spec="delay=25ms,rate=100mbit,loss=5%",
         loss=5.0, delay=25, runs=(3, 1), peers=False, latency=False),
    # Gilbert-Elliott: 0.5% good->bad, 25% bad->good: bursts of 4 packets
    # on average, 0.5/(0.5+25) = 1.96% average loss.
    dict(name="100mbit-25ms-burst", spec="delay=25ms,rate=100mbit,"
         "burst=0.5%:25%", loss=100 * 0.5 / 25.5, delay=25, runs=(1, 0),
         peers=False, latency=False),
    # 1% of packets held 10 ms (~80 packets at 100 Mbit/s): overtaken.
    dict(name="100mbit-25ms-reorder", spec="delay=25ms,rate=100mbit,"
         "reorder=1%:10ms", loss=0.0, delay=25, runs=(1, 0), peers=False,
         latency=False),
    dict(name="20mbit-150ms-1%", spec="delay=150ms,rate=20mbit,loss=1%",
         loss=1.0, delay=150, runs=(1, 0), peers=False, latency=False),
]
QUICK_LINKS = ("100mbit-25ms-0%", "100mbit-25ms-1%")
WORKLOADS = ("loopback", "bulk", "latency", "idle", "datagram")

FULL = dict(t=6, omit=1, lat_conns=200, idle=(1000, 10000), lo_runs=3,
            lo_runs_peers=1)
QUICK = dict(t=4, omit=1, lat_conns=50, idle=(1000,), lo_runs=1,
             lo_runs_peers=1)


def iperf(ns, host, port, streams, cc, t, omit, reverse=False):
    """One iperf3 run: (Mbit/s received, bytes sent incl. omitted) or
    RuntimeError. reverse: the server's end sends (iperf3 -R)."""
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", str(t), "-O",
            str(omit), "-J", "--connect-timeout", "5000"]
    if reverse:
        argv.append("-R")
    if streams > 1:
        argv += ["-P", str(streams)]
    if cc:
        argv += ["-C", cc]
    try:
        res = nsrun(ns, argv, timeout=t + omit + 30)
    except subprocess.TimeoutExpired:
        raise RuntimeError("iperf3 timed out")
    try:
        j = json.loads(res.stdout)
    except ValueError:
        raise RuntimeError(f"iperf3 exit {res.returncode}: "
                           f"{(res.stdout + res.stderr).strip()[:200]}")
    if "error" in j:  # iperf3 3.12 -J exits 0 even on errors
        raise RuntimeError(f"iperf3: {j['error']}")
    mbit = j["end"]["sum_received"]["bits_per_second"] / 1e6
    sent = sum(iv["sum"]["bytes"] for iv in j.get("intervals", []))
    return mbit, max(sent, j["end"]["sum_sent"]["bytes"])


def summarize(cell):
    v = cell["runs"]
    if v:
        cell.update(median=statistics.median(v), min=min(v), max=max(v))
    else:
        cell.update(median=None, min=None, max=None)
    mb = cell["bytes"] / 1e6
    cell["cpu_ms_per_mb"] = {
        side: round(1000 * s / mb, 3) if mb > 0 else None
        for side, s in cell["cpu_s"].items()}


def new_cell():
    return {"runs": [], "errors": [], "cpu_s": {}, "bytes": 0}


def side_sum(procs, side, targets, fn):
    vals = [fn(pr.p.pid) for pr in procs
            if pr.side == side and pr.target in targets]
    vals = [v for v in vals if v is not None]
    return sum(vals) if vals else None


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = args.build if os.path.isabs(args.build) else \
            os.path.abspath(os.path.join(ROOT, args.build))
        self.warren = os.path.join(self.build, "warren")
        self.emu = os.path.join(self.build, "tools", "linkemu",
                                "warren-linkemu")
        self.tmp = tempfile.mkdtemp(prefix="warren-bench-")
        self.P = QUICK if args.quick else FULL
        self.notes = []
        self.bbr = True
        self._carriers = None
        self._cert = None

    # -- setup ---------------------------------------------------------------

    def check(self):
        if os.geteuid() != 0:
            sys.exit("bench: needs root (network namespaces, TUN devices)")
        missing = [p for p in (self.warren, self.emu)
                   if not os.access(p, os.X_OK)]
        if missing:
            sys.exit("bench: missing " + ", ".join(missing) +
                     "\nbuild first: ./run.sh build  (or --build DIR)")
        for tool, pkg in (("iperf3", "iperf3"), ("ip", "iproute2")):
            if not shutil.which(tool):
                sys.exit(f"bench: {tool} not found: apt-get install {pkg}"
                         " (or scripts/deps.sh bench)")
        # Inherited by every process started: the idle streams need
        # 10,000 descriptors and more in a process.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (max(soft, want), max(hard, want)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if self.nofile < 2 * 10000 + 100:
            self.notes.append(
                f"RLIMIT_NOFILE is {self.nofile} (the hard limit here): a "
                "relay that holds two sockets per connection cannot reach "
                "10,000 idle streams.")

    def check_bbr(self):
        path = "/proc/sys/net/ipv4/tcp_available_congestion_control"

        def avail():
            with open(path) as f:
                return "bbr" in f.read().split()
        if not avail():
            mp = shutil.which("modprobe") or "/sbin/modprobe"
            if os.path.exists(mp):
                subprocess.run([mp, "tcp_bbr"], capture_output=True)
        self.bbr = avail()

    def keys(self):
        old = os.umask(0o077)
        try:
            for who in ("s", "c"):
                key = os.path.join(self.tmp, f"{who}.key")
                with open(key, "w") as f:
                    subprocess.run([self.warren, "genkey"], stdout=f,
                                   check=True)
                with open(key) as f:
                    pub = subprocess.run([self.warren, "pubkey"], stdin=f,
                                         capture_output=True, text=True,
                                         check=True).stdout.strip()
                setattr(self, f"{who}key", key)
                setattr(self, f"{who}pub", pub)
        finally:
            os.umask(old)

    def warren_carriers(self):
        if self._carriers is None:
            self._carriers = warren_carriers(self.warren, self.tmp,
                                             self.skey, self.cpub)
        return self._carriers

    def tls_cert(self):
        """A throwaway self-signed certificate for stunnel's server."""
        if self._cert is None:
            self.tls_key = os.path.join(self.tmp, "tls.key")
            self._cert = os.path.join(self.tmp, "tls.crt")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=bench",
                            "-keyout", self.tls_key, "-out", self._cert],
                           check=True, capture_output=True)
        return self._cert

    def pick_subjects(self):
        want = self.args.subjects.split(",") if self.args.subjects else None
        unknown = set(want or ()) - {s.name for s in all_subjects()}
        if unknown:
            sys.exit(f"bench: unknown subject {', '.join(sorted(unknown))}")
        out, skipped = [], []
        for idx, s in enumerate(all_subjects()):
            s.idx = idx
            if want and s.name not in want:
                continue
            why = s.missing(self)
            if why:
                skipped.append((s, why))
            else:
                out.append(s)
        pkgs = sorted({pkg for s, _ in skipped for b, pkg in s.bins
                       if not shutil.which(b)})
        for s, why in skipped:
            self.notes.append(f"{s.name} skipped: {why}.")
            log(f"skipping {s.name}: {why}")
        if pkgs:
            log("to run the missing peers: apt-get install -y " +
                " ".join(pkgs) + "   (or: scripts/deps.sh bench)")
        return out, skipped

    def meta(self):
        def out(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True,
                                      timeout=10).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                return ""
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        commit = out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
        dirty = out(["git", "-C", ROOT, "status", "--porcelain",
                     "--untracked-files=no"])
        pkgs = {}
        for p in ("iperf3", "socat", "stunnel4", "openssl", "kcptun",
                  "shadowsocks-libev", "python3-matplotlib"):
            v = out(["dpkg-query", "-W", "-f", "${Version}", p])
            pkgs[p] = v or None
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        return {
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "hostname": socket.gethostname(),
            "kernel": platform.release(),
            "cpu": cpu,
            "cpus": os.cpu_count(),
            "load_at_start": " ".join(load),
            # New namespaces inherit it, and setting another there is
            # refused unless the host allows it: the relays use this.
            "host_tcp_cc": read1("/proc/sys/net/ipv4/"
                                 "tcp_congestion_control"),
            "nofile": self.nofile,
            "warren": out([self.warren, "--version"]) or "?",
            "commit": (commit or "?") + (" (dirty)" if dirty else ""),
            "build": os.path.relpath(self.build, ROOT),
            "packages": pkgs,
            "quick": self.args.quick,
            "reverse": self.args.reverse,
            "params": self.P,
        }

    # -- namespaces and servers ---------------------------------------------

    def link_up(self, i, link):
        """The link's two namespaces, joined by a veth pair or by the
        emulator (linkemu.make_link, the tests' own). Returns c, s, the
        server's address, and the linkemu.Link (None for a veth pair)."""
        c = CLEAN.add_netns(f"{PREFIX}-c{i}")
        s = CLEAN.add_netns(f"{PREFIX}-s{i}")
        ca, sa = f"10.202.{i + 1}.1", f"10.202.{i + 1}.2"
        if link["spec"] is None:
            subprocess.run(["ip", "-n", c, "link", "add", "wnbc", "type",
                            "veth", "peer", "name", "wnbs", "netns", s],
                           check=True)
            for ns, dev, addr in ((c, "wnbc", ca), (s, "wnbs", sa)):
                subprocess.run(["ip", "-n", ns, "addr", "add", f"{addr}/24",
                                "dev", dev], check=True)
                subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"],
                               check=True)
            return c, s, sa, None
        try:
            emu = make_link(BenchNetns(), BenchProcs(self.tmp),
                            both=link["spec"], seed=1, ns_a=c, ns_b=s,
                            addrs=(ca, sa), name=f"linkemu{i}",
                            binary=self.emu)
        except AssertionError as e:
            raise RuntimeError(str(e)) from None
        return c, s, sa, emu

    def link_down(self, emu):
        """Stops the emulator; its counters, summarized (empty if it
        failed)."""
        try:
            st = emu.stop()
        except (AssertionError, OSError, ValueError) as e:
            log(f"linkemu: {str(e).splitlines()[0]}")
            st = {}
        CLEAN.stop(emu.proc.popen)
        return emu_summary(st)

    def servers_up(self, s, tag):
        """The echo server in namespace s (iperf3 servers are per
        subject)."""
        ready = os.path.join(self.tmp, f"{tag}-echo.ready")
        echo = CLEAN.start(f"{tag}-echo", [
            PYTHON, NETAPP, "serve", "--listen", f"0.0.0.0:{ECHO_PORT}",
            "--mode", "echo", "--ready", ready], self.tmp, netns=s)
        try:
            wait_file(ready)
        except AssertionError:
            raise RuntimeError("the echo server did not come up:\n" +
                               tail(echo.bench_log)) from None
        return [echo]

    def iperf_up(self, env):
        if env.iperf_srv is not None:
            CLEAN.stop(env.iperf_srv)
        env.iperf_srv = CLEAN.start(
            f"{env.tag}-iperf3-{env.iperf_port}",
            ["iperf3", "-p", str(env.iperf_port), "-s", "--forceflush"],
            self.tmp, netns=env.s)

    def drained(self, env, limit=30.0):
        """Waits until the subject's iperf3 server holds no connection: a
        tunnel may still be delivering what it buffered after iperf3's
        client stopped, and that must not overlap the next run."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            res = nsrun(env.s, ["ss", "-Htn", "state", "established",
                                f"( sport = :{env.iperf_port} )"])
            if res.returncode == 0 and not res.stdout.strip():
                return True
            time.sleep(0.2)
        return False

    def start_subject(self, subj, env):
        """Starts both ends and waits until a byte goes through to the
        echo server. Returns the Procs, or raises RuntimeError."""
        self.iperf_up(env)
        procs = subj.start(env)
        if subj.direct:
            time.sleep(0.3)
            return procs
        host, port = subj.echo_addr(env)
        res = nsrun(env.c, [PYTHON, NETAPP, "wait", "--connect",
                            format_hostport(host, port), "--timeout", "20"],
                    timeout=40)
        if res.returncode != 0:
            logs = "".join(f"\n{pr.p.bench_name}:\n{tail(pr.p.bench_log)}"
                           for pr in procs)
            for pr in procs:
                CLEAN.stop(pr.p)
            CLEAN.stop(env.iperf_srv)
            raise RuntimeError("did not come up" + logs)
        return procs

    # -- workloads -------------------------------------------------------------

    def bulk_once(self, subj, env, procs, n, cell, label):
        """One iperf3 measurement with its CPU cost per side; on failure
        records the error, restarts the iperf3 server and returns False."""
        time.sleep(0.5)
        counted = ("*", "iperf")
        try:
            for pr in procs:
                if pr.p.poll() is not None:
                    raise RuntimeError(f"{pr.p.bench_name} exited "
                                       f"{pr.p.returncode}")
            cpu0 = {side: side_sum(procs, side, counted, cpu_s)
                    for side in ("client", "server")}
            host, port = subj.iperf_addr(env)
            mbit, nbytes = iperf(env.c, host, port, n, subj.cc,
                                 self.P["t"], self.P["omit"],
                                 self.args.reverse)
            for side in ("client", "server"):
                v = side_sum(procs, side, counted, cpu_s)
                if v is not None and cpu0[side] is not None:
                    cell["cpu_s"][side] = cell["cpu_s"].get(side, 0.0) + \
                        v - cpu0[side]
            cell["bytes"] += nbytes
            cell["runs"].append(round(mbit, 2))
            log(f"  {label} {subj.name} P{n}: {mbit:.1f} Mbit/s")
            if not self.drained(env):
                cell["errors"].append("still delivering 30 s after the "
                                      "run (iperf3 server restarted)")
                self.iperf_up(env)
            return True
        except (RuntimeError, OSError) as e:
            cell["errors"].append(str(e))
            cell.setdefault("error_logs", []).append({
                pr.p.bench_name: tail(pr.p.bench_log)
                for pr in procs + [Proc0(env.iperf_srv)]})
            log(f"  {label} {subj.name} P{n}: {e} (ERROR)")
            self.drained(env, 10.0)
            self.iperf_up(env)
            time.sleep(0.3)
            return False

    def latency(self, subj, env):
        host, port = subj.echo_addr(env)
        n = self.P["lat_conns"]
        res = nsrun(env.c, [PYTHON, NETAPP, "latency", "--connect",
                            format_hostport(host, port), "--count", str(n)],
                    timeout=n * 12 + 30)
        try:
            d = json.loads(res.stdout)
        except ValueError:
            d = {"ms": [], "failed": n, "error": res.stderr[-300:]}
        ms = d["ms"]
        return {"n": len(ms), "failed": d["failed"],
                "median_ms": round(statistics.median(ms), 2) if ms else None,
                "p99_ms": round(report.percentile(ms, 99), 2) if ms else None}

    def run_link(self, i, link, subjects, R, workloads):
        name = link["name"]
        log(f"link {name} ({link['spec'] or 'veth pair, no emulator'})")
        c, s, sa, emu = self.link_up(i, link)
        tag = f"l{i}"
        started = {}
        procs = []
        try:
            procs += self.servers_up(s, tag)
            here = [x for x in subjects if runs_on(x, link)]
            for subj in here:
                env = Env(self, c, s, sa, tag, subj.idx)
                try:
                    started[subj.name] = (env, self.start_subject(subj, env))
                except RuntimeError as e:
                    R["notes"].append(f"{name}: {subj.name} {e}")
                    log(f"  {subj.name}: {str(e).splitlines()[0]} (ERROR)")
            if "bulk" in workloads:
                cells = R["bulk"].setdefault(name, {})
                runs1, runs4 = link["runs"] if not self.args.quick \
                    else (1, 1)
                for run in range(max(runs1, runs4)):
                    for subj in here:
                        if subj.name not in started:
                            continue
                        env, sp = started[subj.name]
                        rep = subj.core if subj.repeat is None \
                            else subj.repeat
                        r1, r4 = (runs1, runs4) if rep else (1, 1)
                        r4 = r4 if subj.four else 0
                        for n, runs in ((1, r1), (4, r4)):
                            if run >= runs:
                                continue
                            cell = cells.setdefault(subj.name, {}) \
                                .setdefault(str(n), new_cell())
                            for _ in (1, 2):
                                if self.bulk_once(subj, env, sp, n, cell,
                                                  name):
                                    break
                for row in cells.values():
                    for cell in row.values():
                        summarize(cell)
            if "latency" in workloads and link["latency"]:
                for subj in here:
                    if subj.name not in started or not subj.latency:
                        continue
                    env, _ = started[subj.name]
                    d = self.latency(subj, env)
                    R["latency"].setdefault(name, {})[subj.name] = d
                    log(f"  {name} {subj.name} connect+first byte: {d}")
            for sname, (env, sp) in started.items():
                if not sp:
                    continue
                R["peak_kib"].setdefault(name, {})[sname] = {
                    side: side_sum(sp, side, ("*", "iperf", "echo"),
                                   hwm_kib) for side in ("client", "server")}
                for pr in sp:
                    if pr.p.poll() is not None:
                        R["notes"].append(
                            f"{name}: {pr.p.bench_name} exited "
                            f"{pr.p.returncode} during the link: "
                            f"{tail(pr.p.bench_log, 300)}")
        finally:
            for env, sp in started.values():
                for pr in sp:
                    CLEAN.stop(pr.p)
                CLEAN.stop(env.iperf_srv)
            for p in procs:
                CLEAN.stop(p)
            if emu is not None:
                R["link_stats"][name] = self.link_down(emu)
            CLEAN.del_netns(c)
            CLEAN.del_netns(s)

    def run_loopback(self, subjects, R):
        log("loopback ceiling (one namespace, lo, no emulator)")
        ns = CLEAN.add_netns(f"{PREFIX}-lo")
        tag = "lo"
        started, procs = {}, []
        try:
            procs += self.servers_up(ns, tag)
            here = [x for x in subjects if x.name != "tcp-bbr"]
            for subj in here:
                env = Env(self, ns, ns, "127.0.0.1", tag, subj.idx)
                try:
                    started[subj.name] = (env, self.start_subject(subj, env))
                except RuntimeError as e:
                    R["notes"].append(f"loopback: {subj.name} {e}")
            top = max(self.P["lo_runs"], self.P["lo_runs_peers"])
            for run in range(top):
                for subj in here:
                    if subj.name not in started:
                        continue
                    runs = self.P["lo_runs"] if subj.lo_repeat \
                        else self.P["lo_runs_peers"]
                    if run >= runs:
                        continue
                    env, sp = started[subj.name]
                    cell = R["loopback"].setdefault(subj.name, new_cell())
                    for _ in (1, 2):
                        if self.bulk_once(subj, env, sp, 1, cell,
                                          "loopback"):
                            break
            for cell in R["loopback"].values():
                summarize(cell)
        finally:
            for env, sp in started.values():
                for pr in sp:
                    CLEAN.stop(pr.p)
                CLEAN.stop(env.iperf_srv)
            for p in procs:
                CLEAN.stop(p)
            CLEAN.del_netns(ns)

    def idle_once(self, subj, env, n):
        """Fresh ends; PSS per side before and after n idle streams."""
        sp = self.start_subject(subj, env)
        counted = ("*", "echo")
        helper = None
        try:
            time.sleep(1.0)
            before = {side: side_sum(sp, side, counted, pss_kib)
                      for side in ("client", "server")}
            host, port = subj.echo_addr(env)
            helper = CLEAN.start(
                f"{env.tag}-idle-{subj.name}-{n}",
                [PYTHON, NETAPP, "idle", "--connect",
                 format_hostport(host, port), "--conns", str(n),
                 "--stall", "5"],
                self.tmp, netns=env.c, stdin=subprocess.PIPE)
            line = wait_line(helper.bench_log, helper, 60 + n * 0.05)
            if line is None:
                raise RuntimeError("the idle client gave no result: " +
                                   tail(helper.bench_log, 300))
            d = json.loads(line)
            time.sleep(1.0)
            after = {side: side_sum(sp, side, counted, pss_kib)
                     for side in ("client", "server")}
            d["pss_kib_before"], d["pss_kib_after"] = before, after
            d["bytes_per_stream"] = {
                side: round((after[side] - before[side]) * 1024 / d["up"])
                if d["up"] and after[side] is not None and
                before[side] is not None else None
                for side in ("client", "server")}
            for pr in sp:
                if pr.p.poll() is not None:
                    d.setdefault("died", []).append(
                        f"{pr.p.bench_name} exited {pr.p.returncode}: "
                        f"{tail(pr.p.bench_log, 300)}")
            log(f"  idle {subj.name} N={n}: {d['up']} up "
                f"({d['stopped'] or 'all'}), bytes/stream "
                f"{d['bytes_per_stream']}")
            return d
        finally:
            if helper is not None:
                try:
                    helper.stdin.write(b"\n")
                    helper.stdin.close()
                    helper.wait(timeout=20)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                CLEAN.stop(helper)
            for pr in sp:
                CLEAN.stop(pr.p)
            CLEAN.stop(env.iperf_srv)

    def run_idle(self, subjects, R):
        log("idle streams (veth pair, fresh processes per count)")
        link = dict(name="idle", spec=None)
        i = len(LINKS)
        c, s, sa, _ = self.link_up(i, link)
        tag = "idle"
        procs = []
        try:
            procs += self.servers_up(s, tag)
            for subj in subjects:
                for n in subj.idle:
                    if n not in self.P["idle"]:
                        continue
                    env = Env(self, c, s, sa, tag, subj.idx)
                    try:
                        d = self.idle_once(subj, env, n)
                    except (RuntimeError, OSError, ValueError) as e:
                        d = {"wanted": n, "up": 0, "error": str(e)[:500]}
                        log(f"  idle {subj.name} N={n}: {e} (ERROR)")
                    R["idle"].setdefault(subj.name, {})[str(n)] = d
        finally:
            for p in procs:
                CLEAN.stop(p)
            CLEAN.del_netns(c)
            CLEAN.del_netns(s)

    # -- main ------------------------------------------------------------------

    def run(self):
        self.check()
        reap_stale()
        self.check_bbr()
        self.keys()
        subjects, skipped = self.pick_subjects()
        links = [x for x in LINKS if not self.args.quick or
                 x["name"] in QUICK_LINKS]
        if self.args.links:
            want = self.args.links.split(",")
            unknown = set(want) - {x["name"] for x in LINKS}
            if unknown:
                sys.exit(f"bench: unknown link {', '.join(sorted(unknown))}")
            links = [x for x in LINKS if x["name"] in want]
        workloads = self.args.workloads.split(",") if self.args.workloads \
            else list(WORKLOADS)
        t0 = time.monotonic()
        R = {"meta": self.meta(),
             "links": [dict(x, nominal_loss_pct=round(x["loss"], 2))
                       for x in links],
             "subjects": [{"name": x.name, "desc": x.desc, "relay": x.relay,
                           "direct": x.direct, "group": x.group}
                          for x in subjects],
             "skipped": {x.name: why for x, why in skipped},
             "workloads": workloads,
             "bulk": {}, "latency": {}, "peak_kib": {}, "loopback": {},
             "idle": {}, "link_stats": {}, "notes": self.notes,
             "phase_s": {}}
        if "loopback" in workloads:
            t = time.monotonic()
            self.run_loopback(subjects, R)
            R["phase_s"]["loopback"] = round(time.monotonic() - t)
        if "bulk" in workloads or "latency" in workloads:
            t = time.monotonic()
            for i, link in enumerate(links):
                self.run_link(i, link, subjects, R, workloads)
            R["phase_s"]["links"] = round(time.monotonic() - t)
        if "idle" in workloads:
            t = time.monotonic()
            self.run_idle(subjects, R)
            R["phase_s"]["idle"] = round(time.monotonic() - t)
        if "datagram" in workloads:
            t = time.monotonic()
            datagram.run(self, R)
            R["phase_s"]["datagram"] = round(time.monotonic() - t)
        R["meta"]["duration_s"] = round(time.monotonic() - t0)
        log(f"done in {R['meta']['duration_s']} s "
            f"({', '.join(f'{k} {v} s' for k, v in R['phase_s'].items())})")
        report.write(R, self.args.out, log)


def runs_on(subj, link):
    """Whether subj runs on link: its own list of links if it has one,
    else every link for the core subjects and the links with peers for
    the others."""
    if subj.links is not None:
        return link["name"] in subj.links
    return link["peers"] or subj.core


class Proc0:
    """A bare Popen in the shape of subjects.Proc, for log collection."""

    def __init__(self, p):
        self.p = p


def wait_line(path, proc, timeout):
    """The first line of proc's log file, waiting up to timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                line = f.readline()
            if line.endswith("\n"):
                return line
        except OSError:
            pass
        if proc.poll() is not None:
            return None
        select.select([], [], [], 0.2)
    return None


def read1(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def emu_summary(st):
    """The report's view of the emulator's counters (Link.stop())."""
    a2b = st.get("a2b", {})
    pin = a2b.get("packets_in", 0)
    lost = a2b.get("dropped_loss", 0) + a2b.get("dropped_burst", 0)
    return {"a2b_packets_in": pin,
            "a2b_loss_pct": round(100.0 * lost / pin, 3) if pin else None,
            "a2b_dropped_queue": a2b.get("dropped_queue")}


def main():
    names = [s.name for s in all_subjects()]
    ap = argparse.ArgumentParser(
        description="warren vs kernel TCP and other tunnels, on emulated "
        "links and loopback (run as root after ./run.sh build)")
    ap.add_argument("--quick", action="store_true",
                    help="2 links, 1 run each, shorter runs, idle N=1000 "
                    "only (about 7 minutes)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                    help="result directory (default bench/results)")
    ap.add_argument("--build", default="build/release",
                    help="build directory, relative to the source tree "
                    "(default build/release)")
    ap.add_argument("--links", default=None,
                    help="comma list of links: " +
                    ",".join(x["name"] for x in LINKS).replace("%", "%%"))
    ap.add_argument("--subjects", default=None,
                    help="comma list of subjects: " + ",".join(names))
    ap.add_argument("--workloads", default=None,
                    help="comma list of: " + ",".join(WORKLOADS))
    ap.add_argument("--reverse", action="store_true",
                    help="bulk runs with iperf3 -R: the server's end sends "
                    "and the client's receives, as in a download through "
                    "the tunnel")
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep the temporary directory with every "
                    "process's log (its path is printed)")
    args = ap.parse_args()

    return run_guarded(Bench(args), args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
