"""Name checks (RFC 6125; seed 002) and validity dates."""

import pytest

from support import expect, finding, finding_codes, probe


def name_probe(tls_server, pki, cert, host, *extra):
    srv = tls_server(cert=cert, chain="inter")
    return probe(srv.url(), "--host", host, "--trusted-root", pki / "root.pem", *extra)


def test_cn_only_legacy_cert_matches_its_cn(tls_server, pki):
    res = name_probe(tls_server, pki, "legacy", "legacy.example.com")
    j = expect(res, "OK")
    assert j["chain"][0]["sans"] == [], res
    nc = j["name_check"]
    assert nc["name"] == "legacy.example.com", res
    assert nc["checked"] is True, res


def test_cn_only_legacy_cert_other_name_is_mismatch(tls_server, pki):
    res = name_probe(tls_server, pki, "legacy", "other.example.com")
    j = expect(res, "CERT_NAME_MISMATCH")
    assert finding_codes(j) == ["CERT_NAME_MISMATCH"], res
    msg = finding(j, "CERT_NAME_MISMATCH")["message"]
    assert "legacy.example.com" in msg, res
    assert "other.example.com" in msg, res


def test_san_only_cert(tls_server, pki):
    res = name_probe(tls_server, pki, "san-only", "api.example.com")
    expect(res, "OK")
    res = name_probe(tls_server, pki, "san-only", "app.example.com")
    j = expect(res, "CERT_NAME_MISMATCH")
    assert "api.example.com" in finding(j, "CERT_NAME_MISMATCH")["message"], res


def test_cn_ignored_when_dns_san_present(tls_server, pki):
    res = name_probe(tls_server, pki, "cn-ignored", "san-name.example.com")
    expect(res, "OK")
    res = name_probe(tls_server, pki, "cn-ignored", "cn-name.example.com")
    j = expect(res, "CERT_NAME_MISMATCH")
    assert "san-name.example.com" in finding(j, "CERT_NAME_MISMATCH")["message"], res


def test_cn_used_when_only_ip_sans(tls_server, pki):
    # No DNS SAN at all (only IP:127.0.0.1): the CN is the DNS name.
    res = name_probe(tls_server, pki, "ipsan-cn", "ipsan.example.com")
    expect(res, "OK")


@pytest.mark.parametrize("host", ["a.example.com", "www.example.com"])
def test_wildcard_one_label_ok(tls_server, pki, host):
    expect(name_probe(tls_server, pki, "wildcard", host), "OK")


@pytest.mark.parametrize("host", ["a.b.example.com", "example.com", "a.example.org"])
def test_wildcard_other_names_mismatch(tls_server, pki, host):
    j = expect(name_probe(tls_server, pki, "wildcard", host), "CERT_NAME_MISMATCH")
    assert "*.example.com" in finding(j, "CERT_NAME_MISMATCH")["message"]


def test_host_name_matching_is_case_insensitive(tls_server, pki):
    expect(name_probe(tls_server, pki, "app", "APP.Example.COM"), "OK")


# Seed 002: full chain installed leaf -> intermediate -> root, and the host name is not in the
# leaf: only the name is wrong.
def test_seed002_full_chain_name_mismatch_only(tls_server, pki):
    srv = tls_server(cert="app", chain="ca-chain")
    res = probe(srv.url(), "--host", "myapp.example.com", "--trusted-root", pki / "root.cer")
    j = expect(res, "CERT_NAME_MISMATCH")
    assert finding_codes(j) == ["CERT_NAME_MISMATCH"], res
    assert "app.example.com" in j["message"], res
    assert "myapp.example.com" in j["message"], res
    assert j["name_check"]["name"] == "myapp.example.com", res
    assert j["sni"] == "myapp.example.com", res


def test_expired(tls_server, pki):
    res = name_probe(tls_server, pki, "expired", "expired.example.com")
    j = expect(res, "CERT_EXPIRED")
    assert finding_codes(j) == ["CERT_EXPIRED"], res
    assert "expired" in j["message"].lower(), res
    assert "2021" in j["message"], res
    assert j["chain"][0]["not_after"] == "2021-01-01T00:00:00Z", res


def test_not_yet_valid(tls_server, pki):
    res = name_probe(tls_server, pki, "future", "future.example.com")
    j = expect(res, "CERT_NOT_YET_VALID")
    assert finding_codes(j) == ["CERT_NOT_YET_VALID"], res


def test_expired_and_wrong_name_reports_both(tls_server, pki):
    res = name_probe(tls_server, pki, "expired", "other.example.com")
    j = expect(res, "CERT_EXPIRED")
    codes = finding_codes(j)
    assert "CERT_EXPIRED" in codes and "CERT_NAME_MISMATCH" in codes, res
    assert "expired.example.com" in finding(j, "CERT_NAME_MISMATCH")["message"], res


def test_expired_intermediate(tls_server, pki):
    srv = tls_server(cert="app-under-expired", chain="inter-expired")
    res = probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_EXPIRED")
    assert "Gatehouse Test Expired Intermediate CA" in finding(j, "CERT_EXPIRED")["message"], res
    assert j["chain"][1]["not_after"] == "2021-01-01T00:00:00Z", res
