#!/usr/bin/env bash
# Instructions per random hit lookup, counted by valgrind's cachegrind
# (no cache simulation): examples/hit_loop builds a dense table of
# 2^LOG2 u64 entries and makes exactly K, then 2K, random hit lookups;
# (Ir(2K) - Ir(K)) / K is what one lookup costs, the build cancelling out.
# Instruction counts do not depend on caches, so a small table will do
# (2^20 by default: building 2^22 under valgrind is slow).
#
#   bash benches/instructions.sh [LOG2 [K [CONTENDER...]]]
#
# Defaults: LOG2=20, K=2^20, contenders crate-heap crate-arena plain-radix fx
# (also crate-pool, hashbrown, flat; see examples/hit_loop.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

log2=${1:-20}
k=${2:-$((1 << 20))}
shift $(($# < 2 ? $# : 2))
contenders=("$@")
if [ ${#contenders[@]} -eq 0 ]; then
    contenders=(crate-heap crate-arena plain-radix fx)
fi

if ! command -v valgrind >/dev/null; then
    echo "instructions.sh: valgrind not found (apt-get install -y valgrind)" >&2
    exit 1
fi

cargo build --release --example hit_loop --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
exe="${target_dir:-target}/release/examples/hit_loop"

# Instructions executed by one run of hit_loop (cachegrind's "I refs").
ir() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$exe" "$@" 2>&1 >/dev/null |
        awk '/I[[:space:]]+refs:/ { gsub(",", "", $NF); print $NF }'
}

printf '%-14s %16s %16s %14s\n' contender "Ir(K)" "Ir(2K)" "Ir per lookup"
for c in "${contenders[@]}"; do
    one=$(ir "$c" "$log2" "$k")
    two=$(ir "$c" "$log2" $((2 * k)))
    if [ -z "$one" ] || [ -z "$two" ]; then
        echo "instructions.sh: no instruction count for $c (did hit_loop fail?)" >&2
        exit 1
    fi
    awk -v c="$c" -v a="$one" -v b="$two" -v k="$k" \
        'BEGIN { printf "%-14s %16d %16d %14.1f\n", c, a, b, (b - a) / k }'
done
echo "(2^$log2 entries, K = $k lookups; cachegrind --cache-sim=no)"
