/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay.c: jti replay cache for mod_dpop (socache shmcb under a global
 * mutex; the network stores, memcached and Redis, are in
 * mod_dpop_replay_memcache.c and mod_dpop_replay_redis.c: this file parses
 * the spec and dispatches to them).  See mod_dpop_replay.h.
 *
 * Why a mutex around retrieve+store: socache has no insert-if-absent
 * operation, and a get-then-set without a lock lets two children accept the
 * same proof when they race (RFC 9449 §11.1 requires single use within the
 * window).  memcached's "add" is that operation on the server itself.
 *
 * Graceful restarts: the socache instances and the mutex are kept in
 * ap_retained_data (the process pool), keyed by the DPoPReplayCache spec.
 * A restart whose spec is unchanged re-uses the instance, so children of the
 * old generation (still finishing requests) and of the new one look up and
 * store in the same shared memory under the same mutex: a proof accepted by
 * one generation is a replay for the other.  A changed spec gets a fresh
 * instance and the unused one is destroyed (old children keep their own
 * mapping until they exit).  No cleanup in the process pool points into this
 * DSO (it is unloaded and reloaded at each restart): a pconf cleanup destroys
 * the instances only when httpd exits, in the parent.
 *
 * Loss of memory (DESIGN.md "Replay stores"): a shmcb instance remembers
 * from the moment it was created (a full start of httpd, or a restart that
 * changed its spec) and no earlier: the one before it, and everything it
 * had accepted, is gone.  Each retained instance records that moment, and
 * dpop_replay_forgot refuses every proof issued before it + DPoPClockSkew,
 * with the same rule and detail as the shm store's "remembering since".
 *
 * Must never: store the proof, or answer FRESH when the cache failed.
 */
#include "mod_dpop_replay.h"
#include "mod_dpop_config.h"
#include "mod_dpop.h"
#include "mod_dpop_metrics.h"
#include "mod_dpop_replay_memcache.h"
#include "mod_dpop_replay_redis.h"
#include "mod_dpop_replay_shm.h"

#include "http_config.h"
#include "http_main.h"
#include "http_core.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "util_mutex.h"
#include "apr_strings.h"
#include "apr_global_mutex.h"
#include "apr_hash.h"
#include "apr_shm.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dpop_replayfill.h"
#include "dpop_replaymark.h"
#include "dpop_sha256.h"

APLOG_USE_MODULE(dpop);

/* The default store: 64 MiB hold about 3.3 million proofs that can still
 * be replayed, about 10,900 new proofs/s over the default 306 s window
 * (docs/scaling.md; the unit test measures it). */
#define REPLAY_DEFAULT_SPEC "shm:64M"
#define SHMCB_DEFAULT_BYTES 512000 /* mod_socache_shmcb without "(size)" */
#define SHMCB_MIN_BYTES 1048576

typedef enum {
    REPLAY_SOCACHE = 1,
    REPLAY_MEMCACHE = 2,
    REPLAY_REDIS = 3,
    REPLAY_SHM = 4
} replay_kind_t;

struct dpop_replay {
    replay_kind_t kind;
    const char *spec;
    /* socache: provider name and argument checked at config time; the
     * instance is attached from the retained registry in post_config. */
    const char *provider_name;
    const char *provider_arg;
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *instance;
    /* shmcb: live-entry counter in shared memory (dpop_replayfill.h), so a
     * full cache refuses proofs instead of evicting live ones. */
    dpop_replayfill_t *fill;
    /* socache: a random salt of the instance; the stored key is
     * SHA-256(salt || key), see socache_check_and_store. */
    const unsigned char *salt;
    /* socache: unix s from which the instance remembers every proof */
    apr_int64_t since;
    /* network stores: parsed at config time, connected per child */
    dpop_memcache_t *mc;
    dpop_redis_t *redis;
    /* shm: the module's own store (mod_dpop_replay_shm.h) */
    dpop_shmstore_t *shm;
};

