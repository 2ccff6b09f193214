/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_audit_alerts.c: the four alert rules on crafted event sequences:
 * each fires exactly when it should and once; sliding-window edges (an
 * event exactly one window after the first still counts, one microsecond
 * later does not); re-arming; the ECS shape of an alert; token theft and
 * cross-host replay across two stores read together; one alert per
 * incident whose counts cover every event of its subject (issue 10 item
 * 4), printed once by a one-shot run and updated under one event.id by
 * --follow-style flushes.  Context (issue 19 item 4): severity and mode
 * per rule and mode (table), the policy client taken from the incident's
 * events, a burst seen by IP and by key is one incident, and the token's
 * owner never extends or re-fires its theft incident (table).
 *
 * The step tests flush after every event (as --follow does after a poll)
 * into a sink that keeps the latest line per event.id, as a SIEM upserts:
 * the number of alerts there is the number of incidents.
 */
#include <jansson.h>

#include "audit_alerts.h"
#include "test_audit_util.h"

typedef struct {
    json_t *alerts;
    size_t lines; /* every line emitted, updates included */
} sink_t;

static const char *alert_id(json_t *alert)
{
    return json_string_value(json_object_get(json_object_get(alert, "event"), "id"));
}

/* Theft lines printed by collect (each opening or update of a theft). */
static size_t theft_lines;

/* Upsert by event.id (a copy: the engine keeps updating its own). */
static void collect(json_t *alert, void *arg)
{
    sink_t *s = arg;
    const char *id = alert_id(alert);
    ck_assert_ptr_nonnull(id);
    s->lines++;
    if (strcmp(json_string_value(json_object_get(json_object_get(alert, "rule"), "name")),
               "dpop_token_theft") == 0)
        theft_lines++;
    for (size_t i = 0; i < json_array_size(s->alerts); i++)
        if (strcmp(alert_id(json_array_get(s->alerts, i)), id) == 0) {
            json_array_set_new(s->alerts, i, json_deep_copy(alert));
            return;
        }
    json_array_append_new(s->alerts, json_deep_copy(alert));
}

/* Every line as emitted, no upsert. */
static void collect_lines(json_t *alert, void *arg)
{
    sink_t *s = arg;
    s->lines++;
    json_array_append_new(s->alerts, json_deep_copy(alert));
}

/* Feed one crafted event, without flushing. */
static void feed_only(audit_alerts_t *a, sink_t *s, int64_t ts, const char *reason, const char *jkt,
                      const char *jti, const char *th, const char *ip, const char *host)
{
    audit_record_t r = {0};
    r.ts_us = ts;
    r.ev = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o}", "reason", reason ? json_string(reason) : json_null(),
        "jkt", jkt ? json_string(jkt) : json_null(), "jti", jti ? json_string(jti) : json_null(),
        "token_hash", th ? json_string(th) : json_null(), "client_ip",
        ip ? json_string(ip) : json_null(), "host", host ? json_string(host) : json_null());
    ck_assert_int_eq(audit_alerts_feed(a, &r, collect_lines, s), DPOP_OK);
    audit_record_clear(&r);
}

/* Feed one crafted event and flush (a --follow poll of one event). */
static void feed(audit_alerts_t *a, sink_t *s, int64_t ts, const char *reason, const char *jkt,
                 const char *jti, const char *th, const char *ip, const char *host)
{
    audit_record_t r = {0};
    r.ts_us = ts;
    r.ev = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o}", "reason", reason ? json_string(reason) : json_null(),
        "jkt", jkt ? json_string(jkt) : json_null(), "jti", jti ? json_string(jti) : json_null(),
        "token_hash", th ? json_string(th) : json_null(), "client_ip",
        ip ? json_string(ip) : json_null(), "host", host ? json_string(host) : json_null());
    ck_assert_int_eq(audit_alerts_feed(a, &r, collect, s), DPOP_OK);
    audit_record_clear(&r);
    audit_alerts_flush(a, collect, s);
}

static const char *rule(sink_t *s, size_t i)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(s->alerts, i), "rule"), "name"));
}

static json_int_t dpop_int(sink_t *s, size_t i, const char *k)
{
    return json_integer_value(
        json_object_get(json_object_get(json_array_get(s->alerts, i), "dpop"), k));
}

static const char *dpop_str(sink_t *s, size_t i, const char *k)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(s->alerts, i), "dpop"), k));
}

