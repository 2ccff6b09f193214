/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit_util.h: helpers shared by the audit Check tests: temporary
 * store directories (removed afterwards), event construction, counting
 * query results.  Test-only; static inline so each test links what it uses.
 */
#ifndef TEST_AUDIT_UTIL_H
#define TEST_AUDIT_UTIL_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_query.h"
#include "dpop_audit.h"
#include "dpop_result.h"

#define T0 INT64_C(1767261600000000) /* 2026-01-01T10:00:00Z */
#define SEC INT64_C(1000000)

static inline char *tmp_store(void)
{
    char *d = strdup("/tmp/dpop-audit-test-XXXXXX");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static inline void rm_store(char *d)
{
    char p[512];
    DIR *dir = opendir(d);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", d, e->d_name);
        unlink(p);
    }
    if (dir)
        closedir(dir);
    rmdir(d);
    free(d);
}

static inline audit_event_t mk_event(int64_t ts, const char *reason, const char *jkt,
                                     const char *jti, const char *th, const char *ip,
                                     const char *host)
{
    audit_event_t e;
    memset(&e, 0, sizeof(e));
    e.ts_us = ts;
    e.reason = reason;
    e.error = "invalid_dpop_proof";
    e.jkt = jkt;
    e.jti = jti;
    e.token_hash = th;
    e.client_ip = ip;
    e.host = host;
    e.pid = 4242;
    e.method = "GET";
    e.path = "/api/x";
    e.mode = "enforce";
    return e;
}

static inline audit_store_t *open_rw(const char *dir, size_t mapsize)
{
    audit_store_t *s = NULL;
    char err[256];
    int rc = audit_open(dir, mapsize, AUDIT_OPEN_RDWR, &s, err, sizeof(err));
    ck_assert_msg(rc == DPOP_OK, "open: %s", err);
    return s;
}

static inline void append_ok(audit_store_t *s, const audit_event_t *e)
{
    char err[256];
    int rc = audit_append(s, e, err, sizeof(err));
    ck_assert_msg(rc == DPOP_OK, "append: %s", err);
}

/* Run a query over n stores; returns the number of records and, if seqs is
 * given, their seqs (up to max) in output order. */
static inline size_t count_query(audit_store_t *const *st, size_t n, const audit_filter_t *f,
                                 audit_plan_t *plan0, uint64_t *seqs, size_t max)
{
    audit_iter_t *it = NULL;
    audit_record_t r = {0};
    char err[256];
    size_t cnt = 0;
    int rc = audit_iter_open(st, n, f, &it, err, sizeof(err));
    ck_assert_msg(rc == DPOP_OK, "query: %s", err);
    if (plan0)
        *plan0 = audit_iter_plan(it, 0);
    int64_t last = INT64_MIN;
    while ((rc = audit_iter_next(it, &r, err, sizeof(err))) == 1) {
        ck_assert(r.ts_us >= last); /* time order */
        last = r.ts_us;
        if (seqs && cnt < max)
            seqs[cnt] = r.seq;
        cnt++;
        audit_record_clear(&r);
    }
    ck_assert_int_eq(rc, 0);
    audit_iter_close(it);
    return cnt;
}

/* main() of every audit test program: run the suite, Check's summary line
 * on stdout (CK_NORMAL), exit status for automake. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* TEST_AUDIT_UTIL_H */
