/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_sig.c: JWS signature verification and creation through OpenSSL EVP
 * (RFC 7518 §3.3-3.5, RFC 8037 §3.1).
 *
 * The only format conversion lives here: JOSE ECDSA signatures are the
 * fixed-length concatenation R||S (RFC 7518 §3.4), OpenSSL wants DER.  Any
 * length other than 2 * coordinate size is invalid, which rejects DER input
 * by construction.  Low-S is not required: JOSE has no such rule, so a
 * high-S signature that verifies is valid.
 *
 * Returns -1 only for internal failures; anything wrong with the signature
 * itself (length, encoding, mismatch, wrong key type for the alg) is 0.
 * Never logs anything.
 */
#include "dpop_sig.h"
#include "dpop_result.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

typedef struct {
    const char *md;    /* digest name, NULL for EdDSA */
    int type;          /* EVP_PKEY_EC / EVP_PKEY_RSA / EVP_PKEY_ED25519 */
    const char *group; /* EC group name */
    size_t coord_len;  /* EC coordinate bytes */
    int pss;
} alg_info_t;

static int alg_info(dpop_alg_t alg, alg_info_t *ai)
{
    memset(ai, 0, sizeof(*ai));
    switch (alg) {
    case DPOP_ALG_ES256:
        *ai = (alg_info_t){"SHA256", EVP_PKEY_EC, "prime256v1", 32, 0};
        break;
    case DPOP_ALG_ES384:
        *ai = (alg_info_t){"SHA384", EVP_PKEY_EC, "secp384r1", 48, 0};
        break;
    case DPOP_ALG_ES512:
        *ai = (alg_info_t){"SHA512", EVP_PKEY_EC, "secp521r1", 66, 0};
        break;
    case DPOP_ALG_PS256:
        *ai = (alg_info_t){"SHA256", EVP_PKEY_RSA, NULL, 0, 1};
        break;
    case DPOP_ALG_PS384:
        *ai = (alg_info_t){"SHA384", EVP_PKEY_RSA, NULL, 0, 1};
        break;
    case DPOP_ALG_PS512:
        *ai = (alg_info_t){"SHA512", EVP_PKEY_RSA, NULL, 0, 1};
        break;
    case DPOP_ALG_RS256:
        *ai = (alg_info_t){"SHA256", EVP_PKEY_RSA, NULL, 0, 0};
        break;
    case DPOP_ALG_RS384:
        *ai = (alg_info_t){"SHA384", EVP_PKEY_RSA, NULL, 0, 0};
        break;
    case DPOP_ALG_RS512:
        *ai = (alg_info_t){"SHA512", EVP_PKEY_RSA, NULL, 0, 0};
        break;
    case DPOP_ALG_EDDSA:
        *ai = (alg_info_t){NULL, EVP_PKEY_ED25519, NULL, 0, 0};
        break;
    default:
        return 0;
    }
    return 1;
}

/* The key must be of the type (and EC curve) the alg names: RFC 7518 §3.4
 * binds ES256 to P-256 etc.; a P-384 key "verifying" ES256 is a mismatch. */
static int key_fits(EVP_PKEY *key, const alg_info_t *ai)
{
    if (!key || EVP_PKEY_get_base_id(key) != ai->type)
        return 0;
    if (ai->type == EVP_PKEY_EC) {
        char name[64];
        size_t nl = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                            &nl))
            return 0;
        return strcmp(name, ai->group) == 0;
    }
    return 1;
}

/* Raw R||S -> DER.  *der caller frees with OPENSSL_free.  0 on failure. */
static int ecdsa_raw_to_der(const unsigned char *sig, size_t clen, unsigned char **der, int *derlen)
{
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    int ok = 0;
    *der = NULL;
    if (!(es = ECDSA_SIG_new()) || !(r = BN_bin2bn(sig, (int)clen, NULL)) ||
        !(s = BN_bin2bn(sig + clen, (int)clen, NULL)) || !ECDSA_SIG_set0(es, r, s))
        goto done;
    r = s = NULL; /* owned by es now */
    if ((*derlen = i2d_ECDSA_SIG(es, der)) <= 0)
        goto done;
    ok = 1;
done:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ok;
}

/* Configure PSS (RFC 7518 §3.5): MGF1 with the same hash, salt length equal
 * to the hash output size.  RS* keep OpenSSL's PKCS#1 v1.5 default but we
 * set it explicitly so a key with PSS restrictions cannot change it. */
static int set_rsa_padding(EVP_PKEY_CTX *pctx, const alg_info_t *ai)
{
    if (ai->type != EVP_PKEY_RSA)
        return 1;
    if (!ai->pss)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, ai->md, NULL) > 0;
}

/* Checks and conversions shared by every verify path.  Returns 1 with
 * *vsig and *vlen ready for OpenSSL (*der to free), 0 when the signature is
 * invalid by form or the key does not fit the alg, -1 on internal error. */
