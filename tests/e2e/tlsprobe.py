"""A stranger at the tls carrier's port, for tests that it looks like an
ordinary web server to anyone without a preamble. Run inside a test
namespace with `ip netns exec NS /usr/bin/python3 tlsprobe.py HOST PORT
MODE`, or import probe().

MODE is what the stranger sends:
  http        a TLS handshake (ALPN h2 and http/1.1, no certificate
              check), then a curl-like HTTP GET
  garbage     a TLS handshake, then 512 bytes that are not HTTP
  badline     a TLS handshake, then a request line and one malformed
              header line (no colon), and no empty line: a web server
              answers 400 at once, without waiting for the head's end
  plain       plain HTTP, no TLS, to the TLS port
  rawgarbage  plain HTTP, then 512 bytes of garbage, no TLS
  tls         a TLS handshake, then nothing

Prints one JSON object: "version" and "alpn" (the TLS version and the
protocol the server chose), "cert" (its certificate's length in bytes),
"answer" (everything read until the server closed, as Latin-1), "secs"
(how long that read took), "error" (the exception name if the read ended
with a reset, a TLS error or a 20 s silence).
"""

import json
import socket
import ssl
import sys
import time


MODES = ("http", "garbage", "badline", "plain", "rawgarbage", "tls")


def probe(host, port, mode):
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    raw = socket.create_connection((host, port), timeout=20)
    out = {}
    if mode in ("plain", "rawgarbage"):
        raw.sendall(b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
        s = raw
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        s = ctx.wrap_socket(raw, server_hostname="www.example.org")
        out["version"] = s.version()
        out["alpn"] = s.selected_alpn_protocol()
        cert = s.getpeercert(binary_form=True)
        out["cert"] = len(cert or b"")
        if mode == "http":
            s.sendall(b"GET /index.html HTTP/1.1\r\n"
                      b"Host: www.example.org\r\n"
                      b"User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
        elif mode == "garbage":
            s.sendall(bytes(range(256)) * 2)
        elif mode == "badline":
            s.sendall(b"GET / HTTP/1.1\r\nHost www.example.org\r\n")
    if mode == "rawgarbage":
        raw.sendall(bytes(range(256)) * 2)
    data = b""
    t0 = time.monotonic()
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ConnectionResetError, ssl.SSLError, socket.timeout) as e:
        out["error"] = type(e).__name__
    out["secs"] = round(time.monotonic() - t0, 3)
    out["answer"] = data.decode("latin-1")
    return out


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in MODES:
        sys.exit("usage: tlsprobe.py HOST PORT " + "|".join(MODES))
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
