/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop.h: declarations shared by the Apache glue files of mod_dpop
 * (mod_dpop.c, mod_dpop_config.c, mod_dpop_authn.c, mod_dpop_authz.c, mod_dpop_replay.c,
 * mod_dpop_respond.c, mod_dpop_audit.c).  Only glue includes httpd headers; the
 * portable core (dpop_proof.h, dpop_token.h, ...) never includes this file.
 *
 * Must never: carry a token or a proof in a request record: the record holds
 * only what the audit store and the error log may see (jkt, jti, claims,
 * token hash).
 */
#ifndef MOD_DPOP_H
#define MOD_DPOP_H

#include "httpd.h"
#include "http_config.h"

#include "mod_dpop_config.h"
#include "dpop_result.h"

#define DPOP_AUTH_TYPE "DPoP"

/* What check_authn learned about a request, for the authz provider, the
 * error filter and the audit glue.  Lives in the initial request's pool,
 * attached to its request_config, and is read after the subrequests that
 * wrote into it are destroyed: every string it points to must be allocated
 * from its own pool (the pool member), never from a subrequest's r->pool. */
typedef struct {
    apr_pool_t *pool;  /* the pool the record lives in: allocate from it */
    int authenticated; /* check_authn returned OK */
    int bearer;        /* accepted as an unbound Bearer token */
    /* dpop_conf_fingerprint() of the configuration that authenticated the
     * request: internal redirects and subrequests reuse the outcome only
     * where the fingerprint is the same (has_verified_conf). */
    unsigned char verified_conf[DPOP_CONF_FP_LEN];
    int has_verified_conf;
    const char *user; /* r->user as set by us */
    const char *jkt;
    const char *jti;
    const char *htm;
    const char *htu;
    const char *alg;
    apr_int64_t iat;
    int has_iat;
    const char *token_hash; /* ath of the presented token; never the token */
    const char *token_sub;
    const char *token_client_id;
    const char *policy_client;
    /* Set by the authz provider when it denied (enforce mode). */
    dpop_reason_t policy_denial;
    const char *policy_detail;
    int policy_audited; /* the error filter recorded the denial */
    /* Set by the audit glue: an event was recorded for this request
     * (counted once as rejected in the per-hour counts), and its mode. */
    int audit_rejected;
    int audit_report_only;
} dpop_req_t;

/* The record of the initial request (walking r->prev / r->main); created on
 * first use when create is non-zero. */
dpop_req_t *dpop_req_get(request_rec *r, int create);

/* mod_dpop_authn.c */
int dpop_check_authn(request_rec *r);
/* fixups: the DPoP proof and DPoP-* / X-DPoP-* request headers removed for
 * every AuthType DPoP request, authenticated or not. */
int dpop_strip_fixup(request_rec *r);
void dpop_authn_child_init(apr_pool_t *p, server_rec *s);

/* mod_dpop_authz.c */
void dpop_authz_register(apr_pool_t *p);
void dpop_authz_child_init(apr_pool_t *p, server_rec *s);
void dpop_insert_error_filter(request_rec *r);
/* The policy's client name for jkt (NULL when no policy or an unknown
 * key), for the audit record of a failure the policy did not decide. */
const char *dpop_policy_client_of(request_rec *r, const char *jkt);
/* Validate a policy file at config time: NULL or "file:line:col: msg; ...".
 * Registered with dpop_config_set_validators() by mod_dpop.c. */
const char *dpop_policy_validate(apr_pool_t *p, const char *path);

/* mod_dpop_audit.c */
int dpop_audit_post_config(apr_pool_t *pconf, server_rec *s);
void dpop_audit_child_init(apr_pool_t *p, server_rec *s);
/* Record one rejection (or a would-be rejection when report_only). */
void dpop_audit_failure(request_rec *r, const dpop_req_t *rq, const dpop_failure_t *f,
                        int report_only);
/* log_transaction: count the request once (verified, or rejected when an
 * event was recorded) in the audit store's per-hour counts. */
int dpop_audit_count_request(request_rec *r);
/* Config-time check of DPoPAuditLog: NULL when usable.  Registered with
 * dpop_config_set_validators() by mod_dpop.c. */
const char *dpop_audit_validate(apr_pool_t *p, const char *dir);

#endif /* MOD_DPOP_H */
