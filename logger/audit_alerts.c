/*
 * audit_alerts.c: the four alert rules.
 *
 *   dpop_replay          an event with reason "replay" (the replay cache
 *                        caught a reused jti), or one (jkt, jti) pair seen
 *                        on two or more hosts (a proof replayed against
 *                        another server: only visible when several stores
 *                        are read together).  Subject: (jkt, jti); counts
 *                        every event of that pair.
 *   dpop_token_theft     one token hash (ath) presented with two or more
 *                        distinct proof keys (jkt), or once with a key it is
 *                        not bound to (jkt_mismatch): the token left its
 *                        holder.  Subject: the token hash; counts every
 *                        event of that token (with a key or not).
 *   dpop_signature_burst >= signature_threshold bad_signature events from one
 *                        client IP, or against one jkt, within the sliding
 *                        window (an event at t counts the group's events in
 *                        [t - window, t]).
 *   dpop_key_burst       >= key_threshold bad_jwk / private_key_in_jwk /
 *                        jkt_mismatch / key_revoked events, grouped and
 *                        windowed the same way (key probing, a client
 *                        cycling keys, a revoked key still trying).
 *
 * Incidents: one alert per (rule, subject, window).  For replay and theft
 * the window stays open while the subject's events come less than the
 * horizon (24 h) apart; a burst's incident holds the events in the window
 * when it fired and every later one until the window drops below the
 * threshold (it then re-arms: a new wave is a new incident).  An incident
 * keeps the alert built from the event that made it fire (@timestamp,
 * source, host, dpop.jkt/jti) and its own counts; audit_alerts_flush prints
 * the new and changed ones.  Groups idle longer than the horizon (and the
 * window) are forgotten so --follow runs in bounded memory; incidents that
 * are over are printed (if they changed) and freed.
 */
#include "audit_alerts.h"
#include "audit_time.h"
#include "dpop_b64.h"
#include "dpop_result.h"
#include "dpop_sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096
#define MAX_VALS 16 /* distinct jkts / hosts remembered per group */
#define SWEEP_EVERY 4096

enum { R_REPLAY, R_THEFT, R_SIG, R_KEY };
static const char *const rule_names[] = {"dpop_replay", "dpop_token_theft", "dpop_signature_burst",
                                         "dpop_key_burst"};

struct group;

/* One alert: the JSON built when the rule fired, and the counts that
 * change as the subject's events keep coming. */
typedef struct incident {
    struct incident *next; /* in the order the incidents opened */
    struct group *g;       /* its subject's group; NULL once it is over */
    json_t *alert;
    const char *vals_name; /* "hosts", "jkts" or NULL */
    size_t nvals;          /* values copied into the alert */
    uint64_t count;
    int64_t first_seen, last_seen;
    int dirty; /* opened or updated since it was last emitted */
} incident_t;

typedef struct group {
    struct group *next;
    char *key;
    int64_t first_seen, last_seen;
    uint64_t count;
    int fired;
    incident_t *inc; /* the open incident, if the rule fired */
    int64_t *win;    /* ring of timestamps (burst rules) */
    size_t wcap, whead, wn;
    char *vals[MAX_VALS];
    size_t nvals;
} group_t;

struct audit_alerts {
    audit_alert_cfg_t cfg;
    group_t *buckets[NBUCKETS];
    uint64_t fed;
    int64_t latest;
    incident_t *inc_head, **inc_tail;
};

void audit_alert_cfg_default(audit_alert_cfg_t *cfg)
{
    cfg->window_us = INT64_C(60) * 1000000;
    cfg->signature_threshold = 10;
    cfg->key_threshold = 5;
    cfg->horizon_us = INT64_C(24) * 3600 * 1000000;
}

