/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_keyset.c: the authorization server's key sets, fetched from a
 * DPoPTokenJWKS URL or through DPoPTokenMetadata (RFC 8414 / OpenID
 * discovery), per process, and kept fresh (see mod_dpop_tokensrc.h).
 *
 * One source per (kind, URL, CA file, issuer, refresh) in a per-process
 * registry created in child_init.  A source holds the last good key set,
 * reference-counted so that a rotation never frees a set a request thread
 * still verifies with.  Rules (DESIGN.md "Where tokens are checked
 * against"):
 *   - fetched on the first request that needs it, never at startup;
 *   - one fetch per source in flight: other threads use the last good set,
 *     or, when there is none yet (or they wait for an unknown kid), wait for
 *     that fetch, at most the fetch bound (5 s, metadata and JWKS together);
 *   - refreshed when older than DPoPTokenRefresh or the response's
 *     Cache-Control max-age (dpop_asmeta_refresh_secs), and when a token
 *     names an unknown kid, at most once per 30 s;
 *   - a failed fetch keeps the last good set, is counted, and is logged at
 *     most once per DPOP_AS_LOG_INTERVAL per source; without a set -> 503.
 *
 * Must never: log a token; use metadata whose issuer differs from
 * DPoPTokenIssuer.
 */
#include "mod_dpop.h"
#include "mod_dpop_config.h"
#include "mod_dpop_metrics.h"
#include "mod_dpop_tokensrc.h"

#include "http_log.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"

#include <stdlib.h>
#include <string.h>

#include "dpop_asmeta.h"
#include "dpop_fetch.h"
#include "dpop_jws.h"

APLOG_USE_MODULE(dpop);

/* A fetched key set and the requests verifying with it (under src->mu). */
typedef struct {
    dpop_jwks_t *set;
    unsigned refs;
} held_t;

typedef struct {
    int is_metadata;
    const char *url, *ca, *issuer;
    int refresh;
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;
    held_t *cur;             /* last good set; NULL before the first good fetch */
    char *intro_ep;          /* metadata's introspection_endpoint (malloc) */
    int have_doc;            /* a fetch succeeded once */
    apr_time_t next_refresh; /* cur is due for a refresh from here on */
    apr_time_t next_attempt; /* no new attempt before (after a failure) */
    apr_time_t last_kid_refresh;
    int in_flight;
    unsigned fetches; /* completed fetches (a request that just waited for
                       * one does not start another for an unknown kid) */
    apr_time_t last_log;
    unsigned suppressed;
    int failing;
} src_t;

static apr_thread_mutex_t *reg_mu = NULL;
static apr_hash_t *reg = NULL;
static apr_pool_t *reg_pool = NULL;

static void held_free(held_t *h)
{
    if (!h)
        return;
    dpop_jwks_free(h->set);
    free(h);
}

static apr_status_t registry_cleanup(void *data)
{
    apr_hash_index_t *hi;
    if (!reg)
        return APR_SUCCESS;
    for (hi = apr_hash_first(NULL, reg); hi; hi = apr_hash_next(hi)) {
        src_t *s = apr_hash_this_val(hi);
        /* The child is exiting: no request holds a set any more. */
        held_free(s->cur);
        s->cur = NULL;
        free(s->intro_ep);
        s->intro_ep = NULL;
    }
    reg = NULL;
    reg_mu = NULL;
    reg_pool = NULL;
    return APR_SUCCESS;
}

void dpop_keyset_child_init(apr_pool_t *p, server_rec *s)
{
    if (reg)
        return;
    if (apr_pool_create(&reg_pool, p) != APR_SUCCESS ||
        apr_thread_mutex_create(&reg_mu, APR_THREAD_MUTEX_DEFAULT, reg_pool) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "mod_dpop: cannot create the token source registry; fetched key sets "
                     "unavailable (503)");
        reg_pool = NULL;
        reg_mu = NULL;
        return;
    }
    reg = apr_hash_make(reg_pool);
    apr_pool_cleanup_register(p, NULL, registry_cleanup, apr_pool_cleanup_null);
}

