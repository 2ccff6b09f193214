/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proof_token.c: JWT access-token validation (dpop_token_verify):
 * a table of {claims/header mutation, expected outcome} covering every
 * failure (signature, typ, iss, aud, exp, nbf with inclusive skew bounds,
 * claim types, cnf and cnf.jkt types), unbound tokens, the extracted
 * identity, and dpop_token_create.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_jwks.h"
#include "dpop_jws.h"
#include "dpop_token.h"
#include "test_core_util.h"

#define NOW 1700000000
#define ISS "https://as.example.com"
#define AUD "https://api.example.com"
#define JKT "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

static EVP_PKEY *g_as;     /* the authorization server's ES256 key, kid as-1 */
static EVP_PKEY *g_as_rsa; /* a second AS key, RS256, kid as-2 */
static EVP_PKEY *g_evil;   /* a key not in the set */
static dpop_jwks_t *g_jwks;

static int make_key(dpop_alg_t alg, EVP_PKEY **key, json_t **pub)
{
    json_t *priv = NULL;
    char err[128];
    int rc = DPOP_ERR;
    if (dpop_jwk_generate(alg, &priv) == DPOP_OK &&
        dpop_jwk_import_private(priv, key, pub, err, sizeof(err)) == DPOP_OK)
        rc = DPOP_OK;
    json_decref(priv);
    return rc;
}

static void setup(void)
{
    json_t *p1 = NULL, *p2 = NULL, *p3 = NULL, *set;
    char *s, err[256];
    if (make_key(DPOP_ALG_ES256, &g_as, &p1) != DPOP_OK ||
        make_key(DPOP_ALG_RS256, &g_as_rsa, &p2) != DPOP_OK ||
        make_key(DPOP_ALG_ES256, &g_evil, &p3) != DPOP_OK) {
        fprintf(stderr, "cannot create keys\n");
        exit(EXIT_FAILURE);
    }
    json_object_set_new(p1, "kid", json_string("as-1"));
    json_object_set_new(p1, "use", json_string("sig"));
    json_object_set_new(p2, "kid", json_string("as-2"));
    json_object_set_new(p2, "alg", json_string("RS256"));
    set = json_pack("{s:[O,O]}", "keys", p1, p2);
    s = json_dumps(set, JSON_COMPACT);
    if (!s || dpop_jwks_parse(s, strlen(s), &g_jwks, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "cannot load JWKS: %s\n", err);
        exit(EXIT_FAILURE);
    }
    free(s);
    json_decref(set);
    json_decref(p1);
    json_decref(p2);
    json_decref(p3);
}

static void teardown(void)
{
    dpop_jwks_free(g_jwks);
    EVP_PKEY_free(g_as);
    EVP_PKEY_free(g_as_rsa);
    EVP_PKEY_free(g_evil);
}

typedef enum { K_AS = 0, K_AS_RSA, K_EVIL } key_t_;

typedef struct {
    const char *name;
    const char *hdr_patch; /* applied to {"typ":"at+jwt","alg":..,"kid":..} */
    const char *claims_patch;
    key_t_ key;
    dpop_alg_mask_t algs;
    const char *issuer;   /* NULL: ISS; "-": not checked */
    const char *audience; /* NULL: AUD; "-": not checked */
    int64_t skew;         /* default 5 */
    int want_ok;
    const char *want_jkt; /* for valid cases: NULL = unbound */
    const char *detail;   /* fragment expected in detail */
    int want_cnf;         /* valid cases: cnf names a method other than jkt */
} tcase_t;

