# SPDX-License-Identifier: Apache-2.0
"""The audit store under a real, concurrently loaded httpd (issue 5 item 4).

What these tests prove:
- mpm_event with several child processes, 8 client threads x 25 failing
  requests mixing five reasons (bad_signature, htu_mismatch, replay of a
  proof accepted once, jkt_mismatch, missing_proof): the LMDB store holds
  EXACTLY one event per failed request (each request carries a unique
  User-Agent, so every event is matched to the request it belongs to), with
  the reason and error the client saw; nothing is added at shutdown (the
  async writers' queues hold no duplicates); events come from more than one
  child pid; `dpop-audit verify` accepts the chain;
- `dpop-audit alerts` over that store flags every replayed proof
  (dpop_replay with its jkt and jti) and the token theft pattern (one access
  token presented with proofs of two keys, the second answered jkt_mismatch:
  dpop_token_theft with token_hash = base64url(SHA-256(token)) and
  event_count >= 2), and flags no other token;
- two httpd instances with separate stores: a proof replayed on server A and
  the same token presented with another key on server B (each server with
  its own ServerName): store A alone shows no theft, `dpop-audit alerts
  --store A --store B` flags it with one key from each server;
- no access token, proof or proof signature appears in the LMDB files.

Must never: print a token or proof in a failure message (indexes only).
"""
import base64
import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

from harness import Client, tamper

THREADS = 8
PER_THREAD = 25
REASONS = ["bad_signature", "htu_mismatch", "replay", "jkt_mismatch", "missing_proof"]
# DESIGN.md "Reason codes": the error each reason is answered with.
ERROR_OF = {"bad_signature": "invalid_dpop_proof", "htu_mismatch": "invalid_dpop_proof",
            "replay": "invalid_dpop_proof", "jkt_mismatch": "invalid_token",
            "missing_proof": "invalid_dpop_proof"}


def ath(token):
    """The token hash the store keeps (RFC 9449 §4.2 ath): base64url SHA-256."""
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).decode().rstrip("=")


def audit(env, stores, *args, check=0):
    cmd = [env.tools.dpop_audit]
    for s in stores:
        cmd += ["--store", s]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def events(env, *stores):
    r = audit(env, stores, "list", "--format", "json")
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def alerts(env, *stores):
    r = audit(env, stores, "alerts")
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def wait_events(env, store, want, timeout=15.0):
    """Poll until the store holds `want` events and the count stays put for
    a moment (the children's writers are asynchronous)."""
    deadline = time.time() + timeout
    last, stable_since = -1, time.time()
    while time.time() < deadline:
        n = len(events(env, store))
        if n != last:
            last, stable_since = n, time.time()
        elif n >= want and time.time() - stable_since >= 0.5:
            break
        time.sleep(0.2)
    return events(env, store)


def challenge(r):
    """(error, error_description) of a WWW-Authenticate: DPoP challenge."""
    wa = r.header("WWW-Authenticate") or ""
    out = {}
    for part in wa.split(", "):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.split()[-1]] = v.strip('"')
    return out.get("error"), out.get("error_description")


def assert_store_has_no_secrets(env, store):
    names = os.listdir(store)
    assert "data.mdb" in names, names
    for name in names:
        with open(os.path.join(store, name), "rb") as f:
            data = f.read()
        for i, s in enumerate(env.secret_needles()):
            assert s.encode() not in data, "secret #%d found in %s/%s" % (i, store, name)


@pytest.fixture
def need_audit(env):
    if not os.path.exists(env.tools.dpop_audit):
        pytest.skip("dpop-audit not built")


def audited_httpd(env, httpd, vhost=None):
    store = os.path.join(env.dir, "audit-%d" % env.next_id())  # created by post_config
    conf = 'DPoPAuditLog "%s"\nDPoPAuditMapSize 16M' % store
    if vhost:
        # one name per "server": the events' vhost, and the authority the
        # module builds htu from (ServerName + port, never the Host header)
        conf += "\nServerName %s" % vhost
    return httpd(server_conf=conf), store


