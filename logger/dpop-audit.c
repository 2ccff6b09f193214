/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop-audit.c: the operators' CLI over the audit store (DESIGN.md "Audit
 * store"): list, report, alerts, export, verify, prune; --store repeatable (stores
 * of several servers read as one).  Output to stdout; diagnostics to
 * stderr; JSON output is ASCII only (\u escapes).  Exit status, the table
 * dpopctl and dpop-policy share: 0 ok, 1 a failed check (verify or
 * verify --head found tampering, report over a store failing verify, prune
 * refused an altered store, a damaged or truncated store file), 2 usage
 * (unknown option or reason code, bad value, empty time range) or I/O
 * error.  Read-only except prune.  Table output replaces control characters
 * so a hostile user agent cannot drive the analyst's terminal.
 */
#include "config.h"

#include "audit_alerts.h"
#include "audit_alerts_run.h"
#include "audit_args.h"
#include "audit_cli_help.h"
#include "audit_buf.h"
#include "audit_event.h"
#include "audit_export.h"
#include "audit_query.h"
#include "audit_report.h"
#include "audit_time.h"
#include "dpop_audit.h"
#include "dpop_b64.h"
#include "dpop_result.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_STORE "/var/lib/mod_dpop/audit"
#define MAX_STORES 64

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Last resort: the size check before each transaction keeps LMDB's reads
 * inside data.mdb, but a file truncated while we read it still raises
 * SIGBUS on the mapped page.  End as a damaged store does: a message and
 * exit 1, never a signal (async-signal-safe: write and _exit only). */
static void on_sigbus(int sig)
{
    static const char msg[] = "dpop-audit: the audit store file was truncated while being read "
                              "(SIGBUS on its map); run dpop-audit verify on a complete copy\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(1);
}

/* Exit status after a store could not be read: 1 when a store said its
 * file is damaged (a failed check), 2 for an I/O or usage problem. */
static int read_fail(audit_store_t *const *st, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (audit_store_damaged(st[i]))
            return 1;
    return 2;
}

static void usage(FILE *f)
{
    fputs("usage: dpop-audit [--store DIR]... COMMAND [options]\n"
          "  list    [--since T] [--until T] [--jkt J] [--jti J] [--token-hash H] [--ip IP]\n"
          "          [--reason R] [--format table|json|csv] [--csv-raw]\n"
          "          (filters repeat and --jkt/--token-hash/--ip/--reason take a,b lists: OR)\n"
          "  report  [--since T] [--until T] --format html|json|md\n"
          "          [--window S] [--signature-threshold N] [--key-threshold N]\n"
          "  alerts  [--since T] [--follow] [--interval S] [--cursor FILE] [--window S]\n"
          "          [--signature-threshold N] [--key-threshold N]\n"
          "  export  [--since T] [--follow] [--interval S] [--cursor FILE] [--batch N]\n"
          "  verify  [--head HASH]...\n"
          "  prune   --before T\n"
          "T: RFC 3339 (2026-01-02T03:04:05Z) or relative (15m, 24h, 30d).\n"
          "--store DIR may be repeated; default $DPOP_AUDIT_STORE, else " DEFAULT_STORE ".\n"
          "dpop-audit COMMAND --help: one command's options and examples; --version.\n",
          f);
}

enum {
    O_STORE = 256,
    O_SINCE,
    O_UNTIL,
    O_JKT,
    O_JTI,
    O_TOKEN_HASH,
    O_IP,
    O_REASON,
    O_FORMAT,
    O_FOLLOW,
    O_BEFORE,
    O_INTERVAL,
    O_WINDOW,
    O_SIGTH,
    O_KEYTH,
    O_CSV_RAW,
    O_HEAD,
    O_CURSOR,
    O_BATCH,
    O_HELP
};

#define MAX_HEADS 16

