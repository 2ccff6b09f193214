/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_match.c: policy_decide(), the per-request decision.
 *
 * Cost: one hash lookup on the jkt (O(1) in the number of clients), then
 * only that client's allow entries, read from the packed decision form
 * (policy_pack.c): fingerprints, one record, shared lists.  Order matters and follows DESIGN.md:
 * unknown key -> policy_denied; revoked or outside [not_before, not_after)
 * -> key_revoked, checked before any route so a revoked key never gets a
 * route-specific answer; then the first route whose method and path match
 * allows; otherwise default deny.  Never allocates, never logs.
 */
#include "policy_internal.h"

#include <stdio.h>
#include <string.h>

static void deny(policy_decision_t *d, dpop_reason_t why)
{
    d->allow = 0;
    d->reason = why;
}

static uint32_t get_varint(const unsigned char **q)
{
    const unsigned char *g = *q;
    uint32_t v = 0;
    unsigned shift = 0;
    do {
        v |= (uint32_t)(*g & 0x7f) << shift;
        shift += 7;
    } while (*g++ & 0x80);
    *q = g;
    return v;
}

static uint32_t get16(const unsigned char *q)
{
    return (uint32_t)q[0] | (uint32_t)q[1] << 8;
}

/* Skip npats encoded patterns. */
static const unsigned char *skip_patterns(const unsigned char *q, uint32_t npats)
{
    while (npats--)
        q += POLICY_PAT_HDR + get16(q);
    return q;
}

typedef struct {
    const char *method;
    uint32_t bit;
    const policy_path_t *pp;
} request_t;

/* The first pattern of the route at *q that allows the request (its
 * encoding, *spec set), or NULL; *q moves past the route either way. */
static const unsigned char *match_route(const policy_t *p, const unsigned char **q,
                                        const request_t *rq, const policy_mspec_t **spec)
{
    const unsigned char *g = *q, *next = NULL;
    uint32_t k, npats;
    *spec = &p->specs[get_varint(&g)];
    npats = get_varint(&g);
    if (!policy_method_spec_match(*spec, rq->method, rq->bit)) {
        *q = skip_patterns(g, npats);
        return NULL;
    }
    for (k = 0; k < npats; k++, g = next) {
        if (policy_pattern_match(g, rq->pp, &next)) {
            *q = skip_patterns(next, npats - k - 1);
            return g;
        }
    }
    *q = g;
    return NULL;
}

static void allow_rule(const char *name, uint32_t i, const policy_setref_t *set,
                       const policy_mspec_t *spec, const unsigned char *pat, policy_decision_t *d)
{
    char buf[POLICY_MAX_PATTERN + 1];
    /* the rule is bounded (sizeof d->rule): snprintf truncates a long one */
    const char *text = policy_pattern_text(pat, buf, sizeof buf);
    d->allow = 1;
    d->reason = DPOP_REASON_NONE;
    if (set)
        snprintf(d->rule, sizeof d->rule, "client %s allow[%u] route set %s: %s %s", name, i,
                 set->name, spec->text, text);
    else
        snprintf(d->rule, sizeof d->rule, "client %s allow[%u]: %s %s", name, i, spec->text, text);
}

/* Walk the client's allow list in order: the first route whose method and
 * path match allows. */
static int match_list(const policy_t *p, const unsigned char *list, const char *name,
                      const request_t *rq, policy_decision_t *d)
{
    uint32_t n = get16(list), i, j;
    const unsigned char *q = list + 2, *pat = NULL;
    const policy_mspec_t *spec = NULL;
    for (i = 0; i < n; i++) {
        uint32_t e = get16(q);
        q += 2;
        if (e == POLICY_ENTRY_INLINE) {
            if ((pat = match_route(p, &q, rq, &spec)) != NULL) {
                allow_rule(name, i, NULL, spec, pat, d);
                return 1;
            }
        }
        else {
            const policy_setref_t *set = &p->setrefs[e];
            const unsigned char *r = p->lists + set->off;
            uint32_t nroutes = get16(r);
            r += 2;
            for (j = 0; j < nroutes; j++) {
                if ((pat = match_route(p, &r, rq, &spec)) != NULL) {
                    allow_rule(name, i, set, spec, pat, d);
                    return 1;
                }
            }
        }
    }
    return 0;
}

void policy_decide(const policy_t *p, const char *jkt, const char *method, const char *path,
                   int64_t now, policy_decision_t *d)
{
    const unsigned char *rec = NULL, *list = NULL;
    const char *name = NULL;
    policy_probe_t probe;
    policy_path_t pp;
    request_t rq;
    char when[32];
    int64_t nb = 0, na = 0;
    uint32_t list_off = 0;
    size_t mlen;
    uint8_t flags;
    int path_ok;

    memset(d, 0, sizeof *d);
    deny(d, DPOP_REASON_POLICY_DENIED); /* default deny */
    if (!p || !jkt || !method || !path)
        return;
    if (strlen(jkt) != 43 || !p->fps)
        return; /* every client's jkt is 43 characters: unknown key */
    /* Find the candidate position by fingerprint and prefetch its record;
     * the path is split while that load is in flight.  The full jkt is
     * compared below. */
    policy_index_start(p, jkt, &probe);
    mlen = strlen(method);
    path_ok = mlen > 0 && policy_path_split(path, &pp) == DPOP_OK;
    if (!(rec = policy_index_finish(p, jkt, &probe)))
        return; /* unknown key: no client, no rule */
    flags = rec[POLICY_REC_FLAGS];
    memcpy(&nb, rec + POLICY_REC_NB_AT, 8);
    memcpy(&na, rec + POLICY_REC_NA_AT, 8);
    memcpy(&list_off, rec + POLICY_REC_LIST, 4);
    d->client = name = (const char *)rec + POLICY_REC_NAME;
    if (flags & POLICY_REC_REVOKED) {
        deny(d, DPOP_REASON_KEY_REVOKED);
        snprintf(d->rule, sizeof d->rule, "client %s is revoked", name);
        return;
    }
    /* not_before is inclusive, not_after exclusive: [not_before, not_after) */
    if ((flags & POLICY_REC_NB) && now < nb) {
        deny(d, DPOP_REASON_KEY_REVOKED);
        policy_time_format(nb, when, sizeof when);
        snprintf(d->rule, sizeof d->rule, "client %s is not valid before %s (not_before)", name,
                 when);
        return;
    }
    if ((flags & POLICY_REC_NA) && now >= na) {
        deny(d, DPOP_REASON_KEY_REVOKED);
        policy_time_format(na, when, sizeof when);
        snprintf(d->rule, sizeof d->rule, "client %s expired at %s (not_after)", name, when);
        return;
    }
    if (!path_ok) {
        snprintf(d->rule, sizeof d->rule,
                 "client %s: the method or path is not acceptable (default deny)", name);
        return;
    }
    rq.method = method;
    rq.bit = policy_method_bit(method, mlen);
    rq.pp = &pp;
    list = (flags & POLICY_REC_LIST_HERE) ? rec + list_off : p->lists + list_off;
    if (match_list(p, list, name, &rq, d))
        return;
    if (get16(list) == 0) /* allow: [] (onboarding, incident): registered, calls nothing */
        snprintf(d->rule, sizeof d->rule, "client %s: allow is empty (default deny)", name);
    else
        snprintf(d->rule, sizeof d->rule, "client %s: no allow entry matches (default deny)", name);
}
