/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_verify.c: cost of a full DPoP proof check against a bare signature
 * verification (issue 2: target ratio <= 1.15 for a repeated client key).
 *
 * For ES256, PS256 and EdDSA: one client key, a pool of fresh proofs (each
 * with its own jti, all bound to one access token), verified with
 * dpop_proof_verify() and a key cache (the module's configuration), next to
 * a bare OpenSSL EVP_DigestVerify over the very same signing inputs and
 * signatures with the same key, a fresh EVP_MD_CTX per operation, the
 * digest fetched by name and (PS256) the PSS parameters set, as the real
 * path does.  The two loops are interleaved in short slices so that noise
 * on a shared machine hits both alike; the figure that matters is the ratio
 * measured in this one run, not the absolute rates.
 *
 * usage: bench_verify [SECONDS_PER_ALG [ALG]]   (default 3 s, all three algs)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "dpop_b64.h"
#include "dpop_jwk.h"
#include "dpop_keycache.h"
#include "dpop_proof.h"

#define POOL 64
#define NOW 1700000000
#define URL "https://api.example.com/v1/invoices/4711"
#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.bench-token-signature-part"

typedef struct {
    char *proof;
    size_t len;
    size_t signing_len; /* header.payload */
    unsigned char *sig; /* as OpenSSL wants it (DER for ECDSA) */
    size_t siglen;
} item_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_verify: %s\n", msg);
    exit(1);
}

/* JOSE R||S -> DER, once, outside the timed loop (the bare baseline is
 * OpenSSL alone; the conversion is part of our path). */
static unsigned char *to_der(const unsigned char *raw, size_t rawlen, size_t *derlen)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(rawlen / 2), NULL);
    BIGNUM *s = BN_bin2bn(raw + rawlen / 2, (int)(rawlen / 2), NULL);
    unsigned char *der = NULL;
    int n;
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s))
        die("ECDSA_SIG");
    n = i2d_ECDSA_SIG(es, &der);
    if (n <= 0)
        die("i2d_ECDSA_SIG");
    *derlen = (size_t)n;
    ECDSA_SIG_free(es);
    return der;
}

static int bare_verify(dpop_alg_t alg, EVP_PKEY *key, const item_t *it)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *md = alg == DPOP_ALG_EDDSA ? NULL : "SHA256";
    int ok = 0;
    if (!ctx)
        return 0;
    if (EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL) != 1)
        goto done;
    if (alg == DPOP_ALG_PS256 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) <= 0))
        goto done;
    ok = EVP_DigestVerify(ctx, it->sig, it->siglen, (const unsigned char *)it->proof,
                          it->signing_len) == 1;
done:
    EVP_MD_CTX_free(ctx);
    return ok;
}

static void run_alg(dpop_alg_t alg, double seconds)
{
    json_t *priv = NULL, *pub = NULL;
    EVP_PKEY *key = NULL;
    item_t items[POOL];
    dpop_keycache_t *cache = dpop_keycache_create(0);
    dpop_proof_params_t p;
    dpop_failure_t f;
    char err[128], jti[32];
    double t_full = 0, t_bare = 0, t0, slice = 0.05, end;
    long n_full = 0, n_bare = 0, k;
    int i;

    if (!cache || dpop_jwk_generate(alg, &priv) != DPOP_OK ||
        dpop_jwk_import_private(priv, &key, &pub, err, sizeof(err)) != DPOP_OK)
        die("key setup");
    for (i = 0; i < POOL; i++) {
        const char *d2;
        unsigned char *raw = NULL;
        size_t rawlen = 0;
        snprintf(jti, sizeof(jti), "bench-jti-%08d", i);
        if (dpop_proof_create(key, pub, alg, "GET", URL, TOKEN, NULL, NOW, jti, &items[i].proof) !=
            DPOP_OK)
            die("proof_create");
        items[i].len = strlen(items[i].proof);
        d2 = strrchr(items[i].proof, '.');
        items[i].signing_len = (size_t)(d2 - items[i].proof);
        if (dpop_b64url_decode(d2 + 1, strlen(d2 + 1), &raw, &rawlen) != DPOP_OK)
            die("sig decode");
        if (alg == DPOP_ALG_ES256) {
            items[i].sig = to_der(raw, rawlen, &items[i].siglen);
            free(raw);
        }
        else {
            items[i].sig = raw;
            items[i].siglen = rawlen;
        }
    }
    dpop_proof_params_init(&p);
    p.method = "GET";
    p.url = URL "?page=2";
    p.access_token = TOKEN;
    p.now = NOW + 1;
    p.cache = cache;

    /* warm-up and correctness of both paths */
    for (i = 0; i < POOL; i++) {
        if (dpop_proof_verify(items[i].proof, items[i].len, &p, NULL, &f) != DPOP_OK)
            die(f.detail);
        if (!bare_verify(alg, key, &items[i]))
            die("bare verify failed");
    }

    end = now_s() + seconds;
    k = 0;
    while (now_s() < end) {
        double stop;
        /* full path slice */
        t0 = now_s();
        stop = t0 + slice;
        do {
            for (i = 0; i < 8; i++, k++) {
                const item_t *it = &items[k % POOL];
                if (dpop_proof_verify(it->proof, it->len, &p, NULL, &f) != DPOP_OK)
                    die(f.detail);
                n_full++;
            }
        } while (now_s() < stop);
        t_full += now_s() - t0;
        /* bare slice */
        t0 = now_s();
        stop = t0 + slice;
        do {
            for (i = 0; i < 8; i++, k++) {
                if (!bare_verify(alg, key, &items[k % POOL]))
                    die("bare verify failed");
                n_bare++;
            }
        } while (now_s() < stop);
        t_bare += now_s() - t0;
    }
    {
        double full_rate = (double)n_full / t_full, bare_rate = (double)n_bare / t_bare;
        printf("%-6s full dpop_proof_verify: %9.0f/s   bare EVP_DigestVerify: %9.0f/s   "
               "ratio (full cost / bare cost): %.3f\n",
               dpop_alg_name(alg), full_rate, bare_rate, bare_rate / full_rate);
    }
    for (i = 0; i < POOL; i++) {
        free(items[i].proof);
        if (alg == DPOP_ALG_ES256)
            OPENSSL_free(items[i].sig);
        else
            free(items[i].sig);
    }
    dpop_keycache_free(cache);
    EVP_PKEY_free(key);
    json_decref(pub);
    json_decref(priv);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3.0;
    if (secs <= 0)
        secs = 3.0;
    printf("bench_verify: %.1f s per algorithm, %d fresh proofs per key, key cache on, "
           "interleaved slices\n",
           secs, POOL);
    if (argc > 2) {
        dpop_alg_t a = dpop_alg_from_name(argv[2]);
        if (a != DPOP_ALG_ES256 && a != DPOP_ALG_PS256 && a != DPOP_ALG_EDDSA)
            die("ALG must be ES256, PS256 or EdDSA");
        run_alg(a, secs);
        return 0;
    }
    run_alg(DPOP_ALG_ES256, secs);
    run_alg(DPOP_ALG_PS256, secs);
    run_alg(DPOP_ALG_EDDSA, secs);
    return 0;
}
