/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_jose.c: Check tests of the JOSE layer of the core: strict base64url,
 * strict JSON, algorithm names, JWK import (every error class), RFC 7638
 * thumbprints, EVP signatures (every alg, DER rejection, high-S), compact
 * JWS parsing and creation, JWK Set selection and the key cache.
 *
 * One TCase per concern, table-driven where the cases are data.  Keys are
 * generated once in main() before the runner forks, so each test starts
 * from the same keys without paying RSA key generation again.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "dpop_alg.h"
#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_jwks.h"
#include "dpop_jws.h"
#include "dpop_hash.h"
#include "dpop_keycache.h"
#include "dpop_result.h"
#include "dpop_sig.h"

/* ---------- shared fixtures ---------- */

/* One key per alg: private EVP_PKEY and its public JWK. */
static EVP_PKEY *g_priv[DPOP_ALG__COUNT];
static json_t *g_pub[DPOP_ALG__COUNT];

static void make_keys(void)
{
    int a;
    for (a = 1; a < DPOP_ALG__COUNT; a++) {
        json_t *priv = NULL;
        char err[256];
        if (dpop_jwk_generate((dpop_alg_t)a, &priv) != DPOP_OK ||
            dpop_jwk_import_private(priv, &g_priv[a], &g_pub[a], err, sizeof(err)) != DPOP_OK) {
            fprintf(stderr, "cannot make a %s key: %s\n", dpop_alg_name((dpop_alg_t)a), err);
            exit(2);
        }
        json_decref(priv);
    }
}

static void free_keys(void)
{
    int a;
    for (a = 1; a < DPOP_ALG__COUNT; a++) {
        EVP_PKEY_free(g_priv[a]);
        json_decref(g_pub[a]);
    }
}

static json_t *J(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    ck_assert_msg(v != NULL, "test JSON does not parse: %s (%s)", e.text, s);
    return v;
}

static char *b64s(const char *s)
{
    return dpop_b64url_encode((const unsigned char *)s, strlen(s));
}

/* "b64(h).b64(p).sig" from raw header/payload text; caller frees. */
static char *mk_compact(const char *h, const char *p, const char *sig)
{
    char *hb = h ? b64s(h) : strdup(""), *pb = p ? b64s(p) : strdup("");
    size_t n = strlen(hb) + strlen(pb) + strlen(sig) + 3;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s.%s", hb, pb, sig);
    free(hb);
    free(pb);
    return out;
}

/* RFC 9449 §4.1 example proof key (P-256) and its §6.1 thumbprint. */
#define R9449_X "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"
#define R9449_Y "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
#define R9449_JKT "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
/* RFC 7638 §3.1 example RSA key (2048 bits) and thumbprint. */
#define R7638_N                                                                                    \
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"      \
    "BJECPe"                                                                                       \
    "bWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY3" \
    "68QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM" \
    "4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define R7638_JKT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
/* RFC 8037 §A.2 Ed25519 public key. */
#define R8037_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define R8037_JKT "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

#define EC_OK "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\""
#define RSA_OK "\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"" R7638_N "\""
#define OKP_OK "\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" R8037_X "\""

/* ---------- base64url ---------- */

typedef struct {
    const char *in;
    int ok;
    const char *out; /* decoded bytes when ok */
} b64_case_t;

static const b64_case_t b64_cases[] = {
    {"", 1, ""},           {"QQ", 1, "A"},         {"QUI", 1, "AB"},  {"QUJD", 1, "ABC"},
    {"QUJDRA", 1, "ABCD"}, {"-_8", 1, "\xfb\xff"}, {"QQ==", 0, NULL}, /* padding */
    {"QUI=", 0, NULL},                                                /* padding */
    {"Q", 0, NULL},                                                   /* one leftover character */
    {"QUJDR", 0, NULL},                                               /* 4n + 1 */
    {"+/8", 0, NULL},                                                 /* standard alphabet */
    {"a+b", 0, NULL},      {"a/bc", 0, NULL},      {"QU I", 0, NULL}, /* whitespace */
    {"QUI\n", 0, NULL},    {" QUI", 0, NULL},      {"QR", 0, NULL},   /* non-canonical: unused low
                                                                         bits set */
    {"QUJ", 0, NULL},                                                 /* non-canonical last of 3 */
    {"QUK", 0, NULL}, /* 'K' has its unused low bits set; "AB" is "QUI" */
    {"QU.I", 0, NULL},     {"QU\x80I", 0, NULL},
};

START_TEST(test_b64_table)
{
    size_t i;
    for (i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
        const b64_case_t *c = &b64_cases[i];
        unsigned char *out = NULL;
        size_t n = 0;
        int rc = dpop_b64url_decode(c->in, strlen(c->in), &out, &n);
        ck_assert_msg((rc == DPOP_OK) == c->ok, "case %zu (%s): rc %d", i, c->in, rc);
        if (c->ok) {
            ck_assert_uint_eq(n, strlen(c->out));
            ck_assert(memcmp(out, c->out, n) == 0);
        }
        free(out);
    }
}
END_TEST

/* Every length 0..200: encode -> decode round trip, encoded length, and
 * each of the alternative last characters that differ only in the unused
 * bits is rejected (exactly one encoding per byte string). */
