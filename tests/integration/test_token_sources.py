# SPDX-License-Identifier: Apache-2.0
"""Token sources (issue 17 item 1): DPoPTokenJWKS URL, DPoPTokenMetadata,
DPoPTokenFormat opaque|any with RFC 7662 introspection, against a fake
authorization server we control (Python stdlib HTTP on 127.0.0.1: plain http
is allowed to a loopback address).

What these tests prove: a JWKS URL is fetched and used; a key rotated in at
the AS is picked up on the first token naming its kid, without touching
httpd, and a key removed is refused after that refresh; unknown kids refresh
at most once per 30 s (AS hits counted); no key set yet -> 503, a dead AS
after a good fetch -> cached keys keep working; metadata discovery and the
issuer check; introspection: active + cnf.jkt -> 200 with sub/client_id in
the environment, inactive -> 401 token_invalid, no cnf -> token_unbound,
5xx/4xx -> 503 (never cached), results cached by token hash (AS hits
counted), bounded concurrency (503 beyond it), client_secret_basic and
private_key_jwt as the AS sees them; `apache2 -t` refuses bad settings
naming the directive; no token or client secret in any log.
"""
import base64
import hashlib
import json
import os
import re
import secrets
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from harness import AUDIENCE, ISSUER, free_port


class FakeAS:
    """Endpoints: /jwks, /meta (RFC 8414 document), /introspect (POST).
    Everything it serves and how it answers is set by the test; every hit is
    counted per path."""

    def __init__(self, env, tls=None):
        self.env = env
        self.tls = tls  # (cert, key) to serve https
        self.port = free_port()
        self.jwks = {"keys": []}
        self.meta = None
        self.status = {}          # path -> forced HTTP status
        self.delay = {}           # path -> seconds to sleep before answering
        self.introspection = {}   # token -> response object
        self.expect_basic = None  # (client_id, secret) required when set
        self.assertions = []      # client_assertion values received
        self.forms = []
        self.hits = {}
        self.cache_control = None
        self.lock = threading.Lock()
        self.server = None

    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def start(self):
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if fake.cache_control:
                    self.send_header("Cache-Control", fake.cache_control)
                self.end_headers()
                self.wfile.write(body)

            def _common(self):
                path = self.path.split("?")[0]
                with fake.lock:
                    fake.hits[path] = fake.hits.get(path, 0) + 1
                if fake.delay.get(path):
                    time.sleep(fake.delay[path])
                return path

            def do_GET(self):
                path = self._common()
                if path in fake.status:
                    if fake.status[path] in (301, 302, 307):
                        self.send_response(fake.status[path])
                        self.send_header("Location", fake.base() + "/jwks-moved")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    return self._send(fake.status[path], {"error": "forced"})
                if path in ("/jwks", "/jwks-moved"):
                    return self._send(200, fake.jwks)
                if path == "/meta" and fake.meta is not None:
                    return self._send(200, fake.meta)
                return self._send(404, {"error": "not_found"})

            def do_POST(self):
                path = self._common()
                n = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(n).decode())
                with fake.lock:
                    fake.forms.append(form)
                if path in fake.status:
                    return self._send(fake.status[path], {"error": "forced"})
                if path != "/introspect":
                    return self._send(404, {"error": "not_found"})
                if fake.expect_basic:
                    want = "Basic " + base64.b64encode(
                        ("%s:%s" % fake.expect_basic).encode()).decode()
                    if self.headers.get("Authorization") != want:
                        return self._send(401, {"error": "invalid_client"})
                if "client_assertion" in form:
                    with fake.lock:
                        fake.assertions.append(form["client_assertion"][0])
                tok = form.get("token", [""])[0]
                return self._send(200, fake.introspection.get(tok, {"active": False}))

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def fake_as(env):
    made = []

    def make(tls=None):
        a = FakeAS(env, tls).start()
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop()


def jwks_of(env, *keys):
    """Public JWK Set of these AS keys, kid = each key's thumbprint."""
    out = {"keys": []}
    for k in keys:
        p = env.path("keys", "pub-%d.json" % env.next_id())
        env.tools.run(env.tools.testtoken, "--key", k.path, "--kid", k.jkt, "--jwks-out", p)
        with open(p) as f:
            out["keys"] += json.load(f)["keys"]
    return out


