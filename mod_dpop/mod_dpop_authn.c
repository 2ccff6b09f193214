/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_authn.c: check_authn for `AuthType DPoP` (Apache glue).
 *
 * Order of a request (RFC 9449 §7.1, §4.3, §11.1):
 *   spoofable headers removed -> Authorization scheme (DPoP / Bearer) ->
 *   exactly one DPoP header -> access token (signature, iss, aud, exp, nbf)
 *   -> cnf.jkt present -> proof (all checks incl. ath, htm, htu, nonce and
 *   the token's jkt) -> replay cache (atomic insert of SHA-256(jkt||jti))
 *   -> r->user = sub, DPOP_* env, DPoP header dropped before the backend.
 * A failure answers 401 (503 when the replay cache is unreachable, fail
 * closed) unless DPoPMode report-only lets it through; every failure is
 * logged (reason + detail) and sent to the audit store.
 *
 * Must never: log, audit or forward the access token or the proof.  Only
 * the token hash (the ath value), the jkt and the proof's claims leave here.
 */
#include "mod_dpop.h"
#include "mod_dpop_config.h"
#include "mod_dpop_replay.h"
#include "mod_dpop_respond.h"
#include "mod_dpop_metrics.h"
#include "mod_dpop_tokensrc.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_atomic.h"

#include <string.h>
#include <strings.h>

#include "dpop_alg.h"
#include "dpop_ct.h"
#include "dpop_keycache.h"
#include "dpop_nonce.h"
#include "dpop_proof.h"
#include "dpop_token.h"
#include "dpop_tokencache.h"

APLOG_USE_MODULE(dpop);

#define KEYCACHE_CAPACITY 1024
#define TOKENCACHE_CAPACITY DPOP_TOKENCACHE_DEFAULT

/* Per-process caches shared by the child's threads, created in child_init,
 * after fork, so their mutexes are never inherited locked: imported proof
 * keys (dpop_keycache.h) and verified access tokens (dpop_tokencache.h).
 * Both die with the child, so a graceful restart (a new JWKS) starts them
 * empty; the token cache also keys on the JWKS generation. */
static dpop_keycache_t *proof_keycache = NULL;
static dpop_tokencache_t *token_cache = NULL;

static apr_status_t caches_cleanup(void *data)
{
    dpop_keycache_free(proof_keycache);
    proof_keycache = NULL;
    dpop_tokencache_free(token_cache);
    token_cache = NULL;
    return APR_SUCCESS;
}

void dpop_authn_child_init(apr_pool_t *p, server_rec *s)
{
    if (proof_keycache || token_cache)
        return;
    /* Without a cache every request is verified in full: slower, never
     * less strict. */
    if (!(proof_keycache = dpop_keycache_create(KEYCACHE_CAPACITY)))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_dpop: cannot create the proof key cache; verifying without it");
    if (!(token_cache = dpop_tokencache_create(TOKENCACHE_CAPACITY)))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_dpop: cannot create the access-token cache; verifying without it");
    apr_pool_cleanup_register(p, NULL, caches_cleanup, apr_pool_cleanup_null);
}

/* ---- request record ---------------------------------------------------- */

dpop_req_t *dpop_req_get(request_rec *r, int create)
{
    request_rec *top = r;
    dpop_req_t *rq;
    for (;;) {
        if (top->prev)
            top = top->prev;
        else if (top->main)
            top = top->main;
        else
            break;
    }
    rq = ap_get_module_config(top->request_config, &dpop_module);
    if (!rq && create) {
        rq = apr_pcalloc(top->pool, sizeof(*rq));
        rq->pool = top->pool;
        ap_set_module_config(top->request_config, &dpop_module, rq);
    }
    return rq;
}

/* ---- helpers ----------------------------------------------------------- */

/* Remove incoming headers that could pass for our verified identity once
 * forwarded (DPoP-* and X-DPoP-*, with '_' treated as '-'), so a backend
 * or a RequestHeader rule never sees client-chosen values. */
static int collect_spoofable(void *rec, const char *key, const char *value)
{
    apr_array_header_t *names = rec;
    char norm[16];
    apr_size_t i;
    for (i = 0; i < sizeof(norm) - 1 && key[i]; i++)
        norm[i] = key[i] == '_' ? '-' : (char)apr_tolower(key[i]);
    norm[i] = '\0';
    if (!strncmp(norm, "dpop-", 5) || !strncmp(norm, "x-dpop-", 7) || !strncmp(norm, "x-dpop_", 7))
        *(const char **)apr_array_push(names) = key;
    return 1;
}

static void strip_spoofable_headers(request_rec *r)
{
    apr_array_header_t *names = apr_array_make(r->pool, 2, sizeof(const char *));
    int i;
    apr_table_do(collect_spoofable, names, r->headers_in, NULL);
    for (i = 0; i < names->nelts; i++)
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(names, i, const char *));
}

