# SPDX-License-Identifier: Apache-2.0
"""Fault-injection toolkit for mod_dpop (issue 11 item 1): a real httpd
(tests/integration/harness.py, imported, not copied) under a steady load of
valid and invalid requests whose every outcome is known, so a scenario can
break something underneath (memcached, the audit store, the policy file,
graceful restarts, a child process) and then account for every request.

    sc = Stage(env, "graceful", replay="shmcb")   # keys, tokens, policy, store
    h = sc.start()                                # httpd + its config
    load = Load(sc, MIX_ENFORCE, rate=150)
    load.start(); ...inject faults, sc.mark("x")...; load.stop()
    v = Verdict(sc, load.records, expect)         # expect(rec) -> allowed outcomes
    v.line()                                      # the scenario's summary line

The load: Python threads, each with its own http.client keep-alive
connection (or, with keepalive=False, one connection per request), paced to
a total rate.  Every request carries a unique User-Agent
("faults/<stage>/<n>/<kind>"), which the audit store keeps, so each audit
event is matched to the one request it belongs to; a CustomLog line
"<User-Agent> <pid> <status>" tells which child served which request.

Request kinds (their outcome with everything healthy, enforce mode):
    ok      fresh proof of key A for GET /api/ok             -> 200
    replay  a proof of kind ok already answered 200, again   -> 401 replay
    badsig  fresh proof of key A, one signature char changed -> 401 bad_signature
    deny    fresh proof of key A for GET /api/deny           -> 403 policy_denied
    ro      fresh proof of key A for GET /api/ro (report-only location) -> 200
    newkey  fresh proof of key C for GET /api/ok: C is not in policy v1 (403
            policy_denied) and is in policy v2 (200)

Connection errors and timeouts are outcomes too ("conn"): a scenario allows
them only where its fault makes them legitimate (a SIGKILLed child's own
connections); nothing retries a request, so nothing can hide a failure.

Proofs are minted in bulk by `dpopctl proof --count N` (fresh jtis).  They
are not added to env.secrets (the harness scans every log once per secret,
too slow for thousands): assert_no_bulk_secrets() checks every log and LMDB
file for their signature and payload segments by set lookup instead.

Must never: print a token or proof (they are harness Secrets; messages name
requests by User-Agent only).
"""
import collections
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import APACHE, Client, Secret, apache_env, tamper  # noqa: E402

REASON_OF = {"replay": "replay", "badsig": "bad_signature", "deny": "policy_denied",
             "newkey": "policy_denied"}
PATH_OF = {"ok": "/api/ok", "replay": "/api/ok", "badsig": "/api/ok", "deny": "/api/deny",
           "ro": "/api/ro", "newkey": "/api/ok"}
MIX_ENFORCE = ["ok", "ok", "replay", "ok", "badsig", "ok", "deny", "replay"]
CONN = "conn"  # the outcome of a request that got no HTTP response

# One line per scenario, printed as it ends and again in pytest's summary.
LINES = []

POLICY_V1 = """# fault-injection policy v1: key A may GET /api/ok/** and /api/ro/**
clients:
  - name: faults-a
    jkt: {a}
    allow:
      - {{ methods: [GET], paths: ["/api/ok/**", "/api/ro/**"] }}
version: 1
"""
# v2 adds key C.  `version` comes last, so every proper prefix of the file
# is invalid: a process that read it half-written must refuse it.
POLICY_V2 = """# fault-injection policy v2: key C may GET /api/ok/** too
clients:
  - name: faults-a
    jkt: {a}
    allow:
      - {{ methods: [GET], paths: ["/api/ok/**", "/api/ro/**"] }}
  - name: faults-c
    jkt: {c}
    allow:
      - {{ methods: [GET], paths: ["/api/ok/**"] }}
version: 1
"""
POLICY_BROKEN = """# broken on purpose: a misspelt key (not_afer) and no version
clients:
  - name: faults-c
    jkt: {c}
    not_afer: 2030-01-01T00:00:00Z
    allow:
      - {{ methods: [GET], paths: ["/api/**"] }}
"""

REPORT_ONLY = """
<Location /api/ro>
    DPoPMode report-only
</Location>
"""


def now():
    return time.monotonic()


