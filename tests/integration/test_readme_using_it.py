# SPDX-License-Identifier: Apache-2.0
"""README "Using it" works as written on a fresh Debian 12, and every
shipped configuration is safe to enable (issue 20 item 3).

The test follows the README's steps, adapted only in paths and the port:

    make -C build-release install       -> make install DESTDIR=<tmp> of $DPOP_BUILD
    cp conf.d/dpop.load .../mods-available/   into a temporary ServerRoot laid out as
    cp conf.d/dpop.conf .../conf-available/   Debian's /etc/apache2 (apache2.conf includes
                                              mods-enabled/*.load and conf-enabled/*.conf);
                                              dpop.load's LoadModule path -> the DESTDIR copy
    a2enmod socache_shmcb dpop          -> symlinks in mods-enabled (the system's
                                           socache_shmcb.load, and the modules Debian
                                           enables by default: mpm_event, authn_core,
                                           authz_user, authz_host,
                                           authz_core)
    a2enconf dpop                       -> symlink in conf-enabled
    apachectl configtest                -> apache2 -t: "Syntax OK"
    apachectl graceful                  -> httpd -DFOREGROUND on a free port; later SIGUSR1

and checks what the README promises: nothing is protected after enabling;
with the report-only block added (the README's ```apache block; the AS key
set, issuer, audience and audit paths replaced by the test's), a request
without credentials is served (200) and audited as missing_token with mode
report-only (read with the installed dpop-audit), a bad proof is served and
audited, a valid DPoP request is served.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from harness import (APACHE, AUDIENCE, ISSUER, Client, apache_env, free_port, run_user,
                     tamper, wait_port)

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(TOP, "README.md")
SYS_MODS = "/etc/apache2/mods-available"
EXAMPLES = ["conf.d/dpop.conf", "conf.d/dpop-reverse-proxy.conf", "conf.d/dpop-metrics.conf",
            "debian/dpop.conf"]

README_STEPS = [
    "./scripts/build.sh build-release",
    "make -C build-release install",
    "cp conf.d/dpop.load /etc/apache2/mods-available/",
    "cp conf.d/dpop.conf /etc/apache2/conf-available/",
    "a2enmod socache_shmcb dpop && a2enconf dpop && apachectl configtest",
    "apachectl graceful",
]

APACHE2_CONF = """# Debian's apache2.conf, reduced to what the README's steps touch
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/run/apache2.pid"
DefaultRuntimeDir "{root}/run"
ErrorLog "{root}/error.log"
LogLevel warn dpop:info
{user_lines}
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
DocumentRoot "{root}/htdocs"
<Directory "{root}/htdocs">
    Require all granted
