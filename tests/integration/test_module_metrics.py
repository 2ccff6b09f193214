# SPDX-License-Identifier: Apache-2.0
"""SetHandler dpop-metrics (issue 12 item 4): the Prometheus text format
0.0.4, parsed strictly, with exact counts after known traffic, aggregated
across the children and kept across a graceful restart."""
import math
import re

from harness import Client, tamper

METRICS_LOCATION = """
<Location /dpop-metrics>
    SetHandler dpop-metrics
    Require ip 127.0.0.1
</Location>
"""

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)\})? (\S+)$" % (NAME, LABEL, LABEL))
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse(text):
    """Strict parser of the text exposition format 0.0.4: every line is a
    HELP, a TYPE or a sample; TYPE before the samples of its family and once;
    values are floats; histograms are cumulative with +Inf == _count.
    Returns {(name, frozenset(labels)): value} and {family: type}."""
    assert text.endswith("\n"), "the last line must end with a newline"
    samples, types, helps, seen_sample = {}, {}, set(), set()
    for line in text[:-1].split("\n"):
        assert line, "empty line"
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(NAME, name) and name not in helps, line
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4 and parts[3] in TYPES, line
            assert parts[2] not in types and parts[2] not in seen_sample, line
            types[parts[2]] = parts[3]
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels_text, value = m.group(1), m.group(2), m.group(m.lastindex)
        labels = frozenset(re.findall(LABEL, labels_text or ""))
        family = re.sub(r"_(bucket|sum|count|total)$", "", name)
        fam = name if name in types else family if family in types else None
        assert fam, "sample before its TYPE: %r" % line
        seen_sample.add(fam)
        v = float(value)  # raises on garbage; +Inf is valid
        assert not math.isnan(v)
        key = (name, labels)
        assert key not in samples, "duplicate sample %r" % line
        samples[key] = v
    for fam, t in types.items():
        if t != "histogram":
            continue
        buckets = sorted(((float(dict(l)["le"]), v) for (n, l), v in samples.items()
                          if n == fam + "_bucket"))
        assert buckets and buckets[-1][0] == math.inf, fam
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
        assert samples[(fam + "_count", frozenset())] == buckets[-1][1]
        assert (fam + "_sum", frozenset()) in samples
    return samples, types


def scrape(h):
    r = h.request("GET", "/dpop-metrics")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
    return parse(r.text())[0]


def val(s, name, **labels):
    return s[(name, frozenset(labels.items()))]


def test_metrics_count_known_traffic_across_children_and_restarts(env, httpd):
    h = httpd(extra_conf=METRICS_LOCATION)
    base = scrape(h)
    # at start every counter is 0; the capacity and dpop_build_info (always
    # 1) are not counters
    assert all(v == 0 for (n, _), v in base.items()
               if n not in ("dpop_replay_cache_capacity", "dpop_build_info"))
    assert val(base, "dpop_replay_cache_capacity") > 0
    c = Client(env)
    ok = [c.call(h, "GET", "/api/m%d" % i) for i in range(6)]
    assert [r.status for r in ok] == [200] * 6
    first = env.proof(c.key, "GET", h.url("/api/r"), token=c.token)
    assert h.request("GET", "/api/r", token=c.token, proof=first).status == 200
    for _ in range(2):
        assert h.request("GET", "/api/r", token=c.token, proof=first).status == 401
    bad = env.remember(tamper(env.proof(c.key, "GET", h.url("/api/b"), token=c.token)))
    assert h.request("GET", "/api/b", token=c.token, proof=bad).status == 401
    assert h.request("GET", "/api/n", token=c.token).status == 401  # missing_proof
    assert h.request("GET", "/api/none").status == 401  # no credentials: no rejection

    s = scrape(h)
    assert val(s, "dpop_requests_verified_total", scheme="dpop") == 7
    assert val(s, "dpop_requests_verified_total", scheme="bearer") == 0
    assert val(s, "dpop_requests_rejected_total", reason="replay", mode="enforce") == 2
    assert val(s, "dpop_requests_rejected_total", reason="bad_signature", mode="enforce") == 1
    assert val(s, "dpop_requests_rejected_total", reason="missing_proof", mode="enforce") == 1
    rejected = sum(v for (n, _), v in s.items() if n == "dpop_requests_rejected_total")
    assert rejected == 4
    assert val(s, "dpop_replay_cache_inserts_total") == 7
    assert val(s, "dpop_replay_cache_hits_total") == 2
    assert val(s, "dpop_replay_cache_errors_total") == 0
    assert val(s, "dpop_replay_cache_entries") == 7
    # every DPoP request verified its token once, from the cache or in full
    # (one full verification per child at most: 3 children)
    hits = val(s, "dpop_token_cache_hits_total")
    misses = val(s, "dpop_token_cache_misses_total")
    assert hits + misses == 10 and 1 <= misses <= 3, (hits, misses)
    assert val(s, "dpop_verification_seconds_count") == 10
    assert val(s, "dpop_verification_seconds_sum") > 0
    assert val(s, "dpop_nonce_challenges_total") == 0

    # a graceful restart keeps the counters (new children add to them)
    h.graceful()
    assert c.call(h, "GET", "/api/after").status == 200
    s2 = scrape(h)
    assert val(s2, "dpop_requests_verified_total", scheme="dpop") == 8
    assert val(s2, "dpop_replay_cache_inserts_total") == 8
    assert val(s2, "dpop_verification_seconds_count") == 11
    h.assert_no_secrets()


def test_metrics_nonce_policy_and_methods(env, httpd, tmp_path):
    secret = tmp_path / "nonce.key"
    secret.write_bytes(b"n" * 48)
    h = httpd(server_conf="DPoPNonceSecret %s" % secret,
              location_conf="Require valid-user\n    DPoPNonce On",
              extra_conf=METRICS_LOCATION)
    c = Client(env)
    r = c.call(h, "GET", "/api/x")  # challenge, then retried with the nonce
    assert r.status == 200, r
    s = scrape(h)
    assert val(s, "dpop_nonce_challenges_total") == 1
    assert val(s, "dpop_requests_rejected_total", reason="nonce_missing", mode="enforce") == 1
    assert val(s, "dpop_requests_verified_total", scheme="dpop") == 1
    # only GET (and HEAD) on the handler
    assert h.request("POST", "/dpop-metrics").status == 405
    assert h.request("HEAD", "/dpop-metrics").status == 200
