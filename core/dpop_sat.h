/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_sat.h: int64 addition and subtraction saturated to the int64 range,
 * for NumericDate windows (RFC 7519 §2) where a hostile iat/exp/nbf or an
 * extreme configuration must never overflow (undefined behaviour in C) and
 * must never wrap a bound around to the other side.
 *
 * Header-only (static inline): no state, no allocation, no logging.
 */
#ifndef DPOP_SAT_H
#define DPOP_SAT_H

#include <stdint.h>

static inline int64_t dpop_sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline int64_t dpop_sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b > 0 ? INT64_MIN : INT64_MAX;
    return r;
}

#endif
