/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_ct.h: constant-time equality for secret-derived values.
 *
 * Every comparison whose timing could tell a client how much of a value it
 * guessed goes through here: the proof's ath against the hash of the access
 * token, a nonce's HMAC tag against the one we compute, a nonce against the
 * expected one, the proof key's thumbprint against the token's cnf.jkt.
 * tests/unit/ct_grep_test.sh fails the build if one of them is compared with
 * memcmp/strcmp/strncmp again, or with CRYPTO_memcmp outside dpop_ct.c.
 *
 * Must never: return early on the first differing byte.  Only the lengths
 * (public: ath and jkt are 43 characters, tags 16 bytes) decide before the
 * bytes are looked at.
 */
#ifndef DPOP_CT_H
#define DPOP_CT_H

#include <stddef.h>

/* 1 when a[0..alen) and b[0..blen) hold the same bytes, else 0.  The time
 * taken depends on the lengths only, never on the contents.  Different
 * lengths, a NULL pointer or an empty value never match (no secret we
 * compare is empty, so an empty one is an error, not a match). */
int dpop_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* dpop_ct_equal over two NUL-terminated strings (strlen's time depends on
 * the lengths only). */
int dpop_ct_streq(const char *a, const char *b);

#endif /* DPOP_CT_H */
