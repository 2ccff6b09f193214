/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_writer.c: the asynchronous writer one httpd child runs (started in
 * child_init, after fork).  Request threads call audit_writer_submit, which
 * encodes the event (bounded, sanitized: audit_event.c) and pushes it on a
 * bounded queue under a mutex held only for the push: it never waits on
 * LMDB, disk or another process.  One background thread pops everything
 * queued (up to WRITER_BATCH) and commits it in one LMDB write transaction.
 *
 * Failures never reach the request: a full queue drops the event, a failed
 * commit (map full, disk full, permissions) drops its batch; both are counted
 * for audit_writer_take_errors so the glue logs once per interval.
 * Per-hour request counts (audit_writer_count) accumulate in a small table
 * under the same mutex; the thread takes the whole table with its next
 * batch and adds it in that batch's transaction, or after
 * AUDIT_COUNTS_FLUSH_S seconds when no event comes (a quiet server still
 * records its denominator), and on stop.  Never a transaction per request.
 *
 * Never logs by itself and never holds anything but the encoded event.
 */
#include "audit_internal.h"
#include "dpop_result.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WRITER_BATCH 4096
/* distinct (hour, host, vhost, mode) between two flushes: a child serves a
 * few vhosts in one or two modes, and the table empties every batch */
#define COUNT_SLOTS 256

typedef struct {
    audit_count_t c; /* c.host/vhost/mode point into names */
    char names[3][AUDIT_COUNT_NAME_MAX + 1];
} count_slot_t;
#define WRITER_DEFAULT_QUEUE 65536

struct audit_writer {
    audit_store_t *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    audit_enc_t **ring;
    size_t cap, head, count;
    int stopping;
    size_t errors;
    char last_err[256];
    count_slot_t *counts; /* COUNT_SLOTS; the first ncounts are in use */
    size_t ncounts;
    time_t counts_since;    /* when the oldest unflushed count came */
    uint64_t used, mapsize; /* map usage after the last commit (under mu) */
};

static void copy_name(char *dst, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n > AUDIT_COUNT_NAME_MAX)
        n = AUDIT_COUNT_NAME_MAX;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* Move the table's counts out (caller holds w->mu): *out gets nc entries
 * whose strings point into the taken slots. */
static count_slot_t *take_counts(audit_writer_t *w, size_t *nc)
{
    count_slot_t *t = w->counts;
    *nc = w->ncounts;
    if (!*nc)
        return NULL;
    w->counts = calloc(COUNT_SLOTS, sizeof(*w->counts));
    if (!w->counts) { /* keep counting into the old table next time */
        w->counts = t;
        *nc = 0;
        return NULL;
    }
    w->ncounts = 0;
    return t;
}

static void note_error(audit_writer_t *w, size_t n, const char *msg)
{
    /* caller holds w->mu */
    w->errors += n;
    if (msg)
        snprintf(w->last_err, sizeof(w->last_err), "%s", msg);
}

static void *writer_main(void *arg)
{
    audit_writer_t *w = arg;
    audit_enc_t **batch = calloc(WRITER_BATCH, sizeof(*batch));
    char err[256];

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->count == 0 && !w->stopping) {
            if (w->ncounts == 0) {
                pthread_cond_wait(&w->cv, &w->mu);
                continue;
            }
            /* counts wait for a batch at most AUDIT_COUNTS_FLUSH_S */
            struct timespec until = {w->counts_since + AUDIT_COUNTS_FLUSH_S, 0};
            if (time(NULL) >= until.tv_sec)
                break;
            pthread_cond_timedwait(&w->cv, &w->mu, &until);
        }
        if (w->count == 0 && w->ncounts == 0 && w->stopping)
            break;
        if (!batch) {
            /* no memory for a batch array: count what cannot be written */
            while (w->count) {
                free(w->ring[w->head]);
                w->head = (w->head + 1) % w->cap;
                w->count--;
                note_error(w, 1, "audit writer: out of memory");
            }
            continue;
        }
        size_t n = 0, nc = 0;
        while (w->count && n < WRITER_BATCH) {
            batch[n++] = w->ring[w->head];
            w->head = (w->head + 1) % w->cap;
            w->count--;
        }
        count_slot_t *slots = take_counts(w, &nc);
        audit_count_t *counts = nc ? calloc(nc, sizeof(*counts)) : NULL;
        for (size_t i = 0; counts && i < nc; i++)
            counts[i] = slots[i].c;
        pthread_mutex_unlock(&w->mu);
        err[0] = '\0';
        int rc = audit_append_encoded_counts(w->store, batch, n, counts, counts ? nc : 0, err,
                                             sizeof(err));
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
        free(counts);
        free(slots);
        /* the meta page only: cheap, and it keeps scrapes free of LMDB */
        uint64_t used = 0, mapsize = 0;
        int measured = audit_store_usage(w->store, &used, &mapsize) == DPOP_OK;
        pthread_mutex_lock(&w->mu);
        /* events lost are counted; request counts lost with a failed batch
         * are not events (the message is kept for the next report) */
        if (rc != DPOP_OK)
            note_error(w, n, err);
        else if (nc && !counts)
            note_error(w, 1, "audit writer: out of memory (request counts lost)");
        if (measured) {
            w->used = used;
            w->mapsize = mapsize;
        }
    }
    pthread_mutex_unlock(&w->mu);
    free(batch);
    return NULL;
}

