/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_event.c: canonical serialization of one audit event (DESIGN.md
 * "Audit store" JSON names, in that order; absent -> null).  Hand-written
 * rather than built through jansson so that encoding in a request thread costs
 * one allocation.  Input strings come from the network and are hostile: they
 * are bounded, and invalid UTF-8 and control bytes can never reach the JSON
 * unescaped.  Never logs anything.
 */
#include "audit_event.h"
#include "audit_time.h"
#include "dpop_b64.h"
#include "dpop_result.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ix_fields[AUDIT_IX_KEYS] = {"jkt", "jti", "token_hash", "client_ip",
                                                     "reason"};

const char *audit_ix_field(int ix)
{
    return ix >= 0 && ix < AUDIT_IX_KEYS ? ix_fields[ix] : NULL;
}

/* Bounds: generous for legitimate values, small enough that one event stays
 * a few KiB and every indexed value fits an LMDB key (max 511 bytes). */
static const struct {
    const char *name;
    size_t limit;
} limits[] = {
    {"host", 255},
    {"vhost", 255},
    {"request_id", 128},
    {"client_ip", 64},
    {"method", 32},
    {"path", 2048},
    {"error", 64},
    {"reason", 64},
    {"detail", 512},
    {"jkt", 128},
    {"jti", 256},
    {"htm", 32},
    {"htu", 2048},
    {"alg", 32},
    {"token_hash", 128},
    {"token_sub", 256},
    {"token_client_id", 256},
    {"policy_client", 256},
    {"user_agent", 512},
    {"mode", 16},
};

size_t audit_field_limit(const char *name)
{
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        if (strcmp(limits[i].name, name) == 0)
            return limits[i].limit;
    return 256;
}

/* Length of a valid UTF-8 sequence at p (RFC 3629 §4: no overlongs, no
 * surrogates, max U+10FFFF), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        min = 0x80;
        c &= 0x1F;
    }
    else if ((c & 0xF0) == 0xE0) {
        len = 3;
        min = 0x800;
        c &= 0x0F;
    }
    else if ((c & 0xF8) == 0xF0) {
        len = 4;
        min = 0x10000;
        c &= 0x07;
    }
    else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

static int b64u(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Start of the next compact JWS in p[from..n), n when none; its length in
 * *len.  RFC 7515 §7.1: base64url parts joined by '.'; the first is a JOSE
 * header, a JSON object, so it starts "eyJ" (base64url of '{"').  A match
 * needs a header of 8+ characters, a payload of 2+, a signature part (may
 * be empty: unsecured JWS; absent when the input ends after the payload,
 * a token cut by an upstream bound); further parts (JWE, RFC 7516 §7.1)
 * are taken too.  Each base64url run is scanned once or twice: linear in n. */
static size_t next_jws(const unsigned char *p, size_t n, size_t from, size_t *len)
{
    size_t i = from;
    while (i < n) {
        if (!b64u(p[i])) {
            i++;
            continue;
        }
        size_t h = i;
        while (i < n && b64u(p[i]))
            i++;
        if (i >= n || p[i] != '.')
            continue;
        while (h + 8 <= i && memcmp(p + h, "eyJ", 3) != 0)
            h++;
        if (h + 8 > i)
            continue;
        size_t j = i + 1, pay = j;
        while (j < n && b64u(p[j]))
            j++;
        if (j - pay < 2 || (j < n && p[j] != '.'))
            continue; /* a JWS cut after its payload (a bounded header) counts */
        while (j < n && p[j] == '.') {
            j++;
            while (j < n && b64u(p[j]))
                j++;
        }
        *len = j - h;
        return h;
    }
    *len = 0;
    return n;
}

/* The text stored instead of a JWS: base64url(SHA-256(jws)), the form of
 * "ath" (RFC 9449 §4.2), so an access token found in a header or path
 * correlates with the token_hash of other events; the token itself is
 * never stored.  Without a hash (EVP failure) just the word. */
static size_t jws_marker(const unsigned char *jws, size_t len, char *out)
{
    char ath[44];
    if (dpop_b64url_sha256(jws, len, ath) != DPOP_OK)
        return (size_t)snprintf(out, AUDIT_JWS_MARKER_MAX, "[redacted JWS]");
    return (size_t)snprintf(out, AUDIT_JWS_MARKER_MAX, "[redacted JWS sha256:%s]", ath);
}

