/*
 * audit_report.c: aggregation of a period's events into the report
 * document (audit_report.h).  One pass over the merged, time-ordered events
 * (streaming: memory grows with distinct keys/IPs/days, not with events);
 * the alert engine runs over the same pass.  Rendering is audit_render.c.
 */
#include "audit_report.h"
#include "audit_time.h"
#include "dpop_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_N 25
#define TOP_REPLAYS 10
#define MAX_ALERT_ITEMS 50
#define MAX_CHART_DAYS 400
#define US_PER_DAY (INT64_C(86400) * 1000000)

typedef struct {
    json_t *by_reason, *by_error, *by_mode, *by_host, *keys, *clients, *ips, *days, *replays;
    json_t *alert_items, *alert_rules;
    uint64_t total, no_key, alerts;
    int64_t first, last;
} agg_t;

static void incr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (v)
        json_integer_set(v, json_integer_value(v) + 1);
    else
        json_object_set_new(obj, key, json_integer(1));
}

static void ts_set(json_t *o, const char *k, int64_t ts)
{
    char b[AUDIT_TS_MAX];
    json_object_set_new(o, k, audit_time_format(ts, b, sizeof(b)) ? json_string(b) : json_null());
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

static void on_alert(json_t *alert, void *arg)
{
    agg_t *a = arg;
    a->alerts++;
    incr(a->alert_rules,
         json_string_value(json_object_get(json_object_get(alert, "rule"), "name")));
    if (json_array_size(a->alert_items) < MAX_ALERT_ITEMS)
        json_array_append(a->alert_items, alert);
}

static void aggregate(agg_t *a, const audit_record_t *r)
{
    const char *reason = audit_rec_str(r, "reason");
    const char *jkt = audit_rec_str(r, "jkt");
    const char *ip = audit_rec_str(r, "client_ip");
    const char *client = audit_rec_str(r, "policy_client");
    char day[AUDIT_TS_MAX];

    if (a->total == 0 || r->ts_us < a->first)
        a->first = r->ts_us;
    if (r->ts_us > a->last)
        a->last = r->ts_us;
    a->total++;
    incr(a->by_reason, reason ? reason : "(none)");
    incr(a->by_error, audit_rec_str(r, "error") ? audit_rec_str(r, "error") : "(none)");
    incr(a->by_mode, audit_rec_str(r, "mode") ? audit_rec_str(r, "mode") : "(none)");
    incr(a->by_host, audit_rec_str(r, "host") ? audit_rec_str(r, "host") : "(none)");
    incr(a->ips, ip ? ip : "(none)");
    if (client)
        incr(a->clients, client);
    if (audit_time_format(r->ts_us, day, sizeof(day))) {
        day[10] = '\0';
        incr(a->days, day);
    }
    if (jkt) {
        json_t *k = json_object_get(a->keys, jkt);
        if (!k) {
            k = json_pack("{s:s, s:I, s:o, s:o}", "jkt", jkt, "count", (json_int_t)0,
                          "policy_client", json_null(), "reasons", json_object());
            json_object_set_new(a->keys, jkt, k);
        }
        if (k) {
            json_t *c = json_object_get(k, "count");
            json_integer_set(c, json_integer_value(c) + 1);
            if (client) /* the latest name wins (keys are renamed rarely) */
                json_object_set_new(k, "policy_client", json_string(client));
            incr(json_object_get(k, "reasons"), reason ? reason : "(none)");
            ts_set(k, "last_seen", r->ts_us);
        }
    }
    else {
        a->no_key++;
    }
    if (reason && strcmp(reason, "replay") == 0) {
        const char *jti = audit_rec_str(r, "jti");
        size_t len = (jkt ? strlen(jkt) : 1) + (jti ? strlen(jti) : 1) + 2;
        char *key = malloc(len);
        if (!key)
            return;
        snprintf(key, len, "%s|%s", jkt ? jkt : "-", jti ? jti : "-");
        json_t *g = json_object_get(a->replays, key);
        if (!g) {
            g = json_pack("{s:o, s:o, s:o, s:I, s:o, s:o}", "jkt",
                          jkt ? json_string(jkt) : json_null(), "jti",
                          jti ? json_string(jti) : json_null(), "policy_client",
                          client ? json_string(client) : json_null(), "count", (json_int_t)0,
                          "client_ips", json_array(), "hosts", json_array());
            if (g) {
                ts_set(g, "first_seen", r->ts_us);
                json_object_set_new(a->replays, key, g);
            }
        }
        free(key);
        if (g) {
            json_t *c = json_object_get(g, "count");
            json_integer_set(c, json_integer_value(c) + 1);
            ts_set(g, "last_seen", r->ts_us);
            add_unique(json_object_get(g, "client_ips"), ip, 10);
            add_unique(json_object_get(g, "hosts"), audit_rec_str(r, "host"), 10);
        }
    }
}

/* Sort rows (objects with "count") by count desc, then by name asc. */
static const char *sort_name_field;
static int row_cmp(const void *x, const void *y)
{
    json_t *const *a = x, *const *b = y;
    json_int_t ca = json_integer_value(json_object_get(*a, "count"));
    json_int_t cb = json_integer_value(json_object_get(*b, "count"));
    if (ca != cb)
        return ca > cb ? -1 : 1;
    const char *na = json_string_value(json_object_get(*a, sort_name_field));
    const char *nb = json_string_value(json_object_get(*b, sort_name_field));
    return strcmp(na ? na : "", nb ? nb : "");
}

/* {name: value} -> rows sorted by count desc then name, the top limit.
 * With counts, each value is a count and the row {field: name, "count": n}
 * is built here; without, each value already is the row object. */
static json_t *rows_of(json_t *obj, const char *field, size_t limit, int counts)
{
    size_t n = json_object_size(obj), i = 0;
    json_t **rows = calloc(n ? n : 1, sizeof(*rows));
    const char *k;
    json_t *v;
    if (!rows)
        return json_array();
    json_object_foreach(obj, k, v) rows[i++] =
        counts ? json_pack("{s:s, s:O}", field, k, "count", v) : json_incref(v);
    sort_name_field = field;
    qsort(rows, i, sizeof(*rows), row_cmp);
    json_t *arr = json_array();
    for (size_t j = 0; arr && j < i && j < limit; j++)
        json_array_append(arr, rows[j]);
    for (size_t j = 0; j < i; j++)
        json_decref(rows[j]);
    free(rows);
    return arr;
}

static int64_t day_floor(int64_t ts)
{
    int64_t d = ts / US_PER_DAY;
    if (ts < 0 && ts % US_PER_DAY)
        d--;
    return d * US_PER_DAY;
}

static json_t *per_day(const agg_t *a, const audit_filter_t *range)
{
    json_t *arr = json_array();
    if (!arr || a->total == 0)
        return arr;
    int64_t from = day_floor(a->first), to = day_floor(a->last);
    if (range && range->has_since && day_floor(range->since_us) < from &&
        (to - day_floor(range->since_us)) / US_PER_DAY < MAX_CHART_DAYS)
        from = day_floor(range->since_us);
    if (range && range->has_until && day_floor(range->until_us - 1) > to &&
        (day_floor(range->until_us - 1) - from) / US_PER_DAY < MAX_CHART_DAYS)
        to = day_floor(range->until_us - 1);
    if ((to - from) / US_PER_DAY >= MAX_CHART_DAYS)
        from = to - (MAX_CHART_DAYS - 1) * US_PER_DAY; /* chart the latest days */
    for (int64_t d = from; d <= to; d += US_PER_DAY) {
        char day[AUDIT_TS_MAX];
        if (!audit_time_format(d, day, sizeof(day)))
            continue;
        day[10] = '\0';
        json_t *c = json_object_get(a->days, day);
        json_array_append_new(arr, json_pack("{s:s, s:I}", "date", day, "count",
                                             c ? json_integer_value(c) : (json_int_t)0));
    }
    return arr;
}

typedef struct {
    const char *framework, *control, *objective;
    const char *reasons[16];
    const char *alerts[4];
} control_t;

/* The controls mapping: which refusals evidence which control. */
static const control_t controls[] = {
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI2 Secret Leakage",
     "A leaked access token is useless without the private key it is bound to (RFC 9449 "
     "sender-constrained token, cnf.jkt); replayed proofs and tokens presented with another "
     "key are refused and alerted on.",
     {"replay", "jkt_mismatch", "ath_mismatch", "token_unbound", "bearer_downgrade"},
     {"dpop_replay", "dpop_token_theft"}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI4 Insecure Authentication",
     "Every request carries a fresh proof of possession signed with the client's key; unsigned, "
     "weakly signed, malformed proofs and keys carrying private material are refused.",
     {"missing_proof", "multiple_proofs", "too_large", "malformed", "bad_typ", "bad_alg", "bad_jwk",
      "private_key_in_jwk", "bad_signature", "missing_claim", "bad_claim"},
     {"dpop_signature_burst", "dpop_key_burst"}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI7 Long-Lived Secrets",
     "A proof is valid for one method and URI for seconds (iat window, optional server nonce), "
     "so a captured proof expires almost at once.",
     {"iat_too_old", "iat_in_future", "nonce_missing", "nonce_invalid", "htm_mismatch",
      "htu_mismatch"},
     {NULL}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI1 Improper Offboarding",
     "Revoked keys and keys outside their not_before/not_after window are refused at once.",
     {"key_revoked"},
     {NULL}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI5 Overprivileged NHI",
     "Each key may call only the methods and paths its policy grants (default deny).",
     {"policy_denied"},
     {NULL}},
    {"NIST CSF 2.0",
     "PR.AA-01",
     "Identities and credentials of services are managed: each workload key is registered by "
     "its RFC 7638 thumbprint, with validity dates and revocation.",
     {"key_revoked", "token_unbound"},
     {NULL}},
    {"NIST CSF 2.0",
     "PR.AA-03",
     "Services are authenticated on every request: access token (signature, issuer, audience, "
     "lifetime) and proof of possession of the bound key.",
     {"missing_token", "token_invalid", "token_unbound", "jkt_mismatch", "bad_signature",
      "ath_missing", "ath_mismatch"},
     {"dpop_token_theft", "dpop_signature_burst"}},
    {"NIST CSF 2.0",
     "PR.AA-05",
     "Access permissions are enforced with least privilege per key and route.",
     {"policy_denied"},
     {NULL}},
    {"NIST SP 800-207",
     "Tenet 6: dynamic, strictly enforced authentication and authorization",
     "Continuous verification: token, proof, key binding and policy are evaluated on every "
     "request, never once per session; report-only mode records would-be refusals.",
     {"missing_proof", "bad_signature", "replay", "jkt_mismatch", "policy_denied", "key_revoked",
      "iat_too_old", "htu_mismatch"},
     {"dpop_replay", "dpop_token_theft", "dpop_signature_burst", "dpop_key_burst"}},
    {"NIST SP 800-207",
     "Tenet 7: collect information to improve security posture",
     "Every refusal is kept in a hash-chained, tamper-evident store (verify) and streamed to the "
     "SIEM as alerts.",
     {NULL},
     {"dpop_replay", "dpop_token_theft", "dpop_signature_burst", "dpop_key_burst"}},
};

