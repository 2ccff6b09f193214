/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_net.c: connection stacks and outage state of the network
 * replay stores.  See mod_dpop_replay_net.h.
 */
#include "mod_dpop_replay_net.h"

#include "http_log.h"
#include "apr_strings.h"
#include "apr_network_io.h"

APLOG_USE_MODULE(dpop);

const char *dpop_netsrv_parse_list(apr_pool_t *p, const char *list, int default_port,
                                   apr_array_header_t **hosts)
{
    char *dup = apr_pstrdup(p, list), *last = NULL, *tok;
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(dpop_nethost_t));
    for (tok = apr_strtok(dup, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
        char *host = NULL, *scope = NULL;
        apr_port_t port = 0;
        dpop_nethost_t *h;
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        if (apr_parse_addr_port(&host, &scope, &port, tok, p) != APR_SUCCESS || !host || scope)
            return apr_psprintf(p, "'%s' is not host[:port]", tok);
        if (a->nelts >= DPOP_NET_MAX_SERVERS)
            return apr_psprintf(p, "too many servers (at most %d)", DPOP_NET_MAX_SERVERS);
        h = apr_array_push(a);
        h->host = host;
        h->port = port ? port : default_port;
    }
    if (a->nelts == 0)
        return "needs at least one host[:port]";
    *hosts = a;
    return NULL;
}

static void lock(dpop_netsrv_t *sv)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(sv->lock);
#else
    (void)sv;
#endif
}

static void unlock(dpop_netsrv_t *sv)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(sv->lock);
#else
    (void)sv;
#endif
}

static apr_status_t idle_cleanup(void *data)
{
    dpop_netsrv_t *sv = data;
    while (sv->nidle > 0)
        sv->destroy(sv->idle[--sv->nidle]);
    return APR_SUCCESS;
}

apr_status_t dpop_netsrv_init(dpop_netsrv_t *sv, apr_pool_t *p, const char *name, int cap,
                              void (*destroy)(void *conn))
{
#if APR_HAS_THREADS
    apr_status_t rv = apr_thread_mutex_create(&sv->lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS)
        return rv;
#endif
    sv->name = name;
    sv->cap = cap > 0 ? cap : 1;
    sv->idle = apr_pcalloc(p, sizeof(*sv->idle) * (apr_size_t)sv->cap);
    sv->nidle = 0;
    sv->destroy = destroy;
    sv->down = 0;
    sv->refused = 0;
    sv->lasterr[0] = '\0';
    apr_pool_cleanup_register(p, sv, idle_cleanup, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

int dpop_netsrv_acquire(dpop_netsrv_t *sv, apr_pool_t *p, void **conn, const char **errmsg)
{
    apr_time_t now = apr_time_now();
    *conn = NULL;
    lock(sv);
    if (sv->down) {
        if (now < sv->retry_at) {
            sv->refused++;
            *errmsg = apr_psprintf(p, "%s is down (%s)", sv->name, sv->lasterr);
            unlock(sv);
            return -1;
        }
        /* this request is the retry; the others keep failing fast */
        sv->retry_at = now + apr_time_from_msec(DPOP_NET_RETRY_MS);
    }
    if (sv->nidle > 0)
        *conn = sv->idle[--sv->nidle];
    unlock(sv);
    return 0;
}

/* Free every idle connection; the caller holds the lock. */
static void drain(dpop_netsrv_t *sv)
{
    while (sv->nidle > 0)
        sv->destroy(sv->idle[--sv->nidle]);
}

void dpop_netsrv_discard(dpop_netsrv_t *sv, void *conn)
{
    if (conn)
        sv->destroy(conn);
    lock(sv);
    drain(sv);
    unlock(sv);
}

int dpop_netsrv_fast_failure(apr_time_t t0, int timeout_ms)
{
    return apr_time_now() - t0 < apr_time_from_msec(timeout_ms) / 2;
}

void dpop_netsrv_failed(dpop_netsrv_t *sv, server_rec *s, void *conn, const char *why)
{
    int first;
    if (conn)
        sv->destroy(conn);
    lock(sv);
    drain(sv);
    first = !sv->down;
    sv->down = 1;
    sv->retry_at = apr_time_now() + apr_time_from_msec(DPOP_NET_RETRY_MS);
    apr_cpystrn(sv->lasterr, why ? why : "unknown error", sizeof(sv->lasterr));
    unlock(sv);
    if (first)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "mod_dpop: replay store %s unavailable (%s): proofs whose keys it holds "
                     "are refused (503) until it answers again",
                     sv->name, why ? why : "unknown error");
}

void dpop_netsrv_release(dpop_netsrv_t *sv, server_rec *s, void *conn)
{
    apr_uint64_t refused = 0;
    int was_down;
    lock(sv);
    was_down = sv->down;
    if (was_down) {
        refused = sv->refused;
        sv->down = 0;
        sv->refused = 0;
    }
    if (sv->nidle < sv->cap) {
        sv->idle[sv->nidle++] = conn;
        conn = NULL;
    }
    unlock(sv);
    if (conn)
        sv->destroy(conn);
    if (was_down)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "mod_dpop: replay store %s answers again (%" APR_UINT64_T_FMT
                     " requests refused at once meanwhile in this process)",
                     sv->name, refused);
}

int dpop_netsrv_pick(const unsigned char key[32], int n)
{
    apr_uint32_t h = ((apr_uint32_t)key[0] << 24) | ((apr_uint32_t)key[1] << 16) |
                     ((apr_uint32_t)key[2] << 8) | key[3];
    return n > 0 ? (int)(h % (apr_uint32_t)n) : 0;
}
