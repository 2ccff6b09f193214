# SPDX-License-Identifier: Apache-2.0
"""Regression tests for the security review of mod_dpop (issue 15, findings
1 to 5), each against a real httpd:

1. htu is judged on the request target exactly as the client sent it
   (r->unparsed_uri, its path part for an absolute-form target), never on
   httpd's percent-decoded, slash-merged r->uri: a proof for /api/a is
   refused at /api/a%3Fzzz and /api/a%23zzz, and a proof whose htu is the
   sent target is accepted whatever it holds (%20, UTF-8, %3F, //), with the
   RFC 3986 §6.2.2 equivalences (percent-encoding case, unreserved octets).
2. An authentication is reused by an internal redirect or a subrequest only
   when the target verifies requests the same way (same effective DPoP
   configuration); otherwise the target refuses (401 token_invalid): CGI
   local redirects, mod_rewrite, ErrorDocument, mod_dir subrequests.
3. Nothing the per-request record keeps comes from a subrequest's pool: a
   policy denial of a DirectoryIndex subrequest, read after mod_dir
   destroyed the subrequest, with MaxMemFree 1 and freed memory poisoned
   (MALLOC_PERTURB_); under the ASan stage of scripts/test.sh the same test
   fails on any use-after-free (the harness scans the error log).
4. The DPoP proof and client-sent DPoP-* / X-DPoP-* headers are removed for
   every `AuthType DPoP` request, also when authorization passes without
   authentication (Require ip in a RequireAny, Require all granted).
5. A token with any non-empty cnf (RFC 8705 x5t#S256, RFC 7800 jwk/kid...)
   is sender-constrained: refused as Bearer (bearer_downgrade) even with
   DPoPAllowBearer On.
The conftest-style teardown checks no credential reached a log and no
process crashed.
"""
import json
import os
import subprocess
import time

import pytest

from harness import AUDIENCE, ISSUER, Client, expect_backend

OTHER_AUDIENCE = "https://other.example.test"

REDIRECT_CGI = """#!/bin/sh
# A CGI local redirect (RFC 3875 §6.2.2): "Location: /path" with no Status
# makes httpd serve /path through an internal redirect.
printf 'Location: %s\\r\\n\\r\\n' "$QUERY_STRING"
"""

ENV_CGI = """#!/bin/sh
# Echoes the names and values of every DPoP-looking variable it received.
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "BACKEND=ok"
env | grep -i -e dpop -e underscore | sort
"""

SERVER_CONF = """
MaxMemFree 1
DPoPPolicyFile "{policy}"
DPoPAuditLog "{audit}"
DPoPAuditMapSize 16M
DirectoryIndex index.html
"""

EXTRA_MODULES = """
LoadModule rewrite_module {mods}/mod_rewrite.so
LoadModule dir_module {mods}/mod_dir.so
LoadModule env_module {mods}/mod_env.so
"""