static audit_alerts_t *mk(unsigned sig, unsigned key, int64_t window)
{
    audit_alert_cfg_t c;
    audit_alert_cfg_default(&c);
    c.signature_threshold = sig;
    c.key_threshold = key;
    c.window_us = window;
    audit_alerts_t *a = audit_alerts_new(&c);
    ck_assert_ptr_nonnull(a);
    return a;
}

START_TEST(test_defaults)
{
    audit_alert_cfg_t c;
    audit_alert_cfg_default(&c);
    ck_assert_int_eq(c.window_us, 60 * SEC);
    ck_assert_uint_eq(c.signature_threshold, 10);
    ck_assert_uint_eq(c.key_threshold, 5);
    ck_assert_int_eq(c.horizon_us, 24 * 3600 * SEC);
}
END_TEST

/* The alert engine and its sink for one test (checked fixture). */
static sink_t S;
static audit_alerts_t *A;

static void setup(void)
{
    S.alerts = json_array();
    S.lines = 0;
    theft_lines = 0;
    A = NULL;
}

static void teardown(void)
{
    audit_alerts_free(A);
    json_decref(S.alerts);
}

/* Start (again) with a fresh engine and an empty sink. */
static void restart(unsigned sig, unsigned key, int64_t window)
{
    teardown();
    setup();
    A = mk(sig, key, window);
}

/* One crafted event at T0 + t, and how many alerts there must be after it. */
typedef struct {
    int64_t t;
    const char *reason, *jkt, *jti, *th, *ip, *host;
    size_t alerts;
} step_t;

static void run_steps(const step_t *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        feed(A, &S, T0 + st[i].t, st[i].reason, st[i].jkt, st[i].jti, st[i].th, st[i].ip,
             st[i].host);
        ck_assert_msg(json_array_size(S.alerts) == st[i].alerts, "step %zu: %zu alerts, want %zu",
                      i, json_array_size(S.alerts), st[i].alerts);
    }
}
#define RUN_STEPS(steps) run_steps(steps, sizeof(steps) / sizeof(steps[0]))

START_TEST(test_replay_once_per_jti)
{
    static const step_t steps[] = {
        {0, "htu_mismatch", "K1", "j1", NULL, "10.0.0.1", "web1", 0}, /* not a replay */
        {1, "replay", "K1", "j1", NULL, "10.0.0.1", "web1", 1},
        {2, "replay", "K1", "j1", NULL, "10.0.0.1", "web1", 1}, /* not repeated */
        {3, "replay", "K1", "j2", NULL, "10.0.0.1", "web1", 2}, /* a new jti */
        {4, "replay", "K2", "j1", NULL, "10.0.0.1", "web1", 3}, /* same jti, other key */
    };
    restart(10, 5, 60 * SEC);
    RUN_STEPS(steps);
    ck_assert_str_eq(rule(&S, 0), "dpop_replay");
    /* every event of (K1, j1): the htu_mismatch and both replays */
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 3);
    ck_assert_str_eq(dpop_str(&S, 0, "first_seen"), "2026-01-01T10:00:00.000000Z");
    ck_assert_str_eq(dpop_str(&S, 0, "last_seen"), "2026-01-01T10:00:00.000002Z");
    ck_assert_str_eq(dpop_str(&S, 0, "jti"), "j1");
}
END_TEST

START_TEST(test_replay_across_hosts)
{
    static const step_t steps[] = {
        {0, "htu_mismatch", "K1", "j1", NULL, "10.0.0.1", "web1", 0},
        {SEC, "htu_mismatch", "K1", "j1", NULL, "10.0.0.1", "web1", 0}, /* one host retrying */
        {2 * SEC, "iat_too_old", "K1", "j1", NULL, "10.9.9.9", "web2", 1},
    };
    restart(10, 5, 60 * SEC);
    RUN_STEPS(steps);
    ck_assert_str_eq(rule(&S, 0), "dpop_replay");
    json_t *hosts = json_object_get(json_object_get(json_array_get(S.alerts, 0), "dpop"), "hosts");
    ck_assert_uint_eq(json_array_size(hosts), 2);
}
END_TEST

