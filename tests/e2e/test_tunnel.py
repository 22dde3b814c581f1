"""The first tunnel end to end: `warren server` and `warren client` in
their own network namespaces, real applications at both ends, data checked
by sha256. Links are veth pairs or the project's link emulator."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import needs_root, run
from linkemu import make_link

HERE = os.path.dirname(os.path.abspath(__file__))
NETAPP = os.path.join(HERE, "netapp.py")
PY = "/usr/bin/python3"

pytestmark = needs_root


class Tunnel:
    """A client namespace and a server namespace, keys, and helpers to start
    warren and the applications at both ends."""

    def __init__(self, netns, procs, warren_bin, tmp_path, link=None):
        self.netns, self.procs, self.bin = netns, procs, warren_bin
        self.dir = str(tmp_path)
        if link is None:
            self.ns_c = netns.create("c")
            self.ns_s = netns.create("s")
            netns.veth(self.ns_c, "10.210.0.1", self.ns_s, "10.210.0.2")
            self.server_ip = "10.210.0.2"
        else:
            self.ns_c, self.ns_s = link.ns_a, link.ns_b
            self.server_ip = link.addr_b
        old = os.umask(0o077)
        try:
            for name in ("server", "client", "other"):
                key = subprocess.run([warren_bin, "genkey"], check=True,
                                     capture_output=True, text=True).stdout
                with open(os.path.join(self.dir, f"{name}.key"), "w") as f:
                    f.write(key)
                setattr(self, f"{name}_pub", subprocess.run(
                    [warren_bin, "pubkey"], input=key, check=True,
                    capture_output=True, text=True).stdout.strip())
        finally:
            os.umask(old)

    def key(self, name):
        return os.path.join(self.dir, f"{name}.key")

    def server(self, *extra, allow_client=None, name="server"):
        argv = [self.bin, "server", "--listen",
                f"udp://{self.server_ip}:4433", "--key", self.key("server"),
                "--allow-client", allow_client or self.client_pub,
                "--log-level", "debug", *extra]
        p = self.procs.start(name, argv, netns=self.ns_s)
        p.wait_log("server ready")
        return p

    def client(self, *forwards, server_key=None, extra=(), name="client"):
        argv = [self.bin, "client", "--server",
                f"udp://{self.server_ip}:4433", "--server-key",
                server_key or self.server_pub, "--key", self.key("client"),
                "--log-level", "debug", *extra]
        for f in forwards:
            argv += ["-L", f]
        p = self.procs.start(name, argv, netns=self.ns_c)
        p.wait_log("client ready")
        return p

    def target(self, listen, mode="echo", name="target"):
        ready = os.path.join(self.dir, f"{name}.ready")
        p = self.procs.start(name, [PY, NETAPP, "serve", "--listen", listen,
                                    "--mode", mode, "--ready", ready],
                             netns=self.ns_s)
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            assert p.alive() and time.monotonic() < deadline, p.log()
            time.sleep(0.02)
        return p

    def app(self, *args, timeout=600, check=True):
        res = self.netns.exec(self.ns_c, [PY, NETAPP, *args], check=False,
                              timeout=timeout)
        assert res.returncode == 0 or not check, \
            f"netapp {args} failed:\n{res.stdout}\n{res.stderr}"
        return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture
def tunnel(netns, procs, warren_bin, tmp_path):
    return Tunnel(netns, procs, warren_bin, tmp_path)


def wait_client_up(client, n=1, timeout=20.0):
    deadline = time.monotonic() + timeout
    while client.log().count("connected to server") < n:
        assert time.monotonic() < deadline, client.log()
        time.sleep(0.05)


def test_demo(warren_bin):
    res = subprocess.run([warren_bin, "demo", "--mib", "16"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "BLAKE2b match" in res.stdout


def test_200mb_unimpaired(tunnel):
    tunnel.target("127.0.0.1:7000")
    tunnel.server("--allow", "127.0.0.1:7000")
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(200 * 1000 * 1000))
    assert r["ok"], r


def test_200mb_over_lossy_emulated_link(netns, procs, warren_bin, tmp_path):
    link = make_link(netns, procs,
                     both="delay=25ms,loss=1%,rate=100mbit", seed=7)
    t = Tunnel(netns, procs, warren_bin, tmp_path, link=link)
    t.target("127.0.0.1:7000")
    t.server("--allow", "127.0.0.1:7000")
    t.client("127.0.0.1:2000=127.0.0.1:7000")
    r = t.app("roundtrip", "--connect", "127.0.0.1:2000",
              "--bytes", str(200 * 1000 * 1000))
    assert r["ok"], r
    stats = link.stop()
    # The link really was lossy in both directions.
    for d in ("a2b", "b2a"):
        assert stats[d]["dropped_loss"] > 100, stats[d]


def test_100_concurrent_connections(tunnel):
    tunnel.target("127.0.0.1:7000")
    tunnel.server("--allow", "127.0.0.1:7000")
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(1 << 20), "--conns", "100")
    assert r["ok"], r


def test_unix_sockets_on_both_ends(tunnel, tmp_path):
    tsock = str(tmp_path / "target.sock")
    csock = str(tmp_path / "forward.sock")
    tunnel.target(f"unix:{tsock}")
    tunnel.server("--allow", f"unix:{tsock}")
    tunnel.client(f"unix:{csock}=unix:{tsock}")
    r = tunnel.app("roundtrip", "--connect", f"unix:{csock}",
                   "--bytes", str(20 << 20), "--conns", "4")
    assert r["ok"], r


def test_half_close_carried_both_ways(tunnel):
    tunnel.target("127.0.0.1:7000", mode="reply")
    tunnel.server("--allow", "127.0.0.1:7000")
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    r = tunnel.app("halfclose", "--connect", "127.0.0.1:2000",
                   "--bytes", str(5 << 20))
    assert r["ok"], r


def test_wrong_server_key_is_refused_and_said(tunnel):
    tunnel.target("127.0.0.1:7000")
    tunnel.server("--allow", "127.0.0.1:7000")
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                      server_key=tunnel.other_pub,
                      extra=("--dead-peer-timeout", "3s",
                             "--keepalive", "1s"))
    c.wait_log("server key mismatch", timeout=10)
    assert tunnel.other_pub in c.log()
    # A connection to the forward is not carried anywhere: it ends.
    r = tunnel.app("probe", "--connect", "127.0.0.1:2000", "--timeout", "20")
    assert r["end"] in ("reset", "eof"), r
    assert "connected to server" not in c.log()


def test_unknown_client_key_is_rejected(tunnel):
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server("--allow", "127.0.0.1:7000",
                      allow_client=tunnel.other_pub)
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                      extra=("--dead-peer-timeout", "3s",
                             "--keepalive", "1s"))
    s.wait_log("is not in allow-client", timeout=10)
    assert tunnel.client_pub in s.log()
    r = tunnel.app("probe", "--connect", "127.0.0.1:2000", "--timeout", "20")
    assert r["end"] in ("reset", "eof"), r
    assert "client connected" not in s.log()
    assert c.alive() and s.alive()


def test_disallowed_target_closes_only_that_stream(tunnel):
    tunnel.target("127.0.0.1:7000")
    tunnel.target("127.0.0.1:7001", name="target2")
    s = tunnel.server("--allow", "127.0.0.1:7000")
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                  "127.0.0.1:2001=127.0.0.1:7001")
    # A long transfer on the allowed forward runs meanwhile.
    bg = subprocess.Popen(["ip", "netns", "exec", tunnel.ns_c, PY, NETAPP,
                           "roundtrip", "--connect", "127.0.0.1:2000",
                           "--bytes", str(50 << 20)],
                          stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(5):
            r = tunnel.app("probe", "--connect", "127.0.0.1:2001")
            assert r["end"] in ("reset", "eof"), r
            assert r["secs"] < 3, r
        out, _ = bg.communicate(timeout=300)
    finally:
        if bg.poll() is None:
            bg.kill()
    assert json.loads(out.strip().splitlines()[-1])["ok"], out
    assert any("127.0.0.1:7001" in line and "denied" in line
               for line in s.log().splitlines()), s.log()


def test_client_notices_dead_server_and_reconnects(tunnel):
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server("--allow", "127.0.0.1:7000")
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                      extra=("--dead-peer-timeout", "3s",
                             "--keepalive", "1s"))
    wait_client_up(c)
    assert tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                      "--bytes", str(1 << 20))["ok"]
    # The server vanishes without a word.
    t0 = time.monotonic()
    s.stop(sig=signal.SIGKILL)
    c.wait_log("no answer", timeout=10)
    noticed = time.monotonic() - t0
    assert noticed < 6, noticed
    # It comes back; the client reconnects by itself.
    tunnel.server("--allow", "127.0.0.1:7000", name="server2")
    wait_client_up(c, n=2)
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(10 << 20))
    assert r["ok"], r


def test_garbage_udp_gets_no_answer(tunnel):
    tunnel.target("127.0.0.1:7000")
    tunnel.server("--allow", "127.0.0.1:7000")
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    wait_client_up(c)
    script = f"""
