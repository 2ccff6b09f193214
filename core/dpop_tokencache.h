/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_tokencache.h: per-process cache of verified JWT access tokens.
 *
 * A client sends the same access token with every request until it
 * expires; verifying its signature again each time doubles the crypto of a
 * DPoP request.  The cache remembers what dpop_token_verify() concluded for
 * a token, keyed by the token's SHA-256 (the ath value the request computes
 * anyway) together with everything the verdict depended on: the key set's
 * generation (dpop_jwks_generation: a reloaded JWKS, e.g. with a revoked key,
 * never hits an older set's entries), the algorithm allow-list, the size
 * limit, the issuer and the audience.  The clock-dependent checks (exp, nbf, with the
 * caller's skew) are redone on every hit, and an expired entry is dropped.
 *
 * Only successes are cached (a failure costs an attacker nothing to repeat
 * and must be judged afresh).  Bounded (LRU, dpop_lru.h), thread-safe.
 *
 * Must never: hold the token itself (only its hash), or answer for a
 * token, key set or parameter set other than the one that was verified.
 */
#ifndef DPOP_TOKENCACHE_H
#define DPOP_TOKENCACHE_H

#include <stddef.h>

#include "dpop_token.h"

#define DPOP_TOKENCACHE_DEFAULT 4096

typedef struct dpop_tokencache dpop_tokencache_t;

/* capacity entries (0 -> DPOP_TOKENCACHE_DEFAULT).  NULL on ENOMEM or RNG
 * failure.  Caller frees with dpop_tokencache_free(). */
dpop_tokencache_t *dpop_tokencache_create(size_t capacity);
void dpop_tokencache_free(dpop_tokencache_t *c);
size_t dpop_tokencache_size(const dpop_tokencache_t *c);

/* dpop_token_verify() with the cache in front: same parameters, result and
 * failure contract.  ath is base64url(SHA-256(token)) when the caller has it
 * (NULL: computed here).  c NULL verifies without a cache.  *hit (may be
 * NULL) says whether the verdict came from the cache. */
int dpop_token_verify_cached(dpop_tokencache_t *c, const char *token, size_t len, const char *ath,
                             const dpop_token_params_t *p, dpop_token_result_t *r,
                             dpop_failure_t *f, int *hit);

#endif /* DPOP_TOKENCACHE_H */
