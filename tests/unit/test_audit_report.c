/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit_report.c: RFC 3339 / relative time parsing and formatting
 * (table-driven), and the compliance report: counts by reason, key, IP and
 * day, top replays, alerts, controls; hostile strings escaped in HTML and
 * Markdown; the HTML is self-contained (no script, no external URL).
 */
#define _GNU_SOURCE /* strcasestr */
#include <jansson.h>

#include "audit_buf.h"
#include "audit_event.h"
#include "audit_report.h"
#include "audit_time.h"
#include "test_audit_util.h"

typedef struct {
    const char *in;
    int ok;
    int64_t want; /* microseconds */
} tcase_t;

static const tcase_t time_cases[] = {
    {"2026-01-01T10:00:00Z", 1, T0},
    {"2026-01-01t10:00:00z", 1, T0},
    {"2026-01-01 10:00:00Z", 1, T0},
    {"2026-01-01T10:00:00.5Z", 1, T0 + 500000},
    {"2026-01-01T10:00:00.123456Z", 1, T0 + 123456},
    {"2026-01-01T10:00:00.1234567Z", 1, T0 + 123456}, /* beyond µs: truncated */
    {"2026-01-01T12:00:00+02:00", 1, T0},
    {"2026-01-01T05:30:00-04:30", 1, T0},
    {"2026-01-01", 1, T0 - 10 * 3600 * SEC},
    {"2024-02-29T00:00:00Z", 1, INT64_C(1709164800) * SEC},
    {"1970-01-01T00:00:00Z", 1, 0},
    {"2016-12-31T23:59:60Z", 1, INT64_C(1483228799) * SEC}, /* leap second */
    {"2025-02-29T00:00:00Z", 0, 0},
    {"2026-13-01T00:00:00Z", 0, 0},
    {"2026-01-01T24:00:00Z", 0, 0},
    {"2026-01-01T10:00:00", 0, 0}, /* offset required */
    {"2026-01-01T10:00Z", 0, 0},
    {"2026-01-01T10:00:00.Z", 0, 0},
    {"2026-01-01T10:00:00+0200", 0, 0},
    {"2026-01-01T10:00:00Zjunk", 0, 0},
    {"26-01-01", 0, 0},
    {"", 0, 0},
};

START_TEST(test_rfc3339_table)
{
    const tcase_t *c = &time_cases[_i];
    int64_t v = -1;
    int rc = audit_time_parse_rfc3339(c->in, &v);
    ck_assert_msg((rc == DPOP_OK) == c->ok, "'%s': rc %d", c->in, rc);
    if (c->ok)
        ck_assert_msg(v == c->want, "'%s': %lld want %lld", c->in, (long long)v,
                      (long long)c->want);
}
END_TEST

