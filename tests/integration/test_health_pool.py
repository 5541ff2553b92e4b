"""Health probes inside the gateway, on a pool of three real HTTPS backends (nginx processes):
stop one, swap another's certificate to a leaf-only chain, restore both, stop them all.

Probe interval 1 s, unhealthy threshold 2. Traffic is counted at the backends (their access
logs, probes told apart by their User-Agent) and by the backend named in each response body.
"""

import json
import time

from gateway_support import SLOW
from health_support import (  # noqa: F401 (fixtures)
    admin_get,
    backend_health,
    backend_of,
    backends,
    fast_probe,
    get,
    health_config,
    health_gateway,
    https_settings,
    make_leaf,
    run_health,
    server_state,
    servers_of,
    table_rows,
    wait_for,
    wait_health,
)
from support import cert_sha256

INTERVAL = 1.0
THRESHOLD = 2
# A healthy server must be Unhealthy this long after it fails: THRESHOLD probes one INTERVAL
# apart (the first one within an INTERVAL), plus the probe's own time and scheduling slack.
MARK_DOWN_BOUND = (THRESHOLD * INTERVAL + 1.5) * SLOW
# "502 at once": far below the settings' 20 s request timeout and the probe's 1 s timeout.
AT_ONCE = 0.5 * SLOW


def pool_gateway(health_gateway, pki, bs, workers=2):
    def make(gw):
        return health_config(
            gw, pki,
            [("pool", [b.address for b in bs], https_settings("tls", bs[0].port, probe="fast"),
              "web")],
            probes=[fast_probe(interval=f"{int(INTERVAL)}s", threshold=THRESHOLD)],
            workers=workers)
    return health_gateway(make, ("web",))


def send(gw, n, path="/"):
    """n GETs (each on a new connection); returns [(status, backend name, headers, body, s)]."""
    out = []
    for _ in range(n):
        status, headers, body, secs = get(gw, path=path)
        out.append((status, backend_of(body), headers, body, secs))
    return out


def transitions(gw, address):
    doc = backend_health(gw, address)
    (srv,) = servers_of(doc).values()
    return [(t["from"], t["to"]) for t in srv["transitions"]]


