/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_load.c: policy file -> validated, compiled policy_t.
 *
 * Reads the YAML tree (policy_tree.c) against the fixed schema of
 * DESIGN.md "Policy YAML" and reports *every* problem with its position, so
 * `dpop-policy check` can list them all in one pass; only an error-free
 * file is compiled into a policy.  Route sets are compiled once and shared
 * by every client that names them.  A failed load never returns a partial
 * policy: the caller keeps the previous one (fail closed, never open).
 */
#include "policy_internal.h"
#include "dpop_b64.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a tiny name table (route sets, client names) used while loading ---- */
typedef struct {
    uint64_t h;
    const char *s; /* the name (policy arena: outlives the streamed tree) */
    uint32_t len;
    uint32_t val;
    int line; /* where it was defined, for duplicate messages */
} name_slot_t;

typedef struct {
    name_slot_t *slots;
    uint64_t mask;
    size_t used;
} name_tab_t;

static int names_init(name_tab_t *t, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 2)
        cap <<= 1;
    t->slots = calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    t->used = 0;
    return t->slots ? DPOP_OK : DPOP_ERR;
}

static name_slot_t *names_find(const name_tab_t *t, uint64_t h, const char *s, size_t len)
{
    uint64_t i;
    for (i = h & t->mask;; i = (i + 1) & t->mask) {
        name_slot_t *e = &t->slots[i];
        if (!e->s || (e->h == h && e->len == len && memcmp(e->s, s, len) == 0))
            return e;
    }
}

/* Keep the table at most half full (it grows with the streamed clients). */
static int names_grow(name_tab_t *t)
{
    name_tab_t n;
    size_t i;
    if ((t->used + 1) * 2 <= t->mask + 1)
        return DPOP_OK;
    if (names_init(&n, (t->mask + 1)) != DPOP_OK)
        return DPOP_ERR;
    for (i = 0; i <= t->mask; i++)
        if (t->slots[i].s)
            *names_find(&n, t->slots[i].h, t->slots[i].s, t->slots[i].len) = t->slots[i];
    n.used = t->used;
    free(t->slots);
    *t = n;
    return DPOP_OK;
}

/* Insert s (which must outlive the table); returns the existing entry
 * when the name is already there, NULL when inserted or on ENOMEM
 * (*oom set). */
static const name_slot_t *names_put(name_tab_t *t, const char *s, uint32_t len, uint32_t val,
                                    int line, int *oom)
{
    uint64_t h = policy_hash_key(s, len);
    name_slot_t *e = NULL;
    if (names_grow(t) != DPOP_OK) {
        *oom = 1;
        return NULL;
    }
    e = names_find(t, h, s, len);
    if (e->s)
        return e;
    e->h = h;
    e->s = s;
    e->len = len;
    e->val = val;
    e->line = line;
    t->used++;
    return NULL;
}

static const name_slot_t *names_get(const name_tab_t *t, const char *s, size_t len)
{
    const name_slot_t *e = NULL;
    if (!t->slots)
        return NULL;
    e = names_find(t, policy_hash_key(s, len), s, len);
    return e->s ? e : NULL;
}

/* A route set name used before route_sets was read (clients written
 * first): resolved when the whole file has been read. */
typedef struct {
    const policy_routeset_t **slot;
    const char *name;
    uint32_t len;
    int line, column;
} deferred_ref_t;

/* ---- loader state ---- */
typedef struct {
    const char *name;
    policy_errors_t *errs;
    policy_t *p;
    name_tab_t sets;      /* route set name -> index in p->sets */
    uint8_t *set_ok;      /* per route set: compiled without error */
    int sets_read;        /* the route_sets value has been read */
    name_tab_t clients;   /* client name -> index */
    name_tab_t jkts;      /* jkt -> client index (one key, one client) */
    policy_arena_t build; /* the load form's routes: freed once packed */
    size_t clients_cap;   /* p->clients capacity */
    int too_many;         /* the client limit was reported */
    deferred_ref_t *deferred;
    size_t ndeferred, deferred_cap;
    int oom;
} loader_t;

/* One positioned entry (FILE:LINE:COLUMN: message) in to: an error of the
 * load (lerr) or a warning of a policy that loads (lwarn).  policy_errors_add
 * caps how many a list keeps. */
static int lnote(policy_errors_t *to, const loader_t *L, const pnode_t *n, const char *fmt,
                 va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 0)))
