"""Gateway: requests with ambiguous or invalid framing are refused with 400 (and the connection
closed), never forwarded; the next request on a new connection works; each refusal has an
access log line with status 400. Raw bytes over a socket (plain HTTP listener, and over TLS).

Limits are the defaults (reference 4.4): URL 32 KiB, header block 32 KiB, 100 headers.
"""

import pytest

from gateway_support import (
    Gateway,
    PyBackend,
    SLOW,
    client_ctx,
    get,
    http_settings,
    raw_exchange,
    raw_headers,
    simple_config,
    status_of,
)

KIB = 1024


def req(target, *header_lines, body=b"", method="GET", version="HTTP/1.1", host="app.test"):
    lines = [f"{method} {target} {version}".encode()]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    lines += [h if isinstance(h, bytes) else h.encode() for h in header_lines]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def pad_headers(total_bytes, each=1000):
    """Header lines 'X-Pad-N: aaa...' adding up to at least total_bytes."""
    out, size, i = [], 0, 0
    while size < total_bytes:
        line = f"X-Pad-{i}: " + "a" * each
        out.append(line)
        size += len(line) + 2
        i += 1
    return out


# name -> raw request; every one must be refused with 400. The target names the case so that a
# request that reached the backend is recognised.
CASES = {
    "cl-and-te": req("/case-cl-and-te", "Content-Length: 5", "Transfer-Encoding: chunked",
                     method="POST", body=b"0\r\n\r\n"),
    "te-and-cl": req("/case-te-and-cl", "Transfer-Encoding: chunked", "Content-Length: 5",
                     method="POST", body=b"0\r\n\r\n"),
    "differing-duplicate-cl": req("/case-differing-duplicate-cl", "Content-Length: 5",
                                  "Content-Length: 6", method="POST", body=b"hello!"),
    "differing-cl-list": req("/case-differing-cl-list", "Content-Length: 5, 6", method="POST",
                             body=b"hello!"),
    "invalid-cl": req("/case-invalid-cl", "Content-Length: +5", method="POST", body=b"hello"),
    "te-not-chunked": req("/case-te-not-chunked", "Transfer-Encoding: gzip", method="POST",
                          body=b"hello"),
    "obs-fold": req("/case-obs-fold", "X-Folded: first", " second"),
    "obs-fold-tab": req("/case-obs-fold-tab", "X-Folded: first", "\tsecond"),
    "bare-cr-in-value": req("/case-bare-cr-in-value", b"X-Bad: a\rb"),
    "bare-cr-after-request-line": b"GET /case-bare-cr-after-request-line HTTP/1.1\rHost: a\r\n\r\n",
    "invalid-chunk-size": req("/case-invalid-chunk-size", "Transfer-Encoding: chunked",
                              method="POST", body=b"zz\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-overflow": req("/case-chunk-size-overflow", "Transfer-Encoding: chunked",
                               method="POST", body=b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    "negative-chunk-size": req("/case-negative-chunk-size", "Transfer-Encoding: chunked",
                               method="POST", body=b"-5\r\nhello\r\n0\r\n\r\n"),
    "non-token-header-name": req("/case-non-token-header-name", "X(Bad): 1"),
    "space-in-header-name": req("/case-space-in-header-name", "X Bad: 1"),
    "space-before-colon": req("/case-space-before-colon", "X-Bad : 1"),
    "oversized-url": req("/case-oversized-url/" + "a" * (33 * KIB)),
    "oversized-header-block-33k": req("/case-oversized-header-block-33k", *pad_headers(33 * KIB)),
    "oversized-header-block-48k": req("/case-oversized-header-block-48k", *pad_headers(48 * KIB)),
    "oversized-header-block-70k": req("/case-oversized-header-block-70k", *pad_headers(70 * KIB)),
    "too-many-headers": req("/case-too-many-headers", *[f"X-H{i}: {i}" for i in range(101)]),
    "http11-without-host": req("/case-http11-without-host", host=None),
    "two-host-headers": req("/case-two-host-headers", "Host: other.test"),
}

# Cases the gateway can only see once the body streams (the head was valid): the head may have
# gone to the backend, but the request must never complete there.
BODY_CASES = {"invalid-chunk-size", "chunk-size-overflow", "negative-chunk-size"}


@pytest.fixture(scope="module")
def framing_gw(tmp_path_factory, pki):
    backend = PyBackend(name="framing").start()
    gw = Gateway(tmp_path_factory.mktemp("gw-framing"),
                 lambda g: simple_config(g, pki, [f"127.0.0.1:{backend.port}"],
                                         http_settings(backend.port)),
                 ["http", "https"])
    try:
        gw.start()
        yield gw, backend
    finally:
        gw.stop()
        backend.stop()
        gw.assert_no_crash()


def check_refused(gw, backend, name, raw, port, ctx=None):
    resp, client_port, closed = raw_exchange(port, raw, ctx=ctx, sni="app.example.com" if ctx
                                             else None, timeout=3.0 * SLOW)
    status = status_of(resp)
    assert status == 400, f"{name}: expected 400, got {status}: {resp[:600]!r}"
    hdrs = {k.lower(): v for k, v in raw_headers(resp)}
    rid = hdrs.get("x-request-id")
    assert rid, f"{name}: no X-Request-Id: {resp[:600]!r}"
    assert hdrs.get("connection", "").lower() == "close", f"{name}: {resp[:600]!r}"
    assert closed, f"{name}: the gateway kept the connection open after refusing the request"
    # exactly one response: nothing after the 400's body
    assert resp.count(b"HTTP/1.1 ") == 1, f"{name}: {resp!r}"
    target = raw.split(b" ", 2)[1].decode("latin-1").split("\r")[0]
    completed = backend.requests_for(target)
    assert not completed, f"{name}: the request reached the backend: {completed}"
    rec = gw.wait_log(lambda r: r.get("request_id") == rid,
                      f"for {name} (request id {rid})")
    assert rec["status"] == 400, rec
    assert rec["client_port"] == client_port, rec
    assert rec["error_info"] not in (None, "ERRORINFO_NO_ERROR"), rec
    # the next request, on a new connection, works
    r = get(port, f"/after-{name}", host="app.test", ctx=ctx,
            sni="app.example.com" if ctx else None)
    assert r.status == 200, f"{name}: request after the refused one: {r}"
    assert backend.requests_for(f"/after-{name}"), name
    return rec


@pytest.mark.parametrize("name", list(CASES))
def test_refused_with_400(framing_gw, name):
    gw, backend = framing_gw
    check_refused(gw, backend, name, CASES[name], gw.port("http"))


@pytest.mark.parametrize("name", ["cl-and-te", "invalid-chunk-size", "obs-fold"])
def test_refused_with_400_over_tls(framing_gw, pki, name):
    gw, backend = framing_gw
    rec = check_refused(gw, backend, name, CASES[name], gw.port("https"), ctx=client_ctx(pki))
    assert rec.get("tls_version") in ("TLSv1.2", "TLSv1.3"), rec


def test_limits_are_not_refused_below(framing_gw):
    """Control: just under each limit is accepted (so the refusals above are the limits)."""
    gw, backend = framing_gw
    port = gw.port("http")
    close = "Connection: close"
    ok = {
        "url-31k": req("/ok-url/" + "a" * (31 * KIB), close),
        "headers-30k": req("/ok-headers-30k", close, *pad_headers(30 * KIB)),
        "100-headers": req("/ok-100-headers", close, *[f"X-H{i}: {i}" for i in range(98)]),
        "same-cl-twice": req("/ok-same-cl-twice", close, "Content-Length: 5",
                             "Content-Length: 5", method="POST", body=b"hello"),
        "http10-without-host": req("/ok-http10", version="HTTP/1.0", host=None),
    }
    for name, raw in ok.items():
        resp, _, closed = raw_exchange(port, raw, timeout=3.0 * SLOW)
        assert status_of(resp) == 200 and closed, f"{name}: {resp[:400]!r}"


def test_pipelined_request_after_refusal_is_not_processed(framing_gw):
    """A valid request pipelined behind a refused one on the same connection is not forwarded
    (the connection is closed after the 400)."""
    gw, backend = framing_gw
    raw = CASES["cl-and-te"] + req("/smuggled-after-refusal")
    resp, _, closed = raw_exchange(gw.port("http"), raw, timeout=3.0 * SLOW)
    assert status_of(resp) == 400 and closed, resp[:400]
    assert resp.count(b"HTTP/1.1 ") == 1, resp
    assert not backend.requests_for("/smuggled-after-refusal")


# ---- configured limits ------------------------------------------------------------------------

LIMITS = {"max-url-length": "4k", "max-header-bytes": "8k", "max-headers": 20,
          "max-body-bytes": "1k"}


@pytest.fixture(scope="module")
def limited_gw(tmp_path_factory, pki):
    backend = PyBackend(name="limited").start()
    gw = Gateway(tmp_path_factory.mktemp("gw-limits"),
                 lambda g: simple_config(g, pki, [f"127.0.0.1:{backend.port}"],
                                         http_settings(backend.port), limits=LIMITS),
                 ["http"])
    try:
        gw.start()
        yield gw, backend
    finally:
        gw.stop()
        backend.stop()
        gw.assert_no_crash()


LIMIT_CASES = {
    "url-5k-over-4k": req("/lim-url/" + "a" * (5 * KIB)),
    "header-block-10k-over-8k": req("/lim-header-block", *pad_headers(10 * KIB)),
    "21-headers-over-20": req("/lim-header-count", *[f"X-H{i}: {i}" for i in range(20)]),
}


@pytest.mark.parametrize("name", list(LIMIT_CASES))
def test_configured_limits_refused_with_400(limited_gw, name):
    gw, backend = limited_gw
    check_refused(gw, backend, name, LIMIT_CASES[name], gw.port("http"))


def chunked(body, size=256):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_configured_body_limit_is_413(limited_gw, framing):
    gw, backend = limited_gw
    body = b"b" * 4000
    target = f"/lim-body-{framing}"
    if framing == "content-length":
        raw = req(target, f"Content-Length: {len(body)}", method="POST", body=body)
    else:
        raw = req(target, "Transfer-Encoding: chunked", method="POST", body=chunked(body))
    resp, _, _ = raw_exchange(gw.port("http"), raw, timeout=3.0 * SLOW)
    status = status_of(resp)
    assert status == 413, f"{framing} body of {len(body)} bytes with max-body-bytes 1k: " \
                          f"got {status}: {resp[:300]!r}"
    got = [r["body_len"] for r in backend.requests_for(target)]
    assert not got, f"the backend received the whole over-limit body: {got}"


def test_configured_limits_allow_below(limited_gw):
    gw, backend = limited_gw
    close = "Connection: close"
    ok = {
        "url-3k": req("/lim-ok-url/" + "a" * (3 * KIB), close),
        "headers-7k": req("/lim-ok-headers", close, *pad_headers(7 * KIB)),
        "20-headers": req("/lim-ok-count", close, *[f"X-H{i}: {i}" for i in range(18)]),
        "body-1000-cl": req("/lim-ok-cl", close, "Content-Length: 1000", method="POST",
                            body=b"c" * 1000),
        "body-1000-chunked": req("/lim-ok-chunked", close, "Transfer-Encoding: chunked",
                                 method="POST", body=chunked(b"c" * 1000)),
    }
    for name, raw in ok.items():
        resp, _, closed = raw_exchange(gw.port("http"), raw, timeout=3.0 * SLOW)
        assert status_of(resp) == 200 and closed, f"{name}: {resp[:400]!r}"
