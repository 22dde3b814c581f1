"""The subjects: what carries the benchmark's TCP connections from the
client namespace to the server namespace.

Each subject says how to start both ends (`start`), where the client
connects for the iperf3 server and for the echo server (`iperf_addr`,
`echo_addr`), and which processes are its own: every process it starts is a
Proc with a side (client or server) and a target (iperf, echo, or both),
and only those count for CPU and memory. Direct TCP starts nothing.

Every subject gets its own block of ports (Env.port), so all subjects of a
link run side by side and the bulk runs can interleave.
"""

import os
import shutil
import subprocess

import warren

from .procs import CLEAN, nsrun

IPERF_PORT = 6201  # + the subject's index
ECHO_PORT = 7000
PORT_BASE = 20000


class Env:
    """Where a subject runs. c and s are the client and server namespaces
    (the same one for the loopback ceiling), sa the server's address as the
    client reaches it, tmp a private directory, idx the subject's port
    block."""

    def __init__(self, bench, c, s, sa, tag, idx):
        self.bench, self.c, self.s, self.sa = bench, c, s, sa
        self.tag, self.idx = tag, idx
        self.tmp = bench.tmp
        # Each subject has its own iperf3 server: a slow tunnel still
        # draining cannot fail the next subject's run.
        self.iperf_port = IPERF_PORT + idx
        self.iperf_srv = None

    def port(self, k):
        return PORT_BASE + 20 * self.idx + k


class Proc:
    def __init__(self, popen, side, target="*"):
        self.p, self.side, self.target = popen, side, target


class Subject:
    name = "?"
    desc = ""
    bins = ()          # (executable, Debian package) pairs needed
    cc = None          # iperf3 -C for direct TCP
    relay = False      # a TCP relay: kernel TCP on the link
    core = False       # runs on every link (the others: links with peers)
    latency = True     # run connect + first byte
    idle = ()          # idle stream counts worth measuring
    direct = False     # no processes of its own
    group = "main"     # report section: main, carriers or kcptun
    links = None       # the only links it runs on (None: every link if
    #                    core, else the links with peers)
    repeat = None      # 1-stream runs as the link says (None: if core)
    four = True        # also the 4-stream runs
    lo_repeat = False  # loopback: lo_runs (else lo_runs_peers)

    def missing(self, bench):
        """None if the subject can run here, else why not."""
        for b, pkg in self.bins:
            if not shutil.which(b):
                return (f"{b} not found (Debian package {pkg}; "
                        f"scripts/deps.sh bench installs it)")
        return None

    def start(self, env):
        return []

    def iperf_addr(self, env):
        return ("127.0.0.1", env.port(0))

    def echo_addr(self, env):
        return ("127.0.0.1", env.port(1))

    def _start(self, env, name, argv, side, ns, target="*"):
        p = CLEAN.start(f"{env.tag}-{self.name}-{name}", argv, env.tmp,
                        netns=ns)
        return Proc(p, side, target)


class Direct(Subject):
    direct = True
    core = True
    latency = False

    def __init__(self, cc, latency):
        self.cc = cc
        self.name = f"tcp-{cc}"
        self.latency = latency
        self.desc = (f"iperf3 straight across the link, `-C {cc}`; no "
                     "process of its own, so no CPU or memory column")

    def missing(self, bench):
        if self.cc == "bbr" and not bench.bbr:
            return "the tcp_bbr module is not available on this kernel"
        return None

    def iperf_addr(self, env):
        return (env.sa, env.iperf_port)

    def echo_addr(self, env):
        return (env.sa, ECHO_PORT)


class Warren(Subject):
    idle = (1000, 10000)
    core = True
    lo_repeat = True

    def __init__(self, engine, carrier="udp", mode=None, extra=False):
        self.engine, self.carrier, self.mode = engine, carrier, mode
        self.name = f"warren-{engine}" + \
            ("" if carrier == "udp" else f"-{carrier}")
        if extra:
            # The other engine x carrier pairs: one 1-stream run on the
            # 1% link and on loopback, to keep the suite under 30 minutes.
            self.group, self.core, self.lo_repeat = "carriers", False, False
            self.links, self.four = ("100mbit-25ms-1%",), False
            self.latency, self.idle = False, ()
        extra = f" `--mode {mode}`" if mode else ""
        self.desc = (f"warren client + server, `--engine {engine}`{extra}, "
                     f"{carrier} carrier; `-L` forwards to the iperf3 and "
                     "echo servers")

    def missing(self, bench):
        if not os.access(bench.warren, os.X_OK):
            return f"{bench.warren} not built"
        if self.carrier != "udp" and \
                self.carrier not in bench.warren_carriers():
            return (f"this warren does not accept {self.carrier}:// "
                    "listen addresses yet")
        return None

    def start(self, env):
        b = env.bench
        url = f"{self.carrier}://{env.sa}:{env.port(2)}"
        # The idle-streams workload opens 10,000 at once; the default
        # limit is 1,024 per session.
        common = dict(engine=self.engine, mode=self.mode, log_level="warn",
                      extra=("--max-streams", "12000"))
        srv = self._start(env, "server", warren.argv(
            b.warren, "server", url, key=b.skey, peer_key=b.cpub,
            allow=(f"127.0.0.1:{env.iperf_port}", f"127.0.0.1:{ECHO_PORT}"),
            **common), "server", env.s)
        cli = self._start(env, "client", warren.argv(
            b.warren, "client", url, key=b.ckey, peer_key=b.spub,
            forwards=(f"127.0.0.1:{env.port(0)}=127.0.0.1:{env.iperf_port}",
                      f"127.0.0.1:{env.port(1)}=127.0.0.1:{ECHO_PORT}"),
            **common), "client", env.c)
        return [srv, cli]