START_TEST(test_b64_all_lengths)
{
    unsigned char in[200], out[210];
    char enc[300];
    size_t n, i, m;
    for (i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (n = 0; n <= sizeof(in); n++) {
        size_t len = dpop_b64url_encode_buf(in, n, enc, sizeof(enc));
        ck_assert_uint_eq(len, dpop_b64url_encoded_len(n));
        ck_assert_uint_eq(len, (n * 4 + 2) / 3);
        ck_assert(strchr(enc, '=') == NULL && strchr(enc, '+') == NULL && strchr(enc, '/') == NULL);
        ck_assert_int_eq(dpop_b64url_decode_buf(enc, len, out, sizeof(out), &m), DPOP_OK);
        ck_assert_uint_eq(m, n);
        ck_assert(memcmp(in, out, n) == 0);
        if (n % 3) {
            static const char alpha[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            char orig = enc[len - 1];
            int accepted = 0, k;
            for (k = 0; k < 64; k++) {
                enc[len - 1] = alpha[k];
                if (dpop_b64url_decode_buf(enc, len, out, sizeof(out), &m) == DPOP_OK &&
                    memcmp(in, out, n - 1) == 0 && out[n - 1] == in[n - 1])
                    accepted++;
            }
            enc[len - 1] = orig;
            ck_assert_int_eq(accepted, 1);
        }
        /* too small an output buffer is an error, not an overflow */
        if (n > 0)
            ck_assert_int_eq(dpop_b64url_decode_buf(enc, len, out, n - 1, &m), DPOP_ERR);
    }
    ck_assert_uint_eq(dpop_b64url_encode_buf(in, 3, enc, 4), (size_t)-1);
}
END_TEST

START_TEST(test_b64_is_sha256)
{
    ck_assert_int_eq(dpop_b64url_is_sha256(R7638_JKT, strlen(R7638_JKT)), 1);
    ck_assert_int_eq(dpop_b64url_is_sha256(R7638_JKT, 42), 0);
    ck_assert_int_eq(dpop_b64url_is_sha256("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xt", 43), 0);
    ck_assert_int_eq(dpop_b64url_is_sha256("NzbLsXh8uDCcd+6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", 43), 0);
}
END_TEST

/* ---------- JSON ---------- */

typedef struct {
    const char *in;
    size_t len; /* 0: strlen */
    int ok;
} json_case_t;

static const json_case_t json_cases[] = {
    {"{}", 0, 1},
    {" {\"a\":1} \n", 0, 1},
    {"{\"a\":\"\\u00e9\"}", 0, 1},
    {"{\"a\":1,\"a\":2}", 0, 0},         /* RFC 7515 §4: duplicate member */
    {"{\"a\":{\"b\":1,\"b\":1}}", 0, 0}, /* nested duplicate */
    {"[]", 0, 0},                        /* not an object */
    {"[{}]", 0, 0},
    {"\"str\"", 0, 0},
    {"42", 0, 0},
    {"null", 0, 0},
    {"true", 0, 0},
    {"", 0, 0},
    {"   ", 0, 0},
    {"{\"a\":\"x\\u0000y\"}", 0, 0}, /* NUL inside a string */
    {"{\"a\\u0000\":1}", 0, 0},      /* NUL inside a key */
    {"{\"a\":1}\0", 8, 0},           /* raw NUL after the object */
    {"{\"a\":1} x", 0, 0},           /* trailing garbage */
    {"{\"a\":1}{}", 0, 0},
    {"{\"a\":\"\xff\"}", 0, 0},     /* invalid UTF-8 */
    {"{\"a\":\"\xc0\xaf\"}", 0, 0}, /* overlong UTF-8 */
    {"{\"a\":1,}", 0, 0},
    {"{'a':1}", 0, 0},
    {"{\"a\":NaN}", 0, 0},
    /* well-formed, too big for a double / an int64: read as null (issue 10) */
    {"{\"a\":1e999}", 0, 1},
    {"{\"a\":123456789012345678901234567890}", 0, 1},
    {"{\"a\":1e999,\"b\":1e3e9}", 0, 0}, /* still malformed elsewhere */
    {"{\"a\":1e999,\"b\":01}", 0, 0},
    {"{\"a\":1e999 1}", 0, 0},
};

START_TEST(test_json_table)
{
    size_t i;
    for (i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
        const json_case_t *c = &json_cases[i];
        char err[128] = "";
        json_t *v =
            dpop_json_parse_object(c->in, c->len ? c->len : strlen(c->in), err, sizeof(err));
        ck_assert_msg((v != NULL) == c->ok, "case %zu: got %s (%s)", i, v ? "ok" : "error", err);
        if (!v)
            ck_assert_msg(err[0] != '\0', "case %zu: no error text", i);
        json_decref(v);
    }
}
END_TEST

/* RFC 8259 §6: a number may be of any size; the ones no int64 or double
 * holds read as null (so a claim is "of the wrong type", not the whole
 * object malformed); everything that fits, and strings, stay as written. */
START_TEST(test_json_big_numbers)
{
    static const struct {
        const char *text;
        int is_null;
    } cases[] = {
        {"1e309", 1},
        {"-1e309", 1},
        {"1.7976931348623159e308", 1}, /* just above DBL_MAX */
        {"1.7976931348623157e308", 0}, /* DBL_MAX */
        {"0.00000000000000000000000000000000000000001e309", 0},
        {"1000000000000000000000000000000000000000000000000e270", 1},
        {"1E+400", 1},
        {"1e-400", 0}, /* underflow is 0, not an error */
        {"9223372036854775807", 0},
        {"-9223372036854775808", 0},
        {"9223372036854775808", 1},
        {"-9223372036854775809", 1},
        {"18446744073709551616", 1},
        {"100000000000000000000000000000000000000000000000000000000000000000000", 1},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[256], err[128] = "";
        json_t *v, *a;
        snprintf(in, sizeof(in), "{\"s\":\"%s\",\"a\":%s,\"n\":[%s]}", cases[i].text, cases[i].text,
                 cases[i].text);
        v = dpop_json_parse_object(in, strlen(in), err, sizeof(err));
        ck_assert_msg(v != NULL, "%s: %s", cases[i].text, err);
        a = json_object_get(v, "a");
        ck_assert_msg(json_is_null(a) == cases[i].is_null, "%s: null %d", cases[i].text,
                      json_is_null(a));
        ck_assert(json_is_null(json_array_get(json_object_get(v, "n"), 0)) == cases[i].is_null);
        if (!cases[i].is_null)
            ck_assert(json_is_number(a));
        /* a string that looks like a number is never touched */
        ck_assert_str_eq(json_string_value(json_object_get(v, "s")), cases[i].text);
        json_decref(v);
    }
}
END_TEST

/* Error text never echoes input (it may be a token): a duplicate member
 * named like a secret must not show up. */
START_TEST(test_json_error_no_echo)
{
    const char *in = "{\"SECRETKEYNAME\":1,\"SECRETKEYNAME\":2}";
    char err[256];
    ck_assert_ptr_null(dpop_json_parse_object(in, strlen(in), err, sizeof(err)));
    ck_assert_ptr_null(strstr(err, "SECRET"));
}
END_TEST

static char *nested(int depth)
{
    /* depth objects: {"a":{"a":...{}}} */
    size_t n = (size_t)depth * 6 + 2, i;
    char *s = malloc(n + 1), *p = s;
    for (i = 0; i < (size_t)depth - 1; i++)
        p += sprintf(p, "{\"a\":");
    p += sprintf(p, "{}");
    for (i = 0; i < (size_t)depth - 1; i++)
        *p++ = '}';
    *p = '\0';
    return s;
}

START_TEST(test_json_depth)
{
    char err[128];
    char *ok = nested(DPOP_JSON_MAX_DEPTH), *bad = nested(DPOP_JSON_MAX_DEPTH + 1);
    char *deep = nested(5000); /* beyond jansson's own limit too */
    json_t *v = dpop_json_parse_object(ok, strlen(ok), err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    json_decref(v);
    ck_assert_ptr_null(dpop_json_parse_object(bad, strlen(bad), err, sizeof(err)));
    ck_assert_ptr_null(dpop_json_parse_object(deep, strlen(deep), err, sizeof(err)));
    /* arrays count as nesting too */
    {
        const char *arr = "{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}"; /* 1 + 16 */
        ck_assert_ptr_null(dpop_json_parse_object(arr, strlen(arr), err, sizeof(err)));
    }
    free(ok);
    free(bad);
    free(deep);
}
END_TEST

START_TEST(test_json_size)
{
    size_t n = DPOP_JSON_MAX_BYTES + 1, i;
    char *s = malloc(n + 1), err[128];
    json_t *v;
    /* {"a":"xxxx...."} exactly one byte over the limit */
    memset(s, 'x', n);
    memcpy(s, "{\"a\":\"", 6);
    s[n - 2] = '"';
    s[n - 1] = '}';
    s[n] = '\0';
    ck_assert_ptr_null(dpop_json_parse_object(s, n, err, sizeof(err)));
    /* one byte shorter fits */
    for (i = 0; i < 2; i++)
        s[n - 2 - i] = s[n - 1 - i];
    s[n - 1] = '\0';
    s[n - 3] = '"';
    s[n - 2] = '}';
    v = dpop_json_parse_object(s, n - 1, err, sizeof(err));
    ck_assert_msg(v != NULL, "%s", err);
    json_decref(v);
    /* the _max variant honours its own bound */
    ck_assert_ptr_null(dpop_json_parse_object_max("{\"a\":1}", 7, 6, err, sizeof(err)));
    free(s);
}
END_TEST

START_TEST(test_json_get_string)
{
    json_t *o = J("{\"s\":\"v\",\"e\":\"\",\"n\":1,\"b\":true,\"z\":null,\"o\":{}}");
    const char *s = NULL;
    ck_assert_int_eq(dpop_json_get_string(o, "s", &s), 1);
    ck_assert_str_eq(s, "v");
    ck_assert_int_eq(dpop_json_get_string(o, "missing", &s), 0);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(dpop_json_get_string(o, "e", &s), -1);
    ck_assert_int_eq(dpop_json_get_string(o, "n", &s), -1);
    ck_assert_int_eq(dpop_json_get_string(o, "b", &s), -1);
    ck_assert_int_eq(dpop_json_get_string(o, "z", &s), -1);
    ck_assert_int_eq(dpop_json_get_string(o, "o", &s), -1);
    /* a NUL inside a string built in code */
    json_object_set_new(o, "nul", json_stringn("a\0b", 3));
    ck_assert_int_eq(dpop_json_get_string(o, "nul", &s), -1);
    ck_assert_int_eq(dpop_json_get_string(NULL, "s", &s), 0);
    json_decref(o);
}
END_TEST

typedef struct {
    const char *json;
    int rc;
    int64_t value;
} int_case_t;

static const int_case_t int_cases[] = {
    {"{\"v\":0}", 1, 0},
    {"{\"v\":1700000000}", 1, 1700000000},
    {"{\"v\":-5}", 1, -5},
    {"{\"v\":9223372036854775807}", 1, INT64_MAX},
    {"{\"v\":1.7e9}", 1, 1700000000}, /* integral real */
    {"{\"v\":1700000000.0}", 1, 1700000000},
    {"{\"v\":9007199254740992.0}", 1, 9007199254740992LL}, /* 2^53 */
    {"{\"v\":9007199254740994.0}", -1, 0},                 /* beyond 2^53: may be rounded */
    {"{\"v\":1e300}", -1, 0},
    {"{\"v\":1.5}", -1, 0},
    {"{\"v\":-0.25}", -1, 0},
    {"{\"v\":true}", -1, 0},
    {"{\"v\":false}", -1, 0},
    {"{\"v\":\"17\"}", -1, 0},
    {"{\"v\":null}", -1, 0},
    {"{\"v\":[1]}", -1, 0},
    {"{\"w\":1}", 0, 0},
};

START_TEST(test_json_get_int)
{
    size_t i;
    for (i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        json_t *o = J(int_cases[i].json);
        int64_t v = -12345;
        int rc = dpop_json_get_int(o, "v", &v);
        ck_assert_msg(rc == int_cases[i].rc, "case %zu (%s): rc %d", i, int_cases[i].json, rc);
        if (rc == 1)
            ck_assert_msg(v == int_cases[i].value, "case %zu: %lld", i, (long long)v);
        json_decref(o);
    }
}
END_TEST

/* ---------- algorithms ---------- */

START_TEST(test_alg_names)
{
    int a;
    for (a = 1; a < DPOP_ALG__COUNT; a++)
        ck_assert_int_eq(dpop_alg_from_name(dpop_alg_name((dpop_alg_t)a)), a);
    ck_assert_int_eq(dpop_alg_from_name("none"), DPOP_ALG_INVALID);
    ck_assert_int_eq(dpop_alg_from_name("HS256"), DPOP_ALG_INVALID);
    ck_assert_int_eq(dpop_alg_from_name("es256"), DPOP_ALG_INVALID); /* case-sensitive */
    ck_assert_int_eq(dpop_alg_from_name("ES256 "), DPOP_ALG_INVALID);
    ck_assert_int_eq(dpop_alg_from_name("Ed25519"), DPOP_ALG_INVALID);
    ck_assert_int_eq(dpop_alg_from_name(""), DPOP_ALG_INVALID);
    ck_assert_int_eq(dpop_alg_from_name(NULL), DPOP_ALG_INVALID);
    ck_assert_ptr_null(dpop_alg_name(DPOP_ALG_INVALID));
    ck_assert_ptr_null(dpop_alg_name(DPOP_ALG__COUNT));
}
END_TEST

START_TEST(test_alg_mask)
{
    dpop_alg_mask_t m = 0;
    char err[128], out[128];
    ck_assert_int_eq(dpop_alg_mask_parse("ES256,EdDSA", &m, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(m, DPOP_ALG_BIT(DPOP_ALG_ES256) | DPOP_ALG_BIT(DPOP_ALG_EDDSA));
    ck_assert_int_eq(dpop_alg_mask_parse(" PS256  RS512 ,, ES384 ", &m, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(m, DPOP_ALG_BIT(DPOP_ALG_PS256) | DPOP_ALG_BIT(DPOP_ALG_RS512) |
                             DPOP_ALG_BIT(DPOP_ALG_ES384));
    ck_assert_int_eq(dpop_alg_mask_parse("ES256,none", &m, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(err, "none"));
    ck_assert_int_eq(dpop_alg_mask_parse("HS256", &m, err, sizeof(err)), DPOP_ERR);
    ck_assert_int_eq(dpop_alg_mask_parse("", &m, err, sizeof(err)), DPOP_ERR);
    ck_assert_int_eq(dpop_alg_mask_parse(" , ", &m, err, sizeof(err)), DPOP_ERR);
    ck_assert_int_eq(dpop_alg_mask_parse("ES256ES256ES256ES256", &m, err, sizeof(err)), DPOP_ERR);
    ck_assert_uint_eq(dpop_alg_mask_format(DPOP_ALG_MASK_DEFAULT, out, sizeof(out)),
                      strlen("ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"));
    ck_assert_str_eq(out, "ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA");
    dpop_alg_mask_format(DPOP_ALG_BIT(DPOP_ALG_EDDSA) | DPOP_ALG_BIT(DPOP_ALG_ES256), out,
                         sizeof(out));
    ck_assert_str_eq(out, "ES256 EdDSA");
    /* truncation never leaves half a name */
    dpop_alg_mask_format(DPOP_ALG_MASK_DEFAULT, out, 14);
    ck_assert_str_eq(out, "ES256 ES384");
    ck_assert_uint_eq(dpop_alg_mask_format(0, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---------- JWK import ---------- */

typedef struct {
    const char *json;
    dpop_reason_t reason; /* DPOP_REASON_NONE: accepted */
} jwk_case_t;

static const jwk_case_t jwk_cases[] = {
    /* accepted */
    {"{" EC_OK "}", DPOP_REASON_NONE},
    {"{" RSA_OK "}", DPOP_REASON_NONE},
    {"{" OKP_OK "}", DPOP_REASON_NONE},
    {"{" EC_OK ",\"kid\":\"k1\",\"use\":\"sig\",\"alg\":\"ES256\",\"key_ops\":[\"verify\"]}",
     DPOP_REASON_NONE},
    {"{" EC_OK ",\"x5u\":\"https://x\",\"ext\":true}", DPOP_REASON_NONE}, /* unknown ignored */
    /* private members (RFC 9449 §4.3 (7)) */
    {"{" EC_OK ",\"d\":\"jpsQnnGQmL-YBIffH1136cLyH4ZP5qlwpTzgK2ThRfQ\"}",
     DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"{" RSA_OK ",\"p\":\"AQAB\"}", DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"{" RSA_OK ",\"q\":\"AQAB\"}", DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"{" RSA_OK ",\"dp\":\"AQAB\"}", DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"{" RSA_OK ",\"dq\":\"AQAB\"}", DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"{" RSA_OK ",\"qi\":\"AQAB\"}", DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"{" RSA_OK ",\"oth\":[]}", DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"{" OKP_OK ",\"d\":null}", DPOP_REASON_PRIVATE_KEY_IN_JWK}, /* any value */
    {"{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}", DPOP_REASON_PRIVATE_KEY_IN_JWK},
    /* symmetric / unknown / missing kty */
    {"{\"kty\":\"oct\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"DSA\",\"x\":\"AQAB\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"ec\",\"crv\":\"P-256\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK},
    {"{\"crv\":\"P-256\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":1,\"crv\":\"P-256\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"\"}", DPOP_REASON_BAD_JWK},
    /* EC: curve, coordinates */
    {"{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK}, /* curve/coordinate mismatch */
    {"{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R9449_X
     "\",\"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDE\"}",
     DPOP_REASON_BAD_JWK}, /* off-curve point */
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
     "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
     DPOP_REASON_BAD_JWK}, /* (0,0) */
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R9449_X
     "\",\"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRA\"}",
     DPOP_REASON_BAD_JWK}, /* y of 31 bytes */
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AJfLRa4cft-LVd4USAkg2PcwpA5aQYReNlEFH1lQFgRb\","
     "\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK}, /* x of 33 bytes (leading zero) */
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R9449_X "=\",\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK}, /* padded base64 */
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"l8tFrhx+34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs\","
     "\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK}, /* standard alphabet */
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"y\":\"" R9449_Y "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R9449_X "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"EC\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"EC\",\"crv\":256,\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":[\"" R9449_X "\"],\"y\":\"" R9449_Y "\"}",
     DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R9449_X "\",\"y\":123}", DPOP_REASON_BAD_JWK},
    /* optional members of the wrong type */
    {"{" EC_OK ",\"kid\":7}", DPOP_REASON_BAD_JWK},
    {"{" EC_OK ",\"use\":true}", DPOP_REASON_BAD_JWK},
    {"{" EC_OK ",\"alg\":{}}", DPOP_REASON_BAD_JWK},
    {"{" EC_OK ",\"key_ops\":\"verify\"}", DPOP_REASON_BAD_JWK},
    {"{" EC_OK ",\"key_ops\":[1]}", DPOP_REASON_BAD_JWK},
    {"{" EC_OK ",\"key_ops\":[\"verify\",\"verify\"]}", DPOP_REASON_BAD_JWK},
    /* RSA */
    {"{\"kty\":\"RSA\",\"e\":\"AQAB\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"RSA\",\"n\":\"" R7638_N "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"RSA\",\"e\":65537,\"n\":\"" R7638_N "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"RSA\",\"e\":\"AQAA\",\"n\":\"" R7638_N "\"}", DPOP_REASON_BAD_JWK},   /* even */
    {"{\"kty\":\"RSA\",\"e\":\"Ag\",\"n\":\"" R7638_N "\"}", DPOP_REASON_BAD_JWK},     /* 2 */
    {"{\"kty\":\"RSA\",\"e\":\"AQ\",\"n\":\"" R7638_N "\"}", DPOP_REASON_BAD_JWK},     /* 1 */
    {"{\"kty\":\"RSA\",\"e\":\"AA\",\"n\":\"" R7638_N "\"}", DPOP_REASON_BAD_JWK},     /* 0 */
    {"{\"kty\":\"RSA\",\"e\":\"AAEAAQ\",\"n\":\"" R7638_N "\"}", DPOP_REASON_BAD_JWK}, /* 00 pad */
    {"{\"kty\":\"RSA\",\"e\":\"AQAAAAAAAAAB\",\"n\":\"" R7638_N "\"}",
     DPOP_REASON_BAD_JWK}, /* 72 bits */
    {"{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"AA" R7638_N "\"}",
     DPOP_REASON_BAD_JWK}, /* not b64 len */
    /* OKP */
    {"{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"" R8037_X "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" R8037_X "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUQ\"}",
     DPOP_REASON_BAD_JWK}, /* 31 bytes */
    {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoA\"}",
     DPOP_REASON_BAD_JWK}, /* 33 bytes? (non-canonical length) */
    {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"OKP\",\"x\":\"" R8037_X "\"}", DPOP_REASON_BAD_JWK},
    {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":false}", DPOP_REASON_BAD_JWK},
    /* not an object */
    {"[]", DPOP_REASON_BAD_JWK},
    {"\"EC\"", DPOP_REASON_BAD_JWK},
};

static void check_jwk(const char *what, json_t *j, dpop_reason_t want)
{
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    int rc;
    dpop_failure_clear(&f);
    rc = dpop_jwk_import_public(j, &k, &f);
    if (want == DPOP_REASON_NONE) {
        ck_assert_msg(rc == DPOP_OK, "%s: rejected: %s", what, f.detail);
        ck_assert_ptr_nonnull(k);
        ck_assert_uint_eq(strlen(dpop_jwk_thumbprint(k)), DPOP_JKT_LEN);
    }
    else {
        ck_assert_msg(rc == DPOP_ERR, "%s: accepted", what);
        ck_assert_ptr_null(k);
        ck_assert_msg(f.code == want, "%s: reason %s (%s), want %s", what, dpop_reason_name(f.code),
                      f.detail, dpop_reason_name(want));
        ck_assert_str_eq(f.error, "invalid_dpop_proof");
    }
    dpop_jwk_free(k);
}

START_TEST(test_jwk_table)
{
    size_t i;
    for (i = 0; i < sizeof(jwk_cases) / sizeof(jwk_cases[0]); i++) {
        json_t *j = J(jwk_cases[i].json);
        char what[64];
        snprintf(what, sizeof(what), "jwk case %zu", i);
        check_jwk(what, j, jwk_cases[i].reason);
        json_decref(j);
    }
}
END_TEST

/* RSA cases built from the RFC 7638 modulus at run time. */
START_TEST(test_jwk_rsa_sizes)
{
    unsigned char *n = NULL;
    size_t nl = 0;
    char *enc;
    json_t *j;
    ck_assert_int_eq(dpop_b64url_decode(R7638_N, strlen(R7638_N), &n, &nl), DPOP_OK);
    ck_assert_uint_eq(nl, 256);
    /* 1024 bits: first 128 bytes, forced odd */
    n[127] |= 1;
    enc = dpop_b64url_encode(n, 128);
    j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "e", "AQAB", "n", enc);
    check_jwk("rsa 1024", j, DPOP_REASON_BAD_JWK);
    json_decref(j);
    free(enc);
    /* 2047 bits: clear the top bit of the 2048-bit modulus */
    {
        unsigned char save = n[0];
        n[0] &= 0x7f;
        enc = dpop_b64url_encode(n, nl);
        j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "e", "AQAB", "n", enc);
        check_jwk("rsa 2047", j, DPOP_REASON_BAD_JWK);
        json_decref(j);
        free(enc);
        n[0] = save;
    }
    /* leading zero octet before a 2048-bit modulus (RFC 7518 §6.3.1.1) */
    {
        unsigned char pad[257];
        pad[0] = 0;
        memcpy(pad + 1, n, nl);
        enc = dpop_b64url_encode(pad, sizeof(pad));
        j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "e", "AQAB", "n", enc);
        check_jwk("rsa zero-padded n", j, DPOP_REASON_BAD_JWK);
        json_decref(j);
        free(enc);
    }
    /* even modulus */
    {
        unsigned char save = n[nl - 1];
        n[nl - 1] &= 0xfe;
        enc = dpop_b64url_encode(n, nl);
        j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "e", "AQAB", "n", enc);
        check_jwk("rsa even n", j, DPOP_REASON_BAD_JWK);
        json_decref(j);
        free(enc);
        n[nl - 1] = save;
    }
    /* e = 3 is allowed */
    j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "e", "Aw", "n", R7638_N);
    check_jwk("rsa e=3", j, DPOP_REASON_NONE);
    json_decref(j);
    /* 20000 bits: beyond the 16384-bit bound */
    {
        size_t big = 2500;
        unsigned char *b = malloc(big);
        memset(b, 0xab, big);
        enc = dpop_b64url_encode(b, big);
        j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "e", "AQAB", "n", enc);
        check_jwk("rsa 20000 bits", j, DPOP_REASON_BAD_JWK);
        json_decref(j);
        free(enc);
        free(b);
    }
    free(n);
}
END_TEST

/* Errors never carry key material: no detail contains an x/n value. */
START_TEST(test_jwk_detail_no_key_material)
{
    size_t i;
    for (i = 0; i < sizeof(jwk_cases) / sizeof(jwk_cases[0]); i++) {
        json_t *j = J(jwk_cases[i].json);
        dpop_jwk_t *k = NULL;
        dpop_failure_t f;
        dpop_failure_clear(&f);
        if (dpop_jwk_import_public(j, &k, &f) != DPOP_OK) {
            ck_assert_ptr_null(strstr(f.detail, "l8tFrhx"));
            ck_assert_ptr_null(strstr(f.detail, "0vx7ago"));
            ck_assert_ptr_null(strstr(f.detail, "jpsQnn"));
            ck_assert_ptr_null(strstr(f.detail, "11qYAY"));
        }
        dpop_jwk_free(k);
        json_decref(j);
    }
}
END_TEST

typedef struct {
    const char *extra; /* members appended to the EC P-256 JWK */
    dpop_alg_t alg;
    int fits;
} fits_case_t;

static const fits_case_t fits_cases[] = {
    {"", DPOP_ALG_ES256, 1},
    {"", DPOP_ALG_ES384, 0}, /* curve mismatch */
    {"", DPOP_ALG_ES512, 0},
    {"", DPOP_ALG_RS256, 0},
    {"", DPOP_ALG_PS256, 0},
    {"", DPOP_ALG_EDDSA, 0},
    {"", DPOP_ALG_INVALID, 0},
    {",\"alg\":\"ES256\"", DPOP_ALG_ES256, 1},
    {",\"alg\":\"ES384\"", DPOP_ALG_ES256, 0}, /* own alg contradicts */
    {",\"alg\":\"RS256\"", DPOP_ALG_ES256, 0},
    {",\"use\":\"sig\"", DPOP_ALG_ES256, 1},
    {",\"use\":\"enc\"", DPOP_ALG_ES256, 0},
    {",\"key_ops\":[\"verify\"]", DPOP_ALG_ES256, 1},
    {",\"key_ops\":[\"sign\",\"verify\"]", DPOP_ALG_ES256, 1},
    {",\"key_ops\":[\"sign\"]", DPOP_ALG_ES256, 0},
    {",\"key_ops\":[]", DPOP_ALG_ES256, 0},
    {",\"key_ops\":[\"encrypt\"]", DPOP_ALG_ES256, 0},
};

START_TEST(test_jwk_fits_alg)
{
    size_t i;
    char buf[512];
    int a;
    for (i = 0; i < sizeof(fits_cases) / sizeof(fits_cases[0]); i++) {
        json_t *j;
        dpop_jwk_t *k = NULL;
        dpop_failure_t f;
        snprintf(buf, sizeof(buf), "{" EC_OK "%s}", fits_cases[i].extra);
        j = J(buf);
        ck_assert_int_eq(dpop_jwk_import_public(j, &k, &f), DPOP_OK);
        ck_assert_msg(dpop_jwk_fits_alg(k, fits_cases[i].alg) == fits_cases[i].fits,
                      "fits case %zu", i);
        dpop_jwk_free(k);
        json_decref(j);
    }
    /* every generated key fits exactly the algs of its family */
    for (a = 1; a < DPOP_ALG__COUNT; a++) {
        dpop_jwk_t *k = NULL;
        dpop_failure_t f;
        int b;
        ck_assert_int_eq(dpop_jwk_import_public(g_pub[a], &k, &f), DPOP_OK);
        for (b = 1; b < DPOP_ALG__COUNT; b++) {
            int rsa_a = a >= DPOP_ALG_PS256 && a <= DPOP_ALG_RS512;
            int rsa_b = b >= DPOP_ALG_PS256 && b <= DPOP_ALG_RS512;
            int want = (a == b) || (rsa_a && rsa_b);
            ck_assert_msg(dpop_jwk_fits_alg(k, (dpop_alg_t)b) == want, "%s key for %s",
                          dpop_alg_name((dpop_alg_t)a), dpop_alg_name((dpop_alg_t)b));
        }
        dpop_jwk_free(k);
    }
    ck_assert_int_eq(dpop_jwk_fits_alg(NULL, DPOP_ALG_ES256), 0);
}
END_TEST

START_TEST(test_jwk_accessors)
{
    json_t *j = J("{" EC_OK ",\"kid\":\"key-1\",\"use\":\"sig\",\"alg\":\"ES256\"}");
    dpop_jwk_t *k = NULL, *r;
    dpop_failure_t f;
    ck_assert_int_eq(dpop_jwk_import_public(j, &k, &f), DPOP_OK);
    ck_assert_str_eq(dpop_jwk_kid(k), "key-1");
    ck_assert_str_eq(dpop_jwk_use(k), "sig");
    ck_assert_str_eq(dpop_jwk_alg(k), "ES256");
    ck_assert_int_eq(dpop_jwk_kty(k), DPOP_KTY_EC);
    ck_assert_int_eq(EVP_PKEY_get_base_id(dpop_jwk_pkey(k)), EVP_PKEY_EC);
    ck_assert_int_eq(EVP_PKEY_get_bits(dpop_jwk_pkey(k)), 256);
    /* references: two owners, freed twice */
    r = dpop_jwk_ref(k);
    ck_assert_ptr_eq(r, k);
    dpop_jwk_free(k);
    ck_assert_str_eq(dpop_jwk_thumbprint(r), R9449_JKT);
    dpop_jwk_free(r);
    ck_assert_ptr_null(dpop_jwk_kid(NULL));
    ck_assert_int_eq(dpop_jwk_kty(NULL), DPOP_KTY_NONE);
    dpop_jwk_free(NULL);
    json_decref(j);
}
END_TEST

/* ---------- thumbprints ---------- */

START_TEST(test_thumbprint_vectors)
{
    /* RFC 7638 §3.1, with the non-required members the RFC shows */
    json_t *rsa = J("{\"kty\":\"RSA\",\"n\":\"" R7638_N "\",\"e\":\"AQAB\",\"alg\":\"RS256\","
                    "\"kid\":\"2011-04-29\"}");
    json_t *ec =
        J("{\"kty\":\"EC\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\",\"crv\":\"P-256\"}");
    json_t *okp = J("{" OKP_OK "}");
    char out[DPOP_JKT_LEN + 1];
    dpop_failure_t f;
    dpop_jwk_t *k = NULL;

    ck_assert_int_eq(dpop_jwk_thumbprint_json(rsa, out, &f), DPOP_OK);
    ck_assert_str_eq(out, R7638_JKT);
    ck_assert_int_eq(dpop_jwk_import_public(rsa, &k, &f), DPOP_OK);
    ck_assert_str_eq(dpop_jwk_thumbprint(k), R7638_JKT);
    dpop_jwk_free(k);
    /* RFC 9449 §6.1: the §4.1 proof key has this jkt */
    ck_assert_int_eq(dpop_jwk_thumbprint_json(ec, out, &f), DPOP_OK);
    ck_assert_str_eq(out, R9449_JKT);
    /* RFC 8037 §A.3 */
    ck_assert_int_eq(dpop_jwk_thumbprint_json(okp, out, &f), DPOP_OK);
    ck_assert_str_eq(out, R8037_JKT);
    json_decref(rsa);
    json_decref(ec);
    json_decref(okp);
}
END_TEST

START_TEST(test_thumbprint_private_and_errors)
{
    int a;
    char out[DPOP_JKT_LEN + 1], out2[DPOP_JKT_LEN + 1];
    dpop_failure_t f;
    /* RFC 7638 §3.2.1: a private JWK has its public key's thumbprint */
    for (a = 1; a < DPOP_ALG__COUNT; a += 3) {
        json_t *priv = NULL;
        dpop_jwk_t *k = NULL;
        ck_assert_int_eq(dpop_jwk_generate((dpop_alg_t)a, &priv), DPOP_OK);
        ck_assert_int_eq(dpop_jwk_thumbprint_json(priv, out, &f), DPOP_OK);
        json_object_del(priv, "d");
        json_object_del(priv, "p");
        json_object_del(priv, "q");
        json_object_del(priv, "dp");
        json_object_del(priv, "dq");
        json_object_del(priv, "qi");
        ck_assert_int_eq(dpop_jwk_import_public(priv, &k, &f), DPOP_OK);
        ck_assert_str_eq(dpop_jwk_thumbprint(k), out);
        ck_assert_int_eq(dpop_jwk_thumbprint_json(priv, out2, &f), DPOP_OK);
        ck_assert_str_eq(out, out2);
        dpop_jwk_free(k);
        json_decref(priv);
    }
    {
        static const char *const bad[] = {
            "{\"kty\":\"oct\",\"k\":\"AQAB\"}",
            "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R9449_X "\"}",
            "{\"kty\":\"EC\",\"crv\":\"P-999\",\"x\":\"" R9449_X "\",\"y\":\"" R9449_Y "\"}",
            "{\"kty\":\"RSA\",\"n\":\"" R7638_N "\"}",
            "{\"kty\":\"RSA\",\"n\":\"" R7638_N "\",\"e\":\"AQAB=\"}",
            "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" R8037_X "\"}",
            "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":1}",
            "[]",
        };
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            json_t *j = J(bad[i]);
            dpop_failure_clear(&f);
            ck_assert_msg(dpop_jwk_thumbprint_json(j, out, &f) == DPOP_ERR, "bad %zu", i);
            ck_assert_int_eq(f.code, DPOP_REASON_BAD_JWK);
            json_decref(j);
        }
    }
}
END_TEST

/* ---------- private keys ---------- */

START_TEST(test_jwk_generate_import)
{
    int a = _i;
    json_t *priv = NULL, *pub = NULL;
    EVP_PKEY *pk = NULL;
    char err[256];
    const char *alg = NULL, *kty = NULL;
    ck_assert_int_eq(dpop_jwk_generate((dpop_alg_t)a, &priv), DPOP_OK);
    ck_assert_int_eq(dpop_json_get_string(priv, "alg", &alg), 1);
    ck_assert_str_eq(alg, dpop_alg_name((dpop_alg_t)a));
    ck_assert_int_eq(dpop_json_get_string(priv, "kty", &kty), 1);
    ck_assert_ptr_nonnull(json_object_get(priv, "d"));
    ck_assert_int_eq(dpop_jwk_import_private(priv, &pk, &pub, err, sizeof(err)), DPOP_OK);
    ck_assert_ptr_nonnull(pk);
    /* the public JWK carries no private member */
    ck_assert_ptr_null(json_object_get(pub, "d"));
    ck_assert_ptr_null(json_object_get(pub, "p"));
    EVP_PKEY_free(pk);
    json_decref(pub);
    /* a tampered d is refused (does not match the public key) */
    {
        const char *d = NULL;
        char *d2;
        dpop_json_get_string(priv, "d", &d);
        d2 = strdup(d);
        d2[3] = d2[3] == 'A' ? 'B' : 'A';
        json_object_set_new(priv, "d", json_string(d2));
        pk = NULL;
        ck_assert_int_eq(dpop_jwk_import_private(priv, &pk, NULL, err, sizeof(err)), DPOP_ERR);
        ck_assert_ptr_null(pk);
        free(d2);
    }
    json_decref(priv);
}
END_TEST

START_TEST(test_jwk_import_private_errors)
{
    static const char *const bad[] = {
        "{" EC_OK "}",                                /* no d */
        "{" OKP_OK ",\"d\":\"AQAB\"}",                /* d too short */
        "{" RSA_OK ",\"d\":\"AQAB\",\"p\":\"AQAB\"}", /* partial CRT */
        "{" RSA_OK "}",
        "{\"kty\":\"oct\",\"k\":\"AQAB\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"AQAB\"}",
        "[]",
    };
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = J(bad[i]), *pub = NULL;
        EVP_PKEY *pk = NULL;
        char err[256] = "";
        ck_assert_msg(dpop_jwk_import_private(j, &pk, &pub, err, sizeof(err)) == DPOP_ERR,
                      "private case %zu accepted", i);
        ck_assert_ptr_null(pk);
        ck_assert_ptr_null(pub);
        ck_assert_msg(err[0], "private case %zu: no message", i);
        json_decref(j);
    }
    ck_assert_int_eq(dpop_jwk_generate(DPOP_ALG_INVALID, &(json_t *){NULL}), DPOP_ERR);
}
END_TEST

/* ---------- signatures ---------- */

static dpop_jwk_t *imported_key(dpop_alg_t a)
{
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    ck_assert_int_eq(dpop_jwk_import_public(g_pub[a], &k, &f), DPOP_OK);
    return k;
}

static const unsigned char msg[] = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0";

START_TEST(test_sig_round_trip)
{
    dpop_alg_t a = (dpop_alg_t)_i;
    unsigned char *sig = NULL;
    size_t sl = 0;
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    unsigned char tampered[sizeof(msg)];
    ck_assert_int_eq(dpop_sig_sign(a, g_priv[a], msg, sizeof(msg) - 1, &sig, &sl), DPOP_OK);
    switch (a) {
    case DPOP_ALG_ES256:
        ck_assert_uint_eq(sl, 64);
        break;
    case DPOP_ALG_ES384:
        ck_assert_uint_eq(sl, 96);
        break;
    case DPOP_ALG_ES512:
        ck_assert_uint_eq(sl, 132);
        break;
    case DPOP_ALG_EDDSA:
        ck_assert_uint_eq(sl, 64);
        break;
    default:
        ck_assert_uint_eq(sl, 256);
    }
    ck_assert_int_eq(dpop_jwk_import_public(g_pub[a], &k, &f), DPOP_OK);
    ck_assert_int_eq(dpop_sig_verify(a, dpop_jwk_pkey(k), msg, sizeof(msg) - 1, sig, sl), 1);
    /* the private key verifies too */
    ck_assert_int_eq(dpop_sig_verify(a, g_priv[a], msg, sizeof(msg) - 1, sig, sl), 1);
    /* one bit of the message */
    memcpy(tampered, msg, sizeof(msg));
    tampered[5] ^= 1;
    ck_assert_int_eq(dpop_sig_verify(a, dpop_jwk_pkey(k), tampered, sizeof(msg) - 1, sig, sl), 0);
    /* one bit of the signature, first and last byte */
    sig[0] ^= 0x80;
    ck_assert_int_eq(dpop_sig_verify(a, dpop_jwk_pkey(k), msg, sizeof(msg) - 1, sig, sl), 0);
    sig[0] ^= 0x80;
    sig[sl - 1] ^= 1;
    ck_assert_int_eq(dpop_sig_verify(a, dpop_jwk_pkey(k), msg, sizeof(msg) - 1, sig, sl), 0);
    sig[sl - 1] ^= 1;
    /* truncated / extended signature */
    ck_assert_int_eq(dpop_sig_verify(a, dpop_jwk_pkey(k), msg, sizeof(msg) - 1, sig, sl - 1), 0);
    {
        unsigned char *longer = malloc(sl + 1);
        memcpy(longer, sig, sl);
        longer[sl] = 0;
        ck_assert_int_eq(dpop_sig_verify(a, dpop_jwk_pkey(k), msg, sizeof(msg) - 1, longer, sl + 1),
                         0);
        free(longer);
    }
    ck_assert_int_eq(dpop_sig_verify(a, dpop_jwk_pkey(k), msg, sizeof(msg) - 1, sig, 0), 0);
    /* every other alg with this key and signature is invalid */
    {
        int b;
        for (b = 0; b < DPOP_ALG__COUNT; b++)
            if (b != (int)a)
                ck_assert_msg(dpop_sig_verify((dpop_alg_t)b, dpop_jwk_pkey(k), msg, sizeof(msg) - 1,
                                              sig, sl) == 0,
                              "%s signature accepted as %s", dpop_alg_name(a),
                              dpop_alg_name((dpop_alg_t)b));
    }
    dpop_jwk_free(k);
    free(sig);
}
END_TEST

/* dpop_jwk_verify (per-key cached context) gives dpop_sig_verify's answers,
 * also on repeated use of the same template. */
START_TEST(test_sig_jwk_verify)
{
    dpop_alg_t a = (dpop_alg_t)_i;
    unsigned char *sig = NULL;
    size_t sl = 0;
    int n, b;
    dpop_jwk_t *k = imported_key(a);
    ck_assert_int_eq(dpop_sig_sign(a, g_priv[a], msg, sizeof(msg) - 1, &sig, &sl), DPOP_OK);
    for (n = 0; n < 3; n++) {
        ck_assert_int_eq(dpop_jwk_verify(k, a, msg, sizeof(msg) - 1, sig, sl), 1);
        ck_assert_int_eq(dpop_jwk_verify(k, a, msg, sizeof(msg) - 2, sig, sl), 0);
        sig[1] ^= 4;
        ck_assert_int_eq(dpop_jwk_verify(k, a, msg, sizeof(msg) - 1, sig, sl), 0);
        sig[1] ^= 4;
        ck_assert_int_eq(dpop_jwk_verify(k, a, msg, sizeof(msg) - 1, sig, sl - 1), 0);
    }
    for (b = 0; b <= DPOP_ALG__COUNT; b++)
        if (b != (int)a)
            ck_assert_int_eq(dpop_jwk_verify(k, (dpop_alg_t)b, msg, sizeof(msg) - 1, sig, sl), 0);
    ck_assert_int_eq(dpop_jwk_verify(NULL, a, msg, sizeof(msg) - 1, sig, sl), 0);
    dpop_jwk_free(k);
    free(sig);
}
END_TEST

typedef struct {
    dpop_jwk_t *k;
    dpop_alg_t alg;
    const unsigned char *sig;
    size_t sl;
    int bad;
} jv_arg_t;

static void *jv_worker(void *p)
{
    jv_arg_t *a = p;
    int i;
    for (i = 0; i < 50; i++)
        if (dpop_jwk_verify(a->k, a->alg, msg, sizeof(msg) - 1, a->sig, a->sl) != 1)
            a->bad++;
    return NULL;
}

/* Four threads racing to create and use the same key's templates. */
START_TEST(test_sig_jwk_verify_threads)
{
    static const dpop_alg_t algs[] = {DPOP_ALG_ES256, DPOP_ALG_PS256};
    size_t ai;
    for (ai = 0; ai < 2; ai++) {
        dpop_alg_t a = algs[ai];
        unsigned char *sig = NULL;
        size_t sl = 0;
        pthread_t th[4];
        jv_arg_t args[4];
        int i;
        dpop_jwk_t *k = imported_key(a);
        ck_assert_int_eq(dpop_sig_sign(a, g_priv[a], msg, sizeof(msg) - 1, &sig, &sl), DPOP_OK);
        for (i = 0; i < 4; i++) {
            args[i] = (jv_arg_t){k, a, sig, sl, 0};
            ck_assert_int_eq(pthread_create(&th[i], NULL, jv_worker, &args[i]), 0);
        }
        for (i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            ck_assert_int_eq(args[i].bad, 0);
        }
        dpop_jwk_free(k);
        free(sig);
    }
}
END_TEST

/* Verification with a key of the wrong type or curve is "invalid", and a
 * signature made by another key of the right type is invalid. */
START_TEST(test_sig_wrong_key)
{
    unsigned char *sig = NULL;
    size_t sl = 0;
    ck_assert_int_eq(
        dpop_sig_sign(DPOP_ALG_ES256, g_priv[DPOP_ALG_ES256], msg, sizeof(msg) - 1, &sig, &sl),
        DPOP_OK);
    ck_assert_int_eq(
        dpop_sig_verify(DPOP_ALG_ES256, g_priv[DPOP_ALG_ES384], msg, sizeof(msg) - 1, sig, sl), 0);
    ck_assert_int_eq(
        dpop_sig_verify(DPOP_ALG_ES256, g_priv[DPOP_ALG_RS256], msg, sizeof(msg) - 1, sig, sl), 0);
    ck_assert_int_eq(
        dpop_sig_verify(DPOP_ALG_ES256, g_priv[DPOP_ALG_EDDSA], msg, sizeof(msg) - 1, sig, sl), 0);
    ck_assert_int_eq(dpop_sig_verify(DPOP_ALG_ES256, NULL, msg, sizeof(msg) - 1, sig, sl), 0);
    free(sig);
    /* PS256 key A vs key B (both RSA): B does not verify A's signature */
    ck_assert_int_eq(
        dpop_sig_sign(DPOP_ALG_PS256, g_priv[DPOP_ALG_PS256], msg, sizeof(msg) - 1, &sig, &sl),
        DPOP_OK);
    ck_assert_int_eq(
        dpop_sig_verify(DPOP_ALG_PS256, g_priv[DPOP_ALG_RS256], msg, sizeof(msg) - 1, sig, sl), 0);
    free(sig);
    /* signing refuses a mismatched key too */
    ck_assert_int_eq(
        dpop_sig_sign(DPOP_ALG_ES384, g_priv[DPOP_ALG_ES256], msg, sizeof(msg) - 1, &sig, &sl),
        DPOP_ERR);
    ck_assert_ptr_null(sig);
    ck_assert_int_eq(
        dpop_sig_sign(DPOP_ALG_INVALID, g_priv[DPOP_ALG_ES256], msg, sizeof(msg) - 1, &sig, &sl),
        DPOP_ERR);
}
END_TEST

static int ec_order(dpop_alg_t a, BIGNUM **order)
{
    const char *grp = a == DPOP_ALG_ES256   ? "prime256v1"
                      : a == DPOP_ALG_ES384 ? "secp384r1"
                                            : "secp521r1";
    EC_GROUP *g = EC_GROUP_new_by_curve_name(OBJ_sn2nid(grp));
    *order = g ? BN_dup(EC_GROUP_get0_order(g)) : NULL;
    EC_GROUP_free(g);
    return *order != NULL;
}

/* DER-encoded ECDSA (what OpenSSL itself produces) is rejected by length;
 * S' = n - S (the "high-S" twin) is valid: JOSE has no low-S rule. */
START_TEST(test_sig_ecdsa_forms)
{
    dpop_alg_t a = (dpop_alg_t)_i;
    unsigned char *sig = NULL, *der = NULL, *hi = NULL;
    size_t sl = 0, cl;
    int derlen;
    ECDSA_SIG *es = NULL;
    BIGNUM *r, *s, *order = NULL, *s2;
    ck_assert_int_eq(dpop_sig_sign(a, g_priv[a], msg, sizeof(msg) - 1, &sig, &sl), DPOP_OK);
    cl = sl / 2;
    r = BN_bin2bn(sig, (int)cl, NULL);
    s = BN_bin2bn(sig + cl, (int)cl, NULL);
    es = ECDSA_SIG_new();
    ck_assert(ECDSA_SIG_set0(es, r, s));
    derlen = i2d_ECDSA_SIG(es, &der);
    ck_assert_int_gt(derlen, 0);
    ck_assert_int_eq(dpop_sig_verify(a, g_priv[a], msg, sizeof(msg) - 1, der, (size_t)derlen), 0);
    /* DER zero-padded up to the raw length is still not R||S */
    if ((size_t)derlen < sl) {
        unsigned char *padded = calloc(1, sl);
        memcpy(padded, der, (size_t)derlen);
        ck_assert_int_eq(dpop_sig_verify(a, g_priv[a], msg, sizeof(msg) - 1, padded, sl), 0);
        free(padded);
    }
    /* high-S */
    ck_assert(ec_order(a, &order));
    s2 = BN_new();
    ck_assert(BN_sub(s2, order, ECDSA_SIG_get0_s(es)));
    hi = malloc(sl);
    memcpy(hi, sig, cl);
    ck_assert_int_eq(BN_bn2binpad(s2, hi + cl, (int)cl), (int)cl);
    ck_assert(memcmp(hi, sig, sl) != 0);
    ck_assert_int_eq(dpop_sig_verify(a, g_priv[a], msg, sizeof(msg) - 1, hi, sl), 1);
    /* R = 0 or S = 0 never verifies */
    memset(hi + cl, 0, cl);
    ck_assert_int_eq(dpop_sig_verify(a, g_priv[a], msg, sizeof(msg) - 1, hi, sl), 0);
    memset(hi, 0, sl);
    ck_assert_int_eq(dpop_sig_verify(a, g_priv[a], msg, sizeof(msg) - 1, hi, sl), 0);
    /* S = n (out of range, same value mod n as 0) */
    memcpy(hi, sig, cl);
    ck_assert_int_eq(BN_bn2binpad(order, hi + cl, (int)cl), (int)cl);
    ck_assert_int_eq(dpop_sig_verify(a, g_priv[a], msg, sizeof(msg) - 1, hi, sl), 0);
    BN_free(s2);
    BN_free(order);
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    free(hi);
    free(sig);
}
END_TEST

/* Published vectors: RFC 7515 §A.3 (ES256) and RFC 8037 §A.4 (Ed25519). */
START_TEST(test_sig_rfc_vectors)
{
    static const char es256[] =
        "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
        "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djx"
        "La8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
    static const char ed[] =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-0"
        "9PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    json_t *ecj = J("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9"
                    "uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}");
    json_t *edj = J("{" OKP_OK "}");
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    dpop_jws_t jws;
    unsigned char *sig = NULL;
    size_t sl = 0;
    const char *dot;

    ck_assert_int_eq(dpop_jwk_import_public(ecj, &k, &f), DPOP_OK);
    ck_assert_int_eq(dpop_jws_parse(es256, strlen(es256), 4096, &jws, &f), DPOP_OK);
    ck_assert_int_eq(jws.alg, DPOP_ALG_ES256);
    ck_assert_int_eq(dpop_sig_verify(jws.alg, dpop_jwk_pkey(k), (const unsigned char *)es256,
                                     jws.signing_input_len, jws.sig, jws.siglen),
                     1);
    dpop_jws_clear(&jws);
    dpop_jwk_free(k);

    /* RFC 8037's payload is not JSON: verify at the signature layer */
    ck_assert_int_eq(dpop_jwk_import_public(edj, &k, &f), DPOP_OK);
    dot = strrchr(ed, '.');
    ck_assert_int_eq(dpop_b64url_decode(dot + 1, strlen(dot + 1), &sig, &sl), DPOP_OK);
    ck_assert_int_eq(dpop_sig_verify(DPOP_ALG_EDDSA, dpop_jwk_pkey(k), (const unsigned char *)ed,
                                     (size_t)(dot - ed), sig, sl),
                     1);
    ck_assert_int_eq(dpop_sig_verify(DPOP_ALG_EDDSA, dpop_jwk_pkey(k), (const unsigned char *)ed,
                                     (size_t)(dot - ed) - 1, sig, sl),
                     0);
    free(sig);
    dpop_jwk_free(k);
    json_decref(ecj);
    json_decref(edj);
}
END_TEST

/* ---------- JWS ---------- */

typedef struct {
    const char *header; /* raw JSON text, base64url-encoded by the test */
    const char *payload;
    const char *sig; /* already base64url */
    dpop_reason_t reason;
} jws_case_t;

#define HDR_OK "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"}"
#define PAY_OK "{\"jti\":\"x\",\"iat\":1}"
#define SIG_OK "AAAA"

static const jws_case_t jws_cases[] = {
    {HDR_OK, PAY_OK, SIG_OK, DPOP_REASON_NONE},
    {"{\"alg\":\"HS256\"}", PAY_OK, SIG_OK, DPOP_REASON_NONE}, /* alg judged by caller */
    {"{\"alg\":\"none\"}", PAY_OK, SIG_OK, DPOP_REASON_NONE},
    {NULL, PAY_OK, SIG_OK, DPOP_REASON_MALFORMED}, /* empty header */
    {HDR_OK, NULL, SIG_OK, DPOP_REASON_MALFORMED}, /* empty payload */
    {HDR_OK, PAY_OK, "", DPOP_REASON_NONE},        /* empty signature: judged by alg and key */
    {"{\"alg\":\"none\"}", PAY_OK, "", DPOP_REASON_NONE},
    {HDR_OK, PAY_OK, "AAAA=", DPOP_REASON_MALFORMED}, /* padded */
    {HDR_OK, PAY_OK, "AA+A", DPOP_REASON_MALFORMED},
    {HDR_OK, PAY_OK, "AB", DPOP_REASON_MALFORMED},        /* non-canonical bits */
    {HDR_OK, PAY_OK, "AAAA.AAAA", DPOP_REASON_MALFORMED}, /* four segments */
    {"[\"alg\"]", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED}, /* header not an object */
    {HDR_OK, "[1]", SIG_OK, DPOP_REASON_MALFORMED},
    {HDR_OK, "\"claims\"", SIG_OK, DPOP_REASON_MALFORMED},
    {"not json", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED},
    {"{\"alg\":\"ES256\",\"alg\":\"none\"}", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED},
    {HDR_OK, "{\"jti\":\"a\",\"jti\":\"b\"}", SIG_OK, DPOP_REASON_MALFORMED},
    {"{\"typ\":\"dpop+jwt\"}", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED}, /* alg missing */
    {"{\"alg\":256}", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED},          /* not a string */
    {"{\"alg\":null}", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED},
    {"{\"alg\":\"\"}", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED},
    {"{\"alg\":\"ES256\",\"crit\":[\"exp\"]}", PAY_OK, SIG_OK, DPOP_REASON_BAD_CLAIM},
    {"{\"alg\":\"ES256\",\"crit\":[]}", PAY_OK, SIG_OK, DPOP_REASON_BAD_CLAIM},
    {"{\"alg\":\"ES256\",\"crit\":\"b64\"}", PAY_OK, SIG_OK, DPOP_REASON_BAD_CLAIM},
    {"{\"alg\":\"ES256\",\"x\":\"\\u0000\"}", PAY_OK, SIG_OK, DPOP_REASON_MALFORMED},
};

START_TEST(test_jws_table)
{
    size_t i;
    for (i = 0; i < sizeof(jws_cases) / sizeof(jws_cases[0]); i++) {
        const jws_case_t *c = &jws_cases[i];
        char *s = mk_compact(c->header, c->payload, c->sig);
        dpop_jws_t j;
        dpop_failure_t f;
        int rc;
        dpop_failure_clear(&f);
        rc = dpop_jws_parse(s, strlen(s), 8192, &j, &f);
        if (c->reason == DPOP_REASON_NONE) {
            ck_assert_msg(rc == DPOP_OK, "jws case %zu: %s", i, f.detail);
            dpop_jws_clear(&j);
        }
        else {
            ck_assert_msg(rc == DPOP_ERR, "jws case %zu accepted", i);
            ck_assert_msg(f.code == c->reason, "jws case %zu: %s (%s)", i, dpop_reason_name(f.code),
                          f.detail);
            ck_assert_ptr_null(j.header);
            ck_assert_ptr_null(j.sig);
        }
        free(s);
    }
}
END_TEST

/* DPOP_JWS_ANY_PAYLOAD (dpopctl jws-verify, RFC 7515 §2): the payload is
 * any octets, empty included, only its base64url encoding is checked; the
 * JWT profile (no flag) still wants a JSON object. */
START_TEST(test_jws_any_payload)
{
    static const struct {
        const char *payload_b64; /* as is */
        int ok_any, ok_jwt;
    } cases[] = {
        {"Zm9v", 1, 0},       /* "foo" */
        {"", 1, 0},           /* detached (RFC 7515 Appendix F) */
        {"AP8A_w", 1, 0},     /* 00 ff 00 ff */
        {"eyJhIjoxfQ", 1, 1}, /* {"a":1} */
        {"W10", 1, 0},        /* [] */
        {"Zm9v=", 0, 0},      /* padded */
        {"Zm9+", 0, 0},       /* not base64url */
        {"Zm9w", 1, 0},       /* "fop" */
        {"Zg", 1, 0},         /* "f" */
        {"Zh", 0, 0},         /* stray bits: not canonical */
    };
    char *hb = dpop_b64url_encode((const unsigned char *)HDR_OK, strlen(HDR_OK));
    size_t i;
    ck_assert_ptr_nonnull(hb);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char s[256];
        dpop_jws_t j;
        dpop_failure_t f;
        int rc;
        snprintf(s, sizeof(s), "%s.%s.AAAA", hb, cases[i].payload_b64);
        dpop_failure_clear(&f);
        rc = dpop_jws_parse_flags(s, strlen(s), 8192, DPOP_JWS_ANY_PAYLOAD, &j, &f);
        ck_assert_msg((rc == DPOP_OK) == cases[i].ok_any, "any %zu: %s", i, f.detail);
        if (rc == DPOP_OK) {
            ck_assert_ptr_null(j.payload);
            ck_assert_ptr_nonnull(j.header);
            ck_assert_int_eq(j.alg, DPOP_ALG_ES256);
            ck_assert_uint_eq(j.signing_input_len, strlen(hb) + 1 + strlen(cases[i].payload_b64));
            ck_assert_uint_eq(j.siglen, 3);
            dpop_jws_clear(&j);
        }
        else {
            ck_assert_int_eq(f.code, DPOP_REASON_MALFORMED);
        }
        dpop_failure_clear(&f);
        rc = dpop_jws_parse(s, strlen(s), 8192, &j, &f);
        ck_assert_msg((rc == DPOP_OK) == cases[i].ok_jwt, "jwt %zu: %s", i, f.detail);
        if (rc == DPOP_OK)
            dpop_jws_clear(&j);
        else
            ck_assert_int_eq(f.code, DPOP_REASON_MALFORMED);
    }
    /* the header stays strict with the flag */
    {
        static const char *const bad[] = {".Zm9v.AAAA", "Zm9v.Zm9v.AAAA", "Zm9v.AAAA", "a.b.c.d"};
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            dpop_jws_t j;
            dpop_failure_t f;
            dpop_failure_clear(&f);
            ck_assert_int_eq(
                dpop_jws_parse_flags(bad[i], strlen(bad[i]), 8192, DPOP_JWS_ANY_PAYLOAD, &j, &f),
                DPOP_ERR);
            ck_assert_int_eq(f.code, DPOP_REASON_MALFORMED);
        }
    }
    free(hb);
}
END_TEST

