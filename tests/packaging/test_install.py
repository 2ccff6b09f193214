# SPDX-License-Identifier: Apache-2.0
"""`make install DESTDIR=...` (the non-Debian install): the exact set of
files, nothing outside DESTDIR (checked by the `installed` fixture: as
root the install runs as nobody; the configured prefix must still not
exist and the real module directory is untouched), and the installed
files work: the CLIs run, the module loads into httpd."""
import os
import re
import stat

from pkgtest import run

CLIS = ["dpopctl", "dpop-policy", "dpop-audit"]
EXAMPLES = ["dpop.load", "dpop.conf", "dpop-reverse-proxy.conf", "dpop-as.conf", "dpop-metrics.conf",
            "policy.example.yaml"]


def expected(inst):
    p = inst.prefix
    files = {os.path.join(inst.moddir, "mod_dpop.so")}
    files |= {"%s/bin/%s" % (p, c) for c in CLIS}
    files |= {"%s/share/man/man1/%s.1" % (p, c) for c in CLIS}
    files.add("%s/share/man/man8/mod_dpop.8" % p)
    files |= {"%s/share/doc/mod_dpop/examples/%s" % (p, e) for e in EXAMPLES}
    return files


def test_destdir_file_list(installed):
    files = installed.files()
    print("make install DESTDIR=%s:" % installed.destdir)
    for f in sorted(files):
        print("  " + f)
    want = expected(installed)
    assert files == want, "missing: %s\nunexpected: %s" % (sorted(want - files), sorted(files - want))
    # No libtool archive, static library or build-tree path left behind.
    assert not [f for f in files if f.endswith((".la", ".a", ".lo", ".o"))]


def test_destdir_every_install_command_targets_destdir(installed):
    """Every directory `make install` creates or installs into is below
    DESTDIR (read from the V=1 command log)."""
    targets = re.findall(r"(?:mkdir -p|install -c(?: -m \d+)? .*?)\s+'([^']+)'", installed.log)
    assert targets, installed.log[-2000:]
    outside = [t for t in targets if not t.startswith(installed.destdir + "/")]
    assert not outside, outside


def test_destdir_modes_and_binaries_run(installed):
    for c in CLIS:
        path = installed.bin(c)
        assert os.stat(path).st_mode & stat.S_IXOTH, path
        r = run([path, "--help"])
        assert r.returncode == 0 and "usage" in r.stdout.lower(), (c, r.stdout, r.stderr)
        # Nothing links a library from the build tree.
        r = run(["ldd", path])
        assert installed.build not in r.stdout and "not found" not in r.stdout, r.stdout
    so = installed.path(os.path.join(installed.moddir, "mod_dpop.so"))
    r = run(["ldd", so])
    assert installed.build not in r.stdout and "not found" not in r.stdout, r.stdout
    for f in installed.files():
        if "/share/" in f:
            assert os.stat(installed.path(f)).st_mode & 0o777 == 0o644, f


def test_destdir_module_loads(installed, configtest):
    so = installed.path(os.path.join(installed.moddir, "mod_dpop.so"))
    r = configtest("LoadModule dpop_module %s" % so)
    assert r.returncode == 0, r.stderr + "\n" + r.conf
    assert "dpop_module (shared)" in r.modules
