#!/usr/bin/env bash
# Run every test of the project on a fresh machine of this kind: installs what is missing
# (skipping what is present), starts the services, then runs
#   1. the Rust tests of the engine and the app (cargo nextest),
#   2. the interop tests against real Django 5.2 (pytest, in a venv),
#   3. the end-to-end tests of the app in Debian's Chromium (Playwright via cargo-leptos).
# Exits non-zero if any of them fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

bash scripts/install-tools.sh
bash scripts/services.sh
if ! command -v cargo-nextest >/dev/null; then
  say "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
if ! command -v sqlite3 >/dev/null; then
  say "installing sqlite3"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3
fi

say "1/3 Rust tests (engine + app server functions)"
cargo nextest run -p sesame --all-features --all-targets --no-fail-fast
if [ -f src/main.rs ]; then
  cargo nextest run -p sesame-app --features ssr --no-fail-fast --no-tests=warn
fi

say "2/3 interop with real Django 5.2"
bash tests/django/setup.sh
cargo build -p sesame --example tutorial
( unset DATABASE_URL; .venv/bin/python -m pytest tests/django -q -p no:cacheprovider )

if [ -f end2end/playwright.config.ts ]; then
  say "3/3 end-to-end (Playwright in Debian chromium)"
  cargo leptos end-to-end --release
fi
say "all tests passed"
