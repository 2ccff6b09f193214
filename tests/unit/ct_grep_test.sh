#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make check: secret-derived values are compared in constant time, through
# dpop_ct_equal / dpop_ct_streq (core/dpop_ct.h), and nowhere with
# memcmp, strcmp, strncmp or strcasecmp (issue 11 item 3).
#
# Scans the core (core/*.c) and the Apache glue
# (mod_dpop/mod_dpop_*.c):
#  1. no memcmp/strcmp/strncmp/strcasecmp/bcmp call whose line names an ath,
#     a jkt/thumbprint, a MAC, a tag or a nonce;
#  2. CRYPTO_memcmp only inside dpop_ct.c (one helper, one set of length
#     rules);
#  3. dpop_proof.c (ath, expected nonce, expected jkt) and dpop_nonce.c (the
#     nonce's HMAC tag) do call the helper;
#  4. the pattern of check 1 still catches the comparisons it replaced (a
#     self-test, so a broken regex cannot pass silently).
# Exit 0 pass, 1 fail.
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
fail=0

cmp='(^|[^A-Za-z0-9_])(memcmp|strcmp|strncmp|strcasecmp|strncasecmp|bcmp)[[:space:]]*\('
secret='(^|[^A-Za-z])(ath|jkt|thumbprint|mac|tag|nonce)'

# 4. self-test on the lines this check exists to keep out
for line in \
    'if (p->expected_jkt && strcmp(p->expected_jkt, r->jkt) != 0) {' \
    'if (cl.ath.len != DPOP_JKT_LEN || memcmp(ath, want, DPOP_JKT_LEN) != 0) {' \
    'if (memcmp(tag, raw + 8, NONCE_TAG_LEN) != 0)' \
    'if (strncmp(p->expected_nonce, nonce, el))' \
    'return !strcmp(rq->jkt, dpop_jwk_thumbprint(k));'; do
    if ! printf '%s\n' "$line" | grep -E "$cmp" | grep -Eqi "$secret"; then
        echo "FAIL: self-test: the pattern misses: $line"
        fail=1
    fi
done

files=$(ls core/*.c mod_dpop/mod_dpop_*.c 2>/dev/null)
if [ -z "$files" ]; then
    echo "FAIL: no sources found under $top/mod_dpop"
    exit 1
fi

# 1. (comment lines are skipped: " * ... memcmp ..." explains, it does not compare)
hits=$(grep -nE "$cmp" $files | grep -Ev ':[0-9]+:[[:space:]]*(/?\*|//)' | grep -Ei "$secret")
if [ -n "$hits" ]; then
    echo "FAIL: secret-derived values compared with a variable-time function"
    echo "      (use dpop_ct_equal/dpop_ct_streq from core/dpop_ct.h):"
    printf '%s\n' "$hits"
    fail=1
fi

# 2.
hits=$(grep -n 'CRYPTO_memcmp' $files | grep -v '^core/dpop_ct\.c:' |
       grep -Ev ':[0-9]+:[[:space:]]*(/?\*|//)')
if [ -n "$hits" ]; then
    echo "FAIL: CRYPTO_memcmp outside dpop_ct.c (go through dpop_ct_equal):"
    printf '%s\n' "$hits"
    fail=1
fi
if ! grep -qs 'CRYPTO_memcmp' core/dpop_ct.c; then
    echo "FAIL: dpop_ct.c does not use CRYPTO_memcmp"
    fail=1
fi

# 3.
need() { # file pattern what
    if ! grep -Eq "$2" "$1"; then
        echo "FAIL: $1 does not compare $3 with the constant-time helper"
        fail=1
    fi
}
need core/dpop_proof.c 'dpop_ct_equal\(ath,' 'ath'
need core/dpop_proof.c 'dpop_ct_equal\(p->expected_nonce,' 'the expected nonce'
need core/dpop_proof.c 'dpop_ct_streq\(p->expected_jkt,' 'the expected jkt'
need core/dpop_nonce.c 'dpop_ct_equal\(tag,' 'the nonce MAC tag'

if [ "$fail" -eq 0 ]; then
    n=$(echo $files | wc -w)
    echo "PASS: ath, nonce MAC, nonce and jkt comparisons are constant-time ($n files scanned)"
fi
exit $fail
