"""The test PKI itself (scripts/test-pki): what every other test relies on."""

import subprocess
import time

import pytest

from support import OPENSSL, REPO, cert_sha256, pem_blocks

pytestmark = pytest.mark.no_binary


def ossl(*args, check=True):
    p = subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, f"openssl {args}: {p.stdout}{p.stderr}"
    return p


def subject(path):
    return ossl("x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253").stdout


def test_generation_overwrites_and_is_fast(tmp_path):
    (tmp_path / "app.pem").write_text("stale\n")
    start = time.monotonic()
    p = subprocess.run([str(REPO / "scripts" / "test-pki"), str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - start < 15  # loose: a few seconds on a loaded 2-core machine
    assert len(pem_blocks(tmp_path / "app.pem")) == 1


def test_usage_error():
    p = subprocess.run([str(REPO / "scripts" / "test-pki")], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2 and "usage" in p.stderr


def test_chains_verify(pki):
    for leaf in ("app", "san-only", "legacy", "wildcard", "cn-ignored", "ipsan-cn",
                 "ilb-default", "hostile"):
        ossl("verify", "-CAfile", pki / "root.pem", "-untrusted", pki / "inter.pem",
             pki / f"{leaf}.pem")
        assert len(pem_blocks(pki / f"{leaf}-chain.pem")) == 2
        assert len(pem_blocks(pki / f"{leaf}-fullchain.pem")) == 3
    ossl("verify", "-CAfile", pki / "other-root.pem", "-untrusted", pki / "other-inter.pem",
         pki / "other-app.pem")
    ossl("verify", "-CAfile", pki / "client-ca.pem", pki / "client.pem")
    ossl("verify", "-CAfile", pki / "selfsigned.pem", pki / "selfsigned.pem")
    # The other PKI does not verify against our root.
    p = ossl("verify", "-CAfile", pki / "root.pem", "-untrusted", pki / "other-inter.pem",
             pki / "other-app.pem", check=False)
    assert p.returncode != 0


def test_dates(pki):
    p = ossl("verify", "-CAfile", pki / "root.pem", "-untrusted", pki / "inter.pem",
             pki / "expired.pem", check=False)
    assert p.returncode != 0 and "expired" in p.stdout + p.stderr
    p = ossl("verify", "-CAfile", pki / "root.pem", "-untrusted", pki / "inter.pem",
             pki / "future.pem", check=False)
    assert p.returncode != 0 and "not yet valid" in p.stdout + p.stderr
    p = ossl("verify", "-CAfile", pki / "root.pem", "-untrusted", pki / "inter-expired.pem",
             pki / "app-under-expired.pem", check=False)
    assert p.returncode != 0 and "expired" in p.stdout + p.stderr


def test_subjects_and_extensions(pki):
    assert "CN=Gatehouse Test Root CA,O=Gatehouse Test" in subject(pki / "root.pem")
    assert "CN=Gatehouse Test Intermediate CA" in subject(pki / "inter.pem")
    assert "CN=Other Test Root CA" in subject(pki / "other-root.pem")
    assert "CN=ilb-default.internal" in subject(pki / "ilb-default.pem")
    assert "CN=" not in subject(pki / "san-only.pem")
    inter = ossl("x509", "-in", pki / "inter.pem", "-noout", "-ext", "basicConstraints").stdout
    assert "CA:TRUE" in inter and "pathlen:0" in inter
    app = ossl("x509", "-in", pki / "app.pem", "-noout", "-ext",
               "subjectAltName,authorityInfoAccess,basicConstraints").stdout
    assert "DNS:app.example.com" in app and "IP Address:127.0.0.1" in app
    assert "http://pki.example.com/intermediate.cer" in app and "CA:FALSE" in app
    legacy = ossl("x509", "-in", pki / "legacy.pem", "-noout", "-text").stdout
    assert "Subject Alternative Name" not in legacy
    ss = ossl("x509", "-in", pki / "selfsigned.pem", "-noout", "-ext", "basicConstraints").stdout
    assert "CA:FALSE" in ss


def test_der_pfx_and_bundles(pki):
    for name in ("root", "other-root", "app", "inter"):
        der = ossl("x509", "-inform", "DER", "-in", pki / f"{name}.cer", "-noout",
                   "-fingerprint", "-sha256").stdout
        fp = der.strip().split("=", 1)[1].replace(":", "").lower()
        assert fp == cert_sha256(pki / f"{name}.pem")
    out = ossl("pkcs12", "-in", pki / "root.pfx", "-passin", f"file:{pki / 'password.txt'}",
               "-nokeys").stdout
    assert "Gatehouse Test Root CA" in out
    out = ossl("pkcs12", "-in", pki / "app.pfx", "-passin", f"file:{pki / 'password.txt'}",
               "-nodes").stdout
    assert "PRIVATE KEY" in out and "app.example.com" in out
    assert len(pem_blocks(pki / "roots-bundle.pem")) == 2
    assert len(pem_blocks(pki / "ca-chain.pem")) == 2
    assert len(pem_blocks(pki / "other-ca-chain.pem")) == 2
    assert len(pem_blocks(pki / "app-under-expired-chain.pem")) == 2
