/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_jose_wycheproof.c: Project Wycheproof signature vectors run through
 * dpop_sig_verify, the code every proof and token signature goes through.
 *
 * Files (DPOP_TESTDATA_DIR/wycheproof/): ecdsa_*_p1363_test.json (JOSE's
 * raw R||S form), ed25519_test.json, rsa_pss_*_test.json (only groups whose
 * parameters are JOSE's PS256/384/512: MGF1 with the message hash, salt =
 * hash length) and rsa_signature_*_test.json (RS256/384/512).
 *
 * Every vector also goes through dpop_jwk_verify (the cached-context
 * path) and must give the same answer.
 *
 * Keys are imported through dpop_jwk_import_public from the group's JWK
 * (or from a JWK built from the raw point when the file has none), so the
 * strict importer is exercised on Wycheproof's edge-case keys too.  RSA
 * keys under 2048 bits must be refused by the importer; their vectors are
 * then run against an EVP_PKEY built directly from the modulus/exponent.
 *
 * Expectations: "valid" -> 1, "invalid" -> 0, "acceptable" -> either; -1
 * (internal error) is never acceptable.  When the folder is absent every
 * test prints a note and passes (the vectors are not part of the project).
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "dpop_alg.h"
#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_sig.h"

#define WYCHEPROOF_DIR DPOP_TESTDATA_DIR "/wycheproof"

static long g_total; /* vectors run by all tests (CK_NOFORK: one process) */

typedef struct {
    long ran, valid, invalid, acceptable, groups, groups_skipped, keys_jwk, keys_direct;
} counts_t;

static unsigned char *hex_decode(const char *h, size_t *n)
{
    size_t len = strlen(h), i;
    unsigned char *out = malloc(len / 2 + 1);
    ck_assert_msg(len % 2 == 0, "odd hex length");
    for (i = 0; i < len / 2; i++) {
        unsigned v;
        ck_assert_msg(sscanf(h + 2 * i, "%2x", &v) == 1, "bad hex");
        out[i] = (unsigned char)v;
    }
    *n = len / 2;
    return out;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static size_t hash_len(const char *sha)
{
    if (strcmp(sha, "SHA-256") == 0)
        return 32;
    if (strcmp(sha, "SHA-384") == 0)
        return 48;
    if (strcmp(sha, "SHA-512") == 0)
        return 64;
    return 0;
}

/* The JOSE alg for a test group, or DPOP_ALG_INVALID if its parameters are
 * not a JOSE algorithm (then the group is skipped and counted). */
static dpop_alg_t group_alg(const char *algorithm, const json_t *g)
{
    const char *sha = jstr(g, "sha");
    size_t hl = hash_len(sha);
    int base = hl == 32 ? 0 : hl == 48 ? 1 : hl == 64 ? 2 : -1;
    if (strcmp(algorithm, "EDDSA") == 0) {
        const json_t *pk = json_object_get(g, "publicKey");
        return strcmp(jstr(pk, "curve"), "edwards25519") == 0 ? DPOP_ALG_EDDSA : DPOP_ALG_INVALID;
    }
    if (base < 0)
        return DPOP_ALG_INVALID;
    if (strcmp(algorithm, "ECDSA") == 0) {
        static const char *const curves[] = {"secp256r1", "secp384r1", "secp521r1"};
        const json_t *pk = json_object_get(g, "publicKey");
        /* RFC 7518 §3.4: ES256 is P-256 with SHA-256, and so on. */
        if (strcmp(jstr(pk, "curve"), curves[base]) != 0)
            return DPOP_ALG_INVALID;
        return (dpop_alg_t)(DPOP_ALG_ES256 + base);
    }
    if (strcmp(algorithm, "RSASSA-PSS") == 0) {
        /* RFC 7518 §3.5: MGF1 with the same hash, salt = hash length. */
        if (strcmp(jstr(g, "mgf"), "MGF1") != 0 || strcmp(jstr(g, "mgfSha"), sha) != 0 ||
            json_integer_value(json_object_get(g, "sLen")) != (json_int_t)hl)
            return DPOP_ALG_INVALID;
        return (dpop_alg_t)(DPOP_ALG_PS256 + base);
    }
    if (strcmp(algorithm, "RSASSA-PKCS1-v1_5") == 0)
        return (dpop_alg_t)(DPOP_ALG_RS256 + base);
    return DPOP_ALG_INVALID;
}

/* A JWK for the group's key: the file's own JWK, else one built from the
 * raw public key. */
static json_t *group_jwk(dpop_alg_t alg, const json_t *g)
{
    json_t *j = json_object_get(g, "publicKeyJwk");
    const json_t *pk = json_object_get(g, "publicKey");
    unsigned char *raw;
    size_t n;
    char *x, *y;
    if (!j)
        j = json_object_get(g, "keyJwk");
    if (j) {
        /* Used as given: "kid":"none" is harmless and an "alg" member
         * must agree with the group (checked by the caller). */
        return json_incref(j);
    }
    if (alg == DPOP_ALG_EDDSA) {
        raw = hex_decode(jstr(pk, "pk"), &n);
        x = dpop_b64url_encode(raw, n);
        j = json_pack("{s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "x", x);
        free(x);
        free(raw);
        return j;
    }
    if (alg >= DPOP_ALG_ES256 && alg <= DPOP_ALG_ES512) {
        static const char *const crv[] = {"P-256", "P-384", "P-521"};
        size_t cl;
        raw = hex_decode(jstr(pk, "uncompressed"), &n);
        ck_assert_msg(n > 1 && raw[0] == 4 && n % 2 == 1, "unexpected EC point form");
        cl = (n - 1) / 2;
        x = dpop_b64url_encode(raw + 1, cl);
        y = dpop_b64url_encode(raw + 1 + cl, cl);
        j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", crv[alg - DPOP_ALG_ES256], "x", x,
                      "y", y);
        free(x);
        free(y);
        free(raw);
        return j;
    }
    return NULL;
}

/* Test-only: an RSA EVP_PKEY straight from hex modulus/exponent, for keys
 * the strict importer (correctly) refuses. */
static EVP_PKEY *rsa_direct(const json_t *g)
{
    const json_t *pk = json_object_get(g, "publicKey");
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *key = NULL;
    ck_assert(BN_hex2bn(&n, jstr(pk, "modulus")) > 0);
    ck_assert(BN_hex2bn(&e, jstr(pk, "publicExponent")) > 0);
    ck_assert(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n));
    ck_assert(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e));
    ck_assert((params = OSSL_PARAM_BLD_to_param(bld)) != NULL);
    ck_assert(EVP_PKEY_fromdata_init(ctx) == 1);
    ck_assert(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(n);
    BN_free(e);
    return key;
}

