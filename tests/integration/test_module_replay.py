# SPDX-License-Identifier: Apache-2.0
"""mod_dpop replay cache in real httpd (issue 3 item 3).

What these tests prove:
- shmcb + global mutex: the same proof sent by 30 threads at once to an
  mpm_event server with 3 child processes is accepted exactly once, in each of
  20 rounds, and the requests really were spread over several children;
- memcache "add": two httpd instances sharing one real memcached never both
  accept a proof (sequential replay from one to the other, and a concurrent
  race across both);
- memcached unreachable: 503 and an error-log line (fail closed), while a
  report-only location lets the request through;
- shmcb forgets nothing it could be asked again (issue 18 item 2, DESIGN.md
  "Replay stores"): after a full stop/start every proof the previous
  instance accepted (one issued a skew ahead included) is refused as
  iat_too_old with the "started remembering" detail, never 200, and fresh
  proofs pass once DPoPClockSkew has passed; graceful and plain restarts
  keep the instance, so they refuse nothing and a proof from before them is
  a replay; a restart that changes the spec refuses the old instance's
  proofs the same way.
"""
import re
import threading
import time

import pytest

from harness import Client, free_port

EXTERNAL = "https://api.example.test"


def race(targets, token, proof, path="/api/race"):
    """Fire one request per target at the same instant; return statuses."""
    barrier = threading.Barrier(len(targets))
    out = [None] * len(targets)

    def worker(i, h):
        try:
            barrier.wait(timeout=10)
            out[i] = h.request("GET", path, token=token, proof=proof).status
        except Exception as e:  # recorded, asserted below
            out[i] = repr(e)

    ts = [threading.Thread(target=worker, args=(i, h)) for i, h in enumerate(targets)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    return out


def test_concurrent_same_proof_accepted_once_shmcb(env, httpd):
    h = httpd(server_conf='DPoPReplayCache "shmcb:%s/run/replay(1048576)"' % env.dir)
    assert len(h.children()) >= 3
    c = Client(env)
    for rnd in range(20):
        proof = env.proof(c.key, "GET", h.url("/api/race"), token=c.token)
        statuses = race([h] * 30, c.token, proof)
        assert statuses.count(200) == 1, (rnd, statuses)
        assert statuses.count(401) == 29, (rnd, statuses)
    # requests were served by more than one child process
    pids = set(re.findall(r"pid=(\d+)", h.access_log()))
    assert len(pids) >= 2, pids
    assert h.error_log().count("reason=replay ") == 20 * 29


def test_replay_rejected_after_success_and_new_proof_ok(env, httpd):
    h = httpd()
    c = Client(env)
    p = env.proof(c.key, "GET", h.url("/api/r"), token=c.token)
    assert h.request("GET", "/api/r", token=c.token, proof=p).status == 200
    for _ in range(3):
        r = h.request("GET", "/api/r", token=c.token, proof=p)
        assert r.status == 401 and 'error="invalid_dpop_proof"' in r.header("WWW-Authenticate")
    assert c.call(h, "GET", "/api/r").status == 200


def test_same_jti_from_another_key_is_not_a_replay(env, httpd):
    """The cache key is SHA-256(jkt || jti): jtis are per key."""
    h = httpd()
    a, b = Client(env), Client(env)
    pa = env.proof(a.key, "GET", h.url("/api/j"), token=a.token, jti="shared-jti-1")
    pb = env.proof(b.key, "GET", h.url("/api/j"), token=b.token, jti="shared-jti-1")
    assert h.request("GET", "/api/j", token=a.token, proof=pa).status == 200
    assert h.request("GET", "/api/j", token=b.token, proof=pb).status == 200


def _mc_server(httpd, spec, extra=""):
    return httpd(server_conf='DPoPReplayCache %s' % spec,
                 location_conf="Require valid-user\nDPoPExternalURL %s" % EXTERNAL,
                 extra_conf=extra)


def test_two_servers_share_memcached(env, httpd, memcached):
    mc = memcached().remembering_since()
    a = _mc_server(httpd, mc.spec)
    b = _mc_server(httpd, mc.spec)
    c = Client(env)
    url = EXTERNAL + "/api/shared"
    p = env.proof(c.key, "GET", url, token=c.token)
    assert a.request("GET", "/api/shared", token=c.token, proof=p).status == 200
    r = b.request("GET", "/api/shared", token=c.token, proof=p)
    assert r.status == 401, r
    assert b.wait_log("reason=replay ")
    # a fresh proof is accepted by the other server
    p2 = env.proof(c.key, "GET", url, token=c.token)
    assert b.request("GET", "/api/shared", token=c.token, proof=p2).status == 200
    # concurrent race across both servers, several rounds
    for rnd in range(10):
        p = env.proof(c.key, "GET", EXTERNAL + "/api/race", token=c.token)
        statuses = race([a, b] * 10, c.token, p)
        assert statuses.count(200) == 1, (rnd, statuses)


def test_memcached_down_fails_closed_and_report_only_passes(env, httpd):
    dead = "memcache:127.0.0.1:%d" % free_port()
    h = _mc_server(httpd, dead, extra="<Location /api/ro>\n    DPoPMode report-only\n</Location>")
    c = Client(env)
    r = c.call(h, "GET", "/api/x", htu=EXTERNAL + "/api/x")
    assert r.status == 503, r
    assert h.wait_log("replay cache unavailable")
    assert "answering 503" in h.error_log()
    r = c.call(h, "GET", "/api/ro/x", htu=EXTERNAL + "/api/ro/x")
    assert r.status == 200, r
    assert "report-only, replay cache unavailable" in h.error_log()


def test_memcached_restart_recovers(env, httpd, memcached):
    mc = memcached().remembering_since()
    h = _mc_server(httpd, mc.spec)
    c = Client(env)
    assert c.call(h, "GET", "/api/a", htu=EXTERNAL + "/api/a").status == 200
    port = mc.port
    mc.stop()
    assert c.call(h, "GET", "/api/a", htu=EXTERNAL + "/api/a").status == 503
    from harness import Memcached
    mc2 = Memcached(env, port=port).start()
    try:
        ok = False
        import time
        deadline = time.time() + 20
        while time.time() < deadline and not ok:
            ok = c.call(h, "GET", "/api/a", htu=EXTERNAL + "/api/a").status == 200
            if not ok:
                time.sleep(1)
        assert ok, "did not recover after memcached came back"
    finally:
        mc2.stop()


def test_graceful_restart_old_and_new_children_share_the_cache(env, httpd):
    """A graceful restart keeps the shmcb instance and its mutex (same
    DPoPReplayCache spec): while old-generation children still serve
    requests, a proof accepted on either side of the restart is a replay on
    the other side.  Both directions are checked, and the access log proves
    which generation answered each request."""
    import time
    h = httpd(server_conf='DPoPReplayCache "shmcb:%s/run/replay-g(1048576)"' % env.dir)
    c = Client(env)
    before = env.proof(c.key, "GET", h.url("/api/g-before"), token=c.token)
    assert h.request("GET", "/api/g-before", token=c.token, proof=before).status == 200
    old = set(h.children())
    # two requests held open on old children across the restart
    held_new_first = h.hold("GET", "/api/g-held-a")
    held_old_first = h.hold("GET", "/api/g-held-b")
    time.sleep(0.5)
    h.graceful()
    # 1. accepted by an old child before the restart -> replay for a new one
    r = h.request("GET", "/api/g-before", token=c.token, proof=before)
    assert r.status == 401 and "invalid_dpop_proof" in r.header("WWW-Authenticate"), r
    # 2. accepted by a new child -> replay on the old child still running
    p_new = env.proof(c.key, "GET", h.url("/api/g-held-a"), token=c.token)
    assert h.request("GET", "/api/g-held-a", token=c.token, proof=p_new).status == 200
    assert held_new_first.finish(c.token, p_new).status == 401
    # 3. accepted by the old child after the restart -> replay for a new one
    p_old = env.proof(c.key, "GET", h.url("/api/g-held-b"), token=c.token)
    assert held_old_first.finish(c.token, p_old).status == 200
    assert h.request("GET", "/api/g-held-b", token=c.token, proof=p_old).status == 401
    # who answered: the held requests an old child, the others new children
    time.sleep(0.3)
    for path in ("/api/g-held-a", "/api/g-held-b", "/api/g-before"):
        pids = h.pids_serving(path)
        assert pids & old, (path, pids, old)
        if path != "/api/g-held-b":
            assert pids - old, (path, pids, old)
    assert h.pids_serving("/api/g-held-b") - old, "p_old was never sent to a new child"
    assert h.error_log().count("reason=replay ") == 3
    assert "AH00493" in h.error_log()


def test_restart_with_changed_spec_gets_a_fresh_cache(env, httpd):
    """Only an unchanged spec keeps its instance: a restart that changes
    DPoPReplayCache destroys the old one (logged) and starts empty; a plain
    restart (SIGHUP) with the same spec keeps it too.  The parent exits
    cleanly afterwards (the caches are destroyed once, by the parent)."""
    import signal
    h = httpd(server_conf='DPoPReplayCache "shmcb:%s/run/replay-c(1048576)"' % env.dir)
    c = Client(env)
    p1 = env.proof(c.key, "GET", h.url("/api/c"), token=c.token)
    assert h.request("GET", "/api/c", token=c.token, proof=p1).status == 200
    h.graceful(signal.SIGHUP)
    assert h.request("GET", "/api/c", token=c.token, proof=p1).status == 401
    h.server_conf = 'DPoPReplayCache "shmcb:%s/run/replay-c(2097152)"' % env.dir
    h.graceful()
    assert h.wait_log("no longer configured; destroyed")
    # the new instance is empty: it never saw p1, so p1 is refused as issued
    # before it began remembering (+ skew), not accepted a second time ...
    r = h.request("GET", "/api/c", token=c.token, proof=p1)
    assert r.status == 401 and "invalid_dpop_proof" in r.header("WWW-Authenticate"), r
    assert refused_as_forgotten(h) == 1
    # ... fresh proofs pass once the skew has passed, and replays of them
    # are detected from then on
    h.wait_shmcb_remembering()
    p2 = env.proof(c.key, "GET", h.url("/api/c"), token=c.token)
    assert h.request("GET", "/api/c", token=c.token, proof=p2).status == 200
    assert h.request("GET", "/api/c", token=c.token, proof=p2).status == 401
    h.stop()
    assert h.exit_code == 0, h.error_log()[-2000:]
    assert h.error_log().count("mod_dpop: replay cache shmcb:") == 3  # 2 created, 1 destroyed


FORGOTTEN = re.compile(r"reason=iat_too_old .*detail=\"replay store started remembering at "
                       r"[^(]*\((\d+)\); proofs issued before .* are refused: the store it "
                       r"replaced may have accepted them\"")


def refused_as_forgotten(h):
    """How many requests the error log shows refused as issued before the
    replay store began remembering (the detail of DESIGN.md "Replay
    stores", not a plain expiry)."""
    return len(FORGOTTEN.findall(h.error_log()))


def test_shmcb_full_restart_refuses_what_it_forgot(env, httpd):
    """shmcb's shared memory dies with httpd: without the rule every proof
    accepted before a full stop/start could be replayed for its lifetime.
    Graceful (SIGUSR1) and plain (SIGHUP) restarts keep the instance: they
    refuse nothing and the old proofs stay replays.  After the full
    stop/start, each proof accepted before it (one with an iat a skew in the
    future included) gets 401 iat_too_old with the detail, never 200; a
    fresh proof is refused until since + skew, then gets 200."""
    import signal
    skew = 2
    spec = 'DPoPReplayCache "shmcb:%s/run/replay-f(1048576)"\nDPoPClockSkew %d' % (env.dir, skew)
    h = httpd(server_conf=spec)
    c = Client(env)
    since1 = h.shmcb_since()
    assert since1 is not None and time.time() >= since1 + skew
    accepted = []
    for path in ("/api/f1", "/api/f2"):
        p = env.proof(c.key, "GET", h.url(path), token=c.token)
        assert h.request("GET", path, token=c.token, proof=p).status == 200
        accepted.append((path, p))
    # an iat up to the skew ahead is accepted (RFC 9449 §4.3 (11))
    ahead = env.proof(c.key, "GET", h.url("/api/f3"), token=c.token, iat=time.time() + skew)
    assert h.request("GET", "/api/f3", token=c.token, proof=ahead).status == 200
    accepted.append(("/api/f3", ahead))
    # graceful and plain restarts: same instance, nothing refused, replays kept
    for sig in (signal.SIGUSR1, signal.SIGHUP):
        h.graceful(sig)
        p = env.proof(c.key, "GET", h.url("/api/g"), token=c.token)
        assert h.request("GET", "/api/g", token=c.token, proof=p).status == 200, sig
        accepted.append(("/api/g", p))
        for path, old in accepted:
            assert h.request("GET", path, token=c.token, proof=old).status == 401, (sig, path)
    log = h.error_log()
    assert "AH00493" in log and "AH00494" in log  # SIGUSR1 then SIGHUP
    assert refused_as_forgotten(h) == 0 and "reason=iat_too_old" not in log, log[-2000:]
    assert log.count("reason=replay ") == 4 + 5  # every accepted proof, after each restart
    assert h.shmcb_since() == since1 and log.count("created, remembering since") == 1
    # full stop/start: a new instance, whose memory starts empty
    h.stop()
    assert h.exit_code == 0, h.error_log()[-2000:]
    h.wait_shmcb_skew = False
    h.start()
    since2 = h.shmcb_since()
    assert since2 is not None and since2 > since1
    for path, old in accepted:
        r = h.request("GET", path, token=c.token, proof=old)
        assert r.status == 401 and "invalid_dpop_proof" in r.header("WWW-Authenticate"), (path, r)
    assert refused_as_forgotten(h) == len(accepted), h.error_log()[-3000:]
    assert set(int(x) for x in FORGOTTEN.findall(h.error_log())) == {since2}
    assert "reason=replay " not in h.error_log()
    # a proof issued within the skew after the new start is refused too ...
    if time.time() < since2 + skew - 0.5:
        early = env.proof(c.key, "GET", h.url("/api/e"), token=c.token, iat=since2)
        assert h.request("GET", "/api/e", token=c.token, proof=early).status == 401
        assert refused_as_forgotten(h) == len(accepted) + 1
    # ... and fresh proofs pass once it has passed, their replays refused
    h.wait_shmcb_remembering()
    fresh = env.proof(c.key, "GET", h.url("/api/n"), token=c.token)
    assert h.request("GET", "/api/n", token=c.token, proof=fresh).status == 200
    assert h.request("GET", "/api/n", token=c.token, proof=fresh).status == 401
    assert c.call(h, "GET", "/api/n").status == 200
    h.assert_no_secrets()


def test_graceful_restart_keeps_working(env, httpd):
    """post_config/child_init across graceful restarts: the mutex and the
    shmcb cache are recreated and replay detection still holds."""
    import time
    h = httpd()
    c = Client(env)
    assert c.call(h, "GET", "/api/g").status == 200
    for _ in range(2):
        h.graceful()
        time.sleep(0.5)
        p = env.proof(c.key, "GET", h.url("/api/g"), token=c.token)
        assert h.request("GET", "/api/g", token=c.token, proof=p).status == 200
        assert h.request("GET", "/api/g", token=c.token, proof=p).status == 401
    assert "AH00493" in h.error_log()  # graceful restarts happened


def test_full_shmcb_refuses_new_proofs_and_never_evicts_live_ones(env, httpd):
    """A shmcb too small for the traffic would evict proofs that can still
    be replayed (then accepted again).  The module counts what can still be
    replayed and, when the cache is full, answers 503 (fail closed) instead
    of storing; the first proof stays a replay throughout (docs/scaling.md)."""
    h = httpd(server_conf='DPoPReplayCache "shmcb:%s/run/small(1048576)"' % env.dir)
    capacity = 1048576 // 150 * 8 // 10
    assert "holds %d proofs that can still be replayed" % capacity in h.error_log()
    c = Client(env)
    out = env.tools.run(env.tools.dpopctl, "proof", "--key", c.key.path, "--method", "GET",
                        "--url", h.url("/api/full"), "--access-token", c.token,
                        "--count", str(capacity + 40)).stdout.split()
    proofs = [env.remember(p) for p in out]
    statuses = send_keepalive(h, "/api/full", c.token, proofs)
    assert statuses[:capacity] == [200] * capacity, statuses[:capacity]
    assert statuses[capacity:] == [503] * 40, statuses[capacity:]
    assert "replay cache full" in h.error_log()
    # nothing accepted was evicted: every accepted proof is still a replay
    replays = proofs[:capacity:97] + proofs[capacity - 5:capacity]
    assert send_keepalive(h, "/api/full", c.token, replays) == [401] * len(replays)
    assert h.error_log().count("reason=replay ") == len(replays)


def test_shmcb_smaller_than_1mib_is_refused_at_configtest(env, httpd):
    """Below 1 MiB shmcb's sub-caches hold too few entries for the fill
    counter's margin: apache2 -t refuses the size (and a missing one)."""
    from harness import Httpd
    for spec in ("shmcb:%s/run/t(524288)" % env.dir, "shmcb:%s/run/t" % env.dir):
        h = Httpd(env, server_conf='DPoPReplayCache "%s"' % spec)
        rc, out = h.configtest()
        assert rc != 0 and "at least 1048576 bytes" in out, out


def send_keepalive(h, path, token, proofs):
    """Statuses of GETs over one keep-alive connection, one proof each."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=20)
    out = []
    try:
        for p in proofs:
            conn.request("GET", path, headers={"Authorization": "DPoP " + token, "DPoP": p})
            r = conn.getresponse()
            r.read()
            out.append(r.status)
    finally:
        conn.close()
    return out
