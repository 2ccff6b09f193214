# SPDX-License-Identifier: Apache-2.0
"""End to end against a real authorization server and a real client (issue
17 item 3): panva's oidc-provider (tests/e2e/as.mjs) is the AS, panva's
oauth4webapi (tests/e2e/client.mjs) the client, mod_dpop in httpd (mod_ssl,
`Protocols h2 http/1.1`) the resource server; everything over HTTPS with the
session's throwaway CA (harness TLS), the client's calls over HTTP/1.1
(fetch) and HTTP/2 (node:http2 as oauth4webapi's customFetch).

The AS grants client_credentials, binds tokens to the client's DPoP key,
issues JWT access tokens (RFC 9068) for the resource JWT_RES and opaque ones
for OPAQUE_RES, and serves discovery, introspection and revocation.  httpd
finds it only through `DPoPTokenMetadata` (OpenID discovery), trusts it
through `DPoPTokenCAFile`, introspects with `DPoPTokenIntrospectionAuth
client_secret_basic`.

What these tests prove (in file order; the last ones stop and rotate the AS):
- discovery + JWT token -> 200 (HTTP/1.1 and h2), the backend sees the key's
  thumbprint and the client_id as the user;
- an opaque token -> 200 through introspection (HTTP/1.1 and h2);
- the same request (same proof) sent twice -> 401 the second time (replay);
- `DPoPNonce On`: the first call is challenged use_dpop_nonce and
  oauth4webapi's documented retry (isDPoPNonceError) succeeds (h1 and h2);
- a token bound to key A presented with a proof by key B -> 401
  invalid_token, reason jkt_mismatch (JWT and opaque);
- an opaque token revoked at the AS -> 401 once the introspection cache
  (DPoPTokenIntrospectionCache) expired;
- key rotation at the AS (restart with a new key set, the old key gone): a
  token signed by the new key -> 200 without touching httpd (same parent,
  no restart logged);
- the AS stopped: opaque tokens -> 503, JWTs with cached keys -> 200;
- no token, proof, client secret or private key in the error log, the
  access log, the AS's own output or the audit store (`dpop-audit list`).

The npm packages are pinned in tests/e2e/package-lock.json and installed
with `npm ci` when tests/e2e/node_modules is missing (as tests/interop's).
Skipped, with the reason, when node/npm, mod_ssl/mod_http2 or the token
source directives (DPoPTokenMetadata: `apache2 -t`) are not available.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from harness import MODULES, Key, Secret, free_port

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2E = os.path.join(TOP, "tests", "e2e")
JWT_RES = "https://rs.example.test/jwt"
OPAQUE_RES = "https://rs.example.test/opaque"
CLIENT_ID = "e2e-client"
RS_ID = "mod-dpop-rs"  # the resource server's own client, for introspection
CACHE_S = 5  # DPoPTokenIntrospectionCache

# The introspection cache is per child process: the revocation case keeps
# one h2 connection (so one child) open across the cache's lifetime.
LOCATIONS = """
KeepAliveTimeout 60
<Location /api/opaque>
    DPoPTokenFormat opaque
    DPoPTokenAudience %s
</Location>
<Location /api/nonce>
    DPoPNonce On