static int verify_prepare(dpop_alg_t alg, EVP_PKEY *key, const unsigned char *msg, size_t msglen,
                          const unsigned char *sig, size_t siglen, alg_info_t *ai,
                          const unsigned char **vsig, size_t *vlen, unsigned char **der)
{
    int derlen = 0;
    *der = NULL;
    if (!alg_info(alg, ai) || !key_fits(key, ai) || (!msg && msglen) || !sig)
        return 0;
    *vsig = sig;
    *vlen = siglen;
    if (ai->type == EVP_PKEY_EC) {
        if (siglen != 2 * ai->coord_len)
            return 0;
        if (!ecdsa_raw_to_der(sig, ai->coord_len, der, &derlen))
            return -1;
        *vsig = *der;
        *vlen = (size_t)derlen;
    }
    else if (ai->type == EVP_PKEY_RSA) {
        /* RFC 8017 §8.1.2/§8.2.2 step 1: the signature is exactly k octets. */
        if ((int)siglen != EVP_PKEY_get_size(key))
            return 0;
    }
    else if (siglen != 64) { /* RFC 8032 §5.1.7 */
        return 0;
    }
    return 1;
}

static int verify_init(EVP_MD_CTX *ctx, const alg_info_t *ai, EVP_PKEY *key)
{
    EVP_PKEY_CTX *pctx = NULL;
    return EVP_DigestVerifyInit_ex(ctx, &pctx, ai->md, NULL, NULL, key, NULL) == 1 &&
           set_rsa_padding(pctx, ai);
}

int dpop_sig_verify_with(dpop_alg_t alg, EVP_PKEY *key, const EVP_MD_CTX *tmpl,
                         const unsigned char *msg, size_t msglen, const unsigned char *sig,
                         size_t siglen)
{
    alg_info_t ai;
    EVP_MD_CTX *ctx = NULL;
    unsigned char *der = NULL;
    const unsigned char *vsig = NULL;
    size_t vlen = 0;
    int rc;

    if ((rc = verify_prepare(alg, key, msg, msglen, sig, siglen, &ai, &vsig, &vlen, &der)) != 1)
        goto done;
    rc = -1;
    if (!(ctx = EVP_MD_CTX_new()))
        goto done;
    /* A copy of a context initialized for this (key, alg) saves the
     * provider fetch and parameter setup of every call. */
    if (tmpl) {
        if (EVP_MD_CTX_copy_ex(ctx, tmpl) != 1)
            goto done;
    }
    else if (!verify_init(ctx, &ai, key)) {
        goto done;
    }
    /* Past this point inputs are well-formed for OpenSSL, so any failure
     * (including its "-1, bad encoding") means "not a valid signature". */
    rc = EVP_DigestVerify(ctx, vsig, vlen, msg, msglen) == 1 ? 1 : 0;
done:
    ERR_clear_error();
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    return rc;
}

int dpop_sig_verify(dpop_alg_t alg, EVP_PKEY *key, const unsigned char *msg, size_t msglen,
                    const unsigned char *sig, size_t siglen)
{
    return dpop_sig_verify_with(alg, key, NULL, msg, msglen, sig, siglen);
}

EVP_MD_CTX *dpop_sig_verify_template(dpop_alg_t alg, EVP_PKEY *key)
{
    alg_info_t ai;
    EVP_MD_CTX *ctx = NULL;
    /* EdDSA contexts have no digest and cannot be copied (and their init
     * is cheap next to the verification itself). */
    if (!alg_info(alg, &ai) || !ai.md || !key_fits(key, &ai))
        return NULL;
    if (!(ctx = EVP_MD_CTX_new()) || !verify_init(ctx, &ai, key)) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    ERR_clear_error();
    return ctx;
}

int dpop_sig_sign(dpop_alg_t alg, EVP_PKEY *key, const unsigned char *msg, size_t msglen,
                  unsigned char **sig, size_t *siglen)
{
    alg_info_t ai;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    ECDSA_SIG *es = NULL;
    unsigned char *buf = NULL, *out = NULL;
    size_t blen = 0;
    int rc = DPOP_ERR;

    if (!sig || !siglen)
        return DPOP_ERR;
    *sig = NULL;
    *siglen = 0;
    if (!alg_info(alg, &ai) || !key_fits(key, &ai) || (!msg && msglen))
        goto done;
    if (!(ctx = EVP_MD_CTX_new()) ||
        EVP_DigestSignInit_ex(ctx, &pctx, ai.md, NULL, NULL, key, NULL) != 1 ||
        !set_rsa_padding(pctx, &ai) || EVP_DigestSign(ctx, NULL, &blen, msg, msglen) != 1 ||
        !(buf = malloc(blen)) || EVP_DigestSign(ctx, buf, &blen, msg, msglen) != 1)
        goto done;
    if (ai.type == EVP_PKEY_EC) {
        /* DER -> R||S, each left-padded to the coordinate size (RFC 7518 §3.4). */
        const unsigned char *p = buf;
        const BIGNUM *r = NULL, *s = NULL;
        if (!(es = d2i_ECDSA_SIG(NULL, &p, (long)blen)))
            goto done;
        ECDSA_SIG_get0(es, &r, &s);
        if (!(out = malloc(2 * ai.coord_len)) ||
            BN_bn2binpad(r, out, (int)ai.coord_len) != (int)ai.coord_len ||
            BN_bn2binpad(s, out + ai.coord_len, (int)ai.coord_len) != (int)ai.coord_len)
            goto done;
        *sig = out;
        *siglen = 2 * ai.coord_len;
        out = NULL;
    }
    else {
        *sig = buf;
        *siglen = blen;
        buf = NULL;
    }
    rc = DPOP_OK;
done:
    ERR_clear_error();
    ECDSA_SIG_free(es);
    free(out);
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}
