/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_sha256.c: SHA-256 with a once-fetched EVP_MD (see dpop_sha256.h).
 *
 * The fetched object lives until the process exits: freeing it at exit
 * would race with threads still hashing, and OpenSSL frees its providers
 * itself.
 */
#include "dpop_sha256.h"
#include "dpop_result.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256;

static void fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *dpop_sha256_md(void)
{
    pthread_once(&once, fetch);
    return sha256;
}

int dpop_sha256(const void *a, size_t an, const void *b, size_t bn, unsigned char out[32])
{
    EVP_MD_CTX *ctx = NULL;
    const EVP_MD *md = dpop_sha256_md();
    unsigned int n = 0;
    int rc = DPOP_ERR;
    if (!md || !out || (!a && an) || (!b && bn))
        return DPOP_ERR;
    if (!(ctx = EVP_MD_CTX_new()))
        goto done;
    if (!EVP_DigestInit_ex(ctx, md, NULL) || (an && !EVP_DigestUpdate(ctx, a, an)) ||
        (bn && !EVP_DigestUpdate(ctx, b, bn)) || !EVP_DigestFinal_ex(ctx, out, &n) || n != 32)
        goto done;
    rc = DPOP_OK;
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}
