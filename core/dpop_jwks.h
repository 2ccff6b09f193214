/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_jwks.h: a verification key set (RFC 7517 §5) and JWS verification
 * against it: used for access tokens (the authorization server's keys) and
 * by dpopctl jws-verify.
 *
 * Key selection: if the JWS header has "kid", only keys with that kid are
 * candidates; otherwise every key whose kty/crv fits the alg.  Keys whose
 * use/key_ops forbid verification or whose "alg" contradicts the JWS alg are
 * excluded.  Unusable keys in the set (unknown kty, weak RSA) are skipped at
 * load time, counted, and reported via dpop_jwks_skipped().
 */
#ifndef DPOP_JWKS_H
#define DPOP_JWKS_H

#include <stddef.h>
#include <stdint.h>

#include "dpop_jwk.h"
#include "dpop_jws.h"

#define DPOP_JWKS_MAX_KEYS 64
/* DESIGN.md token sources: fetched metadata and JWKS are bounded at 1 MiB;
 * a file is held to the same bound. */
#define DPOP_JWKS_MAX_BYTES (1024 * 1024)
/* Bound of a decoded JWS header dpop_jwks_kid_unknown looks into. */
#define DPOP_JWKS_KID_HDR_MAX 4096

typedef struct dpop_jwks dpop_jwks_t; /* opaque, immutable after load: thread-safe */

/* Parse a JWK Set {"keys":[...]} or a single JWK.  Zero usable keys is an
 * error.  err gets a human message.  *out: caller frees with dpop_jwks_free. */
int dpop_jwks_parse(const char *json, size_t len, dpop_jwks_t **out, char *err, size_t errsz);
int dpop_jwks_load_file(const char *path, dpop_jwks_t **out, char *err, size_t errsz);
void dpop_jwks_free(dpop_jwks_t *s);
size_t dpop_jwks_count(const dpop_jwks_t *s);
size_t dpop_jwks_skipped(const dpop_jwks_t *s);
/* An id unique to this loaded set within the process (never 0 for a set):
 * caches of what a set verified key their entries with it, so a reloaded
 * set (a revoked key) never answers from an older set's verdicts. */
uint64_t dpop_jwks_generation(const dpop_jwks_t *s);

/* Verify jws against the set with an algorithm allow-list.  On success
 * *kid_out (may be NULL) gets the matching key's kid (borrowed from the set,
 * NULL if it has none).  Failure reasons: DPOP_REASON_BAD_ALG (alg unknown or
 * not allowed), DPOP_REASON_BAD_SIGNATURE (no candidate key or no candidate
 * verifies); internal errors also fail (closed). */
int dpop_jwks_verify(const dpop_jwks_t *s, const dpop_jws_t *jws, dpop_alg_mask_t algs,
                     const char **kid_out, dpop_failure_t *f);

/* 1 when the compact JWS names in its header a kid that no key of s
 * carries (a key the authorization server may have rotated in: the caller
 * refreshes a fetched set, rate-limited); 0 when the kid is known, absent,
 * or the header cannot be read (verification then fails on its own). */
int dpop_jwks_kid_unknown(const dpop_jwks_t *s, const char *compact, size_t len);

#endif /* DPOP_JWKS_H */
