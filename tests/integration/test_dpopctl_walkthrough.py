# SPDX-License-Identifier: Apache-2.0
"""docs/dpopctl.md "Calling a protected API from a shell" works as written
(issue 20 item 1).

The one ```sh block of that section is extracted from the markdown and run
with bash (-e -u -o pipefail) in an empty directory against a real httpd
(tests/integration/harness.py: its <Location /api> requires a DPoP-bound
token, the backend is a CGI echoing the request's DPOP_* environment).
Only the placeholders the section names are replaced:

    https://api.example.com/api/invoices -> this httpd's http://127.0.0.1:PORT/api/invoices
    https://as.example.com               -> the server's DPoPTokenIssuer
    https://api.example.com              -> the server's DPoPTokenAudience
    as.jwk                               -> the test AS's private key
    as-jwks.json                         -> its public JWK Set (DPoPTokenJWKS)

dpopctl and dpop_testtoken come from $DPOP_BUILD (first on PATH).  The test
asserts what the section promises: the curl line prints 200 and the API's
answer lands in response.txt (here: the backend saw the client key's jkt),
and no token, proof or key reached a log.
"""
import os
import re
import subprocess

import pytest

from harness import AUDIENCE, ISSUER

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dpopctl.md")
SECTION = "## Calling a protected API from a shell"


def walkthrough():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    assert SECTION in text, "docs/dpopctl.md has no '%s' section" % SECTION
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```\s*$", body, re.M | re.S)
    assert len(blocks) == 1, "the section should hold exactly one ```sh block"
    return blocks[0]


def substitute(script, h, env):
    pairs = [("https://api.example.com/api/invoices", h.url("/api/invoices")),
             ("https://as.example.com", ISSUER),
             ("https://api.example.com", AUDIENCE),
             ("as-jwks.json", env.as_jwks)]
    for doc, real in pairs:
        assert doc in script, "placeholder %s no longer in the walk-through" % doc
        script = script.replace(doc, real)
    assert re.search(r"(?<![\w./-])as\.jwk\b", script)
    script = re.sub(r"(?<![\w./-])as\.jwk\b", env.as_key.path, script)
    left = re.findall(r"https?://[\w.-]*example\.com\S*", script)
    assert not left, "placeholders left: %s" % left
    return script


def test_walkthrough_runs_as_written(env, httpd, tmp_path):
    h = httpd()
    script = substitute(walkthrough(), h, env)
    path = os.pathsep.join([os.path.join(env.tools.build, "core"),
                            os.path.join(env.tools.build, "tests", "tools"),
                            os.environ.get("PATH", "/usr/bin:/bin")])
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PATH=path))
    token_file = tmp_path / "token.txt"
    if token_file.exists():
        env.remember(token_file.read_text().strip())
    assert r.returncode == 0, "walk-through failed (%d):\n%s\n%s" % (r.returncode, r.stdout,
                                                                     r.stderr)
    lines = r.stdout.splitlines()
    assert lines[-1] == "200", r.stdout
    # step 2's `dpopctl token` check says the token is valid and bound
    assert '"valid":true' in r.stdout
    jkt = subprocess.run([env.tools.dpopctl, "thumbprint", str(tmp_path / "client.jwk")],
                         capture_output=True, text=True, check=True).stdout.strip()
    with open(str(tmp_path / "client.jwk")) as f:
        env.remember(re.search(r'"d":"([^"]+)"', f.read()).group(1))
    assert "DPOP_JKT=%s" % jkt in (tmp_path / "response.txt").read_text()
    # the token never was an argument: it is not in the script's text
    assert token_file.read_text().strip() not in script
