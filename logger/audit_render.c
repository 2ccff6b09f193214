/*
 * audit_render.c: renders the report document (audit_report.c) as JSON,
 * Markdown or HTML.  The HTML is one self-contained file: inline CSS and
 * SVG charts, no script, no external resource (a Content-Security-Policy
 * meta forbids any), so it can be mailed, archived and opened offline.
 * Every value from events goes through the HTML/Markdown escapers.
 */
#include "audit_buf.h"
#include "audit_report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ASCII only (every other character \u-escaped, RFC 8259 §7): lossless,
 * and no byte of it is a control a terminal or pager could act on. */
char *audit_report_json(const json_t *rep)
{
    return json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t num(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* The strings of arr, each through the format's escaper, sep between. */
static void join_strings(audit_buf_t *b, const json_t *arr, const char *sep,
                         void (*esc)(audit_buf_t *, const char *))
{
    size_t j;
    json_t *v;
    json_array_foreach(arr, j, v)
    {
        if (j)
            audit_buf_str(b, sep);
        esc(b, json_string_value(v));
    }
}

static char *finish(audit_buf_t *b)
{
    if (b->oom) {
        audit_buf_free(b);
        return NULL;
    }
    if (!b->s)
        audit_buf_put(b, "\n", 1);
    return b->s;
}

/* ---------------------------------------------------------------- Markdown */

static void md_count_table(audit_buf_t *b, const json_t *rows, const char *field, const char *title)
{
    size_t i;
    json_t *r;
    audit_buf_printf(b, "| %s | events |\n|---|---:|\n", title);
    json_array_foreach(rows, i, r)
    {
        audit_buf_str(b, "| ");
        audit_buf_md(b, str(r, field));
        audit_buf_printf(b, " | %" JSON_INTEGER_FORMAT " |\n", num(r, "count"));
    }
    if (json_array_size(rows) == 0)
        audit_buf_str(b, "| (none) | 0 |\n");
    audit_buf_str(b, "\n");
}

/* The verify result: one line per store, the failure spelled out. */
static void md_verification(audit_buf_t *b, const json_t *ver)
{
    size_t i;
    json_t *r;
    audit_buf_str(b, "## Integrity (dpop-audit verify)\n\n");
    audit_buf_str(b, json_is_true(json_object_get(ver, "ok"))
                         ? "**Verified**: every store's hash chain and indexes are intact.\n\n"
                         : "**FAILED**: the store was altered or damaged; the figures below "
                           "cannot be relied on.\n\n");
    json_array_foreach(json_object_get(ver, "stores"), i, r)
    {
        audit_buf_str(b, "- ");
        audit_buf_md(b, str(r, "store"));
        if (json_is_true(json_object_get(r, "ok"))) {
            audit_buf_printf(b, ": ok, %" JSON_INTEGER_FORMAT " events, head `", num(r, "events"));
            audit_buf_md(b, str(r, "head"));
            audit_buf_printf(b, "` (seq %" JSON_INTEGER_FORMAT ")", num(r, "head_seq"));
            const json_t *ck = json_object_get(r, "checkpoint");
            if (json_is_object(ck)) {
                audit_buf_printf(b, ", pruned up to checkpoint seq %" JSON_INTEGER_FORMAT " `",
                                 num(ck, "seq"));
                audit_buf_md(b, str(ck, "hash"));
                audit_buf_str(b, "`");
            }
        }
        else {
            audit_buf_printf(b, ": **FAILED** at event seq %" JSON_INTEGER_FORMAT ": ",
                             num(r, "bad_seq"));
            audit_buf_md(b, str(r, "problem"));
        }
        audit_buf_str(b, "\n");
    }
    audit_buf_str(b, "\n");
}

char *audit_report_md(const json_t *rep)
{
    audit_buf_t b = {0};
    const json_t *period = json_object_get(rep, "period"), *tot = json_object_get(rep, "totals");
    size_t i;
    json_t *r;

    audit_buf_str(&b, "# ");
    audit_buf_md(&b, str(rep, "report"));
    audit_buf_str(&b, "\n\n");
    audit_buf_str(&b, "- Generated: ");
    audit_buf_md(&b, str(rep, "generated_at"));
    audit_buf_str(&b, "\n- Period: ");
    audit_buf_md(&b, str(period, "since") ? str(period, "since") : "(start of store)");
    audit_buf_str(&b, " to ");
    audit_buf_md(&b, str(period, "until") ? str(period, "until") : "(now)");
    audit_buf_printf(&b,
                     "\n- Events: %" JSON_INTEGER_FORMAT ", keys: %" JSON_INTEGER_FORMAT
                     ", client IPs: %" JSON_INTEGER_FORMAT ", hosts: %" JSON_INTEGER_FORMAT
                     ", alerts: %" JSON_INTEGER_FORMAT "\n\n",
                     num(tot, "events"), num(tot, "keys"), num(tot, "client_ips"),
                     num(tot, "hosts"), num(tot, "alerts"));

    md_verification(&b, json_object_get(rep, "verification"));
    audit_buf_str(
        &b,
        "## Stores (hash chain heads)\n\n| store | events | chain | head |\n|---|---:|---|---|\n");
    json_array_foreach(json_object_get(rep, "stores"), i, r)
    {
        audit_buf_str(&b, "| ");
        audit_buf_md(&b, str(r, "store"));
        audit_buf_printf(&b,
                         " | %" JSON_INTEGER_FORMAT " | %" JSON_INTEGER_FORMAT
                         "..%" JSON_INTEGER_FORMAT " | `",
                         num(r, "events"), num(r, "chain_start"), num(r, "next_seq") - 1);
        audit_buf_md(&b, str(r, "head"));
        audit_buf_str(&b, "` |\n");
    }
    audit_buf_str(&b, "\n## Totals by reason\n\n");
    md_count_table(&b, json_object_get(rep, "by_reason"), "reason", "reason");

    audit_buf_str(&b, "## By key and policy client\n\n| jkt | policy client | events | last seen "
                      "|\n|---|---|---:|---|\n");
    json_array_foreach(json_object_get(rep, "by_key"), i, r)
    {
        audit_buf_str(&b, "| ");
        audit_buf_md(&b, str(r, "jkt"));
        audit_buf_str(&b, " | ");
        audit_buf_md(&b, str(r, "policy_client"));
        audit_buf_printf(&b, " | %" JSON_INTEGER_FORMAT " | ", num(r, "count"));
        audit_buf_md(&b, str(r, "last_seen"));
        audit_buf_str(&b, " |\n");
    }
    audit_buf_str(&b, "\n");
    md_count_table(&b, json_object_get(rep, "by_policy_client"), "policy_client", "policy client");
    audit_buf_str(&b, "## By client IP\n\n");
    md_count_table(&b, json_object_get(rep, "by_client_ip"), "client_ip", "client IP");
    audit_buf_str(&b, "## Per day\n\n");
    md_count_table(&b, json_object_get(rep, "per_day"), "date", "date (UTC)");

    audit_buf_str(&b, "## Top replay attempts\n\n| jkt | jti | attempts | first seen | last seen | "
                      "client IPs | hosts |\n|---|---|---:|---|---|---|---|\n");
    json_array_foreach(json_object_get(rep, "top_replays"), i, r)
    {
        const char *cols[] = {"jkt", "jti"};
        audit_buf_str(&b, "|");
        for (int c = 0; c < 2; c++) {
            audit_buf_str(&b, " ");
            audit_buf_md(&b, str(r, cols[c]));
            audit_buf_str(&b, " |");
        }
        audit_buf_printf(&b, " %" JSON_INTEGER_FORMAT " | ", num(r, "count"));
        audit_buf_md(&b, str(r, "first_seen"));
        audit_buf_str(&b, " | ");
        audit_buf_md(&b, str(r, "last_seen"));
        const char *lists[] = {"client_ips", "hosts"};
        for (int l = 0; l < 2; l++) {
            audit_buf_str(&b, " | ");
            join_strings(&b, json_object_get(r, lists[l]), ", ", audit_buf_md);
        }
        audit_buf_str(&b, " |\n");
    }
    if (json_array_size(json_object_get(rep, "top_replays")) == 0)
        audit_buf_str(&b, "| (none) | | 0 | | | | |\n");

    const json_t *alerts = json_object_get(rep, "alerts");
    audit_buf_str(&b, "\n## Alerts\n\n| rule | alerts |\n|---|---:|\n");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(alerts, "by_rule"), k, v)
    {
        audit_buf_str(&b, "| ");
        audit_buf_md(&b, k);
        audit_buf_printf(&b, " | %" JSON_INTEGER_FORMAT " |\n", json_integer_value(v));
    }

    audit_buf_str(&b, "\n## Controls\n\n| framework | control | objective | refusals | alerts "
                      "|\n|---|---|---|---:|---:|\n");
    json_array_foreach(json_object_get(rep, "controls"), i, r)
    {
        const char *cols[] = {"framework", "control", "objective"};
        audit_buf_str(&b, "|");
        for (int c = 0; c < 3; c++) {
            audit_buf_str(&b, " ");
            audit_buf_md(&b, str(r, cols[c]));
            audit_buf_str(&b, " |");
        }
        audit_buf_printf(&b, " %" JSON_INTEGER_FORMAT " | %" JSON_INTEGER_FORMAT " |\n",
                         num(r, "events"), num(r, "alerts"));
    }
    return finish(&b);
}

/* -------------------------------------------------------------------- HTML */

static const char css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:"
    "1100px;color:#1d2330;padding:0 1em}h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px "
    "solid #ccd;padding-bottom:.2em;margin-top:2em}table{border-collapse:collapse;width:100%;"
    "font-size:.9em;margin:.5em 0}th,td{border:1px solid #d5d9e0;padding:.3em .5em;text-align:"
    "left;vertical-align:top}td.n,th.n{text-align:right}th{background:#eef1f6}code,.mono{font-"
    "family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-all}.kpi{"
    "display:flex;gap:1em;flex-wrap:wrap}.kpi div{border:1px solid #d5d9e0;border-radius:6px;"
    "padding:.6em 1em;min-width:8em}.kpi b{display:block;font-size:1.5em}svg text{font-size:11px;"
    "fill:#1d2330}.muted{color:#667}.verify{border-left:6px solid;padding:.2em 1em;margin:1em 0}"
    ".verify.ok{border-color:#2e7d32;background:#f1f8f1}.verify.failed{border-color:#c62828;"
    "background:#fdf0f0}@media print{body{margin:0}}";

static void td(audit_buf_t *b, const char *v, int mono)
{
    audit_buf_str(b, mono ? "<td class=\"mono\">" : "<td>");
    if (v)
        audit_buf_html(b, v);
    else
        audit_buf_str(b, "<span class=\"muted\">-</span>");
    audit_buf_str(b, "</td>");
}

static void tdn(audit_buf_t *b, json_int_t n)
{
    audit_buf_printf(b, "<td class=\"n\">%" JSON_INTEGER_FORMAT "</td>", n);
}

/* Horizontal bar chart of rows[field]/count (top max rows). */
static void svg_hbars(audit_buf_t *b, const json_t *rows, const char *field, const char *id,
                      const char *title, size_t max)
{
    size_t n = json_array_size(rows);
    if (n > max)
        n = max;
    json_int_t top = 1;
    for (size_t i = 0; i < n; i++)
        if (num(json_array_get(rows, i), "count") > top)
            top = num(json_array_get(rows, i), "count");
    const int w = 760, lw = 220, bh = 18, gap = 4;
    int h = (int)n * (bh + gap) + 10;
    if (h < 30)
        h = 30;
    audit_buf_printf(b,
                     "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
                     "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                     "aria-label=\"",
                     id, w, h, w, h);
    audit_buf_html(b, title);
    audit_buf_str(b, "\"><title>");
    audit_buf_html(b, title);
    audit_buf_str(b, "</title>");
    if (n == 0)
        audit_buf_str(b, "<text x=\"4\" y=\"18\">no events</text>");
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(rows, i);
        json_int_t c = num(r, "count");
        int y = 5 + (int)i * (bh + gap);
        int bw = (int)((double)(w - lw - 70) * (double)c / (double)top);
        if (bw < 1)
            bw = 1;
        const char *label = str(r, field) ? str(r, field) : "-";
        char shortl[40]; /* cut on a character boundary: the file stays UTF-8 */
        audit_term_cell(label, 34, shortl, sizeof(shortl));
        audit_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", lw - 6, y + 13);
        audit_buf_html(b, shortl);
        audit_buf_printf(b,
                         "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                         "fill=\"#3d6fb6\"><title>",
                         lw, y, bw, bh);
        audit_buf_html(b, label);
        audit_buf_printf(b, ": %" JSON_INTEGER_FORMAT "</title></rect>", c);
        audit_buf_printf(b, "<text x=\"%d\" y=\"%d\">%" JSON_INTEGER_FORMAT "</text>", lw + bw + 6,
                         y + 13, c);
    }
    audit_buf_str(b, "</svg>\n");
}

