"""The benchmark's datagram group (`--workloads datagram`, issue 17):
WireGuard as the real datagram client, over warren and without it.

- On the 100 Mbit/s links with 50 ms RTT (25 ms each way) at 0% and 1%
  random loss: iperf3 TCP goodput inside WireGuard, WireGuard direct
  (the reference) against WireGuard's UDP carried by a warren UDP forward
  (`-U`) on each engine over the udp carrier; and `iperf3 -u` at a fixed
  offered rate inside WireGuard: datagram loss and jitter as iperf3's
  receiver counts them, direct against through warren.
- On loopback (one namespace): datagrams of 1200 bytes through a warren
  UDP forward, client and server in one namespace, as fast as the sender
  sends: datagrams per second delivered and warren's CPU per MB (both
  processes).

The WireGuard and emulated-link plumbing is the e2e tests' (tests/e2e
wgnet.py and linkemu.py); warren's command line comes from warren.argv.
Runs of warren are skipped with a note while this warren has no UDP
forward (the udp front end) or its engine carries no datagrams."""

import json
import os
import subprocess
import time

import warren
from linkemu import PYTHON as LINKEMU_PY, HERE as LINKEMU, make_link
from wgnet import WG_PORT, wg_pair

from .procs import CLEAN, BenchNetns, BenchProcs, cpu_s, log, nsrun

# The links of the group: the core links' 100 Mbit/s at 25 ms each way.
LINKS = (("100mbit-50msrtt-0%", "delay=25ms,rate=100mbit"),
         ("100mbit-50msrtt-1%", "delay=25ms,rate=100mbit,loss=1%"))
# iperf3 -u's fixed offered rate and datagram size (inside WireGuard's
# 1420-byte MTU: 1200 + 28 bytes of IP and UDP headers).
UDP_RATE = "20M"
UDP_LEN = 1200
# The loopback rate: datagrams of this size, for this many seconds.
LO_SIZE = 1200
FORWARD_PORT = 51900
TARGET = f"127.0.0.1:{WG_PORT}"
ENGINES = ("quic", "kcp")


def _iperf(pair, args, t, timeout_extra=30):
    """iperf3 client in A against B's WireGuard address; the JSON report
    or a RuntimeError."""
    srv = pair.procs.start(f"iperf3-s-{time.monotonic_ns()}",
                           ["iperf3", "-s", "-1", "-B", pair.b.addr],
                           netns=pair.b.ns)
    time.sleep(0.3)
    try:
        res = nsrun(pair.a.ns, ["iperf3", "-c", pair.b.addr, "-J", "-t",
                                str(t), "--connect-timeout", "5000",
                                *args], timeout=t + timeout_extra)
    except subprocess.TimeoutExpired:
        raise RuntimeError("iperf3 timed out")
    finally:
        CLEAN.stop(srv.popen)
    try:
        j = json.loads(res.stdout)
    except ValueError:
        raise RuntimeError(f"iperf3 exit {res.returncode}: "
                           f"{(res.stdout + res.stderr).strip()[:200]}")
    if "error" in j:
        raise RuntimeError(f"iperf3: {j['error']}")
    return j


def _tcp(pair, t, omit):
    j = _iperf(pair, ["-O", str(omit)], t + omit)
    return round(j["end"]["sum_received"]["bits_per_second"] / 1e6, 2)


def _udp(pair, t):
    j = _iperf(pair, ["-u", "-b", UDP_RATE, "-l", str(UDP_LEN)], t)
    s = j["end"]["sum"]
    return {"offered": UDP_RATE + "bit/s", "len": UDP_LEN,
            "packets": s.get("packets"), "lost": s.get("lost_packets"),
            "lost_pct": round(s.get("lost_percent", 0.0), 3),
            "jitter_ms": round(s.get("jitter_ms", 0.0), 3),
            "mbit": round(s.get("bits_per_second", 0.0) / 1e6, 2)}


def _warren_up(b, procs, ns_c, ns_s, server_ip, engine, carrier, port):
    """A warren server in ns_s allowing WireGuard's port, and a client in
    ns_c forwarding FORWARD_PORT to it; returns (client, server) or raises
    RuntimeError with the reason (a log line) when warren cannot."""
    url = f"{carrier}://{server_ip}:{port}"
    mode = warren.TEST_MODE.get(engine)
    srv = procs.start(f"warren-s-{engine}-{carrier}", warren.argv(
        b.warren, "server", url, key=b.skey, peer_key=b.cpub, engine=engine,
        mode=mode, allow=(f"udp://{TARGET}",), log_level="info"),
        netns=ns_s)
    cli = procs.start(f"warren-c-{engine}-{carrier}", warren.argv(
        b.warren, "client", url, key=b.ckey, peer_key=b.spub, engine=engine,
        mode=mode, log_level="info",
        extra=("-U", f"127.0.0.1:{FORWARD_PORT}={TARGET}")), netns=ns_c)
    for p, want in ((srv, "server ready"), (cli, "client ready")):
        deadline = time.monotonic() + 15
        while want not in p.log():
            if not p.alive() or time.monotonic() > deadline:
                # The line that says why: one naming an error or
                # datagrams, else the last.
                lines = p.log().strip().splitlines() or ["?"]
                why = [x for x in lines if "error" in x.lower() or
                       "datagram" in x.lower()]
                last = (why or lines)[-1]
                CLEAN.stop(srv.popen)
                CLEAN.stop(cli.popen)
                raise RuntimeError(f"{p.name}: {last[:200]}")
            time.sleep(0.05)
    return cli, srv


