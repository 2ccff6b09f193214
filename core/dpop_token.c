/*
 * dpop_token.c: JWT access-token validation (RFC 7519 §7.2, the RFC 9068
 * profile where it matters) and extraction of the DPoP binding cnf.jkt
 * (RFC 9449 §6.1, RFC 7800 §3.1).
 *
 * Every failure is token_invalid; the detail says which check failed and
 * never contains token bytes (issuer/audience values are configuration, not
 * secrets, but claimed values are not echoed either: a hostile token could
 * carry anything).  Binding is extracted, not judged: the caller decides
 * token_unbound / jkt_mismatch / bearer_downgrade.
 */
#include "dpop_token.h"
#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_jws.h"
#include "dpop_sat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void dpop_token_result_init(dpop_token_result_t *r)
{
    if (!r)
        return;
    memset(r, 0, sizeof(*r));
    r->alg = DPOP_ALG_INVALID;
}

void dpop_token_result_clear(dpop_token_result_t *r)
{
    if (!r)
        return;
    free(r->sub);
    free(r->client_id);
    free(r->iss);
    free(r->jkt);
    free(r->kid);
    free(r->scope);
    dpop_token_result_init(r);
}

/* Optional string claim: 1 present (copied to *dst when dst), 0 absent,
 * -1 wrong type (failure recorded). */
static int opt_claim(const json_t *claims, const char *name, char **dst, dpop_failure_t *f)
{
    const char *s = NULL;
    int r = dpop_json_get_string(claims, name, &s);
    if (r < 0) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "%s claim is not a non-empty string", name);
        return -1;
    }
    if (r == 1 && dst && !(*dst = strdup(s))) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
        return -1;
    }
    return r;
}

/* NumericDate (RFC 7519 §2): an integer here; a non-integral value is
 * refused rather than rounded (rounding would move a bound by a second). */
static int numeric_date(const json_t *claims, const char *name, int64_t *out, int *present,
                        dpop_failure_t *f)
{
    int r = dpop_json_get_int(claims, name, out);
    *present = (r == 1);
    if (r < 0)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "%s claim is not a NumericDate", name);
    return DPOP_OK;
}

/* RFC 7519 §4.1.3: aud is a string or an array of strings; the token is
 * for us when one of them equals our audience exactly. */
static int aud_matches(const json_t *aud, const char *want)
{
    size_t i;
    json_t *v;
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    }
    return 0;
}

/* The token's validity window with the clock skew (RFC 7519 §4.1.4/5):
 * valid while now < exp + skew, and from nbf - skew on.  The one place the
 * rule is written: dpop_token_verify and the token cache both use it. */
static int expired(int64_t exp, int64_t now, int64_t skew)
{
    return dpop_sat_add(exp, skew) <= now;
}

static int not_yet_valid(int64_t nbf, int64_t now, int64_t skew)
{
    return nbf > dpop_sat_add(now, skew);
}

int dpop_token_in_window(const dpop_token_result_t *r, int64_t now, int64_t skew)
{
    if (skew < 0)
        skew = 0;
    return r && !expired(r->exp, now, skew) && !(r->has_nbf && not_yet_valid(r->nbf, now, skew));
}