/* One socache instance that outlives configuration generations. */
typedef struct {
    const char *spec;          /* key: "name:arg" as configured */
    const char *provider_name; /* looked up again in each generation */
    apr_pool_t *pool;          /* child of the process pool: instance + shm */
    ap_socache_instance_t *instance;
    dpop_replayfill_t *fill; /* shmcb only: in shared memory of pool */
    unsigned char salt[32];  /* random, made with the instance */
    apr_int64_t since;       /* remembering since (unix s), see retained_attach */
    unsigned int generation; /* last generation that configured it */
} retained_cache_t;

#define RETAINED_KEY "mod_dpop-replay-retained"

/* Lives in the process pool (ap_retained_data_create), zeroed at first. */
typedef struct {
    apr_pool_t *pool; /* the process pool */
    /* Parent of the caches' pools: unmanaged, so that only
     * retained_exit_cleanup destroys it (a child of the process pool would
     * be destroyed before pconf, whose cleanup still walks the caches). */
    apr_pool_t *root;
    apr_hash_t *caches; /* spec -> retained_cache_t */
    apr_global_mutex_t *mutex;
    pid_t parent_pid; /* only this process ever destroys the caches */
    unsigned int generation;
    unsigned int seq; /* socache namespaces */
} replay_retained_t;

/* One mutex for every socache instance (the critical section is a lookup
 * and an insert in shared memory), created once per parent process and kept
 * across restarts with the caches it guards. */
static apr_global_mutex_t *replay_mutex = NULL;

const char *dpop_replay_kind(const dpop_replay_t *rc)
{
    return rc->kind == REPLAY_MEMCACHE ? "memcache"
           : rc->kind == REPLAY_REDIS  ? "redis"
           : rc->kind == REPLAY_SHM    ? "shm"
                                       : "socache";
}

/* The size of a shmcb spec argument ("/path(bytes)" or "/path"). */
static apr_uint64_t shmcb_size(const char *arg)
{
    const char *open = arg ? strrchr(arg, '(') : NULL;
    char *end = NULL;
    apr_uint64_t v;
    if (!open)
        return SHMCB_DEFAULT_BYTES;
    v = (apr_uint64_t)strtoull(open + 1, &end, 10);
    return (end && *end == ')' && v) ? v : SHMCB_DEFAULT_BYTES;
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
    if (!strcasecmp(name, "shm")) {
        rc->kind = REPLAY_SHM;
        err = dpop_shmstore_configure(p, arg, &rc->shm);
        if (err)
            return err;
        *out = rc;
        return NULL;
    }
    if (!strcasecmp(name, "memcache")) {
        if (!arg || !*arg)
            return "memcache needs host:port[,host:port...]";
        rc->kind = REPLAY_MEMCACHE;
        err = dpop_memcache_configure(p, arg, &rc->mc);
        if (err)
            return err;
        *out = rc;
        return NULL;
    }
    if (!strcasecmp(name, "redis")) {
        /* Ours (mod_dpop_replay_redis.c), not mod_socache_redis: that one
         * cannot insert atomically and has no loss marker. */
        if (!arg || !*arg)
            return "redis needs host:port[,host:port...]";
        rc->kind = REPLAY_REDIS;
        err = dpop_redis_configure(p, arg, &rc->redis);
        if (err)
            return err;
        *out = rc;
        return NULL;
    }
    rc->kind = REPLAY_SOCACHE;
    rc->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!rc->provider)
        return apr_psprintf(p,
                            "unknown cache type '%s' (use shm:SIZE, shmcb:/path(bytes) with "
                            "mod_socache_%s loaded, memcache:host:port or redis:host:port)",
                            name, name);
    /* Check the argument now (so `apache2 -t` reports it); the instance
     * used at run time is created in post_config, in the retained pool. */
    {
        ap_socache_instance_t *probe = NULL;
        err = rc->provider->create(&probe, arg, ptemp, ptemp);
        if (err)
            return apr_psprintf(p, "%s", err);
    }
    /* shmcb spreads entries over sub-caches by their first byte and evicts
     * within a sub-cache; the fill counter (dpop_replayfill.h) keeps the
     * fullest sub-cache below eviction with a wide margin only when each
     * holds enough entries: from 1 MiB on (docs/scaling.md). */
    if (!strcasecmp(name, "shmcb") && shmcb_size(arg) < SHMCB_MIN_BYTES)
        return apr_psprintf(p,
                            "the shmcb size must be given and at least %d bytes: a smaller "
                            "cache could evict proofs that can still be replayed "
                            "(docs/scaling.md)",
                            SHMCB_MIN_BYTES);
    rc->provider_name = apr_pstrdup(p, name);
    rc->provider_arg = arg ? apr_pstrdup(p, arg) : NULL;
    *out = rc;
    return NULL;
}