START_TEST(test_relative_and_format)
{
    int64_t now = T0, v;
    ck_assert_int_eq(audit_time_parse_arg("15m", now, &v), DPOP_OK);
    ck_assert_int_eq(v, now - 15 * 60 * SEC);
    ck_assert_int_eq(audit_time_parse_arg("24h", now, &v), DPOP_OK);
    ck_assert_int_eq(v, now - 24 * 3600 * SEC);
    ck_assert_int_eq(audit_time_parse_arg("30d", now, &v), DPOP_OK);
    ck_assert_int_eq(v, now - 30 * 86400 * SEC);
    ck_assert_int_eq(audit_time_parse_arg("2w", now, &v), DPOP_OK);
    ck_assert_int_eq(v, now - 14 * 86400 * SEC);
    ck_assert_int_eq(audit_time_parse_arg("90s", now, &v), DPOP_OK);
    ck_assert_int_eq(v, now - 90 * SEC);
    ck_assert_int_eq(audit_time_parse_arg("now", now, &v), DPOP_OK);
    ck_assert_int_eq(v, now);
    ck_assert_int_eq(audit_time_parse_arg("2026-01-01T10:00:00Z", 0, &v), DPOP_OK);
    ck_assert_int_eq(v, T0);
    const char *bad[] = {"m", "15", "15x", "-5m", "1.5h", "999999999999d", "", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(audit_time_parse_arg(bad[i], now, &v) == DPOP_ERR, "'%s'", bad[i]);
    ck_assert_int_eq(audit_time_parse_arg(NULL, now, &v), DPOP_ERR);

    char b[AUDIT_TS_MAX];
    ck_assert_uint_eq(audit_time_format(T0 + 7, b, sizeof(b)), 27);
    ck_assert_str_eq(b, "2026-01-01T10:00:00.000007Z");
    ck_assert_uint_gt(audit_time_format(-1, b, sizeof(b)), 0);
    ck_assert_str_eq(b, "1969-12-31T23:59:59.999999Z");
    ck_assert_uint_eq(audit_time_format(T0, b, 10), 0); /* too small */
    /* round trip */
    for (int64_t t = 0; t < INT64_C(4102444800) * SEC; t += INT64_C(86400) * SEC * 37 + 12345) {
        int64_t back;
        ck_assert_uint_gt(audit_time_format(t, b, sizeof(b)), 0);
        ck_assert_int_eq(audit_time_parse_rfc3339(b, &back), DPOP_OK);
        ck_assert_int_eq(back, t);
    }
}
END_TEST

/* One fresh store per report test (checked fixture). */
static char *dir;
static audit_store_t *st1;

static void store_setup(void)
{
    dir = tmp_store();
    st1 = open_rw(dir, 0);
}

static void store_teardown(void)
{
    audit_close(st1);
    rm_store(dir);
}

static json_t *build(audit_store_t **st, size_t n, const audit_filter_t *f)
{
    json_t *rep = NULL;
    char err[256];
    int rc = audit_report_build(st, n, f, NULL, T0 + 100 * 86400 * SEC, &rep, err, sizeof(err));
    ck_assert_msg(rc == DPOP_OK, "%s", err);
    return rep;
}

#define ROWS(rep, sec) json_object_get(json_object_get(rep, sec), "rows")

static json_int_t day_total(json_t *days, const char *date)
{
    size_t i;
    json_t *d;
    json_array_foreach(days, i,
                       d) if (strcmp(json_string_value(json_object_get(d, "date")), date) ==
                              0) return json_integer_value(json_object_get(d, "total"));
    return -1;
}

static json_int_t row_count(json_t *rows, const char *field, const char *name)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) if (strcmp(json_string_value(json_object_get(r, field)), name) ==
                                       0) return json_integer_value(json_object_get(r, "count"));
    return -1;
}

