/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_core_cache.c: the core's in-memory caches (issue 9: nothing cached
 * may let a bad token, an expired token, a revoked JWKS key or a replayed
 * proof through).
 *
 * dpop_lru: hits and misses, the capacity bound and LRU order (a table of
 * operation scripts), every value freed exactly once whichever way it leaves
 * (evicted, declined duplicate, stale, key too long, at free), stale entries
 * dropped by visit, key limits and NULL arguments, four threads at once.
 *
 * dpop_tokencache: a hit answers exactly what the first verification
 * concluded; exp and nbf are rechecked with each request's clock and skew
 * and a stale entry is dropped (table); issuer, audience, alg mask and size
 * limit are part of what was verified (table); a key set loaded twice never
 * shares entries and a rotated set without the signing key rejects;
 * tampered and failing tokens are never answered from the cache; bounds,
 * NULL cache, ath given or computed, threads.
 *
 * dpop_keycache over dpop_lru: the alg is kept, a held key survives its
 * eviction and the cache's destruction.
 *
 * Keys and key sets are made once in main() before the runner forks.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_alg.h"
#include "dpop_jwk.h"
#include "dpop_jwks.h"
#include "dpop_jws.h"
#include "dpop_keycache.h"
#include "dpop_lru.h"
#include "dpop_proof.h"
#include "dpop_sig.h"
#include "dpop_token.h"
#include "dpop_tokencache.h"
#include "test_core_util.h"

/* ==================================================================== */
/* dpop_lru                                                             */
/* ==================================================================== */

/* Every value carries a unique id; the free callback counts per id, so a
 * test can tell "freed exactly once" from "leaked" and "freed twice". */
#define MAX_IDS 100000

typedef struct {
    int id;
    int tag; /* the key index the value was stored under (thread test) */
} val_t;

static atomic_int g_freed[MAX_IDS];
static atomic_int g_next_id;

static void lru_setup(void)
{
    int i;
    for (i = 0; i < MAX_IDS; i++)
        atomic_store(&g_freed[i], 0);
    atomic_store(&g_next_id, 0);
}

/* No ck_assert here: also called from worker threads. */
static val_t *make_val(int tag)
{
    val_t *v = malloc(sizeof(*v));
    int id = atomic_fetch_add(&g_next_id, 1);
    if (!v || id >= MAX_IDS) {
        free(v);
        return NULL;
    }
    v->id = id;
    v->tag = tag;
    return v;
}

static val_t *new_val(void)
{
    val_t *v = make_val(-1);
    ck_assert_ptr_nonnull(v);
    return v;
}

static void count_free(void *p)
{
    val_t *v = p;
    atomic_fetch_add(&g_freed[v->id], 1);
    free(v);
}

static int freed(int id)
{
    return atomic_load(&g_freed[id]);
}

static int made_count(void)
{
    return atomic_load(&g_next_id);
}

/* After dpop_lru_free: every value ever made was freed exactly once. */
static void assert_all_freed_once(void)
{
    int i, n = atomic_load(&g_next_id);
    for (i = 0; i < n; i++)
        ck_assert_msg(freed(i) == 1, "value %d freed %d times", i, freed(i));
}

/* visit: copy the id into ctx, accept. */
static int visit_copy(void *value, void *ctx)
{
    *(int *)ctx = ((const val_t *)value)->id;
    return 1;
}

/* visit: count the call, report the entry stale. */
static int visit_stale(void *value, void *ctx)
{
    (void)value;
    (*(int *)ctx)++;
    return 0;
}

/* visit: count the call, accept. */
static int visit_count(void *value, void *ctx)
{
    (void)value;
    (*(int *)ctx)++;
    return 1;
}

/* The id stored under key, -1 on a miss. */
static int lru_get_id(dpop_lru_t *c, const char *key)
{
    int id = -1;
    if (!dpop_lru_get(c, key, strlen(key), visit_copy, &id))
        return -1;
    ck_assert_int_ge(id, 0);
    return id;
}

static void lru_put_new(dpop_lru_t *c, const char *key)
{
    dpop_lru_put(c, key, strlen(key), new_val());
}

/* ---- scripts: hits, misses, bound, LRU order ---- */

/* 'P' key: put a new value (ids are 0, 1, 2... in put order);
 * 'G' key: get, want = id or -1 for a miss;
 * 'S': size == want;
 * 'F': value `want` has been freed exactly once;
 * 'L': value `want` is still alive (not freed). */
typedef struct {
    char op;
    const char *key;
    int want;
} lru_op_t;

typedef struct {
    const char *name;
    size_t capacity;
    lru_op_t ops[32];
} lru_script_t;

static const lru_script_t lru_scripts[] = {
    {"hit and miss",
     4,
     {{'G', "a", -1},
      {'S', NULL, 0},
      {'P', "a", 0},
      {'G', "a", 0},
      {'G', "b", -1},
      {'G', "ab", -1}, /* longer */
      {'G', "A", -1},  /* same length, other byte */
      {'P', "b", 0},
      {'G', "b", 1},
      {'G', "a", 0},
      {'S', NULL, 2},
      {'L', NULL, 0},
      {'L', NULL, 1}}},
    {"bound and LRU order: a get keeps an entry",
     3,
     {{'P', "k0", 0},
      {'P', "k1", 0},
      {'P', "k2", 0},
      {'S', NULL, 3},
      {'G', "k0", 0}, /* touch: k1 is now least recent */
      {'P', "k3", 0},
      {'S', NULL, 3},
      {'F', NULL, 1},
      {'G', "k1", -1},
      {'G', "k2", 2},
      {'G', "k3", 3},
      {'G', "k0", 0}, /* order k0 k3 k2: k2 least recent */
      {'P', "k4", 0},
      {'F', NULL, 2},
      {'G', "k2", -1},
      {'L', NULL, 0},
      {'L', NULL, 3},
      {'L', NULL, 4},
      {'S', NULL, 3}}},
    {"no gets: oldest out first",
     2,
     {{'P', "a", 0},
      {'P', "b", 0},
      {'P', "c", 0},
      {'F', NULL, 0},
      {'L', NULL, 1},
      {'G', "a", -1},
      {'P', "d", 0},
      {'F', NULL, 1},
      {'G', "c", 2},
      {'G', "d", 3},
      {'S', NULL, 2}}},
    {"a miss touches nothing",
     2,
     {{'P', "a", 0},
      {'P', "b", 0},
      {'G', "zz", -1},
      {'G', "b", 1},
      {'P', "c", 0}, /* a is least recent */
      {'F', NULL, 0},
      {'L', NULL, 1},
      {'G', "c", 2}}},
    {"capacity one",
     1,
     {{'P', "a", 0}, {'P', "b", 0}, {'F', NULL, 0}, {'G', "a", -1}, {'G', "b", 1}, {'S', NULL, 1}}},
    {"duplicate put keeps the first value, frees the second",
     2,
     {{'P', "a", 0}, {'P', "a", 0}, {'F', NULL, 1}, {'L', NULL, 0}, {'G', "a", 0}, {'S', NULL, 1}}},
    {"many keys, bound holds",
     4,
     {{'P', "0", 0},
      {'P', "1", 0},
      {'P', "2", 0},
      {'P', "3", 0},
      {'P', "4", 0},
      {'P', "5", 0},
      {'P', "6", 0},
      {'P', "7", 0},
      {'S', NULL, 4},
      {'F', NULL, 0},
      {'F', NULL, 1},
      {'F', NULL, 2},
      {'F', NULL, 3},
      {'G', "3", -1},
      {'G', "4", 4},
      {'G', "7", 7}}},
};

