# Sourced by the project's scripts: the pinned build tools first on PATH.
# wasm-opt must be npm's binaryen 132 (tools/), never Debian's binaryen (wasm-opt 108 silently
# breaks hydration: `WebAssembly.Table.set(): Argument 1 is invalid`).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# One target dir for everything (release + debug + wasm builds share it).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
