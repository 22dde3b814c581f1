"""Shared fixtures for warren's end-to-end tests.

Every test that touches the network works only on loopback or inside network
namespaces that it creates here and that are always deleted afterwards, even
when the test fails. Processes started through the `procs` fixture are always
reaped; their stdout/stderr go to log files that are kept under
$WARREN_BUILD_DIR/test-logs/<test name>/ when the test fails and deleted when
it passes.
"""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsproc  # noqa: E402
from nsproc import Netns, Proc, Procs, run  # noqa: E402,F401

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


@pytest.fixture
def netns():
    """Factory for network namespaces that are deleted after the test."""
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    nsproc.reap_stale(NETNS_PREFIX)
    ns = Netns(NETNS_PREFIX)
    yield ns
    ns.cleanup()
