/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_memcache.c: the memcached replay store (libmemcached).
 * See mod_dpop_replay_memcache.h.
 *
 * Why libmemcached and not APR-util's apr_memcache: apr_memcache reads
 * without a timeout once connected (it resets the socket timeout to -1
 * after connect, and has no setting for it), so a hung memcached (SIGSTOP,
 * a stalled host) held every DPoP request for as long as it hung.
 * libmemcached bounds connect, poll, send and receive.
 *
 * The loss marker without a window: the add of the proof key comes first,
 * the read of the marker second, on one connection (memcached answers a
 * connection's commands in order).  If the server lost its memory at L
 * and the add of a proof accepted before L succeeds after L, the marker
 * read after it is either missing (this request writes a new one: now + 1
 * >= L) or was written after L by someone who found it missing (>= L):
 * either way the proof's iat, at most one skew past its acceptance before
 * L, is below marker + skew and the proof is refused.  Reading the marker
 * first would let a flush fall between the read and the add.  A replay
 * (add refused) needs no marker: one round trip; a fresh proof takes two.
 * The residual case is documented in docs/scaling.md: a marker write
 * computed before a flush_all and executed after it, which needs memcached
 * to hold that write for more than a second.
 *
 * Server choice and outages: mod_dpop_replay_net.c (a down server is never
 * replaced by another: its keys are refused until it answers).
 *
 * Must never: reuse a connection after an I/O error, log a proof or key.
 */
#include "mod_dpop_replay_memcache.h"
#include "mod_dpop_replay_net.h"

#include "http_log.h"
#include "apr_strings.h"

#include <stdlib.h>
#include <string.h>

#include <libmemcached/memcached.h>

#include "dpop_b64.h"
#include "dpop_replaymark.h"

APLOG_USE_MODULE(dpop);

#define MEMCACHE_DEFAULT_PORT 11211
#define MEMCACHE_KEY_PREFIX "dpop:"

typedef struct {
    const char *host;
    int port;
    dpop_netsrv_t net; /* per process, from child_init */
} mc_server_t;

struct dpop_memcache {
    mc_server_t *servers;
    int nservers;
    int timeout_ms;
    int ready;
};

const char *dpop_memcache_configure(apr_pool_t *p, const char *list, dpop_memcache_t **out)
{
    dpop_memcache_t *m = apr_pcalloc(p, sizeof(*m));
    apr_array_header_t *hosts = NULL;
    const char *err = dpop_netsrv_parse_list(p, list, MEMCACHE_DEFAULT_PORT, &hosts);
    int i;
    if (err)
        return apr_psprintf(p, "memcache: %s", err);
    m->nservers = hosts->nelts;
    m->servers = apr_pcalloc(p, sizeof(*m->servers) * (apr_size_t)hosts->nelts);
    for (i = 0; i < hosts->nelts; i++) {
        m->servers[i].host = APR_ARRAY_IDX(hosts, i, dpop_nethost_t).host;
        m->servers[i].port = APR_ARRAY_IDX(hosts, i, dpop_nethost_t).port;
    }
    *out = m;
    return NULL;
}

static void conn_free(void *c)
{
    memcached_free(c);
}

void dpop_memcache_child_init(dpop_memcache_t *m, apr_pool_t *p, server_rec *s, int timeout_ms,
                              int threads)
{
    int i;
    if (m->ready)
        return;
    m->timeout_ms = timeout_ms;
    for (i = 0; i < m->nservers; i++) {
        mc_server_t *sv = &m->servers[i];
        apr_status_t rv =
            dpop_netsrv_init(&sv->net, p, apr_psprintf(p, "memcached %s:%d", sv->host, sv->port),
                             threads, conn_free);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "mod_dpop: cannot set up the memcached replay store");
            return; /* not ready: every check fails closed */
        }
    }
    m->ready = 1;
}

/* A client for sv alone, every wait bounded by the timeout (it connects
 * on its first command), or NULL with *why. */
