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
# fleet (issue 14): etcd round trips, coordinated vs stand-alone per host, a 12-host rollout next
# to its theoretical minimum; a real 3-member etcd and real processes on the release binaries.
# Runs with every benchmark, or alone with `scripts/bench.sh fleet`.
fleet=0; others=()
for c in "${crates[@]}"; do if [ "$c" = fleet ]; then fleet=1; else others+=("$c"); fi; done
(($#)) || fleet=1
crates=(${others[@]+"${others[@]}"})
if ((fleet)); then
  echo "== fleet" >&2
  cargo build --release --quiet -p updog -p signpost -p os-image -p pubsys -p repo-tools -p fleet --bins
  bench_bins=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
  ABOS_BIN_DIR=$bench_bins cargo test --release -p integration --test fleet_bench -- --ignored --nocapture 2>&1 | tee -a "$log" >&2
fi
for crate in "${crates[@]}"; do
  echo "== $crate" >&2
  cargo test --release -p "$crate" --test bench -- --ignored --nocapture --test-threads 1 2>&1 | tee -a "$log" >&2
done
# Object storage (issue 15): publishing to S3 on loopback next to boto3's multipart upload.
if [[ " ${crates[*]} " == *" pubsys "* ]]; then
  echo "== pubsys (s3)" >&2
  cargo test --release -p pubsys --test s3_bench -- --ignored --nocapture --test-threads 1 2>&1 | tee -a "$log" >&2
fi
# Delta updates (issue 16): a whole `updog update` from a delta next to the full update (bytes,
# wall time, peak RSS); releases published by pubsys --delta.
if [[ " ${crates[*]} " == *" updog "* ]]; then
  echo "== updog (delta)" >&2
  cargo build --release --quiet -p updog -p pubsys --bins
  cargo test --release -p updog --test delta_bench -- --ignored --nocapture --test-threads 1 2>&1 | tee -a "$log" >&2
  # The delta onto a loop device (root only: skipped with its reason otherwise), direct I/O
  # against the page cache (issue 17).
  cargo test --release -p updog --test delta_blockdev -- --ignored --nocapture --test-threads 1 2>&1 | tee -a "$log" >&2
fi
# GRUB (issue 18): all 262 144 priority/tries/successful states of both sets through our real
# gptprio module in grub-emu, against signpost (a long correctness run; CI runs 2 500 edge states).
if [[ " ${crates[*]} " == *" os-image "* ]]; then
  echo "== os-image (grub-emu: every state)" >&2
  scripts/build-grub.sh > /dev/null
  cargo test --release -p os-image --test grub -- --ignored --nocapture every_state_in_grub_emu 2>&1 | tee -a "$log" >&2
fi
echo
printf '%-62s %12s %-6s  %-40s %12s %7s\n' benchmark ours unit baseline "baseline" ratio
grep -P '^BENCH\t' "$log" | while IFS=$'\t' read -r _ name ours unit bname base ratio; do
  printf '%-62s %12s %-6s  %-40s %12s %6sx\n' "$name" "$ours" "$unit" "$bname" "$base" "$ratio"
done
echo "(full output: $log)"
