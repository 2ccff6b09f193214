/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proof_replaytab.c: the shared-memory replay table (dpop_replaytab.h):
 * insert and duplicate, expired slots reused in place, a full table refuses
 * and never evicts a live entry, the capacity per MiB (measured here, quoted
 * by docs/scaling.md), a header that survives close/open and is distrusted
 * when unclean, resized, corrupt or of another version, a stripe taken over
 * from a process killed while holding it, and processes x threads racing
 * on the same keys (exactly one FRESH per key).
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dpop_replaytab.h"
#include "dpop_result.h"

#define T0 1700000000
#define MIB 1048576ull
#define LIFE 306 /* default window: lifetime 300 + skew 5 + 1 */

static const unsigned char SALT[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* A zero-filled region shared with forked children. */
static void *region(uint64_t bytes)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    return m;
}

static dpop_replaytab_t *table(void *mem, uint64_t bytes)
{
    dpop_replaytab_t *t = NULL;
    ck_assert_int_eq(dpop_replaytab_format(mem, bytes, SALT, T0 - 1000, &t), DPOP_OK);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Distinct 32-byte keys from a counter (the table hashes them again). */
static void key_of(uint64_t n, unsigned char key[32])
{
    memset(key, 0, 32);
    memcpy(key, &n, sizeof(n));
    key[31] = 0x5a;
}

START_TEST(test_insert_duplicate)
{
    void *mem = region(MIB);
    dpop_replaytab_t *t = table(mem, MIB);
    unsigned char k1[32], k2[32];
    dpop_replaytab_stats_t st;
    key_of(1, k1);
    key_of(2, k2);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k1, T0, T0 + LIFE), DPOP_REPLAYTAB_FRESH);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k1, T0, T0 + LIFE), DPOP_REPLAYTAB_SEEN);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k1, T0 + LIFE - 1, T0 + 2 * LIFE),
                     DPOP_REPLAYTAB_SEEN);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k2, T0, T0 + LIFE), DPOP_REPLAYTAB_FRESH);
    /* expired: the same key is new again (its slot is free) */
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k1, T0 + LIFE, T0 + 2 * LIFE),
                     DPOP_REPLAYTAB_FRESH);
    dpop_replaytab_stats(t, T0 + LIFE, &st);
    ck_assert_uint_eq(st.live, 1);
    ck_assert_uint_eq(st.slots, dpop_replaytab_slots(MIB));
    ck_assert_int_eq(st.since, T0 - 1000);
    munmap(mem, MIB);
}
END_TEST

/* Fill until the first refusal: every key stored is still SEEN (nothing
 * evicted), the refused key stays refused (not stored), and the fill at
 * the first refusal is at least 30,000 entries per MiB. */
static uint64_t fill_until_full(dpop_replaytab_t *t, uint64_t bytes, uint64_t *first_full)
{
    unsigned char k[32];
    uint64_t n, stored = 0;
    for (n = 0; n < dpop_replaytab_slots(bytes) + 1; n++) {
        dpop_replaytab_status_t s;
        key_of(n, k);
        s = dpop_replaytab_check_and_store(t, k, T0, T0 + LIFE);
        if (s == DPOP_REPLAYTAB_FULL) {
            *first_full = n;
            return stored;
        }
        ck_assert_int_eq(s, DPOP_REPLAYTAB_FRESH);
        stored++;
    }
    *first_full = n;
    return stored;
}

static const uint64_t size_rows[] = {1 * MIB, 4 * MIB, 64 * MIB};

START_TEST(test_full_never_evicts)
{
    uint64_t bytes = size_rows[_i];
    void *mem = region(bytes);
    dpop_replaytab_t *t = table(mem, bytes);
    unsigned char k[32];
    uint64_t full_at = 0, stored = fill_until_full(t, bytes, &full_at), n;
    dpop_replaytab_stats_t st;
    double per_mib = (double)stored / ((double)bytes / MIB);
    printf("replaytab %llu MiB: %llu slots, first refusal after %llu entries (%.1f%%), "
           "%.0f entries per MiB\n",
           (unsigned long long)(bytes / MIB), (unsigned long long)dpop_replaytab_slots(bytes),
           (unsigned long long)stored, 100.0 * (double)stored / (double)dpop_replaytab_slots(bytes),
           per_mib);
    ck_assert_msg(per_mib >= 30000.0, "only %.0f entries per MiB", per_mib);
    /* the refused key was not stored */
    key_of(full_at, k);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k, T0, T0 + LIFE), DPOP_REPLAYTAB_FULL);
    /* nothing was evicted */
    for (n = 0; n < stored; n++) {
        key_of(n, k);
        ck_assert_int_eq(dpop_replaytab_check_and_store(t, k, T0 + LIFE - 1, T0 + 2 * LIFE),
                         DPOP_REPLAYTAB_SEEN);
    }
    dpop_replaytab_stats(t, T0, &st);
    ck_assert_uint_eq(st.live, stored);
    ck_assert_uint_ge(st.full, 2);
    /* once they expire their slots take new entries in place */
    key_of(full_at, k);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k, T0 + LIFE, T0 + 2 * LIFE),
                     DPOP_REPLAYTAB_FRESH);
    munmap(mem, bytes);
}
END_TEST