class Stage:
    """One scenario's world: keys A and C with bound tokens, a policy file, an
    audit store, and the httpd serving them (harness.Httpd)."""

    def __init__(self, env, name, replay="shmcb", map_size="16M", report_only=False, skew=None):
        self.env = env
        self.name = name
        self.dir = os.path.join(env.dir, "faults-%s-%d" % (name, env.next_id()))
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.a = Client(env, sub="alice", client_id="faults-a")
        self.c = Client(env, sub="carol", client_id="faults-c")
        self.policy = os.path.join(self.dir, "policy.yaml")
        self.write_policy(POLICY_V1)
        self.store = os.path.join(self.dir, "audit")  # created by post_config
        self.map_size = map_size
        self.replay = replay
        self.report_only = report_only
        self.skew = skew  # DPoPClockSkew (s): the refusal after a store's loss lasts this long
        self.marks = {}
        self.t0 = now()
        self.h = None
        self.pools = {}
        self.bulk = []  # every minted proof (Secret), for assert_no_bulk_secrets
        self.killed = {}  # pid -> when: children a scenario SIGKILLed on purpose

    # -- files -------------------------------------------------------------
    def policy_text(self, template):
        return template.format(a=self.a.key.jkt, c=self.c.key.jkt)

    def write_policy(self, template):
        """Atomically (temporary file + rename), as docs/policy.md says."""
        tmp = self.policy + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.policy_text(template))
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.policy)

    # -- httpd -------------------------------------------------------------
    def server_conf(self):
        conf = ['DPoPPolicyFile "%s"' % self.policy,
                'DPoPAuditLog "%s"' % self.store,
                "DPoPAuditMapSize %s" % self.map_size,
                'LogFormat "%{User-Agent}i %P %>s" faults',
                'CustomLog "%s/faults.log" faults' % self.h.root]
        if self.replay == "shmcb":
            # 4 MiB: ~22,000 live proofs (docs/scaling.md), far above a run
            conf.append('DPoPReplayCache "shmcb:%s/run/replay(4194304)"' % self.h.root)
        elif self.replay == "shm":
            # the module's own store, 4 MiB (~220,000 live proofs), seeded
            # in start() as a long-running server's table
            conf.append('DPoPReplayCache "shm:%s(4M)"' % self.shm_path())
        else:
            conf.append("DPoPReplayCache %s" % self.replay)
        if self.skew is not None:
            conf.append("DPoPClockSkew %d" % self.skew)
        return "\n".join(conf)

    def start(self):
        # The 200s are the static default handler (the CGI file as text), not
        # the harness's CGI backend: mod_cgid answers 503 to a request that
        # reaches it while its daemon restarts (a graceful restart; AH01261),
        # which is not ours to test, and a fork per request costs CPU.
        self.h = self.env.httpd(name="faults-%s-httpd-%d" % (self.name, self.env.next_id()),
                                location_conf=("Require dpop-policy\n"
                                               "SetHandler default-handler\n"
                                               "AcceptPathInfo On"),
                                extra_conf=REPORT_ONLY if self.report_only else "")
        self.h.server_conf = self.server_conf()
        if self.replay == "shm" and not os.path.exists(self.shm_path()):
            self.env.tools.run(self.env.tools.replayseed, self.shm_path(), str(4 * 1048576), "0")
        self.h.start()
        return self.h

    def shm_path(self):
        return os.path.join(self.h.root, "run", "replay.shm")

    def graceful(self):
        """What `apachectl -k graceful` runs: httpd -k graceful on our config
        (it checks the config, then sends SIGUSR1 to the PidFile's pid)."""
        self.h.write_config()
        r = subprocess.run([APACHE, "-f", self.h.conf_path, "-k", "graceful"],
                           capture_output=True, text=True, env=apache_env(), timeout=30)
        assert r.returncode == 0, ("httpd -k graceful", r.returncode, r.stdout + r.stderr)

    def workers(self):
        """The MPM's child processes (not mod_cgid's daemon, a child too: it
        has one thread, a worker child ThreadsPerChild + listener)."""
        out = []
        for pid in self.h.children():
            try:
                with open("/proc/%d/status" % pid) as f:
                    threads = int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))
            except (OSError, AttributeError):
                continue
            if threads > 1:
                out.append(pid)
        return out

    def wait_workers(self, n=3, exclude=(), timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            w = [p for p in self.workers() if p not in exclude]
            if len(w) >= n:
                return w
            time.sleep(0.1)
        raise AssertionError("%s: fewer than %d worker children: %s" % (self.name, n,
                                                                        self.workers()))

    def child_of(self, sock):
        """The worker child holding the server side of our client socket
        (/proc/net/tcp gives the socket's inode, /proc/PID/fd who has it)."""
        cport = sock.getsockname()[1]
        want = "0100007F:%04X" % cport
        inode = None
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1] == "0100007F:%04X" % self.h.port and parts[2] == want:
                    inode = parts[9]
        assert inode, "no server socket for client port %d" % cport
        for pid in self.workers():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                        return pid
                except OSError:
                    continue
        return None

    def mark(self, name):
        self.marks[name] = now()
        return self.marks[name]

    # -- proofs ------------------------------------------------------------
    def mint(self, key, path, count, token):
        r = self.env.tools.run(self.env.tools.dpopctl, "proof", "--key", key.path,
                               "--method", "GET", "--url", self.h.url(path),
                               "--access-token", token, "--count", str(count))
        proofs = [Secret(p) for p in r.stdout.split()]
        assert len(proofs) == count
        self.bulk.extend(proofs)
        return proofs

    def fill_pools(self, counts):
        """counts: kind -> number of fresh proofs (replay needs none)."""
        for kind, n in counts.items():
            key = self.c if kind == "newkey" else self.a
            self.pools.setdefault(kind, collections.deque()).extend(
                self.mint(key.key, PATH_OF[kind], n, key.token))

    def replace_pools(self, counts):
        """Drop the unused proofs of these kinds and mint fresh ones (after
        a replay store's loss, proofs minted before it are refused)."""
        fresh = {}
        for kind, n in counts.items():
            key = self.c if kind == "newkey" else self.a
            fresh[kind] = collections.deque(self.mint(key.key, PATH_OF[kind], n, key.token))
        self.pools.update(fresh)  # one swap per kind: the load never finds a pool empty

    # -- logs and store ----------------------------------------------------
    def served_by(self):
        """User-Agent -> pid of the child that logged it (faults.log)."""
        out = {}
        try:
            with open(os.path.join(self.h.root, "faults.log")) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3:
                        out[parts[0]] = int(parts[1])
        except FileNotFoundError:
            pass
        return out

    def generations(self, records, restarts):
        """pid -> generation (0 before the first graceful restart, k after
        the k-th): the number of restarts before the first request the
        child served.  An old child only finishes what it had accepted, a
        new one (including one the MPM adds later) starts after its restart."""
        served = self.served_by()
        first = {}
        for rec in records:
            pid = served.get(rec.ua)
            if pid is not None and (pid not in first or rec.t0 < first[pid]):
                first[pid] = rec.t0
        return {pid: sum(1 for t in restarts if t < t0) for pid, t0 in first.items()}

    def error_log_times(self, needle):
        """(monotonic time, line) of each error-log line holding needle
        (httpd stamps lines with the local wall clock, to the microsecond)."""
        offset = time.time() - now()
        out = []
        for line in self.error_lines(needle):
            m = re.match(r"\[\w+ (\w+ \d+ \d+:\d+:\d+)\.(\d+) (\d+)\]", line)
            if m:
                t = time.mktime(time.strptime("%s %s" % (m.group(1), m.group(3)),
                                              "%b %d %H:%M:%S %Y"))
                out.append((t + int(m.group(2)) / 1e6 - offset, line))
        return out

    def audit(self, *args, check=0):
        r = subprocess.run([self.env.tools.dpop_audit, "--store", self.store] + list(args),
                           capture_output=True, text=True, timeout=120)
        if check is not None:
            assert r.returncode == check, (args, r.returncode, r.stdout[-1500:], r.stderr[-1500:])
        return r

    def events(self):
        r = self.audit("list", "--format", "json")
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def wait_events(self, want, timeout=20.0):
        """Poll until the store holds at least `want` of our events and the
        count stays put for a moment (the children's writers are async)."""
        deadline = time.time() + timeout
        last, since = -1, time.time()
        evs = []
        while time.time() < deadline:
            evs = self.events()
            n = len(evs)
            if n != last:
                last, since = n, time.time()
            elif n >= want and time.time() - since >= 0.6:
                break
            time.sleep(0.25)
        return evs

    def verify_store(self):
        r = self.audit("verify", check=None)
        assert r.returncode == 0, ("dpop-audit verify", r.returncode, r.stdout[-1500:],
                                   r.stderr[-1500:])
        return r.stdout

    def error_lines(self, needle):
        return [l for l in self.h.error_log().splitlines() if needle in l]

    def assert_healthy(self):
        """No secret in a log or in the store; no process died of a signal
        other than the SIGKILLs the scenario sent itself."""
        self.h.assert_no_secrets()  # tokens and private keys (env.secrets)
        assert_no_bulk_secrets(self)
        crashes = [l for l in self.h.error_log().splitlines()
                   if "exit signal" in l and not any(("pid %d " % p) in l for p in self.killed)]
        assert not crashes, "%s: httpd process crashed: %s" % (self.name, crashes[:3])