START_TEST(test_report_counts)
{
    audit_store_t *s = st1;
    /* day 1: 3 replays of one jti, 1 bad_signature; day 3: 2 policy_denied */
    for (int i = 0; i < 3; i++) {
        audit_event_t e = mk_event(T0 + i * SEC, "replay", "KA", "j1", "TH", "10.0.0.1",
                                   i == 2 ? "web2" : "web1");
        e.policy_client = "billing-agent";
        append_ok(s, &e);
    }
    audit_event_t e =
        mk_event(T0 + 10 * SEC, "bad_signature", "KB", "j2", NULL, "10.0.0.2", "web1");
    append_ok(s, &e);
    for (int i = 0; i < 2; i++) {
        audit_event_t p = mk_event(T0 + 2 * 86400 * SEC + i, "policy_denied", "KA", NULL, NULL,
                                   "10.0.0.1", "web1");
        p.error = "insufficient_scope";
        append_ok(s, &p);
    }
    json_t *rep = build(&s, 1, NULL);
    json_t *tot = json_object_get(rep, "totals");
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "events")), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "keys")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "client_ips")), 2);
    ck_assert_int_eq(row_count(json_object_get(rep, "by_reason"), "reason", "replay"), 3);
    ck_assert_int_eq(row_count(json_object_get(rep, "by_reason"), "reason", "policy_denied"), 2);
    ck_assert_int_eq(row_count(ROWS(rep, "by_key"), "jkt", "KA"), 5);
    ck_assert_int_eq(row_count(ROWS(rep, "by_client_ip"), "client_ip", "10.0.0.1"), 5);
    ck_assert_int_eq(row_count(ROWS(rep, "by_policy_client"), "policy_client", "billing-agent"), 3);
    /* per day: 3 days including the empty one between */
    json_t *days = json_object_get(json_object_get(rep, "per_day"), "days");
    ck_assert_uint_eq(json_array_size(days), 3);
    ck_assert_int_eq(day_total(days, "2026-01-01"), 4);
    ck_assert_int_eq(day_total(days, "2026-01-02"), 0);
    ck_assert_int_eq(day_total(days, "2026-01-03"), 2);
    /* the real period: first to last event, never "start of store to now" */
    json_t *period = json_object_get(rep, "period");
    ck_assert_str_eq(json_string_value(json_object_get(period, "from")),
                     "2026-01-01T10:00:00.000000Z");
    ck_assert_str_eq(json_string_value(json_object_get(period, "to")),
                     "2026-01-03T10:00:00.000002Z");
    ck_assert_str_eq(json_string_value(json_object_get(period, "basis")), "first to last event");
    /* scope */
    json_t *hosts = json_object_get(json_object_get(rep, "scope"), "hosts");
    ck_assert_int_eq(json_integer_value(json_object_get(hosts, "total")), 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(hosts, "items"), 0)), "web1");
    json_t *paths = json_object_get(json_object_get(rep, "scope"), "paths");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(paths, "items"), 0)),
                     "/api/x");
    json_t *rp = json_array_get(ROWS(rep, "top_replays"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(rp, "jti")), "j1");
    ck_assert_int_eq(json_integer_value(json_object_get(rp, "count")), 3);
    ck_assert_uint_eq(json_array_size(json_object_get(rp, "hosts")), 2);
    json_t *al = json_object_get(json_object_get(rep, "alerts"), "by_rule");
    ck_assert_int_eq(json_integer_value(json_object_get(al, "dpop_replay")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(al, "dpop_token_theft")), 0);
    /* controls: the three frameworks are all present with evidence */
    json_t *ctl = json_object_get(rep, "controls");
    int owasp = 0, csf = 0, zt = 0;
    size_t i;
    json_t *c;
    json_array_foreach(ctl, i, c)
    {
        const char *fw = json_string_value(json_object_get(c, "framework"));
        owasp |= strstr(fw, "OWASP Non-Human Identity") != NULL;
        csf |= strstr(fw, "NIST CSF 2.0") != NULL &&
               strncmp(json_string_value(json_object_get(c, "control")), "PR.AA", 5) == 0;
        zt |= strstr(fw, "SP 800-207") != NULL;
        if (strcmp(json_string_value(json_object_get(c, "control")), "NHI2 Secret Leakage") == 0)
            ck_assert_int_eq(json_integer_value(json_object_get(c, "events")), 3);
    }
    ck_assert(owasp && csf && zt);
    json_t *store0 = json_array_get(json_object_get(rep, "stores"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(store0, "events")), 6);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(store0, "head"))), 64);
    json_decref(rep);

    /* a period: only day 3 */
    audit_filter_t f = {.has_since = 1, .since_us = T0 + 86400 * SEC};
    rep = build(&s, 1, &f);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rep, "totals"), "events")),
                     2);
    ck_assert_uint_eq(json_array_size(ROWS(rep, "top_replays")), 0);
    json_decref(rep);
}
END_TEST

