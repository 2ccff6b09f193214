/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy_load.c: Check tests of the policy loader: every class of
 * error with its exact line:column and message, several errors reported
 * from one file, limits, file errors, and files that must load.
 *
 * Table-driven: each case is YAML text, the expected position and a piece
 * of the expected sentence.  Positions are 1-based (libyaml's marks are
 * 0-based; the loader converts).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpop_policy.h"
#include "test_policy_util.h"

#define J1 "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define J2 "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
#define A42 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* lines 1-5: a route set "rs"; line 6 "clients:" */
#define RS "version: 1\nroute_sets:\n  rs:\n    - methods: [GET]\n      paths: [\"/a/**\"]\n"
/* a route set whose routes are given inline on line 3 */
#define RS1(route) "version: 1\nroute_sets:\n  rs: [" route "]\nclients: []\n"
/* one client at line 7 with its name, jkt on line 8 and `extra` on line 9 */
#define CLIENT(extra) RS "clients:\n  - name: c1\n    jkt: " J1 "\n" extra

typedef struct {
    const char *yaml;
    int line, column;
    const char *msg; /* substring of the message */
} err_case_t;

static const err_case_t err_cases[] = {
    /* top level */
    {"version: 2\nclients: []\n", 1, 10, "version must be 1"},
    {"version: \"1\"\nclients: []\n", 1, 10, "version must be 1"},
    {"clients: []\n", 1, 1, "no 'version'"},
    {"version: 1\n", 1, 1, "no 'clients'"},
    {"version: 1\nclients: []\nextra: 1\n", 3, 1, "unknown key 'extra' in the policy"},
    {"version: 1\nclients: []\nversion: 1\n", 3, 1,
     "duplicate key 'version' in the policy (first at line 1)"},
    {"- version: 1\n", 1, 1,
     "the policy (a mapping with version, route_sets and clients) must be a mapping, but it is a "
     "list"},
    {"version: 1\nclients: x\n", 2, 10,
     "clients (a list of clients) must be a list, but it is a single value"},
    {"version: 1\nclients:\n", 2, 9, "clients (a list of clients) must be a list, but it is empty"},
    {"", 1, 1, "the policy is empty"},
    {"# nothing but a comment\n", 1, 1, "the policy is empty"},
    /* YAML itself */
    {"version: 1\nclients: [\n", 3, 1, "YAML syntax error: did not find expected node content"},
    {"version: 1\nclients:\n  - name: \"c1\n", 4, 1,
     "YAML syntax error: found unexpected end of stream"},
    {"version: 1\n\tclients: []\n", 2, 1, "YAML syntax error"},
    {"version: 1\nclients: []\n---\nversion: 1\n", 3, 1, "one YAML document"},
    {"version: 1\nroute_sets:\n  rs: &r\n    - methods: [GET]\n      paths: [/]\nclients: []\n", 3,
     7, "YAML anchors (&r) are not allowed"},
    {CLIENT("    allow: [*r]\n"), 9, 13, "YAML aliases (*r) are not allowed"},
    {"version: !!int 1\nclients: []\n", 1, 10,
     "explicit YAML tags (tag:yaml.org,2002:int) are not allowed"},
    {"version: 1\nclients: []\nx: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]\n", 3, 19,
     "nested deeper than 16 levels"},
    {"version: 1\nclients:\n  - name: \"a\\0b\"\n", 3, 11, "contains a NUL character"},
    /* route sets */
    {"version: 1\nroute_sets: [a]\nclients: []\n", 2, 13,
     "route_sets (a mapping of names to lists of routes) must be a mapping"},
    {"version: 1\nroute_sets:\n  rs: []\nclients: []\n", 3, 7, "route set 'rs' is empty"},
    {"version: 1\nroute_sets:\n  rs: {methods: [GET]}\nclients: []\n", 3, 7,
     "a route set (a list of {methods, paths} routes) must be a list, but it is a mapping"},
    {"version: 1\nroute_sets:\n  \"r s\": [{methods: [GET], paths: [/]}]\nclients: []\n", 3, 3,
     "route set name 'r s' may only use letters"},
    {"version: 1\nroute_sets:\n  rs: [{methods: [GET], paths: [/]}]\n  rs: [{methods: [GET], "
     "paths: [/]}]\nclients: []\n",
     4, 3, "route set 'rs' is defined twice (first at line 3)"},
    {RS1("x"), 3, 8, "each route of a route set must be a mapping, but it is a single value"},
    {RS1("{paths: [/]}"), 3, 8, "this route has no 'methods'"},
    {RS1("{methods: [GET]}"), 3, 8, "this route has no 'paths'"},
    {RS1("{methods: [GET], paths: [/], path: [/x]}"), 3, 37,
     "unknown key 'path' in a route; the keys allowed here are: methods, paths"},
    {RS1("{methods: [GET], paths: [/], methods: [PUT]}"), 3, 37,
     "duplicate key 'methods' in a route (first at line 3)"},
    /* methods */
    {RS1("{methods: [], paths: [/]}"), 3, 18, "methods is empty"},
    {RS1("{methods: GET, paths: [/]}"), 3, 18, "methods must be a list, but it is a single value"},
    {RS1("{methods: [\"GE T\"], paths: [/]}"), 3, 19, "method 'GE T' contains a space"},
    {RS1("{methods: [\"GE(T\"], paths: [/]}"), 3, 19,
     "method 'GE(T' contains '(', which an HTTP method token cannot hold"},
    {RS1("{methods: [get], paths: [/]}"), 3, 19,
     "methods are case-sensitive (RFC 9110 §9.1): write 'GET', not 'get'"},
    {RS1("{methods: [\"*\", GET], paths: [/]}"), 3, 18,
     "'*' already means every method: list it alone"},
    {RS1("{methods: [\"G*\"], paths: [/]}"), 3, 19, "'*' means any method and must stand alone"},
    {RS1("{methods: [GET, POST, GET], paths: [/]}"), 3, 30, "method 'GET' is listed twice"},
    {RS1("{methods: [PURGE, PURGE], paths: [/]}"), 3, 26, "method 'PURGE' is listed twice"},
    {RS1("{methods: [[GET]], paths: [/]}"), 3, 19,
     "each method must be a single value, but it is a list"},
    /* paths */
    {RS1("{methods: [GET], paths: []}"), 3, 32, "paths is empty"},
    {RS1("{methods: [GET], paths: \"/a\"}"), 3, 32, "paths must be a list"},
    {RS1("{methods: [GET], paths: [\"\"]}"), 3, 33, "a path pattern cannot be empty"},
    {RS1("{methods: [GET], paths: [api]}"), 3, 33, "path pattern 'api' must start with '/'"},
    {RS1("{methods: [GET], paths: [\"/a/*.pdf\"]}"), 3, 33, "'*' and '**' must be a whole segment"},
    {RS1("{methods: [GET], paths: [\"/a**\"]}"), 3, 33, "'*' and '**' must be a whole segment"},
    {RS1("{methods: [GET], paths: [\"/a?b=1\"]}"), 3, 33,
     "contains '?': patterns match the path only"},
    {RS1("{methods: [GET], paths: [\"/a#top\"]}"), 3, 33, "contains '#'"},
    {RS1("{methods: [GET], paths: [\"/a//b\"]}"), 3, 33, "has an empty segment ('//')"},
    {RS1("{methods: [GET], paths: [\"/a/../b\"]}"), 3, 33, "has a '.' or '..' segment"},
    {RS1("{methods: [GET], paths: [\"/a/./b\"]}"), 3, 33, "has a '.' or '..' segment"},
    {RS1("{methods: [GET], paths: [\"/**/b/**\"]}"), 3, 33, "has more than one '**'"},
    {RS1("{methods: [GET], paths: [\"/a%2Fb\"]}"), 3, 33, "contains the escape '%2F'"},
    {RS1("{methods: [GET], paths: [\"/a\\tb\"]}"), 3, 33, "contains a control character"},
    {RS1("{methods: [GET], paths: "
         "[\"/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22/23/24/25/26/27/28/29/30/31/"
         "32/33/34/35/36/37/38/39/40/41/42/43/44/45/46/47/48/49/50/51/52/53/54/55/56/57/58/59/60/"
         "61/62/63/64/65\"]}"),
     3, 33, "has more than 64 segments"},
    {RS1("{methods: [GET], paths: [{a: b}]}"), 3, 33,
     "each path must be a single value, but it is a mapping"},
    /* clients */
    {"version: 1\nclients: [x]\n", 2, 11,
     "each client must be a mapping, but it is a single value"},
    {"version: 1\nclients:\n  - jkt: " J1 "\n    allow: [{methods: [GET], paths: [/]}]\n", 3, 5,
     "this client has no 'name'"},
    {"version: 1\nclients:\n  - name: c1\n    allow: [{methods: [GET], paths: [/]}]\n", 3, 5,
     "this client has no 'jkt'"},
    {CLIENT(""), 7, 5, "this client has no 'allow' list"},
    {CLIENT("    allow: [rs]\n    colour: blue\n"), 10, 5,
     "unknown key 'colour' in a client; the keys allowed here are: name, jkt, not_before, "
     "not_after, revoked, allow"},
    {CLIENT("    allow: [rs]\n    jkt: " J2 "\n"), 10, 5,
     "duplicate key 'jkt' in a client (first at line 8)"},
    {"version: 1\nclients:\n  - name: \"a b\"\n    jkt: " J1
     "\n    allow: [{methods: [GET], paths: [/]}]\n",
     3, 11, "client name 'a b' may only use visible ASCII"},
    {"version: 1\nclients:\n  - name: \"\"\n    jkt: " J1
     "\n    allow: [{methods: [GET], paths: [/]}]\n",
     3, 11, "a client name must be 1 to 128 characters"},
    {"version: 1\nclients:\n  - name: [a]\n    jkt: " J1
     "\n    allow: [{methods: [GET], paths: [/]}]\n",
     3, 11, "name must be a single value, but it is a list"},
    {CLIENT("    allow: [rs]\n  - name: c1\n    jkt: " J2 "\n    allow: [rs]\n"), 10, 11,
     "client name 'c1' is already used by the client at line 7"},
    {CLIENT("    allow: [rs]\n  - name: c2\n    jkt: " J1 "\n    allow: [rs]\n"), 11, 10,
     "jkt is already used by client 'c1' (line 7)"},
    {"version: 1\nclients:\n  - name: c1\n    jkt: abc\n    allow: [{methods: [GET], paths: "
     "[/]}]\n",
     4, 10, "43 base64url characters, but this one has 3"},
    {"version: 1\nclients:\n  - name: c1\n    jkt: " A42
     "\n    allow: [{methods: [GET], paths: [/]}]\n",
     4, 10, "43 base64url characters, but this one has 42"},
    {"version: 1\nclients:\n  - name: c1\n    jkt: NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs\n   "
     " allow: [{methods: [GET], paths: [/]}]\n",
     4, 10, "jkt contains '+', which is not a base64url character"},
    {"version: 1\nclients:\n  - name: c1\n    jkt: " J1
     "=\n    allow: [{methods: [GET], paths: [/]}]\n",
     4, 10, "remove the '=' padding"},
    {"version: 1\nclients:\n  - name: c1\n    jkt: " A42
     "B\n    allow: [{methods: [GET], paths: [/]}]\n",
     4, 10, "not the canonical base64url encoding of 32 bytes"},
    {CLIENT("    not_before: 2026-13-01T00:00:00Z\n    allow: [rs]\n"), 9, 17,
     "not_before '2026-13-01T00:00:00Z' is not a valid timestamp: the month must be 01 to 12"},
    {CLIENT("    not_before: 2026-02-29T00:00:00Z\n    allow: [rs]\n"), 9, 17,
     "that day does not exist in that month"},
    {CLIENT("    not_after: 2026-01-01T24:00:00Z\n    allow: [rs]\n"), 9, 16,
     "the time of day is out of range"},
    {CLIENT("    not_after: 2026-01-01T00:00:00\n    allow: [rs]\n"), 9, 16, "needs a time zone"},
    {CLIENT("    not_after: 2026-01-01 00:00:00Z\n    allow: [rs]\n"), 9, 16,
     "expected an RFC 3339 timestamp"},
    {CLIENT("    not_after: 2026-01-01T00:00:00+25:00\n    allow: [rs]\n"), 9, 16,
     "the UTC offset is out of range"},
    {CLIENT("    not_after: 1767225600\n    allow: [rs]\n"), 9, 16,
     "expected an RFC 3339 timestamp"},
    {CLIENT("    not_before: 2026-06-01T00:00:00Z\n    not_after: 2026-06-01T00:00:00Z\n    allow: "
            "[rs]\n"),
     10, 16,
     "not_after (2026-06-01T00:00:00Z) must be later than not_before (2026-06-01T00:00:00Z)"},
    {CLIENT("    not_before: 2026-06-01T02:00:00+02:00\n    not_after: 2026-06-01T00:00:00Z\n    "
            "allow: [rs]\n"),
     10, 16, "must be later than not_before"},
    {CLIENT("    revoked: yes\n    allow: [rs]\n"), 9, 14, "revoked must be true or false"},
    {CLIENT("    revoked: \"true\"\n    allow: [rs]\n"), 9, 14,
     "revoked must be true or false (without quotes)"},
    {CLIENT("    allow: rs\n"), 9, 12,
     "allow (a list of route set names and routes) must be a list"},
    {CLIENT("    allow: [rs, nope]\n"), 9, 17,
     "unknown route set 'nope'; define it under route_sets"},
    {"version: 1\nclients:\n  - name: c1\n    jkt: " J1 "\n    allow: [rs]\n", 5, 13,
     "unknown route set 'rs'; this policy has no route_sets section"},
    {CLIENT("    allow: [[rs]]\n"), 9, 13,
     "each allow entry is a route set name or a {methods, paths} mapping, but this is a list"},
    {CLIENT("    allow: [{methods: [GET]}]\n"), 9, 13, "this route has no 'paths'"},
    /* clients before route_sets: references are resolved at the end */
    {"version: 1\nclients:\n  - name: c1\n    jkt: " J1
     "\n    allow: [rs, nope]\nroute_sets:\n  rs: [{methods: [GET], paths: [/]}]\n",
     5, 17, "unknown route set 'nope'; define it under route_sets or fix the name"},
    {"version: 1\nclients:\n  - name: c1\n    jkt: " J1
     "\n    allow: [rs]\nroute_sets:\n  rs: [{methods: [get], paths: [/]}]\n",
     7, 19, "write 'GET', not 'get'"},
    {"version: 1\nclients: []\nclients: []\n", 3, 1,
     "duplicate key 'clients' in the policy (first at line 2)"},
    {"version: 1\nroute_sets: {}\nroute_sets: {}\nclients: []\n", 3, 1,
     "duplicate key 'route_sets'"},
    {"version: 1\nroute_sets:\n  rs: &a [{methods: [GET], paths: [/]}]\nclients: [*a]\n", 4, 11,
     "YAML aliases (*a) are not allowed"},
    {CLIENT("    allow: [rs]\n  - name: c2\n    jkt: " J2 "\n    allow: [rs\n"), 13, 1,
     "YAML syntax error"},
    {CLIENT("    allow: [{methods: [GET], paths: [\"/x/**/y/**\"]}]\n"), 9, 38,
     "more than one '**'"},
};

