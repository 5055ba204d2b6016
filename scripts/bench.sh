#!/usr/bin/env bash
# Every benchmark of the workspace, then one table: each figure next to the baseline measured
# in the same run, and the ratio (> 1: ours is better). Benchmarks are #[ignore]d tests named
# `bench` in each crate; they print `BENCH` lines (test_support::bench::row).
# Usage: scripts/bench.sh [crate…]   (default: all). Sizes: 1 GiB where the issue says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-interop
crates=("$@")
((${#crates[@]})) || crates=(os-image updog pubsys repo-tools signpost abos-delta)
log=$(mktemp -t abos-bench.XXXXXX)
for crate in "${crates[@]}"; do
  echo "== $crate" >&2
  cargo test --release -p "$crate" --test bench -- --ignored --nocapture --test-threads 1 2>&1 | tee -a "$log" >&2
done
echo
printf '%-62s %12s %-6s  %-40s %12s %7s\n' benchmark ours unit baseline "baseline" ratio
grep -P '^BENCH\t' "$log" | while IFS=$'\t' read -r _ name ours unit bname base ratio; do
  printf '%-62s %12s %-6s  %-40s %12s %6sx\n' "$name" "$ours" "$unit" "$bname" "$base" "$ratio"
done
echo "(full output: $log)"
