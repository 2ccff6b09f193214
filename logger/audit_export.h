/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_export.h: dpop-audit export, every event of one or more stores as
 * an Elastic Common Schema JSON line for a shipper (Filebeat, Vector) into a
 * SIEM, with at-least-once delivery across restarts: a cursor file records,
 * per store, the last event written, and is replaced atomically only after
 * that event's line was flushed (and, to a regular file, fsync'ed).  A kill
 * between the two repeats at most the last batch; nothing is ever skipped.
 * Reads stores only; writes stdout and the cursor file.
 */
#ifndef AUDIT_EXPORT_H
#define AUDIT_EXPORT_H

#include "audit_query.h"

#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

/* The ECS document of one stored event (DESIGN.md "Audit store" names
 * under dpop.*).  hash: the event's 32-byte chain hash, exported as
 * event.id (stable across runs and stores: a SIEM deduplicates on it).
 * store: the store's directory (dpop.store).  Absent values are omitted.
 * Caller frees with json_decref; NULL on ENOMEM. */
json_t *audit_export_ecs(const audit_record_t *rec, const unsigned char *hash, const char *store);

typedef struct {
    audit_store_t *const *stores;
    size_t n;
    const char *const *names; /* per store: its key in the cursor (a real path) */
    int has_since;
    int64_t since_us;
    int follow;                  /* keep polling for new events */
    unsigned interval_s;         /* poll interval with follow (>= 1) */
    const char *cursor_path;     /* NULL: no cursor */
    size_t batch;                /* events per flush + cursor write (0: default) */
    FILE *out;                   /* stdout */
    volatile sig_atomic_t *stop; /* set by a signal handler: finish the batch, stop */
} audit_export_cfg_t;

/* Run the export.  0 done (or stopped), 1 a failed check (a store or the
 * cursor is damaged, or the cursor names an event the store does not hold:
 * the store was replaced), 2 an I/O error (output, cursor file).  err says
 * what.  Warnings (events pruned before they were exported) go to stderr. */
int audit_export_run(const audit_export_cfg_t *cfg, char *err, size_t errsz);

#endif /* AUDIT_EXPORT_H */
