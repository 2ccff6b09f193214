/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_time.c: RFC 3339 timestamps for not_before / not_after.
 *
 * Strict RFC 3339 §5.6 date-time: full-date "T" full-time with "Z" or a
 * numeric offset (a timestamp without zone is ambiguous for a server that
 * may run in any timezone, so it is refused).  Pure arithmetic: no locale,
 * no TZ environment, no libc time conversion that could differ per host.
 */
#include "policy_internal.h"

#include <stdio.h>

static int digits(const char *s, size_t n, int *out)
{
    size_t i;
    int v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return DPOP_ERR;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return DPOP_OK;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int policy_time_parse(const char *s, size_t len, int64_t *out, const char **why)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    size_t i = 19;
    int64_t t;
    const char *dummy = NULL;

    if (!why)
        why = &dummy;
    *why = "expected an RFC 3339 timestamp such as 2026-01-01T00:00:00Z";
    /* RFC 3339 §5.6: date-fullyear "-" date-month "-" date-mday "T"
     * time-hour ":" time-minute ":" time-second [time-secfrac] time-offset */
    if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return DPOP_ERR;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return DPOP_ERR;
    if (mo < 1 || mo > 12) {
        *why = "the month must be 01 to 12";
        return DPOP_ERR;
    }
    if (d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y))) {
        *why = "that day does not exist in that month";
        return DPOP_ERR;
    }
    if (h > 23 || mi > 59 || sec > 59) {
        /* a leap second (:60) cannot be a validity bound: refuse it */
        *why = "the time of day is out of range (hour 00-23, minute and second 00-59)";
        return DPOP_ERR;
    }
    if (i < len && s[i] == '.') { /* time-secfrac = "." 1*DIGIT; truncated */
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return DPOP_ERR;
    }
    if (i >= len)
        goto nozone;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        sign = 0;
    }
    else if ((s[i] == '+' || s[i] == '-') && i + 6 == len && s[i + 3] == ':') {
        sign = s[i] == '+' ? 1 : -1;
        if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om))
            return DPOP_ERR;
        if (oh > 23 || om > 59) {
            *why = "the UTC offset is out of range";
            return DPOP_ERR;
        }
    }
    else {
        return DPOP_ERR; /* junk after the seconds: the generic sentence */
    }
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    *out = t;
    *why = NULL;
    return DPOP_OK;
nozone:
    *why = "the timestamp needs a time zone: end it with Z (UTC) or an offset like +02:00";
    return DPOP_ERR;
}

void policy_time_format(int64_t t, char *out, size_t outsz)
{
    /* civil_from_days, the inverse of days_from_civil */
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, outsz, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", (long long)y, (long long)m,
             (long long)d, (long long)(secs / 3600), (long long)(secs / 60 % 60),
             (long long)(secs % 60));
}