void dpop_replay_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, DPOP_REPLAY_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
    replay_mutex = NULL;
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
            /* The module's own store (DESIGN.md "Replay stores"); its file
             * is resolved under DefaultRuntimeDir in post_config. */
            const char *err = dpop_replay_configure(pconf, ptemp, REPLAY_DEFAULT_SPEC, &def);
            if (err) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                             "mod_dpop: no DPoPReplayCache configured and the default "
                             "store %s is unusable: %s",
                             REPLAY_DEFAULT_SPEC, err);
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

static replay_retained_t *retained_get(server_rec *s)
{
    replay_retained_t *rt = ap_retained_data_get(RETAINED_KEY);
    if (!rt) {
        rt = ap_retained_data_create(RETAINED_KEY, sizeof(*rt));
        rt->pool = s->process->pool;
        rt->caches = apr_hash_make(rt->pool);
        rt->parent_pid = getpid();
    }
    if (!rt->root && apr_pool_create_unmanaged_ex(&rt->root, NULL, NULL) != APR_SUCCESS)
        rt->root = NULL;
    return rt;
}

static void retained_destroy(replay_retained_t *rt, retained_cache_t *rc)
{
    const ap_socache_provider_t *prov = ap_lookup_provider(
        AP_SOCACHE_PROVIDER_GROUP, rc->provider_name, AP_SOCACHE_PROVIDER_VERSION);
    /* Without the provider (its LoadModule was removed) the pool cleanups of
     * APR still release the shared memory. */
    if (prov && rc->instance)
        prov->destroy(rc->instance, ap_server_conf);
    rc->instance = NULL;
    apr_hash_set(rt->caches, rc->spec, APR_HASH_KEY_STRING, NULL);
    apr_pool_destroy(rc->pool);
}

/* pconf cleanup: a restart keeps the caches; httpd exiting (in the parent
 * only; children never own them) destroys them while the provider modules
 * are still loaded (they were loaded before this cleanup was registered). */
static apr_status_t retained_exit_cleanup(void *data)
{
    replay_retained_t *rt = data;
    apr_hash_index_t *hi;
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING || getpid() != rt->parent_pid)
        return APR_SUCCESS;
    for (hi = apr_hash_first(NULL, rt->caches); hi; hi = apr_hash_first(NULL, rt->caches))
        retained_destroy(rt, apr_hash_this_val(hi));
    if (rt->root)
        apr_pool_destroy(rt->root);
    rt->root = NULL;
    return APR_SUCCESS;
}

/* The live-entry counter of a shmcb cache, in anonymous shared memory of
 * pool (created in the parent before the children fork, so all of them
 * and the next generations share it with the cache).  NULL on failure. */
static dpop_replayfill_t *fill_create(dpop_replay_t *rc, server_rec *s, apr_pool_t *pool)
{
    apr_shm_t *shm = NULL;
    dpop_replayfill_t *f;
    apr_uint64_t cap = dpop_replayfill_shmcb_capacity(shmcb_size(rc->provider_arg));
    apr_status_t rv = apr_shm_create(&shm, sizeof(*f), NULL, pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "mod_dpop: cannot create shared memory for the replay cache %s", rc->spec);
        return NULL;
    }
    f = apr_shm_baseaddr_get(shm);
    dpop_replayfill_init(f, cap);
    dpop_metrics_replay_fill(0, cap);
    /* What the size means for an operator (docs/scaling.md). */
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "mod_dpop: replay cache capacity: %s holds %" APR_UINT64_T_FMT
                 " proofs that can still be replayed: %" APR_UINT64_T_FMT
                 " new proofs/s sustained with the default 300 s lifetime; beyond that new "
                 "proofs are refused (503), never evicted",
                 rc->spec, cap, cap / (DPOP_DEFAULT_PROOF_LIFETIME + DPOP_DEFAULT_CLOCK_SKEW + 1));
    return f;
}