/* Vertical per-day column chart. */
static void svg_days(audit_buf_t *b, const json_t *days)
{
    size_t n = json_array_size(days);
    const int w = 760, h = 220, left = 50, bottom = 40, top_pad = 10;
    json_int_t top = 1;
    for (size_t i = 0; i < n; i++)
        if (num(json_array_get(days, i), "count") > top)
            top = num(json_array_get(days, i), "count");
    audit_buf_printf(
        b,
        "<svg id=\"chart-per-day\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
        "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
        "aria-label=\"Refusals per day\"><title>Refusals per day</title>",
        w, h, w, h);
    int ph = h - bottom - top_pad, pw = w - left - 10;
    audit_buf_printf(b,
                     "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#889\"/>"
                     "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#889\"/>"
                     "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%" JSON_INTEGER_FORMAT "</text>"
                     "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>",
                     left, top_pad, left, top_pad + ph, left, top_pad + ph, left + pw, top_pad + ph,
                     left - 4, top_pad + 10, top, left - 4, top_pad + ph);
    if (n == 0)
        audit_buf_printf(b, "<text x=\"%d\" y=\"%d\">no events</text>", left + 10, h / 2);
    double slot = n ? (double)pw / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(days, i);
        json_int_t c = num(d, "count");
        int bh = (int)((double)ph * (double)c / (double)top);
        if (c > 0 && bh < 1)
            bh = 1;
        double x = left + slot * (double)i + slot * 0.1;
        audit_buf_printf(b,
                         "<rect class=\"bar\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                         "fill=\"#b6463d\"><title>",
                         x, top_pad + ph - bh, slot * 0.8 > 1 ? slot * 0.8 : 1, bh);
        audit_buf_html(b, str(d, "date"));
        audit_buf_printf(b, ": %" JSON_INTEGER_FORMAT "</title></rect>", c);
        /* label the first, the last and about ten days in between */
        if (i == 0 || i + 1 == n || (n > 10 && i % (n / 10) == 0)) {
            audit_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x + slot * 0.4,
                             h - bottom + 16);
            audit_buf_html(b, str(d, "date") ? str(d, "date") + 5 : "");
            audit_buf_str(b, "</text>");
        }
    }
    audit_buf_str(b, "</svg>\n");
}

