/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpopctl.c: the operator's command-line tool over the portable DPoP core
 * (DESIGN.md "dpopctl (fixed interface)").
 *
 *   verify      check a DPoP proof exactly as mod_dpop does (minus replay)
 *   thumbprint  RFC 7638 thumbprint of a JWK
 *   keygen      a new private JWK
 *   proof       make a DPoP proof with a private JWK
 *   token       validate a JWT access token as mod_dpop would
 *   jws-verify  the signature layer alone
 *   jwks        the public JWK Set of keys (dpopctl_jwks.c)
 *   hash-token  base64url(SHA-256(token)) (dpopctl_jwks.c)
 *
 * Inputs (files, stdin, tokens kept out of ps) and the request checks of
 * proof are in dpopctl_input.c.
 *
 * Outputs are one JSON object on one line (jansson, compact); exit status 0
 * valid, 1 invalid, 2 usage or I/O error (usage errors: message on stderr).
 * Nothing here ever writes a token, a proof or a private key to stderr; a
 * private key goes only to stdout or to the --out file (mode 0600) that
 * keygen was asked to write.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "dpop_alg.h"
#include "dpop_asmeta.h"
#include "dpop_fetch.h"
#include "dpop_introspect.h"
#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_jwks.h"
#include "dpop_jws.h"
#include "dpop_proof.h"
#include "dpop_result.h"
#include "dpop_token.h"
#include "dpopctl.h"

#define EXIT_VALID 0
#define EXIT_INVALID 1
#define EXIT_USAGE 2

/* Inputs are bounded: a proof, token, JWK or JWKS is never this large. */
#define INPUT_MAX (1024 * 1024)

/* Defaults of mod_dpop's DPoPProofLifetime and DPoPClockSkew. */
#define DEFAULT_MAX_AGE 300
#define DEFAULT_SKEW 5

const char *dpopctl_prog = "dpopctl";

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s %s: ", dpopctl_prog, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s %s --help'.\n", dpopctl_prog, cmd);
    return EXIT_USAGE;
}

static int io_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int io_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s %s: ", dpopctl_prog, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

/* Print one JSON object on one line; steals the reference. */
static int print_json(json_t *o)
{
    char *s;
    if (!o)
        return DPOP_ERR;
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return DPOP_ERR;
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return fflush(stdout) == 0 ? DPOP_OK : DPOP_ERR;
}

/* json_string or null */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Strict integer option value. */
static int parse_i64(const char *s, int64_t min, int64_t *out)
{
    char *end = NULL;
    long long v;
    if (!s || !*s)
        return DPOP_ERR;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < min)
        return DPOP_ERR;
    *out = (int64_t)v;
    return DPOP_OK;
}

static int parse_algs(const char *cmd, const char *list, dpop_alg_mask_t *mask)
{
    char err[160];
    if (dpop_alg_mask_parse(list, mask, err, sizeof(err)) != DPOP_OK)
        return usage_error(cmd, "--algs: %s", err[0] ? err : "invalid algorithm list");
    return DPOP_OK;
}

/* --------------------------------------------------------- shared helpers */

/* One long option of a command and where its value goes: every command
 * parses its options through parse_opts, so --help, an unknown option and
 * a bad number answer the same way everywhere. */
typedef enum { OPT_STR, OPT_I64, OPT_ALGS, OPT_FLAG } opt_kind_t;

typedef struct {
    const char *name;
    opt_kind_t kind;
    void *dst;       /* const char ** (OPT_STR; OPT_FLAG: set to "1"), int64_t * or
                        dpop_alg_mask_t * */
    int64_t min;     /* OPT_I64: smallest accepted value */
    const char *bad; /* OPT_I64: usage message for a bad value */
} opt_t;

#define OPT_MAX 16
#define OPT_VAL 256 /* getopt values of opts[i]: OPT_VAL + i (above any char) */
#define OPT_GO_ON (-1)

/* getopt_long over opts[0..n) plus --help.  OPT_GO_ON when the command
 * continues (its operands are argv[optind..argc)), else the exit status
 * (0 after --help, 2 after a usage error already printed). */
static int parse_opts(const char *cmd, const char *help, int argc, char **argv, const opt_t *opts,
                      size_t n)
{
    struct option lo[OPT_MAX + 2];
    const opt_t *o;
    size_t i;
    int c;

    if (n > OPT_MAX)
        return io_error(cmd, "internal error: too many options");
    for (i = 0; i < n; i++) {
        lo[i].name = opts[i].name;
        lo[i].has_arg = opts[i].kind == OPT_FLAG ? no_argument : required_argument;
        lo[i].flag = NULL;
        lo[i].val = OPT_VAL + (int)i;
    }
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){NULL, 0, NULL, 0};
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return EXIT_VALID;
        }
        if (c < OPT_VAL || c >= OPT_VAL + (int)n)
            return usage_error(cmd, "invalid option");
        o = &opts[c - OPT_VAL];
        switch (o->kind) {
        case OPT_STR:
            *(const char **)o->dst = optarg;
            break;
        case OPT_FLAG:
            *(const char **)o->dst = "1";
            break;
        case OPT_I64:
            if (parse_i64(optarg, o->min, (int64_t *)o->dst) != DPOP_OK)
                return usage_error(cmd, "%s", o->bad);
            break;
        case OPT_ALGS:
            if (parse_algs(cmd, optarg, (dpop_alg_mask_t *)o->dst) != DPOP_OK)
                return EXIT_USAGE;
            break;
        }
    }
    return OPT_GO_ON;
}

