/*
 * mod_dpop_replay.c: jti replay cache for mod_dpop (socache shmcb under a global
 * mutex, or memcached "add" through apr_memcache).  See mod_dpop_replay.h.
 *
 * Why a mutex around retrieve+store: socache has no insert-if-absent
 * operation, and a get-then-set without a lock lets two children accept the
 * same proof when they race (RFC 9449 §11.1 requires single use within the
 * window).  memcached's "add" is that operation on the server itself.
 *
 * Must never: store the proof, or answer FRESH when the cache failed.
 */
#include "mod_dpop_replay.h"
#include "mod_dpop_config.h"
#include "mod_dpop.h"

#include "http_config.h"
#include "http_main.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "util_mutex.h"
#include "apr_strings.h"
#include "apr_global_mutex.h"
#include "apr_memcache.h"

#include <string.h>
#include <strings.h>

APLOG_USE_MODULE(dpop);

#define REPLAY_DEFAULT_SHMCB_BYTES 8388608 /* ~100k entries */
#define MEMCACHE_DEFAULT_PORT 11211
#define MEMCACHE_MAX_SERVERS 16

typedef enum { REPLAY_SOCACHE = 1, REPLAY_MEMCACHE = 2 } replay_kind_t;

typedef struct {
    const char *host;
    apr_port_t port;
} mc_host_t;

struct dpop_replay {
    replay_kind_t kind;
    const char *spec;
    /* socache */
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *instance;
    int initialized;
    /* memcache: hosts parsed at config time, client per child process */
    apr_array_header_t *hosts;
    apr_memcache_t *mc;
};

/* One mutex for every socache instance: the critical section is a lookup
 * and an insert in shared memory. */
static apr_global_mutex_t *replay_mutex = NULL;
static int replay_instance_seq = 0;

const char *dpop_replay_kind(const dpop_replay_t *rc)
{
    return rc->kind == REPLAY_MEMCACHE ? "memcache" : "socache";
}

static const char *configure_memcache(apr_pool_t *p, const char *list, dpop_replay_t *rc)
{
    char *dup = apr_pstrdup(p, list), *last = NULL, *tok;
    rc->hosts = apr_array_make(p, 4, sizeof(mc_host_t));
    for (tok = apr_strtok(dup, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
        char *host = NULL, *scope = NULL;
        apr_port_t port = 0;
        mc_host_t *h;
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        if (apr_parse_addr_port(&host, &scope, &port, tok, p) != APR_SUCCESS || !host || scope)
            return apr_psprintf(p, "'%s' is not host[:port]", tok);
        h = apr_array_push(rc->hosts);
        h->host = host;
        h->port = port ? port : MEMCACHE_DEFAULT_PORT;
    }
    if (rc->hosts->nelts == 0)
        return "memcache: needs at least one host[:port]";
    if (rc->hosts->nelts > MEMCACHE_MAX_SERVERS)
        return "memcache: too many servers (at most 16)";
    return NULL;
}

const char *dpop_replay_configure(apr_pool_t *p, apr_pool_t *ptemp, const char *spec,
                                  dpop_replay_t **out)
{
    dpop_replay_t *rc = apr_pcalloc(p, sizeof(*rc));
    const char *sep = strchr(spec, ':');
    const char *name = sep ? apr_pstrmemdup(ptemp, spec, (apr_size_t)(sep - spec)) : spec;
    const char *arg = sep ? sep + 1 : NULL;
    const char *err;

    rc->spec = apr_pstrdup(p, spec);
    if (!strcasecmp(name, "memcache")) {
        if (!arg || !*arg)
            return "memcache needs host:port[,host:port...]";
        rc->kind = REPLAY_MEMCACHE;
        err = configure_memcache(p, arg, rc);
        if (err)
            return err;
        *out = rc;
        return NULL;
    }
    rc->kind = REPLAY_SOCACHE;
    rc->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!rc->provider)
        return apr_psprintf(p,
                            "unknown cache type '%s' (use shmcb:/path(bytes) with "
                            "mod_socache_%s loaded, or memcache:host:port)",
                            name, name);
    if (!strcasecmp(name, "redis"))
        return "the redis socache cannot insert atomically across servers; use shmcb or "
               "memcache:host:port";
    err = rc->provider->create(&rc->instance, arg, ptemp, p);
    if (err)
        return apr_psprintf(p, "%s", err);
    *out = rc;
    return NULL;
}