class Socat(Subject):
    name = "socat"
    bins = (("socat", "socat"),)
    relay = True
    idle = (1000,)
    desc = ("one socat in the client namespace, `TCP-LISTEN:...,fork` → "
            "`TCP:server`: plain TCP across the link, the cost of one "
            "user-space hop (a process per connection; defaults)")

    def start(self, env):
        out = []
        for k, port, tgt in ((0, env.iperf_port, "iperf"),
                             (1, ECHO_PORT, "echo")):
            out.append(self._start(env, tgt, [
                "socat", f"TCP-LISTEN:{env.port(k)},bind=127.0.0.1,fork,"
                "reuseaddr", f"TCP:{env.sa}:{port}"], "client", env.c, tgt))
        return out


class Stunnel(Subject):
    name = "stunnel"
    bins = (("stunnel4", "stunnel4"), ("openssl", "openssl"))
    relay = True
    idle = (1000,)
    desc = ("stunnel4 client → stunnel4 server: TLS over TCP (OpenSSL's "
            "default, TLS 1.3 AES-256-GCM), a thread per connection")

    def _conf(self, env, side, services):
        path = os.path.join(env.tmp, f"{env.tag}-stunnel-{side}.conf")
        lines = ["foreground = yes", "pid =", "syslog = no", "debug = 4"]
        if side == "server":
            lines += [f"cert = {env.bench.tls_cert()}",
                      f"key = {env.bench.tls_key}"]
        for name, accept, connect in services:
            lines += [f"[{name}]", f"accept = {accept}",
                      f"connect = {connect}"]
            if side == "client":
                lines += ["client = yes"]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self, env):
        sconf = self._conf(env, "server", [
            ("iperf", f"{env.sa}:{env.port(2)}",
             f"127.0.0.1:{env.iperf_port}"),
            ("echo", f"{env.sa}:{env.port(3)}", f"127.0.0.1:{ECHO_PORT}")])
        cconf = self._conf(env, "client", [
            ("iperf", f"127.0.0.1:{env.port(0)}", f"{env.sa}:{env.port(2)}"),
            ("echo", f"127.0.0.1:{env.port(1)}", f"{env.sa}:{env.port(3)}")])
        return [self._start(env, "server", ["stunnel4", sconf], "server",
                            env.s),
                self._start(env, "client", ["stunnel4", cconf], "client",
                            env.c)]


class Shadowsocks(Subject):
    name = "shadowsocks"
    bins = (("ss-server", "shadowsocks-libev"),
            ("ss-tunnel", "shadowsocks-libev"))
    relay = True
    idle = (1000, 10000)
    METHOD = "aes-256-gcm"
    desc = ("shadowsocks-libev: `ss-tunnel` (one per target) → "
            "`ss-server`, `-m aes-256-gcm`: an AEAD stream per "
            "connection over its own TCP connection")

    def start(self, env):
        pw = "warren-bench"
        out = [self._start(env, "server", [
            "ss-server", "-s", env.sa, "-p", str(env.port(2)), "-k", pw,
            "-m", self.METHOD, "-n", "65536"], "server", env.s)]
        for k, port, tgt in ((0, env.iperf_port, "iperf"),
                             (1, ECHO_PORT, "echo")):
            out.append(self._start(env, f"tunnel-{tgt}", [
                "ss-tunnel", "-s", env.sa, "-p", str(env.port(2)),
                "-b", "127.0.0.1", "-l", str(env.port(k)), "-k", pw,
                "-m", self.METHOD, "-n", "65536",
                "-L", f"127.0.0.1:{port}"], "client", env.c, tgt))
        return out


