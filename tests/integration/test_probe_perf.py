"""Performance figures (printed), with only a loose bound so a loaded 2-core machine passes."""

import statistics

from support import SANITIZED, expect, probe, run_gatehouse

RUNS = 20
BOUND_MS = 200


def summary(name, samples_s):
    ms = sorted(s * 1000 for s in samples_s)
    med = statistics.median(ms)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    return med, f"{name}: median {med:.1f} ms, p90 {p90:.1f} ms, min {ms[0]:.1f} ms, " \
                f"max {ms[-1]:.1f} ms over {len(ms)} runs"


def test_probe_and_startup_time(tls_server, pki, capsys):
    srv = tls_server(cert="app", chain="inter")
    probe_times = []
    for _ in range(RUNS):
        res = probe(srv.url(), "--host", "app.example.com", "--trusted-root", pki / "root.pem")
        expect(res, "OK")
        probe_times.append(res.elapsed)
    version_times = []
    for _ in range(RUNS):
        res = run_gatehouse("--version")
        assert res.rc == 0, res
        version_times.append(res.elapsed)

    probe_med, probe_line = summary("healthy loopback probe (wall)", probe_times)
    ver_med, ver_line = summary("gatehouse --version (wall)", version_times)
    with capsys.disabled():
        print(f"\n[perf] {probe_line}\n[perf] {ver_line}")
    if not SANITIZED:
        assert probe_med < BOUND_MS, probe_line
        assert ver_med < BOUND_MS, ver_line
