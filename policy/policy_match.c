/*
 * policy_match.c: policy_decide(), the per-request decision.
 *
 * Cost: one hash lookup on the jkt (O(1) in the number of clients), then
 * only that client's allow entries.  Order matters and follows DESIGN.md:
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

void policy_decide(const policy_t *p, const char *jkt, const char *method, const char *path,
                   int64_t now, policy_decision_t *d)
{
    const policy_client_t *c = NULL;
    policy_path_t pp;
    char when[32];
    uint32_t i, j, k, bit;
    size_t mlen;
    int path_ok;

    memset(d, 0, sizeof *d);
    deny(d, DPOP_REASON_POLICY_DENIED); /* default deny */
    if (!p || !jkt || !method || !path)
        return;
    if (strlen(jkt) == 43 && p->slots) {
        /* Probe by hash first and prefetch every cache line of the
         * candidate client's record, allow list and inline routes at once;
         * the path is split while those loads are in flight.  With 100,000
         * clients the record is rarely cached, and one overlapped miss is
         * far cheaper than a chain of dependent ones.  The full jkt is
         * compared below before the client is believed. */
        uint64_t h = policy_hash_key(jkt, 43), pos = h & p->mask;
        for (; p->slots[pos].tag != 0; pos = (pos + 1) & p->mask) {
            if (p->slots[pos].tag == h) {
                const char *rec = (const char *)p->slots[pos].client;
                for (i = 0; i < p->slots[pos].span + 64; i += 64)
                    __builtin_prefetch(rec + i);
                break;
            }
        }
    }
    mlen = strlen(method);
    path_ok = mlen > 0 && policy_path_split(path, &pp) == DPOP_OK;
    if (!(c = policy_index_find(p, jkt, strlen(jkt))))
        return; /* unknown key: no client, no rule */
    d->client = c->name;
    if (c->revoked) {
        deny(d, DPOP_REASON_KEY_REVOKED);
        snprintf(d->rule, sizeof d->rule, "client %s is revoked", c->name);
        return;
    }
    /* not_before is inclusive, not_after exclusive: [not_before, not_after) */
    if (c->has_nb && now < c->not_before) {
        deny(d, DPOP_REASON_KEY_REVOKED);
        policy_time_format(c->not_before, when, sizeof when);
        snprintf(d->rule, sizeof d->rule, "client %s is not valid before %s (not_before)", c->name,
                 when);
        return;
    }
    if (c->has_na && now >= c->not_after) {
        deny(d, DPOP_REASON_KEY_REVOKED);
        policy_time_format(c->not_after, when, sizeof when);
        snprintf(d->rule, sizeof d->rule, "client %s expired at %s (not_after)", c->name, when);
        return;
    }
    if (!path_ok) {
        snprintf(d->rule, sizeof d->rule,
                 "client %s: the method or path is not acceptable (default deny)", c->name);
        return;
    }
    bit = policy_method_bit(method, mlen);
    for (i = 0; i < c->nallow; i++) {
        const policy_routeset_t *set = c->allow[i];
        for (j = 0; j < set->nroutes; j++) {
            const policy_route_t *r = &set->routes[j];
            if (!policy_route_method_match(r, method, bit))
                continue;
            for (k = 0; k < r->npats; k++) {
                if (!policy_pattern_match(&r->pats[k], &pp))
                    continue;
                d->allow = 1;
                d->reason = DPOP_REASON_NONE;
                if (set->name)
                    snprintf(d->rule, sizeof d->rule, "client %s allow[%u] route set %s: %s %s",
                             c->name, i, set->name, r->methods_text, r->pats[k].text);
                else
                    snprintf(d->rule, sizeof d->rule, "client %s allow[%u]: %s %s", c->name, i,
                             r->methods_text, r->pats[k].text);
                return;
            }
        }
    }
    snprintf(d->rule, sizeof d->rule, "client %s: no allow entry matches (default deny)", c->name);
}
