"""SIGHUP reload and health (issue 4: "Draining when removed by a reload"; DESIGN: a bad config
is refused and the running one stays)."""

import json
import signal
import time

from gateway_support import SLOW
from health_support import (  # noqa: F401 (fixtures)
    backends,
    health_gateway,
    backend_health,
    fast_probe,
    health_config,
    https_settings,
    servers_of,
    wait_for,
    wait_health,
)


def test_reload_shows_removed_server_draining_and_refuses_bad_config(pki, backends,
                                                                      health_gateway):
    b1, b2 = backends(2)
    pools = {"servers": [b1.address, b2.address]}

    def make(gw):
        s = https_settings("tls", b1.port, probe="fast")
        return health_config(gw, pki, [("pool", pools["servers"], s, "web")],
                             probes=[fast_probe()])

    gw = health_gateway(make, ("web",))
    wait_health(gw, b1.address, "Healthy")
    wait_health(gw, b2.address, "Healthy")

    # Reload without b2: b2 is shown Draining, b1 stays Healthy (its health carried over).
    cfg = json.loads(gw.config_path.read_text())
    cfg["backend-pools"][0]["servers"] = [b1.address]
    gw.config_path.write_text(json.dumps(cfg, indent=2) + "\n")
    gw.send_signal(signal.SIGHUP)
    s2 = wait_for("b2 to be shown Draining",
                  lambda: (servers_of(backend_health(gw)).get(b2.address) or {}).get("health")
                  == "Draining" and servers_of(backend_health(gw))[b2.address], 5 * SLOW)
    assert "reload" in s2["message"], s2
    assert servers_of(backend_health(gw))[b1.address]["health"] == "Healthy"
    # ?server= finds the draining server too.
    one = backend_health(gw, b2.address)
    assert [srv["health"] for srv in servers_of(one).values()] == ["Draining"], one

    # A broken config is refused: the gateway keeps serving the previous one.
    gw.config_path.write_text("listeners: [\n")
    gw.send_signal(signal.SIGHUP)
    time.sleep(0.5 * SLOW)
    assert gw.proc.poll() is None, "the gateway died on an invalid reload"
    assert "reload refused" in gw.output(), gw.output()
    assert servers_of(backend_health(gw))[b1.address]["health"] == "Healthy"
