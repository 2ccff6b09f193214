# SPDX-License-Identifier: Apache-2.0
"""Integration harness for mod_dpop: a real Apache httpd (mpm_event, several
child processes) on a free 127.0.0.1 high port, with the freshly built
mod_dpop.so in front of a tiny CGI backend, plus optional memcached.

Reusable by every integration test (module, policy, audit):

    env = Env.create()                      # build dir from $DPOP_BUILD
    client = env.client_key("ES256")        # private JWK + thumbprint
    h = env.httpd(extra_conf="DPoPMode report-only")
    h.start()
    tok = env.token(jkt=client.jkt)         # AS-signed access token
    proof = env.proof(client, "GET", h.url("/api/x"), token=tok)
    resp = h.request("GET", "/api/x", token=tok, proof=proof)
    resp.status, resp.header("WWW-Authenticate"), resp.body
    h.error_log(); h.stop()

Everything lives under one session directory in /tmp, readable and (where
needed) writable by the httpd User (www-data when run as root).  Every token
and proof the harness mints is remembered in env.secrets so tests can
assert that no log ever contains one (Httpd.assert_no_secrets).

What this file must never do: print a token, proof or private key in a test
failure message (messages name the secret by index only).
"""

import grp
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import auditscan
APACHE = os.environ.get("DPOP_APACHE", "/usr/sbin/apache2")
MODULES = os.environ.get("DPOP_APACHE_MODULES", "/usr/lib/apache2/modules")
MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"
# A sanitizer runtime to preload into httpd only (never into pytest itself),
# for running the suite against an ASan/UBSan build of mod_dpop.so.
APACHE_PRELOAD = os.environ.get("DPOP_APACHE_PRELOAD", "")
# Under a sanitizer, every pool block freed goes back to the system at once,
# so a pointer into a destroyed (sub)request pool faults where it is read
# instead of reading stale bytes from httpd's allocator free list.
SANITIZER_MEMFREE = "MaxMemFree 1"



class Secret(str):
    """A credential (token, proof, private key member) used by a test.  It is
    an ordinary string on the wire, but its repr is redacted so pytest's
    assertion explanations and tracebacks never print it into a CI log."""

    def __repr__(self):
        return "<secret %d chars>" % len(self)

def apache_env(extra=None):
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    if APACHE_PRELOAD:
        e["LD_PRELOAD"] = APACHE_PRELOAD
        # httpd keeps its pools until exit by design: leak reports would be
        # noise; every other error stops the process and is logged.
        e["ASAN_OPTIONS"] = os.environ.get(
            "DPOP_APACHE_ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:halt_on_error=1")
        e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    e.update(extra or {})
    return e

ISSUER = "https://as.example.test"
AUDIENCE = "https://api.example.test"


def free_port():
    """A free TCP port on 127.0.0.1 (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def run_user():
    """(user, group) httpd children run as: www-data when root, else us."""
    if os.geteuid() != 0:
        return None, None
    for name in ("www-data", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name
        except KeyError:
            continue
    return None, None


class Tools:
    """Paths of the built programs in $DPOP_BUILD."""

    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.dpopctl = os.path.join(self.build, "core", "dpopctl")
        self.testtoken = os.path.join(self.build, "tests", "tools", "dpop_testtoken")
        self.replayseed = os.path.join(self.build, "tests", "tools", "dpop_replayseed")
        self.module = os.path.join(self.build, "mod_dpop", ".libs", "mod_dpop.so")
        self.dpop_policy = os.path.join(self.build, "policy", "dpop-policy")
        self.dpop_audit = os.path.join(self.build, "logger", "dpop-audit")

    def missing(self):
        return [p for p in (self.dpopctl, self.testtoken, self.module) if not os.path.exists(p)]

    def run(self, *args, check=True, input=None):
        r = subprocess.run(list(args), capture_output=True, text=True, input=input)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (os.path.basename(args[0]), r.returncode,
                                                       r.stderr.strip()[:300]))
        return r


class Key:
    """A client (or AS) private JWK on disk and its RFC 7638 thumbprint."""

    def __init__(self, path, alg, jkt):
        self.path = path
        self.alg = alg
        self.jkt = jkt


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def text(self):
        return self.body.decode("utf-8", "replace")

    def backend_env(self):
        """The CGI backend echoes selected variables as NAME=value lines."""
        out = {}
        for line in self.text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
        return out

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.header("WWW-Authenticate"))


CGI_SCRIPT = """#!/bin/sh
# Test backend: echoes what mod_dpop passed on (never credentials).
# Read the request body first: a CGI that exits early breaks the pipe.
if [ -n "$CONTENT_LENGTH" ] && [ "$CONTENT_LENGTH" -gt 0 ] 2>/dev/null; then
    head -c "$CONTENT_LENGTH" >/dev/null
