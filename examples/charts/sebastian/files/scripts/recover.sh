#!/bin/sh
# recover.sh: checks and repairs a database restored from backup.
# Called by setup.sh when BOOTSTRAP_MODE=recover.
set -eu

CLI="node /app/server/dist/cli.js"
SQL_DIR="${SQL_DIR:-/sql}"
REPORT=/tmp/recover-findings.txt

log() { printf '%s recover %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

log "verifying schema"
$CLI db:apply-sql --admin --file "$SQL_DIR/recover/100_verify_schema.sql" --output "$REPORT"

errors="$(grep -c '^error' "$REPORT" || true)"
warnings="$(grep -c '^warning' "$REPORT" || true)"
log "verify: ${errors} error(s), ${warnings} warning(s)"
cat "$REPORT"

if [ "$errors" -gt 0 ] && [ "${BOOTSTRAP_STRICT_RECOVER:-false}" = "true" ]; then
  log "strict recover: refusing to continue"
  exit 3
fi

log "repairing numbering and reference data"
$CLI db:apply-sql --admin --single-transaction --file "$SQL_DIR/recover/110_repair_numbering.sql"

log "rebuilding invalid indexes and statistics"
$CLI db:apply-sql --admin --file "$SQL_DIR/recover/120_reindex_and_analyze.sql"

log "orphaned rows"
$CLI db:apply-sql --admin --file "$SQL_DIR/recover/130_orphans_report.sql"

log "recover finished"
