/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_internal.h: the compiled policy and the helpers the policy/ files
 * share (arena, YAML node tree, error list, hash, time, path patterns).
 *
 * Private to policy/: the Apache glue and the CLIs see only dpop_policy.h.
 * Nothing here may include an httpd header or log anything; errors travel
 * back to the caller in a policy_errors_t.
 */
#ifndef POLICY_INTERNAL_H
#define POLICY_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "dpop_policy.h"

/* ---- limits (documented in docs/policy.md; keep them in sync) ---- */
#define POLICY_MAX_FILE_BYTES (64u * 1024 * 1024)
#define POLICY_MAX_NODES 8000000u /* YAML nodes in one file */
#define POLICY_MAX_DEPTH 16       /* YAML nesting; the schema needs 6 */
#define POLICY_MAX_SCALAR 4096    /* bytes in one YAML scalar */
#define POLICY_MAX_CLIENTS 1000000u
#define POLICY_MAX_ROUTE_SETS 10000u
#define POLICY_MAX_ALLOW 1000u       /* allow entries per client */
#define POLICY_MAX_ROUTES 1000u      /* routes per route set */
#define POLICY_MAX_METHODS 64u       /* methods per route */
#define POLICY_MAX_PATHS 1000u       /* paths per route */
#define POLICY_MAX_PATTERN 1024      /* bytes in one path pattern */
#define POLICY_MAX_SEGMENTS 64       /* segments in one path pattern */
#define POLICY_MAX_NAME 128          /* client and route set names */
#define POLICY_MAX_ERRORS 1000u      /* errors collected before giving up */
#define POLICY_MAX_PATH_SEGMENTS 512 /* request path segments policy_decide splits */

/* ---- arena: bump allocator, freed all at once ---- */
typedef struct policy_arena_block policy_arena_block_t;
typedef struct {
    policy_arena_block_t *head;
    size_t total; /* bytes allocated from malloc, for accounting */
} policy_arena_t;

void policy_arena_init(policy_arena_t *a);
void policy_arena_free(policy_arena_t *a);
/* Zeroed, 8-byte aligned; NULL on ENOMEM. */
void *policy_arena_alloc(policy_arena_t *a, size_t n);
/* Zeroed memory for big tables, huge-page advised; free() it.  NULL on
 * ENOMEM. */
void *policy_big_alloc(size_t n);
/* Copy of s[0..len) plus a terminator; NULL on ENOMEM. */
char *policy_arena_strndup(policy_arena_t *a, const char *s, size_t len);

/* ---- errors ---- */
/* Append "message" at name:line:column (line 0: not tied to a position).
 * Returns DPOP_ERR always (so callers can `return policy_errors_add(...)`);
 * stops recording after POLICY_MAX_ERRORS (one last "too many errors"). */
