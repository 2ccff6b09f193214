/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_report.h: the compliance report (dpop-audit report): one data
 * model (a JSON document, docs/audit.md "The report model") filled once
 * from a period's events, the stores' per-hour request counts and
 * verification, then rendered as JSON, Markdown or one self-contained HTML
 * file with inline SVG charts (no script, no external resource).  Every
 * format prints the model's own SHA-256.  Read-only over the stores.
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

/* The serialization the report's own SHA-256 covers (report_sha256). */
#define AUDIT_REPORT_CANON_FLAGS                                                                   \
    (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10))
/* Hex SHA-256 of rep without its report_sha256 member. */
int audit_report_sha256(const json_t *rep, char out[65]);

/* Render; caller frees the string with free().  NULL on ENOMEM. */
char *audit_report_json(const json_t *rep);
char *audit_report_md(const json_t *rep);
char *audit_report_html(const json_t *rep);

#endif /* AUDIT_REPORT_H */
