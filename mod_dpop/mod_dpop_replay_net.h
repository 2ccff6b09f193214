/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_net.h: what the network replay stores (memcached, Redis)
 * share: the per-process stack of connections to one server, the server
 * choice by key, and the outage state that keeps a dead or hung server from
 * holding more than one worker thread per process.
 *
 * Connections are opaque here (a memcached_st, a redisContext): the store
 * creates them and gives the function that frees them.  A connection is
 * used by one thread at a time (neither client library is thread-safe);
 * one that failed is freed, never put back (a late answer would be read
 * as the next command's).
 *
 * While a server is failing, one request per process tries it again at
 * most every DPOP_NET_RETRY_MS; the others are refused at once (the caller
 * answers 503).  The first failure and the recovery are logged once per
 * process, never per request.
 *
 * Must never: hand one connection to two threads; log a key.
 */
#ifndef DPOP_REPLAY_NET_H
#define DPOP_REPLAY_NET_H

#include "httpd.h"
#include "apr_pools.h"
#include "apr_time.h"
#if APR_HAS_THREADS
#include "apr_thread_mutex.h"
#endif

#define DPOP_NET_RETRY_MS 100
#define DPOP_NET_MAX_SERVERS 16

typedef struct {
    const char *name; /* "Redis 127.0.0.1:6379", for the log */
#if APR_HAS_THREADS
    apr_thread_mutex_t *lock;
#endif
    void **idle; /* connected, unused */
    int nidle, cap;
    void (*destroy)(void *conn);
    int down;             /* the last round trip failed */
    apr_time_t retry_at;  /* while down: no new try before this */
    apr_uint64_t refused; /* requests refused at once since it went down */
    char lasterr[128];    /* why it is down */
} dpop_netsrv_t;

typedef struct {
    const char *host;
    int port;
} dpop_nethost_t;

/* Parse "h1:port,h2" (default_port where none is given) into *hosts
 * (dpop_nethost_t, pool p).  NULL on success, else a message for
 * `apache2 -t`. */
const char *dpop_netsrv_parse_list(apr_pool_t *p, const char *list, int default_port,
                                   apr_array_header_t **hosts);

/* child_init: at most cap idle connections, freed with p.  APR_SUCCESS or
 * the mutex error. */
apr_status_t dpop_netsrv_init(dpop_netsrv_t *sv, apr_pool_t *p, const char *name, int cap,
                              void (*destroy)(void *conn));

/* 0 with *conn an idle connection or NULL (the caller connects a new
 * one); -1 with *errmsg (pool p) when the server is down and another
 * request retries it. */
int dpop_netsrv_acquire(dpop_netsrv_t *sv, apr_pool_t *p, void **conn, const char **errmsg);

/* The round trip failed (connect, I/O, timeout): conn (may be NULL) and
 * the idle connections (likely broken alike) are freed, and the server is
 * down until a round trip succeeds. */
void dpop_netsrv_failed(dpop_netsrv_t *sv, server_rec *s, void *conn, const char *why);

/* A pooled connection failed at once (the server closed it: restarted):
 * conn and every idle connection are freed, the server is not marked
 * down, and the caller tries once more on a new connection. */
void dpop_netsrv_discard(dpop_netsrv_t *sv, void *conn);

/* Did a round trip that began at t0 fail well within the timeout (a
 * closed connection, not a silent server)?  Only those are retried: a
 * retry after a timeout would double the wait. */
int dpop_netsrv_fast_failure(apr_time_t t0, int timeout_ms);

/* The server answered: conn goes back to the stack (or is freed). */
void dpop_netsrv_release(dpop_netsrv_t *sv, server_rec *s, void *conn);

/* The server a 32-byte proof key (a SHA-256) maps to: its first four bytes
 * modulo n, so every httpd with the same list in the same order asks the
 * same server. */
int dpop_netsrv_pick(const unsigned char key[32], int n);

#endif /* DPOP_REPLAY_NET_H */
