# SPDX-License-Identifier: Apache-2.0
"""dpop-audit CLI end to end (no httpd needed): stores are filled with crafted
events through logger/audit-fill (the C API), then every command is run as an
operator would: list in table/json/csv (parsed back and compared field by
field), filters, multiple --store, alerts (incl. --follow), verify catching an
edited and a deleted event, prune, report json/md, usage errors.

Run: DPOP_BUILD=build-dir /usr/bin/python3 -m pytest tests/integration/test_audit_cli.py
"""
import csv
import io
import json
import os
import re
import subprocess
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DPOP_BUILD", os.path.join(TOP, "build-release"))
AUDIT = os.path.join(BUILD, "logger", "dpop-audit")
FILL = os.path.join(BUILD, "logger", "audit-fill")

FIELDS = ["ts", "host", "vhost", "pid", "request_id", "client_ip", "method", "path", "error",
          "reason", "detail", "jkt", "jti", "iat", "htm", "htu", "alg", "token_hash",
          "token_sub", "token_client_id", "policy_client", "user_agent", "mode"]

pytestmark = pytest.mark.skipif(not (os.access(AUDIT, os.X_OK) and os.access(FILL, os.X_OK)),
                                reason="dpop-audit not built in DPOP_BUILD=%s" % BUILD)

JKT_A = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
JKT_B = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
TH = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def ev(ts, reason, **kw):
    e = {"ts": ts, "host": "web1", "vhost": "api.example.com", "pid": 1234,
         "request_id": "req-" + ts, "client_ip": "192.0.2.10", "method": "GET",
         "path": "/api/invoices", "error": "invalid_dpop_proof", "reason": reason,
         "detail": "test", "jkt": JKT_A, "jti": "jti-" + ts, "iat": 1767261600,
         "htm": "GET", "htu": "https://api.example.com/api/invoices", "alg": "ES256",
         "token_hash": TH, "token_sub": "svc", "token_client_id": "billing",
         "policy_client": "billing-agent", "user_agent": "curl/8.0", "mode": "enforce"}
    e.update(kw)
    return e