static const tcase_t tcases[] = {
    {"valid", NULL, NULL, K_AS, .want_ok = 1, .want_jkt = JKT},
    {"valid RS256 key", NULL, NULL, K_AS_RSA, .want_ok = 1, .want_jkt = JKT},
    {"valid without kid (every key tried)", "{\"kid\":null}", NULL, K_AS, .want_ok = 1,
     .want_jkt = JKT},
    {"valid typ JWT", "{\"typ\":\"JWT\"}", NULL, K_AS, .want_ok = 1, .want_jkt = JKT},
    {"valid typ application/at+jwt", "{\"typ\":\"application/at+jwt\"}", NULL, K_AS, .want_ok = 1,
     .want_jkt = JKT},
    {"valid typ upper case", "{\"typ\":\"AT+JWT\"}", NULL, K_AS, .want_ok = 1, .want_jkt = JKT},
    {"valid without typ", "{\"typ\":null}", NULL, K_AS, .want_ok = 1, .want_jkt = JKT},
    {"valid aud array", NULL, "{\"aud\":[\"other\",\"" AUD "\"]}", K_AS, .want_ok = 1,
     .want_jkt = JKT},
    {"valid, iss and aud not configured", NULL, "{\"iss\":null,\"aud\":null}", K_AS, .issuer = "-",
     .audience = "-", .want_ok = 1, .want_jkt = JKT},
    {"valid unbound (no cnf)", NULL, "{\"cnf\":null}", K_AS, .want_ok = 1, .want_jkt = NULL},
    /* issue 15: no jkt, yet sender-constrained (cnf_bound): never Bearer */
    {"valid unbound (cnf without jkt)", NULL, "{\"cnf\":{\"x5t#S256\":\"abc\"}}", K_AS,
     .want_ok = 1, .want_jkt = NULL, .want_cnf = 1},
    {"valid cnf kid (RFC 7800)", NULL, "{\"cnf\":{\"kid\":\"k1\"}}", K_AS, .want_ok = 1,
     .want_jkt = NULL, .want_cnf = 1},
    {"valid cnf unknown method", NULL, "{\"cnf\":{\"future\":{}}}", K_AS, .want_ok = 1,
     .want_jkt = NULL, .want_cnf = 1},
    {"valid cnf empty (no method)", NULL, "{\"cnf\":{}}", K_AS, .want_ok = 1, .want_jkt = NULL,
     .want_cnf = 0},
    {"valid no nbf", NULL, "{\"nbf\":null}", K_AS, .want_ok = 1, .want_jkt = JKT},
    {"valid exp just inside the skew", NULL, "{\"exp\":1699999996}", K_AS, .want_ok = 1,
     .want_jkt = JKT},
    {"valid nbf at the skew bound", NULL, "{\"nbf\":1700000005}", K_AS, .want_ok = 1,
     .want_jkt = JKT},
    {"valid real iat", NULL, "{\"iat\":1699999000.5}", K_AS, .want_ok = 1, .want_jkt = JKT},
    {"valid zero skew, exp in one second", NULL, "{\"exp\":1700000001}", K_AS, .skew = -1,
     .want_ok = 1, .want_jkt = JKT},
    /* signature */
    {"signed by a foreign key", NULL, NULL, K_EVIL, .detail = "signature"},
    {"signed by a foreign key without kid", "{\"kid\":null}", NULL, K_EVIL, .detail = "signature"},
    {"unknown kid", "{\"kid\":\"as-9\"}", NULL, K_AS, .detail = "signature"},
    {"kid of another key", "{\"kid\":\"as-2\"}", NULL, K_AS, .detail = "signature"},
    {"alg not allowed", NULL, NULL, K_AS, .algs = DPOP_ALG_BIT(DPOP_ALG_RS256),
     .detail = "signature"},
    {"alg none", "{\"alg\":\"none\"}", NULL, K_AS, .detail = "signature"},
    {"alg HS256", "{\"alg\":\"HS256\"}", NULL, K_AS, .detail = "signature"},
    /* typ */
    {"typ dpop+jwt (a proof is no token)", "{\"typ\":\"dpop+jwt\"}", NULL, K_AS, .detail = "typ"},
    {"typ number", "{\"typ\":7}", NULL, K_AS, .detail = "typ"},
    {"crit", "{\"crit\":[\"x\"],\"x\":1}", NULL, K_AS, .detail = "crit"},
    /* iss */
    {"iss other", NULL, "{\"iss\":\"https://evil.example\"}", K_AS, .detail = "iss"},
    {"iss missing", NULL, "{\"iss\":null}", K_AS, .detail = "iss"},
    {"iss a number", NULL, "{\"iss\":1}", K_AS, .detail = "iss"},
    {"iss case differs", NULL, "{\"iss\":\"https://AS.example.com\"}", K_AS, .detail = "iss"},
    /* aud */
    {"aud other", NULL, "{\"aud\":\"https://other.example\"}", K_AS, .detail = "aud"},
    {"aud array without us", NULL, "{\"aud\":[\"a\",\"b\"]}", K_AS, .detail = "aud"},
    {"aud empty array", NULL, "{\"aud\":[]}", K_AS, .detail = "aud"},
    {"aud missing", NULL, "{\"aud\":null}", K_AS, .detail = "aud"},
    {"aud a number", NULL, "{\"aud\":5}", K_AS, .detail = "aud"},
    {"aud an object", NULL, "{\"aud\":{\"x\":1}}", K_AS, .audience = "-", .detail = "aud"},
    /* exp */
    {"exp missing", NULL, "{\"exp\":null}", K_AS, .detail = "exp"},
    {"exp a string", NULL, "{\"exp\":\"1700000300\"}", K_AS, .detail = "exp"},
    {"exp fractional", NULL, "{\"exp\":1700000300.5}", K_AS, .detail = "exp"},
    {"exp at the skew bound", NULL, "{\"exp\":1699999995}", K_AS, .detail = "expired"},
    {"exp long ago", NULL, "{\"exp\":1000}", K_AS, .detail = "expired"},
    /* extreme NumericDates: the detail's arithmetic must not overflow */
    {"exp at INT64_MIN", NULL, "{\"exp\":-9223372036854775808}", K_AS, .detail = "expired"},
    {"exp at INT64_MAX", NULL, "{\"exp\":9223372036854775807}", K_AS, .want_ok = 1,
     .want_jkt = JKT},
    {"nbf at INT64_MAX", NULL, "{\"nbf\":9223372036854775807}", K_AS, .detail = "not valid"},
    {"exp now with zero skew", NULL, "{\"exp\":1700000000}", K_AS, .skew = -1, .detail = "expired"},
    /* nbf */
    {"nbf past the skew bound", NULL, "{\"nbf\":1700000006}", K_AS, .detail = "not valid"},
    {"nbf a string", NULL, "{\"nbf\":\"0\"}", K_AS, .detail = "nbf"},
    {"iat a string", NULL, "{\"iat\":\"now\"}", K_AS, .detail = "iat"},
    /* identity claims */
    {"sub a number", NULL, "{\"sub\":42}", K_AS, .detail = "sub"},
    {"client_id empty", NULL, "{\"client_id\":\"\"}", K_AS, .detail = "client_id"},
    {"scope an array", NULL, "{\"scope\":[\"a\"]}", K_AS, .detail = "scope"},
    /* cnf */
    {"cnf a string", NULL, "{\"cnf\":\"" JKT "\"}", K_AS, .detail = "cnf"},
    {"cnf an array", NULL, "{\"cnf\":[]}", K_AS, .detail = "cnf"},
    {"cnf.jkt a number", NULL, "{\"cnf\":{\"jkt\":1}}", K_AS, .detail = "cnf.jkt"},
    {"cnf.jkt too short", NULL,
     "{\"cnf\":{\"jkt\":\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4\"}}", K_AS,
     .detail = "cnf.jkt"},
    {"cnf.jkt too long", NULL,
     "{\"cnf\":{\"jkt\":\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4IA\"}}", K_AS,
     .detail = "cnf.jkt"},
    {"cnf.jkt not base64url", NULL,
     "{\"cnf\":{\"jkt\":\"0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"}}", K_AS,
     .detail = "cnf.jkt"},
    {"cnf.jkt non-canonical", NULL,
     "{\"cnf\":{\"jkt\":\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4J\"}}", K_AS,
     .detail = "cnf.jkt"},
    {"cnf.jkt empty", NULL, "{\"cnf\":{\"jkt\":\"\"}}", K_AS, .detail = "cnf.jkt"},
};

