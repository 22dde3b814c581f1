"""SOCKS5 spoken by hand, for tests of warren's SOCKS5 front end: what curl
cannot send. Run inside a test namespace with
`ip netns exec NS /usr/bin/python3 socksclient.py COMMAND ...`, or import
the functions.

  malformed PORT
      one connection per malformed or unsupported request to the proxy on
      127.0.0.1:PORT (SOCKS4, HTTP, a bad address type, BIND, UDP
      ASSOCIATE, a 255-byte name, a greeting cut short, junk after a
      greeting); prints {case: [reply hex, end]} as JSON, end being how
      the connection ended: "eof", "reset" or "open" (still open after the
      wait).
  partial-greetings PORT [--conns N] [--wait S]
      opens N (20) connections that each send the first byte of a greeting
      and then nothing, and waits up to S (30) seconds for each to end;
      prints the sorted set of ends ("eof", "reset", "data", "open") joined
      by commas, and the seconds the wait took.
  fetch PROXY HOST PORT PATH
      a well-behaved client: no-auth greeting, CONNECT to HOST (a name)
      and PORT through the proxy at PROXY (HOST:PORT or unix:PATH), then
      an HTTP/1.0 GET of PATH; checks both replies say success and prints
      the HTTP response. Exit status 0 if the proxy did its part.
  udp-dns PORT SERVER NAME [--dns-port P] [--count N] [--timeout S]
      UDP ASSOCIATE (RFC 1928 section 7) through the proxy on
      127.0.0.1:PORT, then N (3) DNS queries for the A records of NAME,
      each in a SOCKS5 UDP datagram to SERVER:P (53) via the relay; prints
      {"rep": the reply code, "relay": the relay's address, "answers":
      [the A records of each answer, or null when none came within S
      (3) seconds], "source": the header of each answer's datagram}.
      No Debian program speaks SOCKS5 UDP, so the tests bring their own.
"""

import argparse
import json
import random
import socket
import struct
import sys
import time


