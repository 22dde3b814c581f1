#!/usr/bin/python3
"""warren reliability suite: floods at the server while a real client
transfers, load (many streams), churn (sessions killed -9) and faults
(carrier cuts, server restarts), against real processes in network
namespaces. The sibling of bench/run.py; see docs/stress.md.

Run as root, after `./run.sh build` (release) and with warren-cutproxy
built (`cmake --build build/release --target warren-cutproxy`):

    /usr/bin/python3 bench/stress.py [--quick] [--only GROUP[,GROUP]]
                                     [--out bench/results]
                                     [--build build/release] [--keep-logs]

GROUPS: floods, load, churn, faults. It builds nothing.

Topology, per case: three namespaces, wnb-<pid>-c (client, 10.203.1.1),
wnb-<pid>-s (server, 10.203.1.2 on the client side, 10.203.9.254 on the
stranger side) and wnb-<pid>-a (strangers, 10.203.9.1 and .10-.29). The
client reaches the server over warren-linkemu (100 Mbit/s, 5 ms each way);
the strangers reach it over a veth pair of their own, so a flood does not
have to get through the emulated link to reach the server (it measures the
server, not the link). An nftables table in the server namespace counts
what arrives from and what leaves towards the stranger side: "bytes sent
to strangers" is that counter, not a figure warren reports about itself.

Results: <out>/stress-<date>-<host>[-quick].md and .json, and
stress-latest.md. Namespaces and processes are removed at the end (also on
Ctrl-C and SIGTERM). It never fails on a number: a goal missed is a
figure in the report, marked MISSED.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

import wnb  # noqa: F401,E402 (puts tests/e2e on the path)
from linkemu import make_link  # noqa: E402
import warren  # noqa: E402
from tcputil import wait_file  # noqa: E402
from wnb.procs import (CLEAN, PREFIX, run_guarded, BenchProcs, BenchNetns,  # noqa: E402
                       log, nsrun, reap_stale, tail)

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable
GEN = os.path.join(os.path.dirname(HERE), "wnb", "stressgen.py")
GROUPS = ("floods", "load", "churn", "faults")

CLIENT_IP, SERVER_IP = "10.203.1.1", "10.203.1.2"
STRANGER_NET, SERVER_SIDE_IP = "10.203.9.0/24", "10.203.9.254"
STRANGER_IPS = ["10.203.9.1"] + [f"10.203.9.{i}" for i in range(10, 30)]
LINK_SPEC = "delay=5ms,rate=100mbit"
UDP_PORT, TCP_PORT = 4433, 4443
ECHO_PORT, IPERF_PORT = 7000, 5201
FWD_ECHO, FWD_IPERF = 2000, 2001

FULL = dict(iperf_s=8, udp_rate=50000, spoof_rate=5000, halfopen_rate=2000,
            halfopen_hold=10, slowloris=2000, slowloris_rate=200,
            concurrent=10000, new_rate=1000, new_secs=60, churn=300,
            churn_parallel=4, churn_settle=60, fault_secs=120, restarts=20)
QUICK = dict(iperf_s=4, udp_rate=50000, spoof_rate=2000, halfopen_rate=500,
             halfopen_hold=5, slowloris=300, slowloris_rate=100,
             concurrent=1000, new_rate=200, new_secs=5, churn=20,
             churn_parallel=4, churn_settle=90, fault_secs=15, restarts=3)

# Floods: (name, engine, carrier, generator). The goals are the issue's.
FLOODS = (
    ("udp-garbage/quic", "quic", "udp", "udp"),
    ("udp-garbage/kcp", "kcp", "udp", "udp"),
    ("quic-initial-replay", "quic", "udp", "spoof"),
    ("kcp-initiation-replay", "kcp", "udp", "spoof"),
    ("tcp-halfopen/quic-tcp", "quic", "tcp", "halfopen"),
    ("slowloris/quic-tcp", "quic", "tcp", "slowloris"),
)


# ---- /proc ------------------------------------------------------------------

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Sampler:
    """Samples a process's RSS and fd count every 0.25 s in a thread: the
    peaks of a phase."""

    def __init__(self, pid):
        self.pid = pid
        self.rss = []
        self.fds = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            r, f = rss_kib(self.pid), fds(self.pid)
            if r is not None:
                self.rss.append(r)
            if f is not None:
                self.fds.append(f)
            self._stop.wait(0.25)

    def stop(self):
        self._stop.set()
        self._t.join()
        return {"rss_kib_max": max(self.rss) if self.rss else None,
                "fds_max": max(self.fds) if self.fds else None}


def load_now():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- the suite ----------------------------------------------------------------

class Stress:
    def __init__(self, args):
        self.args = args
        self.build = args.build if os.path.isabs(args.build) else \
            os.path.abspath(os.path.join(ROOT, args.build))
        self.warren = os.path.join(self.build, "warren")
        self.emu = os.path.join(self.build, "tools", "linkemu",
                                "warren-linkemu")
        self.cutproxy = os.path.join(self.build, "tools", "cutproxy",
                                     "warren-cutproxy")
        self.tmp = tempfile.mkdtemp(prefix="warren-stress-")
        self.P = QUICK if args.quick else FULL
        self.notes = []
        self.seq = 0

    def check(self):
        if os.geteuid() != 0:
            sys.exit("stress: needs root (network namespaces, raw sockets)")
        missing = [p for p in (self.warren, self.emu, self.cutproxy)
                   if not os.access(p, os.X_OK)]
        if missing:
            sys.exit("stress: missing " + ", ".join(missing) +
                     "\nbuild first: ./run.sh build and cmake --build "
                     "build/release --target warren-cutproxy")
        for tool, pkg in (("iperf3", "iperf3"), ("ip", "iproute2"),
                          ("nft", "nftables")):
            if not shutil.which(tool):
                sys.exit(f"stress: {tool} not found: apt-get install {pkg}")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (max(soft, want), max(hard, want)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    def keys(self):
        old = os.umask(0o077)
        try:
            # One key per parallel churn client: on the KCP engine a key
            # is one session (as a WireGuard peer is one endpoint), so two
            # live clients sharing a key replace each other's session in
            # turn; a client restarted after kill -9 reusing its key is
            # what churn measures.
            churn = [f"churn{k}" for k in range(self.P["churn_parallel"])]
            for who in ("s", "c", "n", *churn):
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

    # -- namespaces ---------------------------------------------------------

    def up(self):
        """Fresh namespaces for one case: c and s over the emulator, a and
        s over a veth pair, the nft counters, the echo and iperf3
        servers."""
        self.seq += 1
        n = self.seq
        c = CLEAN.add_netns(f"{PREFIX}-c{n}")
        s = CLEAN.add_netns(f"{PREFIX}-s{n}")
        a = CLEAN.add_netns(f"{PREFIX}-a{n}")
        link = make_link(BenchNetns(), BenchProcs(self.tmp), both=LINK_SPEC,
                         seed=1, ns_a=c, ns_b=s, addrs=(CLIENT_IP, SERVER_IP),
                         name=f"linkemu{n}", binary=self.emu)
        subprocess.run(["ip", "-n", a, "link", "add", "wnsa", "type", "veth",
                        "peer", "name", "wnss", "netns", s], check=True)
        subprocess.run(["ip", "-n", s, "addr", "add", SERVER_SIDE_IP + "/24",
                        "dev", "wnss"], check=True)
        for ip in STRANGER_IPS:
            subprocess.run(["ip", "-n", a, "addr", "add", ip + "/24", "dev",
                            "wnsa"], check=True)
        for ns, dev in ((a, "wnsa"), (s, "wnss")):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"],
                           check=True)
        # Spoofed sources are not on the stranger side's interface, so the
        # server's replies wait for ARP that never comes: the output hook
        # counts them before that, which is what the server tried to send.
        rules = """