audit_alerts_t *audit_alerts_new(const audit_alert_cfg_t *cfg)
{
    audit_alerts_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    if (cfg)
        a->cfg = *cfg;
    else
        audit_alert_cfg_default(&a->cfg);
    if (a->cfg.signature_threshold == 0)
        a->cfg.signature_threshold = 1;
    if (a->cfg.key_threshold == 0)
        a->cfg.key_threshold = 1;
    a->inc_tail = &a->inc_head;
    return a;
}

/* The incident is over: no later event belongs to it. */
static void incident_close(group_t *g)
{
    if (g->inc)
        g->inc->g = NULL;
    g->inc = NULL;
}

static void group_free(group_t *g)
{
    incident_close(g);
    for (size_t i = 0; i < g->nvals; i++)
        free(g->vals[i]);
    free(g->win);
    free(g->key);
    free(g);
}

/* A replay/theft subject idle for longer than the horizon starts afresh:
 * a new incident, values and counts. */
static void group_reset(group_t *g)
{
    incident_close(g);
    for (size_t i = 0; i < g->nvals; i++)
        free(g->vals[i]);
    g->nvals = 0;
    g->count = 0;
    g->fired = 0;
}

void audit_alerts_free(audit_alerts_t *a)
{
    if (!a)
        return;
    for (size_t b = 0; b < NBUCKETS; b++) {
        group_t *g = a->buckets[b];
        while (g) {
            group_t *n = g->next;
            group_free(g);
            g = n;
        }
    }
    while (a->inc_head) {
        incident_t *n = a->inc_head->next;
        json_decref(a->inc_head->alert);
        free(a->inc_head);
        a->inc_head = n;
    }
    free(a);
}

/* FNV-1a: bucket choice only (not security relevant: keys are hashed for
 * spreading, collisions only cost a compare). */
static size_t bucket_of(const char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 1099511628211ULL;
    }
    return (size_t)(h % NBUCKETS);
}

static group_t *group_get(audit_alerts_t *a, int rule, const char *kind, const char *v1,
                          const char *v2)
{
    size_t len = strlen(kind) + strlen(v1) + (v2 ? strlen(v2) : 0) + 8;
    char *key = malloc(len);
    if (!key)
        return NULL;
    snprintf(key, len, "%d|%s|%s|%s", rule, kind, v1, v2 ? v2 : "");
    size_t b = bucket_of(key);
    for (group_t *g = a->buckets[b]; g; g = g->next) {
        if (strcmp(g->key, key) == 0) {
            free(key);
            return g;
        }
    }
    group_t *g = calloc(1, sizeof(*g));
    if (!g) {
        free(key);
        return NULL;
    }
    g->key = key;
    g->next = a->buckets[b];
    a->buckets[b] = g;
    return g;
}

/* Remember a distinct value; returns the number of distinct values. */
static size_t group_add_val(group_t *g, const char *v)
{
    if (!v)
        return g->nvals;
    for (size_t i = 0; i < g->nvals; i++)
        if (strcmp(g->vals[i], v) == 0)
            return g->nvals;
    if (g->nvals < MAX_VALS) {
        char *d = strdup(v);
        if (d)
            g->vals[g->nvals++] = d;
    }
    return g->nvals;
}

static void sweep(audit_alerts_t *a)
{
    int64_t keep = a->cfg.horizon_us > a->cfg.window_us ? a->cfg.horizon_us : a->cfg.window_us;
    for (size_t b = 0; b < NBUCKETS; b++) {
        group_t **pp = &a->buckets[b];
        while (*pp) {
            group_t *g = *pp;
            if (g->last_seen < a->latest - keep) {
                *pp = g->next;
                group_free(g);
            }
            else {
                pp = &g->next;
            }
        }
    }
}

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void set_ts(json_t *o, const char *k, int64_t ts)
{
    char b[AUDIT_TS_MAX];
    if (audit_time_format(ts, b, sizeof(b)))
        json_object_set_new(o, k, json_string(b));
    else
        json_object_set_new(o, k, json_null());
}

/* event.id: names the incident, the same in every run over the same
 * events: SHA-256 over the rule, the subject and the time it fired. */