class Kcptun(Subject):
    bins = (("kcptun-client", "kcptun"), ("kcptun-server", "kcptun"))

    def __init__(self, fast3):
        self.fast3 = fast3
        self.core = fast3
        self.name = "kcptun-fast3" if fast3 else "kcptun-default"
        self.idle = (1000, 10000) if fast3 else ()
        self.desc = ("kcptun client → server (KCP + smux over UDP, one "
                     "pair per target), " +
                     ("`--mode fast3 --nocomp --sndwnd 1024 --rcvwnd "
                      "1024`, `--crypt aes`, FEC 10/3" if fast3 else
                      "defaults: `--mode fast`, `--crypt aes`, FEC 10/3, "
                      "compression on, windows 128/512 (client) and "
                      "1024/1024 (server)"))

    def _args(self):
        a = ["--key", "warren-bench", "--crypt", "aes", "--quiet"]
        if self.fast3:
            a += ["--mode", "fast3", "--nocomp", "--sndwnd", "1024",
                  "--rcvwnd", "1024"]
        return a

    def start(self, env):
        out = []
        for k, port, tgt in ((0, env.iperf_port, "iperf"),
                             (1, ECHO_PORT, "echo")):
            udp = f"{env.sa}:{env.port(2 + k)}"
            out.append(self._start(env, f"server-{tgt}", [
                "kcptun-server", "-l", udp, "-t", f"127.0.0.1:{port}"] +
                self._args(), "server", env.s, tgt))
            out.append(self._start(env, f"client-{tgt}", [
                "kcptun-client", "-l", f"127.0.0.1:{env.port(k)}", "-r",
                udp] + self._args(), "client", env.c, tgt))
        return out


class KcptunPair(Subject):
    """kcptun's wire format with one end warren (`--engine kcptun`) and
    the other kcptun, both with kcptun-fast3's settings: issue 8's
    comparison against kcptun-fast3 (kcptun at both ends)."""
    group = "kcptun"
    bins = Kcptun.bins
    links = ("100mbit-25ms-0%", "100mbit-25ms-1%", "100mbit-25ms-5%")
    repeat = True
    four = False
    latency = False

    def __init__(self, warren_side):
        self.warren_side = warren_side
        if warren_side == "client":
            self.name = "warren-to-kcptun"
            self.desc = ("`warren client --engine kcptun` → "
                         "`kcptun-server`")
        else:
            self.name = "kcptun-to-warren"
            self.desc = ("`kcptun-client` → `warren server --engine "
                         "kcptun`")
        self.desc += (", one pair per target, kcptun-fast3's settings on "
                      "both ends (`--mode fast3`, no compression, windows "
                      "1024, `--crypt aes`, FEC 10/3)")

    def missing(self, bench):
        if not os.access(bench.warren, os.X_OK):
            return f"{bench.warren} not built"
        return Subject.missing(self, bench)

    # kcptun-fast3's settings, as warren spells them.
    WARREN_FLAGS = ("--kcptun-key", "warren-bench", "--crypt", "aes",
                    "--nocomp", "yes", "--sndwnd", "1024", "--rcvwnd", "1024",
                    "--datashard", "10", "--parityshard", "3")

    def _warren(self, b, role, url, **kw):
        return warren.argv(b.warren, role, url, engine="kcptun",
                           mode="fast3", log_level="warn", **kw)

    def start(self, env):
        b, out = env.bench, []
        kargs = Kcptun(True)._args()
        for k, port, tgt in ((0, env.iperf_port, "iperf"),
                             (1, ECHO_PORT, "echo")):
            udp = f"{env.sa}:{env.port(2 + k)}"
            if self.warren_side == "server":
                srv = self._warren(b, "server", f"udp://{udp}", extra=(
                    *self.WARREN_FLAGS, "--target", f"127.0.0.1:{port}"))
                cli = ["kcptun-client", "-l", f"127.0.0.1:{env.port(k)}",
                       "-r", udp] + kargs
            else:
                srv = ["kcptun-server", "-l", udp, "-t",
                       f"127.0.0.1:{port}"] + kargs
                cli = self._warren(b, "client", f"udp://{udp}",
                                   forwards=(f"127.0.0.1:{env.port(k)}",),
                                   extra=self.WARREN_FLAGS)
            out.append(self._start(env, f"server-{tgt}", srv, "server",
                                   env.s, tgt))
            out.append(self._start(env, f"client-{tgt}", cli, "client",
                                   env.c, tgt))
        return out


def all_subjects():
    """The table, in the order of every report's columns."""
    return [
        Warren("quic"),
        Warren("kcp", mode="fast3"),
        Warren("quic", carrier="tcp"),
        Direct("cubic", latency=True),
        Direct("bbr", latency=False),
        Socat(),
        Stunnel(),
        Kcptun(False),
        Kcptun(True),
        Shadowsocks(),
        Warren("kcp", carrier="tcp", mode="fast3", extra=True),
        Warren("quic", carrier="tls", extra=True),
        Warren("kcp", carrier="tls", mode="fast3", extra=True),
        KcptunPair("client"),
        KcptunPair("server"),
    ]


def warren_carriers(warren, tmp, skey, cpub):
    """The carrier schemes `warren check` accepts in a server's listen
    address: how the benchmark finds out whether tcp:// exists yet."""
    out = []
    for scheme in ("udp", "tcp", "tls"):
        path = os.path.join(tmp, f"carrier-{scheme}.ini")
        with open(path, "w") as f:
            f.write(f"[server]\nlisten = {scheme}://127.0.0.1:4999\n"
                    f"key = {skey}\nallow-client = {cpub}\n"
                    "allow = 127.0.0.1:1\n")
        try:
            r = nsrun(None, [warren, "check", "-c", path, "--role",
                             "server"], timeout=10)
            if r.returncode == 0:
                out.append(scheme)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return out