int dpop_token_verify(const char *token, size_t len, const dpop_token_params_t *p,
                      dpop_token_result_t *r, dpop_failure_t *f)
{
    dpop_token_result_t local;
    dpop_jws_t jws;
    dpop_failure_t sub;
    const char *typ = NULL, *iss = NULL, *kid = NULL;
    json_t *claims, *aud, *cnf, *iatv;
    int64_t exp = 0, nbf = 0, now, skew;
    int has, rc = DPOP_ERR, t;
    size_t max_size;

    memset(&jws, 0, sizeof(jws));
    dpop_failure_clear(f);
    dpop_failure_clear(&sub);
    if (!r)
        r = &local;
    dpop_token_result_init(r);
    if (!p || !p->jwks) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "no token verification keys configured");
        goto done;
    }
    if (!token || len == 0) {
        dpop_fail(f, DPOP_REASON_MISSING_TOKEN, "no access token");
        goto done;
    }
    max_size = p->max_size ? p->max_size : DPOP_TOKEN_MAX_DEFAULT;
    now = p->now;
    skew = p->skew > 0 ? p->skew : 0;

    if (dpop_jws_parse(token, len, max_size, &jws, &sub) != DPOP_OK) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token is not a valid JWT (%s: %s)",
                  sub.reason ? sub.reason : "malformed", sub.detail);
        goto done;
    }
    claims = jws.payload;
    r->alg = jws.alg;

    /* RFC 9068 §2.1 / RFC 8725 §3.11: an explicitly typed token must be an
     * access token; in particular a DPoP proof (dpop+jwt) is never one.
     * Media types compare case-insensitively (RFC 7515 §4.1.9). */
    t = dpop_json_get_string(jws.header, "typ", &typ);
    if (t < 0 || (t == 1 && strcasecmp(typ, "at+jwt") != 0 && strcasecmp(typ, "JWT") != 0 &&
                  strcasecmp(typ, "application/at+jwt") != 0)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token typ is not at+jwt or JWT");
        goto done;
    }

    /* signature against the authorization server's keys */
    if (dpop_jwks_verify(p->jwks, &jws, p->algs ? p->algs : DPOP_ALG_MASK_DEFAULT, &kid, &sub) !=
        DPOP_OK) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token signature rejected (%s: %s)",
                  sub.reason ? sub.reason : "bad_signature", sub.detail);
        goto done;
    }
    if (kid && !(r->kid = strdup(kid))) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
        goto done;
    }

    /* iss, RFC 7519 §4.1.1 */
    t = dpop_json_get_string(claims, "iss", &iss);
    if (t < 0) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "iss claim is not a non-empty string");
        goto done;
    }
    if (p->issuer && (t != 1 || strcmp(iss, p->issuer) != 0)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                  t == 1 ? "iss does not match the configured issuer" : "iss claim missing");
        goto done;
    }
    if (t == 1 && !(r->iss = strdup(iss))) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
        goto done;
    }

    /* aud, RFC 7519 §4.1.3 */
    aud = json_object_get(claims, "aud");
    if (aud && !json_is_string(aud) && !json_is_array(aud)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "aud claim is neither a string nor an array");
        goto done;
    }
    if (p->audience && (!aud || !aud_matches(aud, p->audience))) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                  aud ? "aud does not contain the configured audience" : "aud claim missing");
        goto done;
    }

    /* exp required (RFC 9068 §2.2), valid while now < exp + skew */
    if (numeric_date(claims, "exp", &exp, &has, f) != DPOP_OK)
        goto done;
    if (!has) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "exp claim missing");
        goto done;
    }
    r->exp = exp;
    if (expired(exp, now, skew)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token expired %lld s ago (skew %lld s)",
                  (long long)dpop_sat_sub(now, exp), (long long)skew);
        goto done;
    }
    /* nbf optional, RFC 7519 §4.1.5: valid from nbf - skew on */
    if (numeric_date(claims, "nbf", &nbf, &has, f) != DPOP_OK)
        goto done;
    if (has) {
        r->nbf = nbf;
        r->has_nbf = 1;
    }
    if (has && not_yet_valid(nbf, now, skew)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token not valid for another %lld s (skew %lld s)",
                  (long long)dpop_sat_sub(nbf, now), (long long)skew);
        goto done;
    }
    /* iat optional and only type-checked (RFC 7519 §4.1.6) */
    iatv = json_object_get(claims, "iat");
    if (iatv && !json_is_number(iatv)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "iat claim is not a NumericDate");
        goto done;
    }
    if (json_is_integer(iatv))
        r->iat = (int64_t)json_integer_value(iatv);
    else if (json_is_real(iatv))
        r->iat = (int64_t)json_real_value(iatv);

    /* identity for the backend */
    if (opt_claim(claims, "sub", &r->sub, f) < 0 || opt_claim(claims, "scope", &r->scope, f) < 0)
        goto done;
    t = opt_claim(claims, "client_id", &r->client_id, f);
    if (t < 0)
        goto done;
    if (t == 0 && opt_claim(claims, "azp", &r->client_id, f) < 0)
        goto done;

    /* cnf (RFC 7800 §3.1) must be an object; cnf.jkt (RFC 9449 §6.1) is the
     * base64url SHA-256 thumbprint: exactly 43 canonical characters. */
    cnf = json_object_get(claims, "cnf");
    if (cnf) {
        json_t *jkt;
        if (!json_is_object(cnf)) {
            dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "cnf claim is not a JSON object");
            goto done;
        }
        /* RFC 7800 §3.1: each member is a confirmation method; any one
         * (RFC 8705 x5t#S256, a jwk, a kid...) binds the token to a proof
         * the Bearer scheme cannot give.  An empty cnf binds to nothing. */
        r->cnf_bound = json_object_size(cnf) > 0;
        jkt = json_object_get(cnf, "jkt");
        if (jkt) {
            if (!json_is_string(jkt) ||
                !dpop_b64url_is_sha256(json_string_value(jkt), json_string_length(jkt))) {
                dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                          "cnf.jkt is not a base64url SHA-256 thumbprint");
                goto done;
            }
            if (!(r->jkt = strdup(json_string_value(jkt)))) {
                dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
                goto done;
            }
        }
    }
    rc = DPOP_OK;
done:
    dpop_jws_clear(&jws);
    if (r == &local)
        dpop_token_result_clear(&local);
    return rc;
}

int dpop_token_create(EVP_PKEY *key, dpop_alg_t alg, const char *kid, const json_t *claims,
                      char **out)
{
    json_t *hdr = NULL;
    int rc = DPOP_ERR;
    if (!out)
        return DPOP_ERR;
    *out = NULL;
    if (!key || !json_is_object(claims) || !dpop_alg_name(alg))
        return DPOP_ERR;
    /* RFC 9068 §2.1: typ at+jwt */
    if (!(hdr = json_pack("{s:s, s:s}", "typ", "at+jwt", "alg", dpop_alg_name(alg))))
        goto done;
    if (kid && json_object_set_new(hdr, "kid", json_string(kid)) != 0)
        goto done;
    if (dpop_jws_sign(hdr, claims, alg, key, out) != DPOP_OK)
        goto done;
    rc = DPOP_OK;
done:
    json_decref(hdr);
    return rc;
}
