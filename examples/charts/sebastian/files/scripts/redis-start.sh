#!/bin/sh
# redis-start.sh: starts redis-server with the mounted config and, when set,
# the password from REDIS_PASSWORD (never written to disk).
set -eu

conf="${REDIS_CONFIG_FILE:-/etc/redis/redis.conf}"
if [ -n "${REDIS_PASSWORD:-}" ]; then
  exec redis-server "$conf" --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD"
fi
exec redis-server "$conf"