def _links(bench, R, P):
    netns, procs = BenchNetns(), BenchProcs(bench.tmp)
    out = R["datagram"]["links"]
    have_u = warren.has_udp_forward(bench.warren)
    if not have_u:
        bench.notes.append("datagram: WireGuard over warren not run: this "
                           "warren has no UDP forward (-U) yet.")
    for i, (name, spec) in enumerate(LINKS):
        log(f"datagram link {name} ({spec})")
        link = make_link(netns, procs, both=spec, seed=1 + i,
                         binary=bench.emu, name=f"dg{i}")
        cells = out.setdefault(name, {"spec": spec})
        cases = [("wg-direct", None, None)]
        if have_u:
            cases += [(f"wg-warren-{e}-udp", e, "udp") for e in ENGINES]
        for case, engine, carrier in cases:
            cell = cells.setdefault(case, {"tcp_mbit": [], "errors": []})
            started = []
            try:
                if engine:
                    started = list(_warren_up(bench, procs, link.ns_a,
                                              link.ns_b, link.addr_b,
                                              engine, carrier, 4433 + i))
                    endpoint = ("127.0.0.1", FORWARD_PORT)
                else:
                    endpoint = (link.addr_b, WG_PORT)
                pair = wg_pair(netns, procs, link.ns_a, link.ns_b,
                               endpoint_a=endpoint)
                started += [pair.a.proc, pair.b.proc]
                pair.wait_up(timeout=20)
                cpu0 = [cpu_s(p.pid) for p in started]
                for _ in range(P["dg_runs"]):
                    mbit = _tcp(pair, P["t"], P["omit"])
                    cell["tcp_mbit"].append(mbit)
                    log(f"  {case}: TCP {mbit} Mbit/s")
                cell["udp"] = _udp(pair, P["t"])
                log(f"  {case}: UDP {cell['udp']['lost_pct']}% lost, "
                    f"jitter {cell['udp']['jitter_ms']} ms")
                cell["cpu_s"] = round(sum(
                    (cpu_s(p.pid) or 0) - (c or 0)
                    for p, c in zip(started, cpu0)), 2)
            except (RuntimeError, AssertionError, OSError) as e:
                cell["errors"].append(str(e)[:500])
                log(f"  {case}: {str(e)[:200]} (ERROR)")
            finally:
                for p in started:
                    CLEAN.stop(p.popen)
        st = link.stop()
        a2b = st.get("a2b", {})
        pin = a2b.get("packets_in", 0)
        cells["measured_loss_pct"] = round(
            100.0 * a2b.get("dropped_loss", 0) / pin, 3) if pin else None
        for ns in (link.ns_a, link.ns_b):
            CLEAN.del_netns(ns)


def _loopback(bench, R, P):
    """Datagrams through one client and server on loopback."""
    lo = R["datagram"]["loopback"]
    if not warren.has_udp_forward(bench.warren):
        lo["skipped"] = "this warren has no UDP forward (-U) yet"
        return
    netns, procs = BenchNetns(), BenchProcs(bench.tmp)
    ns = netns.create("dglo")
    nsrun(ns, ["ip", "link", "set", "lo", "up"])
    for engine in ENGINES:
        cell = lo.setdefault(engine, {"errors": []})
        started = []
        try:
            started = list(_warren_up(bench, procs, ns, ns, "127.0.0.1",
                                      engine, "udp", 4500))
            out = os.path.join(bench.tmp, f"dglo-{engine}.json")
            secs = P["t"]
            sink = procs.start(f"dglo-sink-{engine}", [
                LINKEMU_PY, LINKEMU, "udp-sink", "--bind", "127.0.0.1",
                "--port", str(WG_PORT), "--out", out, "--idle", "1",
                "--max-time", str(secs + 20)], netns=ns)
            sink.wait_log("listening")
            cpu0 = [cpu_s(p.pid) for p in started]
            # As fast as the (Python) sender goes: an offered rate above
            # what it reaches.
            count = int(secs * 300000)
            t0 = time.monotonic()
            nsrun(ns, [LINKEMU_PY, LINKEMU, "udp-send", "--to", "127.0.0.1",
                       "--port", str(FORWARD_PORT), "--count", str(count),
                       "--pps", "300000", "--size", str(LO_SIZE)],
                  timeout=secs * 20 + 60)
            sent_s = time.monotonic() - t0
            cpu = sum((cpu_s(p.pid) or 0) - (c or 0)
                      for p, c in zip(started, cpu0))
            sink.popen.wait(timeout=secs + 40)
            with open(out) as f:
                rec = json.load(f)
            got = len(rec["seqs"])
            span = ((rec["last_ns"] or 0) - (rec["first_ns"] or 0)) / 1e9
            mb = rec["bytes"] / 1e6
            cell.update(sent=count, sent_s=round(sent_s, 2),
                        offered_pps=round(count / sent_s),
                        delivered=got,
                        delivered_pps=round(got / span) if span else None,
                        loss_pct=round(100.0 * (count - got) / count, 3),
                        cpu_s=round(cpu, 2),
                        cpu_ms_per_mb=round(1000 * cpu / mb, 2)
                        if mb else None)
            log(f"  loopback {engine}: {cell['delivered_pps']} datagrams/s "
                f"delivered of {cell['offered_pps']} offered, "
                f"{cell['cpu_ms_per_mb']} CPU ms/MB")
        except (RuntimeError, AssertionError, OSError,
                subprocess.TimeoutExpired) as e:
            cell["errors"].append(str(e)[:500])
            log(f"  loopback {engine}: {str(e)[:200]} (ERROR)")
        finally:
            for p in started:
                CLEAN.stop(p.popen)
    CLEAN.del_netns(ns)


