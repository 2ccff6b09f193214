/*
 * policy_watch.c: hot reload of the policy file for long-running
 * processes (one watch per httpd child).
 *
 * acquire() hands out the current compiled policy with a reference and, at
 * most once per interval, stats the file; a changed (mtime, size, inode,
 * device) file is loaded and swapped in.  A file that fails to load leaves
 * the last good policy in force (fail closed, never open) and is not
 * re-parsed until it changes again.  The parse runs outside the mutex so
 * requests keep being served from the old policy meanwhile; the reference
 * count is atomic so a policy held by a request survives a swap and even
 * policy_watch_close().  Never logs: errors go back to the caller.
 */
#include "policy_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    /* at most one stat per interval; a clock that went backwards checks */
    if (!w->reloading &&
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

void policy_watch_close(policy_watch_t *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->mu);
    policy_unref(w->cur);
    free(w->path);
    free(w);
}