def htu(h, vhost, path):
    return "http://%s:%d%s" % (vhost, h.port, path)


def test_concurrent_failures_recorded_exactly_once(env, httpd, need_audit):
    h, store = audited_httpd(env, httpd)
    assert len(h.children()) >= 3
    victim = Client(env, sub="alice", client_id="billing")  # key A, token bound to A
    thief = env.client_key("ES256")                        # key B
    url = h.url("/api/data")

    sent = {}          # user agent -> intended reason (one per failed request)
    seen = {}          # intended reason -> set of (status, error, description)
    replayed = set()   # (jkt, jti) of proofs accepted once, then replayed
    problems = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def one(t, i):
        reason = REASONS[(t * PER_THREAD + i) % len(REASONS)]
        ua = "audit-it/%d/%d" % (t, i)
        tok = victim.token
        if reason == "bad_signature":
            proof = env.remember(tamper(env.proof(victim.key, "GET", url, token=tok)))
        elif reason == "htu_mismatch":
            proof = env.proof(victim.key, "GET", h.url("/api/elsewhere"), token=tok)
        elif reason == "replay":
            jti = "rp-%d-%d-%s" % (t, i, os.urandom(4).hex())
            proof = env.proof(victim.key, "GET", url, token=tok, jti=jti)
            first = h.request("GET", "/api/data", token=tok, proof=proof,
                              headers={"User-Agent": ua + "/first"})
            if first.status != 200:
                with lock:
                    problems.append(("first use not accepted", t, i, first.status))
                return
            with lock:
                replayed.add((victim.key.jkt, jti))
        elif reason == "jkt_mismatch":
            proof = env.proof(thief, "GET", url, token=tok)
        else:
            proof = None
        r = h.request("GET", "/api/data", token=tok, proof=proof, headers={"User-Agent": ua})
        err, desc = challenge(r)
        with lock:
            sent[ua] = reason
            seen.setdefault(reason, set()).add((r.status, err, desc))

    def worker(t):
        try:
            barrier.wait(timeout=30)
            for i in range(PER_THREAD):
                one(t, i)
        except Exception as e:  # asserted below, never silently lost
            with lock:
                problems.append(("exception", t, repr(e)[:200]))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not problems, problems[:5]
    assert len(sent) == THREADS * PER_THREAD

    # the client saw exactly one answer per intended reason, the right error,
    # and five different answers (so the reasons really were distinct)
    for reason, answers in seen.items():
        assert len(answers) == 1, (reason, answers)
        status, err, _ = next(iter(answers))
        assert status == 401 and err == ERROR_OF[reason], (reason, answers)
    assert len({next(iter(a)) for a in seen.values()}) == len(REASONS)

    evs = wait_events(env, store, len(sent))
    # stopping flushes the writers: no event may appear twice or late
    h.stop()
    assert len(events(env, store)) == len(evs)

    by_ua = {}
    for e in evs:
        by_ua.setdefault(e["user_agent"], []).append(e)
    dup = [ua for ua, l in by_ua.items() if len(l) != 1]
    assert not dup, "events recorded more than once: %s" % dup[:5]
    assert set(by_ua) == set(sent), (sorted(set(sent) - set(by_ua))[:5],
                                     sorted(set(by_ua) - set(sent))[:5])
    for ua, reason in sent.items():
        e = by_ua[ua][0]
        assert e["reason"] == reason and e["error"] == ERROR_OF[reason], (ua, e["reason"])
        assert e["mode"] == "enforce" and e["path"] == "/api/data" and e["method"] == "GET"
    counts = {r: sum(1 for x in sent.values() if x == r) for r in REASONS}
    assert {r: sum(1 for e in evs if e["reason"] == r) for r in REASONS} == counts
    assert len({e["pid"] for e in evs}) >= 2, "all events from one child"

    r = audit(env, [store], "verify")
    assert "%d events" % len(evs) in r.stdout, r.stdout

    al = alerts(env, store)
    assert {a["rule"]["name"] for a in al} <= {"dpop_replay", "dpop_token_theft",
                                               "dpop_signature_burst", "dpop_key_burst"}
    for a in al:
        assert a["event"]["kind"] == "alert" and a["event"]["category"] == "authentication"
    # (a) every replayed proof, once, with its key and jti
    rep = [a for a in al if a["rule"]["name"] == "dpop_replay"]
    assert {(a["dpop"]["jkt"], a["dpop"]["jti"]) for a in rep} == replayed
    assert len(rep) == len(replayed) == counts["replay"]
    # (b) the stolen token, once: the victim's key (replay, bad signature,
    # htu events) owns it, the thief's key (jkt_mismatch) is the foreign one;
    # only the thief's events count (issue 19 item 4)
    theft = [a for a in al if a["rule"]["name"] == "dpop_token_theft"]
    assert len(theft) == 1, theft
    d = theft[0]["dpop"]
    assert d["token_hash"] == ath(victim.token)
    assert d["event_count"] == counts["jkt_mismatch"]
    assert set(d["jkts"]) == {thief.jkt}
    assert d["owner_jkt"] == victim.key.jkt
    assert d["first_seen"] <= d["last_seen"]
    assert theft[0]["source"]["ip"] == "127.0.0.1"

    assert_store_has_no_secrets(env, store)


