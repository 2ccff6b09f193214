/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_fetch.c: bounded HTTPS requests to the authorization server through
 * libcurl (see dpop_fetch.h for the rules and who links this file).
 *
 * Every handle is created for one exchange and freed after it, so threads
 * never share libcurl state.  CURLOPT_NOSIGNAL keeps libcurl's timeouts
 * from using signals in a threaded httpd child.
 */
#include "dpop_fetch.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FETCH_UA "mod_dpop"

int dpop_fetch_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

const char *dpop_fetch_outcome_name(dpop_fetch_outcome_t o)
{
    static const char *const names[DPOP_FETCH__COUNT] = {
        "ok",      "http_4xx", "http_5xx", "http_other", "too_large",
        "timeout", "tls",      "network",  "internal",
    };
    return (unsigned)o < DPOP_FETCH__COUNT ? names[o] : "internal";
}

/* DESIGN.md: plain http only to a loopback address, where nobody else can
 * sit on the path. */
static int host_is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]") || !strcmp(host, "::1"))
        return 1;
    if (!strncmp(host, "127.", 4)) {
        unsigned a, b, c, d;
        char tail;
        return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
               c < 256 && d < 256;
    }
    return 0;
}

int dpop_fetch_url_check(const char *url, char *err, size_t errsz)
{
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *user = NULL, *frag = NULL;
    int rc = -1;
    if (err && errsz)
        err[0] = '\0';
    if (!url || !*url) {
        snprintf(err, errsz, "empty URL");
        return -1;
    }
    if (strlen(url) > 2048) {
        snprintf(err, errsz, "URL longer than 2048 characters");
        return -1;
    }
    if (!(u = curl_url())) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    /* No default scheme: "as.example.com/jwks" is a mistake, not https. */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        snprintf(err, errsz, "'%s' is not an absolute http(s) URL", url);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) {
        snprintf(err, errsz, "'%s' must not carry userinfo (use DPoPTokenIntrospectionAuth)", url);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK && frag) {
        snprintf(err, errsz, "'%s' must not carry a fragment", url);
        goto done;
    }
    if (!strcasecmp(scheme, "https"))
        rc = 0;
    else if (!strcasecmp(scheme, "http") && host_is_loopback(host))
        rc = 0;
    else if (!strcasecmp(scheme, "http"))
        snprintf(err, errsz, "'%s': http is allowed only to a loopback address; use https", url);
    else
        snprintf(err, errsz, "'%s': scheme must be https", url);
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

char *dpop_fetch_form_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, n = strlen(s), o = 0;
    char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '*')
            out[o++] = (char)c;
        else if (c == ' ')
            out[o++] = '+';
        else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