static void strip_spoofable(request_rec *r)
{
    strip_spoofable_headers(r);
    apr_table_unset(r->subprocess_env, "DPOP_JKT");
    apr_table_unset(r->subprocess_env, "DPOP_CLIENT");
    apr_table_unset(r->subprocess_env, "DPOP_TOKEN_SUB");
    apr_table_unset(r->subprocess_env, "DPOP_TOKEN_CLIENT_ID");
}

/* Fixups, first of all, for every `AuthType DPoP` request: check_authn
 * does not run when authorization passes without a user (`Require ip` in a
 * <RequireAny>, `Require all granted`), yet the proof is a credential and
 * DPoP-* / X-DPoP-* headers could pass for a verified identity downstream:
 * they never reach a backend (CGI, proxy, RequestHeader rules, which run
 * in later fixups).  The DPOP_* variables are left alone here: at this
 * point only check_authn has set them. */
int dpop_strip_fixup(request_rec *r)
{
    const char *type = ap_auth_type(r);
    if (!type || strcasecmp(type, DPOP_AUTH_TYPE))
        return DECLINED;
    strip_spoofable_headers(r);
    apr_table_unset(r->headers_in, "DPoP");
    return DECLINED;
}

typedef struct {
    int count;
    const char *value;
} header_count_t;

static int count_header(void *rec, const char *key, const char *value)
{
    header_count_t *hc = rec;
    hc->count++;
    if (!hc->value)
        hc->value = value;
    return 1;
}

/* The path of the request target exactly as the client sent it (RFC 9449
 * §4.3 (9), RFC 9110 §7.1): from r->unparsed_uri, never r->uri or
 * r->parsed_uri.path, which httpd percent-decodes in place (so "/a%3Fb"
 * would pass for "/a?b", a different resource), merges "//" and resolves
 * dot-segments before check_authn.  Query and fragment are cut off; an
 * absolute-form target (RFC 9112 §3.2.2) gives its path part, an
 * asterisk-form or empty one the empty path ("/" after normalization).
 * The htu comparison (dpop_htu.h) normalizes both sides per RFC 3986
 * §6.2.2: hex case, unreserved octets only, dot-segments. */
static const char *request_path_as_sent(request_rec *r)
{
    const char *t = r->unparsed_uri;
    apr_size_t n;
    if (!t)
        return "/";
    if (t[0] != '/') {
        /* absolute-form: scheme "://" authority, then the path */
        const char *sep = strstr(t, "://");
        if (!sep || strcspn(t, "/?#") < (apr_size_t)(sep - t))
            return "/";
        t = sep + 3;
        t += strcspn(t, "/?#");
        if (*t != '/')
            return "/";
    }
    n = strcspn(t, "?#");
    return apr_pstrmemdup(r->pool, t, n);
}

/* htu as the client saw the request (RFC 9449 §4.3 (9)): DPoPExternalURL
 * when set, else scheme + ServerName + port; then the request path as sent
 * (request_path_as_sent).  Client-supplied Host and X-Forwarded-* headers
 * are never used. */
static const char *request_htu(request_rec *r, const dpop_dir_conf_t *c)
{
    const char *path = request_path_as_sent(r);
    const char *host;
    apr_port_t port;
    if (c->external_url)
        return apr_pstrcat(r->pool, c->external_url, path, NULL);
    host = r->server->server_hostname ? r->server->server_hostname : "localhost";
    port = r->server->port;
    if (!port && r->connection->local_addr)
        port = r->connection->local_addr->port;
    if (!port)
        port = ap_default_port(r);
    if (strchr(host, ':') && host[0] != '[')
        host = apr_pstrcat(r->pool, "[", host, "]", NULL);
    return apr_psprintf(r->pool, "%s://%s:%u%s", ap_http_scheme(r), host, (unsigned)port, path);
}

typedef struct {
    const unsigned char *secret;
    size_t secretlen;
    int64_t now;
    int64_t lifetime;
    int checked;
    int fresh;
} nonce_ctx_t;

static int nonce_cb(void *ctx, const char *nonce, size_t len)
{
    nonce_ctx_t *n = ctx;
    int fresh = 0;
    int ok = dpop_nonce_check(n->secret, n->secretlen, n->now, n->lifetime, nonce, len, &fresh);
    n->checked = 1;
    n->fresh = fresh;
    return ok == 1;
}

