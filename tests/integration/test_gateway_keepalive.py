"""Gateway: keep-alive to backends (connections reused and counted at the backend), TLS session
resumption to backends, and the reused-connection race: a kept-alive backend connection that
the backend closes is retried once on a fresh connection for an idempotent request, and never
replayed for a POST whose body was sent."""

import re
import time

import pytest

from gateway_support import (
    SLOW,
    client_ctx,
    connection,
    curl,
    get,
    http_response,
    http_settings,
    https_settings,
    request,
    simple_config,
)

N = 50
MAX_BACKEND_CONNECTIONS = 5


def nginx_conn(body):
    m = re.match(r"site=echo conn=(\d+) req=(\d+)", body)
    assert m, body
    return int(m.group(1)), int(m.group(2))


@pytest.fixture
def ka_gateway(gateway, gw_nginx, pki):
    port = gw_nginx.port("echo")
    return gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{port}"], https_settings(port)),
                   ["http", "https"])


def test_one_client_connection_reuses_backend_connections(ka_gateway, pki):
    conn = connection(ka_gateway.port("https"), client_ctx(pki), "app.example.com")
    seen = []
    try:
        for i in range(N):
            r = request(conn, "GET", "/conn", host="app.example.com")
            assert r.status == 200, (i, r)
            seen.append(nginx_conn(r.text))
    finally:
        conn.close()
    conns = {c for c, _ in seen}
    print(f"\n{N} requests on one client connection -> {len(conns)} backend connection(s); "
          f"max requests on one: {max(n for _, n in seen)}")
    assert len(conns) <= MAX_BACKEND_CONNECTIONS, seen
    assert max(n for _, n in seen) >= N // MAX_BACKEND_CONNECTIONS, seen


@pytest.mark.parametrize("listener", ["https", "http"])
def test_separate_client_connections_reuse_backend_connections(ka_gateway, pki, listener):
    ctx = client_ctx(pki) if listener == "https" else None
    seen = []
    for i in range(N):
        r = get(ka_gateway.port(listener), "/conn", host="app.example.com", ctx=ctx,
                sni="app.example.com")
        assert r.status == 200, (i, r)
        seen.append(nginx_conn(r.text))
    conns = {c for c, _ in seen}
    print(f"\n{N} client connections ({listener}) -> {len(conns)} backend connection(s)")
    assert len(conns) <= MAX_BACKEND_CONNECTIONS, seen


def test_curl_requests_on_one_connection(ka_gateway, pki):
    """curl with many URLs reuses its connection; the backend sees few connections too."""
    port = ka_gateway.port("https")
    urls = [f"https://app.example.com:{port}/conn?{i}" for i in range(20)]
    p = curl("--cacert", pki / "root.pem", "--resolve", f"app.example.com:{port}:127.0.0.1",
             *urls)
    assert p.returncode == 0, p.stderr.decode()
    lines = [ln for ln in p.stdout.decode().splitlines() if ln]
    assert len(lines) == 20, lines
    conns = {nginx_conn(ln)[0] for ln in lines}
    assert len(conns) <= MAX_BACKEND_CONNECTIONS, lines


def test_backend_tls_sessions_are_resumed_nginx(gateway, gw_nginx, pki):
    """nginx closes every connection after its response (keepalive_timeout 0): each request
    needs a new backend connection, and after the first the gateway resumes its verified TLS
    session ($ssl_session_reused)."""
    port = gw_nginx.port("no-keepalive")
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{port}"], https_settings(port),
                                         workers=1), ["http"])
    bodies = [get(gw.port("http"), "/tls", host="app.example.com").text.strip()
              for _ in range(5)]
    assert all(x.startswith("site=no-keepalive conn=") for x in bodies), bodies
    assert len({x.split()[1] for x in bodies}) == 5, f"expected 5 backend connections: {bodies}"
    assert bodies[0].endswith("resumed=."), bodies
    assert all(x.endswith("resumed=r") for x in bodies[1:]), \
        f"later backend connections did not resume the verified TLS session: {bodies}"


def test_backend_tls_sessions_are_resumed_python_backend(gateway, py_backend, pki):
    """The same with a Python ssl backend (which does not acknowledge the SNI extension)."""
    def handler(backend, rec):
        return http_response(200, f"conn={rec['conn']} resumed={rec['tls_resumed']}",
                             keep_alive=False)

    b = py_backend(handler, tls=True)
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{b.port}"],
                                         https_settings(b.port), workers=1), ["http"])
    bodies = [get(gw.port("http"), "/", host="app.example.com").text for _ in range(5)]
    assert all(x.startswith("conn=") for x in bodies), bodies
    assert len({x.split()[0] for x in bodies}) == 5, f"expected 5 backend connections: {bodies}"
    assert bodies[0].endswith("resumed=False"), bodies
    assert all(x.endswith("resumed=True") for x in bodies[1:]), \
        f"later backend connections did not resume the verified TLS session: {bodies}"


# ---- the reused-connection race ---------------------------------------------------------------


