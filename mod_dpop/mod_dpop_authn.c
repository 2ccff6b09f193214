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

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include <string.h>
#include <strings.h>

#include "dpop_alg.h"
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

static void strip_spoofable(request_rec *r)
{
    apr_array_header_t *names = apr_array_make(r->pool, 2, sizeof(const char *));
    int i;
    apr_table_do(collect_spoofable, names, r->headers_in, NULL);
    for (i = 0; i < names->nelts; i++)
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(names, i, const char *));
    apr_table_unset(r->subprocess_env, "DPOP_JKT");
    apr_table_unset(r->subprocess_env, "DPOP_CLIENT");
    apr_table_unset(r->subprocess_env, "DPOP_TOKEN_SUB");
    apr_table_unset(r->subprocess_env, "DPOP_TOKEN_CLIENT_ID");
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

/* htu as the client saw the request (RFC 9449 §4.3 (9)): DPoPExternalURL
 * when set, else scheme + ServerName + port; then the request path exactly as
 * sent (before percent-decoding), without query.  Client-supplied Host and
 * X-Forwarded-* headers are never used. */
static const char *request_htu(request_rec *r, const dpop_dir_conf_t *c)
{
    const char *path = r->parsed_uri.path;
    const char *host;
    apr_port_t port;
    if (!path || path[0] != '/')
        path = "/";
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

static void copy_proof_fields(request_rec *r, dpop_req_t *rq, const dpop_proof_result_t *pr)
{
    if (pr->jkt[0] && !rq->jkt)
        rq->jkt = apr_pstrdup(r->pool, pr->jkt);
    if (pr->jti)
        rq->jti = apr_pstrndup(r->pool, pr->jti, DPOP_JTI_MAX);
    if (pr->htm)
        rq->htm = apr_pstrndup(r->pool, pr->htm, 64);
    if (pr->htu)
        rq->htu = apr_pstrndup(r->pool, pr->htu, 2048);
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
        rq->token_sub = apr_pstrndup(r->pool, tr->sub, 256);
    if (tr->client_id)
        rq->token_client_id = apr_pstrndup(r->pool, tr->client_id, 256);
}

/* ---- outcome ----------------------------------------------------------- */

typedef struct {
    request_rec *r;
    const dpop_dir_conf_t *c;
    const dpop_srv_conf_t *sc;
    dpop_req_t *rq;
    int64_t now;
    int token_ok; /* the token verified: its sub may name the user */
} authn_ctx_t;

/* A rejection: enforce -> log + audit + challenge status; report-only ->
 * log + audit and let the request through (unauthenticated identity). */
static int reject(authn_ctx_t *a, const dpop_failure_t *f)
{
    const char *nonce;
    request_rec *r = a->r;
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
    a->rq->user = apr_pstrdup(r->pool, user);
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
        a->rq->token_hash = apr_pstrdup(a->r->pool, ath);
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
    tp.jwks = a->c->jwks;
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
 * must never be accepted this way (RFC 9449 §7.2: bearer_downgrade); an
 * unbound one only with DPoPAllowBearer On. */
static int authn_bearer(authn_ctx_t *a, const char *token)
{
    dpop_token_result_t tr;
    dpop_failure_t f;
    int rc;
    dpop_token_result_init(&tr);
    dpop_failure_clear(&f);
    if (verify_token(a, token, &tr, &f) != DPOP_OK) {
        rc = reject(a, &f);
        goto done;
    }
    if (tr.jkt) {
        a->rq->jkt = apr_pstrdup(a->r->pool, tr.jkt);
        rc = fail(a, DPOP_REASON_BEARER_DOWNGRADE, "DPoP-bound token sent with the Bearer scheme");
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
    dpop_replay_status_t st;
    int rc;

    dpop_token_result_init(&tr);
    dpop_proof_result_init(&pr);
    dpop_failure_clear(&f);

    if (verify_token(a, token, &tr, &f) != DPOP_OK) {
        audit_enrich_proof(a, proof);
        rc = reject(a, &f);
        goto done;
    }
    if (!tr.jkt) {
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
    a->rq->jkt = apr_pstrdup(r->pool, pr.jkt);

    /* RFC 9449 §11.1: single use of a jti within the acceptance window. */
    if (!pr.jti || dpop_replay_key(pr.jkt, pr.jti, key) != DPOP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_dpop: cannot compute the replay key");
        rc = HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }
    st = dpop_replay_check_and_store(
        a->sc->replay, r->server, key,
        apr_time_from_sec(pr.iat + dpop_conf_lifetime(a->c) + dpop_conf_skew(a->c) + 1), r->pool,
        &errmsg);
    dpop_metrics_add(st == DPOP_REPLAY_FRESH  ? DPOP_M_REPLAY_INSERTS
                     : st == DPOP_REPLAY_SEEN ? DPOP_M_REPLAY_HITS
                                              : DPOP_M_REPLAY_ERRORS,
                     1);
    if (st == DPOP_REPLAY_SEEN) {
        rc = fail(a, DPOP_REASON_REPLAY, "jti already used with this key");
        goto done;
    }
    if (st == DPOP_REPLAY_ERROR) {
        /* Fail closed: without the cache we cannot tell a replay apart. */
        if (dpop_conf_report_only(a->c)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "mod_dpop: report-only, replay cache unavailable (%s): request "
                          "passed unchecked",
                          errmsg ? errmsg : "unknown error");
        }
        else {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "mod_dpop: replay cache unavailable (%s %s): %s; answering 503",
                          dpop_replay_kind(a->sc->replay), a->sc->replay_spec,
                          errmsg ? errmsg : "unknown error");
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

    /* An internal redirect or subrequest of a request we already verified:
     * the proof was single-use, reuse the outcome. */
    if (r->prev || r->main) {
        dpop_req_t *prev = dpop_req_get(r, 0);
        if (prev && prev->authenticated) {
            r->user = apr_pstrdup(r->pool, prev->user);
            r->ap_auth_type = DPOP_AUTH_TYPE;
            return OK;
        }
    }
    a.rq = dpop_req_get(r, 1);
    a.now = (int64_t)apr_time_sec(apr_time_now());

    if (!a.c->jwks) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_dpop: AuthType DPoP without DPoPTokenJWKS for %s",
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
