/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_lru.c: bounded LRU map from byte strings to owned values (see
 * dpop_lru.h), per process, shared by all threads.
 *
 * The hash is a table index, not a security boundary: every hit is
 * confirmed by memcmp of the full key bytes.
 */
#include "dpop_lru.h"
#include "dpop_hash.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LRU_MAX_CHAIN 8 /* refuse inserts into longer chains */

typedef struct entry {
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* LRU list: head = most recent */
    uint64_t hash;
    void *value;
    size_t len;
    unsigned char key[]; /* key bytes */
} entry_t;

struct dpop_lru {
    pthread_mutex_t mu;
    entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t capacity, size, max_key;
    entry_t *head, *tail;
    uint64_t seed;
    dpop_lru_free_fn free_value;
};

dpop_lru_t *dpop_lru_create(size_t capacity, size_t max_key, dpop_lru_free_fn free_value)
{
    dpop_lru_t *c;
    size_t nb = 16;
    if (!capacity || !free_value || capacity > (SIZE_MAX / sizeof(entry_t *)) / 4)
        return NULL;
    /* Load factor <= 0.5 keeps chains short. */
    while (nb < capacity * 2)
        nb <<= 1;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    /* Fail closed on the RNG: an unseeded table fed by network input could
     * be flooded with colliding keys. */
    if (dpop_hash_seed(&c->seed) != 0 || !(c->buckets = calloc(nb, sizeof(entry_t *))) ||
        pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    c->nbuckets = nb;
    c->capacity = capacity;
    c->max_key = max_key;
    c->free_value = free_value;
    return c;
}

static void entry_free(dpop_lru_t *c, entry_t *e)
{
    c->free_value(e->value);
    free(e);
}

void dpop_lru_free(dpop_lru_t *c)
{
    entry_t *e, *n;
    if (!c)
        return;
    for (e = c->head; e; e = n) {
        n = e->next;
        entry_free(c, e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

/* LRU list and bucket helpers; caller holds the mutex. */
static void lru_unlink(dpop_lru_t *c, entry_t *e)
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

static void lru_push_front(dpop_lru_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void lru_touch(dpop_lru_t *c, entry_t *e)
{
    if (c->head != e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
    }
}

static entry_t *find(dpop_lru_t *c, uint64_t h, const void *key, size_t len, size_t *chain)
{
    entry_t *e = c->buckets[h & (c->nbuckets - 1)];
    size_t n = 0;
    for (; e; e = e->hnext, n++)
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            break;
    if (chain)
        *chain = n;
    return e;
}

/* Take e out of the table and the list (it is freed by the caller). */
static void remove_entry(dpop_lru_t *c, entry_t *e)
{
    entry_t **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(c, e);
    c->size--;
}

int dpop_lru_get(dpop_lru_t *c, const void *key, size_t len, dpop_lru_visit_fn visit, void *ctx)
{
    entry_t *e, *stale = NULL;
    uint64_t h;
    int hit = 0;
    if (!c || !key || !len || len > c->max_key)
        return 0;
    h = dpop_hash_bytes(c->seed, key, len);
    pthread_mutex_lock(&c->mu);
    if ((e = find(c, h, key, len, NULL))) {
        if (!visit || visit(e->value, ctx)) {
            lru_touch(c, e);
            hit = 1;
        }
        else {
            remove_entry(c, e);
            stale = e;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (stale)
        entry_free(c, stale);
    return hit;
}

void dpop_lru_put(dpop_lru_t *c, const void *key, size_t len, void *value)
{
    entry_t *e, *victim = NULL;
    size_t chain = 0;
    uint64_t h;
    if (!c || !value)
        return;
    if (!key || !len || len > c->max_key) {
        c->free_value(value);
        return;
    }
    h = dpop_hash_bytes(c->seed, key, len);
    /* Allocate and copy outside the lock. */
    if (!(e = malloc(sizeof(*e) + len))) {
        c->free_value(value);
        return;
    }
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->value = value;
    e->len = len;
    memcpy(e->key, key, len);

    pthread_mutex_lock(&c->mu);
    if (find(c, h, key, len, &chain) || chain >= LRU_MAX_CHAIN) {
        /* Another thread inserted the same key first (keep its entry), or
         * the bucket is suspiciously full. */
        pthread_mutex_unlock(&c->mu);
        entry_free(c, e);
        return;
    }
    if (c->size >= c->capacity && (victim = c->tail))
        remove_entry(c, victim);
    e->hnext = c->buckets[h & (c->nbuckets - 1)];
    c->buckets[h & (c->nbuckets - 1)] = e;
    lru_push_front(c, e);
    c->size++;
    pthread_mutex_unlock(&c->mu);
    /* Free the evicted value outside the lock. */
    if (victim)
        entry_free(c, victim);
}

size_t dpop_lru_size(const dpop_lru_t *c)
{
    size_t n;
    if (!c)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    n = c->size;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return n;
}
