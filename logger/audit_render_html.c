/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_render_html.c: the report model as one self-contained HTML file:
 * inline CSS and SVG, no script, no external resource (a
 * Content-Security-Policy meta forbids any), so it can be mailed, archived
 * and opened offline.  Every value from events goes through audit_buf_html.
 */
#include "audit_render.h"
#include "audit_report.h"

#include <stdio.h>
#include <string.h>

#define S audit_rs
#define N audit_rn

static const char css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:"
    "1200px;color:#1d2330;padding:0 1em}h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px "
    "solid #ccd;padding-bottom:.2em;margin-top:2em}table{border-collapse:collapse;width:100%;"
    "font-size:.9em;margin:.5em 0}th,td{border:1px solid #d5d9e0;padding:.3em .5em;text-align:"
    "left;vertical-align:top}td.n,th.n{text-align:right;white-space:nowrap}th{background:#eef1f6}"
    "code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:"
    "break-all}.kpi{display:flex;gap:1em;flex-wrap:wrap}.kpi div{border:1px solid #d5d9e0;"
    "border-radius:6px;padding:.6em 1em;min-width:9em}.kpi b{display:block;font-size:1.5em}"
    ".kpi .ro b{color:#8a6d00}.kpi .enf b{color:#b6463d}svg text{font-size:11px;fill:#1d2330}"
    ".muted{color:#667}.shown{color:#556;font-size:.85em;margin:.2em 0}.verify{border-left:6px "
    "solid;padding:.2em 1em;margin:1em 0}.verify.ok{border-color:#2e7d32;background:#f1f8f1}"
    ".verify.failed{border-color:#c62828;background:#fdf0f0}.sha{font-family:ui-monospace,Menlo,"
    "monospace;font-size:.85em;background:#f4f5f8;padding:.4em .6em;border-radius:4px;word-break:"
    "break-all}.sha "
    ".muted{word-break:normal}.sev-critical{color:#fff;background:#8e0000}.sev-high{color:#fff;"
    "background:"
    "#c62828}.sev-medium{background:#ffb74d}.sev-low{background:#e0e0e0}.sev-info{background:"
    "#f4f5f8}td.t{white-space:nowrap}td.k{white-space:nowrap}.up{color:#b6463d}.down{color:#2e7d32}"
    "@media print{body{margin:0}}";

static void td(audit_buf_t *b, const char *v, int mono)
{
    audit_buf_str(b, mono ? "<td class=\"mono\">" : "<td>");
    if (v)
        audit_buf_html(b, v);
    else
        audit_buf_str(b, "<span class=\"muted\">-</span>");
    audit_buf_str(b, "</td>");
}

/* A time to the second ("2026-03-01 12:00:05Z"); the exact value
 * (microseconds) in the tooltip. */
static void tdt(audit_buf_t *b, const char *ts)
{
    char s[32];
    if (!ts || strlen(ts) < 19) {
        td(b, ts, 0);
        return;
    }
    snprintf(s, sizeof(s), "%.10s %.8sZ", ts, ts + 11);
    audit_buf_str(b, "<td class=\"t\" title=\"");
    audit_buf_html(b, ts);
    audit_buf_str(b, "\">");
    audit_buf_html(b, s);
    audit_buf_str(b, "</td>");
}

static void tdn(audit_buf_t *b, json_int_t n)
{
    audit_buf_printf(b, "<td class=\"n\">%" JSON_INTEGER_FORMAT "</td>", n);
}

static void shown(audit_buf_t *b, const json_t *sec)
{
    char s[64];
    audit_fmt_shown(sec, s, sizeof(s));
    audit_buf_printf(b, "<p class=\"shown\">%s</p>", s);
}

