# SPDX-License-Identifier: Apache-2.0
"""dpopctl, the built binary, exactly as DESIGN.md "dpopctl (fixed interface)"
specifies it: JSON on one line, exit 0 valid / 1 invalid / 2 usage or I/O.

Valid proofs come from dpopctl itself (every algorithm) and from RFC 9449;
bad proofs are made by tampering or by signing arbitrary headers/claims with
an Ed25519 key through the openssl command line (no Python crypto module
needed).  Needs no httpd.  DPOP_BUILD points at the build directory.
"""
import base64
import json
import os
import stat
import subprocess
import tempfile

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("DPOP_BUILD", os.path.join(TOP, "build-release"))
DPOPCTL = os.path.join(BUILD, "core", "dpopctl")
TESTTOKEN = os.path.join(BUILD, "tests", "tools", "dpop_testtoken")
WYCHEPROOF_DIR = os.environ.get("DPOP_WYCHEPROOF_DIR",
                                os.path.join(TOP, "..", "shared", "testdata", "wycheproof"))

ALGS = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
        "RS256", "RS384", "RS512", "EdDSA"]

RFC_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNo"
    "UklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERW"
    "clUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0"
    "dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-F"
    "dWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg")
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

NOW = 1700000000
URL = "https://api.example.com/v1/items"

pytestmark = pytest.mark.skipif(
    not os.access(DPOPCTL, os.X_OK),
    reason="dpopctl not built at %s (set DPOP_BUILD)" % DPOPCTL)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def run(*args, stdin=None):
    p = subprocess.run([DPOPCTL] + [str(a) for a in args], input=stdin,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def run_json(*args, stdin=None):
    rc, out, err = run(*args, stdin=stdin)
    assert out.endswith("\n") and out.count("\n") == 1, (rc, out, err)
    return rc, json.loads(out), err


def verify(proof, method="POST", url=URL, *extra):
    return run_json("verify", "--method", method, "--url", url, "--proof", proof,
                    "--now", NOW, *extra)


class Ed25519Signer:
    """An Ed25519 key driven through the openssl CLI: signs arbitrary JWS."""

    def __init__(self, d):
        self.dir = d
        self.pem = os.path.join(d, "ed.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.pem],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", self.pem, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(der[-32:])}

    def sign(self, header, claims, raw_header=None, raw_claims=None):
        h = raw_header if raw_header is not None else b64u_json(header)
        c = raw_claims if raw_claims is not None else b64u_json(claims)
        msg = os.path.join(self.dir, "msg")
        with open(msg, "wb") as f:
            f.write(("%s.%s" % (h, c)).encode())
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", self.pem, "-rawin",
                              "-in", msg], check=True, capture_output=True).stdout
        assert len(sig) == 64
        return "%s.%s.%s" % (h, c, b64u(sig))


@pytest.fixture(scope="module")
def work():
    with tempfile.TemporaryDirectory(prefix="dpopctl-test-") as d:
        yield d


@pytest.fixture(scope="module")
def ed(work):
    return Ed25519Signer(work)


@pytest.fixture(scope="module")
def es_key(work):
    path = os.path.join(work, "es256.jwk")
    rc, out, err = run("keygen", "--alg", "ES256", "--out", path)
    assert rc == 0, err
    return path


def base_proof(ed, header=None, claims=None, drop=(), **kw):
    h = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": ed.jwk}
    c = {"jti": "jti-1", "htm": "POST", "htu": URL, "iat": NOW}
    h.update(header or {})
    c.update(claims or {})
    for k in drop:
        h.pop(k, None)
        c.pop(k, None)
    return ed.sign(h, c, **kw)


# ---------------------------------------------------------------- valid


def test_rfc9449_example_proof():
    rc, out, err = run_json("verify", "--method", "POST", "--url",
                            "https://server.example.com/token", "--proof", RFC_PROOF,
                            "--now", "1562262616")
    assert rc == 0, out
    assert out == {"valid": True, "jkt": RFC_JKT, "jti": "-BwC3ESc6acc2lTc",
                   "iat": 1562262616, "alg": "ES256", "htm": "POST",
                   "htu": "https://server.example.com/token"}
    assert list(out) == ["valid", "jkt", "jti", "iat", "alg", "htm", "htu"]
    # the same through stdin and with the expected key
    rc, out2, _ = run_json("verify", "--method", "POST", "--url",
                           "https://server.example.com/token", "--proof", "-",
                           "--now", "1562262616", "--jkt", RFC_JKT, stdin=RFC_PROOF + "\n")
    assert rc == 0 and out2 == out


