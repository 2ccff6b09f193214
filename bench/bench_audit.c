/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_audit.c: audit store figures (issue 5).  Prints, never asserts.
 *   1. appends/s from 1 and from 4 concurrent processes, each through the
 *      module's path (audit_writer_start/submit/stop: encode in the caller,
 *      one LMDB transaction per batch), plus the submit latency a request
 *      thread sees, and the unbatched rate (one transaction per event) for
 *      the batching ratio;
 *   2. lookup latency by jkt on a store of 1,000,000 events in which one jkt
 *      has 100 events (query + reading and parsing all 100), median and p99.
 * Stores live in /tmp and are deleted afterwards.
 * usage: bench_audit [EVENTS_PER_PROC (200000)] [STORE_EVENTS (1000000)]
 */
#include "audit_query.h"
#include "dpop_audit.h"
#include "dpop_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0 INT64_C(1767261600000000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rm_store(const char *dir)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

/* A realistic event (~600 bytes of JSON). */
static void mk(audit_event_t *e, char *jkt, char *jti, int64_t ts, unsigned r)
{
    static const char *reasons[] = {"bad_signature", "htu_mismatch", "replay",
                                    "iat_too_old",   "jkt_mismatch", "policy_denied"};
    memset(e, 0, sizeof(*e));
    e->ts_us = ts;
    e->host = "web-01.example.net";
    e->vhost = "api.example.com";
    e->pid = 31337;
    e->request_id = "ZV8xLQoAAAEAAE1hGfIAAAAB";
    e->client_ip = "198.51.100.23";
    e->method = "POST";
    e->path = "/api/invoices/2026/0001234/lines";
    e->error = "invalid_dpop_proof";
    e->reason = reasons[r % 6];
    e->detail = "proof htu does not match the request URI";
    e->jkt = jkt;
    e->jti = jti;
    e->iat = ts / 1000000;
    e->has_iat = 1;
    e->htm = "POST";
    e->htu = "https://api.example.com/api/invoices/2026/0001234/lines";
    e->alg = "ES256";
    e->token_hash = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";
    e->token_sub = "svc-billing";
    e->token_client_id = "billing-agent";
    e->policy_client = "billing-agent";
    e->user_agent = "legacy-batch/4.2 (+https://example.net) libcurl/7.88.1";
    e->mode = "enforce";
}

static double cmp_d(const void *a, const void *b)
{
    return *(const double *)a - *(const double *)b;
}

static int dcmp(const void *a, const void *b)
{
    double d = cmp_d(a, b);
    return d < 0 ? -1 : d > 0;
}

/* Child: submit n events through the writer; print submit latency stats
 * to a pipe; a full queue is counted and the event retried (the module
 * would drop it: counted separately). */
static void child_submit(const char *dir, int id, long n, int fd)
{
    audit_writer_t *w = NULL;
    char err[256], jkt[64], jti[64];
    long drops = 0;
    double maxlat = 0, sumlat = 0;
    if (audit_writer_start(dir, (size_t)8 << 30, 0, &w, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "writer: %s\n", err);
        _exit(1);
    }
    for (long i = 0; i < n; i++) {
        audit_event_t e;
        snprintf(jkt, sizeof(jkt), "bench-jkt-%d-%06ld-NzbLsXh8uDCcd6MNwXF4W7noWXFZ", id, i % 5000);
        snprintf(jti, sizeof(jti), "jti-%d-%ld", id, i);
        mk(&e, jkt, jti, T0 + i, (unsigned)i);
        for (;;) {
            double t = now_s();
            int rc = audit_writer_submit(w, &e);
            double lat = now_s() - t;
            sumlat += lat;
            if (lat > maxlat)
                maxlat = lat;
            if (rc == DPOP_OK)
                break;
            drops++;
            usleep(200); /* benchmark only: wait for room instead of dropping */
        }
    }
    audit_writer_stop(w);
    char line[128];
    int len = snprintf(line, sizeof(line), "%ld %.9f %.9f\n", drops, sumlat / (double)(n + drops),
                       maxlat);
    if (write(fd, line, (size_t)len) != len)
        _exit(1);
    _exit(0);
}

static double run_procs(int procs, long each, long *drops, double *avg_lat, double *max_lat)
{
    char dir[] = "/tmp/dpop-bench-audit-XXXXXX";
    int fds[2];
    if (!mkdtemp(dir) || pipe(fds) != 0)
        exit(1);
    /* create the store before forking (each child opens its own env) */
    audit_store_t *s = NULL;
    char err[256];
    if (audit_open(dir, (size_t)8 << 30, AUDIT_OPEN_RDWR, &s, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    audit_close(s);
    double t = now_s();
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();
        if (pid == 0)
            child_submit(dir, p, each, fds[1]);
    }
    *drops = 0;
    *avg_lat = 0;
    *max_lat = 0;
    for (int p = 0; p < procs; p++) {
        int st;
        wait(&st);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child failed\n");
            exit(1);
        }
    }
    double el = now_s() - t;
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    long d;
    double a, m;
    while (fscanf(f, "%ld %lf %lf", &d, &a, &m) == 3) {
        *drops += d;
        *avg_lat += a / procs;
        if (m > *max_lat)
            *max_lat = m;
    }
    fclose(f);
    /* check the count and the chain */
    audit_verify_t v;
    if (audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)) != DPOP_OK ||
        audit_verify(s, &v, err, sizeof(err)) != DPOP_OK || !v.ok ||
        v.events != (uint64_t)(procs * each)) {
        fprintf(stderr, "store check failed: %s\n", err);
        exit(1);
    }
    audit_verify_clear(&v);
    audit_close(s);
    rm_store(dir);
    return (double)(procs * each) / el;
}

