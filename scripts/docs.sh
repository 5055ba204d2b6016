#!/usr/bin/env bash
# Man pages and shell completions (bash, zsh, fish) for every binary, generated from their clap
# definitions by each binary's hidden `generate-docs` subcommand (abos-shell's one generator).
# Usage: scripts/docs.sh [OUT]   (default: out/docs → OUT/<binary>/{<binary>*.1, completions})
#
# Nothing is rebuilt or regenerated when the outputs are up to date: a binary's docs are
# regenerated only when its executable is newer than OUT/<binary>/.generated, and cargo only runs
# when a source file (*.rs, Cargo.toml, Cargo.lock) is newer than the oldest of those stamps.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/docs}
bins=(updog signpost pubsys repo-tools os-image kernel-config waves)

# The oldest stamp (or nothing when a binary has never been documented).
oldest=""
for bin in "${bins[@]}"; do
  stamp="$out/$bin/.generated"
  if [[ ! -e $stamp ]]; then oldest=""; break; fi
  if [[ -z $oldest || $stamp -ot $oldest ]]; then oldest=$stamp; fi
done
if [[ -n $oldest ]] && [[ -z $(find . -path ./target -prune -o -path ./out -prune -o \
    \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) -newer "$oldest" -print -quit) ]]; then
  echo "docs up to date in $out"
  exit 0
fi

cargo build --workspace --bins --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
for bin in "${bins[@]}"; do
  exe="$target_dir/debug/$bin"
  stamp="$out/$bin/.generated"
  if [[ -e $stamp && $stamp -nt $exe ]]; then
    echo "$bin: up to date"
    continue
  fi
  rm -rf "$out/$bin"
  mkdir -p "$out/$bin"
  "$exe" generate-docs --out "$out/$bin" >/dev/null
  touch "$stamp"
  echo "$bin: $(find "$out/$bin" -type f ! -name .generated | wc -l) files"
done
