/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_audit.c: sends mod_dpop's rejections (and report-only would-be
 * rejections) to the LMDB audit store through logger/dpop_audit.h's
 * asynchronous writer (Apache glue).
 *
 * One writer per audit directory per child process, started in child_init
 * (an MDB_env must never cross fork()) and stopped by a cleanup of the child
 * pool, which commits what is queued.  Submitting copies the event into a
 * bounded queue and returns: auditing never stalls or changes a request.
 * Write failures (map full, disk, permissions) are logged at most once per
 * AUDIT_ERROR_INTERVAL per process.
 *
 * Must never: put the access token, the proof or key material in an event;
 * the token is identified by its hash (the ath value).
 */
#include "mod_dpop.h"
#include "mod_dpop_config.h"
#include "mod_dpop_metrics.h"

#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "unixd.h"
#include "apr_atomic.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_file_info.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "dpop_audit.h"

APLOG_USE_MODULE(dpop);

#define AUDIT_ERROR_INTERVAL 60 /* s between two "audit store failing" lines */
#define AUDIT_QUEUE_CAP 16384
#define AUDIT_UA_MAX 512

struct dpop_audit_glue {
    const char *dir;
    audit_writer_t *writer;
    char start_err[256];                          /* why the writer did not start ("" if it did) */
    volatile apr_uint32_t last_report;            /* apr_time_sec of the last error line */
    volatile apr_uint32_t pending_start_failures; /* dropped: no writer */
};

static char audit_hostname[256] = "";

const char *dpop_audit_validate(apr_pool_t *p, const char *dir)
{
    apr_finfo_t fi;
    char *parent, *slash;
    if (!dir || dir[0] != '/')
        return "must be an absolute directory path";
    if (apr_stat(&fi, dir, APR_FINFO_TYPE, p) == APR_SUCCESS) {
        if (fi.filetype != APR_DIR)
            return "exists and is not a directory";
        return NULL;
    }
    parent = apr_pstrdup(p, dir);
    slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        parent = "/";
    if (apr_stat(&fi, parent, APR_FINFO_TYPE, p) != APR_SUCCESS || fi.filetype != APR_DIR)
        return apr_psprintf(p, "parent directory %s does not exist", parent);
    return NULL;
}

/* post_config (as root): create a missing store directory owned by the
 * httpd User, so children (which open the store) can write it. */
int dpop_audit_post_config(apr_pool_t *pconf, server_rec *s)
{
    server_rec *vs;
    for (vs = s; vs; vs = vs->next) {
        dpop_srv_conf_t *sc = dpop_srv_conf(vs);
        struct stat st;
        if (!sc->audit_dir || stat(sc->audit_dir, &st) == 0)
            continue;
        if (mkdir(sc->audit_dir, 0750) != 0 && errno != EEXIST) {
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, vs,
                         "mod_dpop: cannot create DPoPAuditLog directory %s", sc->audit_dir);
            continue;
        }
        if (geteuid() == 0 &&
            chown(sc->audit_dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0)
            ap_log_error(APLOG_MARK, APLOG_WARNING, errno, vs,
                         "mod_dpop: cannot give DPoPAuditLog directory %s to the httpd User",
                         sc->audit_dir);
    }
    return OK;
}

static apr_status_t writer_cleanup(void *data)
{
    struct dpop_audit_glue *g = data;
    if (g->writer)
        audit_writer_stop(g->writer);
    g->writer = NULL;
    return APR_SUCCESS;
}

/* The audit map gauges from the writer's last measure (taken after its
 * last commit: a mutex read, no LMDB work on the request path). */
static void publish_map_usage(struct dpop_audit_glue *g)
{
    uint64_t used = 0, size = 0;
    audit_writer_usage(g->writer, &used, &size);
    if (size)
        dpop_metrics_audit_map((apr_uint64_t)used, (apr_uint64_t)size);
}

void dpop_audit_child_init(apr_pool_t *p, server_rec *s)
{
    apr_hash_t *by_dir = apr_hash_make(p);
    server_rec *vs;
    if (gethostname(audit_hostname, sizeof(audit_hostname) - 1) != 0)
        audit_hostname[0] = '\0';
    audit_hostname[sizeof(audit_hostname) - 1] = '\0';
    for (vs = s; vs; vs = vs->next) {
        dpop_srv_conf_t *sc = dpop_srv_conf(vs);
        struct dpop_audit_glue *g;
        if (!sc->audit_dir)
            continue;
        g = apr_hash_get(by_dir, sc->audit_dir, APR_HASH_KEY_STRING);
        if (!g) {
            g = apr_pcalloc(p, sizeof(*g));
            g->dir = sc->audit_dir;
            if (audit_writer_start(g->dir, dpop_conf_audit_mapsize(sc), AUDIT_QUEUE_CAP, &g->writer,
                                   g->start_err, sizeof(g->start_err)) != DPOP_OK) {
                g->writer = NULL;
                if (!g->start_err[0])
                    apr_cpystrn(g->start_err, "cannot start the audit writer",
                                sizeof(g->start_err));
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, vs,
                             "mod_dpop: audit store %s unavailable in this child: %s (requests "
                             "are unaffected; events are not recorded)",
                             g->dir, g->start_err);
            }
            else {
                g->start_err[0] = '\0';
                apr_pool_cleanup_register(p, g, writer_cleanup, apr_pool_cleanup_null);
                publish_map_usage(g);
            }
            apr_hash_set(by_dir, g->dir, APR_HASH_KEY_STRING, g);
        }
        sc->audit = g;
    }
}

