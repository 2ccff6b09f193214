/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_core_tokensrc.c: the core parts of the token sources (issue 17):
 * authorization server metadata (dpop_asmeta_parse, the refresh rule),
 * RFC 7662 introspection responses (dpop_introspect_parse), the request
 * form, the RFC 7523 client assertion, and dpop_jwks_kid_unknown.
 *
 * metadata: issuer required and equal to the expected one; member types;
 * oversize documents; Cache-Control max-age clamped to 60..DPoPTokenRefresh.
 * introspection: table of responses -> OK / token_invalid / bad response
 * (active false or missing, wrong types, cnf without jkt, expired, wrong
 * iss/aud, oversize, not JSON), with the fields an OK answer yields.
 * assertion: signed, verifies with the public key, iss = sub = client_id,
 * aud = endpoint, exp = iat + 60, a jti.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "dpop_asmeta.h"
#include "dpop_b64.h"
#include "dpop_introspect.h"
#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_jwks.h"
#include "dpop_jws.h"
#include "dpop_result.h"
#include "dpop_token.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define JKT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define NOW 1700000000

/* ---- metadata --------------------------------------------------------- */

static const struct {
    const char *doc;
    const char *expect_iss; /* NULL: not checked */
    int ok;
    const char *err_has;
} meta_cases[] = {
    {"{\"issuer\":\"https://as\",\"jwks_uri\":\"https://as/j\","
     "\"introspection_endpoint\":\"https://as/i\"}",
     "https://as", 1, NULL},
    {"{\"issuer\":\"https://as\"}", NULL, 1, NULL},
    {"{\"issuer\":\"https://other\",\"jwks_uri\":\"https://as/j\"}", "https://as", 0,
     "issuer does not equal"},
    {"{\"jwks_uri\":\"https://as/j\"}", NULL, 0, "\"issuer\" is missing"},
    {"{\"issuer\":7}", NULL, 0, "\"issuer\" is not"},
    {"{\"issuer\":\"https://as\",\"jwks_uri\":[\"x\"]}", NULL, 0, "\"jwks_uri\" is not"},
    {"{\"issuer\":\"https://as\",\"introspection_endpoint\":\"\"}", NULL, 0,
     "\"introspection_endpoint\" is not"},
    {"[\"issuer\"]", NULL, 0, "metadata:"},
    {"not json", NULL, 0, "metadata:"},
};

START_TEST(test_meta)
{
    dpop_asmeta_t m;
    char err[256];
    int rc = dpop_asmeta_parse(meta_cases[_i].doc, strlen(meta_cases[_i].doc),
                               meta_cases[_i].expect_iss, &m, err, sizeof(err));
    ck_assert_int_eq(rc == 0, meta_cases[_i].ok);
    if (rc == 0)
        ck_assert_str_eq(m.issuer, "https://as");
    else {
        ck_assert_ptr_null(m.issuer);
        ck_assert_msg(strstr(err, meta_cases[_i].err_has), "case %d: %s", _i, err);
    }
    dpop_asmeta_clear(&m);
}
END_TEST

START_TEST(test_meta_fields)
{
    dpop_asmeta_t m;
    const char *d = meta_cases[0].doc;
    ck_assert_int_eq(dpop_asmeta_parse(d, strlen(d), NULL, &m, NULL, 0), 0);
    ck_assert_str_eq(m.jwks_uri, "https://as/j");
    ck_assert_str_eq(m.introspection_endpoint, "https://as/i");
    dpop_asmeta_clear(&m);
}
END_TEST

START_TEST(test_meta_oversize)
{
    size_t n = DPOP_ASMETA_MAX_BYTES + 64;
    char *big = malloc(n + 1);
    dpop_asmeta_t m;
    char err[128];
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    memcpy(big, "{\"issuer\":\"https://as\"}", 23);
    big[n] = '\0';
    ck_assert_int_eq(dpop_asmeta_parse(big, n, NULL, &m, err, sizeof(err)), -1);
    free(big);
}
END_TEST

static const struct {
    int64_t configured;
    long max_age;
    int64_t want;
} refresh_cases[] = {
    {3600, -1, 3600},     /* no Cache-Control: the directive */
    {3600, 600, 600},     /* the AS asks for sooner */
    {3600, 5, 60},        /* never below 60 s */
    {3600, 0, 60},        /* no-store / no-cache */
    {3600, 999999, 3600}, /* never past DPoPTokenRefresh */
    {86400, 999999, 86400}, {0, -1, DPOP_REFRESH_DEFAULT},
};

