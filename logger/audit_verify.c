/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_verify.c: integrity check of one store (dpop-audit verify).  Inside
 * one read transaction (a consistent snapshot even while httpd appends):
 *   1. walk the events from the recorded chain start: seqs contiguous, each
 *      prev hash equals the previous event's hash, each hash recomputes,
 *      JSON parses and its "ts" matches the header; the last hash and seq
 *      match the meta head (so deleting the newest events is caught too);
 *   2. every event has its entry in every index its fields call for;
 *   3. every index holds exactly as many entries as the events call for, so
 *      (with 2) there is no stray entry; when the counts differ the stray
 *      entry is located and reported;
 *   0. before the walk, a pruned store's checkpoint: the one prune left at
 *      chain_start - 1 must exist and hold the hash the chain starts from
 *      (chain_prev), which step 1 then links to the first stored event; no
 *      checkpoint may lie at or past the chain start.
 * audit_find_hash looks a recorded head up among the stored events and the
 * checkpoints (verify --head).  Reads only; never repairs anything.
 */
#include "audit_internal.h"
#include "audit_time.h"
#include "dpop_result.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void audit_verify_clear(audit_verify_t *v)
{
    if (v) {
        free(v->bad_event);
        v->bad_event = NULL;
    }
}

static char *dup_json(const MDB_val *v)
{
    if (v->mv_size <= AUDIT_VAL_HDR)
        return NULL;
    size_t n = v->mv_size - AUDIT_VAL_HDR;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, (const char *)v->mv_data + AUDIT_VAL_HDR, n);
        s[n] = '\0';
    }
    return s;
}

static int bad(audit_verify_t *out, uint64_t seq, const MDB_val *v, const char *fmt,
               const char *arg)
{
    out->ok = 0;
    out->bad_seq = seq;
    snprintf(out->problem, sizeof(out->problem), fmt, arg ? arg : "");
    if (v)
        out->bad_event = dup_json(v);
    return DPOP_OK;
}

/* The event's string field, or NULL when absent/null. */
static const char *field(json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/* Find the first index entry that does not point at a matching event. */
static void find_stray(MDB_txn *txn, audit_store_t *s, int x, audit_verify_t *out)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int found = 0;
    if (mdb_cursor_open(txn, x < AUDIT_IX_KEYS ? s->ix[x] : s->ix_time, &c))
        return;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !found;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        if (x < AUDIT_IX_KEYS) {
            if (v.mv_size != 8)
                break;
            seq = audit_get_be64(v.mv_data);
        }
        else {
            if (k.mv_size != 16)
                break;
            seq = audit_get_be64((const unsigned char *)k.mv_data + 8);
        }
        unsigned char sb[8];
        audit_put_be64(sb, seq);
        MDB_val ek = {8, sb}, ev;
        if (mdb_get(txn, s->events, &ek, &ev) != 0) {
            out->bad_seq = seq;
            snprintf(out->problem, sizeof(out->problem),
                     "%s entry points at seq %llu, which is not stored",
                     x < AUDIT_IX_KEYS ? audit_ix_field(x) : "time", (unsigned long long)seq);
            found = 1;
            break;
        }
        if (x == AUDIT_IX_KEYS) {
            if (ev.mv_size < AUDIT_VAL_HDR ||
                memcmp((const unsigned char *)ev.mv_data + AUDIT_VAL_TS, k.mv_data, 8) != 0) {
                out->bad_seq = seq;
                snprintf(out->problem, sizeof(out->problem),
                         "time index entry does not match event %llu", (unsigned long long)seq);
                out->bad_event = dup_json(&ev);
                found = 1;
            }
            continue;
        }
        json_t *o = json_loadb((const char *)ev.mv_data + AUDIT_VAL_HDR, ev.mv_size - AUDIT_VAL_HDR,
                               0, NULL);
        const char *f = o ? field(o, audit_ix_field(x)) : NULL;
        if (!f || strlen(f) != k.mv_size || memcmp(f, k.mv_data, k.mv_size) != 0) {
            out->bad_seq = seq;
            snprintf(out->problem, sizeof(out->problem), "%s index entry does not match event %llu",
                     audit_ix_field(x), (unsigned long long)seq);
            out->bad_event = dup_json(&ev);
            found = 1;
        }
        json_decref(o);
    }
    if (!found) {
        snprintf(out->problem, sizeof(out->problem), "%s index has stray entries",
                 x < AUDIT_IX_KEYS ? audit_ix_field(x) : "time");
    }
    mdb_cursor_close(c);
}