/* The retained instance for rc's spec: re-used when this spec was already
 * configured, else created and initialized in a pool of its own. */
static apr_status_t retained_attach(replay_retained_t *rt, dpop_replay_t *rc, server_rec *s,
                                    apr_pool_t *ptemp)
{
    retained_cache_t *c = apr_hash_get(rt->caches, rc->spec, APR_HASH_KEY_STRING);
    apr_pool_t *pool = NULL;
    ap_socache_instance_t *inst = NULL;
    struct ap_socache_hints hints;
    const char *err;
    apr_status_t rv;
    if (c) {
        c->generation = rt->generation;
        rc->instance = c->instance;
        rc->fill = c->fill;
        rc->salt = c->salt;
        rc->since = c->since;
        if (c->fill)
            dpop_metrics_replay_fill(c->fill->live, c->fill->capacity);
        return APR_SUCCESS;
    }
    if (!rt->root)
        return APR_ENOMEM;
    rv = apr_pool_create(&pool, rt->root);
    if (rv != APR_SUCCESS)
        return rv;
    apr_pool_tag(pool, "mod_dpop-replay");
    err = rc->provider->create(&inst, rc->provider_arg, ptemp, pool);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_dpop: replay cache %s: %s", rc->spec, err);
        apr_pool_destroy(pool);
        return APR_EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = 32;
    hints.avg_obj_size = 1;
    hints.expiry_interval = apr_time_from_sec(30);
    rv = rc->provider->init(inst, apr_psprintf(pool, "mod_dpop-replay-%u", rt->seq++), &hints, s,
                            pool);
    if (rv != APR_SUCCESS) {
        rc->provider->destroy(inst, s);
        apr_pool_destroy(pool);
        return rv;
    }
    c = apr_pcalloc(pool, sizeof(*c));
    if (apr_generate_random_bytes(c->salt, sizeof(c->salt)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "mod_dpop: replay cache %s: no random bytes for its salt", rc->spec);
        rc->provider->destroy(inst, s);
        apr_pool_destroy(pool);
        return APR_EGENERAL;
    }
    if (!strcasecmp(rc->provider_name, "shmcb") && !(c->fill = fill_create(rc, s, pool))) {
        rc->provider->destroy(inst, s);
        apr_pool_destroy(pool);
        return APR_ENOMEM;
    }
    /* The shared memory was just made empty: it remembers from now on.
     * Rounded up (dpop_replaymark_new): a proof the lost instance accepted
     * in this same second may carry an iat up to skew ahead of it. */
    c->since = dpop_replaymark_new((apr_int64_t)apr_time_sec(apr_time_now()));
    c->spec = apr_pstrdup(pool, rc->spec);
    c->provider_name = apr_pstrdup(pool, rc->provider_name);
    c->pool = pool;
    c->instance = inst;
    c->generation = rt->generation;
    apr_hash_set(rt->caches, c->spec, APR_HASH_KEY_STRING, c);
    {
        char when[APR_RFC822_DATE_LEN];
        apr_rfc822_date(when, apr_time_from_sec(c->since));
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "mod_dpop: replay cache %s created, remembering since %s (%" APR_INT64_T_FMT
                     "): proofs issued before that + DPoPClockSkew are refused (iat_too_old)",
                     rc->spec, when, c->since);
    }
    rc->instance = c->instance;
    rc->fill = c->fill;
    rc->salt = c->salt;
    rc->since = c->since;
    return APR_SUCCESS;
}

