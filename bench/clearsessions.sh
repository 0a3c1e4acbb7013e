#!/usr/bin/env bash
# Scale benchmark for `sesame clearsessions` (issue: sessions API and clearsessions):
#   1. seeds ROWS (default 1,000,000) expired sessions, Django-encoded, into a fresh SQLite
#      django_session table, beside one live session;
#   2. runs the tutorial server on that database under a steady load of session requests
#      (reads of the live session and exact counter increments, i.e. writes);
#   3. runs `sesame clearsessions` while the load goes on, and reports how long the sweep took
#      and the p50/p99 latency of the server's requests before (idle) and during the sweep.
# Usage: bench/clearsessions.sh [ROWS]
# Knobs: RATE=R (each connection sends R requests/s on a fixed schedule, an open loop; unset:
# each sends as fast as it is answered, which saturates both cores), READ_CONNS=N and
# WRITE_CONNS=N (connections per route, default 2: with 2 on one session some increments
# conflict and retry); for control runs CPU_HOG_SECONDS=N (a busy loop instead of the sweep)
# and SWEEP_PREFIX='nice -n 10' (a command the sweep runs under); KEYS=sequential seeds keys in
# rowid order (as this script did up to stop 12) instead of random ones like Django's, which is
# far cheaper to sweep: each deleted row then no longer dirties its own page of the key index.
# The seeded table is nearly all expired, so `sesame clearsessions` swaps it (store/sqlite/swap.rs);
# SESSION_CLEAR_EXPIRED_SWAP=false measures the in-place sweep instead. TRACE=1 has the server
# and the sweep log their commits, batches and checkpoints, and bench/stalls.py says what the
# slow writes waited for.
set -euo pipefail
ROWS="${1:-1000000}"
PORT="${PORT:-8611}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cargo build -q --release -p sesame-bench --bin loadgen
if [ -n "${TRACE:-}" ]; then
  export RUST_LOG=warn,sesame::store::sqlite=trace
  start_tutorial "$PORT" >"$WORK/server.log" 2>&1
else
  start_tutorial "$PORT"
fi

COOKIE="$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT/save-session-data/" | tr -d '\r' \
  | sed -n 's/^set-cookie: \(sessionid=[a-z0-9]*\).*/\1/Ip')"
DATA="$(sqlite3 "$WORK/db.sqlite3" 'SELECT session_data FROM django_session LIMIT 1')"
if [ "${KEYS:-random}" = sequential ]; then KEY_EXPR="printf('expired%025d', x)"; else KEY_EXPR="lower(hex(randomblob(16)))"; fi
echo "seeding $ROWS expired sessions (${KEYS:-random} keys)..."
t0=$(date +%s.%N)
sqlite3 "$WORK/db.sqlite3" "PRAGMA journal_mode=WAL;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $ROWS)
INSERT INTO django_session (session_key, session_data, expire_date)
SELECT $KEY_EXPR, '$DATA', datetime('2020-01-01', '+' || (x % 86400) || ' seconds') FROM c;
PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
# The seeding leaves ~300 MB of dirty pages for the kernel to write back; doing that while the
# idle window is measured made its p99 swing between 0.8 and 4.5 ms from run to run.
sync
echo "seeded in $(echo "$(date +%s.%N) - $t0" | bc) s; rows: $(sqlite3 "$WORK/db.sqlite3" 'SELECT count(*) FROM django_session')"

LOAD_SECONDS="${LOAD_SECONDS:-45}"
RATE_ARG=()
if [ -n "${RATE:-}" ]; then
  RATE_ARG=(--rate "$RATE")
  echo "open loop: ${READ_CONNS:-2} read and ${WRITE_CONNS:-2} counter connections at $RATE req/s each"
else
  echo "closed loop: ${READ_CONNS:-2} read and ${WRITE_CONNS:-2} counter connections, each as fast as answered"
fi
"$BIN/loadgen" --url "http://127.0.0.1:$PORT/access-session-data/" --cookie "$COOKIE" --connections ${READ_CONNS:-2} \
  --duration "$LOAD_SECONDS" --samples "$WORK/read.csv" "${RATE_ARG[@]}" > "$WORK/read.out" &
