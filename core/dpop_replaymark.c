/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_replaymark.c: loss markers of network replay stores.  See
 * dpop_replaymark.h.
 */
#include "dpop_replaymark.h"

#define MARK_MAX ((int64_t)1 << 40) /* year 36812: beyond any real clock */

int64_t dpop_replaymark_new(int64_t now)
{
    return now + 1;
}

int dpop_replaymark_parse(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    size_t i;
    if (!s || len == 0 || len > DPOP_REPLAYMARK_MAX_LEN)
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v >= MARK_MAX)
            return -1; /* also stops any overflow: 20 digits exceed 2^40 early */
    }
    if (v <= 0)
        return -1;
    *out = v;
    return 0;
}

int dpop_replaymark_refuses(int64_t marker, int64_t iat, int skew)
{
    /* marker < 2^40 and skew <= 3600 (DPOP_MAX_SKEW): no overflow. */
    return iat < marker + (int64_t)(skew > 0 ? skew : 0);
}
