"""The backend health dashboard (GET / on the admin listener), driven by Debian's chromium in
headless mode.

A real gateway (`gatehouse run`) probes real `openssl s_server` backends on loopback that
reproduce the seed situations -- full chain, leaf only (missing intermediate), wrong name,
default certificate without SNI (allow-list, probed by IP), another root, an expired leaf -- and
one whose certificate subject holds HTML (`<script>alert(1)</script>`, an `<img onerror>`).
Chromium loads the dashboard (`--dump-dom` after a virtual-time budget, and `--screenshot`),
and the tests check the rendered DOM against the gateway's own /backend-health verdicts.

Two more tests serve the same embedded page (fetched from the gateway's GET /) from a small
scripted server, to check the "stale" indicator when /backend-health stops answering and the
request figures computed from two /metrics scrapes.

Screenshots: TMP/dashboard.png (1280 px wide) and TMP/dashboard-phone.png (390 px), copied to
out/dashboard.png and out/dashboard-phone.png (out/ is ignored by git).

Chromium: /usr/bin/chromium (Debian package `chromium`, listed in scripts/deps). When it is
missing the test runs scripts/deps once (as root, or with password-less sudo) and skips only if
chromium still cannot be installed.
"""

import html
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

import support
from support import GATEHOUSE_BIN, OPENSSL, REPO, ServerProcess, free_port, s_server_argv, start_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SLOW = 4 if support.SANITIZED else 1
SCRIPT_SUBJECT_CN = "<script>alert(1)</script>"
IMG_SUBJECT_OU = "<img src=x onerror=document.title='pwned'>"
INTERMEDIATE = "Gatehouse Test Intermediate CA"


# --------------------------------------------------------------------------------------------
# Chromium


_chromium_checked = {}


def chromium_or_skip():
    """Path of chromium; installs it with scripts/deps when missing; skips if that fails."""
    if "path" in _chromium_checked:
        if _chromium_checked["path"] is None:
            pytest.skip(_chromium_checked["why"])
        return _chromium_checked["path"]
    why = None
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        deps = REPO / "scripts" / "deps"
        if os.geteuid() == 0:
            argv = [str(deps)]
        elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                                    timeout=10).returncode == 0:
            argv = ["sudo", "-n", str(deps)]
        else:
            argv = None
            why = f"{CHROMIUM} is missing and scripts/deps cannot install it (not root, no sudo)"
        if argv:
            try:
                p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
                if p.returncode != 0:
                    why = (f"{CHROMIUM} is missing and scripts/deps failed to install chromium "
                           f"(exit {p.returncode}): {p.stderr.strip()[-400:]}")
            except subprocess.TimeoutExpired:
                why = f"{CHROMIUM} is missing and scripts/deps did not finish within 900 s"
        if why is None and not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
            why = f"{CHROMIUM} is still missing after scripts/deps"
    _chromium_checked["path"] = None if why else CHROMIUM
    _chromium_checked["why"] = why
    if why:
        pytest.skip(why)
    return CHROMIUM


def run_chromium(args, tmp, timeout=120):
    """Runs headless chromium with a fresh profile; returns stdout (bytes). Its process group is
    killed (by the PID of the process started here) if it overruns."""
    exe = chromium_or_skip()
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp)
    log = Path(tmp) / "chromium.log"
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
            "--force-color-profile=srgb", f"--user-data-dir={profile}", *args]
    with open(log, "ab") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"chromium did not finish within {timeout * SLOW}s: {argv}")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # helpers left behind, if any
            except ProcessLookupError:
                pass
    assert proc.returncode == 0, (
        f"chromium exited with {proc.returncode}\n{log.read_text(errors='replace')[-3000:]}")
    shutil.rmtree(profile, ignore_errors=True)
    return out


def dump_dom(url, tmp, budget_ms=8000, size=(1280, 2000)):
    out = run_chromium([f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}",
                        "--dump-dom", url], tmp)
    return out.decode("utf-8", "replace")


