/* SPDX-License-Identifier: Apache-2.0 */
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

/*
 * RFC 7519 §7.2 (1)-(10) / RFC 7515 §5.2: a well-formed JWT, i.e. a compact
 * JWS (a JWE, five segments, is refused: RFC 9068 §4 (2) never applies)
 * whose header and claims set are JSON objects, within the size limit.
 */
static int check_well_formed_jwt(const char *token, size_t len, size_t max_size, dpop_jws_t *jws,
                                 dpop_failure_t *f)
{
    dpop_failure_t sub;
    dpop_failure_clear(&sub);
    if (dpop_jws_parse(token, len, max_size, jws, &sub) != DPOP_OK)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token is not a valid JWT (%s: %s)",
                         sub.reason ? sub.reason : "malformed", sub.detail);
    return DPOP_OK;
}

/*
 * RFC 9068 §4 (1) / §2.1, RFC 8725 §3.11: an explicitly typed token must be
 * an access token; in particular a DPoP proof (dpop+jwt) is never one.  An
 * untyped token and the generic "JWT" are accepted too (authorization
 * servers that predate RFC 9068 send them).  Media types compare
 * case-insensitively (RFC 7515 §4.1.9).
 */
static int check_typ(const dpop_jws_t *jws, dpop_failure_t *f)
{
    const char *typ = NULL;
    int t = dpop_json_get_string(jws->header, "typ", &typ);
    if (t < 0 || (t == 1 && strcasecmp(typ, "at+jwt") != 0 && strcasecmp(typ, "JWT") != 0 &&
                  strcasecmp(typ, "application/at+jwt") != 0))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token typ is not at+jwt or JWT");
    return DPOP_OK;
}

/*
 * RFC 9068 §4 (5): the signature verifies with a key of the authorization
 * server (the configured JWK Set) under an allowed alg (never none).  The
 * key that verified it is recorded (kid).
 */
static int check_signature(const dpop_jws_t *jws, const dpop_token_params_t *p,
                           dpop_token_result_t *r, dpop_failure_t *f)
{
    dpop_failure_t sub;
    const char *kid = NULL;
    dpop_failure_clear(&sub);
    if (dpop_jwks_verify(p->jwks, jws, p->algs ? p->algs : DPOP_ALG_MASK_DEFAULT, &kid, &sub) !=
        DPOP_OK)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token signature rejected (%s: %s)",
                         sub.reason ? sub.reason : "bad_signature", sub.detail);
    if (kid && !(r->kid = strdup(kid)))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
    return DPOP_OK;
}

/* RFC 9068 §4 (3), RFC 7519 §4.1.1: iss, when present a non-empty string,
 * equals the configured issuer exactly (required when one is configured). */
static int check_iss(const json_t *claims, const char *issuer, dpop_token_result_t *r,
                     dpop_failure_t *f)
{
    const char *iss = NULL;
    int t = dpop_json_get_string(claims, "iss", &iss);
    if (t < 0)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "iss claim is not a non-empty string");
    if (issuer && (t != 1 || strcmp(iss, issuer) != 0))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                         t == 1 ? "iss does not match the configured issuer" : "iss claim missing");
    if (t == 1 && !(r->iss = strdup(iss)))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
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

/* RFC 9068 §4 (4), RFC 7519 §4.1.3: aud, when present a string or an
 * array, contains the configured audience (required when one is
 * configured). */
static int check_aud(const json_t *claims, const char *audience, dpop_failure_t *f)
{
    const json_t *aud = json_object_get(claims, "aud");
    if (aud && !json_is_string(aud) && !json_is_array(aud))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                         "aud claim is neither a string nor an array");
    if (audience && (!aud || !aud_matches(aud, audience)))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                         aud ? "aud does not contain the configured audience"
                             : "aud claim missing");
    return DPOP_OK;
}

/* RFC 9068 §4 (6) / §2.2, RFC 7519 §4.1.4: exp is required, and the token
 * is valid while now < exp + skew (the leeway §4 (6) allows). */
static int check_exp(const json_t *claims, int64_t now, int64_t skew, dpop_token_result_t *r,
                     dpop_failure_t *f)
{
    int64_t exp = 0;
    int has;
    if (numeric_date(claims, "exp", &exp, &has, f) != DPOP_OK)
        return DPOP_ERR;
    if (!has)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "exp claim missing");
    r->exp = exp;
    if (expired(exp, now, skew))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token expired %lld s ago (skew %lld s)",
                         (long long)dpop_sat_sub(now, exp), (long long)skew);
    return DPOP_OK;
}

/* RFC 7519 §4.1.5: nbf is optional; the token is valid from nbf - skew on. */
static int check_nbf(const json_t *claims, int64_t now, int64_t skew, dpop_token_result_t *r,
                     dpop_failure_t *f)
{
    int64_t nbf = 0;
    int has;
    if (numeric_date(claims, "nbf", &nbf, &has, f) != DPOP_OK)
        return DPOP_ERR;
    if (!has)
        return DPOP_OK;
    r->nbf = nbf;
    r->has_nbf = 1;
    if (not_yet_valid(nbf, now, skew))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                         "token not valid for another %lld s (skew %lld s)",
                         (long long)dpop_sat_sub(nbf, now), (long long)skew);
    return DPOP_OK;
}

