/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop-policy.c: the operator CLI for policy files (DESIGN.md "Policy
 * YAML"): check, explain, thumbprints.
 *
 *   check FILE        exit 0 + summary on stdout; exit 1 + every error on
 *                     stderr as FILE:LINE:COLUMN: message
 *   explain FILE --jkt J --method M --path P [--at RFC3339]
 *                     one JSON object {"decision","reason","client","rule"};
 *                     exit 0 allow, 1 deny, 2 usage error or invalid file
 *   thumbprints FILE [--format table|json]
 *
 * The policy holds public key thumbprints and routes only; this tool reads
 * no tokens, proofs or private keys and so can print nothing secret.
 *
 * Exit status follows the table dpopctl and dpop-audit share (0 ok, 1
 * invalid, 2 usage or I/O error: a file that cannot be read is 2 for every
 * command); explain's 1 means "deny", so an invalid file is 2 there
 * (DESIGN.md).
 */
#include "config.h"

#include "policy_internal.h"
#include "dpop_result.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXPIRY_WARN_SECONDS (30 * 86400)

static void usage(FILE *f)
{
    fputs("usage: dpop-policy check FILE\n"
          "       dpop-policy explain FILE --jkt JKT --method METHOD --path PATH [--at RFC3339]\n"
          "       dpop-policy thumbprints FILE [--format table|json]\n"
          "       dpop-policy --help | --version | COMMAND --help\n"
          "\n"
          "check        validate FILE; print a summary (exit 0, warnings such as an\n"
          "             empty allow list on stderr) or every error as\n"
          "             FILE:LINE:COLUMN: message on stderr (exit 1)\n"
          "explain      decide one request as mod_dpop would and print\n"
          "             {\"decision\",\"reason\",\"client\",\"rule\"} (exit 0 allow, 1 deny,\n"
          "             2 usage error or invalid file); PATH is normalized like httpd's\n"
          "             r->uri (percent-decoding, dot-segments); --at fixes the clock\n"
          "thumbprints  list every client's key thumbprint and validity window\n",
          f);
}

/* COMMAND --help: that command's usage and examples. */
static const struct {
    const char *name, *help;
} cmd_helps[] = {
    {"check", "usage: dpop-policy check FILE\n"
              "Validate the policy FILE as mod_dpop loads it.  Valid: a summary on stdout\n"
              "(clients, route sets, keys expiring within 30 days, revoked and expired\n"
              "keys), warnings such as an empty allow list on stderr, exit 0.  Invalid:\n"
              "every error on stderr as FILE:LINE:COLUMN: message, exit 1.  A file that\n"
              "cannot be read: exit 2.\n"
              "Examples:\n"
              "  dpop-policy check /etc/apache2/dpop/policy.yaml\n"
              "  dpop-policy check policy.yaml.new && mv policy.yaml.new policy.yaml\n"},
    {"explain",
     "usage: dpop-policy explain FILE --jkt JKT --method METHOD --path PATH [--at RFC3339]\n"
     "Decide one request as mod_dpop would and print one JSON object\n"
     "{\"decision\",\"reason\",\"client\",\"rule\"}.  PATH is normalized like httpd's\n"
     "r->uri (percent-decoding, dot-segments); METHOD is exact (case-sensitive);\n"
     "--at fixes the clock (default: now).  Exit 0 allow, 1 deny, 2 usage error,\n"
     "unreadable or invalid file.\n"
     "Examples:\n"
     "  dpop-policy explain policy.yaml --jkt NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs \\\n"
     "    --method POST --path /api/invoices\n"
     "  dpop-policy explain policy.yaml --jkt \"$(dpopctl thumbprint client.jwk)\" \\\n"
     "    --method GET --path /api/reports/q1 --at 2027-01-02T00:00:00Z\n"},
    {"thumbprints", "usage: dpop-policy thumbprints FILE [--format table|json]\n"
                    "List every client's name, key thumbprint (jkt), not_before, not_after and\n"
                    "status (active, revoked, not-yet-valid, expired).  Exit 0, 1 invalid\n"
                    "file, 2 usage error or unreadable file.\n"
                    "Examples:\n"
                    "  dpop-policy thumbprints policy.yaml\n"
                    "  dpop-policy thumbprints policy.yaml --format json | jq -r '.[].jkt'\n"},
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "dpop-policy: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run dpop-policy --help for usage)\n");
    return EXIT_USAGE;
}

