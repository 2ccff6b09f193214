-- SPDX-License-Identifier: Apache-2.0
-- bench_e2e.lua: wrk script of bench/bench_e2e.sh (read that file first).
--
-- Sends every DPoP proof of a file exactly once: thread k of T (ids from 0)
-- takes the lines k+1, k+1+T, k+1+2T, ... of the file, so no two requests
-- of a run carry the same jti and the replay cache never rejects one.
--
--   wrk ... -s bench_e2e.lua URL -- MODE PROOFS TOKEN_FILE THREADS [CHALLENGES NONCE CONNS]
--
--   MODE        "open" (no credentials: scenario (a)), "dpop", or "nonce" (d)
--   PROOFS      file of proofs, one per line (dpopctl proof --count)
--   TOKEN_FILE  file holding the access token (one line)
--   THREADS     wrk -t (the number of ways the file is split)
--   nonce mode: CHALLENGES holds THREADS * CONNS proofs without a nonce, one
--               per connection: the first request of every connection
--               carries one and is answered 401 use_dpop_nonce with
--               DPoP-Nonce, which must equal NONCE (the nonce the server
--               hands out in this time bucket, computed by bench/e2e_nonce
--               before the proofs were minted with it).  wrk's Lua sees no
--               connection identity, but a connection sends its second
--               request only after its first response, and wrk writes the
--               first request of all its connections as soon as they
--               connect; so the first CONNS requests of a thread are the
--               first requests of its CONNS connections.
--
-- When a thread runs out of proofs, its connections ask for an unprotected
-- spare file (recognized by its body and left out of every count) until
-- the responses to all its proofs are in; then it stops, and stops wrk as
-- a whole (SIGINT to itself: wrk otherwise sleeps out -d).  The other
-- thread stops within wrk's 0.1 s tick with its last proofs unsent, so a
-- run capped by the proofs minted ends cleanly, every request measured at
-- full concurrency.
--
-- done() prints one line "E2E key=value ..." that bench_e2e.sh parses:
-- requests (responses received), ok (2xx), bad (unexpected non-2xx),
-- challenges (nonce 401s), nonce_bad (a challenge with another nonce),
-- exhausted (threads that ran out of proofs), span_us (first request to last
-- response over all threads), p50_us / p99_us / max_us latency, and wrk's
-- socket errors.  No credential is ever printed.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } e2e_timespec;
int clock_gettime(int clk, e2e_timespec *ts);
int kill(int pid, int sig);
int getpid(void);
]]

local ts = ffi.new("e2e_timespec")
local function now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: the same clock in every thread
    return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

-- --------------------------------------------------------- main thread state

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

-- ------------------------------------------------------------- per thread

local mode, token
local proofs, nproofs, pos = {}, 0, 0
local challenges, nchallenges, cpos = {}, 0, 0
local expected_nonce
local verify_pending = false
local stopped = false
local spare, plain
local sent = 0 -- requests with a proof handed to wrk
local SPARE_PATH, SPARE_BODY = "/spare.txt", "e2e-spare\n" -- bench_e2e.sh writes it
-- counters read by done() through thread:get()
requests, ok, bad, nchall, nonce_bad, exhausted = 0, 0, 0, 0, 0, 0
t_first, t_last = 0, 0

