/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_respond.h: the HTTP side of a mod_dpop decision (Apache glue):
 * status codes, the WWW-Authenticate challenge of RFC 9449 §7.1 / RFC 6750
 * §3, DPoP-Nonce (RFC 9449 §8) and the error log line.
 *
 * Must never: put a token, a proof or the failure detail into a response;
 * the client sees only the fixed error code and a fixed description per
 * reason.  The detail goes to the error log, and it never holds secrets.
 */
#ifndef DPOP_RESPOND_H
#define DPOP_RESPOND_H

#include "httpd.h"

#include "mod_dpop_config.h"
#include "dpop_result.h"

/* HTTP status for a reason: 401, 403 for policy reasons. */
int dpop_respond_status(dpop_reason_t reason);
/* Fixed client-facing text for a reason (no quotes or backslashes). */
const char *dpop_respond_description(dpop_reason_t reason);

/* Set WWW-Authenticate (and DPoP-Nonce when nonce != NULL) in
 * err_headers_out for the failure f and return the status to answer. */
int dpop_respond_failure(request_rec *r, const dpop_dir_conf_t *c, const dpop_failure_t *f,
                         const char *nonce);
/* 401 challenge for a request without credentials: no error attribute. */
int dpop_respond_challenge(request_rec *r, const dpop_dir_conf_t *c, const char *nonce);
/* The challenge value itself (for the policy 403 path). */
const char *dpop_respond_challenge_value(request_rec *r, const dpop_dir_conf_t *c,
                                         const dpop_failure_t *f);

/* One error log line: reason, error, jkt/jti when known, detail. */
void dpop_respond_log(request_rec *r, int level, const char *what, const dpop_failure_t *f,
                      const char *jkt, const char *jti);

#endif /* DPOP_RESPOND_H */
