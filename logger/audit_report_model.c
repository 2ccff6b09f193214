/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_report_model.c: one pass over a period's events into the report's
 * event sections (audit_report_model.h).  Every count is split by mode:
 * "enforce" events were refused, "report-only" events would have been
 * refused and were served; the two are never added into one "refusals"
 * figure.  An event without a mode (written before the field existed) was
 * a refusal: counted as enforce.  Lists keep the AUDIT_REPORT_TOP largest
 * rows and say how many there were ("shown" of "total").
 */
#include "audit_report_model.h"
#include "audit_time.h"
#include "dpop_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHART_DAYS 400
#define ALERTS_KEPT 100000
#define SCOPE_TOP 50
#define US_PER_DAY (INT64_C(86400) * 1000000)

struct audit_agg {
    json_t *by_reason, *keys, *clients, *subs, *cids, *ips, *hosts, *vhosts, *paths, *days,
        *replays, *alert_items, *alert_rules, *alert_sev;
    uint64_t total, enforce, report_only, no_key, alerts;
    int64_t first, last;
};

static const char *const rule_names[] = {"dpop_replay", "dpop_token_theft", "dpop_signature_burst",
                                         "dpop_key_burst"};

audit_agg_t *audit_agg_new(void)
{
    audit_agg_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    json_t **objs[] = {&a->by_reason, &a->keys,        &a->clients,  &a->subs,  &a->cids,
                       &a->ips,       &a->hosts,       &a->vhosts,   &a->paths, &a->days,
                       &a->replays,   &a->alert_rules, &a->alert_sev};
    for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
        if (!(*objs[i] = json_object()))
            goto fail;
    if (!(a->alert_items = json_array()))
        goto fail;
    for (size_t i = 0; i < 4; i++)
        json_object_set_new(a->alert_rules, rule_names[i], json_integer(0));
    return a;
fail:
    audit_agg_free(a);
    return NULL;
}

void audit_agg_free(audit_agg_t *a)
{
    if (!a)
        return;
    json_t *objs[] = {a->by_reason, a->keys,        a->clients,     a->subs,     a->cids,
                      a->ips,       a->hosts,       a->vhosts,      a->paths,    a->days,
                      a->replays,   a->alert_items, a->alert_rules, a->alert_sev};
    for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
        json_decref(objs[i]);
    free(a);
}

static void add_int(json_t *o, const char *k, json_int_t d)
{
    json_t *v = json_object_get(o, k);
    if (v)
        json_integer_set(v, json_integer_value(v) + d);
    else
        json_object_set_new(o, k, json_integer(d));
}

static void ts_set(json_t *o, const char *k, int64_t ts)
{
    char b[AUDIT_TS_MAX];
    json_object_set_new(o, k, audit_time_format(ts, b, sizeof(b)) ? json_string(b) : json_null());
}

/* The row of name in obj (created: {field: name, count, enforce,
 * report_only, reasons, first_seen, last_seen}), counted for this event. */
static json_t *tally(json_t *obj, const char *field, const char *name, int ro, const char *reason,
                     int64_t ts)
{
    json_t *row = json_object_get(obj, name);
    if (!row) {
        row = json_pack("{s:s, s:I, s:I, s:I, s:o}", field, name, "count", (json_int_t)0, "enforce",
                        (json_int_t)0, "report_only", (json_int_t)0, "reasons", json_object());
        if (!row || json_object_set_new(obj, name, row))
            return NULL;
        ts_set(row, "first_seen", ts);
    }
    add_int(row, "count", 1);
    add_int(row, ro ? "report_only" : "enforce", 1);
    add_int(json_object_get(row, "reasons"), reason ? reason : "(none)", 1);
    ts_set(row, "last_seen", ts);
    return row;
}

static void add_unique(json_t *arr, const char *v, size_t max)
{
    if (!v || json_array_size(arr) >= max)
        return;
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) if (strcmp(json_string_value(x), v) == 0) return;
    json_array_append_new(arr, json_string(v));
}

