/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_htu.c: normalization and comparison of the DPoP "htu" claim against
 * the request URI (RFC 9449 §4.3 (9)).
 *
 * The htu and the server's own view of the request URI are each reduced to
 * scheme "://" host [":" port] path, with query and fragment dropped and the
 * RFC 3986 §6.2.2 (syntax-based) and §6.2.3 (scheme-based) normalizations
 * applied, then compared byte for byte.  Parsing is strict: anything outside
 * the RFC 3986 grammar for an absolute http(s) URI is refused, so a hostile
 * htu can never compare equal by accident.  Nothing here logs or allocates.
 */
#include "dpop_htu.h"
#include "dpop_pct.h"
#include "dpop_result.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Output writer with a hard bound: every append is checked. */
typedef struct {
    char *buf;
    size_t size;
    size_t len;
    int overflow;
} htu_out_t;

static void out_putc(htu_out_t *o, char c)
{
    if (o->len + 1 >= o->size) {
        o->overflow = 1;
        return;
    }
    o->buf[o->len++] = c;
}

static void out_puts(htu_out_t *o, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        out_putc(o, s[i]);
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* RFC 3986 §2.3 unreserved */
static int is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 §2.2 sub-delims */
static int is_sub_delim(unsigned char c)
{
    return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
           c == '+' || c == ',' || c == ';' || c == '=';
}

/* Query and fragment are dropped, but they must still be plausible URI
 * characters (RFC 3986 §3.4/§3.5 allow pchar / "/" / "?"): we refuse
 * controls, space and non-ASCII so that no raw byte sequence can hide there. */
static int is_query_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/*
 * Copy one percent-encoding-normalized component (RFC 3986 §6.2.2.1 and
 * §6.2.2.2): "%hh" of an unreserved character is decoded, every other
 * triplet gets upper-case hex.  allowed() judges the literal characters;
 * lower_case folds literal (and decoded) letters, as needed for the host
 * (§6.2.2.1: the host is case-insensitive).
 */
static int copy_component(const char *s, size_t n, int (*allowed)(unsigned char), int lower_case,
                          htu_out_t *o)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            unsigned char d;
            if (dpop_pct_decode(s + i, n - i, &d) != 0)
                return DPOP_ERR;
            if (is_unreserved(d)) {
                out_putc(o, lower_case ? lower((char)d) : (char)d);
            }
            else {
                static const char hx[] = "0123456789ABCDEF";
                out_putc(o, '%');
                out_putc(o, hx[d >> 4]);
                out_putc(o, hx[d & 15]);
            }
            i += 2;
            continue;
        }
        if (!allowed(c))
            return DPOP_ERR;
        out_putc(o, lower_case ? lower((char)c) : (char)c);
    }
    return DPOP_OK;
}

/* RFC 3986 §3.2.2 reg-name: unreserved / pct-encoded / sub-delims */
static int is_regname_char(unsigned char c)
{
    return is_unreserved(c) || is_sub_delim(c);
}

/* RFC 3986 §3.3 pchar (without pct-encoded, handled by the caller) plus "/" */
static int is_path_char(unsigned char c)
{
    return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@' || c == '/';
}

/*
 * IP-literal (RFC 3986 §3.2.2): only IPv6 addresses; IPvFuture and zone
 * identifiers (RFC 6874) have no place in an HTTP request target.  The
 * address is rewritten in one canonical text form so that [::1] and
 * [0:0:0:0:0:0:0:1] compare equal: lower-case hex without leading zeros
 * (RFC 5952 §4.1/§4.3), always all-hex, and "::" for the run of zero groups
 * whose compression gives the SHORTEST text (the first such run on a tie;
 * a run inside the address saves one character more than one at its edge).
 * Unlike RFC 5952 §4.2 this may compress a single zero group: the form is
 * then never longer than any valid spelling of the input address (RFC 5952
 * or inet_ntop's dotted ::a.b.c.d could be), which keeps dpop_htu.h's
 * "strlen(uri) + 2 bytes suffice" true.  It is a comparison key only.
 */