START_TEST(test_report_escaping)
{
    audit_store_t *s = st1;
    audit_event_t e = mk_event(T0, "replay", "<script>alert(1)</script>", "j|1*", NULL,
                               "\"><img src=x onerror=alert(1)>", "web<1>");
    e.policy_client = "a&b 'c' | **bold**";
    append_ok(s, &e);
    json_t *rep = build(&s, 1, NULL);
    char *html = audit_report_html(rep);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<img"));
    ck_assert_ptr_null(strstr(html, "web<1>"));
    ck_assert_ptr_nonnull(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    ck_assert_ptr_nonnull(strstr(html, "a&amp;b &#39;c&#39;"));
    /* self-contained: no external fetch possible, no script at all */
    ck_assert_ptr_null(strstr(html, " src=\"")); /* the escaped "src=x" of the input is text */
    /* url() only names the chart's own hatch patterns (url(#...)) */
    for (const char *u = strstr(html, "url("); u; u = strstr(u + 4, "url("))
        ck_assert_msg(u[4] == '#', "external url(): %.40s", u);
    ck_assert_ptr_null(strstr(html, "href="));
    ck_assert_ptr_nonnull(strstr(html, "Content-Security-Policy"));
    ck_assert_ptr_nonnull(strstr(html, "<svg id=\"chart-per-day\""));
    ck_assert_ptr_nonnull(strstr(html, "id=\"controls\""));
    ck_assert_ptr_nonnull(strstr(html, "id=\"glossary\""));
    free(html);
    char *md = audit_report_md(rep);
    ck_assert_ptr_nonnull(md);
    ck_assert_ptr_null(strstr(md, "<script>"));
    ck_assert_ptr_nonnull(strstr(md, "\\<script\\>"));
    ck_assert_ptr_nonnull(strstr(md, "j\\|1\\*"));
    free(md);
    char *js = audit_report_json(rep);
    json_t *back = json_loads(js, 0, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert(json_equal(back, rep));
    json_decref(back);
    free(js);
    json_decref(rep);
}
END_TEST

START_TEST(test_report_empty_store)
{
    audit_store_t *s = st1;
    json_t *rep = build(&s, 1, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rep, "totals"), "events")),
                     0);
    char *html = audit_report_html(rep), *md = audit_report_md(rep);
    ck_assert_ptr_nonnull(strstr(html, "no events"));
    ck_assert_ptr_nonnull(md);
    free(html);
    free(md);
    json_decref(rep);
}
END_TEST

/* ------------------------------------------- modes, rates, comparison */

#define HOUR (INT64_C(3600) * SEC)

static void add_count(audit_store_t *s, int64_t hour, const char *vhost, const char *mode,
                      uint64_t verified, uint64_t rejected)
{
    char err[256];
    audit_count_t c = {hour, "h1", vhost, mode, verified, rejected};
    ck_assert_msg(audit_counts_add(s, &c, 1, err, sizeof(err)) == DPOP_OK, "%s", err);
}

static double real_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    ck_assert_msg(json_is_real(v), "%s.%s is not a number", a, b);
    return json_real_value(v);
}

/* A store with known counts: the previous period [T0-4h, T0) has 2
 * refusals and 1000 requests (10 rejected); the period [T0, T0+4h) has 3
 * refusals, 5 report-only events and 2000 requests (20 rejected: 8
 * enforce, 12 report-only).  Exact counts, rates and deltas. */