def screenshot(url, path, tmp, size, budget_ms=8000):
    run_chromium([f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}",
                  f"--screenshot={path}", url], tmp)
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width = int.from_bytes(data[16:20], "big")
    assert width == size[0], f"{path}: width {width}, expected {size[0]}"
    assert len(data) > 20000, f"{path}: only {len(data)} bytes (blank page?)"
    return data


# --------------------------------------------------------------------------------------------
# A small DOM built from chromium's --dump-dom output (stdlib html.parser)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []  # Node or str

    @property
    def classes(self):
        return (self.attrs.get("class") or "").split()

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def find_all(self, tag=None, cls=None, **attrs):
        out = []
        for n in self.iter():
            if tag and n.tag != tag:
                continue
            if cls and cls not in n.classes:
                continue
            if any((n.attrs.get(k.replace("_", "-")) != v) if v is not True
                   else (k.replace("_", "-") not in n.attrs) for k, v in attrs.items()):
                continue
            out.append(n)
        return out

    def find(self, *a, **kw):
        hits = self.find_all(*a, **kw)
        return hits[0] if hits else None

    def __repr__(self):
        return f"<{self.tag} {self.attrs}>"


class TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse_dom(text):
    b = TreeBuilder()
    b.feed(text)
    b.close()
    return b.root


# --------------------------------------------------------------------------------------------
# Backends and the gateway


