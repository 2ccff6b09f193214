/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_hash.c: fast non-cryptographic hash for in-memory tables.
 *
 * Never used where forgery matters (see dpop_hash.h); holds no state.
 */
#include "dpop_hash.h"

#include <string.h>

#include <openssl/rand.h>

#define HASH_MUL 0x9e3779b97f4a7c15ULL /* 2^64 / golden ratio */

uint64_t dpop_hash_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t dpop_hash_bytes(uint64_t seed, const void *data, size_t n)
{
    const unsigned char *p = data;
    /* The length enters the initial state so "a" and "a\0" differ. */
    uint64_t h = seed ^ ((uint64_t)n * HASH_MUL), w;
    while (n >= 8) {
        memcpy(&w, p, 8); /* unaligned-safe load */
        h = (h ^ w) * HASH_MUL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * HASH_MUL;
        h ^= h >> 29;
    }
    return dpop_hash_mix64(h);
}

int dpop_hash_seed(uint64_t *seed)
{
    if (RAND_bytes((unsigned char *)seed, (int)sizeof(*seed)) != 1)
        return -1;
    return 0;
}