START_TEST(test_report_rates_and_previous_period)
{
    audit_store_t *s = st1;
    for (int i = 0; i < 2; i++) {
        audit_event_t e =
            mk_event(T0 - 3 * HOUR + i * SEC, "bad_signature", "KA", NULL, NULL, "10.0.0.1", "h1");
        append_ok(s, &e);
    }
    for (int i = 0; i < 8; i++) {
        audit_event_t e = mk_event(T0 + HOUR + i * SEC, i < 3 ? "replay" : "missing_proof",
                                   i < 3 ? "KA" : NULL, "j", NULL, "10.0.0.2", "h1");
        e.mode = i < 3 ? "enforce" : "report-only";
        e.token_sub = i < 3 ? "svc-a" : "svc-b";
        e.token_client_id = i < 3 ? "app-a" : "app-b";
        append_ok(s, &e);
    }
    add_count(s, T0 - 2 * HOUR, "api", "enforce", 990, 10);
    add_count(s, T0, "api", "enforce", 992, 8);
    add_count(s, T0 + 2 * HOUR, "api", "report-only", 988, 12);
    add_count(s, T0 + 5 * HOUR, "api", "enforce", 5000, 5000); /* outside: never counted */
    audit_filter_t f = {.has_since = 1, .since_us = T0, .has_until = 1, .until_us = T0 + 4 * HOUR};
    json_t *rep = build(&s, 1, &f);
    json_t *tot = json_object_get(rep, "totals"), *req = json_object_get(rep, "requests");
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "events")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "refused")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "report_only")), 5);
    ck_assert(json_is_true(json_object_get(req, "available")));
    ck_assert_int_eq(json_integer_value(json_object_get(req, "total")), 2000);
    ck_assert_int_eq(json_integer_value(json_object_get(req, "rejected")), 20);
    ck_assert_int_eq(json_integer_value(json_object_get(req, "refused")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(req, "report_only")), 12);
    ck_assert_double_eq_tol(json_real_value(json_object_get(req, "rejection_rate")), 0.01, 1e-12);
    ck_assert_double_eq_tol(json_real_value(json_object_get(req, "refusal_rate")), 0.004, 1e-12);
    ck_assert_double_eq_tol(json_real_value(json_object_get(req, "report_only_rate")), 0.006,
                            1e-12);
    /* modes apart in every breakdown */
    json_t *r = json_array_get(ROWS(rep, "by_token_client_id"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "token_client_id")), "app-b");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "report_only")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "enforce")), 0);
    r = json_array_get(ROWS(rep, "by_token_sub"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(r, "token_sub")), "svc-a");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "enforce")), 3);
    json_t *day = json_array_get(json_object_get(json_object_get(rep, "per_day"), "days"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(day, "enforce")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(day, "report_only")), 5);
    /* the previous period of the same length */
    json_t *pp = json_object_get(rep, "previous_period");
    ck_assert(json_is_true(json_object_get(pp, "has_data")));
    ck_assert_str_eq(json_string_value(json_object_get(pp, "from")), "2026-01-01T06:00:00.000000Z");
    json_t *ev = json_object_get(pp, "events");
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "previous")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "delta")), 6);
    ck_assert_double_eq_tol(json_real_value(json_object_get(ev, "delta_pct")), 300.0, 1e-9);
    json_t *rq = json_object_get(pp, "requests");
    ck_assert_int_eq(json_integer_value(json_object_get(rq, "previous")), 1000);
    ck_assert_int_eq(json_integer_value(json_object_get(rq, "delta")), 1000);
    ck_assert_double_eq_tol(real_at(pp, "rejection_rate", "previous"), 0.01, 1e-12);
    ck_assert_double_eq_tol(real_at(pp, "rejection_rate", "delta"), 0.0, 1e-12);
    ck_assert_double_eq_tol(real_at(pp, "refusal_rate", "delta"), 0.004 - 0.01, 1e-12);
    /* the controls' evidence keeps the modes apart too */
    size_t ci;
    json_t *ctl;
    json_array_foreach(json_object_get(rep, "controls"), ci, ctl)
    {
        const char *name = json_string_value(json_object_get(ctl, "control"));
        if (strcmp(name, "NHI2 Secret Leakage") == 0) {
            ck_assert_int_eq(json_integer_value(json_object_get(ctl, "refused")), 3);
            ck_assert_int_eq(json_integer_value(json_object_get(ctl, "report_only")), 0);
        }
        if (strcmp(name, "NHI4 Insecure Authentication") == 0) {
            ck_assert_int_eq(json_integer_value(json_object_get(ctl, "refused")), 0);
            ck_assert_int_eq(json_integer_value(json_object_get(ctl, "report_only")), 5);
        }
    }
    /* every format says it */
    char *html = audit_report_html(rep), *md = audit_report_md(rep);
    ck_assert_ptr_nonnull(strstr(html, "id=\"kpi-report-only\"><b>5</b>"));
    ck_assert_ptr_nonnull(strstr(html, "id=\"kpi-refused\"><b>3</b>"));
    ck_assert_ptr_nonnull(strstr(html, "<b>1.000 %</b>rejection rate"));
    ck_assert_ptr_nonnull(strstr(md, "Rejection rate: 1.000 %"));
    ck_assert_ptr_nonnull(strstr(md, "| events | 8 | 2 | +6 (+300.0 %) |"));
    free(html);
    free(md);
    json_decref(rep);
}
END_TEST

