"""The first tunnel end to end: `warren server` and `warren client` in
their own network namespaces, real applications at both ends, data checked
by sha256. Links are veth pairs or the project's link emulator."""

import json
import re
import signal
import subprocess
import time

import pytest

from conftest import needs_root
from linkemu import make_link
from warren import ENGINES, NETAPP, PY, Tunnel, wait_client_up

pytestmark = needs_root

# The kcptun engine speaks kcptun's protocol: no keys (a passphrase), no
# allow rules and one target fixed by the server (Tunnel maps a scenario's
# one allow rule and its forwards onto that). A scenario about rules does
# not apply to it; test_kcptun.py runs it against the real kcptun.
NO_KCPTUN = ("kcptun has no allow rules: its server serves one fixed "
             "target (see test_kcptun.py)")


@pytest.fixture
def tunnel(netns, procs, warren_bin, tmp_path):
    return Tunnel(netns, procs, warren_bin, tmp_path)


def engines(*, kcptun=False, kcptun_skip=None):
    """Parameters for a scenario that runs on every engine: kcptun=True
    runs it on the kcptun profile too (warren at both ends); kcptun_skip
    says why kcptun is not one of them (it shows as a skipped case, not as
    an omission)."""
    ps = [pytest.param(e, id=e) for e in ENGINES]
    if kcptun:
        ps.append(pytest.param("kcptun", id="kcptun"))
    elif kcptun_skip:
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
    tunnel.server(allow=["127.0.0.1:7000"])
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(200 * 1000 * 1000))
    assert r["ok"], r


# The seeds are the ones each engine's copy of this test used before it
# was parametrised.
LOSSY_SEED = {"quic": 7, "kcp": 11, "kcptun": 13}


@pytest.mark.parametrize("engine", engines(kcptun=True))
def test_200mb_over_lossy_emulated_link(netns, procs, warren_bin, tmp_path,
                                        engine):
    link = make_link(netns, procs,
                     both="delay=25ms,loss=1%,rate=100mbit",
                     seed=LOSSY_SEED[engine])
    t = Tunnel(netns, procs, warren_bin, tmp_path, link=link, engine=engine)
    t.target("127.0.0.1:7000")
    t.server(allow=["127.0.0.1:7000"])
    t.client("127.0.0.1:2000=127.0.0.1:7000")
    r = t.app("roundtrip", "--connect", "127.0.0.1:2000",
              "--bytes", str(200 * 1000 * 1000))
    assert r["ok"], r
    stats = link.stop()
    # The link really was lossy in both directions.
    for d in ("a2b", "b2a"):
        assert stats[d]["dropped_loss"] > 100, stats[d]


@pytest.mark.parametrize("engine", engines(kcptun=True))
def test_100_concurrent_connections(etunnel):
    tunnel = etunnel
    tunnel.target("127.0.0.1:7000")
    tunnel.server(allow=["127.0.0.1:7000"])
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(1 << 20), "--conns", "100")
    assert r["ok"], r


def test_unix_sockets_on_both_ends(tunnel, tmp_path):
    tsock = str(tmp_path / "target.sock")
    csock = str(tmp_path / "forward.sock")
    tunnel.target(f"unix:{tsock}")
    tunnel.server(allow=[f"unix:{tsock}"])
    tunnel.client(f"unix:{csock}=unix:{tsock}")
    r = tunnel.app("roundtrip", "--connect", f"unix:{csock}",
                   "--bytes", str(20 << 20), "--conns", "4")
    assert r["ok"], r


@pytest.mark.parametrize("engine", engines(kcptun=True))
def test_half_close_carried_both_ways(etunnel):
    tunnel = etunnel
    tunnel.target("127.0.0.1:7000", mode="reply")
    tunnel.server(allow=["127.0.0.1:7000"])
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    r = tunnel.app("halfclose", "--connect", "127.0.0.1:2000",
                   "--bytes", str(5 << 20))
    assert r["ok"], r


