/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_jwk.c: JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037 §2) to and
 * from OpenSSL 3 EVP_PKEYs, and RFC 7638 thumbprints.
 *
 * Import of public keys is strict because the jwk in a DPoP proof is
 * attacker-chosen (RFC 9449 §4.3 (7)): exact coordinate lengths, the EC
 * point on the curve, minimal big-endian integers for RSA, a modulus of at
 * least 2048 bits and at most the caller's bound (16384 bits for JWKS keys,
 * 4096 for proof keys; checked on the encoded length), Ed25519 keys canonical
 * and not of small order, and no private member at all.  Keys are built with
 * OSSL_PARAM / EVP_PKEY_fromdata only (no deprecated EC_KEY/RSA API).
 *
 * Never writes key material to error text: details name the member that is
 * wrong, never its value.
 */
#include "dpop_jwk.h"
#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_keycache.h"
#include "dpop_sig.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

/* Curves we accept: RFC 7518 §6.2.1.1 names and coordinate sizes. */
typedef enum { CRV_NONE = 0, CRV_P256, CRV_P384, CRV_P521, CRV_ED25519 } crv_t;

static const struct {
    const char *jose; /* "crv" value */
    const char *ossl; /* OpenSSL group name */
    size_t coord_len; /* bytes per coordinate / private scalar */
} curves[] = {
    [CRV_NONE] = {NULL, NULL, 0},
    [CRV_P256] = {"P-256", "prime256v1", 32},
    [CRV_P384] = {"P-384", "secp384r1", 48},
    [CRV_P521] = {"P-521", "secp521r1", 66},
    [CRV_ED25519] = {"Ed25519", NULL, 32},
};

/* Upper bounds so an attacker cannot make us do huge bignum work. */
#define RSA_MAX_MODULUS_BYTES (DPOP_RSA_MAX_BITS / 8)
#define RSA_MAX_EXPONENT_BYTES 8 /* 64 bits, as OpenSSL's RSA_MAX_PUBEXP_BITS */
#define JWK_MEMBER_MAX 2048      /* a kid/use/alg longer than this is nonsense */

struct dpop_jwk {
    atomic_int refs;
    dpop_kty_t kty;
    crv_t crv;
    int rsa_bits;
    EVP_PKEY *pkey;
    char *kid, *use, *alg;
    int key_ops; /* -1 absent, 0 present without "verify", 1 with "verify" */
    char jkt[DPOP_JKT_LEN + 1];
    /* Verification templates per alg, created on first use and published
     * with compare-and-swap (keys are shared by threads via the cache). */
    _Atomic(EVP_MD_CTX *) vtmpl[DPOP_ALG__COUNT];
};

/* RFC 7517 §4 / RFC 7518 §6: private members of every key type we know.
 * "k" (RFC 7518 §6.4.1) is the secret of a symmetric key. */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

static crv_t crv_from_name(const char *s)
{
    int i;
    for (i = CRV_P256; i <= CRV_ED25519; i++)
        if (strcmp(s, curves[i].jose) == 0)
            return (crv_t)i;
    return CRV_NONE;
}

/* Fetch a required member that must be a non-empty string. */
static int req_string(const json_t *jwk, const char *name, const char **out, dpop_failure_t *f)
{
    int r = dpop_json_get_string(jwk, name, out);
    if (r == 0)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk member \"%s\" missing", name);
    if (r < 0)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk member \"%s\" is not a non-empty string",
                         name);
    return DPOP_OK;
}

/* Strictly decode a base64url member into a fresh buffer (caller frees). */
static int b64_member(const char *name, const char *s, size_t maxlen, unsigned char **out,
                      size_t *outlen, dpop_failure_t *f)
{
    size_t len = strlen(s);
    *out = NULL;
    if (len > (maxlen / 3 + 1) * 4)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk member \"%s\" too long", name);
    if (dpop_b64url_decode(s, len, out, outlen) != DPOP_OK)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk member \"%s\" is not canonical base64url",
                         name);
    return DPOP_OK;
}

/* RFC 7638 §3.2: the thumbprint input is the JSON object of the required
 * members only, sorted by name, without whitespace.  The values are our
 * validated base64url strings and fixed names, so no escaping is needed. */
