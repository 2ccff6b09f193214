/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_jwk.h: JSON Web Keys (RFC 7517/7518 §6, RFC 8037) as OpenSSL keys,
 * and RFC 7638 thumbprints.
 *
 * Public import is strict: EC P-256/384/521 with the point on the curve and
 * coordinates of the curve's exact length, RSA with modulus >= 2048 bits (and
 * at most 16384, or the caller's smaller bound) and an odd exponent >= 3, OKP
 * Ed25519.  Any private member (d p q dp dq qi oth k)
 * is reported as DPOP_REASON_PRIVATE_KEY_IN_JWK.
 */
#ifndef DPOP_JWK_H
#define DPOP_JWK_H

#include <jansson.h>
#include <openssl/evp.h>

#include "dpop_alg.h"
#include "dpop_result.h"

#define DPOP_JKT_LEN 43 /* base64url(SHA-256) */
#define DPOP_RSA_MIN_BITS 2048
/* Largest RSA modulus for any key we import (the authorization server's
 * JWKS keys: administrator-chosen, verified once per token and cached). */
#define DPOP_RSA_MAX_BITS 16384
/* Largest RSA modulus of a DPoP proof key (issue 15 item 7): the jwk is
 * attacker-chosen and verified before the client is known, and RSA verify
 * cost grows with the square of the modulus (16384 bits: ~5 ms a request).
 * 4096 bits is what clients use; bigger is bad_jwk, before any bignum. */
#define DPOP_PROOF_RSA_MAX_BITS 4096

typedef enum { DPOP_KTY_NONE = 0, DPOP_KTY_EC, DPOP_KTY_RSA, DPOP_KTY_OKP } dpop_kty_t;

typedef struct dpop_jwk dpop_jwk_t; /* opaque */

/* Import a public JWK (RSA moduli up to DPOP_RSA_MAX_BITS).  Failures use
 * DPOP_REASON_BAD_JWK or DPOP_REASON_PRIVATE_KEY_IN_JWK.  *out: caller frees
 * with dpop_jwk_free(). */
int dpop_jwk_import_public(const json_t *jwk, dpop_jwk_t **out, dpop_failure_t *f);
/* The same with RSA moduli up to rsa_max_bits (a multiple of 8, at most
 * DPOP_RSA_MAX_BITS): a larger one is bad_jwk, refused by its length before
 * it is decoded or built (DPoP proof keys: DPOP_PROOF_RSA_MAX_BITS). */
int dpop_jwk_import_public_bounded(const json_t *jwk, int rsa_max_bits, dpop_jwk_t **out,
                                   dpop_failure_t *f);
void dpop_jwk_free(dpop_jwk_t *k);

EVP_PKEY *dpop_jwk_pkey(const dpop_jwk_t *k); /* borrowed */
dpop_kty_t dpop_jwk_kty(const dpop_jwk_t *k);
const char *dpop_jwk_thumbprint(const dpop_jwk_t *k); /* 43 chars, NUL-terminated */
/* kid/use/alg/key_ops members as given (borrowed; NULL when absent). */
const char *dpop_jwk_kid(const dpop_jwk_t *k);
const char *dpop_jwk_use(const dpop_jwk_t *k);
const char *dpop_jwk_alg(const dpop_jwk_t *k);
/* 1 if this key may verify signatures made with alg: kty/crv/size fit alg,
 * and (for JWKS keys) no "alg" member contradicts it and use/key_ops allow
 * verification.  0 otherwise. */
int dpop_jwk_fits_alg(const dpop_jwk_t *k, dpop_alg_t alg);

/* dpop_sig_verify(alg, dpop_jwk_pkey(k), ...) with a verification context
 * prepared once per key and alg and kept in k (faster for repeated keys,
 * e.g. from the key cache or a JWKS).  Same results: 1 / 0 / -1.
 * Thread-safe. */
int dpop_jwk_verify(const dpop_jwk_t *k, dpop_alg_t alg, const unsigned char *msg, size_t msglen,
                    const unsigned char *sig, size_t siglen);

/* RFC 7638 thumbprint of a public JWK JSON object (required members only,
 * lexicographic order, no whitespace): out gets 43 chars + NUL. */
int dpop_jwk_thumbprint_json(const json_t *jwk, char out[DPOP_JKT_LEN + 1], dpop_failure_t *f);

/* Private keys, for dpopctl keygen/proof and for tests. */
/* New key for alg (RSA: 2048 bits; PS and RS share RSA keys).  *priv_jwk is a
 * private JWK (with "alg"); caller frees with json_decref. */
int dpop_jwk_generate(dpop_alg_t alg, json_t **priv_jwk);
/* Load a private JWK (the inverse of generate): *pkey caller frees with
 * EVP_PKEY_free; *pub_jwk is its public JWK (caller json_decref). */
int dpop_jwk_import_private(const json_t *jwk, EVP_PKEY **pkey, json_t **pub_jwk, char *err,
                            size_t errsz);

/* The alg a private JWK (json) signs with: its "alg" member, else RS256
 * (RSA), EdDSA (OKP), ES256/ES384/ES512 (EC by crv); DPOP_ALG_INVALID when
 * none fits. */
dpop_alg_t dpop_jwk_private_alg(const json_t *jwk);

#endif /* DPOP_JWK_H */
