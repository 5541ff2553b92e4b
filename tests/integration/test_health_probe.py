"""What the gateway's health probe sends and how it judges the answer: the default probe (Host
127.0.0.1, no SNI to an IP member), custom probes (path, host, match status and body), the
probe/traffic parity, the certificate inventory and expiry warning; the admin API's other
endpoints and `gatehouse health` when the admin API cannot be reached.

Requests are observed at the backend (nginx access log: Host header, SNI, URI, User-Agent).
"""

import json
import time

from gateway_support import SLOW
from health_support import (  # noqa: F401 (fixtures)
    PROBE_UA,
    admin_get,
    backend_health,
    backends,
    fast_probe,
    get,
    health_config,
    health_gateway,
    https_settings,
    make_leaf,
    run_health,
    servers_of,
    wait_for,
    wait_health,
)
from support import cert_dates, cert_sha256, free_port


def first_probe(backend, timeout=3.0 * SLOW):
    return wait_for(f"a probe at {backend.name}", lambda: backend.probes()[:1],
                    timeout=timeout)[0]


def target_of(doc, pool, settings):
    for p in doc["pools"]:
        if p["name"] == pool:
            for s in p["settings"]:
                if s["name"] == settings:
                    return s
    raise AssertionError(f"no {pool}/{settings} in /backend-health: {json.dumps(doc)[:2000]}")


def test_default_probe_ip_member(pki, backends, health_gateway):
    """No custom probe, no host-name: GET / with Host 127.0.0.1 and no SNI, at once at boot,
    then not again before the default 30 s interval; the certificate is checked against the IP
    (the app certificate has IP:127.0.0.1). Traffic uses the client's Host (and SNI), which the
    parity section flags."""
    (b,) = backends(1)

    def make(gw):
        s = https_settings("plain-settings", b.port, host_name=None)
        return health_config(gw, pki, [("pool", [b.address], s, "web")])

    t_start = time.monotonic()
    gw = health_gateway(make, ("web",))
    p = first_probe(b)
    assert time.monotonic() - t_start < 2.5 * SLOW, "the first probe did not start at once"
    assert p["host"] == "127.0.0.1", f"default probe Host header: {p['host']!r}"
    assert p["sni"] == "", f"default probe sent SNI {p['sni']!r} to an IP member"
    assert p["uri"] == "/", p
    assert p["ua"].startswith(PROBE_UA), p
    s = wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    assert s["sni"] is None, s["sni"]
    assert s["url"] == f"https://{b.address}/", s["url"]
    assert s["name_check"]["name"] == "127.0.0.1" and s["name_check"]["matched"], s["name_check"]
    assert s["healthProbeLog"] == "Success. Received 200 status code", s["healthProbeLog"]
    doc = backend_health(gw)
    t = target_of(doc, "pool", "plain-settings")
    assert t["probe"], t  # the default probe has a name
    assert (t["healthy"], t["unhealthy"]) == (1, 0), t

    parity = s["parity"]
    assert parity["probe"]["host_header"] == "127.0.0.1", parity
    assert parity["probe"]["sni"] is None, parity
    assert parity["probe"]["path"] == "/", parity
    assert parity["probe"]["port"] == parity["traffic"]["port"] == b.port, parity
    assert "host_header" in parity["differences"], parity
    assert "sni" in parity["differences"], parity
    warn = [w for w in s["warnings"] if w["code"] == "PROBE_TRAFFIC_DIFFER"]
    assert warn and warn[0]["message"].strip(), s["warnings"]

    # Traffic really goes with the client's Host and SNI: what the probe did not test.
    mark = b.mark()
    status, _, body, _ = get(gw, host="app.example.com")
    assert status == 200, body
    (t_rec,) = wait_for("the request at the backend", lambda: b.traffic(mark), 3 * SLOW)
    assert t_rec["host"] == "app.example.com" and t_rec["sni"] == "app.example.com", t_rec

    # Default interval 30 s: no second probe a few seconds later.
    time.sleep(2.5)
    assert len(b.probes()) == 1, f"default probe repeated within 3 s: {b.probes()}"


