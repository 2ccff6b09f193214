/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_config.c: mod_dpop's directives (names fixed by DESIGN.md "Apache
 * configuration"), per-server and per-directory config records, merges and
 * config-time validation.
 *
 * Every directive is validated in its handler, so `apache2 -t` stops with
 * httpd's "Syntax error on line N of FILE:" followed by our precise message:
 * a JWKS file that does not load, an unknown algorithm, an unusable replay
 * cache spec, an unreadable or short nonce secret, a broken policy file.
 *
 * Must never: print the nonce secret or any key material in a message.
 */
#include "mod_dpop_config.h"

#include "http_log.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_uri.h"
#include "apr_file_io.h"
#include "apr_file_info.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dpop_fetch.h"
#include "dpop_htu.h"
#include "dpop_json.h"
#include "dpop_jwk.h"
#include "dpop_nonce.h"
#include "dpop_result.h"
#include "dpop_sha256.h"

APLOG_USE_MODULE(dpop);

#define NONCE_SERVERS_KEY "mod_dpop-nonce-servers"
#define SOURCE_SITES_KEY "mod_dpop-token-source-sites"

/* Set once by mod_dpop.c before any directive is read. */
static const dpop_config_validators_t *validators;

void dpop_config_set_validators(const dpop_config_validators_t *v)
{
    validators = v;
}

/* ---- records ---------------------------------------------------------- */

/* The algs attribute of a challenge for mask, formatted once here so no
 * request formats it. */
static const char *format_algs_attr(apr_pool_t *p, dpop_alg_mask_t mask)
{
    char buf[128];
    dpop_alg_mask_format(mask, buf, sizeof(buf));
    return apr_pstrdup(p, buf);
}

void *dpop_create_dir_conf(apr_pool_t *p, char *dir)
{
    dpop_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    c->algs = 0;
    c->algs_attr = format_algs_attr(p, DPOP_ALG_MASK_DEFAULT);
    c->proof_lifetime = DPOP_UNSET;
    c->clock_skew = DPOP_UNSET;
    c->max_proof_size = DPOP_UNSET;
    c->nonce = DPOP_UNSET;
    c->nonce_lifetime = DPOP_UNSET;
    c->mode = DPOP_UNSET;
    c->allow_bearer = DPOP_UNSET;
    c->format = DPOP_UNSET;
    c->introspection_cache = DPOP_UNSET;
    c->refresh = DPOP_UNSET;
    return c;
}

#define MERGE_INT(f) c->f = (add->f != DPOP_UNSET) ? add->f : base->f
#define MERGE_PTR(f) c->f = (add->f != NULL) ? add->f : base->f

static void merge_token_sources(dpop_dir_conf_t *c, const dpop_dir_conf_t *base,
                                const dpop_dir_conf_t *add);

void *dpop_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const dpop_dir_conf_t *base = basev, *add = addv;
    dpop_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    /* Fields that travel together come from the same level. */
    /* The innermost scope naming a key source (DPoPTokenJWKS or
     * DPoPTokenMetadata) decides where the keys come from. */
    const dpop_dir_conf_t *jw = (add->jwks || add->jwks_url || add->metadata_url) ? add : base;
    const dpop_dir_conf_t *al = add->algs ? add : base;
    c->jwks = jw->jwks;
    c->jwks_file = jw->jwks_file;
    c->jwks_url = jw->jwks_url;
    merge_token_sources(c, base, add);
    MERGE_PTR(issuer);
    MERGE_PTR(audience);
    c->algs = al->algs;
    c->algs_attr = al->algs_attr;
    MERGE_INT(proof_lifetime);
    MERGE_INT(clock_skew);
    MERGE_INT(max_proof_size);
    MERGE_PTR(external_url);
    MERGE_INT(nonce);
    MERGE_INT(nonce_lifetime);
    MERGE_INT(mode);
    MERGE_INT(allow_bearer);
    return c;
}

void *dpop_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    dpop_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));
    c->audit_mapsize = DPOP_UNSET;
    c->replay_timeout_ms = DPOP_UNSET;
    return c;
}

void *dpop_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const dpop_srv_conf_t *base = basev, *add = addv;
    dpop_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));
    /* Fields that travel together come from the same level. */
    const dpop_srv_conf_t *rp = add->replay ? add : base;
    const dpop_srv_conf_t *ns = add->nonce_secret ? add : base;
    c->replay = rp->replay;
    c->replay_spec = rp->replay_spec;
    MERGE_INT(replay_timeout_ms);
    MERGE_PTR(policy_file);
    MERGE_PTR(audit_dir);
    MERGE_INT(audit_mapsize);
    c->nonce_secret = ns->nonce_secret;
    c->nonce_secret_len = ns->nonce_secret_len;
    c->nonce_secret_file = ns->nonce_secret_file;
    /* policy and audit runtime objects are created per server in
     * child_init from the merged paths: never inherited pointers. */
    return c;
}

dpop_srv_conf_t *dpop_srv_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &dpop_module);
}

dpop_dir_conf_t *dpop_dir_conf(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &dpop_module);
}