def http_get(host, port, path, timeout=5.0):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def make_script_cert(pki, d):
    """A leaf signed by the test intermediate whose subject holds HTML (openssl CLI only)."""
    key, csr, ext, pem = d / "script.key", d / "script.csr", d / "script.ext", d / "script.pem"
    ext.write_text("subjectAltName=DNS:xss.example.com\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    # "/" inside a value must be escaped for -subj.
    subj = f"/O=Gatehouse Test/OU={IMG_SUBJECT_OU}/CN={SCRIPT_SUBJECT_CN.replace('/', chr(92) + '/')}"
    for argv in (
        [OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-subj", subj, "-out", str(csr)],
        [OPENSSL, "x509", "-req", "-in", str(csr), "-CA", str(pki / "inter.pem"), "-CAkey",
         str(pki / "inter.key"), "-set_serial", "4242", "-days", "20", "-sha256",
         "-extfile", str(ext), "-out", str(pem)],
    ):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, f"{argv}\n{p.stdout}\n{p.stderr}"
    subject = subprocess.run([OPENSSL, "x509", "-in", str(pem), "-noout", "-subject"],
                             capture_output=True, text=True, timeout=10).stdout
    assert "<script>" in subject, subject
    return pem, key


# name -> (expected health, expected code)
EXPECTED = {
    "full": ("Healthy", "OK"),
    "leaf_only": ("Unhealthy", "CERT_INTERMEDIATE_MISSING"),
    "wrong_name": ("Unhealthy", "CERT_NAME_MISMATCH"),
    "default_cert": ("Unhealthy", "CERT_NOT_ALLOWLISTED"),
    "other_root": ("Unhealthy", "CERT_ROOT_NOT_TRUSTED"),
    "expired": ("Unhealthy", "CERT_EXPIRED"),
    "script": ("Healthy", "OK"),
}


class Env:
    pass


@pytest.fixture(scope="module")
def dash(pki, tmp_path_factory):
    """Seven s_server backends and `gatehouse run` in front of them, admin on a free port."""
    tmp = tmp_path_factory.mktemp("dashboard")
    script_pem, script_key = make_script_cert(pki, tmp)
    started = []

    def backend(name, cert, key, chain=None, **kw):
        srv = start_server(f"s_server[{name}]",
                           lambda port: s_server_argv(port, "127.0.0.1", cert, key, chain=chain, **kw),
                           "127.0.0.1", tmp / f"{name}.log")
        started.append(srv)
        return srv

    env = Env()
    env.tmp = tmp
    env.pki = pki
    try:
        b = {
            "full": backend("full", pki / "app.pem", pki / "app.key", pki / "inter.pem"),
            "leaf_only": backend("leaf_only", pki / "app.pem", pki / "app.key"),
            "wrong_name": backend("wrong_name", pki / "cn-ignored.pem", pki / "cn-ignored.key",
                                  pki / "inter.pem"),
            # Seeds 001/003: a default certificate without SNI, the app's with it.
            "default_cert": backend("default_cert", pki / "ilb-default.pem", pki / "ilb-default.key",
                                    pki / "inter.pem", sni_name="app.example.com",
                                    cert2=pki / "app.pem", key2=pki / "app.key"),
            "other_root": backend("other_root", pki / "other-app.pem", pki / "other-app.key",
                                  pki / "other-inter.pem"),
            "expired": backend("expired", pki / "expired.pem", pki / "expired.key", pki / "inter.pem"),
            "script": backend("script", script_pem, script_key, pki / "inter.pem"),
        }
        env.backends = {k: v.address for k, v in b.items()}
        env.listeners = {}

        def gw_argv(admin_port):
            ports = {}
            while len(ports) < 4:
                p = free_port()
                if p != admin_port and p not in ports.values():
                    ports[f"l{len(ports)}"] = p
            env.listeners = dict(zip(["main", "internal", "partner", "xss"], ports.values()))
            a = env.backends
            probe = {"protocol": "https", "path": "/", "interval": "2s", "timeout": "2s",
                     "unhealthy-threshold": 1}
            cfg = {
                "admin": {"listen": f"127.0.0.1:{admin_port}"},
                "workers": 1,
                "access-log": {"path": str(tmp / "access.log")},
                "trusted-roots": {"private-root": str(pki / "root.pem")},
                "auth-certs": {"app-leaf": str(pki / "app.pem")},
                "listeners": [{"name": n, "port": p, "protocol": "http", "address": "127.0.0.1"}
                              for n, p in env.listeners.items()],
                "backend-pools": [
                    {"name": "app", "servers": [a["full"], a["leaf_only"], a["wrong_name"]]},
                    {"name": "ilb", "servers": [a["default_cert"]]},
                    {"name": "partner", "servers": [a["other_root"], a["expired"]]},
                    {"name": "xss", "servers": [a["script"]]},
                ],
                "backend-settings": [
                    {"name": "app-https", "protocol": "https", "port": 443,
                     "host-name": "app.example.com", "trusted-roots": ["private-root"],
                     "probe": "app-probe"},
                    {"name": "ilb-allowlist", "protocol": "https", "port": 443,
                     "pick-host-name-from-backend": True, "auth-certs": ["app-leaf"],
                     "probe": "pick-probe"},
                    {"name": "xss-https", "protocol": "https", "port": 443,
                     "host-name": "xss.example.com", "trusted-roots": ["private-root"],
                     "probe": "xss-probe"},
                ],
                "probes": [
                    dict(probe, name="app-probe", host="app.example.com"),
                    dict(probe, name="pick-probe", **{"pick-host-name-from-backend-settings": True}),
                    dict(probe, name="xss-probe", host="xss.example.com"),
                ],
                "rules": [
                    {"name": "main", "listener": "main", "priority": 100, "backend-pool": "app",
                     "backend-settings": "app-https"},
                    {"name": "internal", "listener": "internal", "priority": 200,
                     "backend-pool": "ilb", "backend-settings": "ilb-allowlist"},
                    {"name": "partner", "listener": "partner", "priority": 300,
                     "backend-pool": "partner", "backend-settings": "app-https"},
                    {"name": "xss", "listener": "xss", "priority": 400, "backend-pool": "xss",
                     "backend-settings": "xss-https"},
                ],
            }
            path = tmp / "gatehouse.yaml"
            path.write_text(json.dumps(cfg, indent=2) + "\n")  # JSON is YAML
            return [GATEHOUSE_BIN, "run", "-c", str(path)]

        gw = start_server("gatehouse", gw_argv, "127.0.0.1", tmp / "gatehouse.log")
        started.append(gw)
        env.gw = gw
        env.admin = f"http://127.0.0.1:{gw.port}"
        env.admin_port = gw.port

        # Every server probed at least once, with the verdict expected of it.
        want = {env.backends[k]: v for k, v in EXPECTED.items()}
        deadline = time.monotonic() + 30 * SLOW
        got = {}
        while time.monotonic() < deadline:
            status, body = http_get("127.0.0.1", gw.port, "/backend-health")
            assert status == 200, body
            doc = json.loads(body)
            got = {sv["address"]: (sv["health"], sv["code"])
                   for pool in doc["pools"] for st in pool["settings"] for sv in st["servers"]}
            if got == want:
                break
            time.sleep(0.2)
        assert got == want, (f"the gateway's verdicts are not the expected ones\n"
                             f"got  {got}\nwant {want}\n{gw.log()}")
        env.health = doc

        # Some traffic for /metrics: the healthy pool answers, the unhealthy one gets 502s.
        for _ in range(20):
            assert http_get("127.0.0.1", env.listeners["main"], "/")[0] == 200
            assert http_get("127.0.0.1", env.listeners["partner"], "/")[0] == 502
            http_get("127.0.0.1", env.listeners["xss"], "/")
        yield env
    finally:
        for srv in reversed(started):
            srv.stop()


def server_json(doc, address):
    for pool in doc["pools"]:
        for st in pool["settings"]:
            for sv in st["servers"]:
                if sv["address"] == address:
                    return sv
    raise AssertionError(f"{address} not in /backend-health")


# --------------------------------------------------------------------------------------------
# The real dashboard


@pytest.fixture(scope="module")
def page(dash):
    """The dashboard as chromium rendered it: (raw dumped DOM, parsed tree, /backend-health)."""
    text = dump_dom(f"{dash.admin}/?refresh=2", dash.tmp, budget_ms=9000)
    (dash.tmp / "dashboard-dom.html").write_text(text)
    status, body = http_get("127.0.0.1", dash.admin_port, "/backend-health")
    assert status == 200
    return text, parse_dom(text), json.loads(body)


def card_of(root, address):
    cards = root.find_all(cls="server", data_server=address)
    assert len(cards) == 1, f"expected one card data-server={address!r}, got {len(cards)}"
    return cards[0]


def test_dashboard_is_served_self_contained(dash):
    c = http.client.HTTPConnection("127.0.0.1", dash.admin_port, timeout=5)
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read().decode("utf-8")
    c.close()
    assert r.status == 200
    assert r.getheader("Content-Type", "").startswith("text/html")
    assert "<script src" not in body and "<link" not in body and "@import" not in body
    assert "http://" not in body and "https://" not in body, "the page must not name remote URLs"
    assert "innerHTML" not in body.split("<script>", 1)[1], "the page's code must not use innerHTML"


def test_dashboard_verdicts(dash, page):
    text, root, doc = page
    body = root.find(tag="body")
    assert body.attrs.get("data-loaded") == "true", text[:2000]
    refreshes = int(body.attrs.get("data-refreshes", "0"))
    assert refreshes >= 2, "the page did not refresh itself"
    # The verdicts did not change meanwhile: later refreshes update the cards in place.
    assert int(body.attrs.get("data-rebuilds", "0")) < refreshes, body.attrs
    assert root.find(id="freshness").attrs.get("data-state") == "live", \
        root.find(id="freshness").text()
    for name, (health, code) in EXPECTED.items():
        addr = dash.backends[name]
        sv = server_json(doc, addr)
        card = card_of(root, addr)
        assert card.attrs.get("data-health") == health == sv["health"], (name, card.attrs)
        assert card.attrs.get("data-code") == code == sv["code"], (name, card.attrs)
        assert health in card.find(cls="verdict").text(), name
        assert card.find(cls="code").text() == code, name
        assert card.find(cls="cause").text() == sv["message"], name
        if sv["remedy"]:
            assert card.find(cls="fix").text() == sv["remedy"], name
    # Every server of the document has its card, in its pool.
    n_cards = len(root.find_all(cls="server", data_server=True))
    n_servers = sum(len(st["servers"]) for p in doc["pools"] for st in p["settings"])
    assert n_cards == n_servers == len(EXPECTED)
    for pool in doc["pools"]:
        sec = root.find(cls="pool", data_pool=pool["name"])
        assert sec is not None, pool["name"]
        for st in pool["settings"]:
            for sv in st["servers"]:
                assert sec.find(cls="server", data_server=sv["address"]) is not None


def test_dashboard_marks_missing_intermediate(dash, page):
    _, root, doc = page
    addr = dash.backends["leaf_only"]
    sv = server_json(doc, addr)
    missing = sv["chain_status"]["missing"]
    assert INTERMEDIATE in missing, sv["chain_status"]
    card = card_of(root, addr)
    chain = card.find(cls="chain")
    assert chain is not None and chain.attrs.get("data-status") == "issuer-missing"
    marks = card.find_all(data_missing=missing)
    assert len(marks) == 1, f"no element data-missing={missing!r} on {addr}"
    assert "missing" in marks[0].classes and "cert" in marks[0].classes
    assert "missing: " + INTERMEDIATE in marks[0].text()
    # The leaf box comes first, then the missing link.
    boxes = [n for n in chain.children if isinstance(n, Node) and "cert" in n.classes]
    assert [("missing" in b.classes) for b in boxes] == [False, True], boxes
    assert boxes[0].attrs.get("data-kind") == "leaf"
    assert "app.example.com" in boxes[0].text()
    # Only that card has a missing link.
    assert len(root.find_all(cls="missing", data_missing=True)) == 1


def test_dashboard_marks_other_problems(dash, page):
    _, root, _ = page
    other = card_of(root, dash.backends["other_root"])
    assert other.find(cls="untrusted-root", data_untrusted="CN=Other Test Root CA,O=Gatehouse Test")
    assert any("untrusted root" in m.text() for m in other.find_all(cls="mark"))
    expired = card_of(root, dash.backends["expired"])
    leaf = expired.find(cls="cert", data_kind="leaf")
    assert "expired" in leaf.classes
    wrong = card_of(root, dash.backends["wrong_name"])
    assert "name-mismatch" in wrong.find(cls="cert", data_kind="leaf").classes
    assert wrong.find(cls="anchor") is not None  # trusted root at the end of the drawn chain
    dflt = card_of(root, dash.backends["default_cert"])
    alt = dflt.find(cls="alt-sni")
    assert alt is not None and alt.attrs.get("data-would-pass") == "true"
    cols = alt.find_all(cls="alt-col")
    assert len(cols) == 2
    assert "ilb-default.internal" in cols[0].text() and "app.example.com" in cols[1].text()
    assert "not-allowlisted" in dflt.find(cls="cert", data_kind="leaf").classes
    healthy = card_of(root, dash.backends["full"])
    assert healthy.find(cls="missing") is None and healthy.find(cls="untrusted-root") is None
    # Expiring certificate (the script leaf is valid for 20 days) among the warnings.
    warns = root.find(id="warnings").find_all(cls="warning", data_code="CERT_EXPIRES_SOON")
    assert warns, root.find(id="warnings-section")


def test_dashboard_metrics_at_a_glance(dash, page):
    _, root, _ = page
    tiles = {t.attrs["data-metric"]: t for t in root.find_all(cls="tile")}
    assert set(tiles) >= {"rps", "err5xx", "p99", "healthy"}
    assert tiles["healthy"].find(cls="value").text() == "2 / 7"
    # 20 of the 60 requests were 502s: the 5xx share is shown (since start or windowed).
    share = tiles["err5xx"].find(cls="value").text()
    assert share.endswith("%") and share != "0 %", share
    assert tiles["p99"].find(cls="value").text().endswith(("ms", "s")), tiles["p99"].text()
    partner = root.find(cls="traffic-row", data_listener="partner")
    assert partner is not None and "100 %" in partner.text()
    assert root.find(cls="traffic-row", data_pool_row="app") is not None


def test_dashboard_escapes_certificate_text(dash, page):
    text, root, doc = page
    addr = dash.backends["script"]
    subject = server_json(doc, addr)["chain"][0]["subject"]
    assert "<script" in subject and "<img" in subject, subject
    # The subject is in the DOM as text, escaped by the serializer ...
    assert html.escape(subject, quote=False) in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    card = card_of(root, addr)
    assert SCRIPT_SUBJECT_CN in card.text()  # the CN, unescaped from RFC 2253, as text
    assert "onerror=document.title='pwned'" in card.text()
    # ... and never as markup: the page's own script is the only one, no <img> at all,
    # and the onerror handler did not run.
    assert text.count("<script") == 1, "a <script> element from certificate text reached the DOM"
    assert "<img" not in text
    assert root.find(tag="title").text() == "Gatehouse \u00b7 backend health"
    assert "pwned" not in root.find(tag="title").text()


def test_dashboard_screenshot(dash, page):
    url = f"{dash.admin}/?refresh=2"
    out_dir = REPO / "out"
    out_dir.mkdir(exist_ok=True)
    # Traffic while the page runs, so the request figures show rates (healthy pool: 200s,
    # unhealthy pool: the gateway's 502s).
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            for name in ("main", "main", "main", "partner", "xss"):
                try:
                    http_get("127.0.0.1", dash.listeners[name], "/", timeout=2)
                except OSError:
                    pass
            stop.wait(0.01)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        for name, size in (("dashboard.png", (1280, 3600)), ("dashboard-phone.png", (390, 5600))):
            path = dash.tmp / name
            screenshot(url, path, dash.tmp, size)
            shutil.copyfile(path, out_dir / name)
            print(f"screenshot: {path} (copied to {out_dir / name})")
    finally:
        stop.set()
        t.join(timeout=10)


# --------------------------------------------------------------------------------------------
# The same page behind a scripted server: stale data, figures from /metrics


class Scripted(http.server.ThreadingHTTPServer):
    daemon_threads = True


def scripted_server(page_bytes, health_doc, fail_health_after=None, metrics=None):
    """Serves GET / (the gateway's embedded page), /backend-health (health_doc, then 503 after
    fail_health_after answers) and /metrics (metrics(n) for the n-th scrape)."""
    counts = {"health": 0, "metrics": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def send(self, status, ctype, body):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/":
                self.send(200, "text/html; charset=utf-8", page_bytes)
            elif path == "/backend-health":
                counts["health"] += 1
                if fail_health_after is not None and counts["health"] > fail_health_after:
                    self.send(503, "application/json", b'{"error":"down"}')
                    return
                doc = dict(health_doc, generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                self.send(200, "application/json", json.dumps(doc).encode())
            elif path == "/metrics":
                counts["metrics"] += 1
                body = metrics(counts["metrics"]) if metrics else ""
                self.send(200, "text/plain; version=0.0.4", body.encode())
            else:
                self.send(404, "text/plain", b"no")

    srv = Scripted(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return srv, counts


@pytest.fixture
def embedded_page(dash):
    status, body = http_get("127.0.0.1", dash.admin_port, "/")
    assert status == 200
    return body


def test_dashboard_shows_stale_data(dash, embedded_page, tmp_path):
    srv, counts = scripted_server(embedded_page, dash.health, fail_health_after=1)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/?refresh=1"
        root = parse_dom(dump_dom(url, tmp_path, budget_ms=6000))
    finally:
        srv.shutdown()
        srv.server_close()
    assert counts["health"] >= 2, counts
    fresh = root.find(id="freshness")
    assert fresh.attrs.get("data-state") == "stale", fresh.text()
    assert "Stale" in fresh.text()
    assert "stale" in root.find(id="stale-banner").text().lower()
    assert "is-stale" in root.find(tag="body").classes
    # The last good snapshot stays on screen.
    assert root.find(cls="server", data_server=dash.backends["leaf_only"]) is not None


def test_dashboard_request_figures(dash, embedded_page, tmp_path):
    addr = dash.backends["full"]

    def metrics(n):
        # Per scrape: +90 2xx and +10 5xx on listener main; 100 durations, of which 50 <= 5 ms,
        # 90 <= 10 ms, 99 <= 25 ms: p99 = 25 ms, 5xx share 10 %. Backend (pool app): 40
        # responses, 10 <= 1 ms, 30 <= 2.5 ms, 40 <= 5 ms: p99 = 4.9 ms (interpolated).
        lines = [
            f'gatehouse_requests_total{{listener="main",rule="main",code_class="2xx"}} {90 * n}',
            f'gatehouse_requests_total{{listener="main",rule="main",code_class="5xx"}} {10 * n}',
        ]
        for le, c in (("0.005", 50), ("0.01", 90), ("0.025", 99), ("0.05", 100), ("+Inf", 100)):
            lines.append(f'gatehouse_request_duration_seconds_bucket{{listener="main",le="{le}"}} {c * n}')
        lines.append(f'gatehouse_backend_responses_total{{pool="app",settings="app-https",'
                     f'server="{addr}",code_class="2xx"}} {40 * n}')
        for le, c in (("0.001", 10), ("0.0025", 30), ("0.005", 40), ("+Inf", 40)):
            lines.append(f'gatehouse_backend_response_duration_seconds_bucket{{settings="app-https",'
                         f'server="{addr}",le="{le}"}} {c * n}')
        lines.append("gatehouse_open_connections 3")
        return "\n".join(lines) + "\n"

    srv, counts = scripted_server(embedded_page, dash.health, metrics=metrics)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/?refresh=1"
        root = parse_dom(dump_dom(url, tmp_path, budget_ms=5000))
    finally:
        srv.shutdown()
        srv.server_close()
    assert counts["metrics"] >= 2, counts
    tiles = {t.attrs["data-metric"]: t.find(cls="value").text() for t in root.find_all(cls="tile")}
    assert tiles["p99"] == "25 ms", tiles
    assert tiles["err5xx"] == "10 %", tiles
    assert tiles["conns"] == "3", tiles
    rps = float(tiles["rps"].rstrip("k"))
    assert rps > 0, tiles
    main = root.find(cls="traffic-row", data_listener="main")
    cells = [td.text() for td in main.find_all(tag="td")]
    assert cells[-2:] == ["10 %", "25 ms"], cells
    app = root.find(cls="traffic-row", data_pool_row="app")
    cells = [td.text() for td in app.find_all(tag="td")]
    assert cells[-2:] == ["0 %", "4.9 ms"], cells


def _cert(depth, subject, issuer, kind, **kw):
    c = {"depth": depth, "subject": subject, "issuer": issuer, "sans": [],
         "not_before": "2020-01-01T00:00:00Z", "not_after": "2040-01-01T00:00:00Z",
         "sha256": f"{depth:02d}" * 32, "self_signed": kind == "root", "ca": kind != "leaf",
         "kind": kind, "aia_ca_issuers": None, "on_path": True, "expired": False,
         "not_yet_valid": False}
    c.update(kw)
    return c


def _server(address, health, code, **kw):
    sv = {"address": address, "health": health, "code": code, "message": f"{code} message",
          "remedy": f"{code} remedy", "findings": [], "warnings": [], "chain": [],
          "chain_status": None, "sni": None, "tls": None, "http": None,
          "timings_ms": {"dns": 0.0, "connect": 1.0, "tls": None, "response": None},
          "alternate_sni": None, "last_probe": None, "last_probe_ms": None,
          "consecutive_failures": 0, "url": f"https://{address}/", "healthProbeLog": "",
          "parity": None, "certificates": []}
    sv.update(kw)
    return sv


def test_dashboard_renders_other_states(dash, embedded_page, tmp_path):
    """States the live backends above do not produce: not probed yet, refused, draining, chain
    in the wrong order, an untrusted self-signed root sent by the server, warnings."""
    leaf = "CN=app.example.com,O=Gatehouse Test"
    inter = "CN=Gatehouse Test Intermediate CA,O=Gatehouse Test"
    root = "CN=Evil Root,O=Gatehouse Test"
    servers = [
        _server("10.0.0.1:443", "Unknown", None, message="Not probed yet.", remedy=""),
        _server("10.0.0.2:443", "Unhealthy", "CONNECTION_REFUSED"),
        _server("10.0.0.3:443", "Draining", "OK", remedy=""),
        _server("10.0.0.4:443", "Unhealthy", "CERT_LEAF_NOT_FIRST",
                chain=[_cert(0, inter, root, "intermediate"), _cert(1, leaf, inter, "leaf")],
                chain_status={"status": "untrusted", "leaf_index": 1, "leaf_not_first": True,
                              "missing": root, "missing_aia": None, "anchor": None}),
        _server("10.0.0.5:443", "Unhealthy", "CERT_ROOT_NOT_TRUSTED",
                chain=[_cert(0, leaf, inter, "leaf"), _cert(1, inter, root, "intermediate"),
                       _cert(2, root, root, "root")],
                chain_status={"status": "untrusted", "leaf_index": 0, "leaf_not_first": False,
                              "missing": root, "missing_aia": None, "anchor": None},
                warnings=[{"code": "CERT_CHANGED", "message": "changed"},
                          {"code": "PROBE_TRAFFIC_DIFFER", "message": "differ"}]),
    ]
    doc = {"generated": "2030-01-01T00:00:00Z",
           "pools": [{"name": "synthetic", "settings": [
               {"name": "s", "probe": "p", "healthy": 0, "unhealthy": 3, "servers": servers}]}]}
    srv, counts = scripted_server(embedded_page, doc)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/?refresh=1"
        root_node = parse_dom(dump_dom(url, tmp_path, budget_ms=3000))
    finally:
        srv.shutdown()
        srv.server_close()
    fresh = root_node.find(id="freshness")
    assert fresh.attrs.get("data-state") == "live", fresh.text()  # no render failure
    cards = {c.attrs["data-server"]: c for c in root_node.find_all(cls="server", data_server=True)}
    assert {a: c.attrs["data-health"] for a, c in cards.items()} == {
        "10.0.0.1:443": "Unknown", "10.0.0.2:443": "Unhealthy", "10.0.0.3:443": "Draining",
        "10.0.0.4:443": "Unhealthy", "10.0.0.5:443": "Unhealthy"}
    assert cards["10.0.0.1:443"].attrs["data-code"] == ""
    assert cards["10.0.0.2:443"].find(cls="chain") is None
    # Drawn leaf first (path order), both boxes marked as sent in the wrong order, and the
    # root the chain needs (not sent, not trusted) after them.
    wrong = cards["10.0.0.4:443"].find_all(cls="wrong-order")
    assert [b.attrs.get("data-kind") for b in wrong] == ["leaf", "intermediate"]
    assert cards["10.0.0.4:443"].find(cls="untrusted-root", data_untrusted=root) is not None
    sent_root = cards["10.0.0.5:443"].find(cls="cert", data_kind="root")
    assert "untrusted" in sent_root.classes
    assert any("untrusted-root" in m.classes for m in sent_root.find_all(cls="mark"))
    assert cards["10.0.0.5:443"].find(cls="untrusted-root", data_untrusted=True) is None
    codes = {w.attrs["data-code"] for w in root_node.find(id="warnings").find_all(cls="warning")}
    assert codes == {"CERT_CHANGED", "PROBE_TRAFFIC_DIFFER"}
