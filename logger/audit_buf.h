/*
 * audit_buf.h: a growable text buffer for the report renderers (HTML,
 * Markdown, JSON text).  Out of memory is sticky (oom = 1) and checked once
 * at the end.  Holds only what the renderer writes.
 */
#ifndef AUDIT_BUF_H
#define AUDIT_BUF_H

#include <stddef.h>

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} audit_buf_t;

void audit_buf_put(audit_buf_t *b, const char *s, size_t n);
void audit_buf_str(audit_buf_t *b, const char *s);
void audit_buf_printf(audit_buf_t *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* HTML text/attribute escaping (& < > " '); NULL writes nothing. */
void audit_buf_html(audit_buf_t *b, const char *s);
/* Markdown table cell: backslash-escapes the characters Markdown acts on,
 * replaces newlines and control characters; NULL writes "-". */
void audit_buf_md(audit_buf_t *b, const char *s);
void audit_buf_free(audit_buf_t *b);

#endif /* AUDIT_BUF_H */