EXTRA_CONF = """
# ---- finding 1: DPoPExternalURL keeps building htu from its base
<Location /api/ext>
    DPoPExternalURL https://public.example.test/prefix/
</Location>
<Location /api/bearer>
    DPoPAllowBearer On
</Location>

# ---- finding 2: redirect sources (Bearer allowed) and targets
ScriptAlias /redir "{root}/cgi/redir.cgi"
<Location /redir>
    AuthType DPoP
    DPoPAllowBearer On
    Require valid-user
</Location>
ScriptAlias /same "{root}/cgi/echo.cgi"
<Location /same>
    AuthType DPoP
    DPoPAllowBearer On
    DPoPClockSkew 5
    Require valid-user
</Location>
ScriptAlias /strict "{root}/cgi/echo.cgi"
<Location /strict>
    AuthType DPoP
    DPoPTokenAudience {other_aud}
    Require valid-user
</Location>
Alias /gone "{root}/nonexistent"
<Location /gone>
    AuthType DPoP
    DPoPAllowBearer On
    Require valid-user
    ErrorDocument 404 /strict/errdoc
</Location>
Alias /rw "{root}/rwdir"
<Directory "{root}/rwdir">
    Options FollowSymLinks
    RewriteEngine On
    RewriteRule ^ /strict/rewritten [L]
</Directory>
<Location /rw>
    AuthType DPoP
    DPoPAllowBearer On
    Require valid-user
</Location>
Alias /idx "{root}/idx"
<Directory "{root}/idx">
    DirectoryIndex secret.html index.html
    <Files secret.html>
        DPoPTokenAudience {other_aud}
    </Files>
    <Files index.html>
        Header set X-Index served
    </Files>
</Directory>
<Location /idx>
    AuthType DPoP
    DPoPAllowBearer On
    Require valid-user
</Location>
Alias /same-idx "{root}/same-idx"
<Directory "{root}/same-idx">
    <Files index.html>
        Header set X-Index served
    </Files>
</Directory>
<Location /same-idx>
    AuthType DPoP
    Require valid-user
</Location>

# ---- finding 3: the index subrequest is denied by the policy
Alias /pol "{root}/pol"
<Location /pol>
    AuthType DPoP
    Require valid-user
</Location>
<Location /pol/index.html>
    Require dpop-policy
</Location>

# ---- finding 4: authorization that passes without authentication
ScriptAlias /ipopen "{root}/cgi/env.cgi"
<Location /ipopen>
    AuthType DPoP
    RequestHeader set X-Underscore-Seen yes "expr=-n req('X_DPoP_Sub')"
    <RequireAny>
        Require ip 127.0.0.1
        Require valid-user
    </RequireAny>
</Location>
ScriptAlias /granted "{root}/cgi/env.cgi"
<Location /granted>
    AuthType DPoP
    Require all granted
</Location>
"""


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    os.chmod(os.path.dirname(path), 0o755)


@pytest.fixture(scope="module")
def policy_client(env):
    return Client(env, sub="alice", client_id="reviewer")


@pytest.fixture(scope="module")
def srv(env, policy_client):
    """One httpd with every configuration these findings need."""
    from harness import MODULES
    h = env.httpd(name="review")
    root = h.root
    policy = os.path.join(root, "policy", "policy.yaml")
    # the policy knows the client but allows it nothing under /pol
    write(policy, "version: 1\nclients:\n  - name: reviewer\n    jkt: %s\n    allow:\n"
          "      - { methods: [GET], paths: [\"/elsewhere\"] }\n" % policy_client.key.jkt)
    write(os.path.join(root, "cgi", "redir.cgi"), REDIRECT_CGI, 0o755)
    write(os.path.join(root, "cgi", "env.cgi"), ENV_CGI, 0o755)
    os.makedirs(os.path.join(root, "rwdir"), exist_ok=True)
    os.chmod(os.path.join(root, "rwdir"), 0o755)
    write(os.path.join(root, "idx", "secret.html"), "SECRET-INDEX\n")
    write(os.path.join(root, "idx", "index.html"), "PLAIN-INDEX\n")
    write(os.path.join(root, "same-idx", "index.html"), "SAME-INDEX\n")
    write(os.path.join(root, "pol", "index.html"), "POLICY-INDEX\n")
    audit = os.path.join(root, "audit")
    h.server_conf = SERVER_CONF.format(policy=policy, audit=audit)
    h.extra_modules = EXTRA_MODULES.format(mods=MODULES)
    h.extra_conf = EXTRA_CONF.format(root=root, other_aud=OTHER_AUDIENCE)
    # glibc fills freed memory with a pattern: a read through a pointer into
    # a destroyed pool sees garbage instead of the old string
    h.environ = {"MALLOC_PERTURB_": "165"}
    h.audit_dir = audit
    h.start()
    yield h
    h.stop()
    h.assert_no_secrets()
    h.assert_no_crash()


def log_mark(h):
    return len(h.error_log())


def new_log(h, mark):
    return h.error_log()[mark:]