def test_wrong_server_key_is_refused_and_said(tunnel):
    tunnel.target("127.0.0.1:7000")
    tunnel.server(allow=["127.0.0.1:7000"])
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
    s = tunnel.server(allow=["127.0.0.1:7000"],
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
    s = tunnel.server(allow=["127.0.0.1:7000"])
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


def test_broad_rules_never_reach_the_server_itself(tunnel):
    """`*:PORT` and 0.0.0.0/0 rules do not open the server's own
    addresses: loopback as a literal, a name resolving to it (localhost),
    and the server's own interface address are all denied, though a target
    listens on every one of them. Only a rule naming the address opens it
    (the first stream, through 127.0.0.1:7001)."""
    tunnel.target("0.0.0.0:7000")
    tunnel.target("127.0.0.1:7001", name="target2")
    s = tunnel.server("--allow", "*:7000", "--allow", "0.0.0.0/0:7000",
                      "--allow", "127.0.0.1:7001")
    tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                  "127.0.0.1:2001=localhost:7000",
                  f"127.0.0.1:2002={tunnel.server_ip}:7000",
                  "127.0.0.1:2003=127.0.0.1:7001")
    assert tunnel.app("roundtrip", "--connect", "127.0.0.1:2003",
                      "--bytes", str(1 << 20))["ok"]
    for port in (2000, 2001, 2002):
        r = tunnel.app("probe", "--connect", f"127.0.0.1:{port}")
        assert r["end"] == "reset", (port, r)
    log = s.log()
    for target in ("127.0.0.1:7000", "localhost:7000",
                   f"{tunnel.server_ip}:7000"):
        assert any(target in line and "denied" in line
                   for line in log.splitlines()), (target, log)


# How each engine's client judges a silent server: (--dead-peer-timeout,
# the least and the most seconds it may take to say so). quic and kcp are
# told 3 s. The kcptun profile judges a dead peer as kcptun's smux does, by
# its keepalive timeout, 30 s (a kcptun server sends a keepalive only every
# 10 s, so less would drop idle sessions; src/engine/kcptun.c raises a
# shorter timeout to that), so it is told 30 s.
DEAD_PEER = {"quic": ("3s", 0, 6), "kcp": ("3s", 0, 6),
             "kcptun": ("30s", 29, 40)}


def kcptun_sessions(log, what=""):
    """The convs of the kcptun sessions a log shows starting, in order:
    `+ CONV = N WHAT`, WHAT being "kcptun session" on a client and the
    client's address on a server."""
    return re.findall(r"\+ ([0-9a-f]{8}) = \d+ " + re.escape(what), log)


@pytest.mark.parametrize("engine", engines(kcptun=True))
def test_client_notices_dead_server_and_reconnects(etunnel):
    """A server killed without a word is noticed within the dead-peer
    timeout (not before it), and when a server is back the client carries
    streams again by itself: quic and kcp with a new handshake; kcptun,
    which has none, on the new session (a new conv) it started when it
    gave up on the old one, which the new server takes."""
    tunnel = etunnel
    timeout, least, most = DEAD_PEER[tunnel.engine]
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server(allow=["127.0.0.1:7000"])
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                      extra=("--dead-peer-timeout", timeout,
                             "--keepalive", "1s"))
    if not tunnel.kcptun:
        wait_client_up(c)
    assert tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                      "--bytes", str(1 << 20))["ok"]
    # The server vanishes without a word.
    t0 = time.monotonic()
    s.stop(sig=signal.SIGKILL)
    c.wait_log("no answer", timeout=most + 5)
    noticed = time.monotonic() - t0
    assert least <= noticed < most, noticed
    # It comes back; the client reconnects by itself.
    s2 = tunnel.server(allow=["127.0.0.1:7000"], name="server2")
    if not tunnel.kcptun:
        wait_client_up(c, n=2)
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(10 << 20))
    assert r["ok"], r
    if tunnel.kcptun:
        convs = kcptun_sessions(c.log(), "kcptun session")
        assert len(convs) == 2 and convs[0] != convs[1], c.log()
        assert f"- {convs[0]} = 0 no answer from the peer" in c.log(), \
            c.log()
        # The old session is never seen by the new server: it carries the
        # client's second session, and only that.
        assert kcptun_sessions(s2.log()) == \
            [convs[1]], s2.log()


