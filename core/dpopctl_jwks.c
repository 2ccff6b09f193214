/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpopctl_jwks.c: `dpopctl jwks FILE...` (private or public JWKs -> the
 * public JWK Set to serve or to give DPoPTokenJWKS) and `dpopctl
 * hash-token TOKEN|-` (base64url(SHA-256(token)): a proof's ath and the
 * audit store's token_hash).
 *
 * jwks copies only the public members a verifier needs (RFC 7518 §6,
 * RFC 8037 §2) and the key's kid, use, alg and X.509 members, so that no
 * private member ("d", "p", ..., or one this code does not know) can reach
 * the output; each key is imported as a public key before it is printed.
 * Nothing here prints a private member, a token or part of one.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_jwks.h"
#include "dpop_proof.h"
#include "dpop_result.h"
#include "dpopctl.h"

/* RFC 7517 §4 common members and RFC 7518 §6.2.1 / §6.3.1, RFC 8037 §2
 * public members: everything else (private members first of all) stays out
 * of a published key.  key_ops is left out: a private key's ["sign"] would
 * forbid verification to a reader that honours it. */
static const char *const public_members[] = {"kty",      "use", "alg", "kid", "x5u", "x5c", "x5t",
                                             "x5t#S256", "crv", "x",   "y",   "n",   "e"};

/* The public JWK of one input key (a new object) or NULL with a message
 * printed and *rc = 1. */
static json_t *public_of(const char *path, size_t idx, int many, json_t *in, int *rc)
{
    json_t *out = NULL, *v;
    dpop_jwk_t *k = NULL;
    dpop_failure_t f;
    const char *kty = NULL;
    char where[64] = "";
    size_t i;

    if (many)
        snprintf(where, sizeof(where), " (key %zu)", idx);
    *rc = DPOPCTL_EXIT_INVALID;
    if (!json_is_object(in)) {
        fprintf(stderr, "%s jwks: %s%s: not a JWK (a JSON object)\n", dpopctl_prog, path, where);
        return NULL;
    }
    if (dpop_json_get_string(in, "kty", &kty) == 1 && strcmp(kty, "oct") == 0) {
        fprintf(stderr, "%s jwks: %s%s: a symmetric key (kty oct) has no public part\n",
                dpopctl_prog, path, where);
        return NULL;
    }
    if (!(out = json_object()))
        goto oom;
    for (i = 0; i < sizeof(public_members) / sizeof(public_members[0]); i++) {
        if ((v = json_object_get(in, public_members[i])) &&
            json_object_set(out, public_members[i], v) != 0)
            goto oom;
    }
    dpop_failure_clear(&f);
    if (dpop_jwk_import_public(out, &k, &f) != DPOP_OK) {
        fprintf(stderr, "%s jwks: %s%s: not a usable key: %s\n", dpopctl_prog, path, where,
                f.detail);
        json_decref(out);
        return NULL;
    }
    /* DESIGN.md: kid = the RFC 7638 thumbprint when the key has none, so a
     * JWS header can select it. */
    if (!json_object_get(out, "kid") &&
        json_object_set_new(out, "kid", json_string(dpop_jwk_thumbprint(k))) != 0)
        goto oom;
    dpop_jwk_free(k);
    *rc = DPOPCTL_EXIT_VALID;
    return out;
oom:
    dpop_jwk_free(k);
    json_decref(out);
    fprintf(stderr, "%s jwks: out of memory\n", dpopctl_prog);
    *rc = DPOPCTL_EXIT_USAGE;
    return NULL;
}

/* Add the keys of one file (a JWK or a JWK Set) to set. */
static int add_file(const char *path, json_t *set)
{
    char *buf = NULL, err[256];
    size_t len = 0, i;
    json_t *root = NULL, *keys, *pub;
    int rc;

    if ((rc = dpopctl_read_file(path, &buf, &len)) != DPOPCTL_EXIT_VALID)
        return rc;
    root = dpop_json_parse_object(buf, len, err, sizeof(err));
    OPENSSL_clear_free(buf, len + 1);
    if (!root) {
        fprintf(stderr, "%s jwks: %s: not a JSON object (%s)\n", dpopctl_prog,
                strcmp(path, "-") == 0 ? "(stdin)" : path, err);
        return DPOPCTL_EXIT_INVALID;
    }
    if ((keys = json_object_get(root, "keys"))) {
        if (!json_is_array(keys) || json_array_size(keys) == 0) {
            fprintf(stderr, "%s jwks: %s: \"keys\" is not a non-empty array\n", dpopctl_prog, path);
            rc = DPOPCTL_EXIT_INVALID;
            goto done;
        }
        for (i = 0; i < json_array_size(keys); i++) {
            if (!(pub = public_of(path, i, 1, json_array_get(keys, i), &rc)))
                goto done;
            json_array_append_new(set, pub);
        }
    }
    else {
        if (!(pub = public_of(path, 0, 0, root, &rc)))
            goto done;
        json_array_append_new(set, pub);
    }
    rc = DPOPCTL_EXIT_VALID;
done:
    /* the input may hold private members: wipe what jansson kept */
    json_decref(root);
    return rc;
}

/* A kid selects one key (RFC 7515 §4.1.4): two keys with one kid would
 * make DPoPTokenJWKS try the wrong one. */
static int check_unique_kids(json_t *set)
{
    size_t i, j;
    for (i = 0; i < json_array_size(set); i++) {
        const char *a = json_string_value(json_object_get(json_array_get(set, i), "kid"));
        for (j = i + 1; a && j < json_array_size(set); j++) {
            const char *b = json_string_value(json_object_get(json_array_get(set, j), "kid"));
            if (b && strcmp(a, b) == 0) {
                fprintf(stderr, "%s jwks: two keys have the kid \"%.64s\"\n", dpopctl_prog, a);
                return DPOPCTL_EXIT_INVALID;
            }
        }
    }
    return DPOPCTL_EXIT_VALID;
}

static const char jwks_help[] =
    "usage: dpopctl jwks FILE...\n"
    "Print the public JWK Set {\"keys\":[...]} of the keys in FILEs (- for stdin):\n"
    "each FILE holds one JWK or a JWK Set, private or public.  Only public members\n"
    "are copied (kty, crv, x, y, n, e, kid, use, alg, x5*); a key without kid gets\n"
    "its RFC 7638 thumbprint as kid.  Exit 0 printed, 1 a key is unusable, a\n"
    "symmetric key or a duplicate kid, 2 usage or I/O error.\n"
    "Examples:\n"
    "  dpopctl jwks client.jwk > client-jwks.json       # a client registration\n"
    "  dpopctl jwks as-2026.jwk as-2027.jwk > as-jwks.json   # DPoPTokenJWKS, rotation\n"
    "  dpopctl keygen --alg ES256 | dpopctl jwks -\n";

int dpopctl_cmd_jwks(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    json_t *set = NULL, *keys = NULL;
    char *s = NULL;
    int c, i, rc;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'h') {
            fputs(jwks_help, stdout);
            return DPOPCTL_EXIT_VALID;
        }
        fprintf(stderr, "Try '%s jwks --help'.\n", dpopctl_prog);
        return DPOPCTL_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr,
                "%s jwks: at least one FILE (or - for stdin) is required\n"
                "Try '%s jwks --help'.\n",
                dpopctl_prog, dpopctl_prog);
        return DPOPCTL_EXIT_USAGE;
    }
    if (!(keys = json_array()))
        return DPOPCTL_EXIT_USAGE;
    for (i = optind; i < argc; i++) {
        if ((rc = add_file(argv[i], keys)) != DPOPCTL_EXIT_VALID)
            goto done;
    }
    if (json_array_size(keys) > DPOP_JWKS_MAX_KEYS) {
        fprintf(stderr, "%s jwks: more than %d keys (the most DPoPTokenJWKS reads)\n", dpopctl_prog,
                DPOP_JWKS_MAX_KEYS);
        rc = DPOPCTL_EXIT_INVALID;
        goto done;
    }
    if ((rc = check_unique_kids(keys)) != DPOPCTL_EXIT_VALID)
        goto done;
    rc = DPOPCTL_EXIT_USAGE;
    if (!(set = json_pack("{s:O}", "keys", keys)) || !(s = json_dumps(set, JSON_COMPACT)))
        goto done;
    if (printf("%s\n", s) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "%s jwks: cannot write the key set\n", dpopctl_prog);
        goto done;
    }
    rc = DPOPCTL_EXIT_VALID;