static int thumbprint_of(dpop_kty_t kty, const char *crv, const char *a, const char *b,
                         char out[DPOP_JKT_LEN + 1], dpop_failure_t *f)
{
    char stackbuf[1024], *buf = stackbuf;
    size_t need;
    int n, rc = DPOP_ERR;

    need = strlen(a) + (b ? strlen(b) : 0) + (crv ? strlen(crv) : 0) + 64;
    if (need > sizeof(stackbuf) && !(buf = malloc(need)))
        goto done;
    switch (kty) {
    case DPOP_KTY_EC: /* crv, kty, x, y */
        n = snprintf(buf, need, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", crv, a,
                     b);
        break;
    case DPOP_KTY_RSA: /* e, kty, n */
        n = snprintf(buf, need, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
        break;
    case DPOP_KTY_OKP: /* crv, kty, x (RFC 8037 §2) */
        n = snprintf(buf, need, "{\"crv\":\"%s\",\"kty\":\"OKP\",\"x\":\"%s\"}", crv, a);
        break;
    default:
        goto done;
    }
    if (n < 0 || (size_t)n >= need)
        goto done;
    if (dpop_b64url_sha256(buf, (size_t)n, out) != DPOP_OK)
        goto done;
    rc = DPOP_OK;
done:
    if (buf != stackbuf)
        free(buf);
    /* fail closed: no thumbprint, no key */
    if (rc != DPOP_OK)
        dpop_fail(f, DPOP_REASON_BAD_JWK, "internal error computing thumbprint");
    return rc;
}

/* Optional string member: absent is fine; present must be a non-empty
 * string (RFC 7517 §4.2-4.5). */
static int opt_string(const json_t *jwk, const char *name, char **out, dpop_failure_t *f)
{
    const char *s = NULL;
    int r = dpop_json_get_string(jwk, name, &s);
    *out = NULL;
    if (r == 0)
        return DPOP_OK;
    if (r < 0 || strlen(s) > JWK_MEMBER_MAX)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk member \"%s\" is not a valid string", name);
    if (!(*out = strdup(s)))
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "out of memory");
    return DPOP_OK;
}

/* RFC 7517 §4.3: key_ops is an array of strings without duplicates. */
static int parse_key_ops(const json_t *jwk, int *out, dpop_failure_t *f)
{
    json_t *ops = json_object_get(jwk, "key_ops");
    size_t i, j;
    json_t *v;
    *out = -1;
    if (!ops)
        return DPOP_OK;
    if (!json_is_array(ops) || json_array_size(ops) > 16)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk member \"key_ops\" is not a valid array");
    *out = 0;
    json_array_foreach(ops, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk \"key_ops\" holds a non-string");
        for (j = 0; j < i; j++)
            if (json_equal(v, json_array_get(ops, j)))
                return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk \"key_ops\" has duplicates");
        if (strcmp(json_string_value(v), "verify") == 0)
            *out = 1;
    }
    return DPOP_OK;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params, int selection)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    if (!(ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, selection, params) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* EC public key from x, y of exactly the coordinate length (RFC 7518
 * §6.2.1.2-3: "MUST be the full size of a coordinate"). */
static int import_ec(const json_t *jwk, struct dpop_jwk *k, dpop_failure_t *f)
{
    const char *crv = NULL, *xs = NULL, *ys = NULL;
    unsigned char *x = NULL, *y = NULL, pub[1 + 2 * 66];
    size_t xl = 0, yl = 0, cl;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *cctx = NULL;
    int rc = DPOP_ERR;

    if (req_string(jwk, "crv", &crv, f) || req_string(jwk, "x", &xs, f) ||
        req_string(jwk, "y", &ys, f))
        goto done;
    k->crv = crv_from_name(crv);
    if (k->crv == CRV_NONE || k->crv == CRV_ED25519) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "unsupported EC curve");
        goto done;
    }
    cl = curves[k->crv].coord_len;
    if (b64_member("x", xs, 2 * cl, &x, &xl, f) || b64_member("y", ys, 2 * cl, &y, &yl, f))
        goto done;
    if (xl != cl || yl != cl) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "EC coordinate length does not match curve %s",
                  curves[k->crv].jose);
        goto done;
    }
    /* SEC 1 §2.3.3 uncompressed point. */
    pub[0] = 0x04;
    memcpy(pub + 1, x, cl);
    memcpy(pub + 1 + cl, y, cl);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)curves[k->crv].ossl, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * cl);
    params[2] = OSSL_PARAM_construct_end();
    if (!(k->pkey = pkey_fromdata("EC", params, EVP_PKEY_PUBLIC_KEY))) {
        /* OpenSSL refuses points whose coordinates are >= p or that do not
         * satisfy the curve equation while decoding. */
        dpop_fail(f, DPOP_REASON_BAD_JWK, "EC point is not on curve %s", curves[k->crv].jose);
        goto done;
    }
    /* Full public-key validation (SP 800-56A §5.6.2.3.3): on the curve,
     * not the point at infinity, in the prime-order subgroup. */
    if (!(cctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL)) ||
        EVP_PKEY_public_check(cctx) != 1) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "EC point is not on curve %s", curves[k->crv].jose);
        goto done;
    }
    rc = thumbprint_of(DPOP_KTY_EC, curves[k->crv].jose, xs, ys, k->jkt, f);
done:
    ERR_clear_error();
    EVP_PKEY_CTX_free(cctx);
    free(x);
    free(y);
    return rc;
}

