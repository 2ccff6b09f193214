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

#include <math.h>
#include <stdio.h>
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
