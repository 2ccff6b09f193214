/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_pct.c: RFC 3986 §2.1 percent-encoding primitives (see dpop_pct.h).
 * Holds no state; never reads beyond avail bytes.
 */
#include "dpop_pct.h"

int dpop_pct_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int dpop_pct_decode(const char *s, size_t avail, unsigned char *out)
{
    int hi, lo;
    if (!s || avail < 3 || s[0] != '%')
        return -1;
    hi = dpop_pct_hexval((unsigned char)s[1]);
    lo = dpop_pct_hexval((unsigned char)s[2]);
    if (hi < 0 || lo < 0)
        return -1;
    *out = (unsigned char)(hi << 4 | lo);
    return 0;
}
