"""The first tunnel end to end: `warren server` and `warren client` in
their own network namespaces, real applications at both ends, data checked
by sha256. Links are veth pairs or the project's link emulator."""

import json
import signal
import subprocess
import time

import pytest

from conftest import needs_root
from linkemu import make_link
from warren import ENGINES, NETAPP, PY, Tunnel, wait_client_up

pytestmark = needs_root

# The kcptun engine speaks kcptun's protocol: it has no keys, no allow rules
# and one fixed target, so the scenarios about keys and rules do not apply
# to it; test_kcptun.py runs it against the real kcptun.
NO_KCPTUN = "kcptun has no keys and no allow rules (see test_kcptun.py)"


@pytest.fixture
def tunnel(netns, procs, warren_bin, tmp_path):
    return Tunnel(netns, procs, warren_bin, tmp_path)


def engines(*, kcptun_skip=None):
    """Parameters for a scenario that runs on every engine; kcptun_skip says
    why kcptun is not one of them (it shows as a skipped case, not as an
    omission)."""
    ps = [pytest.param(e, id=e) for e in ENGINES]
    if kcptun_skip:
        ps.append(pytest.param("kcptun", id="kcptun",
                               marks=pytest.mark.skip(reason=kcptun_skip)))
    return ps


@pytest.fixture
def etunnel(netns, procs, warren_bin, tmp_path, engine):
    """A Tunnel on the engine this case is parametrised with."""
    return Tunnel(netns, procs, warren_bin, tmp_path, engine=engine)


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


# The seeds are the ones each engine's copy of this test used before it
# was parametrised.
LOSSY_SEED = {"quic": 7, "kcp": 11}


@pytest.mark.parametrize("engine", engines())
def test_200mb_over_lossy_emulated_link(netns, procs, warren_bin, tmp_path,
                                        engine):
    link = make_link(netns, procs,
                     both="delay=25ms,loss=1%,rate=100mbit",
                     seed=LOSSY_SEED[engine])
    t = Tunnel(netns, procs, warren_bin, tmp_path, link=link, engine=engine)
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


@pytest.mark.parametrize("engine", engines())
def test_100_concurrent_connections(etunnel):
    tunnel = etunnel
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


@pytest.mark.parametrize("engine", engines())
def test_half_close_carried_both_ways(etunnel):
    tunnel = etunnel
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
    # The server answers only clients that prove they know its key
    # (docs/wire-format.md, "Initial token"): this one hears nothing, so
    # it never learns the server's real key, and says what to check.
    c.wait_log("is the server key right?", timeout=20)
    assert tunnel.server_pub not in c.log()
    # A connection to the forward is not carried anywhere: the forward
    # resets it (src/front/forward.c: a tunnel that takes no stream, or a
    # stream that fails, closes the socket with a reset, never a FIN).
    r = tunnel.app("probe", "--connect", "127.0.0.1:2000", "--timeout", "20")
    assert r["end"] == "reset", r
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
    # As with a wrong server key: no tunnel, so the forward resets.
    r = tunnel.app("probe", "--connect", "127.0.0.1:2000", "--timeout", "20")
    assert r["end"] == "reset", r
    assert "client connected" not in s.log()
    assert c.alive() and s.alive()


@pytest.mark.parametrize("engine", engines(kcptun_skip=NO_KCPTUN))
def test_disallowed_target_is_reset_and_only_that_stream(etunnel):
    """The server's dialer resets a stream to a target outside its rules
    (WN_STREAM_DENIED); the client's relay turns that into a TCP reset, so
    the application sees a reset, never an EOF that would look like an
    empty answer. Other streams go on."""
    tunnel = etunnel
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
            assert r["end"] == "reset", r
            assert r["secs"] < 3, r
        out, _ = bg.communicate(timeout=300)
    finally:
        if bg.poll() is None:
            bg.kill()
    assert json.loads(out.strip().splitlines()[-1])["ok"], out
    assert any("127.0.0.1:7001" in line and "denied" in line
               for line in s.log().splitlines()), s.log()


@pytest.mark.parametrize("engine", engines())
def test_client_notices_dead_server_and_reconnects(etunnel):
    tunnel = etunnel
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


@pytest.mark.parametrize("engine", engines(kcptun_skip=NO_KCPTUN))
def test_strangers_get_no_answer(etunnel):
    """Garbage shaped like the engine's packets gets silence, a client with
    the wrong server key gets no tunnel (its forward resets), and the real
    client's transfer is undisturbed, on its one session."""
    tunnel = etunnel
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server("--allow", "127.0.0.1:7000")
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    wait_client_up(c)
    r = tunnel.app("garbage", "--to", f"{tunnel.server_ip}:{tunnel.PORT}",
                   "--looks-like", tunnel.engine)
    assert r["answered"] is False, r
    wrong = tunnel.client("127.0.0.1:2001=127.0.0.1:7000",
                          server_key=tunnel.other_pub, name="wrong",
                          extra=("--dead-peer-timeout", "2s",
                                 "--keepalive", "1s"))
    r = tunnel.app("probe", "--connect", "127.0.0.1:2001", "--timeout", "20")
    assert r["end"] == "reset", r
    assert "connected to server" not in wrong.log()
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(10 << 20))
    assert r["ok"], r
    assert s.log().count("client connected") == 1, s.log()


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
    t.target("[::1]:7000", ns=ns)
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