/* The process's source for these settings, created on first use. */
static src_t *source_get(int is_metadata, const char *url, const dpop_dir_conf_t *c)
{
    const char *key;
    src_t *s = NULL;
    char tmp[4096];
    int n;
    if (!reg)
        return NULL;
    n = snprintf(tmp, sizeof(tmp), "%d|%s|%s|%s|%d", is_metadata, url, c->ca_file ? c->ca_file : "",
                 is_metadata && c->issuer ? c->issuer : "", dpop_conf_refresh(c));
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return NULL;
    apr_thread_mutex_lock(reg_mu);
    s = apr_hash_get(reg, tmp, APR_HASH_KEY_STRING);
    if (!s) {
        s = apr_pcalloc(reg_pool, sizeof(*s));
        key = apr_pstrdup(reg_pool, tmp);
        s->is_metadata = is_metadata;
        s->url = apr_pstrdup(reg_pool, url);
        s->ca = c->ca_file ? apr_pstrdup(reg_pool, c->ca_file) : NULL;
        s->issuer = is_metadata && c->issuer ? apr_pstrdup(reg_pool, c->issuer) : NULL;
        s->refresh = dpop_conf_refresh(c);
        if (apr_thread_mutex_create(&s->mu, APR_THREAD_MUTEX_DEFAULT, reg_pool) != APR_SUCCESS ||
            apr_thread_cond_create(&s->cv, reg_pool) != APR_SUCCESS)
            s = NULL;
        else
            apr_hash_set(reg, key, APR_HASH_KEY_STRING, s);
    }
    apr_thread_mutex_unlock(reg_mu);
    return s;
}

/* One error-log line per source per DPOP_AS_LOG_INTERVAL (an outage is not
 * one line per request); the next line says how many were folded in.
 * Called with s->mu held. */
static void log_failure(request_rec *r, src_t *s, const char *what, const char *err, int kept)
{
    apr_time_t now = apr_time_now();
    if (s->last_log && now - s->last_log < apr_time_from_sec(DPOP_AS_LOG_INTERVAL)) {
        s->suppressed++;
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "mod_dpop: %s %s failed: %s; %s (%u similar failure(s) not logged in the last "
                  "%d s)",
                  what, s->url, err,
                  kept ? "keeping the last good key set" : "no key set yet: answering 503",
                  s->suppressed, DPOP_AS_LOG_INTERVAL);
    s->last_log = now;
    s->suppressed = 0;
}

/* What one fetch produced (outside the lock). */
typedef struct {
    dpop_jwks_t *set;
    char *intro_ep;
    long max_age; /* smallest of the responses' max-age, -1 none */
    char err[300];
} fetched_t;

static long min_age(long a, long b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* GET url within what is left of the deadline; metrics by kind. */
static int get_doc(const src_t *s, const char *url, dpop_as_kind_t kind, apr_time_t deadline,
                   dpop_fetch_resp_t *resp, fetched_t *out)
{
    dpop_fetch_req_t req;
    apr_interval_time_t left = deadline - apr_time_now();
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.ca_file = s->ca;
    req.max_body = DPOP_FETCH_MAX_DOC;
    req.total_ms = left > 1000 ? (long)(left / 1000) : 1;
    if (req.total_ms < DPOP_FETCH_CONNECT_MS)
        req.connect_ms = req.total_ms;
    dpop_fetch(&req, resp);
    out->max_age = min_age(out->max_age, resp->max_age);
    if (resp->outcome != DPOP_FETCH_OK) {
        dpop_metrics_as_request(kind, resp->outcome, resp->secs);
        snprintf(out->err, sizeof(out->err), "%s (%s)", resp->err,
                 dpop_fetch_outcome_name(resp->outcome));
        return -1;
    }
    return 0;
}

static int fetch_source(const src_t *s, fetched_t *out)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(DPOP_FETCH_TOTAL_MS);
    dpop_fetch_resp_t resp;
    dpop_asmeta_t meta;
    const char *jwks_url = s->url;
    char err[256] = "";
    int rc = -1;
    memset(&meta, 0, sizeof(meta));
    memset(&resp, 0, sizeof(resp));
    out->max_age = -1;
    if (s->is_metadata) {
        if (get_doc(s, s->url, DPOP_AS_METADATA, deadline, &resp, out) != 0)
            goto done;
        if (dpop_asmeta_parse(resp.body, resp.len, s->issuer, &meta, err, sizeof(err)) != 0) {
            dpop_metrics_as_request(DPOP_AS_METADATA, DPOP_ASO_INVALID, resp.secs);
            snprintf(out->err, sizeof(out->err), "%s", err);
            goto done;
        }
        if ((meta.jwks_uri && dpop_fetch_url_check(meta.jwks_uri, err, sizeof(err)) != 0) ||
            (meta.introspection_endpoint &&
             dpop_fetch_url_check(meta.introspection_endpoint, err, sizeof(err)) != 0)) {
            dpop_metrics_as_request(DPOP_AS_METADATA, DPOP_ASO_INVALID, resp.secs);
            snprintf(out->err, sizeof(out->err), "metadata: %s", err);
            goto done;
        }
        dpop_metrics_as_request(DPOP_AS_METADATA, DPOP_FETCH_OK, resp.secs);
        out->intro_ep = meta.introspection_endpoint;
        meta.introspection_endpoint = NULL;
        dpop_fetch_resp_clear(&resp);
        if (!(jwks_url = meta.jwks_uri)) {
            rc = 0; /* an AS for opaque tokens only */
            goto done;
        }
    }
    if (get_doc(s, jwks_url, DPOP_AS_JWKS, deadline, &resp, out) != 0)
        goto done;
    if (dpop_jwks_parse(resp.body, resp.len, &out->set, err, sizeof(err)) != 0) {
        dpop_metrics_as_request(DPOP_AS_JWKS, DPOP_ASO_INVALID, resp.secs);
        snprintf(out->err, sizeof(out->err), "%s", err);
        goto done;
    }
    dpop_metrics_as_request(DPOP_AS_JWKS, DPOP_FETCH_OK, resp.secs);
    rc = 0;
done:
    dpop_fetch_resp_clear(&resp);
    dpop_asmeta_clear(&meta);
    return rc;
}

