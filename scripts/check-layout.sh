#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The tree shows the design (README "Source layout"); this fails when an
# include points up:
#   - core/ includes no httpd or APR header and nothing from
#     policy/, logger/ or the glue;
#   - policy/ and logger/ include no httpd or APR header, no glue header, and
#     not each other;
#   - no file outside mod_dpop/ includes a mod_dpop*.h;
#   - libdpopcore is compiled from core/ files only, and does no network I/O:
#     libcurl is included by core/dpop_fetch.c alone, which is its own
#     library (libdpopfetch, linked by the glue and dpopctl), never part of
#     libdpopcore;
#   - mod_dpop_config.c, the bottom of the glue, includes no other glue header.
# Prints one line per violation and exits 1, or one summary line and exits 0.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bad=0
fail() { echo "layout: $*"; bad=1; }

# An httpd or APR/APR-util header: httpd.h, http_*.h, ap_*.h, util_*.h,
# mod_*.h from httpd, apr*.h, apu*.h, unixd.h, mpm_common.h.
HTTPD_RE='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](httpd|http_[a-z_]+|ap_[a-z_]+|util_[a-z_]+|apr|apr_[a-z_]+|apu|apu_[a-z_]+|unixd|mpm_common|mod_auth|mod_core)\.h[>"]'
includes() { # FILE... -> "file:line:header" for each quoted or angled include
    grep -HnE '^[[:space:]]*#[[:space:]]*include' "$@" |
        sed -E 's/^([^:]+:[0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1:\2/'
}

mapfile -t core < <(git ls-files 'core/*.c' 'core/*.h')
mapfile -t policy < <(git ls-files 'policy/*.c' 'policy/*.h')
mapfile -t logger < <(git ls-files 'logger/*.c' 'logger/*.h')
mapfile -t outside < <(git ls-files '*.c' '*.h' | grep -v -E '^mod_dpop/mod_dpop[^/]*$')
[ ${#core[@]} -gt 0 ] || fail "no source under core/"

for f in $(grep -lE "$HTTPD_RE" "${core[@]}" "${policy[@]}" "${logger[@]}" || true); do
    fail "$f includes an httpd/APR header: $(grep -nE "$HTTPD_RE" "$f" | head -1)"
done

core_names=$(printf '%s\n' "${core[@]}" | xargs -n1 basename)
policy_names=$(printf '%s\n' "${policy[@]}" | xargs -n1 basename)
logger_names=$(printf '%s\n' "${logger[@]}" | xargs -n1 basename)
is_in() { printf '%s\n' "$2" | grep -qxF "$1"; }

while IFS=: read -r file line hdr; do
    base=$(basename "$hdr")
    case "$file" in
    core/*)
        if is_in "$base" "$policy_names" || is_in "$base" "$logger_names"; then
            fail "$file:$line: the core includes $hdr (policy/logger sit above it)"
        fi ;;
    policy/*)
        is_in "$base" "$logger_names" && fail "$file:$line: policy/ includes logger's $hdr" ;;
    logger/*)
        is_in "$base" "$policy_names" && fail "$file:$line: logger/ includes policy's $hdr" ;;
    esac
    case "$base" in
    mod_dpop*.h)
        case "$file" in
        mod_dpop/mod_dpop*) ;;
        *) fail "$file:$line: includes the glue header $hdr outside mod_dpop/" ;;
        esac ;;
    esac
done < <(includes "${outside[@]}" mod_dpop/mod_dpop*.[ch])

# libdpopcore is built from core/ alone: a source from another folder in its
# list (the glue, policy/, logger/) would make the core depend on it.
while read -r src; do
    case "$src" in
    core/*) ;;
    *) fail "core/core.am: libdpopcore is built from $src (only core/ may be)" ;;
    esac
done < <(sed -n '/^core_libdpopcore_la_SOURCES/,/^[^[:space:]]/p' core/core.am |
    grep -v '^core_libdpopcore_la_[A-Z]*[[:space:]]*=[[:space:]]*\\$' |
    tr ' \t\\' '\n\n\n' | grep -E '\.[ch]$' | grep -v '^core_libdpopcore')

# The network stays out of the core library: only dpop_fetch.c (libdpopfetch)
# includes libcurl, and libdpopcore's source list never names it.
for f in $(grep -lE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]curl/' "${core[@]}" || true); do
    [ "$f" = core/dpop_fetch.c ] || fail "$f includes libcurl (only core/dpop_fetch.c may, in libdpopfetch)"
done
if sed -n '/^core_libdpopcore_la_SOURCES/,/^[^[:space:]]/p' core/core.am | grep -q 'dpop_fetch'; then
    fail "core/core.am: libdpopcore is built from dpop_fetch.c (the network belongs in libdpopfetch)"
fi

# The config is the bottom of the glue: it reads no other glue file.
while IFS=: read -r file line hdr; do
    case "$hdr" in
    mod_dpop_config.h) ;;
    mod_dpop*.h) fail "$file:$line: the config includes $hdr (the config is the bottom of the glue)" ;;
    esac
done < <(includes mod_dpop/mod_dpop_config.c mod_dpop/mod_dpop_config.h)

[ "$bad" = 0 ] || exit 1
echo "layout: ${#core[@]} core, ${#policy[@]} policy, ${#logger[@]} logger files include no httpd/APR header and nothing above them; glue headers stay in mod_dpop/"
