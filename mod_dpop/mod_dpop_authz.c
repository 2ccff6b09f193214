/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_authz.c: the `Require dpop-policy` authz provider (Apache glue over
 * policy/dpop_policy.h).
 *
 * The provider decides on the jkt that check_authn verified, the request
 * method and r->uri (percent-decoded, dot-segments resolved, as DESIGN.md
 * says paths are judged).  Each child process holds a policy_watch per
 * policy file and a watcher thread (started in child_init, after fork;
 * stopped and joined by a cleanup of the child pool, so it never outlives
 * the child nor crosses a graceful restart) that stats the file every
 * POLICY_RELOAD_INTERVAL whether or not requests arrive and swaps a changed
 * file in atomically once parsed: a change is in force for every request of
 * every child within the interval plus the parse time (issue 15 item 8,
 * docs/policy.md).  A broken new file keeps the last good policy and its
 * positioned errors go to the error log, once per child.
 *
 * 403 without AuthzSendForbiddenOnFailure: mod_authz_core answers 401 when an
 * authenticated user is denied unless its per-section flag
 * "AuthzSendForbiddenOnFailure" is on (authorize_user_core in
 * mod_authz_core.c).  A policy denial is not an authentication problem
 * (RFC 6750 §3.1: insufficient_scope -> 403), so the parser of a
 * `Require dpop-policy` line applies "AuthzSendForbiddenOnFailure On" to the
 * section it appears in, through httpd's own config walker exactly as if the
 * administrator had written it (an explicit "AuthzSendForbiddenOnFailure Off"
 * later in the section still wins).  Authentication failures never reach
 * authz: they stay 401 from check_authn.  The WWW-Authenticate
 * error="insufficient_scope" header and the audit event are added only when
 * the request really ends in that error (insert_error_filter), so a
 * <RequireAny> that grants through another rule produces neither.
 *
 * Must never: log or audit a token or proof; only jkt, client name, rule.
 */
#include "mod_dpop.h"
#include "mod_dpop_config.h"
#include "mod_dpop_respond.h"
#include "mod_dpop_metrics.h"

#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_request.h"
#include "ap_provider.h"
#include "mod_auth.h"
#include "apr_atomic.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include <string.h>

#include "dpop_policy.h"

APLOG_USE_MODULE(dpop);

#define POLICY_RELOAD_INTERVAL 1 /* s: issue 4, "at most once a second" */

struct dpop_policy_glue {
    const char *path;
    server_rec *s; /* where the watcher thread logs */
    policy_watch_t *watch;
    volatile apr_uint32_t reloads_seen; /* policy_watch_reloads() already counted */
};

static void count_reloads(struct dpop_policy_glue *g);

static void log_policy_errors(server_rec *s, request_rec *r, const char *what,
                              const policy_errors_t *errs)
{
    size_t i;
    for (i = 0; i < errs->count; i++) {
        char line[1024];
        policy_error_format(&errs->items[i], line, sizeof(line));
        if (r)
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_dpop: %s: %s", what, line);
        else
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "mod_dpop: %s: %s", what, line);
    }
}

const char *dpop_policy_validate(apr_pool_t *p, const char *path)
{
    policy_t *pol = NULL;
    policy_errors_t errs;
    const char *msg = NULL;
    size_t i;
    policy_errors_init(&errs);
    if (policy_load_file(path, &pol, &errs) != DPOP_OK || !pol) {
        msg = apr_psprintf(p, "%s: cannot load the policy:", path);
        for (i = 0; i < errs.count && i < 10; i++) {
            char line[1024];
            policy_error_format(&errs.items[i], line, sizeof(line));
            msg = apr_pstrcat(p, msg, i ? "; " : " ", line, NULL);
        }
        if (errs.count > 10)
            msg = apr_psprintf(p, "%s; ... (%lu errors in all)", msg, (unsigned long)errs.count);
    }
    policy_free(pol);
    policy_errors_clear(&errs);
    return msg;
}

static apr_status_t watch_cleanup(void *data)
{
    struct dpop_policy_glue *g = data;
    /* stops and joins the watcher thread first (at most one check to wait
     * for), then frees the watch */
    if (g->watch)
        policy_watch_close(g->watch);
    g->watch = NULL;
    return APR_SUCCESS;
}

/* The watcher thread's report of a check (never a request thread's). */
static void watch_notify(void *ctx, int reloaded, const policy_errors_t *errs)
{
    struct dpop_policy_glue *g = ctx;
    if (errs->count > 0) {
        dpop_metrics_add(DPOP_M_POLICY_LOAD_ERRORS, 1);
        log_policy_errors(g->s, NULL, "policy reload failed, previous policy kept", errs);
    }
    if (reloaded) {
        count_reloads(g);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, g->s, "mod_dpop: policy %s reloaded", g->path);
    }
}