def test_pool_stop_swap_restore(pki, tmp_path, backends, health_gateway):
    b1, b2, b3 = backends(3)
    names = {b.name: b for b in (b1, b2, b3)}
    gw = pool_gateway(health_gateway, pki, (b1, b2, b3))

    # -- boot: every server turns Healthy on its first probe, and all three get traffic
    for b in (b1, b2, b3):
        wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    t0 = {b.name: b.mark() for b in (b1, b2, b3)}
    res = send(gw, 30)
    assert [r[0] for r in res] == [200] * 30, res
    seen = {r[1] for r in res}
    assert seen == {"b1", "b2", "b3"}, f"round robin over three healthy servers used {seen}"
    time.sleep(0.2)
    counted = {b.name: len(b.traffic(t0[b.name])) for b in (b1, b2, b3)}
    assert sum(counted.values()) == 30, counted
    for name, n in counted.items():
        assert n == sum(1 for r in res if r[1] == name), (counted, res)
    for b in (b1, b2, b3):
        assert transitions(gw, b.address) == [("Unknown", "Healthy")]

    # -- stop b1: Healthy while consecutive_failures < threshold, then Unhealthy
    b1.stop()
    t_stop = time.monotonic()
    snapshots = []

    def b1_down():
        s = server_state(gw, b1.address)
        snapshots.append((round(time.monotonic() - t_stop, 3), s["health"], s["code"],
                          s["consecutive_failures"]))
        return s["health"] == "Unhealthy"

    wait_for("b1 to turn Unhealthy", b1_down, MARK_DOWN_BOUND + 2, interval=0.05)
    took = time.monotonic() - t_stop
    assert took <= MARK_DOWN_BOUND, f"b1 turned Unhealthy after {took:.2f}s\n{snapshots}"
    for when, health, code, fails in snapshots:
        if fails < THRESHOLD:
            assert health == "Healthy", f"Unhealthy before the threshold: {snapshots}"
        else:
            assert health == "Unhealthy", f"still {health} after {fails} failures: {snapshots}"
    # (The first failure may be another code if a probe was in flight when nginx stopped.)
    assert any(f == 1 and h == "Healthy" and c != "OK" for _, h, c, f in snapshots), \
        f"never saw one failure below the threshold (Healthy, 1 failure): {snapshots}"
    s1 = server_state(gw, b1.address)
    assert s1["code"] == "CONNECTION_REFUSED", s1
    assert s1["consecutive_failures"] >= THRESHOLD, s1
    assert s1["healthProbeLog"].startswith("CONNECTION_REFUSED"), s1["healthProbeLog"]
    doc = backend_health(gw)
    (settings,) = doc["pools"][0]["settings"]
    assert (settings["healthy"], settings["unhealthy"]) == (2, 1), settings

    t1 = {b.name: b.mark() for b in (b1, b2, b3)}
    n_log = len(gw.log_records())
    res = send(gw, 30)
    assert [r[0] for r in res] == [200] * 30, f"requests failed with one server down: {res}"
    assert {r[1] for r in res} == {"b2", "b3"}, res
    time.sleep(0.2)
    assert len(b2.traffic(t1[b2.name])) + len(b3.traffic(t1[b3.name])) == 30
    recs = gw.log_records()[n_log:]
    assert len(recs) == 30, recs
    assert [r for r in recs if r.get("backend") == b1.address] == [], \
        "the gateway sent traffic to b1 (Unhealthy)"

    # -- b2 presents a new leaf without its intermediate
    leaf, key, _ = make_leaf(pki, tmp_path, "app-rotated")
    b2.restart(chain=leaf, key=key)
    t_swap = b2.mark()
    s2 = wait_health(gw, b2.address, "Unhealthy", timeout=MARK_DOWN_BOUND + 1,
                     code="CERT_INTERMEDIATE_MISSING")
    assert "CERT_INTERMEDIATE_MISSING" in [f["code"] for f in s2["findings"]], s2["findings"]
    assert [c["sha256"] for c in s2["chain"]] == [cert_sha256(leaf)], s2["chain"]
    assert "Intermediate" in s2["message"], s2["message"]
    assert s2["healthProbeLog"].startswith("CERT_INTERMEDIATE_MISSING"), s2["healthProbeLog"]
    changed = [w for w in s2["warnings"] if w["code"] == "CERT_CHANGED"]
    assert changed, f"no CERT_CHANGED warning after the leaf changed: {s2['warnings']}"
    assert cert_sha256(leaf)[:16] in changed[0]["message"], changed
    assert cert_sha256(pki / "app.pem")[:16] in changed[0]["message"], changed
    assert s2["certificates"][0]["sha256"] == cert_sha256(leaf), s2["certificates"]

    # ... in `gatehouse health` (table, --json, --server)
    p = run_health(gw)
    assert p.returncode == 1, f"exit {p.returncode} with unhealthy servers\n{p.stdout}{p.stderr}"
    rows = {r["server"]: r for r in table_rows(p.stdout)}
    assert set(rows) == {b1.address, b2.address, b3.address}, p.stdout
    assert (rows[b1.address]["health"], rows[b1.address]["code"]) == \
        ("Unhealthy", "CONNECTION_REFUSED"), p.stdout
    assert (rows[b2.address]["health"], rows[b2.address]["code"]) == \
        ("Unhealthy", "CERT_INTERMEDIATE_MISSING"), p.stdout
    assert (rows[b3.address]["health"], rows[b3.address]["code"]) == ("Healthy", "OK"), p.stdout
    assert rows[b2.address]["cause"].strip(), p.stdout
    assert "\x1b[" not in p.stdout, "colour codes when stdout is not a terminal"
    p = run_health(gw, "--json")
    assert p.returncode == 1, p
    j = servers_of(json.loads(p.stdout))
    assert j[b2.address]["health"] == "Unhealthy", j[b2.address]
    assert j[b2.address]["code"] == "CERT_INTERMEDIATE_MISSING", j[b2.address]
    assert "CERT_CHANGED" in [w["code"] for w in j[b2.address]["warnings"]]
    assert j[b3.address]["health"] == "Healthy"
    p = run_health(gw, "--json", "--server", b2.address)
    assert p.returncode == 1, p
    only = servers_of(json.loads(p.stdout))
    assert list(only) == [b2.address], only
    assert only[b2.address]["history"][0]["code"] == "CERT_INTERMEDIATE_MISSING"
    p = run_health(gw, "--server", b3.address)
    assert p.returncode == 0, f"only a healthy server asked for: exit {p.returncode}\n{p.stdout}"
    assert [r["server"] for r in table_rows(p.stdout)] == [b3.address], p.stdout

    # ... and it gets no traffic, counted at b2 (which is up, serving its leaf)
    t2 = {b.name: b.mark() for b in (b1, b2, b3)}
    res = send(gw, 20)
    assert [r[0] for r in res] == [200] * 20, res
    assert {r[1] for r in res} == {"b3"}, res
    time.sleep(0.2)
    assert b2.traffic(t2["b2"]) == [], f"b2 (Unhealthy) got traffic: {b2.traffic(t2['b2'])}"
    assert len(b3.traffic(t2[b3.name])) == 20
    assert b2.traffic(t_swap) == [], "traffic reached b2 after its certificate was swapped"

    # -- restore both: one successful probe each turns them Healthy again, and they get traffic
    b1.start()
    b2.restart(chain=pki / "app-chain.pem", key=pki / "app.key")
    for b in (b1, b2):
        wait_health(gw, b.address, "Healthy", timeout=(INTERVAL + 1.5) * SLOW, code="OK")
    t3 = {b.name: b.mark() for b in (b1, b2, b3)}
    res = send(gw, 30)
    assert [r[0] for r in res] == [200] * 30, res
    assert {r[1] for r in res} == {"b1", "b2", "b3"}, f"restored servers got no traffic: {res}"
    time.sleep(0.2)
    assert {n: len(b.traffic(t3[b.name])) > 0 for n, b in names.items()} == \
        {"b1": True, "b2": True, "b3": True}
    assert sum(len(b.traffic(t3[b.name])) for b in (b1, b2, b3)) == 30

    # transitions, newest first: Unknown -> Healthy -> Unhealthy -> Healthy
    for b in (b1, b2):
        assert transitions(gw, b.address) == [
            ("Unhealthy", "Healthy"), ("Healthy", "Unhealthy"), ("Unknown", "Healthy")], b.name
    assert transitions(gw, b3.address) == [("Unknown", "Healthy")]
    doc = backend_health(gw, b2.address)
    (srv,) = servers_of(doc).values()
    tr = srv["transitions"]
    assert tr[1]["code"] == "CERT_INTERMEDIATE_MISSING", tr
    assert tr[0]["code"] == "OK", tr
    assert tr[0]["time"] >= tr[1]["time"] >= tr[2]["time"], tr
    hist_codes = [h["code"] for h in srv["history"]]
    assert "CERT_INTERMEDIATE_MISSING" in hist_codes, hist_codes
    for h in srv["history"]:
        if h["code"] == "CERT_INTERMEDIATE_MISSING":
            assert h["leaf_sha256"] == cert_sha256(leaf), h
        elif h["code"] == "OK":
            assert h["leaf_sha256"] == cert_sha256(pki / "app.pem"), h
            assert h["http_status"] == 200, h

    # -- history: at most 20 results, newest first (b3 was probed all along, once a second)
    wait_for("b3 to have been probed more than 20 times", lambda: len(b3.probes()) >= 22,
             timeout=25 * SLOW, interval=0.25)
    doc = backend_health(gw, b3.address)
    (srv,) = servers_of(doc).values()
    hist = srv["history"]
    assert len(hist) == 20, f"{len(hist)} history entries after {len(b3.probes())} probes"
    times = [h["time"] for h in hist]
    assert times == sorted(times, reverse=True), f"history is not newest first: {times}"
    assert hist[0]["time"] == srv["last_probe"], (hist[0], srv["last_probe"])
    assert abs(hist[0]["duration_ms"] - srv["last_probe_ms"]) < 1e-3, (hist[0], srv)
    for h in hist:
        assert h["code"] == "OK" and h["http_status"] == 200, h
        assert h["leaf_sha256"] == cert_sha256(pki / "app.pem"), h
        assert 0 < h["duration_ms"] < 1000 * SLOW, h
    # The probes went out one interval apart (no thundering herd, no busy loop).
    pt = [r["time"] for r in b3.probes()]
    gaps = [b - a for a, b in zip(pt, pt[1:])]
    assert min(gaps) > 0.5 * INTERVAL, f"probes of b3 closer than half the interval: {gaps}"
    assert max(gaps) < 2.0 * INTERVAL * SLOW, f"probes of b3 further apart than 2 s: {gaps}"
    for r in b3.probes():
        assert r["uri"] == "/health" and r["host"] == "app.example.com", r
        assert r["sni"] == "app.example.com", r


