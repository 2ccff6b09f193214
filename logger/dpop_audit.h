/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_audit.h: the LMDB audit store of binding failures (DESIGN.md "Audit
 * store").  No httpd header.  An audit_store_t belongs to one process: open
 * it after fork() (an MDB_env must never cross fork()).  Never pass an access
 * token, a proof or key material in an event: the token is identified by its
 * hash (token_hash = the ath value).
 */
#ifndef DPOP_AUDIT_H
#define DPOP_AUDIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct audit_store audit_store_t;

/* One event.  Every string may be NULL (absent -> JSON null). */
typedef struct {
    int64_t ts_us; /* unix time, microseconds; 0 -> now */
    const char *host;
    const char *vhost;
    int64_t pid;
    const char *request_id;
    const char *client_ip;
    const char *method;
    const char *path; /* no query */
    const char *error;
    const char *reason;
    const char *detail;
    const char *jkt;
    const char *jti;
    int64_t iat;
    int has_iat;
    const char *htm;
    const char *htu;
    const char *alg;
    const char *token_hash;
    const char *token_sub;
    const char *token_client_id;
    const char *policy_client;
    const char *user_agent;
    const char *mode; /* "enforce" | "report-only" */
} audit_event_t;

#define AUDIT_OPEN_RDONLY 0
#define AUDIT_OPEN_RDWR 1
/* With RDWR: open an existing store only, never create or initialise one
 * (dpop-audit prune: a damaged data.mdb is refused, not replaced). */
#define AUDIT_OPEN_NOCREATE 2

/* mapsize 0 -> default.  Creates dir's environment when RDWR and absent.
 * *out: caller frees with audit_close(). */
int audit_open(const char *dir, size_t mapsize, int flags, audit_store_t **out, char *err,
               size_t errsz);
void audit_close(audit_store_t *s);

/* Append one event (hash-chained, indexed).  Never blocks for long: see the
 * implementation notes.  DPOP_OK or DPOP_ERR with err set (map full, disk,
 * permissions); a failed append leaves the stored events intact. */
int audit_append(audit_store_t *s, const audit_event_t *ev, char *err, size_t errsz);

/* Asynchronous writer for request threads (the Apache glue, one per child,
 * started in child_init).  submit deep-copies the event into a bounded
 * in-memory queue and returns at once; a background thread opens the store
 * and commits queued events in batches (one LMDB write transaction per
 * batch).  When the queue is full the event is dropped and counted: a
 * request is never stalled and never fails because of auditing. */
typedef struct audit_writer audit_writer_t;
int audit_writer_start(const char *dir, size_t mapsize, size_t queue_cap, audit_writer_t **out,
                       char *err, size_t errsz);
/* DPOP_OK queued, DPOP_ERR dropped (queue full or writer stopped). */
int audit_writer_submit(audit_writer_t *w, const audit_event_t *ev);
/* Failures (dropped events + failed commits) since the last call, with the
 * last error message, so the caller can log once per interval. */
size_t audit_writer_take_errors(audit_writer_t *w, char *last_err, size_t errsz);
/* Count one request (or n, for tests) of this child for the per-hour
 * counts (audit_counts_read): verified or rejected, by host, vhost and mode.
 * Only adds to an in-process table under the queue's mutex; the writer
 * thread adds the table to the store inside its next batch's transaction,
 * or after AUDIT_COUNTS_FLUSH_S seconds when no event comes, never with a
 * transaction per request.  DPOP_ERR when the table is full (counted as a
 * writer error) or the writer stopped. */
#define AUDIT_COUNTS_FLUSH_S 10
int audit_writer_count(audit_writer_t *w, int64_t ts_us, const char *host, const char *vhost,
                       const char *mode, uint64_t verified, uint64_t rejected);
/* Commit everything queued, then stop the thread and close the store. */
void audit_writer_stop(audit_writer_t *w);
/* The store's map usage as of the writer's last commit (or its open):
 * bytes the file uses and the map size (DPoPAuditMapSize).  0 and 0 before
 * the first measure.  A mutex read: cheap enough for every request. */
void audit_writer_usage(audit_writer_t *w, uint64_t *used, uint64_t *mapsize);
/* The same, measured now (mdb_env_info + mdb_env_stat: the meta page only;
 * audit_usage.c).  DPOP_OK or DPOP_ERR. */
int audit_store_usage(audit_store_t *s, uint64_t *used, uint64_t *mapsize);

/* ---- additions for the CLI, the tests and the benchmark (logger-owned) ---- */

/* Default LMDB map size (DPoPAuditMapSize): a sparse file, grows on use. */
#define AUDIT_DEFAULT_MAPSIZE ((size_t)1 << 30)

/* Append n events in one write transaction: all stored or none (an error
 * aborts the transaction and leaves the store as it was). */
int audit_append_batch(audit_store_t *s, const audit_event_t *const *evs, size_t n, char *err,
                       size_t errsz);

/* What the store holds (one read transaction). */
typedef struct {
    uint64_t events;              /* events stored */
    uint64_t chain_start;         /* seq of the first event (after prune) */
    uint64_t next_seq;            /* seq the next event gets */
    unsigned char head[32];       /* hash of the last event (chain head) */
    int64_t oldest_us, newest_us; /* by event time; 0 when empty */
} audit_info_t;
int audit_info(audit_store_t *s, audit_info_t *out, char *err, size_t errsz);

/* Retention: delete the events older than before_us from the start of the
 * chain (stopping at the first event at or after before_us, so the chain
 * stays contiguous), with their index entries, in bounded transactions;
 * records the new chain start and a checkpoint (seq and hash of the last
 * pruned event, which the first kept event links to) so audit_verify
 * proves continuity.  Before deleting anything it recomputes the chain over
 * every event it would delete and the first one it keeps: on any mismatch
 * it deletes nothing and returns AUDIT_ERR_TAMPERED (err names the event);
 * each chunk re-checks what it deletes, so only verified events are ever
 * deleted. */
#define AUDIT_ERR_TAMPERED (-3)
int audit_prune(audit_store_t *s, int64_t before_us, uint64_t *deleted, char *err, size_t errsz);

/* Integrity check: recompute the hash chain from the chain start, check
 * every event is indexed and every index entry points at a matching event.
 * DPOP_OK when the check ran (then out->ok says whether the store is intact),
 * DPOP_ERR when it could not run.  Caller releases with audit_verify_clear(). */
typedef struct {
    int ok;
    uint64_t events;        /* events checked */
    uint64_t bad_seq;       /* first bad event (0 if none) */
    char problem[256];      /* what is wrong, for humans */
    char *bad_event;        /* JSON of the bad (or next surviving) event, or NULL */
    unsigned char head[32]; /* chain head as recomputed */
    uint64_t head_seq;      /* its seq (0: no event ever stored) */
    int has_ckpt;           /* the store was pruned: the checkpoint below */
    uint64_t ckpt_seq;      /* last pruned event (chain start - 1) */
    unsigned char ckpt[32]; /* its hash, which the first stored event links to */
} audit_verify_t;
int audit_verify(audit_store_t *s, audit_verify_t *out, char *err, size_t errsz);
void audit_verify_clear(audit_verify_t *v);

/* Is hash on this store's chain?  1 with *seq set when it is the hash of a
 * stored event or of a checkpoint prune left (so an audit_verify that
 * passes proves the chain runs from it to the current head), 0 when not,
 * DPOP_ERR when the store cannot be read. */
int audit_find_hash(audit_store_t *s, const unsigned char *hash, uint64_t *seq, char *err,
                    size_t errsz);

/* 1 when an error of this store said its file is damaged (truncated,
 * corrupted pages): the CLI then exits 1 (a failed check), not 2 (I/O). */
int audit_store_damaged(const audit_store_t *s);

/* For CLIs: when LMDB meets a damaged page it would abort(); with on set,
 * the process instead prints a message naming the store and exits 1.
 * Process-wide; off by default (a server keeps LMDB's abort). */
void audit_exit_on_damage(int on);

/* audit_open's return when the store exists but its file is damaged
 * (truncated or not an LMDB file); err says what.  Other failures are
 * DPOP_ERR. */
#define AUDIT_ERR_DAMAGED (-2)

/* Per-hour request counts (audit_counts.c): the report's denominator. */
#define AUDIT_COUNT_NAME_MAX 255 /* bytes kept of host, vhost, mode */
typedef struct {
    int64_t hour_us; /* any time in the hour (floored to the hour when stored) */
    const char *host, *vhost, *mode;
    uint64_t verified; /* requests let through without an event */
    uint64_t rejected; /* requests an event was recorded for */
} audit_count_t;
/* Add c[0..n) to the stored counts in one write transaction. */
int audit_counts_add(audit_store_t *s, const audit_count_t *c, size_t n, char *err, size_t errsz);
/* Call cb for each stored count whose hour overlaps [since_us, until_us),
 * in hour order (strings valid during the call).  A store without counts
 * calls nothing and returns DPOP_OK. */
typedef void (*audit_count_cb)(const audit_count_t *c, void *arg);
int audit_counts_read(audit_store_t *s, int64_t since_us, int64_t until_us, audit_count_cb cb,
                      void *arg, char *err, size_t errsz);

/* The directory this store was opened from. */
const char *audit_store_dir(const audit_store_t *s);

#endif /* DPOP_AUDIT_H */