table ip wnstress {
  counter to_strangers {}
  counter to_strangers_udp {}
  counter to_strangers_tcp_data {}
  counter from_strangers {}
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "wnss" counter name to_strangers
    oifname "wnss" meta l4proto udp counter name to_strangers_udp
    oifname "wnss" tcp flags & (syn|rst) == 0 ip length > 52 counter name to_strangers_tcp_data
  }
  chain in {
    type filter hook input priority 0; policy accept;
    iifname "wnss" counter name from_strangers
  }
}
"""
        subprocess.run(["ip", "netns", "exec", s, "nft", "-f", "-"],
                       input=rules, text=True, check=True)
        for k in ("net.core.somaxconn=8192",
                  "net.ipv4.tcp_max_syn_backlog=8192"):
            for ns in (c, s):
                nsrun(ns, ["sysctl", "-q", "-w", k])
        ready = os.path.join(self.tmp, f"echo{n}.ready")
        echo = CLEAN.start(f"echo{n}", [
            PYTHON, GEN, "echo", "--listen", f"127.0.0.1:{ECHO_PORT}",
            "--ready", ready], self.tmp, netns=s)
        wait_file(ready)
        iperf = CLEAN.start(f"iperf{n}", ["iperf3", "-s", "-B", "127.0.0.1",
                                           "-p", str(IPERF_PORT)], self.tmp,
                            netns=s)
        return dict(n=n, c=c, s=s, a=a, link=link, procs=[echo, iperf])

    def down(self, env):
        for p in env["procs"]:
            CLEAN.stop(p)
        try:
            env["link"].stop()
        except (AssertionError, OSError, ValueError):
            pass
        CLEAN.stop(env["link"].proc.popen)
        for k in ("c", "s", "a"):
            CLEAN.del_netns(env[k])

    def counters(self, env):
        r = nsrun(env["s"], ["nft", "-j", "list", "counters", "table", "ip",
                             "wnstress"])
        out = {}
        try:
            for item in json.loads(r.stdout)["nftables"]:
                c = item.get("counter")
                if c:
                    out[c["name"]] = {"packets": c["packets"],
                                      "bytes": c["bytes"]}
        except (ValueError, KeyError):
            pass
        return out

    # -- warren ---------------------------------------------------------------

    def url(self, carrier, host):
        port = UDP_PORT if carrier == "udp" else TCP_PORT
        return f"{carrier}://{host}:{port}"

    def server(self, env, engine, carrier, name="server", extra=()):
        mode = "fast3" if engine == "kcp" else None
        argv = warren.argv(
            self.warren, "server", self.url(carrier, "0.0.0.0"),
            key=self.skey, peer_key=self.cpub, engine=engine, mode=mode,
            allow=(f"127.0.0.1:{ECHO_PORT}", f"127.0.0.1:{IPERF_PORT}"),
            log_level="info", extra=("--max-streams", "12000", "--allow-client",
                                     self.npub, *extra))
        p = CLEAN.start(f"{name}{env['n']}-{self.seq_name()}", argv,
                        self.tmp, netns=env["s"])
        self.wait_log(p, "server ready", 15)
        env["procs"].append(p)
        return p

    def client(self, env, engine, url, forwards, name="client", wait=True,
               key=None):
        mode = "fast3" if engine == "kcp" else None
        argv = warren.argv(
            self.warren, "client", url, key=key or self.ckey, peer_key=self.spub,
            engine=engine, mode=mode, forwards=forwards, log_level="info",
            extra=("--max-streams", "12000"))
        p = CLEAN.start(f"{name}{env['n']}-{self.seq_name()}", argv,
                        self.tmp, netns=env["c"])
        env["procs"].append(p)
        if wait:
            self.wait_log(p, "connected to server", 20)
        return p

    _names = 0

    def seq_name(self):
        Stress._names += 1
        return str(Stress._names)

    def wait_log(self, p, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in tail(p.bench_log, 1 << 20):
                return time.monotonic()
            if p.poll() is not None:
                raise RuntimeError(f"{p.bench_name} exited {p.returncode}: "
                                   f"{tail(p.bench_log, 600)}")
            time.sleep(0.02)
        raise RuntimeError(f"{p.bench_name}: no '{text}' in {timeout} s: "
                           f"{tail(p.bench_log, 600)}")

    def gen(self, env, ns, args, name, timeout=None):
        """Runs a stressgen command to its end: its JSON line."""
        r = nsrun(env[ns], [PYTHON, GEN] + [str(x) for x in args],
                  timeout=timeout or 600)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"{name}: exit {r.returncode}: "
                               f"{(r.stdout + r.stderr)[-600:]}")

    def gen_bg(self, env, ns, args, name):
        return CLEAN.start(f"{name}{env['n']}-{self.seq_name()}",
                           [PYTHON, GEN] + [str(x) for x in args], self.tmp,
                           netns=env[ns])

    def gen_result(self, p, timeout):
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            CLEAN.stop(p)
        CLEAN.stop(p)
        text = tail(p.bench_log, 1 << 16)
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        return {"error": text[-400:]}

    def iperf(self, env, secs):
        r = nsrun(env["c"], ["iperf3", "-c", "127.0.0.1", "-p",
                             str(FWD_IPERF), "-t", str(secs), "-J",
                             "--connect-timeout", "5000"],
                  timeout=secs + 40)
        try:
            j = json.loads(r.stdout)
            if "error" in j:
                return None, j["error"]
            return j["end"]["sum_received"]["bits_per_second"] / 1e6, None
        except (ValueError, KeyError):
            return None, (r.stdout + r.stderr)[-300:]

    def connect_time(self, env, engine, url):
        """A new client's time from its start to the first echo through
        its forward, in s (None: not within 20 s). It has a key of its own:
        a second client with the live client's key would replace the live
        client's session on the KCP engine."""
        t0 = time.monotonic()
        p = self.client(env, engine, url, (f"127.0.0.1:2100=127.0.0.1:"
                                          f"{ECHO_PORT}",), name="newcli",
                        wait=False, key=self.nkey)
        took = None
        try:
            while time.monotonic() - t0 < 20:
                r = nsrun(env["c"], [PYTHON, GEN, "streams", "--connect",
                                     "127.0.0.1:2100", "--n", "1",
                                     "--bytes", "1024", "--timeout", "2"],
                          timeout=30)
                try:
                    d = json.loads(r.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    d = {}
                if d.get("classes", {}).get("ok"):
                    took = time.monotonic() - t0
                    break
                time.sleep(0.05)
        finally:
            CLEAN.stop(p)
            env["procs"].remove(p)
        return round(took, 3) if took is not None else None

    # -- floods -----------------------------------------------------------------

    def flood_one(self, name, engine, carrier, kind):
        P = self.P
        env = self.up()
        try:
            srv = self.server(env, engine, carrier)
            url = self.url(carrier, SERVER_IP)
            fwd = (f"127.0.0.1:{FWD_ECHO}=127.0.0.1:{ECHO_PORT}",
                   f"127.0.0.1:{FWD_IPERF}=127.0.0.1:{IPERF_PORT}")
            payload = None
            if kind == "spoof":
                payload = os.path.join(self.tmp, f"first{env['n']}.bin")
                cap = self.gen_bg(env, "s", [
                    "capture", "--dev", env["link"].dev_b, "--port",
                    UDP_PORT, "--out", payload, "--min-len",
                    1200 if engine == "quic" else 32, "--timeout", 20],
                    "capture")
                time.sleep(0.5)
            self.client(env, engine, url, fwd)
            if payload:
                got = self.gen_result(cap, 25)
                if not got.get("captured"):
                    raise RuntimeError(f"no first flight captured: {got}")
            time.sleep(1.0)
            d = {"engine": engine, "carrier": carrier, "kind": kind}
            d["rss_kib_start"], d["fds_start"] = rss_kib(srv.pid), \
                fds(srv.pid)
            d["goodput_base_mbit"], err = self.iperf(env, P["iperf_s"])
            if err:
                d["errors"] = [f"baseline iperf3: {err}"]
            d["connect_base_s"] = self.connect_time(env, engine, url)
            c0 = self.counters(env)
            flood_s = P["iperf_s"] + 25
            to = f"{SERVER_SIDE_IP}:{UDP_PORT if carrier == 'udp' else TCP_PORT}"
            binds = ",".join(STRANGER_IPS)
            if kind == "udp":
                args = ["udp", "--to", to, "--rate", P["udp_rate"], "--secs",
                        flood_s, "--bind", STRANGER_IPS[0]]
            elif kind == "spoof":
                args = ["spoof", "--to", to, "--payload", payload, "--rate",
                        P["spoof_rate"], "--secs", flood_s, "--subnet",
                        STRANGER_NET, "--exclude", SERVER_SIDE_IP]
            elif kind == "halfopen":
                args = ["halfopen", "--to", to, "--rate", P["halfopen_rate"],
                        "--secs", flood_s, "--hold", P["halfopen_hold"],
                        "--bind", binds]
            else:
                args = ["slowloris", "--to", to, "--conns", P["slowloris"],
                        "--rate", P["slowloris_rate"], "--secs", flood_s,
                        "--bind", binds]
            g = self.gen_bg(env, "a", args, kind)
            samp = Sampler(srv.pid)
            t_flood = time.monotonic()
            time.sleep(3.0)
            d["goodput_flood_mbit"], err = self.iperf(env, P["iperf_s"])
            if err:
                d.setdefault("errors", []).append(f"flood iperf3: {err}")
            d["connect_flood_s"] = self.connect_time(env, engine, url)
            left = flood_s - (time.monotonic() - t_flood)
            d["generator"] = self.gen_result(g, max(left, 0) + 60)
            d.update(samp.stop())
            c1 = self.counters(env)
            d["counters"] = {k: {f: c1[k][f] - c0.get(k, {}).get(f, 0)
                                 for f in ("packets", "bytes")}
                             for k in c1}
            time.sleep(3.0)
            d["rss_kib_after"], d["fds_after"] = rss_kib(srv.pid), \
                fds(srv.pid)
            d["server_alive"] = srv.poll() is None
            b, f = d["goodput_base_mbit"], d["goodput_flood_mbit"]
            d["goodput_share"] = round(f / b, 3) if b and f is not None \
                else None
            log(f"  {name}: share {d['goodput_share']}, connect "
                f"{d['connect_base_s']} -> {d['connect_flood_s']} s, "
                f"to strangers {d['counters'].get('to_strangers')}, gen "
                f"{d['generator']}")
            return d
        finally:
            self.down(env)

    def run_floods(self, R):
        log("floods")
        for name, engine, carrier, kind in FLOODS:
            try:
                R["floods"][name] = self.flood_one(name, engine, carrier,
                                                   kind)
            except (RuntimeError, OSError, AssertionError) as e:
                log(f"  {name}: ERROR {e}")
                R["floods"][name] = {"error": str(e)[:800]}

    # -- load ---------------------------------------------------------------------

    def load_one(self, engine):
        P = self.P
        env = self.up()
        try:
            srv = self.server(env, engine, "udp")
            self.client(env, engine, self.url("udp", SERVER_IP),
                        (f"127.0.0.1:{FWD_ECHO}=127.0.0.1:{ECHO_PORT}",))
            time.sleep(1.0)
            d = {"rss_kib_start": rss_kib(srv.pid), "fds_start": fds(srv.pid)}
            samp = Sampler(srv.pid)
            d["concurrent"] = self.gen(env, "c", [
                "streams", "--connect", f"127.0.0.1:{FWD_ECHO}", "--n",
                P["concurrent"], "--rate", 2000, "--barrier", "--bytes",
                4096, "--timeout", 180], "concurrent", timeout=400)
            d["concurrent"].update(samp.stop())
            log(f"  load {engine} concurrent: {d['concurrent']}")
            time.sleep(5.0)
            d["rss_kib_mid"], d["fds_mid"] = rss_kib(srv.pid), fds(srv.pid)
            samp = Sampler(srv.pid)
            d["rate"] = self.gen(env, "c", [
                "streams", "--connect", f"127.0.0.1:{FWD_ECHO}", "--rate",
                P["new_rate"], "--secs", P["new_secs"], "--bytes", 4096,
                "--timeout", 60], "rate", timeout=P["new_secs"] + 200)
            d["rate"].update(samp.stop())
            log(f"  load {engine} rate: {d['rate']}")
            time.sleep(5.0)
            d["rss_kib_after"], d["fds_after"] = rss_kib(srv.pid), \
                fds(srv.pid)
            d["server_alive"] = srv.poll() is None
            return d
        finally:
            self.down(env)

    def run_load(self, R):
        log("load")
        for engine in ("quic", "kcp"):
            try:
                R["load"][engine] = self.load_one(engine)
            except (RuntimeError, OSError, AssertionError) as e:
                log(f"  load {engine}: ERROR {e}")
                R["load"][engine] = {"error": str(e)[:800]}

    # -- churn --------------------------------------------------------------------

    def churn_one(self, engine):
        P = self.P
        env = self.up()
        try:
            allow = []
            for k in range(P["churn_parallel"]):
                allow += ["--allow-client", getattr(self, f"churn{k}pub")]
            srv = self.server(env, engine, "udp", extra=allow)
            time.sleep(1.0)
            d = {"rss_kib_start": rss_kib(srv.pid), "fds_start": fds(srv.pid),
                 "sessions": 0, "transfer_failed": 0, "client_failed": 0}
            samp = Sampler(srv.pid)
            url = self.url("udp", SERVER_IP)
            t0 = time.monotonic()
            done = 0
            while done < P["churn"]:
                batch = []
                for k in range(min(P["churn_parallel"], P["churn"] - done)):
                    port = 3000 + k
                    try:
                        p = self.client(env, engine, url, (
                            f"127.0.0.1:{port}=127.0.0.1:{ECHO_PORT}",),
                            name="churn", key=getattr(self, f"churn{k}key"))
                        batch.append((p, port))
                    except RuntimeError:
                        d["client_failed"] += 1
                    done += 1
                for p, port in batch:
                    r = nsrun(env["c"], [PYTHON, GEN, "streams", "--connect",
                                         f"127.0.0.1:{port}", "--n", "1",
                                         "--bytes", str(256 << 10),
                                         "--timeout", "20"], timeout=60)
                    try:
                        ok = json.loads(r.stdout.strip().splitlines()[-1])[
                            "classes"].get("ok")
                    except (ValueError, IndexError, KeyError):
                        ok = 0
                    d["sessions"] += 1
                    if not ok:
                        d["transfer_failed"] += 1
                for p, _ in batch:
                    _kill9(p)
                    env["procs"].remove(p)
            d["churn_s"] = round(time.monotonic() - t0, 1)
            d.update(samp.stop())
            d["rss_kib_end_of_churn"] = rss_kib(srv.pid)
            start = d["rss_kib_start"]
            t1 = time.monotonic()
            while time.monotonic() - t1 < P["churn_settle"]:
                if rss_kib(srv.pid) <= start * 1.10:
                    break
                time.sleep(1.0)
            d["rss_kib_after"] = rss_kib(srv.pid)
            d["fds_after"] = fds(srv.pid)
            d["settle_s"] = round(time.monotonic() - t1, 1)
            d["rss_ratio"] = round(d["rss_kib_after"] / start, 3)
            d["server_alive"] = srv.poll() is None
            log(f"  churn {engine}: {d}")
            return d
        finally:
            self.down(env)

    def run_churn(self, R):
        log("churn")
        for engine in ("quic", "kcp"):
            try:
                R["churn"][engine] = self.churn_one(engine)
            except (RuntimeError, OSError, AssertionError) as e:
                log(f"  churn {engine}: ERROR {e}")
                R["churn"][engine] = {"error": str(e)[:800]}

    # -- faults -------------------------------------------------------------------

    def faults_cut(self, engine):
        P = self.P
        env = self.up()
        try:
            self.server(env, engine, "tcp")
            ready = os.path.join(self.tmp, f"cut{env['n']}.ready")
            px = CLEAN.start(f"cutproxy{env['n']}", [
                self.cutproxy, "--listen", "127.0.0.1:0", "--target",
                f"{SERVER_IP}:{TCP_PORT}", "--ready-file", ready,
                "--cut-after", "1s", "--mode", "rst"], self.tmp,
                netns=env["c"])
            env["procs"].append(px)
            hp = wait_file(ready).strip()
            self.client(env, engine, f"tcp://{hp}", (
                f"127.0.0.1:{FWD_ECHO}=127.0.0.1:{ECHO_PORT}",))
            d = self.gen(env, "c", [
                "streams", "--connect", f"127.0.0.1:{FWD_ECHO}", "--secs",
                P["fault_secs"], "--parallel", 8, "--bytes", 1 << 20,
                "--timeout", 60], "cut", timeout=P["fault_secs"] + 200)
            d["cuts"] = tail(px.bench_log, 1 << 22).count("close (cut)")
            log(f"  cut {engine}: {d}")
            return d
        finally:
            self.down(env)

    def faults_restart(self, engine):
        P = self.P
        env = self.up()
        try:
            srv = self.server(env, engine, "udp")
            self.client(env, engine, self.url("udp", SERVER_IP), (
                f"127.0.0.1:{FWD_ECHO}=127.0.0.1:{ECHO_PORT}",))
            g = self.gen_bg(env, "c", [
                "streams", "--connect", f"127.0.0.1:{FWD_ECHO}", "--secs",
                P["fault_secs"], "--parallel", 8, "--bytes", 1 << 20,
                "--timeout", 60], "restart")
            every = P["fault_secs"] / (P["restarts"] + 1)
            restarts = []
            for _ in range(P["restarts"]):
                time.sleep(every)
                _kill9(srv)
                env["procs"].remove(srv)
                t = time.monotonic()
                srv = self.server(env, engine, "udp")
                restarts.append(round(time.monotonic() - t, 2))
            d = self.gen_result(g, P["fault_secs"] + 200)
            d["restarts"] = len(restarts)
            d["restart_s_max"] = max(restarts) if restarts else None
            log(f"  restart {engine}: {d}")
            return d
        finally:
            self.down(env)

    def run_faults(self, R):
        log("faults")
        for engine in ("quic", "kcp"):
            for kind, fn in (("cut", self.faults_cut),
                             ("restart", self.faults_restart)):
                key = f"{kind}/{engine}"
                try:
                    R["faults"][key] = fn(engine)
                except (RuntimeError, OSError, AssertionError) as e:
                    log(f"  {key}: ERROR {e}")
                    R["faults"][key] = {"error": str(e)[:800]}

    # -- main ---------------------------------------------------------------------

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
        dirty = out(["git", "-C", ROOT, "status", "--porcelain",
                     "--untracked-files=no"])
        return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                "hostname": socket.gethostname(),
                "kernel": platform.release(), "cpu": cpu,
                "cpus": os.cpu_count(), "load_at_start": load_now(),
                "uptime_at_start": out(["uptime"]),
                "warren": out([self.warren, "--version"]) or "?",
                "commit": (out(["git", "-C", ROOT, "rev-parse", "--short",
                                "HEAD"]) or "?") +
                (" (dirty)" if dirty else ""),
                "quick": self.args.quick, "params": self.P,
                "link": LINK_SPEC, "nofile": self.nofile}

    def run(self):
        self.check()
        reap_stale()
        self.keys()
        groups = self.args.only.split(",") if self.args.only else \
            list(GROUPS)
        unknown = set(groups) - set(GROUPS)
        if unknown:
            sys.exit(f"stress: unknown group {', '.join(sorted(unknown))}")
        R = {"meta": self.meta(), "groups": groups, "floods": {}, "load": {},
             "churn": {}, "faults": {}, "notes": self.notes, "phase_s": {}}
        t0 = time.monotonic()
        for g in groups:
            t = time.monotonic()
            getattr(self, f"run_{g}")(R)
            R["phase_s"][g] = round(time.monotonic() - t)
        R["meta"]["duration_s"] = round(time.monotonic() - t0)
        R["meta"]["load_at_end"] = load_now()
        write_report(R, self.args.out)


