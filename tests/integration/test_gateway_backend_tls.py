"""Gateway: end-to-end TLS to nginx backends whose certificates fail verification. The client gets
502 with a request id and nothing about the backend; the access log line with that request id
carries the diagnosis code (the same one `gatehouse probe` gives for that backend). A healthy
backend answers 200.

One gateway, one multi-site HTTP listener per case (routing by Host), each to its own pool.
"""

import re

import pytest

import support
from gateway_support import Gateway, base_config, get

# case -> (nginx role, trust mode, settings host name, expected code)
CASES = {
    "intermediate-missing": ("leaf-only", "roots", "app.example.com", "CERT_INTERMEDIATE_MISSING"),
    "root-not-trusted": ("other-root", "roots", "app.example.com", "CERT_ROOT_NOT_TRUSTED"),
    "name-mismatch": ("mismatch", "roots", "app.example.com", "CERT_NAME_MISMATCH"),
    "expired": ("expired", "roots", "expired.example.com", "CERT_EXPIRED"),
    "not-allowlisted": ("other-root", "auth", "app.example.com", "CERT_NOT_ALLOWLISTED"),
    "healthy": ("echo", "roots", "app.example.com", None),
    "healthy-allowlisted": ("echo", "auth", "app.example.com", None),
}


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory, gw_nginx, pki):
    def make(gw):
        port = gw.ports["http"]
        listeners, rules, pools, settings = [], [], [], []
        for i, (case, (role, trust, host_name, _)) in enumerate(CASES.items()):
            listeners.append({"name": f"l-{case}", "address": "127.0.0.1", "port": port,
                              "protocol": "http", "host-names": [f"{case}.test"]})
            pools.append({"name": f"p-{case}", "servers": [f"127.0.0.1:{gw_nginx.port(role)}"]})
            s = {"name": f"s-{case}", "protocol": "https", "port": 443,
                 "host-name": host_name, "request-timeout": "10s"}
            if trust == "roots":
                s["trusted-roots"] = ["root"]
            else:
                s["auth-certs"] = ["app-leaf"]
            settings.append(s)
            rules.append({"name": f"r-{case}", "listener": f"l-{case}", "priority": 10 + i,
                          "backend-pool": f"p-{case}", "backend-settings": f"s-{case}"})
        return base_config(gw, pki, listeners=listeners, rules=rules,
                           **{"backend-pools": pools, "backend-settings": settings})

    gw = Gateway(tmp_path_factory.mktemp("gw-tls"), make, ["http"])
    try:
        yield gw.start()
    finally:
        gw.stop()
        gw.assert_no_crash()


# What a 502 body must never reveal about the backend or the diagnosis.
LEAK_PATTERNS = [r"127\.0\.0\.1", r"CERT_", r"[Cc]ertificate", r"example\.com", r"nginx",
                 r"[Ii]ntermediate", r"[Ee]xpired", r"allow", r"root", r"ERRORINFO"]


@pytest.mark.parametrize("case", [c for c, v in CASES.items() if v[3]])
def test_backend_certificate_failure_is_502_with_code_in_log(tls_gateway, gw_nginx, case):
    role, _, _, code = CASES[case]
    backend_port = gw_nginx.port(role)
    r = get(tls_gateway.port("http"), "/some/path?q=1", host=f"{case}.test")
    assert r.status == 502, r
    rid = r.header("X-Request-Id")
    assert rid and re.fullmatch(r"[0-9a-f]{16,64}", rid), r
    assert rid in r.text, f"the body should carry the request id\n{r.text}"
    assert len(r.body) < 4096, r
    for pat in LEAK_PATTERNS + [str(backend_port)]:
        assert not re.search(pat, r.text), f"502 body leaks {pat!r}:\n{r.text}"
    for name, value in r.headers:
        assert str(backend_port) not in value and "nginx" not in value.lower(), (name, value)

    rec = tls_gateway.log_for(rid)
    assert rec["status"] == 502, rec
    assert rec["upstream_error"] == code, rec
    assert rec["listener"] == f"l-{case}" and rec["backend_pool"] == f"p-{case}", rec
    assert rec["backend"] == f"127.0.0.1:{backend_port}", rec
    assert rec["backend_status"] is None, rec
    assert rec["error_info"] not in (None, "ERRORINFO_NO_ERROR"), rec
    assert rec["path"] == "/some/path?q=1" and rec["method"] == "GET", rec


@pytest.mark.parametrize("case", [c for c, v in CASES.items() if v[3]])
def test_probe_gives_the_same_code_as_the_data_path(gw_nginx, pki, case):
    """One code path: `gatehouse probe` with the same trust and host name says the same."""
    role, trust, host_name, code = CASES[case]
    args = ["--host", host_name]
    if trust == "roots":
        args += ["--trusted-root", pki / "root.pem"]
    else:
        args += ["--auth-cert", pki / "app.pem"]
    res = support.probe(f"https://127.0.0.1:{gw_nginx.port(role)}/", *args)
    assert res.json["code"] == code, res


@pytest.mark.parametrize("case", ["healthy", "healthy-allowlisted"])
def test_healthy_backend_is_200(tls_gateway, gw_nginx, case):
    r = get(tls_gateway.port("http"), "/hello", host=f"{case}.test")
    assert r.status == 200, r
    assert r.text.startswith("site=echo host=app.example.com "), r.text
    rec = tls_gateway.log_for(r.header("X-Request-Id"))
    assert rec["status"] == 200 and rec["backend_status"] == 200, rec
    assert rec["upstream_error"] is None, rec
    assert rec["error_info"] == "ERRORINFO_NO_ERROR", rec


def test_failure_is_not_cached_as_success(tls_gateway):
    """A second request to a failing backend fails the same way (no verified session or idle
    connection lets it through)."""
    for _ in range(3):
        r = get(tls_gateway.port("http"), "/", host="intermediate-missing.test")
        assert r.status == 502, r
        rec = tls_gateway.log_for(r.header("X-Request-Id"))
        assert rec["upstream_error"] == "CERT_INTERMEDIATE_MISSING", rec
