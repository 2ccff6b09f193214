/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_core_hostile.c: the core against hostile keys, and its constant-time
 * comparisons (issue 11 items 2 and 3).
 *
 * rsa_bound: RSA moduli over the import bound (16384 bits) are rejected by
 * their length before any bignum is built, in well under 1 ms each (timed,
 * median of many runs; the timings are printed); a modulus at the bound
 * still imports.
 *
 * proof_rsa_cap: proof keys (dpop_proof_verify, so dpopctl verify too) are
 * RSA 2048..4096 bits (issue 15 item 7): 4097, 4104, 8192 and 16384 bits
 * are bad_jwk by their length in well under 1 ms, also inside a whole proof
 * (before the cap: bad_signature, after a verification of up to 16384
 * bits); a real 4096-bit key's proof verifies; JWKS keys keep 16384.
 *
 * peek: dpop_proof_peek (the module's reading of a proof for the audit
 * record when the token failed) returns the claims and the jwk's thumbprint
 * of a proof with a wrong signature or an over-cap key, verifying nothing.
 *
 * ed25519: every small-order point of edwards25519 (with either sign bit)
 * and every non-canonical encoding (y >= p) is bad_jwk at import, so the
 * "signature" R = identity, S = 0, which OpenSSL alone accepts for the
 * identity key over any message, can never make a proof pass; ordinary and
 * boundary keys still import.
 *
 * ec: P-256 points off the curve, all-zero coordinates (the point at
 * infinity has no affine x/y: zeros is the closest a JWK can say), the
 * field prime as coordinates, wrong lengths: bad_jwk.
 *
 * ct: dpop_ct_equal / dpop_ct_streq semantics (table), and the three callers
 * in dpop_proof_verify (ath, expected nonce, expected jkt) still reject a
 * value that differs in its last byte or only in its length.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>

#include "dpop_alg.h"
#include "dpop_b64.h"
#include "dpop_ct.h"
#include "dpop_jwk.h"
#include "dpop_proof.h"
#include "dpop_result.h"
#include "dpop_sig.h"

#define NOW 1700000000
#define URL "https://api.example.test/x"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* {"kty":"RSA","n":<n of nlen bytes>,"e":"AQAB"}: top byte non-zero (so the
 * length is minimal) and odd, so only the size can be wrong. */
static json_t *rsa_jwk(size_t nlen)
{
    unsigned char *n = malloc(nlen);
    char *ns;
    json_t *jwk;
    size_t i;
    ck_assert_ptr_nonnull(n);
    for (i = 0; i < nlen; i++)
        n[i] = (unsigned char)(0x5a ^ (i * 131));
    n[0] = 0xc1;
    n[nlen - 1] |= 1;
    ns = dpop_b64url_encode(n, nlen);
    ck_assert_ptr_nonnull(ns);
    jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", ns, "e", "AQAB");
    ck_assert_ptr_nonnull(jwk);
    free(ns);
    free(n);
    return jwk;
}

/* Median time of dpop_jwk_import_public over a parsed jwk, in µs; the
 * outcome of the last run in *f and, when it imported, the key's rc. */
static double import_median_us(const json_t *jwk, int runs, int *rc, dpop_failure_t *f)
{
    double *t = calloc((size_t)runs, sizeof(double)), med;
    int i;
    ck_assert_ptr_nonnull(t);
    for (i = 0; i < runs; i++) {
        dpop_jwk_t *k = NULL;
        double t0;
        dpop_failure_clear(f);
        t0 = now_us();
        *rc = dpop_jwk_import_public(jwk, &k, f);
        t[i] = now_us() - t0;
        dpop_jwk_free(k);
    }
    qsort(t, (size_t)runs, sizeof(double), cmp_double);
    med = t[runs / 2];
    free(t);
    return med;
}

/* A proof without cnf binding or token, verified at NOW against URL: it
 * must fail with this reason. */
static void expect_reason(const char *proof, const char *reason)
{
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    dpop_proof_params_init(&p);
    p.method = "GET";
    p.url = URL;
    p.now = NOW;
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(dpop_reason_name(f.code), reason);
    dpop_proof_result_clear(&r);
}