def check_502(gw, pool_name, addresses, n=10):
    """n requests: each a 502 at once; returns their request ids."""
    ids = []
    for _ in range(n):
        status, headers, body, secs = get(gw)
        assert status == 502, (status, body)
        assert secs < AT_ONCE, f"the 502 took {secs:.3f}s (request timeout 20s)"
        rid = headers.get("x-request-id")
        assert rid, headers
        text = body.decode("utf-8", "replace")
        # The cause is for the operator, never for the client.
        for secret in ["server-select", "ERRORINFO", "UPSTREAM_NO_LIVE", "healthy",
                       f"'{pool_name}'", "CONNECTION_REFUSED", *addresses,
                       *[a.rsplit(":", 1)[1] for a in addresses]]:
            assert secret not in text, f"{secret!r} shown to the client: {text!r}"
        ids.append(rid)
    return ids


def check_request_api(gw, rid, pool_name, addresses, code="CONNECTION_REFUSED"):
    r = admin_get(gw, f"/requests/{rid}")
    assert r.status == 200, r
    j = r.json
    assert j["request_id"] == rid, j
    assert j["status"] == 502, j
    assert j["stage"] == "server-select", j
    assert j["error_info"] == "ERRORINFO_UPSTREAM_NO_LIVE", j
    assert pool_name in j["detail"] and "healthy" in j["detail"], j
    # The 502 names the pool's first server and its health verdict (no server was tried).
    assert j["backend"] == addresses[0], j
    assert j["code"] == code, j
    assert addresses[0] in j["detail"] and code in j["detail"], j
    assert 0 <= j["timings_ms"]["total"] < AT_ONCE * 1000, j
    rec = gw.log_for(rid)
    assert rec["status"] == 502, rec
    assert rec["error_info"] == "ERRORINFO_UPSTREAM_NO_LIVE", rec
    assert rec["phase"] == "server-select", rec
    assert pool_name in rec.get("detail", ""), rec
    assert rec.get("upstream_error") == code, rec
    return j