static json_t *base_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:{s:s}}", "iss", ISS, "sub",
                     "alice", "aud", AUD, "client_id", "billing-agent", "scope", "read write",
                     "exp", (json_int_t)(NOW + 300), "nbf", (json_int_t)(NOW - 10), "iat",
                     (json_int_t)(NOW - 10), "cnf", "jkt", JKT);
}

static char *make_token(const tcase_t *c)
{
    EVP_PKEY *key = c->key == K_AS ? g_as : c->key == K_AS_RSA ? g_as_rsa : g_evil;
    dpop_alg_t alg = c->key == K_AS_RSA ? DPOP_ALG_RS256 : DPOP_ALG_ES256;
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "typ", "at+jwt", "alg", dpop_alg_name(alg), "kid",
                            c->key == K_AS_RSA ? "as-2" : "as-1");
    json_t *cl = base_claims();
    char *out = NULL;
    apply_patch(hdr, c->hdr_patch);
    apply_patch(cl, c->claims_patch);
    ck_assert_int_eq(dpop_jws_sign(hdr, cl, alg, key, &out), DPOP_OK);
    json_decref(hdr);
    json_decref(cl);
    return out;
}

static void params_for(const tcase_t *c, dpop_token_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->jwks = g_jwks;
    p->issuer = c->issuer ? (strcmp(c->issuer, "-") == 0 ? NULL : c->issuer) : ISS;
    p->audience = c->audience ? (strcmp(c->audience, "-") == 0 ? NULL : c->audience) : AUD;
    p->now = NOW;
    p->skew = c->skew < 0 ? 0 : (c->skew ? c->skew : 5);
    p->algs = c->algs;
}

