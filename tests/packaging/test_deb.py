# SPDX-License-Identifier: Apache-2.0
"""The Debian packages built by scripts/build-deb.sh: their file lists
(dpkg -c), metadata, that the module from the package loads into the
system's httpd (both packages unpacked with dpkg -x into a throwaway root,
never installed), that `a2enmod dpop` + `apachectl -t` work on a copy of
this machine's /etc/apache2, and lintian (errors fail, warnings printed).
Skipped with a printed note when debhelper is absent and cannot be
installed (see conftest.debs)."""
import json
import os
import re
import shutil

import pytest

from pkgtest import IS_ROOT, TOP, note, run

MOD = "libapache2-mod-dpop"
TOOLS = "dpop-tools"
DOC_MOD = "/usr/share/doc/" + MOD
DOC_TOOLS = "/usr/share/doc/" + TOOLS

EXPECTED = {
    MOD: {
        "/etc/apache2/mods-available/dpop.load",
        "/etc/apache2/mods-available/dpop.conf",
        "/usr/lib/apache2/modules/mod_dpop.so",
        "/usr/share/man/man8/mod_dpop.8.gz",
        DOC_MOD + "/changelog.Debian.gz",
        DOC_MOD + "/copyright",
        DOC_MOD + "/README.md.gz",
        DOC_MOD + "/module.md.gz",
        DOC_MOD + "/policy.md.gz",
        DOC_MOD + "/scaling.md.gz",
        DOC_MOD + "/rollout.md.gz",
        DOC_MOD + "/examples/dpop.conf",
        DOC_MOD + "/examples/dpop-reverse-proxy.conf",
        DOC_MOD + "/examples/dpop-as.conf",
        DOC_MOD + "/examples/dpop-metrics.conf",
        DOC_MOD + "/examples/observability/README.md",
        DOC_MOD + "/examples/observability/prometheus.yml",
        DOC_MOD + "/examples/observability/dpop-alerts.rules.yml",
        DOC_MOD + "/examples/observability/grafana-dashboard.json",
        DOC_MOD + "/examples/policy.example.yaml",
        "/usr/share/lintian/overrides/" + MOD,
    },
    TOOLS: {
        "/usr/bin/dpopctl",
        "/usr/bin/dpop-policy",
        "/usr/bin/dpop-audit",
        "/usr/share/man/man1/dpopctl.1.gz",
        "/usr/share/man/man1/dpop-policy.1.gz",
        "/usr/share/man/man1/dpop-audit.1.gz",
        DOC_TOOLS + "/changelog.Debian.gz",
        DOC_TOOLS + "/copyright",
        DOC_TOOLS + "/audit.md.gz",
        DOC_TOOLS + "/dpopctl.md.gz",
        DOC_TOOLS + "/policy.md.gz",
        "/usr/share/lintian/overrides/" + TOOLS,
    },
}


def contents(deb):
    """{path: (mode string, is_dir)} from dpkg -c."""
    r = run(["dpkg", "-c", deb])
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        fields = line.split(None, 5)
        path = fields[5].split(" -> ")[0]
        path = "/" + path.lstrip("./")
        out[path.rstrip("/") or "/"] = (fields[0], fields[0].startswith("d"))
    return out


def field(deb, name):
    r = run(["dpkg-deb", "-f", deb, name])
    return r.stdout.strip()


@pytest.fixture(scope="module")
def unpacked(debs, tmp_root):
    root = os.path.join(tmp_root, "root")
    if not os.path.isdir(root):
        os.makedirs(root)
        for deb in (debs.deb(MOD), debs.deb(TOOLS)):
            r = run(["dpkg", "-x", deb, root])
            assert r.returncode == 0, r.stderr
    return root


def test_build_deb_output(debs):
    print(debs.log)
    names = sorted(os.path.basename(d) for d in debs.all())
    assert [n for n in names if n.startswith(MOD + "_")] and [n for n in names if n.startswith(TOOLS + "_")], names


@pytest.mark.parametrize("package", [MOD, TOOLS])
def test_file_list(debs, package):
    deb = debs.deb(package)
    listing = contents(deb)
    files = {p for p, (mode, isdir) in listing.items() if not isdir}
    print("dpkg -c %s:" % os.path.basename(deb))
    for f in sorted(files):
        print("  %s %s" % (listing[f][0], f))
    want = EXPECTED[package]
    assert files == want, "missing: %s\nunexpected: %s" % (sorted(want - files), sorted(files - want))
    for f in files:
        mode = listing[f][0]
        if f.startswith("/usr/bin/"):
            assert mode == "-rwxr-xr-x", (f, mode)
        else:
            assert mode == "-rw-r--r--", (f, mode)


