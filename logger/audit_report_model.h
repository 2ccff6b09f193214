/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_report_model.h: the report's aggregation of one period's events
 * (logger-internal).  One pass over the time-ordered events fills an
 * audit_agg_t; audit_agg_sections then writes the report sections that
 * come from events into the report object.  Memory grows with distinct
 * keys, clients, IPs, paths and days, not with events.
 */
#ifndef AUDIT_REPORT_MODEL_H
#define AUDIT_REPORT_MODEL_H

#include "audit_query.h"

#include <jansson.h>
#include <stdint.h>

/* Rows kept per breakdown and list (the rest counted in "total"). */
#define AUDIT_REPORT_TOP 25
#define AUDIT_REPORT_ALERTS 50 /* the most severe incidents */

typedef struct audit_agg audit_agg_t;

audit_agg_t *audit_agg_new(void);
void audit_agg_free(audit_agg_t *a);
/* Count one event.  DPOP_ERR on ENOMEM. */
int audit_agg_add(audit_agg_t *a, const audit_record_t *r);
/* Count one alert (an incident, final counts). */
void audit_agg_alert(audit_agg_t *a, json_t *alert);

/* Totals of what was added. */
typedef struct {
    uint64_t events, enforce, report_only;
    int64_t first, last; /* event times; 0 when no event */
} audit_agg_totals_t;
void audit_agg_totals(const audit_agg_t *a, audit_agg_totals_t *t);

/* Write the event sections into rep: scope, totals, by_reason,
 * by_key, by_policy_client, by_token_sub, by_token_client_id,
 * by_client_ip, by_host, per_day (days [from, to) in UTC), top_replays,
 * alerts, controls, glossary.  DPOP_ERR on ENOMEM. */
int audit_agg_sections(const audit_agg_t *a, json_t *rep, int64_t from, int64_t to);

/* The reference tables (audit_glossary.c): every reason code with its
 * meaning and what to do, counted with by_reason ({reason: {"enforce",
 * "report_only"}}); the controls mapping with this period's evidence. */
json_t *audit_glossary_json(const json_t *by_reason);
/* What to do about a reason (NULL for an unknown one). */
const char *audit_glossary_action(const char *reason);
json_t *audit_controls_json(const json_t *by_reason, const json_t *alert_rules);

#endif /* AUDIT_REPORT_MODEL_H */
