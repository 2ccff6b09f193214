/*
 * dpop_keycache.c: bounded LRU cache from protected-header bytes to the
 * imported proof key (per process, shared by all threads).
 *
 * Why: a client repeats the same header (typ, alg, jwk) on every proof, and
 * re-importing its key (base64url, JSON, point validation, SHA-256
 * thumbprint) costs as much as a fast signature check.  The cache makes the
 * repeat path one hash of the header bytes, one memcmp and one list splice.
 *
 * Structure: open hash table with chaining plus a doubly-linked LRU list,
 * under one pthread mutex.  Keys are refcounted, so an entry evicted while a
 * request still uses its key does not free it under that request.
 *
 * The hash is dpop_hash_bytes (dpop_hash.h) seeded with random bytes from
 * OpenSSL at creation: it is a table index, not a security boundary (every hit is confirmed by
 * memcmp of the full bytes).  The seed and a per-bucket chain limit keep an
 * attacker who sends many crafted headers from degrading lookups to a list
 * walk.  Only headers that passed every check may be inserted (caller's
 * duty), and the cache never holds secrets: proof keys are public.
 */
#include "dpop_keycache.h"
#include "dpop_hash.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEYCACHE_DEFAULT_CAPACITY 1024
#define KEYCACHE_MAX_HDR 8192 /* larger headers are not worth caching */
#define KEYCACHE_MAX_CHAIN 8  /* refuse inserts into longer chains */

typedef struct entry {
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* LRU list: head = most recent */
    uint64_t hash;
    dpop_jwk_t *key; /* one reference held by the cache */
    dpop_alg_t alg;
    size_t len;
    char hdr[]; /* header bytes (not NUL-terminated) */
} entry_t;

struct dpop_keycache {
    pthread_mutex_t mu;
    entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t capacity, size;
    entry_t *head, *tail;
    uint64_t seed;
};

dpop_keycache_t *dpop_keycache_create(size_t capacity)
{
    dpop_keycache_t *c;
    size_t nb = 16;
    if (!capacity)
        capacity = KEYCACHE_DEFAULT_CAPACITY;
    if (capacity > (SIZE_MAX / sizeof(entry_t *)) / 4)
        return NULL;
    /* Load factor <= 0.5 keeps chains short. */
    while (nb < capacity * 2)
        nb <<= 1;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    if (!(c->buckets = calloc(nb, sizeof(entry_t *))) || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    c->nbuckets = nb;
    c->capacity = capacity;
    if (dpop_hash_seed(&c->seed) != 0)
        c->seed = (uint64_t)(uintptr_t)c; /* still correct, only less spread */
    return c;
}

static void entry_free(entry_t *e)
{
    dpop_jwk_free(e->key);
    free(e);
}

void dpop_keycache_free(dpop_keycache_t *c)
{
    entry_t *e, *n;
    if (!c)
        return;
    for (e = c->head; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

/* LRU list helpers; caller holds the mutex. */
static void lru_unlink(dpop_keycache_t *c, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(dpop_keycache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static entry_t *find(dpop_keycache_t *c, uint64_t h, const char *hdr, size_t len, size_t *chain)
{
    entry_t *e = c->buckets[h & (c->nbuckets - 1)];
    size_t n = 0;
    for (; e; e = e->hnext, n++)
        if (e->hash == h && e->len == len && memcmp(e->hdr, hdr, len) == 0)
            break;
    if (chain)
        *chain = n;
    return e;
}

static void bucket_remove(dpop_keycache_t *c, entry_t *e)
{
    entry_t **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
}

dpop_jwk_t *dpop_keycache_get(dpop_keycache_t *c, const char *hdr, size_t len, dpop_alg_t *alg)
{
    entry_t *e;
    dpop_jwk_t *k = NULL;
    uint64_t h;
    if (!c || !hdr || !len || len > KEYCACHE_MAX_HDR)
        return NULL;
    h = dpop_hash_bytes(c->seed, hdr, len);
    pthread_mutex_lock(&c->mu);
    if ((e = find(c, h, hdr, len, NULL))) {
        if (c->head != e) {
            lru_unlink(c, e);
            lru_push_front(c, e);
        }
        k = dpop_jwk_ref(e->key);
        if (alg)
            *alg = e->alg;
    }
    pthread_mutex_unlock(&c->mu);
    return k;
}

void dpop_keycache_put(dpop_keycache_t *c, const char *hdr, size_t len, dpop_jwk_t *k,
                       dpop_alg_t alg)
{
    entry_t *e, *old, *victim = NULL;
    size_t chain = 0;
    uint64_t h;
    if (!c || !hdr || !len || !k || len > KEYCACHE_MAX_HDR)
        return;
    h = dpop_hash_bytes(c->seed, hdr, len);
    /* Allocate and copy outside the lock. */
    if (!(e = malloc(sizeof(*e) + len)))
        return;
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->alg = alg;
    e->len = len;
    memcpy(e->hdr, hdr, len);
    e->key = dpop_jwk_ref(k);

    pthread_mutex_lock(&c->mu);
    if ((old = find(c, h, hdr, len, &chain))) {
        /* Another thread inserted the same header first: keep its entry. */
        if (c->head != old) {
            lru_unlink(c, old);
            lru_push_front(c, old);
        }
        pthread_mutex_unlock(&c->mu);
        entry_free(e);
        return;
    }
    if (chain >= KEYCACHE_MAX_CHAIN) {
        pthread_mutex_unlock(&c->mu);
        entry_free(e);
        return;
    }
    if (c->size >= c->capacity && (victim = c->tail)) {
        lru_unlink(c, victim);
        bucket_remove(c, victim);
        c->size--;
    }
    e->hnext = c->buckets[h & (c->nbuckets - 1)];
    c->buckets[h & (c->nbuckets - 1)] = e;
    lru_push_front(c, e);
    c->size++;
    pthread_mutex_unlock(&c->mu);
    /* Drop the evicted entry's key reference outside the lock; users that
     * still hold their own reference keep the key alive. */
    if (victim)
        entry_free(victim);
}

size_t dpop_keycache_size(const dpop_keycache_t *c)
{
    size_t n;
    if (!c)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    n = c->size;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return n;
}