#endif
    ;

static int lnote(policy_errors_t *to, const loader_t *L, const pnode_t *n, const char *fmt,
                 va_list ap)
{
    char buf[480];
    vsnprintf(buf, sizeof buf, fmt, ap);
    return policy_errors_add(to, L->name, n ? n->line : 0, n ? n->column : 0, "%s", buf);
}

static int lerr(loader_t *L, const pnode_t *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int lerr(loader_t *L, const pnode_t *n, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = lnote(L->errs, L, n, fmt, ap);
    va_end(ap);
    return rc;
}

/* A warning: the policy loads, but `dpop-policy check` points at this. */
static void lwarn(loader_t *L, const pnode_t *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void lwarn(loader_t *L, const pnode_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)lnote(&L->p->warnings, L, n, fmt, ap);
    va_end(ap);
}

static int oom(loader_t *L)
{
    if (!L->oom)
        policy_errors_add(L->errs, L->name, 0, 0, "out of memory while compiling the policy");
    L->oom = 1;
    return DPOP_ERR;
}

static const char *kind_of(const pnode_t *n)
{
    if (n->type == PNODE_MAP)
        return "a mapping";
    if (n->type == PNODE_SEQ)
        return "a list";
    if (n->len == 0 && n->plain)
        return "empty";
    return "a single value";
}

/* Type check; a node already reported (bad) fails silently. */
static int want(loader_t *L, const pnode_t *n, pnode_type_t type, const char *what)
{
    static const char *const names[] = {"", "a single value", "a list", "a mapping"};
    if (n->bad)
        return 0;
    if (n->type == type)
        return 1;
    lerr(L, n, "%s must be %s, but it is %s", what, names[type], kind_of(n));
    return 0;
}

typedef struct {
    const char *key;
    const pnode_t *val;
    const pnode_t *keynode;
} field_t;

/* Match a mapping's keys against the allowed ones: unknown and duplicate
 * keys are errors.  f[] receives the values. */
static void map_fields(loader_t *L, const pnode_t *map, field_t *f, size_t nf, const char *where)
{
    const pnode_t *k = NULL;
    size_t i;
    for (k = map->first; k && k->next; k = k->next->next) {
        const pnode_t *v = k->next;
        if (k->bad)
            continue;
        if (k->type != PNODE_SCALAR) {
            lerr(L, k, "a key in %s must be a plain word, but it is %s", where, kind_of(k));
            continue;
        }
        for (i = 0; i < nf; i++)
            if (strlen(f[i].key) == k->len && memcmp(f[i].key, k->str, k->len) == 0)
                break;
        if (i == nf) {
            char list[160] = "";
            size_t j;
            for (j = 0; j < nf; j++) {
                strncat(list, f[j].key, sizeof list - strlen(list) - 1);
                if (j + 1 < nf)
                    strncat(list, ", ", sizeof list - strlen(list) - 1);
            }
            lerr(L, k, "unknown key '%.64s' in %s; the keys allowed here are: %s", k->str, where,
                 list);
            continue;
        }
        if (f[i].keynode) {
            lerr(L, k, "duplicate key '%s' in %s (first at line %d)", f[i].key, where,
                 f[i].keynode->line);
            continue;
        }
        f[i].keynode = k;
        f[i].val = v;
    }
}

static int is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* Route set names: letters, digits, '-', '_', '.' (they are referenced as
 * bare words in allow lists). */
static int check_set_name(loader_t *L, const pnode_t *k)
{
    uint32_t i;
    if (k->len == 0 || k->len > POLICY_MAX_NAME) {
        lerr(L, k, "a route set name must be 1 to %d characters", POLICY_MAX_NAME);
        return 0;
    }
    for (i = 0; i < k->len; i++)
        if (!is_name_char((unsigned char)k->str[i])) {
            lerr(L, k, "route set name '%.64s' may only use letters, digits, '-', '_' and '.'",
                 k->str);
            return 0;
        }
    return 1;
}

/* Client names end up in DPOP_CLIENT, the audit store and reports: visible
 * ASCII without quotes or backslashes, so they never need escaping. */
static int check_client_name(loader_t *L, const pnode_t *n)
{
    uint32_t i;
    if (n->len == 0 || n->len > POLICY_MAX_NAME) {
        lerr(L, n, "a client name must be 1 to %d characters", POLICY_MAX_NAME);
        return 0;
    }
    for (i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)n->str[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '\\' || c == '`') {
            lerr(L, n,
                 "client name '%.64s' may only use visible ASCII characters without "
                 "spaces, quotes or backslashes",
                 n->str);
            return 0;
        }
    }
    return 1;
}

