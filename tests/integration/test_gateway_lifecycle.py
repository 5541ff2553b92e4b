"""Gateway: `gatehouse check` and `gatehouse run` on invalid configs (file:line:col, did you mean,
exit 1, nothing started), and SIGTERM / SIGINT: in-flight requests complete, new connections
are refused at once, idle keep-alive connections are closed, the process exits 0 shortly after."""

import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from gateway_support import (
    GATEHOUSE_BIN,
    SLOW,
    client_ctx,
    connection,
    free_ports,
    get,
    http_response,
    http_settings,
    request,
    simple_config,
)
from support import can_connect

VALID = """\
# a small valid config, block style
admin:
  listen: 127.0.0.1:{admin}
access-log: off
listeners:
  - name: main
    address: 127.0.0.1
    port: {port}
    protocol: http
backend-pools:
  - name: app
    servers: ["127.0.0.1:{backend}"]
backend-settings:
  - name: app-http
    protocol: http
    port: {backend}
    request-timeout: 5s
rules:
  - name: main
    listener: main
    priority: 100
    backend-pool: app
    backend-settings: app-http
"""


def run(*args, timeout=30 * SLOW):
    p = subprocess.run([GATEHOUSE_BIN, *[str(a) for a in args]], capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@pytest.fixture
def configs(tmp_path):
    admin, port, backend = free_ports(3)
    valid = VALID.format(admin=admin, port=port, backend=backend)
    good = tmp_path / "good.yaml"
    good.write_text(valid)
    # line 17 is "    request-timeout: 5s" (1-based); the typo starts at column 5
    lines = valid.splitlines()
    assert lines[16] == "    request-timeout: 5s", lines[16]
    lines[16] = "    request-timout: 5s"
    bad = tmp_path / "bad.yaml"
    bad.write_text("\n".join(lines) + "\n")
    lines = valid.splitlines()
    assert lines[19] == "    listener: main", lines[19]
    lines[19] = "    listener: mian"
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text("\n".join(lines) + "\n")
    return {"good": good, "bad": bad, "dangling": dangling, "port": port}


def test_check_valid_config_exits_0(configs):
    rc, out, err = run("check", "-c", configs["good"])
    assert rc == 0, (rc, out, err)


def test_check_unknown_key_names_position_and_suggests(configs):
    rc, out, err = run("check", "-c", configs["bad"])
    assert rc == 1, (rc, out, err)
    text = out + err
    path = re.escape(str(configs["bad"]))
    m = re.search(rf"^{path}:17:5: (\S*)request-timout: (.*)$", text, re.M)
    assert m, f"no '{configs['bad']}:17:5: ...request-timout' error line:\n{text}"
    assert "unknown" in m.group(2).lower(), m.group(0)
    assert "did you mean 'request-timeout'" in m.group(2), m.group(0)


def test_check_dangling_reference_names_both_ends(configs):
    rc, out, err = run("check", "-c", configs["dangling"])
    assert rc == 1, (rc, out, err)
    text = out + err
    m = re.search(rf"^{re.escape(str(configs['dangling']))}:20:\d+: (.*)$", text, re.M)
    assert m, text
    assert "'main'" in m.group(1) and "'mian'" in m.group(1), m.group(0)


@pytest.mark.parametrize("which", ["bad", "dangling"])
def test_run_invalid_config_starts_nothing(configs, which):
    t0 = time.monotonic()
    rc, out, err = run("run", "-c", configs[which], timeout=15 * SLOW)
    assert rc == 1, (rc, out, err)
    assert time.monotonic() - t0 < 10 * SLOW
    assert re.search(rf"^{re.escape(str(configs[which]))}:\d+:\d+: ", err, re.M), err
    port = configs["port"]
    assert not can_connect("127.0.0.1", port), "something listens on the listener's port"
    with socket.socket() as s:  # the port is free: we can bind it ourselves
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


# ---- SIGTERM / SIGINT ----------------------------------------------------------------------

SLOW_SECONDS = 2.0


def slow_handler(backend, rec):
    if rec["target"].startswith("/slow"):
        time.sleep(SLOW_SECONDS)
        return http_response(200, "slow done " + "z" * 100000)
    return http_response(200, "fast")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_in_flight_then_exits(gateway, py_backend, pki, sig):
    b = py_backend(slow_handler)
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{b.port}"],
                                         http_settings(b.port, timeout="10s")),
                 ["http", "https"])
    # an idle keep-alive client connection
    idle = connection(gw.port("https"), client_ctx(pki), "app.example.com")
    assert request(idle, "GET", "/fast", host="app.example.com").status == 200

    result = {}

    def slow_request():
        try:
            result["resp"] = get(gw.port("https"), "/slow", host="app.example.com",
                                 ctx=client_ctx(pki), sni="app.example.com", timeout=20 * SLOW)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            result["error"] = repr(e)
        result["t"] = time.monotonic()

    t = threading.Thread(target=slow_request, daemon=True)
    t.start()
    deadline = time.monotonic() + 5 * SLOW
    while not b.requests_for("/slow") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.requests_for("/slow"), "the slow request did not reach the backend"

    t_sig = time.monotonic()
    gw.send_signal(sig)

    # New connections are refused at once (both listeners), while the request is in flight.
    refused = {}
    deadline = t_sig + 1.0 * SLOW
    while time.monotonic() < deadline and len(refused) < 2:
        for name in ("http", "https"):
            if name not in refused and not can_connect("127.0.0.1", gw.port(name)):
                refused[name] = time.monotonic() - t_sig
        time.sleep(0.01)
    assert set(refused) == {"http", "https"}, \
        f"still accepting connections 1 s after the signal: refused={refused}"
    assert "t" not in result, "the slow request finished before the checks (raise SLOW_SECONDS)"
    assert gw.alive(), "the gateway exited with a request in flight"

    # The idle keep-alive connection is closed by the gateway.
    idle.sock.settimeout(3 * SLOW)
    try:
        data = idle.sock.recv(1)
    except socket.timeout:
        pytest.fail("the idle keep-alive connection was not closed after the signal")
    except OSError:  # reset, or TLS EOF without close_notify: closed all the same
        data = b""
    assert data == b"", f"unexpected data on the idle connection: {data!r}"
    idle.close()

    t.join(timeout=20 * SLOW)
    assert "error" not in result, result.get("error")
    r = result["resp"]
    assert r.status == 200 and r.text.startswith("slow done") and len(r.body) == 100010, r
    assert result["t"] - t_sig >= SLOW_SECONDS * 0.5

    rc = gw.wait(timeout=5 * SLOW)
    t_exit = time.monotonic()
    if rc is None:
        gw.kill()
        pytest.fail(f"the gateway did not exit within {5 * SLOW} s after its last in-flight "
                    f"request finished ({t_exit - t_sig:.1f} s after {sig.name}); killed it\n"
                    f"{gw.output()}")
    assert rc == 0, f"exit status {rc}\n{gw.output()}"
    assert t_exit - result["t"] < 3 * SLOW, f"exited {t_exit - result['t']:.2f}s after the " \
                                            "last response"
    rec = gw.log_for(r.header("X-Request-Id"))
    assert rec["status"] == 200 and rec["path"] == "/slow", rec
    assert not can_connect("127.0.0.1", gw.port("http"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_nothing_in_flight_exits_at_once(gateway, py_backend, pki, sig):
    b = py_backend(slow_handler)
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{b.port}"],
                                         http_settings(b.port)), ["http"])
    assert get(gw.port("http"), "/fast", host="app.example.com").status == 200
    t_sig = time.monotonic()
    gw.send_signal(sig)
    rc = gw.wait(timeout=5 * SLOW)
    if rc is None:
        gw.kill()
        pytest.fail(f"the idle gateway did not exit within {5 * SLOW} s after {sig.name}")
    assert rc == 0, gw.output()
    assert time.monotonic() - t_sig < 2 * SLOW
    assert not can_connect("127.0.0.1", gw.port("http"))
