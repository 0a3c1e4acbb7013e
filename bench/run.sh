#!/usr/bin/env bash
# Side-by-side benchmark: Sesame's `tutorial` example vs the same routes on tower-sessions 0.14
# (bench/src/bin/tower_tutorial.rs), in one run on this machine, with wrk on loopback.
#
#   bench/run.sh                 # all stores both implementations have (sqlite, postgres, redis)
#   STORES="sqlite" DURATION=5 bench/run.sh
#
# Per store and implementation: req/s, p50, p99 for /plain/, read (an existing session,
# unmodified), write (a new session per request), counter (one session, 32 connections), and the
# updates lost out of 200 concurrent increments of one counter. Writes a markdown table to
# bench/results.md and prints it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
STORES="${STORES:-sqlite postgres redis}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/sesame_bench}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/services.sh >/dev/null
# Every engine, as bench/lib.sh builds it: the scripts share one release binary.
cargo build -q --release -p sesame --all-features --example tutorial --bin sesame
cargo build -q --release -p sesame-bench --bin tower_tutorial
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1/plain/" >/dev/null && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; return 1; }

# wrk run -> "req/s p50 p99"
measure() { # url [cookie-header]
  local args=(-t2 "-c$CONNECTIONS" "-d${DURATION}s" --latency)
  [ -n "${2:-}" ] && args+=(-H "Cookie: $2")
  wrk "${args[@]}" "$1" > "$WORK/wrk.out"
  if grep -q "Non-2xx" "$WORK/wrk.out"; then echo "warning: non-2xx responses for $1" >&2; fi
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%d %s %s", rps, p50, p99}' "$WORK/wrk.out"
}

cookie_of() { # port path cookie-name
  curl -s -o /dev/null -D - "http://127.0.0.1:$1$2" | tr -d '\r' | sed -n "s/^set-cookie: \($3=[^;]*\).*/\1/Ip" | head -n1
}

lost_of_200() { # port cookie-name
  local c; c="$(cookie_of "$1" /counter/ "$2")"   # count = 1
  seq 200 | xargs -P 200 -I{} curl -s -m 10 -o /dev/null -b "$c" "http://127.0.0.1:$1/counter/"
  local after; after="$(curl -s -m 10 -b "$c" "http://127.0.0.1:$1/counter/")"   # 1 + 200 - lost + 1
  echo $(( 202 - after ))
}

declare -A R
run_impl() { # impl store port cookie-name
  local impl=$1 store=$2 port=$3 name=$4
  wait_up "$port"
  R[$impl,$store,plain]="$(measure "http://127.0.0.1:$port/plain/")"
  local c; c="$(cookie_of "$port" /save-session-data/ "$name")"
  R[$impl,$store,read]="$(measure "http://127.0.0.1:$port/access-session-data/" "$c")"
  R[$impl,$store,write]="$(measure "http://127.0.0.1:$port/save-session-data/")"
  c="$(cookie_of "$port" /counter/ "$name")"
  R[$impl,$store,counter]="$(measure "http://127.0.0.1:$port/counter/" "$c")"
  R[$impl,$store,lost]="$(lost_of_200 "$port" "$name")"
  echo "$impl/$store: plain ${R[$impl,$store,plain]} | read ${R[$impl,$store,read]} | write ${R[$impl,$store,write]} | counter ${R[$impl,$store,counter]} | lost ${R[$impl,$store,lost]}" >&2
}

start() { # port cmd...
  local port=$1; shift
  (cd "$WORK" && RUST_LOG=error exec "$@" >"$WORK/server-$port.log" 2>&1) &
  PIDS+=($!)
}

stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }

STORES_RUN=()
for store in $STORES; do
  case $store in
    sqlite)
      s_env=(DATABASE_URL="sqlite:$WORK/sesame.sqlite3" SESSION_ENGINE=db)
      t_args=(--store sqlite --database-url "sqlite:$WORK/tower.sqlite3") ;;
    postgres)
      psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS sesame_bench" -c "CREATE DATABASE sesame_bench" >/dev/null
      s_env=(DATABASE_URL="$PG_URL" SESSION_ENGINE=db)
      t_args=(--store postgres --database-url "$PG_URL") ;;
    redis)
      redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null
      s_env=(REDIS_URL="$REDIS_URL" SESSION_ENGINE=cache)
      t_args=(--store redis --database-url "$REDIS_URL") ;;
    *) echo "unknown store $store" >&2; exit 2 ;;
  esac
  STORES_RUN+=("$store")
  start 8801 env SECRET_KEY=bench-secret-key "${s_env[@]}" "$BIN/examples/tutorial" --addr 127.0.0.1:8801
  run_impl sesame "$store" 8801 sessionid
  stop_all
  start 8802 "$BIN/tower_tutorial" --addr 127.0.0.1:8802 "${t_args[@]}"
  run_impl tower "$store" 8802 id
  stop_all
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
{
  echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s on loopback, $(nproc) cores, $(date -u +%Y-%m-%d)."
  echo
  echo "| implementation | store | /plain/ req/s | read req/s (p50 / p99) | write req/s (p50 / p99) | counter req/s (p50 / p99) | lost of 200 |"
  echo "|---|---|---|---|---|---|---|"
  for store in "${STORES_RUN[@]}"; do
    for impl in sesame tower; do
      row="| $([ $impl = sesame ] && echo Sesame || echo tower-sessions 0.14) | $store"
      read -r p _ _ <<<"${R[$impl,$store,plain]}"; row="$row | $p"
      for k in read write counter; do read -r rps p50 p99 <<<"${R[$impl,$store,$k]}"; row="$row | $rps ($p50 / $p99)"; done
      echo "$row | ${R[$impl,$store,lost]} |"
    done
  done
  echo
  echo "| store | Sesame read / own /plain/ | read vs tower-sessions | write vs tower-sessions | counter vs tower-sessions |"
  echo "|---|---|---|---|---|"
  for store in "${STORES_RUN[@]}"; do
    read -r sp _ _ <<<"${R[sesame,$store,plain]}"
    read -r sr _ _ <<<"${R[sesame,$store,read]}"; read -r tr _ _ <<<"${R[tower,$store,read]}"
    read -r sw _ _ <<<"${R[sesame,$store,write]}"; read -r tw _ _ <<<"${R[tower,$store,write]}"
    read -r sc _ _ <<<"${R[sesame,$store,counter]}"; read -r tc _ _ <<<"${R[tower,$store,counter]}"
    echo "| $store | $(ratio "$sr" "$sp")× | $(ratio "$sr" "$tr")× | $(ratio "$sw" "$tw")× | $(ratio "$sc" "$tc")× |"
  done
} | tee bench/results.md
