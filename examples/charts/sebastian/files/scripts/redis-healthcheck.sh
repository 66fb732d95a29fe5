#!/bin/sh
# redis-healthcheck.sh live|ready: probe of the bundled Redis.
#   live   the server answers PING (LOADING counts as alive)
#   ready  the server answers PING with PONG (data loaded)
set -u

mode="${1:-ready}"
if [ -n "${REDIS_PASSWORD:-}" ]; then
  export REDISCLI_AUTH="$REDIS_PASSWORD"
fi
reply="$(timeout 4 redis-cli -h 127.0.0.1 -p 6379 ping 2>&1)"
case "$mode:$reply" in
  *:PONG) exit 0 ;;
  live:*LOADING*) exit 0 ;;
  live:*MASTERDOWN*) exit 0 ;;
esac
echo "redis ${mode} check failed: ${reply}" >&2
exit 1