def assert_no_bulk_secrets(sc):
    """No signature or payload segment of any minted proof in the logs or
    the LMDB files (every base64url run of the files, looked up in a set)."""
    needles = set()
    for p in sc.bulk:
        parts = p.split(".")
        needles.update(x for x in parts[1:] if len(x) >= 16)
        needles.add(tamper(p).split(".")[2])
    files = [os.path.join(sc.h.root, n) for n in ("error.log", "access.log", "faults.log")]
    if os.path.isdir(sc.store):
        files += [os.path.join(sc.store, n) for n in os.listdir(sc.store)]
    run = re.compile(rb"[A-Za-z0-9_-]{16,}")
    for path in files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for m in run.finditer(data):
            assert m.group().decode() not in needles, "a minted proof's segment is in %s" % path


class Rec:
    __slots__ = ("ua", "kind", "t0", "t1", "status", "error", "conn_t", "orig_t", "detail")

    def __init__(self, ua, kind):
        self.ua = ua
        self.kind = kind
        self.t0 = self.t1 = 0.0
        self.status = None   # int, or CONN
        self.error = None    # WWW-Authenticate error="..."
        self.conn_t = None   # when the connection it went on was opened
        self.orig_t = None   # replay: when the replayed proof was first accepted
        self.detail = ""

    def __repr__(self):
        return "<%s %s %.2f-%.2f %s %s>" % (self.ua, self.kind, self.t0, self.t1, self.status,
                                            self.detail or self.error or "")


