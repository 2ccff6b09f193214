/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_metrics.c: shared counters and the dpop-metrics handler (see
 * mod_dpop_metrics.h).
 *
 * Layout: one struct in anonymous shared memory from the process pool (so
 * it survives graceful restarts with the parent), created once by the
 * parent and inherited by every child through fork.  All fields are
 * 64-bit counters updated with apr_atomic_add64.  The histogram keeps
 * cumulative-free bucket counts; the handler sums them into Prometheus'
 * cumulative "le" buckets when it prints.
 */
#include "mod_dpop_metrics.h"
#include "mod_dpop_config.h"
#include "mod_dpop_replay.h"

#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_strings.h"

#include <string.h>

APLOG_USE_MODULE(dpop);

/* The key names the layout's size: a graceful restart onto a module with
 * another set of counters (an upgrade) gets a new segment instead of
 * writing past the end of the old one. */
#define METRICS_RETAINED_KEY_FMT "mod_dpop-metrics-%lu"

/* Upper bounds of the verification histogram, in microseconds. */
static const apr_uint64_t bucket_us[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000};
#define NBUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))

typedef struct {
    volatile apr_uint64_t counters[DPOP_M__COUNT];
    volatile apr_uint64_t rejected[DPOP_REASON__COUNT][2]; /* [reason][report_only] */
    volatile apr_uint64_t hist[NBUCKETS + 1];              /* last: above every bound */
    volatile apr_uint64_t hist_sum_us;
    volatile apr_uint64_t replay_live, replay_capacity;   /* gauges (last seen) */
    volatile apr_uint64_t audit_map_used, audit_map_size; /* gauges (last commit) */
    volatile apr_uint64_t as_requests[DPOP_AS__KINDS][DPOP_ASO__COUNT];
    volatile apr_uint64_t as_timed[DPOP_AS__KINDS], as_sum_us[DPOP_AS__KINDS];
    volatile apr_uint64_t keyset_loaded_us; /* apr_time_t of the last good JWKS fetch */
} metrics_t;

typedef struct {
    apr_shm_t *shm;
} metrics_retained_t;

/* The shared counters; NULL until post_config (e.g. `apache2 -t`). */
static metrics_t *metrics = NULL;

void dpop_metrics_add(dpop_metric_t m, apr_uint64_t n)
{
    if (metrics && m < DPOP_M__COUNT)
        apr_atomic_add64(&metrics->counters[m], n);
}

void dpop_metrics_rejected(dpop_reason_t reason, int report_only)
{
    if (metrics && reason > DPOP_REASON_NONE && reason < DPOP_REASON__COUNT)
        apr_atomic_add64(&metrics->rejected[reason][report_only ? 1 : 0], 1);
}

void dpop_metrics_observe_verification(apr_interval_time_t elapsed)
{
    apr_uint64_t us = elapsed > 0 ? (apr_uint64_t)elapsed : 0;
    apr_size_t i = 0;
    if (!metrics)
        return;
    while (i < NBUCKETS && us > bucket_us[i])
        i++;
    apr_atomic_add64(&metrics->hist[i], 1);
    apr_atomic_add64(&metrics->hist_sum_us, us);
}

void dpop_metrics_as_request(dpop_as_kind_t kind, int outcome, double secs)
{
    if (!metrics || (unsigned)kind >= DPOP_AS__KINDS || outcome < 0 || outcome >= DPOP_ASO__COUNT)
        return;
    apr_atomic_add64(&metrics->as_requests[kind][outcome], 1);
    if (secs >= 0) {
        apr_atomic_add64(&metrics->as_timed[kind], 1);
        apr_atomic_add64(&metrics->as_sum_us[kind], (apr_uint64_t)(secs * 1e6));
    }
}

void dpop_metrics_keyset_loaded(apr_time_t t)
{
    if (metrics)
        apr_atomic_set64(&metrics->keyset_loaded_us, (apr_uint64_t)t);
}

