"""The SOCKS5 front end end to end: real curl through `warren client`'s
SOCKS5 proxy in one namespace, `warren server` and an HTTP server in
another, in eager and standard mode; bodies checked by sha256. Also denied
and unreachable targets, username/password, and malformed requests from a
raw socket while another transfer runs."""

import hashlib
import json
import os
import re
import subprocess
import time

import pytest

from conftest import needs_root
from warren import HERE, NETAPP, PY, Tunnel

SOCKSCLIENT = os.path.join(HERE, "socksclient.py")

pytestmark = needs_root

HTTP_PORT = 8000
CLOSED_PORT = 8001  # allowed, nothing listens
DENIED_PORT = 9000  # an HTTP server runs there, but no rule allows it
EAGER, STANDARD, AUTH = 1080, 1081, 1082
CURL_PROXY_ERROR = 97  # CURLE_PROXY: the SOCKS server said no


class Socks:
    """A Tunnel with HTTP servers in the server namespace and a client
    with three SOCKS5 proxies: eager, standard, and eager with users."""

    def __init__(self, t, tmp_path, body_mib=4, client_extra=()):
        self.t = t
        self.dir = tmp_path
        www = tmp_path / "www"
        www.mkdir()
        body = os.urandom(body_mib << 20)
        (www / "file.bin").write_bytes(body)
        self.sha = hashlib.sha256(body).hexdigest()
        self.size = len(body)
        for port, name in ((HTTP_PORT, "http"), (DENIED_PORT, "http2")):
            t.procs.start(name, [PY, "-m", "http.server", "--bind",
                                 "127.0.0.1", "--directory", str(www),
                                 str(port)], netns=t.ns_s)
        for port in (HTTP_PORT, DENIED_PORT):
            self.wait_port(t.ns_s, port)
        t.server("--allow", f"localhost:{HTTP_PORT}",
                 "--allow", f"127.0.0.1:{HTTP_PORT}-{CLOSED_PORT}")
        conf = tmp_path / "client.conf"
        conf.write_text(f"""
[client]
server = udp://{t.server_ip}:4433
server-key = {t.server_pub}
key = {t.key("client")}
log-level = debug

[socks5 eager]
listen = 127.0.0.1:{EAGER}

[socks5 standard]
listen = 127.0.0.1:{STANDARD}
eager = no

[socks5 auth]
listen = 127.0.0.1:{AUTH}
user = alice:s3cret
users-file = users
""")
        # It holds a password (user =): owner only, as a users-file.
        os.chmod(conf, 0o600)
        users = tmp_path / "users"
        users.write_text("# name:password\nbob:hunter2:with:colons\n")
        os.chmod(users, 0o600)
        res = subprocess.run([t.bin, "check", "-c", str(conf)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "socks5 standard: tcp://127.0.0.1:1081, standard, 0 users" \
            in res.stdout, res.stdout
        assert "socks5 auth: tcp://127.0.0.1:1082, eager, 2 users" in res.stdout
        self.client = t.procs.start(
            "client", [t.bin, "client", "-c", str(conf), *client_extra],
            netns=t.ns_c)
        self.client.wait_log("client ready")

    def wait_port(self, ns, port, timeout=10.0):
        res = self.t.netns.exec(ns, [PY, NETAPP, "wait", "--connect",
                                     f"127.0.0.1:{port}", "--accept",
                                     "--timeout", str(timeout)],
                                check=False, timeout=timeout + 10)
        assert res.returncode == 0, res.stdout + res.stderr

    def curl(self, proxy_port, url, hostname=True, user=None, extra=(),
             timeout=120):
        flag = "--socks5-hostname" if hostname else "--socks5"
        argv = ["curl", "-sS", "--max-time", "60", flag,
                f"127.0.0.1:{proxy_port}", *extra]
        if user:
            argv += ["--proxy-user", user]
        argv.append(url)
        res = subprocess.run(["ip", "netns", "exec", self.t.ns_c, *argv],
                             capture_output=True, timeout=timeout)
        return res.returncode, res.stdout, res.stderr.decode(errors="replace")

    def fetch_ok(self, proxy_port, host="localhost", **kw):
        rc, body, err = self.curl(
            proxy_port, f"http://{host}:{HTTP_PORT}/file.bin", **kw)
        assert rc == 0, err
        assert len(body) == self.size
        assert hashlib.sha256(body).hexdigest() == self.sha


def offers_udp_associate(client):
    """Whether the client's SOCKS5 proxies take UDP ASSOCIATE: each says
    so when it starts ("socks5 NAME: on ADDR, ..., UDP ASSOCIATE"), when
    its tunnel carries datagrams."""
    return re.search(r"socks5 \S+: on .*, UDP ASSOCIATE$", client.log(),
                     re.M) is not None


@pytest.fixture
def socks(netns, procs, warren_bin, tmp_path):
    return Socks(Tunnel(netns, procs, warren_bin, tmp_path), tmp_path)


@pytest.mark.parametrize("mode", ["eager", "standard"])
def test_curl_fetches_in_both_modes(socks, mode):
    port = EAGER if mode == "eager" else STANDARD
    # The name travels to the server and is resolved there.
    socks.fetch_ok(port, "localhost", hostname=True)
    # curl resolves, an IPv4 address travels.
    socks.fetch_ok(port, "127.0.0.1", hostname=False)
    # Several at once.
    procs = [subprocess.Popen(
        ["ip", "netns", "exec", socks.t.ns_c, "curl", "-sS", "-o", "-",
         "--socks5-hostname", f"127.0.0.1:{port}",
         f"http://localhost:{HTTP_PORT}/file.bin"],
        stdout=subprocess.PIPE) for _ in range(8)]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        assert hashlib.sha256(out).hexdigest() == socks.sha


def test_denied_target(socks):
    url = f"http://127.0.0.1:{DENIED_PORT}/file.bin"
    # Standard mode: the SOCKS reply says "not allowed by ruleset" (2).
    rc, body, err = socks.curl(STANDARD, url)
    assert rc == CURL_PROXY_ERROR, err
    assert body == b""
    assert "(2)" in err or "not allowed" in err, err
    # Eager mode: curl was told "succeeded"; the connection then closes
    # without a byte of the target's data.
    rc, body, err = socks.curl(EAGER, url)
    assert rc != 0, err
    assert body == b""
    # A name no rule allows is denied without a lookup.
    rc, body, err = socks.curl(STANDARD, "http://example.invalid:80/")
    assert rc == CURL_PROXY_ERROR, err
    assert "(2)" in err or "not allowed" in err, err


def test_unreachable_target(socks):
    url = f"http://127.0.0.1:{CLOSED_PORT}/"
    rc, body, err = socks.curl(STANDARD, url)
    assert rc == CURL_PROXY_ERROR, err
    assert "(5)" in err or "refused" in err.lower(), err
    rc, body, err = socks.curl(EAGER, url)
    assert rc != 0 and body == b"", err
    # The proxy still works afterwards.
    socks.fetch_ok(STANDARD)
    socks.fetch_ok(EAGER)


def test_username_password(socks):
    socks.fetch_ok(AUTH, user="alice:s3cret")
    socks.fetch_ok(AUTH, user="bob:hunter2:with:colons")
    for user in ("alice:wrong", "mallory:s3cret", "alice:s3cret2", "bob:"):
        rc, body, err = socks.curl(
            AUTH, f"http://localhost:{HTTP_PORT}/file.bin", user=user)
        assert rc == CURL_PROXY_ERROR, (user, err)
        assert body == b""
    # Without credentials the client is offered nothing it can use.
    rc, body, err = socks.curl(AUTH, f"http://localhost:{HTTP_PORT}/")
    assert rc == CURL_PROXY_ERROR, err


def test_malformed_requests_disturb_nothing(socks):
    # A long transfer through the same proxy runs meanwhile.
    bg = subprocess.Popen(
        ["ip", "netns", "exec", socks.t.ns_c, "curl", "-sS", "-o", "-",
         "--limit-rate", "1M", "--socks5-hostname", f"127.0.0.1:{EAGER}",
         f"http://localhost:{HTTP_PORT}/file.bin"], stdout=subprocess.PIPE)
    slow = subprocess.Popen(
        ["ip", "netns", "exec", socks.t.ns_c, PY, SOCKSCLIENT,
         "partial-greetings", str(EAGER)],
        stdout=subprocess.PIPE, text=True)
    try:
        for port in (EAGER, STANDARD):
            res = socks.t.netns.exec(socks.t.ns_c, [PY, SOCKSCLIENT,
                                                    "malformed", str(port)],
                                     timeout=60)
            r = {k: (bytes.fromhex(v[0]), v[1]) for k, v in
                 json.loads(res.stdout).items()}
            # A reply (if any), then the end: a FIN, or a reset when the
            # client's unread bytes were still queued at the close.
            ends = ("eof", "reset")
            assert r["socks4"][0] == b"" and r["socks4"][1] in ends, r
            assert r["http"][0] == b"" and r["http"][1] in ends, r
            for k, rep in (("bad_atyp", 8), ("bind", 7), ("huge_name", 4)):
                assert r[k][0] == bytes([5, rep, 0, 1]) + bytes(6), (k, r)
                assert r[k][1] in ends, (k, r)
            # UDP ASSOCIATE (the QUIC tunnel carries datagrams, and the
            # proxy says so when it starts) is answered with the relay's
            # address on loopback and the connection stays open, as the
            # association lasts as long.
            assert offers_udp_associate(socks.client), socks.client.log()
            assert r["udp"][0][:8] == bytes([5, 0, 0, 1, 127, 0, 0, 1]), r
            assert r["udp"][0][8:10] != bytes(2), r
            assert r["udp"][1] == "open", r
            assert r["short_methods"] == (b"", "open"), r
            # 255 methods incl. none(0): method 0 chosen; the junk after
            # is a bad request (version 0).
            assert r["junk_after"][0][:2] == bytes([5, 0]), r
            assert r["junk_after"][0][2:4] == bytes([5, 1]), r
            # Good requests still work on the same proxy.
            socks.fetch_ok(port)
        out, _ = bg.communicate(timeout=120)
        assert bg.returncode == 0
        assert hashlib.sha256(out).hexdigest() == socks.sha
        # The partial greetings were closed by the handshake timeout.
        sout, _ = slow.communicate(timeout=60)
        ends, secs = sout.split()
        assert "open" not in ends and "data" not in ends, sout
    finally:
        for p in (bg, slow):
            if p.poll() is None:
                p.kill()
    assert socks.client.alive()


DNS_NAME = "host.warren.test"
DNS_ANSWER = "10.9.8.7"
DNS_PORT = 53
DNS_DENIED_PORT = 5353  # a second dnsmasq no rule allows


def start_dnsmasq(t, port, name):
    """dnsmasq on the server namespace's loopback, answering DNS_NAME with
    DNS_ANSWER and nothing else (no upstream, no hosts file)."""
    p = t.procs.start(name, ["dnsmasq", "--keep-in-foreground",
                             "--conf-file=/dev/null", "--no-resolv",
                             "--no-hosts", "--bind-interfaces",
                             "--listen-address=127.0.0.1", f"--port={port}",
                             f"--address=/{DNS_NAME}/{DNS_ANSWER}",
                             "--pid-file=", "--user=root",
                             "--log-facility=-", "--log-queries"],
                      netns=t.ns_s)
    deadline = time.monotonic() + 10
    while True:
        res = t.netns.exec(t.ns_s, ["dig", "+short", "+time=1", "+tries=1",
                                    "-p", str(port), "@127.0.0.1", DNS_NAME],
                           check=False)
        if res.stdout.strip() == DNS_ANSWER:
            return p
        assert time.monotonic() < deadline and p.alive(), \
            f"dnsmasq did not answer: {res.stdout}{res.stderr}\n{p.log()}"
        time.sleep(0.2)


@pytest.mark.parametrize("engine", ["quic", "kcp"])
def test_udp_associate_dns(netns, procs, warren_bin, tmp_path, engine):
    """DNS through SOCKS5 UDP ASSOCIATE (our own client: no Debian program
    speaks it) to a dnsmasq in the server namespace that a udp:// rule
    allows: every answer right and labelled with its source. A second
    dnsmasq no rule allows gets nothing: the server drops the flow and
    says so, and the client drops the rest at the proxy."""
    t = Tunnel(netns, procs, warren_bin, tmp_path, engine=engine)
    start_dnsmasq(t, DNS_PORT, "dnsmasq")
    denied = start_dnsmasq(t, DNS_DENIED_PORT, "dnsmasq-denied")
    server = t.server("--allow", f"udp://127.0.0.1:{DNS_PORT}")
    c = t.client(extra=["-D", f"127.0.0.1:{EAGER}"])
    assert offers_udp_associate(c), c.log()
    res = netns.exec(t.ns_c, [PY, SOCKSCLIENT, "udp-dns", str(EAGER),
                              "127.0.0.1", DNS_NAME, "--count", "5"],
                     timeout=60)
    r = json.loads(res.stdout)
    assert r["rep"] == 0, r
    assert r["relay"].startswith("127.0.0.1:"), r
    assert r["answers"] == [[DNS_ANSWER]] * 5, r
    assert r["source"] == [f"127.0.0.1:{DNS_PORT}"] * 5, r
    # The disallowed target: no answer, nothing reached it.
    before = denied.log().count("query[A]")
    res = netns.exec(t.ns_c, [PY, SOCKSCLIENT, "udp-dns", str(EAGER),
                              "127.0.0.1", DNS_NAME, "--dns-port",
                              str(DNS_DENIED_PORT), "--count", "3",
                              "--timeout", "1"], timeout=60)
    r = json.loads(res.stdout)
    assert r["rep"] == 0, r
    assert r["answers"] == [None] * 3, r
    assert denied.log().count("query[A]") == before, denied.log()
    assert "not allowed" in server.log() or "denied" in server.log(), \
        server.log()
    assert c.alive() and server.alive()


def test_dash_d_flag(netns, procs, warren_bin, tmp_path):
    t = Tunnel(netns, procs, warren_bin, tmp_path)
    www = tmp_path / "www"
    www.mkdir()
    (www / "x").write_bytes(b"hello through -D\n")
    procs.start("http", [PY, "-m", "http.server", "--bind", "127.0.0.1",
                         "--directory", str(www), str(HTTP_PORT)],
                netns=t.ns_s)
    # localhost resolves to loopback, which only a rule naming the address
    # opens (a name rule never does).
    t.server("--allow", f"127.0.0.1:{HTTP_PORT}")
    sock = str(tmp_path / "socks.sock")
    argv = [t.bin, "client", "--server", f"udp://{t.server_ip}:4433",
            "--server-key", t.server_pub, "--key", t.key("client"),
            "-D", "127.0.0.1:1080", "-D", f"unix:{sock}"]
    c = procs.start("client", argv, netns=t.ns_c)
    c.wait_log("client ready")
    assert "socks5 D1" in c.log() and "socks5 D2" in c.log()
    deadline = time.monotonic() + 10
    while True:
        res = netns.exec(t.ns_c, ["curl", "-sS", "--socks5-hostname",
                                  "127.0.0.1:1080",
                                  f"http://localhost:{HTTP_PORT}/x"],
                         check=False)
        if res.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert res.stdout == "hello through -D\n", res.stderr
    # The unix socket proxy speaks SOCKS5 too.
    res = netns.exec(t.ns_c, [PY, SOCKSCLIENT, "fetch", f"unix:{sock}",
                              "localhost", str(HTTP_PORT), "/x"], check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith("hello through -D\n"), res.stdout