int dpop_conf_lifetime(const dpop_dir_conf_t *c)
{
    return c->proof_lifetime == DPOP_UNSET ? DPOP_DEFAULT_PROOF_LIFETIME : c->proof_lifetime;
}
int dpop_conf_skew(const dpop_dir_conf_t *c)
{
    return c->clock_skew == DPOP_UNSET ? DPOP_DEFAULT_CLOCK_SKEW : c->clock_skew;
}
int dpop_conf_max_proof(const dpop_dir_conf_t *c)
{
    return c->max_proof_size == DPOP_UNSET ? DPOP_DEFAULT_MAX_PROOF : c->max_proof_size;
}
int dpop_conf_nonce_on(const dpop_dir_conf_t *c)
{
    return c->nonce == 1;
}
int dpop_conf_nonce_lifetime(const dpop_dir_conf_t *c)
{
    return c->nonce_lifetime == DPOP_UNSET ? DPOP_DEFAULT_NONCE_LIFETIME : c->nonce_lifetime;
}
int dpop_conf_report_only(const dpop_dir_conf_t *c)
{
    return c->mode == DPOP_MODE_REPORT_ONLY;
}
int dpop_conf_allow_bearer(const dpop_dir_conf_t *c)
{
    return c->allow_bearer == 1;
}
dpop_alg_mask_t dpop_conf_algs(const dpop_dir_conf_t *c)
{
    return c->algs ? c->algs : DPOP_ALG_MASK_DEFAULT;
}
const char *dpop_conf_algs_attr(const dpop_dir_conf_t *c)
{
    return c->algs_attr;
}
int dpop_conf_format(const dpop_dir_conf_t *c)
{
    return c->format == DPOP_UNSET ? DPOP_FORMAT_JWT : c->format;
}
int dpop_conf_introspection_cache(const dpop_dir_conf_t *c)
{
    return c->introspection_cache == DPOP_UNSET ? DPOP_DEFAULT_INTROSPECTION_CACHE
                                                : c->introspection_cache;
}
int dpop_conf_refresh(const dpop_dir_conf_t *c)
{
    return c->refresh == DPOP_UNSET ? DPOP_DEFAULT_REFRESH : c->refresh;
}
int dpop_conf_has_token_source(const dpop_dir_conf_t *c)
{
    return c->jwks || c->jwks_url || c->metadata_url || c->introspection_url;
}
apr_size_t dpop_conf_audit_mapsize(const dpop_srv_conf_t *s)
{
    return (apr_size_t)(s->audit_mapsize == DPOP_UNSET ? DPOP_DEFAULT_AUDIT_MAPSIZE
                                                       : s->audit_mapsize);
}

/* ---- fingerprint -------------------------------------------------------- */

/* Each value is framed (a tag, then its length or NULL mark, then its
 * bytes) so two different configurations never serialize alike. */
static int fp_bytes(EVP_MD_CTX *ctx, char tag, const void *v, apr_size_t n, int present)
{
    apr_uint64_t len = present ? (apr_uint64_t)n : ~(apr_uint64_t)0;
    return EVP_DigestUpdate(ctx, &tag, 1) == 1 && EVP_DigestUpdate(ctx, &len, sizeof(len)) == 1 &&
           (!present || !n || EVP_DigestUpdate(ctx, v, n) == 1);
}

static int fp_str(EVP_MD_CTX *ctx, char tag, const char *s)
{
    return fp_bytes(ctx, tag, s, s ? strlen(s) : 0, s != NULL);
}

static int fp_num(EVP_MD_CTX *ctx, char tag, apr_int64_t v)
{
    return fp_bytes(ctx, tag, &v, sizeof(v), 1);
}

/* Objects loaded at config time are compared by identity (they live as
 * long as the configuration). */
static int fp_ptr(EVP_MD_CTX *ctx, char tag, const void *p)
{
    return fp_bytes(ctx, tag, &p, sizeof(p), 1);
}