/* Step 0: the checkpoints.  1 = fine, 0 = bad (out filled), -1 = error. */
static int check_ckpts(MDB_txn *txn, audit_store_t *s, uint64_t start, const unsigned char *prev,
                       audit_verify_t *out, char *err, size_t errsz)
{
    static const unsigned char zero[AUDIT_HASH_LEN] = {0};
    MDB_cursor *c = NULL;
    unsigned char key[AUDIT_CKPT_KEY_LEN];
    MDB_val k = {AUDIT_CKPT_KEY_LEN, key}, v;
    char msg[200];
    int rc, found = 0, ret = 1;

    audit_ckpt_key(key, 0);
    if ((rc = mdb_cursor_open(txn, s->meta, &c))) {
        audit_set_err(s, err, errsz, "open cursor", rc);
        return -1;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != AUDIT_CKPT_KEY_LEN || memcmp(k.mv_data, AUDIT_CKPT_PREFIX, 4) != 0)
            break;
        uint64_t seq = audit_get_be64((const unsigned char *)k.mv_data + 4);
        if (seq >= start || v.mv_size != AUDIT_CKPT_VAL_LEN) {
            snprintf(msg, sizeof(msg),
                     "checkpoint %llu is malformed or not before the chain start %llu (meta "
                     "altered)",
                     (unsigned long long)seq, (unsigned long long)start);
            ret = 0;
            bad(out, seq, NULL, "%s", msg);
            goto done;
        }
        if (seq == start - 1) {
            found = 1;
            if (memcmp(v.mv_data, prev, AUDIT_HASH_LEN) != 0) {
                snprintf(msg, sizeof(msg),
                         "checkpoint %llu does not hold the hash the chain starts from (chain "
                         "start or checkpoint altered)",
                         (unsigned long long)seq);
                ret = 0;
                bad(out, seq, NULL, "%s", msg);
                goto done;
            }
        }
    }
    if (rc && rc != MDB_NOTFOUND) {
        audit_set_err(s, err, errsz, "read checkpoints", rc);
        ret = -1;
        goto done;
    }
    if (start > 1 && !found) {
        snprintf(msg, sizeof(msg),
                 "the chain starts at %llu but prune left no checkpoint at %llu (events "
                 "removed from the start, or meta altered)",
                 (unsigned long long)start, (unsigned long long)(start - 1));
        ret = 0;
        bad(out, start - 1, NULL, "%s", msg);
    }
    else if (start == 1 && memcmp(prev, zero, AUDIT_HASH_LEN) != 0) {
        ret = 0;
        bad(out, 1, NULL, "the chain starts at 1 but not from the zero hash (meta altered)%s",
            NULL);
    }
    else if (start > 1) {
        out->has_ckpt = 1;
        out->ckpt_seq = start - 1;
        memcpy(out->ckpt, prev, AUDIT_HASH_LEN);
    }
done:
    mdb_cursor_close(c);
    return ret;
}

