/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_b64.c: strict base64url encode/decode.
 *
 * Hand-written rather than OpenSSL's EVP_DecodeBlock because the latter
 * accepts padding and whitespace and has no base64url alphabet; JOSE needs a
 * canonical, unpadded decoder that rejects everything else.  This is
 * encoding, not cryptography; dpop_b64url_sha256 only hands the digest to
 * OpenSSL EVP.
 */
#include "dpop_b64.h"
#include "dpop_result.h"
#include "dpop_sha256.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for alphabet characters, 0xff otherwise. */
/* clang-format off */
static const unsigned char b64url_rev[256] = {
#define X 0xff
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, /* 0x00 */
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, /* 0x10 */
    X, X, X, X, X, X, X, X, X, X, X, X, X, 62, X, X, /* 0x20: '-' */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X, /* 0x30: 0-9 */
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, /* 0x40: A-O */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, 63, /* 0x50: P-Z, '_' */
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 0x60: a-o */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X, /* 0x70: p-z */
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
#undef X
};
/* clang-format on */

size_t dpop_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0);
}

size_t dpop_b64url_encode_buf(const unsigned char *in, size_t n, char *out, size_t outsz)
{
    size_t need = dpop_b64url_encoded_len(n), i = 0, o = 0;
    if (outsz < need + 1)
        return (size_t)-1;
    while (i + 3 <= n) {
        unsigned v = ((unsigned)in[i] << 16) | ((unsigned)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
        i += 3;
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    }
    else if (n - i == 2) {
        unsigned v = ((unsigned)in[i] << 16) | ((unsigned)in[i + 1] << 8);
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

char *dpop_b64url_encode(const unsigned char *in, size_t n)
{
    size_t need = dpop_b64url_encoded_len(n) + 1;
    char *out = malloc(need);
    if (!out)
        return NULL;
    dpop_b64url_encode_buf(in, n, out, need);
    return out;
}

int dpop_b64url_decode_buf(const char *in, size_t len, unsigned char *out, size_t outsz,
                           size_t *outlen)
{
    size_t i = 0, o = 0, rem = len % 4;
    /* A single leftover character cannot encode a whole byte. */
    if (rem == 1)
        return DPOP_ERR;
    if (outsz < (len / 4) * 3 + (rem ? rem - 1 : 0))
        return DPOP_ERR;
    while (i + 4 <= len) {
        unsigned char a = b64url_rev[(unsigned char)in[i]],
                      b = b64url_rev[(unsigned char)in[i + 1]],
                      c = b64url_rev[(unsigned char)in[i + 2]],
                      d = b64url_rev[(unsigned char)in[i + 3]];
        if ((a | b | c | d) & 0xc0)
            return DPOP_ERR;
        out[o++] = (unsigned char)((a << 2) | (b >> 4));
        out[o++] = (unsigned char)((b << 4) | (c >> 2));
        out[o++] = (unsigned char)((c << 6) | d);
        i += 4;
    }
    if (rem) {
        unsigned char a = b64url_rev[(unsigned char)in[i]],
                      b = b64url_rev[(unsigned char)in[i + 1]];
        unsigned char c = rem == 3 ? b64url_rev[(unsigned char)in[i + 2]] : 0;
        if ((a | b | c) & 0xc0)
            return DPOP_ERR;
        out[o++] = (unsigned char)((a << 2) | (b >> 4));
        if (rem == 2) {
            /* Canonical form: the 4 unused bits of b are zero. */
            if (b & 0x0f)
                return DPOP_ERR;
        }
        else {
            out[o++] = (unsigned char)((b << 4) | (c >> 2));
            if (c & 0x03)
                return DPOP_ERR;
        }
    }
    if (outlen)
        *outlen = o;
    return DPOP_OK;
}

int dpop_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    size_t cap = (len / 4) * 3 + 3, n = 0;
    unsigned char *buf;
    *out = NULL;
    if (!(buf = malloc(cap + 1)))
        return DPOP_ERR;
    if (dpop_b64url_decode_buf(in, len, buf, cap, &n) != DPOP_OK) {
        free(buf);
        return DPOP_ERR;
    }
    buf[n] = '\0';
    *out = buf;
    if (outlen)
        *outlen = n;
    return DPOP_OK;
}

int dpop_b64url_is_sha256(const char *s, size_t len)
{
    unsigned char tmp[33];
    size_t n = 0;
    if (len != 43)
        return 0;
    return dpop_b64url_decode_buf(s, len, tmp, sizeof(tmp), &n) == DPOP_OK && n == 32;
}

void dpop_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int dpop_b64url_sha256(const void *in, size_t n, char out[44])
{
    unsigned char md[32];
    out[0] = '\0';
    if (dpop_sha256(in, n, NULL, 0, md) != DPOP_OK ||
        dpop_b64url_encode_buf(md, 32, out, 44) != 43) {
        out[0] = '\0';
        return DPOP_ERR;
    }
    return DPOP_OK;
}
