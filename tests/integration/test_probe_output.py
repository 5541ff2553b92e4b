"""The shape of the probe's output: the JSON object and the human report."""

import re

from support import cert_dates, cert_sha256, expect, norm_fp, norm_san, probe

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
TOP_KEYS = {
    "url", "health", "code", "message", "remedy", "findings", "warnings", "chain", "sni",
    "host_header", "name_check", "trust", "address", "tls", "http", "timings_ms", "alternate_sni",
}
CHAIN_KEYS = {"depth", "subject", "issuer", "sans", "not_before", "not_after", "sha256",
              "self_signed", "ca", "kind"}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_common_shape(j, res):
    missing = TOP_KEYS - set(j)
    assert not missing, f"missing keys {sorted(missing)}\n{res}"
    assert j["health"] in ("Healthy", "Unhealthy"), res
    assert isinstance(j["findings"], list) and isinstance(j["warnings"], list), res
    for w in j["warnings"]:
        assert isinstance(w["code"], str) and isinstance(w["message"], str), res
    assert isinstance(j["chain"], list), res
    for c in j["chain"]:
        assert CHAIN_KEYS <= set(c), f"chain entry lacks {sorted(CHAIN_KEYS - set(c))}\n{res}"
    assert j["trust"]["mode"] in ("trusted-root", "auth-cert", "well-known-ca"), res
    assert isinstance(j["trust"]["anchors"], list), res
    nc = j["name_check"]
    assert {"name", "source", "checked"} <= set(nc), res
    assert isinstance(nc["checked"], bool), res
    assert set(j["timings_ms"]) >= {"dns", "connect", "tls", "response"}, res


def test_healthy_json_shape_and_chain_details(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    url = srv.url("/")
    res = probe(url, "--host", "app.example.com", "--trusted-root", pki / "root.pem")
    j = expect(res, "OK")
    check_common_shape(j, res)
    assert j["url"] == url, res
    assert j["address"] == f"127.0.0.1:{srv.port}", res
    assert j["sni"] == "app.example.com" and j["host_header"] == "app.example.com", res
    assert j["name_check"]["name"] == "app.example.com" and j["name_check"]["checked"], res
    assert j["alternate_sni"] is None, res
    assert j["warnings"] == [], res

    leaf, inter = j["chain"]
    assert leaf["depth"] == 0 and inter["depth"] == 1, res
    assert "CN=app.example.com" in leaf["subject"], res
    assert "CN=Gatehouse Test Intermediate CA" in leaf["issuer"], res
    assert "O=Gatehouse Test" in leaf["subject"], res
    assert "CN=Gatehouse Test Intermediate CA" in inter["subject"], res
    assert "CN=Gatehouse Test Root CA" in inter["issuer"], res
    assert sorted(map(norm_san, leaf["sans"])) == sorted(
        map(norm_san, ["DNS:app.example.com", "IP:127.0.0.1", "IP:::1"])), res
    assert inter["sans"] == [], res
    for c, name in ((leaf, "app.pem"), (inter, "inter.pem")):
        assert RFC3339_UTC.match(c["not_before"]) and RFC3339_UTC.match(c["not_after"]), res
        nb, na = cert_dates(pki / name)
        assert c["not_before"].split(".")[0].rstrip("Z") == nb.rstrip("Z"), res
        assert c["not_after"].split(".")[0].rstrip("Z") == na.rstrip("Z"), res
        assert norm_fp(c["sha256"]) == cert_sha256(pki / name), res
        assert re.fullmatch(r"[0-9a-f]{64}", norm_fp(c["sha256"])), res
    assert leaf["self_signed"] is False and leaf["ca"] is False and leaf["kind"] == "leaf", res
    assert inter["self_signed"] is False and inter["ca"] is True, res
    assert inter["kind"] == "intermediate", res

    anchors = j["trust"]["anchors"]
    assert len(anchors) == 1, res
    assert anchors[0]["file"].endswith("root.pem"), res
    assert "Gatehouse Test Root CA" in anchors[0]["subject"], res
    assert anchors[0]["kind"] == "root", res
    assert norm_fp(anchors[0]["sha256"]) == cert_sha256(pki / "root.pem"), res

    tls = j["tls"]
    assert tls["version"] in ("TLSv1.2", "TLSv1.3"), res
    assert isinstance(tls["cipher"], str) and tls["cipher"], res
    assert tls["alpn"] is None or isinstance(tls["alpn"], str), res
    assert j["http"]["status"] == 200 and is_number(j["http"]["bytes"]), res
    assert j["http"]["bytes"] > 0, res

    t = j["timings_ms"]
    for k in ("dns", "connect", "tls", "response"):
        assert is_number(t[k]) and t[k] >= 0, (k, res)
    assert t["tls"] < 10_000 and t["response"] < 10_000, res


def test_unhealthy_json_shape_before_tls():
    res = probe("https://does-not-exist.invalid/", "--timeout", "3")
    j = expect(res, "DNS_RESOLUTION_FAILED")
    check_common_shape(j, res)
    assert j["chain"] == [] and j["tls"] is None and j["http"] is None, res
    assert j["alternate_sni"] is None, res


def test_chain_order_as_sent_with_root(tls_server, pki):
    srv = tls_server(cert="app", chain="ca-chain")
    j = expect(probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem"),
               "OK")
    fps = [norm_fp(c["sha256"]) for c in j["chain"]]
    assert fps == [cert_sha256(pki / n) for n in ("app.pem", "inter.pem", "root.pem")]
    assert [c["depth"] for c in j["chain"]] == [0, 1, 2]
    assert [c["kind"] for c in j["chain"]] == ["leaf", "intermediate", "root"]
    assert j["chain"][2]["self_signed"] is True


def test_human_report_unhealthy(tls_server, pki):
    srv = tls_server(cert="app", chain=None)
    res = probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem",
                json_out=False)
    assert res.rc == 1, res
    out = res.stdout
    lines = [line.strip() for line in out.splitlines()]
    for label in ("Verdict:", "Cause:", "Fix:"):
        assert any(line.startswith(label) for line in lines), (label, res)
    verdict = next(line for line in lines if line.startswith("Verdict:"))
    assert "Unhealthy" in verdict or "CERT_INTERMEDIATE_MISSING" in verdict, res
    assert "CERT_INTERMEDIATE_MISSING" in out, res
    # The policy: SNI sent, name checked, trust anchor.
    assert "SNI" in out, res
    assert "Gatehouse Test Root CA" in out, res
    # The chain as sent, one line per certificate.
    assert any("app.example.com" in line and "Verdict" not in line for line in lines), res
    assert "\x1b[" not in out and "\x1b[" not in res.stderr, "ANSI escapes when not a terminal"


def test_human_report_healthy(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    res = probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem",
                json_out=False)
    assert res.rc == 0, res
    out = res.stdout
    assert "Verdict:" in out and "Healthy" in out, res
    chain_lines = [line for line in out.splitlines()
                   if "app.example.com" in line or "Gatehouse Test Intermediate CA" in line]
    assert len(chain_lines) >= 2, res
    assert "\x1b[" not in out, res
