# Sourced by the SQLite benchmarks: build the release tutorial (and the CLI) with every engine,
# as bench/run.sh does, so they do not rebuild each other's binary, and start it over a
# fresh SQLite database in $WORK, removed on exit.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build -q --release -p sesame --all-features --example tutorial --bin sesame
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export DATABASE_URL="sqlite:$WORK/db.sqlite3" SECRET_KEY="bench-secret-key" RUST_LOG=warn

start_tutorial() { # port
  (cd "$WORK" && exec "$BIN/examples/tutorial" --addr "127.0.0.1:$1") &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$1/plain/" >/dev/null && return 0; sleep 0.1; done
  echo "the tutorial server did not start on port $1" >&2
  return 1
}
