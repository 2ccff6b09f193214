# SPDX-License-Identifier: Apache-2.0
"""The conventions all three tools follow (issue 20 item 2): `--version`
prints "NAME VERSION" (configure's PACKAGE_VERSION) and exits 0;
`COMMAND --help` prints that command's usage, only its options, and two or
three examples, exit 0; a file or store that cannot be used is named once,
with what is wrong in the user's words, exit 2 (the shared exit table).
The module's DPoPNonce message names the virtual host in words.  Needs the
built tools; the last test starts httpd's configtest.
"""
import os
import re
import subprocess

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("DPOP_BUILD", os.path.join(TOP, "build-release"))
TOOLS = {"dpopctl": os.path.join(BUILD, "core", "dpopctl"),
         "dpop-policy": os.path.join(BUILD, "policy", "dpop-policy"),
         "dpop-audit": os.path.join(BUILD, "logger", "dpop-audit")}
COMMANDS = {"dpopctl": ["verify", "thumbprint", "keygen", "proof", "token", "jws-verify",
                        "jwks", "hash-token"],
            "dpop-policy": ["check", "explain", "thumbprints"],
            "dpop-audit": ["list", "report", "alerts", "export", "verify", "prune"]}

pytestmark = pytest.mark.skipif(not all(os.access(p, os.X_OK) for p in TOOLS.values()),
                                reason="build the tools first (DPOP_BUILD=%s)" % BUILD)


def run(tool, *args, cwd=None):
    return subprocess.run([TOOLS[tool]] + list(args), capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def package_version():
    with open(os.path.join(BUILD, "config.h")) as f:
        return re.search(r'#define PACKAGE_VERSION "([^"]+)"', f.read()).group(1)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_version(tool):
    r = run(tool, "--version")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == "%s %s\n" % (tool, package_version())


@pytest.mark.parametrize("tool,cmd", [(t, c) for t in sorted(COMMANDS) for c in COMMANDS[t]])
def test_command_help_is_that_commands_with_examples(tool, cmd):
    r = run(tool, cmd, "--help")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("usage: ") and re.search(r"\b%s\b" % re.escape(cmd), first), first
    # only this command: no other command's usage line
    for other in COMMANDS[tool]:
        if other != cmd and other not in cmd:
            assert not re.search(r"^usage: .*\b%s %s\b" % (re.escape(tool), re.escape(other)),
                                 r.stdout, re.M), other
    examples = r.stdout.split("Examples:\n", 1)
    assert len(examples) == 2, "%s %s --help has no Examples section" % (tool, cmd)
    lines = [l for l in examples[1].splitlines() if re.match(r"^  \S", l)]
    assert 2 <= len(lines) <= 3, lines
    assert any(tool in l for l in lines)


def test_dpop_audit_list_help_names_lists_options():
    out = run("dpop-audit", "list", "--help").stdout
    for opt in ("--since", "--until", "--jkt", "--jti", "--token-hash", "--ip", "--reason",
                "--format", "--csv-raw", "--store"):
        assert opt in out
    for other in ("--before", "--follow", "--cursor", "--head"):
        assert other not in out


# ---- messages: the file named once, what is wrong in words, exit 2

def test_dpopctl_missing_file(tmp_path):
    r = run("dpopctl", "token", "--jwks", "missing.json", "x", cwd=str(tmp_path))
    assert r.returncode == 2 and r.stderr == "dpopctl: missing.json: no such file\n"


def test_dpop_policy_missing_file(tmp_path):
    r = run("dpop-policy", "check", "missing.yaml", cwd=str(tmp_path))
    assert r.returncode == 2 and r.stderr == "dpop-policy: missing.yaml: no such file\n"
    r = run("dpop-policy", "thumbprints", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr == "dpop-policy: %s: is a directory, not a file\n" % tmp_path


@pytest.mark.parametrize("cmd", [["list"], ["verify"], ["report", "--format", "md"],
                                 ["prune", "--before", "1d"]])
def test_dpop_audit_folder_that_is_not_a_store(tmp_path, cmd):
    folder = tmp_path / "x"
    folder.mkdir()
    r = run("dpop-audit", "--store", str(folder), *cmd)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "dpop-audit: %s: not an audit store (no data.mdb)\n" % folder
    assert not os.path.exists(str(folder / "data.mdb"))  # nothing created


def test_dpop_audit_missing_store_and_file(tmp_path):
    r = run("dpop-audit", "--store", str(tmp_path / "nope"), "list")
    assert r.returncode == 2 and r.stderr == "dpop-audit: %s: no such directory\n" % (
        tmp_path / "nope")
    f = tmp_path / "file"
    f.write_text("x")
    r = run("dpop-audit", "--store", str(f), "list")
    assert r.returncode == 2 and "not an audit store" in r.stderr and r.stderr.count(str(f)) == 1


# ---- the module names the server in words (issue 20 item 2)

@pytest.fixture(scope="module")
def env_module():
    from harness import Env
    e = Env.create()
    if e.tools.missing() or not os.path.exists("/usr/sbin/apache2"):
        e.cleanup()
        pytest.skip("mod_dpop or apache2 missing")
    e.setup_as()
    yield e
    e.cleanup()


def test_nonce_without_secret_names_the_main_server(env_module):
    h = env_module.httpd(location_conf="Require valid-user\nDPoPNonce On")
    rc, out = h.configtest()
    assert rc != 0
    assert ("DPoPNonce On is set in the main server config (ServerName 127.0.0.1), but no "
            "DPoPNonceSecret is set there: set DPoPNonceSecret to a file of 32 or more random "
            "bytes") in out, out
    assert "127.0.0.1:0" not in out


def test_nonce_without_secret_names_the_virtual_host(env_module):
    h = env_module.httpd(extra_conf="""
<VirtualHost 127.0.0.1:*>
    ServerName api.example.test
    <Location /v>
        AuthType DPoP
        Require valid-user
        DPoPNonce On
    </Location>
</VirtualHost>
""")
    rc, out = h.configtest()
    assert rc != 0
    m = re.search(r"DPoPNonce On is set in the <VirtualHost ([^>]*)> of api\.example\.test "
                  r"\((\S+):(\d+)\), but no DPoPNonceSecret", out)
    assert m, out
    assert m.group(1) == "127.0.0.1:*"
    assert m.group(2) == h.conf_path and int(m.group(3)) > 0
