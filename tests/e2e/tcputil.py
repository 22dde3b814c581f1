"""TCP helpers for end-to-end tests: threaded servers, checkable payloads.

Payloads are deterministic pseudo-random byte streams identified by (size,
seed), so a sender and a receiver can compare sha256 digests without keeping
the data. Servers run in threads, one per connection, and record how each
connection ended ("eof", "reset", ...) and when, so tests can assert on what
the far side of a proxy saw. Everything has a timeout; nothing blocks forever.

    with TcpServer(echo) as srv:
        sent, got = echo_roundtrip(srv.hostport, 50 << 20)
        assert got.end == "eof" and got.sha256 == sent
"""

import errno
import hashlib
import os
import random
import socket
import threading
import time

BLOCK = 1 << 20


# ---- addresses -------------------------------------------------------------

def format_hostport(host, port):
    """Format an address as 127.0.0.1:80 or [::1]:80."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_hostport(text):
    """Inverse of format_hostport: returns (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    return host, int(port)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def wait_file(path, timeout=10.0, proc=None):
    """Wait until `path` exists and is non-empty; return its text.

    If `proc` (a conftest Proc) dies first, fail with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text:
                return text
        except FileNotFoundError:
            pass
        if proc is not None and not proc.alive():
            raise AssertionError(
                f"{proc.name} exited before writing {path}:\n{proc.log()}")
        time.sleep(0.02)
    raise AssertionError(f"{path} not written within {timeout}s")


def rss_bytes(pid):
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


# ---- payloads --------------------------------------------------------------

# Every other block of a mixed payload is this, repeated: a compressor
# meets both random and highly compressible input.
REPEAT = b"warren! " * (BLOCK // 8)


def payload_blocks(size, seed=0, block=BLOCK, mixed=False):
    """Yield `size` bytes of deterministic data in blocks of `block` bytes.

    Every block carries its index in its first 8 bytes, so reordered,
    repeated or dropped blocks change the digest. With mixed, every odd
    block is repetitive text instead of random bytes."""
    base = random.Random(seed).randbytes(block)
    index = 0
    while size > 0:
        n = min(block, size)
        head = index.to_bytes(8, "little")
        body = REPEAT if mixed and index % 2 else base
        yield (head + body[8:n]) if n > 8 else head[:n]
        size -= n
        index += 1


def payload_sha256(size, seed=0, mixed=False):
    h = hashlib.sha256()
    for b in payload_blocks(size, seed, mixed=mixed):
        h.update(b)
    return h.hexdigest()


def send_payload(sock, size, seed=0, progress=None, mixed=False):
    """sendall() a payload; return its sha256. `progress`, if given, is a
    one-element list kept updated with the number of bytes sent."""
    h = hashlib.sha256()
    sent = 0
    for b in payload_blocks(size, seed, mixed=mixed):
        sock.sendall(b)
        h.update(b)
        sent += len(b)
        if progress is not None:
            progress[0] = sent
    return h.hexdigest()


class Received:
    """What recv_all saw: byte count, sha256, how it ended, elapsed time."""

    def __init__(self):
        self.nbytes = 0
        self.sha = hashlib.sha256()
        self.end = None  # "eof", "reset", "timeout", "error:<errno name>"
        self.elapsed = None

    @property
    def sha256(self):
        return self.sha.hexdigest()

    def __repr__(self):
        return (f"Received(nbytes={self.nbytes}, end={self.end!r}, "
                f"elapsed={self.elapsed})")


def end_of(exc):
    """Classify a socket exception as "reset", "timeout" or "error:NAME"."""
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    name = errno.errorcode.get(getattr(exc, "errno", None) or 0, "?")
    return f"error:{name}"


def recv_all(sock, timeout=30.0, limit=None):
    """Read until EOF, reset, error, `limit` bytes or `timeout` seconds (of
    silence, and in total); hash what arrives. Returns a Received."""
    r = Received()
    start = time.monotonic()
    deadline = start + timeout
    try:
        while limit is None or r.nbytes < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                r.end = "timeout"
                break
            sock.settimeout(left)
            want = BLOCK if limit is None else min(BLOCK, limit - r.nbytes)
            data = sock.recv(want)
            if not data:
                r.end = "eof"
                break
            r.nbytes += len(data)
            r.sha.update(data)
        else:
            r.end = "limit"
    except OSError as e:
        r.end = end_of(e)
    r.elapsed = time.monotonic() - start
    return r


def wait_end(sock, timeout=10.0):
    """Discard input until the connection ends; return (end, elapsed)."""
    r = recv_all(sock, timeout=timeout)
    return r.end, r.elapsed


def connect(hostport, timeout=5.0):
    """A connected TCP socket with TCP_NODELAY, blocking with `timeout`."""
    host, port = parse_hostport(hostport)
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def connect_end(hostport, timeout=5.0):
    """Connect and wait for the connection to end without sending; returns
    the end as in Received.end. A reset or refusal that beats connect()
    itself (possible on loopback) counts as "reset" or "refused"."""
    try:
        s = connect(hostport, timeout)
    except ConnectionResetError:
        return "reset"
    except ConnectionRefusedError:
        return "refused"
    try:
        return wait_end(s, timeout)[0]
    finally:
        s.close()


def exchange(sock, data, timeout=5.0):
    """Send `data` and read back exactly len(data) bytes (through an echo);
    return what came back, short if the connection ended first."""
    sock.sendall(data)
    got = bytearray()
    sock.settimeout(timeout)
    while len(got) < len(data):
        chunk = sock.recv(len(data) - len(got))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def echo_roundtrip(hostport, size, seed=0, timeout=60.0):
    """Send a payload through an echo server at `hostport` while reading the
    echo; half-close after sending. Returns (sent_sha256, Received)."""
    s = connect(hostport)
    result = {}

    def sender():
        try:
            result["sha"] = send_payload(s, size, seed)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            result["error"] = e

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        got = recv_all(s, timeout=timeout)
    finally:
        t.join(timeout)
        s.close()
    if "error" in result:
        raise AssertionError(f"sending failed: {result['error']!r}; "
                             f"received {got}")
    return result.get("sha"), got


# ---- servers ---------------------------------------------------------------

class ConnRecord:
    """One accepted connection as a server saw it."""

    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        self.t_open = time.monotonic()
        self.t_end = None
        self.end = None  # as in Received.end, set when the handler returns
        self.nbytes_in = 0
        self.nbytes_out = 0
        self.sha_in = hashlib.sha256()
        self.sha_out = None  # set by handlers that send a payload
        self.done = threading.Event()

    @property
    def sha256_in(self):
        return self.sha_in.hexdigest()

    @property
    def lifetime(self):
        return None if self.t_end is None else self.t_end - self.t_open

    def finish(self, end):
        if self.end is None:
            self.end = end
            self.t_end = time.monotonic()

    def wait(self, timeout=10.0):
        """Wait until the handler has finished; return the end."""
        if not self.done.wait(timeout):
            raise AssertionError(f"connection from {self.peer} still open "
                                 f"after {timeout}s")
        return self.end

    def __repr__(self):
        return (f"ConnRecord(peer={self.peer}, end={self.end!r}, "
                f"in={self.nbytes_in}, out={self.nbytes_out}, "
                f"lifetime={self.lifetime})")


def _pump_in(rec, sock, reply):
    """Read until the connection ends, recording input; if `reply`, echo
    each chunk back. Returns the end."""
    while True:
        try:
            data = sock.recv(BLOCK)
        except OSError as e:
            return end_of(e)
        if not data:
            return "eof"
        rec.nbytes_in += len(data)
        rec.sha_in.update(data)
        if reply:
            try:
                sock.sendall(data)
            except OSError as e:
                return end_of(e)
            rec.nbytes_out += len(data)


def echo(rec, sock, stop):
    """Handler: echo everything; on EOF half-close back."""
    end = _pump_in(rec, sock, reply=True)
    if end == "eof":
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    return end


def sink(rec, sock, stop):
    """Handler: read and hash everything, send nothing."""
    return _pump_in(rec, sock, reply=False)


def hold(release=None):
    """Handler factory: read nothing until `release` (a threading.Event) is
    set (never, if None), then behave as sink."""
    def handler(rec, sock, stop):
        while not stop.is_set():
            if release is not None and release.is_set():
                return sink(rec, sock, stop)
            stop.wait(0.02)
        return "stopped"
    return handler


def source(size, seed=0):
    """Handler factory: send a payload (its sha256 goes to rec.sha_out),
    half-close, then read until the connection ends (as sink)."""
    def handler(rec, sock, stop):
        h = hashlib.sha256()
        try:
            for b in payload_blocks(size, seed):
                sock.sendall(b)
                h.update(b)
                rec.nbytes_out += len(b)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            return end_of(e)
        rec.sha_out = h.hexdigest()
        return sink(rec, sock, stop)
    return handler


class TcpServer:
    """A TCP server on an ephemeral port, one thread per connection.

    handler(rec, sock, stop) serves one connection on a blocking socket and
    returns how it ended ("eof", "reset", ...). close() sets the `stop` event
    and shuts every connection down, which wakes blocked handlers. Records
    of every connection are in `conns`."""

    def __init__(self, handler, host="127.0.0.1", port=0):
        self.handler = handler
        self.stop = threading.Event()
        self.conns = []
        self.lock = threading.Lock()
        self.threads = []
        self.lsock = socket.socket(family_of(host), socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(128)
        self.lsock.settimeout(0.1)
        self.host = host
        self.port = self.lsock.getsockname()[1]
        self.hostport = format_hostport(host, self.port)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stop.is_set():
            try:
                sock, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stop.is_set():
                    return
                raise
            sock.settimeout(None)
            rec = ConnRecord(sock, peer)
            with self.lock:
                self.conns.append(rec)
            t = threading.Thread(target=self._serve, args=(rec,),
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, rec):
        end = "error"
        try:
            end = self.handler(rec, rec.sock, self.stop)
        finally:
            rec.finish("stopped" if self.stop.is_set() else end)
            rec.sock.close()
            rec.done.set()

    def wait_conns(self, n, timeout=10.0):
        """Wait until at least n connections were accepted; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.conns) >= n:
                    return list(self.conns)
            time.sleep(0.01)
        raise AssertionError(f"{len(self.conns)} connections accepted, "
                             f"wanted {n}")

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.lsock.close()
        with self.lock:
            conns = list(self.conns)
        for rec in conns:
            if not rec.done.is_set():
                try:
                    rec.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def closed_port(host="127.0.0.1"):
    """A port on `host` that nothing listens on (bound, then released)."""
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def touch(path):
    with open(path, "w"):
        pass


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