static const err_case_t *find_error(const policy_errors_t *e, int line, int column)
{
    size_t i;
    for (i = 0; i < e->count; i++)
        if (e->items[i].line == line && e->items[i].column == column)
            return (const err_case_t *)&e->items[i];
    return NULL;
}

static void dump_errors(const policy_errors_t *e)
{
    char buf[600];
    size_t i;
    for (i = 0; i < e->count; i++) {
        policy_error_format(&e->items[i], buf, sizeof buf);
        fprintf(stderr, "  got %s\n", buf);
    }
}

START_TEST(test_error_case)
{
    const err_case_t *c = &err_cases[_i];
    policy_t *p = (policy_t *)1;
    policy_errors_t errs;
    size_t i;
    int found = 0;

    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("t.yaml", c->yaml, strlen(c->yaml), &p, &errs), DPOP_ERR);
    ck_assert_ptr_null(p);
    ck_assert_uint_ge(errs.count, 1);
    for (i = 0; i < errs.count; i++) {
        ck_assert_str_eq(errs.items[i].file, "t.yaml");
        if (errs.items[i].line == c->line && errs.items[i].column == c->column &&
            strstr(errs.items[i].message, c->msg))
            found = 1;
    }
    if (!found) {
        fprintf(stderr, "case %d: want %d:%d: ...%s...\n", _i, c->line, c->column, c->msg);
        dump_errors(&errs);
    }
    ck_assert_msg(found, "case %d: no error at %d:%d containing \"%s\"", _i, c->line, c->column,
                  c->msg);
    policy_errors_clear(&errs);
}
END_TEST