int dpop_conf_fingerprint(const dpop_dir_conf_t *c, const dpop_srv_conf_t *sc,
                          unsigned char out[DPOP_CONF_FP_LEN])
{
    EVP_MD_CTX *ctx = NULL;
    unsigned int n = 0;
    int rc = DPOP_ERR;
    if (!(ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(ctx, dpop_sha256_md(), NULL) != 1)
        goto done;
    /* The key set by its file (one file loaded twice at the same start is
     * the same set), else by identity. */
    if (!(c->jwks_file ? fp_str(ctx, 'J', c->jwks_file) : fp_ptr(ctx, 'j', c->jwks)) ||
        /* the token sources (a token checked against one AS is not checked
         * against another) */
        !fp_str(ctx, 'U', c->jwks_url) || !fp_str(ctx, 'M', c->metadata_url) ||
        !fp_num(ctx, 'F', dpop_conf_format(c)) || !fp_str(ctx, 'I', c->introspection_url) ||
        !fp_ptr(ctx, 'h', c->iauth) || !fp_str(ctx, 'C', c->ca_file) ||
        !fp_str(ctx, 'i', c->issuer) || !fp_str(ctx, 'a', c->audience) ||
        !fp_num(ctx, 'A', (apr_int64_t)dpop_conf_algs(c)) ||
        !fp_num(ctx, 'l', dpop_conf_lifetime(c)) || !fp_num(ctx, 's', dpop_conf_skew(c)) ||
        !fp_num(ctx, 'm', dpop_conf_max_proof(c)) || !fp_str(ctx, 'u', c->external_url) ||
        !fp_num(ctx, 'n', dpop_conf_nonce_on(c)) ||
        !fp_num(ctx, 'N', dpop_conf_nonce_lifetime(c)) ||
        !fp_num(ctx, 'r', dpop_conf_report_only(c)) ||
        !fp_num(ctx, 'b', dpop_conf_allow_bearer(c)) || !fp_ptr(ctx, 'R', sc ? sc->replay : NULL) ||
        !fp_ptr(ctx, 'S', sc ? (const void *)sc->nonce_secret : NULL))
        goto done;
    if (EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != DPOP_CONF_FP_LEN)
        goto done;
    rc = DPOP_OK;
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int dpop_conf_replay_timeout_ms(const dpop_srv_conf_t *s)
{
    return s->replay_timeout_ms == DPOP_UNSET ? DPOP_DEFAULT_REPLAY_TIMEOUT_MS
                                              : s->replay_timeout_ms;
}

/* ---- helpers ---------------------------------------------------------- */

/* A whole decimal number in [min, max]; NULL on success. */
static const char *parse_int(cmd_parms *cmd, const char *arg, long min, long max, int *out)
{
    char *end = NULL;
    apr_int64_t v;
    if (!arg[0] || !apr_isdigit(arg[0]))
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number", cmd->cmd->name, arg);
    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (errno || *end)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number", cmd->cmd->name, arg);
    if (v < min || v > max)
        return apr_psprintf(cmd->pool, "%s: %s is out of range (%ld..%ld)", cmd->cmd->name, arg,
                            min, max);
    *out = (int)v;
    return NULL;
}

static apr_status_t jwks_cleanup(void *data)
{
    dpop_jwks_free(data);
    return APR_SUCCESS;
}

typedef struct {
    unsigned char *buf;
    apr_size_t len;
} secret_hold_t;

static apr_status_t secret_cleanup(void *data)
{
    secret_hold_t *h = data;
    if (h->buf)
        OPENSSL_clear_free(h->buf, h->len);
    h->buf = NULL;
    return APR_SUCCESS;
}

/* ---- per-directory directives ------------------------------------------ */

static const char *set_token_jwks(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_dir_conf_t *c = mconfig;
    dpop_jwks_t *set = NULL;
    char err[256] = "";
    const char *path;
    if (ap_strstr_c(arg, "://")) {
        /* A URL: fetched and kept fresh by mod_dpop_keyset.c (per process,
         * on first use: startup never waits for the authorization server). */
        if (dpop_fetch_url_check(arg, err, sizeof(err)) != 0)
            return apr_psprintf(cmd->pool, "DPoPTokenJWKS: %s", err);
        c->jwks_url = arg;
        c->jwks = NULL;
        c->jwks_file = NULL;
        return NULL;
    }
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path)
        return apr_psprintf(cmd->pool, "DPoPTokenJWKS: invalid path '%s'", arg);
    if (dpop_jwks_load_file(path, &set, err, sizeof(err)) != 0 || !set)
        return apr_psprintf(cmd->pool, "DPoPTokenJWKS %s: %s", path,
                            err[0] ? err : "cannot load the key set");
    apr_pool_cleanup_register(cmd->pool, set, jwks_cleanup, apr_pool_cleanup_null);
    if (dpop_jwks_skipped(set) > 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                     "DPoPTokenJWKS %s: %lu unusable key(s) skipped, %lu in use", path,
                     (unsigned long)dpop_jwks_skipped(set), (unsigned long)dpop_jwks_count(set));
    c->jwks = set;
    c->jwks_file = path;
    c->jwks_url = NULL;
    return NULL;
}

/* ---- token sources: one table, one setter, one merge loop ---------------- */

typedef enum { TS_URL, TS_FILE, TS_SECONDS, TS_FORMAT } ts_kind_t;

typedef struct {
    const char *name;
    ts_kind_t kind;
    apr_size_t offset; /* of the field in dpop_dir_conf_t */
    long min, max;     /* TS_SECONDS bounds */
} ts_directive_t;

/* DESIGN.md "Where tokens are checked against".  URL fields are const char *
 * checked with dpop_fetch_url_check (https, or http to loopback); FILE
 * fields an existing readable regular file (ServerRoot-relative); SECONDS
 * and FORMAT ints starting DPOP_UNSET. */
static const ts_directive_t ts_table[] = {
    {"DPoPTokenMetadata", TS_URL, offsetof(dpop_dir_conf_t, metadata_url), 0, 0},
    {"DPoPTokenFormat", TS_FORMAT, offsetof(dpop_dir_conf_t, format), 0, 0},
    {"DPoPTokenIntrospection", TS_URL, offsetof(dpop_dir_conf_t, introspection_url), 0, 0},
    {"DPoPTokenIntrospectionCache", TS_SECONDS, offsetof(dpop_dir_conf_t, introspection_cache), 0,
     86400},
    {"DPoPTokenRefresh", TS_SECONDS, offsetof(dpop_dir_conf_t, refresh), 60, 86400},
    {"DPoPTokenCAFile", TS_FILE, offsetof(dpop_dir_conf_t, ca_file), 0, 0},
};
#define TS_COUNT (sizeof(ts_table) / sizeof(ts_table[0]))

static void merge_token_sources(dpop_dir_conf_t *c, const dpop_dir_conf_t *base,
                                const dpop_dir_conf_t *add)
{
    apr_size_t i;
    for (i = 0; i < TS_COUNT; i++) {
        apr_size_t off = ts_table[i].offset;
        if (ts_table[i].kind == TS_SECONDS || ts_table[i].kind == TS_FORMAT) {
            int v = *(const int *)((const char *)add + off);
            *(int *)((char *)c + off) =
                v != DPOP_UNSET ? v : *(const int *)((const char *)base + off);
        }
        else {
            const char *v = *(const char *const *)((const char *)add + off);
            *(const char **)((char *)c + off) =
                v ? v : *(const char *const *)((const char *)base + off);
        }
    }
    MERGE_PTR(iauth);
}

/* Where a token-source directive was written: check_config verifies that
 * every DPoPTokenFormat opaque|any can reach an introspection endpoint. */
typedef struct {
    server_rec *s;
    const char *path; /* <Directory>/<Location> path, NULL at server level */
    const dpop_dir_conf_t *c;
} ts_site_t;

static void remember_site(cmd_parms *cmd, const dpop_dir_conf_t *c)
{
    apr_array_header_t *sites = NULL;
    ts_site_t *site;
    apr_pool_userdata_get((void **)&sites, SOURCE_SITES_KEY, cmd->pool);
    if (!sites) {
        sites = apr_array_make(cmd->pool, 4, sizeof(ts_site_t));
        apr_pool_userdata_set(sites, SOURCE_SITES_KEY, apr_pool_cleanup_null, cmd->pool);
    }
    site = apr_array_push(sites);
    site->s = cmd->server;
    site->path = cmd->path;
    site->c = c;
}

/* A readable regular file, relative to ServerRoot. */
static const char *check_file(cmd_parms *cmd, const char *arg, const char **path)
{
    apr_finfo_t fi;
    apr_file_t *f = NULL;
    apr_status_t rv;
    if (!(*path = ap_server_root_relative(cmd->pool, arg)))
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    rv = apr_stat(&fi, *path, APR_FINFO_TYPE, cmd->temp_pool);
    if (rv != APR_SUCCESS || fi.filetype != APR_REG)
        return apr_psprintf(cmd->pool, "%s: %s is not a readable regular file", cmd->cmd->name,
                            *path);
    if ((rv = apr_file_open(&f, *path, APR_FOPEN_READ, 0, cmd->temp_pool)) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "%s: cannot read %s", cmd->cmd->name, *path);
    apr_file_close(f);
    return NULL;
}

/* Read a small file (at most max bytes) into *buf (pool p; the caller
 * wipes it when it held a secret). */
static apr_status_t read_small_file(apr_pool_t *p, const char *path, apr_size_t max, char **buf,
                                    apr_size_t *len)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    apr_status_t rv;
    *buf = NULL;
    *len = 0;
    if ((rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p)) != APR_SUCCESS)
        return rv;
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv == APR_SUCCESS && (fi.size < 0 || (apr_size_t)fi.size > max))
        rv = APR_EGENERAL;
    if (rv == APR_SUCCESS) {
        *buf = apr_palloc(p, (apr_size_t)fi.size + 1);
        rv = apr_file_read_full(f, *buf, (apr_size_t)fi.size, len);
        if (rv == APR_EOF)
            rv = APR_SUCCESS;
        (*buf)[*len] = '\0';
    }
    apr_file_close(f);
    return rv;
}

