# SPDX-License-Identifier: Apache-2.0
"""The HTML compliance report rendered in a real browser: headless Chromium
(Debian package `chromium`) loads the file produced by `dpop-audit report
--format html`, and the rendered DOM must hold the inline SVG chart and every
report section, with hostile event strings shown as text (no element
injected), no console error, no blocked resource load (the page has a
Content-Security-Policy of default-src 'none': any external resource or script
would show up as a violation).  A realistic store (20,000+ events over 14
days, a rollout from report-only to enforce, per-hour request counts) is
rendered and screenshot at 1400x4000; a small store with known counts checks
the JSON figures exactly (counts, rates, previous-period deltas) and that the
report's SHA-256 is recomputable.  Skipped only when chromium is not
installed.
"""
import datetime
import hashlib
import json
import random
import os
import re
import shutil
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DPOP_BUILD", os.path.join(TOP, "build-release"))
AUDIT = os.path.join(BUILD, "logger", "dpop-audit")
FILL = os.path.join(BUILD, "logger", "audit-fill")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.skipif(not (os.access(AUDIT, os.X_OK) and os.access(FILL, os.X_OK)),
                       reason="dpop-audit not built in DPOP_BUILD=%s" % BUILD),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/deps.sh)"),
]

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def events():
    out = []
    for day in range(1, 8):
        for i in range(day * 3):
            out.append({"ts": "2026-01-%02dT%02d:00:%02dZ" % (day, 8 + i % 10, i),
                        "host": "web%d" % (i % 2 + 1), "client_ip": "192.0.2.%d" % (i % 5),
                        "error": "invalid_dpop_proof",
                        "reason": ["bad_signature", "htu_mismatch", "replay"][i % 3],
                        "jkt": "jkt-%d" % (i % 4), "jti": "jti-%d" % (i % 3),
                        "token_hash": "th-%d" % (i % 6), "policy_client": "client-%d" % (i % 4),
                        "user_agent": HOSTILE, "mode": "enforce"})
    out.append({"ts": "2026-01-07T23:00:00Z", "reason": "policy_denied",
                "error": "insufficient_scope", "jkt": HOSTILE, "policy_client": HOSTILE,
                "client_ip": HOSTILE[:60], "host": "web<1>"})
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    store = str(d / "store")
    data = "".join(json.dumps(e) + "\n" for e in events())
    r = subprocess.run([FILL, "--store", store], input=data, text=True, capture_output=True)
    assert r.returncode == 0, r.stderr
    html = d / "report.html"
    with open(html, "wb") as f:
        r = subprocess.run([AUDIT, "--store", store, "report", "--format", "html"], stdout=f,
                           stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    return d, html


def chromium(d, *args):
    profile = d / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--disable-dev-shm-usage", "--user-data-dir=%s" % profile,
           "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_problems(stderr):
    """Console messages, CSP violations and load failures from the page."""
    bad = []
    for line in stderr.splitlines():
        if "CONSOLE" in line or "Refused to" in line or "Content Security Policy" in line \
                or "net::ERR" in line or "Uncaught" in line:
            bad.append(line)
    return bad


def test_static_file_is_self_contained(report):
    _, html = report
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()
    assert not re.search(r'\s(src|href)\s*=\s*"', text)
    assert "Content-Security-Policy" in text
    assert text.count("<svg") >= 1


def test_rendered_dom(report):
    d, html = report
    r = chromium(d, "--dump-dom", "file://%s" % html)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert dom.strip().endswith("</html>")
    # the charts are inline SVG in the rendered DOM
    assert re.search(r'<svg[^>]*id="chart-per-day"', dom)
    # 7 days, each with segments stacked by reason (3 reasons a day, enforce)
    per_day = re.search(r'<svg[^>]*id="chart-per-day".*?</svg>', dom, re.S).group(0)
    assert len(re.findall(r'<rect class="seg"', per_day)) >= 7
    for section in ("summary", "scope", "by-reason", "per-day", "by-key", "by-ip", "replays",
                    "alerts", "glossary", "controls"):
        assert 'id="%s"' % section in dom, section
    for text in ("OWASP Non-Human Identity Top 10", "PR.AA", "SP 800-207",
                 "Replay attempts", "dpop_replay"):
        assert text in dom, text
    # hostile strings are text, never elements: no script ran, no image exists
    assert "<script" not in dom.lower()
    assert "<img" not in dom.lower()
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "&lt;script&gt;" in dom
    assert not console_problems(r.stderr), console_problems(r.stderr)


# ------------------------------------------------ a realistic store

REASONS = [("missing_proof", "invalid_dpop_proof", 30), ("iat_too_old", "invalid_dpop_proof", 12),
           ("htu_mismatch", "invalid_dpop_proof", 8), ("bad_signature", "invalid_dpop_proof", 6),
           ("replay", "invalid_dpop_proof", 5), ("jkt_mismatch", "invalid_token", 2),
           ("policy_denied", "insufficient_scope", 10), ("token_invalid", "invalid_token", 8),
           ("nonce_missing", "use_dpop_nonce", 6), ("bearer_downgrade", "invalid_token", 2),
           ("key_revoked", "insufficient_scope", 1)]
START = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
DAYS = 14


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def realistic_lines():
    """14 days: a week of report-only then a week of enforce, 60 keys on 3
    hosts and 2 vhosts, tokens with sub/client_id, one bad-signature burst a
    day from one IP with one key, and per-hour request counts."""
    rnd = random.Random(7)
    out = []
    for day in range(DAYS):
        mode = "report-only" if day < 7 else "enforce"
        n = (1600 if mode == "report-only" else 1100) + rnd.randint(0, 300)
        for i in range(n):
            t = START + datetime.timedelta(days=day, seconds=rnd.randint(0, 86399),
                                           microseconds=rnd.randint(0, 999999))
            r = rnd.choices(REASONS, [x[2] for x in REASONS])[0]
            k = rnd.randint(0, 60)
            e = {"ts": ts(t), "host": "web%d.example.net" % (k % 3 + 1),
                 "vhost": ["api.example.com", "partner.example.com"][k % 2], "pid": 1000 + k,
                 "client_ip": "198.51.100.%d" % (k % 40), "method": "GET",
                 "path": ["/api/orders", "/api/invoices", "/api/customers/42",
                          "/partner/feed"][k % 4],
                 "error": r[1], "reason": r[0], "jti": "jti-%d-%d" % (day, i),
                 "token_hash": "th-%d" % k, "token_sub": "svc-%d" % (k % 17),
                 "token_client_id": "client-%d" % (k % 9), "mode": mode,
                 "user_agent": HOSTILE}
            if r[0] != "missing_proof":
                e["jkt"] = "jkt-%02d" % k
            if k % 5:
                e["policy_client"] = "agent-%d" % (k % 12)
            out.append(e)
        for i in range(30):
            out.append({"ts": ts(START + datetime.timedelta(days=day, hours=3, seconds=i)),
                        "host": "web1.example.net", "vhost": "api.example.com",
                        "client_ip": "203.0.113.9", "error": "invalid_dpop_proof",
                        "reason": "bad_signature", "jkt": "jkt-attacker", "mode": mode,
                        "path": "/api/orders"})
    out.sort(key=lambda e: e["ts"])
    lines = [json.dumps(e) for e in out]
    for h in range(DAYS * 24):
        for host in ("web1.example.net", "web2.example.net", "web3.example.net"):
            for vh in ("api.example.com", "partner.example.com"):
                lines.append(json.dumps({
                    "hour": ts(START + datetime.timedelta(hours=h)), "host": host, "vhost": vh,
                    "mode": "report-only" if h < 7 * 24 else "enforce",
                    "verified": 2000 + rnd.randint(0, 500), "rejected": 10 + rnd.randint(0, 8)}))
    return len(out), "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    d = tmp_path_factory.mktemp("realistic")
    store = str(d / "store")
    nevents, data = realistic_lines()
    assert nevents >= 20000
    r = subprocess.run([FILL, "--store", store], input=data, text=True, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "appended %d" % nevents
    out = {}
    for fmt in ("html", "json", "md"):
        path = d / ("report." + fmt)
        with open(path, "wb") as f:
            r = subprocess.run([AUDIT, "--store", store, "report", "--format", fmt], stdout=f,
                               stderr=subprocess.PIPE, timeout=120)
        assert r.returncode == 0, r.stderr
        out[fmt] = path
    return d, nevents, out


def test_realistic_report_sections(realistic):
    d, nevents, out = realistic
    rep = json.loads(out["json"].read_text())
    assert rep["totals"]["events"] == nevents
    assert rep["totals"]["refused"] + rep["totals"]["report_only"] == nevents
    assert rep["totals"]["report_only"] > 0 and rep["totals"]["refused"] > 0
    # the real period, not "start of store to now"
    assert rep["period"]["basis"] == "first to last event"
    assert rep["period"]["from"].startswith("2026-03-01T")
    assert rep["period"]["to"].startswith("2026-03-14T")
    assert len(rep["per_day"]["days"]) == DAYS
    assert rep["requests"]["available"] and rep["requests"]["total"] > 4000000
    # one incident per daily burst (seen by IP and by key): 14, not 28
    assert rep["alerts"]["by_rule"]["dpop_signature_burst"] == DAYS
    assert rep["by_key"]["shown"] == 25 and rep["by_key"]["total"] == 62
    r = chromium(d, "--dump-dom", "file://%s" % out["html"])
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    for section in ("summary", "scope", "requests", "comparison", "per-day", "by-reason",
                    "by-key", "by-policy-client", "by-token-sub", "by-token-client-id", "by-ip",
                    "replays", "alerts", "glossary", "controls", "verification",
                    "report-sha256"):
        assert 'id="%s"' % section in dom, section
    assert "Period: <b>%s</b>" % rep["period"]["from"] in dom
    assert "start of store" not in dom
    # each run has its own generated_at, so its own hash: printed in the
    # header and the footer of the page, and in the Markdown
    sha = re.search(r'Report SHA-256: <b>([0-9a-f]{64})</b>', dom).group(1)
    assert "Report SHA-256 %s." % sha in dom
    assert re.search(r"Report SHA-256: `[0-9a-f]{64}`", out["md"].read_text())
    assert "25 of 62 shown" in dom
    assert "%d of %d shown" % (rep["alerts"]["shown"], rep["alerts"]["total"]) in dom
    assert "Integrity: verified" in dom
    # the chart: 14 day labels, refused (solid) and report-only (hatched) segments
    chart = re.search(r'<svg[^>]*id="chart-per-day".*?</svg>', dom, re.S).group(0)
    assert len(re.findall(r'<text[^>]*text-anchor="middle">03-\d\d</text>', chart)) == DAYS
    assert 'fill="url(#ro' in chart and re.search(r'<rect class="seg"[^>]*fill="#', chart)
    assert "(report-only, served)" in chart and "(refused)" in chart
    # every reason of the glossary has what to do
    gl = re.search(r'<section id="glossary">.*?</section>', dom, re.S).group(0)
    assert gl.count("<tr>") == 1 + 27
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert not console_problems(r.stderr), console_problems(r.stderr)


def test_screenshot(realistic):
    d, _, out = realistic
    png = d / "report.png"
    r = chromium(d, "--screenshot=%s" % png, "--window-size=1400,4000",
                 "--hide-scrollbars", "file://%s" % out["html"])
    assert r.returncode == 0, r.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 100000  # a rendered page full of tables and a chart, not a blank one
    assert not console_problems(r.stderr), console_problems(r.stderr)


def test_report_sha256_recomputable(realistic):
    """The report's SHA-256 is that of its JSON model with sorted keys, no
    whitespace, ASCII: any JSON library recomputes it."""
    _, _, out = realistic
    rep = json.loads(out["json"].read_text())
    want = rep.pop("report_sha256")["value"]
    canon = json.dumps(rep, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert hashlib.sha256(canon.encode()).hexdigest() == want


# ------------------------------------------------ exact figures in JSON


def test_known_counts_exact_json(tmp_path):
    """Previous period [06:00, 10:00): 2 refusals, 1000 requests (10
    rejected).  Period [10:00, 14:00): 3 refusals and 5 report-only events,
    2000 requests (8 rejected in enforce, 12 in report-only)."""
    store = str(tmp_path / "store")
    ev = []
    for i in range(2):
        ev.append({"ts": "2026-01-01T07:00:%02dZ" % i, "reason": "bad_signature",
                   "error": "invalid_dpop_proof", "jkt": "KA", "host": "h1", "mode": "enforce"})
    for i in range(8):
        ev.append({"ts": "2026-01-01T11:00:%02dZ" % i,
                   "reason": "replay" if i < 3 else "missing_proof",
                   "error": "invalid_dpop_proof", "host": "h1", "jkt": "KA" if i < 3 else None,
                   "token_client_id": "app-a" if i < 3 else "app-b",
                   "mode": "enforce" if i < 3 else "report-only"})
    counts = [("2026-01-01T08:00:00Z", "enforce", 990, 10),
              ("2026-01-01T10:00:00Z", "enforce", 992, 8),
              ("2026-01-01T12:00:00Z", "report-only", 988, 12),
              ("2026-01-01T15:00:00Z", "enforce", 5000, 5000)]  # outside the period
    lines = [json.dumps(e) for e in ev] + [
        json.dumps({"hour": h, "host": "h1", "vhost": "api", "mode": m, "verified": v,
                    "rejected": j}) for h, m, v, j in counts]
    r = subprocess.run([FILL, "--store", store], input="\n".join(lines) + "\n", text=True,
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([AUDIT, "--store", store, "report", "--format", "json", "--since",
                        "2026-01-01T10:00:00Z", "--until", "2026-01-01T14:00:00Z"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["period"]["from"] == "2026-01-01T10:00:00.000000Z"
    assert rep["period"]["to"] == "2026-01-01T14:00:00.000000Z"
    assert rep["period"]["basis"] == "requested window"
    assert (rep["totals"]["events"], rep["totals"]["refused"], rep["totals"]["report_only"]) == \
        (8, 3, 5)
    req = rep["requests"]
    assert (req["total"], req["verified"], req["rejected"], req["refused"],
            req["report_only"]) == (2000, 1980, 20, 8, 12)
    assert req["rejection_rate"] == 0.01
    assert req["refusal_rate"] == 0.004
    assert req["report_only_rate"] == 0.006
    pp = rep["previous_period"]
    assert pp["from"] == "2026-01-01T06:00:00.000000Z" and pp["has_data"]
    assert pp["events"] == {"current": 8, "previous": 2, "delta": 6, "delta_pct": 300.0}
    assert pp["refused"] == {"current": 3, "previous": 2, "delta": 1, "delta_pct": 50.0}
    assert pp["report_only"]["previous"] == 0 and pp["report_only"]["delta_pct"] is None
    assert pp["requests"] == {"current": 2000, "previous": 1000, "delta": 1000,
                              "delta_pct": 100.0}
    assert pp["rejection_rate"] == {"current": 0.01, "previous": 0.01, "delta": 0.0}
    assert pp["refusal_rate"] == {"current": 0.004, "previous": 0.01, "delta": -0.006}
    cid = {row["token_client_id"]: row for row in rep["by_token_client_id"]["rows"]}
    assert (cid["app-b"]["report_only"], cid["app-b"]["enforce"]) == (5, 0)
    assert (cid["app-a"]["report_only"], cid["app-a"]["enforce"]) == (0, 3)