/* Bits of a minimal big-endian unsigned integer. */
static int be_bits(const unsigned char *b, size_t n)
{
    int bits;
    unsigned char c;
    if (!n)
        return 0;
    bits = (int)(n - 1) * 8;
    for (c = b[0]; c; c >>= 1)
        bits++;
    return bits;
}

/* RSA public key (RFC 7518 §6.3.1): n and e are base64url of the unsigned
 * big-endian value using the minimum number of octets. */
static int import_rsa(const json_t *jwk, int max_bits, struct dpop_jwk *k, dpop_failure_t *f)
{
    const size_t max_bytes = (size_t)max_bits / 8;
    const char *ns = NULL, *es = NULL;
    unsigned char *n = NULL, *e = NULL;
    size_t nl = 0, el = 0;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    int rc = DPOP_ERR;

    if (req_string(jwk, "n", &ns, f) || req_string(jwk, "e", &es, f))
        goto done;
    /* the length bound first: an oversized modulus is never decoded */
    if (b64_member("n", ns, max_bytes, &n, &nl, f) ||
        b64_member("e", es, RSA_MAX_EXPONENT_BYTES, &e, &el, f))
        goto done;
    /* RFC 7518 §6.3.1.1/§6.3.1.2: minimum number of octets, so a leading
     * zero octet is not allowed (it would also give the same key two
     * different RFC 7638 thumbprints). */
    if (nl == 0 || n[0] == 0 || el == 0 || e[0] == 0) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "RSA n/e not in minimal big-endian form");
        goto done;
    }
    if (nl > max_bytes) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "RSA modulus too large (over %d bits)", max_bits);
        goto done;
    }
    k->rsa_bits = be_bits(n, nl);
    if (k->rsa_bits < DPOP_RSA_MIN_BITS) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "RSA modulus of %d bits is below %d", k->rsa_bits,
                  DPOP_RSA_MIN_BITS);
        goto done;
    }
    if (!(n[nl - 1] & 1)) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "RSA modulus is even");
        goto done;
    }
    /* e odd, >= 3 and at most 64 bits (NIST SP 800-56B §6.2.1 wants odd;
     * 1 makes every "signature" trivially valid). */
    if (el > RSA_MAX_EXPONENT_BYTES || !(e[el - 1] & 1) || (el == 1 && e[0] < 3)) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "RSA public exponent is not an odd value >= 3");
        goto done;
    }
    if (!(bn_n = BN_bin2bn(n, (int)nl, NULL)) || !(bn_e = BN_bin2bn(e, (int)el, NULL)) ||
        !(bld = OSSL_PARAM_BLD_new()) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld))) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "internal error building RSA key");
        goto done;
    }
    if (!(k->pkey = pkey_fromdata("RSA", params, EVP_PKEY_PUBLIC_KEY))) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "RSA key rejected by OpenSSL");
        goto done;
    }
    rc = thumbprint_of(DPOP_KTY_RSA, NULL, es, ns, k->jkt, f);
done:
    ERR_clear_error();
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return rc;
}

/* The points of small order on edwards25519 (8 points, 5 y-coordinates),
 * as RFC 8032 §5.1.2 encodings with the sign bit of x cleared: y = 0 (x =
 * +-sqrt(-1), order 4), y = 1 (the identity), the y of the four points of
 * order 8, and y = p - 1 (order 2).  The same list as libsodium's
 * has_small_order. */
static const unsigned char ed25519_small_order[][32] = {
    {0},
    {0x01},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

/* Why: OpenSSL takes any 32 bytes as an Ed25519 public key and verifies
 * without a cofactor, so for a small-order key A the "signature" R =
 * identity, S = 0 satisfies [S]B = R + [k]A whenever [k]A is the identity
 * (always for the identity key): a proof anyone can make for any message,
 * i.e. no proof of possession at all.  Also refuses y >= p, which RFC 8032
 * §5.1.3 (1) says is not a valid encoding (and would give one key two
 * thumbprints).  The key is public: plain comparisons are fine here.
 * Returns the failure detail, or NULL for an acceptable key. */
static const char *ed25519_weak_key(const unsigned char x[32])
{
    unsigned char y[32];
    size_t i;
    int ge_p;

    memcpy(y, x, sizeof(y));
    y[31] &= 0x7f; /* the sign bit of x */
    /* p = 2^255 - 19: little-endian ed ff .. ff 7f */
    ge_p = y[31] == 0x7f && y[0] >= 0xed;
    for (i = 1; ge_p && i < 31; i++)
        ge_p = y[i] == 0xff;
    if (ge_p)
        return "Ed25519 public key is not a canonical encoding (y >= p)";
    for (i = 0; i < sizeof(ed25519_small_order) / sizeof(ed25519_small_order[0]); i++)
        if (memcmp(y, ed25519_small_order[i], sizeof(y)) == 0)
            return "Ed25519 public key is a point of small order";
    return NULL;
}

/* OKP (RFC 8037 §2): only Ed25519, x is the 32-byte public key. */
static int import_okp(const json_t *jwk, struct dpop_jwk *k, dpop_failure_t *f)
{
    const char *crv = NULL, *xs = NULL, *weak = NULL;
    unsigned char *x = NULL;
    size_t xl = 0;
    int rc = DPOP_ERR;

    if (req_string(jwk, "crv", &crv, f) || req_string(jwk, "x", &xs, f))
        goto done;
    if (strcmp(crv, "Ed25519") != 0) {
        /* Ed448 has no JOSE alg we allow; X25519/X448 are for key agreement. */
        dpop_fail(f, DPOP_REASON_BAD_JWK, "unsupported OKP curve");
        goto done;
    }
    k->crv = CRV_ED25519;
    if (b64_member("x", xs, 64, &x, &xl, f))
        goto done;
    if (xl != 32) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "Ed25519 public key is not 32 bytes");
        goto done;
    }
    if ((weak = ed25519_weak_key(x)) != NULL) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "%s", weak);
        goto done;
    }
    if (!(k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl))) {
        dpop_fail(f, DPOP_REASON_BAD_JWK, "Ed25519 key rejected by OpenSSL");
        goto done;
    }
    rc = thumbprint_of(DPOP_KTY_OKP, "Ed25519", xs, NULL, k->jkt, f);
