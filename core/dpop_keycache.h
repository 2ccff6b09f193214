/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_keycache.h: per-process cache of imported proof keys.
 *
 * A repeated client sends the same protected header (typ, alg, jwk) on every
 * proof; importing the JWK (point-on-curve check, RSA parsing) and hashing its
 * thumbprint dominate the non-signature cost.  The cache maps the exact
 * base64url header bytes to the validated header outcome: the imported key,
 * its thumbprint and the alg.  Bounded, LRU, thread-safe (one mutex; critical
 * sections are a hash lookup and a list splice).
 */
#ifndef DPOP_KEYCACHE_H
#define DPOP_KEYCACHE_H

#include <stddef.h>

#include "dpop_alg.h"
#include "dpop_jwk.h"

typedef struct dpop_keycache dpop_keycache_t;

/* capacity entries (0 -> a default of 1024).  Caller frees with
 * dpop_keycache_free().  NULL on ENOMEM. */
dpop_keycache_t *dpop_keycache_create(size_t capacity);
void dpop_keycache_free(dpop_keycache_t *c);

/* Look up the key for header bytes hdr[0..len).  On a hit returns a key
 * reference the caller must release with dpop_jwk_free() (refcounted, so an
 * eviction during use is safe) and sets *alg.  NULL on a miss. */
dpop_jwk_t *dpop_keycache_get(dpop_keycache_t *c, const char *hdr, size_t len, dpop_alg_t *alg);
/* Insert (takes its own reference on k).  Only headers that passed every
 * header check (typ, alg, jwk) may be inserted. */
void dpop_keycache_put(dpop_keycache_t *c, const char *hdr, size_t len, dpop_jwk_t *k,
                       dpop_alg_t alg);
/* dpop_jwk_t references: +1 (returns k).  dpop_jwk_free() drops one. */
dpop_jwk_t *dpop_jwk_ref(dpop_jwk_t *k);

size_t dpop_keycache_size(const dpop_keycache_t *c);

#endif /* DPOP_KEYCACHE_H */