/* Every problem in one file, in file order, each at its position. */
START_TEST(test_all_errors_reported)
{
    static const char yaml[] = "version: 3\n"                                  /* 1 */
                               "route_sets:\n"                                 /* 2 */
                               "  rs:\n"                                       /* 3 */
                               "    - methods: [get]\n"                        /* 4 */
                               "      paths: [\"api/x\"]\n"                    /* 5 */
                               "clients:\n"                                    /* 6 */
                               "  - name: c1\n"                                /* 7 */
                               "    jkt: short\n"                              /* 8 */
                               "    not_after: tomorrow\n"                     /* 9 */
                               "    allow: [rs, missing]\n"                    /* 10 */
                               "  - name: c1\n"                                /* 11 */
                               "    jkt: " J1 "\n"                             /* 12 */
                               "    allow: [{methods: [GET], paths: [/ok]}]\n" /* 13 */
                               "    flavour: x\n";                             /* 14 */
    static const struct {
        int line, column;
        const char *msg;
    } want[] = {
        {1, 10, "version must be 1"},
        {4, 17, "write 'GET', not 'get'"},
        {5, 15, "must start with '/'"},
        {8, 10, "but this one has 5"},
        {9, 16, "not_after 'tomorrow' is not a valid timestamp"},
        {10, 17, "unknown route set 'missing'"},
        {11, 11, "client name 'c1' is already used by the client at line 7"},
        {14, 5, "unknown key 'flavour'"},
    };
    policy_t *p = NULL;
    policy_errors_t errs;
    char buf[600];
    size_t i;

    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("multi.yaml", yaml, strlen(yaml), &p, &errs), DPOP_ERR);
    if (errs.count != sizeof want / sizeof want[0])
        dump_errors(&errs);
    ck_assert_uint_eq(errs.count, sizeof want / sizeof want[0]);
    for (i = 0; i < errs.count; i++) {
        ck_assert_int_eq(errs.items[i].line, want[i].line);
        ck_assert_int_eq(errs.items[i].column, want[i].column);
        ck_assert_msg(strstr(errs.items[i].message, want[i].msg), "error %zu: %s", i,
                      errs.items[i].message);
    }
    ck_assert_uint_gt(policy_error_format(&errs.items[0], buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "multi.yaml:1:10: version must be 1, the only policy format this "
                          "release reads");
    policy_errors_clear(&errs);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_ptr_null(errs.items);
}
END_TEST

