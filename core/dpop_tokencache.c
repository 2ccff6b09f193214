/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_tokencache.c: the verified-token cache (see dpop_tokencache.h).
 *
 * Key bytes: ath (43) | jwks generation (8) | alg mask (8) | size limit
 * (8) | presence flags (1) | issuer NUL | audience NUL: everything the
 * verdict of dpop_token_verify depends on apart from the clock.  Value: a
 * private copy of the verification result plus nbf.  A hit copies the
 * strings out under the cache lock, so an eviction racing with the request
 * never frees what the request reads.
 */
#include "dpop_tokencache.h"
#include "dpop_lru.h"
#include "dpop_proof.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* issuer and audience are configuration strings; longer ones are simply
 * not cached. */
#define TOKENCACHE_KEY_FIXED (DPOP_JKT_LEN + 3 * 8 + 1)
#define TOKENCACHE_MAX_KEY (TOKENCACHE_KEY_FIXED + 2 * 512 + 2)

struct dpop_tokencache {
    dpop_lru_t *lru;
};

typedef struct {
    dpop_token_result_t r; /* owned strings */
} cached_t;

static void cached_free(void *v)
{
    cached_t *e = v;
    dpop_token_result_clear(&e->r);
    free(e);
}

dpop_tokencache_t *dpop_tokencache_create(size_t capacity)
{
    dpop_tokencache_t *c;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    if (!(c->lru = dpop_lru_create(capacity ? capacity : DPOP_TOKENCACHE_DEFAULT,
                                   TOKENCACHE_MAX_KEY, cached_free))) {
        free(c);
        return NULL;
    }
    return c;
}

void dpop_tokencache_free(dpop_tokencache_t *c)
{
    if (!c)
        return;
    dpop_lru_free(c->lru);
    free(c);
}

size_t dpop_tokencache_size(const dpop_tokencache_t *c)
{
    return c ? dpop_lru_size(c->lru) : 0;
}

/* The cache key for (ath, p) into buf; 0 when it does not fit. */
static size_t make_key(const char *ath, const dpop_token_params_t *p, unsigned char *buf,
                       size_t cap)
{
    uint64_t gen = dpop_jwks_generation(p->jwks);
    uint64_t algs = (uint64_t)(p->algs ? p->algs : DPOP_ALG_MASK_DEFAULT);
    uint64_t max_size = (uint64_t)(p->max_size ? p->max_size : DPOP_TOKEN_MAX_DEFAULT);
    const char *iss = p->issuer ? p->issuer : "";
    const char *aud = p->audience ? p->audience : "";
    size_t il = strlen(iss) + 1, al = strlen(aud) + 1, n = 0;
    /* "no issuer check" and "issuer \"\"" differ: mark presence. */
    unsigned char present = (unsigned char)((p->issuer ? 1 : 0) | (p->audience ? 2 : 0));
    if (strlen(ath) != DPOP_JKT_LEN || TOKENCACHE_KEY_FIXED + il + al > cap)
        return 0;
    memcpy(buf, ath, DPOP_JKT_LEN);
    n = DPOP_JKT_LEN;
    memcpy(buf + n, &gen, 8);
    n += 8;
    memcpy(buf + n, &algs, 8);
    n += 8;
    memcpy(buf + n, &max_size, 8);
    n += 8;
    buf[n++] = present;
    memcpy(buf + n, iss, il);
    n += il;
    memcpy(buf + n, aud, al);
    return n + al;
}

static int copy_str(char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return 0;
    }
    return (*dst = strdup(src)) ? 0 : -1;
}

/* A deep copy of a verification result; -1 on ENOMEM (dst cleared). */
static int result_copy(dpop_token_result_t *dst, const dpop_token_result_t *src)
{
    *dst = *src;
    dst->sub = dst->client_id = dst->iss = dst->jkt = dst->kid = dst->scope = NULL;
    if (copy_str(&dst->sub, src->sub) || copy_str(&dst->client_id, src->client_id) ||
        copy_str(&dst->iss, src->iss) || copy_str(&dst->jkt, src->jkt) ||
        copy_str(&dst->kid, src->kid) || copy_str(&dst->scope, src->scope)) {
        dpop_token_result_clear(dst);
        return -1;
    }
    return 0;
}

typedef struct {
    const dpop_token_params_t *p;
    dpop_token_result_t *out;
} lookup_t;

/* Under the lock: the time checks of dpop_token_verify with this request's
 * clock and skew (an expired entry is stale and dropped), then the copy. */
static int still_valid(void *v, void *ctx)
{
    const cached_t *e = v;
    lookup_t *l = ctx;
    if (!dpop_token_in_window(&e->r, l->p->now, l->p->skew))
        return 0;
    return result_copy(l->out, &e->r) == 0;
}

int dpop_token_verify_cached(dpop_tokencache_t *c, const char *token, size_t len, const char *ath,
                             const dpop_token_params_t *p, dpop_token_result_t *r,
                             dpop_failure_t *f, int *hit)
{
    unsigned char key[TOKENCACHE_MAX_KEY];
    char own_ath[DPOP_JKT_LEN + 1];
    size_t klen = 0;
    cached_t *e;
    lookup_t l;
    int rc;

    if (hit)
        *hit = 0;
    if (c && r && p && p->jwks && token && len) {
        if (!ath && dpop_ath_compute(token, len, own_ath) == DPOP_OK)
            ath = own_ath;
        if (ath)
            klen = make_key(ath, p, key, sizeof(key));
    }
    if (klen) {
        dpop_failure_clear(f);
        dpop_token_result_init(r);
        l.p = p;
        l.out = r;
        if (dpop_lru_get(c->lru, key, klen, still_valid, &l)) {
            if (hit)
                *hit = 1;
            return DPOP_OK;
        }
    }
    rc = dpop_token_verify(token, len, p, r, f);
    if (rc != DPOP_OK || !klen)
        return rc;
    /* Remember the success; a failed copy only means no cache entry. */
    if ((e = malloc(sizeof(*e)))) {
        if (result_copy(&e->r, r) == 0)
            dpop_lru_put(c->lru, key, klen, e);
        else
            free(e);
    }
    return rc;
}
