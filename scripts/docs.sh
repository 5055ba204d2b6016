#!/usr/bin/env bash
# Man pages and shell completions (bash, zsh, fish) for every binary, generated from their clap
# definitions by each binary's hidden `generate-docs` subcommand.
# Usage: scripts/docs.sh [OUT]   (default: out/docs → OUT/<binary>/{man,completions})
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/docs}
cargo build --workspace --bins --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
for bin in updog signpost pubsys repo-tools os-image kernel-config waves; do
  mkdir -p "$out/$bin"
  "$target_dir/debug/$bin" generate-docs --out "$out/$bin"
done
find "$out" -type f | sort
