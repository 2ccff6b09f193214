/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_replaytab.h: the jti replay table of the shared-memory store
 * (DPoPReplayCache shm:SIZE), laid out in a memory region the caller
 * provides (a MAP_SHARED file mapping in the module, malloc'd memory in the
 * unit tests).
 *
 * Layout: a 4 KiB header (magic, version, geometry, salt, "remembering
 * since", clean flag, counters), an array of lock stripes (robust,
 * process-shared pthread mutexes, one per cache line), then buckets of
 * DPOP_REPLAYTAB_SLOTS 16-byte slots {expiry, 12-byte fingerprint}.
 *
 * Why this shape (RFC 9449 §11.1 single use of a jti):
 *   - the stored fingerprint is SHA-256(salt || key) truncated: fixed size,
 *     and a client cannot aim its own jtis at the bucket of a proof it
 *     captured (the salt is secret and random per table);
 *   - each key has two candidate buckets and goes to the emptier one (the
 *     "power of two choices"), so buckets fill evenly and a table refuses
 *     its first proof only when it is mostly full;
 *   - a slot whose expiry is past is free and is reused in place: there is
 *     no eviction, a live entry is never overwritten; when both buckets of
 *     a key are full of live entries the insert answers FULL (the module
 *     answers 503: fail closed);
 *   - no global lock: the two buckets of a key are locked through their
 *     stripes (in stripe order); a process killed while holding a stripe
 *     leaves it to the next locker (EOWNERDEAD, made consistent): the slot
 *     it was writing is either still free or whole, because the expiry is
 *     written after the fingerprint.  The mutexes are not
 *     priority-inheriting, so an uncontended lock never enters the kernel.
 *
 * Must never: overwrite a live entry, answer FRESH for a key it holds live,
 * or answer FRESH without having stored the key.
 */
#ifndef DPOP_REPLAYTAB_H
#define DPOP_REPLAYTAB_H

#include <stddef.h>
#include <stdint.h>

#define DPOP_REPLAYTAB_SLOTS 16           /* slots per bucket (256 bytes) */
#define DPOP_REPLAYTAB_HEADER 4096        /* bytes before the lock stripes */
#define DPOP_REPLAYTAB_MIN 1048576u       /* 1 MiB */
#define DPOP_REPLAYTAB_MAX 17179869184ull /* 16 GiB */
#define DPOP_REPLAYTAB_VERSION 1u

typedef struct dpop_replaytab dpop_replaytab_t;

typedef enum {
    DPOP_REPLAYTAB_FRESH = 0, /* not seen: stored now */
    DPOP_REPLAYTAB_SEEN = 1,  /* held live: a replay */
    DPOP_REPLAYTAB_FULL = 2,  /* both buckets full of live entries: not stored */
    DPOP_REPLAYTAB_ERROR = 3  /* a lock could not be taken: not stored */
} dpop_replaytab_status_t;

/* Why a region could not be opened (dpop_replaytab_open). */
typedef enum {
    DPOP_REPLAYTAB_OPEN_OK = 0,
    DPOP_REPLAYTAB_OPEN_NEW,     /* no header: never formatted (zeros) */
    DPOP_REPLAYTAB_OPEN_CORRUPT, /* bad magic or inconsistent geometry */
    DPOP_REPLAYTAB_OPEN_VERSION, /* another layout version */
    DPOP_REPLAYTAB_OPEN_SIZE,    /* formatted for another size */
    DPOP_REPLAYTAB_OPEN_UNCLEAN, /* not closed cleanly: may have lost entries */
    DPOP_REPLAYTAB_OPEN_LOCKS    /* the stripes could not be initialized */
} dpop_replaytab_open_t;

typedef struct {
    uint64_t live;       /* entries whose expiry is still ahead (a scan) */
    uint64_t slots;      /* all slots: the most it could ever hold */
    uint64_t full;       /* inserts refused because both buckets were full */
    uint64_t recoveries; /* stripes taken over from a dead owner */
    int64_t since;       /* unix s: when the table began remembering */
} dpop_replaytab_stats_t;

/* Slots a region of bytes holds (0 when bytes is out of
 * [DPOP_REPLAYTAB_MIN, DPOP_REPLAYTAB_MAX]). */
uint64_t dpop_replaytab_slots(uint64_t bytes);

/* Format a zero-filled region of bytes as an empty table: random salt
 * (32 bytes, the caller's), "remembering since" = since, not clean (in
 * use).  The region must not be in use by anyone.  DPOP_OK or DPOP_ERR
 * (size out of bounds, locks not initializable). */
int dpop_replaytab_format(void *mem, uint64_t bytes, const unsigned char salt[32], int64_t since,
                          dpop_replaytab_t **out);

/* Open a region formatted earlier, as it was left (the mapping of the same
 * file after a restart of httpd): checks magic, version, size and
 * geometry, and that it was closed cleanly (dpop_replaytab_close);
 * re-initializes the stripes (nobody may use the region meanwhile) and
 * marks it in use.  Anything but OK leaves the region untouched and *out
 * NULL: the caller formats a new table. */
dpop_replaytab_open_t dpop_replaytab_open(void *mem, uint64_t bytes, dpop_replaytab_t **out);

/* Mark the table closed cleanly (nobody uses it any more and every write
 * reached the region); the caller flushes the region first. */
void dpop_replaytab_close(dpop_replaytab_t *t);

/* Atomically: key held live -> SEEN; else store it until expiry (unix s)
 * -> FRESH, or FULL / ERROR without storing.  key is the 32-byte replay
 * key (SHA-256(jkt || jti)); now is unix seconds. */
dpop_replaytab_status_t dpop_replaytab_check_and_store(dpop_replaytab_t *t,
                                                       const unsigned char key[32], int64_t now,
                                                       int64_t expiry);

/* Fill and counters; live is counted by a scan without locks (a gauge). */
void dpop_replaytab_stats(dpop_replaytab_t *t, int64_t now, dpop_replaytab_stats_t *st);

/* When the table began remembering (unix s). */
int64_t dpop_replaytab_since(const dpop_replaytab_t *t);

/* Why an open failed, for the log. */
const char *dpop_replaytab_open_reason(dpop_replaytab_open_t why);

#endif /* DPOP_REPLAYTAB_H */