static const char *set_token_source(cmd_parms *cmd, void *mconfig, const char *arg)
{
    const ts_directive_t *d = cmd->info;
    char *field = (char *)mconfig + d->offset;
    char err[256] = "";
    const char *path = NULL, *msg;
    int v = 0;
    switch (d->kind) {
    case TS_URL:
        if (dpop_fetch_url_check(arg, err, sizeof(err)) != 0)
            return apr_psprintf(cmd->pool, "%s: %s", d->name, err);
        *(const char **)field = arg;
        break;
    case TS_FILE:
        if ((msg = check_file(cmd, arg, &path)))
            return msg;
        *(const char **)field = path;
        break;
    case TS_SECONDS:
        if ((msg = parse_int(cmd, arg, d->min, d->max, &v)))
            return msg;
        *(int *)field = v;
        break;
    case TS_FORMAT:
        if (!strcasecmp(arg, "jwt"))
            v = DPOP_FORMAT_JWT;
        else if (!strcasecmp(arg, "opaque"))
            v = DPOP_FORMAT_OPAQUE;
        else if (!strcasecmp(arg, "any"))
            v = DPOP_FORMAT_ANY;
        else
            return apr_psprintf(cmd->pool, "%s: '%s' is not jwt, opaque or any", d->name, arg);
        *(int *)field = v;
        break;
    }
    remember_site(cmd, mconfig);
    return NULL;
}

static apr_status_t iauth_cleanup(void *data)
{
    dpop_iauth_t *a = data;
    if (a->secret)
        OPENSSL_cleanse((void *)a->secret, strlen(a->secret));
    EVP_PKEY_free(a->key);
    a->key = NULL;
    return APR_SUCCESS;
}

/* DPoPTokenIntrospectionAuth client_secret_basic CLIENT_ID SECRET_FILE |
 * private_key_jwt CLIENT_ID KEY_FILE | none.  The file is read now, as
 * root, so it may be readable by root only. */
