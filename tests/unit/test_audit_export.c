/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit_export.c: dpop-audit export (issue 19 item 5): the ECS
 * mapping of an event (present fields mapped, absent ones omitted), and
 * the cursor: a second run writes nothing, new events only, a cursor that
 * does not match its store is refused, a batch size of one moves the
 * cursor after each line.
 */
#include <jansson.h>

#include "audit_export.h"
#include "test_audit_util.h"

/* ECS path -> expected string ("" = must be absent) for one full event. */
static const struct {
    const char *path, *want;
} ecs_cases[] = {
    {"@timestamp", "2026-01-01T10:00:00.000000Z"},
    {"event.kind", "event"},
    {"event.category", "authentication"},
    {"event.outcome", "failure"},
    {"event.action", "replay"},
    {"event.reason", "jti seen"},
    {"error.code", "invalid_dpop_proof"},
    {"error.message", "jti seen"},
    {"source.ip", "192.0.2.1"},
    {"http.request.method", "POST"},
    {"url.path", "/api"},
    {"url.domain", "api.example.com"},
    {"user_agent.original", "ua/1"},
    {"host.name", "web1"},
    {"dpop.jkt", "JK"},
    {"dpop.jti", "J1"},
    {"dpop.token_hash", "TH"},
    {"dpop.token_sub", "svc"},
    {"dpop.token_client_id", "billing"},
    {"dpop.policy_client", "billing-agent"},
    {"dpop.mode", "report-only"},
    {"dpop.reason", "replay"},
    {"dpop.htu", ""}, /* absent in the event: omitted, not null */
    {"dpop.alg", ""},
    {"http.request.id", ""},
};

static json_t *get_path(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *part = strtok(buf, "."); part && o; part = strtok(NULL, "."))
        o = json_object_get(o, part);
    return o;
}

START_TEST(test_ecs_mapping)
{
    audit_event_t e = mk_event(T0, "replay", "JK", "J1", "TH", "192.0.2.1", "web1");
    e.detail = "jti seen";
    e.method = "POST";
    e.path = "/api";
    e.vhost = "api.example.com";
    e.user_agent = "ua/1";
    e.token_sub = "svc";
    e.token_client_id = "billing";
    e.policy_client = "billing-agent";
    e.mode = "report-only";
    e.pid = 42;
    audit_enc_t *enc = audit_event_encode(&e);
    ck_assert_ptr_nonnull(enc);
    audit_record_t rec = {.seq = 7, .ts_us = T0, .ev = json_loads(enc->data, 0, NULL)};
    free(enc);
    unsigned char hash[32];
    for (int i = 0; i < 32; i++)
        hash[i] = (unsigned char)i;
    json_t *doc = audit_export_ecs(&rec, hash, "/var/lib/s");
    ck_assert_ptr_nonnull(doc);
    for (size_t i = 0; i < sizeof(ecs_cases) / sizeof(ecs_cases[0]); i++) {
        json_t *v = get_path(doc, ecs_cases[i].path);
        if (!ecs_cases[i].want[0]) {
            ck_assert_msg(v == NULL, "%s present", ecs_cases[i].path);
            continue;
        }
        ck_assert_msg(json_is_string(v), "%s missing", ecs_cases[i].path);
        ck_assert_str_eq(json_string_value(v), ecs_cases[i].want);
    }
    ck_assert_int_eq(json_integer_value(get_path(doc, "event.sequence")), 7);
    ck_assert_int_eq(json_integer_value(get_path(doc, "process.pid")), 42);
    ck_assert_str_eq(json_string_value(get_path(doc, "event.id")),
                     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    ck_assert_str_eq(json_string_value(get_path(doc, "dpop.store")), "/var/lib/s");
    json_decref(doc);
    audit_record_clear(&rec);
}
END_TEST

/* Run an export of store into a fresh file; returns the sequences written
 * (up to max) and their count, *rc the exit status. */
static size_t run_export(audit_store_t *s, const char *cursor, size_t batch, uint64_t *seqs,
                         size_t max, int *rc, char *err, size_t errsz)
{
    FILE *out = tmpfile();
    const char *names[] = {"/store/a"};
    audit_export_cfg_t cfg = {
        .stores = &s, .n = 1, .names = names, .cursor_path = cursor, .batch = batch, .out = out};
    size_t n = 0;
    char line[8192];
    ck_assert_ptr_nonnull(out);
    *rc = audit_export_run(&cfg, err, errsz);
    rewind(out);
    while (fgets(line, sizeof(line), out)) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(o);
        if (n < max)
            seqs[n] = (uint64_t)json_integer_value(get_path(o, "event.sequence"));
        n++;
        json_decref(o);
    }
    fclose(out);
    return n;
}

static void append_n(audit_store_t *s, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        audit_event_t e = mk_event(T0 + i * SEC, "replay", "JK", NULL, NULL, NULL, NULL);
        append_ok(s, &e);
    }
}

START_TEST(test_cursor_resume)
{
    char *dir = tmp_store(), *cdir = tmp_store(), cursor[512], err[512];
    uint64_t seqs[16];
    int rc;
    snprintf(cursor, sizeof(cursor), "%s/cursor", cdir);
    audit_store_t *s = open_rw(dir, 0);
    append_n(s, 0, 5);
    /* batch 2: the cursor moves three times; the result is the same */
    ck_assert_uint_eq(run_export(s, cursor, 2, seqs, 16, &rc, err, sizeof(err)), 5);
    ck_assert_int_eq(rc, 0);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(seqs[i], (uint64_t)i + 1);
    ck_assert_uint_eq(run_export(s, cursor, 0, seqs, 16, &rc, err, sizeof(err)), 0);
    append_n(s, 5, 2);
    ck_assert_uint_eq(run_export(s, cursor, 0, seqs, 16, &rc, err, sizeof(err)), 2);
    ck_assert_uint_eq(seqs[0], 6);
    ck_assert_uint_eq(seqs[1], 7);
    /* the cursor of another store (same name, other events) is refused */
    audit_close(s);
    rm_store(dir);
    dir = tmp_store();
    s = open_rw(dir, 0);
    append_n(s, 100, 9);
    ck_assert_uint_eq(run_export(s, cursor, 0, seqs, 16, &rc, err, sizeof(err)), 0);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "another hash"));
    audit_close(s);
    rm_store(dir);
    unlink(cursor);
    rm_store(cdir);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("audit_export");
    TCase *tc = tcase_create("ecs");
    tcase_add_test(tc, test_ecs_mapping);
    suite_add_tcase(s, tc);
    tc = tcase_create("cursor");
    tcase_add_test(tc, test_cursor_resume);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(export_suite());
}
