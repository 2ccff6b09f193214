/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_internal.h: the on-disk layout of the audit store, shared by the
 * files of logger/ only (store, writer, query, verify, prune).  Never include
 * it outside logger/: the layout is not an API.
 *
 * One LMDB environment, named databases:
 *   events         seq (8 bytes big-endian) -> value (below)
 *   ix_jkt, ix_jti, ix_token_hash, ix_client_ip, ix_reason
 *                  field value -> seq (MDB_DUPSORT|MDB_DUPFIXED)
 *   ix_time        ts_us (8 BE) || seq (8 BE) -> empty
 *   meta           "format" "1", "next_seq", "head", "chain_start",
 *                  "chain_prev", "pruned_before", "pruned_count",
 *                  "ckpt" || seq (8 BE) -> hash (32) || ts_us (8 BE): the
 *                  checkpoints prune leaves, one per pruned chunk; the one at
 *                  chain_start - 1 is the hash the first stored event links to
 *   counts         per-hour request counts (audit_counts.c), outside the chain
 * Event value: [0] format 1, [1..8] ts_us BE, [9..40] prev hash,
 *              [41..72] hash, [73..] canonical JSON (audit_event.c).
 * hash = SHA-256(prev || seq BE || ts_us BE || JSON).
 */
#ifndef AUDIT_INTERNAL_H
#define AUDIT_INTERNAL_H

#include "audit_event.h"
#include "dpop_audit.h"

#include <lmdb.h>
#include <openssl/evp.h>

#define AUDIT_FORMAT 1
#define AUDIT_HASH_LEN 32
#define AUDIT_VAL_TS 1
#define AUDIT_VAL_PREV 9
#define AUDIT_VAL_HASH (AUDIT_VAL_PREV + AUDIT_HASH_LEN)
#define AUDIT_VAL_HDR (AUDIT_VAL_HASH + AUDIT_HASH_LEN)

struct audit_store {
    MDB_env *env;
    MDB_dbi events;
    MDB_dbi ix[AUDIT_IX_KEYS];
    MDB_dbi ix_time;
    MDB_dbi meta;
    int rdonly;
    int nocreate; /* AUDIT_OPEN_NOCREATE */
    int damaged;  /* an error said the file is damaged (audit_store_damaged) */
    char *dir;
};

void audit_put_be64(unsigned char *p, uint64_t v);
uint64_t audit_get_be64(const unsigned char *p);

/* hash = SHA-256(prev || seq || ts || json) through EVP (ctx reused). */
int audit_chain_hash(EVP_MD_CTX *ctx, const unsigned char *prev, uint64_t seq, int64_t ts_us,
                     const char *json, size_t json_len, unsigned char *out);

/* Meta accessors inside a transaction; dflt when the key is absent. */
uint64_t audit_meta_u64(MDB_txn *txn, const audit_store_t *s, const char *key, uint64_t dflt);
void audit_meta_hash(MDB_txn *txn, const audit_store_t *s, const char *key, unsigned char *out);
int audit_meta_put_u64(MDB_txn *txn, const audit_store_t *s, const char *key, uint64_t v);
int audit_meta_put(MDB_txn *txn, const audit_store_t *s, const char *key, const void *v, size_t n);

/* Begin a transaction, adopting a map grown by another process. */
int audit_txn_begin(audit_store_t *s, unsigned flags, MDB_txn **txn);

/* Append pre-encoded events in one write transaction (the writer's path). */
int audit_append_encoded(audit_store_t *s, audit_enc_t *const *encs, size_t n, char *err,
                         size_t errsz);

/* The same with per-hour counts added in that transaction (either may be
 * empty). */
int audit_append_encoded_counts(audit_store_t *s, audit_enc_t *const *encs, size_t n,
                                const audit_count_t *counts, size_t nc, char *err, size_t errsz);
/* Add counts inside a write transaction (audit_counts.c). */
int audit_counts_put_txn(MDB_txn *txn, audit_store_t *s, const audit_count_t *c, size_t n);

/* A failure that has no LMDB/errno code (a hash that failed, ENOMEM
 * handled as such): reported as "failed". */
#define AUDIT_RC_FAILED (-1)
/* data.mdb is shorter than the pages its meta page claims (a partial copy):
 * reading those pages through the map would raise SIGBUS. */
#define AUDIT_RC_TRUNCATED (-2)

/* Checkpoint keys in meta: "ckpt" || seq BE. */
#define AUDIT_CKPT_PREFIX "ckpt"
#define AUDIT_CKPT_KEY_LEN 12
#define AUDIT_CKPT_VAL_LEN (AUDIT_HASH_LEN + 8)
void audit_ckpt_key(unsigned char *key, uint64_t seq);

/* End a transaction: commit it when rc is 0, else abort it (txn may be NULL
 * when begin failed).  DPOP_OK only when committed; otherwise err says what
 * failed ("commit" when the commit itself did). */
int audit_txn_end(audit_store_t *s, MDB_txn *txn, int rc, const char *what, char *err,
                  size_t errsz);

/* Format "audit store DIR: what: mdb error" into err; an error that says
 * the file is damaged (MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID,
 * truncated...) also marks the store damaged. */
void audit_set_err(audit_store_t *s, char *err, size_t errsz, const char *what, int rc);
int audit_rc_damaged(int rc);

#endif /* AUDIT_INTERNAL_H */
