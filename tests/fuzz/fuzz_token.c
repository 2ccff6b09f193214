/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_token.c: libFuzzer target for JWT access-token validation
 * (dpop_token_verify against a JWK Set made once) and, on the same bytes,
 * the stateless nonce check (dpop_nonce_check).  A failure must always
 * carry the token_invalid / missing_token reason; a forged nonce must never
 * be accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_jwk.h"
#include "dpop_jwks.h"
#include "dpop_nonce.h"
#include "dpop_token.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dpop_jwks_t *g_jwks;
static const unsigned char g_secret[] = "fuzz-nonce-secret-0123456789abcdef-xyz";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_t *priv = NULL, *pub = NULL, *set;
    EVP_PKEY *pk = NULL;
    char err[128], *s;
    (void)argc;
    (void)argv;
    if (dpop_jwk_generate(DPOP_ALG_ES256, &priv) != DPOP_OK ||
        dpop_jwk_import_private(priv, &pk, &pub, err, sizeof(err)) != DPOP_OK)
        abort();
    json_object_set_new(pub, "kid", json_string("k1"));
    set = json_pack("{s:[O]}", "keys", pub);
    s = json_dumps(set, JSON_COMPACT);
    if (!s || dpop_jwks_parse(s, strlen(s), &g_jwks, err, sizeof(err)) != DPOP_OK)
        abort();
    free(s);
    json_decref(set);
    json_decref(pub);
    json_decref(priv);
    EVP_PKEY_free(pk);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    char *tok;
    int fresh;

    if (size > 32768 || !(tok = malloc(size + 1)))
        return 0;
    memcpy(tok, data, size);
    tok[size] = '\0';
    memset(&p, 0, sizeof(p));
    p.jwks = g_jwks;
    p.issuer = "https://as.example.com";
    p.audience = "https://api.example.com";
    p.now = 1700000000;
    p.skew = 5;
    if (dpop_token_verify(tok, size, &p, &r, &f) == DPOP_OK)
        abort(); /* nobody but us holds the key: nothing can verify */
    if (f.code != DPOP_REASON_TOKEN_INVALID && f.code != DPOP_REASON_MISSING_TOKEN)
        abort();
    dpop_token_result_clear(&r);
    if (dpop_nonce_check(g_secret, sizeof(g_secret) - 1, 1700000000, 300, tok, size, &fresh))
        abort(); /* forging a 128-bit HMAC tag by fuzzing means a bug */
    free(tok);
    return 0;
}
