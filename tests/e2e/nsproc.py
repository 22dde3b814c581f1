"""Processes and network namespaces, shared by the e2e tests
(tests/e2e/conftest.py wraps them in fixtures) and the bench
(bench/wnb/procs.py). Nothing here imports pytest.

- spawn() starts a program in its own session (inside a namespace if
  given) with stdout and stderr in a log file; stop_group() ends it and
  whatever it forked: SIGTERM to its process group, SIGKILL after a while.
- Namespaces are named PREFIX-PID-TAG (the tests use "wnt", the bench
  "wnb"), so reap_stale(PREFIX) can delete the leftovers of runs that were
  killed, and only those.
- Proc, Procs and Netns are what the tests' `procs` and `netns` fixtures
  hand out; bench scripts that run the tests' scenarios use them too."""

import itertools
import os
import signal
import subprocess
import time


def spawn(argv, logpath, netns=None, env=None, stdin=None):
    """Start argv with its output appended to logpath; a Popen. `ip netns
    exec` execs the command, so the pid is the program's own."""
    if netns is not None:
        argv = ["ip", "netns", "exec", netns] + list(argv)
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    with open(logpath, "ab") as logf:
        return subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=stdin if stdin is not None
                                else subprocess.DEVNULL,
                                env=full_env, start_new_session=True)


def _killpg(popen, sig):
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass


def stop_group(popen, timeout=5.0, sig=signal.SIGTERM):
    """Send sig to popen's process group, wait up to timeout, then SIGKILL;
    returns the exit code."""
    if popen.poll() is None:
        _killpg(popen, sig)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(popen, signal.SIGKILL)
            popen.wait()
    return popen.returncode


def netns_list():
    res = subprocess.run(["ip", "netns", "list"], capture_output=True,
                         text=True)
    return [line.split()[0] for line in res.stdout.splitlines() if line]


def netns_add(name):
    """Create namespace `name` with its loopback up."""
    subprocess.run(["ip", "netns", "add", name], check=True,
                   capture_output=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True,
                   capture_output=True)
    return name


def netns_del(name):
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def reap_stale(prefix, log=None):
    """Delete namespaces named PREFIX-PID-... whose creating process is gone
    (left by a killed run); never another's, never a live run's."""
    for name in netns_list():
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != prefix or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            if log:
                log(f"deleting leftover namespace {name}")
            netns_del(name)


def run(argv, check=True, **kw):
    """Run a short command and return CompletedProcess (text mode)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    res = subprocess.run(argv, **kw)
    if check and res.returncode != 0:
        raise AssertionError(
            f"{argv} exited {res.returncode}\nstdout:{res.stdout}\n"
            f"stderr:{res.stderr}")
    return res


class Proc:
    """A process started by `procs`; output goes to <logdir>/<name>.log."""

    def __init__(self, name, popen, logpath):
        self.name = name
        self.popen = popen
        self.logpath = logpath

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        with open(self.logpath, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=10.0):
        """Wait until `needle` appears in the log; fail with the log if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if not self.alive():
                break
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: {needle!r} not seen in log "
            f"(alive={self.alive()}):\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stop the process and return its exit code."""
        if self.alive():
            try:
                self.popen.send_signal(sig)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


class Procs:
    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []
        self.counter = itertools.count()

    def start(self, name, argv, netns=None, env=None, stdin=None):
        """Start argv (inside `netns` if given) logging to <name>.log."""
        logpath = os.path.join(self.logdir, f"{name}.log")
        popen = spawn(argv, logpath, netns=netns, env=env, stdin=stdin)
        p = Proc(name, popen, logpath)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in reversed(self.procs):
            if p.alive():
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.popen.wait()


class Netns:
    """Creates uniquely named network namespaces and deletes them all."""

    _seq = itertools.count()

    def __init__(self, prefix):
        self.prefix = prefix
        self.names = []

    def create(self, tag="ns"):
        name = f"{self.prefix}-{os.getpid()}-{next(self._seq)}{tag}"
        netns_add(name)
        self.names.append(name)
        return name

    def exec(self, ns, argv, check=True, **kw):
        return run(["ip", "netns", "exec", ns] + list(argv), check=check, **kw)

    def veth(self, ns_a, addr_a, ns_b, addr_b, prefix=24, mtu=None):
        """Join ns_a and ns_b with a veth pair; addr_* are IPv4 strings."""
        n = next(self._seq)
        a, b = f"wnva{n}", f"wnvb{n}"
        run(["ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer",
             "name", b, "netns", ns_b])
        for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
            self.exec(ns, ["ip", "addr", "add", f"{addr}/{prefix}", "dev",
                           dev])
            if mtu:
                self.exec(ns, ["ip", "link", "set", dev, "mtu", str(mtu)])
            self.exec(ns, ["ip", "link", "set", dev, "up"])
        return a, b

    def cleanup(self):
        for name in reversed(self.names):
            netns_del(name)
        self.names = []
