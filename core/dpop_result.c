/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_result.c: the reason-code table (DESIGN.md "Reason codes") and the
 * failure-record helpers.  Strings here are the public contract: SOC rules
 * and reports match on them, so they never change spelling.
 */
#include "dpop_result.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *error;
} reason_table[DPOP_REASON__COUNT] = {
    [DPOP_REASON_NONE] = {NULL, NULL},
    [DPOP_REASON_MISSING_PROOF] = {"missing_proof", "invalid_dpop_proof"},
    [DPOP_REASON_MULTIPLE_PROOFS] = {"multiple_proofs", "invalid_dpop_proof"},
    [DPOP_REASON_TOO_LARGE] = {"too_large", "invalid_dpop_proof"},
    [DPOP_REASON_MALFORMED] = {"malformed", "invalid_dpop_proof"},
    [DPOP_REASON_BAD_TYP] = {"bad_typ", "invalid_dpop_proof"},
    [DPOP_REASON_BAD_ALG] = {"bad_alg", "invalid_dpop_proof"},
    [DPOP_REASON_BAD_JWK] = {"bad_jwk", "invalid_dpop_proof"},
    [DPOP_REASON_PRIVATE_KEY_IN_JWK] = {"private_key_in_jwk", "invalid_dpop_proof"},
    [DPOP_REASON_BAD_SIGNATURE] = {"bad_signature", "invalid_dpop_proof"},
    [DPOP_REASON_MISSING_CLAIM] = {"missing_claim", "invalid_dpop_proof"},
    [DPOP_REASON_BAD_CLAIM] = {"bad_claim", "invalid_dpop_proof"},
    [DPOP_REASON_HTM_MISMATCH] = {"htm_mismatch", "invalid_dpop_proof"},
    [DPOP_REASON_HTU_MISMATCH] = {"htu_mismatch", "invalid_dpop_proof"},
    [DPOP_REASON_IAT_TOO_OLD] = {"iat_too_old", "invalid_dpop_proof"},
    [DPOP_REASON_IAT_IN_FUTURE] = {"iat_in_future", "invalid_dpop_proof"},
    [DPOP_REASON_REPLAY] = {"replay", "invalid_dpop_proof"},
    [DPOP_REASON_ATH_MISSING] = {"ath_missing", "invalid_dpop_proof"},
    [DPOP_REASON_ATH_MISMATCH] = {"ath_mismatch", "invalid_dpop_proof"},
    [DPOP_REASON_NONCE_MISSING] = {"nonce_missing", "use_dpop_nonce"},
    [DPOP_REASON_NONCE_INVALID] = {"nonce_invalid", "use_dpop_nonce"},
    [DPOP_REASON_MISSING_TOKEN] = {"missing_token", "invalid_token"},
    [DPOP_REASON_TOKEN_INVALID] = {"token_invalid", "invalid_token"},
    [DPOP_REASON_TOKEN_UNBOUND] = {"token_unbound", "invalid_token"},
    [DPOP_REASON_JKT_MISMATCH] = {"jkt_mismatch", "invalid_token"},
    [DPOP_REASON_BEARER_DOWNGRADE] = {"bearer_downgrade", "invalid_token"},
    [DPOP_REASON_POLICY_DENIED] = {"policy_denied", "insufficient_scope"},
    [DPOP_REASON_KEY_REVOKED] = {"key_revoked", "insufficient_scope"},
};

const char *dpop_reason_name(dpop_reason_t r)
{
    if ((int)r <= DPOP_REASON_NONE || r >= DPOP_REASON__COUNT)
        return NULL;
    return reason_table[r].name;
}

const char *dpop_reason_error(dpop_reason_t r)
{
    if ((int)r <= DPOP_REASON_NONE || r >= DPOP_REASON__COUNT)
        return NULL;
    return reason_table[r].error;
}

dpop_reason_t dpop_reason_from_name(const char *name)
{
    int i;
    if (!name)
        return DPOP_REASON_NONE;
    for (i = 1; i < DPOP_REASON__COUNT; i++) {
        if (strcmp(reason_table[i].name, name) == 0)
            return (dpop_reason_t)i;
    }
    return DPOP_REASON_NONE;
}

void dpop_failure_clear(dpop_failure_t *f)
{
    if (!f)
        return;
    f->error = NULL;
    f->reason = NULL;
    f->code = DPOP_REASON_NONE;
    f->detail[0] = '\0';
}

int dpop_fail(dpop_failure_t *f, dpop_reason_t r, const char *fmt, ...)
{
    va_list ap;
    if (!f)
        return DPOP_ERR;
    f->code = r;
    f->reason = dpop_reason_name(r);
    f->error = dpop_reason_error(r);
    f->detail[0] = '\0';
    if (fmt) {
        char *c;
        va_start(ap, fmt);
        vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
        va_end(ap);
        /* Details quote attacker-chosen claims (htm, typ, alg).  Keep them
         * printable ASCII: no CR/LF or escape sequences in a log line, and
         * no invalid UTF-8 (a multi-byte character cut by a %.*s bound or
         * by the truncation above) in the JSON of dpopctl or the audit
         * store, which would otherwise refuse the whole record. */
        for (c = f->detail; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                *c = '?';
    }
    return DPOP_ERR;
}
