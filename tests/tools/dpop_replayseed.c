/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_replayseed.c (test tool, never installed): write an empty, cleanly
 * closed shm replay table (core/dpop_replaytab.h) to FILE, remembering
 * since SINCE (unix s, default 0).
 *
 * Why: a fresh table refuses every proof issued before its creation + the
 * clock skew (DESIGN.md "Replay stores"), which is right for a server but
 * would make each test's new httpd refuse the proofs of its first seconds.
 * The harness seeds the default store of an httpd that is not testing the
 * store itself, as if it had been remembering for a long time (a server
 * that has been running).  The table's own tests start without a seed.
 *
 * dpop_replayseed --fill FILE BYTES EXPIRY opens a cleanly closed table
 * (httpd stopped) and stores random keys live until EXPIRY until 20,000
 * inserts in a row were refused as full, then closes it cleanly: every
 * bucket is then full (a full-store test without 57,000 requests).  Keys
 * go through the table's own insert, so nothing live is overwritten.
 *
 * Usage: dpop_replayseed FILE BYTES [SINCE]; exit 0 or 1.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dpop_replaytab.h"
#include "dpop_result.h"

static int fill(const char *path, unsigned long long bytes, long long expiry)
{
    dpop_replaytab_t *t = NULL;
    void *mem = MAP_FAILED;
    int fd = open(path, O_RDWR), rc = 1, misses = 0;
    unsigned long long stored = 0;
    if (fd < 0)
        goto done;
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED || dpop_replaytab_open(mem, bytes, &t) != DPOP_REPLAYTAB_OPEN_OK)
        goto done;
    while (misses < 20000) {
        unsigned char key[32];
        dpop_replaytab_status_t st;
        if (RAND_bytes(key, sizeof(key)) != 1)
            goto done;
        st = dpop_replaytab_check_and_store(t, key, (int64_t)time(NULL), expiry);
        if (st == DPOP_REPLAYTAB_FULL)
            misses++;
        else if (st == DPOP_REPLAYTAB_FRESH)
            misses = 0, stored++;
        else
            goto done;
    }
    dpop_replaytab_close(t);
    if (msync(mem, bytes, MS_SYNC) != 0)
        goto done;
    printf("%llu\n", stored);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "dpop_replayseed --fill: cannot fill %s\n", path);
    if (mem != MAP_FAILED)
        munmap(mem, bytes);
    if (fd >= 0)
        close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned long long bytes;
    long long since = 0;
    unsigned char salt[32];
    dpop_replaytab_t *t = NULL;
    void *mem = MAP_FAILED;
    int fd = -1, rc = 1;

    if (argc == 5 && !strcmp(argv[1], "--fill"))
        return fill(argv[2], strtoull(argv[3], NULL, 10), strtoll(argv[4], NULL, 10));
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: dpop_replayseed FILE BYTES [SINCE]\n");
        return 2;
    }
    bytes = strtoull(argv[2], NULL, 10);
    if (argc == 4)
        since = strtoll(argv[3], NULL, 10);
    if (!dpop_replaytab_slots(bytes)) {
        fprintf(stderr, "dpop_replayseed: size out of range\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0)
        goto done;
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED || RAND_bytes(salt, sizeof(salt)) != 1 ||
        dpop_replaytab_format(mem, bytes, salt, since, &t) != DPOP_OK)
        goto done;
    dpop_replaytab_close(t);
    if (msync(mem, bytes, MS_SYNC) != 0)
        goto done;
    rc = 0;
done:
    if (rc)
        perror("dpop_replayseed");
    if (mem != MAP_FAILED)
        munmap(mem, bytes);
    if (fd >= 0)
        close(fd);
    return rc;
}