def test_module_package_metadata(debs):
    deb = debs.deb(MOD)
    version = field(deb, "Version")
    changelog = open(os.path.join(TOP, "debian", "changelog")).readline()
    assert "(%s)" % version in changelog
    # The upstream part is configure.ac's AC_INIT version.
    configure_ac = open(os.path.join(TOP, "configure.ac")).read()
    assert re.search(r"AC_INIT\(\[mod_dpop\], \[%s\]" % re.escape(version.split("-")[0]), configure_ac)
    depends = field(deb, "Depends")
    # dh_apache2: the module depends on the httpd module ABI, not on apache2.
    assert re.search(r"\bapache2-api-\d+\b", depends), depends
    assert "apache2-bin" in depends
    # On a clean system a2enmod and apachectl come with apache2 (a
    # Recommends, installed by default), not with apache2-bin.
    assert re.search(r"\bapache2\b(?!-)", field(deb, "Recommends")), field(deb, "Recommends")
    ctrl = run(["dpkg-deb", "--info", deb, "conffiles"]).stdout
    assert set(ctrl.split()) == {"/etc/apache2/mods-available/dpop.load",
                                 "/etc/apache2/mods-available/dpop.conf"}
    assert field(debs.deb(TOOLS), "Version") == version


def test_load_file_and_module(unpacked):
    load = open(os.path.join(unpacked, "etc/apache2/mods-available/dpop.load")).read()
    # a2enmod reads this line to enable the default replay cache's provider.
    assert re.search(r"^# Depends:.*\bsocache_shmcb\b", load, re.M), load
    m = re.search(r"^LoadModule dpop_module (\S+)$", load, re.M)
    assert m and m.group(1) == "/usr/lib/apache2/modules/mod_dpop.so", load
    assert os.path.exists(os.path.join(unpacked, m.group(1).lstrip("/")))
    # dpop.conf is included by a2enmod dpop as it is: it must protect
    # nothing and need no file by itself (everything else commented out).
    conf = open(os.path.join(unpacked, "etc/apache2/mods-available/dpop.conf")).read()
    active = [l.strip() for l in conf.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert active == ["<IfModule dpop_module>", "TraceEnable Off", "</IfModule>"], active


def _public_jwks(dpopctl, path):
    r = run([dpopctl, "keygen", "--alg", "ES256"])
    assert r.returncode == 0, r.stderr
    jwk = json.loads(r.stdout)
    jwk.pop("d")
    with open(path, "w") as f:
        json.dump({"keys": [dict(jwk, kid="as-1", use="sig")]}, f)


def test_installed_module_loads(unpacked, configtest, tmp_path):
    """apache2 -t with the extracted mod_dpop.so, the extracted dpop.conf
    (valid standalone: everything in it is commented out), a protected
    location, and the packaged example policy loaded by the module."""
    so = os.path.join(unpacked, "usr/lib/apache2/modules/mod_dpop.so")
    r = run(["ldd", so])
    assert "not found" not in r.stdout, r.stdout
    dpopctl = os.path.join(unpacked, "usr/bin/dpopctl")
    jwks = str(tmp_path / "as-jwks.json")
    _public_jwks(dpopctl, jwks)
    os.chmod(jwks, 0o644)
    body = "\n".join([
        "Include %s/etc/apache2/mods-available/dpop.conf" % unpacked,
        "DPoPTokenJWKS %s" % jwks,
        "DPoPTokenIssuer https://as.example.com",
        "DPoPTokenAudience https://api.example.com",
        "DPoPReplayCache shmcb:{tmp}/run/dpop-replay(1048576)",
        "DPoPPolicyFile %s%s/examples/policy.example.yaml" % (unpacked, DOC_MOD),
        "<Location /api>",
        "    AuthType DPoP",
        "    Require dpop-policy",
        "</Location>",
    ])
    r = configtest("LoadModule dpop_module %s" % so, body)
    assert r.returncode == 0, r.stderr + "\n" + r.conf
    assert "Syntax OK" in r.stderr
    assert "dpop_module (shared)" in r.modules
    # And the module really validates what it reads: a broken key set fails.
    with open(jwks, "w") as f:
        f.write("{}")
    r = configtest("LoadModule dpop_module %s" % so, body)
    assert r.returncode != 0 and "DPoPTokenJWKS" in r.stderr, r.stderr


def test_installed_tools_run(unpacked):
    for tool in ("dpopctl", "dpop-policy", "dpop-audit"):
        path = os.path.join(unpacked, "usr/bin", tool)
        r = run([path, "--help"])
        assert r.returncode == 0, (tool, r.stderr)
    r = run([os.path.join(unpacked, "usr/bin/dpop-policy"), "check",
             os.path.join(unpacked, DOC_MOD.lstrip("/"), "examples/policy.example.yaml")])
    assert r.returncode == 0, r.stdout + r.stderr


def test_a2enmod_and_apachectl(unpacked, tmp_path):
    """What an administrator types after installing the packages, on a copy
    of this machine's /etc/apache2 (APACHE_CONFDIR) with a2enmod's state in
    a temp dir and the .so path pointing into the extracted root."""
    if not (shutil.which("a2enmod") and shutil.which("apachectl") and os.path.isdir("/etc/apache2")):
        pytest.skip("apache2 (a2enmod, apachectl, /etc/apache2) not installed")
    conf = str(tmp_path / "apache2")
    shutil.copytree("/etc/apache2", conf, symlinks=True)
    for d in ("run", "lock", "log", "state"):
        os.makedirs(str(tmp_path / d))
    with open(os.path.join(conf, "envvars"), "w") as f:
        f.write("unset HOME\nexport APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\n"
                "export APACHE_PID_FILE={t}/run/apache2.pid\nexport APACHE_RUN_DIR={t}/run\n"
                "export APACHE_LOCK_DIR={t}/lock\nexport APACHE_LOG_DIR={t}/log\nexport LANG=C\n"
                .format(t=tmp_path))
    env = dict(os.environ, APACHE_CONFDIR=conf, APACHE_STATE_DIRECTORY=str(tmp_path / "state"))
    for f in ("dpop.load", "dpop.conf"):
        text = open(os.path.join(unpacked, "etc/apache2/mods-available", f)).read()
        text = text.replace("/usr/lib/apache2/modules/mod_dpop.so",
                            os.path.join(unpacked, "usr/lib/apache2/modules/mod_dpop.so"))
        with open(os.path.join(conf, "mods-available", f), "w") as out:
            out.write(text)
    base = run(["apachectl", "-t"], env=env)
    if base.returncode != 0:
        note("a2enmod test skipped: a copy of this machine's /etc/apache2 fails "
             "apachectl -t (as uid %d) before mod_dpop is enabled:\n%s" % (os.geteuid(), base.stderr))
        pytest.skip("apachectl -t fails on the system configuration alone")
    r = run(["a2enmod", "dpop"], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    enabled = os.listdir(os.path.join(conf, "mods-enabled"))
    assert {"dpop.load", "dpop.conf", "socache_shmcb.load"} <= set(enabled), enabled
    r = run(["apachectl", "-t"], env=env)
    assert r.returncode == 0 and "Syntax OK" in r.stderr, r.stderr
    r = run(["apachectl", "-M"], env=env)
    assert "dpop_module (shared)" in r.stdout, r.stdout + r.stderr
    # a2enmod kept its state in the temp dir, not in /var/lib/apache2.
    assert os.listdir(str(tmp_path / "state"))


def _lintian():
    if shutil.which("lintian"):
        return True
    if not IS_ROOT:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "lintian"], env=env)
    return shutil.which("lintian") is not None


def test_lintian(debs):
    if not _lintian():
        note("lintian is not installed and cannot be installed (not root or no mirror): "
             "lintian check skipped (apt-get install lintian)")
        pytest.skip("lintian absent and not installable")
    r = run(["lintian", "--info", "--display-info", "--show-overrides", "--fail-on", "none",
             debs.deb(MOD), debs.deb(TOOLS)])
    tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWIPXO]: ", l)]
    counts = {k: sum(1 for t in tags if t.startswith(k + ":")) for k in "EWIO"}
    summary = "lintian: %d error(s), %d warning(s), %d info, %d overridden" % (
        counts["E"], counts["W"], counts["I"], counts["O"])
    note(summary + "".join("\n  " + t for t in tags if not t.startswith("O:")))
    print(summary)
    for t in tags:
        print("  " + t)
    # Issue 16: 0 errors and 0 warnings (info tags are printed, not counted).
    errors = [t for t in tags if t.startswith(("E:", "W:"))]
    assert not errors, "\n".join(errors)
    assert "E:" not in r.stderr, r.stderr