START_TEST(test_token_table)
{
    const tcase_t *c = &tcases[_i];
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char *tok = make_token(c);
    int rc;

    params_for(c, &p);
    rc = dpop_token_verify(tok, strlen(tok), &p, &r, &f);
    if (c->want_ok) {
        ck_assert_msg(rc == DPOP_OK, "%s: %s", c->name, f.detail);
        if (c->want_jkt)
            ck_assert_str_eq(r.jkt, c->want_jkt);
        else
            ck_assert_ptr_null(r.jkt);
        ck_assert_msg(r.cnf_bound == (c->want_jkt != NULL || c->want_cnf), "%s: cnf_bound %d",
                      c->name, r.cnf_bound);
        ck_assert_int_gt(r.exp, NOW - 10);
        ck_assert_ptr_nonnull(r.kid);
        ck_assert_str_eq(r.kid, c->key == K_AS_RSA ? "as-2" : "as-1");
    }
    else {
        ck_assert_msg(rc == DPOP_ERR, "%s: accepted", c->name);
        ck_assert_int_eq(f.code, DPOP_REASON_TOKEN_INVALID);
        ck_assert_str_eq(f.reason, "token_invalid");
        ck_assert_str_eq(f.error, "invalid_token");
        ck_assert_msg(strstr(f.detail, c->detail) != NULL, "%s: detail '%s' lacks '%s'", c->name,
                      f.detail, c->detail);
    }
    /* the detail never carries token bytes */
    ck_assert_ptr_null(strstr(f.detail, "eyJ"));
    dpop_token_result_clear(&r);
    free(tok);
}
END_TEST

/* dpop_token_check_claims (exported for introspection results) is the
 * claim half of dpop_token_verify: on every table case whose header and
 * key are good, the claims alone get the same verdict, detail and result. */