</Location>
""" % OPAQUE_RES


def node_env(tls):
    e = dict(os.environ)
    e["NODE_EXTRA_CA_CERTS"] = tls.ca_cert
    e.pop("NODE_OPTIONS", None)
    return e


class AuthServer:
    """oidc-provider on a fixed free port (kept across restarts)."""

    def __init__(self, env, node, clients):
        self.env = env
        self.node = node
        self.tls = env.tls()
        self.port = free_port()
        self.issuer = "https://127.0.0.1:%d" % self.port
        self.dir = os.path.dirname(env.path("as-%d" % env.next_id(), "x"))
        self.clients = clients
        self.proc = None
        self.logs = []  # every run's output, kept for the secret check

    def start(self, keys):
        cfg = {"port": self.port, "issuer": self.issuer,
               "tls": {"cert": self.tls.server_cert, "key": self.tls.server_key},
               "jwks": {"keys": keys}, "clients": self.clients,
               "resources": {JWT_RES: {"format": "jwt"}, OPAQUE_RES: {"format": "opaque"}}}
        path = os.path.join(self.dir, "as.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        log = os.path.join(self.dir, "as-%d.log" % len(self.logs))
        self.logs.append(log)
        with open(log, "w") as out:
            self.proc = subprocess.Popen([self.node, os.path.join(E2E, "as.mjs"), path],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=E2E,
                                         env=node_env(self.tls), start_new_session=True)
        self.env.register(self)
        deadline = time.time() + 60
        while time.time() < deadline:
            if "ready %d" % self.port in self.output(log):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        out = self.output(log)[-2000:]
        self.stop()
        raise RuntimeError("oidc-provider did not start: " + out)

    @staticmethod
    def output(log):
        with open(log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def all_output(self):
        return "".join(self.output(l) for l in self.logs)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None


class NodeClient:
    """oauth4webapi driven step by step (tests/e2e/client.mjs); its keys,
    tokens and proofs stay in a 0600 state file, registered as secrets."""

    def __init__(self, env, node, as_, client_id, secret):
        self.env = env
        self.node = node
        self.tls = as_.tls
        self.dir = os.path.dirname(env.path("client-%d" % env.next_id(), "x"))
        self.state = os.path.join(self.dir, "state.json")
        fd = os.open(self.state, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"issuer": as_.issuer, "client_id": client_id, "client_secret": secret}, f)

    def run(self, *steps):
        path = os.path.join(self.dir, "steps.json")
        with open(path, "w") as f:
            json.dump(list(steps), f)
        r = subprocess.run([self.node, os.path.join(E2E, "client.mjs"), self.state, path],
                           capture_output=True, text=True, timeout=180, cwd=E2E,
                           env=node_env(self.tls))
        self.remember()
        out = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        assert len(out) == len(steps), (r.returncode, out, r.stderr[-1500:])
        return out

    def one(self, step):
        res = self.run(step)[0]
        assert "error" not in res or res.get("status"), res
        return res

    def load(self):
        with open(self.state) as f:
            return json.load(f)

    def remember(self):
        st = self.load()
        known = set(self.env.secrets)
        new = [t["access_token"] for t in st.get("tokens", {}).values()]
        new += [k["private"]["d"] for k in st.get("keys", {}).values()]
        new += st.get("proofs", [])
        for s in new:
            if s not in known:
                self.env.remember(s)

    def key_file(self, name):
        """The key as a JWK file dpopctl can sign with (for requests the
        test sends itself on fresh connections)."""
        k = self.load()["keys"][name]
        path = os.path.join(self.dir, "%s.jwk" % name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({m: k["private"][m] for m in ("kty", "crv", "x", "y", "d")}, f)
        return Key(path, "ES256", k["jkt"])

    def token(self, name):
        return Secret(self.load()["tokens"][name]["access_token"])


def as_key(env, kid):
    """An ES256 signing key for the AS (private JWK with kid and alg)."""
    k = env.keygen("ES256")
    with open(k.path) as f:
        jwk = json.load(f)
    jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    return jwk


@pytest.fixture(scope="module")
def node():
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if not node_bin or not npm_bin:
        pytest.skip("node/npm not installed (apt-get install nodejs npm)")
    for mod in ("mod_ssl.so", "mod_http2.so"):
        if not os.path.exists(os.path.join(MODULES, mod)):
            pytest.skip("%s not in %s" % (mod, MODULES))
    if not (os.path.isdir(os.path.join(E2E, "node_modules", "oidc-provider"))
            and os.path.isdir(os.path.join(E2E, "node_modules", "oauth4webapi"))):
        r = subprocess.run([npm_bin, "ci", "--no-audit", "--no-fund"], cwd=E2E,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "npm ci failed:\n" + r.stdout + r.stderr
    return node_bin


@pytest.fixture(scope="module")
def stack(env, node):
    """AS + httpd + the client; torn down with a secret check of the logs."""
    secret = env.remember(os.urandom(24).hex())
    rs_secret = env.remember(os.urandom(24).hex())
    as_ = AuthServer(env, node, [
        {"client_id": CLIENT_ID, "client_secret": secret},
        {"client_id": RS_ID, "client_secret": rs_secret}])
    keys = [as_key(env, "as-e2e-1")]
    as_.start(keys)
    rs_file = env.path("rs-%d" % env.next_id(), "introspect.secret")
    with open(rs_file, "w") as f:
        f.write(rs_secret)
    os.chmod(rs_file, 0o600)
    nonce_file = env.path("rs-nonce-%d" % env.next_id(), "nonce.key")
    with open(nonce_file, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(nonce_file, 0o600)
    store = os.path.join(env.dir, "audit-e2e-%d" % env.next_id())
    token_conf = "\n".join([
        "DPoPTokenMetadata %s/.well-known/openid-configuration" % as_.issuer,
        "DPoPTokenIssuer %s" % as_.issuer,
        'DPoPTokenCAFile "%s"' % as_.tls.ca_cert,
        'DPoPTokenIntrospectionAuth client_secret_basic %s "%s"' % (RS_ID, rs_file),
        "DPoPTokenIntrospectionCache %d" % CACHE_S,
        "DPoPTokenAudience %s" % JWT_RES])
    h = env.httpd(name="e2e-rs", tls=True, token_conf=token_conf,
                  server_conf='DPoPNonceSecret "%s"\nDPoPAuditLog "%s"\nDPoPAuditMapSize 16M'
                  % (nonce_file, store), extra_conf=LOCATIONS)
    rc, out = h.configtest()
    if rc != 0 and "Invalid command 'DPoPToken" in out:
        as_.stop()
        pytest.skip("this build has no URL token sources yet (DPoPTokenMetadata etc., "
                    "issue 17 item 1): " + out.strip().splitlines()[-1][:200])
    assert rc == 0, out
    h.start()
    c = NodeClient(env, node, as_, CLIENT_ID, secret)
    c.run({"op": "key", "name": "A"}, {"op": "key", "name": "B"},
          {"op": "token", "name": "jwtA", "key": "A", "resource": JWT_RES},
          {"op": "token", "name": "opqA", "key": "A", "resource": OPAQUE_RES})
    s = {"as": as_, "h": h, "client": c, "store": store, "keys": keys,
         "secrets": (secret, rs_secret)}
    yield s
    h.stop()
    as_.stop()
    h.assert_no_secrets()
    h.assert_no_crash()


def logged(h, reason, path, timeout=5.0):
    """The error log has a rejection with this reason for exactly this path."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in h.error_log().splitlines():
            if ("reason=%s " % reason) in line and (" uri=%s " % path) in line:
                return True
        time.sleep(0.1)
    return False


