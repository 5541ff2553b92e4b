"""Helpers for the health-probe integration tests (test_health_*.py).

Backends are real HTTPS servers: one nginx process per backend (daemon off, master_process off:
a single process, stopped by its PID), each with its own access log in JSON so that the tests can
count, at the backend, the requests it served and tell the gateway's probes (User-Agent
Gatehouse-HealthProbe/...) from traffic, and see the Host header and SNI each request came with.
A backend can be stopped, and restarted on the same port with another certificate chain file.

The gateway is gateway_support.Gateway (`gatehouse run`, stopped by PID); the admin API is read
over plain HTTP on loopback; `gatehouse health` is run as a subprocess.
"""

import http.client
import json
import subprocess
import time
from pathlib import Path

import pytest

import support
from gateway_support import SLOW, Gateway, base_config
from support import GATEHOUSE_BIN, NGINX, ServerProcess, can_connect, free_port

PROBE_UA = "Gatehouse-HealthProbe"

BACKEND_NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format h4 escape=json '{{"msec":"$msec","ua":"$http_user_agent","host":"$http_host",'
        '"sni":"$ssl_server_name","uri":"$request_uri","status":"$status",'
        '"rid":"$http_x_request_id","conn":"$connection"}}';
    access_log {tmp}/access.log h4;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        location = /health {{ return 200 "status: healthy backend={name}\\n"; }}
        location = /missing {{ return 404 "not here backend={name}\\n"; }}
        location = /teapot {{ return 418 "teapot backend={name}\\n"; }}
        location / {{ return 200 "backend={name}\\n"; }}
    }}
}}
"""


class Backend:
    """One nginx HTTPS backend named `name` on a fixed loopback port; restartable."""

    def __init__(self, tmp, name, chain, key):
        self.tmp = Path(tmp) / name
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.chain = Path(chain)
        self.key = Path(key)
        self.port = None
        self.srv = None
        self.generation = 0

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    @property
    def access_log(self):
        return self.tmp / "access.log"

    def _start_on(self, port):
        conf = self.tmp / f"nginx{self.generation}.conf"
        conf.write_text(BACKEND_NGINX_CONF.format(tmp=self.tmp, port=port, chain=self.chain,
                                                  key=self.key, name=self.name))
        argv = [NGINX, "-p", str(self.tmp), "-c", str(conf), "-e", str(self.tmp / "error.log")]
        srv = ServerProcess(f"nginx[{self.name}]", argv, "127.0.0.1", port,
                            self.tmp / "nginx.out")
        ok = srv.start()
        return srv if ok else None

    def start(self, chain=None, key=None):
        """Starts (first time: on a free port; later: on the same port) with chain/key."""
        if chain is not None:
            self.chain = Path(chain)
        if key is not None:
            self.key = Path(key)
        self.generation += 1
        if self.port is None:
            for _ in range(3):
                port = free_port()
                srv = self._start_on(port)
                if srv:
                    self.port, self.srv = port, srv
                    return self
            raise AssertionError(f"nginx[{self.name}] failed to start\n{self.error_log()}")
        deadline = time.monotonic() + 5
        while True:
            srv = self._start_on(self.port)
            if srv:
                self.srv = srv
                return self
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"nginx[{self.name}] failed to restart on {self.port}\n{self.error_log()}")
            time.sleep(0.1)

    def stop(self):
        if self.srv:
            self.srv.stop()
            self.srv = None
        # Bounded: the port must refuse connections before the caller goes on.
        deadline = time.monotonic() + 3
        while self.port and can_connect("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, chain=None, key=None):
        self.stop()
        return self.start(chain, key)

    def running(self):
        return self.srv is not None and self.srv.proc.poll() is None

    def error_log(self):
        try:
            return (self.tmp / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def records(self):
        """Every complete line of the access log, parsed; each gets "probe": bool."""
        try:
            text = self.access_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.split("\n")[:-1]:
            if not line.strip():
                continue
            rec = json.loads(line)
            rec["probe"] = rec.get("ua", "").startswith(PROBE_UA)
            rec["time"] = float(rec["msec"])
            out.append(rec)
        return out

    def mark(self):
        """A position in the access log: pass it to traffic()/probes() for what came after."""
        return len(self.records())

    def traffic(self, since=0):
        """Requests other than the gateway's probes, logged after the mark `since`."""
        return [r for r in self.records()[since:] if not r["probe"]]

    def probes(self, since=0):
        return [r for r in self.records()[since:] if r["probe"]]