size_t audit_field_clean(const char *in, size_t inlen, size_t limit, char *out, size_t outsz)
{
    static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const size_t mlen = sizeof(AUDIT_TRUNC_MARKER) - 1;
    const unsigned char *p = (const unsigned char *)in;
    char marker[AUDIT_JWS_MARKER_MAX];
    size_t o = 0, i = 0, jlen = 0;
    int truncated = 0;
    if (outsz == 0)
        return 0;
    if (limit >= outsz)
        limit = outsz - 1;
    size_t jws = next_jws(p, inlen, 0, &jlen);
    while (i < inlen) {
        size_t n, slen, adv;
        const char *src;
        if (i == jws) {
            /* never store a token or a proof (DESIGN.md): its hash instead */
            slen = jws_marker(p + i, jlen, marker);
            src = marker;
            adv = jlen;
        }
        else {
            n = utf8_seq(p + i, inlen - i);
            src = n ? (const char *)p + i : repl;
            slen = n ? n : 3;
            adv = n ? n : 1;
        }
        if (o + slen > limit) {
            truncated = 1;
            break;
        }
        memcpy(out + o, src, slen);
        o += slen;
        i += adv;
        if (i > jws)
            jws = next_jws(p, inlen, i, &jlen);
    }
    if (truncated && limit > mlen) {
        /* Cut back to leave room for the marker, on a character boundary. */
        size_t keep = limit - mlen;
        if (o > keep)
            o = keep;
        while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80)
            o--;
        memcpy(out + o, AUDIT_TRUNC_MARKER, mlen);
        o += mlen;
    }
    out[o] = '\0';
    return o;
}

/* A byte that ends a URL quoted in free text: blanks, controls, quotes and
 * angle brackets (RFC 3986 Appendix C: delimiters around URIs in text). */
static int url_end(unsigned char c)
{
    return c <= 0x20 || c == 0x7F || c == '"' || c == '\'' || c == '`' || c == '<' || c == '>';
}

size_t audit_url_strip(const char *in, size_t inlen, int whole, char *out, size_t outsz)
{
    size_t i = 0, o = 0;
    int in_url = whole;
    if (outsz == 0)
        return 0;
    if (whole) {
        /* RFC 3986 §3.4/§3.5: the query starts at the first '?', the
         * fragment at the first '#'; neither is stored. */
        size_t n = 0;
        while (n < inlen && in[n] != '?' && in[n] != '#')
            n++;
        if (n >= outsz)
            n = outsz - 1;
        memcpy(out, in, n);
        out[n] = '\0';
        return n;
    }
    while (i < inlen && o + 1 < outsz) {
        unsigned char c = (unsigned char)in[i];
        if (!in_url && c == ':' && i + 2 < inlen && in[i + 1] == '/' && in[i + 2] == '/') {
            in_url = 1; /* "scheme://": an absolute URI quoted in the text */
        }
        else if (in_url && (c == '?' || c == '#')) {
            while (i < inlen && !url_end((unsigned char)in[i]))
                i++; /* drop the query and fragment */
            in_url = 0;
            continue;
        }
        else if (url_end(c)) {
            in_url = 0;
        }
        out[o++] = (char)c;
        i++;
    }
    out[o] = '\0';
    return o;
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* JSON string (RFC 8259 §7) of an already-clean UTF-8 value. */
static void sb_json_string(sbuf_t *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F)
            continue;
        sb_put(b, s + start, i - start);
        char esc[8];
        switch (c) {
        case '"':
            sb_put(b, "\\\"", 2);
            break;
        case '\\':
            sb_put(b, "\\\\", 2);
            break;
        case '\n':
            sb_put(b, "\\n", 2);
            break;
        case '\r':
            sb_put(b, "\\r", 2);
            break;
        case '\t':
            sb_put(b, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            sb_put(b, esc, 6);
            break;
        }
        start = i + 1;
    }
    sb_put(b, s + start, n - start);
    sb_put(b, "\"", 1);
}

/* Field layout of the canonical JSON: DESIGN.md order. */
#define FS(n)                                                                                      \
    {                                                                                              \
#n, AUDIT_F_STR, offsetof(audit_event_t, n)                                                \
    }
static const audit_field_t fields[AUDIT_NFIELDS] = {
    {"ts", AUDIT_F_TS, offsetof(audit_event_t, ts_us)},
    FS(host),
    FS(vhost),
    {"pid", AUDIT_F_INT, offsetof(audit_event_t, pid)},
    FS(request_id),
    FS(client_ip),
    FS(method),
    FS(path),
    FS(error),
    FS(reason),
    FS(detail),
    FS(jkt),
    FS(jti),
    {"iat", AUDIT_F_IAT, offsetof(audit_event_t, iat)},
    FS(htm),
    FS(htu),
    FS(alg),
    FS(token_hash),
    FS(token_sub),
    FS(token_client_id),
    FS(policy_client),
    FS(user_agent),
    FS(mode),
};
#undef FS