fi
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "BACKEND=ok"
echo "REQUEST_METHOD=$REQUEST_METHOD"
echo "REMOTE_USER=${REMOTE_USER-<unset>}"
echo "AUTH_TYPE=${AUTH_TYPE-<unset>}"
echo "DPOP_JKT=${DPOP_JKT-<unset>}"
echo "DPOP_CLIENT=${DPOP_CLIENT-<unset>}"
echo "DPOP_TOKEN_SUB=${DPOP_TOKEN_SUB-<unset>}"
echo "DPOP_TOKEN_CLIENT_ID=${DPOP_TOKEN_CLIENT_ID-<unset>}"
echo "DPOP_REPORT_ONLY_REASON=${DPOP_REPORT_ONLY_REASON-<unset>}"
echo "HTTP_DPOP=${HTTP_DPOP-<unset>}"
echo "HTTP_X_DPOP_JKT=${HTTP_X_DPOP_JKT-<unset>}"
echo "HTTP_DPOP_JKT=${HTTP_DPOP_JKT-<unset>}"
echo "HTTP_X_DPOP_CLIENT_ID=${HTTP_X_DPOP_CLIENT_ID-<unset>}"
echo "HTTP_X_DPOP_SUB=${HTTP_X_DPOP_SUB-<unset>}"
echo "HTTP_X_FORWARDED_FOR=${HTTP_X_FORWARDED_FOR-<unset>}"
echo "PATH_INFO=${PATH_INFO-<unset>}"
echo "SERVER_PROTOCOL=${SERVER_PROTOCOL-<unset>}"
echo "HTTPS=${HTTPS-<unset>}"
echo "HTTP2=${HTTP2-<unset>}"
"""

HTTPD_TEMPLATE = """# generated by tests/integration/harness.py
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}/run"
ErrorLog "{root}/error.log"
LogLevel {loglevel}
LogFormat "%h %l %u %t \\"%r\\" %>s %b pid=%P" common
CustomLog "{root}/access.log" common
{user_lines}
LoadModule mpm_{mpm}_module {modules}/mod_mpm_{mpm}.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule authz_host_module {modules}/mod_authz_host.so
LoadModule socache_shmcb_module {modules}/mod_socache_shmcb.so
LoadModule headers_module {modules}/mod_headers.so
LoadModule alias_module {modules}/mod_alias.so
LoadModule cgid_module {modules}/mod_cgid.so
LoadModule mime_module {modules}/mod_mime.so
{unixd_line}
{extra_modules}
{tls_modules}
LoadModule dpop_module {module}
{tls_conf}

{memfree}
{mpm_conf}
MaxConnectionsPerChild 0
GracefulShutdownTimeout 5
KeepAlive On
Timeout 20
ScriptSock "{root}/run/cgid.sock"
TypesConfig /dev/null

{token_conf}
{server_conf}

