/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_render_md.c: the report model as Markdown (tables; the per-day
 * chart is a table of days by mode and reason).  Every value from events
 * goes through audit_buf_md.
 */
#include "audit_render.h"
#include "audit_report.h"

#include <stdio.h>
#include <string.h>

#define S audit_rs
#define N audit_rn

static void cell(audit_buf_t *b, const char *v)
{
    audit_buf_str(b, " ");
    audit_buf_md(b, v);
    audit_buf_str(b, " |");
}

static void ncell(audit_buf_t *b, json_int_t v)
{
    audit_buf_printf(b, " %" JSON_INTEGER_FORMAT " |", v);
}

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
        audit_buf_md(b, S(r, "store"));
        if (json_is_true(json_object_get(r, "ok"))) {
            audit_buf_printf(b, ": ok, %" JSON_INTEGER_FORMAT " events, head `", N(r, "events"));
            audit_buf_md(b, S(r, "head"));
            audit_buf_printf(b, "` (seq %" JSON_INTEGER_FORMAT ")", N(r, "head_seq"));
            const json_t *ck = json_object_get(r, "checkpoint");
            if (json_is_object(ck)) {
                audit_buf_printf(b, ", pruned up to checkpoint seq %" JSON_INTEGER_FORMAT " `",
                                 N(ck, "seq"));
                audit_buf_md(b, S(ck, "hash"));
                audit_buf_str(b, "`");
            }
        }
        else {
            audit_buf_printf(b, ": **FAILED** at event seq %" JSON_INTEGER_FORMAT ": ",
                             N(r, "bad_seq"));
            audit_buf_md(b, S(r, "problem"));
        }
        audit_buf_str(b, "\n");
    }
    audit_buf_str(b, "\n");
}

/* A breakdown section: rows with refused / report-only / total. */
static void md_breakdown(audit_buf_t *b, const json_t *sec, const char *field, const char *title,
                         int with_client)
{
    char shown[64];
    size_t i;
    json_t *r;
    audit_fmt_shown(sec, shown, sizeof(shown));
    audit_buf_printf(b,
                     "## By %s (%s)\n\n| %s |%s refused | report-only | total | top reason | "
                     "last seen |\n|---|%s---:|---:|---:|---|---|\n",
                     title, shown, title, with_client ? " policy client |" : "",
                     with_client ? "---|" : "");
    json_array_foreach(json_object_get(sec, "rows"), i, r)
    {
        audit_buf_str(b, "|");
        cell(b, S(r, field));
        if (with_client)
            cell(b, S(r, "policy_client"));
        ncell(b, N(r, "enforce"));
        ncell(b, N(r, "report_only"));
        ncell(b, N(r, "count"));
        cell(b, audit_top_reason(r));
        cell(b, S(r, "last_seen"));
        audit_buf_str(b, "\n");
    }
    if (json_array_size(json_object_get(sec, "rows")) == 0)
        audit_buf_printf(b, "| (none) |%s | | | | |\n", with_client ? " |" : "");
    audit_buf_str(b, "\n");
}

static void md_scope(audit_buf_t *b, const json_t *scope)
{
    const char *names[][2] = {{"hosts", "Hosts"}, {"vhosts", "Virtual hosts"}, {"paths", "Paths"}};
    for (int i = 0; i < 3; i++) {
        const json_t *s = json_object_get(scope, names[i][0]);
        char shown[64];
        audit_fmt_shown(s, shown, sizeof(shown));
        audit_buf_printf(b, "- %s (%s): ", names[i][1], shown);
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(s, "items"), j, v)
        {
            if (j)
                audit_buf_str(b, ", ");
            audit_buf_md(b, json_string_value(v));
        }
        audit_buf_str(b, "\n");
    }
    audit_buf_str(b, "\n");
}

