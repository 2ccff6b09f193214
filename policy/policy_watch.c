/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_watch.c: hot reload of the policy file for long-running
 * processes (one watch per httpd child).
 *
 * Two ways to notice a change.  With a watcher thread (policy_watch_start,
 * the module's way): the thread stats the file at a fixed rate, every
 * interval, whether or not requests arrive; a changed (mtime, size, inode,
 * device) file is loaded outside the mutex and swapped in under it, and
 * acquire() never stats: it hands out the current policy.  So a change is in
 * force for every later acquire within one interval plus the parse time
 * (issue 15 item 8: before, each child looked only when a request came, and
 * the requests that came meanwhile were all decided by the old policy).
 * Without a thread (the CLI, the tests, a thread that could not start):
 * acquire() itself stats at most once per interval and reloads.
 *
 * Either way a file that fails to load leaves the last good policy in force
 * (fail closed, never open) and is not re-parsed until it changes again;
 * requests keep being served from the old policy while the new one parses;
 * the reference count is atomic so a policy held by a request survives a
 * swap and even policy_watch_close().  Never logs: errors go back to the
 * caller (acquire's reload_errs, or the watcher's notify callback).
 */
#include "policy_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    int state; /* 0 unknown, 1 stat ok, 2 stat failed */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
} file_id_t;

struct policy_watch {
    pthread_mutex_t mu;
    char *path;
    int64_t interval;
    int64_t last_check;
    policy_t *cur;                /* holds one reference */
    file_id_t loaded;             /* the file cur came from */
    file_id_t failed;             /* the last file that failed, not retried until it changes */
    int reloading;                /* a thread is loading outside the mutex */
    atomic_uint_fast64_t reloads; /* changed files swapped in (metrics) */
    /* the watcher thread (policy_watch_start) */
    pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled by stop */
    pthread_t thread;
    int watching; /* the thread runs: acquire does not stat */
    int stopping;
    int64_t period_ms;
    policy_watch_notify_fn notify;
    void *notify_ctx;
};

static void file_id(const char *path, file_id_t *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) != 0) {
        id->state = 2;
        return;
    }
    id->state = 1;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtim = st.st_mtim;
}

static int same_id(const file_id_t *a, const file_id_t *b)
{
    if (a->state != b->state)
        return 0;
    if (a->state != 1)
        return 1;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec;
}

static void policy_ref(policy_t *p)
{
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
}

static void policy_unref(policy_t *p)
{
    if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
        policy_free(p);
}

int policy_watch_open(const char *path, int64_t interval, policy_watch_t **out,
                      policy_errors_t *errs)
{
    policy_watch_t *w = NULL;
    policy_t *p = NULL;
    file_id_t id;

    *out = NULL;
    if (!path)
        return policy_errors_add(errs, "(policy)", 0, 0, "no policy file given");
    /* identity first: if the file changes while it is read, the next check
     * sees a different identity and loads it again */
    file_id(path, &id);
    if (policy_load_file(path, &p, errs) != DPOP_OK)
        return DPOP_ERR;
    w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path)) || pthread_mutex_init(&w->mu, NULL) != 0) {
        if (w)
            free(w->path);
        free(w);
        policy_free(p);
        return policy_errors_add(errs, path, 0, 0, "out of memory");
    }
    {
        pthread_condattr_t ca;
        int ok = pthread_condattr_init(&ca) == 0;
        /* the wait is a duration: immune to wall-clock steps */
        ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&w->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
        if (!ok) {
            pthread_mutex_destroy(&w->mu);
            free(w->path);
            free(w);
            policy_free(p);
            return policy_errors_add(errs, path, 0, 0, "cannot create a condition variable");
        }
    }
    w->interval = interval < 0 ? 0 : interval;
    w->cur = p;
    p->refs = 1;
    w->loaded = id;
    w->last_check = INT64_MIN;
    *out = w;
    return DPOP_OK;
}

/* Called with w->mu held and w->reloading set; drops and retakes the mutex. */
static void reload(policy_watch_t *w, policy_errors_t *reload_errs)
{
    file_id_t id;
    policy_t *p = NULL, *old = NULL;
    policy_errors_t errs;
    int changed;

    pthread_mutex_unlock(&w->mu);
    file_id(w->path, &id);
    pthread_mutex_lock(&w->mu);
    changed = !same_id(&id, &w->loaded) && !same_id(&id, &w->failed);
    pthread_mutex_unlock(&w->mu);
    if (!changed) {
        pthread_mutex_lock(&w->mu);
        return;
    }
    policy_errors_init(&errs);
    if (id.state != 1)
        policy_errors_add(&errs, w->path, 0, 0,
                          "the policy file is gone or unreadable; keeping the last good policy");
    else
        policy_load_file(w->path, &p, &errs);
    pthread_mutex_lock(&w->mu);
    if (p) {
        p->refs = 1;
        old = w->cur;
        w->cur = p;
        w->loaded = id;
        atomic_fetch_add_explicit(&w->reloads, 1, memory_order_relaxed);
        memset(&w->failed, 0, sizeof w->failed);
    }
    else {
        w->failed = id;
    }
    if (reload_errs && errs.count) {
        policy_errors_clear(reload_errs);
        *reload_errs = errs; /* hand over ownership */
        policy_errors_init(&errs);
    }
    policy_errors_clear(&errs);
    if (old) {
        /* the watch's own reference; requests holding old keep it alive */
        pthread_mutex_unlock(&w->mu);
        policy_unref(old);
        pthread_mutex_lock(&w->mu);
    }
}

