/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_proof.c: verification (and, for dpopctl/tests/bench, creation) of
 * DPoP proof JWTs, RFC 9449 §4.2/§4.3.
 *
 * dpop_proof_verify() reads as the checklist of RFC 9449 §4.3: one small
 * function per step, named after it and citing it, defined below in the
 * RFC's numbering, called in the fixed order documented in dpop_proof.h
 * (the RFC sets none; see dpop_proof_verify).  The first failure wins and
 * carries one reason code.  Failure
 * details name what is wrong, never the bytes of the proof, a key or an
 * access token (claimed htm/htu/jti values are not secrets and may appear,
 * truncated; URIs only in normalized form, i.e. without their query, which
 * could hold a credential).
 *
 * Hot path: a client re-sends the same protected header with every proof.
 * With a key cache the header segment's bytes are the cache key: on a hit
 * the header is neither decoded nor parsed, and the key import and
 * thumbprint are skipped; only the payload is decoded and parsed.  Only
 * headers that passed every header check are ever inserted, and the
 * per-request judgements (alg allow-list, expected jkt) are redone on hits.
 * A hit runs the same step functions as a miss: each header step knows
 * what a hit has already proven (proof_check_t.cached).
 */
#include "dpop_proof.h"
#include "dpop_sat.h"
#include "dpop_b64.h"
#include "dpop_ct.h"
#include "dpop_htu.h"
#include "dpop_json.h"
#include "dpop_jws.h"
#include "dpop_sha256.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* Bounds for claim values copied into the result (the audit store keeps
 * them); the proof size cap bounds them anyway, this keeps records small. */
#define CLAIM_COPY_MAX 2048
/* Longest claimed value quoted in a failure detail. */
#define DETAIL_QUOTE 64

void dpop_proof_params_init(dpop_proof_params_t *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->max_age = 300;
    p->skew = 5;
    p->algs = DPOP_ALG_MASK_DEFAULT;
    p->max_size = DPOP_PROOF_MAX_DEFAULT;
}

void dpop_proof_result_init(dpop_proof_result_t *r)
{
    if (!r)
        return;
    memset(r, 0, sizeof(*r));
    r->alg = DPOP_ALG_INVALID;
}

void dpop_proof_result_clear(dpop_proof_result_t *r)
{
    if (!r)
        return;
    free(r->jti);
    free(r->htm);
    free(r->htu);
    free(r->ath);
    free(r->nonce);
    dpop_proof_result_init(r);
}

int dpop_ath_compute(const char *token, size_t len, char out[DPOP_JKT_LEN + 1])
{
    if (!token || !out)
        return DPOP_ERR;
    /* RFC 9449 §4.2: ath = base64url(SHA-256(ASCII(access token))) */
    return dpop_b64url_sha256(token, len, out);
}

int dpop_replay_key(const char *jkt, const char *jti, unsigned char out[32])
{
    /* jkt has a fixed length (43), so jkt || jti is unambiguous without a
     * separator: no (jkt, jti) pair can collide with another by shifting. */
    if (!jkt || !jti || !out || strlen(jkt) != DPOP_JKT_LEN)
        return DPOP_ERR;
    return dpop_sha256(jkt, DPOP_JKT_LEN, jti, strlen(jti), out);
}

/*
 * The claims the proof check reads, extracted once from the payload.  A
 * string claim points into storage that lives as long as the verification
 * (the jansson object or the decoded payload buffer).
 */
typedef enum { CL_ABSENT = 0, CL_STRING, CL_INT, CL_OTHER } claim_type_t;

typedef struct {
    claim_type_t t;
    const char *s; /* CL_STRING: NUL-terminated, no NUL inside */
    size_t len;
    int64_t i; /* CL_INT */
} claim_t;

typedef struct {
    claim_t jti, htm, htu, iat, ath, nonce;
} claims_t;

