/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proof_htu.c: the htu normalization and comparison of RFC 9449 §4.3
 * (9) with RFC 3986 §6.2.2/§6.2.3: table-driven normalize cases (expected
 * output or rejection), equality pairs, and bound/overflow behaviour.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_htu.h"
#include "dpop_pct.h"
#include "dpop_result.h"

typedef struct {
    const char *in;
    const char *want; /* NULL: must be rejected */
} norm_case_t;

static const norm_case_t norm_cases[] = {
    /* already normal */
    {"https://server.example.com/token", "https://server.example.com/token"},
    /* §6.2.2.1: scheme and host are case-insensitive */
    {"HTTPS://Server.Example.COM/token", "https://server.example.com/token"},
    {"HtTp://EXAMPLE.com/Path", "http://example.com/Path"}, /* path case is kept */
    /* RFC 9449 §4.3 (9): query and fragment are dropped */
    {"https://a.example/p?x=1&y=2", "https://a.example/p"},
    {"https://a.example/p#frag", "https://a.example/p"},
    {"https://a.example/p?x=1#frag", "https://a.example/p"},
    {"https://a.example?x", "https://a.example/"},
    {"https://a.example#f", "https://a.example/"},
    /* §6.2.3: empty path is "/" */
    {"https://a.example", "https://a.example/"},
    /* §6.2.3: default port removed, other ports kept, empty port removed */
    {"https://a.example:443/x", "https://a.example/x"},
    {"http://a.example:80/x", "http://a.example/x"},
    {"https://a.example:80/x", "https://a.example:80/x"},
    {"http://a.example:443/x", "http://a.example:443/x"},
    {"https://a.example:8443/x", "https://a.example:8443/x"},
    {"https://a.example:/x", "https://a.example/x"},
    {"https://a.example:0443/x", "https://a.example/x"},
    {"https://a.example:08443", "https://a.example:8443/"},
    /* §6.2.2.1: percent-encoding hex is upper-cased */
    {"https://a.example/a%2fb", "https://a.example/a%2Fb"},
    {"https://a.example/%c3%a9", "https://a.example/%C3%A9"},
    /* §6.2.2.2: encoded unreserved characters are decoded */
    {"https://a.example/%7Euser/%41%62%2D%5F%2E", "https://a.example/~user/Ab-_."},
    {"https://%61.EXAMPLE/", "https://a.example/"},
    {"https://a.example/%20", "https://a.example/%20"},
    /* reserved and other octets stay encoded (issue 15: the server side is
     * the target as sent, so "%3F" must never become a query "?") */
    {"https://a.example/a%3fzzz", "https://a.example/a%3Fzzz"},
    {"https://a.example/a%23zzz?q#f", "https://a.example/a%23zzz"},
    {"https://a.example/a%2f%2E%2e%2Fb", "https://a.example/a%2F..%2Fb"},
    {"https://a.example/caf%c3%a9/%e2%82%AC", "https://a.example/caf%C3%A9/%E2%82%AC"},
    {"https://a.example/a%2520b", "https://a.example/a%2520b"},
    /* §6.2.2.3 / §5.2.4: dot segments */
    {"https://a.example/a/b/../c", "https://a.example/a/c"},
    {"https://a.example/a/./b", "https://a.example/a/b"},
    {"https://a.example/a/b/..", "https://a.example/a/"},
    {"https://a.example/a/b/.", "https://a.example/a/b/"},
    {"https://a.example/../../x", "https://a.example/x"},
    {"https://a.example/..", "https://a.example/"},
    {"https://a.example/a/%2E%2E/b", "https://a.example/b"},
    {"https://a.example/a/.../b", "https://a.example/a/.../b"},
    {"https://a.example/a/..b/c", "https://a.example/a/..b/c"},
    {"https://a.example//a//b", "https://a.example//a//b"},
    {"https://a.example/a/b/", "https://a.example/a/b/"},
    /* sub-delims and ":" "@" are legal path characters */
    {"https://a.example/a:b@c;d=e,f!$&'()*+", "https://a.example/a:b@c;d=e,f!$&'()*+"},
    /* IPv6 literals: case and RFC 5952 canonical form */
    {"https://[::1]/x", "https://[::1]/x"},
    {"https://[0:0:0:0:0:0:0:1]:443/x", "https://[::1]/x"},
    {"https://[2001:DB8::A]:8443/", "https://[2001:db8::a]:8443/"},
    {"http://[2001:db8:0:0:1:0:0:1]", "http://[2001:db8::1:0:0:1]/"},
    {"https://[::ffff:192.0.2.1]/", "https://[::ffff:c000:201]/"},
    {"http://[0:0::18:0]", "http://[::18:0]/"},
    {"http://[0:1:1:2:2:a::1]", "http://[0:1:1:2:2:a::1]/"},
    {"http://[0:0:1:2:3::0:0]", "http://[0:0:1:2:3::]/"},
    {"http://[1:0:0:2:3::4]", "http://[1::2:3:0:0:4]/"},
    {"http://[1:0:2:3:4:5:6:7]", "http://[1::2:3:4:5:6:7]/"},
    {"http://[1:2:3:4:5:6:7:0]", "http://[1:2:3:4:5:6:7:0]/"},
    {"http://[::0.24.0.0]", "http://[::18:0]/"},
    {"http://[::255.255.255.255]", "http://[::ffff:ffff]/"},
    {"http://[1:0:0:1:0:0:0:1]", "http://[1:0:0:1::1]/"},
    {"http://[1:0:0:2:0:0:3:4]", "http://[1::2:0:0:3:4]/"},
    {"http://[::]", "http://[::]/"},
    {"http://[1::]", "http://[1::]/"},
    {"http://[0001:0DB8::0]:81", "http://[1:db8::]:81/"},
    {"https://192.0.2.1:8080/p", "https://192.0.2.1:8080/p"},
    /* rejected: not absolute http(s) with an authority */
    {"", NULL},
    {"/token", NULL},
    {"ftp://a.example/", NULL},
    {"https:/a.example/", NULL},
    {"https:a.example", NULL},
    {"https://", NULL},
    {"https:///path", NULL},
    {"https://:443/", NULL},
    {"1http://a.example/", NULL},
    {"httpx://a.example/", NULL},
    /* rejected: userinfo */
    {"https://user@a.example/", NULL},
    {"https://user:pw@a.example/", NULL},
    /* rejected: bad ports */
    {"https://a.example:65536/", NULL},
    {"https://a.example:0/", NULL},
    {"https://a.example:44x/", NULL},
    {"https://a.example:-1/", NULL},
    /* rejected: bad percent-encoding */
    {"https://a.example/%", NULL},
    {"https://a.example/%4", NULL},
    {"https://a.example/%zz", NULL},
    /* rejected: characters outside RFC 3986 */
    {"https://a.example/a b", NULL},
    {"https://a.example/a\\b", NULL},
    {"https://a.example/\x7f", NULL},
    {"https://a.example/\xc3\xa9", NULL},
    {"https://a.exa mple/", NULL},
    {"https://a.example/p?q=\x01", NULL},
    {"https://a.example/p#\xff", NULL},
    {"https://a.example/<x>", NULL},
    /* rejected: bad IP literals */
    {"https://[::1/", NULL},
    {"https://[]/", NULL},
    {"https://[fe80::1%25eth0]/", NULL},
    {"https://[v1.fe]/", NULL},
    {"https://[1::2::3]/", NULL},
    {"https://[::1]x/", NULL},
    {"https://[12345::]/", NULL},
};

