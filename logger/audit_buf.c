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

void audit_buf_html(audit_buf_t *b, const char *s)
{
    if (!s)
        return;
    size_t start = 0, i;
    for (i = 0; s[i]; i++) {
        const char *rep = NULL;
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
            if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
                rep = "&#xFFFD;";
            break;
        }
        if (rep) {
            audit_buf_put(b, s + start, i - start);
            audit_buf_str(b, rep);
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
        if (c < 0x20 || c == 0x7F)
            audit_buf_put(b, " ", 1);
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