static void run_group(const char *file, const char *algorithm, const json_t *g, counts_t *c)
{
    dpop_alg_t alg = group_alg(algorithm, g);
    json_t *jwk, *t;
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    EVP_PKEY *direct = NULL, *key;
    size_t i;

    if (alg == DPOP_ALG_INVALID) {
        c->groups_skipped++;
        return;
    }
    c->groups++;
    jwk = group_jwk(alg, g);
    dpop_failure_clear(&f);
    if (jwk && dpop_jwk_import_public(jwk, &k, &f) == DPOP_OK) {
        key = dpop_jwk_pkey(k);
        c->keys_jwk++;
        /* the file's JWK alg (if any) must be the one we derived */
        if (json_object_get(jwk, "alg"))
            ck_assert_msg(dpop_jwk_fits_alg(k, alg), "%s: key alg member contradicts group", file);
    }
    else {
        long bits = (long)json_integer_value(json_object_get(g, "keySize"));
        /* Only weak RSA keys may be refused; everything else in Wycheproof
         * is a valid public key. */
        ck_assert_msg(alg >= DPOP_ALG_PS256 && alg <= DPOP_ALG_RS512 && bits < DPOP_RSA_MIN_BITS,
                      "%s: key refused by dpop_jwk: %s", file, f.detail);
        ck_assert_int_eq(f.code, DPOP_REASON_BAD_JWK);
        key = direct = rsa_direct(g);
        c->keys_direct++;
    }
    json_array_foreach(json_object_get(g, "tests"), i, t)
    {
        size_t ml, sl;
        unsigned char *m = hex_decode(jstr(t, "msg"), &ml), *s = hex_decode(jstr(t, "sig"), &sl);
        const char *result = jstr(t, "result");
        int r = dpop_sig_verify(alg, key, m, ml, s, sl);
        long id = (long)json_integer_value(json_object_get(t, "tcId"));
        ck_assert_msg(r != -1, "%s tcId %ld: internal error", file, id);
        /* the per-key template path must agree exactly */
        if (k)
            ck_assert_msg(dpop_jwk_verify(k, alg, m, ml, s, sl) == r,
                          "%s tcId %ld: dpop_jwk_verify disagrees", file, id);
        if (strcmp(result, "valid") == 0) {
            ck_assert_msg(r == 1, "%s tcId %ld (%s): valid vector rejected", file, id,
                          jstr(t, "comment"));
            c->valid++;
        }
        else if (strcmp(result, "invalid") == 0) {
            ck_assert_msg(r == 0, "%s tcId %ld (%s): invalid vector accepted", file, id,
                          jstr(t, "comment"));
            c->invalid++;
        }
        else {
            ck_assert_str_eq(result, "acceptable");
            c->acceptable++;
        }
        c->ran++;
        free(m);
        free(s);
    }
    dpop_jwk_free(k);
    EVP_PKEY_free(direct);
    json_decref(jwk);
}

