"""Certificate text is attacker-controlled: quotes, backslashes, UTF-8, ANSI escapes and a
newline followed by a fake verdict line in the subject, an ANSI escape in a DNS SAN."""

from support import expect, finding, probe


def test_hostile_subject_json(tls_server, pki):
    srv = tls_server(cert="hostile", chain="inter")
    # json.loads (strict) rejects raw control characters inside strings, so a parsed object
    # means the output was escaped properly.
    res = probe(srv.url(), "--host", "hostile.example.com", "--trusted-root", pki / "root.pem")
    j = expect(res, "OK")
    subject = j["chain"][0]["subject"]
    assert "hostile.example.com" in subject, res
    assert "Hostile" in subject and "quoted" in subject, res
    # RFC 2253 style escapes control characters: none survive into the subject text.
    assert "\x1b" not in subject and "\n" not in subject and "\r" not in subject, res


def test_hostile_subject_human_report(tls_server, pki):
    srv = tls_server(cert="hostile", chain="inter")
    res = probe(srv.url(), "--host", "other.example.com", "--trusted-root", pki / "root.pem",
                json_out=False)
    assert res.rc == 1, res
    out = res.stdout
    assert "\x1b" not in out, f"a raw escape from the certificate reached the terminal\n{res}"
    verdicts = [line for line in out.splitlines() if line.lstrip().startswith("Verdict:")]
    assert len(verdicts) == 1, f"certificate text forged a verdict line\n{res}"
    assert "Unhealthy" in verdicts[0], res
    assert "hostile.example.com" in out, res


def test_hostile_san_in_name_mismatch(tls_server, pki):
    srv = tls_server(cert="hostile", chain="inter")
    res = probe(srv.url(), "--host", "other.example.com", "--trusted-root", pki / "root.pem")
    j = expect(res, "CERT_NAME_MISMATCH")
    assert "hostile.example.com" in finding(j, "CERT_NAME_MISMATCH")["message"], res
