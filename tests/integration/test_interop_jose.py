# SPDX-License-Identifier: Apache-2.0
"""Interoperability with an independent DPoP/JOSE implementation, the npm
`jose` library: tests/interop/interop.mjs checks that jose verifies
dpopctl-made proofs (typ, alg, htm, htu, iat, ath, RFC 7638 thumbprint) and
that dpopctl verify accepts jose-made proofs, for ES256 ES384 ES512 PS256
RS256 EdDSA.  Needs no httpd.  DPOP_BUILD points at the build directory.

The pinned dependency (package-lock.json) is installed with `npm ci` into
tests/interop/node_modules when missing.  Skipped, with the reason, only when
node or npm are absent (Debian: apt-get install nodejs npm).
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("DPOP_BUILD", os.path.join(TOP, "build-release"))
DPOPCTL = os.path.join(BUILD, "core", "dpopctl")
INTEROP = os.path.join(TOP, "tests", "interop")


@pytest.fixture(scope="module")
def node():
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if not node_bin or not npm_bin:
        pytest.skip("node/npm not installed (apt-get install nodejs npm): "
                    "the jose interoperability test needs them")
    if not os.access(DPOPCTL, os.X_OK):
        pytest.skip("dpopctl not built at %s (set DPOP_BUILD)" % DPOPCTL)
    if not os.path.isdir(os.path.join(INTEROP, "node_modules", "jose")):
        r = subprocess.run([npm_bin, "ci", "--no-audit", "--no-fund"], cwd=INTEROP,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "npm ci failed:\n" + r.stdout + r.stderr
    return node_bin


def test_jose_interop(node):
    with tempfile.TemporaryDirectory(prefix="dpop-interop-") as work:
        r = subprocess.run([node, os.path.join(INTEROP, "interop.mjs"), DPOPCTL, work],
                           capture_output=True, text=True, timeout=600)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    failed = [l for l in lines if not l.get("ok") and not l.get("summary")]
    assert r.returncode == 0 and not failed, (failed, r.stderr)
    checks = {(l["dir"], l.get("alg")) for l in lines if l.get("ok")}
    for alg in ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"):
        assert ("dpopctl->jose", alg) in checks
        assert ("jose->dpopctl", alg) in checks
    assert ("rfc7638", None) in checks
    assert lines[-1] == {"summary": True, "failures": 0}
