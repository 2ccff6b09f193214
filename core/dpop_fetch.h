/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_fetch.h: the one HTTP client of mod_dpop and dpopctl (libcurl),
 * with the bounds DESIGN.md "Where tokens are checked against" fixes for
 * every request to the authorization server: https only (plain http only
 * to a loopback address), certificates verified, no redirects, a body
 * limit, connect 2 s and the whole exchange 5 s.
 *
 * Not part of libdpopcore (which does no I/O): it is its own convenience
 * library, libdpopfetch, linked by the Apache glue and by dpopctl only, so
 * the CLI checks a token against the authorization server exactly as the
 * module does.  No APR, no httpd: plain C with explicit ownership.
 *
 * Must never: write a request body (a token, a client secret or an
 * assertion) or a response body to any log or error message; follow a
 * redirect; accept a body over the limit.
 */
#ifndef DPOP_FETCH_H
#define DPOP_FETCH_H

#include <stddef.h>

#define DPOP_FETCH_CONNECT_MS 2000
#define DPOP_FETCH_TOTAL_MS 5000
#define DPOP_FETCH_MAX_DOC (1024 * 1024)         /* metadata, JWKS */
#define DPOP_FETCH_MAX_INTROSPECTION (64 * 1024) /* RFC 7662 responses */

/* Outcomes, also the metric labels (dpop_fetch_outcome_name). */
typedef enum {
    DPOP_FETCH_OK = 0,     /* 2xx, body complete and within the bound */
    DPOP_FETCH_HTTP_4XX,   /* the AS refused: a configuration error */
    DPOP_FETCH_HTTP_5XX,   /* the AS failed */
    DPOP_FETCH_HTTP_OTHER, /* 1xx/3xx (a redirect is never followed) */
    DPOP_FETCH_TOO_LARGE,  /* body over the bound */
    DPOP_FETCH_TIMEOUT,    /* connect or whole-exchange bound reached */
    DPOP_FETCH_TLS,        /* certificate or handshake failure */
    DPOP_FETCH_NETWORK,    /* DNS, refused, reset */
    DPOP_FETCH_INTERNAL,   /* out of memory, libcurl setup, bad URL */
    DPOP_FETCH__COUNT
} dpop_fetch_outcome_t;

typedef struct {
    const char *url;     /* required; checked with dpop_fetch_url_check */
    const char *ca_file; /* NULL: the system trust store */
    size_t max_body;     /* 0 -> DPOP_FETCH_MAX_DOC */
    long connect_ms;     /* 0 -> DPOP_FETCH_CONNECT_MS */
    long total_ms;       /* 0 -> DPOP_FETCH_TOTAL_MS */
    /* POST application/x-www-form-urlencoded when form != NULL (the body,
     * already encoded), else GET. */
    const char *form;
    /* HTTP Basic credentials (RFC 6749 §2.3.1), both or neither. */
    const char *basic_user;
    const char *basic_password;
    const char *accept; /* Accept header; NULL: application/json */
} dpop_fetch_req_t;

typedef struct {
    dpop_fetch_outcome_t outcome;
    long status;   /* HTTP status, 0 when none was received */
    char *body;    /* NUL-terminated, malloc'd; NULL unless outcome OK or HTTP_* */
    size_t len;    /* body length */
    long max_age;  /* Cache-Control max-age in s, -1 when absent */
    double secs;   /* wall time of the exchange */
    char err[160]; /* what went wrong, for the log (never the body) */
} dpop_fetch_resp_t;

/* Once per process before any thread fetches (curl_global_init). */
int dpop_fetch_global_init(void);

/* 0 when url is acceptable for the authorization server: absolute, https,
 * or http to a loopback address (127.0.0.0/8, ::1, localhost); no userinfo,
 * no fragment.  Else -1 with a message in err. */
int dpop_fetch_url_check(const char *url, char *err, size_t errsz);

/* Perform one exchange.  Returns 0 when resp->outcome is DPOP_FETCH_OK.
 * The caller frees with dpop_fetch_resp_clear in every case. */
int dpop_fetch(const dpop_fetch_req_t *req, dpop_fetch_resp_t *resp);
void dpop_fetch_resp_clear(dpop_fetch_resp_t *resp);

const char *dpop_fetch_outcome_name(dpop_fetch_outcome_t o);

/* application/x-www-form-urlencoded value (RFC 6749 Appendix B); caller
 * frees.  NULL on ENOMEM. */
char *dpop_fetch_form_escape(const char *s);

#endif /* DPOP_FETCH_H */
