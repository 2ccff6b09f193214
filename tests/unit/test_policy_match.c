/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy_match.c: Check tests of policy decisions: segment wildcards
 * ("*" one non-empty segment, "**" zero or more, at the start, middle and
 * end), exact methods (HEAD is not GET; "*" is any; extension methods),
 * time windows at their exact boundaries, revocation before routes,
 * unknown keys, the rule text, and path normalization (percent-decoding,
 * dot-segments, refused escapes) feeding decisions.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_policy.h"
#include "test_policy_util.h"

#define J1 "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define J2 "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
#define J3 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define J4 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"
#define JX "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* valid form, not in the policy */

/* 2026-01-01T00:00:00Z and 2026-07-01T00:00:00+02:00 = 2026-06-30T22:00:00Z */
#define NB 1767225600
#define NA 1782856800
#define NOW 1800000000

static const char policy_yaml[] =
    "version: 1\n"
    "route_sets:\n"
    "  invoices-rw:\n"
    "    - methods: [GET, POST]\n"
    "      paths: [\"/api/invoices\", \"/api/invoices/**\"]\n"
    "  wild:\n"
    "    - methods: [GET]\n"
    "      paths: [\"/w/*/x\", \"/deep/**/end\", \"/**/tail\", \"/root/\", \"/one/*\"]\n"
    "clients:\n"
    "  - name: billing-agent\n"
    "    jkt: " J1 "\n"
    "    allow:\n"
    "      - invoices-rw\n"
    "      - { methods: [GET], paths: [\"/api/customers/*\"] }\n"
    "  - name: any-method\n"
    "    jkt: " J2 "\n"
    "    allow:\n"
    "      - { methods: [\"*\"], paths: [\"/any/**\"] }\n"
    "      - { methods: [PURGE, M-SEARCH], paths: [\"/cache/*\"] }\n"
    "      - wild\n"
    "  - name: revoked-one\n"
    "    jkt: " J3 "\n"
    "    revoked: true\n"
    "    allow: [invoices-rw]\n"
    "  - name: windowed\n"
    "    jkt: " J4 "\n"
    "    not_before: 2026-01-01T00:00:00Z\n"
    "    not_after: 2026-07-01T00:00:00+02:00\n"
    "    allow: [invoices-rw]\n";

static policy_t *g_policy;

static void setup(void)
{
    policy_errors_t errs;
    policy_errors_init(&errs);
    g_policy = NULL;
    ck_assert_int_eq(
        policy_load_buffer("m.yaml", policy_yaml, strlen(policy_yaml), &g_policy, &errs), DPOP_OK);
    ck_assert_uint_eq(policy_client_count(g_policy), 4);
}

static void teardown(void)
{
    policy_free(g_policy);
    g_policy = NULL;
}

#define ALLOW 1, DPOP_REASON_NONE
#define DENY 0, DPOP_REASON_POLICY_DENIED
#define REVOKED 0, DPOP_REASON_KEY_REVOKED
#define NO_MATCH(c) "client " c ": no allow entry matches (default deny)"
#define BAD_REQUEST(c) "client " c ": the method or path is not acceptable (default deny)"
/* rule texts of the route sets, by pattern */
#define INVOICES(c, pat) "client " c " allow[0] route set invoices-rw: GET,POST " pat
#define WILD(pat) "client any-method allow[2] route set wild: GET " pat

typedef struct {
    const char *jkt, *method, *path;
    int64_t now;
    int allow;
    dpop_reason_t reason;
    const char *client; /* NULL: unknown key */
    const char *rule;   /* exact; "" when none */
} decide_case_t;

