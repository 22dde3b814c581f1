"""Measurement, not a test of the suite (run by hand: it is not collected
by default): goodput of a one-way transfer through warren's QUIC engine
over the tcp carrier on the emulated 100 Mbit/s, 25 ms link, with the
carrier connection cut every 2 s by warren-cutproxy and uncut, and over
udp for reference. Median of 3 each.

    WARREN_BUILD_DIR=build/rel /usr/bin/python3 -m pytest -q -s \
        tests/e2e/measure_carriers.py

test_measure_parallel compares conns = 1 and 4 on the same link (one
stream, so what spreading packets over connections costs in reordering
shows as goodput), uncut and cut every 1-3 s.
"""

import statistics
import time

from linkemu import make_link
from test_carriers import start_client, start_cutproxy, start_server
from test_tunnel import Tunnel

SIZE = 100 * 1000 * 1000


def one(t, server, engine, extra=()):
    c = start_client(t, server, "127.0.0.1:2000=127.0.0.1:7000",
                     extra=("--engine", engine, *extra),
                     name=f"client{time.monotonic_ns()}")
    t0 = time.monotonic()
    r = t.app("halfclose", "--connect", "127.0.0.1:2000",
              "--bytes", str(SIZE), timeout=600)
    secs = time.monotonic() - t0
    assert r["ok"], r
    c.stop()
    return SIZE * 8 / secs / 1e6


import pytest


@pytest.mark.parametrize("engine", ["quic", "kcp"])
def test_measure_cut_vs_uncut(netns, procs, warren_bin, tmp_path, engine):
    link = make_link(netns, procs, both="delay=25ms,rate=100mbit", seed=3)
    t = Tunnel(netns, procs, warren_bin, tmp_path, link=link)
    t.target("127.0.0.1:7000", mode="reply")
    start_server(t, "--allow", "127.0.0.1:7000", "--listen",
                 f"udp://{t.server_ip}:4433", "--engine", engine)
    px, hostport = start_cutproxy(t, f"{t.server_ip}:4443",
                                  "--cut-after", "2s", "--mode", "rst")
    results = {}
    for name, server in (("udp", f"udp://{t.server_ip}:4433"),
                         ("tcp uncut", f"tcp://{t.server_ip}:4443"),
                         ("tcp cut every 2 s", f"tcp://{hostport}")):
        runs = [one(t, server, engine) for _ in range(3)]
        results[name] = (statistics.median(runs), runs)
    for name, (med, runs) in results.items():
        print(f"{engine} {name:>20}: median {med:6.1f} Mbit/s  runs "
              + ", ".join(f"{r:.1f}" for r in runs))
    ratio = results["tcp cut every 2 s"][0] / results["tcp uncut"][0]
    print(f"{engine} cut/uncut goodput: {ratio:.0%}")


@pytest.mark.parametrize("engine", ["quic", "kcp"])
def test_measure_parallel(netns, procs, warren_bin, tmp_path, engine):
    link = make_link(netns, procs, both="delay=25ms,rate=100mbit", seed=3)
    t = Tunnel(netns, procs, warren_bin, tmp_path, link=link)
    t.target("127.0.0.1:7000", mode="reply")
    start_server(t, "--allow", "127.0.0.1:7000", "--engine", engine)
    px, hostport = start_cutproxy(t, f"{t.server_ip}:4443",
                                  "--cut-after", "1s", "--cut-jitter", "2s",
                                  "--mode", "rst")
    results = {}
    for conns in ("1", "4"):
        for name, server in (("tcp uncut", f"tcp://{t.server_ip}:4443"),
                             ("tcp cut 1-3 s", f"tcp://{hostport}")):
            runs = [one(t, server, engine, ("--conns", conns))
                    for _ in range(3)]
            results[f"conns={conns} {name}"] = (statistics.median(runs), runs)
    for name, (med, runs) in results.items():
        print(f"{engine} {name:>22}: median {med:6.1f} Mbit/s  runs "
              + ", ".join(f"{r:.1f}" for r in runs))