#define NOW_BAD "--now needs a non-negative integer (unix seconds)"

/* A compact JWS/JWT given on the command line, or "-" for stdin, or read
 * from a file (dpopctl_secret_open: trimmed, wiped when released since it
 * may be a live token). */
typedef dpopctl_secret_t compact_t;

static int compact_open(const char *cmd, const char *arg, compact_t *in)
{
    return dpopctl_secret_open(cmd, "TOKEN", arg, NULL, in);
}

static void compact_close(compact_t *in)
{
    dpopctl_secret_close(in);
}

/* One line on stdout (a jkt, a key, a proof); exit status of the write. */
static int print_line(const char *cmd, const char *s, const char *what)
{
    printf("%s\n", s);
    return fflush(stdout) == 0 ? EXIT_VALID : io_error(cmd, "cannot write %s", what);
}

/* Print the result object (stolen) and return rc, or 2 when stdout fails. */
static int print_result(const char *cmd, json_t *o, int rc)
{
    if (print_json(o) != DPOP_OK)
        return io_error(cmd, "cannot write the result");
    return rc;
}

/* verify's and token's answer for a rejection (DESIGN.md: error, reason,
 * detail; the detail never holds token, proof or key bytes). */
static json_t *failure_json(const dpop_failure_t *f)
{
    return json_pack("{s:b, s:s?, s:s?, s:s}", "valid", 0, "error", f->error, "reason", f->reason,
                     "detail", f->detail);
}

/* ------------------------------------------------------------------ verify */

static const char verify_help[] =
    "usage: dpopctl verify --method M --url U --proof JWT [--access-token T] [--jkt J]\n"
    "                      [--nonce N] [--now UNIX] [--max-age S] [--skew S] [--algs A,B,...]\n"
    "                      [--access-token-file FILE]\n"
    "Verify a DPoP proof (RFC 9449 §4.3) as mod_dpop does, except replay.\n"
    "  --proof -        read the proof from stdin\n"
    "  --access-token T the token sent with the proof: ath must be its hash;\n"
    "                   - reads it from stdin, --access-token-file FILE from FILE\n"
    "  --now UNIX       fix the clock (default: current time)\n"
    "  --max-age S      proof lifetime (default 300); --skew S clock skew (default 5)\n"
    "  accepted when now - max_age - skew <= iat <= now + skew\n"
    "Prints one JSON object; exit 0 valid, 1 invalid, 2 usage or I/O error.\n"
    "Examples:\n"
    "  dpopctl verify --method GET --url https://api.example.com/a --proof \"$PROOF\"\n"
    "  dpopctl proof --key k.jwk --method GET --url https://h/a | \\\n"
    "    dpopctl verify --method GET --url https://h/a --proof -\n"
    "  dpopctl verify --method GET --url https://h/a --proof \"$PROOF\" \\\n"
    "    --access-token-file token.txt --jkt \"$(dpopctl thumbprint k.jwk)\"\n";

static int cmd_verify(int argc, char **argv)
{
    const char *cmd = "verify", *proof_arg = NULL, *token_arg = NULL, *token_file = NULL;
    dpop_proof_params_t p;
    dpop_proof_result_t r;
    dpop_failure_t f;
    compact_t proof, token;
    int rc;
    json_t *o;

    dpop_proof_params_init(&p);
    dpop_proof_result_init(&r);
    p.now = (int64_t)time(NULL);
    p.max_age = DEFAULT_MAX_AGE;
    p.skew = DEFAULT_SKEW;
    {
        const opt_t opts[] = {
            {"method", OPT_STR, &p.method, 0, NULL},
            {"url", OPT_STR, &p.url, 0, NULL},
            {"proof", OPT_STR, &proof_arg, 0, NULL},
            {"access-token", OPT_STR, &token_arg, 0, NULL},
            {"access-token-file", OPT_STR, &token_file, 0, NULL},
            {"jkt", OPT_STR, &p.expected_jkt, 0, NULL},
            {"nonce", OPT_STR, &p.expected_nonce, 0, NULL},
            {"now", OPT_I64, &p.now, 0, NOW_BAD},
            {"max-age", OPT_I64, &p.max_age, 0, "--max-age needs a non-negative integer (seconds)"},
            {"skew", OPT_I64, &p.skew, 0, "--skew needs a non-negative integer (seconds)"},
            {"algs", OPT_ALGS, &p.algs, 0, NULL}};
        if ((rc = parse_opts(cmd, verify_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]))) !=
            OPT_GO_ON)
            return rc;
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument");
    if (!p.method || !p.url || !proof_arg)
        return usage_error(cmd, "--method, --url and --proof are required");
    if (strcmp(proof_arg, "-") == 0 && token_arg && strcmp(token_arg, "-") == 0)
        return usage_error(cmd, "--proof - and --access-token - cannot both read stdin "
                                "(use --access-token-file)");
    if ((rc = dpopctl_secret_open(cmd, "--access-token", token_arg, token_file, &token)) !=
        EXIT_VALID)
        return rc;
    if ((rc = compact_open(cmd, proof_arg, &proof)) != EXIT_VALID) {
        dpopctl_secret_close(&token);
        return rc;
    }
    p.access_token = token.buf;

    if (dpop_proof_verify(proof.buf, proof.len, &p, &r, &f) == DPOP_OK) {
        o = json_pack("{s:b, s:s, s:s?, s:I, s:s?, s:s?, s:s?}", "valid", 1, "jkt", r.jkt, "jti",
                      r.jti, "iat", (json_int_t)r.iat, "alg", dpop_alg_name(r.alg), "htm", r.htm,
                      "htu", r.htu);
        rc = print_result(cmd, o, EXIT_VALID);
    }
    else {
        rc = print_result(cmd, failure_json(&f), EXIT_INVALID);
    }
    dpop_proof_result_clear(&r);
    compact_close(&proof);
    dpopctl_secret_close(&token);
    return rc;
}

