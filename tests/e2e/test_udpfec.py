"""FEC on a UDP forward end to end: a client with two forwards to one echo
target across warren-linkemu losing 2% of the packets each way, one plain
(-U) and one with `fec = 10/3` ([udp NAME]). The same numbered datagrams
go through each; the plain one loses what the path loses (about 4% of
the round trips), the FEC one nearly nothing, and the client counts the
datagrams it rebuilt. Both engines that carry datagrams (quic, kcp)."""

import os
import re

import pytest

from conftest import needs_root
from linkemu import make_link
from test_udp import UDPAPP, app, udp_client
from warren import PY, Tunnel, wait_ready_file

ECHO_PORT = 7000
PLAIN = 5353
FEC = 5354
N = 2000

ENGINES = ("quic", "kcp")


@needs_root
@pytest.mark.parametrize("engine", ENGINES)
def test_fec_repairs_random_loss(netns, procs, warren_bin, tmp_path,
                                 engine):
    link = make_link(netns, procs, both="delay=5ms,loss=2%", seed=7)
    t = Tunnel(netns, procs, warren_bin, tmp_path, link=link, engine=engine)
    # An echo that keeps no count: one file write per datagram would make
    # it, on a busy machine, lose more than the path.
    ready = os.path.join(t.dir, "echo.ready")
    e = t.procs.start("echo", [PY, UDPAPP, "echo", "--listen",
                               f"127.0.0.1:{ECHO_PORT}", "--ready", ready],
                      netns=t.ns_s)
    wait_ready_file(e, ready)
    t.server("--allow", f"udp://127.0.0.1:{ECHO_PORT}")
    conf = os.path.join(t.dir, "fec.conf")
    with open(conf, "w") as f:
        f.write(f"[udp fec]\nlisten = 127.0.0.1:{FEC}\n"
                f"target = 127.0.0.1:{ECHO_PORT}\n"
                "fec = 10/3\nfec-delay = 20ms\n")
    c = udp_client(t, f"127.0.0.1:{PLAIN}=127.0.0.1:{ECHO_PORT}", conf=conf)
    assert "fec 10/3, fec-delay 20ms" in c.log(), c.log()
    plain = app(t, "rate", "--to", f"127.0.0.1:{PLAIN}", "--count", str(N),
                "--size", "1000", "--pps", "500")
    fec = app(t, "rate", "--to", f"127.0.0.1:{FEC}", "--count", str(N),
              "--size", "1000", "--pps", "500")
    # Each datagram crosses the link twice: 1 - 0.98^2 is about 4%.
    assert plain["lost"] >= N * 0.015, plain
    # 10/3 at 2% loses a group's datagram only when four of its 13 packets
    # are lost: well under 0.5% of the round trips.
    assert fec["lost"] <= N * 0.005, (plain, fec)
    c.stop()
    m = re.search(r"fec: fec 10/3: (\d+) rebuilt, (\d+) unrecoverable",
                  c.log())
    assert m, c.log()
    # The client rebuilt some of the server's replies (the server mirrors
    # the forward's FEC); about 2% of N were lost on the way back.
    assert int(m.group(1)) >= N * 0.005, m.group(0)
    print(f"{engine}: plain lost {plain['lost']}/{N}, fec lost "
          f"{fec['lost']}/{N}; client: {m.group(0)}")
