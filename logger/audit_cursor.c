/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_cursor.c: the resume cursor of dpop-audit export and alerts
 * (audit_cursor.h): a JSON file holding, per store (keyed by its real
 * path), the sequence number and chain hash of the last event whose output
 * was flushed.  It is replaced atomically only after that output was
 * flushed (and, to a regular file, fsync'ed): temporary file, fsync,
 * rename, fsync of the directory (rename(2) is atomic: a reader sees the
 * old or the new cursor, never a mix).  A kill therefore leaves a cursor
 * at or before the last line written: the next run repeats at most what
 * followed it and never skips.  On resume the store must still hold that
 * event with that hash (or have pruned it, said on stderr): a replaced
 * store is refused rather than read from an unrelated position.
 */
#include "audit_cursor.h"
#include "audit_internal.h"
#include "dpop_result.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CURSOR_MAX_BYTES (1 << 20)

static void hex32(const unsigned char *h, char *out)
{
    for (int j = 0; j < AUDIT_HASH_LEN; j++)
        snprintf(out + 2 * j, 3, "%02x", h[j]);
}

/* Load the cursor: a fresh document when the file does not exist.  1
 * damaged (not our JSON), 2 unreadable, 0 ok. */
int audit_cursor_load(const char *path, const char *kind, json_t **out, char *err, size_t errsz)
{
    json_error_t je;
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errsz, "cursor %s: %s", path, strerror(errno));
            return 2;
        }
        *out = json_pack("{s:i, s:s, s:{}}", "version", 1, "kind", kind, "stores");
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
        snprintf(err, errsz, "cursor %s: %s (line %d); fix or remove it to start from the start",
                 path, je.text, je.line);
        return errno == ENOENT || errno == EACCES ? 2 : 1;
    }
    /* a cursor without "kind" was written by export before alerts had one */
    const char *k = json_string_value(json_object_get(c, "kind"));
    if (json_integer_value(json_object_get(c, "version")) != 1 ||
        !json_is_object(json_object_get(c, "stores")) ||
        strcmp(k ? k : AUDIT_CURSOR_EXPORT, kind) != 0) {
        json_decref(c);
        snprintf(err, errsz, "cursor %s: not a dpop-audit %s cursor (version 1)", path, kind);
        return 1;
    }
    *out = c;
    return 0;
}

/* Replace the cursor atomically: temporary file, fsync, rename, fsync of
 * the directory (so the rename itself survives a crash). */
int audit_cursor_save(const char *path, const json_t *cur, char *err, size_t errsz)
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

/* Where a store resumes: after the cursor's event, which the store must
 * still hold with the same hash (or have pruned).  Also the end snapshot.
 * 0 ok, else the exit status. */
int audit_cursor_position(audit_store_t *s, const char *name, const json_t *entry,
                          audit_cursor_pos_t *st, const char *tool, char *err, size_t errsz)
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
                 "cursor for %s: event %llu has another hash than the one read: the store "
                 "was rewritten or replaced; run dpop-audit verify",
                 name, (unsigned long long)seq);
        ret = 1;
        goto done;
    }
    if (!known)
        fprintf(stderr, "dpop-audit %s: %s: events %llu..%llu were pruned before they were %s\n",
                tool, name, (unsigned long long)(seq + 1), (unsigned long long)(start - 1),
                strcmp(tool, "export") == 0 ? "exported" : "read");
    st->from = seq + 1;
    st->last = seq;
    memcpy(st->last_hash, want, AUDIT_HASH_LEN);
    st->positioned = 1;
    ret = 0;
done:
    mdb_txn_abort(txn);
    return ret;
}

int audit_cursor_set(json_t *cur, const char *name, uint64_t seq, const unsigned char *hash)
{
    char hx[65];
    hex32(hash, hx);
    return json_object_set_new(json_object_get(cur, "stores"), name,
                               json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "hash", hx));
}

/* A previous run killed in the middle of a line (SIGKILL can cut a write
 * to a file between two pages) left the output file without its final
 * newline: end that partial line first, so that the first line of this run
 * is not glued to it (a shipper would drop the merged line as invalid
 * JSON, losing a complete event).  The partial line's event is after the
 * cursor, so it is written again in full.  Regular files only. */
int audit_cursor_end_partial_line(FILE *out, char *err, size_t errsz)
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
        snprintf(err, errsz, "cannot write the output: %s", strerror(errno));
        return 2;
    }
    return 0;
}

int audit_cursor_sync_output(FILE *out, char *err, size_t errsz)
{
    struct stat fs;
    int fd = fileno(out);
    if (fflush(out) != 0 || ferror(out) ||
        (fd >= 0 && fstat(fd, &fs) == 0 && S_ISREG(fs.st_mode) && fsync(fd) != 0)) {
        snprintf(err, errsz, "cannot write the output: %s", strerror(errno));
        return 2;
    }
    return 0;
}

int audit_cursor_event(audit_store_t *s, uint64_t seq, unsigned char *hash, int64_t *ts_us)
{
    MDB_txn *txn = NULL;
    unsigned char sb[8];
    MDB_val k = {8, sb}, v;
    int rc, ret = 0;
    if (seq == 0 || audit_txn_begin(s, MDB_RDONLY, &txn))
        return DPOP_ERR;
    audit_put_be64(sb, seq);
    if ((rc = mdb_get(txn, s->events, &k, &v)) == 0 && v.mv_size > AUDIT_VAL_HDR) {
        memcpy(hash, (const unsigned char *)v.mv_data + AUDIT_VAL_HASH, AUDIT_HASH_LEN);
        if (ts_us)
            *ts_us = (int64_t)audit_get_be64((const unsigned char *)v.mv_data + AUDIT_VAL_TS);
        ret = 1;
    }
    else if (rc && rc != MDB_NOTFOUND) {
        ret = DPOP_ERR;
    }
    mdb_txn_abort(txn);
    return ret;
}
