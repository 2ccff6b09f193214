/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_render.h: helpers shared by the report renderers (logger-internal):
 * reading the model (audit_report.c) and formatting its figures the same
 * way in HTML and Markdown.
 */
#ifndef AUDIT_RENDER_H
#define AUDIT_RENDER_H

#include "audit_buf.h"

#include <jansson.h>

const char *audit_rs(const json_t *o, const char *k);
json_int_t audit_rn(const json_t *o, const char *k);
/* A rate (0..1) as a percentage "1.234 %", or "n/a" when null. */
void audit_fmt_rate(const json_t *v, char *out, size_t outsz);
/* A delta: "+12", "-3", with "(+25.0 %)" when delta_pct is a number. */
void audit_fmt_delta(const json_t *cmp, char *out, size_t outsz);
/* A rate delta in percentage points: "+0.120 pp" or "n/a". */
void audit_fmt_rate_delta(const json_t *cmp, char *out, size_t outsz);
/* "N of M shown" for a cut list ({"shown", "total"}). */
void audit_fmt_shown(const json_t *sec, char *out, size_t outsz);
/* The reason a row's "reasons" object counts most ("(none)" if empty). */
const char *audit_top_reason(const json_t *row);
char *audit_render_finish(audit_buf_t *b);
/* The per-day chart of the model's per_day (audit_render_svg.c). */
void audit_html_days_chart(audit_buf_t *b, const json_t *per_day);

#endif /* AUDIT_RENDER_H */