import os, socket, select
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3000):
    n = 1 + (i * 37) % 1400
    pkt = os.urandom(n)
    if i % 3 == 0:
        pkt = bytes([0xc0]) + b"\\x00\\x00\\x00\\x01" + pkt  # QUIC-looking
    s.sendto(pkt, ("{tunnel.server_ip}", 4433))
r, _, _ = select.select([s], [], [], 2.0)
print("answered" if r else "silent")
"""
    res = tunnel.netns.exec(tunnel.ns_c, [PY, "-c", script])
    assert res.stdout.strip() == "silent"
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(10 << 20))
    assert r["ok"], r


def test_config_files_and_ipv6_everywhere(netns, procs, warren_bin,
                                          tmp_path):
    """Both roles from config files ([server], [client], [forward NAME]),
    with IPv6 literals in every address, in one namespace over ::1."""
    t = Tunnel(netns, procs, warren_bin, tmp_path)
    ns = t.ns_s
    (tmp_path / "server.conf").write_text(f"""
[server]
listen = udp://[::1]:4433
key = server.key
allow-client = {t.client_pub}
allow = [::1]:7000
log-level = debug
""")
    (tmp_path / "client.conf").write_text(f"""
[client]
server = udp://[::1]:4433
server-key = {t.server_pub}
key = client.key