static const char *set_introspection_auth(cmd_parms *cmd, void *mconfig, const char *kind,
                                          const char *client_id, const char *file)
{
    dpop_dir_conf_t *c = mconfig;
    dpop_iauth_t *a = apr_pcalloc(cmd->pool, sizeof(*a));
    const char *path = NULL, *msg;
    char *buf = NULL;
    apr_size_t len = 0;
    apr_status_t rv;
    if (!strcasecmp(kind, "none")) {
        if (client_id)
            return "DPoPTokenIntrospectionAuth: 'none' takes no further argument";
        a->kind = DPOP_IAUTH_NONE;
        c->iauth = a;
        return NULL;
    }
    if (!strcasecmp(kind, "client_secret_basic"))
        a->kind = DPOP_IAUTH_CLIENT_SECRET_BASIC;
    else if (!strcasecmp(kind, "private_key_jwt"))
        a->kind = DPOP_IAUTH_PRIVATE_KEY_JWT;
    else
        return apr_psprintf(cmd->pool,
                            "DPoPTokenIntrospectionAuth: '%s' is not client_secret_basic, "
                            "private_key_jwt or none",
                            kind);
    if (!client_id || !file || !*client_id)
        return apr_psprintf(cmd->pool, "DPoPTokenIntrospectionAuth %s needs CLIENT_ID and %s", kind,
                            a->kind == DPOP_IAUTH_PRIVATE_KEY_JWT ? "KEY_FILE" : "SECRET_FILE");
    if ((msg = check_file(cmd, file, &path)))
        return msg;
    rv = read_small_file(cmd->temp_pool, path, 64 * 1024, &buf, &len);
    if (rv != APR_SUCCESS)
        return apr_psprintf(cmd->pool,
                            "DPoPTokenIntrospectionAuth: cannot read %s (at most 64 KiB)", path);
    a->client_id = client_id;
    a->file = path;
    apr_pool_cleanup_register(cmd->pool, a, iauth_cleanup, apr_pool_cleanup_null);
    if (a->kind == DPOP_IAUTH_CLIENT_SECRET_BASIC) {
        /* The secret is the file's first line (a trailing newline is not
         * part of it). */
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        if (len == 0 || memchr(buf, '\n', len) || memchr(buf, '\0', len)) {
            OPENSSL_cleanse(buf, len);
            return apr_psprintf(cmd->pool,
                                "DPoPTokenIntrospectionAuth: %s must hold the client secret on "
                                "one non-empty line",
                                path);
        }
        a->secret = apr_pstrmemdup(cmd->pool, buf, len);
        OPENSSL_cleanse(buf, len);
    }
    else {
        json_t *jwk, *pub = NULL;
        char jerr[256] = "";
        const char *kid = NULL;
        jwk = dpop_json_parse_object(buf, len, jerr, sizeof(jerr));
        OPENSSL_cleanse(buf, len);
        if (!jwk)
            return apr_psprintf(cmd->pool, "DPoPTokenIntrospectionAuth: %s: not a JSON JWK (%s)",
                                path, jerr);
        a->key_alg = dpop_jwk_private_alg(jwk);
        if (dpop_json_get_string(jwk, "kid", &kid) == 1)
            a->key_kid = apr_pstrdup(cmd->pool, kid);
        if (a->key_alg == DPOP_ALG_INVALID ||
            dpop_jwk_import_private(jwk, &a->key, &pub, jerr, sizeof(jerr)) != DPOP_OK) {
            json_decref(jwk);
            return apr_psprintf(cmd->pool,
                                "DPoPTokenIntrospectionAuth: %s: not a usable private JWK (%s)",
                                path, jerr[0] ? jerr : "no algorithm fits the key");
        }
        json_decref(pub);
        json_decref(jwk);
    }
    c->iauth = a;
    return NULL;
}

/* DPoPTokenIssuer / DPoPTokenAudience: a non-empty string stored at the
 * field offset given in the directive table (cmd->info). */
static const char *set_nonempty_string(cmd_parms *cmd, void *mconfig, const char *arg)
{
    if (!arg[0])
        return apr_psprintf(cmd->pool, "%s: empty value", cmd->cmd->name);
    *(const char **)((char *)mconfig + (apr_size_t)cmd->info) = arg;
    return NULL;
}

static const char *set_algorithms(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_dir_conf_t *c = mconfig;
    dpop_alg_mask_t mask = 0;
    char err[256] = "";
    if (dpop_alg_mask_parse(arg, &mask, err, sizeof(err)) != 0 || !mask)
        return apr_psprintf(cmd->pool, "DPoPAlgorithms: %s", err[0] ? err : "invalid list");
    c->algs = mask;
    c->algs_attr = format_algs_attr(cmd->pool, mask);
    return NULL;
}

static const char *set_proof_lifetime(cmd_parms *cmd, void *mconfig, const char *arg)
{
    return parse_int(cmd, arg, 1, DPOP_MAX_LIFETIME, &((dpop_dir_conf_t *)mconfig)->proof_lifetime);
}

static const char *set_clock_skew(cmd_parms *cmd, void *mconfig, const char *arg)
{
    return parse_int(cmd, arg, 0, DPOP_MAX_SKEW, &((dpop_dir_conf_t *)mconfig)->clock_skew);
}

static const char *set_max_proof_size(cmd_parms *cmd, void *mconfig, const char *arg)
{
    /* A proof with an RSA-4096 jwk is ~2.5 KB; 64 KB is the JSON cap. */
    return parse_int(cmd, arg, 256, 65536, &((dpop_dir_conf_t *)mconfig)->max_proof_size);
}

static const char *set_nonce_lifetime(cmd_parms *cmd, void *mconfig, const char *arg)
{
    return parse_int(cmd, arg, 10, DPOP_MAX_LIFETIME,
                     &((dpop_dir_conf_t *)mconfig)->nonce_lifetime);
}