/* methods: [GET, POST] -> mask + extension strings + "GET,POST" */
static int compile_methods(loader_t *L, const pnode_t *list, policy_route_t *r)
{
    const pnode_t *m = NULL;
    char why[256];
    const char *ext[POLICY_MAX_METHODS];
    size_t textlen = 0, k = 0;
    int ok = 1;
    char *text = NULL;

    if (!want(L, list, PNODE_SEQ, "methods"))
        return 0;
    if (list->count == 0)
        return lerr(L, list, "methods is empty: list at least one method, or '*' for any"), 0;
    if (list->count > POLICY_MAX_METHODS)
        return lerr(L, list, "a route lists at most %u methods", POLICY_MAX_METHODS), 0;
    for (m = list->first; m; m = m->next) {
        uint32_t bit;
        if (!want(L, m, PNODE_SCALAR, "each method")) {
            ok = 0;
            continue;
        }
        if (policy_method_check(m->str, m->len, why, sizeof why) != DPOP_OK) {
            lerr(L, m, "%s", why);
            ok = 0;
            continue;
        }
        textlen += m->len + 1;
        bit = (m->len == 1 && m->str[0] == '*') ? POLICY_M_ANY : policy_method_bit(m->str, m->len);
        if (bit) {
            if (r->mask & bit) {
                lerr(L, m, "method '%s' is listed twice", m->str);
                ok = 0;
            }
            r->mask |= bit;
        }
        else {
            for (k = 0; k < r->next; k++)
                if (strcmp(ext[k], m->str) == 0)
                    break;
            if (k < r->next) {
                lerr(L, m, "method '%s' is listed twice", m->str);
                ok = 0;
                continue;
            }
            ext[r->next++] = m->str; /* copied into the policy arena below */
        }
    }
    if (ok && (r->mask & POLICY_M_ANY) && list->count > 1) {
        lerr(L, list, "'*' already means every method: list it alone");
        ok = 0;
    }
    if (!ok)
        return 0;
    text = policy_arena_alloc(&L->build, textlen + 1);
    if (!text)
        return oom(L), 0;
    for (m = list->first; m; m = m->next) {
        if (text[0])
            strcat(text, ",");
        strcat(text, m->str);
    }
    r->methods_text = text;
    r->ext = NULL;
    if (r->next) {
        /* the tree is freed after loading: keep our own copies */
        const char **own = policy_arena_alloc(&L->build, r->next * sizeof *own);
        if (!own)
            return oom(L), 0;
        for (k = 0; k < r->next; k++)
            if (!(own[k] = policy_arena_strndup(&L->build, ext[k], strlen(ext[k]))))
                return oom(L), 0;
        r->ext = own;
    }
    return 1;
}

static int compile_paths(loader_t *L, const pnode_t *list, policy_route_t *r)
{
    const pnode_t *s = NULL;
    policy_pat_t *pats = NULL;
    char why[320];
    int ok = 1;

    if (!want(L, list, PNODE_SEQ, "paths"))
        return 0;
    if (list->count == 0)
        return lerr(L, list,
                    "paths is empty: list at least one path pattern, "
                    "e.g. \"/api/**\""),
               0;
    if (list->count > POLICY_MAX_PATHS)
        return lerr(L, list, "a route lists at most %u paths", POLICY_MAX_PATHS), 0;
    pats = policy_arena_alloc(&L->build, list->count * sizeof *pats);
    if (!pats)
        return oom(L), 0;
    for (s = list->first; s; s = s->next) {
        if (!want(L, s, PNODE_SCALAR, "each path")) {
            ok = 0;
            continue;
        }
        if (policy_pattern_compile(&L->build, s->str, s->len, &pats[r->npats], why, sizeof why) !=
            DPOP_OK) {
            lerr(L, s, "%s", why);
            ok = 0;
            continue;
        }
        r->npats++;
    }
    r->pats = pats;
    return ok;
}