int dpop_replay_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    replay_retained_t *rt = retained_get(s);
    apr_hash_index_t *hi;
    server_rec *vs;
    apr_status_t rv;
    int need_mutex = 0;

    rt->generation++;
    for (vs = s; vs; vs = vs->next) {
        dpop_replay_t *rc = dpop_srv_conf(vs)->replay;
        if (rc && rc->kind == REPLAY_SOCACHE)
            need_mutex = 1;
    }
    if (need_mutex && !rt->mutex) {
        /* In the process pool: the children of every generation must lock
         * the same mutex as long as they share a cache. */
        rv = ap_global_mutex_create(&rt->mutex, NULL, DPOP_REPLAY_MUTEX, NULL, s, rt->pool, 0);
        if (rv != APR_SUCCESS) {
            rt->mutex = NULL;
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "mod_dpop: cannot create the replay cache mutex");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    replay_mutex = rt->mutex;
    /* ---- shm stores (mod_dpop_replay_shm.c) ---- */
    for (vs = s; vs; vs = vs->next) {
        dpop_replay_t *rc = dpop_srv_conf(vs)->replay;
        if (rc && rc->kind == REPLAY_SHM &&
            dpop_shmstore_attach(rc->shm, pconf, ptemp, s) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "mod_dpop: cannot initialize the replay store %s", rc->spec);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    dpop_shmstore_post_config_done(pconf, s);
    /* ---- end shm stores ---- */
    for (vs = s; vs; vs = vs->next) {
        dpop_replay_t *rc = dpop_srv_conf(vs)->replay;
        if (!rc || rc->kind != REPLAY_SOCACHE || rc->instance)
            continue;
        rv = retained_attach(rt, rc, s, ptemp);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "mod_dpop: cannot initialize the replay cache %s", rc->spec);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* Caches no longer configured: the new children never see them, the
     * old ones keep their mapping until they exit. */
    for (hi = apr_hash_first(ptemp, rt->caches); hi; hi = apr_hash_next(hi)) {
        retained_cache_t *c = apr_hash_this_val(hi);
        if (c->generation != rt->generation) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                         "mod_dpop: replay cache %s no longer configured; destroyed", c->spec);
            retained_destroy(rt, c);
        }
    }
    apr_pool_cleanup_register(pconf, rt, retained_exit_cleanup, apr_pool_cleanup_null);
    return OK;
}

void dpop_replay_child_init(apr_pool_t *p, server_rec *s)
{
    server_rec *vs;
    int threads = 0;
    dpop_shmstore_child_init();
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
        dpop_srv_conf_t *sc = dpop_srv_conf(vs);
        dpop_replay_t *rc = sc->replay;
        /* The first server naming the store sets its timeout (the main
         * server for vhosts that inherit it). */
        if (rc && rc->kind == REPLAY_MEMCACHE)
            dpop_memcache_child_init(rc->mc, p, s, dpop_conf_replay_timeout_ms(sc), threads);
        else if (rc && rc->kind == REPLAY_REDIS)
            dpop_redis_child_init(rc->redis, p, s, dpop_conf_replay_timeout_ms(sc), threads);
    }
}

