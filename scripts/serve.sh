#!/usr/bin/env bash
# Install what is missing, then build and serve Sesame on http://127.0.0.1:3000 over the
# embedded SQLite store (db.sqlite3 in the project root, created on first run).
#   scripts/serve.sh            release build (small wasm, what users get)
#   scripts/serve.sh --debug    debug build (faster to compile)
# Session settings: Leptos.toml [sessions], overridden by environment variables.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
"$ROOT/scripts/install-tools.sh"

if [ "${1:-}" = "--debug" ]; then
  exec cargo leptos serve
else
  exec cargo leptos serve --release
fi
