# SPDX-License-Identifier: Apache-2.0
"""mod_dpop's per-child caches in a real httpd (issue 9): nothing cached may
let a bad token, an expired token, a revoked JWKS key or a replayed proof
through.

Every child keeps verified access tokens (dpop_tokencache) and proof keys
(dpop_keycache).  Each test first makes every child of the server (3,
mpm_event) accept the token at least once, so the request that must fail is
answered by a child that has the token cached: requests go out in
concurrent rounds on fresh connections, each on its own path, and the
access log (pid=%P) tells which child served which path.

What these tests prove:
- a token accepted (and cached) until its exp is rejected (token_invalid,
  "expired") by every child once exp has passed (DPoPClockSkew 0);
- after the JWKS file loses the token's key and httpd restarts gracefully,
  the old token is rejected by every new child (token_invalid) while a
  token of the new AS key passes;
- a token cached at one <Location> is still judged against another
  Location's DPoPTokenAudience / DPoPTokenIssuer (token_invalid there);
- a proof is single-use even when its token comes from the cache (replay);
- a token with one signature character changed is rejected after the
  genuine one was cached (token_invalid), and the genuine one still passes.
The httpd fixture's teardown (and each test's end) checks that no token,
proof or private key reached a log and that no child crashed.
"""
import json
import os
import re
import threading
import time

from harness import AUDIENCE, ISSUER, tamper

CHILDREN = 3  # StartServers/ServerLimit of the harness's httpd.conf
ROUNDS = 12   # concurrent rounds allowed to reach every child


def challenge_error(resp):
    wa = resp.header("WWW-Authenticate") or ""
    m = re.search(r'error="([^"]*)"', wa)
    return m.group(1) if m else None


