/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_lru.h: a bounded, thread-safe LRU map from byte strings to owned
 * values, the one in-memory cache structure of the core (the proof key
 * cache and the access-token cache are thin layers over it).
 *
 * Open hash table with chaining plus a doubly-linked LRU list under one
 * pthread mutex; critical sections are a hash lookup, a memcmp and a list
 * splice.  The bucket hash is dpop_hash_bytes with a random seed, and a
 * per-bucket chain limit refuses inserts into long chains, so crafted keys
 * from the network cannot turn lookups into list walks.
 *
 * Must never: call back into the caller while it could block (visit runs
 * under the lock: copy or take a reference, nothing more); free a value a
 * caller still uses (values are freed only after their entry left the
 * table, outside the lock; callers that need a value beyond visit take
 * their own reference in visit).
 */
#ifndef DPOP_LRU_H
#define DPOP_LRU_H

#include <stddef.h>

typedef struct dpop_lru dpop_lru_t;

/* Frees one value (evicted, replaced, stale, or at dpop_lru_free). */
typedef void (*dpop_lru_free_fn)(void *value);

/* Runs under the lock on a hit.  Returns 1 to report the hit, 0 when the
 * value is stale: the entry is then dropped and the lookup is a miss. */
typedef int (*dpop_lru_visit_fn)(void *value, void *ctx);

/* capacity entries (> 0), keys of at most max_key bytes (longer keys are
 * never cached).  NULL on ENOMEM or when the RNG cannot seed the hash.
 * Caller frees with dpop_lru_free(), which frees every value. */
dpop_lru_t *dpop_lru_create(size_t capacity, size_t max_key, dpop_lru_free_fn free_value);
void dpop_lru_free(dpop_lru_t *c);

/* 1 on a hit (after visit accepted it; the entry becomes most recent),
 * 0 on a miss. */
int dpop_lru_get(dpop_lru_t *c, const void *key, size_t len, dpop_lru_visit_fn visit, void *ctx);

/* Insert value under key; the cache owns value from here on, also when it
 * declines it (key too long, chain too long, or another thread inserted the
 * same key first: the existing entry is kept, value freed).  The least
 * recently used entry is evicted when the cache is full. */
void dpop_lru_put(dpop_lru_t *c, const void *key, size_t len, void *value);

size_t dpop_lru_size(const dpop_lru_t *c);

#endif /* DPOP_LRU_H */
