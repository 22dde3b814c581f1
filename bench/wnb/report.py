"""The benchmark's outputs: Markdown tables, JSON, PNG plots."""

import json
import math
import os

from . import datagram


def percentile(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    k = min(len(v) - 1, max(0, math.ceil(p / 100.0 * len(v)) - 1))
    return v[k]


def write(R, out, log):
    os.makedirs(out, exist_ok=True)
    m = R["meta"]
    stamp = m["date"].replace(" ", "-").replace(":", "")
    base = f"{stamp}-{m['hostname']}" + \
        ("-quick" if m["quick"] else "") + \
        ("-reverse" if m.get("reverse") else "")
    R["plots"] = plots(R, os.path.join(out, base))
    with open(os.path.join(out, base + ".json"), "w") as f:
        json.dump(R, f, indent=1)
        f.write("\n")
    md = render_md(R)
    for fn in (base + ".md", "latest.md"):
        with open(os.path.join(out, fn), "w") as f:
            f.write(md)
    log(f"wrote {os.path.join(out, base)}.md, .json"
        f"{''.join(', ' + p for p in R['plots'])} and latest.md")
    print(md)


# ---- Markdown ---------------------------------------------------------------

def fmt_bulk(c):
    if not c:
        return "—"
    if c.get("median") is None:
        return "error" if c.get("errors") else "—"
    s = f"{c['median']:.1f}"
    if len(c["runs"]) > 1:
        s += f" ({c['min']:.1f}–{c['max']:.1f})"
    if c.get("errors"):
        s += f" [{len(c['errors'])} failed]"
    return s


def fmt_cost(c, scale=1.0, digits=1):
    """client + server CPU per MB (or per GB with scale=1000)."""
    if not c or not c.get("cpu_ms_per_mb"):
        return "—"
    v = c["cpu_ms_per_mb"]
    cl, sv = v.get("client"), v.get("server")
    parts = [x for x in (cl, sv) if x is not None]
    if not parts:
        return "—"
    tot = sum(parts) * scale
    f = f"{{:.{digits}f}}"
    if cl is not None and sv is not None:
        return f"{f.format(tot)} ({f.format(cl * scale)} + " \
            f"{f.format(sv * scale)})"
    return f"{f.format(tot)} ({'client' if cl is not None else 'server'})"


def mib(v):
    return "—" if v is None else f"{v / 1024:.1f}"


def subjects_with(R, pred, group="main"):
    """Names of the subjects of a report group for which pred holds, in
    the table's order (group None: every group)."""
    return [s["name"] for s in R["subjects"] if pred(s["name"]) and
            (group is None or s.get("group", "main") == group)]


def render_md(R):
    m, L = R["meta"], []
    P = m["params"]
    L += [f"# warren benchmark: {m['date']} on {m['hostname']}", ""]
    L.append(f"- kernel {m['kernel']}, CPU {m['cpu']} ×{m['cpus']}, "
             f"load average at start {m['load_at_start']}")
    L.append(f"- {m['warren']}, commit {m['commit']}, build `{m['build']}`")
    L.append(f"- default TCP congestion control (the relays' and "
             f"carriers' TCP): {m['host_tcp_cc']}; RLIMIT_NOFILE "
             f"{m['nofile']}")
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    L.append(f"- Debian packages: {pk}")
    rev = m.get("reverse")
    L.append(f"- {'`--quick`, ' if m['quick'] else ''}"
             f"{'`--reverse`, ' if rev else ''}iperf3 `-t {P['t']} "
             f"-O {P['omit']}{' -R' if rev else ''}` (bulk data flows "
             f"{'server → client' if rev else 'client → server'}); "
             f"whole run {m.get('duration_s', '?')} s ("
             + ", ".join(f"{k} {v} s" for k, v in R["phase_s"].items())
             + ")")
    L.append("- produced by `bench/run.py` (see `bench/README.md`); "
             "every run's numbers are in the JSON next to this file")
    L.append("")
    L += ["Subjects:", ""]
    for s in R["subjects"]:
        L.append(f"- `{s['name']}`: {s['desc']}")
    for name, why in R["skipped"].items():
        L.append(f"- `{name}`: not run ({why})")
    L.append("")
    if R["links"]:
        L += ["Links (loss measured client → server by the emulator):", "",
              "| link | emulator SPEC (both ways) | measured loss | "
              "runs, 1 / 4 streams | peers |", "|---|---|---:|---|---|"]
        for x in R["links"]:
            st = R["link_stats"].get(x["name"], {})
            lp = st.get("a2b_loss_pct")
            runs = "1 / 1" if m["quick"] else \
                f"{x['runs'][0]} / {x['runs'][1]}"
            L.append(f"| {x['name']} | "
                     f"`{x['spec'] or 'veth pair, no emulator'}` | "
                     f"{'' if lp is None else f'{lp:.2f}%'} | {runs} | "
                     f"{'yes (1 / 1)' if x['peers'] else ''} |")
        L.append("")
    bulk_md(R, L)
    loopback_md(R, L)
    latency_md(R, L)
    cost_md(R, L)
    carriers_md(R, L)
    kcptun_md(R, L)
    idle_md(R, L)
    datagram.render_md(R, L)
    for p in R.get("plots", []):
        L += [f"![{p}]({p})", ""]
    notes_md(R, L)
    return "\n".join(L)


def bulk_md(R, L):
    if not any(R["bulk"].values()):
        return
    P = R["meta"]["params"]
    for n in ("1", "4"):
        subs = subjects_with(R, lambda s: any(
            R["bulk"][x["name"]].get(s, {}).get(n)
            for x in R["links"] if x["name"] in R["bulk"]))
        if not subs:
            continue
        L.append(f"## Bulk goodput, {n} stream{'s' if n != '1' else ''} "
                 f"(Mbit/s, iperf3 `-t {P['t']} -O {P['omit']}"
                 f"{' -P ' + n if n != '1' else ''}`, median (min–max))")
        L += ["", "| link | " + " | ".join(subs) + " |",
              "|---|" + "---:|" * len(subs)]
        for x in R["links"]:
            row = R["bulk"].get(x["name"], {})
            if not any(c.get(n) for c in row.values()):
                continue
            L.append(f"| {x['name']} | " + " | ".join(
                fmt_bulk(row.get(s, {}).get(n)) for s in subs) + " |")
        L.append("")
    L.append("— : not run on that link. warren, direct TCP and "
             "kcptun-fast3 run on every link; kcptun-default and the TCP "
             "relays (socat, stunnel, shadowsocks) only where the links "
             "table says peers, to fit the time budget. The relays cross "
             "the link in kernel TCP with the host's default congestion "
             f"control ({R['meta']['host_tcp_cc']}), so on lossy links they "
             "follow the direct TCP column of that name.")
    L.append("")


def loopback_md(R, L):
    lo = R["loopback"]
    if not lo:
        return
    L += ["## Loopback ceiling (client and server in one namespace, lo, no "
          "emulator; 1 stream)", "",
          "| subject | goodput (Mbit/s) | CPU s per GB: total (client + "
          "server) |", "|---|---:|---:|"]
    for s in subjects_with(R, lambda s: s in lo):
        L.append(f"| {s} | {fmt_bulk(lo[s])} | "
                 f"{fmt_cost(lo[s], scale=1.0, digits=2)} |")
    L += ["", "CPU per GB: user + system time of the subject's own "
          "processes (both ends) during the run, per GB iperf3 sent; the "
          "kernel's TCP work for iperf3's sockets is nobody's here. "
          "tcp-cubic is iperf3 over lo: the machine's ceiling.", ""]


def latency_md(R, L):
    lat = R["latency"]
    if not lat:
        return
    subs = subjects_with(R, lambda s: any(s in row for row in lat.values()))
    n = R["meta"]["params"]["lat_conns"]
    L.append(f"## Connect + first byte ({n} sequential connections: "
             "connect, send 1 byte, read the echo; ms, median / p99)")
    L += ["", "| link | " + " | ".join(subs) + " |",
          "|---|" + "---:|" * len(subs)]
    for x in R["links"]:
        if x["name"] not in lat:
            continue
        cells = []
        for s in subs:
            d = lat[x["name"]].get(s)
            if not d:
                cells.append("—")
            elif d["median_ms"] is None:
                cells.append("error")
            else:
                c = f"{d['median_ms']:.1f} / {d['p99_ms']:.1f}"
                if d["failed"]:
                    c += f" [{d['failed']} failed]"
                cells.append(c)
        L.append(f"| {x['name']} | " + " | ".join(cells) + " |")
    L += ["", "tcp-cubic is a direct connection (bbr would not differ on a "
          "1-byte exchange).", ""]


def cost_md(R, L):
    if not any(R["bulk"].values()):
        return
    links = [x["name"] for x in R["links"] if x["name"] in R["bulk"]]
    subs = subjects_with(R, lambda s: not any(
        x["direct"] for x in R["subjects"] if x["name"] == s))
    L += ["## CPU per MB moved, 1 stream (ms; total (client + server))", "",
          "| subject | " + " | ".join(links) + " |",
          "|---|" + "---:|" * len(links)]
    for s in subs:
        L.append(f"| {s} | " + " | ".join(
            fmt_cost(R["bulk"][ln].get(s, {}).get("1"), digits=2)
            for ln in links) + " |")
    L += ["", "User + system time of the subject's processes on each side "
          "(`/proc/PID/stat`, forked children included), summed over the "
          "link's runs and divided by the MB iperf3 sent (omitted seconds "
          "included). socat runs on the client side only.", ""]
    L += ["## Peak memory (VmHWM, MiB, client / server; the largest over "
          "the links)", "", "| subject | client | server |",
          "|---|---:|---:|"]
    for s in subs:
        best = {"client": None, "server": None}
        for row in R["peak_kib"].values():
            for side, v in row.get(s, {}).items():
                if v is not None and (best[side] is None or v > best[side]):
                    best[side] = v
        L.append(f"| {s} | {mib(best['client'])} | {mib(best['server'])} |")
    L += ["", "All of a side's processes summed (kcptun: two pairs, one per "
          "target; shadowsocks: two ss-tunnel; socat: every forked child "
          "alive at the end, usually none). Each link starts its processes "
          "afresh.", ""]


def fmt_side(c, side):
    v = (c or {}).get("cpu_ms_per_mb") or {}
    return "—" if v.get(side) is None else f"{v[side]:.1f}"


def carriers_md(R, L):
    """warren's engine x carrier pairs: loopback and the links where the
    extra pairs ran, next to the main table's warren subjects."""
    extra = subjects_with(R, lambda s: True, group="carriers")
    if not extra:
        return
    subs = subjects_with(R, lambda s: s.startswith("warren-")) + extra
    links = [x["name"] for x in R["links"] if any(
        R["bulk"].get(x["name"], {}).get(s) for s in extra)]
    L += ["## warren's engines over each carrier (1 stream: Mbit/s; CPU "
          "ms per MB, client + server)", "",
          "| subject | " + " | ".join(
              ["loopback"] + links) + " |",
          "|---|" + "---:|" * (1 + len(links))]
    for s in subs:
        cells = [R["loopback"].get(s)] + \
            [R["bulk"].get(ln, {}).get(s, {}).get("1") for ln in links]
        L.append(f"| {s} | " + " | ".join(
            "—" if not c or c.get("median") is None else
            f"{c['median']:.1f}; {fmt_cost(c, digits=1)}"
            for c in cells) + " |")
    L += ["", "The engine × carrier pairs beyond the main table run once, "
          "on loopback and the 1% link only (time budget); the main "
          "table's warren subjects are repeated here for comparison. "
          "tcp and tls carriers cross the link in kernel TCP with the "
          f"host's congestion control ({R['meta']['host_tcp_cc']}).", ""]


def kcptun_md(R, L):
    """Issue 8: warren at either end of a kcptun deployment against
    kcptun at both, with the same (kcptun-fast3) settings."""
    pairs = subjects_with(R, lambda s: True, group="kcptun")
    if not pairs:
        return
    subs = [s for s in ("kcptun-fast3",) if any(
        x["name"] == s for x in R["subjects"])] + pairs
    L += ["## kcptun's wire format: warren at either end (kcptun-fast3's "
          "settings on both ends; 1 stream)", "",
          "| link | pair | Mbit/s, median (min–max) | CPU ms/MB client | "
          "CPU ms/MB server |", "|---|---|---:|---:|---:|"]
    rows = [("loopback", R["loopback"])] + \
        [(x["name"], {s: (R["bulk"].get(x["name"], {}).get(s) or {})
                      .get("1") for s in subs}) for x in R["links"]]
    for ln, cells in rows:
        if not any(cells.get(s) for s in pairs):
            continue
        for s in subs:
            c = cells.get(s)
            L.append(f"| {ln} | {s} | {fmt_bulk(c)} | "
                     f"{fmt_side(c, 'client')} | {fmt_side(c, 'server')} |")
    L += ["", "kcptun-fast3 is kcptun at both ends; warren-to-kcptun is "
          "`warren client --engine kcptun` against `kcptun-server`, "
          "kcptun-to-warren `kcptun-client` against `warren server "
          "--engine kcptun`. The CPU of the warren end compares with the "
          "same side of kcptun-fast3 (loopback: seconds per GB).", ""]


def idle_md(R, L):
    idle = R["idle"]
    if not idle:
        return
    L += ["## Idle streams (N connections through the tunnel to an echo "
          "server, each echoed once, then silent)", "",
          "| subject | N | streams up | bytes per stream, client | "
          "bytes per stream, server | stopped by |",
          "|---|---:|---:|---:|---:|---|"]
    for s in subjects_with(R, lambda s: s in idle):
        for n, d in sorted(idle[s].items(), key=lambda kv: int(kv[0])):
            bps = d.get("bytes_per_stream", {})

            def b(v):
                return "—" if v is None else f"{v:,}"
            why = d.get("error") or d.get("stopped") or ""
            if d.get("died"):
                why += " " + "; ".join(d["died"])
            L.append(f"| {s} | {int(n):,} | {d['up']:,} | "
                     f"{b(bps.get('client'))} | {b(bps.get('server'))} | "
                     f"{why.strip()} |")
    L += ["", "Growth of the proportional set size (PSS, "
          "`/proc/PID/smaps_rollup`) of each side's processes from one "
          "second after start to one second after the last stream came "
          "up, divided by the streams up; fresh processes for each N, on a "
          "veth pair. The connections are opened one after the other; the "
          "first one that fails or gets no echo within 5 s stops the "
          "count (a stream limit).", ""]


def notes_md(R, L):
    notes = list(R["notes"])
    for ln, row in R["bulk"].items():
        for s, cells in row.items():
            for n, c in cells.items():
                for e in c.get("errors", []):
                    notes.append(f"{ln} {s} P{n}: {e.splitlines()[0]}")
    for s, c in R["loopback"].items():
        for e in c.get("errors", []):
            notes.append(f"loopback {s}: {e.splitlines()[0]}")
    if notes:
        L += ["## Notes", ""] + [f"- {x.splitlines()[0]}" for x in notes]
        L.append("")


# ---- plots ------------------------------------------------------------------

def plots(R, base):
    try:
        import matplotlib
    except ImportError:
        R["notes"].append("No plots: python3-matplotlib is not installed "
                          "(scripts/deps.sh bench).")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = []
    if plot_loss(R, plt, base + ".png"):
        out.append(os.path.basename(base + ".png"))
    if plot_cost(R, plt, base + "-cost.png"):
        out.append(os.path.basename(base + "-cost.png"))
    return out


def plot_loss(R, plt, path):
    rnd = [x for x in R["links"] if x["spec"] and
           x["name"].startswith("100mbit-25ms-") and
           x["name"][len("100mbit-25ms-"):].rstrip("%").isdigit()]
    burst = [x for x in R["links"] if "burst" in x["name"]]
    if not rnd:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = 0
    for k, s in enumerate(subjects_with(R, lambda s: True)):
        color = f"C{k % 10}"
        xs, ys, lo, hi = [], [], [], []
        for x in rnd:
            c = R["bulk"].get(x["name"], {}).get(s, {}).get("1")
            if not c or c.get("median") is None:
                continue
            xs.append(x["nominal_loss_pct"])
            ys.append(c["median"])
            lo.append(c["median"] - c["min"])
            hi.append(c["max"] - c["median"])
        if not xs:
            continue
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", color=color,
                    capsize=3, label=s)
        drawn += 1
        for x in burst:
            c = R["bulk"].get(x["name"], {}).get(s, {}).get("1")
            if c and c.get("median") is not None:
                ax.plot([x["nominal_loss_pct"]], [c["median"]], marker="s",
                        markerfacecolor="none", color=color,
                        linestyle="none", markersize=9)
    if not drawn:
        plt.close(fig)
        return False
    ax.set_yscale("log")
    ax.set_xlabel("packet loss each way (%); hollow squares: bursty loss "
                  "at its average")
    ax.set_ylabel("goodput, 1 stream (Mbit/s, log)")
    ax.set_title(f"100 Mbit/s, 25 ms one way: goodput vs loss "
                 f"({R['meta']['date']}, median, min–max bars)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_cost(R, plt, path):
    link = next((x["name"] for x in R["links"]
                 if x["name"] == "100mbit-25ms-0%"), None)
    lo = R["loopback"]
    if not link and not lo:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    drawn = 0
    panels = [(axes[0], link and {s: R["bulk"][link].get(s, {}).get("1")
                                  for s in R["bulk"].get(link, {})},
               "CPU ms per MB, 1 stream, 100 Mbit/s 25 ms", 1.0),
              (axes[1], lo, "CPU s per GB, loopback ceiling", 1.0)]
    for ax, cells, title, scale in panels:
        names = [n for n in subjects_with(R, lambda s: True) if cells and
                 (cells.get(n) or {}).get("cpu_ms_per_mb")]
        names = [n for n in names
                 if any(v is not None for v in
                        cells[n]["cpu_ms_per_mb"].values())]
        if not names:
            ax.set_visible(False)
            continue
        drawn += 1
        cl = [(cells[n]["cpu_ms_per_mb"].get("client") or 0) * scale
              for n in names]
        sv = [(cells[n]["cpu_ms_per_mb"].get("server") or 0) * scale
              for n in names]
        ax.bar(names, cl, label="client", color="C0")
        ax.bar(names, sv, bottom=cl, label="server", color="C1")
        if cells is lo:
            for k, n in enumerate(names):
                med = lo[n].get("median")
                if med:
                    ax.text(k, cl[k] + sv[k], f"{med / 1000:.2f}\nGbit/s",
                            ha="center", va="bottom", fontsize=7)
        ax.margins(y=0.15)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    if not drawn:
        plt.close(fig)
        return False
    fig.suptitle(f"Cost of moving bytes ({R['meta']['date']}); lower is "
                 "better", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
