/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_shm.c: the file-backed shared-memory replay store (see
 * mod_dpop_replay_shm.h).
 *
 * Tables are kept in ap_retained_data (the parent's process pool), keyed by
 * file path: a restart whose configuration names the same file and size
 * re-uses the mapping, so children of the old and the new generation check
 * the same entries.  A table no longer configured is unmapped by the parent
 * only (old children keep their own mapping until they exit); a new table
 * for a path always goes to a new inode (unlink, then create), so such a
 * mapping never shrinks under a child.  When httpd exits, the parent
 * flushes each table and marks it clean: the next start trusts it.
 *
 * Must never: map a file another httpd holds (flock), or keep an fd in the
 * children (the parent's lock must end with the parent).
 */
#include "mod_dpop_replay_shm.h"
#include "dpop_replaymark.h"
#include "mod_dpop.h"

#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

APLOG_USE_MODULE(dpop);

#define SHM_RETAINED_KEY "mod_dpop-replay-shm"

/* One mapped table, kept across generations. */
typedef struct {
    const char *path;
    apr_uint64_t bytes;
    int fd;                /* the parent's; closed in children */
    void *mem;             /* MAP_SHARED mapping of the file */
    dpop_replaytab_t *tab; /* == mem once formatted or opened */
    const char *began;     /* why since was set ("kept" when trusted) */
    unsigned int generation;
} shm_table_t;

typedef struct {
    apr_pool_t *pool;   /* process pool */
    apr_hash_t *tables; /* path -> shm_table_t */
    unsigned int generation;
    pid_t parent_pid; /* the process that ran the last post_config */
} shm_retained_t;

struct dpop_shmstore {
    const char *path; /* NULL: DefaultRuntimeDir/dpop-replay.shm, resolved at attach */
    apr_uint64_t bytes;
    shm_table_t *table;
};

static shm_retained_t *retained = NULL;

/* "64M", "512k", "2G", "1048576" -> bytes; 0 when malformed. */
static apr_uint64_t parse_size(const char *s)
{
    char *end = NULL;
    unsigned long long v;
    if (!s || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    switch (*end) {
    case 'k':
    case 'K':
        v = v > (1ull << 44) ? 0 : v << 10;
        end++;
        break;
    case 'm':
    case 'M':
        v = v > (1ull << 34) ? 0 : v << 20;
        end++;
        break;
    case 'g':
    case 'G':
        v = v > (1ull << 24) ? 0 : v << 30;
        end++;
        break;
    default:
        break;
    }
    return *end ? 0 : (apr_uint64_t)v;
}

const char *dpop_shmstore_configure(apr_pool_t *p, const char *arg, dpop_shmstore_t **out)
{
    dpop_shmstore_t *st = apr_pcalloc(p, sizeof(*st));
    const char *size = arg;
    st->bytes = DPOP_SHM_DEFAULT_BYTES;
    if (arg && *arg == '/') {
        const char *open = strrchr(arg, '(');
        apr_size_t n = open ? strlen(open) : 0;
        if (!open || n < 3 || open[n - 1] != ')')
            return "shm: a file needs its size: shm:/path(SIZE), e.g. "
                   "shm:/var/cache/apache2/dpop-replay(64M)";
        st->path = apr_pstrmemdup(p, arg, (apr_size_t)(open - arg));
        size = apr_pstrmemdup(p, open + 1, n - 2);
    }
    if (size && *size) {
        st->bytes = parse_size(size);
        if (!st->bytes)
            return apr_psprintf(p,
                                "shm: '%s' is not a size (bytes, or a number with K, M or G: "
                                "shm:64M)",
                                size);
    }
    if (st->bytes < DPOP_REPLAYTAB_MIN || st->bytes > DPOP_REPLAYTAB_MAX)
        return apr_psprintf(p, "shm: size %" APR_UINT64_T_FMT " out of range 1M..16G", st->bytes);
    *out = st;
    return NULL;
}

const char *dpop_shmstore_path(const dpop_shmstore_t *st)
{
    return st->table ? st->table->path : st->path ? st->path : DPOP_SHM_DEFAULT_FILE;
}

static shm_retained_t *retained_get(server_rec *s)
{
    shm_retained_t *rt = ap_retained_data_get(SHM_RETAINED_KEY);
    if (!rt) {
        rt = ap_retained_data_create(SHM_RETAINED_KEY, sizeof(*rt));
        rt->pool = s->process->pool;
        rt->tables = apr_hash_make(rt->pool);
    }
    return rt;
}

/* Unmap and close, without marking clean (its entries stay distrusted). */
static void table_drop(shm_retained_t *rt, shm_table_t *t)
{
    if (t->mem)
        munmap(t->mem, (size_t)t->bytes);
    if (t->fd >= 0)
        close(t->fd);
    t->mem = NULL;
    t->tab = NULL;
    t->fd = -1;
    apr_hash_set(rt->tables, t->path, APR_HASH_KEY_STRING, NULL);
}

static int open_locked(const char *path, int flags, server_rec *s)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | flags, 0600), tries, rc = -1;
    if (fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, "mod_dpop: replay store %s: cannot open",
                     path);
        return -1;
    }
    /* A stopped httpd's lock can outlive its parent for a moment, held
     * through a descriptor that a process forked by another module
     * inherited (mod_cgid's daemon exits after the parent): wait up to 2 s
     * before calling it another httpd's. */
    for (tries = 0; tries < 40; tries++) {
        rc = flock(fd, LOCK_EX | LOCK_NB);
        if (rc == 0 || errno != EWOULDBLOCK)
            break;
        usleep(50000);
    }
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     "mod_dpop: replay store %s is in use by another httpd (its parent holds "
                     "the file's lock); give each instance its own DPoPReplayCache shm:/path",
                     path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Open the file and trust its table, or make a new one (new inode, since =
 * now rounded up to the next second, dpop_replaymark_new: a proof the lost
 * table accepted in this very second may carry an iat up to the skew
 * ahead).  replace: this parent mapped the file for another size (a restart
 * resized it); its lock may still be held through descriptors that
 * processes forked by other modules inherited (mod_cgid's daemon), so go
 * straight to a new inode.  APR_SUCCESS with t->tab set. */
static apr_status_t table_open(shm_table_t *t, server_rec *s, int replace)
{
    struct stat sb;
    dpop_replaytab_open_t why = DPOP_REPLAYTAB_OPEN_NEW;
    unsigned char salt[32];
    apr_int64_t now = (apr_int64_t)time(NULL);
    int rc;

    if (replace) {
        why = DPOP_REPLAYTAB_OPEN_SIZE;
        goto fresh;
    }
    t->fd = open_locked(t->path, O_CREAT, s);
    if (t->fd < 0)
        return APR_EGENERAL;
    if (fstat(t->fd, &sb) == 0 && (apr_uint64_t)sb.st_size == t->bytes) {
        t->mem = mmap(NULL, (size_t)t->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
        if (t->mem == MAP_FAILED)
            t->mem = NULL;
        why = t->mem ? dpop_replaytab_open(t->mem, t->bytes, &t->tab) : DPOP_REPLAYTAB_OPEN_NEW;
        if (why == DPOP_REPLAYTAB_OPEN_OK) {
            t->began = "kept";
            return APR_SUCCESS;
        }
        if (t->mem)
            munmap(t->mem, (size_t)t->bytes);
        t->mem = NULL;
    }
    else if (sb.st_size != 0) {
        why = DPOP_REPLAYTAB_OPEN_SIZE;
    }
fresh:
    /* A new table on a new inode: a mapping someone may still hold on the
     * old one is never truncated under it. */
    if (unlink(t->path) != 0 && errno != ENOENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, "mod_dpop: replay store %s: cannot replace",
                     t->path);
        return APR_EGENERAL;
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = open_locked(t->path, O_CREAT | O_EXCL, s);
    if (t->fd < 0)
        return APR_EGENERAL;
    /* Reserve the blocks now: a full disk or tmpfs fails the start instead
     * of killing a child with SIGBUS on its first write. */
    rc = posix_fallocate(t->fd, 0, (off_t)t->bytes);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rc, s,
                     "mod_dpop: replay store %s: cannot reserve %" APR_UINT64_T_FMT " bytes",
                     t->path, t->bytes);
        return APR_EGENERAL;
    }
    t->mem = mmap(NULL, (size_t)t->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
    if (t->mem == MAP_FAILED) {
        t->mem = NULL;
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, "mod_dpop: replay store %s: cannot map",
                     t->path);
        return APR_EGENERAL;
    }
    if (apr_generate_random_bytes(salt, sizeof(salt)) != APR_SUCCESS ||
        dpop_replaytab_format(t->mem, t->bytes, salt, dpop_replaymark_new(now), &t->tab) !=
            DPOP_OK) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "mod_dpop: replay store %s: cannot initialize (salt or locks)", t->path);
        return APR_EGENERAL;
    }
    t->began = dpop_replaytab_open_reason(why);
    return APR_SUCCESS;
}