static void md_requests(audit_buf_t *b, const json_t *req, const json_t *tot)
{
    char r1[32], r2[32], r3[32];
    audit_buf_str(b, "## Requests and rates\n\n");
    if (!json_is_true(json_object_get(req, "available"))) {
        audit_buf_str(b, "No request counts for this period (the stores hold no per-hour "
                         "counts): rates cannot be given.\n\n");
        return;
    }
    audit_fmt_rate(json_object_get(req, "rejection_rate"), r1, sizeof(r1));
    audit_fmt_rate(json_object_get(req, "refusal_rate"), r2, sizeof(r2));
    audit_fmt_rate(json_object_get(req, "report_only_rate"), r3, sizeof(r3));
    audit_buf_printf(b,
                     "- Requests checked: %" JSON_INTEGER_FORMAT " (verified %" JSON_INTEGER_FORMAT
                     ", rejected %" JSON_INTEGER_FORMAT ")\n- Rejection rate: %s (refused in "
                     "enforce: %s; would be refused, served in report-only: %s)\n- Events "
                     "recorded: %" JSON_INTEGER_FORMAT "\n\n",
                     N(req, "total"), N(req, "verified"), N(req, "rejected"), r1, r2, r3,
                     N(tot, "events"));
    audit_buf_str(b, "| host | vhost | mode | requests | rejected | rate |\n"
                     "|---|---|---|---:|---:|---:|\n");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(req, "by_host_vhost_mode"), i, r)
    {
        audit_fmt_rate(json_object_get(r, "rejection_rate"), r1, sizeof(r1));
        audit_buf_str(b, "|");
        cell(b, S(r, "host"));
        cell(b, S(r, "vhost"));
        cell(b, S(r, "mode"));
        ncell(b, N(r, "total"));
        ncell(b, N(r, "rejected"));
        cell(b, r1);
        audit_buf_str(b, "\n");
    }
    audit_buf_str(b, "\n");
}

static void md_comparison(audit_buf_t *b, const json_t *pp)
{
    char d[64];
    audit_buf_str(b, "## Compared with the previous period\n\n");
    if (!S(pp, "from")) {
        audit_buf_str(b, "No previous period (this period is empty).\n\n");
        return;
    }
    audit_buf_str(b, "Previous period: ");
    audit_buf_md(b, S(pp, "from"));
    audit_buf_str(b, " to ");
    audit_buf_md(b, S(pp, "to"));
    audit_buf_str(b, "\n\n");
    if (!json_is_true(json_object_get(pp, "has_data")))
        audit_buf_str(b, "The stores hold no event and no request count for the previous period: "
                         "the changes below compare with nothing.\n\n");
    audit_buf_str(b, "| figure | this period | previous | change |\n|---|---:|---:|---:|\n");
    const char *ints[][2] = {{"events", "events"},
                             {"refused", "refused (enforce)"},
                             {"report_only", "report-only (served)"},
                             {"requests", "requests checked"}};
    for (int i = 0; i < 4; i++) {
        const json_t *c = json_object_get(pp, ints[i][0]);
        audit_fmt_delta(c, d, sizeof(d));
        audit_buf_printf(b, "| %s |", ints[i][1]);
        ncell(b, N(c, "current"));
        ncell(b, N(c, "previous"));
        cell(b, d);
        audit_buf_str(b, "\n");
    }
    const char *rates[][2] = {{"rejection_rate", "rejection rate"},
                              {"refusal_rate", "refusal rate"},
                              {"report_only_rate", "report-only rate"}};
    for (int i = 0; i < 3; i++) {
        const json_t *c = json_object_get(pp, rates[i][0]);
        char cur[32], prev[32];
        audit_fmt_rate(json_object_get(c, "current"), cur, sizeof(cur));
        audit_fmt_rate(json_object_get(c, "previous"), prev, sizeof(prev));
        audit_fmt_rate_delta(c, d, sizeof(d));
        audit_buf_printf(b, "| %s | %s | %s | %s |\n", rates[i][1], cur, prev, d);
    }
    audit_buf_str(b, "\n");
}

/* The per-day chart as a table: one row per day, refused and report-only
 * totals and the reasons of each mode. */
static void md_days(audit_buf_t *b, const json_t *pd)
{
    const json_t *reasons = json_object_get(pd, "reasons");
    size_t i, j;
    json_t *d, *v;
    char sh[64];
    audit_fmt_shown(pd, sh, sizeof(sh));
    audit_buf_printf(b, "## Per day (UTC), by mode and reason (%s)\n\n", sh);
    audit_buf_str(b, "| date | refused | report-only | "
                     "total | refused by reason | report-only by reason |\n"
                     "|---|---:|---:|---:|---|---|\n");
    json_array_foreach(json_object_get(pd, "days"), i, d)
    {
        audit_buf_str(b, "|");
        cell(b, S(d, "date"));
        ncell(b, N(d, "enforce"));
        ncell(b, N(d, "report_only"));
        ncell(b, N(d, "total"));
        const char *modes[] = {"enforce", "report_only"};
        for (int m = 0; m < 2; m++) {
            int first = 1;
            audit_buf_str(b, " ");
            json_array_foreach(json_object_get(json_object_get(d, "by_reason"), modes[m]), j, v)
            {
                if (json_integer_value(v) == 0)
                    continue;
                if (!first)
                    audit_buf_str(b, ", ");
                audit_buf_md(b, json_string_value(json_array_get(reasons, j)));
                audit_buf_printf(b, " %" JSON_INTEGER_FORMAT, json_integer_value(v));
                first = 0;
            }
            audit_buf_str(b, " |");
        }
        audit_buf_str(b, "\n");
    }
    audit_buf_str(b, "\n");
}