/* A value longer than the scalar limit is refused at its position, and
 * the rest of the file is still checked. */
START_TEST(test_scalar_limit)
{
    char *yaml = malloc(6000);
    policy_t *p = NULL;
    policy_errors_t errs;
    ck_assert_ptr_nonnull(yaml);
    strcpy(yaml, "version: 1\nclients:\n  - name: ");
    memset(yaml + strlen(yaml), 'n', 5000);
    strcpy(yaml + strlen("version: 1\nclients:\n  - name: ") + 5000,
           "\n    jkt: x\n    allow: [{methods: [GET], paths: [/]}]\n");
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("big.yaml", yaml, strlen(yaml), &p, &errs), DPOP_ERR);
    ck_assert_ptr_nonnull(find_error(&errs, 3, 11));
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "5000 bytes long; the limit is 4096"));
    ck_assert_ptr_nonnull(find_error(&errs, 4, 10)); /* the bad jkt too */
    policy_errors_clear(&errs);
    free(yaml);
}
END_TEST

START_TEST(test_pattern_length_limit)
{
    char yaml[1400];
    char pat[1100];
    policy_t *p = NULL;
    policy_errors_t errs;
    pat[0] = '/';
    memset(pat + 1, 'p', 1024);
    pat[1025] = '\0';
    snprintf(yaml, sizeof yaml, RS1("{methods: [GET], paths: [\"%s\"]}"), pat);
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &errs), DPOP_ERR);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.items[0].line, 3);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "at most 1024 bytes (this one has 1025)"));
    policy_errors_clear(&errs);
    /* exactly 1024 is fine */
    pat[1024] = '\0';
    snprintf(yaml, sizeof yaml, RS1("{methods: [GET], paths: [\"%s\"]}"), pat);
    ck_assert_int_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &errs), DPOP_OK);
    policy_free(p);
}
END_TEST