static void log_capacity(const shm_table_t *t, server_rec *s)
{
    apr_uint64_t slots = dpop_replaytab_slots(t->bytes);
    /* Usable: the first refusal comes at about 85% of the slots with
     * random keys (tests/unit/test_proof_replaytab.c measures it); quote
     * 80% so the figure holds. */
    apr_uint64_t usable = slots / 10 * 8;
    char when[APR_RFC822_DATE_LEN];
    apr_rfc822_date(when, apr_time_from_sec(dpop_replaytab_since(t->tab)));
    ap_log_error(
        APLOG_MARK, APLOG_NOTICE, 0, s,
        "mod_dpop: replay store shm %s (%" APR_UINT64_T_FMT " bytes): %" APR_UINT64_T_FMT
        " slots, about %" APR_UINT64_T_FMT " proofs that can still be replayed: %" APR_UINT64_T_FMT
        " new proofs/s sustained with the default 300 s lifetime; beyond that new proofs "
        "are refused (503), never evicted; table %s, remembering since %s",
        t->path, t->bytes, slots, usable,
        usable / (DPOP_DEFAULT_PROOF_LIFETIME + DPOP_DEFAULT_CLOCK_SKEW + 1), t->began, when);
}

apr_status_t dpop_shmstore_attach(dpop_shmstore_t *st, apr_pool_t *pconf, apr_pool_t *ptemp,
                                  server_rec *s)
{
    shm_retained_t *rt = retained_get(s);
    const char *path = st->path;
    shm_table_t *t;
    apr_status_t rv;
    int replace;
    (void)ptemp;

    if (!path)
        path = ap_runtime_dir_relative(pconf, DPOP_SHM_DEFAULT_FILE);
    if (!path)
        return APR_EINVAL;
    t = apr_hash_get(rt->tables, path, APR_HASH_KEY_STRING);
    if (t && t->bytes == st->bytes && t->tab) {
        if (t->generation != rt->generation) {
            t->generation = rt->generation;
            t->began = "kept";
            log_capacity(t, s);
        }
        st->table = t;
        return APR_SUCCESS;
    }
    if (t && t->generation == rt->generation) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "mod_dpop: replay store %s is configured with two sizes", path);
        return APR_EINVAL;
    }
    replace = t != NULL;
    if (t) /* resized by this restart: a new table (old children keep the old) */
        table_drop(rt, t);
    t = apr_pcalloc(rt->pool, sizeof(*t));
    t->path = apr_pstrdup(rt->pool, path);
    t->bytes = st->bytes;
    t->fd = -1;
    rv = table_open(t, s, replace);
    if (rv != APR_SUCCESS) {
        if (t->mem)
            munmap(t->mem, (size_t)t->bytes);
        if (t->fd >= 0)
            close(t->fd);
        return rv;
    }
    t->generation = rt->generation;
    apr_hash_set(rt->tables, t->path, APR_HASH_KEY_STRING, t);
    log_capacity(t, s);
    st->table = t;
    return APR_SUCCESS;
}

