/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy_watch.c: Check tests of hot reload: a changed file is picked
 * up, the stat interval is respected, a broken file keeps the last good
 * policy (and its errors reach the caller once), a vanished file keeps it
 * too, references held across a reload and across close stay valid, and
 * concurrent acquire/release while the file changes is safe (run under
 * ASan to catch a use-after-free or leak).  The watcher thread (issue 15
 * item 8) swaps a changed file in within its period without any acquire,
 * reports a broken file once, stops and joins on stop/close, and keeps
 * readers safe while it reloads.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dpop_policy.h"
#include "test_policy_util.h"

#define J1 "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

static char g_dir[] = "/tmp/test_policy_watch_XXXXXX";
static char g_path[256];
static long g_mtime = 1700000000;

/* Write atomically (temp + rename, as docs/policy.md advises) with an
 * explicit, always-increasing mtime so the test does not depend on the
 * filesystem's timestamp granularity. */
static void write_policy_text(const char *text)
{
    char tmp[300];
    struct timespec ts[2];
    FILE *f = NULL;
    snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
    f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ts[0].tv_sec = ts[1].tv_sec = ++g_mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    ck_assert_int_eq(utimensat(AT_FDCWD, tmp, ts, 0), 0);
    ck_assert_int_eq(rename(tmp, g_path), 0);
}

/* A policy whose one client (name) may GET /NAME. */
static void write_policy(const char *name)
{
    char text[512];
    snprintf(text, sizeof text,
             "version: 1\nclients:\n  - name: %s\n    jkt: " J1 "\n    allow: [{methods: [GET], "
             "paths: [\"/%s\"]}]\n",
             name, name);
    write_policy_text(text);
}

static const char *client_of(const policy_t *p)
{
    policy_decision_t d;
    policy_decide(p, J1, "GET", "/", 0, &d);
    return d.client;
}

static int allows(const policy_t *p, const char *path)
{
    policy_decision_t d;
    policy_decide(p, J1, "GET", path, 0, &d);
    return d.allow;
}

/* Acquire at `now`, check which policy is in force, release. */
static void expect_client(policy_watch_t *w, int64_t now, policy_errors_t *errs, const char *want)
{
    const policy_t *p = policy_watch_acquire(w, now, errs);
    ck_assert_str_eq(client_of(p), want);
    policy_watch_release(w, p);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/policy.yaml", g_dir);
}

static void teardown(void)
{
    char tmp[300];
    unlink(g_path);
    snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
    unlink(tmp);
    rmdir(g_dir);
    strcpy(g_dir, "/tmp/test_policy_watch_XXXXXX");
}

START_TEST(test_open_errors)
{
    policy_watch_t *w = (policy_watch_t *)1;
    policy_errors_t errs;
    policy_errors_init(&errs);
    ck_assert_int_eq(policy_watch_open(g_path, 1, &w, &errs), DPOP_ERR); /* missing */
    ck_assert_ptr_null(w);
    ck_assert_uint_ge(errs.count, 1);
    policy_errors_clear(&errs);
    write_policy_text("version: 1\nclients: [\n");
    ck_assert_int_eq(policy_watch_open(g_path, 1, &w, &errs), DPOP_ERR);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(errs.items[0].line, 3);
    policy_errors_clear(&errs);
    ck_assert_int_eq(policy_watch_open(NULL, 1, &w, &errs), DPOP_ERR);
    policy_errors_clear(&errs);
    ck_assert_ptr_null(policy_watch_acquire(NULL, 0, NULL));
    policy_watch_close(NULL);
}
END_TEST