def _kill9(p):
    """kill -9 of a process started through CLEAN, and its bookkeeping."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    if p in CLEAN.procs:
        CLEAN.procs.remove(p)


# ---- report -----------------------------------------------------------------

def verdict(ok):
    return "met" if ok else "**MISSED**"


def fmt(v, unit=""):
    return "—" if v is None else f"{v}{unit}"


def write_report(R, outdir):
    os.makedirs(outdir, exist_ok=True)
    m = R["meta"]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    base = os.path.join(outdir, f"stress-{stamp}-{m['hostname']}" +
                        ("-quick" if m["quick"] else ""))
    with open(base + ".json", "w") as f:
        json.dump(R, f, indent=1, sort_keys=True)
    L = [f"# warren stress results {m['date']}" +
         (" (--quick)" if m["quick"] else ""), "",
         f"- host {m['hostname']}, {m['cpus']} × {m['cpu']}, kernel "
         f"{m['kernel']}",
         f"- {m['warren']}, commit {m['commit']}",
         f"- load average at start {m['load_at_start']}, at end "
         f"{m.get('load_at_end')} (`uptime`: {m['uptime_at_start']})",
         f"- client link: warren-linkemu `{m['link']}`; strangers on a "
         "veth pair of their own", f"- duration {m.get('duration_s')} s "
         f"({', '.join(f'{k} {v} s' for k, v in R['phase_s'].items())})",
         ""]
    if R["floods"]:
        L += ["## Floods", "",
              "Goals: goodput share ≥ 90%, new client connect ≤ 2 s, RSS "
              "and fds bounded, 0 bytes to strangers (KCP engine, stream "
              "carriers), bounded by the Retry exchange (QUIC).", "",
              "| flood | rate reached (asked) | goodput base → flood "
              "Mbit/s | share | connect base → flood s | server RSS KiB "
              "start / max / after | fds start / max / after | from "
              "strangers pkts | to strangers pkts / bytes (UDP, TCP data)"
              " |", "|" + "---|" * 9]
        for name, d in R["floods"].items():
            if "error" in d:
                L.append(f"| {name} | ERROR: {d['error'][:200]} |" +
                         " |" * 7)
                continue
            g = d.get("generator", {})
            c = d.get("counters", {})
            ts = c.get("to_strangers", {})
            L.append(
                f"| {name} | {fmt(g.get('rate'))}/s ({g.get('target_rate')}"
                f"/s) | {fmt(rnd(d['goodput_base_mbit']))} → "
                f"{fmt(rnd(d['goodput_flood_mbit']))} | "
                f"{pct(d['goodput_share'])} "
                f"{verdict((d['goodput_share'] or 0) >= 0.9)} | "
                f"{fmt(d['connect_base_s'])} → {fmt(d['connect_flood_s'])} "
                f"{verdict(d['connect_flood_s'] is not None and d['connect_flood_s'] <= 2)} | "
                f"{d['rss_kib_start']} / {d.get('rss_kib_max')} / "
                f"{d['rss_kib_after']} | {d['fds_start']} / "
                f"{d.get('fds_max')} / {d['fds_after']} | "
                f"{c.get('from_strangers', {}).get('packets')} | "
                f"{ts.get('packets')} / {ts.get('bytes')} "
                f"({c.get('to_strangers_udp', {}).get('bytes')}, "
                f"{c.get('to_strangers_tcp_data', {}).get('bytes')}) |")
        L.append("")
        for name, d in R["floods"].items():
            if "generator" in d:
                L.append(f"- {name}: generator {json.dumps(d['generator'])}"
                         + (f"; errors {d['errors']}" if d.get("errors")
                            else ""))
        L.append("")
    if R["load"]:
        L += ["## Load", "", "| engine | phase | streams | classes | peak "
              "open | rate/s | p50 / p99 s | server RSS KiB max | fds max "
              "|", "|" + "---|" * 9]
        for eng, d in R["load"].items():
            if "error" in d:
                L.append(f"| {eng} | ERROR: {d['error'][:200]} |" + " |" * 7)
                continue
            for ph in ("concurrent", "rate"):
                x = d.get(ph, {})
                L.append(f"| {eng} | {ph} | {x.get('started')} | "
                         f"{json.dumps(x.get('classes'))} | "
                         f"{x.get('peak_open')} | {x.get('rate')} | "
                         f"{x.get('p50_s')} / {x.get('p99_s')} | "
                         f"{x.get('rss_kib_max')} | {x.get('fds_max')} |")
            L.append(f"| {eng} | server RSS KiB start / after concurrent / "
                     f"after rate | {d['rss_kib_start']} / "
                     f"{d['rss_kib_mid']} / {d['rss_kib_after']} | fds "
                     f"{d['fds_start']} / {d['fds_mid']} / {d['fds_after']}"
                     " |" + " |" * 5)
        L.append("")
    if R["churn"]:
        L += ["## Churn", "", "Goal: server RSS returns to within 10% of "
              "its start.", "", "| engine | sessions (failed transfers) | "
              "time s | RSS KiB start / max / end of churn / after settle |"
              " ratio | settle s | fds start / after |", "|" + "---|" * 7]
        for eng, d in R["churn"].items():
            if "error" in d:
                L.append(f"| {eng} | ERROR: {d['error'][:200]} |" + " |" * 5)
                continue
            L.append(f"| {eng} | {d['sessions']} ({d['transfer_failed']}, "
                     f"{d['client_failed']} clients failed) | "
                     f"{d['churn_s']} | {d['rss_kib_start']} / "
                     f"{d['rss_kib_max']} / {d['rss_kib_end_of_churn']} / "
                     f"{d['rss_kib_after']} | {d['rss_ratio']} "
                     f"{verdict(d['rss_ratio'] <= 1.10)} | {d['settle_s']} "
                     f"| {d['fds_start']} / {d['fds_after']} |")
        L.append("")
    if R["faults"]:
        L += ["## Faults", "", "Goal: no stream ends `truncated` (a clean "
              "EOF before all data) or `corrupt`; every other failure has a "
              "reason.", "", "| case | streams | classes | reasons | cuts / "
              "restarts |", "|" + "---|" * 5]
        for key, d in R["faults"].items():
            if "error" in d:
                L.append(f"| {key} | ERROR: {d['error'][:200]} | | | |")
                continue
            cl = d.get("classes", {})
            bad = cl.get("truncated", 0) + cl.get("corrupt", 0)
            L.append(f"| {key} | {d.get('started')} | {json.dumps(cl)} "
                     f"{verdict(bad == 0)} | {json.dumps(d.get('reasons'))}"
                     f" | {d.get('cuts', d.get('restarts'))} |")
        L.append("")
    for n in R["notes"]:
        L.append(f"- {n}")
    text = "\n".join(L) + "\n"
    with open(base + ".md", "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "stress-latest.md"), "w") as f:
        f.write(text)
    log(f"wrote {base}.md and .json")


def rnd(v):
    return None if v is None else round(v, 1)


def pct(v):
    return "—" if v is None else f"{100 * v:.0f}%"


def main():
    ap = argparse.ArgumentParser(
        description="warren reliability suite: floods, load, churn, faults "
        "(run as root after ./run.sh build)")
    ap.add_argument("--quick", action="store_true",
                    help="small scale: shorter runs, fewer streams and "
                    "sessions")
    ap.add_argument("--only", default=None,
                    help="comma list of groups: " + ",".join(GROUPS))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()

    return run_guarded(Stress(args), args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