def test_default_probe_with_settings_host_name(pki, backends, health_gateway):
    """The default probe takes the settings' host-name for Host and SNI; probe and traffic
    then agree and nothing is flagged."""
    (b,) = backends(1)

    def make(gw):
        s = https_settings("named", b.port, host_name="app.example.com")
        return health_config(gw, pki, [("pool", [b.address], s, "web")])

    gw = health_gateway(make, ("web",))
    p = first_probe(b)
    assert (p["host"], p["sni"], p["uri"]) == ("app.example.com", "app.example.com", "/"), p
    s = wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    assert s["sni"] == "app.example.com", s
    assert s["parity"]["differences"] == [], s["parity"]
    assert "PROBE_TRAFFIC_DIFFER" not in [w["code"] for w in s["warnings"]], s["warnings"]
    mark = b.mark()
    assert get(gw, host="anything.example.net")[0] == 200
    (t_rec,) = wait_for("the request at the backend", lambda: b.traffic(mark), 3 * SLOW)
    assert (t_rec["host"], t_rec["sni"]) == ("app.example.com", "app.example.com"), t_rec


def test_custom_probe_host_vs_client_host_flagged(pki, backends, health_gateway):
    """A custom probe with host app.example.com on settings without host-name: the probe
    passes, but traffic carries the client's Host; the difference is flagged."""
    (b,) = backends(1)

    def make(gw):
        s = https_settings("no-host", b.port, host_name=None, probe="named")
        probe = {"name": "named", "protocol": "https", "host": "app.example.com",
                 "path": "/health", "interval": "30s", "timeout": "5s"}
        return health_config(gw, pki, [("pool", [b.address], s, "web")], probes=[probe])

    gw = health_gateway(make, ("web",))
    p = first_probe(b)
    assert (p["host"], p["sni"], p["uri"]) == ("app.example.com", "app.example.com", "/health")
    s = wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    par = s["parity"]
    assert par["probe"]["host_header"] == "app.example.com", par
    assert par["probe"]["sni"] == "app.example.com", par
    assert par["traffic"]["host_header"] != "app.example.com", par
    assert "host_header" in par["differences"] and "sni" in par["differences"], par
    assert "PROBE_TRAFFIC_DIFFER" in [w["code"] for w in s["warnings"]], s["warnings"]
    assert target_of(backend_health(gw), "pool", "no-host")["probe"] == "named"


# (name, path, match status, match body, expected health, expected code, http status)
MATCH_CASES = [
    ("body-ok", "/health", ["200-399"], "healthy", "Healthy", "OK", 200),
    ("body-bad", "/health", ["200-399"], "absent-string", "Unhealthy", "HTTP_BODY_MISMATCH",
     200),
    ("status-bad", "/missing", ["200-399"], None, "Unhealthy", "HTTP_STATUS_MISMATCH", 404),
    ("status-404", "/missing", ["404"], None, "Healthy", "OK", 404),
    ("teapot", "/teapot", ["200-299", "418"], "teapot", "Healthy", "OK", 418),
    ("teapot-body", "/teapot", ["418"], "coffee", "Unhealthy", "HTTP_BODY_MISMATCH", 418),
]


