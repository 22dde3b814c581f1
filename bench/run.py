#!/usr/bin/python3
"""warren benchmark: warren (QUIC) against direct kernel TCP on emulated links.

Run as root, after `./run.sh build`:

    /usr/bin/python3 bench/run.py [--quick] [--out bench/results] [--build build/release]

It builds nothing. For each link in LINKS it creates two network namespaces
(wnb-<pid>-c<i> for the client, wnb-<pid>-s<i> for the server), joins them with
a veth pair (`unimpaired`) or with warren-linkemu, and measures every subject
with every workload. Results: <out>/<date>-<host>[-quick].{md,json,png} and a
copy of the Markdown as <out>/latest.md. See bench/README.md.

Namespaces and processes are always removed at the end (also on Ctrl-C and
SIGTERM); leftovers of a killed run (wnb-<pid>-* whose pid is gone) are deleted
by the next run.
"""

import argparse
import atexit
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable
PREFIX = f"wnb-{os.getpid()}"

IPERF_PORT = 5201
ECHO_PORT = 7000
WARREN_PORT = 4433
LAT_CONNS = 200

# name, linkemu SPEC (None = veth pair, no emulator), nominal average loss %
# (for the plot), one-way delay in ms.
LINKS = [
    ("unimpaired", None, 0.0, 0),
    ("100mbit-25ms-0%", "delay=25ms,rate=100mbit", 0.0, 25),
    ("100mbit-25ms-1%", "delay=25ms,rate=100mbit,loss=1%", 1.0, 25),
    ("100mbit-25ms-5%", "delay=25ms,rate=100mbit,loss=5%", 5.0, 25),
    # Gilbert-Elliott: 0.5% good->bad, 25% bad->good: bursts of 4 packets
    # on average, 0.5/(0.5+25) = 1.96% average loss.
    ("100mbit-25ms-burst", "delay=25ms,rate=100mbit,burst=0.5%:25%",
     100 * 0.5 / 25.5, 25),
    ("20mbit-150ms-1%", "delay=150ms,rate=20mbit,loss=1%", 1.0, 150),
]
QUICK_LINKS = ("100mbit-25ms-0%", "100mbit-25ms-1%")
SUBJECTS = ("warren-quic", "tcp-cubic", "tcp-bbr")
STREAMS = (1, 4)


def log(msg):
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ---- processes and namespaces, always cleaned up --------------------------

class Cleanup:
    def __init__(self):
        self.procs = []
        self.namespaces = []
        self.done = False

    def start(self, name, argv, logdir, netns=None):
        if netns:
            argv = ["ip", "netns", "exec", netns] + list(argv)
        logf = open(os.path.join(logdir, f"{name}.log"), "ab")
        # `ip netns exec` execs the command: the pid is the program's own.
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        p.bench_name = name
        p.bench_log = os.path.join(logdir, f"{name}.log")
        self.procs.append(p)
        return p

    def stop(self, p, timeout=5.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def add_netns(self, name):
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.namespaces.append(name)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"],
                       check=True)
        return name

    def del_netns(self, name):
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
        if name in self.namespaces:
            self.namespaces.remove(name)

    def all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)
        for ns in list(self.namespaces):
            self.del_netns(ns)
        # Anything of ours the lists missed.
        for ns in netns_list():
            if ns.startswith(PREFIX + "-"):
                self.del_netns(ns)


CLEAN = Cleanup()


def netns_list():
    res = subprocess.run(["ip", "netns", "list"], capture_output=True,
                         text=True)
    return [line.split()[0] for line in res.stdout.splitlines() if line]


def reap_stale():
    for ns in netns_list():
        m = re.match(r"wnb-(\d+)-", ns)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            log(f"deleting leftover namespace {ns}")
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)


def nsrun(ns, argv, timeout=60, **kw):
    return subprocess.run(["ip", "netns", "exec", ns] + list(argv),
                          capture_output=True, text=True, timeout=timeout,
                          **kw)


