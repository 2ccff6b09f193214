/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_introspect.c: RFC 7662 responses judged like a JWT access token's
 * claims, the request form, and the RFC 7523 client assertion (see
 * dpop_introspect.h).
 */
#include "dpop_introspect.h"
#include "dpop_b64.h"
#include "dpop_json.h"
#include "dpop_jws.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Optional non-empty string member copied to *dst: 0 absent or copied,
 * -1 wrong type (token_invalid recorded) or ENOMEM. */
static int opt_string(const json_t *o, const char *name, char **dst, dpop_failure_t *f)
{
    const char *s = NULL;
    int r = dpop_json_get_string(o, name, &s);
    if (r < 0)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                         "introspection: %s is not a non-empty string", name);
    if (r == 1 && dst && !(*dst = strdup(s)))
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
    return 0;
}

/* RFC 7662 §2.2 aud: a string or an array of strings (as RFC 7519 §4.1.3). */
static int aud_contains(const json_t *aud, const char *want)
{
    size_t i;
    json_t *v;
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    }
    return 0;
}

static int opt_date(const json_t *o, const char *name, int64_t *out, int *has, dpop_failure_t *f)
{
    int r = dpop_json_get_int(o, name, out);
    *has = r == 1;
    if (r < 0)
        return dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "introspection: %s is not a NumericDate",
                         name);
    return 0;
}

int dpop_introspect_parse(const char *body, size_t len, const dpop_introspect_params_t *p,
                          dpop_token_result_t *r, int *is_active, dpop_failure_t *f)
{
    json_t *root = NULL, *active, *aud, *cnf;
    char jerr[128];
    int64_t skew = p && p->skew > 0 ? p->skew : 0;
    int has = 0, rc = DPOP_ERR;

    dpop_failure_clear(f);
    dpop_token_result_init(r);
    if (is_active)
        *is_active = 0;
    if (!p) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "no introspection parameters");
        return DPOP_INTROSPECT_BAD_RESPONSE;
    }
    if (!(root = dpop_json_parse_object_max(body, len, DPOP_INTROSPECT_MAX_BYTES, jerr,
                                            sizeof(jerr)))) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "introspection response: %s", jerr);
        return DPOP_INTROSPECT_BAD_RESPONSE;
    }
    /* RFC 7662 §2.2: active is REQUIRED and boolean. */
    active = json_object_get(root, "active");
    if (!json_is_boolean(active)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                  "introspection response has no boolean \"active\" member");
        rc = DPOP_INTROSPECT_BAD_RESPONSE;
        goto done;
    }
    if (is_active)
        *is_active = json_is_true(active);
    if (!json_is_true(active)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                  "the authorization server says the token is "
                  "not active");
        goto done;
    }
    if (opt_string(root, "iss", &r->iss, f) != 0)
        goto done;
    if (p->issuer && (!r->iss || strcmp(r->iss, p->issuer) != 0)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                  r->iss ? "iss does not match the configured issuer" : "iss missing");
        goto done;
    }
    aud = json_object_get(root, "aud");
    if (aud && !json_is_string(aud) && !json_is_array(aud)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "aud is neither a string nor an array");
        goto done;
    }
    if (p->audience && (!aud || !aud_contains(aud, p->audience))) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                  aud ? "aud does not contain the configured audience" : "aud missing");
        goto done;
    }
    if (opt_date(root, "exp", &r->exp, &has, f) != 0)
        goto done;
    if (!has)
        r->exp = 0;
    if (opt_date(root, "nbf", &r->nbf, &r->has_nbf, f) != 0)
        goto done;
    /* Same window rule as a JWT (dpop_token_in_window); a response without
     * exp has no end the resource server could check. */
    if (has && !dpop_token_in_window(r, p->now, skew)) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token outside its exp/nbf window");
        goto done;
    }
    if (!has && r->has_nbf && r->nbf > p->now + skew) {
        dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "token not yet valid (nbf)");
        goto done;
    }
    if (opt_date(root, "iat", &r->iat, &has, f) != 0)
        goto done;
    if (opt_string(root, "sub", &r->sub, f) != 0 || opt_string(root, "scope", &r->scope, f) != 0 ||
        opt_string(root, "client_id", &r->client_id, f) != 0)
        goto done;
    /* RFC 9449 §6.2: cnf.jkt of a DPoP-bound token (RFC 7800 §3.1 object). */
    cnf = json_object_get(root, "cnf");
    if (cnf) {
        json_t *jkt;
        if (!json_is_object(cnf)) {
            dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "cnf is not a JSON object");
            goto done;
        }
        jkt = json_object_get(cnf, "jkt");
        if (jkt) {
            if (!json_is_string(jkt) ||
                !dpop_b64url_is_sha256(json_string_value(jkt), json_string_length(jkt))) {
                dpop_fail(f, DPOP_REASON_TOKEN_INVALID,
                          "cnf.jkt is not a base64url SHA-256 thumbprint");
                goto done;
            }
            if (!(r->jkt = strdup(json_string_value(jkt)))) {
                dpop_fail(f, DPOP_REASON_TOKEN_INVALID, "out of memory");
                goto done;
            }
        }
    }
    rc = DPOP_OK;
