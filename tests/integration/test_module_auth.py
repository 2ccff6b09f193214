# SPDX-License-Identifier: Apache-2.0
"""mod_dpop in a real httpd: AuthType DPoP end to end (issue 3).

What these tests prove:
- a valid DPoP request passes and the backend sees REMOTE_USER = sub,
  DPOP_JKT, DPOP_TOKEN_SUB, DPOP_TOKEN_CLIENT_ID, and never the DPoP proof or
  client-spoofed DPoP-*/X-DPoP-* headers;
- a request without credentials gets 401 + `WWW-Authenticate: DPoP algs=...`
  with no error attribute;
- every reason code a request can trigger gives the right status, the right
  WWW-Authenticate error and `reason=<code>` in the error log;
- HEAD/PATCH/PUT/DELETE/OPTIONS and an extension method work, htm is exact;
- DPoPAllowBearer, DPoPExternalURL, DPoPMode report-only, per-<Location>
  merging (DPoPAlgorithms in a nested Location);
- the conftest teardown checks no token/proof/private key reached any log.
"""
import base64
import hashlib
import hmac
import os
import struct
import time

import pytest

from harness import (ISSUER, AUDIENCE, BEARER_LOCATION, REPORT_ONLY_LOCATION, Client,
                     expect_backend, tamper)

ALL_ALGS = "ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"

LOCATIONS = BEARER_LOCATION + REPORT_ONLY_LOCATION + """
<Location /api/edonly>
    DPoPAlgorithms EdDSA
</Location>
<Location /api/ext>
    DPoPExternalURL https://public.example.test/prefix/
</Location>
<Location /api/nonce>
    DPoPNonce On
    DPoPNonceLifetime 60
</Location>
<Location /api/small>
    DPoPMaxProofSize 256
</Location>
"""

NONCE_SECRET = b"0123456789abcdef0123456789abcdef-integration"


@pytest.fixture(scope="module")
def srv(env):
    secret = env.path("secrets", "nonce.key")
    with open(secret, "wb") as f:
        f.write(NONCE_SECRET)
    os.chmod(secret, 0o600)  # read by root at config time only
    h = env.httpd(name="auth", server_conf='DPoPNonceSecret "%s"' % secret,
                  extra_conf=LOCATIONS)
    h.start()
    yield h
    h.stop()
    h.assert_no_secrets()


def log_mark(h):
    return len(h.error_log())


def new_log(h, mark):
    return h.error_log()[mark:]


def challenge_error(resp):
    wa = resp.header("WWW-Authenticate") or ""
    if 'error="' not in wa:
        return None
    return wa.split('error="', 1)[1].split('"', 1)[0]


def make_nonce(secret, bucket):
    b = struct.pack(">Q", bucket)
    tag = hmac.new(secret, b"mod_dpop nonce v1" + b, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(b + tag).decode().rstrip("=")


# ---------------------------------------------------------------- success


def test_valid_request_reaches_backend_with_identity(env, srv):
    c = Client(env, sub="alice", client_id="billing")
    r = c.call(srv, "GET", "/api/invoices?x=1", headers={
        "X-DPoP-JKT": "spoofed", "DPoP-JKT": "spoofed", "X_DPoP_Client": "spoofed"})
    # the proof is a credential: never forwarded; spoofable headers removed
    expect_backend(r, DPOP_JKT=c.key.jkt, REMOTE_USER="alice", AUTH_TYPE="DPoP",
                   DPOP_TOKEN_SUB="alice", DPOP_TOKEN_CLIENT_ID="billing", HTTP_DPOP="<unset>",
                   HTTP_X_DPOP_JKT="<unset>", HTTP_DPOP_JKT="<unset>")
    assert r.header("X-Backend-JKT") == c.key.jkt
    assert r.header("WWW-Authenticate") is None


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "PS256"])
def test_valid_request_each_key_type(env, srv, alg):
    c = Client(env, key=env.client_key(alg))
    r = c.call(srv, "POST", "/api/orders", body="{}")
    assert r.status == 200, r
    assert r.backend_env()["DPOP_JKT"] == c.key.jkt