static int copy_ipv6(const char *s, size_t n, htu_out_t *o)
{
    static const char hx[] = "0123456789abcdef";
    char tmp[INET6_ADDRSTRLEN + 1];
    unsigned char addr[16];
    unsigned g[8];
    int i, best = -1, bestlen = 0, run = -1, runlen = 0; /* runlen: best saving */
    size_t k;
    if (n == 0 || n >= sizeof(tmp))
        return DPOP_ERR;
    for (k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (!(dpop_pct_hexval(c) >= 0 || c == ':' || c == '.'))
            return DPOP_ERR;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, addr) != 1)
        return DPOP_ERR;
    for (i = 0; i < 8; i++)
        g[i] = ((unsigned)addr[2 * i] << 8) | addr[2 * i + 1];
    /* characters saved by "::" over a maximal zero run [run, run+len):
     * inner run 2*len - 1, edge run 2*len - 2, the whole address 13 */
    for (i = 0; i < 8;) {
        int len = 0, save;
        if (g[i] != 0) {
            i++;
            continue;
        }
        run = i;
        while (i < 8 && g[i] == 0) {
            len++;
            i++;
        }
        save = 2 * len - 1 - (run == 0) - (run + len == 8);
        if (save > runlen) {
            best = run;
            bestlen = len;
            runlen = save;
        }
    }
    out_putc(o, '[');
    for (i = 0; i < 8; i++) {
        if (i == best) {
            out_puts(o, "::", 2);
            i += bestlen - 1;
            continue;
        }
        if (i > 0 && i != best + bestlen)
            out_putc(o, ':');
        {
            int shift, started = 0;
            for (shift = 12; shift >= 0; shift -= 4) {
                unsigned d = (g[i] >> shift) & 0xf;
                if (d || started || shift == 0) {
                    out_putc(o, hx[d]);
                    started = 1;
                }
            }
        }
    }
    out_putc(o, ']');
    return DPOP_OK;
}

/*
 * RFC 3986 §5.2.4 remove_dot_segments, in place on an already
 * percent-normalized absolute path (starts with "/").  Because unreserved
 * characters were decoded first, "%2E%2E" is treated as ".." (§6.2.2
 * applies the normalizations in this order).
 */
static size_t remove_dot_segments(char *p, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n) {
        /* A: "../" or "./" prefixes cannot occur: the path starts with "/". */
        if (n - in >= 3 && memcmp(p + in, "/./", 3) == 0) {
            in += 2; /* B: "/./" -> "/" */
        }
        else if (n - in == 2 && memcmp(p + in, "/.", 2) == 0) {
            p[in + 1] = '/'; /* B: trailing "/." -> "/" */
            in += 1;
        }
        else if (n - in >= 4 && memcmp(p + in, "/../", 4) == 0) {
            in += 3; /* C: "/../" -> "/" and drop the last output segment */
            while (out > 0 && p[--out] != '/')
                ;
        }
        else if (n - in == 3 && memcmp(p + in, "/..", 3) == 0) {
            in += 2; /* C: trailing "/.." */
            p[in] = '/';
            while (out > 0 && p[--out] != '/')
                ;
        }
        else {
            /* E: move the first segment ("/" + up to the next "/") */
            p[out++] = p[in++];
            while (in < n && p[in] != '/')
                p[out++] = p[in++];
        }
    }
    return out;
}