START_TEST(test_refresh)
{
    ck_assert_int_eq(
        dpop_asmeta_refresh_secs(refresh_cases[_i].configured, refresh_cases[_i].max_age),
        refresh_cases[_i].want);
}
END_TEST

/* ---- introspection ---------------------------------------------------- */

enum { OK_, INVALID, BAD };

static const struct {
    const char *body;
    int want;
    const char *detail_has;
} intro_cases[] = {
    {"{\"active\":true,\"sub\":\"bob\",\"client_id\":\"c1\",\"iss\":\"https://as\","
     "\"aud\":\"https://api\",\"exp\":1700000300,\"cnf\":{\"jkt\":\"" JKT "\"}}",
     OK_, NULL},
    /* aud as an array, no exp (optional in RFC 7662) */
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":[\"x\",\"https://api\"],"
     "\"cnf\":{\"jkt\":\"" JKT "\"}}",
     OK_, NULL},
    /* unbound: OK, jkt NULL (the caller answers token_unbound) */
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\"}", OK_, NULL},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"cnf\":{}}", OK_, NULL},
    {"{\"active\":false}", INVALID, "not active"},
    {"{\"active\":false,\"sub\":\"bob\",\"cnf\":{\"jkt\":\"" JKT "\"}}", INVALID, "not active"},
    {"{\"active\":\"true\"}", BAD, "boolean"},
    {"{\"active\":1}", BAD, "boolean"},
    {"{\"sub\":\"bob\"}", BAD, "boolean"},
    {"[true]", BAD, NULL},
    {"<html>", BAD, NULL},
    {"", BAD, NULL},
    {"{\"active\":true,\"iss\":\"https://evil\",\"aud\":\"https://api\"}", INVALID, "iss"},
    {"{\"active\":true,\"aud\":\"https://api\"}", INVALID, "iss missing"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://other\"}", INVALID, "aud"},
    {"{\"active\":true,\"iss\":\"https://as\"}", INVALID, "aud missing"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":7}", INVALID, "aud"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"exp\":1699999000}", INVALID,
     "window"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"exp\":\"soon\"}", INVALID,
     "NumericDate"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"nbf\":1700009999}", INVALID,
     "nbf"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"sub\":5}", INVALID, "sub"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"client_id\":[]}", INVALID,
     "client_id"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"cnf\":\"x\"}", INVALID,
     "cnf"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"cnf\":{\"jkt\":\"short\"}}",
     INVALID, "cnf.jkt"},
    {"{\"active\":true,\"iss\":\"https://as\",\"aud\":\"https://api\",\"cnf\":{\"jkt\":7}}",
     INVALID, "cnf.jkt"},
};

static dpop_introspect_params_t params(void)
{
    dpop_introspect_params_t p;
    memset(&p, 0, sizeof(p));
    p.issuer = "https://as";
    p.audience = "https://api";
    p.now = NOW;
    p.skew = 5;
    return p;
}

START_TEST(test_introspect)
{
    dpop_introspect_params_t p = params();
    dpop_token_result_t r;
    dpop_failure_t f;
    int active = -1;
    const char *b = intro_cases[_i].body;
    int rc = dpop_introspect_parse(b, strlen(b), &p, &r, &active, &f);
    int want = intro_cases[_i].want;
    ck_assert_msg((want == OK_ && rc == DPOP_OK) || (want == INVALID && rc == DPOP_ERR) ||
                      (want == BAD && rc == DPOP_INTROSPECT_BAD_RESPONSE),
                  "case %d: rc %d (%s)", _i, rc, f.detail);
    if (rc != DPOP_OK) {
        if (rc == DPOP_ERR)
            ck_assert_int_eq(f.code, DPOP_REASON_TOKEN_INVALID);
        if (intro_cases[_i].detail_has)
            ck_assert_msg(strstr(f.detail, intro_cases[_i].detail_has), "case %d: %s", _i,
                          f.detail);
        ck_assert_ptr_null(r.sub);
        ck_assert_ptr_null(r.jkt);
    }
    else
        ck_assert_int_eq(active, 1);
    dpop_token_result_clear(&r);
}
END_TEST