static json_t *controls_json(const agg_t *a)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < sizeof(controls) / sizeof(controls[0]); i++) {
        const control_t *c = &controls[i];
        json_t *reasons = json_object(), *alerts = json_object();
        json_int_t events = 0, nalerts = 0;
        for (size_t j = 0; j < 16 && c->reasons[j]; j++) {
            json_int_t n = json_integer_value(json_object_get(a->by_reason, c->reasons[j]));
            json_object_set_new(reasons, c->reasons[j], json_integer(n));
            events += n;
        }
        for (size_t j = 0; j < 4 && c->alerts[j]; j++) {
            json_int_t n = json_integer_value(json_object_get(a->alert_rules, c->alerts[j]));
            json_object_set_new(alerts, c->alerts[j], json_integer(n));
            nalerts += n;
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:I, s:o, s:I}", "framework",
                                             c->framework, "control", c->control, "objective",
                                             c->objective, "evidence_reasons", reasons, "events",
                                             events, "evidence_alerts", alerts, "alerts", nalerts));
    }
    return arr;
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

int audit_report_build(audit_store_t *const *stores, size_t n, const audit_filter_t *range,
                       const audit_alert_cfg_t *cfg, int64_t now_us, json_t **out, char *err,
                       size_t errsz)
{
    agg_t a = {0};
    audit_iter_t *it = NULL;
    audit_alerts_t *al = NULL;
    audit_filter_t f = {0};
    audit_record_t rec = {0};
    int ret = DPOP_ERR, r;
    json_t *rep = NULL;

    *out = NULL;
    if (range) {
        f.has_since = range->has_since;
        f.since_us = range->since_us;
        f.has_until = range->has_until;
        f.until_us = range->until_us;
    }
    a.by_reason = json_object();
    a.by_error = json_object();
    a.by_mode = json_object();
    a.by_host = json_object();
    a.keys = json_object();
    a.clients = json_object();
    a.ips = json_object();
    a.days = json_object();
    a.replays = json_object();
    a.alert_items = json_array();
    a.alert_rules = json_object();
    for (int i = 0; i < 4; i++) {
        static const char *const rules[] = {"dpop_replay", "dpop_token_theft",
                                            "dpop_signature_burst", "dpop_key_burst"};
        json_object_set_new(a.alert_rules, rules[i], json_integer(0));
    }
    if (!(al = audit_alerts_new(cfg))) {
        snprintf(err, errsz, "report: out of memory");
        goto done;
    }
    if (audit_iter_open(stores, n, &f, &it, err, errsz) != DPOP_OK)
        goto done;
    while ((r = audit_iter_next(it, &rec, err, errsz)) == 1) {
        aggregate(&a, &rec);
        audit_alerts_feed(al, &rec, on_alert, &a);
        audit_record_clear(&rec);
    }
    if (r < 0)
        goto done;
    audit_alerts_flush(al, on_alert, &a); /* one item per incident, final counts */

    rep = json_object();
    json_object_set_new(rep, "report",
                        json_string("mod_dpop DPoP binding failures: compliance report"));
    ts_set(rep, "generated_at", now_us);
    json_t *period = json_object();
    if (f.has_since)
        ts_set(period, "since", f.since_us);
    else
        json_object_set_new(period, "since", json_null());
    if (f.has_until)
        ts_set(period, "until", f.until_us);
    else
        json_object_set_new(period, "until", json_null());
    if (a.total) {
        ts_set(period, "first_event", a.first);
        ts_set(period, "last_event", a.last);
    }
    json_object_set_new(rep, "period", period);
    json_object_set_new(rep, "stores", stores_json(stores, n));
    json_t *ver = verification_json(stores, n, err, errsz);
    if (!ver)
        goto done;
    json_object_set_new(rep, "verification", ver);
    json_object_set_new(rep, "totals",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:O, s:O, s:I}", "events",
                                  (json_int_t)a.total, "keys", (json_int_t)json_object_size(a.keys),
                                  "client_ips", (json_int_t)json_object_size(a.ips), "hosts",
                                  (json_int_t)json_object_size(a.by_host), "events_without_key",
                                  (json_int_t)a.no_key, "by_error", a.by_error, "by_mode",
                                  a.by_mode, "alerts", (json_int_t)a.alerts));
    /* by_reason rows carry their RFC error too */
    json_t *reasons = rows_of(a.by_reason, "reason", (size_t)-1, 1);
    json_object_set_new(rep, "by_reason", reasons);
    json_object_set_new(rep, "by_key", rows_of(a.keys, "jkt", TOP_N, 0));
    json_object_set_new(rep, "by_policy_client", rows_of(a.clients, "policy_client", TOP_N, 1));
    json_object_set_new(rep, "by_client_ip", rows_of(a.ips, "client_ip", TOP_N, 1));
    json_object_set_new(rep, "by_host", rows_of(a.by_host, "host", TOP_N, 1));
    json_object_set_new(rep, "per_day", per_day(&a, &f));
    json_object_set_new(rep, "top_replays", rows_of(a.replays, "jti", TOP_REPLAYS, 0));
    json_object_set_new(rep, "alerts",
                        json_pack("{s:I, s:O, s:O}", "total", (json_int_t)a.alerts, "by_rule",
                                  a.alert_rules, "items", a.alert_items));
    json_object_set_new(rep, "controls", controls_json(&a));
    if (audit_iter_skipped(it))
        json_object_set_new(rep, "unreadable_events",
                            json_integer((json_int_t)audit_iter_skipped(it)));
    *out = rep;
    rep = NULL;
    ret = DPOP_OK;
done:
    json_decref(rep);
    audit_iter_close(it);
    audit_alerts_free(al);
    json_decref(a.by_reason);
    json_decref(a.by_error);
    json_decref(a.by_mode);
    json_decref(a.by_host);
    json_decref(a.keys);
    json_decref(a.clients);
    json_decref(a.ips);
    json_decref(a.days);
    json_decref(a.replays);
    json_decref(a.alert_items);
    json_decref(a.alert_rules);
    return ret;
}
