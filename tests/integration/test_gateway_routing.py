"""Gateway: multi-site listeners on one port (exact, wildcard and basic), certificate choice by
SNI (PEM and PFX), routing by Host to the right pool, 404 when nothing serves the host.

Backends: nginx over HTTPS (app certificate + intermediate), verified against the test root; each
pool's nginx server names itself in the body ("site=a", ...).
"""

import json
import subprocess

import pytest

from gateway_support import (
    GATEHOUSE_BIN,
    Gateway,
    base_config,
    client_ctx,
    connection,
    curl,
    free_ports,
    get,
    https_settings,
    peer_cert_cn,
    request,
)
from support import can_connect

CN_APP = "app.example.com"
CN_WILDCARD = "Gatehouse Test Wildcard"
CN_LEGACY = "legacy.example.com"


def multisite_config(nginx, pki, with_basic=True):
    def make(gw):
        p = gw.ports["site"]
        listeners = [
            # several names per listener, exact
            {"name": "site-a", "address": "127.0.0.1", "port": p, "protocol": "https",
             "certificate": "app", "host-names": ["app.example.com", "app.example.net"]},
            # wildcard
            {"name": "site-w", "address": "127.0.0.1", "port": p, "protocol": "https",
             "certificate": "wildcard", "host-names": ["*.example.com"]},
        ]
        rules = [
            {"name": "rule-a", "listener": "site-a", "priority": 100, "backend-pool": "pool-a",
             "backend-settings": "tls"},
            {"name": "rule-w", "listener": "site-w", "priority": 200, "backend-pool": "pool-w",
             "backend-settings": "tls"},
        ]
        if with_basic:
            listeners.append({"name": "basic", "address": "127.0.0.1", "port": p,
                              "protocol": "https", "certificate": "legacy"})
            rules.append({"name": "rule-b", "listener": "basic", "priority": 300,
                          "backend-pool": "pool-b", "backend-settings": "tls"})
        return base_config(
            gw, pki, listeners=listeners, rules=rules,
            **{"backend-pools": [
                {"name": "pool-a", "servers": [f"127.0.0.1:{nginx.port('a')}"]},
                {"name": "pool-w", "servers": [f"127.0.0.1:{nginx.port('w')}"]},
                {"name": "pool-b", "servers": [f"127.0.0.1:{nginx.port('b')}"]},
            ], "backend-settings": [dict({"name": "tls"}, **https_settings(443))]})
    return make


@pytest.fixture
def multisite(gateway, gw_nginx, pki):
    return gateway(multisite_config(gw_nginx, pki), ["site"])


@pytest.mark.parametrize("sni,cn", [
    ("app.example.com", CN_APP),        # exact name
    ("app.example.net", CN_APP),        # second name of the same listener
    ("foo.example.com", CN_WILDCARD),   # wildcard listener
    ("a.b.example.com", CN_WILDCARD),   # '*' may span labels (reference 1.4)
    ("other.test", CN_LEGACY),          # unknown name: the basic (default) listener's
    (None, CN_LEGACY),                  # no SNI: the port's default listener, the basic one
])
def test_sni_picks_the_listener_certificate(multisite, sni, cn):
    got, version = peer_cert_cn(multisite.port("site"), sni)
    assert got == cn, f"SNI {sni!r}: expected the certificate of CN={cn}, got CN={got}"
    assert version in ("TLSv1.2", "TLSv1.3"), version


@pytest.mark.parametrize("host,site", [
    ("app.example.com", "a"),
    ("app.example.net", "a"),
    ("APP.Example.COM", "a"),           # host names are case-insensitive
    ("foo.example.com", "w"),
    ("deep.sub.example.com", "w"),
    ("other.test", "b"),                # no multi-site listener: the basic listener
    ("127.0.0.1", "b"),
])
def test_host_routes_to_the_listener_pool(multisite, pki, host, site):
    port = multisite.port("site")
    r = get(port, "/where", host=f"{host}:{port}", ctx=client_ctx(verify=False),
            sni=None if host[0].isdigit() else host.lower())
    assert r.status == 200, r
    assert r.text.startswith(f"site={site} "), f"Host {host} went to the wrong pool: {r.text}"
    assert r.header("X-Request-Id"), r
    rec = multisite.log_for(r.header("X-Request-Id"))
    listener = {"a": "site-a", "w": "site-w", "b": "basic"}[site]
    assert rec["listener"] == listener, rec
    assert rec["backend_pool"] == f"pool-{site}", rec
    assert rec["status"] == 200 and rec["backend_status"] == 200, rec


