/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy_util.h: what the policy Check programs share.
 *
 * Test code only; included by tests/unit/test_policy_*.c.
 */
#ifndef TEST_POLICY_UTIL_H
#define TEST_POLICY_UTIL_H

#include <check.h>

/* Run every test of s with Check's summary line; 1 when any failed. */
static inline int run_policy_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