/* Count limits: one over each bound is refused with its position. */
START_TEST(test_count_limits)
{
    size_t cap = 2 * 1024 * 1024, i;
    char *y = malloc(cap), *w = NULL;
    policy_t *p = NULL;
    policy_errors_t errs;
    ck_assert_ptr_nonnull(y);
    policy_errors_init(&errs);

    /* 10,001 route sets */
    w = y + sprintf(y, "version: 1\nroute_sets:\n");
    for (i = 0; i < 10001; i++)
        w += sprintf(w, "  s%zu: [{methods: [GET], paths: [/]}]\n", i);
    sprintf(w, "clients: []\n");
    ck_assert_int_eq(policy_load_buffer("t", y, strlen(y), &p, &errs), DPOP_ERR);
    ck_assert_int_eq(errs.items[0].line, 3);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "at most 10000 route sets"));
    policy_errors_clear(&errs);

    /* 1,001 routes in one route set */
    w = y + sprintf(y, "version: 1\nroute_sets:\n  big:\n");
    for (i = 0; i < 1001; i++)
        w += sprintf(w, "    - {methods: [GET], paths: [/r%zu]}\n", i);
    sprintf(w, "clients: []\n");
    ck_assert_int_eq(policy_load_buffer("t", y, strlen(y), &p, &errs), DPOP_ERR);
    ck_assert_int_eq(errs.items[0].line, 4);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "at most 1000 routes"));
    policy_errors_clear(&errs);

    /* 1,001 allow entries */
    w = y + sprintf(y, "version: 1\nclients:\n  - name: c\n    jkt: " J1 "\n    allow:\n");
    for (i = 0; i < 1001; i++)
        w += sprintf(w, "      - {methods: [GET], paths: [/a%zu]}\n", i);
    ck_assert_int_eq(policy_load_buffer("t", y, strlen(y), &p, &errs), DPOP_ERR);
    ck_assert_int_eq(errs.items[0].line, 6);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "at most 1000 allow entries"));
    policy_errors_clear(&errs);

    /* 65 methods, 1,001 paths */
    w = y + sprintf(y, "version: 1\nroute_sets:\n  m: [{methods: [");
    for (i = 0; i < 65; i++)
        w += sprintf(w, "%sX%zu", i ? ", " : "", i);
    w += sprintf(w, "], paths: [");
    for (i = 0; i < 1001; i++)
        w += sprintf(w, "%s/p%zu", i ? ", " : "", i);
    sprintf(w, "]}]\nclients: []\n");
    ck_assert_int_eq(policy_load_buffer("t", y, strlen(y), &p, &errs), DPOP_ERR);
    ck_assert_uint_eq(errs.count, 2);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "at most 64 methods"));
    ck_assert_ptr_nonnull(strstr(errs.items[1].message, "at most 1000 paths"));
    policy_errors_clear(&errs);

    /* a 129-character name */
    w = y + sprintf(y, "version: 1\nclients:\n  - name: ");
    memset(w, 'n', 129);
    sprintf(w + 129, "\n    jkt: " J1 "\n    allow: [{methods: [GET], paths: [/]}]\n");
    ck_assert_int_eq(policy_load_buffer("t", y, strlen(y), &p, &errs), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "1 to 128 characters"));
    policy_errors_clear(&errs);
    free(y);
}
END_TEST