@pytest.fixture
def backends(tmp_path, pki):
    """Factory: backends(n, chain="app-chain.pem", key="app.key") -> [Backend] named b1..bn,
    started; all stopped by PID after the test."""
    made = []

    def make(n=3, chain="app-chain.pem", key="app.key", prefix="b"):
        out = []
        for i in range(n):
            b = Backend(tmp_path / "backends", f"{prefix}{len(made) + 1}", Path(pki) / chain,
                        Path(pki) / key)
            made.append(b)
            out.append(b.start())
        return out

    try:
        yield make
    finally:
        for b in made:
            b.stop()


# --------------------------------------------------------------------------------------------
# Gateway configs


def health_config(gw, pki, pools, listeners=None, probes=(), workers=2):
    """pools: [(pool name, [server addresses], settings dict with "name", rule name)]; each
    pool gets a plain-HTTP listener on gw.ports[rule name] (unless listeners are given)."""
    ls, rules, settings, bp = [], [], [], []
    for i, (pool, servers, s, rule) in enumerate(pools):
        bp.append({"name": pool, "servers": list(servers)})
        if not any(x["name"] == s["name"] for x in settings):
            settings.append(s)
        if listeners is None:
            ls.append({"name": rule, "address": "127.0.0.1", "port": gw.ports[rule],
                       "protocol": "http"})
        rules.append({"name": rule, "listener": rule, "priority": 100 + i,
                      "backend-pool": pool, "backend-settings": s["name"]})
    cfg = base_config(gw, pki, workers=workers, listeners=listeners or ls,
                      **{"backend-pools": bp, "backend-settings": settings, "rules": rules})
    if probes:
        cfg["probes"] = list(probes)
    return cfg


def fast_probe(name="fast", interval="1s", threshold=2, path="/health", body="healthy",
               status=("200-399",), **more):
    p = {"name": name, "protocol": "https", "pick-host-name-from-backend-settings": True,
         "path": path, "interval": interval, "timeout": "1s", "unhealthy-threshold": threshold,
         "match": {"status": list(status)}}
    if body is not None:
        p["match"]["body"] = body
    p.update(more)
    return p


def https_settings(name, port, probe=None, host_name="app.example.com", timeout="20s", **more):
    s = {"name": name, "protocol": "https", "port": port, "request-timeout": timeout,
         "trusted-roots": ["root"]}
    if host_name:
        s["host-name"] = host_name
    if probe:
        s["probe"] = probe
    s.update(more)
    return s


@pytest.fixture
def health_gateway(tmp_path):
    """Factory: health_gateway(make_config, port_names) -> a started Gateway; stopped by PID
    after the test, its output checked for crash markers."""
    started = []

    def start(make_config, port_names=("web",), name=None):
        # Ready means the admin listener too (it binds on its own thread).
        names = ["admin"] + [n for n in port_names if n != "admin"]
        gw = Gateway(tmp_path, make_config, names, name or f"hgw{len(started)}")
        started.append(gw)
        return gw.start()

    try:
        yield start
    finally:
        for gw in started:
            gw.stop()
        for gw in started:
            gw.assert_no_crash()


# --------------------------------------------------------------------------------------------
# The admin API


class AdminResp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"admin answer is not JSON ({e}): {self.body[:500]!r}") from e

    def __repr__(self):
        return f"<AdminResp {self.status} {self.body[:400]!r}>"


