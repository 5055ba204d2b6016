#!/usr/bin/env bash
# README's test command: installs what is missing, then runs every test of the workspace.
# Tiers that need a tool the machine lacks fail under CI=true and print SKIP otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Root-only tiers run wherever they can: loop devices (signpost on real block devices).
if [ "$(id -u)" -eq 0 ] && [ -e /dev/loop-control ]; then
  export SIGNPOST_LOOP_TESTS=1
fi
# The integration tests drive the real binaries: build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