/* A breakdown table with "N of M shown". */
static void html_breakdown(audit_buf_t *b, const json_t *sec, const char *id, const char *field,
                           const char *title, const char *intro, int with_client)
{
    size_t i;
    json_t *r;
    audit_buf_printf(b, "<section id=\"%s\"><h2>By %s</h2>", id, title);
    if (intro)
        audit_buf_printf(b, "<p>%s</p>", intro);
    shown(b, sec);
    audit_buf_printf(b,
                     "<table><thead><tr><th>%s</th>%s<th class=\"n\">refused</th><th class=\"n"
                     "\">report-only</th><th class=\"n\">total</th><th>top reason</th><th>"
                     "last seen</th></tr></thead><tbody>",
                     title, with_client ? "<th>policy client</th>" : "");
    json_array_foreach(json_object_get(sec, "rows"), i, r)
    {
        audit_buf_str(b, "<tr>");
        td(b, S(r, field), 1);
        if (with_client)
            td(b, S(r, "policy_client"), 0);
        tdn(b, N(r, "enforce"));
        tdn(b, N(r, "report_only"));
        tdn(b, N(r, "count"));
        td(b, audit_top_reason(r), 1);
        tdt(b, S(r, "last_seen"));
        audit_buf_str(b, "</tr>");
    }
    if (json_array_size(json_object_get(sec, "rows")) == 0)
        audit_buf_printf(b, "<tr><td colspan=\"%d\">None in this period.</td></tr>",
                         with_client ? 7 : 6);
    audit_buf_str(b, "</tbody></table></section>\n");
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
        char ckb[128] = "", bad[64];
        if (json_is_object(ck))
            snprintf(ckb, sizeof(ckb), "seq %" JSON_INTEGER_FORMAT " %s", N(ck, "seq"),
                     S(ck, "hash") ? S(ck, "hash") : "");
        snprintf(bad, sizeof(bad), "FAILED at seq %" JSON_INTEGER_FORMAT, N(r, "bad_seq"));
        audit_buf_str(b, "<tr>");
        td(b, S(r, "store"), 1);
        td(b, sok ? "ok" : bad, 0);
        tdn(b, N(r, "events"));
        td(b, sok ? S(r, "head") : S(r, "problem"), sok);
        td(b, ckb[0] ? ckb : NULL, 1);
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table></div>\n");
}

