#!/usr/bin/env bash
# README's test command: installs what is missing, then runs every test of the workspace.
# Tiers that need a tool the machine lacks fail under CI=true and skip otherwise; every skip is
# listed at the end ("N tests skipped:"), since cargo test hides what passing tests print.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Root-only tiers run wherever they can: loop devices (signpost on real block devices).
if [ "$(id -u)" -eq 0 ] && [ -e /dev/loop-control ]; then
  export SIGNPOST_LOOP_TESTS=1
fi
# GRUB with our gptprio module (bootloader/gptprio), for os-image's --bootloader tests and the
# firmware VM tier: cached under ~/.cache/abos/grub-<version>-<hash>, seconds when warm.
export ABOS_GRUB_DIR
ABOS_GRUB_DIR=$(scripts/build-grub.sh)
# The integration tests drive the real binaries. `cargo test` builds every package's binaries
# with the same feature set as the tests (one compilation of the workspace, not two); signpost's
# and waves' command lines sit behind their `cli` feature, so those two are built explicitly.
cargo test --workspace --no-run
cargo build -p signpost -p waves --features signpost/cli,waves/cli --bins
# Skipping tests append "<binary>::<test>: <reason>" here (test_support::skip).
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
export ABOS_SKIP_LOG
ABOS_SKIP_LOG=$(cd "$target_dir" && pwd)/skipped-tests.log
: > "$ABOS_SKIP_LOG"
status=0
cargo test --workspace --no-fail-fast "$@" || status=$?
if [ -s "$ABOS_SKIP_LOG" ]; then
  skipped=$(sort -u "$ABOS_SKIP_LOG")
  echo
  echo "$(printf '%s\n' "$skipped" | sed 's/: .*//' | sort -u | wc -l) tests skipped:"
  printf '%s\n' "$skipped" | sed 's/^/  /'
else
  echo
  echo "0 tests skipped"
fi
exit "$status"
