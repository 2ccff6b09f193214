/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proof_verify.c: dpop_proof_verify (RFC 9449 §4.3).
 *
 *  - RFC 9449's own example proofs (§4.1 token request, §7.1 resource
 *    request with its access token) verify with a fixed clock and give the
 *    thumbprint of §6.1's example cnf;
 *  - a table of {mutation, expected reason} that reaches every reason code
 *    the proof check can produce, each case run without and with a key
 *    cache (the cache-hit path must answer exactly like the full path);
 *  - the iat window bounds (inclusive), result filling on failure, details
 *    that never carry proof/token bytes;
 *  - keygen -> proof -> verify round trips for every algorithm;
 *  - dpop_ath_compute / dpop_replay_key.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_jws.h"
#include "dpop_keycache.h"
#include "dpop_proof.h"
#include "dpop_sig.h"
#include "test_core_util.h"

/* ---- RFC 9449 examples (public test vectors, copied from the RFC) ---- */

/* §4.1 (Figure 3 in the RFC's numbering of examples): the token request proof */
static const char rfc_proof_41[] =
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUk"
    "lDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUw"
    "Q2R2R1JEQSIsImNydiI6IlAtMjU2In19"
    ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY"
    "29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"
    ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
/* §7.1: the protected resource request proof, bound to the access token */
static const char rfc_proof_71[] =
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUk"
    "lDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUw"
    "Q2R2R1JEQSIsImNydiI6IlAtMjU2In19"
    ".eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlL"
    "m9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHh"
    "XWG9hTnk1OUlpS0NBcWtzbVFFbyJ9"
    ".2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
static const char rfc_token_71[] = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
static const char rfc_ath_71[] = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";
/* §6.1 example cnf.jkt: the thumbprint of the examples' key */
static const char rfc_jkt[] = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

START_TEST(test_rfc_41)
{
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    dpop_proof_params_init(&p);
    p.method = "POST";
    p.url = "https://server.example.com/token";
    p.now = 1562262616;
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_41, strlen(rfc_proof_41), &p, &r, &f), DPOP_OK);
    ck_assert_str_eq(r.jkt, rfc_jkt);
    ck_assert_str_eq(r.jti, "-BwC3ESc6acc2lTc");
    ck_assert_str_eq(r.htm, "POST");
    ck_assert_str_eq(r.htu, "https://server.example.com/token");
    ck_assert_int_eq(r.has_iat, 1);
    ck_assert_int_eq(r.iat, 1562262616);
    ck_assert_int_eq(r.alg, DPOP_ALG_ES256);
    ck_assert_ptr_null(r.ath);
    ck_assert_int_eq(f.code, DPOP_REASON_NONE);
    dpop_proof_result_clear(&r);

    /* the same proof, its key now expected by a bound token */
    p.expected_jkt = rfc_jkt;
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_41, strlen(rfc_proof_41), &p, &r, &f), DPOP_OK);
    dpop_proof_result_clear(&r);

    /* a day later it is too old; the method must match exactly */
    p.now = 1562262616 + 86400;
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_41, strlen(rfc_proof_41), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "iat_too_old");
    ck_assert_str_eq(f.error, "invalid_dpop_proof");
    dpop_proof_result_clear(&r);
    p.now = 1562262616;
    p.method = "post";
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_41, strlen(rfc_proof_41), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "htm_mismatch");
    dpop_proof_result_clear(&r);
    /* when a token is presented, this proof (no ath) is not enough */
    p.method = "POST";
    p.access_token = rfc_token_71;
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_41, strlen(rfc_proof_41), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "ath_missing");
    dpop_proof_result_clear(&r);
}
END_TEST

START_TEST(test_rfc_71)
{
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    char ath[DPOP_JKT_LEN + 1];

    ck_assert_int_eq(dpop_ath_compute(rfc_token_71, strlen(rfc_token_71), ath), DPOP_OK);
    ck_assert_str_eq(ath, rfc_ath_71);

    dpop_proof_params_init(&p);
    p.method = "GET";
    p.url = "https://resource.example.org/protectedresource";
    p.access_token = rfc_token_71;
    p.expected_jkt = rfc_jkt;
    p.now = 1562262618;
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_71, strlen(rfc_proof_71), &p, &r, &f), DPOP_OK);
    ck_assert_str_eq(r.jkt, rfc_jkt);
    ck_assert_str_eq(r.jti, "e1j3V_bKic8-LAEB");
    ck_assert_str_eq(r.ath, rfc_ath_71);
    ck_assert_int_eq(r.iat, 1562262618);
    dpop_proof_result_clear(&r);

    /* another token: ath mismatch */
    p.access_token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxV";
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_71, strlen(rfc_proof_71), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "ath_mismatch");
    /* the result still names what the proof claimed (audit) */
    ck_assert_str_eq(r.jkt, rfc_jkt);
    ck_assert_str_eq(r.jti, "e1j3V_bKic8-LAEB");
    ck_assert_str_eq(r.htu, "https://resource.example.org/protectedresource");
    dpop_proof_result_clear(&r);

    /* the caller's precomputed token hash (access_token_ath) decides like
     * the hash computed here: the right one passes, another token's fails */
    p.access_token = rfc_token_71;
    p.access_token_ath = rfc_ath_71;
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_71, strlen(rfc_proof_71), &p, &r, &f), DPOP_OK);
    dpop_proof_result_clear(&r);
    ck_assert_int_eq(dpop_ath_compute("another", 7, ath), DPOP_OK);
    p.access_token_ath = ath;
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_71, strlen(rfc_proof_71), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "ath_mismatch");
    dpop_proof_result_clear(&r);
    p.access_token_ath = NULL;

    /* equivalent request URI forms (RFC 9449 §4.3 (9)) */
    p.access_token = rfc_token_71;
    p.url = "HTTPS://Resource.Example.ORG:443/protectedresource?x=1#f";
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_71, strlen(rfc_proof_71), &p, &r, &f), DPOP_OK);
    dpop_proof_result_clear(&r);
    p.url = "https://resource.example.org/protectedresource/other";
    ck_assert_int_eq(dpop_proof_verify(rfc_proof_71, strlen(rfc_proof_71), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "htu_mismatch");
    dpop_proof_result_clear(&r);
}
END_TEST

/* ---- the mutation table ---- */

#define NOW 1700000000
#define TOKEN "test-access-token.abc~123"
#define URL "https://api.example.com/v1/items"

static EVP_PKEY *g_key; /* ES256 signing key */
static json_t *g_pub;   /* its public JWK */
static char g_jkt[DPOP_JKT_LEN + 1];
static EVP_PKEY *g_other_key; /* another P-256 key */
static json_t *g_other_pub;

/* Usable outside a test (main's setup): no ck_assert here. */
static int make_key_rc(dpop_alg_t alg, EVP_PKEY **key, json_t **pub)
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

static void make_key(dpop_alg_t alg, EVP_PKEY **key, json_t **pub)
{
    ck_assert_int_eq(make_key_rc(alg, key, pub), DPOP_OK);
}

static void setup_keys(void)
{
    dpop_failure_t f;
    if (make_key_rc(DPOP_ALG_ES256, &g_key, &g_pub) != DPOP_OK ||
        make_key_rc(DPOP_ALG_ES256, &g_other_key, &g_other_pub) != DPOP_OK ||
        dpop_jwk_thumbprint_json(g_pub, g_jkt, &f) != DPOP_OK) {
        fprintf(stderr, "cannot create test keys\n");
        exit(EXIT_FAILURE);
    }
}

