#!/usr/bin/env bash
# delivery.sh - `make bench-delivery`: the whole path, Tern against a durable Postfix relay, in one
# run, both delivering into the same smtp-sink that the peer harness runs on 127.0.0.1:2726:
#
#   smtp-source -> Tern ingress :2625 -> PostgreSQL + JetStream -> tern worker -> smtp-sink :2726
#   smtp-source -> Postfix :2725 -> queue file -> qmgr -> smtp client -> smtp-sink :2726
#
# The e2e column is messages per second from the first byte sent to the last message received by
# the sink; CPU per message counts Tern (ingress + worker) + PostgreSQL + nats-server, and
# Postfix's whole process tree.
#
# Each run lasts about DURATION seconds (lib.sh sizes it by a calibration run); REPS repetitions
# alternate between the servers within each cell, and the report gives medians with the spread.
#
# Environment: DURATION (20) REPS (3) MSGS (unset: sized by DURATION) SIZES ("1024")
#              RCPTS ("1 10") SESSIONS ("10 50") QUIET_PCT (80:60) PEER_BENCH_DIR (../shared/bench)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPS=${REPS:-3}
SIZES=${SIZES:-1024} RCPTS=${RCPTS:-"1 10"} SESSIONS=${SESSIONS:-"10 50"}

bench_init delivery
start_tern_ingress
start_tern worker 127.0.0.1:9191 TERN_WORKER_SMARTHOST="smtp:[127.0.0.1]:$SINK_PORT"
bash "$PEER/postfix_baseline.sh" start

# Drained: nothing left to deliver and every outcome recorded; then the tables are emptied so
# runs do not grow them.
TERN_DRAINED="[ \"\$($PSQL -X -A -t -d $BENCH_URL -c \"select count(*) from jobs where status in ('queued','leased','deferred')\")\" = 0 ] && $PSQL -X -q -d $BENCH_URL -c 'TRUNCATE attempts, jobs, messages'"
for size in $SIZES; do
  for rcpt in $RCPTS; do
    for sess in $SESSIONS; do
      TERN_RUN=(-s "$sess" -l "$size" -r "$rcpt" -L tern -D "$TERN_DRAINED"
        -p "$ROOT/.dev" -P "$SUT_PIDS" 127.0.0.1 "$TERN_PORT" "$SINK_PORT")
      POSTFIX_RUN=(-s "$sess" -l "$size" -r "$rcpt" -L postfix -D "$POSTFIX_DRAINED"
        -p "$SPOOL" -P "@$SPOOL/pid/master.pid" 127.0.0.1 "$SUT_PORT" "$SINK_PORT")
      run_cell e2e_mps
    done
  done
done

echo
echo "End to end (first byte sent to last message in the sink), Tern vs Postfix; ratio = Tern / Postfix:"
report e2e_mps