def fill(store, events, *extra):
    data = "".join(json.dumps(e) + "\n" for e in events)
    r = subprocess.run([FILL, "--store", store, *extra], input=data, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "appended %d" % len(events)


def audit(*args, env=None, check=None):
    r = subprocess.run([AUDIT, *args], capture_output=True, text=True, timeout=60, env=env)
    if check is not None:
        assert r.returncode == check, (r.returncode, r.stdout, r.stderr)
    return r


def norm_ts(ts):
    """RFC 3339 as the store writes it: UTC, microseconds."""
    base, _, frac = ts[:-1].partition(".")
    return "%s.%sZ" % (base, (frac + "000000")[:6])


def base_events():
    return [
        ev("2026-01-01T10:00:00Z", "htu_mismatch"),
        ev("2026-01-01T10:00:01.5Z", "replay", jti="jti-X"),
        ev("2026-01-01T10:00:02Z", "replay", jti="jti-X", client_ip="198.51.100.7"),
        ev("2026-01-01T10:05:00Z", "jkt_mismatch", jkt=JKT_B, client_ip="198.51.100.7",
           error="invalid_token", policy_client=None),
        ev("2026-01-02T08:00:00Z", "policy_denied", error="insufficient_scope",
           token_hash="othertoken", detail='comma, "quote"\nnewline', path="/api/a,b"),
        ev("2026-01-03T08:00:00Z", "missing_proof", jkt=None, jti=None, token_hash=None,
           iat=None, htm=None, htu=None, alg=None, user_agent="evil\u001b[31mred\u0007"),
    ]


@pytest.fixture
def store(tmp_path):
    d = str(tmp_path / "store")
    fill(d, base_events())
    return d


def test_list_json_round_trip(store):
    r = audit("--store", store, "list", "--format", "json", check=0)
    lines = r.stdout.splitlines()
    assert len(lines) == 6
    want = base_events()
    for line, w in zip(lines, want):
        got = json.loads(line)
        assert list(got.keys()) == FIELDS
        for k in FIELDS:
            exp = w.get(k)
            if k == "ts":
                exp = norm_ts(exp)
            assert got[k] == exp, (k, got[k], exp)


def unsafe_char(c):
    """dpop-audit's audit_unsafe_char: C0, DEL, C1, bidi/invisible format controls."""
    o = ord(c)
    return (o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F or 0x200B <= o <= 0x200F
            or 0x202A <= o <= 0x202E or 0x2066 <= o <= 0x2069)


def csv_safe(v):
    """What the default (spreadsheet-safe) CSV writes for a string value."""
    out = "".join("\ufffd" if unsafe_char(c) and c not in "\r\n" else c for c in v)
    return "'" + out if v[:1] and v[0] in "=+-@\t\r" else out


@pytest.mark.parametrize("raw", [False, True])
def test_list_csv_round_trip(store, raw):
    r = subprocess.run([AUDIT, "list", "--store", store, "--format", "csv"]
                       + (["--csv-raw"] if raw else []), capture_output=True, timeout=60)
    assert r.returncode == 0
    out = r.stdout.decode("utf-8")
    assert out.startswith(",".join(FIELDS) + "\r\n")  # RFC 4180: CRLF
    assert out.count("\r\n") == 7
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    want = base_events()
    assert len(rows) == len(want)
    for row, w in zip(rows, want):
        assert list(row.keys()) == FIELDS
        for k in FIELDS:
            exp = w.get(k)
            if isinstance(exp, str) and k != "ts" and not raw:
                exp = csv_safe(exp)
            exp = "" if exp is None else (norm_ts(exp) if k == "ts" else str(exp))
            assert row[k] == exp, (k, row[k], exp)


def test_list_table_is_terminal_safe(store):
    r = audit("--store", store, "list", check=0)
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["TIME", "HOST", "CLIENT_IP", "REASON"]
    assert len(lines) == 7
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "2026-01-01T10:00:01.500000Z" in lines[2]


@pytest.mark.parametrize("args,count", [
    (["--jkt", JKT_A], 4),
    (["--jkt", JKT_B], 1),
    (["--jti", "jti-X"], 2),
    (["--token-hash", TH], 4),
    (["--token-hash", "othertoken"], 1),
    (["--ip", "198.51.100.7"], 2),
    (["--reason", "replay"], 2),
    (["--reason", "replay", "--ip", "198.51.100.7"], 1),
    (["--jkt", JKT_A, "--reason", "policy_denied"], 1),
    (["--since", "2026-01-01T10:00:01.5Z"], 5),
    (["--until", "2026-01-01T10:00:01.5Z"], 1),
    (["--since", "2026-01-01T10:00:00Z", "--until", "2026-01-02T00:00:00Z"], 4),
    (["--since", "2026-01-01T11:00:00+01:00", "--until", "2026-01-01T11:05:00+01:00"], 3),
    (["--jkt", JKT_A, "--since", "2026-01-02"], 1),
    (["--since", "1h"], 0),
    (["--since", "3650d"], 6),
])
def test_list_filters(store, args, count):
    r = audit("--store", store, "list", "--format", "json", *args, check=0)
    assert len(r.stdout.splitlines()) == count
    for line in r.stdout.splitlines():
        e = json.loads(line)
        if "--jkt" in args:
            assert e["jkt"] == args[args.index("--jkt") + 1]
        if "--reason" in args:
            assert e["reason"] == args[args.index("--reason") + 1]


@pytest.mark.parametrize("args,count", [
    # repeated options and comma lists are OR'ed within a key (issue 19 item 2)
    (["--reason", "replay", "--reason", "htu_mismatch"], 3),
    (["--reason", "replay,htu_mismatch"], 3),
    (["--reason", "replay,htu_mismatch", "--reason", "missing_proof"], 4),
    (["--reason", "replay,replay"], 2),
    (["--ip", "192.0.2.10,198.51.100.7"], 6),
    (["--ip", "198.51.100.7", "--ip", "203.0.113.1"], 2),
    (["--jkt", JKT_A + "," + JKT_B], 5),
    (["--token-hash", TH, "--token-hash", "othertoken"], 5),
    (["--jti", "jti-X", "--jti", "jti-2026-01-01T10:00:00Z"], 3),
    # ... and AND'ed across keys
    (["--reason", "replay,jkt_mismatch", "--ip", "198.51.100.7"], 2),
    (["--reason", "replay", "--reason", "jkt_mismatch", "--jkt", JKT_B], 1),
])
def test_list_filters_or(store, args, count):
    r = audit("--store", store, "list", "--format", "json", *args, check=0)
    got = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(got) == count, (args, got)
    opts = {}
    for i in range(0, len(args), 2):
        opts.setdefault(args[i], []).extend(args[i + 1].split(",") if args[i] != "--jti"
                                            else [args[i + 1]])
    field = {"--reason": "reason", "--ip": "client_ip", "--jkt": "jkt", "--jti": "jti",
             "--token-hash": "token_hash"}
    for e in got:
        for opt, vals in opts.items():
            assert e[field[opt]] in vals


def test_list_ip_canonical_form(tmp_path):
    s = str(tmp_path / "s")
    fill(s, [ev("2026-01-01T10:00:00Z", "replay", client_ip="2001:db8::1")])
    for ip in ("2001:db8::1", "2001:DB8:0:0::1", "2001:0db8::0001"):
        r = audit("--store", s, "list", "--format", "json", "--ip", ip, check=0)
        assert len(r.stdout.splitlines()) == 1, ip


@pytest.mark.parametrize("args,msg", [
    (["--reason", "replya"], "unknown reason 'replya' (did you mean 'replay'?)"),
    (["--reason", "htu_mismatc"], "(did you mean 'htu_mismatch'?)"),
    (["--reason", "Replay"], "(did you mean 'replay'?)"),
    (["--reason", "replay,bad_sig"], "unknown reason 'bad_sig'"),
    (["--reason", "replay", "--reason", "nope"], "unknown reason 'nope'; reasons: missing_proof"),
    (["--reason", ""], "empty value"),
    (["--reason", "replay,"], "empty value"),
    (["--ip", "999.1.1.1"], "'999.1.1.1' is not an IPv4 or IPv6 address"),
    (["--ip", "10.0.0.0/8"], "not an IPv4 or IPv6 address"),
    (["--ip", "web1.example.com"], "not an IPv4 or IPv6 address"),
    (["--ip", "1.2.3"], "not an IPv4 or IPv6 address"),
    (["--ip", "192.0.2.10,2001:db8::g"], "'2001:db8::g' is not"),
    (["--since", "1h", "--until", "2h"], "empty time range"),
    (["--since", "2026-01-02", "--until", "2026-01-02"], "empty time range"),
    (["--since", "2026-01-03", "--until", "2026-01-02T23:59:59Z"], "empty time range"),
    (["--since", "1h", "--since", "2h"], "--since given twice"),
    (["--format", "json", "--format", "csv"], "--format given twice"),
])
def test_list_bad_filters_refused(store, args, msg):
    """Used to exit 0 with no output (a typo looked like "no such events")."""
    r = audit("--store", store, "list", *args)
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    assert msg in r.stderr, r.stderr
    assert r.stdout == ""


def test_empty_range_refused_for_report(store):
    r = audit("--store", store, "report", "--format", "json", "--since", "1h", "--until", "2h")
    assert r.returncode == 2 and "empty time range" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_list_no_match_prints_nothing(store, fmt):
    r = audit("--store", store, "list", "--format", fmt, "--jkt", "no-such-key", check=0)
    assert r.stdout == ""
    r = audit("--store", store, "list", "--format", fmt, "--reason", "replay", "--jkt", JKT_B,
              check=0)
    assert r.stdout == ""


def test_default_store_from_env(store):
    env = dict(os.environ, DPOP_AUDIT_STORE=store)
    r = audit("list", "--format", "json", env=env, check=0)
    assert len(r.stdout.splitlines()) == 6
    env = dict(os.environ, DPOP_AUDIT_STORE="/nonexistent/dpop-audit-store")
    r = audit("list", env=env, check=2)
    assert "/nonexistent/dpop-audit-store" in r.stderr


def test_multiple_stores_merged_by_time(tmp_path):
    s1, s2 = str(tmp_path / "s1"), str(tmp_path / "s2")
    fill(s1, [ev("2026-01-01T10:00:0%dZ" % i, "replay", host="web1") for i in (0, 2, 4)])
    fill(s2, [ev("2026-01-01T10:00:0%dZ" % i, "replay", host="web2") for i in (1, 3)])
    r = audit("--store", s1, "--store", s2, "list", "--format", "json", check=0)
    got = [json.loads(l) for l in r.stdout.splitlines()]
    assert [g["ts"][17:19] for g in got] == ["00", "01", "02", "03", "04"]
    assert [g["host"] for g in got] == ["web1", "web2", "web1", "web2", "web1"]
    # the same store named twice is read once
    r = audit("--store", s1, "--store", s1, "list", "--format", "json", check=0)
    assert len(r.stdout.splitlines()) == 3


def alerts_of(*args):
    r = audit(*args, check=0)
    return [json.loads(l) for l in r.stdout.splitlines()]


def test_alerts_rules(tmp_path):
    s = str(tmp_path / "s")
    events = [ev("2026-01-01T10:00:00Z", "htu_mismatch", jti="j1"),
              ev("2026-01-01T10:00:01Z", "replay", jti="j1"),
              ev("2026-01-01T10:00:02Z", "replay", jti="j1"),           # same incident
              ev("2026-01-01T10:01:00Z", "jkt_mismatch", jkt=JKT_B, jti="j9")]  # theft
    # 10 bad signatures from one IP within 60 s (default threshold 10)
    events += [ev("2026-01-01T11:00:%02dZ" % (i * 6), "bad_signature", client_ip="203.0.113.5",
                  jkt="k%d" % i, jti="s%d" % i, token_hash=None) for i in range(10)]
    # 5 bad-key events from one IP within 60 s (default threshold 5)
    events += [ev("2026-01-01T12:00:%02dZ" % (i * 10), r, client_ip="203.0.113.6", jkt=None,
                  jti="b%d" % i, token_hash=None)
               for i, r in enumerate(["bad_jwk", "private_key_in_jwk", "bad_jwk", "bad_jwk",
                                      "private_key_in_jwk"])]
    fill(s, events)
    al = alerts_of("--store", s, "alerts")
    rules = [a["rule"]["name"] for a in al]
    assert rules == ["dpop_replay", "dpop_token_theft", "dpop_signature_burst", "dpop_key_burst"]
    for a in al:
        assert a["event"]["kind"] == "alert"
        assert a["event"]["category"] == "authentication"
        for k in ("jkt", "jti", "token_hash", "event_count", "first_seen", "last_seen"):
            assert k in a["dpop"]
        assert "ip" in a["source"] and "name" in a["host"] and "@timestamp" in a
    # every event of (JKT_A, j1): the htu_mismatch and both replays
    assert al[0]["dpop"]["jti"] == "j1" and al[0]["dpop"]["event_count"] == 3
    # the token's owner (JKT_A, its first key) is not counted: only the
    # foreign key's event
    assert al[1]["dpop"]["token_hash"] == TH and al[1]["dpop"]["jkts"] == [JKT_B]
    assert al[1]["dpop"]["owner_jkt"] == JKT_A
    assert al[1]["dpop"]["event_count"] == 1
    # context: severity (ECS number and label) and mode on every alert
    assert [(a["dpop"]["severity"], a["event"]["severity"], a["dpop"]["mode"]) for a in al] == [
        ("high", 73, "enforce"), ("critical", 99, "enforce"), ("medium", 47, "enforce"),
        ("medium", 47, "enforce")]
    assert al[2]["source"]["ip"] == "203.0.113.5" and al[2]["dpop"]["event_count"] == 10
    assert al[2]["dpop"]["first_seen"] == "2026-01-01T11:00:00.000000Z"
    assert al[2]["dpop"]["last_seen"] == "2026-01-01T11:00:54.000000Z"
    assert al[3]["source"]["ip"] == "203.0.113.6"
    # thresholds are tunable
    al = alerts_of("--store", s, "alerts", "--signature-threshold", "11")
    assert "dpop_signature_burst" not in [a["rule"]["name"] for a in al]
    al = alerts_of("--store", s, "alerts", "--window", "30")
    assert "dpop_signature_burst" not in [a["rule"]["name"] for a in al]
    # --since limits the events considered
    al = alerts_of("--store", s, "alerts", "--since", "2026-01-01T10:30:00Z")
    assert [a["rule"]["name"] for a in al] == ["dpop_signature_burst", "dpop_key_burst"]


def test_alerts_count_what_they_summarise(tmp_path):
    """issue 10 item 4: one alert per (rule, subject, window) whose
    dpop.event_count, first_seen and last_seen cover every event of the
    subject: a jti replayed three times is one alert counting 3; a token
    used with a second key counts that key's events, never the owner's
    (issue 19 item 4); a sustained burst counts all its events, not only
    the threshold that made it fire."""
    s = str(tmp_path / "s")
    events = [ev("2026-01-01T10:00:0%dZ" % i, "replay", jti="jR", token_hash="TR",
                 client_ip="198.51.100.%d" % i) for i in (1, 2, 3)]
    events += [ev("2026-01-01T10:01:00Z", "htu_mismatch", jti="t1", token_hash="TT"),
               ev("2026-01-01T10:01:05Z", "ath_mismatch", jti="t2", token_hash="TT", jkt=JKT_B),
               ev("2026-01-01T10:01:07Z", "htm_mismatch", jti="t3", token_hash="TT"),
               ev("2026-01-01T10:01:09Z", "missing_proof", jti=None, jkt=None, token_hash="TT")]
    events += [ev("2026-01-01T11:00:%02dZ" % i, "bad_signature", client_ip="203.0.113.5",
                  jkt="k%d" % i, jti="s%d" % i, token_hash=None) for i in range(15)]
    fill(s, events)
    al = alerts_of("--store", s, "alerts")
    assert [a["rule"]["name"] for a in al] == ["dpop_replay", "dpop_token_theft",
                                               "dpop_signature_burst"], al
    rep, theft, burst = (a["dpop"] for a in al)
    assert rep["jti"] == "jR" and rep["event_count"] == 3
    assert rep["first_seen"] == "2026-01-01T10:00:01.000000Z"
    assert rep["last_seen"] == "2026-01-01T10:00:03.000000Z"
    assert al[0]["@timestamp"] == "2026-01-01T10:00:01.000000Z"  # the event that fired it
    assert theft["token_hash"] == "TT" and theft["event_count"] == 1
    assert theft["first_seen"] == "2026-01-01T10:01:05.000000Z"
    assert theft["last_seen"] == "2026-01-01T10:01:05.000000Z"
    assert theft["jkts"] == [JKT_B] and theft["owner_jkt"] == JKT_A
    assert burst["event_count"] == 15
    assert burst["first_seen"] == "2026-01-01T11:00:00.000000Z"
    assert burst["last_seen"] == "2026-01-01T11:00:14.000000Z"
    assert len({a["event"]["id"] for a in al}) == 3  # each incident named
    # the same store read again gives the same lines, byte for byte
    r1 = audit("--store", s, "alerts", check=0).stdout
    assert r1 == audit("--store", s, "alerts", check=0).stdout
    # the report's alert section holds the same incidents
    rep_json = json.loads(audit("--store", s, "report", "--format", "json", check=0).stdout)
    assert rep_json["alerts"]["total"] == 3
    # the most severe first: theft (critical), replay (high), burst (medium)
    assert [i["dpop"]["event_count"] for i in rep_json["alerts"]["items"]] == [1, 3, 15]


def test_alerts_theft_and_replay_across_stores(tmp_path):
    s1, s2 = str(tmp_path / "web1"), str(tmp_path / "web2")
    fill(s1, [ev("2026-01-01T10:00:00Z", "htu_mismatch", host="web1", jti="jx")])
    fill(s2, [ev("2026-01-01T10:00:05Z", "htu_mismatch", host="web2", jkt=JKT_B, jti="jy"),
              ev("2026-01-01T10:00:06Z", "iat_too_old", host="web2", jti="jx", token_hash=None)])
    assert alerts_of("--store", s1, "alerts") == []
    assert alerts_of("--store", s2, "alerts") == []
    al = alerts_of("--store", s1, "--store", s2, "alerts")
    rules = sorted(a["rule"]["name"] for a in al)
    assert rules == ["dpop_replay", "dpop_token_theft"]
    theft = [a for a in al if a["rule"]["name"] == "dpop_token_theft"][0]
    assert theft["host"]["name"] == "web2"
    replay = [a for a in al if a["rule"]["name"] == "dpop_replay"][0]
    assert sorted(replay["dpop"]["hosts"]) == ["web1", "web2"]


def test_alerts_follow(tmp_path):
    s = str(tmp_path / "s")
    fill(s, [ev("2026-01-01T10:00:00Z", "replay", jti="old")])
    p = subprocess.Popen([AUDIT, "--store", s, "alerts", "--follow", "--interval", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(p.stdout.readline())
        assert first["dpop"]["jti"] == "old" and first["dpop"]["event_count"] == 1
        fill(s, [ev("2026-01-01T10:00:10Z", "replay", jti="old"),      # same incident: updated
                 ev("2026-01-01T10:00:11Z", "replay", jti="new")],
             "--writer")
        deadline = time.time() + 20
        upd = json.loads(p.stdout.readline())
        nxt = json.loads(p.stdout.readline())
        assert time.time() < deadline
        # the same incident again (same event.id), with the counts of both events
        assert upd["dpop"]["jti"] == "old" and upd["event"]["id"] == first["event"]["id"]
        assert upd["dpop"]["event_count"] == 2
        assert upd["dpop"]["first_seen"] == "2026-01-01T10:00:00.000000Z"
        assert upd["dpop"]["last_seen"] == "2026-01-01T10:00:10.000000Z"
        assert upd["@timestamp"] == first["@timestamp"]
        assert nxt["dpop"]["jti"] == "new" and nxt["event"]["id"] != first["event"]["id"]
        assert nxt["rule"]["name"] == "dpop_replay"
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=10)
    assert p.returncode == 0
    assert out == ""  # nothing repeated after termination


def test_alerts_follow_orders_across_stores(tmp_path):
    """--follow with two stores feeds the rules in event-time order across
    polls: web1's event (key A, later time) is read in one poll, web2's
    earlier event (key B, same token) only in the next; the theft alert must
    name the later event (key A, web1) as the foreign one and key B (the
    first key the token was seen with) as its owner, as a one-shot run over
    both does."""
    import datetime
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    fill(a, [ev("2026-01-01T10:00:00Z", "htu_mismatch", token_hash="T0", jti="x")])
    fill(b, [ev("2026-01-01T10:00:00Z", "htu_mismatch", token_hash="T0", jti="x")])

    def ts(delta):
        t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    p = subprocess.Popen([AUDIT, "--store", a, "--store", b, "alerts", "--follow",
                          "--interval", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        t_late, t_early = ts(0), ts(-1)
        fill(a, [ev(t_late, "htu_mismatch", token_hash="TFOLLOW", jkt=JKT_A, host="web1",
                    jti="j-a")], "--writer")
        time.sleep(1.2)  # at least one poll (1 s apart) sees web1's event alone
        fill(b, [ev(t_early, "ath_mismatch", token_hash="TFOLLOW", jkt=JKT_B, host="web2",
                    jti="j-b")], "--writer")
        line = p.stdout.readline()
        alert = json.loads(line)
        assert alert["rule"]["name"] == "dpop_token_theft"
        assert alert["dpop"]["jkt"] == JKT_A
        assert alert["host"]["name"] == "web1"
        assert alert["dpop"]["owner_jkt"] == JKT_B
        assert alert["dpop"]["first_seen"] == t_late and alert["dpop"]["last_seen"] == t_late
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=10)
    assert p.returncode == 0
    assert out == ""
    # the one-shot run over both stores says the same
    one = [json.loads(x) for x in audit("--store", a, "--store", b, "alerts", check=0)
           .stdout.splitlines() if "TFOLLOW" in x]
    assert len(one) == 1 and one[0]["dpop"]["jkt"] == JKT_A


def test_verify_ok_and_edited_event(store):
    r = audit("--store", store, "verify", check=0)
    assert r.stdout.startswith("ok: ") and "6 events" in r.stdout
    # edit one event in place in the LMDB file (no checksum in LMDB pages)
    path = os.path.join(store, "data.mdb")
    with open(path, "rb") as f:
        data = f.read()
    needle = b'"policy_denied"'
    assert data.count(needle) == 1
    with open(path, "r+b") as f:
        f.seek(data.index(needle) + 1)
        f.write(b"P")
    r = audit("--store", store, "verify", check=1)
    assert "FAILED" in r.stdout and "event seq 5" in r.stdout and "altered" in r.stdout
    assert "Policy_denied" in r.stdout  # the bad event is printed


def lmdb_delete_event(store, seq):
    """Delete one event with the LMDB C API (ctypes), as an attacker with
    write access to the files could; the indexes are left alone."""
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("lmdb") or "liblmdb.so.0"
    lib = ctypes.CDLL(name)

    class Val(ctypes.Structure):
        _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_void_p)]

    env, txn, dbi = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint()
    assert lib.mdb_env_create(ctypes.byref(env)) == 0
    assert lib.mdb_env_set_maxdbs(env, 16) == 0
    assert lib.mdb_env_open(env, store.encode(), 0, 0o600) == 0
    assert lib.mdb_txn_begin(env, None, 0, ctypes.byref(txn)) == 0
    assert lib.mdb_dbi_open(txn, b"events", 0, ctypes.byref(dbi)) == 0
    key = ctypes.create_string_buffer(seq.to_bytes(8, "big"), 8)
    k = Val(8, ctypes.cast(key, ctypes.c_void_p))
    assert lib.mdb_del(txn, dbi, ctypes.byref(k), None) == 0
    assert lib.mdb_txn_commit(txn) == 0
    lib.mdb_env_close(env)


def test_verify_deleted_event(store):
    lmdb_delete_event(store, 3)
    r = audit("--store", store, "verify", check=1)
    assert "event seq 3" in r.stdout and "missing" in r.stdout
    assert "FAILED" in r.stdout


def test_prune(store):
    r = audit("--store", store, "prune", "--before", "2026-01-02T00:00:00Z", check=0)
    assert r.stdout.startswith("pruned 4 events")
    audit("--store", store, "verify", check=0)
    r = audit("--store", store, "list", "--format", "json", check=0)
    assert [json.loads(l)["reason"] for l in r.stdout.splitlines()] == ["policy_denied",
                                                                     "missing_proof"]
    assert audit("--store", store, "list", "--jti", "jti-X", check=0).stdout == ""
    r = audit("--store", store, "prune", "--before", "2026-01-02T00:00:00Z", check=0)
    assert r.stdout.startswith("pruned 0 events")
    audit("--store", store, "prune", check=2)  # --before is required


# ------------------------------------------------- integrity (issue 19 item 1)

def tamper_bytes(store, needle, repl):
    """Edit one event in place in data.mdb (LMDB pages carry no checksum)."""
    path = os.path.join(store, "data.mdb")
    with open(path, "rb") as f:
        data = f.read()
    assert data.count(needle) == 1 and len(repl) == len(needle)
    with open(path, "r+b") as f:
        f.seek(data.index(needle))
        f.write(repl)


def list_count(store):
    return len(audit("--store", store, "list", "--format", "json", check=0).stdout.splitlines())


def test_prune_refuses_tampered_store(store):
    """The documented cron line `prune --before 400d && verify` must not
    erase an altered event and then say ok: prune recomputes the chain over
    what it deletes and refuses, deleting nothing."""
    tamper_bytes(store, b'"req-2026-01-01T10:00:01.5Z"', b'"req-2026-01-01T10:00:01.6Z"')  # event 2, inside the pruned range
    r = audit("--store", store, "prune", "--before", "2026-01-02T00:00:00Z")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "event seq 2" in r.stderr and "refusing to prune" in r.stderr
    assert r.stdout == ""
    assert list_count(store) == 6  # nothing deleted
    r = audit("--store", store, "verify", check=1)
    assert "FAILED" in r.stdout and "event seq 2" in r.stdout


def test_prune_checkpoint_and_verify_head(store):
    head0 = audit("--store", store, "verify", check=0).stdout.split("head ")[1].split()[0]
    assert len(head0) == 64
    r = audit("--store", store, "prune", "--before", "2026-01-02T00:00:00Z", check=0)
    assert r.stdout.startswith("pruned 4 events")
    r = audit("--store", store, "verify", check=0)
    assert r.stdout.startswith("ok: ") and "2 events, chain 5..6" in r.stdout
    ckpt = [l for l in r.stdout.splitlines() if l.startswith("checkpoint: ")]
    assert len(ckpt) == 1 and "seq 4 hash " in ckpt[0]
    ck_hash = ckpt[0].split("hash ")[1].split()[0]
    # a head recorded before the prune is still on the chain, so is the checkpoint
    r = audit("--store", store, "verify", "--head", head0, "--head", ck_hash, check=0)
    assert "head %s: on the chain of" % head0 in r.stdout and "at seq 6" in r.stdout
    assert "head %s: on the chain of" % ck_hash in r.stdout and "at seq 4" in r.stdout
    # a head that was never on this chain fails
    r = audit("--store", store, "verify", "--head", "ab" * 32, check=1)
    assert "FAILED: head " + "ab" * 32 in r.stdout


def test_verify_head_detects_rewritten_store(tmp_path):
    """Someone with write access rewrites the whole store (every hash
    recomputed): verify alone passes, verify --head with the head recorded
    earlier (e.g. in the SIEM) fails."""
    s = str(tmp_path / "s")
    events = base_events()
    fill(s, events)
    head = audit("--store", s, "verify", check=0).stdout.split("head ")[1].split()[0]
    import shutil
    shutil.rmtree(s)
    events[1]["client_ip"] = "10.9.9.9"  # the rewritten history
    fill(s, events)
    audit("--store", s, "verify", check=0)
    r = audit("--store", s, "verify", "--head", head, check=1)
    assert "FAILED: head %s is not on the chain" % head in r.stdout


@pytest.mark.parametrize("bad", ["", "xyz", "ab" * 31, "zz" * 32])
def test_verify_head_usage(store, bad):
    r = audit("--store", store, "verify", "--head", bad, check=2)
    assert "--head" in r.stderr and r.stdout == ""


def test_report_prints_verification(store):
    for fmt in ("json", "md", "html"):
        r = audit("--store", store, "report", "--format", fmt, check=0)
        if fmt == "json":
            ver = json.loads(r.stdout)["verification"]
            assert ver["ok"] is True and ver["stores"][0]["events"] == 6
            assert len(ver["stores"][0]["head"]) == 64
        elif fmt == "md":
            assert "## Integrity (dpop-audit verify)" in r.stdout and "**Verified**" in r.stdout
        else:
            assert 'id="verification" class="verify ok"' in r.stdout
    tamper_bytes(store, b'"req-2026-01-01T10:00:01.5Z"', b'"req-2026-01-01T10:00:01.6Z"')
    for fmt in ("json", "md", "html"):
        r = audit("--store", store, "report", "--format", fmt)
        assert r.returncode == 1, (fmt, r.stderr)
        assert "verify FAILED" in r.stderr
        if fmt == "json":
            ver = json.loads(r.stdout)["verification"]
            assert ver["ok"] is False and ver["stores"][0]["bad_seq"] == 2
            assert "altered" in ver["stores"][0]["problem"]
        elif fmt == "md":
            assert "**FAILED**" in r.stdout and "event seq 2" in r.stdout
        else:
            assert 'class="verify failed"' in r.stdout and "FAILED at seq 2" in r.stdout


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("big") / "store")
    fill(d, [ev("2026-01-01T%02d:%02d:%02dZ" % (i // 3600, i // 60 % 60, i % 60), "replay",
                jti="jti-%d" % i, client_ip="10.0.%d.%d" % (i // 250, i % 250))
             for i in range(3000)])
    return d


COMMANDS = [["verify"], ["list"], ["list", "--format", "json"], ["report", "--format", "html"],
            ["report", "--format", "json"], ["alerts"], ["prune", "--before", "2026-01-01T01:00:00Z"],
            ["verify", "--head", "ab" * 32]]


@pytest.mark.parametrize("cut", ["third", "empty", "header"])
@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_truncated_store_exits_1(big_store, tmp_path, cut, cmd):
    """A data.mdb cut short (a partial rsync copy) crashed verify/list/report
    with SIGBUS (exit 135, no message): every command must end with exit 1
    and say what is wrong."""
    import shutil
    copy = str(tmp_path / "copy")
    shutil.copytree(big_store, copy)
    data = os.path.join(copy, "data.mdb")
    size = os.path.getsize(data)
    assert size > 100 * 4096
    subprocess.run(["truncate", "-s", {"third": str(size // 3), "empty": "0",
                                       "header": "5000"}[cut], data], check=True)
    r = audit("--store", copy, *cmd)
    assert r.returncode == 1, (r.returncode, r.stderr)  # never a signal (negative)
    assert "truncated" in r.stderr or "too short" in r.stderr, r.stderr
    assert copy in r.stderr
    assert os.path.getsize(data) == {"third": size // 3, "empty": 0, "header": 5000}[cut]


@pytest.mark.parametrize("cmd", COMMANDS + [["export"]], ids=lambda c: "-".join(c[:2]))
def test_corrupted_pages_exit_1(big_store, tmp_path, cmd):
    """Pages overwritten inside data.mdb: LMDB reports MDB_CORRUPTED, or
    meets a page of the wrong type and would abort() on its assertion; the
    CLI ends either way with a message naming the damage and exit 1."""
    import shutil
    copy = str(tmp_path / "copy")
    shutil.copytree(big_store, copy)
    with open(os.path.join(copy, "data.mdb"), "r+b") as f:
        f.seek(60 * 4096)
        f.write(b"\0" * 3 * 4096)
    r = audit("--store", copy, *cmd)
    assert r.returncode == 1, (r.returncode, r.stderr)
    # verify may instead find the damage itself (an index entry gone)
    assert "damaged" in r.stderr or (cmd[0] == "verify" and "FAILED" in r.stdout), (r.stdout,
                                                                                    r.stderr)


def test_report_json_and_md(store):
    r = audit("--store", store, "report", "--format", "json", check=0)
    rep = json.loads(r.stdout)
    assert rep["totals"]["events"] == 6
    reasons = {x["reason"]: x["count"] for x in rep["by_reason"]}
    assert reasons["replay"] == 2 and reasons["missing_proof"] == 1
    replays = rep["top_replays"]["rows"]
    assert replays[0]["jti"] == "jti-X" and replays[0]["count"] == 2
    assert [d["date"] for d in rep["per_day"]["days"]] == ["2026-01-01", "2026-01-02",
                                                           "2026-01-03"]
    assert {c["framework"] for c in rep["controls"]} >= {
        "OWASP Non-Human Identity Top 10 (2025)", "NIST CSF 2.0", "NIST SP 800-207"}
    r = audit("--store", store, "report", "--format", "json", "--since",
              "2026-01-02T00:00:00Z", check=0)
    assert json.loads(r.stdout)["totals"]["events"] == 2
    r = audit("--store", store, "report", "--format", "md", check=0)
    assert r.stdout.startswith("# ")
    for h in ("## By reason", "## By key (jkt)", "## By policy client", "## By token sub",
              "## By token client_id", "## By client IP", "## Per day", "## Replay attempts",
              "## Requests and rates", "## Compared with the previous period",
              "## Glossary of reasons", "## Controls", "Report SHA-256: `"):
        assert h in r.stdout


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["list", "--format", "xml"],
    ["list", "--since", "yesterday"],
    ["list", "--follow"],
    ["report"],
    ["report", "--format", "pdf"],
    ["verify", "--jkt", "x"],
    ["alerts", "--window", "0"],
    ["list", "extra-arg"],
])
def test_usage_errors(store, args):
    r = audit("--store", store, *args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr


def test_missing_store_is_an_error(tmp_path):
    r = audit("--store", str(tmp_path / "nope"), "list")
    assert r.returncode == 2 and "nope" in r.stderr
    r = audit("--store", str(tmp_path / "nope"), "prune", "--before", "1d")
    assert r.returncode == 2
    assert not os.path.exists(tmp_path / "nope")  # never created by the CLI


# ---------------------------------------------------------------- hostile strings
# Every string field comes from a hostile request.  One store of events whose
# user_agent, path, detail, htu (and the identifiers the report shows) carry
# terminal escapes, HTML/script, quotes, newlines, bidi overrides, spreadsheet
# formulas, 100 KB values and a compact JWS; every output format must stay
# well-formed, inject nothing, and never hold the JWS.  (Invalid UTF-8 cannot
# pass through JSON input; the C tests send it through audit_append.)

JWS = ("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9."
       "eyJzdWIiOiJzdmMiLCJjbmYiOnsiamt0IjoiYWJjIn19."
       "c2lnbmF0dXJlLWJ5dGVzLWhlcmUtdGhhdC1hcmUtbG9uZy1lbm91Z2g")
HOSTILE = [
    "\x1b[2J\x1b]0;pwned\x07\x9b31m" + "\u202egnp.exe",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "a\"b'c,d\r\ne|f*g`h[i](j)\n# heading",
    "=HYPERLINK(\"http://evil/\",\"x\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "Bearer " + JWS + " tail",
    "X" * 100 * 1024,
]


def ath(token):
    import base64
    import hashlib
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).decode().rstrip("=")


@pytest.fixture
def hostile_store(tmp_path):
    d = str(tmp_path / "hostile")
    evs = []
    for i, h in enumerate(HOSTILE):
        ts = "2026-01-01T10:00:%02dZ" % i
        evs.append(ev(ts, "replay" if i % 2 else "bad_signature", user_agent=h, path="/p/" + h,
                      detail=h, htu="https://x/" + h, jti="jti-" + h[:40], host="web" + h[:30],
                      client_ip=h[:60], policy_client=h, jkt=JKT_A if i % 3 else h[:100]))
    fill(d, evs)
    return d


def no_secret(text):
    assert JWS not in text
    assert JWS.split(".")[2] not in text  # not even the signature part


def test_hostile_table(hostile_store):
    r = subprocess.run([AUDIT, "--store", hostile_store, "list"], capture_output=True, timeout=60)
    out = r.stdout.decode("utf-8")  # strict: the cut never splits a character
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == len(HOSTILE) + 2  # header + one line each
    for ch in ("\x1b", "\x07", "\x9b", "\r", "\t", "\u202e"):
        assert ch not in out
    no_secret(out)


def test_hostile_json(hostile_store):
    r = audit("--store", hostile_store, "list", "--format", "json", check=0)
    assert r.stdout.isascii()  # every non-ASCII character \u-escaped: nothing for a terminal
    lines = r.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == len(HOSTILE) + 1
    for i, line in enumerate(lines[:-1]):
        got = json.loads(line)
        h = HOSTILE[i]
        if len(h) < 400 and "eyJ" not in h:
            assert got["detail"] == h  # exact: JSON is the lossless format
            assert got["user_agent"] == h
            # htu is stored without query and fragment (issue 15 item 6)
            assert got["htu"] == re.split(r"[?#]", "https://x/" + h)[0]
        assert len(got["user_agent"].encode()) <= 512
        assert len(got["path"].encode()) <= 2048
    no_secret(r.stdout)
    # the token became its hash, the form of token_hash (ath)
    assert "[redacted JWS sha256:%s]" % ath(JWS) in r.stdout


@pytest.mark.parametrize("raw", [False, True])
def test_hostile_csv(hostile_store, raw):
    r = subprocess.run([AUDIT, "--store", hostile_store, "list", "--format", "csv"]
                       + (["--csv-raw"] if raw else []), capture_output=True, timeout=60)
    assert r.returncode == 0
    out = r.stdout.decode("utf-8")
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert rows[0] == FIELDS and len(rows) == len(HOSTILE) + 1
    js = [json.loads(line) for line in
          audit("--store", hostile_store, "list", "--format", "json", check=0).stdout.splitlines()]
    for row, j in zip(rows[1:], js):
        assert len(row) == len(FIELDS)  # no quote or newline broke a row
        for k, cell in zip(FIELDS, row):
            v = j[k]
            exp = "" if v is None else str(v) if not isinstance(v, str) or raw or k == "ts" \
                else csv_safe(v)
            assert cell == exp, (k, cell, exp)
            if not raw and isinstance(v, str):
                assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")  # no formula
                assert not any(unsafe_char(c) and c not in "\r\n" for c in cell)
    no_secret(out)


def test_hostile_report_html(hostile_store):
    from html.parser import HTMLParser
    r = subprocess.run([AUDIT, "--store", hostile_store, "report", "--format", "html"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0
    out = r.stdout.decode("utf-8")  # strict UTF-8: no label cut inside a character
    tags = set()

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag)
            for name, _ in attrs:
                assert not name.startswith("on"), name  # no event handler injected

    P().feed(out)
    allowed = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "b",
               "section", "div", "table", "thead", "tbody", "tr", "th", "td", "span", "svg",
               "text", "rect", "line", "footer", "code", "br", "defs", "pattern"}
    assert tags <= allowed, tags - allowed
    for ch in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert ch not in out
    assert "&lt;script&gt;" in out
    no_secret(out)


def test_hostile_report_md_json(hostile_store):
    import re
    r = audit("--store", hostile_store, "report", "--format", "md", check=0)
    for ch in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert ch not in r.stdout
    assert not re.search(r"(?<!\\)[<>]", r.stdout)  # no raw HTML: every < > escaped
    # every table row has as many unescaped pipes as its header: no cell broke out
    pipes = None
    for line in r.stdout.split("\n"):
        if not line.startswith("|"):
            pipes = None
            continue
        n = len(re.findall(r"(?<!\\)\|", line))
        if pipes is None:
            pipes = n
        assert n == pipes, line
    no_secret(r.stdout)
    r = audit("--store", hostile_store, "report", "--format", "json", check=0)
    rep = json.loads(r.stdout)
    assert rep["totals"]["events"] == len(HOSTILE)
    no_secret(r.stdout)


def test_hostile_alerts(hostile_store):
    r = audit("--store", hostile_store, "alerts", "--signature-threshold", "2", check=0)
    lines = r.stdout.splitlines()
    assert lines
    for line in lines:
        assert line.isascii()
        a = json.loads(line)  # one JSON object per line, whatever the strings held
        assert a["event"]["kind"] == "alert"
    no_secret(r.stdout)


# ------------------------------------------------------ export (issue 19 item 5)

def export_lines(*args, check=0):
    r = audit(*args, check=check)
    return [json.loads(l) for l in r.stdout.splitlines()]


def test_export_ecs_lines(store):
    got = export_lines("--store", store, "export")
    assert [g["event"]["sequence"] for g in got] == [1, 2, 3, 4, 5, 6]
    want = base_events()
    for g, w in zip(got, want):
        assert g["@timestamp"] == norm_ts(w["ts"])
        ev_ = g["event"]
        assert ev_["kind"] == "event" and ev_["category"] == "authentication"
        assert ev_["outcome"] == "failure" and ev_["action"] == w["reason"]
        assert len(ev_["id"]) == 64 and int(ev_["id"], 16) >= 0
        assert g["source"]["ip"] == w["client_ip"]
        assert g["host"]["name"] == "web1"
        assert g["url"]["path"] == w["path"]
        assert g["error"]["code"] == w["error"]
        assert g["dpop"]["reason"] == w["reason"] and g["dpop"]["mode"] == "enforce"
        assert g["dpop"]["store"] == os.path.realpath(store)
        for k in ("jkt", "jti", "iat", "htm", "htu", "alg", "token_hash", "token_sub",
                  "token_client_id", "policy_client", "detail"):
            assert g["dpop"].get(k) == w.get(k), k  # absent when the event has none
        if w["user_agent"] == "curl/8.0":
            assert g["user_agent"]["original"] == "curl/8.0"
            assert g["http"]["request"]["method"] == "GET"
    # event.id is the chain hash: unique, the same on every run, and the head
    assert len({g["event"]["id"] for g in got}) == 6
    assert export_lines("--store", store, "export") == got
    head = audit("--store", store, "verify", check=0).stdout.split("head ")[1].split()[0]
    assert got[-1]["event"]["id"] == head
    # JSON lines, ASCII only, whatever the events held
    assert audit("--store", store, "export", check=0).stdout.isascii()
    # --since passes over older events
    got = export_lines("--store", store, "export", "--since", "2026-01-02T00:00:00Z")
    assert [g["event"]["sequence"] for g in got] == [5, 6]


def test_export_cursor_resumes(tmp_path, store):
    cur = str(tmp_path / "export.cursor")
    assert len(export_lines("--store", store, "export", "--cursor", cur)) == 6
    c = json.load(open(cur))
    assert c["version"] == 1 and c["stores"][os.path.realpath(store)]["seq"] == 6
    assert export_lines("--store", store, "export", "--cursor", cur) == []
    fill(store, [ev("2026-01-04T00:00:0%dZ" % i, "replay") for i in range(3)])
    got = export_lines("--store", store, "export", "--cursor", cur)
    assert [g["event"]["sequence"] for g in got] == [7, 8, 9]
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]  # no temporary left


def test_export_several_stores_one_cursor(tmp_path):
    s1, s2 = str(tmp_path / "web1"), str(tmp_path / "web2")
    fill(s1, [ev("2026-01-01T10:00:0%dZ" % i, "replay", host="web1") for i in range(3)])
    fill(s2, [ev("2026-01-01T10:00:0%dZ" % i, "replay", host="web2") for i in range(2)])
    cur = str(tmp_path / "cursor")
    got = export_lines("--store", s1, "--store", s2, "export", "--cursor", cur)
    assert sorted((g["host"]["name"], g["event"]["sequence"]) for g in got) == [
        ("web1", 1), ("web1", 2), ("web1", 3), ("web2", 1), ("web2", 2)]
    c = json.load(open(cur))["stores"]
    assert c[os.path.realpath(s1)]["seq"] == 3 and c[os.path.realpath(s2)]["seq"] == 2
    fill(s2, [ev("2026-01-01T10:00:09Z", "replay", host="web2")])
    # one store alone moves its own entry and keeps the other's
    got = export_lines("--store", s2, "export", "--cursor", cur)
    assert [(g["host"]["name"], g["event"]["sequence"]) for g in got] == [("web2", 3)]
    c = json.load(open(cur))["stores"]
    assert c[os.path.realpath(s1)]["seq"] == 3 and c[os.path.realpath(s2)]["seq"] == 3


def test_export_cursor_refuses_another_store(tmp_path, store):
    """A cursor written for one store must not be applied to a store that
    replaced it (rewritten, restored from an older copy): that would skip
    or misplace events."""
    import shutil
    cur = str(tmp_path / "cursor")
    export_lines("--store", store, "export", "--cursor", cur)
    shutil.rmtree(store)
    events = base_events()
    events[0]["detail"] = "rewritten"
    fill(store, events)
    r = audit("--store", store, "export", "--cursor", cur, check=1)
    assert "another hash" in r.stderr and r.stdout == ""
    shutil.rmtree(store)
    fill(store, base_events()[:3])
    r = audit("--store", store, "export", "--cursor", cur, check=1)
    assert "ends at 3" in r.stderr
    open(cur, "w").write("{not json")
    r = audit("--store", store, "export", "--cursor", cur, check=1)
    assert "remove it" in r.stderr


def test_export_after_prune_says_what_was_lost(tmp_path, store):
    cur = str(tmp_path / "cursor")
    fill(store, [])  # noqa: the store as is
    json.dump({"version": 1, "stores": {}}, open(cur, "w"))
    export_lines("--store", store, "export", "--cursor", cur, "--since", "2026-01-01T10:00:01Z")
    # cursor at 6; prune everything before the 3rd day, add one: resumes at 7
    audit("--store", store, "prune", "--before", "2026-01-03T00:00:00Z", check=0)
    fill(store, [ev("2026-01-05T00:00:00Z", "replay")])
    got = export_lines("--store", store, "export", "--cursor", cur)
    assert [g["event"]["sequence"] for g in got] == [7]
    # a cursor behind the prune: the gap is reported, then the rest exported
    c = json.load(open(cur))
    c["stores"][os.path.realpath(store)] = {"seq": 2, "hash": "00" * 32}
    json.dump(c, open(cur, "w"))
    r = audit("--store", store, "export", "--cursor", cur, check=0)
    assert "events 3..5 were pruned before they were exported" in r.stderr
    assert [json.loads(l)["event"]["sequence"] for l in r.stdout.splitlines()] == [6, 7]


@pytest.mark.parametrize("args", [
    ["export", "--cursor", ""],
    ["export", "--batch", "0"],
    ["export", "--reason", "replay"],
    ["export", "--cursor", "a", "--cursor", "b"],
    ["export", "--until", "1h"],
])
def test_export_usage(store, args):
    r = audit("--store", store, *args)
    assert r.returncode == 2 and r.stdout == "", (args, r.stderr)


def test_export_killed_mid_stream_resumes_without_gap(tmp_path):
    """SIGKILL the follower while events keep arriving, restart it with the
    same cursor, appending to the same file (as a service writing the file
    a shipper tails): every event (by sequence) is in the file, the only
    duplicates are at the seam (the batch written but not yet recorded in
    the cursor), and a line the kill cut is ended so that the next line
    stays whole."""
    import signal as sig
    import threading
    s = str(tmp_path / "s")
    fill(s, [ev("2026-01-01T00:%02d:%02dZ" % (i // 60 % 60, i % 60), "replay", jti="j%d" % i)
             for i in range(3000)])
    cur = str(tmp_path / "cursor")
    out = str(tmp_path / "events.json")
    total = [3000]
    stop = threading.Event()

    def writer():  # httpd appending while the exporter follows
        k = 0
        while not stop.is_set():
            fill(s, [ev("2026-01-02T00:00:00Z", "htu_mismatch", jti="w%d-%d" % (k, i))
                     for i in range(50)], "--writer")
            total[0] += 50
            k += 1
            time.sleep(0.05)

    def run():
        return subprocess.Popen([AUDIT, "--store", s, "export", "--follow", "--interval", "1",
                                 "--batch", "100", "--cursor", cur],
                                stdout=open(out, "a"), stderr=subprocess.PIPE)

    def lines(data):
        """Complete lines (a tailer ships nothing after the last newline)."""
        return data.split(b"\n")[:-1]

    t = threading.Thread(target=writer)
    t.start()
    try:
        p = run()
        deadline = time.time() + 60
        while time.time() < deadline and len(lines(open(out, "rb").read())) < 1500:
            time.sleep(0.005)
        p.send_signal(sig.SIGKILL)  # mid-stream: no chance to tidy up
        p.wait(timeout=10)
        assert p.returncode == -sig.SIGKILL
        cut = os.path.getsize(out)
        cursor_seq = json.load(open(cur))["stores"][os.path.realpath(s)]["seq"]
        p = run()
        time.sleep(2)
    finally:
        stop.set()
        t.join()
    # let the follower catch up with the last appends, then stop it cleanly
    deadline = time.time() + 60
    while time.time() < deadline:
        data = open(out, "rb").read()
        if data.endswith(b"\n") and json.loads(lines(data)[-1])["event"]["sequence"] == total[0]:
            break
        time.sleep(0.2)
    p.send_signal(sig.SIGTERM)
    p.wait(timeout=30)
    assert p.returncode == 0, p.stderr.read()
    data = open(out, "rb").read()
    first, second = data[:cut], data[cut:]
    a = [json.loads(l)["event"]["sequence"] for l in lines(first)]
    partial = first[first.rfind(b"\n") + 1:]  # what the kill cut, if anything
    if partial:
        assert second.startswith(b"\n")  # ended by the next run, alone on its line
        second = second[1:]
    b = [json.loads(l)["event"]["sequence"] for l in lines(second)]  # every line whole
    assert second.endswith(b"\n")
    # each run writes its store's events in order, without holes
    assert a == list(range(1, len(a) + 1)) and len(a) >= 1500
    assert b == list(range(b[0], b[0] + len(b)))
    assert cursor_seq <= a[-1]
    assert b[0] == cursor_seq + 1  # resumed right after the cursor
    assert b[0] <= a[-1] + 1       # no gap between the runs
    assert set(a) | set(b) == set(range(1, total[0] + 1))
    dups = set(a) & set(b)
    assert dups == set(range(b[0], a[-1] + 1))  # duplicates only at the seam
    assert len(dups) <= 100 + 1  # at most the batch in flight
    print("export kill: %d lines before the kill, cut line %d bytes, %d duplicates, %d events" % (len(a), len(partial), len(dups), total[0]))


def test_export_ends_a_cut_line(tmp_path, store):
    """A previous run killed inside a line left the file without its last
    newline: the next run ends that line first so its own lines stay whole."""
    out = str(tmp_path / "events.json")
    with open(out, "wb") as f:
        f.write(b'{"@timestamp":"2026-01-01T10:00:00.000000Z","event":{"ki')
    with open(out, "a") as f:
        subprocess.run([AUDIT, "--store", store, "export"], stdout=f, check=True, timeout=60)
    data = open(out, "rb").read().split(b"\n")
    assert data[0].endswith(b'"ki') and data[-1] == b""
    assert [json.loads(l)["event"]["sequence"] for l in data[1:-1]] == [1, 2, 3, 4, 5, 6]
    # a file that ends with a newline gets nothing added
    size = os.path.getsize(out)
    with open(out, "a") as f:
        subprocess.run([AUDIT, "--store", store, "export", "--since", "2026-01-03"], stdout=f,
                       check=True, timeout=60)
    assert open(out, "rb").read()[size:size + 1] == b"{"


def test_hostile_export(hostile_store):
    r = audit("--store", hostile_store, "export", check=0)
    lines = r.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == len(HOSTILE) + 1
    assert r.stdout.isascii()
    for i, line in enumerate(lines[:-1]):
        e = json.loads(line)  # one object per line whatever the strings held
        h = HOSTILE[i]
        if len(h) < 400 and "eyJ" not in h:
            assert e["user_agent"]["original"] == h and e["dpop"]["detail"] == h
    no_secret(r.stdout)


def test_exported_event_id_is_a_verifiable_head(store):
    """What a SIEM fed by export holds is enough to anchor the chain."""
    ids = [g["event"]["id"] for g in export_lines("--store", store, "export")]
    r = audit("--store", store, "verify", "--head", ids[3], check=0)
    assert "head %s: on the chain of" % ids[3] in r.stdout and "at seq 4" in r.stdout
    audit("--store", store, "prune", "--before", "2026-01-02T00:00:00Z", check=0)
    r = audit("--store", store, "verify", "--head", ids[3], check=0)  # now the checkpoint
    assert "at seq 4" in r.stdout
    audit("--store", store, "verify", "--head", ids[2], check=1)  # pruned past: not provable

# ---------------------------------------------------------------- --help is complete
# What each command accepts is decided by the parser (its option table and
# per-command allow-list in logger/dpop-audit.c); --help must show all of it
# and nothing more.  Which options a command accepts is asked of the binary
# itself: with a store that does not exist, an accepted option gets as far
# as opening the store, a refused one stops at "option not valid".

def parser_options():
    """{long option: takes a value} from the getopt table in logger/dpop-audit.c."""
    src = open(os.path.join(TOP, "logger", "dpop-audit.c"), encoding="utf-8").read()
    return {n: kind == "required"
            for n, kind in re.findall(r'\{"([a-z][a-z-]*)",\s*(required|no)_argument', src)}


# A value each option's own syntax check accepts (the values are checked as
# they are parsed, before the per-command check).
OPTION_VALUE = {"since": "1h", "until": "1h", "before": "1d", "interval": "1", "window": "60",
                "signature-threshold": "3", "key-threshold": "3", "format": "json",
                "ip": "127.0.0.1", "reason": "replay", "head": "0" * 64, "batch": "10"}


def help_entry(text, cmd):
    """The words of `cmd`'s entry in the --help text: its line and the more
    indented continuation lines under it."""
    lines, out = text.splitlines(), []
    for i, line in enumerate(lines):
        if re.match(r"^  %s(\s|$)" % re.escape(cmd), line):
            out.append(line)
            for cont in lines[i + 1:]:
                if not re.match(r"^ {4,}\S", cont):
                    break
                out.append(cont)
    return "\n".join(out)


GLOBAL_OPTIONS = {"store", "help", "version"}  # global: shown outside the command entries


@pytest.mark.parametrize("cmd", ["list", "report", "alerts", "export", "verify", "prune"])
def test_help_lists_every_option_the_command_accepts(tmp_path, cmd):
    names = parser_options()
    assert {"window", "signature-threshold", "key-threshold", "format"} <= set(names)
    help_text = audit("--help", check=0).stdout
    entry = help_entry(help_text, cmd)
    assert entry, help_text
    missing = str(tmp_path / "no-store")
    accepted = set()
    for name, takes_value in names.items():
        if name in GLOBAL_OPTIONS:
            continue
        arg = ["--" + name] + ([OPTION_VALUE.get(name, "x")] if takes_value else [])
        r = audit("--store", missing, cmd, *arg)
        assert "dpop-audit: --" not in r.stderr, (name, r.stderr)  # the value was fine
        assert "unknown option" not in r.stderr, (name, r.stderr)
        if "option not valid for this command" not in r.stderr:
            accepted.add(name)
        elif ("--" + name) in entry:
            pytest.fail("%s --help shows --%s, which %s refuses" % (cmd, name, cmd))
    shown = set(re.findall(r"--([a-z][a-z-]*)", entry))
    assert accepted <= shown, "%s accepts %s but --help does not list it:\n%s" % (
        cmd, sorted(accepted - shown), entry)
    assert "--store" in help_text.splitlines()[0]