@pytest.mark.parametrize("alg", ALGS)
def test_keygen_proof_verify_roundtrip(work, alg):
    path = os.path.join(work, "key-%s.jwk" % alg)
    rc, out, err = run("keygen", "--alg", alg, "--out", path)
    assert rc == 0 and out == "", err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        jwk = json.load(f)
    assert jwk["alg"] == alg and "d" in jwk
    rc, jkt, err = run("thumbprint", path)
    assert rc == 0, err
    jkt = jkt.strip()
    assert len(jkt) == 43
    rc, proof, err = run("proof", "--key", path, "--method", "PATCH", "--url",
                         "https://api.example.com/a?b=c", "--access-token", "tok-123",
                         "--nonce", "n-1", "--iat", NOW, "--jti", "jti-%s" % alg)
    assert rc == 0, err
    assert proof.count("\n") == 1 and proof.count(".") == 2
    proof = proof.strip()
    rc, out, err = run_json("verify", "--method", "PATCH", "--url",
                            "HTTPS://API.example.com:443/a", "--proof", proof,
                            "--access-token", "tok-123", "--nonce", "n-1", "--jkt", jkt,
                            "--now", NOW + 10, "--algs", alg)
    assert rc == 0, out
    assert out["valid"] is True and out["alg"] == alg and out["jkt"] == jkt
    assert out["jti"] == "jti-%s" % alg and out["iat"] == NOW
    # the private key never reaches stderr or stdout of other commands
    assert jwk["d"] not in err and jwk["d"] not in proof


def test_keygen_stdout_and_existing_file(work):
    rc, out, err = run("keygen", "--alg", "EdDSA")
    assert rc == 0
    assert out.count("\n") == 1
    jwk = json.loads(out)
    assert jwk["kty"] == "OKP" and jwk["alg"] == "EdDSA" and "d" in jwk
    path = os.path.join(work, "existing.jwk")
    with open(path, "w") as f:
        f.write("old")
    os.chmod(path, 0o644)
    rc, _, err = run("keygen", "--alg", "ES256", "--out", path)
    assert rc == 0, err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # thumbprint of a private JWK = thumbprint of its public part, via stdin
    with open(path) as f:
        priv = json.load(f)
    pub = {k: priv[k] for k in ("kty", "crv", "x", "y")}
    rc1, t1, _ = run("thumbprint", path)
    rc2, t2, _ = run("thumbprint", "-", stdin=json.dumps(pub))
    rc3, t3, _ = run("thumbprint", stdin=json.dumps(pub, indent=2))
    assert rc1 == rc2 == rc3 == 0 and t1 == t2 == t3