/* -------------------------------------------------------------- thumbprint */

static const char thumbprint_help[] =
    "usage: dpopctl thumbprint [FILE|-]\n"
    "Print the RFC 7638 SHA-256 thumbprint (jkt) of a JWK read from FILE or stdin.\n"
    "A private JWK gives the thumbprint of its public key.\n"
    "Exit 0 printed, 1 not a usable JWK, 2 usage or I/O error.\n"
    "Examples:\n"
    "  dpopctl thumbprint client.jwk\n"
    "  dpopctl keygen --alg ES256 | tee client.jwk | dpopctl thumbprint -\n";

/* Parse a JSON object read from path; on failure prints and returns exit code. */
static int load_json(const char *cmd, const char *path, json_t **out)
{
    char *buf = NULL, err[256];
    size_t len = 0;
    int rc;
    *out = NULL;
    if ((rc = dpopctl_read_file(path, &buf, &len)) != EXIT_VALID)
        return rc;
    *out = dpop_json_parse_object(buf, len, err, sizeof(err));
    OPENSSL_clear_free(buf, len + 1);
    if (!*out) {
        fprintf(stderr, "%s %s: %s: not a JSON object (%s)\n", dpopctl_prog, cmd, path, err);
        return EXIT_INVALID;
    }
    return EXIT_VALID;
}

static int cmd_thumbprint(int argc, char **argv)
{
    const char *cmd = "thumbprint", *path = "-";
    char jkt[DPOP_JKT_LEN + 1];
    dpop_failure_t f;
    json_t *jwk = NULL;
    int rc;

    if ((rc = parse_opts(cmd, thumbprint_help, argc, argv, NULL, 0)) != OPT_GO_ON)
        return rc;
    if (argc - optind > 1)
        return usage_error(cmd, "at most one FILE");
    if (optind < argc)
        path = argv[optind];
    if ((rc = load_json(cmd, path, &jwk)) != EXIT_VALID)
        return rc;
    dpop_failure_clear(&f);
    rc = dpop_jwk_thumbprint_json(jwk, jkt, &f);
    json_decref(jwk);
    if (rc != DPOP_OK) {
        fprintf(stderr, "%s %s: not a usable JWK: %s\n", dpopctl_prog, cmd, f.detail);
        return EXIT_INVALID;
    }
    return print_line(cmd, jkt, "the thumbprint");
}

/* ------------------------------------------------------------------ keygen */

static const char keygen_help[] =
    "usage: dpopctl keygen --alg ALG [--out FILE]\n"
    "Generate a key pair and print the private JWK (with \"alg\") on one line, or\n"
    "write it to FILE, created with mode 0600.  ALG: ES256 ES384 ES512 PS256\n"
    "PS384 PS512 RS256 RS384 RS512 EdDSA (RSA keys are 2048 bits).\n"
    "Exit 0 done, 2 usage or I/O error.\n"
    "Examples:\n"
    "  dpopctl keygen --alg ES256 --out client.jwk\n"
    "  dpopctl keygen --alg PS256 --out rsa.jwk && dpopctl jwks rsa.jwk > rsa-jwks.json\n";

static int write_private(const char *cmd, const char *path, const char *data)
{
    size_t n = strlen(data), off = 0;
    int fd;
    /* O_NOFOLLOW: never write a private key through a planted symlink;
     * 0600 at creation and fchmod for a file that existed. */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return io_error(cmd, "cannot create %s: %s", path, strerror(errno));
    if (fchmod(fd, 0600) != 0) {
        close(fd);
        return io_error(cmd, "cannot set the mode of %s: %s", path, strerror(errno));
    }
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return io_error(cmd, "cannot write %s: %s", path, strerror(errno));
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || close(fd) != 0)
        return io_error(cmd, "cannot write %s", path);
    return EXIT_VALID;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *cmd = "keygen", *alg_name = NULL, *out = NULL;
    const opt_t opts[] = {{"alg", OPT_STR, &alg_name, 0, NULL}, {"out", OPT_STR, &out, 0, NULL}};
    dpop_alg_t alg;
    json_t *jwk = NULL;
    char *s;
    int rc;

    if ((rc = parse_opts(cmd, keygen_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]))) !=
        OPT_GO_ON)
        return rc;
    if (optind < argc)
        return usage_error(cmd, "unexpected argument");
    if (!alg_name)
        return usage_error(cmd, "--alg is required");
    if ((alg = dpop_alg_from_name(alg_name)) == DPOP_ALG_INVALID)
        return usage_error(cmd, "unknown or forbidden algorithm '%.32s'", alg_name);
    if (dpop_jwk_generate(alg, &jwk) != DPOP_OK)
        return io_error(cmd, "key generation failed");
    s = json_dumps(jwk, JSON_COMPACT);
    json_decref(jwk);
    if (!s)
        return io_error(cmd, "out of memory");
    rc = out ? write_private(cmd, out, s) : print_line(cmd, s, "the key");
    OPENSSL_cleanse(s, strlen(s));
    free(s);
    return rc;
}

