/* SPDX-License-Identifier: Apache-2.0 */
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
/* Length of the character at s when it is one a viewer must not get raw:
 * a C0 control or DEL, a C1 control (U+0080..U+009F: 8-bit CSI and friends
 * drive terminals) or a bidirectional/invisible format control (U+200B..
 * U+200F, U+202A..U+202E, U+2066..U+2069: they reorder or hide text, the
 * "Trojan Source" trick, CVE-2021-42574).  0 for any other character.
 * TAB and LF count as controls here; callers that keep them test first. */
size_t audit_unsafe_char(const char *s);
/* Copy s into out (outsz > 0) for a terminal: unsafe characters become
 * '?', cut to width bytes (0: no cut) on a character boundary with ".."
 * at the end.  Returns the length. */
size_t audit_term_cell(const char *s, size_t width, char *out, size_t outsz);
/* HTML text/attribute escaping (& < > " '; unsafe characters but LF and
 * TAB become U+FFFD); NULL writes nothing. */
void audit_buf_html(audit_buf_t *b, const char *s);
/* Markdown table cell: backslash-escapes the characters Markdown acts on,
 * replaces newlines and unsafe characters by a space; NULL writes "-". */
void audit_buf_md(audit_buf_t *b, const char *s);
void audit_buf_free(audit_buf_t *b);

#endif /* AUDIT_BUF_H */