def as_key(env):
    return env.keygen("ES256", env.path("keys", "as-%d.jwk" % env.next_id()))


def jwt(env, key, client):
    return env.token(jkt=client.jkt, key=key, kid=key.jkt)


def call(env, h, client, token, path="/api/x"):
    proof = env.proof(client, "GET", h.url(path), token=token)
    return h.request("GET", path, token=token, proof=proof)


def reason(r):
    return r.header("WWW-Authenticate") or ""


def metric(h, name):
    body = h.request("GET", "/metrics").text()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return None


def metric_line(h, needle):
    for line in h.request("GET", "/metrics").text().splitlines():
        if line.startswith(needle):
            return float(line.split()[-1])
    return None


METRICS = """
<Location /metrics>
    SetHandler dpop-metrics
</Location>
"""


# One child process: per-process state (key sets, caches) is observable.
ONE_CHILD = ("StartServers 1\nServerLimit 1\nThreadLimit 16\nThreadsPerChild 16\n"
             "MaxRequestWorkers 16\nMinSpareThreads 16\nMaxSpareThreads 32")


# mod_dpop_tokensrc.h: a token naming an unknown kid refreshes a process's
# key set at most once per this many seconds.
KID_REFRESH_INTERVAL = 30


def served_by(h, path):
    """The pids (access log %P) of the processes that answered requests for
    path: the key sets are per process, so the fetch counts below are exact
    only when every request went to the same one."""
    return set(re.findall(r'"GET %s HTTP/1\.1" \d+ \S+ pid=(\d+)' % re.escape(path),
                          h.access_log()))


def burst(env, h, client, token, count, path="/api/x"):
    """count requests with this token, each with its own proof, minted
    before the first is sent (one dpopctl run) and sent over ONE keep-alive
    connection: the burst takes well under a second, so "within 30 s" does
    not depend on how fast this machine spawns processes.  Statuses and
    WWW-Authenticate values, in order."""
    proofs = env.tools.run(env.tools.dpopctl, "proof", "--key", client.path, "--method", "GET",
                           "--url", h.url(path), "--access-token", token,
                           "--count", str(count)).stdout.split()
    assert len(proofs) == count
    out = []
    conn = h.connection()
    try:
        for p in proofs:
            conn.request("GET", path, headers={"Authorization": "DPoP " + token,
                                               "DPoP": env.remember(p)})
            r = conn.getresponse()
            r.read()
            out.append((r.status, r.getheader("WWW-Authenticate") or ""))
    finally:
        conn.close()
    return out


def jwks_httpd(httpd, a, extra=""):
    return httpd(server_conf='DPoPTokenJWKS %s/jwks\n%s' % (a.base(), extra), extra_conf=METRICS)


# ---- JWKS URL -------------------------------------------------------------