static char g_dir[] = "/tmp/test_policy_load_XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_file_errors)
{
    char path[256];
    policy_t *p = NULL;
    policy_errors_t errs;
    int fd;

    policy_errors_init(&errs);
    snprintf(path, sizeof path, "%s/missing.yaml", g_dir);
    ck_assert_int_eq(policy_load_file(path, &p, &errs), DPOP_ERR);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.items[0].line, 0);
    ck_assert_str_eq(errs.items[0].file, path);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "cannot open the policy file"));
    policy_errors_clear(&errs);

    ck_assert_int_eq(policy_load_file(g_dir, &p, &errs), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "not a regular file"));
    policy_errors_clear(&errs);

    /* over the size limit: refused from fstat, never read (a sparse file) */
    snprintf(path, sizeof path, "%s/huge.yaml", g_dir);
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 64 * 1024 * 1024 + 1), 0);
    close(fd);
    ck_assert_int_eq(policy_load_file(path, &p, &errs), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "the limit is 67108864 bytes"));
    policy_errors_clear(&errs);
    unlink(path);

    /* a file's positions carry its path */
    snprintf(path, sizeof path, "%s/v2.yaml", g_dir);
    write_file(path, "version: 2\nclients: []\n");
    ck_assert_int_eq(policy_load_file(path, &p, &errs), DPOP_ERR);
    ck_assert_str_eq(errs.items[0].file, path);
    ck_assert_int_eq(errs.items[0].line, 1);
    ck_assert_int_eq(errs.items[0].column, 10);
    policy_errors_clear(&errs);
    unlink(path);

    /* NULL path */
    ck_assert_int_eq(policy_load_file(NULL, &p, &errs), DPOP_ERR);
    ck_assert_uint_eq(errs.count, 1);
    policy_errors_clear(&errs);
}
END_TEST

/* ---------- files that must load ---------- */

static const char design_example[] =
    "version: 1\n"
    "route_sets:                       # reusable groups of routes\n"
    "  invoices-rw:\n"
    "    - methods: [GET, POST]\n"
    "      paths: [\"/api/invoices\", \"/api/invoices/**\"]\n"
    "clients:\n"
    "  - name: billing-agent           # -> DPOP_CLIENT, audit, reports\n"
    "    jkt: " J1 "\n"
    "    not_before: 2026-01-01T00:00:00Z   # optional\n"
    "    not_after:  2027-01-01T00:00:00Z   # optional (offboarding, rotation)\n"
    "    revoked: false                      # optional\n"
    "    allow:\n"
    "      - invoices-rw\n"
    "      - { methods: [GET], paths: [\"/api/customers/*\"] }\n";

static const char clients_first[] = "version: 1\n"
                                    "clients:\n"
                                    "  - name: c1\n"
                                    "    jkt: " J1 "\n"
                                    "    allow: [late, {methods: [PUT], paths: [/x]}, late2]\n"
                                    "route_sets:\n"
                                    "  late: [{methods: [GET], paths: [\"/late/**\"]}]\n"
                                    "  late2: [{methods: [POST], paths: [\"/late2\"]}]\n";

