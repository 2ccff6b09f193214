/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_sha256.h: SHA-256 for the request path (ath, token hash, replay key,
 * thumbprints) through one EVP_MD fetched once per process.
 *
 * Why: with OpenSSL 3, EVP_sha256() handed to EVP_Digest* triggers an
 * implicit fetch on every call (a lookup in the locked method store); a
 * DPoP request hashes three or four times, from many threads at once.
 *
 * Must never: be used as a MAC (nonces use HMAC in dpop_nonce.c).
 */
#ifndef DPOP_SHA256_H
#define DPOP_SHA256_H

#include <stddef.h>

#include <openssl/evp.h>

/* The fetched SHA-256 implementation (NULL only if OpenSSL has none). */
const EVP_MD *dpop_sha256_md(void);

/* out = SHA-256(a[0..an) || b[0..bn)); b may be NULL when bn is 0.
 * DPOP_OK or DPOP_ERR. */
int dpop_sha256(const void *a, size_t an, const void *b, size_t bn, unsigned char out[32]);

#endif /* DPOP_SHA256_H */
