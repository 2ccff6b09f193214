/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_store.c: the LMDB environment of the audit store (open, named
 * databases, meta) and the append path: read the chain head inside the write
 * transaction, chain, write the event and its index entries, commit.  LMDB's
 * single write transaction (a process-shared mutex in lock.mdb) serializes
 * appends from every httpd child, so the chain never forks.
 *
 * Sync policy: MDB_NOMETASYNC.  Each commit flushes the data pages
 * (one fdatasync per batch) but not the meta page; LMDB documents that this
 * keeps the database consistent (ACI) and a system crash may only undo the
 * last committed transaction.  MDB_NOSYNC would be faster but a crash can
 * corrupt the file, which an audit store must not risk.  Batching (one
 * transaction per writer batch) is what buys the throughput.
 *
 * Never stores anything the caller did not put in the event; never logs.
 */
#include "audit_internal.h"
#include "audit_event.h"
#include "dpop_result.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ix_names[AUDIT_IX_KEYS] = {"ix_jkt", "ix_jti", "ix_token_hash",
                                                    "ix_client_ip", "ix_reason"};

void audit_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
}

uint64_t audit_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int audit_rc_damaged(int rc)
{
    /* what LMDB says when the pages it reads are not what the meta page
     * promised: the file was cut, overwritten or is not an LMDB file */
    return rc == AUDIT_RC_TRUNCATED || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
           rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_BAD_VALSIZE ||
           rc == MDB_INCOMPATIBLE;
}

void audit_set_err(audit_store_t *s, char *err, size_t errsz, const char *what, int rc)
{
    const char *why = rc == AUDIT_RC_TRUNCATED
                          ? "data.mdb is shorter than the pages its meta page names "
                            "(truncated, e.g. a partial copy); restore a complete copy"
                      : rc && rc != AUDIT_RC_FAILED ? mdb_strerror(rc)
                                                    : "failed";
    if (s && audit_rc_damaged(rc))
        s->damaged = 1;
    if (err && errsz)
        snprintf(err, errsz, "audit store %s: %s: %s%s", s && s->dir ? s->dir : "?", what, why,
                 audit_rc_damaged(rc) && rc != AUDIT_RC_TRUNCATED
                     ? " (the store file is damaged; run dpop-audit verify)"
                     : "");
}

/* LMDB checks some page invariants with assertions that abort(): a page of
 * the wrong type met while walking a damaged file.  A CLI (audit_exit_on_damage)
 * turns that into a message and exit status 1 like every other damaged-file
 * error; a server keeps LMDB's abort (and its core dump).  The hook must not
 * return into LMDB, which would abort anyway, so it ends the process with
 * async-signal-safe calls only. */
static volatile int exit_on_damage;

void audit_exit_on_damage(int on)
{
    exit_on_damage = on;
}

static void on_lmdb_assert(MDB_env *env, const char *msg)
{
    static const char head[] = "dpop-audit: the audit store file is damaged (LMDB: ";
    static const char tail[] = "); restore the store from a good copy\n";
    const char *dir = NULL;
    (void)env;
    if (!exit_on_damage)
        return;
    if (mdb_env_get_path(env, &dir) != 0)
        dir = NULL;
    ssize_t w = write(STDERR_FILENO, head, sizeof(head) - 1);
    if (dir)
        w = write(STDERR_FILENO, dir, strlen(dir)), w = write(STDERR_FILENO, ": ", 2);
    w = write(STDERR_FILENO, msg, strlen(msg));
    w = write(STDERR_FILENO, tail, sizeof(tail) - 1);
    (void)w;
    _exit(1);
}

int audit_store_damaged(const audit_store_t *s)
{
    return s ? s->damaged : 0;
}

void audit_ckpt_key(unsigned char *key, uint64_t seq)
{
    memcpy(key, AUDIT_CKPT_PREFIX, 4);
    audit_put_be64(key + 4, seq);
}

/* LMDB maps data.mdb and reads pages through the map: a page past the end
 * of the file raises SIGBUS instead of an error.  Every page the current
 * meta page names (0..me_last_pgno) must therefore be inside the file
 * before any of them is touched.  The file only grows (a writer writes
 * pages before the meta page that names them), so a check at the start of
 * each transaction covers what that transaction can reach. */
