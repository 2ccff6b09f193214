/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_replaytab.c: the shared-memory replay table (see dpop_replaytab.h).
 *
 * Everything lives in the caller's region and is addressed from its start,
 * so every process that maps the region (at any address) sees one table.
 * Must never: keep a pointer into the region in a static, or do I/O.
 */
#include "dpop_replaytab.h"
#include "dpop_result.h"
#include "dpop_sha256.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define MAGIC "DPOPRPT1"
#define STRIPE_BYTES 64
#define BUCKET_BYTES (DPOP_REPLAYTAB_SLOTS * 16)
#define MIN_STRIPES 64u
#define MAX_STRIPES 4096u

typedef struct {
    uint32_t exp; /* unix s; the slot is free when exp <= now (0: never used) */
    uint32_t fp0; /* fingerprint: 12 bytes of SHA-256(salt || key) */
    uint64_t fp1;
} slot_t;

typedef struct {
    slot_t s[DPOP_REPLAYTAB_SLOTS];
} bucket_t;

typedef union {
    pthread_mutex_t m;
    unsigned char pad[STRIPE_BYTES];
} stripe_t;

struct dpop_replaytab {
    char magic[8];
    uint32_t version;
    uint32_t slots_per_bucket;
    uint64_t bytes;
    uint64_t nbuckets;
    uint32_t nstripes;
    uint32_t clean; /* 1: closed cleanly, nobody maps it; 0: in use */
    int64_t since;
    unsigned char salt[32];
    uint64_t geometry_check; /* ties the fields above together */
    uint64_t full;           /* counters, updated atomically */
    uint64_t recoveries;
};

_Static_assert(sizeof(slot_t) == 16, "16-byte slots");
_Static_assert(sizeof(stripe_t) == STRIPE_BYTES, "one stripe per cache line");
_Static_assert(sizeof(struct dpop_replaytab) <= DPOP_REPLAYTAB_HEADER, "header fits");

static uint32_t geometry(uint64_t bytes, uint64_t *nbuckets)
{
    uint64_t nb = (bytes - DPOP_REPLAYTAB_HEADER) / BUCKET_BYTES;
    uint32_t ns = MIN_STRIPES;
    /* About one stripe per 16 buckets: contention stays rare with hundreds
     * of workers while the stripes cost under 2% of the region. */
    while (ns < MAX_STRIPES && (uint64_t)ns * 2 * 16 <= nb)
        ns *= 2;
    *nbuckets = (bytes - DPOP_REPLAYTAB_HEADER - (uint64_t)ns * STRIPE_BYTES) / BUCKET_BYTES;
    return ns;
}

uint64_t dpop_replaytab_slots(uint64_t bytes)
{
    uint64_t nb = 0;
    if (bytes < DPOP_REPLAYTAB_MIN || bytes > DPOP_REPLAYTAB_MAX)
        return 0;
    geometry(bytes, &nb);
    return nb * DPOP_REPLAYTAB_SLOTS;
}

static stripe_t *stripes(dpop_replaytab_t *t)
{
    return (stripe_t *)((unsigned char *)t + DPOP_REPLAYTAB_HEADER);
}

static bucket_t *buckets(dpop_replaytab_t *t)
{
    return (bucket_t *)((unsigned char *)t + DPOP_REPLAYTAB_HEADER +
                        (size_t)t->nstripes * STRIPE_BYTES);
}

static uint64_t check_of(const dpop_replaytab_t *t)
{
    /* FNV-1a over the fixed fields: a torn or scribbled header does not
     * pass for a table of the right size. */
    uint64_t h = 14695981039346656037ull;
    const unsigned char *p = (const unsigned char *)t;
    size_t i, n = offsetof(struct dpop_replaytab, geometry_check);
    /* from the version on: the magic is written after this is computed */
    for (i = offsetof(struct dpop_replaytab, version); i < n; i++) {
        if (i >= offsetof(struct dpop_replaytab, clean) &&
            i < offsetof(struct dpop_replaytab, clean) + sizeof(t->clean))
            continue; /* the clean flag changes while the table is kept */
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

static int init_stripes(dpop_replaytab_t *t)
{
    pthread_mutexattr_t attr;
    uint32_t i;
    int rc = DPOP_ERR;
    if (pthread_mutexattr_init(&attr))
        return DPOP_ERR;
    /* Shared between processes, robust (a child killed while holding it
     * does not stall the others), and explicitly not priority-inheriting:
     * a PI mutex enters the kernel on every contended lock and unlock. */
    if (pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) ||
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) ||
        pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_NONE))
        goto done;
    for (i = 0; i < t->nstripes; i++) {
        memset(&stripes(t)[i], 0, sizeof(stripe_t));
        if (pthread_mutex_init(&stripes(t)[i].m, &attr))
            goto done;
    }
    rc = DPOP_OK;
