/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_render.c: the JSON rendering of the report model, and the helpers
 * the HTML and Markdown renderers share (audit_render.h).  Every value from
 * events goes through the format's escaper in the renderers.
 */
#include "audit_render.h"
#include "audit_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ASCII only (every other character \u-escaped, RFC 8259 §7): lossless,
 * and no byte of it is a control a terminal or pager could act on.  Reals
 * with the precision the report's SHA-256 was computed with. */
char *audit_report_json(const json_t *rep)
{
    return json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII |
                               JSON_REAL_PRECISION(10));
}

const char *audit_rs(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

json_int_t audit_rn(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

void audit_fmt_rate(const json_t *v, char *out, size_t outsz)
{
    if (json_is_number(v))
        snprintf(out, outsz, "%.3f %%", json_number_value(v) * 100.0);
    else
        snprintf(out, outsz, "n/a");
}

void audit_fmt_delta(const json_t *cmp, char *out, size_t outsz)
{
    json_int_t d = audit_rn(cmp, "delta");
    const json_t *pct = json_object_get(cmp, "delta_pct");
    if (json_is_number(pct))
        snprintf(out, outsz, "%+" JSON_INTEGER_FORMAT " (%+.1f %%)", d, json_number_value(pct));
    else
        snprintf(out, outsz, "%+" JSON_INTEGER_FORMAT, d);
}

void audit_fmt_rate_delta(const json_t *cmp, char *out, size_t outsz)
{
    const json_t *d = json_object_get(cmp, "delta");
    if (json_is_number(d))
        snprintf(out, outsz, "%+.3f pp", json_number_value(d) * 100.0);
    else
        snprintf(out, outsz, "n/a");
}

void audit_fmt_shown(const json_t *sec, char *out, size_t outsz)
{
    snprintf(out, outsz, "%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " shown",
             audit_rn(sec, "shown"), audit_rn(sec, "total"));
}

const char *audit_top_reason(const json_t *row)
{
    const char *k, *best = "(none)";
    json_t *v;
    json_int_t n = 0;
    json_object_foreach(json_object_get(row, "reasons"), k, v)
    {
        if (json_integer_value(v) > n || (json_integer_value(v) == n && strcmp(k, best) < 0)) {
            n = json_integer_value(v);
            best = k;
        }
    }
    return best;
}

char *audit_render_finish(audit_buf_t *b)
{
    if (b->oom) {
        audit_buf_free(b);
        return NULL;
    }
    if (!b->s)
        audit_buf_put(b, "\n", 1);
    return b->s;
}