# ---- helpers run inside namespaces (python3 run.py _echo|_latency|_probe) --

def _cmd_echo(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(512)
    print("listening", flush=True)

    def serve(c):
        try:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def _one_ttfb(host, port, timeout):
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise OSError("no echo")
        return (time.monotonic() - t0) * 1000.0
    finally:
        s.close()


def _cmd_latency(host, port, count):
    ms, failed = [], 0
    for _ in range(count):
        try:
            ms.append(_one_ttfb(host, port, 10.0))
        except OSError:
            failed += 1
    print(json.dumps({"ms": ms, "failed": failed}))


def _cmd_probe(host, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _one_ttfb(host, port, 2.0)
            print("ok")
            return 0
        except OSError:
            time.sleep(0.2)
    return 1


# ---- measurements -----------------------------------------------------------

def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def iperf(ns, host, streams, cc, quick):
    """One iperf3 run; returns (Mbit/s received, bytes sent incl. omitted)
    or raises RuntimeError."""
    argv = ["iperf3", "-c", host, "-p", str(IPERF_PORT), "-t", "10", "-O",
            "2", "-J", "--connect-timeout", "5000"]
    if streams > 1:
        argv += ["-P", str(streams)]
    if cc:
        argv += ["-C", cc]
    try:
        res = nsrun(ns, argv, timeout=45)
    except subprocess.TimeoutExpired:
        raise RuntimeError("iperf3 timed out")
    try:
        j = json.loads(res.stdout)
    except ValueError:
        raise RuntimeError(f"iperf3 exit {res.returncode}: "
                           f"{(res.stdout + res.stderr).strip()[:200]}")
    # iperf3 3.12 -J exits 0 even on errors.
    if "error" in j:
        raise RuntimeError(f"iperf3: {j['error']}")
    mbit = j["end"]["sum_received"]["bits_per_second"] / 1e6
    sent = sum(iv["sum"]["bytes"] for iv in j.get("intervals", []))
    return mbit, max(sent, j["end"]["sum_sent"]["bytes"])


def summarize(values):
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values)}


