"""The KCP engine end to end: `warren server --engine kcp` and `warren
client --engine kcp` in their own namespaces, data checked by sha256, over
veth pairs and the project's link emulator. The Tunnel helper is the QUIC
tests' own, with the engine flags added."""

import hashlib
import os
import signal
import time

import pytest

from conftest import needs_root
from linkemu import make_link
from test_tunnel import PY, Tunnel

pytestmark = needs_root

KCP = ("--engine", "kcp", "--mode", "fast3")


def wait_client_up(client, n=1, timeout=20.0):
    deadline = time.monotonic() + timeout
    while client.log().count("connected to server") < n:
        assert time.monotonic() < deadline, client.log()
        time.sleep(0.05)


@pytest.fixture
def tunnel(netns, procs, warren_bin, tmp_path):
    return Tunnel(netns, procs, warren_bin, tmp_path)


def start(t, *forwards, server_extra=(), client_extra=(), **kw):
    s = t.server("--allow", "127.0.0.1:7000", *KCP, *server_extra)
    c = t.client(*forwards, extra=(*KCP, *client_extra), **kw)
    return s, c


def test_kcp_200mb_over_lossy_emulated_link(netns, procs, warren_bin,
                                            tmp_path):
    link = make_link(netns, procs,
                     both="delay=25ms,loss=1%,rate=100mbit", seed=11)
    t = Tunnel(netns, procs, warren_bin, tmp_path, link=link)
    t.target("127.0.0.1:7000")
    start(t, "127.0.0.1:2000=127.0.0.1:7000")
    r = t.app("roundtrip", "--connect", "127.0.0.1:2000",
              "--bytes", str(200 * 1000 * 1000))
    assert r["ok"], r
    stats = link.stop()
    for d in ("a2b", "b2a"):
        assert stats[d]["dropped_loss"] > 100, stats[d]


def test_kcp_100_concurrent_and_half_close(tunnel):
    tunnel.target("127.0.0.1:7000")
    tunnel.target("127.0.0.1:7001", mode="reply", name="target2")
    tunnel.server("--allow", "127.0.0.1:7000", "--allow", "127.0.0.1:7001",
                  *KCP)
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                  "127.0.0.1:2001=127.0.0.1:7001", extra=KCP)
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(1 << 20), "--conns", "100")
    assert r["ok"], r
    r = tunnel.app("halfclose", "--connect", "127.0.0.1:2001",
                   "--bytes", str(5 << 20))
    assert r["ok"], r


def test_kcp_disallowed_target_is_reset(tunnel):
    tunnel.target("127.0.0.1:7000")
    s, _ = start(tunnel, "127.0.0.1:2000=127.0.0.1:7000",
                 "127.0.0.1:2001=127.0.0.1:7999")
    r = tunnel.app("probe", "--connect", "127.0.0.1:2001")
    assert r["end"] in ("reset", "eof"), r
    assert r["secs"] < 3, r
    assert tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                      "--bytes", str(1 << 20))["ok"]
    assert any("127.0.0.1:7999" in line and "denied" in line
               for line in s.log().splitlines()), s.log()


RELAY = r"""
import os, select, socket, sys, time
# A NAT that rebinds: forwards the client's datagrams to the server from a
# source port it replaces every `period` seconds or `every` datagrams up,
# whichever comes first (so a fast transfer sees rebinds too), and the
# answers back.
listen, server, period = sys.argv[1], sys.argv[2], float(sys.argv[3])
every = int(sys.argv[5])
host, port = listen.rsplit(":", 1)
shost, sport = server.rsplit(":", 1)
down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
down.bind((host, int(port)))
def new_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    return s
up, client, changed, rebinds = new_up(), None, time.monotonic(), 0
sent = 0
open(sys.argv[4], "w").close()
while True:
    if time.monotonic() - changed > period or sent >= every:
        up.close()
        up, changed, rebinds = new_up(), time.monotonic(), rebinds + 1
        sent = 0
        print("rebind", rebinds, up.getsockname(), flush=True)
    r, _, _ = select.select([down, up], [], [], 0.1)
    for s in r:
        data, addr = s.recvfrom(65536)
        if s is down:
            client = addr
            up.sendto(data, (shost, int(sport)))
            sent += 1
        elif client:
            down.sendto(data, client)
"""


def test_kcp_session_survives_nat_rebinding(tunnel, procs):
    """The session is bound to keys, not addresses: the client's source
    port changes every second or 4,000 datagrams mid-transfer and no
    stream notices. (The relay is Python, so the transfer is slow: its
    size is modest.)"""
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server("--allow", "127.0.0.1:7000", *KCP)
    ready = os.path.join(tunnel.dir, "relay.ready")
    relay = procs.start("nat", [PY, "-c", RELAY, "127.0.0.1:5000",
                                f"{tunnel.server_ip}:4433", "1.0", ready,
                                "4000"],
                        netns=tunnel.ns_c)
    deadline = time.monotonic() + 10
    while not os.path.exists(ready):
        assert relay.alive() and time.monotonic() < deadline, relay.log()
        time.sleep(0.02)
    argv = [tunnel.bin, "client", "--server", "udp://127.0.0.1:5000",
            "--server-key", tunnel.server_pub, "--key", tunnel.key("client"),
            "-L", "127.0.0.1:2000=127.0.0.1:7000", "--log-level", "debug",
            *KCP]
    c = procs.start("client", argv, netns=tunnel.ns_c)
    c.wait_log("client ready")
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(30 << 20), "--conns", "2")
    assert r["ok"], r
    assert relay.log().count("rebind") >= 2, relay.log()
    # One session from start to end: no new handshake from scratch.
    assert s.log().count("client connected") == 1, s.log()
    assert c.log().count("connected to server") == 1, c.log()


