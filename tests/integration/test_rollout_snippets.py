# SPDX-License-Identifier: Apache-2.0
"""Every configuration snippet in docs/rollout.md is valid (issue 12 item 5).

What this proves: each fenced code block tagged ```apache in the rollout
guide, pasted into an httpd configuration with mod_dpop loaded, passes
`apache2 -t` ("Syntax OK"); each block tagged ```yaml is a policy that the
built `dpop-policy check` accepts (exit 0), and a policy with an empty allow
list draws the warning the guide promises. A guide without snippets fails.

How a snippet is checked: it becomes the `extra_conf` of the harness's
generated httpd.conf (tests/integration/harness.py: the test server's own
DPoPTokenJWKS/issuer/audience and <Location /api> come first, the snippet
after them, as a conf-enabled file would), with mod_proxy, mod_proxy_http
and mod_remoteip loaded in addition to the harness's modules (the proxy
snippet uses them).  The paths the guide uses are replaced by real files
first; nothing else in a snippet is changed:

    /etc/apache2/dpop/as-jwks.json  -> the session's AS JWK Set (env.as_jwks)
    /etc/apache2/dpop/policy.yaml   -> a valid policy written here
    /etc/apache2/dpop/nonce.key     -> 32 random bytes (not ending in a newline,
                                       which the module drops) written here (0600)
    /var/lib/mod_dpop/audit         -> <session>/rollout/audit (parent exists)
    /run/apache2/dpop-replay        -> <httpd root>/run/dpop-replay

`memcache:host:port` specs, `Listen 8080` and the `ProxyPass` backend are
left as written: `apache2 -t` parses and validates them without connecting
or binding.
"""
import os
import re
import subprocess

import pytest

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "rollout.md")
MODULES = os.environ.get("DPOP_APACHE_MODULES", "/usr/lib/apache2/modules")
EXTRA_MODULES = "\n".join(
    "LoadModule %s_module %s/mod_%s.so" % (m, MODULES, m)
    for m in ("proxy", "proxy_http", "remoteip"))

FENCE_OPEN = re.compile(r"^(\s*)```([A-Za-z0-9_+-]+)\s*$")
FENCE_CLOSE = re.compile(r"^\s*```\s*$")


def extract_blocks(text):
    """[(tag, first line number, body)] of every fenced block; an indented
    fence (inside a list item) loses its indentation."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent, tag, start = len(m.group(1)), m.group(2), i + 1
        body = []
        i += 1
        while i < len(lines) and not FENCE_CLOSE.match(lines[i]):
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line)
            i += 1
        assert i < len(lines), "docs/rollout.md:%d: unterminated ``` block" % start
        blocks.append((tag, start, "\n".join(body) + "\n"))
        i += 1
    return blocks


def _doc_blocks():
    try:
        with open(DOC, encoding="utf-8") as f:
            return extract_blocks(f.read())
    except FileNotFoundError:
        return []


BLOCKS = _doc_blocks()
APACHE = [(line, body) for tag, line, body in BLOCKS if tag == "apache"]
YAML = [(line, body) for tag, line, body in BLOCKS if tag == "yaml"]

POLICY = """version: 1
clients:
  - name: rollout-test
    jkt: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
    allow:
      - { methods: [GET], paths: ["/api/**"] }
"""


@pytest.fixture(scope="module")
def files(env):
    """The real files the guide's placeholder paths are replaced by."""
    policy = env.path("rollout", "policy.yaml")
    with open(policy, "w") as f:
        f.write(POLICY)
    os.chmod(policy, 0o644)
    nonce = env.path("rollout", "nonce.key")
    secret = os.urandom(32)
    while secret.endswith(b"\n"):  # a trailing newline is not part of the secret
        secret = os.urandom(32)
    with open(nonce, "wb") as f:
        f.write(secret)
    os.chmod(nonce, 0o600)
    audit_parent = os.path.dirname(env.path("rollout", "audit", "x"))
    os.chmod(audit_parent, 0o755)
    env.chown_for_httpd(audit_parent)
    return {
        "/etc/apache2/dpop/as-jwks.json": env.as_jwks,
        "/etc/apache2/dpop/policy.yaml": policy,
        "/etc/apache2/dpop/nonce.key": nonce,
        "/var/lib/mod_dpop/audit": os.path.join(audit_parent, "audit"),
    }


def substitute(snippet, files, h):
    out = snippet
    for doc_path, real in sorted(files.items(), key=lambda kv: -len(kv[0])):
        out = out.replace(doc_path, real)
    out = out.replace("/run/apache2/dpop-replay", os.path.join(h.root, "run", "dpop-replay"))
    return out


def test_rollout_guide_has_snippets():
    assert os.path.exists(DOC), "docs/rollout.md is missing"
    assert APACHE, "docs/rollout.md has no ```apache snippet"
    assert YAML, "docs/rollout.md has no ```yaml policy"


@pytest.mark.parametrize("line,snippet", APACHE, ids=["apache-line-%d" % l for l, _ in APACHE])
def test_apache_snippet_passes_configtest(env, files, line, snippet):
    h = env.httpd(extra_modules=EXTRA_MODULES)
    h.extra_conf = substitute(snippet, files, h)
    left = re.findall(r"/etc/apache2/dpop/\S*|/var/lib/mod_dpop\S*", h.extra_conf)
    assert not left, "docs/rollout.md:%d: path with no substitution: %s" % (line, left)
    rc, out = h.configtest()
    assert rc == 0 and "Syntax OK" in out, "docs/rollout.md:%d: apache2 -t failed:\n%s" % (line, out)


@pytest.mark.parametrize("line,policy", YAML, ids=["yaml-line-%d" % l for l, _ in YAML])
def test_yaml_policy_passes_check(env, line, policy):
    path = env.path("rollout", "policy-line-%d.yaml" % line)
    with open(path, "w") as f:
        f.write(policy)
    r = subprocess.run([env.tools.dpop_policy, "check", path], capture_output=True, text=True)
    assert r.returncode == 0, "docs/rollout.md:%d: dpop-policy check exit %d:\n%s" % (
        line, r.returncode, r.stderr)
    assert ": valid" in r.stdout, r.stdout
    if re.search(r"^\s*allow:\s*\[\]\s*$", policy, re.M):
        # the guide says check warns about a registered client that may call nothing
        assert ": warning: allow is empty" in r.stderr, r.stderr
    else:
        assert r.stderr == "", "docs/rollout.md:%d: unexpected output:\n%s" % (line, r.stderr)
