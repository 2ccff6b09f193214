/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_args.h: checks of dpop-audit's filter values before a query runs,
 * so a typo is refused instead of silently matching nothing: reason codes
 * against DESIGN.md's vocabulary (with a did-you-mean), client addresses
 * as IPv4/IPv6 literals in the form the module stores.  No I/O.
 */
#ifndef AUDIT_ARGS_H
#define AUDIT_ARGS_H

#include <stddef.h>

/* DPOP_OK when name is a reason code; else DPOP_ERR and msg holds
 * "unknown reason 'X' (did you mean 'Y'?)" or, when nothing is close,
 * the list of reason codes. */
int audit_args_reason(const char *name, char *msg, size_t msgsz);

/* The closest reason code to name (edit distance with transpositions,
 * at most 2 and less than half the name's length), or NULL. */
const char *audit_args_reason_suggest(const char *name);

/* An IPv4 or IPv6 literal into the canonical text inet_ntop writes (what
 * httpd records: "2001:db8::1" for "2001:DB8:0::1").  DPOP_ERR when not
 * an address (e.g. "999.1.1.1", a host name, a CIDR). */
int audit_args_ip(const char *in, char *out, size_t outsz);

#endif /* AUDIT_ARGS_H */
