/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_jwks.c: a JWK Set of verification keys (RFC 7517 §5) and JWS
 * verification against it (access tokens, dpopctl jws-verify).
 *
 * The set is loaded once (configuration time) and is immutable afterwards,
 * so any number of threads may verify against it.  Keys we cannot use
 * (unknown kty, weak RSA, unsupported curve) are skipped and counted rather
 * than failing the whole set: authorization servers publish keys for other
 * consumers too.  A set that carries private key material is refused: it
 * means the resource server holds the issuer's signing secret.
 *
 * kid values are public identifiers and may appear in details (escaped and
 * truncated); key material never does.
 */
#include "dpop_jwks.h"
#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_sig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dpop_jwks {
    dpop_jwk_t *keys[DPOP_JWKS_MAX_KEYS];
    size_t n;
    size_t skipped;
    uint64_t generation; /* unique per load in this process */
};

/* Counts loads, so a set loaded later never shares an id with an earlier
 * one, even at the same address. */
static atomic_uint_fast64_t generations;

static void set_err(char *err, size_t errsz, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_err(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errsz)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

void dpop_jwks_free(dpop_jwks_t *s)
{
    size_t i;
    if (!s)
        return;
    for (i = 0; i < s->n; i++)
        dpop_jwk_free(s->keys[i]);
    free(s);
}

size_t dpop_jwks_count(const dpop_jwks_t *s)
{
    return s ? s->n : 0;
}

uint64_t dpop_jwks_generation(const dpop_jwks_t *s)
{
    return s ? s->generation : 0;
}

size_t dpop_jwks_skipped(const dpop_jwks_t *s)
{
    return s ? s->skipped : 0;
}

int dpop_jwks_parse(const char *json, size_t len, dpop_jwks_t **out, char *err, size_t errsz)
{
    dpop_jwks_t *s = NULL;
    json_t *root = NULL, *keys;
    char jerr[128];
    dpop_failure_t f;
    size_t i;
    int rc = DPOP_ERR;

    if (err && errsz)
        err[0] = '\0';
    if (!out)
        return DPOP_ERR;
    *out = NULL;
    if (!(root = dpop_json_parse_object_max(json, len, DPOP_JWKS_MAX_BYTES, jerr, sizeof(jerr)))) {
        set_err(err, errsz, "JWKS: %s", jerr);
        return DPOP_ERR;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        set_err(err, errsz, "JWKS: out of memory");
        goto done;
    }
    s->generation = atomic_fetch_add(&generations, 1) + 1;
    keys = json_object_get(root, "keys");
    if (keys) {
        /* RFC 7517 §5.1: "keys" is an array of JWK objects. */
        if (!json_is_array(keys)) {
            set_err(err, errsz, "JWKS: \"keys\" is not an array");
            goto done;
        }
        if (json_array_size(keys) > DPOP_JWKS_MAX_KEYS) {
            set_err(err, errsz, "JWKS: more than %d keys", DPOP_JWKS_MAX_KEYS);
            goto done;
        }
        for (i = 0; i < json_array_size(keys); i++) {
            json_t *k = json_array_get(keys, i);
            dpop_failure_clear(&f);
            if (dpop_jwk_import_public(k, &s->keys[s->n], &f) == DPOP_OK) {
                s->n++;
                continue;
            }
            if (f.code == DPOP_REASON_PRIVATE_KEY_IN_JWK) {
                set_err(err, errsz, "JWKS: %s (key %zu); refusing a set with private keys",
                        f.detail, i);
                goto done;
            }
            /* RFC 7517 §5: implementations SHOULD ignore keys they do not
             * understand. */
            s->skipped++;
        }
    }
    else {
        /* A single JWK (DESIGN.md: a --jwks FILE may hold one JWK). */
        dpop_failure_clear(&f);
        if (dpop_jwk_import_public(root, &s->keys[0], &f) != DPOP_OK) {
            set_err(err, errsz, "JWK: %s", f.detail);
            goto done;
        }
        s->n = 1;
    }
    if (s->n == 0) {
        if (err && errsz)
            snprintf(err, errsz, "JWKS: no usable key (%zu skipped)", s->skipped);
        goto done;
    }
    *out = s;
    s = NULL;
    rc = DPOP_OK;
done:
    dpop_jwks_free(s);
    json_decref(root);
    return rc;
}

int dpop_jwks_load_file(const char *path, dpop_jwks_t **out, char *err, size_t errsz)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = -1, rc = DPOP_ERR;

    if (out)
        *out = NULL;
    if (!path || !out) {
        if (err && errsz)
            snprintf(err, errsz, "no JWKS file");
        return DPOP_ERR;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        if (err && errsz)
            snprintf(err, errsz, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > DPOP_JWKS_MAX_BYTES) {
        if (err && errsz)
            snprintf(err, errsz, "%s: not a regular file of at most %d bytes", path,
                     DPOP_JWKS_MAX_BYTES);
        goto done;
    }
    /* One byte more than allowed so a file that grew meanwhile is caught. */
    if (!(buf = malloc(DPOP_JWKS_MAX_BYTES + 1)))
        goto done;
    for (;;) {
        ssize_t r = read(fd, buf + got, DPOP_JWKS_MAX_BYTES + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (err && errsz)
                snprintf(err, errsz, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > DPOP_JWKS_MAX_BYTES) {
            if (err && errsz)
                snprintf(err, errsz, "%s: larger than %d bytes", path, DPOP_JWKS_MAX_BYTES);
            goto done;
        }
    }
    if (dpop_jwks_parse(buf, got, out, err, errsz) == DPOP_OK) {
        rc = DPOP_OK;
    }
    else if (err && errsz) {
        /* Prefix the file name for configtest-style messages. */
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", err);
        snprintf(err, errsz, "%s: %s", path, tmp);
    }
done:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* Copy a kid for a detail message: printable ASCII only, truncated. */
static void safe_kid(const char *kid, char *out, size_t outsz)
{
    size_t i, o = 0;
    for (i = 0; kid[i] && o + 4 < outsz; i++) {
        unsigned char c = (unsigned char)kid[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
        if (i >= 63) {
            out[o++] = '.';
            out[o++] = '.';
            out[o++] = '.';
            break;
        }
    }
    out[o] = '\0';
}

int dpop_jwks_verify(const dpop_jwks_t *s, const dpop_jws_t *jws, dpop_alg_mask_t algs,
                     const char **kid_out, dpop_failure_t *f)
{
    const char *kid = NULL;
    const unsigned char *msg;
    size_t i, kid_matches = 0, tried = 0;
    char shown[80];
    int r;

    if (kid_out)
        *kid_out = NULL;
    if (!s || !jws || !jws->header || !jws->header_b64)
        return dpop_fail(f, DPOP_REASON_BAD_SIGNATURE, "no key set or JWS");
    if (jws->alg == DPOP_ALG_INVALID || !(algs & DPOP_ALG_BIT(jws->alg)))
        return dpop_fail(f, DPOP_REASON_BAD_ALG, "JWS alg is unknown or not allowed");
    r = dpop_json_get_string(jws->header, "kid", &kid);
    if (r < 0)
        return dpop_fail(f, DPOP_REASON_BAD_SIGNATURE, "JWS header kid is not a string");
    msg = (const unsigned char *)jws->header_b64;
    for (i = 0; i < s->n; i++) {
        const dpop_jwk_t *k = s->keys[i];
        const char *kk = dpop_jwk_kid(k);
        if (kid) {
            /* RFC 7515 §4.1.4: kid selects the key; exact match. */
            if (!kk || strcmp(kk, kid) != 0)
                continue;
            kid_matches++;
        }
        if (!dpop_jwk_fits_alg(k, jws->alg))
            continue;
        tried++;
        r = dpop_jwk_verify(k, jws->alg, msg, jws->signing_input_len, jws->sig, jws->siglen);
        if (r < 0)
            return dpop_fail(f, DPOP_REASON_BAD_SIGNATURE, "internal error verifying signature");
        if (r == 1) {
            if (kid_out)
                *kid_out = kk;
            return DPOP_OK;
        }
    }
    if (kid && !kid_matches) {
        safe_kid(kid, shown, sizeof(shown));
        return dpop_fail(f, DPOP_REASON_BAD_SIGNATURE, "no key with kid \"%s\"", shown);
    }
    if (!tried)
        return dpop_fail(f, DPOP_REASON_BAD_SIGNATURE, "no key usable for alg %s",
                         dpop_alg_name(jws->alg));
    return dpop_fail(f, DPOP_REASON_BAD_SIGNATURE, "signature does not verify (%zu key%s tried)",
                     tried, tried == 1 ? "" : "s");
}

int dpop_jwks_kid_unknown(const dpop_jwks_t *s, const char *compact, size_t len)
{
    size_t hl = 0, pl = 0, sl = 0, i, klen;
    unsigned char hdr[DPOP_JWKS_KID_HDR_MAX];
    size_t hdrlen = 0;
    json_t *h = NULL;
    const char *kid = NULL;
    int unknown = 0;
    if (!s || !compact || dpop_jws_split(compact, len, &hl, &pl, &sl) != DPOP_OK)
        return 0;
    if (dpop_b64url_decode_buf(compact, hl, hdr, sizeof(hdr), &hdrlen) != DPOP_OK)
        return 0;
    if (!(h = dpop_json_parse_object((const char *)hdr, hdrlen, NULL, 0)))
        return 0;
    /* Only a kid naming no key of this set can mean a rotation. */
    if (dpop_json_get_string(h, "kid", &kid) == 1) {
        klen = strlen(kid);
        unknown = 1;
        for (i = 0; i < s->n; i++) {
            const char *k = dpop_jwk_kid(s->keys[i]);
            if (k && strlen(k) == klen && memcmp(k, kid, klen) == 0) {
                unknown = 0;
                break;
            }
        }
    }
    json_decref(h);
    return unknown;
}