START_TEST(test_lru_script)
{
    const lru_script_t *s = &lru_scripts[_i];
    dpop_lru_t *c = dpop_lru_create(s->capacity, 64, count_free);
    size_t i;
    ck_assert_ptr_nonnull(c);
    for (i = 0; i < sizeof(s->ops) / sizeof(s->ops[0]) && s->ops[i].op; i++) {
        const lru_op_t *o = &s->ops[i];
        switch (o->op) {
        case 'P':
            lru_put_new(c, o->key);
            break;
        case 'G':
            ck_assert_msg(lru_get_id(c, o->key) == o->want, "%s: op %zu: get %s", s->name, i,
                          o->key);
            break;
        case 'S':
            ck_assert_msg(dpop_lru_size(c) == (size_t)o->want, "%s: op %zu: size %zu", s->name, i,
                          dpop_lru_size(c));
            break;
        case 'F':
            ck_assert_msg(freed(o->want) == 1, "%s: op %zu: value %d freed %d times", s->name, i,
                          o->want, freed(o->want));
            break;
        case 'L':
            ck_assert_msg(freed(o->want) == 0, "%s: op %zu: value %d freed", s->name, i, o->want);
            break;
        default:
            ck_abort_msg("bad op");
        }
        ck_assert_uint_le(dpop_lru_size(c), s->capacity);
    }
    dpop_lru_free(c);
    assert_all_freed_once();
}
END_TEST

/* ---- every value freed exactly once ---- */

START_TEST(test_lru_free_once)
{
    dpop_lru_t *c = dpop_lru_create(2, 8, count_free);
    int calls = 0;
    ck_assert_ptr_nonnull(c);
    lru_put_new(c, "a"); /* 0 */
    lru_put_new(c, "b"); /* 1 */
    lru_put_new(c, "c"); /* 2: evicts 0 */
    ck_assert_int_eq(freed(0), 1);
    ck_assert_int_eq(freed(1), 0);
    lru_put_new(c, "b"); /* 3: declined duplicate */
    ck_assert_int_eq(freed(3), 1);
    ck_assert_int_eq(freed(1), 0);
    ck_assert_int_eq(lru_get_id(c, "b"), 1);
    /* stale via visit: 1 freed once, right away */
    ck_assert_int_eq(dpop_lru_get(c, "b", 1, visit_stale, &calls), 0);
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(freed(1), 1);
    ck_assert_uint_eq(dpop_lru_size(c), 1);
    /* key too long (9 > 8): 4 freed, nothing stored */
    dpop_lru_put(c, "123456789", 9, new_val());
    ck_assert_int_eq(freed(4), 1);
    ck_assert_uint_eq(dpop_lru_size(c), 1);
    /* NULL key, empty key: 5 and 6 freed */
    dpop_lru_put(c, NULL, 3, new_val());
    ck_assert_int_eq(freed(5), 1);
    dpop_lru_put(c, "x", 0, new_val());
    ck_assert_int_eq(freed(6), 1);
    ck_assert_uint_eq(dpop_lru_size(c), 1);
    /* a NULL value is nothing to store */
    dpop_lru_put(c, "n", 1, NULL);
    ck_assert_uint_eq(dpop_lru_size(c), 1);
    ck_assert_int_eq(lru_get_id(c, "n"), -1);
    /* 2 is still cached; dpop_lru_free frees it */
    ck_assert_int_eq(freed(2), 0);
    dpop_lru_free(c);
    ck_assert_int_eq(freed(2), 1);
    ck_assert_int_eq(made_count(), 7);
    assert_all_freed_once();
}
END_TEST

/* ---- visit returning 0 drops the entry ---- */

START_TEST(test_lru_stale)
{
    dpop_lru_t *c = dpop_lru_create(2, 8, count_free);
    int calls = 0;
    lru_put_new(c, "a"); /* 0 */
    lru_put_new(c, "b"); /* 1 */
    ck_assert_uint_eq(dpop_lru_size(c), 2);
    ck_assert_int_eq(dpop_lru_get(c, "a", 1, visit_stale, &calls), 0);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(dpop_lru_size(c), 1);
    ck_assert_int_eq(freed(0), 1);
    /* gone: the next get misses without calling visit */
    calls = 0;
    ck_assert_int_eq(dpop_lru_get(c, "a", 1, visit_count, &calls), 0);
    ck_assert_int_eq(calls, 0);
    /* the other entry is untouched */
    ck_assert_int_eq(lru_get_id(c, "b"), 1);
    /* the freed slot takes a new entry without evicting b */
    lru_put_new(c, "c"); /* 2 */
    ck_assert_int_eq(freed(1), 0);
    ck_assert_uint_eq(dpop_lru_size(c), 2);
    /* the dropped key can be stored again */
    lru_put_new(c, "a"); /* 3: evicts b (least recent) */
    ck_assert_int_eq(lru_get_id(c, "a"), 3);
    ck_assert_int_eq(freed(1), 1);
    /* a NULL visit accepts every hit */
    ck_assert_int_eq(dpop_lru_get(c, "c", 1, NULL, NULL), 1);
    /* a stale drop of the most recent entry keeps the list sound */
    calls = 0;
    ck_assert_int_eq(dpop_lru_get(c, "c", 1, visit_stale, &calls), 0);
    ck_assert_int_eq(dpop_lru_get(c, "a", 1, visit_stale, &calls), 0);
    ck_assert_int_eq(calls, 2);
    ck_assert_uint_eq(dpop_lru_size(c), 0);
    lru_put_new(c, "d"); /* 4 */
    ck_assert_int_eq(lru_get_id(c, "d"), 4);
    dpop_lru_free(c);
    assert_all_freed_once();
}
END_TEST

/* ---- key limits, binary keys, NULL and zero-length arguments ---- */

START_TEST(test_lru_limits)
{
    dpop_lru_t *c = dpop_lru_create(4, 8, count_free), *z;
    int calls = 0;
    ck_assert_ptr_nonnull(c);
    /* exactly max_key bytes: cached; one more: declined */
    dpop_lru_put(c, "12345678", 8, new_val()); /* 0 */
    ck_assert_int_eq(lru_get_id(c, "12345678"), 0);
    dpop_lru_put(c, "123456789", 9, new_val()); /* 1 */
    ck_assert_int_eq(freed(1), 1);
    ck_assert_uint_eq(dpop_lru_size(c), 1);
    ck_assert_int_eq(dpop_lru_get(c, "123456789", 9, visit_count, &calls), 0);
    /* a prefix of a stored key is another key */
    ck_assert_int_eq(dpop_lru_get(c, "12345678", 7, visit_count, &calls), 0);
    ck_assert_int_eq(calls, 0);
    /* binary keys with NUL bytes compare by length and every byte */
    dpop_lru_put(c, "a\0b", 3, new_val()); /* 2 */
    dpop_lru_put(c, "a\0c", 3, new_val()); /* 3 */
    ck_assert_uint_eq(dpop_lru_size(c), 3);
    {
        int id = -1;
        ck_assert_int_eq(dpop_lru_get(c, "a\0b", 3, visit_copy, &id), 1);
        ck_assert_int_eq(id, 2);
        ck_assert_int_eq(dpop_lru_get(c, "a\0c", 3, visit_copy, &id), 1);
        ck_assert_int_eq(id, 3);
        ck_assert_int_eq(dpop_lru_get(c, "a", 1, visit_copy, &id), 0);
    }
    /* NULL and empty keys never hit and never call visit */
    ck_assert_int_eq(dpop_lru_get(c, NULL, 3, visit_count, &calls), 0);
    ck_assert_int_eq(dpop_lru_get(c, "a", 0, visit_count, &calls), 0);
    ck_assert_int_eq(calls, 0);
    /* NULL cache */
    ck_assert_int_eq(dpop_lru_get(NULL, "a", 1, visit_count, &calls), 0);
    ck_assert_int_eq(calls, 0);
    ck_assert_uint_eq(dpop_lru_size(NULL), 0);
    dpop_lru_free(NULL);
    dpop_lru_free(c);
    /* max_key 0: nothing is ever cached, every value freed */
    z = dpop_lru_create(4, 0, count_free);
    ck_assert_ptr_nonnull(z);
    dpop_lru_put(z, "a", 1, new_val()); /* 4 */
    ck_assert_int_eq(freed(4), 1);
    ck_assert_uint_eq(dpop_lru_size(z), 0);
    dpop_lru_free(z);
    assert_all_freed_once();
    /* bad create arguments */
    ck_assert_ptr_null(dpop_lru_create(0, 8, count_free));
    ck_assert_ptr_null(dpop_lru_create(4, 8, NULL));
    ck_assert_ptr_null(dpop_lru_create(SIZE_MAX, 8, count_free));
    ck_assert_ptr_null(dpop_lru_create(SIZE_MAX / 2, 8, count_free));
}
END_TEST

