#!/usr/bin/env bash
# Measure what the README reports: release wasm size (raw and gzipped, as the browser loads it)
# and release build times: the first build (cold only with --cold, which first removes the
# app's release artifacts; otherwise whatever state target/ is in) and an incremental rebuild
# after touching src/app.rs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

if [ "${1:-}" = "--cold" ]; then
  echo "==> removing target/site and the release/wasm-release builds for a cold build"
  rm -rf target/site target/release target/front/wasm32-unknown-unknown/wasm-release target/wasm-release
fi
t0=$(date +%s)
cargo leptos build --release >/dev/null 2>&1 || cargo leptos build --release
t1=$(date +%s)
touch src/app.rs
cargo leptos build --release >/dev/null 2>&1
t2=$(date +%s)

wasm=target/site/pkg/sesame-app.wasm
js=target/site/pkg/sesame-app.js
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
jsraw=$(stat -c %s "$js")
jsgz=$(gzip -9 -c "$js" | wc -c)
printf 'wasm: %d bytes raw (%.1f KB), %d bytes gzip -9 (%.1f KB)\n' "$raw" "$(echo "$raw/1024" | bc -l)" "$gz" "$(echo "$gz/1024" | bc -l)"
printf 'js:   %d bytes raw, %d bytes gzip -9\n' "$jsraw" "$jsgz"
echo "release build: first $((t1 - t0)) s, incremental (touch src/app.rs) $((t2 - t1)) s"