/* DPoPExternalURL https://api.example.com[:port][/prefix]: the base the
 * client used, so htu (RFC 9449 §4.3 (9)) is built from it and never from
 * client-supplied X-Forwarded-* headers. */
static const char *set_external_url(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_dir_conf_t *c = mconfig;
    apr_uri_t u;
    char *norm;
    apr_size_t n;
    if (apr_uri_parse(cmd->temp_pool, arg, &u) != APR_SUCCESS || !u.scheme || !u.hostname)
        return apr_psprintf(cmd->pool, "DPoPExternalURL: '%s' is not an absolute URL", arg);
    if (strcasecmp(u.scheme, "https") && strcasecmp(u.scheme, "http"))
        return apr_psprintf(cmd->pool, "DPoPExternalURL: '%s' must be http:// or https://", arg);
    if (u.query || u.fragment || u.user || u.password || strchr(arg, '?') || strchr(arg, '#'))
        return apr_psprintf(
            cmd->pool, "DPoPExternalURL: '%s' must not carry a query, fragment or userinfo", arg);
    n = strlen(arg) + 2;
    norm = apr_palloc(cmd->pool, n);
    if (dpop_htu_normalize(arg, norm, n) != 0)
        return apr_psprintf(cmd->pool, "DPoPExternalURL: '%s' is not a valid URL", arg);
    /* Normalization turns an empty path into "/"; the request path is
     * appended, so drop trailing slashes of the prefix. */
    n = strlen(norm);
    while (n > 0 && norm[n - 1] == '/')
        norm[--n] = '\0';
    c->external_url = norm;
    return NULL;
}

static const char *set_nonce(cmd_parms *cmd, void *mconfig, int on)
{
    dpop_dir_conf_t *c = mconfig;
    c->nonce = on ? 1 : 0;
    if (on) {
        /* Remember where nonces are required: check_config verifies that
         * this server (or the main server) has a DPoPNonceSecret. */
        apr_array_header_t *servers = NULL;
        apr_pool_userdata_get((void **)&servers, NONCE_SERVERS_KEY, cmd->pool);
        if (!servers) {
            servers = apr_array_make(cmd->pool, 4, sizeof(server_rec *));
            apr_pool_userdata_set(servers, NONCE_SERVERS_KEY, apr_pool_cleanup_null, cmd->pool);
        }
        *(server_rec **)apr_array_push(servers) = cmd->server;
    }
    return NULL;
}

static const char *set_mode(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_dir_conf_t *c = mconfig;
    if (!strcasecmp(arg, "enforce"))
        c->mode = DPOP_MODE_ENFORCE;
    else if (!strcasecmp(arg, "report-only"))
        c->mode = DPOP_MODE_REPORT_ONLY;
    else
        return apr_psprintf(cmd->pool, "DPoPMode: '%s' is not 'enforce' or 'report-only'", arg);
    return NULL;
}

static const char *set_allow_bearer(cmd_parms *cmd, void *mconfig, int on)
{
    ((dpop_dir_conf_t *)mconfig)->allow_bearer = on ? 1 : 0;
    return NULL;
}

/* ---- server-scoped directives ------------------------------------------ */

static const char *set_replay_cache(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_srv_conf_t *s = dpop_srv_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
    if (err)
        return err;
    err = validators->replay_configure(cmd->pool, cmd->temp_pool, arg, &s->replay);
    if (err)
        return apr_psprintf(cmd->pool, "DPoPReplayCache %s: %s", arg, err);
    s->replay_spec = arg;
    return NULL;
}

/* DPoPReplayTimeout ms: the longest wait for one round trip to memcached
 * or Redis (connect, send, answer); a slower store is a cache error and the
 * request fails closed (503) instead of holding a worker. */
static const char *set_replay_timeout(cmd_parms *cmd, void *mconfig, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
    if (err)
        return err;
    return parse_int(cmd, arg, DPOP_MIN_REPLAY_TIMEOUT_MS, DPOP_MAX_REPLAY_TIMEOUT_MS,
                     &dpop_srv_conf(cmd->server)->replay_timeout_ms);
}

/* The common start of a server-scoped directive naming a file or
 * directory: context check, then the path relative to ServerRoot. */
static const char *server_path(cmd_parms *cmd, const char *arg, const char **path)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
    if (err)
        return err;
    *path = ap_server_root_relative(cmd->pool, arg);
    if (!*path)
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    return NULL;
}

static const char *set_policy_file(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_srv_conf_t *s = dpop_srv_conf(cmd->server);
    const char *path = NULL, *err = server_path(cmd, arg, &path);
    if (err)
        return err;
    err = validators->policy_validate(cmd->temp_pool, path);
    if (err)
        return apr_psprintf(cmd->pool, "DPoPPolicyFile %s", err);
    s->policy_file = path;
    return NULL;
}

static const char *set_audit_log(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_srv_conf_t *s = dpop_srv_conf(cmd->server);
    const char *path = NULL, *err = server_path(cmd, arg, &path);
    if (err)
        return err;
    err = validators->audit_validate(cmd->temp_pool, path);
    if (err)
        return apr_psprintf(cmd->pool, "DPoPAuditLog %s: %s", path, err);
    s->audit_dir = path;
    return NULL;
}