def test_kcp_client_notices_dead_server_and_reconnects(tunnel):
    tunnel.target("127.0.0.1:7000")
    s, c = start(tunnel, "127.0.0.1:2000=127.0.0.1:7000",
                 client_extra=("--dead-peer-timeout", "3s",
                               "--keepalive", "1s"))
    wait_client_up(c)
    assert tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                      "--bytes", str(1 << 20))["ok"]
    t0 = time.monotonic()
    s.stop(sig=signal.SIGKILL)
    c.wait_log("no answer", timeout=10)
    assert time.monotonic() - t0 < 6
    tunnel.server("--allow", "127.0.0.1:7000", *KCP, name="server2")
    wait_client_up(c, n=2)
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(10 << 20))
    assert r["ok"], r


def test_kcp_strangers_get_no_answer(tunnel):
    """Garbage, a client with the wrong server key and an unknown client
    all get silence; the real client's transfer is undisturbed."""
    tunnel.target("127.0.0.1:7000")
    s, c = start(tunnel, "127.0.0.1:2000=127.0.0.1:7000")
    wait_client_up(c)
    script = f"""
import os, socket, select
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3000):
    n = 1 + (i * 37) % 1400
    pkt = os.urandom(n)
    if i % 3 == 0:  # looks like a handshake initiation or transport packet
        pkt = bytes([1 + (i % 2) * 3, 0, 0, 0]) + os.urandom(max(n, 160))
    s.sendto(pkt, ("{tunnel.server_ip}", 4433))
r, _, _ = select.select([s], [], [], 2.0)
print("answered" if r else "silent")
"""
    res = tunnel.netns.exec(tunnel.ns_c, [PY, "-c", script])
    assert res.stdout.strip() == "silent"
    wrong = tunnel.client("127.0.0.1:2001=127.0.0.1:7000",
                          server_key=tunnel.other_pub, name="wrong",
                          extra=(*KCP, "--dead-peer-timeout", "2s",
                                 "--keepalive", "1s"))
    r = tunnel.app("probe", "--connect", "127.0.0.1:2001", "--timeout", "20")
    assert r["end"] in ("reset", "eof"), r
    assert "connected to server" not in wrong.log()
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(10 << 20))
    assert r["ok"], r
    assert s.log().count("client connected") == 1


def test_kcp_socks5_both_modes(tunnel, tmp_path):
    """The SOCKS5 front end over the KCP engine: standard mode's confirm
    byte and reply codes, eager mode's one flight."""
    www = tmp_path / "www"
    www.mkdir()
    body = os.urandom(2 << 20)
    (www / "f.bin").write_bytes(body)
    tunnel.procs.start("http", [PY, "-m", "http.server", "--bind",
                                "127.0.0.1", "--directory", str(www), "8000"],
                       netns=tunnel.ns_s)
    deadline = time.monotonic() + 10
    while tunnel.netns.exec(tunnel.ns_s, [PY, "-c", "import socket; "
                            "socket.create_connection(('127.0.0.1', 8000))"],
                            check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    tunnel.server("--allow", "127.0.0.1:8000-8001", *KCP)
    conf = tmp_path / "client.conf"
    conf.write_text(f"""
[client]
server = udp://{tunnel.server_ip}:4433
server-key = {tunnel.server_pub}
key = {tunnel.key("client")}
engine = kcp

[socks5 eager]
listen = 127.0.0.1:1080

[socks5 standard]
listen = 127.0.0.1:1081
eager = no
""")
    c = tunnel.procs.start("client", [tunnel.bin, "client", "-c", str(conf)],
                           netns=tunnel.ns_c)
    c.wait_log("client ready")
    for port in (1080, 1081):
        res = tunnel.netns.exec(tunnel.ns_c, [
            "curl", "-sS", "--max-time", "30", "--socks5-hostname",
            f"127.0.0.1:{port}", "http://127.0.0.1:8000/f.bin"],
            check=False, timeout=60, text=False)
        assert res.returncode == 0, res.stderr
        assert hashlib.sha256(res.stdout).digest() == \
            hashlib.sha256(body).digest()
    # Standard mode reports a refused target with its SOCKS reply code;
    # a target outside the rules is "not allowed by ruleset".
    for url, code in (("http://127.0.0.1:8001/", "5"),
                      ("http://127.0.0.1:9999/", "2")):
        res = tunnel.netns.exec(tunnel.ns_c, [
            "curl", "-sS", "--max-time", "30", "--socks5",
            "127.0.0.1:1081", url], check=False, timeout=60)
        assert res.returncode == 97, (res.returncode, res.stderr)
        assert f"({code})" in res.stderr, res.stderr