/* The report's own SHA-256 covers the model: recomputed it matches, any
 * change of the model changes it, and every format prints it. */
START_TEST(test_report_sha256)
{
    audit_store_t *s = st1;
    audit_event_t e = mk_event(T0, "replay", "KA", "j1", NULL, "10.0.0.1", "h1");
    append_ok(s, &e);
    json_t *rep = build(&s, 1, NULL);
    const char *v =
        json_string_value(json_object_get(json_object_get(rep, "report_sha256"), "value"));
    char hex[65];
    ck_assert_uint_eq(strlen(v), 64);
    ck_assert_int_eq(audit_report_sha256(rep, hex), DPOP_OK);
    ck_assert_str_eq(hex, v);
    char *html = audit_report_html(rep), *md = audit_report_md(rep), *js = audit_report_json(rep);
    ck_assert_ptr_nonnull(strstr(html, v));
    ck_assert_ptr_nonnull(strstr(md, v));
    /* the JSON output parses back to a model with the same hash */
    json_t *back = json_loads(js, 0, NULL);
    ck_assert_int_eq(audit_report_sha256(back, hex), DPOP_OK);
    ck_assert_str_eq(hex, v);
    json_object_set_new(json_object_get(back, "totals"), "events", json_integer(999));
    ck_assert_int_eq(audit_report_sha256(back, hex), DPOP_OK);
    ck_assert_str_ne(hex, v);
    json_decref(back);
    free(html);
    free(md);
    free(js);
    json_decref(rep);
}
END_TEST

/* Every reason code of the fixed vocabulary has a glossary entry saying
 * what to do, with its error and this period's counts by mode. */
START_TEST(test_report_glossary_complete)
{
    audit_store_t *s = st1;
    audit_event_t e = mk_event(T0, "replay", "KA", "j1", NULL, "10.0.0.1", "h1");
    e.mode = "report-only";
    append_ok(s, &e);
    json_t *rep = build(&s, 1, NULL), *g = json_object_get(rep, "glossary");
    ck_assert_uint_eq(json_array_size(g), DPOP_REASON__COUNT - 1);
    for (int r = 1; r < DPOP_REASON__COUNT; r++) {
        const char *name = dpop_reason_name((dpop_reason_t)r);
        json_t *row = NULL, *x;
        size_t i;
        json_array_foreach(g, i, x) if (strcmp(json_string_value(json_object_get(x, "reason")),
                                               name) == 0) row = x;
        ck_assert_msg(row != NULL, "no glossary entry for %s", name);
        ck_assert_str_eq(json_string_value(json_object_get(row, "error")),
                         dpop_reason_error((dpop_reason_t)r));
        ck_assert(strlen(json_string_value(json_object_get(row, "action"))) > 20);
        if (strcmp(name, "replay") == 0) {
            ck_assert_int_eq(json_integer_value(json_object_get(row, "report_only")), 1);
            ck_assert_int_eq(json_integer_value(json_object_get(row, "enforce")), 0);
        }
    }
    json_decref(rep);
}
END_TEST