static int check_file_size(audit_store_t *s)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat fs;
    mdb_filehandle_t fd;
    int rc;
    if ((rc = mdb_env_info(s->env, &info)) || (rc = mdb_env_stat(s->env, &st)) ||
        (rc = mdb_env_get_fd(s->env, &fd)))
        return rc;
    if (fstat(fd, &fs) != 0)
        return errno;
    if ((uint64_t)fs.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
        return AUDIT_RC_TRUNCATED;
    return 0;
}

int audit_txn_end(audit_store_t *s, MDB_txn *txn, int rc, const char *what, char *err, size_t errsz)
{
    if (rc == 0 && txn && (rc = mdb_txn_commit(txn)) != 0)
        what = "commit";
    else if (rc != 0 && txn)
        mdb_txn_abort(txn); /* nothing of this transaction is stored */
    if (rc == 0)
        return DPOP_OK;
    audit_set_err(s, err, errsz, what, rc);
    return DPOP_ERR;
}

const char *audit_store_dir(const audit_store_t *s)
{
    return s ? s->dir : NULL;
}

int audit_chain_hash(EVP_MD_CTX *ctx, const unsigned char *prev, uint64_t seq, int64_t ts_us,
                     const char *json, size_t json_len, unsigned char *out)
{
    unsigned char num[16];
    unsigned int outlen = 0;
    audit_put_be64(num, seq);
    audit_put_be64(num + 8, (uint64_t)ts_us);
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, prev, AUDIT_HASH_LEN) != 1 ||
        EVP_DigestUpdate(ctx, num, sizeof(num)) != 1 ||
        EVP_DigestUpdate(ctx, json, json_len) != 1 || EVP_DigestFinal_ex(ctx, out, &outlen) != 1 ||
        outlen != AUDIT_HASH_LEN)
        return DPOP_ERR; /* fail closed: never store an unchained event */
    return DPOP_OK;
}

uint64_t audit_meta_u64(MDB_txn *txn, const audit_store_t *s, const char *key, uint64_t dflt)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    if (mdb_get(txn, s->meta, &k, &v) != 0 || v.mv_size != 8)
        return dflt;
    return audit_get_be64(v.mv_data);
}

void audit_meta_hash(MDB_txn *txn, const audit_store_t *s, const char *key, unsigned char *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    if (mdb_get(txn, s->meta, &k, &v) != 0 || v.mv_size != AUDIT_HASH_LEN)
        memset(out, 0, AUDIT_HASH_LEN);
    else
        memcpy(out, v.mv_data, AUDIT_HASH_LEN);
}

int audit_meta_put(MDB_txn *txn, const audit_store_t *s, const char *key, const void *val, size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, v = {n, (void *)val};
    return mdb_put(txn, s->meta, &k, &v, 0);
}

int audit_meta_put_u64(MDB_txn *txn, const audit_store_t *s, const char *key, uint64_t val)
{
    unsigned char b[8];
    audit_put_be64(b, val);
    return audit_meta_put(txn, s, key, b, 8);
}

int audit_txn_begin(audit_store_t *s, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* another process grew the map (a larger DPoPAuditMapSize): adopt it */
        if ((rc = mdb_env_set_mapsize(s->env, 0)) == 0)
            rc = mdb_txn_begin(s->env, NULL, flags, txn);
    }
    if (rc == 0 && (rc = check_file_size(s)) != 0) {
        mdb_txn_abort(*txn);
        *txn = NULL;
        if (rc == AUDIT_RC_TRUNCATED)
            s->damaged = 1;
    }
    return rc;
}

/* Open (with create: create) the named databases and the meta record. */
static int open_dbs_txn(audit_store_t *s, int create_dbs, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    unsigned create = create_dbs ? MDB_CREATE : 0;
    int rc = audit_txn_begin(s, create_dbs ? 0 : MDB_RDONLY, &txn);
    if (rc) {
        audit_set_err(s, err, errsz, "begin transaction", rc);
        return DPOP_ERR;
    }
    const char *what = "open database";
    if ((rc = mdb_dbi_open(txn, "events", create, &s->events)))
        goto end;
    for (int i = 0; i < AUDIT_IX_KEYS; i++)
        if ((rc = mdb_dbi_open(txn, ix_names[i], create | MDB_DUPSORT | MDB_DUPFIXED, &s->ix[i])))
            goto end;
    if ((rc = mdb_dbi_open(txn, "ix_time", create, &s->ix_time)) ||
        (rc = mdb_dbi_open(txn, "meta", create, &s->meta)))
        goto end;
    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND && create_dbs) {
        /* a new store: the chain starts at seq 1 from an all-zero hash */
        unsigned char zero[AUDIT_HASH_LEN] = {0};
        what = "initialise meta";
        if ((rc = audit_meta_put(txn, s, "format", "1", 1)) ||
            (rc = audit_meta_put_u64(txn, s, "next_seq", 1)) ||
            (rc = audit_meta_put(txn, s, "head", zero, sizeof(zero))) ||
            (rc = audit_meta_put_u64(txn, s, "chain_start", 1)) ||
            (rc = audit_meta_put(txn, s, "chain_prev", zero, sizeof(zero))))
            goto end;
    }
    else if (rc) {
        what = "read meta (not an audit store?)";
        goto end;
    }
    else if (v.mv_size != 1 || *(const char *)v.mv_data != '1') {
        mdb_txn_abort(txn);
        if (err && errsz)
            snprintf(err, errsz, "audit store %s: unsupported format", s->dir);
        return DPOP_ERR;
    }
