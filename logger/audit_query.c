/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_query.c: filters, index range scans and the multi-store merge.
 * Plan per store: when key filters are given, count each key's duplicates
 * (mdb_cursor_count is O(log n)) and scan the smallest; with only a time
 * range (or a key far less selective than a time range), range-scan
 * ix_time.  Every candidate is then checked against all filters, so the
 * plan changes speed, never results.  Read-only.
 */
#include "audit_query.h"
#include "audit_internal.h"
#include "dpop_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key this common with a time range: scanning the time index is cheaper. */
#define PLAN_KEY_VS_TIME 20000

typedef struct {
    int64_t ts;
    uint64_t seq;
} cand_t;

typedef struct {
    audit_store_t *s;
    MDB_txn *txn;
    MDB_cursor *cur; /* time plan */
    audit_plan_t plan;
    int started, done;
    cand_t *cands; /* key plan: candidates sorted by (ts, seq) */
    size_t ncand, pos;
    audit_record_t rec;
    int has;
    uint64_t next_seq;
} src_t;

struct audit_iter {
    src_t *src;
    size_t n;
    audit_filter_t f;
    /* cleaned filter values per key, distinct, "" dropped (matches nothing) */
    char keys[AUDIT_IX_KEYS][AUDIT_FILTER_MAX + 1][512];
    size_t nkeys[AUDIT_IX_KEYS];
    int has_key[AUDIT_IX_KEYS];
    size_t skipped;
};

/* The event's field matches one of the key's values. */
static int key_match(const audit_iter_t *it, int x, const char *f)
{
    for (size_t j = 0; f && j < it->nkeys[x]; j++)
        if (strcmp(f, it->keys[x][j]) == 0)
            return 1;
    return 0;
}

void audit_record_clear(audit_record_t *r)
{
    if (r) {
        json_decref(r->ev);
        r->ev = NULL;
    }
}

const char *audit_rec_str(const audit_record_t *r, const char *name)
{
    return r && r->ev ? json_string_value(json_object_get(r->ev, name)) : NULL;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int in_time(const audit_iter_t *it, int64_t ts)
{
    return (!it->f.has_since || ts >= it->f.since_us) && (!it->f.has_until || ts < it->f.until_us);
}

/* Load event seq; 1 loaded and matching, 0 not matching / unreadable, -1
 * error (*mrc: the LMDB code). */
static int load(audit_iter_t *it, src_t *src, size_t idx, uint64_t seq, audit_record_t *rec,
                int *mrc)
{
    unsigned char sb[8];
    audit_put_be64(sb, seq);
    MDB_val k = {8, sb}, v;
    int rc = mdb_get(src->txn, src->s->events, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size <= AUDIT_VAL_HDR)) {
        it->skipped++; /* an index entry without its event: verify reports it */
        return 0;
    }
    if (rc) {
        *mrc = rc;
        return -1;
    }
    int64_t ts = (int64_t)audit_get_be64((const unsigned char *)v.mv_data + AUDIT_VAL_TS);
    if (!in_time(it, ts))
        return 0;
    json_t *o =
        json_loadb((const char *)v.mv_data + AUDIT_VAL_HDR, v.mv_size - AUDIT_VAL_HDR, 0, NULL);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        it->skipped++;
        return 0;
    }
    for (int x = 0; x < AUDIT_IX_KEYS; x++) {
        if (!it->has_key[x])
            continue;
        if (!key_match(it, x, json_string_value(json_object_get(o, audit_ix_field(x))))) {
            json_decref(o);
            return 0;
        }
    }
    rec->store = idx;
    rec->seq = seq;
    rec->ts_us = ts;
    rec->ev = o;
    return 1;
}