/* A cut list says so: 30 keys -> 25 of 30 shown, in every format. */
START_TEST(test_report_lists_say_when_cut)
{
    audit_store_t *s = st1;
    char jkt[30][16];
    for (int i = 0; i < 30; i++) {
        snprintf(jkt[i], sizeof(jkt[i]), "K%02d", i);
        audit_event_t e = mk_event(T0 + i, "bad_jwk", jkt[i], NULL, NULL, "10.0.0.1", "h1");
        append_ok(s, &e);
    }
    json_t *rep = build(&s, 1, NULL), *sec = json_object_get(rep, "by_key");
    ck_assert_int_eq(json_integer_value(json_object_get(sec, "shown")), 25);
    ck_assert_int_eq(json_integer_value(json_object_get(sec, "total")), 30);
    ck_assert_uint_eq(json_array_size(json_object_get(sec, "rows")), 25);
    char *html = audit_report_html(rep), *md = audit_report_md(rep);
    ck_assert_ptr_nonnull(strstr(html, "25 of 30 shown"));
    ck_assert_ptr_nonnull(strstr(md, "## By key (jkt) (25 of 30 shown)"));
    free(html);
    free(md);
    json_decref(rep);
    /* a period longer than the chart (502 UTC days: 10:00 to 10:00 the next day counts both
     * days): the latest 400 days, said so */
    audit_filter_t f = {.has_since = 1,
                        .since_us = T0 - 500 * 86400 * SEC,
                        .has_until = 1,
                        .until_us = T0 + 86400 * SEC};
    rep = build(&s, 1, &f);
    json_t *pd = json_object_get(rep, "per_day");
    ck_assert_int_eq(json_integer_value(json_object_get(pd, "shown")), 400);
    ck_assert_int_eq(json_integer_value(json_object_get(pd, "total")), 502);
    ck_assert_uint_eq(json_array_size(json_object_get(pd, "days")), 400);
    html = audit_report_html(rep);
    md = audit_report_md(rep);
    ck_assert_ptr_nonnull(strstr(html, "400 of 502 shown"));
    ck_assert_ptr_nonnull(strstr(md, "## Per day (UTC), by mode and reason (400 of 502 shown)"));
    free(html);
    free(md);
    json_decref(rep);
}
END_TEST

/* --------------------------------------------------- escapers, hostile */

typedef struct {
    const char *in;
    const char *html, *md, *term; /* expected outputs */
} esc_case_t;

static const esc_case_t esc_cases[] = {
    {"plain", "plain", "plain", "plain"},
    {"<b>&\"'", "&lt;b&gt;&amp;&quot;&#39;", "\\<b\\>\\&\"'", "<b>&\"'"},
    {"a\x1b[31mb\x07", "a&#xFFFD;[31mb&#xFFFD;", "a \\[31mb ", "a?[31mb?"},
    {"nl\nx\ty", "nl\nx\ty", "nl x y", "nl?x?y"},
    {"c1\xc2\x9b"
     "31m",
     "c1&#xFFFD;31m", "c1 31m", "c1?31m"}, /* U+009B CSI */
    {"\xe2\x80\xae"
     "gnp.exe",
     "&#xFFFD;gnp.exe", " gnp.exe", "?gnp.exe"},                      /* U+202E */
    {"\xe2\x81\xa6x\xe2\x80\x8b", "&#xFFFD;x&#xFFFD;", " x ", "?x?"}, /* U+2066, U+200B */
    {"caf\xc3\xa9 |*_", "caf\xc3\xa9 |*_", "caf\xc3\xa9 \\|\\*\\_", "caf\xc3\xa9 |*_"},
    {"\x7f", "&#xFFFD;", " ", "?"},
};

START_TEST(test_escapers)
{
    const esc_case_t *c = &esc_cases[_i];
    audit_buf_t b = {0};
    audit_buf_html(&b, c->in);
    ck_assert_str_eq(b.s ? b.s : "", c->html);
    audit_buf_free(&b);
    audit_buf_md(&b, c->in);
    ck_assert_str_eq(b.s, c->md);
    audit_buf_free(&b);
    char t[64];
    audit_term_cell(c->in, 0, t, sizeof(t));
    ck_assert_str_eq(t, c->term);
}
END_TEST