def test_no_credentials_gives_plain_challenge(srv):
    mark = log_mark(srv)
    r = srv.request("GET", "/api/x")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'DPoP algs="%s"' % ALL_ALGS
    assert "error=" not in r.header("WWW-Authenticate")
    assert "no credentials" in new_log(srv, mark)


def test_no_credentials_challenge_with_nonce_is_not_cacheable(srv):
    """Where nonces are on, even the plain challenge carries a DPoP-Nonce
    (RFC 9449 §8): it must not be stored by caches (Cache-Control: no-store),
    like every other challenge."""
    r = srv.request("GET", "/api/nonce/x")
    assert r.status == 401
    assert "error=" not in r.header("WWW-Authenticate")
    assert r.header("DPoP-Nonce") and len(r.header("DPoP-Nonce")) == 32
    assert r.header("Cache-Control") == "no-store"
    r = srv.request("GET", "/api/x")
    assert r.header("DPoP-Nonce") is None and r.header("Cache-Control") == "no-store"


def test_header_over_httpd_limit_never_reaches_module(env, srv):
    """httpd's LimitRequestFieldSize (8190) answers 400 before any module
    runs, so the default DPoPMaxProofSize 8192 is a second line."""
    c = Client(env)
    r = srv.request("GET", "/api/x", token=c.token, proof="a" * 9000)
    assert r.status == 400


def test_log_injection_escaped(env, srv):
    """r->uri is percent-decoded: a %0a must not start a new log line."""
    c = Client(env)
    r = c.call(srv, "GET", "/api/x%0aFORGED-LINE%0d", htu=srv.url("/api/other"))
    assert r.status == 401
    assert srv.wait_log("reason=htu_mismatch ")
    assert not any(l.startswith("FORGED-LINE") for l in srv.error_log().splitlines())


def test_unprotected_location_untouched(srv):
    r = srv.request("GET", "/open/x")
    assert r.status == 200
    assert r.backend_env()["DPOP_JKT"] == "<unset>"


# ---------------------------------------------------------------- methods


@pytest.mark.parametrize("method", ["HEAD", "PATCH", "PUT", "DELETE", "OPTIONS", "FOOBAR"])
def test_methods_beyond_get_post(env, srv, method):
    c = Client(env)
    r = c.call(srv, method, "/api/items/7", body="x" if method in ("PATCH", "PUT") else None)
    assert r.status == 200, (method, r)
    if method == "HEAD":
        assert r.body == b""
    assert r.header("X-Backend-JKT") == c.key.jkt


def test_method_compared_exactly(env, srv):
    c = Client(env)
    # dpopctl proof refuses "get" (issue 20 item 1): sign the claims directly
    header, payload = env.proof_claims(c.key, "get", srv.url("/api/x"), token=c.token)
    proof = env.craft(c.key, header, payload)
    r = srv.request("GET", "/api/x", token=c.token, proof=proof)
    assert r.status == 401 and challenge_error(r) == "invalid_dpop_proof"
    assert "reason=htm_mismatch " in srv.error_log()


# ---------------------------------------------------------------- reasons


def _std(env, srv, c, path="/api/x", method="GET", **kw):
    return env.proof(c.key, method, srv.url(path), token=c.token, **kw)


def case_missing_proof(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token)


def case_multiple_proofs_two_headers(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, proof=[_std(env, srv, c), _std(env, srv, c)])


def case_multiple_proofs_comma(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token,
                       proof=_std(env, srv, c) + ", " + _std(env, srv, c))


def case_too_large(env, srv, c):
    # garbage of any size: the size cap comes before parsing
    return srv.request("GET", "/api/small/x", token=c.token, proof="a" * 4000)


def case_too_large_configured(env, srv, c):
    return srv.request("GET", "/api/small/x", token=c.token, proof=_std(env, srv, c, "/api/small/x"))


