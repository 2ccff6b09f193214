/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_sig.h: JWS signatures through OpenSSL EVP only (RFC 7518 §3, RFC 8037).
 *
 * ECDSA signatures are the JOSE raw R||S form of exactly 2 * coordinate size
 * bytes; they are converted to DER for OpenSSL here and nowhere else.  A DER
 * signature is rejected by its length.  High-S is valid (JOSE does not
 * require low-S).  PS*: salt length = hash length, MGF1 with the same hash.
 */
#ifndef DPOP_SIG_H
#define DPOP_SIG_H

#include <stddef.h>
#include <openssl/evp.h>

#include "dpop_alg.h"

/* 1 valid, 0 invalid (including wrong length/form), -1 internal error
 * (allocation, OpenSSL failure unrelated to the signature). */
int dpop_sig_verify(dpop_alg_t alg, EVP_PKEY *key, const unsigned char *msg, size_t msglen,
                    const unsigned char *sig, size_t siglen);

/* Verification contexts prepared once per (key, alg): a template is an
 * EVP_MD_CTX initialized for verification that dpop_sig_verify_with copies
 * instead of initializing afresh (the fetch and PSS setup are ~15% of an
 * RSA verification).  NULL when alg has no template (EdDSA), the key does
 * not fit or on error; then dpop_sig_verify_with initializes normally.
 * The template is only read (copied), so threads may share it.  Caller
 * frees with EVP_MD_CTX_free. */
EVP_MD_CTX *dpop_sig_verify_template(dpop_alg_t alg, EVP_PKEY *key);
/* dpop_sig_verify with an optional template from dpop_sig_verify_template
 * for the same alg and key; same results. */
int dpop_sig_verify_with(dpop_alg_t alg, EVP_PKEY *key, const EVP_MD_CTX *tmpl,
                         const unsigned char *msg, size_t msglen, const unsigned char *sig,
                         size_t siglen);

/* Sign msg; *sig is JOSE form (raw R||S for ECDSA), caller frees with free(). */
int dpop_sig_sign(dpop_alg_t alg, EVP_PKEY *key, const unsigned char *msg, size_t msglen,
                  unsigned char **sig, size_t *siglen);

#endif /* DPOP_SIG_H */