static void incident_id(int rule, const group_t *g, int64_t ts, char out[33])
{
    unsigned char md[32];
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "|%d|%lld", rule, (long long)ts);
    out[0] = '\0';
    /* the first 16 bytes, as 32 hex digits */
    if (dpop_sha256(g->key, strlen(g->key), buf, (size_t)n, md) == DPOP_OK)
        dpop_hex_encode(md, 16, out);
}

/* Take the group's counts (and new distinct values) into its incident. */
static void incident_update(incident_t *inc, uint64_t count, int64_t first, int64_t last)
{
    group_t *g = inc->g;
    inc->count = count;
    inc->first_seen = first;
    inc->last_seen = last;
    inc->dirty = 1;
    if (inc->vals_name && g && g->nvals != inc->nvals) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < g->nvals; i++)
            json_array_append_new(arr, json_string(g->vals[i]));
        json_object_set_new(json_object_get(inc->alert, "dpop"), inc->vals_name,
                            arr ? arr : json_null());
        inc->nvals = g->nvals;
    }
}

/* Open the incident for group g, which rec made fire: the alert's fixed
 * part comes from rec.  Counts are filled in when it is emitted. */
static incident_t *incident_open(audit_alerts_t *a, int rule, group_t *g, const audit_record_t *rec,
                                 const char *group_by, const char *vals_name, const char *message)
{
    incident_t *inc = calloc(1, sizeof(*inc));
    json_t *al = json_object(), *event = json_object(), *r = json_object(), *src = json_object(),
           *host = json_object(), *d = json_object();
    char id[33];
    if (!inc || !al || !event || !r || !src || !host || !d)
        goto fail;
    incident_id(rule, g, rec->ts_us, id);
    set_ts(al, "@timestamp", rec->ts_us);
    json_object_set_new(event, "kind", json_string("alert"));
    json_object_set_new(event, "category", json_string("authentication"));
    json_object_set_new(event, "type", json_string("denied"));
    json_object_set_new(event, "dataset", json_string("dpop.audit"));
    set_str(event, "reason", audit_rec_str(rec, "reason"));
    set_str(event, "id", id[0] ? id : NULL);
    json_object_set_new(al, "event", event);
    event = NULL;
    json_object_set_new(r, "name", json_string(rule_names[rule]));
    json_object_set_new(al, "rule", r);
    r = NULL;
    json_object_set_new(al, "message", json_string(message));
    set_str(src, "ip", audit_rec_str(rec, "client_ip"));
    json_object_set_new(al, "source", src);
    src = NULL;
    set_str(host, "name", audit_rec_str(rec, "host"));
    json_object_set_new(al, "host", host);
    host = NULL;
    set_str(d, "jkt", audit_rec_str(rec, "jkt"));
    set_str(d, "jti", audit_rec_str(rec, "jti"));
    set_str(d, "token_hash", audit_rec_str(rec, "token_hash"));
    set_str(d, "policy_client", audit_rec_str(rec, "policy_client"));
    /* placeholders, in their place in the output; set when emitted */
    json_object_set_new(d, "event_count", json_integer(0));
    json_object_set_new(d, "first_seen", json_null());
    json_object_set_new(d, "last_seen", json_null());
    if (group_by)
        json_object_set_new(d, "group_by", json_string(group_by));
    if (vals_name)
        json_object_set_new(d, vals_name, json_array());
    json_object_set_new(al, "dpop", d);
    d = NULL;
    inc->alert = al;
    inc->vals_name = vals_name;
    inc->g = g;
    g->inc = inc;
    *a->inc_tail = inc;
    a->inc_tail = &inc->next;
    return inc;
fail:
    free(inc);
    json_decref(al);
    json_decref(event);
    json_decref(r);
    json_decref(src);
    json_decref(host);
    json_decref(d);
    return NULL;
}