START_TEST(test_normalize_table)
{
    const norm_case_t *c = &norm_cases[_i];
    char out[DPOP_HTU_MAX + 64];
    int rc = dpop_htu_normalize(c->in, out, sizeof(out));
    if (c->want) {
        ck_assert_msg(rc == DPOP_OK, "case %d: expected '%s' to normalize", _i, c->in);
        ck_assert_str_eq(out, c->want);
        /* normalization is idempotent */
        {
            char again[DPOP_HTU_MAX + 64];
            ck_assert_int_eq(dpop_htu_normalize(out, again, sizeof(again)), DPOP_OK);
            ck_assert_str_eq(again, out);
        }
    }
    else {
        ck_assert_msg(rc == DPOP_ERR, "case %d: expected rejection of '%s', got '%s'", _i, c->in,
                      out);
    }
}
END_TEST

typedef struct {
    const char *a;
    const char *b;
    int equal;
} eq_case_t;

static const eq_case_t eq_cases[] = {
    {"https://server.example.com/token", "https://server.example.com/token", 1},
    {"https://server.example.com/token", "https://SERVER.example.com:443/token?x=y#z", 1},
    {"https://server.example.com/token", "http://server.example.com/token", 0},
    {"https://server.example.com/token", "https://server.example.com:8443/token", 0},
    {"https://server.example.com/token", "https://server.example.com/Token", 0},
    {"https://server.example.com/token", "https://server.example.com/token/", 0},
    {"https://server.example.com/a/b", "https://server.example.com/a/c/../b", 1},
    {"https://server.example.com/a%2Fb", "https://server.example.com/a/b", 0},
    {"https://server.example.com/~x", "https://server.example.com/%7ex", 1},
    {"https://[::1]/", "https://[0::1]:443", 1},
    /* issue 15: what the request target holds encoded is not its decoding */
    {"https://s.example/api/a", "https://s.example/api/a%3Fzzz", 0},
    {"https://s.example/api/a", "https://s.example/api/a%23zzz", 0},
    {"https://s.example/api/a?zzz", "https://s.example/api/a%3Fzzz", 0},
    {"https://s.example/api/a", "https://s.example/api//a", 0},
    {"https://s.example/api/a%20b", "https://s.example/api/a%2520b", 0},
    {"https://s.example/api/a%3fzzz", "https://s.example/api/a%3Fzzz", 1},
    {"https://s.example/caf%c3%a9", "https://s.example/caf%C3%A9", 1},
    {"https://s.example/api//a", "https://s.example/api//a?x", 1},
    {"https://s.example/%41%2d", "https://s.example/A-", 1},
    {"https://s.example/api/b/%2E%2E/a", "https://s.example/api/a", 1},
    {"https://example.com", "https://example.com/", 1},
    {"https://example.com/", "https://example.com.evil/", 0},
    {"https://example.com/", "https://user@example.com/", 0},
    {"https://example.com/", "", 0},
    {"", "", 0},
    {"not a uri", "not a uri", 0},
};

