# SPDX-License-Identifier: Apache-2.0
"""dpop-audit alerts --cursor FILE (issue 19 item 4): a resumed run neither
repeats nor skips an alert.  A generated store holds replay, theft and burst
incidents whose events straddle the restart; the reference is one one-shot
run over the whole store.  Resumed runs (one-shot twice, and --follow killed
with SIGKILL then restarted) must end, once their lines are upserted by
event.id as a SIEM does, with exactly the reference's incidents and final
counts; the one-shot resume prints no line twice and nothing for incidents
the new events did not touch.
Run: DPOP_BUILD=build-dir /usr/bin/python3 -m pytest tests/integration/test_audit_alerts_cursor.py
"""
import json
import os
import signal
import subprocess
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DPOP_BUILD", os.path.join(TOP, "build-release"))
AUDIT = os.path.join(BUILD, "logger", "dpop-audit")
FILL = os.path.join(BUILD, "logger", "audit-fill")

pytestmark = pytest.mark.skipif(not (os.access(AUDIT, os.X_OK) and os.access(FILL, os.X_OK)),
                                reason="dpop-audit not built in DPOP_BUILD=%s" % BUILD)


def ts(minute, second=0):
    return "2026-02-01T%02d:%02d:%02d.000000Z" % (10 + minute // 60, minute % 60, second)


def ev(t, reason, jkt=None, jti=None, th=None, ip="192.0.2.1", mode="enforce"):
    return {"ts": t, "host": "web1", "reason": reason, "error": "invalid_dpop_proof",
            "jkt": jkt, "jti": jti, "token_hash": th, "client_ip": ip, "mode": mode,
            "policy_client": "agent-" + jkt if jkt else None}


def events():
    """Two halves; incidents opened in the first continue in the second."""
    first, second = [], []
    for m in range(0, 20):
        half = first if m < 10 else second
        # a replay of jti R<m%4> every minute: 4 incidents growing in both halves
        half.append(ev(ts(m, 1), "replay", jkt="K%d" % (m % 4), jti="R%d" % (m % 4)))
        # a token owned by OWN<m%3>, stolen by THIEF: the owner keeps failing
        half.append(ev(ts(m, 2), "iat_too_old", jkt="OWN%d" % (m % 3), jti="o%d" % m,
                       th="T%d" % (m % 3)))
        if m % 3 == 1:
            half.append(ev(ts(m, 3), "htu_mismatch", jkt="THIEF", jti="t%d" % m,
                           th="T%d" % (m % 3), ip="203.0.113.7"))
        # a burst of 12 bad signatures in minutes 4 and 14 (one per half)
        if m in (4, 14):
            for i in range(12):
                half.append(ev(ts(m, 10 + i), "bad_signature", jkt="KB%d" % m,
                               ip="198.51.100.%d" % m, mode="report-only"))
    return first, second


def fill(store, evs, *extra):
    data = "".join(json.dumps({k: v for k, v in e.items() if v is not None}) + "\n"
                   for e in evs)
    r = subprocess.run([FILL, "--store", store, *extra], input=data, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def upsert(lines, into=None):
    out = dict(into or {})
    for line in lines:
        a = json.loads(line)
        out[a["event"]["id"]] = (a["rule"]["name"], a["dpop"]["event_count"],
                                 a["dpop"]["last_seen"], a["dpop"]["severity"])
    return out


def reference(tmp_path):
    store = str(tmp_path / "ref")
    first, second = events()
    fill(store, first + second)
    r = subprocess.run([AUDIT, "--store", store, "alerts"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    ref = upsert(r.stdout.splitlines())
    rules = sorted(v[0] for v in ref.values())
    assert rules.count("dpop_replay") == 4 and rules.count("dpop_token_theft") == 1
    assert rules.count("dpop_signature_burst") == 2  # one per burst (IP and key merged)
    return ref


def test_one_shot_resume_neither_repeats_nor_skips(tmp_path):
    ref = reference(tmp_path)
    store, cursor = str(tmp_path / "s"), str(tmp_path / "alerts.cursor")
    first, second = events()
    fill(store, first)
    r1 = subprocess.run([AUDIT, "--store", store, "alerts", "--cursor", cursor],
                        capture_output=True, text=True, timeout=60)
    assert r1.returncode == 0, r1.stderr
    cur = json.load(open(cursor))
    assert cur["kind"] == "alerts"
    assert list(cur["stores"].values())[0]["seq"] == len(first)
    # nothing new: a second run prints nothing
    r = subprocess.run([AUDIT, "--store", store, "alerts", "--cursor", cursor],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
    fill(store, second)
    r2 = subprocess.run([AUDIT, "--store", store, "alerts", "--cursor", cursor],
                        capture_output=True, text=True, timeout=60)
    assert r2.returncode == 0, r2.stderr
    l1, l2 = r1.stdout.splitlines(), r2.stdout.splitlines()
    assert not set(l1) & set(l2)  # no line printed twice
    got = upsert(l1 + l2)
    assert got == ref
    # the second run printed only what the second half opened or changed:
    # the first half's burst is over and untouched
    ids1 = {json.loads(x)["event"]["id"]: json.loads(x) for x in l1}
    burst1 = [i for i, a in ids1.items() if a["rule"]["name"] == "dpop_signature_burst"]
    assert len(burst1) == 1
    assert burst1[0] not in {json.loads(x)["event"]["id"] for x in l2}
    # the theft incident: the owner's failures in the second half did not
    # extend it, the thief's did (same event.id, new count)
    theft = [json.loads(x) for x in l2 if '"dpop_token_theft"' in x]
    assert len(theft) == 1 and theft[0]["event"]["id"] in ids1
    assert theft[0]["dpop"]["event_count"] == 7  # minutes 1,4,7,10,13,16,19


def test_cursor_of_export_refused(tmp_path):
    store, cursor = str(tmp_path / "s"), str(tmp_path / "c")
    first, _ = events()
    fill(store, first)
    r = subprocess.run([AUDIT, "--store", store, "export", "--cursor", cursor],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([AUDIT, "--store", store, "alerts", "--cursor", cursor],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not a dpop-audit alerts cursor" in r.stderr, r.stderr


def read_lines(path):
    with open(path) as f:
        return [x for x in f.read().splitlines() if x.strip()]


def wait_for(pred, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_follow_killed_and_resumed(tmp_path):
    """--follow writes to a file; SIGKILL after the first half's alerts are
    out, the second half arrives while it is down, a restart with the same
    cursor catches up.  Upserted by event.id: exactly the reference."""
    ref = reference(tmp_path)
    store, cursor = str(tmp_path / "s"), str(tmp_path / "alerts.cursor")
    out = str(tmp_path / "alerts.jsonl")
    first, second = events()
    fill(store, first[:5])

    def start():
        f = open(out, "a")
        p = subprocess.Popen([AUDIT, "--store", store, "alerts", "--follow", "--interval", "1",
                              "--cursor", cursor], stdout=f, stderr=subprocess.PIPE, text=True)
        f.close()
        return p

    p = start()
    try:
        fill(store, first[5:], "--writer")
        # the cursor reached the end of the first half: its lines are out
        assert wait_for(lambda: os.path.exists(cursor) and list(
            json.load(open(cursor))["stores"].values())[0]["seq"] == len(first))
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    fill(store, second, "--writer")
    before = len(read_lines(out))
    p = start()
    try:
        assert wait_for(lambda: list(json.load(open(cursor))["stores"].values())[0]["seq"] ==
                        len(first) + len(second))
    finally:
        p.send_signal(signal.SIGTERM)
        _, errs = p.communicate(timeout=30)
    assert p.returncode == 0, errs
    lines = read_lines(out)
    assert upsert(lines) == ref
    # the restart printed each incident at most once, and only those the
    # second half touched (no replay of the whole history)
    after = [json.loads(x)["event"]["id"] for x in lines[before:]]
    assert after and len(after) == len(set(after))
    assert len(after) < len(ref)  # the first half's burst is not printed again
