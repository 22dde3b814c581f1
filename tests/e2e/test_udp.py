"""The udp front end end to end: `warren client -U` in one namespace,
`warren server` with udp:// rules in another, and real UDP programs:
dnsmasq answering `dig` through the forward; an echo target for datagram
sizes (1, 1200, 1472, 1500 intact; the tunnel's maximum + 1 dropped and
counted, as the client logs it); 1,000 source ports leaving at most
max-flows flows, all reaped after udp-idle; a target no udp:// rule allows
getting nothing; a flood from many source addresses while another flow
keeps working. Both engines that carry datagrams (quic, kcp); engine
kcptun is refused at start."""

import os
import re
import subprocess
import time

import pytest

from conftest import needs_root
from warren import HERE, PY, Tunnel, argv, wait_client_up, wait_ready_file

UDPAPP = os.path.join(HERE, "udpapp.py")
DNS_PORT = 5300
ECHO_PORT = 7000
OTHER_PORT = 7001  # an echo runs there, but no rule allows it
FWD = 5353

ENGINES = ("quic", "kcp")


def start_echo(t, port, name):
    ready = os.path.join(t.dir, f"{name}.ready")
    count = os.path.join(t.dir, f"{name}.count")
    p = t.procs.start(name, [PY, UDPAPP, "echo", "--listen",
                             f"127.0.0.1:{port}", "--ready", ready,
                             "--count", count], netns=t.ns_s)
    wait_ready_file(p, ready)
    return count


def echo_count(path):
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        return 0


def udp_client(t, *specs, extra=(), conf=None, name="client"):
    """Starts a client with -U specs (or a config file) and waits until it
    is connected: a datagram sent before the session is up is dropped, as
    UDP may drop it, and a test that sent one would be testing a race."""
    a = argv(t.bin, "client", t.url, key=t.key("client"),
             peer_key=t.server_pub, engine=t.engine, mode=t.mode,
             extra=extra)
    for s in specs:
        a += ["-U", s]
    if conf:
        a += ["-c", conf]
    p = t.procs.start(name, a, netns=t.ns_c)
    deadline = time.monotonic() + 15
    while "client ready" not in p.log():
        assert p.alive() and time.monotonic() < deadline, p.log()
        time.sleep(0.05)
    wait_client_up(p)
    return p


def app(t, *args, timeout=120):
    res = t.netns.exec(t.ns_c, [PY, UDPAPP, *args], check=False,
                       timeout=timeout)
    assert res.returncode == 0, f"udpapp {args}:\n{res.stdout}\n{res.stderr}"
    import json
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(params=ENGINES)
def tun(request, netns, procs, warren_bin, tmp_path):
    return Tunnel(netns, procs, warren_bin, tmp_path, engine=request.param)


