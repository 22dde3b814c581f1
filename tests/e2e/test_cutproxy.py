"""End-to-end tests of warren-cutproxy, the connection-cutting TCP proxy.

All on loopback with ephemeral ports: the proxy listens on port 0 and reports
its address through --ready-file; targets are tcputil servers in threads.
Every proxy is stopped with SIGTERM at the end and must exit 0 (under the
sanitizer build, a leak or memory error makes that fail).
"""

import json
import os
import re
import socket
import threading
import time

import pytest

from conftest import run, tool_path
import tcputil
from tcputil import TcpServer

MiB = 1 << 20

# Cut timing is checked against this window around the configured time:
# the proxy's timer is accurate to a millisecond, the rest is scheduling
# (and sanitizer) slack.
EARLY = 0.1
LATE = 0.5


def cutproxy_bin():
    return tool_path("tools", "cutproxy", "warren-cutproxy")


class CutProxy:
    def __init__(self, proc, hostport, stats_path):
        self.proc = proc
        self.hostport = hostport
        self.stats_path = stats_path

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return self.proc.log()

    def wait_log(self, needle, timeout=10.0):
        self.proc.wait_log(needle, timeout)

    def conn_lines(self, event):
        """{conn id: rest of line} for log lines 'conn N <event> ...'."""
        out = {}
        for m in re.finditer(rf"conn (\d+) {event}\b(.*)", self.log()):
            out[int(m.group(1))] = m.group(2)
        return out

    def stop(self):
        """SIGTERM; assert a clean exit; return the stats JSON."""
        rc = self.proc.stop()
        log = self.log()
        assert rc == 0, f"cutproxy exited {rc}:\n{log}"
        assert "Sanitizer" not in log, log
        with open(self.stats_path) as f:
            return json.load(f)


@pytest.fixture
def cutproxy(procs, logdir):
    """start(target_hostport, *options, listen=...) -> CutProxy."""
    started = []

    def start(target, *options, listen="127.0.0.1:0"):
        n = len(started)
        ready = os.path.join(logdir, f"cutproxy{n}.ready")
        stats = os.path.join(logdir, f"cutproxy{n}.stats.json")
        argv = [cutproxy_bin(), "--listen", listen, "--target", target,
                "--ready-file", ready, "--stats-file", stats,
                *[str(o) for o in options]]
        p = procs.start(f"cutproxy{n}", argv)
        hostport = tcputil.wait_file(ready, proc=p).strip()
        px = CutProxy(p, hostport, stats)
        started.append(px)
        return px

    yield start
    for px in started:
        if px.proc.alive():
            px.stop()


@pytest.fixture
def servers():
    """Make TcpServers that are closed after the test."""
    made = []

    def make(handler, host="127.0.0.1"):
        srv = TcpServer(handler, host=host)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


def assert_cut_time(elapsed, configured, what):
    assert configured - EARLY <= elapsed <= configured + LATE, (
        f"{what}: cut after {elapsed:.3f}s, configured {configured}s")


# ---- relaying ---------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_relays_data_unchanged(cutproxy, servers, host):
    """50 MiB each way through an echo target arrive sha256-identical."""
    srv = servers(tcputil.echo, host=host)
    listen = tcputil.format_hostport(host, 0)
    px = cutproxy(srv.hostport, "--cut-after", "60s", listen=listen)
    size = 50 * MiB
    sent, got = tcputil.echo_roundtrip(px.hostport, size, seed=1)
    assert got.end == "eof", got
    assert got.nbytes == size
    assert got.sha256 == sent == tcputil.payload_sha256(size, seed=1)
    rec = srv.wait_conns(1)[0]
    assert rec.wait() == "eof"
    assert rec.sha256_in == sent
    px.wait_log("close (eof from both)")
    stats = px.stop()
    assert stats["bytes_client_to_target"] == size
    assert stats["bytes_target_to_client"] == size
    assert stats["closed_by_peer"] == 1 and stats["cut"] == 0


# ---- cutting ----------------------------------------------------------------

