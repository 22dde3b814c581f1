"""WireGuard as the real datagram client: wireguard-go in two namespaces
joined by the emulated link (linkemu), first directly (the control: it
proves the harness, the link and WireGuard work without warren), then
with WireGuard's UDP carried by a warren UDP forward (`-U`) on both
engines and over the udp and tcp carriers. Over the WireGuard interface,
at its default MTU of 1420: ping (also one full-MTU packet with the
don't-fragment bit, so a 1452-byte WireGuard datagram must cross warren
whole) and an iperf3 TCP transfer, and TCP transfers through it whose bytes are
sha256-checked (netapp's echo round trip: iperf3 cannot check its own
data, see wgnet.WgPair.transfer_sha256)."""

import pytest

from conftest import needs_root
from linkemu import make_link
from warren import Tunnel
from wgnet import WG_MTU, WG_PORT, wg_pair

pytestmark = needs_root

# The link of the tests: a little delay and no loss, so the tests check
# correctness; the bench (bench/run.py, datagram group) measures speed on
# the 100 Mbit/s / 50 ms link.
LINK = "delay=5ms"
TRANSFER = 4 << 20
# ICMP payload of an echo that fills the 1420-byte inner MTU (20 IP + 8
# ICMP header bytes).
FULL_PING = WG_MTU - 28
# Where the client's UDP forward listens, on A's loopback: A's WireGuard
# reaches B only through it (B's own address is never A's endpoint).
FORWARD_PORT = 51900


def _check_wireguard(pair):
    pair.wait_up()
    got, out = pair.ping(count=10, interval=0.1)
    assert got == 10, out
    got, out = pair.ping(count=3, interval=0.2, size=FULL_PING)
    assert got == 3, out
    rep = pair.iperf("-n", str(TRANSFER))
    assert rep["end"]["sum_sent"]["bytes"] >= TRANSFER, rep["end"]
    assert rep["end"]["sum_received"]["bytes"] > 0, rep["end"]
    res = pair.transfer_sha256(TRANSFER, conns=2)
    assert res["ok"], res


def test_wireguard_direct(netns, procs):
    """The control: WireGuard straight over the emulated link."""
    link = make_link(netns, procs, both=LINK)
    pair = wg_pair(netns, procs, link.ns_a, link.ns_b,
                   endpoint_a=(link.addr_b, WG_PORT))
    _check_wireguard(pair)


@pytest.mark.parametrize("carrier", ["udp", "tcp"])
@pytest.mark.parametrize("engine", ["quic", "kcp"])
def test_wireguard_over_warren(netns, procs, warren_bin, tmp_path, engine,
                               carrier):
    """WireGuard's UDP through a warren UDP forward: A's WireGuard talks to
    the forward on A's loopback, warren's server sends to WireGuard B on
    B's loopback, and B answers through the flow warren opened."""
    link = make_link(netns, procs, both=LINK)
    tunnel = Tunnel(netns, procs, warren_bin, tmp_path, link=link,
                    engine=engine)
    url = f"{carrier}://{tunnel.server_ip}:{tunnel.PORT}"
    target = f"127.0.0.1:{WG_PORT}"
    tunnel.server(allow=[f"udp://{target}"], url=url)
    tunnel.client(extra=["-U", f"127.0.0.1:{FORWARD_PORT}={target}"],
                  url=url)
    pair = wg_pair(netns, procs, link.ns_a, link.ns_b,
                   endpoint_a=("127.0.0.1", FORWARD_PORT))
    _check_wireguard(pair)