/* ---- threads ---- */

#define T_THREADS 4
#define T_OPS 20000
#define T_KEYS 48
#define T_CAP 16

static atomic_int g_bad; /* wrong answers seen by worker threads */

static int bad_count(void)
{
    return atomic_load(&g_bad);
}

typedef struct {
    dpop_lru_t *c;
    unsigned seed;
} lru_worker_t;

/* visit: the value must be the one stored under the looked-up key. */
static int visit_check_tag(void *value, void *ctx)
{
    if (((const val_t *)value)->tag != *(const int *)ctx)
        atomic_fetch_add(&g_bad, 1);
    return 1;
}

/* visit: stale every time (the thread test drops entries too). */
static int visit_drop(void *value, void *ctx)
{
    (void)value;
    (void)ctx;
    return 0;
}

static void *lru_worker(void *arg)
{
    lru_worker_t *w = arg;
    int i;
    for (i = 0; i < T_OPS; i++) {
        unsigned r = (unsigned)rand_r(&w->seed);
        int k = (int)(r % T_KEYS);
        char key[16];
        size_t n = (size_t)snprintf(key, sizeof(key), "key-%d", k);
        switch ((r >> 12) % 8) {
        case 0:
        case 1:
        case 2:
            dpop_lru_put(w->c, key, n, make_val(k));
            break;
        case 3:
            dpop_lru_get(w->c, key, n, visit_drop, NULL);
            break;
        default:
            dpop_lru_get(w->c, key, n, visit_check_tag, &k);
            break;
        }
        if (dpop_lru_size(w->c) > T_CAP)
            atomic_fetch_add(&g_bad, 1);
    }
    return NULL;
}

START_TEST(test_lru_threads)
{
    dpop_lru_t *c = dpop_lru_create(T_CAP, 32, count_free);
    pthread_t t[T_THREADS];
    lru_worker_t w[T_THREADS];
    int i;
    ck_assert_ptr_nonnull(c);
    atomic_store(&g_bad, 0);
    for (i = 0; i < T_THREADS; i++) {
        w[i].c = c;
        w[i].seed = 0x9e3779b9u * (unsigned)(i + 1);
        ck_assert_int_eq(pthread_create(&t[i], NULL, lru_worker, &w[i]), 0);
    }
    for (i = 0; i < T_THREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(bad_count(), 0);
    ck_assert_uint_le(dpop_lru_size(c), T_CAP);
    ck_assert_int_gt(made_count(), T_THREADS * T_OPS / 8);
    dpop_lru_free(c);
    assert_all_freed_once();
}
END_TEST

/* ==================================================================== */
/* dpop_tokencache                                                      */
/* ==================================================================== */

#define NOW 1700000000
#define ISS "https://as.example.com"
#define AUD "https://api.example.com"
#define JKT "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

static EVP_PKEY *g_as1;  /* AS key, kid as-1 (revoked in g_rotated) */
static EVP_PKEY *g_as2;  /* AS key, kid as-2 */
static EVP_PKEY *g_evil; /* in no set */
static json_t *g_as1_pub, *g_as2_pub;
static dpop_jwks_t *g_set;     /* as-1 and as-2 */
static dpop_jwks_t *g_set_b;   /* the same JSON, loaded a second time */
static dpop_jwks_t *g_rotated; /* as-2 only: as-1 removed */

/* Proof keys for the key cache tests. */
static EVP_PKEY *g_pk_es, *g_pk_ed;
static json_t *g_pk_es_pub, *g_pk_ed_pub;

static void make_key(dpop_alg_t alg, EVP_PKEY **key, json_t **pub)
{
    json_t *priv = NULL;
    char err[256] = "";
    if (dpop_jwk_generate(alg, &priv) != DPOP_OK ||
        dpop_jwk_import_private(priv, key, pub, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "cannot make a %s key: %s\n", dpop_alg_name(alg), err);
        exit(2);
    }
    json_decref(priv);
}

/* A key set from public JWKs (each gets its kid). */
static dpop_jwks_t *load_set(json_t *k1, const char *kid1, json_t *k2, const char *kid2)
{
    json_t *set = json_pack("{s:[]}", "keys");
    json_t *arr = json_object_get(set, "keys");
    dpop_jwks_t *s = NULL;
    char *js, err[256] = "";
    json_t *c1 = json_deep_copy(k1);
    json_object_set_new(c1, "kid", json_string(kid1));
    json_array_append_new(arr, c1);
    if (k2) {
        json_t *c2 = json_deep_copy(k2);
        json_object_set_new(c2, "kid", json_string(kid2));
        json_array_append_new(arr, c2);
    }
    js = json_dumps(set, JSON_COMPACT);
    if (!js || dpop_jwks_parse(js, strlen(js), &s, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "cannot load a JWKS: %s\n", err);
        exit(2);
    }
    free(js);
    json_decref(set);
    return s;
}

static void make_fixtures(void)
{
    make_key(DPOP_ALG_ES256, &g_as1, &g_as1_pub);
    make_key(DPOP_ALG_ES256, &g_as2, &g_as2_pub);
    make_key(DPOP_ALG_ES256, &g_evil, NULL);
    make_key(DPOP_ALG_ES256, &g_pk_es, &g_pk_es_pub);
    make_key(DPOP_ALG_EDDSA, &g_pk_ed, &g_pk_ed_pub);
    g_set = load_set(g_as1_pub, "as-1", g_as2_pub, "as-2");
    g_set_b = load_set(g_as1_pub, "as-1", g_as2_pub, "as-2");
    g_rotated = load_set(g_as2_pub, "as-2", NULL, NULL);
}

static void free_fixtures(void)
{
    dpop_jwks_free(g_set);
    dpop_jwks_free(g_set_b);
    dpop_jwks_free(g_rotated);
    EVP_PKEY_free(g_as1);
    EVP_PKEY_free(g_as2);
    EVP_PKEY_free(g_evil);
    EVP_PKEY_free(g_pk_es);
    EVP_PKEY_free(g_pk_ed);
    json_decref(g_as1_pub);
    json_decref(g_as2_pub);
    json_decref(g_pk_es_pub);
    json_decref(g_pk_ed_pub);
}

/* exp NOW+300, nbf and iat NOW-10, bound to JKT. */
static json_t *base_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:{s:s}}", "iss", ISS, "sub",
                     "alice", "aud", AUD, "client_id", "billing-agent", "scope", "read write",
                     "exp", (json_int_t)(NOW + 300), "nbf", (json_int_t)(NOW - 10), "iat",
                     (json_int_t)(NOW - 10), "cnf", "jkt", JKT);
}