/* One {methods, paths} mapping. */
static int compile_route(loader_t *L, const pnode_t *n, policy_route_t *r, const char *where)
{
    field_t f[] = {{"methods", NULL, NULL}, {"paths", NULL, NULL}};
    int ok = 1;
    if (!want(L, n, PNODE_MAP, where))
        return 0;
    map_fields(L, n, f, 2, "a route");
    if (!f[0].val) {
        lerr(L, n, "this route has no 'methods' (list the HTTP methods, or '*' for any)");
        ok = 0;
    }
    else if (!compile_methods(L, f[0].val, r)) {
        ok = 0;
    }
    if (!f[1].val) {
        lerr(L, n, "this route has no 'paths' (list path patterns such as \"/api/**\")");
        ok = 0;
    }
    else if (!compile_paths(L, f[1].val, r)) {
        ok = 0;
    }
    return ok;
}

static void load_route_sets(loader_t *L, const pnode_t *map)
{
    const pnode_t *k = NULL;
    size_t n = 0;
    policy_t *p = L->p;

    if (!want(L, map, PNODE_MAP, "route_sets (a mapping of names to lists of routes)"))
        return;
    if (map->count / 2 > POLICY_MAX_ROUTE_SETS) {
        lerr(L, map, "a policy holds at most %u route sets", POLICY_MAX_ROUTE_SETS);
        return;
    }
    p->sets = policy_arena_alloc(&L->build, (map->count / 2 + 1) * sizeof *p->sets);
    L->set_ok = calloc(map->count / 2 + 1, 1);
    if (!p->sets || !L->set_ok || names_init(&L->sets, map->count / 2) != DPOP_OK) {
        oom(L);
        return;
    }
    for (k = map->first; k && k->next; k = k->next->next) {
        const pnode_t *v = k->next, *item = NULL;
        const name_slot_t *dup = NULL;
        policy_routeset_t *set = &p->sets[n];
        policy_route_t *routes = NULL;
        int ok = 1, nomem = 0;

        if (k->bad || !want(L, k, PNODE_SCALAR, "a route set name") || !check_set_name(L, k))
            continue;
        if (!(set->name = policy_arena_strndup(&p->arena, k->str, k->len))) {
            oom(L);
            return;
        }
        if ((dup = names_put(&L->sets, set->name, k->len, (uint32_t)n, k->line, &nomem)) != NULL) {
            lerr(L, k, "route set '%s' is defined twice (first at line %d)", k->str, dup->line);
            continue;
        }
        if (nomem) {
            oom(L);
            return;
        }
        set->line = k->line;
        n++;
        if (!want(L, v, PNODE_SEQ, "a route set (a list of {methods, paths} routes)"))
            continue;
        if (v->count == 0) {
            lerr(L, v, "route set '%s' is empty: give it at least one route", set->name);
            continue;
        }
        if (v->count > POLICY_MAX_ROUTES) {
            lerr(L, v, "a route set holds at most %u routes", POLICY_MAX_ROUTES);
            continue;
        }
        routes = policy_arena_alloc(&L->build, v->count * sizeof *routes);
        if (!routes) {
            oom(L);
            return;
        }
        for (item = v->first; item; item = item->next)
            if (!compile_route(L, item, &routes[set->nroutes++], "each route of a route set"))
                ok = 0;
        set->routes = routes;
        L->set_ok[n - 1] = (uint8_t)ok;
        p->nroutes += set->nroutes;
    }
    p->nsets = n;
}

static void on_route_sets(void *ctx, const pnode_t *value)
{
    loader_t *L = ctx;
    L->sets_read = 1;
    if (!L->oom)
        load_route_sets(L, value);
}

static int load_time(loader_t *L, const pnode_t *v, const char *what, int64_t *out)
{
    const char *why = NULL;
    if (!want(L, v, PNODE_SCALAR, what))
        return 0;
    if (policy_time_parse(v->str, v->len, out, &why) != DPOP_OK) {
        lerr(L, v, "%s '%.40s' is not a valid timestamp: %s", what, v->str, why);
        return 0;
    }
    return 1;
}

