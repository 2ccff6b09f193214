#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install the Debian 12 packages mod_dpop needs to build, test and demo.
# Only as root, only what is missing; otherwise print what to install.
set -euo pipefail
PKGS="apache2 apache2-dev libapr1-dev libaprutil1-dev libssl-dev libjansson-dev libyaml-dev \
liblmdb-dev lmdb-utils check autoconf automake libtool pkg-config make gcc curl memcached \
python3 python3-pytest clang clang-format git libclang-rt-14-dev chromium groff-base \
libcurl4-openssl-dev libhiredis-dev libmemcached-dev redis-server redis-tools wrk openssl linux-perf prometheus ${DPOP_EXTRA_PKGS:-}"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node + npm run the independent DPoP implementation (npm "jose") of the
# interop test and the end-to-end test's authorization server and client
# (npm "oidc-provider", "oauth4webapi"; tests/e2e, installed there by `npm ci`
# from the pinned package-lock.json); any install providing the commands will
# do. openssl (CLI) makes the throwaway CA of the HTTPS/HTTP/2 tests.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages:$missing" >&2
    echo "run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts these services on install; the tests run their own instances.
# (prometheus: only its promtool checks the alerting rules of contrib/observability)
for svc in apache2 memcached redis-server prometheus; do
    if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
    service "$svc" stop >/dev/null 2>&1 || true
done