done:
    ERR_clear_error();
    free(x);
    return rc;
}

static int check_private_members(const json_t *jwk, dpop_failure_t *f)
{
    size_t i;
    for (i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
        if (json_object_get(jwk, private_members[i]))
            return dpop_fail(f, DPOP_REASON_PRIVATE_KEY_IN_JWK, "jwk carries private member \"%s\"",
                             private_members[i]);
    return DPOP_OK;
}

static dpop_kty_t kty_of(const json_t *jwk, dpop_failure_t *f)
{
    const char *kty = NULL;
    if (req_string(jwk, "kty", &kty, f))
        return DPOP_KTY_NONE;
    if (strcmp(kty, "EC") == 0)
        return DPOP_KTY_EC;
    if (strcmp(kty, "RSA") == 0)
        return DPOP_KTY_RSA;
    if (strcmp(kty, "OKP") == 0)
        return DPOP_KTY_OKP;
    if (strcmp(kty, "oct") == 0)
        dpop_fail(f, DPOP_REASON_BAD_JWK, "symmetric jwk (kty oct) cannot prove possession");
    else
        dpop_fail(f, DPOP_REASON_BAD_JWK, "unsupported kty");
    return DPOP_KTY_NONE;
}

int dpop_jwk_import_public(const json_t *jwk, dpop_jwk_t **out, dpop_failure_t *f)
{
    return dpop_jwk_import_public_bounded(jwk, DPOP_RSA_MAX_BITS, out, f);
}

int dpop_jwk_import_public_bounded(const json_t *jwk, int rsa_max_bits, dpop_jwk_t **out,
                                   dpop_failure_t *f)
{
    struct dpop_jwk *k = NULL;
    int rc = DPOP_ERR;

    if (out)
        *out = NULL;
    if (rsa_max_bits < DPOP_RSA_MIN_BITS || rsa_max_bits > DPOP_RSA_MAX_BITS || rsa_max_bits % 8)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "invalid RSA size bound");
    if (!out || !json_is_object(jwk))
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk is not a JSON object");
    /* RFC 9449 §4.3 (7): the jwk MUST NOT contain a private key.  Checked
     * first, so a leaked secret is reported as such whatever else is wrong. */
    if (check_private_members(jwk, f))
        return DPOP_ERR;
    if (!(k = calloc(1, sizeof(*k))))
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "out of memory");
    atomic_init(&k->refs, 1);
    {
        int a;
        for (a = 0; a < DPOP_ALG__COUNT; a++)
            atomic_init(&k->vtmpl[a], NULL);
    }
    if ((k->kty = kty_of(jwk, f)) == DPOP_KTY_NONE)
        goto done;
    if (opt_string(jwk, "kid", &k->kid, f) || opt_string(jwk, "use", &k->use, f) ||
        opt_string(jwk, "alg", &k->alg, f) || parse_key_ops(jwk, &k->key_ops, f))
        goto done;
    switch (k->kty) {
    case DPOP_KTY_EC:
        rc = import_ec(jwk, k, f);
        break;
    case DPOP_KTY_RSA:
        rc = import_rsa(jwk, rsa_max_bits, k, f);
        break;
    case DPOP_KTY_OKP:
        rc = import_okp(jwk, k, f);
        break;
    default:
        break;
    }
done:
    if (rc != DPOP_OK) {
        dpop_jwk_free(k);
        return DPOP_ERR;
    }
    *out = k;
    return DPOP_OK;
}