START_TEST(test_reload_on_change_and_interval)
{
    policy_watch_t *w = NULL;
    policy_errors_t errs;
    const policy_t *p = NULL;

    policy_errors_init(&errs);
    write_policy("one");
    ck_assert_int_eq(policy_watch_open(g_path, 10, &w, &errs), DPOP_OK);
    expect_client(w, 100, &errs, "one");

    write_policy("two");
    /* within the interval: not even looked at */
    expect_client(w, 105, &errs, "one");
    expect_client(w, 109, &errs, "one");
    /* the interval has passed: reloaded */
    p = policy_watch_acquire(w, 110, &errs);
    ck_assert_str_eq(client_of(p), "two");
    ck_assert(allows(p, "/two"));
    ck_assert(!allows(p, "/one"));
    policy_watch_release(w, p);
    ck_assert_uint_eq(errs.count, 0);

    ck_assert_uint_eq(policy_watch_reloads(w), 1);

    /* a clock that went backwards checks again rather than never */
    write_policy("three");
    expect_client(w, 50, &errs, "three");
    ck_assert_uint_eq(policy_watch_reloads(w), 2);
    policy_watch_close(w);
}
END_TEST

/* Content changed in place, same size, same inode: the mtime tells. */
START_TEST(test_reload_in_place_same_size)
{
    policy_watch_t *w = NULL;
    policy_errors_t errs;
    struct stat st1, st2;
    struct timespec ts[2];
    FILE *f = NULL;

    policy_errors_init(&errs);
    write_policy("aaa");
    ck_assert_int_eq(stat(g_path, &st1), 0);
    ck_assert_int_eq(policy_watch_open(g_path, 0, &w, &errs), DPOP_OK);
    f = fopen(g_path, "r+");
    ck_assert_ptr_nonnull(f);
    {
        char text[512];
        snprintf(text, sizeof text,
                 "version: 1\nclients:\n  - name: bbb\n    jkt: " J1 "\n    allow: [{methods: "
                 "[GET], paths: [\"/bbb\"]}]\n");
        ck_assert_int_ge(fputs(text, f), 0);
    }
    ck_assert_int_eq(fclose(f), 0);
    ts[0].tv_sec = ts[1].tv_sec = ++g_mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    ck_assert_int_eq(utimensat(AT_FDCWD, g_path, ts, 0), 0);
    ck_assert_int_eq(stat(g_path, &st2), 0);
    ck_assert_int_eq(st1.st_ino, st2.st_ino);
    ck_assert_int_eq(st1.st_size, st2.st_size);
    expect_client(w, 1, &errs, "bbb"); /* interval 0: every call stats */
    policy_watch_close(w);
}
END_TEST

START_TEST(test_broken_file_keeps_old)
{
    policy_watch_t *w = NULL;
    policy_errors_t errs;
    const policy_t *p = NULL;

    policy_errors_init(&errs);
    write_policy("good");
    ck_assert_int_eq(policy_watch_open(g_path, 1, &w, &errs), DPOP_OK);
    write_policy_text("version: 1\nclients:\n  - name: bad\n    jkt: nope\n    allow: [x]\n");
    p = policy_watch_acquire(w, 10, &errs);
    ck_assert_str_eq(client_of(p), "good"); /* last good policy stays in force */
    ck_assert(allows(p, "/good"));
    policy_watch_release(w, p);
    ck_assert_uint_eq(errs.count, 2);
    ck_assert_str_eq(errs.items[0].file, g_path);
    ck_assert_int_eq(errs.items[0].line, 4);
    ck_assert_int_eq(errs.items[0].column, 10);
    ck_assert_int_eq(errs.items[1].line, 5);
    policy_errors_clear(&errs);

    /* unchanged broken file: not parsed again, no repeated errors */
    expect_client(w, 20, &errs, "good");
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_uint_eq(policy_watch_reloads(w), 0); /* a broken file is no reload */

    /* fixed: picked up */
    write_policy("fixed");
    expect_client(w, 30, &errs, "fixed");
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_uint_eq(policy_watch_reloads(w), 1);

    /* NULL reload_errs is allowed */
    write_policy_text("not: [valid\n");
    expect_client(w, 40, NULL, "fixed");
    policy_watch_close(w);
}
END_TEST

/* A reload whose file gives one client an empty allow list (a key being
 * onboarded, or shut off during an incident) is a valid policy: it
 * replaces the old one for every client instead of being refused. */
