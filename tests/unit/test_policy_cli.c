/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy_cli.c: Check tests of the dpop-policy CLI, run as the built
 * binary: outputs and exit codes of check, explain and thumbprints
 * (DESIGN.md "Policy YAML"), including usage errors and invalid files.
 */
#include "config.h"

#include <check.h>

#include "test_policy_util.h"
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLI DPOP_BUILDDIR "/policy/dpop-policy"
#define J1 "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define J2 "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
#define J3 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define J4 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"
#define J5 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI"
#define JX "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static char g_dir[] = "/tmp/test_policy_cli_XXXXXX";
static char g_good[256], g_bad[256], g_missing[256];
static char g_out[65536], g_err[65536];

static void slurp(const char *path, char *buf, size_t sz)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    buf[0] = '\0';
    if (!f)
        return;
    n = fread(buf, 1, sz - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run the CLI with args (NULL-terminated); stdout/stderr into g_out/g_err. */
static int run(const char *const *args)
{
    char outp[300], errp[300];
    const char *argv[32];
    pid_t pid;
    int st = 0, i;

    snprintf(outp, sizeof outp, "%s/stdout", g_dir);
    snprintf(errp, sizeof errp, "%s/stderr", g_dir);
    argv[0] = CLI;
    for (i = 0; args[i] && i < 30; i++)
        argv[i + 1] = args[i];
    argv[i + 1] = NULL;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(outp, O_CREAT | O_TRUNC | O_WRONLY, 0600);
        int e = open(errp, O_CREAT | O_TRUNC | O_WRONLY, 0600);
        if (o < 0 || e < 0)
            _exit(99);
        dup2(o, 1);
        dup2(e, 2);
        execv(CLI, (char *const *)argv);
        _exit(98);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    slurp(outp, g_out, sizeof g_out);
    slurp(errp, g_err, sizeof g_err);
    return WEXITSTATUS(st);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static void fmt_time(time_t t, char *out, size_t sz)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char g_soon[32], g_later[32], g_past[32];

static void setup(void)
{
    char text[4096];
    time_t now = time(NULL);
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_good, sizeof g_good, "%s/good.yaml", g_dir);
    snprintf(g_bad, sizeof g_bad, "%s/bad.yaml", g_dir);
    snprintf(g_missing, sizeof g_missing, "%s/missing.yaml", g_dir);
    /* expiries relative to the real clock: check has no --at */
    fmt_time(now + 10 * 86400, g_soon, sizeof g_soon);
    fmt_time(now + 60 * 86400, g_later, sizeof g_later);
    fmt_time(now - 86400, g_past, sizeof g_past);
    snprintf(text, sizeof text,
             "version: 1\n"
             "route_sets:\n"
             "  invoices-rw:\n"
             "    - methods: [GET, POST]\n"
             "      paths: [\"/api/invoices\", \"/api/invoices/**\"]\n"
             "  ro:\n"
             "    - methods: [GET]\n"
             "      paths: [\"/api/reports/*\"]\n"
             "clients:\n"
             "  - name: billing-agent\n"
             "    jkt: " J1 "\n"
             "    not_before: 2026-01-01T00:00:00Z\n"
             "    not_after: %s\n"
             "    allow:\n"
             "      - invoices-rw\n"
             "      - { methods: [GET], paths: [\"/api/customers/*\"] }\n"
             "  - name: old-agent\n"
             "    jkt: " J2 "\n"
             "    revoked: true\n"
             "    allow: [ro]\n"
             "  - name: report-bot\n"
             "    jkt: " J3 "\n"
             "    not_after: %s\n"
             "    allow: [ro]\n"
             "  - name: gone-bot\n"
             "    jkt: " J4 "\n"
             "    not_after: %s\n"
             "    allow: [ro]\n"
             "  - name: future-bot\n"
             "    jkt: " J5 "\n"
             "    not_before: 2999-01-01T00:00:00Z\n"
             "    allow: [ro]\n",
             g_soon, g_later, g_past);
    write_file(g_good, text);
    write_file(g_bad, "version: 2\n"
                      "clients:\n"
                      "  - name: x\n"
                      "    jkt: short\n"
                      "    allow: [nope]\n");
}

static void teardown(void)
{
    char p[300];
    unlink(g_good);
    unlink(g_bad);
    snprintf(p, sizeof p, "%s/stdout", g_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/stderr", g_dir);
    unlink(p);
    rmdir(g_dir);
    strcpy(g_dir, "/tmp/test_policy_cli_XXXXXX");
}

START_TEST(test_help_and_usage)
{
    const char *help[] = {"--help", NULL};
    const char *none[] = {NULL};
    const char *unknown[] = {"frobnicate", NULL};
    ck_assert_int_eq(run(help), 0);
    ck_assert_ptr_nonnull(strstr(g_out, "usage: dpop-policy check FILE"));
    ck_assert_ptr_nonnull(strstr(g_out, "dpop-policy explain FILE --jkt JKT --method METHOD "
                                        "--path PATH [--at RFC3339]"));
    ck_assert_ptr_nonnull(strstr(g_out, "dpop-policy thumbprints FILE [--format table|json]"));
    ck_assert_int_eq(run(none), 2);
    ck_assert_ptr_nonnull(strstr(g_err, "usage:"));
    ck_assert_str_eq(g_out, "");
    ck_assert_int_eq(run(unknown), 2);
    ck_assert_ptr_nonnull(strstr(g_err, "unknown command frobnicate"));
    {
        /* CMD --help prints that command's usage and examples (issue 20
         * item 2), not the global usage, and is not taken for a FILE */
        const char *sub[][4] = {{"check", "--help", NULL, NULL},
                                {"explain", "p.yaml", "-h", NULL},
                                {"thumbprints", "--help", NULL, NULL}};
        const char *want[] = {"usage: dpop-policy check FILE\n",
                              "usage: dpop-policy explain FILE --jkt",
                              "usage: dpop-policy thumbprints FILE"};
        const char *other[] = {"thumbprints FILE", "check FILE", "explain FILE"};
        size_t i;
        for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
            ck_assert_int_eq(run(sub[i]), 0);
            ck_assert_ptr_eq(strstr(g_out, want[i]), g_out);
            ck_assert_ptr_null(strstr(g_out, other[i]));
            ck_assert_ptr_nonnull(strstr(g_out, "Examples:\n  dpop-policy "));
            ck_assert_str_eq(g_err, "");
        }
    }
}
END_TEST

START_TEST(test_version)
{
    const char *args[] = {"--version", NULL};
    ck_assert_int_eq(run(args), 0);
    ck_assert_str_eq(g_out, "dpop-policy " PACKAGE_VERSION "\n");
    ck_assert_str_eq(g_err, "");
}
END_TEST

/* A file that cannot be read is exit 2 for every command (the shared
 * table; before issue 20 check said 1), named once, in words. */
START_TEST(test_unreadable_file)
{
    const char *cmds[][9] = {
        {"check", g_missing, NULL},
        {"thumbprints", g_missing, NULL},
        {"explain", g_missing, "--jkt", J1, "--method", "GET", "--path", "/", NULL}};
    const char *dir[] = {"check", g_dir, NULL};
    char want[512];
    size_t i;
    snprintf(want, sizeof want, "dpop-policy: %s: no such file\n", g_missing);
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        ck_assert_int_eq(run(cmds[i]), 2);
        ck_assert_str_eq(g_out, "");
        ck_assert_str_eq(g_err, want);
    }
    snprintf(want, sizeof want, "dpop-policy: %s: is a directory, not a file\n", g_dir);
    ck_assert_int_eq(run(dir), 2);
    ck_assert_str_eq(g_err, want);
}
END_TEST

