#!/bin/sh
# wait-for.sh: blocks until WAIT_HOST:WAIT_PORT accepts PostgreSQL connections.
# Uses pg_isready from the postgres image the init container runs.
set -eu

host="${WAIT_HOST:?WAIT_HOST is required}"
port="${WAIT_PORT:-5432}"
timeout="${WAIT_TIMEOUT_SECONDS:-300}"
interval=3
waited=0

echo "waiting for ${host}:${port} (timeout ${timeout}s)"
until pg_isready -h "$host" -p "$port" -t 2 >/dev/null 2>&1; do
  waited=$((waited + interval))
  if [ "$waited" -ge "$timeout" ]; then
    echo "gave up after ${timeout}s: ${host}:${port} is not accepting connections" >&2
    exit 1
  fi
  if [ $((waited % 30)) -eq 0 ]; then
    echo "still waiting for ${host}:${port} (${waited}s)"
  fi
  sleep "$interval"
done
echo "${host}:${port} is accepting connections"
