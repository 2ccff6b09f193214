/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_tokensrc.h: where access tokens are checked against (Apache
 * glue): key sets fetched from a JWKS URL or found through metadata
 * (mod_dpop_keyset.c) and RFC 7662 introspection of opaque tokens
 * (mod_dpop_introspect.c).  DESIGN.md "Where tokens are checked against".
 *
 * Startup never waits for the authorization server: nothing is fetched
 * at configuration time or in child_init; each child fetches on the first
 * request that needs a key set (bounded by the 5 s fetch limit), one fetch
 * per URL in flight per process.
 *
 * Must never: log a token, a client secret or an assertion; log an
 * authorization server outage more than once per interval.
 */
#ifndef MOD_DPOP_TOKENSRC_H
#define MOD_DPOP_TOKENSRC_H

#include "httpd.h"

#include "mod_dpop_config.h"
#include "dpop_jwks.h"
#include "dpop_result.h"
#include "dpop_token.h"

/* Seconds between two error-log lines about one failing source. */
#define DPOP_AS_LOG_INTERVAL 60
/* An unknown kid refreshes a fetched key set at most this often. */
#define DPOP_KID_REFRESH_INTERVAL 30
/* Without any key set, a failed fetch is retried after this long; with a
 * last good set, after DPOP_KID_REFRESH_INTERVAL. */
#define DPOP_FETCH_RETRY_EMPTY 5

/* child_init: the per-process registry of fetched sources, the
 * introspection cache, libcurl's global state. */
void dpop_tokensrc_child_init(apr_pool_t *p, server_rec *s);
/* The key-set part of it (mod_dpop_keyset.c). */
void dpop_keyset_child_init(apr_pool_t *p, server_rec *s);

/* 1 when token is to be introspected under c's DPoPTokenFormat (opaque;
 * any: everything that is not a compact JWS). */
int dpop_tokensrc_opaque(const dpop_dir_conf_t *c, const char *token);

/* The key set to verify a JWT access token with: the DPoPTokenJWKS file,
 * or the last good set fetched from the JWKS URL or the metadata's jwks_uri
 * (fetched now when none is held or it is past its refresh time; refreshed
 * when the token names an unknown kid, at most once per 30 s).  OK with
 * *set valid until r->pool is cleared; HTTP_SERVICE_UNAVAILABLE when no
 * set could be fetched yet (logged, rate-limited). */
int dpop_keyset_for_token(request_rec *r, const dpop_dir_conf_t *c, const char *token,
                          const dpop_jwks_t **set);

/* The introspection endpoint for c: DPoPTokenIntrospection, else the
 * metadata's introspection_endpoint (metadata fetched when needed).  NULL
 * when there is none (logged): the caller answers 503. */
const char *dpop_keyset_introspection_url(request_rec *r, const dpop_dir_conf_t *c);

/* Introspect an opaque token (after the proof's own checks):
 *   OK: active, iss/aud/exp pass; tr holds sub, client_id, cnf.jkt (NULL:
 *       unbound, the caller answers token_unbound);
 *   DPOP_ERR: token_invalid in f (inactive...);
 *   HTTP_SERVICE_UNAVAILABLE: AS unreachable, 5xx, 4xx (a configuration
 *       error), unusable response, or too many introspections in flight.
 * token_hash is base64url(SHA-256(token)): the only cache key. */
int dpop_introspect_token(request_rec *r, const dpop_dir_conf_t *c, const char *token,
                          const char *token_hash, apr_int64_t now, dpop_token_result_t *tr,
                          dpop_failure_t *f);

#endif /* MOD_DPOP_TOKENSRC_H */
