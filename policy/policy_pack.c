/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_pack.c: the load form of a policy -> its decision form (the
 * layout is described in policy_internal.h).
 *
 * Why: with 100,000 clients the load form is ~1 KB of pointers and small
 * allocations per client, far more than any cache, and a decision chased
 * two or three of those pointers, each a wait for main memory.  Packed, a
 * client is one fixed-size record found from a cached fingerprint table,
 * holding everything its decisions read unless its allow list is shared
 * (interned: clients with the same entries, the same route sets and the
 * same inline routes, share one copy, which stays cached because many
 * decisions read it).  Method lists ("GET,POST") are interned too.  Runs
 * once per load, in time linear in the size of the policy; never changes
 * what a decision answers (same order of entries, routes and patterns).
 */
#include "policy_internal.h"

#include <stdlib.h>
#include <string.h>

/* past this a table is big enough to want huge pages (policy_big_alloc) */
#define BIG_BYTES (1u << 20)

typedef struct {
    unsigned char *b;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 4096;
    unsigned char *nb = NULL;
    if (n > SIZE_MAX - b->len)
        return DPOP_ERR;
    if (b->len + n <= b->cap)
        return DPOP_OK;
    while (cap < b->len + n)
        cap *= 2;
    if (!(nb = realloc(b->b, cap)))
        return DPOP_ERR;
    b->b = nb;
    b->cap = cap;
    return DPOP_OK;
}

static int buf_put(buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != DPOP_OK)
        return DPOP_ERR;
    memcpy(b->b + b->len, p, n);
    b->len += n;
    return DPOP_OK;
}

static int buf_u16(buf_t *b, uint32_t v)
{
    unsigned char o[2] = {(unsigned char)(v & 0xff), (unsigned char)(v >> 8)};
    return buf_put(b, o, 2);
}