int audit_agg_add(audit_agg_t *a, const audit_record_t *r)
{
    const char *reason = audit_rec_str(r, "reason");
    const char *mode = audit_rec_str(r, "mode");
    const char *jkt = audit_rec_str(r, "jkt");
    const char *ip = audit_rec_str(r, "client_ip");
    const char *client = audit_rec_str(r, "policy_client");
    const char *host = audit_rec_str(r, "host");
    int ro = mode && strcmp(mode, "report-only") == 0;
    int64_t ts = r->ts_us;
    char day[AUDIT_TS_MAX];
    const char *rk = reason ? reason : "(none)";

    if (a->total == 0 || ts < a->first)
        a->first = ts;
    if (a->total == 0 || ts > a->last)
        a->last = ts;
    a->total++;
    if (ro)
        a->report_only++;
    else
        a->enforce++;

    json_t *rr = tally(a->by_reason, "reason", rk, ro, NULL, ts);
    if (!rr)
        return DPOP_ERR;
    if (!json_object_get(rr, "error"))
        json_object_set_new(rr, "error",
                            audit_rec_str(r, "error") ? json_string(audit_rec_str(r, "error"))
                                                      : json_null());
    json_object_del(rr, "reasons");
    if (jkt) {
        json_t *k = tally(a->keys, "jkt", jkt, ro, reason, ts);
        if (!k)
            return DPOP_ERR;
        if (client) /* the latest name wins (keys are renamed rarely) */
            json_object_set_new(k, "policy_client", json_string(client));
        else if (!json_object_get(k, "policy_client"))
            json_object_set_new(k, "policy_client", json_null());
    }
    else {
        a->no_key++;
    }
    struct {
        json_t *obj;
        const char *field, *val;
    } dims[] = {
        {a->clients, "policy_client", client},
        {a->subs, "token_sub", audit_rec_str(r, "token_sub")},
        {a->cids, "token_client_id", audit_rec_str(r, "token_client_id")},
        {a->ips, "client_ip", ip ? ip : "(none)"},
        {a->hosts, "host", host ? host : "(none)"},
        {a->vhosts, "vhost", audit_rec_str(r, "vhost") ? audit_rec_str(r, "vhost") : "(none)"},
        {a->paths, "path", audit_rec_str(r, "path") ? audit_rec_str(r, "path") : "(none)"}};
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++)
        if (dims[i].val && !tally(dims[i].obj, dims[i].field, dims[i].val, ro, reason, ts))
            return DPOP_ERR;
    if (audit_time_format(ts, day, sizeof(day))) {
        day[10] = '\0';
        json_t *d = json_object_get(a->days, day);
        if (!d) {
            d = json_pack("{s:o, s:o}", "enforce", json_object(), "report_only", json_object());
            if (!d || json_object_set_new(a->days, day, d))
                return DPOP_ERR;
        }
        add_int(json_object_get(d, ro ? "report_only" : "enforce"), rk, 1);
    }
    if (reason && strcmp(reason, "replay") == 0) {
        const char *jti = audit_rec_str(r, "jti");
        size_t len = (jkt ? strlen(jkt) : 1) + (jti ? strlen(jti) : 1) + 2;
        char *key = malloc(len);
        if (!key)
            return DPOP_ERR;
        snprintf(key, len, "%s|%s", jkt ? jkt : "-", jti ? jti : "-");
        json_t *g = json_object_get(a->replays, key);
        if (!g) {
            g = json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "jkt",
                          jkt ? json_string(jkt) : json_null(), "jti",
                          jti ? json_string(jti) : json_null(), "policy_client",
                          client ? json_string(client) : json_null(), "count", (json_int_t)0,
                          "enforce", (json_int_t)0, "report_only", (json_int_t)0, "client_ips",
                          json_array(), "hosts", json_array());
            if (g) {
                ts_set(g, "first_seen", ts);
                json_object_set_new(a->replays, key, g);
            }
        }
        free(key);
        if (!g)
            return DPOP_ERR;
        add_int(g, "count", 1);
        add_int(g, ro ? "report_only" : "enforce", 1);
        ts_set(g, "last_seen", ts);
        add_unique(json_object_get(g, "client_ips"), ip, 10);
        add_unique(json_object_get(g, "hosts"), host, 10);
    }
    return DPOP_OK;
}

void audit_agg_alert(audit_agg_t *a, json_t *alert)
{
    json_t *sev = json_object_get(json_object_get(alert, "dpop"), "severity");
    a->alerts++;
    add_int(a->alert_rules,
            json_string_value(json_object_get(json_object_get(alert, "rule"), "name")), 1);
    add_int(a->alert_sev, json_string_value(sev) ? json_string_value(sev) : "(none)", 1);
    /* kept to pick the most severe ones (bounded: the rest only counted) */
    if (json_array_size(a->alert_items) < ALERTS_KEPT)
        json_array_append_new(a->alert_items, json_deep_copy(alert));
}

void audit_agg_totals(const audit_agg_t *a, audit_agg_totals_t *t)
{
    t->events = a->total;
    t->enforce = a->enforce;
    t->report_only = a->report_only;
    t->first = a->total ? a->first : 0;
    t->last = a->total ? a->last : 0;
}