static const char *make_nonce(request_rec *r, const dpop_srv_conf_t *sc, const dpop_dir_conf_t *c,
                              int64_t now)
{
    char buf[DPOP_NONCE_LEN + 1];
    if (!dpop_conf_nonce_on(c) || !sc->nonce_secret)
        return NULL;
    if (dpop_nonce_make(sc->nonce_secret, sc->nonce_secret_len, now, dpop_conf_nonce_lifetime(c),
                        buf, sizeof(buf)) != DPOP_OK)
        return NULL;
    return apr_pstrdup(r->pool, buf);
}

/* The record outlives a subrequest that fills it (mod_dir destroys its
 * subrequests): everything it keeps comes from rq->pool, never r->pool. */
static void copy_proof_fields(request_rec *r, dpop_req_t *rq, const dpop_proof_result_t *pr)
{
    if (pr->jkt[0] && !rq->jkt)
        rq->jkt = apr_pstrdup(rq->pool, pr->jkt);
    if (pr->jti)
        rq->jti = apr_pstrndup(rq->pool, pr->jti, DPOP_JTI_MAX);
    if (pr->htm)
        rq->htm = apr_pstrndup(rq->pool, pr->htm, 64);
    if (pr->htu)
        rq->htu = apr_pstrndup(rq->pool, pr->htu, 2048);
    if (pr->alg != DPOP_ALG_INVALID)
        rq->alg = dpop_alg_name(pr->alg);
    if (pr->has_iat) {
        rq->iat = pr->iat;
        rq->has_iat = 1;
    }
}

static void copy_token_fields(request_rec *r, dpop_req_t *rq, const dpop_token_result_t *tr)
{
    if (tr->sub)
        rq->token_sub = apr_pstrndup(rq->pool, tr->sub, 256);
    if (tr->client_id)
        rq->token_client_id = apr_pstrndup(rq->pool, tr->client_id, 256);
}

/* ---- outcome ----------------------------------------------------------- */

typedef struct {
    request_rec *r;
    const dpop_dir_conf_t *c;
    const dpop_srv_conf_t *sc;
    dpop_req_t *rq;
    int64_t now;
    int token_ok;    /* the token verified: its sub may name the user */
    int unavailable; /* token source down (mod_dpop_tokensrc.h): this status */
} authn_ctx_t;

/* A rejection: enforce -> log + audit + challenge status; report-only ->
 * log + audit and let the request through (unauthenticated identity). */
static int reject(authn_ctx_t *a, const dpop_failure_t *f)
{
    const char *nonce;
    request_rec *r = a->r;
    /* Token source unavailable (no key set yet, AS down for introspection):
     * fail closed with 503, already logged by the source, rate-limited; not
     * a verdict on the client, so neither counted nor audited. */
    if (a->unavailable && !dpop_conf_report_only(a->c))
        return a->unavailable;
    dpop_metrics_rejected(f->code, dpop_conf_report_only(a->c));
    if (dpop_conf_report_only(a->c)) {
        dpop_respond_log(r, APLOG_WARNING, "report-only, would reject", f, a->rq->jkt, a->rq->jti);
        dpop_audit_failure(r, a->rq, f, 1);
        apr_table_setn(r->subprocess_env, "DPOP_REPORT_ONLY_REASON", f->reason ? f->reason : "-");
        /* The backend must not mistake an unverified caller for a verified
         * one: the user is the token's sub only when the token verified. */
        r->user = (a->token_ok && a->rq->token_sub) ? apr_pstrdup(r->pool, a->rq->token_sub)
                                                    : apr_pstrdup(r->pool, "");
        r->ap_auth_type = DPOP_AUTH_TYPE;
        return OK;
    }
    dpop_respond_log(r, APLOG_ERR, "rejected", f, a->rq->jkt, a->rq->jti);
    dpop_audit_failure(r, a->rq, f, 0);
    nonce = make_nonce(r, a->sc, a->c, a->now);
    if (nonce && (f->code == DPOP_REASON_NONCE_MISSING || f->code == DPOP_REASON_NONCE_INVALID))
        dpop_metrics_add(DPOP_M_NONCE_CHALLENGES, 1);
    return dpop_respond_failure(r, a->c, f, nonce);
}

static int fail(authn_ctx_t *a, dpop_reason_t reason, const char *detail)
{
    dpop_failure_t f;
    dpop_failure_clear(&f);
    dpop_fail(&f, reason, "%s", detail);
    return reject(a, &f);
}

