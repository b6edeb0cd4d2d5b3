#!/usr/bin/env bash
# Back up the BrokerCRM database: one pg_dump custom-format archive, plus the exact row count of
# every table taken in the same snapshot as the dump, and a SHA-256 of the archive.
#
#   DATABASE_URL=postgres://user:pass@host:5432/brokercrm ops/backup.sh [BACKUP_DIR]
#
# Writes into BACKUP_DIR (default ./backups):
#   brokercrm-<UTC yyyymmddThhmmssZ>.dump          pg_dump -Fc (schema, data, sequences, partitions, triggers)
#   brokercrm-<...>.counts                         "<table>\t<rows>" for every table, in the dump's snapshot
#   brokercrm-<...>.sha256                         sha256sum of the .dump
# and prints the archive's path on the last line of stdout. With BACKUP_KEEP_DAYS=n, archives
# older than n days in BACKUP_DIR are deleted after a successful backup (the monthly ones, from
# the 1st of a month, are kept for BACKUP_KEEP_MONTHLY_DAYS, default 2557 = 7 years).
#
# Needs psql and pg_dump of the server's major version or newer (the postgres:15 image has both:
# `docker compose exec -T db env DATABASE_URL=... bash -s < ops/backup.sh`). The dump runs inside
# one REPEATABLE READ snapshot; the application keeps running (no locks beyond ACCESS SHARE).
set -Eeuo pipefail
trap 'echo "backup FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

: "${DATABASE_URL:?set DATABASE_URL=postgres://user:pass@host:port/dbname}"
DIR=${1:-${BACKUP_DIR:-./backups}}
COMPRESS=${BACKUP_COMPRESS:-6}
mkdir -p "$DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
base="$DIR/brokercrm-$stamp"
tmp="$base.partial"

# One psql session holds a REPEATABLE READ transaction and exports its snapshot; pg_dump (run from
# inside that session with \!) reads the same snapshot, and the row counts are taken in it too,
# so the counts are exactly what the dump holds.
rm -f "$tmp" "$tmp.ok" "$tmp.counts"
export BACKUP_TMP="$tmp" BACKUP_COMPRESS="$COMPRESS" DATABASE_URL
started=$(date +%s%N)
psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -v BACKUP_TMP_COUNTS="$tmp.counts" <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT pg_export_snapshot() AS snapshot \gset
\setenv BACKUP_SNAPSHOT :snapshot
\! pg_dump "$DATABASE_URL" --format=custom --compress="$BACKUP_COMPRESS" --snapshot="$BACKUP_SNAPSHOT" --no-owner --no-privileges --file="$BACKUP_TMP" && touch "$BACKUP_TMP.ok"
\o :BACKUP_TMP_COUNTS
SELECT c.relname || E'\t' || (xpath('/row/n/text()',
        query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname;
\o
COMMIT;
SQL
dumped=$(date +%s%N)
[ -f "$tmp.ok" ] || { echo "pg_dump failed" >&2; rm -f "$tmp" "$tmp.counts"; exit 1; }
rm -f "$tmp.ok"
mv "$tmp.counts" "$base.counts"
mv "$tmp" "$base.dump"
(cd "$DIR" && sha256sum "$(basename "$base.dump")" >"$(basename "$base.sha256")")

db_size=$(psql "$DATABASE_URL" -qAtX -c "SELECT pg_database_size(current_database())")
dump_size=$(stat -c %s "$base.dump")
tables=$(wc -l <"$base.counts")
rows=$(awk -F'\t' '{s += $2} END {print s + 0}' "$base.counts")
ms=$(( (dumped - started) / 1000000 ))
printf 'backup: database %s bytes, archive %s bytes, %s tables, %s rows, pg_dump (and counts) %d.%03d s\n' \
  "$db_size" "$dump_size" "$tables" "$rows" $((ms / 1000)) $((ms % 1000)) >&2

if [ -n "${BACKUP_KEEP_DAYS:-}" ]; then
  keep_monthly=${BACKUP_KEEP_MONTHLY_DAYS:-2557}
  find "$DIR" -maxdepth 1 -name 'brokercrm-*.dump' -mtime +"$BACKUP_KEEP_DAYS" | while read -r old; do
    age_ok=$(find "$old" -mtime +"$keep_monthly" | wc -l)
    case $(basename "$old") in
      brokercrm-??????01T*) [ "$age_ok" -eq 0 ] && continue ;;  # a monthly archive, still within its retention
    esac
    rm -f "$old" "${old%.dump}.counts" "${old%.dump}.sha256"
    echo "backup: removed $(basename "$old") (older than the retention)" >&2
  done
fi
echo "$base.dump"