def case_malformed(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, proof="not-a-jws")


def case_malformed_json(env, srv, c):
    bad = base64.urlsafe_b64encode(b"{nope").decode().rstrip("=")
    return srv.request("GET", "/api/x", token=c.token, proof="%s.%s.AAAA" % (bad, bad))


def _craft(env, srv, c, hdr=None, pay=None, drop=(), path="/api/x", key=None):
    h, p = env.proof_claims(c.key, "GET", srv.url(path), token=c.token)
    h.update(hdr or {})
    p.update(pay or {})
    for k in drop:
        h.pop(k, None)
        p.pop(k, None)
    return srv.request("GET", path, token=c.token, proof=env.craft(key or c.key, h, p))


def case_bad_typ(env, srv, c):
    return _craft(env, srv, c, hdr={"typ": "JWT"})


def case_bad_alg_not_allowed(env, srv, c):
    return srv.request("GET", "/api/edonly/x", token=c.token, proof=_std(env, srv, c, "/api/edonly/x"))


def case_bad_alg_none(env, srv, c):
    return _craft(env, srv, c, hdr={"alg": "none"})


def case_bad_alg_none_unsigned(env, srv, c):
    # issue 10: "header.payload." with alg none in any letter case is bad_alg
    # (as dpopctl verify says), not malformed
    h, p = env.proof_claims(c.key, "GET", srv.url("/api/x"), token=c.token)
    h["alg"] = "NONE"
    proof = env.craft(c.key, h, p).rsplit(".", 1)[0] + "."
    return srv.request("GET", "/api/x", token=c.token, proof=env.remember(proof))


def _craft_raw_payload(env, srv, c, payload_text, hdr=None):
    """A proof whose payload segment is exactly payload_text (JSON that the
    test tool could not build: numbers no int64 or double holds)."""
    import json
    h, _ = env.proof_claims(c.key, "GET", srv.url("/api/x"), token=c.token)
    h.update(hdr or {})
    seg = base64.urlsafe_b64encode(payload_text.encode()).decode().rstrip("=")
    proof = env.tools.run(env.tools.testtoken, "--key", c.key.path, "--jws-header",
                          json.dumps(h), "--jws-payload-b64", seg).stdout.strip()
    return srv.request("GET", "/api/x", token=c.token, proof=env.remember(proof))


def _claims_text(env, srv, c, iat_text):
    _, p = env.proof_claims(c.key, "GET", srv.url("/api/x"), token=c.token)
    return '{"jti":"%s","htm":"GET","htu":"%s","iat":%s,"ath":"%s"}' % (
        p["jti"], p["htu"], iat_text, p["ath"])


def case_bad_claim_iat_1e309(env, srv, c):
    return _craft_raw_payload(env, srv, c, _claims_text(env, srv, c, "1e309"))


def case_bad_claim_iat_2p63(env, srv, c):
    return _craft_raw_payload(env, srv, c, _claims_text(env, srv, c, "9223372036854775808"))


def case_bad_claim_crit(env, srv, c):
    # DESIGN.md's reason table: "bad_claim ... unknown crit"
    return _craft(env, srv, c, hdr={"crit": ["exp"], "exp": 1})


