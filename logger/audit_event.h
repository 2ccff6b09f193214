/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_event.h: turns an audit_event_t into the stored, canonical form:
 * every string sanitized to valid UTF-8, bounded (truncated with a marker),
 * serialized to compact JSON with the DESIGN.md field names in a fixed order.
 * The canonical bytes are what the hash chain covers.  Never adds anything to
 * an event that the caller did not give (no token, no proof, no key).
 */
#ifndef AUDIT_EVENT_H
#define AUDIT_EVENT_H

#include "dpop_audit.h"

#include <stddef.h>
#include <stdint.h>

/* Appended to a truncated string; counted within the field's bound. */
#define AUDIT_TRUNC_MARKER "...[truncated]"

/* Indexed fields, in index order (also the order of the index DBs). */
enum {
    AUDIT_IX_JKT = 0,
    AUDIT_IX_JTI,
    AUDIT_IX_TOKEN_HASH,
    AUDIT_IX_IP,
    AUDIT_IX_REASON,
    AUDIT_IX_KEYS /* count of string-keyed indexes */
};

/* JSON field name of an indexed field ("jkt", "jti", "token_hash",
 * "client_ip", "reason"). */
const char *audit_ix_field(int ix);

/* The event's fields in DESIGN.md order: the canonical JSON, the CSV
 * header and audit-fill's reader all walk this one table.  off is the
 * member's offset in audit_event_t (an int64_t for INT/IAT, a const char *
 * for STR; TS is ts_us, IAT also sets has_iat). */
typedef enum { AUDIT_F_TS, AUDIT_F_INT, AUDIT_F_IAT, AUDIT_F_STR } audit_field_kind_t;
typedef struct {
    const char *name;
    audit_field_kind_t kind;
    size_t off;
} audit_field_t;
#define AUDIT_NFIELDS 23
const audit_field_t *audit_event_fields(void);

/* Byte bound of a field (by JSON name), including the marker. */
size_t audit_field_limit(const char *name);

/* Room for the text that replaces a JWS: "[redacted JWS sha256:<43>]". */
#define AUDIT_JWS_MARKER_MAX 72

/* Sanitize (invalid UTF-8 -> U+FFFD), redact and bound in[0..inlen) into
 * out (outsz > limit).  Redaction: any compact JWS/JWT (an access token, a
 * DPoP proof; three or more base64url parts joined by '.', the first
 * starting "eyJ") becomes "[redacted JWS sha256:H]", H = base64url SHA-256
 * of it, which for an access token equals its token_hash (ath).  Returns the length written
 * (NUL-terminated).  Used for stored fields and for CLI lookups alike, so a lookup of an over-long
 * value finds the stored (truncated) one. */
size_t audit_field_clean(const char *in, size_t inlen, size_t limit, char *out, size_t outsz);

/* Copy in[0..inlen) to out without URL queries and fragments: whole != 0,
 * in is one URL, cut at its first '?' or '#'; whole == 0, free text, every
 * quoted "scheme://..." URL loses what follows its '?' or '#' up to the
 * next blank, quote or angle bracket.  Stops when out (outsz > 0) is full.
 * Returns the length written (NUL-terminated).  Applied to htu, detail and
 * user_agent before they are stored (issue 15 item 6). */
size_t audit_url_strip(const char *in, size_t inlen, int whole, char *out, size_t outsz);

/* An encoded event: canonical JSON plus its index keys, in one allocation
 * (caller frees with free()).  Produced in the request thread by
 * audit_writer_submit so the writer thread only does LMDB work. */
typedef struct {
    int64_t ts_us;
    size_t json_len;
    uint32_t key_off[AUDIT_IX_KEYS]; /* offsets into data; len 0 = absent */
    uint32_t key_len[AUDIT_IX_KEYS];
    char data[]; /* json (NUL-terminated), then the keys (each NUL-terminated) */
} audit_enc_t;

/* Encode ev; ts_us 0 is replaced by now.  NULL on ENOMEM. */
audit_enc_t *audit_event_encode(const audit_event_t *ev);

#endif /* AUDIT_EVENT_H */