START_TEST(test_term_cell_cuts)
{
    char t[16];
    /* width cut on a character boundary, ".." at the end */
    ck_assert_uint_eq(audit_term_cell("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5, t, sizeof(t)), 4);
    ck_assert_str_eq(t, "\xc3\xa9..");
    ck_assert_uint_eq(audit_term_cell("abcdefgh", 5, t, sizeof(t)), 5);
    ck_assert_str_eq(t, "abc..");
    /* a string already cut inside a character: '?' for the stub */
    audit_term_cell("ab\xe2\x82", 0, t, sizeof(t));
    ck_assert_str_eq(t, "ab?");
    /* the buffer bound never splits a character */
    audit_term_cell("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 0,
                    t, 8);
    ck_assert_str_eq(t, "\xe2\x82\xac\xe2\x82\xac");
    audit_term_cell(NULL ? "" : "", 0, t, sizeof(t));
    ck_assert_str_eq(t, "");
}
END_TEST

START_TEST(test_report_hostile_fields)
{
    /* invalid UTF-8, controls, 100 KB values through the store into every
     * report format: bounded, valid UTF-8, nothing raw */
    audit_store_t *s = st1;
    char *big = malloc(100 * 1024 + 1);
    memset(big, '<', 100 * 1024);
    big[100 * 1024] = '\0';
    audit_event_t e =
        mk_event(T0, "replay", "K\xff\xfe<i>", "j\x1b\xc2\x9b", NULL, "10.0.0.1\xe2\x80\xae", big);
    e.policy_client = big;
    append_ok(s, &e);
    append_ok(s, &e);
    json_t *rep = build(&s, 1, NULL);
    char *html = audit_report_html(rep), *md = audit_report_md(rep), *js = audit_report_json(rep);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_nonnull(md);
    ck_assert_ptr_nonnull(js);
    char *outs[] = {html, md, js};
    for (int i = 0; i < 3; i++) {
        char clean[8];
        /* valid UTF-8 throughout: cleaning changes nothing */
        for (const char *p = outs[i]; *p;) {
            size_t n = strlen(p) < 4 ? strlen(p) : 4;
            size_t k = audit_field_clean(p, 1, 7, clean, sizeof(clean));
            if (k == 3 && memcmp(clean, "\xef\xbf\xbd", 3) == 0) {
                /* a lead byte: check the whole sequence */
                size_t len = ((unsigned char)*p >= 0xF0) ? 4 : ((unsigned char)*p >= 0xE0) ? 3 : 2;
                ck_assert_uint_le(len, n);
                audit_field_clean(p, len, 7, clean, sizeof(clean));
                ck_assert_int_eq(memcmp(clean, p, len), 0);
                p += len;
            }
            else {
                p++;
            }
        }
        ck_assert_ptr_null(strchr(outs[i], '\x1b'));
        ck_assert_ptr_null(strstr(outs[i], "\xc2\x9b"));
    }
    /* the JSON is ASCII only: the C1 control is \u-escaped, not raw */
    for (const char *p = js; *p; p++)
        ck_assert_uint_lt((unsigned char)*p, 0x80);
    ck_assert_ptr_nonnull(strcasestr(js, "\\u009b"));
    ck_assert_ptr_null(strstr(html, "<i>"));
    ck_assert_ptr_null(strstr(html, "\xe2\x80\xae"));
    ck_assert_ptr_null(strstr(md, "\xe2\x80\xae"));
    ck_assert_ptr_nonnull(strstr(html, "&lt;i&gt;"));
    /* host bounded at 255 in the store, so the report is small */
    ck_assert_uint_lt(strlen(html), 64 * 1024);
    free(html);
    free(md);
    free(js);
    json_decref(rep);
    free(big);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("audit_report");
    TCase *tc = tcase_create("time");
    tcase_add_loop_test(tc, test_rfc3339_table, 0,
                        (int)(sizeof(time_cases) / sizeof(time_cases[0])));
    tcase_add_test(tc, test_relative_and_format);
    suite_add_tcase(s, tc);
    tc = tcase_create("report");
    tcase_add_checked_fixture(tc, store_setup, store_teardown);
    tcase_add_test(tc, test_report_counts);
    tcase_add_test(tc, test_report_escaping);
    tcase_add_test(tc, test_report_empty_store);
    tcase_add_test(tc, test_report_hostile_fields);
    tcase_add_test(tc, test_report_rates_and_previous_period);
    tcase_add_test(tc, test_report_sha256);
    tcase_add_test(tc, test_report_glossary_complete);
    tcase_add_test(tc, test_report_lists_say_when_cut);
    suite_add_tcase(s, tc);
    tc = tcase_create("escaping");
    tcase_add_loop_test(tc, test_escapers, 0, (int)(sizeof(esc_cases) / sizeof(esc_cases[0])));
    tcase_add_test(tc, test_term_cell_cuts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(report_suite());
}
