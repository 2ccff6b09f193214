/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_nonce.h: stateless server nonces (RFC 9449 §8).
 *
 * nonce = base64url(bucket (8 bytes, big-endian) || HMAC-SHA256(secret,
 * "mod_dpop nonce v1" || bucket)[0..16)), bucket = floor(now / lifetime).
 * A nonce is valid for its own bucket and the previous one, so a nonce lives
 * between lifetime and 2 * lifetime seconds; every server sharing the secret
 * issues and accepts the same nonces (no shared state).  Comparison is
 * constant-time.  The secret never leaves this file's functions.
 */
#ifndef DPOP_NONCE_H
#define DPOP_NONCE_H

#include <stddef.h>
#include <stdint.h>

#define DPOP_NONCE_SECRET_MIN 32
#define DPOP_NONCE_LEN 32 /* base64url of 24 bytes */

/* out needs DPOP_NONCE_LEN + 1 bytes. */
int dpop_nonce_make(const unsigned char *secret, size_t secretlen, int64_t now, int64_t lifetime,
                    char *out, size_t outsz);

/* 1 valid for now (current or previous bucket), 0 otherwise.  *fresh (may be
 * NULL) is set to 1 when the nonce is from the current bucket, 0 when it is
 * from the previous one (the server should send the next nonce). */
int dpop_nonce_check(const unsigned char *secret, size_t secretlen, int64_t now, int64_t lifetime,
                     const char *nonce, size_t len, int *fresh);

/* Read a secret file (>= DPOP_NONCE_SECRET_MIN bytes of content, trailing
 * newline ignored).  *secret caller frees with OPENSSL_clear_free(). */
int dpop_nonce_secret_load(const char *path, unsigned char **secret, size_t *len, char *err,
                           size_t errsz);

#endif /* DPOP_NONCE_H */