typedef struct {
    const char *cmd;
    const char *stores[MAX_STORES];
    size_t nstores;
    audit_filter_t f;
    const char *format;
    int follow;
    int csv_raw; /* list --format csv: exact values, no spreadsheet guard */
    int has_before;
    int64_t before;
    double interval;
    audit_alert_cfg_t cfg;
    unsigned seen;                      /* bit per option given, for per-command validation */
    unsigned char heads[MAX_HEADS][32]; /* verify --head */
    size_t nheads;
    const char *cursor;                           /* export --cursor */
    size_t batch;                                 /* export --batch */
    char ips[AUDIT_FILTER_MAX][INET6_ADDRSTRLEN]; /* --ip values, canonical */
    size_t nips;
} opts_t;

/* --jkt/--jti/--token-hash/--ip/--reason: repeated options and (except
 * --jti, whose values may hold any character) comma lists give several
 * values, OR'ed by the query.  Values are checked here so that a typo is
 * a usage error, not an empty result.  Splits arg in place (argv is
 * writable).  0 or 2 (usage error, message printed). */
static int add_filter(opts_t *o, int x, const char *opt, char *arg)
{
    char msg[1024];
    int split = x != AUDIT_IX_JTI;
    char *p = arg;
    for (;;) {
        char *comma = split ? strchr(p, ',') : NULL;
        if (comma)
            *comma = '\0';
        const char *v = p;
        if (!*v) {
            fprintf(stderr, "dpop-audit: %s: empty value\n", opt);
            return 2;
        }
        if (x == AUDIT_IX_REASON && audit_args_reason(v, msg, sizeof(msg)) != DPOP_OK) {
            fprintf(stderr, "dpop-audit: %s: %s\n", opt, msg);
            return 2;
        }
        if (x == AUDIT_IX_IP) {
            if (o->nips == AUDIT_FILTER_MAX ||
                audit_args_ip(v, o->ips[o->nips], sizeof(o->ips[0])) != DPOP_OK) {
                fprintf(stderr, "dpop-audit: %s: '%s' is not an IPv4 or IPv6 address\n", opt, v);
                return 2;
            }
            v = o->ips[o->nips++];
        }
        if (o->f.nany[x] == AUDIT_FILTER_MAX) {
            fprintf(stderr, "dpop-audit: %s: at most %d values\n", opt, AUDIT_FILTER_MAX);
            return 2;
        }
        o->f.any[x][o->f.nany[x]++] = v;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* 64 hex digits (verify prints the head so) -> 32 bytes. */
static int parse_hash(const char *s, unsigned char *out)
{
    if (strlen(s) != 64)
        return DPOP_ERR;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return DPOP_ERR;
            v = v * 16 + (unsigned)d;
        }
        out[i] = (unsigned char)v;
    }
    return DPOP_OK;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return DPOP_ERR;
    *out = v;
    return DPOP_OK;
}

static int parse_time(const char *opt, const char *s, int64_t now, int64_t *out)
{
    if (audit_time_parse_arg(s, now, out) != DPOP_OK) {
        fprintf(stderr, "dpop-audit: %s: not an RFC 3339 time or relative age (15m, 24h, 30d)\n",
                opt);
        return DPOP_ERR;
    }
    return DPOP_OK;
}

