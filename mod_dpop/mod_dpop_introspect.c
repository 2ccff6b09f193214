/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_introspect.c: RFC 7662 introspection of opaque DPoP-bound
 * access tokens (RFC 9449 §6.2), per process (see mod_dpop_tokensrc.h).
 *
 * - The request: POST token + token_type_hint=access_token, the client
 *   authenticated by DPoPTokenIntrospectionAuth (client_secret_basic,
 *   private_key_jwt with an RFC 7523 assertion signed per request, or
 *   none), through dpop_fetch (https, no redirects, 64 KiB, 2 s / 5 s).
 * - The cache: the AS's answer is kept under the token's SHA-256 (with the
 *   endpoint URL, so two authorization servers never share an entry), never
 *   the token: an active answer DPoPTokenIntrospectionCache seconds (never
 *   past its exp), an inactive one INACTIVE_CACHE_SECS, so a flood of one
 *   bad token costs the AS one call per few seconds.  The answer is judged
 *   again on every hit (dpop_introspect_parse: exp, and this location's
 *   issuer and audience).  Failures (unreachable, 5xx, 4xx, unusable
 *   answers) are never cached.
 * - The bound: at most MAX_INFLIGHT introspections per process at once;
 *   beyond that the request gets 503 without calling the AS.
 * - Errors are logged at most once per DPOP_AS_LOG_INTERVAL per process.
 *
 * Must never: log, cache or forward the token, the client secret or the
 * assertion.
 */
#include "mod_dpop.h"
#include "mod_dpop_config.h"
#include "mod_dpop_metrics.h"
#include "mod_dpop_tokensrc.h"

#include "http_log.h"
#include "apr_atomic.h"
#include "apr_strings.h"

#include <stdlib.h>
#include <string.h>

#include "dpop_fetch.h"
#include "dpop_introspect.h"
#include "dpop_lru.h"

APLOG_USE_MODULE(dpop);

#define CACHE_CAPACITY 4096   /* entries per process */
#define CACHE_MAX_BODY 4096   /* answers larger than this are not cached */
#define CACHE_MAX_KEY 2200    /* token hash + '|' + endpoint URL */
#define INACTIVE_CACHE_SECS 5 /* an inactive answer is reused this long */
#define MAX_INFLIGHT 8        /* concurrent introspections per process */

typedef struct {
    char *body;
    size_t len;
    apr_time_t expires;
} entry_t;

static dpop_lru_t *cache = NULL;
static volatile apr_uint32_t inflight = 0;
static volatile apr_uint32_t last_log_sec = 0;
static volatile apr_uint32_t suppressed = 0;

static void entry_free(void *v)
{
    entry_t *e = v;
    if (!e)
        return;
    free(e->body);
    free(e);
}

static apr_status_t cache_cleanup(void *data)
{
    dpop_lru_free(cache);
    cache = NULL;
    return APR_SUCCESS;
}

void dpop_tokensrc_child_init(apr_pool_t *p, server_rec *s)
{
    /* libcurl's global state, once per process before any thread fetches. */
    if (dpop_fetch_global_init() != 0)
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "mod_dpop: libcurl did not initialize; fetches will fail (503)");
    dpop_keyset_child_init(p, s);
    if (cache)
        return;
    if (!(cache = dpop_lru_create(CACHE_CAPACITY, CACHE_MAX_KEY, entry_free)))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_dpop: cannot create the introspection cache; every opaque token "
                     "is introspected");
    else
        apr_pool_cleanup_register(p, NULL, cache_cleanup, apr_pool_cleanup_null);
}

/* One line per DPOP_AS_LOG_INTERVAL per process (an AS outage is not one
 * line per request); the next line counts what was folded in. */
static void log_limited(request_rec *r, const char *msg)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t last = apr_atomic_read32(&last_log_sec);
    if (last && now - last < DPOP_AS_LOG_INTERVAL) {
        apr_atomic_inc32(&suppressed);
        return;
    }
    if (apr_atomic_cas32(&last_log_sec, now, last) != last) {
        apr_atomic_inc32(&suppressed);
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "mod_dpop: %s; answering 503 (%u similar message(s) not logged in the last "
                  "%d s)",
                  msg, apr_atomic_xchg32(&suppressed, 0), DPOP_AS_LOG_INTERVAL);
}

typedef struct {
    char *body;
    size_t len;
} copy_t;

static int visit(void *value, void *ctx)
{
    entry_t *e = value;
    copy_t *c = ctx;
    if (apr_time_now() >= e->expires)
        return 0;
    if (!(c->body = malloc(e->len + 1)))
        return 0;
    memcpy(c->body, e->body, e->len);
    c->body[e->len] = '\0';
    c->len = e->len;
    return 1;
}

static void cache_put(const char *key, const char *body, size_t len, apr_int64_t ttl)
{
    entry_t *e;
    if (!cache || ttl <= 0 || len > CACHE_MAX_BODY)
        return;
    if (!(e = calloc(1, sizeof(*e))) || !(e->body = malloc(len + 1))) {
        free(e);
        return;
    }
    memcpy(e->body, body, len);
    e->body[len] = '\0';
    e->len = len;
    e->expires = apr_time_now() + apr_time_from_sec(ttl);
    dpop_lru_put(cache, key, strlen(key), e);
}

/* The form body and client authentication of one request; *assertion and
 * *form are freed by the caller. */