/* RFC 7519 §4.1.6: iat is optional and only type-checked (a NumericDate;
 * RFC 9068 §2.2 requires it of the server, not the check of the RS). */
static int check_iat(const json_t *claims, dpop_token_result_t *r, dpop_failure_t *f)
{
    const json_t *iatv = json_object_get(claims, "iat");
    if (iatv && !json_is_number(iatv))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "iat claim is not a NumericDate");
    if (json_is_integer(iatv))
        r->iat = (int64_t)json_integer_value(iatv);
    else if (json_is_real(iatv))
        r->iat = (int64_t)json_real_value(iatv);
    return DPOP_OK;
}

/* RFC 9068 §2.2 sub and client_id (else azp, OpenID Connect Core §2),
 * RFC 8693 §4.2 scope: the identity for the backend, non-empty strings
 * when present. */
static int check_identity(const json_t *claims, dpop_token_result_t *r, dpop_failure_t *f)
{
    int t;
    if (opt_claim(claims, "sub", &r->sub, f) < 0 || opt_claim(claims, "scope", &r->scope, f) < 0)
        return DPOP_ERR;
    t = opt_claim(claims, "client_id", &r->client_id, f);
    if (t < 0)
        return DPOP_ERR;
    if (t == 0 && opt_claim(claims, "azp", &r->client_id, f) < 0)
        return DPOP_ERR;
    return DPOP_OK;
}

/* RFC 7800 §3.1: cnf, when present, is an object; RFC 9449 §6.1: its jkt
 * is the base64url SHA-256 thumbprint, exactly 43 canonical characters.
 * Extracted, not judged: an unbound token is the caller's decision. */
static int check_cnf_jkt(const json_t *claims, dpop_token_result_t *r, dpop_failure_t *f)
{
    const json_t *cnf = json_object_get(claims, "cnf"), *jkt;
    if (!cnf)
        return DPOP_OK;
    if (!json_is_object(cnf))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "cnf claim is not a JSON object");
    /* RFC 7800 §3.1: each member is a confirmation method; any one (RFC 8705
     * x5t#S256, a jwk, a kid...) binds the token to a proof the Bearer
     * scheme cannot give.  An empty cnf binds to nothing. */
    r->cnf_bound = json_object_size(cnf) > 0;
    if (!(jkt = json_object_get(cnf, "jkt")))
        return DPOP_OK;
    if (!json_is_string(jkt) ||
        !dpop_b64url_is_sha256(json_string_value(jkt), json_string_length(jkt)))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                         "cnf.jkt is not a base64url SHA-256 thumbprint");
    if (!(r->jkt = strdup(json_string_value(jkt))))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
    return DPOP_OK;
}

int dpop_token_check_claims(const json_t *claims, const dpop_token_params_t *p,
                            dpop_token_result_t *r, dpop_failure_t *f)
{
    int64_t skew;
    dpop_failure_clear(f);
    if (!json_is_object(claims) || !p || !r)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "no claims to check");
    skew = p->skew > 0 ? p->skew : 0;
    if (check_iss(claims, p->issuer, r, f) != DPOP_OK ||    /* RFC 9068 §4 (3) */
        check_aud(claims, p->audience, f) != DPOP_OK ||     /* RFC 9068 §4 (4) */
        check_exp(claims, p->now, skew, r, f) != DPOP_OK || /* RFC 9068 §4 (6) */
        check_nbf(claims, p->now, skew, r, f) != DPOP_OK || /* RFC 7519 §4.1.5 */
        check_iat(claims, r, f) != DPOP_OK ||               /* RFC 7519 §4.1.6 */
        check_identity(claims, r, f) != DPOP_OK ||          /* RFC 9068 §2.2 */
        check_cnf_jkt(claims, r, f) != DPOP_OK)             /* RFC 9449 §6.1 */
        return DPOP_ERR;
    return DPOP_OK;
}

/*
 * RFC 9068 §4 in the order that trusts nothing unverified: the structure
 * (RFC 7519 §7.2), typ (1), the signature (5), and only then the claims it
 * vouches for, iss (3), aud (4), exp (6) and the rest (dpop_token_check_claims).
 * Errors are reported by the caller as RFC 6750 §3.1 asks (§4 (7)).
 */
int dpop_token_verify(const char *token, size_t len, const dpop_token_params_t *p,
                      dpop_token_result_t *r, dpop_failure_t *f)
{
    dpop_token_result_t local;
    dpop_jws_t jws;
    int rc = DPOP_ERR;

    memset(&jws, 0, sizeof(jws));
    dpop_failure_clear(f);
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
    if (check_well_formed_jwt(token, len, p->max_size ? p->max_size : DPOP_TOKEN_MAX_DEFAULT, &jws,
                              f) != DPOP_OK)
        goto done;
    r->alg = jws.alg;
    if (check_typ(&jws, f) != DPOP_OK ||                          /* RFC 9068 §4 (1) */
        check_signature(&jws, p, r, f) != DPOP_OK ||              /* RFC 9068 §4 (5) */
        dpop_token_check_claims(jws.payload, p, r, f) != DPOP_OK) /* (3), (4), (6) ... */
        goto done;
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