int audit_writer_start(const char *dir, size_t mapsize, size_t queue_cap, audit_writer_t **out,
                       char *err, size_t errsz)
{
    audit_writer_t *w = NULL;
    *out = NULL;
    if (!(w = calloc(1, sizeof(*w)))) {
        snprintf(err, errsz, "audit writer: out of memory");
        return DPOP_ERR;
    }
    w->cap = queue_cap ? queue_cap : WRITER_DEFAULT_QUEUE;
    if (!(w->ring = calloc(w->cap, sizeof(*w->ring))) ||
        !(w->counts = calloc(COUNT_SLOTS, sizeof(*w->counts)))) {
        snprintf(err, errsz, "audit writer: out of memory");
        free(w->ring);
        free(w);
        return DPOP_ERR;
    }
    if (audit_open(dir, mapsize, AUDIT_OPEN_RDWR, &w->store, err, errsz) != DPOP_OK) {
        free(w->counts);
        free(w->ring);
        free(w);
        return DPOP_ERR;
    }
    if (audit_store_usage(w->store, &w->used, &w->mapsize) != DPOP_OK)
        w->used = w->mapsize = 0;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        snprintf(err, errsz, "audit writer: cannot start thread");
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        audit_close(w->store);
        free(w->counts);
        free(w->ring);
        free(w);
        return DPOP_ERR;
    }
    *out = w;
    return DPOP_OK;
}

int audit_writer_submit(audit_writer_t *w, const audit_event_t *ev)
{
    if (!w || !ev)
        return DPOP_ERR;
    /* encode outside the lock: concurrent request threads only contend on
     * the pointer push */
    audit_enc_t *e = audit_event_encode(ev);
    pthread_mutex_lock(&w->mu);
    if (!e || w->stopping || w->count == w->cap) {
        note_error(w, 1,
                   !e            ? "audit writer: cannot encode event"
                   : w->stopping ? "audit writer: stopped"
                                 : "audit writer: queue full, event dropped");
        pthread_mutex_unlock(&w->mu);
        free(e);
        return DPOP_ERR;
    }
    w->ring[(w->head + w->count) % w->cap] = e;
    w->count++;
    if (w->count == 1)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return DPOP_OK;
}

int audit_writer_count(audit_writer_t *w, int64_t ts_us, const char *host, const char *vhost,
                       const char *mode, uint64_t verified, uint64_t rejected)
{
    int64_t hour = ts_us / 1000000;
    hour -= ((hour % 3600) + 3600) % 3600;
    if (!w)
        return DPOP_ERR;
    hour *= 1000000;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        return DPOP_ERR;
    }
    count_slot_t *c = NULL;
    for (size_t i = 0; i < w->ncounts; i++) {
        count_slot_t *x = &w->counts[i];
        if (x->c.hour_us == hour && strcmp(x->names[0], host ? host : "") == 0 &&
            strcmp(x->names[1], vhost ? vhost : "") == 0 &&
            strcmp(x->names[2], mode ? mode : "") == 0) {
            c = x;
            break;
        }
    }
    if (!c && w->ncounts < COUNT_SLOTS) {
        c = &w->counts[w->ncounts++];
        memset(c, 0, sizeof(*c));
        c->c.hour_us = hour;
        copy_name(c->names[0], host);
        copy_name(c->names[1], vhost);
        copy_name(c->names[2], mode);
        c->c.host = c->names[0];
        c->c.vhost = c->names[1];
        c->c.mode = c->names[2];
        if (w->ncounts == 1) {
            w->counts_since = time(NULL);
            pthread_cond_signal(&w->cv); /* arm the thread's flush timer */
        }
    }
    if (!c) { /* table full: a flush is due anyway */
        note_error(w, 1, "audit writer: request count table full, count dropped");
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return DPOP_ERR;
    }
    c->c.verified += verified;
    c->c.rejected += rejected;
    pthread_mutex_unlock(&w->mu);
    return DPOP_OK;
}

size_t audit_writer_take_errors(audit_writer_t *w, char *last_err, size_t errsz)
{
    size_t n;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    n = w->errors;
    w->errors = 0;
    if (last_err && errsz)
        snprintf(last_err, errsz, "%s", n ? w->last_err : "");
    pthread_mutex_unlock(&w->mu);
    return n;
}

void audit_writer_usage(audit_writer_t *w, uint64_t *used, uint64_t *mapsize)
{
    *used = *mapsize = 0;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    *used = w->used;
    *mapsize = w->mapsize;
    pthread_mutex_unlock(&w->mu);
}

void audit_writer_stop(audit_writer_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL); /* the thread drains the queue first */
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    audit_close(w->store); /* syncs: the last batches are durable */
    free(w->counts);
    free(w->ring);
    free(w);
}
