/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_alerts.h: SOC alert rules over a time-ordered event stream
 * (dpop-audit alerts, and the alert section of reports).  Output is one
 * ECS-style JSON object per alert (DESIGN.md "Audit store").  Stateful,
 * streaming: the same events fed and flushed in the same order give the
 * same alerts, whether they come from one run or from --follow polls.
 *
 * An alert is an incident: one per (rule, subject, window), where the
 * subject is the (jkt, jti) pair, the token hash, or the client IP / jkt
 * of a burst.  Its dpop.event_count, first_seen and last_seen cover every
 * event of that subject in the window, not only the one that made the
 * rule fire; event.id names the incident (stable across runs and
 * updates).  Feeding never prints an open incident: flush prints each one
 * opened or updated since the last flush, so a one-shot run prints every
 * incident once with its final counts, and --follow prints it when it
 * opens and again (same event.id, new counts) after a poll that added
 * events to it.  Never reads or writes a store.
 */
#ifndef AUDIT_ALERTS_H
#define AUDIT_ALERTS_H

#include "audit_query.h"

#include <jansson.h>
#include <stdint.h>

typedef struct {
    int64_t window_us;            /* burst sliding window (default 60 s) */
    unsigned signature_threshold; /* dpop_signature_burst N (default 10) */
    unsigned key_threshold;       /* dpop_key_burst N (default 5) */
    int64_t horizon_us;           /* replay/theft correlation memory (default 24 h) */
} audit_alert_cfg_t;

void audit_alert_cfg_default(audit_alert_cfg_t *cfg);

typedef struct audit_alerts audit_alerts_t;

/* NULL on ENOMEM.  Caller frees with audit_alerts_free. */
audit_alerts_t *audit_alerts_new(const audit_alert_cfg_t *cfg);
void audit_alerts_free(audit_alerts_t *a);

/* Called once per alert; alert is borrowed (valid during the call). */
typedef void (*audit_alert_cb)(json_t *alert, void *arg);

/* Feed one event (in time order).  Open incidents wait for
 * audit_alerts_flush; an incident that is over (its window closed, so no
 * later event can change it) may be emitted through cb here, once, so a
 * long run does not hold every incident it has seen.  cb may be NULL (then
 * they wait for the flush too).  DPOP_OK, or DPOP_ERR on ENOMEM. */
int audit_alerts_feed(audit_alerts_t *a, const audit_record_t *rec, audit_alert_cb cb, void *arg);

/* Emit every incident opened or updated since it was last emitted, in the
 * order the incidents opened, and forget the ones that are over. */
void audit_alerts_flush(audit_alerts_t *a, audit_alert_cb cb, void *arg);

#endif /* AUDIT_ALERTS_H */