static void teardown_keys(void)
{
    EVP_PKEY_free(g_key);
    EVP_PKEY_free(g_other_key);
    json_decref(g_pub);
    json_decref(g_other_pub);
}

static json_t *base_header(void)
{
    return json_pack("{s:s, s:s, s:O}", "typ", "dpop+jwt", "alg", "ES256", "jwk", g_pub);
}

static json_t *base_payload(void)
{
    char ath[DPOP_JKT_LEN + 1];
    ck_assert_int_eq(dpop_ath_compute(TOKEN, strlen(TOKEN), ath), DPOP_OK);
    return json_pack("{s:s, s:s, s:s, s:I, s:s}", "jti", "jti-0001", "htm", "POST", "htu", URL,
                     "iat", (json_int_t)NOW, "ath", ath);
}

/* Sign header/payload (serialized as given) with key. */
static char *sign_json(json_t *hdr, json_t *pl, EVP_PKEY *key)
{
    char *out = NULL;
    ck_assert_int_eq(dpop_jws_sign(hdr, pl, DPOP_ALG_ES256, key, &out), DPOP_OK);
    return out;
}

/* Sign raw header/payload JSON text (for duplicates and non-objects). */
static char *sign_raw(const char *hdr_json, const char *pl_json, EVP_PKEY *key)
{
    char *h = dpop_b64url_encode((const unsigned char *)hdr_json, strlen(hdr_json));
    char *p = dpop_b64url_encode((const unsigned char *)pl_json, strlen(pl_json));
    char *in = NULL, *out = NULL, *s = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_ne(asprintf(&in, "%s.%s", h, p), -1);
    ck_assert_int_eq(
        dpop_sig_sign(DPOP_ALG_ES256, key, (unsigned char *)in, strlen(in), &sig, &siglen),
        DPOP_OK);
    s = dpop_b64url_encode(sig, siglen);
    ck_assert_int_ne(asprintf(&out, "%s.%s", in, s), -1);
    free(h);
    free(p);
    free(in);
    free(s);
    free(sig);
    return out;
}

typedef enum {
    RAW_NONE = 0,
    RAW_EMPTY,
    RAW_TWO_PARTS,
    RAW_FOUR_PARTS,
    RAW_EMPTY_SIG,
    RAW_EMPTY_PAYLOAD,
    RAW_HEADER_PLUS,
    RAW_HEADER_PADDED,
    RAW_HEADER_NOT_JSON,
    RAW_PAYLOAD_ARRAY,
    RAW_PAYLOAD_DUP,
    RAW_HEADER_DUP,
    RAW_SIG_FLIP,
    RAW_SIG_DER_LEN,
    RAW_SIG_TRUNC,
    RAW_PAYLOAD_SWAP,
    RAW_OTHER_KEY,
    RAW_WHITESPACE,
    RAW_JUNK,
    RAW_WEAK_RSA,
    RAW_IAT_TEXT /* the payload's "iat":NOW replaced by iat_text, verbatim */
} raw_t;

typedef struct {
    const char *name;
    const char *hdr_patch;
    const char *pl_patch;
    raw_t raw;
    /* parameter tweaks */
    int no_token;         /* access_token = NULL */
    const char *token;    /* another access token */
    const char *nonce;    /* expected_nonce */
    int nonce_cb;         /* use the callback (accepts "cb-nonce-ok") */
    const char *jkt;      /* expected_jkt ("@" = the right one) */
    const char *url;      /* request URL */
    const char *method;   /* request method */
    dpop_alg_mask_t algs; /* allow-list */
    size_t max_size;
    int64_t now_delta;    /* now = NOW + now_delta */
    int jti_len;          /* jti of this many bytes */
    const char *iat_text; /* RAW_IAT_TEXT: what stands where "iat":NOW was */
    dpop_reason_t want;
} vcase_t;