def challenge_error(resp):
    wa = resp.header("WWW-Authenticate") or ""
    if 'error="' not in wa:
        return None
    return wa.split('error="', 1)[1].split('"', 1)[0]


def signed_token(env, claims):
    """An access token with exactly these claims (on top of iss, aud, sub,
    client_id, iat, exp), signed by the authorization server's key."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "cert-app", "client_id": "mtls",
               "iat": now, "exp": now + 300}
    payload.update(claims)
    header = {"typ": "at+jwt", "alg": "ES256", "kid": "as-1"}
    return env.craft(env.as_key, header, payload)


def send_dpop(env, h, c, method, target, htu):
    """One DPoP request with target sent as is and a proof for htu."""
    p = env.proof(c.key, method, htu, token=c.token)
    return h.request(method, target, token=c.token, proof=p)


# ====================================================== finding 1: htu


@pytest.mark.parametrize("target", ["/api/a%3Fzzz", "/api/a%23zzz", "/api/a%3fzzz",
                                     "/api/a%2523zzz", "/api//a", "/api/a%2Fzzz"])
def test_htu_proof_for_other_path_rejected(env, srv, target):
    """A proof for /api/a is no proof for a target whose decoded path merely
    looks like /api/a (%3F, %23 decode to ? and #: a CGI sees
    PATH_INFO=/a?zzz, another resource), nor for /api//a."""
    c = Client(env)
    mark = log_mark(srv)
    r = send_dpop(env, srv, c, "GET", target, srv.url("/api/a"))
    assert r.status in (401, 404), (target, r)
    assert "BACKEND=ok" not in r.text()
    if r.status == 401:
        assert challenge_error(r) == "invalid_dpop_proof"
        assert srv.wait_log("reason=htu_mismatch ")
        assert "reason=htu_mismatch " in new_log(srv, mark)


@pytest.mark.parametrize("target,path_info", [
    ("/api/a%20b", "/a b"),
    ("/api/caf%C3%A9", "/caf\u00e9"),
    ("/api/a%3Fzzz", "/a?zzz"),
    ("/api/a%23zzz", "/a#zzz"),
    ("/api//a", "/a"),
    ("/api/%7Euser", "/~user"),
    ("/api/x%2Ey", "/x.y"),
])
def test_htu_exactly_as_sent_accepted(env, srv, target, path_info):
    """htu = the target the client sent (no query): accepted whatever
    httpd makes of it after percent-decoding and slash merging."""
    c = Client(env)
    r = send_dpop(env, srv, c, "GET", target + "?q=1", srv.url(target))
    be = expect_backend(r, DPOP_JKT=c.key.jkt)
    assert be["PATH_INFO"] == path_info


@pytest.mark.parametrize("sent,htu_path", [
    ("/api/caf%c3%a9", "/api/caf%C3%A9"),    # §6.2.2.1: hex case
    ("/api/caf%C3%A9", "/api/caf%c3%a9"),
    ("/api/a%3fb", "/api/a%3Fb"),
    ("/api/%7Euser", "/api/~user"),           # §6.2.2.2: unreserved decoded
    ("/api/~user", "/api/%7euser"),
    ("/api/b/../a", "/api/a"),                # §6.2.2.3: dot-segments
    ("/api/%41", "/api/A"),
])
def test_htu_equivalent_encodings_accepted(env, srv, sent, htu_path):
    c = Client(env)
    r = send_dpop(env, srv, c, "GET", sent, srv.url(htu_path))
    expect_backend(r, DPOP_JKT=c.key.jkt)


@pytest.mark.parametrize("sent,htu_path", [
    ("/api/a%2Fb", "/api/a/b"),               # reserved: %2F is not "/"
    ("/api/a%3Fb", "/api/a?b"),               # ... nor %3F "?" (query dropped)
    ("/api/a%20b", "/api/a%2520b"),
    ("/api/a", "/api/%61%2F"),
])
def test_htu_reserved_encodings_not_decoded(env, srv, sent, htu_path):
    c = Client(env)
    r = send_dpop(env, srv, c, "GET", sent, srv.url(htu_path))
    assert r.status in (401, 404), (sent, r)
    assert "BACKEND=ok" not in r.text()