/* ------------------------------------------------------------------- proof */

static const char proof_help[] =
    "usage: dpopctl proof --key FILE --method M --url U [--access-token T|-]\n"
    "                     [--access-token-file FILE] [--nonce N] [--iat UNIX] [--jti J]\n"
    "                     [--count N] [--header]\n"
    "Print a DPoP proof (compact JWS, one line) signed with the private JWK in FILE\n"
    "(as written by keygen; its \"alg\" member selects the algorithm, else ES*/EdDSA\n"
    "follow the curve and RSA keys use RS256).  M is an HTTP method, case-sensitive\n"
    "(GET, not get); U an absolute http(s) URL: htu is U without query and fragment\n"
    "(RFC 9449 §4.2).  --access-token adds ath (- reads the token from stdin,\n"
    "--access-token-file from FILE: neither shows in ps); --iat defaults to now,\n"
    "--jti to 16 random bytes.  --count N (1..10000000) prints N proofs, one per\n"
    "line, with the same claims and each its own random jti (not with --jti).\n"
    "--header prints each proof as \"DPoP: <proof>\", ready for curl -H.\n"
    "Exit 0 done, 1 unusable key, 2 usage or I/O error.\n"
    "Examples:\n"
    "  dpopctl proof --key client.jwk --method GET --url https://api.example.com/a\n"
    "  curl -H \"Authorization: DPoP $(cat token.txt)\" \\\n"
    "    -H \"$(dpopctl proof --key client.jwk --method GET \\\n"
    "          --url https://api.example.com/a --access-token-file token.txt --header)\" \\\n"
    "    https://api.example.com/a\n"
    "  dpopctl proof --key client.jwk --method POST --url https://h/a --count 1000 > proofs\n";

/* --count: enough for any load test (a line is ~0.5-1 KB), small enough
 * that a typo cannot fill a disk unnoticed for hours. */
#define PROOF_COUNT_MAX 10000000
#define PROOF_COUNT_BAD "--count needs an integer from 1 to 10000000"

static int cmd_proof(int argc, char **argv)
{
    const char *cmd = "proof", *keyfile = NULL, *method = NULL, *url = NULL, *token_arg = NULL,
               *token_file = NULL, *nonce = NULL, *jti = NULL, *header = NULL;
    int64_t iat = 0, count = 1, i;
    const opt_t opts[] = {
        {"key", OPT_STR, &keyfile, 0, NULL},
        {"method", OPT_STR, &method, 0, NULL},
        {"url", OPT_STR, &url, 0, NULL},
        {"access-token", OPT_STR, &token_arg, 0, NULL},
        {"access-token-file", OPT_STR, &token_file, 0, NULL},
        {"header", OPT_FLAG, &header, 0, NULL},
        {"nonce", OPT_STR, &nonce, 0, NULL},
        {"iat", OPT_I64, &iat, 1, "--iat needs a positive integer (unix seconds)"},
        {"jti", OPT_STR, &jti, 0, NULL},
        {"count", OPT_I64, &count, 1, PROOF_COUNT_BAD}};
    json_t *jwk = NULL, *pub = NULL;
    EVP_PKEY *pkey = NULL;
    dpop_alg_t alg;
    dpopctl_secret_t token = {NULL, 0, 0};
    char *out = NULL, *htu = NULL, err[256];
    int rc;

    if ((rc = parse_opts(cmd, proof_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]))) !=
        OPT_GO_ON)
        return rc;
    if (optind < argc)
        return usage_error(cmd, "unexpected argument");
    if (!keyfile || !method || !url)
        return usage_error(cmd, "--key, --method and --url are required");
    if (!*method || !*url || (jti && !*jti) || (nonce && !*nonce))
        return usage_error(cmd, "--method, --url, --jti and --nonce must not be empty");
    if (count > PROOF_COUNT_MAX)
        return usage_error(cmd, "%s", PROOF_COUNT_BAD);
    if (jti && count > 1)
        return usage_error(cmd, "--jti cannot be combined with --count above 1 (a jti is "
                                "used once)");
    if (dpopctl_method_check(method, err, sizeof(err)) != 0 ||
        dpopctl_url_check(url, err, sizeof(err)) != 0)
        return usage_error(cmd, "%s", err);
    if (token_arg && strcmp(token_arg, "-") == 0 && strcmp(keyfile, "-") == 0)
        return usage_error(cmd, "--key - and --access-token - cannot both read stdin");
    /* RFC 9449 §4.2: "htu: The HTTP target URI ..., without query and
     * fragment parts" (the query may hold secrets, too). */
    if (!(htu = dpopctl_htu_of(url)))
        return io_error(cmd, "out of memory");
    if ((rc = dpopctl_secret_open(cmd, "--access-token", token_arg, token_file, &token)) !=
        EXIT_VALID)
        goto done;
    if ((rc = load_json(cmd, keyfile, &jwk)) != EXIT_VALID)
        goto done;
    rc = EXIT_INVALID;
    if ((alg = dpop_jwk_private_alg(jwk)) == DPOP_ALG_INVALID) {
        fprintf(stderr, "%s %s: %s: no usable algorithm for this key\n", dpopctl_prog, cmd,
                keyfile);
        goto done;
    }
    err[0] = '\0';
    if (dpop_jwk_import_private(jwk, &pkey, &pub, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "%s %s: %s: not a usable private JWK (%s)\n", dpopctl_prog, cmd, keyfile,
                err);
        goto done;
    }
    /* One iat for the whole batch, so that --count N proofs differ only by
     * their jti (dpop_proof_create draws a fresh one for each). */
    if (iat == 0)
        iat = (int64_t)time(NULL);
    /* The key is parsed and imported once; a full stdio buffer instead of
     * a flush per line, so a load test can mint its proofs quickly. */
    if (count > 1)
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    for (i = 0; i < count; i++) {
        if (dpop_proof_create(pkey, pub, alg, method, htu, token.buf, nonce, iat, jti, &out) !=
            DPOP_OK) {
            fprintf(stderr, "%s %s: cannot sign a proof with %s for this key\n", dpopctl_prog, cmd,
                    dpop_alg_name(alg));
            goto done;
        }
        if ((header && fputs("DPoP: ", stdout) == EOF) || fputs(out, stdout) == EOF ||
            fputc('\n', stdout) == EOF) {
            rc = io_error(cmd, "cannot write the proof");
            goto done;
        }
        free(out);
        out = NULL;
    }
    rc = fflush(stdout) == 0 ? EXIT_VALID : io_error(cmd, "cannot write the proof");
