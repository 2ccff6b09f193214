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
        snprintf(why, whysz, "a method cannot be empty");
        return DPOP_ERR;
    }
    if (len == 1 && m[0] == '*')
        return DPOP_OK;
    if (len > METHOD_MAX) {
        snprintf(why, whysz, "a method name is at most %d characters", METHOD_MAX);
        return DPOP_ERR;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)m[i];
        if (c == '*') {
            snprintf(why, whysz,
                     "'*' means any method and must stand alone, not inside "
                     "'%.64s'",
                     m);
            return DPOP_ERR;
        }
        if (!is_tchar(c)) {
            if (c > 0x20 && c < 0x7f)
                snprintf(why, whysz,
                         "method '%.64s' contains '%c', which an HTTP method "
                         "token cannot hold (RFC 9110 §5.6.2)",
                         m, c);
            else
                snprintf(why, whysz,
                         "method '%.64s' contains a space or a control or "
                         "non-ASCII byte; HTTP method tokens cannot (RFC 9110 "
                         "§5.6.2)",
                         m);
            return DPOP_ERR;
        }
    }
    for (i = 0; i < sizeof std_methods / sizeof std_methods[0]; i++) {
        const char *n = std_methods[i].name;
        if (strlen(n) == len && strncasecmp(n, m, len) == 0 && memcmp(n, m, len) != 0) {
            /* "get" is a legal token but no client sends it: surely a typo */
            snprintf(why, whysz,
                     "methods are case-sensitive (RFC 9110 §9.1): write '%s', "
                     "not '%.64s'",
                     n, m);
            return DPOP_ERR;
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
        snprintf(why, whysz, "a path pattern cannot be empty; write \"/\" for the root");
        return DPOP_ERR;
    }
    if (len > POLICY_MAX_PATTERN) {
        snprintf(why, whysz, "a path pattern is at most %d bytes (this one has %zu)",
                 POLICY_MAX_PATTERN, len);
        return DPOP_ERR;
    }
    if (s[0] != '/') {
        snprintf(why, whysz, "path pattern '%.64s' must start with '/'", s);
        return DPOP_ERR;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '?' || c == '#') {
            snprintf(why, whysz,
                     "path pattern '%.64s' contains '%c': patterns match the path "
                     "only, never the query or fragment",
                     s, c);
            return DPOP_ERR;
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, whysz, "path pattern '%.64s' contains a control character", s);
            return DPOP_ERR;
        }
        if (c == '%' && i + 2 < len && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
            snprintf(why, whysz,
                     "path pattern '%.64s' contains the escape '%%%c%c': patterns "
                     "match the decoded path, so write the character itself",
                     s, s[i + 1], s[i + 2]);
            return DPOP_ERR;
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
            snprintf(why, whysz, "path pattern '%.64s' has more than %d segments", s,
                     POLICY_MAX_SEGMENTS);
            return DPOP_ERR;
        }
        if (sl == 0 && i < len) {
            snprintf(why, whysz,
                     "path pattern '%.64s' has an empty segment ('//'), which a "
                     "normalized path never has",
                     s);
            return DPOP_ERR;
        }
        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.')) {
            snprintf(why, whysz,
                     "path pattern '%.64s' has a '.' or '..' segment, which a "
                     "normalized path never has (RFC 3986 §5.2.4)",
                     s);
            return DPOP_ERR;
        }
        segs[n].s = NULL;
        segs[n].len = 0;
        if (sl == 1 && seg[0] == '*') {
            segs[n].kind = PSEG_ONE;
        }
        else if (sl == 2 && seg[0] == '*' && seg[1] == '*') {
            if (any >= 0) {
                snprintf(why, whysz,
                         "path pattern '%.64s' has more than one '**'; use one "
                         "per pattern",
                         s);
                return DPOP_ERR;
            }
            segs[n].kind = PSEG_ANY;
            any = (int)n;
        }
        else if (memchr(seg, '*', sl)) {
            snprintf(why, whysz,
                     "in path pattern '%.64s', '*' and '**' must be a whole "
                     "segment (write /files/*, not /files/*.pdf)",
                     s);
            return DPOP_ERR;
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
            snprintf(why, whysz, "out of memory");
            return DPOP_ERR;
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

static int seg_match(const policy_seg_t *g, const policy_path_t *pp, uint32_t k)
{
    if (g->kind == PSEG_ONE)
        return pp->len[k] > 0;
    return g->len == pp->len[k] && memcmp(g->s, pp->base + pp->off[k], g->len) == 0;
}

int policy_pattern_match(const policy_pat_t *pat, const policy_path_t *pp)
{
    uint32_t i, pre, post;
    if (pat->any < 0) {
        if (pp->n != pat->nsegs)
            return 0;
        for (i = 0; i < pat->nsegs; i++)
            if (!seg_match(&pat->segs[i], pp, i))
                return 0;
        return 1;
    }
    /* "**" at index any: the segments before it match the path's head, the
     * ones after it its tail, and "**" takes whatever is between (maybe
     * nothing) */
    pre = (uint32_t)pat->any;
    post = pat->nsegs - pre - 1;
    if (pp->n < pre + post)
        return 0;
    for (i = 0; i < pre; i++)
        if (!seg_match(&pat->segs[i], pp, i))
            return 0;
    for (i = 0; i < post; i++)
        if (!seg_match(&pat->segs[pre + 1 + i], pp, pp->n - post + i))
            return 0;
    return 1;
}

int policy_route_method_match(const policy_route_t *r, const char *method, uint32_t bit)
{
    uint32_t i;
    if (r->mask & POLICY_M_ANY)
        return 1;
    if (bit)
        return (r->mask & bit) != 0;
    for (i = 0; i < r->next; i++)
        if (strcmp(r->ext[i], method) == 0)
            return 1;
    return 0;
}