def connect(port, timeout=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def rest(s, timeout=5.0):
    """What the proxy sends until the connection ends or `timeout` passes
    in silence: (bytes, "eof" | "reset" | "open")."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return out, "eof"
            out += b
    except ConnectionResetError:
        return out, "reset"
    except socket.timeout:
        return out, "open"


def _after_greeting(port, request):
    """A no-auth greeting, its 2-byte answer, then `request`."""
    s = connect(port)
    s.sendall(b"\x05\x01\x00")
    s.recv(2)
    s.sendall(request)
    return rest(s)


def _sent(port, data, timeout=5.0):
    s = connect(port)
    s.sendall(data)
    return rest(s, timeout)


def malformed(port):
    """Every malformed case against the proxy on 127.0.0.1:port; a dict of
    case name -> (reply bytes, end)."""
    return {
        "socks4": _sent(port, b"\x04\x01\x00\x50\x7f\x00\x00\x01user\x00"),
        "http": _sent(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "bad_atyp": _after_greeting(
            port, b"\x05\x01\x00\x02\x01\x02\x03\x04\x00\x50"),
        "bind": _after_greeting(
            port, b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50"),
        "udp": _after_greeting(
            port, b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"),
        "huge_name": _after_greeting(
            port, b"\x05\x01\x00\x03\xff" + b"a" * 255 + b"\x00\x50"),
        # nmethods 255 but only 3 given, then silence: the proxy waits for
        # the rest (bounded by the handshake timeout), never reads past it.
        "short_methods": _sent(port, b"\x05\xff\x00\x01\x02", timeout=1),
        "junk_after": _sent(port, b"\x05\xff" + bytes(range(255)) +
                            b"\x00" * 300, timeout=1),
    }


def partial_greetings(port, conns=20, wait=30.0):
    """Opens `conns` connections that each send b"\\x05" and then nothing;
    returns (the set of ends, seconds until the last ended)."""
    socks = []
    for _ in range(conns):
        s = connect(port)
        s.sendall(b"\x05")
        socks.append(s)
    t0 = time.monotonic()
    ends = set()
    for s in socks:
        s.settimeout(wait)
        try:
            ends.add("eof" if not s.recv(1) else "data")
        except ConnectionResetError:
            ends.add("reset")
        except socket.timeout:
            ends.add("open")
    return ends, time.monotonic() - t0


def fetch(proxy, host, port, path, timeout=10.0):
    """GET http://host:port/path through the SOCKS5 proxy at `proxy`
    (HOST:PORT or unix:PATH); returns the HTTP response. Raises
    AssertionError if a SOCKS reply is not a success."""
    if proxy.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(proxy[5:])
    else:
        h, _, p = proxy.rpartition(":")
        s = socket.create_connection((h.strip("[]"), int(p)),
                                     timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    got = s.recv(2)
    assert got == b"\x05\x00", got
    name = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name +
              port.to_bytes(2, "big"))
    got = s.recv(10)
    assert got[:2] == b"\x05\x00", got
    s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    s.close()
    return data


def udp_header(host, port):
    """The SOCKS5 UDP request header for host (an IPv4 literal or a name)
    and port: RSV 0, FRAG 0, ATYP, address, port."""
    try:
        addr = b"\x01" + socket.inet_aton(host)
    except OSError:
        name = host.encode()
        addr = b"\x03" + bytes([len(name)]) + name
    return b"\x00\x00\x00" + addr + port.to_bytes(2, "big")


def parse_udp_header(data):
    """(host, port, header length) of a SOCKS5 UDP datagram."""
    atyp = data[3]
    if atyp == 1:
        return socket.inet_ntoa(data[4:8]), int.from_bytes(data[8:10],
                                                           "big"), 10
    if atyp == 4:
        return (socket.inet_ntop(socket.AF_INET6, data[4:20]),
                int.from_bytes(data[20:22], "big"), 22)
    n = data[4]
    return (data[5:5 + n].decode(), int.from_bytes(data[5 + n:7 + n], "big"),
            7 + n)


def associate(port, timeout=5.0):
    """UDP ASSOCIATE through the proxy on 127.0.0.1:port from a UDP socket
    bound first, so the request can name the client's address and port.
    Returns (the control connection, the UDP socket, the reply code, the
    relay's (host, port))."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    s = connect(port, timeout)
    s.sendall(b"\x05\x01\x00")
    got = s.recv(2)
    assert got == b"\x05\x00", got
    s.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("127.0.0.1") +
              u.getsockname()[1].to_bytes(2, "big"))
    rep = b""
    while len(rep) < 10:
        b = s.recv(10 - len(rep))
        if not b:
            break
        rep += b
    if len(rep) < 10:
        return s, u, rep[1] if len(rep) > 1 else None, None
    relay = (socket.inet_ntoa(rep[4:8]), int.from_bytes(rep[8:10], "big"))
    return s, u, rep[1], relay


def dns_query(name, qid):
    """A recursive DNS query for the A records of name."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)


def dns_answers(msg, qid):
    """The A records (dotted quads) in DNS response msg to query qid, or
    None if msg is not that response."""
    if len(msg) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", msg)
    if rid != qid or not flags & 0x8000:
        return None
    off = 12

    def skip_name(off):
        while True:
            n = msg[off]
            if n & 0xC0 == 0xC0:
                return off + 2
            off += 1 + n
            if n == 0:
                return off

    for _ in range(qd):
        off = skip_name(off) + 4
    out = []
    for _ in range(an):
        off = skip_name(off)
        typ, _, _, rdlen = struct.unpack_from("!HHIH", msg, off)
        off += 10
        if typ == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    return out


def udp_dns(port, server, name, dns_port=53, count=3, timeout=3.0):
    """DNS over UDP ASSOCIATE: see the module's help."""
    s, u, rep, relay = associate(port)
    res = {"rep": rep, "relay": relay and f"{relay[0]}:{relay[1]}",
           "answers": [], "source": []}
    if rep != 0:
        return res
    u.settimeout(timeout)
    for i in range(count):
        qid = random.randrange(1 << 16)
        u.sendto(udp_header(server, dns_port) + dns_query(name, qid), relay)
        got = None
        src = None
        deadline = time.monotonic() + timeout
        while got is None and time.monotonic() < deadline:
            try:
                data, frm = u.recvfrom(65536)
            except socket.timeout:
                break
            if frm != relay:
                continue
            host, sport, hl = parse_udp_header(data)
            got = dns_answers(data[hl:], qid)
            src = f"{host}:{sport}"
        res["answers"].append(got)
        res["source"].append(src)
    s.close()
    u.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("malformed")
    a.add_argument("port", type=int)
    a = sub.add_parser("partial-greetings")
    a.add_argument("port", type=int)
    a.add_argument("--conns", type=int, default=20)
    a.add_argument("--wait", type=float, default=30.0)
    a = sub.add_parser("fetch")
    a.add_argument("proxy")
    a.add_argument("host")
    a.add_argument("port", type=int)
    a.add_argument("path")
    a = sub.add_parser("udp-dns")
    a.add_argument("port", type=int)
    a.add_argument("server")
    a.add_argument("name")
    a.add_argument("--dns-port", type=int, default=53)
    a.add_argument("--count", type=int, default=3)
    a.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    if args.cmd == "malformed":
        print(json.dumps({k: [v[0].hex(), v[1]]
                          for k, v in malformed(args.port).items()}))
    elif args.cmd == "udp-dns":
        print(json.dumps(udp_dns(args.port, args.server, args.name,
                                 args.dns_port, args.count, args.timeout)))
    elif args.cmd == "partial-greetings":
        ends, secs = partial_greetings(args.port, args.conns, args.wait)
        print(",".join(sorted(ends)), round(secs, 1))
    else:
        sys.stdout.buffer.write(fetch(args.proxy, args.host, args.port,
                                      args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
