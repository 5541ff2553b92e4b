"""Bad input: exit status 2 and one line on stderr naming the argument at fault; --help."""

import pytest

from support import run_gatehouse

# A URL nothing listens on: if the binary wrongly went on to probe it, it fails fast with 1.
URL = "https://127.0.0.1:9/"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.txt").write_text("this file holds no certificate\n")
    (d / "empty.pem").write_text("")
    (d / "wrong-password.txt").write_text("not-the-password\n")
    (d / "garbage.cer").write_bytes(bytes(range(256)) * 4)
    return d


def assert_usage_error(res, all_of=(), any_of=()):
    assert res.rc == 2, f"expected exit status 2\n{res}"
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}\n{res}"
    for s in all_of:
        assert s in lines[0], f"stderr does not name {s!r}\n{res}"
    if any_of:
        assert any(s in lines[0] for s in any_of), f"stderr names none of {any_of}\n{res}"


MISSING = "/nonexistent/gatehouse-test/root.pem"

# (id, arguments, strings stderr must all contain, strings of which it must contain one);
# {pki} and {bad} stand for the test PKI and the folder of bad files.
BAD_CASES = [
    ("missing-trusted-root", ["--trusted-root", MISSING], [MISSING], []),
    ("missing-auth-cert", ["--auth-cert", MISSING], [MISSING], []),
    ("missing-client-cert",
     ["--well-known-ca", "--client-cert", MISSING, "--client-key", "{pki}/client.key"],
     [MISSING], []),
    ("missing-password-file", ["--trusted-root", "{pki}/root.pfx", "--password-file", MISSING],
     [MISSING], []),
    ("file-without-certificate", ["--trusted-root", "{bad}/notes.txt"], ["{bad}/notes.txt"], []),
    ("empty-file", ["--trusted-root", "{bad}/empty.pem"], ["{bad}/empty.pem"], []),
    ("garbage-der", ["--trusted-root", "{bad}/garbage.cer"], ["{bad}/garbage.cer"], []),
    ("private-key-as-trusted-root", ["--trusted-root", "{pki}/app.key"], ["{pki}/app.key"], []),
    ("private-key-as-auth-cert", ["--auth-cert", "{pki}/app.key"], ["{pki}/app.key"], []),
    ("pfx-wrong-password",
     ["--trusted-root", "{pki}/root.pfx", "--password-file", "{bad}/wrong-password.txt"],
     [], ["{pki}/root.pfx", "--password-file", "password"]),
    ("client-cert-without-key", ["--client-cert", "{pki}/client.pem"], [],
     ["--client-key", "{pki}/client.pem"]),
    ("conflicting-trusted-root-auth-cert",
     ["--trusted-root", "{pki}/root.pem", "--auth-cert", "{pki}/app.pem"],
     ["--trusted-root", "--auth-cert"], []),
    ("conflicting-trusted-root-well-known", ["--trusted-root", "{pki}/root.pem", "--well-known-ca"],
     ["--trusted-root", "--well-known-ca"], []),
    ("unknown-option", ["--bogus-option"], ["--bogus-option"], []),
    ("timeout-not-a-number", ["--timeout", "abc"], [], ["--timeout", "abc"]),
    ("timeout-negative", ["--timeout", "-1"], [], ["--timeout", "-1"]),
    ("match-status-malformed", ["--match-status", "abc"], [], ["--match-status", "abc"]),
    ("host-without-value", ["--host"], ["--host"], []),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input(case, pki, bad_files):
    _, args, all_of, any_of = case

    def sub(items):
        return [str(x).format(pki=pki, bad=bad_files) for x in items]

    # --host must stay the last argument in its case ("--host" without a value).
    res = run_gatehouse("probe", URL, "--timeout", "2", "--json", *sub(args))
    assert_usage_error(res, sub(all_of), sub(any_of))


@pytest.mark.parametrize("url", [
    "https://",
    "https://[::1/",
    "https://127.0.0.1:abc/",
    "not a url",
    "https://127.0.0.1:70000/",
    "https://app.example.com:99999/",
])
def test_malformed_url(url):
    res = run_gatehouse("probe", url, "--timeout", "2", "--json")
    if "70000" in url:
        assert_usage_error(res, all_of=["70000"])
    elif "99999" in url:
        assert_usage_error(res, all_of=["99999"])
    else:
        assert_usage_error(res, all_of=[url])


def test_missing_url():
    res = run_gatehouse("probe", "--json")
    assert_usage_error(res, any_of=["URL", "url"])


def test_probe_help():
    res = run_gatehouse("probe", "--help")
    assert res.rc == 0, res
    for opt in ("--host", "--no-sni", "--trusted-root", "--well-known-ca", "--auth-cert",
                "--password-file", "--client-cert", "--client-key", "--path", "--match-status",
                "--match-body", "--timeout", "--json"):
        assert opt in res.stdout, (opt, res)


def test_top_level_help_and_version():
    res = run_gatehouse("--help")
    assert res.rc == 0 and "probe" in res.stdout, res
    res = run_gatehouse("--version")
    assert res.rc == 0 and res.stdout.strip(), res
    assert len(res.stdout.strip().splitlines()) == 1, res
