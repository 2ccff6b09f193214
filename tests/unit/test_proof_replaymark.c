/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proof_replaymark.c: loss markers of network replay stores
 * (dpop_replaymark.h): strict parsing of the stored value, the refusal rule
 * iat < marker + skew, and a new marker never earlier than the loss.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_replaymark.h"

#define T0 1700000000

/* Table: stored bytes -> parsed (1) with value, or refused (0). */
static const struct {
    const char *in;
    int ok;
    int64_t value;
} parse_rows[] = {
    {"1700000000", 1, T0},
    {"1", 1, 1},
    {"1099511627775", 1, ((int64_t)1 << 40) - 1},
    {"1099511627776", 0, 0},         /* 2^40: beyond any clock */
    {"99999999999999999999", 0, 0},  /* 20 digits: no overflow */
    {"999999999999999999999", 0, 0}, /* 21 digits */
    {"0", 0, 0},
    {"", 0, 0},
    {"-1700000000", 0, 0},
    {"+1700000000", 0, 0},
    {" 1700000000", 0, 0},
    {"1700000000 ", 0, 0},
    {"1700000000.5", 0, 0},
    {"17e8", 0, 0},
    {"0x10", 0, 0},
};

START_TEST(test_parse_rows)
{
    int64_t v = -7;
    const char *in = parse_rows[_i].in;
    int rc = dpop_replaymark_parse(in, strlen(in), &v);
    ck_assert_msg((rc == 0) == parse_rows[_i].ok, "row %d '%s': rc %d", _i, in, rc);
    if (parse_rows[_i].ok)
        ck_assert_int_eq(v, parse_rows[_i].value);
    else
        ck_assert_int_eq(v, -7); /* untouched on refusal */
}
END_TEST

START_TEST(test_parse_length_not_nul)
{
    /* the value is given by length: bytes after it are not read */
    int64_t v = 0;
    ck_assert_int_eq(dpop_replaymark_parse("1700000000garbage", 10, &v), 0);
    ck_assert_int_eq(v, T0);
    ck_assert_int_eq(dpop_replaymark_parse(NULL, 0, &v), -1);
    ck_assert_int_eq(dpop_replaymark_parse("1\0", 2, &v), -1); /* embedded NUL */
}
END_TEST

/* Table: marker, iat, skew -> refused?  A proof accepted before the loss
 * was accepted before the marker second and its iat was at most one skew
 * ahead of its acceptance. */
static const struct {
    int64_t marker, iat;
    int skew;
    int refused;
} refuse_rows[] = {
    {T0, T0 - 300, 5, 1}, /* an old proof */
    {T0, T0, 5, 1},       /* issued at the loss */
    {T0, T0 + 4, 5, 1},   /* one skew ahead of the loss: could have been accepted */
    {T0, T0 + 5, 5, 0},   /* issued after marker + skew: fresh */
    {T0, T0 + 60, 5, 0},  {T0, T0 - 1, 0, 1},
    {T0, T0, 0, 0},       {T0, T0, -3, 0}, /* a negative skew counts as 0 */
};

START_TEST(test_refuse_rows)
{
    ck_assert_msg(dpop_replaymark_refuses(refuse_rows[_i].marker, refuse_rows[_i].iat,
                                          refuse_rows[_i].skew) == refuse_rows[_i].refused,
                  "row %d", _i);
}
END_TEST

START_TEST(test_new_after_loss)
{
    /* the clock reads T0 during second [T0, T0+1): a loss anywhere in it
     * is no later than the new marker */
    ck_assert_int_eq(dpop_replaymark_new(T0), T0 + 1);
    ck_assert_int_eq(dpop_replaymark_refuses(dpop_replaymark_new(T0), T0 + 1, 0), 0);
    ck_assert_int_eq(dpop_replaymark_refuses(dpop_replaymark_new(T0), T0, 0), 1);
}
END_TEST

static Suite *mark_suite(void)
{
    Suite *s = suite_create("replaymark");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_parse_rows, 0, sizeof(parse_rows) / sizeof(parse_rows[0]));
    tcase_add_test(tc, test_parse_length_not_nul);
    suite_add_tcase(s, tc);
    tc = tcase_create("refuse");
    tcase_add_loop_test(tc, test_refuse_rows, 0, sizeof(refuse_rows) / sizeof(refuse_rows[0]));
    tcase_add_test(tc, test_new_after_loss);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mark_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
