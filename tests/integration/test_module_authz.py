# SPDX-License-Identifier: Apache-2.0
"""`Require dpop-policy` in a real httpd (issue 4 item 2, module wiring).

What these tests prove:
- allowed key + route -> 200 and the backend sees DPOP_CLIENT;
- a route not allowed, an unknown key, a path that escapes via dot-segments
  -> 403 with `WWW-Authenticate: DPoP error="insufficient_scope"` and
  reason=policy_denied logged, WITHOUT AuthzSendForbiddenOnFailure in the
  config; revoked / not-yet-valid keys -> 403 key_revoked;
- authentication failures in the same location stay 401;
- <RequireAny> with another rule that grants: 200 and no insufficient_scope;
- an unbound Bearer token (DPoPAllowBearer) has no key: policy_denied;
- hot reload: a changed file is picked up within ~1 s without restart; a
  broken one logs file:line:column and the previous policy stays in force;
- report-only: a policy denial is logged and audited but passes;
- the 403 holds in every place the line can be written: <RequireAll>,
  <RequireAny> around <RequireAll>, a <Location> below the AuthType one, a
  deeper <Location> inheriting the Require, and .htaccess (AllowOverride
  AuthConfig); a denial by another rule of a <RequireAll> is 403 without
  insufficient_scope; an explicit AuthzSendForbiddenOnFailure Off wins (401);
  the outer location without the line is unaffected.
"""
import os
import re
import time

import pytest

from harness import BEARER_LOCATION, REPORT_ONLY_LOCATION, Client


def policy_yaml(allowed_jkt, revoked_jkt, future_jkt, extra_methods=""):
    methods = "[GET, POST%s]" % extra_methods
    return """version: 1
route_sets:
  invoices:
    - methods: %s
      paths: ["/api/invoices", "/api/invoices/**"]
clients:
  - name: billing-agent
    jkt: %s
    allow:
      - invoices
      - { methods: [GET], paths: ["/api/customers/*"] }
  - name: retired-agent
    jkt: %s
    revoked: true
    allow: [invoices]
  - name: future-agent
    jkt: %s
    not_before: 2099-01-01T00:00:00Z
    allow: [invoices]
""" % (methods, allowed_jkt, revoked_jkt, future_jkt)


def write_policy(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)  # atomic, new inode: what operators should do


@pytest.fixture
def setup(env, httpd):
    allowed, revoked, future = Client(env), Client(env), Client(env)
    pol = env.path("policy-%d" % env.next_id(), "policy.yaml")
    os.chmod(os.path.dirname(pol), 0o755)
    write_policy(pol, policy_yaml(allowed.key.jkt, revoked.key.jkt, future.key.jkt))
    h = httpd(server_conf='DPoPPolicyFile "%s"' % pol,
              location_conf="Require dpop-policy",
              extra_conf="""
<Location /api/any>
    <RequireAny>
        Require dpop-policy
        Require ip 127.0.0.1
    </RequireAny>
</Location>
""" + BEARER_LOCATION + REPORT_ONLY_LOCATION)
    return h, pol, allowed, revoked, future


def scope_error(r):
    wa = r.header("WWW-Authenticate") or ""
    return 'error="insufficient_scope"' in wa


def test_allowed_route_passes_with_client_name(setup):
    h, _, allowed, _, _ = setup
    r = allowed.call(h, "GET", "/api/invoices/7")
    assert r.status == 200, r
    assert r.backend_env()["DPOP_CLIENT"] == "billing-agent"
    assert r.backend_env()["DPOP_JKT"] == allowed.key.jkt
    assert allowed.call(h, "POST", "/api/invoices", body="{}").status == 200
    assert allowed.call(h, "GET", "/api/customers/42").status == 200


@pytest.mark.parametrize("method,path", [("DELETE", "/api/invoices/7"),
                                         ("GET", "/api/admin"),
                                         ("HEAD", "/api/invoices/7"),
                                         ("GET", "/api/invoices/../admin"),
                                         ("GET", "/api/customers/42/secrets")])
def test_route_not_allowed_is_403_policy_denied(setup, method, path):
    h, _, allowed, _, _ = setup
    r = allowed.call(h, method, path)
    assert r.status == 403, (method, path, r)
    assert scope_error(r)
    assert h.wait_log("reason=policy_denied ")


def test_unknown_key_is_403_policy_denied(env, setup):
    h = setup[0]
    stranger = Client(env)
    r = stranger.call(h, "GET", "/api/invoices/1")
    assert r.status == 403 and scope_error(r)
    assert h.wait_log("reason=policy_denied ")


