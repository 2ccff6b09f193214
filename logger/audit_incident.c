/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_incident.c: the incidents of the alert rules (audit_alerts.c
 * decides when a rule fires; this file keeps what it fired): the alert
 * JSON built from the event that fired, the counts and context that change
 * as the subject's events keep coming (mode, policy client, values), the
 * severity, and printing each incident once per change (flush).  An
 * incident is shared by the groups that point at it (a burst seen by IP
 * and by key) and is over when none does.
 */
#include "audit_alerts.h"
#include "audit_alerts_internal.h"
#include "audit_time.h"
#include "dpop_b64.h"
#include "dpop_result.h"
#include "dpop_sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const audit_rule_names[] = {"dpop_replay", "dpop_token_theft", "dpop_signature_burst",
                                        "dpop_key_burst"};

/* This group's events no longer belong to its incident; the incident is
 * over once no group points at it. */
void incident_close(group_t *g)
{
    if (g->inc) {
        if (g->inc->g == g)
            g->inc->g = NULL;
        g->inc->refs--;
    }
    g->inc = NULL;
}

void audit_inc_set_str(json_t *o, const char *k, const char *v)
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

static const struct {
    const char *label;
    int ecs;
} severities[] = {{"low", 21}, {"medium", 47}, {"high", 73}, {"critical", 99}};
/* by rule: replay high, theft critical, bursts medium */
static const int rule_severity[] = {2, 3, 1, 1};

/* The event's context for the incident: its mode, and the policy's name
 * for the key when the incident has none yet. */
void incident_note(incident_t *inc, const audit_record_t *rec)
{
    const char *mode = audit_rec_str(rec, "mode");
    const char *client = audit_rec_str(rec, "policy_client");
    json_t *d = json_object_get(inc->alert, "dpop");
    if (!mode || strcmp(mode, "report-only") != 0)
        inc->enforce = 1; /* no mode: written before the field existed, a refusal */
    if (client && !json_is_string(json_object_get(d, "policy_client")))
        json_object_set_new(d, "policy_client", json_string(client));
}

/* Take the group's counts (and new distinct values) into its incident. */
void incident_update(incident_t *inc, uint64_t count, int64_t first, int64_t last)
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
incident_t *incident_open(audit_alerts_t *a, int rule, group_t *g, const audit_record_t *rec,
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
    audit_inc_set_str(event, "reason", audit_rec_str(rec, "reason"));
    audit_inc_set_str(event, "id", id[0] ? id : NULL);
    json_object_set_new(event, "severity", json_integer(0)); /* set when emitted */
    json_object_set_new(al, "event", event);
    event = NULL;
    json_object_set_new(r, "name", json_string(audit_rule_names[rule]));
    json_object_set_new(al, "rule", r);
    r = NULL;
    json_object_set_new(al, "message", json_string(message));
    audit_inc_set_str(src, "ip", audit_rec_str(rec, "client_ip"));
    json_object_set_new(al, "source", src);
    src = NULL;
    audit_inc_set_str(host, "name", audit_rec_str(rec, "host"));
    json_object_set_new(al, "host", host);
    host = NULL;
    audit_inc_set_str(d, "jkt", audit_rec_str(rec, "jkt"));
    audit_inc_set_str(d, "jti", audit_rec_str(rec, "jti"));
    audit_inc_set_str(d, "token_hash", audit_rec_str(rec, "token_hash"));
    audit_inc_set_str(d, "policy_client", audit_rec_str(rec, "policy_client"));
    /* placeholders, in their place in the output; set when emitted */
    json_object_set_new(d, "mode", json_null());
    json_object_set_new(d, "severity", json_null());
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
    inc->rule = rule;
    inc->g = rule == R_REPLAY || rule == R_THEFT ? g : NULL;
    inc->refs = 1;
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
    int sev = rule_severity[inc->rule] - (inc->enforce ? 0 : 1);
    if (sev < 0)
        sev = 0;
    json_object_set_new(json_object_get(inc->alert, "event"), "severity",
                        json_integer(severities[sev].ecs));
    json_object_set_new(d, "mode", json_string(inc->enforce ? "enforce" : "report-only"));
    json_object_set_new(d, "severity", json_string(severities[sev].label));
    json_object_set_new(d, "event_count", json_integer((json_int_t)inc->count));
    set_ts(d, "first_seen", inc->first_seen);
    set_ts(d, "last_seen", inc->last_seen);
    inc->dirty = 0;
    if (cb)
        cb(inc->alert, arg);
}

/* Emit the changed incidents (only those that are over, when over_only)
 * and free the ones that are over and emitted. */
void incident_flush(audit_alerts_t *a, audit_alert_cb cb, void *arg, int over_only)
{
    incident_t **pp = &a->inc_head;
    a->inc_tail = &a->inc_head;
    while (*pp) {
        incident_t *inc = *pp;
        if (inc->dirty && cb && (!over_only || inc->refs <= 0))
            incident_emit(inc, cb, arg);
        if (inc->refs <= 0 && !inc->dirty) {
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
        incident_flush(a, cb, arg, 0);
}