static void incident_emit(incident_t *inc, audit_alert_cb cb, void *arg)
{
    json_t *d = json_object_get(inc->alert, "dpop");
    json_object_set_new(d, "event_count", json_integer((json_int_t)inc->count));
    set_ts(d, "first_seen", inc->first_seen);
    set_ts(d, "last_seen", inc->last_seen);
    inc->dirty = 0;
    if (cb)
        cb(inc->alert, arg);
}

/* Emit the changed incidents (only those that are over, when over_only)
 * and free the ones that are over and emitted. */
static void flush(audit_alerts_t *a, audit_alert_cb cb, void *arg, int over_only)
{
    incident_t **pp = &a->inc_head;
    a->inc_tail = &a->inc_head;
    while (*pp) {
        incident_t *inc = *pp;
        if (inc->dirty && cb && (!over_only || !inc->g))
            incident_emit(inc, cb, arg);
        if (!inc->g && !inc->dirty) {
            *pp = inc->next;
            json_decref(inc->alert);
            free(inc);
            continue;
        }
        pp = &inc->next;
        a->inc_tail = pp;
    }
}

void audit_alerts_flush(audit_alerts_t *a, audit_alert_cb cb, void *arg)
{
    if (a)
        flush(a, cb, arg, 0);
}

/* Sliding-window burst on group g; returns 1 when it fires now. */
static int burst(group_t *g, int64_t ts, int64_t window, unsigned threshold)
{
    if (g->wcap < threshold) {
        int64_t *nw = calloc(threshold, sizeof(*nw));
        if (!nw)
            return 0;
        for (size_t i = 0; i < g->wn; i++)
            nw[i] = g->win[(g->whead + i) % g->wcap];
        free(g->win);
        g->win = nw;
        g->wcap = threshold;
        g->whead = 0;
    }
    /* out-of-order arrivals (several writers) are treated as "now" */
    if (g->wn && ts < g->last_seen)
        ts = g->last_seen;
    while (g->wn && g->win[g->whead] < ts - window) {
        g->whead = (g->whead + 1) % g->wcap;
        g->wn--;
    }
    if (g->wn == g->wcap) { /* keep only the newest threshold stamps */
        g->whead = (g->whead + 1) % g->wcap;
        g->wn--;
    }
    g->win[(g->whead + g->wn) % g->wcap] = ts;
    g->wn++;
    g->count = g->wn;
    g->first_seen = g->win[g->whead];
    g->last_seen = ts;
    if (g->wn >= threshold) {
        if (!g->fired) {
            g->fired = 1;
            return 1;
        }
        return 0;
    }
    g->fired = 0; /* below threshold: re-armed */
    return 0;
}

static void touch(group_t *g, int64_t ts)
{
    if (g->count == 0 || ts < g->first_seen)
        g->first_seen = ts;
    if (ts > g->last_seen || g->count == 0)
        g->last_seen = ts;
    g->count++;
}

/* The replay/theft group for this subject, started afresh when its last
 * event is more than the horizon before this one (a new window). */
static group_t *subject(audit_alerts_t *a, int rule, const char *kind, const char *v1,
                        const char *v2, int64_t ts)
{
    group_t *g = group_get(a, rule, kind, v1, v2);
    if (g && g->count && ts > g->last_seen && ts - g->last_seen > a->cfg.horizon_us)
        group_reset(g);
    return g;
}

