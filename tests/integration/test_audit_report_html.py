"""The HTML compliance report rendered in a real browser: headless Chromium
(Debian package `chromium`) loads the file produced by `dpop-audit report
--format html`, and the rendered DOM must hold the inline SVG charts and every
report section, with hostile event strings shown as text (no element
injected), no console error, no blocked resource load (the page has a
Content-Security-Policy of default-src 'none': any external resource or script
would show up as a violation).  Skipped only when chromium is not installed.
"""
import json
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
    assert text.count("<svg") >= 3


def test_rendered_dom(report):
    d, html = report
    r = chromium(d, "--dump-dom", "file://%s" % html)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert dom.strip().endswith("</html>")
    # the charts are inline SVG in the rendered DOM
    for chart in ("chart-per-day", "chart-by-reason", "chart-by-ip"):
        assert re.search(r'<svg[^>]*id="%s"' % chart, dom), chart
    # one bar per day (7 days), and bars in the reason chart
    per_day = re.search(r'<svg[^>]*id="chart-per-day".*?</svg>', dom, re.S).group(0)
    assert len(re.findall(r"<rect ", per_day)) == 7
    by_reason = re.search(r'<svg[^>]*id="chart-by-reason".*?</svg>', dom, re.S).group(0)
    assert len(re.findall(r"<rect ", by_reason)) == 4
    for section in ("summary", "by-reason", "per-day", "by-key", "by-ip", "replays", "alerts",
                    "controls"):
        assert 'id="%s"' % section in dom, section
    for text in ("OWASP Non-Human Identity Top 10", "PR.AA", "SP 800-207",
                 "Top replay attempts", "dpop_replay"):
        assert text in dom, text
    # hostile strings are text, never elements: no script ran, no image exists
    assert "<script" not in dom.lower()
    assert "<img" not in dom.lower()
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "&lt;script&gt;" in dom
    assert not console_problems(r.stderr), console_problems(r.stderr)


def test_screenshot(report):
    d, html = report
    png = d / "report.png"
    r = chromium(d, "--screenshot=%s" % png, "--window-size=1200,3000",
                 "--hide-scrollbars", "file://%s" % html)
    assert r.returncode == 0, r.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20000  # a rendered page, not a blank one
    assert not console_problems(r.stderr), console_problems(r.stderr)
