"""Gateway: headers added to requests to the backend (X-Forwarded-For appended, -Proto, -Port,
X-Request-Id equal to the response's, X-Original-Host when the host name is overridden) and
hop-by-hop headers removed in both directions."""

import http.client
import json

import pytest

import support
from gateway_support import (
    base_config,
    client_ctx,
    connection,
    get,
    http_response,
    http_settings,
    https_settings,
    request,
    simple_config,
)


def nginx_vars(text):
    return dict(line.split("=", 1) for line in text.strip().splitlines())


@pytest.fixture
def hdr_gateway(gateway, gw_nginx, pki):
    """Listeners: "https" and "http" (basic) -> nginx echo, Host kept (SNI from the client's
    Host); "override" (https, basic) -> the same nginx with host-name app.example.com."""
    port = gw_nginx.port("echo")

    def make(g):
        listeners = [
            {"name": "https", "address": "127.0.0.1", "port": g.ports["https"],
             "protocol": "https", "certificate": "app"},
            {"name": "http", "address": "127.0.0.1", "port": g.ports["http"],
             "protocol": "http"},
            {"name": "override", "address": "127.0.0.1", "port": g.ports["override"],
             "protocol": "https", "certificate": "app"},
        ]
        rules = [
            {"name": "r-https", "listener": "https", "priority": 1, "backend-pool": "p",
             "backend-settings": "keep-host"},
            {"name": "r-http", "listener": "http", "priority": 2, "backend-pool": "p",
             "backend-settings": "keep-host"},
            {"name": "r-override", "listener": "override", "priority": 3, "backend-pool": "p",
             "backend-settings": "override-host"},
        ]
        return base_config(g, pki, listeners=listeners, rules=rules, **{
            "backend-pools": [{"name": "p", "servers": [f"127.0.0.1:{port}"]}],
            "backend-settings": [
                dict({"name": "keep-host"}, **https_settings(443, host_name=None)),
                dict({"name": "override-host"}, **https_settings(443)),
            ]})

    return gateway(make, ["https", "http", "override"])


def test_forwarded_headers_https(hdr_gateway, pki):
    port = hdr_gateway.port("https")
    r = get(port, "/headers", host=f"app.example.com:{port}", ctx=client_ctx(pki),
            sni="app.example.com")
    assert r.status == 200, r
    v = nginx_vars(r.text)
    assert v["host"] == f"app.example.com:{port}", v        # Host kept as sent
    assert v["orig"] == "", v                                # no override: no X-Original-Host
    assert v["xff"] == "127.0.0.1", v
    assert v["proto"] == "https", v
    assert v["port"] == str(port), v
    assert v["rid"] == r.header("X-Request-Id") and len(v["rid"]) >= 16, (v, r.headers)
    assert v["sni"] == "app.example.com", v                  # SNI from the client's Host
    rec = hdr_gateway.log_for(v["rid"])
    assert rec["status"] == 200, rec