static void html_count_table(audit_buf_t *b, const json_t *rows, const char *field,
                             const char *head, int mono)
{
    size_t i;
    json_t *r;
    audit_buf_str(b, "<table><thead><tr><th>");
    audit_buf_html(b, head);
    audit_buf_str(b, "</th><th class=\"n\">events</th></tr></thead><tbody>");
    json_array_foreach(rows, i, r)
    {
        audit_buf_str(b, "<tr>");
        td(b, str(r, field), mono);
        tdn(b, num(r, "count"));
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table>\n");
}

static void html_verification(audit_buf_t *b, const json_t *ver)
{
    size_t i;
    json_t *r;
    int ok = json_is_true(json_object_get(ver, "ok"));
    audit_buf_str(b, ok ? "<div id=\"verification\" class=\"verify ok\"><h3>Integrity: "
                          "verified</h3><p>dpop-audit verify: every store's hash chain and "
                          "indexes are intact.</p>"
                        : "<div id=\"verification\" class=\"verify failed\"><h3>Integrity: "
                          "FAILED</h3><p>dpop-audit verify found the store altered or damaged: "
                          "the figures below cannot be relied on.</p>");
    audit_buf_str(b, "<table><thead><tr><th>store</th><th>result</th><th class=\"n\">events"
                     "</th><th>head (SHA-256) or problem</th><th>checkpoint</th></tr></thead>"
                     "<tbody>");
    json_array_foreach(json_object_get(ver, "stores"), i, r)
    {
        int sok = json_is_true(json_object_get(r, "ok"));
        const json_t *ck = json_object_get(r, "checkpoint");
        char ckb[128] = "";
        if (json_is_object(ck))
            snprintf(ckb, sizeof(ckb), "seq %" JSON_INTEGER_FORMAT " %s", num(ck, "seq"),
                     str(ck, "hash") ? str(ck, "hash") : "");
        audit_buf_str(b, "<tr>");
        td(b, str(r, "store"), 1);
        if (sok) {
            td(b, "ok", 0);
        }
        else {
            char bad[64];
            snprintf(bad, sizeof(bad), "FAILED at seq %" JSON_INTEGER_FORMAT, num(r, "bad_seq"));
            td(b, bad, 0);
        }
        tdn(b, num(r, "events"));
        td(b, sok ? str(r, "head") : str(r, "problem"), sok);
        td(b, ckb[0] ? ckb : NULL, 1);
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table></div>\n");
}

char *audit_report_html(const json_t *rep)
{
    audit_buf_t b = {0};
    const json_t *period = json_object_get(rep, "period"), *tot = json_object_get(rep, "totals");
    size_t i;
    json_t *r;

    audit_buf_str(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                      "style-src 'unsafe-inline'\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<title>");
    audit_buf_html(&b, str(rep, "report"));
    audit_buf_str(&b, "</title><style>");
    audit_buf_str(&b, css);
    audit_buf_str(&b, "</style></head><body>\n<h1>");
    audit_buf_html(&b, str(rep, "report"));
    audit_buf_str(&b, "</h1>\n<p>Period: <b>");
    audit_buf_html(&b, str(period, "since") ? str(period, "since") : "start of store");
    audit_buf_str(&b, "</b> to <b>");
    audit_buf_html(&b, str(period, "until") ? str(period, "until") : "now");
    audit_buf_str(&b, "</b>. Generated ");
    audit_buf_html(&b, str(rep, "generated_at"));
    audit_buf_str(&b, ".</p>\n<section id=\"summary\"><h2>Summary</h2><div class=\"kpi\">");
    const char *kpis[][2] = {{"events", "refusals"},
                             {"keys", "keys (jkt)"},
                             {"client_ips", "client IPs"},
                             {"hosts", "hosts"},
                             {"alerts", "alerts"}};
    for (size_t k = 0; k < sizeof(kpis) / sizeof(kpis[0]); k++)
        audit_buf_printf(&b, "<div><b>%" JSON_INTEGER_FORMAT "</b>%s</div>", num(tot, kpis[k][0]),
                         kpis[k][1]);
    audit_buf_str(&b, "</div>\n");
    html_verification(&b, json_object_get(rep, "verification"));
    audit_buf_str(&b, "<h3>Stores and hash-chain heads</h3><table><thead><tr><th>store"
                      "</th><th class=\"n\">events</th><th>chain</th><th>head (SHA-256)</th></tr>"
                      "</thead><tbody>");
    json_array_foreach(json_object_get(rep, "stores"), i, r)
    {
        char chain[64];
        snprintf(chain, sizeof(chain), "%" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
                 num(r, "chain_start"), num(r, "next_seq") - 1);
        audit_buf_str(&b, "<tr>");
        td(&b, str(r, "store"), 1);
        tdn(&b, num(r, "events"));
        td(&b, chain, 0);
        td(&b, str(r, "head"), 1);
        audit_buf_str(&b, "</tr>");
    }
    audit_buf_str(&b, "</tbody></table></section>\n");

    audit_buf_str(&b, "<section id=\"by-reason\"><h2>Totals by reason</h2>\n");
    svg_hbars(&b, json_object_get(rep, "by_reason"), "reason", "chart-by-reason",
              "Refusals by reason", 30);
    html_count_table(&b, json_object_get(rep, "by_reason"), "reason", "reason", 0);
    audit_buf_str(&b, "</section>\n<section id=\"per-day\"><h2>Per day (UTC)</h2>\n");
    svg_days(&b, json_object_get(rep, "per_day"));
    audit_buf_str(&b, "</section>\n<section id=\"by-key\"><h2>By key and policy client</h2>\n"
                      "<table><thead><tr><th>jkt</th><th>policy client</th><th class=\"n\">"
                      "events</th><th>last seen</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(rep, "by_key"), i, r)
    {
        audit_buf_str(&b, "<tr>");
        td(&b, str(r, "jkt"), 1);
        td(&b, str(r, "policy_client"), 0);
        tdn(&b, num(r, "count"));
        td(&b, str(r, "last_seen"), 0);
        audit_buf_str(&b, "</tr>");
    }
    audit_buf_str(&b, "</tbody></table>\n");
    html_count_table(&b, json_object_get(rep, "by_policy_client"), "policy_client", "policy client",
                     0);
    audit_buf_str(&b, "</section>\n<section id=\"by-ip\"><h2>By client IP</h2>\n");
    svg_hbars(&b, json_object_get(rep, "by_client_ip"), "client_ip", "chart-by-ip",
              "Refusals by client IP", 15);
    html_count_table(&b, json_object_get(rep, "by_client_ip"), "client_ip", "client IP", 1);
    audit_buf_str(&b, "</section>\n<section id=\"replays\"><h2>Top replay attempts</h2>\n"
                      "<table><thead><tr><th>jkt</th><th>jti</th><th>policy client</th>"
                      "<th class=\"n\">attempts</th><th>first seen</th><th>last seen</th>"
                      "<th>client IPs</th><th>hosts</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(rep, "top_replays"), i, r)
    {
        audit_buf_str(&b, "<tr>");
        td(&b, str(r, "jkt"), 1);
        td(&b, str(r, "jti"), 1);
        td(&b, str(r, "policy_client"), 0);
        tdn(&b, num(r, "count"));
        td(&b, str(r, "first_seen"), 0);
        td(&b, str(r, "last_seen"), 0);
        const char *lists[] = {"client_ips", "hosts"};
        for (int l = 0; l < 2; l++) {
            audit_buf_str(&b, "<td class=\"mono\">");
            join_strings(&b, json_object_get(r, lists[l]), "<br>", audit_buf_html);
            audit_buf_str(&b, "</td>");
        }
        audit_buf_str(&b, "</tr>");
    }
    if (json_array_size(json_object_get(rep, "top_replays")) == 0)
        audit_buf_str(&b, "<tr><td colspan=\"8\">No replay attempts in this period.</td></tr>");
    audit_buf_str(&b, "</tbody></table></section>\n");

    const json_t *alerts = json_object_get(rep, "alerts");
    audit_buf_str(&b, "<section id=\"alerts\"><h2>Alerts</h2><table><thead><tr><th>rule</th>"
                      "<th class=\"n\">alerts</th></tr></thead><tbody>");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(alerts, "by_rule"), k, v)
    {
        audit_buf_str(&b, "<tr>");
        td(&b, k, 1);
        tdn(&b, json_integer_value(v));
        audit_buf_str(&b, "</tr>");
    }
    audit_buf_str(&b, "</tbody></table>\n<table><thead><tr><th>time</th><th>rule</th><th>source "
                      "IP</th><th>jkt</th><th>host</th><th class=\"n\">events</th></tr></thead>"
                      "<tbody>");
    json_array_foreach(json_object_get(alerts, "items"), i, r)
    {
        audit_buf_str(&b, "<tr>");
        td(&b, str(r, "@timestamp"), 0);
        td(&b, str(json_object_get(r, "rule"), "name"), 1);
        td(&b, str(json_object_get(r, "source"), "ip"), 1);
        td(&b, str(json_object_get(r, "dpop"), "jkt"), 1);
        td(&b, str(json_object_get(r, "host"), "name"), 0);
        tdn(&b, num(json_object_get(r, "dpop"), "event_count"));
        audit_buf_str(&b, "</tr>");
    }
    audit_buf_str(&b, "</tbody></table></section>\n");

    audit_buf_str(&b, "<section id=\"controls\"><h2>Controls</h2><p>How DPoP sender-constrained "
                      "access maps to the frameworks, with this period's refusals and alerts as "
                      "evidence that each control operated.</p><table><thead><tr><th>framework"
                      "</th><th>control</th><th>objective</th><th>evidence</th><th class=\"n\">"
                      "refusals</th><th class=\"n\">alerts</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(rep, "controls"), i, r)
    {
        audit_buf_str(&b, "<tr>");
        td(&b, str(r, "framework"), 0);
        td(&b, str(r, "control"), 0);
        td(&b, str(r, "objective"), 0);
        audit_buf_str(&b, "<td class=\"mono\">");
        int first = 1;
        const char *ek;
        json_t *ev;
        json_object_foreach(json_object_get(r, "evidence_reasons"), ek, ev)
        {
            audit_buf_printf(&b, "%s", first ? "" : ", ");
            audit_buf_html(&b, ek);
            audit_buf_printf(&b, "&nbsp;%" JSON_INTEGER_FORMAT, json_integer_value(ev));
            first = 0;
        }
        json_object_foreach(json_object_get(r, "evidence_alerts"), ek, ev)
        {
            audit_buf_printf(&b, "%s", first ? "" : ", ");
            audit_buf_html(&b, ek);
            audit_buf_printf(&b, "&nbsp;%" JSON_INTEGER_FORMAT, json_integer_value(ev));
            first = 0;
        }
        audit_buf_str(&b, "</td>");
        tdn(&b, num(r, "events"));
        tdn(&b, num(r, "alerts"));
        audit_buf_str(&b, "</tr>");
    }
    audit_buf_str(&b, "</tbody></table></section>\n<footer class=\"muted\"><p>Produced by "
                      "dpop-audit from the hash-chained audit store; run <code>dpop-audit "
                      "verify</code> and compare the chain heads above to prove the underlying "
                      "events were not altered.</p></footer>\n</body></html>\n");
    return finish(&b);
}
