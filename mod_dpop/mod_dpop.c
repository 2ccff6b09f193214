/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop.c: the module record and hook registration of mod_dpop, the
 * Apache httpd 2.4 module enforcing OAuth 2.0 DPoP (RFC 9449).
 *
 * Lifecycle (STYLE.md "Configuration"):
 *   pre_config   registers the replay-cache mutex;
 *   directives   load and validate JWKS, algorithms, cache spec, nonce
 *                secret and policy file (mod_dpop_config.c), so `apache2 -t`
 *                stops on any of them;
 *   check_config gives servers without DPoPReplayCache the default shmcb
 *                cache and checks DPoPNonce has a secret;
 *   post_config  attaches the shared cache and mutex kept across restarts
 *                (created when first configured; skipped on the first,
 *                dry-run pass) and creates the audit directory;
 *   child_init   re-attaches the mutex, opens memcache clients, the proof
 *                key cache, the policy watches and the audit writers (no
 *                LMDB environment or lock ever crosses fork());
 *   check_authn  verifies token + proof (mod_dpop_authn.c);
 *   fixups       removes the DPoP proof and DPoP-* / X-DPoP-* headers of
 *                every AuthType DPoP request (mod_dpop_authn.c);
 *   authz        `Require dpop-policy` (mod_dpop_authz.c);
 *   insert_error_filter  turns a policy denial into insufficient_scope;
 *   handler      SetHandler dpop-metrics (mod_dpop_metrics.c).
 *
 * Must never: log or forward credentials (see the glue files).
 */
#include "mod_dpop.h"
#include "mod_dpop_config.h"
#include "mod_dpop_replay.h"
#include "mod_dpop_metrics.h"
#include "mod_dpop_tokensrc.h"

#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_auth.h"

static int dpop_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    dpop_replay_pre_config(pconf);
    return OK;
}

static int dpop_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    int rc = dpop_config_check(pconf, plog, ptemp, s);
    if (rc != OK)
        return rc;
    return dpop_replay_check_config(pconf, ptemp, s);
}

static int dpop_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    int rc;
    /* The first pass at startup only checks the configuration; shared
     * memory and mutexes are created on the real one. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    rc = dpop_metrics_post_config(pconf, s);
    if (rc != OK)
        return rc;
    rc = dpop_replay_post_config(pconf, ptemp, s);
    if (rc != OK)
        return rc;
    return dpop_audit_post_config(pconf, s);
}

static void dpop_child_init(apr_pool_t *p, server_rec *s)
{
    dpop_replay_child_init(p, s);
    dpop_authn_child_init(p, s);
    dpop_tokensrc_child_init(p, s);
    dpop_authz_child_init(p, s);
    dpop_audit_child_init(p, s);
}

/* The directives whose objects belong to other glue files are validated
 * through these, so the config file stays the bottom of the glue. */
static const dpop_config_validators_t validators = {
    dpop_replay_configure,
    dpop_policy_validate,
    dpop_audit_validate,
};

static void dpop_register_hooks(apr_pool_t *p)
{
    dpop_config_set_validators(&validators);
    ap_hook_pre_config(dpop_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(dpop_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(dpop_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(dpop_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* AP_AUTH_INTERNAL_PER_CONF: not re-run for internal redirects and
     * subrequests with the same auth config (the proof is single-use). */
    ap_hook_check_authn(dpop_check_authn, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    /* Before every other fixup (mod_headers, mod_rewrite) and the handler:
     * no credential or spoofable header reaches a backend, even when
     * authorization passed without check_authn. */
    ap_hook_fixups(dpop_strip_fixup, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_error_filter(dpop_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(dpop_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(dpop_audit_count_request, NULL, NULL, APR_HOOK_MIDDLE);
    dpop_authz_register(p);
}

AP_DECLARE_MODULE(dpop) = {
    STANDARD20_MODULE_STUFF,
    dpop_create_dir_conf, /* per-directory config */
    dpop_merge_dir_conf,  /* merge per-directory */
    dpop_create_srv_conf, /* per-server config */
    dpop_merge_srv_conf,  /* merge per-server */
    dpop_cmds,            /* directives */
    dpop_register_hooks,  /* hooks */
    0                     /* flags */
};