def test_cut_rst_resets_both_sides(cutproxy, servers):
    """rst mode: at cut-after the client's recv fails with ECONNRESET and
    the target's connection is reset too."""
    srv = servers(tcputil.echo)
    px = cutproxy(srv.hostport, "--cut-after", "1s", "--mode", "rst")
    s = tcputil.connect(px.hostport)
    t0 = time.monotonic()
    assert tcputil.exchange(s, b"hello") == b"hello"
    end, _ = tcputil.wait_end(s, timeout=5)
    elapsed = time.monotonic() - t0
    s.close()
    assert end == "reset"
    assert_cut_time(elapsed, 1.0, "client")
    rec = srv.wait_conns(1)[0]
    assert rec.wait(5) == "reset"
    assert_cut_time(rec.lifetime, 1.0, "target")
    px.wait_log("conn 1 close (cut)")
    cut = px.conn_lines("cut")[1]
    assert cut.startswith(" rst after ")
    assert 1.0 <= float(re.search(r"after ([\d.]+)s", cut).group(1)) < 1.1
    stats = px.stop()
    assert stats["cut"] == 1 and stats["closed_by_peer"] == 0


def test_cut_fin_closes_cleanly(cutproxy, servers):
    """fin mode: both sides get a clean EOF at cut-after, with everything
    sent before the cut delivered, and the proxy finishes the close
    handshake as soon as the peers close (not at the grace timeout)."""
    srv = servers(tcputil.echo)
    px = cutproxy(srv.hostport, "--cut-after", "1s", "--mode", "fin")
    s = tcputil.connect(px.hostport)
    t0 = time.monotonic()
    assert tcputil.exchange(s, b"x" * 100000) == b"x" * 100000
    got = tcputil.recv_all(s, timeout=5)
    elapsed = time.monotonic() - t0
    assert got.end == "eof" and got.nbytes == 0, got
    assert_cut_time(elapsed, 1.0, "client")
    rec = srv.wait_conns(1)[0]
    assert rec.wait(5) == "eof"
    assert rec.nbytes_in == 100000
    s.close()
    px.wait_log("conn 1 close (cut)", timeout=2)
    close = px.conn_lines("close")[1]
    assert float(re.search(r"after ([\d.]+)s", close).group(1)) < 2.5
    assert "grace expired" not in px.log()
    stats = px.stop()
    assert stats["cut"] == 1


def test_cut_fin_delivers_everything_relayed(cutproxy, servers):
    """fin mode: what the proxy wrote to the client before the cut arrives,
    intact and in full (a prefix of what the target sent), then EOF."""
    srv = servers(tcputil.source(64 << 30, seed=5))
    px = cutproxy(srv.hostport, "--cut-after", "500ms", "--mode", "fin")
    s = tcputil.connect(px.hostport)
    got = tcputil.recv_all(s, timeout=10)
    s.close()
    assert got.end == "eof", got
    px.wait_log("conn 1 close (cut)")
    t2c = int(re.search(r"t2c (\d+)", px.conn_lines("close")[1]).group(1))
    assert got.nbytes == t2c > 0
    assert got.sha256 == tcputil.payload_sha256(got.nbytes, seed=5)
    assert px.stop()["bytes_target_to_client"] == t2c


def test_cut_fin_grace_stops_a_sender(cutproxy, servers):
    """fin mode: a client that only sends (never sends FIN) is closed
    fin-grace after the cut, so its writes fail then; its reads see the
    clean EOF at the cut first."""
    srv = servers(tcputil.sink)
    px = cutproxy(srv.hostport, "--cut-after", "1s", "--mode", "fin",
                  "--fin-grace", "300ms")
    s = tcputil.connect(px.hostport)
    t0 = time.monotonic()
    failed = {}

    def sender():
        block = b"s" * 65536
        try:
            while time.monotonic() - t0 < 10:
                s.sendall(block)
        except OSError as e:
            failed["end"] = tcputil.end_of(e)
            failed["at"] = time.monotonic() - t0

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    end, _ = tcputil.wait_end(s, timeout=5)
    eof_at = time.monotonic() - t0
    t.join(10)
    s.close()
    assert end == "eof"
    assert_cut_time(eof_at, 1.0, "client eof")
    assert failed["end"] in ("reset", "error:EPIPE"), failed
    assert_cut_time(failed["at"], 1.3, "client write failure")
    assert srv.wait_conns(1)[0].wait(5) == "eof"
    px.wait_log("conn 1 close (cut)")
    assert "conn 1 client fin grace expired" in px.log()
    assert px.stop()["cut"] == 1


