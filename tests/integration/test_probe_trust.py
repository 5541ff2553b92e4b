"""Chain and trust verdicts (seeds 000 and 002, reference 2.3 and 3.2 #7-#13)."""

import re

from support import cert_sha256, expect, finding, norm_fp, probe, text_of

AIA_URL = "http://pki.example.com/intermediate.cer"


def app_probe(srv, *args):
    return probe(srv.url(), "--host", "app.example.com", *args)


# Seed 000: the backend sends only its leaf.
def test_leaf_only_is_intermediate_missing(tls_server, pki):
    srv = tls_server(cert="app", chain=None)
    res = app_probe(srv, "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_INTERMEDIATE_MISSING")
    assert len(j["chain"]) == 1, res
    assert "app.example.com" in j["chain"][0]["subject"], res
    assert "Gatehouse Test Intermediate CA" in j["remedy"], res
    assert AIA_URL in j["remedy"], res
    f = finding(j, "CERT_INTERMEDIATE_MISSING")
    assert "Gatehouse Test Intermediate CA" in f["remedy"], res


def test_leaf_only_human_report_names_missing_issuer(tls_server, pki):
    srv = tls_server(cert="app", chain=None)
    res = probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem",
                json_out=False)
    assert res.rc == 1, res
    out = res.stdout
    assert "Gatehouse Test Intermediate CA" in out, res
    assert AIA_URL in out, res
    for label in ("Verdict:", "Cause:", "Fix:"):
        assert any(line.lstrip().startswith(label) for line in out.splitlines()), (label, res)


