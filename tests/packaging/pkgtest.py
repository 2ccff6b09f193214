# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the packaging tests and their fixtures (conftest.py)."""
import os
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APACHE2 = "/usr/sbin/apache2"
SYSTEM_MODULES = "/usr/lib/apache2/modules"
IS_ROOT = os.geteuid() == 0


def run(cmd, **kw):
    """Run cmd (a list), capture text output; never raises on failure."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


NOTES = []


def note(msg):
    """A line for the suite log: printed after the run by conftest's
    pytest_terminal_summary (pytest captures what tests print), e.g. why a
    test skipped, lintian's summary."""
    NOTES.append(msg)