def challenge_error(wa):
    m = re.search(r'error="([^"]*)"', wa or "")
    return m.group(1) if m else None


class Load:
    """`threads` client threads sending `mix` round-robin at `rate` req/s in
    total, until stop()."""

    def __init__(self, sc, mix, rate=150, threads=6, keepalive=True, timeout=10.0):
        self.sc = sc
        self.h = sc.h
        self.mix = mix
        self.rate = rate
        self.nthreads = threads
        self.keepalive = keepalive
        self.timeout = timeout
        self.records = []
        self.accepted = []  # (t0, proof) of ok proofs answered 200
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.seq = 0
        self.threads = []
        self.replay_after = None  # only replay proofs sent (t0) after this time
        self.rng = random.Random(11)

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 5)
        assert not any(t.is_alive() for t in self.threads), "load threads did not stop"
        return self.records

    def run_for(self, seconds):
        end = now() + seconds
        while now() < end:
            time.sleep(0.05)

    def _next(self):
        with self.lock:
            self.seq += 1
            n = self.seq
            kind = self.mix[n % len(self.mix)]
            proof, orig_t = None, None
            if kind == "replay":
                cand = [a for a in self.accepted
                        if self.replay_after is None or a[0] > self.replay_after]
                if cand:
                    orig_t, proof = self.rng.choice(cand)
                else:
                    kind = "ok"
            if proof is None:
                pool = self.sc.pools.get(kind)
                if not pool:
                    raise RuntimeError("%s: proof pool %s exhausted" % (self.sc.name, kind))
                proof = pool.popleft()
                if kind == "badsig":
                    proof = Secret(tamper(proof))
        return n, kind, proof, orig_t

    def _run(self, idx):
        conn, conn_t = None, None
        interval = self.nthreads / float(self.rate)
        nxt = now() + idx * interval / self.nthreads
        while not self.stopping.is_set():
            delay = nxt - now()
            if delay > 0:
                time.sleep(delay)
            nxt = max(nxt + interval, now() - interval)
            try:
                n, kind, proof, orig_t = self._next()
            except RuntimeError as e:
                with self.lock:
                    rec = Rec("faults/%s/pool" % self.sc.name, "pool")
                    rec.status, rec.detail = CONN, str(e)
                    self.records.append(rec)
                return
            rec = Rec("faults/%s/%d/%s" % (self.sc.name, n, kind), kind)
            rec.orig_t = orig_t
            token = self.sc.c.token if kind == "newkey" else self.sc.a.token
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.h.port, timeout=self.timeout)
                conn_t = now()
            rec.conn_t = conn_t
            rec.t0 = now()
            try:
                conn.putrequest("GET", PATH_OF[kind], skip_accept_encoding=True)
                conn.putheader("Authorization", "DPoP " + token)
                conn.putheader("DPoP", proof)
                conn.putheader("User-Agent", rec.ua)
                if not self.keepalive:
                    conn.putheader("Connection", "close")
                conn.endheaders()
                r = conn.getresponse()
                r.read()
                rec.t1 = now()
                rec.status = r.status
                rec.error = challenge_error(r.getheader("WWW-Authenticate"))
                if r.will_close or not self.keepalive:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                rec.t1 = now()
                rec.status = CONN
                rec.detail = type(e).__name__
                try:
                    conn.close()
                except Exception:  # already broken
                    pass
                conn = None
            with self.lock:
                self.records.append(rec)
                if kind == "ok" and rec.status == 200:
                    self.accepted.append((rec.t0, proof))
        if conn is not None:
            conn.close()