void dpop_metrics_replay_fill(apr_uint64_t live, apr_uint64_t capacity)
{
    if (!metrics)
        return;
    apr_atomic_set64(&metrics->replay_live, live);
    apr_atomic_set64(&metrics->replay_capacity, capacity);
}

void dpop_metrics_audit_map(apr_uint64_t used, apr_uint64_t size)
{
    if (!metrics)
        return;
    apr_atomic_set64(&metrics->audit_map_used, used);
    apr_atomic_set64(&metrics->audit_map_size, size);
}

int dpop_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    const char *key =
        apr_psprintf(pconf, METRICS_RETAINED_KEY_FMT, (unsigned long)sizeof(metrics_t));
    metrics_retained_t *rt = ap_retained_data_get(key);
    apr_status_t rv;
    if (!rt) {
        rt = ap_retained_data_create(key, sizeof(*rt));
        rt->shm = NULL;
    }
    if (!rt->shm) {
        rv = apr_shm_create(&rt->shm, sizeof(metrics_t), NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            /* Metrics are not worth refusing to start for. */
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         "mod_dpop: cannot create shared memory for metrics; "
                         "dpop-metrics will answer 503");
            rt->shm = NULL;
            metrics = NULL;
            return OK;
        }
        memset(apr_shm_baseaddr_get(rt->shm), 0, sizeof(metrics_t));
    }
    metrics = apr_shm_baseaddr_get(rt->shm);
    return OK;
}

/* ---- exposition ---------------------------------------------------------- */

typedef struct {
    dpop_metric_t m;
    const char *name;
    const char *help;
} counter_desc_t;

static const counter_desc_t counters[] = {
    {DPOP_M_TOKEN_CACHE_HITS, "dpop_token_cache_hits_total",
     "Access tokens answered from the verified-token cache."},
    {DPOP_M_TOKEN_CACHE_MISSES, "dpop_token_cache_misses_total",
     "Access tokens verified in full (signature, iss, aud, exp, nbf)."},
    {DPOP_M_PROOF_SIGNATURES, "dpop_proof_signature_verifications_total",
     "DPoP proof signatures verified, valid or not (a proof is only verified once its access "
     "token passed)."},
    {DPOP_M_REPLAY_INSERTS, "dpop_replay_cache_inserts_total",
     "New proofs recorded in the replay cache."},
    {DPOP_M_REPLAY_HITS, "dpop_replay_cache_hits_total",
     "Proofs found in the replay cache (replays)."},
    {DPOP_M_REPLAY_ERRORS, "dpop_replay_cache_errors_total",
     "Replay cache unreachable or full: requests answered 503 (fail closed)."},
    {DPOP_M_NONCE_CHALLENGES, "dpop_nonce_challenges_total",
     "401 use_dpop_nonce answers carrying a DPoP-Nonce."},
    {DPOP_M_POLICY_RELOADS, "dpop_policy_reloads_total",
     "Changed policy files swapped in (counted once per child process)."},
    {DPOP_M_POLICY_LOAD_ERRORS, "dpop_policy_load_errors_total",
     "Changed policy files that failed to load (the last good policy stays)."},
    {DPOP_M_AUDIT_SUBMITTED, "dpop_audit_events_submitted_total",
     "Events queued for the audit store."},
    {DPOP_M_AUDIT_ERRORS, "dpop_audit_write_errors_total",
     "Events not recorded in the audit store (dropped or failed commits; "
     "counted when reported, at most once a minute per process)."},
    {DPOP_M_INTROSPECTION_CACHE_HITS, "dpop_introspection_cache_hits_total",
     "Opaque tokens answered from the introspection cache (no request to the AS)."},
};

static void print_single(request_rec *r, const char *type, const char *name, const char *help,
                         apr_uint64_t v);

static const char *as_kind_name(int k)
{
    return k == DPOP_AS_METADATA ? "metadata" : k == DPOP_AS_JWKS ? "jwks" : "introspection";
}

static const char *as_outcome_name(int o)
{
    if (o < DPOP_FETCH__COUNT)
        return dpop_fetch_outcome_name((dpop_fetch_outcome_t)o);
    return o == DPOP_ASO_INVALID ? "invalid" : o == DPOP_ASO_INACTIVE ? "inactive" : "overloaded";
}

