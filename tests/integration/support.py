"""Helpers for the Gatehouse integration tests: running the real binary, real loopback servers
(openssl s_server, nginx, small Python servers) and assertions on the probe's JSON contract.

Every server here listens on a loopback address only, is bounded in time, and is stopped by its
own PID (or its own socket) by whoever started it.
"""

import base64
import hashlib
import ipaddress
import json
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GATEHOUSE_BIN = os.environ.get("GATEHOUSE_BIN") or str(REPO / "build" / "gatehouse")
SANITIZED = os.environ.get("GATEHOUSE_SAN", "0") not in ("", "0")
OPENSSL = os.environ.get("OPENSSL", "openssl")
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")

# Codes in precedence order (DESIGN.md, "Diagnosis contract").
PRECEDENCE = [
    "DNS_RESOLUTION_FAILED",
    "CONNECTION_REFUSED",
    "CONNECTION_TIMEOUT",
    "TLS_HANDSHAKE_FAILED",
    "CERT_LEAF_NOT_FIRST",
    "CERT_NOT_ALLOWLISTED",
    "CERT_INTERMEDIATE_MISSING",
    "CERT_ROOT_NOT_TRUSTED",
    "CERT_NOT_WELL_KNOWN",
    "CERT_EXPIRED",
    "CERT_NOT_YET_VALID",
    "CERT_NAME_MISMATCH",
    "RESPONSE_TIMEOUT",
    "HTTP_STATUS_MISMATCH",
    "HTTP_BODY_MISMATCH",
]

# Bound on any single run of the binary; no probe in these tests should come anywhere near it.
RUN_TIMEOUT = 30 if not SANITIZED else 90
READY_TIMEOUT = 5.0


# --------------------------------------------------------------------------------------------
# Running the binary


class Result:
    """One run of the gatehouse binary."""

    def __init__(self, argv, rc, stdout, stderr, elapsed, want_json):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self._json = None
        self._json_error = None
        if want_json and rc in (0, 1):
            try:
                self._json = json.loads(stdout)
            except ValueError as e:
                self._json_error = str(e)

    @property
    def json(self):
        assert self._json is not None, f"stdout is not one JSON object ({self._json_error})\n{self}"
        assert isinstance(self._json, dict), f"JSON output is not an object\n{self}"
        return self._json

    def __str__(self):
        return (
            f"$ {shlex.join(self.argv)}\n"
            f"exit status: {self.rc} ({self.elapsed:.3f}s)\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}\n--------------"
        )

    __repr__ = __str__


def run_gatehouse(*args, timeout=RUN_TIMEOUT, want_json=False, env=None):
    argv = [GATEHOUSE_BIN, *[str(a) for a in args]]
    start = time.monotonic()
    try:
        p = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"gatehouse did not finish within {timeout}s: {shlex.join(argv)}") from e
    elapsed = time.monotonic() - start
    res = Result(
        argv,
        p.returncode,
        p.stdout.decode("utf-8", "replace"),
        p.stderr.decode("utf-8", "replace"),
        elapsed,
        want_json,
    )
    assert_no_crash(res)
    return res


def probe(url, *args, json_out=True, timeout=RUN_TIMEOUT):
    """gatehouse probe URL ARGS... [--json]"""
    extra = ["--json"] if json_out else []
    return run_gatehouse("probe", url, *args, *extra, timeout=timeout, want_json=json_out)


def assert_no_crash(res):
    assert res.rc >= 0, f"gatehouse was killed by signal {-res.rc}\n{res}"
    assert res.rc in (0, 1, 2), f"unexpected exit status {res.rc}\n{res}"
    for marker in ("Traceback (most recent call last)", "AddressSanitizer", "LeakSanitizer",
                   "runtime error:", "Segmentation fault", "core dumped"):
        assert marker not in res.stderr, f"crash marker {marker!r} on stderr\n{res}"
        assert marker not in res.stdout, f"crash marker {marker!r} on stdout\n{res}"


def finding_codes(j):
    return [f["code"] for f in j["findings"]]


def expect(res, code):
    """Asserts the verdict: code, health, exit status, and that the findings are consistent."""
    j = res.json
    assert j.get("code") == code, f"expected code {code}, got {j.get('code')}\n{res}"
    assert isinstance(j["findings"], list), res
    if code == "OK":
        assert j["health"] == "Healthy", res
        assert res.rc == 0, res
        assert j["findings"] == [], res
    else:
        assert j["health"] == "Unhealthy", res
        assert res.rc == 1, res
        codes = finding_codes(j)
        assert code in codes, f"{code} missing from findings {codes}\n{res}"
        for c in codes:
            assert c in PRECEDENCE, f"unknown finding code {c}\n{res}"
        assert code == min(codes, key=PRECEDENCE.index), \
            f"code is not the first finding by precedence\n{res}"
        for f in j["findings"]:
            assert isinstance(f.get("message"), str) and f["message"].strip(), res
            assert isinstance(f.get("remedy"), str) and f["remedy"].strip(), res
        assert isinstance(j["message"], str) and j["message"].strip(), res
        assert isinstance(j["remedy"], str) and j["remedy"].strip(), res
    return j


