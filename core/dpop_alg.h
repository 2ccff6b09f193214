/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_alg.h: the JWS algorithms mod_dpop knows (RFC 7518 §3, RFC 8037 §3.1)
 * and allow-list masks.  "none" and every HMAC algorithm are deliberately
 * absent: they can never be allowed, so they parse as DPOP_ALG_INVALID.
 */
#ifndef DPOP_ALG_H
#define DPOP_ALG_H

#include <stddef.h>

typedef enum {
    DPOP_ALG_INVALID = 0,
    DPOP_ALG_ES256,
    DPOP_ALG_ES384,
    DPOP_ALG_ES512,
    DPOP_ALG_PS256,
    DPOP_ALG_PS384,
    DPOP_ALG_PS512,
    DPOP_ALG_RS256,
    DPOP_ALG_RS384,
    DPOP_ALG_RS512,
    DPOP_ALG_EDDSA, /* Ed25519 only */
    DPOP_ALG__COUNT
} dpop_alg_t;

/* Bit mask of allowed algorithms: bit (1u << alg). */
typedef unsigned dpop_alg_mask_t;
#define DPOP_ALG_BIT(a) (1u << (unsigned)(a))
/* ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA */
#define DPOP_ALG_MASK_DEFAULT (((1u << DPOP_ALG__COUNT) - 1u) & ~1u)

/* "ES256" -> DPOP_ALG_ES256; exact, case-sensitive (RFC 7515 §4.1.1). */
dpop_alg_t dpop_alg_from_name(const char *name);
const char *dpop_alg_name(dpop_alg_t alg);

/* Parse a list separated by commas and/or spaces ("ES256,EdDSA").  An unknown
 * or forbidden name (none, HS256...) fails with a message in err naming it.
 * An empty list is an error. */
int dpop_alg_mask_parse(const char *list, dpop_alg_mask_t *mask, char *err, size_t errsz);

/* Space-separated names in table order ("ES256 PS256"), for the
 * WWW-Authenticate algs attribute.  Returns the length, truncating safely. */
size_t dpop_alg_mask_format(dpop_alg_mask_t mask, char *out, size_t outsz);

#endif /* DPOP_ALG_H */