START_TEST(test_introspect_fields)
{
    dpop_introspect_params_t p = params();
    dpop_token_result_t r;
    dpop_failure_t f;
    const char *b = intro_cases[0].body;
    ck_assert_int_eq(dpop_introspect_parse(b, strlen(b), &p, &r, NULL, &f), DPOP_OK);
    ck_assert_str_eq(r.sub, "bob");
    ck_assert_str_eq(r.client_id, "c1");
    ck_assert_str_eq(r.jkt, JKT);
    ck_assert_int_eq(r.exp, 1700000300);
    dpop_token_result_clear(&r);
    /* unbound: no jkt */
    b = intro_cases[2].body;
    ck_assert_int_eq(dpop_introspect_parse(b, strlen(b), &p, &r, NULL, &f), DPOP_OK);
    ck_assert_ptr_null(r.jkt);
    dpop_token_result_clear(&r);
    /* without configured issuer/audience, neither is required */
    p.issuer = NULL;
    p.audience = NULL;
    b = "{\"active\":true}";
    ck_assert_int_eq(dpop_introspect_parse(b, strlen(b), &p, &r, NULL, &f), DPOP_OK);
    dpop_token_result_clear(&r);
}
END_TEST

START_TEST(test_introspect_oversize)
{
    size_t n = DPOP_INTROSPECT_MAX_BYTES + 1;
    char *big = malloc(n + 1);
    dpop_introspect_params_t p = params();
    dpop_token_result_t r;
    dpop_failure_t f;
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    memcpy(big, "{\"active\":true}", 15);
    big[n] = '\0';
    ck_assert_int_eq(dpop_introspect_parse(big, n, &p, &r, NULL, &f), DPOP_INTROSPECT_BAD_RESPONSE);
    free(big);
}
END_TEST

START_TEST(test_form)
{
    char *form = NULL;
    ck_assert_int_eq(dpop_introspect_form("a+b/c=d", NULL, NULL, &form), DPOP_OK);
    ck_assert_str_eq(form, "token=a%2Bb%2Fc%3Dd&token_type_hint=access_token");
    dpop_introspect_form_free(form);
    ck_assert_int_eq(dpop_introspect_form("t", "rs 1", "x.y.z", &form), DPOP_OK);
    ck_assert_str_eq(form, "token=t&token_type_hint=access_token&client_assertion_type=urn%3Aietf%"
                           "3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_"
                           "assertion=x.y.z&client_id=rs%201");
    dpop_introspect_form_free(form);
    ck_assert_int_eq(dpop_introspect_form("", NULL, NULL, &form), DPOP_ERR);
}
END_TEST

/* ---- client assertion -------------------------------------------------- */

