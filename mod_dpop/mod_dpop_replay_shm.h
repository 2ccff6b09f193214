/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_shm.h: the module's own shared-memory replay store,
 * DPoPReplayCache shm[:SIZE | :/path(SIZE)] (the default), for
 * mod_dpop_replay.c (Apache glue).
 *
 * The table (core/dpop_replaytab.h) lives in a file mapped MAP_SHARED by
 * the parent in post_config, before any child forks: every child of every
 * generation uses that one mapping, and graceful restarts keep it.  A full
 * stop closes it cleanly (flushed, marked clean), so the next start finds
 * the same entries: a planned restart forgets nothing.  A table that cannot
 * be trusted (no file, another size or version, a corrupt header, not
 * closed cleanly) is made anew and records "remembering since" = now; the
 * glue then refuses every proof issued before since + DPoPClockSkew as
 * iat_too_old (DESIGN.md "Replay stores").
 *
 * Default file: DefaultRuntimeDir/dpop-replay.shm (on Debian /run is a
 * tmpfs: kept across restarts of httpd, lost at reboot).  The parent holds
 * an exclusive flock on it, so two httpd instances cannot share one file.
 *
 * Must never: trust a table it could not check, or answer FRESH when the
 * table could not store the key.
 */
#ifndef DPOP_REPLAY_SHM_H
#define DPOP_REPLAY_SHM_H

#include "httpd.h"
#include "apr_pools.h"
#include "apr_time.h"

#include "dpop_replaytab.h"

#define DPOP_SHM_DEFAULT_BYTES 67108864 /* shm:64M */
#define DPOP_SHM_DEFAULT_FILE "dpop-replay.shm"

typedef struct dpop_shmstore dpop_shmstore_t;

/* Parse the argument of "shm:" (NULL or "" = 64M at the default file;
 * "SIZE" with K/M/G suffix or plain bytes; "/path(SIZE)").  Size within
 * 1 MiB..16 GiB.  NULL on success, else a message.  Lives in p. */
const char *dpop_shmstore_configure(apr_pool_t *p, const char *arg, dpop_shmstore_t **out);

/* post_config, in the parent: attach the table kept from the previous
 * generation or open/create the file.  skew (s) only words the log line. */
apr_status_t dpop_shmstore_attach(dpop_shmstore_t *st, apr_pool_t *pconf, apr_pool_t *ptemp,
                                  server_rec *s);
/* post_config, after every store was attached: release tables no longer
 * configured and register the clean close at exit. */
void dpop_shmstore_post_config_done(apr_pool_t *pconf, server_rec *s);
/* child_init: the children use the inherited mapping; they close the file
 * so only the parent holds its lock. */
void dpop_shmstore_child_init(void);

typedef enum {
    DPOP_SHM_FRESH = 0,
    DPOP_SHM_SEEN = 1,
    DPOP_SHM_ERROR = 2 /* full or unusable: *errmsg says which */
} dpop_shm_status_t;

dpop_shm_status_t dpop_shmstore_check_and_store(dpop_shmstore_t *st, const unsigned char key[32],
                                                apr_time_t expiry, apr_pool_t *p,
                                                const char **errmsg);

/* The unix second from which the table remembers every proof stored in
 * it ("remembering since"): 1 and *since set, 0 when not attached.  The
 * rule that refuses older proofs is dpop_replay_forgot's, for every store. */
int dpop_shmstore_since(dpop_shmstore_t *st, apr_int64_t *since);

/* Fill and counters (live counted by a scan); 0 when not attached. */
int dpop_shmstore_stats(dpop_shmstore_t *st, dpop_replaytab_stats_t *out);

const char *dpop_shmstore_path(const dpop_shmstore_t *st);

#endif /* DPOP_REPLAY_SHM_H */