static void set_success(authn_ctx_t *a, const char *user)
{
    request_rec *r = a->r;
    a->rq->authenticated = 1;
    a->rq->has_verified_conf = dpop_conf_fingerprint(a->c, a->sc, a->rq->verified_conf) == DPOP_OK;
    a->rq->user = apr_pstrdup(a->rq->pool, user);
    r->user = apr_pstrdup(r->pool, user);
    r->ap_auth_type = DPOP_AUTH_TYPE;
    if (a->rq->jkt)
        apr_table_setn(r->subprocess_env, "DPOP_JKT", a->rq->jkt);
    if (a->rq->token_sub)
        apr_table_setn(r->subprocess_env, "DPOP_TOKEN_SUB", a->rq->token_sub);
    if (a->rq->token_client_id)
        apr_table_setn(r->subprocess_env, "DPOP_TOKEN_CLIENT_ID", a->rq->token_client_id);
}

/* The proof checks every request gets: this request's method and htu, the
 * location's window, algorithms and size limit. */
static void proof_params(const authn_ctx_t *a, const char *htu, dpop_proof_params_t *pp)
{
    dpop_proof_params_init(pp);
    pp->method = a->r->method; /* RFC 9449 §4.3 (8): exact, case-sensitive */
    pp->url = htu;
    pp->now = a->now;
    pp->max_age = dpop_conf_lifetime(a->c);
    pp->skew = dpop_conf_skew(a->c);
    pp->algs = dpop_conf_algs(a->c);
    pp->max_size = (size_t)dpop_conf_max_proof(a->c);
    pp->cache = proof_keycache;
}

/* Fill proof fields for the audit record of a request whose token failed:
 * the proof is parsed, never verified (issue 15 item 7: a signature check
 * for an unauthenticated sender is CPU anyone can make us spend), so the
 * jkt, jti, htm, htu, alg and iat recorded are what it CLAIMS
 * (docs/audit.md).  Only when an audit store is configured. */
static void audit_enrich_proof(authn_ctx_t *a, const char *proof)
{
    dpop_proof_result_t pr;
    if (!a->sc->audit_dir || !proof)
        return;
    if (dpop_proof_peek(proof, strlen(proof), (size_t)dpop_conf_max_proof(a->c), &pr) == DPOP_OK)
        copy_proof_fields(a->r, a->rq, &pr);
    dpop_proof_result_clear(&pr);
}

/* The token hash (the ath value, never the token) identifies the token in
 * the audit store, so every failure that saw a token records it: a stolen
 * token sent without its proof is still correlatable.  Computed once per
 * request, as soon as the scheme is known. */
static void record_token_hash(authn_ctx_t *a, const char *token)
{
    char ath[DPOP_JKT_LEN + 1];
    if (*token && dpop_ath_compute(token, strlen(token), ath) == DPOP_OK)
        a->rq->token_hash = apr_pstrdup(a->rq->pool, ath);
}

/* The access token of either scheme (RFC 6750 §2.1, RFC 9449 §7.1): an
 * empty one is missing_token; else signature, iss, aud, exp, nbf.  The
 * caller has already recorded the token hash (record_token_hash). */
static int verify_token(authn_ctx_t *a, const char *token, dpop_token_result_t *tr,
                        dpop_failure_t *f)
{
    dpop_token_params_t tp;
    int hit = 0;
    if (!*token) {
        dpop_fail(f, DPOP_REASON_MISSING_TOKEN, "empty credentials after the scheme");
        return DPOP_ERR;
    }
    memset(&tp, 0, sizeof(tp));
    /* The key set: the file, or fetched from the AS (mod_dpop_keyset.c). */
    if ((a->unavailable = dpop_keyset_for_token(a->r, a->c, token, &tp.jwks)) != OK) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "no key set of the authorization server yet");
        return DPOP_ERR;
    }
    tp.issuer = a->c->issuer;
    tp.audience = a->c->audience;
    tp.now = a->now;
    tp.skew = dpop_conf_skew(a->c);
    /* A token already verified with these parameters is answered from the
     * cache (its exp/nbf rechecked against now); a->rq->token_hash is its
     * ath, computed once by record_token_hash. */
    if (dpop_token_verify_cached(token_cache, token, strlen(token), a->rq->token_hash, &tp, tr, f,
                                 &hit) != DPOP_OK) {
        dpop_metrics_add(DPOP_M_TOKEN_CACHE_MISSES, 1);
        copy_token_fields(a->r, a->rq, tr);
        return DPOP_ERR;
    }
    dpop_metrics_add(hit ? DPOP_M_TOKEN_CACHE_HITS : DPOP_M_TOKEN_CACHE_MISSES, 1);
    copy_token_fields(a->r, a->rq, tr);
    a->token_ok = 1;
    return DPOP_OK;
}

