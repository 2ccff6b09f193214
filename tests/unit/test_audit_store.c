/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit_store.c: the LMDB audit store: write/read back, every index
 * lookup (and which index the planner picks), time ranges, the hash chain
 * and verify catching an edited, a deleted and a mis-indexed event (the
 * tampering done with the raw LMDB API), prune then verify, map full,
 * concurrent appends from several processes, field bounds and sanitizing,
 * multi-store merge, open errors.
 */
#include <errno.h>
#include <jansson.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "audit_args.h"
#include "audit_event.h"
#include "audit_time.h"
#include "test_audit_util.h"

/* ---- raw LMDB access for tampering (the store must be closed) ---- */

typedef struct {
    MDB_env *env;
    MDB_txn *txn;
} raw_t;

static MDB_dbi raw_open(raw_t *r, const char *dir, const char *db)
{
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&r->env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(r->env, 16), 0);
    ck_assert_int_eq(mdb_env_open(r->env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
    return dbi;
}

static void raw_close(raw_t *r)
{
    ck_assert_int_eq(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

static void seq_key(unsigned char *k, uint64_t seq)
{
    for (int i = 7; i >= 0; i--, seq >>= 8)
        k[i] = (unsigned char)(seq & 0xFF);
}

/* Flip one byte at offset off of event seq's value (negative: from end). */
static void flip_event_byte(const char *dir, uint64_t seq, long off)
{
    raw_t r;
    MDB_dbi dbi = raw_open(&r, dir, "events");
    unsigned char kb[8];
    seq_key(kb, seq);
    MDB_val k = {8, kb}, v;
    ck_assert_int_eq(mdb_get(r.txn, dbi, &k, &v), 0);
    unsigned char *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    size_t pos = off >= 0 ? (size_t)off : v.mv_size - (size_t)(-off);
    copy[pos] ^= 0x01;
    MDB_val nv = {v.mv_size, copy};
    ck_assert_int_eq(mdb_put(r.txn, dbi, &k, &nv, 0), 0);
    free(copy);
    raw_close(&r);
}

static void delete_event(const char *dir, uint64_t seq)
{
    raw_t r;
    MDB_dbi dbi = raw_open(&r, dir, "events");
    unsigned char kb[8];
    seq_key(kb, seq);
    MDB_val k = {8, kb};
    ck_assert_int_eq(mdb_del(r.txn, dbi, &k, NULL), 0);
    raw_close(&r);
}

static audit_verify_t verify_store(const char *dir)
{
    audit_store_t *s = NULL;
    audit_verify_t v;
    char err[256];
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    ck_assert_msg(audit_verify(s, &v, err, sizeof(err)) == DPOP_OK, "verify: %s", err);
    audit_close(s);
    return v;
}

/* The store's chain verifies and holds exactly `events` events. */
static void assert_intact(audit_store_t *s, uint64_t events)
{
    audit_verify_t v;
    char err[256];
    ck_assert_msg(audit_verify(s, &v, err, sizeof(err)) == DPOP_OK, "verify: %s", err);
    ck_assert_msg(v.ok == 1, "not intact: %s", v.problem);
    ck_assert_uint_eq(v.events, events);
    audit_verify_clear(&v);
}

static void assert_dir_intact(const char *dir, uint64_t events)
{
    audit_store_t *s = NULL;
    char err[256];
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    assert_intact(s, events);
    audit_close(s);
}

/* 5 events: seq 1..5 at T0 + i s */
static void fill5(const char *dir)
{
    audit_store_t *s = open_rw(dir, 0);
    const char *jkts[] = {"JA", "JB", "JA", "JC", "JA"};
    for (int i = 0; i < 5; i++) {
        char jti[16];
        snprintf(jti, sizeof(jti), "jti-%d", i);
        audit_event_t e = mk_event(T0 + i * SEC, i == 3 ? "replay" : "bad_signature", jkts[i], jti,
                                   i < 2 ? "TH1" : "TH2", i % 2 ? "10.0.0.2" : "10.0.0.1", "web1");
        append_ok(s, &e);
    }
    audit_close(s);
}

/* ------------------------------------------------------------ write/read */

START_TEST(test_write_read_back)
{
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    audit_event_t e =
        mk_event(T0 + 123456, "htu_mismatch", "JKT1", "jti-1", "TH", "192.0.2.7", "web1");
    e.vhost = "api.example.com";
    e.request_id = "req-1";
    e.detail = "htu differs";
    e.iat = 1767261599;
    e.has_iat = 1;
    e.htm = "GET";
    e.htu = "https://api.example.com/x";
    e.alg = "ES256";
    e.token_sub = "svc";
    e.token_client_id = "client-1";
    e.policy_client = "billing-agent";
    e.user_agent = "curl/8";
    append_ok(s, &e);
    audit_event_t e2;
    memset(&e2, 0, sizeof(e2));
    e2.ts_us = T0 + 2 * SEC; /* every other field absent */
    append_ok(s, &e2);

    audit_iter_t *it = NULL;
    audit_record_t r = {0};
    char err[256];
    ck_assert_int_eq(audit_iter_open(&s, 1, NULL, &it, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 1);
    ck_assert_uint_eq(r.seq, 1);
    ck_assert_str_eq(audit_rec_str(&r, "ts"), "2026-01-01T10:00:00.123456Z");
    ck_assert_str_eq(audit_rec_str(&r, "host"), "web1");
    ck_assert_str_eq(audit_rec_str(&r, "vhost"), "api.example.com");
    ck_assert_int_eq(json_integer_value(json_object_get(r.ev, "pid")), 4242);
    ck_assert_str_eq(audit_rec_str(&r, "request_id"), "req-1");
    ck_assert_str_eq(audit_rec_str(&r, "client_ip"), "192.0.2.7");
    ck_assert_str_eq(audit_rec_str(&r, "reason"), "htu_mismatch");
    ck_assert_str_eq(audit_rec_str(&r, "error"), "invalid_dpop_proof");
    ck_assert_int_eq(json_integer_value(json_object_get(r.ev, "iat")), 1767261599);
    ck_assert_str_eq(audit_rec_str(&r, "policy_client"), "billing-agent");
    ck_assert_str_eq(audit_rec_str(&r, "mode"), "enforce");
    /* DESIGN.md field names in DESIGN.md order, nothing else; the table the
     * CSV header and audit-fill walk is that same list */
    static const char design[] = "ts,host,vhost,pid,request_id,client_ip,method,path,error,reason,"
                                 "detail,jkt,jti,iat,htm,htu,alg,token_hash,token_sub,"
                                 "token_client_id,policy_client,user_agent,mode";
    char got[512] = "", tab[512] = "";
    const char *k;
    json_t *v;
    json_object_foreach(r.ev, k, v)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", *got ? "," : "", k);
    ck_assert_str_eq(got, design);
    for (size_t i = 0; i < AUDIT_NFIELDS; i++)
        snprintf(tab + strlen(tab), sizeof(tab) - strlen(tab), "%s%s", i ? "," : "",
                 audit_event_fields()[i].name);
    ck_assert_str_eq(tab, design);
    audit_record_clear(&r);
    ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 1);
    ck_assert_uint_eq(r.seq, 2);
    json_object_foreach(r.ev, k, v)
    {
        if (strcmp(k, "ts") != 0)
            ck_assert_msg(json_is_null(v), "%s should be null", k);
    }
    audit_record_clear(&r);
    ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 0);
    audit_iter_close(it);

    audit_info_t info;
    ck_assert_int_eq(audit_info(s, &info, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(info.events, 2);
    ck_assert_uint_eq(info.next_seq, 3);
    ck_assert_uint_eq(info.chain_start, 1);
    ck_assert_int_eq(info.oldest_us, T0 + 123456);
    ck_assert_int_eq(info.newest_us, T0 + 2 * SEC);
    audit_close(s);
    rm_store(dir);
}
END_TEST

START_TEST(test_ts_zero_means_now)
{
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    audit_event_t e = mk_event(0, "replay", "J", "x", NULL, NULL, NULL);
    int64_t before = audit_now_us();
    append_ok(s, &e);
    audit_info_t info;
    char err[256];
    ck_assert_int_eq(audit_info(s, &info, err, sizeof(err)), DPOP_OK);
    ck_assert(info.newest_us >= before && info.newest_us <= before + 60 * SEC);
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* --------------------------------------------------------------- indexes */

typedef struct {
    audit_filter_t f;
    audit_plan_t plan;
    size_t count;
} ix_case_t;

START_TEST(test_index_lookups)
{
    char *dir = tmp_store();
    fill5(dir);
    audit_store_t *s = NULL;
    char err[256];
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    const ix_case_t cases[] = {
        {{.jkt = "JA"}, AUDIT_PLAN_JKT, 3},
        {{.jkt = "JB"}, AUDIT_PLAN_JKT, 1},
        {{.jkt = "nope"}, AUDIT_PLAN_EMPTY, 0},
        {{.jti = "jti-3"}, AUDIT_PLAN_JTI, 1},
        {{.token_hash = "TH2"}, AUDIT_PLAN_TOKEN_HASH, 3},
        {{.ip = "10.0.0.2"}, AUDIT_PLAN_IP, 2},
        {{.reason = "replay"}, AUDIT_PLAN_REASON, 1},
        {{.reason = "bad_signature"}, AUDIT_PLAN_REASON, 4},
        /* combined filters: the most selective index, then every filter */
        {{.jkt = "JA", .ip = "10.0.0.1"}, AUDIT_PLAN_JKT, 3},
        {{.jkt = "JA", .token_hash = "TH1"}, AUDIT_PLAN_TOKEN_HASH, 1}, /* 2 < 3 */
        {{.reason = "bad_signature", .jti = "jti-4"}, AUDIT_PLAN_JTI, 1},
        {{.reason = "replay", .jkt = "JA"}, AUDIT_PLAN_REASON, 0},
        {{.jkt = "JA", .jti = "nope"}, AUDIT_PLAN_EMPTY, 0},
        {{.jkt = ""}, AUDIT_PLAN_EMPTY, 0},
        /* time: since inclusive, until exclusive */
        {{.has_since = 1, .since_us = T0 + 1 * SEC}, AUDIT_PLAN_TIME, 4},
        {{.has_until = 1, .until_us = T0 + 1 * SEC}, AUDIT_PLAN_TIME, 1},
        {{.has_since = 1, .since_us = T0 + 1 * SEC, .has_until = 1, .until_us = T0 + 3 * SEC},
         AUDIT_PLAN_TIME,
         2},
        {{.has_since = 1, .since_us = T0 + 1, .has_until = 1, .until_us = T0 + SEC},
         AUDIT_PLAN_TIME,
         0},
        {{.jkt = "JA", .has_since = 1, .since_us = T0 + 1 * SEC}, AUDIT_PLAN_JKT, 2},
        {{0}, AUDIT_PLAN_TIME, 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        audit_plan_t plan;
        size_t n = count_query(&s, 1, &cases[i].f, &plan, NULL, 0);
        ck_assert_msg(n == cases[i].count, "case %zu: %zu results, want %zu", i, n, cases[i].count);
        ck_assert_msg(plan == cases[i].plan, "case %zu: plan %d, want %d", i, plan, cases[i].plan);
    }
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* Several values for one key are OR'ed, keys are AND'ed (issue 19 item 2:
 * the CLI's repeated --reason and comma lists). */
#define ANY(x, ...)                                                                                \
    .any[x] = {__VA_ARGS__}, .nany[x] = sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)

START_TEST(test_index_or)
{
    char *dir = tmp_store();
    fill5(dir);
    audit_store_t *s = NULL;
    char err[256];
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    const ix_case_t cases[] = {
        {{ANY(AUDIT_IX_JKT, "JB", "JC")}, AUDIT_PLAN_JKT, 2},
        {{.jkt = "JA", ANY(AUDIT_IX_JKT, "JB")}, AUDIT_PLAN_JKT, 4},
        {{ANY(AUDIT_IX_REASON, "replay", "bad_signature")}, AUDIT_PLAN_REASON, 5},
        {{ANY(AUDIT_IX_JKT, "JA", "JC"), ANY(AUDIT_IX_IP, "10.0.0.2")}, AUDIT_PLAN_IP, 1},
        {{ANY(AUDIT_IX_JKT, "nope", "JB")}, AUDIT_PLAN_JKT, 1},
        {{ANY(AUDIT_IX_JKT, "nope", "")}, AUDIT_PLAN_EMPTY, 0},
        {{ANY(AUDIT_IX_JKT, "")}, AUDIT_PLAN_EMPTY, 0},
        {{ANY(AUDIT_IX_JTI, "jti-1", "jti-1")}, AUDIT_PLAN_JTI, 1}, /* no duplicate rows */
        {{ANY(AUDIT_IX_TOKEN_HASH, "TH1", "TH2"), ANY(AUDIT_IX_REASON, "replay")},
         AUDIT_PLAN_REASON,
         1},
        {{ANY(AUDIT_IX_IP, "10.0.0.1", "10.0.0.2"), .has_since = 1, .since_us = T0 + 2 * SEC},
         AUDIT_PLAN_IP,
         3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        audit_plan_t plan;
        size_t n = count_query(&s, 1, &cases[i].f, &plan, NULL, 0);
        ck_assert_msg(n == cases[i].count, "case %zu: %zu results, want %zu", i, n, cases[i].count);
        ck_assert_msg(plan == cases[i].plan, "case %zu: plan %d, want %d", i, plan, cases[i].plan);
    }
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* Filter values the CLI refuses (audit_args.c). */
static const struct {
    const char *in, *suggest; /* NULL: no suggestion */
    int known;
} reason_cases[] = {
    {"replay", NULL, 1},
    {"key_revoked", NULL, 1},
    {"replya", "replay", 0}, /* transposition */
    {"Replay", "replay", 0}, /* case */
    {"htu_mismatc", "htu_mismatch", 0},
    {"bad_signatur", "bad_signature", 0},
    {"jkt_missmatch", "jkt_mismatch", 0},
    {"xyz", NULL, 0}, /* not close to anything */
    {"re", NULL, 0},  /* too short to guess */
    {"", NULL, 0},
};

START_TEST(test_args_reason)
{
    for (size_t i = 0; i < sizeof(reason_cases) / sizeof(reason_cases[0]); i++) {
        char msg[1024] = "";
        int rc = audit_args_reason(reason_cases[i].in, msg, sizeof(msg));
        ck_assert_msg((rc == DPOP_OK) == reason_cases[i].known, "case %zu", i);
        if (reason_cases[i].known)
            continue;
        const char *sug = audit_args_reason_suggest(reason_cases[i].in);
        if (reason_cases[i].suggest) {
            ck_assert_msg(sug && strcmp(sug, reason_cases[i].suggest) == 0, "case %zu: %s", i,
                          sug ? sug : "(none)");
            char want[128];
            snprintf(want, sizeof(want), "(did you mean '%s'?)", reason_cases[i].suggest);
            ck_assert_msg(strstr(msg, want), "case %zu: %s", i, msg);
        }
        else {
            ck_assert_msg(sug == NULL, "case %zu: suggested %s", i, sug);
            ck_assert_msg(strstr(msg, "reasons: missing_proof") && strstr(msg, "key_revoked"),
                          "case %zu: %s", i, msg);
        }
    }
}
END_TEST

START_TEST(test_args_ip)
{
    static const struct {
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        {"192.0.2.10", "192.0.2.10"},
        {"::1", "::1"},
        {"2001:DB8:0:0::1", "2001:db8::1"},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
        {"999.1.1.1", NULL},
        {"1.2.3", NULL},
        {"10.0.0.0/8", NULL},
        {"web1", NULL},
        {"", NULL},
        {"1.2.3.4 ", NULL},
        {"2001:db8::g", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64] = "";
        int rc = audit_args_ip(cases[i].in, out, sizeof(out));
        if (!cases[i].out) {
            ck_assert_msg(rc == DPOP_ERR, "case %zu accepted", i);
            continue;
        }
        ck_assert_msg(rc == DPOP_OK, "case %zu refused", i);
        ck_assert_str_eq(out, cases[i].out);
    }
}
END_TEST

START_TEST(test_key_plan_orders_by_time)
{
    /* events appended out of time order come back sorted by time */
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    int64_t ts[] = {5, 1, 4, 2, 3};
    for (int i = 0; i < 5; i++) {
        audit_event_t e = mk_event(T0 + ts[i] * SEC, "replay", "JK", NULL, NULL, NULL, NULL);
        append_ok(s, &e);
    }
    uint64_t seqs[5];
    audit_filter_t f = {.jkt = "JK"};
    ck_assert_uint_eq(count_query(&s, 1, &f, NULL, seqs, 5), 5);
    ck_assert_uint_eq(seqs[0], 2);
    ck_assert_uint_eq(seqs[1], 4);
    ck_assert_uint_eq(seqs[2], 5);
    ck_assert_uint_eq(seqs[3], 3);
    ck_assert_uint_eq(seqs[4], 1);
    audit_filter_t all = {0};
    ck_assert_uint_eq(count_query(&s, 1, &all, NULL, seqs, 5), 5);
    ck_assert_uint_eq(seqs[0], 2);
    audit_close(s);
    rm_store(dir);
}
END_TEST

START_TEST(test_multi_store_merge)
{
    char *d1 = tmp_store(), *d2 = tmp_store();
    audit_store_t *st[2] = {open_rw(d1, 0), open_rw(d2, 0)};
    for (int i = 0; i < 6; i++) {
        audit_event_t e =
            mk_event(T0 + i * SEC, "replay", "JM", NULL, NULL, NULL, i % 2 ? "web2" : "web1");
        append_ok(st[i % 2], &e);
    }
    audit_iter_t *it = NULL;
    audit_record_t r = {0};
    char err[256];
    audit_filter_t f = {.jkt = "JM"};
    ck_assert_int_eq(audit_iter_open(st, 2, &f, &it, err, sizeof(err)), DPOP_OK);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 1);
        ck_assert_int_eq(r.ts_us, T0 + i * SEC);
        ck_assert_uint_eq(r.store, (size_t)(i % 2));
        ck_assert_str_eq(audit_rec_str(&r, "host"), i % 2 ? "web2" : "web1");
        audit_record_clear(&r);
    }
    ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 0);
    audit_iter_close(it);
    audit_close(st[0]);
    audit_close(st[1]);
    rm_store(d1);
    rm_store(d2);
}
END_TEST

/* ----------------------------------------------------------------- chain */

START_TEST(test_verify_intact)
{
    char *dir = tmp_store();
    fill5(dir);
    audit_verify_t v = verify_store(dir);
    ck_assert_int_eq(v.ok, 1);
    ck_assert_uint_eq(v.events, 5);
    ck_assert_ptr_null(v.bad_event);
    audit_verify_clear(&v);
    /* the head reported by verify is the one in meta (audit_info) */
    audit_store_t *s = open_rw(dir, 0);
    audit_info_t info;
    char err[256];
    ck_assert_int_eq(audit_info(s, &info, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(memcmp(info.head, v.head, 32), 0);
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* Raw index edit: delete (put = 0) or add (put = 1) key -> seq in db. */
static void edit_index(const char *dir, const char *db, const char *key, uint64_t seq, int put)
{
    raw_t r;
    MDB_dbi dbi = raw_open(&r, dir, db);
    unsigned char kb[8];
    seq_key(kb, seq);
    MDB_val k = {strlen(key), (void *)key}, v = {8, kb};
    ck_assert_int_eq(put ? mdb_put(r.txn, dbi, &k, &v, 0) : mdb_del(r.txn, dbi, &k, &v), 0);
    raw_close(&r);
}

/* Tampering done on fill5's store, and what verify must say about it. */
typedef enum { FLIP_BYTE, DELETE_EVENT, INDEX_DEL, INDEX_PUT } tamper_kind_t;
typedef struct {
    tamper_kind_t kind;
    uint64_t seq;
    long off;             /* FLIP_BYTE: offset in the value (negative: from end) */
    const char *db, *key; /* INDEX_*: index database and key */
    uint64_t bad_seq;     /* what verify must point at */
    const char *problem;  /* a word its explanation must hold, or NULL */
    int has_event;        /* verify must show the bad event's JSON */
} tamper_t;

static const tamper_t tampers[] = {
    {FLIP_BYTE, 3, -5, NULL, NULL, 3, "altered", 1}, /* inside the JSON of event 3 */
    {FLIP_BYTE, 2, 8, NULL, NULL, 2, NULL, 0},       /* ts_us header byte */
    {FLIP_BYTE, 4, 9, NULL, NULL, 4, "prev hash", 0},
    {DELETE_EVENT, 2, 0, NULL, NULL, 2, "missing", 0},
    /* deleting the newest event is caught by the meta head/next_seq */
    {DELETE_EVENT, 5, 0, NULL, NULL, 5, NULL, 0},
    /* deleting the first event (without recording a prune) too */
    {DELETE_EVENT, 1, 0, NULL, NULL, 1, NULL, 0},
    /* an event removed from its jkt index */
    {INDEX_DEL, 3, 0, "ix_jkt", "JA", 3, "jkt", 0},
    /* a stray entry pointing an IP at the wrong event */
    {INDEX_PUT, 2, 0, "ix_client_ip", "203.0.113", 2, "client_ip", 0},
};

START_TEST(test_verify_catches_tampering)
{
    const tamper_t *t = &tampers[_i];
    char *dir = tmp_store();
    fill5(dir);
    if (t->kind == FLIP_BYTE)
        flip_event_byte(dir, t->seq, t->off);
    else if (t->kind == DELETE_EVENT)
        delete_event(dir, t->seq);
    else
        edit_index(dir, t->db, t->key, t->seq, t->kind == INDEX_PUT);
    audit_verify_t v = verify_store(dir);
    ck_assert_msg(v.ok == 0, "case %d: tampering not detected", _i);
    ck_assert_uint_eq(v.bad_seq, t->bad_seq);
    if (t->problem)
        ck_assert_msg(strstr(v.problem, t->problem), "case %d: %s", _i, v.problem);
    if (t->has_event)
        ck_assert_ptr_nonnull(v.bad_event);
    audit_verify_clear(&v);
    rm_store(dir);
}
END_TEST

/* ----------------------------------------------------------------- prune */

START_TEST(test_prune_then_verify)
{
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    char err[256];
    for (int i = 0; i < 10; i++) {
        char jkt[8];
        snprintf(jkt, sizeof(jkt), "K%d", i);
        audit_event_t e = mk_event(T0 + i * SEC, "bad_signature", jkt, jkt, "TH", "10.1.1.1", "h");
        append_ok(s, &e);
    }
    uint64_t deleted = 0;
    ck_assert_int_eq(audit_prune(s, T0 + 5 * SEC, &deleted, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(deleted, 5);
    assert_intact(s, 5);
    audit_info_t info;
    ck_assert_int_eq(audit_info(s, &info, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(info.chain_start, 6);
    ck_assert_int_eq(info.oldest_us, T0 + 5 * SEC);
    /* index entries of pruned events are gone too */
    audit_filter_t f = {.jkt = "K2"};
    audit_plan_t plan;
    ck_assert_uint_eq(count_query(&s, 1, &f, &plan, NULL, 0), 0);
    ck_assert_int_eq(plan, AUDIT_PLAN_EMPTY);
    audit_filter_t th = {.token_hash = "TH"};
    ck_assert_uint_eq(count_query(&s, 1, &th, NULL, NULL, 0), 5);
    /* pruning again at the same time is a no-op */
    ck_assert_int_eq(audit_prune(s, T0 + 5 * SEC, &deleted, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(deleted, 0);
    /* appends continue the chain after a prune */
    audit_event_t e = mk_event(T0 + 20 * SEC, "replay", "K20", "x", NULL, NULL, NULL);
    append_ok(s, &e);
    assert_intact(s, 6);
    /* prune everything: an empty but verifiable store */
    ck_assert_int_eq(audit_prune(s, T0 + 100 * SEC, &deleted, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(deleted, 6);
    assert_intact(s, 0);
    audit_close(s);
    rm_store(dir);
}
END_TEST

START_TEST(test_prune_large_in_chunks)
{
    /* more events than one prune transaction handles */
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    char err[256];
    enum { N = 5000 };
    audit_event_t *evs = calloc(N, sizeof(*evs));
    const audit_event_t **p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++) {
        evs[i] = mk_event(T0 + i, "bad_signature", "KK", NULL, NULL, "10.0.0.9", "h");
        p[i] = &evs[i];
    }
    ck_assert_int_eq(audit_append_batch(s, p, N, err, sizeof(err)), DPOP_OK);
    uint64_t deleted = 0;
    ck_assert_int_eq(audit_prune(s, T0 + 4500, &deleted, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(deleted, 4500);
    assert_intact(s, 500);
    audit_close(s);
    free(evs);
    free(p);
    rm_store(dir);
}
END_TEST

START_TEST(test_prune_refuses_broken_chain)
{
    char *dir = tmp_store();
    fill5(dir);
    delete_event(dir, 1);
    audit_store_t *s = open_rw(dir, 0);
    char err[256];
    uint64_t deleted = 0;
    ck_assert_int_eq(audit_prune(s, T0 + 100 * SEC, &deleted, err, sizeof(err)),
                     AUDIT_ERR_TAMPERED);
    ck_assert_ptr_nonnull(strstr(err, "not contiguous"));
    ck_assert_uint_eq(deleted, 0);
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* Prune over an altered event: issue 19 item 1.  Before the fix prune
 * checked only that seqs were contiguous, deleted the altered event, and
 * verify then passed. */
typedef struct {
    uint64_t seq; /* event altered (fill5: seq i at T0 + (i-1) s) */
    long off;     /* byte flipped in its value (negative: from the end) */
    int64_t before_s;
    int refused;         /* prune must delete nothing and say which event */
    uint64_t left;       /* events stored afterwards */
    uint64_t verify_bad; /* verify afterwards fails here (0: intact) */
} prune_tamper_t;

static const prune_tamper_t prune_tampers[] = {
    {2, -5, 4, 1, 5, 2},  /* JSON of a deleted event */
    {3, 8, 4, 1, 5, 3},   /* its ts header (decides what is pruned) */
    {4, 9, 4, 1, 5, 4},   /* the prev link of the last deleted one */
    {5, -5, 4, 1, 5, 5},  /* the first event kept: the checkpoint links to it */
    {5, -5, 2, 0, 3, 5},  /* outside the pruned range: pruned, and still reported */
    {1, 41, 100, 1, 5, 1} /* the stored hash of the first event, pruning all */
};

START_TEST(test_prune_refuses_tampered)
{
    const prune_tamper_t *t = &prune_tampers[_i];
    char *dir = tmp_store();
    char err[256] = "";
    uint64_t deleted = 99;
    fill5(dir);
    flip_event_byte(dir, t->seq, t->off);
    audit_store_t *s = open_rw(dir, 0);
    int rc = audit_prune(s, T0 + t->before_s * SEC, &deleted, err, sizeof(err));
    if (t->refused) {
        ck_assert_msg(rc == AUDIT_ERR_TAMPERED, "case %d: prune returned %d", _i, rc);
        ck_assert_uint_eq(deleted, 0);
        char want[32];
        snprintf(want, sizeof(want), "event seq %llu", (unsigned long long)t->seq);
        ck_assert_msg(strstr(err, want), "case %d: %s", _i, err);
    }
    else {
        ck_assert_msg(rc == DPOP_OK, "case %d: %s", _i, err);
    }
    audit_info_t info;
    ck_assert_int_eq(audit_info(s, &info, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(info.events, t->left);
    audit_verify_t v;
    ck_assert_int_eq(audit_verify(s, &v, err, sizeof(err)), DPOP_OK);
    ck_assert_msg(v.ok == 0, "case %d: verify passes after prune", _i);
    ck_assert_uint_eq(v.bad_seq, t->verify_bad);
    audit_verify_clear(&v);
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* Raw meta edit: put (val != NULL) or delete key. */
static void edit_meta(const char *dir, const void *key, size_t klen, const void *val, size_t vlen)
{
    raw_t r;
    MDB_dbi dbi = raw_open(&r, dir, "meta");
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    ck_assert_int_eq(val ? mdb_put(r.txn, dbi, &k, &v, 0) : mdb_del(r.txn, dbi, &k, NULL), 0);
    raw_close(&r);
}

static void ckpt_key(unsigned char *k, uint64_t seq)
{
    memcpy(k, "ckpt", 4);
    seq_key(k + 4, seq);
}

/* 6 events, the head after each (heads[i] = hash of seq i + 1). */
static void fill6_heads(const char *dir, unsigned char heads[6][32])
{
    audit_store_t *s = open_rw(dir, 0);
    char err[256];
    for (int i = 0; i < 6; i++) {
        audit_event_t e = mk_event(T0 + i * SEC, "replay", "JK", NULL, NULL, NULL, NULL);
        audit_info_t info;
        append_ok(s, &e);
        ck_assert_int_eq(audit_info(s, &info, err, sizeof(err)), DPOP_OK);
        memcpy(heads[i], info.head, 32);
    }
    audit_close(s);
}

START_TEST(test_prune_checkpoint)
{
    char *dir = tmp_store();
    unsigned char heads[6][32], other[32] = {1};
    char err[256];
    uint64_t deleted = 0, seq = 0;
    fill6_heads(dir, heads);
    audit_store_t *s = open_rw(dir, 0);
    /* every stored event's hash is on the chain */
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(audit_find_hash(s, heads[i], &seq, err, sizeof(err)), 1);
        ck_assert_uint_eq(seq, (uint64_t)i + 1);
    }
    ck_assert_int_eq(audit_find_hash(s, other, &seq, err, sizeof(err)), 0);
    audit_verify_t v;
    ck_assert_int_eq(audit_verify(s, &v, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(v.has_ckpt, 0);
    ck_assert_uint_eq(v.head_seq, 6);
    /* prune 1..3: the checkpoint is seq 3, and the chain continues from it */
    ck_assert_int_eq(audit_prune(s, T0 + 3 * SEC, &deleted, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(deleted, 3);
    ck_assert_int_eq(audit_verify(s, &v, err, sizeof(err)), DPOP_OK);
    ck_assert_msg(v.ok, "%s", v.problem);
    ck_assert_int_eq(v.has_ckpt, 1);
    ck_assert_uint_eq(v.ckpt_seq, 3);
    ck_assert_int_eq(memcmp(v.ckpt, heads[2], 32), 0);
    ck_assert_int_eq(memcmp(v.head, heads[5], 32), 0);
    ck_assert_uint_eq(v.head_seq, 6);
    /* a head recorded before the prune: found as the checkpoint or as an
     * event kept; one pruned past is no longer provable */
    ck_assert_int_eq(audit_find_hash(s, heads[2], &seq, err, sizeof(err)), 1);
    ck_assert_uint_eq(seq, 3);
    ck_assert_int_eq(audit_find_hash(s, heads[4], &seq, err, sizeof(err)), 1);
    ck_assert_uint_eq(seq, 5);
    ck_assert_int_eq(audit_find_hash(s, heads[1], &seq, err, sizeof(err)), 0);
    /* a second prune keeps the first checkpoint too */
    ck_assert_int_eq(audit_prune(s, T0 + 5 * SEC, &deleted, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(deleted, 2);
    ck_assert_int_eq(audit_find_hash(s, heads[2], &seq, err, sizeof(err)), 1);
    ck_assert_int_eq(audit_find_hash(s, heads[4], &seq, err, sizeof(err)), 1);
    ck_assert_uint_eq(seq, 5);
    assert_intact(s, 1);
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* The checkpoint is part of what verify checks: altering, removing or
 * faking one is caught. */
typedef enum { CK_ALTER, CK_DELETE, CK_FUTURE, CK_FAKE_PRUNE } ck_tamper_t;

START_TEST(test_checkpoint_tampering)
{
    char *dir = tmp_store();
    unsigned char heads[6][32], key[12], val[40] = {0};
    char err[256];
    uint64_t deleted = 0;
    fill6_heads(dir, heads);
    if (_i != CK_FAKE_PRUNE) {
        audit_store_t *s = open_rw(dir, 0);
        ck_assert_int_eq(audit_prune(s, T0 + 3 * SEC, &deleted, err, sizeof(err)), DPOP_OK);
        audit_close(s);
    }
    switch ((ck_tamper_t)_i) {
    case CK_ALTER: /* another hash at the checkpoint */
        ckpt_key(key, 3);
        memset(val, 0x42, 32);
        edit_meta(dir, key, 12, val, 40);
        break;
    case CK_DELETE:
        ckpt_key(key, 3);
        edit_meta(dir, key, 12, NULL, 0);
        break;
    case CK_FUTURE: /* a checkpoint claiming events still stored */
        ckpt_key(key, 5);
        memcpy(val, heads[4], 32);
        edit_meta(dir, key, 12, val, 40);
        break;
    case CK_FAKE_PRUNE: { /* remove event 1 and move the chain start by hand */
        unsigned char b[8];
        delete_event(dir, 1);
        seq_key(b, 2);
        edit_meta(dir, "chain_start", 11, b, 8);
        edit_meta(dir, "chain_prev", 10, heads[0], 32);
        break;
    }
    }
    audit_verify_t v = verify_store(dir);
    ck_assert_msg(v.ok == 0, "case %d: not detected", _i);
    ck_assert_msg(strstr(v.problem, "checkpoint"), "case %d: %s", _i, v.problem);
    audit_verify_clear(&v);
    rm_store(dir);
}
END_TEST

/* A data.mdb cut short (a partial rsync copy): LMDB would read the missing
 * pages through its map and die of SIGBUS; the store must instead refuse
 * with a message and say it is damaged.  Forked so a SIGBUS fails the test
 * rather than killing the runner. */
typedef enum { CUT_THIRD, CUT_EMPTY, CUT_AFTER_OPEN } cut_t;

static void cut_file(const char *dir, cut_t how)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, how == CUT_EMPTY ? 0 : st.st_size / 3), 0);
}

START_TEST(test_truncated_store)
{
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    char err[256];
    enum { N = 3000 };
    audit_event_t *evs = calloc(N, sizeof(*evs));
    const audit_event_t **p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++) {
        evs[i] = mk_event(T0 + i, "bad_signature", "KK", NULL, NULL, "10.0.0.9", "h");
        p[i] = &evs[i];
    }
    ck_assert_int_eq(audit_append_batch(s, p, N, err, sizeof(err)), DPOP_OK);
    audit_close(s);
    free(evs);
    free(p);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        audit_store_t *r = NULL;
        audit_verify_t v;
        int rc;
        if (_i != CUT_AFTER_OPEN) {
            cut_file(dir, (cut_t)_i);
            rc = audit_open(dir, 0, AUDIT_OPEN_RDONLY, &r, err, sizeof(err));
            _exit(rc == AUDIT_ERR_DAMAGED && !r &&
                          (strstr(err, "truncated") || strstr(err, "too short"))
                      ? 0
                      : 10);
        }
        if (audit_open(dir, 0, AUDIT_OPEN_RDONLY, &r, err, sizeof(err)) != DPOP_OK)
            _exit(11);
        cut_file(dir, CUT_THIRD);
        rc = audit_verify(r, &v, err, sizeof(err));
        _exit(rc == DPOP_ERR && audit_store_damaged(r) && strstr(err, "truncated") ? 0 : 12);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "case %d: killed by signal %d", _i,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_msg(WEXITSTATUS(status) == 0, "case %d: exit %d", _i, WEXITSTATUS(status));
    rm_store(dir);
}
END_TEST

/* -------------------------------------------------------------- map full */

START_TEST(test_map_full_keeps_store_intact)
{
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 256 * 1024);
    char err[256], ua[600];
    memset(ua, 'u', sizeof(ua) - 1);
    ua[sizeof(ua) - 1] = '\0';
    int ok = 0, failed = 0;
    for (int i = 0; i < 5000 && !failed; i++) {
        char jti[32];
        snprintf(jti, sizeof(jti), "jti-%d", i);
        audit_event_t e = mk_event(T0 + i, "replay", jti, jti, jti, "10.0.0.1", "web1");
        e.user_agent = ua;
        e.detail = ua;
        if (audit_append(s, &e, err, sizeof(err)) == DPOP_OK)
            ok++;
        else
            failed = 1;
    }
    ck_assert_msg(failed, "the tiny map never filled");
    ck_assert_msg(strstr(err, "MDB_MAP_FULL") != NULL, "error: %s", err);
    ck_assert_int_gt(ok, 10);
    /* a batch fails as a whole: nothing of it is stored */
    audit_event_t e = mk_event(T0, "replay", "x", "y", "z", "10.0.0.1", "web1");
    e.user_agent = ua;
    e.detail = ua;
    e.path = ua;
    const audit_event_t *two[2] = {&e, &e};
    ck_assert_int_eq(audit_append_batch(s, two, 2, err, sizeof(err)), DPOP_ERR);
    audit_close(s);

    /* earlier events intact and readable, the chain verifies */
    assert_dir_intact(dir, (uint64_t)ok);
    audit_store_t *r = NULL;
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &r, err, sizeof(err)), DPOP_OK);
    audit_filter_t f = {.jti = "jti-0"};
    ck_assert_uint_eq(count_query(&r, 1, &f, NULL, NULL, 0), 1);
    audit_filter_t all = {0};
    ck_assert_uint_eq(count_query(&r, 1, &all, NULL, NULL, 0), (size_t)ok);
    audit_close(r);
    /* a larger map on the next open makes room again */
    s = open_rw(dir, 4 * 1024 * 1024);
    append_ok(s, &e);
    audit_close(s);
    assert_dir_intact(dir, (uint64_t)ok + 1);
    rm_store(dir);
}
END_TEST

/* ---------------------------------------------------------- concurrency */

START_TEST(test_concurrent_processes)
{
    enum { PROCS = 4, EACH = 300 };
    char *dir = tmp_store();
    audit_close(open_rw(dir, 0)); /* create, then close before fork */
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            /* each process opens its own environment after fork */
            char err[256], jkt[16];
            int bad = 0;
            snprintf(jkt, sizeof(jkt), "P%d", p);
            if (p % 2 == 0) {
                audit_store_t *s = NULL;
                if (audit_open(dir, 0, AUDIT_OPEN_RDWR, &s, err, sizeof(err)) != DPOP_OK)
                    _exit(2);
                for (int i = 0; i < EACH; i++) {
                    audit_event_t e = mk_event(T0 + i, "replay", jkt, NULL, NULL, NULL, NULL);
                    bad |= audit_append(s, &e, err, sizeof(err)) != DPOP_OK;
                }
                audit_close(s);
            }
            else {
                audit_writer_t *w = NULL;
                if (audit_writer_start(dir, 0, 4096, &w, err, sizeof(err)) != DPOP_OK)
                    _exit(2);
                for (int i = 0; i < EACH; i++) {
                    audit_event_t e = mk_event(T0 + i, "replay", jkt, NULL, NULL, NULL, NULL);
                    bad |= audit_writer_submit(w, &e) != DPOP_OK;
                }
                audit_writer_stop(w);
            }
            _exit(bad ? 1 : 0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        ck_assert_int_eq(waitpid(pids[p], &st, 0), pids[p]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed", p);
    }
    assert_dir_intact(dir, PROCS * EACH);
    audit_store_t *s = NULL;
    char err[256];
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    for (int p = 0; p < PROCS; p++) {
        char jkt[16];
        snprintf(jkt, sizeof(jkt), "P%d", p);
        audit_filter_t f = {.jkt = jkt};
        ck_assert_uint_eq(count_query(&s, 1, &f, NULL, NULL, 0), EACH);
    }
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* ---------------------------------------------------- bounds, sanitizing */

START_TEST(test_bounds_and_sanitizing)
{
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    char *ua = malloc(5000), *jti = malloc(1000);
    memset(ua, 'A', 4999);
    ua[4999] = '\0';
    memset(jti, 'j', 999);
    jti[999] = '\0';
    audit_event_t e = mk_event(T0, "replay", "J", jti, NULL, "10.0.0.1", "h");
    e.user_agent = ua;
    e.detail = "bad \xff\xfe utf8 \x01 ctl \"q\" \\ <b>";
    e.path = "/caf\xc3\xa9/\xe2\x82"; /* valid é, then a truncated sequence */
    append_ok(s, &e);
    audit_record_t r = {0};
    audit_iter_t *it = NULL;
    char err[256];
    ck_assert_int_eq(audit_iter_open(&s, 1, NULL, &it, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 1);
    const char *sua = audit_rec_str(&r, "user_agent");
    ck_assert_uint_eq(strlen(sua), 512);
    ck_assert_ptr_nonnull(strstr(sua, AUDIT_TRUNC_MARKER));
    ck_assert_uint_eq(strlen(audit_rec_str(&r, "jti")), 256);
    ck_assert_str_eq(audit_rec_str(&r, "detail"),
                     "bad \xef\xbf\xbd\xef\xbf\xbd utf8 \x01 ctl \"q\" \\ <b>");
    ck_assert_str_eq(audit_rec_str(&r, "path"), "/caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd");
    audit_record_clear(&r);
    audit_iter_close(it);
    /* the full over-long jti finds its truncated stored form */
    audit_filter_t f = {.jti = jti};
    ck_assert_uint_eq(count_query(&s, 1, &f, NULL, NULL, 0), 1);
    audit_close(s);
    free(ua);
    free(jti);
    rm_store(dir);
}
END_TEST

START_TEST(test_field_clean_utf8_boundary)
{
    /* truncation never splits a multi-byte character */
    char in[64], out[64];
    for (int i = 0; i < 20; i++)
        memcpy(in + 2 * i, "\xc3\xa9", 2);
    in[40] = '\0';
    size_t lim = 14 + 5; /* marker (14) + 5 bytes: 2 whole "é" fit */
    size_t n = audit_field_clean(in, 40, lim, out, sizeof(out));
    ck_assert_uint_eq(n, 4 + 14);
    ck_assert_int_eq(memcmp(out, "\xc3\xa9\xc3\xa9" AUDIT_TRUNC_MARKER, n), 0);
    /* overlong encoding and surrogates are invalid (RFC 3629) */
    n = audit_field_clean("\xc0\xaf\xed\xa0\x80", 5, 100, out, sizeof(out));
    ck_assert_str_eq(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    ck_assert_uint_eq(n, 15);
}
END_TEST

/* ------------------------------------------------------ JWS redaction */

#define JWS_H "eyJhbGciOiJFUzI1NiIsInR5cCI6ImRwb3Arand0In0"
#define JWS_P "eyJqdGkiOiJ4IiwiaHRtIjoiR0VUIn0"
#define JWS_S "c2lnbmF0dXJl"

typedef struct {
    const char *in;
    int redacted; /* the JWS must be gone, a marker in its place */
} jws_case_t;

static const jws_case_t jws_cases[] = {
    {"Bearer " JWS_H "." JWS_P "." JWS_S, 1},
    {"/cb/" JWS_H "." JWS_P "." JWS_S "/x", 1},
    {"proof=" JWS_H "." JWS_P ".", 1},           /* unsecured: empty signature */
    {JWS_H "." JWS_P "." JWS_S ".aaaa.bbbb", 1}, /* JWE: five parts */
    {"x" JWS_H "." JWS_P "." JWS_S, 1},          /* glued to other base64url */
    {"ua " JWS_H "." JWS_P, 1},                  /* cut after the payload */
    {"/static/app.min.js", 0},                   /* dots, but no JOSE header */
    {"/v1/eyJ.ab.cd", 0},                        /* header too short */
    {"eyJhbGciOiJFUzI1NiJ9.x.y", 0},             /* payload too short */
    {"aGVsbG8gd29ybGQ.aGVsbG8.aGVsbG8", 0},      /* base64url, not JOSE */
    {"1.2.3 and 10.0.0.1 and api.example.com", 0},
};

START_TEST(test_jws_redacted)
{
    const jws_case_t *c = &jws_cases[_i];
    char out[600];
    size_t n = audit_field_clean(c->in, strlen(c->in), 512, out, sizeof(out));
    ck_assert_uint_eq(n, strlen(out));
    if (c->redacted) {
        ck_assert_msg(strstr(out, JWS_H) == NULL && strstr(out, JWS_P) == NULL, "%s", out);
        ck_assert_msg(strstr(out, "[redacted JWS sha256:") != NULL, "%s", out);
    }
    else {
        ck_assert_str_eq(out, c->in);
    }
}
END_TEST

START_TEST(test_jws_never_stored)
{
    /* every string field, through the store: the marker holds the token's
     * ath (base64url SHA-256), so it correlates with token_hash */
    static const char jws[] = JWS_H "." JWS_P "." JWS_S;
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    audit_event_t e = mk_event(T0, "replay", "J", jws, NULL, "10.0.0.1", "h");
    e.detail = "proof " JWS_H "." JWS_P "." JWS_S " rejected";
    e.user_agent = e.detail;
    e.path = "/t/" JWS_H "." JWS_P "." JWS_S;
    e.htu = "https://a.example/?access_token=" JWS_H "." JWS_P "." JWS_S;
    append_ok(s, &e);
    audit_record_t r = {0};
    audit_iter_t *it = NULL;
    char err[256];
    ck_assert_int_eq(audit_iter_open(&s, 1, NULL, &it, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 1);
    char *js = json_dumps(r.ev, 0);
    ck_assert_ptr_null(strstr(js, JWS_P));
    ck_assert_ptr_null(strstr(js, JWS_S));
    /* base64url(SHA-256(jws)), computed independently through EVP */
    unsigned char md[32], b64[48];
    ck_assert_int_eq(EVP_Digest(jws, strlen(jws), md, NULL, EVP_sha256(), NULL), 1);
    EVP_EncodeBlock(b64, md, 32);
    for (int i = 0; i < 43; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    b64[43] = '\0';
    char want[128];
    snprintf(want, sizeof(want), "[redacted JWS sha256:%s]", (char *)b64);
    ck_assert_str_eq(audit_rec_str(&r, "jti"), want);
    snprintf(want, sizeof(want), "proof [redacted JWS sha256:%s] rejected", (char *)b64);
    ck_assert_str_eq(audit_rec_str(&r, "detail"), want);
    ck_assert_str_eq(audit_rec_str(&r, "user_agent"), want);
    free(js);
    audit_record_clear(&r);
    audit_iter_close(it);
    /* a lookup by the raw jws finds the redacted event (same cleaning) */
    audit_filter_t f = {.jti = jws};
    ck_assert_uint_eq(count_query(&s, 1, &f, NULL, NULL, 0), 1);
    audit_close(s);
    rm_store(dir);
}
END_TEST

/* Issue 15 item 6: no stored field keeps a URL's query or fragment (an
 * `?api_key=...` is a credential as much as a token is).  htu is a URL:
 * cut at its first '?' or '#' (RFC 3986 §3.4, §3.5).  Free-text fields
 * (detail, user agent) may quote URLs: each one loses its query and
 * fragment up to the next blank or quote.  The path comes without query
 * (r->uri) and is stored as given. */
typedef struct {
    const char *field;
    const char *in;
    const char *want;
} url_case_t;

static const url_case_t url_cases[] = {
    {"htu", "https://api.example/x?api_key=SECRETQ1#frag", "https://api.example/x"},
    {"htu", "https://api.example/x#SECRETF1", "https://api.example/x"},
    {"htu", "https://api.example/x?", "https://api.example/x"},
    {"htu", "?SECRETQ2", NULL}, /* nothing left: absent */
    {"htu", "not a url?SECRETQ3", "not a url"},
    {"htu", "https://api.example/a/b", "https://api.example/a/b"},
    {"detail", "htu https://a.example/p?token=SECRETQ4 differs", "htu https://a.example/p differs"},
    {"detail", "see HTTP://A.example/p#SECRETF2\tnow", "see HTTP://A.example/p\tnow"},
    {"detail", "u=\"wss://h/p?k=SECRETQ5\" x", "u=\"wss://h/p\" x"},
    {"detail", "a?b no url here", "a?b no url here"},
    {"user_agent", "bot/1 (+https://bot.example/info?key=SECRETQ6)",
     "bot/1 (+https://bot.example/info"},
    {"user_agent", "curl/8.5 https://x/?a=SECRETQ7 https://y/#SECRETF3 end",
     "curl/8.5 https://x/ https://y/ end"},
    {"user_agent", "Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (X11; Linux)"},
};

START_TEST(test_url_queries_never_stored)
{
    const url_case_t *c = &url_cases[_i];
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    audit_event_t e = mk_event(T0, "htu_mismatch", "J", "jti-u", NULL, "10.0.0.1", "h");
    if (!strcmp(c->field, "htu"))
        e.htu = c->in;
    else if (!strcmp(c->field, "detail"))
        e.detail = c->in;
    else
        e.user_agent = c->in;
    append_ok(s, &e);
    audit_record_t r = {0};
    audit_iter_t *it = NULL;
    char err[256];
    ck_assert_int_eq(audit_iter_open(&s, 1, NULL, &it, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(audit_iter_next(it, &r, err, sizeof(err)), 1);
    char *js = json_dumps(r.ev, 0);
    ck_assert_msg(strstr(js, "SECRET") == NULL, "%s kept a query: %s", c->field, js);
    if (c->want)
        ck_assert_str_eq(audit_rec_str(&r, c->field), c->want);
    else
        ck_assert_ptr_null(audit_rec_str(&r, c->field));
    ck_assert_str_eq(audit_rec_str(&r, "path"), "/api/x");
    free(js);
    audit_record_clear(&r);
    audit_iter_close(it);
    audit_close(s);
    rm_store(dir);
}
END_TEST

START_TEST(test_jws_scan_is_linear)
{
    /* 1 MB of near-JWS (a header, a too-short payload) must not take
     * quadratic time */
    enum { N = 1 << 20 };
    char *in = malloc(N + 1), out[600];
    for (size_t i = 0; i < N; i++)
        in[i] = "eyJaaaaa.b."[i % 11];
    in[N] = '\0';
    audit_field_clean(in, N, 512, out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(out, AUDIT_TRUNC_MARKER));
    free(in);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_open_errors)
{
    audit_store_t *s = NULL;
    char err[256];
    char *dir = tmp_store();
    char path[512];
    snprintf(path, sizeof(path), "%s/missing", dir);
    /* read-only never creates */
    ck_assert_int_eq(audit_open(path, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err, path));
    /* a file where the directory should be */
    snprintf(path, sizeof(path), "%s/file", dir);
    FILE *fp = fopen(path, "w");
    fputs("x", fp);
    fclose(fp);
    ck_assert_int_eq(audit_open(path, 0, AUDIT_OPEN_RDWR, &s, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(err, "not a directory"));
    unlink(path);
    ck_assert_int_eq(audit_open(NULL, 0, AUDIT_OPEN_RDWR, &s, err, sizeof(err)), DPOP_ERR);
    /* an empty LMDB directory opened read-only: not a store yet */
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_ERR);
    /* appends through a read-only handle are refused */
    audit_close(open_rw(dir, 0));
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    audit_event_t e = mk_event(T0, "replay", "J", NULL, NULL, NULL, NULL);
    ck_assert_int_eq(audit_append(s, &e, err, sizeof(err)), DPOP_ERR);
    ck_assert_ptr_nonnull(strstr(err, "read-only"));
    uint64_t d;
    ck_assert_int_eq(audit_prune(s, T0, &d, err, sizeof(err)), DPOP_ERR);
    audit_close(s);
    audit_close(NULL);
    rm_store(dir);
}
END_TEST

START_TEST(test_permission_denied)
{
    if (geteuid() == 0) {
        /* root ignores mode bits; drop to nobody in a child to test it */
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            char *dir = strdup("/tmp/dpop-audit-test-perm-XXXXXX");
            if (!mkdtemp(dir))
                _exit(3);
            audit_store_t *s = NULL;
            char err[256];
            if (audit_open(dir, 0, AUDIT_OPEN_RDWR, &s, err, sizeof(err)) != DPOP_OK)
                _exit(4);
            audit_close(s);
            chmod(dir, 0755);
            if (setuid(65534) != 0)
                _exit(5);
            int rc = audit_open(dir, 0, AUDIT_OPEN_RDWR, &s, err, sizeof(err));
            _exit(rc == DPOP_ERR && strstr(err, "Permission denied") ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", WEXITSTATUS(st));
        system("rm -rf /tmp/dpop-audit-test-perm-*");
        return;
    }
    char *dir = tmp_store();
    audit_close(open_rw(dir, 0));
    chmod(dir, 0500);
    audit_store_t *s = NULL;
    char err[256];
    char path[512];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    chmod(path, 0400);
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDWR, &s, err, sizeof(err)), DPOP_ERR);
    chmod(dir, 0700);
    rm_store(dir);
}
END_TEST

START_TEST(test_unencodable_time_refused)
{
    char *dir = tmp_store();
    audit_store_t *s = open_rw(dir, 0);
    char err[256];
    audit_event_t e = mk_event(-5, "replay", "J", NULL, NULL, NULL, NULL);
    ck_assert_int_eq(audit_append(s, &e, err, sizeof(err)), DPOP_ERR);
    e.ts_us = INT64_C(253402300800) * SEC; /* year 10000 */
    ck_assert_int_eq(audit_append(s, &e, err, sizeof(err)), DPOP_ERR);
    audit_info_t info;
    ck_assert_int_eq(audit_info(s, &info, err, sizeof(err)), DPOP_OK);
    ck_assert_uint_eq(info.events, 0);
    ck_assert_uint_eq(info.next_seq, 1);
    audit_close(s);
    rm_store(dir);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("audit_store");
    TCase *tc = tcase_create("write_read");
    tcase_add_test(tc, test_write_read_back);
    tcase_add_test(tc, test_ts_zero_means_now);
    tcase_add_test(tc, test_bounds_and_sanitizing);
    tcase_add_test(tc, test_field_clean_utf8_boundary);
    tcase_add_loop_test(tc, test_jws_redacted, 0, (int)(sizeof(jws_cases) / sizeof(jws_cases[0])));
    tcase_add_test(tc, test_jws_never_stored);
    tcase_add_loop_test(tc, test_url_queries_never_stored, 0,
                        (int)(sizeof(url_cases) / sizeof(url_cases[0])));
    tcase_add_test(tc, test_jws_scan_is_linear);
    suite_add_tcase(s, tc);
    tc = tcase_create("indexes");
    tcase_add_test(tc, test_index_lookups);
    tcase_add_test(tc, test_key_plan_orders_by_time);
    tcase_add_test(tc, test_multi_store_merge);
    suite_add_tcase(s, tc);
    tc = tcase_create("args");
    tcase_add_test(tc, test_index_or);
    tcase_add_test(tc, test_args_reason);
    tcase_add_test(tc, test_args_ip);
    suite_add_tcase(s, tc);
    tc = tcase_create("chain");
    tcase_add_test(tc, test_verify_intact);
    tcase_add_loop_test(tc, test_verify_catches_tampering, 0,
                        (int)(sizeof(tampers) / sizeof(tampers[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("prune");
    tcase_add_test(tc, test_prune_then_verify);
    tcase_add_test(tc, test_prune_large_in_chunks);
    tcase_add_test(tc, test_prune_refuses_broken_chain);
    tcase_add_loop_test(tc, test_prune_refuses_tampered, 0,
                        (int)(sizeof(prune_tampers) / sizeof(prune_tampers[0])));
    tcase_add_test(tc, test_prune_checkpoint);
    tcase_add_loop_test(tc, test_checkpoint_tampering, CK_ALTER, CK_FAKE_PRUNE + 1);
    tcase_add_loop_test(tc, test_truncated_store, CUT_THIRD, CUT_AFTER_OPEN + 1);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_map_full_keeps_store_intact);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_unencodable_time_refused);
    tcase_add_test(tc, test_permission_denied);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_concurrent_processes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(store_suite());
}