def test_custom_probe_match_status_and_body(pki, backends, health_gateway):
    """One backend probed through six (pool, settings) pairs, each with its own custom probe:
    each pair is judged on its own path, status ranges and body string."""
    (b,) = backends(1)
    names = [c[0] for c in MATCH_CASES]

    def make(gw):
        pools, probes = [], []
        for name, path, status, body, *_ in MATCH_CASES:
            s = https_settings(f"s-{name}", b.port, probe=f"p-{name}")
            pools.append((f"pool-{name}", [b.address], s, name))
            probes.append(fast_probe(name=f"p-{name}", interval="30s", threshold=1, path=path,
                                     body=body, status=status))
        return health_config(gw, pki, pools, probes=probes)

    gw = health_gateway(make, names)

    def all_probed():
        doc = backend_health(gw)
        got = {}
        for name, *_ in MATCH_CASES:
            (srv,) = target_of(doc, f"pool-{name}", f"s-{name}")["servers"]
            if srv["health"] == "Unknown":
                return None
            got[name] = srv
        return got

    got = wait_for("every pair probed", all_probed, timeout=4 * SLOW)
    for name, path, status, body, health, code, http_status in MATCH_CASES:
        srv = got[name]
        assert (srv["health"], srv["code"]) == (health, code), (name, srv["health"], srv["code"],
                                                                srv["message"])
        assert srv["http"]["status"] == http_status, (name, srv["http"])
        assert srv["url"].endswith(path), (name, srv["url"])
        if code != "OK":
            assert code in [f["code"] for f in srv["findings"]], (name, srv["findings"])
            assert srv["remedy"].strip(), (name, srv)
            assert srv["healthProbeLog"].startswith(code), (name, srv["healthProbeLog"])
        else:
            assert srv["healthProbeLog"] == f"Success. Received {http_status} status code", \
                (name, srv["healthProbeLog"])
    # The status mismatch names what was received; the body mismatch names the string.
    assert "404" in got["status-bad"]["message"], got["status-bad"]["message"]
    assert "absent-string" in got["body-bad"]["message"], got["body-bad"]["message"]
    # The backend saw each probe's own path, with the settings' host name.
    paths = sorted(r["uri"] for r in b.probes())
    assert paths == sorted(c[1] for c in MATCH_CASES), paths
    assert {r["host"] for r in b.probes()} == {"app.example.com"}
    # Traffic follows the health of each pair: 502 where the pair is Unhealthy.
    for name, _path, _status, _body, health, _code, _http in MATCH_CASES:
        status = get(gw, listener=name)[0]
        assert status == (200 if health == "Healthy" else 502), (name, status)


