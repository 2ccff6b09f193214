/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_route.c: HTTP method tokens and path patterns: validation,
 * compilation into segment arrays, and matching.
 *
 * Patterns are matched against the normalized path (percent-decoded,
 * dot-segments removed, as httpd builds r->uri), one segment at a time:
 * exact segments compare bytes, "*" is exactly one non-empty segment, "**"
 * is zero or more segments.  One "**" per pattern keeps matching linear in
 * the path length (no backtracking).  Nothing here allocates at match time.
 */
#include "policy_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define METHOD_MAX 64

/* Put a sentence saying what is wrong into why; returns DPOP_ERR so a
 * check can `return fail(...)`. */
static int fail(char *why, size_t whysz, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(char *why, size_t whysz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whysz, fmt, ap);
    va_end(ap);
    return DPOP_ERR;
}

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const struct {
    const char *name;
    uint32_t bit;
} std_methods[] = {
    {"GET", POLICY_M_GET},         {"HEAD", POLICY_M_HEAD},     {"POST", POLICY_M_POST},
    {"PUT", POLICY_M_PUT},         {"DELETE", POLICY_M_DELETE}, {"CONNECT", POLICY_M_CONNECT},
    {"OPTIONS", POLICY_M_OPTIONS}, {"TRACE", POLICY_M_TRACE},   {"PATCH", POLICY_M_PATCH},
};

uint32_t policy_method_bit(const char *m, size_t len)
{
    size_t i;
    /* first byte + length rule out most entries before memcmp */
    for (i = 0; i < sizeof std_methods / sizeof std_methods[0]; i++) {
        const char *n = std_methods[i].name;
        if (n[0] == m[0] && strlen(n) == len && memcmp(n, m, len) == 0)
            return std_methods[i].bit;
    }
    return 0;
}

