/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_glossary.c: the report's reference tables: every reason code of
 * DESIGN.md "Reason codes" with what it means and what to do about it, and
 * the controls mapping (which refusals and alerts evidence which control).
 * Counts come from the period's by_reason rows.
 */
#include "audit_report_model.h"
#include "dpop_result.h"

#include <string.h>

typedef struct {
    const char *reason, *meaning, *action;
} gloss_t;

/* In DESIGN.md's order; test_audit_report checks every reason of the core's
 * table is here. */
static const gloss_t glossary[] = {
    {"missing_proof", "protected request without a DPoP header",
     "A client not yet moved to DPoP, or a Bearer client: in report-only these are the clients "
     "that enforce would break; give them a DPoP key before switching."},
    {"multiple_proofs", "more than one DPoP header or value",
     "Client or proxy bug (a header added twice); fix the client or the proxy chain."},
    {"too_large", "proof over the configured size",
     "A broken or hostile client; raise DPoPMaxProofSize only if a legitimate client needs it."},
    {"malformed", "not a 3-part compact JWS of strict base64url JSON objects",
     "Client library bug or probing; check the client's DPoP library version."},
    {"bad_typ", "typ is not dpop+jwt", "Client sends another JWT as proof; fix the client."},
    {"bad_alg", "none, symmetric, unknown, not allowed, or not matching the key",
     "Client uses an algorithm DPoPAllowedAlgorithms refuses; move it to ES256/EdDSA or allow "
     "its algorithm deliberately."},
    {"bad_jwk", "jwk missing, malformed, unsupported or weak",
     "Client key unsupported or too weak; issue a supported key. Many at once: key probing."},
    {"private_key_in_jwk", "jwk carries private members",
     "The client leaks its private key in every request: revoke that key now and re-key the "
     "client."},
    {"bad_signature", "signature does not verify",
     "Forged or tampered proofs; a burst from one IP is an attack (see alerts); a steady rate "
     "from one client is a client bug."},
    {"missing_claim", "jti, htm, htu or iat absent", "Client library bug; fix the client."},
    {"bad_claim", "claim of the wrong type or empty; unknown crit",
     "Client library bug or probing; fix the client."},
    {"htm_mismatch", "method differs",
     "Proof made for another method: client bug or a proof "
     "reused for another request."},
    {"htu_mismatch", "URI differs",
     "Proof made for another URL: check proxies rewriting the host/path (DPoPPublicURL) before "
     "blaming the client."},
    {"iat_too_old", "outside the window, past",
     "Client clock behind or proofs reused late; check NTP on the client, then the window."},
    {"iat_in_future", "outside the window, future", "Client clock ahead; check NTP on the client."},
    {"replay", "jti already seen for this key within the window",
     "A captured proof was sent again: investigate the key's holder (alerts dpop_replay); a "
     "client retrying with the same proof is a client bug."},
    {"ath_missing", "token presented, proof has no ath",
     "Client library does not bind the proof "
     "to the token; upgrade it."},
    {"ath_mismatch", "ath is not the token's hash",
     "Proof made for another token: a stolen proof or a client mixing tokens; investigate."},
    {"nonce_missing", "server requires a nonce, proof has none",
     "Normal once per client (it retries with the nonce); many per client: it does not handle "
     "use_dpop_nonce."},
    {"nonce_invalid", "nonce wrong or expired",
     "Stale nonce after a restart or a rotation is normal in small numbers; many: check nonce "
     "secret sharing across servers."},
    {"missing_token", "proof without access token",
     "Client sends no Authorization header; fix "
     "the client."},
    {"token_invalid", "access token fails signature, iss, aud, exp or nbf",
     "Expired or foreign tokens: check the client's token refresh and DPoPTokenIssuer/Audience."},
    {"token_unbound", "token has no cnf.jkt where binding is required",
     "The authorization server issued a Bearer token: enable DPoP binding for this client at the "
     "authorization server."},
    {"jkt_mismatch", "cnf.jkt differs from the proof key's thumbprint",
     "The token is used with a key it is not bound to: token theft unless the client rotated "
     "keys without a new token; see dpop_token_theft alerts."},
    {"bearer_downgrade", "DPoP-bound token presented with the Bearer scheme",
     "A bound token sent as Bearer: a stolen token or a misconfigured client; investigate."},
    {"policy_denied", "key not allowed this method and path by the policy",
     "Either the policy lacks a grant the client needs (fix the policy) or the client "
     "overreaches (investigate)."},
    {"key_revoked", "key revoked or outside not_before/not_after in the policy",
     "A retired key still in use: find and re-key the client; repeated use after revocation is "
     "suspicious."},
};

const char *audit_glossary_action(const char *reason)
{
    for (size_t i = 0; reason && i < sizeof(glossary) / sizeof(glossary[0]); i++)
        if (strcmp(glossary[i].reason, reason) == 0)
            return glossary[i].action;
    return NULL;
}

