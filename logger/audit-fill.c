/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit-fill.c: test and benchmark helper (not installed).  Reads events as
 * JSON lines (DESIGN.md field names; "ts" RFC 3339, absent -> now) from
 * stdin and appends them to one store, either directly in transactions of
 * --batch events or through the asynchronous writer the module uses
 * (--writer).  A line with "verified" or "rejected" is a per-hour request
 * count instead ({"hour": RFC 3339, "host", "vhost", "mode", "verified": N,
 * "rejected": M}), added with audit_counts_add or, with --writer, through
 * audit_writer_count as the module does.
 * Prints "appended N" on stdout; exit 1 on any failure.
 * It writes only what it reads; never invents tokens or keys.
 */
#include "audit_event.h"
#include "audit_time.h"
#include "dpop_audit.h"
#include "dpop_result.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 100000

/* One JSON object -> ev, walking the event's field table; strings are
 * borrowed from o. */
static int to_event(json_t *o, audit_event_t *ev)
{
    const audit_field_t *f = audit_event_fields();
    memset(ev, 0, sizeof(*ev));
    for (size_t i = 0; i < AUDIT_NFIELDS; i++) {
        json_t *v = json_object_get(o, f[i].name);
        char *m = (char *)ev + f[i].off;
        if (f[i].kind == AUDIT_F_STR) {
            *(const char **)(void *)m = json_string_value(v);
        }
        else if (f[i].kind == AUDIT_F_INT) {
            *(int64_t *)(void *)m = json_integer_value(v);
        }
        else if (f[i].kind == AUDIT_F_IAT) {
            ev->has_iat = json_is_integer(v);
            ev->iat = json_integer_value(v);
        }
        else if (json_string_value(v) &&
                 audit_time_parse_rfc3339(json_string_value(v), &ev->ts_us) != DPOP_OK) {
            return DPOP_ERR; /* "ts" absent -> 0 -> now */
        }
    }
    return DPOP_OK;
}

/* A count line: added at once (they are few). */
static int add_count(json_t *o, audit_store_t *st, audit_writer_t *w, char *err, size_t errsz)
{
    audit_count_t c = {0};
    const char *hour = json_string_value(json_object_get(o, "hour"));
    json_t *ver = json_object_get(o, "verified"), *rej = json_object_get(o, "rejected");
    if (!hour || audit_time_parse_rfc3339(hour, &c.hour_us) != DPOP_OK ||
        (ver && (!json_is_integer(ver) || json_integer_value(ver) < 0)) ||
        (rej && (!json_is_integer(rej) || json_integer_value(rej) < 0))) {
        snprintf(err, errsz, "a count needs \"hour\" (RFC 3339) and non-negative integers");
        return DPOP_ERR;
    }
    c.host = json_string_value(json_object_get(o, "host"));
    c.vhost = json_string_value(json_object_get(o, "vhost"));
    c.mode = json_string_value(json_object_get(o, "mode"));
    c.verified = (uint64_t)json_integer_value(ver);
    c.rejected = (uint64_t)json_integer_value(rej);
    if (w && audit_writer_count(w, c.hour_us, c.host, c.vhost, c.mode, c.verified, c.rejected) !=
                 DPOP_OK) {
        snprintf(err, errsz, "writer count table full");
        return DPOP_ERR;
    }
    if (w)
        return DPOP_OK;
    return audit_counts_add(st, &c, 1, err, errsz);
}

int main(int argc, char **argv)
{
    const char *store = NULL;
    size_t mapsize = 0, batch = 1000;
    int use_writer = 0, ret = 1;
    char err[512], *line = NULL;
    size_t cap = 0, lineno = 0, appended = 0, nb = 0;
    ssize_t len;
    audit_store_t *st = NULL;
    audit_writer_t *w = NULL;
    json_t **objs = NULL;
    audit_event_t *evs = NULL;
    const audit_event_t **ptrs = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            store = argv[++i];
        else if (strcmp(argv[i], "--map-size") == 0 && i + 1 < argc)
            mapsize = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--writer") == 0)
            use_writer = 1;
        else {
            fprintf(stderr, "usage: audit-fill --store DIR [--map-size BYTES] [--batch N] "
                            "[--writer] < events.jsonl\n");
            return 2;
        }
    }
    if (!store || batch == 0 || batch > MAX_BATCH) {
        fprintf(stderr, "audit-fill: --store DIR required; --batch 1..%d\n", MAX_BATCH);
        return 2;
    }
    if (use_writer ? audit_writer_start(store, mapsize, 0, &w, err, sizeof(err))
                   : audit_open(store, mapsize, AUDIT_OPEN_RDWR, &st, err, sizeof(err))) {
        fprintf(stderr, "audit-fill: %s\n", err);
        return 1;
    }
    objs = calloc(batch, sizeof(*objs));
    evs = calloc(batch, sizeof(*evs));
    ptrs = calloc(batch, sizeof(*ptrs));
    if (!objs || !evs || !ptrs)
        goto done;
    for (;;) {
        len = getline(&line, &cap, stdin);
        if (len > 0) {
            lineno++;
            json_error_t je;
            json_t *o = json_loadb(line, (size_t)len, 0, &je);
            if (!o && strspn(line, " \t\r\n") == (size_t)len)
                continue;
            if (json_is_object(o) &&
                (json_object_get(o, "verified") || json_object_get(o, "rejected"))) {
                int rc = add_count(o, st, w, err, sizeof(err));
                json_decref(o);
                if (rc != DPOP_OK) {
                    fprintf(stderr, "audit-fill: line %zu: %s\n", lineno, err);
                    goto done;
                }
                continue;
            }
            if (!o || !json_is_object(o) || to_event(o, &evs[nb]) != DPOP_OK) {
                fprintf(stderr, "audit-fill: line %zu: not an event object\n", lineno);
                json_decref(o);
                goto done;
            }
            objs[nb] = o;
            ptrs[nb] = &evs[nb];
            nb++;
        }
        if (nb && (nb == batch || len < 0)) {
            int rc = DPOP_OK;
            if (w) {
                for (size_t i = 0; i < nb; i++)
                    if (audit_writer_submit(w, ptrs[i]) != DPOP_OK)
                        rc = DPOP_ERR;
            }
            else {
                rc = audit_append_batch(st, ptrs, nb, err, sizeof(err));
            }
            for (size_t i = 0; i < nb; i++)
                json_decref(objs[i]);
            if (rc != DPOP_OK) {
                fprintf(stderr, "audit-fill: %s\n", w ? "writer queue full" : err);
                nb = 0;
                goto done;
            }
            appended += nb;
            nb = 0;
        }
        if (len < 0)
            break;
    }
    ret = 0;
done:
    for (size_t i = 0; i < nb; i++)
        json_decref(objs[i]);
    if (w) {
        audit_writer_stop(w);
        /* stop has flushed: count what the writer could not commit */
        w = NULL;
    }
    audit_close(st);
    if (ret == 0)
        printf("appended %zu\n", appended);
    free(line);
    free(objs);
    free(evs);
    free(ptrs);
    return ret;
}