def test_curl_verified_end_to_end(multisite, pki, gw_nginx):
    """curl verifies each site's certificate chain (leaf + intermediate sent by the gateway) with
    only the root, and gets the right site."""
    port = multisite.port("site")
    for host, site in (("app.example.com", "a"), ("www.example.com", "w")):
        p = curl("--cacert", pki / "root.pem", "--resolve", f"{host}:{port}:127.0.0.1",
                 "-w", "\n%{http_code} %{ssl_verify_result}", f"https://{host}:{port}/x")
        assert p.returncode == 0, p.stderr.decode()
        body, _, tail = p.stdout.decode().rpartition("\n")
        assert tail == "200 0", p.stdout
        assert body.startswith(f"site={site} "), body
        # host-name override: nginx sees Host app.example.com and the original in X-Original-Host
        assert "host=app.example.com " in body, body
        assert f"orig={host}:{port} " in body, body


def test_keepalive_client_connection_routes_each_request_by_host(multisite):
    """On one TLS connection (SNI app.example.com), each request is routed by its own Host."""
    port = multisite.port("site")
    conn = connection(port, client_ctx(verify=False), "app.example.com")
    try:
        for host, site in (("app.example.com", "a"), ("x.example.com", "w"),
                           ("elsewhere.test", "b"), ("app.example.com", "a")):
            r = request(conn, "GET", "/", host=host)
            assert r.status == 200, r
            assert r.text.startswith(f"site={site} "), (host, r.text)
    finally:
        conn.close()


def test_unknown_host_without_basic_listener_is_404(gateway, gw_nginx, pki):
    gw = gateway(multisite_config(gw_nginx, pki, with_basic=False), ["site"])
    port = gw.port("site")
    # No basic listener: the default certificate is the first listener's in routing order.
    cn, _ = peer_cert_cn(port, None)
    assert cn == CN_APP, cn
    r = get(port, "/", host="nowhere.test", ctx=client_ctx(verify=False), sni="nowhere.test")
    assert r.status == 404, r
    rid = r.header("X-Request-Id")
    assert rid and rid in r.text, r
    rec = gw.log_for(rid)
    assert rec["status"] == 404, rec
    assert rec["error_info"] == "ERRORINFO_INVALID_HOST", rec
    assert rec["backend"] is None, rec
    # the known hosts still work on the same port
    r = get(port, "/", host="app.example.com", ctx=client_ctx(verify=False), sni="app.example.com")
    assert r.status == 200 and r.text.startswith("site=a "), r


def test_pfx_listener_certificate_with_password_file(gateway, gw_nginx, pki):
    def make(gw):
        return base_config(
            gw, pki,
            listeners=[{"name": "pfx", "address": "127.0.0.1", "port": gw.ports["https"],
                        "protocol": "https", "certificate": "app-pfx"}],
            rules=[{"name": "r", "listener": "pfx", "priority": 1, "backend-pool": "p",
                    "backend-settings": "tls"}],
            **{"backend-pools": [{"name": "p", "servers": [f"127.0.0.1:{gw_nginx.port('a')}"]}],
               "backend-settings": [dict({"name": "tls"}, **https_settings(443))]})

    gw = gateway(make, ["https"])
    port = gw.port("https")
    # Python ssl with only the root: the PFX's intermediate must be sent for this to verify.
    r = get(port, "/pfx", host="app.example.com", ctx=client_ctx(pki), sni="app.example.com")
    assert r.status == 200 and r.text.startswith("site=a "), r
    cn, _ = peer_cert_cn(port, "app.example.com")
    assert cn == CN_APP
    p = curl("--cacert", pki / "root.pem", "--resolve", f"app.example.com:{port}:127.0.0.1",
             "-w", "\n%{http_code}", f"https://app.example.com:{port}/pfx")
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().endswith("\n200"), p.stdout


def test_pfx_with_wrong_password_is_refused_at_start(tmp_path, pki):
    bad = tmp_path / "wrong-password.txt"
    bad.write_text("not-the-password\n")

    def make(gw):
        cfg = base_config(
            gw, pki,
            listeners=[{"name": "pfx", "address": "127.0.0.1", "port": gw.ports["https"],
                        "protocol": "https", "certificate": "app-pfx"}],
            rules=[{"name": "r", "listener": "pfx", "priority": 1, "backend-pool": "p",
                    "backend-settings": "tls"}],
            **{"backend-pools": [{"name": "p", "servers": ["127.0.0.1:9"]}],
               "backend-settings": [dict({"name": "tls"}, **https_settings(443))]})
        cfg["certificates"]["app-pfx"]["password-file"] = str(bad)
        return cfg

    gw = Gateway(tmp_path, make, ["https"])
    gw.ports = dict(zip(["admin", "https"], free_ports(2)))
    gw.config_path.write_text(json.dumps(make(gw)))
    p = subprocess.run([GATEHOUSE_BIN, "run", "-c", str(gw.config_path)], capture_output=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    err = p.stderr.decode()
    assert p.returncode == 1, (p.returncode, err)
    assert "app-pfx" in err, err
    assert not can_connect("127.0.0.1", gw.ports["https"])
