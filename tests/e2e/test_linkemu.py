"""End-to-end tests of warren-linkemu: real traffic through real namespaces.

Each test builds its own link with linkemu.make_link (two fresh namespaces,
10.201.N.0/24 inside them) and measures what the emulator does to ICMP, UDP
or TCP traffic, cross-checking against the emulator's own counters. Seeds
are fixed, so the impairment decisions are reproducible for a given packet
sequence.
"""

import json
import subprocess
import time

import pytest

from conftest import needs_root, tool_path
from linkemu import late_count, loss_runs, make_link, median

pytestmark = needs_root


def _linkemu():
    return tool_path("tools", "linkemu", "warren-linkemu")


def _iperf_tcp(link, seconds, omit=0):
    """Received bits/s of an iperf3 TCP run from A to B."""
    link.start("b", f"iperf3-server-{time.monotonic_ns()}",
               ["iperf3", "-s", "-1", "-B", link.addr_b])
    argv = ["iperf3", "-c", link.addr_b, "-t", str(seconds), "-J",
            "--connect-timeout", "1000"]
    if omit:
        argv += ["-O", str(omit)]
    deadline = time.monotonic() + 5
    while True:  # until the server listens
        res = link.exec("a", argv, check=False, timeout=seconds + omit + 30)
        # iperf3 3.12 -J exits 0 even when it could not connect.
        try:
            out = json.loads(res.stdout)
        except ValueError:
            out = {"error": "no JSON output"}
        if (res.returncode == 0 and "error" not in out) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert res.returncode == 0 and "error" not in out, \
        res.stdout + res.stderr
    end = out["end"]
    assert "sum_received" in end, res.stdout
    return end["sum_received"]["bits_per_second"]


@pytest.mark.parametrize("args, needle", [
    ([], "--a and --b are required"),
    (["--a", "x:d:10.0.0.1/24"], "--a and --b are required"),
    (["--a", "x:d:10.0.0.1", "--b", "y:d:10.0.0.2/24"], "ADDR/PREFIX"),
    (["--a", "x:d:10.0.0.1/24", "--b", "x:e:10.0.0.2/24"],
     "different namespaces"),
    (["--a", "x:waytoolongdevicename:1.2.3.4/24", "--b", "y:d:1.2.3.5/24"],
     "device name"),
    (["--a", "x:d:1.1.1.1/24", "--b", "y:d:1.1.1.2/24", "--a2b",
      "delay=25"], "bad time"),
    (["--a", "x:d:1.1.1.1/24", "--b", "y:d:1.1.1.2/24", "--both",
      "loss=1"], "percentage"),
    (["--a", "x:d:1.1.1.1/24", "--b", "y:d:1.1.1.2/24", "--b2a",
      "warp=9"], "unknown key"),
    (["--a", "x:d:1.1.1.1/24", "--b", "y:d:1.1.1.2/24", "--mtu", "99"],
     "--mtu"),
    (["--a", "x:d:1.1.1.1/24", "--b", "y:d:1.1.1.2/24", "--frob"],
     "--frob"),
    (["--a", "x:d:1.1.1.1/24", "--b", "y:d:1.1.1.2/24", "extra"],
     "unexpected argument"),
])
def test_bad_arguments_exit_2(args, needle):
    res = subprocess.run([_linkemu()] + args, capture_output=True,
                         text=True, timeout=10)
    assert res.returncode == 2, res
    assert needle in res.stderr, res.stderr


def test_missing_namespace_fails_cleanly(tmp_path):
    res = subprocess.run(
        [_linkemu(), "--a", "wnt-nonexistent-a:d0:10.201.255.1/24", "--b",
         "wnt-nonexistent-b:d1:10.201.255.2/24", "--ready-file",
         str(tmp_path / "ready")], capture_output=True, text=True, timeout=10)
    assert res.returncode == 1
    assert "wnt-nonexistent-a" in res.stderr
    assert not (tmp_path / "ready").exists()


