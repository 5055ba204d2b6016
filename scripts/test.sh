#!/usr/bin/env bash
# README's test command: installs what is missing, then runs every test of the workspace.
# Tiers that need a tool the machine lacks fail under CI=true and print SKIP otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The integration tests drive the real binaries: build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
