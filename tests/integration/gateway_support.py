"""Helpers and fixtures for the gateway integration tests (test_gateway_*.py).

`gatehouse run -c FILE` is started as a real process on loopback ports chosen by the OS, with its
access log in a file; backends are nginx (one process for the whole session, one `server` block
per role, HTTPS with the test PKI) and small threaded Python servers where nginx cannot do it
(counting, sleeping, closing at chosen moments, echoing raw request headers). Clients are curl and
Python's http.client/ssl, or raw sockets for malformed requests.

Every process started here is stopped by its own PID in a fixture finalizer (and by the
session-end safety net of support.py); every wait is bounded.

Fixtures (imported into conftest.py): gw_nginx (session), gateway (factory), py_backend (factory).
"""

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

import support
from support import (
    GATEHOUSE_BIN,
    NGINX,
    SANITIZED,
    ServerProcess,
    can_connect,
    free_port,
)

# Time bounds are multiplied by this for sanitized builds (much slower).
SLOW = 4 if SANITIZED else 1
GW_READY_TIMEOUT = 10.0 * SLOW

CRASH_MARKERS = ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:",
                 "Segmentation fault", "core dumped")


# --------------------------------------------------------------------------------------------
# The gateway process


def free_ports(n, host="127.0.0.1"):
    """n distinct free ports (each from the OS)."""
    ports = []
    for _ in range(100 * n):
        p = free_port(host)
        if p not in ports:
            ports.append(p)
        if len(ports) == n:
            return ports
    raise AssertionError(f"could not find {n} distinct free ports")


