#!/usr/bin/env bash
# ingest.sh - `make bench-ingest`: Tern's SMTP ingress against a durable Postfix relay, in one run.
#
# Both servers are driven by Postfix's smtp-source through the peer harness (smtp_load.sh and
# postfix_baseline.sh, in ../shared/bench/ beside this repository, or PEER_BENCH_DIR):
#
#   smtp-source -> Tern ingress 127.0.0.1:2625 -> PostgreSQL commit (fsync) + JetStream notice
#   smtp-source -> Postfix smtpd 127.0.0.1:2725 -> queue file (fsync) -> smtp-sink 127.0.0.1:2726
#
# Cells alternate between the two servers, so both see the same machine. Tern has no delivery
# worker yet, so it runs ingest-only (-E) and its queue tables are emptied before each run;
# Postfix relays to smtp-sink as it always does, and its CPU figure includes that delivery.
# The CPU counted for Tern is Tern's + PostgreSQL's + nats-server's.
#
# Then it opens IDLE idle sessions against Tern and reports resident memory per session.
#
# Environment: MSGS (2000) REPS (1) SIZES ("1024 102400") RCPTS ("1 10") SESSIONS ("1 10 50")
#              IDLE (5000) QUIET_PCT (80:60) PEER_BENCH_DIR (../shared/bench)
# Needs root (the Postfix instance) and the services of `make services-up`; run via make.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PEER=${PEER_BENCH_DIR:-$ROOT/../shared/bench}
MSGS=${MSGS:-2000} REPS=${REPS:-1}
SIZES=${SIZES:-"1024 102400"} RCPTS=${RCPTS:-"1 10"} SESSIONS=${SESSIONS:-"1 10 50"}
IDLE=${IDLE:-5000} QUIET_PCT=${QUIET_PCT:-80:60}
TERN_PORT=2625 TERN_ADMIN=127.0.0.1:9190
export SUT_PORT=2725 SINK_PORT=2726 CHECK_PORT=2727
TERN_BIN=${TERN_BIN:-$ROOT/target/release/tern}
OUT=$ROOT/bench/results/ingest-$(date -u +%Y%m%dT%H%M%SZ)
PG_PIDFILE=${TERN_DEV_PG_PIDFILE:?run through make bench-ingest}
NATS_PIDFILE=${TERN_DEV_NATS_PIDFILE:?run through make bench-ingest}

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
[[ -x $PEER/smtp_load.sh && -x $PEER/postfix_baseline.sh ]] ||
  die "the peer harness is not at $PEER (set PEER_BENCH_DIR)"
[[ -x $TERN_BIN ]] || die "$TERN_BIN not built (cargo build --release --bin tern)"
[[ $(id -u) == 0 ]] || die "run as root: the Postfix peer runs as its own instance"
mkdir -p "$OUT"

psql=$(command -v psql || printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)
ADMIN_URL=$TERN_TEST_DATABASE_URL
BENCH_DB=tern_bench
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
"$psql" -X -q -d "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"

TERN_PID=""
cleanup() {
  trap - EXIT INT TERM
  if [[ -n $TERN_PID ]]; then kill -TERM "$TERN_PID" 2>/dev/null || true; wait "$TERN_PID" 2>/dev/null || true; fi
  bash "$PEER/postfix_baseline.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Tern: a release build with its own database and NATS prefix, relaying for 127.0.0.0/8
# like the Postfix peer's mynetworks.
ulimit -n "$(ulimit -Hn)"  # the idle-session test needs IDLE descriptors
TERN_ENV=(TERN_DATABASE_URL="$BENCH_URL" TERN_NATS_PREFIX=bench TERN_LOG=warn
  TERN_INGRESS_SMTP_LISTEN=127.0.0.1:$TERN_PORT TERN_INGRESS_SUBMISSION_LISTEN=
  TERN_ADMIN_LISTEN=$TERN_ADMIN TERN_INGRESS_TRUSTED_NETWORKS=127.0.0.0/8
  TERN_INGRESS_MAX_CONNECTIONS=20000 TERN_INGRESS_MAX_CONNECTIONS_PER_IP=20000)
env "${TERN_ENV[@]}" "$TERN_BIN" migrate
env "${TERN_ENV[@]}" "$TERN_BIN" ingress >"$OUT/tern.log" 2>&1 &
TERN_PID=$!
echo "$TERN_PID" >"$OUT/tern.pid"
for ((i = 0; i < 100; i++)); do
  curl -fsS "http://$TERN_ADMIN/readyz" >/dev/null 2>&1 && break
  kill -0 "$TERN_PID" 2>/dev/null || die "tern exited at startup: $(tail -n 5 "$OUT/tern.log")"
  sleep 0.2
done
curl -fsS "http://$TERN_ADMIN/readyz" >/dev/null || die "tern is not ready (log: $OUT/tern.log)"
log "tern ingress ready on 127.0.0.1:$TERN_PORT (pid $TERN_PID)"

bash "$PEER/postfix_baseline.sh" start

CSV=$OUT/ingest.csv
# Ingest-only runs keep Tern's queue from growing across runs (100 KB x 10 rcpts adds up).
EMPTY_TERN="$psql -X -q -d $BENCH_URL -c 'TRUNCATE jobs, messages'"
SPOOL=/var/lib/mta-bench-postfix/spool
POSTFIX_DRAINED="[ -z \"\$(find $SPOOL/incoming $SPOOL/active $SPOOL/deferred $SPOOL/maildrop $SPOOL/hold -type f -print -quit 2>/dev/null)\" ]"
common=(-S -N -o "$CSV" -m "$MSGS" -k 1 -c reuse -T 300 -W "$QUIET_PCT")
for ((rep = 1; rep <= REPS; rep++)); do
  for size in $SIZES; do
    for rcpt in $RCPTS; do
      for sess in $SESSIONS; do
        log "rep $rep: size=$size rcpts=$rcpt sessions=$sess"
        bash "$PEER/smtp_load.sh" "${common[@]}" -s "$sess" -l "$size" -r "$rcpt" -E -L tern -D "$EMPTY_TERN" \
          -p "$ROOT/.dev" -P "@$OUT/tern.pid,@$PG_PIDFILE,@$NATS_PIDFILE" 127.0.0.1 "$TERN_PORT" "$SINK_PORT"
        bash "$PEER/smtp_load.sh" "${common[@]}" -s "$sess" -l "$size" -r "$rcpt" -L postfix -D "$POSTFIX_DRAINED" \
          -p "$SPOOL" -P "@$SPOOL/pid/master.pid" 127.0.0.1 "$SUT_PORT" "$SINK_PORT"
      done
    done
  done
done
bash "$PEER/postfix_baseline.sh" stop >/dev/null 2>&1 || true

log "idle sessions: $IDLE against Tern"
python3 "$ROOT/bench/idle_sessions.py" 127.0.0.1 "$TERN_PORT" "$TERN_PID" "$IDLE" | tee "$OUT/idle.txt"

echo
echo "Accepted messages per second (ingest), Tern vs Postfix; ratio = Tern / Postfix:"
bash "$PEER/smtp_load.sh" -R "$CSV" -B postfix | tee "$OUT/summary.txt"
log "raw results in $OUT"
