/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_usage.c: how full an audit store's LMDB map is, for the
 * dpop_audit_map_used_bytes / dpop_audit_map_size_bytes gauges.
 *
 * Cheap by design: mdb_env_info and mdb_env_stat read the current meta
 * page (no transaction, no page walk), so the writer thread can refresh
 * the numbers after every batch it commits and a metrics scrape never does
 * LMDB work.  "Used" is the pages up to the last one the meta page names
 * (me_last_pgno + 1) times the page size: what the file has grown to, free
 * pages LMDB will reuse included, which is what runs out when the map is
 * full (MDB_MAP_FULL).
 */
#include "audit_internal.h"
#include "dpop_result.h"

int audit_store_usage(audit_store_t *s, uint64_t *used, uint64_t *mapsize)
{
    MDB_envinfo info;
    MDB_stat st;
    if (!s || !s->env || mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return DPOP_ERR;
    *used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    *mapsize = (uint64_t)info.me_mapsize;
    return DPOP_OK;
}