def test_token_theft_across_two_servers(env, httpd, need_audit):
    ha, store_a = audited_httpd(env, httpd, vhost="api-a.example.test")
    hb, store_b = audited_httpd(env, httpd, vhost="api-b.example.test")
    victim = Client(env)
    thief = env.client_key("ES256")

    # server A: the victim's request succeeds; its captured proof is replayed
    # (responses are bound to names first: a failing assert must never print
    # the token or proof arguments)
    proof = env.proof(victim.key, "GET", htu(ha, "api-a.example.test", "/api/x"),
                      token=victim.token)
    r = ha.request("GET", "/api/x", token=victim.token, proof=proof)
    assert r.status == 200, r
    r = ha.request("GET", "/api/x", token=victim.token, proof=proof)
    assert r.status == 401 and challenge(r)[0] == "invalid_dpop_proof", r
    # server B: the same token with the thief's own key
    for _ in range(2):
        pb = env.proof(thief, "GET", htu(hb, "api-b.example.test", "/api/x"),
                       token=victim.token)
        r = hb.request("GET", "/api/x", token=victim.token, proof=pb)
        assert r.status == 401 and challenge(r)[0] == "invalid_token", r

    ea = wait_events(env, store_a, 1)
    eb = wait_events(env, store_b, 2)
    ha.stop()
    hb.stop()
    assert [e["reason"] for e in ea] == ["replay"]
    assert [e["reason"] for e in eb] == ["jkt_mismatch", "jkt_mismatch"]
    assert ea[0]["vhost"] == "api-a.example.test" and eb[0]["vhost"] == "api-b.example.test"
    for s in (store_a, store_b):
        audit(env, [s], "verify")

    # store A alone knows only the victim's key for this token: no theft.
    # (Store B alone is not asserted either way: its jkt_mismatch events
    # carry only the thief's key today, but a rule that also counted the
    # token's cnf.jkt would rightly flag it.)
    assert not [a for a in alerts(env, store_a) if a["rule"]["name"] == "dpop_token_theft"]
    # read together: the token hash carries both keys, one from each server
    al = alerts(env, store_a, store_b)
    theft = [a for a in al if a["rule"]["name"] == "dpop_token_theft"]
    assert len(theft) == 1, al
    d = theft[0]["dpop"]
    assert d["token_hash"] == ath(victim.token)
    # the victim's key owns the token; the thief's two events are the theft
    assert set(d["jkts"]) == {thief.jkt} and d["owner_jkt"] == victim.key.jkt
    assert d["event_count"] == 2
    assert theft[0]["host"]["name"] == eb[0]["host"]
    rep = [a for a in al if a["rule"]["name"] == "dpop_replay"]
    assert [(a["dpop"]["jkt"], a["dpop"]["jti"]) for a in rep] == [(victim.key.jkt, ea[0]["jti"])]

    for s in (store_a, store_b):
        assert_store_has_no_secrets(env, s)