def finding(j, code):
    for f in j["findings"]:
        if f["code"] == code:
            return f
    raise AssertionError(f"no finding {code} in {finding_codes(j)}")


def text_of(j):
    """message + remedy of the verdict, for key-word checks."""
    return f"{j.get('message', '')}\n{j.get('remedy', '')}"


# --------------------------------------------------------------------------------------------
# Certificates


def pem_blocks(path):
    text = Path(path).read_text()
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)


def cert_der(path, index=0):
    block = pem_blocks(path)[index]
    body = "".join(block.splitlines()[1:-1])
    return base64.b64decode(body)


def cert_sha256(path, index=0):
    return hashlib.sha256(cert_der(path, index)).hexdigest()


def norm_fp(value):
    assert isinstance(value, str), value
    return value.replace(":", "").lower()


def cert_dates(path):
    """(not_before, not_after) as RFC 3339 UTC strings, read with the openssl CLI."""
    out = subprocess.run(
        [OPENSSL, "x509", "-in", str(path), "-noout", "-startdate", "-enddate", "-dateopt",
         "iso_8601"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout
    vals = dict(line.split("=", 1) for line in out.strip().splitlines())
    conv = lambda s: s.strip().replace(" ", "T").rstrip("Z") + "Z"  # noqa: E731
    return conv(vals["notBefore"]), conv(vals["notAfter"])


def norm_san(s):
    """'IP:0:0:0:0:0:0:0:1' and 'IP:::1' compare equal; DNS names compare case-insensitively."""
    kind, _, val = s.partition(":")
    if kind == "IP":
        return ("IP", ipaddress.ip_address(val).compressed)
    return (kind, val.lower())


# --------------------------------------------------------------------------------------------
# Ports and readiness


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def can_connect(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def have_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Subprocess servers


_LIVE = set()  # every server process started and not yet stopped (safety net at session end)


class ServerProcess:
    """A server subprocess listening on host:port; stopped by its PID."""

    def __init__(self, name, argv, host, port, log_path, cwd=None):
        self.name = name
        self.argv = argv
        self.host = host
        self.port = port
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.proc = None

    @property
    def address(self):
        return hostport(self.host, self.port)

    def url(self, path="/", host=None):
        return f"https://{hostport(host or self.host, self.port)}{path}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.cwd,
            )
        _LIVE.add(self)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                return False
            if can_connect(self.host, self.port):
                return True
            time.sleep(0.02)
        self.stop()
        raise AssertionError(
            f"{self.name} did not listen on {self.address} within {READY_TIMEOUT}s\n"
            f"$ {shlex.join(self.argv)}\n{self.log()}"
        )

    def stop(self):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=3)
        _LIVE.discard(self)


def start_server(name, make_argv, host, log_path, cwd=None, attempts=3):
    """Starts make_argv(port) on a free port, retrying when the port was taken meanwhile."""
    last = None
    for _ in range(attempts):
        port = free_port(host)
        srv = ServerProcess(name, make_argv(port), host, port, log_path, cwd)
        if srv.start():
            return srv
        last = srv
    raise AssertionError(f"{name} failed to start\n$ {shlex.join(last.argv)}\n{last.log()}")


def stop_all_live():
    for srv in list(_LIVE):
        srv.stop()


def s_server_argv(port, host, cert, key, chain=None, sni_name=None, cert2=None, key2=None,
                  ca_file=None, verify_ca=None, extra=()):
    """openssl s_server answering GET with its status page (-www).

    chain: extra certificates sent after cert, exactly as given (-cert_chain).
    sni_name/cert2/key2: the certificate served when the client sends that SNI.
    ca_file: store used to build the chains automatically (both certificates).
    verify_ca: require a client certificate issued by this CA (-Verify 1).
    """
    argv = [OPENSSL, "s_server", "-accept", hostport(host, port), "-www",
            "-cert", str(cert), "-key", str(key),
            "-no-CAfile", "-no-CApath", "-no-CAstore"]
    if ":" in host:
        argv.append("-6")
    if chain:
        argv += ["-cert_chain", str(chain)]
    if sni_name:
        argv += ["-servername", sni_name, "-cert2", str(cert2), "-key2", str(key2)]
    if ca_file and verify_ca:
        raise ValueError("ca_file and verify_ca both set the server's CA store")
    if ca_file:
        argv += ["-CAfile", str(ca_file)]
    if verify_ca:
        argv += ["-Verify", "1", "-CAfile", str(verify_ca)]
    argv += list(extra)
    return argv


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    server {{
        listen {host}:{tls_port} ssl;
        server_name app.example.com;
        ssl_certificate {pki}/app-chain.pem;
        ssl_certificate_key {pki}/app.key;
        root {tmp}/www;
        location = /health {{ return 200 "status: healthy\\n"; }}
        location = /echo-host {{ return 200 "host=$http_host\\n"; }}
        location = /echo-sni {{ return 200 "sni=$ssl_server_name\\n"; }}
        location = /unauthorized {{ return 401 "authentication required\\n"; }}
        location = /redirect {{ return 301 /; }}
    }}
    server {{
        listen {host}:{plain_port};
        location / {{ return 200 "plain http backend\\n"; }}
    }}
}}
"""

NGINX_INDEX = "Gatehouse nginx test backend\n"


class Nginx:
    """nginx (master_process off, daemon off: a single process) with an HTTPS server using the
    app certificate + intermediate, and a plain HTTP server."""

    def __init__(self, tmp, pki, host="127.0.0.1"):
        self.tmp = Path(tmp)
        self.pki = Path(pki)
        self.host = host
        self.srv = None
        self.plain_port = None

    def start(self):
        (self.tmp / "www").mkdir(parents=True, exist_ok=True)
        (self.tmp / "www" / "index.html").write_text(NGINX_INDEX)
        for attempt in range(3):
            tls_port = free_port(self.host)
            plain_port = free_port(self.host)
            if tls_port == plain_port:
                continue
            conf = self.tmp / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=self.tmp, pki=self.pki, host=self.host,
                                              tls_port=tls_port, plain_port=plain_port))
            argv = [NGINX, "-p", str(self.tmp), "-c", str(conf), "-e", str(self.tmp / "error.log")]
            srv = ServerProcess("nginx", argv, self.host, tls_port, self.tmp / "nginx.out")
            if srv.start():
                deadline = time.monotonic() + READY_TIMEOUT
                while not can_connect(self.host, plain_port) and time.monotonic() < deadline:
                    time.sleep(0.02)
                self.srv = srv
                self.plain_port = plain_port
                return self
        raise AssertionError(f"nginx failed to start\n{(self.tmp / 'error.log').read_text()}")

    @property
    def port(self):
        return self.srv.port

    def url(self, path="/"):
        return self.srv.url(path)

    def plain_url(self, path="/"):
        return f"https://{hostport(self.host, self.plain_port)}{path}"

    def stop(self):
        if self.srv:
            self.srv.stop()


# --------------------------------------------------------------------------------------------
# In-process Python servers (threads), stopped by closing their own sockets


class _ThreadServer:
    def __init__(self, host="127.0.0.1", backlog=16):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = threading.Event()
        self.threads = []

    @property
    def address(self):
        return hostport(self.host, self.port)

    def url(self, path="/"):
        return f"https://{self.address}{path}"

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        self.threads.append(t)
        t.start()

    def start(self):
        self.sock.settimeout(0.1)
        self._spawn(self._accept_loop)
        return self

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(conn)
            self.handle(conn)

    def handle(self, conn):
        pass

    def stop(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for t in self.threads:
            t.join(timeout=3)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class SilentServer(_ThreadServer):
    """Accepts TCP connections and never sends a byte."""


class TlsSilentServer(_ThreadServer):
    """Completes the TLS handshake, then never sends a byte (the HTTP response never comes)."""

    def __init__(self, chain_file, key_file, host="127.0.0.1"):
        super().__init__(host)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(chain_file), str(key_file))

    def handle(self, conn):
        self._spawn(self._serve, conn)

    def _serve(self, conn):
        try:
            conn.settimeout(3)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            self.conns.append(tls)
            self.stopping.wait(30)
        except (OSError, ssl.SSLError):
            pass


class PlainHttpServer(_ThreadServer):
    """A plain HTTP/1.1 server; like nginx, it answers 400 at once to bytes that are not HTTP
    (such as a TLS ClientHello)."""

    def handle(self, conn):
        self._spawn(self._serve, conn)

    def _serve(self, conn):
        try:
            conn.settimeout(3)
            data = conn.recv(4096)
            if re.match(rb"^(GET|HEAD|POST|PUT|DELETE|OPTIONS) ", data):
                body = b"plain http backend\n"
                head = b"HTTP/1.1 200 OK\r\n"
            else:
                body = b"<html><body><h1>400 Bad Request</h1></body></html>\n"
                head = b"HTTP/1.1 400 Bad Request\r\n"
            conn.sendall(head + b"Content-Type: text/html\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


class FullBacklogServer:
    """A listening socket that never accepts, with its accept queue filled, so that a further
    connect() gets no SYN-ACK and hangs (Linux drops SYNs to a listener whose queue is full)."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []

    def url(self, path="/"):
        return f"https://{hostport(self.host, self.port)}{path}"

    def fill(self, max_conns=16):
        """Returns True once a connect() to the listener hangs."""
        for _ in range(max_conns):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.settimeout(0.3)
            try:
                c.connect((self.host, self.port))
            except (socket.timeout, BlockingIOError):
                c.close()
                return True
            except OSError:
                c.close()
                return False
            self.fillers.append(c)
        return False

    def stop(self):
        for c in self.fillers:
            c.close()
        self.sock.close()