/* ---- opaque tokens (DPoPTokenFormat opaque|any) ------------------------ */

/* RFC 7662 introspection of an opaque token (mod_dpop_introspect.c).
 * DECLINED when the AS vouches for it (tr filled: active, iss, aud, exp);
 * else the answer for the client (token_invalid, or 503 when the AS cannot
 * be asked). */
static int introspect(authn_ctx_t *a, const char *token, dpop_token_result_t *tr)
{
    dpop_failure_t f;
    int st;
    dpop_failure_clear(&f);
    if (!*token)
        return fail(a, DPOP_REASON_MISSING_TOKEN, "empty credentials after the scheme");
    st = dpop_introspect_token(a->r, a->c, token, a->rq->token_hash, a->now, tr, &f);
    if (st == HTTP_SERVICE_UNAVAILABLE) {
        a->unavailable = st;
        return fail(a, DPOP_REASON_TOKEN_INVALID, "introspection unavailable");
    }
    copy_token_fields(a->r, a->rq, tr);
    if (st != OK)
        return reject(a, &f);
    a->token_ok = 1;
    return DECLINED;
}

/* The verified caller becomes r->user: the token's sub, else its
 * client_id; a token naming neither is invalid. */
static int accept_user(authn_ctx_t *a, const dpop_token_result_t *tr)
{
    const char *user = NULL;
    if (tr->sub && *tr->sub)
        user = tr->sub;
    else if (tr->client_id && *tr->client_id)
        user = tr->client_id;
    if (!user)
        return fail(a, DPOP_REASON_TOKEN_INVALID, "token has neither sub nor client_id");
    set_success(a, user);
    return OK;
}

/* Authorization: Bearer <token> (RFC 6750 §2.1).  A token bound with cnf.jkt
 * must never be accepted this way (RFC 9449 §7.2: bearer_downgrade), nor one
 * with any other confirmation method in cnf (RFC 8705 x5t#S256...); an
 * unbound one only with DPoPAllowBearer On. */
static int authn_bearer(authn_ctx_t *a, const char *token)
{
    dpop_token_result_t tr;
    dpop_failure_t f;
    int rc;
    dpop_token_result_init(&tr);
    dpop_failure_clear(&f);
    if (dpop_tokensrc_opaque(a->c, token)) {
        /* No proof: the AS is asked only when Bearer tokens are allowed. */
        if (!dpop_conf_allow_bearer(a->c)) {
            rc = fail(a, DPOP_REASON_TOKEN_UNBOUND,
                      "opaque Bearer token and DPoPAllowBearer is Off (not introspected)");
            goto done;
        }
        if ((rc = introspect(a, token, &tr)) != DECLINED)
            goto done;
    }
    else if (verify_token(a, token, &tr, &f) != DPOP_OK) {
        rc = reject(a, &f);
        goto done;
    }
    if (tr.jkt) {
        a->rq->jkt = apr_pstrdup(a->rq->pool, tr.jkt);
        rc = fail(a, DPOP_REASON_BEARER_DOWNGRADE, "DPoP-bound token sent with the Bearer scheme");
        goto done;
    }
    if (tr.cnf_bound) {
        /* RFC 8705 §3 / RFC 7800: bound to a certificate or another key;
         * Bearer proves none of them. */
        rc = fail(a, DPOP_REASON_BEARER_DOWNGRADE,
                  "sender-constrained token (cnf confirmation method) sent with the Bearer scheme");
        goto done;
    }
    if (!dpop_conf_allow_bearer(a->c)) {
        rc = fail(a, DPOP_REASON_TOKEN_UNBOUND, "unbound Bearer token and DPoPAllowBearer is Off");
        goto done;
    }
    rc = accept_user(a, &tr);
    if (rc == OK && a->rq->authenticated) {
        a->rq->bearer = 1;
        dpop_metrics_add(DPOP_M_VERIFIED_BEARER, 1);
        /* Authentication only: the authz stage (Require) still decides
         * and logs its own outcome, so say "passed authentication". */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, a->r,
                      "mod_dpop: Bearer token (unbound) passed authentication "
                      "(DPoPAllowBearer On) for user %s; authorization decides next",
                      ap_escape_logitem(a->r->pool, a->r->user));
    }
done:
    dpop_token_result_clear(&tr);
    return rc;
}

/* Replay cache errors come in floods (a store down answers every request
 * 503): one line per second per process, with the count of the requests
 * not logged since the last line; the metrics count each of them. */