# Datagrams over the stream carriers: what users behind a UDP block need.
# The size test is the one that crosses every carrier's arithmetic (one
# packet or two fragments); DNS is the everyday case.
@pytest.fixture(params=[(e, c) for e in ENGINES for c in ("tcp", "tls")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def tun_stream(request, netns, procs, warren_bin, tmp_path):
    engine, carrier = request.param
    return Tunnel(netns, procs, warren_bin, tmp_path, engine=engine,
                  carrier=carrier)


@needs_root
def test_dns_through_udp_forward(tun):
    check_dns(tun)


@needs_root
def test_dns_over_stream_carriers(tun_stream):
    check_dns(tun_stream)


def check_dns(t):
    t.procs.start("dnsmasq", ["dnsmasq", "--no-daemon", f"--port={DNS_PORT}",
                              "--listen-address=127.0.0.1",
                              "--bind-interfaces", "--no-resolv",
                              "--no-hosts",
                              "--address=/test.example/10.1.2.3"],
                  netns=t.ns_s)
    t.server("--allow", f"udp://127.0.0.1:{DNS_PORT}")
    udp_client(t, f"127.0.0.1:{FWD}=127.0.0.1:{DNS_PORT}")
    for name, want in (("test.example", "10.1.2.3"),
                       ("a.test.example", "10.1.2.3")):
        out = t.netns.exec(t.ns_c, ["dig", "@127.0.0.1", "-p", str(FWD),
                                    name, "+short", "+tries=3",
                                    "+time=2"], check=False, timeout=30)
        assert out.stdout.strip() == want, out.stdout + out.stderr


@needs_root
def test_sizes_intact_and_max_plus_one_dropped(tun):
    check_sizes(tun)


@needs_root
def test_sizes_over_stream_carriers(tun_stream):
    check_sizes(tun_stream)


def check_sizes(t):
    count = start_echo(t, ECHO_PORT, "echo")
    t.server("--allow", f"udp://127.0.0.1:{ECHO_PORT}")
    c = udp_client(t, f"127.0.0.1:{FWD}=127.0.0.1:{ECHO_PORT}")
    to = f"127.0.0.1:{FWD}"
    r = app(t, "sizes", "--to", to, "--sizes", "1,1200,1472,1500")
    assert r["ok"] == [1, 1200, 1472, 1500], r
    # Far above any maximum: the client says what the maximum is.
    before = echo_count(count)
    app(t, "sizes", "--to", to, "--sizes", "60000", "--wait", "0.5")
    m = re.search(r"carries at most (\d+) now", c.log())
    assert m, c.log()
    mx = int(m.group(1))
    assert mx >= 1500
    if t.engine == "quic" and t.carrier == "udp":
        # Path MTU discovery has taken the path from QUIC's first 1200
        # bytes to 1444 (ngtcp2's largest probe on a 1500-byte path): the
        # datagrams sent so far gave it write passes to probe in.
        assert mx > 2310, c.log()
    r = app(t, "sizes", "--to", to, "--sizes", f"{mx},{mx + 1}",
            "--wait", "1")
    assert r["ok"] == [mx] and r["lost"] == [mx + 1], r
    # The maximum went through once; the others never reached the echo.
    assert echo_count(count) - before in (1, 2, 3)
    c.stop()
    m = re.search(r"dropped (\d+) too large", c.log())
    assert m and int(m.group(1)) >= 4, c.log()  # 60000 x3, mx+1 x3


@needs_root
def test_many_ports_capped_and_reaped(tun):
    t = tun
    start_echo(t, ECHO_PORT, "echo")
    t.server("--allow", f"udp://127.0.0.1:{ECHO_PORT}")
    conf = os.path.join(t.dir, "client.conf")
    with open(conf, "w") as f:
        f.write(f"[udp dns]\nlisten = 127.0.0.1:{FWD}\n"
                f"target = 127.0.0.1:{ECHO_PORT}\nudp-idle = 2s\n"
                "max-flows = 64\n")
    c = udp_client(t, conf=conf)
    r = app(t, "ports", "--to", f"127.0.0.1:{FWD}", "--n", "1000")
    assert r["answered"] >= 950, r
    assert "evicting the one idle longest" in c.log()
    time.sleep(3.5)  # udp-idle plus a reap period, with slack
    reaped = [(int(a), int(b)) for a, b in re.findall(
        r"dns: reaped (\d+) idle flows, (\d+) left", c.log())]
    assert reaped, c.log()
    # At most the cap was ever live, and all of it was reaped.
    assert sum(a for a, _ in reaped) <= 64
    assert reaped[-1][1] == 0


@needs_root
def test_disallowed_target_gets_nothing(tun):
    t = tun
    start_echo(t, ECHO_PORT, "echo")
    other = start_echo(t, OTHER_PORT, "other")
    # A stream rule for the very port, and UDP for another: neither
    # allows this flow.
    t.server("--allow", f"udp://127.0.0.1:{ECHO_PORT}",
             "--allow", f"127.0.0.1:{OTHER_PORT}")
    c = udp_client(t, f"127.0.0.1:{FWD}=127.0.0.1:{OTHER_PORT}")
    r = app(t, "sizes", "--to", f"127.0.0.1:{FWD}", "--sizes", "10,20",
            "--wait", "1")
    assert r["ok"] == [], r
    c.wait_log("the server refused target udp://127.0.0.1:7001")
    assert echo_count(other) == 0


@needs_root
@pytest.mark.xfail(reason="open finding (quic, 19:47): under a 2,000-source "
                   "flood of ~75k datagrams/s the probe flow got no answers "
                   "at all; not yet known whether the tunnel's datagram "
                   "queue (drop oldest), the flow caps or the front end "
                   "starve it", strict=False)
def test_flood_of_sources_keeps_other_flows(tun):
    t = tun
    start_echo(t, ECHO_PORT, "echo")
    t.server("--allow", f"udp://127.0.0.1:{ECHO_PORT}")
    conf = os.path.join(t.dir, "client.conf")
    with open(conf, "w") as f:
        f.write(f"[udp f]\nlisten = 0.0.0.0:{FWD}\n"
                f"target = 127.0.0.1:{ECHO_PORT}\nmax-flows = 256\n")
    c = udp_client(t, conf=conf)

    def rss_kib():
        with open(f"/proc/{c.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    r0 = rss_kib()
    r = app(t, "flood", "--to", f"127.0.0.1:{FWD}", "--sources", "2000",
            "--seconds", "4")
    assert r["probes"] >= 20, r
    # The probe flow is the most recently active one whenever a flooding
    # source needs room, so it is never the one evicted.
    assert r["answered"] >= 0.8 * r["probes"], r
    assert rss_kib() - r0 < 64 * 1024, (r0, rss_kib())


def test_kcptun_refuses_udp_forward(warren_bin, tmp_path):
    res = subprocess.run([warren_bin, "client", "--engine", "kcptun",
                          "--kcptun-key", "a secret both ends know",
                          "--server", "udp://127.0.0.1:29900",
                          "-U", "127.0.0.1:5353=10.0.0.9:53"],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode != 0
    assert "engine kcptun carries no datagrams" in res.stderr + res.stdout
