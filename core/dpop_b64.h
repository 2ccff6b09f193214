/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_b64.h: strict base64url (RFC 7515 §2, RFC 4648 §5).
 *
 * Strict means: alphabet A-Z a-z 0-9 - _ only, no '=' padding, no
 * whitespace, no '+' or '/', and the unused low bits of the last character
 * must be zero (so every byte string has exactly one encoding; otherwise two
 * different proofs could carry the same signature bytes).
 *
 * Also lower-case hex (dpop_hex_encode), the other encoding of hash bytes
 * the project prints (memcached keys, audit alert ids).
 */
#ifndef DPOP_B64_H
#define DPOP_B64_H

#include <stddef.h>

/* Lower-case hex of in[0..n) into out, which holds 2n + 1 bytes
 * (NUL-terminated). */
void dpop_hex_encode(const unsigned char *in, size_t n, char *out);

/* Length of the encoding of n bytes (without terminator). */
size_t dpop_b64url_encoded_len(size_t n);

/* Encode into out (outsz >= encoded_len + 1); returns the length written,
 * or (size_t)-1 when out is too small.  Always NUL-terminates on success. */
size_t dpop_b64url_encode_buf(const unsigned char *in, size_t n, char *out, size_t outsz);

/* Encode into a fresh string; caller frees with free().  NULL on ENOMEM. */
char *dpop_b64url_encode(const unsigned char *in, size_t n);

/* Strict decode of in[0..len) into out (outsz >= len * 3 / 4 + 1 is always
 * enough).  Returns DPOP_OK and sets *outlen, or DPOP_ERR on any
 * non-canonical input or a too-small buffer. */
int dpop_b64url_decode_buf(const char *in, size_t len, unsigned char *out, size_t outsz,
                           size_t *outlen);

/* Strict decode into a fresh buffer (NUL-terminated for convenience, the
 * terminator not counted in *outlen); caller frees *out with free(). */
int dpop_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

/* 1 if s[0..len) is a canonical base64url string of a 32-byte value (a
 * SHA-256 thumbprint or ath: 43 characters), else 0. */
int dpop_b64url_is_sha256(const char *s, size_t len);

/* out = base64url(SHA-256(in[0..n))), 43 characters and a NUL: the one
 * encoding of a JWK thumbprint (RFC 7638) and of ath (RFC 9449 §4.2).
 * Returns DPOP_OK, or DPOP_ERR (out = "") when the digest fails. */
int dpop_b64url_sha256(const void *in, size_t n, char out[44]);

#endif /* DPOP_B64_H */