/* pconf cleanup: on exit (in the parent) flush every table and mark it
 * clean, so the next start keeps its entries; a restart keeps them mapped. */
static apr_status_t shm_exit_cleanup(void *data)
{
    shm_retained_t *rt = data;
    apr_hash_index_t *hi;
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING || getpid() != rt->parent_pid)
        return APR_SUCCESS;
    for (hi = apr_hash_first(NULL, rt->tables); hi; hi = apr_hash_first(NULL, rt->tables)) {
        shm_table_t *t = apr_hash_this_val(hi);
        if (t->tab && msync(t->mem, (size_t)t->bytes, MS_SYNC) == 0) {
            dpop_replaytab_close(t->tab);
            msync(t->mem, DPOP_REPLAYTAB_HEADER, MS_SYNC);
        }
        table_drop(rt, t);
    }
    return APR_SUCCESS;
}

void dpop_shmstore_post_config_done(apr_pool_t *pconf, server_rec *s)
{
    shm_retained_t *rt = retained_get(s);
    apr_hash_index_t *hi;
    rt->parent_pid = getpid();
    for (hi = apr_hash_first(pconf, rt->tables); hi; hi = apr_hash_next(hi)) {
        shm_table_t *t = apr_hash_this_val(hi);
        if (t->generation != rt->generation) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                         "mod_dpop: replay store %s no longer configured; released", t->path);
            table_drop(rt, t);
        }
    }
    rt->generation++;
    retained = rt;
    apr_pool_cleanup_register(pconf, rt, shm_exit_cleanup, apr_pool_cleanup_null);
}

