/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_json.h: strict JSON for JOSE.
 *
 * Every JOSE header and claims set must be a JSON object (RFC 7515 §4,
 * RFC 7519 §7.2).  Duplicate member names are rejected (RFC 7515 §4: "MUST
 * either reject"), input size and nesting depth are bounded, and the bytes
 * must be valid UTF-8 without NUL.
 */
#ifndef DPOP_JSON_H
#define DPOP_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define DPOP_JSON_MAX_DEPTH 16
#define DPOP_JSON_MAX_BYTES (64 * 1024)

/* Parse buf[0..len) as one JSON object.  Returns a new reference (caller
 * frees with json_decref) or NULL with a short reason in err (no input
 * bytes are echoed into err). */
json_t *dpop_json_parse_object(const char *buf, size_t len, char *err, size_t errsz);
/* Same with another size bound (a JWK Set file may exceed DPOP_JSON_MAX_BYTES). */
json_t *dpop_json_parse_object_max(const char *buf, size_t len, size_t max_bytes, char *err,
                                   size_t errsz);

/* Member accessors that distinguish "absent" from "wrong type".
 * Return 1 found with the right type, 0 absent, -1 present but wrong type
 * (or, for strings, empty / containing NUL). */
int dpop_json_get_string(const json_t *obj, const char *key, const char **out);
/* JSON numbers that are integers (no fraction, no exponent overflow); a
 * real with an integral value (e.g. 1.7e9) is accepted only when exactly
 * representable. */
int dpop_json_get_int(const json_t *obj, const char *key, int64_t *out);

#endif /* DPOP_JSON_H */
