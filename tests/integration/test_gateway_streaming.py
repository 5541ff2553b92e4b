"""Gateway: bodies are streamed with bounded buffers. A 1 GiB download (nginx, HTTPS, a sparse
file with a marker every MiB so that the checksum depends on every position) and 1 GiB uploads
(curl, Content-Length and chunked, to a Python HTTPS backend that hashes and discards) go
through with the gateway's peak RSS (VmHWM) far below the body size.

GATEHOUSE_SAN=1 (sanitized build): 64 MiB instead of 1 GiB, and the gateway runs with a 1 MiB
AddressSanitizer quarantine (the default 256 MiB of freed-but-held blocks would be counted in its
RSS and say nothing about its buffering).
"""

import hashlib
import json
import os
import time

import pytest

from gateway_support import (
    SANITIZED,
    client_ctx,
    connection,
    curl,
    https_settings,
    simple_config,
)

MIB = 1 << 20
SIZE = (64 if SANITIZED else 1024) * MIB
MAX_RSS_KIB = 64 * 1024            # 64 MiB
MAX_SECONDS = 120 if SANITIZED else 60  # a bound, not a benchmark (each takes a few seconds)

RESULTS = {}  # what each transfer measured, printed at the end of the module

GW_ENV = None
if SANITIZED:
    GW_ENV = {"ASAN_OPTIONS": ":".join(
        x for x in (os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=1") if x)}


@pytest.fixture(scope="module")
def big_file(gw_nginx):
    """SIZE bytes in nginx's root: sparse, with an 8-byte marker at the start of every MiB.
    Returns (path, sha256 hex)."""
    path = gw_nginx.www / "big.bin"
    h = hashlib.sha256()
    zeros = bytes(MIB - 8)
    with open(path, "wb") as f:
        f.truncate(SIZE)
        for i in range(SIZE // MIB):
            marker = i.to_bytes(8, "big")
            f.seek(i * MIB)
            f.write(marker)
            h.update(marker)
            h.update(zeros)
    try:
        yield path, h.hexdigest()
    finally:
        path.unlink()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if RESULTS:
        print("\n\nGateway streaming (%d MiB each):" % (SIZE // MIB))
        for name, (secs, hwm) in RESULTS.items():
            print(f"  {name:<28} {secs:6.2f} s  {SIZE / MIB / secs:7.1f} MiB/s  "
                  f"gateway VmHWM {hwm / 1024:6.1f} MiB")


def report(name, secs, hwm, base):
    RESULTS[name] = (secs, hwm)
    print(f"\n{name}: {SIZE // MIB} MiB in {secs:.2f} s; gateway peak RSS (VmHWM) "
          f"{hwm} KiB = {hwm / 1024:.1f} MiB (VmHWM before the transfer: {base} KiB)")


def test_download_1gib(gateway, gw_nginx, pki, big_file):
    path, digest = big_file
    port = gw_nginx.port("echo")
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{port}"], https_settings(port)),
                 ["https"], env=GW_ENV)
    base_hwm = gw.vm_hwm_kib()
    conn = connection(gw.port("https"), client_ctx(pki), "app.example.com",
                      timeout=MAX_SECONDS)
    t0 = time.monotonic()
    try:
        conn.request("GET", "/big.bin", headers={"Host": "app.example.com"})
        r = conn.getresponse()
        assert r.status == 200, (r.status, r.getheaders())
        assert r.getheader("Content-Length") == str(SIZE), r.getheaders()
        h = hashlib.sha256()
        n = 0
        buf = bytearray(MIB)
        mv = memoryview(buf)
        while True:
            k = r.readinto(mv)
            if not k:
                break
            h.update(mv[:k])
            n += k
            assert time.monotonic() - t0 < MAX_SECONDS, f"download too slow: {n} bytes so far"
        rid = r.getheader("X-Request-Id")
    finally:
        conn.close()
    secs = time.monotonic() - t0
    hwm = gw.vm_hwm_kib()
    report("download (Content-Length)", secs, hwm, base_hwm)
    assert n == SIZE, f"received {n} bytes, expected {SIZE}"
    assert h.hexdigest() == digest, "the downloaded bytes differ from the file"
    rec = gw.log_for(rid)
    assert rec["status"] == 200 and rec["bytes_out"] >= SIZE, rec
    assert hwm < MAX_RSS_KIB, f"gateway peak RSS {hwm} KiB (at start {base_hwm} KiB)"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_1gib(gateway, py_backend, pki, big_file, framing):
    path, digest = big_file
    backend = py_backend(tls=True, name="sink")  # echo_handler: body length and sha256
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{backend.port}"],
                                         https_settings(backend.port, timeout="60s")),
                 ["https"], env=GW_ENV)
    port = gw.port("https")
    base_hwm = gw.vm_hwm_kib()
    args = ["--cacert", pki / "root.pem", "--resolve", f"app.example.com:{port}:127.0.0.1",
            "-X", "POST", "-H", "Content-Type: application/octet-stream",
            "-w", "\n%{http_code}", f"https://app.example.com:{port}/upload"]
    t0 = time.monotonic()
    if framing == "content-length":
        p = curl("-T", path, *args, timeout=MAX_SECONDS)
    else:
        with open(path, "rb") as stdin:
            p = curl("-T", "-", "-H", "Transfer-Encoding: chunked", *args, timeout=MAX_SECONDS,
                     stdin=stdin)
    secs = time.monotonic() - t0
    hwm = gw.vm_hwm_kib()
    report(f"upload ({framing})", secs, hwm, base_hwm)
    assert p.returncode == 0, p.stderr.decode()
    body, _, code = p.stdout.decode().rpartition("\n")
    assert code == "200", p.stdout[-2000:]
    seen = json.loads(body)
    hdrs = {k.lower(): v for k, v in seen["headers"]}
    if framing == "content-length":
        assert hdrs.get("content-length") == str(SIZE), hdrs
        assert "transfer-encoding" not in hdrs, hdrs
    else:
        assert hdrs.get("transfer-encoding") == "chunked", hdrs
        assert "content-length" not in hdrs, hdrs
    assert seen["body_len"] == SIZE, f"backend received {seen['body_len']} bytes of {SIZE}"
    assert seen["sha256"] == digest, "the uploaded bytes differ at the backend"
    assert len(backend.requests_for("/upload")) == 1, backend.requests_for()
    rec = gw.wait_log(lambda r: r.get("path") == "/upload", "for /upload")
    assert rec["status"] == 200 and rec["bytes_in"] >= SIZE, rec
    assert hwm < MAX_RSS_KIB, f"gateway peak RSS {hwm} KiB"
