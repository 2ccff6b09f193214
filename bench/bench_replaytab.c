/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_replaytab.c: the shm replay table (core/dpop_replaytab.h) alone.
 *
 *   bench/bench_replaytab [MIB] [THREADS] [SECONDS]     (defaults 64 2 3)
 *
 * 1. Throughput: THREADS threads insert fresh random keys (each followed by
 *    one lookup of a key it stored before, which must answer SEEN) into a
 *    MIB table for SECONDS, with entries expiring 306 s ahead of a clock
 *    driven by the inserts so that about half the slots stay live; prints
 *    inserts/s and ns per check (hash + two buckets + locks), and fails on
 *    a wrong answer.
 * 2. Steady state: the largest rate of new proofs a MIB table takes over a
 *    306 s window for three windows without one refusal (bisection on a
 *    simulated clock), as proofs/s and entries per MiB.
 *
 * Prints figures; exit 1 when an answer was wrong.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "dpop_replaytab.h"
#include "dpop_result.h"

#define WINDOW 306
#define T0 1700000000

typedef struct {
    dpop_replaytab_t *t;
    uint64_t seed, done, wrong;
    double seconds;
    uint64_t per_second; /* inserts (all threads) per simulated second */
    int threads;
} worker_t;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void key_of(uint64_t seed, uint64_t n, unsigned char key[32])
{
    memset(key, 0, 32);
    memcpy(key, &seed, sizeof(seed));
    memcpy(key + 8, &n, sizeof(n));
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    unsigned char k[32];
    double end = mono() + w->seconds;
    uint64_t n = 0;
    while ((n & 255) || mono() < end) {
        int64_t now = T0 + (int64_t)(n * (uint64_t)w->threads / w->per_second);
        key_of(w->seed, n, k);
        if (dpop_replaytab_check_and_store(w->t, k, now, now + WINDOW) != DPOP_REPLAYTAB_FRESH)
            w->wrong++;
        if (n > 0) {
            key_of(w->seed, n - 1, k);
            if (dpop_replaytab_check_and_store(w->t, k, now, now + WINDOW) != DPOP_REPLAYTAB_SEEN)
                w->wrong++;
        }
        n++;
    }
    w->done = n;
    return NULL;
}

static void *region(uint64_t bytes)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* 1 when rate new proofs/s for three windows were all accepted. */
static int steady(uint64_t bytes, uint64_t rate)
{
    static const unsigned char salt[32] = {7};
    void *mem = region(bytes);
    dpop_replaytab_t *t = NULL;
    unsigned char k[32];
    uint64_t n = 0, sec;
    int ok = 1;
    if (!mem || dpop_replaytab_format(mem, bytes, salt, T0, &t) != DPOP_OK)
        return 0;
    for (sec = 0; sec < 3 * WINDOW && ok; sec++) {
        uint64_t i;
        for (i = 0; i < rate; i++, n++) {
            key_of(42, n, k);
            if (dpop_replaytab_check_and_store(
                    t, k, T0 + (int64_t)sec, T0 + (int64_t)sec + WINDOW) != DPOP_REPLAYTAB_FRESH) {
                ok = 0;
                break;
            }
        }
    }
    munmap(mem, bytes);
    return ok;
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
    int threads = argc > 2 ? atoi(argv[2]) : 2, i;
    double seconds = argc > 3 ? atof(argv[3]) : 3.0, t0, el;
    uint64_t bytes = mib * 1048576ull, total = 0, wrong = 0, lo, hi, smib = 4;
    static const unsigned char salt[32] = {1};
    void *mem = region(bytes);
    dpop_replaytab_t *t = NULL;
    worker_t *w = calloc((size_t)threads, sizeof(*w));
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    if (!mem || !w || !th || threads < 1 ||
        dpop_replaytab_format(mem, bytes, salt, T0, &t) != DPOP_OK) {
        fprintf(stderr, "bench_replaytab: bad arguments or no memory\n");
        return 2;
    }
    for (i = 0; i < threads; i++) {
        /* live = per_second x WINDOW = half the slots */
        w[i] = (worker_t){t,      (uint64_t)i + 1, 0,
                          0,      seconds,         dpop_replaytab_slots(bytes) / 2 / WINDOW + 1,
                          threads};
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    t0 = mono();
    for (i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
        wrong += w[i].wrong;
    }
    el = mono() - t0;
    printf("replaytab %llu MiB, %d threads, %.1f s: %.0f inserts/s (+ as many replay lookups), "
           "%.0f ns per check and store; wrong answers: %llu\n",
           (unsigned long long)mib, threads, el, (double)total / el,
           el * 1e9 * threads / (double)(2 * total), (unsigned long long)wrong);
    munmap(mem, bytes);
    /* steady state on a smaller table (the figure scales with the size) */
    lo = 100;
    hi = 2000;
    while (hi - lo > 2) {
        uint64_t mid = (lo + hi) / 2;
        if (steady(smib * 1048576ull, mid))
            lo = mid;
        else
            hi = mid;
    }
    printf("replaytab %llu MiB steady state: %llu new proofs/s over a %d s window without a "
           "refusal = %.0f live entries per MiB\n",
           (unsigned long long)smib, (unsigned long long)lo, WINDOW,
           (double)lo * WINDOW / (double)smib);
    free(w);
    free(th);
    return wrong ? 1 : 0;
}