done:
    free(out);
    free(htu);
    dpopctl_secret_close(&token);
    EVP_PKEY_free(pkey);
    json_decref(pub);
    json_decref(jwk);
    return rc;
}

/* ------------------------------------------------------------------- token */

static const char token_help[] =
    "usage: dpopctl token (--jwks FILE|URL | --metadata URL | --introspect URL)\n"
    "                     [--iss I] [--aud A] [--now UNIX] [--algs ...]\n"
    "                     [--client-id ID [--client-secret-file F]] [--ca-file F]\n"
    "                     TOKEN|-|--access-token-file FILE\n"
    "Check an access token as mod_dpop would, from the same sources.\n"
    "  --jwks FILE|URL  JWT: signature against this JWK Set (a URL is fetched)\n"
    "  --metadata URL   RFC 8414 / OpenID discovery: its issuer must equal --iss;\n"
    "                   a JWT is checked against its jwks_uri, anything else is\n"
    "                   introspected at its introspection_endpoint\n"
    "  --introspect URL RFC 7662 introspection of the token (opaque tokens)\n"
    "  --client-id ID   client of the introspection request (client_secret_basic\n"
    "                   with --client-secret-file F: the secret on its first line)\n"
    "  --ca-file F      trust anchors for the authorization server (default: system)\n"
    "Then iss, aud, exp, nbf (5 s clock skew) and a cnf.jkt binding.  URLs: https,\n"
    "or http to a loopback address; no redirects; 5 s per request.  - reads the\n"
    "token from stdin, --access-token-file from a file.\n"
    "Prints one JSON object; exit 0 valid, 1 invalid, 2 usage, I/O or AS error.\n"
    "Examples:\n"
    "  dpopctl token --jwks as-jwks.json --iss https://as.example.com - < token.txt\n"
    "  dpopctl token --metadata https://as.example.com/.well-known/oauth-authorization-server \\\n"
    "    --iss https://as.example.com --client-id rs1 --client-secret-file rs1.secret \\\n"
    "    --access-token-file token.txt\n";

static int load_jwks(const char *cmd, const char *path, dpop_jwks_t **out)
{
    char err[256], *buf = NULL;
    size_t len = 0;
    int rc;
    /* dpopctl_read_file names the file once, in words ("no such file") */
    if ((rc = dpopctl_read_file(path, &buf, &len)) != EXIT_VALID)
        return rc;
    err[0] = '\0';
    rc = dpop_jwks_parse(buf, len, out, err, sizeof(err));
    OPENSSL_clear_free(buf, len + 1);
    if (rc != DPOP_OK)
        return io_error(cmd, "%s: %s", path, err[0] ? err : "not a usable JWK Set");
    return EXIT_VALID;
}

/* The common tail of token and jws-verify: --jwks FILE and one compact
 * operand (what: "TOKEN" or "JWS"), or for token --access-token-file FILE
 * (file) instead of the operand.  On EXIT_VALID the caller owns *jwks
 * and *in. */
static int jwks_and_operand(const char *cmd, const char *jwks_path, const char *what,
                            const char *file, int argc, char **argv, dpop_jwks_t **jwks,
                            compact_t *in)
{
    int rc;
    if (!jwks_path)
        return usage_error(cmd, "--jwks is required");
    if (argc - optind != (file ? 0 : 1))
        return usage_error(cmd, "exactly one %s (or - for stdin)%s is required", what,
                           file ? " or --access-token-file" : "");
    if ((rc = load_jwks(cmd, jwks_path, jwks)) != EXIT_VALID)
        return rc;
    if ((rc = dpopctl_secret_open(cmd, what, file ? NULL : argv[optind], file, in)) != EXIT_VALID) {
        dpop_jwks_free(*jwks);
        *jwks = NULL;
    }
    return rc;
}

