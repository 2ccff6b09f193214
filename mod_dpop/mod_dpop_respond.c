/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_respond.c: status codes, WWW-Authenticate challenges, DPoP-Nonce and
 * error log lines for mod_dpop.  See mod_dpop_respond.h.
 *
 * RFC 9449 §7.1: the DPoP challenge carries error / error_description as in
 * RFC 6750 §3 and "algs", the space-separated list of accepted proof
 * algorithms.  A request without any credentials gets the challenge without
 * an error attribute (RFC 6750 §3.1).
 *
 * Must never: echo the request's credentials or the detail text to clients.
 */
#include "mod_dpop_respond.h"
#include "mod_dpop.h"

#include "http_log.h"
#include "httpd.h"
#include "apr_strings.h"

APLOG_USE_MODULE(dpop);

int dpop_respond_status(dpop_reason_t reason)
{
    switch (reason) {
    case DPOP_REASON_POLICY_DENIED:
    case DPOP_REASON_KEY_REVOKED:
        return HTTP_FORBIDDEN;
    default:
        return HTTP_UNAUTHORIZED;
    }
}

const char *dpop_respond_description(dpop_reason_t reason)
{
    switch (reason) {
    case DPOP_REASON_MISSING_PROOF:
        return "DPoP proof required";
    case DPOP_REASON_MULTIPLE_PROOFS:
        return "exactly one DPoP proof is allowed";
    case DPOP_REASON_TOO_LARGE:
        return "DPoP proof too large";
    case DPOP_REASON_MALFORMED:
        return "DPoP proof is not a valid compact JWS";
    case DPOP_REASON_BAD_TYP:
        return "DPoP proof typ must be dpop+jwt";
    case DPOP_REASON_BAD_ALG:
        return "DPoP proof algorithm not accepted";
    case DPOP_REASON_BAD_JWK:
        return "DPoP proof key not accepted";
    case DPOP_REASON_PRIVATE_KEY_IN_JWK:
        return "DPoP proof key contains private material";
    case DPOP_REASON_BAD_SIGNATURE:
        return "DPoP proof signature invalid";
    case DPOP_REASON_MISSING_CLAIM:
        return "DPoP proof lacks a required claim";
    case DPOP_REASON_BAD_CLAIM:
        return "DPoP proof has an invalid claim";
    case DPOP_REASON_HTM_MISMATCH:
        return "DPoP proof htm does not match the request method";
    case DPOP_REASON_HTU_MISMATCH:
        return "DPoP proof htu does not match the request URI";
    case DPOP_REASON_IAT_TOO_OLD:
        return "DPoP proof expired";
    case DPOP_REASON_IAT_IN_FUTURE:
        return "DPoP proof issued in the future";
    case DPOP_REASON_REPLAY:
        return "DPoP proof already used";
    case DPOP_REASON_ATH_MISSING:
        return "DPoP proof lacks the access token hash";
    case DPOP_REASON_ATH_MISMATCH:
        return "DPoP proof ath does not match the access token";
    case DPOP_REASON_NONCE_MISSING:
        return "Authorization server requires nonce in DPoP proof";
    case DPOP_REASON_NONCE_INVALID:
        return "DPoP nonce invalid or expired";
    case DPOP_REASON_MISSING_TOKEN:
        return "access token required";
    case DPOP_REASON_TOKEN_INVALID:
        return "access token invalid";
    case DPOP_REASON_TOKEN_UNBOUND:
        return "access token is not DPoP-bound";
    case DPOP_REASON_JKT_MISMATCH:
        return "access token is bound to another key";
    case DPOP_REASON_BEARER_DOWNGRADE:
        return "DPoP-bound access token presented as Bearer";
    case DPOP_REASON_POLICY_DENIED:
        return "key not allowed for this request";
    case DPOP_REASON_KEY_REVOKED:
        return "key revoked or not valid now";
    default:
        return "request denied";
    }
}

const char *dpop_respond_challenge_value(request_rec *r, const dpop_dir_conf_t *c,
                                         const dpop_failure_t *f)
{
    if (!f || !f->error)
        return apr_psprintf(r->pool, "DPoP algs=\"%s\"", dpop_conf_algs_attr(c));
    return apr_psprintf(r->pool, "DPoP error=\"%s\", error_description=\"%s\", algs=\"%s\"",
                        f->error, dpop_respond_description(f->code), dpop_conf_algs_attr(c));
}

/* WWW-Authenticate for f (NULL: no credentials were sent), DPoP-Nonce when
 * given; challenges and nonces must not be cached by intermediaries. */
static void set_challenge(request_rec *r, const dpop_dir_conf_t *c, const dpop_failure_t *f,
                          const char *nonce)
{
    apr_table_setn(r->err_headers_out, "WWW-Authenticate", dpop_respond_challenge_value(r, c, f));
    if (nonce)
        apr_table_setn(r->err_headers_out, "DPoP-Nonce", nonce);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
}

int dpop_respond_failure(request_rec *r, const dpop_dir_conf_t *c, const dpop_failure_t *f,
                         const char *nonce)
{
    set_challenge(r, c, f, nonce);
    return dpop_respond_status(f->code);
}

int dpop_respond_challenge(request_rec *r, const dpop_dir_conf_t *c, const char *nonce)
{
    set_challenge(r, c, NULL, nonce);
    return HTTP_UNAUTHORIZED;
}

/* The detail comes from the core, which promises it holds no secret; still
 * strip quotes and control characters so a log line stays one line. */
static const char *clean_detail(apr_pool_t *p, const char *d)
{
    char *out = apr_pstrdup(p, d ? d : "");
    char *q;
    for (q = out; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == '"' || *q == '\\' || (unsigned char)*q == 0x7f)
            *q = ' ';
    return out;
}

void dpop_respond_log(request_rec *r, int level, const char *what, const dpop_failure_t *f,
                      const char *jkt, const char *jti)
{
    /* jti and jkt are identifiers, not credentials; cap them anyway.  The
     * jkt of a Bearer token comes from its cnf claim, not from our hash:
     * cleaned like the jti. */
    ap_log_rerror(
        APLOG_MARK, level, 0, r,
        "mod_dpop: %s: reason=%s error=%s method=%s uri=%s jkt=%.64s jti=%.64s "
        "detail=\"%s\"",
        what, f->reason ? f->reason : "-", f->error ? f->error : "-",
        ap_escape_logitem(r->pool, r->method), r->uri ? ap_escape_logitem(r->pool, r->uri) : "-",
        (jkt && *jkt) ? clean_detail(r->pool, jkt) : "-",
        (jti && *jti) ? clean_detail(r->pool, jti) : "-", clean_detail(r->pool, f->detail));
}