/* Sort rows (objects with "count") by count desc, then by name asc. */
static const char *sort_field;
static int row_cmp(const void *x, const void *y)
{
    json_t *const *a = x, *const *b = y;
    json_int_t ca = json_integer_value(json_object_get(*a, "count"));
    json_int_t cb = json_integer_value(json_object_get(*b, "count"));
    if (ca != cb)
        return ca > cb ? -1 : 1;
    const char *na = json_string_value(json_object_get(*a, sort_field));
    const char *nb = json_string_value(json_object_get(*b, sort_field));
    return strcmp(na ? na : "", nb ? nb : "");
}

/* {name: row} -> rows sorted by count desc then name, the first limit. */
static json_t *sorted_rows(const json_t *obj, const char *field, size_t limit)
{
    size_t n = json_object_size(obj), i = 0;
    json_t **rows = calloc(n ? n : 1, sizeof(*rows));
    const char *k;
    json_t *v, *arr = json_array();
    if (!rows || !arr) {
        free(rows);
        json_decref(arr);
        return NULL;
    }
    json_object_foreach((json_t *)obj, k, v) rows[i++] = v;
    sort_field = field;
    qsort(rows, i, sizeof(*rows), row_cmp);
    for (size_t j = 0; j < i && j < limit; j++)
        json_array_append(arr, rows[j]);
    free(rows);
    return arr;
}

/* Most severe first, then most events, then earliest. */
static int alert_cmp(const void *x, const void *y)
{
    json_t *const *a = x, *const *b = y;
    json_int_t sa = json_integer_value(json_object_get(json_object_get(*a, "event"), "severity"));
    json_int_t sb = json_integer_value(json_object_get(json_object_get(*b, "event"), "severity"));
    if (sa != sb)
        return sa > sb ? -1 : 1;
    json_int_t ca = json_integer_value(json_object_get(json_object_get(*a, "dpop"), "event_count"));
    json_int_t cb = json_integer_value(json_object_get(json_object_get(*b, "dpop"), "event_count"));
    if (ca != cb)
        return ca > cb ? -1 : 1;
    const char *fa = json_string_value(json_object_get(json_object_get(*a, "dpop"), "first_seen"));
    const char *fb = json_string_value(json_object_get(json_object_get(*b, "dpop"), "first_seen"));
    return strcmp(fa ? fa : "", fb ? fb : "");
}