def test_htu_absolute_form_target(env, srv):
    """An absolute-form request target (RFC 9112 §3.2.2): its path part is
    what htu is compared with, again as sent."""
    c = Client(env)
    r = send_dpop(env, srv, c, "GET", srv.url("/api/a%3Fzzz?q=1"), srv.url("/api/a"))
    assert r.status == 401 and challenge_error(r) == "invalid_dpop_proof"
    r = send_dpop(env, srv, c, "GET", srv.url("/api/a%3Fzzz?q=1"), srv.url("/api/a%3Fzzz"))
    expect_backend(r, DPOP_JKT=c.key.jkt, PATH_INFO="/a?zzz")


def test_htu_external_url_unchanged(env, srv):
    c = Client(env)
    base = "https://public.example.test/prefix"
    r = send_dpop(env, srv, c, "GET", "/api/ext/x?q=1", base + "/api/ext/x")
    expect_backend(r, DPOP_JKT=c.key.jkt)
    r = send_dpop(env, srv, c, "GET", "/api/ext/a%20b", base + "/api/ext/a%20b")
    expect_backend(r, DPOP_JKT=c.key.jkt, PATH_INFO="/ext/a b")
    r = send_dpop(env, srv, c, "GET", "/api/ext/a%3Fz", base + "/api/ext/a")
    assert r.status == 401 and challenge_error(r) == "invalid_dpop_proof"
    r = send_dpop(env, srv, c, "GET", "/api/ext/x", srv.url("/api/ext/x"))
    assert r.status == 401 and challenge_error(r) == "invalid_dpop_proof"


# ====================================================== finding 2: reuse


def bearer(env, sub="legacy-app"):
    return env.token(jkt=None, sub=sub, client_id="legacy")


@pytest.mark.parametrize("target", ["/strict/x", "/api/x"])
def test_cgi_local_redirect_to_other_config_refused(env, srv, target):
    """/redir accepts an unbound Bearer token; its CGI answers
    `Location: <target>`, which httpd serves by an internal redirect.  The
    target verifies differently (another audience; no Bearer): refused."""
    mark = log_mark(srv)
    r = srv.request("GET", "/redir?" + target, token=bearer(env), scheme="Bearer")
    assert r.status == 401, r
    assert "BACKEND=ok" not in r.text()
    assert srv.wait_log("reason=token_invalid ")
    log = new_log(srv, mark)
    assert "reason=token_invalid " in log and "verified under another" in log


def test_cgi_local_redirect_dpop_to_other_config_refused(env, srv):
    c = Client(env)
    r = send_dpop(env, srv, c, "GET", "/redir?/strict/y", srv.url("/redir"))
    assert r.status == 401, r
    assert "BACKEND=ok" not in r.text()


def test_cgi_local_redirect_same_config_reused(env, srv):
    """/same verifies exactly as /redir does (an explicit DPoPClockSkew 5 is
    the default): the authentication is reused, for Bearer and DPoP."""
    r = srv.request("GET", "/redir?/same/x", token=bearer(env, "bob"), scheme="Bearer")
    expect_backend(r, REMOTE_USER="bob", AUTH_TYPE="DPoP", DPOP_TOKEN_SUB="bob")
    c = Client(env, sub="carol")
    r = send_dpop(env, srv, c, "GET", "/redir?/same/y", srv.url("/redir"))
    expect_backend(r, REMOTE_USER="carol", DPOP_JKT=c.key.jkt)


def test_rewrite_internal_redirect_to_other_config_refused(env, srv):
    r = srv.request("GET", "/rw/anything", token=bearer(env), scheme="Bearer")
    assert r.status == 401, r
    assert "BACKEND=ok" not in r.text()