START_TEST(test_jws_structure)
{
    static const char *const bad[] = {"",          ".",       "..",  "abc",
                                      "abc.def",   "a.b.c.d", "...", "eyJhbGciOiJFUzI1NiJ9..AAAA",
                                      ".eyJ9.AAAA"};
    size_t i;
    dpop_jws_t j;
    dpop_failure_t f;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dpop_failure_clear(&f);
        ck_assert_int_eq(dpop_jws_parse(bad[i], strlen(bad[i]), 8192, &j, &f), DPOP_ERR);
        ck_assert_msg(f.code == DPOP_REASON_MALFORMED, "structure case %zu: %s", i,
                      dpop_reason_name(f.code));
    }
    /* a NUL byte inside the given length */
    {
        char *s = mk_compact(HDR_OK, PAY_OK, SIG_OK);
        size_t n = strlen(s);
        s[n - 2] = '\0';
        ck_assert_int_eq(dpop_jws_parse(s, n, 8192, &j, &f), DPOP_ERR);
        ck_assert_int_eq(f.code, DPOP_REASON_MALFORMED);
        free(s);
    }
}
END_TEST

START_TEST(test_jws_fields_and_size)
{
    char *s = mk_compact("{\"alg\":\"ES384\",\"kid\":\"k\"}", PAY_OK, "AAECAw");
    dpop_jws_t j;
    dpop_failure_t f;
    size_t len = strlen(s);
    const char *jti = NULL;
    /* size cap first: one byte over is too_large, even for valid input */
    ck_assert_int_eq(dpop_jws_parse(s, len, len - 1, &j, &f), DPOP_ERR);
    ck_assert_int_eq(f.code, DPOP_REASON_TOO_LARGE);
    ck_assert_int_eq(dpop_jws_parse("x", 1 << 20, 100, &j, &f), DPOP_ERR); /* not read */
    ck_assert_int_eq(f.code, DPOP_REASON_TOO_LARGE);
    ck_assert_int_eq(dpop_jws_parse(s, len, len, &j, &f), DPOP_OK);
    ck_assert_int_eq(j.alg, DPOP_ALG_ES384);
    ck_assert_str_eq(j.alg_name, "ES384");
    ck_assert_ptr_eq(j.header_b64, s);
    ck_assert_uint_eq(j.header_b64_len, (size_t)(strchr(s, '.') - s));
    ck_assert_uint_eq(j.signing_input_len, (size_t)(strrchr(s, '.') - s));
    ck_assert_uint_eq(j.siglen, 4);
    ck_assert(memcmp(j.sig, "\x00\x01\x02\x03", 4) == 0);
    ck_assert_int_eq(dpop_json_get_string(j.payload, "jti", &jti), 1);
    ck_assert_str_eq(jti, "x");
    dpop_jws_clear(&j);
    dpop_jws_clear(&j); /* idempotent */
    free(s);
    /* unknown alg: parsed, alg invalid, name kept for the caller's message */
    s = mk_compact("{\"alg\":\"XS999\"}", PAY_OK, SIG_OK);
    ck_assert_int_eq(dpop_jws_parse(s, strlen(s), 8192, &j, &f), DPOP_OK);
    ck_assert_int_eq(j.alg, DPOP_ALG_INVALID);
    ck_assert_str_eq(j.alg_name, "XS999");
    dpop_jws_clear(&j);
    free(s);
}
END_TEST

