/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_jws.c: compact JWS serialization (RFC 7515 §7.1): strict parsing of
 * untrusted input and creation for dpopctl and tests.
 *
 * Parsing order matters: the size cap is applied before anything else so a
 * huge header costs nothing; then structure, base64url, JSON.  The alg is
 * looked up but not judged: the caller owns the allow-list and reports
 * bad_alg.  The input is never copied into error text.
 */
#include "dpop_jws.h"
#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_sig.h"

#include <stdlib.h>
#include <string.h>

void dpop_jws_clear(dpop_jws_t *jws)
{
    if (!jws)
        return;
    json_decref(jws->header);
    json_decref(jws->payload);
    free(jws->sig);
    memset(jws, 0, sizeof(*jws));
}

/* Decode one base64url segment holding a JSON object. */
static json_t *segment_json(const char *seg, size_t len, const char *what, dpop_failure_t *f)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    char err[96];
    json_t *v;
    if (dpop_b64url_decode(seg, len, &buf, &n) != DPOP_OK) {
        dpop_fail(f, DPOP_REASON_MALFORMED, "%s is not canonical base64url", what);
        return NULL;
    }
    if (!(v = dpop_json_parse_object((const char *)buf, n, err, sizeof(err))))
        dpop_fail(f, DPOP_REASON_MALFORMED, "%s: %s", what, err);
    free(buf);
    return v;
}

int dpop_jws_split(const char *compact, size_t len, size_t *hl, size_t *pl, size_t *sl)
{
    const char *d1, *d2;
    if (!compact || !(d1 = memchr(compact, '.', len)) ||
        !(d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - compact))) ||
        memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - compact)))
        return DPOP_ERR;
    *hl = (size_t)(d1 - compact);
    *pl = (size_t)(d2 - d1 - 1);
    *sl = len - (size_t)(d2 + 1 - compact);
    return DPOP_OK;
}

int dpop_jws_parse(const char *compact, size_t len, size_t max_len, dpop_jws_t *out,
                   dpop_failure_t *f)
{
    return dpop_jws_parse_flags(compact, len, max_len, 0, out, f);
}

int dpop_jws_parse_flags(const char *compact, size_t len, size_t max_len, unsigned flags,
                         dpop_jws_t *out, dpop_failure_t *f)
{
    dpop_jws_t j;
    const char *payload, *sig;
    size_t hl, pl, sl;
    int r;

    memset(&j, 0, sizeof(j));
    if (out)
        memset(out, 0, sizeof(*out));
    if (!compact || !out)
        return dpop_fail(f, DPOP_REASON_MALFORMED, "no JWS");
    if (len > max_len)
        return dpop_fail(f, DPOP_REASON_TOO_LARGE, "JWS of %zu bytes exceeds the limit of %zu", len,
                         max_len);
    if (dpop_jws_split(compact, len, &hl, &pl, &sl) != DPOP_OK)
        return dpop_fail(f, DPOP_REASON_MALFORMED, "not a three-part compact JWS");
    payload = compact + hl + 1;
    sig = payload + pl + 1;
    /* An empty payload is a detached JWS (RFC 7515 Appendix F): no JWT.
     * An empty signature is parsed like any other: "alg":"none" (or any alg
     * we do not support) is then refused as bad_alg by the caller, and for a
     * real alg zero bytes never verify (bad_signature). */
    if (!hl || (!pl && !(flags & DPOP_JWS_ANY_PAYLOAD)))
        return dpop_fail(f, DPOP_REASON_MALFORMED, "empty JWS segment");
    if (!(j.header = segment_json(compact, hl, "JWS header", f)))
        goto fail;
    if (flags & DPOP_JWS_ANY_PAYLOAD) {
        /* RFC 7515 §2: the payload is any octet sequence; only its
         * encoding is checked (strict base64url), then it is not kept */
        unsigned char *raw = NULL;
        size_t n = 0;
        if (dpop_b64url_decode(payload, pl, &raw, &n) != DPOP_OK) {
            dpop_fail(f, DPOP_REASON_MALFORMED, "JWS payload is not canonical base64url");
            goto fail;
        }
        free(raw);
    }
    else if (!(j.payload = segment_json(payload, pl, "JWS payload", f))) {
        goto fail;
    }
    if (dpop_b64url_decode(sig, sl, &j.sig, &j.siglen) != DPOP_OK) {
        dpop_fail(f, DPOP_REASON_MALFORMED, "JWS signature is not canonical base64url");
        goto fail;
    }
    /* RFC 7515 §4.1.1: alg is required and a string. */
    r = dpop_json_get_string(j.header, "alg", &j.alg_name);
    if (r <= 0) {
        dpop_fail(f, DPOP_REASON_MALFORMED,
                  r == 0 ? "JWS header has no alg" : "JWS header alg is not a string");
        goto fail;
    }
    /* RFC 7515 §4.1.11: we understand no extension, so any crit fails. */
    if (json_object_get(j.header, "crit")) {
        dpop_fail(f, DPOP_REASON_BAD_CLAIM, "JWS header has crit with unsupported extensions");
        goto fail;
    }
    j.alg = dpop_alg_from_name(j.alg_name);
    j.header_b64 = compact;
    j.header_b64_len = hl;
    j.signing_input_len = hl + 1 + pl;
    *out = j;
    return DPOP_OK;
fail:
    dpop_jws_clear(&j);
    return DPOP_ERR;
}

int dpop_jws_sign(const json_t *header, const json_t *payload, dpop_alg_t alg, EVP_PKEY *key,
                  char **out)
{
    char *hj = NULL, *pj = NULL, *res = NULL;
    unsigned char *sig = NULL;
    size_t hl, pl, sl = 0, hb, pb, sb, cap;
    int rc = DPOP_ERR;

    if (!out)
        return DPOP_ERR;
    *out = NULL;
    if (!json_is_object(header) || !json_is_object(payload) || !dpop_alg_name(alg))
        return DPOP_ERR;
    /* Compact, insertion order (jansson keeps it), no NUL inside strings. */
    if (!(hj = json_dumps(header, JSON_COMPACT)) || !(pj = json_dumps(payload, JSON_COMPACT)))
        goto done;
    hl = strlen(hj);
    pl = strlen(pj);
    hb = dpop_b64url_encoded_len(hl);
    pb = dpop_b64url_encoded_len(pl);
    /* Room for the largest signature we make (RSA 16384 bits). */
    cap = hb + 1 + pb + 1 + dpop_b64url_encoded_len(2048) + 1;
    if (!(res = malloc(cap)))
        goto done;
    dpop_b64url_encode_buf((const unsigned char *)hj, hl, res, cap);
    res[hb] = '.';
    dpop_b64url_encode_buf((const unsigned char *)pj, pl, res + hb + 1, cap - hb - 1);
    if (dpop_sig_sign(alg, key, (const unsigned char *)res, hb + 1 + pb, &sig, &sl) != DPOP_OK)
        goto done;
    sb = hb + 1 + pb;
    res[sb] = '.';
    if (dpop_b64url_encode_buf(sig, sl, res + sb + 1, cap - sb - 1) == (size_t)-1)
        goto done;
    *out = res;
    res = NULL;
    rc = DPOP_OK;
done:
    free(hj);
    free(pj);
    free(sig);
    free(res);
    return rc;
}
