/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit_writer.c: the asynchronous writer the module uses: every
 * submitted event is committed by stop, submits from many threads, a full
 * queue drops and counts (made deterministic by holding LMDB's write lock
 * from another process), commit failures (map full) are counted with their
 * message and leave the store intact, start errors; per-hour request
 * counts: summed in the process, stored with the next event batch (no
 * transaction of their own per request), flushed on stop, read back by
 * hour, host, vhost and mode.
 */
#include <lmdb.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_audit_util.h"

static uint64_t stored(const char *dir)
{
    audit_store_t *s = NULL;
    audit_verify_t v;
    char err[256];
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(audit_verify(s, &v, err, sizeof(err)), DPOP_OK);
    ck_assert_msg(v.ok, "%s", v.problem);
    audit_verify_clear(&v);
    audit_close(s);
    return v.events;
}

START_TEST(test_submit_and_flush_on_stop)
{
    char *dir = tmp_store();
    audit_writer_t *w = NULL;
    char err[256];
    ck_assert_int_eq(audit_writer_start(dir, 0, 0, &w, err, sizeof(err)), DPOP_OK);
    for (int i = 0; i < 10000; i++) {
        char jti[32];
        snprintf(jti, sizeof(jti), "j%d", i);
        audit_event_t e = mk_event(T0 + i, "replay", "JW", jti, NULL, "10.0.0.1", "web1");
        ck_assert_int_eq(audit_writer_submit(w, &e), DPOP_OK); /* jti copied: stack buffer */
    }
    ck_assert_uint_eq(audit_writer_take_errors(w, err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");
    audit_writer_stop(w); /* commits everything still queued */
    ck_assert_uint_eq(stored(dir), 10000);
    audit_store_t *s = NULL;
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    audit_filter_t f = {.jti = "j9999"};
    ck_assert_uint_eq(count_query(&s, 1, &f, NULL, NULL, 0), 1);
    audit_close(s);
    rm_store(dir);
}
END_TEST

typedef struct {
    audit_writer_t *w;
    int id, ok;
} thr_t;

static void *submitter(void *arg)
{
    thr_t *t = arg;
    char jkt[16];
    snprintf(jkt, sizeof(jkt), "T%d", t->id);
    for (int i = 0; i < 2000; i++) {
        audit_event_t e = mk_event(T0 + i, "bad_signature", jkt, NULL, NULL, "10.0.0.1", "w");
        t->ok += audit_writer_submit(t->w, &e) == DPOP_OK;
    }
    return NULL;
}

START_TEST(test_many_threads)
{
    char *dir = tmp_store();
    audit_writer_t *w = NULL;
    char err[256];
    ck_assert_int_eq(audit_writer_start(dir, 0, 100000, &w, err, sizeof(err)), DPOP_OK);
    pthread_t th[4];
    thr_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (thr_t){w, i, 0};
        pthread_create(&th[i], NULL, submitter, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(t[i].ok, 2000);
    }
    audit_writer_stop(w);
    ck_assert_uint_eq(stored(dir), 8000);
    rm_store(dir);
}
END_TEST

START_TEST(test_queue_full_drops_counted)
{
    char *dir = tmp_store();
    audit_close(open_rw(dir, 0));
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* hold the store's write lock until told to let go */
        MDB_env *env;
        MDB_txn *txn;
        char c = 'x';
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
            mdb_env_open(env, dir, 0, 0600) || mdb_txn_begin(env, NULL, 0, &txn))
            _exit(1);
        if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
            _exit(1);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(up[0], &c, 1), 1);
    audit_writer_t *w = NULL;
    char err[256];
    enum { CAP = 8, N = 200 };
    ck_assert_int_eq(audit_writer_start(dir, 0, CAP, &w, err, sizeof(err)), DPOP_OK);
    int ok = 0, dropped = 0;
    for (int i = 0; i < N; i++) {
        audit_event_t e = mk_event(T0 + i, "replay", "JQ", NULL, NULL, NULL, NULL);
        if (audit_writer_submit(w, &e) == DPOP_OK)
            ok++;
        else
            dropped++;
    }
    /* the writer holds at most one batch (<= CAP) blocked on the lock, plus
     * a full queue: everything else was dropped without waiting */
    ck_assert_int_le(ok, 2 * CAP);
    ck_assert_int_eq(ok + dropped, N);
    ck_assert_uint_eq(audit_writer_take_errors(w, err, sizeof(err)), (size_t)dropped);
    ck_assert_ptr_nonnull(strstr(err, "queue full"));
    ck_assert_uint_eq(audit_writer_take_errors(w, err, sizeof(err)), 0); /* taken */
    ck_assert_int_eq(write(down[1], "g", 1), 1);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    audit_writer_stop(w);
    ck_assert_uint_eq(stored(dir), (uint64_t)ok);
    rm_store(dir);
}
END_TEST