START_TEST(test_check_valid)
{
    const char *args[] = {"check", g_good, NULL};
    char want[4096];
    ck_assert_int_eq(run(args), 0);
    snprintf(want, sizeof want,
             "%s: valid\n"
             "clients: 5 (2 active, 1 revoked, 1 expired, 1 not yet valid)\n"
             "route sets: 2\n"
             "routes: 3\n"
             "keys expiring within 30 days: 1\n"
             "  billing-agent " J1 " not_after %s\n"
             "revoked keys: 1\n"
             "  old-agent " J2 "\n"
             "expired keys: 1\n"
             "  gone-bot " J4 " not_after %s\n",
             g_good, g_soon, g_past);
    ck_assert_str_eq(g_out, want);
    ck_assert_str_eq(g_err, "");
}
END_TEST

START_TEST(test_check_invalid)
{
    const char *args[] = {"check", g_bad, NULL};
    const char *missing[] = {"check", g_missing, NULL};
    const char *two[] = {"check", g_good, g_bad, NULL};
    const char *none[] = {"check", NULL};
    char want[2048];
    ck_assert_int_eq(run(args), 1);
    ck_assert_str_eq(g_out, "");
    snprintf(want, sizeof want,
             "%s:1:10: version must be 1, the only policy format this release reads\n"
             "%s:4:10: jkt must be a SHA-256 JWK thumbprint (RFC 7638): 43 base64url "
             "characters, but this one has 5\n"
             "%s:5:13: unknown route set 'nope'; this policy has no route_sets section\n",
             g_bad, g_bad, g_bad);
    ck_assert_str_eq(g_err, want);

    ck_assert_int_eq(run(missing), 2);
    snprintf(want, sizeof want, "dpop-policy: %s: no such file\n", g_missing);
    ck_assert_str_eq(g_err, want);
    ck_assert_int_eq(run(two), 2);
    ck_assert_int_eq(run(none), 2);
}
END_TEST

