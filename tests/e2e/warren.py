"""Helpers to run warren end to end, shared by the e2e tests and the bench.

- `argv(...)` is the one place warren's command line is assembled from a
  role, an engine and options; `Tunnel` (tests) and bench/wnb/subjects.py
  both build their command lines with it.
- `Tunnel` is a client namespace and a server namespace (a veth pair, or a
  link from linkemu.make_link), keys for a server, a client and a stranger,
  and methods that start warren and the applications at both ends, on any
  engine: on kcptun (no keys, no allow rules, one fixed target) it maps
  the same calls onto kcptun's terms.
- `wait_client_up` waits for a client's n-th tunnel to come up.

This module imports nothing from pytest, so bench/ can import it too (it
puts tests/e2e on sys.path)."""

import json
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETAPP = os.path.join(HERE, "netapp.py")
PY = "/usr/bin/python3"

# The engines a general scenario runs on. Tunnel runs KCP in the mode the
# README recommends.
ENGINES = ("quic", "kcp")
TEST_MODE = {"kcp": "fast3"}

# The passphrase of kcptun-profile tunnels (a non-default one, so a test
# proves both ends were given it).
KCPTUN_KEY = "warren e2e kcptun passphrase"


def engine_args(engine, mode=None):
    """The flags that select `engine` (and its mode, if any). quic is the
    default and gets no flag, so builds from before --engine run too."""
    a = [] if engine == "quic" else ["--engine", engine]
    if mode:
        a += ["--mode", mode]
    return a


def argv(binary, role, url, *, key=None, peer_key=None, engine="quic",
         mode=None, forwards=(), allow=(), target=None, kcptun_key=None,
         log_level="debug", extra=()):
    """warren's command line for `role` ("server" or "client").

    url is the server's carrier URL (`--listen` for a server, `--server`
    for a client), or a list of them (a client with several carriers, a
    server listening on several); key is this end's key file; peer_key is the other end's
    public key (`--allow-client` for a server, `--server-key` for a
    client); forwards are `-L` specs (client); allow are `--allow` rules
    (server); target is a kcptun-profile server's one `--target`;
    kcptun_key is the kcptun profile's `--kcptun-key`. extra comes last, so
    it can override anything before it."""
    urls = [url] if isinstance(url, str) else list(url)
    if role == "server":
        a = [binary, "server"]
        for u in urls:
            a += ["--listen", u]
        if key:
            a += ["--key", key]
        if peer_key:
            a += ["--allow-client", peer_key]
        for rule in allow:
            a += ["--allow", rule]
        if target:
            a += ["--target", target]
    elif role == "client":
        a = [binary, "client"]
        for u in urls:
            a += ["--server", u]
        if peer_key:
            a += ["--server-key", peer_key]
        if key:
            a += ["--key", key]
        for f in forwards:
            a += ["-L", f]
    else:
        raise ValueError(f"unknown role {role!r}")
    if kcptun_key:
        a += ["--kcptun-key", kcptun_key]
    if log_level:
        a += ["--log-level", log_level]
    return a + engine_args(engine, mode) + list(extra)


def has_udp_forward(binary):
    """Whether this warren has the udp front end (`-U`) and with it the
    server's udp:// allow rules: a client refuses an option it does not
    know as an "unexpected argument" before it needs any other setting."""
    res = subprocess.run([binary, "client", "-U", "127.0.0.1:1=127.0.0.1:2"],
                         capture_output=True, text=True, timeout=10)
    return "-U: unexpected argument" not in res.stdout + res.stderr


def wait_client_up(client, n=1, timeout=20.0):
    """Wait until `client` (a started process) has logged its n-th
    "connected to server"."""
    deadline = time.monotonic() + timeout
    while client.log().count("connected to server") < n:
        assert time.monotonic() < deadline, client.log()
        time.sleep(0.05)