def call(s, token, path, key="A", h2=False, method="GET"):
    return s["client"].one({"op": "call", "token": token, "key": key, "method": method,
                            "url": s["h"].url(path), "h2": h2})


def jkt(s, name):
    return s["client"].load()["keys"][name]["jkt"]


PROTOS = [pytest.param(False, id="http1.1"), pytest.param(True, id="h2")]


def expect_proto(res, h2):
    assert res["protocol"] == ("h2" if h2 else "http/1.1"), res
    if res.get("env"):
        assert res["env"]["SERVER_PROTOCOL"] == ("HTTP/2.0" if h2 else "HTTP/1.1"), res


def test_tokens_from_the_as_are_dpop_bound(stack):
    st = stack["client"].run({"op": "token", "name": "probe", "key": "A", "resource": JWT_RES},
                             {"op": "token", "name": "probe2", "key": "A",
                              "resource": OPAQUE_RES})
    assert [(t["token_type"].lower(), t["jws_shaped"]) for t in st] == [("dpop", True),
                                                                         ("dpop", False)]


@pytest.mark.parametrize("h2", PROTOS)
def test_jwt_token_is_200(stack, h2):
    res = call(stack, "jwtA", "/api/jwt/items", h2=h2)
    assert res["status"] == 200, res
    expect_proto(res, h2)
    assert res["env"]["DPOP_JKT"] == jkt(stack, "A")
    assert res["env"]["REMOTE_USER"] == CLIENT_ID  # client_credentials: no sub
    assert res["env"]["HTTPS"] == "on"