end:
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        if (!create_dbs)
            return MDB_NOTFOUND; /* caller decides: create, or "no store here" */
        snprintf(err, errsz, "audit store %s: no audit store here (empty or not created yet)",
                 s->dir);
        return DPOP_ERR;
    }
    /* a read-only transaction must also be committed to keep the dbi handles */
    return audit_txn_end(s, txn, rc, what, err, errsz);
}

/* An existing store is opened in a read transaction, so a process starting
 * (httpd's child_init) never waits for another process's write transaction;
 * only a new store takes the write lock to create its databases. */
static int open_dbs(audit_store_t *s, char *err, size_t errsz)
{
    int rc = open_dbs_txn(s, 0, err, errsz);
    if (rc == MDB_NOTFOUND && !s->rdonly && !s->nocreate)
        rc = open_dbs_txn(s, 1, err, errsz);
    else if (rc == MDB_NOTFOUND)
        snprintf(err, errsz, "audit store %s: no audit store here (empty or not created yet)",
                 s->dir);
    return rc == DPOP_OK ? DPOP_OK : DPOP_ERR;
}

/* data.mdb exists but cannot hold LMDB's two meta pages (LMDB's page
 * size is the OS page size of the host that created it). */
static int data_file_short(const char *dir)
{
    char path[4096];
    struct stat st;
    long page = sysconf(_SC_PAGESIZE);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &st) != 0)
        return -1; /* absent */
    return S_ISREG(st.st_mode) && st.st_size < 2 * (page > 0 ? page : 4096);
}

int audit_open(const char *dir, size_t mapsize, int flags, audit_store_t **out, char *err,
               size_t errsz)
{
    audit_store_t *s = NULL;
    int rc;
    struct stat st;
    *out = NULL;
    if (err && errsz)
        err[0] = '\0';
    if (!dir || !*dir) {
        snprintf(err, errsz, "audit store: no directory given");
        return DPOP_ERR;
    }
    if (!(s = calloc(1, sizeof(*s))) || !(s->dir = strdup(dir))) {
        snprintf(err, errsz, "audit store %s: out of memory", dir);
        goto fail;
    }
    s->rdonly = !(flags & AUDIT_OPEN_RDWR);
    s->nocreate = (flags & AUDIT_OPEN_NOCREATE) != 0;
    if (stat(dir, &st) != 0) {
        /* group-readable so analysts' CLI can read with proper LMDB locking */
        if (s->rdonly || errno != ENOENT || mkdir(dir, 0750) != 0) {
            snprintf(err, errsz, "audit store %s: %s", dir, strerror(errno));
            goto fail;
        }
    }
    else if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsz, "audit store %s: not a directory", dir);
        goto fail;
    }
    int short_file = data_file_short(dir);
    if (s->nocreate && short_file < 0) {
        snprintf(err, errsz, "audit store %s: no audit store here (no data.mdb)", dir);
        goto fail;
    }
    if ((s->rdonly || s->nocreate) && short_file > 0) {
        /* read-write LMDB would take an empty data.mdb for a new
         * environment and initialise it: a damaged store must not be
         * silently replaced by an empty one */
        snprintf(err, errsz,
                 "audit store %s: data.mdb is too short to hold its meta pages "
                 "(truncated or not an LMDB file)",
                 dir);
        s->damaged = 1;
        goto fail;
    }
    if ((rc = mdb_env_create(&s->env))) {
        audit_set_err(s, err, errsz, "create environment", rc);
        goto fail;
    }
    mdb_env_set_assert(s->env, on_lmdb_assert);
    if ((rc = mdb_env_set_maxdbs(s->env, 16)) || (rc = mdb_env_set_maxreaders(s->env, 1024)) ||
        (!s->rdonly &&
         (rc = mdb_env_set_mapsize(s->env, mapsize ? mapsize : AUDIT_DEFAULT_MAPSIZE)))) {
        audit_set_err(s, err, errsz, "configure environment", rc);
        goto fail;
    }
    /* MDB_NOTLS: read transactions are not tied to a thread slot, so the CLI
     * may hold several (one per store, plus audit_info) and the glue's
     * threads never collide on reader slots */
    unsigned envflags = MDB_NOTLS | (s->rdonly ? MDB_RDONLY : MDB_NOMETASYNC);
    rc = mdb_env_open(s->env, dir, envflags, 0660);
    if (rc && s->rdonly && (rc == EACCES || rc == EROFS)) {
        /* a copied store on read-only media: no lock file possible.  Only
         * safe when nothing writes it, which is the case for such copies. */
        mdb_env_close(s->env);
        s->env = NULL;
        if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_maxdbs(s->env, 16)))
            goto envfail;
        mdb_env_set_assert(s->env, on_lmdb_assert);
        rc = mdb_env_open(s->env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0660);
    }
    if (rc) {
    envfail:
        audit_set_err(s, err, errsz, "open environment", rc);
        if (!s->damaged && data_file_short(dir) > 0) {
            /* LMDB reads the two meta pages with read(): a data.mdb too
             * short to hold them fails with whatever errno follows */
            snprintf(err, errsz,
                     "audit store %s: data.mdb is too short to hold its meta pages "
                     "(truncated or not an LMDB file)",
                     dir);
            s->damaged = 1;
        }
        goto fail;
    }
    /* clear reader slots left by crashed processes so they pin no pages */
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if (open_dbs(s, err, errsz) != DPOP_OK)
        goto fail;
    *out = s;
    return DPOP_OK;
