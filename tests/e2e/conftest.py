"""Shared fixtures for warren's end-to-end tests.

Every test that touches the network works only on loopback or inside network
namespaces that it creates here and that are always deleted afterwards, even
when the test fails. Processes started through the `procs` fixture are always
reaped; their stdout/stderr go to log files that are kept under
$WARREN_BUILD_DIR/test-logs/<test name>/ when the test fails and deleted when
it passes.
"""

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SOURCE_DIR = os.environ.get(
    "WARREN_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("WARREN_BUILD_DIR",
                           os.path.join(SOURCE_DIR, "build", "release"))

# Every namespace this suite creates starts with this prefix and carries the
# creating pid, so a later run can tell which leftovers (from a killed run)
# are safe to delete: only ours, and only when their creator is gone.
NETNS_PREFIX = "wnt"


def tool_path(*parts):
    """Path of a binary built by CMake in the build directory under test."""
    path = os.path.join(BUILD_DIR, *parts)
    if not os.path.exists(path):
        pytest.fail(f"{path} not built (WARREN_BUILD_DIR={BUILD_DIR})")
    return path


@pytest.fixture(scope="session")
def warren_bin():
    return tool_path("warren")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(node):
    for when in ("setup", "call", "teardown"):
        rep = getattr(node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


@pytest.fixture
def logdir(request):
    """A per-test directory for logs; kept only if the test fails."""
    path = tempfile.mkdtemp(prefix="warren-e2e-")
    yield path
    if _test_failed(request.node):
        safe = request.node.nodeid.replace("/", "_").replace("::", "__")
        dest = os.path.join(BUILD_DIR, "test-logs", safe)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copytree(path, dest)
        sys.stderr.write(f"\n[e2e] logs kept in {dest}\n")
    shutil.rmtree(path, ignore_errors=True)


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
        if netns is not None:
            argv = ["ip", "netns", "exec", netns] + list(argv)
        logpath = os.path.join(self.logdir, f"{name}.log")
        logf = open(logpath, "ab")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        popen = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                 stdin=stdin if stdin is not None
                                 else subprocess.DEVNULL,
                                 env=full_env, start_new_session=True)
        logf.close()
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


@pytest.fixture
def procs(logdir):
    """Start processes that are always reaped at the end of the test."""
    ps = Procs(logdir)
    yield ps
    ps.cleanup()


def is_root():
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(
    not is_root(), reason="needs root (network namespaces, TUN)")


def _netns_list():
    res = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line]


def _reap_stale_netns():
    """Delete namespaces of ours whose creating process no longer exists."""
    for name in _netns_list():
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != NETNS_PREFIX:
            continue
        try:
            pid = int(parts[1])
        except ValueError:
            continue
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            run(["ip", "netns", "delete", name], check=False)


class Netns:
    """Creates uniquely named network namespaces and deletes them all."""

    _seq = itertools.count()

    def __init__(self):
        self.names = []

    def create(self, tag="ns"):
        name = f"{NETNS_PREFIX}-{os.getpid()}-{next(self._seq)}{tag}"
        run(["ip", "netns", "add", name])
        self.names.append(name)
        self.exec(name, ["ip", "link", "set", "lo", "up"])
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
            run(["ip", "netns", "delete", name], check=False)
        self.names = []


@pytest.fixture
def netns():
    """Factory for network namespaces that are deleted after the test."""
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    _reap_stale_netns()
    ns = Netns()
    yield ns
    ns.cleanup()