typedef struct {
    apr_uint32_t second; /* of the last line */
    apr_uint32_t quiet;  /* requests not logged since */
} log_limit_t;

static log_limit_t replay_error_503, replay_error_report_only;

static int replay_error_log_due(log_limit_t *l, apr_uint32_t *quiet)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t last = apr_atomic_read32(&l->second);
    if (last != now && apr_atomic_cas32(&l->second, now, last) == last) {
        *quiet = apr_atomic_xchg32(&l->quiet, 0);
        return 1;
    }
    apr_atomic_inc32(&l->quiet);
    return 0;
}

/* Authorization: DPoP <token> + DPoP: <proof> (RFC 9449 §7.1). */
static int authn_dpop(authn_ctx_t *a, const char *token, const char *proof)
{
    request_rec *r = a->r;
    dpop_token_result_t tr;
    dpop_proof_result_t pr;
    dpop_proof_params_t pp;
    dpop_failure_t f;
    nonce_ctx_t nctx;
    unsigned char key[32];
    const char *htu = request_htu(r, a->c);
    const char *errmsg = NULL;
    apr_int64_t lost_at = 0;
    dpop_replay_status_t st;
    /* DPoPTokenFormat: an opaque token is introspected after the proof's
     * own checks (DESIGN.md: a bad proof never reaches the AS). */
    int opaque = dpop_tokensrc_opaque(a->c, token);
    int rc;

    dpop_token_result_init(&tr);
    dpop_proof_result_init(&pr);
    dpop_failure_clear(&f);

    if (opaque && !*token) {
        rc = fail(a, DPOP_REASON_MISSING_TOKEN, "empty credentials after the scheme");
        goto done;
    }
    if (!opaque && verify_token(a, token, &tr, &f) != DPOP_OK) {
        audit_enrich_proof(a, proof);
        rc = reject(a, &f);
        goto done;
    }
    if (!opaque && !tr.jkt) {
        audit_enrich_proof(a, proof);
        rc = fail(a, DPOP_REASON_TOKEN_UNBOUND, "access token has no cnf.jkt");
        goto done;
    }

    proof_params(a, htu, &pp);
    pp.access_token = token;                 /* §4.3 (10): ath required */
    pp.access_token_ath = a->rq->token_hash; /* hashed once, in record_token_hash */
    pp.expected_jkt = tr.jkt;                /* §6.1: cnf.jkt must be the proof key */
    memset(&nctx, 0, sizeof(nctx));
    if (dpop_conf_nonce_on(a->c)) {
        if (!a->sc->nonce_secret) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "mod_dpop: DPoPNonce On but no DPoPNonceSecret for this server");
            rc = HTTP_INTERNAL_SERVER_ERROR;
            goto done;
        }
        nctx.secret = a->sc->nonce_secret;
        nctx.secretlen = a->sc->nonce_secret_len;
        nctx.now = a->now;
        nctx.lifetime = dpop_conf_nonce_lifetime(a->c);
        pp.nonce_check = nonce_cb;
        pp.nonce_ctx = &nctx;
    }
    rc = dpop_proof_verify(proof, strlen(proof), &pp, &pr, &f);
    if (pr.sig_checked)
        dpop_metrics_add(DPOP_M_PROOF_SIGNATURES, 1);
    if (rc != DPOP_OK) {
        copy_proof_fields(r, a->rq, &pr);
        rc = reject(a, &f);
        goto done;
    }
    copy_proof_fields(r, a->rq, &pr);
    a->rq->jkt = apr_pstrdup(a->rq->pool, pr.jkt);
    if (opaque) {
        if ((rc = introspect(a, token, &tr)) != DECLINED)
            goto done;
        /* RFC 9449 §6.2: the AS's cnf.jkt must be the proof key's. */
        if (!tr.jkt) {
            rc = fail(a, DPOP_REASON_TOKEN_UNBOUND, "introspected token has no cnf.jkt");
            goto done;
        }
        if (!dpop_ct_streq(tr.jkt, pr.jkt)) {
            rc = fail(a, DPOP_REASON_JKT_MISMATCH,
                      "introspected cnf.jkt differs from the proof key's thumbprint");
            goto done;
        }
    }

    /* DESIGN.md "Replay stores": a store that lost its memory cannot tell
     * whether a proof issued before it began remembering (+ skew) was
     * already used; such a proof is refused, never accepted twice. */
    {
        const char *forgot = NULL;
        if (dpop_replay_forgot(a->sc->replay, pr.iat, dpop_conf_skew(a->c), r->pool, &forgot)) {
            rc = fail(a, DPOP_REASON_IAT_TOO_OLD, forgot);
            goto done;
        }
    }

    /* RFC 9449 §11.1: single use of a jti within the acceptance window. */
    if (!pr.jti || dpop_replay_key(pr.jkt, pr.jti, key) != DPOP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_dpop: cannot compute the replay key");
        rc = HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }
    st = dpop_replay_check_and_store(
        a->sc->replay, r->server, key,
        apr_time_from_sec(pr.iat + dpop_conf_lifetime(a->c) + dpop_conf_skew(a->c) + 1), pr.iat,
        dpop_conf_skew(a->c), r->pool, &lost_at, &errmsg);
    if (st != DPOP_REPLAY_LOST)
        dpop_metrics_add(st == DPOP_REPLAY_FRESH  ? DPOP_M_REPLAY_INSERTS
                         : st == DPOP_REPLAY_SEEN ? DPOP_M_REPLAY_HITS
                                                  : DPOP_M_REPLAY_ERRORS,
                         1);
    if (st == DPOP_REPLAY_SEEN) {
        rc = fail(a, DPOP_REASON_REPLAY, "jti already used with this key");
        goto done;
    }
    if (st == DPOP_REPLAY_LOST) {
        /* DESIGN.md "Replay stores": the store forgot what it accepted
         * before lost_at; a proof issued before lost_at + skew may be one
         * of those.  The client retries with a fresh proof. */
        rc = fail(a, DPOP_REASON_IAT_TOO_OLD,
                  apr_psprintf(r->pool, "%s; proofs issued before %" APR_INT64_T_FMT " are refused",
                               errmsg ? errmsg : "the replay store lost its memory",
                               lost_at + dpop_conf_skew(a->c)));
        goto done;
    }
    if (st == DPOP_REPLAY_ERROR) {
        /* Fail closed: without the cache we cannot tell a replay apart. */
        apr_uint32_t quiet = 0;
        int say = replay_error_log_due(
            dpop_conf_report_only(a->c) ? &replay_error_report_only : &replay_error_503, &quiet);
        if (dpop_conf_report_only(a->c)) {
            if (say)
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              "mod_dpop: report-only, replay cache unavailable (%s): request "
                              "passed unchecked (%u more such requests not logged)",
                              errmsg ? errmsg : "unknown error", (unsigned)quiet);
        }
        else {
            if (say)
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                              "mod_dpop: replay cache unavailable (%s %s): %s; answering 503 "
                              "(%u more such requests not logged)",
                              dpop_replay_kind(a->sc->replay), a->sc->replay_spec,
                              errmsg ? errmsg : "unknown error", (unsigned)quiet);
            rc = HTTP_SERVICE_UNAVAILABLE;
            goto done;
        }
    }

    rc = accept_user(a, &tr);
    if (rc != OK || !a->rq->authenticated)
        goto done; /* rejected (report-only lets it through unverified) */
    dpop_metrics_add(DPOP_M_VERIFIED_DPOP, 1);
    /* RFC 9449 §8.2: a nonce from the previous bucket still passes, and the
     * response carries the next one so the client rotates in time. */
    if (nctx.checked && !nctx.fresh) {
        const char *next = make_nonce(r, a->sc, a->c, a->now);
        if (next)
            apr_table_setn(r->err_headers_out, "DPoP-Nonce", next);
    }
