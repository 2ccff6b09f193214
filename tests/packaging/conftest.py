# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the packaging tests: `make install` into a DESTDIR, the Debian
packages, and an `apache2 -t` helper.

    installed   session: a fresh build (scripts/build.sh into a temp dir,
                --prefix=/opt/dpop-destdir-test-<random>, a prefix that must
                not exist on this machine) installed with
                `make install DESTDIR=...`; as root the install runs as
                nobody, so a file written outside DESTDIR fails the install
    debs        session: scripts/build-deb.sh into a temp dir
                (DEB_BUILD_OPTIONS=nocheck: the suite runs the unit tests
                in their own stage); skipped with a note when debhelper is
                absent and cannot be installed (not root)
    configtest  apache2 -t against a generated config that loads a given
                mod_dpop.so with the system's mpm_event, authn_core,
                authz_core, authz_user and socache_shmcb

Everything is written below one temp dir, removed at the end.
"""
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pkgtest import APACHE2, IS_ROOT, NOTES, SYSTEM_MODULES, TOP, note, run  # noqa: E402,F401


def pytest_terminal_summary(terminalreporter):
    for msg in NOTES:
        for line in msg.splitlines():
            terminalreporter.write_line("[packaging] " + line)


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="dpop-packaging.")
    os.chmod(d, 0o755)  # nobody must reach the build and DESTDIR below
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---- make install --------------------------------------------------------

class Installed:
    def __init__(self, build, destdir, prefix, moddir, log):
        self.build = build
        self.destdir = destdir
        self.prefix = prefix  # absolute, as configured (not under destdir)
        self.moddir = moddir  # apxs -q LIBEXECDIR, as configured
        self.log = log

    def path(self, p):
        """The DESTDIR copy of absolute path p."""
        return os.path.join(self.destdir, p.lstrip("/"))

    def bin(self, name):
        return self.path(os.path.join(self.prefix, "bin", name))

    def files(self):
        """Every non-directory below DESTDIR, as absolute installed paths."""
        out = set()
        for dirpath, dirnames, filenames in os.walk(self.destdir):
            for f in filenames:
                full = os.path.join(dirpath, f)
                out.add("/" + os.path.relpath(full, self.destdir))
        return out


def _stat_or_none(p):
    try:
        st = os.stat(p)
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return None


@pytest.fixture(scope="session")
def installed(tmp_root):
    build = os.path.join(tmp_root, "build")
    destdir = os.path.join(tmp_root, "destdir")
    prefix = "/opt/dpop-destdir-test-" + secrets.token_hex(4)
    assert not os.path.exists(prefix)
    r = run([os.path.join(TOP, "scripts/build.sh"), build, "--prefix=" + prefix])
    assert r.returncode == 0, "build failed:\n" + r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"^HTTPD_LIBEXECDIR = (.*)$", open(os.path.join(build, "Makefile")).read(), re.M)
    moddir = m.group(1).strip()
    real_module = os.path.join(moddir, "mod_dpop.so")
    before = _stat_or_none(real_module)
    os.makedirs(destdir)
    cmd = ["make", "-C", build, "install", "V=1", "DESTDIR=" + destdir]
    if IS_ROOT:
        # As nobody, every write outside DESTDIR (and the build dir) fails.
        for dirpath, dirnames, filenames in os.walk(build):
            for n in dirnames + filenames:
                os.lchown(os.path.join(dirpath, n), 65534, 65534)
        os.chown(build, 65534, 65534)
        os.chown(destdir, 65534, 65534)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + cmd
    r = run(cmd, stderr=subprocess.STDOUT)
    assert r.returncode == 0, "make install failed:\n" + r.stdout[-5000:]
    # Nothing outside DESTDIR: the configured prefix was not created and the
    # real module directory was not touched.
    assert not os.path.exists(prefix), "make install wrote into %s" % prefix
    assert _stat_or_none(real_module) == before, "make install touched %s" % real_module
    return Installed(build, destdir, prefix, moddir, r.stdout)


# ---- Debian packages -----------------------------------------------------

class Debs:
    def __init__(self, outdir, log):
        self.outdir = outdir
        self.log = log

    def deb(self, package):
        names = [f for f in os.listdir(self.outdir)
                 if f.startswith(package + "_") and f.endswith(".deb")]
        assert len(names) == 1, "one %s_*.deb expected in %s: %s" % (package, self.outdir, names)
        return os.path.join(self.outdir, names[0])

    def all(self):
        return sorted(os.path.join(self.outdir, f) for f in os.listdir(self.outdir)
                      if f.endswith(".deb"))


def _have_debhelper():
    return shutil.which("dh") is not None and shutil.which("dpkg-buildpackage") is not None


@pytest.fixture(scope="session")
def debs(tmp_root):
    if not shutil.which("dpkg"):
        pytest.skip("not a Debian system (no dpkg): the .deb test needs Debian 12")
    if not _have_debhelper() and not IS_ROOT:
        note("debhelper is not installed and cannot be installed without root: "
             "the .deb tests are skipped (apt-get install debhelper dpkg-dev)")
        pytest.skip("debhelper absent and not installable (not root)")
    outdir = os.path.join(tmp_root, "debs")
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck noddebs")
    r = run([os.path.join(TOP, "scripts/build-deb.sh"), outdir], env=env,
            stderr=subprocess.STDOUT, cwd=tmp_root)
    if r.returncode != 0 and not _have_debhelper():
        note("debhelper could not be installed: the .deb tests are skipped\n" + r.stdout[-2000:])
        pytest.skip("debhelper absent and could not be installed")
    assert r.returncode == 0, "scripts/build-deb.sh failed:\n" + r.stdout[-5000:]
    return Debs(outdir, r.stdout)


# ---- apache2 -t ----------------------------------------------------------

def _static_modules():
    r = run([APACHE2, "-l"])
    return set(re.findall(r"^\s+(mod_\w+)\.c$", r.stdout, re.M))


def system_module_lines(names):
    """LoadModule lines for the system's modules (name -> file stem)
    that are not compiled into apache2."""
    static = _static_modules()
    lines = []
    for ident, stem in names:
        if stem in static:
            continue
        so = os.path.join(SYSTEM_MODULES, stem + ".so")
        assert os.path.exists(so), "system module %s missing" % so
        lines.append("LoadModule %s %s" % (ident, so))
    return lines


BASE_MODULES = [("mpm_event_module", "mod_mpm_event"), ("unixd_module", "mod_unixd"),
                ("authn_core_module", "mod_authn_core"), ("authz_core_module", "mod_authz_core"),
                ("authz_user_module", "mod_authz_user"),
                ("socache_shmcb_module", "mod_socache_shmcb")]


@pytest.fixture
def configtest(tmp_path):
    """configtest(load_line, body) -> CompletedProcess of `apache2 -t` and
    `apache2 -M` for a generated config: the base modules, load_line (the
    LoadModule of mod_dpop), then body (extra directives; {tmp} is a
    scratch dir)."""
    if not os.path.exists(APACHE2):
        pytest.skip("apache2 not installed (scripts/deps.sh)")
    os.chmod(str(tmp_path), 0o755)

    def check(load_line, body=""):
        d = str(tmp_path)
        os.makedirs(os.path.join(d, "run"), exist_ok=True)
        conf = os.path.join(d, "httpd.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                'ServerRoot "%s"' % d,
                "ServerName localhost",
                "Listen 127.0.0.1:%d" % (20000 + secrets.randbelow(20000)),
                "PidFile %s/httpd.pid" % d,
                "DefaultRuntimeDir %s/run" % d,
                "Mutex file:%s/run default" % d,
                "ErrorLog %s/error.log" % d,
                "LogLevel warn",
            ] + system_module_lines(BASE_MODULES) + [load_line, body.replace("{tmp}", d), ""]))
        t = run([APACHE2, "-t", "-f", conf])
        m = run([APACHE2, "-t", "-D", "DUMP_MODULES", "-f", conf])
        t.modules = m.stdout
        t.conf = open(conf).read()
        return t

    return check
