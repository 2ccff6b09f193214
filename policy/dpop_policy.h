/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_policy.h: the key-to-route policy (DESIGN.md "Policy YAML").
 *
 * Load once, compile, then decide many times: a compiled policy is immutable
 * and may be shared by threads.  No httpd header here; the Apache glue swaps
 * compiled policies on reload.  Default deny.
 */
#ifndef DPOP_POLICY_H
#define DPOP_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "dpop_result.h"

typedef struct policy policy_t;

typedef struct {
    char *file;    /* owned */
    int line;      /* 1-based; 0 when not tied to a position */
    int column;    /* 1-based */
    char *message; /* owned, a sentence a human understands */
} policy_error_t;

typedef struct {
    policy_error_t *items; /* owned */
    size_t count;
} policy_errors_t;

void policy_errors_init(policy_errors_t *e);
void policy_errors_clear(policy_errors_t *e);
/* "FILE:LINE:COLUMN: message" into out. */
size_t policy_error_format(const policy_error_t *e, char *out, size_t outsz);

/* Load and compile.  On failure *out is NULL and errs holds every error found
 * (at least one).  *out: caller frees with policy_free(). */
int policy_load_file(const char *path, policy_t **out, policy_errors_t *errs);
int policy_load_buffer(const char *name, const char *buf, size_t len, policy_t **out,
                       policy_errors_t *errs);
void policy_free(policy_t *p);
/* What a successful load found valid but worth a look (a client whose
 * allow list is empty): FILE:LINE:COLUMN entries in file order, owned by
 * the policy; count 0 when none.  NULL only for a NULL policy. */
const policy_errors_t *policy_warnings(const policy_t *p);

typedef struct {
    int allow;            /* 1 allow, 0 deny */
    dpop_reason_t reason; /* NONE on allow; POLICY_DENIED or KEY_REVOKED */
    const char *client;   /* client name (borrowed from the policy), NULL if unknown key */
    char rule[256];       /* the rule that decided, human text ("" when none) */
} policy_decision_t;

/* Decide for jkt + method + path at time now (unix seconds).  path must
 * already be normalized (percent-decoded, dot-segments removed: r->uri, or
 * policy_path_normalize()).  Cost O(1) in the number of clients. */
void policy_decide(const policy_t *p, const char *jkt, const char *method, const char *path,
                   int64_t now, policy_decision_t *d);

/* Percent-decode and remove dot-segments the way httpd builds r->uri; the
 * query is dropped.  DPOP_ERR on an encoded NUL or '/' or a path escaping
 * the root.  out needs strlen(raw) + 2 bytes. */
int policy_path_normalize(const char *raw, char *out, size_t outsz);

size_t policy_client_count(const policy_t *p);
/* Bytes the compiled policy holds (arena + index), for logs and sizing:
 * each httpd child keeps its own copy. */
size_t policy_memory_bytes(const policy_t *p);

/* Hot reload for long-running processes (the Apache glue, one per child).
 * A watch owns the current compiled policy; acquire returns it with a
 * reference (release when done), and at most once per `interval` seconds
 * stats the file (mtime, size, inode) and reloads it when it changed (unless
 * a watcher thread does the checking: policy_watch_start).  A
 * broken new file keeps the last good policy in force: *reload_errs (may be
 * NULL) is filled with that file's errors on the call that tried it.
 * Thread-safe.  The first load (open) must succeed. */
typedef struct policy_watch policy_watch_t;
int policy_watch_open(const char *path, int64_t interval, policy_watch_t **out,
                      policy_errors_t *errs);
const policy_t *policy_watch_acquire(policy_watch_t *w, int64_t now, policy_errors_t *reload_errs);
void policy_watch_release(policy_watch_t *w, const policy_t *p);
/* Changed files swapped in since open (the first load not counted; a
 * broken file never counted).  Lock-free, for metrics. */
uint64_t policy_watch_reloads(policy_watch_t *w);
/* Watcher thread (issue 15 item 8): from now on the file is checked every
 * period_ms at a fixed rate by a thread of the calling process, whether or
 * not acquire is called, and acquire no longer stats; a changed file is
 * parsed by that thread and swapped in atomically, so it is in force for
 * every acquire within period_ms + its parse time.  notify (may be NULL)
 * runs on the watcher thread, without the watch's lock, after each check
 * that swapped a new policy in (reloaded = 1) or that found a broken file
 * (errs: its errors, once per changed file; borrowed for the call).  Start
 * it in the process that uses it (after fork: a thread does not survive
 * fork); the thread has every signal blocked.  DPOP_ERR when it cannot
 * start (acquire then keeps checking by itself). */
typedef void (*policy_watch_notify_fn)(void *ctx, int reloaded, const policy_errors_t *errs);
int policy_watch_start(policy_watch_t *w, int64_t period_ms, policy_watch_notify_fn notify,
                       void *ctx);
/* Stops and joins the watcher (waits for a check in progress); acquire
 * checks by itself again.  No-op without a watcher. */
void policy_watch_stop(policy_watch_t *w);
/* Stops the watcher, then frees the watch; policies still acquired stay
 * valid until released. */
void policy_watch_close(policy_watch_t *w);

#endif /* DPOP_POLICY_H */
