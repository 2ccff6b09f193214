/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_metrics.h: counters of mod_dpop for Prometheus (Apache glue).
 *
 * `SetHandler dpop-metrics` serves them in the Prometheus text exposition
 * format 0.0.4.  The counters live in anonymous shared memory created by
 * the parent at the first real post_config and kept in Apache's retained
 * data, so every child of every generation adds to the same numbers and a
 * graceful restart does not reset them.  Updates are single lock-free
 * atomic adds (apr_atomic_add64): no lock on the request path.
 *
 * Must never: expose a token, proof, key, jkt or client name (only
 * counts by fixed reason codes).
 */
#ifndef DPOP_METRICS_H
#define DPOP_METRICS_H

#include "httpd.h"
#include "apr_time.h"

#include "dpop_result.h"
#include "dpop_fetch.h"

/* Requests to the authorization server, by what was asked ... */
typedef enum {
    DPOP_AS_METADATA = 0,
    DPOP_AS_JWKS,
    DPOP_AS_INTROSPECTION,
    DPOP_AS__KINDS
} dpop_as_kind_t;
/* ... and how it ended: a dpop_fetch_outcome_t (DPOP_FETCH_OK: a usable
 * document, an active token) or one of these. */
#define DPOP_ASO_INVALID (DPOP_FETCH__COUNT + 0)    /* 2xx, document refused */
#define DPOP_ASO_INACTIVE (DPOP_FETCH__COUNT + 1)   /* introspection: not active */
#define DPOP_ASO_OVERLOADED (DPOP_FETCH__COUNT + 2) /* concurrency bound: not sent, 503 */
#define DPOP_ASO__COUNT (DPOP_FETCH__COUNT + 3)

typedef enum {
    DPOP_M_VERIFIED_DPOP = 0,        /* authenticated with token + proof */
    DPOP_M_VERIFIED_BEARER,          /* unbound Bearer accepted (DPoPAllowBearer) */
    DPOP_M_REPLAY_INSERTS,           /* new proofs recorded */
    DPOP_M_REPLAY_HITS,              /* replays detected */
    DPOP_M_REPLAY_ERRORS,            /* cache unreachable or full (503) */
    DPOP_M_NONCE_CHALLENGES,         /* 401 use_dpop_nonce with a DPoP-Nonce */
    DPOP_M_POLICY_RELOADS,           /* a child swapped in a changed policy */
    DPOP_M_POLICY_LOAD_ERRORS,       /* a changed policy file failed to load */
    DPOP_M_AUDIT_SUBMITTED,          /* events queued for the audit store */
    DPOP_M_AUDIT_ERRORS,             /* events not recorded (drops, failed commits) */
    DPOP_M_TOKEN_CACHE_HITS,         /* access tokens answered from the cache */
    DPOP_M_TOKEN_CACHE_MISSES,       /* access tokens verified in full */
    DPOP_M_INTROSPECTION_CACHE_HITS, /* introspection answered from the cache */
    DPOP_M_PROOF_SIGNATURES,         /* proof signatures verified (CPU spent on proofs) */
    DPOP_M__COUNT
} dpop_metric_t;

void dpop_metrics_add(dpop_metric_t m, apr_uint64_t n);
/* One rejection (or would-be rejection in report-only) by reason. */
void dpop_metrics_rejected(dpop_reason_t reason, int report_only);
/* Duration of one DPoP verification (token, proof, replay cache). */
void dpop_metrics_observe_verification(apr_interval_time_t elapsed);
/* Replay cache fill gauges (shmcb): entries that can still be replayed,
 * and what the cache admits. */
void dpop_metrics_replay_fill(apr_uint64_t live, apr_uint64_t capacity);
/* Audit store map gauges (dpop_audit_map_used_bytes, _size_bytes), as the
 * audit writer last measured them (after its last commit): set by the
 * audit glue when it queues an event and when a writer starts, never by a
 * scrape. */
void dpop_metrics_audit_map(apr_uint64_t used, apr_uint64_t size);

/* One request to the authorization server (secs < 0: not timed, e.g.
 * overloaded). */
void dpop_metrics_as_request(dpop_as_kind_t kind, int outcome, double secs);
/* A key set was fetched successfully at t (key-set age gauge). */
void dpop_metrics_keyset_loaded(apr_time_t t);

/* post_config (real pass): attach or create the shared counters. */
int dpop_metrics_post_config(apr_pool_t *pconf, server_rec *s);
/* handler hook: SetHandler dpop-metrics. */
int dpop_metrics_handler(request_rec *r);

#endif /* DPOP_METRICS_H */