void dpop_authz_child_init(apr_pool_t *p, server_rec *s)
{
    apr_hash_t *by_path = apr_hash_make(p);
    server_rec *vs;
    for (vs = s; vs; vs = vs->next) {
        dpop_srv_conf_t *sc = dpop_srv_conf(vs);
        struct dpop_policy_glue *g;
        policy_errors_t errs;
        if (!sc->policy_file)
            continue;
        g = apr_hash_get(by_path, sc->policy_file, APR_HASH_KEY_STRING);
        if (!g) {
            g = apr_pcalloc(p, sizeof(*g));
            g->path = sc->policy_file;
            g->s = s;
            policy_errors_init(&errs);
            if (policy_watch_open(g->path, POLICY_RELOAD_INTERVAL, &g->watch, &errs) != DPOP_OK) {
                g->watch = NULL;
                log_policy_errors(vs, NULL, "DPoPPolicyFile cannot be loaded in this child", &errs);
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, vs,
                             "mod_dpop: policy %s unavailable (is it readable by the httpd "
                             "User?); 'Require dpop-policy' denies with 500",
                             g->path);
            }
            else {
                apr_pool_cleanup_register(p, g, watch_cleanup, apr_pool_cleanup_null);
                if (policy_watch_start(g->watch, POLICY_RELOAD_INTERVAL * 1000, watch_notify, g) !=
                    DPOP_OK)
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, vs,
                                 "mod_dpop: cannot start the policy watcher thread for %s; "
                                 "requests check the file instead (a change may then take "
                                 "effect only when requests arrive)",
                                 g->path);
            }
            policy_errors_clear(&errs);
            apr_hash_set(by_path, sc->policy_file, APR_HASH_KEY_STRING, g);
        }
        sc->policy = g;
    }
}

/* Apply "AuthzSendForbiddenOnFailure On" to the section being parsed, via
 * ap_walk_config on a one-directive tree: the same path httpd takes for a
 * line in the config file (lookup, override check, mod_authz_core's own
 * handler on its own per-section record). */
static const char *force_forbidden_on_failure(cmd_parms *cmd)
{
    ap_directive_t *d;
    const ap_directive_t *saved_dir = cmd->directive;
    const command_rec *saved_cmd = cmd->cmd;
    void *saved_info = cmd->info;
    const char *err;
    if (!cmd->path)
        return NULL; /* not inside a section (e.g. AuthzProviderAlias) */
    d = apr_pcalloc(cmd->pool, sizeof(*d));
    d->directive = "AuthzSendForbiddenOnFailure";
    d->args = "On";
    if (saved_dir) {
        d->filename = saved_dir->filename;
        d->line_num = saved_dir->line_num;
        d->parent = saved_dir->parent;
    }
    err = ap_walk_config(d, cmd, cmd->context);
    cmd->directive = (ap_directive_t *)saved_dir;
    cmd->cmd = saved_cmd;
    cmd->info = saved_info;
    return err;
}

static const char *policy_parse(cmd_parms *cmd, const char *req_args,
                                const void **parsed_require_line)
{
    const char *err;
    if (req_args && *req_args)
        return "'Require dpop-policy' takes no arguments (the policy is DPoPPolicyFile)";
    err = force_forbidden_on_failure(cmd);
    if (err)
        return apr_pstrcat(cmd->pool, "Require dpop-policy: ", err, NULL);
    *parsed_require_line = NULL;
    return NULL;
}

/* Add this child's reloads not yet counted to the shared metric: the watch
 * counts its swaps; the thread (watcher or request) whose CAS moves the
 * mark adds the difference, so each reload is counted exactly once. */
static void count_reloads(struct dpop_policy_glue *g)
{
    apr_uint32_t now = (apr_uint32_t)policy_watch_reloads(g->watch), seen;
    while ((seen = apr_atomic_read32(&g->reloads_seen)) < now) {
        if (apr_atomic_cas32(&g->reloads_seen, now, seen) == seen) {
            dpop_metrics_add(DPOP_M_POLICY_RELOADS, now - seen);
            break;
        }
    }
}

/* A policy denial of f.  report-only: logged and audited now, and the
 * request goes on.  enforce: logged now; the challenge and the audit event
 * follow only if the request really ends in the error (insert_error_filter).
 * jkt/jti: what the log line names. */
static authz_status deny(request_rec *r, dpop_req_t *rq, const dpop_failure_t *f, int report_only,
                         const char *jkt, const char *jti)
{
    dpop_metrics_rejected(f->code, report_only);
    if (report_only) {
        dpop_respond_log(r, APLOG_WARNING, "report-only, would deny", f, jkt, jti);
        dpop_audit_failure(r, rq, f, 1);
        return AUTHZ_GRANTED;
    }
    rq->policy_denial = f->code;
    rq->policy_detail = apr_pstrdup(rq->pool, f->detail);
    dpop_respond_log(r, APLOG_ERR, "policy denied", f, jkt, jti);
    return AUTHZ_DENIED;
}