START_TEST(test_token_theft)
{
    static const step_t steps[] = {
        {0, "htu_mismatch", "KA", "j1", "TH", "10.0.0.1", "web1", 0},
        {1, "htm_mismatch", "KA", "j2", "TH", "10.0.0.1", "web1", 0}, /* one key */
        {2, "jkt_mismatch", NULL, "j3", "TH", "10.0.0.1", "web1", 0}, /* no key known */
        {3 * SEC, "jkt_mismatch", "KB", "j4", "TH", "198.51.100.7", "web2", 1},
        {4 * SEC, "jkt_mismatch", "KC", "j5", "TH", "198.51.100.7", "web2", 1}, /* once per token */
        /* a single jkt_mismatch is theft: the token is bound to another key */
        {5 * SEC, "jkt_mismatch", "KC", "j6", "TH2", "198.51.100.7", "web2", 2},
        {6 * SEC, "htu_mismatch", "KD", "j7", "TH3", "198.51.100.7", "web2", 2}, /* one key */
    };
    restart(10, 5, 60 * SEC);
    RUN_STEPS(steps);
    ck_assert_str_eq(rule(&S, 0), "dpop_token_theft");
    ck_assert_str_eq(dpop_str(&S, 0, "token_hash"), "TH");
    ck_assert_str_eq(dpop_str(&S, 0, "jkt"), "KB");
    /* the foreign keys' events only: KA owns TH, the keyless one is not
     * attributable */
    ck_assert_str_eq(dpop_str(&S, 0, "owner_jkt"), "KA");
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 2);
    ck_assert_str_eq(dpop_str(&S, 0, "first_seen"), "2026-01-01T10:00:03.000000Z");
    ck_assert_str_eq(dpop_str(&S, 0, "last_seen"), "2026-01-01T10:00:04.000000Z");
    ck_assert_str_eq(rule(&S, 1), "dpop_token_theft");
    ck_assert_str_eq(dpop_str(&S, 1, "token_hash"), "TH2");
    ck_assert_str_eq(dpop_str(&S, 1, "jkt"), "KC");
    ck_assert_int_eq(dpop_int(&S, 1, "event_count"), 1);
}
END_TEST

