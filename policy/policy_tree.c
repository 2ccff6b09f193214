/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_tree.c: YAML text -> a small node tree with positions (libyaml
 * event API).
 *
 * The event API rather than yaml_parser_load() because we want every limit
 * enforced while reading: nesting depth, node count, scalar size.  Anchors
 * and aliases are refused outright: a policy must say plainly what each key
 * may do (route_sets are the sharing mechanism), and refusing aliases makes
 * "billion laughs" expansion impossible by construction.  Explicit tags are
 * refused too, so "!!str 1" style tricks cannot change how a value reads.
 * This file only reads YAML; what the keys mean is policy_load.c's job.
 */
#include "policy_internal.h"

#include <string.h>
#include <yaml.h>

typedef struct {
    const char *name;
    policy_errors_t *errs;
    policy_arena_t *a;
    const policy_tree_hooks_t *hooks;
    policy_arena_t item_arena; /* the clients item being read; reused */
    pnode_t *last_key;         /* the top-level key whose value comes next */
    pnode_t *clients_seq;      /* the streamed `clients` list */
    int clients_depth;         /* t.depth while that list is innermost; 0 = closed */
    pnode_t *route_sets;       /* the streamed `route_sets` value */
    int clients_seen, route_sets_seen;
    pnode_t *root;
    pnode_t *stack[POLICY_MAX_DEPTH]; /* open collections */
    pnode_t *tail[POLICY_MAX_DEPTH];  /* their last child, for O(1) append */
    int depth;
    size_t nodes;
    int docs;
    int failed; /* stop: a limit was hit or memory ran out */
} tree_t;

static int mark_line(const yaml_mark_t *m)
{
    /* libyaml marks are 0-based; people count from 1 */
    return m->line >= (size_t)INT32_MAX ? INT32_MAX : (int)m->line + 1;
}

static int mark_col(const yaml_mark_t *m)
{
    return m->column >= (size_t)INT32_MAX ? INT32_MAX : (int)m->column + 1;
}

static void tree_err_at(tree_t *t, const yaml_mark_t *m, const char *msg, const char *arg)
{
    policy_errors_add(t->errs, t->name, mark_line(m), mark_col(m), msg, arg);
}

/* Nodes of a clients item live in the reusable item arena. */
static policy_arena_t *node_arena(tree_t *t)
{
    return t->clients_depth > 0 && t->depth >= t->clients_depth ? &t->item_arena : t->a;
}

static void item_done(tree_t *t, const pnode_t *item)
{
    if (t->hooks && t->hooks->on_client && !t->failed)
        t->hooks->on_client(t->hooks->ctx, item);
    policy_arena_reset(&t->item_arena);
}

static void route_sets_done(tree_t *t, const pnode_t *value)
{
    if (t->hooks && t->hooks->on_route_sets && !t->failed)
        t->hooks->on_route_sets(t->hooks->ctx, value);
}

static pnode_t *new_node(tree_t *t, const yaml_event_t *ev, pnode_type_t type)
{
    pnode_t *n = NULL;
    if (++t->nodes > POLICY_MAX_NODES) {
        policy_errors_add(t->errs, t->name, mark_line(&ev->start_mark), mark_col(&ev->start_mark),
                          "the policy has more than %u YAML nodes; it is too large",
                          POLICY_MAX_NODES);
        t->failed = 1;
        return NULL;
    }
    n = policy_arena_alloc(node_arena(t), sizeof(*n));
    if (!n) {
        policy_errors_add(t->errs, t->name, 0, 0, "out of memory while reading the policy");
        t->failed = 1;
        return NULL;
    }
    n->type = (uint8_t)type;
    n->line = mark_line(&ev->start_mark);
    n->column = mark_col(&ev->start_mark);
    return n;
}

/* Attach n to the innermost open collection, or make it the document.
 * Returns 1 when n is a clients item (not linked: streamed instead). */
static int attach(tree_t *t, pnode_t *n)
{
    pnode_t *parent = NULL;
    if (t->depth == 0) {
        t->root = n;
        return 0;
    }
    parent = t->stack[t->depth - 1];
    if (t->clients_depth > 0 && t->depth == t->clients_depth) {
        parent->count++; /* the list keeps its length, not its items */
        return 1;
    }
    if (parent == t->root && parent->type == PNODE_MAP) {
        if (parent->count % 2 == 0) {
            t->last_key = n;
        }
        else if (t->last_key && t->last_key->type == PNODE_SCALAR) {
            const pnode_t *k = t->last_key;
            if (!t->clients_seen && n->type == PNODE_SEQ && strcmp(k->str, "clients") == 0) {
                t->clients_seen = 1;
                t->clients_seq = n; /* its depth is set when it is pushed */
            }
            else if (!t->route_sets_seen && strcmp(k->str, "route_sets") == 0) {
                t->route_sets_seen = 1;
                t->route_sets = n;
            }
        }
    }
    if (!parent->first)
        parent->first = n;
    else
        t->tail[t->depth - 1]->next = n;
    t->tail[t->depth - 1] = n;
    parent->count++;
    return 0;
}

/* Anchors and explicit tags on any node: refused (see the file comment).
 * Returns 1 when the node is clean. */
static int check_props(tree_t *t, const yaml_event_t *ev, const yaml_char_t *anchor,
                       const yaml_char_t *tag)
{
    int ok = 1;
    if (anchor) {
        tree_err_at(t, &ev->start_mark,
                    "YAML anchors (&%.64s) are not allowed in a policy; use route_sets to "
                    "share routes",
                    (const char *)anchor);
        ok = 0;
    }
    if (tag) {
        tree_err_at(t, &ev->start_mark, "explicit YAML tags (%.64s) are not allowed in a policy",
                    (const char *)tag);
        ok = 0;
    }
    return ok;
}