START_TEST(test_token_check_claims_table)
{
    const tcase_t *c = &tcases[_i];
    dpop_token_params_t p;
    dpop_token_result_t r1, r2;
    dpop_failure_t f1, f2;
    json_t *cl;
    char *tok;
    int rc1, rc2;

    if (c->hdr_patch || c->key != K_AS || c->algs)
        return; /* a header or signature case: not a claim check */
    tok = make_token(c);
    cl = base_claims();
    apply_patch(cl, c->claims_patch);
    params_for(c, &p);
    rc1 = dpop_token_verify(tok, strlen(tok), &p, &r1, &f1);
    dpop_token_result_init(&r2);
    dpop_failure_clear(&f2);
    rc2 = dpop_token_check_claims(cl, &p, &r2, &f2);
    ck_assert_msg(rc1 == rc2, "%s: verify %d, check_claims %d", c->name, rc1, rc2);
    ck_assert_int_eq(f1.code, f2.code);
    ck_assert_str_eq(f1.detail, f2.detail);
    if (rc2 == DPOP_OK) {
        ck_assert_int_eq(r1.exp, r2.exp);
        ck_assert_int_eq(r1.iat, r2.iat);
        ck_assert_str_eq(r2.sub, r1.sub);
        ck_assert_str_eq(r2.client_id, r1.client_id);
        ck_assert(!r1.jkt == !r2.jkt && (!r1.jkt || strcmp(r1.jkt, r2.jkt) == 0));
        ck_assert_ptr_null(r2.kid); /* no signature was checked */
    }
    dpop_token_result_clear(&r1);
    dpop_token_result_clear(&r2);
    json_decref(cl);
    free(tok);
}
END_TEST

START_TEST(test_token_check_claims_args)
{
    static const tcase_t c = {"valid", NULL, NULL, K_AS, .want_ok = 1};
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    json_t *arr = json_array();
    params_for(&c, &p);
    dpop_token_result_init(&r);
    ck_assert_int_eq(dpop_token_check_claims(NULL, &p, &r, &f), DPOP_ERR);
    ck_assert_int_eq(f.code, DPOP_REASON_TOKEN_INVALID);
    ck_assert_int_eq(dpop_token_check_claims(arr, &p, &r, &f), DPOP_ERR);
    ck_assert_int_eq(f.code, DPOP_REASON_TOKEN_INVALID);
    json_decref(arr);
}
END_TEST

START_TEST(test_token_result)
{
    static const tcase_t c = {"valid", NULL, NULL, K_AS, .want_ok = 1};
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char *tok = make_token(&c);
    params_for(&c, &p);
    ck_assert_int_eq(dpop_token_verify(tok, strlen(tok), &p, &r, &f), DPOP_OK);
    ck_assert_str_eq(r.sub, "alice");
    ck_assert_str_eq(r.client_id, "billing-agent");
    ck_assert_str_eq(r.iss, ISS);
    ck_assert_str_eq(r.scope, "read write");
    ck_assert_str_eq(r.jkt, JKT);
    ck_assert_str_eq(r.kid, "as-1");
    ck_assert_int_eq(r.exp, NOW + 300);
    ck_assert_int_eq(r.iat, NOW - 10);
    ck_assert_int_eq(r.alg, DPOP_ALG_ES256);
    dpop_token_result_clear(&r);
    ck_assert_ptr_null(r.sub);
    /* r and f may be NULL */
    ck_assert_int_eq(dpop_token_verify(tok, strlen(tok), &p, NULL, NULL), DPOP_OK);
    free(tok);
}
END_TEST

START_TEST(test_token_azp_fallback)
{
    static const tcase_t c = {"azp", NULL, "{\"client_id\":null,\"azp\":\"spa-client\"}", K_AS,
                              .want_ok = 1};
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char *tok = make_token(&c);
    params_for(&c, &p);
    ck_assert_int_eq(dpop_token_verify(tok, strlen(tok), &p, &r, &f), DPOP_OK);
    ck_assert_str_eq(r.client_id, "spa-client");
    dpop_token_result_clear(&r);
    free(tok);
}
END_TEST