def test_full_chain_is_ok(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    res = app_probe(srv, "--trusted-root", pki / "root.pem")
    j = expect(res, "OK")
    assert [c["depth"] for c in j["chain"]] == [0, 1], res
    assert j["http"]["status"] == 200, res
    assert j["alternate_sni"] is None, res
    assert j["trust"]["mode"] == "trusted-root", res


def test_chain_including_root_is_ok(tls_server, pki):
    srv = tls_server(cert="app", chain="ca-chain")
    res = app_probe(srv, "--trusted-root", pki / "root.pem")
    j = expect(res, "OK")
    assert len(j["chain"]) == 3, res
    top = j["chain"][2]
    assert "Gatehouse Test Root CA" in top["subject"], res
    assert top["self_signed"] is True and top["ca"] is True, res
    assert top["kind"] == "root", res


def test_chain_to_another_root(tls_server, pki):
    srv = tls_server(cert="other-app", chain="other-inter")
    res = app_probe(srv, "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_ROOT_NOT_TRUSTED")
    assert "Other Test Root CA" in j["remedy"], res
    # The roots tried are named too.
    assert "Gatehouse Test Root CA" in text_of(j), res


def test_chain_to_another_root_sent_with_its_root(tls_server, pki):
    # The server sends leaf + other intermediate + other root.
    srv = tls_server(cert="other-app", chain="other-ca-chain")
    res = app_probe(srv, "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_ROOT_NOT_TRUSTED")
    assert len(j["chain"]) == 3, res
    assert "Other Test Root CA" in j["remedy"], res


def test_bundle_with_two_roots_is_ok_for_both_chains(tls_server, pki):
    for cert, chain in (("app", "inter"), ("other-app", "other-inter")):
        srv = tls_server(cert=cert, chain=chain)
        res = app_probe(srv, "--trusted-root", pki / "roots-bundle.pem")
        j = expect(res, "OK")
        anchors = j["trust"]["anchors"]
        assert len(anchors) == 2, res
        subjects = " | ".join(a["subject"] for a in anchors)
        assert "Gatehouse Test Root CA" in subjects and "Other Test Root CA" in subjects, res
        assert all(a["file"].endswith("roots-bundle.pem") for a in anchors), res
        assert all(a["kind"] == "root" for a in anchors), res
        assert {norm_fp(a["sha256"]) for a in anchors} == {
            cert_sha256(pki / "root.pem"), cert_sha256(pki / "other-root.pem")}, res


def test_two_trusted_root_options(tls_server, pki):
    srv = tls_server(cert="other-app", chain="other-inter")
    res = app_probe(srv, "--trusted-root", pki / "root.pem",
                    "--trusted-root", pki / "other-root.pem")
    j = expect(res, "OK")
    assert len(j["trust"]["anchors"]) == 2, res


def test_chain_in_wrong_order_is_leaf_not_first(tls_server, pki):
    # The server's certificate is the intermediate, with the leaf sent after it.
    srv = tls_server(cert="inter", chain="app")
    res = app_probe(srv, "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_LEAF_NOT_FIRST")
    assert len(j["chain"]) == 2, res
    assert "Gatehouse Test Intermediate CA" in j["chain"][0]["subject"], res
    assert j["chain"][0]["ca"] is True, res
    assert "app.example.com" in j["chain"][1]["subject"], res
    assert j["chain"][1]["ca"] is False, res


def test_self_signed_leaf_uploaded_as_root_is_healthy_with_warning(tls_server, pki):
    srv = tls_server(cert="selfsigned", chain=None)
    res = probe(srv.url(), "--host", "selfsigned.example.com",
                "--trusted-root", pki / "selfsigned.pem")
    j = expect(res, "OK")
    assert j["chain"][0]["kind"] == "self-signed leaf", res
    assert j["chain"][0]["self_signed"] is True and j["chain"][0]["ca"] is False, res
    warnings = j["warnings"]
    assert warnings, f"no warning about the leaf uploaded as trusted root\n{res}"
    text = " ".join(w["message"].lower() for w in warnings)
    assert "leaf" in text or "not a ca" in text, res
    assert all(isinstance(w.get("code"), str) and w["code"] for w in warnings), res


def test_self_signed_leaf_with_other_root_is_root_not_trusted(tls_server, pki):
    srv = tls_server(cert="selfsigned", chain=None)
    res = probe(srv.url(), "--host", "selfsigned.example.com",
                "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_ROOT_NOT_TRUSTED")
    assert "selfsigned.example.com" in text_of(j), res


def test_intermediate_uploaded_as_trusted_root(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    res = app_probe(srv, "--trusted-root", pki / "inter.pem")
    j = expect(res, "CERT_ROOT_NOT_TRUSTED")
    # The message says the uploaded certificate (named by its file, or as "uploaded") is an
    # intermediate; lower-case, so the CN "Gatehouse Test Intermediate CA" does not count.
    assert re.search(r"inter\.pem[^.]{0,60}\bintermediate\b|\buploaded\b[^.]{0,80}\bintermediate\b",
                     j["message"]), res
    assert j["trust"]["anchors"][0]["kind"] == "intermediate", res
    assert "Gatehouse Test Root CA" in text_of(j), res


def test_private_chain_in_well_known_mode(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    for opts in (["--well-known-ca"], []):
        res = app_probe(srv, *opts)
        j = expect(res, "CERT_NOT_WELL_KNOWN")
        assert j["trust"]["mode"] == "well-known-ca", res
        assert "Gatehouse Test Root CA" in text_of(j), res


def test_der_cer_trusted_root(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    res = app_probe(srv, "--trusted-root", pki / "root.cer")
    j = expect(res, "OK")
    assert norm_fp(j["trust"]["anchors"][0]["sha256"]) == cert_sha256(pki / "root.pem"), res


def test_pfx_trusted_root_with_password_file(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    res = app_probe(srv, "--trusted-root", pki / "root.pfx",
                    "--password-file", pki / "password.txt")
    j = expect(res, "OK")
    assert "Gatehouse Test Root CA" in j["trust"]["anchors"][0]["subject"], res


def test_der_cer_of_other_root_is_root_not_trusted(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    res = app_probe(srv, "--trusted-root", pki / "other-root.cer")
    j = expect(res, "CERT_ROOT_NOT_TRUSTED")
    assert "Gatehouse Test Root CA" in j["remedy"], res


# v1-style allow-list.
def test_allowlist_right_cert_ok(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    for f in ("app.pem", "app.cer"):
        res = app_probe(srv, "--auth-cert", pki / f)
        j = expect(res, "OK")
        assert j["trust"]["mode"] == "auth-cert", res


def test_allowlist_wrong_cert(tls_server, pki):
    srv = tls_server(cert="app", chain="inter")
    res = app_probe(srv, "--auth-cert", pki / "legacy.pem")
    j = expect(res, "CERT_NOT_ALLOWLISTED")
    assert "app.example.com" in text_of(j), res


def test_allowlisted_but_expired(tls_server, pki):
    # The presented leaf is the uploaded one, but it has expired (reference 2.2: renew and
    # re-upload the leaf).
    srv = tls_server(cert="expired", chain="inter")
    res = probe(srv.url(), "--host", "expired.example.com", "--auth-cert", pki / "expired.pem")
    j = expect(res, "CERT_EXPIRED")
    assert "CERT_NOT_ALLOWLISTED" not in [f["code"] for f in j["findings"]], res
