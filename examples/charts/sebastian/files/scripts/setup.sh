#!/bin/sh
# setup.sh: entry point of the sebastian setup job.
#
# BOOTSTRAP_MODE selects what happens:
#   fresh    migrations, SQL bootstrap (schema, RLS, reference data), first tenant
#   recover  migrations, then the recover checks and repairs in /sql/recover
#   skip     never reaches this script (the job is not rendered)
#
# The outcome is written to the ConfigMap named by STATUS_CONFIGMAP so that the
# appliance status page can show it.
set -eu

log() { printf '%s setup[%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$BOOTSTRAP_MODE" "$*"; }

CLI="node /app/server/dist/cli.js"
SQL_DIR="${SQL_DIR:-/sql}"
STARTED_AT="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

report() {
  # report <phase> <result> [detail]
  $CLI appliance:report-bootstrap \
    --configmap "${STATUS_CONFIGMAP:-alga-bootstrap-status}" \
    --namespace "${POD_NAMESPACE:-default}" \
    --mode "$BOOTSTRAP_MODE" \
    --phase "$1" --result "$2" --detail "${3:-}" \
    --started-at "$STARTED_AT" || log "could not write the status ConfigMap (ignored)"
}

apply_dir() {
  # apply_dir <directory> <single-transaction: yes|no>
  dir="$1"
  for f in $(ls "$dir"/*.sql 2>/dev/null | sort); do
    name="$(basename "$f")"
    log "applying $name"
    if [ "$2" = "yes" ]; then
      $CLI db:apply-sql --admin --file "$f" --single-transaction --record "$BOOTSTRAP_MODE"
    else
      $CLI db:apply-sql --admin --file "$f" --record "$BOOTSTRAP_MODE"
    fi
  done
}

trap 'report "${PHASE:-start}" failed "exit $?"' EXIT

PHASE=connect
log "checking database connectivity to ${DB_HOST_DIRECT}:${DB_PORT_DIRECT}"
$CLI db:ping --admin --timeout 120

if [ "${RUN_MIGRATIONS:-true}" = "true" ]; then
  PHASE=migrate
  log "running migrations"
  $CLI db:migrate --admin
fi

case "$BOOTSTRAP_MODE" in
  fresh)
    if [ "${RUN_BOOTSTRAP_SQL:-true}" = "true" ]; then
      PHASE=bootstrap-sql
      apply_dir "$SQL_DIR/bootstrap" yes
    fi
    PHASE=first-tenant
    $CLI appliance:ensure-tenant \
      --name "$BOOTSTRAP_TENANT_NAME" \
      --currency "$BOOTSTRAP_CURRENCY" \
      --locale "$BOOTSTRAP_LOCALE" \
      --time-zone "$BOOTSTRAP_TIME_ZONE" \
      ${BOOTSTRAP_ADMIN_EMAIL:+--admin-email "$BOOTSTRAP_ADMIN_EMAIL"}
    if [ "${BOOTSTRAP_SEED_DEMO_DATA:-false}" = "true" ]; then
      PHASE=demo-data
      log "loading demo data"
      $CLI db:seed --only demo
    fi
    ;;
  recover)
    PHASE=recover
    sh /scripts/recover.sh
    ;;
  *)
    log "unknown BOOTSTRAP_MODE '$BOOTSTRAP_MODE'"
    exit 2
    ;;
esac

trap - EXIT
report done succeeded
log "setup finished"