/* 0 ok, 2 usage error */
static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option lo[] = {{"store", required_argument, NULL, O_STORE},
                                       {"since", required_argument, NULL, O_SINCE},
                                       {"until", required_argument, NULL, O_UNTIL},
                                       {"jkt", required_argument, NULL, O_JKT},
                                       {"jti", required_argument, NULL, O_JTI},
                                       {"token-hash", required_argument, NULL, O_TOKEN_HASH},
                                       {"ip", required_argument, NULL, O_IP},
                                       {"reason", required_argument, NULL, O_REASON},
                                       {"format", required_argument, NULL, O_FORMAT},
                                       {"follow", no_argument, NULL, O_FOLLOW},
                                       {"before", required_argument, NULL, O_BEFORE},
                                       {"interval", required_argument, NULL, O_INTERVAL},
                                       {"window", required_argument, NULL, O_WINDOW},
                                       {"signature-threshold", required_argument, NULL, O_SIGTH},
                                       {"key-threshold", required_argument, NULL, O_KEYTH},
                                       {"csv-raw", no_argument, NULL, O_CSV_RAW},
                                       {"head", required_argument, NULL, O_HEAD},
                                       {"cursor", required_argument, NULL, O_CURSOR},
                                       {"batch", required_argument, NULL, O_BATCH},
                                       {"help", no_argument, NULL, O_HELP},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    int64_t now = audit_now_us();
    unsigned long v;
    int c;
    audit_alert_cfg_default(&o->cfg);
    o->interval = 1.0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1 || optind < argc) {
        if (c == -1) {
            /* a non-option word: the command (options may follow it) */
            if (o->cmd) {
                fprintf(stderr, "dpop-audit: unexpected argument '%s'\n", argv[optind]);
                return 2;
            }
            o->cmd = argv[optind++];
            continue;
        }
        if (c >= O_STORE && c <= O_HELP) {
            /* an option that takes one value, given twice: which one was
             * meant?  (filters and --store, --head are lists) */
            static const int once[] = {O_SINCE,  O_UNTIL, O_BEFORE, O_FORMAT, O_INTERVAL,
                                       O_WINDOW, O_SIGTH, O_KEYTH,  O_CURSOR, O_BATCH};
            for (size_t k = 0; k < sizeof(once) / sizeof(once[0]); k++)
                if (c == once[k] && (o->seen & (1u << (c - O_STORE)))) {
                    const char *name = "?";
                    for (const struct option *l = lo; l->name; l++)
                        if (l->val == c)
                            name = l->name;
                    fprintf(stderr, "dpop-audit: --%s given twice\n", name);
                    return 2;
                }
            o->seen |= 1u << (c - O_STORE);
        }
        switch (c) {
        case O_STORE:
            if (o->nstores == MAX_STORES) {
                fprintf(stderr, "dpop-audit: at most %d --store\n", MAX_STORES);
                return 2;
            }
            o->stores[o->nstores++] = optarg;
            break;
        case O_SINCE:
            if (parse_time("--since", optarg, now, &o->f.since_us))
                return 2;
            o->f.has_since = 1;
            break;
        case O_UNTIL:
            if (parse_time("--until", optarg, now, &o->f.until_us))
                return 2;
            o->f.has_until = 1;
            break;
        case O_BEFORE:
            if (parse_time("--before", optarg, now, &o->before))
                return 2;
            o->has_before = 1;
            break;
        case O_JKT:
        case O_JTI:
        case O_TOKEN_HASH:
        case O_IP:
        case O_REASON: {
            static const struct {
                int opt, ix;
                const char *name;
            } keys[] = {{O_JKT, AUDIT_IX_JKT, "--jkt"},
                        {O_JTI, AUDIT_IX_JTI, "--jti"},
                        {O_TOKEN_HASH, AUDIT_IX_TOKEN_HASH, "--token-hash"},
                        {O_IP, AUDIT_IX_IP, "--ip"},
                        {O_REASON, AUDIT_IX_REASON, "--reason"}};
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                if (keys[k].opt == c && add_filter(o, keys[k].ix, keys[k].name, optarg))
                    return 2;
            break;
        }
        case O_FORMAT:
            o->format = optarg;
            break;
        case O_FOLLOW:
            o->follow = 1;
            break;
        case O_INTERVAL:
            if (parse_uint(optarg, 3600, &v) || v == 0) {
                fprintf(stderr, "dpop-audit: --interval: whole seconds, 1..3600\n");
                return 2;
            }
            o->interval = (double)v;
            break;
        case O_WINDOW:
            if (parse_uint(optarg, 86400 * 30, &v) || v == 0) {
                fprintf(stderr, "dpop-audit: --window: seconds, 1..2592000\n");
                return 2;
            }
            o->cfg.window_us = (int64_t)v * 1000000;
            break;
        case O_SIGTH:
        case O_KEYTH:
            if (parse_uint(optarg, 1000000, &v) || v == 0) {
                fprintf(stderr, "dpop-audit: threshold: a number 1..1000000\n");
                return 2;
            }
            if (c == O_SIGTH)
                o->cfg.signature_threshold = (unsigned)v;
            else
                o->cfg.key_threshold = (unsigned)v;
            break;
        case O_CSV_RAW:
            o->csv_raw = 1;
            break;
        case O_BATCH:
            if (parse_uint(optarg, 100000, &v) || v == 0) {
                fprintf(stderr, "dpop-audit: --batch: events per flush, 1..100000\n");
                return 2;
            }
            o->batch = (size_t)v;
            break;
        case O_CURSOR:
            if (!*optarg) {
                fprintf(stderr, "dpop-audit: --cursor: a file name\n");
                return 2;
            }
            o->cursor = optarg;
            break;
        case O_HEAD:
            if (o->nheads == MAX_HEADS || parse_hash(optarg, o->heads[o->nheads]) != DPOP_OK) {
                fprintf(stderr,
                        "dpop-audit: --head: the 64 hex digits verify prints (at most "
                        "%d)\n",
                        MAX_HEADS);
                return 2;
            }
            o->nheads++;
            break;
        case O_HELP:
            /* after a command: that command's usage and examples */
            if (audit_cli_help(o->cmd))
                fputs(audit_cli_help(o->cmd), stdout);
            else
                usage(stdout);
            exit(0);
        case 'V':
            printf("dpop-audit %s\n", PACKAGE_VERSION);
            exit(fflush(stdout) == 0 ? 0 : 2);
        default:
            fprintf(stderr, "dpop-audit: unknown option or missing value: %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (!o->cmd) {
        usage(stderr);
        return 2;
    }
    /* per-command allowed options */
    static const struct {
        const char *cmd;
        unsigned allowed;
    } cmds[] = {
#define B(x) (1u << ((x)-O_STORE))
        {"list", B(O_STORE) | B(O_SINCE) | B(O_UNTIL) | B(O_JKT) | B(O_JTI) | B(O_TOKEN_HASH) |
                     B(O_IP) | B(O_REASON) | B(O_FORMAT) | B(O_CSV_RAW)},
        {"report", B(O_STORE) | B(O_SINCE) | B(O_UNTIL) | B(O_FORMAT) | B(O_WINDOW) | B(O_SIGTH) |
                       B(O_KEYTH)},
        {"alerts", B(O_STORE) | B(O_SINCE) | B(O_FOLLOW) | B(O_CURSOR) | B(O_INTERVAL) |
                       B(O_WINDOW) | B(O_SIGTH) | B(O_KEYTH)},
        {"export",
         B(O_STORE) | B(O_SINCE) | B(O_FOLLOW) | B(O_CURSOR) | B(O_INTERVAL) | B(O_BATCH)},
        {"verify", B(O_STORE) | B(O_HEAD)},
        {"prune", B(O_STORE) | B(O_BEFORE)},
#undef B
    };
    size_t i;
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmds[i].cmd, o->cmd) == 0)
            break;
    if (i == sizeof(cmds) / sizeof(cmds[0])) {
        fprintf(stderr, "dpop-audit: unknown command '%s'\n", o->cmd);
        usage(stderr);
        return 2;
    }
    if (o->seen & ~cmds[i].allowed) {
        fprintf(stderr, "dpop-audit %s: option not valid for this command\n", o->cmd);
        usage(stderr);
        return 2;
    }
    if (o->f.has_since && o->f.has_until && o->f.since_us >= o->f.until_us) {
        /* since <= ts < until: nothing can match (e.g. --since 1h --until 2h) */
        char a[AUDIT_TS_MAX], b[AUDIT_TS_MAX];
        if (!audit_time_format(o->f.since_us, a, sizeof(a)))
            snprintf(a, sizeof(a), "?");
        if (!audit_time_format(o->f.until_us, b, sizeof(b)))
            snprintf(b, sizeof(b), "?");
        fprintf(stderr,
                "dpop-audit: empty time range: --since %s is not before --until %s (relative "
                "times are ages: --since 2h --until 1h)\n",
                a, b);
        return 2;
    }
    if (o->nstores == 0) {
        const char *env = getenv("DPOP_AUDIT_STORE");
        o->stores[o->nstores++] = env && *env ? env : DEFAULT_STORE;
    }
    return 0;
}