def run(bench, R):
    """The datagram group; results in R["datagram"]."""
    P = dict(bench.P)
    P.setdefault("dg_runs", 1 if bench.args.quick else 3)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    R["datagram"] = {"links": {}, "loopback": {}, "load_at_start": load,
                     "params": {"t": P["t"], "omit": P["omit"],
                                "runs": P["dg_runs"],
                                "udp_rate": UDP_RATE, "udp_len": UDP_LEN,
                                "lo_size": LO_SIZE}}
    _links(bench, R, P)
    _loopback(bench, R, P)
    with open("/proc/loadavg") as f:
        R["datagram"]["load_at_end"] = " ".join(f.read().split()[:3])


def render_md(R, L):
    """The group's section of the Markdown report."""
    D = R.get("datagram")
    if not D:
        return
    p = D["params"]
    L += ["## Datagrams: WireGuard over warren", "",
          f"WireGuard (wireguard-go, MTU 1420) between the namespaces; "
          f"iperf3 TCP inside it (`-t {p['t']} -O {p['omit']}`, median of "
          f"{p['runs']}), and `iperf3 -u -b {p['udp_rate']} -l "
          f"{p['udp_len']}` (loss and jitter as iperf3's receiver counts "
          f"them). Load average {D['load_at_start']} at the start, "
          f"{D.get('load_at_end', '?')} at the end: on a shared machine "
          "the numbers are indicative.", "",
          "| link | case | TCP Mbit/s | of direct | UDP lost | UDP jitter "
          "ms | CPU s |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, cells in D["links"].items():
        direct = cells.get("wg-direct", {}).get("tcp_mbit") or []
        dmed = sorted(direct)[len(direct) // 2] if direct else None
        for case, c in cells.items():
            if not isinstance(c, dict):
                continue
            v = c.get("tcp_mbit") or []
            med = sorted(v)[len(v) // 2] if v else None
            u = c.get("udp") or {}
            rel = f"{100 * med / dmed:.0f}%" if med and dmed else ""
            # The reason, without the log line's time and level.
            err = f" ({c['errors'][0].rsplit('] ', 1)[-1][:80]})" \
                if c.get("errors") else ""
            L.append(f"| {name} | {case}{err} | "
                     f"{'' if med is None else med} | {rel} | "
                     f"{u.get('lost_pct', '')}% | {u.get('jitter_ms', '')} | "
                     f"{c.get('cpu_s', '')} |")
        L.append(f"| {name} | (emulator loss A→B) | | | "
                 f"{cells.get('measured_loss_pct')}% | | |")
    L.append("")
    lo = D["loopback"]
    L += [f"Loopback, {p['lo_size']}-byte datagrams through one warren "
          "client and server (`-U`):", ""]
    if lo.get("skipped"):
        L += [f"not run: {lo['skipped']}.", ""]
        return
    L += ["| engine | offered /s | delivered /s | lost | CPU ms/MB |",
          "|---|---:|---:|---:|---:|"]
    for engine, c in lo.items():
        if c.get("errors") and "delivered" not in c:
            why = c["errors"][0].rsplit("] ", 1)[-1][:80]
            L.append(f"| {engine} | error: {why} | | | |")
            continue
        L.append(f"| {engine} | {c.get('offered_pps')} | "
                 f"{c.get('delivered_pps')} | {c.get('loss_pct')}% | "
                 f"{c.get('cpu_ms_per_mb')} |")
    L += ["", "The sender is Python (tests/e2e/linkemu.py udp-send): the "
          "offered rate is what it reached, not what warren can take.", ""]
