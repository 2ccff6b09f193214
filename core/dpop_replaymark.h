/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_replaymark.h: the loss marker of a network replay store (memcached,
 * Redis), so that a store that forgot its entries (restarted, flushed)
 * never lets a proof it had accepted be accepted again.
 *
 * Why: DESIGN.md "Replay stores": no store ever opens a replay window when
 * it loses its memory.  Each server of a network store holds one marker
 * entry, written without expiry, whose value is the unix second from which
 * that server remembers every proof stored in it.  The entry vanishes with
 * everything else on a restart or flush; whoever finds it missing writes a
 * new one (dpop_replaymark_new) and, from then on, every proof whose iat is
 * earlier than marker + skew is refused (iat_too_old): a proof accepted
 * before the loss was accepted before the marker's second and carried an
 * iat at most one skew ahead of that (RFC 9449 §11.1 single use, §4.3 (11)
 * the iat window).
 *
 * Pure functions: no I/O, no clock.  The glue reads and writes the entry.
 *
 * Must never: accept a marker value that is not a plain decimal second
 * (a corrupted marker is a store error: fail closed).
 */
#ifndef DPOP_REPLAYMARK_H
#define DPOP_REPLAYMARK_H

#include <stddef.h>
#include <stdint.h>

/* The marker entry's key, the same on every server of a store. */
#define DPOP_REPLAYMARK_KEY "dpop:replay-marker"

/* Longest marker value: 20 digits. */
#define DPOP_REPLAYMARK_MAX_LEN 20

/* The marker to write when the entry is missing, given the writer's clock
 * (unix seconds, rounded down).  The store lost its memory at some instant
 * no later than now + 1 (the second now counts is partly elapsed), so the
 * marker is now + 1: rounding down could make it earlier than the loss. */
int64_t dpop_replaymark_new(int64_t now);

/* Parse a marker value of len bytes (not NUL-terminated): 1 to 20 decimal
 * digits, no sign, no space, value in (0, 2^40).  0 and *out set, or -1. */
int dpop_replaymark_parse(const char *s, size_t len, int64_t *out);

/* 1 when a proof with this iat must be refused because the store began
 * remembering at marker (iat < marker + skew), else 0. */
int dpop_replaymark_refuses(int64_t marker, int64_t iat, int skew);

#endif /* DPOP_REPLAYMARK_H */