static int build_request(const dpop_dir_conf_t *c, const char *url, const char *token,
                         apr_int64_t now, dpop_fetch_req_t *req, char **form, char **assertion)
{
    const dpop_iauth_t *a = c->iauth;
    memset(req, 0, sizeof(*req));
    *form = NULL;
    *assertion = NULL;
    req->url = url;
    req->ca_file = c->ca_file;
    req->max_body = DPOP_FETCH_MAX_INTROSPECTION;
    if (a && a->kind == DPOP_IAUTH_CLIENT_SECRET_BASIC) {
        req->basic_user = a->client_id;
        req->basic_password = a->secret;
    }
    else if (a && a->kind == DPOP_IAUTH_PRIVATE_KEY_JWT) {
        /* RFC 7523 §3: aud is the endpoint the assertion is sent to. */
        if (dpop_client_assertion(a->key, a->key_alg, a->key_kid, a->client_id, url, now,
                                  assertion) != DPOP_OK)
            return DPOP_ERR;
    }
    if (dpop_introspect_form(token, NULL, *assertion, form) != DPOP_OK)
        return DPOP_ERR;
    req->form = *form;
    return DPOP_OK;
}

int dpop_introspect_token(request_rec *r, const dpop_dir_conf_t *c, const char *token,
                          const char *token_hash, apr_int64_t now, dpop_token_result_t *tr,
                          dpop_failure_t *f)
{
    dpop_introspect_params_t ip;
    dpop_fetch_req_t req;
    dpop_fetch_resp_t resp;
    copy_t hit = {NULL, 0};
    char *form = NULL, *assertion = NULL;
    const char *url, *key;
    int rc, active = 0, counted = 0;
    apr_int64_t ttl;

    memset(&resp, 0, sizeof(resp));
    memset(&ip, 0, sizeof(ip));
    ip.issuer = c->issuer;
    ip.audience = c->audience;
    ip.now = now;
    ip.skew = dpop_conf_skew(c);
    if (!token_hash || !(url = dpop_keyset_introspection_url(r, c)))
        return HTTP_SERVICE_UNAVAILABLE;
    key = apr_pstrcat(r->pool, token_hash, "|", url, NULL);

    if (cache && dpop_lru_get(cache, key, strlen(key), visit, &hit)) {
        dpop_metrics_add(DPOP_M_INTROSPECTION_CACHE_HITS, 1);
        rc = dpop_introspect_parse(hit.body, hit.len, &ip, tr, NULL, f);
        free(hit.body);
        return rc == DPOP_OK ? OK : rc == DPOP_ERR ? DPOP_ERR : HTTP_SERVICE_UNAVAILABLE;
    }

    /* Bounded concurrency: a flood of fresh tokens reaches the AS at most
     * MAX_INFLIGHT at a time from this process. */
    if (apr_atomic_inc32(&inflight) >= MAX_INFLIGHT) {
        apr_atomic_dec32(&inflight);
        dpop_metrics_as_request(DPOP_AS_INTROSPECTION, DPOP_ASO_OVERLOADED, -1);
        log_limited(r, apr_psprintf(r->pool,
                                    "introspection at %s: more than %d introspections in flight "
                                    "in this process",
                                    url, MAX_INFLIGHT));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    counted = 1;
    if (build_request(c, url, token, now, &req, &form, &assertion) != DPOP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_dpop: cannot build the introspection request for %s", url);
        rc = HTTP_SERVICE_UNAVAILABLE;
        goto done;
    }
    dpop_fetch(&req, &resp);
    apr_atomic_dec32(&inflight);
    counted = 0;
    if (resp.outcome != DPOP_FETCH_OK) {
        dpop_metrics_as_request(DPOP_AS_INTROSPECTION, resp.outcome, resp.secs);
        if (resp.outcome == DPOP_FETCH_HTTP_4XX)
            /* DESIGN.md: wrong client credentials or a token type the AS
             * will not introspect are a configuration error. */
            log_limited(r, apr_psprintf(r->pool,
                                        "introspection at %s refused the request (%s): a "
                                        "configuration error (check DPoPTokenIntrospectionAuth "
                                        "and the client's rights at the AS)",
                                        url, resp.err));
        else
            log_limited(r, apr_psprintf(r->pool, "introspection at %s failed (%s)", url, resp.err));
        rc = HTTP_SERVICE_UNAVAILABLE;
        goto done;
    }
    rc = dpop_introspect_parse(resp.body, resp.len, &ip, tr, &active, f);
    if (rc == DPOP_INTROSPECT_BAD_RESPONSE) {
        dpop_metrics_as_request(DPOP_AS_INTROSPECTION, DPOP_ASO_INVALID, resp.secs);
        log_limited(
            r, apr_psprintf(r->pool, "introspection at %s: unusable answer (%s)", url, f->detail));
        rc = HTTP_SERVICE_UNAVAILABLE;
        goto done;
    }
    dpop_metrics_as_request(DPOP_AS_INTROSPECTION, active ? DPOP_FETCH_OK : DPOP_ASO_INACTIVE,
                            resp.secs);
    /* The answer, judged again on each hit; never past the token's exp. */
    if (active) {
        ttl = dpop_conf_introspection_cache(c);
        if (rc == DPOP_OK && tr->exp > 0 && tr->exp - now < ttl)
            ttl = tr->exp - now;
    }
    else
        ttl = INACTIVE_CACHE_SECS;
    cache_put(key, resp.body, resp.len, ttl);
    rc = rc == DPOP_OK ? OK : DPOP_ERR;
done:
    if (counted)
        apr_atomic_dec32(&inflight);
    dpop_introspect_form_free(form);
    if (assertion)
        free(assertion);
    dpop_fetch_resp_clear(&resp);
    return rc;
}