static const char *set_audit_mapsize(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_srv_conf_t *s = dpop_srv_conf(cmd->server);
    char *end = NULL;
    apr_int64_t v, mult = 1;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
    if (err)
        return err;
    if (!apr_isdigit(arg[0]))
        return apr_psprintf(cmd->pool, "DPoPAuditMapSize: '%s' is not a size", arg);
    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (errno)
        return apr_psprintf(cmd->pool, "DPoPAuditMapSize: '%s' is not a size", arg);
    if (*end == 'K' || *end == 'k')
        mult = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mult = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mult = 1024 * 1024 * 1024, end++;
    if (*end)
        return apr_psprintf(cmd->pool, "DPoPAuditMapSize: '%s' is not a size (bytes, or K/M/G)",
                            arg);
    if (v <= 0 || v > ((apr_int64_t)1 << 40) / mult)
        return apr_psprintf(cmd->pool, "DPoPAuditMapSize: %s is out of range (1M..1T)", arg);
    v *= mult;
    if (v < 1024 * 1024)
        return apr_psprintf(cmd->pool, "DPoPAuditMapSize: %s is too small (minimum 1M)", arg);
    s->audit_mapsize = v;
    return NULL;
}

static const char *set_nonce_secret(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dpop_srv_conf_t *s = dpop_srv_conf(cmd->server);
    unsigned char *secret = NULL;
    size_t len = 0;
    char err[256] = "";
    secret_hold_t *hold;
    const char *path = NULL, *cerr = server_path(cmd, arg, &path);
    if (cerr)
        return cerr;
    /* Read now, as root: the file may (should) be readable by root only. */
    if (dpop_nonce_secret_load(path, &secret, &len, err, sizeof(err)) != 0 || !secret)
        return apr_psprintf(cmd->pool, "DPoPNonceSecret %s: %s", path,
                            err[0] ? err : "cannot read the secret");
    hold = apr_pcalloc(cmd->pool, sizeof(*hold));
    hold->buf = secret;
    hold->len = len;
    apr_pool_cleanup_register(cmd->pool, hold, secret_cleanup, apr_pool_cleanup_null);
    s->nonce_secret = secret;
    s->nonce_secret_len = len;
    s->nonce_secret_file = path;
    return NULL;
}

/* ---- cross-directive checks -------------------------------------------- */

/* 1 when site b (the same server or the main server, at server level or
 * an enclosing path) configures an introspection endpoint or metadata. */
static int site_covers(const ts_site_t *b, const ts_site_t *a, server_rec *main_s)
{
    if (!b->c->introspection_url && !b->c->metadata_url)
        return 0;
    if (b->s != a->s && b->s != main_s)
        return 0;
    if (!b->path)
        return 1;
    return a->path && !strncmp(a->path, b->path, strlen(b->path));
}

/* DPoPTokenFormat opaque|any without an introspection endpoint or metadata
 * to find one (here or in an enclosing scope) stops `apache2 -t`. */
