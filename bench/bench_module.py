#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mod_dpop in a real httpd: request throughput, printed side by side.

    DPOP_BUILD=build-release python3 bench/bench_module.py [--requests N] [--threads T]

Runs httpd (mpm_event, 3 children) on 127.0.0.1 with a static file behind
mod_dpop and measures, in one run, requests per second for:
  open        the file without AuthType DPoP (httpd baseline)
  dpop-valid  AuthType DPoP, every request a fresh valid proof (token + proof
              verification + shmcb replay insert)
  reject      a rejected request (replayed proof), no audit store
  reject+audit the same with DPoPAuditLog (every rejection is an LMDB event)
and prints the ratios dpop-valid/open and reject+audit/reject: auditing must
not stall request threads (the writer is asynchronous), so the second ratio
should stay close to 1.  The box is noisy: read ratios, not absolute numbers.
Proofs are minted before timing starts (dpopctl), so minting cost is excluded.

Its client (Python http.client threads) is the bottleneck: it cannot drive
httpd to saturation, so these rates say little about httpd's real throughput
or mod_dpop's CPU cost per request.  For those, use bench/bench_e2e.sh (wrk,
httpd CPU per request, p50/p99).
"""
import argparse
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))

from harness import Client, Env  # noqa: E402


def run(port, reqs, threads):
    """reqs: list of (path, headers); split over threads with keep-alive."""
    chunks = [reqs[i::threads] for i in range(threads)]
    statuses = {}
    lock = threading.Lock()

    def worker(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local = {}
        for path, hdrs in chunk:
            conn.request("GET", path, headers=hdrs)
            r = conn.getresponse()
            r.read()
            local[r.status] = local.get(r.status, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            for k, v in local.items():
                statuses[k] = statuses.get(k, 0) + v

    ts = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    return len(reqs) / dt, statuses


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    env = Env.create().setup_as()
    try:
        static = os.path.join(env.dir, "static.txt")
        with open(static, "w") as f:
            f.write("hello\n")
        os.chmod(static, 0o644)
        conf = """
Alias /s "%s"
Alias /o "%s"
<Location /s>
    AuthType DPoP
    Require valid-user
</Location>
<Location /o>
    Require all granted
</Location>
""" % (static, static)
        h = env.httpd(extra_conf=conf, loglevel="crit")
        ha = env.httpd(extra_conf=conf, loglevel="crit",
                       server_conf='DPoPAuditLog "%s/audit"' % env.dir)
        h.start()
        ha.start()
        c = Client(env)
        n = a.requests
        print("minting %d proofs per server..." % n, file=sys.stderr)
        auth = "DPoP " + c.token
        valid = [("/s", {"Authorization": auth,
                         "DPoP": env.proof(c.key, "GET", h.url("/s"), token=c.token)})
                 for _ in range(n)]
        replay_h = valid[0][1]
        run(h.port, [("/s", replay_h)], 1)  # first use: accepted
        pa = env.proof(c.key, "GET", ha.url("/s"), token=c.token)
        replay_ha = {"Authorization": auth, "DPoP": pa}
        run(ha.port, [("/s", replay_ha)], 1)

        results = []
        for name, port, reqs, want in (
                ("open", h.port, [("/o", {})] * n, 200),
                ("dpop-valid", h.port, valid[1:], 200),
                ("reject", h.port, [("/s", replay_h)] * n, 401),
                ("reject+audit", ha.port, [("/s", replay_ha)] * n, 401)):
            rate, st = run(port, reqs, a.threads)
            assert set(st) == {want}, (name, st)
            results.append((name, rate))
        print("%-14s %12s" % ("case", "requests/s"))
        for name, rate in results:
            print("%-14s %12.0f" % (name, rate))
        r = dict(results)
        print("ratio dpop-valid/open     %.2f" % (r["dpop-valid"] / r["open"]))
        print("ratio reject+audit/reject %.2f" % (r["reject+audit"] / r["reject"]))
        h.stop()
        ha.stop()
        print("audit events recorded: %s" % (
            os.popen("%s --store %s/audit list --format json | wc -l"
                     % (env.tools.dpop_audit, env.dir)).read().strip()))
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
