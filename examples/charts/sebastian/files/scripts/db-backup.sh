#!/bin/sh
# db-backup.sh: nightly pg_dump of the application database.
#
# Writes <BACKUP_DIR>/<database>-<UTC timestamp>.dump (custom format), checks
# that pg_restore can read its table of contents, then prunes dumps older than
# BACKUP_KEEP_DAYS. The password comes from PGPASSWORD (a Secret reference).
set -eu

db="${PGDATABASE:?PGDATABASE is required}"
dir="${BACKUP_DIR:-/backups}"
keep="${BACKUP_KEEP_DAYS:-7}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="${dir}/${db}-${stamp}.dump"
tmp="${out}.partial"

mkdir -p "$dir"
echo "dumping ${db} from ${DB_HOST_DIRECT}:${DB_PORT_DIRECT} to ${out}"
pg_dump \
  --host "$DB_HOST_DIRECT" --port "$DB_PORT_DIRECT" --username "$DB_USER_ADMIN" \
  --format custom --compress 6 --no-owner --no-privileges \
  --file "$tmp" "$db"

pg_restore --list "$tmp" >/dev/null
mv "$tmp" "$out"
size="$(wc -c < "$out")"
echo "backup complete: ${out} (${size} bytes)"

find "$dir" -maxdepth 1 -name "${db}-*.dump" -type f -mtime +"$keep" -print -delete
find "$dir" -maxdepth 1 -name "*.partial" -type f -mmin +360 -print -delete
