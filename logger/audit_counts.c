/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_counts.c: the per-hour request counts, the report's denominator
 * (dpop-audit report gives rejections / requests).  A named database
 * "counts" next to the events:
 *   key   hour start (unix seconds, 8 bytes BE) || host NUL vhost NUL mode
 *   value verified (8 BE) || rejected (8 BE)
 * verified: requests mod_dpop let through without recording an event;
 * rejected: requests it recorded an event for (refused in enforce, would
 * have been refused in report-only).  One request counts once.
 *
 * Counts are added, never replaced: every httpd child adds its own totals
 * inside the write transaction of its next event batch (audit_writer.c),
 * so a count costs no transaction of its own.  The counts are not part of
 * the hash chain: they are a denominator, not evidence (documented in
 * docs/audit.md).  The database is created by the first writer that has a
 * count to add; a store without it simply has no counts.
 */
#include "audit_internal.h"
#include "dpop_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNTS_DB "counts"
#define KEY_MAX (8 + 3 * AUDIT_COUNT_NAME_MAX + 3)

static size_t name_len(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > AUDIT_COUNT_NAME_MAX ? AUDIT_COUNT_NAME_MAX : n;
}

/* key of c into k (KEY_MAX bytes); returns its length */
static size_t count_key(const audit_count_t *c, unsigned char *k)
{
    int64_t hour = c->hour_us / 1000000;
    hour -= ((hour % 3600) + 3600) % 3600;
    audit_put_be64(k, (uint64_t)hour);
    size_t off = 8;
    const char *parts[3] = {c->host, c->vhost, c->mode};
    for (int i = 0; i < 3; i++) {
        size_t n = name_len(parts[i]);
        memcpy(k + off, parts[i] ? parts[i] : "", n);
        off += n;
        k[off++] = '\0';
    }
    return off;
}

int audit_counts_put_txn(MDB_txn *txn, audit_store_t *s, const audit_count_t *c, size_t n)
{
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn, COUNTS_DB, MDB_CREATE, &dbi);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char key[KEY_MAX], val[16];
        MDB_val k = {count_key(&c[i], key), key}, v;
        uint64_t ver = c[i].verified, rej = c[i].rejected;
        rc = mdb_get(txn, dbi, &k, &v);
        if (rc == 0 && v.mv_size == 16) {
            ver += audit_get_be64(v.mv_data);
            rej += audit_get_be64((const unsigned char *)v.mv_data + 8);
        }
        else if (rc && rc != MDB_NOTFOUND) {
            break;
        }
        audit_put_be64(val, ver);
        audit_put_be64(val + 8, rej);
        v.mv_size = 16;
        v.mv_data = val;
        rc = mdb_put(txn, dbi, &k, &v, 0);
    }
    (void)s;
    return rc;
}

int audit_counts_add(audit_store_t *s, const audit_count_t *c, size_t n, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    int rc;
    if (s->rdonly) {
        snprintf(err, errsz, "audit store %s: opened read-only", s->dir);
        return DPOP_ERR;
    }
    if ((rc = audit_txn_begin(s, 0, &txn)) == 0)
        rc = audit_counts_put_txn(txn, s, c, n);
    return audit_txn_end(s, txn, rc, "write counts", err, errsz);
}

int audit_counts_read(audit_store_t *s, int64_t since_us, int64_t until_us, audit_count_cb cb,
                      void *arg, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    int rc, op;
    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn))) {
        audit_set_err(s, err, errsz, "begin read transaction", rc);
        return DPOP_ERR;
    }
    rc = mdb_dbi_open(txn, COUNTS_DB, 0, &dbi);
    if (rc == MDB_NOTFOUND) { /* a store no counting writer has written yet */
        mdb_txn_abort(txn);
        return DPOP_OK;
    }
    if (rc == 0)
        rc = mdb_cursor_open(txn, dbi, &cur);
    unsigned char start[8];
    int64_t hour = since_us / 1000000;
    hour -= ((hour % 3600) + 3600) % 3600; /* the hour that holds since */
    audit_put_be64(start, (uint64_t)(hour < 0 ? 0 : hour));
    k.mv_size = 8;
    k.mv_data = start;
    for (op = MDB_SET_RANGE; rc == 0; op = MDB_NEXT) {
        if ((rc = mdb_cursor_get(cur, &k, &v, op)))
            break;
        const unsigned char *kb = k.mv_data;
        if (k.mv_size < 11 || v.mv_size != 16 || kb[k.mv_size - 1] != '\0')
            continue; /* not a key this file wrote */
        audit_count_t c = {0};
        c.hour_us = (int64_t)audit_get_be64(kb) * 1000000;
        if (c.hour_us >= until_us)
            break;
        const char *p = (const char *)kb + 8, *end = (const char *)kb + k.mv_size;
        const char **parts[3] = {&c.host, &c.vhost, &c.mode};
        for (int i = 0; i < 3 && p < end; i++) {
            *parts[i] = p;
            p += strlen(p) + 1;
        }
        c.verified = audit_get_be64(v.mv_data);
        c.rejected = audit_get_be64((const unsigned char *)v.mv_data + 8);
        cb(&c, arg);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc) {
        audit_set_err(s, err, errsz, "read counts", rc);
        return DPOP_ERR;
    }
    return DPOP_OK;
}