/* At most one error line per interval per process, whatever the threads. */
static void report_errors(request_rec *r, struct dpop_audit_glue *g)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t last = apr_atomic_read32(&g->last_report);
    char last_err[256] = "";
    size_t n = 0;
    if (now - last < AUDIT_ERROR_INTERVAL && last != 0)
        return;
    if (apr_atomic_cas32(&g->last_report, now, last) != last)
        return; /* another thread reports */
    if (g->writer)
        n = audit_writer_take_errors(g->writer, last_err, sizeof(last_err));
    else
        apr_cpystrn(last_err, g->start_err, sizeof(last_err));
    n += (size_t)apr_atomic_xchg32(&g->pending_start_failures, 0);
    dpop_metrics_add(DPOP_M_AUDIT_ERRORS, (apr_uint64_t)n);
    if (n == 0) {
        /* nothing to say: let the next failure report without waiting */
        apr_atomic_set32(&g->last_report, last);
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "mod_dpop: audit store %s: %lu event(s) not recorded (%s); next report in "
                  "%d s at the earliest",
                  g->dir, (unsigned long)n, last_err[0] ? last_err : "queue full",
                  AUDIT_ERROR_INTERVAL);
}

static const char *bounded(apr_pool_t *p, const char *s, apr_size_t max)
{
    return s ? apr_pstrndup(p, s, max) : NULL;
}

void dpop_audit_failure(request_rec *r, const dpop_req_t *rq, const dpop_failure_t *f,
                        int report_only)
{
    const dpop_srv_conf_t *sc = dpop_srv_conf(r->server);
    struct dpop_audit_glue *g = sc->audit;
    audit_event_t ev;
    const char *rid;
    if (!g)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.ts_us = (int64_t)apr_time_now();
    ev.host = audit_hostname[0] ? audit_hostname : NULL;
    ev.vhost = r->server->server_hostname;
    ev.pid = (int64_t)getpid();
    /* mod_unique_id sets UNIQUE_ID in post_read_request, before authn. */
    rid = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    ev.request_id = rid ? rid : r->log_id;
    ev.client_ip = r->useragent_ip;
    ev.method = r->method;
    ev.path = r->uri; /* r->uri never holds the query */
    ev.error = f->error;
    ev.reason = f->reason;
    ev.detail = f->detail[0] ? f->detail : NULL;
    ev.user_agent = bounded(r->pool, apr_table_get(r->headers_in, "User-Agent"), AUDIT_UA_MAX);
    ev.mode = report_only ? "report-only" : "enforce";
    if (rq) {
        ev.jkt = rq->jkt;
        ev.jti = rq->jti;
        ev.iat = rq->iat;
        ev.has_iat = rq->has_iat;
        ev.htm = rq->htm;
        ev.htu = rq->htu;
        ev.alg = rq->alg;
        ev.token_hash = rq->token_hash;
        ev.token_sub = rq->token_sub;
        ev.token_client_id = rq->token_client_id;
        /* An authentication failure (replay, theft, bad signature) never
         * reaches the policy: name the key's client from the policy here,
         * so alerts and reports say whose key failed. */
        ev.policy_client =
            rq->policy_client ? rq->policy_client : dpop_policy_client_of(r, rq->jkt);
    }
    {
        dpop_req_t *mark = dpop_req_get(r, 1); /* counted once as rejected */
        if (mark) {
            mark->audit_rejected = 1;
            mark->audit_report_only = report_only;
        }
    }
    /* A writer's own drops (queue full) are counted by the writer. */
    if (!g->writer)
        apr_atomic_inc32(&g->pending_start_failures);
    else if (audit_writer_submit(g->writer, &ev) == DPOP_OK)
        dpop_metrics_add(DPOP_M_AUDIT_SUBMITTED, 1);
    if (g->writer)
        publish_map_usage(g);
    report_errors(r, g);
}

int dpop_audit_count_request(request_rec *r)
{
    const dpop_srv_conf_t *sc = dpop_srv_conf(r->server);
    struct dpop_audit_glue *g = sc->audit;
    dpop_req_t *rq;
    int report_only;
    if (!g || !g->writer || r->main)
        return DECLINED;
    rq = dpop_req_get(r, 0);
    if (!rq)
        return DECLINED; /* mod_dpop did not decide this request */
    report_only =
        rq->audit_rejected ? rq->audit_report_only : dpop_conf_report_only(dpop_dir_conf(r));
    /* an in-process table under the writer's mutex; the writer adds it to
     * the store with its next batch (never a transaction per request) */
    (void)audit_writer_count(g->writer, (int64_t)r->request_time,
                             audit_hostname[0] ? audit_hostname : NULL, r->server->server_hostname,
                             report_only ? "report-only" : "enforce", rq->audit_rejected ? 0 : 1,
                             rq->audit_rejected ? 1 : 0);
    return DECLINED;
}
