#!/usr/bin/env bash
# ingest.sh - `make bench-ingest`: Tern's SMTP ingress against a durable Postfix relay, in one run.
#
# Both servers are driven by Postfix's smtp-source through the peer harness (smtp_load.sh and
# postfix_baseline.sh, in ../shared/bench/ beside this repository, or PEER_BENCH_DIR):
#
#   smtp-source -> Tern ingress 127.0.0.1:2625 -> PostgreSQL commit (fsync) + JetStream notice
#   smtp-source -> Postfix smtpd 127.0.0.1:2725 -> queue file (fsync) -> smtp-sink 127.0.0.1:2726
#
# Cells alternate between the two servers, so both see the same machine. Tern runs ingest-only
# here (-E, no worker; bench/delivery.sh measures the whole path) and its queue tables are
# emptied before each run; Postfix relays to smtp-sink as it always does, and its CPU figure
# includes that delivery. The CPU counted for Tern is Tern's + PostgreSQL's + nats-server's.
#
# Then it opens IDLE idle sessions against Tern and reports resident memory per session.
#
# Each run lasts about DURATION seconds (lib.sh sizes it by a calibration run); REPS repetitions
# alternate between the servers within each cell, and the report gives medians with the spread.
#
# Environment: DURATION (20) REPS (3) MSGS (unset: sized by DURATION) SIZES ("1024 102400")
#              RCPTS ("1 10") SESSIONS ("1 10 50") IDLE (5000) QUIET_PCT (80:60)
#              PEER_BENCH_DIR (../shared/bench)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPS=${REPS:-3}
SIZES=${SIZES:-"1024 102400"} RCPTS=${RCPTS:-"1 10"} SESSIONS=${SESSIONS:-"1 10 50"}
IDLE=${IDLE:-5000}

bench_init ingest
ulimit -n "$(ulimit -Hn)"  # the idle-session test needs IDLE descriptors
start_tern_ingress
bash "$PEER/postfix_baseline.sh" start

# Ingest-only runs keep Tern's queue from growing across runs (100 KB x 10 rcpts adds up).
EMPTY_TERN="$PSQL -X -q -d $BENCH_URL -c 'TRUNCATE attempts, jobs, messages'"
for size in $SIZES; do
  for rcpt in $RCPTS; do
    for sess in $SESSIONS; do
      TERN_RUN=(-s "$sess" -l "$size" -r "$rcpt" -E -L tern -D "$EMPTY_TERN"
        -p "$ROOT/.dev" -P "$SUT_PIDS" 127.0.0.1 "$TERN_PORT" "$SINK_PORT")
      POSTFIX_RUN=(-s "$sess" -l "$size" -r "$rcpt" -L postfix -D "$POSTFIX_DRAINED"
        -p "$SPOOL" -P "@$SPOOL/pid/master.pid" 127.0.0.1 "$SUT_PORT" "$SINK_PORT")
      run_cell ingest_mps
    done
  done
done
bash "$PEER/postfix_baseline.sh" stop >/dev/null 2>&1 || true

log "idle sessions: $IDLE against Tern"
python3 "$ROOT/bench/idle_sessions.py" 127.0.0.1 "$TERN_PORT" "${TERN_PIDS[0]}" "$IDLE" | tee "$OUT/idle.txt"

echo
echo "Accepted messages per second (ingest), Tern vs Postfix; ratio = Tern / Postfix:"
report ingest_mps