/* Bring s up to date as far as the rules allow.  Called and returns with
 * s->mu held; the fetch itself runs without it. */
static void source_sync(request_rec *r, src_t *s, int kid_unknown, int need_set)
{
    apr_time_t now = apr_time_now();
    /* A metadata document without jwks_uri is fresh too: no refetch per
     * request just because it names no keys. */
    int have = need_set ? (s->cur != NULL || s->have_doc) : s->have_doc;
    int due = !have || now >= s->next_refresh;
    int kid = kid_unknown && have &&
              now - s->last_kid_refresh >= apr_time_from_sec(DPOP_KID_REFRESH_INTERVAL);
    fetched_t got;
    int ok;

    if (!due && !kid)
        return;
    if (s->in_flight) {
        /* Another thread is fetching: use the last good set, or wait for
         * that fetch (no set yet, or this token's kid may be in it). */
        if (have && !kid_unknown)
            return;
        apr_thread_cond_timedwait(s->cv, s->mu, apr_time_from_msec(DPOP_FETCH_TOTAL_MS));
        return;
    }
    if (!kid && now < s->next_attempt)
        return; /* a recent attempt failed: not one fetch per request */
    if (kid)
        s->last_kid_refresh = now;
    s->in_flight = 1;
    apr_thread_mutex_unlock(s->mu);

    memset(&got, 0, sizeof(got));
    ok = fetch_source(s, &got) == 0;

    apr_thread_mutex_lock(s->mu);
    s->in_flight = 0;
    s->fetches++;
    now = apr_time_now();
    if (ok) {
        held_t *h = NULL;
        if (got.set && !(h = calloc(1, sizeof(*h)))) {
            ok = 0;
            snprintf(got.err, sizeof(got.err), "out of memory");
        }
        else if (h) {
            held_t *old = s->cur;
            h->set = got.set;
            got.set = NULL;
            s->cur = h;
            if (old && old->refs == 0)
                held_free(old); /* else the last request holding it frees it */
            dpop_metrics_keyset_loaded(now);
        }
        else if (s->is_metadata && s->cur) {
            /* The metadata no longer names a jwks_uri. */
            held_t *old = s->cur;
            s->cur = NULL;
            if (old->refs == 0)
                held_free(old);
        }
    }
    if (ok) {
        if (s->is_metadata) {
            free(s->intro_ep);
            s->intro_ep = got.intro_ep;
            got.intro_ep = NULL;
        }
        s->have_doc = 1;
        s->next_refresh =
            now + apr_time_from_sec(dpop_asmeta_refresh_secs(s->refresh, got.max_age));
        s->next_attempt = 0;
        if (s->failing)
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                          "mod_dpop: %s %s fetched again after %u unlogged failure(s)",
                          s->is_metadata ? "DPoPTokenMetadata" : "DPoPTokenJWKS", s->url,
                          s->suppressed);
        s->failing = 0;
        s->suppressed = 0;
        s->last_log = 0;
    }
    else {
        s->failing = 1;
        s->next_attempt =
            now + apr_time_from_sec(s->cur || (!need_set && s->have_doc) ? DPOP_KID_REFRESH_INTERVAL
                                                                         : DPOP_FETCH_RETRY_EMPTY);
        log_failure(r, s, s->is_metadata ? "DPoPTokenMetadata" : "DPoPTokenJWKS", got.err,
                    s->cur != NULL);
    }
    dpop_jwks_free(got.set);
    free(got.intro_ep);
    apr_thread_cond_broadcast(s->cv);
}

