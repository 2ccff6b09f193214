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
#define CURSOR_MAX_BYTES (1 << 20)

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

/* --------------------------------------------------------------- cursor */

/* Load the cursor: a fresh document when the file does not exist.  1
 * damaged (not our JSON), 2 unreadable, 0 ok. */
static int cursor_load(const char *path, json_t **out, char *err, size_t errsz)
{
    json_error_t je;
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errsz, "cursor %s: %s", path, strerror(errno));
            return 2;
        }
        *out = json_pack("{s:i, s:{}}", "version", 1, "stores");
        return *out ? 0 : 2;
    }
    if (st.st_size > CURSOR_MAX_BYTES) {
        snprintf(err, errsz, "cursor %s: larger than %d bytes: not a cursor file", path,
                 CURSOR_MAX_BYTES);
        return 1;
    }
    json_t *c = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!c) {
        /* a cursor that does not parse is refused, never taken as "start
         * over" (that would resend everything) nor as "at the end" (a gap) */
        snprintf(err, errsz, "cursor %s: %s (line %d); fix or remove it to export from the start",
                 path, je.text, je.line);
        return errno == ENOENT || errno == EACCES ? 2 : 1;
    }
    if (json_integer_value(json_object_get(c, "version")) != 1 ||
        !json_is_object(json_object_get(c, "stores"))) {
        json_decref(c);
        snprintf(err, errsz, "cursor %s: not a dpop-audit export cursor (version 1)", path);
        return 1;
    }
    *out = c;
    return 0;
}

/* Replace the cursor atomically: temporary file, fsync, rename, fsync of
 * the directory (so the rename itself survives a crash). */
static int cursor_save(const char *path, const json_t *cur, char *err, size_t errsz)
{
    char tmp[4096], dir[4096];
    char *text = json_dumps(cur, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    int fd = -1, ret = DPOP_ERR;
    if (!text) {
        snprintf(err, errsz, "cursor %s: out of memory", path);
        return DPOP_ERR;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(err, errsz, "cursor %s: path too long", path);
        goto done;
    }
    size_t len = strlen(text);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
        goto io;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto io;
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        goto io;
    if (close(fd) != 0) {
        fd = -1;
        goto io;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto io;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd); /* best effort: some file systems refuse a directory fsync */
        close(fd);
        fd = -1;
    }
    ret = DPOP_OK;
    goto done;
io:
    snprintf(err, errsz, "cursor %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
done:
    free(text);
    return ret;
}

/* ----------------------------------------------------------------- read */

typedef struct {
    audit_record_t rec;
    unsigned char hash[AUDIT_HASH_LEN];
} xrec_t;

typedef struct {
    uint64_t from; /* next seq to read */
    uint64_t end;  /* without follow: stop before this seq (the start snapshot) */
    uint64_t last; /* last seq written or skipped (0: none yet) */
    unsigned char last_hash[AUDIT_HASH_LEN];
    int positioned; /* a cursor entry or an event read: gaps are worth a warning */
} xstate_t;

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

/* Where a store resumes: after the cursor's event, which the store must
 * still hold with the same hash (or have pruned).  Also the end snapshot.
 * 0 ok, else the exit status. */
static int position(audit_store_t *s, const char *name, const json_t *entry, xstate_t *st,
                    char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    int rc, ret = 2;
    unsigned char want[AUDIT_HASH_LEN];
    memset(st, 0, sizeof(*st));
    st->from = 1;
    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn))) {
        audit_set_err(s, err, errsz, "begin read transaction", rc);
        return audit_store_damaged(s) ? 1 : 2;
    }
    uint64_t start = audit_meta_u64(txn, s, "chain_start", 1);
    st->end = audit_meta_u64(txn, s, "next_seq", 1);
    if (!entry) {
        ret = 0;
        goto done;
    }
    json_t *jseq = json_object_get(entry, "seq");
    const char *jh = json_string_value(json_object_get(entry, "hash"));
    uint64_t seq = json_is_integer(jseq) && json_integer_value(jseq) > 0
                       ? (uint64_t)json_integer_value(jseq)
                       : 0;
    int okhex = jh && strlen(jh) == 64;
    for (int i = 0; okhex && i < 32; i++) {
        unsigned int b;
        okhex = sscanf(jh + 2 * i, "%2x", &b) == 1;
        want[i] = (unsigned char)b;
    }
    if (!seq || !okhex) {
        snprintf(err, errsz, "cursor entry for %s is malformed (seq, hash)", name);
        ret = 1;
        goto done;
    }
    if (seq >= st->end) {
        snprintf(err, errsz,
                 "cursor for %s is at event %llu but the store ends at %llu: not the store the "
                 "cursor was written for (replaced, or restored from an older copy)",
                 name, (unsigned long long)seq, (unsigned long long)(st->end - 1));
        ret = 1;
        goto done;
    }
    unsigned char sb[8], have[AUDIT_HASH_LEN];
    int known = 0;
    audit_put_be64(sb, seq);
    MDB_val k = {8, sb}, v;
    if ((rc = mdb_get(txn, s->events, &k, &v)) == 0 && v.mv_size > AUDIT_VAL_HDR) {
        memcpy(have, (const unsigned char *)v.mv_data + AUDIT_VAL_HASH, AUDIT_HASH_LEN);
        known = 1;
    }
    else if (rc && rc != MDB_NOTFOUND) {
        audit_set_err(s, err, errsz, "read event", rc);
        ret = audit_store_damaged(s) ? 1 : 2;
        goto done;
    }
    else if (seq == start - 1) {
        audit_meta_hash(txn, s, "chain_prev", have); /* the prune checkpoint */
        known = 1;
    }
    if (known && memcmp(have, want, AUDIT_HASH_LEN) != 0) {
        snprintf(err, errsz,
                 "cursor for %s: event %llu has another hash than the one exported: the store "
                 "was rewritten or replaced; run dpop-audit verify",
                 name, (unsigned long long)seq);
        ret = 1;
        goto done;
    }
    if (!known)
        fprintf(stderr,
                "dpop-audit export: %s: events %llu..%llu were pruned before they were "
                "exported\n",
                name, (unsigned long long)(seq + 1), (unsigned long long)(start - 1));
    st->from = seq + 1;
    st->last = seq;
    memcpy(st->last_hash, want, AUDIT_HASH_LEN);
    st->positioned = 1;
    ret = 0;
