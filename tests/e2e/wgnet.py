"""Userspace WireGuard (wireguard-go + wg) between two network namespaces,
for the datagram e2e tests (test_wireguard.py) and the bench's datagram
group (bench/run.py). Nothing here imports pytest.

The kernel of the test machines has no WireGuard module: `wireguard-go
wg0` creates a TUN device named wg0 and serves WireGuard's UDP socket in
userspace; `wg set` configures it through the UAPI socket wireguard-go
opens under /var/run/wireguard/, which is shared by all namespaces, so
each peer gets its own interface name. WG_PROCESS_FOREGROUND=1 (or -f)
keeps wireguard-go in the foreground, so `procs` owns it and the TUN goes
away when it is stopped.

    pair = wg_pair(netns, procs, ns_a, ns_b, endpoint_a=("10.201.0.2", 51820))
    pair.ping(count=5)                      # from A to B over WireGuard
    pair.iperf("-n", "8M")                   # iperf3 TCP, JSON report
    pair.transfer_sha256(4 << 20)           # echoed and sha256-checked

A's peer entry points at endpoint_a (B's WireGuard port directly, or a
warren UDP forward in A's namespace); B has no endpoint for A and learns it
from A's first authenticated packet, as a WireGuard server does, so replies
go back the way A's packets came (through warren's server dialer when
there is one)."""

import itertools
import json
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETAPP = os.path.join(HERE, "netapp.py")
PY = "/usr/bin/python3"

# WireGuard's default MTU: a 1420-byte inner packet makes a 1452-byte UDP
# payload (32 bytes of WireGuard header and tag).
WG_MTU = 1420
WG_PORT = 51820
# The WireGuard network: A is .1, B is .2.
WG_NET = "10.77.{n}.{host}"

_seq = itertools.count()


def genkey():
    """A WireGuard private key and its public key (base64 strings)."""
    priv = subprocess.run(["wg", "genkey"], check=True, capture_output=True,
                          text=True).stdout.strip()
    pub = subprocess.run(["wg", "pubkey"], input=priv, check=True,
                         capture_output=True, text=True).stdout.strip()
    return priv, pub


class WgPeer:
    """One wireguard-go interface in one namespace."""

    def __init__(self, netns, procs, ns, ifname, addr, priv_path, proc):
        self.netns, self.procs, self.ns = netns, procs, ns
        self.ifname, self.addr = ifname, addr
        self.priv_path, self.proc = priv_path, proc

    def wg(self, *args, check=True):
        return self.netns.exec(self.ns, ["wg", *args], check=check,
                               capture_output=True, text=True, timeout=20)

    def show(self):
        """`wg show IF dump` as text (handshakes, transfer counters)."""
        return self.wg("show", self.ifname, "dump", check=False).stdout


def _start_peer(netns, procs, ns, ifname, addr, priv, listen_port, peer_pub,
                peer_ip, endpoint, logdir, keepalive=None):
    priv_path = os.path.join(logdir, f"{ifname}.key")
    old = os.umask(0o077)
    try:
        with open(priv_path, "w") as f:
            f.write(priv + "\n")
    finally:
        os.umask(old)
    proc = procs.start(f"wireguard-go-{ifname}", ["wireguard-go", ifname],
                       netns=ns, env={"WG_PROCESS_FOREGROUND": "1",
                                      "LOG_LEVEL": "verbose"})
    deadline = time.monotonic() + 10
    sock = f"/var/run/wireguard/{ifname}.sock"
    while not os.path.exists(sock):
        if not proc.alive() or time.monotonic() > deadline:
            raise AssertionError(f"wireguard-go {ifname} did not start:\n"
                                 f"{proc.log()}")
        time.sleep(0.05)
    args = ["wg", "set", ifname, "private-key", priv_path, "listen-port",
            str(listen_port), "peer", peer_pub, "allowed-ips",
            f"{peer_ip}/32"]
    if endpoint:
        args += ["endpoint", f"{endpoint[0]}:{endpoint[1]}"]
    if keepalive:
        args += ["persistent-keepalive", str(keepalive)]
    netns.exec(ns, args, timeout=20)
    netns.exec(ns, ["ip", "addr", "add", f"{addr}/24", "dev", ifname],
               timeout=20)
    netns.exec(ns, ["ip", "link", "set", ifname, "mtu", str(WG_MTU), "up"],
               timeout=20)
    return WgPeer(netns, procs, ns, ifname, addr, priv_path, proc)