static void load_jkt(loader_t *L, const pnode_t *v, int *ok)
{
    uint32_t i;
    if (!want(L, v, PNODE_SCALAR, "jkt")) {
        *ok = 0;
        return;
    }
    if (dpop_b64url_is_sha256(v->str, v->len))
        return;
    *ok = 0;
    for (i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->str[i];
        if (!is_name_char(c) || c == '.') {
            if (c == '=')
                lerr(L, v,
                     "jkt must be unpadded base64url (RFC 7638 thumbprint): remove "
                     "the '=' padding");
            else if (c > 0x20 && c < 0x7f)
                lerr(L, v,
                     "jkt contains '%c', which is not a base64url character "
                     "(RFC 4648 §5 uses A-Z a-z 0-9 - _; '+' and '/' are plain "
                     "base64)",
                     c);
            else
                lerr(L, v,
                     "jkt contains a space or a non-ASCII byte; a thumbprint is 43 "
                     "base64url characters");
            return;
        }
    }
    if (v->len != 43)
        lerr(L, v,
             "jkt must be a SHA-256 JWK thumbprint (RFC 7638): 43 base64url "
             "characters, but this one has %u",
             v->len);
    else
        lerr(L, v,
             "jkt is not the canonical base64url encoding of 32 bytes: its last "
             "character carries stray bits (RFC 4648 §3.5)");
}

static int load_revoked(loader_t *L, const pnode_t *v, uint8_t *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    size_t i;
    if (!want(L, v, PNODE_SCALAR, "revoked"))
        return 0;
    for (i = 0; i < 3 && v->plain; i++) {
        if (strcmp(v->str, yes[i]) == 0)
            return *out = 1, 1;
        if (strcmp(v->str, no[i]) == 0)
            return *out = 0, 1;
    }
    lerr(L, v, "revoked must be true or false%s", v->plain ? "" : " (without quotes)");
    return 0;
}

static int defer_ref(loader_t *L, const policy_routeset_t **slot, const pnode_t *item)
{
    deferred_ref_t *d = NULL;
    if (L->ndeferred == L->deferred_cap) {
        size_t cap = L->deferred_cap ? L->deferred_cap * 2 : 16;
        deferred_ref_t *n = realloc(L->deferred, cap * sizeof *n);
        if (!n)
            return oom(L), 0;
        L->deferred = n;
        L->deferred_cap = cap;
    }
    d = &L->deferred[L->ndeferred];
    if (!(d->name = policy_arena_strndup(&L->build, item->str, item->len)))
        return oom(L), 0;
    d->slot = slot;
    d->len = item->len;
    d->line = item->line;
    d->column = item->column;
    L->ndeferred++;
    return 1;
}

static void resolve_deferred(loader_t *L)
{
    size_t i;
    policy_t *p = L->p;
    for (i = 0; i < L->ndeferred; i++) {
        const deferred_ref_t *d = &L->deferred[i];
        const name_slot_t *s = names_get(&L->sets, d->name, d->len);
        if (!s)
            policy_errors_add(L->errs, L->name, d->line, d->column, "unknown route set '%.64s'; %s",
                              d->name,
                              p->nsets ? "define it under route_sets or fix the name"
                                       : "this policy has no route_sets section");
        else if (L->set_ok[s->val])
            *d->slot = &p->sets[s->val];
        /* else: its own errors were reported where it is defined */
    }
}