done:
    free(s);
    json_decref(set);
    json_decref(keys);
    return rc;
}

static const char hash_token_help[] =
    "usage: dpopctl hash-token TOKEN|-\n"
    "       dpopctl hash-token --access-token-file FILE\n"
    "Print base64url(SHA-256(token)): the ath a proof for this token carries\n"
    "(RFC 9449 §4.2) and the token_hash of the audit store.  - reads the token\n"
    "from stdin and --access-token-file from FILE (surrounding whitespace\n"
    "dropped), so it never shows in ps.  Exit 0 printed, 2 usage or I/O error.\n"
    "Examples:\n"
    "  dpopctl hash-token --access-token-file token.txt\n"
    "  dpop-audit list --token-hash \"$(dpopctl hash-token - < token.txt)\"\n";

int dpopctl_cmd_hash_token(int argc, char **argv)
{
    static const struct option lo[] = {{"access-token-file", required_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *file = NULL, *arg = NULL;
    char ath[DPOP_JKT_LEN + 1];
    dpopctl_secret_t tok;
    int c, rc;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'h') {
            fputs(hash_token_help, stdout);
            return DPOPCTL_EXIT_VALID;
        }
        if (c == 'f') {
            file = optarg;
            continue;
        }
        fprintf(stderr, "Try '%s hash-token --help'.\n", dpopctl_prog);
        return DPOPCTL_EXIT_USAGE;
    }
    if (argc - optind > 1 || (argc - optind == 0 && !file) || (argc - optind == 1 && file)) {
        fprintf(stderr,
                "%s hash-token: exactly one of TOKEN, - (stdin) or --access-token-file FILE\n"
                "Try '%s hash-token --help'.\n",
                dpopctl_prog, dpopctl_prog);
        return DPOPCTL_EXIT_USAGE;
    }
    if (optind < argc)
        arg = argv[optind];
    if ((rc = dpopctl_secret_open("hash-token", "--access-token", arg, file, &tok)) !=
        DPOPCTL_EXIT_VALID)
        return rc;
    if (tok.len == 0) {
        fprintf(stderr, "%s hash-token: the token is empty\n", dpopctl_prog);
        rc = DPOPCTL_EXIT_USAGE;
    }
    else if (dpop_ath_compute(tok.buf, tok.len, ath) != DPOP_OK) {
        fprintf(stderr, "%s hash-token: cannot hash the token\n", dpopctl_prog);
        rc = DPOPCTL_EXIT_USAGE;
    }
    else {
        rc = printf("%s\n", ath) > 0 && fflush(stdout) == 0 ? DPOPCTL_EXIT_VALID
                                                            : DPOPCTL_EXIT_USAGE;
    }
    dpopctl_secret_close(&tok);
    return rc;
}