def test_unimpaired_link_passes_traffic(netns, procs):
    link = make_link(netns, procs)
    rtts = link.ping(count=5, interval=0.02)
    assert all(r is not None for r in rtts), rtts
    assert max(rtts) < 20, rtts

    rec = link.udp_transfer(count=3000, pps=5000, size=1200)
    assert rec["seqs"] == list(range(3000))
    back = link.udp_transfer(count=1000, pps=5000, src="b")
    assert back["seqs"] == list(range(1000))

    # TCP through a short iperf3 run.
    assert _iperf_tcp(link, 1) > 100e6

    live = link.stats()
    assert live["a2b"]["packets_in"] >= 3000 + 5
    stats = link.stop()
    for d in ("a2b", "b2a"):
        s = stats[d]
        assert s["dropped_loss"] == s["dropped_burst"] == 0
        assert s["dropped_queue"] == s["dropped_pool"] == 0
        # (dropped_device may be non-zero: iperf3 can outrun a debug
        # build, and the kernel then drops at the TUN queue.)
        assert s["dropped_write"] == 0
        assert s["duplicated"] == s["reordered"] == 0
        assert s["delivered"] + s["pending"] == s["packets_in"]
    assert stats["a2b"]["bytes_delivered"] >= 3000 * (1200 + 28)


def test_delay_25ms_one_way(netns, procs):
    link = make_link(netns, procs, both="delay=25ms")
    rtts = link.ping(count=20, interval=0.02)
    assert all(r is not None for r in rtts), rtts
    print(f"ping rtt median {median(rtts):.2f} ms: {rtts}")
    assert 48 <= median(rtts) <= 60, rtts

        # One-way delay (send time to kernel receive timestamp, one clock for
    # all namespaces): never early, and late only by the emulator's
    # scheduling latency plus the TUN and UDP paths.
    rec = link.udp_transfer(count=500, pps=1000)
    lat_ms = sorted(x / 1000 for x in rec["lat_us"])
    assert len(lat_ms) == 500
    print(f"one-way: min {lat_ms[0]:.3f} median {median(lat_ms):.3f} "
          f"max {lat_ms[-1]:.3f} ms")
    assert lat_ms[0] >= 25.0, lat_ms[:5]
    assert median(lat_ms) < 26.0, median(lat_ms)
    link.stop()