[forward six]
listen = tcp://[::1]:2000
target = [::1]:7000

[forward four-to-six]
listen = 127.0.0.1:2001
target = [::1]:7000
""")
    for conf in ("server.conf", "client.conf"):
        res = subprocess.run([warren_bin, "check", "-c",
                              str(tmp_path / conf)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    ready = str(tmp_path / "t.ready")
    p = procs.start("target", [PY, NETAPP, "serve", "--listen", "[::1]:7000",
                               "--ready", ready], netns=ns)
    deadline = time.monotonic() + 10
    while not os.path.exists(ready):
        assert p.alive() and time.monotonic() < deadline, p.log()
        time.sleep(0.02)
    s = procs.start("server", [warren_bin, "server", "-c",
                               str(tmp_path / "server.conf")], netns=ns)
    s.wait_log("server ready")
    c = procs.start("client", [warren_bin, "client", "-c",
                               str(tmp_path / "client.conf")], netns=ns)
    c.wait_log("client ready")
    for addr in ("[::1]:2000", "127.0.0.1:2001"):
        res = netns.exec(ns, [PY, NETAPP, "roundtrip", "--connect", addr,
                              "--bytes", str(5 << 20), "--conns", "3"],
                         check=False, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
    assert "forward six" in c.log() and "forward four-to-six" in c.log()