static const char *const good_cases[] = {
    clients_first,
    design_example,
    "version: 1\nclients: []\n",
    "version: 1\r\nclients:\r\n  - name: c1\r\n    jkt: " J1
    "\r\n    allow: [{methods: [\"*\"], paths: [/]}]\r\n",
    "{version: 1, clients: [{name: c1, jkt: " J1
    ", allow: [{methods: [GET], paths: [\"/**\"]}]}]}\n",
    "version: 1\nclients:\n  - name: leap\n    jkt: " J1
    "\n    not_before: 2028-02-29T23:59:59.999Z\n    not_after: 2028-03-01T00:00:00+00:00\n    "
    "revoked: False\n    allow: [{methods: [PURGE, GET, M-SEARCH], paths: [\"/x/\", \"/\", "
    "\"/a/*/b\", \"/**/z\"]}]\n",
    "%YAML 1.1\n---\nversion: 1\nclients: []\n...\n",
    "version: 1\nroute_sets: {}\nclients: []\n",
    "version: 1\nroute_sets:\n  a.b_c-1: [{methods: [GET], paths: [/]}]\nclients:\n  - name: "
    "\"svc@example:x+y\"\n    jkt: " J2 "\n    allow: [a.b_c-1]\n",
};

START_TEST(test_good_files)
{
    const char *y = good_cases[_i];
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_errors_init(&errs);
    if (policy_load_buffer("good.yaml", y, strlen(y), &p, &errs) != DPOP_OK)
        dump_errors(&errs);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_ptr_nonnull(p);
    policy_free(p);
}
END_TEST

START_TEST(test_counts)
{
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_errors_init(&errs);
    ck_assert_int_eq(
        policy_load_buffer("d.yaml", design_example, strlen(design_example), &p, &errs), DPOP_OK);
    ck_assert_uint_eq(policy_client_count(p), 1);
    policy_free(p);
    ck_assert_uint_eq(policy_client_count(NULL), 0);
    policy_free(NULL); /* harmless */
}
END_TEST

/* Clients written before route_sets: the references resolve at the end
 * and decide like any other. */
START_TEST(test_clients_before_route_sets)
{
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_decision_t d;
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("cf.yaml", clients_first, strlen(clients_first), &p, &errs),
                     DPOP_OK);
    policy_decide(p, J1, "GET", "/late/a/b", 0, &d);
    ck_assert_int_eq(d.allow, 1);
    ck_assert_str_eq(d.rule, "client c1 allow[0] route set late: GET /late/**");
    policy_decide(p, J1, "PUT", "/x", 0, &d);
    ck_assert_str_eq(d.rule, "client c1 allow[1]: PUT /x");
    policy_decide(p, J1, "POST", "/late2", 0, &d);
    ck_assert_str_eq(d.rule, "client c1 allow[2] route set late2: POST /late2");
    policy_decide(p, J1, "POST", "/late", 0, &d);
    ck_assert_int_eq(d.allow, 0);
    policy_free(p);
}
END_TEST

/* allow: [] is valid (DESIGN.md lists what fails a load; an empty list is
 * not among them): the client is registered and may call nothing, and
 * the load carries one positioned warning for `dpop-policy check`. */
START_TEST(test_empty_allow_loads)
{
    static const char yaml[] = CLIENT("    allow: []\n"
                                      "  - name: c2\n"
                                      "    jkt: " J2 "\n"
                                      "    allow: [rs]\n");
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_decision_t d;
    const policy_errors_t *w = NULL;
    policy_errors_init(&errs);
    if (policy_load_buffer("e.yaml", yaml, strlen(yaml), &p, &errs) != DPOP_OK)
        dump_errors(&errs);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(policy_client_count(p), 2);
    w = policy_warnings(p);
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(w->count, 1);
    ck_assert_str_eq(w->items[0].file, "e.yaml");
    ck_assert_int_eq(w->items[0].line, 9);
    ck_assert_int_eq(w->items[0].column, 12);
    ck_assert_str_eq(w->items[0].message,
                     "allow is empty: client 'c1' is registered but may call nothing (every "
                     "request with its key is denied, reason policy_denied)");
    policy_decide(p, J1, "GET", "/a/b", 0, &d);
    ck_assert_int_eq(d.allow, 0);
    ck_assert_int_eq(d.reason, DPOP_REASON_POLICY_DENIED);
    ck_assert_str_eq(d.client, "c1");
    ck_assert_str_eq(d.rule, "client c1: allow is empty (default deny)");
    policy_decide(p, J2, "GET", "/a/b", 0, &d); /* the other client is unaffected */
    ck_assert_int_eq(d.allow, 1);
    ck_assert_str_eq(d.client, "c2");
    policy_free(p);
    /* a policy without one has no warnings */
    ck_assert_int_eq(
        policy_load_buffer("d.yaml", design_example, strlen(design_example), &p, &errs), DPOP_OK);
    ck_assert_uint_eq(policy_warnings(p)->count, 0);
    policy_free(p);
    ck_assert_ptr_null(policy_warnings(NULL));
}
END_TEST