static void load_allow(loader_t *L, const pnode_t *list, policy_client_t *c, int *ok)
{
    const pnode_t *item = NULL;
    const policy_routeset_t **allow = NULL;
    policy_t *p = L->p;

    if (!want(L, list, PNODE_SEQ, "allow (a list of route set names and routes)")) {
        *ok = 0;
        return;
    }
    if (list->count == 0) {
        /* Valid (DESIGN.md lists what fails a load, and this is not one of
         * them): the client is registered and every request with its key
         * is denied.  Operators use it while onboarding a key or during an
         * incident; `check` says so, since it may also be a mistake, and
         * names the reason `explain` and the module give: policy_decide
         * judges the key (revoked, then its window: key_revoked) before
         * the allow list (policy_denied).  revoked and the window are
         * loaded before allow, whatever their order in the file. */
        const char *name = c->name ? c->name : "?";
        if (c->revoked)
            lwarn(L, list,
                  "allow is empty: client '%s' is revoked and may call nothing (every "
                  "request with its key is denied, reason key_revoked)",
                  name);
        else if (c->has_nb || c->has_na)
            lwarn(L, list,
                  "allow is empty: client '%s' is registered but may call nothing (every "
                  "request with its key is denied, reason key_revoked outside "
                  "not_before/not_after, else policy_denied)",
                  name);
        else
            lwarn(L, list,
                  "allow is empty: client '%s' is registered but may call nothing (every "
                  "request with its key is denied, reason policy_denied)",
                  name);
        return;
    }
    if (list->count > POLICY_MAX_ALLOW) {
        lerr(L, list, "a client has at most %u allow entries", POLICY_MAX_ALLOW);
        *ok = 0;
        return;
    }
    allow = policy_arena_alloc(&L->build, list->count * sizeof *allow);
    if (!allow) {
        *ok = 0;
        oom(L);
        return;
    }
    for (item = list->first; item; item = item->next) {
        if (item->bad) {
            *ok = 0;
        }
        else if (item->type == PNODE_SCALAR && !L->sets_read) {
            /* route_sets comes later in the file: look it up at the end */
            if (!defer_ref(L, &allow[c->nallow], item))
                *ok = 0;
            c->nallow++;
        }
        else if (item->type == PNODE_SCALAR) {
            const name_slot_t *s = names_get(&L->sets, item->str, item->len);
            if (!s) {
                lerr(L, item, "unknown route set '%.64s'; %s", item->str,
                     p->nsets ? "define it under route_sets or fix the name"
                              : "this policy has no route_sets section");
                *ok = 0;
            }
            else if (!L->set_ok[s->val]) {
                *ok = 0; /* its own errors were reported where it is defined */
            }
            else {
                allow[c->nallow++] = &p->sets[s->val];
            }
        }
        else if (item->type == PNODE_MAP) {
            policy_routeset_t *inl = policy_arena_alloc(&L->build, sizeof *inl);
            policy_route_t *r = policy_arena_alloc(&L->build, sizeof *r);
            if (!inl || !r) {
                *ok = 0;
                oom(L);
                return;
            }
            if (!compile_route(L, item, r, "an inline route")) {
                *ok = 0;
                continue;
            }
            inl->routes = r;
            inl->nroutes = 1;
            inl->line = item->line;
            allow[c->nallow++] = inl;
            p->nroutes++;
        }
        else {
            lerr(L, item,
                 "each allow entry is a route set name or a {methods, paths} "
                 "mapping, but this is a list");
            *ok = 0;
        }
    }
    c->allow = allow;
}

/* Room for one more client: the pointer array grows as the clients
 * stream in (their number is not known in advance). */
static int grow_clients(loader_t *L)
{
    policy_t *p = L->p;
    if (p->nclients == L->clients_cap) {
        size_t cap = L->clients_cap ? L->clients_cap * 2 : 64;
        policy_client_t **n = realloc(p->clients, cap * sizeof *n);
        if (!n)
            return DPOP_ERR;
        p->clients = n;
        L->clients_cap = cap;
    }
    return DPOP_OK;
}

