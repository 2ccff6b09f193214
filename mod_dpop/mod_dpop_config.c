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

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "dpop_htu.h"
#include "dpop_nonce.h"

APLOG_USE_MODULE(dpop);

#define NONCE_SERVERS_KEY "mod_dpop-nonce-servers"

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
    return c;
}

#define MERGE_INT(f) c->f = (add->f != DPOP_UNSET) ? add->f : base->f
#define MERGE_PTR(f) c->f = (add->f != NULL) ? add->f : base->f

void *dpop_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const dpop_dir_conf_t *base = basev, *add = addv;
    dpop_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    /* Fields that travel together come from the same level. */
    const dpop_dir_conf_t *jw = add->jwks ? add : base;
    const dpop_dir_conf_t *al = add->algs ? add : base;
    c->jwks = jw->jwks;
    c->jwks_file = jw->jwks_file;
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
apr_size_t dpop_conf_audit_mapsize(const dpop_srv_conf_t *s)
{
    return (apr_size_t)(s->audit_mapsize == DPOP_UNSET ? DPOP_DEFAULT_AUDIT_MAPSIZE
                                                       : s->audit_mapsize);
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
    const char *path = ap_server_root_relative(cmd->pool, arg);
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
                  "JWK Set file of the authorization server's token signing keys"),
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
                  "shmcb:/path(bytes) or memcache:host:port[,host:port...]"),
    AP_INIT_TAKE1("DPoPPolicyFile", set_policy_file, NULL, RSRC_CONF,
                  "YAML key-to-route policy for 'Require dpop-policy'"),
    AP_INIT_TAKE1("DPoPAuditLog", set_audit_log, NULL, RSRC_CONF,
                  "LMDB audit store directory for binding failures"),
    AP_INIT_TAKE1("DPoPAuditMapSize", set_audit_mapsize, NULL, RSRC_CONF,
                  "LMDB map size of the audit store (bytes, K/M/G; default 1G)"),
    AP_INIT_TAKE1("DPoPNonceSecret", set_nonce_secret, NULL, RSRC_CONF,
                  "file with the nonce HMAC secret (>= 32 bytes, shared by a cluster)"),
    {NULL, {NULL}, NULL, 0, 0, NULL}};
