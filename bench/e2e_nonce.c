/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e_nonce.c: bench_e2e.sh's helper for scenario (d), DPoPNonce On.
 *
 * The client of a benchmark must mint its proofs before timing starts, so
 * it needs the nonce the server will hand out, ahead of the server.  Nonces
 * are stateless (dpop_nonce.h: an HMAC of the current time bucket), so this
 * computes exactly what mod_dpop computes: the same secret file read by the
 * same loader, the same bucket, dpop_nonce_make().
 *
 *   e2e_nonce SECRET_FILE [LIFETIME]  ->  "NONCE SECONDS_LEFT_IN_BUCKET"
 *
 * LIFETIME is DPoPNonceLifetime (default 300).  A bench helper only: never
 * installed, and it prints the nonce, never the secret.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/crypto.h>

#include "dpop_nonce.h"
#include "dpop_result.h"

int main(int argc, char **argv)
{
    unsigned char *secret = NULL;
    size_t secretlen = 0;
    char nonce[DPOP_NONCE_LEN + 1], err[256];
    int64_t lifetime = 300, now;
    int rc = 1;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: e2e_nonce SECRET_FILE [LIFETIME]\n");
        return 2;
    }
    if (argc == 3 && (lifetime = strtoll(argv[2], NULL, 10)) <= 0) {
        fprintf(stderr, "e2e_nonce: LIFETIME must be a positive number of seconds\n");
        return 2;
    }
    if (dpop_nonce_secret_load(argv[1], &secret, &secretlen, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "e2e_nonce: %s\n", err);
        return 1;
    }
    now = (int64_t)time(NULL);
    if (dpop_nonce_make(secret, secretlen, now, lifetime, nonce, sizeof(nonce)) != DPOP_OK) {
        fprintf(stderr, "e2e_nonce: cannot compute the nonce\n");
        goto done;
    }
    /* The caller waits for the next bucket when its run would cross it. */
    printf("%s %lld\n", nonce, (long long)(lifetime - now % lifetime));
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    OPENSSL_clear_free(secret, secretlen);
    return rc;
}
