/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_testtoken.c: TEST-ONLY minting of JWT access tokens (RFC 9068 shape)
 * for the integration tests and scripts/demo.sh, playing the authorization
 * server.  dpopctl has no token-signing command by design; this tool is
 * never installed.
 *
 *   dpop_testtoken --key AS.jwk [--alg ALG] [--kid K] [--iss I] [--aud A]
 *                  [--sub S] [--client-id C] [--jkt J] [--now UNIX]
 *                  [--ttl S | --exp UNIX] [--nbf UNIX]      -> token on stdout
 *   dpop_testtoken --key AS.jwk --jwks-out FILE [--kid K]  -> public JWK Set
 *   dpop_testtoken --key K.jwk [--alg ALG] --jws-header JSON --jws-payload JSON
 *                  -> any compact JWS signed with K exactly as given (the
 *                     integration tests craft bad DPoP proofs with it)
 *   dpop_testtoken --key K.jwk [--alg ALG] --jws-header JSON --jws-payload-b64 SEG
 *                  -> the same with the payload segment given as is (any
 *                     bytes, not JSON, or empty: a detached payload)
 *
 * Must never: print the private key; messages name files, not contents.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "dpop_alg.h"
#include "dpop_b64.h"
#include "dpop_jwk.h"
#include "dpop_jws.h"
#include "dpop_sig.h"
#include "dpop_token.h"

static void usage(void)
{
    fprintf(
        stderr,
        "usage: dpop_testtoken --key AS.jwk [--alg ALG] [--kid K] [--iss I] [--aud A]\n"
        "                      [--sub S] [--client-id C] [--jkt J] [--now UNIX]\n"
        "                      [--ttl S | --exp UNIX] [--nbf UNIX]\n"
        "       dpop_testtoken --key AS.jwk --jwks-out FILE [--kid K]\n"
        "       dpop_testtoken --key K.jwk [--alg ALG] --jws-header JSON --jws-payload JSON\n"
        "       dpop_testtoken --key K.jwk [--alg ALG] --jws-header JSON --jws-payload-b64 SEG\n");
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || !end || *end || end == s)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* header (JSON text, serialized compactly) "." payload segment as given,
 * signed; caller frees. */
static char *sign_raw(const char *header, const char *payload_b64, dpop_alg_t alg, EVP_PKEY *pkey)
{
    json_error_t jerr;
    json_t *jh = json_loads(header, 0, &jerr);
    char *hj = NULL, *hb = NULL, *input = NULL, *sb = NULL, *out = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0, n;
    if (!json_is_object(jh) || !(hj = json_dumps(jh, JSON_COMPACT)) ||
        !(hb = dpop_b64url_encode((const unsigned char *)hj, strlen(hj))))
        goto done;
    n = strlen(hb) + 1 + strlen(payload_b64);
    if (!(input = malloc(n + 1)))
        goto done;
    snprintf(input, n + 1, "%s.%s", hb, payload_b64);
    if (dpop_sig_sign(alg, pkey, (const unsigned char *)input, n, &sig, &siglen) != 0 ||
        !(sb = dpop_b64url_encode(sig, siglen)) || !(out = malloc(n + 2 + strlen(sb))))
        goto done;
    snprintf(out, n + 2 + strlen(sb), "%s.%s", input, sb);
done:
    json_decref(jh);
    free(hj);
    free(hb);
    free(input);
    free(sig);
    free(sb);
    return out;
}