/* Fetch url (GET, or POST form) with the module's bounds; the body in
 * resp.  EXIT_VALID, or 2 with a message (never the body). */
static int fetch_doc(const char *cmd, const char *url, const char *ca, const char *form,
                     const char *user, const char *secret, size_t max, dpop_fetch_resp_t *resp)
{
    dpop_fetch_req_t req;
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.ca_file = ca;
    req.max_body = max;
    req.form = form;
    req.basic_user = user;
    req.basic_password = secret;
    if (dpop_fetch(&req, resp) != 0)
        return io_error(cmd, "%s: %s (%s)", url, resp->err, dpop_fetch_outcome_name(resp->outcome));
    return EXIT_VALID;
}

/* The client secret: the first line of path (wiped by the caller). */
static int load_secret(const char *cmd, const char *path, char **out)
{
    size_t len = 0;
    int rc;
    /* dpopctl_read_file names the file once, in words ("no such file") */
    if ((rc = dpopctl_read_file(path, out, &len)) != EXIT_VALID)
        return rc;
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
        (*out)[--len] = '\0';
    if (len == 0 || memchr(*out, '\n', len))
        return io_error(cmd, "%s: the client secret must be one non-empty line", path);
    return EXIT_VALID;
}

/* RFC 7662 introspection of tok at url; fills r/f like dpop_token_verify.
 * EXIT_VALID when the AS answered (r or f set), else 2. */
static int introspect(const char *cmd, const char *url, const compact_t *tok,
                      const dpop_token_params_t *p, const char *ca, const char *client_id,
                      const char *secret_file, dpop_token_result_t *r, dpop_failure_t *f)
{
    dpop_introspect_params_t ip;
    dpop_fetch_resp_t resp;
    char *form = NULL, *secret = NULL, *t = NULL;
    int rc;
    memset(&resp, 0, sizeof(resp));
    if (secret_file && (rc = load_secret(cmd, secret_file, &secret)) != EXIT_VALID)
        goto done;
    rc = EXIT_USAGE;
    if (!(t = strndup(tok->buf, tok->len)) ||
        dpop_introspect_form(t, secret ? NULL : client_id, NULL, &form) != DPOP_OK) {
        rc = io_error(cmd, "cannot build the introspection request");
        goto done;
    }
    if ((rc = fetch_doc(cmd, url, ca, form, secret ? client_id : NULL, secret,
                        DPOP_FETCH_MAX_INTROSPECTION, &resp)) != EXIT_VALID)
        goto done;
    memset(&ip, 0, sizeof(ip));
    ip.issuer = p->issuer;
    ip.audience = p->audience;
    ip.now = p->now;
    ip.skew = p->skew;
    if (dpop_introspect_parse(resp.body, resp.len, &ip, r, NULL, f) ==
        DPOP_INTROSPECT_BAD_RESPONSE) {
        rc = io_error(cmd, "%s: %s", url, f->detail);
        goto done;
    }
    rc = EXIT_VALID;
done:
    if (t)
        OPENSSL_clear_free(t, tok->len);
    if (secret)
        OPENSSL_clear_free(secret, strlen(secret));
    dpop_introspect_form_free(form);
    dpop_fetch_resp_clear(&resp);
    return rc;
}