/* ==================================================================== */
/* RSA moduli over the bound                                            */
/* ==================================================================== */

static const size_t rsa_over[] = {
    2049,     /* 16392 bits: one byte over; caught after decoding, by length */
    2100,     /* over the base64url length bound: caught before decoding */
    4096,     /* 32768 bits */
    65536,    /* 524288 bits */
    1u << 20, /* 8 Mbit */
};

START_TEST(test_rsa_over_bound)
{
    size_t nlen = rsa_over[_i];
    json_t *jwk = rsa_jwk(nlen);
    dpop_failure_t f;
    int rc = 0;
    double med = import_median_us(jwk, 101, &rc, &f);
    ck_assert_int_eq(rc, DPOP_ERR);
    ck_assert_int_eq(f.code, DPOP_REASON_BAD_JWK);
    /* a size rule, not OpenSSL refusing a built key */
    ck_assert_msg(strstr(f.detail, "too large") || strstr(f.detail, "too long"), "detail: %s",
                  f.detail);
    printf("rsa_bound: %zu-byte (%zu-bit) modulus rejected (%s) in %.2f us (median of 101)\n", nlen,
           nlen * 8, f.detail, med);
    fflush(stdout);
    ck_assert_msg(med < 1000.0, "rejecting a %zu-byte modulus took %.1f us", nlen, med);
    json_decref(jwk);
}
END_TEST

START_TEST(test_rsa_at_bound_imports)
{
    json_t *jwk = rsa_jwk(16384 / 8);
    dpop_failure_t f;
    int rc = 0;
    double med = import_median_us(jwk, 21, &rc, &f);
    ck_assert_msg(rc == DPOP_OK, "16384-bit modulus: %s", f.detail);
    printf("rsa_bound: 2048-byte (16384-bit) modulus, the largest allowed, imported in %.2f us "
           "(median of 21)\n",
           med);
    fflush(stdout);
    json_decref(jwk);
}
END_TEST

/* A whole proof with a 2049-byte modulus: bad_jwk, not bad_signature. */
START_TEST(test_rsa_over_bound_in_proof)
{
    json_t *jwk = rsa_jwk(2049), *hdr = NULL;
    char *hj = NULL, *hb = NULL, *proof = NULL;
    static const char *pay =
        "{\"jti\":\"j\",\"htm\":\"GET\",\"htu\":\"" URL "\",\"iat\":1700000000}";
    char *pb = dpop_b64url_encode((const unsigned char *)pay, strlen(pay));
    size_t n;
    hdr = json_pack("{s:s, s:s, s:O}", "typ", "dpop+jwt", "alg", "RS256", "jwk", jwk);
    ck_assert_ptr_nonnull(hdr);
    hj = json_dumps(hdr, JSON_COMPACT);
    hb = dpop_b64url_encode((const unsigned char *)hj, strlen(hj));
    n = strlen(hb) + strlen(pb) + 16;
    proof = malloc(n);
    snprintf(proof, n, "%s.%s.AAAA", hb, pb);
    expect_reason(proof, "bad_jwk");
    free(proof);
    free(hb);
    free(pb);
    free(hj);
    json_decref(hdr);
    json_decref(jwk);
}
END_TEST

/* ==================================================================== */
/* Proof keys: RSA 2048..4096 bits (issue 15 item 7)                    */
/* ==================================================================== */

/* {"kty":"RSA","n":<odd, minimal modulus of exactly bits bits>,"e":"AQAB"} */
static json_t *rsa_jwk_bits(int bits)
{
    size_t nlen = (size_t)(bits + 7) / 8, i;
    unsigned char *n = malloc(nlen);
    char *ns;
    json_t *jwk;
    ck_assert_ptr_nonnull(n);
    for (i = 0; i < nlen; i++)
        n[i] = (unsigned char)(0x5a ^ (i * 131));
    n[0] = (unsigned char)(1u << ((bits - 1) % 8)); /* the top bit is bit bits-1 */
    n[nlen - 1] |= 1;
    ns = dpop_b64url_encode(n, nlen);
    ck_assert_ptr_nonnull(ns);
    jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", ns, "e", "AQAB");
    ck_assert_ptr_nonnull(jwk);
    free(ns);
    free(n);
    return jwk;
}