dpop_jwk_t *dpop_jwk_ref(dpop_jwk_t *k)
{
    if (k)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void dpop_jwk_free(dpop_jwk_t *k)
{
    if (!k)
        return;
    /* acq_rel: the last owner must see every other owner's writes before
     * it frees the key. */
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    {
        int a;
        for (a = 0; a < DPOP_ALG__COUNT; a++)
            EVP_MD_CTX_free(atomic_load_explicit(&k->vtmpl[a], memory_order_relaxed));
    }
    EVP_PKEY_free(k->pkey);
    free(k->kid);
    free(k->use);
    free(k->alg);
    free(k);
}

EVP_PKEY *dpop_jwk_pkey(const dpop_jwk_t *k)
{
    return k ? k->pkey : NULL;
}

dpop_kty_t dpop_jwk_kty(const dpop_jwk_t *k)
{
    return k ? k->kty : DPOP_KTY_NONE;
}

const char *dpop_jwk_thumbprint(const dpop_jwk_t *k)
{
    return k ? k->jkt : NULL;
}

const char *dpop_jwk_kid(const dpop_jwk_t *k)
{
    return k ? k->kid : NULL;
}

const char *dpop_jwk_use(const dpop_jwk_t *k)
{
    return k ? k->use : NULL;
}

const char *dpop_jwk_alg(const dpop_jwk_t *k)
{
    return k ? k->alg : NULL;
}

int dpop_jwk_verify(const dpop_jwk_t *k, dpop_alg_t alg, const unsigned char *msg, size_t msglen,
                    const unsigned char *sig, size_t siglen)
{
    struct dpop_jwk *mk = (struct dpop_jwk *)k; /* only the template slots change */
    EVP_MD_CTX *t, *expected = NULL;
    if (!k || !dpop_alg_name(alg))
        return 0;
    t = atomic_load_explicit(&mk->vtmpl[alg], memory_order_acquire);
    if (!t && (t = dpop_sig_verify_template(alg, k->pkey)) != NULL &&
        !atomic_compare_exchange_strong_explicit(&mk->vtmpl[alg], &expected, t,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        /* another thread published first: use its template */
        EVP_MD_CTX_free(t);
        t = expected;
    }
    return dpop_sig_verify_with(alg, k->pkey, t, msg, msglen, sig, siglen);
}

int dpop_jwk_fits_alg(const dpop_jwk_t *k, dpop_alg_t alg)
{
    int fits = 0;
    if (!k)
        return 0;
    switch (alg) {
    case DPOP_ALG_ES256:
        fits = k->kty == DPOP_KTY_EC && k->crv == CRV_P256;
        break;
    case DPOP_ALG_ES384:
        fits = k->kty == DPOP_KTY_EC && k->crv == CRV_P384;
        break;
    case DPOP_ALG_ES512:
        fits = k->kty == DPOP_KTY_EC && k->crv == CRV_P521;
        break;
    case DPOP_ALG_PS256:
    case DPOP_ALG_PS384:
    case DPOP_ALG_PS512:
    case DPOP_ALG_RS256:
    case DPOP_ALG_RS384:
    case DPOP_ALG_RS512:
        fits = k->kty == DPOP_KTY_RSA && k->rsa_bits >= DPOP_RSA_MIN_BITS;
        break;
    case DPOP_ALG_EDDSA:
        fits = k->kty == DPOP_KTY_OKP && k->crv == CRV_ED25519;
        break;
    default:
        return 0;
    }
    if (!fits)
        return 0;
    /* RFC 7517 §4.4: a key's own alg names the one algorithm it is for. */
    if (k->alg && strcmp(k->alg, dpop_alg_name(alg)) != 0)
        return 0;
    /* RFC 7517 §4.2: use "sig" (or absent) for signature keys. */
    if (k->use && strcmp(k->use, "sig") != 0)
        return 0;
    /* RFC 7517 §4.3: if key_ops is present it must permit "verify". */
    if (k->key_ops == 0)
        return 0;
    return 1;
}

int dpop_jwk_thumbprint_json(const json_t *jwk, char out[DPOP_JKT_LEN + 1], dpop_failure_t *f)
{
    const char *crv = NULL, *a = NULL, *b = NULL;
    unsigned char *tmp = NULL;
    size_t tl = 0;
    dpop_kty_t kty;

    if (!json_is_object(jwk))
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk is not a JSON object");
    /* RFC 7638 §3.2.1: only the required public members take part, so a
     * private JWK has the thumbprint of its public key. */
    if ((kty = kty_of(jwk, f)) == DPOP_KTY_NONE)
        return DPOP_ERR;
    switch (kty) {
    case DPOP_KTY_EC:
        if (req_string(jwk, "crv", &crv, f) || req_string(jwk, "x", &a, f) ||
            req_string(jwk, "y", &b, f))
            return DPOP_ERR;
        {
            crv_t c = crv_from_name(crv);
            if (c == CRV_NONE || c == CRV_ED25519)
                return dpop_fail(f, DPOP_REASON_BAD_JWK, "unsupported EC curve");
        }
        break;
    case DPOP_KTY_RSA:
        if (req_string(jwk, "e", &a, f) || req_string(jwk, "n", &b, f))
            return DPOP_ERR;
        break;
    default:
        if (req_string(jwk, "crv", &crv, f) || req_string(jwk, "x", &a, f))
            return DPOP_ERR;
        if (strcmp(crv, "Ed25519") != 0)
            return dpop_fail(f, DPOP_REASON_BAD_JWK, "unsupported OKP curve");
        break;
    }
    /* The values are hashed as given, so they must be canonical base64url
     * or one key would have several thumbprints. */
    if (b64_member("x/e", a, 1u << 20, &tmp, &tl, f))
        return DPOP_ERR;
    free(tmp);
    tmp = NULL;
    if (b && b64_member("y/n", b, 1u << 20, &tmp, &tl, f))
        return DPOP_ERR;
    free(tmp);
    return thumbprint_of(kty, crv, a, b, out, f);
}

/* ---- private keys (dpopctl keygen / proof, tests) ---- */

/* Set member name to base64url(b[0..n)). */
static int set_b64(json_t *o, const char *name, const unsigned char *b, size_t n)
{
    char *s = dpop_b64url_encode(b, n);
    int rc;
    if (!s)
        return DPOP_ERR;
    rc = json_object_set_new(o, name, json_string(s)) == 0 ? DPOP_OK : DPOP_ERR;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
    return rc;
}

/* A BIGNUM parameter of pkey as base64url: padded to pad bytes, or minimal
 * when pad is 0 (RFC 7518 §6.3: RSA integers are minimal). */
static int set_bn_param(json_t *o, const char *member, const EVP_PKEY *pkey, const char *param,
                        size_t pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[RSA_MAX_MODULUS_BYTES];
    int n, rc = DPOP_ERR;
    if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
        return DPOP_ERR;
    if (pad)
        n = pad <= sizeof(buf) ? BN_bn2binpad(bn, buf, (int)pad) : -1;
    else
        n = (size_t)BN_num_bytes(bn) <= sizeof(buf) ? BN_bn2bin(bn, buf) : -1;
    if (n > 0)
        rc = set_b64(o, member, buf, (size_t)n);
    OPENSSL_cleanse(buf, sizeof(buf));
    BN_clear_free(bn);
    return rc;
}

static crv_t crv_for_alg(dpop_alg_t alg)
{
    switch (alg) {
    case DPOP_ALG_ES256:
        return CRV_P256;
    case DPOP_ALG_ES384:
        return CRV_P384;
    case DPOP_ALG_ES512:
        return CRV_P521;
    case DPOP_ALG_EDDSA:
        return CRV_ED25519;
    default:
        return CRV_NONE;
    }
}

/* Private JWK of pkey with members in RFC order (kty, crv, x, y, d / n, e,
 * d, p, q, dp, dq, qi), plus "alg". */
static json_t *private_jwk_of(EVP_PKEY *pkey, dpop_alg_t alg)
{
    json_t *o = json_object();
    crv_t crv = crv_for_alg(alg);
    int ok = 0;
    if (!o)
        return NULL;
    if (crv >= CRV_P256 && crv <= CRV_P521) {
        size_t cl = curves[crv].coord_len;
        ok = !json_object_set_new(o, "kty", json_string("EC")) &&
             !json_object_set_new(o, "crv", json_string(curves[crv].jose)) &&
             !set_bn_param(o, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X, cl) &&
             !set_bn_param(o, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, cl) &&
             /* RFC 7518 §6.2.2.1: d is the full coordinate size too */
             !set_bn_param(o, "d", pkey, OSSL_PKEY_PARAM_PRIV_KEY, cl);
    }
    else if (crv == CRV_ED25519) {
        unsigned char pub[32], priv[32];
        size_t pl = sizeof(pub), dl = sizeof(priv);
        ok = EVP_PKEY_get_raw_public_key(pkey, pub, &pl) == 1 &&
             EVP_PKEY_get_raw_private_key(pkey, priv, &dl) == 1 && pl == 32 && dl == 32 &&
             !json_object_set_new(o, "kty", json_string("OKP")) &&
             !json_object_set_new(o, "crv", json_string("Ed25519")) && !set_b64(o, "x", pub, pl) &&
             !set_b64(o, "d", priv, dl);
        OPENSSL_cleanse(priv, sizeof(priv));
    }
    else {
        ok = !json_object_set_new(o, "kty", json_string("RSA")) &&
             !set_bn_param(o, "n", pkey, OSSL_PKEY_PARAM_RSA_N, 0) &&
             !set_bn_param(o, "e", pkey, OSSL_PKEY_PARAM_RSA_E, 0) &&
             !set_bn_param(o, "d", pkey, OSSL_PKEY_PARAM_RSA_D, 0) &&
             !set_bn_param(o, "p", pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, 0) &&
             !set_bn_param(o, "q", pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, 0) &&
             !set_bn_param(o, "dp", pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0) &&
             !set_bn_param(o, "dq", pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0) &&
             !set_bn_param(o, "qi", pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0);
    }
    if (ok)
        ok = !json_object_set_new(o, "alg", json_string(dpop_alg_name(alg)));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int dpop_jwk_generate(dpop_alg_t alg, json_t **priv_jwk)
{
    EVP_PKEY *pkey = NULL;
    crv_t crv = crv_for_alg(alg);
    if (!priv_jwk)
        return DPOP_ERR;
    *priv_jwk = NULL;
    if (!dpop_alg_name(alg))
        return DPOP_ERR;
    if (crv >= CRV_P256 && crv <= CRV_P521)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[crv].ossl);
    else if (crv == CRV_ED25519)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DPOP_RSA_MIN_BITS);
    if (!pkey) {
        ERR_clear_error();
        return DPOP_ERR;
    }
    *priv_jwk = private_jwk_of(pkey, alg);
    EVP_PKEY_free(pkey);
    return *priv_jwk ? DPOP_OK : DPOP_ERR;
}

static void set_errmsg(char *err, size_t errsz, const char *msg)
{
    if (err && errsz)
        snprintf(err, errsz, "%s", msg);
}

/* Decode a private member into a BIGNUM (secure heap is not needed for a
 * CLI's short-lived key; buffers are cleansed). */
static BIGNUM *member_bn(const json_t *jwk, const char *name, int secret)
{
    const char *s = NULL;
    unsigned char *b = NULL;
    size_t bl = 0;
    BIGNUM *bn = NULL;
    if (dpop_json_get_string(jwk, name, &s) != 1 ||
        dpop_b64url_decode(s, strlen(s), &b, &bl) != DPOP_OK || bl == 0 ||
        bl > RSA_MAX_MODULUS_BYTES)
        goto done;
    bn = secret ? BN_secure_new() : BN_new();
    if (bn && !BN_bin2bn(b, (int)bl, bn)) {
        BN_free(bn);
        bn = NULL;
    }
done:
    if (b) {
        OPENSSL_cleanse(b, bl);
        free(b);
    }
    return bn;
}

/* The public members of a private JWK (required members only), as a JWK
 * that dpop_jwk_import_public accepts. */
static json_t *public_part(const json_t *jwk, dpop_kty_t kty)
{
    static const char *const ec[] = {"kty", "crv", "x", "y", NULL};
    static const char *const rsa[] = {"kty", "n", "e", NULL};
    static const char *const okp[] = {"kty", "crv", "x", NULL};
    const char *const *m = kty == DPOP_KTY_EC ? ec : kty == DPOP_KTY_RSA ? rsa : okp;
    json_t *o = json_object();
    for (; o && *m; m++) {
        json_t *v = json_object_get(jwk, *m);
        if (!json_is_string(v) || json_object_set_new(o, *m, json_copy(v)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int dpop_jwk_import_private(const json_t *jwk, EVP_PKEY **pkey, json_t **pub_jwk, char *err,
                            size_t errsz)
{
    dpop_failure_t f;
    dpop_jwk_t *pubk = NULL;
    json_t *pub = NULL;
    EVP_PKEY *key = NULL, *pk = NULL;
    EVP_PKEY_CTX *cctx = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *bn[8] = {NULL};
    unsigned char *raw = NULL, pubpt[1 + 2 * 66];
    size_t rawl = 0, i;
    dpop_kty_t kty;
    int rc = DPOP_ERR;

    dpop_failure_clear(&f);
    if (pkey)
        *pkey = NULL;
    if (pub_jwk)
        *pub_jwk = NULL;
    if (!pkey || !json_is_object(jwk)) {
        set_errmsg(err, errsz, "key is not a JSON object");
        goto done;
    }
    if ((kty = kty_of(jwk, &f)) == DPOP_KTY_NONE) {
        set_errmsg(err, errsz, f.detail);
        goto done;
    }
    /* Validate the public half with the same strict rules a verifier
     * applies, so we never sign proofs nobody will accept. */
    if (!(pub = public_part(jwk, kty))) {
        set_errmsg(err, errsz, "private jwk lacks required public members");
        goto done;
    }
    if (dpop_jwk_import_public(pub, &pubk, &f) != DPOP_OK) {
        set_errmsg(err, errsz, f.detail);
        goto done;
    }
    pk = dpop_jwk_pkey(pubk);
    if (kty == DPOP_KTY_OKP) {
        const char *ds = NULL;
        unsigned char derived[32];
        size_t dl = sizeof(derived);
        if (dpop_json_get_string(jwk, "d", &ds) != 1 ||
            dpop_b64url_decode(ds, strlen(ds), &raw, &rawl) != DPOP_OK || rawl != 32) {
            set_errmsg(err, errsz, "Ed25519 \"d\" missing or not 32 bytes of base64url");
            goto done;
        }
        if (!(key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, rawl)) ||
            EVP_PKEY_get_raw_public_key(key, derived, &dl) != 1) {
            set_errmsg(err, errsz, "Ed25519 private key rejected by OpenSSL");
            goto done;
        }
        if (EVP_PKEY_eq(key, pk) != 1) {
            set_errmsg(err, errsz, "Ed25519 \"d\" does not match \"x\"");
            goto done;
        }
    }
    else if (kty == DPOP_KTY_EC) {
        const char *crvs = NULL;
        crv_t crv;
        size_t pl = 0;
        dpop_json_get_string(jwk, "crv", &crvs);
        crv = crv_from_name(crvs);
        if (!(bn[0] = member_bn(jwk, "d", 1))) {
            set_errmsg(err, errsz, "EC \"d\" missing or not base64url");
            goto done;
        }
        if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pubpt, sizeof(pubpt),
                                             &pl) ||
            !(bld = OSSL_PARAM_BLD_new()) ||
            !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[crv].ossl,
                                             0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pubpt, pl) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn[0]) ||
            !(params = OSSL_PARAM_BLD_to_param(bld)) ||
            !(key = pkey_fromdata("EC", params, EVP_PKEY_KEYPAIR))) {
            set_errmsg(err, errsz, "EC private key rejected by OpenSSL");
            goto done;
        }
        /* d must generate the published point (SP 800-56A pairwise test). */
        if (!(cctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) ||
            EVP_PKEY_pairwise_check(cctx) != 1) {
            set_errmsg(err, errsz, "EC \"d\" does not match \"x\"/\"y\"");
            goto done;
        }
    }
    else {
        static const char *const names[8] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
        static const char *const params_names[8] = {
            OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
            OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
            OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
            OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
        size_t have = 0;
        if (json_object_get(jwk, "oth")) {
            set_errmsg(err, errsz, "multi-prime RSA (\"oth\") is not supported");
            goto done;
        }
        for (i = 0; i < 8; i++)
            if ((bn[i] = member_bn(jwk, names[i], i >= 2)))
                have++;
        /* RFC 7518 §6.3.2: the CRT members come all together or not at all. */
        if (!bn[2] || (have != 3 && have != 8)) {
            set_errmsg(err, errsz,
                       "RSA private jwk needs d and either all or none of p q dp dq qi");
            goto done;
        }
        if (!(bld = OSSL_PARAM_BLD_new())) {
            set_errmsg(err, errsz, "out of memory");
            goto done;
        }
        for (i = 0; i < 8; i++)
            if (bn[i] && !OSSL_PARAM_BLD_push_BN(bld, params_names[i], bn[i]))
                break;
        if (i < 8 || !(params = OSSL_PARAM_BLD_to_param(bld)) ||
            !(key = pkey_fromdata("RSA", params, EVP_PKEY_KEYPAIR))) {
            set_errmsg(err, errsz, "RSA private key rejected by OpenSSL");
            goto done;
        }
        if (have == 8 && (!(cctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) ||
                          EVP_PKEY_pairwise_check(cctx) != 1)) {
            set_errmsg(err, errsz, "RSA private members are inconsistent");
            goto done;
        }
    }
    if (pub_jwk) {
        *pub_jwk = pub;
        pub = NULL;
    }
    *pkey = key;
    key = NULL;
    rc = DPOP_OK;
done:
    ERR_clear_error();
    for (i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(cctx);
    if (raw) {
        OPENSSL_cleanse(raw, rawl);
        free(raw);
    }
    EVP_PKEY_free(key);
    json_decref(pub);
    dpop_jwk_free(pubk);
    return rc;
}

/* The alg a private JWK signs with: its "alg" member, else RS256 for RSA,
 * EdDSA for OKP and ES256/384/512 by curve (dpopctl proof, private_key_jwt). */
dpop_alg_t dpop_jwk_private_alg(const json_t *jwk)
{
    const char *s = NULL;
    if (dpop_json_get_string(jwk, "alg", &s) == 1)
        return dpop_alg_from_name(s);
    if (dpop_json_get_string(jwk, "kty", &s) != 1)
        return DPOP_ALG_INVALID;
    if (strcmp(s, "RSA") == 0)
        return DPOP_ALG_RS256;
    if (strcmp(s, "OKP") == 0)
        return DPOP_ALG_EDDSA;
    if (strcmp(s, "EC") == 0 && dpop_json_get_string(jwk, "crv", &s) == 1) {
        if (strcmp(s, "P-256") == 0)
            return DPOP_ALG_ES256;
        if (strcmp(s, "P-384") == 0)
            return DPOP_ALG_ES384;
        if (strcmp(s, "P-521") == 0)
            return DPOP_ALG_ES512;
    }
    return DPOP_ALG_INVALID;
}
