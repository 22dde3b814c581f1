"""The kcptun profile against Debian's kcptun, in both directions: a warren
client with kcptun-server, and kcptun-client with a warren server, each
pair in its own two namespaces; data checked by sha256 (netapp
roundtrip)."""

import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import needs_root
import warren
from warren import NETAPP, PY, wait_ready_file

pytestmark = [
    needs_root,
    pytest.mark.skipif(shutil.which("kcptun-server") is None,
                       reason="Debian's kcptun is not installed"),
]

KEY = "correct horse battery staple"

PORT = 29900


class Pair:
    """A client and a server namespace joined by a veth pair; the target
    (an echo server) runs next to the server."""

    def __init__(self, netns, procs, warren_bin, tmp_path):
        self.netns, self.procs, self.bin = netns, procs, warren_bin
        self.dir = str(tmp_path)
        self.ns_c = netns.create("c")
        self.ns_s = netns.create("s")
        netns.veth(self.ns_c, "10.211.0.1", self.ns_s, "10.211.0.2")
        self.server_ip = "10.211.0.2"

    def target(self, listen="127.0.0.1:7000"):
        ready = os.path.join(self.dir, "target.ready")
        p = self.procs.start("target", [PY, NETAPP, "serve", "--listen",
                                        listen, "--mode", "echo", "--ready",
                                        ready], netns=self.ns_s)
        wait_ready_file(p, ready)
        return p

    @staticmethod
    def kcptun_flags(crypt, fec, comp, smuxver):
        f = ["--key", KEY, "--crypt", crypt, "--smuxver", str(smuxver)]
        f += ["--ds", "10", "--ps", "3"] if fec else ["--ds", "0", "--ps",
                                                      "0"]
        if not comp:
            f.append("--nocomp")
        return f

    @staticmethod
    def warren_flags(crypt, fec, comp, smuxver):
        return ["--kcptun-key", KEY, "--crypt", crypt,
                "--datashard", "10" if fec else "0",
                "--parityshard", "3" if fec else "0",
                "--nocomp", "no" if comp else "yes",
                "--smuxver", str(smuxver)]

    def warren_server(self, *flags):
        if "none" in flags:
            # crypt none has no secret: a warren server refuses it
            # unless told to serve anyway.
            flags = (*flags, "--kcptun-insecure", "yes")
        p = self.procs.start("warren-server", warren.argv(
            self.bin, "server", f"udp://{self.server_ip}:{PORT}",
            engine="kcptun", extra=("--target", "127.0.0.1:7000", *flags)),
            netns=self.ns_s)
        p.wait_log("server ready")
        return p

    def warren_client(self, *flags):
        p = self.procs.start("warren-client", warren.argv(
            self.bin, "client", f"udp://{self.server_ip}:{PORT}",
            engine="kcptun", forwards=("127.0.0.1:2000",), extra=flags),
            netns=self.ns_c)
        p.wait_log("client ready")
        return p

    def kcptun_server(self, *flags):
        p = self.procs.start("kcptun-server", [
            "kcptun-server", "-l", f"{self.server_ip}:{PORT}",
            "-t", "127.0.0.1:7000", *flags], netns=self.ns_s)
        p.wait_log("listening on")
        return p

    def kcptun_client(self, *flags):
        p = self.procs.start("kcptun-client", [
            "kcptun-client", "-l", "127.0.0.1:2000",
            "-r", f"{self.server_ip}:{PORT}", *flags], netns=self.ns_c)
        p.wait_log("listening on")
        return p

    def roundtrip(self, nbytes, conns=1, timeout=300, check=True):
        """Sends nbytes on each of conns connections and reads the echo
        back, sha256 compared; half the blocks are compressible, so both
        kinds of snappy chunk are carried. No half-close: kcptun closes a
        stream both ways at the first FIN (smux has no half-close)."""
        res = self.netns.exec(self.ns_c, [
            PY, NETAPP, "roundtrip", "--connect", "127.0.0.1:2000",
            "--bytes", str(nbytes), "--conns", str(conns), "--mixed",
            "--no-half-close", "--timeout", str(min(timeout, 60))],
            check=False, timeout=timeout)
        ok = res.returncode == 0 and '"ok": true' in res.stdout
        assert ok or not check, f"{res.stdout}\n{res.stderr}"
        return ok


@pytest.fixture
def pair(netns, procs, warren_bin, tmp_path):
    return Pair(netns, procs, warren_bin, tmp_path)


CASES = [
    # crypt, fec, comp, smuxver
    ("aes", False, False, 1),
    ("aes", True, False, 1),
    ("salsa20", True, False, 2),
    ("none", False, False, 2),
    ("aes-128", True, False, 1),
    ("aes-192", False, False, 1),
    ("aes", True, True, 1),  # kcptun's defaults
    ("salsa20", False, True, 2),
]


def case_id(c):
    return "{}-{}-{}-smux{}".format(c[0], "fec" if c[1] else "nofec",
                                    "comp" if c[2] else "nocomp", c[3])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_warren_client_to_kcptun_server(pair, case):
    pair.target()
    pair.kcptun_server(*Pair.kcptun_flags(*case))
    pair.warren_client(*Pair.warren_flags(*case))
    pair.roundtrip(20 << 20)
    pair.roundtrip(1 << 20, conns=20)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_kcptun_client_to_warren_server(pair, case):
    pair.target()
    pair.warren_server(*Pair.warren_flags(*case))
    pair.kcptun_client(*Pair.kcptun_flags(*case))
    pair.roundtrip(20 << 20)
    pair.roundtrip(1 << 20, conns=20)


