/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_keycache.c: bounded LRU cache from protected-header bytes to the
 * imported proof key (per process, shared by all threads).
 *
 * Why: a client repeats the same header (typ, alg, jwk) on every proof, and
 * re-importing its key (base64url, JSON, point validation, SHA-256
 * thumbprint) costs as much as a fast signature check.  The cache makes the
 * repeat path one hash of the header bytes, one memcmp and one list splice.
 *
 * Structure: a dpop_lru.h map (seeded hash, chain limit, one mutex) from the
 * header bytes to {key, alg}.  Keys are refcounted: a hit takes its own
 * reference under the lock, so an entry evicted while a request still uses
 * its key does not free it under that request.  Only headers that passed
 * every check may be inserted (caller's duty), and the cache never holds
 * secrets: proof keys are public.
 */
#include "dpop_keycache.h"
#include "dpop_lru.h"

#include <stdlib.h>

#define KEYCACHE_DEFAULT_CAPACITY 1024
#define KEYCACHE_MAX_HDR 8192 /* larger headers are not worth caching */

struct dpop_keycache {
    dpop_lru_t *lru;
};

typedef struct {
    dpop_jwk_t *key; /* one reference held by the cache */
    dpop_alg_t alg;
} cached_t;

static void cached_free(void *v)
{
    cached_t *e = v;
    dpop_jwk_free(e->key);
    free(e);
}

dpop_keycache_t *dpop_keycache_create(size_t capacity)
{
    dpop_keycache_t *c;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    if (!(c->lru = dpop_lru_create(capacity ? capacity : KEYCACHE_DEFAULT_CAPACITY,
                                   KEYCACHE_MAX_HDR, cached_free))) {
        free(c);
        return NULL;
    }
    return c;
}

void dpop_keycache_free(dpop_keycache_t *c)
{
    if (!c)
        return;
    dpop_lru_free(c->lru);
    free(c);
}

/* Under the cache lock: copy the entry into ctx with the caller's own
 * key reference. */
static int take_ref(void *v, void *ctx)
{
    cached_t *e = v;
    cached_t *h = ctx;
    h->key = dpop_jwk_ref(e->key);
    h->alg = e->alg;
    return 1;
}

dpop_jwk_t *dpop_keycache_get(dpop_keycache_t *c, const char *hdr, size_t len, dpop_alg_t *alg)
{
    cached_t h = {NULL, DPOP_ALG_INVALID};
    if (!c || !hdr || !dpop_lru_get(c->lru, hdr, len, take_ref, &h))
        return NULL;
    if (alg)
        *alg = h.alg;
    return h.key;
}

void dpop_keycache_put(dpop_keycache_t *c, const char *hdr, size_t len, dpop_jwk_t *k,
                       dpop_alg_t alg)
{
    cached_t *e;
    if (!c || !hdr || !len || !k || len > KEYCACHE_MAX_HDR || !(e = malloc(sizeof(*e))))
        return;
    e->key = dpop_jwk_ref(k);
    e->alg = alg;
    dpop_lru_put(c->lru, hdr, len, e);
}

size_t dpop_keycache_size(const dpop_keycache_t *c)
{
    return c ? dpop_lru_size(c->lru) : 0;
}