ScriptAlias /api "{root}/cgi/echo.cgi"
ScriptAlias /open "{root}/cgi/echo.cgi"
<Location /api>
    AuthType DPoP
    Header always set X-Backend-JKT "%{{DPOP_JKT}}e" env=DPOP_JKT
{location_conf}
</Location>
{extra_conf}
"""


# Process layout per MPM: event (threads) or prefork (one request per
# process, as legacy PHP sites run it).
MPM_CONF = {
    "event": "StartServers 3\nServerLimit 3\nThreadLimit 8\nThreadsPerChild 8\n"
             "MaxRequestWorkers 24\nMinSpareThreads 8\nMaxSpareThreads 48",
    "prefork": "StartServers 3\nServerLimit 8\nMinSpareServers 3\nMaxSpareServers 8\n"
               "MaxRequestWorkers 8",
}


class Httpd:
    """One httpd instance on its own port and directory."""

    def __init__(self, env, name=None, server_conf="", location_conf="Require valid-user",
                 extra_conf="", extra_modules="", loglevel="warn dpop:info", port=None,
                 environ=None, tls=False, token_conf=None, mpm="event"):
        self.env = env
        self.environ = dict(environ or {})  # extra environment of httpd only
        # token_conf replaces the default token source lines (the session's
        # JWKS file, ISSUER, AUDIENCE), e.g. with DPoPTokenMetadata.
        self.token_conf = token_conf
        # tls: mod_ssl with the session's throwaway CA (Env.tls()) and
        # mod_http2 with `Protocols h2 http/1.1`; url() is then https.
        self.tls = env.tls() if tls else None
        self.name = name or ("httpd-%d" % env.next_id())
        self.root = os.path.join(env.dir, self.name)
        self.port = port or free_port()
        self.server_conf = server_conf
        self.location_conf = location_conf
        self.extra_conf = extra_conf
        self.extra_modules = extra_modules
        self.loglevel = loglevel
        self.mpm = mpm
        self.proc = None
        self.exit_code = None  # the parent's exit status once stopped
        # The default replay store (shm:64M, DefaultRuntimeDir/dpop-replay.shm)
        # is seeded as if it had been remembering for long, so that proofs
        # made right after start are not refused as issued before the store
        # began remembering (DESIGN.md "Replay stores").  Tests of the store
        # itself set this to False.
        self.seed_replay_store = True
        # A shmcb replay cache (DPoPReplayCache shmcb:...) cannot be seeded:
        # its shared memory is new at each full start and it refuses every
        # proof issued before its creation + DPoPClockSkew.  start() waits
        # that out, so that proofs made afterwards are fresh ones.  Tests of
        # the refusal itself set this to False.
        self.wait_shmcb_skew = True
        self.conf_path = os.path.join(self.root, "httpd.conf")
        os.makedirs(os.path.join(self.root, "run"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "cgi"), exist_ok=True)
        cgi = os.path.join(self.root, "cgi", "echo.cgi")
        with open(cgi, "w") as f:
            f.write(CGI_SCRIPT)
        os.chmod(cgi, 0o755)
        for d in (self.root, os.path.join(self.root, "cgi")):
            os.chmod(d, 0o755)
        env.chown_for_httpd(os.path.join(self.root, "run"))

    # -- configuration -----------------------------------------------------
    def config_text(self):
        user, group = run_user()
        user_lines = ("User %s\nGroup %s" % (user, group)) if user else ""
        unixd = os.path.join(MODULES, "mod_unixd.so")
        unixd_line = ("LoadModule unixd_module %s" % unixd) if os.path.exists(unixd) else ""
        loc = "\n".join("    " + l for l in self.location_conf.splitlines())
        token_conf = self.token_conf
        if token_conf is None:
            token_conf = 'DPoPTokenJWKS "%s"\nDPoPTokenIssuer %s\nDPoPTokenAudience %s' % (
                self.env.as_jwks, ISSUER, AUDIENCE)
        return HTTPD_TEMPLATE.format(
            token_conf=token_conf, root=self.root, port=self.port, modules=MODULES,
            module=self.env.tools.module,
            server_conf=self.server_conf, location_conf=loc, extra_conf=self.extra_conf,
            extra_modules=self.extra_modules, user_lines=user_lines, unixd_line=unixd_line,
            loglevel=self.loglevel, memfree=SANITIZER_MEMFREE if APACHE_PRELOAD else "",
            tls_modules=self._tls_modules(), tls_conf=self._tls_conf(), mpm=self.mpm,
            mpm_conf=MPM_CONF[self.mpm])

    def _tls_modules(self):
        if not self.tls:
            return ""
        return ("LoadModule ssl_module {m}/mod_ssl.so\n"
                "LoadModule http2_module {m}/mod_http2.so").format(m=MODULES)

    def _tls_conf(self):
        if not self.tls:
            return ""
        return TLS_TEMPLATE.format(cert=self.tls.server_cert, key=self.tls.server_key)

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        return self.conf_path

    def configtest(self):
        """apache2 -t on this config: (returncode, combined output)."""
        self.write_config()
        r = subprocess.run([APACHE, "-t", "-f", self.conf_path], capture_output=True, text=True,
                           env=apache_env(self.environ))
        return r.returncode, r.stdout + r.stderr

    # -- lifecycle ---------------------------------------------------------
    def replay_store_path(self):
        """The file of the default shm replay store."""
        return os.path.join(self.root, "run", "dpop-replay.shm")

    def seed_default_replay_store(self):
        conf = self.server_conf + self.extra_conf
        path = self.replay_store_path()
        if not self.seed_replay_store or "DPoPReplayCache" in conf or os.path.exists(path):
            return
        self.env.tools.run(self.env.tools.replayseed, path, str(64 * 1048576), "0")

    def start(self, wait_children=True):
        self.write_config()
        self.seed_default_replay_store()
        for f in ("error.log", "access.log"):
            p = os.path.join(self.root, f)
            if os.path.exists(p):
                os.unlink(p)
        self.proc = subprocess.Popen([APACHE, "-f", self.conf_path, "-DFOREGROUND"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=apache_env(self.environ))
        self.env.register(self)
        if not wait_port(self.port, proc=self.proc):
            out = ""
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode("utf-8", "replace")
            self.stop()
            raise RuntimeError("httpd %s did not start: %s\n%s" % (self.name, out,
                                                                  self.error_log()[-3000:]))
        if wait_children:
            self.wait_children(3)
        if self.wait_shmcb_skew:
            self.wait_shmcb_remembering()
        return self

    def clock_skew(self):
        """The largest DPoPClockSkew configured (the module default: 5 s)."""
        conf = "\n".join((self.server_conf, self.location_conf, self.extra_conf))
        vals = [int(v) for v in re.findall(r"DPoPClockSkew\s+(\d+)", conf)]
        return max(vals) if vals else 5

    def shmcb_since(self):
        """The unix second the newest shmcb replay cache remembers since, as
        its creation line logs it (None without one)."""
        found = re.findall(r"mod_dpop: replay cache shmcb:\S* created, remembering since "
                           r"[^(]*\((\d+)\)", self.error_log())
        return int(found[-1]) if found else None

    def wait_shmcb_remembering(self, timeout=15.0):
        """With a shmcb replay cache: sleep until a proof issued now is no
        longer refused as issued before the cache began remembering
        (its since + DPoPClockSkew; DESIGN.md "Replay stores")."""
        if not re.search(r"DPoPReplayCache\s+\"?shmcb:", self.server_conf + self.extra_conf):
            return
        deadline = time.time() + timeout
        since = self.shmcb_since()
        while since is None and time.time() < deadline:
            time.sleep(0.1)
            since = self.shmcb_since()
        assert since is not None, "no shmcb creation line in the error log"
        while time.time() < since + self.clock_skew():
            time.sleep(0.1)

    def children(self):
        if not self.proc:
            return []
        r = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        kids = [int(x) for x in r.stdout.split()]
        # the cgid daemon is a child too: keep the ones running the MPM
        return kids

    def wait_children(self, n, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.children()) >= n:
                return True
            time.sleep(0.1)
        return False

    def graceful(self, sig=signal.SIGUSR1):
        """Graceful restart (re-reads the config, keeps the port); with
        sig=signal.SIGHUP a plain restart (children killed at once)."""
        self.write_config()
        if sig == signal.SIGHUP:
            # A plain restart makes every child close its workers' sockets
            # at once; mpm_event (2.4.x) races there with a worker finishing
            # a connection close and can segfault (reproduced without
            # mod_dpop loaded).  Let the previous request's connection close
            # settle first so the crash check only catches our own bugs.
            time.sleep(0.5)
        os.kill(self.proc.pid, sig)
        time.sleep(1.0)
        wait_port(self.port)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # Graceful stop first (SIGWINCH, bounded by GracefulShutdownTimeout):
            # an immediate stop takes mpm_event's close_worker_sockets() path,
            # which races with workers finishing a connection and can crash a
            # child (an httpd bug, seen without mod_dpop loaded too).
            try:
                os.kill(self.proc.pid, signal.SIGWINCH)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.exit_code = self.proc.returncode
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    # -- requests ----------------------------------------------------------
    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, path="/"):
        """The URL a client uses (and puts into htu)."""
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def connection(self, timeout=20):
        """An HTTP/1.1 connection to this server (TLS when tls=True, the
        certificate verified against the session CA)."""
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.tls.client_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def h2(self, requests, parallel=False, timeout=60):
        """Send several requests over ONE HTTP/2 connection (curl --http2,
        transfers chained with `next` so they reuse the connection; with
        parallel=True they are multiplexed as concurrent streams).  Each
        request is a dict: method, path, token, proof (str or list: several
        DPoP header fields), headers (list of pairs), scheme ("DPoP").
        Returns a list of H2Response (Response + http_version, num_connects).
        The curl config goes through a 0600 file, never argv."""
        assert self.tls, "h2 needs an httpd started with tls=True"
        return curl_h2(self, requests, parallel=parallel, timeout=timeout)

    def request(self, method, path, token=None, proof=None, scheme="DPoP", headers=None,
                body=None, timeout=20):
        """Send one request on a fresh connection; returns a Response."""
        hdrs = []
        if token is not None:
            hdrs.append(("Authorization", "%s %s" % (scheme, token) if scheme else token))
        if proof is not None:
            proofs = proof if isinstance(proof, (list, tuple)) else [proof]
            for p in proofs:
                hdrs.append(("DPoP", p))
        for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
            hdrs.append((k, v))
        conn = self.connection(timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in hdrs:
                conn.putheader(k, v)
            if body is not None:
                data = body if isinstance(body, bytes) else body.encode()
                conn.putheader("Content-Length", str(len(data)))
                conn.endheaders(data)
            else:
                conn.endheaders()
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.reason, r.getheaders(), data)
        finally:
            conn.close()

    def hold(self, method, path):
        """Start a request and stop in the middle of its headers, so one
        worker of the child that accepted the connection is busy with it (and
        that child outlives a graceful restart).  finish() sends the rest."""
        return HeldRequest(self, method, path)

    def pids_serving(self, path):
        """Child pids that logged a request for exactly this path."""
        pids = set()
        for line in self.access_log().splitlines():
            if (' %s HTTP/' % path) in line and "pid=" in line:
                pids.add(int(line.rsplit("pid=", 1)[1].split()[0]))
        return pids

    # -- logs --------------------------------------------------------------
    def _log(self, name):
        try:
            with open(os.path.join(self.root, name), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def error_log(self):
        return self._log("error.log")

    def access_log(self):
        return self._log("access.log")

    def wait_log(self, needle, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.error_log():
                return True
            time.sleep(0.1)
        return False

    def assert_no_secrets(self):
        """No minted token, proof, signature or private key member in any log
        nor in the audit store; no query secret in the error log or the
        store (the access log's request line holds the query by design)."""
        logs = {"error.log": self.error_log(), "access.log": self.access_log()}
        for name, text in logs.items():
            for i, s in enumerate(self.env.secret_needles()):
                assert s not in text, "secret #%d found in %s of %s" % (i, name, self.name)
        for i, q in enumerate(self.env.query_secrets):
            assert q not in logs["error.log"], "query secret #%d in error.log" % i
        for store in auditscan.audit_dirs(self.config_text()):
            found = auditscan.store_findings(self.env.tools.dpop_audit, store,
                                             self.env.secret_needles(), self.env.query_secrets)
            assert not found, found[:5]


    def assert_no_crash(self):
        """No child or parent died of a signal (segfault, abort) during the
        test: httpd logs each such death as "exit signal" (AH00052)."""
        crashes = [l for l in self.error_log().splitlines() if "exit signal" in l]
        assert not crashes, "httpd %s crashed: %s" % (self.name, crashes[:3])
        self.assert_no_sanitizer_report()

    def assert_no_sanitizer_report(self):
        """Under a sanitizer build (DPOP_APACHE_PRELOAD) a child that hits
        ASan or UBSan writes its report to stderr, i.e. the error log (or,
        before the log is open, the parent's output): any report fails."""
        text = self.error_log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                i = text.index(marker)
                raise AssertionError("httpd %s: sanitizer report: %s"
                                     % (self.name, text[max(0, i - 200):i + 1500]))


TLS_TEMPLATE = """
SSLEngine on
SSLCertificateFile "{cert}"
SSLCertificateKeyFile "{key}"
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLSessionCache none
Protocols h2 http/1.1
"""


class TLS:
    """A throwaway CA and a server certificate it signed (SAN IP:127.0.0.1
    and DNS:localhost), made with the openssl CLI once per session.  The
    private keys stay in the session directory (0600; httpd reads them as
    root before dropping privileges) and are remembered as secrets."""

    def __init__(self, env):
        self.dir = os.path.join(env.dir, "tls")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.server_cert = os.path.join(self.dir, "server.pem")
        self.server_key = os.path.join(self.dir, "server.key")
        csr = os.path.join(self.dir, "server.csr")
        ext = os.path.join(self.dir, "server.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        self._openssl("req", "-x509", *ec, "-keyout", self.ca_key, "-out", self.ca_cert,
                      "-days", "2", "-subj", "/CN=mod_dpop throwaway test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._openssl("req", *ec, "-keyout", self.server_key, "-out", csr,
                      "-subj", "/CN=localhost")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-out", self.server_cert, "-days", "2",
                      "-extfile", ext)
        for k in (self.ca_key, self.server_key):
            os.chmod(k, 0o600)
            with open(k) as f:
                body = "".join(l.strip() for l in f if not l.startswith("-----"))
            env.remember(body)
        for c in (self.ca_cert, self.server_cert):
            os.chmod(c, 0o644)

    @staticmethod
    def _openssl(*args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.strip()[-300:]))

    def client_context(self):
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


