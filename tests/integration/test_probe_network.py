"""Connection-level verdicts: DNS, refused, timeouts, plain HTTP, client certificates."""

import time

import pytest

from support import SANITIZED, expect, free_port, probe

# Slack for start-up of a sanitized build.
SLACK = 0 if not SANITIZED else 3


def test_dns_resolution_failed():
    res = probe("https://does-not-exist.invalid/", "--timeout", "3")
    j = expect(res, "DNS_RESOLUTION_FAILED")
    assert "does-not-exist.invalid" in j["message"], res
    assert j["chain"] == [], res
    assert j["tls"] is None and j["http"] is None, res
    assert res.elapsed < 10 + SLACK, res


def test_connection_refused():
    port = free_port()
    res = probe(f"https://127.0.0.1:{port}/", "--timeout", "3")
    j = expect(res, "CONNECTION_REFUSED")
    assert str(port) in j["message"], res
    assert j["chain"] == [] and j["tls"] is None, res
    assert j["address"] == f"127.0.0.1:{port}", res


def test_connection_timeout(full_backlog_server):
    if not full_backlog_server.fill():
        pytest.skip("could not make a loopback connect() hang on this kernel")
    start = time.monotonic()
    res = probe(full_backlog_server.url(), "--timeout", "1")
    elapsed = time.monotonic() - start
    expect(res, "CONNECTION_TIMEOUT")
    assert elapsed < 3 + SLACK, f"took {elapsed:.2f}s\n{res}"


def test_silent_server_is_response_timeout(silent_server):
    start = time.monotonic()
    res = probe(silent_server.url(), "--timeout", "1")
    elapsed = time.monotonic() - start
    expect(res, "RESPONSE_TIMEOUT")
    assert elapsed < 3 + SLACK, f"took {elapsed:.2f}s\n{res}"


def test_plain_http_on_tls_port(plain_http_server):
    res = probe(plain_http_server.url(), "--timeout", "3")
    j = expect(res, "TLS_HANDSHAKE_FAILED")
    assert "plain http" in j["message"].lower(), res
    assert j["chain"] == [], res


def test_plain_http_on_tls_port_nginx(nginx):
    res = probe(nginx.plain_url(), "--timeout", "3")
    j = expect(res, "TLS_HANDSHAKE_FAILED")
    assert "plain http" in j["message"].lower(), res


def test_client_certificate_required_but_not_given(tls_server, pki):
    srv = tls_server(cert="app", chain="inter", verify_ca="client-ca")
    res = probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem",
                "--timeout", "3")
    j = expect(res, "TLS_HANDSHAKE_FAILED")
    assert "client certificate" in j["message"].lower(), res


def test_client_certificate_given(tls_server, pki):
    srv = tls_server(cert="app", chain="inter", verify_ca="client-ca")
    res = probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem",
                "--client-cert", pki / "client.pem", "--client-key", pki / "client.key",
                "--timeout", "3")
    j = expect(res, "OK")
    assert j["http"]["status"] == 200, res


def test_tls_ok_then_no_http_response_is_response_timeout(tls_silent_server, pki):
    start = time.monotonic()
    res = probe(tls_silent_server.url(), "--host", "app.example.com",
                "--trusted-root", pki / "root.pem", "--timeout", "1")
    elapsed = time.monotonic() - start
    j = expect(res, "RESPONSE_TIMEOUT")
    assert elapsed < 3 + SLACK, f"took {elapsed:.2f}s\n{res}"
    # The evidence gathered before the timeout is still reported.
    assert len(j["chain"]) == 2 and "app.example.com" in j["chain"][0]["subject"], res
    assert j["tls"] is not None, res


def test_server_rejecting_the_sni_name(tls_server, pki):
    # A server that only knows app.example.com and aborts the handshake for any other SNI
    # (reference 3.2 #18): the verdict names the SNI that was sent and points at the host name.
    srv = tls_server(cert="ilb-default", chain=None, sni_name="app.example.com", cert2="app",
                     ca_file="inter", extra=["-servername_fatal"])
    res = probe(srv.url(), "--host", "other.example.com", "--trusted-root", pki / "root.pem",
                "--timeout", "3")
    j = expect(res, "TLS_HANDSHAKE_FAILED")
    assert "other.example.com" in j["message"] + j["remedy"], res
    assert "SNI" in j["remedy"] or "host name" in j["remedy"], res