done:
    mdb_txn_abort(txn);
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
    struct stat fs;
    int fd = fileno(cfg->out);
    if (fflush(cfg->out) != 0 || ferror(cfg->out) ||
        (fd >= 0 && fstat(fd, &fs) == 0 && S_ISREG(fs.st_mode) && fsync(fd) != 0)) {
        snprintf(err, errsz, "export: cannot write the output: %s", strerror(errno));
        return 2;
    }
    return 0;
}

static int cursor_update(json_t *cur, const char *name, const xstate_t *st)
{
    char hx[65];
    hex32(st->last_hash, hx);
    return json_object_set_new(json_object_get(cur, "stores"), name,
                               json_pack("{s:I, s:s}", "seq", (json_int_t)st->last, "hash", hx));
}

/* A previous run killed in the middle of a line (SIGKILL can cut a write
 * to a file between two pages) left the output file without its final
 * newline: end that partial line first, so that the first line of this run
 * is not glued to it (a shipper would drop the merged line as invalid
 * JSON, losing a complete event).  The partial line's event is after the
 * cursor, so it is written again in full.  Regular files only. */
static int end_partial_line(FILE *out, char *err, size_t errsz)
{
    struct stat fs;
    char path[64], last = '\n';
    int fd = fileno(out), rfd;
    if (fd < 0 || fstat(fd, &fs) != 0 || !S_ISREG(fs.st_mode) || fs.st_size == 0)
        return 0;
    /* stdout is usually write-only: read its last byte through /proc */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if ((rfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    if (pread(rfd, &last, 1, fs.st_size - 1) != 1)
        last = '\n';
    close(rfd);
    if (last != '\n' && (fputc('\n', out) == EOF || fflush(out) != 0)) {
        snprintf(err, errsz, "export: cannot write the output: %s", strerror(errno));
        return 2;
    }
    return 0;
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
    if (cfg->cursor_path && (ret = cursor_load(cfg->cursor_path, &cur, err, errsz)) != 0)
        goto done;
    if ((ret = end_partial_line(cfg->out, err, errsz)) != 0)
        goto done;
    for (size_t i = 0; i < cfg->n; i++) {
        const json_t *entry =
            cur ? json_object_get(json_object_get(cur, "stores"), cfg->names[i]) : NULL;
        if ((ret = position(cfg->stores[i], cfg->names[i], entry, &st[i], err, errsz)) != 0)
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
                if (cursor_update(cur, cfg->names[i], &st[i]) != 0) {
                    snprintf(err, errsz, "export: out of memory");
                    ret = 2;
                    goto done;
                }
                if (cursor_save(cfg->cursor_path, cur, err, errsz) != DPOP_OK) {
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