static void load_client(loader_t *L, const pnode_t *n)
{
    field_t f[] = {{"name", NULL, NULL},      {"jkt", NULL, NULL},     {"not_before", NULL, NULL},
                   {"not_after", NULL, NULL}, {"revoked", NULL, NULL}, {"allow", NULL, NULL}};
    policy_t *p = L->p;
    policy_client_t *c = NULL;
    int ok = 1, nb_ok = 0, na_ok = 0;

    if (!want(L, n, PNODE_MAP, "each client"))
        return;
    if (!(c = policy_arena_alloc(&p->arena, sizeof *c)) || grow_clients(L) != DPOP_OK) {
        oom(L);
        return;
    }
    p->clients[p->nclients] = c;
    map_fields(L, n, f, 6, "a client");
    c->line = n->line;
    if (!f[0].val) {
        lerr(L, n, "this client has no 'name'");
        ok = 0;
    }
    else if (!want(L, f[0].val, PNODE_SCALAR, "name") || !check_client_name(L, f[0].val)) {
        ok = 0;
    }
    else {
        const name_slot_t *dup = NULL;
        int nomem = 0;
        if (!(c->name = policy_arena_strndup(&p->arena, f[0].val->str, f[0].val->len))) {
            oom(L);
            return;
        }
        dup =
            names_put(&L->clients, c->name, f[0].val->len, (uint32_t)p->nclients, n->line, &nomem);
        if (dup) {
            lerr(L, f[0].val, "client name '%s' is already used by the client at line %d",
                 f[0].val->str, dup->line);
            ok = 0;
        }
        if (nomem) {
            oom(L);
            return;
        }
    }
    if (!f[1].val) {
        lerr(L, n, "this client has no 'jkt' (the RFC 7638 thumbprint of its key)");
        ok = 0;
    }
    else {
        int jok = 1;
        load_jkt(L, f[1].val, &jok);
        if (jok) {
            const name_slot_t *o = NULL;
            int nomem = 0;
            memcpy(c->jkt, f[1].val->str, 43);
            c->jkt[43] = '\0';
            o = names_put(&L->jkts, c->jkt, 43, (uint32_t)p->nclients, n->line, &nomem);
            if (nomem) {
                oom(L);
                return;
            }
            if (o) {
                const policy_client_t *first = p->clients[o->val];
                lerr(L, f[1].val,
                     "jkt is already used by client '%s' (line %d); a key "
                     "belongs to exactly one client",
                     first->name ? first->name : "?", first->line);
                ok = 0;
            }
        }
        else {
            ok = 0;
        }
    }
    if (f[2].val && !(nb_ok = load_time(L, f[2].val, "not_before", &c->not_before)))
        ok = 0;
    if (f[3].val && !(na_ok = load_time(L, f[3].val, "not_after", &c->not_after)))
        ok = 0;
    c->has_nb = (uint8_t)nb_ok;
    c->has_na = (uint8_t)na_ok;
    if (nb_ok && na_ok && c->not_after <= c->not_before) {
        lerr(L, f[3].val, "not_after (%.40s) must be later than not_before (%.40s)", f[3].val->str,
             f[2].val->str);
        ok = 0;
    }
    if (f[4].val && !load_revoked(L, f[4].val, &c->revoked))
        ok = 0;
    if (!f[5].val) {
        lerr(L, n,
             "this client has no 'allow' list (route set names or {methods, paths} "
             "routes)");
        ok = 0;
    }
    else {
        load_allow(L, f[5].val, c, &ok);
    }
    /* the slot is kept even when the client has errors: the jkt and name
     * tables and duplicate messages refer to it; the load fails anyway */
    (void)ok;
    p->nclients++;
}

static void on_client(void *ctx, const pnode_t *item)
{
    loader_t *L = ctx;
    if (L->oom)
        return;
    if (L->p->nclients >= POLICY_MAX_CLIENTS) {
        if (!L->too_many)
            lerr(L, item, "a policy holds at most %u clients", POLICY_MAX_CLIENTS);
        L->too_many = 1;
        return;
    }
    load_client(L, item);
}

static void load_top(loader_t *L, const pnode_t *root)
{
    field_t f[] = {{"version", NULL, NULL}, {"route_sets", NULL, NULL}, {"clients", NULL, NULL}};
    if (!want(L, root, PNODE_MAP,
              "the policy (a mapping with version, route_sets and "
              "clients)"))
        return;
    map_fields(L, root, f, 3, "the policy");
    if (!f[0].val)
        lerr(L, root, "the policy has no 'version'; add \"version: 1\"");
    else if (!f[0].val->bad && !(f[0].val->type == PNODE_SCALAR && f[0].val->plain &&
                                 strcmp(f[0].val->str, "1") == 0))
        lerr(L, f[0].val, "version must be 1, the only policy format this release reads");
    /* route_sets and the clients were compiled while the file streamed in
     * (on_route_sets, on_client); here only what is left to say */
    if (!f[2].val)
        lerr(L, root, "the policy has no 'clients' list");
    else
        want(L, f[2].val, PNODE_SEQ, "clients (a list of clients)");
}

/* Errors come from two passes (YAML reading, then the schema): list them
 * in file order, as an editor would walk them.  Stable: equal positions
 * keep the order they were found in; errors without a position (line 0)
 * come first. */
static int cmp_pos(const void *a, const void *b)
{
    const policy_error_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return 0;
}

