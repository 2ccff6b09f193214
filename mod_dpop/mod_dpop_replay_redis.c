/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_dpop_replay_redis.c: the Redis replay store (hiredis).  See
 * mod_dpop_replay_redis.h.
 *
 * Why a script: the loss marker must be read in the same atomic step as
 * the insert.  Reading it first and inserting after would leave a gap in
 * which a FLUSHALL or a restart empties the server, the insert of a proof
 * accepted before succeeds, and nothing refuses it.  A Lua script runs
 * atomically on the server, and it costs one round trip like a plain
 * SET NX.  The marker it writes when it finds none is the later of the
 * server's TIME and this httpd's clock, plus one second
 * (dpop_replaymark_new): never earlier than the loss, whichever clock runs
 * behind.
 *
 * Server choice: the first four bytes of the proof key (a SHA-256) modulo
 * the number of servers, in the configured order, so every httpd with the
 * same list asks the same server.  A server that is down is never replaced
 * by another: its keys are refused (503) until it answers, since a proof
 * stored elsewhere during the outage could be replayed once it is back.
 *
 * Bounded waits: every context connects with DPoPReplayTimeout and reads
 * and writes with it (SO_RCVTIMEO/SO_SNDTIMEO set by hiredis); contexts,
 * outages and their log lines are handled by mod_dpop_replay_net.c, so a
 * hung Redis holds at most one worker thread per process.
 *
 * Must never: reuse a context after an error, log a proof or its key.
 */
#include "mod_dpop_replay_redis.h"
#include "mod_dpop_replay_net.h"

#include "http_log.h"
#include "apr_strings.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "dpop_b64.h"
#include "dpop_replaymark.h"

APLOG_USE_MODULE(dpop);

#define REDIS_DEFAULT_PORT 6379
#define REDIS_KEY_PREFIX "dpop:"

/* KEYS[1] the marker, KEYS[2] the proof key; ARGV: httpd's clock (s),
 * ttl (ms), the proof's iat (s), DPoPClockSkew (s).  Answers {status,
 * marker}: 0 stored (fresh), 1 already there (replay), 2 not stored: the
 * server began remembering at marker and iat < marker + skew.  A marker
 * that is not a number makes the arithmetic raise: an error reply, 503.
 * replicate_commands (a no-op from Redis 7 on) lets 3.2 to 6 write after
 * TIME. */
static const char REDIS_SCRIPT[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local m = redis.call('GET', KEYS[1])\n"
    "if not m then\n"
    "  local n = tonumber(ARGV[1])\n"
    "  local t = tonumber(redis.call('TIME')[1])\n"
    "  if t > n then n = t end\n"
    "  m = string.format('%d', n + 1)\n"
    "  redis.call('SET', KEYS[1], m)\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then return {1, m} end\n"
    "if tonumber(ARGV[3]) < tonumber(m) + tonumber(ARGV[4]) then return {2, m} end\n"
    "redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2])\n"
    "return {0, m}\n";

typedef struct {
    const char *host;
    int port;
    dpop_netsrv_t net; /* per process, from child_init */
} redis_server_t;

struct dpop_redis {
    redis_server_t *servers;
    int nservers;
    char sha[41]; /* SHA-1 of REDIS_SCRIPT, hex (EVALSHA) */
    struct timeval tv;
    int timeout_ms;
    int ready;
};

/* EVALSHA names the script by the SHA-1 of its text (Redis's choice, not
 * a security use). */
static int script_sha(char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(REDIS_SCRIPT, sizeof(REDIS_SCRIPT) - 1, md, &n, EVP_sha1(), NULL) != 1 ||
        n != 20)
        return -1;
    dpop_hex_encode(md, 20, out);
    out[40] = '\0';
    return 0;
}