def test_certificate_expiring_soon_is_a_warning(pki, tmp_path, backends, health_gateway):
    """A leaf that expires in 10 days: Healthy, with a CERT_EXPIRES_SOON warning, in the
    inventory with its days and seconds until expiry, and in the expiry gauge."""
    leaf, key, chain = make_leaf(pki, tmp_path, "short-lived", days=10)
    (b,) = backends(1)
    b.restart(chain=chain, key=key)

    def make(gw):
        s = https_settings("s", b.port, probe="fast")
        return health_config(gw, pki, [("pool", [b.address], s, "web")],
                             probes=[fast_probe(interval="30s")])

    gw = health_gateway(make, ("web",))
    s = wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    assert s["code"] == "OK" and s["findings"] == [], s
    codes = [w["code"] for w in s["warnings"]]
    assert "CERT_EXPIRES_SOON" in codes, s["warnings"]
    inv = s["certificates"]
    assert [c["sha256"] for c in inv] == [cert_sha256(leaf), cert_sha256(pki / "inter.pem")], inv
    assert inv[0]["kind"] == "leaf" and inv[1]["kind"] == "intermediate", inv
    not_after = cert_dates(leaf)[1]
    assert inv[0]["not_after"] == not_after, (inv[0], not_after)
    assert inv[0]["days_until_expiry"] in (9, 10), inv[0]
    import calendar
    expiry = calendar.timegm(time.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(inv[0]["seconds_until_expiry"] - (expiry - time.time())) < 120, inv[0]
    m = admin_get(gw, "/metrics").text
    line = [l for l in m.splitlines()
            if l.startswith("gatehouse_backend_certificate_expiry_seconds{")
            and f'server="{b.address}"' in l]
    assert len(line) == 1, line
    assert abs(float(line[0].rsplit(" ", 1)[1]) - (expiry - time.time())) < 120, line


def test_admin_endpoints(pki, backends, health_gateway):
    (b,) = backends(1)

    def make(gw):
        return health_config(gw, pki, [("pool", [b.address],
                                        https_settings("s", b.port, probe="fast"), "web")],
                             probes=[fast_probe(interval="30s")])

    gw = health_gateway(make, ("web",))
    r = admin_get(gw, "/healthz")
    assert r.status == 200, r
    assert r.json["status"] == "ok", r.json
    assert r.json["backends"] == 1 and r.json["workers"] == 2, r.json
    r = admin_get(gw, "/healthz", method="HEAD")
    assert r.status == 200 and r.body == b"", r
    r = admin_get(gw, "/healthz", method="POST")
    assert r.status == 405, r
    r = admin_get(gw, "/no-such-page")
    assert r.status == 404 and "error" in r.json, r
    r = admin_get(gw, "/backend-health?server=127.0.0.1:1")
    assert r.status == 404 and "127.0.0.1:1" in r.json["error"], r
    wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    # The server's address, percent-encoded, is found too.
    r = admin_get(gw, f"/backend-health?server=127.0.0.1%3A{b.port}")
    assert r.status == 200, r
    assert list(servers_of(r.json)) == [b.address]
    assert "history" in servers_of(r.json)[b.address]
    # The plain document has no history (it is per server).
    assert "history" not in servers_of(backend_health(gw))[b.address]
    doc = backend_health(gw)
    assert doc["generated"].endswith("Z"), doc["generated"]
    p = run_health(gw)
    assert p.returncode == 0, p
    p = run_health(gw, "--server", "127.0.0.1:1")
    assert p.returncode == 2, p
    assert "127.0.0.1:1" in p.stderr, p.stderr


def test_health_command_admin_unreachable(tmp_path):
    port = free_port()
    p = run_health(None, admin=f"http://127.0.0.1:{port}")
    assert p.returncode == 2, p
    assert f"127.0.0.1:{port}" in p.stderr, p.stderr
    assert p.stdout == "", p.stdout
    p = run_health(None, "--json", admin=f"http://127.0.0.1:{port}")
    assert p.returncode == 2, p


def test_hostile_certificate_text_in_health_outputs(pki, backends, health_gateway):
    """The backend's certificate text is attacker-controlled (ANSI escapes, a newline and a fake
    "Verdict: Healthy" line in the CN): /backend-health stays valid JSON, and `gatehouse health`
    prints exactly one line per server, with no escape reaching the terminal."""
    (b,) = backends(1, chain="hostile-chain.pem", key="hostile.key")

    def make(gw):
        s = https_settings("s", b.port, probe="fast", host_name="other.example.com")
        return health_config(gw, pki, [("pool", [b.address], s, "web")],
                             probes=[fast_probe(interval="30s", threshold=1)])

    gw = health_gateway(make, ("web",))
    s = wait_health(gw, b.address, "Unhealthy", timeout=3 * SLOW, code="CERT_NAME_MISMATCH")
    assert "hostile.example.com" in s["chain"][0]["subject"], s["chain"][0]
    for field in ("message", "remedy", "healthProbeLog"):
        assert "\x1b" not in s[field] and "\n" not in s[field], (field, s[field])
    p = run_health(gw)
    assert p.returncode == 1, p
    assert "\x1b" not in p.stdout, f"a raw escape from the certificate reached the table\n{p.stdout}"
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert len(lines) == 2, f"one header and one row expected:\n{p.stdout}"
    assert "CERT_NAME_MISMATCH" in lines[1] and "Unhealthy" in lines[1], p.stdout
    p = run_health(gw, "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout)["pools"][0]["settings"][0]["servers"][0]["code"] == \
        "CERT_NAME_MISMATCH"