int audit_find_hash(audit_store_t *s, const unsigned char *hash, uint64_t *seq, char *err,
                    size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int rc, ret = DPOP_ERR;
    unsigned char key[AUDIT_CKPT_KEY_LEN];

    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn))) {
        audit_set_err(s, err, errsz, "begin read transaction", rc);
        return DPOP_ERR;
    }
    if ((rc = mdb_cursor_open(txn, s->events, &c)))
        goto fail;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
        /* newest first: a recorded head is usually recent */
        if (k.mv_size == 8 && v.mv_size > AUDIT_VAL_HDR &&
            memcmp((const unsigned char *)v.mv_data + AUDIT_VAL_HASH, hash, AUDIT_HASH_LEN) == 0) {
            *seq = audit_get_be64(k.mv_data);
            ret = 1;
            goto done;
        }
    }
    if (rc != MDB_NOTFOUND)
        goto fail;
    mdb_cursor_close(c);
    c = NULL;
    if ((rc = mdb_cursor_open(txn, s->meta, &c)))
        goto fail;
    audit_ckpt_key(key, 0);
    k.mv_size = AUDIT_CKPT_KEY_LEN;
    k.mv_data = key;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != AUDIT_CKPT_KEY_LEN || memcmp(k.mv_data, AUDIT_CKPT_PREFIX, 4) != 0)
            break;
        if (v.mv_size == AUDIT_CKPT_VAL_LEN && memcmp(v.mv_data, hash, AUDIT_HASH_LEN) == 0) {
            *seq = audit_get_be64((const unsigned char *)k.mv_data + 4);
            ret = 1;
            goto done;
        }
    }
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    ret = 0;
    goto done;
fail:
    audit_set_err(s, err, errsz, "look up head", rc);
done:
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return ret;
}

