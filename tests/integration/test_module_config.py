# SPDX-License-Identifier: Apache-2.0
"""mod_dpop config-time validation with `apache2 -t` (issue 3 item 6).

What these tests prove: a bad JWKS file, an unknown or forbidden algorithm,
an unusable replay-cache spec, an unreadable or short nonce secret, bad
numbers/modes/URLs, server-only directives inside <Location>, a broken policy
file and DPoPNonce On without a secret all stop `apache2 -t` with a message
naming the directive and the problem; a good config says "Syntax OK".
"""
import os

import pytest


def conftest_of(env, **kw):
    h = env.httpd(**kw)
    return h.configtest()


def test_good_config_syntax_ok(env):
    rc, out = conftest_of(env)
    assert rc == 0, out
    assert "Syntax OK" in out


def _write(env, name, data, mode=0o644):
    p = env.path("cfg", name)
    with open(p, "w") as f:
        f.write(data)
    os.chmod(p, mode)
    return p


BAD = [
    # (id, server_conf, location_conf, expected substrings)
    ("jwks-not-json", 'DPoPTokenJWKS "{bad_json}"', "Require valid-user",
     ["DPoPTokenJWKS", "{bad_json}"]),
    ("jwks-missing", 'DPoPTokenJWKS "/nonexistent/jwks.json"', "Require valid-user",
     ["DPoPTokenJWKS", "/nonexistent/jwks.json"]),
    ("jwks-no-usable-key", 'DPoPTokenJWKS "{hmac_jwks}"', "Require valid-user",
     ["DPoPTokenJWKS"]),
    ("alg-unknown", "DPoPAlgorithms ES256 XS999", "Require valid-user",
     ["DPoPAlgorithms", "XS999"]),
    ("alg-hmac", "DPoPAlgorithms HS256", "Require valid-user", ["DPoPAlgorithms", "HS256"]),
    ("alg-none", "DPoPAlgorithms none", "Require valid-user", ["DPoPAlgorithms", "none"]),
    ("cache-unknown-type", "DPoPReplayCache foo:bar", "Require valid-user",
     ["DPoPReplayCache", "unknown cache type 'foo'"]),
    ("cache-shmcb-bad-size", 'DPoPReplayCache "shmcb:/tmp/x(abc)"', "Require valid-user",
     ["DPoPReplayCache"]),
    ("cache-memcache-empty", "DPoPReplayCache memcache:", "Require valid-user",
     ["DPoPReplayCache", "memcache"]),
    ("cache-memcache-bad-port", "DPoPReplayCache memcache:127.0.0.1:99999", "Require valid-user",
     ["DPoPReplayCache", "127.0.0.1:99999"]),
    ("nonce-secret-missing", 'DPoPNonceSecret "/nonexistent/secret"', "Require valid-user",
     ["DPoPNonceSecret", "/nonexistent/secret"]),
    ("nonce-secret-short", 'DPoPNonceSecret "{short_secret}"', "Require valid-user",
     ["DPoPNonceSecret", "{short_secret}"]),
    ("nonce-without-secret", "", "Require valid-user\nDPoPNonce On",
     ["DPoPNonce On", "DPoPNonceSecret"]),
    ("lifetime-nan", "DPoPProofLifetime soon", "Require valid-user",
     ["DPoPProofLifetime", "soon"]),
    ("skew-range", "DPoPClockSkew 999999", "Require valid-user", ["DPoPClockSkew", "out of range"]),
    ("maxsize-range", "DPoPMaxProofSize 10", "Require valid-user", ["DPoPMaxProofSize"]),
    ("mode-bad", "DPoPMode permissive", "Require valid-user", ["DPoPMode", "permissive"]),
    ("external-url-query", "DPoPExternalURL https://a.example/x?y=1", "Require valid-user",
     ["DPoPExternalURL"]),
    ("external-url-scheme", "DPoPExternalURL ftp://a.example/", "Require valid-user",
     ["DPoPExternalURL"]),
    ("cache-in-location", "", "Require valid-user\nDPoPReplayCache shmcb",
     ["DPoPReplayCache"]),
    ("audit-mapsize-bad", "DPoPAuditMapSize lots", "Require valid-user", ["DPoPAuditMapSize"]),
    ("audit-dir-parent-missing", "DPoPAuditLog /nonexistent/dir/audit", "Require valid-user",
     ["DPoPAuditLog", "/nonexistent/dir"]),
    ("policy-args", "", "Require dpop-policy extra", ["dpop-policy", "no arguments"]),
    ("issuer-empty", 'DPoPTokenIssuer ""', "Require valid-user",
     ["DPoPTokenIssuer takes one argument"]),
    ("audience-empty", "", 'Require valid-user\nDPoPTokenAudience ""',
     ["DPoPTokenAudience takes one argument"]),
    ("policy-in-location", "", 'Require valid-user\nDPoPPolicyFile "/x.yaml"',
     ["DPoPPolicyFile", "not allowed"]),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_configtest_rejects(env, case):
    cid, server_conf, location_conf, expect = case
    files = {
        "bad_json": _write(env, "bad.json", "{not json"),
        "hmac_jwks": _write(env, "hmac.json", '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}'),
        "short_secret": _write(env, "short.key", "tooshort", 0o600),
    }
    server_conf = server_conf.format(**files)
    expect = [e.format(**files) for e in expect]
    rc, out = conftest_of(env, server_conf=server_conf, location_conf=location_conf)
    assert rc != 0, (cid, out)
    assert "Syntax OK" not in out
    for e in expect:
        assert e in out, (cid, e, out)
    # config errors never print secrets or key material
    assert "c2VjcmV0" not in out


def test_configtest_broken_policy_positioned(env):
    pol = _write(env, "broken.yaml", "version: 1\nclients:\n  - name: a\n    jkt: nope\n    bogus: 1\n")
    rc, out = conftest_of(env, server_conf='DPoPPolicyFile "%s"' % pol,
                          location_conf="Require dpop-policy")
    assert rc != 0
    assert "DPoPPolicyFile" in out
    assert "%s:4:" % pol in out or "%s:5:" % pol in out, out


def test_configtest_accepts_every_directive(env):
    secret = _write(env, "ok.key", "x" * 40, 0o600)
    pol = _write(env, "ok.yaml", "version: 1\nclients: []\n")
    rc, out = conftest_of(env, server_conf="\n".join([
        'DPoPReplayCache "shmcb:%s/replay(2097152)"' % env.dir,
        'DPoPNonceSecret "%s"' % secret,
        'DPoPPolicyFile "%s"' % pol,
        'DPoPAuditLog "%s/audit-ok"' % env.dir,
        "DPoPAuditMapSize 64M",
        "DPoPAlgorithms ES256, EdDSA",
        "DPoPProofLifetime 120", "DPoPClockSkew 2", "DPoPMaxProofSize 4096",
        "DPoPNonceLifetime 30", "DPoPMode enforce", "DPoPAllowBearer Off",
        "DPoPExternalURL https://api.example.test/base",
    ]), location_conf="Require dpop-policy\nDPoPNonce On\nDPoPMode report-only")
    assert rc == 0, out
