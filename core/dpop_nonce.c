/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_nonce.c: stateless server-provided DPoP nonces (RFC 9449 §8).
 *
 * A nonce is base64url(bucket || tag) with bucket = floor(now / lifetime) as
 * 8 bytes big-endian and tag = the first 16 bytes of
 * HMAC-SHA256(secret, "mod_dpop nonce v1" || bucket), computed with OpenSSL's
 * EVP_MAC.  Every server holding the secret issues and accepts the same
 * nonces without shared state.  The secret is never copied anywhere but the
 * EVP_MAC context, never logged, and is wiped when freed; tags are compared
 * in constant time (dpop_ct_equal) so the check leaks no timing about the
 * expected value.
 */
#include "dpop_nonce.h"
#include "dpop_b64.h"
#include "dpop_ct.h"
#include "dpop_result.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define NONCE_LABEL "mod_dpop nonce v1"
#define NONCE_TAG_LEN 16
#define NONCE_RAW_LEN (8 + NONCE_TAG_LEN)
#define NONCE_SECRET_FILE_MAX 4096

/* tag = HMAC-SHA256(secret, label || bucket)[0..16) */
static int nonce_tag(const unsigned char *secret, size_t secretlen, const unsigned char bucket[8],
                     unsigned char tag[NONCE_TAG_LEN])
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    unsigned char full[EVP_MAX_MD_SIZE];
    size_t fulllen = 0;
    int rc = DPOP_ERR;

    if (!(mac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
        goto done;
    if (!(ctx = EVP_MAC_CTX_new(mac)))
        goto done;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, secret, secretlen, params))
        goto done;
    if (!EVP_MAC_update(ctx, (const unsigned char *)NONCE_LABEL, sizeof(NONCE_LABEL) - 1))
        goto done;
    if (!EVP_MAC_update(ctx, bucket, 8))
        goto done;
    if (!EVP_MAC_final(ctx, full, &fulllen, sizeof(full)) || fulllen < NONCE_TAG_LEN)
        goto done;
    memcpy(tag, full, NONCE_TAG_LEN);
    rc = DPOP_OK;
done:
    OPENSSL_cleanse(full, sizeof(full));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

static void put_be64(unsigned char out[8], uint64_t v)
{
    int i;
    for (i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char in[8])
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/* Parameters a nonce can be made or checked with: a real secret (a short
 * one would make the tag guessable), a positive lifetime, a non-negative
 * clock (buckets are unsigned). */
static int nonce_params_ok(const unsigned char *secret, size_t secretlen, int64_t now,
                           int64_t lifetime)
{
    return secret && secretlen >= DPOP_NONCE_SECRET_MIN && lifetime > 0 && now >= 0;
}

int dpop_nonce_make(const unsigned char *secret, size_t secretlen, int64_t now, int64_t lifetime,
                    char *out, size_t outsz)
{
    unsigned char raw[NONCE_RAW_LEN];
    int rc = DPOP_ERR;

    if (!out || outsz < DPOP_NONCE_LEN + 1)
        return DPOP_ERR;
    out[0] = '\0';
    if (!nonce_params_ok(secret, secretlen, now, lifetime))
        return DPOP_ERR;
    put_be64(raw, (uint64_t)(now / lifetime));
    if (nonce_tag(secret, secretlen, raw, raw + 8) != DPOP_OK)
        goto done;
    if (dpop_b64url_encode_buf(raw, sizeof(raw), out, outsz) != DPOP_NONCE_LEN) {
        out[0] = '\0';
        goto done;
    }
    rc = DPOP_OK;
done:
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

int dpop_nonce_check(const unsigned char *secret, size_t secretlen, int64_t now, int64_t lifetime,
                     const char *nonce, size_t len, int *fresh)
{
    unsigned char raw[NONCE_RAW_LEN + 4];
    unsigned char tag[NONCE_TAG_LEN];
    size_t rawlen = 0;
    uint64_t cur, got;
    int ok = 0;

    if (fresh)
        *fresh = 0;
    if (!nonce || !nonce_params_ok(secret, secretlen, now, lifetime))
        return 0;
    /* Fixed length first: anything else cannot be one of ours. */
    if (len != DPOP_NONCE_LEN)
        return 0;
    if (dpop_b64url_decode_buf(nonce, len, raw, sizeof(raw), &rawlen) != DPOP_OK ||
        rawlen != NONCE_RAW_LEN)
        return 0;
    cur = (uint64_t)(now / lifetime);
    got = get_be64(raw);
    /* Valid in its own bucket and the next one: a nonce issued just before
     * a bucket boundary still lives for at least one full lifetime. */
    if (got != cur && !(cur > 0 && got == cur - 1))
        return 0;
    if (nonce_tag(secret, secretlen, raw, tag) != DPOP_OK)
        goto done; /* fail closed */
    if (!dpop_ct_equal(tag, NONCE_TAG_LEN, raw + 8, NONCE_TAG_LEN))
        goto done;
    ok = 1;
    if (fresh)
        *fresh = (got == cur);
done:
    OPENSSL_cleanse(tag, sizeof(tag));
    return ok;
}

int dpop_nonce_secret_load(const char *path, unsigned char **secret, size_t *len, char *err,
                           size_t errsz)
{
    FILE *fp = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc = DPOP_ERR;

    if (err && errsz)
        err[0] = '\0';
    if (!path || !secret || !len) {
        if (err)
            snprintf(err, errsz, "invalid arguments");
        return DPOP_ERR;
    }
    *secret = NULL;
    *len = 0;
    if (!(fp = fopen(path, "rb"))) {
        if (err)
            snprintf(err, errsz, "cannot open nonce secret file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!(buf = OPENSSL_malloc(NONCE_SECRET_FILE_MAX + 1))) {
        if (err)
            snprintf(err, errsz, "out of memory");
        goto done;
    }
    n = fread(buf, 1, NONCE_SECRET_FILE_MAX + 1, fp);
    if (ferror(fp)) {
        if (err)
            snprintf(err, errsz, "cannot read nonce secret file %s", path);
        goto done;
    }
    if (n > NONCE_SECRET_FILE_MAX) {
        if (err)
            snprintf(err, errsz, "nonce secret file %s is larger than %d bytes", path,
                     NONCE_SECRET_FILE_MAX);
        goto done;
    }
    /* One trailing newline (as editors and `echo` write) is not part of
     * the secret. */
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    if (n < DPOP_NONCE_SECRET_MIN) {
        if (err)
            snprintf(err, errsz, "nonce secret file %s holds %zu bytes; at least %d are required",
                     path, n, DPOP_NONCE_SECRET_MIN);
        goto done;
    }
    /* An exact-size copy, so the caller's OPENSSL_clear_free(secret, len)
     * wipes every byte it owns. */
    if (!(*secret = OPENSSL_malloc(n))) {
        if (err)
            snprintf(err, errsz, "out of memory");
        goto done;
    }
    memcpy(*secret, buf, n);
    *len = n;
    rc = DPOP_OK;
done:
    if (buf)
        OPENSSL_clear_free(buf, NONCE_SECRET_FILE_MAX + 1);
    if (fp)
        fclose(fp);
    return rc;
}