def test_error_document_to_other_config_refused(env, srv):
    """ErrorDocument 404 /strict/errdoc: the error page is served by an
    internal redirect into a location that would not accept the caller."""
    r = srv.request("GET", "/gone/x", token=bearer(env), scheme="Bearer")
    assert r.status in (401, 404), r
    assert "BACKEND=ok" not in r.text()
    assert "legacy-app" not in r.text()


def test_directory_index_subrequest_other_config_refused(env, srv):
    """DirectoryIndex secret.html index.html where secret.html requires
    another audience: mod_dir's subrequest for it is refused, index.html
    (same configuration) is served."""
    r = srv.request("GET", "/idx/", token=bearer(env), scheme="Bearer")
    assert r.status == 200, r
    assert "PLAIN-INDEX" in r.text() and "SECRET-INDEX" not in r.text()
    assert r.header("X-Index") == "served"
    r = srv.request("GET", "/idx/secret.html", token=bearer(env), scheme="Bearer")
    assert r.status == 401


def test_directory_index_subrequest_same_config_reused(env, srv):
    """mod_dir's index subrequest (another per-dir config, same DPoP
    configuration) keeps working for a DPoP request: the single-use proof is
    not checked again."""
    c = Client(env)
    r = send_dpop(env, srv, c, "GET", "/same-idx/", srv.url("/same-idx/"))
    assert r.status == 200, r
    assert "SAME-INDEX" in r.text() and r.header("X-Index") == "served"


# ====================================================== finding 3: pools


