/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_memcache.h: the memcached replay store of mod_dpop
 * (DPoPReplayCache memcache:h1:11211[,h2:11211...]), through libmemcached.
 *
 * Each proof key lives on the one server its hash maps to: "add" stores it
 * only if absent (atomic on the server, so two httpd servers can never
 * both accept one proof), then the server's loss marker (dpop_replaymark.h)
 * is read on the same connection, after the add.  Every round trip is
 * bounded by DPoPReplayTimeout; a server that is down or slow is a cache
 * error (the caller fails closed with 503).
 *
 * Must never: store or log a proof; answer FRESH without both answers;
 * share a memcached_st between threads.
 */
#ifndef DPOP_REPLAY_MEMCACHE_H
#define DPOP_REPLAY_MEMCACHE_H

#include "httpd.h"
#include "apr_pools.h"
#include "apr_time.h"

#include "mod_dpop_replay.h"

typedef struct dpop_memcache dpop_memcache_t;

/* Parse "h1:11211,h2" (port 11211 by default); objects in p.  NULL on
 * success, else a message for `apache2 -t`. */
const char *dpop_memcache_configure(apr_pool_t *p, const char *list, dpop_memcache_t **out);

/* child_init: timeouts and the per-process connection stacks. */
void dpop_memcache_child_init(dpop_memcache_t *m, apr_pool_t *p, server_rec *s, int timeout_ms,
                              int threads);

/* The check of dpop_replay_check_and_store for memcached.  LOST sets
 * *lost_at (the server's marker). */
dpop_replay_status_t dpop_memcache_check(dpop_memcache_t *m, server_rec *s,
                                         const unsigned char key[32], apr_time_t expiry,
                                         apr_int64_t iat, int skew, apr_pool_t *p,
                                         apr_int64_t *lost_at, const char **errmsg);

#endif /* DPOP_REPLAY_MEMCACHE_H */