typedef struct {
    src_t *s;
    held_t *h;
} hold_t;

static void unhold(src_t *s, held_t *h)
{
    if (h->refs > 0)
        h->refs--;
    if (h->refs == 0 && h != s->cur)
        held_free(h);
}

static apr_status_t hold_cleanup(void *data)
{
    hold_t *hd = data;
    apr_thread_mutex_lock(hd->s->mu);
    unhold(hd->s, hd->h);
    apr_thread_mutex_unlock(hd->s->mu);
    return APR_SUCCESS;
}

int dpop_tokensrc_opaque(const dpop_dir_conf_t *c, const char *token)
{
    size_t hl, pl, sl;
    switch (dpop_conf_format(c)) {
    case DPOP_FORMAT_OPAQUE:
        return 1;
    case DPOP_FORMAT_ANY:
        /* DESIGN.md: a JWS-shaped token is a JWT, anything else is
         * introspected. */
        return dpop_jws_split(token, strlen(token), &hl, &pl, &sl) != DPOP_OK;
    default:
        return 0;
    }
}

int dpop_keyset_for_token(request_rec *r, const dpop_dir_conf_t *c, const char *token,
                          const dpop_jwks_t **set)
{
    src_t *s;
    held_t *h;
    hold_t *hd;
    unsigned fetches;
    *set = NULL;
    if (c->jwks) {
        *set = c->jwks; /* DPoPTokenJWKS FILE: loaded at configuration time */
        return OK;
    }
    if (!c->jwks_url && !c->metadata_url) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_dpop: a JWT access token but neither DPoPTokenJWKS nor "
                      "DPoPTokenMetadata for %s",
                      ap_escape_logitem(r->pool, r->uri));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    s = c->jwks_url ? source_get(0, c->jwks_url, c) : source_get(1, c->metadata_url, c);
    if (!s) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_dpop: token source unavailable");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    apr_thread_mutex_lock(s->mu);
    fetches = s->fetches;
    source_sync(r, s, 0, 1);
    if ((h = s->cur))
        h->refs++;
    /* A set fetched while this request waited is as fresh as a refresh
     * for its kid would be: one fetch bound per request at most. */
    fetches = s->fetches - fetches;
    apr_thread_mutex_unlock(s->mu);
    /* A kid the set does not know: the AS may have rotated a key in. */
    if (h && !fetches && dpop_jwks_kid_unknown(h->set, token, strlen(token))) {
        apr_thread_mutex_lock(s->mu);
        source_sync(r, s, 1, 1);
        if (s->cur != h) {
            unhold(s, h);
            if ((h = s->cur))
                h->refs++;
        }
        apr_thread_mutex_unlock(s->mu);
    }
    if (!h) {
        apr_thread_mutex_lock(s->mu);
        if (s->is_metadata && s->have_doc)
            log_failure(r, s, "DPoPTokenMetadata", "the document names no jwks_uri for JWTs", 0);
        apr_thread_mutex_unlock(s->mu);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    hd = apr_palloc(r->pool, sizeof(*hd));
    hd->s = s;
    hd->h = h;
    apr_pool_cleanup_register(r->pool, hd, hold_cleanup, apr_pool_cleanup_null);
    *set = h->set;
    return OK;
}

const char *dpop_keyset_introspection_url(request_rec *r, const dpop_dir_conf_t *c)
{
    src_t *s;
    const char *url = NULL;
    if (c->introspection_url)
        return c->introspection_url;
    if (!c->metadata_url || !(s = source_get(1, c->metadata_url, c)))
        return NULL;
    apr_thread_mutex_lock(s->mu);
    source_sync(r, s, 0, 0);
    if (s->intro_ep)
        url = apr_pstrdup(r->pool, s->intro_ep);
    else if (s->have_doc)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_dpop: the metadata at %s names no introspection_endpoint; set "
                      "DPoPTokenIntrospection",
                      s->url);
    apr_thread_mutex_unlock(s->mu);
    return url;
}