static const vcase_t vcases[] = {
    {"valid", NULL, NULL, 0, .want = DPOP_REASON_NONE},
    {"valid without token, ath ignored", NULL, NULL, 0, .no_token = 1, .want = DPOP_REASON_NONE},
    {"valid, no ath and no token", NULL, "{\"ath\":null}", 0, .no_token = 1,
     .want = DPOP_REASON_NONE},
    {"valid with equivalent URL", NULL, NULL, 0,
     .url = "HTTPS://API.example.com:443/v1/./items?page=2#x", .want = DPOP_REASON_NONE},
    {"valid with expected jkt", NULL, NULL, 0, .jkt = "@", .want = DPOP_REASON_NONE},
    {"valid with nonce", NULL, "{\"nonce\":\"n-123\"}", 0, .nonce = "n-123",
     .want = DPOP_REASON_NONE},
    {"valid with nonce callback", NULL, "{\"nonce\":\"cb-nonce-ok\"}", 0, .nonce_cb = 1,
     .want = DPOP_REASON_NONE},
    {"valid, nonce ignored when not required", NULL, "{\"nonce\":\"whatever\"}", 0,
     .want = DPOP_REASON_NONE},
    {"valid, extra claims", NULL, "{\"foo\":{\"bar\":[1,2]}}", 0, .want = DPOP_REASON_NONE},
    {"valid, iat at the past bound", NULL, NULL, 0, .now_delta = 305, .want = DPOP_REASON_NONE},
    {"valid, iat at the future bound", NULL, NULL, 0, .now_delta = -5, .want = DPOP_REASON_NONE},
    {"valid, jti at the length limit", NULL, NULL, 0, .jti_len = DPOP_JTI_MAX,
     .want = DPOP_REASON_NONE},
    /* missing_proof / too_large */
    {"empty proof", NULL, NULL, RAW_EMPTY, .want = DPOP_REASON_MISSING_PROOF},
    {"over the size limit", NULL, NULL, 0, .max_size = 100, .want = DPOP_REASON_TOO_LARGE},
    /* malformed */
    {"two parts", NULL, NULL, RAW_TWO_PARTS, .want = DPOP_REASON_MALFORMED},
    {"four parts", NULL, NULL, RAW_FOUR_PARTS, .want = DPOP_REASON_MALFORMED},
    /* an empty signature is judged like any other (issue 10): by the alg,
     * then it does not verify */
    {"empty signature", NULL, NULL, RAW_EMPTY_SIG, .want = DPOP_REASON_BAD_SIGNATURE},
    {"alg none, empty signature", "{\"alg\":\"none\"}", NULL, RAW_EMPTY_SIG,
     .want = DPOP_REASON_BAD_ALG},
    {"alg NONE, empty signature", "{\"alg\":\"NONE\"}", NULL, RAW_EMPTY_SIG,
     .want = DPOP_REASON_BAD_ALG},
    {"alg None, empty signature", "{\"alg\":\"None\"}", NULL, RAW_EMPTY_SIG,
     .want = DPOP_REASON_BAD_ALG},
    {"empty payload", NULL, NULL, RAW_EMPTY_PAYLOAD, .want = DPOP_REASON_MALFORMED},
    {"base64 '+' in header", NULL, NULL, RAW_HEADER_PLUS, .want = DPOP_REASON_MALFORMED},
    {"padded header", NULL, NULL, RAW_HEADER_PADDED, .want = DPOP_REASON_MALFORMED},
    {"header not JSON", NULL, NULL, RAW_HEADER_NOT_JSON, .want = DPOP_REASON_MALFORMED},
    {"payload a JSON array", NULL, NULL, RAW_PAYLOAD_ARRAY, .want = DPOP_REASON_MALFORMED},
    {"duplicate payload member", NULL, NULL, RAW_PAYLOAD_DUP, .want = DPOP_REASON_MALFORMED},
    {"duplicate header member", NULL, NULL, RAW_HEADER_DUP, .want = DPOP_REASON_MALFORMED},
    {"surrounding whitespace", NULL, NULL, RAW_WHITESPACE, .want = DPOP_REASON_MALFORMED},
    {"not a JWS at all", NULL, NULL, RAW_JUNK, .want = DPOP_REASON_MALFORMED},
    {"alg missing", "{\"alg\":null}", NULL, 0, .want = DPOP_REASON_MALFORMED},
    /* bad_typ (exact, case-sensitive: see dpop_proof.c) */
    {"typ missing", "{\"typ\":null}", NULL, 0, .want = DPOP_REASON_BAD_TYP},
    {"typ JWT", "{\"typ\":\"JWT\"}", NULL, 0, .want = DPOP_REASON_BAD_TYP},
    {"typ upper case", "{\"typ\":\"DPOP+JWT\"}", NULL, 0, .want = DPOP_REASON_BAD_TYP},
    {"typ with application/", "{\"typ\":\"application/dpop+jwt\"}", NULL, 0,
     .want = DPOP_REASON_BAD_TYP},
    {"typ not a string", "{\"typ\":1}", NULL, 0, .want = DPOP_REASON_BAD_TYP},
    {"typ at+jwt", "{\"typ\":\"at+jwt\"}", NULL, 0, .want = DPOP_REASON_BAD_TYP},
    /* bad_alg */
    {"alg none", "{\"alg\":\"none\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg NONE", "{\"alg\":\"NONE\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg None", "{\"alg\":\"None\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg HS256", "{\"alg\":\"HS256\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg lower case", "{\"alg\":\"es256\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg unknown", "{\"alg\":\"ES257\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg not allowed", NULL, NULL, 0, .algs = DPOP_ALG_BIT(DPOP_ALG_EDDSA),
     .want = DPOP_REASON_BAD_ALG},
    {"alg ES384 with a P-256 key", "{\"alg\":\"ES384\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg PS256 with an EC key", "{\"alg\":\"PS256\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    {"alg EdDSA with an EC key", "{\"alg\":\"EdDSA\"}", NULL, 0, .want = DPOP_REASON_BAD_ALG},
    /* bad_jwk */
    {"jwk missing", "{\"jwk\":null}", NULL, 0, .want = DPOP_REASON_BAD_JWK},
    {"jwk a string", "{\"jwk\":\"key\"}", NULL, 0, .want = DPOP_REASON_BAD_JWK},
    {"jwk an array", "{\"jwk\":[]}", NULL, 0, .want = DPOP_REASON_BAD_JWK},
    {"jwk empty object", "{\"jwk\":{}}", NULL, 0, .want = DPOP_REASON_BAD_JWK},
    {"jwk unknown kty", "{\"jwk\":{\"kty\":\"XX\",\"x\":\"AA\"}}", NULL, 0,
     .want = DPOP_REASON_BAD_JWK},
    {"jwk point not on the curve",
     "{\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\","
     "\"x\":\"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs\","
     "\"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDE\"}}",
     NULL, 0, .want = DPOP_REASON_BAD_JWK},
    {"jwk short coordinate",
     "{\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\","
     "\"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA\"}}",
     NULL, 0, .want = DPOP_REASON_BAD_JWK},
    {"jwk weak RSA", "{\"alg\":\"RS256\"}", NULL, RAW_WEAK_RSA, .want = DPOP_REASON_BAD_JWK},
    /* private_key_in_jwk */
    {"jwk with d",
     "{\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\","
     "\"x\":\"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs\","
     "\"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA\","
     "\"d\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}",
     NULL, 0, .want = DPOP_REASON_PRIVATE_KEY_IN_JWK},
    {"jwk symmetric k", "{\"jwk\":{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}}", NULL, 0,
     .want = DPOP_REASON_PRIVATE_KEY_IN_JWK},
    /* jkt_mismatch */
    {"expected jkt differs", NULL, NULL, 0, .jkt = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
     .want = DPOP_REASON_JKT_MISMATCH},
    /* bad_signature */
    {"signature flipped", NULL, NULL, RAW_SIG_FLIP, .want = DPOP_REASON_BAD_SIGNATURE},
    {"signature of DER length", NULL, NULL, RAW_SIG_DER_LEN, .want = DPOP_REASON_BAD_SIGNATURE},
    {"signature truncated", NULL, NULL, RAW_SIG_TRUNC, .want = DPOP_REASON_BAD_SIGNATURE},
    {"payload swapped", NULL, NULL, RAW_PAYLOAD_SWAP, .want = DPOP_REASON_BAD_SIGNATURE},
    {"signed by another key", NULL, NULL, RAW_OTHER_KEY, .want = DPOP_REASON_BAD_SIGNATURE},
    /* crit: bad_claim (RFC 7515 §4.1.11) */
    {"crit header", "{\"crit\":[\"exp\"],\"exp\":1}", NULL, 0, .want = DPOP_REASON_BAD_CLAIM},
    /* missing_claim */
    {"jti missing", NULL, "{\"jti\":null}", 0, .want = DPOP_REASON_MISSING_CLAIM},
    {"htm missing", NULL, "{\"htm\":null}", 0, .want = DPOP_REASON_MISSING_CLAIM},
    {"htu missing", NULL, "{\"htu\":null}", 0, .want = DPOP_REASON_MISSING_CLAIM},
    {"iat missing", NULL, "{\"iat\":null}", 0, .want = DPOP_REASON_MISSING_CLAIM},
    /* bad_claim */
    {"jti empty", NULL, "{\"jti\":\"\"}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"jti a number", NULL, "{\"jti\":12345}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"jti too long", NULL, NULL, 0, .jti_len = DPOP_JTI_MAX + 1, .want = DPOP_REASON_BAD_CLAIM},
    {"htm a number", NULL, "{\"htm\":1}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"htm empty", NULL, "{\"htm\":\"\"}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"htu empty", NULL, "{\"htu\":\"\"}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"htu an object", NULL, "{\"htu\":{}}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"iat a string", NULL, "{\"iat\":\"1700000000\"}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"iat a float", NULL, "{\"iat\":1700000000.5}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"iat an integral real", NULL, "{\"iat\":1700000000.0}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"iat null", NULL, "{\"iat\":[1]}", 0, .want = DPOP_REASON_BAD_CLAIM},
    /* numbers that well-formed JSON may hold but no int64 or double can
     * (issue 10): a claim of the wrong type, not a malformed proof */
    {"iat 1e309", NULL, NULL, RAW_IAT_TEXT, .iat_text = "\"iat\":1e309",
     .want = DPOP_REASON_BAD_CLAIM},
    {"iat -1e309", NULL, NULL, RAW_IAT_TEXT, .iat_text = "\"iat\":-1e309",
     .want = DPOP_REASON_BAD_CLAIM},
    {"iat 2^63", NULL, NULL, RAW_IAT_TEXT, .iat_text = "\"iat\":9223372036854775808",
     .want = DPOP_REASON_BAD_CLAIM},
    {"iat -2^63-1", NULL, NULL, RAW_IAT_TEXT, .iat_text = "\"iat\":-9223372036854775809",
     .want = DPOP_REASON_BAD_CLAIM},
    {"iat 2^64", NULL, NULL, RAW_IAT_TEXT, .iat_text = "\"iat\":18446744073709551616",
     .want = DPOP_REASON_BAD_CLAIM},
    {"iat 1.5e308000", NULL, NULL, RAW_IAT_TEXT, .iat_text = "\"iat\":1.5e308000",
     .want = DPOP_REASON_BAD_CLAIM},
    {"valid, huge number in an unknown claim", NULL, NULL, RAW_IAT_TEXT,
     .iat_text = "\"iat\":1700000000,\"x\":[1e999,123456789012345678901234567890]",
     .want = DPOP_REASON_NONE},
    {"huge number next to bad JSON", NULL, NULL, RAW_IAT_TEXT,
     .iat_text = "\"iat\":1e999,\"x\":1e3e999", .want = DPOP_REASON_MALFORMED},
    {"ath a number", NULL, "{\"ath\":5}", 0, .want = DPOP_REASON_BAD_CLAIM},
    {"nonce a number", NULL, "{\"nonce\":5}", 0, .nonce = "n-123", .want = DPOP_REASON_BAD_CLAIM},
    /* htm_mismatch */
    {"htm GET", NULL, "{\"htm\":\"GET\"}", 0, .want = DPOP_REASON_HTM_MISMATCH},
    /* hostile text quoted in a detail: it must come out printable ASCII
     * (no CR/LF for the log, no UTF-8 cut by the 64-byte quote bound) */
    {"htm with CR LF", NULL, "{\"htm\":\"POST\\r\\nX-Injected: 1\"}", 0,
     .want = DPOP_REASON_HTM_MISMATCH},
    {"htm with UTF-8 cut at the quote bound", NULL,
     "{\"htm\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\u00e9\"}", 0,
     .want = DPOP_REASON_HTM_MISMATCH},
    {"request method not ASCII", NULL, NULL, 0, .method = "P\xc3\xa9ST\x1b[2J",
     .want = DPOP_REASON_HTM_MISMATCH},
    {"typ with UTF-8 cut at the quote bound",
     "{\"typ\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\u00e9\"}", NULL,
     0, .want = DPOP_REASON_BAD_TYP},
    {"typ with a newline", "{\"typ\":\"dpop+jwt\\n\"}", NULL, 0, .want = DPOP_REASON_BAD_TYP},
    {"alg with controls and UTF-8", "{\"alg\":\"ES256\\u0007\\u001b\\u00e9\"}", NULL, 0,
     .want = DPOP_REASON_BAD_ALG},
    {"htm lower case", NULL, "{\"htm\":\"post\"}", 0, .want = DPOP_REASON_HTM_MISMATCH},
    {"request method differs", NULL, NULL, 0, .method = "PUT", .want = DPOP_REASON_HTM_MISMATCH},
    /* htu_mismatch */
    {"htu other path", NULL, "{\"htu\":\"https://api.example.com/v1/other\"}", 0,
     .want = DPOP_REASON_HTU_MISMATCH},
    {"htu other host", NULL, "{\"htu\":\"https://evil.example.com/v1/items\"}", 0,
     .want = DPOP_REASON_HTU_MISMATCH},
    {"htu other scheme", NULL, "{\"htu\":\"http://api.example.com/v1/items\"}", 0,
     .want = DPOP_REASON_HTU_MISMATCH},
    {"htu other port", NULL, "{\"htu\":\"https://api.example.com:8443/v1/items\"}", 0,
     .want = DPOP_REASON_HTU_MISMATCH},
    {"htu relative", NULL, "{\"htu\":\"/v1/items\"}", 0, .want = DPOP_REASON_HTU_MISMATCH},
    {"htu with userinfo", NULL, "{\"htu\":\"https://u@api.example.com/v1/items\"}", 0,
     .want = DPOP_REASON_HTU_MISMATCH},
    {"htu encoded slash", NULL, "{\"htu\":\"https://api.example.com/v1%2Fitems\"}", 0,
     .want = DPOP_REASON_HTU_MISMATCH},
    {"request URL unusable", NULL, NULL, 0, .url = "/v1/items", .want = DPOP_REASON_HTU_MISMATCH},
    /* iat window */
    {"iat one second too old", NULL, NULL, 0, .now_delta = 306, .want = DPOP_REASON_IAT_TOO_OLD},
    {"iat far in the past", NULL, "{\"iat\":0}", 0, .want = DPOP_REASON_IAT_TOO_OLD},
    {"iat negative", NULL, "{\"iat\":-9223372036854775807}", 0, .want = DPOP_REASON_IAT_TOO_OLD},
    {"iat one second in the future", NULL, NULL, 0, .now_delta = -6,
     .want = DPOP_REASON_IAT_IN_FUTURE},
    {"iat far in the future", NULL, "{\"iat\":9223372036854775807}", 0,
     .want = DPOP_REASON_IAT_IN_FUTURE},
    /* ath */
    {"ath missing", NULL, "{\"ath\":null}", 0, .want = DPOP_REASON_ATH_MISSING},
    {"ath of another token", NULL, NULL, 0, .token = "another-token",
     .want = DPOP_REASON_ATH_MISMATCH},
    {"ath not a hash", NULL, "{\"ath\":\"abc\"}", 0, .want = DPOP_REASON_ATH_MISMATCH},
    {"ath padded", NULL, "{\"ath\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}", 0,
     .want = DPOP_REASON_ATH_MISMATCH},
    /* nonce */
    {"nonce missing", NULL, NULL, 0, .nonce = "n-123", .want = DPOP_REASON_NONCE_MISSING},
    {"nonce missing (callback)", NULL, NULL, 0, .nonce_cb = 1, .want = DPOP_REASON_NONCE_MISSING},
    {"nonce wrong", NULL, "{\"nonce\":\"n-124\"}", 0, .nonce = "n-123",
     .want = DPOP_REASON_NONCE_INVALID},
    {"nonce prefix", NULL, "{\"nonce\":\"n-12\"}", 0, .nonce = "n-123",
     .want = DPOP_REASON_NONCE_INVALID},
    {"nonce rejected by callback", NULL, "{\"nonce\":\"expired\"}", 0, .nonce_cb = 1,
     .want = DPOP_REASON_NONCE_INVALID},
};

static int nonce_cb(void *ctx, const char *nonce, size_t len)
{
    int *calls = ctx;
    (*calls)++;
    return len == strlen("cb-nonce-ok") && memcmp(nonce, "cb-nonce-ok", len) == 0;
}

/* Replace the signature segment. */
static char *with_sig(const char *proof, const unsigned char *sig, size_t n)
{
    const char *d = strrchr(proof, '.');
    char *s = dpop_b64url_encode(sig, n), *out = NULL;
    ck_assert_int_ne(asprintf(&out, "%.*s.%s", (int)(d - proof), proof, s), -1);
    free(s);
    return out;
}

static char *build_case(const vcase_t *c)
{
    json_t *h = base_header(), *p = base_payload();
    char *proof = NULL, *tmp = NULL;
    apply_patch(h, c->hdr_patch);
    apply_patch(p, c->pl_patch);
    if (c->jti_len) {
        char *j = malloc((size_t)c->jti_len + 1);
        ck_assert_ptr_nonnull(j);
        memset(j, 'j', (size_t)c->jti_len);
        j[c->jti_len] = '\0';
        json_object_set_new(p, "jti", json_string(j));
        free(j);
    }
    switch (c->raw) {
    case RAW_NONE:
        proof = sign_json(h, p, g_key);
        break;
    case RAW_EMPTY:
        proof = strdup("");
        break;
    case RAW_OTHER_KEY:
        proof = sign_json(h, p, g_other_key);
        break;
    case RAW_TWO_PARTS:
        tmp = sign_json(h, p, g_key);
        *strrchr(tmp, '.') = '\0';
        proof = strdup(tmp);
        break;
    case RAW_FOUR_PARTS:
        tmp = sign_json(h, p, g_key);
        ck_assert_int_ne(asprintf(&proof, "%s.AAAA", tmp), -1);
        break;
    case RAW_EMPTY_SIG:
        tmp = sign_json(h, p, g_key);
        strrchr(tmp, '.')[1] = '\0';
        proof = strdup(tmp);
        break;
    case RAW_EMPTY_PAYLOAD: {
        char *d1, *d2;
        tmp = sign_json(h, p, g_key);
        d1 = strchr(tmp, '.');
        d2 = strrchr(tmp, '.');
        ck_assert_int_ne(asprintf(&proof, "%.*s.%s", (int)(d1 - tmp), tmp, d2), -1);
        break;
    }
    case RAW_HEADER_PLUS:
        tmp = sign_json(h, p, g_key);
        tmp[3] = '+';
        proof = strdup(tmp);
        break;
    case RAW_HEADER_PADDED: {
        char *d1;
        tmp = sign_json(h, p, g_key);
        d1 = strchr(tmp, '.');
        ck_assert_int_ne(asprintf(&proof, "%.*s=%s", (int)(d1 - tmp), tmp, d1), -1);
        break;
    }
    case RAW_HEADER_NOT_JSON:
        proof = sign_raw("typ=dpop+jwt", "{\"jti\":\"x\"}", g_key);
        break;
    case RAW_PAYLOAD_ARRAY: {
        char *hs = json_dumps(h, JSON_COMPACT);
        proof = sign_raw(hs, "[1,2,3]", g_key);
        free(hs);
        break;
    }
    case RAW_PAYLOAD_DUP: {
        char *hs = json_dumps(h, JSON_COMPACT), *ps = NULL;
        ck_assert_int_ne(asprintf(&ps,
                                  "{\"jti\":\"a\",\"htm\":\"GET\",\"htm\":\"POST\",\"htu\":\"%s\","
                                  "\"iat\":%d}",
                                  URL, NOW),
                         -1);
        proof = sign_raw(hs, ps, g_key);
        free(hs);
        free(ps);
        break;
    }
    case RAW_HEADER_DUP: {
        char *js = json_dumps(g_pub, JSON_COMPACT), *hs = NULL, *ps = json_dumps(p, JSON_COMPACT);
        ck_assert_int_ne(
            asprintf(&hs, "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"alg\":\"ES256\",\"jwk\":%s}",
                     js),
            -1);
        proof = sign_raw(hs, ps, g_key);
        free(js);
        free(hs);
        free(ps);
        break;
    }
    case RAW_SIG_FLIP: {
        char *last;
        tmp = sign_json(h, p, g_key);
        last = strrchr(tmp, '.') + 1;
        last[0] = (last[0] == 'A') ? 'B' : 'A';
        proof = strdup(tmp);
        break;
    }
    case RAW_SIG_DER_LEN: {
        unsigned char der[72];
        memset(der, 0x30, sizeof(der));
        tmp = sign_json(h, p, g_key);
        proof = with_sig(tmp, der, sizeof(der));
        break;
    }
    case RAW_SIG_TRUNC: {
        unsigned char s63[63];
        memset(s63, 7, sizeof(s63));
        tmp = sign_json(h, p, g_key);
        proof = with_sig(tmp, s63, sizeof(s63));
        break;
    }
    case RAW_PAYLOAD_SWAP: {
        /* signature from a proof over other claims */
        json_t *p2 = json_deep_copy(p);
        char *other, *d2, *od2;
        json_object_set_new(p2, "htm", json_string("GET"));
        other = sign_json(h, p2, g_key);
        tmp = sign_json(h, p, g_key);
        d2 = strrchr(tmp, '.');
        od2 = strrchr(other, '.');
        ck_assert_int_ne(asprintf(&proof, "%.*s%s", (int)(d2 - tmp), tmp, od2), -1);
        free(other);
        json_decref(p2);
        break;
    }
    case RAW_WHITESPACE:
        tmp = sign_json(h, p, g_key);
        ck_assert_int_ne(asprintf(&proof, " %s\n", tmp), -1);
        break;
    case RAW_JUNK:
        proof = strdup("this is not a DPoP proof at all");
        break;
    case RAW_IAT_TEXT: {
        char *hs = json_dumps(h, JSON_COMPACT), *ps = json_dumps(p, JSON_COMPACT), *ps2 = NULL;
        char *at = strstr(ps, "\"iat\":1700000000");
        ck_assert_ptr_nonnull(at);
        ck_assert_int_ne(asprintf(&ps2, "%.*s%s%s", (int)(at - ps), ps, c->iat_text,
                                  at + strlen("\"iat\":1700000000")),
                         -1);
        proof = sign_raw(hs, ps2, g_key);
        free(hs);
        free(ps);
        free(ps2);
        break;
    }
    case RAW_WEAK_RSA: {
        /* a 1024-bit modulus (top bit set, odd): a weak key */
        unsigned char n[128];
        char *nb;
        memset(n, 0xa5, sizeof(n));
        n[0] = 0xc1;
        n[127] = 0x01;
        nb = dpop_b64url_encode(n, sizeof(n));
        json_object_set_new(h, "jwk",
                            json_pack("{s:s, s:s, s:s}", "kty", "RSA", "e", "AQAB", "n", nb));
        free(nb);
        proof = sign_json(h, p, g_key);
        break;
    }
    }
    free(tmp);
    json_decref(h);
    json_decref(p);
    ck_assert_ptr_nonnull(proof);
    return proof;
}

static dpop_keycache_t *g_cache;

/* Cases that fail (or pass) after the header checks: the key is known. */
static int key_was_checked(const vcase_t *c)
{
    switch (c->want) {
    case DPOP_REASON_NONE:
    case DPOP_REASON_JKT_MISMATCH:
    case DPOP_REASON_BAD_SIGNATURE:
    case DPOP_REASON_MISSING_CLAIM:
    case DPOP_REASON_HTM_MISMATCH:
    case DPOP_REASON_HTU_MISMATCH:
    case DPOP_REASON_IAT_TOO_OLD:
    case DPOP_REASON_IAT_IN_FUTURE:
    case DPOP_REASON_ATH_MISSING:
    case DPOP_REASON_ATH_MISMATCH:
    case DPOP_REASON_NONCE_MISSING:
    case DPOP_REASON_NONCE_INVALID:
        return 1;
    case DPOP_REASON_BAD_CLAIM:
        return !(c->hdr_patch && strstr(c->hdr_patch, "crit"));
    default:
        return 0;
    }
}

static void run_case(const vcase_t *c, dpop_keycache_t *cache)
{
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    char *proof = build_case(c);
    int calls = 0, rc, round;

    dpop_proof_params_init(&p);
    p.method = c->method ? c->method : "POST";
    p.url = c->url ? c->url : URL "?q=1";
    p.access_token = c->no_token ? NULL : (c->token ? c->token : TOKEN);
    p.expected_nonce = c->nonce;
    if (c->nonce_cb) {
        p.nonce_check = nonce_cb;
        p.nonce_ctx = &calls;
    }
    if (c->jkt)
        p.expected_jkt = strcmp(c->jkt, "@") == 0 ? g_jkt : c->jkt;
    if (c->algs)
        p.algs = c->algs;
    if (c->max_size)
        p.max_size = c->max_size;
    p.now = NOW + c->now_delta;
    p.max_age = 300;
    p.skew = 5;
    p.cache = cache;

    /* with a cache, run twice: a miss (insert) then a hit */
    for (round = 0; round < (cache ? 2 : 1); round++) {
        rc = dpop_proof_verify(proof, strlen(proof), &p, &r, &f);
        if (c->want == DPOP_REASON_NONE) {
            ck_assert_msg(rc == DPOP_OK, "%s (cache %d round %d): unexpected %s: %s", c->name,
                          cache != NULL, round, f.reason, f.detail);
            ck_assert_str_eq(r.jkt, g_jkt);
            ck_assert_ptr_nonnull(r.jti);
            ck_assert_int_eq(r.has_iat, 1);
            ck_assert_int_eq(r.alg, DPOP_ALG_ES256);
            ck_assert_ptr_null(f.reason);
        }
        else {
            ck_assert_msg(rc == DPOP_ERR, "%s (cache %d round %d): accepted", c->name,
                          cache != NULL, round);
            ck_assert_msg(f.code == c->want, "%s (cache %d round %d): got %s (%s), want %s",
                          c->name, cache != NULL, round, f.reason, f.detail,
                          dpop_reason_name(c->want));
            ck_assert_str_eq(f.reason, dpop_reason_name(c->want));
            ck_assert_str_eq(f.error, dpop_reason_error(c->want));
            ck_assert_msg(f.detail[0] != '\0', "%s: empty detail", c->name);
        }
        /* details are printable ASCII whatever the proof quoted */
        {
            const unsigned char *d;
            for (d = (const unsigned char *)f.detail; *d; d++)
                ck_assert_msg(*d >= 0x20 && *d <= 0x7e, "%s: byte 0x%02x in the detail", c->name,
                              *d);
        }
        /* never any proof or token bytes in the detail */
        {
            size_t plen = strlen(proof), off = plen;
            char frag[13];
            while (off > 0 && proof[off - 1] != '.')
                off--;
            ck_assert_ptr_null(strstr(f.detail, "eyJ"));
            ck_assert_ptr_null(strstr(f.detail, TOKEN));
            if (off > 0 && plen - off > 12) {
                memcpy(frag, proof + off, 12);
                frag[12] = '\0';
                ck_assert_ptr_null(strstr(f.detail, frag));
            }
        }
        /* once the key was imported the result names it, also on failure */
        if (key_was_checked(c))
            ck_assert_msg(r.jkt[0] != '\0', "%s: jkt not recorded", c->name);
        dpop_proof_result_clear(&r);
    }
    free(proof);
}

START_TEST(test_cases_nocache)
{
    run_case(&vcases[_i], NULL);
}
END_TEST

START_TEST(test_cases_cache)
{
    run_case(&vcases[_i], g_cache);
}
END_TEST

/* Result filling on failure: the audit store gets the claimed values. */
START_TEST(test_result_on_failure)
{
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    json_t *h = base_header(), *pl = base_payload();
    char *proof;
    json_object_set_new(pl, "htu", json_string("https://evil.example/x?secret=tok"));
    json_object_set_new(pl, "nonce", json_string("nn"));
    proof = sign_json(h, pl, g_key);
    dpop_proof_params_init(&p);
    p.method = "POST";
    p.url = URL;
    p.now = NOW;
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "htu_mismatch");
    ck_assert_str_eq(r.jkt, g_jkt);
    ck_assert_str_eq(r.jti, "jti-0001");
    ck_assert_str_eq(r.htm, "POST");
    ck_assert_str_eq(r.htu, "https://evil.example/x?secret=tok");
    ck_assert_str_eq(r.nonce, "nn");
    ck_assert_ptr_nonnull(r.ath);
    ck_assert_int_eq(r.iat, NOW);
    ck_assert_int_eq(r.alg, DPOP_ALG_ES256);
    /* the detail names the URIs in normalized form: no query */
    ck_assert_ptr_nonnull(strstr(f.detail, "https://evil.example/x"));
    ck_assert_ptr_null(strstr(f.detail, "secret"));
    dpop_proof_result_clear(&r);
    /* r may be NULL */
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, NULL, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "htu_mismatch");
    /* f may be NULL too */
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, NULL, NULL), DPOP_ERR);
    /* no params */
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), NULL, NULL, &f), DPOP_ERR);
    ck_assert_int_ne(f.code, DPOP_REASON_NONE);
    /* NULL proof */
    ck_assert_int_eq(dpop_proof_verify(NULL, 0, &p, NULL, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "missing_proof");
    /* a failure before parsing leaves the result empty */
    ck_assert_int_eq(dpop_proof_verify("a.b", 3, &p, &r, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "malformed");
    ck_assert_str_eq(r.jkt, "");
    ck_assert_ptr_null(r.jti);
    ck_assert_int_eq(r.has_iat, 0);
    dpop_proof_result_clear(&r);
    free(proof);
    json_decref(h);
    json_decref(pl);
}
END_TEST

/* The cache must not let a header that failed be accepted later, and an
 * allow-list change must apply to cached keys. */
START_TEST(test_cache_semantics)
{
    dpop_keycache_t *cache = dpop_keycache_create(4);
    dpop_proof_params_t p;
    dpop_failure_t f;
    json_t *h = base_header(), *pl = base_payload();
    char *proof = sign_json(h, pl, g_key), *bad;
    ck_assert_ptr_nonnull(cache);
    dpop_proof_params_init(&p);
    p.method = "POST";
    p.url = URL;
    p.now = NOW;
    p.cache = cache;
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, NULL, &f), DPOP_OK);
    ck_assert_uint_eq(dpop_keycache_size(cache), 1);
    /* hit, but ES256 no longer allowed */
    p.algs = DPOP_ALG_BIT(DPOP_ALG_PS256);
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, NULL, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "bad_alg");
    p.algs = 0;
    /* failing headers are not inserted */
    json_object_set_new(h, "typ", json_string("JWT"));
    bad = sign_json(h, pl, g_key);
    ck_assert_int_eq(dpop_proof_verify(bad, strlen(bad), &p, NULL, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "bad_typ");
    ck_assert_uint_eq(dpop_keycache_size(cache), 1);
    /* a hit with a bad signature still fails */
    {
        char *last = strrchr(proof, '.') + 1;
        last[0] = last[0] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, NULL, &f), DPOP_ERR);
        ck_assert_str_eq(f.reason, "bad_signature");
    }
    free(bad);
    free(proof);
    json_decref(h);
    json_decref(pl);
    dpop_keycache_free(cache);
}
END_TEST

/* ---- differential: cache-hit fast claims scanner vs strict jansson ---- */

typedef struct {
    const char *payload; /* %s = URL, %d = NOW (in that order when present) */
    dpop_reason_t want;
} pcase_t;

static const pcase_t pcases[] = {
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_NONE},
    {" { \"jti\" : \"a\" ,\n\"htm\":\"POST\",\t\"htu\":\"%s\",\r\"iat\":%d } ", DPOP_REASON_NONE},
    {"{\"jti\":\"a\",\"jti\":\"b\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}",
     DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,\"x\":1,\"x\":2}",
     DPOP_REASON_MALFORMED},
    {"{\"jti\":\"\\u0041\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_NONE},
    {"{\"jti\":\"a\",\"htm\":\"P\\u004fST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_NONE},
    {"{\"jti\":\"a\\u0000b\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,\"n\":{\"a\":[1,{\"b\":null}]}}",
     DPOP_REASON_NONE},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,\"n\":{\"a\":1,\"a\":2}}",
     DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d.0}", DPOP_REASON_BAD_CLAIM},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%de0}", DPOP_REASON_BAD_CLAIM},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":0%d}", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":+%d}", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":-0}", DPOP_REASON_IAT_TOO_OLD},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":9223372036854775807}",
     DPOP_REASON_IAT_IN_FUTURE},
    /* well-formed JSON, a number no int64 holds: the wrong type (issue 10) */
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":92233720368547758070}",
     DPOP_REASON_BAD_CLAIM},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":1e309}", DPOP_REASON_BAD_CLAIM},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d} x", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,}", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}}", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\" \"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_MALFORMED},
    {"{\"jti\":true,\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_BAD_CLAIM},
    {"{\"jti\":null,\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_BAD_CLAIM},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,\"nonce\":false}",
     DPOP_REASON_BAD_CLAIM},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,\"ath\":tru}",
     DPOP_REASON_MALFORMED},
    {"{}", DPOP_REASON_MISSING_CLAIM},
    {"[]", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"\xc3\xa9t\xc3\xa9\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}",
     DPOP_REASON_NONE},
    {"{\"jti\":\"\xc3\x28\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\tb\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"https:\\/\\/api.example.com\\/v1\\/items\","
     "\"iat\":%d}",
     DPOP_REASON_NONE},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,\"a1\":1,\"a2\":2,\"a3\":3,"
     "\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":7,\"a8\":8,\"a9\":9,\"b1\":1,\"b2\":2,\"b3\":3,\"b4\":4,"
     "\"b5\":5,\"b6\":6,\"b7\":7,\"b8\":8,\"b9\":9,\"c1\":1,\"c2\":2,\"c3\":3,\"c4\":4,\"c5\":5,"
     "\"c6\":6,\"c7\":7,\"c8\":8,\"c9\":9,\"d1\":1,\"d2\":2,\"d3\":3}",
     DPOP_REASON_NONE},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,\"a1\":1,\"a2\":2,\"a3\":3,"
     "\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":7,\"a8\":8,\"a9\":9,\"b1\":1,\"b2\":2,\"b3\":3,\"b4\":4,"
     "\"b5\":5,\"b6\":6,\"b7\":7,\"b8\":8,\"b9\":9,\"c1\":1,\"c2\":2,\"c3\":3,\"c4\":4,\"c5\":5,"
     "\"c6\":6,\"c7\":7,\"c8\":8,\"c9\":9,\"d1\":1,\"d2\":2,\"a1\":3}",
     DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\"", DPOP_REASON_MALFORMED},
    {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":-%d}", DPOP_REASON_IAT_TOO_OLD},
};

