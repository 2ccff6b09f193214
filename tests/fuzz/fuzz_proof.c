/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_proof.c: libFuzzer target for the whole DPoP proof check
 * (dpop_proof_verify, RFC 9449 §4.3) on hostile bytes.
 *
 * Two modes chosen by the first byte:
 *   '{'   the input is a claims set: it is signed (Ed25519 key made once)
 *         under a valid header, so the fuzzer reaches every check after the
 *         signature (claims, htm, htu, iat, ath, nonce);
 *   else  the input is the proof itself (structure, base64url, JSON, typ,
 *         alg, jwk import, signature).
 * Every input is verified twice, without and with the shared key cache
 * (warm with the valid header): both paths must give the same verdict and
 * reason, else we abort (the cache-hit path has its own claims scanner).
 * It is also read with dpop_proof_peek, which must verify nothing and, for
 * a proof that verified, report the same claims and jkt.
 * Never prints the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_b64.h"
#include "dpop_jwk.h"
#include "dpop_keycache.h"
#include "dpop_proof.h"
#include "dpop_sig.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *g_key;
static char *g_hdr_b64;
static dpop_keycache_t *g_cache;

#define URL "https://api.example.com/v1/items"

static int nonce_cb(void *ctx, const char *nonce, size_t len)
{
    (void)ctx;
    return len == 5 && memcmp(nonce, "nonce", 5) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_t *priv = NULL, *pub = NULL, *hdr;
    char err[128], *hs;
    (void)argc;
    (void)argv;
    if (dpop_jwk_generate(DPOP_ALG_EDDSA, &priv) != DPOP_OK ||
        dpop_jwk_import_private(priv, &g_key, &pub, err, sizeof(err)) != DPOP_OK)
        abort();
    hdr = json_pack("{s:s, s:s, s:O}", "typ", "dpop+jwt", "alg", "EdDSA", "jwk", pub);
    hs = json_dumps(hdr, JSON_COMPACT);
    if (!hs || !(g_hdr_b64 = dpop_b64url_encode((unsigned char *)hs, strlen(hs))))
        abort();
    free(hs);
    json_decref(hdr);
    json_decref(pub);
    json_decref(priv);
    if (!(g_cache = dpop_keycache_create(16)))
        abort();
    return 0;
}

/* header.b64(claims).sig over the claims bytes as given */
static char *sign_claims(const uint8_t *data, size_t size)
{
    char *pl = dpop_b64url_encode(data, size), *out = NULL, *s = NULL;
    unsigned char *sig = NULL;
    size_t hl = strlen(g_hdr_b64), pll, siglen = 0;
    if (!pl)
        return NULL;
    pll = strlen(pl);
    out = malloc(hl + 1 + pll + 1 + 90);
    if (!out)
        goto done;
    memcpy(out, g_hdr_b64, hl);
    out[hl] = '.';
    memcpy(out + hl + 1, pl, pll);
    if (dpop_sig_sign(DPOP_ALG_EDDSA, g_key, (unsigned char *)out, hl + 1 + pll, &sig, &siglen) !=
            DPOP_OK ||
        !(s = dpop_b64url_encode(sig, siglen))) {
        free(out);
        out = NULL;
        goto done;
    }
    out[hl + 1 + pll] = '.';
    memcpy(out + hl + 1 + pll + 1, s, strlen(s) + 1);
done:
    free(pl);
    free(s);
    free(sig);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dpop_proof_params_t p;
    dpop_proof_result_t r1, r2;
    dpop_failure_t f1, f2;
    char *proof;
    size_t len;
    int rc1, rc2;

    if (size > 16384)
        return 0;
    if (size > 0 && data[0] == '{') {
        if (!(proof = sign_claims(data, size)))
            return 0;
    }
    else {
        if (!(proof = malloc(size + 1)))
            return 0;
        memcpy(proof, data, size);
        proof[size] = '\0';
    }
    len = (size > 0 && data[0] == '{') ? strlen(proof) : size;

    dpop_proof_params_init(&p);
    p.method = "POST";
    p.url = URL "?q=1";
    p.now = 1700000000;
    /* vary the optional checks with the input length */
    if (size & 1)
        p.access_token = "token";
    if (size & 2)
        p.nonce_check = nonce_cb;
    if (size & 4)
        p.expected_nonce = "nonce";

    rc1 = dpop_proof_verify(proof, len, &p, &r1, &f1);
    p.cache = g_cache;
    rc2 = dpop_proof_verify(proof, len, &p, &r2, &f2);
    if (rc1 != rc2 || f1.code != f2.code || r1.has_iat != r2.has_iat || r1.iat != r2.iat ||
        strcmp(r1.jkt, r2.jkt) != 0 || !r1.jti != !r2.jti || (r1.jti && strcmp(r1.jti, r2.jti)))
        abort(); /* the cache-hit path disagrees with the full path */
    if (rc1 == DPOP_OK && (f1.code != DPOP_REASON_NONE || !r1.jti || !r1.htu))
        abort();
    if (rc1 != DPOP_OK && (!f1.reason || !f1.error))
        abort();
    /* dpop_proof_peek (the audit record of a failed token) reads the same
     * claims and jkt without verifying: a verified proof must peek alike */
    {
        dpop_proof_result_t r3;
        int rc3 = dpop_proof_peek(proof, len, 0, &r3);
        if (r3.sig_checked)
            abort();
        if (rc1 == DPOP_OK && (rc3 != DPOP_OK || strcmp(r3.jkt, r1.jkt) != 0 || !r3.jti ||
                               strcmp(r3.jti, r1.jti) != 0 || !r3.htu ||
                               strcmp(r3.htu, r1.htu) != 0 || r3.iat != r1.iat || r3.alg != r1.alg))
            abort();
        dpop_proof_result_clear(&r3);
    }
    dpop_proof_result_clear(&r1);
    dpop_proof_result_clear(&r2);
    free(proof);
    return 0;
}
