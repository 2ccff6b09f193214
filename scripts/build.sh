#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configure and build into a build directory (VPATH), reusing it when the
# configuration is unchanged.  usage: scripts/build.sh DIR [configure args...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$1; shift
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ -n "$(find . -name '*.am' -newer configure -not -path './build-*' | head -1)" ]; then
    autoreconf -fi >/dev/null
fi
mkdir -p "$dir"
cd "$dir"
want="$*"
if [ ! -f Makefile ] || [ "$(cat .dpop-configure-args 2>/dev/null)" != "$want" ]; then
    "$top/configure" --quiet "$@"
    echo "$want" > .dpop-configure-args
fi
make -s -j"$(nproc)"