done:
    pthread_mutexattr_destroy(&attr);
    return rc;
}

int dpop_replaytab_format(void *mem, uint64_t bytes, const unsigned char salt[32], int64_t since,
                          dpop_replaytab_t **out)
{
    dpop_replaytab_t *t = mem;
    *out = NULL;
    if (!mem || bytes < DPOP_REPLAYTAB_MIN || bytes > DPOP_REPLAYTAB_MAX)
        return DPOP_ERR;
    memset(t, 0, DPOP_REPLAYTAB_HEADER);
    t->version = DPOP_REPLAYTAB_VERSION;
    t->slots_per_bucket = DPOP_REPLAYTAB_SLOTS;
    t->bytes = bytes;
    t->nstripes = geometry(bytes, &t->nbuckets);
    t->since = since;
    memcpy(t->salt, salt, 32);
    t->geometry_check = check_of(t);
    if (init_stripes(t) != DPOP_OK)
        return DPOP_ERR;
    /* Magic last: a format cut short is not taken for a table. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(t->magic, MAGIC, sizeof(t->magic));
    *out = t;
    return DPOP_OK;
}

dpop_replaytab_open_t dpop_replaytab_open(void *mem, uint64_t bytes, dpop_replaytab_t **out)
{
    static const char zeros[8] = {0};
    dpop_replaytab_t *t = mem;
    uint64_t nb = 0;
    *out = NULL;
    if (!mem || bytes < DPOP_REPLAYTAB_MIN || bytes > DPOP_REPLAYTAB_MAX)
        return DPOP_REPLAYTAB_OPEN_SIZE;
    if (!memcmp(t->magic, zeros, sizeof(zeros)))
        return DPOP_REPLAYTAB_OPEN_NEW;
    if (memcmp(t->magic, MAGIC, sizeof(t->magic)))
        return DPOP_REPLAYTAB_OPEN_CORRUPT;
    if (t->version != DPOP_REPLAYTAB_VERSION)
        return DPOP_REPLAYTAB_OPEN_VERSION;
    if (t->bytes != bytes)
        return DPOP_REPLAYTAB_OPEN_SIZE;
    if (t->slots_per_bucket != DPOP_REPLAYTAB_SLOTS || t->nstripes != geometry(bytes, &nb) ||
        t->nbuckets != nb || t->geometry_check != check_of(t))
        return DPOP_REPLAYTAB_OPEN_CORRUPT;
    if (t->clean != 1)
        return DPOP_REPLAYTAB_OPEN_UNCLEAN;
    if (init_stripes(t) != DPOP_OK)
        return DPOP_REPLAYTAB_OPEN_LOCKS;
    __atomic_store_n(&t->clean, 0, __ATOMIC_SEQ_CST);
    *out = t;
    return DPOP_REPLAYTAB_OPEN_OK;
}

void dpop_replaytab_close(dpop_replaytab_t *t)
{
    if (t)
        __atomic_store_n(&t->clean, 1, __ATOMIC_SEQ_CST);
}

int64_t dpop_replaytab_since(const dpop_replaytab_t *t)
{
    return t->since;
}

const char *dpop_replaytab_open_reason(dpop_replaytab_open_t why)
{
    switch (why) {
    case DPOP_REPLAYTAB_OPEN_OK:
        return "kept";
    case DPOP_REPLAYTAB_OPEN_NEW:
        return "new";
    case DPOP_REPLAYTAB_OPEN_CORRUPT:
        return "corrupt header";
    case DPOP_REPLAYTAB_OPEN_VERSION:
        return "another layout version";
    case DPOP_REPLAYTAB_OPEN_SIZE:
        return "made for another size";
    case DPOP_REPLAYTAB_OPEN_UNCLEAN:
        return "not closed cleanly (a crash or a kill: entries may be lost)";
    case DPOP_REPLAYTAB_OPEN_LOCKS:
        return "locks could not be initialized";
    }
    return "unknown";
}

static int stripe_lock(dpop_replaytab_t *t, uint32_t i)
{
    int rc = pthread_mutex_lock(&stripes(t)[i].m);
    if (rc == EOWNERDEAD) {
        /* The owner died inside its critical section.  Its bucket is
         * consistent (a slot's expiry is written after its fingerprint, so
         * a half-written slot is still free): take the stripe over. */
        if (pthread_mutex_consistent(&stripes(t)[i].m)) {
            pthread_mutex_unlock(&stripes(t)[i].m);
            return DPOP_ERR;
        }
        __atomic_add_fetch(&t->recoveries, 1, __ATOMIC_RELAXED);
        return DPOP_OK;
    }
    return rc ? DPOP_ERR : DPOP_OK;
}