int main(int argc, char **argv)
{
    const char *keyfile = NULL, *alg_name = NULL, *kid = NULL, *iss = NULL, *aud = NULL;
    const char *sub = NULL, *client_id = NULL, *jkt = NULL, *jwks_out = NULL;
    const char *jws_header = NULL, *jws_payload = NULL, *jws_payload_b64 = NULL;
    json_t *jh = NULL, *jp = NULL;
    int64_t now = (int64_t)time(NULL), ttl = 300, exp = 0, nbf = 0;
    int have_exp = 0, have_nbf = 0, i, rc = 2;
    json_t *priv = NULL, *pub = NULL, *claims = NULL, *set = NULL;
    json_error_t jerr;
    EVP_PKEY *pkey = NULL;
    char err[256] = "", *token = NULL;
    dpop_alg_t alg;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                             \
    if (!strcmp(a, name)) {                                                                        \
        if (!v) {                                                                                  \
            usage();                                                                               \
            goto done;                                                                             \
        }                                                                                          \
        var = v;                                                                                   \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        OPT("--key", keyfile)
        OPT("--alg", alg_name)
        OPT("--kid", kid)
        OPT("--iss", iss)
        OPT("--aud", aud)
        OPT("--sub", sub)
        OPT("--client-id", client_id)
        OPT("--jkt", jkt)
        OPT("--jwks-out", jwks_out)
        OPT("--jws-header", jws_header)
        OPT("--jws-payload", jws_payload)
        OPT("--jws-payload-b64", jws_payload_b64)
#undef OPT
        if ((!strcmp(a, "--now") || !strcmp(a, "--ttl") || !strcmp(a, "--exp") ||
             !strcmp(a, "--nbf")) &&
            v) {
            int64_t n;
            if (parse_i64(v, &n) != 0) {
                fprintf(stderr, "dpop_testtoken: %s needs an integer\n", a);
                goto done;
            }
            if (!strcmp(a, "--now"))
                now = n;
            else if (!strcmp(a, "--ttl"))
                ttl = n;
            else if (!strcmp(a, "--exp"))
                exp = n, have_exp = 1;
            else
                nbf = n, have_nbf = 1;
            i++;
            continue;
        }
        usage();
        goto done;
    }
    if (!keyfile) {
        usage();
        goto done;
    }
    if (!(priv = json_load_file(keyfile, 0, &jerr)) || !json_is_object(priv)) {
        fprintf(stderr, "dpop_testtoken: %s: not a JSON object (line %d)\n", keyfile, jerr.line);
        goto done;
    }
    if (dpop_jwk_import_private(priv, &pkey, &pub, err, sizeof(err)) != 0 || !pkey || !pub) {
        fprintf(stderr, "dpop_testtoken: %s: %s\n", keyfile, err[0] ? err : "not a private JWK");
        goto done;
    }
    if (kid)
        json_object_set_new(pub, "kid", json_string(kid));

    if (jwks_out) {
        FILE *fp;
        set = json_pack("{s:[O]}", "keys", pub);
        if (!set || !(fp = fopen(jwks_out, "w"))) {
            fprintf(stderr, "dpop_testtoken: cannot write %s\n", jwks_out);
            goto done;
        }
        json_dumpf(set, fp, JSON_INDENT(2));
        fputc('\n', fp);
        if (fclose(fp) != 0) {
            fprintf(stderr, "dpop_testtoken: cannot write %s\n", jwks_out);
            goto done;
        }
        rc = 0;
        goto done;
    }

    if (!alg_name) {
        json_t *ja = json_object_get(priv, "alg");
        alg_name = json_is_string(ja) ? json_string_value(ja) : NULL;
    }
    if (!alg_name || (alg = dpop_alg_from_name(alg_name)) == DPOP_ALG_INVALID) {
        fprintf(stderr, "dpop_testtoken: unknown or missing --alg\n");
        goto done;
    }
    if (jws_header && jws_payload_b64) {
        token = sign_raw(jws_header, jws_payload_b64, alg, pkey);
        if (!token) {
            fprintf(stderr, "dpop_testtoken: --jws-header needs a JSON object; signing failed\n");
            goto done;
        }
        printf("%s\n", token);
        rc = 0;
        goto done;
    }
    if (jws_header || jws_payload) {
        if (!jws_header || !jws_payload || !(jh = json_loads(jws_header, 0, &jerr)) ||
            !(jp = json_loads(jws_payload, 0, &jerr))) {
            fprintf(stderr, "dpop_testtoken: --jws-header/--jws-payload need JSON objects\n");
            goto done;
        }
        if (dpop_jws_sign(jh, jp, alg, pkey, &token) != 0 || !token) {
            fprintf(stderr, "dpop_testtoken: signing failed\n");
            goto done;
        }
        printf("%s\n", token);
        rc = 0;
        goto done;
    }
    claims = json_object();
    if (!claims)
        goto done;
    if (iss)
        json_object_set_new(claims, "iss", json_string(iss));
    if (aud)
        json_object_set_new(claims, "aud", json_string(aud));
    if (sub)
        json_object_set_new(claims, "sub", json_string(sub));
    if (client_id)
        json_object_set_new(claims, "client_id", json_string(client_id));
    json_object_set_new(claims, "iat", json_integer((json_int_t)now));
    json_object_set_new(claims, "exp", json_integer((json_int_t)(have_exp ? exp : now + ttl)));
    if (have_nbf)
        json_object_set_new(claims, "nbf", json_integer((json_int_t)nbf));
    if (jkt)
        json_object_set_new(claims, "cnf", json_pack("{s:s}", "jkt", jkt));
    if (dpop_token_create(pkey, alg, kid, claims, &token) != 0 || !token) {
        fprintf(stderr, "dpop_testtoken: signing failed\n");
        goto done;
    }
    printf("%s\n", token);
    rc = 0;
done:
    free(token);
    json_decref(claims);
    json_decref(jh);
    json_decref(jp);
    json_decref(set);
    json_decref(pub);
    json_decref(priv);
    EVP_PKEY_free(pkey);
    return rc;
}