const char *dpop_redis_configure(apr_pool_t *p, const char *list, dpop_redis_t **out)
{
    dpop_redis_t *r = apr_pcalloc(p, sizeof(*r));
    apr_array_header_t *hosts = NULL;
    const char *err = dpop_netsrv_parse_list(p, list, REDIS_DEFAULT_PORT, &hosts);
    int i;
    if (err)
        return apr_psprintf(p, "redis: %s", err);
    r->nservers = hosts->nelts;
    r->servers = apr_pcalloc(p, sizeof(*r->servers) * (apr_size_t)hosts->nelts);
    for (i = 0; i < hosts->nelts; i++) {
        r->servers[i].host = APR_ARRAY_IDX(hosts, i, dpop_nethost_t).host;
        r->servers[i].port = APR_ARRAY_IDX(hosts, i, dpop_nethost_t).port;
    }
    if (script_sha(r->sha) != 0)
        return "redis: cannot hash the replay script (SHA-1 unavailable)";
    *out = r;
    return NULL;
}

static void context_free(void *c)
{
    redisFree(c);
}

void dpop_redis_child_init(dpop_redis_t *r, apr_pool_t *p, server_rec *s, int timeout_ms,
                           int threads)
{
    int i;
    if (r->ready)
        return;
    r->timeout_ms = timeout_ms;
    r->tv.tv_sec = timeout_ms / 1000;
    r->tv.tv_usec = (timeout_ms % 1000) * 1000;
    for (i = 0; i < r->nservers; i++) {
        redis_server_t *sv = &r->servers[i];
        apr_status_t rv = dpop_netsrv_init(
            &sv->net, p, apr_psprintf(p, "Redis %s:%d", sv->host, sv->port), threads, context_free);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "mod_dpop: cannot set up the Redis replay store");
            return; /* not ready: every check fails closed */
        }
    }
    r->ready = 1;
}