done:
    dpop_token_result_clear(&tr);
    dpop_proof_result_clear(&pr);
    return rc;
}

/* An internal redirect (CGI Location, mod_rewrite, ErrorDocument, SSI) or
 * a subrequest (mod_dir, mod_negotiation, mod_autoindex) of a request we
 * already authenticated.  The proof was single-use (RFC 9449 §11.1) and
 * was made for the first URI, so it cannot be checked again here: the
 * outcome is reused only when this location verifies requests exactly as
 * the one that authenticated it (same configuration fingerprint), else the
 * request is refused (token_invalid: the credentials were not accepted
 * under this location's rules) rather than let through on another
 * location's rules. */
static int reuse_outcome(authn_ctx_t *a, dpop_req_t *prev)
{
    request_rec *r = a->r;
    unsigned char fp[DPOP_CONF_FP_LEN];
    a->rq = prev;
    if (!prev->has_verified_conf || dpop_conf_fingerprint(a->c, a->sc, fp) != DPOP_OK ||
        memcmp(fp, prev->verified_conf, sizeof(fp)) != 0)
        return fail(a, DPOP_REASON_TOKEN_INVALID,
                    "request verified under another DPoP configuration reached this location by "
                    "an internal redirect or subrequest; its single-use proof cannot be checked "
                    "again");
    r->user = apr_pstrdup(r->pool, prev->user);
    r->ap_auth_type = DPOP_AUTH_TYPE;
    /* An internal redirect renames the environment (REDIRECT_DPOP_JKT):
     * give the target's backend the verified identity under its names. */
    if (prev->jkt && !prev->bearer)
        apr_table_setn(r->subprocess_env, "DPOP_JKT", prev->jkt);
    if (prev->token_sub)
        apr_table_setn(r->subprocess_env, "DPOP_TOKEN_SUB", prev->token_sub);
    if (prev->token_client_id)
        apr_table_setn(r->subprocess_env, "DPOP_TOKEN_CLIENT_ID", prev->token_client_id);
    return OK;
}