int policy_method_check(const char *m, size_t len, char *why, size_t whysz)
{
    size_t i;
    if (len == 0) {
        return fail(why, whysz, "a method cannot be empty");
    }
    if (len == 1 && m[0] == '*')
        return DPOP_OK;
    if (len > METHOD_MAX) {
        return fail(why, whysz, "a method name is at most %d characters", METHOD_MAX);
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)m[i];
        if (c == '*') {
            return fail(why, whysz,
                        "'*' means any method and must stand alone, not inside "
                        "'%.64s'",
                        m);
        }
        if (!is_tchar(c)) {
            if (c > 0x20 && c < 0x7f)
                return fail(why, whysz,
                            "method '%.64s' contains '%c', which an HTTP method "
                            "token cannot hold (RFC 9110 §5.6.2)",
                            m, c);
            return fail(why, whysz,
                        "method '%.64s' contains a space or a control or "
                        "non-ASCII byte; HTTP method tokens cannot (RFC 9110 "
                        "§5.6.2)",
                        m);
        }
    }
    for (i = 0; i < sizeof std_methods / sizeof std_methods[0]; i++) {
        const char *n = std_methods[i].name;
        if (strlen(n) == len && strncasecmp(n, m, len) == 0 && memcmp(n, m, len) != 0) {
            /* "get" is a legal token but no client sends it: surely a typo */
            return fail(why, whysz,
                        "methods are case-sensitive (RFC 9110 §9.1): write '%s', "
                        "not '%.64s'",
                        n, m);
        }
    }
    return DPOP_OK;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int policy_pattern_compile(policy_arena_t *a, const char *s, size_t len, policy_pat_t *out,
                           char *why, size_t whysz)
{
    policy_seg_t segs[POLICY_MAX_SEGMENTS];
    size_t i, start, n = 0;
    int any = -1;

    memset(out, 0, sizeof *out);
    if (len == 0) {
        return fail(why, whysz, "a path pattern cannot be empty; write \"/\" for the root");
    }
    if (len > POLICY_MAX_PATTERN) {
        return fail(why, whysz, "a path pattern is at most %d bytes (this one has %zu)",
                    POLICY_MAX_PATTERN, len);
    }
    if (s[0] != '/') {
        return fail(why, whysz, "path pattern '%.64s' must start with '/'", s);
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '?' || c == '#') {
            return fail(why, whysz,
                        "path pattern '%.64s' contains '%c': patterns match the path "
                        "only, never the query or fragment",
                        s, c);
        }
        if (c < 0x20 || c == 0x7f) {
            return fail(why, whysz, "path pattern '%.64s' contains a control character", s);
        }
        if (c == '%' && i + 2 < len && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
            return fail(why, whysz,
                        "path pattern '%.64s' contains the escape '%%%c%c': patterns "
                        "match the decoded path, so write the character itself",
                        s, s[i + 1], s[i + 2]);
        }
    }
    /* segments after the leading '/'; "/" alone is one empty segment, and a
     * trailing '/' is an empty last segment, exactly as policy_path_split
     * cuts request paths */
    start = 1;
    for (i = 1; i <= len; i++) {
        size_t sl;
        const char *seg;
        if (i < len && s[i] != '/')
            continue;
        seg = s + start;
        sl = i - start;
        if (n == POLICY_MAX_SEGMENTS) {
            return fail(why, whysz, "path pattern '%.64s' has more than %d segments", s,
                        POLICY_MAX_SEGMENTS);
        }
        if (sl == 0 && i < len) {
            return fail(why, whysz,
                        "path pattern '%.64s' has an empty segment ('//'), which a "
                        "normalized path never has",
                        s);
        }
        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.')) {
            return fail(why, whysz,
                        "path pattern '%.64s' has a '.' or '..' segment, which a "
                        "normalized path never has (RFC 3986 §5.2.4)",
                        s);
        }
        segs[n].s = NULL;
        segs[n].len = 0;
        if (sl == 1 && seg[0] == '*') {
            segs[n].kind = PSEG_ONE;
        }
        else if (sl == 2 && seg[0] == '*' && seg[1] == '*') {
            if (any >= 0) {
                return fail(why, whysz,
                            "path pattern '%.64s' has more than one '**'; use one "
                            "per pattern",
                            s);
            }
            segs[n].kind = PSEG_ANY;
            any = (int)n;
        }
        else if (memchr(seg, '*', sl)) {
            return fail(why, whysz,
                        "in path pattern '%.64s', '*' and '**' must be a whole "
                        "segment (write /files/*, not /files/*.pdf)",
                        s);
        }
        else {
            segs[n].kind = PSEG_EXACT;
            segs[n].s = seg; /* re-pointed into the arena copy below */
            segs[n].len = (uint32_t)sl;
        }
        n++;
        start = i + 1;
    }
    {
        char *text = policy_arena_strndup(a, s, len);
        policy_seg_t *copy = policy_arena_alloc(a, n * sizeof *copy);
        if (!text || !copy) {
            return fail(why, whysz, "out of memory");
        }
        for (i = 0; i < n; i++) {
            copy[i] = segs[i];
            if (copy[i].s)
                copy[i].s = text + (segs[i].s - s);
        }
        out->text = text;
        out->segs = copy;
        out->nsegs = (uint32_t)n;
        out->any = any;
    }
    return DPOP_OK;
}

int policy_path_split(const char *path, policy_path_t *pp)
{
    size_t i, start = 1;
    uint32_t n = 0;

    pp->base = path;
    pp->n = 0;
    if (!path || path[0] != '/')
        return DPOP_ERR;
    for (i = 1;; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        if (n == POLICY_MAX_PATH_SEGMENTS)
            return DPOP_ERR;
        pp->off[n] = (uint32_t)start;
        pp->len[n] = (uint32_t)(i - start);
        /* fail closed on a path that was not normalized: "." and ".." would
         * otherwise let /api/../admin be judged as if it were under /api */
        if ((pp->len[n] == 1 && path[start] == '.') ||
            (pp->len[n] == 2 && path[start] == '.' && path[start + 1] == '.'))
            return DPOP_ERR;
        n++;
        if (path[i] == '\0')
            break;
        start = i + 1;
        if (i >= UINT32_MAX - 1)
            return DPOP_ERR;
    }
    pp->n = n;
    return DPOP_OK;
}

size_t policy_pattern_enc_size(const policy_pat_t *pat)
{
    size_t n = POLICY_PAT_HDR;
    uint32_t i;
    for (i = 0; i < pat->nsegs; i++) {
        const policy_seg_t *g = &pat->segs[i];
        n += 1;
        if (g->kind == PSEG_EXACT)
            n += g->len + (g->len >= POLICY_SEG_LONG ? 2 : 0);
    }
    return n;
}

