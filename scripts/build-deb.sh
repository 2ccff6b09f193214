#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the Debian packages libapache2-mod-dpop and dpop-tools
# (dpkg-buildpackage -us -uc -b, debian/) and put the .deb files into OUTDIR.
#   usage: scripts/build-deb.sh [OUTDIR]        (default: the current directory)
# The build runs in a copy of the source tree (the files git tracks or does
# not ignore), so the working tree gets no debian/tmp, stamps or .debs and
# nothing is written next to it.  As root, missing build dependencies are
# installed first (apt-get build-dep on the copy); otherwise they are listed.
# DEB_BUILD_OPTIONS passes through: DEB_BUILD_OPTIONS=nocheck skips the unit
# tests, noddebs the -dbgsym packages.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "${1:-.}"
out=$(cd "${1:-.}" && pwd)

for cmd in dpkg-buildpackage dpkg-parsechangelog; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
        else
            echo "build-deb: $cmd not found: apt-get install dpkg-dev debhelper" >&2
            exit 1
        fi
    fi
done

version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
upstream=${version%-*}
work=$(mktemp -d "${TMPDIR:-/tmp}/dpop-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/libapache2-mod-dpop-$upstream"
mkdir -p "$src"

# The copy: tracked and untracked-but-not-ignored files that exist (so no
# build directory, generated configure, node_modules or test binaries).
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$src" -xf -
else
    tar -C "$top" --exclude='./build-*' --exclude=./.git --exclude=./autom4te.cache \
        --exclude=node_modules -cf - . | tar -C "$src" -xf -
fi

cd "$src"
if ! dpkg-checkbuilddeps 2>"$work/builddeps"; then
    if [ "$(id -u)" != 0 ]; then
        cat "$work/builddeps" >&2
        echo "build-deb: run as root to install them, or: sudo apt-get build-dep $top" >&2
        exit 1
    fi
    echo "build-deb: installing build dependencies"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get build-dep -y -qq --no-install-recommends "$src" >/dev/null
fi

echo "build-deb: dpkg-buildpackage -us -uc -b ($version, DEB_BUILD_OPTIONS='${DEB_BUILD_OPTIONS:-}')"
if ! dpkg-buildpackage -us -uc -b -jauto >"$work/build.log" 2>&1; then
    tail -60 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed (last 60 lines above)" >&2
    exit 1
fi

shopt -s nullglob
debs=("$work"/*.deb)
[ ${#debs[@]} -gt 0 ] || { echo "build-deb: no .deb produced" >&2; exit 1; }
cp "${debs[@]}" "$out/"
for d in "${debs[@]}"; do echo "$out/$(basename "$d")"; done