fail:
    rc = s && s->damaged ? AUDIT_ERR_DAMAGED : DPOP_ERR;
    audit_close(s);
    return rc;
}

void audit_close(audit_store_t *s)
{
    if (!s)
        return;
    if (s->env) {
        if (!s->rdonly)
            mdb_env_sync(s->env, 1); /* NOMETASYNC: make the last meta durable */
        mdb_env_close(s->env);
    }
    free(s->dir);
    free(s);
}

static int put_index(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t klen,
                     const unsigned char *seqb)
{
    MDB_val k = {klen, (void *)key}, v = {8, (void *)seqb};
    /* seqs grow, so the new one is the last duplicate of its key */
    int rc = mdb_put(txn, dbi, &k, &v, MDB_APPENDDUP);
    if (rc == MDB_KEYEXIST) /* not last (another store's seq order): plain insert */
        rc = mdb_put(txn, dbi, &k, &v, MDB_NODUPDATA);
    return rc;
}

int audit_append_encoded(audit_store_t *s, audit_enc_t *const *encs, size_t n, char *err,
                         size_t errsz)
{
    return audit_append_encoded_counts(s, encs, n, NULL, 0, err, errsz);
}

int audit_append_encoded_counts(audit_store_t *s, audit_enc_t *const *encs, size_t n,
                                const audit_count_t *counts, size_t nc, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    EVP_MD_CTX *ctx = NULL;
    unsigned char head[AUDIT_HASH_LEN];
    unsigned char *val = NULL;
    size_t valcap = 0;
    int rc = 0, ret = DPOP_ERR;
    const char *what = "append";

    if (s->rdonly) {
        snprintf(err, errsz, "audit store %s: opened read-only", s->dir);
        return DPOP_ERR;
    }
    if (n == 0 && nc == 0)
        return DPOP_OK;
    if (!(ctx = EVP_MD_CTX_new())) {
        snprintf(err, errsz, "audit store %s: out of memory", s->dir);
        return DPOP_ERR;
    }
    if ((rc = audit_txn_begin(s, 0, &txn))) {
        what = "begin write transaction";
        goto done;
    }
    /* The head is read inside the write transaction: no other writer can
     * append between this read and our commit. */
    uint64_t seq = audit_meta_u64(txn, s, "next_seq", 1);
    audit_meta_hash(txn, s, "head", head);
    for (size_t i = 0; i < n; i++, seq++) {
        const audit_enc_t *e = encs[i];
        size_t vlen = AUDIT_VAL_HDR + e->json_len;
        if (vlen > valcap) {
            unsigned char *nv = realloc(val, vlen);
            if (!nv) {
                rc = ENOMEM;
                goto done;
            }
            val = nv;
            valcap = vlen;
        }
        val[0] = AUDIT_FORMAT;
        audit_put_be64(val + AUDIT_VAL_TS, (uint64_t)e->ts_us);
        memcpy(val + AUDIT_VAL_PREV, head, AUDIT_HASH_LEN);
        if (audit_chain_hash(ctx, head, seq, e->ts_us, e->data, e->json_len,
                             val + AUDIT_VAL_HASH) != DPOP_OK) {
            what = "SHA-256";
            rc = AUDIT_RC_FAILED;
            goto done;
        }
        memcpy(val + AUDIT_VAL_HDR, e->data, e->json_len);
        memcpy(head, val + AUDIT_VAL_HASH, AUDIT_HASH_LEN);

        unsigned char seqb[8], tkey[16];
        audit_put_be64(seqb, seq);
        MDB_val k = {8, seqb}, v = {vlen, val};
        if ((rc = mdb_put(txn, s->events, &k, &v, MDB_APPEND))) {
            what = "write event";
            goto done;
        }
        audit_put_be64(tkey, (uint64_t)e->ts_us);
        memcpy(tkey + 8, seqb, 8);
        MDB_val tk = {16, tkey}, tv = {0, NULL};
        if ((rc = mdb_put(txn, s->ix_time, &tk, &tv, 0))) {
            what = "write time index";
            goto done;
        }
        for (int x = 0; x < AUDIT_IX_KEYS; x++) {
            if (e->key_len[x] == 0)
                continue;
            if ((rc = put_index(txn, s->ix[x], e->data + e->key_off[x], e->key_len[x], seqb))) {
                what = "write index";
                goto done;
            }
        }
    }
    what = "write counts";
    if (nc && (rc = audit_counts_put_txn(txn, s, counts, nc)))
        goto done;
    what = "write meta";
    if (n && (rc = audit_meta_put_u64(txn, s, "next_seq", seq)) == 0)
        rc = audit_meta_put(txn, s, "head", head, AUDIT_HASH_LEN);
done:
    /* a failed batch stores nothing of itself; earlier data stays intact */
    ret = audit_txn_end(s, txn, rc, what, err, errsz);
    EVP_MD_CTX_free(ctx);
    free(val);
    return ret;
}