static json_t *top_alerts(const json_t *items, size_t limit)
{
    size_t n = json_array_size(items);
    json_t **v = calloc(n ? n : 1, sizeof(*v)), *arr = json_array();
    if (!v || !arr) {
        free(v);
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(items, i);
    qsort(v, n, sizeof(*v), alert_cmp);
    for (size_t i = 0; i < n && i < limit; i++)
        json_array_append(arr, v[i]);
    free(v);
    return arr;
}

/* A cut list: {"rows": [...], "shown": n, "total": m}. */
static json_t *section(const json_t *obj, const char *field, size_t limit)
{
    json_t *rows = sorted_rows(obj, field, limit);
    if (!rows)
        return NULL;
    return json_pack("{s:o, s:I, s:I}", "rows", rows, "shown", (json_int_t)json_array_size(rows),
                     "total", (json_int_t)json_object_size(obj));
}

/* Scope: the names only, most events first. */
static json_t *scope_list(const json_t *obj, const char *field, size_t limit)
{
    json_t *rows = sorted_rows(obj, field, limit), *names = json_array();
    size_t i;
    json_t *r;
    if (!rows || !names) {
        json_decref(rows);
        json_decref(names);
        return NULL;
    }
    json_array_foreach(rows, i, r) json_array_append(names, json_object_get(r, field));
    json_decref(rows);
    return json_pack("{s:o, s:I, s:I}", "items", names, "shown", (json_int_t)json_array_size(names),
                     "total", (json_int_t)json_object_size(obj));
}

static int64_t day_floor(int64_t ts)
{
    int64_t d = ts / US_PER_DAY;
    if (ts < 0 && ts % US_PER_DAY)
        d--;
    return d * US_PER_DAY;
}

/* per_day: {"reasons": [...], "days": [{"date", "total", "enforce",
 * "report_only", "by_reason": {"enforce": [..], "report_only": [..]}}]}:
 * one entry per UTC day of [from, to) (the latest MAX_CHART_DAYS), the
 * by_reason arrays aligned with "reasons" (most events first). */
static json_t *per_day(const audit_agg_t *a, const json_t *reason_rows, int64_t from, int64_t to)
{
    json_t *reasons = json_array(), *days = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(reason_rows, i, r) json_array_append(reasons, json_object_get(r, "reason"));
    int64_t d0 = day_floor(from), d1 = day_floor(to > from ? to - 1 : from);
    json_int_t ndays = (json_int_t)((d1 - d0) / US_PER_DAY + 1);
    if ((d1 - d0) / US_PER_DAY >= MAX_CHART_DAYS)
        d0 = d1 - (MAX_CHART_DAYS - 1) * US_PER_DAY; /* the latest days */
    for (int64_t d = d0; days && d <= d1; d += US_PER_DAY) {
        char day[AUDIT_TS_MAX];
        if (!audit_time_format(d, day, sizeof(day)))
            continue;
        day[10] = '\0';
        const json_t *dd = json_object_get(a->days, day);
        json_t *e = json_array(), *ro = json_array();
        json_int_t te = 0, tr = 0;
        json_t *x;
        json_array_foreach(reasons, i, x)
        {
            json_int_t ne = json_integer_value(
                json_object_get(json_object_get(dd, "enforce"), json_string_value(x)));
            json_int_t nr = json_integer_value(
                json_object_get(json_object_get(dd, "report_only"), json_string_value(x)));
            json_array_append_new(e, json_integer(ne));
            json_array_append_new(ro, json_integer(nr));
            te += ne;
            tr += nr;
        }
        json_array_append_new(days, json_pack("{s:s, s:I, s:I, s:I, s:{s:o, s:o}}", "date", day,
                                              "total", te + tr, "enforce", te, "report_only", tr,
                                              "by_reason", "enforce", e, "report_only", ro));
    }
    return json_pack("{s:o, s:o, s:I, s:I}", "reasons", reasons, "days", days, "shown",
                     (json_int_t)json_array_size(days), "total", ndays);
}

int audit_agg_sections(const audit_agg_t *a, json_t *rep, int64_t from, int64_t to)
{
    json_t *reasons = sorted_rows(a->by_reason, "reason", (size_t)-1);
    if (!reasons)
        return DPOP_ERR;
    json_object_set_new(rep, "scope",
                        json_pack("{s:o*, s:o*, s:o*}", "hosts",
                                  scope_list(a->hosts, "host", SCOPE_TOP), "vhosts",
                                  scope_list(a->vhosts, "vhost", SCOPE_TOP), "paths",
                                  scope_list(a->paths, "path", SCOPE_TOP)));
    json_object_set_new(rep, "totals",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "events",
                                  (json_int_t)a->total, "refused", (json_int_t)a->enforce,
                                  "report_only", (json_int_t)a->report_only, "keys",
                                  (json_int_t)json_object_size(a->keys), "client_ips",
                                  (json_int_t)json_object_size(a->ips), "hosts",
                                  (json_int_t)json_object_size(a->hosts), "events_without_key",
                                  (json_int_t)a->no_key, "alerts", (json_int_t)a->alerts));
    json_object_set_new(rep, "by_reason", json_incref(reasons));
    struct {
        const char *name, *field;
        const json_t *obj;
    } secs[] = {{"by_key", "jkt", a->keys},
                {"by_policy_client", "policy_client", a->clients},
                {"by_token_sub", "token_sub", a->subs},
                {"by_token_client_id", "token_client_id", a->cids},
                {"by_client_ip", "client_ip", a->ips},
                {"by_host", "host", a->hosts}};
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        json_object_set_new(rep, secs[i].name,
                            section(secs[i].obj, secs[i].field, AUDIT_REPORT_TOP));
    json_object_set_new(rep, "per_day", per_day(a, reasons, from, to));
    json_object_set_new(rep, "top_replays", section(a->replays, "jti", AUDIT_REPORT_TOP));
    json_t *items = top_alerts(a->alert_items, AUDIT_REPORT_ALERTS);
    json_object_set_new(rep, "alerts",
                        json_pack("{s:I, s:O, s:O, s:o*, s:I}", "total", (json_int_t)a->alerts,
                                  "by_rule", a->alert_rules, "by_severity", a->alert_sev, "items",
                                  items, "shown", (json_int_t)json_array_size(items)));
    json_t *by = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(reasons, i, r)
        json_object_set(by, json_string_value(json_object_get(r, "reason")), r);
    json_object_set_new(rep, "glossary", audit_glossary_json(by));
    json_object_set_new(rep, "controls", audit_controls_json(by, a->alert_rules));
    json_decref(by);
    json_decref(reasons);
    return DPOP_OK;
}