def test_ordered_jitter_keeps_order_within_bounds(netns, procs):
    link = make_link(netns, procs, a2b="delay=10ms,jitter=5ms")
    rec = link.udp_transfer(count=2000, pps=2000)
    assert rec["seqs"] == list(range(2000))
    lat_ms = [x / 1000 for x in rec["lat_us"]]
    # Never early: that is the model's promise and is exact.
    assert min(lat_ms) >= 5.0
    # Late only by scheduling: the latency runs from the sender's timestamp
    # to the kernel's receive timestamp, through the TUN path, so its tail
    # carries the host's scheduling (CI under ASan: a 99th percentile of
    # 19 ms against the model's 15 ms). The model shows in the middle of
    # the distribution: order-preserving jitter delivers each packet at the
    # later of its own time and its predecessor's, so at 0.5 ms spacing the
    # median sits between the delay and the delay plus the jitter (seen:
    # 12.9 ms), and the delays still vary.
    ordered = sorted(lat_ms)
    n = len(ordered)
    assert 10.0 <= median(ordered) <= 15.0, median(ordered)
    spread = ordered[n * 9 // 10] - ordered[n // 10]
    assert 1.0 < spread < 10.0, spread
    assert ordered[-1] < 60.0, ordered[-5:]
    link.stop()


def test_random_loss_1pct(netns, procs):
    link = make_link(netns, procs, a2b="loss=1%", seed=7)
    rec = link.udp_transfer(count=20000, pps=10000, size=200)
    got = set(rec["seqs"])
    lost = 20000 - len(got)
    print(f"random loss {100 * lost / 20000:.3f}%")
    assert 0.8 <= 100 * lost / 20000 <= 1.2, lost
    assert len(rec["seqs"]) == len(got)  # no duplicates
    stats = link.stop()["a2b"]
    assert stats["packets_in"] == 20000, stats
    assert stats["dropped_loss"] == lost, stats
    assert stats["dropped_queue"] == stats["dropped_pool"] == 0
    assert stats["dropped_device"] == 0
    assert stats["delivered"] == 20000 - lost


def test_burst_loss_gilbert_elliott(netns, procs):
    # p=1%, r=25%: 3.85% loss in bursts of 1/r = 4 packets on average.
    link = make_link(netns, procs, a2b="burst=1%:25%", seed=3)
    rec = link.udp_transfer(count=20000, pps=10000, size=200)
    runs = loss_runs(rec["seqs"], 20000)
    lost = sum(runs)
    mean_burst = lost / len(runs)
    print(f"burst loss {100 * lost / 20000:.3f}%, mean burst {mean_burst:.2f}")
    assert 2.5 <= 100 * lost / 20000 <= 5.5, (lost, len(runs))
    assert 3.0 <= mean_burst <= 5.0, mean_burst
    stats = link.stop()["a2b"]
    assert stats["dropped_burst"] == lost
    assert stats["dropped_loss"] == 0


def test_rate_limit_20mbit(netns, procs):
    link = make_link(netns, procs, both="rate=20mbit")
    bps = _iperf_tcp(link, 3, omit=1)
    print(f"tcp goodput {bps / 1e6:.2f} Mbit/s")
    # Goodput excludes 52 of every 1500 bytes (IP+TCP headers).
    assert 17e6 <= bps <= 23e6, bps
    stats = link.stop()["a2b"]
    assert stats["bytes_delivered"] > 0


def test_queue_overflow_tail_drops(netns, procs):
    # 1200-byte datagrams at 3000/s offer ~29.5 Mbit/s to a 10 Mbit/s link
    # with a 20 KiB queue: about two thirds are tail-dropped and the rest
    # arrive at the link rate.
    link = make_link(netns, procs, a2b="rate=10mbit,queue=20kb")
    rec = link.udp_transfer(count=4500, pps=3000, size=1200)
    stats = link.stop()["a2b"]
    got = len(rec["seqs"])
    # Rate over the middle 80% of arrivals: robust to a late sink.
    arr = rec["arrival_ns"]
    lo, hi = len(arr) // 10, len(arr) * 9 // 10
    wire_bits = (hi - lo) * (1200 + 28) * 8
    secs = (arr[hi] - arr[lo]) / 1e9
    print(f"queue drops {stats['dropped_queue']}, rate {wire_bits / secs:.0f}"
          f" bit/s, max delay {max(rec['lat_us']):.0f} us")
    assert stats["dropped_queue"] == 4500 - got, (stats, got)
    assert 0.55 <= stats["dropped_queue"] / 4500 <= 0.75, stats
    assert 8.5e6 <= wire_bits / secs <= 11.5e6, wire_bits / secs
    # The queue bounds the delay: 20 KiB at 10 Mbit/s is 16.4 ms (the
    # percentile leaves room for scheduling hiccups of the Python sink).
    lat = sorted(rec["lat_us"])
    assert lat[int(len(lat) * 0.95)] < 16.4e3 + 1e3 + 3e3, lat[-20:]


def test_duplicate_and_reorder(netns, procs):
    link = make_link(netns, procs, a2b="dup=5%,reorder=5%:10ms", seed=11)
    rec = link.udp_transfer(count=10000, pps=5000, size=200)
    seqs = rec["seqs"]
    unique = set(seqs)
    assert unique == set(range(10000))
    dups = len(seqs) - len(unique)
    late = late_count(seqs)
    print(f"dup {100 * dups / 10000:.2f}%, late {100 * late / 10000:.2f}%")
    assert 4.0 <= 100 * dups / 10000 <= 6.0, dups
    assert 4.0 <= 100 * late / 10000 <= 6.0, late
    stats = link.stop()["a2b"]
    assert stats["duplicated"] == dups
    # Packets 0.2 ms apart overtake every packet held for 10 ms.
    assert stats["reordered"] == late
    assert stats["delivered"] == 10000 + dups


def test_no_reorder_or_dup_in_the_other_direction(netns, procs):
    link = make_link(netns, procs, a2b="dup=20%,reorder=20%", seed=5)
    rec = link.udp_transfer(count=2000, pps=5000, src="b")
    assert rec["seqs"] == list(range(2000))
    stats = link.stop()
    assert stats["b2a"]["duplicated"] == stats["b2a"]["reordered"] == 0