/* A token signed by key with kid; claims_patch over base_claims(), and a
 * hdr_patch over {"typ":"at+jwt","alg":"ES256","kid":kid} when given.
 * Caller frees. */
static char *mint2(EVP_PKEY *key, const char *kid, const char *hdr_patch, const char *claims_patch)
{
    json_t *cl = base_claims();
    char *out = NULL;
    apply_patch(cl, claims_patch);
    if (!hdr_patch) {
        ck_assert_int_eq(dpop_token_create(key, DPOP_ALG_ES256, kid, cl, &out), DPOP_OK);
    }
    else {
        json_t *hdr = json_pack("{s:s, s:s, s:s}", "typ", "at+jwt", "alg", "ES256", "kid", kid);
        apply_patch(hdr, hdr_patch);
        ck_assert_int_eq(dpop_jws_sign(hdr, cl, DPOP_ALG_ES256, key, &out), DPOP_OK);
        json_decref(hdr);
    }
    json_decref(cl);
    ck_assert_ptr_nonnull(out);
    return out;
}

static char *mint(const char *claims_patch)
{
    return mint2(g_as1, "as-1", NULL, claims_patch);
}

static void base_params(dpop_token_params_t *p, const dpop_jwks_t *set)
{
    memset(p, 0, sizeof(*p));
    p->jwks = set;
    p->issuer = ISS;
    p->audience = AUD;
    p->now = NOW;
    p->skew = 5;
}

/* One cached verification; the result is discarded. */
static int tc_verify(dpop_tokencache_t *c, const char *tok, const dpop_token_params_t *p,
                     dpop_failure_t *f, int *hit)
{
    dpop_token_result_t r;
    int rc = dpop_token_verify_cached(c, tok, strlen(tok), NULL, p, &r, f, hit);
    dpop_token_result_clear(&r);
    return rc;
}

static void assert_token_invalid(int rc, const dpop_failure_t *f, const char *detail,
                                 const char *what)
{
    ck_assert_msg(rc == DPOP_ERR, "%s: accepted", what);
    ck_assert_int_eq(f->code, DPOP_REASON_TOKEN_INVALID);
    ck_assert_str_eq(f->reason, "token_invalid");
    ck_assert_str_eq(f->error, "invalid_token");
    if (detail)
        ck_assert_msg(strstr(f->detail, detail) != NULL, "%s: detail '%s' lacks '%s'", what,
                      f->detail, detail);
}

static void assert_same_result(const dpop_token_result_t *a, const dpop_token_result_t *b)
{
    ck_assert_str_eq(a->sub, b->sub);
    ck_assert_str_eq(a->client_id, b->client_id);
    ck_assert_str_eq(a->iss, b->iss);
    ck_assert_str_eq(a->jkt, b->jkt);
    ck_assert_str_eq(a->kid, b->kid);
    ck_assert_str_eq(a->scope, b->scope);
    ck_assert_int_eq(a->exp, b->exp);
    ck_assert_int_eq(a->has_nbf, b->has_nbf);
    ck_assert_int_eq(a->nbf, b->nbf);
    ck_assert_int_eq(a->iat, b->iat);
    ck_assert_int_eq(a->alg, b->alg);
    ck_assert_int_eq(a->cnf_bound, b->cnf_bound);
}

/* A certificate-bound token (cnf.x5t#S256, no jkt) answered from the cache
 * is still sender-constrained: the Bearer path refuses it (issue 15). */
START_TEST(test_tc_hit_keeps_cnf_binding)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t p;
    dpop_token_result_t r1, r2;
    dpop_failure_t f;
    char *tok = mint("{\"cnf\":{\"x5t#S256\":\"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2\"}}");
    int hit = -1;
    ck_assert_ptr_nonnull(c);
    base_params(&p, g_set);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r1, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r2, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 1);
    ck_assert_ptr_null(r2.jkt);
    ck_assert_int_eq(r1.cnf_bound, 1);
    ck_assert_int_eq(r2.cnf_bound, 1);
    dpop_token_result_clear(&r1);
    dpop_token_result_clear(&r2);
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

/* ---- a hit answers what the verification concluded ---- */

START_TEST(test_tc_hit)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t p;
    dpop_token_result_t r1, r2, direct;
    dpop_failure_t f;
    char *tok = mint(NULL);
    int hit = -1;

    ck_assert_ptr_nonnull(c);
    base_params(&p, g_set);
    ck_assert_uint_eq(dpop_tokencache_size(c), 0);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r1, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    /* a failure record left over from earlier is cleared on a hit too */
    dpop_fail(&f, DPOP_REASON_BAD_CLAIM, "left over");
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r2, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 1);
    ck_assert_int_eq(f.code, DPOP_REASON_NONE);
    ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    ck_assert_str_eq(r2.sub, "alice");
    ck_assert_str_eq(r2.client_id, "billing-agent");
    ck_assert_str_eq(r2.jkt, JKT);
    ck_assert_str_eq(r2.kid, "as-1");
    ck_assert_int_eq(r2.exp, NOW + 300);
    ck_assert_int_eq(r2.nbf, NOW - 10);
    ck_assert_int_eq(r2.has_nbf, 1);
    assert_same_result(&r1, &r2);
    /* and what dpop_token_verify itself says */
    ck_assert_int_eq(dpop_token_verify(tok, strlen(tok), &p, &direct, &f), DPOP_OK);
    assert_same_result(&direct, &r2);
    /* the hit's strings are the caller's own copies */
    ck_assert_ptr_ne(r1.sub, r2.sub);
    dpop_token_result_clear(&r1);
    dpop_tokencache_free(c);
    ck_assert_str_eq(r2.sub, "alice");
    ck_assert_str_eq(r2.jkt, JKT);
    dpop_token_result_clear(&r2);
    dpop_token_result_clear(&direct);
    /* hit may be NULL */
    c = dpop_tokencache_create(2);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r1, &f, NULL),
                     DPOP_OK);
    dpop_token_result_clear(&r1);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r1, &f, NULL),
                     DPOP_OK);
    ck_assert_str_eq(r1.sub, "alice");
    dpop_token_result_clear(&r1);
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

/* ---- exp and nbf rechecked with each request's clock and skew ---- */

typedef struct {
    const char *name;
    const char *claims;          /* patch over base_claims (exp NOW+300, nbf NOW-10) */
    int64_t warm_now, warm_skew; /* first verification: passes, cached */
    int64_t now, skew;           /* the later request */
    int want_ok;                 /* ok: answered from the cache */
    const char *detail;          /* failure: detail fragment */
} time_case_t;