START_TEST(test_equal_table)
{
    const eq_case_t *c = &eq_cases[_i];
    ck_assert_msg(dpop_htu_equal(c->a, c->b) == c->equal, "case %d: '%s' vs '%s'", _i, c->a, c->b);
    ck_assert_int_eq(dpop_htu_equal(c->b, c->a), c->equal);
}
END_TEST

START_TEST(test_null_and_small_buffers)
{
    char out[32];
    ck_assert_int_eq(dpop_htu_normalize(NULL, out, sizeof(out)), DPOP_ERR);
    ck_assert_int_eq(dpop_htu_normalize("https://a/", NULL, 10), DPOP_ERR);
    ck_assert_int_eq(dpop_htu_normalize("https://a/", out, 0), DPOP_ERR);
    /* "https://a/" needs 11 bytes with its terminator */
    ck_assert_int_eq(dpop_htu_normalize("https://a/", out, 10), DPOP_ERR);
    ck_assert_int_eq(dpop_htu_normalize("https://a/", out, 11), DPOP_OK);
    ck_assert_str_eq(out, "https://a/");
    /* the header's promise: strlen + 2 always suffices (only the empty path
     * grows, by 1; the IPv6 form is never longer than its input) */
    ck_assert_int_eq(dpop_htu_normalize("https://a", out, strlen("https://a") + 2), DPOP_OK);
    ck_assert_str_eq(out, "https://a/");
    ck_assert_int_eq(
        dpop_htu_normalize("http://[1::2:3:4:5:6:7]", out, strlen("http://[1::2:3:4:5:6:7]") + 2),
        DPOP_OK);
    ck_assert_str_eq(out, "http://[1::2:3:4:5:6:7]/");
    ck_assert_int_eq(
        dpop_htu_normalize("http://[::0.24.0.0]", out, strlen("http://[::0.24.0.0]") + 2), DPOP_OK);
    ck_assert_int_eq(dpop_htu_equal(NULL, "https://a/"), 0);
    ck_assert_int_eq(dpop_htu_equal("https://a/", NULL), 0);
}
END_TEST

