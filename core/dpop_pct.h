/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_pct.h: RFC 3986 §2.1 percent-encoding primitives, shared by the htu
 * normalizer (dpop_htu.c) and the policy path normalizer (policy_path.c) so
 * both read "%hh" triplets by one rule.
 *
 * Pure functions: no allocation, no logging, never read past the bytes the
 * caller says are there.
 */
#ifndef DPOP_PCT_H
#define DPOP_PCT_H

#include <stddef.h>

/* Value 0..15 of one hex digit (either case, RFC 3986 §2.1), -1 otherwise. */
int dpop_pct_hexval(unsigned char c);

/* Decode the triplet at s[0..2] (s[0] must be '%'); avail is how many bytes
 * from s on belong to the input.  Sets *out and returns 0, or returns -1
 * for a truncated triplet or a non-hex digit (both callers refuse those). */
int dpop_pct_decode(const char *s, size_t avail, unsigned char *out);

#endif
