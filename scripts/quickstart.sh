#!/usr/bin/env bash
# README's first command: the whole story end to end on an embedded default.
# Installs missing Debian packages, builds the binaries, then runs the story, printing each step.
# Usage: scripts/quickstart.sh [DIR]   (default: out/quickstart; a directory of an earlier run is
# emptied first, any other non-empty directory is refused)
set -euo pipefail
case "${1:-}" in
  -h|--help)
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
    exit 0 ;;
esac
cd "$(dirname "$0")/.."
scripts/setup.sh --no-interop
cargo build --workspace --bins --quiet
dir=${1:-out/quickstart}
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/debug/quickstart" "$dir"