typedef struct {
    const char *jkt, *method, *path, *at;
    int rc;
    const char *json; /* exact stdout line */
} explain_case_t;

/* the one JSON line `explain` prints, by outcome */
#define JSON_ALLOW(client, rule)                                                                   \
    "{\"decision\":\"allow\",\"reason\":null,\"client\":\"" client "\",\"rule\":\"" rule "\"}"
#define JSON_DENY(reason, client, rule)                                                            \
    "{\"decision\":\"deny\",\"reason\":\"" reason "\",\"client\":\"" client "\",\"rule\":\"" rule  \
    "\"}"
#define JSON_UNKNOWN_KEY                                                                           \
    "{\"decision\":\"deny\",\"reason\":\"policy_denied\",\"client\":null,\"rule\":null}"

static const explain_case_t explain_cases[] = {
    {J1, "GET", "/api/invoices/12", "2026-06-01T00:00:00Z", 0,
     JSON_ALLOW("billing-agent",
                "client billing-agent allow[0] route set invoices-rw: GET,POST /api/invoices/**")},
    {J1, "GET", "/api/customers/7", "2026-06-01T00:00:00Z", 0,
     JSON_ALLOW("billing-agent", "client billing-agent allow[1]: GET /api/customers/*")},
    {J1, "HEAD", "/api/invoices", "2026-06-01T00:00:00Z", 1,
     JSON_DENY("policy_denied", "billing-agent",
               "client billing-agent: no allow entry matches (default deny)")},
    /* the path is normalized as httpd would: no slipping out of /api/invoices */
    {J1, "GET", "/api/invoices/../admin", "2026-06-01T00:00:00Z", 1,
     JSON_DENY("policy_denied", "billing-agent",
               "client billing-agent: no allow entry matches (default deny)")},
    {J1, "GET", "/api/x/%2e%2e/invoices?q=1", "2026-06-01T00:00:00Z", 0,
     JSON_ALLOW("billing-agent",
                "client billing-agent allow[0] route set invoices-rw: GET,POST /api/invoices")},
    {J1, "GET", "/api/invoices", "2025-12-31T23:59:59Z", 1,
     JSON_DENY("key_revoked", "billing-agent",
               "client billing-agent is not valid before 2026-01-01T00:00:00Z (not_before)")},
    {J1, "GET", "/api/invoices", "2026-01-01T01:00:00+01:00", 0,
     JSON_ALLOW("billing-agent",
                "client billing-agent allow[0] route set invoices-rw: GET,POST /api/invoices")},
    {J2, "GET", "/api/reports/q1", NULL, 1,
     JSON_DENY("key_revoked", "old-agent", "client old-agent is revoked")},
    {JX, "GET", "/api/invoices", NULL, 1, JSON_UNKNOWN_KEY},
    {"not-a-thumbprint", "GET", "/api/invoices", NULL, 1, JSON_UNKNOWN_KEY},
    {J3, "GET", "/api/reports/q1", NULL, 0,
     JSON_ALLOW("report-bot", "client report-bot allow[0] route set ro: GET /api/reports/*")},
};