START_TEST(test_jws_sign_verify)
{
    dpop_alg_t a = (dpop_alg_t)_i;
    json_t *h = json_object(), *p = json_object();
    char *c = NULL, *hdr = NULL;
    dpop_jws_t j;
    dpop_failure_t f;
    dpop_jwk_t *k = NULL;
    unsigned char *raw = NULL;
    size_t rl = 0;
    char want[2048];
    json_object_set_new(h, "typ", json_string("dpop+jwt"));
    json_object_set_new(h, "alg", json_string(dpop_alg_name(a)));
    json_object_set(h, "jwk", g_pub[a]);
    json_object_set_new(p, "jti", json_string("id-1"));
    json_object_set_new(p, "htm", json_string("GET"));
    json_object_set_new(p, "iat", json_integer(1700000000));
    ck_assert_int_eq(dpop_jws_sign(h, p, a, g_priv[a], &c), DPOP_OK);
    ck_assert_int_eq(dpop_jws_parse(c, strlen(c), 16384, &j, &f), DPOP_OK);
    ck_assert_int_eq(j.alg, a);
    ck_assert_int_eq(dpop_jwk_import_public(json_object_get(j.header, "jwk"), &k, &f), DPOP_OK);
    ck_assert_int_eq(dpop_sig_verify(j.alg, dpop_jwk_pkey(k), (const unsigned char *)c,
                                     j.signing_input_len, j.sig, j.siglen),
                     1);
    /* compact serialization, members in insertion order */
    ck_assert_int_eq(dpop_b64url_decode(j.header_b64, j.header_b64_len, &raw, &rl), DPOP_OK);
    hdr = json_dumps(g_pub[a], JSON_COMPACT);
    snprintf(want, sizeof(want), "{\"typ\":\"dpop+jwt\",\"alg\":\"%s\",\"jwk\":%s}",
             dpop_alg_name(a), hdr);
    ck_assert_str_eq((char *)raw, want);
    free(raw);
    raw = NULL;
    ck_assert_int_eq(dpop_b64url_decode(c + j.header_b64_len + 1,
                                        j.signing_input_len - j.header_b64_len - 1, &raw, &rl),
                     DPOP_OK);
    ck_assert_str_eq((char *)raw, "{\"jti\":\"id-1\",\"htm\":\"GET\",\"iat\":1700000000}");
    free(raw);
    free(hdr);
    dpop_jwk_free(k);
    dpop_jws_clear(&j);
    free(c);
    /* errors: not objects, wrong key for alg */
    {
        json_t *arr = json_array();
        ck_assert_int_eq(dpop_jws_sign(p, arr, a, g_priv[a], &c), DPOP_ERR);
        ck_assert_ptr_null(c);
        json_decref(arr);
    }
    ck_assert_int_eq(
        dpop_jws_sign(h, p, a, g_priv[a == DPOP_ALG_EDDSA ? DPOP_ALG_ES256 : DPOP_ALG_EDDSA], &c),
        DPOP_ERR);
    ck_assert_ptr_null(c);
    json_decref(h);
    json_decref(p);
}
END_TEST

