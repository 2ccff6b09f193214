/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proof_nonce.c: stateless nonces (RFC 9449 §8): make/check in the
 * current and previous bucket, expiry, wrong secret, garbled and wrong-length
 * nonces, parameter validation, and the secret file loader.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "dpop_b64.h"
#include "dpop_nonce.h"
#include "dpop_result.h"

static const unsigned char secret_a[] = "0123456789abcdef0123456789abcdef-secret-A";
static const unsigned char secret_b[] = "0123456789abcdef0123456789abcdef-secret-B";
#define SLEN (sizeof(secret_a) - 1)
#define LIFE 300
#define T0 1700000100 /* bucket 5666667 starts at 1700000100 */

static void make(const unsigned char *sec, int64_t now, char out[DPOP_NONCE_LEN + 1])
{
    ck_assert_int_eq(dpop_nonce_make(sec, SLEN, now, LIFE, out, DPOP_NONCE_LEN + 1), DPOP_OK);
    ck_assert_uint_eq(strlen(out), DPOP_NONCE_LEN);
}

START_TEST(test_current_bucket)
{
    char n[DPOP_NONCE_LEN + 1], n2[DPOP_NONCE_LEN + 1];
    int fresh = -1;
    make(secret_a, T0, n);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, n, strlen(n), &fresh), 1);
    ck_assert_int_eq(fresh, 1);
    /* same bucket, later second: same nonce (stateless, deterministic) */
    make(secret_a, T0 + LIFE - 1, n2);
    ck_assert_str_eq(n, n2);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0 + LIFE - 1, LIFE, n, strlen(n), &fresh),
                     1);
    ck_assert_int_eq(fresh, 1);
    /* fresh may be NULL */
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, n, strlen(n), NULL), 1);
    /* the nonce is base64url */
    {
        unsigned char raw[32];
        size_t rawlen;
        ck_assert_int_eq(dpop_b64url_decode_buf(n, strlen(n), raw, sizeof(raw), &rawlen), DPOP_OK);
        ck_assert_uint_eq(rawlen, 24);
    }
}
END_TEST

START_TEST(test_previous_bucket)
{
    char n[DPOP_NONCE_LEN + 1], next[DPOP_NONCE_LEN + 1];
    int fresh = -1;
    make(secret_a, T0, n);
    make(secret_a, T0 + LIFE, next);
    ck_assert_str_ne(n, next);
    /* first second of the next bucket: still valid, but not fresh */
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0 + LIFE, LIFE, n, strlen(n), &fresh), 1);
    ck_assert_int_eq(fresh, 0);
    /* last second of the next bucket */
    ck_assert_int_eq(
        dpop_nonce_check(secret_a, SLEN, T0 + 2 * LIFE - 1, LIFE, n, strlen(n), &fresh), 1);
    ck_assert_int_eq(fresh, 0);
}
END_TEST

START_TEST(test_expired_and_future)
{
    char n[DPOP_NONCE_LEN + 1];
    int fresh = -1;
    make(secret_a, T0, n);
    /* two buckets later: expired */
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0 + 2 * LIFE, LIFE, n, strlen(n), &fresh),
                     0);
    ck_assert_int_eq(fresh, 0);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0 + 100 * LIFE, LIFE, n, strlen(n), NULL),
                     0);
    /* a nonce from a future bucket (clock of another server ahead) is refused */
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0 - 1, LIFE, n, strlen(n), NULL), 0);
    /* a different lifetime means different buckets */
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE * 7, n, strlen(n), NULL), 0);
}
END_TEST

START_TEST(test_wrong_secret)
{
    char n[DPOP_NONCE_LEN + 1];
    make(secret_a, T0, n);
    ck_assert_int_eq(dpop_nonce_check(secret_b, SLEN, T0, LIFE, n, strlen(n), NULL), 0);
    /* a prefix of the right secret is another key */
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN - 1, T0, LIFE, n, strlen(n), NULL), 0);
}
END_TEST

START_TEST(test_garbled)
{
    char n[DPOP_NONCE_LEN + 1], bad[DPOP_NONCE_LEN + 1];
    size_t i;
    make(secret_a, T0, n);
    /* flip every position in turn to another base64url character */
    for (i = 0; i < DPOP_NONCE_LEN; i++) {
        memcpy(bad, n, sizeof(bad));
        bad[i] = (bad[i] == 'A') ? 'B' : 'A';
        ck_assert_msg(dpop_nonce_check(secret_a, SLEN, T0, LIFE, bad, strlen(bad), NULL) == 0,
                      "garbled at %zu accepted", i);
    }
    /* characters outside base64url */
    memcpy(bad, n, sizeof(bad));
    bad[5] = '+';
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, bad, strlen(bad), NULL), 0);
    bad[5] = '=';
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, bad, strlen(bad), NULL), 0);
    /* a forged nonce for the right bucket with a zero tag */
    {
        unsigned char raw[24] = {0};
        char forged[DPOP_NONCE_LEN + 1];
        uint64_t b = (uint64_t)(T0 / LIFE);
        int k;
        for (k = 7; k >= 0; k--) {
            raw[k] = (unsigned char)(b & 0xff);
            b >>= 8;
        }
        ck_assert_uint_eq(dpop_b64url_encode_buf(raw, sizeof(raw), forged, sizeof(forged)),
                          DPOP_NONCE_LEN);
        ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, forged, strlen(forged), NULL),
                         0);
    }
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, NULL, 0, NULL), 0);
}
END_TEST