START_TEST(test_signature_burst_window_edges)
{
    /* threshold 3 in 10 s: exactly 10 s between first and third fires */
    static const step_t edge[] = {
        {0, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w", 0},
        {5 * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w", 0},
        {10 * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w", 1},
    };
    /* one microsecond more and the first event has left the window */
    static const step_t past[] = {
        {0, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w", 0},
        {5 * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w", 0},
        {10 * SEC + 1, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w", 0},
        /* other reasons and other IPs do not count */
        {11 * SEC, "bad_jwk", NULL, NULL, NULL, "10.0.0.1", "w", 0},
        {11 * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.2", "w", 0},
        /* the third within 10 s of the second fires */
        {12 * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w", 1},
    };
    restart(3, 5, 10 * SEC);
    RUN_STEPS(edge);
    ck_assert_str_eq(rule(&S, 0), "dpop_signature_burst");
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 3);
    ck_assert_str_eq(dpop_str(&S, 0, "group_by"), "source.ip");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(S.alerts, 0), "source"), "ip")),
                     "10.0.0.1");
    restart(3, 5, 10 * SEC);
    RUN_STEPS(past);
}
END_TEST

START_TEST(test_burst_rearm)
{
    restart(3, 5, 10 * SEC);
    for (int i = 0; i < 10; i++) /* a sustained burst: one alert */
        feed(A, &S, T0 + i * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w");
    ck_assert_uint_eq(json_array_size(S.alerts), 1);
    /* counting all ten, not the three that made it fire */
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 10);
    ck_assert_str_eq(dpop_str(&S, 0, "first_seen"), "2026-01-01T10:00:00.000000Z");
    ck_assert_str_eq(dpop_str(&S, 0, "last_seen"), "2026-01-01T10:00:09.000000Z");
    /* quiet for longer than the window, then a new burst: a new alert */
    for (int i = 0; i < 3; i++)
        feed(A, &S, T0 + 100 * SEC + i, "bad_signature", NULL, NULL, NULL, "10.0.0.1", "w");
    ck_assert_uint_eq(json_array_size(S.alerts), 2);
    ck_assert_int_eq(dpop_int(&S, 1, "event_count"), 3);
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 10); /* the first wave is over */
}
END_TEST

START_TEST(test_burst_by_jkt)
{
    restart(3, 5, 60 * SEC);
    const char *ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
    for (int i = 0; i < 3; i++)
        feed(A, &S, T0 + i * SEC, "bad_signature", "KX", NULL, NULL, ips[i], "w");
    ck_assert_uint_eq(json_array_size(S.alerts), 1);
    ck_assert_str_eq(dpop_str(&S, 0, "group_by"), "dpop.jkt");
    ck_assert_str_eq(dpop_str(&S, 0, "jkt"), "KX");
}
END_TEST

START_TEST(test_key_burst_reasons)
{
    static const step_t steps[] = {
        {0, "bad_jwk", NULL, NULL, NULL, "10.0.0.5", "w", 0},
        {SEC, "private_key_in_jwk", NULL, NULL, NULL, "10.0.0.5", "w", 0},
        {2 * SEC, "jkt_mismatch", NULL, NULL, NULL, "10.0.0.5", "w", 0},
        /* neither a signature failure nor a replay is a key failure */
        {3 * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.5", "w", 0},
        {3 * SEC, "replay", NULL, NULL, NULL, "10.0.0.5", "w", 0},
        {4 * SEC, "key_revoked", NULL, NULL, NULL, "10.0.0.5", "w", 1},
    };
    restart(10, 4, 60 * SEC);
    RUN_STEPS(steps);
    ck_assert_str_eq(rule(&S, 0), "dpop_key_burst");
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 4);
}
END_TEST

START_TEST(test_ecs_shape)
{
    restart(10, 5, 60 * SEC);
    feed(A, &S, T0 + 5, "replay", "K1", "j1", "TH", "10.0.0.1", "web1");
    json_t *al = json_array_get(S.alerts, 0);
    ck_assert_str_eq(json_string_value(json_object_get(al, "@timestamp")),
                     "2026-01-01T10:00:00.000005Z");
    json_t *ev = json_object_get(al, "event");
    ck_assert(json_is_object(ev)); /* nested, not "event.kind" */
    ck_assert_ptr_null(json_object_get(al, "event.kind"));
    ck_assert_str_eq(json_string_value(json_object_get(ev, "kind")), "alert");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "category")), "authentication");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(al, "host"), "name")),
                     "web1");
    ck_assert_str_eq(dpop_str(&S, 0, "token_hash"), "TH");
    ck_assert_str_eq(dpop_str(&S, 0, "jkt"), "K1");
    ck_assert_str_eq(dpop_str(&S, 0, "first_seen"), "2026-01-01T10:00:00.000005Z");
    ck_assert_str_eq(dpop_str(&S, 0, "last_seen"), "2026-01-01T10:00:00.000005Z");
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 1);
    const char *id = alert_id(al);
    ck_assert_uint_eq(strlen(id), 32);
    ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 32);
}
END_TEST

/* issue 10 item 4: a jti replayed three times is one alert counting the
 * three events, not an alert per event and not a count of one; a one-shot
 * run (feed everything, flush once) prints each incident exactly once. */
START_TEST(test_one_alert_per_incident)
{
    restart(3, 5, 60 * SEC);
    for (int i = 0; i < 3; i++)
        feed_only(A, &S, T0 + i * SEC, "replay", "K1", "j1", NULL, "10.0.0.1", "web1");
    /* token theft: two keys, four events of that token (one without a key) */
    feed_only(A, &S, T0 + 10 * SEC, "htu_mismatch", "KA", "t1", "TH", "10.0.0.1", "web1");
    feed_only(A, &S, T0 + 11 * SEC, "ath_mismatch", "KB", "t2", "TH", "10.0.0.9", "web2");
    feed_only(A, &S, T0 + 12 * SEC, "htm_mismatch", "KA", "t3", "TH", "10.0.0.1", "web1");
    feed_only(A, &S, T0 + 13 * SEC, "missing_proof", NULL, NULL, "TH", "10.0.0.9", "web2");
    /* a sustained burst: threshold 3, six events */
    for (int i = 0; i < 6; i++)
        feed_only(A, &S, T0 + (20 + i) * SEC, "bad_signature", NULL, NULL, NULL, "10.0.0.7", "w");
    ck_assert_uint_eq(S.lines, 0); /* nothing before the flush */
    audit_alerts_flush(A, collect_lines, &S);
    ck_assert_uint_eq(S.lines, 3);
    ck_assert_str_eq(rule(&S, 0), "dpop_replay");
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 3);
    ck_assert_str_eq(dpop_str(&S, 0, "first_seen"), "2026-01-01T10:00:00.000000Z");
    ck_assert_str_eq(dpop_str(&S, 0, "last_seen"), "2026-01-01T10:00:02.000000Z");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(S.alerts, 0), "@timestamp")),
                     "2026-01-01T10:00:00.000000Z");
    ck_assert_str_eq(rule(&S, 1), "dpop_token_theft");
    /* KB's event only: KA (the owner) and the keyless event are not theft */
    ck_assert_int_eq(dpop_int(&S, 1, "event_count"), 1);
    ck_assert_str_eq(dpop_str(&S, 1, "jkt"), "KB"); /* the event that made it fire */
    ck_assert_str_eq(dpop_str(&S, 1, "first_seen"), "2026-01-01T10:00:11.000000Z");
    ck_assert_str_eq(dpop_str(&S, 1, "last_seen"), "2026-01-01T10:00:11.000000Z");
    ck_assert_str_eq(rule(&S, 2), "dpop_signature_burst");
    ck_assert_int_eq(dpop_int(&S, 2, "event_count"), 6);
    /* nothing changed: a second flush prints nothing */
    audit_alerts_flush(A, collect_lines, &S);
    ck_assert_uint_eq(S.lines, 3);
}
END_TEST

