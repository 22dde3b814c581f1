"""`cmake --install` puts warren and its man page in place."""

import os
import subprocess

from conftest import BUILD_DIR, run


def test_install_to_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    run(["cmake", "--install", BUILD_DIR, "--prefix", str(prefix)])
    binary = prefix / "bin" / "warren"
    man = prefix / "share" / "man" / "man1" / "warren.1"
    assert os.access(binary, os.X_OK)
    assert man.is_file()
    out = run([str(binary), "version"]).stdout
    assert out.startswith("warren ")
    # The installed man page renders and documents the commands (man-db
    # comes with scripts/deps.sh test, so `man` is always there).
    page = subprocess.run(["man", "-l", str(man)], capture_output=True,
                          text=True, timeout=30,
                          env={**os.environ, "MANWIDTH": "100"})
    assert page.returncode == 0, page.stderr
    for word in ("genkey", "pubkey", "check", "allow-client"):
        assert word in page.stdout
