/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_ct.c: constant-time equality (see dpop_ct.h), a thin wrapper over
 * OpenSSL's CRYPTO_memcmp so that the length rules live in one place.
 *
 * Must never: use memcmp, strcmp or a loop that stops at the first
 * difference.
 */
#include "dpop_ct.h"

#include <string.h>

#include <openssl/crypto.h>

int dpop_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    /* The lengths are public (fixed-size hashes, tags and thumbprints), so
     * deciding on them first leaks nothing else. */
    if (!a || !b || alen == 0 || alen != blen)
        return 0;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int dpop_ct_streq(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    return dpop_ct_equal(a, strlen(a), b, strlen(b));
}
