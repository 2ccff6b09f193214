/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_time.c: RFC 3339 formatting/parsing and relative CLI times.
 * Civil-date arithmetic is done here (days_from_civil) instead of timegm()
 * so the result never depends on the TZ environment.  Never touches events.
 */
#include "audit_time.h"
#include "dpop_result.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define US_PER_S INT64_C(1000000)

int64_t audit_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * well-known algorithm, valid for every year we accept). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

size_t audit_time_format(int64_t ts_us, char *out, size_t outsz)
{
    int64_t secs = ts_us / US_PER_S;
    int64_t us = ts_us % US_PER_S;
    if (us < 0) {
        us += US_PER_S;
        secs -= 1;
    }
    int64_t days = secs / 86400;
    int64_t sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y < 0 || y > 9999 || outsz < AUDIT_TS_MAX)
        return 0;
    int n = snprintf(out, outsz, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", (int)y, mo, d,
                     (int)(sod / 3600), (int)(sod % 3600 / 60), (int)(sod % 60), (int)us);
    return n > 0 && (size_t)n < outsz ? (size_t)n : 0;
}

/* Read exactly n decimal digits. */
static int digits(const char **p, int n, int *v)
{
    int r = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return DPOP_ERR;
        r = r * 10 + (c - '0');
    }
    *p += n;
    *v = r;
    return DPOP_OK;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int audit_time_parse_rfc3339(const char *s, int64_t *ts_us)
{
    int y, mo, d, h = 0, mi = 0, se = 0, off = 0;
    int64_t frac = 0;
    const char *p = s;
    if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return DPOP_ERR;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return DPOP_ERR;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return DPOP_ERR;
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
            digits(&p, 2, &se))
            return DPOP_ERR;
        /* RFC 3339 §5.6 allows second 60 (leap second): fold it into :59. */
        if (h > 23 || mi > 59 || se > 60)
            return DPOP_ERR;
        if (se == 60)
            se = 59;
        if (*p == '.') {
            int nd = 0;
            p++;
            while (*p >= '0' && *p <= '9') {
                if (nd < 6) {
                    frac = frac * 10 + (*p - '0');
                }
                nd++;
                p++;
                if (nd > 18)
                    return DPOP_ERR;
            }
            if (nd == 0)
                return DPOP_ERR;
            for (int i = nd; i < 6; i++)
                frac *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        }
        else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return DPOP_ERR;
            off = sign * (oh * 3600 + om * 60);
        }
        else {
            return DPOP_ERR;
        }
        if (*p != '\0')
            return DPOP_ERR;
    }
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
    *ts_us = secs * US_PER_S + frac;
    return DPOP_OK;
}

int audit_time_parse_arg(const char *s, int64_t now_us, int64_t *ts_us)
{
    if (!s || !*s)
        return DPOP_ERR;
    if (strcmp(s, "now") == 0) {
        *ts_us = now_us;
        return DPOP_OK;
    }
    size_t len = strlen(s);
    char unit = s[len - 1];
    int64_t mult = 0;
    switch (unit) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 7 * 86400;
        break;
    default:
        break;
    }
    if (mult && len >= 2 && len <= 10) {
        int64_t n = 0;
        for (size_t i = 0; i + 1 < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return audit_time_parse_rfc3339(s, ts_us);
            n = n * 10 + (s[i] - '0');
        }
        /* at most 9 digits: n * mult * 1e6 stays far below INT64_MAX / 2 */
        if (n > INT64_C(100000) * 365 * 86400 / mult)
            return DPOP_ERR;
        *ts_us = now_us - n * mult * US_PER_S;
        return DPOP_OK;
    }
    return audit_time_parse_rfc3339(s, ts_us);
}