def wait_ready_file(proc, path, timeout=10.0):
    """Wait for a helper that signals readiness by creating `path`."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.alive() and time.monotonic() < deadline, proc.log()
        time.sleep(0.02)


class Tunnel:
    """A client namespace and a server namespace, keys, and helpers to start
    warren (on `engine`) and the applications at both ends.

    The same calls work on every engine. On kcptun, whose protocol has no
    keys, no allow rules and one target fixed by the server: both ends get
    KCPTUN_KEY instead of key files, the server's one allow rule becomes
    its `--target`, and a forward `LISTEN=TARGET` becomes `LISTEN` (a
    kcptun stream carries no target), TARGET having to be the server's. A
    scenario that needs more than that does not fit kcptun."""

    PORT = 4433

    def __init__(self, netns, procs, warren_bin, tmp_path, link=None,
                 engine="quic", carrier="udp"):
        self.netns, self.procs, self.bin = netns, procs, warren_bin
        self.engine, self.mode = engine, TEST_MODE.get(engine)
        self.carrier = carrier
        self.dir = str(tmp_path)
        self.kcptun_target = None
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

    @property
    def url(self):
        return f"{self.carrier}://{self.server_ip}:{self.PORT}"

    def key(self, name):
        return os.path.join(self.dir, f"{name}.key")

    @property
    def kcptun(self):
        return self.engine == "kcptun"

    def server(self, *extra, allow=(), allow_client=None, name="server",
               url=None):
        """Starts a server allowing `allow` (rules; on kcptun exactly one
        address, its target) and the client's key (or allow_client)."""
        url = url or self.url
        if self.kcptun:
            if len(allow) != 1 or allow_client:
                raise ValueError("kcptun serves one target and has no "
                                 "client keys")
            self.kcptun_target = allow[0]
            a = argv(self.bin, "server", url, engine="kcptun",
                     mode=self.mode, target=allow[0], kcptun_key=KCPTUN_KEY,
                     extra=extra)
        else:
            a = argv(self.bin, "server", url, key=self.key("server"),
                     peer_key=allow_client or self.client_pub,
                     engine=self.engine, mode=self.mode, allow=allow,
                     extra=extra)
        p = self.procs.start(name, a, netns=self.ns_s)
        p.wait_log("server ready")
        return p

    def client(self, *forwards, server_key=None, kcptun_key=None, extra=(),
               name="client", url=None):
        """Starts a client with `forwards` (`-L` specs) that trusts the
        server's key (or server_key); on kcptun, with KCPTUN_KEY (or
        kcptun_key)."""
        url = url or self.url
        if self.kcptun:
            if server_key:
                raise ValueError("kcptun has no server key")
            listens = []
            for f in forwards:
                listen, _, target = f.partition("=")
                if target and target != self.kcptun_target:
                    raise ValueError(f"kcptun forwards to the server's one "
                                     f"target {self.kcptun_target}, not "
                                     f"{target}")
                listens.append(listen)
            a = argv(self.bin, "client", url, engine="kcptun",
                     mode=self.mode, forwards=listens,
                     kcptun_key=kcptun_key or KCPTUN_KEY, extra=extra)
        else:
            a = argv(self.bin, "client", url, key=self.key("client"),
                     peer_key=server_key or self.server_pub,
                     engine=self.engine, mode=self.mode, forwards=forwards,
                     extra=extra)
        p = self.procs.start(name, a, netns=self.ns_c)
        p.wait_log("client ready")
        return p

    def target(self, listen, mode="echo", name="target", ns=None):
        ready = os.path.join(self.dir, f"{name}.ready")
        p = self.procs.start(name, [PY, NETAPP, "serve", "--listen", listen,
                                    "--mode", mode, "--ready", ready],
                             netns=ns or self.ns_s)
        wait_ready_file(p, ready)
        return p

    def app(self, *args, timeout=600, check=True, ns=None):
        res = self.netns.exec(ns or self.ns_c, [PY, NETAPP, *args],
                              check=False, timeout=timeout)
        assert res.returncode == 0 or not check, \
            f"netapp {args} failed:\n{res.stdout}\n{res.stderr}"
        return json.loads(res.stdout.strip().splitlines()[-1])