done:
    if (rc != DPOP_OK)
        dpop_token_result_clear(r);
    json_decref(root);
    return rc;
}

/* Append s to buf[*at..cap), form-urlencoded (RFC 6749 Appendix B) when
 * escape; 0, or -1 when it does not fit. */
static int form_put(char *buf, size_t *at, size_t cap, const char *s, int escape)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = !escape || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '*';
        if (*at + (plain ? 1 : 3) >= cap)
            return -1;
        if (plain)
            buf[(*at)++] = (char)c;
        else {
            buf[(*at)++] = '%';
            buf[(*at)++] = hex[c >> 4];
            buf[(*at)++] = hex[c & 15];
        }
    }
    buf[*at] = '\0';
    return 0;
}

int dpop_introspect_form(const char *token, const char *client_id, const char *assertion,
                         char **out)
{
    const struct {
        const char *name, *value;
    } fields[] = {
        {"token", token},
        {"token_type_hint", "access_token"},
        {"client_assertion_type",
         assertion ? "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" : NULL},
        {"client_assertion", assertion},
        {"client_id", client_id},
    };
    size_t i, cap, at = 0;
    char *buf;
    *out = NULL;
    if (!token || !*token)
        return DPOP_ERR;
    cap = 160 + 3 * strlen(token) + (assertion ? 3 * strlen(assertion) : 0) +
          (client_id ? 3 * strlen(client_id) : 0);
    if (!(buf = malloc(cap)))
        return DPOP_ERR;
    buf[0] = '\0';
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (!fields[i].value)
            continue;
        if ((at && form_put(buf, &at, cap, "&", 0) != 0) ||
            form_put(buf, &at, cap, fields[i].name, 0) != 0 ||
            form_put(buf, &at, cap, "=", 0) != 0 ||
            form_put(buf, &at, cap, fields[i].value, 1) != 0) {
            OPENSSL_clear_free(buf, cap);
            return DPOP_ERR;
        }
    }
    *out = buf;
    return DPOP_OK;
}

void dpop_introspect_form_free(char *form)
{
    if (form)
        OPENSSL_clear_free(form, strlen(form));
}

int dpop_client_assertion(EVP_PKEY *key, dpop_alg_t alg, const char *kid, const char *client_id,
                          const char *audience, int64_t now, char **out)
{
    unsigned char rnd[16];
    char jti[32];
    json_t *hdr = NULL, *claims = NULL;
    int rc = DPOP_ERR;
    *out = NULL;
    if (!key || !client_id || !audience || !dpop_alg_name(alg))
        return DPOP_ERR;
    /* RFC 7523 §3 (7): a jti the AS can use to refuse a replayed assertion */
    if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
        dpop_b64url_encode_buf(rnd, sizeof(rnd), jti, sizeof(jti)) == (size_t)-1)
        goto done;
    if (!(hdr = json_pack("{s:s, s:s}", "alg", dpop_alg_name(alg), "typ", "JWT")))
        goto done;
    if (kid && json_object_set_new(hdr, "kid", json_string(kid)) != 0)
        goto done;
    if (!(claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", client_id, "sub", client_id,
                             "aud", audience, "jti", jti, "iat", (json_int_t)now, "exp",
                             (json_int_t)(now + DPOP_ASSERTION_LIFETIME))))
        goto done;
    rc = dpop_jws_sign(hdr, claims, alg, key, out);
done:
    json_decref(hdr);
    json_decref(claims);
    return rc;
}