/* A new context connected to sv with the timeouts, or NULL with *why. */
static redisContext *connect_server(dpop_redis_t *r, redis_server_t *sv, apr_pool_t *p,
                                    const char **why)
{
    redisContext *c = redisConnectWithTimeout(sv->host, sv->port, r->tv);
    if (!c || c->err || redisSetTimeout(c, r->tv) != REDIS_OK) {
        *why = apr_psprintf(p, "cannot connect: %s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisEnableKeepAlive(c);
    return c;
}

/* EVALSHA, or EVAL when the server does not have the script cached (a
 * new server, a restart, SCRIPT FLUSH: EVAL caches it).  The reply, or
 * NULL on an I/O failure or timeout (*why): the context is then out of
 * sync and unusable. */
static redisReply *run_script(redisContext *c, const char **argv, const size_t *argl, apr_pool_t *p,
                              const char **why)
{
    const char *av[9];
    size_t al[9];
    redisReply *rep = redisCommandArgv(c, 9, argv, argl);
    if (rep && rep->type == REDIS_REPLY_ERROR && rep->str && !strncmp(rep->str, "NOSCRIPT", 8)) {
        freeReplyObject(rep);
        memcpy(av, argv, sizeof(av));
        memcpy(al, argl, sizeof(al));
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = REDIS_SCRIPT;
        al[1] = sizeof(REDIS_SCRIPT) - 1;
        rep = redisCommandArgv(c, 9, av, al);
    }
    if (!rep)
        *why = apr_pstrdup(p, c->errstr[0] ? c->errstr : "no answer");
    return rep;
}

/* Bounded copy of a server's error reply for the log. */
static const char *reply_error(apr_pool_t *p, const redisReply *rep)
{
    apr_size_t n = rep->len < 120 ? rep->len : 120;
    return rep->str ? apr_pstrmemdup(p, rep->str, n) : "";
}

dpop_replay_status_t dpop_redis_check(dpop_redis_t *r, server_rec *s, const unsigned char key[32],
                                      apr_time_t expiry, apr_int64_t iat, int skew, apr_pool_t *p,
                                      apr_int64_t *lost_at, const char **errmsg)
{
    char pkey[sizeof(REDIS_KEY_PREFIX) - 1 + 64 + 1];
    char now_s[24], ttl_s[24], iat_s[24], skew_s[24];
    const char *argv[9];
    size_t argl[9];
    apr_time_t t0 = apr_time_now();
    apr_int64_t ttl_ms = apr_time_as_msec(expiry - t0);
    redis_server_t *sv;
    redisContext *c = NULL;
    redisReply *rep = NULL;
    dpop_replay_status_t st = DPOP_REPLAY_ERROR;
    const char *why = NULL;
    apr_int64_t mark = 0;
    int i, reused;

    if (!r->ready) {
        *errmsg = "Redis client not initialized";
        return DPOP_REPLAY_ERROR;
    }
    sv = &r->servers[dpop_netsrv_pick(key, r->nservers)];
    memcpy(pkey, REDIS_KEY_PREFIX, sizeof(REDIS_KEY_PREFIX) - 1);
    dpop_hex_encode(key, 32, pkey + sizeof(REDIS_KEY_PREFIX) - 1);
    pkey[sizeof(pkey) - 1] = '\0';
    snprintf(now_s, sizeof(now_s), "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_sec(t0));
    snprintf(ttl_s, sizeof(ttl_s), "%" APR_INT64_T_FMT, ttl_ms > 0 ? ttl_ms : (apr_int64_t)1);
    snprintf(iat_s, sizeof(iat_s), "%" APR_INT64_T_FMT, iat);
    snprintf(skew_s, sizeof(skew_s), "%d", skew);
    argv[0] = "EVALSHA";
    argv[1] = r->sha;
    argv[2] = "2";
    argv[3] = DPOP_REPLAYMARK_KEY;
    argv[4] = pkey;
    argv[5] = now_s;
    argv[6] = ttl_s;
    argv[7] = iat_s;
    argv[8] = skew_s;
    for (i = 0; i < 9; i++)
        argl[i] = strlen(argv[i]);

    if (dpop_netsrv_acquire(&sv->net, p, (void **)&c, errmsg) != 0)
        return DPOP_REPLAY_ERROR;
    reused = c != NULL;
    if (!c && !(c = connect_server(r, sv, p, &why)))
        goto failed;
    rep = run_script(c, argv, argl, p, &why);
    if (!rep && reused && dpop_netsrv_fast_failure(t0, r->timeout_ms)) {
        /* A pooled context the server closed (it restarted): drop the
         * stale ones and try once on a new connection. */
        dpop_netsrv_discard(&sv->net, c);
        c = NULL;
        if (!(c = connect_server(r, sv, p, &why)))
            goto failed;
        rep = run_script(c, argv, argl, p, &why);
    }
    if (!rep)
        goto failed;
    if (rep->type == REDIS_REPLY_ERROR) {
        *errmsg =
            apr_psprintf(p, "%s refused the replay script: %s", sv->net.name, reply_error(p, rep));
    }
    else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
             rep->element[0]->type != REDIS_REPLY_INTEGER ||
             rep->element[1]->type != REDIS_REPLY_STRING || rep->element[0]->integer < 0 ||
             rep->element[0]->integer > 2 ||
             dpop_replaymark_parse(rep->element[1]->str, rep->element[1]->len, &mark) != 0) {
        *errmsg = apr_psprintf(p,
                               "%s: unexpected answer to the replay script (is %s a plain "
                               "number of seconds?)",
                               sv->net.name, DPOP_REPLAYMARK_KEY);
    }
    else if (rep->element[0]->integer == 0) {
        st = DPOP_REPLAY_FRESH;
    }
    else if (rep->element[0]->integer == 1) {
        st = DPOP_REPLAY_SEEN;
    }
    else {
        *lost_at = mark;
        *errmsg = apr_psprintf(p,
                               "the replay store (%s) lost its memory (restart or flush) and "
                               "remembers proofs since %" APR_INT64_T_FMT,
                               sv->net.name, mark);
        st = DPOP_REPLAY_LOST;
    }
    freeReplyObject(rep);
    dpop_netsrv_release(&sv->net, s, c); /* it answered: the context is in sync */
    return st;

failed:
    *errmsg = apr_psprintf(p, "%s: %s (DPoPReplayTimeout %d ms)", sv->net.name, why, r->timeout_ms);
    dpop_netsrv_failed(&sv->net, s, c, why);
    return DPOP_REPLAY_ERROR;
}
