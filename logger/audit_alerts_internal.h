/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_alerts_internal.h: the alert engine's state, shared by its two
 * files only (audit_alerts.c: groups and rules; audit_incident.c: the
 * incidents they open).  Not an API.
 */
#ifndef AUDIT_ALERTS_INTERNAL_H
#define AUDIT_ALERTS_INTERNAL_H

#include "audit_alerts.h"

#include <jansson.h>
#include <stdint.h>

#define NBUCKETS 4096
#define MAX_VALS 16 /* distinct jkts / hosts remembered per group */

enum { R_REPLAY, R_THEFT, R_SIG, R_KEY };
extern const char *const audit_rule_names[];

struct group;

/* One alert: the JSON built when the rule fired, and the counts that
 * change as the subject's events keep coming. */
typedef struct incident {
    struct incident *next; /* in the order the incidents opened */
    struct group *g;       /* its subject's group (replay, theft); NULL once over */
    int refs;              /* groups pointing at it; 0: over */
    int rule;
    int enforce; /* an event of it was refused (mode enforce) */
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
    char *owner;    /* theft: the token's owner key */
    int64_t active; /* last event of any kind (the group is forgotten after) */
} group_t;

struct audit_alerts {
    audit_alert_cfg_t cfg;
    group_t *buckets[NBUCKETS];
    uint64_t fed;
    int64_t latest;
    incident_t *inc_head, **inc_tail;
};

/* audit_incident.c */
void audit_inc_set_str(json_t *o, const char *k, const char *v);
/* This group's events no longer belong to its incident. */
void incident_close(group_t *g);
/* Open the incident for group g, which rec made fire. */
incident_t *incident_open(audit_alerts_t *a, int rule, group_t *g, const audit_record_t *rec,
                          const char *group_by, const char *vals_name, const char *message);
/* The event's context (mode, policy client) for the incident. */
void incident_note(incident_t *inc, const audit_record_t *rec);
/* Take counts (and the group's new values) into the incident. */
void incident_update(incident_t *inc, uint64_t count, int64_t first, int64_t last);
/* Emit the changed incidents (only those over, when over_only); free the
 * ones over and emitted. */
void incident_flush(audit_alerts_t *a, audit_alert_cb cb, void *arg, int over_only);

#endif /* AUDIT_ALERTS_INTERNAL_H */
