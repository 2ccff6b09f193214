/*
 * audit_report.h: the compliance report (dpop-audit report): aggregates a
 * period's events into one JSON document (totals by reason, by key and
 * policy client, by client IP, per day, top replay attempts, alerts, the
 * controls mapping, and "verification": the result of dpop-audit verify
 * over every store, which every format prints), then renders it as JSON, Markdown or one
 * self-contained HTML file with inline SVG charts (no script, no external
 * resource).  Read-only over the stores.
 */
#ifndef AUDIT_REPORT_H
#define AUDIT_REPORT_H

#include "audit_alerts.h"
#include "audit_query.h"

#include <jansson.h>

/* Build the report over stores[0..n) and the filter's time range.
 * *out: caller frees with json_decref.  now_us stamps "generated_at". */
int audit_report_build(audit_store_t *const *stores, size_t n, const audit_filter_t *range,
                       const audit_alert_cfg_t *cfg, int64_t now_us, json_t **out, char *err,
                       size_t errsz);

/* Render; caller frees the string with free().  NULL on ENOMEM. */
char *audit_report_json(const json_t *rep);
char *audit_report_md(const json_t *rep);
char *audit_report_html(const json_t *rep);

#endif /* AUDIT_REPORT_H */
