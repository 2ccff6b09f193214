/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_replayfill.h: how many proofs a replay cache holds that could still
 * be replayed, so that a full cache refuses new proofs instead of evicting
 * live ones.
 *
 * Why: Apache's shmcb evicts its oldest entries when it runs out of room.
 * An evicted jti whose proof is still inside the iat window can then be
 * replayed and is accepted (RFC 9449 §11.1 broken silently).  Refusing the
 * new proof (the module answers 503) is the safe failure; it is loud, and
 * the fix is a larger cache or a shorter DPoPProofLifetime (docs/scaling.md).
 *
 * The counter lives in memory the caller provides (shared memory in the
 * module) and is not locked here: the caller holds the same lock that
 * makes its lookup-and-insert atomic.  Entries are counted in buckets of
 * DPOP_FILL_GRAIN seconds of their expiry and released when the whole
 * bucket has expired, so the count is never below the number of live
 * entries (it may run up to one grain late: conservative).
 *
 * Must never: under-count (that would allow eviction of live entries).
 */
#ifndef DPOP_REPLAYFILL_H
#define DPOP_REPLAYFILL_H

#include <stddef.h>
#include <stdint.h>

#define DPOP_FILL_GRAIN 8 /* s per bucket */
/* Longest expiry ahead of now the counter tracks: the module's largest
 * proof lifetime plus skew plus one (86400 + 3600 + 1). */
#define DPOP_FILL_MAX_AHEAD 90001
#define DPOP_FILL_BUCKETS (DPOP_FILL_MAX_AHEAD / DPOP_FILL_GRAIN + 2)

typedef struct {
    uint64_t capacity; /* live entries admitted at most; 0 = unlimited */
    uint64_t live;     /* entries counted in the buckets */
    int64_t oldest;    /* bucket index of the oldest possibly non-empty bucket */
    uint32_t counts[DPOP_FILL_BUCKETS];
} dpop_replayfill_t;

/* Start empty with the given capacity (0: never full). */
void dpop_replayfill_init(dpop_replayfill_t *f, uint64_t capacity);

/* Release every bucket that expired by now (unix seconds). */
void dpop_replayfill_expire(dpop_replayfill_t *f, int64_t now);

/* Room for one more entry expiring at expiry?  1: counted (store it), 0:
 * full (do not store; refuse the proof).  An expiry already past, or
 * beyond DPOP_FILL_MAX_AHEAD, is counted in the nearest tracked bucket so
 * it is never lost from the count. */
int dpop_replayfill_admit(dpop_replayfill_t *f, int64_t now, int64_t expiry);

/* Entries that fit in a shmcb cache of size bytes with mod_dpop's entries
 * (32-byte key, 1-byte value), with a safety margin: measured first
 * evictions came at 7,000-8,000 entries per MiB; this admits 5,600 per
 * MiB (150 bytes an entry, 80% of the room). */
uint64_t dpop_replayfill_shmcb_capacity(uint64_t size);

#endif /* DPOP_REPLAYFILL_H */