/* A --store that is not a store, said in the user's words before LMDB
 * says "open environment: No such file or directory": 0 when dir looks
 * like a store (a directory holding data.mdb), else 2 after a message. */
static int not_a_store(const char *dir)
{
    struct stat st;
    char db[PATH_MAX];
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            fprintf(stderr, "dpop-audit: %s: no such directory\n", dir);
        else if (errno == EACCES)
            fprintf(stderr, "dpop-audit: %s: permission denied\n", dir);
        else
            fprintf(stderr, "dpop-audit: %s: cannot read: %s\n", dir, strerror(errno));
        return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "dpop-audit: %s: not an audit store (a store is a directory)\n", dir);
        return 2;
    }
    if (snprintf(db, sizeof(db), "%s/data.mdb", dir) >= (int)sizeof(db) || stat(db, &st) != 0) {
        if (errno == EACCES)
            fprintf(stderr, "dpop-audit: %s: permission denied\n", dir);
        else
            fprintf(stderr, "dpop-audit: %s: not an audit store (no data.mdb)\n", dir);
        return 2;
    }
    return 0;
}

/* Open the stores, skipping a directory given twice (one MDB_env per file
 * per process, LMDB's rule). */
static int open_stores(opts_t *o, int flags, audit_store_t **st, size_t *n)
{
    char paths[MAX_STORES][PATH_MAX];
    char err[512];
    int ret = 2, rc;
    *n = 0;
    for (size_t i = 0; i < o->nstores; i++) {
        if (not_a_store(o->stores[i]))
            goto fail;
        if (!realpath(o->stores[i], paths[*n])) {
            fprintf(stderr, "dpop-audit: %s: %s\n", o->stores[i], strerror(errno));
            goto fail;
        }
        int dup = 0;
        for (size_t j = 0; j < *n; j++)
            dup |= strcmp(paths[j], paths[*n]) == 0;
        if (dup)
            continue;
        if ((rc = audit_open(o->stores[i], 0, flags, &st[*n], err, sizeof(err))) != DPOP_OK) {
            fprintf(stderr, "dpop-audit: %s\n", err);
            if (rc == AUDIT_ERR_DAMAGED)
                ret = 1;
            goto fail;
        }
        (*n)++;
    }
    return 0;
fail:
    for (size_t j = 0; j < *n; j++)
        audit_close(st[j]);
    *n = 0;
    return ret;
}