/* ---------- JWK Sets ---------- */

/* A JWS with alg a signed by the generated key of slot ka, optional kid. */
static char *signed_jws_by(dpop_alg_t a, dpop_alg_t ka, const char *kid)
{
    json_t *h = json_pack("{s:s}", "alg", dpop_alg_name(a)), *p = json_pack("{s:s}", "sub", "u");
    char *c = NULL;
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    ck_assert_int_eq(dpop_jws_sign(h, p, a, g_priv[ka], &c), DPOP_OK);
    json_decref(h);
    json_decref(p);
    return c;
}

static char *signed_jws(dpop_alg_t a, const char *kid)
{
    return signed_jws_by(a, a, kid);
}

/* A public JWK of the generated key for alg with extra members. */
static json_t *pub_with(dpop_alg_t a, const char *extra_json)
{
    json_t *k = json_deep_copy(g_pub[a]);
    if (extra_json) {
        json_t *x = J(extra_json);
        json_object_update(k, x);
        json_decref(x);
    }
    return k;
}

static dpop_jwks_t *jwks_of(json_t *keys_array)
{
    json_t *set = json_pack("{s:o}", "keys", keys_array);
    char *s = json_dumps(set, JSON_COMPACT), err[256] = "";
    dpop_jwks_t *ks = NULL;
    ck_assert_msg(dpop_jwks_parse(s, strlen(s), &ks, err, sizeof(err)) == DPOP_OK, "%s", err);
    free(s);
    json_decref(set);
    return ks;
}