START_TEST(test_payload_differential)
{
    const pcase_t *c = &pcases[_i];
    char *hs = NULL, *pl = NULL, *prime = NULL, *proof = NULL;
    json_t *h = base_header();
    dpop_keycache_t *cache = dpop_keycache_create(4);
    dpop_proof_params_t p;
    dpop_proof_result_t r1, r2;
    dpop_failure_t f1, f2;
    int rc1, rc2;

    hs = json_dumps(h, JSON_COMPACT);
    ck_assert_ptr_nonnull(hs);
    if (strstr(c->payload, "%s"))
        ck_assert_int_ne(asprintf(&pl, c->payload, URL, NOW), -1);
    else if (strstr(c->payload, "%d"))
        ck_assert_int_ne(asprintf(&pl, c->payload, NOW), -1);
    else
        pl = strdup(c->payload);
    dpop_proof_params_init(&p);
    p.method = "POST";
    p.url = URL;
    p.now = NOW;
    /* prime the cache with a valid proof that has the same header bytes */
    prime = sign_raw(hs, "{\"jti\":\"p\",\"htm\":\"POST\",\"htu\":\"" URL "\",\"iat\":1700000000}",
                     g_key);
    p.cache = cache;
    ck_assert_int_eq(dpop_proof_verify(prime, strlen(prime), &p, NULL, &f1), DPOP_OK);
    ck_assert_uint_eq(dpop_keycache_size(cache), 1);

    proof = sign_raw(hs, pl, g_key);
    p.cache = NULL;
    rc1 = dpop_proof_verify(proof, strlen(proof), &p, &r1, &f1);
    p.cache = cache;
    rc2 = dpop_proof_verify(proof, strlen(proof), &p, &r2, &f2);
    ck_assert_msg(f1.code == c->want, "case %d: full path %s (%s), want %s", _i, f1.reason,
                  f1.detail, dpop_reason_name(c->want));
    ck_assert_msg(rc1 == rc2 && f1.code == f2.code, "case %d: full path %s, cache-hit path %s (%s)",
                  _i, f1.reason, f2.reason, f2.detail);
    /* same recorded claims */
    ck_assert_int_eq(r1.has_iat, r2.has_iat);
    ck_assert_int_eq(r1.iat, r2.iat);
    ck_assert_int_eq(!r1.jti, !r2.jti);
    if (r1.jti)
        ck_assert_str_eq(r1.jti, r2.jti);
    ck_assert_int_eq(!r1.htm, !r2.htm);
    if (r1.htm)
        ck_assert_str_eq(r1.htm, r2.htm);
    dpop_proof_result_clear(&r1);
    dpop_proof_result_clear(&r2);
    free(hs);
    free(pl);
    free(prime);
    free(proof);
    json_decref(h);
    dpop_keycache_free(cache);
}
END_TEST

