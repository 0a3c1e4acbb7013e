#!/usr/bin/env bash
# Start PostgreSQL and Redis if they are down (the machine normally starts them before a
# session; CI and a restarted machine may not). Idempotent.
set -euo pipefail
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  say "postgresql: up"
else
  say "starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  say "redis: up"
else
  say "starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli ping 2>/dev/null | grep -q PONG && break; sleep 1; done
fi
