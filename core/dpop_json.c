/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_json.c: strict JSON objects for JOSE headers, claims and JWKs.
 *
 * jansson does the parsing with JSON_REJECT_DUPLICATES (RFC 7515 §4: a JOSE
 * header with duplicate names MUST be rejected or use the last one; we
 * reject, so two parsers can never disagree about a proof), without
 * JSON_DECODE_ANY (only containers at the top), without JSON_ALLOW_NUL
 * (strings with U+0000 are refused: they truncate in C) and without
 * JSON_DISABLE_EOF_CHECK (trailing bytes after the value are an error).
 * jansson itself refuses invalid UTF-8.  We add a size bound before parsing
 * and a depth bound after it.
 *
 * Never copies input bytes into error text: the input may be a proof or a
 * token.
 */
#include "dpop_json.h"
#include "dpop_result.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t errsz, const char *msg)
{
    if (err && errsz)
        snprintf(err, errsz, "%s", msg);
}

/* Depth of nested containers, the object itself being 1.  Recursion is
 * bounded by jansson's own parser depth limit and by our early return. */
static int json_depth_ok(const json_t *v, int depth)
{
    if (depth > DPOP_JSON_MAX_DEPTH)
        return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            if ((json_is_object(m) || json_is_array(m)) && !json_depth_ok(m, depth + 1))
                return 0;
        }
    }
    else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if ((json_is_object(m) || json_is_array(m)) && !json_depth_ok(m, depth + 1))
                return 0;
        }
    }
    return 1;
}

static size_t digits_at(const char *s, size_t len, size_t i)
{
    size_t j = i;
    while (j < len && s[j] >= '0' && s[j] <= '9')
        j++;
    return j - i;
}

/* Length of the JSON number token at s[0..len), exactly by the RFC 8259 §6
 * grammar (-? int frac? exp?), 0 when there is none. */
static size_t number_len(const char *s, size_t len)
{
    size_t i = 0, d;
    if (i < len && s[i] == '-')
        i++;
    if (!(d = digits_at(s, len, i)) || (s[i] == '0' && d > 1))
        return 0;
    i += d;
    if (i < len && s[i] == '.') {
        if (!(d = digits_at(s, len, i + 1)))
            return 0;
        i += 1 + d;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (!(d = digits_at(s, len, j)))
            return 0;
        i = j + d;
    }
    return i;
}

/* Would jansson refuse this (well-formed) number token as too large
 * (json_error_numeric_overflow): an integer outside json_int_t, or a real
 * whose magnitude overflows a double?  The real is rebuilt as DIGITSeEXP
 * without a decimal point, so the current locale cannot change the answer. */
static int number_overflows(const char *s, size_t n)
{
    char tmp[64];
    size_t i = 0, o = 0;
    long long scale = 0, exp = 0;
    int real = 0, in_frac = 0, eneg = 0;
    for (i = 0; i < n; i++)
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
            real = 1;
    if (!real) {
        /* no leading zeros in JSON: 20 digits or more never fit 64 bits */
        char *end = NULL;
        if (n - (s[0] == '-') >= 20)
            return 1;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        errno = 0;
        (void)strtoll(tmp, &end, 10);
        return errno == ERANGE;
    }
    i = 0;
    if (s[0] == '-')
        tmp[o++] = s[i++];
    for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] == '.') {
            in_frac = 1;
        }
        else if (o < 40) { /* enough digits to decide */
            tmp[o++] = s[i];
            scale -= in_frac;
        }
        else if (!in_frac) {
            scale++; /* a dropped integer digit still scales the value */
        }
    }
    if (i < n) {
        i++;
        if (s[i] == '+' || s[i] == '-')
            eneg = s[i++] == '-';
        for (; i < n; i++)
            if (exp < 1000000) /* clamped: only its size matters */
                exp = exp * 10 + (s[i] - '0');
    }
    snprintf(tmp + o, sizeof(tmp) - o, "e%lld", (eneg ? -exp : exp) + scale);
    errno = 0;
    return isinf(strtod(tmp, NULL)) && errno == ERANGE;
}