def case_bad_jwk(env, srv, c):
    return _craft(env, srv, c, hdr={"jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}})


def case_private_key_in_jwk(env, srv, c):
    import json
    with open(c.key.path) as f:
        priv = json.load(f)
    return _craft(env, srv, c, hdr={"jwk": priv})


def case_bad_signature(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, proof=env.remember(tamper(_std(env, srv, c))))


def case_missing_claim(env, srv, c):
    return _craft(env, srv, c, drop=("jti",))


def case_bad_claim(env, srv, c):
    return _craft(env, srv, c, pay={"iat": "yesterday"})


def case_htm_mismatch(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, proof=_std(env, srv, c, method="POST"))


def case_htu_mismatch(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, proof=_std(env, srv, c, path="/api/y"))


def case_htu_other_port(env, srv, c):
    p = env.proof(c.key, "GET", "http://127.0.0.1:1/api/x", token=c.token)
    return srv.request("GET", "/api/x", token=c.token, proof=p)


def case_iat_too_old(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, proof=_std(env, srv, c, iat=time.time() - 1000))


def case_iat_in_future(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, proof=_std(env, srv, c, iat=time.time() + 1000))


def case_replay(env, srv, c):
    p = _std(env, srv, c)
    first = srv.request("GET", "/api/x", token=c.token, proof=p)
    assert first.status == 200
    return srv.request("GET", "/api/x", token=c.token, proof=p)


def case_ath_missing(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token,
                       proof=env.proof(c.key, "GET", srv.url("/api/x")))


def case_ath_mismatch(env, srv, c):
    other = env.token(jkt=c.key.jkt, sub="mallory")
    return srv.request("GET", "/api/x", token=c.token,
                       proof=env.proof(c.key, "GET", srv.url("/api/x"), token=other))


def case_nonce_missing(env, srv, c):
    return srv.request("GET", "/api/nonce/x", token=c.token, proof=_std(env, srv, c, "/api/nonce/x"))


def case_nonce_invalid(env, srv, c):
    return srv.request("GET", "/api/nonce/x", token=c.token,
                       proof=_std(env, srv, c, "/api/nonce/x", nonce="bogus-nonce-value"))


def case_missing_token(env, srv, c):
    return srv.request("GET", "/api/x", proof=_std(env, srv, c))


def case_token_invalid_signature(env, srv, c):
    bad = env.remember(tamper(c.token))
    return srv.request("GET", "/api/x", token=bad,
                       proof=env.proof(c.key, "GET", srv.url("/api/x"), token=bad))


def case_token_invalid_expired(env, srv, c):
    t = env.token(jkt=c.key.jkt, exp=time.time() - 600)
    return srv.request("GET", "/api/x", token=t, proof=env.proof(c.key, "GET", srv.url("/api/x"), token=t))


def case_token_invalid_issuer(env, srv, c):
    t = env.token(jkt=c.key.jkt, iss="https://evil.example")
    return srv.request("GET", "/api/x", token=t, proof=env.proof(c.key, "GET", srv.url("/api/x"), token=t))


def case_token_invalid_audience(env, srv, c):
    t = env.token(jkt=c.key.jkt, aud="https://other.example")
    return srv.request("GET", "/api/x", token=t, proof=env.proof(c.key, "GET", srv.url("/api/x"), token=t))


def case_token_invalid_foreign_key(env, srv, c):
    rogue = env.keygen("ES256")
    t = env.token(jkt=c.key.jkt, key=rogue)
    return srv.request("GET", "/api/x", token=t, proof=env.proof(c.key, "GET", srv.url("/api/x"), token=t))


def case_token_unbound(env, srv, c):
    t = env.token(jkt=None)
    return srv.request("GET", "/api/x", token=t, proof=env.proof(c.key, "GET", srv.url("/api/x"), token=t))


def case_jkt_mismatch(env, srv, c):
    other = env.client_key("ES256")
    return srv.request("GET", "/api/x", token=c.token,
                       proof=env.proof(other, "GET", srv.url("/api/x"), token=c.token))


def case_bearer_downgrade(env, srv, c):
    return srv.request("GET", "/api/x", token=c.token, scheme="Bearer")


def case_bearer_downgrade_even_when_allowed(env, srv, c):
    return srv.request("GET", "/api/bearer/x", token=c.token, scheme="Bearer")


def case_bearer_unbound_not_allowed(env, srv, c):
    return srv.request("GET", "/api/x", token=env.token(jkt=None), scheme="Bearer")


REASON_CASES = [
    ("missing_proof", "invalid_dpop_proof", case_missing_proof),
    ("multiple_proofs", "invalid_dpop_proof", case_multiple_proofs_two_headers),
    ("multiple_proofs", "invalid_dpop_proof", case_multiple_proofs_comma),
    ("too_large", "invalid_dpop_proof", case_too_large),
    ("too_large", "invalid_dpop_proof", case_too_large_configured),
    ("malformed", "invalid_dpop_proof", case_malformed),
    ("malformed", "invalid_dpop_proof", case_malformed_json),
    ("bad_typ", "invalid_dpop_proof", case_bad_typ),
    ("bad_alg", "invalid_dpop_proof", case_bad_alg_not_allowed),
    ("bad_alg", "invalid_dpop_proof", case_bad_alg_none),
    ("bad_alg", "invalid_dpop_proof", case_bad_alg_none_unsigned),
    ("bad_jwk", "invalid_dpop_proof", case_bad_jwk),
    ("private_key_in_jwk", "invalid_dpop_proof", case_private_key_in_jwk),
    ("bad_signature", "invalid_dpop_proof", case_bad_signature),
    ("missing_claim", "invalid_dpop_proof", case_missing_claim),
    ("bad_claim", "invalid_dpop_proof", case_bad_claim),
    ("bad_claim", "invalid_dpop_proof", case_bad_claim_iat_1e309),
    ("bad_claim", "invalid_dpop_proof", case_bad_claim_iat_2p63),
    ("bad_claim", "invalid_dpop_proof", case_bad_claim_crit),
    ("htm_mismatch", "invalid_dpop_proof", case_htm_mismatch),
    ("htu_mismatch", "invalid_dpop_proof", case_htu_mismatch),
    ("htu_mismatch", "invalid_dpop_proof", case_htu_other_port),
    ("iat_too_old", "invalid_dpop_proof", case_iat_too_old),
    ("iat_in_future", "invalid_dpop_proof", case_iat_in_future),
    ("replay", "invalid_dpop_proof", case_replay),
    ("ath_missing", "invalid_dpop_proof", case_ath_missing),
    ("ath_mismatch", "invalid_dpop_proof", case_ath_mismatch),
    ("nonce_missing", "use_dpop_nonce", case_nonce_missing),
    ("nonce_invalid", "use_dpop_nonce", case_nonce_invalid),
    ("missing_token", "invalid_token", case_missing_token),
    ("token_invalid", "invalid_token", case_token_invalid_signature),
    ("token_invalid", "invalid_token", case_token_invalid_expired),
    ("token_invalid", "invalid_token", case_token_invalid_issuer),
    ("token_invalid", "invalid_token", case_token_invalid_audience),
    ("token_invalid", "invalid_token", case_token_invalid_foreign_key),
    ("token_unbound", "invalid_token", case_token_unbound),
    ("token_unbound", "invalid_token", case_bearer_unbound_not_allowed),
    ("jkt_mismatch", "invalid_token", case_jkt_mismatch),
    ("bearer_downgrade", "invalid_token", case_bearer_downgrade),
    ("bearer_downgrade", "invalid_token", case_bearer_downgrade_even_when_allowed),
]


@pytest.mark.parametrize("reason,error,case", REASON_CASES,
                         ids=["%s-%s" % (c[0], c[2].__name__[5:]) for c in REASON_CASES])
def test_reason_codes(env, srv, reason, error, case):
    c = Client(env)
    mark = log_mark(srv)
    r = case(env, srv, c)
    assert r.status == 401, (reason, r)
    wa = r.header("WWW-Authenticate")
    assert wa is not None and wa.startswith("DPoP ")
    assert challenge_error(r) == error
    assert 'error_description="' in wa and ('algs="' in wa)
    assert srv.wait_log("reason=%s " % reason), "reason %s not logged" % reason
    assert ("reason=%s " % reason) in new_log(srv, mark)
    if error == "use_dpop_nonce":
        assert r.header("DPoP-Nonce"), "use_dpop_nonce without DPoP-Nonce"
    # the body never echoes credentials
    assert c.token.encode() not in r.body


# ---------------------------------------------------------------- nonce flow


def test_nonce_flow_client_retries_with_given_nonce(env, srv):
    c = Client(env)
    first = c.call(srv, "GET", "/api/nonce/a", retry_nonce=False)
    assert first.status == 401 and challenge_error(first) == "use_dpop_nonce"
    nonce = first.header("DPoP-Nonce")
    assert nonce and len(nonce) == 32
    r = c.call(srv, "GET", "/api/nonce/a")  # the client now sends the nonce
    assert r.status == 200, r
    assert r.backend_env()["DPOP_JKT"] == c.key.jkt
    # the same nonce keeps working for further proofs within its lifetime
    r2 = c.call(srv, "POST", "/api/nonce/b", retry_nonce=False)
    assert r2.status == 200


def test_nonce_from_previous_bucket_rotates(env, srv):
    c = Client(env)
    bucket = int(time.time()) // 60
    prev = make_nonce(NONCE_SECRET, bucket - 1)
    p = env.proof(c.key, "GET", srv.url("/api/nonce/r"), token=c.token, nonce=prev)
    r = srv.request("GET", "/api/nonce/r", token=c.token, proof=p)
    assert r.status == 200, r
    nxt = r.header("DPoP-Nonce")
    assert nxt and nxt != prev
    assert nxt in (make_nonce(NONCE_SECRET, bucket), make_nonce(NONCE_SECRET, bucket + 1))
    # a current nonce is accepted without rotation
    p = env.proof(c.key, "GET", srv.url("/api/nonce/r"), token=c.token, nonce=nxt)
    r = srv.request("GET", "/api/nonce/r", token=c.token, proof=p)
    assert r.status == 200 and r.header("DPoP-Nonce") is None


def test_nonce_too_old_rejected(env, srv):
    c = Client(env)
    old = make_nonce(NONCE_SECRET, int(time.time()) // 60 - 3)
    p = env.proof(c.key, "GET", srv.url("/api/nonce/o"), token=c.token, nonce=old)
    r = srv.request("GET", "/api/nonce/o", token=c.token, proof=p)
    assert r.status == 401 and challenge_error(r) == "use_dpop_nonce"
    assert r.header("DPoP-Nonce") and r.header("DPoP-Nonce") != old
    assert srv.wait_log("reason=nonce_invalid ")


# ---------------------------------------------------------------- modes


def test_allow_bearer_accepts_unbound_token(env, srv):
    t = env.token(jkt=None, sub="legacy-app", client_id="legacy")
    r = srv.request("GET", "/api/bearer/x", token=t, scheme="Bearer")
    assert r.status == 200, r
    be = r.backend_env()
    assert be["REMOTE_USER"] == "legacy-app"
    assert be["DPOP_JKT"] == "<unset>"
    assert be["DPOP_TOKEN_CLIENT_ID"] == "legacy"
    # a DPoP request still works there
    c = Client(env)
    assert c.call(srv, "GET", "/api/bearer/y").status == 200


def test_report_only_lets_failures_through(env, srv):
    c = Client(env)
    mark = log_mark(srv)
    # wrong htu: would be htu_mismatch
    p = env.proof(c.key, "GET", srv.url("/api/elsewhere"), token=c.token)
    r = srv.request("GET", "/api/ro/x", token=c.token, proof=p)
    assert r.status == 200, r
    be = r.backend_env()
    assert be["DPOP_REPORT_ONLY_REASON"] == "htu_mismatch"
    assert be["DPOP_JKT"] == "<unset>"  # not verified: no verified identity
    assert be["REMOTE_USER"] == "alice"  # the token itself verified
    assert srv.wait_log("report-only, would reject: reason=htu_mismatch ")
    # a forged token gives no user name at all
    bad = env.remember(tamper(c.token))
    r = srv.request("GET", "/api/ro/x", token=bad,
                    proof=env.proof(c.key, "GET", srv.url("/api/ro/x"), token=bad))
    assert r.status == 200
    assert r.backend_env()["REMOTE_USER"] == ""
    assert r.backend_env()["DPOP_REPORT_ONLY_REASON"] == "token_invalid"
    # no credentials at all also passes, and is reported
    r = srv.request("GET", "/api/ro/x")
    assert r.status == 200
    assert "reason=missing_token" in new_log(srv, mark)
    # and valid requests are verified as usual
    r = c.call(srv, "GET", "/api/ro/ok")
    assert r.status == 200 and r.backend_env()["DPOP_JKT"] == c.key.jkt


def test_external_url_builds_htu(env, srv):
    c = Client(env)
    r = c.call(srv, "GET", "/api/ext/x?q=1", htu="https://public.example.test/prefix/api/ext/x")
    assert r.status == 200, r
    # the URL the server itself listens on is now the wrong one
    r = c.call(srv, "GET", "/api/ext/x")
    assert r.status == 401 and challenge_error(r) == "invalid_dpop_proof"
    assert srv.wait_log("reason=htu_mismatch ")


def test_forwarded_headers_not_trusted(env, srv):
    c = Client(env)
    r = c.call(srv, "GET", "/api/fwd", htu="https://attacker.example/api/fwd",
               headers={"X-Forwarded-Host": "attacker.example", "X-Forwarded-Proto": "https"})
    assert r.status == 401 and challenge_error(r) == "invalid_dpop_proof"


def test_htu_normalization_accepts_equivalent_uri(env, srv):
    c = Client(env)
    # scheme/host case and an explicit default path form differ, same resource
    r = c.call(srv, "GET", "/api/norm", htu="HTTP://127.0.0.1:%d/api/norm#frag" % srv.port)
    assert r.status == 200, r


def test_nested_location_merge(env, srv):
    """DPoPAlgorithms EdDSA in /api/edonly: EdDSA passes there, ES256 not;
    other directives inherited from the server config still apply."""
    ed = Client(env, key=env.client_key("EdDSA"))
    r = ed.call(srv, "GET", "/api/edonly/x")
    assert r.status == 200, r
    es = Client(env)
    r = es.call(srv, "GET", "/api/edonly/x")
    assert r.status == 401
    assert r.header("WWW-Authenticate").endswith('algs="EdDSA"')


def test_virtual_host_servername_builds_htu(env, httpd):
    """htu comes from the (virtual) server's ServerName and port, not from
    the Host header; the vhost inherits DPoPTokenJWKS & co. from the main
    server."""
    from harness import free_port
    port = free_port()
    vh = os.path.join(env.dir, "vh")
    os.makedirs(vh, exist_ok=True)
    os.chmod(vh, 0o755)
    from harness import CGI_SCRIPT
    with open(os.path.join(vh, "echo.cgi"), "w") as f:
        f.write(CGI_SCRIPT)
    os.chmod(os.path.join(vh, "echo.cgi"), 0o755)
    h = httpd(port=port, extra_conf="""
<VirtualHost *:%d>
    ServerName api.test
    ScriptAlias /vapi "%s/vh/echo.cgi"
    <Location /vapi>
        AuthType DPoP
        Require user alice
    </Location>
</VirtualHost>
""" % (port, env.dir), name="vh")
    c = Client(env, sub="alice")
    r = c.call(h, "GET", "/vapi/x", htu="http://api.test:%d/vapi/x" % port)
    assert r.status == 200, r
    assert r.backend_env()["DPOP_JKT"] == c.key.jkt
    r = c.call(h, "GET", "/vapi/x")  # htu with 127.0.0.1: not this server's name
    assert r.status == 401
    assert h.wait_log("reason=htu_mismatch ")
    # Require user: another verified user is refused the usual Apache way
    bob = Client(env, sub="bob")
    r = bob.call(h, "GET", "/vapi/x", htu="http://api.test:%d/vapi/x" % port)
    assert r.status == 401 and r.backend_env() == {}