def test_all_unhealthy_gives_502_at_once(pki, backends, health_gateway):
    bs = backends(3)
    gw = pool_gateway(health_gateway, pki, bs)
    for b in bs:
        wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    assert [r[0] for r in send(gw, 6)] == [200] * 6
    t_stop = time.monotonic()
    for b in bs:
        b.stop()
    for b in bs:
        wait_health(gw, b.address, "Unhealthy", timeout=MARK_DOWN_BOUND + 1)
    assert time.monotonic() - t_stop <= MARK_DOWN_BOUND + 0.5
    ids = check_502(gw, "pool", [b.address for b in bs])
    for rid in ids[:3]:
        check_request_api(gw, rid, "pool", [b.address for b in bs])
    assert len(set(ids)) == len(ids), f"request ids repeat: {ids}"

    # An id that names no gateway-generated error.
    r = admin_get(gw, "/requests/no-such-request-id")
    assert r.status == 404, r
    assert "error" in r.json
    # A 200's id is not a gateway error either.
    bs[0].start()
    wait_health(gw, bs[0].address, "Healthy", timeout=(INTERVAL + 1.5) * SLOW)
    status, headers, body, _ = get(gw)
    assert status == 200, body
    rid_ok = gw.wait_log(lambda r: r.get("status") == 200, "a 200")["request_id"]
    assert admin_get(gw, f"/requests/{rid_ok}").status == 404

    p = run_health(gw)
    rows = {r["server"]: r for r in table_rows(p.stdout)}
    assert p.returncode == 1
    assert [rows[b.address]["health"] for b in bs] == ["Healthy", "Unhealthy", "Unhealthy"]