static const decide_case_t cases[] = {
    /* route set, exact and "**" at the end (zero segments, trailing slash, many) */
    {J1, "GET", "/api/invoices", NOW, ALLOW, "billing-agent",
     INVOICES("billing-agent", "/api/invoices")},
    {J1, "GET", "/api/invoices/", NOW, ALLOW, "billing-agent",
     INVOICES("billing-agent", "/api/invoices/**")},
    {J1, "POST", "/api/invoices/2026/17", NOW, ALLOW, "billing-agent",
     INVOICES("billing-agent", "/api/invoices/**")},
    {J1, "GET", "/api/invoicesX", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "GET", "/api", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "GET", "/", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    /* methods are exact: HEAD is not GET, case matters */
    {J1, "HEAD", "/api/invoices", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "PUT", "/api/invoices", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "get", "/api/invoices", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "", "/api/invoices", NOW, DENY, "billing-agent", BAD_REQUEST("billing-agent")},
    /* inline route with "*": exactly one non-empty segment */
    {J1, "GET", "/api/customers/42", NOW, ALLOW, "billing-agent",
     "client billing-agent allow[1]: GET /api/customers/*"},
    {J1, "POST", "/api/customers/42", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "GET", "/api/customers/", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "GET", "/api/customers", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    {J1, "GET", "/api/customers/42/orders", NOW, DENY, "billing-agent", NO_MATCH("billing-agent")},
    /* paths that were not normalized fail closed */
    {J1, "GET", "/api/invoices/../admin", NOW, DENY, "billing-agent", BAD_REQUEST("billing-agent")},
    {J1, "GET", "/api/invoices/./x", NOW, DENY, "billing-agent", BAD_REQUEST("billing-agent")},
    {J1, "GET", "api/invoices", NOW, DENY, "billing-agent", BAD_REQUEST("billing-agent")},
    /* "*" method: any, including HEAD and extension methods */
    {J2, "HEAD", "/any", NOW, ALLOW, "any-method", "client any-method allow[0]: * /any/**"},
    {J2, "BREW", "/any/a/b", NOW, ALLOW, "any-method", "client any-method allow[0]: * /any/**"},
    {J2, "GET", "/anything", NOW, DENY, "any-method", NO_MATCH("any-method")},
    {J2, "PURGE", "/cache/k", NOW, ALLOW, "any-method",
     "client any-method allow[1]: PURGE,M-SEARCH /cache/*"},
    {J2, "M-SEARCH", "/cache/k", NOW, ALLOW, "any-method",
     "client any-method allow[1]: PURGE,M-SEARCH /cache/*"},
    {J2, "PURGEX", "/cache/k", NOW, DENY, "any-method", NO_MATCH("any-method")},
    {J2, "purge", "/cache/k", NOW, DENY, "any-method", NO_MATCH("any-method")},
    /* "*" in the middle */
    {J2, "GET", "/w/a/x", NOW, ALLOW, "any-method", WILD("/w/*/x")},
    {J2, "GET", "/w//x", NOW, DENY, "any-method", NO_MATCH("any-method")},
    {J2, "GET", "/w/a/b/x", NOW, DENY, "any-method", NO_MATCH("any-method")},
    /* "**" in the middle: zero or more segments */
    {J2, "GET", "/deep/end", NOW, ALLOW, "any-method", WILD("/deep/**/end")},
    {J2, "GET", "/deep/a/b/c/end", NOW, ALLOW, "any-method", WILD("/deep/**/end")},
    {J2, "GET", "/deep/a/ende", NOW, DENY, "any-method", NO_MATCH("any-method")},
    {J2, "GET", "/deep", NOW, DENY, "any-method", NO_MATCH("any-method")},
    /* "**" at the start */
    {J2, "GET", "/tail", NOW, ALLOW, "any-method", WILD("/**/tail")},
    {J2, "GET", "/a/b/tail", NOW, ALLOW, "any-method", WILD("/**/tail")},
    {J2, "GET", "/a/b/tail/x", NOW, DENY, "any-method", NO_MATCH("any-method")},
    /* trailing slash is significant */
    {J2, "GET", "/root/", NOW, ALLOW, "any-method", WILD("/root/")},
    {J2, "GET", "/root", NOW, DENY, "any-method", NO_MATCH("any-method")},
    {J2, "GET", "/one/x", NOW, ALLOW, "any-method", WILD("/one/*")},
    {J2, "GET", "/one/x/", NOW, DENY, "any-method", NO_MATCH("any-method")},
    /* revocation, checked before routes */
    {J3, "GET", "/api/invoices", NOW, REVOKED, "revoked-one", "client revoked-one is revoked"},
    {J3, "GET", "/nowhere", NOW, REVOKED, "revoked-one", "client revoked-one is revoked"},
    /* [not_before, not_after): the exact boundaries */
    {J4, "GET", "/api/invoices", NB - 1, REVOKED, "windowed",
     "client windowed is not valid before 2026-01-01T00:00:00Z (not_before)"},
    {J4, "GET", "/api/invoices", NB, ALLOW, "windowed", INVOICES("windowed", "/api/invoices")},
    {J4, "GET", "/api/invoices", NA - 1, ALLOW, "windowed", INVOICES("windowed", "/api/invoices")},
    {J4, "GET", "/api/invoices", NA, REVOKED, "windowed",
     "client windowed expired at 2026-06-30T22:00:00Z (not_after)"},
    {J4, "DELETE", "/nowhere", NA, REVOKED, "windowed",
     "client windowed expired at 2026-06-30T22:00:00Z (not_after)"},
    {J4, "DELETE", "/nowhere", NB, DENY, "windowed", NO_MATCH("windowed")},
    /* unknown keys */
    {JX, "GET", "/api/invoices", NOW, DENY, NULL, ""},
    {"", "GET", "/api/invoices", NOW, DENY, NULL, ""},
    {J1 "x", "GET", "/api/invoices", NOW, DENY, NULL, ""},
    {"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X", "GET", "/api/invoices", NOW, DENY, NULL, ""},
    {"nzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "GET", "/api/invoices", NOW, DENY, NULL, ""},
};

START_TEST(test_decide_table)
{
    const decide_case_t *c = &cases[_i];
    policy_decision_t d;
    memset(&d, 0x5a, sizeof d); /* decide must set every field */
    policy_decide(g_policy, c->jkt, c->method, c->path, c->now, &d);
    ck_assert_msg(d.allow == c->allow, "case %d (%s %s): allow %d, rule %s", _i, c->method, c->path,
                  d.allow, d.rule);
    ck_assert_int_eq(d.reason, c->reason);
    if (c->client)
        ck_assert_str_eq(d.client, c->client);
    else
        ck_assert_ptr_null(d.client);
    ck_assert_str_eq(d.rule, c->rule);
}
END_TEST

START_TEST(test_decide_null_inputs)
{
    policy_decision_t d;
    policy_decide(NULL, J1, "GET", "/api/invoices", NOW, &d);
    ck_assert_int_eq(d.allow, 0);
    ck_assert_int_eq(d.reason, DPOP_REASON_POLICY_DENIED);
    ck_assert_ptr_null(d.client);
    policy_decide(g_policy, NULL, "GET", "/api/invoices", NOW, &d);
    ck_assert_int_eq(d.allow, 0);
    policy_decide(g_policy, J1, NULL, "/api/invoices", NOW, &d);
    ck_assert_int_eq(d.allow, 0);
    policy_decide(g_policy, J1, "GET", NULL, NOW, &d);
    ck_assert_int_eq(d.allow, 0);
    ck_assert_int_eq(d.reason, DPOP_REASON_POLICY_DENIED);
}
END_TEST

/* A path deeper than the split bound is denied, never truncated. */
START_TEST(test_decide_deep_path)
{
    char path[2200];
    policy_decision_t d;
    size_t i;
    strcpy(path, "/any");
    for (i = 0; i < 600; i++)
        strcat(path, "/a");
    policy_decide(g_policy, J2, "GET", path, NOW, &d);
    ck_assert_int_eq(d.allow, 0);
    ck_assert_int_eq(d.reason, DPOP_REASON_POLICY_DENIED);
    path[4 + 2 * 100] = '\0'; /* 101 segments: fine */
    policy_decide(g_policy, J2, "GET", path, NOW, &d);
    ck_assert_int_eq(d.allow, 1);
}
END_TEST

/* The rule text is bounded: a long pattern is truncated, never overflows. */
START_TEST(test_rule_truncated)
{
    char yaml[2000], pat[600], path[600];
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_decision_t d;
    pat[0] = '/';
    memset(pat + 1, 'x', 500);
    pat[501] = '\0';
    strcpy(path, pat);
    snprintf(yaml, sizeof yaml,
             "version: 1\nclients:\n  - name: c\n    jkt: " J1 "\n    allow: [{methods: [GET], "
             "paths: [\"%s\"]}]\n",
             pat);
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("t", yaml, strlen(yaml), &p, &errs), DPOP_OK);
    policy_decide(p, J1, "GET", path, NOW, &d);
    ck_assert_int_eq(d.allow, 1);
    ck_assert_uint_eq(strlen(d.rule), sizeof d.rule - 1);
    ck_assert_int_eq(strncmp(d.rule, "client c allow[0]: GET /xxx", 27), 0);
    policy_free(p);
}
END_TEST

/* ---------- normalization ---------- */

typedef struct {
    const char *raw;
    const char *want; /* NULL: must be refused */
} norm_case_t;

static const norm_case_t norm_cases[] = {
    {"/a/b", "/a/b"},
    {"/", "/"},
    {"/a/./b", "/a/b"},
    {"/a/../b", "/b"},
    {"/api/a/../b", "/api/b"},
    {"/a/b/..", "/a/"},
    {"/a/b/.", "/a/b/"},
    {"/a/..", "/"},
    {"/a/b/../../c", "/c"},
    {"/a/%2e%2e/b", "/b"},
    {"/a/%2E./b", "/b"},
    {"/a/.%2e", "/"},
    {"/a/%2e/b", "/a/b"},
    {"/a%20b", "/a b"},
    {"/%7Euser", "/~user"},
    {"/caf%C3%A9", "/caf\xc3\xa9"},
    {"/a/b?x=../../y", "/a/b"},
    {"/a?", "/a"},
    {"/a#frag/../..", "/a"},
    {"//a///b", "/a/b"},
    {"/a/...", "/a/..."},
    {"/a/..b", "/a/..b"},
    {"/..", NULL},
    {"/../a", NULL},
    {"/a/../..", NULL},
    {"/%2e%2e/x", NULL},
    {"/a%2Fb", NULL},
    {"/a%2fb", NULL},
    {"/a%00b", NULL},
    {"/a%zz", NULL},
    {"/a%4", NULL},
    {"/a%", NULL},
    {"/a%4g", NULL},
    {"a/b", NULL},
    {"", NULL},
    {"?x", NULL},
    {"#x", NULL},
};

START_TEST(test_normalize_table)
{
    const norm_case_t *c = &norm_cases[_i];
    size_t sz = strlen(c->raw) + 2;
    char *out = malloc(sz);
    int rc;
    ck_assert_ptr_nonnull(out);
    rc = policy_path_normalize(c->raw, out, sz);
    if (c->want) {
        ck_assert_msg(rc == DPOP_OK, "case %d: '%s' refused", _i, c->raw);
        ck_assert_str_eq(out, c->want);
    }
    else {
        ck_assert_msg(rc == DPOP_ERR, "case %d: '%s' accepted as '%s'", _i, c->raw, out);
    }
    free(out);
}
END_TEST

START_TEST(test_normalize_bounds)
{
    char out[8];
    ck_assert_int_eq(policy_path_normalize("/abc", out, 6), DPOP_OK);
    ck_assert_str_eq(out, "/abc");
    ck_assert_int_eq(policy_path_normalize("/abc", out, 5), DPOP_ERR); /* needs strlen + 2 */
    ck_assert_int_eq(policy_path_normalize(NULL, out, sizeof out), DPOP_ERR);
    ck_assert_int_eq(policy_path_normalize("/a", NULL, 8), DPOP_ERR);
    ck_assert_int_eq(policy_path_normalize("/a", out, 0), DPOP_ERR);
}
END_TEST

/* Normalization then decision: what httpd would judge. */
typedef struct {
    const char *raw;
    int allow;
} norm_decide_case_t;

static const norm_decide_case_t norm_decide_cases[] = {
    {"/api/x/../invoices/1", 1},
    {"/api/invoices/%2e%2e/admin", 0}, /* -> /api/admin */
    {"/api/invoices/..%2Fadmin", -1},  /* refused before the policy */
    {"/api/%69nvoices", 1},            /* %69 = 'i' */
    {"/api/invoices/../../api/invoices", 1},
    {"/api/customers/%2e%2e", 0}, /* -> /api/ : nothing there */
    {"/api/customers/a%20b", 1},
    {"/api/customers/7?admin=1", 1},
};

START_TEST(test_normalize_then_decide)
{
    const norm_decide_case_t *c = &norm_decide_cases[_i];
    char out[128];
    policy_decision_t d;
    int rc = policy_path_normalize(c->raw, out, sizeof out);
    if (c->allow < 0) {
        ck_assert_int_eq(rc, DPOP_ERR);
        return;
    }
    ck_assert_int_eq(rc, DPOP_OK);
    policy_decide(g_policy, J1, "GET", out, NOW, &d);
    ck_assert_msg(d.allow == c->allow, "case %d: %s -> %s: %s", _i, c->raw, out, d.rule);
}
END_TEST

/* Many clients: lookups stay exact (no false hits among similar keys). */
START_TEST(test_many_clients)
{
    size_t n = 2000, i;
    char *yaml = malloc(n * 160 + 256), *w = yaml;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_decision_t d;
    char jkt[44], name[32];

    ck_assert_ptr_nonnull(yaml);
    w += sprintf(w, "version: 1\nclients:\n");
    for (i = 0; i < n; i++) {
        memset(jkt, 'A', 43);
        jkt[43] = '\0';
        jkt[0] = b64[i % 64];
        jkt[1] = b64[(i / 64) % 64];
        w += sprintf(w,
                     "  - name: c%zu\n    jkt: %s\n    allow: [{methods: [GET], paths: "
                     "[\"/c/%zu\"]}]\n",
                     i, jkt, i);
    }
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("many", yaml, strlen(yaml), &p, &errs), DPOP_OK);
    ck_assert_uint_eq(policy_client_count(p), n);
    for (i = 0; i < n; i++) {
        char path[32];
        memset(jkt, 'A', 43);
        jkt[43] = '\0';
        jkt[0] = b64[i % 64];
        jkt[1] = b64[(i / 64) % 64];
        snprintf(name, sizeof name, "c%zu", i);
        snprintf(path, sizeof path, "/c/%zu", i);
        policy_decide(p, jkt, "GET", path, NOW, &d);
        ck_assert_int_eq(d.allow, 1);
        ck_assert_str_eq(d.client, name);
        snprintf(path, sizeof path, "/c/%zu", (i + 1) % n);
        policy_decide(p, jkt, "GET", path, NOW, &d);
        ck_assert_int_eq(d.allow, 0);
    }
    jkt[0] = '_';
    jkt[1] = '_'; /* not generated */
    policy_decide(p, jkt, "GET", "/c/0", NOW, &d);
    ck_assert_ptr_null(d.client);
    policy_free(p);
    free(yaml);
}
END_TEST

/* Records of every size: names up to the 128-character limit, allow lists
 * shared by many clients, unique ones that fit a record and unique ones
 * too long for it; every client still gets its own answer and rule. */
START_TEST(test_record_layouts)
{
    size_t n = 300, i;
    char *yaml = malloc(n * 900 + 512), *w = yaml;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char long_seg[401];
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_decision_t d;

    ck_assert_ptr_nonnull(yaml);
    memset(long_seg, 'L', 400);
    long_seg[400] = '\0';
    w += sprintf(w, "version: 1\nroute_sets:\n  s: [{methods: [GET], paths: [\"/shared/*\"]}]\n"
                    "clients:\n");
    for (i = 0; i < n; i++) {
        char jkt[44], name[129];
        memset(jkt, 'A', 43);
        jkt[43] = '\0';
        jkt[0] = b64[i % 64];
        jkt[1] = b64[(i / 64) % 64];
        memset(name, 'n', sizeof name - 1);
        name[i % 125 + 1] = '\0'; /* with the number: 3 to 128 characters */
        name[0] = (char)('a' + i % 26);
        w += sprintf(w, "  - name: %s%zu\n    jkt: %s\n", name, i, jkt);
        if (i % 3 == 0) /* one list shared by a third of the clients */
            w += sprintf(w, "    allow: [s]\n");
        else if (i % 3 == 1) /* unique, short */
            w += sprintf(w, "    allow: [s, {methods: [PUT], paths: [\"/c/%zu\"]}]\n", i);
        else /* unique, longer than any record */
            w += sprintf(w, "    allow: [{methods: [PUT], paths: [\"/c/%zu/%s\"]}, s]\n", i,
                         long_seg);
    }
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_load_buffer("layouts", yaml, strlen(yaml), &p, &errs), DPOP_OK);
    for (i = 0; i < n; i++) {
        char jkt[44], name[160], path[512], rule[1024];
        memset(jkt, 'A', 43);
        jkt[43] = '\0';
        jkt[0] = b64[i % 64];
        jkt[1] = b64[(i / 64) % 64];
        memset(name, 'n', 128);
        name[i % 125 + 1] = '\0';
        name[0] = (char)('a' + i % 26);
        snprintf(name + strlen(name), sizeof name - strlen(name), "%zu", i);
        policy_decide(p, jkt, "GET", "/shared/x", NOW, &d);
        ck_assert_int_eq(d.allow, 1);
        ck_assert_str_eq(d.client, name);
        snprintf(rule, sizeof rule, "client %s allow[%d] route set s: GET /shared/*", name,
                 i % 3 == 2 ? 1 : 0);
        ck_assert_str_eq(d.rule, rule);
        if (i % 3 == 0) {
            snprintf(path, sizeof path, "/c/%zu", i);
            policy_decide(p, jkt, "PUT", path, NOW, &d);
            ck_assert_int_eq(d.allow, 0);
            continue;
        }
        if (i % 3 == 1)
            snprintf(path, sizeof path, "/c/%zu", i);
        else
            snprintf(path, sizeof path, "/c/%zu/%s", i, long_seg);
        policy_decide(p, jkt, "PUT", path, NOW, &d);
        ck_assert_int_eq(d.allow, 1);
        ck_assert_str_eq(d.client, name);
        snprintf(rule, sizeof rule, "client %s allow[%d]: PUT %s", name, i % 3 == 1 ? 1 : 0, path);
        rule[sizeof d.rule - 1] = '\0'; /* the rule text is bounded */
        ck_assert_str_eq(d.rule, rule);
        policy_decide(p, jkt, "GET", path, NOW, &d); /* PUT only */
        ck_assert_int_eq(d.allow, 0);
    }
    policy_free(p);
    free(yaml);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_match");
    TCase *tc;

    tc = tcase_create("decide");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_decide_table, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_decide_null_inputs);
    tcase_add_test(tc, test_decide_deep_path);
    tcase_add_test(tc, test_rule_truncated);
    tcase_add_test(tc, test_many_clients);
    tcase_add_test(tc, test_record_layouts);
    suite_add_tcase(s, tc);
    tc = tcase_create("normalize");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_normalize_table, 0,
                        (int)(sizeof norm_cases / sizeof norm_cases[0]));
    tcase_add_test(tc, test_normalize_bounds);
    tcase_add_loop_test(tc, test_normalize_then_decide, 0,
                        (int)(sizeof norm_decide_cases / sizeof norm_decide_cases[0]));
    suite_add_tcase(s, tc);

    return run_policy_suite(s);
}
