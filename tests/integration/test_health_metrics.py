"""GET /metrics: Prometheus text that a Prometheus parser reads, whose counts match the requests
sent (and, per server, the requests the backends logged), with consistent histograms, health
gauges, probe results and the certificate expiry gauge.
"""

import calendar
import http.client
import re
import socket
import ssl
import time
from collections import Counter, defaultdict

import pytest

from gateway_support import SLOW, base_config
from health_support import (  # noqa: F401 (fixtures)
    admin_get,
    backends,
    fast_probe,
    get,
    health_gateway,
    https_settings,
    wait_for,
    wait_health,
)
from support import cert_dates

prom_parser = pytest.importorskip(
    "prometheus_client.parser",
    reason="python3-prometheus-client is not installed (run ./scripts/deps)")

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def scrape(gw):
    r = admin_get(gw, "/metrics")
    assert r.status == 200, r
    ctype = r.header("Content-Type")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    return r.text


def parse(text):
    """Parses with prometheus_client and checks the exposition's own rules; returns
    {(sample name, frozenset(labels)): value} and {family: type}."""
    families = list(prom_parser.text_string_to_metric_families(text))
    assert families, "no metric families"
    samples, types = {}, {}
    for fam in families:
        assert NAME_RE.match(fam.name), fam.name
        assert fam.name.startswith("gatehouse_"), fam.name
        assert fam.documentation.strip(), f"{fam.name} has no HELP"
        assert fam.type in ("counter", "gauge", "histogram"), (fam.name, fam.type)
        types[fam.name] = fam.type
        for s in fam.samples:
            for k in s.labels:
                assert LABEL_RE.match(k) and not k.startswith("__"), (s.name, k)
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate series {s.name}{s.labels}"
            samples[key] = s.value
    # Every sample line belongs to a family declared by # TYPE, and counters end in _total.
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line).group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in declared or base in declared, f"sample without # TYPE: {line}"
        if declared.get(name) == "counter":
            assert name.endswith("_total"), name
    return samples, types


def values(samples, name, **labels):
    """{labels dict as frozenset: value} of the samples named `name` matching `labels`."""
    out = {}
    for (n, ls), v in samples.items():
        d = dict(ls)
        if n == name and all(d.get(k) == v2 for k, v2 in labels.items()):
            out[ls] = v
    return out


def total(samples, name, **labels):
    return sum(values(samples, name, **labels).values())


def check_histograms(samples, name):
    """For each series of histogram `name`: buckets cumulative, +Inf == _count, sum >= 0.
    Returns {labels without le: count}."""
    series = defaultdict(list)
    for (n, ls), v in samples.items():
        if n == f"{name}_bucket":
            d = dict(ls)
            le = d.pop("le")
            series[frozenset(d.items())].append((float(le), v))
    assert series, f"no {name} buckets"
    counts = {}
    for key, buckets in series.items():
        buckets.sort()
        vals = [v for _, v in buckets]
        assert vals == sorted(vals), f"{name}{dict(key)}: buckets not cumulative {buckets}"
        assert buckets[-1][0] == float("inf"), buckets
        count = samples[(f"{name}_count", key)]
        assert buckets[-1][1] == count, f"{name}{dict(key)}: +Inf {buckets[-1][1]} != {count}"
        s = samples[(f"{name}_sum", key)]
        assert s >= 0, (name, key, s)
        counts[key] = count
    return counts


