/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_index.c: the jkt -> client table of the decision form.
 *
 * Open addressing with linear probing over a power-of-two table at most
 * 80 % full, so a lookup costs O(1) whatever the number of clients.  The
 * probe reads only 16-bit fingerprints (2 bytes per position: 256 KiB for
 * 100,000 clients, which stays cached); the record of position i is at a
 * fixed place, so the one record a lookup needs is fetched as soon as its
 * fingerprint matches, and the home position's record is prefetched even
 * before (most keys sit at home).  The full jkt in the record is compared
 * before a match is believed.  The hash is dpop_hash with a fixed seed:
 * every key in the table comes from the policy file, and a request only
 * chooses which positions its own lookup reads (thumbprints are SHA-256
 * outputs).  Never allocates at lookup time.
 */
#include "policy_internal.h"
#include "dpop_hash.h"

#include <string.h>

#define POLICY_HASH_SEED 0x706f6c6963792d31ULL /* "policy-1" */

uint64_t policy_hash_key(const char *s, size_t len)
{
    return dpop_hash_bytes(POLICY_HASH_SEED, s, len);
}

static void home(const policy_t *p, const char *jkt, uint64_t *pos, uint16_t *fp)
{
    uint64_t h = policy_hash_key(jkt, 43);
    *pos = h & p->mask;
    *fp = (uint16_t)(h >> 48);
    if (*fp == 0)
        *fp = 1; /* 0 marks an empty position */
}

uint64_t policy_index_put(policy_t *p, const char *jkt)
{
    uint64_t i;
    uint16_t fp;
    home(p, jkt, &i, &fp);
    while (p->fps[i] != 0)
        i = (i + 1) & p->mask;
    p->fps[i] = fp;
    return i;
}

static const unsigned char *record(const policy_t *p, uint64_t i)
{
    return p->recs + ((size_t)i << p->rec_shift);
}

static void prefetch_record(const policy_t *p, uint64_t i)
{
    const unsigned char *r = record(p, i);
    size_t k, n = (size_t)1 << p->rec_shift;
    for (k = 0; k < n; k += 64)
        __builtin_prefetch(r + k);
}

void policy_index_start(const policy_t *p, const char *jkt, policy_probe_t *pr)
{
    uint64_t i;
    home(p, jkt, &pr->pos, &pr->fp);
    prefetch_record(p, pr->pos); /* before the fingerprints: usually it */
    for (i = pr->pos; p->fps[i] != 0; i = (i + 1) & p->mask) {
        if (p->fps[i] == pr->fp) {
            if (i != pr->pos)
                prefetch_record(p, i);
            break;
        }
    }
}

const unsigned char *policy_index_finish(const policy_t *p, const char *jkt, policy_probe_t *pr)
{
    uint64_t i;
    for (i = pr->pos; p->fps[i] != 0; i = (i + 1) & p->mask)
        if (p->fps[i] == pr->fp && memcmp(record(p, i), jkt, 43) == 0)
            return record(p, i);
    return NULL;
}