@pytest.mark.parametrize("h2", PROTOS)
def test_opaque_token_through_introspection_is_200(stack, h2):
    res = call(stack, "opqA", "/api/opaque/items", h2=h2)
    assert res["status"] == 200, res
    expect_proto(res, h2)
    assert res["env"]["DPOP_JKT"] == jkt(stack, "A")
    assert res["env"]["DPOP_TOKEN_CLIENT_ID"] == CLIENT_ID


@pytest.mark.parametrize("token,path", [("jwtA", "/api/jwt/r"), ("opqA", "/api/opaque/r")])
def test_replay_is_401(stack, token, path):
    res = stack["client"].one({"op": "replay", "token": token, "key": "A",
                               "url": stack["h"].url(path)})
    assert (res["first"], res["second"]) == (200, 401), res
    assert res["second_www_authenticate_error"] == "invalid_dpop_proof"
    assert logged(stack["h"], "replay", path)


@pytest.mark.parametrize("h2", PROTOS)
def test_nonce_challenge_and_the_clients_automatic_retry(stack, h2):
    res = call(stack, "jwtA", "/api/nonce/x", h2=h2)
    assert res["status"] == 200 and res["retried"] is True, res
    expect_proto(res, h2)
    assert logged(stack["h"], "nonce_missing", "/api/nonce/x")


@pytest.mark.parametrize("token,path", [("jwtA", "/api/jwt/m"), ("opqA", "/api/opaque/m")])
def test_token_of_key_a_with_proof_of_key_b_is_jkt_mismatch(stack, token, path):
    res = call(stack, token, path, key="B")
    assert res["status"] == 401 and res["error"] == "invalid_token", res
    assert logged(stack["h"], "jkt_mismatch", path)


def test_revoked_opaque_token_is_401_once_the_cache_expired(stack):
    c = stack["client"]
    url = stack["h"].url("/api/opaque/rev")
    get = {"op": "call", "token": "opqRev", "key": "A", "url": url, "h2": True}
    # one run, one h2 connection: the same child answers every call
    out = c.run({"op": "token", "name": "opqRev", "key": "A", "resource": OPAQUE_RES},
                get, {"op": "revoke", "token": "opqRev"}, get,
                {"op": "sleep", "ms": (CACHE_S + 1) * 1000}, get)
    before, cached, after = out[1], out[3], out[5]
    assert out[2] == {"op": "revoke", "ok": True}, out[2]
    assert len({r["session"] for r in (before, cached, after)}) == 1, out
    assert before["status"] == 200, before
    # revoked, but the active answer is still cached (DPoPTokenIntrospectionCache)
    assert cached["status"] == 200, cached
    assert after["status"] == 401 and after["error"] == "invalid_token", after
    assert logged(stack["h"], "token_invalid", "/api/opaque/rev")
    # the same client's other opaque token is untouched
    assert call(stack, "opqA", "/api/opaque/rev")["status"] == 200