def test_metrics_match_requests(pki, backends, health_gateway):
    bs = backends(3)

    def make(gw):
        s = https_settings("tls", bs[0].port, probe="fast")
        listeners = [
            {"name": "web", "address": "127.0.0.1", "port": gw.ports["web"], "protocol": "http"},
            {"name": "sec", "address": "127.0.0.1", "port": gw.ports["sec"],
             "protocol": "https", "certificate": "app"},
        ]
        rules = [{"name": "r-web", "listener": "web", "priority": 100, "backend-pool": "pool",
                  "backend-settings": "tls"},
                 {"name": "r-sec", "listener": "sec", "priority": 110, "backend-pool": "pool",
                  "backend-settings": "tls"}]
        cfg = base_config(gw, pki, workers=2, listeners=listeners, rules=rules,
                          **{"backend-pools": [{"name": "pool",
                                                "servers": [b.address for b in bs]}],
                             "backend-settings": [s]})
        cfg["probes"] = [fast_probe(interval="1s", threshold=2)]
        return cfg

    gw = health_gateway(make, ("web", "sec"))
    for b in bs:
        wait_health(gw, b.address, "Healthy", timeout=3 * SLOW)
    marks = {b.address: b.mark() for b in bs}
    before, _ = parse(scrape(gw))
    assert total(before, "gatehouse_requests_total") == 0, "requests counted before any was sent"

    sent = Counter()
    for _ in range(12):
        assert get(gw)[0] == 200
        sent[("web", "2xx")] += 1
    for _ in range(5):
        assert get(gw, path="/missing")[0] == 404
        sent[("web", "4xx")] += 1
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki / "root.pem"))
    for _ in range(3):
        c = http.client.HTTPSConnection("127.0.0.1", gw.port("sec"), context=ctx, timeout=10)
        try:
            c.request("GET", "/teapot", headers={"Host": "app.example.com"})
            # The certificate names app.example.com and 127.0.0.1 (IP SAN): verification holds.
            r = c.getresponse()
            r.read()
            assert r.status == 418
        finally:
            c.close()
        sent[("sec", "4xx")] += 1

    def settled():
        samples, _ = parse(scrape(gw))
        for (lst, cls), n in sent.items():
            if total(samples, "gatehouse_requests_total", listener=lst, code_class=cls) != n:
                return None
        return samples

    samples = wait_for("request counters to reach the counts sent", settled, 3 * SLOW)
    # Every other class, and requests matching no listener, are zero.
    for (n, ls), v in samples.items():
        if n == "gatehouse_requests_total":
            d = dict(ls)
            assert v == sent.get((d["listener"], d["code_class"]), 0), (d, v)
            if d["listener"]:
                assert d["rule"] == {"web": "r-web", "sec": "r-sec"}[d["listener"]], d
    # Client latency histograms: one observation per request.
    counts = check_histograms(samples, "gatehouse_request_duration_seconds")
    assert {dict(k)["listener"]: v for k, v in counts.items()} == {"web": 17, "sec": 3}
    # Backend responses, per server: as many as the backend logged (probes aside), by class.
    per_server = {}
    for b in bs:
        logged = b.traffic(marks[b.address])
        by_class = Counter(f"{r['status'][0]}xx" for r in logged)
        got = {dict(ls)["code_class"]: v for ls, v in
               values(samples, "gatehouse_backend_responses_total", server=b.address).items()}
        for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
            assert got.get(cls, 0) == by_class.get(cls, 0), (b.name, cls, got, by_class)
        per_server[b.address] = sum(got.values())
    assert sum(per_server.values()) == 20, per_server
    assert total(samples, "gatehouse_backend_responses_total", code_class="2xx") == 12
    assert total(samples, "gatehouse_backend_responses_total", code_class="4xx") == 8
    bcounts = check_histograms(samples, "gatehouse_backend_response_duration_seconds")
    for key, n in bcounts.items():
        assert n == per_server[dict(key)["server"]], (dict(key), n, per_server)
    # TLS handshakes: the three HTTPS connections, and no failure among them. (Before: the
    # fixture's readiness check, TCP connects closed without a ClientHello; see
    # test_tls_handshake_failure_reasons.)
    assert total(samples, "gatehouse_tls_handshakes_total") == 3
    # (Only real handshake failures: the readiness check's closed connections may be counted
    # as reason="closed" after the "before" scrape, the gateway sees their EOF when it can.)
    assert total(samples, "gatehouse_tls_handshake_failures_total", reason="handshake") == \
        total(before, "gatehouse_tls_handshake_failures_total", reason="handshake")
    assert total(samples, "gatehouse_upstream_connections_total") >= 3
    wait_for("no open client connections",
             lambda: total(parse(scrape(gw))[0], "gatehouse_open_connections") == 0, 3 * SLOW)
    # Health gauges and probe results.
    assert total(samples, "gatehouse_backend_healthy_hosts", pool="pool", settings="tls") == 3
    assert total(samples, "gatehouse_backend_unhealthy_hosts", pool="pool", settings="tls") == 0
    probes_logged = sum(len(b.probes()) for b in bs)
    ok = total(samples, "gatehouse_probe_results_total", code="OK")
    probes_logged_after = sum(len(b.probes()) for b in bs)
    # Each OK result is a probe the backend logged (give or take the one in flight per server).
    assert probes_logged - 3 <= ok <= probes_logged_after + 3, (ok, probes_logged)
    assert total(samples, "gatehouse_probe_results_total") == ok, "failed probes while healthy"
    # The certificate expiry gauge: the leaf's notAfter, from now.
    expiry = calendar.timegm(time.strptime(cert_dates(pki / "app.pem")[1], "%Y-%m-%dT%H:%M:%SZ"))
    exp = values(samples, "gatehouse_backend_certificate_expiry_seconds", pool="pool")
    assert {dict(k)["server"] for k in exp} == {b.address for b in bs}, exp
    for v in exp.values():
        assert abs(v - (expiry - time.time())) < 120, v

    # -- every server down: the gauges follow, the probe failures are counted, 502s counted
    for b in bs:
        b.stop()
    for b in bs:
        wait_health(gw, b.address, "Unhealthy", timeout=6 * SLOW)
    for _ in range(4):
        assert get(gw)[0] == 502
        sent[("web", "5xx")] += 1
    samples = wait_for("request counters to reach the counts sent", settled, 3 * SLOW)
    assert total(samples, "gatehouse_backend_healthy_hosts", pool="pool") == 0
    assert total(samples, "gatehouse_backend_unhealthy_hosts", pool="pool") == 3
    # Two consecutive failures per server (threshold 2); mostly CONNECTION_REFUSED, but a probe
    # in flight when its nginx stopped fails otherwise.
    failed = total(samples, "gatehouse_probe_results_total") - \
        total(samples, "gatehouse_probe_results_total", code="OK")
    assert failed >= 6, values(samples, "gatehouse_probe_results_total")
    assert total(samples, "gatehouse_probe_results_total", code="CONNECTION_REFUSED") >= 3
    counts = check_histograms(samples, "gatehouse_request_duration_seconds")
    assert {dict(k)["listener"]: v for k, v in counts.items()} == {"web": 21, "sec": 3}
    # No backend answered the 502s.
    assert total(samples, "gatehouse_backend_responses_total") == 20
    assert total(samples, "gatehouse_backend_responses_total", code_class="5xx") == 0


