/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proof_replayfill.c: the replay cache fill counter (dpop_replayfill.h):
 * a full cache refuses proofs, expired entries free room, the count never
 * falls below the live entries, and the shmcb capacity estimate stays under
 * the measured eviction point.
 */
#include <check.h>
#include <stdlib.h>

#include "dpop_replayfill.h"

#define T0 1700000000 /* a multiple of DPOP_FILL_GRAIN */

static dpop_replayfill_t *fill_new(uint64_t capacity)
{
    dpop_replayfill_t *f = malloc(sizeof(*f));
    ck_assert_ptr_nonnull(f);
    dpop_replayfill_init(f, capacity);
    return f;
}

START_TEST(test_full_refuses)
{
    dpop_replayfill_t *f = fill_new(3);
    int i;
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 306), 1);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 306), 0);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0 + 305, T0 + 611), 0);
    ck_assert_uint_eq(f->live, 3);
    free(f);
}
END_TEST

/* Table: entries admitted at T0 with these lifetimes; at time `at` this
 * many are still counted (never fewer than are live, at most one grain
 * late). */
static const struct {
    int64_t at;
    uint64_t counted;
} expiry_rows[] = {
    {T0, 3},       {T0 + 9, 3}, /* nothing expired */
    {T0 + 10, 3},               /* expiry T0+10 is live at T0+10 */
    {T0 + 16, 2},               /* bucket [T0+8, T0+15] released */
    {T0 + 100, 2}, {T0 + 308, 1}, {T0 + 312, 0},
};

START_TEST(test_expiry_rows)
{
    dpop_replayfill_t *f = fill_new(0);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 10), 1);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 300), 1);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 306), 1);
    dpop_replayfill_expire(f, expiry_rows[_i].at);
    ck_assert_msg(f->live == expiry_rows[_i].counted, "row %d: at +%lld counted %llu, want %llu",
                  _i, (long long)(expiry_rows[_i].at - T0), (unsigned long long)f->live,
                  (unsigned long long)expiry_rows[_i].counted);
    free(f);
}
END_TEST

START_TEST(test_room_returns)
{
    dpop_replayfill_t *f = fill_new(2);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 20), 1);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 300), 1);
    ck_assert_int_eq(dpop_replayfill_admit(f, T0 + 20, T0 + 326), 0); /* T0+20 still live */
    ck_assert_int_eq(dpop_replayfill_admit(f, T0 + 24, T0 + 330), 1); /* its bucket expired */
    ck_assert_int_eq(dpop_replayfill_admit(f, T0 + 24, T0 + 330), 0);
    free(f);
}
END_TEST

START_TEST(test_edges)
{
    dpop_replayfill_t *f = fill_new(0);
    /* an expiry already past is still counted until its bucket is left */
    ck_assert_int_eq(dpop_replayfill_admit(f, T0 + 3, T0 - 100), 1);
    dpop_replayfill_expire(f, T0 + 7);
    ck_assert_uint_eq(f->live, 1);
    dpop_replayfill_expire(f, T0 + 8);
    ck_assert_uint_eq(f->live, 0);
    /* an expiry beyond the ring is kept (released late, never early) */
    ck_assert_int_eq(dpop_replayfill_admit(f, T0, T0 + 10 * DPOP_FILL_MAX_AHEAD), 1);
    dpop_replayfill_expire(f, T0 + DPOP_FILL_MAX_AHEAD - DPOP_FILL_GRAIN);
    ck_assert_uint_eq(f->live, 1);
    /* a long idle period releases everything */
    dpop_replayfill_expire(f, T0 + 100 * (int64_t)DPOP_FILL_MAX_AHEAD);
    ck_assert_uint_eq(f->live, 0);
    /* the clock going back never releases anything */
    ck_assert_int_eq(dpop_replayfill_admit(f, T0 + 1000, T0 + 1300), 1);
    dpop_replayfill_expire(f, T0);
    ck_assert_uint_eq(f->live, 1);
    /* negative times (before 1970) bucket downwards */
    dpop_replayfill_init(f, 0);
    ck_assert_int_eq(dpop_replayfill_admit(f, -20, -1), 1);
    dpop_replayfill_expire(f, -8);
    ck_assert_uint_eq(f->live, 1);
    dpop_replayfill_expire(f, 0);
    ck_assert_uint_eq(f->live, 0);
    free(f);
}
END_TEST

/* A steady stream over several windows stays bounded by what is live. */
START_TEST(test_steady_stream)
{
    dpop_replayfill_t *f = fill_new(0);
    int64_t t;
    for (t = T0; t < T0 + 3000; t++) {
        int i;
        for (i = 0; i < 10; i++)
            ck_assert_int_eq(dpop_replayfill_admit(f, t, t + 306), 1);
        /* live entries: those admitted in the last 306 s; counted at most
         * one grain more */
        if (t >= T0 + 400)
            ck_assert_msg(f->live >= 3060 && f->live <= 3060 + 10 * DPOP_FILL_GRAIN,
                          "at +%lld: %llu", (long long)(t - T0), (unsigned long long)f->live);
    }
    free(f);
}
END_TEST

START_TEST(test_shmcb_capacity)
{
    /* measured: first evictions at 7,000-8,000 entries per MiB */
    ck_assert_uint_lt(dpop_replayfill_shmcb_capacity(1048576), 7000);
    ck_assert_uint_gt(dpop_replayfill_shmcb_capacity(1048576), 5000);
    ck_assert_uint_eq(dpop_replayfill_shmcb_capacity(0), 0);
    ck_assert_uint_lt(dpop_replayfill_shmcb_capacity(67108864), 7000 * 64);
}
END_TEST

static Suite *fill_suite(void)
{
    Suite *s = suite_create("replayfill");
    TCase *tc = tcase_create("capacity");
    tcase_add_test(tc, test_full_refuses);
    tcase_add_test(tc, test_room_returns);
    tcase_add_test(tc, test_shmcb_capacity);
    suite_add_tcase(s, tc);
    tc = tcase_create("expiry");
    tcase_add_loop_test(tc, test_expiry_rows, 0, sizeof(expiry_rows) / sizeof(expiry_rows[0]));
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_steady_stream);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fill_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
