/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_asmeta.c: authorization server metadata parsing and the refresh
 * interval rule (see dpop_asmeta.h).
 */
#include "dpop_asmeta.h"
#include "dpop_json.h"
#include "dpop_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dpop_asmeta_clear(dpop_asmeta_t *m)
{
    if (!m)
        return;
    free(m->issuer);
    free(m->jwks_uri);
    free(m->introspection_endpoint);
    memset(m, 0, sizeof(*m));
}

/* An optional non-empty string member copied to *dst: 0 ok (absent or
 * copied), -1 wrong type or out of memory. */
static int member(const json_t *doc, const char *name, int required, char **dst, char *err,
                  size_t errsz)
{
    const char *s = NULL;
    int r = dpop_json_get_string(doc, name, &s);
    if (r < 0) {
        snprintf(err, errsz, "metadata: \"%s\" is not a non-empty string", name);
        return -1;
    }
    if (r == 0) {
        if (required)
            snprintf(err, errsz, "metadata: \"%s\" is missing", name);
        return required ? -1 : 0;
    }
    if (!(*dst = strdup(s))) {
        snprintf(err, errsz, "metadata: out of memory");
        return -1;
    }
    return 0;
}

int dpop_asmeta_parse(const char *doc, size_t len, const char *expected_issuer, dpop_asmeta_t *m,
                      char *err, size_t errsz)
{
    json_t *root = NULL;
    char jerr[128];
    int rc = -1;
    char dummy[1];
    if (!err || !errsz) {
        err = dummy;
        errsz = sizeof(dummy);
    }
    err[0] = '\0';
    memset(m, 0, sizeof(*m));
    if (!(root = dpop_json_parse_object_max(doc, len, DPOP_ASMETA_MAX_BYTES, jerr, sizeof(jerr)))) {
        snprintf(err, errsz, "metadata: %s", jerr);
        return -1;
    }
    if (member(root, "issuer", 1, &m->issuer, err, errsz) != 0 ||
        member(root, "jwks_uri", 0, &m->jwks_uri, err, errsz) != 0 ||
        member(root, "introspection_endpoint", 0, &m->introspection_endpoint, err, errsz) != 0)
        goto done;
    /* RFC 8414 §3.3 / OpenID Discovery §4.3: the issuer in the document
     * must be the one we expect, exactly. */
    if (expected_issuer && strcmp(m->issuer, expected_issuer) != 0) {
        snprintf(err, errsz, "metadata: issuer does not equal DPoPTokenIssuer %.200s",
                 expected_issuer);
        goto done;
    }
    rc = 0;
done:
    if (rc != 0)
        dpop_asmeta_clear(m);
    json_decref(root);
    return rc;
}

int64_t dpop_asmeta_refresh_secs(int64_t configured, long max_age)
{
    int64_t secs = configured > 0 ? configured : DPOP_REFRESH_DEFAULT;
    if (max_age >= 0) {
        int64_t ma = max_age < DPOP_REFRESH_MIN ? DPOP_REFRESH_MIN : (int64_t)max_age;
        if (ma > DPOP_REFRESH_MAX)
            ma = DPOP_REFRESH_MAX;
        if (ma < secs)
            secs = ma;
    }
    return secs;
}