def test_tls_handshake_failure_reasons(pki, backends, health_gateway):
    """gatehouse_tls_handshake_failures_total by reason: a client that closes before its
    ClientHello is "closed" (metrics.h: the client closed during the handshake); one that sends
    bytes that are not TLS is "handshake"."""
    (b,) = backends(1)

    def make(gw):
        return base_config(
            gw, pki, workers=1,
            listeners=[{"name": "sec", "address": "127.0.0.1", "port": gw.ports["sec"],
                        "protocol": "https", "certificate": "app"}],
            rules=[{"name": "r", "listener": "sec", "priority": 100, "backend-pool": "pool",
                    "backend-settings": "tls"}],
            **{"backend-pools": [{"name": "pool", "servers": [b.address]}],
               "backend-settings": [https_settings("tls", b.port)]})

    gw = health_gateway(make, ("sec",))

    def reasons():
        samples, _ = parse(scrape(gw))
        return {dict(k)["reason"]: v for k, v in
                values(samples, "gatehouse_tls_handshake_failures_total").items()}

    # The fixture's readiness check connected to the port and closed: let that be counted.
    r0 = wait_for("the readiness check's connection counted",
                  lambda: (lambda r: r if sum(r.values()) >= 1 else None)(reasons()), 3 * SLOW)
    time.sleep(0.3)
    r0 = reasons()
    # Not TLS at all: a handshake failure.
    s = socket.create_connection(("127.0.0.1", gw.port("sec")), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    r1 = wait_for("the handshake failure counted",
                  lambda: (lambda r: r if sum(r.values()) > sum(r0.values()) else None)(reasons()),
                  3 * SLOW)
    assert r1["handshake"] == r0["handshake"] + 1, (r0, r1)
    # Connect, then close without a byte: the client closed during the handshake.
    for _ in range(2):
        socket.create_connection(("127.0.0.1", gw.port("sec")), timeout=5).close()
    r2 = wait_for("the closed connections counted",
                  lambda: (lambda r: r if sum(r.values()) >= sum(r1.values()) + 2 else None)(
                      reasons()), 3 * SLOW)
    assert r2["closed"] == r1["closed"] + 2, \
        f"connections closed before the ClientHello counted as {r2} (was {r1})"
    assert r2["handshake"] == r1["handshake"], (r1, r2)