def fire(h, reqs):
    """Send every (path, token, proof) at the same instant, each on its own
    connection; the Responses in order."""
    barrier = threading.Barrier(len(reqs))
    out = [None] * len(reqs)

    def worker(i, path, token, proof):
        try:
            barrier.wait(timeout=10)
            out[i] = h.request("GET", path, token=token, proof=proof)
        except Exception as e:  # re-raised below, in the test's thread
            out[i] = e

    ts = [threading.Thread(target=worker, args=(i,) + tuple(r)) for i, r in enumerate(reqs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    for r in out:
        if isinstance(r, Exception):
            raise r
        assert r is not None, "request did not finish"
    return out


def pid_of(h, path, timeout=5.0):
    """The child that served path (its access-log line is written after the
    response went out, so wait for it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = h.pids_serving(path)
        if pids:
            assert len(pids) == 1, (path, pids)
            return pids.pop()
        time.sleep(0.05)
    raise AssertionError("no access-log line for %s" % path)


def log_line(h, path):
    """The mod_dpop rejection line for path (uri=... is logged escaped; our
    paths need no escaping)."""
    needle = " uri=%s " % path
    deadline = time.time() + 5
    while time.time() < deadline:
        for line in h.error_log().splitlines():
            if needle in line and "reason=" in line:
                return line
        time.sleep(0.05)
    raise AssertionError("no rejection logged for %s" % path)


class Spread:
    """Rounds of concurrent requests on fresh paths under one prefix, until
    every child has served at least `per_child` of them."""

    def __init__(self, env, h, key, prefix):
        self.env = env
        self.h = h
        self.key = key
        self.prefix = prefix
        self.n = 0

    def round(self, token, count=2 * CHILDREN):
        paths = ["%s-%d" % (self.prefix, self.n + i) for i in range(count)]
        self.n += count
        proofs = [self.env.proof(self.key, "GET", self.h.url(p), token=token) for p in paths]
        resps = fire(self.h, [(p, token, pr) for p, pr in zip(paths, proofs)])
        return list(zip(paths, resps))

    def cover(self, token, per_child=1):
        """[(path, response, pid)] of every request sent until each of the
        CHILDREN children served per_child of them."""
        done, served = [], {}
        for _ in range(ROUNDS):
            for path, r in self.round(token):
                pid = pid_of(self.h, path)
                served[pid] = served.get(pid, 0) + 1
                done.append((path, r, pid))
            if len(served) >= CHILDREN and min(served.values()) >= per_child:
                return done
        raise AssertionError("requests reached only %d children: %s" % (len(served), served))


def assert_all_ok(results):
    for path, r, _ in results:
        assert r.status == 200, (path, r)
        assert r.backend_env().get("BACKEND") == "ok", path


def assert_all_rejected(h, results, reason="token_invalid", error="invalid_token", detail=None):
    for path, r, _ in results:
        assert r.status == 401, (path, r)
        assert challenge_error(r) == error, (path, r)
        line = log_line(h, path)
        assert ("reason=%s " % reason) in line, line
        if detail:
            assert detail in line.split('detail="', 1)[1], line


def pids(results):
    return {pid for _, _, pid in results}


def mpm_children(h):
    """The children serving requests: h.children() also lists mod_cgid's
    daemon, which runs one thread where an mpm_event child runs several."""
    out = set()
    for pid in h.children():
        try:
            if len(os.listdir("/proc/%d/task" % pid)) > 1:
                out.add(pid)
        except FileNotFoundError:
            pass
    return out


def wait_mpm_children(h, timeout=20.0):
    """httpd starts children a few per second: wait for all of them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(mpm_children(h)) >= CHILDREN:
            return mpm_children(h)
        time.sleep(0.1)
    raise AssertionError("only %d of %d children running" % (len(mpm_children(h)), CHILDREN))


def wait_old_children_gone(h, old, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not (set(h.children()) & old):
            return
        time.sleep(0.1)
    raise AssertionError("children %s outlived the graceful restart" % (set(h.children()) & old))


# ---------------------------------------------------------------- exp


def test_expired_token_not_kept_alive_by_the_cache(env, httpd):
    h = httpd(server_conf="DPoPClockSkew 0")
    wait_mpm_children(h)
    key = env.client_key("ES256")
    exp = int(time.time()) + 8
    token = env.token(jkt=key.jkt, exp=exp)
    s = Spread(env, h, key, "/api/exp")
    # every child accepts it twice: the second time from its cache
    ok = s.cover(token, per_child=2)
    assert_all_ok(ok)
    assert time.time() < exp - 1, "warm-up took too long to prove anything"
    # DPoPClockSkew 0: invalid from exp on (exp <= now)
    while time.time() < exp + 1:
        time.sleep(0.1)
    late = s.cover(token)
    assert_all_rejected(h, late, detail="expired")
    # each rejection came from a child that had the token cached
    assert pids(late) <= pids(ok), (pids(late), pids(ok))
    h.assert_no_secrets()


# ---------------------------------------------------------------- JWKS rotation


def test_rotated_jwks_rejects_the_removed_key_in_every_child(env, httpd):
    d = os.path.dirname(env.path("cache-rotation", "x"))
    os.chmod(d, 0o755)
    jwks = os.path.join(d, "as-jwks.json")
    with open(env.as_jwks) as f:
        original = f.read()
    with open(jwks, "w") as f:
        f.write(original)
    os.chmod(jwks, 0o644)
    # the template's DPoPTokenJWKS comes first: this one replaces it
    # MinSpareThreads above two children's idle threads: after the graceful
    # restart, a generation started while an old child still held its slot
    # gets its third child from idle-server maintenance (with the template's
    # 8 it could stay at two, and "every child" would wait for one forever).
    h = httpd(server_conf='DPoPTokenJWKS "%s"\nMinSpareThreads 17' % jwks)
    wait_mpm_children(h)
    key = env.client_key("ES256")
    old_token = env.token(jkt=key.jkt)
    new_as = env.keygen("ES256", os.path.join(d, "as-2.jwk"))
    new_token = env.token(jkt=key.jkt, key=new_as, kid="as-2")
    s = Spread(env, h, key, "/api/rot")

    before = s.cover(old_token, per_child=2)
    assert_all_ok(before)
    # the new AS key is not trusted yet
    assert_all_rejected(h, s.cover(new_token), detail="signature")

    # the AS rotates: a set with only the new key, then a graceful restart
    tmp = jwks + ".new"
    env.tools.run(env.tools.testtoken, "--key", new_as.path, "--kid", "as-2", "--jwks-out", tmp)
    with open(tmp) as f:
        rotated = json.load(f)
    assert [k.get("kid") for k in rotated["keys"]] == ["as-2"]
    os.chmod(tmp, 0o644)
    os.replace(tmp, jwks)
    old_children = pids(before)
    h.graceful()
    wait_old_children_gone(h, old_children)
    assert not (wait_mpm_children(h) & old_children)

    # every new child rejects the old token, and accepts the new one
    after = s.cover(old_token)
    assert not (pids(after) & old_children)
    assert_all_rejected(h, after, detail="signature")
    fresh = s.cover(new_token, per_child=2)
    assert_all_ok(fresh)
    # and the old token stays rejected after the new one was cached
    assert_all_rejected(h, s.cover(old_token), detail="signature")
    assert "AH00493" in h.error_log()  # the graceful restart happened
    h.assert_no_secrets()


# ---------------------------------------------------------------- per-Location parameters

AUDIENCE2 = "https://api2.example.test"
ISSUER2 = "https://as2.example.test"
LOCATIONS = """
<Location /api/aud2>
    DPoPTokenAudience %s
</Location>
<Location /api/iss2>
    DPoPTokenIssuer %s
</Location>
""" % (AUDIENCE2, ISSUER2)


def test_cached_token_judged_per_location(env, httpd):
    h = httpd(extra_conf=LOCATIONS)
    wait_mpm_children(h)
    key = env.client_key("ES256")
    token = env.token(jkt=key.jkt)  # iss ISSUER, aud AUDIENCE
    main = Spread(env, h, key, "/api/main")
    aud2 = Spread(env, h, key, "/api/aud2/x")
    iss2 = Spread(env, h, key, "/api/iss2/x")

    assert_all_ok(main.cover(token, per_child=2))
    assert_all_rejected(h, aud2.cover(token), detail="aud")
    assert_all_rejected(h, iss2.cover(token), detail="iss")
    # the main location still answers from its entry
    assert_all_ok(main.cover(token))

    # and the other way round: a token for the second audience, cached there
    token2 = env.token(jkt=key.jkt, aud=AUDIENCE2)
    assert_all_ok(aud2.cover(token2, per_child=2))
    assert_all_rejected(h, main.cover(token2), detail="aud")
    # a token for the second issuer, cached there, is refused at /api
    token3 = env.token(jkt=key.jkt, iss=ISSUER2)
    assert_all_ok(iss2.cover(token3, per_child=2))
    assert_all_rejected(h, main.cover(token3), detail="iss")
    assert ISSUER != ISSUER2 and AUDIENCE != AUDIENCE2
    h.assert_no_secrets()


# ---------------------------------------------------------------- replay


def test_replayed_proof_rejected_with_a_cached_token(env, httpd):
    h = httpd()
    wait_mpm_children(h)
    key = env.client_key("ES256")
    token = env.token(jkt=key.jkt)
    s = Spread(env, h, key, "/api/rp")
    assert_all_ok(s.cover(token, per_child=2))

    # sequential: accepted once, then a replay for every child
    proof = env.proof(key, "GET", h.url("/api/rp-once"), token=token)
    r = h.request("GET", "/api/rp-once", token=token, proof=proof)
    assert r.status == 200, r
    replays = fire(h, [("/api/rp-once", token, proof)] * (3 * CHILDREN))
    for r in replays:
        assert r.status == 401 and challenge_error(r) == "invalid_dpop_proof", r
    assert h.error_log().count("reason=replay ") == 3 * CHILDREN
    # concurrent: one fresh proof sent to every child at once wins once
    for rnd in range(3):
        path = "/api/rp-race-%d" % rnd
        proof = env.proof(key, "GET", h.url(path), token=token)
        statuses = [r.status for r in fire(h, [(path, token, proof)] * (3 * CHILDREN))]
        assert statuses.count(200) == 1, (rnd, statuses)
        assert statuses.count(401) == 3 * CHILDREN - 1, (rnd, statuses)
    assert h.error_log().count("reason=replay ") == 3 * CHILDREN + 3 * (3 * CHILDREN - 1)
    # the token itself is still good with a fresh proof
    assert_all_ok(s.cover(token))
    h.assert_no_secrets()


# ---------------------------------------------------------------- tampered token


def test_tampered_token_rejected_after_the_genuine_one_was_cached(env, httpd):
    h = httpd()
    wait_mpm_children(h)
    key = env.client_key("ES256")
    token = env.token(jkt=key.jkt)
    s = Spread(env, h, key, "/api/tm")
    assert_all_ok(s.cover(token, per_child=2))

    # one signature character changed; the proof is made for it (ath)
    bad = env.remember(tamper(token))
    assert bad != token and bad.split(".")[:2] == token.split(".")[:2]
    assert_all_rejected(h, s.cover(bad), detail="signature")
    # one payload character changed, likewise
    bad_payload = env.remember(tamper(token, part=1))
    rejected = s.round(bad_payload)
    for path, r in rejected:
        assert r.status == 401 and challenge_error(r) == "invalid_token", (path, r)
        assert "reason=token_invalid " in log_line(h, path)
    # the tampered token with a proof bound to the genuine one: still 401
    proofs = [env.proof(key, "GET", h.url("/api/tm-mixed-%d" % i), token=token)
              for i in range(2 * CHILDREN)]
    for r in fire(h, [("/api/tm-mixed-%d" % i, bad, p) for i, p in enumerate(proofs)]):
        assert r.status == 401, r
    # the genuine token is still accepted
    assert_all_ok(s.cover(token))
    h.assert_no_secrets()