def test_key_rotation_at_the_as_without_touching_httpd(env, stack):
    h, as_, c = stack["h"], stack["as"], stack["client"]
    parent = h.proc.pid
    starts = h.error_log().count("resuming normal operations")
    new = [as_key(env, "as-e2e-2")]  # the old key is gone from the set
    as_.stop()
    as_.start(new)
    stack["keys"] = new
    c.run({"op": "token", "name": "jwtRot", "key": "A", "resource": JWT_RES})
    # an unknown kid makes a child refresh at most once per 30 s (DESIGN):
    # a child that refreshed shortly before may answer 401 until then
    deadline, res, tries = time.time() + 75, None, 0
    while time.time() < deadline:
        res = call(stack, "jwtRot", "/api/jwt/rot")
        tries += 1
        if res["status"] == 200:
            break
        time.sleep(2)
    assert res["status"] == 200, (tries, res)
    print("rotation: 200 after %d call(s)" % tries)
    # and keeps working on every child (fresh connection per call)
    for _ in range(6):
        assert call(stack, "jwtRot", "/api/jwt/rot")["status"] == 200
    assert h.proc.pid == parent
    assert h.error_log().count("resuming normal operations") == starts


def fresh_connection_jwt_calls(s, key, token, n, path="/api/jwt/warm"):
    """n requests on n fresh connections (spread over the children), proofs
    signed by dpopctl with the client's own key: statuses."""
    env = s["h"].env
    out = []
    for _ in range(n):
        proof = env.proof(key, "GET", s["h"].url(path), token=token)
        out.append(s["h"].request("GET", path, token=token, proof=proof).status)
    return out


def test_as_stopped_opaque_503_jwt_with_cached_keys_200(env, stack):
    h, as_, c = stack["h"], stack["as"], stack["client"]
    c.run({"op": "token", "name": "jwtDown", "key": "A", "resource": JWT_RES},
          {"op": "token", "name": "opqDown", "key": "A", "resource": OPAQUE_RES})
    key = c.key_file("A")
    jwt_tok = c.token("jwtDown")
    # every child has fetched the current key set before the AS goes away
    mpm_children = max(1, len(h.children()) - 1)  # minus the cgid daemon
    for _ in range(10):
        assert set(fresh_connection_jwt_calls(stack, key, jwt_tok, 6)) == {200}
        if len(h.pids_serving("/api/jwt/warm")) >= mpm_children:
            break
    as_.stop()
    try:
        time.sleep(CACHE_S + 1)
        res = call(stack, "opqDown", "/api/opaque/down")
        assert res["status"] == 503, res
        res = call(stack, "opqA", "/api/opaque/down", h2=True)  # once cached, expired now
        assert res["status"] == 503, res
        assert call(stack, "jwtDown", "/api/jwt/down")["status"] == 200
        assert call(stack, "jwtDown", "/api/jwt/down", h2=True)["status"] == 200
        assert set(fresh_connection_jwt_calls(stack, key, jwt_tok, 9)) == {200}
    finally:
        as_.start(stack["keys"])


def test_no_token_proof_or_secret_in_any_log(env, stack):
    h, as_ = stack["h"], stack["as"]
    # the client's tokens, keys and proofs are registered; add a few more
    stack["client"].run({"op": "call", "token": "jwtA", "key": "A",
                         "url": h.url("/api/jwt/last")})
    needles = env.secret_needles()
    assert any(s in needles for s in stack["secrets"])
    assert len(stack["client"].load()["proofs"]) >= 10
    audit = subprocess.run([env.tools.dpop_audit, "list", "--store", stack["store"],
                            "--format", "json"], capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0, audit.stderr[-500:]
    events = [json.loads(l) for l in audit.stdout.splitlines() if l.strip()]
    assert {"replay", "jkt_mismatch"} <= {e.get("reason") for e in events}, \
        sorted({e.get("reason") for e in events if e.get("reason")})
    texts = {"error.log": h.error_log(), "access.log": h.access_log(),
             "AS output": as_.all_output(), "audit list": audit.stdout}
    for name in sorted(os.listdir(stack["store"])):
        with open(os.path.join(stack["store"], name), "rb") as f:
            texts["audit store " + name] = f.read().decode("latin-1")
    for where, text in texts.items():
        for i, s in enumerate(needles):
            assert s not in text, "secret #%d found in %s" % (i, where)