READ_PID=$!
"$BIN/loadgen" --url "http://127.0.0.1:$PORT/counter/" --cookie "$COOKIE" --connections ${WRITE_CONNS:-2} \
  --duration "$LOAD_SECONDS" --samples "$WORK/write.csv" "${RATE_ARG[@]}" > "$WORK/write.out" &
WRITE_PID=$!
IDLE_SECONDS="${IDLE_SECONDS:-10}"
sleep $((IDLE_SECONDS + 1))   # idle window: load without the sweep (its first second left out)
SWEEP_START=$(date +%s%6N)
if [ -n "${CPU_HOG_SECONDS:-}" ]; then
  # Control run: instead of the sweep, one core's worth of pure CPU load for as long, to tell
  # database interference from CPU contention on this 2-core machine.
  timeout "$CPU_HOG_SECONDS" sh -c 'while :; do :; done' || true
else
  (cd "$WORK" && ${SWEEP_PREFIX:-} "$BIN/sesame" clearsessions 2> >(tee "$WORK/sweep.log" | grep -v TRACE >&2))
fi
SWEEP_END=$(date +%s%6N)
wait "$READ_PID" "$WRITE_PID"
# The WAL file is never truncated (SQLite starts it over in place), so its size is the
# longest the WAL grew since the seeding truncated it.
WAL_MB=$(echo "scale=1; $(stat -c %s "$WORK/db.sqlite3-wal" 2>/dev/null || echo 0) / 1048576" | bc)
LEFT=$(sqlite3 "$WORK/db.sqlite3" 'SELECT count(*) FROM django_session')
COUNT=$(curl -s -b "$COOKIE" "http://127.0.0.1:$PORT/counter/")

python3 - "$WORK" "$SWEEP_START" "$SWEEP_END" "$LEFT" "$COUNT" "$WAL_MB" "$IDLE_SECONDS" <<'PY'
import sys
work, t0, t1, left, count, wal_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
idle_us = int(sys.argv[7]) * 1_000_000
def pct(xs, p):
    xs = sorted(xs)
    return xs[round((len(xs) - 1) * p)] / 1000 if xs else float("nan")
print(f"sweep: {(t1 - t0) / 1e6:.2f} s; rows left: {left} (the live session); counter now {count}; WAL peak {wal_mb} MB")
for name in ("read", "write"):
    rows = [tuple(map(int, l.split(","))) for l in open(f"{work}/{name}.csv")]
    idle = [lat for at, lat, st in rows if t0 - idle_us <= at < t0]
    during = [lat for at, lat, st in rows if t0 <= at <= t1]
    errors = sum(1 for _, _, st in rows if st >= 400)
    ratio = pct(during, .99) / pct(idle, .99)
    print(f"{name:5}: idle p50 {pct(idle,.5):.2f} ms p99 {pct(idle,.99):.2f} ms ({len(idle)} req) | "
          f"during sweep p50 {pct(during,.5):.2f} ms p99 {pct(during,.99):.2f} ms p99.9 {pct(during,.999):.2f} ms ({len(during)} req) | "
          f"p99 ratio {ratio:.2f}x | errors {errors}")
    if name == "write":
        # What bench/stalls.py calls a slow write (TRACE=1): twice the idle p99.
        open(f"{work}/slow_us", "w").write(str(round(2000 * pct(idle, .99))))
PY
if [ -n "${TRACE:-}" ]; then
  python3 bench/stalls.py "$WORK/write.csv" "$WORK/sweep.log" "$WORK/server.log" "$SWEEP_START" "$SWEEP_END" "$(cat "$WORK/slow_us")"
  if [ -n "${TRACE_KEEP:-}" ]; then
    mkdir -p "$TRACE_KEEP" && cp "$WORK"/{write.csv,read.csv,sweep.log,server.log} "$TRACE_KEEP"/ && echo "kept in $TRACE_KEEP"
  fi
fi
