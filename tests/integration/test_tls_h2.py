# SPDX-License-Identifier: Apache-2.0
"""mod_dpop over HTTPS (mod_ssl) and HTTP/2 (mod_http2), issue 17 item 2.

httpd runs with a throwaway CA and server certificate made at test time
(harness TLS: openssl CLI, SAN IP:127.0.0.1 + DNS:localhost) and
`Protocols h2 http/1.1`.  HTTP/1.1 over TLS goes through Python's
http.client/ssl; HTTP/2 through `curl --http2`, several requests chained on
ONE connection (curl's `next`, connection reused: num_connects adds up to 1)
or multiplexed as concurrent streams (`parallel`).  Every h2 answer is checked
to be h2 from both ends: curl's negotiated http_version is "2" and the
backend saw SERVER_PROTOCOL=HTTP/2.0 with HTTP2=on.

What these tests prove:
- DPoP over TLS with HTTP/1.1 and with h2 -> 200; the htu is https (a proof
  made for the http:// URL of the same port is htu_mismatch);
- h2 runs each stream on a secondary connection: replay detection holds
  on one connection (serial and concurrent streams) and across protocols;
  the nonce challenge and the retries with the nonce work over h2; `Require
  dpop-policy` allows and denies stream by stream on one connection; two DPoP
  header fields in one h2 request (mod_http2 merges them into one
  comma-joined value) are multiple_proofs;
- `DPoPExternalURL https://host` (default port elided): a proof for
  https://host/path (or https://host:443/path) is accepted although httpd
  listens on a high port; a proof for the real 127.0.0.1:port URL is not.
The httpd fixture checks on teardown that no token, proof or private key
(the TLS keys included) reached a log, and that no child crashed.
"""
import os
import shutil
import subprocess

import pytest

from harness import MODULES, Client, expect_backend, reason_logged

NONCE_SECRET = b"tls-h2-nonce-secret-0123456789abcdef"

LOCATIONS = """
<Location /api/nonce>
    DPoPNonce On
    DPoPNonceLifetime 60
</Location>
<Location /api/ext>
    DPoPExternalURL https://api.example.test
</Location>
<Location /api/pol>
    Require dpop-policy
</Location>
"""

POLICY = """version: 1
clients:
  - name: billing-agent
    jkt: %s
    allow:
      - { methods: [GET, POST], paths: ["/api/pol/invoices/**"] }
"""


def _need_tls_h2():
    for mod in ("mod_ssl.so", "mod_http2.so"):
        if not os.path.exists(os.path.join(MODULES, mod)):
            pytest.skip("%s not in %s (Debian apache2 ships it)" % (mod, MODULES))
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI missing (Debian openssl)")
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl missing (scripts/deps.sh installs it)")
    if "HTTP2" not in subprocess.run([curl, "-V"], capture_output=True, text=True).stdout:
        pytest.skip("this curl has no HTTP2 feature (curl -V)")


@pytest.fixture
def srv(env, httpd):
    _need_tls_h2()
    secret = env.path("secrets-tls", "nonce.key")
    with open(secret, "wb") as f:
        f.write(NONCE_SECRET)
    os.chmod(secret, 0o600)
    allowed = Client(env)
    pol = env.path("policy-tls-%d" % env.next_id(), "policy.yaml")
    os.chmod(os.path.dirname(pol), 0o755)
    with open(pol, "w") as f:
        f.write(POLICY % allowed.key.jkt)
    os.chmod(pol, 0o644)
    h = httpd(tls=True, server_conf='DPoPNonceSecret "%s"\nDPoPPolicyFile "%s"' % (secret, pol),
              extra_conf=LOCATIONS)
    return h, allowed


def req(env, h, client, path, method="GET", htu=None, nonce=None, proof=None):
    """One h2 request dict with a fresh proof for h.url(path) (or htu)."""
    if proof is None:
        proof = env.proof(client.key, method, htu or h.url(path), token=client.token, nonce=nonce)
    return {"method": method, "path": path, "token": client.token, "proof": proof}