</Directory>
IncludeOptional conf-enabled/*.conf
"""


def using_it():
    text = open(README, encoding="utf-8").read()
    assert "## Using it" in text
    sec = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    sh = re.findall(r"^```sh\n(.*?)^```", sec, re.M | re.S)
    ap = re.findall(r"^```apache\n(.*?)^```", sec, re.M | re.S)
    assert len(sh) == 1 and len(ap) == 1, "Using it: one ```sh and one ```apache block"
    return sh[0], ap[0], sec


def live_lines(path):
    out = []
    for line in open(os.path.join(TOP, path), encoding="utf-8"):
        s = line.strip()
        if s and not s.startswith("#"):
            out.append(s)
    return out


# ---- every shipped example is safe to enable -----------------------------

@pytest.mark.parametrize("path", EXAMPLES)
def test_example_is_commented_or_report_only(path):
    """Every live AuthType DPoP sits in a section (or inside a section) that
    says DPoPMode report-only; no example enforces."""
    stack = [[]]  # per open section: its live directives
    problems = []
    for s in live_lines(path):
        if re.match(r"^</", s):
            sec = stack.pop()
            if "AuthType DPoP" in sec:
                modes = [m for lvl in stack + [sec] for m in lvl if m.startswith("DPoPMode")]
                if "DPoPMode report-only" not in modes:
                    problems.append("a section with AuthType DPoP is not report-only")
            continue
        if re.match(r"^<\w", s):
            stack.append([])
            continue
        stack[-1].append(re.sub(r"\s+", " ", s))
        if s.lower().startswith("dpopmode") and "report-only" not in s:
            problems.append(s)
    assert not problems, "%s: %s" % (path, problems)


@pytest.mark.parametrize("path", ["conf.d/dpop.conf", "debian/dpop.conf"])
def test_enable_as_is_files_protect_nothing(path):
    """The files a2enconf / a2enmod enable as they are: nothing live but
    TraceEnable Off (no file needed, no location protected)."""
    assert live_lines(path) == ["<IfModule dpop_module>", "TraceEnable Off", "</IfModule>"]


def test_rollout_guide_ships_in_the_module_package():
    docs = open(os.path.join(TOP, "debian", "libapache2-mod-dpop.docs")).read().split()
    assert "docs/rollout.md" in docs


# ---- README "Using it", followed -----------------------------------------

def request(port, path, headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Server:
    def __init__(self, conf, port, root):
        self.conf, self.port, self.root, self.proc = conf, port, root, None

    def configtest(self):
        r = subprocess.run([APACHE, "-t", "-f", self.conf], capture_output=True, text=True,
                           env=apache_env())
        return r.returncode, r.stdout + r.stderr

    def start(self):
        self.proc = subprocess.Popen([APACHE, "-f", self.conf, "-DFOREGROUND"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, env=apache_env())
        assert wait_port(self.port, proc=self.proc), self.error_log()[-3000:]

    def graceful(self):
        os.kill(self.proc.pid, signal.SIGUSR1)
        time.sleep(1.0)
        assert wait_port(self.port)

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGWINCH)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def error_log(self):
        try:
            return open(os.path.join(self.root, "error.log"), errors="replace").read()
        except FileNotFoundError:
            return ""


@pytest.fixture
def tree(env):
    d = tempfile.mkdtemp(prefix="dpop-readme-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_readme_steps_as_written(env, tree):
    sh, apache_block, sec = using_it()
    for step in README_STEPS:  # the steps this test performs are the README's
        assert step in sh, "README 'Using it' no longer says: %s" % step
    assert "Syntax OK" in sec and "(200)" in sec and "missing_token" in sec

    # make -C build-release install (into a DESTDIR)
    dest = os.path.join(tree, "destdir")
    r = subprocess.run(["make", "-s", "-C", env.tools.build, "install", "DESTDIR=" + dest],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    mods = glob.glob(os.path.join(dest, "**", "mod_dpop.so"), recursive=True)
    audit_bin = glob.glob(os.path.join(dest, "**", "bin", "dpop-audit"), recursive=True)
    assert len(mods) == 1 and len(audit_bin) == 1, (mods, audit_bin)

    # the Debian layout, in a temporary ServerRoot
    root = os.path.join(tree, "etc", "apache2")
    for sub in ("mods-available", "mods-enabled", "conf-available", "conf-enabled", "run",
                "htdocs/api"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for dirpath, dirs, _ in os.walk(tree):
        for x in dirs:
            os.chmod(os.path.join(dirpath, x), 0o755)
    user, group = run_user()
    if user:
        env.chown_for_httpd(os.path.join(root, "run"))
    with open(os.path.join(root, "htdocs", "api", "hello.txt"), "w") as f:
        f.write("hello from the application\n")
    port = free_port()
    conf = os.path.join(root, "apache2.conf")
    with open(conf, "w") as f:
        f.write(APACHE2_CONF.format(root=root, port=port, user_lines=(
            "User %s\nGroup %s" % (user, group) if user else "")))
    # the modules Debian's apache2 package enables, from the system
    for m in ("mpm_event", "authn_core", "authz_core", "authz_user", "authz_host", "socache_shmcb"):
        shutil.copy(os.path.join(SYS_MODS, m + ".load"), os.path.join(root, "mods-available"))
    # cp conf.d/dpop.load .../mods-available/ ; cp conf.d/dpop.conf .../conf-available/
    load = open(os.path.join(TOP, "conf.d", "dpop.load")).read()
    assert "/usr/lib/apache2/modules/mod_dpop.so" in load
    with open(os.path.join(root, "mods-available", "dpop.load"), "w") as f:
        f.write(load.replace("/usr/lib/apache2/modules/mod_dpop.so", mods[0]))
    shutil.copy(os.path.join(TOP, "conf.d", "dpop.conf"), os.path.join(root, "conf-available"))
    # a2enmod socache_shmcb dpop (+ Debian's defaults) && a2enconf dpop
    for m in ("mpm_event", "authn_core", "authz_core", "authz_user", "authz_host", "socache_shmcb",
              "dpop"):
        os.symlink("../mods-available/%s.load" % m,
                   os.path.join(root, "mods-enabled", "%s.load" % m))
    os.symlink("../conf-available/dpop.conf", os.path.join(root, "conf-enabled", "dpop.conf"))

    srv = Server(conf, port, root)
    try:
        rc, out = srv.configtest()  # apachectl configtest
        assert rc == 0 and "Syntax OK" in out, out
        srv.start()  # apachectl graceful (here: the first start)
        # nothing is protected yet
        status, headers, body = request(port, "/api/hello.txt")
        assert status == 200 and b"hello" in body
        assert "WWW-Authenticate" not in headers

        # stage 1: the README's block, paths replaced
        audit_dir = os.path.join(tree, "var", "lib", "mod_dpop", "audit")
        os.makedirs(os.path.dirname(audit_dir))  # mkdir -p /var/lib/mod_dpop
        os.chmod(os.path.dirname(audit_dir), 0o755)
        env.chown_for_httpd(os.path.dirname(audit_dir))
        block = apache_block
        for doc, real in (("/etc/apache2/dpop/as-jwks.json", env.as_jwks),
                          ("https://as.example.com", ISSUER),
                          ("https://api.example.com", AUDIENCE),
                          ("/var/lib/mod_dpop/audit", audit_dir)):
            assert doc in block, doc
            block = block.replace(doc, real)
        with open(os.path.join(root, "conf-available", "dpop.conf"), "a") as f:
            f.write("\n" + block)
        rc, out = srv.configtest()  # apachectl configtest && apachectl graceful
        assert rc == 0 and "Syntax OK" in out, out
        srv.graceful()

        def audited(reason):
            r = subprocess.run([audit_bin[0], "--store", audit_dir, "list", "--reason", reason,
                                "--format", "json"], capture_output=True, text=True)
            return [json.loads(l) for l in r.stdout.splitlines()]

        # without credentials: served, and audited as missing_token (report-only);
        # old children may still serve the first requests after a graceful
        deadline = time.time() + 20
        events = []
        while time.time() < deadline and not events:
            status, headers, body = request(port, "/api/hello.txt")
            assert status == 200 and b"hello" in body
            time.sleep(0.3)
            if os.path.exists(os.path.join(audit_dir, "data.mdb")):
                events = audited("missing_token")
        assert events, srv.error_log()[-3000:]
        assert events[0]["mode"] == "report-only" and events[0]["path"] == "/api/hello.txt"

        # a DPoP client is served; a bad proof is served and audited
        c = Client(env)
        url = "http://127.0.0.1:%d/api/hello.txt" % port
        proof = env.proof(c.key, "GET", url, token=c.token)
        status, _, body = request(port, "/api/hello.txt", {"Authorization": "DPoP " + c.token,
                                                           "DPoP": proof})
        assert status == 200 and b"hello" in body
        bad = env.proof(c.key, "GET", url, token=c.token)
        status, _, _ = request(port, "/api/hello.txt", {"Authorization": "DPoP " + c.token,
                                                        "DPoP": tamper(bad)})
        assert status == 200
        deadline = time.time() + 10
        while time.time() < deadline and not audited("bad_signature"):
            time.sleep(0.2)
        assert audited("bad_signature")
        log = srv.error_log()
        for secret in env.secret_needles():
            assert secret not in log
    finally:
        srv.stop()
