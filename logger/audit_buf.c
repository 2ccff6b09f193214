/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_buf.c: growable text buffer and the escaping the report formats
 * need.  Event fields come from hostile requests (user agent, path, detail):
 * every renderer writes them only through these escapers.
 */
#include "audit_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void audit_buf_put(audit_buf_t *b, const char *s, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void audit_buf_str(audit_buf_t *b, const char *s)
{
    if (s)
        audit_buf_put(b, s, strlen(s));
}

void audit_buf_printf(audit_buf_t *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof(tmp)) {
        audit_buf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    audit_buf_put(b, big, (size_t)n);
    free(big);
}

size_t audit_unsafe_char(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x20 || u[0] == 0x7F)
        return u[0] ? 1 : 0;
    if (u[0] == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F)
        return 2;
    if (u[0] == 0xE2 && u[1] == 0x80 &&
        ((u[2] >= 0x8B && u[2] <= 0x8F) || (u[2] >= 0xAA && u[2] <= 0xAE)))
        return 3;
    if (u[0] == 0xE2 && u[1] == 0x81 && u[2] >= 0xA6 && u[2] <= 0xA9)
        return 3;
    return 0;
}

size_t audit_term_cell(const char *s, size_t width, char *out, size_t outsz)
{
    size_t n = 0;
    while (*s) {
        const unsigned char c = (unsigned char)*s;
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1, k = 1;
        while (k < len && ((unsigned char)s[k] & 0xC0) == 0x80)
            k++;
        size_t bad = audit_unsafe_char(s);
        if (bad || k < len || (c & 0xC0) == 0x80) {
            /* unsafe, or not a whole character (a cut string): one '?' */
            if (n + 2 > outsz)
                break;
            out[n++] = '?';
            s += bad ? bad : k;
            continue;
        }
        if (n + len + 1 > outsz)
            break;
        memcpy(out + n, s, len);
        n += len;
        s += len;
    }
    out[n] = '\0';
    if (width >= 3 && n > width && outsz > width) {
        n = width - 2;
        while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80)
            n--; /* out[n] starts a character: cut before it */
        out[n++] = '.';
        out[n++] = '.';
        out[n] = '\0';
    }
    return n;
}

void audit_buf_html(audit_buf_t *b, const char *s)
{
    if (!s)
        return;
    size_t start = 0, i;
    for (i = 0; s[i]; i++) {
        const char *rep = NULL;
        size_t skip = 1;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            if (s[i] != '\n' && s[i] != '\t' && (skip = audit_unsafe_char(s + i)) != 0)
                rep = "&#xFFFD;";
            else
                skip = 1;
            break;
        }
        if (rep) {
            audit_buf_put(b, s + start, i - start);
            audit_buf_str(b, rep);
            i += skip - 1;
            start = i + 1;
        }
    }
    audit_buf_put(b, s + start, i - start);
}

void audit_buf_md(audit_buf_t *b, const char *s)
{
    if (!s) {
        audit_buf_str(b, "-");
        return;
    }
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t bad = audit_unsafe_char(s + i);
        if (bad) {
            audit_buf_put(b, " ", 1);
            i += bad - 1;
        }
        else if (strchr("\\`*_[]<>|~#!&", c)) {
            audit_buf_put(b, "\\", 1);
            audit_buf_put(b, (const char *)&s[i], 1);
        }
        else
            audit_buf_put(b, (const char *)&s[i], 1);
    }
}

void audit_buf_free(audit_buf_t *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}
