#!/usr/bin/env bash
# Install whatever is missing to build, serve and test Sesame; skip what is present.
# Idempotent: safe to run before every build. Needs network access to the package registries
# (crates.io, npm, Debian) only for the pieces that are missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

CARGO_LEPTOS_VERSION=0.3.10      # 0.3.11 needs rustc 1.96
WASM_BINDGEN_VERSION=0.2.130     # must equal the `wasm-bindgen = "=..."` pin in Cargo.toml

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. wasm32 target
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "wasm32-unknown-unknown: present"
else
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 2. cargo-leptos (no_downloads: a missing tool fails at once instead of being downloaded)
if cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\$"; then
  say "cargo-leptos $CARGO_LEPTOS_VERSION: present"
else
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (15-25 min on 2 cores)"
  cargo install --locked "cargo-leptos@$CARGO_LEPTOS_VERSION" --features no_downloads
fi

# 3. wasm-bindgen CLI. Not --locked: one locked dependency is missing from the registry index.
if wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  say "wasm-bindgen $WASM_BINDGEN_VERSION: present"
else
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (~9 min)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# 4. wasm-opt from npm binaryen 132, inside the project (tools/)
if [ -x tools/node_modules/.bin/wasm-opt ] && tools/node_modules/.bin/wasm-opt --version | grep -q "version 132"; then
  say "wasm-opt 132 (npm binaryen): present"
else
  say "installing npm binaryen 132 into tools/"
  (cd tools && npm ci --no-audit --no-fund)
fi
case "$(command -v wasm-opt)" in
  "$ROOT/tools/node_modules/.bin/wasm-opt") ;;
  *) echo "error: the first wasm-opt on PATH is $(command -v wasm-opt), not tools/'s" >&2; exit 1 ;;
esac

# 5. Chromium for the end-to-end tests (Debian's; Playwright never downloads a browser here)
if [ -x /usr/bin/chromium ]; then
  say "chromium: present ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
else
  say "installing Debian chromium"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

# 6. Playwright (test runner only)
if [ -d end2end/node_modules/@playwright/test ]; then
  say "end2end npm packages: present"
else
  say "installing end2end npm packages"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

say "tools ready"
