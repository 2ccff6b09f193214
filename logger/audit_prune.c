/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_prune.c: retention (dpop-audit prune --before T).  Deletes events
 * from the start of the chain while they are older than T, with their index
 * entries, and records the new chain start (its seq and the hash the next
 * event links to) so verify proves the remaining chain.  Works in bounded
 * transactions (PRUNE_CHUNK events each) so a large prune neither exhausts
 * LMDB's dirty-page limit nor blocks httpd's writers for long; each chunk is
 * atomic, so an interrupted prune leaves a verifiable store.
 *
 * Integrity: retention must never be a way to erase an altered event and
 * leave a store that verifies.  A read-only pass first recomputes the chain
 * (prev link and SHA-256) over every event the prune would delete and the
 * first event it keeps; on any mismatch nothing is deleted and the prune
 * fails (AUDIT_ERR_TAMPERED).  Each chunk re-checks the events it deletes
 * inside its write transaction, so an event altered between the pass and
 * the chunk is not deleted either.  Each chunk leaves a checkpoint in meta
 * (seq and hash of its last deleted event) that verify checks against the
 * chain start and verify --head accepts as a recorded head.
 */
#include "audit_internal.h"
#include "dpop_result.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define PRUNE_CHUNK 2000

/* Check one event against the running chain: its seq is the expected one,
 * it links to prev and its hash recomputes.  NULL when intact, else what
 * is wrong. */
static const char *check_event(EVP_MD_CTX *ctx, const unsigned char *prev, uint64_t expect,
                               const MDB_val *k, const MDB_val *v)
{
    unsigned char h[AUDIT_HASH_LEN];
    if (k->mv_size != 8 || audit_get_be64(k->mv_data) != expect)
        return "chain is not contiguous (an event is missing)";
    const unsigned char *val = v->mv_data;
    if (v->mv_size <= AUDIT_VAL_HDR || val[0] != AUDIT_FORMAT)
        return "event value malformed (altered)";
    if (memcmp(val + AUDIT_VAL_PREV, prev, AUDIT_HASH_LEN) != 0)
        return "prev hash does not match the previous event's hash (rewritten)";
    if (audit_chain_hash(ctx, prev, expect, (int64_t)audit_get_be64(val + AUDIT_VAL_TS),
                         (const char *)val + AUDIT_VAL_HDR, v->mv_size - AUDIT_VAL_HDR,
                         h) != DPOP_OK)
        return "SHA-256 failed";
    if (memcmp(h, val + AUDIT_VAL_HASH, AUDIT_HASH_LEN) != 0)
        return "hash mismatch: event content altered";
    return NULL;
}

static int tampered(audit_store_t *s, uint64_t seq, const char *why, char *err, size_t errsz)
{
    snprintf(err, errsz,
             "audit store %s: event seq %llu: %s; refusing to prune (run dpop-audit verify)",
             s->dir, (unsigned long long)seq, why);
    return AUDIT_ERR_TAMPERED;
}

/* The read-only pass: the chain over every event older than before_us and
 * the first event kept. */
static int check_range(audit_store_t *s, EVP_MD_CTX *ctx, int64_t before_us, char *err,
                       size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    unsigned char prev[AUDIT_HASH_LEN];
    const char *why = NULL;
    int rc, ret = DPOP_ERR;

    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn))) {
        audit_set_err(s, err, errsz, "begin read transaction", rc);
        return DPOP_ERR;
    }
    uint64_t expect = audit_meta_u64(txn, s, "chain_start", 1);
    audit_meta_hash(txn, s, "chain_prev", prev);
    if ((rc = mdb_cursor_open(txn, s->events, &c)))
        goto fail;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if ((why = check_event(ctx, prev, expect, &k, &v))) {
            ret = tampered(s, k.mv_size == 8 ? audit_get_be64(k.mv_data) : expect, why, err, errsz);
            goto done;
        }
        const unsigned char *val = v.mv_data;
        if ((int64_t)audit_get_be64(val + AUDIT_VAL_TS) >= before_us)
            break; /* the first event kept links to the last one deleted */
        memcpy(prev, val + AUDIT_VAL_HASH, AUDIT_HASH_LEN);
        expect++;
    }
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    ret = DPOP_OK;
    goto done;
fail:
    audit_set_err(s, err, errsz, "check chain before pruning", rc);
done:
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return ret;
}

static int del_index(MDB_txn *txn, MDB_dbi dbi, const char *key, const unsigned char *seqb)
{
    MDB_val k = {strlen(key), (void *)key}, v = {8, (void *)seqb};
    int rc = mdb_del(txn, dbi, &k, &v);
    return rc == MDB_NOTFOUND ? 0 : rc; /* verify reports a missing entry, prune goes on */
}