/* ------------------------------------------------------------------ list */

/* One CSV cell (RFC 4180 §2).  safe (the default; --csv-raw turns it
 * off): spreadsheets open these files, so a cell that a spreadsheet would
 * run as a formula (first character = + - @ TAB CR: CSV/formula
 * injection, OWASP) gets a leading ' and quotes, and unsafe characters
 * (audit_unsafe_char; CR and LF kept, inside quotes) become U+FFFD.  Integers are written as
 * numbers, never neutralised. */
static void csv_field(const char *s, int safe)
{
    int formula = safe && s[0] && strchr("=+-@\t\r", s[0]) != NULL;
    /* RFC 4180 §2 (6)(7): enclose in quotes, double inner quotes */
    int quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        putchar('"');
    if (formula)
        putchar('\'');
    while (*s) {
        size_t bad = safe && *s != '\n' && *s != '\r' ? audit_unsafe_char(s) : 0;
        if (bad) {
            fputs("\xEF\xBF\xBD", stdout);
            s += bad;
            continue;
        }
        if (*s == '"')
            putchar('"');
        putchar(*s++);
    }
    if (quote)
        putchar('"');
}

static void print_csv(const audit_record_t *r, int safe)
{
    const audit_field_t *fields = audit_event_fields();
    for (size_t i = 0; i < AUDIT_NFIELDS; i++) {
        json_t *v = json_object_get(r->ev, fields[i].name);
        if (i)
            putchar(',');
        if (json_is_string(v))
            csv_field(json_string_value(v), safe);
        else if (json_is_integer(v))
            printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    }
    fputs("\r\n", stdout); /* RFC 4180 §2 (1): CRLF */
}

/* Terminal-safe cell: unsafe characters replaced (audit_term_cell), cut to
 * width on a character boundary. */
static void cell(const char *s, int width, int last)
{
    char buf[512];
    audit_term_cell(s ? s : "-", (size_t)width, buf, sizeof(buf));
    if (last)
        printf("%s\n", buf);
    else
        printf("%-*s ", width, buf);
}