static authz_status policy_check(request_rec *r, const char *req_args,
                                 const void *parsed_require_line)
{
    const dpop_dir_conf_t *c = dpop_dir_conf(r);
    const dpop_srv_conf_t *sc = dpop_srv_conf(r->server);
    dpop_req_t *rq = dpop_req_get(r, 0);
    int report_only = dpop_conf_report_only(c);
    const policy_t *pol;
    policy_errors_t errs;
    policy_decision_t d;
    dpop_failure_t f;
    int64_t now = (int64_t)apr_time_sec(apr_time_now());

    if (!r->user)
        return AUTHZ_DENIED_NO_USER;
    if (!sc->policy_file) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_dpop: 'Require dpop-policy' without DPoPPolicyFile for this server");
        return AUTHZ_GENERAL_ERROR;
    }
    if (!sc->policy || !sc->policy->watch) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_dpop: policy %s is not loaded in this process", sc->policy_file);
        return AUTHZ_GENERAL_ERROR;
    }
    dpop_failure_clear(&f);
    if (!rq || !rq->authenticated || !rq->jkt) {
        /* report-only already recorded the authentication failure. */
        if (report_only && rq && !rq->authenticated)
            return AUTHZ_GRANTED;
        dpop_fail(&f, DPOP_REASON_POLICY_DENIED, "no DPoP-bound key for this request");
        return deny(r, dpop_req_get(r, 1), &f, report_only, NULL, NULL);
    }

    policy_errors_init(&errs);
    pol = policy_watch_acquire(sc->policy->watch, now, &errs);
    if (errs.count > 0) {
        dpop_metrics_add(DPOP_M_POLICY_LOAD_ERRORS, 1);
        log_policy_errors(r->server, r, "policy reload failed, previous policy kept", &errs);
    }
    count_reloads(sc->policy);
    policy_errors_clear(&errs);
    if (!pol) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_dpop: no policy in force");
        return AUTHZ_GENERAL_ERROR;
    }
    memset(&d, 0, sizeof(d));
    policy_decide(pol, rq->jkt, r->method, r->uri, now, &d);
    if (d.client) {
        rq->policy_client = apr_pstrdup(rq->pool, d.client);
        apr_table_setn(r->subprocess_env, "DPOP_CLIENT", rq->policy_client);
    }
    policy_watch_release(sc->policy->watch, pol);

    if (d.allow) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_dpop: policy allows %s %s for %s: %s",
                      ap_escape_logitem(r->pool, r->method), ap_escape_logitem(r->pool, r->uri),
                      rq->policy_client ? rq->policy_client : rq->jkt, d.rule);
        return AUTHZ_GRANTED;
    }
    dpop_fail(&f,
              d.reason == DPOP_REASON_KEY_REVOKED ? DPOP_REASON_KEY_REVOKED
                                                  : DPOP_REASON_POLICY_DENIED,
              "client=%s rule=%s", rq->policy_client ? rq->policy_client : "(unknown key)",
              d.rule[0] ? d.rule : "(no matching route)");
    return deny(r, rq, &f, report_only, rq->jkt, rq->jti);
}

const char *dpop_policy_client_of(request_rec *r, const char *jkt)
{
    const dpop_srv_conf_t *sc = dpop_srv_conf(r->server);
    const policy_t *pol;
    policy_errors_t errs;
    policy_decision_t d;
    const char *client = NULL;
    if (!jkt || !sc->policy || !sc->policy->watch)
        return NULL;
    /* reload errors are logged by the authz path; only the name is wanted */
    policy_errors_init(&errs);
    pol = policy_watch_acquire(sc->policy->watch, (int64_t)apr_time_sec(apr_time_now()), &errs);
    policy_errors_clear(&errs);
    if (!pol)
        return NULL;
    memset(&d, 0, sizeof(d));
    policy_decide(pol, jkt, r->method, r->uri, (int64_t)apr_time_sec(apr_time_now()), &d);
    if (d.client)
        client = apr_pstrdup(r->pool, d.client);
    policy_watch_release(sc->policy->watch, pol);
    return client;
}

static const authz_provider dpop_policy_provider = {
    &policy_check,
    &policy_parse,
};

void dpop_authz_register(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "dpop-policy", AUTHZ_PROVIDER_VERSION,
                              &dpop_policy_provider, AP_AUTH_INTERNAL_PER_CONF);
}

/* The request ends in an error: when it is our policy denial, answer it as
 * RFC 6750 §3.1 insufficient_scope and record it (once). */
void dpop_insert_error_filter(request_rec *r)
{
    dpop_req_t *rq;
    dpop_failure_t f;
    if (r->status != HTTP_FORBIDDEN && r->status != HTTP_UNAUTHORIZED)
        return;
    rq = dpop_req_get(r, 0);
    if (!rq || rq->policy_denial == DPOP_REASON_NONE || rq->policy_audited)
        return;
    rq->policy_audited = 1;
    dpop_failure_clear(&f);
    dpop_fail(&f, rq->policy_denial, "%s", rq->policy_detail ? rq->policy_detail : "");
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   dpop_respond_challenge_value(r, dpop_dir_conf(r), &f));
    dpop_audit_failure(r, rq, &f, 0);
}