typedef struct {
    char *buf;
    size_t len, cap, max;
    int too_large;
    long max_age;
} sink_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    size_t n = size * nmemb;
    if (n > s->max - s->len) {
        s->too_large = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *nb;
        while (cap < s->len + n + 1)
            cap *= 2;
        if (cap > s->max + 1)
            cap = s->max + 1;
        if (!(nb = realloc(s->buf, cap)))
            return 0;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* Cache-Control: max-age=N (RFC 9111 §5.2.2.1); the last header wins
 * (a redirect is never followed, so there is one response).  no-store and
 * no-cache count as 0: the caller's lower bound applies. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    size_t n = size * nmemb, i;
    char line[512];
    const char *p;
    if (n < 14 || strncasecmp(data, "cache-control:", 14) != 0)
        return n;
    if (n >= sizeof(line))
        return n;
    for (i = 0; i < n; i++)
        line[i] = (char)((data[i] >= 'A' && data[i] <= 'Z') ? data[i] + 32 : data[i]);
    line[n] = '\0';
    if (strstr(line, "no-store") || strstr(line, "no-cache"))
        s->max_age = 0;
    if ((p = strstr(line, "max-age="))) {
        long v = 0;
        int digits = 0;
        for (p += 8; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
            v = v * 10 + (*p - '0');
        if (digits > 0 && digits < 10)
            s->max_age = v;
    }
    return n;
}

static dpop_fetch_outcome_t map_curl_error(CURLcode cc, const sink_t *s)
{
    switch (cc) {
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        return s->too_large || cc == CURLE_FILESIZE_EXCEEDED ? DPOP_FETCH_TOO_LARGE
                                                             : DPOP_FETCH_INTERNAL;
    case CURLE_OPERATION_TIMEDOUT:
        return DPOP_FETCH_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return DPOP_FETCH_TLS;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_FAILED_INIT:
        return DPOP_FETCH_INTERNAL;
    default:
        return DPOP_FETCH_NETWORK;
    }
}

void dpop_fetch_resp_clear(dpop_fetch_resp_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
    resp->max_age = -1;
}

int dpop_fetch(const dpop_fetch_req_t *req, dpop_fetch_resp_t *resp)
{
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    char *user = NULL, *pass = NULL, accept[128];
    sink_t sink;
    CURLcode cc;
    double secs = 0;
    const char *scheme_ok;

    memset(resp, 0, sizeof(*resp));
    resp->max_age = -1;
    resp->outcome = DPOP_FETCH_INTERNAL;
    memset(&sink, 0, sizeof(sink));
    sink.max_age = -1;
    sink.max = req->max_body ? req->max_body : DPOP_FETCH_MAX_DOC;

    if (dpop_fetch_url_check(req->url, resp->err, sizeof(resp->err)) != 0)
        goto done;
    /* Only the scheme this URL was allowed with (the check above). */
    scheme_ok = strncasecmp(req->url, "https:", 6) == 0 ? "https" : "http";
    if (!(h = curl_easy_init())) {
        snprintf(resp->err, sizeof(resp->err), "cannot create a libcurl handle");
        goto done;
    }
    snprintf(accept, sizeof(accept), "Accept: %s", req->accept ? req->accept : "application/json");
    if (!(hdrs = curl_slist_append(hdrs, accept)))
        goto done;
    if (req->form) {
        struct curl_slist *t =
            curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
        if (!t)
            goto done;
        hdrs = t;
    }
    if (curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, scheme_ok) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         req->connect_ms > 0 ? req->connect_ms : (long)DPOP_FETCH_CONNECT_MS) !=
            CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                         req->total_ms > 0 ? req->total_ms : (long)DPOP_FETCH_TOTAL_MS) !=
            CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink.max) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, FETCH_UA) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink) != CURLE_OK) {
        snprintf(resp->err, sizeof(resp->err), "libcurl refused an option");
        goto done;
    }
    if (req->ca_file && *req->ca_file) {
        /* DPoPTokenCAFile: these anchors only, not the system store too. */
        if (curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CAPATH, NULL) != CURLE_OK) {
            snprintf(resp->err, sizeof(resp->err), "libcurl refused the CA file");
            goto done;
        }
    }
    if (req->form &&
        (curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->form) != CURLE_OK ||
         curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(req->form)) != CURLE_OK))
        goto done;
    if (req->basic_user && req->basic_password) {
        /* RFC 6749 §2.3.1: client id and secret are form-urlencoded before
         * they go into the Basic credentials. */
        if (!(user = dpop_fetch_form_escape(req->basic_user)) ||
            !(pass = dpop_fetch_form_escape(req->basic_password)))
            goto done;
        if (curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_USERNAME, user) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_PASSWORD, pass) != CURLE_OK)
            goto done;
    }

    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &secs);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->secs = secs;
    resp->max_age = sink.max_age;
    if (cc != CURLE_OK) {
        resp->outcome = map_curl_error(cc, &sink);
        if (resp->outcome == DPOP_FETCH_TOO_LARGE)
            snprintf(resp->err, sizeof(resp->err), "response body over %zu bytes", sink.max);
        else
            snprintf(resp->err, sizeof(resp->err), "%s", curl_easy_strerror(cc));
        goto done;
    }
    resp->body = sink.buf;
    resp->len = sink.len;
    sink.buf = NULL;
    if (!resp->body && (resp->body = malloc(1)))
        resp->body[0] = '\0';
    if (resp->status >= 200 && resp->status < 300)
        resp->outcome = DPOP_FETCH_OK;
    else if (resp->status >= 400 && resp->status < 500)
        resp->outcome = DPOP_FETCH_HTTP_4XX;
    else if (resp->status >= 500)
        resp->outcome = DPOP_FETCH_HTTP_5XX;
    else
        resp->outcome = DPOP_FETCH_HTTP_OTHER;
    if (resp->outcome != DPOP_FETCH_OK)
        snprintf(resp->err, sizeof(resp->err), "HTTP status %ld%s", resp->status,
                 resp->status >= 300 && resp->status < 400 ? " (redirects are not followed)" : "");
done:
    if (user)
        OPENSSL_clear_free(user, strlen(user));
    if (pass)
        OPENSSL_clear_free(pass, strlen(pass));
    free(sink.buf);
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    return resp->outcome == DPOP_FETCH_OK ? 0 : -1;
}
