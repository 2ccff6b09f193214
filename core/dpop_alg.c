/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_alg.c: JWS algorithm names (RFC 7518 §3.1, RFC 8037 §3.1) and
 * allow-list masks.
 *
 * Only asymmetric algorithms have a name here.  "none" (RFC 7518 §3.6) and
 * the HMAC family can never verify a proof of possession, so they are not
 * in the table and parse as DPOP_ALG_INVALID; an allow-list naming them is a
 * configuration error rather than something silently ignored.
 */
#include "dpop_alg.h"
#include "dpop_result.h"

#include <stdio.h>
#include <string.h>

static const char *const alg_names[DPOP_ALG__COUNT] = {
    [DPOP_ALG_INVALID] = NULL,  [DPOP_ALG_ES256] = "ES256", [DPOP_ALG_ES384] = "ES384",
    [DPOP_ALG_ES512] = "ES512", [DPOP_ALG_PS256] = "PS256", [DPOP_ALG_PS384] = "PS384",
    [DPOP_ALG_PS512] = "PS512", [DPOP_ALG_RS256] = "RS256", [DPOP_ALG_RS384] = "RS384",
    [DPOP_ALG_RS512] = "RS512", [DPOP_ALG_EDDSA] = "EdDSA",
};

dpop_alg_t dpop_alg_from_name(const char *name)
{
    int i;
    if (!name)
        return DPOP_ALG_INVALID;
    /* RFC 7515 §4.1.1: alg values are case-sensitive. */
    for (i = 1; i < DPOP_ALG__COUNT; i++)
        if (strcmp(name, alg_names[i]) == 0)
            return (dpop_alg_t)i;
    return DPOP_ALG_INVALID;
}

const char *dpop_alg_name(dpop_alg_t alg)
{
    if ((int)alg <= DPOP_ALG_INVALID || (int)alg >= DPOP_ALG__COUNT)
        return NULL;
    return alg_names[alg];
}

int dpop_alg_mask_parse(const char *list, dpop_alg_mask_t *mask, char *err, size_t errsz)
{
    dpop_alg_mask_t m = 0;
    const char *p = list;
    char name[16];
    if (err && errsz)
        err[0] = '\0';
    if (!list || !mask) {
        if (err && errsz)
            snprintf(err, errsz, "no algorithm list");
        return DPOP_ERR;
    }
    while (*p) {
        size_t n = 0;
        dpop_alg_t a;
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        while (p[n] && p[n] != ',' && p[n] != ' ' && p[n] != '\t')
            n++;
        if (n >= sizeof(name)) {
            if (err && errsz)
                snprintf(err, errsz, "unknown algorithm (name too long)");
            return DPOP_ERR;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        a = dpop_alg_from_name(name);
        if (a == DPOP_ALG_INVALID) {
            /* Configuration text, not network input: naming it helps the admin. */
            if (err && errsz)
                snprintf(err, errsz, "unknown or forbidden algorithm '%s'", name);
            return DPOP_ERR;
        }
        m |= DPOP_ALG_BIT(a);
        p += n;
    }
    if (!m) {
        if (err && errsz)
            snprintf(err, errsz, "empty algorithm list");
        return DPOP_ERR;
    }
    *mask = m;
    return DPOP_OK;
}

size_t dpop_alg_mask_format(dpop_alg_mask_t mask, char *out, size_t outsz)
{
    size_t len = 0;
    int i;
    if (!out || !outsz)
        return 0;
    out[0] = '\0';
    for (i = 1; i < DPOP_ALG__COUNT; i++) {
        size_t n;
        if (!(mask & DPOP_ALG_BIT(i)))
            continue;
        n = strlen(alg_names[i]) + (len ? 1 : 0);
        /* Never emit a truncated name: stop at the last one that fits. */
        if (len + n + 1 > outsz)
            break;
        if (len)
            out[len++] = ' ';
        memcpy(out + len, alg_names[i], strlen(alg_names[i]));
        len += strlen(alg_names[i]);
        out[len] = '\0';
    }
    return len;
}