/* Run every file in the folder whose name starts with prefix and ends with
 * suffix; returns the number of files run (-1 when the folder is absent). */
static int run_files(const char *prefix, const char *suffix)
{
    /* DPOP_WYCHEPROOF_DIR overrides the configured folder (e.g. to check
     * the skip path). */
    const char *dir =
        getenv("DPOP_WYCHEPROOF_DIR") ? getenv("DPOP_WYCHEPROOF_DIR") : WYCHEPROOF_DIR;
    struct dirent **list = NULL, *de;
    int files = 0, n, k;
    if ((n = scandir(dir, &list, NULL, alphasort)) < 0) {
        printf("wycheproof: %s not found; %s*%s skipped\n", dir, prefix, suffix);
        return -1;
    }
    for (k = 0; k < n; k++) {
        size_t nl, pl = strlen(prefix), sl = strlen(suffix);
        char path[4096];
        json_error_t je;
        json_t *root, *g;
        counts_t c;
        size_t i;
        de = list[k];
        nl = strlen(de->d_name);
        if (nl < pl + sl || strncmp(de->d_name, prefix, pl) != 0 ||
            strcmp(de->d_name + nl - sl, suffix) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        root = json_load_file(path, 0, &je);
        ck_assert_msg(root != NULL, "%s: %s", path, je.text);
        memset(&c, 0, sizeof(c));
        json_array_foreach(json_object_get(root, "testGroups"), i, g)
            run_group(de->d_name, jstr(root, "algorithm"), g, &c);
        printf("wycheproof %s: %ld vectors (%ld valid, %ld invalid, %ld acceptable); "
               "%ld groups (%ld skipped: not JOSE parameters); keys %ld via dpop_jwk, %ld direct\n",
               de->d_name, c.ran, c.valid, c.invalid, c.acceptable, c.groups, c.groups_skipped,
               c.keys_jwk, c.keys_direct);
        fflush(stdout);
        ck_assert_msg(c.ran > 0, "%s: no vector ran", de->d_name);
        g_total += c.ran;
        json_decref(root);
        files++;
    }
    for (k = 0; k < n; k++)
        free(list[k]);
    free(list);
    return files;
}

START_TEST(test_wycheproof_ecdsa)
{
    int n = run_files("ecdsa_", "_p1363_test.json");
    ck_assert(n != 0);
}
END_TEST

START_TEST(test_wycheproof_ed25519)
{
    int n = run_files("ed25519_", "test.json");
    ck_assert(n != 0);
}
END_TEST

START_TEST(test_wycheproof_rsa_pss)
{
    int n = run_files("rsa_pss_", "_test.json");
    ck_assert(n != 0);
}
END_TEST

START_TEST(test_wycheproof_rsa_pkcs1)
{
    int n = run_files("rsa_signature_", "_test.json");
    ck_assert(n != 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jose_wycheproof");
    TCase *tc;
    SRunner *sr;
    int failed;

    tc = tcase_create("ecdsa_p1363");
    tcase_add_test(tc, test_wycheproof_ecdsa);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    tc = tcase_create("ed25519");
    tcase_add_test(tc, test_wycheproof_ed25519);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    tc = tcase_create("rsa_pss");
    tcase_add_test(tc, test_wycheproof_rsa_pss);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    tc = tcase_create("rsa_pkcs1");
    tcase_add_test(tc, test_wycheproof_rsa_pkcs1);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    /* One process, so the grand total below adds up every test's vectors. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("wycheproof: %ld vectors ran in total\n", g_total);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