/* --follow: an incident is printed when it opens and again, with the same
 * event.id and new counts, after a poll that added events to it; a poll
 * that added none prints nothing for it. */
START_TEST(test_incident_updates_keep_their_id)
{
    restart(10, 5, 60 * SEC);
    feed_only(A, &S, T0, "replay", "K1", "j1", NULL, "10.0.0.1", "web1");
    audit_alerts_flush(A, collect_lines, &S);
    ck_assert_uint_eq(S.lines, 1);
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 1);
    feed_only(A, &S, T0 + SEC, "replay", "K1", "j1", NULL, "10.0.0.1", "web1");
    feed_only(A, &S, T0 + 2 * SEC, "replay", "K1", "j1", NULL, "10.0.0.2", "web2");
    feed_only(A, &S, T0 + 3 * SEC, "htu_mismatch", "K1", "other", NULL, "10.0.0.1", "web1");
    audit_alerts_flush(A, collect_lines, &S);
    ck_assert_uint_eq(S.lines, 2); /* one update for the three events */
    ck_assert_str_eq(alert_id(json_array_get(S.alerts, 1)), alert_id(json_array_get(S.alerts, 0)));
    ck_assert_int_eq(dpop_int(&S, 1, "event_count"), 3);
    ck_assert_str_eq(dpop_str(&S, 1, "last_seen"), "2026-01-01T10:00:02.000000Z");
    json_t *hosts = json_object_get(json_object_get(json_array_get(S.alerts, 1), "dpop"), "hosts");
    ck_assert_uint_eq(json_array_size(hosts), 2);
    /* the first line was not changed behind the SIEM's back */
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 1);
    audit_alerts_flush(A, collect_lines, &S);
    ck_assert_uint_eq(S.lines, 2);
}
END_TEST

/* The same subject after a quiet horizon is a new incident (new id); the
 * old one is printed once with its final counts and forgotten. */
START_TEST(test_new_window_new_incident)
{
    audit_alert_cfg_t c;
    audit_alert_cfg_default(&c);
    c.horizon_us = 10 * SEC;
    A = audit_alerts_new(&c);
    feed_only(A, &S, T0, "replay", "K1", "j1", NULL, "10.0.0.1", "w");
    feed_only(A, &S, T0 + SEC, "replay", "K1", "j1", NULL, "10.0.0.1", "w");
    feed_only(A, &S, T0 + 20 * SEC, "replay", "K1", "j1", NULL, "10.0.0.1", "w");
    audit_alerts_flush(A, collect_lines, &S);
    ck_assert_uint_eq(S.lines, 2);
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 2);
    ck_assert_int_eq(dpop_int(&S, 1, "event_count"), 1);
    ck_assert_str_ne(alert_id(json_array_get(S.alerts, 0)), alert_id(json_array_get(S.alerts, 1)));
}
END_TEST

