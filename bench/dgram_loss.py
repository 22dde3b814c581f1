#!/usr/bin/env python3
"""Where datagrams are lost at rate, on loopback (issue 17's "loss at
rate"): warren-udpblast sends SIZE-byte datagrams at PPS for SECS through
a warren UDP forward (client and server in one namespace, udp carrier)
to warren-udpblast's sink, or straight to the sink (`direct`, the path's
own loss), and prints what arrived, with warren's counters from its logs
(the forward's datagrams up, the client carrier's packets out, what the
server's dialer sent on to the target and what its socket refused).

    sudo bench/dgram_loss.py [--build build/release] [--size 1200]
        [--pps 30000] [--secs 3] [--runs 3] direct quic kcp

Run as root (it makes a network namespace). The figures in
docs/performance.md ("Datagrams at rate") come from it."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import warren  # noqa: E402

SINK_PORT, FWD_PORT, SRV_PORT = 9999, 9000, 4500


def run_one(build, engine, size, pps, secs, tmp):
    binary = os.path.join(build, "warren")
    blast = os.path.join(build, "tools", "udpblast", "warren-udpblast")
    ns = f"dgloss{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    procs, logs = [], {}
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"],
                       check=True)

        def inns(*a):
            return ["ip", "netns", "exec", ns, *a]

        to = SINK_PORT
        if engine != "direct":
            keys = {}
            for name in ("s", "c"):
                k = subprocess.run([binary, "genkey"], check=True,
                                   capture_output=True, text=True).stdout
                path = os.path.join(tmp, f"{name}.key")
                with open(os.open(path, os.O_WRONLY | os.O_CREAT |
                                  os.O_TRUNC, 0o600), "w") as f:
                    f.write(k)
                pub = subprocess.run([binary, "pubkey"], input=k, check=True,
                                     capture_output=True,
                                     text=True).stdout.strip()
                keys[name] = (path, pub)
            url = f"udp://127.0.0.1:{SRV_PORT}"
            mode = warren.TEST_MODE.get(engine)
            roles = (
                ("s", warren.argv(binary, "server", url, key=keys["s"][0],
                                  peer_key=keys["c"][1], engine=engine,
                                  mode=mode, log_level="info",
                                  allow=(f"udp://127.0.0.1:{SINK_PORT}",))),
                ("c", warren.argv(binary, "client", url, key=keys["c"][0],
                                  peer_key=keys["s"][1], engine=engine,
                                  mode=mode, log_level="info",
                                  extra=("-U", f"127.0.0.1:{FWD_PORT}="
                                         f"127.0.0.1:{SINK_PORT}"))))
            for name, a in roles:
                logs[name] = os.path.join(tmp, f"{name}.log")
                with open(logs[name], "w") as f:
                    procs.append(subprocess.Popen(inns(*a), stdout=f,
                                                  stderr=subprocess.STDOUT))
                time.sleep(0.3)
            deadline = time.monotonic() + 15
            while "client ready" not in open(logs["c"]).read():
                if time.monotonic() > deadline:
                    raise RuntimeError("client not ready")
                time.sleep(0.05)
            # Path MTU discovery and the first flow, before the clock.
            time.sleep(2)
            to = FWD_PORT
        sink = subprocess.Popen(inns(blast, "sink", "127.0.0.1",
                                     str(SINK_PORT), "1000"),
                                stdout=subprocess.PIPE, text=True)
        sink.stdout.readline()
        snd = json.loads(subprocess.run(
            inns(blast, "send", "127.0.0.1", str(to), str(size), str(pps),
                 str(secs)), check=True, capture_output=True,
            text=True).stdout)
        got = json.loads(sink.communicate(timeout=secs + 30)[0])
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", ns])
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    r = {"engine": engine, "size": size, "offered_pps": round(snd["pps"]),
         "sent": snd["sent"], "arrived": got["unique"],
         "lost_pct": round(100.0 * (snd["sent"] - got["unique"]) /
                           snd["sent"], 2), "load": load}
    if "c" in logs:
        log = open(logs["c"]).read()
        m = re.search(r"closed: \d+ flows, (\d+) datagrams up", log)
        if m:
            r["up"] = int(m.group(1))
        m = re.search(r"udp#1: closed \(in \d+ pkts \d+ bytes, out (\d+) "
                      r"pkts", log)
        if m:
            r["client_pkts_out"] = int(m.group(1))
    if "s" in logs:
        m = re.search(r"closed: \d+ flows \(\d+ denied\), (\d+) datagrams "
                      r"to targets, \d+ back, dropped (\d+) the target",
                      open(logs["s"]).read())
        if m:
            r["server_to_target"] = int(m.group(1))
            r["server_drop_target"] = int(m.group(2))
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(HERE, "..", "build",
                                                   "release"))
    p.add_argument("--size", type=int, default=1200)
    p.add_argument("--pps", type=int, default=30000)
    p.add_argument("--secs", type=float, default=3)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("cases", nargs="+")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for case in a.cases:
            for _ in range(a.runs):
                print(json.dumps(run_one(a.build, case, a.size, a.pps,
                                         a.secs, tmp)), flush=True)


if __name__ == "__main__":
    main()
