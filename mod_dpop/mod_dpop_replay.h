/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay.h: the jti replay cache of RFC 9449 §11.1 for mod_dpop
 * (Apache glue).
 *
 * Back ends:
 *   - shm[:SIZE] (default): the module's own file-backed shared-memory
 *     table, striped robust locks, kept across restarts
 *     (mod_dpop_replay_shm.h);
 *   - shmcb through Apache's socache providers; lookup-and-store
 *     runs under one APR global mutex, so exactly one httpd child process
 *     (and thread) can accept a given proof;
 *   - memcache:host:port[,...] through libmemcached, using the
 *     memcached "add" command (store only if absent, atomic on the server), so
 *     two httpd servers sharing the cache can never both accept one proof;
 *   - redis:host:port[,...] through hiredis (mod_dpop_replay_redis.h).
 * Network stores keep a loss marker per server (dpop_replaymark.h) and
 * wait at most DPoPReplayTimeout per round trip.
 * Keys are dpop_replay_key() = SHA-256(jkt || jti), raw 32 bytes; entries
 * expire when the proof could no longer pass the iat window.
 *
 * Must never: store or log the proof; a cache error is reported to the caller
 * (which fails closed with 503), never treated as "not seen".
 */
#ifndef DPOP_REPLAY_H
#define DPOP_REPLAY_H

#include "httpd.h"
#include "apr_pools.h"
#include "apr_time.h"

#include "dpop_replaytab.h"

typedef struct dpop_replay dpop_replay_t;

typedef enum {
    DPOP_REPLAY_FRESH = 0, /* first time seen: recorded now */
    DPOP_REPLAY_SEEN = 1,  /* already recorded within its lifetime: a replay */
    DPOP_REPLAY_ERROR = 2, /* the cache could not answer: fail closed */
    /* The store lost its memory (a network server restarted or flushed,
     * noticed through its loss marker, dpop_replaymark.h) and began
     * remembering again at *lost_at; this proof's iat is earlier than
     * *lost_at + skew, so the lost store might have accepted it: refuse it
     * as iat_too_old (DESIGN.md "Replay stores"). */
    DPOP_REPLAY_LOST = 3
} dpop_replay_status_t;

#define DPOP_REPLAY_MUTEX "dpop-replay"

/* Parse a DPoPReplayCache spec ("shmcb:/path(bytes)", "shmcb",
 * "memcache:h1:11211,h2"); the socache provider must be loaded.  NULL on
 * success, else a message.  Objects live in p (the config pool). */
const char *dpop_replay_configure(apr_pool_t *p, apr_pool_t *ptemp, const char *spec,
                                  dpop_replay_t **out);

/* Hooks. */
void dpop_replay_pre_config(apr_pool_t *pconf);
/* check_config: give every server without DPoPReplayCache the default
 * shmcb cache.  OK or an HTTP error status after logging. */
int dpop_replay_check_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
int dpop_replay_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void dpop_replay_child_init(apr_pool_t *p, server_rec *s);

/* Atomically: if key is recorded -> SEEN; else record it until expiry ->
 * FRESH.  ERROR with *errmsg (pool p) when the cache is unusable.  LOST
 * (network stores) with *lost_at and *errmsg (the refusal's detail) when
 * the store lost its memory and iat < *lost_at + skew. */
dpop_replay_status_t dpop_replay_check_and_store(dpop_replay_t *rc, server_rec *s,
                                                 const unsigned char key[32], apr_time_t expiry,
                                                 apr_int64_t iat, int skew, apr_pool_t *p,
                                                 apr_int64_t *lost_at, const char **errmsg);

/* DESIGN.md "Replay stores": 1 when the store lost its memory after a
 * proof issued at iat (unix s) might have been accepted, i.e. iat < the
 * moment it began remembering + skew; *detail (pool p) says so for the
 * log and the audit.  The caller refuses the proof as iat_too_old. */
int dpop_replay_forgot(dpop_replay_t *rc, apr_int64_t iat, apr_int64_t skew, apr_pool_t *p,
                       const char **detail);

/* The shm store's fill for the metrics; 0 for other stores. */
int dpop_replay_stats(dpop_replay_t *rc, dpop_replaytab_stats_t *out);

/* "shm", "socache", "memcache" or "redis". */
const char *dpop_replay_kind(const dpop_replay_t *rc);

#endif /* DPOP_REPLAY_H */