START_TEST(test_theft_across_two_stores)
{
    /* the token is used with key A on web1 and key B on web2: each store
     * alone shows nothing, read together they show the theft */
    char *d1 = tmp_store(), *d2 = tmp_store();
    audit_store_t *st[2] = {open_rw(d1, 0), open_rw(d2, 0)};
    audit_event_t e1 = mk_event(T0, "htu_mismatch", "KA", "j1", "THX", "10.0.0.1", "web1");
    audit_event_t e2 = mk_event(T0 + SEC, "ath_mismatch", "KB", "j2", "THX", "203.0.113.9", "web2");
    append_ok(st[0], &e1);
    append_ok(st[1], &e2);
    char err[256];
    for (int pass = 0; pass < 3; pass++) {
        sink_t s = {json_array(), 0};
        audit_alerts_t *a = mk(10, 5, 60 * SEC);
        audit_iter_t *it = NULL;
        audit_record_t r = {0};
        size_t n = pass == 2 ? 2 : 1;
        ck_assert_int_eq(audit_iter_open(pass == 1 ? &st[1] : st, n, NULL, &it, err, sizeof(err)),
                         DPOP_OK);
        while (audit_iter_next(it, &r, err, sizeof(err)) == 1) {
            ck_assert_int_eq(audit_alerts_feed(a, &r, collect, &s), DPOP_OK);
            audit_record_clear(&r);
        }
        audit_alerts_flush(a, collect, &s);
        audit_iter_close(it);
        ck_assert_uint_eq(json_array_size(s.alerts), pass == 2 ? 1 : 0);
        if (pass == 2) {
            ck_assert_str_eq(rule(&s, 0), "dpop_token_theft");
            ck_assert_str_eq(json_string_value(json_object_get(
                                 json_object_get(json_array_get(s.alerts, 0), "host"), "name")),
                             "web2");
        }
        audit_alerts_free(a);
        json_decref(s.alerts);
    }
    audit_close(st[0]);
    audit_close(st[1]);
    rm_store(d1);
    rm_store(d2);
}
END_TEST

START_TEST(test_groups_forgotten_after_horizon)
{
    audit_alert_cfg_t c;
    audit_alert_cfg_default(&c);
    c.horizon_us = 10 * SEC;
    audit_alerts_t *a = audit_alerts_new(&c);
    sink_t s = {json_array(), 0};
    feed(a, &s, T0, "replay", "K1", "j1", NULL, "10.0.0.1", "w");
    ck_assert_uint_eq(json_array_size(s.alerts), 1);
    /* push enough other events past the horizon to trigger a sweep */
    for (int i = 0; i < 5000; i++) {
        char jti[16];
        snprintf(jti, sizeof(jti), "x%d", i);
        feed(a, &s, T0 + 3600 * SEC + i, "htu_mismatch", "K9", jti, NULL, "10.0.0.1", "w");
    }
    /* the old (K1, j1) group was forgotten: a new replay of it alerts again */
    feed(a, &s, T0 + 3601 * SEC, "replay", "K1", "j1", NULL, "10.0.0.1", "w");
    ck_assert_uint_eq(json_array_size(s.alerts), 2);
    audit_alerts_free(a);
    json_decref(s.alerts);
}
END_TEST

/* ------------------------------------------------ context (issue 19) */

/* Feed an event with a mode and a policy client, then flush. */
static void feed_ctx(int64_t ts, const char *reason, const char *jkt, const char *jti,
                     const char *th, const char *ip, const char *mode, const char *client)
{
    audit_record_t r = {0};
    r.ts_us = ts;
    r.ev =
        json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:o}", "reason", reason, "jkt",
                  jkt ? json_string(jkt) : json_null(), "jti", jti ? json_string(jti) : json_null(),
                  "token_hash", th ? json_string(th) : json_null(), "client_ip",
                  ip ? json_string(ip) : json_null(), "host", "web1", "mode", mode, "policy_client",
                  client ? json_string(client) : json_null());
    ck_assert_int_eq(audit_alerts_feed(A, &r, collect, &S), DPOP_OK);
    audit_record_clear(&r);
    audit_alerts_flush(A, collect, &S);
}

typedef struct {
    const char *what;
    const char *reason; /* fed n times at 1 s apart with the modes below */
    int n;
    const char *first_mode, *later_mode;
    const char *rule, *mode, *severity;
    int ecs;
} sev_case_t;

