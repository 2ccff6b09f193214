/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_time.h: the times of the audit store and dpop-audit: RFC 3339 UTC
 * timestamps with microseconds (DESIGN.md "ts") and the CLI's time arguments
 * (RFC 3339 or relative: 15m, 24h, 30d).  Pure functions, no I/O besides
 * reading the clock; never reads or writes event data.
 */
#ifndef AUDIT_TIME_H
#define AUDIT_TIME_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_TS_MAX 40 /* "2026-01-02T03:04:05.123456Z" + margin */

/* Current unix time in microseconds (CLOCK_REALTIME). */
int64_t audit_now_us(void);

/* Format ts_us as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" into out (>= AUDIT_TS_MAX).
 * Returns the length, or 0 when out is too small or the year is outside
 * 0000..9999. */
size_t audit_time_format(int64_t ts_us, char *out, size_t outsz);

/* Parse an RFC 3339 date-time (section 5.6: "T" or "t" or " " separator,
 * optional fraction up to microseconds, "Z" or a numeric offset) or a full
 * date "YYYY-MM-DD" (midnight UTC).  DPOP_OK/DPOP_ERR. */
int audit_time_parse_rfc3339(const char *s, int64_t *ts_us);

/* Parse a CLI time: RFC 3339 as above, "now", or a relative age
 * "<n>s|m|h|d|w" meaning now minus that much.  now_us is the reference. */
int audit_time_parse_arg(const char *s, int64_t now_us, int64_t *ts_us);

#endif /* AUDIT_TIME_H */
