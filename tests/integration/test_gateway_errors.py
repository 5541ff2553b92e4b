"""Gateway: 504 when the backend does not answer within the settings' request timeout, 502 when
nothing listens on the backend's port. Both carry a request id and nothing about the backend."""

import time

import pytest

from gateway_support import (
    SLOW,
    client_ctx,
    free_ports,
    get,
    http_settings,
    https_settings,
    http_response,
    simple_config,
)


def assert_gateway_error(r, status, backend_port):
    assert r.status == status, r
    rid = r.header("X-Request-Id")
    assert rid and rid in r.text, r
    assert "127.0.0.1" not in r.text and str(backend_port) not in r.text, r.text
    return rid


@pytest.mark.parametrize("tls", [True, False], ids=["https-backend", "http-backend"])
def test_504_when_backend_does_not_answer_in_time(gateway, py_backend, pki, tls):
    # The backend passes its health probe (GET /) but takes 3 s over /slow: only a server
    # probed healthy gets traffic, so the slow path is what the request timeout must catch.
    def handler(backend, rec):
        if rec["target"].startswith("/slow"):
            time.sleep(3.0)
        return http_response(200, "ok")

    b = py_backend(handler, tls=tls)
    settings = (https_settings(b.port, timeout="1s") if tls
                else http_settings(b.port, timeout="1s"))
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{b.port}"], settings), ["https"])
    t0 = time.monotonic()
    r = get(gw.port("https"), "/slow", host="app.example.com", ctx=client_ctx(pki),
            sni="app.example.com")
    elapsed = time.monotonic() - t0
    rid = assert_gateway_error(r, 504, b.port)
    assert 0.9 <= elapsed <= 4.0 * SLOW, f"504 after {elapsed:.2f}s with request-timeout 1s"
    rec = gw.log_for(rid)
    assert rec["status"] == 504, rec
    assert rec["error_info"] == "ERRORINFO_UPSTREAM_TIMED_OUT", rec
    assert rec["upstream_error"] == "RESPONSE_TIMEOUT", rec
    assert rec["backend"] == f"127.0.0.1:{b.port}", rec
    assert rec["backend_status"] is None, rec
    assert 900 <= rec["duration_ms"] <= 4000 * SLOW, rec


def test_502_when_nothing_listens(gateway, pki):
    (dead_port,) = free_ports(1)  # chosen by the OS, then released: nothing listens there
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{dead_port}"],
                                         https_settings(dead_port)), ["http"])
    t0 = time.monotonic()
    r = get(gw.port("http"), "/", host="app.example.com")
    assert time.monotonic() - t0 < 3 * SLOW
    rid = assert_gateway_error(r, 502, dead_port)
    rec = gw.log_for(rid)
    assert rec["status"] == 502, rec
    assert rec["upstream_error"] == "CONNECTION_REFUSED", rec
    assert rec["error_info"] == "ERRORINFO_UPSTREAM_NO_LIVE", rec
    assert rec["backend"] == f"127.0.0.1:{dead_port}", rec
    # A second request is answered 502 as well (the backend is skipped or refused again).
    r2 = get(gw.port("http"), "/", host="app.example.com")
    assert_gateway_error(r2, 502, dead_port)
    assert r2.header("X-Request-Id") != rid