static int cmd_token(int argc, char **argv)
{
    const char *cmd = "token", *jwks_arg = NULL, *meta_url = NULL, *intro_url = NULL,
               *client_id = NULL, *secret_file = NULL, *ca = NULL, *jwks_url = NULL,
               *token_file = NULL;
    dpop_token_params_t p;
    dpop_token_result_t r;
    dpop_failure_t f;
    dpop_jwks_t *jwks = NULL;
    dpop_asmeta_t meta;
    dpop_fetch_resp_t resp;
    compact_t tok = {NULL, 0, 0};
    size_t hl, pl, sl;
    char err[256];
    int rc, n_src;
    json_t *o;

    memset(&p, 0, sizeof(p));
    memset(&meta, 0, sizeof(meta));
    memset(&resp, 0, sizeof(resp));
    p.now = (int64_t)time(NULL);
    p.skew = DEFAULT_SKEW;
    dpop_token_result_init(&r);
    dpop_failure_clear(&f);
    {
        const opt_t opts[] = {{"jwks", OPT_STR, &jwks_arg, 0, NULL},
                              {"metadata", OPT_STR, &meta_url, 0, NULL},
                              {"introspect", OPT_STR, &intro_url, 0, NULL},
                              {"client-id", OPT_STR, &client_id, 0, NULL},
                              {"client-secret-file", OPT_STR, &secret_file, 0, NULL},
                              {"ca-file", OPT_STR, &ca, 0, NULL},
                              {"iss", OPT_STR, &p.issuer, 0, NULL},
                              {"aud", OPT_STR, &p.audience, 0, NULL},
                              {"now", OPT_I64, &p.now, 0, NOW_BAD},
                              {"algs", OPT_ALGS, &p.algs, 0, NULL},
                              {"access-token-file", OPT_STR, &token_file, 0, NULL}};
        if ((rc = parse_opts(cmd, token_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]))) !=
            OPT_GO_ON)
            return rc;
    }
    n_src = !!jwks_arg + !!meta_url + !!intro_url;
    if (n_src == 0)
        return usage_error(cmd, "--jwks, --metadata or --introspect is required");
    if (jwks_arg && intro_url)
        return usage_error(cmd, "--jwks and --introspect exclude each other");
    if (secret_file && !client_id)
        return usage_error(cmd, "--client-secret-file needs --client-id");
    if (argc - optind != (token_file ? 0 : 1))
        return usage_error(cmd, "exactly one TOKEN (or - for stdin)%s is required",
                           token_file ? "" : " or --access-token-file");
    if (jwks_arg && strstr(jwks_arg, "://"))
        jwks_url = jwks_arg;
    {
        const char *urls[] = {jwks_url, meta_url, intro_url};
        size_t i;
        for (i = 0; i < 3; i++)
            if (urls[i] && dpop_fetch_url_check(urls[i], err, sizeof(err)) != 0)
                return usage_error(cmd, "%s", err);
    }
    if ((rc = dpopctl_secret_open(cmd, "TOKEN", token_file ? NULL : argv[optind], token_file,
                                  &tok)) != EXIT_VALID)
        return rc;
    if (dpop_fetch_global_init() != 0) {
        rc = io_error(cmd, "libcurl did not initialize");
        goto done;
    }
    if (meta_url) {
        /* RFC 8414 §3.3: the document's issuer must be the expected one. */
        if ((rc = fetch_doc(cmd, meta_url, ca, NULL, NULL, NULL, DPOP_FETCH_MAX_DOC, &resp)) !=
            EXIT_VALID)
            goto done;
        if (dpop_asmeta_parse(resp.body, resp.len, p.issuer, &meta, err, sizeof(err)) != 0) {
            rc = io_error(cmd, "%s: %s", meta_url, err);
            goto done;
        }
        dpop_fetch_resp_clear(&resp);
        /* As DPoPTokenFormat any: a JWS-shaped token is a JWT. */
        if (!intro_url && !jwks_arg && dpop_jws_split(tok.buf, tok.len, &hl, &pl, &sl) != DPOP_OK) {
            if (!(intro_url = meta.introspection_endpoint)) {
                rc = io_error(cmd, "%s names no introspection_endpoint", meta_url);
                goto done;
            }
        }
        if (!jwks_arg && !intro_url && !(jwks_url = meta.jwks_uri)) {
            rc = io_error(cmd, "%s names no jwks_uri", meta_url);
            goto done;
        }
        if ((jwks_url && jwks_url == meta.jwks_uri &&
             dpop_fetch_url_check(jwks_url, err, sizeof(err)) != 0) ||
            (intro_url && intro_url == meta.introspection_endpoint &&
             dpop_fetch_url_check(intro_url, err, sizeof(err)) != 0)) {
            rc = io_error(cmd, "%s: %s", meta_url, err);
            goto done;
        }
    }
    if (intro_url) {
        if ((rc = introspect(cmd, intro_url, &tok, &p, ca, client_id, secret_file, &r, &f)) !=
            EXIT_VALID)
            goto done;
    }
    else {
        if (jwks_url) {
            if ((rc = fetch_doc(cmd, jwks_url, ca, NULL, NULL, NULL, DPOP_FETCH_MAX_DOC, &resp)) !=
                EXIT_VALID)
                goto done;
            if (dpop_jwks_parse(resp.body, resp.len, &jwks, err, sizeof(err)) != DPOP_OK) {
                rc = io_error(cmd, "%s: %s", jwks_url, err);
                goto done;
            }
        }
        else if ((rc = load_jwks(cmd, jwks_arg, &jwks)) != EXIT_VALID)
            goto done;
        p.jwks = jwks;
        dpop_token_verify(tok.buf, tok.len, &p, &r, &f);
    }
    if (f.code == DPOP_REASON_NONE && !r.jkt)
        dpop_fail(&f, DPOP_REASON_TOKEN_UNBOUND, "token has no cnf.jkt binding");
    if (f.code == DPOP_REASON_NONE) {
        o = json_pack("{s:b, s:o, s:o, s:o, s:s, s:o, s:s?, s:I, s:o, s:s}", "valid", 1, "sub",
                      str_or_null(r.sub), "client_id", str_or_null(r.client_id), "iss",
                      str_or_null(r.iss), "jkt", r.jkt, "kid", str_or_null(r.kid), "alg",
                      intro_url ? NULL : dpop_alg_name(r.alg), "exp", (json_int_t)r.exp, "scope",
                      str_or_null(r.scope), "source", intro_url ? "introspection" : "jwks");
        rc = print_result(cmd, o, EXIT_VALID);
    }
    else {
        rc = print_result(cmd, failure_json(&f), EXIT_INVALID);
    }
done:
    dpop_token_result_clear(&r);
    dpop_jwks_free(jwks);
    dpop_asmeta_clear(&meta);
    dpop_fetch_resp_clear(&resp);
    compact_close(&tok);
    return rc;
}

/* -------------------------------------------------------------- jws-verify */

