"""What is KCP-specific end to end: the session surviving NAT rebinding,
and the SOCKS5 front end's two modes from a config file with `engine = kcp`.
The general scenarios (lossy link, 100 connections, half-close, disallowed
target, dead server, strangers) run on every engine in test_tunnel.py."""

import hashlib
import os

import pytest

from conftest import needs_root
from warren import HERE, NETAPP, PY, Tunnel, wait_client_up, wait_ready_file

pytestmark = needs_root


@pytest.fixture
def tunnel(netns, procs, warren_bin, tmp_path):
    return Tunnel(netns, procs, warren_bin, tmp_path, engine="kcp")


def test_kcp_session_survives_nat_rebinding(tunnel, procs):
    """The session is bound to keys, not addresses: the client's source
    port changes every second or 4,000 datagrams mid-transfer and no
    stream notices. (The relay is Python, so the transfer is slow: its
    size is modest.)"""
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server("--allow", "127.0.0.1:7000")
    ready = os.path.join(tunnel.dir, "relay.ready")
    relay = procs.start("nat", [PY, os.path.join(HERE, "natrelay.py"),
                                "127.0.0.1:5000",
                                f"{tunnel.server_ip}:{tunnel.PORT}", "1.0",
                                ready, "4000"],
                        netns=tunnel.ns_c)
    wait_ready_file(relay, ready)
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                      url="udp://127.0.0.1:5000")
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(30 << 20), "--conns", "2")
    assert r["ok"], r
    assert relay.log().count("rebind") >= 2, relay.log()
    # One session from start to end: no new handshake from scratch.
    assert s.log().count("client connected") == 1, s.log()
    assert c.log().count("connected to server") == 1, c.log()


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
    tunnel.netns.exec(tunnel.ns_s, [PY, NETAPP, "wait", "--connect",
                                    "127.0.0.1:8000", "--accept",
                                    "--timeout", "10"], timeout=20)
    tunnel.server("--allow", "127.0.0.1:8000-8001")
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


def test_kcp_one_key_many_clients_is_named(tunnel):
    """A key is one client: each new client with it replaces the session
    of the one before. Three of them within a minute (clients that share
    a key, or a client restarted in a loop) and the server says what is
    going on, rather than leaving the operator with failing streams."""
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server("--allow", "127.0.0.1:7000")
    for i in range(4):
        wait_client_up(tunnel.client(f"127.0.0.1:{2000 + i}=127.0.0.1:7000",
                                     name=f"client{i}"))
    s.wait_log("is its key used by more than one client?")
    assert s.log().count("replaced by a new session") >= 3, s.log()