int dpop_check_authn(request_rec *r)
{
    const char *type = ap_auth_type(r);
    const char *auth, *p;
    char *scheme;
    header_count_t hc;
    authn_ctx_t a;

    if (!type || strcasecmp(type, DPOP_AUTH_TYPE))
        return DECLINED;

    memset(&a, 0, sizeof(a));
    a.r = r;
    a.c = dpop_dir_conf(r);
    a.sc = dpop_srv_conf(r->server);

    a.now = (int64_t)apr_time_sec(apr_time_now());
    if (r->prev || r->main) {
        dpop_req_t *prev = dpop_req_get(r, 0);
        if (prev && prev->authenticated)
            return reuse_outcome(&a, prev);
    }
    a.rq = dpop_req_get(r, 1);

    if (!dpop_conf_has_token_source(a.c)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_dpop: AuthType DPoP without DPoPTokenJWKS, DPoPTokenMetadata or "
                      "DPoPTokenIntrospection for %s",
                      ap_escape_logitem(r->pool, r->uri));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    /* The proof header: httpd joins repeated headers with ", "; a compact
     * JWS never contains a comma, so a comma means several proofs. */
    hc.count = 0;
    hc.value = NULL;
    apr_table_do(count_header, &hc, r->headers_in, "DPoP", NULL);
    strip_spoofable(r);
    /* Never forwarded to the backend (it is a credential). */
    apr_table_unset(r->headers_in, "DPoP");

    auth = apr_table_get(r->headers_in, "Authorization");
    while (auth && (*auth == ' ' || *auth == '\t'))
        auth++;
    if (!auth || !*auth) {
        if (hc.count > 0)
            return fail(&a, DPOP_REASON_MISSING_TOKEN, "DPoP proof without an access token");
        if (dpop_conf_report_only(a.c))
            return fail(&a, DPOP_REASON_MISSING_TOKEN, "no credentials");
        /* RFC 6750 §3.1: no error attribute when no credentials were sent. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mod_dpop: no credentials for %s",
                      ap_escape_logitem(r->pool, r->uri));
        return dpop_respond_challenge(r, a.c, make_nonce(r, a.sc, a.c, a.now));
    }
    p = auth;
    scheme = ap_getword_white(r->pool, &p);
    while (*p == ' ' || *p == '\t')
        p++;
    if (!strcasecmp(scheme, "DPoP")) {
        record_token_hash(&a, p);
        if (hc.count > 1 || (hc.value && strchr(hc.value, ',')))
            return fail(&a, DPOP_REASON_MULTIPLE_PROOFS, "more than one DPoP header value");
        if (hc.count == 0 || !hc.value || !*hc.value)
            return fail(&a, DPOP_REASON_MISSING_PROOF, "DPoP scheme without a DPoP header");
        {
            apr_time_t t0 = apr_time_now();
            int rc = authn_dpop(&a, p, hc.value);
            dpop_metrics_observe_verification(apr_time_now() - t0);
            return rc;
        }
    }
    if (!strcasecmp(scheme, "Bearer")) {
        record_token_hash(&a, p);
        return authn_bearer(&a, p);
    }
    /* Another scheme (Basic...): not credentials for us. */
    if (hc.count > 0)
        return fail(&a, DPOP_REASON_MISSING_TOKEN, "DPoP proof without a DPoP access token");
    if (dpop_conf_report_only(a.c))
        return fail(&a, DPOP_REASON_MISSING_TOKEN, "no DPoP or Bearer credentials");
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "mod_dpop: Authorization scheme is neither DPoP nor Bearer for %s",
                  ap_escape_logitem(r->pool, r->uri));
    return dpop_respond_challenge(r, a.c, make_nonce(r, a.sc, a.c, a.now));
}
