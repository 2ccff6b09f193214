/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_tokensrc.c: libFuzzer target for what the authorization server
 * sends back (issue 17): the same bytes as an RFC 7662 introspection
 * answer (dpop_introspect_parse), as RFC 8414 metadata (dpop_asmeta_parse)
 * and as a JWK Set with an unknown-kid lookup (dpop_jwks_kid_unknown).
 * An accepted introspection answer must be active with a well-formed jkt or
 * none; failures are token_invalid or a bad response, never a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_asmeta.h"
#include "dpop_b64.h"
#include "dpop_introspect.h"
#include "dpop_jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dpop_introspect_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    dpop_asmeta_t m;
    dpop_jwks_t *set = NULL;
    char err[128];
    int rc, active = 0;
    const char *in = (const char *)data;

    memset(&p, 0, sizeof(p));
    p.issuer = "https://as.example.com";
    p.audience = "https://api.example.com";
    p.now = 1700000000;
    p.skew = 5;
    rc = dpop_introspect_parse(in, size, &p, &r, &active, &f);
    if (rc == DPOP_OK && (!active || (r.jkt && !dpop_b64url_is_sha256(r.jkt, strlen(r.jkt)))))
        abort();
    if (rc == DPOP_ERR && f.code != DPOP_REASON_TOKEN_INVALID)
        abort();
    dpop_token_result_clear(&r);

    if (dpop_asmeta_parse(in, size, "https://as.example.com", &m, err, sizeof(err)) == 0 &&
        (!m.issuer || strcmp(m.issuer, "https://as.example.com") != 0))
        abort();
    dpop_asmeta_clear(&m);

    if (dpop_jwks_parse(in, size, &set, err, sizeof(err)) == DPOP_OK) {
        (void)dpop_jwks_kid_unknown(set, "eyJraWQiOiJ4In0.e30.c2ln", 24);
        dpop_jwks_free(set);
    }
    return 0;
}