START_TEST(test_explain_table)
{
    const explain_case_t *c = &explain_cases[_i];
    const char *args[16];
    char want[1024];
    int n = 0;
    json_t *j = NULL;
    json_error_t jerr;

    args[n++] = "explain";
    args[n++] = g_good;
    args[n++] = "--jkt";
    args[n++] = c->jkt;
    args[n++] = "--method";
    args[n++] = c->method;
    args[n++] = "--path";
    args[n++] = c->path;
    if (c->at) {
        args[n++] = "--at";
        args[n++] = c->at;
    }
    args[n] = NULL;
    ck_assert_int_eq(run(args), c->rc);
    snprintf(want, sizeof want, "%s\n", c->json);
    ck_assert_str_eq(g_out, want);
    ck_assert_str_eq(g_err, "");
    j = json_loads(g_out, 0, &jerr); /* one well-formed JSON object */
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_object(j));
    ck_assert_uint_eq(json_object_size(j), 4);
    json_decref(j);
}
END_TEST

/* allow: [] loads: check says valid (exit 0) and warns on stderr at the
 * list's position; explain denies with policy_denied and the client's
 * name (DESIGN.md lists what fails a load; an empty allow is not one). */
START_TEST(test_check_and_explain_empty_allow)
{
    char path[300], want[2048];
    const char *check[] = {"check", path, NULL};
    const char *explain[] = {"explain", path,     "--jkt",         J1,  "--method",
                             "GET",     "--path", "/api/invoices", NULL};
    const char *other[] = {"explain", path,     "--jkt",         J2,  "--method",
                           "GET",     "--path", "/api/invoices", NULL};
    snprintf(path, sizeof path, "%s/empty-allow.yaml", g_dir);
    write_file(path, "version: 1\n"
                     "clients:\n"
                     "  - name: onboarding\n"
                     "    jkt: " J1 "\n"
                     "    allow: []\n"
                     "  - name: billing\n"
                     "    jkt: " J2 "\n"
                     "    allow: [{methods: [GET], paths: [\"/api/**\"]}]\n");
    ck_assert_int_eq(run(check), 0);
    snprintf(want, sizeof want,
             "%s: valid\n"
             "clients: 2 (2 active, 0 revoked, 0 expired, 0 not yet valid)\n"
             "route sets: 0\n"
             "routes: 1\n"
             "keys expiring within 30 days: 0\n"
             "revoked keys: 0\n",
             path);
    ck_assert_str_eq(g_out, want);
    snprintf(want, sizeof want,
             "%s:5:12: warning: allow is empty: client 'onboarding' is registered but may call "
             "nothing (every request with its key is denied, reason policy_denied)\n",
             path);
    ck_assert_str_eq(g_err, want);

    ck_assert_int_eq(run(explain), 1);
    ck_assert_str_eq(g_out, JSON_DENY("policy_denied", "onboarding",
                                      "client onboarding: allow is empty (default deny)") "\n");
    ck_assert_str_eq(g_err, "");
    ck_assert_int_eq(run(other), 0);
    unlink(path);
}
END_TEST

/* allow: [] on a revoked client, and on one with a validity window: check
 * names the reason explain gives (key_revoked: policy_decide judges the key
 * before the allow list), not policy_denied. */
START_TEST(test_check_and_explain_empty_allow_revoked)
{
    char path[300], want[2048];
    const char *check[] = {"check", path, NULL};
    const char *revoked[] = {"explain", path,     "--jkt",         J1,  "--method",
                             "GET",     "--path", "/api/invoices", NULL};
    const char *expired[] = {"explain", path,     "--jkt",  J2,     "--method",
                             "GET",     "--path", "/api/x", "--at", "2026-06-01T00:00:00Z",
                             NULL};
    const char *inside[] = {"explain", path,     "--jkt",  J2,     "--method",
                            "GET",     "--path", "/api/x", "--at", "2026-01-15T00:00:00Z",
                            NULL};
    snprintf(path, sizeof path, "%s/empty-allow-revoked.yaml", g_dir);
    write_file(path, "version: 1\n"
                     "clients:\n"
                     "  - name: retired\n"
                     "    jkt: " J1 "\n"
                     "    allow: []\n"
                     "    revoked: true\n"
                     "  - name: pilot\n"
                     "    jkt: " J2 "\n"
                     "    not_after: 2026-02-01T00:00:00Z\n"
                     "    allow: []\n");
    ck_assert_int_eq(run(check), 0);
    snprintf(want, sizeof want,
             "%s:5:12: warning: allow is empty: client 'retired' is revoked and may call "
             "nothing (every request with its key is denied, reason key_revoked)\n"
             "%s:10:12: warning: allow is empty: client 'pilot' is registered but may call "
             "nothing (every request with its key is denied, reason key_revoked outside "
             "not_before/not_after, else policy_denied)\n",
             path, path);
    ck_assert_str_eq(g_err, want);

    ck_assert_int_eq(run(revoked), 1);
    ck_assert_str_eq(g_out, JSON_DENY("key_revoked", "retired", "client retired is revoked") "\n");
    ck_assert_int_eq(run(expired), 1);
    ck_assert_str_eq(g_out, JSON_DENY("key_revoked", "pilot",
                                      "client pilot expired at 2026-02-01T00:00:00Z "
                                      "(not_after)") "\n");
    ck_assert_int_eq(run(inside), 1);
    ck_assert_str_eq(g_out, JSON_DENY("policy_denied", "pilot",
                                      "client pilot: allow is empty (default deny)") "\n");
    unlink(path);
}
END_TEST

