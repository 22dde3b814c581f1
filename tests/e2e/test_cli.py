"""The `warren` command as a user meets it: keys, check, help, bad input."""

import base64
import os
import stat
import subprocess

import pytest

from conftest import run


def warren(warren_bin, *args, stdin=None, check=False):
    return subprocess.run([warren_bin, *args], input=stdin,
                          capture_output=True, text=True, timeout=30,
                          check=check)


def genkey(warren_bin, path):
    res = warren(warren_bin, "genkey", check=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, res.stdout.encode())
    os.close(fd)
    return res.stdout


def pubkey(warren_bin, private):
    return warren(warren_bin, "pubkey", stdin=private,
                  check=True).stdout.strip()


def test_genkey_pubkey_like_wg(warren_bin):
    a = warren(warren_bin, "genkey", check=True).stdout
    b = warren(warren_bin, "genkey", check=True).stdout
    assert a != b
    for k in (a, b):
        assert k.endswith("\n") and len(k) == 45
        assert len(base64.b64decode(k.strip(), validate=True)) == 32
    pa = pubkey(warren_bin, a)
    assert len(base64.b64decode(pa, validate=True)) == 32
    assert pa != a.strip()
    # Deterministic: the same private key always gives the same identity.
    assert pubkey(warren_bin, a) == pa
    assert pubkey(warren_bin, "  " + a.strip() + "\r\n") == pa


def test_pubkey_matches_ed25519_reference(warren_bin):
    # RFC 8032 section 7.1 TEST 1: the private key file holds the seed.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc4"
                         "4449c5697b326919703bac031cae7f60")
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a"
                        "0ee172f3daa62325af021a68f707511a")
    out = pubkey(warren_bin, base64.b64encode(seed).decode() + "\n")
    assert base64.b64decode(out) == pub


@pytest.mark.parametrize("text", ["", "\n", "not a key\n", "A" * 44 + "\n",
                                  "QUFB\n", "x" * 5000])
def test_pubkey_rejects_bad_input(warren_bin, text):
    res = warren(warren_bin, "pubkey", stdin=text)
    assert res.returncode == 1
    assert "does not hold one private key" in res.stderr
    assert res.stdout == ""


def test_genkey_warns_about_readable_file(warren_bin, tmp_path):
    path = tmp_path / "k"
    with open(path, "w") as f:
        os.chmod(path, 0o644)
        res = subprocess.run([warren_bin, "genkey"], stdout=f,
                             stderr=subprocess.PIPE, text=True, timeout=10)
    assert res.returncode == 0
    assert "readable by group or others" in res.stderr