def test_each_connection_cut_independently(cutproxy, servers):
    """Connections opened at different times are each cut at their own
    cut-after; new connections are relayed after earlier ones were cut."""
    srv = servers(tcputil.echo)
    px = cutproxy(srv.hostport, "--cut-after", "1s")
    results = {}

    def client(name, delay):
        time.sleep(delay)
        s = tcputil.connect(px.hostport)
        t0 = time.monotonic()
        ok = tcputil.exchange(s, name.encode()) == name.encode()
        end, _ = tcputil.wait_end(s, timeout=5)
        results[name] = (ok, end, time.monotonic() - t0)
        s.close()

    threads = [threading.Thread(target=client, args=(n, d))
               for n, d in (("a", 0.0), ("b", 0.4))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # A redialing client: a fresh connection after both cuts.
    client("c", 0.0)
    for name in "abc":
        ok, end, elapsed = results[name]
        assert ok and end == "reset", (name, results[name])
        assert_cut_time(elapsed, 1.0, name)
    assert [r.wait(5) for r in srv.wait_conns(3)] == ["reset"] * 3
    stats = px.stop()
    assert stats["accepted"] == 3 and stats["cut"] == 3


def test_jitter_is_seeded(cutproxy, servers):
    """Each connection's cut time is cut-after plus a uniform draw from the
    seeded generator: the same seed gives the same sequence, and the
    connections are cut when the log says they will be."""
    srv = servers(tcputil.echo)
    plans = []
    for _ in range(2):
        px = cutproxy(srv.hostport, "--cut-after", "300ms", "--cut-jitter",
                      "400ms", "--seed", "7")
        socks = []
        for i in range(5):
            s = tcputil.connect(px.hostport)
            socks.append((s, time.monotonic()))
            tcputil.exchange(s, b"%d" % i)
        ends = []
        for s, t0 in socks:
            end, _ = tcputil.wait_end(s, timeout=5)
            ends.append((end, time.monotonic() - t0))
            s.close()
        opens = px.conn_lines("open")
        plan = [float(re.search(r"cut in ([\d.]+)s", opens[i]).group(1))
                for i in range(1, 6)]
        for (end, elapsed), planned in zip(ends, plan):
            assert end == "reset"
            assert 0.3 <= planned <= 0.7
            # Sockets are checked in order, so later ones may be late.
            assert planned - EARLY <= elapsed <= max(planned, 0.7) + LATE
        plans.append(plan)
        px.stop()
    assert plans[0] == plans[1]
    assert len(set(plans[0])) > 1


def test_cut_after_zero_never_cuts(cutproxy, servers):
    srv = servers(tcputil.echo)
    px = cutproxy(srv.hostport, "--cut-after", "0", "--cut-jitter", "1s")
    s = tcputil.connect(px.hostport)
    deadline = time.monotonic() + 3
    i = 0
    while time.monotonic() < deadline:
        msg = b"ping %d" % i
        assert tcputil.exchange(s, msg) == msg
        time.sleep(0.25)
        i += 1
    s.close()
    px.wait_log("conn 1 close (eof from both)")
    stats = px.stop()
    assert stats["cut"] == 0 and stats["closed_by_peer"] == 1


@pytest.mark.parametrize("side", ["client", "target"])
def test_cut_side_leaves_other_side_silent(cutproxy, servers, side):
    """--cut-side X resets only X; the other peer's connection stays open
    (nothing more is relayed to it) until that peer closes it."""
    srv = servers(tcputil.echo)
    px = cutproxy(srv.hostport, "--cut-after", "500ms", "--cut-side", side)
    s = tcputil.connect(px.hostport)
    assert tcputil.exchange(s, b"hi") == b"hi"
    rec = srv.wait_conns(1)[0]
    if side == "client":
        end, _ = tcputil.wait_end(s, timeout=5)
        assert end == "reset"
        assert not rec.done.wait(1.0), rec
        rec.sock.shutdown(socket.SHUT_RDWR)  # the target closes its end
    else:
        assert rec.wait(5) == "reset"
        s.settimeout(1.0)
        s.sendall(b"into the void")
        with pytest.raises(socket.timeout):
            s.recv(100)
        s.close()
    px.wait_log("conn 1 close (cut)", timeout=5)
    stats = px.stop()
    assert stats["cut"] == 1


# ---- memory -----------------------------------------------------------------

@pytest.mark.parametrize("direction", ["client_to_target", "target_to_client"])
def test_backpressure_bounds_memory(cutproxy, servers, direction):
    """A peer that does not read stops the proxy reading the other side:
    the proxy's RSS stays flat while 128 MiB wait to be sent, and once the
    peer reads, all of it arrives intact."""
    size = 128 * MiB
    release = threading.Event()
    if direction == "client_to_target":
        srv = servers(tcputil.hold(release))
    else:
        srv = servers(tcputil.source(size, seed=3))
    px = cutproxy(srv.hostport)
    time.sleep(0.2)
    rss0 = tcputil.rss_bytes(px.pid)
    s = tcputil.connect(px.hostport, timeout=30)
    progress = [0]
    sender = None
    if direction == "client_to_target":
        sender = threading.Thread(
            target=tcputil.send_payload, args=(s, size, 3, progress),
            daemon=True)
        sender.start()
    time.sleep(1.5)
    rss1 = tcputil.rss_bytes(px.pid)
    if direction == "client_to_target":
        assert progress[0] < size / 2, "client sent it all: no backpressure"
    else:
        rec = srv.wait_conns(1)[0]
        assert rec.nbytes_out < size / 2, "target sent everything"
    assert rss1 - rss0 < 32 * MiB, (rss0, rss1)

    if direction == "client_to_target":
        release.set()
        sender.join(30)
        assert progress[0] == size
        s.shutdown(socket.SHUT_WR)
        rec = srv.wait_conns(1)[0]
        assert rec.wait(30) == "eof"
        assert rec.nbytes_in == size
        assert rec.sha256_in == tcputil.payload_sha256(size, seed=3)
    else:
        got = tcputil.recv_all(s, timeout=30)
        assert got.end == "eof" and got.nbytes == size, got
        assert got.sha256 == tcputil.payload_sha256(size, seed=3)
    s.close()
    stats = px.stop()
    assert stats["bytes_client_to_target" if direction == "client_to_target"
                 else "bytes_target_to_client"] == size


# ---- refusing and stalling --------------------------------------------------

def test_refuse_and_blackhole_files(cutproxy, servers, logdir):
    srv = servers(tcputil.echo)
    refuse = os.path.join(logdir, "refuse")
    blackhole = os.path.join(logdir, "blackhole")
    px = cutproxy(srv.hostport, "--refuse-file", refuse, "--blackhole-file",
                  blackhole)

    # While the refuse file exists new connections are reset at once.
    tcputil.touch(refuse)
    assert tcputil.connect_end(px.hostport) == "reset"
    tcputil.remove(refuse)
    s = tcputil.connect(px.hostport)
    assert tcputil.exchange(s, b"back") == b"back"

    # While the blackhole file exists nothing is relayed, on old or new
    # connections, but nothing is lost or closed either.
    tcputil.touch(blackhole)
    px.wait_log("blackhole on", timeout=2)
    s.sendall(b"stalled")
    s2 = tcputil.connect(px.hostport)
    s2.sendall(b"new")
    for sock in (s, s2):
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(100)
    tcputil.remove(blackhole)
    assert tcputil.exchange(s, b"", timeout=5) == b""
    s.settimeout(5)
    assert s.recv(100) == b"stalled"
    s2.settimeout(5)
    assert s2.recv(100) == b"new"
    s.close()
    s2.close()
    stats = px.stop()
    assert stats["refused"] == 1 and stats["accepted"] == 3


def test_stats_count_every_ending(cutproxy, servers, logdir):
    """accepted = refused + connect_failed + cut + closed_by_peer + failed
    + closed_at_exit, with each connection in the right bin and the byte
    counts exact."""
    srv = servers(tcputil.echo)
    px = cutproxy(srv.hostport, "--cut-after", "1s", "--max-conns", "2")
    # Closed by its peer before the cut.
    a = tcputil.connect(px.hostport)
    assert tcputil.exchange(a, b"a" * 1000) == b"a" * 1000
    a.close()
    px.wait_log("conn 1 close")
    # Two open: the third is refused (max-conns 2).
    b = tcputil.connect(px.hostport)
    c = tcputil.connect(px.hostport)
    for sock in (b, c):
        assert tcputil.exchange(sock, b"b" * 100) == b"b" * 100
    assert tcputil.connect_end(px.hostport) == "reset"
    for sock in (b, c):
        assert tcputil.wait_end(sock, timeout=5)[0] == "reset"
        sock.close()
    # Open when the proxy stops.
    e = tcputil.connect(px.hostport)
    assert tcputil.exchange(e, b"e" * 10) == b"e" * 10
    stats = px.stop()
    e.close()
    assert stats == {
        "accepted": 5, "refused": 1, "connect_failed": 0, "cut": 2,
        "closed_by_peer": 1, "failed": 0, "closed_at_exit": 1, "active": 0,
        "bytes_client_to_target": 1210, "bytes_target_to_client": 1210,
    }


def test_target_down_resets_client(cutproxy):
    port = tcputil.closed_port()
    px = cutproxy(f"127.0.0.1:{port}")
    assert tcputil.connect_end(px.hostport) == "reset"
    px.wait_log("conn 1 close (connect failed")
    stats = px.stop()
    assert stats["connect_failed"] == 1 and stats["accepted"] == 1


# ---- arguments --------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    ([], "--listen and --target are required"),
    (["--listen", "127.0.0.1:0"], "--listen and --target are required"),
    (["--listen", "localhost:1", "--target", "127.0.0.1:1"],
     "--listen: invalid address"),
    (["--listen", "::1:5", "--target", "127.0.0.1:1"],
     "--listen: invalid address"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:0"],
     "--target: invalid address"),
    (["--listen", "127.0.0.1:70000", "--target", "127.0.0.1:1"],
     "--listen: invalid address"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
      "--cut-after", "2"], "--cut-after: invalid duration"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
      "--cut-jitter", "-1s"], "--cut-jitter: invalid duration"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
      "--cut-after", "0.0001s"], "--cut-after: invalid duration"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
      "--mode", "drop"], "--mode: 'drop' is not rst or fin"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
      "--cut-side", "left"], "--cut-side"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
      "--max-conns", "x"], "--max-conns: invalid count"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
      "--seed", "1e3"], "--seed: invalid number"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--bogus"],
     "unknown option '--bogus'"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--mode"],
     "--mode needs a value"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "extra"],
     "unexpected argument 'extra'"),
])
def test_bad_arguments_exit_2(args, message):
    res = run([cutproxy_bin(), *args], check=False, timeout=10)
    assert res.returncode == 2, res
    assert message in res.stderr, res.stderr


def test_help_and_listen_failure():
    res = run([cutproxy_bin(), "--help"], timeout=10)
    assert "--cut-after" in res.stdout
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run([cutproxy_bin(), "--listen", f"127.0.0.1:{port}",
                   "--target", "127.0.0.1:1"], check=False, timeout=10)
    assert res.returncode == 1, res
    assert "address already in use" in res.stderr
