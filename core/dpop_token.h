/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_token.h: JWT access-token validation (RFC 7519, RFC 9068 profile
 * where it matters, RFC 9449 §6 cnf.jkt).
 *
 * Checks: compact JWS signed by a key of the configured JWKS with an allowed
 * alg; typ, when present, is "at+jwt", "JWT" or "application/at+jwt"
 * (case-insensitive); iss equals the configured issuer (when configured); aud
 * (string or array) contains the configured audience (when configured); exp
 * required and > now - skew; nbf (optional) <= now + skew; iat, if present,
 * numeric.  All failures are DPOP_REASON_TOKEN_INVALID with the specific
 * cause in detail.  Binding (cnf.jkt, and whether cnf names any
 * confirmation method) is extracted, not judged: the caller decides
 * token_unbound / jkt_mismatch / bearer_downgrade.
 */
#ifndef DPOP_TOKEN_H
#define DPOP_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "dpop_jwks.h"
#include "dpop_result.h"

#define DPOP_TOKEN_MAX_DEFAULT (16 * 1024)

typedef struct {
    const dpop_jwks_t *jwks; /* required */
    const char *issuer;      /* NULL: not checked */
    const char *audience;    /* NULL: not checked */
    int64_t now;
    int64_t skew;
    dpop_alg_mask_t algs; /* 0 -> default */
    size_t max_size;      /* 0 -> DPOP_TOKEN_MAX_DEFAULT */
} dpop_token_params_t;

/* Owned strings (NULL when absent); free with dpop_token_result_clear. */
typedef struct {
    char *sub;
    char *client_id; /* client_id, else azp */
    char *iss;
    char *jkt; /* cnf.jkt; NULL when the token has no DPoP binding */
    /* 1 when cnf holds any confirmation method (RFC 7800 §3.1: jkt,
     * x5t#S256 of RFC 8705, jwk, kid, jku, ... or one not yet defined): the
     * token is sender-constrained and must never be accepted as Bearer. */
    int cnf_bound;
    char *kid; /* key that verified it */
    char *scope;
    int64_t exp;
    int64_t nbf; /* when has_nbf */
    int has_nbf;
    int64_t iat;
    dpop_alg_t alg;
} dpop_token_result_t;

void dpop_token_result_init(dpop_token_result_t *r);
void dpop_token_result_clear(dpop_token_result_t *r);

/* RFC 9068 §4: structure (RFC 7519 §7.2), typ, signature, then the claims
 * (dpop_token_check_claims), the first failure wins.  r (may be NULL) is
 * initialized here; call dpop_token_result_clear(r) afterwards, also on
 * failure. */
int dpop_token_verify(const char *token, size_t len, const dpop_token_params_t *p,
                      dpop_token_result_t *r, dpop_failure_t *f);

/* The claim checks of dpop_token_verify, on a claims object already known
 * to come from the authorization server (a verified JWT's payload, or an
 * RFC 7662 introspection response, whose members have the same names and
 * meanings): iss (p->issuer), aud (p->audience), exp (required, with
 * p->skew), nbf, iat, sub/scope/client_id/azp, cnf.jkt, in that order, all
 * failures token_invalid (f is cleared first, like dpop_token_verify's).
 * p->jwks, algs and max_size are not used.  r must be initialized
 * (dpop_token_result_init); it gets iss, exp, nbf, iat, sub, scope,
 * client_id and jkt (free with dpop_token_result_clear). */
int dpop_token_check_claims(const json_t *claims, const dpop_token_params_t *p,
                            dpop_token_result_t *r, dpop_failure_t *f);

/* 1 when a verified token (r, from dpop_token_verify) is still inside its
 * exp/nbf window at now with this skew (a negative skew counts as 0), by the
 * same rule dpop_token_verify applies: the token cache rechecks with it. */
int dpop_token_in_window(const dpop_token_result_t *r, int64_t now, int64_t skew);

/* Sign a token (tests, demo, bench): claims JSON object, private key, alg,
 * optional kid.  *out caller frees. */
int dpop_token_create(EVP_PKEY *key, dpop_alg_t alg, const char *kid, const json_t *claims,
                      char **out);

#endif /* DPOP_TOKEN_H */