char *audit_report_md(const json_t *rep)
{
    audit_buf_t b = {0};
    const json_t *period = json_object_get(rep, "period"), *tot = json_object_get(rep, "totals");
    const json_t *sha = json_object_get(rep, "report_sha256");
    size_t i;
    json_t *r;
    char shown[64];

    audit_buf_str(&b, "# ");
    audit_buf_md(&b, S(rep, "report"));
    audit_buf_str(&b, "\n\n- Period: ");
    audit_buf_md(&b, S(period, "from"));
    audit_buf_str(&b, " to ");
    audit_buf_md(&b, S(period, "to"));
    audit_buf_str(&b, " (");
    audit_buf_md(&b, S(period, "basis"));
    audit_buf_str(&b, ")\n- Generated: ");
    audit_buf_md(&b, S(rep, "generated_at"));
    audit_buf_str(&b, "\n- Report SHA-256: `");
    audit_buf_md(&b, S(sha, "value"));
    audit_buf_str(&b, "` (");
    audit_buf_md(&b, S(sha, "covers"));
    audit_buf_printf(&b,
                     ")\n- Events: %" JSON_INTEGER_FORMAT
                     " (refused in enforce: %" JSON_INTEGER_FORMAT
                     "; report-only, served: %" JSON_INTEGER_FORMAT "), keys: %" JSON_INTEGER_FORMAT
                     ", client IPs: %" JSON_INTEGER_FORMAT ", alerts: %" JSON_INTEGER_FORMAT "\n\n",
                     N(tot, "events"), N(tot, "refused"), N(tot, "report_only"), N(tot, "keys"),
                     N(tot, "client_ips"), N(tot, "alerts"));
    md_verification(&b, json_object_get(rep, "verification"));
    audit_buf_str(&b, "## Scope\n\n");
    md_scope(&b, json_object_get(rep, "scope"));
    audit_buf_str(&b, "| store | events | chain | head |\n|---|---:|---|---|\n");
    json_array_foreach(json_object_get(rep, "stores"), i, r)
    {
        audit_buf_str(&b, "|");
        cell(&b, S(r, "store"));
        audit_buf_printf(&b,
                         " %" JSON_INTEGER_FORMAT " | %" JSON_INTEGER_FORMAT
                         "..%" JSON_INTEGER_FORMAT " | `",
                         N(r, "events"), N(r, "chain_start"), N(r, "next_seq") - 1);
        audit_buf_md(&b, S(r, "head"));
        audit_buf_str(&b, "` |\n");
    }
    audit_buf_str(&b, "\n");
    md_requests(&b, json_object_get(rep, "requests"), tot);
    md_comparison(&b, json_object_get(rep, "previous_period"));
    md_days(&b, json_object_get(rep, "per_day"));

    audit_buf_str(&b, "## By reason\n\n| reason | error | refused | report-only | total |\n"
                      "|---|---|---:|---:|---:|\n");
    json_array_foreach(json_object_get(rep, "by_reason"), i, r)
    {
        audit_buf_str(&b, "|");
        cell(&b, S(r, "reason"));
        cell(&b, S(r, "error"));
        ncell(&b, N(r, "enforce"));
        ncell(&b, N(r, "report_only"));
        ncell(&b, N(r, "count"));
        audit_buf_str(&b, "\n");
    }
    audit_buf_str(&b, "\n");
    md_breakdown(&b, json_object_get(rep, "by_key"), "jkt", "key (jkt)", 1);
    md_breakdown(&b, json_object_get(rep, "by_policy_client"), "policy_client", "policy client", 0);
    md_breakdown(&b, json_object_get(rep, "by_token_sub"), "token_sub", "token sub", 0);
    md_breakdown(&b, json_object_get(rep, "by_token_client_id"), "token_client_id",
                 "token client_id", 0);
    md_breakdown(&b, json_object_get(rep, "by_client_ip"), "client_ip", "client IP", 0);

    const json_t *rp = json_object_get(rep, "top_replays");
    audit_fmt_shown(rp, shown, sizeof(shown));
    audit_buf_printf(&b,
                     "## Replay attempts (%s)\n\n| jkt | jti | refused | report-only | first "
                     "seen | last seen | client IPs | hosts |\n"
                     "|---|---|---:|---:|---|---|---|---|\n",
                     shown);
    json_array_foreach(json_object_get(rp, "rows"), i, r)
    {
        audit_buf_str(&b, "|");
        cell(&b, S(r, "jkt"));
        cell(&b, S(r, "jti"));
        ncell(&b, N(r, "enforce"));
        ncell(&b, N(r, "report_only"));
        cell(&b, S(r, "first_seen"));
        cell(&b, S(r, "last_seen"));
        const char *lists[] = {"client_ips", "hosts"};
        for (int l = 0; l < 2; l++) {
            size_t j;
            json_t *v;
            audit_buf_str(&b, " ");
            json_array_foreach(json_object_get(r, lists[l]), j, v)
            {
                if (j)
                    audit_buf_str(&b, ", ");
                audit_buf_md(&b, json_string_value(v));
            }
            audit_buf_str(&b, " |");
        }
        audit_buf_str(&b, "\n");
    }
    if (json_array_size(json_object_get(rp, "rows")) == 0)
        audit_buf_str(&b, "| (none) | | | | | | | |\n");

    const json_t *alerts = json_object_get(rep, "alerts");
    audit_buf_printf(&b,
                     "\n## Alerts (incidents: %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
                     " shown)\n\n| rule | incidents |\n|---|---:|\n",
                     N(alerts, "shown"), N(alerts, "total"));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(alerts, "by_rule"), k, v)
    {
        audit_buf_str(&b, "|");
        cell(&b, k);
        ncell(&b, json_integer_value(v));
        audit_buf_str(&b, "\n");
    }
    audit_buf_str(&b, "\n| first seen | severity | rule | mode | source IP | jkt | policy client "
                      "| events | last seen |\n|---|---|---|---|---|---|---|---:|---|\n");
    json_array_foreach(json_object_get(alerts, "items"), i, r)
    {
        const json_t *d = json_object_get(r, "dpop");
        audit_buf_str(&b, "|");
        cell(&b, S(d, "first_seen"));
        cell(&b, S(d, "severity"));
        cell(&b, S(json_object_get(r, "rule"), "name"));
        cell(&b, S(d, "mode"));
        cell(&b, S(json_object_get(r, "source"), "ip"));
        cell(&b, S(d, "jkt"));
        cell(&b, S(d, "policy_client"));
        ncell(&b, N(d, "event_count"));
        cell(&b, S(d, "last_seen"));
        audit_buf_str(&b, "\n");
    }

    audit_buf_str(&b, "\n## Glossary of reasons\n\n| reason | error | meaning | what to do | "
                      "refused | report-only |\n|---|---|---|---|---:|---:|\n");
    json_array_foreach(json_object_get(rep, "glossary"), i, r)
    {
        audit_buf_str(&b, "|");
        cell(&b, S(r, "reason"));
        cell(&b, S(r, "error"));
        cell(&b, S(r, "meaning"));
        cell(&b, S(r, "action"));
        ncell(&b, N(r, "enforce"));
        ncell(&b, N(r, "report_only"));
        audit_buf_str(&b, "\n");
    }
    audit_buf_str(&b, "\n## Controls\n\n| framework | control | objective | refused | "
                      "report-only | alerts |\n|---|---|---|---:|---:|---:|\n");
    json_array_foreach(json_object_get(rep, "controls"), i, r)
    {
        audit_buf_str(&b, "|");
        cell(&b, S(r, "framework"));
        cell(&b, S(r, "control"));
        cell(&b, S(r, "objective"));
        ncell(&b, N(r, "refused"));
        ncell(&b, N(r, "report_only"));
        ncell(&b, N(r, "alerts"));
        audit_buf_str(&b, "\n");
    }
    audit_buf_str(&b, "\nReport SHA-256: `");
    audit_buf_md(&b, S(sha, "value"));
    audit_buf_str(&b, "`\n");
    return audit_render_finish(&b);
}