/* Requests to the authorization server by kind and outcome, their time,
 * and the age of the newest good key set. */
static void print_as_metrics(request_rec *r)
{
    int k, o;
    apr_uint64_t loaded;
    ap_rputs("# HELP dpop_as_requests_total Requests to the authorization server (metadata, JWKS "
             "fetches, introspections) by outcome.\n"
             "# TYPE dpop_as_requests_total counter\n",
             r);
    for (k = 0; k < DPOP_AS__KINDS; k++)
        for (o = 0; o < DPOP_ASO__COUNT; o++)
            ap_rprintf(r,
                       "dpop_as_requests_total{kind=\"%s\",outcome=\"%s\"} %" APR_UINT64_T_FMT "\n",
                       as_kind_name(k), as_outcome_name(o),
                       apr_atomic_read64(&metrics->as_requests[k][o]));
    ap_rputs("# HELP dpop_as_request_seconds Time of requests to the authorization server.\n"
             "# TYPE dpop_as_request_seconds summary\n",
             r);
    for (k = 0; k < DPOP_AS__KINDS; k++) {
        ap_rprintf(r, "dpop_as_request_seconds_sum{kind=\"%s\"} %.6f\n", as_kind_name(k),
                   (double)apr_atomic_read64(&metrics->as_sum_us[k]) / 1e6);
        ap_rprintf(r, "dpop_as_request_seconds_count{kind=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   as_kind_name(k), apr_atomic_read64(&metrics->as_timed[k]));
    }
    loaded = apr_atomic_read64(&metrics->keyset_loaded_us);
    print_single(r, "gauge", "dpop_as_keyset_age_seconds",
                 "Seconds since a child last fetched a good JWK Set (0: never).",
                 loaded ? (apr_uint64_t)apr_time_sec(apr_time_now() - (apr_time_t)loaded) : 0);
}

/* One single-sample family: HELP, TYPE (counter or gauge), value. */
static void print_single(request_rec *r, const char *type, const char *name, const char *help,
                         apr_uint64_t v)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n%s %" APR_UINT64_T_FMT "\n", name, help, name, type,
               name, v);
}

