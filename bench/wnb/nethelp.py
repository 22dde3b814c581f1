"""Small network programs run inside the namespaces
(`python3 bench/run.py _echo|_latency|_probe|_idle ...`)."""

import json
import selectors
import socket
import sys
import time


def echo(port):
    """An echo server on 0.0.0.0:port, one thread, epoll: it holds 10,000
    idle connections as easily as one."""
    sel = selectors.DefaultSelector()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(4096)
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ, None)
    print("listening", flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _ = srv.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break  # EMFILE: try again on the next event
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(c, selectors.EVENT_READ, b"")
                continue
            c = key.fileobj
            try:
                d = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(c)
                c.close()
                continue
            try:
                c.send(d)  # small echoes: a short send only drops bytes
            except OSError:
                sel.unregister(c)
                c.close()


def one_ttfb(host, port, timeout):
    """Connects, sends one byte, reads the echo: returns ms."""
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise OSError("no echo")
        return (time.monotonic() - t0) * 1000.0
    finally:
        s.close()


def latency(host, port, count):
    ms, failed = [], 0
    for _ in range(count):
        try:
            ms.append(one_ttfb(host, port, 10.0))
        except OSError:
            failed += 1
    print(json.dumps({"ms": ms, "failed": failed}))


def probe(host, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            one_ttfb(host, port, 2.0)
            print("ok")
            return 0
        except OSError:
            time.sleep(0.2)
    return 1


def idle(host, port, n, stall_s):
    """Opens up to n connections one after the other; each sends one byte
    and waits for its echo (so the stream is up end to end), then stays
    open and silent. Stops at the first connection that fails or gets no
    echo within stall_s (a stream limit), closing that one. Prints one JSON
    line, then holds every connection open until a line arrives on stdin."""
    socks, result = [], {"wanted": n, "up": 0, "stopped": None}
    t0 = time.monotonic()
    for i in range(n):
        s = None
        try:
            s = socket.create_connection((host, port), timeout=stall_s)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(b"x")
            d = s.recv(1)
            if d != b"x":
                raise OSError("connection closed before the echo" if not d
                              else "wrong echo")
        except OSError as e:
            if s is not None:
                s.close()
            what = "no echo within %.0f s" % stall_s \
                if isinstance(e, socket.timeout) else str(e)
            result["stopped"] = f"connection {i + 1}: {what}"
            break
        socks.append(s)
    result["up"] = len(socks)
    result["open_s"] = round(time.monotonic() - t0, 2)
    print(json.dumps(result), flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()