int audit_alerts_feed(audit_alerts_t *a, const audit_record_t *rec, audit_alert_cb cb, void *arg)
{
    const char *reason = audit_rec_str(rec, "reason");
    const char *jkt = audit_rec_str(rec, "jkt");
    const char *jti = audit_rec_str(rec, "jti");
    const char *th = audit_rec_str(rec, "token_hash");
    const char *ip = audit_rec_str(rec, "client_ip");
    const char *host = audit_rec_str(rec, "host");
    int64_t ts = rec->ts_us;
    char msg[256];
    group_t *g;

    if (ts > a->latest)
        a->latest = ts;
    if (++a->fed % SWEEP_EVERY == 0) {
        sweep(a);
        flush(a, cb, arg, 1); /* incidents that are over: final, print and forget */
    }

    /* dpop_replay */
    if (jti) {
        if (!(g = subject(a, R_REPLAY, "jti", jkt ? jkt : "-", jti, ts)))
            return DPOP_ERR;
        touch(g, ts);
        size_t hosts = group_add_val(g, host ? host : "-");
        int is_replay = reason && strcmp(reason, "replay") == 0;
        if (!g->fired && (is_replay || hosts >= 2)) {
            g->fired = 1;
            snprintf(msg, sizeof(msg), "%s",
                     is_replay ? "DPoP proof replayed: jti already used with this key"
                               : "DPoP proof (same jkt and jti) presented on several hosts");
            if (!incident_open(a, R_REPLAY, g, rec, NULL, "hosts", msg))
                return DPOP_ERR;
        }
        if (g->inc)
            incident_update(g->inc, g->count, g->first_seen, g->last_seen);
    }
    /* dpop_token_theft: every event of the token counts, with a key or not
     * (a stolen token sent without a proof or as Bearer is part of it) */
    if (th) {
        if (!(g = subject(a, R_THEFT, "token", th, NULL, ts)))
            return DPOP_ERR;
        touch(g, ts);
        /* jkt_mismatch already involves two keys: the proof's and the one
         * the token is bound to (cnf.jkt), so one such event is enough. */
        int mismatch = jkt && reason && strcmp(reason, "jkt_mismatch") == 0;
        size_t keys = jkt ? group_add_val(g, jkt) : g->nvals;
        if ((keys >= 2 || mismatch) && !g->fired) {
            g->fired = 1;
            if (!incident_open(a, R_THEFT, g, rec, NULL, "jkts",
                               mismatch ? "access token presented with a DPoP key it is not "
                                          "bound to"
                                        : "one access token presented with two or more DPoP keys"))
                return DPOP_ERR;
        }
        if (g->inc)
            incident_update(g->inc, g->count, g->first_seen, g->last_seen);
    }
    /* bursts */
    int rule = -1;
    unsigned threshold = 0;
    if (reason && strcmp(reason, "bad_signature") == 0) {
        rule = R_SIG;
        threshold = a->cfg.signature_threshold;
    }
    else if (reason &&
             (strcmp(reason, "bad_jwk") == 0 || strcmp(reason, "private_key_in_jwk") == 0 ||
              strcmp(reason, "jkt_mismatch") == 0 || strcmp(reason, "key_revoked") == 0)) {
        rule = R_KEY;
        threshold = a->cfg.key_threshold;
    }
    if (rule >= 0) {
        const char *by[2][3] = {{"ip", ip, "source.ip"}, {"jkt", jkt, "dpop.jkt"}};
        for (int i = 0; i < 2; i++) {
            if (!by[i][1])
                continue;
            if (!(g = group_get(a, rule, by[i][0], by[i][1], NULL)))
                return DPOP_ERR;
            if (burst(g, ts, a->cfg.window_us, threshold)) {
                /* a new wave: the previous one (if any) is over */
                incident_close(g);
                snprintf(msg, sizeof(msg), "%u or more %s failures within %lld s (by %s)",
                         threshold, rule == R_SIG ? "bad_signature" : "bad key",
                         (long long)(a->cfg.window_us / 1000000), by[i][2]);
                if (!incident_open(a, rule, g, rec, by[i][2], NULL, msg))
                    return DPOP_ERR;
                /* the events in the window when it fired */
                incident_update(g->inc, g->wn, g->first_seen, g->last_seen);
            }
            else if (g->fired && g->inc) {
                /* the burst goes on: one more event of the same incident */
                incident_update(g->inc, g->inc->count + 1, g->inc->first_seen, g->last_seen);
            }
            else if (!g->fired) {
                incident_close(g); /* dropped below the threshold: over */
            }
        }
    }
    return DPOP_OK;
}
