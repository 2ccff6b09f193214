/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_export.c: dpop-audit export (audit_export.h).  Each store is read in
 * sequence order, in batches; a batch's lines are written, flushed (and
 * fsync'ed when the output is a regular file a shipper tails), and only
 * then is the cursor replaced: written to a temporary file in the same
 * directory, fsync'ed, renamed over the old one, the directory fsync'ed
 * (rename(2) is atomic: a reader sees the old or the new cursor, never a
 * mix).  A kill at any point therefore leaves a cursor at or before the
 * last line written: the next run repeats at most one batch (at-least-once,
 * a SIEM deduplicates on event.id) and never skips an event.
 *
 * The cursor holds, per store (keyed by its real path), the sequence number
 * and chain hash of the last event written.  On resume the store must still
 * hold that event with that hash (or it was pruned since, which is said on
 * stderr): a store replaced by another one is refused rather than read from
 * an unrelated position.  Stores absent from this run keep their entries.
 */
#include "audit_cursor.h"
#include "audit_export.h"
#include "audit_internal.h"
#include "audit_time.h"
#include "dpop_result.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT_BATCH 1000

/* ------------------------------------------------------------------ ECS */

static void hex32(const unsigned char *h, char *out)
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* obj.a.b.c = v, creating the parents (ECS dotted names written as nested
 * objects, as the alerts are).  v NULL or JSON null: nothing (ECS omits
 * absent fields).  Steals v. */
static void put(json_t *obj, const char *path, json_t *v)
{
    char part[64];
    const char *dot;
    if (!v || json_is_null(v)) {
        json_decref(v);
        return;
    }
    while ((dot = strchr(path, '.')) != NULL) {
        size_t n = (size_t)(dot - path);
        if (n >= sizeof(part))
            break;
        memcpy(part, path, n);
        part[n] = '\0';
        json_t *child = json_object_get(obj, part);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(obj, part, child);
        }
        obj = child;
        path = dot + 1;
    }
    json_object_set_new(obj, path, v);
}

static json_t *field(const audit_record_t *rec, const char *name)
{
    return json_incref(json_object_get(rec->ev, name));
}

json_t *audit_export_ecs(const audit_record_t *rec, const unsigned char *hash, const char *store)
{
    /* ECS names where ECS has the field; dpop.* for the DPoP ones and a
     * full copy of the event's own fields, so a SIEM rule can use either */
    static const struct {
        const char *ecs, *name;
    } map[] = {
        {"event.action", "reason"},
        {"error.code", "error"},
        {"error.message", "detail"},
        {"source.ip", "client_ip"},
        {"http.request.method", "method"},
        {"http.request.id", "request_id"},
        {"url.path", "path"},
        {"url.domain", "vhost"},
        {"user_agent.original", "user_agent"},
        {"host.name", "host"},
        {"process.pid", "pid"},
    };
    static const char *const dpop[] = {"jkt",           "jti",       "iat",
                                       "htm",           "htu",       "alg",
                                       "token_hash",    "token_sub", "token_client_id",
                                       "policy_client", "mode",      "error",
                                       "reason",        "detail",    "vhost"};
    char hx[65];
    json_t *o = json_object();
    if (!o)
        return NULL;
    put(o, "@timestamp", field(rec, "ts"));
    put(o, "event.kind", json_string("event"));
    put(o, "event.category", json_string("authentication"));
    put(o, "event.outcome", json_string("failure"));
    put(o, "event.module", json_string("dpop"));
    put(o, "event.dataset", json_string("dpop.audit"));
    /* ECS event.reason: why the event happened, as the source says it */
    json_t *why = field(rec, "detail");
    put(o, "event.reason", why && json_is_string(why) ? why : field(rec, "reason"));
    if (why && !json_is_string(why))
        json_decref(why);
    put(o, "event.sequence", json_integer((json_int_t)rec->seq));
    hex32(hash, hx);
    put(o, "event.id", json_string(hx));
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        put(o, map[i].ecs, field(rec, map[i].name));
    for (size_t i = 0; i < sizeof(dpop) / sizeof(dpop[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "dpop.%s", dpop[i]);
        put(o, path, field(rec, dpop[i]));
    }
    put(o, "dpop.store", store ? json_string(store) : NULL);
    return o;
}

/* ----------------------------------------------------------------- read */

typedef struct {
    audit_record_t rec;
    unsigned char hash[AUDIT_HASH_LEN];
} xrec_t;

typedef audit_cursor_pos_t xstate_t;

/* Up to max events with seq in [from, end) (end 0: no bound).  0 ok, else
 * the exit status (err set). */
static int read_batch(audit_store_t *s, uint64_t from, uint64_t end, size_t max, xrec_t *out,
                      size_t *n, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    unsigned char sb[8];
    MDB_val k = {8, sb}, v;
    int rc, ret = 2;
    *n = 0;
    /* a fresh read transaction per batch: sees new commits, pins no pages */
    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn)) || (rc = mdb_cursor_open(txn, s->events, &c)))
        goto fail;
    audit_put_be64(sb, from);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && *n < max;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8)
            continue;
        uint64_t seq = audit_get_be64(k.mv_data);
        if (end && seq >= end)
            break;
        const unsigned char *val = v.mv_data;
        json_t *o = v.mv_size > AUDIT_VAL_HDR ? json_loadb((const char *)val + AUDIT_VAL_HDR,
                                                           v.mv_size - AUDIT_VAL_HDR, 0, NULL)
                                              : NULL;
        if (!json_is_object(o)) {
            /* never skip silently: a SIEM must not miss an event unnoticed */
            json_decref(o);
            snprintf(err, errsz,
                     "audit store %s: event seq %llu is unreadable; run dpop-audit verify", s->dir,
                     (unsigned long long)seq);
            ret = 1;
            goto out;
        }
        xrec_t *x = &out[(*n)++];
        x->rec.seq = seq;
        x->rec.ts_us = (int64_t)audit_get_be64(val + AUDIT_VAL_TS);
        x->rec.ev = o;
        memcpy(x->hash, val + AUDIT_VAL_HASH, AUDIT_HASH_LEN);
    }
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    ret = 0;
    goto out;