START_TEST(test_wrong_length)
{
    char n[DPOP_NONCE_LEN + 1];
    char longer[DPOP_NONCE_LEN + 8];
    make(secret_a, T0, n);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, n, DPOP_NONCE_LEN - 1, NULL), 0);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, n, 0, NULL), 0);
    snprintf(longer, sizeof(longer), "%sAAAA", n);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, LIFE, longer, strlen(longer), NULL), 0);
    /* make needs room for the terminator */
    ck_assert_int_eq(dpop_nonce_make(secret_a, SLEN, T0, LIFE, n, DPOP_NONCE_LEN), DPOP_ERR);
}
END_TEST

START_TEST(test_bad_params)
{
    char n[DPOP_NONCE_LEN + 1], ok[DPOP_NONCE_LEN + 1];
    make(secret_a, T0, ok);
    /* short secret */
    ck_assert_int_eq(dpop_nonce_make(secret_a, DPOP_NONCE_SECRET_MIN - 1, T0, LIFE, n, sizeof(n)),
                     DPOP_ERR);
    ck_assert_int_eq(
        dpop_nonce_check(secret_a, DPOP_NONCE_SECRET_MIN - 1, T0, LIFE, ok, strlen(ok), NULL), 0);
    ck_assert_int_eq(dpop_nonce_make(NULL, SLEN, T0, LIFE, n, sizeof(n)), DPOP_ERR);
    /* lifetime must be positive, the clock non-negative */
    ck_assert_int_eq(dpop_nonce_make(secret_a, SLEN, T0, 0, n, sizeof(n)), DPOP_ERR);
    ck_assert_int_eq(dpop_nonce_make(secret_a, SLEN, T0, -5, n, sizeof(n)), DPOP_ERR);
    ck_assert_int_eq(dpop_nonce_make(secret_a, SLEN, -1, LIFE, n, sizeof(n)), DPOP_ERR);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, T0, 0, ok, strlen(ok), NULL), 0);
    ck_assert_int_eq(dpop_nonce_make(secret_a, SLEN, T0, LIFE, NULL, 0), DPOP_ERR);
    /* bucket 0 has no previous bucket (no unsigned wrap-around) */
    make(secret_a, 0, n);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, 0, LIFE, n, strlen(n), NULL), 1);
    ck_assert_int_eq(dpop_nonce_check(secret_a, SLEN, LIFE, LIFE, n, strlen(n), NULL), 1);
}
END_TEST

static char *write_tmp(const void *data, size_t n)
{
    char *path = strdup("/tmp/dpop-nonce-XXXXXX");
    int fd;
    ck_assert_ptr_nonnull(path);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((int)write(fd, data, n), (int)n);
    close(fd);
    return path;
}

START_TEST(test_secret_load)
{
    unsigned char *sec = NULL;
    size_t len = 0;
    char err[256];
    char *p;
    char big[5000];

    /* trailing newline stripped */
    p = write_tmp("0123456789abcdef0123456789abcdef\n", 33);
    ck_assert_int_eq(dpop_nonce_secret_load(p, &sec, &len, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(len, 32);
    ck_assert_int_eq(memcmp(sec, "0123456789abcdef0123456789abcdef", 32), 0);
    OPENSSL_clear_free(sec, len);
    unlink(p);
    free(p);

    /* CRLF stripped too */
    p = write_tmp("0123456789abcdef0123456789abcdefXY\r\n", 36);
    ck_assert_int_eq(dpop_nonce_secret_load(p, &sec, &len, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(len, 34);
    OPENSSL_clear_free(sec, len);
    unlink(p);
    free(p);

    /* too short (31 bytes + newline) */
    p = write_tmp("0123456789abcdef0123456789abcde\n", 32);
    sec = (unsigned char *)"x";
    ck_assert_int_eq(dpop_nonce_secret_load(p, &sec, &len, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_null(sec);
    ck_assert_ptr_nonnull(strstr(err, "at least 32"));
    /* the error never echoes the secret */
    ck_assert_ptr_null(strstr(err, "0123456789abcdef"));
    unlink(p);
    free(p);

    /* too large */
    memset(big, 'k', sizeof(big));
    p = write_tmp(big, sizeof(big));
    ck_assert_int_eq(dpop_nonce_secret_load(p, &sec, &len, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(err, "larger"));
    unlink(p);
    free(p);

    /* missing file */
    ck_assert_int_eq(
        dpop_nonce_secret_load("/nonexistent/dpop-secret", &sec, &len, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
    ck_assert_int_eq(dpop_nonce_secret_load(NULL, &sec, &len, err, sizeof(err)), DPOP_ERR);
}
END_TEST

static Suite *nonce_suite(void)
{
    Suite *s = suite_create("nonce");
    TCase *tc = tcase_create("make_check");
    tcase_add_test(tc, test_current_bucket);
    tcase_add_test(tc, test_previous_bucket);
    tcase_add_test(tc, test_expired_and_future);
    tcase_add_test(tc, test_wrong_secret);
    tcase_add_test(tc, test_garbled);
    tcase_add_test(tc, test_wrong_length);
    tcase_add_test(tc, test_bad_params);
    suite_add_tcase(s, tc);
    tc = tcase_create("secret_file");
    tcase_add_test(tc, test_secret_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nonce_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
