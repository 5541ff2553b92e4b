"""HTTP-level verdicts against nginx (status, body, path, Host header, SNI)."""

from support import NGINX_INDEX, expect, finding_codes, probe


def nginx_probe(nginx, pki, *args, url=None):
    return probe(url or nginx.url(), "--host", "app.example.com",
                 "--trusted-root", pki / "root.pem", *args)


def test_nginx_healthy(nginx, pki):
    j = expect(nginx_probe(nginx, pki), "OK")
    assert j["http"]["status"] == 200
    assert j["http"]["bytes"] >= len(NGINX_INDEX)


def test_status_mismatch_404(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/missing")
    j = expect(res, "HTTP_STATUS_MISMATCH")
    assert finding_codes(j) == ["HTTP_STATUS_MISMATCH"], res
    assert "404" in j["message"], res
    assert "200-399" in j["message"] or "200-399" in j["remedy"], res
    assert j["http"]["status"] == 404, res


def test_status_mismatch_from_url_path(nginx, pki):
    res = nginx_probe(nginx, pki, url=nginx.url("/missing"))
    j = expect(res, "HTTP_STATUS_MISMATCH")
    assert j["http"]["status"] == 404, res


def test_match_status_accepts_404(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/missing", "--match-status", "200-399,404")
    j = expect(res, "OK")
    assert j["http"]["status"] == 404, res


def test_status_401_mismatch(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/unauthorized")
    j = expect(res, "HTTP_STATUS_MISMATCH")
    assert "401" in j["message"], res


def test_match_body_present(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/health", "--match-body", "healthy")
    expect(res, "OK")


def test_match_body_absent(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/health", "--match-body", "all-systems-go")
    j = expect(res, "HTTP_BODY_MISMATCH")
    assert finding_codes(j) == ["HTTP_BODY_MISMATCH"], res
    assert "all-systems-go" in j["message"], res


def test_host_header_sent(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/echo-host", "--match-body", "host=app.example.com")
    j = expect(res, "OK")
    assert j["host_header"] == "app.example.com", res


def test_sni_sent_is_host_name(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/echo-sni", "--match-body", "sni=app.example.com")
    j = expect(res, "OK")
    assert j["sni"] == "app.example.com", res


def test_redirect_is_healthy_by_default(nginx, pki):
    # The default accepted range is 200-399.
    res = nginx_probe(nginx, pki, "--path", "/redirect")
    j = expect(res, "OK")
    assert j["http"]["status"] == 301, res


def test_match_status_single_code(nginx, pki):
    res = nginx_probe(nginx, pki, "--path", "/redirect", "--match-status", "200")
    j = expect(res, "HTTP_STATUS_MISMATCH")
    assert "301" in j["message"], res
