/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_result.h: status codes and the failure record shared by the whole
 * verification core.
 *
 * A failure separates what the client may see (the RFC error code and our
 * reason code, both fixed vocabulary from DESIGN.md) from the detail text
 * that goes only to the error log.  The detail must never contain token,
 * proof or key material: callers describe *what* is wrong, not the bytes.
 */
#ifndef DPOP_RESULT_H
#define DPOP_RESULT_H

#include <stddef.h>

#define DPOP_OK 0
#define DPOP_ERR (-1)

/* The fixed reason vocabulary of DESIGN.md, in its table order. */
typedef enum {
    DPOP_REASON_NONE = 0,
    DPOP_REASON_MISSING_PROOF,
    DPOP_REASON_MULTIPLE_PROOFS,
    DPOP_REASON_TOO_LARGE,
    DPOP_REASON_MALFORMED,
    DPOP_REASON_BAD_TYP,
    DPOP_REASON_BAD_ALG,
    DPOP_REASON_BAD_JWK,
    DPOP_REASON_PRIVATE_KEY_IN_JWK,
    DPOP_REASON_BAD_SIGNATURE,
    DPOP_REASON_MISSING_CLAIM,
    DPOP_REASON_BAD_CLAIM,
    DPOP_REASON_HTM_MISMATCH,
    DPOP_REASON_HTU_MISMATCH,
    DPOP_REASON_IAT_TOO_OLD,
    DPOP_REASON_IAT_IN_FUTURE,
    DPOP_REASON_REPLAY,
    DPOP_REASON_ATH_MISSING,
    DPOP_REASON_ATH_MISMATCH,
    DPOP_REASON_NONCE_MISSING,
    DPOP_REASON_NONCE_INVALID,
    DPOP_REASON_MISSING_TOKEN,
    DPOP_REASON_TOKEN_INVALID,
    DPOP_REASON_TOKEN_UNBOUND,
    DPOP_REASON_JKT_MISMATCH,
    DPOP_REASON_BEARER_DOWNGRADE,
    DPOP_REASON_POLICY_DENIED,
    DPOP_REASON_KEY_REVOKED,
    DPOP_REASON__COUNT
} dpop_reason_t;

#define DPOP_DETAIL_MAX 256

typedef struct {
    const char *error;  /* "invalid_dpop_proof": WWW-Authenticate; NULL if none */
    const char *reason; /* "htu_mismatch": audit, alerts, reports; NULL if none */
    dpop_reason_t code;
    char detail[DPOP_DETAIL_MAX]; /* human text for the error log; never secrets */
} dpop_failure_t;

/* Reason code string ("htu_mismatch"); NULL for DPOP_REASON_NONE or out of range. */
const char *dpop_reason_name(dpop_reason_t r);
/* RFC error code for a reason ("invalid_dpop_proof"); NULL for NONE. */
const char *dpop_reason_error(dpop_reason_t r);
/* Reverse lookup; DPOP_REASON_NONE when the name is unknown. */
dpop_reason_t dpop_reason_from_name(const char *name);

/* Reset to "no failure". */
void dpop_failure_clear(dpop_failure_t *f);
/* Record a failure (f may be NULL).  Always returns DPOP_ERR so callers can
 * write `return dpop_fail(f, DPOP_REASON_X, "...")`.  The formatted detail is
 * truncated to DPOP_DETAIL_MAX - 1 bytes, and every byte outside printable
 * ASCII (controls, DEL, UTF-8) becomes '?', so a detail is always safe in a
 * log line and valid UTF-8 in JSON. */
int dpop_fail(dpop_failure_t *f, dpop_reason_t r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* DPOP_RESULT_H */