static const time_case_t time_cases[] = {
    {"later, before exp", NULL, NOW, 5, NOW + 200, 5, 1, NULL},
    {"last second inside exp + skew", NULL, NOW, 5, NOW + 304, 5, 1, NULL},
    {"at exp + skew", NULL, NOW, 5, NOW + 305, 5, 0, "expired"},
    {"long after exp", NULL, NOW, 5, NOW + 100000, 5, 0, "expired"},
    {"at exp with skew 0", NULL, NOW, 5, NOW + 300, 0, 0, "expired"},
    {"one second before exp with skew 0", NULL, NOW, 5, NOW + 299, 0, 1, NULL},
    {"negative skew counts as 0", NULL, NOW, 5, NOW + 300, -30, 0, "expired"},
    {"after exp but inside a larger skew", NULL, NOW, 5, NOW + 320, 60, 1, NULL},
    {"cached at a large skew, expired at a small one", "{\"exp\":1699999990}", NOW, 60, NOW, 5, 0,
     "expired"},
    {"nbf ahead: cached at a large skew, not valid at a small one", "{\"nbf\":1700000100}", NOW,
     200, NOW, 5, 0, "not valid"},
    {"nbf at now + skew", "{\"nbf\":1700000100}", NOW, 200, NOW + 95, 5, 1, NULL},
    {"nbf one second past now + skew", "{\"nbf\":1700000100}", NOW, 200, NOW + 94, 5, 0,
     "not valid"},
    {"clock set back before nbf", NULL, NOW, 5, NOW - 100, 5, 0, "not valid"},
    {"clock set back, no nbf", "{\"nbf\":null}", NOW, 5, NOW - 100, 5, 1, NULL},
};