static int check_token_formats(apr_pool_t *pconf, server_rec *main_s)
{
    apr_array_header_t *sites = NULL;
    int i, j;
    apr_pool_userdata_get((void **)&sites, SOURCE_SITES_KEY, pconf);
    if (!sites)
        return OK;
    for (i = 0; i < sites->nelts; i++) {
        const ts_site_t *a = &APR_ARRAY_IDX(sites, i, ts_site_t);
        int ok = 0;
        if (a->c->format != DPOP_FORMAT_OPAQUE && a->c->format != DPOP_FORMAT_ANY)
            continue;
        for (j = 0; j < sites->nelts && !ok; j++)
            ok = site_covers(&APR_ARRAY_IDX(sites, j, ts_site_t), a, main_s);
        if (!ok) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, a->s,
                         "mod_dpop: DPoPTokenFormat %s (in %s) needs DPoPTokenIntrospection or "
                         "DPoPTokenMetadata (an introspection endpoint to check opaque tokens "
                         "against)",
                         a->c->format == DPOP_FORMAT_OPAQUE ? "opaque" : "any",
                         a->path ? a->path : "the server config");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* A server as an administrator wrote it: "the main server config" or "the
 * <VirtualHost *:443> of api.example.com (site.conf:3)", never the
 * internal "127.0.0.1:0" of an unset port. */
static const char *server_in_words(apr_pool_t *p, server_rec *vs)
{
    const char *name = vs->server_hostname ? vs->server_hostname : "(no ServerName)";
    const char *where =
        vs->defn_name ? apr_psprintf(p, " (%s:%u)", vs->defn_name, (unsigned)vs->defn_line_number)
                      : "";
    server_addr_rec *a = vs->addrs;
    if (!vs->is_virtual)
        return apr_psprintf(p, "the main server config (ServerName %s)", name);
    if (a && a->virthost)
        return apr_psprintf(p, "the <VirtualHost %s%s> of %s%s", a->virthost,
                            a->host_port ? apr_psprintf(p, ":%u", (unsigned)a->host_port) : ":*",
                            name, where);
    return apr_psprintf(p, "the virtual host %s%s", name, where);
}

int dpop_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *servers = NULL;
    int i;
    if (check_token_formats(pconf, s) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    apr_pool_userdata_get((void **)&servers, NONCE_SERVERS_KEY, pconf);
    if (!servers)
        return OK;
    for (i = 0; i < servers->nelts; i++) {
        server_rec *vs = APR_ARRAY_IDX(servers, i, server_rec *);
        if (!dpop_srv_conf(vs)->nonce_secret && !dpop_srv_conf(s)->nonce_secret) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, vs,
                         "mod_dpop: DPoPNonce On is set in %s, but no DPoPNonceSecret is set "
                         "%s: set DPoPNonceSecret to a file of 32 or more random bytes",
                         server_in_words(ptemp, vs),
                         vs->is_virtual ? "there or in the main server config" : "there");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* ---- the table --------------------------------------------------------- */

#define DIR_OR_SRV (RSRC_CONF | ACCESS_CONF)

const command_rec dpop_cmds[] = {
    AP_INIT_TAKE1("DPoPTokenJWKS", set_token_jwks, NULL, DIR_OR_SRV,
                  "JWK Set file or https URL of the authorization server's token signing keys"),
    AP_INIT_TAKE1("DPoPTokenMetadata", set_token_source, (void *)&ts_table[0], DIR_OR_SRV,
                  "RFC 8414 / OpenID discovery URL of the authorization server"),
    AP_INIT_TAKE1("DPoPTokenFormat", set_token_source, (void *)&ts_table[1], DIR_OR_SRV,
                  "jwt (default), opaque (introspected) or any"),
    AP_INIT_TAKE1("DPoPTokenIntrospection", set_token_source, (void *)&ts_table[2], DIR_OR_SRV,
                  "RFC 7662 introspection endpoint (default: the metadata's)"),
    AP_INIT_TAKE1("DPoPTokenIntrospectionCache", set_token_source, (void *)&ts_table[3], DIR_OR_SRV,
                  "seconds an active introspection result is reused (default 60)"),
    AP_INIT_TAKE1("DPoPTokenRefresh", set_token_source, (void *)&ts_table[4], DIR_OR_SRV,
                  "seconds fetched metadata and JWKS are kept at most (default 3600)"),
    AP_INIT_TAKE1("DPoPTokenCAFile", set_token_source, (void *)&ts_table[5], DIR_OR_SRV,
                  "PEM trust anchors for the authorization server (default: system store)"),
    AP_INIT_TAKE13("DPoPTokenIntrospectionAuth", set_introspection_auth, NULL, DIR_OR_SRV,
                   "client_secret_basic CLIENT_ID SECRET_FILE | private_key_jwt CLIENT_ID "
                   "KEY_FILE | none"),
    AP_INIT_TAKE1("DPoPTokenIssuer", set_nonempty_string, (void *)offsetof(dpop_dir_conf_t, issuer),
                  DIR_OR_SRV, "required 'iss' of access tokens"),
    AP_INIT_TAKE1("DPoPTokenAudience", set_nonempty_string,
                  (void *)offsetof(dpop_dir_conf_t, audience), DIR_OR_SRV,
                  "required 'aud' of access tokens"),
    AP_INIT_RAW_ARGS("DPoPAlgorithms", set_algorithms, NULL, DIR_OR_SRV,
                     "allowed DPoP proof algorithms (e.g. ES256 EdDSA)"),
    AP_INIT_TAKE1("DPoPProofLifetime", set_proof_lifetime, NULL, DIR_OR_SRV,
                  "seconds a proof is acceptable after its iat (default 300)"),
    AP_INIT_TAKE1("DPoPClockSkew", set_clock_skew, NULL, DIR_OR_SRV,
                  "tolerated clock difference in seconds (default 5)"),
    AP_INIT_TAKE1("DPoPMaxProofSize", set_max_proof_size, NULL, DIR_OR_SRV,
                  "maximum DPoP header size in bytes (default 8192)"),
    AP_INIT_TAKE1("DPoPExternalURL", set_external_url, NULL, DIR_OR_SRV,
                  "public base URL (scheme://host[:port][/prefix]) used to build htu"),
    AP_INIT_FLAG("DPoPNonce", set_nonce, NULL, DIR_OR_SRV,
                 "require server-provided nonces in proofs (default Off)"),
    AP_INIT_TAKE1("DPoPNonceLifetime", set_nonce_lifetime, NULL, DIR_OR_SRV,
                  "seconds per nonce time bucket (default 300)"),
    AP_INIT_TAKE1("DPoPMode", set_mode, NULL, DIR_OR_SRV, "enforce (default) or report-only"),
    AP_INIT_FLAG("DPoPAllowBearer", set_allow_bearer, NULL, DIR_OR_SRV,
                 "accept unbound Bearer tokens during migration (default Off)"),
    AP_INIT_TAKE1("DPoPReplayCache", set_replay_cache, NULL, RSRC_CONF,
                  "shmcb:/path(bytes), memcache:host:port[,host:port...] or "
                  "redis:host:port[,host:port...]"),
    AP_INIT_TAKE1("DPoPReplayTimeout", set_replay_timeout, NULL, RSRC_CONF,
                  "ms per round trip to memcached or Redis (10..10000, default 250)"),
    AP_INIT_TAKE1("DPoPPolicyFile", set_policy_file, NULL, RSRC_CONF,
                  "YAML key-to-route policy for 'Require dpop-policy'"),
    AP_INIT_TAKE1("DPoPAuditLog", set_audit_log, NULL, RSRC_CONF,
                  "LMDB audit store directory for binding failures"),
    AP_INIT_TAKE1("DPoPAuditMapSize", set_audit_mapsize, NULL, RSRC_CONF,
                  "LMDB map size of the audit store (bytes, K/M/G; default 1G)"),
    AP_INIT_TAKE1("DPoPNonceSecret", set_nonce_secret, NULL, RSRC_CONF,
                  "file with the nonce HMAC secret (>= 32 bytes, shared by a cluster)"),
    {NULL, {NULL}, NULL, 0, 0, NULL}};
