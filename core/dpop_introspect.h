/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_introspect.h: OAuth 2.0 Token Introspection (RFC 7662) for opaque
 * DPoP-bound access tokens (RFC 9449 §6.2): the response judged into the
 * same record the JWT path fills (dpop_token_result_t), and the
 * private_key_jwt client assertion (RFC 7523 §2.2, §3) that authenticates
 * the resource server to the introspection endpoint.
 *
 * No I/O: the glue (mod_dpop_introspect.c) and dpopctl send the request
 * with dpop_fetch and hand the body here.
 *
 * Must never: copy a token into a result, a detail or a claim set.
 */
#ifndef DPOP_INTROSPECT_H
#define DPOP_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dpop_alg.h"
#include "dpop_result.h"
#include "dpop_token.h"

#define DPOP_INTROSPECT_MAX_BYTES (64 * 1024) /* DESIGN.md: introspection 64 KiB */
/* The response is not a usable RFC 7662 answer (not JSON, no boolean
 * "active"): the authorization server failed, not the token -> 503. */
#define DPOP_INTROSPECT_BAD_RESPONSE 2
#define DPOP_ASSERTION_LIFETIME 60 /* s, exp - iat of a client assertion */

typedef struct {
    const char *issuer;   /* NULL: not checked */
    const char *audience; /* NULL: not checked */
    int64_t now;
    int64_t skew;
} dpop_introspect_params_t;

/* Judge an introspection response body[0..len):
 *   DPOP_OK: active is true and iss, aud, exp, nbf pass; r holds sub,
 *     client_id, iss, scope, exp (0 when absent), nbf and cnf.jkt (NULL
 *     when unbound: the caller answers token_unbound);
 *   DPOP_ERR: token_invalid in f (inactive, wrong issuer or audience,
 *     expired, a claim of the wrong type);
 *   DPOP_INTROSPECT_BAD_RESPONSE: detail in f, the caller answers 503.
 * iss and aud are required when configured, as for a JWT; exp and nbf are
 * optional in RFC 7662 §2.2 and checked when present.  r: clear with
 * dpop_token_result_clear.  *active (may be NULL) gets the response's
 * "active" (0 when it has none). */
int dpop_introspect_parse(const char *body, size_t len, const dpop_introspect_params_t *p,
                          dpop_token_result_t *r, int *active, dpop_failure_t *f);

/* The form body of the request (RFC 7662 §2.1): token and
 * token_type_hint=access_token, plus for private_key_jwt the
 * client_assertion_type and client_assertion (RFC 7523 §2.2), plus
 * client_id when auth is none (RFC 6749 §2.3 public client) and client_id is
 * given.  *out caller frees with dpop_introspect_form_free (wiped: it holds
 * the token). */
int dpop_introspect_form(const char *token, const char *client_id, const char *assertion,
                         char **out);
void dpop_introspect_form_free(char *form);

/* RFC 7523 §3 client assertion: iss = sub = client_id, aud = the
 * introspection endpoint, a random jti, iat = now, exp = now +
 * DPOP_ASSERTION_LIFETIME; signed with key (alg, kid optional).  *out caller
 * frees. */
int dpop_client_assertion(EVP_PKEY *key, dpop_alg_t alg, const char *kid, const char *client_id,
                          const char *audience, int64_t now, char **out);

#endif /* DPOP_INTROSPECT_H */