/* Duplicates of key x's value j (0 when absent). */
static int key_count(src_t *src, const audit_iter_t *it, int x, size_t j, size_t *count)
{
    MDB_cursor *c = NULL;
    MDB_val k = {strlen(it->keys[x][j]), (void *)it->keys[x][j]}, v;
    int rc = mdb_cursor_open(src->txn, src->s->ix[x], &c);
    *count = 0;
    if (rc == 0)
        rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    if (rc == 0)
        rc = mdb_cursor_count(c, count);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int plan_store(audit_iter_t *it, src_t *src, char *err, size_t errsz)
{
    int rc, best = -1;
    size_t best_count = 0;
    MDB_cursor *c = NULL;

    src->next_seq = audit_meta_u64(src->txn, src->s, "next_seq", 1);
    for (int x = 0; x < AUDIT_IX_KEYS; x++) {
        if (!it->has_key[x])
            continue;
        /* the key's values are OR'ed: its matches are the sum */
        size_t count = 0;
        for (size_t j = 0; j < it->nkeys[x]; j++) {
            size_t cj;
            if ((rc = key_count(src, it, x, j, &cj)))
                goto fail;
            count += cj;
        }
        if (count == 0) {
            src->plan = AUDIT_PLAN_EMPTY;
            return DPOP_OK;
        }
        if (best < 0 || count < best_count) {
            best = x;
            best_count = count;
        }
    }
    if (best < 0 || (best_count > PLAN_KEY_VS_TIME && (it->f.has_since || it->f.has_until))) {
        src->plan = AUDIT_PLAN_TIME;
        if ((rc = mdb_cursor_open(src->txn, src->s->ix_time, &src->cur)))
            goto fail;
        return DPOP_OK;
    }
    src->plan = (audit_plan_t)(AUDIT_PLAN_JKT + best);
    if (!(src->cands = malloc((best_count ? best_count : 1) * sizeof(*src->cands)))) {
        snprintf(err, errsz, "audit store %s: out of memory", src->s->dir);
        return DPOP_ERR;
    }
    for (size_t j = 0; j < it->nkeys[best]; j++) {
        MDB_val k = {strlen(it->keys[best][j]), it->keys[best][j]}, v;
        if ((rc = mdb_cursor_open(src->txn, src->s->ix[best], &c)))
            goto fail;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0 && src->ncand < best_count;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
            if (v.mv_size != 8)
                continue;
            uint64_t seq = audit_get_be64(v.mv_data);
            unsigned char sb[8];
            audit_put_be64(sb, seq);
            MDB_val ek = {8, sb}, ev;
            int grc = mdb_get(src->txn, src->s->events, &ek, &ev);
            if (grc && grc != MDB_NOTFOUND) {
                rc = grc;
                break;
            }
            if (grc || ev.mv_size <= AUDIT_VAL_HDR) {
                it->skipped++;
                continue;
            }
            int64_t ts = (int64_t)audit_get_be64((const unsigned char *)ev.mv_data + AUDIT_VAL_TS);
            if (!in_time(it, ts))
                continue;
            src->cands[src->ncand].ts = ts;
            src->cands[src->ncand].seq = seq;
            src->ncand++;
        }
        mdb_cursor_close(c);
        c = NULL;
        if (rc && rc != MDB_NOTFOUND)
            goto fail;
    }
    qsort(src->cands, src->ncand, sizeof(*src->cands), cand_cmp);
    return DPOP_OK;
fail:
    mdb_cursor_close(c);
    audit_set_err(src->s, err, errsz, "query", rc);
    return DPOP_ERR;
}

/* Clean and collect key x's values (shorthand first), dropping
 * duplicates and "" (stored as null: matches nothing). */
static void add_key(audit_iter_t *it, int x, const char *v)
{
    char clean[512];
    if (!v)
        return;
    it->has_key[x] = 1;
    /* same cleaning as storage, so an over-long value finds its truncated
     * stored form */
    audit_field_clean(v, strlen(v), audit_field_limit(audit_ix_field(x)), clean, sizeof(clean));
    if (!clean[0] || it->nkeys[x] > AUDIT_FILTER_MAX)
        return;
    for (size_t j = 0; j < it->nkeys[x]; j++)
        if (strcmp(it->keys[x][j], clean) == 0)
            return;
    memcpy(it->keys[x][it->nkeys[x]++], clean, sizeof(clean));
}

int audit_iter_open(audit_store_t *const *stores, size_t n, const audit_filter_t *f,
                    audit_iter_t **out, char *err, size_t errsz)
{
    audit_iter_t *it = calloc(1, sizeof(*it));
    const char *keys[AUDIT_IX_KEYS];
    int rc;
    *out = NULL;
    if (!it || !(it->src = calloc(n ? n : 1, sizeof(*it->src)))) {
        free(it);
        snprintf(err, errsz, "audit query: out of memory");
        return DPOP_ERR;
    }
    it->n = n;
    if (f)
        it->f = *f;
    keys[AUDIT_IX_JKT] = it->f.jkt;
    keys[AUDIT_IX_JTI] = it->f.jti;
    keys[AUDIT_IX_TOKEN_HASH] = it->f.token_hash;
    keys[AUDIT_IX_IP] = it->f.ip;
    keys[AUDIT_IX_REASON] = it->f.reason;
    int empty_key = 0;
    for (int x = 0; x < AUDIT_IX_KEYS; x++) {
        add_key(it, x, keys[x]);
        for (size_t j = 0; j < it->f.nany[x] && j < AUDIT_FILTER_MAX; j++)
            add_key(it, x, it->f.any[x][j]);
        empty_key |= it->has_key[x] && it->nkeys[x] == 0;
    }
    for (size_t i = 0; i < n; i++) {
        src_t *src = &it->src[i];
        src->s = stores[i];
        if ((rc = audit_txn_begin(src->s, MDB_RDONLY, &src->txn))) {
            src->txn = NULL;
            audit_set_err(src->s, err, errsz, "begin read transaction", rc);
            audit_iter_close(it);
            return DPOP_ERR;
        }
        if (empty_key) {
            src->plan = AUDIT_PLAN_EMPTY;
            src->next_seq = audit_meta_u64(src->txn, src->s, "next_seq", 1);
            continue;
        }
        if (plan_store(it, src, err, errsz) != DPOP_OK) {
            audit_iter_close(it);
            return DPOP_ERR;
        }
    }
    *out = it;
    return DPOP_OK;
}

