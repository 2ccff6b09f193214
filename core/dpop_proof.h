/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_proof.h: the DPoP proof check of RFC 9449 §4.3.
 *
 * Order of checks (first failure wins; reasons from dpop_result.h; the
 * step of RFC 9449 §4.3 in brackets):
 *   size (too_large) -> compact JWS + JSON [2] (malformed) -> typ [4]
 *   (bad_typ) -> alg in allow-list [5] (bad_alg) -> jwk [7] (bad_jwk /
 *   private_key_in_jwk; RSA 2048..4096 bits, DPOP_PROOF_RSA_MAX_BITS;
 *   kty/crv must fit alg: bad_alg) -> expected jkt [12]
 *   (jkt_mismatch) -> signature [6] (bad_signature) -> claims present and
 *   typed [3] (missing_claim / bad_claim) -> htm [8] (htm_mismatch) -> htu
 *   [9] (htu_mismatch) -> iat window [11] (iat_too_old / iat_in_future) ->
 *   ath [12] (ath_missing / ath_mismatch) -> nonce [10] (nonce_missing /
 *   nonce_invalid).
 * Step 1 (one DPoP header) is the caller's: it sees the header fields
 * (multiple_proofs).  Replay (jti) is NOT checked here: it needs shared
 * state; the caller does it with dpop_replay_key() after a successful
 * verify.
 */
#ifndef DPOP_PROOF_H
#define DPOP_PROOF_H

#include <stddef.h>
#include <stdint.h>

#include "dpop_alg.h"
#include "dpop_jwk.h"
#include "dpop_keycache.h"
#include "dpop_result.h"

#define DPOP_PROOF_MAX_DEFAULT 8192
#define DPOP_JTI_MAX 256

/* Nonce callback: 1 valid, 0 invalid/expired. */
typedef int (*dpop_nonce_check_fn)(void *ctx, const char *nonce, size_t len);

typedef struct {
    const char *method;       /* request method, compared exactly */
    const char *url;          /* request URI as the client saw it */
    const char *access_token; /* NULL: no token presented, ath not required */
    /* Optional: base64url(SHA-256(access_token)) when the caller has it
     * already; it must be the hash of access_token (never of another). */
    const char *access_token_ath;
    const char *expected_jkt; /* NULL: any key */
    /* Nonce: expected_nonce (exact match) or nonce_check (callback); with
     * neither, a nonce in the proof is ignored. */
    const char *expected_nonce;
    dpop_nonce_check_fn nonce_check;
    void *nonce_ctx;
    int64_t now;            /* unix seconds */
    int64_t max_age;        /* s; iat >= now - max_age - skew */
    int64_t skew;           /* s; iat <= now + skew */
    dpop_alg_mask_t algs;   /* 0 -> DPOP_ALG_MASK_DEFAULT */
    size_t max_size;        /* 0 -> DPOP_PROOF_MAX_DEFAULT */
    dpop_keycache_t *cache; /* optional */
} dpop_proof_params_t;

/* What the proof said; filled as far as parsing got, also on failure (the
 * audit store wants jkt/jti/htu of rejected proofs).  Strings are owned by the
 * result: free with dpop_proof_result_clear(). */
typedef struct {
    char jkt[DPOP_JKT_LEN + 1]; /* "" when unknown */
    char *jti;
    char *htm;
    char *htu;
    char *ath;
    char *nonce;
    int64_t iat; /* 0 when unknown */
    int has_iat;
    dpop_alg_t alg;
    int sig_checked; /* 1 when the signature was verified (either outcome) */
} dpop_proof_result_t;

/* Zero p, then defaults: max_age 300, skew 5, algs DPOP_ALG_MASK_DEFAULT,
 * max_size DPOP_PROOF_MAX_DEFAULT. */
void dpop_proof_params_init(dpop_proof_params_t *p);
void dpop_proof_result_init(dpop_proof_result_t *r);
void dpop_proof_result_clear(dpop_proof_result_t *r);

/* DPOP_OK when the proof passes every check above.  r (may be NULL) is
 * initialized here (any previous contents are overwritten, not freed):
 * always call dpop_proof_result_clear(r) afterwards, also on failure.
 * Optional claims ath and nonce, when present, must be non-empty strings
 * (bad_claim) even when they are not required.  An empty proof is
 * missing_proof.  f gets the first failure (reason, error, detail). */
int dpop_proof_verify(const char *proof, size_t len, const dpop_proof_params_t *p,
                      dpop_proof_result_t *r, dpop_failure_t *f);

/* What a proof CLAIMS, read without verifying it (no key import, no
 * signature, no bignum): for the audit record of a request that already
 * failed (its access token did), where verifying would spend a signature's
 * CPU on an unauthenticated sender (issue 15 item 7).  Fills r with the
 * claimed jti, htm, htu, iat, ath, nonce, the header alg and the RFC 7638
 * thumbprint of the header's jwk as given ("" when it has none or it is
 * malformed); none of it is verified.  DPOP_OK when the proof parsed as a
 * compact JWS of JSON objects within max_size (0 -> default), else DPOP_ERR
 * (r then holds nothing).  Always dpop_proof_result_clear(r) afterwards. */
int dpop_proof_peek(const char *proof, size_t len, size_t max_size, dpop_proof_result_t *r);

/* base64url(SHA-256(token)) into out (44 bytes): the ath value, also the
 * "token hash" the audit store records. */
int dpop_ath_compute(const char *token, size_t len, char out[DPOP_JKT_LEN + 1]);

/* Replay-cache key: SHA-256(jkt || jti), raw 32 bytes. */
int dpop_replay_key(const char *jkt, const char *jti, unsigned char out[32]);

/* Build a proof (dpopctl proof, tests, bench).  jti NULL -> 16 random bytes
 * base64url; iat 0 -> now; access_token/nonce optional.  *out caller frees. */
int dpop_proof_create(EVP_PKEY *key, const json_t *pub_jwk, dpop_alg_t alg, const char *method,
                      const char *url, const char *access_token, const char *nonce, int64_t iat,
                      const char *jti, char **out);

#endif /* DPOP_PROOF_H */