class WgPair:
    """Two WireGuard peers: A (the initiator) and B."""

    def __init__(self, netns, procs, a, b, logdir):
        self.netns, self.procs = netns, procs
        self.a, self.b = a, b
        self.logdir = logdir

    def ping(self, count=5, interval=0.2, size=None, timeout=2):
        """ping from A to B's WireGuard address; returns (received, out).
        size: ICMP payload bytes (-s), with the don't-fragment bit set so
        an inner packet of exactly the MTU is tested as one packet."""
        argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W",
                str(timeout)]
        if size is not None:
            argv += ["-s", str(size), "-M", "do"]
        res = self.netns.exec(self.a.ns, argv + [self.b.addr], check=False,
                              capture_output=True, text=True,
                              timeout=count * interval + timeout + 30)
        got = sum(1 for line in res.stdout.splitlines()
                  if "bytes from" in line)
        return got, res.stdout + res.stderr

    def wait_up(self, timeout=20.0):
        """Ping until one echo comes back (the first handshake), or fail."""
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            got, out = self.ping(count=1, interval=0.2, timeout=1)
            if got:
                return
        raise AssertionError(f"WireGuard did not come up:\n{out}\n"
                             f"A: {self.a.show()}\nB: {self.b.show()}\n"
                             f"{self.a.proc.log()[-2000:]}")

    def iperf(self, *args, seconds=None, port=5201, timeout=120):
        """iperf3 server in B, client in A against B's WireGuard address;
        extra args go to the client. Returns the client's JSON report."""
        srv = self.procs.start(f"iperf3-s-{port}-{next(_seq)}",
                               ["iperf3", "-s", "-1", "-p", str(port), "-B",
                                self.b.addr], netns=self.b.ns)
        _wait_listen(self.netns, self.b.ns, port, srv)
        argv = ["iperf3", "-c", self.b.addr, "-p", str(port), "-J", *args]
        if seconds is not None:
            argv += ["-t", str(seconds)]
        res = self.netns.exec(self.a.ns, argv, check=False,
                              capture_output=True, text=True,
                              timeout=timeout)
        try:
            srv.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.stop()
        if res.returncode != 0:
            raise AssertionError(f"iperf3 {args} failed:\n{res.stdout}\n"
                                 f"{res.stderr}\n{srv.log()}")
        return json.loads(res.stdout)

    def transfer_sha256(self, size, conns=1, port=7070, timeout=300):
        """TCP through WireGuard with every byte checked: an echo server
        (netapp serve) on B's WireGuard address, and netapp roundtrip from
        A sending `size` deterministic bytes on each of `conns`
        connections and comparing the sha256 of what comes back. Returns
        netapp's JSON report ({"ok": ...}).

        iperf3 cannot check its data: with -F its sender loses and
        reorders file blocks whenever a send is partial (seen on this
        link), so iperf3 measures and netapp verifies."""
        n = next(_seq)
        ready = os.path.join(self.logdir, f"echo-{n}.ready")
        srv = self.procs.start(f"echo-{n}", [PY, NETAPP, "serve",
                                             "--listen",
                                             f"{self.b.addr}:{port}",
                                             "--mode", "echo", "--ready",
                                             ready], netns=self.b.ns)
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if not srv.alive() or time.monotonic() > deadline:
                raise AssertionError(f"echo did not start:\n{srv.log()}")
            time.sleep(0.02)
        res = self.netns.exec(self.a.ns, [PY, NETAPP, "roundtrip",
                                          "--connect",
                                          f"{self.b.addr}:{port}",
                                          "--bytes", str(size), "--conns",
                                          str(conns)],
                              check=False, capture_output=True, text=True,
                              timeout=timeout)
        srv.stop()
        lines = res.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(f"roundtrip printed nothing:\n{res.stderr}")
        return json.loads(lines[-1])


def _wait_listen(netns, ns, port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        res = netns.exec(ns, ["ss", "-Htln", f"sport = :{port}"],
                         check=False, capture_output=True, text=True)
        if res.stdout.strip():
            return
        if not proc.alive() or time.monotonic() > deadline:
            raise AssertionError(f"{proc.name} not listening:\n{proc.log()}")
        time.sleep(0.05)


def wg_pair(netns, procs, ns_a, ns_b, endpoint_a, logdir=None,
            port_b=WG_PORT, port_a=WG_PORT + 1):
    """WireGuard between ns_a and ns_b: A's peer B at endpoint_a (host,
    port); B listens on port_b and learns A's address. Returns a WgPair."""
    logdir = logdir or procs.logdir
    n = next(_seq)
    net = 77 + n % 100
    priv_a, pub_a = genkey()
    priv_b, pub_b = genkey()
    addr_a = WG_NET.format(n=net, host=1)
    addr_b = WG_NET.format(n=net, host=2)
    tag = f"{os.getpid() % 10000}x{n}"
    b = _start_peer(netns, procs, ns_b, f"wgb{tag}", addr_b, priv_b, port_b,
                    pub_a, addr_a, None, logdir)
    # A keeps the path warm, as a roaming client behind NAT would: a
    # forward's idle timeout never ends a quiet WireGuard session.
    a = _start_peer(netns, procs, ns_a, f"wga{tag}", addr_a, priv_a, port_a,
                    pub_b, addr_b, endpoint_a, logdir, keepalive=10)
    return WgPair(netns, procs, a, b, logdir)