START_TEST(test_tc_time)
{
    const time_case_t *t = &time_cases[_i];
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t warm, later;
    dpop_failure_t f;
    char *tok = mint(t->claims);
    int hit = -1, rc;

    base_params(&warm, g_set);
    warm.now = t->warm_now;
    warm.skew = t->warm_skew;
    later = warm;
    later.now = t->now;
    later.skew = t->skew;
    rc = tc_verify(c, tok, &warm, &f, &hit);
    ck_assert_msg(rc == DPOP_OK, "%s: warm-up failed: %s", t->name, f.detail);
    ck_assert_int_eq(hit, 0);
    ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    /* dpop_token_verify's own verdict for the later request */
    ck_assert_msg((dpop_token_verify(tok, strlen(tok), &later, NULL, NULL) == DPOP_OK) ==
                      t->want_ok,
                  "%s: table disagrees with dpop_token_verify", t->name);
    rc = tc_verify(c, tok, &later, &f, &hit);
    if (t->want_ok) {
        ck_assert_msg(rc == DPOP_OK, "%s: %s", t->name, f.detail);
        ck_assert_msg(hit == 1, "%s: not from the cache", t->name);
        ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    }
    else {
        assert_token_invalid(rc, &f, t->detail, t->name);
        ck_assert_int_eq(hit, 0);
        /* the stale entry is dropped, and the failure is not cached */
        ck_assert_msg(dpop_tokencache_size(c) == 0, "%s: stale entry kept", t->name);
        rc = tc_verify(c, tok, &later, &f, &hit);
        assert_token_invalid(rc, &f, t->detail, t->name);
        ck_assert_int_eq(hit, 0);
        ck_assert_uint_eq(dpop_tokencache_size(c), 0);
        /* the warm-up clock verifies afresh (no entry survived) */
        ck_assert_int_eq(tc_verify(c, tok, &warm, &f, &hit), DPOP_OK);
        ck_assert_int_eq(hit, 0);
    }
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

/* ---- issuer, audience, alg mask and size limit are part of the verdict ---- */

typedef struct {
    const char *issuer;   /* "-": not checked (NULL) */
    const char *audience; /* "-": not checked (NULL) */
    dpop_alg_mask_t algs;
    size_t max_size;
} pspec_t;

typedef struct {
    const char *name;
    const char *claims; /* patch over base_claims */
    pspec_t warm;       /* first verification: passes, cached */
    pspec_t later;
    const char *want; /* "hit", "miss" (verified afresh: ok), else a failure detail fragment */
} param_case_t;

#define ES256_ONLY DPOP_ALG_BIT(DPOP_ALG_ES256)
#define RS256_ONLY DPOP_ALG_BIT(DPOP_ALG_RS256)
#define SAME                                                                                       \
    {                                                                                              \
        ISS, AUD, 0, 0                                                                             \
    }

static const param_case_t param_cases[] = {
    {"same parameters", NULL, SAME, SAME, "hit"},
    {"default mask given explicitly", NULL, SAME, {ISS, AUD, DPOP_ALG_MASK_DEFAULT, 0}, "hit"},
    {"another issuer", NULL, SAME, {"https://evil.example", AUD, 0, 0}, "iss"},
    {"another audience", NULL, SAME, {ISS, "https://other.example", 0, 0}, "aud"},
    {"issuer checked after unchecked",
     "{\"iss\":\"https://third.example\"}",
     {"-", AUD, 0, 0},
     SAME,
     "iss"},
    {"audience checked after unchecked",
     "{\"aud\":\"https://third.example\"}",
     {ISS, "-", 0, 0},
     SAME,
     "aud"},
    {"unchecked issuer is not the empty issuer",
     "{\"iss\":null}",
     {"-", AUD, 0, 0},
     {"", AUD, 0, 0},
     "iss"},
    {"unchecked audience is not the empty audience",
     "{\"aud\":null}",
     {ISS, "-", 0, 0},
     {ISS, "", 0, 0},
     "aud"},
    {"issuer/audience boundary moved",
     "{\"iss\":\"ab\",\"aud\":[\"c\",\"bc\"]}",
     {"ab", "c", 0, 0},
     {"a", "bc", 0, 0},
     "iss"},
    {"issuer not checked any more", NULL, SAME, {"-", AUD, 0, 0}, "miss"},
    {"alg mask without ES256", NULL, SAME, {ISS, AUD, RS256_ONLY, 0}, "signature"},
    {"alg mask narrowed to ES256", NULL, SAME, {ISS, AUD, ES256_ONLY, 0}, "miss"},
    {"alg mask widened", NULL, {ISS, AUD, ES256_ONLY, 0}, SAME, "miss"},
    /* dpop_tokencache.h: "same parameters, result and failure contract" as
     * dpop_token_verify, which refuses a token over max_size. */
    {"smaller token size limit", NULL, SAME, {ISS, AUD, 0, 64}, "too_large"},
};

static void spec_params(const pspec_t *s, dpop_token_params_t *p)
{
    base_params(p, g_set);
    p->issuer = strcmp(s->issuer, "-") == 0 ? NULL : s->issuer;
    p->audience = strcmp(s->audience, "-") == 0 ? NULL : s->audience;
    p->algs = s->algs;
    p->max_size = s->max_size;
}

START_TEST(test_tc_params)
{
    const param_case_t *t = &param_cases[_i];
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t warm, later;
    dpop_failure_t f;
    char *tok = mint(t->claims);
    int want_hit = strcmp(t->want, "hit") == 0;
    int want_ok = want_hit || strcmp(t->want, "miss") == 0;
    int hit = -1, rc;

    spec_params(&t->warm, &warm);
    spec_params(&t->later, &later);
    rc = tc_verify(c, tok, &warm, &f, &hit);
    ck_assert_msg(rc == DPOP_OK, "%s: warm-up failed: %s", t->name, f.detail);
    ck_assert_int_eq(hit, 0);
    ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    ck_assert_msg((dpop_token_verify(tok, strlen(tok), &later, NULL, NULL) == DPOP_OK) == want_ok,
                  "%s: table disagrees with dpop_token_verify", t->name);
    rc = tc_verify(c, tok, &later, &f, &hit);
    if (want_ok) {
        ck_assert_msg(rc == DPOP_OK, "%s: %s", t->name, f.detail);
        ck_assert_msg(hit == want_hit, "%s: hit %d", t->name, hit);
        ck_assert_uint_eq(dpop_tokencache_size(c), want_hit ? 1 : 2);
    }
    else {
        ck_assert_msg(hit == 0, "%s: answered from the cache", t->name);
        assert_token_invalid(rc, &f, t->want, t->name);
        /* not cached: the same request fails again in full */
        ck_assert_uint_eq(dpop_tokencache_size(c), 1);
        rc = tc_verify(c, tok, &later, &f, &hit);
        ck_assert_int_eq(hit, 0);
        assert_token_invalid(rc, &f, t->want, t->name);
    }
    /* the first entry still answers for its own parameters */
    ck_assert_int_eq(tc_verify(c, tok, &warm, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

/* ---- key sets: generations, loaded twice, rotated, reloaded ---- */

START_TEST(test_tc_jwks_generation)
{
    dpop_jwks_t *again;
    uint64_t g1 = dpop_jwks_generation(g_set), g2 = dpop_jwks_generation(g_set_b);
    ck_assert_uint_ne(g1, 0);
    ck_assert_uint_ne(g2, 0);
    ck_assert_uint_ne(g1, g2);
    ck_assert_uint_ne(dpop_jwks_generation(g_rotated), g1);
    ck_assert_uint_eq(dpop_jwks_generation(NULL), 0);
    /* stable for one set */
    ck_assert_uint_eq(dpop_jwks_generation(g_set), g1);
    /* a set loaded later never reuses an id */
    again = load_set(g_as1_pub, "as-1", g_as2_pub, "as-2");
    ck_assert_uint_ne(dpop_jwks_generation(again), g1);
    ck_assert_uint_ne(dpop_jwks_generation(again), g2);
    ck_assert_uint_ne(dpop_jwks_generation(again), dpop_jwks_generation(g_rotated));
    dpop_jwks_free(again);
}
END_TEST

START_TEST(test_tc_same_content_two_sets)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t pa, pb;
    dpop_failure_t f;
    char *tok = mint(NULL);
    int hit = -1;
    base_params(&pa, g_set);
    base_params(&pb, g_set_b);
    ck_assert_int_eq(tc_verify(c, tok, &pa, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(tc_verify(c, tok, &pa, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    /* identical content, another load: verified afresh */
    ck_assert_int_eq(tc_verify(c, tok, &pb, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_uint_eq(dpop_tokencache_size(c), 2);
    ck_assert_int_eq(tc_verify(c, tok, &pb, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

START_TEST(test_tc_rotated_set)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t old_p, new_p;
    dpop_failure_t f;
    char *tok1 = mint(NULL), *tok2 = mint2(g_as2, "as-2", NULL, NULL);
    int hit = -1;
    base_params(&old_p, g_set);
    base_params(&new_p, g_rotated);
    ck_assert_int_eq(tc_verify(c, tok1, &old_p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(tc_verify(c, tok1, &old_p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    /* as-1 is gone from the new set: rejected although cached */
    assert_token_invalid(tc_verify(c, tok1, &new_p, &f, &hit), &f, "signature", "revoked key");
    ck_assert_int_eq(hit, 0);
    ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    assert_token_invalid(tc_verify(c, tok1, &new_p, &f, &hit), &f, "signature", "revoked key");
    ck_assert_int_eq(hit, 0);
    /* a token of the remaining key passes with the new set */
    ck_assert_int_eq(tc_verify(c, tok2, &new_p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(tc_verify(c, tok2, &new_p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    dpop_tokencache_free(c);
    free(tok1);
    free(tok2);
}
END_TEST

/* The old set freed and the new one loaded in its place (possibly at the
 * same address, as a reload does): the cached verdict must not carry over. */
START_TEST(test_tc_reloaded_in_place)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_jwks_t *set = load_set(g_as1_pub, "as-1", NULL, NULL);
    dpop_token_params_t p;
    dpop_failure_t f;
    char *tok = mint(NULL);
    int i, hit = -1;
    base_params(&p, set);
    ck_assert_int_eq(tc_verify(c, tok, &p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(tc_verify(c, tok, &p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    for (i = 0; i < 8; i++) {
        dpop_jwks_free(set);
        set = load_set(g_as2_pub, "as-2", NULL, NULL);
        base_params(&p, set);
        assert_token_invalid(tc_verify(c, tok, &p, &f, &hit), &f, "signature", "reloaded set");
        ck_assert_int_eq(hit, 0);
    }
    dpop_jwks_free(set);
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

/* ---- a tampered token is never answered from the cache ---- */

START_TEST(test_tc_tampered)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t p;
    dpop_failure_t f;
    char *tok = mint(NULL), *bad;
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    size_t n = strlen(tok);
    /* offsets of one character to flip: signature middle, signature first,
     * payload, header */
    size_t flips[4];
    int i, hit = -1;
    flips[0] = (size_t)(d2 - tok) + (n - (size_t)(d2 - tok)) / 2;
    flips[1] = (size_t)(d2 - tok) + 1;
    flips[2] = (size_t)(d1 - tok) + 5;
    flips[3] = 3;
    base_params(&p, g_set);
    ck_assert_int_eq(tc_verify(c, tok, &p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(tc_verify(c, tok, &p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    for (i = 0; i < 4; i++) {
        bad = strdup(tok);
        bad[flips[i]] = bad[flips[i]] == 'A' ? 'B' : 'A';
        assert_token_invalid(tc_verify(c, bad, &p, &f, &hit), &f, NULL, "flipped character");
        ck_assert_int_eq(hit, 0);
        free(bad);
    }
    /* one character short, one longer, the genuine bytes with a short length */
    bad = strndup(tok, n - 1);
    assert_token_invalid(tc_verify(c, bad, &p, &f, &hit), &f, NULL, "truncated");
    ck_assert_int_eq(hit, 0);
    free(bad);
    ck_assert_int_ne(asprintf(&bad, "%sA", tok), -1);
    assert_token_invalid(tc_verify(c, bad, &p, &f, &hit), &f, NULL, "extended");
    ck_assert_int_eq(hit, 0);
    free(bad);
    {
        dpop_token_result_t r;
        ck_assert_int_eq(dpop_token_verify_cached(c, tok, n - 1, NULL, &p, &r, &f, &hit), DPOP_ERR);
        ck_assert_int_eq(hit, 0);
        dpop_token_result_clear(&r);
    }
    /* a token of a foreign key with the genuine claims */
    bad = mint2(g_evil, "as-1", NULL, NULL);
    assert_token_invalid(tc_verify(c, bad, &p, &f, &hit), &f, "signature", "foreign key");
    ck_assert_int_eq(hit, 0);
    free(bad);
    ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    /* the genuine token still hits */
    ck_assert_int_eq(tc_verify(c, tok, &p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 1);
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

/* ---- failures are never cached ---- */

typedef struct {
    const char *name;
    const char *hdr;    /* header patch */
    const char *claims; /* claims patch */
    int foreign;        /* signed by g_evil */
    const char *detail;
} fail_case_t;

static const fail_case_t fail_cases[] = {
    {"foreign key", NULL, NULL, 1, "signature"},
    {"unknown kid", "{\"kid\":\"as-9\"}", NULL, 0, "signature"},
    {"wrong issuer", NULL, "{\"iss\":\"https://evil.example\"}", 0, "iss"},
    {"wrong audience", NULL, "{\"aud\":\"https://other.example\"}", 0, "aud"},
    {"expired", NULL, "{\"exp\":1699999000}", 0, "expired"},
    {"not yet valid", NULL, "{\"nbf\":1700001000}", 0, "not valid"},
    {"no exp", NULL, "{\"exp\":null}", 0, "exp"},
    {"a proof is no token", "{\"typ\":\"dpop+jwt\"}", NULL, 0, "typ"},
    {"bad cnf.jkt", NULL, "{\"cnf\":{\"jkt\":\"short\"}}", 0, "cnf.jkt"},
};

START_TEST(test_tc_failure_not_cached)
{
    const fail_case_t *t = &fail_cases[_i];
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t p;
    dpop_failure_t f;
    char *tok = mint2(t->foreign ? g_evil : g_as1, "as-1", t->hdr, t->claims);
    int i, hit = -1;
    base_params(&p, g_set);
    for (i = 0; i < 3; i++) {
        assert_token_invalid(tc_verify(c, tok, &p, &f, &hit), &f, t->detail, t->name);
        ck_assert_msg(hit == 0, "%s: answered from the cache", t->name);
        ck_assert_msg(dpop_tokencache_size(c) == 0, "%s: failure cached", t->name);
    }
    dpop_tokencache_free(c);
    free(tok);
}
END_TEST

/* ---- capacity, no cache, NULL arguments, ath ---- */

START_TEST(test_tc_capacity)
{
    dpop_tokencache_t *c = dpop_tokencache_create(4);
    dpop_token_params_t p;
    dpop_failure_t f;
    char *toks[10], patch[64];
    int i, hit = -1;
    base_params(&p, g_set);
    for (i = 0; i < 10; i++) {
        snprintf(patch, sizeof(patch), "{\"sub\":\"user-%d\"}", i);
        toks[i] = mint(patch);
        ck_assert_int_eq(tc_verify(c, toks[i], &p, &f, &hit), DPOP_OK);
        ck_assert_int_eq(hit, 0);
        ck_assert_uint_eq(dpop_tokencache_size(c), i < 4 ? (size_t)i + 1 : 4);
    }
    /* the newest four hit, the oldest was evicted but still verifies */
    for (i = 6; i < 10; i++) {
        ck_assert_int_eq(tc_verify(c, toks[i], &p, &f, &hit), DPOP_OK);
        ck_assert_int_eq(hit, 1);
    }
    ck_assert_int_eq(tc_verify(c, toks[0], &p, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_uint_eq(dpop_tokencache_size(c), 4);
    for (i = 0; i < 10; i++)
        free(toks[i]);
    dpop_tokencache_free(c);
    /* capacity 0 is the default, not "nothing" */
    c = dpop_tokencache_create(0);
    ck_assert_ptr_nonnull(c);
    dpop_tokencache_free(c);
}
END_TEST

START_TEST(test_tc_no_cache_and_null_args)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char *tok = mint(NULL), *bad = mint2(g_evil, "as-1", NULL, NULL);
    int hit = -1;
    base_params(&p, g_set);
    /* c NULL: plain verification, never a hit */
    ck_assert_int_eq(dpop_token_verify_cached(NULL, tok, strlen(tok), NULL, &p, &r, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_str_eq(r.sub, "alice");
    dpop_token_result_clear(&r);
    ck_assert_int_eq(dpop_token_verify_cached(NULL, tok, strlen(tok), NULL, &p, &r, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 0);
    dpop_token_result_clear(&r);
    assert_token_invalid(dpop_token_verify_cached(NULL, bad, strlen(bad), NULL, &p, &r, &f, &hit),
                         &f, "signature", "no cache");
    dpop_token_result_clear(&r);
    ck_assert_uint_eq(dpop_tokencache_size(NULL), 0);
    dpop_tokencache_free(NULL);
    /* r NULL: verified, nothing to cache from */
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, NULL, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 0);
    /* no token, no params, no key set */
    ck_assert_int_eq(dpop_token_verify_cached(c, NULL, 0, NULL, &p, &r, &f, &hit), DPOP_ERR);
    ck_assert_str_eq(f.reason, "missing_token");
    ck_assert_int_eq(hit, 0);
    dpop_token_result_clear(&r);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, 0, NULL, &p, &r, &f, &hit), DPOP_ERR);
    ck_assert_str_eq(f.reason, "missing_token");
    dpop_token_result_clear(&r);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, NULL, &r, &f, &hit),
                     DPOP_ERR);
    ck_assert_str_eq(f.reason, "token_invalid");
    dpop_token_result_clear(&r);
    p.jwks = NULL;
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r, &f, &hit),
                     DPOP_ERR);
    ck_assert_str_eq(f.reason, "token_invalid");
    ck_assert_int_eq(hit, 0);
    dpop_token_result_clear(&r);
    dpop_tokencache_free(c);
    free(tok);
    free(bad);
}
END_TEST

START_TEST(test_tc_ath)
{
    dpop_tokencache_t *c = dpop_tokencache_create(0);
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char *tok = mint(NULL), *other = mint("{\"sub\":\"bob\"}");
    char ath[DPOP_JKT_LEN + 1];
    int hit = -1;
    base_params(&p, g_set);
    ck_assert_int_eq(dpop_ath_compute(tok, strlen(tok), ath), DPOP_OK);
    /* given, then computed: the same entry */
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), ath, &p, &r, &f, &hit), DPOP_OK);
    ck_assert_int_eq(hit, 0);
    dpop_token_result_clear(&r);
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), NULL, &p, &r, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 1);
    ck_assert_str_eq(r.sub, "alice");
    dpop_token_result_clear(&r);
    ck_assert_uint_eq(dpop_tokencache_size(c), 1);
    /* computed, then given */
    ck_assert_int_eq(dpop_token_verify_cached(c, other, strlen(other), NULL, &p, &r, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 0);
    dpop_token_result_clear(&r);
    ck_assert_int_eq(dpop_ath_compute(other, strlen(other), ath), DPOP_OK);
    ck_assert_int_eq(dpop_token_verify_cached(c, other, strlen(other), ath, &p, &r, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 1);
    ck_assert_str_eq(r.sub, "bob");
    dpop_token_result_clear(&r);
    /* an ath that is no base64url SHA-256 is no key: full verification */
    ck_assert_int_eq(dpop_token_verify_cached(c, tok, strlen(tok), "short", &p, &r, &f, &hit),
                     DPOP_OK);
    ck_assert_int_eq(hit, 0);
    ck_assert_str_eq(r.sub, "alice");
    dpop_token_result_clear(&r);
    dpop_tokencache_free(c);
    free(tok);
    free(other);
}
END_TEST

/* ---- threads over a small cache: every answer is the right token's ---- */

#define TC_THREADS 4
#define TC_TOKENS 6
#define TC_ROUNDS 150

static char *g_tc_toks[TC_TOKENS];

typedef struct {
    dpop_tokencache_t *c;
    int first;
} tc_worker_t;

static void *tc_worker(void *arg)
{
    tc_worker_t *w = arg;
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char want[16];
    int i, k, hit;
    base_params(&p, g_set);
    for (i = 0; i < TC_ROUNDS; i++) {
        k = (w->first + i * 5) % TC_TOKENS;
        snprintf(want, sizeof(want), "user-%d", k);
        if (dpop_token_verify_cached(w->c, g_tc_toks[k], strlen(g_tc_toks[k]), NULL, &p, &r, &f,
                                     &hit) != DPOP_OK ||
            !r.sub || strcmp(r.sub, want) != 0)
            atomic_fetch_add(&g_bad, 1);
        dpop_token_result_clear(&r);
    }
    return NULL;
}

START_TEST(test_tc_threads)
{
    dpop_tokencache_t *c = dpop_tokencache_create(4);
    pthread_t t[TC_THREADS];
    tc_worker_t w[TC_THREADS];
    char patch[64];
    int i;
    atomic_store(&g_bad, 0);
    for (i = 0; i < TC_TOKENS; i++) {
        snprintf(patch, sizeof(patch), "{\"sub\":\"user-%d\"}", i);
        g_tc_toks[i] = mint(patch);
    }
    for (i = 0; i < TC_THREADS; i++) {
        w[i].c = c;
        w[i].first = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, tc_worker, &w[i]), 0);
    }
    for (i = 0; i < TC_THREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(bad_count(), 0);
    ck_assert_uint_le(dpop_tokencache_size(c), 4);
    dpop_tokencache_free(c);
    for (i = 0; i < TC_TOKENS; i++)
        free(g_tc_toks[i]);
}
END_TEST

/* ==================================================================== */
/* dpop_keycache over dpop_lru                                          */
/* ==================================================================== */

static dpop_jwk_t *public_key(json_t *pub)
{
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    ck_assert_int_eq(dpop_jwk_import_public(pub, &k, &f), DPOP_OK);
    return k;
}

START_TEST(test_kc_alg)
{
    dpop_keycache_t *c = dpop_keycache_create(8);
    dpop_jwk_t *es = public_key(g_pk_es_pub), *ed = public_key(g_pk_ed_pub), *got;
    dpop_alg_t alg = DPOP_ALG_INVALID;
    const char *h1 = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0";
    const char *h2 = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVkRFNBIn0";
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(dpop_keycache_get(c, h1, strlen(h1), &alg));
    dpop_keycache_put(c, h1, strlen(h1), es, DPOP_ALG_ES256);
    dpop_keycache_put(c, h2, strlen(h2), ed, DPOP_ALG_EDDSA);
    ck_assert_uint_eq(dpop_keycache_size(c), 2);
    got = dpop_keycache_get(c, h1, strlen(h1), &alg);
    ck_assert_ptr_eq(got, es);
    ck_assert_int_eq(alg, DPOP_ALG_ES256);
    ck_assert_str_eq(dpop_jwk_thumbprint(got), dpop_jwk_thumbprint(es));
    dpop_jwk_free(got);
    got = dpop_keycache_get(c, h2, strlen(h2), &alg);
    ck_assert_ptr_eq(got, ed);
    ck_assert_int_eq(alg, DPOP_ALG_EDDSA);
    dpop_jwk_free(got);
    /* a header longer than the cache takes is not stored */
    {
        size_t big = 9000;
        char *hb = malloc(big);
        memset(hb, 'e', big);
        dpop_keycache_put(c, hb, big, es, DPOP_ALG_ES256);
        ck_assert_uint_eq(dpop_keycache_size(c), 2);
        ck_assert_ptr_null(dpop_keycache_get(c, hb, big, &alg));
        free(hb);
    }
    dpop_jwk_free(es);
    dpop_jwk_free(ed);
    dpop_keycache_free(c);
}
END_TEST

START_TEST(test_kc_ref_survives_eviction)
{
    enum { CAP = 4 };
    dpop_keycache_t *c = dpop_keycache_create(CAP);
    dpop_jwk_t *k = public_key(g_pk_es_pub), *held, *other = public_key(g_pk_ed_pub);
    static const unsigned char msg[] = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0";
    unsigned char *sig = NULL;
    size_t sl = 0;
    char hdr[16];
    int i;
    dpop_keycache_put(c, "hdr-0", 5, k, DPOP_ALG_ES256);
    dpop_jwk_free(k); /* the cache is the only owner now */
    held = dpop_keycache_get(c, "hdr-0", 5, NULL);
    ck_assert_ptr_nonnull(held);
    /* capacity + 1 other headers: hdr-0 is evicted while held */
    for (i = 1; i <= CAP + 1; i++) {
        snprintf(hdr, sizeof(hdr), "hdr-%d", i);
        dpop_keycache_put(c, hdr, strlen(hdr), other, DPOP_ALG_EDDSA);
    }
    ck_assert_uint_eq(dpop_keycache_size(c), CAP);
    ck_assert_ptr_null(dpop_keycache_get(c, "hdr-0", 5, NULL));
    ck_assert_int_eq(dpop_sig_sign(DPOP_ALG_ES256, g_pk_es, msg, sizeof(msg) - 1, &sig, &sl),
                     DPOP_OK);
    ck_assert_int_eq(dpop_jwk_verify(held, DPOP_ALG_ES256, msg, sizeof(msg) - 1, sig, sl), 1);
    /* and after the cache is gone */
    dpop_keycache_free(c);
    ck_assert_int_eq(dpop_jwk_verify(held, DPOP_ALG_ES256, msg, sizeof(msg) - 1, sig, sl), 1);
    ck_assert_uint_eq(strlen(dpop_jwk_thumbprint(held)), DPOP_JKT_LEN);
    free(sig);
    dpop_jwk_free(held);
    dpop_jwk_free(other);
}
END_TEST

/* ==================================================================== */

static Suite *lru_suite(void)
{
    Suite *s = suite_create("lru");
    TCase *tc = tcase_create("scripts");
    tcase_add_checked_fixture(tc, lru_setup, NULL);
    tcase_add_loop_test(tc, test_lru_script, 0,
                        (int)(sizeof(lru_scripts) / sizeof(lru_scripts[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("free_once");
    tcase_add_checked_fixture(tc, lru_setup, NULL);
    tcase_add_test(tc, test_lru_free_once);
    suite_add_tcase(s, tc);
    tc = tcase_create("stale");
    tcase_add_checked_fixture(tc, lru_setup, NULL);
    tcase_add_test(tc, test_lru_stale);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, lru_setup, NULL);
    tcase_add_test(tc, test_lru_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_add_checked_fixture(tc, lru_setup, NULL);
    tcase_add_test(tc, test_lru_threads);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *tokencache_suite(void)
{
    Suite *s = suite_create("tokencache");
    TCase *tc = tcase_create("hit");
    tcase_add_test(tc, test_tc_hit);
    tcase_add_test(tc, test_tc_hit_keeps_cnf_binding);
    suite_add_tcase(s, tc);
    tc = tcase_create("time");
    tcase_add_loop_test(tc, test_tc_time, 0, (int)(sizeof(time_cases) / sizeof(time_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("params");
    tcase_add_loop_test(tc, test_tc_params, 0, (int)(sizeof(param_cases) / sizeof(param_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("jwks");
    tcase_add_test(tc, test_tc_jwks_generation);
    tcase_add_test(tc, test_tc_same_content_two_sets);
    tcase_add_test(tc, test_tc_rotated_set);
    tcase_add_test(tc, test_tc_reloaded_in_place);
    suite_add_tcase(s, tc);
    tc = tcase_create("tampered");
    tcase_add_test(tc, test_tc_tampered);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_add_loop_test(tc, test_tc_failure_not_cached, 0,
                        (int)(sizeof(fail_cases) / sizeof(fail_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("bounds");
    tcase_add_test(tc, test_tc_capacity);
    tcase_add_test(tc, test_tc_no_cache_and_null_args);
    tcase_add_test(tc, test_tc_ath);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_add_test(tc, test_tc_threads);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *keycache_suite(void)
{
    Suite *s = suite_create("keycache");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, test_kc_alg);
    tcase_add_test(tc, test_kc_ref_survives_eviction);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;
    make_fixtures();
    sr = srunner_create(lru_suite());
    srunner_add_suite(sr, tokencache_suite());
    srunner_add_suite(sr, keycache_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free_fixtures();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