START_TEST(test_explain_option_order)
{
    /* options may come before FILE */
    const char *args[] = {"explain", "--method", "GET",  "--path", "/api/reports/x",
                          "--jkt",   J3,         g_good, NULL};
    ck_assert_int_eq(run(args), 0);
    ck_assert_ptr_nonnull(strstr(g_out, "\"client\":\"report-bot\""));
}
END_TEST

START_TEST(test_explain_usage_errors)
{
    const char *no_jkt[] = {"explain", g_good, "--method", "GET", "--path", "/", NULL};
    const char *no_file[] = {"explain", "--jkt", J1, "--method", "GET", "--path", "/", NULL};
    const char *bad_at[] = {"explain", g_good, "--jkt", J1,          "--method", "GET",
                            "--path",  "/",    "--at",  "yesterday", NULL};
    const char *unknown[] = {"explain", g_good,   "--jkt", J1,          "--method",
                             "GET",     "--path", "/",     "--verbose", NULL};
    const char *twice[] = {"explain",  g_good, "--jkt",  J1,  "--jkt", J2,
                           "--method", "GET",  "--path", "/", NULL};
    const char *novalue[] = {"explain", g_good, "--method", "GET", "--path", "/", "--jkt", NULL};
    const char *extra[] = {"explain",  g_good, g_bad,    "--jkt", J1,
                           "--method", "GET",  "--path", "/",     NULL};
    const char *badpath[] = {"explain",  g_good, "--jkt",  J1,
                             "--method", "GET",  "--path", "/api/invoices/..%2Fadmin",
                             NULL};
    const char *escape[] = {"explain", g_good,   "--jkt",   J1,  "--method",
                            "GET",     "--path", "/../etc", NULL};
    const char *invalid[] = {"explain", g_bad, "--jkt", J1, "--method", "GET", "--path", "/", NULL};
    const char *missing[] = {"explain", g_missing, "--jkt", J1,  "--method",
                             "GET",     "--path",  "/",     NULL};

    ck_assert_int_eq(run(no_jkt), 2);
    ck_assert_ptr_nonnull(strstr(g_err, "needs --jkt, --method and --path"));
    ck_assert_int_eq(run(no_file), 2);
    ck_assert_int_eq(run(bad_at), 2);
    ck_assert_ptr_nonnull(strstr(g_err, "--at is not an RFC 3339 timestamp"));
    ck_assert_int_eq(run(unknown), 2);
    ck_assert_ptr_nonnull(strstr(g_err, "unknown option --verbose"));
    ck_assert_int_eq(run(twice), 2);
    ck_assert_int_eq(run(novalue), 2);
    ck_assert_int_eq(run(extra), 2);
    ck_assert_int_eq(run(badpath), 2);
    ck_assert_str_eq(g_out, "");
    ck_assert_ptr_nonnull(strstr(g_err, "httpd rejects such a request"));
    ck_assert_int_eq(run(escape), 2);
    ck_assert_str_eq(g_out, "");
    /* an invalid file: exit 2, positioned errors, nothing on stdout */
    ck_assert_int_eq(run(invalid), 2);
    ck_assert_str_eq(g_out, "");
    ck_assert_ptr_nonnull(strstr(g_err, ":1:10: version must be 1"));
    ck_assert_int_eq(run(missing), 2);
    ck_assert_str_eq(g_out, "");
}
END_TEST

