/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_query.h: reading events back (dpop-audit list/report/alerts, tests).
 * A query picks the most selective index for one store (smallest duplicate
 * count among the key filters given, else the time index), range-scans it,
 * then applies every filter; several stores are merged by event time.
 * Read-only: never writes a store.
 */
#ifndef AUDIT_QUERY_H
#define AUDIT_QUERY_H

#include "audit_event.h"
#include "dpop_audit.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Values one key filter may list (the CLI's repeated options and comma
 * lists). */
#define AUDIT_FILTER_MAX 64

/* Filters on different keys combine with AND; the values given for one key
 * with OR: an event matches the key when its field equals the shorthand
 * (jkt, jti, ...) or any value of any[key] (key = AUDIT_IX_JKT ...).
 * NULL / no value / has_* = 0 means "any".  Time range is
 * since <= ts < until. */
typedef struct {
    int has_since, has_until;
    int64_t since_us, until_us;
    const char *jkt, *jti, *token_hash, *ip, *reason;
    const char *any[AUDIT_IX_KEYS][AUDIT_FILTER_MAX];
    size_t nany[AUDIT_IX_KEYS];
} audit_filter_t;

/* One event read back.  ev is the event's JSON object (DESIGN.md names);
 * release with audit_record_clear. */
typedef struct {
    size_t store; /* index into the stores given to the query */
    uint64_t seq;
    int64_t ts_us;
    json_t *ev;
} audit_record_t;

void audit_record_clear(audit_record_t *r);

/* Which index a query used for a store (for tests and --explain). */
typedef enum {
    AUDIT_PLAN_EMPTY = 0, /* a key filter matches nothing */
    AUDIT_PLAN_TIME,      /* time index range scan */
    AUDIT_PLAN_JKT,
    AUDIT_PLAN_JTI,
    AUDIT_PLAN_TOKEN_HASH,
    AUDIT_PLAN_IP,
    AUDIT_PLAN_REASON
} audit_plan_t;

typedef struct audit_iter audit_iter_t;

/* Open a merged, time-ordered iteration over stores[0..n).  Each store is
 * read in its own read transaction (a consistent snapshot).  Caller frees
 * with audit_iter_close. */
int audit_iter_open(audit_store_t *const *stores, size_t n, const audit_filter_t *f,
                    audit_iter_t **out, char *err, size_t errsz);
/* 1 = *rec filled (caller clears it), 0 = end, -1 = error (err set). */
int audit_iter_next(audit_iter_t *it, audit_record_t *rec, char *err, size_t errsz);
audit_plan_t audit_iter_plan(const audit_iter_t *it, size_t store);
/* next_seq of the store in the iteration's snapshot (where --follow starts). */
uint64_t audit_iter_next_seq(const audit_iter_t *it, size_t store);
/* Events skipped because they could not be read (verify explains them). */
size_t audit_iter_skipped(const audit_iter_t *it);
void audit_iter_close(audit_iter_t *it);

/* Follow mode: up to max events with seq >= *from_seq, in seq order, into a
 * fresh array *recs (caller clears each and frees the array); *from_seq
 * advances past what was read. */
int audit_read_new(audit_store_t *s, size_t store_index, uint64_t *from_seq, size_t max,
                   audit_record_t **recs, size_t *n, char *err, size_t errsz);

/* Convenience for string fields of a record: NULL when absent/null. */
const char *audit_rec_str(const audit_record_t *r, const char *name);

#endif /* AUDIT_QUERY_H */
