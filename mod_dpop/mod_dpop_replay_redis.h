/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_redis.h: the Redis replay store of mod_dpop
 * (DPoPReplayCache redis:h1:6379[,h2:6379...]), through hiredis.
 *
 * Each proof key lives on the one server its hash maps to; one Lua script
 * (EVALSHA) checks that server's loss marker (dpop_replaymark.h) and runs
 * SET key 1 NX PX ttl atomically, so a server restarted or flushed is
 * noticed by the very request that would store into it.  Every round trip
 * is bounded by DPoPReplayTimeout; a server that is down, slow or answers
 * nonsense is a cache error (the caller fails closed with 503).
 *
 * Must never: store or log a proof; answer FRESH without the server's
 * answer; share a hiredis context between threads (they are not
 * thread-safe: each thread takes one from a per-process stack).
 */
#ifndef DPOP_REPLAY_REDIS_H
#define DPOP_REPLAY_REDIS_H

#include "httpd.h"
#include "apr_pools.h"
#include "apr_time.h"

#include "mod_dpop_replay.h"

typedef struct dpop_redis dpop_redis_t;

/* Parse "h1:6379,h2" (port 6379 by default); objects in p.  NULL on
 * success, else a message for `apache2 -t`. */
const char *dpop_redis_configure(apr_pool_t *p, const char *list, dpop_redis_t **out);

/* child_init: timeouts and the per-process connection stacks (at most
 * threads contexts per server, freed with p). */
void dpop_redis_child_init(dpop_redis_t *r, apr_pool_t *p, server_rec *s, int timeout_ms,
                           int threads);

/* The check of dpop_replay_check_and_store for Redis.  LOST sets
 * *lost_at (the server's marker). */
dpop_replay_status_t dpop_redis_check(dpop_redis_t *r, server_rec *s, const unsigned char key[32],
                                      apr_time_t expiry, apr_int64_t iat, int skew, apr_pool_t *p,
                                      apr_int64_t *lost_at, const char **errmsg);

#endif /* DPOP_REPLAY_REDIS_H */
