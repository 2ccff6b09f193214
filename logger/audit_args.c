/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_args.c: filter value checks for dpop-audit (reason codes with a
 * did-you-mean, IP literals).  The reason vocabulary is the core's
 * (dpop_reason_name), so a code added to DESIGN.md is accepted here at once.
 */
#include "audit_args.h"
#include "dpop_result.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 64

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions: "replya" is one edit from "replay"). */
static size_t osa_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];
    if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
        return (size_t)-1;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    }
    return d[la][lb];
}

const char *audit_args_reason_suggest(const char *name)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, len = strlen(name);
    for (int r = DPOP_REASON_NONE + 1; r < DPOP_REASON__COUNT; r++) {
        const char *cand = dpop_reason_name((dpop_reason_t)r);
        size_t d = cand ? osa_distance(name, cand) : (size_t)-1;
        if (d < best_d) {
            best_d = d;
            best = cand;
        }
    }
    /* close enough to be a typo, not another word */
    return best && best_d <= 2 && best_d * 2 < len ? best : NULL;
}

int audit_args_reason(const char *name, char *msg, size_t msgsz)
{
    if (dpop_reason_from_name(name) != DPOP_REASON_NONE)
        return DPOP_OK;
    const char *s = audit_args_reason_suggest(name);
    int n;
    if (s) {
        snprintf(msg, msgsz, "unknown reason '%s' (did you mean '%s'?)", name, s);
        return DPOP_ERR;
    }
    n = snprintf(msg, msgsz, "unknown reason '%s'; reasons:", name);
    for (int r = DPOP_REASON_NONE + 1; r < DPOP_REASON__COUNT && n > 0 && (size_t)n < msgsz; r++)
        n += snprintf(msg + n, msgsz - (size_t)n, " %s", dpop_reason_name((dpop_reason_t)r));
    return DPOP_ERR;
}

int audit_args_ip(const char *in, char *out, size_t outsz)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, in, buf) == 1)
        return inet_ntop(AF_INET, buf, out, (socklen_t)outsz) ? DPOP_OK : DPOP_ERR;
    if (inet_pton(AF_INET6, in, buf) == 1)
        return inet_ntop(AF_INET6, buf, out, (socklen_t)outsz) ? DPOP_OK : DPOP_ERR;
    return DPOP_ERR;
}