def expect_h2(responses, connections=1):
    """Every answer was h2, and all of them shared `connections` connections."""
    assert [r.http_version for r in responses] == ["2"] * len(responses), responses
    assert sum(r.num_connects for r in responses) == connections, \
        [r.num_connects for r in responses]


def error_of(r):
    wa = r.header("WWW-Authenticate") or ""
    for part in wa.split(", "):
        if part.split("=", 1)[0].split()[-1:] == ["error"]:
            return part.split("=", 1)[1].strip('"')
    return None


def test_http11_over_tls_is_200_and_htu_is_https(env, srv):
    h, _ = srv
    c = Client(env)
    be = expect_backend(c.call(h, "GET", "/api/x"), DPOP_JKT=c.key.jkt, HTTPS="on",
                        SERVER_PROTOCOL="HTTP/1.1")
    assert be["REMOTE_USER"] == "alice"
    # the same port, but the proof names http://: the scheme is part of htu
    plain = "http://127.0.0.1:%d/api/x" % h.port
    r = h.request("GET", "/api/x", token=c.token,
                  proof=env.proof(c.key, "GET", plain, token=c.token))
    assert r.status == 401 and error_of(r) == "invalid_dpop_proof"
    assert reason_logged(h, "htu_mismatch")


def test_h2_several_requests_on_one_connection_are_200(env, srv):
    h, _ = srv
    c = Client(env)
    rs = h.h2([req(env, h, c, "/api/a/%d" % i) for i in range(4)]
              + [req(env, h, c, "/api/post", method="POST")])
    expect_h2(rs)
    for r in rs:
        expect_backend(r, DPOP_JKT=c.key.jkt, SERVER_PROTOCOL="HTTP/2.0", HTTP2="on",
                       HTTPS="on")
    assert rs[-1].backend_env()["REQUEST_METHOD"] == "POST"
    assert h.access_log().count(' HTTP/2.0" 200 ') == 5


def test_h2_concurrent_streams_on_one_connection_are_200(env, srv):
    h, _ = srv
    clients = [Client(env) for _ in range(3)]
    rs = h.h2([req(env, h, clients[i % 3], "/api/m/%d" % i) for i in range(9)], parallel=True)
    expect_h2(rs)
    for i, r in enumerate(rs):
        # each stream is answered for its own client, never a neighbour's
        expect_backend(r, DPOP_JKT=clients[i % 3].key.jkt, SERVER_PROTOCOL="HTTP/2.0")


def test_h2_replay_on_one_connection_and_across_protocols(env, srv):
    h, _ = srv
    c = Client(env)
    once = req(env, h, c, "/api/r")
    rs = h.h2([once, dict(once), req(env, h, c, "/api/r")])
    expect_h2(rs)
    assert [r.status for r in rs] == [200, 401, 200]
    assert error_of(rs[1]) == "invalid_dpop_proof"
    assert reason_logged(h, "replay")
    # a proof first used over HTTP/1.1 is a replay over h2, and the reverse
    p11 = env.proof(c.key, "GET", h.url("/api/r"), token=c.token)
    assert h.request("GET", "/api/r", token=c.token, proof=p11).status == 200
    p2 = env.proof(c.key, "GET", h.url("/api/r"), token=c.token)
    rs = h.h2([req(env, h, c, "/api/r", proof=p11), req(env, h, c, "/api/r", proof=p2)])
    assert [r.status for r in rs] == [401, 200]
    assert h.request("GET", "/api/r", token=c.token, proof=p2).status == 401


def test_h2_replay_in_concurrent_streams_accepts_exactly_one(env, srv):
    h, _ = srv
    c = Client(env)
    once = req(env, h, c, "/api/race")
    rs = h.h2([dict(once) for _ in range(6)], parallel=True)
    expect_h2(rs)
    assert sorted(r.status for r in rs) == [200] + [401] * 5


