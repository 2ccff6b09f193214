/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_arena.c: a bump allocator for the YAML tree and the compiled
 * policy.
 *
 * A compiled policy is immutable and freed as a whole, so one arena gives
 * locality (a client's routes sit next to each other, which keeps decisions
 * fast at 100,000 clients) and no per-object free path that could leak.
 * It must never hand out memory that outlives policy_arena_free().
 */
#include "policy_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_BLOCK (256u * 1024)
/* Past this many bytes the policy is big (tens of thousands of clients):
 * blocks grow to 4 MiB, 2 MiB-aligned and advised as transparent huge
 * pages.  A decision touches one client's records at a random place in a
 * large arena; with 4 KiB pages that is a TLB miss on top of the cache
 * miss, which on a VM costs as much again. */
#define ARENA_BIG_AFTER (4u * 1024 * 1024)
#define ARENA_BIG_BLOCK (4u * 1024 * 1024)
#define HUGE_ALIGN (2u * 1024 * 1024)

struct policy_arena_block {
    policy_arena_block_t *next;
    size_t used;
    size_t cap;
    /* data follows, aligned to 16 */
};

#define BLOCK_HDR ((sizeof(policy_arena_block_t) + 15) & ~(size_t)15)

void *policy_big_alloc(size_t n)
{
    void *p = NULL;
    n = (n + HUGE_ALIGN - 1) & ~(size_t)(HUGE_ALIGN - 1);
    if (n == 0 || !(p = aligned_alloc(HUGE_ALIGN, n)))
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE); /* advice only: fine if refused */
#endif
    memset(p, 0, n); /* zeroed like calloc; faults the (huge) pages in now */
    return p;
}

void policy_arena_init(policy_arena_t *a)
{
    a->head = NULL;
    a->total = 0;
}

void policy_arena_free(policy_arena_t *a)
{
    policy_arena_block_t *b = a->head, *next = NULL;
    while (b) {
        next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void policy_arena_reset(policy_arena_t *a)
{
    policy_arena_block_t *keep = a->head, *b = NULL, *next = NULL;
    if (!keep)
        return;
    for (b = keep->next; b; b = next) {
        next = b->next;
        free(b);
    }
    memset((unsigned char *)keep + BLOCK_HDR, 0, keep->used);
    keep->used = 0;
    keep->next = NULL;
    a->total = keep->cap;
}

void *policy_arena_alloc(policy_arena_t *a, size_t n)
{
    policy_arena_block_t *b = a->head;
    size_t need = (n + 7) & ~(size_t)7;
    unsigned char *p = NULL;

    if (n == 0)
        need = 8;
    if (need < n)
        return NULL; /* overflow */
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;
        if (cap > SIZE_MAX - BLOCK_HDR - HUGE_ALIGN)
            return NULL;
        if (a->total >= ARENA_BIG_AFTER && cap == ARENA_BLOCK) {
            cap = ARENA_BIG_BLOCK - BLOCK_HDR;
            b = policy_big_alloc(BLOCK_HDR + cap);
        }
        else {
            b = calloc(1, BLOCK_HDR + cap);
        }
        if (!b)
            return NULL;
        b->cap = cap;
        a->total += cap;
        if (cap == need && a->head) {
            /* a big one-off block: keep filling the current small block */
            b->next = a->head->next;
            a->head->next = b;
            b->used = need;
            return (unsigned char *)b + BLOCK_HDR;
        }
        b->next = a->head;
        a->head = b;
    }
    p = (unsigned char *)b + BLOCK_HDR + b->used;
    b->used += need;
    return p; /* calloc'd and never reused: already zero */
}

char *policy_arena_strndup(policy_arena_t *a, const char *s, size_t len)
{
    char *d = NULL;
    if (len == SIZE_MAX)
        return NULL;
    d = policy_arena_alloc(a, len + 1);
    if (!d)
        return NULL;
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