static dpop_replay_status_t socache_check_and_store(dpop_replay_t *rc, server_rec *s,
                                                    const unsigned char key[32], apr_time_t expiry,
                                                    apr_pool_t *p, const char **errmsg)
{
    unsigned char buf[8], salted[32];
    unsigned int buflen = sizeof(buf);
    unsigned char mark = 1;
    dpop_replay_status_t st;
    apr_status_t rv;

    if (!replay_mutex || !rc->instance || !rc->salt) {
        *errmsg = "replay cache not initialized";
        return DPOP_REPLAY_ERROR;
    }
    /* Salted with the instance's secret: shmcb picks a sub-cache from the
     * key bytes, and a client who knows SHA-256(jkt || jti) of a captured
     * proof could otherwise grind jtis of its own into that sub-cache until
     * it evicts the captured one.  Outside the lock. */
    if (dpop_sha256(rc->salt, 32, key, 32, salted) != DPOP_OK) {
        *errmsg = "cannot hash the replay key";
        return DPOP_REPLAY_ERROR;
    }
    key = salted;
    rv = apr_global_mutex_lock(replay_mutex);
    if (rv != APR_SUCCESS) {
        *errmsg = apr_psprintf(p, "cannot lock the replay cache mutex (%d)", rv);
        return DPOP_REPLAY_ERROR;
    }
    rv = rc->provider->retrieve(rc->instance, s, key, 32, buf, &buflen, p);
    if (rv == APR_SUCCESS) {
        st = DPOP_REPLAY_SEEN;
    }
    else if (APR_STATUS_IS_NOTFOUND(rv) && rc->fill &&
             !dpop_replayfill_admit(rc->fill, (int64_t)apr_time_sec(apr_time_now()),
                                    (int64_t)apr_time_sec(expiry))) {
        /* Storing would make shmcb evict a proof that can still be
         * replayed: refuse this one instead (fail closed). */
        *errmsg = apr_psprintf(p,
                               "replay cache full (%" APR_UINT64_T_FMT " proofs that can still "
                               "be replayed): enlarge DPoPReplayCache or lower "
                               "DPoPProofLifetime (docs/scaling.md)",
                               rc->fill->live);
        st = DPOP_REPLAY_ERROR;
    }
    else if (APR_STATUS_IS_NOTFOUND(rv)) {
        if (rc->fill)
            dpop_metrics_replay_fill(rc->fill->live, rc->fill->capacity);
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

dpop_replay_status_t dpop_replay_check_and_store(dpop_replay_t *rc, server_rec *s,
                                                 const unsigned char key[32], apr_time_t expiry,
                                                 apr_int64_t iat, int skew, apr_pool_t *p,
                                                 apr_int64_t *lost_at, const char **errmsg)
{
    *errmsg = NULL;
    if (!rc) {
        *errmsg = "no replay cache configured";
        return DPOP_REPLAY_ERROR;
    }
    if (rc->kind == REPLAY_MEMCACHE)
        return dpop_memcache_check(rc->mc, s, key, expiry, iat, skew, p, lost_at, errmsg);
    if (rc->kind == REPLAY_REDIS)
        return dpop_redis_check(rc->redis, s, key, expiry, iat, skew, p, lost_at, errmsg);
    if (rc->kind == REPLAY_SHM) {
        dpop_shm_status_t st = dpop_shmstore_check_and_store(rc->shm, key, expiry, p, errmsg);
        return st == DPOP_SHM_FRESH  ? DPOP_REPLAY_FRESH
               : st == DPOP_SHM_SEEN ? DPOP_REPLAY_SEEN
                                     : DPOP_REPLAY_ERROR;
    }
    return socache_check_and_store(rc, s, key, expiry, p, errmsg);
}

/* ---- loss of memory: one rule for the local stores (shm, shmcb) ---- */

/* DESIGN.md "Replay stores": a store remembering since `since` cannot
 * tell whether a proof issued before since + skew was accepted by the store
 * it replaced (RFC 9449 §11.1 single use; such a proof may carry an iat up
 * to skew ahead of its acceptance, §4.3 (11)).  The comparison is the
 * network stores' (dpop_replaymark_refuses). */
static int forgot_since(apr_int64_t since, apr_int64_t iat, apr_int64_t skew, apr_pool_t *p,
                        const char **detail)
{
    char t1[APR_RFC822_DATE_LEN], t2[APR_RFC822_DATE_LEN];
    if (skew < 0)
        skew = 0;
    if (!dpop_replaymark_refuses(since, iat, (int)skew))
        return 0;
    apr_rfc822_date(t1, apr_time_from_sec(since));
    apr_rfc822_date(t2, apr_time_from_sec(since + skew));
    *detail = apr_psprintf(p,
                           "replay store started remembering at %s (%" APR_INT64_T_FMT
                           "); proofs issued before %s (that moment + DPoPClockSkew) are "
                           "refused: the store it replaced may have accepted them",
                           t1, since, t2);
    return 1;
}

int dpop_replay_forgot(dpop_replay_t *rc, apr_int64_t iat, apr_int64_t skew, apr_pool_t *p,
                       const char **detail)
{
    apr_int64_t since = 0;
    if (!rc)
        return 0;
    if (rc->kind == REPLAY_SHM && !dpop_shmstore_since(rc->shm, &since))
        return 0;
    if (rc->kind == REPLAY_SOCACHE)
        since = rc->since; /* 0 until attached: check_and_store fails closed */
    return since > 0 && forgot_since(since, iat, skew, p, detail);
}

int dpop_replay_stats(dpop_replay_t *rc, dpop_replaytab_stats_t *out)
{
    return rc && rc->kind == REPLAY_SHM ? dpop_shmstore_stats(rc->shm, out) : 0;
}