/* ---- round trips for every algorithm ---- */

START_TEST(test_roundtrip)
{
    dpop_alg_t alg = (dpop_alg_t)(_i + 1);
    EVP_PKEY *key = NULL;
    json_t *pub = NULL;
    char *proof = NULL, jkt[DPOP_JKT_LEN + 1];
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    dpop_keycache_t *cache = dpop_keycache_create(0);
    int i;

    make_key(alg, &key, &pub);
    ck_assert_int_eq(dpop_jwk_thumbprint_json(pub, jkt, &f), DPOP_OK);
    ck_assert_int_eq(dpop_proof_create(key, pub, alg, "DELETE", "https://rt.example/a/b?c=d", TOKEN,
                                       "srv-nonce", NOW, NULL, &proof),
                     DPOP_OK);
    dpop_proof_params_init(&p);
    p.method = "DELETE";
    p.url = "https://rt.example/a/b";
    p.access_token = TOKEN;
    p.expected_nonce = "srv-nonce";
    p.expected_jkt = jkt;
    p.now = NOW;
    for (i = 0; i < 3; i++) {
        p.cache = i ? cache : NULL;
        ck_assert_msg(dpop_proof_verify(proof, strlen(proof), &p, &r, &f) == DPOP_OK, "%s: %s %s",
                      dpop_alg_name(alg), f.reason, f.detail);
        ck_assert_int_eq(r.alg, alg);
        ck_assert_str_eq(r.jkt, jkt);
        ck_assert_uint_eq(strlen(r.jti), 22); /* 16 random bytes */
        dpop_proof_result_clear(&r);
    }
    /* the algorithm must be allowed */
    p.algs = DPOP_ALG_MASK_DEFAULT & ~DPOP_ALG_BIT(alg);
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, NULL, &f), DPOP_ERR);
    ck_assert_str_eq(f.reason, "bad_alg");
    free(proof);
    proof = NULL;
    /* given jti and default iat (now) */
    ck_assert_int_eq(dpop_proof_create(key, pub, alg, "GET", "https://rt.example/", NULL, NULL, 0,
                                       "my-jti", &proof),
                     DPOP_OK);
    p.algs = 0;
    p.method = "GET";
    p.url = "https://rt.example";
    p.access_token = NULL;
    p.expected_nonce = NULL;
    p.now = (int64_t)time(NULL);
    ck_assert_int_eq(dpop_proof_verify(proof, strlen(proof), &p, &r, &f), DPOP_OK);
    ck_assert_str_eq(r.jti, "my-jti");
    ck_assert_ptr_null(r.ath);
    dpop_proof_result_clear(&r);
    free(proof);
    dpop_keycache_free(cache);
    EVP_PKEY_free(key);
    json_decref(pub);
}
END_TEST

