/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_alerts.c: the four alert rules.
 *
 *   dpop_replay          an event with reason "replay" (the replay cache
 *                        caught a reused jti), or one (jkt, jti) pair seen
 *                        on two or more hosts (a proof replayed against
 *                        another server: only visible when several stores
 *                        are read together).  Subject: (jkt, jti); counts
 *                        every event of that pair.
 *   dpop_token_theft     one token hash (ath) presented with a key other
 *                        than its owner's: the token left its holder.
 *                        The owner is the key of the first event of that
 *                        token whose reason is not jkt_mismatch (a
 *                        jkt_mismatch event says its key is not the one
 *                        the token is bound to, so that key is never the
 *                        owner).  A foreign event is one with a key that
 *                        is not the owner (or any key when the owner is
 *                        not known yet) and, always, a jkt_mismatch
 *                        event.  The incident opens at the first foreign
 *                        event and counts foreign events only: the
 *                        owner's own failures (an expired proof, a replay
 *                        of its own) neither re-fire nor extend it, and
 *                        events without a key (not attributable) are not
 *                        counted.  dpop.owner_jkt names the owner,
 *                        dpop.jkts the foreign keys.
 *   dpop_signature_burst >= signature_threshold bad_signature events from one
 *                        client IP, or against one jkt, within the sliding
 *                        window (an event at t counts the group's events in
 *                        [t - window, t]).
 *   dpop_key_burst       >= key_threshold bad_jwk / private_key_in_jwk /
 *                        jkt_mismatch / key_revoked events, grouped and
 *                        windowed the same way (key probing, a client
 *                        cycling keys, a revoked key still trying).
 *                        A burst seen both by IP and by key is one
 *                        incident (dpop.group_by "source.ip,dpop.jkt"):
 *                        a group that fires while the event's other group
 *                        has an open incident of the same rule joins it;
 *                        each event counts once.
 *
 * Context of every alert: dpop.mode is "enforce" when any event of the
 * incident was refused, else "report-only" (nothing was refused: the
 * requests were served); dpop.severity (and the ECS event.severity number)
 * is critical (99) for theft, high (73) for replay, medium (47) for bursts,
 * one step lower (down to low, 21) when the incident is report-only;
 * dpop.policy_client is the policy's name for the key, taken from the first
 * event of the incident that has one.
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
#include "audit_alerts_internal.h"
#include "dpop_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_EVERY 4096

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

static void group_free(group_t *g)
{
    incident_close(g);
    for (size_t i = 0; i < g->nvals; i++)
        free(g->vals[i]);
    free(g->win);
    free(g->key);
    free(g->owner);
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
            if ((g->last_seen > g->active ? g->last_seen : g->active) < a->latest - keep) {
                *pp = g->next;
                group_free(g);
            }
            else {
                pp = &g->next;
            }
        }
    }
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
        incident_flush(a, cb, arg, 1); /* incidents that are over: final, print and forget */
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
        if (g->inc) {
            incident_note(g->inc, rec);
            incident_update(g->inc, g->count, g->first_seen, g->last_seen);
        }
    }
    /* dpop_token_theft: only foreign events count (the header comment) */
    if (th && jkt) {
        if (!(g = subject(a, R_THEFT, "token", th, NULL, ts)))
            return DPOP_ERR;
        g->active = ts > g->active ? ts : g->active;
        int mismatch = reason && strcmp(reason, "jkt_mismatch") == 0;
        if (!g->owner && !mismatch) {
            if (!(g->owner = strdup(jkt)))
                return DPOP_ERR;
            /* named in the open incident's next line (no update of its own:
             * the owner's events never extend it) */
            if (g->inc)
                audit_inc_set_str(json_object_get(g->inc->alert, "dpop"), "owner_jkt", g->owner);
        }
        int foreign = mismatch || strcmp(g->owner ? g->owner : "", jkt) != 0;
        if (foreign) {
            touch(g, ts);
            group_add_val(g, jkt);
            if (!g->fired) {
                g->fired = 1;
                if (!incident_open(a, R_THEFT, g, rec, NULL, "jkts",
                                   mismatch ? "access token presented with a DPoP key it is not "
                                              "bound to"
                                            : "access token presented with a key other than its "
                                              "owner's"))
                    return DPOP_ERR;
            }
            if (g->inc) {
                audit_inc_set_str(json_object_get(g->inc->alert, "dpop"), "owner_jkt", g->owner);
                incident_note(g->inc, rec);
                incident_update(g->inc, g->count, g->first_seen, g->last_seen);
            }
        }
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
        group_t *gs[2] = {NULL, NULL};
        int fires[2] = {0, 0};
        for (int i = 0; i < 2; i++) {
            if (!by[i][1])
                continue;
            if (!(gs[i] = group_get(a, rule, by[i][0], by[i][1], NULL)))
                return DPOP_ERR;
            fires[i] = burst(gs[i], ts, a->cfg.window_us, threshold);
            if (fires[i] || !gs[i]->fired)
                incident_close(gs[i]); /* a new wave, or below the threshold: over */
        }
        incident_t *counted = NULL; /* each event counts once per incident */
        for (int i = 0; i < 2; i++) {
            group_t *gi = gs[i], *go = gs[1 - i];
            if (!gi)
                continue;
            if (fires[i]) {
                incident_t *other = go && go->inc ? go->inc : NULL;
                if (other) {
                    /* the same burst seen by the other subject: one incident */
                    gi->inc = other;
                    other->refs++;
                    json_object_set_new(json_object_get(other->alert, "dpop"), "group_by",
                                        json_string("source.ip,dpop.jkt"));
                }
                else {
                    snprintf(msg, sizeof(msg), "%u or more %s failures within %lld s (by %s)",
                             threshold, rule == R_SIG ? "bad_signature" : "bad key",
                             (long long)(a->cfg.window_us / 1000000), by[i][2]);
                    if (!incident_open(a, rule, gi, rec, by[i][2], NULL, msg))
                        return DPOP_ERR;
                    /* the events in the window when it fired */
                    incident_note(gi->inc, rec);
                    incident_update(gi->inc, gi->wn, gi->first_seen, gi->last_seen);
                    counted = gi->inc;
                    continue;
                }
            }
            if (gi->inc && gi->inc != counted) {
                /* the burst goes on: one more event of the same incident */
                incident_t *inc = gi->inc;
                incident_note(inc, rec);
                incident_update(inc, inc->count + 1, inc->first_seen,
                                ts > inc->last_seen ? ts : inc->last_seen);
                counted = inc;
            }
        }
    }
    return DPOP_OK;
}