/* Steady state: a stream of new proofs, each live for the default window,
 * at 30,000 entries per MiB over LIFE seconds: never refused. */
START_TEST(test_steady_rate)
{
    uint64_t bytes = 4 * MIB;
    void *mem = region(bytes);
    dpop_replaytab_t *t = table(mem, bytes);
    uint64_t rate = 30000ull * (bytes / MIB) / LIFE + 1, n = 0, sec;
    unsigned char k[32];
    dpop_replaytab_stats_t st;
    for (sec = 0; sec < 3 * LIFE; sec++) {
        uint64_t i;
        for (i = 0; i < rate; i++, n++) {
            key_of(n, k);
            ck_assert_int_eq(
                dpop_replaytab_check_and_store(t, k, T0 + (int64_t)sec, T0 + (int64_t)sec + LIFE),
                DPOP_REPLAYTAB_FRESH);
        }
    }
    dpop_replaytab_stats(t, T0 + 3 * LIFE - 1, &st);
    ck_assert_uint_eq(st.full, 0);
    ck_assert_uint_ge(st.live, rate * (LIFE - 1));
    munmap(mem, bytes);
}
END_TEST

START_TEST(test_reopen)
{
    void *mem = region(MIB);
    dpop_replaytab_t *t = table(mem, MIB), *t2 = NULL;
    unsigned char k[32];
    key_of(7, k);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k, T0, T0 + LIFE), DPOP_REPLAYTAB_FRESH);
    /* still in use (never closed): a crash cannot be ruled out */
    ck_assert_int_eq(dpop_replaytab_open(mem, MIB, &t2), DPOP_REPLAYTAB_OPEN_UNCLEAN);
    ck_assert_ptr_null(t2);
    dpop_replaytab_close(t);
    ck_assert_int_eq(dpop_replaytab_open(mem, 2 * MIB, &t2), DPOP_REPLAYTAB_OPEN_SIZE);
    ck_assert_int_eq(dpop_replaytab_open(mem, MIB, &t2), DPOP_REPLAYTAB_OPEN_OK);
    ck_assert_ptr_nonnull(t2);
    ck_assert_int_eq(dpop_replaytab_since(t2), T0 - 1000);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t2, k, T0 + 1, T0 + LIFE), DPOP_REPLAYTAB_SEEN);
    /* opened again without a close in between: unclean */
    ck_assert_int_eq(dpop_replaytab_open(mem, MIB, &t2), DPOP_REPLAYTAB_OPEN_UNCLEAN);
    munmap(mem, MIB);
}
END_TEST

/* A header changed at byte offset `at` is never trusted. */
static const struct {
    size_t at;
    dpop_replaytab_open_t want;
} corrupt_rows[] = {
    {0, DPOP_REPLAYTAB_OPEN_CORRUPT},  /* magic */
    {8, DPOP_REPLAYTAB_OPEN_VERSION},  /* version */
    {12, DPOP_REPLAYTAB_OPEN_CORRUPT}, /* slots per bucket */
    {16, DPOP_REPLAYTAB_OPEN_SIZE},    /* size */
    {24, DPOP_REPLAYTAB_OPEN_CORRUPT}, /* bucket count */
    {40, DPOP_REPLAYTAB_OPEN_CORRUPT}, /* since */
    {48, DPOP_REPLAYTAB_OPEN_CORRUPT}, /* salt */
};

START_TEST(test_corrupt_header)
{
    void *mem = region(MIB);
    dpop_replaytab_t *t = table(mem, MIB), *t2 = NULL;
    dpop_replaytab_close(t);
    ((unsigned char *)mem)[corrupt_rows[_i].at] ^= 0x40;
    ck_assert_int_eq(dpop_replaytab_open(mem, MIB, &t2), corrupt_rows[_i].want);
    ck_assert_ptr_null(t2);
    munmap(mem, MIB);
}
END_TEST

