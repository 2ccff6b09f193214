#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source and script file names the project's license (Apache-2.0, the
# LICENSE file at the top) on an SPDX line within its first five lines:
# C, headers, shell, Python, automake/autoconf, Lua, JavaScript, man pages,
# Apache config snippets.  Prints the files that do not and exits 1, or one
# summary line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f LICENSE ] && grep -q 'Apache License' LICENSE || { echo "license: LICENSE (Apache-2.0) missing"; exit 1; }
bad=0
n=0
while IFS= read -r f; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    if ! head -5 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
        echo "license: $f has no 'SPDX-License-Identifier: Apache-2.0' line"
        bad=1
    fi
done < <(git ls-files '*.c' '*.h' '*.sh' '*.py' '*.am' '*.ac' '*.lua' '*.mjs' '*.js' \
    '*.1' '*.8' 'conf.d/*' '.ci/run' 'debian/rules' | grep -v -e '^tests/fuzz/corpus/' -e '\.json$' -e '\.md$')
[ "$bad" = 0 ] || exit 1
echo "license: LICENSE is Apache-2.0 and all $n source and script files name it"
