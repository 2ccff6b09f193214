/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_asmeta.h: authorization server metadata (RFC 8414 §2, OpenID
 * Connect Discovery 1.0 §3) as a resource server needs it: issuer,
 * jwks_uri, introspection_endpoint; and the refresh interval rule of
 * DPoPTokenRefresh.
 *
 * Parsing only: the document arrives from the glue (mod_dpop_keyset.c) or
 * dpopctl, which fetched it with dpop_fetch.  No I/O here.
 */
#ifndef DPOP_ASMETA_H
#define DPOP_ASMETA_H

#include <stddef.h>
#include <stdint.h>

#define DPOP_ASMETA_MAX_BYTES (1024 * 1024) /* DESIGN.md: metadata 1 MiB */
#define DPOP_REFRESH_MIN 60                 /* s, Cache-Control floor */
#define DPOP_REFRESH_MAX 86400              /* s, Cache-Control ceiling */
#define DPOP_REFRESH_DEFAULT 3600           /* s, DPoPTokenRefresh default */

/* Owned strings (NULL when absent); free with dpop_asmeta_clear. */
typedef struct {
    char *issuer;
    char *jwks_uri;
    char *introspection_endpoint;
} dpop_asmeta_t;

/* Parse doc[0..len).  issuer is required (RFC 8414 §2) and must equal
 * expected_issuer when that is not NULL (RFC 8414 §3.3: a document naming
 * another issuer must not be used).  jwks_uri and introspection_endpoint
 * are optional, non-empty strings when present.  Returns 0, or -1 with a
 * message in err (never document bytes other than member names). */
int dpop_asmeta_parse(const char *doc, size_t len, const char *expected_issuer, dpop_asmeta_t *m,
                      char *err, size_t errsz);
void dpop_asmeta_clear(dpop_asmeta_t *m);

/* Seconds a fetched document is kept: the response's Cache-Control
 * max-age (max_age >= 0) raised to DPOP_REFRESH_MIN, never past the
 * configured DPoPTokenRefresh (the operator's maximum age); without a
 * max-age, the configured value.  configured <= 0 -> DPOP_REFRESH_DEFAULT. */
int64_t dpop_asmeta_refresh_secs(int64_t configured, long max_age);

#endif /* DPOP_ASMETA_H */
