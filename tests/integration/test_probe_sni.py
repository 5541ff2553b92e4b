"""SNI and the load balancer's default certificate (seeds 001 and 003)."""

import pytest

from support import cert_sha256, expect, have_ipv6_loopback, norm_fp, probe


@pytest.fixture
def ilb_server(tls_server):
    """Like the seeds' ILB/ASE: no SNI (or an unknown name) gets the load balancer's default
    certificate ilb-default.internal; SNI app.example.com gets the app's certificate. Both are
    sent with the intermediate."""
    return tls_server(cert="ilb-default", chain=None, sni_name="app.example.com", cert2="app",
                      ca_file="inter")


# Seed 001: probed by IP (no SNI), the app's leaf allow-listed.
def test_seed001_default_cert_not_allowlisted_with_alternate_sni(ilb_server, pki):
    res = probe(ilb_server.url(), "--auth-cert", pki / "app.pem")
    j = expect(res, "CERT_NOT_ALLOWLISTED")
    assert j["sni"] is None, res
    assert "ilb-default.internal" in j["chain"][0]["subject"], res
    alt = j["alternate_sni"]
    assert alt is not None, f"no alternate_sni\n{res}"
    assert alt["sni"] == "app.example.com", res
    assert alt["would_pass"] is True, res
    assert alt["code"] == "OK", res
    assert "app.example.com" in alt["subject"], res
    assert norm_fp(alt["sha256"]) == cert_sha256(pki / "app.pem"), res
    assert norm_fp(j["chain"][0]["sha256"]) == cert_sha256(pki / "ilb-default.pem"), res
    assert "app.example.com" in j["remedy"], res


def test_seed001_human_report(ilb_server, pki):
    res = probe(ilb_server.url(), "--auth-cert", pki / "app.pem", json_out=False)
    assert res.rc == 1, res
    assert "ilb-default.internal" in res.stdout, res
    assert "app.example.com" in res.stdout, res
    assert "\x1b[" not in res.stdout, res


def test_seed001_fix_send_host_name(ilb_server, pki):
    # Fix 1 of the seed: use the FQDN (here: the host name, which also sets the SNI).
    res = probe(ilb_server.url(), "--host", "app.example.com", "--auth-cert", pki / "app.pem")
    j = expect(res, "OK")
    assert j["sni"] == "app.example.com", res
    assert j["alternate_sni"] is None, res


def test_seed001_fix_allowlist_ilb_certificate(ilb_server, pki):
    # Fix 2 of the seed: upload the ILB's default certificate instead.
    res = probe(ilb_server.url(), "--auth-cert", pki / "ilb-default.pem")
    j = expect(res, "OK")
    assert "ilb-default.internal" in j["chain"][0]["subject"], res


# Seed 003 flavour: v2 trusted-root mode with the host name set; the SNI certificate is fine.
def test_seed003_trusted_root_with_host_ok_no_alternate(ilb_server, pki):
    res = probe(ilb_server.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem")
    j = expect(res, "OK")
    assert j["alternate_sni"] is None, res
    assert "app.example.com" in j["chain"][0]["subject"], res
    assert j["sni"] == "app.example.com", res
    assert j["host_header"] == "app.example.com", res


def test_no_sni_forces_none(ilb_server, pki):
    res = probe(ilb_server.url(), "--host", "app.example.com", "--no-sni",
                "--trusted-root", pki / "root.pem")
    j = res.json
    assert res.rc in (0, 1), res
    assert j["sni"] is None, res
    # The server received no SNI, so it answered with its default certificate.
    assert "ilb-default.internal" in j["chain"][0]["subject"], res
    assert j["host_header"] == "app.example.com", res


def test_sni_null_for_ip_and_name_with_host(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    j = expect(probe(srv.url(), "--trusted-root", pki / "root.pem"), "OK")
    assert j["sni"] is None
    assert j["address"] == f"127.0.0.1:{srv.port}"
    j = expect(probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem"),
               "OK")
    assert j["sni"] == "app.example.com"


def test_localhost_resolves_and_sends_sni(tls_server, pki):
    # SNI "localhost" gets the app certificate, anything else the default one: the chain shows
    # which name the server received.
    srv = tls_server(cert="ilb-default", chain=None, sni_name="localhost", cert2="app",
                     ca_file="inter")
    res = probe(f"https://localhost:{srv.port}/", "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_NAME_MISMATCH")
    assert j["sni"] == "localhost", res
    assert j["address"] == f"127.0.0.1:{srv.port}", res
    assert "app.example.com" in j["chain"][0]["subject"], res
    assert j["name_check"]["name"] == "localhost", res


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback(tls_server, pki):
    srv = tls_server(cert="app", chain="inter", host="::1")
    res = probe(f"https://[::1]:{srv.port}/", "--host", "app.example.com",
                "--trusted-root", pki / "root.pem")
    j = expect(res, "OK")
    assert j["address"] == f"[::1]:{srv.port}", res
    # Without a host name: no SNI; the leaf carries IP:::1.
    res = probe(f"https://[::1]:{srv.port}/", "--trusted-root", pki / "root.pem")
    j = expect(res, "OK")
    assert j["sni"] is None, res


def test_alternate_sni_is_none_when_a_name_was_sent(tls_server, pki):
    # The default certificate is the allow-listed app certificate; SNI legacy.example.com gets
    # another one. The second look is the handshake without SNI.
    srv = tls_server(cert="app", chain=None, sni_name="legacy.example.com", cert2="legacy",
                     ca_file="inter")
    res = probe(srv.url(), "--host", "legacy.example.com", "--auth-cert", pki / "app.pem")
    j = expect(res, "CERT_NOT_ALLOWLISTED")
    assert "legacy.example.com" in j["chain"][0]["subject"], res
    alt = j["alternate_sni"]
    assert alt is not None, f"no alternate_sni\n{res}"
    assert alt["sni"] is None, res
    assert "app.example.com" in alt["subject"], res
    assert norm_fp(alt["sha256"]) == cert_sha256(pki / "app.pem"), res
    assert isinstance(alt["would_pass"], bool), res