void dpop_shmstore_child_init(void)
{
    apr_hash_index_t *hi;
    if (!retained)
        return;
    for (hi = apr_hash_first(NULL, retained->tables); hi; hi = apr_hash_next(hi)) {
        shm_table_t *t = apr_hash_this_val(hi);
        if (t->fd >= 0)
            close(t->fd);
        t->fd = -1;
    }
}

dpop_shm_status_t dpop_shmstore_check_and_store(dpop_shmstore_t *st, const unsigned char key[32],
                                                apr_time_t expiry, apr_pool_t *p,
                                                const char **errmsg)
{
    dpop_replaytab_t *tab = st->table ? st->table->tab : NULL;
    if (!tab) {
        *errmsg = "replay store not initialized";
        return DPOP_SHM_ERROR;
    }
    switch (dpop_replaytab_check_and_store(tab, key, (int64_t)apr_time_sec(apr_time_now()),
                                           (int64_t)apr_time_sec(expiry))) {
    case DPOP_REPLAYTAB_FRESH:
        return DPOP_SHM_FRESH;
    case DPOP_REPLAYTAB_SEEN:
        return DPOP_SHM_SEEN;
    case DPOP_REPLAYTAB_FULL:
        /* Storing would need the slot of a proof that can still be
         * replayed: refuse this one instead (fail closed). */
        *errmsg = apr_psprintf(p,
                               "replay store full (both buckets of this proof hold live "
                               "entries; %" APR_UINT64_T_FMT
                               " slots): enlarge DPoPReplayCache shm:SIZE or lower "
                               "DPoPProofLifetime (docs/scaling.md)",
                               dpop_replaytab_slots(st->table->bytes));
        return DPOP_SHM_ERROR;
    default:
        *errmsg = "replay store lock unusable";
        return DPOP_SHM_ERROR;
    }
}

int dpop_shmstore_since(dpop_shmstore_t *st, apr_int64_t *since)
{
    if (!st->table || !st->table->tab)
        return 0;
    *since = dpop_replaytab_since(st->table->tab);
    return 1;
}

int dpop_shmstore_stats(dpop_shmstore_t *st, dpop_replaytab_stats_t *out)
{
    if (!st->table || !st->table->tab)
        return 0;
    dpop_replaytab_stats(st->table->tab, (int64_t)apr_time_sec(apr_time_now()), out);
    return 1;
}