def test_thumbprint_rfc7638_vector():
    # RFC 7638 §3.1
    jwk = {"kty": "RSA",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
                "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
                "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD0"
                "8qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU"
                "8awapJzKnqDKgw",
           "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    rc, out, err = run("thumbprint", "-", stdin=json.dumps(jwk))
    assert rc == 0, err
    assert out == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs\n"


def test_valid_signed_with_openssl(ed):
    rc, out, _ = verify(base_proof(ed), "POST", URL + "?x=1#y")
    assert rc == 0 and out["valid"] is True and out["alg"] == "EdDSA"


# ---------------------------------------------------------------- invalid

def _bad_cases(ed, es_key):
    good = base_proof(ed)
    h, c, s = good.split(".")
    flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    rc, es_proof, _ = run("proof", "--key", es_key, "--method", "POST", "--url", URL,
                          "--iat", NOW, "--access-token", "tok")
    es_proof = es_proof.strip()
    eh, ec, es = es_proof.split(".")
    hdr = json.loads(base64.urlsafe_b64decode(eh + "=="))
    priv_hdr = dict(hdr, jwk=dict(hdr["jwk"], d="AAAA"))
    return [
        # (name, proof, extra args, reason)
        ("empty", "", [], "missing_proof"),
        ("too large", "a" * 9000, [], "too_large"),
        ("two parts", "%s.%s" % (h, c), [], "malformed"),
        ("garbage", "not a proof", [], "malformed"),
        ("padded", good + "=", [], "malformed"),
        ("typ JWT", base_proof(ed, {"typ": "JWT"}), [], "bad_typ"),
        ("typ missing", base_proof(ed, drop=("typ",)), [], "bad_typ"),
        ("alg none", base_proof(ed, {"alg": "none"}), [], "bad_alg"),
        ("alg HS256", base_proof(ed, {"alg": "HS256"}), [], "bad_alg"),
        ("alg not allowed", good, ["--algs", "ES256,PS256"], "bad_alg"),
        ("alg vs key", base_proof(ed, {"alg": "ES256"}), [], "bad_alg"),
        ("jwk missing", base_proof(ed, drop=("jwk",)), [], "bad_jwk"),
        ("jwk string", base_proof(ed, {"jwk": "k"}), [], "bad_jwk"),
        ("jwk private", "%s.%s.%s" % (b64u_json(priv_hdr), ec, es), [], "private_key_in_jwk"),
        ("signature flipped", "%s.%s.%s" % (h, c, flipped), [], "bad_signature"),
        ("payload swapped", "%s.%s.%s" % (h, b64u_json({"jti": "x", "htm": "POST", "htu": URL,
                                                         "iat": NOW}), s), [], "bad_signature"),
        ("jkt mismatch", good, ["--jkt", RFC_JKT], "jkt_mismatch"),
        # DESIGN.md's reason table: "bad_claim ... unknown crit"
        ("crit", base_proof(ed, {"crit": ["exp"]}), [], "bad_claim"),
        # issue 10: alg none in any case, also with the signature left out
        ("alg none, empty signature", unsigned(base_proof(ed, {"alg": "none"})), [], "bad_alg"),
        ("alg NONE", base_proof(ed, {"alg": "NONE"}), [], "bad_alg"),
        ("alg NONE, empty signature", unsigned(base_proof(ed, {"alg": "NONE"})), [], "bad_alg"),
        ("alg None, empty signature", unsigned(base_proof(ed, {"alg": "None"})), [], "bad_alg"),
        ("empty signature", unsigned(good), [], "bad_signature"),
        # issue 10: well-formed JSON, numbers no int64 or double holds
        ("iat 1e309", raw_iat(ed, "1e309"), [], "bad_claim"),
        ("iat 2^63", raw_iat(ed, "9223372036854775808"), [], "bad_claim"),
        ("iat -2^63-1", raw_iat(ed, "-9223372036854775809"), [], "bad_claim"),
        ("jti missing", base_proof(ed, drop=("jti",)), [], "missing_claim"),
        ("iat missing", base_proof(ed, drop=("iat",)), [], "missing_claim"),
        ("iat string", base_proof(ed, claims={"iat": str(NOW)}), [], "bad_claim"),
        ("iat float", base_proof(ed, claims={"iat": NOW + 0.5}), [], "bad_claim"),
        ("jti empty", base_proof(ed, claims={"jti": ""}), [], "bad_claim"),
        ("jti too long", base_proof(ed, claims={"jti": "j" * 257}), [], "bad_claim"),
        ("htm", base_proof(ed, claims={"htm": "GET"}), [], "htm_mismatch"),
        ("htm case", base_proof(ed, claims={"htm": "post"}), [], "htm_mismatch"),
        ("htu path", base_proof(ed, claims={"htu": URL + "/x"}), [], "htu_mismatch"),
        ("htu host", base_proof(ed, claims={"htu": "https://evil.example/v1/items"}), [],
         "htu_mismatch"),
        ("iat too old", base_proof(ed, claims={"iat": NOW - 306}), [], "iat_too_old"),
        ("iat future", base_proof(ed, claims={"iat": NOW + 6}), [], "iat_in_future"),
        ("max-age", base_proof(ed, claims={"iat": NOW - 20}), ["--max-age", "10",
                                                                "--skew", "0"], "iat_too_old"),
        ("ath missing", good, ["--access-token", "tok"], "ath_missing"),
        ("ath mismatch", es_proof, ["--access-token", "other"], "ath_mismatch"),
        ("nonce missing", good, ["--nonce", "n-1"], "nonce_missing"),
        ("nonce invalid", base_proof(ed, claims={"nonce": "n-2"}), ["--nonce", "n-1"],
         "nonce_invalid"),
    ]


def unsigned(jws):
    """header.payload. (the signature segment left empty)"""
    return jws.rsplit(".", 1)[0] + "."


def raw_iat(ed, iat_text):
    """A proof signed over a payload whose iat is written as iat_text."""
    raw = '{"jti":"jti-1","htm":"POST","htu":"%s","iat":%s}' % (URL, iat_text)
    return ed.sign({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": ed.jwk}, None,
                   raw_claims=b64u(raw.encode()))


def test_every_kind_of_bad_proof(ed, es_key):
    cases = _bad_cases(ed, es_key)
    errors = {"nonce_missing": "use_dpop_nonce", "nonce_invalid": "use_dpop_nonce",
              "jkt_mismatch": "invalid_token"}
    for name, proof, extra, reason in cases:
        rc, out, err = verify(proof, "POST", URL, *extra)
        assert rc == 1, (name, out, err)
        assert list(out) == ["valid", "error", "reason", "detail"], name
        assert out["valid"] is False
        assert out["reason"] == reason, (name, out)
        assert out["error"] == errors.get(reason, "invalid_dpop_proof"), name
        assert isinstance(out["detail"], str) and out["detail"], name
        # no proof bytes in any output
        if len(proof) > 20:
            for seg in proof.split("."):
                if len(seg) > 16:
                    assert seg[:16] not in out["detail"] and seg[:16] not in err, name
    # every reason dpop_proof_verify can produce
    assert len({c[3] for c in cases}) == 19


def test_iat_window_bounds_inclusive(ed):
    for delta, rc_want in ((-305, 0), (-306, 1), (5, 0), (6, 1)):
        rc, out, _ = verify(base_proof(ed, claims={"iat": NOW + delta}))
        assert rc == rc_want, (delta, out)


# ---------------------------------------------------------------- token / jws-verify

@pytest.fixture(scope="module")
def jwks(work, ed):
    path = os.path.join(work, "as-jwks.json")
    with open(path, "w") as f:
        json.dump({"keys": [dict(ed.jwk, kid="as-1", use="sig")]}, f)
    return path


def mint(ed, claims=None, header=None, drop=(), hdrop=()):
    c = {"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "alice",
         "client_id": "billing", "exp": NOW + 300, "nbf": NOW - 10, "iat": NOW - 10,
         "cnf": {"jkt": RFC_JKT}, "scope": "read"}
    h = {"alg": "EdDSA", "typ": "at+jwt", "kid": "as-1"}
    c.update(claims or {})
    h.update(header or {})
    for k in drop:
        c.pop(k, None)
    for k in hdrop:
        h.pop(k, None)
    return ed.sign(h, c)


def token(jwks, tok, *extra):
    return run_json("token", "--jwks", jwks, "--iss", "https://as.example.com", "--aud",
                    "https://api.example.com", "--now", NOW, *extra, tok)


def test_token_valid(ed, jwks):
    tok = mint(ed)
    rc, out, err = token(jwks, tok)
    assert rc == 0, out
    assert out["valid"] is True and out["jkt"] == RFC_JKT and out["sub"] == "alice"
    assert out["client_id"] == "billing" and out["kid"] == "as-1" and out["alg"] == "EdDSA"
    assert out["exp"] == NOW + 300
    rc, out2, _ = run_json("token", "--jwks", jwks, "--iss", "https://as.example.com",
                           "--aud", "https://api.example.com", "--now", NOW, "-",
                           stdin=tok + "\n")
    assert rc == 0 and out2 == out


def test_token_invalid(ed, jwks):
    cases = [
        (mint(ed, {"iss": "https://evil"}), "token_invalid"),
        (mint(ed, {"aud": ["x", "y"]}), "token_invalid"),
        (mint(ed, {"exp": NOW - 5}), "token_invalid"),
        (mint(ed, drop=("exp",)), "token_invalid"),
        (mint(ed, {"nbf": NOW + 6}), "token_invalid"),
        (mint(ed, {"cnf": "x"}), "token_invalid"),
        (mint(ed, {"cnf": {"jkt": "short"}}), "token_invalid"),
        (mint(ed, header={"typ": "dpop+jwt"}), "token_invalid"),
        (mint(ed, header={"kid": "nope"}), "token_invalid"),
        (mint(ed)[:-3] + "AAA", "token_invalid"),
        ("opaque-token", "token_invalid"),
        (mint(ed, drop=("cnf",)), "token_unbound"),
        (mint(ed, {"cnf": {"x5t#S256": "abc"}}), "token_unbound"),
    ]
    for tok, reason in cases:
        rc, out, err = token(jwks, tok)
        assert rc == 1, (tok, out)
        assert out["valid"] is False and out["reason"] == reason, out
        assert out["error"] == "invalid_token"
        assert tok[:20] not in out["detail"] and tok[:20] not in err
    # alg allow-list
    rc, out, _ = token(jwks, mint(ed), "--algs", "ES256")
    assert rc == 1 and out["reason"] == "token_invalid"


def test_jws_verify(ed, jwks):
    tok = mint(ed)
    rc, out, _ = run_json("jws-verify", "--jwks", jwks, tok)
    assert rc == 0
    assert out == {"valid": True, "alg": "EdDSA", "kid": "as-1", "reason": None}
    rc, out, _ = run_json("jws-verify", "--jwks", jwks, tok[:-3] + "AAA")
    assert rc == 1 and out["valid"] is False and out["reason"] == "bad_signature"
    assert out["alg"] == "EdDSA" and out["kid"] == "as-1"
    rc, out, _ = run_json("jws-verify", "--jwks", jwks, "--algs", "ES256", tok)
    assert rc == 1 and out["reason"] == "bad_alg"
    rc, out, _ = run_json("jws-verify", "--jwks", jwks, "x.y")
    assert rc == 1 and out["reason"] == "malformed" and out["alg"] is None
    # a single JWK file works as a set; stdin input
    single = os.path.join(os.path.dirname(jwks), "single.jwk")
    with open(single, "w") as f:
        json.dump(ed.jwk, f)
    rc, out, _ = run_json("jws-verify", "--jwks", single, "-", stdin=mint(ed, hdrop=("kid",)) + "\n")
    assert rc == 0 and out["valid"] is True and out["kid"] is None


def test_proof_count(es_key):
    """--count N: N lines, N distinct jti, the same other claims, each a
    valid proof; --count 0, above 10,000,000 or with --jti: usage errors."""
    token = "header.payload.signature"
    rc, out, err = run("proof", "--key", es_key, "--method", "GET", "--url", URL,
                       "--access-token", token, "--nonce", "n-1", "--iat", NOW,
                       "--count", 50)
    assert rc == 0, err
    assert out.endswith("\n")
    lines = out.splitlines()
    assert len(lines) == 50 and all(l.count(".") == 2 for l in lines)
    rc, jkt, _ = run("thumbprint", es_key)
    jkt = jkt.strip()
    jtis = set()
    for proof in lines:
        rc, res, _ = verify(proof, "GET", URL, "--access-token", token, "--nonce", "n-1",
                            "--jkt", jkt)
        assert rc == 0 and res["valid"] is True and res["iat"] == NOW, res
        jtis.add(res["jti"])
    assert len(jtis) == 50
    # without --iat, one iat (now) for the whole batch
    rc, out, err = run("proof", "--key", es_key, "--method", "GET", "--url", URL,
                       "--count", 3)
    assert rc == 0 and len(out.splitlines()) == 3, err
    iats = {json.loads(base64.urlsafe_b64decode(l.split(".")[1] + "==="))["iat"]
            for l in out.splitlines()}
    assert len(iats) == 1
    # --count 1 and --jti: the single proof as before
    rc, out, err = run("proof", "--key", es_key, "--method", "GET", "--url", URL,
                       "--jti", "only-one", "--count", 1)
    assert rc == 0 and len(out.splitlines()) == 1, err
    for bad in (["--count", 0], ["--count", -1], ["--count", "x"], ["--count", 10000001],
                ["--count", 2, "--jti", "j"], ["--jti", "j", "--count", 50]):
        rc, out, err = run("proof", "--key", es_key, "--method", "GET", "--url", URL, *bad)
        assert rc == 2 and out == "" and err.strip(), (bad, rc, err)


# ------------------------------------------- jws-verify: the JWS layer only

def run_testtoken(*args):
    p = subprocess.run([TESTTOKEN] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture(scope="module")
def sign_keys(work):
    """alg -> (private JWK path, JWK Set path with kid "k-ALG")"""
    if not os.access(TESTTOKEN, os.X_OK):
        pytest.skip("dpop_testtoken not built at %s" % TESTTOKEN)
    keys = {}
    for alg in ALGS:
        path = os.path.join(work, "sig-%s.jwk" % alg)
        rc, _, err = run("keygen", "--alg", alg, "--out", path)
        assert rc == 0, err
        jwks = os.path.join(work, "sig-%s.jwks" % alg)
        run_testtoken("--key", path, "--jwks-out", jwks, "--kid", "k-" + alg)
        keys[alg] = (path, jwks)
    return keys


# payload segments: not JSON, arbitrary bytes, empty (detached), JSON
PAYLOADS = [("foo", b64u(b"foo")), ("bytes", b64u(bytes(range(256)))), ("empty", ""),
            ("json", b64u(b'{"a":1}')), ("text", b64u("It\u2019s a dangerous business".encode()))]


@pytest.mark.parametrize("alg", ALGS)
def test_jws_verify_any_payload(sign_keys, alg):
    """issue 10: a JWS payload is any octet sequence (RFC 7515 §2): a validly
    signed JWS is valid whatever its payload, empty (detached) included;
    only the signature decides."""
    key, jwks = sign_keys[alg]
    for name, seg in PAYLOADS:
        jws = run_testtoken("--key", key, "--jws-header",
                            json.dumps({"alg": alg, "kid": "k-" + alg}), "--jws-payload-b64", seg)
        rc, out, _ = run_json("jws-verify", "--jwks", jwks, jws)
        assert (rc, out) == (0, {"valid": True, "alg": alg, "kid": "k-" + alg,
                                 "reason": None}), (name, out)
        h, p, sig = jws.split(".")
        # another payload under the same signature
        other = b64u(b"bar") if p != b64u(b"bar") else b64u(b"baz")
        rc, out, _ = run_json("jws-verify", "--jwks", jwks, "%s.%s.%s" % (h, other, sig))
        assert rc == 1 and out["reason"] == "bad_signature", (name, out)
        # the signature left out
        rc, out, _ = run_json("jws-verify", "--jwks", jwks, "%s.%s." % (h, p))
        assert rc == 1 and out["reason"] == "bad_signature", (name, out)
        # a payload that is not canonical base64url is still malformed
        if p:
            rc, out, _ = run_json("jws-verify", "--jwks", jwks, "%s.%s=.%s" % (h, p, sig))
            assert rc == 1 and out["reason"] == "malformed", (name, out)


def test_jws_verify_alg_none(sign_keys):
    """issue 10: alg none (any letter case) is bad_alg, signed or not."""
    key, jwks = sign_keys["ES256"]
    for alg in ("none", "NONE", "None"):
        hdr = b64u_json({"alg": alg, "kid": "k-ES256"})
        for jws in ("%s.%s." % (hdr, b64u(b"foo")), "%s.%s.%s" % (hdr, b64u(b"foo"), b64u(b"x"))):
            rc, out, _ = run_json("jws-verify", "--jwks", jwks, jws)
            assert rc == 1 and out == {"valid": False, "alg": alg, "kid": "k-ES256",
                                       "reason": "bad_alg"}, (jws, out)


# RFC 7520 §4.1-4.3 (the JOSE cookbook): the same non-JSON payload (Figure 7,
# a quote from "The Fellowship of the Ring") signed with RS256, PS384 and
# ES512 by the keys of Figures 1 and 3 (public parts).
RFC7520_PAYLOAD = (
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250"
    "byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hl"
    "cmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4")
RFC7520_RSA = {  # Figure 3
    "kty": "RSA", "kid": "bilbo.baggins@hobbiton.example", "use": "sig", "e": "AQAB",
    "n": "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQ"
         "Hz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqF"
         "EHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-"
         "tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw"}
RFC7520_EC = {  # Figure 1
    "kty": "EC", "kid": "bilbo.baggins@hobbiton.example", "use": "sig", "crv": "P-521",
    "x": "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
    "y": "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"}
RFC7520_JWS = [
    ("RS256", RFC7520_RSA,  # Figure 13
     "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9",
     "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xu"
     "glII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aA"
     "E6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KL"
     "UQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg"),
    ("PS384", RFC7520_RSA,  # Figure 20
     "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9",
     "cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8"
     "TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmB"
     "qrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQTlq"
     "RHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw"),
    ("ES512", RFC7520_EC,  # Figure 27
     "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9",
     "AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQ"
     "y3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2"),
]


@pytest.mark.parametrize("alg,key,hdr,sig", RFC7520_JWS, ids=[c[0] for c in RFC7520_JWS])
def test_jws_verify_rfc7520(work, alg, key, hdr, sig):
    jwks = os.path.join(work, "rfc7520-%s.json" % alg)
    with open(jwks, "w") as f:
        json.dump({"keys": [key]}, f)
    rc, out, _ = run_json("jws-verify", "--jwks", jwks, "%s.%s.%s" % (hdr, RFC7520_PAYLOAD, sig))
    assert (rc, out) == (0, {"valid": True, "alg": alg, "kid": key["kid"], "reason": None})
    # the payload's first character changed ("It" -> "Mt"): invalid
    tampered = "T" + RFC7520_PAYLOAD[1:]
    rc, out, _ = run_json("jws-verify", "--jwks", jwks, "%s.%s.%s" % (hdr, tampered, sig))
    assert rc == 1 and out["reason"] == "bad_signature", out


def test_jws_verify_wycheproof(work):
    """Project Wycheproof's JSON Web Signature vectors
    (json_web_signature_test.json), when present in the shared test data:
    for every group whose key is an asymmetric JWK we support, each "valid"
    compact JWS must verify and each "invalid" one must not.  Groups with
    symmetric keys (HS256: never accepted here) only need every vector to
    fail.  Skipped with a note when the file is absent (the vectors are not
    part of the project)."""
    path = os.path.join(WYCHEPROOF_DIR, "json_web_signature_test.json")
    if not os.path.exists(path):
        print("wycheproof: %s not found; JWS vectors skipped" % path)
        pytest.skip("Wycheproof JWS vectors not found at %s" % path)
    with open(path) as f:
        data = json.load(f)
    counts = {"valid": 0, "invalid": 0, "groups_skipped": 0}
    wrong = []
    for i, g in enumerate(data["testGroups"]):
        key = g.get("public") or g.get("private") or {}
        if g.get("type") != "JsonWebSignature" or key.get("kty") not in ("RSA", "EC", "OKP"):
            counts["groups_skipped"] += 1
            key = None
        jwks = os.path.join(work, "wycheproof-jws-%d.json" % i)
        with open(jwks, "w") as f:
            if key:
                json.dump({"keys": [{k: v for k, v in key.items()
                                     if k not in ("d", "p", "q", "dp", "dq", "qi")}]}, f)
            else:  # no usable key: nothing may verify
                json.dump({"keys": [RFC7520_EC]}, f)
        for t in g["tests"]:
            rc, out, err = run("jws-verify", "--jwks", jwks, t["jws"])
            if rc == 2 and not key:
                continue
            want = 0 if (t["result"] == "valid" and key) else 1
            if t["result"] == "acceptable":
                continue
            counts["valid" if want == 0 else "invalid"] += 1
            if rc != want:
                wrong.append((t["tcId"], t["comment"], rc, out.strip()))
    print("wycheproof json_web_signature: %d valid, %d invalid; %d groups without a usable key"
          % (counts["valid"], counts["invalid"], counts["groups_skipped"]))
    assert not wrong, wrong[:10]
    assert counts["valid"] > 0


# ---------------------------------------------------------------- usage

@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["verify"],
    ["verify", "--method", "GET", "--url", URL],
    ["verify", "--method", "GET", "--url", URL, "--proof", "x", "--now", "soon"],
    ["verify", "--method", "GET", "--url", URL, "--proof", "x", "--max-age", "-1"],
    ["verify", "--method", "GET", "--url", URL, "--proof", "x", "--algs", "HS256"],
    ["verify", "--method", "GET", "--url", URL, "--proof", "x", "--algs", ""],
    ["verify", "--method", "GET", "--url", URL, "--proof", "x", "--bogus"],
    ["verify", "--method", "GET", "--url", URL, "--proof", "x", "extra"],
    ["keygen"],
    ["keygen", "--alg", "HS256"],
    ["keygen", "--alg", "none"],
    ["keygen", "--alg", "ES256", "--out", "/nonexistent-dir/key.jwk"],
    ["proof", "--method", "GET", "--url", URL],
    ["proof", "--key", "/nonexistent", "--method", "GET", "--url", URL],
    ["proof", "--key", "/dev/null", "--method", "GET", "--url", URL, "--iat", "x"],
    ["thumbprint", "/nonexistent"],
    ["thumbprint", "a", "b"],
    ["token", "x"],
    ["token", "--jwks", "/nonexistent", "x"],
    ["jws-verify", "x"],
    ["jws-verify", "--jwks", "/nonexistent", "x"],
])
def test_usage_errors(args):
    rc, out, err = run(*args)
    assert rc == 2, (args, out, err)
    assert out == ""
    assert err.strip() != ""


@pytest.mark.parametrize("cmd", ["verify", "thumbprint", "keygen", "proof", "token",
                                 "jws-verify"])
def test_help(cmd):
    rc, out, err = run(cmd, "--help")
    assert rc == 0 and out.startswith("usage: dpopctl %s" % cmd), out
    rc, out, _ = run("--help")
    assert rc == 0 and cmd in out


def test_unusable_inputs(work):
    bad = os.path.join(work, "bad.jwk")
    with open(bad, "w") as f:
        f.write('{"kty":"EC","crv":"P-256","x":"AAAA"}')
    rc, out, err = run("thumbprint", bad)
    assert rc == 1 and out == "" and err
    rc, out, err = run("proof", "--key", bad, "--method", "GET", "--url", URL)
    assert rc == 1 and out == ""
    rc, out, err = run("thumbprint", "-", stdin="not json")
    assert rc == 1


def test_verify_rsa_proof_key_cap(work):
    """Issue 15 item 7: dpopctl verify applies the module's proof-key cap,
    RSA 2048..4096 bits: a real 4096-bit key's RS256 proof is valid, a
    modulus of 4097, 8192 or 16384 bits is bad_jwk (before any signature
    work; the junk signature is never looked at)."""
    pem = os.path.join(work, "rsa4096.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:4096", "-out", pem], check=True, capture_output=True)
    text = subprocess.run(["openssl", "pkey", "-in", pem, "-noout", "-text"], check=True,
                          capture_output=True, text=True).stdout
    hexn = "".join(text.split("modulus:")[1].split("publicExponent")[0].split()).replace(":", "")
    n = bytes.fromhex(hexn).lstrip(b"\0")
    assert len(n) == 512
    jwk = {"kty": "RSA", "n": b64u(n), "e": "AQAB"}
    claims = {"jti": "rsa-cap", "htm": "POST", "htu": URL, "iat": NOW}
    h = b64u_json({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk})
    c = b64u_json(claims)
    msg = os.path.join(work, "rsa-msg")
    with open(msg, "wb") as f:
        f.write(("%s.%s" % (h, c)).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pem, msg], check=True,
                         capture_output=True).stdout
    rc, out, _ = verify("%s.%s.%s" % (h, c, b64u(sig)))
    assert rc == 0 and out["valid"] is True and out["alg"] == "RS256", out

    for bits in (4097, 8192, 16384):
        nb = bytearray((0x5A ^ (i * 131)) & 0xFF for i in range((bits + 7) // 8))
        nb[0] = 1 << ((bits - 1) % 8)
        nb[-1] |= 1
        big = {"kty": "RSA", "n": b64u(bytes(nb)), "e": "AQAB"}
        proof = "%s.%s.%s" % (b64u_json({"typ": "dpop+jwt", "alg": "RS256", "jwk": big}), c,
                              b64u(b"\x42" * len(nb)))
        rc, out, _ = verify(proof)
        assert rc == 1 and out["reason"] == "bad_jwk", (bits, out)