static memcached_st *connect_server(dpop_memcache_t *m, mc_server_t *sv, apr_pool_t *p,
                                    const char **why)
{
    memcached_st *c = memcached_create(NULL);
    uint64_t ms = (uint64_t)m->timeout_ms;
    if (!c) {
        *why = "out of memory";
        return NULL;
    }
    if (memcached_server_add(c, sv->host, (in_port_t)sv->port) != MEMCACHED_SUCCESS ||
        memcached_behavior_set(c, MEMCACHED_BEHAVIOR_NO_BLOCK, 1) != MEMCACHED_SUCCESS ||
        memcached_behavior_set(c, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1) != MEMCACHED_SUCCESS ||
        memcached_behavior_set(c, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms) != MEMCACHED_SUCCESS ||
        memcached_behavior_set(c, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms) != MEMCACHED_SUCCESS ||
        memcached_behavior_set(c, MEMCACHED_BEHAVIOR_SND_TIMEOUT, ms * 1000) != MEMCACHED_SUCCESS ||
        memcached_behavior_set(c, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, ms * 1000) != MEMCACHED_SUCCESS) {
        *why = "cannot configure the libmemcached client";
        memcached_free(c);
        return NULL;
    }
    return c;
}

/* The marker of the server behind c, written now if missing.  0 and
 * *mark, or -1 with *why (an I/O failure when *io is set, else a value
 * that is not a marker). */
static int read_marker(memcached_st *c, apr_pool_t *p, apr_int64_t *mark, const char **why, int *io)
{
    int round;
    *io = 0;
    for (round = 0; round < 2; round++) {
        memcached_return_t rc = MEMCACHED_FAILURE;
        size_t len = 0;
        uint32_t flags = 0;
        char *v = memcached_get(c, DPOP_REPLAYMARK_KEY, sizeof(DPOP_REPLAYMARK_KEY) - 1, &len,
                                &flags, &rc);
        if (v) {
            int bad = dpop_replaymark_parse(v, len, mark);
            free(v);
            if (bad) {
                *why = apr_psprintf(p, "%s is not a plain number of seconds: delete it",
                                    DPOP_REPLAYMARK_KEY);
                return -1;
            }
            return 0;
        }
        if (rc != MEMCACHED_NOTFOUND) {
            *why = apr_pstrdup(p, memcached_strerror(c, rc));
            *io = 1;
            return -1;
        }
        if (round == 0) {
            /* Gone: this server lost its memory (or is new).  add, not
             * set: of several httpd finding it missing, the first one
             * writes it and the others read that one back. */
            char val[DPOP_REPLAYMARK_MAX_LEN + 2];
            int n = apr_snprintf(val, sizeof(val), "%" APR_INT64_T_FMT,
                                 (apr_int64_t)dpop_replaymark_new(apr_time_sec(apr_time_now())));
            rc = memcached_add(c, DPOP_REPLAYMARK_KEY, sizeof(DPOP_REPLAYMARK_KEY) - 1, val,
                               (size_t)n, 0, 0);
            if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTSTORED &&
                rc != MEMCACHED_DATA_EXISTS) {
                *why = apr_pstrdup(p, memcached_strerror(c, rc));
                *io = 1;
                return -1;
            }
        }
    }
    *why = "the loss marker vanished right after it was written";
    return -1;
}

/* One exchange on c: add the proof key, then (stored) read the marker.
 * 0 when the server answered (*st, *mark; *why for an answer that is not
 * usable, st ERROR), -1 on an I/O failure or timeout (*why). */