static claim_t *claim_slot(claims_t *c, const char *name, size_t n)
{
#define SLOT(x)                                                                                    \
    if (n == sizeof(#x) - 1 && memcmp(name, #x, n) == 0)                                           \
        return &c->x;
    SLOT(jti)
    SLOT(htm)
    SLOT(htu)
    SLOT(iat)
    SLOT(ath)
    SLOT(nonce)
#undef SLOT
    return NULL;
}

/* From a parsed jansson object (the full path and the fallback). */
static void claims_from_json(const json_t *payload, claims_t *c)
{
    static const char *const names[] = {"jti", "htm", "htu", "iat", "ath", "nonce"};
    size_t i;
    memset(c, 0, sizeof(*c));
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        claim_t *cl = claim_slot(c, names[i], strlen(names[i]));
        json_t *v = json_object_get(payload, names[i]);
        if (!v)
            continue;
        if (json_is_string(v)) {
            cl->s = json_string_value(v);
            cl->len = json_string_length(v);
            /* a string with an escaped NUL would truncate in C */
            cl->t = strlen(cl->s) == cl->len ? CL_STRING : CL_OTHER;
        }
        else if (json_is_integer(v)) {
            cl->t = CL_INT;
            cl->i = (int64_t)json_integer_value(v);
        }
        else {
            cl->t = CL_OTHER;
        }
    }
}

static const char *skip_ws(const char *p, const char *end)
{
    /* RFC 8259 §2: insignificant whitespace */
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string without escapes of printable ASCII; p at the opening quote.
 * Returns the position after the closing quote, or NULL (not in subset). */
static const char *scan_plain_string(const char *p, const char *end)
{
    p++;
    while (p < end && *p != '"') {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return NULL;
        p++;
    }
    return p < end ? p + 1 : NULL;
}

#define FAST_MAX_MEMBERS 32

/*
 * Fast path for the payload of a cache hit: jansson costs more than all
 * other non-signature work together, and a proof's claims set is a flat
 * object of short ASCII strings and integers.  This scanner accepts only a
 * strict SUBSET of JSON that jansson parses to the very same values: one
 * flat object, member names and string values of printable ASCII without
 * escapes, integers of at most 18 digits without leading zeros, true, false,
 * null, no duplicate names, nothing after the object.  Anything else (a
 * nested value, an escape, a fraction, UTF-8, an error) returns 0 and the
 * caller falls back to the strict jansson parser, so both paths always
 * reach the same verdict.  On success the string claims are NUL-terminated
 * in place (buf is the caller's decoded copy of the payload).
 */
static int claims_fast(char *buf, size_t n, claims_t *c)
{
    const char *p = buf, *end = buf + n;
    const char *keys[FAST_MAX_MEMBERS];
    size_t klen[FAST_MAX_MEMBERS], nk = 0, i;
    char *terms[6];
    size_t nterms = 0;

    memset(c, 0, sizeof(*c));
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
        goto tail;
    }
    for (;;) {
        const char *k, *ke;
        claim_t *slot;
        if (p >= end || *p != '"' || nk == FAST_MAX_MEMBERS)
            return 0;
        k = p + 1;
        if (!(ke = scan_plain_string(p, end)))
            return 0;
        klen[nk] = (size_t)(ke - 1 - k);
        keys[nk] = k;
        /* RFC 7519 §4: claim names are unique (jansson rejects duplicates) */
        for (i = 0; i < nk; i++)
            if (klen[i] == klen[nk] && memcmp(keys[i], k, klen[nk]) == 0)
                return 0;
        slot = claim_slot(c, k, klen[nk]);
        nk++;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return 0;
        p = skip_ws(p + 1, end);
        if (p >= end)
            return 0;
        if (*p == '"') {
            const char *ve = scan_plain_string(p, end);
            if (!ve)
                return 0;
            if (slot) {
                slot->t = CL_STRING;
                slot->s = p + 1;
                slot->len = (size_t)(ve - 1 - (p + 1));
                terms[nterms++] = (char *)ve - 1;
            }
            p = ve;
        }
        else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            const char *d = p;
            int neg = 0, digits = 0;
            int64_t v = 0;
            if (*d == '-') {
                neg = 1;
                d++;
            }
            if (d >= end || *d < '0' || *d > '9')
                return 0;
            /* no leading zeros (RFC 8259 §6), and no "-0": jansson makes
             * that an integer 0 and we need not care to agree on it */
            if (*d == '0' && (neg || (d + 1 < end && d[1] >= '0' && d[1] <= '9')))
                return 0;
            while (d < end && *d >= '0' && *d <= '9') {
                if (++digits > 18)
                    return 0;
                v = v * 10 + (*d - '0');
                d++;
            }
            /* fraction or exponent: a real, let jansson decide */
            if (d < end && (*d == '.' || *d == 'e' || *d == 'E'))
                return 0;
            if (slot) {
                slot->t = CL_INT;
                slot->i = neg ? -v : v;
            }
            p = d;
        }
        else if ((size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0) {
            if (slot)
                slot->t = CL_OTHER;
            p += 4;
        }
        else if ((size_t)(end - p) >= 5 && memcmp(p, "false", 5) == 0) {
            if (slot)
                slot->t = CL_OTHER;
            p += 5;
        }
        else if ((size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0) {
            if (slot)
                slot->t = CL_OTHER;
            p += 4;
        }
        else {
            return 0; /* object, array or invalid */
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            break;
        }
        return 0;
    }
tail:
    if (skip_ws(p, end) != end)
        return 0;
    for (i = 0; i < nterms; i++)
        *terms[i] = '\0';
    return 1;
}

/* Copy a claimed string into the result when it is a bounded string. */
static char *claim_copy(const claim_t *cl, size_t max)
{
    if (cl->t != CL_STRING || cl->len == 0 || cl->len > max)
        return NULL;
    return strndup(cl->s, cl->len);
}

/* Best-effort record of what the proof claims, for the audit store, as
 * soon as the payload parsed: also rejected proofs are recorded with the
 * values they claimed (forensics wants the attacker's jti/htu). */
static void result_fill_claims(dpop_proof_result_t *r, const claims_t *c)
{
    r->jti = claim_copy(&c->jti, DPOP_JTI_MAX);
    r->htm = claim_copy(&c->htm, CLAIM_COPY_MAX);
    r->htu = claim_copy(&c->htu, CLAIM_COPY_MAX);
    r->ath = claim_copy(&c->ath, CLAIM_COPY_MAX);
    r->nonce = claim_copy(&c->nonce, CLAIM_COPY_MAX);
    if (c->iat.t == CL_INT) {
        r->iat = c->iat.i;
        r->has_iat = 1;
    }
}

/* Decode and parse the payload segment (cache-hit path; the full path gets
 * it from dpop_jws_parse with the same rules): the fast scanner, else the
 * strict jansson parser.  *buf and *json (either may stay NULL) back the
 * claims and are freed by the caller. */
static int payload_claims(const char *seg, size_t len, claims_t *c, unsigned char **buf,
                          json_t **json, dpop_failure_t *f)
{
    size_t n = 0;
    char err[96];
    if (dpop_b64url_decode(seg, len, buf, &n) != DPOP_OK) {
        *buf = NULL;
        return dpop_fail(f, DPOP_REASON_MALFORMED, "JWS payload is not canonical base64url");
    }
    if (n <= DPOP_JSON_MAX_BYTES && claims_fast((char *)*buf, n, c))
        return DPOP_OK;
    if (!(*json = dpop_json_parse_object((const char *)*buf, n, err, sizeof(err))))
        return dpop_fail(f, DPOP_REASON_MALFORMED, "JWS payload: %s", err);
    claims_from_json(*json, c);
    return DPOP_OK;
}

/*
 * One proof under verification: what the steps of RFC 9449 §4.3 share.
 *
 * The header segment is either parsed here (jws) or known from the key
 * cache (cached): these exact header bytes passed the header steps (4),
 * (5) and (7) before, so the key and alg come from the cache and the header
 * is neither decoded nor parsed.  Each header step says what it skips on a
 * hit; the per-request judgements (the alg allow-list, the expected key)
 * run on both paths, and every step after the header is the same code.
 */
typedef struct {
    const char *proof;
    size_t len, hl, pl, sl; /* dpop_jws_split of proof */
    const dpop_proof_params_t *p;
    dpop_proof_result_t *r;
    dpop_alg_mask_t algs; /* the allow-list, defaults applied */
    size_t max_size;
    int64_t max_age, skew;
    int cached;                 /* header from the key cache */
    dpop_jws_t jws;             /* miss: the whole proof, parsed */
    unsigned char *payload_buf; /* hit: decoded payload backing cl */
    json_t *payload_json;       /* hit: the jansson fallback backing cl */
    unsigned char *sig_buf;     /* hit: decoded signature */
    const unsigned char *sig;   /* sig_buf or jws.sig */
    size_t siglen;
    claims_t cl;
    dpop_jwk_t *key; /* owned reference */
    dpop_alg_t alg;
} proof_check_t;

static void proof_check_clear(proof_check_t *c)
{
    free(c->sig_buf);
    json_decref(c->payload_json);
    free(c->payload_buf);
    dpop_jws_clear(&c->jws);
    if (c->key)
        dpop_jwk_free(c->key);
}

/* A proof to check, with the parameters' defaults applied; a missing
 * proof (no DPoP header value) is missing_proof. */
static int proof_check_begin(proof_check_t *c, const char *proof, size_t len,
                             const dpop_proof_params_t *p, dpop_proof_result_t *r,
                             dpop_failure_t *f)
{
    memset(c, 0, sizeof(*c));
    c->alg = DPOP_ALG_INVALID;
    if (!p)
        return dpop_fail(f, DPOP_REASON_MALFORMED, "no verification parameters");
    if (!proof || len == 0)
        return dpop_fail(f, DPOP_REASON_MISSING_PROOF, "no DPoP proof");
    c->proof = proof;
    c->len = len;
    c->p = p;
    c->r = r;
    c->algs = p->algs ? p->algs : DPOP_ALG_MASK_DEFAULT;
    c->max_size = p->max_size ? p->max_size : DPOP_PROOF_MAX_DEFAULT;
    c->max_age = p->max_age > 0 ? p->max_age : 0;
    c->skew = p->skew > 0 ? p->skew : 0;
    return DPOP_OK;
}

/* The proof's key is known (imported and fit for the alg, or cached): its
 * thumbprint goes into the result (the audit store records it, also for
 * proofs rejected later). */
static void note_key(proof_check_t *c)
{
    memcpy(c->r->jkt, dpop_jwk_thumbprint(c->key), DPOP_JKT_LEN + 1);
}

/* Before any parsing: a bound on hostile input (DPoPMaxProofSize). */
static int check_size(const proof_check_t *c, dpop_failure_t *f)
{
    if (c->len > c->max_size)
        return dpop_fail(f, DPOP_REASON_TOO_LARGE, "proof of %zu bytes exceeds the limit of %zu",
                         c->len, c->max_size);
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (1): not more than one DPoP header field.  The core sees
 * one value; the caller judges the header fields (mod_dpop_authn.c:
 * multiple_proofs).
 */

/*
 * RFC 9449 §4.3 (2): a single, well-formed JWT.  Three segments, header and
 * payload non-empty; an empty signature goes on to the header steps, so
 * "alg":"none" (any case) is bad_alg, and for a real alg it never verifies.
 * On a cache hit only the payload and signature segments are decoded (the
 * header bytes are known); a miss parses all three (dpop_jws_parse, the
 * same rules).  The claims are recorded as soon as they parsed.
 */
static int check_well_formed_jwt(proof_check_t *c, dpop_failure_t *f)
{
    const char *payload, *sig;
    if (dpop_jws_split(c->proof, c->len, &c->hl, &c->pl, &c->sl) != DPOP_OK || !c->hl || !c->pl)
        return dpop_fail(f, DPOP_REASON_MALFORMED, "not a three-part compact JWS");
    payload = c->proof + c->hl + 1;
    sig = payload + c->pl + 1;
    if (c->p->cache && (c->key = dpop_keycache_get(c->p->cache, c->proof, c->hl, &c->alg))) {
        c->cached = 1;
        if (payload_claims(payload, c->pl, &c->cl, &c->payload_buf, &c->payload_json, f) != DPOP_OK)
            return DPOP_ERR;
        if (dpop_b64url_decode(sig, c->sl, &c->sig_buf, &c->siglen) != DPOP_OK)
            return dpop_fail(f, DPOP_REASON_MALFORMED, "JWS signature is not canonical base64url");
        c->sig = c->sig_buf;
        result_fill_claims(c->r, &c->cl);
        c->r->alg = c->alg;
        note_key(c);
        return DPOP_OK;
    }
    if (dpop_jws_parse(c->proof, c->len, c->max_size, &c->jws, f) != DPOP_OK) {
        if (f && f->code == DPOP_REASON_NONE)
            dpop_fail(f, DPOP_REASON_MALFORMED, "not a valid compact JWS");
        return DPOP_ERR;
    }
    c->sig = c->jws.sig;
    c->siglen = c->jws.siglen;
    c->alg = c->jws.alg;
    claims_from_json(c->jws.payload, &c->cl);
    result_fill_claims(c->r, &c->cl);
    c->r->alg = c->alg;
    return DPOP_OK;
}

/* Required string claim: 1 ok, else the failure is recorded. */
static int need_string(const claim_t *cl, const char *name, dpop_failure_t *f)
{
    if (cl->t == CL_ABSENT) {
        dpop_fail(f, DPOP_REASON_MISSING_CLAIM, "%s claim missing", name);
        return 0;
    }
    if (cl->t != CL_STRING || cl->len == 0) {
        dpop_fail(f, DPOP_REASON_BAD_CLAIM, "%s claim is not a non-empty string", name);
        return 0;
    }
    return 1;
}

/* Optional string claim: absent ok, present must be a non-empty string. */
static int opt_string(const claim_t *cl, const char *name, dpop_failure_t *f)
{
    if (cl->t != CL_ABSENT && (cl->t != CL_STRING || cl->len == 0)) {
        dpop_fail(f, DPOP_REASON_BAD_CLAIM, "%s claim is not a non-empty string", name);
        return 0;
    }
    return 1;
}

/*
 * RFC 9449 §4.3 (3): the claims of §4.2 are there, and typed: jti, htm,
 * htu non-empty strings (jti bounded: it keys the replay cache), iat an
 * integer NumericDate.  Only integers: proofs are made by code, never by
 * hand, and a float or string iat is a sign of a broken or hostile client.
 * ath and nonce are required only by steps (12) and (10), but when present
 * they must be non-empty strings here already.
 */
static int check_required_claims(const proof_check_t *c, dpop_failure_t *f)
{
    const claims_t *cl = &c->cl;
    if (!need_string(&cl->jti, "jti", f) || !need_string(&cl->htm, "htm", f) ||
        !need_string(&cl->htu, "htu", f))
        return DPOP_ERR;
    if (cl->jti.len > DPOP_JTI_MAX)
        return dpop_fail(f, DPOP_REASON_BAD_CLAIM, "jti longer than %d bytes", DPOP_JTI_MAX);
    if (cl->iat.t == CL_ABSENT)
        return dpop_fail(f, DPOP_REASON_MISSING_CLAIM, "iat claim missing");
    if (cl->iat.t != CL_INT)
        return dpop_fail(f, DPOP_REASON_BAD_CLAIM, "iat claim is not an integer");
    if (!opt_string(&cl->ath, "ath", f) || !opt_string(&cl->nonce, "nonce", f))
        return DPOP_ERR;
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (4): typ is "dpop+jwt", compared exactly and
 * case-sensitively.  RFC 7515 §4.1.9 calls typ a media type (so
 * "application/dpop+jwt" or "DPoP+JWT" would name the same type), but RFC
 * 9449 §4.2/§4.3 (4) specify the value "dpop+jwt" and every conforming
 * client sends exactly that.  Accepting variants would only widen what an
 * attacker can feed us, so we fail closed (RFC 8725 §3.11: explicit typing
 * is there to prevent confusion).  Cache hit: these header bytes passed.
 */
static int check_typ(const proof_check_t *c, dpop_failure_t *f)
{
    const char *typ = NULL;
    int t;
    if (c->cached)
        return DPOP_OK;
    t = dpop_json_get_string(c->jws.header, "typ", &typ);
    if (t == 0)
        return dpop_fail(f, DPOP_REASON_BAD_TYP, "typ header parameter missing");
    if (t < 0)
        return dpop_fail(f, DPOP_REASON_BAD_TYP, "typ header parameter is not a string");
    if (strcmp(typ, "dpop+jwt") != 0)
        return dpop_fail(f, DPOP_REASON_BAD_TYP, "typ is \"%.*s\", not \"dpop+jwt\"", DETAIL_QUOTE,
                         typ);
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (5): an asymmetric algorithm we support (never none, never
 * a MAC: dpop_alg.h knows no other) and allow.  Support is a property of
 * the header bytes (skipped on a cache hit); the allow-list is per request
 * (per-directory DPoPAlgorithms), judged on both paths.
 */
static int check_alg(const proof_check_t *c, dpop_failure_t *f)
{
    if (!c->cached && c->alg == DPOP_ALG_INVALID)
        return dpop_fail(f, DPOP_REASON_BAD_ALG, "alg \"%.*s\" is not supported", DETAIL_QUOTE,
                         c->jws.alg_name ? c->jws.alg_name : "");
    if (!(c->algs & DPOP_ALG_BIT(c->alg)))
        return dpop_fail(f, DPOP_REASON_BAD_ALG, "alg %s is not allowed", dpop_alg_name(c->alg));
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (6): the signature verifies with the jwk.  Through the
 * key's prepared (and, for a cached key, reused) verify context: same
 * checks and results as dpop_sig_verify, without the per-call digest fetch
 * and PSS setup.
 */
static int check_signature(const proof_check_t *c, dpop_failure_t *f)
{
    int sv;
    c->r->sig_checked = 1;
    sv = dpop_jwk_verify(c->key, c->alg, (const unsigned char *)c->proof, c->hl + 1 + c->pl, c->sig,
                         c->siglen);
    if (sv != 1)
        return dpop_fail(f, DPOP_REASON_BAD_SIGNATURE,
                         sv == 0 ? "signature does not verify with the jwk"
                                 : "internal error verifying the signature");
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (7): the jwk header parameter (required, §4.2) is a public
 * key: the jwk layer refuses private members (private_key_in_jwk) and keys
 * it cannot import strictly (bad_jwk).  Cache hit: the key is the cached
 * import of these very header bytes.
 */
static int check_jwk_public(proof_check_t *c, dpop_failure_t *f)
{
    json_t *jwk;
    if (c->cached)
        return DPOP_OK;
    jwk = json_object_get(c->jws.header, "jwk");
    if (!jwk)
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk header parameter missing");
    if (!json_is_object(jwk))
        return dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk header parameter is not a JSON object");
    /* attacker-chosen: RSA capped at DPOP_PROOF_RSA_MAX_BITS */
    if (dpop_jwk_import_public_bounded(jwk, DPOP_PROOF_RSA_MAX_BITS, &c->key, f) != DPOP_OK) {
        /* keep the jwk layer's reason (bad_jwk / private_key_in_jwk); make
         * sure a failure is always recorded */
        if (f && f->code == DPOP_REASON_NONE)
            dpop_fail(f, DPOP_REASON_BAD_JWK, "jwk could not be imported");
        c->key = NULL;
        return DPOP_ERR;
    }
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (5)/(6): the key must be usable with the alg (kty, curve,
 * RSA size), else the signature step would judge a key/alg pair the alg
 * step never allowed.  Then the header has passed every header step: its
 * key is recorded and, with a cache, remembered for these header bytes.
 */
static int check_jwk_fits_alg(proof_check_t *c, dpop_failure_t *f)
{
    if (c->cached)
        return DPOP_OK;
    if (!dpop_jwk_fits_alg(c->key, c->alg))
        return dpop_fail(f, DPOP_REASON_BAD_ALG, "alg %s does not fit the jwk key type",
                         dpop_alg_name(c->alg));
    note_key(c);
    if (c->p->cache)
        dpop_keycache_put(c->p->cache, c->proof, c->hl, c->key, c->alg);
    return DPOP_OK;
}

/* RFC 9449 §4.3 (8): htm is the request method, exactly: methods are
 * case-sensitive (RFC 9110 §9.1). */
static int check_htm(const proof_check_t *c, dpop_failure_t *f)
{
    const char *method = c->p->method;
    if (!method || strcmp(c->cl.htm.s, method) != 0)
        return dpop_fail(f, DPOP_REASON_HTM_MISMATCH, "htm \"%.*s\" does not match method \"%.*s\"",
                         DETAIL_QUOTE, c->cl.htm.s, DETAIL_QUOTE, method ? method : "");
    return DPOP_OK;
}

/* RFC 9449 §4.3 (9): htu is the request URI, both in the normalized form of
 * dpop_htu.h (RFC 3986 §6, query and fragment ignored). */
static int check_htu(const proof_check_t *c, dpop_failure_t *f)
{
    char nclaim[DPOP_HTU_MAX + 64], nreq[DPOP_HTU_MAX + 64];
    if (dpop_htu_normalize(c->cl.htu.s, nclaim, sizeof(nclaim)) != DPOP_OK)
        return dpop_fail(f, DPOP_REASON_HTU_MISMATCH, "htu is not an absolute http(s) URI");
    if (!c->p->url || dpop_htu_normalize(c->p->url, nreq, sizeof(nreq)) != DPOP_OK)
        return dpop_fail(f, DPOP_REASON_HTU_MISMATCH, "request URI is not an absolute http(s) URI");
    /* normalized forms only in the detail: the query (possibly a
     * credential) is gone */
    if (strcmp(nclaim, nreq) != 0)
        return dpop_fail(f, DPOP_REASON_HTU_MISMATCH, "htu %.*s does not match %.*s", 100, nclaim,
                         100, nreq);
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (10) / §8 / §9: when the server provided a nonce (an
 * expected value, or a callback that judges the nonces it issued), the
 * proof carries it.  Constant time against the expected value (dpop_ct.h).
 */
static int check_nonce(const proof_check_t *c, dpop_failure_t *f)
{
    const dpop_proof_params_t *p = c->p;
    const claim_t *nonce = &c->cl.nonce;
    if (!p->expected_nonce && !p->nonce_check)
        return DPOP_OK;
    if (nonce->t != CL_STRING)
        return dpop_fail(f, DPOP_REASON_NONCE_MISSING, "server requires a nonce, proof has none");
    if (p->expected_nonce &&
        !dpop_ct_equal(p->expected_nonce, strlen(p->expected_nonce), nonce->s, nonce->len))
        return dpop_fail(f, DPOP_REASON_NONCE_INVALID, "nonce does not match");
    if (p->nonce_check && p->nonce_check(p->nonce_ctx, nonce->s, nonce->len) != 1)
        return dpop_fail(f, DPOP_REASON_NONCE_INVALID, "nonce invalid or expired");
    return DPOP_OK;
}

/* RFC 9449 §4.3 (11) / §11.1: iat within [now - max_age - skew, now +
 * skew], bounds inclusive, in saturating arithmetic (hostile iat). */
static int check_iat_window(const proof_check_t *c, dpop_failure_t *f)
{
    int64_t iat = c->cl.iat.i, now = c->p->now;
    if (iat < dpop_sat_sub(dpop_sat_sub(now, c->max_age), c->skew))
        return dpop_fail(
            f, DPOP_REASON_IAT_TOO_OLD, "iat is %lld s before now (limit %lld + %lld s)",
            (long long)dpop_sat_sub(now, iat), (long long)c->max_age, (long long)c->skew);
    if (iat > dpop_sat_add(now, c->skew))
        return dpop_fail(f, DPOP_REASON_IAT_IN_FUTURE, "iat is %lld s after now (skew %lld s)",
                         (long long)dpop_sat_sub(iat, now), (long long)c->skew);
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (12), first half: with an access token, ath is
 * base64url(SHA-256(token)) (§4.2), compared in constant time.  The
 * caller's hash of the same token is used when it has one (the module
 * computes it once per request).
 */
static int check_ath(const proof_check_t *c, dpop_failure_t *f)
{
    const dpop_proof_params_t *p = c->p;
    const char *ath = c->cl.ath.t == CL_STRING ? c->cl.ath.s : NULL;
    char want[DPOP_JKT_LEN + 1];
    if (!p->access_token)
        return DPOP_OK;
    if (!ath)
        return dpop_fail(f, DPOP_REASON_ATH_MISSING, "access token presented but proof has no ath");
    if (p->access_token_ath && strlen(p->access_token_ath) == DPOP_JKT_LEN)
        memcpy(want, p->access_token_ath, DPOP_JKT_LEN + 1);
    else if (dpop_ath_compute(p->access_token, strlen(p->access_token), want) != DPOP_OK)
        return dpop_fail(f, DPOP_REASON_ATH_MISMATCH, "internal error hashing the access token");
    if (!dpop_ct_equal(ath, c->cl.ath.len, want, DPOP_JKT_LEN))
        return dpop_fail(f, DPOP_REASON_ATH_MISMATCH, "ath is not the hash of the access token");
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 (12), second half, and §6.1: the proof key is the key the
 * access token is bound to (its cnf.jkt), by RFC 7638 thumbprint, in
 * constant time like every comparison of a token-derived value.
 */
static int check_jkt_binding(const proof_check_t *c, dpop_failure_t *f)
{
    const dpop_proof_params_t *p = c->p;
    if (p->expected_jkt && !dpop_ct_streq(p->expected_jkt, c->r->jkt))
        return dpop_fail(f, DPOP_REASON_JKT_MISMATCH,
                         "proof key thumbprint does not match cnf.jkt");
    return DPOP_OK;
}

/*
 * RFC 9449 §4.3 lists conditions that must all hold; it sets no order.
 * Ours is the contract of dpop_proof.h (the first failure gives the reason
 * code): the header before the signature (no crypto for a header refused
 * anyway), the bound key before the signature (no crypto for a key that
 * cannot be the token's), the signature before any claim is believed, the
 * request (htm, htu) before the clock, and ath, then the nonce, last (a
 * nonce callback may consult state).  Replay (jti) is the caller's.
 */
int dpop_proof_verify(const char *proof, size_t len, const dpop_proof_params_t *p,
                      dpop_proof_result_t *r, dpop_failure_t *f)
{
    dpop_proof_result_t local;
    proof_check_t c;
    int rc = DPOP_ERR;

    dpop_failure_clear(f);
    if (!r)
        r = &local;
    dpop_proof_result_init(r);
    if (proof_check_begin(&c, proof, len, p, r, f) != DPOP_OK ||
        check_size(&c, f) != DPOP_OK ||            /* bounded input */
        check_well_formed_jwt(&c, f) != DPOP_OK || /* (2) */
        check_typ(&c, f) != DPOP_OK ||             /* (4) */
        check_alg(&c, f) != DPOP_OK ||             /* (5) */
        check_jwk_public(&c, f) != DPOP_OK ||      /* (7) */
        check_jwk_fits_alg(&c, f) != DPOP_OK ||    /* (5)/(6) */
        check_jkt_binding(&c, f) != DPOP_OK ||     /* (12) cnf.jkt */
        check_signature(&c, f) != DPOP_OK ||       /* (6) */
        check_required_claims(&c, f) != DPOP_OK || /* (3) */
        check_htm(&c, f) != DPOP_OK ||             /* (8) */
        check_htu(&c, f) != DPOP_OK ||             /* (9) */
        check_iat_window(&c, f) != DPOP_OK ||      /* (11) */
        check_ath(&c, f) != DPOP_OK ||             /* (12) ath */
        check_nonce(&c, f) != DPOP_OK)             /* (10) */
        goto done;
    rc = DPOP_OK;
done:
    proof_check_clear(&c);
    if (r == &local)
        dpop_proof_result_clear(&local);
    return rc;
}

int dpop_proof_peek(const char *proof, size_t len, size_t max_size, dpop_proof_result_t *r)
{
    dpop_jws_t jws;
    dpop_failure_t f;
    claims_t cl;
    json_t *jwk;
    int rc = DPOP_ERR;

    if (!r)
        return DPOP_ERR;
    dpop_proof_result_init(r);
    memset(&jws, 0, sizeof(jws));
    dpop_failure_clear(&f);
    if (!max_size)
        max_size = DPOP_PROOF_MAX_DEFAULT;
    if (!proof || len == 0 || len > max_size)
        return DPOP_ERR;
    /* the same strict parser as verification; nothing else runs */
    if (dpop_jws_parse(proof, len, max_size, &jws, &f) != DPOP_OK)
        goto done;
    claims_from_json(jws.payload, &cl);
    result_fill_claims(r, &cl);
    r->alg = jws.alg;
    /* a hash of the members as sent (RFC 7638): no key is built */
    jwk = json_object_get(jws.header, "jwk");
    if (!json_is_object(jwk) || dpop_jwk_thumbprint_json(jwk, r->jkt, &f) != DPOP_OK)
        r->jkt[0] = '\0';
    rc = DPOP_OK;
done:
    dpop_jws_clear(&jws);
    return rc;
}

int dpop_proof_create(EVP_PKEY *key, const json_t *pub_jwk, dpop_alg_t alg, const char *method,
                      const char *url, const char *access_token, const char *nonce, int64_t iat,
                      const char *jti, char **out)
{
    json_t *hdr = NULL, *pl = NULL, *jwk_copy = NULL;
    char jtibuf[32], ath[DPOP_JKT_LEN + 1];
    unsigned char rnd[16];
    int rc = DPOP_ERR;

    if (!out)
        return DPOP_ERR;
    *out = NULL;
    if (!key || !json_is_object(pub_jwk) || !dpop_alg_name(alg) || !method || !*method || !url ||
        !*url)
        return DPOP_ERR;
    if (!jti) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return DPOP_ERR;
        if (dpop_b64url_encode_buf(rnd, sizeof(rnd), jtibuf, sizeof(jtibuf)) == (size_t)-1)
            return DPOP_ERR;
        jti = jtibuf;
    }
    if (iat == 0)
        iat = (int64_t)time(NULL);
    if (!(jwk_copy = json_deep_copy(pub_jwk)))
        goto done;
    /* RFC 9449 §4.2: typ, alg, jwk */
    hdr =
        json_pack("{s:s, s:s, s:O}", "typ", "dpop+jwt", "alg", dpop_alg_name(alg), "jwk", jwk_copy);
    if (!hdr)
        goto done;
    pl = json_pack("{s:s, s:s, s:s, s:I}", "jti", jti, "htm", method, "htu", url, "iat",
                   (json_int_t)iat);
    if (!pl)
        goto done;
    if (access_token) {
        if (dpop_ath_compute(access_token, strlen(access_token), ath) != DPOP_OK ||
            json_object_set_new(pl, "ath", json_string(ath)) != 0)
            goto done;
    }
    if (nonce && json_object_set_new(pl, "nonce", json_string(nonce)) != 0)
        goto done;
    if (dpop_jws_sign(hdr, pl, alg, key, out) != DPOP_OK)
        goto done;
    rc = DPOP_OK;
done:
    json_decref(jwk_copy);
    json_decref(hdr);
    json_decref(pl);
    return rc;
}
