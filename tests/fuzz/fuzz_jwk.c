/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jwk.c: libFuzzer target for JWK JSON import and RFC 7638
 * thumbprints: strict JSON object parsing, public and private import, the
 * thumbprint of the imported key against the thumbprint computed from the
 * JSON (they must agree), and JWK Set parsing of the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128], jkt[DPOP_JKT_LEN + 1];
    dpop_failure_t f;
    dpop_jwk_t *k = NULL;
    dpop_jwks_t *set = NULL;
    json_t *jwk, *pub = NULL;
    EVP_PKEY *pk = NULL;
    int tp;

    if (size > 65536)
        return 0;
    if (dpop_jwks_parse((const char *)data, size, &set, err, sizeof(err)) == DPOP_OK) {
        if (dpop_jwks_count(set) == 0)
            abort(); /* zero usable keys must be an error */
        dpop_jwks_free(set);
    }
    jwk = dpop_json_parse_object((const char *)data, size, err, sizeof(err));
    if (!jwk)
        return 0;
    tp = dpop_jwk_thumbprint_json(jwk, jkt, &f);
    if (dpop_jwk_import_public(jwk, &k, &f) == DPOP_OK) {
        /* an importable key always has a thumbprint, and the same one */
        if (tp != DPOP_OK || strcmp(jkt, dpop_jwk_thumbprint(k)) != 0)
            abort();
        if (!dpop_jwk_pkey(k))
            abort();
        dpop_jwk_free(k);
    }
    else if (!f.reason) {
        abort(); /* a failure always carries a reason */
    }
    if (dpop_jwk_import_private(jwk, &pk, &pub, err, sizeof(err)) == DPOP_OK) {
        if (!pub)
            abort();
        EVP_PKEY_free(pk);
        json_decref(pub);
    }
    json_decref(jwk);
    return 0;
}
