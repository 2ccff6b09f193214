/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_config.h: mod_dpop's configuration records (Apache glue only).
 *
 * Server-scoped settings (replay cache, policy file, audit store, nonce
 * secret) live in dpop_srv_conf_t; everything else is per-directory in
 * dpop_dir_conf_t, where every field starts DPOP_UNSET (or NULL) and the
 * merge takes the inner value when set, so <Location> nesting behaves as
 * administrators expect.  Defaults are applied by the accessors below, at
 * read time, never stored by the merge.
 *
 * This file is the bottom of the glue: every other glue file reads these
 * records, and mod_dpop_config.c calls none of them.  The three
 * server-scoped directives whose objects belong to other glue files
 * (DPoPReplayCache, DPoPPolicyFile, DPoPAuditLog) are checked through
 * validators that mod_dpop.c, the module record, registers.
 *
 * Must never: keep a copy of a token or proof, or print the nonce secret.
 */
#ifndef DPOP_CONFIG_H
#define DPOP_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

#include <openssl/evp.h>

#include "dpop_alg.h"
#include "dpop_jwks.h"

#define DPOP_UNSET (-1)

/* Documented defaults (docs/module.md). */
#define DPOP_DEFAULT_PROOF_LIFETIME 300 /* s, RFC 9449 §11.1 suggests "a few minutes" */
#define DPOP_DEFAULT_CLOCK_SKEW 5       /* s */
#define DPOP_DEFAULT_MAX_PROOF 8192     /* bytes */
#define DPOP_DEFAULT_NONCE_LIFETIME 300 /* s */
#define DPOP_DEFAULT_AUDIT_MAPSIZE ((apr_int64_t)1 << 30) /* 1 GiB */
#define DPOP_MAX_LIFETIME 86400
#define DPOP_MAX_SKEW 3600
/* DPoPReplayTimeout: ms per round trip to a network replay store. */
#define DPOP_DEFAULT_REPLAY_TIMEOUT_MS 250
#define DPOP_MIN_REPLAY_TIMEOUT_MS 10
#define DPOP_MAX_REPLAY_TIMEOUT_MS 10000

extern module AP_MODULE_DECLARE_DATA dpop_module;

typedef enum { DPOP_MODE_ENFORCE = 0, DPOP_MODE_REPORT_ONLY = 1 } dpop_mode_t;

/* DPoPTokenFormat (default jwt) */
typedef enum { DPOP_FORMAT_JWT = 0, DPOP_FORMAT_OPAQUE = 1, DPOP_FORMAT_ANY = 2 } dpop_format_t;

/* DPoPTokenIntrospectionAuth: how the resource server authenticates to the
 * introspection endpoint (RFC 7662 §2.1).  Loaded when the directive is
 * read (the secret or key file may be readable by root only); the secret is
 * wiped and the key freed with the config pool. */
typedef enum {
    DPOP_IAUTH_NONE = 0,
    DPOP_IAUTH_CLIENT_SECRET_BASIC = 1,
    DPOP_IAUTH_PRIVATE_KEY_JWT = 2
} dpop_iauth_kind_t;

typedef struct {
    dpop_iauth_kind_t kind;
    const char *client_id;
    const char *file;   /* SECRET_FILE or KEY_FILE, for messages */
    const char *secret; /* client_secret_basic, NUL-terminated */
    EVP_PKEY *key;      /* private_key_jwt */
    dpop_alg_t key_alg;
    const char *key_kid; /* the JWK's kid, NULL when it has none */
} dpop_iauth_t;

#define DPOP_DEFAULT_INTROSPECTION_CACHE 60 /* s */
#define DPOP_DEFAULT_REFRESH 3600           /* s */

struct dpop_replay;      /* mod_dpop_replay.h */
struct dpop_policy_glue; /* mod_dpop_authz.c */
struct dpop_audit_glue;  /* mod_dpop_audit.c */

typedef struct {
    /* DPoPReplayCache: the spec as written and the parsed cache (shared by
     * every vhost that inherits it). */
    const char *replay_spec;
    struct dpop_replay *replay;
    /* DPoPReplayTimeout (ms); DPOP_UNSET -> default.  A property of the
     * store's connections: read with the store's own server (see
     * dpop_conf_replay_timeout_ms). */
    int replay_timeout_ms;
    /* DPoPPolicyFile: absolute path; validated at config time. */
    const char *policy_file;
    struct dpop_policy_glue *policy;
    /* DPoPAuditLog / DPoPAuditMapSize */
    const char *audit_dir;
    apr_int64_t audit_mapsize; /* DPOP_UNSET -> default */
    struct dpop_audit_glue *audit;
    /* DPoPNonceSecret: loaded when the directive is read (so the file can be
     * readable by root only); wiped when the config pool goes away. */
    const char *nonce_secret_file;
    const unsigned char *nonce_secret;
    apr_size_t nonce_secret_len;
} dpop_srv_conf_t;

/* Every field of dpop_dir_conf_t that changes how a request is verified
 * must also be fed to dpop_conf_fingerprint() (mod_dpop_config.c): an
 * internal redirect or subrequest reuses an authentication only when the
 * fingerprints are equal. */