static int buf_varint(buf_t *b, uint32_t v)
{
    unsigned char o[5];
    size_t n = 0;
    do {
        o[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            o[n] |= 0x80;
        n++;
    } while (v);
    return buf_put(b, o, n);
}

/* Make room for element n of a growable array (doubling): the array,
 * maybe moved, or NULL on ENOMEM (then arr is untouched). */
static void *room_for_one(void *arr, size_t *cap, size_t n, size_t elem)
{
    size_t c = *cap ? *cap * 2 : 16;
    void *a = NULL;
    if (arr && n < *cap)
        return arr;
    if (c > SIZE_MAX / elem || !(a = realloc(arr, c * elem)))
        return NULL;
    *cap = c;
    return a;
}

/* ---- interning: byte strings kept in a buf_t, found by hash ---- */
typedef struct {
    uint64_t h;
    uint32_t off, len, id;
    uint32_t used;
} intern_slot_t;

typedef struct {
    intern_slot_t *slots;
    uint64_t mask;
    size_t used;
} intern_t;

static int intern_grow(intern_t *t)
{
    intern_t n;
    size_t cap = t->slots ? (t->mask + 1) * 2 : 64, i;
    if (t->slots && (t->used + 1) * 2 <= t->mask + 1)
        return DPOP_OK;
    if (!(n.slots = calloc(cap, sizeof *n.slots)))
        return DPOP_ERR;
    n.mask = cap - 1;
    n.used = t->used;
    for (i = 0; t->slots && i <= t->mask; i++) {
        uint64_t j;
        if (!t->slots[i].used)
            continue;
        for (j = t->slots[i].h & n.mask; n.slots[j].used; j = (j + 1) & n.mask)
            ;
        n.slots[j] = t->slots[i];
    }
    free(t->slots);
    *t = n;
    return DPOP_OK;
}

/* The entry for key[0..len) with keys stored in b; *fresh = 1 when it was
 * not there (the caller then appends the key at *off and sets id).  NULL
 * on ENOMEM. */
static intern_slot_t *intern_find(intern_t *t, const buf_t *b, const unsigned char *key, size_t len,
                                  int *fresh)
{
    uint64_t h = policy_hash_key((const char *)key, len), i;
    if (intern_grow(t) != DPOP_OK)
        return NULL;
    for (i = h & t->mask; t->slots[i].used; i = (i + 1) & t->mask) {
        intern_slot_t *e = &t->slots[i];
        if (e->h == h && e->len == len && memcmp(b->b + e->off, key, len) == 0) {
            *fresh = 0;
            return e;
        }
    }
    t->slots[i].used = 1;
    t->slots[i].h = h;
    t->slots[i].len = (uint32_t)len;
    t->used++;
    *fresh = 1;
    return &t->slots[i];
}

/* per distinct allow list */
typedef struct {
    uint32_t off, len; /* in packer_t.all */
    uint32_t users;    /* clients with this list */
    uint32_t shared;   /* offset in lists, UINT32_MAX until placed there */
} list_info_t;

typedef struct {
    policy_t *p;
    buf_t all;    /* every distinct allow list, while packing */
    buf_t shared; /* what becomes p->lists */
    buf_t scratch, spec_keys;
    intern_t list_tab, spec_tab;
    list_info_t *info;
    size_t ninfo, info_cap, specs_cap;
    uint32_t *list_of; /* per client: index in info */
} packer_t;

/* Index of r's method list in p->specs, interned by its text. */
static int spec_of(packer_t *P, const policy_route_t *r, uint32_t *id)
{
    policy_t *p = P->p;
    size_t len = strlen(r->methods_text), k;
    int fresh = 0;
    intern_slot_t *e = intern_find(&P->spec_tab, &P->spec_keys,
                                   (const unsigned char *)r->methods_text, len, &fresh);
    policy_mspec_t *m = NULL, *specs = NULL;
    const char **ext = NULL;

    if (!e)
        return DPOP_ERR;
    if (!fresh) {
        *id = e->id;
        return DPOP_OK;
    }
    e->off = (uint32_t)P->spec_keys.len;
    if (P->spec_keys.len > UINT32_MAX - len ||
        buf_put(&P->spec_keys, r->methods_text, len) != DPOP_OK)
        return DPOP_ERR;
    if (!(specs = room_for_one(p->specs, &P->specs_cap, p->nspecs, sizeof *specs)))
        return DPOP_ERR;
    p->specs = specs;
    m = &p->specs[p->nspecs];
    memset(m, 0, sizeof *m);
    m->mask = r->mask;
    if (!(m->text = policy_arena_strndup(&p->arena, r->methods_text, len)))
        return DPOP_ERR;
    if (r->next) {
        /* the load form's strings are freed after packing: copy */
        if (!(ext = policy_arena_alloc(&p->arena, r->next * sizeof *ext)))
            return DPOP_ERR;
        for (k = 0; k < r->next; k++)
            if (!(ext[k] = policy_arena_strndup(&p->arena, r->ext[k], strlen(r->ext[k]))))
                return DPOP_ERR;
        m->ext = ext;
        m->next = r->next;
    }
    e->id = (uint32_t)p->nspecs;
    *id = e->id;
    p->nspecs++;
    return DPOP_OK;
}

static int put_route(packer_t *P, buf_t *b, const policy_route_t *r)
{
    uint32_t spec = 0, k;
    if (spec_of(P, r, &spec) != DPOP_OK || buf_varint(b, spec) != DPOP_OK ||
        buf_varint(b, r->npats) != DPOP_OK)
        return DPOP_ERR;
    for (k = 0; k < r->npats; k++) {
        size_t n = policy_pattern_enc_size(&r->pats[k]);
        if (buf_reserve(b, n) != DPOP_OK)
            return DPOP_ERR;
        policy_pattern_encode(&r->pats[k], b->b + b->len);
        b->len += n;
    }
    return DPOP_OK;
}

/* The client's allow list into scratch, then interned: *id indexes
 * P->info. */
static int put_list(packer_t *P, const policy_client_t *c, uint32_t *id)
{
    buf_t *s = &P->scratch;
    intern_slot_t *e = NULL;
    uint32_t i;
    int fresh = 0;

    s->len = 0;
    if (buf_u16(s, c->nallow) != DPOP_OK)
        return DPOP_ERR;
    for (i = 0; i < c->nallow; i++) {
        const policy_routeset_t *set = c->allow[i];
        if (set->name) { /* a named set: its index, the routes are shared */
            if (buf_u16(s, (uint32_t)(set - P->p->sets)) != DPOP_OK)
                return DPOP_ERR;
        }
        else if (buf_u16(s, POLICY_ENTRY_INLINE) != DPOP_OK ||
                 put_route(P, s, &set->routes[0]) != DPOP_OK) {
            return DPOP_ERR;
        }
    }
    if (s->len > UINT32_MAX || !(e = intern_find(&P->list_tab, &P->all, s->b, s->len, &fresh)))
        return DPOP_ERR;
    if (fresh) {
        list_info_t *li = NULL, *info = NULL;
        if (P->all.len > UINT32_MAX - s->len)
            return DPOP_ERR;
        if (!(info = room_for_one(P->info, &P->info_cap, P->ninfo, sizeof *info)))
            return DPOP_ERR;
        P->info = info;
        e->off = (uint32_t)P->all.len;
        e->id = (uint32_t)P->ninfo++;
        li = &P->info[e->id];
        li->off = e->off;
        li->len = (uint32_t)s->len;
        li->users = 0;
        li->shared = UINT32_MAX;
        if (buf_put(&P->all, s->b, s->len) != DPOP_OK)
            return DPOP_ERR;
    }
    P->info[e->id].users++;
    *id = e->id;
    return DPOP_OK;
}

static size_t fixed_size(const policy_client_t *c)
{
    return POLICY_REC_NAME + strlen(c->name) + 1;
}

/* Is this client's allow list kept in its record (records of 1 << shift
 * bytes)?  Only when no other client has the same list (a shared one is
 * read by many decisions and stays cached in lists) and it fits. */
static int list_here(const packer_t *P, size_t i, unsigned shift)
{
    const list_info_t *li = &P->info[P->list_of[i]];
    return li->users == 1 && fixed_size(P->p->clients[i]) + li->len <= ((size_t)1 << shift);
}

/* Record size: the smallest of 128, 256 and 512 bytes that holds every
 * name and keeps at least 90 % of the unshared allow lists in their
 * records (a record is fetched in one go; a list elsewhere is one more
 * wait for memory). */
static unsigned pick_shift(const packer_t *P)
{
    const policy_t *p = P->p;
    size_t i, maxfix = 0, unshared = 0, fit[3] = {0, 0, 0};
    unsigned s, first = 0;
    for (i = 0; i < p->nclients; i++) {
        size_t f = fixed_size(p->clients[i]);
        if (f > maxfix)
            maxfix = f;
        if (P->info[P->list_of[i]].users == 1)
            unshared++;
        for (s = 7; s <= 9; s++)
            if (list_here(P, i, s))
                fit[s - 7]++;
    }
    for (s = 7; s <= 9; s++) {
        if (maxfix > ((size_t)1 << s))
            continue;
        if (!first)
            first = s;
        if (fit[s - 7] * 10 >= unshared * 9)
            return s;
    }
    return first; /* names are at most POLICY_MAX_NAME: 512 always holds one */
}

static void write_record(const packer_t *P, size_t i, unsigned char *r, int here, uint32_t list_off)
{
    const policy_client_t *c = P->p->clients[i];
    const list_info_t *li = &P->info[P->list_of[i]];
    size_t namelen = strlen(c->name);
    uint8_t flags =
        (uint8_t)((c->revoked ? POLICY_REC_REVOKED : 0) | (c->has_nb ? POLICY_REC_NB : 0) |
                  (c->has_na ? POLICY_REC_NA : 0) | (here ? POLICY_REC_LIST_HERE : 0));
    memcpy(r, c->jkt, 43);
    r[POLICY_REC_FLAGS] = flags;
    if (here)
        list_off = (uint32_t)(POLICY_REC_NAME + namelen + 1);
    memcpy(r + POLICY_REC_LIST, &list_off, 4);
    memcpy(r + POLICY_REC_NB_AT, &c->not_before, 8);
    memcpy(r + POLICY_REC_NA_AT, &c->not_after, 8);
    memcpy(r + POLICY_REC_NAME, c->name, namelen + 1);
    if (here)
        memcpy(r + list_off, P->all.b + li->off, li->len);
}

static void *table_alloc(size_t n)
{
    void *t = NULL;
    if (n >= BIG_BYTES)
        return policy_big_alloc(n);
    n = (n + 63) & ~(size_t)63;
    if ((t = aligned_alloc(64, n ? n : 64)))
        memset(t, 0, n);
    return t;
}

static int pack(packer_t *P)
{
    policy_t *p = P->p;
    size_t cap = 16, i, fps_bytes, recs_bytes;
    unsigned shift;
    uint32_t k;

    /* at most 80 % full */
    while (cap * 4 < p->nclients * 5)
        cap <<= 1;
    if (p->nsets && !(p->setrefs = calloc(p->nsets, sizeof *p->setrefs)))
        return DPOP_ERR;
    /* named route sets first: small and shared, they stay cached */
    for (i = 0; i < p->nsets; i++) {
        const policy_routeset_t *set = &p->sets[i];
        p->setrefs[i].name = set->name;
        p->setrefs[i].off = (uint32_t)P->shared.len;
        if (buf_u16(&P->shared, set->nroutes) != DPOP_OK)
            return DPOP_ERR;
        for (k = 0; k < set->nroutes; k++)
            if (put_route(P, &P->shared, &set->routes[k]) != DPOP_OK)
                return DPOP_ERR;
    }
    if (p->nclients && !(P->list_of = calloc(p->nclients, sizeof *P->list_of)))
        return DPOP_ERR;
    for (i = 0; i < p->nclients; i++)
        if (put_list(P, p->clients[i], &P->list_of[i]) != DPOP_OK)
            return DPOP_ERR;
    p->nlists = P->ninfo;
    shift = pick_shift(P);
    /* lists that stay out of the records, each once */
    for (i = 0; i < p->nclients; i++) {
        list_info_t *li = &P->info[P->list_of[i]];
        if (list_here(P, i, shift) || li->shared != UINT32_MAX)
            continue;
        if (P->shared.len > UINT32_MAX - li->len)
            return DPOP_ERR;
        li->shared = (uint32_t)P->shared.len;
        if (buf_put(&P->shared, P->all.b + li->off, li->len) != DPOP_OK)
            return DPOP_ERR;
    }
    fps_bytes = (cap * sizeof *p->fps + 63) & ~(size_t)63;
    recs_bytes = cap << shift;
    if (recs_bytes >> shift != cap || recs_bytes > SIZE_MAX - fps_bytes - P->shared.len - 64)
        return DPOP_ERR;
    p->block_bytes = fps_bytes + recs_bytes + P->shared.len + 64;
    if (!(p->block = table_alloc(p->block_bytes)))
        return DPOP_ERR;
    p->fps = (uint16_t *)(void *)p->block;
    p->recs = p->block + fps_bytes;
    p->lists = p->recs + recs_bytes;
    p->mask = cap - 1;
    p->rec_shift = shift;
    if (P->shared.len)
        memcpy(p->lists, P->shared.b, P->shared.len);
    for (i = 0; i < p->nclients; i++) {
        uint64_t pos = policy_index_put(p, p->clients[i]->jkt);
        write_record(P, i, p->recs + ((size_t)pos << shift), list_here(P, i, shift),
                     P->info[P->list_of[i]].shared);
    }
    return DPOP_OK;
}

int policy_pack(policy_t *p)
{
    packer_t P;
    size_t i;
    int rc;

    memset(&P, 0, sizeof P);
    P.p = p;
    rc = pack(&P);
    free(P.all.b);
    free(P.shared.b);
    free(P.info);
    free(P.list_of);
    free(P.scratch.b);
    free(P.spec_keys.b);
    free(P.list_tab.slots);
    free(P.spec_tab.slots);
    /* the load form's routes are freed by the loader: drop the pointers */
    for (i = 0; i < p->nclients; i++)
        p->clients[i]->allow = NULL;
    p->sets = NULL;
    return rc;
}
