#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite (the README's test command; .ci/run calls it):
#   1. deps (apt-get as root), clang-format check, layout check (no include
#      points up: scripts/check-layout.sh), license check (an SPDX line in
#      every source and script: scripts/check-license.sh), build with
#      -Wall -Wextra -Werror
#   2. Check unit tests (make check)
#   3. the same unit tests under ASan+UBSan (clang)
#   4. libFuzzer targets, briefly (DPOP_FUZZ_SECONDS per target, default 20)
#   5. integration tests against a real httpd (and memcached, redis-server)
#      on loopback, then a subset against the ASan+UBSan build of mod_dpop.so
#   6. packaging: make install DESTDIR, man pages, the .deb packages
#      (tests/packaging; scripts/build-deb.sh, lintian)
#   7. fault injection under load (tests/faults): memcached and Redis killed,
#      restarted, flushed and SIGSTOPped, audit
#      store full and read-only, broken policy, graceful restarts, SIGKILL
# Stops at the first failing stage; prints each stage's own summary.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/deps.sh"

stage() { printf '\n==== %s ====\n' "$*"; }

stage "format (clang-format, .clang-format)"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
echo "clang-format: $(git ls-files '*.c' '*.h' | wc -l) files clean"

stage "layout (no include points up) and license (SPDX line in every file)"
scripts/check-layout.sh
scripts/check-license.sh

stage "build (gcc, -Werror)"
scripts/build.sh build-release CFLAGS="-O2 -g"

stage "unit tests (Check)"
make -s -C build-release check || { cat build-release/tests/unit/*.log 2>/dev/null | tail -50; exit 1; }
for log in build-release/tests/unit/*.log; do grep -h -E '^[0-9]+%: Checks' "$log" || true; done

stage "unit tests under ASan+UBSan (clang)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
scripts/build.sh build-asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" LDFLAGS="-fsanitize=address,undefined"
make -s -C build-asan check || { cat build-asan/tests/unit/*.log 2>/dev/null | tail -50; exit 1; }
for log in build-asan/tests/unit/*.log; do grep -h -E '^[0-9]+%: Checks' "$log" || true; done

stage "fuzz (libFuzzer, ${DPOP_FUZZ_SECONDS:-20}s per target)"
scripts/build.sh build-fuzz CC=clang --enable-fuzz CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address,undefined"
scripts/fuzz.sh build-fuzz "${DPOP_FUZZ_SECONDS:-20}"

stage "integration tests (real httpd on 127.0.0.1)"
DPOP_BUILD="$top/build-release" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

stage "integration subset against the ASan+UBSan build of mod_dpop.so"
# The ASan build of stage 3 loaded into a real httpd (the sanitizer runtime
# preloaded into httpd only, DPOP_APACHE_PRELOAD): memory errors that only
# httpd's request life cycle shows (a subrequest's pool destroyed under a
# record that still points into it) abort the child, and the harness fails
# the test on any sanitizer report in the error log.  A focused subset:
# about two minutes.
asan_rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
[ -f "$asan_rt" ] || { echo "no ASan runtime at $asan_rt"; exit 1; }
DPOP_BUILD="$top/build-asan" DPOP_APACHE_PRELOAD="$asan_rt" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    tests/integration/test_review_findings.py tests/integration/test_module_auth.py \
    tests/integration/test_module_authz.py tests/integration/test_module_audit.py

stage "packaging (make install, man pages, .deb)"
/usr/bin/python3 -m pytest -q -rs -p no:cacheprovider tests/packaging

stage "fault injection (tests/faults)"
DPOP_BUILD="$top/build-release" /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/faults