START_TEST(test_commit_failure_counted)
{
    char *dir = tmp_store();
    audit_writer_t *w = NULL;
    char err[256], big[600];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(audit_writer_start(dir, 128 * 1024, 64, &w, err, sizeof(err)), DPOP_OK);
    int ok = 0;
    for (int i = 0; i < 2000; i++) {
        char jti[32];
        snprintf(jti, sizeof(jti), "j%d", i);
        audit_event_t e = mk_event(T0 + i, "replay", jti, jti, jti, NULL, NULL);
        e.user_agent = big;
        e.detail = big;
        ok += audit_writer_submit(w, &e) == DPOP_OK;
        if (i % 50 == 0)
            usleep(1000); /* let the writer commit in several batches */
    }
    audit_writer_stop(w);
    /* stop flushed; the writer's counters die with it, so reopen to count */
    uint64_t n = stored(dir);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, (uint64_t)ok); /* the map filled: some batches failed */
    rm_store(dir);
}
END_TEST

START_TEST(test_commit_failure_reported)
{
    char *dir = tmp_store();
    audit_writer_t *w = NULL;
    char err[256], big[600];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(audit_writer_start(dir, 128 * 1024, 100000, &w, err, sizeof(err)), DPOP_OK);
    for (int i = 0; i < 2000; i++) {
        char jti[32];
        snprintf(jti, sizeof(jti), "j%d", i);
        audit_event_t e = mk_event(T0 + i, "replay", jti, jti, jti, NULL, NULL);
        e.user_agent = big;
        ck_assert_int_eq(audit_writer_submit(w, &e), DPOP_OK);
    }
    size_t errs = 0;
    for (int tries = 0; tries < 500 && errs == 0; tries++) {
        usleep(10000);
        errs = audit_writer_take_errors(w, err, sizeof(err));
    }
    ck_assert_uint_gt(errs, 0);
    ck_assert_msg(strstr(err, "MDB_MAP_FULL") != NULL, "last error: %s", err);
    audit_writer_stop(w);
    ck_assert_uint_lt(stored(dir), 2000); /* intact, verifies, partial */
    rm_store(dir);
}
END_TEST

/* The map gauges (issue 20 item 4): measured at open and after each
 * commit, the size is the configured map size, used grows with events. */
START_TEST(test_map_usage_follows_commits)
{
    char *dir = tmp_store();
    audit_writer_t *w = NULL;
    char err[256];
    uint64_t used0 = 0, size0 = 0, used = 0, size = 0;
    const size_t mapsize = 32 * 1024 * 1024;
    ck_assert_int_eq(audit_writer_start(dir, mapsize, 0, &w, err, sizeof(err)), DPOP_OK);
    audit_writer_usage(w, &used0, &size0);
    ck_assert_uint_eq(size0, mapsize);
    ck_assert_uint_gt(used0, 0);
    for (int i = 0; i < 5000; i++) {
        audit_event_t e = mk_event(T0 + i, "replay", "JW", "jti", NULL, "10.0.0.1", "web1");
        ck_assert_int_eq(audit_writer_submit(w, &e), DPOP_OK);
    }
    for (int i = 0; i < 200 && used <= used0; i++) {
        usleep(50000);
        audit_writer_usage(w, &used, &size);
    }
    ck_assert_uint_gt(used, used0);
    ck_assert_uint_le(used, size);
    ck_assert_uint_eq(size, mapsize);
    audit_writer_stop(w);
    {
        audit_store_t *st = NULL;
        uint64_t u = 0, m = 0;
        ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &st, err, sizeof(err)), DPOP_OK);
        ck_assert_int_eq(audit_store_usage(st, &u, &m), DPOP_OK);
        ck_assert_uint_ge(u, used);
        audit_close(st);
    }
    audit_writer_usage(NULL, &used, &size);
    ck_assert_uint_eq(used + size, 0);
    rm_store(dir);
}
END_TEST

START_TEST(test_start_errors)
{
    audit_writer_t *w = NULL;
    char err[256];
    ck_assert_int_eq(audit_writer_start("/proc/nonexistent/dpop", 0, 0, &w, err, sizeof(err)),
                     DPOP_ERR);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(err, "/proc/nonexistent/dpop"));
    ck_assert_int_eq(audit_writer_submit(NULL, NULL), DPOP_ERR);
    ck_assert_uint_eq(audit_writer_take_errors(NULL, err, sizeof(err)), 0);
    audit_writer_stop(NULL);
}
END_TEST

typedef struct {
    uint64_t verified, rejected;
    size_t rows;
    char last_mode[32];
} csum_t;

