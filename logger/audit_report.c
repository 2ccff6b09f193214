/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_report.c: the report's data model (audit_report.h), filled once:
 * the period, the event sections (audit_report_model.c, with the alert
 * engine over the same pass), the request counts and rates, the previous
 * period of the same length, the stores and their verification, and the
 * report's own SHA-256.  The three renderers (audit_render*.c) only print
 * this model, so HTML, Markdown and JSON always say the same thing.
 *
 * Period: [since, until) when given; else from the first event to the
 * last (never "start of store to now").  Request counts are kept per hour
 * (audit_counts.c): the hours whose start lies in the period are counted,
 * so a period that does not start and end on the hour counts its first and
 * last hours whole.
 */
#include "audit_report.h"
#include "audit_report_model.h"
#include "audit_time.h"
#include "dpop_b64.h"
#include "dpop_result.h"
#include "dpop_sha256.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_HOUR (INT64_C(3600) * 1000000)

static void ts_set(json_t *o, const char *k, int64_t ts)
{
    char b[AUDIT_TS_MAX];
    json_object_set_new(o, k, audit_time_format(ts, b, sizeof(b)) ? json_string(b) : json_null());
}

static json_t *stores_json(audit_store_t *const *stores, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        audit_info_t info;
        char err[256], hex[2 * 32 + 1];
        json_t *o = json_pack("{s:s}", "store", audit_store_dir(stores[i]));
        if (o && audit_info(stores[i], &info, err, sizeof(err)) == DPOP_OK) {
            for (int j = 0; j < 32; j++)
                snprintf(hex + 2 * j, 3, "%02x", info.head[j]);
            json_object_set_new(o, "events", json_integer((json_int_t)info.events));
            json_object_set_new(o, "chain_start", json_integer((json_int_t)info.chain_start));
            json_object_set_new(o, "next_seq", json_integer((json_int_t)info.next_seq));
            json_object_set_new(o, "head", json_string(hex));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static void hex32(const unsigned char *h, char *out)
{
    for (int j = 0; j < 32; j++)
        snprintf(out + 2 * j, 3, "%02x", h[j]);
}

/* dpop-audit verify over every store, as the report's "verification":
 * {"ok", "stores": [{"store", "ok", "events", "head", "head_seq",
 * "checkpoint": {"seq", "hash"} | null, "bad_seq", "problem"}]}.  NULL
 * when a store could not be read (err set). */
static json_t *verification_json(audit_store_t *const *stores, size_t n, char *err, size_t errsz)
{
    json_t *arr = json_array(), *ver = NULL;
    int all_ok = 1;
    for (size_t i = 0; arr && i < n; i++) {
        audit_verify_t v;
        char hex[2 * 32 + 1];
        if (audit_verify(stores[i], &v, err, errsz) != DPOP_OK) {
            json_decref(arr);
            return NULL;
        }
        json_t *o = json_pack("{s:s, s:b, s:I}", "store", audit_store_dir(stores[i]), "ok", v.ok,
                              "events", (json_int_t)v.events);
        if (o && v.ok) {
            hex32(v.head, hex);
            json_object_set_new(o, "head", json_string(hex));
            json_object_set_new(o, "head_seq", json_integer((json_int_t)v.head_seq));
            json_t *ck = json_null();
            if (v.has_ckpt) {
                hex32(v.ckpt, hex);
                json_decref(ck);
                ck = json_pack("{s:I, s:s}", "seq", (json_int_t)v.ckpt_seq, "hash", hex);
            }
            json_object_set_new(o, "checkpoint", ck);
        }
        else if (o) {
            json_object_set_new(o, "bad_seq", json_integer((json_int_t)v.bad_seq));
            json_object_set_new(o, "problem", json_string(v.problem));
            all_ok = 0;
        }
        audit_verify_clear(&v);
        json_array_append_new(arr, o);
    }
    if (arr)
        ver = json_pack("{s:b, s:o}", "ok", all_ok, "stores", arr);
    if (!ver)
        snprintf(err, errsz, "report: out of memory");
    return ver;
}

/* Rates are rounded to 6 decimals so every JSON library prints them the
 * same way (the report's SHA-256 can be recomputed from the JSON output). */
static json_t *rate(uint64_t num, uint64_t den)
{
    if (den == 0)
        return json_null();
    return json_real(round((double)num / (double)den * 1e6) / 1e6);
}

static int64_t hour_floor(int64_t ts)
{
    int64_t h = ts / US_PER_HOUR;
    if (ts < 0 && ts % US_PER_HOUR)
        h--;
    return h * US_PER_HOUR;
}

/* Per-hour counts summed over a period: the hours that overlap it. */
typedef struct {
    uint64_t verified, rejected, rejected_enforce, rejected_ro, hours;
    int64_t from, to;
    json_t *rows; /* {host|vhost|mode: row}, or NULL: totals only */
    int64_t last_hour;
} counts_sum_t;

static void on_count(const audit_count_t *c, void *arg)
{
    counts_sum_t *s = arg;
    if (c->hour_us < hour_floor(s->from) || c->hour_us >= s->to)
        return;
    int ro = c->mode && strcmp(c->mode, "report-only") == 0;
    s->verified += c->verified;
    s->rejected += c->rejected;
    if (ro)
        s->rejected_ro += c->rejected;
    else
        s->rejected_enforce += c->rejected;
    if (c->hour_us != s->last_hour) {
        s->hours++;
        s->last_hour = c->hour_us;
    }
    if (!s->rows)
        return;
    char key[3 * AUDIT_COUNT_NAME_MAX + 3];
    snprintf(key, sizeof(key), "%s|%s|%s", c->host ? c->host : "", c->vhost ? c->vhost : "",
             c->mode ? c->mode : "");
    json_t *r = json_object_get(s->rows, key);
    if (!r) {
        r = json_pack("{s:s, s:s, s:s, s:I, s:I}", "host", c->host ? c->host : "", "vhost",
                      c->vhost ? c->vhost : "", "mode", c->mode ? c->mode : "", "verified",
                      (json_int_t)0, "rejected", (json_int_t)0);
        if (!r || json_object_set_new(s->rows, key, r))
            return;
    }
    json_t *v = json_object_get(r, "verified"), *j = json_object_get(r, "rejected");
    json_integer_set(v, json_integer_value(v) + (json_int_t)c->verified);
    json_integer_set(j, json_integer_value(j) + (json_int_t)c->rejected);
}

static int sum_counts(audit_store_t *const *stores, size_t n, counts_sum_t *s, char *err,
                      size_t errsz)
{
    for (size_t i = 0; i < n; i++) {
        s->last_hour = INT64_MIN;
        if (audit_counts_read(stores[i], s->from, s->to, on_count, s, err, errsz) != DPOP_OK)
            return DPOP_ERR;
    }
    return DPOP_OK;
}

/* "requests": the denominator and the rates; available false when the
 * stores hold no count for the period (a module without counting, or a
 * store filled by other means). */
static json_t *requests_json(const counts_sum_t *s, uint64_t events)
{
    uint64_t total = s->verified + s->rejected;
    json_t *rows = json_array(), *r;
    const char *k;
    json_object_foreach(s->rows, k, r)
    {
        uint64_t t = (uint64_t)(json_integer_value(json_object_get(r, "verified")) +
                                json_integer_value(json_object_get(r, "rejected")));
        json_t *row = json_deep_copy(r);
        json_object_set_new(row, "total", json_integer((json_int_t)t));
        json_object_set_new(row, "rejection_rate",
                            rate((uint64_t)json_integer_value(json_object_get(r, "rejected")), t));
        json_array_append_new(rows, row);
    }
    return json_pack(
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "available", total > 0, "total",
        (json_int_t)total, "verified", (json_int_t)s->verified, "rejected", (json_int_t)s->rejected,
        "refused", (json_int_t)s->rejected_enforce, "report_only", (json_int_t)s->rejected_ro,
        "rejection_rate", rate(s->rejected, total), "refusal_rate",
        rate(s->rejected_enforce, total), "report_only_rate", rate(s->rejected_ro, total),
        "event_rate", rate(events, total), "by_host_vhost_mode", rows);
}

/* {current, previous, delta, delta_pct} of one figure. */
static json_t *cmp_int(uint64_t cur, uint64_t prev)
{
    json_t *pct = prev ? json_real(round(((double)cur - (double)prev) / (double)prev * 1e4) / 1e2)
                       : json_null();
    return json_pack("{s:I, s:I, s:I, s:o}", "current", (json_int_t)cur, "previous",
                     (json_int_t)prev, "delta", (json_int_t)cur - (json_int_t)prev, "delta_pct",
                     pct);
}

static json_t *cmp_rate(json_t *cur, json_t *prev)
{
    json_t *d = (json_is_real(cur) && json_is_real(prev))
                    ? json_real(round((json_real_value(cur) - json_real_value(prev)) * 1e6) / 1e6)
                    : json_null();
    return json_pack("{s:O, s:O, s:o}", "current", cur, "previous", prev, "delta", d);
}

static void on_alert(json_t *alert, void *agg)
{
    audit_agg_alert(agg, alert);
}

/* One pass over [since, until): events into agg (alerts too when al). */
static int pass(audit_store_t *const *stores, size_t n, int64_t since, int has_since, int64_t until,
                int has_until, audit_agg_t *agg, audit_alerts_t *al, size_t *skipped, char *err,
                size_t errsz)
{
    audit_filter_t f = {0};
    audit_iter_t *it = NULL;
    audit_record_t rec = {0};
    int r;
    f.has_since = has_since;
    f.since_us = since;
    f.has_until = has_until;
    f.until_us = until;
    if (audit_iter_open(stores, n, &f, &it, err, errsz) != DPOP_OK)
        return DPOP_ERR;
    while ((r = audit_iter_next(it, &rec, err, errsz)) == 1) {
        if (audit_agg_add(agg, &rec) != DPOP_OK) {
            snprintf(err, errsz, "report: out of memory");
            r = -1;
        }
        if (al)
            audit_alerts_feed(al, &rec, on_alert, agg);
        audit_record_clear(&rec);
        if (r < 0)
            break;
    }
    if (skipped)
        *skipped = audit_iter_skipped(it);
    audit_iter_close(it);
    if (r < 0)
        return DPOP_ERR;
    if (al) /* one item per incident, final counts */
        audit_alerts_flush(al, on_alert, agg);
    return DPOP_OK;
}

int audit_report_sha256(const json_t *rep, char out[65])
{
    json_t *copy = json_copy((json_t *)rep);
    unsigned char md[32];
    int ret = DPOP_ERR;
    out[0] = '\0';
    if (!copy)
        return DPOP_ERR;
    json_object_del(copy, "report_sha256");
    char *s = json_dumps(copy, AUDIT_REPORT_CANON_FLAGS);
    if (s && dpop_sha256(s, strlen(s), NULL, 0, md) == DPOP_OK) {
        dpop_hex_encode(md, 32, out);
        ret = DPOP_OK;
    }
    free(s);
    json_decref(copy);
    return ret;
}

int audit_report_build(audit_store_t *const *stores, size_t n, const audit_filter_t *range,
                       const audit_alert_cfg_t *cfg, int64_t now_us, json_t **out, char *err,
                       size_t errsz)
{
    audit_agg_t *cur = audit_agg_new(), *prev = audit_agg_new();
    audit_alerts_t *al = audit_alerts_new(cfg);
    counts_sum_t cs = {0}, ps = {0};
    audit_agg_totals_t t, pt;
    int has_since = range && range->has_since, has_until = range && range->has_until;
    int64_t since = has_since ? range->since_us : 0, until = has_until ? range->until_us : 0;
    size_t skipped = 0;
    int ret = DPOP_ERR;
    json_t *rep = NULL;

    *out = NULL;
    if (!cur || !prev || !al || !(cs.rows = json_object())) {
        snprintf(err, errsz, "report: out of memory");
        goto done;
    }
    if (pass(stores, n, since, has_since, until, has_until, cur, al, &skipped, err, errsz) !=
        DPOP_OK)
        goto done;
    audit_agg_totals(cur, &t);

    /* the real period: the requested window, else first to last event */
    int64_t from = has_since ? since : t.first;
    int64_t to = has_until ? until : (t.events ? t.last + 1 : from);
    if (!has_since && !t.events)
        from = to = has_until ? until : now_us;
    int64_t len = to - from;

    rep = json_object();
    json_object_set_new(rep, "report",
                        json_string("mod_dpop DPoP binding failures: compliance report"));
    json_object_set_new(rep, "model_version", json_integer(2));
    ts_set(rep, "generated_at", now_us);
    json_t *period = json_object();
    json_object_set_new(period, "basis",
                        json_string(has_since && has_until ? "requested window"
                                    : has_since            ? "requested start to last event"
                                    : has_until            ? "first event to requested end"
                                    : t.events             ? "first to last event"
                                                           : "no events"));
    ts_set(period, "from", from);
    ts_set(period, "to", to);
    json_object_set_new(period, "seconds", json_integer((json_int_t)(len / 1000000)));
    if (has_since)
        ts_set(period, "since", since);
    else
        json_object_set_new(period, "since", json_null());
    if (has_until)
        ts_set(period, "until", until);
    else
        json_object_set_new(period, "until", json_null());
    if (t.events) {
        ts_set(period, "first_event", t.first);
        ts_set(period, "last_event", t.last);
    }
    else {
        json_object_set_new(period, "first_event", json_null());
        json_object_set_new(period, "last_event", json_null());
    }
    json_object_set_new(rep, "period", period);
    if (audit_agg_sections(cur, rep, from, to) != DPOP_OK) {
        snprintf(err, errsz, "report: out of memory");
        goto done;
    }

    /* the denominator */
    cs.from = from;
    cs.to = to > from ? to : from + 1;
    if (sum_counts(stores, n, &cs, err, errsz) != DPOP_OK)
        goto done;
    json_t *req = requests_json(&cs, t.events);
    json_object_set_new(rep, "requests", req);

    /* the previous period of the same length, right before this one */
    json_t *pp = json_object();
    if (len > 0) {
        if (pass(stores, n, from - len, 1, from, 1, prev, NULL, NULL, err, errsz) != DPOP_OK)
            goto done;
        audit_agg_totals(prev, &pt);
        ps.from = from - len;
        ps.to = hour_floor(from); /* the seam hour is the current period's */
        if (sum_counts(stores, n, &ps, err, errsz) != DPOP_OK)
            goto done;
        json_t *preq = requests_json(&ps, pt.events);
        ts_set(pp, "from", from - len);
        ts_set(pp, "to", from);
        json_object_set_new(pp, "has_data",
                            json_boolean(pt.events > 0 || ps.verified + ps.rejected > 0));
        json_object_set_new(pp, "events", cmp_int(t.events, pt.events));
        json_object_set_new(pp, "refused", cmp_int(t.enforce, pt.enforce));
        json_object_set_new(pp, "report_only", cmp_int(t.report_only, pt.report_only));
        json_object_set_new(pp, "requests",
                            cmp_int(cs.verified + cs.rejected, ps.verified + ps.rejected));
        json_object_set_new(pp, "rejection_rate",
                            cmp_rate(json_object_get(req, "rejection_rate"),
                                     json_object_get(preq, "rejection_rate")));
        json_object_set_new(
            pp, "refusal_rate",
            cmp_rate(json_object_get(req, "refusal_rate"), json_object_get(preq, "refusal_rate")));
        json_object_set_new(pp, "report_only_rate",
                            cmp_rate(json_object_get(req, "report_only_rate"),
                                     json_object_get(preq, "report_only_rate")));
        json_decref(preq);
    }
    json_object_set_new(rep, "previous_period", pp);

    json_object_set_new(rep, "stores", stores_json(stores, n));
    json_t *ver = verification_json(stores, n, err, errsz);
    if (!ver)
        goto done;
    json_object_set_new(rep, "verification", ver);
    if (skipped)
        json_object_set_new(rep, "unreadable_events", json_integer((json_int_t)skipped));

    char hex[65];
    if (audit_report_sha256(rep, hex) != DPOP_OK) {
        snprintf(err, errsz, "report: cannot hash the report");
        goto done;
    }
    json_object_set_new(
        rep, "report_sha256",
        json_pack("{s:s, s:s}", "value", hex, "covers",
                  "SHA-256 of this report's data model: the JSON document (format json) without "
                  "its report_sha256 member, serialized with sorted keys, no whitespace, ASCII "
                  "(\\u escapes); the HTML and Markdown are renderings of that same model"));
    *out = rep;
    rep = NULL;
    ret = DPOP_OK;
done:
    json_decref(rep);
    json_decref(cs.rows);
    audit_alerts_free(al);
    audit_agg_free(cur);
    audit_agg_free(prev);
    return ret;
}