static const char jws_verify_help[] =
    "usage: dpopctl jws-verify --jwks FILE [--algs ...] JWS|-\n"
    "Verify only the signature of a compact JWS against the JWK Set (or single JWK)\n"
    "in FILE.  A header kid selects the key, else every fitting key is tried.\n"
    "The payload may be any bytes (it need not be JSON) or empty (detached).\n"
    "Prints {\"valid\":bool,\"alg\":..,\"kid\":..,\"reason\":..}: kid is the verifying\n"
    "key's kid (or, when invalid, the header's), reason null when valid.\n"
    "Exit 0 valid, 1 invalid, 2 usage or I/O error.\n"
    "Examples:\n"
    "  dpopctl jws-verify --jwks as-jwks.json \"$JWS\"\n"
    "  dpopctl jws-verify --jwks as-jwks.json --algs ES256,PS256 - < response.jws\n";

static int cmd_jws_verify(int argc, char **argv)
{
    const char *cmd = "jws-verify", *jwks_path = NULL, *kid = NULL, *hkid = NULL;
    dpop_alg_mask_t algs = DPOP_ALG_MASK_DEFAULT;
    const opt_t opts[] = {{"jwks", OPT_STR, &jwks_path, 0, NULL},
                          {"algs", OPT_ALGS, &algs, 0, NULL}};
    dpop_jwks_t *jwks = NULL;
    dpop_jws_t jws;
    dpop_failure_t f;
    compact_t in;
    int rc;
    json_t *o;

    memset(&jws, 0, sizeof(jws));
    if ((rc = parse_opts(cmd, jws_verify_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]))) !=
        OPT_GO_ON)
        return rc;
    if ((rc = jwks_and_operand(cmd, jwks_path, "JWS", NULL, argc, argv, &jwks, &in)) != EXIT_VALID)
        return rc;
    dpop_failure_clear(&f);
    /* the JWS layer only (RFC 7515 §2): any payload octets, empty included */
    if (dpop_jws_parse_flags(in.buf, in.len, INPUT_MAX, DPOP_JWS_ANY_PAYLOAD, &jws, &f) ==
            DPOP_OK &&
        dpop_jwks_verify(jwks, &jws, algs, &kid, &f) == DPOP_OK) {
        o = json_pack("{s:b, s:s?, s:o, s:n}", "valid", 1, "alg", jws.alg_name, "kid",
                      str_or_null(kid), "reason");
        rc = print_result(cmd, o, EXIT_VALID);
    }
    else {
        if (jws.header)
            dpop_json_get_string(jws.header, "kid", &hkid);
        if (f.code == DPOP_REASON_NONE)
            dpop_fail(&f, DPOP_REASON_BAD_SIGNATURE, "signature does not verify");
        o = json_pack("{s:b, s:s?, s:o, s:s?}", "valid", 0, "alg", jws.alg_name, "kid",
                      str_or_null(hkid), "reason", f.reason);
        rc = print_result(cmd, o, EXIT_INVALID);
    }
    dpop_jws_clear(&jws);
    dpop_jwks_free(jwks);
    compact_close(&in);
    return rc;
}

/* -------------------------------------------------------------------- main */

static const char main_help[] =
    "usage: dpopctl COMMAND [OPTIONS]   (dpopctl COMMAND --help for details)\n"
    "  verify      --method M --url U --proof JWT [--access-token T] [--jkt J] [--nonce N]\n"
    "              [--now UNIX] [--max-age S] [--skew S] [--algs A,B,...]\n"
    "  thumbprint  [FILE|-]\n"
    "  keygen      --alg ALG [--out FILE]\n"
    "  proof       --key FILE --method M --url U [--access-token T|-] [--nonce N]\n"
    "              [--iat UNIX] [--jti J] [--count N] [--header]\n"
    "  token       (--jwks FILE|URL | --metadata URL | --introspect URL) [--iss I] [--aud A]\n"
    "              [--now UNIX] [--algs ...] [--client-id ID [--client-secret-file F]]\n"
    "              [--ca-file F] TOKEN|-|--access-token-file F\n"
    "  jws-verify  --jwks FILE [--algs ...] JWS|-\n"
    "  jwks        FILE...\n"
    "  hash-token  TOKEN|-\n"
    "Wherever a token is taken, - reads it from stdin and --access-token-file FILE\n"
    "from FILE, so it never shows in ps.  dpopctl --version prints the version.\n"
    "Exit status: 0 valid, 1 invalid, 2 usage or I/O error.\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"verify", cmd_verify},     {"thumbprint", cmd_thumbprint},
                {"keygen", cmd_keygen},     {"proof", cmd_proof},
                {"token", cmd_token},       {"jws-verify", cmd_jws_verify},
                {"jwks", dpopctl_cmd_jwks}, {"hash-token", dpopctl_cmd_hash_token}};
    size_t i;

    if (argc < 2) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(main_help, stdout);
        return EXIT_VALID;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dpopctl %s\n", PACKAGE_VERSION);
        return fflush(stdout) == 0 ? EXIT_VALID : EXIT_USAGE;
    }
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            opterr = 1;
            optind = 1;
            return cmds[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "%s: unknown command '%.32s'\n", dpopctl_prog, argv[1]);
    fputs(main_help, stderr);
    return EXIT_USAGE;
}
