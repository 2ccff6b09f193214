/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_jws.h: compact JWS (RFC 7515 §7.1) parsing and creation.
 *
 * Parsing is strict: exactly three segments of canonical base64url, a
 * non-empty header that is a JSON object (dpop_json.h rules), "alg" a string,
 * "crit" rejected unless every name in it is understood (we understand none,
 * so any crit fails: RFC 7515 §4.1.11).  The payload is a JSON object (a JWT:
 * proofs, access tokens) unless DPOP_JWS_ANY_PAYLOAD asks for the bare JWS
 * layer, where it is any octet sequence, empty (detached) included.  The
 * signature segment may be empty: callers refuse it through their alg check
 * (none -> bad_alg) or their signature check (bad_signature).
 */
#ifndef DPOP_JWS_H
#define DPOP_JWS_H

#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "dpop_alg.h"
#include "dpop_result.h"

typedef struct {
    json_t *header;         /* owned */
    json_t *payload;        /* owned; NULL with DPOP_JWS_ANY_PAYLOAD */
    const char *header_b64; /* points into the caller's compact string */
    size_t header_b64_len;
    size_t signing_input_len; /* compact[0..signing_input_len) = header.payload */
    unsigned char *sig;       /* owned, decoded */
    size_t siglen;
    const char *alg_name; /* borrowed from header; NULL if absent */
    dpop_alg_t alg;       /* DPOP_ALG_INVALID when unknown/forbidden */
} dpop_jws_t;

/* Parse compact[0..len).  len > max_len fails with DPOP_REASON_TOO_LARGE;
 * structure/encoding/JSON errors with DPOP_REASON_MALFORMED; crit with
 * DPOP_REASON_BAD_CLAIM.  The alg is looked up but NOT judged here (callers
 * decide bad_alg against their allow-list).  On success call
 * dpop_jws_clear(); on failure nothing needs freeing.  compact must outlive
 * the dpop_jws_t (header_b64 points into it). */
int dpop_jws_parse(const char *compact, size_t len, size_t max_len, dpop_jws_t *out,
                   dpop_failure_t *f);

/* RFC 7515 §2: a JWS payload is any octet sequence.  With this flag the
 * payload segment is only checked to be canonical base64url (it may be
 * empty) and out->payload stays NULL: dpopctl jws-verify, the signature
 * layer alone.  Without it (dpop_jws_parse) the payload must be a JSON
 * object. */
#define DPOP_JWS_ANY_PAYLOAD 1u
int dpop_jws_parse_flags(const char *compact, size_t len, size_t max_len, unsigned flags,
                         dpop_jws_t *out, dpop_failure_t *f);

/* RFC 7515 §7.1: exactly three dot-separated parts.  DPOP_OK with the
 * lengths of header, payload and signature (any may be 0: callers decide
 * which may be empty), DPOP_ERR for two dots too few or too many. */
int dpop_jws_split(const char *compact, size_t len, size_t *hl, size_t *pl, size_t *sl);

void dpop_jws_clear(dpop_jws_t *jws);

/* Create a compact JWS: header and payload serialized compactly.  *out
 * caller frees with free(). */
int dpop_jws_sign(const json_t *header, const json_t *payload, dpop_alg_t alg, EVP_PKEY *key,
                  char **out);

#endif /* DPOP_JWS_H */