-- This thread's share of a file: lines k+1, k+1+T, ...
local function share(path, k, t)
    local out, i = {}, 0
    local f = assert(io.open(path, "r"))
    for line in f:lines() do
        if i % t == k and #line > 0 then
            out[#out + 1] = line
        end
        i = i + 1
    end
    f:close()
    return out
end

local function dpop_request(proof)
    return wrk.format("GET", wrk.path, {
        ["Authorization"] = "DPoP " .. token,
        ["DPoP"] = proof,
    })
end

function init(args)
    mode = args[1]
    local t = tonumber(args[4] or "1")
    -- Requests are formatted here, before the run, so that the client
    -- spends as little as it can per request in the timed window.
    if mode ~= "open" then
        local f = assert(io.open(args[3], "r"))
        token = f:read("*l")
        f:close()
        proofs = share(args[2], id, t)
        nproofs = #proofs
        for i = 1, nproofs do
            proofs[i] = dpop_request(proofs[i])
        end
    end
    if mode == "nonce" then
        challenges = share(args[5], id, t)
        nchallenges = #challenges
        for i = 1, nchallenges do
            challenges[i] = dpop_request(challenges[i])
        end
        expected_nonce = args[6]
    end
    -- wrk calls request() once on thread 0 before the run to check that it
    -- is a valid HTTP request; that one is never sent and must not use up
    -- a proof (nor a challenge).
    verify_pending = (id == 0)
    spare = wrk.format("GET", SPARE_PATH)
    plain = wrk.format("GET", wrk.path)
end

-- Out of proofs and every one answered: stop this thread and wrk.
local function finish_if_drained()
    if exhausted == 1 and not stopped and requests >= sent then
        stopped = true
        wrk.thread:stop()
        ffi.C.kill(ffi.C.getpid(), 2) -- SIGINT: wrk's own clean stop
    end
end

function request()
    if verify_pending then
        verify_pending = false
        return proofs[1] or plain
    end
    if t_first == 0 then
        t_first = now_us()
    end
    if mode == "open" then
        return plain
    end
    if cpos < nchallenges then
        cpos = cpos + 1
        sent = sent + 1
        return challenges[cpos]
    end
    if pos < nproofs then
        pos = pos + 1
        sent = sent + 1
        return proofs[pos]
    end
    exhausted = 1
    finish_if_drained()
    return spare
end

local function header(headers, name)
    local v = headers[name]
    if v then
        return v
    end
    name = name:lower()
    for k, val in pairs(headers) do
        if k:lower() == name then
            return val
        end
    end
    return nil
end

function response(status, headers, body)
    if body == SPARE_BODY then
        finish_if_drained()
        return
    end
    requests = requests + 1
    t_last = now_us()
    if t_first == 0 then
        t_first = t_last
    end
    if status >= 200 and status < 300 then
        ok = ok + 1
        finish_if_drained()
        return
    end
    if mode == "nonce" and status == 401 then
        local www = header(headers, "WWW-Authenticate") or ""
        if www:find("use_dpop_nonce", 1, true) then
            nchall = nchall + 1
            if header(headers, "DPoP-Nonce") ~= expected_nonce then
                nonce_bad = nonce_bad + 1
            end
            finish_if_drained()
            return
        end
    end
    bad = bad + 1
    finish_if_drained()
    if bad <= 3 then
        -- the status and error attribute only: never a credential
        io.stderr:write(string.format("bench_e2e.lua: unexpected %d %s\n", status,
            (header(headers, "WWW-Authenticate") or ""):match('error="[^"]*"') or ""))
    end
end

-- ------------------------------------------------------------ main thread

function done(summary, latency, reqs)
    local tot = { requests = 0, ok = 0, bad = 0, nchall = 0, nonce_bad = 0, exhausted = 0 }
    local first, last = nil, nil
    for _, t in ipairs(threads) do
        for k in pairs(tot) do
            tot[k] = tot[k] + (t:get(k) or 0)
        end
        local f, l = t:get("t_first") or 0, t:get("t_last") or 0
        if f > 0 and (first == nil or f < first) then first = f end
        if l > 0 and (last == nil or l > last) then last = l end
    end
    local span = (first and last and last > first) and (last - first) or summary.duration
    local e = summary.errors
    io.write(string.format(
        "E2E requests=%d ok=%d bad=%d challenges=%d nonce_bad=%d exhausted=%d " ..
        "span_us=%d wrk_requests=%d wrk_duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
        "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
        tot.requests, tot.ok, tot.bad, tot.nchall, tot.nonce_bad, tot.exhausted,
        span, summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.timeout, e.status))
end
