/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_alerts_run.h: dpop-audit alerts: the alert engine (audit_alerts.h)
 * over one or more stores, one-shot or --follow, optionally resumable with
 * a cursor file (--cursor FILE, the scheme of dpop-audit export:
 * audit_cursor.h) so a restart neither repeats nor skips an alert.
 */
#ifndef AUDIT_ALERTS_RUN_H
#define AUDIT_ALERTS_RUN_H

#include "audit_alerts.h"

#include <signal.h>
#include <stdio.h>

typedef struct {
    audit_store_t *const *stores;
    size_t n;
    const char *const *names; /* per store: its key in the cursor (a real path) */
    const audit_alert_cfg_t *cfg;
    int has_since;
    int64_t since_us;
    int follow;
    unsigned interval_s;         /* poll interval with follow (>= 1) */
    const char *cursor_path;     /* NULL: no cursor */
    FILE *out;                   /* stdout */
    volatile sig_atomic_t *stop; /* set by a signal handler: finish the poll, stop */
} audit_alerts_run_t;

/* 0 done (or stopped), 1 a failed check (damaged store, a cursor that does
 * not fit), 2 an I/O error.  err says what. */
int audit_alerts_run(const audit_alerts_run_t *r, char *err, size_t errsz);

#endif /* AUDIT_ALERTS_RUN_H */