static const struct {
    int bits;
    int ok; /* imports as a proof key */
} proof_rsa_cases[] = {
    {2047, 0},                                              /* the minimum stays */
    {2048, 1}, {3072, 1}, {4095, 1},  {4096, 1}, {4097, 0}, /* one bit over the cap: 513 bytes */
    {4104, 0}, {8192, 0}, {16384, 0},
};

/* Proof-key import (the bound dpop_proof_verify uses): 4096 is the cap, a
 * larger modulus is bad_jwk, refused by its length in well under 1 ms. */
START_TEST(test_proof_rsa_cap)
{
    int bits = proof_rsa_cases[_i].bits;
    json_t *jwk = rsa_jwk_bits(bits);
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    double t[31], t0;
    int i, rc = DPOP_ERR;
    for (i = 0; i < 31; i++) {
        dpop_failure_clear(&f);
        t0 = now_us();
        rc = dpop_jwk_import_public_bounded(jwk, DPOP_PROOF_RSA_MAX_BITS, &k, &f);
        t[i] = now_us() - t0;
        dpop_jwk_free(k);
        k = NULL;
    }
    qsort(t, 31, sizeof(double), cmp_double);
    if (proof_rsa_cases[_i].ok) {
        ck_assert_msg(rc == DPOP_OK, "%d bits: %s", bits, f.detail);
    }
    else {
        ck_assert_msg(rc == DPOP_ERR, "%d-bit proof key imported", bits);
        ck_assert_int_eq(f.code, DPOP_REASON_BAD_JWK);
        if (bits > DPOP_PROOF_RSA_MAX_BITS) {
            ck_assert_msg(strstr(f.detail, "too large") || strstr(f.detail, "too long"),
                          "detail: %s", f.detail);
            printf("proof_rsa_cap: %d-bit modulus rejected (%s) in %.2f us (median of 31)\n", bits,
                   f.detail, t[15]);
            fflush(stdout);
            ck_assert_msg(t[15] < 1000.0, "rejecting %d bits took %.1f us", bits, t[15]);
        }
    }
    json_decref(jwk);
}
END_TEST

/* The authorization server's keys (JWKS, dpop_jwk_import_public) keep
 * their larger bound: administrator-chosen, verified once per token. */
START_TEST(test_jwks_rsa_bound_unchanged)
{
    json_t *jwk = rsa_jwk_bits(8192);
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    ck_assert_msg(dpop_jwk_import_public(jwk, &k, &f) == DPOP_OK, "%s", f.detail);
    dpop_jwk_free(k);
    json_decref(jwk);
}
END_TEST

/* A proof whose jwk is over the cap, with a junk signature: bad_jwk
 * (before the cap it reached the signature check: bad_signature). */
static const int proof_over_bits[] = {4097, 8192, 16384};

START_TEST(test_proof_rsa_over_cap_in_proof)
{
    json_t *jwk = rsa_jwk_bits(proof_over_bits[_i]), *hdr = NULL;
    char *hj = NULL, *hb = NULL, *proof = NULL, *sb = NULL;
    unsigned char sig[512];
    static const char *pay =
        "{\"jti\":\"j\",\"htm\":\"GET\",\"htu\":\"" URL "\",\"iat\":1700000000}";
    char *pb = dpop_b64url_encode((const unsigned char *)pay, strlen(pay));
    size_t n;
    memset(sig, 0x42, sizeof(sig));
    sb = dpop_b64url_encode(sig, sizeof(sig));
    hdr = json_pack("{s:s, s:s, s:O}", "typ", "dpop+jwt", "alg", "RS256", "jwk", jwk);
    ck_assert_ptr_nonnull(hdr);
    hj = json_dumps(hdr, JSON_COMPACT);
    hb = dpop_b64url_encode((const unsigned char *)hj, strlen(hj));
    n = strlen(hb) + strlen(pb) + strlen(sb) + 4;
    proof = malloc(n);
    snprintf(proof, n, "%s.%s.%s", hb, pb, sb);
    expect_reason(proof, "bad_jwk");
    free(proof);
    free(sb);
    free(hb);
    free(pb);
    free(hj);
    json_decref(hdr);
    json_decref(jwk);
}
END_TEST