def test_jwks_url_200(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    h = jwks_httpd(httpd, a)
    c = env.client_key()
    r = call(env, h, c, jwt(env, k, c))
    assert r.status == 200, (r.status, reason(r))
    assert "DPOP_JKT=%s" % c.jkt in r.text()
    assert metric_line(h, 'dpop_as_requests_total{kind="jwks",outcome="ok"}') >= 1
    assert metric(h, "dpop_as_keyset_age_seconds") is not None


def test_rotation_new_kid_refreshes_removed_key_refused(env, httpd, fake_as):
    """One child (ONE_CHILD), and the access log shows that one process
    answered everything: the key set and its refresh limit are per process,
    so the counts are exact, not a spread over children."""
    a = fake_as()
    k1, k2 = as_key(env), as_key(env)
    a.jwks = jwks_of(env, k1)
    h = jwks_httpd(httpd, a, ONE_CHILD)
    c = env.client_key()
    old = jwt(env, k1, c)
    for _ in range(3):
        assert call(env, h, c, old).status == 200
    assert a.count("/jwks") == 1
    # The AS rotates: k2 in, k1 out.  httpd is not touched.
    a.jwks = jwks_of(env, k2)
    new = jwt(env, k2, c)
    for _ in range(6):
        r = call(env, h, c, new)
        assert r.status == 200, (r.status, reason(r))
    assert a.count("/jwks") == 2  # one refresh, triggered by the new kid
    # After the refresh the old key is gone: refused, every time (k1 is now
    # an unknown kid: within 30 s of the refresh it costs the AS nothing).
    for status, www in burst(env, h, c, jwt(env, k1, c), 6):
        assert status == 401 and "invalid_token" in www, (status, www)
    assert len(served_by(h, "/api/x")) == 1, served_by(h, "/api/x")


def test_unknown_kid_refresh_rate_limited(env, httpd, fake_as):
    """At most one refresh per 30 s per process, however many requests name
    an unknown kid.  Deterministic: one child (checked in the access log),
    and both bursts are minted beforehand and sent on one keep-alive
    connection, so they fall well within the 30 s (checked too)."""
    a = fake_as()
    k1, stranger = as_key(env), as_key(env)
    a.jwks = jwks_of(env, k1)
    h = jwks_httpd(httpd, a, ONE_CHILD)
    c = env.client_key()
    for _ in range(3):
        assert call(env, h, c, jwt(env, k1, c)).status == 200
    before = a.count("/jwks")
    assert before == 1
    bad = jwt(env, stranger, c)
    t0 = time.monotonic()
    for status, www in burst(env, h, c, bad, 20):
        assert status == 401 and "invalid_token" in www, (status, www)
    # at most one refresh within 30 s, however many requests; a second
    # burst costs the AS nothing.
    after = a.count("/jwks")
    assert after == 2, after
    for status, www in burst(env, h, c, bad, 20):
        assert status == 401 and "invalid_token" in www, (status, www)
    assert a.count("/jwks") == after
    took = time.monotonic() - t0
    assert took < KID_REFRESH_INTERVAL, took  # the premise of "== after"
    assert len(served_by(h, "/api/x")) == 1, served_by(h, "/api/x")


def test_as_down_before_first_fetch_503(env, httpd, fake_as):
    a = fake_as()
    a.stop()  # nothing listens on its port
    h = jwks_httpd(httpd, a)
    k = as_key(env)
    c = env.client_key()
    t0 = time.time()
    r = call(env, h, c, jwt(env, k, c))
    assert r.status == 503
    assert time.time() - t0 < 10
    # one error line per interval, not one per request
    for _ in range(5):
        assert call(env, h, c, jwt(env, k, c)).status == 503
    lines = [l for l in h.error_log().splitlines() if "DPoPTokenJWKS" in l and "failed" in l]
    assert 1 <= len(lines) <= 3, lines


def test_one_fetch_in_flight_others_wait(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    a.delay["/jwks"] = 1.5
    h = jwks_httpd(httpd, a, ONE_CHILD)
    c = env.client_key()
    jobs = []
    for _ in range(8):
        t = jwt(env, k, c)
        jobs.append((t, env.proof(c, "GET", h.url("/api/x"), token=t)))
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda tp: h.request("GET", "/api/x", token=tp[0], proof=tp[1]), jobs))
    assert [r.status for r in rs] == [200] * 8
    assert a.count("/jwks") == 1