# A warren kcptun server sends no smux keepalive while it sends KCP acks
# (src/core/kcp_sess.c: any datagram sent counts as a keepalive), but the
@pytest.mark.parametrize("engine", engines(kcptun=True))
def test_idle_stream_outlives_silence(etunnel):
    """A stream that stays silent for longer than the dead-peer timeout
    still carries data afterwards, on the session it started on: the
    keepalives of both ends keep the session up."""
    tunnel = etunnel
    timeout, _, most = DEAD_PEER[tunnel.engine]
    tunnel.target("127.0.0.1:7000")
    tunnel.server(allow=["127.0.0.1:7000"])
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000",
                      extra=("--dead-peer-timeout", timeout,
                             "--keepalive", "1s"))
    r = tunnel.app("quiet", "--connect", "127.0.0.1:2000",
                   "--secs", str(most + 2), timeout=most + 60, check=False)
    assert r["ok"], r
    assert "no answer" not in c.log(), c.log()
    if tunnel.kcptun:
        assert len(kcptun_sessions(c.log(), "kcptun session")) == 1, c.log()


@pytest.mark.parametrize("engine", engines(kcptun=True))
def test_strangers_get_no_answer(etunnel):
    """Garbage shaped like the engine's packets gets silence, a client with
    the wrong server key gets no tunnel (its forward resets), and the real
    client's transfer is undisturbed, on its one session. On kcptun, whose
    one secret is the passphrase, a client with another passphrase gets
    silence too: its stream waits until it gives up on the session (its
    dead-peer timeout, 30 s) and is then reset, and the server never
    starts a session for it."""
    tunnel = etunnel
    tunnel.target("127.0.0.1:7000")
    s = tunnel.server(allow=["127.0.0.1:7000"])
    c = tunnel.client("127.0.0.1:2000=127.0.0.1:7000")
    if not tunnel.kcptun:
        wait_client_up(c)
    r = tunnel.app("garbage", "--to", f"{tunnel.server_ip}:{tunnel.PORT}",
                   "--looks-like", tunnel.engine)
    assert r["answered"] is False, r
    if tunnel.kcptun:
        timeout, least, most = DEAD_PEER["kcptun"]
        # The session starts with the client, a little before the probe's
        # stream: the least time counts from there.
        t0 = time.monotonic()
        wrong = tunnel.client("127.0.0.1:2001=127.0.0.1:7000",
                              kcptun_key="not the passphrase", name="wrong",
                              extra=("--dead-peer-timeout", timeout))
        r = tunnel.app("probe", "--connect", "127.0.0.1:2001",
                       "--timeout", str(most + 5))
        assert r["end"] == "reset" and r["secs"] < most, r
        assert time.monotonic() - t0 >= least, r
        assert "no answer from the peer" in wrong.log(), wrong.log()
    else:
        wrong = tunnel.client("127.0.0.1:2001=127.0.0.1:7000",
                              server_key=tunnel.other_pub, name="wrong",
                              extra=("--dead-peer-timeout", "2s",
                                     "--keepalive", "1s"))
        r = tunnel.app("probe", "--connect", "127.0.0.1:2001",
                       "--timeout", "20")
        assert r["end"] == "reset", r
        assert "connected to server" not in wrong.log()
    r = tunnel.app("roundtrip", "--connect", "127.0.0.1:2000",
                   "--bytes", str(10 << 20))
    assert r["ok"], r
    if tunnel.kcptun:
        # Every session the server started is one of the real client's.
        # (That client may have had two: test_idle_stream_outlives_silence
        # says why.)
        mine = kcptun_sessions(c.log(), "kcptun session")
        theirs = kcptun_sessions(s.log())
        assert theirs and set(theirs) <= set(mine), (mine, s.log())
    else:
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