int audit_verify(audit_store_t *s, audit_verify_t *out, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    EVP_MD_CTX *ctx = NULL;
    unsigned char prev[AUDIT_HASH_LEN], head[AUDIT_HASH_LEN], h[AUDIT_HASH_LEN];
    uint64_t want[AUDIT_IX_KEYS + 1] = {0};
    int rc, ret = DPOP_ERR;
    MDB_val k, v;

    memset(out, 0, sizeof(*out));
    out->ok = 1;
    if (!(ctx = EVP_MD_CTX_new())) {
        snprintf(err, errsz, "audit store %s: out of memory", s->dir);
        return DPOP_ERR;
    }
    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn))) {
        audit_set_err(s, err, errsz, "begin read transaction", rc);
        goto done;
    }
    uint64_t expect = audit_meta_u64(txn, s, "chain_start", 1);
    uint64_t next = audit_meta_u64(txn, s, "next_seq", 1);
    audit_meta_hash(txn, s, "chain_prev", prev);
    audit_meta_hash(txn, s, "head", head);
    int ck = check_ckpts(txn, s, expect, prev, out, err, errsz);
    if (ck <= 0) {
        ret = ck == 0 ? DPOP_OK : DPOP_ERR;
        goto done;
    }
    if ((rc = mdb_cursor_open(txn, s->events, &c))) {
        audit_set_err(s, err, errsz, "open cursor", rc);
        goto done;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            ret = bad(out, 0, &v, "event with a malformed key%s", NULL);
            goto done;
        }
        uint64_t seq = audit_get_be64(k.mv_data);
        char msg[160];
        if (seq != expect) {
            if (seq < expect)
                snprintf(msg, sizeof(msg), "event %llu precedes the chain start %llu",
                         (unsigned long long)seq, (unsigned long long)expect);
            else
                snprintf(msg, sizeof(msg),
                         "event %llu is missing (deleted); next stored event is %llu",
                         (unsigned long long)expect, (unsigned long long)seq);
            ret = bad(out, seq < expect ? seq : expect, &v, "%s", msg);
            goto done;
        }
        if (v.mv_size <= AUDIT_VAL_HDR || ((const unsigned char *)v.mv_data)[0] != AUDIT_FORMAT) {
            ret = bad(out, seq, &v, "event value malformed (altered)%s", NULL);
            goto done;
        }
        const unsigned char *val = v.mv_data;
        const char *json = (const char *)val + AUDIT_VAL_HDR;
        size_t jlen = v.mv_size - AUDIT_VAL_HDR;
        int64_t ts = (int64_t)audit_get_be64(val + AUDIT_VAL_TS);
        if (memcmp(val + AUDIT_VAL_PREV, prev, AUDIT_HASH_LEN) != 0) {
            ret = bad(out, seq, &v,
                      "prev hash does not match the previous event's hash (this event or the "
                      "one before was rewritten)%s",
                      NULL);
            goto done;
        }
        if (audit_chain_hash(ctx, prev, seq, ts, json, jlen, h) != DPOP_OK) {
            snprintf(err, errsz, "audit store %s: SHA-256 failed", s->dir);
            goto done;
        }
        if (memcmp(h, val + AUDIT_VAL_HASH, AUDIT_HASH_LEN) != 0) {
            ret = bad(out, seq, &v, "hash mismatch: event content altered%s", NULL);
            goto done;
        }
        json_t *o = json_loadb(json, jlen, 0, NULL);
        int64_t jts = 0;
        if (!o || !json_is_object(o) || audit_time_parse_rfc3339(field(o, "ts"), &jts) != DPOP_OK ||
            jts != ts) {
            json_decref(o);
            ret = bad(out, seq, &v, "event JSON unreadable or ts inconsistent%s", NULL);
            goto done;
        }
        unsigned char sb[8], tk[16];
        memcpy(sb, k.mv_data, 8);
        for (int x = 0; x < AUDIT_IX_KEYS; x++) {
            const char *f = field(o, audit_ix_field(x));
            if (!f)
                continue;
            MDB_val ik = {strlen(f), (void *)f}, iv = {8, sb};
            MDB_cursor *ic = NULL;
            int irc = mdb_cursor_open(txn, s->ix[x], &ic);
            if (irc == 0)
                irc = mdb_cursor_get(ic, &ik, &iv, MDB_GET_BOTH);
            mdb_cursor_close(ic);
            if (irc) {
                json_decref(o);
                ret = bad(out, seq, &v, "event is missing from the %s index", audit_ix_field(x));
                goto done;
            }
            want[x]++;
        }
        json_decref(o);
        audit_put_be64(tk, (uint64_t)ts);
        memcpy(tk + 8, sb, 8);
        MDB_val tkv = {16, tk}, tvv;
        if (mdb_get(txn, s->ix_time, &tkv, &tvv)) {
            ret = bad(out, seq, &v, "event is missing from the time index%s", NULL);
            goto done;
        }
        want[AUDIT_IX_KEYS]++;
        memcpy(prev, h, AUDIT_HASH_LEN);
        expect++;
        out->events++;
    }
    if (rc != MDB_NOTFOUND) {
        audit_set_err(s, err, errsz, "read events", rc);
        goto done;
    }
    if (expect != next) {
        char msg[160];
        snprintf(msg, sizeof(msg), "events %llu..%llu are missing (deleted from the end)",
                 (unsigned long long)expect, (unsigned long long)(next - 1));
        ret = bad(out, expect, NULL, "%s", msg);
        goto done;
    }
    if (memcmp(prev, head, AUDIT_HASH_LEN) != 0) {
        ret = bad(out, expect, NULL, "chain head in meta does not match the last event%s", NULL);
        goto done;
    }
    memcpy(out->head, prev, AUDIT_HASH_LEN);
    out->head_seq = next - 1;
    /* counts: with every event found in its indexes, equal totals mean no
     * entry is stray (ms_entries counts every duplicate of a DUPSORT db) */
    for (int x = 0; x <= AUDIT_IX_KEYS; x++) {
        MDB_stat st;
        if ((rc = mdb_stat(txn, x < AUDIT_IX_KEYS ? s->ix[x] : s->ix_time, &st))) {
            audit_set_err(s, err, errsz, "stat index", rc);
            goto done;
        }
        if (st.ms_entries != want[x]) {
            out->ok = 0;
            find_stray(txn, s, x, out);
            ret = DPOP_OK;
            goto done;
        }
    }
    ret = DPOP_OK;
done:
    mdb_cursor_close(c);
    if (txn)
        mdb_txn_abort(txn);
    EVP_MD_CTX_free(ctx);
    return ret;
}
