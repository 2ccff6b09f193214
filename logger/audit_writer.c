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
 * Never logs by itself and never holds anything but the encoded event.
 */
#include "audit_internal.h"
#include "dpop_result.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITER_BATCH 4096
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
    uint64_t used, mapsize; /* map usage after the last commit (under mu) */
};

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
        while (w->count == 0 && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->count == 0 && w->stopping)
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
        size_t n = 0;
        while (w->count && n < WRITER_BATCH) {
            batch[n++] = w->ring[w->head];
            w->head = (w->head + 1) % w->cap;
            w->count--;
        }
        pthread_mutex_unlock(&w->mu);
        err[0] = '\0';
        int rc = audit_append_encoded(w->store, batch, n, err, sizeof(err));
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
        /* the meta page only: cheap, and it keeps scrapes free of LMDB */
        uint64_t used = 0, mapsize = 0;
        int measured = audit_store_usage(w->store, &used, &mapsize) == DPOP_OK;
        pthread_mutex_lock(&w->mu);
        if (rc != DPOP_OK)
            note_error(w, n, err);
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
    if (!(w->ring = calloc(w->cap, sizeof(*w->ring)))) {
        snprintf(err, errsz, "audit writer: out of memory");
        free(w);
        return DPOP_ERR;
    }
    if (audit_open(dir, mapsize, AUDIT_OPEN_RDWR, &w->store, err, errsz) != DPOP_OK) {
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
    free(w->ring);
    free(w);
}