START_TEST(test_new_region)
{
    void *mem = region(MIB);
    dpop_replaytab_t *t = NULL;
    ck_assert_int_eq(dpop_replaytab_open(mem, MIB, &t), DPOP_REPLAYTAB_OPEN_NEW);
    ck_assert_uint_eq(dpop_replaytab_slots(MIB - 1), 0);
    ck_assert_uint_eq(dpop_replaytab_slots(DPOP_REPLAYTAB_MAX + 1), 0);
    ck_assert_int_eq(dpop_replaytab_format(mem, MIB - 1, SALT, T0, &t), DPOP_ERR);
    munmap(mem, MIB);
}
END_TEST

/* A child locks every stripe and dies without unlocking: the next insert
 * takes the stripes over (EOWNERDEAD) instead of hanging. */
START_TEST(test_dead_owner)
{
    void *mem = region(MIB);
    dpop_replaytab_t *t = table(mem, MIB);
    unsigned char k[32];
    dpop_replaytab_stats_t st;
    int status = 0;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The stripes follow the header, one mutex per 64 bytes. */
        unsigned char *stripes = (unsigned char *)mem + DPOP_REPLAYTAB_HEADER;
        uint32_t i;
        for (i = 0; i < 64; i++)
            if (pthread_mutex_lock((pthread_mutex_t *)(stripes + 64 * i)))
                _exit(2);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    key_of(11, k);
    alarm(10); /* a hang fails the test */
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k, T0, T0 + LIFE), DPOP_REPLAYTAB_FRESH);
    ck_assert_int_eq(dpop_replaytab_check_and_store(t, k, T0, T0 + LIFE), DPOP_REPLAYTAB_SEEN);
    alarm(0);
    dpop_replaytab_stats(t, T0, &st);
    ck_assert_uint_ge(st.recoveries, 1);
    munmap(mem, MIB);
}
END_TEST

#define RACE_PROCS 4
#define RACE_THREADS 4
#define RACE_KEYS 4000

typedef struct {
    dpop_replaytab_t *t;
    uint32_t *fresh; /* per key, shared between the processes */
    uint32_t *errors;
} race_t;

static void *race_thread(void *arg)
{
    race_t *r = arg;
    unsigned char k[32];
    uint64_t n;
    for (n = 0; n < RACE_KEYS; n++) {
        dpop_replaytab_status_t s;
        key_of(n, k);
        s = dpop_replaytab_check_and_store(r->t, k, T0, T0 + LIFE);
        if (s == DPOP_REPLAYTAB_FRESH)
            __atomic_add_fetch(&r->fresh[n], 1, __ATOMIC_SEQ_CST);
        else if (s != DPOP_REPLAYTAB_SEEN)
            __atomic_add_fetch(r->errors, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

START_TEST(test_race_one_winner)
{
    void *mem = region(MIB);
    uint32_t *counts = region((RACE_KEYS + 1) * sizeof(uint32_t));
    race_t r = {table(mem, MIB), counts, counts + RACE_KEYS};
    pid_t pids[RACE_PROCS];
    int p, n;
    for (p = 0; p < RACE_PROCS; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            pthread_t th[RACE_THREADS];
            int i;
            for (i = 0; i < RACE_THREADS; i++)
                if (pthread_create(&th[i], NULL, race_thread, &r))
                    _exit(2);
            for (i = 0; i < RACE_THREADS; i++)
                pthread_join(th[i], NULL);
            _exit(0);
        }
    }
    for (p = 0; p < RACE_PROCS; p++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    ck_assert_uint_eq(counts[RACE_KEYS], 0);
    for (n = 0; n < RACE_KEYS; n++)
        ck_assert_msg(counts[n] == 1, "key %d accepted %u times", n, counts[n]);
    munmap(counts, (RACE_KEYS + 1) * sizeof(uint32_t));
    munmap(mem, MIB);
}
END_TEST

static Suite *tab_suite(void)
{
    Suite *s = suite_create("replaytab");
    TCase *tc = tcase_create("store");
    tcase_add_test(tc, test_insert_duplicate);
    suite_add_tcase(s, tc);
    tc = tcase_create("capacity");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_full_never_evicts, 0, sizeof(size_rows) / sizeof(size_rows[0]));
    tcase_add_test(tc, test_steady_rate);
    suite_add_tcase(s, tc);
    tc = tcase_create("header");
    tcase_add_test(tc, test_reopen);
    tcase_add_loop_test(tc, test_corrupt_header, 0, sizeof(corrupt_rows) / sizeof(corrupt_rows[0]));
    tcase_add_test(tc, test_new_region);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dead_owner);
    tcase_add_test(tc, test_race_one_winner);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tab_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
