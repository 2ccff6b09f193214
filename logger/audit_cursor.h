/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_cursor.h: the resume cursor shared by dpop-audit export and alerts
 * (audit_cursor.c): where each store resumes, saved atomically only after
 * the output it covers was flushed.  Reads stores; writes only the cursor
 * file and the given output.
 */
#ifndef AUDIT_CURSOR_H
#define AUDIT_CURSOR_H

#include "dpop_audit.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* The tool a cursor file belongs to ("kind"): one file never serves both. */
#define AUDIT_CURSOR_EXPORT "export"
#define AUDIT_CURSOR_ALERTS "alerts"

/* Load the cursor of this kind: a fresh document when the file does not
 * exist.  0 ok, 1 damaged or of another kind, 2 unreadable (err set). */
int audit_cursor_load(const char *path, const char *kind, json_t **out, char *err, size_t errsz);
/* Replace the cursor file atomically (temporary, fsync, rename, directory
 * fsync).  DPOP_OK or DPOP_ERR (err set). */
int audit_cursor_save(const char *path, const json_t *cur, char *err, size_t errsz);
/* Set the store's entry: the last event whose output was flushed. */
int audit_cursor_set(json_t *cur, const char *name, uint64_t seq, const unsigned char *hash);

/* Where a store resumes. */
typedef struct {
    uint64_t from; /* next seq to read */
    uint64_t end;  /* the store's next_seq when positioned (a one-shot run's end) */
    uint64_t last; /* last seq read (0: none yet) */
    unsigned char last_hash[32];
    int positioned; /* a cursor entry or an event read: gaps are worth a warning */
} audit_cursor_pos_t;
/* Position after entry's event (entry NULL: the start), checking the
 * store still holds it with the same hash or pruned it (a warning naming
 * tool on stderr).  0 ok, 1 the cursor does not fit the store, 2 I/O. */
int audit_cursor_position(audit_store_t *s, const char *name, const json_t *entry,
                          audit_cursor_pos_t *st, const char *tool, char *err, size_t errsz);

/* A kill may have cut the output's last line: end it (regular files). */
int audit_cursor_end_partial_line(FILE *out, char *err, size_t errsz);
/* Flush the output, and fsync it when it is a regular file.  0 or 2. */
int audit_cursor_sync_output(FILE *out, char *err, size_t errsz);
/* The chain hash (and time) of event seq: 1 found, 0 absent, DPOP_ERR. */
int audit_cursor_event(audit_store_t *s, uint64_t seq, unsigned char *hash, int64_t *ts_us);

#endif /* AUDIT_CURSOR_H */
