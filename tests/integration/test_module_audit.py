# SPDX-License-Identifier: Apache-2.0
"""mod_dpop audit wiring in a real httpd (issue 5 item 2, module side).

What these tests prove:
- every rejection (authn 401s, policy 403s) and every report-only would-be
  rejection becomes exactly one event in the LMDB store, read back with
  `dpop-audit list --format json`, with vhost, request id (mod_unique_id),
  client IP, user agent, method, path without query, mode and the proof and
  token fields known (jkt, jti, htm, htu, alg, iat, token_hash = ath, sub,
  client_id, policy client), and a token sent without its proof is still
  identified by its hash;
- neither the access token nor the proof is anywhere in the store files;
- an audit store the children cannot open leaves every request outcome
  unchanged and is reported in the error log at most once per interval per
  process.
"""
import base64
import hashlib
import json
import os
import subprocess
import time

import pytest

from harness import Client


def ath(token):
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).decode().rstrip("=")


def audit_list(env, store, *args):
    r = subprocess.run([env.tools.dpop_audit, "--store", store, "list", "--format", "json"]
                       + list(args), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


@pytest.fixture
def audited(env, httpd):
    if not os.path.exists(env.tools.dpop_audit):
        pytest.skip("dpop-audit not built")
    store = os.path.join(env.dir, "audit-%d" % env.next_id())  # created by post_config
    pol = env.path("pol-%d" % env.next_id(), "policy.yaml")
    with open(pol, "w") as f:
        f.write("version: 1\nclients: []\n")
    os.chmod(pol, 0o644)
    os.chmod(os.path.dirname(pol), 0o755)
    h = httpd(server_conf='DPoPAuditLog "%s"\nDPoPAuditMapSize 16M\nDPoPPolicyFile "%s"'
              % (store, pol),
              extra_modules="LoadModule unique_id_module /usr/lib/apache2/modules/mod_unique_id.so",
              extra_conf="""
<Location /api/ro>
    DPoPMode report-only
</Location>
<Location /api/pol>
    Require dpop-policy
</Location>
""")
    return h, store


def test_rejections_are_audited_with_fields(env, audited):
    h, store = audited
    c = Client(env, sub="alice", client_id="billing")
    ua = {"User-Agent": "audit-test/1.0"}
    # 1. replay
    p = env.proof(c.key, "GET", h.url("/api/r"), token=c.token)
    assert h.request("GET", "/api/r?secret=q", token=c.token, proof=p, headers=ua).status == 200
    assert h.request("GET", "/api/r?secret=q", token=c.token, proof=p, headers=ua).status == 401
    # 2. htu mismatch
    p2 = env.proof(c.key, "POST", h.url("/api/other"), token=c.token)
    assert h.request("POST", "/api/h", token=c.token, proof=p2, headers=ua, body="x").status == 401
    # 3. bearer downgrade
    assert h.request("GET", "/api/b", token=c.token, scheme="Bearer", headers=ua).status == 401
    # 4. report-only would-be rejection
    p4 = env.proof(c.key, "GET", h.url("/api/nowhere"), token=c.token)
    assert h.request("GET", "/api/ro/x", token=c.token, proof=p4, headers=ua).status == 200
    # 5. policy denial (empty policy: default deny)
    r = c.call(h, "GET", "/api/pol/x", headers=ua)
    assert r.status == 403
    # 6. the token without its proof: the event still identifies the token
    assert h.request("GET", "/api/np", token=c.token, headers=ua).status == 401
    h.stop()  # the child pool cleanup commits the queue

    events = audit_list(env, store)
    by_reason = {}
    for e in events:
        by_reason.setdefault(e["reason"], []).append(e)
    assert sorted(by_reason) == sorted(["replay", "htu_mismatch", "bearer_downgrade",
                                        "policy_denied", "missing_proof"]), events
    assert len(by_reason["replay"]) == 1
    assert len(by_reason["htu_mismatch"]) == 2  # enforce + report-only
    assert len(events) == 6
    mp = by_reason["missing_proof"][0]
    assert mp["token_hash"] == ath(c.token) and mp["jkt"] is None

    rep = by_reason["replay"][0]
    assert rep["error"] == "invalid_dpop_proof"
    assert rep["jkt"] == c.key.jkt
    assert rep["jti"] and rep["htm"] == "GET" and rep["alg"] == "ES256"
    assert rep["htu"] == h.url("/api/r")
    assert isinstance(rep["iat"], int)
    assert rep["token_hash"] == ath(c.token)
    assert rep["token_sub"] == "alice" and rep["token_client_id"] == "billing"
    assert rep["client_ip"] == "127.0.0.1"
    assert rep["user_agent"] == "audit-test/1.0"
    assert rep["method"] == "GET" and rep["path"] == "/api/r"  # no query
    assert rep["vhost"] == "127.0.0.1"
    assert rep["request_id"]  # UNIQUE_ID from mod_unique_id
    assert rep["mode"] == "enforce"
    assert rep["pid"] and rep["host"]

    modes = sorted(e["mode"] for e in by_reason["htu_mismatch"])
    assert modes == ["enforce", "report-only"]
    bd = by_reason["bearer_downgrade"][0]
    assert bd["error"] == "invalid_token" and bd["jkt"] == c.key.jkt
    pd = by_reason["policy_denied"][0]
    assert pd["error"] == "insufficient_scope" and pd["jkt"] == c.key.jkt

    # never the token or the proof in the store files
    for name in os.listdir(store):
        with open(os.path.join(store, name), "rb") as f:
            data = f.read()
        for s in env.secret_needles():
            assert s.encode() not in data, "credential found in %s" % name


def test_unwritable_store_leaves_outcome_unchanged(env, httpd):
    if os.geteuid() != 0:
        pytest.skip("needs root (children run as another user)")
    store = os.path.join(env.dir, "audit-ro-%d" % env.next_id())
    os.makedirs(store)
    os.chmod(store, 0o555)  # owned by root: the www-data children cannot write
    h = httpd(server_conf='DPoPAuditLog "%s"' % store)
    c = Client(env)
    for _ in range(12):
        r = h.request("GET", "/api/x", token=c.token,
                      proof=env.proof(c.key, "GET", h.url("/api/y"), token=c.token))
        assert r.status == 401
    assert c.call(h, "GET", "/api/x").status == 200
    time.sleep(0.5)
    log = h.error_log()
    assert "audit store %s unavailable in this child" % store in log
    # once per interval per process (3 children), not once per request
    n = log.count("event(s) not recorded")
    assert 1 <= n <= 3, n


def test_url_queries_never_reach_the_store(env, audited):
    """Issue 15 item 6: a credential in a URL query (`?api_key=...`), in the
    request or in the proof's claimed htu (with a fragment), is never
    stored: htu is kept without query and fragment, path never had one, a
    URL in the user agent loses its query; for every kind of event (replay,
    htu_mismatch, token_invalid with the proof read for the record,
    bad_signature, report-only, policy denial).  The generic scan
    (Httpd.assert_no_secrets over `dpop-audit list --format json` and the
    store files) finds neither the query values nor a token or proof."""
    from harness import tamper
    h, store = audited
    c = Client(env, sub="alice", client_id="billing")
    keys = ["k%s" % os.urandom(9).hex() for _ in range(8)]
    env.query_secrets.extend(keys)
    ua = {"User-Agent": "bot/2 (+https://bot.example/about?agent_key=%s)" % keys[7]}

    def q(i):
        return "?api_key=%s" % keys[i]

    def frag(i):
        return "#access_token=%s" % keys[i]

    # replay: the first use passes (htu is compared without query/fragment)
    p = env.proof(c.key, "GET", h.url("/api/r" + q(0) + frag(1)), token=c.token)
    assert h.request("GET", "/api/r" + q(0), token=c.token, proof=p, headers=ua).status == 200
    assert h.request("GET", "/api/r" + q(0), token=c.token, proof=p, headers=ua).status == 401
    # htu_mismatch, enforce and report-only
    p = env.proof(c.key, "GET", h.url("/api/other" + q(2)), token=c.token)
    assert h.request("GET", "/api/h" + q(2), token=c.token, proof=p, headers=ua).status == 401
    p = env.proof(c.key, "GET", h.url("/api/elsewhere" + q(3)), token=c.token)
    assert h.request("GET", "/api/ro/x" + q(3), token=c.token, proof=p, headers=ua).status == 200
    # token_invalid: the proof is read only for the record (claimed fields)
    bad_tok = env.token(jkt=c.key.jkt, aud="https://other.example.test")
    p = env.proof(c.key, "GET", h.url("/api/t" + q(4) + frag(4)), token=bad_tok)
    assert h.request("GET", "/api/t" + q(4), token=bad_tok, proof=p, headers=ua).status == 401
    # bad_signature
    p = env.remember(tamper(env.proof(c.key, "GET", h.url("/api/s" + q(5)), token=c.token)))
    assert h.request("GET", "/api/s" + q(5), token=c.token, proof=p, headers=ua).status == 401
    # policy denial (the empty policy denies every key)
    p = env.proof(c.key, "GET", h.url("/api/pol/x" + q(6)), token=c.token)
    assert h.request("GET", "/api/pol/x" + q(6), token=c.token, proof=p,
                     headers=ua).status == 403
    h.stop()  # the child pool cleanup commits the queue

    events = audit_list(env, store)
    reasons = sorted(e["reason"] for e in events)
    assert reasons == sorted(["replay", "htu_mismatch", "htu_mismatch", "token_invalid",
                              "bad_signature", "policy_denied"]), reasons
    for e in events:
        assert e["htu"] and "?" not in e["htu"] and "#" not in e["htu"], e["reason"]
        assert "?" not in e["path"], e["reason"]
        assert e["user_agent"] == "bot/2 (+https://bot.example/about", e["user_agent"]
    by_reason = {e["reason"]: e for e in events}
    assert by_reason["replay"]["htu"] == h.url("/api/r")
    assert by_reason["token_invalid"]["htu"] == h.url("/api/t")
    assert by_reason["token_invalid"]["jkt"] == c.key.jkt
    assert by_reason["policy_denied"]["htu"] == h.url("/api/pol/x")
    h.assert_no_secrets()  # the generic scan: logs and the audit store


METRICS_LOCATION = """
<Location /dpop-metrics>
    SetHandler dpop-metrics
    Require ip 127.0.0.1
</Location>
"""


def signatures_verified(h):
    """dpop_proof_signature_verifications_total, summed over the children."""
    r = h.request("GET", "/dpop-metrics")
    assert r.status == 200, r
    for line in r.text().splitlines():
        if line.startswith("dpop_proof_signature_verifications_total "):
            return int(line.split()[1])
    raise AssertionError("no dpop_proof_signature_verifications_total in the metrics")


def test_failed_token_proof_is_read_not_verified(env, httpd):
    """Issue 15 item 7: when the access token already failed (token_invalid,
    token_unbound), the proof is only parsed for the audit record (its
    claimed jkt, jti, htm, htu, alg, iat), never verified: no signature
    check is spent on an unauthenticated sender, whatever the proof's key
    (a tampered ES256 proof, a 16384-bit RSA key over the proof bound).
    The counter of proof signature verifications stays at 0 for those, and
    moves for a valid token's proofs (valid or tampered), so it does count."""
    import base64
    import hashlib
    import json as _json
    from harness import tamper
    if not os.path.exists(env.tools.dpop_audit):
        pytest.skip("dpop-audit not built")
    store = os.path.join(env.dir, "audit-%d" % env.next_id())
    h = httpd(server_conf='DPoPAuditLog "%s"\nDPoPAuditMapSize 16M' % store,
              extra_conf=METRICS_LOCATION)
    c = Client(env, sub="alice", client_id="billing")
    assert signatures_verified(h) == 0

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    # token_invalid (wrong audience) + a tampered proof: claimed fields only
    bad_aud = env.token(jkt=c.key.jkt, aud="https://other.example.test")
    p1 = env.remember(tamper(env.proof(c.key, "GET", h.url("/api/t1"), token=bad_aud,
                                       jti="claimed-jti-1", iat=1700000000)))
    ua1 = {"User-Agent": "enrich/1"}
    assert h.request("GET", "/api/t1", token=bad_aud, proof=p1, headers=ua1).status == 401
    # token_unbound (no cnf.jkt) + a tampered proof
    unbound = env.token(jkt=None)
    p2 = env.remember(tamper(env.proof(c.key, "POST", h.url("/api/t2"), token=unbound,
                                       jti="claimed-jti-2")))
    assert h.request("POST", "/api/t2", token=unbound, proof=p2, body="x",
                     headers={"User-Agent": "enrich/2"}).status == 401
    # token_invalid + a proof whose jwk is RSA 16384 bits, junk signature
    n = bytearray((0x5A ^ (i * 131)) & 0xFF for i in range(2048))
    n[0] |= 0x80
    n[-1] |= 1
    jwk = {"kty": "RSA", "n": b64(bytes(n)), "e": "AQAB"}
    hdr = _json.dumps({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}, separators=(",", ":"))
    pay = _json.dumps({"jti": "claimed-jti-3", "htm": "GET", "htu": h.url("/api/t3"),
                       "iat": 1700000001}, separators=(",", ":"))
    p3 = env.remember("%s.%s.%s" % (b64(hdr.encode()), b64(pay.encode()), b64(os.urandom(2048))))
    assert h.request("GET", "/api/t3", token=bad_aud, proof=p3,
                     headers={"User-Agent": "enrich/3"}).status == 401
    assert signatures_verified(h) == 0, "a proof was verified for a failed token"

    # the counter counts: a valid request and a tampered proof with a good token
    assert c.call(h, "GET", "/api/ok").status == 200
    p4 = env.remember(tamper(env.proof(c.key, "GET", h.url("/api/t4"), token=c.token)))
    assert h.request("GET", "/api/t4", token=c.token, proof=p4).status == 401
    assert signatures_verified(h) == 2
    h.stop()

    evs = {e["user_agent"]: e for e in audit_list(env, store) if e["user_agent"]}
    e1, e2, e3 = evs["enrich/1"], evs["enrich/2"], evs["enrich/3"]
    assert e1["reason"] == "token_invalid" and e2["reason"] == "token_unbound"
    assert e3["reason"] == "token_invalid"
    # claimed, unverified: what the proof said
    assert (e1["jkt"], e1["jti"], e1["htm"], e1["htu"], e1["alg"], e1["iat"]) == (
        c.key.jkt, "claimed-jti-1", "GET", h.url("/api/t1"), "ES256", 1700000000)
    assert (e2["jkt"], e2["jti"], e2["htm"], e2["htu"]) == (
        c.key.jkt, "claimed-jti-2", "POST", h.url("/api/t2"))
    members = _json.dumps({"e": "AQAB", "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    assert e3["jkt"] == b64(hashlib.sha256(members.encode()).digest())
    assert (e3["jti"], e3["alg"], e3["iat"]) == ("claimed-jti-3", "RS256", 1700000001)
def test_failures_name_the_policy_client_and_requests_are_counted(env, httpd):
    """issue 19 items 3 and 4, module side: an authentication failure (a
    replay, which never reaches the policy) records the policy's client name
    for its key, so alerts and reports say whose key failed; every request
    mod_dpop decided is counted once per hour, verified or rejected, by host,
    vhost and mode (the report's denominator), written with the batches."""
    if not os.path.exists(env.tools.dpop_audit):
        pytest.skip("dpop-audit not built")
    c = Client(env, sub="alice", client_id="billing")
    store = os.path.join(env.dir, "audit-%d" % env.next_id())
    pol = env.path("pol-%d" % env.next_id(), "policy.yaml")
    with open(pol, "w") as f:
        f.write("version: 1\nclients:\n  - name: billing-agent\n    jkt: %s\n"
                "    allow:\n      - { methods: [GET], paths: [\"/api/**\"] }\n" % c.key.jkt)
    os.chmod(pol, 0o644)
    os.chmod(os.path.dirname(pol), 0o755)
    h = httpd(server_conf='DPoPAuditLog "%s"\nDPoPAuditMapSize 16M\nDPoPPolicyFile "%s"'
              % (store, pol), extra_conf="""
<Location /api/ro>
    DPoPMode report-only
</Location>
""")
    p = env.proof(c.key, "GET", h.url("/api/r"), token=c.token)
    assert h.request("GET", "/api/r", token=c.token, proof=p).status == 200      # verified
    assert h.request("GET", "/api/r", token=c.token, proof=p).status == 401      # replay
    for i in range(3):                                                           # verified
        assert c.call(h, "GET", "/api/ok/%d" % i).status == 200
    p2 = env.proof(c.key, "GET", h.url("/api/elsewhere"), token=c.token)
    assert h.request("GET", "/api/ro/x", token=c.token, proof=p2).status == 200  # report-only
    assert c.call(h, "GET", "/api/ro/y").status == 200                           # verified, r-o
    h.stop()  # the child pool cleanup commits the queue and the counts

    events = audit_list(env, store)
    replay = [e for e in events if e["reason"] == "replay"]
    assert len(replay) == 1 and replay[0]["policy_client"] == "billing-agent", events
    r = subprocess.run([env.tools.dpop_audit, "--store", store, "report", "--format", "json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    req = json.loads(r.stdout)["requests"]
    assert req["available"]
    assert (req["total"], req["verified"], req["rejected"]) == (7, 5, 2), req
    assert (req["refused"], req["report_only"]) == (1, 1), req
    rows = {(x["mode"], x["vhost"]): (x["verified"], x["rejected"])
            for x in req["by_host_vhost_mode"]}
    assert rows == {("enforce", "127.0.0.1"): (4, 1), ("report-only", "127.0.0.1"): (1, 1)}
    al = subprocess.run([env.tools.dpop_audit, "--store", store, "alerts"], capture_output=True,
                        text=True)
    replays = [json.loads(x) for x in al.stdout.splitlines() if '"dpop_replay"' in x]
    assert replays and replays[0]["dpop"]["policy_client"] == "billing-agent"
    assert replays[0]["dpop"]["mode"] == "enforce" and replays[0]["dpop"]["severity"] == "high"