static void html_scope(audit_buf_t *b, const json_t *rep)
{
    const json_t *scope = json_object_get(rep, "scope");
    const char *names[][2] = {{"hosts", "Hosts"}, {"vhosts", "Virtual hosts"}, {"paths", "Paths"}};
    size_t i;
    json_t *r;
    audit_buf_str(b, "<section id=\"scope\"><h2>Scope</h2><table><tbody>");
    for (int k = 0; k < 3; k++) {
        const json_t *s = json_object_get(scope, names[k][0]);
        char sh[64];
        audit_fmt_shown(s, sh, sizeof(sh));
        audit_buf_printf(b, "<tr><th>%s<br><span class=\"shown\">%s</span></th><td class=\"mono\">",
                         names[k][1], sh);
        json_array_foreach(json_object_get(s, "items"), i, r)
        {
            if (i)
                audit_buf_str(b, ", ");
            audit_buf_html(b, json_string_value(r));
        }
        audit_buf_str(b, "</td></tr>");
    }
    audit_buf_str(b, "</tbody></table><h3>Stores and hash-chain heads</h3><table><thead><tr><th>"
                     "store</th><th class=\"n\">events</th><th>chain</th><th>head (SHA-256)</th>"
                     "</tr></thead><tbody>");
    json_array_foreach(json_object_get(rep, "stores"), i, r)
    {
        char chain[64];
        snprintf(chain, sizeof(chain), "%" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
                 N(r, "chain_start"), N(r, "next_seq") - 1);
        audit_buf_str(b, "<tr>");
        td(b, S(r, "store"), 1);
        tdn(b, N(r, "events"));
        td(b, chain, 0);
        td(b, S(r, "head"), 1);
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table></section>\n");
}

static void html_summary(audit_buf_t *b, const json_t *rep)
{
    const json_t *tot = json_object_get(rep, "totals"), *req = json_object_get(rep, "requests");
    char rate[32];
    audit_buf_str(b, "<section id=\"summary\"><h2>Summary</h2><div class=\"kpi\">");
    if (json_is_true(json_object_get(req, "available")))
        audit_buf_printf(b,
                         "<div id=\"kpi-requests\"><b>%" JSON_INTEGER_FORMAT "</b>requests "
                         "checked</div>",
                         N(req, "total"));
    audit_buf_printf(b,
                     "<div class=\"enf\" id=\"kpi-refused\"><b>%" JSON_INTEGER_FORMAT
                     "</b>refused (enforce)</div><div class=\"ro\" id=\"kpi-report-only\"><b>"
                     "%" JSON_INTEGER_FORMAT "</b>report-only: would be refused, served</div>",
                     N(tot, "refused"), N(tot, "report_only"));
    audit_fmt_rate(json_object_get(req, "rejection_rate"), rate, sizeof(rate));
    audit_buf_printf(b, "<div id=\"kpi-rate\"><b>%s</b>rejection rate</div>", rate);
    audit_buf_printf(b,
                     "<div><b>%" JSON_INTEGER_FORMAT "</b>keys (jkt)</div><div><b>"
                     "%" JSON_INTEGER_FORMAT "</b>client IPs</div><div><b>%" JSON_INTEGER_FORMAT
                     "</b>alert incidents</div></div>\n",
                     N(tot, "keys"), N(tot, "client_ips"), N(tot, "alerts"));
    html_verification(b, json_object_get(rep, "verification"));
    audit_buf_str(b, "</section>\n");
}

static void html_requests(audit_buf_t *b, const json_t *req)
{
    char r1[32], r2[32], r3[32];
    size_t i;
    json_t *r;
    audit_buf_str(b, "<section id=\"requests\"><h2>Requests and rates</h2>");
    if (!json_is_true(json_object_get(req, "available"))) {
        audit_buf_str(b, "<p>No request counts for this period (the stores hold no per-hour "
                         "counts): rates cannot be given.</p></section>\n");
        return;
    }
    audit_fmt_rate(json_object_get(req, "rejection_rate"), r1, sizeof(r1));
    audit_fmt_rate(json_object_get(req, "refusal_rate"), r2, sizeof(r2));
    audit_fmt_rate(json_object_get(req, "report_only_rate"), r3, sizeof(r3));
    audit_buf_printf(b,
                     "<p>%" JSON_INTEGER_FORMAT " requests checked: %" JSON_INTEGER_FORMAT
                     " verified, %" JSON_INTEGER_FORMAT " rejected. Rejection rate <b>%s</b>: "
                     "refused in enforce %s, would be refused (served) in report-only %s. Counted "
                     "per hour by the module, by host, virtual host and mode.</p>",
                     N(req, "total"), N(req, "verified"), N(req, "rejected"), r1, r2, r3);
    audit_buf_str(b, "<table><thead><tr><th>host</th><th>virtual host</th><th>mode</th><th class="
                     "\"n\">requests</th><th class=\"n\">rejected</th><th class=\"n\">rate</th>"
                     "</tr></thead><tbody>");
    json_array_foreach(json_object_get(req, "by_host_vhost_mode"), i, r)
    {
        audit_fmt_rate(json_object_get(r, "rejection_rate"), r1, sizeof(r1));
        audit_buf_str(b, "<tr>");
        td(b, S(r, "host"), 1);
        td(b, S(r, "vhost"), 1);
        td(b, S(r, "mode"), 0);
        tdn(b, N(r, "total"));
        tdn(b, N(r, "rejected"));
        audit_buf_printf(b, "<td class=\"n\">%s</td></tr>", r1);
    }
    audit_buf_str(b, "</tbody></table></section>\n");
}

static void html_comparison(audit_buf_t *b, const json_t *pp)
{
    char d[64], cur[32], prev[32];
    audit_buf_str(b, "<section id=\"comparison\"><h2>Compared with the previous period</h2>");
    if (!S(pp, "from")) {
        audit_buf_str(b, "<p>No previous period (this period is empty).</p></section>\n");
        return;
    }
    audit_buf_str(b, "<p>Previous period of the same length: ");
    audit_buf_html(b, S(pp, "from"));
    audit_buf_str(b, " to ");
    audit_buf_html(b, S(pp, "to"));
    audit_buf_str(b, ".</p>");
    if (!json_is_true(json_object_get(pp, "has_data")))
        audit_buf_str(b, "<p class=\"muted\" id=\"no-previous\">The stores hold no event and no "
                         "request count for the previous period (it precedes the store's first "
                         "record): the changes below compare with nothing.</p>");
    audit_buf_str(b, "<table><thead><tr><th>figure</th><th class=\"n\">this period</th><th "
                     "class=\"n\">previous period</th><th class=\"n\">change</th></tr></thead>"
                     "<tbody>");
    const char *ints[][2] = {{"events", "events"},
                             {"refused", "refused (enforce)"},
                             {"report_only", "report-only (served)"},
                             {"requests", "requests checked"}};
    for (int i = 0; i < 4; i++) {
        const json_t *c = json_object_get(pp, ints[i][0]);
        audit_fmt_delta(c, d, sizeof(d));
        audit_buf_printf(b, "<tr><td>%s</td>", ints[i][1]);
        tdn(b, N(c, "current"));
        tdn(b, N(c, "previous"));
        audit_buf_printf(b, "<td class=\"n %s\">%s</td></tr>",
                         N(c, "delta") > 0   ? "up"
                         : N(c, "delta") < 0 ? "down"
                                             : "",
                         d);
    }
    const char *rates[][2] = {{"rejection_rate", "rejection rate"},
                              {"refusal_rate", "refusal rate"},
                              {"report_only_rate", "report-only rate"}};
    for (int i = 0; i < 3; i++) {
        const json_t *c = json_object_get(pp, rates[i][0]);
        audit_fmt_rate(json_object_get(c, "current"), cur, sizeof(cur));
        audit_fmt_rate(json_object_get(c, "previous"), prev, sizeof(prev));
        audit_fmt_rate_delta(c, d, sizeof(d));
        audit_buf_printf(b,
                         "<tr><td>%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td "
                         "class=\"n\">%s</td></tr>",
                         rates[i][1], cur, prev, d);
    }
    audit_buf_str(b, "</tbody></table></section>\n");
}

static void html_alerts(audit_buf_t *b, const json_t *alerts)
{
    size_t i;
    json_t *r;
    const char *k;
    json_t *v;
    audit_buf_str(b, "<section id=\"alerts\"><h2>Alerts (incidents)</h2><p>One line per incident: "
                     "a burst seen by IP and by key is one incident; counts are final for the "
                     "period.</p><table><thead><tr><th>rule</th><th class=\"n\">incidents</th>"
                     "</tr></thead><tbody>");
    json_object_foreach((json_t *)json_object_get(alerts, "by_rule"), k, v)
    {
        audit_buf_str(b, "<tr>");
        td(b, k, 1);
        tdn(b, json_integer_value(v));
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table>");
    char sh[64];
    snprintf(sh, sizeof(sh), "%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " shown",
             N(alerts, "shown"), N(alerts, "total"));
    audit_buf_printf(b, "<p class=\"shown\">%s</p>", sh);
    audit_buf_str(b, "<table id=\"alert-items\"><thead><tr><th>first seen</th><th>severity</th>"
                     "<th>rule</th><th>mode</th><th>source IP</th><th>jkt</th><th>policy client"
                     "</th><th class=\"n\">events</th><th>last seen</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(alerts, "items"), i, r)
    {
        const json_t *d = json_object_get(r, "dpop");
        const char *sev = S(d, "severity") ? S(d, "severity") : "info";
        audit_buf_str(b, "<tr>");
        tdt(b, S(d, "first_seen"));
        audit_buf_str(b, "<td class=\"sev-");
        audit_buf_html(b, sev);
        audit_buf_str(b, "\">");
        audit_buf_html(b, sev);
        audit_buf_str(b, "</td>");
        audit_buf_str(b, "<td class=\"mono k\">"); /* rule names stay on one line */
        audit_buf_html(b, S(json_object_get(r, "rule"), "name"));
        audit_buf_str(b, "</td>");
        td(b, S(d, "mode"), 0);
        td(b, S(json_object_get(r, "source"), "ip"), 1);
        td(b, S(d, "jkt"), 1);
        td(b, S(d, "policy_client"), 0);
        tdn(b, N(d, "event_count"));
        tdt(b, S(d, "last_seen"));
        audit_buf_str(b, "</tr>");
    }
    if (json_array_size(json_object_get(alerts, "items")) == 0)
        audit_buf_str(b, "<tr><td colspan=\"9\">No alert in this period.</td></tr>");
    audit_buf_str(b, "</tbody></table></section>\n");
}

static void html_tables(audit_buf_t *b, const json_t *rep)
{
    size_t i;
    json_t *r;
    audit_buf_str(b, "<section id=\"by-reason\"><h2>By reason</h2><table><thead><tr><th>reason"
                     "</th><th>error</th><th class=\"n\">refused</th><th class=\"n\">report-only"
                     "</th><th class=\"n\">total</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(rep, "by_reason"), i, r)
    {
        audit_buf_str(b, "<tr>");
        td(b, S(r, "reason"), 1);
        td(b, S(r, "error"), 1);
        tdn(b, N(r, "enforce"));
        tdn(b, N(r, "report_only"));
        tdn(b, N(r, "count"));
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table></section>\n");
    html_breakdown(b, json_object_get(rep, "by_key"), "by-key", "jkt", "key (jkt)", NULL, 1);
    html_breakdown(b, json_object_get(rep, "by_policy_client"), "by-policy-client", "policy_client",
                   "policy client", NULL, 0);
    html_breakdown(b, json_object_get(rep, "by_token_sub"), "by-token-sub", "token_sub",
                   "token sub",
                   "The access token's subject: in report-only, the report-only column lists "
                   "the callers that enforce would refuse.",
                   0);
    html_breakdown(b, json_object_get(rep, "by_token_client_id"), "by-token-client-id",
                   "token_client_id", "token client_id",
                   "The OAuth client the token was issued to: which clients would break "
                   "(report-only) or are refused (enforce).",
                   0);
    html_breakdown(b, json_object_get(rep, "by_client_ip"), "by-ip", "client_ip", "client IP", NULL,
                   0);

    const json_t *rp = json_object_get(rep, "top_replays");
    audit_buf_str(b, "<section id=\"replays\"><h2>Replay attempts</h2>");
    shown(b, rp);
    audit_buf_str(b, "<table><thead><tr><th>jkt</th><th>jti</th><th>policy client</th><th class=\""
                     "n\">refused</th><th class=\"n\">report-only</th><th>first seen</th><th>last "
                     "seen</th><th>client IPs</th><th>hosts</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(rp, "rows"), i, r)
    {
        audit_buf_str(b, "<tr>");
        td(b, S(r, "jkt"), 1);
        td(b, S(r, "jti"), 1);
        td(b, S(r, "policy_client"), 0);
        tdn(b, N(r, "enforce"));
        tdn(b, N(r, "report_only"));
        tdt(b, S(r, "first_seen"));
        tdt(b, S(r, "last_seen"));
        const char *lists[] = {"client_ips", "hosts"};
        for (int l = 0; l < 2; l++) {
            size_t j;
            json_t *v;
            audit_buf_str(b, "<td class=\"mono\">");
            json_array_foreach(json_object_get(r, lists[l]), j, v)
            {
                if (j)
                    audit_buf_str(b, "<br>");
                audit_buf_html(b, json_string_value(v));
            }
            audit_buf_str(b, "</td>");
        }
        audit_buf_str(b, "</tr>");
    }
    if (json_array_size(json_object_get(rp, "rows")) == 0)
        audit_buf_str(b, "<tr><td colspan=\"9\">No replay attempts in this period.</td></tr>");
    audit_buf_str(b, "</tbody></table></section>\n");
}

static void html_reference(audit_buf_t *b, const json_t *rep)
{
    size_t i;
    json_t *r;
    audit_buf_str(b, "<section id=\"glossary\"><h2>Glossary of reasons</h2><table><thead><tr><th>"
                     "reason</th><th>error</th><th>meaning</th><th>what to do</th><th class=\"n\">"
                     "refused</th><th class=\"n\">report-only</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(rep, "glossary"), i, r)
    {
        audit_buf_str(b, "<tr>");
        audit_buf_str(b, "<td class=\"mono k\">");
        audit_buf_html(b, S(r, "reason"));
        audit_buf_str(b, "</td><td class=\"mono k\">");
        audit_buf_html(b, S(r, "error"));
        audit_buf_str(b, "</td>");
        td(b, S(r, "meaning"), 0);
        td(b, S(r, "action"), 0);
        tdn(b, N(r, "enforce"));
        tdn(b, N(r, "report_only"));
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table></section>\n");
    audit_buf_str(b, "<section id=\"controls\"><h2>Controls</h2><p>How DPoP sender-constrained "
                     "access maps to the frameworks, with this period's events and alerts as "
                     "evidence that each control operated.</p><table><thead><tr><th>framework"
                     "</th><th>control</th><th>objective</th><th>evidence</th><th class=\"n\">"
                     "refused</th><th class=\"n\">report-only</th><th class=\"n\">alerts</th>"
                     "</tr></thead><tbody>");
    json_array_foreach(json_object_get(rep, "controls"), i, r)
    {
        audit_buf_str(b, "<tr>");
        td(b, S(r, "framework"), 0);
        td(b, S(r, "control"), 0);
        td(b, S(r, "objective"), 0);
        audit_buf_str(b, "<td class=\"mono\">");
        int first = 1;
        const char *ek;
        json_t *ev;
        const char *objs[] = {"evidence_reasons", "evidence_alerts"};
        for (int o = 0; o < 2; o++)
            json_object_foreach(json_object_get(r, objs[o]), ek, ev)
            {
                audit_buf_str(b, first ? "" : ", ");
                audit_buf_html(b, ek);
                audit_buf_printf(b, "&nbsp;%" JSON_INTEGER_FORMAT, json_integer_value(ev));
                first = 0;
            }
        audit_buf_str(b, "</td>");
        tdn(b, N(r, "refused"));
        tdn(b, N(r, "report_only"));
        tdn(b, N(r, "alerts"));
        audit_buf_str(b, "</tr>");
    }
    audit_buf_str(b, "</tbody></table></section>\n");
}

char *audit_report_html(const json_t *rep)
{
    audit_buf_t b = {0};
    const json_t *period = json_object_get(rep, "period"),
                 *sha = json_object_get(rep, "report_sha256");

    audit_buf_str(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                      "style-src 'unsafe-inline'\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<title>");
    audit_buf_html(&b, S(rep, "report"));
    audit_buf_str(&b, "</title><style>");
    audit_buf_str(&b, css);
    audit_buf_str(&b, "</style></head><body>\n<h1>");
    audit_buf_html(&b, S(rep, "report"));
    audit_buf_str(&b, "</h1>\n<p id=\"period\">Period: <b>");
    audit_buf_html(&b, S(period, "from") ? S(period, "from") : "-");
    audit_buf_str(&b, "</b> to <b>");
    audit_buf_html(&b, S(period, "to") ? S(period, "to") : "-");
    audit_buf_str(&b, "</b> (");
    audit_buf_html(&b, S(period, "basis"));
    audit_buf_str(&b, "). Generated ");
    audit_buf_html(&b, S(rep, "generated_at"));
    audit_buf_str(&b, ".</p>\n<p id=\"report-sha256\" class=\"sha\">Report SHA-256: <b>");
    audit_buf_html(&b, S(sha, "value"));
    audit_buf_str(&b, "</b><br><span class=\"muted\">");
    audit_buf_html(&b, S(sha, "covers"));
    audit_buf_str(&b, ".</span></p>\n");
    html_summary(&b, rep);
    html_scope(&b, rep);
    html_requests(&b, json_object_get(rep, "requests"));
    html_comparison(&b, json_object_get(rep, "previous_period"));
    audit_buf_str(&b, "<section id=\"per-day\"><h2>Per day (UTC), by reason and mode</h2>\n");
    if (N(json_object_get(rep, "per_day"), "shown") < N(json_object_get(rep, "per_day"), "total"))
        shown(&b, json_object_get(rep, "per_day")); /* the latest days of a long period */
    audit_html_days_chart(&b, json_object_get(rep, "per_day"));
    audit_buf_str(&b, "</section>\n");
    html_tables(&b, rep);
    html_alerts(&b, json_object_get(rep, "alerts"));
    html_reference(&b, rep);
    audit_buf_str(&b, "<footer class=\"muted\"><p>Produced by dpop-audit from the hash-chained "
                      "audit store; run <code>dpop-audit verify</code> and compare the chain heads "
                      "above to prove the underlying events were not altered. Report SHA-256 ");
    audit_buf_html(&b, S(sha, "value"));
    audit_buf_str(&b, ".</p></footer>\n</body></html>\n");
    return audit_render_finish(&b);
}