START_TEST(test_reload_with_empty_allow)
{
    policy_watch_t *w = NULL;
    policy_errors_t errs;
    const policy_t *p = NULL;
    policy_decision_t d;

    policy_errors_init(&errs);
    write_policy("old");
    ck_assert_int_eq(policy_watch_open(g_path, 1, &w, &errs), DPOP_OK);
    write_policy_text("version: 1\nclients:\n"
                      "  - name: paused\n    jkt: " J1 "\n    allow: []\n"
                      "  - name: other\n    jkt: 0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\n"
                      "    allow: [{methods: [GET], paths: [\"/new\"]}]\n");
    p = policy_watch_acquire(w, 10, &errs);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_str_eq(client_of(p), "paused");
    ck_assert(!allows(p, "/old"));
    policy_decide(p, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "GET", "/new", 0, &d);
    ck_assert_int_eq(d.allow, 1);
    policy_watch_release(w, p);
    policy_watch_close(w);
}
END_TEST

START_TEST(test_vanished_file_keeps_old)
{
    policy_watch_t *w = NULL;
    policy_errors_t errs;
    const policy_t *p = NULL;

    policy_errors_init(&errs);
    write_policy("here");
    ck_assert_int_eq(policy_watch_open(g_path, 1, &w, &errs), DPOP_OK);
    ck_assert_int_eq(unlink(g_path), 0);
    expect_client(w, 10, &errs, "here");
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_ptr_nonnull(strstr(errs.items[0].message, "gone or unreadable"));
    policy_errors_clear(&errs);
    p = policy_watch_acquire(w, 20, &errs); /* reported once */
    policy_watch_release(w, p);
    ck_assert_uint_eq(errs.count, 0);
    write_policy("back");
    expect_client(w, 30, &errs, "back");
    policy_watch_close(w);
}
END_TEST

/* A request holding the old policy keeps using it safely across a reload
 * and even across close; the last release frees it (ASan checks). */
START_TEST(test_references_across_reload_and_close)
{
    policy_watch_t *w = NULL;
    policy_errors_t errs;
    const policy_t *old = NULL, *cur = NULL, *again = NULL;

    policy_errors_init(&errs);
    write_policy("old");
    ck_assert_int_eq(policy_watch_open(g_path, 1, &w, &errs), DPOP_OK);
    old = policy_watch_acquire(w, 10, &errs);
    write_policy("new");
    cur = policy_watch_acquire(w, 20, &errs);
    ck_assert_ptr_ne(old, cur);
    ck_assert_str_eq(client_of(old), "old");
    ck_assert(allows(old, "/old"));
    ck_assert_str_eq(client_of(cur), "new");
    again = policy_watch_acquire(w, 20, &errs);
    ck_assert_ptr_eq(again, cur);
    policy_watch_release(w, again);
    policy_watch_release(w, old); /* last reference: freed here */
    policy_watch_close(w);        /* cur is still held */
    ck_assert_str_eq(client_of(cur), "new");
    ck_assert(allows(cur, "/new"));
    policy_watch_release(w, cur); /* freed here; w is not touched */
}
END_TEST

typedef struct {
    policy_watch_t *w;
    int stop;
    long decisions;
    long bad;
} race_t;

static void *reader(void *arg)
{
    race_t *r = arg;
    int64_t t = 0;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        const policy_t *p = policy_watch_acquire(r->w, t++, NULL);
        policy_decision_t d;
        char path[64];
        policy_decide(p, J1, "GET", "/", 0, &d);
        if (!d.client) {
            __atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
        }
        else {
            /* the policy we hold must allow its own client's path */
            snprintf(path, sizeof path, "/%s", d.client);
            if (!allows(p, path))
                __atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(&r->decisions, 1, __ATOMIC_RELAXED);
        policy_watch_release(r->w, p);
    }
    return NULL;
}