/* Verify compact against ks; return the reason (NONE on success). */
static dpop_reason_t jwks_check(dpop_jwks_t *ks, const char *compact, dpop_alg_mask_t mask,
                                const char **kid, char *detail, size_t dsz)
{
    dpop_jws_t j;
    dpop_failure_t f;
    dpop_reason_t r = DPOP_REASON_NONE;
    dpop_failure_clear(&f);
    ck_assert_int_eq(dpop_jws_parse(compact, strlen(compact), 65536, &j, &f), DPOP_OK);
    if (dpop_jwks_verify(ks, &j, mask, kid, &f) != DPOP_OK) {
        r = f.code;
        ck_assert(r != DPOP_REASON_NONE);
    }
    if (detail)
        snprintf(detail, dsz, "%s", f.detail);
    dpop_jws_clear(&j);
    return r;
}

START_TEST(test_jwks_selection)
{
    dpop_jwks_t *ks;
    const char *kid = NULL;
    char detail[DPOP_DETAIL_MAX];
    char *es_a = signed_jws(DPOP_ALG_ES256, "a"), *es_nokid = signed_jws(DPOP_ALG_ES256, NULL);
    char *es_zz = signed_jws(DPOP_ALG_ES256, "zz"), *ed = signed_jws(DPOP_ALG_EDDSA, NULL);
    char *rs = signed_jws(DPOP_ALG_RS256, "r"),
         *ps = signed_jws_by(DPOP_ALG_PS256, DPOP_ALG_RS256, "r");
    char *es_b = signed_jws(DPOP_ALG_ES256, "b");

    /* key "b" is a different ES256 key (the ES384 slot is P-384: use the
     * private of a fresh P-256 instead) */
    json_t *other = NULL, *other_pub = NULL;
    EVP_PKEY *other_pk = NULL;
    char err[128];
    ck_assert_int_eq(dpop_jwk_generate(DPOP_ALG_ES256, &other), DPOP_OK);
    ck_assert_int_eq(dpop_jwk_import_private(other, &other_pk, &other_pub, err, sizeof(err)),
                     DPOP_OK);
    json_object_set_new(other_pub, "kid", json_string("b"));

    ks = jwks_of(json_pack("[o,o,o,o]", pub_with(DPOP_ALG_ES256, "{\"kid\":\"a\"}"),
                           json_incref(other_pub),
                           pub_with(DPOP_ALG_RS256, "{\"kid\":\"r\",\"use\":\"sig\"}"),
                           pub_with(DPOP_ALG_EDDSA, NULL)));
    ck_assert_uint_eq(dpop_jwks_count(ks), 4);
    ck_assert_uint_eq(dpop_jwks_skipped(ks), 0);
    /* kid selects */
    ck_assert_int_eq(jwks_check(ks, es_a, DPOP_ALG_MASK_DEFAULT, &kid, NULL, 0), DPOP_REASON_NONE);
    ck_assert_str_eq(kid, "a");
    /* kid "b" names the other key: the signature by "a"'s key fails */
    ck_assert_int_eq(jwks_check(ks, es_b, DPOP_ALG_MASK_DEFAULT, &kid, NULL, 0),
                     DPOP_REASON_BAD_SIGNATURE);
    ck_assert_ptr_null(kid);
    /* no kid: every fitting key is tried */
    ck_assert_int_eq(jwks_check(ks, es_nokid, DPOP_ALG_MASK_DEFAULT, &kid, NULL, 0),
                     DPOP_REASON_NONE);
    ck_assert_str_eq(kid, "a");
    ck_assert_int_eq(jwks_check(ks, ed, DPOP_ALG_MASK_DEFAULT, &kid, NULL, 0), DPOP_REASON_NONE);
    ck_assert_ptr_null(kid); /* that key has no kid */
    /* one RSA key serves RS and PS */
    ck_assert_int_eq(jwks_check(ks, rs, DPOP_ALG_MASK_DEFAULT, &kid, NULL, 0), DPOP_REASON_NONE);
    ck_assert_int_eq(jwks_check(ks, ps, DPOP_ALG_MASK_DEFAULT, &kid, NULL, 0), DPOP_REASON_NONE);
    /* unknown kid: bad_signature naming it */
    ck_assert_int_eq(jwks_check(ks, es_zz, DPOP_ALG_MASK_DEFAULT, &kid, detail, sizeof(detail)),
                     DPOP_REASON_BAD_SIGNATURE);
    ck_assert_ptr_nonnull(strstr(detail, "no key with kid \"zz\""));
    /* alg outside the allow-list */
    ck_assert_int_eq(jwks_check(ks, rs, DPOP_ALG_BIT(DPOP_ALG_ES256), &kid, NULL, 0),
                     DPOP_REASON_BAD_ALG);
    dpop_jwks_free(ks);
    json_decref(other);
    json_decref(other_pub);
    EVP_PKEY_free(other_pk);
    free(es_a);
    free(es_b);
    free(es_nokid);
    free(es_zz);
    free(ed);
    free(rs);
    free(ps);
}
END_TEST

