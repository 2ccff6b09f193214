/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_alerts_run.c: dpop-audit alerts (audit_alerts_run.h).
 *
 * One-shot: every event of the stores (from --since) through the rules in
 * time order, then one line per incident with its final counts.  --follow:
 * then poll each store for new events and print, after each poll, the
 * incidents it opened or updated (same event.id, new counts).
 *
 * --cursor FILE (the cursor of dpop-audit export, audit_cursor.c, with
 * kind "alerts"): per store, the last event whose effect on the alerts
 * was printed and flushed.  The engine is stateful (an incident spans many
 * events), so a resumed run first rebuilds its state by feeding again,
 * silently, the events up to the cursor that can still matter (from the
 * cursor's time minus the longest memory of the rules, horizon or
 * window), and prints only what the events after the cursor open or
 * change.  An incident printed before the restart is printed again only
 * when a new event updates it (same event.id, new counts), never as a
 * repeat; no event after the cursor is passed over.  The cursor is saved
 * after the lines are flushed (fsync'ed when the output is a file), so a
 * kill repeats at most the lines of the last poll (at-least-once; a SIEM
 * upserts on event.id).
 *
 * Several stores: an event reaches its store a little after its time
 * (writer queue, poll interval), and stores are read one after the other,
 * so a later poll can bring an earlier event from another store.  Events
 * wait in a time-ordered buffer and are fed to the rules only when their
 * time, or their arrival, is lag (2 x interval + 1 s; 0 for one store,
 * read in order anyway) old.  A store's cursor stays before its oldest
 * event still waiting.
 */
#include "audit_alerts_run.h"
#include "audit_cursor.h"
#include "audit_time.h"
#include "dpop_result.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FOLLOW_BATCH 10000

typedef struct {
    audit_record_t rec;
    int64_t arrived_us;
} pending_t;

typedef struct {
    const audit_alerts_run_t *r;
    int werr; /* an output write failed */
} out_t;

static void print_alert(json_t *alert, void *arg)
{
    out_t *o = arg;
    char *s = json_dumps(alert, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (!s || fputs(s, o->r->out) == EOF || fputc('\n', o->r->out) == EOF)
        o->werr = 1;
    free(s);
}

/* The state rebuild of a resumed run prints nothing. */
static void discard(json_t *alert, void *arg)
{
    (void)alert;
    (void)arg;
}

static int rec_cmp(const void *a, const void *b)
{
    const audit_record_t *x = a, *y = b;
    if (x->ts_us != y->ts_us)
        return x->ts_us < y->ts_us ? -1 : 1;
    if (x->store != y->store)
        return x->store < y->store ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int pending_cmp(const void *a, const void *b)
{
    return rec_cmp(&((const pending_t *)a)->rec, &((const pending_t *)b)->rec);
}

/* Feed the buffer's head while it is due (all of it when flush). */
static void feed_due(audit_alerts_t *al, pending_t *pend, size_t *np, int64_t lag_us, int flush,
                     out_t *o)
{
    int64_t now = audit_now_us();
    size_t k = 0;
    while (k < *np &&
           (flush || pend[k].rec.ts_us <= now - lag_us || pend[k].arrived_us <= now - lag_us)) {
        audit_alerts_feed(al, &pend[k].rec, print_alert, o);
        audit_record_clear(&pend[k].rec);
        k++;
    }
    if (k)
        memmove(pend, pend + k, (*np - k) * sizeof(*pend));
    *np -= k;
}

typedef struct {
    json_t *cur;     /* the cursor document, or NULL: no cursor */
    uint64_t *saved; /* per store: seq in the saved cursor */
    audit_cursor_pos_t *pos;
} cursor_t;

/* Flush the output, then move each store's cursor to done[i] (the last
 * seq whose lines are out) and save it when it moved.  0 or an exit code. */
static int checkpoint(const audit_alerts_run_t *r, cursor_t *c, const uint64_t *done, out_t *o,
                      char *err, size_t errsz)
{
    if (o->werr) {
        snprintf(err, errsz, "cannot write the output");
        return 2;
    }
    int rc = audit_cursor_sync_output(r->out, err, errsz);
    if (rc || !c->cur)
        return rc;
    int moved = 0;
    for (size_t i = 0; i < r->n; i++) {
        unsigned char h[32];
        if (done[i] <= c->saved[i] || audit_cursor_event(r->stores[i], done[i], h, NULL) != 1)
            continue;
        if (audit_cursor_set(c->cur, r->names[i], done[i], h) != 0) {
            snprintf(err, errsz, "out of memory");
            return 2;
        }
        c->saved[i] = done[i];
        moved = 1;
    }
    if (moved && audit_cursor_save(r->cursor_path, c->cur, err, errsz) != DPOP_OK)
        return 2;
    return 0;
}

static int fail_code(const audit_alerts_run_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (audit_store_damaged(r->stores[i]))
            return 1;
    return 2;
}

/* Resume: the cursor's positions, and how far back the rebuild reads. */
static int resume(const audit_alerts_run_t *r, cursor_t *c, audit_filter_t *f, char *err,
                  size_t errsz)
{
    int rc = audit_cursor_load(r->cursor_path, AUDIT_CURSOR_ALERTS, &c->cur, err, errsz);
    if (rc)
        return rc;
    int64_t keep = r->cfg->horizon_us > r->cfg->window_us ? r->cfg->horizon_us : r->cfg->window_us;
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < r->n; i++) {
        const json_t *entry = json_object_get(json_object_get(c->cur, "stores"), r->names[i]);
        if ((rc = audit_cursor_position(r->stores[i], r->names[i], entry, &c->pos[i], "alerts", err,
                                        errsz)) != 0)
            return rc;
        c->saved[i] = c->pos[i].last;
        unsigned char h[32];
        int64_t ts;
        if (c->pos[i].last && audit_cursor_event(r->stores[i], c->pos[i].last, h, &ts) == 1 &&
            ts < oldest)
            oldest = ts;
    }
    /* events older than the rules remember cannot change what follows */
    if (oldest != INT64_MAX && (!f->has_since || f->since_us < oldest - keep)) {
        f->has_since = 1;
        f->since_us = oldest - keep;
    }
    return audit_cursor_end_partial_line(r->out, err, errsz);
}

int audit_alerts_run(const audit_alerts_run_t *r, char *err, size_t errsz)
{
    audit_alerts_t *al = audit_alerts_new(r->cfg);
    audit_iter_t *it = NULL;
    audit_record_t rec = {0};
    audit_filter_t f = {0};
    cursor_t c = {0};
    uint64_t *from = calloc(r->n ? r->n : 1, sizeof(*from));
    uint64_t *done = calloc(r->n ? r->n : 1, sizeof(*done));
    pending_t *pend = NULL;
    size_t npend = 0;
    out_t o = {r, 0};
    int rc, ret = 2, silent = 0;
    /* one store is read in order: nothing to wait for */
    const int64_t lag_us = r->n > 1 ? (int64_t)(2 * r->interval_s + 1) * 1000000 : 0;

    c.saved = calloc(r->n ? r->n : 1, sizeof(*c.saved));
    c.pos = calloc(r->n ? r->n : 1, sizeof(*c.pos));
    if (!al || !from || !done || !c.saved || !c.pos) {
        snprintf(err, errsz, "out of memory");
        goto done;
    }
    f.has_since = r->has_since;
    f.since_us = r->since_us;
    if (r->cursor_path && (ret = resume(r, &c, &f, err, errsz)) != 0)
        goto done;
    ret = 2;
    if (audit_iter_open(r->stores, r->n, &f, &it, err, errsz) != DPOP_OK)
        goto fail;
    for (size_t i = 0; i < r->n; i++) {
        from[i] = audit_iter_next_seq(it, i); /* --follow resumes after this snapshot */
        done[i] = from[i] - 1;
    }
    while ((rc = audit_iter_next(it, &rec, err, errsz)) == 1) {
        /* up to the cursor: rebuild the state, print nothing; at each
         * switch, what is due is settled first (printed or discarded) */
        int s = c.cur && rec.seq <= c.pos[rec.store].last;
        if (s != silent) {
            audit_alerts_flush(al, silent ? discard : print_alert, &o);
            silent = s;
        }
        if (!r->has_since || rec.ts_us >= r->since_us)
            audit_alerts_feed(al, &rec, silent ? discard : print_alert, &o);
        audit_record_clear(&rec);
    }
    audit_iter_close(it);
    it = NULL;
    if (rc < 0)
        goto fail;
    /* one line per incident opened or changed, with the counts of every
     * event read so far */
    audit_alerts_flush(al, silent ? discard : print_alert, &o);
    if ((ret = checkpoint(r, &c, done, &o, err, errsz)) != 0)
        goto done;
    ret = 2;
    while (r->follow && !(r->stop && *r->stop)) {
        size_t got = 0;
        for (size_t i = 0; i < r->n; i++) {
            audit_record_t *recs = NULL;
            size_t cnt = 0;
            if (audit_read_new(r->stores[i], i, &from[i], FOLLOW_BATCH, &recs, &cnt, err, errsz) !=
                DPOP_OK)
                goto fail;
            pending_t *np = cnt ? realloc(pend, (npend + cnt) * sizeof(*pend)) : pend;
            if (cnt && !np) {
                for (size_t j = 0; j < cnt; j++)
                    audit_record_clear(&recs[j]);
                free(recs);
                snprintf(err, errsz, "out of memory");
                goto fail;
            }
            pend = np;
            int64_t now = audit_now_us();
            for (size_t j = 0; j < cnt; j++)
                pend[npend++] = (pending_t){recs[j], now};
            free(recs);
            got += cnt;
        }
        if (got)
            qsort(pend, npend, sizeof(*pend), pending_cmp);
        feed_due(al, pend, &npend, lag_us, 0, &o);
        /* new incidents, and the ones this poll added events to (same
         * event.id, new counts): at most one line per incident per poll */
        audit_alerts_flush(al, print_alert, &o);
        /* a store's cursor stays before its oldest event still waiting */
        for (size_t i = 0; i < r->n; i++)
            done[i] = from[i] - 1;
        for (size_t k = 0; k < npend; k++)
            if (pend[k].rec.seq <= done[pend[k].rec.store])
                done[pend[k].rec.store] = pend[k].rec.seq - 1;
        if ((ret = checkpoint(r, &c, done, &o, err, errsz)) != 0)
            goto done;
        ret = 2;
        if (got < FOLLOW_BATCH) {
            for (unsigned t = 0; t < (r->interval_s ? r->interval_s : 1); t++) {
                if (r->stop && *r->stop)
                    break;
                struct timespec ts = {1, 0};
                nanosleep(&ts, NULL);
            }
        }
    }
    if (r->follow) {
        feed_due(al, pend, &npend, lag_us, 1, &o); /* stopping: what waits, in order */
        audit_alerts_flush(al, print_alert, &o);
        for (size_t i = 0; i < r->n; i++)
            done[i] = from[i] - 1;
        if ((ret = checkpoint(r, &c, done, &o, err, errsz)) != 0)
            goto done;
    }
    ret = 0;
    goto done;
fail:
    ret = fail_code(r);
done:
    fflush(r->out);
    for (size_t j = 0; j < npend; j++)
        audit_record_clear(&pend[j].rec);
    free(pend);
    audit_iter_close(it);
    audit_alerts_free(al);
    json_decref(c.cur);
    free(c.saved);
    free(c.pos);
    free(from);
    free(done);
    return ret;
}