void dpop_replay_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, DPOP_REPLAY_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
    replay_mutex = NULL;
    replay_instance_seq = 0;
}

int dpop_replay_check_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    dpop_srv_conf_t *main_conf = dpop_srv_conf(s);
    server_rec *vs;
    int need_default = 0;
    for (vs = s; vs; vs = vs->next)
        if (!dpop_srv_conf(vs)->replay)
            need_default = 1;
    if (need_default) {
        dpop_replay_t *def = main_conf->replay;
        if (!def) {
            const char *path = ap_runtime_dir_relative(ptemp, "dpop-replay");
            const char *spec = apr_psprintf(ptemp, "shmcb:%s(%d)", path ? path : "dpop-replay",
                                            REPLAY_DEFAULT_SHMCB_BYTES);
            const char *err = dpop_replay_configure(pconf, ptemp, spec, &def);
            if (err) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                             "mod_dpop: no DPoPReplayCache configured and the default "
                             "shmcb cache is unusable: %s (load mod_socache_shmcb or set "
                             "DPoPReplayCache)",
                             err);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            main_conf->replay = def;
            main_conf->replay_spec = def->spec;
        }
        for (vs = s->next; vs; vs = vs->next) {
            dpop_srv_conf_t *sc = dpop_srv_conf(vs);
            if (!sc->replay) {
                sc->replay = def;
                sc->replay_spec = def->spec;
            }
        }
    }
    return OK;
}

static apr_status_t socache_destroy(void *data)
{
    dpop_replay_t *rc = data;
    if (rc->initialized && rc->provider && rc->instance)
        rc->provider->destroy(rc->instance, ap_server_conf);
    rc->initialized = 0;
    return APR_SUCCESS;
}

int dpop_replay_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *vs;
    apr_status_t rv;
    int need_mutex = 0;
    for (vs = s; vs; vs = vs->next) {
        dpop_replay_t *rc = dpop_srv_conf(vs)->replay;
        if (rc && rc->kind == REPLAY_SOCACHE)
            need_mutex = 1;
    }
    if (need_mutex && !replay_mutex) {
        rv = ap_global_mutex_create(&replay_mutex, NULL, DPOP_REPLAY_MUTEX, NULL, s, pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "mod_dpop: cannot create the replay cache mutex");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    for (vs = s; vs; vs = vs->next) {
        dpop_replay_t *rc = dpop_srv_conf(vs)->replay;
        struct ap_socache_hints hints;
        const char *ns;
        if (!rc || rc->kind != REPLAY_SOCACHE || rc->initialized)
            continue;
        memset(&hints, 0, sizeof(hints));
        hints.avg_id_len = 32;
        hints.avg_obj_size = 1;
        hints.expiry_interval = apr_time_from_sec(30);
        ns = apr_psprintf(pconf, "mod_dpop-replay-%d", replay_instance_seq++);
        rv = rc->provider->init(rc->instance, ns, &hints, s, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "mod_dpop: cannot initialize the replay cache %s", rc->spec);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        rc->initialized = 1;
        apr_pool_cleanup_register(pconf, rc, socache_destroy, apr_pool_cleanup_null);
    }
    return OK;
}

void dpop_replay_child_init(apr_pool_t *p, server_rec *s)
{
    server_rec *vs;
    int threads = 0;
    if (replay_mutex) {
        apr_status_t rv =
            apr_global_mutex_child_init(&replay_mutex, apr_global_mutex_lockfile(replay_mutex), p);
        if (rv != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "mod_dpop: cannot attach the replay cache mutex in this child");
    }
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1)
        threads = 1;
    for (vs = s; vs; vs = vs->next) {
        dpop_replay_t *rc = dpop_srv_conf(vs)->replay;
        int i;
        if (!rc || rc->kind != REPLAY_MEMCACHE || rc->mc)
            continue;
        if (apr_memcache_create(p, (apr_uint16_t)rc->hosts->nelts, 0, &rc->mc) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_dpop: apr_memcache_create failed");
            rc->mc = NULL;
            continue;
        }
        for (i = 0; i < rc->hosts->nelts; i++) {
            const mc_host_t *h = &APR_ARRAY_IDX(rc->hosts, i, mc_host_t);
            apr_memcache_server_t *ms = NULL;
            apr_status_t rv =
                apr_memcache_server_create(p, h->host, h->port, 0, 1, (apr_uint32_t)threads,
                                           (apr_uint32_t)apr_time_from_sec(60), &ms);
            if (rv == APR_SUCCESS)
                rv = apr_memcache_add_server(rc->mc, ms);
            if (rv != APR_SUCCESS)
                ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                             "mod_dpop: cannot set up memcache server %s:%u", h->host,
                             (unsigned)h->port);
        }
    }
}

