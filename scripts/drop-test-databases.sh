#!/usr/bin/env bash
# drop-test-databases.sh - drop the per-test databases (tern_test_*) earlier test runs left in
# the local cluster. Each test clones its own database from a migrated template and does not
# drop it (a test that fails leaves its data to look at); this keeps the cluster from filling up.
# Templates (tern_template_*) are kept: they are rebuilt only when the migrations change.
set -euo pipefail
: "${TERN_TEST_DATABASE_URL:?run through make test-only, or eval \"\$(scripts/services.sh env)\" first}"

psql=$(command -v psql || true)
[[ -n $psql ]] || psql=$(printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)
[[ -x $psql ]] || { echo "drop-test-databases: psql not found" >&2; exit 1; }

mapfile -t stale < <("$psql" -X -A -t -d "$TERN_TEST_DATABASE_URL" \
  -c "select datname from pg_database where datname like 'tern\_test\_%'")
for db in "${stale[@]}"; do
  [[ -n $db ]] && "$psql" -X -q -d "$TERN_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
done
((${#stale[@]} == 0)) || echo "drop-test-databases: dropped ${#stale[@]} database(s) from earlier runs" >&2