/* Errors in clients read before a later syntax error are all kept. */
START_TEST(test_errors_before_syntax_error)
{
    static const char yaml[] = "version: 1\n"
                               "clients:\n"
                               "  - name: c1\n"
                               "    jkt: bad\n"
                               "    allow: [{methods: [GET], paths: [/]}]\n"
                               "  - name: c2\n"
                               "    jkt: " J2 "\n"
                               "    allow: [{methods: [GET], paths: [/]}\n";
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("s.yaml", yaml, strlen(yaml), &p, &errs), DPOP_ERR);
    ck_assert_uint_eq(errs.count, 2);
    ck_assert_int_eq(errs.items[0].line, 4);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "but this one has 3"));
    ck_assert_ptr_nonnull(strstr(errs.items[1].message, "YAML syntax error"));
    policy_errors_clear(&errs);
}
END_TEST

/* The shipped example must stay valid (docs/policy.md points at it). */
START_TEST(test_example_policy)
{
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_decision_t d;
    policy_errors_init(&errs);
    if (policy_load_file(DPOP_SRCDIR "/conf.d/policy.example.yaml", &p, &errs) != DPOP_OK)
        dump_errors(&errs);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_uint_eq(policy_client_count(p), 5);
    policy_decide(p, J1, "DELETE", "/api/invoices/INV-7", 1800000000, &d);
    ck_assert_int_eq(d.allow, 1);
    ck_assert_str_eq(d.client, "billing-agent");
    policy_decide(p, "xJ_qdCX6f4aZiXqXwVnGaQJn2QA7t4xT-vqPwVwyXYQ", "GET", "/api/invoices",
                  1800000000, &d);
    ck_assert_int_eq(d.reason, DPOP_REASON_KEY_REVOKED);
    policy_free(p);
}
END_TEST

START_TEST(test_error_format)
{
    policy_error_t e = {"f.yaml", 3, 7, "bad thing"};
    policy_error_t nopos = {"f.yaml", 0, 0, "cannot open"};
    char buf[64], tiny[8];
    ck_assert_uint_eq(policy_error_format(&e, buf, sizeof buf), strlen("f.yaml:3:7: bad thing"));
    ck_assert_str_eq(buf, "f.yaml:3:7: bad thing");
    policy_error_format(&nopos, buf, sizeof buf);
    ck_assert_str_eq(buf, "f.yaml: cannot open");
    ck_assert_uint_eq(policy_error_format(&e, tiny, sizeof tiny), 7); /* truncated */
    ck_assert_str_eq(tiny, "f.yaml:");
    ck_assert_uint_eq(policy_error_format(&e, NULL, 0), 0);
}
END_TEST

/* The error list stops growing at its bound instead of eating memory. */
START_TEST(test_error_cap)
{
    size_t n = 1500, i;
    char *yaml = malloc(n * 40 + 64), *w = yaml;
    policy_t *p = NULL;
    policy_errors_t errs;
    ck_assert_ptr_nonnull(yaml);
    w += sprintf(w, "version: 1\nclients:\n");
    for (i = 0; i < n; i++)
        w += sprintf(w, "  - nope%zu: 1\n", i);
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("many.yaml", yaml, strlen(yaml), &p, &errs), DPOP_ERR);
    ck_assert_uint_eq(errs.count, 1001);
    ck_assert_int_eq(errs.items[0].line, 0); /* sorted first: no position */
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "too many errors"));
    policy_errors_clear(&errs);
    free(yaml);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_load");
    TCase *tc;
    int failed;

    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_error_case, 0, (int)(sizeof err_cases / sizeof err_cases[0]));
    tcase_add_test(tc, test_all_errors_reported);
    tcase_add_test(tc, test_error_format);
    tcase_add_test(tc, test_error_cap);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_test(tc, test_scalar_limit);
    tcase_add_test(tc, test_pattern_length_limit);
    tcase_add_test(tc, test_count_limits);
    tcase_add_test(tc, test_file_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("good");
    tcase_add_loop_test(tc, test_good_files, 0, (int)(sizeof good_cases / sizeof good_cases[0]));
    tcase_add_test(tc, test_counts);
    tcase_add_test(tc, test_example_policy);
    tcase_add_test(tc, test_clients_before_route_sets);
    tcase_add_test(tc, test_empty_allow_loads);
    tcase_add_test(tc, test_errors_before_syntax_error);
    suite_add_tcase(s, tc);

    failed = run_policy_suite(s);
    rmdir(g_dir);
    return failed;
}