const policy_t *policy_watch_acquire(policy_watch_t *w, int64_t now, policy_errors_t *reload_errs)
{
    policy_t *p = NULL;
    if (!w)
        return NULL;
    pthread_mutex_lock(&w->mu);
    /* at most one stat per interval; a clock that went backwards checks;
     * never when the watcher thread does the checking */
    if (!w->watching && !w->reloading &&
        (w->last_check == INT64_MIN || now < w->last_check || now - w->last_check >= w->interval)) {
        w->last_check = now;
        w->reloading = 1;
        reload(w, reload_errs);
        w->reloading = 0;
    }
    p = w->cur;
    policy_ref(p);
    pthread_mutex_unlock(&w->mu);
    return p;
}

uint64_t policy_watch_reloads(policy_watch_t *w)
{
    return w ? (uint64_t)atomic_load_explicit(&w->reloads, memory_order_relaxed) : 0;
}

void policy_watch_release(policy_watch_t *w, const policy_t *p)
{
    (void)w; /* the count lives in the policy, so this works after close */
    policy_unref((policy_t *)p);
}

static void mono_add_ms(struct timespec *t, int64_t ms)
{
    t->tv_sec += (time_t)(ms / 1000);
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static int mono_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The watcher: a check every period_ms at a fixed rate (the next deadline
 * is the previous one plus the period, not "now plus the period", so a
 * reload's parse time does not push the next check later), until stop. */
static void *watch_main(void *arg)
{
    policy_watch_t *w = arg;
    struct timespec next, now;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        policy_errors_t errs;
        uint64_t before;
        int reloaded;
        mono_add_ms(&next, w->period_ms);
        while (!w->stopping && pthread_cond_timedwait(&w->cv, &w->mu, &next) != ETIMEDOUT)
            ;
        if (w->stopping)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (mono_before(&next, &now))
            next = now; /* fell behind (a slow parse, a suspended machine): no burst */
        if (w->reloading)
            continue; /* an acquire() started before the thread is loading */
        policy_errors_init(&errs);
        before = (uint64_t)atomic_load_explicit(&w->reloads, memory_order_relaxed);
        w->reloading = 1;
        reload(w, &errs);
        w->reloading = 0;
        reloaded = (uint64_t)atomic_load_explicit(&w->reloads, memory_order_relaxed) != before;
        if (w->notify && (reloaded || errs.count)) {
            pthread_mutex_unlock(&w->mu);
            w->notify(w->notify_ctx, reloaded, &errs);
            pthread_mutex_lock(&w->mu);
        }
        policy_errors_clear(&errs);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int policy_watch_start(policy_watch_t *w, int64_t period_ms, policy_watch_notify_fn notify,
                       void *ctx)
{
    sigset_t all, old;
    int rc;
    if (!w || period_ms <= 0)
        return DPOP_ERR;
    pthread_mutex_lock(&w->mu);
    if (w->watching) {
        pthread_mutex_unlock(&w->mu);
        return DPOP_ERR;
    }
    w->period_ms = period_ms;
    w->notify = notify;
    w->notify_ctx = ctx;
    w->stopping = 0;
    /* The thread is born with every signal blocked, so the host process's
     * signals (httpd's SIGTERM, SIGHUP, SIGUSR1 to a child) keep going to
     * the threads that expect them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    w->watching = rc == 0;
    pthread_mutex_unlock(&w->mu);
    return rc == 0 ? DPOP_OK : DPOP_ERR;
}

void policy_watch_stop(policy_watch_t *w)
{
    int watching;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    watching = w->watching;
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!watching)
        return;
    /* at most the current check (a stat, or a parse) to wait for */
    pthread_join(w->thread, NULL);
    pthread_mutex_lock(&w->mu);
    w->watching = 0;
    pthread_mutex_unlock(&w->mu);
}

void policy_watch_close(policy_watch_t *w)
{
    if (!w)
        return;
    policy_watch_stop(w);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    policy_unref(w->cur);
    free(w->path);
    free(w);
}