START_TEST(test_token_structure)
{
    static const tcase_t c = {"valid", NULL, NULL, K_AS, .want_ok = 1};
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char *tok = make_token(&c), *bad = NULL;
    params_for(&c, &p);

    /* no token */
    ck_assert_int_eq(dpop_token_verify("", 0, &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "missing_token");
    dpop_token_result_clear(&r);
    ck_assert_int_eq(dpop_token_verify(NULL, 0, &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "missing_token");
    dpop_token_result_clear(&r);
    /* an opaque (non-JWT) token */
    ck_assert_int_eq(
        dpop_token_verify("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", 43, &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "token_invalid");
    ck_assert_ptr_null(strstr(f.detail, "Kz~8"));
    dpop_token_result_clear(&r);
    /* too large */
    p.max_size = 50;
    ck_assert_int_eq(dpop_token_verify(tok, strlen(tok), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "token_invalid");
    ck_assert_ptr_nonnull(strstr(f.detail, "too_large"));
    dpop_token_result_clear(&r);
    p.max_size = 0;
    /* tampered payload */
    ck_assert_int_ne(asprintf(&bad, "%s", tok), -1);
    {
        char *d1 = strchr(bad, '.');
        d1[5] = d1[5] == 'A' ? 'B' : 'A';
    }
    ck_assert_int_eq(dpop_token_verify(bad, strlen(bad), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "token_invalid");
    dpop_token_result_clear(&r);
    free(bad);
    /* no key set */
    p.jwks = NULL;
    ck_assert_int_eq(dpop_token_verify(tok, strlen(tok), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "token_invalid");
    dpop_token_result_clear(&r);
    ck_assert_int_eq(dpop_token_verify(tok, strlen(tok), NULL, &r, &f), DPOP_ERR);
    dpop_token_result_clear(&r);
    free(tok);
}
END_TEST

START_TEST(test_token_create)
{
    json_t *cl = base_claims();
    char *out = NULL;
    dpop_jws_t jws;
    dpop_failure_t f;
    const char *s;
    ck_assert_int_eq(dpop_token_create(g_as, DPOP_ALG_ES256, "as-1", cl, &out), DPOP_OK);
    ck_assert_int_eq(dpop_jws_parse(out, strlen(out), 65536, &jws, &f), DPOP_OK);
    ck_assert_int_eq(dpop_json_get_string(jws.header, "typ", &s), 1);
    ck_assert_str_eq(s, "at+jwt");
    ck_assert_int_eq(dpop_json_get_string(jws.header, "kid", &s), 1);
    ck_assert_str_eq(s, "as-1");
    dpop_jws_clear(&jws);
    free(out);
    out = NULL;
    /* without kid */
    ck_assert_int_eq(dpop_token_create(g_as, DPOP_ALG_ES256, NULL, cl, &out), DPOP_OK);
    free(out);
    out = NULL;
    ck_assert_int_eq(dpop_token_create(NULL, DPOP_ALG_ES256, NULL, cl, &out), DPOP_ERR);
    ck_assert_int_eq(dpop_token_create(g_as, DPOP_ALG_INVALID, NULL, cl, &out), DPOP_ERR);
    ck_assert_int_eq(dpop_token_create(g_as, DPOP_ALG_ES256, NULL, NULL, &out), DPOP_ERR);
    ck_assert_int_eq(dpop_token_create(g_as, DPOP_ALG_ES256, NULL, cl, NULL), DPOP_ERR);
    ck_assert_ptr_null(out);
    json_decref(cl);
}
END_TEST

static Suite *token_suite(void)
{
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, test_token_table, 0, (int)(sizeof(tcases) / sizeof(tcases[0])));
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("misc");
    tcase_add_loop_test(tc, test_token_check_claims_table, 0,
                        (int)(sizeof(tcases) / sizeof(tcases[0])));
    tcase_add_test(tc, test_token_check_claims_args);
    tcase_add_test(tc, test_token_result);
    tcase_add_test(tc, test_token_azp_fallback);
    tcase_add_test(tc, test_token_structure);
    tcase_add_test(tc, test_token_create);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;
    setup();
    sr = srunner_create(token_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    teardown();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