/* One chunk; *more = 1 when it stopped because of the chunk size. */
static int prune_chunk(audit_store_t *s, EVP_MD_CTX *ctx, int64_t before_us, uint64_t *deleted,
                       int *more, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int rc, n = 0;
    unsigned char last_hash[AUDIT_HASH_LEN];
    int64_t last_ts = 0;
    uint64_t start;
    const char *what = "prune", *why;

    *more = 0;
    if ((rc = audit_txn_begin(s, 0, &txn))) {
        what = "begin write transaction";
        goto fail;
    }
    start = audit_meta_u64(txn, s, "chain_start", 1);
    audit_meta_hash(txn, s, "chain_prev", last_hash);
    if ((rc = mdb_cursor_open(txn, s->events, &c)))
        goto fail;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) {
        if (n == PRUNE_CHUNK) {
            *more = 1;
            break;
        }
        /* never delete an event whose chain does not hold (nor around a
         * hole): this chunk stores nothing, earlier chunks deleted only
         * verified events */
        if ((why = check_event(ctx, last_hash, start, &k, &v))) {
            mdb_cursor_close(c);
            mdb_txn_abort(txn);
            return tampered(s, start, why, err, errsz);
        }
        const unsigned char *val = v.mv_data;
        int64_t ts = (int64_t)audit_get_be64(val + AUDIT_VAL_TS);
        if (ts >= before_us)
            break;
        unsigned char seqb[8], tk[16];
        memcpy(seqb, k.mv_data, 8);
        memcpy(last_hash, val + AUDIT_VAL_HASH, AUDIT_HASH_LEN);
        last_ts = ts;
        json_t *o =
            json_loadb((const char *)val + AUDIT_VAL_HDR, v.mv_size - AUDIT_VAL_HDR, 0, NULL);
        for (int x = 0; o && x < AUDIT_IX_KEYS; x++) {
            const char *f = json_string_value(json_object_get(o, audit_ix_field(x)));
            if (f && *f && (rc = del_index(txn, s->ix[x], f, seqb))) {
                json_decref(o);
                goto fail;
            }
        }
        json_decref(o);
        audit_put_be64(tk, (uint64_t)ts);
        memcpy(tk + 8, seqb, 8);
        MDB_val tkv = {16, tk};
        if ((rc = mdb_del(txn, s->ix_time, &tkv, NULL)) && rc != MDB_NOTFOUND)
            goto fail;
        if ((rc = mdb_cursor_del(c, 0)))
            goto fail;
        start++;
        n++;
    }
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    if (n > 0) {
        what = "write meta";
        uint64_t total = audit_meta_u64(txn, s, "pruned_count", 0) + (uint64_t)n;
        unsigned char ck[AUDIT_CKPT_KEY_LEN], cv[AUDIT_CKPT_VAL_LEN];
        audit_ckpt_key(ck, start - 1);
        memcpy(cv, last_hash, AUDIT_HASH_LEN);
        audit_put_be64(cv + AUDIT_HASH_LEN, (uint64_t)last_ts);
        MDB_val ckk = {sizeof(ck), ck}, ckv = {sizeof(cv), cv};
        if ((rc = mdb_put(txn, s->meta, &ckk, &ckv, 0)) ||
            (rc = audit_meta_put_u64(txn, s, "chain_start", start)) ||
            (rc = audit_meta_put(txn, s, "chain_prev", last_hash, AUDIT_HASH_LEN)) ||
            (rc = audit_meta_put_u64(txn, s, "pruned_before", (uint64_t)before_us)) ||
            (rc = audit_meta_put_u64(txn, s, "pruned_count", total)))
            goto fail;
    }
    rc = 0;
fail:
    mdb_cursor_close(c);
    if (audit_txn_end(s, txn, rc, what, err, errsz) != DPOP_OK)
        return DPOP_ERR;
    *deleted += (uint64_t)n;
    return DPOP_OK;
}

int audit_prune(audit_store_t *s, int64_t before_us, uint64_t *deleted, char *err, size_t errsz)
{
    int more = 1, rc = DPOP_OK;
    uint64_t d = 0;
    EVP_MD_CTX *ctx = NULL;
    if (s->rdonly) {
        snprintf(err, errsz, "audit store %s: opened read-only", s->dir);
        return DPOP_ERR;
    }
    if (!(ctx = EVP_MD_CTX_new())) {
        snprintf(err, errsz, "audit store %s: out of memory", s->dir);
        return DPOP_ERR;
    }
    if ((rc = check_range(s, ctx, before_us, err, errsz)) != DPOP_OK)
        goto done;
    while (more && (rc = prune_chunk(s, ctx, before_us, &d, &more, err, errsz)) == DPOP_OK)
        ;
done:
    EVP_MD_CTX_free(ctx);
    if (deleted)
        *deleted = d;
    return rc;
}
