#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Run every built libFuzzer target for N seconds each, seeded from
# tests/fuzz/corpus/<target>/ (read-only; new inputs go to a temp dir).
# usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$1; secs=${2:-20}
found=0
for bin in "$build"/tests/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    case "$bin" in *.o|*.log) continue;; esac
    name=$(basename "$bin")
    found=1
    work=$(mktemp -d)
    seeds="$top/tests/fuzz/corpus/$name"
    echo "fuzz $name: ${secs}s"
    args=("$work")
    [ -d "$seeds" ] && args+=("$seeds")
    if ! "$bin" -max_total_time="$secs" -max_len=16384 -print_final_stats=1 "${args[@]}" >"$work.log" 2>&1; then
        tail -40 "$work.log"; rm -rf "$work" "$work.log"; exit 1
    fi
    grep -E 'stat::number_of_executed_units' "$work.log" | sed "s/^/  $name /"
    rm -rf "$work" "$work.log"
done
[ "$found" = 1 ] || echo "no fuzz targets built"
