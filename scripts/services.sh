#!/usr/bin/env bash
# Bring up what the test suite talks to, on this machine's standard local ports:
# PostgreSQL (with the pgvector extension, for document libraries) and Redis.
# Starts each server only when it is down, then waits until both answer, so that a red
# test run means a bug rather than a server still starting. Needs root for pgvector's
# first install (scripts/install-pgvector.sh); a no-op when everything is already up.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break
  sleep 1
done
pg_isready -h 127.0.0.1
redis-cli -h 127.0.0.1 ping
bash scripts/install-pgvector.sh