fail:
    audit_set_err(s, err, errsz, "read events", rc);
    ret = audit_store_damaged(s) ? 1 : 2;
out:
    mdb_cursor_close(c);
    if (txn)
        mdb_txn_abort(txn);
    if (ret)
        for (size_t i = 0; i < *n; i++)
            audit_record_clear(&out[i].rec);
    return ret;
}

/* Write one batch's lines; flush and make them durable before the caller
 * moves the cursor.  0 ok, 2 output error. */
static int write_batch(const audit_export_cfg_t *cfg, size_t i, xrec_t *x, size_t n, xstate_t *st,
                       size_t *written, char *err, size_t errsz)
{
    for (size_t j = 0; j < n; j++) {
        if (st->positioned && x[j].rec.seq > st->from)
            fprintf(stderr,
                    "dpop-audit export: %s: events %llu..%llu are not in the store (pruned or "
                    "deleted; run dpop-audit verify)\n",
                    cfg->names[i], (unsigned long long)st->from,
                    (unsigned long long)(x[j].rec.seq - 1));
        st->positioned = 1;
        st->from = x[j].rec.seq + 1;
        st->last = x[j].rec.seq;
        memcpy(st->last_hash, x[j].hash, AUDIT_HASH_LEN);
        if (cfg->has_since && x[j].rec.ts_us < cfg->since_us)
            continue; /* before --since: passed over, and the cursor moves past it */
        json_t *doc = audit_export_ecs(&x[j].rec, x[j].hash, cfg->names[i]);
        char *line =
            doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
        json_decref(doc);
        if (!line) {
            snprintf(err, errsz, "export: out of memory");
            return 2;
        }
        fputs(line, cfg->out);
        fputc('\n', cfg->out);
        free(line);
        (*written)++;
    }
    return audit_cursor_sync_output(cfg->out, err, errsz);
}

int audit_export_run(const audit_export_cfg_t *cfg, char *err, size_t errsz)
{
    json_t *cur = NULL;
    xstate_t *st = NULL;
    xrec_t *x = NULL;
    size_t batch = cfg->batch ? cfg->batch : EXPORT_BATCH;
    int ret = 2;

    if (!(st = calloc(cfg->n ? cfg->n : 1, sizeof(*st))) || !(x = calloc(batch, sizeof(*x)))) {
        snprintf(err, errsz, "export: out of memory");
        goto done;
    }
    if (cfg->cursor_path &&
        (ret = audit_cursor_load(cfg->cursor_path, AUDIT_CURSOR_EXPORT, &cur, err, errsz)) != 0)
        goto done;
    if ((ret = audit_cursor_end_partial_line(cfg->out, err, errsz)) != 0)
        goto done;
    for (size_t i = 0; i < cfg->n; i++) {
        const json_t *entry =
            cur ? json_object_get(json_object_get(cur, "stores"), cfg->names[i]) : NULL;
        if ((ret = audit_cursor_position(cfg->stores[i], cfg->names[i], entry, &st[i], "export",
                                         err, errsz)) != 0)
            goto done;
    }
    for (;;) {
        size_t got = 0;
        for (size_t i = 0; i < cfg->n; i++) {
            size_t n = 0, written = 0;
            uint64_t before = st[i].last;
            if ((ret = read_batch(cfg->stores[i], st[i].from, cfg->follow ? 0 : st[i].end, batch, x,
                                  &n, err, errsz)) != 0)
                goto done;
            ret = write_batch(cfg, i, x, n, &st[i], &written, err, errsz);
            for (size_t j = 0; j < n; j++)
                audit_record_clear(&x[j].rec);
            if (ret)
                goto done;
            /* the lines are out and durable: only now may the cursor pass them */
            if (cur && st[i].last != before) {
                if (audit_cursor_set(cur, cfg->names[i], st[i].last, st[i].last_hash) != 0) {
                    snprintf(err, errsz, "export: out of memory");
                    ret = 2;
                    goto done;
                }
                if (audit_cursor_save(cfg->cursor_path, cur, err, errsz) != DPOP_OK) {
                    ret = 2;
                    goto done;
                }
            }
            got += n;
        }
        if (cfg->stop && *cfg->stop)
            break;
        if (got >= batch)
            continue; /* more is waiting: no pause */
        if (!cfg->follow) {
            if (got == 0)
                break;
            continue;
        }
        /* one-second naps so a stop signal is seen promptly */
        for (unsigned t = 0; t < (cfg->interval_s ? cfg->interval_s : 1); t++) {
            if (cfg->stop && *cfg->stop)
                break;
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
        if (cfg->stop && *cfg->stop)
            break;
    }
    ret = 0;
done:
    json_decref(cur);
    free(x);
    free(st);
    return ret;
}