static void on_count(const audit_count_t *c, void *arg)
{
    csum_t *s = arg;
    s->verified += c->verified;
    s->rejected += c->rejected;
    s->rows++;
    snprintf(s->last_mode, sizeof(s->last_mode), "%s", c->mode);
}

static csum_t read_counts(const char *dir, int64_t since, int64_t until)
{
    audit_store_t *s = NULL;
    char err[256];
    csum_t sum = {0};
    ck_assert_int_eq(audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)), DPOP_OK);
    ck_assert_msg(audit_counts_read(s, since, until, on_count, &sum, err, sizeof(err)) == DPOP_OK,
                  "%s", err);
    audit_close(s);
    return sum;
}

START_TEST(test_counts_with_batches)
{
    char *dir = tmp_store();
    audit_writer_t *w = NULL;
    char err[256];
    ck_assert_int_eq(audit_writer_start(dir, 0, 0, &w, err, sizeof(err)), DPOP_OK);
    /* 1000 requests of one hour in two modes, and the next hour */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(audit_writer_count(w, T0 + i * SEC, "h1", "api",
                                            i % 4 ? "enforce" : "report-only", i % 10 ? 1 : 0,
                                            i % 10 ? 0 : 1),
                         DPOP_OK);
    ck_assert_int_eq(audit_writer_count(w, T0 + 3600 * SEC, "h1", "api", "enforce", 7, 0), DPOP_OK);
    /* an event: its batch carries the counts (well before the timer) */
    audit_event_t e = mk_event(T0, "replay", "K", "j", NULL, "10.0.0.1", "h1");
    ck_assert_int_eq(audit_writer_submit(w, &e), DPOP_OK);
    for (int i = 0; i < 500 && stored(dir) == 0; i++)
        usleep(10000);
    ck_assert_uint_eq(stored(dir), 1);
    csum_t c = read_counts(dir, T0, T0 + 3600 * SEC);
    ck_assert_uint_eq(c.verified, 900);
    ck_assert_uint_eq(c.rejected, 100);
    ck_assert_uint_eq(c.rows, 2); /* (hour, h1, api) x two modes */
    c = read_counts(dir, T0 - 3600 * SEC, T0 + 7200 * SEC);
    ck_assert_uint_eq(c.verified, 907);
    /* counts alone are flushed on stop, and added to what is stored */
    ck_assert_int_eq(audit_writer_count(w, T0 + 10 * SEC, "h1", "api", "enforce", 5, 2), DPOP_OK);
    audit_writer_stop(w);
    c = read_counts(dir, T0, T0 + 3600 * SEC);
    ck_assert_uint_eq(c.verified, 905);
    ck_assert_uint_eq(c.rejected, 102);
    /* a store no counting writer wrote has no counts, and that is no error */
    ck_assert_uint_eq(read_counts(dir, T0 + 7200 * SEC, T0 + 9000 * SEC).rows, 0);
    rm_store(dir);
}
END_TEST

/* A quiet server: counts and no event reach the store by the timer
 * (AUDIT_COUNTS_FLUSH_S), without waiting for a batch or a stop. */
START_TEST(test_counts_flushed_by_timer)
{
    char *dir = tmp_store();
    audit_writer_t *w = NULL;
    char err[256];
    ck_assert_int_eq(audit_writer_start(dir, 0, 0, &w, err, sizeof(err)), DPOP_OK);
    ck_assert_int_eq(audit_writer_count(w, T0, "h1", "api", "enforce", 3, 1), DPOP_OK);
    int seen = 0;
    for (int i = 0; i < 10 * (AUDIT_COUNTS_FLUSH_S + 10) && !seen; i++) {
        usleep(100000);
        seen = read_counts(dir, T0, T0 + 3600 * SEC).rows == 1;
    }
    ck_assert_msg(seen, "counts not flushed within %d s", AUDIT_COUNTS_FLUSH_S + 10);
    csum_t c = read_counts(dir, T0, T0 + 3600 * SEC);
    ck_assert_uint_eq(c.verified, 3);
    ck_assert_uint_eq(c.rejected, 1);
    ck_assert_uint_eq(stored(dir), 0); /* no event was invented */
    audit_writer_stop(w);
    rm_store(dir);
}
END_TEST

static Suite *writer_suite(void)
{
    Suite *s = suite_create("audit_writer");
    TCase *tc = tcase_create("writer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_submit_and_flush_on_stop);
    tcase_add_test(tc, test_many_threads);
    tcase_add_test(tc, test_queue_full_drops_counted);
    tcase_add_test(tc, test_commit_failure_counted);
    tcase_add_test(tc, test_commit_failure_reported);
    tcase_add_test(tc, test_map_usage_follows_commits);
    tcase_add_test(tc, test_start_errors);
    tcase_add_test(tc, test_counts_with_batches);
    tcase_add_test(tc, test_counts_flushed_by_timer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(writer_suite());
}