static const sev_case_t sev_cases[] = {
    {"replay enforce", "replay", 1, "enforce", "enforce", "dpop_replay", "enforce", "high", 73},
    {"replay report-only", "replay", 1, "report-only", "report-only", "dpop_replay", "report-only",
     "medium", 47},
    {"replay served then refused", "replay", 2, "report-only", "enforce", "dpop_replay", "enforce",
     "high", 73},
    {"theft enforce", "jkt_mismatch", 1, "enforce", "enforce", "dpop_token_theft", "enforce",
     "critical", 99},
    {"theft report-only", "jkt_mismatch", 1, "report-only", "report-only", "dpop_token_theft",
     "report-only", "high", 73},
    {"signature burst enforce", "bad_signature", 3, "enforce", "enforce", "dpop_signature_burst",
     "enforce", "medium", 47},
    {"signature burst report-only", "bad_signature", 3, "report-only", "report-only",
     "dpop_signature_burst", "report-only", "low", 21},
    {"key burst report-only", "bad_jwk", 3, "report-only", "report-only", "dpop_key_burst",
     "report-only", "low", 21},
};

static json_t *alert_of_rule(const char *name)
{
    for (size_t i = 0; i < json_array_size(S.alerts); i++)
        if (strcmp(rule(&S, i), name) == 0)
            return json_array_get(S.alerts, i);
    return NULL;
}

START_TEST(test_severity_and_mode_table)
{
    const sev_case_t *c = &sev_cases[_i];
    restart(3, 3, 60 * SEC);
    for (int i = 0; i < c->n; i++)
        feed_ctx(T0 + i * SEC, c->reason, "K1", "j1", "TH", "10.0.0.1",
                 i ? c->later_mode : c->first_mode, NULL);
    json_t *al = alert_of_rule(c->rule);
    ck_assert_msg(al != NULL, "%s: no %s alert", c->what, c->rule);
    json_t *d = json_object_get(al, "dpop");
    ck_assert_msg(strcmp(json_string_value(json_object_get(d, "mode")), c->mode) == 0, "%s",
                  c->what);
    ck_assert_msg(strcmp(json_string_value(json_object_get(d, "severity")), c->severity) == 0,
                  "%s: %s", c->what, json_string_value(json_object_get(d, "severity")));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(al, "event"), "severity")),
                     c->ecs);
}
END_TEST

/* The policy client comes from the incident's events: the first one that
 * names it, even when the event that fired had none. */
START_TEST(test_policy_client_from_events)
{
    restart(10, 5, 60 * SEC);
    feed_ctx(T0, "replay", "K1", "j1", NULL, "10.0.0.1", "enforce", NULL);
    ck_assert(json_is_null(
        json_object_get(json_object_get(json_array_get(S.alerts, 0), "dpop"), "policy_client")));
    feed_ctx(T0 + SEC, "replay", "K1", "j1", NULL, "10.0.0.1", "enforce", "billing-agent");
    feed_ctx(T0 + 2 * SEC, "replay", "K1", "j1", NULL, "10.0.0.1", "enforce", "renamed");
    ck_assert_uint_eq(json_array_size(S.alerts), 1);
    ck_assert_str_eq(dpop_str(&S, 0, "policy_client"), "billing-agent");
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 3);
}
END_TEST

/* A burst from one IP with one key fires both groups: one incident, each
 * event counted once, grouped by both. */
START_TEST(test_burst_by_ip_and_key_is_one_incident)
{
    restart(10, 5, 60 * SEC);
    for (int i = 0; i < 14; i++)
        feed_ctx(T0 + i * SEC, "bad_signature", "KX", NULL, NULL, "203.0.113.9", "enforce",
                 "agent-x");
    ck_assert_uint_eq(json_array_size(S.alerts), 1);
    ck_assert_str_eq(dpop_str(&S, 0, "group_by"), "source.ip,dpop.jkt");
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 14);
    ck_assert_str_eq(dpop_str(&S, 0, "policy_client"), "agent-x");
    /* the same key from another IP joins the key's incident, not a new one */
    feed_ctx(T0 + 15 * SEC, "bad_signature", "KX", NULL, NULL, "203.0.113.10", "enforce", NULL);
    ck_assert_uint_eq(json_array_size(S.alerts), 1);
    ck_assert_int_eq(dpop_int(&S, 0, "event_count"), 15);
}
END_TEST

/* Token theft and the token's owner: sequences of (key, reason) on one
 * token; the owner's own failures never open, re-fire or extend the
 * incident, and never print an update. */
typedef struct {
    const char *what;
    const char *keys[8]; /* "K:reason" per event, 1 s apart */
    int alerts;
    json_int_t count;
    int last_s; /* last_seen, seconds after T0 */
    const char *owner;
    size_t lines; /* lines printed (flush after each event) */
} theft_case_t;