def test_never_healthy_pool_502_from_boot(pki, backends, health_gateway):
    """Servers that fail their very first probe are Unhealthy at once (no threshold wait):
    the pool answers 502 at once from the first probe round on."""
    (b,) = backends(1)
    b.stop()  # a port that refuses connections

    def make(gw):
        return health_config(
            gw, pki, [("dead", [b.address], https_settings("tls", b.port, probe="slow"), "web")],
            probes=[fast_probe(name="slow", interval="30s", threshold=3)])

    gw = health_gateway(make, ("web",))
    s = wait_health(gw, b.address, "Unhealthy", timeout=2 * SLOW, code="CONNECTION_REFUSED")
    assert s["consecutive_failures"] == 1, s
    ids = check_502(gw, "dead", [b.address], n=5)
    check_request_api(gw, ids[0], "dead", [b.address])
    assert transitions(gw, b.address) == [("Unknown", "Unhealthy")]


def test_data_path_failure_triggers_reprobe(pki, backends, health_gateway):
    """Interval 30 s: only the data path's failed connection can cause the second probe, within
    about a second. The server stays Healthy below the threshold (3)."""
    bs = backends(3)

    def make(gw):
        return health_config(
            gw, pki,
            [("pool", [b.address for b in bs], https_settings("tls", bs[0].port, probe="slow"),
              "web")],
            probes=[fast_probe(name="slow", interval="30s", threshold=3)], workers=1)

    gw = health_gateway(make, ("web",))
    first = {}
    for b in bs:
        first[b.address] = wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)["last_probe"]
    bs[0].stop()
    # Round robin reaches b1 within three requests (one worker).
    results = send(gw, 3)
    hit = gw.wait_log(lambda r: r.get("backend") == bs[0].address, "a request sent to b1")
    t_hit = time.monotonic()
    assert hit["status"] == 502 or hit.get("retried"), hit
    s = wait_for("b1 re-probed after the failed connection",
                 lambda: (lambda x: x if x["code"] == "CONNECTION_REFUSED" else None)(
                     server_state(gw, bs[0].address)), timeout=2.5 * SLOW)
    took = time.monotonic() - t_hit
    assert took < 2.0 * SLOW, f"re-probe {took:.2f}s after the data-path failure"
    assert s["health"] == "Healthy", f"one failure below threshold 3 made it {s['health']}"
    assert s["consecutive_failures"] == 1, s
    # The other two were not probed again (interval 30 s).
    for b in bs[1:]:
        assert server_state(gw, b.address)["last_probe"] == first[b.address]
    assert len([r for r in results if r[0] == 200]) >= 2, results
