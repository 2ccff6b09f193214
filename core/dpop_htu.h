/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_htu.h: the htu comparison of RFC 9449 §4.3 (9).
 *
 * Both sides are reduced to scheme://authority/path: query and fragment
 * dropped, then RFC 3986 §6.2.2 syntax-based normalization (scheme and host
 * lower-cased, percent-encoding hex upper-cased, percent-encoded unreserved
 * characters decoded, dot-segments removed) and §6.2.3 scheme-based
 * normalization (default port 80/443 removed, empty path -> "/").  Only
 * absolute http(s) URIs with an authority are accepted; userinfo is
 * rejected (it has no place in a request target).
 */
#ifndef DPOP_HTU_H
#define DPOP_HTU_H

#include <stddef.h>

#define DPOP_HTU_MAX 8192

/* Normalize uri into out (outsz >= strlen(uri) + 2 suffices).
 * DPOP_OK or DPOP_ERR for a URI that is not acceptable. */
int dpop_htu_normalize(const char *uri, char *out, size_t outsz);

/* 1 when both normalize and are equal, 0 otherwise (including either side
 * being unparseable). */
int dpop_htu_equal(const char *a, const char *b);

#endif /* DPOP_HTU_H */