/*
 * RFC 8259 §6 allows numbers of any size; jansson refuses the ones it cannot
 * represent (json_error_numeric_overflow) although the text is well-formed
 * JSON.  No member we read can hold such a number meaningfully (iat, exp,
 * nbf are times), so a copy of the text is made in which each of them reads
 * as null (the token overwritten by "null" and spaces): the member then
 * fails its own type check (bad_claim, token_invalid, bad_jwk) or, unknown
 * to us, is ignored, instead of the whole object being called malformed.
 * NULL when there was nothing to replace (or on ENOMEM).
 */
static char *null_out_big_numbers(const char *buf, size_t len)
{
    char *copy = NULL;
    size_t i = 0, n;
    int in_str = 0, changed = 0;
    if (!(copy = malloc(len ? len : 1)))
        return NULL;
    memcpy(copy, buf, len);
    while (i < len) {
        char c = copy[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            i++;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            i++;
            continue;
        }
        if ((c == '-' || (c >= '0' && c <= '9')) && (n = number_len(copy + i, len - i)) > 0) {
            /* an overflowing token is at least 5 bytes ("1e309"): room for
             * "null" */
            if (n >= 4 && number_overflows(copy + i, n)) {
                memcpy(copy + i, "null", 4);
                memset(copy + i + 4, ' ', n - 4);
                changed = 1;
            }
            i += n;
            continue;
        }
        i++;
    }
    if (!changed) {
        free(copy);
        return NULL;
    }
    return copy;
}

json_t *dpop_json_parse_object_max(const char *buf, size_t len, size_t max_bytes, char *err,
                                   size_t errsz)
{
    json_error_t je;
    json_t *v = NULL;
    set_err(err, errsz, "");
    if (!buf) {
        set_err(err, errsz, "no JSON input");
        return NULL;
    }
    if (len > max_bytes) {
        set_err(err, errsz, "JSON text too large");
        return NULL;
    }
    /* Cheap pre-check: a JSON object text starts with '{' after optional
     * whitespace (RFC 8259 §2); saves a parse of arrays and scalars. */
    {
        size_t i = 0;
        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
            i++;
        if (i == len || buf[i] != '{') {
            set_err(err, errsz, "JSON text is not an object");
            return NULL;
        }
    }
    v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!v && json_error_code(&je) == json_error_numeric_overflow) {
        char *copy = null_out_big_numbers(buf, len);
        if (copy) {
            v = json_loadb(copy, len, JSON_REJECT_DUPLICATES, &je);
            free(copy);
        }
    }
    if (!v) {
        /* je.text may quote the input (e.g. a duplicate key name): keep
         * only the position, never the bytes. */
        if (err && errsz)
            snprintf(err, errsz,
                     "invalid JSON (duplicate member, bad UTF-8 or syntax) at offset %d",
                     je.position);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        set_err(err, errsz, "JSON text is not an object");
        return NULL;
    }
    if (!json_depth_ok(v, 1)) {
        json_decref(v);
        set_err(err, errsz, "JSON nesting too deep");
        return NULL;
    }
    return v;
}

json_t *dpop_json_parse_object(const char *buf, size_t len, char *err, size_t errsz)
{
    return dpop_json_parse_object_max(buf, len, DPOP_JSON_MAX_BYTES, err, errsz);
}

int dpop_json_get_string(const json_t *obj, const char *key, const char **out)
{
    json_t *v;
    const char *s;
    size_t n;
    if (out)
        *out = NULL;
    if (!json_is_object(obj) || !key || !(v = json_object_get(obj, key)))
        return 0;
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    n = json_string_length(v);
    /* Objects built in code (not parsed) may hold NUL; an empty string is
     * never a meaningful JOSE value. */
    if (n == 0 || strlen(s) != n)
        return -1;
    if (out)
        *out = s;
    return 1;
}

/* 2^53: every integer of magnitude up to this is exactly a double, and a
 * decimal text that parsed to an integral double beyond it may have been
 * rounded, so we cannot know which integer the sender meant. */
#define DPOP_JSON_EXACT_LIMIT 9007199254740992.0

int dpop_json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v;
    if (!json_is_object(obj) || !key || !(v = json_object_get(obj, key)))
        return 0;
    if (json_is_integer(v)) {
        if (out)
            *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d != floor(d) || fabs(d) > DPOP_JSON_EXACT_LIMIT)
            return -1;
        if (out)
            *out = (int64_t)d;
        return 1;
    }
    /* booleans, strings, null, containers */
    return -1;
}
