"""`gatehouse demo` (issue 5): the health table comes within 10 s, the curl commands it prints
behave as it says, Ctrl-C removes its temporary files, and --keep leaves a config that
`gatehouse check` accepts."""

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support import GATEHOUSE_BIN, SANITIZED, free_port

DEMO_READY = 10.0 if not SANITIZED else 40.0


class Demo:
    def __init__(self, *args):
        self.port = free_port()
        self.admin_port = free_port()
        self.argv = [GATEHOUSE_BIN, "demo", "--port", str(self.port), "--admin-port",
                     str(self.admin_port), *args]
        env = dict(os.environ, NO_COLOR="1")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines = []
        self.started = time.monotonic()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def out(self):
        return "".join(self.lines)

    def read_until(self, marker, timeout):
        """Waits until <marker> appears on stdout (bounded in time)."""
        deadline = time.monotonic() + timeout
        while marker not in self.out:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return marker in self.out

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode


@pytest.fixture
def demo():
    d = Demo()
    yield d
    d.stop(signal.SIGKILL if d.proc.poll() is None else signal.SIGINT)


def curl_commands(out):
    """The curl commands the demo prints, as argument lists."""
    cmds = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("curl ") and "<" not in line:
            cmds.append(shlex.split(line))
    return cmds


def test_demo_prints_table_and_its_curl_commands_work(demo):
    assert demo.read_until("Ctrl-C", DEMO_READY), f"no complete output within {DEMO_READY}s:\n" \
        f"{demo.out}\n{demo.proc.stderr.read() if demo.proc.poll() is not None else ''}"
    elapsed = time.monotonic() - demo.started
    print(f"[perf] demo printed its health table {elapsed:.2f}s after start")
    out = demo.out
    # The table: every backend with its verdict and code.
    rows = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
        r"^(healthy|leaf-only|wrong-name|ilb)\s+\S+\s+127\.0\.0\.1:\d+\s+(Healthy|Unhealthy|Unknown)\s+(\S+)",
        out, re.M)}
    assert rows == {
        "healthy": ("Healthy", "OK"),
        "leaf-only": ("Unhealthy", "CERT_INTERMEDIATE_MISSING"),
        "wrong-name": ("Unhealthy", "CERT_NAME_MISMATCH"),
        "ilb": ("Unhealthy", "CERT_NOT_ALLOWLISTED"),
    }, out
    # Each cause comes with a fix; the ILB case names the SNI that would work.
    assert out.count("Fix: ") == 3, out
    assert "Second look" in out and "app.demo.test" in out, out
    assert f"http://127.0.0.1:{demo.admin_port}/" in out, out

    cmds = curl_commands(out)
    assert len(cmds) == 2, out
    ok = subprocess.run(cmds[0] + ["-sS", "--max-time", "10"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == "hello from healthy\n", (cmds[0], ok)
    bad = subprocess.run(cmds[1] + ["-sS", "--max-time", "10"], capture_output=True, text=True)
    assert bad.returncode == 0, (cmds[1], bad)
    assert bad.stdout.startswith("HTTP/1.1 502"), bad.stdout
    rid = re.search(r"^X-Request-Id: ([0-9a-f]{32})\r?$", bad.stdout, re.M)
    assert rid, bad.stdout
    # The request id leads to the reason, which the client never saw.
    why = subprocess.run(["curl", "-sS", "--max-time", "5",
                          f"http://127.0.0.1:{demo.admin_port}/requests/{rid.group(1)}"],
                         capture_output=True, text=True)
    assert '"CERT_INTERMEDIATE_MISSING"' in why.stdout, why.stdout
    assert "CERT_INTERMEDIATE_MISSING" not in bad.stdout

    tmp = re.search(r"private PKI in ([^):\s]+)", out)
    assert tmp, out
    tmpdir = Path(tmp.group(1))
    assert (tmpdir / "gatehouse.yaml").is_file()
    assert demo.stop(signal.SIGINT) == 0
    assert not tmpdir.exists(), f"{tmpdir} was not removed"


def test_demo_keep_leaves_a_valid_config(tmp_path):
    keep_dir = tmp_path / "kept"
    d = Demo("--dir", str(keep_dir))
    try:
        assert d.read_until("Ctrl-C", DEMO_READY), d.out
    finally:
        rc = d.stop(signal.SIGTERM)
    assert rc == 0
    assert f"kept in {keep_dir}" in d.out, d.out
    for name in ("gatehouse.yaml", "root.pem", "gateway-chain.pem", "gateway.key", "app.pem"):
        assert (keep_dir / name).is_file(), name
    check = subprocess.run([GATEHOUSE_BIN, "check", "-c", str(keep_dir / "gatehouse.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # The written config documents itself: every section is commented.
    text = (keep_dir / "gatehouse.yaml").read_text()
    for key in ("listeners:", "backend-pools:", "backend-settings:", "probes:", "rules:"):
        assert key in text
    assert text.count("#") >= 8


def test_demo_refuses_a_busy_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    busy = s.getsockname()[1]
    try:
        res = subprocess.run([GATEHOUSE_BIN, "demo", "--port", str(busy), "--admin-port",
                              str(free_port())], capture_output=True, text=True, timeout=30)
    finally:
        s.close()
    assert res.returncode == 1, res
    assert str(busy) in res.stderr, res.stderr