START_TEST(test_client_assertion)
{
    json_t *priv = NULL, *pub = NULL, *claims;
    EVP_PKEY *key = NULL;
    dpop_jwks_t *set = NULL;
    dpop_jws_t jws;
    dpop_failure_t f;
    char *a = NULL, *pubtxt, err[128];
    const char *s = NULL, *kid = NULL;
    int64_t iat = 0, exp = 0;

    ck_assert_int_eq(dpop_jwk_generate(DPOP_ALG_ES256, &priv), DPOP_OK);
    ck_assert_int_eq(dpop_jwk_private_alg(priv), DPOP_ALG_ES256);
    ck_assert_int_eq(dpop_jwk_import_private(priv, &key, &pub, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(
        dpop_client_assertion(key, DPOP_ALG_ES256, "k1", "rs-1", "https://as/introspect", NOW, &a),
        DPOP_OK);
    json_object_set_new(pub, "kid", json_string("k1"));
    pubtxt = json_dumps(pub, JSON_COMPACT);
    ck_assert_int_eq(dpop_jwks_parse(pubtxt, strlen(pubtxt), &set, err, sizeof(err)), DPOP_OK);
    memset(&jws, 0, sizeof(jws));
    ck_assert_int_eq(dpop_jws_parse(a, strlen(a), 8192, &jws, &f), DPOP_OK);
    ck_assert_int_eq(dpop_jwks_verify(set, &jws, DPOP_ALG_MASK_DEFAULT, &kid, &f), DPOP_OK);
    claims = jws.payload;
    ck_assert_int_eq(dpop_json_get_string(claims, "iss", &s), 1);
    ck_assert_str_eq(s, "rs-1");
    ck_assert_int_eq(dpop_json_get_string(claims, "sub", &s), 1);
    ck_assert_str_eq(s, "rs-1");
    ck_assert_int_eq(dpop_json_get_string(claims, "aud", &s), 1);
    ck_assert_str_eq(s, "https://as/introspect");
    ck_assert_int_eq(dpop_json_get_string(claims, "jti", &s), 1);
    ck_assert_uint_ge(strlen(s), 16);
    ck_assert_int_eq(dpop_json_get_int(claims, "iat", &iat), 1);
    ck_assert_int_eq(dpop_json_get_int(claims, "exp", &exp), 1);
    ck_assert_int_eq(exp - iat, DPOP_ASSERTION_LIFETIME);
    ck_assert_int_eq(iat, NOW);
    dpop_jws_clear(&jws);
    free(pubtxt);
    free(a);
    dpop_jwks_free(set);
    EVP_PKEY_free(key);
    json_decref(pub);
    json_decref(priv);
}
END_TEST

/* ---- kid lookup (rotation trigger) -------------------------------------- */

START_TEST(test_kid_unknown)
{
    json_t *priv = NULL, *pub = NULL, *claims;
    EVP_PKEY *key = NULL;
    dpop_jwks_t *set = NULL;
    char *pubtxt, *tok = NULL, err[128];
    ck_assert_int_eq(dpop_jwk_generate(DPOP_ALG_ES256, &priv), DPOP_OK);
    ck_assert_int_eq(dpop_jwk_import_private(priv, &key, &pub, err, sizeof(err)), DPOP_OK);
    json_object_set_new(pub, "kid", json_string("known"));
    pubtxt = json_dumps(pub, JSON_COMPACT);
    ck_assert_int_eq(dpop_jwks_parse(pubtxt, strlen(pubtxt), &set, err, sizeof(err)), DPOP_OK);
    claims = json_pack("{s:s}", "sub", "x");
    ck_assert_int_eq(dpop_token_create(key, DPOP_ALG_ES256, "known", claims, &tok), DPOP_OK);
    ck_assert_int_eq(dpop_jwks_kid_unknown(set, tok, strlen(tok)), 0);
    free(tok);
    ck_assert_int_eq(dpop_token_create(key, DPOP_ALG_ES256, "new", claims, &tok), DPOP_OK);
    ck_assert_int_eq(dpop_jwks_kid_unknown(set, tok, strlen(tok)), 1);
    free(tok);
    ck_assert_int_eq(dpop_token_create(key, DPOP_ALG_ES256, NULL, claims, &tok), DPOP_OK);
    ck_assert_int_eq(dpop_jwks_kid_unknown(set, tok, strlen(tok)), 0); /* no kid */
    free(tok);
    ck_assert_int_eq(dpop_jwks_kid_unknown(set, "opaque-token", 12), 0);
    ck_assert_int_eq(dpop_jwks_kid_unknown(set, "a.b.c", 5), 0);
    json_decref(claims);
    free(pubtxt);
    dpop_jwks_free(set);
    EVP_PKEY_free(key);
    json_decref(pub);
    json_decref(priv);
}
END_TEST

static Suite *tokensrc_suite(void)
{
    Suite *s = suite_create("core_tokensrc");
    TCase *tc = tcase_create("metadata");
    tcase_add_loop_test(tc, test_meta, 0, N(meta_cases));
    tcase_add_test(tc, test_meta_fields);
    tcase_add_test(tc, test_meta_oversize);
    tcase_add_loop_test(tc, test_refresh, 0, N(refresh_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("introspection");
    tcase_add_loop_test(tc, test_introspect, 0, N(intro_cases));
    tcase_add_test(tc, test_introspect_fields);
    tcase_add_test(tc, test_introspect_oversize);
    tcase_add_test(tc, test_form);
    suite_add_tcase(s, tc);
    tc = tcase_create("assertion");
    tcase_add_test(tc, test_client_assertion);
    suite_add_tcase(s, tc);
    tc = tcase_create("kid");
    tcase_add_test(tc, test_kid_unknown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tokensrc_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