def audit_events(env, store):
    r = subprocess.run([env.tools.dpop_audit, "--store", store, "list", "--format", "json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def test_policy_denied_index_subrequest_no_use_after_free(env, srv, policy_client):
    """Require dpop-policy on /pol/index.html only: mod_dir's subrequest for the
    index is denied by the policy and destroyed; the request then ends in 403
    and the error filter reads what the denial recorded.  Every string the
    record keeps must still be there (allocated from the main request's
    pool): with MaxMemFree 1 and MALLOC_PERTURB_ a dangling pointer reads
    garbage or crashes the child, under ASan it is reported."""
    c = policy_client
    for i in range(8):
        r = send_dpop(env, srv, c, "GET", "/pol/", srv.url("/pol/"))
        assert r.status == 403, r
        assert challenge_error(r) == "insufficient_scope"
    r = send_dpop(env, srv, c, "GET", "/pol/index.html", srv.url("/pol/index.html"))
    assert r.status == 403 and challenge_error(r) == "insufficient_scope"
    time.sleep(0.5)
    srv.assert_no_crash()
    events = [e for e in audit_events(env, srv.audit_dir)
              if e["reason"] == "policy_denied" and e["path"].startswith("/pol/")]
    assert len(events) >= 9, events
    for e in events:
        # the detail the (destroyed) subrequest's denial recorded, intact
        assert e["detail"] == ("client=reviewer rule=client reviewer: no allow entry matches "
                               "(default deny)"), e["detail"]
        assert e["policy_client"] == "reviewer", e
        assert e["jkt"] == c.key.jkt and e["token_sub"] == "alice", e


# ====================================================== finding 4: headers

SPOOFED = [("X-DPoP-JKT", "spoofed-jkt"), ("DPoP-JKT", "spoofed-jkt2"),
           ("X-DPoP-Client-ID", "spoofed-cid"), ("X-DPoP-Sub", "spoofed-sub"),
           ("X_DPoP_Sub", "spoofed-underscore"), ("dpop-nonce", "spoofed-nonce")]


def dumped_env(r):
    out = {}
    for line in r.text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def assert_nothing_leaked(r, proof):
    """Names only in messages: the values are credentials."""
    be = dumped_env(r)
    leaked = sorted(k for k in be if k.startswith("HTTP_") and "DPOP" in k.upper())
    assert leaked == [], leaked
    proof_seen = proof in r.text()
    assert not proof_seen, "the proof reached the backend"
    spoof_seen = "spoofed" in r.text()
    assert not spoof_seen, "a client-sent DPoP header reached the backend"


@pytest.mark.parametrize("path", ["/ipopen/x", "/granted/x"])
def test_headers_stripped_when_authz_passes_without_authn(env, srv, path):
    """<RequireAny> Require ip 127.0.0.1 / Require valid-user passes by IP
    (and Require all granted always does): check_authn never runs, yet the
    backend must see neither the proof nor any client-sent DPoP-* or
    X-DPoP-* header."""
    c = Client(env)
    p = env.proof(c.key, "GET", srv.url(path), token=c.token)
    r = srv.request("GET", path, proof=p, headers=SPOOFED)
    assert r.status == 200, r
    be = dumped_env(r)
    assert be.get("BACKEND") == "ok", sorted(be)
    assert_nothing_leaked(r, p)
    # X_DPoP_Sub (underscores: CGI drops it, a proxy would not) as a
    # RequestHeader rule (a later fixup) sees it: gone
    if path.startswith("/ipopen"):
        assert "HTTP_X_UNDERSCORE_SEEN" not in be, "underscore header leaked"
    # no verified identity either: nothing was verified
    assert "DPOP_JKT" not in be and "REMOTE_USER" not in be


def test_headers_stripped_with_credentials_passing_by_ip(env, srv):
    """Valid credentials on a request that passes by IP: still no proof and
    no spoofed header for the backend."""
    c = Client(env)
    p = env.proof(c.key, "GET", srv.url("/ipopen/y"), token=c.token)
    r = srv.request("GET", "/ipopen/y", token=c.token, proof=p, headers=SPOOFED)
    assert r.status == 200, r
    assert_nothing_leaked(r, p)


# ====================================================== finding 5: cnf

X5T = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"


@pytest.mark.parametrize("cnf", [
    {"x5t#S256": X5T},                                    # RFC 8705 §3.1
    {"jwk": {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}},   # RFC 7800 §3.2
    {"kid": "some-key"},                                  # RFC 7800 §3.4
    {"x5t#S256": X5T, "other": 1},
    {"unknown-method": "x"},                              # future confirmation methods
], ids=["x5t#S256", "jwk", "kid", "x5t+other", "unknown"])
def test_bearer_with_any_cnf_is_downgrade(env, srv, cnf):
    """Any non-empty cnf binds the token to something the Bearer scheme
    cannot prove (a client certificate, a key): bearer_downgrade, even with
    DPoPAllowBearer On."""
    tok = signed_token(env, {"cnf": cnf})
    mark = log_mark(srv)
    r = srv.request("GET", "/api/bearer/x", token=tok, scheme="Bearer")
    assert r.status == 401, r
    assert challenge_error(r) == "invalid_token"
    assert "BACKEND=ok" not in r.text()
    assert srv.wait_log("reason=bearer_downgrade ")
    assert "reason=bearer_downgrade " in new_log(srv, mark)


def test_bearer_unbound_still_accepted(env, srv):
    """No cnf, or an empty cnf object (no confirmation method): unbound, so
    DPoPAllowBearer On accepts it, and only there."""
    for claims in ({}, {"cnf": {}}):
        tok = signed_token(env, claims)
        r = srv.request("GET", "/api/bearer/x", token=tok, scheme="Bearer")
        expect_backend(r, REMOTE_USER="cert-app")
        r = srv.request("GET", "/api/x", token=tok, scheme="Bearer")
        assert r.status == 401 and challenge_error(r) == "invalid_token"


def test_dpop_scheme_cnf_without_jkt_is_unbound(env, srv):
    """The DPoP scheme with a certificate-bound token (cnf without jkt):
    still token_unbound."""
    c = Client(env)
    tok = signed_token(env, {"cnf": {"x5t#S256": X5T}})
    p = env.proof(c.key, "GET", srv.url("/api/bearer/y"), token=tok)
    mark = log_mark(srv)
    r = srv.request("GET", "/api/bearer/y", token=tok, proof=p)
    assert r.status == 401 and challenge_error(r) == "invalid_token"
    assert srv.wait_log("reason=token_unbound ")
    assert "reason=token_unbound " in new_log(srv, mark)