static int exchange(memcached_st *c, const char *mkey, size_t mkeylen, time_t ttl, apr_pool_t *p,
                    dpop_replay_status_t *st, apr_int64_t *mark, const char **why)
{
    memcached_return_t rc = memcached_add(c, mkey, mkeylen, "1", 1, ttl, 0);
    int io = 0;
    if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS) {
        *st = DPOP_REPLAY_SEEN;
        return 0;
    }
    if (rc != MEMCACHED_SUCCESS) {
        *why = apr_pstrdup(p, memcached_strerror(c, rc));
        return -1;
    }
    /* Stored: now the marker, after the add (see the file comment). */
    if (read_marker(c, p, mark, why, &io) != 0) {
        *st = DPOP_REPLAY_ERROR;
        return io ? -1 : 0;
    }
    *st = DPOP_REPLAY_FRESH;
    return 0;
}

dpop_replay_status_t dpop_memcache_check(dpop_memcache_t *m, server_rec *s,
                                         const unsigned char key[32], apr_time_t expiry,
                                         apr_int64_t iat, int skew, apr_pool_t *p,
                                         apr_int64_t *lost_at, const char **errmsg)
{
    char mkey[sizeof(MEMCACHE_KEY_PREFIX) - 1 + 64 + 1];
    apr_time_t t0 = apr_time_now(), ttl_us = expiry - t0;
    /* memcached: an expiry up to 30 days is relative seconds. */
    time_t ttl = (time_t)(ttl_us <= 0 ? 1 : apr_time_sec(ttl_us) + 1);
    dpop_replay_status_t st = DPOP_REPLAY_ERROR;
    mc_server_t *sv;
    memcached_st *c = NULL;
    const char *why = NULL;
    apr_int64_t mark = 0;
    int reused, rv;

    if (!m->ready) {
        *errmsg = "memcache client not initialized";
        return DPOP_REPLAY_ERROR;
    }
    sv = &m->servers[dpop_netsrv_pick(key, m->nservers)];
    memcpy(mkey, MEMCACHE_KEY_PREFIX, sizeof(MEMCACHE_KEY_PREFIX) - 1);
    dpop_hex_encode(key, 32, mkey + sizeof(MEMCACHE_KEY_PREFIX) - 1);
    mkey[sizeof(mkey) - 1] = '\0';

    if (dpop_netsrv_acquire(&sv->net, p, (void **)&c, errmsg) != 0)
        return DPOP_REPLAY_ERROR;
    reused = c != NULL;
    if (!c && !(c = connect_server(m, sv, p, &why)))
        goto failed;
    rv = exchange(c, mkey, sizeof(mkey) - 1, ttl, p, &st, &mark, &why);
    if (rv != 0 && reused && dpop_netsrv_fast_failure(t0, m->timeout_ms)) {
        /* A pooled connection the server closed (it restarted): drop the
         * stale ones and try once on a new connection. */
        dpop_netsrv_discard(&sv->net, c);
        c = NULL;
        if (!(c = connect_server(m, sv, p, &why)))
            goto failed;
        rv = exchange(c, mkey, sizeof(mkey) - 1, ttl, p, &st, &mark, &why);
    }
    if (rv != 0)
        goto failed;
    dpop_netsrv_release(&sv->net, s, c); /* it answered: the connection is in sync */
    if (st == DPOP_REPLAY_ERROR) {
        *errmsg = apr_psprintf(p, "%s: %s", sv->net.name, why);
        return DPOP_REPLAY_ERROR;
    }
    if (st == DPOP_REPLAY_FRESH && dpop_replaymark_refuses(mark, iat, skew)) {
        *lost_at = mark;
        *errmsg = apr_psprintf(p,
                               "the replay store (%s) lost its memory (restart or flush) and "
                               "remembers proofs since %" APR_INT64_T_FMT,
                               sv->net.name, mark);
        return DPOP_REPLAY_LOST;
    }
    return st;

failed:
    *errmsg = apr_psprintf(p, "%s: %s (DPoPReplayTimeout %d ms)", sv->net.name, why, m->timeout_ms);
    dpop_netsrv_failed(&sv->net, s, c, why);
    return DPOP_REPLAY_ERROR;
}