typedef struct {
    const char *extra;  /* members added to the ES256 key */
    dpop_reason_t want; /* verifying an ES256 JWS without kid */
} jwks_excl_case_t;

static const jwks_excl_case_t jwks_excl_cases[] = {
    {NULL, DPOP_REASON_NONE},
    {"{\"use\":\"sig\"}", DPOP_REASON_NONE},
    {"{\"use\":\"enc\"}", DPOP_REASON_BAD_SIGNATURE},
    {"{\"key_ops\":[\"verify\"]}", DPOP_REASON_NONE},
    {"{\"key_ops\":[\"sign\"]}", DPOP_REASON_BAD_SIGNATURE},
    {"{\"key_ops\":[\"encrypt\",\"wrapKey\"]}", DPOP_REASON_BAD_SIGNATURE},
    {"{\"alg\":\"ES256\"}", DPOP_REASON_NONE},
    {"{\"alg\":\"ES384\"}", DPOP_REASON_BAD_SIGNATURE},
    {"{\"alg\":\"PS256\"}", DPOP_REASON_BAD_SIGNATURE},
};

START_TEST(test_jwks_exclusion)
{
    size_t i;
    char *c = signed_jws(DPOP_ALG_ES256, NULL);
    for (i = 0; i < sizeof(jwks_excl_cases) / sizeof(jwks_excl_cases[0]); i++) {
        dpop_jwks_t *ks =
            jwks_of(json_pack("[o]", pub_with(DPOP_ALG_ES256, jwks_excl_cases[i].extra)));
        ck_assert_msg(jwks_check(ks, c, DPOP_ALG_MASK_DEFAULT, NULL, NULL, 0) ==
                          jwks_excl_cases[i].want,
                      "exclusion case %zu", i);
        dpop_jwks_free(ks);
    }
    free(c);
}
END_TEST