static dpop_replay_status_t socache_check_and_store(dpop_replay_t *rc, server_rec *s,
                                                    const unsigned char key[32], apr_time_t expiry,
                                                    apr_pool_t *p, const char **errmsg)
{
    unsigned char buf[8];
    unsigned int buflen = sizeof(buf);
    unsigned char mark = 1;
    dpop_replay_status_t st;
    apr_status_t rv;

    if (!replay_mutex || !rc->initialized) {
        *errmsg = "replay cache not initialized";
        return DPOP_REPLAY_ERROR;
    }
    rv = apr_global_mutex_lock(replay_mutex);
    if (rv != APR_SUCCESS) {
        *errmsg = apr_psprintf(p, "cannot lock the replay cache mutex (%d)", rv);
        return DPOP_REPLAY_ERROR;
    }
    rv = rc->provider->retrieve(rc->instance, s, key, 32, buf, &buflen, p);
    if (rv == APR_SUCCESS) {
        st = DPOP_REPLAY_SEEN;
    }
    else if (APR_STATUS_IS_NOTFOUND(rv)) {
        rv = rc->provider->store(rc->instance, s, key, 32, expiry, &mark, 1, p);
        if (rv == APR_SUCCESS) {
            st = DPOP_REPLAY_FRESH;
        }
        else {
            *errmsg = apr_psprintf(p, "replay cache store failed (%d)", rv);
            st = DPOP_REPLAY_ERROR;
        }
    }
    else {
        *errmsg = apr_psprintf(p, "replay cache lookup failed (%d)", rv);
        st = DPOP_REPLAY_ERROR;
    }
    apr_global_mutex_unlock(replay_mutex);
    return st;
}

static dpop_replay_status_t memcache_check_and_store(dpop_replay_t *rc, const unsigned char key[32],
                                                     apr_time_t expiry, apr_pool_t *p,
                                                     const char **errmsg)
{
    static const char hex[] = "0123456789abcdef";
    char mkey[5 + 64 + 1];
    char mark[] = "1";
    apr_time_t ttl_us = expiry - apr_time_now();
    apr_uint32_t ttl;
    apr_status_t rv;
    int i;

    if (!rc->mc) {
        *errmsg = "memcache client not initialized";
        return DPOP_REPLAY_ERROR;
    }
    memcpy(mkey, "dpop:", 5);
    for (i = 0; i < 32; i++) {
        mkey[5 + 2 * i] = hex[key[i] >> 4];
        mkey[5 + 2 * i + 1] = hex[key[i] & 15];
    }
    mkey[5 + 64] = '\0';
    /* memcached: an expiry up to 30 days is relative seconds. */
    ttl = (apr_uint32_t)(ttl_us <= 0 ? 1 : apr_time_sec(ttl_us) + 1);
    rv = apr_memcache_add(rc->mc, mkey, mark, 1, ttl, 0);
    if (rv == APR_SUCCESS)
        return DPOP_REPLAY_FRESH;
    if (APR_STATUS_IS_EEXIST(rv))
        return DPOP_REPLAY_SEEN;
    {
        char ebuf[128];
        *errmsg = apr_psprintf(p, "memcache add failed: %s", apr_strerror(rv, ebuf, sizeof(ebuf)));
    }
    return DPOP_REPLAY_ERROR;
}

dpop_replay_status_t dpop_replay_check_and_store(dpop_replay_t *rc, server_rec *s,
                                                 const unsigned char key[32], apr_time_t expiry,
                                                 apr_pool_t *p, const char **errmsg)
{
    *errmsg = NULL;
    if (!rc) {
        *errmsg = "no replay cache configured";
        return DPOP_REPLAY_ERROR;
    }
    if (rc->kind == REPLAY_MEMCACHE)
        return memcache_check_and_store(rc, key, expiry, p, errmsg);
    return socache_check_and_store(rc, s, key, expiry, p, errmsg);
}
