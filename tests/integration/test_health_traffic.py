"""Traffic follows health: only servers the prober found Healthy get requests; a slow or hung
probe never holds up the others or the data path; a data-path failure does not outlive a newer
successful probe.
"""

import threading
import time

from gateway_support import SLOW, http_response
from health_support import (  # noqa: F401 (fixtures)
    PROBE_UA,
    admin_get,
    backend_of,
    backends,
    fast_probe,
    get,
    health_config,
    health_gateway,
    https_settings,
    server_state,
    wait_for,
    wait_health,
)


def test_unknown_server_gets_no_traffic(pki, py_backend, health_gateway):
    """Issue 4: "Traffic only to healthy servers"; reference 1.12: "A new server is Unhealthy
    until its first successful probe", 3.1: "if every member is Unhealthy/Unknown clients get
    502". The only server answers its probe after 8 s (the gateway waits at most 3 s for the
    first round before it serves): until then it is Unknown, and a request must get a 502 from
    the gateway, not be sent to it."""
    release = threading.Event()

    def handler(backend, rec):
        ua = dict((k.lower(), v) for k, v in rec["headers"]).get("user-agent", "")
        if ua.startswith(PROBE_UA):
            release.wait(8)
            return http_response(200, "status: healthy\n")
        return http_response(200, "backend=slowprobe\n")

    b = py_backend(handler, tls=True, name="slowprobe")
    address = f"127.0.0.1:{b.port}"

    def make(gw):
        s = https_settings("tls", b.port, probe="p")
        return health_config(gw, pki, [("pool", [address], s, "web")],
                             probes=[fast_probe(name="p", interval="30s", threshold=3,
                                                timeout="10s")])

    try:
        gw = health_gateway(make, ("web",))
        wait_for("the first probe to reach the backend",
                 lambda: [r for r in list(b.requests) if r["target"] == "/health"], 3 * SLOW)
        s = server_state(gw, address)
        assert s["health"] == "Unknown", s["health"]
        status, headers, body, secs = get(gw)
        still_unknown = server_state(gw, address)["health"] == "Unknown"
        traffic = [r for r in list(b.requests) if r["target"] == "/"]
        assert still_unknown, "the probe finished too early for this test"
        assert traffic == [] and status == 502, \
            f"a server not yet probed healthy (Unknown) got traffic: {status} {body!r}"
    finally:
        release.set()


def test_hung_backend_does_not_hold_up_the_others(pki, tls_silent_server, backends,
                                                  health_gateway):
    """A server that completes the TLS handshake and never answers: its probe times out
    (RESPONSE_TIMEOUT, Unhealthy) while the other server keeps being probed every second and
    serving traffic at once."""
    (b,) = backends(1)
    silent = f"127.0.0.1:{tls_silent_server.port}"

    def make(gw):
        s = https_settings("tls", b.port, probe="p")
        return health_config(gw, pki, [("pool", [b.address, silent], s, "web")],
                             probes=[fast_probe(name="p", interval="1s", threshold=1,
                                                timeout="1s")])

    gw = health_gateway(make, ("web",))
    s = wait_health(gw, silent, "Unhealthy", timeout=4 * SLOW, code="RESPONSE_TIMEOUT")
    assert s["consecutive_failures"] >= 1
    mark = b.mark()
    t0 = time.monotonic()
    for _ in range(10):
        status, _, body, secs = get(gw)
        assert status == 200 and backend_of(body) == "b1", (status, body)
        assert secs < 0.5 * SLOW, f"a request took {secs:.2f}s beside a hung backend"
    wait_for("b1 probed again", lambda: len(b.probes(mark)) >= 2, 3.5 * SLOW)
    assert time.monotonic() - t0 < 4 * SLOW
    assert server_state(gw, b.address)["health"] == "Healthy"


def test_data_path_mark_does_not_outlive_a_newer_healthy_probe(pki, backends, health_gateway):
    """The only server refuses one request's connection and is back a moment later; once the
    prober has probed it Healthy again, requests must reach it. (A 502 then would say "no
    backend of pool 'pool' is healthy" while /backend-health says Healthy.)"""
    (b,) = backends(1)

    def make(gw):
        s = https_settings("tls", b.port, probe="p")
        return health_config(gw, pki, [("pool", [b.address], s, "web")],
                             probes=[fast_probe(name="p", interval="1s", threshold=3)],
                             workers=1)

    gw = health_gateway(make, ("web",))
    wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    b.stop()
    status, headers, body, _ = get(gw)
    assert status == 502, body
    r = admin_get(gw, f"/requests/{headers['x-request-id']}").json
    assert (r["stage"], r["code"], r["backend"]) == ("connect", "CONNECTION_REFUSED", b.address), r
    t_fail = time.monotonic()
    b.start()
    mark = b.mark()
    # A probe after the restart, and it passed.
    wait_for("a successful probe after the restart", lambda: b.probes(mark), 3 * SLOW)
    s = wait_health(gw, b.address, "Healthy", timeout=3 * SLOW, code="OK")
    assert s["consecutive_failures"] == 0, s
    status, headers, body, _ = get(gw)
    detail = ""
    if status == 502:
        detail = admin_get(gw, f"/requests/{headers['x-request-id']}").json
    assert status == 200, (
        f"{time.monotonic() - t_fail:.1f}s after one refused connection, with the server "
        f"probed Healthy since, the gateway still answers 502: {detail}")