def snmp_last(path):
    """The last row of kcptun's --snmplog CSV, as a dict."""
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    header = lines[0].split(",")
    return dict(zip(header, lines[-1].split(",")))


def rebuilt(log):
    """warren's count of data shards rebuilt from parity (logged when a
    kcptun session ends)."""
    counts = [int(m) for m in re.findall(r"(\d+) data shards rebuilt", log)]
    assert counts, log
    return max(counts)


@pytest.mark.parametrize("warren_is,kcptun_fec", [
    ("client", (10, 3)), ("server", (10, 3)), ("server", (5, 2))],
    ids=["warren-client", "warren-server", "warren-server-kcptun-5+2"])
def test_fec_recovers_losses_both_ways(netns, procs, warren_bin, tmp_path,
                                       warren_is, kcptun_fec):
    """Over a link losing 3% each way, kcptun rebuilds packets from
    warren's parity shards (its FECRecovered counter) and warren rebuilds
    packets from kcptun's (its own counter), and every byte arrives
    intact: the Reed-Solomon code is klauspost/reedsolomon's. A kcptun
    sending 5+2 to a warren configured for 10+3 is recognised from its
    shards' seqids (as kcp-go's decoder recognises its peer's)."""
    from linkemu import make_link
    link = make_link(netns, procs, both="delay=10ms,loss=3%,rate=50mbit",
                     seed=5)
    p = Pair.__new__(Pair)
    p.netns, p.procs, p.bin, p.dir = netns, procs, warren_bin, str(tmp_path)
    p.ns_c, p.ns_s, p.server_ip = link.ns_a, link.ns_b, link.addr_b
    p.target()
    case = ("aes", True, False, 1)
    snmp = os.path.join(p.dir, "snmp.csv")
    kflags = [*Pair.kcptun_flags(*case), "--snmplog", snmp,
              "--snmpperiod", "1", "--ds", str(kcptun_fec[0]),
              "--ps", str(kcptun_fec[1])]
    if warren_is == "client":
        p.kcptun_server(*kflags)
        w = p.warren_client(*Pair.warren_flags(*case))
    else:
        w = p.warren_server(*Pair.warren_flags(*case))
        p.kcptun_client(*kflags)
    p.roundtrip(8 << 20, timeout=600)
    time.sleep(2.5)  # one more snmp period
    w.stop()
    row = snmp_last(snmp)
    assert int(row["FECRecovered"]) > 0, row
    assert int(row["FECErrs"]) == 0, row
    assert rebuilt(w.log()) > 0, w.log()
    assert "the peer's FEC {}+{}".format(*kcptun_fec) in w.log(), w.log()
    stats = link.stop()
    for d in ("a2b", "b2a"):
        assert stats[d]["dropped_loss"] > 50, stats[d]


def test_bad_packets_are_dropped_and_counted(pair):
    """Garbage, and packets under another key, reach a warren server while
    a kcptun client's stream runs: they are dropped and counted
    (kcptun's InCsumErrors), and the stream never notices."""
    pair.target()
    case = ("aes", True, True, 1)
    s = pair.warren_server(*Pair.warren_flags(*case))
    pair.kcptun_client(*Pair.kcptun_flags(*case))
    # Random datagrams at the server from a stranger's port: none passes
    # the CRC (2^-32 each).
    junk = subprocess.Popen(
        ["ip", "netns", "exec", pair.ns_c, PY, NETAPP, "garbage", "--to",
         f"{pair.server_ip}:{PORT}", "--looks-like", "kcptun"],
        stdout=subprocess.DEVNULL)
    # A second kcptun client with the wrong key, to the same server.
    wrong = pair.procs.start("kcptun-wrongkey", [
        "kcptun-client", "-l", "127.0.0.1:2001",
        "-r", f"{pair.server_ip}:{PORT}", "--key", "not the key",
        "--crypt", "aes"], netns=pair.ns_c)
    wrong.wait_log("listening on")
    pair.netns.exec(pair.ns_c, [PY, "-c", "import socket; "
                                "socket.create_connection(('127.0.0.1', "
                                "2001)).send(b'x' * 1000)"], check=False)
    pair.roundtrip(16 << 20)
    assert junk.wait(60) == 0
    s.stop()
    m = re.findall(r"(\d+) packets failed the checksum", s.log())
    assert m and int(m[-1]) >= 2900, s.log()
    assert "failed the checksum (another key or crypt?)" in s.log()


def test_warren_client_survives_kcptun_server_restart(pair):
    """A restarted kcptun server has forgotten the session but answers in
    KCP: warren judges liveness by smux bytes, as smux does, so it
    notices within kcptun's 30 s keepalive timeout and starts a new
    session (a new conv, sn 0), which the new server accepts."""
    pair.target()
    case = ("aes", False, False, 1)
    ks = pair.kcptun_server(*Pair.kcptun_flags(*case))
    w = pair.warren_client(*Pair.warren_flags(*case))
    pair.roundtrip(1 << 20)
    ks.stop()
    pair.procs.start("kcptun-server-2", [
        "kcptun-server", "-l", f"{pair.server_ip}:{PORT}",
        "-t", "127.0.0.1:7000", *Pair.kcptun_flags(*case)],
        netns=pair.ns_s).wait_log("listening on")
    deadline = time.monotonic() + 60
    while True:
        if pair.roundtrip(1 << 16, timeout=90, check=False):
            break
        assert time.monotonic() < deadline, w.log()
        time.sleep(1)
    assert w.log().count("kcptun session") >= 2, w.log()