static void print_table_head(void)
{
    printf("%-27s %-16s %-15s %-18s %-14s %-14s %s\n", "TIME", "HOST", "CLIENT_IP", "REASON", "JKT",
           "JTI", "REQUEST");
}

static void print_table(const audit_record_t *r)
{
    char req[160];
    const char *m = audit_rec_str(r, "method"), *p = audit_rec_str(r, "path");
    snprintf(req, sizeof(req), "%s %s", m ? m : "-", p ? p : "-");
    cell(audit_rec_str(r, "ts"), 27, 0);
    cell(audit_rec_str(r, "host"), 16, 0);
    cell(audit_rec_str(r, "client_ip"), 15, 0);
    cell(audit_rec_str(r, "reason"), 18, 0);
    cell(audit_rec_str(r, "jkt"), 14, 0);
    cell(audit_rec_str(r, "jti"), 14, 0);
    cell(req, 60, 1);
}

static int cmd_list(opts_t *o, audit_store_t **st, size_t n)
{
    const char *fmt = o->format ? o->format : "table";
    audit_iter_t *it = NULL;
    audit_record_t rec = {0};
    char err[512];
    int r, rows = 0;
    if (strcmp(fmt, "table") && strcmp(fmt, "json") && strcmp(fmt, "csv")) {
        fprintf(stderr, "dpop-audit list: --format table|json|csv\n");
        return 2;
    }
    if (audit_iter_open(st, n, &o->f, &it, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "dpop-audit: %s\n", err);
        return read_fail(st, n);
    }
    while ((r = audit_iter_next(it, &rec, err, sizeof(err))) == 1) {
        /* no match prints nothing at all: the header comes with the first row */
        if (rows++ == 0) {
            if (strcmp(fmt, "csv") == 0) {
                for (size_t i = 0; i < AUDIT_NFIELDS; i++)
                    printf("%s%s", i ? "," : "", audit_event_fields()[i].name);
                fputs("\r\n", stdout);
            }
            else if (strcmp(fmt, "table") == 0) {
                print_table_head();
            }
        }
        if (strcmp(fmt, "json") == 0) {
            char *s = json_dumps(rec.ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
            if (s)
                puts(s);
            free(s);
        }
        else if (strcmp(fmt, "csv") == 0) {
            print_csv(&rec, !o->csv_raw);
        }
        else {
            print_table(&rec);
        }
        audit_record_clear(&rec);
    }
    if (audit_iter_skipped(it))
        fprintf(stderr, "dpop-audit: %zu unreadable events skipped; run dpop-audit verify\n",
                audit_iter_skipped(it));
    audit_iter_close(it);
    if (r < 0) {
        fflush(stdout);
        fprintf(stderr, "dpop-audit: %s\n", err);
        return read_fail(st, n);
    }
    return fflush(stdout) == 0 ? 0 : 2;
}

/* ---------------------------------------------------------------- report */

static int cmd_report(opts_t *o, audit_store_t **st, size_t n)
{
    json_t *rep = NULL;
    char err[512], *out = NULL;
    if (!o->format ||
        (strcmp(o->format, "html") && strcmp(o->format, "json") && strcmp(o->format, "md"))) {
        fprintf(stderr, "dpop-audit report: --format html|json|md is required\n");
        return 2;
    }
    if (audit_report_build(st, n, &o->f, &o->cfg, audit_now_us(), &rep, err, sizeof(err)) !=
        DPOP_OK) {
        fprintf(stderr, "dpop-audit: %s\n", err);
        return read_fail(st, n);
    }
    /* the report carries verify's result (every format prints it); a
     * failed check makes the report's exit status 1 too */
    int verified = json_is_true(json_object_get(json_object_get(rep, "verification"), "ok"));
    if (strcmp(o->format, "html") == 0)
        out = audit_report_html(rep);
    else if (strcmp(o->format, "md") == 0)
        out = audit_report_md(rep);
    else
        out = audit_report_json(rep);
    json_decref(rep);
    if (!out) {
        fprintf(stderr, "dpop-audit: out of memory\n");
        return 2;
    }
    fputs(out, stdout);
    if (out[0] && out[strlen(out) - 1] != '\n')
        putchar('\n');
    free(out);
    if (fflush(stdout) != 0)
        return 2;
    if (!verified) {
        fprintf(stderr, "dpop-audit: verify FAILED: the report covers an altered or damaged "
                        "store (see its Integrity section)\n");
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- alerts */

/* The cursor knows a store by its real path, however it is named. */
static const char *const *store_names(audit_store_t **st, size_t n)
{
    static char names[MAX_STORES][PATH_MAX];
    static const char *np[MAX_STORES];
    for (size_t i = 0; i < n; i++) {
        if (!realpath(audit_store_dir(st[i]), names[i]))
            snprintf(names[i], sizeof(names[i]), "%s", audit_store_dir(st[i]));
        np[i] = names[i];
    }
    return np;
}

/* alerts and export may follow the store for hours: SIGINT/SIGTERM end
 * them after the current batch, and a closed pipe is a write error (exit
 * 2), not a kill. */
static void follow_signals(void)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
}

static int cmd_alerts(opts_t *o, audit_store_t **st, size_t n)
{
    char err[1024];
    audit_alerts_run_t r = {.stores = st,
                            .n = n,
                            .names = store_names(st, n),
                            .cfg = &o->cfg,
                            .has_since = o->f.has_since,
                            .since_us = o->f.since_us,
                            .follow = o->follow,
                            .interval_s = (unsigned)o->interval,
                            .cursor_path = o->cursor,
                            .out = stdout,
                            .stop = &stop_flag};
    follow_signals();
    int ret = audit_alerts_run(&r, err, sizeof(err));
    if (ret)
        fprintf(stderr, "dpop-audit: %s\n", err);
    return ret;
}

/* ---------------------------------------------------------------- export */

static int cmd_export(opts_t *o, audit_store_t **st, size_t n)
{
    char err[1024];
    audit_export_cfg_t cfg = {.stores = st,
                              .n = n,
                              .names = store_names(st, n),
                              .has_since = o->f.has_since,
                              .since_us = o->f.since_us,
                              .follow = o->follow,
                              .interval_s = (unsigned)o->interval,
                              .cursor_path = o->cursor,
                              .out = stdout,
                              .stop = &stop_flag};
    cfg.batch = o->batch;
    follow_signals();
    int ret = audit_export_run(&cfg, err, sizeof(err));
    if (ret)
        fprintf(stderr, "dpop-audit: %s\n", err);
    return ret;
}

/* ---------------------------------------------------------------- verify */

static int cmd_verify(opts_t *o, audit_store_t **st, size_t n)
{
    int ret = 0;
    char err[512], hx[65];
    for (size_t i = 0; i < n; i++) {
        audit_verify_t v;
        if (audit_verify(st[i], &v, err, sizeof(err)) != DPOP_OK) {
            fflush(stdout);
            fprintf(stderr, "dpop-audit: %s\n", err);
            return read_fail(st, n);
        }
        if (v.ok) {
            dpop_hex_encode(v.head, 32, hx);
            printf("ok: %s: %llu events, chain %llu..%llu, head %s\n", audit_store_dir(st[i]),
                   (unsigned long long)v.events, (unsigned long long)(v.head_seq - v.events + 1),
                   (unsigned long long)v.head_seq, hx);
            if (v.has_ckpt) {
                dpop_hex_encode(v.ckpt, 32, hx);
                printf("checkpoint: %s: seq %llu hash %s (events up to %llu pruned; the chain "
                       "continues from it)\n",
                       audit_store_dir(st[i]), (unsigned long long)v.ckpt_seq, hx,
                       (unsigned long long)v.ckpt_seq);
            }
        }
        else {
            printf("FAILED: %s: event seq %llu: %s\n", audit_store_dir(st[i]),
                   (unsigned long long)v.bad_seq, v.problem);
            if (v.bad_event)
                printf("event: %s\n", v.bad_event);
            ret = 1;
        }
        audit_verify_clear(&v);
    }
    /* --head: a head recorded earlier (in a SIEM, a ticket) must still be
     * on a verified chain; a store rewritten from scratch (every hash
     * recomputed) passes the chain check but not this one */
    for (size_t h = 0; h < o->nheads; h++) {
        int found = 0;
        dpop_hex_encode(o->heads[h], 32, hx);
        for (size_t i = 0; i < n && !found; i++) {
            uint64_t seq = 0;
            int r = audit_find_hash(st[i], o->heads[h], &seq, err, sizeof(err));
            if (r < 0) {
                fflush(stdout);
                fprintf(stderr, "dpop-audit: %s\n", err);
                return read_fail(st, n);
            }
            if (r == 1) {
                printf("head %s: on the chain of %s at seq %llu\n", hx, audit_store_dir(st[i]),
                       (unsigned long long)seq);
                found = 1;
            }
        }
        if (!found) {
            printf("FAILED: head %s is not on the chain of %s: the store was rewritten or "
                   "replaced, or the head was pruned past (only prune checkpoints of pruned "
                   "events are kept)\n",
                   hx, n == 1 ? audit_store_dir(st[0]) : "any store given");
            ret = 1;
        }
    }
    return ret;
}

/* ----------------------------------------------------------------- prune */

static int cmd_prune(opts_t *o, audit_store_t **st, size_t n)
{
    char err[512], ts[AUDIT_TS_MAX];
    if (!o->has_before) {
        fprintf(stderr, "dpop-audit prune: --before T is required\n");
        return 2;
    }
    if (!audit_time_format(o->before, ts, sizeof(ts)))
        snprintf(ts, sizeof(ts), "?");
    for (size_t i = 0; i < n; i++) {
        uint64_t deleted = 0;
        audit_info_t info;
        int rc = audit_prune(st[i], o->before, &deleted, err, sizeof(err));
        if (rc != DPOP_OK) {
            fflush(stdout);
            fprintf(stderr, "dpop-audit: %s (%llu events pruned before the error)\n", err,
                    (unsigned long long)deleted);
            /* an altered or damaged store is a failed check (1); a disk or
             * lock error is an I/O error (2) */
            return rc == AUDIT_ERR_TAMPERED ? 1 : read_fail(&st[i], 1);
        }
        if (audit_info(st[i], &info, err, sizeof(err)) != DPOP_OK) {
            fprintf(stderr, "dpop-audit: %s\n", err);
            return read_fail(&st[i], 1);
        }
        printf("pruned %llu events before %s from %s; chain starts at seq %llu (%llu events "
               "kept)\n",
               (unsigned long long)deleted, ts, audit_store_dir(st[i]),
               (unsigned long long)info.chain_start, (unsigned long long)info.events);
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    audit_store_t *st[MAX_STORES];
    size_t n = 0;
    int ret;
    memset(&o, 0, sizeof(o));
    if ((ret = parse_args(argc, argv, &o)) != 0)
        return ret;
    signal(SIGBUS, on_sigbus);
    audit_exit_on_damage(1);
    int rw = strcmp(o.cmd, "prune") == 0;
    if (rw) {
        /* prune never creates a store that is not there */
        for (size_t i = 0; i < o.nstores; i++)
            if (not_a_store(o.stores[i]))
                return 2;
    }
    if ((ret = open_stores(&o, rw ? AUDIT_OPEN_RDWR | AUDIT_OPEN_NOCREATE : AUDIT_OPEN_RDONLY, st,
                           &n)) != 0)
        return ret;
    if (strcmp(o.cmd, "list") == 0)
        ret = cmd_list(&o, st, n);
    else if (strcmp(o.cmd, "report") == 0)
        ret = cmd_report(&o, st, n);
    else if (strcmp(o.cmd, "alerts") == 0)
        ret = cmd_alerts(&o, st, n);
    else if (strcmp(o.cmd, "export") == 0)
        ret = cmd_export(&o, st, n);
    else if (strcmp(o.cmd, "verify") == 0)
        ret = cmd_verify(&o, st, n);
    else
        ret = cmd_prune(&o, st, n);
    for (size_t i = 0; i < n; i++)
        audit_close(st[i]);
    return ret;
}