/* A real 4096-bit client key (the largest allowed: the bound is inclusive)
 * signs a proof that verifies in full.  dpopctl verify runs this same
 * dpop_proof_verify. */
START_TEST(test_proof_rsa_4096_verifies)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    unsigned char nb[512], eb[8];
    char *ns, *es, *proof = NULL;
    json_t *pub;
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    int nl, el;
    ck_assert_ptr_nonnull(pkey);
    ck_assert_int_eq(EVP_PKEY_get_bn_param(pkey, "n", &bn_n), 1);
    ck_assert_int_eq(EVP_PKEY_get_bn_param(pkey, "e", &bn_e), 1);
    nl = BN_bn2bin(bn_n, nb);
    el = BN_bn2bin(bn_e, eb);
    ck_assert_int_eq(nl, 512);
    ns = dpop_b64url_encode(nb, (size_t)nl);
    es = dpop_b64url_encode(eb, (size_t)el);
    pub = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", ns, "e", es);
    ck_assert_ptr_nonnull(pub);
    ck_assert_int_eq(
        dpop_proof_create(pkey, pub, DPOP_ALG_PS256, "GET", URL, NULL, NULL, NOW, NULL, &proof),
        DPOP_OK);
    dpop_proof_params_init(&p);
    p.method = "GET";
    p.url = URL;
    p.now = NOW;
    ck_assert_msg(dpop_proof_verify(proof, strlen(proof), &p, &r, &f) == DPOP_OK, "%s", f.detail);
    ck_assert_int_eq(r.sig_checked, 1);
    dpop_proof_result_clear(&r);
    free(proof);
    free(ns);
    free(es);
    json_decref(pub);
    BN_free(bn_n);
    BN_free(bn_e);
    EVP_PKEY_free(pkey);
}
END_TEST

/* ==================================================================== */
/* Ed25519: small order and non-canonical encodings                     */
/* ==================================================================== */

