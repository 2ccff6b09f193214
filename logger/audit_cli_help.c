/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_cli_help.c: `dpop-audit COMMAND --help`: one command's options and
 * two or three examples, so an operator at a console need not read the
 * whole usage.  The options listed are the ones the command's allow-list
 * in dpop-audit.c accepts (tests/integration/test_audit_cli.py checks both
 * directions); the man page has the details.
 */
#include "audit_cli_help.h"

#include <stddef.h>
#include <string.h>

#define STORE_LINE                                                                                 \
    "  --store DIR           a store directory (repeatable: several servers' stores\n"             \
    "                        read as one; default $DPOP_AUDIT_STORE, else\n"                       \
    "                        /var/lib/mod_dpop/audit)\n"
#define TIME_LINE "T: RFC 3339 (2026-01-02T03:04:05Z) or relative (15m, 24h, 30d).\n"

static const struct {
    const char *cmd, *help;
} helps[] = {
    {"list",
     "usage: dpop-audit [--store DIR]... list [--since T] [--until T] [--jkt J] [--jti J]\n"
     "           [--token-hash H] [--ip IP] [--reason R] [--format table|json|csv]\n"
     "           [--csv-raw]\n"
     "List the binding failures that match every given filter (a repeated filter\n"
     "or an a,b list matches any of its values); no match prints nothing, exit 0.\n" STORE_LINE
     "  --since T, --until T  time range (since <= time < until)\n"
     "  --jkt J, --jti J      the proof key's thumbprint, the proof's jti\n"
     "  --token-hash H        base64url(SHA-256(token)): dpopctl hash-token\n"
     "  --ip IP, --reason R   client IP (v4 or v6), reason code (replay, ...)\n"
     "  --format F            table (default), json (one event a line) or csv\n"
     "  --csv-raw             csv values exactly as stored (no spreadsheet guard)\n" TIME_LINE
     "Examples:\n"
     "  dpop-audit list --since 24h --reason replay,jkt_mismatch\n"
     "  dpop-audit list --token-hash \"$(dpopctl hash-token - < token.txt)\" --format json\n"
     "  dpop-audit --store /srv/a/audit --store /srv/b/audit list --ip 203.0.113.7\n"},
    {"report",
     "usage: dpop-audit [--store DIR]... report [--since T] [--until T] --format html|json|md\n"
     "           [--window S] [--signature-threshold N] [--key-threshold N]\n"
     "A compliance report over the period: totals by reason, client, key and\n"
     "address, the alerts of the period and the result of verify (exit 1 when\n"
     "the store fails verify).\n" STORE_LINE
     "  --since T, --until T  the period (default: everything)\n"
     "  --format F            html, json or md (required)\n"
     "  --window S            burst-alert window in seconds (default 60)\n"
     "  --signature-threshold N, --key-threshold N   alert thresholds\n" TIME_LINE "Examples:\n"
     "  dpop-audit report --since 30d --format html > dpop-report.html\n"
     "  dpop-audit report --since 2026-01-01T00:00:00Z --until 2026-04-01T00:00:00Z "
     "--format md\n"},
    {"alerts",
     "usage: dpop-audit [--store DIR]... alerts [--since T] [--follow] [--interval S]\n"
     "           [--window S] [--signature-threshold N] [--key-threshold N]\n"
     "SOC alerts as ECS JSON lines (dpop_replay, dpop_token_theft,\n"
     "dpop_signature_burst, dpop_key_burst).\n" STORE_LINE
     "  --since T             from this time (default: everything)\n"
     "  --follow              keep running and print new alerts as they come\n"
     "  --interval S          --follow's poll interval, 1..3600 s (default 1)\n"
     "  --window S            burst window in seconds (default 60)\n"
     "  --signature-threshold N, --key-threshold N   burst thresholds\n" TIME_LINE "Examples:\n"
     "  dpop-audit alerts --since 1h\n"
     "  dpop-audit alerts --since 15m --follow >> /var/log/dpop-alerts.jsonl\n"},
    {"export",
     "usage: dpop-audit [--store DIR]... export [--since T] [--follow] [--interval S]\n"
     "           [--cursor FILE] [--batch N]\n"
     "Every event as an ECS JSON line for a shipper (Filebeat, Vector) into a SIEM.\n" STORE_LINE
     "  --since T             from this time (default: everything)\n"
     "  --follow              keep running and export new events as they come\n"
     "  --interval S          --follow's poll interval, 1..3600 s (default 1)\n"
     "  --cursor FILE         resume after the last event written (kept in FILE)\n"
     "  --batch N             events per flush and cursor update, 1..100000\n" TIME_LINE
     "Examples:\n"
     "  dpop-audit export --since 24h > events.jsonl\n"
     "  dpop-audit export --follow --cursor /var/lib/dpop-export/cursor.json\n"},
    {"verify", "usage: dpop-audit [--store DIR]... verify [--head HASH]...\n"
               "Check the hash chain and the indexes of each store; exit 1 when anything\n"
               "was altered or removed.\n" STORE_LINE
               "  --head HASH           prove that a chain head recorded earlier (64 hex\n"
               "                        digits verify printed) is still on the chain\n"
               "Examples:\n"
               "  dpop-audit verify\n"
               "  dpop-audit verify --head \"$(cat /root/dpop-audit-head-2026-01-01)\"\n"},
    {"prune",
     "usage: dpop-audit [--store DIR]... prune --before T\n"
     "Delete the events older than T (retention), after checking the chain over\n"
     "what it deletes (exit 1, nothing deleted, when it does not match).\n" STORE_LINE
     "  --before T            delete events before this time (required)\n" TIME_LINE "Examples:\n"
     "  dpop-audit prune --before 90d\n"
     "  dpop-audit --store /var/lib/mod_dpop/audit prune --before 2026-01-01T00:00:00Z\n"},
};

const char *audit_cli_help(const char *cmd)
{
    size_t i;
    for (i = 0; cmd && i < sizeof(helps) / sizeof(helps[0]); i++)
        if (strcmp(helps[i].cmd, cmd) == 0)
            return helps[i].help;
    return NULL;
}