static void print_errors(const policy_errors_t *e)
{
    char line[1024];
    size_t i;
    for (i = 0; i < e->count; i++) {
        policy_error_format(&e->items[i], line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
}

/* A valid policy's warnings (an empty allow list): stderr, exit status
 * unchanged, "FILE:LINE:COLUMN: warning: message". */
static void print_warnings(const policy_errors_t *w)
{
    char line[1024];
    size_t i;
    for (i = 0; w && i < w->count; i++) {
        policy_error_t e = w->items[i];
        char msg[600];
        snprintf(msg, sizeof msg, "warning: %s", e.message ? e.message : "");
        e.message = msg;
        policy_error_format(&e, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
}

/* What an errno means to someone who typed a file name. */
static const char *file_problem(int err)
{
    switch (err) {
    case ENOENT:
        return "no such file";
    case EACCES:
    case EPERM:
        return "permission denied";
    case EISDIR:
        return "is a directory, not a file";
    case ENOTDIR:
        return "a part of the path is not a directory";
    default:
        return strerror(err);
    }
}

/* A file that cannot be read is an I/O error (exit 2 in the shared table),
 * not an invalid policy: say so once, naming the file once. */
static int unreadable(const char *file)
{
    struct stat st;
    int fd = open(file, O_RDONLY | O_CLOEXEC), err = 0;
    if (fd < 0)
        err = errno;
    else if (fstat(fd, &st) != 0)
        err = errno;
    else if (S_ISDIR(st.st_mode))
        err = EISDIR;
    if (fd >= 0)
        close(fd);
    if (!err)
        return 0;
    fprintf(stderr, "dpop-policy: %s: %s\n", file, file_problem(err));
    return EXIT_USAGE;
}

static policy_t *load_or_report(const char *file)
{
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_errors_init(&errs);
    if (policy_load_file(file, &p, &errs) != DPOP_OK)
        print_errors(&errs);
    policy_errors_clear(&errs);
    return p;
}

enum { ST_ACTIVE, ST_REVOKED, ST_PENDING, ST_EXPIRED };
static const char *const status_names[] = {"active", "revoked", "not-yet-valid", "expired"};

/* The same order policy_decide() applies: revoked first, then the window. */
static int status_of(const policy_client_t *c, int64_t now)
{
    if (c->revoked)
        return ST_REVOKED;
    if (c->has_nb && now < c->not_before)
        return ST_PENDING;
    if (c->has_na && now >= c->not_after)
        return ST_EXPIRED;
    return ST_ACTIVE;
}

static int cmd_check(int argc, char **argv)
{
    policy_t *p = NULL;
    int64_t now = (int64_t)time(NULL);
    size_t i, expiring = 0, revoked = 0, expired = 0, pending = 0;
    char when[32];

    if (argc != 1)
        return usage_error("check takes exactly one FILE%s", "");
    if (unreadable(argv[0]))
        return EXIT_USAGE;
    if (!(p = load_or_report(argv[0])))
        return 1;
    print_warnings(policy_warnings(p));
    for (i = 0; i < p->nclients; i++) {
        const policy_client_t *c = p->clients[i];
        int st = status_of(c, now);
        revoked += st == ST_REVOKED;
        expired += st == ST_EXPIRED;
        pending += st == ST_PENDING;
        if (!c->revoked && c->has_na && c->not_after > now &&
            c->not_after - now <= EXPIRY_WARN_SECONDS)
            expiring++;
    }
    printf("%s: valid\n", argv[0]);
    printf("clients: %zu (%zu active, %zu revoked, %zu expired, %zu not yet valid)\n", p->nclients,
           p->nclients - revoked - expired - pending, revoked, expired, pending);
    printf("route sets: %zu\n", p->nsets);
    printf("routes: %zu\n", p->nroutes);
    printf("keys expiring within 30 days: %zu\n", expiring);
    for (i = 0; i < p->nclients; i++) {
        const policy_client_t *c = p->clients[i];
        if (!c->revoked && c->has_na && c->not_after > now &&
            c->not_after - now <= EXPIRY_WARN_SECONDS) {
            policy_time_format(c->not_after, when, sizeof when);
            printf("  %s %s not_after %s\n", c->name, c->jkt, when);
        }
    }
    printf("revoked keys: %zu\n", revoked);
    for (i = 0; i < p->nclients; i++)
        if (p->clients[i]->revoked)
            printf("  %s %s\n", p->clients[i]->name, p->clients[i]->jkt);
    if (expired) {
        printf("expired keys: %zu\n", expired);
        for (i = 0; i < p->nclients; i++) {
            const policy_client_t *c = p->clients[i];
            if (status_of(c, now) == ST_EXPIRED) {
                policy_time_format(c->not_after, when, sizeof when);
                printf("  %s %s not_after %s\n", c->name, c->jkt, when);
            }
        }
    }
    policy_free(p);
    return 0;
}

static int print_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s) {
        fprintf(stderr, "dpop-policy: out of memory\n");
        return -1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

static int cmd_explain(int argc, char **argv)
{
    const char *file = NULL, *jkt = NULL, *method = NULL, *path = NULL, *at = NULL;
    policy_t *p = NULL;
    policy_decision_t d;
    int64_t now = (int64_t)time(NULL);
    char *norm = NULL;
    json_t *j = NULL;
    int i, rc = EXIT_USAGE;

    for (i = 0; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--jkt") == 0)
            slot = &jkt;
        else if (strcmp(argv[i], "--method") == 0)
            slot = &method;
        else if (strcmp(argv[i], "--path") == 0)
            slot = &path;
        else if (strcmp(argv[i], "--at") == 0)
            slot = &at;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return usage_error("explain: unknown option %s", argv[i]);
        else if (!file) {
            file = argv[i];
            continue;
        }
        else
            return usage_error("explain: unexpected argument %s", argv[i]);
        if (i + 1 >= argc)
            return usage_error("explain: %s needs a value", argv[i]);
        if (*slot)
            return usage_error("explain: %s given twice", argv[i]);
        *slot = argv[++i];
    }
    if (!file)
        return usage_error("explain needs a FILE%s", "");
    if (!jkt || !method || !path)
        return usage_error("explain needs --jkt, --method and --path%s", "");
    if (at) {
        const char *why = NULL;
        if (policy_time_parse(at, strlen(at), &now, &why) != DPOP_OK)
            return usage_error("explain: --at is not an RFC 3339 timestamp (e.g. "
                               "2026-01-01T00:00:00Z)%s",
                               "");
    }
    if (!(norm = malloc(strlen(path) + 2)))
        return usage_error("out of memory%s", "");
    if (policy_path_normalize(path, norm, strlen(path) + 2) != DPOP_OK) {
        fprintf(stderr, "dpop-policy: explain: --path must start with '/' and must not hold "
                        "%%00, %%2F, a bad %%-escape or a '..' above the root; httpd "
                        "rejects such a request before any policy runs\n");
        goto done;
    }
    if (unreadable(file) || !(p = load_or_report(file)))
        goto done;
    policy_decide(p, jkt, method, norm, now, &d);
    j = json_object();
    if (j) {
        json_object_set_new(j, "decision", json_string(d.allow ? "allow" : "deny"));
        json_object_set_new(j, "reason",
                            d.allow ? json_null() : json_string(dpop_reason_name(d.reason)));
        json_object_set_new(j, "client", d.client ? json_string(d.client) : json_null());
        json_object_set_new(j, "rule", d.rule[0] ? json_string(d.rule) : json_null());
    }
    if (print_json(j) == 0)
        rc = d.allow ? 0 : 1;
done:
    free(norm);
    policy_free(p);
    return rc;
}

static json_t *time_or_null(int has, int64_t t)
{
    char when[32];
    if (!has)
        return json_null();
    policy_time_format(t, when, sizeof when);
    return json_string(when);
}

static int cmd_thumbprints(int argc, char **argv)
{
    const char *file = NULL, *format = "table";
    policy_t *p = NULL;
    int64_t now = (int64_t)time(NULL);
    size_t i, w = 4;
    int a;

    for (a = 0; a < argc; a++) {
        if (strcmp(argv[a], "--format") == 0) {
            if (a + 1 >= argc)
                return usage_error("thumbprints: --format needs table or json%s", "");
            format = argv[++a];
        }
        else if (strncmp(argv[a], "--format=", 9) == 0) {
            format = argv[a] + 9;
        }
        else if (argv[a][0] == '-' && argv[a][1] == '-') {
            return usage_error("thumbprints: unknown option %s", argv[a]);
        }
        else if (!file) {
            file = argv[a];
        }
        else {
            return usage_error("thumbprints: unexpected argument %s", argv[a]);
        }
    }
    if (!file)
        return usage_error("thumbprints needs a FILE%s", "");
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
        return usage_error("thumbprints: --format is table or json, not %s", format);
    if (unreadable(file))
        return EXIT_USAGE;
    if (!(p = load_or_report(file)))
        return 1;
    if (strcmp(format, "json") == 0) {
        json_t *arr = json_array();
        for (i = 0; arr && i < p->nclients; i++) {
            const policy_client_t *c = p->clients[i];
            json_t *o = json_object();
            if (!o)
                break;
            json_object_set_new(o, "name", json_string(c->name));
            json_object_set_new(o, "jkt", json_string(c->jkt));
            json_object_set_new(o, "not_before", time_or_null(c->has_nb, c->not_before));
            json_object_set_new(o, "not_after", time_or_null(c->has_na, c->not_after));
            json_object_set_new(o, "revoked", json_boolean(c->revoked));
            json_object_set_new(o, "status", json_string(status_names[status_of(c, now)]));
            json_array_append_new(arr, o);
        }
        a = print_json(arr) == 0 ? 0 : 1;
        policy_free(p);
        return a;
    }
    for (i = 0; i < p->nclients; i++)
        if (strlen(p->clients[i]->name) > w)
            w = strlen(p->clients[i]->name);
    printf("%-*s  %-43s  %-20s  %-20s  %s\n", (int)w, "NAME", "JKT", "NOT_BEFORE", "NOT_AFTER",
           "STATUS");
    for (i = 0; i < p->nclients; i++) {
        const policy_client_t *c = p->clients[i];
        char nb[32] = "-", na[32] = "-";
        if (c->has_nb)
            policy_time_format(c->not_before, nb, sizeof nb);
        if (c->has_na)
            policy_time_format(c->not_after, na, sizeof na);
        printf("%-*s  %-43s  %-20s  %-20s  %s\n", (int)w, c->name, c->jkt, nb, na,
               status_names[status_of(c, now)]);
    }
    policy_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    int i;
    size_t c;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dpop-policy %s\n", PACKAGE_VERSION);
        return fflush(stdout) == 0 ? 0 : EXIT_USAGE;
    }
    /* "dpop-policy CMD --help" (or -h anywhere after the command) prints
     * that command's usage and examples, instead of taking it for a FILE. */
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            for (c = 0; c < sizeof(cmd_helps) / sizeof(cmd_helps[0]); c++) {
                if (strcmp(argv[1], cmd_helps[c].name) == 0) {
                    fputs(cmd_helps[c].help, stdout);
                    return 0;
                }
            }
            usage(stdout);
            return 0;
        }
    }
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(argv[1], "explain") == 0)
        return cmd_explain(argc - 2, argv + 2);
    if (strcmp(argv[1], "thumbprints") == 0)
        return cmd_thumbprints(argc - 2, argv + 2);
    return usage_error("unknown command %s", argv[1]);
}
