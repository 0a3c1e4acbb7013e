#!/usr/bin/env bash
# Run every test of the project on a fresh machine of this kind: installs what is missing
# (skipping what is present), starts PostgreSQL and Redis if they are down, then runs
#   1. the Rust tests of the engine (every store, the CLI; cargo nextest, then its doc tests)
#      and of the app (cargo nextest),
#   2. the interop tests against real Django 5.2 (pytest, in a venv),
#   3. the end-to-end tests of the app in Debian's Chromium (Playwright via cargo-leptos,
#      JavaScript on and off, against a release build on 127.0.0.1:3000).
#   scripts/test.sh            everything
#   scripts/test.sh --e2e      only the end-to-end suite
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

if [ "${1:-}" != "--e2e" ]; then
  say "1/3 Rust tests: the engine (every store, CLI) and the app's server functions"
  cargo nextest run -p sesame --all-features --all-targets --no-fail-fast
  # nextest does not run doc tests; the API's examples are tests too.
  cargo test -p sesame --all-features --doc
  cargo nextest run -p sesame-app --features ssr --no-fail-fast

  say "2/3 interop with real Django 5.2 (SQLite, then PostgreSQL)"
  bash tests/django/setup.sh
  cargo build -p sesame --all-features --example tutorial --bin sesame
  ( unset DATABASE_URL; .venv/bin/python -m pytest tests/django -q -p no:cacheprovider )
  if grep -q '^postgres = ' crates/sesame/Cargo.toml; then
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS sesame_interop" -c "CREATE DATABASE sesame_interop" >/dev/null
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sesame_interop .venv/bin/python -m pytest tests/django -q -p no:cacheprovider
  fi
fi

say "3/3 end-to-end (cargo leptos end-to-end --release)"
# A throw-away database for the run, so the suite starts from nothing and leaves no state.
E2E_DIR="$(mktemp -d)"
trap 'rm -rf "$E2E_DIR"' EXIT
DATABASE_URL="sqlite:$E2E_DIR/e2e.sqlite3" cargo leptos end-to-end --release
say "all tests passed"
