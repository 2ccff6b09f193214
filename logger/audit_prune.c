/*
 * audit_prune.c: retention (dpop-audit prune --before T).  Deletes events
 * from the start of the chain while they are older than T, with their index
 * entries, and records the new chain start (its seq and the hash the next
 * event links to) so verify proves the remaining chain.  Works in bounded
 * transactions (PRUNE_CHUNK events each) so a large prune neither exhausts
 * LMDB's dirty-page limit nor blocks httpd's writers for long; each chunk is
 * atomic, so an interrupted prune leaves a verifiable store.
 */
#include "audit_internal.h"
#include "dpop_result.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define PRUNE_CHUNK 2000

static int del_index(MDB_txn *txn, MDB_dbi dbi, const char *key, const unsigned char *seqb)
{
    MDB_val k = {strlen(key), (void *)key}, v = {8, (void *)seqb};
    int rc = mdb_del(txn, dbi, &k, &v);
    return rc == MDB_NOTFOUND ? 0 : rc; /* verify reports a missing entry, prune goes on */
}

/* One chunk; *more = 1 when it stopped because of the chunk size. */
static int prune_chunk(audit_store_t *s, int64_t before_us, uint64_t *deleted, int *more, char *err,
                       size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int rc, n = 0;
    unsigned char last_hash[AUDIT_HASH_LEN];
    uint64_t start;
    const char *what = "prune";

    *more = 0;
    if ((rc = audit_txn_begin(s, 0, &txn))) {
        what = "begin write transaction";
        goto fail;
    }
    start = audit_meta_u64(txn, s, "chain_start", 1);
    if ((rc = mdb_cursor_open(txn, s->events, &c)))
        goto fail;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) {
        if (n == PRUNE_CHUNK) {
            *more = 1;
            break;
        }
        if (k.mv_size != 8 || v.mv_size <= AUDIT_VAL_HDR || audit_get_be64(k.mv_data) != start) {
            /* damaged store: refuse to prune around a hole (verify explains) */
            mdb_cursor_close(c);
            mdb_txn_abort(txn);
            snprintf(err, errsz, "audit store %s: chain is not contiguous at seq %llu; run verify",
                     s->dir, (unsigned long long)start);
            return DPOP_ERR;
        }
        const unsigned char *val = v.mv_data;
        int64_t ts = (int64_t)audit_get_be64(val + AUDIT_VAL_TS);
        if (ts >= before_us)
            break;
        unsigned char seqb[8], tk[16];
        memcpy(seqb, k.mv_data, 8);
        memcpy(last_hash, val + AUDIT_VAL_HASH, AUDIT_HASH_LEN);
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
        if ((rc = audit_meta_put_u64(txn, s, "chain_start", start)) ||
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
    int more = 1;
    uint64_t d = 0;
    if (s->rdonly) {
        snprintf(err, errsz, "audit store %s: opened read-only", s->dir);
        return DPOP_ERR;
    }
    while (more) {
        if (prune_chunk(s, before_us, &d, &more, err, errsz) != DPOP_OK) {
            if (deleted)
                *deleted = d;
            return DPOP_ERR;
        }
    }
    if (deleted)
        *deleted = d;
    return DPOP_OK;
}