def test_h2_nonce_challenge_then_retries(env, srv):
    h, _ = srv
    c = Client(env)
    first = h.h2([req(env, h, c, "/api/nonce/a")])[0]
    assert first.status == 401 and error_of(first) == "use_dpop_nonce"
    nonce = first.header("DPoP-Nonce")
    assert nonce
    env.remember(nonce)
    rs = h.h2([req(env, h, c, "/api/nonce/a", nonce=nonce),
               req(env, h, c, "/api/nonce/b", nonce=nonce),
               req(env, h, c, "/api/nonce/c"),  # no nonce: challenged again
               req(env, h, c, "/api/nonce/d", nonce=nonce + "x")])
    expect_h2(rs)
    assert [r.status for r in rs] == [200, 200, 401, 401]
    assert [error_of(r) for r in rs[2:]] == ["use_dpop_nonce", "use_dpop_nonce"]
    assert rs[2].header("DPoP-Nonce") and rs[3].header("DPoP-Nonce")
    for r in rs[:2]:
        expect_backend(r, SERVER_PROTOCOL="HTTP/2.0")


def test_h2_policy_allows_and_denies_stream_by_stream(env, srv):
    h, allowed = srv
    stranger = Client(env)
    rs = h.h2([req(env, h, allowed, "/api/pol/invoices/1"),
               req(env, h, allowed, "/api/pol/invoices/1", method="DELETE"),
               req(env, h, stranger, "/api/pol/invoices/1"),
               req(env, h, allowed, "/api/pol/admin"),
               req(env, h, allowed, "/api/pol/invoices/2", method="POST")])
    expect_h2(rs)
    assert [r.status for r in rs] == [200, 403, 403, 403, 200]
    assert {error_of(r) for r in rs[1:4]} == {"insufficient_scope"}
    for r in (rs[0], rs[4]):
        expect_backend(r, DPOP_CLIENT="billing-agent", DPOP_JKT=allowed.key.jkt,
                       SERVER_PROTOCOL="HTTP/2.0")
    assert reason_logged(h, "policy_denied")


def test_h2_two_dpop_header_fields_are_multiple_proofs(env, srv):
    h, _ = srv
    c = Client(env)
    two = [env.proof(c.key, "GET", h.url("/api/mp"), token=c.token) for _ in range(2)]
    rs = h.h2([req(env, h, c, "/api/mp", proof=two), req(env, h, c, "/api/mp")])
    expect_h2(rs)
    assert [r.status for r in rs] == [401, 200]
    assert error_of(rs[0]) == "invalid_dpop_proof"
    assert reason_logged(h, "multiple_proofs")
    # the same over HTTP/1.1 (two header lines), for comparison
    r = h.request("GET", "/api/mp", token=c.token,
                  proof=[env.proof(c.key, "GET", h.url("/api/mp"), token=c.token)
                         for _ in range(2)])
    assert r.status == 401 and error_of(r) == "invalid_dpop_proof"


def test_external_https_url_with_elided_default_port(env, srv):
    h, _ = srv
    c = Client(env)
    public = "https://api.example.test/api/ext/x"
    rs = h.h2([req(env, h, c, "/api/ext/x", htu=public),
               req(env, h, c, "/api/ext/x", htu="https://api.example.test:443/api/ext/x"),
               req(env, h, c, "/api/ext/x"),  # the listener's own URL: not what clients see
               req(env, h, c, "/api/ext/x", htu="http://api.example.test/api/ext/x")])
    expect_h2(rs)
    assert [r.status for r in rs] == [200, 200, 401, 401]
    assert reason_logged(h, "htu_mismatch")
    expect_backend(c.call(h, "GET", "/api/ext/x", htu=public), SERVER_PROTOCOL="HTTP/1.1")