class Gateway:
    """One `gatehouse run -c FILE` process.

    make_config(gw) returns the config as a dict (written as JSON, which is YAML); it may use
    gw.ports (name -> a free port chosen for this start; "admin" is always there) and
    gw.access_log (the access log file). Stopped by PID.
    """

    def __init__(self, tmp, make_config, port_names=(), name="gw", port_hosts=None, env=None):
        self.tmp = Path(tmp)
        self.make_config = make_config
        self.port_names = list(port_names)
        self.port_hosts = dict(port_hosts or {})  # name -> loopback address (default 127.0.0.1)
        self.env = env  # extra environment variables for the process
        self.name = name
        self.proc = None
        self.ports = {}
        self.config = None
        self.config_path = self.tmp / f"{name}.yaml"
        self.access_log = self.tmp / f"{name}-access.log"
        self.out_path = self.tmp / f"{name}.out"
        self.rc = None
        self.killed = False

    # -- process

    def start(self, attempts=3):
        last = ""
        for _ in range(attempts):
            names = ["admin"] + [n for n in self.port_names if n != "admin"]
            self.ports = {}
            for n in names:
                host = self.port_hosts.get(n, "127.0.0.1")
                for _ in range(100):
                    p = free_port(host)
                    if p not in self.ports.values():
                        break
                self.ports[n] = p
            self.config = self.make_config(self)
            self.config_path.write_text(json.dumps(self.config, indent=2) + "\n")
            try:
                self.access_log.unlink()
            except FileNotFoundError:
                pass
            with open(self.out_path, "wb") as out:
                self.proc = subprocess.Popen(
                    [GATEHOUSE_BIN, "run", "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=dict(os.environ, **self.env) if self.env else None,
                )
            support._LIVE.add(self)
            deadline = time.monotonic() + GW_READY_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if all(can_connect(self.port_hosts.get(n, "127.0.0.1"), self.ports[n])
                       for n in self.port_names):
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.stop()
                raise AssertionError(
                    f"gatehouse did not listen on {self.ports} within {GW_READY_TIMEOUT}s\n"
                    f"{self.output()}")
            last = self.output()
            support._LIVE.discard(self)
            if "Address already in use" not in last:
                raise AssertionError(
                    f"gatehouse run exited with status {self.proc.returncode} at start-up\n"
                    f"--- config ---\n{self.config_path.read_text()}--- output ---\n{last}")
        raise AssertionError(f"gatehouse could not bind its ports in {attempts} tries\n{last}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Waits for the process to exit; returns its status or None after timeout."""
        try:
            self.rc = self.proc.wait(timeout=timeout)
            support._LIVE.discard(self)
            return self.rc
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0 * SLOW):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        if p is not None:
            self.rc = p.returncode
        support._LIVE.discard(self)
        return self.rc

    def kill(self):
        """SIGKILL, deliberately (a test that saw the gateway hang): not reported as a crash."""
        self.killed = True
        return self.stop(signal.SIGKILL, timeout=5)

    def output(self):
        try:
            return self.out_path.read_text(errors="replace")
        except OSError:
            return ""

    def assert_no_crash(self):
        out = self.output()
        for m in CRASH_MARKERS:
            assert m not in out, f"crash marker {m!r} in the gateway's output\n{out}"
        if self.rc is not None and not self.killed:
            assert self.rc >= 0, f"the gateway was killed by signal {-self.rc}\n{out}"

    def vm_hwm_kib(self):
        """Peak resident set size (VmHWM) of the running gateway, in KiB."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
        assert m, text
        return int(m.group(1))

    def vm_rss_kib(self):
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1))

    # -- addresses

    def port(self, name):
        return self.ports[name]

    # -- the access log

    def log_records(self):
        """Every complete line of the access log, parsed (each line must be one JSON object)."""
        try:
            text = self.access_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        recs = []
        lines = text.split("\n")
        for line in lines[:-1]:  # the last piece is "" or a line still being written
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise AssertionError(f"access log line is not JSON ({e}): {line!r}") from e
            assert isinstance(rec, dict), line
            recs.append(rec)
        return recs

    def wait_log(self, pred, what="", timeout=3.0 * SLOW):
        deadline = time.monotonic() + timeout
        while True:
            for r in self.log_records():
                if pred(r):
                    return r
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        tail = "\n".join(json.dumps(r) for r in self.log_records()[-20:])
        raise AssertionError(f"no access log line {what} within {timeout}s; last lines:\n{tail}")

    def log_for(self, request_id, timeout=3.0 * SLOW):
        assert request_id, "no request id to look for"
        return self.wait_log(lambda r: r.get("request_id") == request_id,
                             f"with request_id {request_id}", timeout)


@pytest.fixture
def gateway(tmp_path):
    """Factory: gateway(make_config, port_names, name="gw") starts `gatehouse run`; stopped (by
    PID) after the test, and its output checked for sanitizer reports."""
    started = []

    def start(make_config, port_names=(), name=None, port_hosts=None, env=None):
        gw = Gateway(tmp_path, make_config, port_names, name or f"gw{len(started)}", port_hosts,
                     env)
        started.append(gw)
        return gw.start()

    try:
        yield start
    finally:
        for gw in started:
            gw.stop()
        for gw in started:
            gw.assert_no_crash()


def base_config(gw, pki, workers=None, **sections):
    """The parts every gateway config here has: admin on a free loopback port, access log file,
    listener certificates from the test PKI, trusted roots and auth certs."""
    pki = Path(pki)
    cfg = {
        "admin": {"listen": f"127.0.0.1:{gw.ports['admin']}"},
        "access-log": {"path": str(gw.access_log)},
        "certificates": {
            "app": {"pem": str(pki / "app-chain.pem"), "key": str(pki / "app.key")},
            "wildcard": {"pem": str(pki / "wildcard-chain.pem"), "key": str(pki / "wildcard.key")},
            "legacy": {"pem": str(pki / "legacy-chain.pem"), "key": str(pki / "legacy.key")},
            "app-pfx": {"pfx": str(pki / "app.pfx"), "password-file": str(pki / "password.txt")},
        },
        "trusted-roots": {"root": str(pki / "root.pem")},
        "auth-certs": {"app-leaf": str(pki / "app.pem")},
    }
    if workers is not None:
        cfg["workers"] = workers
    cfg.update(sections)
    return cfg


def simple_config(gw, pki, servers, settings, listeners=None, workers=None, **extra):
    """One pool ("pool": servers), one backend settings ("settings", the dict given plus its
    name), and listeners (default: "http" and "https" basic listeners on the ports of those
    names) each with a rule to that pool."""
    if listeners is None:
        listeners = []
        if "http" in gw.ports:
            listeners.append({"name": "http", "address": "127.0.0.1", "port": gw.ports["http"],
                              "protocol": "http"})
        if "https" in gw.ports:
            listeners.append({"name": "https", "address": "127.0.0.1", "port": gw.ports["https"],
                              "protocol": "https", "certificate": "app"})
    rules = [{"name": f"r-{l['name']}", "listener": l["name"], "priority": 100 + i,
              "backend-pool": "pool", "backend-settings": "settings"}
             for i, l in enumerate(listeners)]
    return base_config(
        gw, pki, workers=workers,
        listeners=listeners,
        **{"backend-pools": [{"name": "pool", "servers": list(servers)}],
           "backend-settings": [dict({"name": "settings"}, **settings)],
           "rules": rules},
        **extra,
    )


def https_settings(port, host_name="app.example.com", timeout="20s", **more):
    s = {"protocol": "https", "port": port, "request-timeout": timeout,
         "trusted-roots": ["root"]}
    if host_name:
        s["host-name"] = host_name
    s.update(more)
    return s


def http_settings(port, timeout="20s", **more):
    s = {"protocol": "http", "port": port, "request-timeout": timeout}
    s.update(more)
    return s


# --------------------------------------------------------------------------------------------
# Clients


def client_ctx(pki=None, verify=True):
    """A TLS client context: verifying against the test root, or not verifying at all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(str(Path(pki) / "root.pem"))
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SNIHTTPSConnection(http.client.HTTPConnection):
    """http.client over TLS to 127.0.0.1 with a chosen SNI (None: no SNI)."""

    default_port = 443

    def __init__(self, host, port, context, sni, timeout):
        super().__init__(host, port, timeout=timeout)
        self._ctx = context
        self._sni = sni

    def connect(self):
        super().connect()
        self.sock = self._ctx.wrap_socket(self.sock, server_hostname=self._sni)


def connection(port, ctx=None, sni=None, timeout=10.0 * SLOW):
    """http.client connection to the gateway on 127.0.0.1:port (TLS when ctx is given)."""
    if ctx is None:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    return SNIHTTPSConnection("127.0.0.1", port, ctx, sni, timeout)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_names(self):
        return {k.lower() for k, _ in self.headers}

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Resp {self.status} {self.headers} {self.body[:300]!r}>"


def request(conn, method="GET", path="/", host=None, headers=None, body=None):
    """One request on an http.client connection; the whole response."""
    h = dict(headers or {})
    if host is not None:
        h["Host"] = host
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    return Resp(r.status, r.getheaders(), data)


def get(port, path="/", host=None, ctx=None, sni=None, headers=None, method="GET", body=None,
        timeout=10.0 * SLOW):
    """One request on a new connection."""
    conn = connection(port, ctx, sni, timeout)
    try:
        return request(conn, method, path, host, headers, body)
    finally:
        conn.close()


def _complete_response(got):
    """True when got holds a whole response with a Content-Length body."""
    head, sep, body = bytes(got).partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    return bool(m) and len(body) >= int(m.group(1))


def raw_exchange(port, data, ctx=None, sni=None, timeout=5.0 * SLOW, close_wait=1.0 * SLOW):
    """Sends raw bytes on a new connection and reads until the gateway closes (or timeout; once
    a whole response has arrived, at most close_wait more seconds).

    Returns (response bytes, client port as the gateway saw it, closed: bool)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    local_port = s.getsockname()[1]
    if ctx is not None:
        s = ctx.wrap_socket(s, server_hostname=sni)
    got = bytearray()
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        complete = False
        while time.monotonic() < deadline:
            if not complete and _complete_response(got):
                complete = True
                deadline = min(deadline, time.monotonic() + close_wait)
                s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError, OSError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
    finally:
        s.close()
    return bytes(got), local_port, closed


def status_of(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    return int(m.group(1)) if m else None


def raw_headers(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    out = []
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        out.append((k.strip(), v.strip()))
    return out


def curl(*args, timeout=30.0 * SLOW, stdin=None):
    """Runs curl; returns CompletedProcess (text output)."""
    argv = ["curl", "-sS", "--max-time", str(int(timeout)), *[str(a) for a in args]]
    return subprocess.run(argv, capture_output=True, timeout=timeout + 10, stdin=stdin)


def peer_cert_cn(port, sni, pki=None):
    """Connects with Python ssl (no verification) and returns the peer certificate's subject
    CN (or its O/OU when there is no CN) and the negotiated TLS version."""
    ctx = client_ctx(verify=False)
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            der = t.getpeercert(binary_form=True)
            version = t.version()
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject",
                          "-nameopt", "RFC2253"], input=der, capture_output=True, timeout=10,
                         check=True).stdout.decode()
    m = re.search(r"CN=([^,\n]+)", out)
    return (m.group(1) if m else out.strip()), version


# --------------------------------------------------------------------------------------------
# nginx backends (one process, one server block per role)

GW_NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    client_max_body_size 0;
{servers}
}}
"""

GW_NGINX_SERVER = """\
    server {{
        listen 127.0.0.1:{port}{ssl};
        {certs}
        root {tmp}/www;
        {extra}
        location = /conn {{ return 200 "site={name} conn=$connection req=$connection_requests\\n"; }}
        location = /tls {{ return 200 "site={name} conn=$connection resumed=$ssl_session_reused\\n"; }}
        location = /headers {{
            return 200 "site={name}\\nhost=$http_host\\nxff=$http_x_forwarded_for\\nproto=$http_x_forwarded_proto\\nport=$http_x_forwarded_port\\nrid=$http_x_request_id\\norig=$http_x_original_host\\nsni=$ssl_server_name\\n";
        }}
        location = /big.bin {{ }}
        location / {{ return 200 "site={name} host=$http_host orig=$http_x_original_host uri=$request_uri conn=$connection\\n"; }}
    }}
"""

# role -> (certificate chain file, key file[, extra directives]) in the PKI; None = plain HTTP
GW_NGINX_ROLES = {
    "a": ("app-chain.pem", "app.key"),            # site A of the multi-site tests
    "w": ("app-chain.pem", "app.key"),            # site W (wildcard listener)
    "b": ("app-chain.pem", "app.key"),            # site B (basic listener)
    "echo": ("app-chain.pem", "app.key"),         # healthy, full chain
    "leaf-only": ("app.pem", "app.key"),          # CERT_INTERMEDIATE_MISSING
    "other-root": ("other-app-chain.pem", "other-app.key"),  # CERT_ROOT_NOT_TRUSTED
    "mismatch": ("san-only-chain.pem", "san-only.key"),      # CERT_NAME_MISMATCH
    "expired": ("expired-chain.pem", "expired.key"),         # CERT_EXPIRED
    "plain": None,                                # plain HTTP
    # closes every connection after one response (keepalive_timeout 0): each request through
    # the gateway needs a new backend connection, which may resume the TLS session
    "no-keepalive": ("app-chain.pem", "app.key", "keepalive_timeout 0; ssl_session_cache shared:GWSSL:1m;"),
}


class GwNginx:
    def __init__(self, tmp, pki):
        self.tmp = Path(tmp)
        self.pki = Path(pki)
        self.srv = None
        self.ports = {}

    @property
    def www(self):
        return self.tmp / "www"

    def start(self):
        self.www.mkdir(parents=True, exist_ok=True)
        (self.www / "index.html").write_text("gatehouse gateway test backend\n")
        last = ""
        for _ in range(3):
            roles = list(GW_NGINX_ROLES)
            self.ports = dict(zip(roles, free_ports(len(roles))))
            blocks = []
            for role, certs in GW_NGINX_ROLES.items():
                if certs:
                    c = (f"ssl_certificate {self.pki / certs[0]};\n"
                         f"        ssl_certificate_key {self.pki / certs[1]};")
                    extra = certs[2] if len(certs) > 2 else ""
                    blocks.append(GW_NGINX_SERVER.format(port=self.ports[role], ssl=" ssl",
                                                         certs=c, tmp=self.tmp, name=role,
                                                         extra=extra))
                else:
                    blocks.append(GW_NGINX_SERVER.format(port=self.ports[role], ssl="", certs="",
                                                         tmp=self.tmp, name=role, extra=""))
            conf = self.tmp / "nginx.conf"
            conf.write_text(GW_NGINX_CONF.format(tmp=self.tmp, servers="".join(blocks)))
            argv = [NGINX, "-p", str(self.tmp), "-c", str(conf), "-e",
                    str(self.tmp / "error.log")]
            first = roles[0]
            srv = ServerProcess("nginx", argv, "127.0.0.1", self.ports[first],
                                self.tmp / "nginx.out")
            if srv.start():
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not all(
                        can_connect("127.0.0.1", p) for p in self.ports.values()):
                    time.sleep(0.02)
                self.srv = srv
                return self
            try:
                last = (self.tmp / "error.log").read_text()
            except OSError:
                pass
        raise AssertionError(f"nginx failed to start\n{last}")

    @property
    def pid(self):
        return self.srv.proc.pid

    def port(self, role):
        return self.ports[role]

    def stop(self):
        if self.srv:
            self.srv.stop()


@pytest.fixture(scope="session")
def gw_nginx(pki, tmp_path_factory):
    """nginx with one server per role of GW_NGINX_ROLES (HTTPS with the certificate of the role,
    or plain HTTP), each answering /conn, /headers, /big.bin and / (see GW_NGINX_SERVER)."""
    srv = GwNginx(tmp_path_factory.mktemp("gw-nginx"), pki)
    try:
        yield srv.start()
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------------
# Python backends


def http_response(status=200, body=b"", headers=(), keep_alive=True, reason=None):
    reasons = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found",
               500: "Internal Server Error"}
    if isinstance(body, str):
        body = body.encode()
    lines = [f"HTTP/1.1 {status} {reason or reasons.get(status, 'Status')}"]
    names = {k.lower() for k, _ in headers}
    lines += [f"{k}: {v}" for k, v in headers]
    if "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    if "connection" not in names:
        lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Reader:
    """Buffered reads of HTTP/1.1 requests from a (TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.scratch = bytearray(1 << 20)

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError
        self.buf += data

    def read_head(self, limit=1 << 20):
        """(method, target, version, [(name, value)]) or None on a clean EOF before a request."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if len(self.buf) > limit:
                raise ValueError("request head too large")
            try:
                self._fill()
            except EOFError:
                if not self.buf:
                    return None
                raise
        head = bytes(self.buf[:i])
        del self.buf[:i + 4]
        lines = head.split(b"\r\n")
        method, target, version = lines[0].decode("latin-1").split(" ", 2)
        headers = []
        for line in lines[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k, v.strip()))
        return method, target, version, headers

    def _readline(self, limit=65536):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self._fill()

    def _read_exact(self, n, update):
        take = min(n, len(self.buf))
        if take:
            with memoryview(self.buf) as mv, mv[:take] as part:
                update(part)
            del self.buf[:take]
        n -= take
        with memoryview(self.scratch) as mv:
            while n > 0:
                k = self.sock.recv_into(mv, min(n, len(mv)))
                if k == 0:
                    raise EOFError
                with mv[:k] as part:
                    update(part)
                n -= k

    def read_body(self, headers, update):
        te = [v.lower() for k, v in headers if k.lower() == "transfer-encoding"]
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if te:
            assert te[-1].split(",")[-1].strip() == "chunked", te
            while True:
                line = self._readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._readline() != b"":
                        pass
                    return
                self._read_exact(size, update)
                if self._readline() != b"":
                    raise ValueError("chunk data not followed by CRLF")
        elif cl:
            self._read_exact(int(cl[0]), update)