def percentile(values, p):
    # Nearest rank.
    v = sorted(values)
    k = min(len(v) - 1, max(0, math.ceil(p / 100.0 * len(v)) - 1))
    return v[k]


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(os.path.join(ROOT, args.build)) \
            if not os.path.isabs(args.build) else args.build
        self.warren = os.path.join(self.build, "warren")
        self.emu = os.path.join(self.build, "tools", "linkemu",
                                "warren-linkemu")
        self.tmp = tempfile.mkdtemp(prefix="warren-bench-")
        self.notes = []
        self.bbr = True

    # -- setup --

    def check(self):
        missing = [p for p in (self.warren, self.emu)
                   if not os.access(p, os.X_OK)]
        if missing:
            sys.exit("bench: missing " + ", ".join(missing) +
                     "\nbuild first: ./run.sh build  (or --build DIR)")
        for tool in ("iperf3", "ip"):
            if not shutil.which(tool):
                sys.exit(f"bench: {tool} not found (apt-get install "
                         f"{'iperf3' if tool == 'iperf3' else 'iproute2'})")
        if os.geteuid() != 0:
            sys.exit("bench: needs root (network namespaces, TUN devices)")

    def check_bbr(self):
        path = "/proc/sys/net/ipv4/tcp_available_congestion_control"

        def avail():
            with open(path) as f:
                return "bbr" in f.read().split()
        if not avail():
            mp = shutil.which("modprobe") or "/sbin/modprobe"
            if os.path.exists(mp):
                subprocess.run([mp, "tcp_bbr"], capture_output=True)
        if not avail():
            self.bbr = False
            self.notes.append("tcp-bbr skipped: the tcp_bbr module is not "
                              "available on this kernel.")

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

    def meta(self):
        def out(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True,
                                      timeout=10).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                return "?"
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        commit = out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
        dirty = out(["git", "-C", ROOT, "status", "--porcelain",
                     "--untracked-files=no"])
        return {
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "hostname": socket.gethostname(),
            "kernel": platform.release(),
            "cpu": cpu,
            "cpus": os.cpu_count(),
            "warren": out([self.warren, "--version"]),
            "commit": commit + (" (dirty)" if dirty else ""),
            "build": os.path.relpath(self.build, ROOT),
            "iperf3": out(["iperf3", "--version"]).splitlines()[0]
            if out(["iperf3", "--version"]) else "?",
            "quick": self.args.quick,
            "runs": self.runs,
        }

    # -- one link --

    def link_up(self, i, name, spec):
        c = CLEAN.add_netns(f"{PREFIX}-c{i}")
        s = CLEAN.add_netns(f"{PREFIX}-s{i}")
        ca, sa = f"10.202.{i + 1}.1", f"10.202.{i + 1}.2"
        emu = None
        if spec is None:
            subprocess.run(["ip", "-n", c, "link", "add", "wnbc", "type",
                            "veth", "peer", "name", "wnbs", "netns", s],
                           check=True)
            for ns, dev, addr in ((c, "wnbc", ca), (s, "wnbs", sa)):
                subprocess.run(["ip", "-n", ns, "addr", "add", f"{addr}/24",
                                "dev", dev], check=True)
                subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"],
                               check=True)
        else:
            ready = os.path.join(self.tmp, f"emu{i}.ready")
            self.emu_stats = os.path.join(self.tmp, f"emu{i}.stats.json")
            emu = CLEAN.start(f"linkemu{i}", [
                self.emu, "--a", f"{c}:wnbc:{ca}/24",
                "--b", f"{s}:wnbs:{sa}/24", "--both", spec, "--seed", "1",
                "--ready-file", ready, "--stats-file", self.emu_stats],
                self.tmp)
            deadline = time.monotonic() + 10
            while not os.path.exists(ready):
                if emu.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"linkemu did not come up:\n"
                                       f"{open(emu.bench_log).read()}")
                time.sleep(0.02)
        return c, s, ca, sa, emu

    def start_iperf_server(self, s, i):
        p = CLEAN.start(f"iperf3-s{i}", ["iperf3", "-s", "-p",
                                         str(IPERF_PORT)], self.tmp, netns=s)
        time.sleep(0.3)
        return p

    def start_warren(self, c, s, sa, i):
        srv = CLEAN.start(f"warren-server{i}", [
            self.warren, "server", "--listen", f"udp://{sa}:{WARREN_PORT}",
            "--key", self.skey, "--allow-client", self.cpub,
            "--allow", f"127.0.0.1:{IPERF_PORT}",
            "--allow", f"127.0.0.1:{ECHO_PORT}", "--log-level", "warn"],
            self.tmp, netns=s)
        time.sleep(0.3)
        cli = CLEAN.start(f"warren-client{i}", [
            self.warren, "client", "--server", f"udp://{sa}:{WARREN_PORT}",
            "--server-key", self.spub, "--key", self.ckey,
            "-L", f"127.0.0.1:{IPERF_PORT}=127.0.0.1:{IPERF_PORT}",
            "-L", f"127.0.0.1:{ECHO_PORT}=127.0.0.1:{ECHO_PORT}",
            "--log-level", "warn"], self.tmp, netns=c)
        res = nsrun(c, [PYTHON, HERE, "_probe", "127.0.0.1", str(ECHO_PORT),
                        "20"], timeout=40)
        if res.returncode != 0:
            raise RuntimeError(
                "tunnel did not come up\nserver:\n" +
                open(srv.bench_log).read()[-2000:] + "\nclient:\n" +
                open(cli.bench_log).read()[-2000:])
        return srv, cli

    def bulk_once(self, name, subj, n, run, attempt, c, s, i, host, cc,
                  srv, cli, cost, cell):
        """One iperf3 measurement; on failure records the error (with the
        tail of the logs involved), restarts the iperf3 server and returns
        False so the caller retries once."""
        time.sleep(1.0)  # let the previous test drain
        try:
            if subj == "warren-quic":
                for p in (srv, cli):
                    if p.poll() is not None:
                        raise RuntimeError(f"{p.bench_name} exited "
                                           f"{p.returncode}")
                cpu0 = proc_cpu_s(srv.pid) + proc_cpu_s(cli.pid)
            mbit, nbytes = iperf(c, host, n, cc, self.args.quick)
            if subj == "warren-quic":
                cost[n]["cpu_s"] += proc_cpu_s(srv.pid) + \
                    proc_cpu_s(cli.pid) - cpu0
                cost[n]["bytes"] += nbytes
            cell["runs"].append(round(mbit, 2))
            log(f"  {name} {subj} P{n} run {run + 1}: {mbit:.1f} Mbit/s")
            return True
        except (RuntimeError, OSError) as e:
            msg = f"run {run + 1} attempt {attempt}: {e}"
            cell["errors"].append(msg)
            tails = {}
            for p in (srv, cli, self.iperf_srv):
                try:
                    with open(p.bench_log, errors="replace") as f:
                        tails[p.bench_name] = f.read()[-1500:]
                except OSError:
                    pass
            cell.setdefault("error_logs", []).append(tails)
            log(f"  {name} {subj} P{n} {msg} (ERROR)")
            # A failed client can leave the server stuck.
            CLEAN.stop(self.iperf_srv)
            self.iperf_srv = self.start_iperf_server(s, i)
            return False

    def run_link(self, i, name, spec, R):
        log(f"link {name} ({spec or 'veth pair, no emulator'})")
        c, s, ca, sa, emu = self.link_up(i, name, spec)
        procs = []
        try:
            self.iperf_srv = self.start_iperf_server(s, i)
            echo = CLEAN.start(f"echo{i}", [PYTHON, HERE, "_echo",
                                            str(ECHO_PORT)], self.tmp,
                               netns=s)
            procs += [echo]
            srv, cli = self.start_warren(c, s, sa, i)
            procs += [srv, cli]
            cost = {n: {"cpu_s": 0.0, "bytes": 0} for n in STREAMS}
            subjects = [x for x in SUBJECTS if x != "tcp-bbr" or self.bbr]
            for run in range(self.runs):
                for subj in subjects:
                    for n in STREAMS:
                        host = "127.0.0.1" if subj == "warren-quic" else sa
                        cc = {"tcp-cubic": "cubic",
                              "tcp-bbr": "bbr"}.get(subj)
                        cell = R["bulk"][str(n)][name][subj]
                        for attempt in (1, 2):
                            ok = self.bulk_once(
                                name, subj, n, run, attempt, c, s, i, host,
                                cc, srv, cli, cost, cell)
                            if ok:
                                break
            for n in STREAMS:
                for subj in subjects:
                    cell = R["bulk"][str(n)][name][subj]
                    cell.update(summarize(cell["runs"]))
            # Connect + first byte.
            for subj, host in (("warren-quic", "127.0.0.1"),
                               ("tcp-cubic", sa)):
                res = nsrun(c, [PYTHON, HERE, "_latency", host,
                                str(ECHO_PORT), str(LAT_CONNS)],
                            timeout=LAT_CONNS * 12 + 30)
                try:
                    d = json.loads(res.stdout)
                except ValueError:
                    d = {"ms": [], "failed": LAT_CONNS,
                         "error": res.stderr[-300:]}
                ms = d["ms"]
                R["latency"][name][subj] = {
                    "n": len(ms), "failed": d["failed"],
                    "median_ms": round(statistics.median(ms), 2)
                    if ms else None,
                    "p99_ms": round(percentile(ms, 99), 2) if ms else None,
                }
                log(f"  {name} {subj} connect+first byte: "
                    f"{R['latency'][name][subj]}")
            w = R["warren"][name]
            for n in STREAMS:
                mb = cost[n]["bytes"] / 1e6
                w[f"cpu_s_per_mb_p{n}"] = round(cost[n]["cpu_s"] / mb, 5) \
                    if mb > 0 else None
            w["rss_peak_kib_client"] = proc_hwm_kib(cli.pid)
            w["rss_peak_kib_server"] = proc_hwm_kib(srv.pid)
            for p in (cli, srv):
                if p.poll() is not None:
                    w.setdefault("notes", []).append(
                        f"{p.bench_name} exited {p.returncode} during the "
                        f"link")
            CLEAN.stop(self.iperf_srv)
        finally:
            for p in reversed(procs):
                CLEAN.stop(p)
            if emu is not None:
                CLEAN.stop(emu)
                try:
                    with open(self.emu_stats) as f:
                        st = json.load(f)
                    a2b = st.get("a2b", {})
                    pin = a2b.get("packets_in", 0)
                    lost = a2b.get("dropped_loss", 0) + \
                        a2b.get("dropped_burst", 0)
                    R["link_stats"][name] = {
                        "a2b_packets_in": pin,
                        "a2b_loss_pct": round(100.0 * lost / pin, 3)
                        if pin else None,
                        "a2b_dropped_queue": a2b.get("dropped_queue"),
                    }
                except (OSError, ValueError):
                    pass
            CLEAN.del_netns(c)
            CLEAN.del_netns(s)

    # -- main --

    def run(self):
        self.check()
        self.runs = 1 if self.args.quick else 3
        reap_stale()
        self.check_bbr()
        self.keys()
        links = [l for l in LINKS if not self.args.quick or
                 l[0] in QUICK_LINKS]
        if self.args.links:
            want = self.args.links.split(",")
            links = [l for l in LINKS if l[0] in want]
        t0 = time.monotonic()
        R = {"meta": self.meta(),
             "links": [{"name": n, "spec": s, "nominal_loss_pct":
                        round(lp, 2), "one_way_delay_ms": d}
                       for n, s, lp, d in links],
             "subjects": [x for x in SUBJECTS if x != "tcp-bbr" or self.bbr],
             "bulk": {str(n): {l[0]: {s: {"runs": [], "errors": []}
                                      for s in SUBJECTS}
                               for l in links} for n in STREAMS},
             "latency": {l[0]: {} for l in links},
             "warren": {l[0]: {} for l in links},
             "link_stats": {},
             "notes": self.notes}
        for i, (name, spec, _, _) in enumerate(links):
            self.run_link(i, name, spec, R)
        R["meta"]["duration_s"] = round(time.monotonic() - t0)
        self.write(R)

    def write(self, R):
        out = self.args.out if os.path.isabs(self.args.out) else \
            os.path.join(os.getcwd(), self.args.out)
        os.makedirs(out, exist_ok=True)
        m = R["meta"]
        base = f"{m['date'][:10]}-{m['hostname']}" + \
            ("-quick" if m["quick"] else "")
        png = self.plot(R, os.path.join(out, base + ".png"))
        R["plot"] = os.path.basename(png) if png else None
        with open(os.path.join(out, base + ".json"), "w") as f:
            json.dump(R, f, indent=1)
            f.write("\n")
        md = render_md(R, base)
        for fn in (base + ".md", "latest.md"):
            with open(os.path.join(out, fn), "w") as f:
                f.write(md)
        log(f"wrote {os.path.join(out, base)}.md/.json"
            f"{'/.png' if png else ''} and latest.md")
        print(md)

    def plot(self, R, path):
        try:
            import matplotlib
        except ImportError:
            if os.path.exists("/usr/bin/apt-get") and \
                    not os.path.exists(os.path.join(self.tmp, "apt-tried")):
                open(os.path.join(self.tmp, "apt-tried"), "w").close()
                log("matplotlib missing: trying apt-get install -y "
                    "python3-matplotlib once")
                subprocess.run(["apt-get", "install", "-y",
                                "python3-matplotlib"], capture_output=True,
                               timeout=600,
                               env=dict(os.environ,
                                        DEBIAN_FRONTEND="noninteractive"))
            try:
                import matplotlib
            except ImportError:
                R["notes"].append("No plot: python3-matplotlib is not "
                                  "installed.")
                return None
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5))
        bulk = R["bulk"]["1"]
        random_links = [l for l in R["links"] if l["spec"] and
                        l["name"].startswith("100mbit-25ms-") and
                        "burst" not in l["name"]]
        burst = [l for l in R["links"] if "burst" in l["name"]]
        for k, subj in enumerate(R["subjects"]):
            color = f"C{k}"
            xs, ys, lo, hi = [], [], [], []
            for l in random_links:
                c = bulk[l["name"]][subj]
                if c.get("median") is None:
                    continue
                xs.append(l["nominal_loss_pct"])
                ys.append(c["median"])
                lo.append(c["median"] - c["min"])
                hi.append(c["max"] - c["median"])
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", color=color,
                            capsize=3, label=f"{subj} (random loss)")
            for l in burst:
                c = bulk[l["name"]][subj]
                if c.get("median") is not None:
                    ax.plot([l["nominal_loss_pct"]], [c["median"]],
                            marker="s", markerfacecolor="none", color=color,
                            linestyle="none", markersize=9,
                            label=f"{subj} (bursty loss)")
        ax.set_yscale("log")
        ax.set_xlabel("packet loss each way (%)")
        ax.set_ylabel("goodput, 1 stream (Mbit/s, log)")
        ax.set_title("100 Mbit/s, 25 ms one way: goodput vs loss "
                     f"(median of {R['meta']['runs']}, min-max bars)",
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


# ---- Markdown ----------------------------------------------------------------

def fmt_bulk(c):
    if c is None or c.get("median") is None:
        if c and c.get("errors"):
            return "error"
        return "—"
    s = f"{c['median']:.1f}"
    if len(c["runs"]) > 1:
        s += f" ({c['min']:.1f}–{c['max']:.1f})"
    if c.get("errors"):
        s += f" [{len(c['errors'])} failed]"
    return s


def render_md(R, base):
    m = R["meta"]
    L = []
    L.append(f"# warren benchmark: {m['date']} on {m['hostname']}")
    L.append("")
    L.append(f"- kernel {m['kernel']}, CPU {m['cpu']} ×{m['cpus']}")
    L.append(f"- {m['warren']}, commit {m['commit']}, build `{m['build']}`")
    L.append(f"- {m['iperf3']}")
    L.append(f"- {'`--quick`: ' if m['quick'] else ''}"
             f"{m['runs']} run(s) per bulk measurement; median"
             f"{' (min–max)' if m['runs'] > 1 else ''}; whole run "
             f"{m.get('duration_s', '?')} s")
    L.append("- produced by `bench/run.py` (see `bench/README.md`)")
    L.append("")
    L.append("Links (client → server direction measured):")
    L.append("")
    L.append("| link | emulator SPEC (both ways) | measured loss client→server |")
    L.append("|---|---|---|")
    for l in R["links"]:
        st = R["link_stats"].get(l["name"], {})
        lp = st.get("a2b_loss_pct")
        L.append(f"| {l['name']} | `{l['spec'] or 'veth pair, no emulator'}`"
                 f" | {'' if lp is None else f'{lp:.2f}%'} |")
    L.append("")
    for n in STREAMS:
        L.append(f"## Bulk goodput, {n} stream{'s' if n > 1 else ''} "
                 f"(Mbit/s, iperf3 `-t 10 -O 2{' -P 4' if n > 1 else ''}`)")
        L.append("")
        L.append("| link | " + " | ".join(R["subjects"]) + " |")
        L.append("|---|" + "---:|" * len(R["subjects"]))
        for l in R["links"]:
            cells = [fmt_bulk(R["bulk"][str(n)][l["name"]].get(s))
                     for s in R["subjects"]]
            L.append(f"| {l['name']} | " + " | ".join(cells) + " |")
        L.append("")
    L.append(f"## Connect + first byte ({LAT_CONNS} sequential connections: "
             "connect, send 1 byte, read the echo; ms, median / p99)")
    L.append("")
    L.append("| link | warren-quic | tcp (direct) |")
    L.append("|---|---:|---:|")
    for l in R["links"]:
        cells = []
        for s in ("warren-quic", "tcp-cubic"):
            d = R["latency"][l["name"]].get(s)
            if not d or d["median_ms"] is None:
                cells.append("error")
                continue
            c = f"{d['median_ms']:.1f} / {d['p99_ms']:.1f}"
            if d["failed"]:
                c += f" [{d['failed']} failed]"
            cells.append(c)
        L.append(f"| {l['name']} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("The direct TCP column uses the default congestion control "
             "(cubic); a 1-byte exchange on a new connection never leaves "
             "the initial window, so bbr would not differ.")
    L.append("")
    L.append("## warren cost (client + server processes)")
    L.append("")
    L.append("| link | CPU ms per MB, 1 stream | CPU ms per MB, 4 streams |"
             " peak RSS client (MiB) | peak RSS server (MiB) |")
    L.append("|---|---:|---:|---:|---:|")
    for l in R["links"]:
        w = R["warren"][l["name"]]

        def ms(v):
            return "—" if v is None else f"{v * 1000:.2f}"

        def mib(v):
            return "—" if v is None else f"{v / 1024:.1f}"
        L.append(f"| {l['name']} | {ms(w.get('cpu_s_per_mb_p1'))} | "
                 f"{ms(w.get('cpu_s_per_mb_p4'))} | "
                 f"{mib(w.get('rss_peak_kib_client'))} | "
                 f"{mib(w.get('rss_peak_kib_server'))} |")
    L.append("")
    L.append("CPU: utime+stime of both warren processes over each warren "
             "bulk run, divided by the MB iperf3 sent (omitted seconds "
             "included). Peak RSS: VmHWM at the end of the link's runs "
             "(the processes live for one link).")
    L.append("")
    if R.get("plot"):
        L.append(f"![1-stream goodput vs loss]({R['plot']})")
        L.append("")
    notes = list(R["notes"])
    for n in STREAMS:
        for ln, row in R["bulk"][str(n)].items():
            for s, c in row.items():
                for e in c.get("errors", []):
                    notes.append(f"{ln} {s} P{n}: {e}")
    for ln, w in R["warren"].items():
        for e in w.get("notes", []):
            notes.append(f"{ln}: {e}")
    if notes:
        L.append("## Notes")
        L.append("")
        L += [f"- {x}" for x in notes]
        L.append("")
    return "\n".join(L)


def main():
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        cmd, rest = sys.argv[1], sys.argv[2:]
        if cmd == "_echo":
            return _cmd_echo(int(rest[0]))
        if cmd == "_latency":
            return _cmd_latency(rest[0], int(rest[1]), int(rest[2]))
        if cmd == "_probe":
            return _cmd_probe(rest[0], int(rest[1]), float(rest[2]))
        sys.exit(f"unknown helper {cmd}")
    ap = argparse.ArgumentParser(
        description="warren vs direct TCP on emulated links (run as root "
        "after ./run.sh build)")
    ap.add_argument("--quick", action="store_true",
                    help="only 100mbit-25ms-0%% and -1%%, one run each")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                    help="result directory (default bench/results)")
    ap.add_argument("--build", default="build/release",
                    help="build directory, relative to the source tree "
                    "(default build/release)")
    ap.add_argument("--links", default=None,
                    help="comma list of link names to run (a subset)")
    args = ap.parse_args()

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(CLEAN.all)
    b = Bench(args)
    try:
        b.run()
    finally:
        CLEAN.all()
        shutil.rmtree(b.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