class H2Response(Response):
    def __init__(self, status, reason, headers, body, http_version, num_connects):
        Response.__init__(self, status, reason, headers, body)
        self.http_version = http_version
        self.num_connects = num_connects


def _curl_quote(v):
    return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')


def curl_h2(h, requests, parallel=False, timeout=60):
    """See Httpd.h2."""
    work = tempfile.mkdtemp(prefix="h2-", dir=h.root)
    try:
        lines = []
        if parallel:
            lines += ["parallel", "parallel-max = %d" % len(requests)]
        for i, rq in enumerate(requests):
            if i:
                lines.append("next")
            lines += ["url = " + _curl_quote(h.url(rq["path"])),
                      "request = " + _curl_quote(rq.get("method", "GET")),
                      "http2", "silent", "show-error",
                      "cacert = " + _curl_quote(h.tls.ca_cert),
                      "max-time = %d" % timeout,
                      "output = " + _curl_quote(os.path.join(work, "body-%d" % i)),
                      "dump-header = " + _curl_quote(os.path.join(work, "hdr-%d" % i)),
                      "write-out = " + _curl_quote("%{json}\\n")]
            if rq.get("token") is not None:
                lines.append("header = " + _curl_quote("Authorization: %s %s" % (
                    rq.get("scheme", "DPoP"), rq["token"])))
            proof = rq.get("proof")
            for p in (proof if isinstance(proof, (list, tuple)) else
                      ([proof] if proof is not None else [])):
                lines.append("header = " + _curl_quote("DPoP: " + p))
            for k, v in rq.get("headers", []):
                lines.append("header = " + _curl_quote("%s: %s" % (k, v)))
            if rq.get("body") is not None:
                lines.append("data-binary = " + _curl_quote(rq["body"]))
        cfg = os.path.join(work, "curl.cfg")
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run(["curl", "--config", cfg], capture_output=True, text=True,
                           timeout=timeout + 30)
        stats = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        if len(stats) != len(requests):
            raise RuntimeError("curl --http2 answered %d of %d (rc %d): %s"
                               % (len(stats), len(requests), r.returncode, r.stderr[-300:]))
        # with --parallel the write-out lines come in completion order
        by_url = {}
        for st in stats:
            by_url.setdefault(st.get("filename_effective"), st)
        out = []
        for i in range(len(requests)):
            st = by_url.get(os.path.join(work, "body-%d" % i), {})
            with open(os.path.join(work, "hdr-%d" % i), encoding="latin-1", newline="") as f:
                raw = f.read().split("\r\n")
            headers = []
            for line in raw[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers.append((k.strip(), v.strip()))
            with open(os.path.join(work, "body-%d" % i), "rb") as f:
                body = f.read()
            out.append(H2Response(int(st.get("response_code", 0)), "", headers, body,
                                  str(st.get("http_version")), int(st.get("num_connects", -1))))
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


class HeldRequest:
    """A request whose header block is not finished yet (see Httpd.hold)."""

    def __init__(self, h, method, path, timeout=20):
        self.h = h
        self.path = path
        self.sock = socket.create_connection(("127.0.0.1", h.port), timeout=timeout)
        self.sock.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           % (method, path, h.port)).encode())

    def finish(self, token, proof, scheme="DPoP"):
        """Send the credentials and the end of the headers; a Response."""
        try:
            self.sock.sendall(("Authorization: %s %s\r\nDPoP: %s\r\nConnection: close\r\n\r\n"
                               % (scheme, token, proof)).encode())
            r = http.client.HTTPResponse(self.sock)
            r.begin()
            return Response(r.status, r.reason, r.getheaders(), r.read())
        finally:
            self.sock.close()