START_TEST(test_create_bad_args)
{
    char *out = (char *)"x";
    ck_assert_int_eq(
        dpop_proof_create(NULL, g_pub, DPOP_ALG_ES256, "GET", URL, NULL, NULL, NOW, NULL, &out),
        DPOP_ERR);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(
        dpop_proof_create(g_key, NULL, DPOP_ALG_ES256, "GET", URL, NULL, NULL, NOW, NULL, &out),
        DPOP_ERR);
    ck_assert_int_eq(
        dpop_proof_create(g_key, g_pub, DPOP_ALG_INVALID, "GET", URL, NULL, NULL, NOW, NULL, &out),
        DPOP_ERR);
    ck_assert_int_eq(
        dpop_proof_create(g_key, g_pub, DPOP_ALG_ES256, "", URL, NULL, NULL, NOW, NULL, &out),
        DPOP_ERR);
    ck_assert_int_eq(
        dpop_proof_create(g_key, g_pub, DPOP_ALG_ES256, "GET", NULL, NULL, NULL, NOW, NULL, &out),
        DPOP_ERR);
    ck_assert_int_eq(
        dpop_proof_create(g_key, g_pub, DPOP_ALG_ES256, "GET", URL, NULL, NULL, NOW, NULL, NULL),
        DPOP_ERR);
    /* key and alg that do not fit */
    ck_assert_int_eq(
        dpop_proof_create(g_key, g_pub, DPOP_ALG_EDDSA, "GET", URL, NULL, NULL, NOW, NULL, &out),
        DPOP_ERR);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_ath_and_replay_key)
{
    char ath[DPOP_JKT_LEN + 1];
    unsigned char k1[32], k2[32], k3[32], want[32];
    unsigned int wl = 0;
    /* SHA-256("") */
    ck_assert_int_eq(dpop_ath_compute("", 0, ath), DPOP_OK);
    ck_assert_str_eq(ath, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    ck_assert_int_eq(dpop_ath_compute(NULL, 0, ath), DPOP_ERR);
    ck_assert_int_eq(dpop_replay_key(rfc_jkt, "jti-a", k1), DPOP_OK);
    ck_assert_int_eq(dpop_replay_key(rfc_jkt, "jti-a", k2), DPOP_OK);
    ck_assert_int_eq(memcmp(k1, k2, 32), 0);
    ck_assert_int_eq(dpop_replay_key(rfc_jkt, "jti-b", k3), DPOP_OK);
    ck_assert_int_ne(memcmp(k1, k3, 32), 0);
    /* = SHA-256(jkt || jti) (DESIGN.md "Replay cache") */
    {
        char cat[64];
        snprintf(cat, sizeof(cat), "%sjti-a", rfc_jkt);
        ck_assert_int_eq(EVP_Digest(cat, strlen(cat), want, &wl, EVP_sha256(), NULL), 1);
        ck_assert_int_eq(memcmp(k1, want, 32), 0);
    }
    ck_assert_int_eq(dpop_replay_key("short", "jti", k1), DPOP_ERR);
    ck_assert_int_eq(dpop_replay_key(NULL, "jti", k1), DPOP_ERR);
    ck_assert_int_eq(dpop_replay_key(rfc_jkt, NULL, k1), DPOP_ERR);
}
END_TEST

/* Every reason code the proof check can produce appears in the table. */
START_TEST(test_table_covers_reasons)
{
    static const dpop_reason_t need[] = {DPOP_REASON_MISSING_PROOF,
                                         DPOP_REASON_TOO_LARGE,
                                         DPOP_REASON_MALFORMED,
                                         DPOP_REASON_BAD_TYP,
                                         DPOP_REASON_BAD_ALG,
                                         DPOP_REASON_BAD_JWK,
                                         DPOP_REASON_PRIVATE_KEY_IN_JWK,
                                         DPOP_REASON_BAD_SIGNATURE,
                                         DPOP_REASON_MISSING_CLAIM,
                                         DPOP_REASON_BAD_CLAIM,
                                         DPOP_REASON_HTM_MISMATCH,
                                         DPOP_REASON_HTU_MISMATCH,
                                         DPOP_REASON_IAT_TOO_OLD,
                                         DPOP_REASON_IAT_IN_FUTURE,
                                         DPOP_REASON_ATH_MISSING,
                                         DPOP_REASON_ATH_MISMATCH,
                                         DPOP_REASON_NONCE_MISSING,
                                         DPOP_REASON_NONCE_INVALID,
                                         DPOP_REASON_JKT_MISMATCH};
    size_t i, j;
    for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        int found = 0;
        for (j = 0; j < sizeof(vcases) / sizeof(vcases[0]); j++)
            found |= vcases[j].want == need[i];
        ck_assert_msg(found, "no test case for %s", dpop_reason_name(need[i]));
    }
}
END_TEST

