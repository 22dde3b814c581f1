"""Processes, namespaces and /proc readings for the benchmark.

Every process the benchmark starts goes through CLEAN.start, runs in its own
session, and is killed (SIGTERM, then SIGKILL) by CLEAN.all; every namespace
goes through CLEAN.add_netns and is deleted by CLEAN.all. Namespaces are
named wnb-<pid>-*; reap_stale deletes those of runs that no longer exist.
The mechanics are the e2e tests' own (tests/e2e/nsproc.py); this keeps the
bench's bookkeeping: one list for the whole run, not one per test.
BenchNetns and BenchProcs are the e2e helpers' `netns` and `procs` on that
bookkeeping, so the bench calls those helpers (linkemu.make_link) as the
tests do.
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import time

import nsproc

NETNS_PREFIX = "wnb"
PREFIX = f"{NETNS_PREFIX}-{os.getpid()}"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


class Cleanup:
    def __init__(self):
        self.procs = []
        self.namespaces = []

    def start(self, name, argv, logdir, netns=None, stdin=None, env=None):
        """Starts argv (inside netns if given) with its output in
        logdir/name.log; a Popen with bench_name and bench_log set."""
        path = os.path.join(logdir, f"{name}.log")
        p = nsproc.spawn(argv, path, netns=netns, stdin=stdin, env=env)
        p.bench_name = name
        p.bench_log = path
        self.procs.append(p)
        return p

    def stop(self, p, timeout=5.0):
        nsproc.stop_group(p, timeout)
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def add_netns(self, name):
        nsproc.netns_add(name)
        self.namespaces.append(name)
        return name

    def del_netns(self, name):
        nsproc.netns_del(name)
        if name in self.namespaces:
            self.namespaces.remove(name)

    def all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)
        for ns in list(self.namespaces):
            self.del_netns(ns)
        for ns in nsproc.netns_list():
            if ns.startswith(PREFIX + "-"):
                self.del_netns(ns)


CLEAN = Cleanup()


def run_guarded(runner, keep_logs):
    """Runs runner.run() with every process and namespace cleaned up on
    any exit (a signal, an exception, the end), then removes runner.tmp,
    the run's log directory, unless keep_logs. Returns 0."""
    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(CLEAN.all)
    try:
        runner.run()
    finally:
        CLEAN.all()
        if keep_logs:
            log(f"logs kept in {runner.tmp}")
        else:
            shutil.rmtree(runner.tmp, ignore_errors=True)
    return 0


class BenchNetns:
    """The e2e helpers' `netns` (nsproc.Netns's create and exec) on CLEAN:
    namespaces are PREFIX-TAG and deleted by CLEAN.all."""

    def create(self, tag="ns"):
        return CLEAN.add_netns(f"{PREFIX}-{tag}")

    def exec(self, ns, argv, check=True, **kw):
        return nsproc.run(["ip", "netns", "exec", ns] + list(argv),
                          check=check, **kw)


class BenchProcs:
    """The e2e helpers' `procs` (nsproc.Procs's start and logdir) on CLEAN:
    processes log to logdir and are ended by CLEAN.all (or CLEAN.stop on
    the returned Proc's popen)."""

    def __init__(self, logdir):
        self.logdir = logdir

    def start(self, name, argv, netns=None, env=None, stdin=None):
        p = CLEAN.start(name, argv, self.logdir, netns=netns, stdin=stdin,
                        env=env)
        return nsproc.Proc(name, p, p.bench_log)


def reap_stale():
    nsproc.reap_stale(NETNS_PREFIX, log)


def nsrun(ns, argv, timeout=60, **kw):
    if ns:
        argv = ["ip", "netns", "exec", ns] + list(argv)
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, **kw)


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


# ---- /proc ------------------------------------------------------------------

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        # fields[0] is field 3 (state); field N is fields[N - 3].
        return f.read().rsplit(")", 1)[1].split()


def tree(root):
    """The pids of root and all its live descendants (forking relays)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(_stat_fields(d)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_s(root):
    """CPU seconds (user + system) of root's process tree: its live
    processes, plus the children root has already reaped (cutime, cstime).
    Each child's time is in exactly one of the two at any moment."""
    total = 0
    for pid in tree(root):
        try:
            f = _stat_fields(pid)
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
        if pid == root:
            total += int(f[13]) + int(f[14])
    return total / CLK_TCK


def _status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def hwm_kib(root):
    """Peak resident set (VmHWM) of root's tree, summed, in KiB."""
    vals = [_status_kib(p, "VmHWM") for p in tree(root)]
    vals = [v for v in vals if v is not None]
    return sum(vals) if vals else None


def pss_kib(root):
    """Proportional set size of root's tree, in KiB: shared pages are
    divided among the processes sharing them, so forked children add only
    what is their own."""
    total, seen = 0, False
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        seen = True
                        break
        except OSError:
            pass
    return total if seen else None