def test_slow_as_bounded_by_fetch_limit(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    a.delay["/jwks"] = 9
    h = jwks_httpd(httpd, a, ONE_CHILD)
    c = env.client_key()
    t0 = time.time()
    r = call(env, h, c, jwt(env, k, c))
    took = time.time() - t0
    assert r.status == 503
    assert 4 <= took < 8, took  # the 5 s bound, never the AS's 9 s
    assert metric_line(h, 'dpop_as_requests_total{kind="jwks",outcome="timeout"}') >= 1


def test_as_down_after_good_fetch_keeps_keys(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    h = jwks_httpd(httpd, a, "DPoPTokenRefresh 60\n" + ONE_CHILD)
    c = env.client_key()
    for _ in range(6):
        assert call(env, h, c, jwt(env, k, c)).status == 200
    a.stop()
    for _ in range(6):
        r = call(env, h, c, jwt(env, k, c))
        assert r.status == 200, (r.status, reason(r))


def test_jwks_over_1mib_refused(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    a.jwks["padding"] = "x" * (1024 * 1024 + 10)
    h = jwks_httpd(httpd, a)
    c = env.client_key()
    assert call(env, h, c, jwt(env, k, c)).status == 503
    assert "over 1048576 bytes" in h.error_log() or "too_large" in h.error_log()


def test_redirect_not_followed(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    a.status["/jwks"] = 302
    h = jwks_httpd(httpd, a)
    c = env.client_key()
    assert call(env, h, c, jwt(env, k, c)).status == 503
    assert a.count("/jwks-moved") == 0
    assert "redirects are not followed" in h.error_log()


def make_ca(env):
    """A throwaway CA and a server certificate for 127.0.0.1."""
    d = env.path("tls", "x")
    d = os.path.dirname(d)
    ossl = lambda *a: subprocess.run(["openssl"] + list(a), cwd=d, check=True,
                                     capture_output=True)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=dpop-test-ca")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.pem", "-days", "1", "-extfile", "san.ext")
    for f in ("ca.pem", "srv.pem"):
        os.chmod(os.path.join(d, f), 0o644)
    return os.path.join(d, "ca.pem"), (os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"))


def test_https_certificate_verified_with_ca_file(env, httpd, fake_as):
    ca, cert = make_ca(env)
    a = fake_as(tls=cert)
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    c = env.client_key()
    # not in the system store: refused (TLS), 503
    h = jwks_httpd(httpd, a)
    assert call(env, h, c, jwt(env, k, c)).status == 503
    assert metric_line(h, 'dpop_as_requests_total{kind="jwks",outcome="tls"}') >= 1
    h.stop()
    # with DPoPTokenCAFile: 200
    h = jwks_httpd(httpd, a, "DPoPTokenCAFile %s" % ca)
    r = call(env, h, c, jwt(env, k, c))
    assert r.status == 200, (r.status, reason(r))
    rc, out, err = dpopctl_token(env, "--jwks", a.base() + "/jwks", "--ca-file", ca,
                                 jwt(env, k, c))
    assert rc == 0, (out, err)
    rc, out, err = dpopctl_token(env, "--jwks", a.base() + "/jwks", jwt(env, k, c))
    assert rc == 2 and "tls" in err


# ---- metadata --------------------------------------------------------------

def meta_doc(a, issuer=ISSUER, introspection=True, jwks=True):
    d = {"issuer": issuer}
    if jwks:
        d["jwks_uri"] = a.base() + "/jwks"
    if introspection:
        d["introspection_endpoint"] = a.base() + "/introspect"
    return d


def test_metadata_discovery_200(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    a.meta = meta_doc(a)
    h = httpd_meta(httpd, a)
    c = env.client_key()
    r = call(env, h, c, jwt(env, k, c))
    assert r.status == 200, (r.status, reason(r))
    assert a.count("/meta") >= 1 and a.count("/jwks") >= 1
    assert metric_line(h, 'dpop_as_requests_total{kind="metadata",outcome="ok"}') >= 1


def httpd_meta(httpd, a, issuer_line="", extra=""):
    """A server whose /api names DPoPTokenMetadata: the innermost scope naming
    a key source decides, so the template's server-level JWKS file is not
    used there."""
    return httpd(server_conf=issuer_line + extra,
                 location_conf="Require valid-user\nDPoPTokenMetadata %s/meta" % a.base(),
                 extra_conf=METRICS)


def test_metadata_issuer_mismatch_refused(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    a.meta = meta_doc(a, issuer="https://evil.example.test")
    h = httpd_meta(httpd, a)
    c = env.client_key()
    r = call(env, h, c, jwt(env, k, c))
    assert r.status == 503
    assert "issuer does not equal DPoPTokenIssuer" in h.error_log()
    assert a.count("/jwks") == 0  # the keys of a wrong issuer are never fetched


# ---- introspection ----------------------------------------------------------

def opaque(env):
    return env.remember(secrets.token_urlsafe(32))


def intro_httpd(httpd, a, extra_loc="", server=""):
    return httpd(server_conf=server, location_conf=(
        "Require valid-user\nDPoPTokenFormat opaque\nDPoPTokenIntrospection %s/introspect\n%s"
        % (a.base(), extra_loc)), extra_conf=METRICS)


def active(c, **kw):
    d = {"active": True, "sub": "bob", "client_id": "svc-7", "iss": ISSUER, "aud": AUDIENCE,
         "exp": int(time.time()) + 300, "cnf": {"jkt": c.jkt}, "token_type": "DPoP"}
    d.update(kw)
    return d


def test_introspection_active_200_env(env, httpd, fake_as):
    a = fake_as()
    h = intro_httpd(httpd, a)
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    r = call(env, h, c, t)
    assert r.status == 200, (r.status, reason(r))
    body = r.text()
    assert "REMOTE_USER=bob" in body and "DPOP_TOKEN_SUB=bob" in body
    assert "DPOP_TOKEN_CLIENT_ID=svc-7" in body and "DPOP_JKT=%s" % c.jkt in body
    form = a.forms[-1]
    assert form["token"] == [t] and form["token_type_hint"] == ["access_token"]


@pytest.mark.parametrize("resp,want", [
    ({"active": False}, "token_invalid"),
    ("nocnf", "token_unbound"),
    ("otherjkt", "jkt_mismatch"),
    ("wrongaud", "token_invalid"),
    ("expired", "token_invalid"),
])
def test_introspection_rejections(env, httpd, fake_as, resp, want):
    a = fake_as()
    h = intro_httpd(httpd, a)
    c = env.client_key()
    t = opaque(env)
    if resp == "nocnf":
        d = active(c)
        d.pop("cnf")
    elif resp == "otherjkt":
        d = active(c, cnf={"jkt": env.client_key().jkt})
    elif resp == "wrongaud":
        d = active(c, aud="https://other.example.test")
    elif resp == "expired":
        d = active(c, exp=int(time.time()) - 600)
    else:
        d = resp
    a.introspection[t] = d
    r = call(env, h, c, t)
    assert r.status == 401 and 'error="invalid_token"' in reason(r), reason(r)
    assert want in h.error_log()


def test_bad_proof_never_reaches_as(env, httpd, fake_as):
    a = fake_as()
    h = intro_httpd(httpd, a)
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    proof = env.proof(c, "POST", h.url("/api/x"), token=t)  # wrong htm
    r = h.request("GET", "/api/x", token=t, proof=proof)
    assert r.status == 401 and "invalid_dpop_proof" in reason(r)
    assert a.count("/introspect") == 0


@pytest.mark.parametrize("status", [500, 503, 400, 401])
def test_introspection_as_errors_503_not_cached(env, httpd, fake_as, status):
    a = fake_as()
    h = intro_httpd(httpd, a)
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    a.status["/introspect"] = status
    for _ in range(3):
        assert call(env, h, c, t).status == 503
    assert a.count("/introspect") == 3  # never cached
    if status < 500:
        assert "configuration error" in h.error_log()
    del a.status["/introspect"]
    assert call(env, h, c, t).status == 200


def test_introspection_unreachable_503_one_log_line(env, httpd, fake_as):
    a = fake_as()
    a.stop()
    h = intro_httpd(httpd, a)
    c = env.client_key()
    for _ in range(8):
        t = opaque(env)
        assert call(env, h, c, t).status == 503
    lines = [l for l in h.error_log().splitlines() if "introspection at" in l]
    assert 1 <= len(lines) <= 3, lines  # one per child per interval


def test_introspection_cache_hit(env, httpd, fake_as):
    a = fake_as()
    h = intro_httpd(httpd, a, server="StartServers 1\nServerLimit 1\nMaxRequestWorkers 8")
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    for _ in range(5):
        assert call(env, h, c, t).status == 200
    assert a.count("/introspect") == 1
    assert metric(h, "dpop_introspection_cache_hits_total") >= 4
    # an inactive answer is cached a few seconds too
    bad = opaque(env)
    for _ in range(3):
        assert call(env, h, c, bad).status == 401
    assert a.count("/introspect") == 2


def test_introspection_cache_disabled_with_zero(env, httpd, fake_as):
    a = fake_as()
    h = intro_httpd(httpd, a, "DPoPTokenIntrospectionCache 0",
                    server="StartServers 1\nServerLimit 1\nMaxRequestWorkers 8")
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    for _ in range(3):
        assert call(env, h, c, t).status == 200
    assert a.count("/introspect") == 3


def test_introspection_concurrency_bound(env, httpd, fake_as):
    a = fake_as()
    a.delay["/introspect"] = 2.0
    h = intro_httpd(httpd, a, server=(
        "StartServers 1\nServerLimit 1\nThreadLimit 24\nThreadsPerChild 24\n"
        "MaxRequestWorkers 24\nMinSpareThreads 24\nMaxSpareThreads 48"))
    c = env.client_key()
    jobs = []
    for _ in range(20):
        t = opaque(env)
        a.introspection[t] = active(c)
        jobs.append((t, env.proof(c, "GET", h.url("/api/x"), token=t)))
    with ThreadPoolExecutor(20) as ex:
        rs = list(ex.map(lambda tp: h.request("GET", "/api/x", token=tp[0], proof=tp[1],
                                              timeout=30), jobs))
    statuses = [r.status for r in rs]
    assert statuses.count(200) >= 1
    assert statuses.count(503) >= 1, statuses
    assert a.count("/introspect") <= 8, a.count("/introspect")
    assert metric_line(h, 'dpop_as_requests_total{kind="introspection",outcome="overloaded"}') >= 1


def test_client_secret_basic(env, httpd, fake_as):
    a = fake_as()
    secret = env.remember("s3cr3t:with/odd+chars-" + secrets.token_hex(8))
    sf = env.path("cfg", "client-secret")
    with open(sf, "w") as f:
        f.write(secret + "\n")
    os.chmod(sf, 0o600)
    # RFC 6749 §2.3.1: id and secret form-urlencoded inside Basic
    from urllib.parse import quote_plus
    a.expect_basic = (quote_plus("rs-1"), quote_plus(secret))
    h = intro_httpd(httpd, a, "DPoPTokenIntrospectionAuth client_secret_basic rs-1 %s" % sf)
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    r = call(env, h, c, t)
    assert r.status == 200, (r.status, reason(r))
    # the AS refuses other credentials: 503, logged as a configuration error
    a.expect_basic = ("rs-1", "other")
    t2 = opaque(env)
    a.introspection[t2] = active(c)
    assert call(env, h, c, t2).status == 503
    assert "configuration error" in h.error_log()
    assert secret not in h.error_log()


def test_private_key_jwt(env, httpd, fake_as):
    a = fake_as()
    rs_key = env.keygen("ES256", env.path("keys", "rs-client.jwk"))
    os.chmod(rs_key.path, 0o600)
    h = intro_httpd(httpd, a, "DPoPTokenIntrospectionAuth private_key_jwt rs-2 %s" % rs_key.path)
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    r = call(env, h, c, t)
    assert r.status == 200, (r.status, reason(r))
    assert len(a.assertions) == 1
    form = a.forms[-1]
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assertion = env.remember(a.assertions[0])
    pub = env.path("keys", "rs-client-pub.json")
    with open(pub, "w") as f:
        json.dump(jwks_of(env, rs_key), f)
    v = env.tools.run(env.tools.dpopctl, "jws-verify", "--jwks", pub, assertion, check=False)
    assert json.loads(v.stdout)["valid"] is True, v.stdout
    claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
    assert claims["iss"] == claims["sub"] == "rs-2"
    assert claims["aud"] == a.base() + "/introspect"
    assert claims["exp"] > time.time() and claims["jti"]


def test_format_any_routes_by_shape(env, httpd, fake_as):
    a = fake_as()
    h = httpd(location_conf=(
        "Require valid-user\nDPoPTokenFormat any\nDPoPTokenIntrospection %s/introspect"
        % a.base()))
    c = env.client_key()
    assert call(env, h, c, env.token(jkt=c.jkt)).status == 200  # JWT: the file JWKS
    assert a.count("/introspect") == 0
    t = opaque(env)
    a.introspection[t] = active(c)
    assert call(env, h, c, t).status == 200
    assert a.count("/introspect") == 1


def test_opaque_bearer_not_introspected_without_allow_bearer(env, httpd, fake_as):
    a = fake_as()
    h = intro_httpd(httpd, a)
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    r = h.request("GET", "/api/x", token=t, scheme="Bearer")
    assert r.status == 401 and "token_unbound" in h.error_log()
    assert a.count("/introspect") == 0


def test_metadata_introspection_endpoint(env, httpd, fake_as):
    a = fake_as()
    a.meta = meta_doc(a, jwks=False)
    h = httpd(location_conf="Require valid-user\nDPoPTokenFormat opaque\n"
              "DPoPTokenMetadata %s/meta" % a.base())
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    r = call(env, h, c, t)
    assert r.status == 200, (r.status, reason(r))
    assert a.count("/introspect") == 1


# ---- apache2 -t ---------------------------------------------------------------

@pytest.mark.parametrize("loc,needles", [
    ("DPoPTokenJWKS http://as.example.com/jwks", ["DPoPTokenJWKS", "loopback"]),
    ("DPoPTokenJWKS ftp://127.0.0.1/jwks", ["DPoPTokenJWKS", "https"]),
    ("DPoPTokenMetadata not-a-url", ["DPoPTokenMetadata"]),
    ("DPoPTokenIntrospection https://user:pw@as.example.com/i", ["DPoPTokenIntrospection",
                                                                   "userinfo"]),
    ("DPoPTokenCAFile /nonexistent/ca.pem", ["DPoPTokenCAFile", "/nonexistent/ca.pem"]),
    ("DPoPTokenIntrospectionAuth client_secret_basic rs /nonexistent/secret",
     ["DPoPTokenIntrospectionAuth", "/nonexistent/secret"]),
    ("DPoPTokenIntrospectionAuth private_key_jwt rs /nonexistent/key.jwk",
     ["DPoPTokenIntrospectionAuth", "/nonexistent/key.jwk"]),
    ("DPoPTokenIntrospectionAuth magic rs x", ["DPoPTokenIntrospectionAuth", "magic"]),
    ("DPoPTokenFormat opaque", ["DPoPTokenFormat", "DPoPTokenIntrospection"]),
    ("DPoPTokenFormat xml", ["DPoPTokenFormat", "xml"]),
    ("DPoPTokenRefresh 5", ["DPoPTokenRefresh", "60..86400"]),
    ("DPoPTokenIntrospectionCache -1", ["DPoPTokenIntrospectionCache"]),
])
def test_configtest_refuses(env, loc, needles):
    h = env.httpd(location_conf="Require valid-user\n" + loc)
    rc, out = h.configtest()
    assert rc != 0, out
    for n in needles:
        assert n in out, (n, out)


def test_configtest_accepts_full_set(env):
    sf = env.path("cfg", "ok-secret")
    with open(sf, "w") as f:
        f.write("x\n")
    h = env.httpd(server_conf="DPoPTokenMetadata https://as.example.com/.well-known/"
                  "oauth-authorization-server\nDPoPTokenIntrospectionCache 30\n"
                  "DPoPTokenRefresh 600\nDPoPTokenCAFile /etc/ssl/certs/ca-certificates.crt",
                  location_conf="Require valid-user\nDPoPTokenFormat any\n"
                  "DPoPTokenIntrospectionAuth client_secret_basic rs %s" % sf)
    rc, out = h.configtest()
    assert rc == 0, out


# ---- dpopctl token from the same sources (issue 17 item 4) -------------------

def dpopctl_token(env, *args):
    r = env.tools.run(env.tools.dpopctl, "token", *args, check=False)
    try:
        out = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        out = None
    return r.returncode, out, r.stderr


def test_dpopctl_token_jwks_url_and_metadata(env, fake_as):
    a = fake_as()
    k = as_key(env)
    a.jwks = jwks_of(env, k)
    a.meta = meta_doc(a)
    c = env.client_key()
    t = jwt(env, k, c)
    rc, out, err = dpopctl_token(env, "--jwks", a.base() + "/jwks", "--iss", ISSUER, "--aud",
                                 AUDIENCE, t)
    assert rc == 0 and out["valid"] is True and out["jkt"] == c.jkt, (rc, out, err)
    assert out["source"] == "jwks"
    rc, out, err = dpopctl_token(env, "--metadata", a.base() + "/meta", "--iss", ISSUER, t)
    assert rc == 0 and out["valid"] is True, (rc, out, err)
    # a key the AS does not publish
    other = as_key(env)
    rc, out, _ = dpopctl_token(env, "--jwks", a.base() + "/jwks", jwt(env, other, c))
    assert rc == 1 and out["reason"] == "token_invalid"
    # the metadata of another issuer is refused (exit 2, named)
    rc, out, err = dpopctl_token(env, "--metadata", a.base() + "/meta", "--iss",
                                 "https://other.example.test", t)
    assert rc == 2 and "issuer" in err
    for s in (t,):
        assert s not in err


def test_dpopctl_token_introspection(env, fake_as):
    a = fake_as()
    a.meta = meta_doc(a)
    secret = env.remember("cli-secret-" + secrets.token_hex(6))
    sf = env.path("cfg", "cli-secret")
    with open(sf, "w") as f:
        f.write(secret + "\n")
    a.expect_basic = ("rs-9", secret)
    c = env.client_key()
    t = opaque(env)
    a.introspection[t] = active(c)
    args = ["--client-id", "rs-9", "--client-secret-file", sf, "--iss", ISSUER, "--aud", AUDIENCE]
    rc, out, err = dpopctl_token(env, "--introspect", a.base() + "/introspect", *args, t)
    assert rc == 0 and out["valid"] is True and out["jkt"] == c.jkt, (rc, out, err)
    assert out["sub"] == "bob" and out["source"] == "introspection"
    # the metadata finds the endpoint for an opaque token by itself
    rc, out, err = dpopctl_token(env, "--metadata", a.base() + "/meta", *args, t)
    assert rc == 0 and out["source"] == "introspection", (rc, out, err)
    # inactive -> 1 token_invalid; unbound -> 1 token_unbound
    rc, out, _ = dpopctl_token(env, "--introspect", a.base() + "/introspect", *args, opaque(env))
    assert rc == 1 and out["reason"] == "token_invalid"
    t2 = opaque(env)
    d = active(c)
    d.pop("cnf")
    a.introspection[t2] = d
    rc, out, _ = dpopctl_token(env, "--introspect", a.base() + "/introspect", *args, t2)
    assert rc == 1 and out["reason"] == "token_unbound"
    # wrong credentials: the AS answers 401 -> exit 2, no secret printed
    a.expect_basic = ("rs-9", "other")
    rc, out, err = dpopctl_token(env, "--introspect", a.base() + "/introspect", *args, t)
    assert rc == 2 and "401" in err and secret not in err and t not in err
    # unreachable
    a.stop()
    rc, _, err = dpopctl_token(env, "--introspect", a.base() + "/introspect", *args, t)
    assert rc == 2
    # non-loopback http refused before any request
    rc, _, err = dpopctl_token(env, "--jwks", "http://as.example.com/jwks", t)
    assert rc == 2 and "loopback" in err


def test_metadata_without_jwks_uri_jwt_503_not_refetched(env, httpd, fake_as):
    a = fake_as()
    k = as_key(env)
    a.meta = meta_doc(a, jwks=False)
    h = httpd_meta(httpd, a, extra=ONE_CHILD)
    c = env.client_key()
    for _ in range(5):
        assert call(env, h, c, jwt(env, k, c)).status == 503
    assert a.count("/meta") == 1  # fresh for DPoPTokenRefresh, not once per request
    assert "names no jwks_uri" in h.error_log()