START_TEST(test_jwks_load_errors)
{
    dpop_jwks_t *ks = NULL;
    char err[256];
    json_t *arr;
    char *s;
    int i;
    static const char *const bad[] = {
        "[]",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AQAB\"}]}",    /* private: refused outright */
        "{\"keys\":[{\"kty\":\"oct\"},{\"kty\":\"XYZ\"}]}", /* nothing usable */
        "{\"kty\":\"EC\"}",                                 /* single bad JWK */
        "{\"keys\":[1,2]}",
        "{\"keys\":[{" EC_OK "}],\"keys\":[]}", /* duplicate member */
        "not json",
    };
    for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
        err[0] = '\0';
        ck_assert_msg(dpop_jwks_parse(bad[i], strlen(bad[i]), &ks, err, sizeof(err)) == DPOP_ERR,
                      "bad set %d accepted", i);
        ck_assert_ptr_null(ks);
        ck_assert_msg(err[0], "bad set %d: no message", i);
    }
    /* the private-key refusal never prints the secret */
    ck_assert_int_eq(dpop_jwks_parse(bad[3], strlen(bad[3]), &ks, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_null(strstr(err, "AQAB"));
    /* unusable keys are skipped and counted */
    {
        const char *mixed = "{\"keys\":[{\"kty\":\"oct\"},{" EC_OK "},{\"kty\":\"XYZ\"},"
                            "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"" R8037_X "\"}]}";
        ck_assert_int_eq(dpop_jwks_parse(mixed, strlen(mixed), &ks, err, sizeof(err)), DPOP_OK);
        ck_assert_uint_eq(dpop_jwks_count(ks), 1);
        ck_assert_uint_eq(dpop_jwks_skipped(ks), 3);
        dpop_jwks_free(ks);
    }
    /* a single JWK is a set of one */
    {
        const char *one = "{" EC_OK ",\"kid\":\"solo\"}";
        ck_assert_int_eq(dpop_jwks_parse(one, strlen(one), &ks, err, sizeof(err)), DPOP_OK);
        ck_assert_uint_eq(dpop_jwks_count(ks), 1);
        dpop_jwks_free(ks);
    }
    /* max keys: exactly DPOP_JWKS_MAX_KEYS is fine, one more is not */
    arr = json_array();
    for (i = 0; i < DPOP_JWKS_MAX_KEYS; i++)
        json_array_append_new(arr, J("{" OKP_OK "}"));
    {
        json_t *set = json_pack("{s:O}", "keys", arr);
        s = json_dumps(set, JSON_COMPACT);
        json_decref(set);
    }
    ck_assert_int_eq(dpop_jwks_parse(s, strlen(s), &ks, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(dpop_jwks_count(ks), DPOP_JWKS_MAX_KEYS);
    dpop_jwks_free(ks);
    free(s);
    json_array_append_new(arr, J("{" OKP_OK "}"));
    {
        json_t *set = json_pack("{s:O}", "keys", arr);
        s = json_dumps(set, JSON_COMPACT);
        json_decref(set);
    }
    ck_assert_int_eq(dpop_jwks_parse(s, strlen(s), &ks, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_null(ks);
    free(s);
    json_decref(arr);
    /* size bound */
    {
        size_t n = DPOP_JWKS_MAX_BYTES + 10;
        char *big = malloc(n + 1);
        memset(big, ' ', n);
        memcpy(big, "{" EC_OK "}", strlen("{" EC_OK "}"));
        big[n] = '\0';
        ck_assert_int_eq(dpop_jwks_parse(big, n, &ks, err, sizeof(err)), DPOP_ERR);
        free(big);
    }
}
END_TEST

START_TEST(test_jwks_file)
{
    char path[] = "/tmp/test_jose_jwksXXXXXX", err[512];
    int fd = mkstemp(path);
    const char *content = "{\"keys\":[{" EC_OK ",\"kid\":\"f\"}]}";
    dpop_jwks_t *ks = NULL;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, strlen(content)), (int)strlen(content));
    close(fd);
    ck_assert_int_eq(dpop_jwks_load_file(path, &ks, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(dpop_jwks_count(ks), 1);
    dpop_jwks_free(ks);
    /* broken file: message names the file */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, "{\"keys\":", 8), 8);
    close(fd);
    ck_assert_int_eq(dpop_jwks_load_file(path, &ks, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(err, path));
    unlink(path);
    ck_assert_int_eq(dpop_jwks_load_file(path, &ks, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_int_eq(dpop_jwks_load_file("/", &ks, err, sizeof(err)), DPOP_ERR);
}
END_TEST

START_TEST(test_jwks_kid_not_string)
{
    dpop_jwks_t *ks = jwks_of(json_pack("[o]", pub_with(DPOP_ALG_ES256, NULL)));
    json_t *h = json_pack("{s:s,s:i}", "alg", "ES256", "kid", 5), *p = json_pack("{s:s}", "a", "b");
    char *c = NULL;
    ck_assert_int_eq(dpop_jws_sign(h, p, DPOP_ALG_ES256, g_priv[DPOP_ALG_ES256], &c), DPOP_OK);
    ck_assert_int_eq(jwks_check(ks, c, DPOP_ALG_MASK_DEFAULT, NULL, NULL, 0),
                     DPOP_REASON_BAD_SIGNATURE);
    free(c);
    json_decref(h);
    json_decref(p);
    dpop_jwks_free(ks);
}
END_TEST

/* ---------- table hash ---------- */

/* dpop_hash_bytes: deterministic per seed, depends on every byte, on the
 * length and on the seed, reads only n bytes (ASan checks the tail load),
 * and spreads inputs that differ in one byte over the low index bits. */
START_TEST(test_hash_bytes)
{
    unsigned char buf[64], *tail;
    uint64_t h0, seed = 0;
    size_t n, i;
    unsigned lowbits = 0;
    for (i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 7 + 1);
    for (n = 0; n <= sizeof(buf); n++) {
        /* exact-size heap copy: any over-read is an ASan failure */
        tail = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(tail);
        memcpy(tail, buf, n);
        h0 = dpop_hash_bytes(42, tail, n);
        ck_assert_uint_eq(h0, dpop_hash_bytes(42, buf, n));
        ck_assert_uint_ne(h0, dpop_hash_bytes(43, buf, n));
        if (n < sizeof(buf))
            ck_assert_uint_ne(h0, dpop_hash_bytes(42, buf, n + 1));
        for (i = 0; i < n; i++) {
            tail[i] ^= 0x01;
            ck_assert_msg(dpop_hash_bytes(42, tail, n) != h0, "byte %zu of %zu ignored", i, n);
            tail[i] ^= 0x01;
        }
        free(tail);
    }
    /* "a" and "a\0" differ although the zero-padded tail word is equal */
    ck_assert_uint_ne(dpop_hash_bytes(0, "a", 1), dpop_hash_bytes(0, "a\0", 2));
    /* 16 keys differing in their last byte land in >= 8 of 16 buckets */
    for (i = 0; i < 16; i++) {
        buf[40] = (unsigned char)i;
        lowbits |= 1u << (dpop_hash_bytes(7, buf, 41) & 15);
    }
    ck_assert_int_ge(__builtin_popcount(lowbits), 8);
    /* the finalizer is a bijection with mix64(0) == 0 and spreads one bit */
    ck_assert_uint_eq(dpop_hash_mix64(0), 0);
    ck_assert_uint_ne(dpop_hash_mix64(1), 1);
    ck_assert_int_ge(__builtin_popcountll(dpop_hash_mix64(1) ^ dpop_hash_mix64(3)), 16);
    ck_assert_int_eq(dpop_hash_seed(&seed), 0);
}
END_TEST

/* ---------- key cache ---------- */

START_TEST(test_keycache_hit_miss)
{
    dpop_keycache_t *c = dpop_keycache_create(0);
    dpop_jwk_t *k = imported_key(DPOP_ALG_ES256), *got;
    dpop_alg_t alg = DPOP_ALG_INVALID;
    const char *h1 = "eyJhbGciOiJFUzI1NiJ9", *h2 = "eyJhbGciOiJFUzI1NiJ8";
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(dpop_keycache_get(c, h1, strlen(h1), &alg));
    dpop_keycache_put(c, h1, strlen(h1), k, DPOP_ALG_ES256);
    ck_assert_uint_eq(dpop_keycache_size(c), 1);
    got = dpop_keycache_get(c, h1, strlen(h1), &alg);
    ck_assert_ptr_eq(got, k);
    ck_assert_int_eq(alg, DPOP_ALG_ES256);
    dpop_jwk_free(got);
    /* same length, one byte differs; prefix; longer */
    ck_assert_ptr_null(dpop_keycache_get(c, h2, strlen(h2), &alg));
    ck_assert_ptr_null(dpop_keycache_get(c, h1, strlen(h1) - 1, &alg));
    ck_assert_ptr_null(dpop_keycache_get(c, "eyJhbGciOiJFUzI1NiJ9x", strlen(h1) + 1, &alg));
    ck_assert_ptr_null(dpop_keycache_get(c, h1, 0, &alg));
    /* re-inserting the same header keeps one entry */
    dpop_keycache_put(c, h1, strlen(h1), k, DPOP_ALG_ES256);
    ck_assert_uint_eq(dpop_keycache_size(c), 1);
    dpop_jwk_free(k); /* the cache still holds its own reference */
    got = dpop_keycache_get(c, h1, strlen(h1), NULL);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(strlen(dpop_jwk_thumbprint(got)), DPOP_JKT_LEN);
    dpop_jwk_free(got);
    dpop_keycache_free(c);
    ck_assert_ptr_null(dpop_keycache_get(NULL, h1, strlen(h1), &alg));
    dpop_keycache_put(NULL, h1, strlen(h1), k, DPOP_ALG_ES256);
    ck_assert_uint_eq(dpop_keycache_size(NULL), 0);
}
END_TEST

START_TEST(test_keycache_lru)
{
    dpop_keycache_t *c = dpop_keycache_create(3);
    dpop_jwk_t *k = imported_key(DPOP_ALG_EDDSA), *got;
    char h[8][8];
    int i;
    for (i = 0; i < 8; i++)
        snprintf(h[i], sizeof(h[i]), "hdr-%d", i);
    dpop_keycache_put(c, h[0], 5, k, DPOP_ALG_EDDSA);
    dpop_keycache_put(c, h[1], 5, k, DPOP_ALG_EDDSA);
    dpop_keycache_put(c, h[2], 5, k, DPOP_ALG_EDDSA);
    ck_assert_uint_eq(dpop_keycache_size(c), 3);
    /* touch 0, so 1 is now least recently used */
    dpop_jwk_free(dpop_keycache_get(c, h[0], 5, NULL));
    dpop_keycache_put(c, h[3], 5, k, DPOP_ALG_EDDSA);
    ck_assert_uint_eq(dpop_keycache_size(c), 3);
    ck_assert_ptr_null(dpop_keycache_get(c, h[1], 5, NULL));
    for (i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        got = dpop_keycache_get(c, h[i], 5, NULL);
        ck_assert_msg(got != NULL, "entry %d evicted", i);
        dpop_jwk_free(got);
    }
    /* order now 3,2,0 (most recent first) -> inserting 4 and 5 evicts 0 then 2 */
    dpop_jwk_free(dpop_keycache_get(c, h[2], 5, NULL));
    dpop_jwk_free(dpop_keycache_get(c, h[3], 5, NULL));
    dpop_keycache_put(c, h[4], 5, k, DPOP_ALG_EDDSA);
    ck_assert_ptr_null(dpop_keycache_get(c, h[0], 5, NULL));
    dpop_keycache_put(c, h[5], 5, k, DPOP_ALG_EDDSA);
    ck_assert_ptr_null(dpop_keycache_get(c, h[2], 5, NULL));
    ck_assert_uint_eq(dpop_keycache_size(c), 3);
    dpop_jwk_free(k);
    dpop_keycache_free(c);
}
END_TEST

/* A key handed out by get() stays usable after the cache evicts it and
 * after the cache is destroyed. */
START_TEST(test_keycache_refcount)
{
    dpop_keycache_t *c = dpop_keycache_create(1);
    dpop_jwk_t *k = imported_key(DPOP_ALG_ES256), *k2 = imported_key(DPOP_ALG_EDDSA), *held;
    unsigned char *sig = NULL;
    size_t sl = 0;
    dpop_keycache_put(c, "A", 1, k, DPOP_ALG_ES256);
    dpop_jwk_free(k); /* cache is the only owner now */
    held = dpop_keycache_get(c, "A", 1, NULL);
    ck_assert_ptr_nonnull(held);
    dpop_keycache_put(c, "B", 1, k2, DPOP_ALG_EDDSA); /* evicts A */
    ck_assert_ptr_null(dpop_keycache_get(c, "A", 1, NULL));
    dpop_keycache_free(c);
    ck_assert_int_eq(
        dpop_sig_sign(DPOP_ALG_ES256, g_priv[DPOP_ALG_ES256], msg, sizeof(msg) - 1, &sig, &sl),
        DPOP_OK);
    ck_assert_int_eq(
        dpop_sig_verify(DPOP_ALG_ES256, dpop_jwk_pkey(held), msg, sizeof(msg) - 1, sig, sl), 1);
    ck_assert_uint_eq(strlen(dpop_jwk_thumbprint(held)), DPOP_JKT_LEN);
    free(sig);
    dpop_jwk_free(held);
    dpop_jwk_free(k2);
}
END_TEST

/* Many distinct headers: the size stays bounded and the newest entry is
 * always found (the chain limit never hides a fresh insert under normal
 * load thanks to the seeded hash). */
START_TEST(test_keycache_bounded)
{
    dpop_keycache_t *c = dpop_keycache_create(64);
    dpop_jwk_t *k = imported_key(DPOP_ALG_ES256), *got;
    char h[64];
    int i, len, found = 0;
    for (i = 0; i < 5000; i++) {
        len = snprintf(h, sizeof(h), "eyJhbGciOiJFUzI1NiJ9-%d", i);
        dpop_keycache_put(c, h, (size_t)len, k, DPOP_ALG_ES256);
        ck_assert_uint_le(dpop_keycache_size(c), 64);
    }
    for (i = 5000 - 32; i < 5000; i++) {
        len = snprintf(h, sizeof(h), "eyJhbGciOiJFUzI1NiJ9-%d", i);
        if ((got = dpop_keycache_get(c, h, (size_t)len, NULL))) {
            found++;
            dpop_jwk_free(got);
        }
    }
    ck_assert_int_eq(found, 32);
    /* oversized headers are simply not cached */
    {
        size_t big = 10000;
        char *b = malloc(big);
        memset(b, 'A', big);
        dpop_keycache_put(c, b, big, k, DPOP_ALG_ES256);
        ck_assert_ptr_null(dpop_keycache_get(c, b, big, NULL));
        free(b);
    }
    dpop_keycache_free(c);
    dpop_jwk_free(k);
}
END_TEST

#define KC_THREADS 4
#define KC_KEYS 4
#define KC_HEADERS 24
#define KC_ITERS 20000

typedef struct {
    dpop_keycache_t *c;
    dpop_jwk_t **keys;
    int id;
    long hits, errors;
} kc_arg_t;

/* Header i always maps to key i % KC_KEYS and alg; every hit must return
 * exactly that key, whatever the eviction interleaving. */
static void *kc_worker(void *p)
{
    kc_arg_t *a = p;
    unsigned seed = (unsigned)a->id * 7919u + 1;
    int n;
    for (n = 0; n < KC_ITERS; n++) {
        char h[64];
        int i, len;
        dpop_alg_t alg = DPOP_ALG_INVALID;
        dpop_jwk_t *got;
        seed = seed * 1103515245u + 12345u;
        i = (int)((seed >> 16) % KC_HEADERS);
        len = snprintf(h, sizeof(h), "header-%d-%s", i, "eyJ0eXAiOiJkcG9wK2p3dCJ9");
        got = dpop_keycache_get(a->c, h, (size_t)len, &alg);
        if (got) {
            a->hits++;
            if (got != a->keys[i % KC_KEYS] || alg != (dpop_alg_t)(1 + i % 3) ||
                strlen(dpop_jwk_thumbprint(got)) != DPOP_JKT_LEN)
                a->errors++;
            dpop_jwk_free(got);
        }
        else {
            dpop_keycache_put(a->c, h, (size_t)len, a->keys[i % KC_KEYS], (dpop_alg_t)(1 + i % 3));
        }
    }
    return NULL;
}

START_TEST(test_keycache_threads)
{
    dpop_keycache_t *c = dpop_keycache_create(8);
    dpop_jwk_t *keys[KC_KEYS];
    pthread_t th[KC_THREADS];
    kc_arg_t args[KC_THREADS];
    long hits = 0;
    int i;
    keys[0] = imported_key(DPOP_ALG_ES256);
    keys[1] = imported_key(DPOP_ALG_ES384);
    keys[2] = imported_key(DPOP_ALG_EDDSA);
    keys[3] = imported_key(DPOP_ALG_RS256);
    for (i = 0; i < KC_THREADS; i++) {
        args[i] = (kc_arg_t){c, keys, i, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, kc_worker, &args[i]), 0);
    }
    for (i = 0; i < KC_THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].errors, 0);
        hits += args[i].hits;
    }
    ck_assert_uint_le(dpop_keycache_size(c), 8);
    ck_assert_int_gt(hits, 0);
    dpop_keycache_free(c);
    /* the cache dropped all its references: ours are the last ones */
    for (i = 0; i < KC_KEYS; i++)
        dpop_jwk_free(keys[i]);
}
END_TEST

/* ---------- suite ---------- */

static Suite *jose_suite(void)
{
    Suite *s = suite_create("jose");
    TCase *tc;

    tc = tcase_create("base64url");
    tcase_add_test(tc, test_b64_table);
    tcase_add_test(tc, test_b64_all_lengths);
    tcase_add_test(tc, test_b64_is_sha256);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_test(tc, test_json_table);
    tcase_add_test(tc, test_json_big_numbers);
    tcase_add_test(tc, test_json_error_no_echo);
    tcase_add_test(tc, test_json_depth);
    tcase_add_test(tc, test_json_size);
    tcase_add_test(tc, test_json_get_string);
    tcase_add_test(tc, test_json_get_int);
    suite_add_tcase(s, tc);

    tc = tcase_create("alg");
    tcase_add_test(tc, test_alg_names);
    tcase_add_test(tc, test_alg_mask);
    suite_add_tcase(s, tc);

    tc = tcase_create("jwk");
    tcase_add_test(tc, test_jwk_table);
    tcase_add_test(tc, test_jwk_rsa_sizes);
    tcase_add_test(tc, test_jwk_detail_no_key_material);
    tcase_add_test(tc, test_jwk_fits_alg);
    tcase_add_test(tc, test_jwk_accessors);
    suite_add_tcase(s, tc);

    tc = tcase_create("thumbprint");
    tcase_add_test(tc, test_thumbprint_vectors);
    tcase_add_test(tc, test_thumbprint_private_and_errors);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("private_keys");
    tcase_add_loop_test(tc, test_jwk_generate_import, 1, DPOP_ALG__COUNT);
    tcase_add_test(tc, test_jwk_import_private_errors);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("signatures");
    tcase_add_loop_test(tc, test_sig_round_trip, 1, DPOP_ALG__COUNT);
    tcase_add_test(tc, test_sig_wrong_key);
    tcase_add_loop_test(tc, test_sig_jwk_verify, 1, DPOP_ALG__COUNT);
    tcase_add_test(tc, test_sig_jwk_verify_threads);
    tcase_add_loop_test(tc, test_sig_ecdsa_forms, DPOP_ALG_ES256, DPOP_ALG_ES512 + 1);
    tcase_add_test(tc, test_sig_rfc_vectors);
    suite_add_tcase(s, tc);

    tc = tcase_create("jws");
    tcase_add_test(tc, test_jws_table);
    tcase_add_test(tc, test_jws_structure);
    tcase_add_test(tc, test_jws_any_payload);
    tcase_add_test(tc, test_jws_fields_and_size);
    tcase_add_loop_test(tc, test_jws_sign_verify, 1, DPOP_ALG__COUNT);
    suite_add_tcase(s, tc);

    tc = tcase_create("jwks");
    tcase_add_test(tc, test_jwks_selection);
    tcase_add_test(tc, test_jwks_exclusion);
    tcase_add_test(tc, test_jwks_load_errors);
    tcase_add_test(tc, test_jwks_file);
    tcase_add_test(tc, test_jwks_kid_not_string);
    suite_add_tcase(s, tc);

    tc = tcase_create("hash");
    tcase_add_test(tc, test_hash_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("keycache");
    tcase_add_test(tc, test_keycache_hit_miss);
    tcase_add_test(tc, test_keycache_lru);
    tcase_add_test(tc, test_keycache_refcount);
    tcase_add_test(tc, test_keycache_bounded);
    tcase_add_test(tc, test_keycache_threads);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;
    make_keys();
    sr = srunner_create(jose_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free_keys();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