START_TEST(test_concurrent_reloads)
{
    race_t r;
    pthread_t th[4];
    policy_errors_t errs;
    int i;
    char name[32];

    memset(&r, 0, sizeof r);
    policy_errors_init(&errs);
    write_policy("gen0");
    ck_assert_int_eq(policy_watch_open(g_path, 0, &r.w, &errs), DPOP_OK);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &r), 0);
    for (i = 1; i <= 40; i++) {
        if (i % 10 == 5)
            write_policy_text("version: 1\nclients: [\n"); /* broken now and then */
        else {
            snprintf(name, sizeof name, "gen%d", i);
            write_policy(name);
        }
        usleep(2000);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(r.bad, 0);
    ck_assert_int_gt(r.decisions, 40);
    {
        const policy_t *p = policy_watch_acquire(r.w, 1000000, NULL);
        ck_assert_str_eq(client_of(p), "gen40");
        policy_watch_release(r.w, p);
    }
    policy_watch_close(r.w);
}
END_TEST

/* ---- watcher thread (issue 15 item 8) ---------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    int reloads;      /* notify calls with reloaded = 1 */
    int error_calls;  /* notify calls with errors */
    size_t last_line; /* line of the first error of the last error call */
} notes_t;

static void note(void *ctx, int reloaded, const policy_errors_t *errs)
{
    notes_t *n = ctx;
    pthread_mutex_lock(&n->mu);
    if (reloaded)
        n->reloads++;
    if (errs->count) {
        n->error_calls++;
        n->last_line = (size_t)errs->items[0].line;
    }
    pthread_mutex_unlock(&n->mu);
}