def test_revoked_and_not_yet_valid_keys_are_key_revoked(setup):
    h, _, _, revoked, future = setup
    for c in (revoked, future):
        r = c.call(h, "GET", "/api/invoices/1")
        assert r.status == 403 and scope_error(r)
    assert h.error_log().count("reason=key_revoked ") >= 2


def test_authentication_failures_stay_401(env, setup):
    h, _, allowed, _, _ = setup
    p = env.proof(allowed.key, "GET", h.url("/api/elsewhere"), token=allowed.token)
    r = h.request("GET", "/api/invoices/1", token=allowed.token, proof=p)
    assert r.status == 401
    assert 'error="invalid_dpop_proof"' in r.header("WWW-Authenticate")
    assert h.request("GET", "/api/invoices/1").status == 401


def test_require_any_other_rule_grants(env, setup):
    h = setup[0]
    stranger = Client(env)
    r = stranger.call(h, "GET", "/api/any/x")
    assert r.status == 200, r
    assert r.header("WWW-Authenticate") is None


def test_bearer_without_key_is_policy_denied(env, setup):
    h = setup[0]
    t = env.token(jkt=None, sub="legacy")
    r = h.request("GET", "/api/bearer/invoices", token=t, scheme="Bearer")
    assert r.status == 403 and scope_error(r)


def test_bearer_log_says_authentication_not_acceptance(env, setup):
    """Issue 20 item 5: the DPoPAllowBearer stage logs what it did (the token
    passed authentication), not "accepted" for a request authorization then
    answers 403; the policy denial is logged by authorization."""
    h = setup[0]
    t = env.token(jkt=None, sub="legacy")
    r = h.request("GET", "/api/bearer/invoices", token=t, scheme="Bearer")
    assert r.status == 403
    h.wait_log("reason=policy_denied ")
    log = h.error_log()
    assert "Bearer token (unbound) passed authentication (DPoPAllowBearer On) for user legacy" \
        in log
    assert "token accepted" not in log
    h.assert_no_secrets()


def test_report_only_policy_denial_passes(env, setup):
    h, _, allowed, _, _ = setup
    r = allowed.call(h, "DELETE", "/api/ro/invoices/1")
    assert r.status == 200, r
    assert h.wait_log("report-only, would deny: reason=policy_denied ")


def test_hot_reload_and_broken_file_keeps_previous(env, setup):
    h, pol, allowed, revoked, future = setup
    assert allowed.call(h, "DELETE", "/api/invoices/7").status == 403
    write_policy(pol, policy_yaml(allowed.key.jkt, revoked.key.jkt, future.key.jkt,
                                  extra_methods=", DELETE"))
    # every child process must have picked the change up (each has its own
    # watch): wait until all 3 served the newly allowed request
    deadline = time.time() + 20
    pids = set()
    while time.time() < deadline and len(pids) < 3:
        if allowed.call(h, "DELETE", "/api/invoices/7").status != 200:
            time.sleep(0.2)
        pids = set(re.findall(r'"DELETE /api/invoices/7 HTTP/1.1" 200 \S+ pid=(\d+)',
                              h.access_log()))
    assert len(pids) >= 3, "policy change not picked up by every child: %s" % pids
    # a broken file: positioned error in the log, previous policy in force
    write_policy(pol, "version: 1\nclients:\n  - name: x\n    jkt: not-a-thumbprint\n")
    time.sleep(1.2)
    for _ in range(6):
        assert allowed.call(h, "DELETE", "/api/invoices/7").status == 200
    assert h.wait_log("policy reload failed, previous policy kept: %s:4:" % pol), \
        h.error_log()[-2000:]


# ------------------------------------------------ the 403 in other config shapes
# `Require dpop-policy` applies AuthzSendForbiddenOnFailure to the section
# it is parsed in (mod_dpop_authz.c).  These shapes check that this holds
# wherever an administrator may write the line, and that only a policy
# denial is reported as insufficient_scope.

SHAPES = """
<Location /api/all>
    <RequireAll>
        Require dpop-policy
        Require ip 127.0.0.1
    </RequireAll>
</Location>
<Location /api/all-ipdeny>
    <RequireAll>
        Require dpop-policy
        Require ip 192.0.2.1
    </RequireAll>
</Location>
<Location /api/nested>
    <RequireAny>
        <RequireAll>
            Require dpop-policy
            Require ip 127.0.0.1
        </RequireAll>
        Require ip 192.0.2.1
    </RequireAny>
</Location>
<Location /api/strict>
    Require dpop-policy
</Location>
<Location /api/strict/inner>
    DPoPMode enforce
</Location>
<Location /api/strict/off>
    Require dpop-policy
    AuthzSendForbiddenOnFailure Off
</Location>
ScriptAlias /htapi "{htdir}/echo.cgi"
<Directory "{htdir}">
    AllowOverride AuthConfig
    Options +ExecCGI
</Directory>
"""

