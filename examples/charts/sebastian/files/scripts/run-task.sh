#!/bin/sh
# run-task.sh: runs one scheduled maintenance task of the Alga PSA server.
# Usage: run-task.sh <task> [args...]
set -eu

task="${1:?task name required}"
shift

start="$(date +%s)"
echo "task ${task} starting"
set +e
node /app/server/dist/cli.js task "$task" "$@"
rc=$?
set -e
end="$(date +%s)"
echo "task ${task} finished rc=${rc} duration=$((end - start))s"
exit "$rc"