def test_forwarded_headers_http_and_xff_appended(hdr_gateway):
    port = hdr_gateway.port("http")
    r = get(port, "/headers", host="app.example.com",
            headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.2"})
    assert r.status == 200, r
    v = nginx_vars(r.text)
    assert v["xff"] == "203.0.113.7, 198.51.100.2, 127.0.0.1", v
    assert v["proto"] == "http", v
    assert v["port"] == str(port), v
    assert v["rid"] == r.header("X-Request-Id"), (v, r.headers)


def test_client_cannot_spoof_gateway_headers(hdr_gateway, pki):
    port = hdr_gateway.port("https")
    r = get(port, "/headers", host="app.example.com", ctx=client_ctx(pki), sni="app.example.com",
            headers={"X-Forwarded-Proto": "http", "X-Forwarded-Port": "1",
                     "X-Request-Id": "client-chosen-id", "X-Original-Host": "evil.test"})
    assert r.status == 200, r
    v = nginx_vars(r.text)
    assert v["proto"] == "https", v
    assert v["port"] == str(port), v
    assert v["rid"] == r.header("X-Request-Id") != "client-chosen-id", (v, r.headers)
    assert v["orig"] == "", v


def test_host_name_override_sets_x_original_host(hdr_gateway, pki):
    port = hdr_gateway.port("override")
    r = get(port, "/headers", host=f"site.test:{port}", ctx=client_ctx(verify=False),
            sni="site.test")
    assert r.status == 200, r
    v = nginx_vars(r.text)
    assert v["host"] == "app.example.com", v
    assert v["orig"] == f"site.test:{port}", v
    assert v["sni"] == "app.example.com", v


@pytest.mark.skipif(not support.have_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_client_address(gateway, gw_nginx, pki):
    port = gw_nginx.port("echo")

    def make(g):
        return simple_config(g, pki, [f"127.0.0.1:{port}"], https_settings(port), listeners=[
            {"name": "v6", "address": "::1", "port": g.ports["v6"], "protocol": "http"}])

    gw = gateway(make, ["v6"], port_hosts={"v6": "::1"})
    c = http.client.HTTPConnection("::1", gw.port("v6"), timeout=10)
    try:
        r = request(c, "GET", "/headers", host="app.example.com")
    finally:
        c.close()
    v = nginx_vars(r.text)
    assert v["xff"] == "::1", v
    rec = gw.log_for(r.header("X-Request-Id"))
    assert rec["client_ip"] == "::1", rec


# ---- hop-by-hop ----------------------------------------------------------------------------

HOP_RESPONSE_HEADERS = [
    ("Connection", "keep-alive, X-Hop"),
    ("X-Hop", "secret"),
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("Upgrade", "foo/1.0"),
    ("X-Request-Id", "backend-chosen-id"),
    ("X-End", "kept"),
]


def hop_handler(backend, rec):
    body = json.dumps({"headers": rec["headers"]}).encode()
    return http_response(200, body, HOP_RESPONSE_HEADERS)


@pytest.fixture
def hop(gateway, py_backend, pki):
    b = py_backend(hop_handler)
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{b.port}"], http_settings(b.port)),
                 ["http", "https"])
    return gw, b


@pytest.mark.parametrize("listener", ["http", "https"])
def test_hop_by_hop_headers_removed_both_ways(hop, pki, listener):
    gw, b = hop
    ctx = client_ctx(pki) if listener == "https" else None
    conn = connection(gw.port(listener), ctx, "app.example.com")
    try:
        r = request(conn, "GET", "/hop", host="app.example.com", headers={
            "Connection": "X-Custom, Keep-Alive",
            "X-Custom": "1",
            "Keep-Alive": "timeout=30",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Proxy-Connection": "keep-alive",
            "X-End": "forwarded",
        })
        # the client connection stays usable (keep-alive) after this exchange
        r2 = request(conn, "GET", "/hop2", host="app.example.com")
    finally:
        conn.close()
    assert r.status == 200 and r2.status == 200, (r, r2)
    sent = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
    for name in ("connection", "x-custom", "keep-alive", "te", "upgrade", "proxy-connection"):
        assert name not in sent, f"hop-by-hop request header {name!r} reached the backend: {sent}"
    assert sent.get("x-end") == "forwarded", sent
    assert sent.get("host") == "app.example.com", sent

    got = {k.lower() for k, _ in r.headers}
    for name in ("x-hop", "keep-alive", "proxy-connection", "upgrade"):
        assert name not in got, f"hop-by-hop response header {name!r} reached the client: " \
                                f"{r.headers}"
    assert r.header("X-End") == "kept", r.headers
    conn_vals = [v for k, v in r.headers if k.lower() == "connection"]
    assert all("x-hop" not in v.lower() for v in conn_vals), r.headers
    ids = [v for k, v in r.headers if k.lower() == "x-request-id"]
    assert len(ids) == 1 and ids[0] != "backend-chosen-id", r.headers
    rec = gw.log_for(ids[0])
    assert rec["status"] == 200, rec