static void stripe_unlock(dpop_replaytab_t *t, uint32_t i)
{
    pthread_mutex_unlock(&stripes(t)[i].m);
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Look for the fingerprint among the live slots of b; count free slots and
 * remember the first.  1 when found. */
static int scan(bucket_t *b, uint32_t fp0, uint64_t fp1, uint32_t now, int *nfree, slot_t **free)
{
    int i;
    *nfree = 0;
    *free = NULL;
    for (i = 0; i < DPOP_REPLAYTAB_SLOTS; i++) {
        slot_t *s = &b->s[i];
        if (s->exp > now) {
            if (s->fp0 == fp0 && s->fp1 == fp1)
                return 1;
        }
        else if ((*nfree)++ == 0) {
            *free = s;
        }
    }
    return 0;
}

dpop_replaytab_status_t dpop_replaytab_check_and_store(dpop_replaytab_t *t,
                                                       const unsigned char key[32], int64_t now,
                                                       int64_t expiry)
{
    unsigned char h[32];
    uint32_t b1, b2, s1, s2, fp0, n32, e32;
    uint64_t fp1;
    int free1 = 0, free2 = 0;
    slot_t *f1 = NULL, *f2 = NULL, *dst;
    dpop_replaytab_status_t st;

    if (dpop_sha256(t->salt, sizeof(t->salt), key, 32, h) != DPOP_OK)
        return DPOP_REPLAYTAB_ERROR;
    /* Two buckets from independent hash bits (multiply-shift maps 32 bits
     * onto [0, nbuckets) without a division), fingerprint from others. */
    b1 = (uint32_t)(((uint64_t)be32(h) * t->nbuckets) >> 32);
    b2 = (uint32_t)(((uint64_t)be32(h + 4) * t->nbuckets) >> 32);
    fp0 = be32(h + 8);
    memcpy(&fp1, h + 12, sizeof(fp1));
    n32 = now <= 0 ? 0 : now >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)now;
    e32 = expiry <= (int64_t)n32 ? n32 + 1 : expiry >= UINT32_MAX ? UINT32_MAX : (uint32_t)expiry;
    s1 = b1 & (t->nstripes - 1);
    s2 = b2 & (t->nstripes - 1);
    if (s1 > s2) {
        uint32_t x = s1;
        s1 = s2;
        s2 = x;
    }
    if (stripe_lock(t, s1) != DPOP_OK)
        return DPOP_REPLAYTAB_ERROR;
    if (s2 != s1 && stripe_lock(t, s2) != DPOP_OK) {
        stripe_unlock(t, s1);
        return DPOP_REPLAYTAB_ERROR;
    }
    if (scan(&buckets(t)[b1], fp0, fp1, n32, &free1, &f1) ||
        (b2 != b1 && scan(&buckets(t)[b2], fp0, fp1, n32, &free2, &f2))) {
        st = DPOP_REPLAYTAB_SEEN;
        goto done;
    }
    dst = free2 > free1 ? f2 : f1;
    if (!dst) {
        __atomic_add_fetch(&t->full, 1, __ATOMIC_RELAXED);
        st = DPOP_REPLAYTAB_FULL;
        goto done;
    }
    dst->fp0 = fp0;
    dst->fp1 = fp1;
    /* The expiry makes the slot live: written last, so a process killed
     * here leaves a free slot or a whole entry (see stripe_lock). */
    __atomic_store_n(&dst->exp, e32, __ATOMIC_RELEASE);
    st = DPOP_REPLAYTAB_FRESH;
done:
    if (s2 != s1)
        stripe_unlock(t, s2);
    stripe_unlock(t, s1);
    return st;
}

void dpop_replaytab_stats(dpop_replaytab_t *t, int64_t now, dpop_replaytab_stats_t *st)
{
    bucket_t *b = buckets(t);
    uint64_t i, live = 0;
    uint32_t n32 = now <= 0 ? 0 : now >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)now;
    int j;
    for (i = 0; i < t->nbuckets; i++)
        for (j = 0; j < DPOP_REPLAYTAB_SLOTS; j++)
            if (__atomic_load_n(&b[i].s[j].exp, __ATOMIC_RELAXED) > n32)
                live++;
    st->live = live;
    st->slots = t->nbuckets * DPOP_REPLAYTAB_SLOTS;
    st->full = __atomic_load_n(&t->full, __ATOMIC_RELAXED);
    st->recoveries = __atomic_load_n(&t->recoveries, __ATOMIC_RELAXED);
    st->since = t->since;
}
