"""Fixtures for the Gatehouse integration tests.

Run with: /usr/bin/python3 -m pytest tests/integration   (binary: $GATEHOUSE_BIN, default
build/gatehouse). The PKI is generated once per session by scripts/test-pki; servers are real
(openssl s_server, nginx, Python sockets) on loopback ports and are always stopped by PID.
"""

import os
import subprocess
from pathlib import Path

import pytest

import support
from support import (
    GATEHOUSE_BIN,
    REPO,
    FullBacklogServer,
    Nginx,
    PlainHttpServer,
    SilentServer,
    TlsSilentServer,
    s_server_argv,
    start_server,
)

# Fixtures of the gateway tests (test_gateway_*.py): gw_nginx, gateway, py_backend.
from gateway_support import gateway, gw_nginx, py_backend  # noqa: E402,F401


def pytest_configure(config):
    config.addinivalue_line("markers", "no_binary: the test does not run the gatehouse binary")


def pytest_report_header(config):
    return [f"gatehouse binary: {GATEHOUSE_BIN}", f"sanitized build: {support.SANITIZED}"]


@pytest.fixture(scope="session", autouse=True)
def _stop_everything_at_exit():
    """Safety net: whatever a fixture failed to stop is stopped (by PID) at session end."""
    yield
    support.stop_all_live()


@pytest.fixture(scope="session")
def _binary_present():
    path = Path(GATEHOUSE_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        return f"gatehouse binary not found at {path} (run `make` or set GATEHOUSE_BIN)"
    return None


@pytest.fixture(autouse=True)
def _require_binary(request, _binary_present):
    if request.node.get_closest_marker("no_binary"):
        return
    if _binary_present:
        pytest.fail(_binary_present, pytrace=False)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A fresh PKI (see the layout at the top of scripts/test-pki)."""
    d = tmp_path_factory.mktemp("pki")
    p = subprocess.run([str(REPO / "scripts" / "test-pki"), str(d)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, f"scripts/test-pki failed:\n{p.stdout}\n{p.stderr}"
    return d


@pytest.fixture
def tls_server(pki, tmp_path):
    """Factory: tls_server(cert="app", chain="inter", ...) starts openssl s_server on a free
    loopback port. Names are files of the PKI without ".pem"; key defaults to the cert's name.
    chain=None sends the certificate alone. Every server is stopped after the test."""
    started = []

    def start(cert="app", chain="inter", key=None, host="127.0.0.1", sni_name=None,
              cert2=None, key2=None, ca_file=None, verify_ca=None, extra=()):
        def pem(name):
            return None if name is None else pki / f"{name}.pem"

        def keyf(name):
            return pki / f"{name}.key"

        n = len(started)

        def argv(port):
            return s_server_argv(
                port, host, pem(cert), keyf(key or cert), chain=pem(chain),
                sni_name=sni_name, cert2=pem(cert2), key2=keyf(key2 or cert2) if cert2 else None,
                ca_file=pem(ca_file), verify_ca=pem(verify_ca), extra=extra,
            )

        srv = start_server(f"s_server[{cert}]", argv, host, tmp_path / f"s_server{n}.log")
        started.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture(scope="session")
def nginx(pki, tmp_path_factory):
    srv = Nginx(tmp_path_factory.mktemp("nginx"), pki)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def silent_server():
    srv = SilentServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def plain_http_server():
    srv = PlainHttpServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tls_silent_server(pki):
    """Completes the TLS handshake (app certificate + intermediate), then never answers."""
    srv = TlsSilentServer(pki / "app-chain.pem", pki / "app.key").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def full_backlog_server():
    srv = FullBacklogServer()
    try:
        yield srv
    finally:
        srv.stop()
