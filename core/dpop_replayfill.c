/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_replayfill.c: the fill counter of a replay cache (see
 * dpop_replayfill.h).  Bucket b holds entries expiring in
 * [b * GRAIN, b * GRAIN + GRAIN - 1]; at time now every bucket below
 * now / GRAIN has fully expired.
 */
#include "dpop_replayfill.h"

#include <string.h>

void dpop_replayfill_init(dpop_replayfill_t *f, uint64_t capacity)
{
    memset(f, 0, sizeof(*f));
    f->capacity = capacity;
}

static int64_t bucket_of(int64_t t)
{
    return t >= 0 ? t / DPOP_FILL_GRAIN : -1 - (-1 - t) / DPOP_FILL_GRAIN;
}

void dpop_replayfill_expire(dpop_replayfill_t *f, int64_t now)
{
    int64_t cur = bucket_of(now);
    if (f->live == 0 || cur - f->oldest >= DPOP_FILL_BUCKETS) {
        /* Empty, or idle for longer than the ring: everything expired. */
        if (f->live)
            memset(f->counts, 0, sizeof(f->counts));
        f->live = 0;
        f->oldest = cur;
        return;
    }
    for (; f->oldest < cur; f->oldest++) {
        uint32_t *c = &f->counts[(uint64_t)f->oldest % DPOP_FILL_BUCKETS];
        f->live -= *c <= f->live ? *c : f->live;
        *c = 0;
    }
}

int dpop_replayfill_admit(dpop_replayfill_t *f, int64_t now, int64_t expiry)
{
    int64_t cur, b;
    uint32_t *c;
    dpop_replayfill_expire(f, now);
    if (f->capacity && f->live >= f->capacity)
        return 0;
    cur = bucket_of(now);
    b = bucket_of(expiry);
    /* Keep the entry inside the tracked ring: a past expiry in the current
     * bucket, one too far ahead in the last tracked bucket (released later
     * than it expires, never earlier). */
    if (b < cur)
        b = cur;
    if (b > cur + DPOP_FILL_BUCKETS - 1)
        b = cur + DPOP_FILL_BUCKETS - 1;
    c = &f->counts[(uint64_t)b % DPOP_FILL_BUCKETS];
    if (*c == UINT32_MAX)
        return 0;
    (*c)++;
    f->live++;
    return 1;
}

uint64_t dpop_replayfill_shmcb_capacity(uint64_t size)
{
    return size / 150 * 8 / 10;
}