def close_on_reuse(backend, rec):
    """Answers the first request of a connection; a later request on the same connection is read
    in full and then the connection is closed without an answer (the keep-alive race)."""
    if rec["index"] >= 1:
        return None
    return http_response(200, f"conn={rec['conn']} {rec['method']} {rec['target']} "
                              f"body={rec['body_len']}")


@pytest.fixture
def race(gateway, py_backend, pki):
    b = py_backend(close_on_reuse)
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{b.port}"], http_settings(b.port),
                                         workers=1), ["http"])
    return gw, b


def conn_of(resp, method, target):
    m = re.match(rf"conn=(\d+) {method} {re.escape(target)}\b", resp.text)
    assert m, resp
    return int(m.group(1))


def test_get_on_a_reused_connection_closed_by_the_backend_is_retried(race):
    gw, b = race
    conn = connection(gw.port("http"))
    try:
        r1 = request(conn, "GET", "/one", host="app.example.com")
        assert r1.status == 200, r1
        c1 = conn_of(r1, "GET", "/one")
        r2 = request(conn, "GET", "/two", host="app.example.com")
    finally:
        conn.close()
    assert r2.status == 200, r2
    c2 = conn_of(r2, "GET", "/two")
    assert c2 != c1, f"expected the answer on a fresh backend connection: {r2}"
    two = b.requests_for("/two")
    # once on the reused connection (read, then closed unanswered), once on a fresh one
    assert [(r["conn"], r["index"]) for r in two] == [(c1, 1), (c2, 0)], two
    rec = gw.log_for(r2.header("X-Request-Id"))
    assert rec["status"] == 200 and rec.get("retried") is True, rec
    rec1 = gw.log_for(r1.header("X-Request-Id"))
    assert not rec1.get("retried"), rec1


def test_post_with_body_on_a_reused_connection_is_never_replayed(race):
    gw, b = race
    body = b"payload-" * 512
    conn = connection(gw.port("http"))
    try:
        r1 = request(conn, "GET", "/one", host="app.example.com")
        assert r1.status == 200, r1
        r2 = request(conn, "POST", "/submit", host="app.example.com", body=body,
                     headers={"Content-Type": "application/octet-stream"})
    finally:
        conn.close()
    posts = b.requests_for("/submit", "POST")
    assert len(posts) == 1, f"the POST reached the backend {len(posts)} times: {posts}"
    assert posts[0]["body_len"] == len(body)
    # The only copy went on the reused connection, which closed without answering: 502.
    assert r2.status == 502, r2
    rec = gw.log_for(r2.header("X-Request-Id"))
    assert rec["status"] == 502 and not rec.get("retried"), rec
    assert rec["error_info"] == "ERRORINFO_UPSTREAM_CLOSED_CONNECTION", rec
    # The gateway still works afterwards.
    r3 = get(gw.port("http"), "/after", host="app.example.com")
    assert r3.status == 200, r3


@pytest.fixture
def idle_closer(gateway, py_backend, pki):
    """A backend that keeps connections alive but closes them quietly after 100 ms idle."""
    def handler(backend, rec):
        return http_response(200, f"conn={rec['conn']} {rec['method']} {rec['target']}")

    b = py_backend(handler, idle_close=0.1)
    gw = gateway(lambda g: simple_config(g, pki, [f"127.0.0.1:{b.port}"], http_settings(b.port),
                                         workers=1), ["http"])
    return gw, b


def test_get_after_backend_idle_close_succeeds(idle_closer):
    gw, b = idle_closer
    conn = connection(gw.port("http"))
    try:
        r1 = request(conn, "GET", "/one", host="app.example.com")
        assert r1.status == 200, r1
        time.sleep(0.3)
        r2 = request(conn, "GET", "/two", host="app.example.com")
    finally:
        conn.close()
    assert r2.status == 200, r2
    assert conn_of(r2, "GET", "/two") != conn_of(r1, "GET", "/one"), (r1, r2)
    assert len(b.requests_for("/two")) == 1, b.requests_for("/two")
    rec = gw.log_for(r2.header("X-Request-Id"))
    assert rec["status"] == 200 and rec["backend_status"] == 200, rec
    print(f"\nlog line of the GET after the idle close: retried={rec.get('retried', False)}")


def test_post_after_backend_idle_close_is_sent_once(idle_closer):
    gw, b = idle_closer
    body = b"x" * 10000
    conn = connection(gw.port("http"))
    try:
        r1 = request(conn, "GET", "/one", host="app.example.com")
        assert r1.status == 200, r1
        time.sleep(0.3)
        r2 = request(conn, "POST", "/submit", host="app.example.com", body=body)
    finally:
        conn.close()
    posts = b.requests_for("/submit", "POST")
    assert len(posts) <= 1, f"the POST reached the backend {len(posts)} times"
    if r2.status == 200:
        # only possible on a fresh connection, carrying the body once
        assert len(posts) == 1 and posts[0]["index"] == 0 and posts[0]["body_len"] == len(body)
    else:
        assert r2.status == 502, r2
    time.sleep(0.05 * SLOW)
    assert len(b.requests_for("/submit", "POST")) <= 1