def write_conf(tmp_path, text, name="w.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.fixture
def keys(warren_bin, tmp_path):
    s = genkey(warren_bin, tmp_path / "server.key")
    c = genkey(warren_bin, tmp_path / "client.key")
    return {"server_pub": pubkey(warren_bin, s),
            "client_pub": pubkey(warren_bin, c)}


def good_config(keys):
    return f"""
[server]
listen = udp://0.0.0.0:4433
listen = udp://[::]:4433
key = server.key
allow-client = {keys['client_pub']}
allow = 10.0.0.0/8:22
allow = unix:/run/app.sock

[client]
server = udp://[2001:db8::1]:4433
server-key = {keys['server_pub']}
key = client.key

[forward ssh]
listen = 127.0.0.1:2222
target = 10.0.0.5:22
"""


def test_check_accepts_good_config(warren_bin, tmp_path, keys):
    conf = write_conf(tmp_path, good_config(keys))
    res = warren(warren_bin, "check", "-c", conf)
    assert res.returncode == 0, res.stderr
    assert "configuration ok" in res.stdout
    assert "forward ssh: tcp://127.0.0.1:2222 -> tcp://10.0.0.5:22" \
        in res.stdout
    # Key paths are relative to the config file, not the working directory.
    res = subprocess.run([warren_bin, "check", "-c", conf], cwd="/",
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 0, res.stderr


def test_check_reports_every_problem_with_line(warren_bin, tmp_path, keys):
    conf = write_conf(tmp_path, f"""[server]
listen = 0.0.0.0:4433
key = server.key
allow-client = {keys['client_pub']}
allow-client = not-a-key
allow = 10.0.0.0/33:22
frobnicate = yes
[client]
server = udp://::1:4433
server-key = {keys['server_pub']}
key = client.key
keepalive = soon
[forward]
""")
    res = warren(warren_bin, "check", "-c", conf)
    assert res.returncode == 1
    err = res.stderr
    for needle in (f"{conf}:2: [server] listen", f"{conf}:5: [server] allow-client",
                   f"{conf}:6: [server] allow", f'{conf}:7: [server] unknown key "frobnicate"',
                   f"{conf}:9: [client] server", "need brackets",
                   f"{conf}:12: [client] keepalive", f"{conf}:13:", "needs a name"):
        assert needle in err, err
    assert "problems found" in err


def test_api_is_refused_until_built(warren_bin, tmp_path, keys):
    # The HTTP API is planned: its key must fail loudly, not be ignored,
    # both in `warren check` and when the daemon starts.
    text = good_config(keys).replace("[client]\n",
                                     "api = 127.0.0.1:7070\n\n[client]\n")
    line = text.splitlines().index("api = 127.0.0.1:7070") + 1
    conf = write_conf(tmp_path, text)
    res = warren(warren_bin, "check", "-c", conf)
    assert res.returncode == 1
    assert f"{conf}:{line}: [server] api: not built yet" in res.stderr, \
        res.stderr
    res = subprocess.run([warren_bin, "server", "-c", conf],
                         capture_output=True, text=True, timeout=10)
    assert res.returncode != 0
    assert f"{conf}:{line}: [server] api: not built yet" in res.stderr, \
        res.stderr
    res = warren(warren_bin, "check", "-c", write_conf(tmp_path,
                 good_config(keys), "ok.conf"), "--role", "client",
                 "--api", "127.0.0.1:7070")
    assert res.returncode == 1
    assert "--api: [client] api: not built yet" in res.stderr, res.stderr


def test_check_refuses_readable_key_file(warren_bin, tmp_path, keys):
    conf = write_conf(tmp_path, good_config(keys))
    os.chmod(tmp_path / "server.key", 0o640)
    res = warren(warren_bin, "check", "-c", conf)
    assert res.returncode == 1
    assert "server.key" in res.stderr
    assert "must not be accessible by group or others" in res.stderr
    os.chmod(tmp_path / "server.key", 0o600)
    os.remove(tmp_path / "client.key")
    res = warren(warren_bin, "check", "-c", conf)
    assert res.returncode == 1
    assert "client.key: cannot open key file" in res.stderr


def test_check_with_flags_only(warren_bin, tmp_path, keys):
    res = warren(warren_bin, "check", "--role", "client",
                 "--server", "udp://127.0.0.1:4433",
                 "--server-key", keys["server_pub"],
                 "--key", str(tmp_path / "client.key"),
                 "-L", "127.0.0.1:8080=[::1]:80",
                 "-L", "unix:/tmp/w.sock=unix:/run/app.sock")
    assert res.returncode == 0, res.stderr
    assert "forward L1: tcp://127.0.0.1:8080 -> tcp://[::1]:80" in res.stdout
    assert "forward L2: unix:/tmp/w.sock -> unix:/run/app.sock" in res.stdout


def test_check_flags_override_file(warren_bin, tmp_path, keys):
    conf = write_conf(tmp_path, good_config(keys).replace(
        "key = client.key", "key = client.key\nkeepalive = 20s"))
    res = warren(warren_bin, "check", "-c", conf)
    assert res.returncode == 1 and "must be shorter" in res.stderr
    res = warren(warren_bin, "check", "-c", conf, "--role", "client",
                 "--keepalive=2s")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("args,code,needle", [
    ([], 2, "usage: warren COMMAND"),
    (["frobnicate"], 2, "unknown command"),
    (["check"], 2, "usage: warren check"),
    (["check", "--role", "proxy"], 2, "--role takes server or client"),
    (["check", "-c"], 1, "-c: needs a FILE"),
    (["check", "-c", "/nonexistent/w.conf"], 1, "cannot open"),
    (["check", "--role", "server", "--allow"], 1, "--allow: needs a value"),
    (["check", "--role", "server", "-L", "1:2=3:4"], 1, "-L: unknown option"),
    (["genkey", "extra"], 2, "usage: warren genkey"),
    (["help", "nope"], 2, "no command"),
])
def test_usage_errors(warren_bin, args, code, needle):
    res = warren(warren_bin, *args)
    assert res.returncode == code, (res.stdout, res.stderr)
    assert needle in res.stderr


def test_help_and_version(warren_bin):
    res = warren(warren_bin, "help", check=True)
    for name in ("help", "version", "genkey", "pubkey", "check"):
        assert f"  {name} " in res.stdout
    res = warren(warren_bin, "help", "check", check=True)
    assert "--allow-client PUBKEY" in res.stdout
    assert "-L [tcp://|unix:]LISTEN=TARGET" in res.stdout
    assert warren(warren_bin, "--version", check=True).stdout.startswith(
        "warren ")