static void hex32(const char *hex, unsigned char out[32])
{
    int i;
    for (i = 0; i < 32; i++) {
        unsigned v = 0;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

/* Little-endian encodings, sign bit clear. */
static const struct {
    const char *name;
    const char *hex;
} ed_bad[] = {
    {"y=0 (order 4; the all-zero key)",
     "0000000000000000000000000000000000000000000000000000000000000000"},
    {"y=1 (the identity, order 1)",
     "0100000000000000000000000000000000000000000000000000000000000000"},
    {"order 8 (a)", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"},
    {"order 8 (b)", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"},
    {"y=p-1 (order 2)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
    {"y=p (non-canonical 0)", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
    {"y=p+1 (non-canonical identity)",
     "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
    {"y=p+3 (non-canonical, on the curve)",
     "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
    {"y=2^255-1", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
};

static json_t *okp_jwk(const unsigned char x[32])
{
    char *xs = dpop_b64url_encode(x, 32);
    json_t *jwk;
    ck_assert_ptr_nonnull(xs);
    jwk = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", xs);
    free(xs);
    ck_assert_ptr_nonnull(jwk);
    return jwk;
}

/* _i: table row * 2 + sign bit */
START_TEST(test_ed25519_weak_rejected)
{
    unsigned char x[32];
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    json_t *jwk;
    hex32(ed_bad[_i / 2].hex, x);
    if (_i % 2)
        x[31] |= 0x80;
    jwk = okp_jwk(x);
    dpop_failure_clear(&f);
    ck_assert_msg(dpop_jwk_import_public(jwk, &k, &f) == DPOP_ERR, "%s (sign %d) imported",
                  ed_bad[_i / 2].name, _i % 2);
    ck_assert_ptr_null(k);
    ck_assert_int_eq(f.code, DPOP_REASON_BAD_JWK);
    json_decref(jwk);
}
END_TEST

/* Keys next to the refused ones still import: p - 2 (canonical, not small
 * order; import does not decode the point) and a generated key. */
START_TEST(test_ed25519_good_keys_import)
{
    unsigned char x[32];
    json_t *jwk, *priv = NULL, *pub = NULL;
    dpop_jwk_t *k = NULL;
    EVP_PKEY *pk = NULL;
    dpop_failure_t f;
    hex32("ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", x);
    jwk = okp_jwk(x);
    ck_assert_int_eq(dpop_jwk_import_public(jwk, &k, &f), DPOP_OK);
    dpop_jwk_free(k);
    json_decref(jwk);
    k = NULL;
    ck_assert_int_eq(dpop_jwk_generate(DPOP_ALG_EDDSA, &priv), DPOP_OK);
    ck_assert_int_eq(dpop_jwk_import_private(priv, &pk, &pub, NULL, 0), DPOP_OK);
    ck_assert_int_eq(dpop_jwk_import_public(pub, &k, &f), DPOP_OK);
    dpop_jwk_free(k);
    EVP_PKEY_free(pk);
    json_decref(pub);
    json_decref(priv);
}
END_TEST

/* The attack the check closes: with the identity as the key, R = identity
 * and S = 0 satisfy the (cofactorless) verification equation for every
 * message.  A proof carrying it is bad_jwk, whatever OpenSSL says. */
START_TEST(test_ed25519_forgery_refused)
{
    static const char *hdr =
        "{\"typ\":\"dpop+jwt\",\"alg\":\"EdDSA\",\"jwk\":{\"kty\":\"OKP\","
        "\"crv\":\"Ed25519\",\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}";
    static const char *pay =
        "{\"jti\":\"j\",\"htm\":\"GET\",\"htu\":\"" URL "\",\"iat\":1700000000}";
    unsigned char id[32] = {1}, sig[64] = {1};
    char *hb, *pb, *sb, *proof, *input;
    EVP_PKEY *raw;
    size_t n;
    int openssl_says;

    hb = dpop_b64url_encode((const unsigned char *)hdr, strlen(hdr));
    pb = dpop_b64url_encode((const unsigned char *)pay, strlen(pay));
    sb = dpop_b64url_encode(sig, sizeof(sig));
    n = strlen(hb) + strlen(pb) + strlen(sb) + 3;
    proof = malloc(n);
    input = malloc(n);
    snprintf(proof, n, "%s.%s.%s", hb, pb, sb);
    snprintf(input, n, "%s.%s", hb, pb);
    /* OpenSSL on its own (documents why the import check exists) */
    raw = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, id, sizeof(id));
    ck_assert_ptr_nonnull(raw);
    openssl_says = dpop_sig_verify(DPOP_ALG_EDDSA, raw, (const unsigned char *)input, strlen(input),
                                   sig, sizeof(sig));
    printf("ed25519: OpenSSL alone %s R=identity,S=0 under the identity key\n",
           openssl_says == 1 ? "ACCEPTS" : "rejects");
    fflush(stdout);
    EVP_PKEY_free(raw);
    expect_reason(proof, "bad_jwk");
    free(proof);
    free(input);
    free(hb);
    free(pb);
    free(sb);
}
END_TEST

/* ==================================================================== */
/* EC points off the curve                                              */
/* ==================================================================== */

#define P256_P "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"
#define P256_GX "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
#define P256_GY "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
#define ZERO32 "0000000000000000000000000000000000000000000000000000000000000000"
#define ONE32 "0000000000000000000000000000000000000000000000000000000000000001"

static const struct {
    const char *name, *crv, *x, *y;
    int ok;
} ec_cases[] = {
    {"generator G (control)", "P-256", P256_GX, P256_GY, 1},
    {"all-zero coordinates (stands for infinity)", "P-256", ZERO32, ZERO32, 0},
    {"(1, 1)", "P-256", ONE32, ONE32, 0},
    {"x of G, y of G + 1", "P-256", P256_GX,
     "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f6", 0},
    {"coordinates = p", "P-256", P256_P, P256_P, 0},
    {"x = G.x + p does not fit 32 bytes", "P-256", "01" P256_GX, P256_GY, 0},
    {"P-256 point labelled P-384", "P-384", P256_GX, P256_GY, 0},
};

static char *b64_hex(const char *hex)
{
    size_t n = strlen(hex) / 2, i;
    unsigned char buf[128];
    ck_assert_uint_le(n, sizeof(buf));
    for (i = 0; i < n; i++) {
        unsigned v = 0;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        buf[i] = (unsigned char)v;
    }
    return dpop_b64url_encode(buf, n);
}

START_TEST(test_ec_points)
{
    char *xs = b64_hex(ec_cases[_i].x), *ys = b64_hex(ec_cases[_i].y);
    json_t *jwk =
        json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", ec_cases[_i].crv, "x", xs, "y", ys);
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    int rc = dpop_jwk_import_public(jwk, &k, &f);
    if (ec_cases[_i].ok) {
        ck_assert_msg(rc == DPOP_OK, "%s: %s", ec_cases[_i].name, f.detail);
    }
    else {
        ck_assert_msg(rc == DPOP_ERR, "%s imported", ec_cases[_i].name);
        ck_assert_int_eq(f.code, DPOP_REASON_BAD_JWK);
    }
    dpop_jwk_free(k);
    json_decref(jwk);
    free(xs);
    free(ys);
}
END_TEST

/* ==================================================================== */
/* Constant-time equality                                               */
/* ==================================================================== */

static const struct {
    const char *a;
    size_t alen;
    const char *b;
    size_t blen;
    int equal;
} ct_cases[] = {
    {"abcdef", 6, "abcdef", 6, 1},
    {"abcdef", 6, "Xbcdef", 6, 0},  /* first byte */
    {"abcdef", 6, "abcdeX", 6, 0},  /* last byte */
    {"abcdef", 6, "abcdefg", 7, 0}, /* a prefix is not equal */
    {"abcdefg", 7, "abcdef", 6, 0}, /* nor the other way round */
    {"", 0, "", 0, 0},              /* empty never matches */
    {NULL, 0, NULL, 0, 0},          /* nor NULL */
    {"abc", 3, NULL, 3, 0},         /* one NULL */
    {"a\0b", 3, "a\0c", 3, 0},      /* bytes after a NUL count */
    {"a\0b", 3, "a\0b", 3, 1},
};

START_TEST(test_ct_equal)
{
    ck_assert_int_eq(
        dpop_ct_equal(ct_cases[_i].a, ct_cases[_i].alen, ct_cases[_i].b, ct_cases[_i].blen),
        ct_cases[_i].equal);
}
END_TEST

START_TEST(test_ct_streq)
{
    ck_assert_int_eq(dpop_ct_streq("jkt-value", "jkt-value"), 1);
    ck_assert_int_eq(dpop_ct_streq("jkt-value", "jkt-valuE"), 0);
    ck_assert_int_eq(dpop_ct_streq("jkt-value", "jkt-value2"), 0);
    ck_assert_int_eq(dpop_ct_streq("jkt-value", "jkt-valu"), 0);
    ck_assert_int_eq(dpop_ct_streq("", ""), 0);
    ck_assert_int_eq(dpop_ct_streq(NULL, "x"), 0);
    ck_assert_int_eq(dpop_ct_streq("x", NULL), 0);
}
END_TEST

/* One ES256 key and a proof with ath and nonce, for the callers' table. */
static EVP_PKEY *g_key;
static json_t *g_pub;
static char g_jkt[DPOP_JKT_LEN + 1];

static void key_setup(void)
{
    json_t *priv = NULL;
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    ck_assert_int_eq(dpop_jwk_generate(DPOP_ALG_ES256, &priv), DPOP_OK);
    ck_assert_int_eq(dpop_jwk_import_private(priv, &g_key, &g_pub, NULL, 0), DPOP_OK);
    ck_assert_int_eq(dpop_jwk_import_public(g_pub, &k, &f), DPOP_OK);
    memcpy(g_jkt, dpop_jwk_thumbprint(k), sizeof(g_jkt));
    dpop_jwk_free(k);
    json_decref(priv);
}

static void key_teardown(void)
{
    EVP_PKEY_free(g_key);
    json_decref(g_pub);
    g_key = NULL;
    g_pub = NULL;
}

#define CT_TOKEN "an-access-token"
#define CT_NONCE "server-nonce-0123456789"

typedef enum { MUT_NONE, MUT_LAST, MUT_LONGER, MUT_SHORTER } mut_t;

/* s with its last character changed, one character added or removed. */
static char *mutate(const char *s, mut_t m)
{
    size_t n = strlen(s);
    char *o = malloc(n + 2);
    memcpy(o, s, n + 1);
    if (m == MUT_LAST)
        o[n - 1] = o[n - 1] == 'A' ? 'B' : 'A';
    else if (m == MUT_LONGER) {
        o[n] = 'A';
        o[n + 1] = '\0';
    }
    else if (m == MUT_SHORTER)
        o[n - 1] = '\0';
    return o;
}

static const struct {
    const char *what; /* "jkt", "ath" (the token) or "nonce" */
    mut_t mut;
    const char *reason; /* NULL: passes */
} caller_cases[] = {
    {"jkt", MUT_NONE, NULL},
    {"jkt", MUT_LAST, "jkt_mismatch"},
    {"jkt", MUT_LONGER, "jkt_mismatch"},
    {"jkt", MUT_SHORTER, "jkt_mismatch"},
    {"ath", MUT_LAST, "ath_mismatch"},
    {"ath", MUT_LONGER, "ath_mismatch"},
    {"ath", MUT_SHORTER, "ath_mismatch"},
    {"nonce", MUT_LAST, "nonce_invalid"},
    {"nonce", MUT_LONGER, "nonce_invalid"},
    {"nonce", MUT_SHORTER, "nonce_invalid"},
};

START_TEST(test_ct_callers)
{
    const char *what = caller_cases[_i].what;
    mut_t m = caller_cases[_i].mut;
    char *proof = NULL, *jkt = NULL, *tok = NULL, *nonce = NULL;
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    int rc;
    ck_assert_int_eq(dpop_proof_create(g_key, g_pub, DPOP_ALG_ES256, "GET", URL, CT_TOKEN, CT_NONCE,
                                       NOW, NULL, &proof),
                     DPOP_OK);
    jkt = mutate(g_jkt, strcmp(what, "jkt") == 0 ? m : MUT_NONE);
    tok = mutate(CT_TOKEN, strcmp(what, "ath") == 0 ? m : MUT_NONE);
    nonce = mutate(CT_NONCE, strcmp(what, "nonce") == 0 ? m : MUT_NONE);
    dpop_proof_params_init(&p);
    p.method = "GET";
    p.url = URL;
    p.now = NOW;
    p.expected_jkt = jkt;
    p.access_token = tok;
    p.expected_nonce = nonce;
    rc = dpop_proof_verify(proof, strlen(proof), &p, &r, &f);
    if (!caller_cases[_i].reason) {
        ck_assert_msg(rc == DPOP_OK, "%s", f.detail);
    }
    else {
        ck_assert_int_eq(rc, DPOP_ERR);
        ck_assert_str_eq(dpop_reason_name(f.code), caller_cases[_i].reason);
    }
    dpop_proof_result_clear(&r);
    free(proof);
    free(jkt);
    free(tok);
    free(nonce);
}
END_TEST

/* ==================================================================== */
/* dpop_proof_peek: the claims of a proof, without verifying it         */
/* ==================================================================== */

/* A proof whose signature is wrong and whose jwk is over the RSA cap still
 * yields its claims and the thumbprint of its jwk as sent; nothing is
 * verified (sig_checked stays 0); a malformed proof yields nothing. */
START_TEST(test_peek_reads_claims_only)
{
    char *proof = NULL, *big = NULL, *hj = NULL, *hb = NULL, *pb = NULL;
    dpop_proof_result_t r;
    json_t *jwk = rsa_jwk_bits(16384), *hdr;
    char want[DPOP_JKT_LEN + 1];
    dpop_failure_t f;
    size_t n;
    static const char *pay =
        "{\"jti\":\"peek-1\",\"htm\":\"PUT\",\"htu\":\"" URL "?k=v\",\"iat\":1700000123}";
    ck_assert_int_eq(dpop_proof_create(g_key, g_pub, DPOP_ALG_ES256, "GET", URL, NULL, NULL, NOW,
                                       "peek-0", &proof),
                     DPOP_OK);
    n = strlen(proof) - 10; /* a wrong signature, still canonical base64url */
    proof[n] = proof[n] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(dpop_proof_peek(proof, strlen(proof), 0, &r), DPOP_OK);
    ck_assert_str_eq(r.jkt, g_jkt);
    ck_assert_str_eq(r.jti, "peek-0");
    ck_assert_str_eq(r.htm, "GET");
    ck_assert_str_eq(r.htu, URL);
    ck_assert_int_eq(r.iat, NOW);
    ck_assert_int_eq(r.alg, DPOP_ALG_ES256);
    ck_assert_int_eq(r.sig_checked, 0);
    dpop_proof_result_clear(&r);

    hdr = json_pack("{s:s, s:s, s:O}", "typ", "dpop+jwt", "alg", "RS256", "jwk", jwk);
    hj = json_dumps(hdr, JSON_COMPACT);
    hb = dpop_b64url_encode((const unsigned char *)hj, strlen(hj));
    pb = dpop_b64url_encode((const unsigned char *)pay, strlen(pay));
    n = strlen(hb) + strlen(pb) + 16;
    big = malloc(n);
    snprintf(big, n, "%s.%s.AAAA", hb, pb);
    ck_assert_int_eq(dpop_jwk_thumbprint_json(jwk, want, &f), DPOP_OK);
    ck_assert_int_eq(dpop_proof_peek(big, strlen(big), 0, &r), DPOP_OK);
    ck_assert_str_eq(r.jkt, want);
    ck_assert_str_eq(r.jti, "peek-1");
    ck_assert_str_eq(r.htu, URL "?k=v"); /* as claimed: the audit store cuts the query */
    ck_assert_int_eq(r.alg, DPOP_ALG_RS256);
    ck_assert_int_eq(r.sig_checked, 0);
    dpop_proof_result_clear(&r);
    /* over the caller's size bound, or not a JWS: nothing */
    ck_assert_int_eq(dpop_proof_peek(big, strlen(big), 64, &r), DPOP_ERR);
    ck_assert_ptr_null(r.jti);
    ck_assert_int_eq(dpop_proof_peek("a.b", 3, 0, &r), DPOP_ERR);
    ck_assert_ptr_null(r.jti);
    ck_assert_str_eq(r.jkt, "");
    dpop_proof_result_clear(&r);
    free(big);
    free(pb);
    free(hb);
    free(hj);
    free(proof);
    json_decref(hdr);
    json_decref(jwk);
}
END_TEST

/* ==================================================================== */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("core_hostile");
    TCase *tc = tcase_create("rsa_bound");
    tcase_add_loop_test(tc, test_rsa_over_bound, 0, N(rsa_over));
    tcase_add_test(tc, test_rsa_at_bound_imports);
    tcase_add_test(tc, test_rsa_over_bound_in_proof);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("proof_rsa_cap");
    tcase_add_loop_test(tc, test_proof_rsa_cap, 0, N(proof_rsa_cases));
    tcase_add_test(tc, test_jwks_rsa_bound_unchanged);
    tcase_add_loop_test(tc, test_proof_rsa_over_cap_in_proof, 0, N(proof_over_bits));
    tcase_add_test(tc, test_proof_rsa_4096_verifies);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("ed25519");
    tcase_add_loop_test(tc, test_ed25519_weak_rejected, 0, 2 * N(ed_bad));
    tcase_add_test(tc, test_ed25519_good_keys_import);
    tcase_add_test(tc, test_ed25519_forgery_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("ec");
    tcase_add_loop_test(tc, test_ec_points, 0, N(ec_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("ct");
    tcase_add_loop_test(tc, test_ct_equal, 0, N(ct_cases));
    tcase_add_test(tc, test_ct_streq);
    suite_add_tcase(s, tc);
    tc = tcase_create("ct_callers");
    tcase_add_checked_fixture(tc, key_setup, key_teardown);
    tcase_add_loop_test(tc, test_ct_callers, 0, N(caller_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("peek");
    tcase_add_checked_fixture(tc, key_setup, key_teardown);
    tcase_add_test(tc, test_peek_reads_claims_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hostile_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