START_TEST(test_thumbprints_table)
{
    const char *args[] = {"thumbprints", g_good, NULL};
    char want[4096];
    ck_assert_int_eq(run(args), 0);
    snprintf(want, sizeof want,
             "NAME           JKT                                          NOT_BEFORE            "
             "NOT_AFTER             STATUS\n"
             "billing-agent  " J1 "  2026-01-01T00:00:00Z  %-20s  active\n"
             "old-agent      " J2 "  -                     -                     revoked\n"
             "report-bot     " J3 "  -                     %-20s  active\n"
             "gone-bot       " J4 "  -                     %-20s  expired\n"
             "future-bot     " J5 "  2999-01-01T00:00:00Z  -                     not-yet-valid\n",
             g_soon, g_later, g_past);
    ck_assert_str_eq(g_out, want);
}
END_TEST

START_TEST(test_thumbprints_json)
{
    const char *args[] = {"thumbprints", g_good, "--format", "json", NULL};
    const char *args2[] = {"thumbprints", "--format=json", g_good, NULL};
    json_error_t jerr;
    json_t *a = NULL, *o = NULL;
    ck_assert_int_eq(run(args), 0);
    a = json_loads(g_out, 0, &jerr);
    ck_assert_ptr_nonnull(a);
    ck_assert(json_is_array(a));
    ck_assert_uint_eq(json_array_size(a), 5);
    o = json_array_get(a, 0);
    ck_assert_str_eq(json_string_value(json_object_get(o, "name")), "billing-agent");
    ck_assert_str_eq(json_string_value(json_object_get(o, "jkt")), J1);
    ck_assert_str_eq(json_string_value(json_object_get(o, "not_before")), "2026-01-01T00:00:00Z");
    ck_assert_str_eq(json_string_value(json_object_get(o, "not_after")), g_soon);
    ck_assert(json_is_false(json_object_get(o, "revoked")));
    ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "active");
    o = json_array_get(a, 1);
    ck_assert(json_is_true(json_object_get(o, "revoked")));
    ck_assert(json_is_null(json_object_get(o, "not_before")));
    ck_assert(json_is_null(json_object_get(o, "not_after")));
    ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "revoked");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 3), "status")), "expired");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 4), "status")),
                     "not-yet-valid");
    json_decref(a);
    ck_assert_int_eq(run(args2), 0);
    a = json_loads(g_out, 0, &jerr);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(json_array_size(a), 5);
    json_decref(a);
}
END_TEST

START_TEST(test_thumbprints_errors)
{
    const char *fmt[] = {"thumbprints", g_good, "--format", "xml", NULL};
    const char *nofmt[] = {"thumbprints", g_good, "--format", NULL};
    const char *nofile[] = {"thumbprints", NULL};
    const char *invalid[] = {"thumbprints", g_bad, NULL};
    const char *opt[] = {"thumbprints", g_good, "--all", NULL};
    ck_assert_int_eq(run(fmt), 2);
    ck_assert_ptr_nonnull(strstr(g_err, "--format is table or json, not xml"));
    ck_assert_int_eq(run(nofmt), 2);
    ck_assert_int_eq(run(nofile), 2);
    ck_assert_int_eq(run(opt), 2);
    ck_assert_int_eq(run(invalid), 1);
    ck_assert_str_eq(g_out, "");
    ck_assert_ptr_nonnull(strstr(g_err, ":4:10: jkt must be"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_cli");
    TCase *tc = tcase_create("cli");

    if (access(CLI, X_OK) != 0) {
        fprintf(stderr, "%s is not built\n", CLI);
        return 1;
    }
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_help_and_usage);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_unreadable_file);
    tcase_add_test(tc, test_check_valid);
    tcase_add_test(tc, test_check_invalid);
    tcase_add_loop_test(tc, test_explain_table, 0,
                        (int)(sizeof explain_cases / sizeof explain_cases[0]));
    tcase_add_test(tc, test_explain_option_order);
    tcase_add_test(tc, test_check_and_explain_empty_allow);
    tcase_add_test(tc, test_check_and_explain_empty_allow_revoked);
    tcase_add_test(tc, test_explain_usage_errors);
    tcase_add_test(tc, test_thumbprints_table);
    tcase_add_test(tc, test_thumbprints_json);
    tcase_add_test(tc, test_thumbprints_errors);
    suite_add_tcase(s, tc);

    return run_policy_suite(s);
}