static void sort_errors(policy_errors_t *errs, size_t from)
{
    size_t i, n = errs->count - from;
    policy_error_t *v = NULL;
    if (n < 2)
        return; /* also: items may be NULL (no errors at all) */
    v = errs->items + from;
    /* insertion sort: stable, and the list is nearly sorted already */
    for (i = 1; i < n; i++) {
        policy_error_t e = v[i];
        size_t j = i;
        while (j > 0 && cmp_pos(&v[j - 1], &e) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = e;
    }
}

void policy_free(policy_t *p)
{
    if (!p)
        return;
    free(p->clients);
    free(p->block);
    free(p->setrefs);
    free(p->specs);
    policy_errors_clear(&p->warnings);
    policy_arena_free(&p->arena);
    free(p);
}

const policy_errors_t *policy_warnings(const policy_t *p)
{
    return p ? &p->warnings : NULL;
}

int policy_load_buffer(const char *name, const char *buf, size_t len, policy_t **out,
                       policy_errors_t *errs)
{
    policy_arena_t tree_arena;
    policy_tree_hooks_t hooks;
    pnode_t *root = NULL;
    loader_t L;
    size_t before = errs->count;
    policy_t *p = NULL;

    *out = NULL;
    if (!name)
        name = "(policy)";
    if (len > POLICY_MAX_FILE_BYTES)
        return policy_errors_add(errs, name, 0, 0, "the policy is %zu bytes; the limit is %u bytes",
                                 len, POLICY_MAX_FILE_BYTES);
    policy_arena_init(&tree_arena);
    memset(&L, 0, sizeof L);
    if (!(p = calloc(1, sizeof *p))) {
        policy_errors_add(errs, name, 0, 0, "out of memory while compiling the policy");
        goto done;
    }
    policy_arena_init(&p->arena);
    policy_arena_init(&L.build);
    L.name = name;
    L.errs = errs;
    L.p = p;
    hooks.on_route_sets = on_route_sets;
    hooks.on_client = on_client;
    hooks.ctx = &L;
    if (names_init(&L.clients, 64) != DPOP_OK || names_init(&L.jkts, 64) != DPOP_OK ||
        grow_clients(&L) != DPOP_OK) {
        oom(&L);
        goto done;
    }
    if (policy_tree_parse(name, buf ? buf : "", buf ? len : 0, &tree_arena, &hooks, &root, errs) !=
        DPOP_OK)
        goto done;
    load_top(&L, root);
    resolve_deferred(&L);
    if (errs->count == before && !L.oom) {
        /* only an error-free policy is packed into its decision form */
        if (policy_pack(p) != DPOP_OK) {
            oom(&L);
            goto done;
        }
        *out = p;
        p = NULL;
    }
done:
    free(L.sets.slots);
    free(L.clients.slots);
    free(L.jkts.slots);
    policy_arena_free(&L.build);
    free(L.set_ok);
    free(L.deferred);
    policy_free(p);
    policy_arena_free(&tree_arena);
    if (!*out && errs->count == before)
        policy_errors_add(errs, name, 0, 0, "the policy could not be loaded");
    sort_errors(errs, before);
    return *out ? DPOP_OK : DPOP_ERR;
}

int policy_load_file(const char *path, policy_t **out, policy_errors_t *errs)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = -1, rc = DPOP_ERR;

    *out = NULL;
    if (!path)
        return policy_errors_add(errs, "(policy)", 0, 0, "no policy file given");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return policy_errors_add(errs, path, 0, 0, "cannot open the policy file: %s",
                                 strerror(errno));
    if (fstat(fd, &st) != 0) {
        policy_errors_add(errs, path, 0, 0, "cannot read the policy file: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        policy_errors_add(errs, path, 0, 0, "the policy is not a regular file");
        goto done;
    }
    if ((uint64_t)st.st_size > POLICY_MAX_FILE_BYTES) {
        policy_errors_add(errs, path, 0, 0, "the policy is %lld bytes; the limit is %u bytes",
                          (long long)st.st_size, POLICY_MAX_FILE_BYTES);
        goto done;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        policy_errors_add(errs, path, 0, 0, "out of memory reading the policy file");
        goto done;
    }
    /* read up to the size fstat saw, +1 to notice a file that grew */
    while (got <= (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            policy_errors_add(errs, path, 0, 0, "cannot read the policy file: %s", strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > (size_t)st.st_size) {
        policy_errors_add(errs, path, 0, 0,
                          "the policy file changed while it was read; "
                          "write it to a temporary file and rename it");
        goto done;
    }
    rc = policy_load_buffer(path, buf, got, out, errs);
done:
    free(buf);
    close(fd);
    return rc;
}

size_t policy_client_count(const policy_t *p)
{
    return p ? p->nclients : 0;
}

size_t policy_memory_bytes(const policy_t *p)
{
    if (!p)
        return 0;
    return sizeof *p + p->arena.total + p->nclients * sizeof *p->clients + p->block_bytes +
           p->nsets * sizeof *p->setrefs + p->nspecs * sizeof *p->specs;
}