def burst(sc, kind, width, rounds):
    """rounds x width requests of `kind` sent at the same instant, each on
    its own connection (every child serves several at once, so each
    child's replay-cache client opens several connections); their Recs."""
    recs = []
    for rnd in range(rounds):
        barrier = threading.Barrier(width)
        batch = [Rec("faults/%s/burst-%d-%d/%s" % (sc.name, rnd, i, kind), kind)
                 for i in range(width)]
        proofs = [sc.pools[kind].popleft() for _ in range(width)]

        def one(rec, proof):
            try:
                barrier.wait(timeout=10)
                rec.conn_t = rec.t0 = now()
                r = sc.h.request("GET", PATH_OF[kind], token=sc.a.token, proof=proof,
                                 headers={"User-Agent": rec.ua})
                rec.status, rec.error = r.status, challenge_error(r.header("WWW-Authenticate"))
            except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
                rec.status, rec.detail = CONN, type(e).__name__
            rec.t1 = now()

        threads = [threading.Thread(target=one, args=(rec, p)) for rec, p in zip(batch, proofs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        recs.extend(batch)
    return recs


def overlaps(rec, a, b):
    """The request was in flight at some moment of [a, b]."""
    return rec.t0 <= b and rec.t1 >= a


class Verdict:
    """Checks every record against expect(rec) -> set of allowed outcomes
    (ints and/or CONN) and every audit event against the requests.

    Audit accounting: a request answered 401 or 403 must have exactly one
    event, with the reason its kind implies, unless may_miss(rec) says the
    scenario's fault may have lost it; no other answered request may have
    one (200 in report-only included: ro proofs are fresh, so they pass; a
    503 for an unreachable replay cache is no binding failure); a request
    cut off without an answer may have one or not; no event may appear
    twice, and every "faults/" event must belong to a request."""

    def __init__(self, sc, records, expect):
        self.sc = sc
        self.records = records
        self.unexpected = []
        for rec in records:
            allowed = expect(rec)
            if rec.status not in allowed:
                self.unexpected.append((rec, sorted(map(str, allowed))))
        self.by_status = collections.Counter(str(r.status) for r in records)
        self.audit_expected = self.audit_stored = None
        self.audit_problems = []
        self.audit_note = ""

    def check_audit(self, events, may_miss=lambda rec: False, reason=None,
                    may_have=lambda rec: False):
        """A request answered 401/403 requires its event, any other none.
        A required event whose request may_miss(rec) (the fault could lose
        it) is counted apart (audit_note).  reason(rec) overrides the reason
        a refusal's event must carry (default: its kind's; a set: any of
        them); may_have(rec)
        allows an event for a request that was let through (report-only
        refusing a proof a lost replay store might have seen)."""
        ours = collections.defaultdict(list)
        prefix = "faults/%s/" % self.sc.name
        for e in events:
            ua = e.get("user_agent") or ""
            if ua.startswith(prefix):
                ours[ua].append(e)
        known = {r.ua: r for r in self.records}
        expected = stored = fault_sent = fault_stored = 0
        for ua, evs in ours.items():
            if ua not in known:
                self.audit_problems.append(("event for no request", ua))
            if len(evs) != 1:
                self.audit_problems.append(("event stored %d times" % len(evs), ua))
        for rec in self.records:
            evs = ours.get(rec.ua, [])
            if rec.status == CONN:
                continue  # cut off (a killed child): it may have been audited or not
            if rec.status not in (401, 403):
                if evs and not may_have(rec):
                    self.audit_problems.append(("event for a request that was not refused",
                                                rec.ua, rec.status))
                continue
            if may_miss(rec):
                fault_sent += 1
                fault_stored += 1 if evs else 0
            else:
                expected += 1
                if not evs:
                    self.audit_problems.append(("event lost", rec.ua, rec.status))
                    continue
                stored += 1
            want = reason(rec) if reason else REASON_OF.get(rec.kind)
            wants = want if isinstance(want, (set, tuple)) else (want,)
            if evs and want and evs[0].get("reason") not in wants:
                self.audit_problems.append(("wrong reason", rec.ua, evs[0].get("reason"), want))
        self.audit_expected, self.audit_stored = expected, stored
        if fault_sent:
            self.audit_note = (" (+%d rejections the fault could lose, %d of them stored)"
                               % (fault_sent, fault_stored))
        return self

    def line(self, extra=""):
        statuses = " ".join("%s:%d" % (k, v) for k, v in sorted(self.by_status.items()))
        audit = ("audit events expected/stored %d/%d" % (self.audit_expected, self.audit_stored)
                 if self.audit_expected is not None else "audit events n/a")
        s = ("[faults] %-16s sent %5d | by status %s | unexpected %d | %s%s%s"
             % (self.sc.name, len(self.records), statuses,
                len(self.unexpected) + len(self.audit_problems), audit,
                self.audit_note, (" | " + extra) if extra else ""))
        print("\n" + s, flush=True)
        LINES.append(s)
        return s

    def summary(self):
        """Unexpected outcomes grouped by (kind, outcome, allowed), each with
        its count and the first and last send time, in seconds from the
        scenario's start, next to the scenario's marks."""
        groups = collections.OrderedDict()
        for rec, allowed in self.unexpected:
            key = (rec.kind, str(rec.status), "/".join(allowed))
            g = groups.setdefault(key, [0, rec.t0, rec.t0, rec.detail])
            g[0] += 1
            g[1] = min(g[1], rec.t0)
            g[2] = max(g[2], rec.t0)
        t0 = self.sc.t0
        parts = ["%d x %s got %s (allowed %s) sent +%.2f..+%.2f s%s"
                 % (n, kind, got, allowed, lo - t0, hi - t0, (" " + d) if d else "")
                 for (kind, got, allowed), (n, lo, hi, d) in groups.items()]
        marks = ", ".join("%s +%.2f" % (k, t - t0) for k, t in self.sc.marks.items())
        return "; ".join(parts) + " | marks: " + marks

    def assert_ok(self, context=""):
        assert not self.unexpected, "%s: %d unexpected outcome(s): %s%s" % (
            self.sc.name, len(self.unexpected), self.summary(), context)
        assert not self.audit_problems, "%s: audit problems (%d), first: %s" % (
            self.sc.name, len(self.audit_problems), self.audit_problems[:8])


def sigkill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