int dpop_htu_normalize(const char *uri, char *out, size_t outsz)
{
    htu_out_t o;
    const char *p, *auth, *auth_end, *host_end, *path, *path_end, *q;
    size_t scheme_len, len;
    int https;
    long port = -1;

    if (!uri || !out || outsz == 0)
        return DPOP_ERR;
    out[0] = '\0';
    len = strnlen(uri, DPOP_HTU_MAX + 1);
    if (len == 0 || len > DPOP_HTU_MAX)
        return DPOP_ERR;
    o.buf = out;
    o.size = outsz;
    o.len = 0;
    o.overflow = 0;

    /* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
     * case-insensitive; only http and https make sense for htu. */
    p = uri;
    if (!is_alpha((unsigned char)*p))
        return DPOP_ERR;
    while (is_alpha((unsigned char)*p) || is_digit((unsigned char)*p) || *p == '+' || *p == '-' ||
           *p == '.')
        p++;
    if (*p != ':')
        return DPOP_ERR;
    scheme_len = (size_t)(p - uri);
    if (scheme_len == 4 && strncasecmp(uri, "http", 4) == 0)
        https = 0;
    else if (scheme_len == 5 && strncasecmp(uri, "https", 5) == 0)
        https = 1;
    else
        return DPOP_ERR;
    p++;
    /* RFC 9110 §4.2.1/§4.2.2: http(s) URIs have an authority with a host. */
    if (p[0] != '/' || p[1] != '/')
        return DPOP_ERR;
    auth = p + 2;
    auth_end = auth;
    while (*auth_end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    /* userinfo ("user:pass@") is refused: RFC 9110 §4.2.4 deprecates it and
     * it would let two different-looking URIs name the same target. */
    if (memchr(auth, '@', (size_t)(auth_end - auth)))
        return DPOP_ERR;

    out_puts(&o, https ? "https://" : "http://", https ? 8 : 7);

    /* host */
    if (*auth == '[') {
        const char *rb = memchr(auth, ']', (size_t)(auth_end - auth));
        if (!rb)
            return DPOP_ERR;
        if (copy_ipv6(auth + 1, (size_t)(rb - auth - 1), &o) != DPOP_OK)
            return DPOP_ERR;
        host_end = rb + 1;
        if (host_end != auth_end && *host_end != ':')
            return DPOP_ERR;
    }
    else {
        host_end = auth;
        while (host_end < auth_end && *host_end != ':')
            host_end++;
        if (host_end == auth)
            return DPOP_ERR; /* empty host */
        if (copy_component(auth, (size_t)(host_end - auth), is_regname_char, 1, &o) != DPOP_OK)
            return DPOP_ERR;
    }

    /* port: RFC 3986 §3.2.3 port = *DIGIT; §6.2.3: an empty port and the
     * scheme's default port are removed.  Leading zeros are dropped so that
     * ":0443" is the same port as ":443". */
    if (host_end < auth_end) {
        const char *d = host_end + 1;
        if (d < auth_end) {
            port = 0;
            for (; d < auth_end; d++) {
                if (!is_digit((unsigned char)*d))
                    return DPOP_ERR;
                port = port * 10 + (*d - '0');
                if (port > 65535)
                    return DPOP_ERR;
            }
            if (port == 0)
                return DPOP_ERR;
        }
    }
    if (port > 0 && port != (https ? 443 : 80)) {
        char pb[8];
        int k = snprintf(pb, sizeof(pb), ":%ld", port);
        out_puts(&o, pb, (size_t)k);
    }

    /* path: up to "?" or "#" (RFC 9449 §4.3 (9): query and fragment are
     * not part of the comparison) */
    path = auth_end;
    path_end = path;
    while (*path_end && *path_end != '?' && *path_end != '#')
        path_end++;
    for (q = path_end; *q; q++) {
        if (!is_query_char((unsigned char)*q))
            return DPOP_ERR;
    }
    if (path == path_end) {
        out_putc(&o, '/'); /* RFC 3986 §6.2.3: empty path is "/" */
    }
    else {
        size_t start = o.len, plen;
        if (copy_component(path, (size_t)(path_end - path), is_path_char, 0, &o) != DPOP_OK)
            return DPOP_ERR;
        if (o.overflow)
            return DPOP_ERR;
        plen = remove_dot_segments(o.buf + start, o.len - start);
        if (plen == 0) {
            o.buf[start] = '/';
            plen = 1;
        }
        o.len = start + plen;
    }
    if (o.overflow)
        return DPOP_ERR;
    o.buf[o.len] = '\0';
    return DPOP_OK;
}

int dpop_htu_equal(const char *a, const char *b)
{
    char na[DPOP_HTU_MAX + 64], nb[DPOP_HTU_MAX + 64];
    if (dpop_htu_normalize(a, na, sizeof(na)) != DPOP_OK)
        return 0;
    if (dpop_htu_normalize(b, nb, sizeof(nb)) != DPOP_OK)
        return 0;
    return strcmp(na, nb) == 0;
}
