/*
 * policy_index.c: the jkt -> client hash table.
 *
 * Open addressing with linear probing over a power-of-two table kept at
 * most half full, so a lookup costs O(1) whatever the number of clients.
 * Each slot stores the full 64-bit hash, so a probe rejects other keys
 * without touching the client record (one cache miss per lookup in the
 * common case).  The key bytes are compared in full before a match is
 * believed.  The hash is a fast mixer, not cryptography: thumbprints are
 * already SHA-256 outputs, and a caller choosing its jkt only chooses its
 * own probe sequence, never the table's layout.
 */
#include "policy_internal.h"

#include <string.h>

static uint64_t mix(uint64_t h)
{
    /* the murmur3 / splitmix64 finalizer */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t policy_hash_key(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, 8);
        h = mix(h ^ w) + 0x9e3779b97f4a7c15ULL;
    }
    if (i < len) {
        w = 0;
        memcpy(&w, s + i, len - i);
        h = mix(h ^ w);
    }
    h = mix(h);
    return h ? h : 1; /* 0 marks an empty slot */
}

const policy_client_t *policy_index_insert(policy_t *p, const policy_client_t *c)
{
    uint64_t h = policy_hash_key(c->jkt, 43), i;
    for (i = h & p->mask;; i = (i + 1) & p->mask) {
        policy_slot_t *s = &p->slots[i];
        if (s->tag == 0) {
            s->tag = h;
            s->client = c;
            return NULL;
        }
        if (s->tag == h && memcmp(s->client->jkt, c->jkt, 43) == 0)
            return s->client;
    }
}

const policy_client_t *policy_index_find(const policy_t *p, const char *jkt, size_t len)
{
    uint64_t h, i;
    if (len != 43 || !p->slots)
        return NULL; /* every indexed jkt is 43 characters */
    h = policy_hash_key(jkt, len);
    for (i = h & p->mask;; i = (i + 1) & p->mask) {
        const policy_slot_t *s = &p->slots[i];
        if (s->tag == 0)
            return NULL;
        if (s->tag == h && memcmp(s->client->jkt, jkt, 43) == 0)
            return s->client;
    }
}

void policy_index_set_span(policy_t *p, const policy_client_t *c)
{
    uint64_t h = policy_hash_key(c->jkt, 43), i;
    for (i = h & p->mask; p->slots[i].tag != 0; i = (i + 1) & p->mask) {
        if (p->slots[i].client == c) {
            p->slots[i].span = c->span;
            return;
        }
    }
}
