# SPDX-License-Identifier: Apache-2.0
"""The observability bundle (issue 20 item 4): contrib/observability's
alerting rules pass `promtool check rules` and fire as intended under
`promtool test rules` (and the scrape configuration passes `promtool check
config`), and every metric name the rules and the Grafana
dashboard use is one the dpop-metrics handler of a real httpd serves, with
the Apache snippet of conf.d/dpop-metrics.conf as shipped.  The handler
serves dpop_build_info{version=PACKAGE_VERSION} 1 and the audit map gauges
(measured by the audit writer: the map size is DPoPAuditMapSize, the used
bytes grow with the store).
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from harness import Client, tamper
from test_module_metrics import parse

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OBS = os.path.join(TOP, "contrib", "observability")
RULES = os.path.join(OBS, "dpop-alerts.rules.yml")
DASHBOARD = os.path.join(OBS, "grafana-dashboard.json")
SCRAPE = os.path.join(OBS, "prometheus.yml")
SNIPPET = os.path.join(TOP, "conf.d", "dpop-metrics.conf")
PROMTOOL = shutil.which("promtool")
MAPSIZE = 64 * 1024 * 1024

# PromQL words that look like metric names but are not
NOT_METRICS = {"dpop"}


def promtool(*args):
    if not PROMTOOL:
        pytest.fail("promtool missing: run scripts/deps.sh (Debian package prometheus)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=OBS, timeout=60)


def test_rules_pass_promtool():
    r = promtool("check", "rules", RULES)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_rules_fire_on_their_series():
    """promtool test rules: each alert fires, with its labels and
    annotations, on the series it is meant for, and healthy series stay
    quiet (tests/integration/observability_rules_test.yml)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if not PROMTOOL:
        pytest.fail("promtool missing: run scripts/deps.sh (Debian package prometheus)")
    r = subprocess.run([PROMTOOL, "test", "rules", "observability_rules_test.yml"],
                       capture_output=True, text=True, cwd=here, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_scrape_config_passes_promtool():
    r = promtool("check", "config", SCRAPE)
    assert r.returncode == 0, r.stdout + r.stderr
    text = open(SCRAPE).read()
    assert "metrics_path: /dpop-metrics" in text


def rule_exprs():
    text = open(RULES).read()
    # expr: one line, or a | block (indented lines below)
    exprs = re.findall(r"^\s+expr: \|\n((?:\s{10,}.*\n)+)", text, re.M)
    exprs += [e for e in re.findall(r"^\s+expr: (?!\|)(.+)$", text, re.M)]
    return exprs


def dashboard_exprs():
    d = json.load(open(DASHBOARD))
    out = []
    for p in d["panels"]:
        assert p.get("targets"), p["title"]
        out += [t["expr"] for t in p["targets"]]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            out.append(v["definition"])
    return out


def metric_names(exprs):
    names = set()
    for e in exprs:
        e = re.sub(r'"[^"]*"', '""', e)  # label values
        names |= set(re.findall(r"\b(dpop_[a-z0-9_]+)\b", e))
    return names - NOT_METRICS


def test_rules_cover_what_the_issue_asks():
    alerts = set(re.findall(r"^\s+- alert: (\S+)", open(RULES).read(), re.M))
    assert {"DPoPRejectionRateHigh", "DPoPReplayDetected", "DPoPReplayCacheFilling",
            "DPoPReplayCacheErrors", "DPoPPolicyLoadError", "DPoPAuditWriteErrors",
            "DPoPAuditMapFilling"} <= alerts


def snippet_location():
    text = open(SNIPPET).read()
    m = re.search(r"^\s*(<Location /dpop-metrics>.*?</Location>)", text, re.M | re.S)
    assert m, "conf.d/dpop-metrics.conf has no live <Location /dpop-metrics>"
    assert "SetHandler dpop-metrics" in m.group(1) and "Require ip" in m.group(1)
    return m.group(1)


def scrape_text(h):
    r = h.request("GET", "/dpop-metrics")
    assert r.status == 200, r
    return r.text()


def test_every_metric_used_is_served(env, httpd):
    audit = env.path("obs-%d" % env.next_id(), "audit")
    os.chmod(os.path.dirname(audit), 0o755)
    env.chown_for_httpd(os.path.dirname(audit))
    h = httpd(server_conf='DPoPAuditLog "%s"\nDPoPAuditMapSize %d' % (audit, MAPSIZE),
              extra_conf=snippet_location())
    # traffic of every kind: verified, rejected (audited), replayed
    c = Client(env)
    assert c.call(h, "GET", "/api/x").status == 200
    proof = env.proof(c.key, "GET", h.url("/api/x"), token=c.token)
    assert h.request("GET", "/api/x", token=c.token, proof=proof).status == 200
    assert h.request("GET", "/api/x", token=c.token, proof=proof).status == 401  # replay
    assert h.request("GET", "/api/x", token=c.token, proof=tamper(
        env.proof(c.key, "GET", h.url("/api/x"), token=c.token))).status == 401
    # the audit writer measures the map after its commit; a later event
    # publishes that measure
    deadline = time.time() + 20
    samples = {}
    while time.time() < deadline:
        samples, types = parse(scrape_text(h))
        used = samples.get(("dpop_audit_map_used_bytes", frozenset()), 0)
        if used > 0:
            break
        h.request("GET", "/api/x")  # another audited failure (missing_token)
        time.sleep(0.5)
    served = {name for (name, _labels) in samples}
    used_names = metric_names(rule_exprs()) | metric_names(dashboard_exprs())
    assert used_names, "no metric found in the rules or the dashboard"
    unknown = used_names - served
    assert not unknown, "the rules/dashboard use metrics the handler does not serve: %s" % (
        sorted(unknown))

    ver = re.search(r'#define PACKAGE_VERSION "([^"]+)"',
                    open(os.path.join(env.tools.build, "config.h")).read()).group(1)
    assert samples[("dpop_build_info", frozenset({("version", ver)}))] == 1
    assert types["dpop_build_info"] == "gauge"
    assert types["dpop_audit_map_used_bytes"] == "gauge"
    assert samples[("dpop_audit_map_size_bytes", frozenset())] == MAPSIZE
    assert 0 < samples[("dpop_audit_map_used_bytes", frozenset())] <= MAPSIZE
    # and from anywhere else the snippet refuses (Require ip)
    assert "Require ip 127.0.0.1 ::1" in snippet_location()


def test_dashboard_is_grafana_json():
    d = json.load(open(DASHBOARD))
    assert d["title"] and d["uid"] and isinstance(d["panels"], list) and len(d["panels"]) >= 8
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