SHAPED_POLICY = """version: 1
clients:
  - name: shaped-agent
    jkt: %s
    allow:
      - methods: [GET]
        paths: ["/api/all/ok/**", "/api/all-ipdeny/ok/**", "/api/nested/ok/**",
                "/api/strict/ok/**", "/api/strict/inner/ok/**", "/api/strict/off/ok/**",
                "/htapi/ok/**"]
"""


@pytest.fixture
def shaped(env, httpd):
    from harness import CGI_SCRIPT
    agent = Client(env)
    n = env.next_id()
    pol = env.path("policy-%d" % n, "policy.yaml")
    os.chmod(os.path.dirname(pol), 0o755)
    write_policy(pol, SHAPED_POLICY % agent.key.jkt)
    htdir = os.path.dirname(env.path("htcgi-%d" % n, "echo.cgi"))
    os.chmod(htdir, 0o755)
    with open(os.path.join(htdir, "echo.cgi"), "w") as f:
        f.write(CGI_SCRIPT)
    os.chmod(os.path.join(htdir, "echo.cgi"), 0o755)
    with open(os.path.join(htdir, ".htaccess"), "w") as f:
        f.write("AuthType DPoP\nRequire dpop-policy\n")
    os.chmod(os.path.join(htdir, ".htaccess"), 0o644)
    h = httpd(server_conf='DPoPPolicyFile "%s"' % pol, location_conf="Require valid-user",
              extra_conf=SHAPES.replace("{htdir}", htdir))
    return h, agent


@pytest.mark.parametrize("base", ["/api/all", "/api/nested", "/api/strict",
                                  "/api/strict/inner", "/htapi"])
def test_policy_403_in_every_section_shape(env, shaped, base):
    """<RequireAll>, <RequireAny> around <RequireAll>, a <Location> below the
    AuthType one, a deeper <Location> that inherits the Require, and a
    .htaccess (AllowOverride AuthConfig): the allowed route passes, another
    route and an unknown key get 403 insufficient_scope, and authentication
    failures stay 401."""
    h, agent = shaped
    r = agent.call(h, "GET", base + "/ok/1")
    assert r.status == 200, (base, r)
    assert r.backend_env()["DPOP_CLIENT"] == "shaped-agent"
    r = agent.call(h, "GET", base + "/no/1")
    assert r.status == 403 and scope_error(r), (base, r)
    r = Client(env).call(h, "GET", base + "/ok/1")
    assert r.status == 403 and scope_error(r), (base, r)
    # no credentials / a wrong htu: 401, never turned into 403
    r = h.request("GET", base + "/ok/1")
    assert r.status == 401 and "error=" not in r.header("WWW-Authenticate"), (base, r)
    p = env.proof(agent.key, "GET", h.url("/elsewhere"), token=agent.token)
    r = h.request("GET", base + "/ok/1", token=agent.token, proof=p)
    assert r.status == 401 and 'error="invalid_dpop_proof"' in r.header("WWW-Authenticate")
    assert h.error_log().count("reason=policy_denied ") == 2


def test_denial_by_another_rule_is_not_insufficient_scope(shaped):
    """<RequireAll> where the policy allows but `Require ip` denies: 403 (the
    section's flag), and no insufficient_scope challenge or policy audit,
    because the policy did not deny."""
    h, agent = shaped
    r = agent.call(h, "GET", "/api/all-ipdeny/ok/1")
    assert r.status == 403, r
    assert not scope_error(r)
    assert "reason=policy_denied " not in h.error_log()


def test_explicit_forbidden_off_is_honoured(shaped):
    """An administrator's `AuthzSendForbiddenOnFailure Off` after the Require
    line wins (httpd's 401 for a denied user), and the challenge still says
    insufficient_scope so the client knows why."""
    h, agent = shaped
    assert agent.call(h, "GET", "/api/strict/off/ok/1").status == 200
    r = agent.call(h, "GET", "/api/strict/off/no/1")
    assert r.status == 401, r
    assert scope_error(r)


def test_outer_location_without_policy_is_unaffected(env, shaped):
    """The flag is set only where `Require dpop-policy` is written: the outer
    /api location (Require valid-user) lets any authenticated key through."""
    h, _ = shaped
    r = Client(env).call(h, "GET", "/api/other")
    assert r.status == 200, r
    assert r.backend_env()["DPOP_CLIENT"] == "<unset>"