static double unbatched_rate(long n)
{
    char dir[] = "/tmp/dpop-bench-audit-XXXXXX";
    audit_store_t *s = NULL;
    char err[256], jti[64];
    if (!mkdtemp(dir) || audit_open(dir, 0, AUDIT_OPEN_RDWR, &s, err, sizeof(err)) != DPOP_OK)
        exit(1);
    double t = now_s();
    for (long i = 0; i < n; i++) {
        audit_event_t e;
        snprintf(jti, sizeof(jti), "u-%ld", i);
        mk(&e, "bench-unbatched", jti, T0 + i, (unsigned)i);
        if (audit_append(s, &e, err, sizeof(err)) != DPOP_OK)
            exit(1);
    }
    double el = now_s() - t;
    audit_close(s);
    rm_store(dir);
    return (double)n / el;
}

static void lookup_bench(long total)
{
    char dir[] = "/tmp/dpop-bench-audit-XXXXXX";
    audit_store_t *s = NULL;
    char err[256];
    enum { BATCH = 5000, TARGET = 100, LOOKUPS = 2000 };
    if (!mkdtemp(dir) ||
        audit_open(dir, (size_t)8 << 30, AUDIT_OPEN_RDWR, &s, err, sizeof(err)) != DPOP_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    audit_event_t *evs = calloc(BATCH, sizeof(*evs));
    const audit_event_t **p = calloc(BATCH, sizeof(*p));
    char(*jkts)[64] = calloc(BATCH, 64);
    char(*jtis)[64] = calloc(BATCH, 64);
    long every = total / TARGET;
    unsigned seed = 12345;
    double t = now_s();
    for (long base = 0; base < total; base += BATCH) {
        long n = total - base < BATCH ? total - base : BATCH;
        for (long i = 0; i < n; i++) {
            long k = base + i;
            if (k % every == every / 2)
                snprintf(jkts[i], 64, "TARGET-jkt-0123456789abcdefghijklmnopqrstuv");
            else
                snprintf(jkts[i], 64, "jkt-%08u", (seed = seed * 1103515245 + 12345) % 200000);
            snprintf(jtis[i], 64, "jti-%ld", k);
            mk(&evs[i], jkts[i], jtis[i], T0 + k * 1000, (unsigned)k);
            p[i] = &evs[i];
        }
        if (audit_append_batch(s, p, (size_t)n, err, sizeof(err)) != DPOP_OK) {
            fprintf(stderr, "fill: %s\n", err);
            exit(1);
        }
    }
    double fill = now_s() - t;
    audit_close(s);
    printf("fill: %ld events in %.1f s (%.0f events/s, direct batches of %d)\n", total, fill,
           (double)total / fill, BATCH);

    if (audit_open(dir, 0, AUDIT_OPEN_RDONLY, &s, err, sizeof(err)) != DPOP_OK)
        exit(1);
    double *lat = calloc(LOOKUPS, sizeof(double));
    const char *names[2] = {"TARGET-jkt-0123456789abcdefghijklmnopqrstuv", NULL};
    char other[64];
    for (int which = 0; which < 2; which++) {
        size_t got = 0;
        for (int i = 0; i < LOOKUPS; i++) {
            if (which == 1) {
                snprintf(other, sizeof(other), "jkt-%08d", (i * 7919) % 200000);
                names[1] = other;
            }
            audit_filter_t f = {.jkt = names[which]};
            audit_iter_t *it = NULL;
            audit_record_t r = {0};
            double t1 = now_s();
            if (audit_iter_open(&s, 1, &f, &it, err, sizeof(err)) != DPOP_OK)
                exit(1);
            got = 0;
            while (audit_iter_next(it, &r, err, sizeof(err)) == 1) {
                got += audit_rec_str(&r, "jti") != NULL;
                audit_record_clear(&r);
            }
            audit_iter_close(it);
            lat[i] = now_s() - t1;
        }
        qsort(lat, LOOKUPS, sizeof(double), dcmp);
        printf("lookup by jkt (%s, %zu events each%s) over %ld events: median %.3f ms, p99 %.3f "
               "ms (%d lookups)\n",
               which ? "random keys" : "target key", got, which ? " for the last" : "", total,
               lat[LOOKUPS / 2] * 1e3, lat[LOOKUPS * 99 / 100] * 1e3, LOOKUPS);
    }
    free(lat);
    audit_close(s);
    rm_store(dir);
    free(evs);
    free(p);
    free(jkts);
    free(jtis);
}

int main(int argc, char **argv)
{
    long each = argc > 1 ? atol(argv[1]) : 200000;
    long total = argc > 2 ? atol(argv[2]) : 1000000;
    long drops;
    double avg, mx;
    if (each <= 0 || total < 1000) {
        fprintf(stderr, "usage: bench_audit [EVENTS_PER_PROC] [STORE_EVENTS>=1000]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("audit store benchmark (target: >= 50000 events/s; jkt lookup of 100 events < 5 ms "
           "at 1000000)\n");
    double r1 = run_procs(1, each, &drops, &avg, &mx);
    printf("append, 1 process  (writer path): %.0f events/s; submit avg %.2f us, max %.2f ms; "
           "queue-full retries %ld\n",
           r1, avg * 1e6, mx * 1e3, drops);
    double r4 = run_procs(4, each, &drops, &avg, &mx);
    printf("append, 4 processes (writer path): %.0f events/s total; submit avg %.2f us, max %.2f "
           "ms; queue-full retries %ld\n",
           r4, avg * 1e6, mx * 1e3, drops);
    double ru = unbatched_rate(2000);
    printf("append, 1 process, one transaction per event: %.0f events/s\n", ru);
    printf("ratios: 4-proc/1-proc %.2f; batched/unbatched %.1f\n", r4 / r1, r1 / ru);
    lookup_bench(total);
    return 0;
}