json_t *audit_glossary_json(const json_t *by_reason)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < sizeof(glossary) / sizeof(glossary[0]); i++) {
        const gloss_t *g = &glossary[i];
        const json_t *row = json_object_get(by_reason, g->reason);
        dpop_reason_t code = dpop_reason_from_name(g->reason);
        json_array_append_new(
            arr, json_pack("{s:s, s:s*, s:s, s:s, s:I, s:I}", "reason", g->reason, "error",
                           dpop_reason_error(code), "meaning", g->meaning, "action", g->action,
                           "enforce", json_integer_value(json_object_get(row, "enforce")),
                           "report_only", json_integer_value(json_object_get(row, "report_only"))));
    }
    return arr;
}

typedef struct {
    const char *framework, *control, *objective;
    const char *reasons[16];
    const char *alerts[4];
} control_t;

/* The controls mapping: which refusals evidence which control. */
static const control_t controls[] = {
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI2 Secret Leakage",
     "A leaked access token is useless without the private key it is bound to (RFC 9449 "
     "sender-constrained token, cnf.jkt); replayed proofs and tokens presented with another "
     "key are refused and alerted on.",
     {"replay", "jkt_mismatch", "ath_mismatch", "token_unbound", "bearer_downgrade"},
     {"dpop_replay", "dpop_token_theft"}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI4 Insecure Authentication",
     "Every request carries a fresh proof of possession signed with the client's key; unsigned, "
     "weakly signed, malformed proofs and keys carrying private material are refused.",
     {"missing_proof", "multiple_proofs", "too_large", "malformed", "bad_typ", "bad_alg", "bad_jwk",
      "private_key_in_jwk", "bad_signature", "missing_claim", "bad_claim"},
     {"dpop_signature_burst", "dpop_key_burst"}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI7 Long-Lived Secrets",
     "A proof is valid for one method and URI for seconds (iat window, optional server nonce), "
     "so a captured proof expires almost at once.",
     {"iat_too_old", "iat_in_future", "nonce_missing", "nonce_invalid", "htm_mismatch",
      "htu_mismatch"},
     {NULL}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI1 Improper Offboarding",
     "Revoked keys and keys outside their not_before/not_after window are refused at once.",
     {"key_revoked"},
     {NULL}},
    {"OWASP Non-Human Identity Top 10 (2025)",
     "NHI5 Overprivileged NHI",
     "Each key may call only the methods and paths its policy grants (default deny).",
     {"policy_denied"},
     {NULL}},
    {"NIST CSF 2.0",
     "PR.AA-01",
     "Identities and credentials of services are managed: each workload key is registered by "
     "its RFC 7638 thumbprint, with validity dates and revocation.",
     {"key_revoked", "token_unbound"},
     {NULL}},
    {"NIST CSF 2.0",
     "PR.AA-03",
     "Services are authenticated on every request: access token (signature, issuer, audience, "
     "lifetime) and proof of possession of the bound key.",
     {"missing_token", "token_invalid", "token_unbound", "jkt_mismatch", "bad_signature",
      "ath_missing", "ath_mismatch"},
     {"dpop_token_theft", "dpop_signature_burst"}},
    {"NIST CSF 2.0",
     "PR.AA-05",
     "Access permissions are enforced with least privilege per key and route.",
     {"policy_denied"},
     {NULL}},
    {"NIST SP 800-207",
     "Tenet 6: dynamic, strictly enforced authentication and authorization",
     "Continuous verification: token, proof, key binding and policy are evaluated on every "
     "request, never once per session; report-only mode records would-be refusals.",
     {"missing_proof", "bad_signature", "replay", "jkt_mismatch", "policy_denied", "key_revoked",
      "iat_too_old", "htu_mismatch"},
     {"dpop_replay", "dpop_token_theft", "dpop_signature_burst", "dpop_key_burst"}},
    {"NIST SP 800-207",
     "Tenet 7: collect information to improve security posture",
     "Every refusal is kept in a hash-chained, tamper-evident store (verify) and streamed to the "
     "SIEM as alerts.",
     {NULL},
     {"dpop_replay", "dpop_token_theft", "dpop_signature_burst", "dpop_key_burst"}},
};

json_t *audit_controls_json(const json_t *by_reason, const json_t *alert_rules)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < sizeof(controls) / sizeof(controls[0]); i++) {
        const control_t *c = &controls[i];
        json_t *reasons = json_object(), *alerts = json_object();
        json_int_t events = 0, nalerts = 0, refused = 0, ro = 0;
        for (size_t j = 0; j < 16 && c->reasons[j]; j++) {
            const json_t *row = json_object_get(by_reason, c->reasons[j]);
            json_int_t n = json_integer_value(json_object_get(row, "count"));
            json_object_set_new(reasons, c->reasons[j], json_integer(n));
            events += n;
            refused += json_integer_value(json_object_get(row, "enforce"));
            ro += json_integer_value(json_object_get(row, "report_only"));
        }
        for (size_t j = 0; j < 4 && c->alerts[j]; j++) {
            json_int_t n = json_integer_value(json_object_get(alert_rules, c->alerts[j]));
            json_object_set_new(alerts, c->alerts[j], json_integer(n));
            nalerts += n;
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:o, s:I}",
                                             "framework", c->framework, "control", c->control,
                                             "objective", c->objective, "evidence_reasons", reasons,
                                             "events", events, "refused", refused, "report_only",
                                             ro, "evidence_alerts", alerts, "alerts", nalerts));
    }
    return arr;
}