static void cache_setup(void)
{
    g_cache = dpop_keycache_create(64);
}

static void cache_teardown(void)
{
    dpop_keycache_free(g_cache);
    g_cache = NULL;
}

static Suite *proof_suite(void)
{
    Suite *s = suite_create("proof");
    TCase *tc;
    int n = (int)(sizeof(vcases) / sizeof(vcases[0]));

    tc = tcase_create("rfc9449");
    tcase_add_test(tc, test_rfc_41);
    tcase_add_test(tc, test_rfc_71);
    suite_add_tcase(s, tc);

    tc = tcase_create("reasons");
    tcase_add_loop_test(tc, test_cases_nocache, 0, n);
    tcase_add_test(tc, test_table_covers_reasons);
    tcase_add_test(tc, test_result_on_failure);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("reasons_cached");
    tcase_add_checked_fixture(tc, cache_setup, cache_teardown);
    tcase_add_loop_test(tc, test_cases_cache, 0, n);
    tcase_add_test(tc, test_cache_semantics);
    tcase_add_loop_test(tc, test_payload_differential, 0,
                        (int)(sizeof(pcases) / sizeof(pcases[0])));
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("roundtrip");
    tcase_add_loop_test(tc, test_roundtrip, 0, DPOP_ALG__COUNT - 1);
    tcase_add_test(tc, test_create_bad_args);
    tcase_add_test(tc, test_ath_and_replay_key);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;
    setup_keys();
    sr = srunner_create(proof_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    teardown_keys();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
