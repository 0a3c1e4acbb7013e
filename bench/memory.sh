#!/usr/bin/env bash
# Memory benchmark: the tutorial server over a SQLite table of ROWS (default 1,000,000) live
# sessions, under wrk load that reads random sessions and writes new ones; reports the server's
# peak RSS (VmHWM) and its RSS at the end.
# Usage: bench/memory.sh [ROWS]
set -euo pipefail
ROWS="${1:-1000000}"
PORT="${PORT:-8612}"
DURATION="${DURATION:-15}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_tutorial "$PORT"
curl -s -o /dev/null "http://127.0.0.1:$PORT/save-session-data/"
DATA="$(sqlite3 "$WORK/db.sqlite3" 'SELECT session_data FROM django_session LIMIT 1')"
sqlite3 "$WORK/db.sqlite3" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $ROWS)
INSERT INTO django_session SELECT printf('live%028d', x), '$DATA', '2999-01-01 00:00:00' FROM c;
PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
echo "sessions stored: $(sqlite3 "$WORK/db.sqlite3" 'SELECT count(*) FROM django_session')"
echo "server RSS before load: $(awk '/VmRSS/ {print $2, $3}' /proc/$SERVER_PID/status)"
cat > "$WORK/random.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/access-session-data/", {["Cookie"] = string.format("sessionid=live%028d", math.random(1, $ROWS))})
end
LUA
wrk -t1 -c16 -d"${DURATION}s" -s "$WORK/random.lua" "http://127.0.0.1:$PORT" | grep -E "Requests/sec|Non-2xx" &
wrk -t1 -c16 -d"${DURATION}s" "http://127.0.0.1:$PORT/save-session-data/" | grep -E "Requests/sec|Non-2xx" &
wait %2 %3 2>/dev/null || wait
echo "sessions after: $(sqlite3 "$WORK/db.sqlite3" 'SELECT count(*) FROM django_session')"
echo "server RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$SERVER_PID/status); peak (VmHWM): $(awk '/VmHWM/ {print $2, $3}' /proc/$SERVER_PID/status)"