typedef struct {
    const char *jwks_file;
    const dpop_jwks_t *jwks; /* DPoPTokenJWKS FILE, loaded at config time */
    const char *jwks_url;    /* DPoPTokenJWKS URL (mod_dpop_keyset.c fetches it) */
    /* Token sources (DESIGN.md "Where tokens are checked against"); all
     * described by one table in mod_dpop_config.c. */
    const char *metadata_url;      /* DPoPTokenMetadata */
    int format;                    /* DPoPTokenFormat (dpop_format_t) */
    const char *introspection_url; /* DPoPTokenIntrospection */
    const dpop_iauth_t *iauth;     /* DPoPTokenIntrospectionAuth; NULL = none */
    int introspection_cache;       /* DPoPTokenIntrospectionCache, s */
    int refresh;                   /* DPoPTokenRefresh, s */
    const char *ca_file;           /* DPoPTokenCAFile */
    const char *issuer;            /* DPoPTokenIssuer */
    const char *audience;          /* DPoPTokenAudience */
    dpop_alg_mask_t algs;          /* DPoPAlgorithms; 0 = unset */
    const char *algs_attr;         /* algs (or the default) as the challenge attribute */
    int proof_lifetime;            /* DPoPProofLifetime */
    int clock_skew;                /* DPoPClockSkew */
    int max_proof_size;            /* DPoPMaxProofSize */
    const char *external_url;      /* DPoPExternalURL, normalized, no trailing '/' */
    int nonce;                     /* DPoPNonce On|Off */
    int nonce_lifetime;            /* DPoPNonceLifetime */
    int mode;                      /* DPoPMode */
    int allow_bearer;              /* DPoPAllowBearer */
} dpop_dir_conf_t;

extern const command_rec dpop_cmds[];

/* Config-time validators of the directives whose objects other glue files
 * own.  Each answers NULL when the value is usable, else a message for
 * `apache2 -t`. */
typedef struct {
    /* DPoPReplayCache: parse the spec into *out (objects in p). */
    const char *(*replay_configure)(apr_pool_t *p, apr_pool_t *ptemp, const char *spec,
                                    struct dpop_replay **out);
    /* DPoPPolicyFile: "file:line:col: msg; ..." when the file is refused. */
    const char *(*policy_validate)(apr_pool_t *p, const char *path);
    /* DPoPAuditLog: the store directory. */
    const char *(*audit_validate)(apr_pool_t *p, const char *dir);
} dpop_config_validators_t;

/* Called by mod_dpop.c when the module is loaded (register_hooks), which
 * is before any of its directives is read; v must outlive the process. */
void dpop_config_set_validators(const dpop_config_validators_t *v);

void *dpop_create_dir_conf(apr_pool_t *p, char *dir);
void *dpop_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
void *dpop_create_srv_conf(apr_pool_t *p, server_rec *s);
void *dpop_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);

/* check_config: cross-directive checks (DPoPNonce On needs a secret...). */
int dpop_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);

dpop_srv_conf_t *dpop_srv_conf(const server_rec *s);
dpop_dir_conf_t *dpop_dir_conf(const request_rec *r);

/* Accessors applying the defaults. */
int dpop_conf_lifetime(const dpop_dir_conf_t *c);
int dpop_conf_skew(const dpop_dir_conf_t *c);
int dpop_conf_max_proof(const dpop_dir_conf_t *c);
int dpop_conf_nonce_on(const dpop_dir_conf_t *c);
int dpop_conf_nonce_lifetime(const dpop_dir_conf_t *c);
int dpop_conf_report_only(const dpop_dir_conf_t *c);
int dpop_conf_allow_bearer(const dpop_dir_conf_t *c);
dpop_alg_mask_t dpop_conf_algs(const dpop_dir_conf_t *c);
/* dpop_conf_algs() as the space-separated list of the challenge's algs
 * attribute (RFC 9449 §7.1), formatted once at config time. */
const char *dpop_conf_algs_attr(const dpop_dir_conf_t *c);
apr_size_t dpop_conf_audit_mapsize(const dpop_srv_conf_t *s);
int dpop_conf_replay_timeout_ms(const dpop_srv_conf_t *s);

#define DPOP_CONF_FP_LEN 32
/* SHA-256 over everything that decides whether a request authenticates
 * under c (with defaults applied: an explicit default equals an unset
 * value) and the server's replay store and nonce secret: token key set
 * and token sources (JWKS URL, metadata, format, introspection endpoint and
 * its client authentication, CA file), issuer, audience, algorithms, proof lifetime, skew, size,
 * external URL, nonce, mode, Bearer.  DPOP_OK, or DPOP_ERR when hashing fails. */
int dpop_conf_fingerprint(const dpop_dir_conf_t *c, const dpop_srv_conf_t *sc,
                          unsigned char out[DPOP_CONF_FP_LEN]);
int dpop_conf_format(const dpop_dir_conf_t *c);
int dpop_conf_introspection_cache(const dpop_dir_conf_t *c);
int dpop_conf_refresh(const dpop_dir_conf_t *c);
/* Some place to check tokens against: a JWKS file or URL, metadata or an
 * introspection endpoint. */
int dpop_conf_has_token_source(const dpop_dir_conf_t *c);

#endif /* DPOP_CONFIG_H */
