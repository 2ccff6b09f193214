/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_errors.c: the list of positioned load errors.
 *
 * Every problem found in a policy file becomes one entry "FILE:LINE:COLUMN:
 * message" so an administrator can fix them all in one pass.  Messages
 * describe what is wrong in policy terms; they never contain anything but
 * policy content (names, thumbprints and patterns are not secrets).
 */
#include "policy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void policy_errors_init(policy_errors_t *e)
{
    e->items = NULL;
    e->count = 0;
}

void policy_errors_clear(policy_errors_t *e)
{
    size_t i;
    if (!e)
        return;
    for (i = 0; i < e->count; i++) {
        free(e->items[i].file);
        free(e->items[i].message);
    }
    free(e->items);
    e->items = NULL;
    e->count = 0;
}

size_t policy_error_format(const policy_error_t *e, char *out, size_t outsz)
{
    int n;
    if (!out || outsz == 0)
        return 0;
    if (e->line > 0)
        n = snprintf(out, outsz, "%s:%d:%d: %s", e->file ? e->file : "(policy)", e->line, e->column,
                     e->message ? e->message : "error");
    else
        n = snprintf(out, outsz, "%s: %s", e->file ? e->file : "(policy)",
                     e->message ? e->message : "error");
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < outsz ? (size_t)n : outsz - 1;
}

static int errors_push(policy_errors_t *e, const char *name, int line, int column, char *msg)
{
    policy_error_t *items = NULL;
    char *file = NULL;

    if (!msg)
        return DPOP_ERR;
    file = strdup(name ? name : "(policy)");
    items = file ? realloc(e->items, (e->count + 1) * sizeof(*items)) : NULL;
    if (!items) {
        /* ENOMEM: the list keeps what it has; callers still fail the load */
        free(file);
        free(msg);
        return DPOP_ERR;
    }
    e->items = items;
    e->items[e->count].file = file;
    e->items[e->count].line = line;
    e->items[e->count].column = column;
    e->items[e->count].message = msg;
    e->count++;
    return DPOP_ERR;
}

int policy_errors_add(policy_errors_t *e, const char *name, int line, int column, const char *fmt,
                      ...)
{
    va_list ap;
    char buf[512];
    int n;

    if (!e || e->count > POLICY_MAX_ERRORS)
        return DPOP_ERR;
    if (e->count == POLICY_MAX_ERRORS)
        return errors_push(e, name, 0, 0, strdup("too many errors; stopped reporting"));
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(buf, sizeof buf, "error");
    return errors_push(e, name, line, column, strdup(buf));
}