/* Fill src->rec with the source's next matching record. */
static int advance(audit_iter_t *it, src_t *src, size_t idx, char *err, size_t errsz)
{
    while (!src->has && !src->done) {
        if (src->plan == AUDIT_PLAN_EMPTY) {
            src->done = 1;
            break;
        }
        uint64_t seq;
        if (src->plan == AUDIT_PLAN_TIME) {
            MDB_val k, v;
            int rc;
            if (!src->started) {
                src->started = 1;
                if (it->f.has_since) {
                    unsigned char key[16] = {0};
                    audit_put_be64(key, (uint64_t)(it->f.since_us < 0 ? 0 : it->f.since_us));
                    k.mv_size = 16;
                    k.mv_data = key;
                    rc = mdb_cursor_get(src->cur, &k, &v, MDB_SET_RANGE);
                }
                else {
                    rc = mdb_cursor_get(src->cur, &k, &v, MDB_FIRST);
                }
            }
            else {
                rc = mdb_cursor_get(src->cur, &k, &v, MDB_NEXT);
            }
            if (rc == MDB_NOTFOUND) {
                src->done = 1;
                break;
            }
            if (rc) {
                audit_set_err(src->s, err, errsz, "read time index", rc);
                return DPOP_ERR;
            }
            if (k.mv_size != 16)
                continue;
            int64_t ts = (int64_t)audit_get_be64(k.mv_data);
            if (it->f.has_until && ts >= it->f.until_us) {
                src->done = 1;
                break;
            }
            seq = audit_get_be64((const unsigned char *)k.mv_data + 8);
        }
        else {
            if (src->pos >= src->ncand) {
                src->done = 1;
                break;
            }
            seq = src->cands[src->pos++].seq;
        }
        int mrc = 0;
        int r = load(it, src, idx, seq, &src->rec, &mrc);
        if (r < 0) {
            audit_set_err(src->s, err, errsz, "read event", mrc);
            return DPOP_ERR;
        }
        src->has = r == 1;
    }
    return DPOP_OK;
}

int audit_iter_next(audit_iter_t *it, audit_record_t *rec, char *err, size_t errsz)
{
    src_t *best = NULL;
    for (size_t i = 0; i < it->n; i++) {
        src_t *src = &it->src[i];
        if (advance(it, src, i, err, errsz) != DPOP_OK)
            return -1;
        if (!src->has)
            continue;
        /* ties on time: lower store index first, then seq (stable output) */
        if (!best || src->rec.ts_us < best->rec.ts_us)
            best = src;
    }
    if (!best)
        return 0;
    *rec = best->rec;
    best->rec.ev = NULL;
    best->has = 0;
    return 1;
}

audit_plan_t audit_iter_plan(const audit_iter_t *it, size_t store)
{
    return store < it->n ? it->src[store].plan : AUDIT_PLAN_EMPTY;
}

uint64_t audit_iter_next_seq(const audit_iter_t *it, size_t store)
{
    return store < it->n ? it->src[store].next_seq : 0;
}

size_t audit_iter_skipped(const audit_iter_t *it)
{
    return it ? it->skipped : 0;
}

void audit_iter_close(audit_iter_t *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        src_t *src = &it->src[i];
        audit_record_clear(&src->rec);
        if (src->cur)
            mdb_cursor_close(src->cur);
        if (src->txn)
            mdb_txn_abort(src->txn);
        free(src->cands);
    }
    free(it->src);
    free(it);
}

int audit_read_new(audit_store_t *s, size_t store_index, uint64_t *from_seq, size_t max,
                   audit_record_t **recs, size_t *n, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    audit_record_t *out = NULL;
    size_t cnt = 0;
    int rc;
    unsigned char sb[8];
    MDB_val k = {8, sb}, v;

    *recs = NULL;
    *n = 0;
    if (max == 0)
        return DPOP_OK;
    if (!(out = calloc(max, sizeof(*out)))) {
        snprintf(err, errsz, "audit query: out of memory");
        return DPOP_ERR;
    }
    /* a fresh read transaction per poll: sees new commits and pins no pages */
    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn)) || (rc = mdb_cursor_open(txn, s->events, &c)))
        goto fail;
    audit_put_be64(sb, *from_seq);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && cnt < max;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8)
            continue;
        uint64_t seq = audit_get_be64(k.mv_data);
        *from_seq = seq + 1;
        if (v.mv_size <= AUDIT_VAL_HDR)
            continue;
        json_t *o =
            json_loadb((const char *)v.mv_data + AUDIT_VAL_HDR, v.mv_size - AUDIT_VAL_HDR, 0, NULL);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            continue;
        }
        out[cnt].store = store_index;
        out[cnt].seq = seq;
        out[cnt].ts_us = (int64_t)audit_get_be64((const unsigned char *)v.mv_data + AUDIT_VAL_TS);
        out[cnt].ev = o;
        cnt++;
    }
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    *recs = out;
    *n = cnt;
    return DPOP_OK;
fail:
    if (c)
        mdb_cursor_close(c);
    if (txn)
        mdb_txn_abort(txn);
    for (size_t i = 0; i < cnt; i++)
        audit_record_clear(&out[i]);
    free(out);
    audit_set_err(s, err, errsz, "read new events", rc);
    return DPOP_ERR;
}
