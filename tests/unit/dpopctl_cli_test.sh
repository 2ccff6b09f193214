#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make check driver for the dpopctl CLI tests: runs
# tests/integration/test_dpopctl.py (pytest) against the dpopctl of the
# build directory make check runs in (or $DPOP_BUILD).  Exit 77 = skipped.
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${DPOP_BUILD:-$(pwd)}
if [ ! -x "$build/core/dpopctl" ]; then
    echo "SKIP: $build/core/dpopctl not built"
    exit 77
fi
if ! /usr/bin/python3 -c 'import pytest' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 has no pytest (apt-get install python3-pytest)"
    exit 77
fi
DPOP_BUILD=$build exec /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    "$top/tests/integration/test_dpopctl.py" "$top/tests/integration/test_dpopctl_client.py"