static void put16(unsigned char *o, size_t v)
{
    o[0] = (unsigned char)(v & 0xff);
    o[1] = (unsigned char)(v >> 8);
}

static size_t get16(const unsigned char *q)
{
    return (size_t)q[0] | (size_t)q[1] << 8;
}

void policy_pattern_encode(const policy_pat_t *pat, unsigned char *out)
{
    unsigned char *o = out + POLICY_PAT_HDR;
    uint32_t i;
    for (i = 0; i < pat->nsegs; i++) {
        const policy_seg_t *g = &pat->segs[i];
        if (g->kind == PSEG_ONE) {
            *o++ = POLICY_SEG_ONE;
        }
        else if (g->kind == PSEG_ANY) {
            *o++ = POLICY_SEG_ANY;
        }
        else {
            if (g->len >= POLICY_SEG_LONG) {
                *o++ = POLICY_SEG_LONG;
                put16(o, g->len);
                o += 2;
            }
            else {
                *o++ = (unsigned char)g->len;
            }
            memcpy(o, g->s, g->len);
            o += g->len;
        }
    }
    /* the pattern is at most POLICY_MAX_PATTERN bytes and 64 segments, so
     * the segment bytes fit a u16 and the counts a byte */
    put16(out, (size_t)(o - out - POLICY_PAT_HDR));
    out[2] = (unsigned char)pat->nsegs;
    out[3] = pat->any < 0 ? POLICY_NO_ANY : (unsigned char)pat->any;
}

/* One encoded segment at *q against request segment k; advances *q. */
static int seg_match(const unsigned char **q, const policy_path_t *pp, uint32_t k)
{
    const unsigned char *g = *q;
    size_t len = *g++;
    if (len == POLICY_SEG_ONE || len == POLICY_SEG_ANY) {
        *q = g;
        return len == POLICY_SEG_ANY || pp->len[k] > 0;
    }
    if (len == POLICY_SEG_LONG) {
        len = get16(g);
        g += 2;
    }
    *q = g + len;
    return pp->len[k] == len && memcmp(g, pp->base + pp->off[k], len) == 0;
}

int policy_pattern_match(const unsigned char *q, const policy_path_t *pp,
                         const unsigned char **next)
{
    uint32_t nsegs = q[2], any = q[3], pre, post, i;
    const unsigned char *g = q + POLICY_PAT_HDR;

    *next = g + get16(q);
    if (any == POLICY_NO_ANY) {
        if (pp->n != nsegs)
            return 0;
        for (i = 0; i < nsegs; i++)
            if (!seg_match(&g, pp, i))
                return 0;
        return 1;
    }
    /* "**" at index any: the segments before it match the path's head, the
     * ones after it its tail, and "**" takes whatever is between (maybe
     * nothing) */
    pre = any;
    post = nsegs - pre - 1;
    if (pp->n < pre + post)
        return 0;
    for (i = 0; i < nsegs; i++)
        if (!seg_match(&g, pp, i < pre ? i : i == pre ? 0 : pp->n - post + (i - pre - 1)))
            return 0;
    return 1;
}

const char *policy_pattern_text(const unsigned char *q, char *out, size_t outsz)
{
    uint32_t nsegs = q[2], i;
    const unsigned char *g = q + POLICY_PAT_HDR;
    size_t o = 0;

    for (i = 0; i < nsegs && o + 1 < outsz; i++) {
        size_t len = *g++;
        const char *s = (const char *)g;
        if (len == POLICY_SEG_ONE) {
            s = "*";
            len = 1;
        }
        else if (len == POLICY_SEG_ANY) {
            s = "**";
            len = 2;
        }
        else {
            if (len == POLICY_SEG_LONG) {
                len = get16(g);
                g += 2;
                s = (const char *)g;
            }
            g += len;
        }
        out[o++] = '/';
        if (len > outsz - 1 - o)
            len = outsz - 1 - o;
        memcpy(out + o, s, len);
        o += len;
    }
    out[o] = '\0';
    return out;
}

int policy_method_spec_match(const policy_mspec_t *m, const char *method, uint32_t bit)
{
    uint32_t i;
    if (m->mask & POLICY_M_ANY)
        return 1;
    if (bit)
        return (m->mask & bit) != 0;
    for (i = 0; i < m->next; i++)
        if (strcmp(m->ext[i], method) == 0)
            return 1;
    return 0;
}