def admin_get(gw, target, method="GET", timeout=5.0 * SLOW):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port("admin"), timeout=timeout)
    try:
        conn.request(method, target)
        r = conn.getresponse()
        return AdminResp(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def backend_health(gw, server=None):
    target = "/backend-health" + (f"?server={server}" if server else "")
    r = admin_get(gw, target)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json"), r.headers
    return r.json


def servers_of(doc):
    """{address: server object} over every pool and settings of a /backend-health document."""
    out = {}
    for pool in doc["pools"]:
        for s in pool["settings"]:
            for srv in s["servers"]:
                out[srv["address"]] = srv
    return out


def server_state(gw, address):
    s = servers_of(backend_health(gw)).get(address)
    assert s is not None, f"{address} missing from /backend-health"
    return s


def wait_for(what, fn, timeout, interval=0.05):
    """Calls fn() until it returns a truthy value (returned); fails after timeout seconds with
    the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def wait_health(gw, address, health, timeout=8.0 * SLOW, code=None):
    """Waits until the server's health (and code, when given) is as expected; returns it."""
    state = {}

    def check():
        s = server_state(gw, address)
        state["last"] = {k: s.get(k) for k in ("health", "code", "consecutive_failures",
                                               "last_probe", "healthProbeLog")}
        return s if s["health"] == health and (code is None or s.get("code") == code) else None

    try:
        return wait_for(f"{address} to be {health}" + (f" with {code}" if code else ""), check,
                        timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast state of {address}: {state.get('last')}") from None


def run_health(gw, *args, admin=None, timeout=20):
    """`gatehouse health --admin URL ARGS...` -> CompletedProcess (text)."""
    url = admin or f"http://127.0.0.1:{gw.port('admin')}"
    argv = [GATEHOUSE_BIN, "health", "--admin", url, *[str(a) for a in args]]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    for m in ("AddressSanitizer", "runtime error:", "Segmentation fault"):
        assert m not in p.stderr, p.stderr
    assert p.returncode >= 0, f"gatehouse health killed by signal {-p.returncode}"
    return p


def table_rows(text):
    """The rows of `gatehouse health`'s table: [{pool, settings, server, health, code, cause}]
    (header line checked)."""
    lines = [l for l in text.splitlines() if l.strip()]
    assert lines, "empty table"
    head = lines[0].split()
    assert head[:5] == ["POOL", "SETTINGS", "SERVER", "HEALTH", "CODE"], lines[0]
    rows = []
    for line in lines[1:]:
        parts = line.split(None, 5)
        assert len(parts) >= 5, f"short table row: {line!r}"
        rows.append({"pool": parts[0], "settings": parts[1], "server": parts[2],
                     "health": parts[3], "code": parts[4],
                     "cause": parts[5] if len(parts) > 5 else ""})
    return rows


# --------------------------------------------------------------------------------------------
# Clients of the data path


def get(gw, listener="web", path="/", host="app.example.com", timeout=30.0 * SLOW):
    """One GET through the gateway on a new connection: (status, headers dict lower-case, body,
    seconds)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port(listener), timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "Connection": "close"})
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, time.monotonic() - t0
    finally:
        conn.close()


def backend_of(body):
    """'backend=b2' in the nginx answer -> 'b2'."""
    text = body.decode("utf-8", "replace")
    for tok in text.split():
        if tok.startswith("backend="):
            return tok.split("=", 1)[1]
    return None


# --------------------------------------------------------------------------------------------
# Certificates made on the fly (signed by the test PKI's intermediate)


def make_leaf(pki, tmp, name, cn="app.example.com", san="DNS:app.example.com,IP:127.0.0.1",
              days=400):
    """A new leaf signed by the PKI's intermediate: (leaf.pem, key, leaf+intermediate chain)."""
    pki, tmp = Path(pki), Path(tmp)
    key, csr, pem = tmp / f"{name}.key", tmp / f"{name}.csr", tmp / f"{name}.pem"
    ext = tmp / f"{name}.ext"
    ext.write_text(f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   f"extendedKeyUsage=serverAuth\nsubjectAltName={san}\n")
    run = lambda *a: subprocess.run(  # noqa: E731
        [support.OPENSSL, *a], capture_output=True, text=True, timeout=30, check=True)
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/O=Gatehouse Test/CN={cn}")
    run("x509", "-req", "-in", str(csr), "-CA", str(pki / "inter.pem"), "-CAkey",
        str(pki / "inter.key"), "-set_serial", str(int(time.time() * 1000) % 10**12),
        "-days", str(days), "-out", str(pem), "-extfile", str(ext))
    chain = tmp / f"{name}-chain.pem"
    chain.write_text(pem.read_text() + (pki / "inter.pem").read_text())
    return pem, key, chain