int audit_append_batch(audit_store_t *s, const audit_event_t *const *evs, size_t n, char *err,
                       size_t errsz)
{
    audit_enc_t **encs = NULL;
    int ret = DPOP_ERR;
    size_t done = 0;
    if (!s || (n && !evs)) {
        snprintf(err, errsz, "audit store: invalid arguments");
        return DPOP_ERR;
    }
    if (n == 0)
        return DPOP_OK;
    if (!(encs = calloc(n, sizeof(*encs))))
        goto oom;
    for (; done < n; done++)
        if (!(encs[done] = audit_event_encode(evs[done])))
            goto oom;
    ret = audit_append_encoded(s, encs, n, err, errsz);
    goto out;
oom:
    snprintf(err, errsz, "audit store %s: cannot encode event (out of memory or bad time)", s->dir);
out:
    if (encs)
        for (size_t i = 0; i < done; i++)
            free(encs[i]);
    free(encs);
    return ret;
}

int audit_append(audit_store_t *s, const audit_event_t *ev, char *err, size_t errsz)
{
    return audit_append_batch(s, &ev, 1, err, errsz);
}

int audit_info(audit_store_t *s, audit_info_t *out, char *err, size_t errsz)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_stat st;
    MDB_val k, v;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = audit_txn_begin(s, MDB_RDONLY, &txn))) {
        audit_set_err(s, err, errsz, "begin read transaction", rc);
        return DPOP_ERR;
    }
    out->chain_start = audit_meta_u64(txn, s, "chain_start", 1);
    out->next_seq = audit_meta_u64(txn, s, "next_seq", 1);
    audit_meta_hash(txn, s, "head", out->head);
    if ((rc = mdb_stat(txn, s->events, &st)) == 0)
        out->events = st.ms_entries;
    if (rc == 0 && (rc = mdb_cursor_open(txn, s->ix_time, &c)) == 0) {
        if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 16)
            out->oldest_us = (int64_t)audit_get_be64(k.mv_data);
        if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 16)
            out->newest_us = (int64_t)audit_get_be64(k.mv_data);
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    if (rc) {
        audit_set_err(s, err, errsz, "read", rc);
        return DPOP_ERR;
    }
    return DPOP_OK;
}