int policy_errors_add(policy_errors_t *e, const char *name, int line, int column, const char *fmt,
                      ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* ---- YAML node tree (policy_tree.c) ---- */
typedef enum { PNODE_SCALAR = 1, PNODE_SEQ, PNODE_MAP } pnode_type_t;

typedef struct pnode pnode_t;
struct pnode {
    pnode_t *first;  /* children; a map holds key, value, key, value... */
    pnode_t *next;   /* next sibling */
    const char *str; /* scalar bytes (NUL-terminated copy) */
    uint32_t len;    /* scalar length */
    uint32_t count;  /* children (a map: 2 * pairs) */
    int line;        /* 1-based start position */
    int column;
    uint8_t type;  /* pnode_type_t */
    uint8_t plain; /* scalar written without quotes */
    uint8_t bad;   /* placeholder for a rejected node: already reported */
};

/* Streaming hooks.  A policy with 100,000 clients is millions of YAML
 * nodes; instead of holding them all, each item of the top-level
 * `clients` list is handed to on_client as soon as it is complete and its
 * memory is reused for the next one (the list node keeps only its count).
 * The value of the top-level `route_sets` key is handed to on_route_sets
 * when complete (before the clients in the usual file order).  Either may
 * be NULL.  Only the first `clients` / `route_sets` key streams. */
typedef struct {
    void (*on_route_sets)(void *ctx, const pnode_t *value);
    void (*on_client)(void *ctx, const pnode_t *item);
    void *ctx;
} policy_tree_hooks_t;

/* Empty an arena but keep its newest block for reuse (zeroed again). */
void policy_arena_reset(policy_arena_t *a);

/* Parse buf into a tree allocated in a (caller frees the arena).  Returns
 * DPOP_OK with *root set (never NULL), or DPOP_ERR with errors recorded.
 * DPOP_OK may still come with errors (anchors, tags, oversized values are
 * reported and their nodes marked bad) so the caller can report the rest
 * of the file too: compare errs->count before and after. */
int policy_tree_parse(const char *name, const char *buf, size_t len, policy_arena_t *a,
                      const policy_tree_hooks_t *hooks, pnode_t **root, policy_errors_t *errs);

/* ---- RFC 3339 (policy_time.c) ---- */
/* Parse an RFC 3339 §5.6 date-time with "Z" or a numeric offset into unix
 * seconds (fractions truncated).  DPOP_OK or DPOP_ERR with a reason in why. */
int policy_time_parse(const char *s, size_t len, int64_t *out, const char **why);
/* Format as "YYYY-MM-DDTHH:MM:SSZ" (out needs 21 bytes; 32 is safe). */
void policy_time_format(int64_t t, char *out, size_t outsz);

/* ---- methods and path patterns (policy_route.c) ---- */
/* Bits for the RFC 9110 §9 methods (+ PATCH, RFC 5789); the rest are kept
 * as exact strings. */
enum {
    POLICY_M_GET = 1u << 0,
    POLICY_M_HEAD = 1u << 1,
    POLICY_M_POST = 1u << 2,
    POLICY_M_PUT = 1u << 3,
    POLICY_M_DELETE = 1u << 4,
    POLICY_M_CONNECT = 1u << 5,
    POLICY_M_OPTIONS = 1u << 6,
    POLICY_M_TRACE = 1u << 7,
    POLICY_M_PATCH = 1u << 8,
    POLICY_M_ANY = 1u << 31
};

typedef enum { PSEG_EXACT = 0, PSEG_ONE, PSEG_ANY } pseg_kind_t;

typedef struct {
    const char *s; /* exact bytes (PSEG_EXACT) */
    uint32_t len;
    uint32_t kind; /* pseg_kind_t */
} policy_seg_t;

typedef struct {
    const char *text; /* the pattern as written, for rule text */
    const policy_seg_t *segs;
    uint32_t nsegs;
    int32_t any; /* index of the "**" segment, -1 when none */
} policy_pat_t;

typedef struct {
    uint32_t mask; /* POLICY_M_* */
    uint32_t next; /* extension methods */
    const char **ext;
    const char *methods_text; /* "GET,POST" for rule text */
    const policy_pat_t *pats;
    uint32_t npats;
} policy_route_t;

/* A route set, or the one inline route of an allow entry (name NULL). */
typedef struct {
    const char *name;
    const policy_route_t *routes;
    uint32_t nroutes;
    int line;
} policy_routeset_t;

/* Method bit for a standard method, 0 for an extension method. */
uint32_t policy_method_bit(const char *m, size_t len);
/* DPOP_OK when m is a valid method token (RFC 9110 §5.6.2 tchar, or "*"
 * alone), else DPOP_ERR with a sentence saying what is wrong in why. */
int policy_method_check(const char *m, size_t len, char *why, size_t whysz);
/* Validate and compile a path pattern into out (arena allocations).
 * DPOP_OK, or DPOP_ERR with a sentence saying what is wrong in why. */
int policy_pattern_compile(policy_arena_t *a, const char *s, size_t len, policy_pat_t *out,
                           char *why, size_t whysz);

/* A request path split into segments (policy_decide). */
typedef struct {
    const char *base;
    uint32_t n;
    uint32_t off[POLICY_MAX_PATH_SEGMENTS];
    uint32_t len[POLICY_MAX_PATH_SEGMENTS];
} policy_path_t;

/* Split a normalized path; DPOP_ERR when it does not start with '/', holds
 * a "." or ".." segment or has too many segments. */
int policy_path_split(const char *path, policy_path_t *pp);

/* ---- the compact encoding decisions read (policy_route.c) ----
 * Byte strings, read with memcpy (no alignment): a pattern is
 *   u16 length of its segment bytes (little endian), u8 nsegs,
 *   u8 index of the "**" segment (0xff: none), then per segment one byte:
 *   0..0xfc an exact segment of that length followed by its bytes,
 *   0xfd a u16 length then the bytes, 0xfe "*", 0xff "**".
 * The pattern text is "/" + the segments joined by "/", exactly as
 * written (policy_pattern_compile refuses anything else), so it is not
 * stored: policy_pattern_text rebuilds it for the rule text. */
#define POLICY_PAT_HDR 4
#define POLICY_SEG_LONG 0xfdu
#define POLICY_SEG_ONE 0xfeu
#define POLICY_SEG_ANY 0xffu
#define POLICY_NO_ANY 0xffu

/* Bytes the encoding of pat needs. */
size_t policy_pattern_enc_size(const policy_pat_t *pat);
/* Write it at out (policy_pattern_enc_size bytes). */
void policy_pattern_encode(const policy_pat_t *pat, unsigned char *out);
/* Match the encoded pattern at q; *next gets the byte after it. */
int policy_pattern_match(const unsigned char *q, const policy_path_t *pp,
                         const unsigned char **next);
/* The pattern as written, into out (POLICY_MAX_PATTERN + 1 bytes); returns out. */
const char *policy_pattern_text(const unsigned char *q, char *out, size_t outsz);

/* ---- the compiled policy ----
 * Two forms.  The load form (policy_client_t, policy_routeset_t) is what
 * the loader checks and the CLI lists; the decision form is packed from
 * it (policy_pack.c) so that a decision for a random client of 100,000
 * waits for main memory once, not two or three times in a row:
 *   fps[]    one 16-bit fingerprint of the jkt per table position (0 =
 *            empty), open addressing with linear probing at most 80 %
 *            full: 2 bytes per position, small enough to stay cached;
 *   recs     one fixed-size record per table position, at the same
 *            index: a probe that matches a fingerprint knows where the
 *            record is without reading anything else, and the record is
 *            fetched (a few adjacent lines, prefetched together) while the
 *            request path is split.  It holds the jkt, flags, validity
 *            window, name and, when it fits and no other client has the
 *            same one, the allow list itself;
 *   lists    allow lists shared by several clients (interned: identical
 *            entries are stored once and stay cached because many
 *            decisions read them) or too long for a record, and the named
 *            route sets;
 *   specs    method lists ("GET,POST"), interned; set names.
 * A list is u16 entry count, then per entry a u16: a route set index, or
 * POLICY_ENTRY_INLINE followed by one route.  A route is a varint method
 * spec index, a varint pattern count, then the patterns.  A named route
 * set in lists is a u16 route count, then its routes. */
#define POLICY_ENTRY_INLINE 0xffffu

#define POLICY_REC_REVOKED 1u
#define POLICY_REC_NB 2u
#define POLICY_REC_NA 4u
#define POLICY_REC_LIST_HERE 8u /* the allow list is inside the record */
/* record: jkt[43] at 0, flags (u8) at 43, u32 list offset at 44 (in the
 * record when POLICY_REC_LIST_HERE, else in lists), not_before (i64) at 48,
 * not_after (i64) at 56, the client name NUL-terminated at 64, then an
 * allow list kept in the record */
#define POLICY_REC_FLAGS 43
#define POLICY_REC_LIST 44
#define POLICY_REC_NB_AT 48
#define POLICY_REC_NA_AT 56
#define POLICY_REC_NAME 64

typedef struct {
    const char *name;
    char jkt[44];
    uint8_t revoked, has_nb, has_na;
    int64_t not_before;                    /* inclusive */
    int64_t not_after;                     /* exclusive */
    const policy_routeset_t *const *allow; /* while loading; NULL once packed */
    uint32_t nallow;
    int line;
} policy_client_t;

typedef struct {
    uint32_t mask; /* POLICY_M_* */
    uint32_t next; /* extension methods */
    const char *const *ext;
    const char *text; /* "GET,POST" for rule text */
} policy_mspec_t;

typedef struct {
    const char *name;
    uint32_t off; /* in lists */
} policy_setref_t;

struct policy {
    policy_arena_t arena;      /* cold: client records, names, strings */
    policy_client_t **clients; /* cold, for the CLI */
    size_t nclients;
    policy_routeset_t *sets; /* while loading; NULL once packed */
    size_t nsets;
    size_t nroutes; /* routes in sets + inline routes */
    /* the decision form (policy_pack.c) */
    uint16_t *fps;
    uint64_t mask;        /* table positions - 1 (power of two) */
    unsigned char *recs;  /* record i at recs + (i << rec_shift) */
    unsigned rec_shift;   /* records are 128, 256 or 512 bytes */
    unsigned char *lists; /* shared allow lists and route sets */
    unsigned char *block; /* fps, recs and lists: one huge-page block */
    size_t block_bytes;
    policy_setref_t *setrefs; /* nsets */
    policy_mspec_t *specs;
    size_t nspecs;
    size_t nlists;            /* distinct allow lists after interning */
    int refs;                 /* watch reference count (policy_watch.c) */
    policy_errors_t warnings; /* policy_warnings() */
};

/* Does the method (bit: policy_method_bit) match this method list? */
int policy_method_spec_match(const policy_mspec_t *m, const char *method, uint32_t bit);

/* Pack the load form into the decision form (once, after an error-free
 * load).  DPOP_ERR on ENOMEM or a policy too big for 32-bit offsets. */
int policy_pack(policy_t *p);

/* ---- the jkt index (policy_index.c) ---- */
/* Table hash for names and thumbprints (dpop_hash, fixed seed: the keys
 * come from the policy file, never from the network). */
uint64_t policy_hash_key(const char *s, size_t len);
/* Claim a free table position for jkt (the table is never full). */
uint64_t policy_index_put(policy_t *p, const char *jkt);
/* Lookup in two steps so the record's cache misses overlap other work:
 * start finds the first position whose fingerprint matches and prefetches
 * its record; finish confirms the full jkt (or walks on) and returns the
 * record, NULL for an unknown key. */
typedef struct {
    uint64_t pos;
    uint16_t fp;
} policy_probe_t;
void policy_index_start(const policy_t *p, const char *jkt, policy_probe_t *pr);
const unsigned char *policy_index_finish(const policy_t *p, const char *jkt, policy_probe_t *pr);

#endif /* POLICY_INTERNAL_H */