static void on_scalar(tree_t *t, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    pnode_t *n = new_node(t, ev, PNODE_SCALAR);
    if (!n)
        return;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!check_props(t, ev, ev->data.scalar.anchor, ev->data.scalar.tag))
        n->bad = 1;
    if (len > POLICY_MAX_SCALAR) {
        policy_errors_add(t->errs, t->name, n->line, n->column,
                          "this value is %zu bytes long; the limit is %d", len, POLICY_MAX_SCALAR);
        n->bad = 1;
        len = 0;
    }
    else if (memchr(v, '\0', len)) {
        /* a "\0" escape: C strings would silently cut the value */
        policy_errors_add(t->errs, t->name, n->line, n->column,
                          "this value contains a NUL character");
        n->bad = 1;
        len = 0;
    }
    n->str = policy_arena_strndup(node_arena(t), v, len);
    n->len = (uint32_t)len;
    if (!n->str) {
        policy_errors_add(t->errs, t->name, 0, 0, "out of memory while reading the policy");
        t->failed = 1;
        return;
    }
    if (attach(t, n))
        item_done(t, n); /* a scalar where a client should be */
    else if (n == t->route_sets)
        route_sets_done(t, n);
}

static void on_start(tree_t *t, const yaml_event_t *ev, pnode_type_t type,
                     const yaml_char_t *anchor, const yaml_char_t *tag)
{
    pnode_t *n = NULL;
    if (t->depth >= POLICY_MAX_DEPTH) {
        policy_errors_add(t->errs, t->name, mark_line(&ev->start_mark), mark_col(&ev->start_mark),
                          "the YAML is nested deeper than %d levels; a policy needs at most 6",
                          POLICY_MAX_DEPTH);
        t->failed = 1;
        return;
    }
    n = new_node(t, ev, type);
    if (!n)
        return;
    if (!check_props(t, ev, anchor, tag))
        n->bad = 1;
    attach(t, n);
    t->stack[t->depth] = n;
    t->tail[t->depth] = NULL;
    t->depth++;
    if (n == t->clients_seq)
        t->clients_depth = t->depth;
}

static void on_end(tree_t *t)
{
    pnode_t *n = NULL;
    if (t->depth == 0)
        return;
    n = t->stack[--t->depth];
    if (n == t->clients_seq) {
        t->clients_depth = 0; /* closed: later nodes are ordinary again */
    }
    else if (t->clients_depth > 0 && t->depth == t->clients_depth) {
        item_done(t, n);
    }
    else if (n == t->route_sets) {
        route_sets_done(t, n);
    }
}

int policy_tree_parse(const char *name, const char *buf, size_t len, policy_arena_t *a,
                      const policy_tree_hooks_t *hooks, pnode_t **root, policy_errors_t *errs)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    tree_t t;
    int done = 0;

    memset(&t, 0, sizeof t);
    t.name = name;
    t.errs = errs;
    t.a = a;
    t.hooks = hooks;
    policy_arena_init(&t.item_arena);
    *root = NULL;
    if (!yaml_parser_initialize(&parser))
        return policy_errors_add(errs, name, 0, 0, "out of memory while reading the policy");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    while (!done && !t.failed) {
        if (!yaml_parser_parse(&parser, &ev)) {
            /* YAML syntax: libyaml says what and where; nothing after it can
             * be trusted, so parsing stops here */
            policy_errors_add(errs, name, mark_line(&parser.problem_mark),
                              mark_col(&parser.problem_mark), "YAML syntax error: %s%s%s",
                              parser.problem ? parser.problem : "invalid YAML",
                              parser.context ? " " : "", parser.context ? parser.context : "");
            t.failed = 1;
            break;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++t.docs > 1) {
                tree_err_at(&t, &ev.start_mark, "%s",
                            "a policy file holds one YAML document; remove the second one");
                t.failed = 1;
            }
            break;
        case YAML_ALIAS_EVENT: {
            pnode_t *n = NULL;
            tree_err_at(&t, &ev.start_mark,
                        "YAML aliases (*%.64s) are not allowed in a policy; use route_sets to "
                        "share routes",
                        (const char *)ev.data.alias.anchor);
            /* a placeholder keeps the structure so later checks still run */
            if ((n = new_node(&t, &ev, PNODE_SCALAR)) != NULL) {
                n->bad = 1;
                n->str = "";
                if (attach(&t, n))
                    item_done(&t, n);
            }
            break;
        }
        case YAML_SCALAR_EVENT:
            on_scalar(&t, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            on_start(&t, &ev, PNODE_SEQ, ev.data.sequence_start.anchor, ev.data.sequence_start.tag);
            break;
        case YAML_MAPPING_START_EVENT:
            on_start(&t, &ev, PNODE_MAP, ev.data.mapping_start.anchor, ev.data.mapping_start.tag);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            on_end(&t);
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    policy_arena_free(&t.item_arena);
    /* anchors, tags and oversized values were reported on placeholder
     * nodes: the caller keeps validating to report everything at once */
    if (t.failed)
        return DPOP_ERR;
    if (!t.root)
        return policy_errors_add(errs, name, 1, 1,
                                 "the policy is empty; it needs at least \"version: 1\" and "
                                 "\"clients:\"");
    *root = t.root;
    return DPOP_OK;
}