class PyBackend:
    """A threaded HTTP/1.1 backend on 127.0.0.1 (TLS when tls=(chain, key)).

    For each request it reads the head and the whole body (hashed, counted, the first 64 KiB
    kept), records it in self.requests, then calls handler(backend, rec) which returns the
    response bytes, or None to close the connection without answering. rec has: conn (the
    connection's number, from 0), index (the request's number on its connection, from 0),
    method, target, version, headers ([(name, value)] as received), body_len, sha256, body,
    tls_resumed (TLS: whether the client resumed a session; None without TLS), probe (the
    request is one of the gateway's health probes, by its User-Agent).

    idle_close: seconds a kept-alive connection may stay idle before the backend closes it.
    """

    def __init__(self, handler=None, tls=None, idle_close=None, name="py"):
        self.name = name
        self.handler = handler or echo_handler
        self.idle_close = idle_close
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.n_connections = 0
        self.conns = []
        self.threads = []
        self.stopping = threading.Event()
        self.errors = []
        self.heads_seen = threading.Event()  # set whenever a request head arrives
        self.lock = threading.Lock()

    def start(self):
        self.sock.settimeout(0.1)
        t = threading.Thread(target=self._accept_loop, daemon=True)
        self.threads.append(t)
        t.start()
        return self

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                cid = self.n_connections
                self.n_connections += 1
                self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, cid), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn, cid):
        sock = conn
        try:
            conn.settimeout(30)
            if self.ctx:
                sock = self.ctx.wrap_socket(conn, server_side=True)
                with self.lock:
                    self.conns.append(sock)
            rd = _Reader(sock)
            index = 0
            while not self.stopping.is_set():
                if index > 0 and self.idle_close is not None:
                    sock.settimeout(self.idle_close)
                else:
                    sock.settimeout(30)
                try:
                    head = rd.read_head()
                except socket.timeout:
                    if index > 0 and self.idle_close is not None and not rd.buf:
                        return  # idle too long: close quietly (no response, no data)
                    raise
                if head is None:
                    return
                method, target, version, headers = head
                self.heads_seen.set()
                sock.settimeout(60 * SLOW)
                h = hashlib.sha256()
                kept = bytearray()
                count = [0]

                def update(part, h=h, kept=kept, count=count):
                    h.update(part)
                    count[0] += len(part)
                    if len(kept) < 65536:
                        kept.extend(part[:65536 - len(kept)])

                ua = next((v for k, v in headers if k.lower() == "user-agent"), "")
                rec = {"conn": cid, "index": index, "method": method, "target": target,
                       "version": version, "headers": headers, "time": time.monotonic(),
                       "tls_resumed": sock.session_reused if self.ctx else None,
                       "probe": ua.startswith("Gatehouse-") and "Probe" in ua}
                rd.read_body(headers, update)
                rec.update(body_len=count[0], sha256=h.hexdigest(), body=bytes(kept))
                with self.lock:
                    self.requests.append(rec)
                resp = self.handler(self, rec)
                if resp is None:
                    return
                sock.sendall(resp)
                if b"\r\nConnection: close\r\n" in resp.split(b"\r\n\r\n", 1)[0] + b"\r\n":
                    return
                index += 1
        except (EOFError, ConnectionError, BrokenPipeError):
            pass
        except (OSError, ssl.SSLError, ValueError) as e:
            if not self.stopping.is_set():
                self.errors.append(repr(e))
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def requests_for(self, target=None, method=None, probes=False):
        """Requests received (by default not counting the gateway's health probes)."""
        with self.lock:
            return [r for r in self.requests if (target is None or r["target"] == target)
                    and (method is None or r["method"] == method)
                    and (probes or not r["probe"])]

    def stop(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=3)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass


def echo_handler(backend, rec):
    """Answers with a JSON description of the request as received."""
    body = json.dumps({
        "backend": backend.name, "conn": rec["conn"], "index": rec["index"],
        "method": rec["method"], "target": rec["target"], "version": rec["version"],
        "headers": rec["headers"], "body_len": rec["body_len"], "sha256": rec["sha256"],
    }).encode()
    return http_response(200, body, [("Content-Type", "application/json")])


@pytest.fixture
def py_backend(pki):
    """Factory: py_backend(handler=None, tls=False|True|(chain, key), idle_close=None, name)
    starts a PyBackend (tls=True: the app certificate + intermediate); stopped after the test."""
    started = []

    def start(handler=None, tls=False, idle_close=None, name="py"):
        if tls is True:
            tls = (Path(pki) / "app-chain.pem", Path(pki) / "app.key")
        b = PyBackend(handler, tls or None, idle_close, name).start()
        started.append(b)
        return b

    try:
        yield start
    finally:
        for b in started:
            b.stop()