class Memcached:
    def __init__(self, env, port=None):
        self.env = env
        self.port = port or free_port()
        self.proc = None

    def start(self):
        args = [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
        if os.geteuid() == 0:
            user, _ = run_user()
            args += ["-u", user or "nobody"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.env.register(self)
        if not wait_port(self.port, proc=self.proc):
            self.stop()
            raise RuntimeError("memcached did not start")
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped one cannot exit
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    @property
    def spec(self):
        return "memcache:127.0.0.1:%d" % self.port

    def command(self, line, value=None):
        """One text-protocol command (the test's own view of the server);
        returns the raw answer up to its terminator."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            data = line.encode() + b"\r\n"
            if value is not None:
                data += value.encode() + b"\r\n"
            s.sendall(data)
            buf = b""
            while not (buf.endswith(b"END\r\n") or buf.endswith(b"OK\r\n")
                       or buf.endswith(b"STORED\r\n") or buf.endswith(b"ERROR\r\n")
                       or buf.endswith(b"DELETED\r\n") or buf.endswith(b"NOT_FOUND\r\n")):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            return buf.decode(errors="replace")

    def remembering_since(self, seconds_ago=3600):
        """Write mod_dpop's loss marker (docs/scaling.md) as if this server
        had been remembering for an hour: tests that are not about a loss
        then need not wait one DPoPClockSkew after starting memcached."""
        v = str(int(time.time()) - seconds_ago)
        assert "STORED" in self.command("set %s 0 0 %d" % (REPLAY_MARKER, len(v)), v)
        return self


REPLAY_MARKER = "dpop:replay-marker"  # core/dpop_replaymark.h
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """A redis-server of the test's own: a free loopback port, no
    persistence, its own directory."""

    def __init__(self, env, port=None):
        self.env = env
        self.port = port or free_port()
        self.dir = os.path.join(env.dir, "redis-%d-%d" % (self.port, env.next_id()))
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        args = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.env.register(self)
        if not wait_port(self.port, proc=self.proc):
            self.stop()
            raise RuntimeError("redis-server did not start")
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped one cannot exit
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    @property
    def spec(self):
        return "redis:127.0.0.1:%d" % self.port

    def command(self, *args):
        """One command in RESP; returns the first reply line (enough for
        the simple replies the tests use: +OK, :n, $n then the value)."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(out)
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            first, _, rest = buf.partition(b"\r\n")
            if first.startswith(b"$") and int(first[1:]) >= 0:
                n = int(first[1:])
                while len(rest) < n + 2:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    rest += chunk
                return rest[:n].decode()
            return first.decode()

    def remembering_since(self, seconds_ago=3600):
        """As Memcached.remembering_since."""
        assert self.command("SET", REPLAY_MARKER, int(time.time()) - seconds_ago) == "+OK"
        return self


class Env:
    """Session state: build tools, a temp dir, the AS key set, minted secrets."""

    def __init__(self, build, directory):
        self.tools = Tools(build)
        self.dir = directory
        self.secrets = []
        self.query_secrets = []  # values sent in URL queries (api_key=...)
        self._id = 0
        self._lock = threading.Lock()
        self._procs = []
        self.as_key = None
        self.as_jwks = None
        self._tls = None

    @classmethod
    def create(cls, build=None, directory=None):
        build = build or os.environ.get("DPOP_BUILD") or os.path.join(
            os.path.dirname(__file__), "..", "..", "build-release")
        directory = directory or tempfile.mkdtemp(prefix="dpop-it-", dir="/tmp")
        os.chmod(directory, 0o755)
        env = cls(build, directory)
        return env

    def setup_as(self):
        """The authorization server's signing key and its public JWK Set."""
        keys = os.path.join(self.dir, "keys")
        os.makedirs(keys, exist_ok=True)
        os.chmod(keys, 0o755)
        self.as_key = self.keygen("ES256", os.path.join(keys, "as.jwk"))
        self.as_jwks = os.path.join(keys, "as-jwks.json")
        self.tools.run(self.tools.testtoken, "--key", self.as_key.path, "--kid", "as-1",
                       "--jwks-out", self.as_jwks)
        os.chmod(self.as_jwks, 0o644)
        return self

    def next_id(self):
        with self._lock:
            self._id += 1
            return self._id

    def register(self, proc):
        self._procs.append(proc)

    def stop_all(self):
        for p in reversed(self._procs):
            try:
                p.stop()
            except Exception:  # teardown must go on
                pass
        self._procs = []

    def cleanup(self):
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def chown_for_httpd(self, path):
        user, group = run_user()
        if user:
            os.chown(path, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)

    def path(self, *parts):
        p = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    # -- keys, tokens, proofs ---------------------------------------------
    def keygen(self, alg="ES256", path=None):
        path = path or os.path.join(self.dir, "keys", "client-%d-%s.jwk" % (self.next_id(), alg))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.tools.run(self.tools.dpopctl, "keygen", "--alg", alg, "--out", path)
        jkt = self.tools.run(self.tools.dpopctl, "thumbprint", path).stdout.strip()
        with open(path) as f:
            d = json.load(f).get("d")
        if d:
            self.secrets.append(d)
        return Key(path, alg, jkt)

    def client_key(self, alg="ES256"):
        return self.keygen(alg)

    def token(self, jkt=None, sub="alice", client_id="client-1", iss=ISSUER, aud=AUDIENCE,
              ttl=300, exp=None, nbf=None, key=None, kid="as-1"):
        key = key or self.as_key
        args = [self.tools.testtoken, "--key", key.path]
        if kid:
            args += ["--kid", kid]
        for flag, val in (("--iss", iss), ("--aud", aud), ("--sub", sub),
                          ("--client-id", client_id), ("--jkt", jkt)):
            if val is not None:
                args += [flag, val]
        if exp is not None:
            args += ["--exp", str(int(exp))]
        else:
            args += ["--ttl", str(int(ttl))]
        if nbf is not None:
            args += ["--nbf", str(int(nbf))]
        tok = Secret(self.tools.run(*args).stdout.strip())
        self.secrets.append(tok)
        return tok

    def proof(self, key, method, url, token=None, nonce=None, iat=None, jti=None):
        args = [self.tools.dpopctl, "proof", "--key", key.path, "--method", method, "--url", url]
        if token is not None:
            args += ["--access-token", token]
        if nonce is not None:
            args += ["--nonce", nonce]
        if iat is not None:
            args += ["--iat", str(int(iat))]
        if jti is not None:
            args += ["--jti", jti]
        p = Secret(self.tools.run(*args).stdout.strip())
        self.secrets.append(p)
        return p

    def public_jwk(self, key):
        with open(key.path) as f:
            jwk = json.load(f)
        for m in ("d", "p", "q", "dp", "dq", "qi", "oth", "k"):
            jwk.pop(m, None)
        return jwk

    def proof_claims(self, key, method, url, token=None, iat=None, jti=None):
        """Default (header, payload) of a valid proof, for crafting bad ones."""
        import base64
        import hashlib
        header = {"typ": "dpop+jwt", "alg": key.alg, "jwk": self.public_jwk(key)}
        payload = {"jti": jti or base64.urlsafe_b64encode(os.urandom(12)).decode().rstrip("="),
                   "htm": method, "htu": url, "iat": int(time.time() if iat is None else iat)}
        if token is not None:
            payload["ath"] = base64.urlsafe_b64encode(
                hashlib.sha256(token.encode()).digest()).decode().rstrip("=")
        return header, payload

    def craft(self, key, header, payload):
        """A compact JWS with exactly this header and payload, signed by key."""
        p = self.tools.run(self.tools.testtoken, "--key", key.path, "--jws-header",
                           json.dumps(header), "--jws-payload", json.dumps(payload)).stdout.strip()
        p = Secret(p)
        self.secrets.append(p)
        return p

    def remember(self, secret):
        secret = Secret(secret)
        self.secrets.append(secret)
        return secret

    def secret_needles(self):
        """Every secret string, and each JWS's signature segment (a log line
        holding part of a credential is as bad as the whole)."""
        out = []
        for s in self.secrets:
            out.append(s)
            parts = s.split(".")
            if len(parts) == 3 and len(parts[2]) >= 16:
                out.append(parts[2])
        return out

    def httpd(self, **kw):
        return Httpd(self, **kw)

    def tls(self):
        """The session's throwaway CA and server certificate (made once)."""
        with self._lock:
            if self._tls is None:
                self._tls = TLS(self)
            return self._tls

    def memcached(self):
        return Memcached(self)

    def redis(self):
        return Redis(self)


def tamper(jws, part=2):
    """Flip one character of a compact JWS segment (keeps base64url valid)."""
    parts = jws.split(".")
    seg = parts[part]
    mid = len(seg) // 2
    c = "A" if seg[mid] != "A" else "B"
    parts[part] = seg[:mid] + c + seg[mid + 1:]
    return ".".join(parts)


# Locations several test files protect the same way (extra_conf snippets).
BEARER_LOCATION = """
<Location /api/bearer>
    DPoPAllowBearer On
</Location>
"""
REPORT_ONLY_LOCATION = """
<Location /api/ro>
    DPoPMode report-only
</Location>
"""


def expect_backend(r, **expected):
    """The request reached the CGI backend (200) and the backend saw each
    NAME=value given; returns the backend's whole environment."""
    assert r.status == 200, r
    be = r.backend_env()
    assert be.get("BACKEND") == "ok", be
    for name, value in expected.items():
        assert be.get(name) == value, (name, be.get(name), value)
    return be


def reason_logged(h, reason):
    return ("reason=%s " % reason) in h.error_log()


def b64url_json(obj):
    import base64
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Client:
    """A DPoP client: one key, one bound access token, fresh proofs per call.
    Remembers the last DPoP-Nonce the server sent and retries once with it
    when answered use_dpop_nonce (RFC 9449 §8)."""

    def __init__(self, env, key=None, sub="alice", client_id="client-1", **token_kw):
        self.env = env
        self.key = key or env.client_key("ES256")
        self.token = env.token(jkt=self.key.jkt, sub=sub, client_id=client_id, **token_kw)
        self.nonce = None

    def call(self, h, method, path, htu=None, retry_nonce=True, **kw):
        url = htu or h.url(path.split("?", 1)[0])
        proof = self.env.proof(self.key, method, url, token=self.token, nonce=self.nonce)
        r = h.request(method, path, token=self.token, proof=proof, **kw)
        if r.header("DPoP-Nonce"):
            self.nonce = r.header("DPoP-Nonce")
        if (retry_nonce and r.status == 401 and "use_dpop_nonce" in (r.header("WWW-Authenticate") or "")
                and self.nonce):
            proof = self.env.proof(self.key, method, url, token=self.token, nonce=self.nonce)
            r = h.request(method, path, token=self.token, proof=proof, **kw)
            if r.header("DPoP-Nonce"):
                self.nonce = r.header("DPoP-Nonce")
        return r