/* clang-format off */
static const theft_case_t theft_cases[] = {
    {"owner only", {"KA:htu_mismatch", "KA:iat_too_old", "KA:replay", NULL}, 0, 0, 0, NULL, 0},
    {"owner fails after the theft",
     {"KA:htu_mismatch", "KB:htu_mismatch", "KA:iat_too_old", "KA:htm_mismatch", "KA:replay",
      NULL}, 1, 1, 1, "KA", 1},
    {"thief keeps going",
     {"KA:htu_mismatch", "KB:ath_mismatch", "KA:iat_too_old", "KB:htu_mismatch", NULL},
     1, 2, 3, "KA", 2},
    /* KA becomes the owner after the line was printed: named in a later
     * update or a one-shot run's single line, never an update by itself */
    {"a mismatch first: its key is not the owner",
     {"KB:jkt_mismatch", "KA:htu_mismatch", "KA:iat_too_old", NULL}, 1, 1, 0, NULL, 1},
    {"the owner's key in a mismatch is still foreign",
     {"KA:htu_mismatch", "KA:jkt_mismatch", "KA:iat_too_old", NULL}, 1, 1, 1, "KA", 1},
};
/* clang-format on */

START_TEST(test_theft_owner_table)
{
    const theft_case_t *c = &theft_cases[_i];
    restart(100, 100, 60 * SEC);
    for (int i = 0; c->keys[i]; i++) {
        char key[8], reason[32], jti[8];
        ck_assert_int_eq(sscanf(c->keys[i], "%7[^:]:%31s", key, reason), 2);
        snprintf(jti, sizeof(jti), "j%d", i);
        feed_ctx(T0 + i * SEC, reason, key, jti, "TH", "10.0.0.1", "enforce", NULL);
    }
    json_t *al = alert_of_rule("dpop_token_theft");
    ck_assert_msg((al != NULL) == (c->alerts == 1), "%s", c->what);
    /* one line per poll that opened or extended it: the owner's polls none */
    ck_assert_msg(theft_lines == c->lines, "%s: %zu theft lines, want %zu", c->what, theft_lines,
                  c->lines);
    if (!al)
        return;
    json_t *d = json_object_get(al, "dpop");
    ck_assert_msg(json_integer_value(json_object_get(d, "event_count")) == c->count,
                  "%s: count %lld", c->what,
                  (long long)json_integer_value(json_object_get(d, "event_count")));
    char want[40];
    snprintf(want, sizeof(want), "2026-01-01T10:00:%02d.000000Z", c->last_s);
    ck_assert_msg(strcmp(json_string_value(json_object_get(d, "last_seen")), want) == 0,
                  "%s: last_seen %s", c->what, json_string_value(json_object_get(d, "last_seen")));
    if (c->owner)
        ck_assert_str_eq(json_string_value(json_object_get(d, "owner_jkt")), c->owner);
    else
        ck_assert(json_is_null(json_object_get(d, "owner_jkt")));
}
END_TEST

static Suite *alerts_suite(void)
{
    Suite *s = suite_create("audit_alerts");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_replay_once_per_jti);
    tcase_add_test(tc, test_replay_across_hosts);
    tcase_add_test(tc, test_token_theft);
    tcase_add_test(tc, test_signature_burst_window_edges);
    tcase_add_test(tc, test_burst_rearm);
    tcase_add_test(tc, test_burst_by_jkt);
    tcase_add_test(tc, test_key_burst_reasons);
    tcase_add_test(tc, test_ecs_shape);
    tcase_add_test(tc, test_groups_forgotten_after_horizon);
    tcase_add_test(tc, test_one_alert_per_incident);
    tcase_add_test(tc, test_incident_updates_keep_their_id);
    tcase_add_test(tc, test_new_window_new_incident);
    tcase_add_loop_test(tc, test_severity_and_mode_table, 0,
                        (int)(sizeof(sev_cases) / sizeof(sev_cases[0])));
    tcase_add_test(tc, test_policy_client_from_events);
    tcase_add_test(tc, test_burst_by_ip_and_key_is_one_incident);
    tcase_add_loop_test(tc, test_theft_owner_table, 0,
                        (int)(sizeof(theft_cases) / sizeof(theft_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("multi_store");
    tcase_add_test(tc, test_theft_across_two_stores);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(alerts_suite());
}