static int notes_get(notes_t *n, int which)
{
    int v;
    pthread_mutex_lock(&n->mu);
    v = which ? n->error_calls : n->reloads;
    pthread_mutex_unlock(&n->mu);
    return v;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll (acquire at a fixed "now", so acquire itself can never stat: the
 * interval is huge) until the watch hands out `want` or timeout_ms pass;
 * returns the ms it took, -1 on timeout. */
static long long wait_client(policy_watch_t *w, const char *want, long long timeout_ms)
{
    long long t0 = mono_ms();
    for (;;) {
        const policy_t *p = policy_watch_acquire(w, 0, NULL);
        int ok = strcmp(client_of(p), want) == 0;
        policy_watch_release(w, p);
        if (ok)
            return mono_ms() - t0;
        if (mono_ms() - t0 > timeout_ms)
            return -1;
        usleep(5000);
    }
}

/* The watcher swaps a changed file in by itself: acquire never looks at the
 * file (interval 1000000 s, acquire always at now = 0), yet the new policy is
 * handed out within the period (100 ms) plus the parse time. */
START_TEST(test_watcher_swaps_without_acquire)
{
    policy_watch_t *w = NULL;
    policy_errors_t errs;
    notes_t n = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    long long took;
    policy_errors_init(&errs);
    write_policy("one");
    ck_assert_int_eq(policy_watch_open(g_path, 1000000, &w, &errs), DPOP_OK);
    expect_client(w, 0, &errs, "one");
    ck_assert_int_eq(policy_watch_start(w, 100, note, &n), DPOP_OK);
    ck_assert_int_eq(policy_watch_start(w, 100, note, &n), DPOP_ERR); /* one thread */
    write_policy("two");
    took = wait_client(w, "two", 5000);
    ck_assert_msg(took >= 0, "the watcher never swapped the new policy in");
    printf("policy_watch: change in force after %lld ms (period 100 ms)\n", took);
    ck_assert_uint_eq(policy_watch_reloads(w), 1);
    ck_assert_int_eq(wait_client(w, "two", 0) >= 0, 1);
    /* notify ran on the watcher, once */
    for (int i = 0; i < 100 && notes_get(&n, 0) < 1; i++)
        usleep(10000);
    ck_assert_int_eq(notes_get(&n, 0), 1);
    ck_assert_int_eq(notes_get(&n, 1), 0);

    /* a broken file: the old policy stays, its errors are notified once
     * (not at every period), then a good file is swapped in */
    write_policy_text("version: 1\nclients: [\n");
    for (int i = 0; i < 300 && notes_get(&n, 1) < 1; i++)
        usleep(10000);
    ck_assert_int_eq(notes_get(&n, 1), 1);
    ck_assert_uint_eq(n.last_line, 3);
    usleep(350000); /* three more periods: no new report */
    ck_assert_int_eq(notes_get(&n, 1), 1);
    expect_client(w, 0, &errs, "two");
    ck_assert_uint_eq(errs.count, 0); /* acquire reports nothing: the watcher does */
    write_policy("three");
    ck_assert_int_ge(wait_client(w, "three", 5000), 0);
    ck_assert_uint_eq(policy_watch_reloads(w), 2);

    /* stopped: acquire checks by itself again (interval 1000000 s from the
     * check at now = 0 is not over at now = 10, over at 2000000) */
    policy_watch_stop(w);
    policy_watch_stop(w); /* idempotent */
    write_policy("four");
    usleep(300000);
    expect_client(w, 10, &errs, "three");
    expect_client(w, 2000000, &errs, "four");
    policy_watch_close(w);
}
END_TEST

/* Closing a watch whose thread runs stops and joins it; a policy acquired
 * before stays valid.  Repeated start/close cycles leak nothing (ASan). */
START_TEST(test_watcher_close_while_running)
{
    policy_errors_t errs;
    policy_errors_init(&errs);
    write_policy("one");
    for (int i = 0; i < 20; i++) {
        policy_watch_t *w = NULL;
        const policy_t *p;
        ck_assert_int_eq(policy_watch_open(g_path, 1, &w, &errs), DPOP_OK);
        ck_assert_int_eq(policy_watch_start(w, 1 + i % 3, NULL, NULL), DPOP_OK);
        p = policy_watch_acquire(w, 0, NULL);
        if (i % 2)
            usleep(3000);
        policy_watch_close(w);
        ck_assert_str_eq(client_of(p), "one");
        policy_watch_release(NULL, p);
    }
    ck_assert_int_eq(policy_watch_start(NULL, 10, NULL, NULL), DPOP_ERR);
    policy_watch_stop(NULL);
}
END_TEST

/* Readers on four threads while the watcher (period 1 ms) reloads a file
 * that changes 40 times (broken now and then): every decision comes from a
 * whole policy, and the last file is in force at the end (under ASan: no
 * use-after-free of a swapped-out policy). */
START_TEST(test_watcher_concurrent_readers)
{
    race_t r;
    pthread_t th[4];
    policy_errors_t errs;
    int i;
    char name[32];

    memset(&r, 0, sizeof r);
    policy_errors_init(&errs);
    write_policy("gen0");
    ck_assert_int_eq(policy_watch_open(g_path, 1000000, &r.w, &errs), DPOP_OK);
    ck_assert_int_eq(policy_watch_start(r.w, 1, NULL, NULL), DPOP_OK);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &r), 0);
    for (i = 1; i <= 40; i++) {
        if (i % 10 == 5)
            write_policy_text("version: 1\nclients: [\n");
        else {
            snprintf(name, sizeof name, "gen%d", i);
            write_policy(name);
        }
        usleep(3000);
    }
    ck_assert_int_ge(wait_client(r.w, "gen40", 5000), 0);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(r.bad, 0);
    ck_assert_int_gt(r.decisions, 40);
    policy_watch_close(r.w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_watch");
    TCase *tc = tcase_create("watch");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_reload_on_change_and_interval);
    tcase_add_test(tc, test_reload_in_place_same_size);
    tcase_add_test(tc, test_broken_file_keeps_old);
    tcase_add_test(tc, test_reload_with_empty_allow);
    tcase_add_test(tc, test_vanished_file_keeps_old);
    tcase_add_test(tc, test_references_across_reload_and_close);
    tcase_add_test(tc, test_concurrent_reloads);
    tcase_add_test(tc, test_watcher_swaps_without_acquire);
    tcase_add_test(tc, test_watcher_close_while_running);
    tcase_add_test(tc, test_watcher_concurrent_readers);
    suite_add_tcase(s, tc);

    return run_policy_suite(s);
}