START_TEST(test_length_bound)
{
    size_t n = DPOP_HTU_MAX + 1;
    char *big = malloc(n + 1);
    char *out = malloc(n + 64);
    size_t i;
    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(out);
    memcpy(big, "https://a.example/", 18);
    for (i = 18; i < n; i++)
        big[i] = 'a';
    big[n] = '\0';
    /* one byte over the bound: rejected */
    ck_assert_int_eq(dpop_htu_normalize(big, out, n + 64), DPOP_ERR);
    ck_assert_int_eq(dpop_htu_equal(big, big), 0);
    /* exactly at the bound: accepted */
    big[n - 1] = '\0';
    ck_assert_int_eq(dpop_htu_normalize(big, out, n + 64), DPOP_OK);
    ck_assert_int_eq(dpop_htu_equal(big, big), 1);
    free(big);
    free(out);
}
END_TEST

/* dpop_pct (shared with the policy path normalizer): a table of triplets,
 * each with the bytes available; truncated and non-hex triplets refused. */
typedef struct {
    const char *s;
    size_t avail;
    int want; /* decoded byte, or -1: refused */
} pct_case_t;

static const pct_case_t pct_cases[] = {
    {"%41", 3, 'A'},      {"%7e", 3, '~'},  {"%7E", 3, '~'}, {"%00", 3, 0},  {"%ff", 3, 0xff},
    {"%2F", 3, '/'},      {"%2fx", 4, '/'}, {"%4", 2, -1},   {"%41", 2, -1}, {"%", 1, -1},
    {"%G1", 3, -1},       {"%1g", 3, -1},   {"%-1", 3, -1},  {"% 1", 3, -1}, {"41", 3, -1},
    {"%\xc1\x81", 3, -1}, {"%41", 0, -1},
};

START_TEST(test_pct_table)
{
    const pct_case_t *c = &pct_cases[_i];
    unsigned char d = 0x5a;
    /* an exact-size copy so ASan catches a read past avail */
    char *buf = malloc(c->avail ? c->avail : 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, c->s, c->avail);
    if (c->want < 0) {
        ck_assert_int_eq(dpop_pct_decode(buf, c->avail, &d), -1);
        ck_assert_uint_eq(d, 0x5a); /* untouched on refusal */
    }
    else {
        ck_assert_int_eq(dpop_pct_decode(buf, c->avail, &d), 0);
        ck_assert_uint_eq(d, (unsigned)c->want);
    }
    free(buf);
}
END_TEST

START_TEST(test_pct_hexval)
{
    int c, n = 0;
    for (c = 0; c < 256; c++) {
        int v = dpop_pct_hexval((unsigned char)c);
        if (v >= 0) {
            n++;
            ck_assert_int_lt(v, 16);
        }
    }
    ck_assert_int_eq(n, 22); /* 0-9, a-f, A-F */
    ck_assert_int_eq(dpop_pct_hexval('b'), 11);
    ck_assert_int_eq(dpop_pct_hexval('B'), 11);
    ck_assert_int_eq(dpop_pct_decode(NULL, 3, NULL), -1);
}
END_TEST

static Suite *htu_suite(void)
{
    Suite *s = suite_create("htu");
    TCase *tc = tcase_create("normalize");
    tcase_add_loop_test(tc, test_normalize_table, 0,
                        (int)(sizeof(norm_cases) / sizeof(norm_cases[0])));
    tcase_add_test(tc, test_null_and_small_buffers);
    tcase_add_test(tc, test_length_bound);
    suite_add_tcase(s, tc);
    tc = tcase_create("equal");
    tcase_add_loop_test(tc, test_equal_table, 0, (int)(sizeof(eq_cases) / sizeof(eq_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("pct");
    tcase_add_loop_test(tc, test_pct_table, 0, (int)(sizeof(pct_cases) / sizeof(pct_cases[0])));
    tcase_add_test(tc, test_pct_hexval);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(htu_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
