#!/usr/bin/env bash
# Restore a BrokerCRM backup (ops/backup.sh) into a NEW database and verify it.
#
#   ops/restore.sh <archive.dump> <target DATABASE_URL>
#   e.g. ops/restore.sh backups/brokercrm-20261122T013000Z.dump postgres://brokercrm:...@db:5432/brokercrm_restore
#
# 1. checks the archive against its .sha256 (when present);
# 2. creates the target database (it must not exist: a restore never writes over a database);
# 3. pg_restore --no-owner --no-privileges --exit-on-error --jobs $RESTORE_JOBS (default 2), then ANALYZE;
# 4. verifies, and exits non-zero if any check fails:
#    - the row count of every table equals the count taken in the backup's snapshot (.counts);
#    - every serial/identity sequence is past the largest key in its table (inserts cannot collide);
#    - the audit trail's hash chain recomputes (manage.py verify_audit_chain, against the target);
#    - and it reports migrations the code has that the restored schema lacks (manage.py migrate --check).
#   The application checks need the project's Python (PYTHON, default .venv/bin/python or python)
#   and the same FIELD_ENCRYPTION_KEYS / FIELD_HASH_KEY / SECRET_KEY as the backed-up deployment;
#   RESTORE_APP_CHECKS=0 skips them (e.g. when restoring from the db container; run them from web).
#
# Switching production to the restored database is a separate, deliberate step (docs/OPERATIONS.md).
set -Eeuo pipefail
trap 'echo "restore FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

ARCHIVE=${1:?usage: ops/restore.sh <archive.dump> <target DATABASE_URL>}
TARGET=${2:?usage: ops/restore.sh <archive.dump> <target DATABASE_URL>}
JOBS=${RESTORE_JOBS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
now() { date +%s%N; }
secs() { local ms=$(( ($2 - $1) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }

[ -f "$ARCHIVE" ] || { echo "no such archive: $ARCHIVE" >&2; exit 2; }
base=${ARCHIVE%.dump}
if [ -f "$base.sha256" ]; then
  (cd "$(dirname "$ARCHIVE")" && sha256sum --check --quiet "$(basename "$base.sha256")")
  echo "restore: checksum ok" >&2
else
  echo "restore: WARNING no $base.sha256; archive integrity not checked" >&2
fi

# The target database: the URL's last path segment; created through the server's maintenance db.
dbname=${TARGET##*/}
dbname=${dbname%%\?*}
[[ $dbname =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "target database name must be a plain identifier: $dbname" >&2; exit 2; }
ADMIN=${TARGET%/*}/postgres
if [ "$(psql "$ADMIN" -qAtX -c "SELECT count(*) FROM pg_database WHERE datname = '$dbname'")" != "0" ]; then
  echo "target database $dbname exists: restore into a new database, then switch (docs/OPERATIONS.md)" >&2
  exit 2
fi
psql "$ADMIN" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$dbname\" TEMPLATE template0 ENCODING 'UTF8'"

t0=$(now)
pg_restore --dbname="$TARGET" --no-owner --no-privileges --exit-on-error --jobs="$JOBS" "$ARCHIVE"
t1=$(now)
psql "$TARGET" -qX -v ON_ERROR_STOP=1 -c "ANALYZE"
t2=$(now)

failed=0
# Row counts, table by table, against the counts taken in the backup's snapshot.
if [ -f "$base.counts" ]; then
  actual=$(psql "$TARGET" -qAtX -v ON_ERROR_STOP=1 -c "SELECT c.relname || E'\t' || (xpath('/row/n/text()',
        query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname")
  if diff <(printf '%s\n' "$actual") "$base.counts" >/dev/null; then
    echo "restore: row counts equal the backup's in all $(wc -l <"$base.counts") tables" \
      "($(awk -F'\t' '{s += $2} END {print s + 0}' "$base.counts") rows)" >&2
  else
    echo "restore: ROW COUNTS DIFFER (restored < > backup):" >&2
    diff <(printf '%s\n' "$actual") "$base.counts" >&2 || true
    failed=1
  fi
else
  echo "restore: WARNING no $base.counts; row counts not compared" >&2
fi

seqlog=$(mktemp)
trap 'rm -f "$seqlog"' EXIT
# Sequences: the next value of every serial/identity column is above the largest key.
if psql "$TARGET" -qAtX -v ON_ERROR_STOP=1 >/dev/null 2>"$seqlog" <<'SQL'
DO $$
DECLARE r record; mx bigint; nxt bigint; bad int := 0;
BEGIN
  FOR r IN
    SELECT c.relname AS t, a.attname AS col, pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS seq
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL
  LOOP
    EXECUTE format('SELECT max(%I) FROM %I', r.col, r.t) INTO mx;
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM %s', r.seq) INTO nxt;
    IF mx IS NOT NULL AND nxt <= mx THEN
      RAISE WARNING 'sequence % would hand out % but %.% already holds %', r.seq, nxt, r.t, r.col, mx;
      bad := bad + 1;
    END IF;
  END LOOP;
  IF bad > 0 THEN RAISE EXCEPTION '% sequences behind their tables', bad; END IF;
END $$;
SQL
then
  echo "restore: sequences ok" >&2
  :
else
  cat "$seqlog" >&2
  failed=1
fi

# The application's checks, against the restored database.
t3=$(now)
if [ "${RESTORE_APP_CHECKS:-1}" != "0" ]; then
  PY=${PYTHON:-}
  [ -n "$PY" ] || { [ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"; } || PY=python
  if DATABASE_URL="$TARGET" "$PY" "$ROOT/manage.py" verify_audit_chain >&2; then
    :
  else
    echo "restore: AUDIT CHAIN VERIFICATION FAILED" >&2
    failed=1
  fi
  if ! DATABASE_URL="$TARGET" "$PY" "$ROOT/manage.py" migrate --check >/dev/null 2>&1; then
    echo "restore: NOTE the code has migrations this backup's schema lacks (manage.py migrate --plan):" >&2
    DATABASE_URL="$TARGET" "$PY" "$ROOT/manage.py" migrate --plan 2>&1 | sed -n '2,21s/^/restore:   /p' >&2 || true
  fi
fi
t4=$(now)

size=$(psql "$TARGET" -qAtX -c "SELECT pg_database_size(current_database())")
echo "restore: database $dbname $size bytes; pg_restore $(secs "$t0" "$t1") s, analyze $(secs "$t1" "$t2") s," \
  "application checks $(secs "$t3" "$t4") s" >&2
if [ "$failed" -ne 0 ]; then
  echo "restore: VERIFICATION FAILED; do not use $dbname" >&2
  exit 1
fi
echo "restore: $dbname verified" >&2