static void print_metrics(request_rec *r)
{
    apr_uint64_t cum = 0;
    apr_size_t i;
    int reason;
    dpop_replaytab_stats_t tab;

#ifndef DPOP_VERSION
#define DPOP_VERSION "unknown"
#endif
    /* the usual build-info idiom: a constant 1 carrying the version label */
    ap_rputs("# HELP dpop_build_info mod_dpop's version (the value is always 1).\n"
             "# TYPE dpop_build_info gauge\n"
             "dpop_build_info{version=\"" DPOP_VERSION "\"} 1\n",
             r);
    ap_rputs("# HELP dpop_requests_verified_total Requests authenticated by mod_dpop.\n"
             "# TYPE dpop_requests_verified_total counter\n",
             r);
    ap_rprintf(r, "dpop_requests_verified_total{scheme=\"dpop\"} %" APR_UINT64_T_FMT "\n",
               apr_atomic_read64(&metrics->counters[DPOP_M_VERIFIED_DPOP]));
    ap_rprintf(r, "dpop_requests_verified_total{scheme=\"bearer\"} %" APR_UINT64_T_FMT "\n",
               apr_atomic_read64(&metrics->counters[DPOP_M_VERIFIED_BEARER]));

    ap_rputs("# HELP dpop_requests_rejected_total Rejections by reason code (mode=\"report-only\": "
             "would have been rejected, let through).\n"
             "# TYPE dpop_requests_rejected_total counter\n",
             r);
    for (reason = DPOP_REASON_NONE + 1; reason < DPOP_REASON__COUNT; reason++) {
        int ro;
        for (ro = 0; ro < 2; ro++)
            ap_rprintf(r,
                       "dpop_requests_rejected_total{reason=\"%s\",mode=\"%s\"} %" APR_UINT64_T_FMT
                       "\n",
                       dpop_reason_name((dpop_reason_t)reason), ro ? "report-only" : "enforce",
                       apr_atomic_read64(&metrics->rejected[reason][ro]));
    }

    for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        print_single(r, "counter", counters[i].name, counters[i].help,
                     apr_atomic_read64(&metrics->counters[counters[i].m]));

    /* The shm store (this virtual host's) is scanned now; shmcb shows the
     * gauges its requests last set. */
    if (dpop_replay_stats(dpop_srv_conf(r->server)->replay, &tab)) {
        print_single(r, "gauge", "dpop_replay_cache_entries",
                     "Proofs in the replay store that can still be replayed (shm: counted now).",
                     tab.live);
        print_single(r, "gauge", "dpop_replay_cache_capacity",
                     "Slots of the shm replay store (new proofs are refused with 503 when both "
                     "buckets of a proof are full: from about 85% of the slots on).",
                     tab.slots);
        print_single(r, "counter", "dpop_replay_cache_full_total",
                     "Proofs refused (503) because the shm replay store had no free slot for "
                     "them.",
                     tab.full);
        print_single(r, "counter", "dpop_replay_cache_lock_recoveries_total",
                     "Lock stripes of the shm replay store taken over from a process that died "
                     "holding them.",
                     tab.recoveries);
        print_single(r, "gauge", "dpop_replay_cache_remembering_since_seconds",
                     "Unix time the shm replay store began remembering (proofs issued before "
                     "it + DPoPClockSkew are refused as iat_too_old).",
                     (apr_uint64_t)(tab.since > 0 ? tab.since : 0));
    }
    else {
        print_single(r, "gauge", "dpop_replay_cache_entries",
                     "Proofs in the shmcb replay cache that can still be replayed (as last seen "
                     "by a request).",
                     apr_atomic_read64(&metrics->replay_live));
        print_single(r, "gauge", "dpop_replay_cache_capacity",
                     "Proofs the shmcb replay cache admits before it refuses new ones (503).",
                     apr_atomic_read64(&metrics->replay_capacity));
    }

    print_single(r, "gauge", "dpop_audit_map_used_bytes",
                 "Bytes of the audit store's LMDB map in use (pages up to the last one written), "
                 "as measured by the audit writer after its last commit.",
                 apr_atomic_read64(&metrics->audit_map_used));
    print_single(r, "gauge", "dpop_audit_map_size_bytes",
                 "Size of the audit store's LMDB map (DPoPAuditMapSize): writes fail once used "
                 "reaches it.",
                 apr_atomic_read64(&metrics->audit_map_size));

    ap_rputs("# HELP dpop_verification_seconds Time to verify a DPoP request (token, proof, "
             "replay cache).\n"
             "# TYPE dpop_verification_seconds histogram\n",
             r);
    for (i = 0; i < NBUCKETS; i++) {
        cum += apr_atomic_read64(&metrics->hist[i]);
        ap_rprintf(r, "dpop_verification_seconds_bucket{le=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   apr_psprintf(r->pool, "%.4g", (double)bucket_us[i] / 1e6), cum);
    }
    cum += apr_atomic_read64(&metrics->hist[NBUCKETS]);
    ap_rprintf(r, "dpop_verification_seconds_bucket{le=\"+Inf\"} %" APR_UINT64_T_FMT "\n", cum);
    ap_rprintf(r, "dpop_verification_seconds_sum %.6f\n",
               (double)apr_atomic_read64(&metrics->hist_sum_us) / 1e6);
    /* _count equals the +Inf bucket (read once: both from cum). */
    ap_rprintf(r, "dpop_verification_seconds_count %" APR_UINT64_T_FMT "\n", cum);
    print_as_metrics(r);
}

int dpop_metrics_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, "dpop-metrics"))
        return DECLINED;
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    if (!metrics)
        return HTTP_SERVICE_UNAVAILABLE;
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return OK;
    print_metrics(r);
    return OK;
}
