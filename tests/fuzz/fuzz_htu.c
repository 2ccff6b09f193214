/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_htu.c: libFuzzer target for htu normalization and comparison
 * (RFC 9449 §4.3 (9), RFC 3986 §6.2.2/§6.2.3).  The input is two URIs
 * separated by a NUL byte.  Properties checked (abort on violation):
 * normalization is idempotent, its output fits the documented buffer size
 * (strlen + 2), equality is symmetric, and a URI equals itself exactly when
 * it normalizes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_htu.h"
#include "dpop_result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_one(const char *u)
{
    static char out[DPOP_HTU_MAX + 64], again[DPOP_HTU_MAX + 64], small[DPOP_HTU_MAX + 64];
    size_t n = strlen(u);
    int ok = dpop_htu_normalize(u, out, sizeof(out)) == DPOP_OK;
    if (ok) {
        if (dpop_htu_normalize(out, again, sizeof(again)) != DPOP_OK || strcmp(out, again) != 0)
            abort(); /* not idempotent */
        if (n + 2 <= sizeof(small) &&
            (dpop_htu_normalize(u, small, n + 2) != DPOP_OK || strcmp(small, out) != 0))
            abort(); /* strlen + 2 must suffice */
    }
    if (dpop_htu_equal(u, u) != ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    const char *a, *b;
    if (size > DPOP_HTU_MAX + 16)
        return 0;
    if (!(buf = malloc(size + 2)))
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    buf[size + 1] = '\0';
    a = buf;
    b = buf + strlen(buf) + 1; /* after the first NUL (or the empty string) */
    if (b > buf + size)
        b = buf + size + 1;
    check_one(a);
    check_one(b);
    if (dpop_htu_equal(a, b) != dpop_htu_equal(b, a))
        abort();
    free(buf);
    return 0;
}