/* Fields that hold a URL (1: the whole value is one, htu) or may quote
 * URLs (0: free text from the core or the client); -1 others.  The path
 * has no query: the module gives r->uri. */
static int url_kind(const char *name)
{
    if (!strcmp(name, "htu"))
        return 1;
    if (!strcmp(name, "detail") || !strcmp(name, "user_agent"))
        return 0;
    return -1;
}

const audit_field_t *audit_event_fields(void)
{
    return fields;
}

audit_enc_t *audit_event_encode(const audit_event_t *ev)
{
    /* The JSON and then the keys are built in place behind the audit_enc_t
     * header, so an event costs one allocation (grown only for an unusually
     * large one) and no copy. */
    static const audit_enc_t zero_hdr;
    const size_t hdr = offsetof(audit_enc_t, data);
    sbuf_t b = {0};
    char clean[2048 + 1];
    char stripped[4096]; /* over every field's bound: a cut there still truncates */
    char keys[AUDIT_IX_KEYS][512];
    size_t klen[AUDIT_IX_KEYS] = {0};
    char num[32];
    audit_enc_t *enc = NULL;
    int64_t ts = ev->ts_us ? ev->ts_us : audit_now_us();
    if (ts < 0)
        return NULL; /* before 1970: the time index sorts unsigned; refuse */

    sb_put(&b, (const char *)&zero_hdr, hdr);
    sb_put(&b, "{", 1);
    for (size_t i = 0; i < AUDIT_NFIELDS; i++) {
        const audit_field_t *f = &fields[i];
        if (i)
            sb_put(&b, ",", 1);
        sb_put(&b, "\"", 1);
        sb_str(&b, f->name);
        sb_put(&b, "\":", 2);
        if (f->kind == AUDIT_F_TS) {
            char tsb[AUDIT_TS_MAX];
            size_t n = audit_time_format(ts, tsb, sizeof(tsb));
            if (n == 0)
                goto done; /* outside 0000..9999: refuse rather than store junk */
            sb_json_string(&b, tsb, n);
        }
        else if (f->kind == AUDIT_F_INT) {
            /* pid: 0 is never a real process here, it means "unknown" */
            int64_t v = *(const int64_t *)((const char *)ev + f->off);
            snprintf(num, sizeof(num), "%" PRId64, v);
            sb_str(&b, v > 0 ? num : "null");
        }
        else if (f->kind == AUDIT_F_IAT) {
            if (ev->has_iat) {
                snprintf(num, sizeof(num), "%" PRId64, ev->iat);
                sb_str(&b, num);
            }
            else {
                sb_str(&b, "null");
            }
        }
        else {
            const char *v = *(const char *const *)((const char *)ev + f->off);
            if (!v || !*v) {
                /* empty means absent: keeps "" out of the indexes */
                sb_str(&b, "null");
                continue;
            }
            size_t vlen = strlen(v);
            int url = url_kind(f->name);
            if (url >= 0) {
                /* never a URL's query or fragment (issue 15 item 6) */
                vlen = audit_url_strip(v, vlen, url, stripped, sizeof(stripped));
                v = stripped;
                if (vlen == 0) {
                    sb_str(&b, "null");
                    continue;
                }
            }
            size_t n = audit_field_clean(v, vlen, audit_field_limit(f->name), clean, sizeof(clean));
            sb_json_string(&b, clean, n);
            for (int k = 0; k < AUDIT_IX_KEYS; k++) {
                if (strcmp(ix_fields[k], f->name) == 0) {
                    memcpy(keys[k], clean, n + 1);
                    klen[k] = n;
                }
            }
        }
    }
    sb_put(&b, "}", 1);
    size_t json_len = b.len - hdr;
    uint32_t key_off[AUDIT_IX_KEYS];
    sb_put(&b, "", 1); /* the JSON's NUL */
    for (int k = 0; k < AUDIT_IX_KEYS; k++) {
        key_off[k] = (uint32_t)(b.len - hdr); /* never used when klen is 0 */
        sb_put(&b, keys[k], klen[k]);
        sb_put(&b, "", 1);
    }
    if (b.oom)
        goto done;
    /* trim to the exact size (shrinks in place): a full queue holds many */
    char *fit = realloc(b.buf, b.len);
    enc = (audit_enc_t *)(void *)(fit ? fit : b.buf);
    b.buf = NULL;
    enc->ts_us = ts;
    enc->json_len = json_len;
    for (int k = 0; k < AUDIT_IX_KEYS; k++) {
        enc->key_off[k] = key_off[k];
        enc->key_len[k] = (uint32_t)klen[k];
    }
done:
    free(b.buf);
    return enc;
}
